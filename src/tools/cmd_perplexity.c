/* cmd_perplexity.c - `moestream perplexity`: perplexity of a text over
 * chunks of -c tokens, scored on the second half of each chunk, and KL
 * divergence against base log-probabilities saved by an earlier run, both as
 * llama-perplexity computes and prints them (src/perplexity.c), so the
 * numbers compare with the reference's and base files go both ways.
 * Through the public API: paged models work under --mem like everywhere. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cmd.h"
#include "moestream.h"
#include "perplexity.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: moestream perplexity -m MODEL -f TEXT [-c CTX] [-b N] [--chunks N]\n"
            "                            [--kl-divergence-base FILE [--kl-divergence]] [options]\n"
            "Perplexity as llama-perplexity computes it: chunks of CTX tokens (default 512), each\n"
            "starting with BOS, scored on their second half; the running estimate after each chunk.\n"
            "  -f, --file TEXT            the text (one trailing newline dropped)\n"
            "  --chunks N                 at most N chunks (default: all)\n"
            "  --kl-divergence-base FILE  without --kl-divergence: also write the base log-probabilities\n"
            "                             of this model to FILE (llama-perplexity's format)\n"
            "  --kl-divergence            compare this model with FILE's: KL divergence, Δp and\n"
            "                             same-top-token per chunk and in total (-f not needed: the\n"
            "                             tokens and CTX come from FILE)\n"
            "  -b N                       tokens per evaluation (default 2048; N > CTX runs N/CTX\n"
            "                             chunks per batch as the reference does)\n"
            "  --attn flash is the default here: the reference's flash-attention arithmetic, so the\n"
            "  numbers are llama-perplexity's with its defaults (--attn mha: its -fa off numbers)\n\n%s",
            cli_common_help());
}

typedef struct ppl_run {
    ms_engine *e;
    ms_session *s;
    int n_ctx, n_vocab, n_seq, n_batch;
    float *piece_logits; /* (piece, n_vocab) */
    float *scored;       /* (n_ctx - first, n_vocab): logits of the positions scored */
    int32_t bos;
    bool add_bos;
} ppl_run;

/* Evaluates chunk tokens[0..n_ctx) (its first replaced by BOS when the
 * vocabulary adds one) from an empty cache, in the reference's ubatch
 * pieces, keeping the logits of positions >= n_ctx/2 in r->scored. */
static int eval_chunk(ppl_run *r, const int32_t *tokens, int n_seq_batch, char *err, size_t errlen)
{
    const int n_ctx = r->n_ctx, first = n_ctx / 2;
    const size_t V = (size_t)r->n_vocab;
    /* llama.cpp splits a batch of several sequences into ubatches of
     * 512/n_seqs tokens per sequence, one sequence's into n_batch ones. */
    int piece = 512 / n_seq_batch;
    if (piece > r->n_batch)
        piece = r->n_batch;
    if (piece > n_ctx)
        piece = n_ctx;
    ms_session_truncate(r->s, 0);
    int32_t buf[512];
    for (int p0 = 0; p0 < n_ctx; p0 += piece) {
        const int n = n_ctx - p0 < piece ? n_ctx - p0 : piece;
        memcpy(buf, tokens + p0, (size_t)n * sizeof *buf);
        if (p0 == 0 && r->add_bos)
            buf[0] = r->bos;
        const bool want = p0 + n > first;
        int rc = ms_session_eval(r->s, buf, (size_t)n, want ? r->piece_logits : NULL, err, errlen);
        if (rc)
            return rc;
        for (int k = 0; k < n; k++)
            if (p0 + k >= first)
                memcpy(r->scored + (size_t)(p0 + k - first) * V, r->piece_logits + (size_t)k * V,
                       V * sizeof(float));
    }
    return 0;
}

int cmd_perplexity(int argc, char **argv)
{
    cli_common c;
    cli_common_default(&c);
    c.n_ctx = 512;    /* the reference's defaults */
    c.n_batch = 2048;
    c.attn = ATTN_FLASH; /* the reference's default arithmetic (README: Numerics) */
    const char *text_path = NULL, *base_path = NULL;
    bool kld_mode = false;
    long max_chunks = -1;
    for (int i = 1; i < argc; i++) {
        int r = cli_common_arg(&c, argc, argv, &i);
        if (r < 0)
            return 2;
        if (r > 0)
            continue;
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(a, "--kl-divergence")) {
            kld_mode = true;
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "moestream perplexity: unknown option or missing value: %s\n", a);
            return 2;
        }
        const char *val = argv[++i];
        if (!strcmp(a, "-f") || !strcmp(a, "--file")) {
            text_path = val;
        } else if (!strcmp(a, "--kl-divergence-base")) {
            base_path = val;
        } else if (!strcmp(a, "--chunks")) {
            if (cli_parse_int(val, -1, 1 << 24, &max_chunks)) {
                fprintf(stderr, "moestream perplexity: bad value '%s' for --chunks\n", val);
                return 2;
            }
        } else {
            fprintf(stderr, "moestream perplexity: unknown option %s\n", a);
            return 2;
        }
    }
    if (!c.model || (kld_mode && !base_path) || (!kld_mode && !text_path)) {
        fprintf(stderr, "moestream perplexity: need -m MODEL and -f TEXT (or --kl-divergence with "
                        "--kl-divergence-base FILE)\n");
        return 2;
    }

    char err[512] = "";
    int status = 1, rc = 0;
    ppl_run R = {0};
    FILE *bf = NULL;
    char *text = NULL;
    int32_t *tokens = NULL;
    size_t n_tok = 0;
    uint16_t *rows = NULL;
    float *kld_v = NULL, *pdiff_v = NULL;
    ppl_base_hdr hdr = {0};

    if (kld_mode) {
        if (!(bf = fopen(base_path, "rb"))) {
            snprintf(err, sizeof err, "cannot open %s: %s", base_path, strerror(errno));
            goto fail;
        }
        if ((rc = ppl_base_read_header(bf, base_path, &hdr, &tokens, err, sizeof err)))
            goto fail;
        c.n_ctx = hdr.n_ctx; /* the file's chunks decide */
    } else if (!(text = cli_read_file(text_path))) {
        snprintf(err, sizeof err, "cannot read %s: %s", text_path, strerror(errno));
        goto fail;
    }
    const int n_ctx = c.n_ctx;
    if (n_ctx < 4) {
        snprintf(err, sizeof err, "a context of %d tokens is too small to score", n_ctx);
        goto fail;
    }
    if (c.n_batch >= n_ctx && c.n_batch % n_ctx) {
        snprintf(err, sizeof err, "-b %d must be below -c %d or a multiple of it (as llama-perplexity)",
                 c.n_batch, n_ctx);
        goto usage_fail;
    }
    R.n_ctx = n_ctx;
    R.n_seq = c.n_batch / n_ctx > 1 ? c.n_batch / n_ctx : 1;
    R.n_batch = c.n_batch < n_ctx ? c.n_batch : n_ctx;
    {
        ms_engine_opts eo;
        cli_engine_opts(&c, &eo);
        eo.n_ctx = n_ctx;
        eo.n_batch = R.n_batch < 512 ? R.n_batch : 512;
        eo.max_seqs = 1;
        if ((rc = ms_engine_open(&R.e, c.model, &eo, err, sizeof err)))
            goto fail;
        if ((rc = ms_session_create(R.e, &R.s, err, sizeof err)))
            goto fail;
    }
    const ms_vocab *vocab = ms_engine_vocab(R.e);
    R.n_vocab = (int)ms_session_n_vocab(R.s);
    R.bos = ms_token_bos(vocab);
    {
        int32_t *probe = NULL;
        size_t np = 0;
        if (ms_tokenize(vocab, "", 0, MS_TOK_ADD_BOS, &probe, &np)) {
            snprintf(err, sizeof err, "out of memory");
            goto fail;
        }
        R.add_bos = np == 1 && R.bos >= 0;
        ms_free(probe);
    }
    if (kld_mode) {
        if (hdr.n_vocab != R.n_vocab) {
            snprintf(err, sizeof err, "%s holds a vocabulary of %d tokens, the model has %d", base_path,
                     hdr.n_vocab, R.n_vocab);
            goto fail;
        }
        n_tok = (size_t)hdr.n_chunk * (size_t)n_ctx;
    } else {
        size_t len = strlen(text);
        if (len && text[len - 1] == '\n')
            text[--len] = 0;
        if (ms_tokenize(vocab, text, len, MS_TOK_ADD_BOS, &tokens, &n_tok)) {
            snprintf(err, sizeof err, "out of memory while tokenizing");
            goto fail;
        }
        if (n_tok < 2 * (size_t)n_ctx) {
            snprintf(err, sizeof err,
                     "%s tokenizes to %zu tokens; a context of %d needs at least %d", text_path, n_tok,
                     n_ctx, 2 * n_ctx);
            goto fail;
        }
    }
    int n_chunk = (int)(n_tok / (size_t)n_ctx);
    if (max_chunks >= 0 && max_chunks < n_chunk)
        n_chunk = (int)max_chunks;
    const int first = n_ctx / 2, n_scored = n_ctx - 1 - first;
    const size_t V = (size_t)R.n_vocab, nv = ppl_base_row_len(R.n_vocab);
    R.piece_logits = malloc((size_t)(R.n_batch < 512 ? R.n_batch : 512) * V * sizeof(float));
    R.scored = malloc((size_t)(n_ctx - first) * V * sizeof(float));
    if (base_path)
        rows = malloc((size_t)n_scored * nv * sizeof *rows);
    if (kld_mode) {
        kld_v = malloc((size_t)n_scored * (size_t)n_chunk * sizeof *kld_v);
        pdiff_v = malloc((size_t)n_scored * (size_t)n_chunk * sizeof *pdiff_v);
    }
    if (!R.piece_logits || !R.scored || (base_path && !rows) || (kld_mode && (!kld_v || !pdiff_v))) {
        snprintf(err, sizeof err, "out of memory for the logits of %d positions", n_ctx - first);
        goto fail;
    }
    if (base_path && !kld_mode) {
        if (!(bf = fopen(base_path, "wb"))) {
            snprintf(err, sizeof err, "cannot create %s: %s", base_path, strerror(errno));
            goto fail;
        }
        ppl_base_hdr h = {n_ctx, R.n_vocab, n_chunk};
        if ((rc = ppl_base_write_header(bf, &h, tokens, err, sizeof err)))
            goto fail;
        fprintf(stderr, "perplexity: saving base log-probabilities to %s\n", base_path);
    }
    fprintf(stderr, "perplexity: %s over %d chunks, n_ctx=%d, batch_size=%d, n_seq=%d\n",
            kld_mode ? "computing KL divergence" : "calculating perplexity", n_chunk, n_ctx,
            c.n_batch < n_ctx * R.n_seq ? c.n_batch : n_ctx * R.n_seq, R.n_seq);
    if (kld_mode)
        ppl_kld_print_header(stdout);

    double nll = 0, nll2 = 0;
    size_t count = 0;
    ppl_kld K = {0};
    for (int ch = 0; ch < n_chunk; ch++) {
        const int group0 = ch - ch % R.n_seq;
        const int nsb = n_chunk - group0 < R.n_seq ? n_chunk - group0 : R.n_seq;
        const int32_t *ct = tokens + (size_t)ch * (size_t)n_ctx;
        if ((rc = eval_chunk(&R, ct, nsb, err, sizeof err)))
            goto fail;
        if (kld_mode) {
            if (fread(rows, sizeof *rows * nv, (size_t)n_scored, bf) != (size_t)n_scored) {
                snprintf(err, sizeof err, "%s: truncated at the log-probabilities of chunk %d",
                         base_path, ch + 1);
                goto fail;
            }
            for (int k = 0; k < n_scored; k++) {
                const size_t at = (size_t)ch * (size_t)n_scored + (size_t)k;
                ppl_kld_add(&K, R.n_vocab, R.scored + (size_t)k * V, rows + (size_t)k * nv,
                            ct[first + k + 1], &kld_v[at], &pdiff_v[at]);
            }
            ppl_kld_print_chunk(&K, ch + 1, stdout);
        } else {
            for (int k = 0; k < n_scored; k++) {
                const float *lg = R.scored + (size_t)k * V;
                const int tok = ct[first + k + 1];
                const double v = rows ? ppl_nll_base_row(R.n_vocab, lg, tok, rows + (size_t)k * nv)
                                      : ppl_nll(R.n_vocab, lg, tok);
                nll += v;
                nll2 += v * v;
            }
            if (rows && fwrite(rows, sizeof *rows * nv, (size_t)n_scored, bf) != (size_t)n_scored) {
                snprintf(err, sizeof err, "cannot write %s: %s", base_path, strerror(errno));
                goto fail;
            }
            count += (size_t)n_scored;
            printf("[%d]%.4lf,", ch + 1, exp(nll / (double)count));
        }
        fflush(stdout);
    }
    printf("\n");
    if (kld_mode) {
        ppl_kld_print_summary(&K, kld_v, pdiff_v, K.count, stdout);
    } else {
        nll2 /= (double)count;
        nll /= (double)count;
        const double ppl = exp(nll);
        nll2 -= nll * nll;
        if (nll2 > 0)
            printf("Final estimate: PPL = %.4lf +/- %.5lf\n", ppl, sqrt(nll2 / (double)(count - 1)) * ppl);
        else
            fprintf(stderr, "perplexity: unexpected negative standard deviation of log(prob)\n");
    }
    if (bf && !kld_mode && fclose(bf) != 0) {
        bf = NULL;
        snprintf(err, sizeof err, "cannot write %s: %s", base_path, strerror(errno));
        goto fail;
    }
    if (!kld_mode)
        bf = NULL;
    if (c.verbose) {
        ms_stats st;
        ms_engine_stats(R.e, &st);
        ms_stats_print(&st, stderr);
    }
    status = 0;
    goto out;
usage_fail:
    status = 2;
fail:
    fprintf(stderr, "moestream perplexity: %s\n", err[0] ? err : "failed");
out:
    if (bf)
        fclose(bf);
    free(rows);
    free(kld_v);
    free(pdiff_v);
    free(R.piece_logits);
    free(R.scored);
    if (kld_mode)
        free(tokens);
    else
        ms_free(tokens);
    free(text);
    ms_session_destroy(R.s);
    ms_engine_close(R.e);
    return status;
}
