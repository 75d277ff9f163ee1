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

/* Reuse distance of a request: tokens since its key was last requested,
 * bucketed 1, 2, 3-4, 5-8, 9-16, 17+; the last bucket is a key's first
 * request (never a hit). */
enum { CREP_NDIST = 7 };
extern const char *const crep_dist_name[CREP_NDIST];

typedef struct crep_result {
    uint64_t hits, accesses;
    uint64_t dist_hits[CREP_NDIST], dist_accesses[CREP_NDIST]; /* the same, by reuse distance */
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
