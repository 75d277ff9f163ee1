/* cmd_imatrix.c - `moestream imatrix`: an importance matrix for quantize,
 * computed through our forward pass (src/imatrix_collect.c) the way
 * llama-imatrix computes it: chunks of -c tokens starting with BOS, -b/-c of
 * them evaluated side by side in the reference's ubatches (so every sum is
 * added in its order), the running perplexity of each chunk's second half
 * printed as it goes.  Routed experts come through the engine's expert
 * source, so a model far larger than RAM runs paged under --mem. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cmd.h"
#include "engine.h"
#include "imatrix_collect.h"
#include "moestream.h"
#include "perplexity.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: moestream imatrix -m MODEL -f TEXT [-o FILE] [-c CTX] [--chunks N]\n"
            "                         [--output-format gguf|dat] [--process-output] [options]\n"
            "Importance matrix for `moestream quantize` (its imatrix option), as llama-imatrix computes it:\n"
            "per weight the sum of squared inputs of every column over the text, per routed\n"
            "expert over the tokens that chose it.\n"
            "  -f, --file TEXT          calibration text (one trailing newline dropped)\n"
            "  -o, --output FILE        output (default imatrix.gguf)\n"
            "  -c CTX                   tokens per chunk (default 512)\n"
            "  -b N                     tokens per evaluation batch (default 2048): N/CTX chunks side by\n"
            "                           side, in ubatches of 512 tokens, as the reference runs them\n"
            "  --chunks N               at most N chunks (default: all)\n"
            "  --output-format F        gguf (default) or dat (the legacy format)\n"
            "  --process-output         collect output.weight too\n"
            "  --attn flash is the default here (the reference's flash-attention arithmetic, its default)\n\n%s",
            cli_common_help());
}

#define UBATCH 512 /* the reference's default n_ubatch */

int cmd_imatrix(int argc, char **argv)
{
    cli_common c;
    cli_common_default(&c);
    c.n_ctx = 512; /* the reference's defaults */
    c.n_batch = 2048;
    c.attn = ATTN_FLASH; /* the reference's default arithmetic (README: Numerics) */
    const char *text_path = NULL, *out_path = "imatrix.gguf";
    bool dat = false, process_output = false;
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
        if (!strcmp(a, "--process-output")) {
            process_output = true;
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "moestream imatrix: unknown option or missing value: %s\n", a);
            return 2;
        }
        const char *val = argv[++i];
        if (!strcmp(a, "-f") || !strcmp(a, "--file")) {
            text_path = val;
        } else if (!strcmp(a, "-o") || !strcmp(a, "--output")) {
            out_path = val;
        } else if (!strcmp(a, "--output-format")) {
            if (strcmp(val, "gguf") && strcmp(val, "dat")) {
                fprintf(stderr, "moestream imatrix: bad value '%s' for --output-format (gguf or dat)\n", val);
                return 2;
            }
            dat = !strcmp(val, "dat");
        } else if (!strcmp(a, "--chunks")) {
            if (cli_parse_int(val, -1, 1 << 24, &max_chunks)) {
                fprintf(stderr, "moestream imatrix: bad value '%s' for --chunks\n", val);
                return 2;
            }
        } else {
            fprintf(stderr, "moestream imatrix: unknown option %s\n", a);
            return 2;
        }
    }
    if (!c.model || !text_path) {
        fprintf(stderr, "moestream imatrix: need -m MODEL and -f TEXT\n");
        return 2;
    }
    const int n_ctx = c.n_ctx;
    if (n_ctx < 4) {
        fprintf(stderr, "moestream imatrix: a context of %d tokens is too small\n", n_ctx);
        return 2;
    }
    if (c.n_batch >= n_ctx && c.n_batch % n_ctx) {
        fprintf(stderr, "moestream imatrix: -b %d must be below -c %d or a multiple of it (as llama-imatrix)\n",
                c.n_batch, n_ctx);
        return 2;
    }
    const int n_seq = c.n_batch / n_ctx > 1 ? c.n_batch / n_ctx : 1;
    /* ubatch rows and the evaluation piece: one sequence's batches split
     * into ubatches of 512; a batch of k sequences into 512/k tokens of
     * each (k < n_seq in the last batch, so pieces up to 512 then) */
    const int batch1 = c.n_batch < n_ctx ? c.n_batch : n_ctx;
    if (n_seq > UBATCH) {
        fprintf(stderr, "moestream imatrix: -b %d runs %d sequences side by side, more than an ubatch "
                        "of %d holds\n", c.n_batch, n_seq, UBATCH);
        return 2;
    }
    const int piece_max = n_seq > 1 ? (UBATCH < n_ctx ? UBATCH : n_ctx) : (batch1 < UBATCH ? batch1 : UBATCH);
    const int ub_max = n_seq > 1 ? (UBATCH < n_seq * n_ctx ? UBATCH : n_seq * n_ctx) : piece_max;

    char err[512] = "";
    int status = 1, rc = 0;
    ms_engine *e = NULL;
    ms_session **ss = calloc((size_t)n_seq, sizeof *ss);
    imatrix_collect *col = NULL;
    char *text = cli_read_file(text_path);
    int32_t *tokens = NULL;
    size_t n_tok = 0;
    float *logits = NULL;
    double *nll = calloc((size_t)n_seq, sizeof *nll), *nll2 = calloc((size_t)n_seq, sizeof *nll2);
    if (!text) {
        snprintf(err, sizeof err, "cannot read %s: %s", text_path, strerror(errno));
        goto fail;
    }
    if (!ss || !nll || !nll2) {
        snprintf(err, sizeof err, "out of memory");
        goto fail;
    }
    {
        ms_engine_opts eo;
        cli_engine_opts(&c, &eo);
        eo.n_ctx = n_ctx;
        eo.n_batch = piece_max;
        eo.max_seqs = n_seq;
        if ((rc = ms_engine_open(&e, c.model, &eo, err, sizeof err)))
            goto fail;
        for (int s = 0; s < n_seq; s++)
            if ((rc = ms_session_create(e, &ss[s], err, sizeof err)))
                goto fail;
    }
    const ms_vocab *vocab = ms_engine_vocab(e);
    const size_t V = ms_session_n_vocab(ss[0]);
    const int32_t bos = ms_token_bos(vocab);
    bool add_bos;
    {
        int32_t *probe = NULL;
        size_t np = 0;
        if (ms_tokenize(vocab, "", 0, MS_TOK_ADD_BOS, &probe, &np)) {
            snprintf(err, sizeof err, "out of memory");
            goto fail;
        }
        add_bos = np == 1 && bos >= 0;
        ms_free(probe);
    }
    {
        size_t len = strlen(text);
        if (len && text[len - 1] == '\n')
            text[--len] = 0;
        if (ms_tokenize(vocab, text, len, MS_TOK_ADD_BOS, &tokens, &n_tok)) {
            snprintf(err, sizeof err, "out of memory while tokenizing");
            goto fail;
        }
    }
    if (n_tok < 2 * (size_t)n_ctx) {
        snprintf(err, sizeof err, "%s tokenizes to %zu tokens; a context of %d needs at least %d",
                 text_path, n_tok, n_ctx, 2 * n_ctx);
        goto fail;
    }
    int n_chunk = (int)(n_tok / (size_t)n_ctx);
    if (max_chunks >= 0 && max_chunks < n_chunk)
        n_chunk = (int)max_chunks;
    if ((rc = imatrix_collect_create(&col, e->m, n_ctx, ub_max, process_output, err, sizeof err)))
        goto fail;
    fwd_set_matmul_hook(e->scratch, imatrix_collect_hook, col);
    if (!(logits = malloc((size_t)piece_max * V * sizeof *logits))) {
        snprintf(err, sizeof err, "out of memory for the logits of %d positions", piece_max);
        goto fail;
    }
    fprintf(stderr, "imatrix: computing over %d chunks, n_ctx=%d, batch_size=%d, n_seq=%d (ubatch "
                    "staging %.1f MiB)\n", n_chunk, n_ctx, c.n_batch < n_ctx * n_seq ? c.n_batch : n_ctx * n_seq,
            n_seq, (double)imatrix_collect_stage_bytes(col) / (1 << 20));

    const int first = n_ctx / 2;
    double tot_nll = 0;
    size_t count = 0;
    int32_t buf[UBATCH];
    for (int i = 0; i < n_chunk; i += n_seq) {
        const int nsb = n_chunk - i < n_seq ? n_chunk - i : n_seq;
        const int piece = n_seq > 1 ? (UBATCH / nsb < n_ctx ? UBATCH / nsb : n_ctx) : piece_max;
        for (int s = 0; s < nsb; s++) {
            ms_session_truncate(ss[s], 0);
            nll[s] = nll2[s] = 0;
        }
        for (int p0 = 0; p0 < n_ctx; p0 += piece) {
            const int n = n_ctx - p0 < piece ? n_ctx - p0 : piece;
            imatrix_collect_begin_ubatch(col, n * nsb);
            for (int s = 0; s < nsb; s++) {
                const int32_t *ct = tokens + (size_t)(i + s) * (size_t)n_ctx;
                memcpy(buf, ct + p0, (size_t)n * sizeof *buf);
                if (p0 == 0 && add_bos)
                    buf[0] = bos;
                imatrix_collect_rows(col, s * n);
                if ((rc = ms_session_eval(ss[s], buf, (size_t)n, logits, err, sizeof err)))
                    goto fail;
                for (int k = 0; k < n; k++) {
                    const int pos = p0 + k;
                    if (pos < first || pos >= n_ctx - 1)
                        continue;
                    const double v = ppl_nll((int)V, logits + (size_t)k * V, ct[pos + 1]);
                    nll[s] += v;
                    nll2[s] += v * v;
                }
            }
            imatrix_collect_end_ubatch(col);
        }
        for (int s = 0; s < nsb; s++) {
            tot_nll += nll[s];
            count += (size_t)(n_ctx - 1 - first);
            printf("[%d]%.4lf,", i + s + 1, exp(tot_nll / (double)count));
        }
        fflush(stdout);
    }
    printf("\n");
    if ((rc = dat ? imatrix_collect_save_dat(col, out_path, text_path, err, sizeof err)
                  : imatrix_collect_save_gguf(col, out_path, text_path, err, sizeof err)))
        goto fail;
    fprintf(stderr, "imatrix: wrote %s (%s)\n", out_path, dat ? "legacy .dat" : "GGUF");
    if (c.verbose) {
        ms_stats st;
        ms_engine_stats(e, &st);
        ms_stats_print(&st, stderr);
    }
    status = 0;
    goto out;
fail:
    fprintf(stderr, "moestream imatrix: %s\n", err[0] ? err : "failed");
out:
    imatrix_collect_destroy(col);
    free(logits);
    ms_free(tokens);
    free(text);
    free(nll);
    free(nll2);
    for (int s = 0; ss && s < n_seq; s++)
        ms_session_destroy(ss[s]);
    free(ss);
    ms_engine_close(e);
    return status;
}
