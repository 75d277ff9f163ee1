/* cmd_replay.c - `moestream replay`: replays recorded routing (which
 * experts each token chose in each layer) against the expert-cache
 * policies and prints the hit rate for pools holding 5/10/20/40% of the
 * experts.  Inputs: a directory of ESFT expert logs (expert_weights_N.txt
 * or .txt.gz: one line per sequence, ids token-major, see
 * ../shared/routing/README.md), or a trace written by --trace-routing
 * (lines "layer pos id id ...").  Tokens are replayed in order, layers in
 * order within a token, as decode would touch them. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cache_policy.h"
#include "cache_replay.h"
#include "cli.h"
#include "cmd.h"
#include "routing_trace.h"

int cmd_replay(int argc, char **argv)
{
    const char *src = NULL;
    long topk = 6, max_tok = 0;
    bool by_dist = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--topk") && i + 1 < argc) {
            if (cli_parse_int(argv[++i], 1, 64, &topk))
                return 2;
        } else if (!strcmp(argv[i], "--tokens") && i + 1 < argc) {
            if (cli_parse_int(argv[++i], 1, 1L << 30, &max_tok))
                return 2;
        } else if (!strcmp(argv[i], "--by-distance")) {
            by_dist = true;
        } else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            printf("usage: moestream replay (ESFT_DIR | TRACE_FILE) [--topk K] [--tokens N] [--by-distance]\n"
                   "Replays recorded expert routing against the cache policies and the offline\n"
                   "optimum (Belady MIN), with each policy's ratio to it.  --by-distance also\n"
                   "splits each row's hits by reuse distance (tokens since the expert's last request).\n");
            return 0;
        } else if (!src) {
            src = argv[i];
        } else {
            fprintf(stderr, "usage: moestream replay (ESFT_DIR | TRACE_FILE) [--topk K] [--tokens N] [--by-distance]\n");
            return 2;
        }
    }
    if (!src) {
        fprintf(stderr, "usage: moestream replay (ESFT_DIR | TRACE_FILE) [--topk K] [--tokens N] [--by-distance]\n");
        return 2;
    }
    rtrace t;
    char err[512] = "";
    int rc = rtrace_load(&t, src, (int)topk, err, sizeof err);
    if (rc) {
        fprintf(stderr, "moestream replay: %s\n", err);
        return 1;
    }
    if (max_tok > 0 && max_tok < t.n_tok)
        t.n_tok = (int)max_tok; /* the first N tokens */
    printf("trace %s: %d tokens, %d layers, %d experts, top-%d\n", src, t.n_tok, t.n_layers,
           t.n_expert, t.topk);
    /* Every row replays the same trace through the same pool with the same
     * pinning (cache_replay.h); MIN is the offline optimum, the ratio row
     * below each policy is its hit rate over MIN's. */
    static const double shares[] = {0.05, 0.10, 0.20, 0.40};
    enum { NS = 4 };
    int slots[NS];
    printf("%-10s", "policy");
    for (int k = 0; k < NS; k++) {
        slots[k] = (int)(shares[k] * t.n_layers * t.n_expert + 0.5);
        if (slots[k] < t.topk)
            slots[k] = t.topk;
        printf("  %4.0f%% pool", shares[k] * 100);
    }
    printf("\n%-10s", "slots");
    for (int k = 0; k < NS; k++)
        printf("  %9d", slots[k]);
    printf("\n");
    crep_trace ct = {t.n_tok, t.n_layers, t.topk, t.n_expert, t.ids};
    double hmin[NS];
    static crep_result res[CPOL_N_KINDS + 1][NS]; /* the policies, then MIN */
    for (int k = 0; k < NS; k++) {
        if (crep_min(&ct, slots[k], &res[CPOL_N_KINDS][k])) {
            fprintf(stderr, "moestream replay: out of memory\n");
            rtrace_free(&t);
            return 1;
        }
        hmin[k] = crep_rate(&res[CPOL_N_KINDS][k]);
    }
    for (int pol = 0; pol < CPOL_N_KINDS; pol++) {
        double h[NS];
        printf("%-10s", cpol_name(pol));
        for (int k = 0; k < NS; k++) {
            if (crep_policy(&ct, pol, slots[k], &res[pol][k])) {
                fprintf(stderr, "moestream replay: out of memory\n");
                rtrace_free(&t);
                return 1;
            }
            h[k] = crep_rate(&res[pol][k]);
            printf("  %8.1f%%", 100.0 * h[k]);
        }
        printf("\n%-10s", "  / min");
        for (int k = 0; k < NS; k++)
            printf("  %8.2fx", hmin[k] > 0 ? h[k] / hmin[k] : 0.0);
        printf("\n");
    }
    printf("%-10s", "min");
    for (int k = 0; k < NS; k++)
        printf("  %8.1f%%", 100.0 * hmin[k]);
    printf("\n");
    /* Where MIN's lead comes from: hits (% of all requests) split by how
     * many tokens ago the expert was last requested; the "requests" row
     * is the most any policy could hit in each column. */
    for (int k = 0; by_dist && k < NS; k++) {
        const crep_result *m = &res[CPOL_N_KINDS][k];
        printf("\nhits by reuse distance in tokens, %.0f%% pool (%% of all requests)\n%-10s", shares[k] * 100,
               "distance");
        for (int b = 0; b < CREP_NDIST; b++)
            printf("  %7s", crep_dist_name[b]);
        printf("\n%-10s", "requests");
        for (int b = 0; b < CREP_NDIST; b++)
            printf("  %6.1f%%", m->accesses ? 100.0 * (double)m->dist_accesses[b] / (double)m->accesses : 0.0);
        for (int pol = 0; pol <= CPOL_N_KINDS; pol++) {
            const crep_result *r = &res[pol][k];
            printf("\n%-10s", pol < CPOL_N_KINDS ? cpol_name(pol) : "min");
            for (int b = 0; b < CREP_NDIST; b++)
                printf("  %6.1f%%", r->accesses ? 100.0 * (double)r->dist_hits[b] / (double)r->accesses : 0.0);
        }
        printf("\n");
    }
    rtrace_free(&t);
    return 0;
}
