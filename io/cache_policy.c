/* cache_policy.c - see cache_policy.h.
 * LFU scores are stored as count * g^-tick (g = 1/decay) so a touch is O(1):
 * adding g^-tick now weighs as 1 and older touches fade by decay per tick;
 * comparing scores compares decayed counts.  Rescaled before overflow. */
#include "cache_policy.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

int cpol_parse(const char *name)
{
    if (!strcmp(name, "lru"))
        return CPOL_LRU;
    if (!strcmp(name, "lfu"))
        return CPOL_LFU;
    return -1;
}

const char *cpol_name(int kind) { return kind == CPOL_LFU ? "lfu" : "lru"; }

int cpol_init(cpol *p, int kind, int n)
{
    memset(p, 0, sizeof *p);
    p->kind = kind;
    p->n = n;
    p->decay = 0.995;
    p->last = calloc((size_t)(n > 0 ? n : 1), sizeof *p->last);
    p->score = calloc((size_t)(n > 0 ? n : 1), sizeof *p->score);
    return p->last && p->score ? 0 : -ENOMEM;
}

void cpol_free(cpol *p)
{
    free(p->last);
    free(p->score);
    memset(p, 0, sizeof *p);
}

void cpol_tick(cpol *p) { p->tick++; }

void cpol_touch(cpol *p, int s)
{
    p->last[s] = p->tick;
    if (p->kind == CPOL_LFU) {
        double w = pow(1.0 / p->decay, (double)p->tick);
        if (w > 1e200) { /* rescale everything to the current tick */
            for (int i = 0; i < p->n; i++)
                p->score[i] /= w;
            w = 1.0;
            p->tick = 0;
            for (int i = 0; i < p->n; i++)
                p->last[i] = 0;
        }
        p->score[s] += w;
    }
}

int cpol_victim(const cpol *p, const bool *busy)
{
    int best = -1;
    for (int i = 0; i < p->n; i++) {
        if (busy && busy[i])
            continue;
        if (best < 0) {
            best = i;
            continue;
        }
        bool better = p->kind == CPOL_LFU
                          ? (p->score[i] < p->score[best] ||
                             (p->score[i] == p->score[best] && p->last[i] < p->last[best]))
                          : p->last[i] < p->last[best];
        if (better)
            best = i;
    }
    return best;
}
