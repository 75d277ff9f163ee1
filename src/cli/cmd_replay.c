/* cmd_replay.c - `moestream replay`: replays recorded routing (which
 * experts each token chose in each layer) against the expert-cache
 * policies and prints the hit rate for pools holding 5/10/20/40% of the
 * experts.  Inputs: a directory of ESFT expert logs (expert_weights_N.txt
 * or .txt.gz: one line per sequence, ids token-major, see
 * ../shared/routing/README.md), or a trace written by --trace-routing
 * (lines "layer pos id id ...").  Tokens are replayed in order, layers in
 * order within a token, as decode would touch them. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cache_policy.h"
#include "cli.h"
#include "cmd.h"

typedef struct trace {
    int n_layers, n_expert, topk;
    int n_tok;
    int32_t *ids; /* (n_tok, n_layers, topk), -1 = unused */
} trace;

static FILE *open_maybe_gz(const char *path, bool *is_pipe)
{
    size_t n = strlen(path);
    *is_pipe = n > 3 && !strcmp(path + n - 3, ".gz");
    if (!*is_pipe)
        return fopen(path, "r");
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "gzip -dc '%s'", path);
    return popen(cmd, "r");
}

/* ESFT: layer files 1..L, line = sequence, ids token-major groups of topk. */
static int load_esft(const char *dir, int topk, trace *t, char *err, size_t errlen)
{
    int L = 0;
    for (;; L++) {
        char p[4096];
        struct stat st;
        snprintf(p, sizeof p, "%s/expert_weights_%d.txt.gz", dir, L + 1);
        if (stat(p, &st) != 0) {
            snprintf(p, sizeof p, "%s/expert_weights_%d.txt", dir, L + 1);
            if (stat(p, &st) != 0)
                break;
        }
    }
    if (L == 0) {
        snprintf(err, errlen, "%s: no expert_weights_N.txt[.gz] files", dir);
        return -ENOENT;
    }
    t->n_layers = L;
    t->topk = topk;
    t->n_expert = 0;
    size_t cap = 0;
    for (int l = 0; l < L; l++) {
        char p[4096];
        struct stat st;
        snprintf(p, sizeof p, "%s/expert_weights_%d.txt.gz", dir, l + 1);
        if (stat(p, &st) != 0)
            snprintf(p, sizeof p, "%s/expert_weights_%d.txt", dir, l + 1);
        bool pipe;
        FILE *f = open_maybe_gz(p, &pipe);
        if (!f) {
            snprintf(err, errlen, "%s: %s", p, strerror(errno));
            return -errno;
        }
        char *line = NULL;
        size_t lc = 0;
        int tok = 0;
        while (getline(&line, &lc, f) > 0) {
            char *w = strstr(line, "\t\t");
            if (w)
                *w = 0;
            int k = 0;
            for (char *s = strtok(line, "\t\n "); s; s = strtok(NULL, "\t\n ")) {
                int id = atoi(s);
                if (l == 0 && k % topk == 0) { /* first layer defines the tokens */
                    if ((size_t)(t->n_tok + 1) * (size_t)L * (size_t)topk > cap) {
                        cap = cap ? cap * 2 : (size_t)1 << 20;
                        int32_t *ni = realloc(t->ids, cap * sizeof *ni);
                        if (!ni) {
                            free(line);
                            return -ENOMEM;
                        }
                        t->ids = ni;
                    }
                    for (int q = 0; q < L * topk; q++)
                        t->ids[(size_t)t->n_tok * (size_t)(L * topk) + (size_t)q] = -1;
                    t->n_tok++;
                }
                int ti = tok + k / topk;
                if (ti < t->n_tok)
                    t->ids[((size_t)ti * (size_t)L + (size_t)l) * (size_t)topk + (size_t)(k % topk)] = id;
                if (id + 1 > t->n_expert)
                    t->n_expert = id + 1;
                k++;
            }
            tok += k / topk;
        }
        free(line);
        if (pipe)
            pclose(f);
        else
            fclose(f);
    }
    return 0;
}

/* Our own trace: "layer pos id id ..." lines. */
static int load_ours(const char *path, trace *t, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -errno;
    }
    /* two passes: shape, then data */
    char *line = NULL;
    size_t lc = 0;
    int maxl = 0, maxp = 0, topk = 0, maxe = 0;
    while (getline(&line, &lc, f) > 0) {
        int l, p, k = 0, off;
        if (sscanf(line, "%d %d%n", &l, &p, &off) < 2)
            continue;
        for (char *s = strtok(line + off, " \t\n"); s; s = strtok(NULL, " \t\n"), k++)
            if (atoi(s) + 1 > maxe)
                maxe = atoi(s) + 1;
        maxl = l + 1 > maxl ? l + 1 : maxl;
        maxp = p + 1 > maxp ? p + 1 : maxp;
        topk = k > topk ? k : topk;
    }
    if (!maxl || !topk) {
        fclose(f);
        free(line);
        snprintf(err, errlen, "%s: no routing lines", path);
        return -EINVAL;
    }
    t->n_layers = maxl;
    t->topk = topk;
    t->n_expert = maxe;
    t->n_tok = maxp;
    t->ids = malloc((size_t)maxp * (size_t)maxl * (size_t)topk * sizeof *t->ids);
    if (!t->ids) {
        fclose(f);
        free(line);
        return -ENOMEM;
    }
    for (size_t i = 0; i < (size_t)maxp * (size_t)maxl * (size_t)topk; i++)
        t->ids[i] = -1;
    rewind(f);
    while (getline(&line, &lc, f) > 0) {
        int l, p, k = 0, off;
        if (sscanf(line, "%d %d%n", &l, &p, &off) < 2)
            continue;
        for (char *s = strtok(line + off, " \t\n"); s && k < topk; s = strtok(NULL, " \t\n"), k++)
            t->ids[((size_t)p * (size_t)maxl + (size_t)l) * (size_t)topk + (size_t)k] = atoi(s);
    }
    free(line);
    fclose(f);
    return 0;
}

/* Hit rate of one policy with `slots` slots over the whole trace. */
static double replay(const trace *t, int policy, int slots, double decay)
{
    cpol p;
    size_t keys = (size_t)t->n_layers * (size_t)t->n_expert;
    if (cpol_init(&p, policy, slots, (int)keys, t->n_layers))
        return -1;
    if (decay > 0)
        p.decay = decay;
    int32_t *slot_of = malloc(keys * sizeof *slot_of), *key_of = malloc((size_t)slots * sizeof *key_of);
    bool *busy = calloc((size_t)slots, sizeof *busy);
    if (!slot_of || !key_of || !busy) {
        free(slot_of);
        free(key_of);
        free(busy);
        cpol_free(&p);
        return -1;
    }
    for (size_t k = 0; k < keys; k++)
        slot_of[k] = -1;
    for (int s = 0; s < slots; s++)
        key_of[s] = -1;
    uint64_t hit = 0, acc = 0;
    int32_t cur[64];
    for (int tok = 0; tok < t->n_tok; tok++)
        for (int l = 0; l < t->n_layers; l++) {
            cpol_tick(&p);
            int nc = 0;
            for (int k = 0; k < t->topk; k++) {
                int e = t->ids[((size_t)tok * (size_t)t->n_layers + (size_t)l) * (size_t)t->topk + (size_t)k];
                if (e < 0)
                    continue;
                size_t key = (size_t)l * (size_t)t->n_expert + (size_t)e;
                int s = slot_of[key];
                acc++;
                if (s >= 0) {
                    hit++;
                } else {
                    s = cpol_victim(&p, busy);
                    if (s < 0)
                        continue;
                    if (key_of[s] >= 0)
                        slot_of[key_of[s]] = -1;
                    key_of[s] = (int32_t)key;
                    slot_of[key] = s;
                }
                cpol_access(&p, s, (int32_t)key);
                busy[s] = true;
                if (nc < 64)
                    cur[nc++] = s;
            }
            for (int i = 0; i < nc; i++)
                busy[cur[i]] = false;
        }
    free(slot_of);
    free(key_of);
    free(busy);
    cpol_free(&p);
    return acc ? (double)hit / (double)acc : 0;
}

int cmd_replay(int argc, char **argv)
{
    const char *src = NULL;
    long topk = 6, max_tok = 0;
    double decay = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--topk") && i + 1 < argc) {
            if (cli_parse_int(argv[++i], 1, 64, &topk))
                return 2;
        } else if (!strcmp(argv[i], "--tokens") && i + 1 < argc) {
            if (cli_parse_int(argv[++i], 1, 1L << 30, &max_tok))
                return 2;
        } else if (!strcmp(argv[i], "--decay") && i + 1 < argc) {
            char *end;
            decay = strtod(argv[++i], &end);
            if (*end || !(decay > 0 && decay <= 1)) {
                fprintf(stderr, "moestream replay: --decay wants a number in (0, 1]\n");
                return 2;
            }
        } else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            printf("usage: moestream replay (ESFT_DIR | TRACE_FILE) [--topk K] [--decay D] [--tokens N]\n"
                   "Replays recorded expert routing against the cache policies.\n");
            return 0;
        } else if (!src) {
            src = argv[i];
        } else {
            fprintf(stderr, "usage: moestream replay (ESFT_DIR | TRACE_FILE) [--topk K] [--decay D] [--tokens N]\n");
            return 2;
        }
    }
    if (!src) {
        fprintf(stderr, "usage: moestream replay (ESFT_DIR | TRACE_FILE) [--topk K] [--decay D] [--tokens N]\n");
        return 2;
    }
    trace t = {0};
    char err[512] = "";
    struct stat st;
    int rc = stat(src, &st) == 0 && S_ISDIR(st.st_mode) ? load_esft(src, (int)topk, &t, err, sizeof err)
                                                       : load_ours(src, &t, err, sizeof err);
    if (rc) {
        fprintf(stderr, "moestream replay: %s\n", err[0] ? err : strerror(-rc));
        free(t.ids);
        return 1;
    }
    if (max_tok > 0 && max_tok < t.n_tok)
        t.n_tok = (int)max_tok; /* the first N tokens */
    printf("trace %s: %d tokens, %d layers, %d experts, top-%d\n", src, t.n_tok, t.n_layers,
           t.n_expert, t.topk);
    printf("%-8s", "policy");
    static const double shares[] = {0.05, 0.10, 0.20, 0.40};
    for (int k = 0; k < 4; k++)
        printf("  %4.0f%% pool", shares[k] * 100);
    printf("\n");
    for (int pol = 0; pol < CPOL_N_KINDS; pol++) {
        printf("%-8s", cpol_name(pol));
        for (int k = 0; k < 4; k++) {
            int slots = (int)(shares[k] * t.n_layers * t.n_expert + 0.5);
            if (slots < t.topk)
                slots = t.topk;
            double h = replay(&t, pol, slots, decay);
            if (h < 0) {
                fprintf(stderr, "moestream replay: out of memory\n");
                free(t.ids);
                return 1;
            }
            printf("  %8.1f%%", 100.0 * h);
        }
        printf("\n");
    }
    free(t.ids);
    return 0;
}
