/* cmd_eval.c - `moestream eval`: evaluate exactly the given token ids as one
 * prompt, write every position's logits, then greedy-decode N tokens
 * (never stopping at EOS) and print {"greedy":[...]} on stdout.
 * This is the command the golden tests drive.  Through the public API. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "cmd.h"
#include "moestream.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: moestream eval -m MODEL (--tokens \"ID ID ...\" | --tokens-file FILE)\n"
            "                      [--logits OUT.f32] [--greedy N] [options]\n"
            "Evaluates the ids as one prompt (nothing added), writes float32 logits of every\n"
            "prompt position to OUT, then greedy-decodes N tokens and prints {\"greedy\":[...]}.\n\n%s",
            cli_common_help());
}

/* Integers separated by whitespace, commas or brackets. */
static int parse_ids(const char *text, int32_t **ids, int *n)
{
    size_t cap = 64, cnt = 0;
    int32_t *v = malloc(cap * sizeof *v);
    if (!v)
        return -ENOMEM;
    const char *p = text;
    for (;;) {
        while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == ',' || *p == '[' ||
               *p == ']')
            p++;
        if (!*p)
            break;
        char *end;
        errno = 0;
        long x = strtol(p, &end, 10);
        if (end == p || errno || x < 0 || x > INT32_MAX) {
            free(v);
            return -EINVAL;
        }
        if (cnt == cap) {
            cap *= 2;
            int32_t *nv = realloc(v, cap * sizeof *v);
            if (!nv) {
                free(v);
                return -ENOMEM;
            }
            v = nv;
        }
        v[cnt++] = (int32_t)x;
        p = end;
    }
    if (cnt > (size_t)INT32_MAX / 2) {
        free(v);
        return -E2BIG;
    }
    *ids = v;
    *n = (int)cnt;
    return 0;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int cmd_eval(int argc, char **argv)
{
    cli_common c;
    cli_common_default(&c);
    const char *tokens = NULL, *tokens_file = NULL, *logits_path = NULL;
    long greedy = 0;
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
        if (i + 1 >= argc) {
            fprintf(stderr, "moestream eval: unknown option or missing value: %s\n", a);
            usage(stderr);
            return 2;
        }
        if (!strcmp(a, "--tokens"))
            tokens = argv[++i];
        else if (!strcmp(a, "--tokens-file"))
            tokens_file = argv[++i];
        else if (!strcmp(a, "--logits"))
            logits_path = argv[++i];
        else if (!strcmp(a, "--greedy")) {
            if (cli_parse_int(argv[++i], 0, 1 << 24, &greedy)) {
                fprintf(stderr, "moestream eval: bad --greedy value '%s'\n", argv[i]);
                return 2;
            }
        } else {
            fprintf(stderr, "moestream eval: unknown option %s\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (!c.model || (!tokens == !tokens_file)) {
        fprintf(stderr, "moestream eval: need -m MODEL and exactly one of --tokens/--tokens-file\n");
        usage(stderr);
        return 2;
    }
    char *owned = NULL;
    if (tokens_file) {
        owned = cli_read_file(tokens_file);
        if (!owned) {
            fprintf(stderr, "moestream eval: cannot read %s: %s\n", tokens_file, strerror(errno));
            return 1;
        }
        tokens = owned;
    }
    int32_t *ids = NULL;
    int n = 0;
    int rc = parse_ids(tokens, &ids, &n);
    free(owned);
    if (rc || n == 0) {
        fprintf(stderr, "moestream eval: token list must be non-negative integers (got %s)\n",
                rc ? "an unparsable list" : "no tokens");
        return 2;
    }

    char err[512] = "";
    int status = 1;
    ms_engine *e = NULL;
    ms_session *st = NULL;
    float *logits = NULL;
    int32_t *out = NULL;
    FILE *lf = NULL;
    double t0 = now_s();
    if ((int64_t)n + greedy > c.n_ctx) {
        snprintf(err, sizeof err, "%d prompt tokens + %ld greedy exceed the context size %d (use -c)",
                 n, greedy, c.n_ctx);
        goto fail;
    }
    ms_engine_opts eo;
    cli_engine_opts(&c, &eo);
    eo.need_tokenizer = false;
    if ((rc = ms_engine_open(&e, c.model, &eo, err, sizeof err)))
        goto fail;
    if ((rc = ms_session_create(e, &st, err, sizeof err)))
        goto fail;
    if (c.verbose)
        fprintf(stderr, "eval: %s loaded in %.2f s\n", c.model, now_s() - t0);
    const size_t V = ms_session_n_vocab(st);
    out = malloc(((size_t)greedy + 1) * sizeof *out);
    if (logits_path) {
        logits = malloc((size_t)n * V * sizeof *logits);
        if (!logits) {
            snprintf(err, sizeof err, "cannot allocate %zu MB of logits", (size_t)n * V * 4 >> 20);
            goto fail;
        }
    }
    if (!out) {
        snprintf(err, sizeof err, "out of memory");
        goto fail;
    }
    double t1 = now_s();
    if ((rc = ms_session_eval(st, ids, (size_t)n, logits, err, sizeof err)))
        goto fail;
    double t2 = now_s();
    if (c.verbose) /* the prompt's last logits are the first token's */
        fprintf(stderr, "eval: time to first token %.2f s (load %.2f s + prompt %.2f s)\n", t2 - t0, t1 - t0,
                t2 - t1);
    ms_stats s0; /* the decode's own share of the expert cache counters */
    ms_engine_stats(e, &s0);
    if (logits_path) {
        lf = fopen(logits_path, "wb");
        if (!lf || fwrite(logits, sizeof *logits, (size_t)n * V, lf) != (size_t)n * V ||
            fclose(lf) != 0) {
            lf = NULL;
            snprintf(err, sizeof err, "cannot write %s: %s", logits_path, strerror(errno));
            goto fail;
        }
        lf = NULL;
    }
    for (long g = 0; g < greedy; g++) {
        const float *last = ms_session_logits(st);
        int32_t best = 0;
        for (size_t v = 1; v < V; v++)
            if (last[v] > last[best])
                best = (int32_t)v;
        out[g] = best;
        if (g + 1 < greedy && (rc = ms_session_eval(st, &best, 1, NULL, err, sizeof err)))
            goto fail;
    }
    double t3 = now_s();
    printf("{\"greedy\":[");
    for (long g = 0; g < greedy; g++)
        printf("%s%d", g ? "," : "", out[g]);
    printf("]}\n");
    if (fflush(stdout) != 0) {
        snprintf(err, sizeof err, "cannot write stdout");
        goto fail;
    }
    if (c.verbose) {
        fprintf(stderr, "eval: prompt %d tokens in %.3f s (%.1f tok/s); %ld greedy in %.3f s (%.2f tok/s)\n",
                n, t2 - t1, n / (t2 - t1), greedy, t3 - t2, greedy > 1 ? (greedy - 1) / (t3 - t2) : 0.0);
        ms_stats ss;
        ms_engine_stats(e, &ss);
        ms_stats_print(&ss, stderr);
        const long nd = greedy - 1; /* tokens evaluated after the prompt */
        if (ss.paged && nd > 0) {
            const uint64_t h = ss.hits - s0.hits, m = ss.misses - s0.misses;
            const double rd = (double)(ss.bytes_read - s0.bytes_read) / 1073741824.0;
            const double need = (double)(ss.read_bytes_needed - s0.read_bytes_needed) / 1073741824.0;
            const double stall = ss.stall_s - s0.stall_s;
            fprintf(stderr, "decode only: %ld tokens, %llu hits, %llu misses (%.1f%% hit rate), "
                            "%.3f GiB read = %.4f GiB/token (%.4f GiB/token of expert bytes), stalled "
                            "%.3f s of %.3f s (%.1f%%)\n",
                    nd, (unsigned long long)h, (unsigned long long)m,
                    h + m ? 100.0 * (double)h / (double)(h + m) : 0.0, rd, rd / (double)nd,
                    need / (double)nd, stall, t3 - t2, t3 > t2 ? 100.0 * stall / (t3 - t2) : 0.0);
        }
    }
    status = 0;
    goto done;
fail:
    fprintf(stderr, "moestream eval: %s\n", err[0] ? err : strerror(-rc));
done:
    if (lf)
        fclose(lf);
    free(ids);
    free(logits);
    free(out);
    ms_session_destroy(st);
    ms_engine_close(e);
    return status;
}
