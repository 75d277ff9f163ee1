/* cache_policy.h - which cached expert to evict: a small interface so
 * policies can be compared by replaying routing traces (cmd_replay.c) and
 * swapped in the pager.
 *
 * Policies:
 *  - LRU: evict the slot used longest ago.
 *  - LFU: frequency-aware with exponential decay.  The frequency belongs to
 *    the key (layer * n_expert + expert), not to the slot, and counts every
 *    request of the key, cached or not: an expert that comes back often is
 *    kept even while the pool is smaller than one token's working set,
 *    where LRU degrades to FIFO and hits nothing (replay: bench/RESULTS.md).
 *    A freshly read cold expert is the next victim.  Ties go to LRU.
 *    Slots used within the last `window` ticks (one token: window = the
 *    number of MoE layers) are evicted only when nothing older is left, so
 *    the previous token's experts stay as under LRU; among the older ones
 *    the least frequent goes.
 *  - REUSE: evict the expert expected to be requested again the latest,
 *    an online stand-in for Belady's MIN.  Each key keeps two moving
 *    averages of "picked on a visit of its layer" (slow: popularity, fast:
 *    the current streak); p = the larger.  Its layer comes round in d layer
 *    steps and then every n_layers, so the expected wait is
 *    d + n_layers * (1 - p) / p; the largest goes, a never-picked key
 *    first.  Needs the layer of each tick (cpol_tick).
 *  - LEARN (the default): REUSE's expected wait, with p learned online
 *    instead of assumed: each visit of a layer records, for each of its
 *    experts, its state when the visit began (visits since it was last
 *    picked, bucketed; its slow average, bucketed log-scale) and whether
 *    it was picked.  The per-layer, per-state pick rate is p (pulled toward
 *    the key's own average while a state has few visits).  What MIN keeps
 *    is mostly experts picked again at the next token or the one after;
 *    which of them will be depends on the layer and on the streak in ways
 *    that a fixed formula misses (bench/RESULTS.md, issue 18).  O(n_expert)
 *    per tick, O(1) per access, a scan of the slots per victim (as REUSE).
 * Empty slots are always taken first.  Slots are integers [0, n), keys
 * [0, n_keys).
 * Owns: cpol_* only.  Memory is allocated once in cpol_init.  One thread. */
#ifndef MS_CACHE_POLICY_H
#define MS_CACHE_POLICY_H

#include <stdbool.h>
#include <stdint.h>

enum cpol_kind { CPOL_LRU = 0, CPOL_LFU = 1, CPOL_REUSE = 2, CPOL_LEARN = 3 };
#define CPOL_N_KINDS 4

typedef struct cpol {
    int kind;
    int n;          /* slots */
    int n_keys;
    uint64_t tick;  /* advanced by cpol_tick (once per layer acquire) */
    uint64_t *last; /* (n) slot -> tick of last use */
    int32_t *key;   /* (n) slot -> key held, -1 = empty */
    double *freq;   /* (n_keys) LFU: decayed request count, stored times scale */
    double scale;   /* LFU: weight of a request made now (1/decay per tick) */
    double decay;   /* LFU: per-tick multiplier of old counts */
    int window;     /* LFU: slots used in the last `window` ticks go last */
    /* REUSE */
    int n_layers, n_expert; /* keys are layer * n_expert + expert */
    int cur;        /* layer of the current tick */
    double *ps, *pf;      /* (n_keys) slow and fast reuse averages, stored times lscale */
    double *ls, *lf;      /* (n_layers) per-layer scales of ps and pf */
    /* LEARN */
    uint32_t *vis;        /* (n_layers) visits of layer l so far */
    uint32_t *lastv;      /* (n_keys) vis of its layer when last picked, 0 = never */
    uint8_t *cell;        /* (n_keys) its state when its layer's visit began */
    double *tcnt, *tpos;  /* (n_layers * LEARN_CELLS) outcomes seen per state: visits, picks */
} cpol;

/* Keys are layer * n_expert + expert, layers [0, n_layers).  window: ticks
 * per token (MoE layers), see above.  0 or -ENOMEM (everything is freed
 * again on failure). */
int cpol_init(cpol *p, int kind, int n_slots, int n_layers, int n_expert, int window);
void cpol_free(cpol *p); /* accepts a zeroed cpol */
int cpol_parse(const char *name); /* "lru" | "lfu" | "reuse" | "learn"; -1 if unknown */
const char *cpol_name(int kind);
/* A new layer step: layer `layer`'s experts are about to be requested. */
void cpol_tick(cpol *p, int layer);
/* key was requested and is (now) held in slot: a hit, or a miss just
 * filled into slot. */
void cpol_access(cpol *p, int slot, int32_t key);
/* slot now holds key on a guess (prefetch): recent, but no request counted. */
void cpol_fill(cpol *p, int slot, int32_t key);
/* slot no longer holds anything (failed read). */
void cpol_drop(cpol *p, int slot);
/* The policy's popularity estimate of key (LFU: decayed request count,
 * REUSE, LEARN: the slow pick rate per visit; LRU: 0), for saving a warm start. */
double cpol_score(const cpol *p, int32_t key);
/* Sets key's popularity to a score from cpol_score of the same kind. */
void cpol_seed(cpol *p, int32_t key, double score);
/* The slot to evict among those with busy[slot] == false (busy may be
 * NULL); -1 if none. */
int cpol_victim(const cpol *p, const bool *busy);

#endif
