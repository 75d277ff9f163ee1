/* routing_trace.c - see routing_trace.h.
 * Bounds: ids < 65536, layers < 4096, positions < 2^24 (a file beyond them
 * is rejected with the line number); ESFT layers 2.. may have fewer tokens
 * than layer 1 (the rest stay -1) but not more (ignored). */
#include "routing_trace.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define RT_MAX_ID 65536
#define RT_MAX_LAYER 4096
#define RT_MAX_POS (1 << 24)

void rtrace_free(rtrace *t)
{
    free(t->ids);
    free(t->w);
    memset(t, 0, sizeof *t);
}

static FILE *open_maybe_gz(const char *path, bool *is_pipe)
{
    size_t n = strlen(path);
    *is_pipe = n > 3 && !strcmp(path + n - 3, ".gz");
    if (!*is_pipe)
        return fopen(path, "r");
    if (strchr(path, '\''))
        return NULL;
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "gzip -dc '%s'", path);
    return popen(cmd, "r");
}

static bool esft_path(const char *dir, int l, char *p, size_t n)
{
    struct stat st;
    snprintf(p, n, "%s/expert_weights_%d.txt.gz", dir, l + 1);
    if (stat(p, &st) == 0)
        return true;
    snprintf(p, n, "%s/expert_weights_%d.txt", dir, l + 1);
    return stat(p, &st) == 0;
}

/* Grows ids/w to hold n_tok tokens (new entries -1 / 0). */
static int grow(rtrace *t, size_t *cap, int n_tok)
{
    const size_t per = (size_t)t->n_layers * (size_t)t->topk;
    if ((size_t)n_tok <= *cap)
        return 0;
    size_t nc = *cap ? *cap * 2 : 1024;
    while (nc < (size_t)n_tok)
        nc *= 2;
    int32_t *ni = realloc(t->ids, nc * per * sizeof *ni);
    if (!ni)
        return -ENOMEM;
    t->ids = ni;
    float *nw = realloc(t->w, nc * per * sizeof *nw);
    if (!nw)
        return -ENOMEM;
    t->w = nw;
    for (size_t i = *cap * per; i < nc * per; i++) {
        t->ids[i] = -1;
        t->w[i] = 0;
    }
    *cap = nc;
    return 0;
}

/* ESFT: layer files 1..L, line = sequence, ids token-major in groups of
 * topk, "\t\t", weights in the same order.  Layer 1 defines the tokens. */
static int load_esft(const char *dir, int topk, rtrace *t, char *err, size_t errlen)
{
    char p[4096];
    int L = 0;
    while (L < RT_MAX_LAYER && esft_path(dir, L, p, sizeof p))
        L++;
    if (L == 0) {
        snprintf(err, errlen, "%s: no expert_weights_N.txt[.gz] files", dir);
        return -ENOENT;
    }
    t->n_layers = L;
    t->topk = topk;
    size_t cap = 0;
    int rc = 0;
    for (int l = 0; l < L && !rc; l++) {
        esft_path(dir, l, p, sizeof p);
        bool pipe;
        FILE *f = open_maybe_gz(p, &pipe);
        if (!f) {
            snprintf(err, errlen, "%s: %s", p, strerror(errno ? errno : EINVAL));
            return -(errno ? errno : EINVAL);
        }
        char *line = NULL;
        size_t lc = 0;
        int tok = 0, lineno = 0;
        while (!rc && getline(&line, &lc, f) > 0) {
            lineno++;
            char *ws = strstr(line, "\t\t");
            if (ws) {
                *ws = 0;
                ws += 2;
            }
            int k = 0;
            char *save = NULL;
            for (char *s = strtok_r(line, "\t\n ", &save); s; s = strtok_r(NULL, "\t\n ", &save), k++) {
                char *end;
                long id = strtol(s, &end, 10);
                if (*end || id < 0 || id >= RT_MAX_ID) {
                    snprintf(err, errlen, "%s line %d: bad expert id \"%s\"", p, lineno, s);
                    rc = -EBADMSG;
                    break;
                }
                int ti = tok + k / topk;
                if (l == 0 && ti >= t->n_tok) {
                    if (ti >= RT_MAX_POS || (rc = grow(t, &cap, ti + 1)))
                        break;
                    t->n_tok = ti + 1;
                }
                if (ti < t->n_tok)
                    t->ids[((size_t)ti * (size_t)L + (size_t)l) * (size_t)topk + (size_t)(k % topk)] = (int32_t)id;
                if (id + 1 > t->n_expert)
                    t->n_expert = (int)id + 1;
            }
            save = NULL;
            int kw = 0;
            for (char *s = ws ? strtok_r(ws, "\t\n ", &save) : NULL; s && kw < k; s = strtok_r(NULL, "\t\n ", &save), kw++) {
                int ti = tok + kw / topk;
                if (ti < t->n_tok)
                    t->w[((size_t)ti * (size_t)L + (size_t)l) * (size_t)topk + (size_t)(kw % topk)] = strtof(s, NULL);
            }
            tok += k / topk;
        }
        free(line);
        if (pipe)
            pclose(f);
        else
            fclose(f);
    }
    if (!rc && t->n_tok == 0) {
        snprintf(err, errlen, "%s: no tokens", dir);
        rc = -EBADMSG;
    }
    return rc;
}

/* Ours: "layer pos id id ..." lines.  Two passes: shape, then data.
 * Layers that never appear (dense ones) are dropped, the rest renumbered
 * in order. */
static int load_ours(const char *path, rtrace *t, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -errno;
    }
    char *line = NULL;
    size_t lc = 0;
    int maxp = 0, topk = 0, maxe = 0, lineno = 0, rc = 0;
    static int remap[RT_MAX_LAYER];
    bool seen[RT_MAX_LAYER] = {false};
    while (!rc && getline(&line, &lc, f) > 0) {
        int l, p, k = 0, off;
        lineno++;
        if (sscanf(line, "%d %d%n", &l, &p, &off) < 2)
            continue;
        if (l < 0 || l >= RT_MAX_LAYER || p < 0 || p >= RT_MAX_POS) {
            snprintf(err, errlen, "%s line %d: layer %d or position %d out of range", path, lineno, l, p);
            rc = -EBADMSG;
            break;
        }
        char *save = NULL;
        for (char *s = strtok_r(line + off, " \t\n", &save); s; s = strtok_r(NULL, " \t\n", &save), k++) {
            char *end;
            long id = strtol(s, &end, 10);
            if (*end || id < 0 || id >= RT_MAX_ID) {
                snprintf(err, errlen, "%s line %d: bad expert id \"%s\"", path, lineno, s);
                rc = -EBADMSG;
                break;
            }
            maxe = (int)id + 1 > maxe ? (int)id + 1 : maxe;
        }
        seen[l] = true;
        maxp = p + 1 > maxp ? p + 1 : maxp;
        topk = k > topk ? k : topk;
    }
    int nl = 0;
    for (int l = 0; l < RT_MAX_LAYER; l++)
        remap[l] = seen[l] ? nl++ : -1;
    if (!rc && (!nl || !topk)) {
        snprintf(err, errlen, "%s: no routing lines", path);
        rc = -EBADMSG;
    }
    if (!rc && topk > 256) {
        snprintf(err, errlen, "%s: %d experts per token (at most 256)", path, topk);
        rc = -EBADMSG;
    }
    if (!rc) {
        t->n_layers = nl;
        t->topk = topk;
        t->n_expert = maxe;
        t->n_tok = maxp;
        const size_t n = (size_t)maxp * (size_t)nl * (size_t)topk;
        t->ids = malloc(n * sizeof *t->ids);
        if (!t->ids)
            rc = -ENOMEM;
        for (size_t i = 0; !rc && i < n; i++)
            t->ids[i] = -1;
    }
    rewind(f);
    while (!rc && getline(&line, &lc, f) > 0) {
        int l, p, k = 0, off;
        if (sscanf(line, "%d %d%n", &l, &p, &off) < 2)
            continue;
        char *save = NULL;
        for (char *s = strtok_r(line + off, " \t\n", &save); s && k < topk; s = strtok_r(NULL, " \t\n", &save), k++)
            t->ids[((size_t)p * (size_t)nl + (size_t)remap[l]) * (size_t)topk + (size_t)k] = atoi(s);
    }
    free(line);
    fclose(f);
    return rc;
}

int rtrace_load(rtrace *t, const char *path, int topk, char *err, size_t errlen)
{
    memset(t, 0, sizeof *t);
    struct stat st;
    int rc = stat(path, &st) == 0 && S_ISDIR(st.st_mode) ? load_esft(path, topk, t, err, errlen)
                                                        : load_ours(path, t, err, errlen);
    if (rc) {
        if (!err[0])
            snprintf(err, errlen, "%s: %s", path, strerror(-rc));
        rtrace_free(t);
    }
    return rc;
}

int rtrace_check(const rtrace *t, int n_expert, int k, char *err, size_t errlen)
{
    if (n_expert < t->n_expert || k > n_expert || k < 1) {
        snprintf(err, errlen, "routing trace with %d experts cannot drive a model with %d experts, top-%d",
                 t->n_expert, n_expert, k);
        return -EINVAL;
    }
    return 0;
}

void rtrace_pick(const rtrace *t, int moe_layer, int pos, int n_expert, int k, int32_t *sel)
{
    const int R = n_expert / t->n_expert;
    const int tok = pos % t->n_tok;
    int got = 0;
    /* every source layer once at every offset, then (a trace too sparse to
     * fill k) the lowest unused ids */
    for (int s = 0; got < k && s < t->n_layers * R; s++) {
        const int l = (moe_layer + s) % t->n_layers;
        const int32_t *ids = t->ids + ((size_t)tok * (size_t)t->n_layers + (size_t)l) * (size_t)t->topk;
        for (int i = 0; i < t->topk && got < k; i++) {
            if (ids[i] < 0)
                continue;
            int32_t e = ids[i] * R + s % R;
            bool dup = false;
            for (int q = 0; q < got; q++)
                dup = dup || sel[q] == e;
            if (!dup)
                sel[got++] = e;
        }
    }
    for (int32_t e = 0; got < k && e < n_expert; e++) {
        bool dup = false;
        for (int q = 0; q < got; q++)
            dup = dup || sel[q] == e;
        if (!dup)
            sel[got++] = e;
    }
}
