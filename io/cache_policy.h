/* cache_policy.h - which cached expert to evict: a small interface so
 * policies can be compared by replaying routing traces (cmd_replay.c) and
 * swapped in the pager.
 * Policies: LRU; LFU with exponential decay (frequency-aware: an expert used
 * often recently outlives one used once).  Slots are integers [0, n).
 * Owns: cpol_* only.  One thread. */
#ifndef MS_CACHE_POLICY_H
#define MS_CACHE_POLICY_H

#include <stdbool.h>
#include <stdint.h>

enum cpol_kind { CPOL_LRU = 0, CPOL_LFU = 1 };

typedef struct cpol {
    int kind;
    int n;          /* slots */
    uint64_t tick;  /* advanced by cpol_tick (one per token per layer) */
    uint64_t *last; /* last use tick */
    double *score;  /* LFU: decayed use count */
    double decay;   /* LFU: per-tick multiplier of old counts */
} cpol;

int cpol_init(cpol *p, int kind, int n_slots);
void cpol_free(cpol *p);
int cpol_parse(const char *name); /* "lru" | "lfu"; -1 if unknown */
const char *cpol_name(int kind);
void cpol_tick(cpol *p);
/* A slot was used (hit or freshly filled). */
void cpol_touch(cpol *p, int slot);
/* The slot to evict among those with busy[slot] == false; -1 if none. */
int cpol_victim(const cpol *p, const bool *busy);

#endif
