/* cache_replay.h - replays recorded routing against the cache policies and
 * against the offline optimum (Belady's MIN: on a miss, evict the expert
 * whose next use is farthest away) under one set of rules, so their hit
 * counts compare:
 *  - tokens in order, layers in order within a token (decode order);
 *  - one pool of `slots` experts shared by all layers;
 *  - a layer's experts are pinned while it computes: its hits are taken
 *    first, as the pager does, and its misses never evict one of them or
 *    each other; a layer asking for more experts than the pool holds
 *    counts the excess as misses that are not kept.
 * Owns: crep_* only.  Pure computation on a borrowed trace; one thread. */
#ifndef MS_CACHE_REPLAY_H
#define MS_CACHE_REPLAY_H

#include <stdint.h>

typedef struct crep_trace {
    int n_tok, n_layers, topk, n_expert;
    const int32_t *ids; /* (n_tok, n_layers, topk): expert ids, -1 = none */
} crep_trace;

typedef struct crep_result {
    uint64_t hits, accesses;
} crep_result;

/* Policy `kind` (enum cpol_kind) with its default tuning.  0 or -ENOMEM. */
int crep_policy(const crep_trace *t, int kind, int slots, crep_result *r);
/* Belady's MIN under the same rules.  0 or -ENOMEM. */
int crep_min(const crep_trace *t, int slots, crep_result *r);
static inline double crep_rate(const crep_result *r)
{
    return r->accesses ? (double)r->hits / (double)r->accesses : 0.0;
}

#endif
