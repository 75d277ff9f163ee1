/* perplexity.h - scoring of logits against the next token the way the
 * reference's llama-perplexity does it: the per-token negative
 * log-likelihood in its three float orders (plain, while writing base
 * log-probabilities, while reading them), the base-logits file in its
 * format ("_logits_", n_ctx, n_vocab, n_chunk, the tokens, then per scored
 * position 2 floats + n_vocab uint16 quantized log-probabilities, padded to
 * an even count), KL divergence, Δp and same-top statistics with their
 * printed tables.
 * Owns: ppl_* only.  No model, no evaluation: the caller feeds logits.
 * Thread safety: none needed; every function works on caller memory. */
#ifndef MS_PERPLEXITY_H
#define MS_PERPLEXITY_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* uint16 values per scored position in the base file: 4 (scale and minimum
 * as two floats) + n_vocab rounded up to even. */
size_t ppl_base_row_len(int n_vocab);

/* -log p(tok) of one position, as the plain run computes it (double). */
double ppl_nll(int n_vocab, const float *logits, int tok);

/* -log p(tok) as the base-writing run computes it (through float), and the
 * position's quantized log-probabilities into row[ppl_base_row_len]. */
double ppl_nll_base_row(int n_vocab, const float *logits, int tok, uint16_t *row);

/* Running sums of a KL run (the reference's kl_divergence_result). */
typedef struct ppl_kld {
    double sum_nll, sum_nll2, sum_nll_base, sum_nll_base2, sum_nll_nll_base;
    double sum_kld, sum_kld2, sum_p_diff, sum_p_diff2, sum_p_diff4;
    float max_p_diff;
    size_t n_same_top, count;
} ppl_kld;

/* Adds one position: logits of the model under test against the base row;
 * *kld_out and *p_diff_out receive the position's KL divergence and
 * p(tok) - p_base(tok). */
void ppl_kld_add(ppl_kld *k, int n_vocab, const float *logits, const uint16_t *base_row, int tok,
                 float *kld_out, float *p_diff_out);

/* The per-chunk line of the KL table (chunk number is 1-based). */
void ppl_kld_print_chunk(const ppl_kld *k, int chunk, FILE *f);
void ppl_kld_print_header(FILE *f);
/* The closing statistics; kld and p_diff (n values each) are sorted in
 * place.  Nothing is printed under 100 values, as the reference. */
void ppl_kld_print_summary(const ppl_kld *k, float *kld, float *p_diff, size_t n, FILE *f);

/* ---- base-logits file ---- */

typedef struct ppl_base_hdr {
    int32_t n_ctx, n_vocab, n_chunk;
} ppl_base_hdr;

/* Writes the magic, n_ctx, n_vocab, n_chunk and n_chunk * n_ctx tokens.
 * 0 or -EIO with a message. */
int ppl_base_write_header(FILE *f, const ppl_base_hdr *h, const int32_t *tokens, char *err,
                          size_t errlen);
/* Reads the header and tokens (*tokens malloc'd, n_chunk * n_ctx).
 * 0, -EBADMSG (not a base file, bad sizes) or -ENOMEM; messages name path. */
int ppl_base_read_header(FILE *f, const char *path, ppl_base_hdr *h, int32_t **tokens, char *err,
                         size_t errlen);

#endif
