/* cache_replay.c - see cache_replay.h.
 * Both replays walk the trace one layer step at a time: hits first (pinned),
 * then each miss takes a victim among the unpinned slots.  MIN's victim is
 * the slot whose key is next used farthest ahead (never again = infinity),
 * found by a scan of the slots: O(slots) per miss, a few seconds at most on
 * the ESFT traces' 1.3 M accesses. */
#include "cache_replay.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "cache_policy.h"

static int32_t id_at(const crep_trace *t, int tok, int l, int k)
{
    return t->ids[((size_t)tok * (size_t)t->n_layers + (size_t)l) * (size_t)t->topk + (size_t)k];
}

const char *const crep_dist_name[CREP_NDIST] = {"1", "2", "3-4", "5-8", "9-16", "17+", "first"};

typedef struct sim {
    int slots;
    size_t keys;
    int32_t *slot_of; /* key -> slot or -1 */
    int32_t *key_of;  /* slot -> key or -1 */
    bool *busy;       /* slot pinned by the current step */
    int32_t *cur;     /* slots pinned by the current step */
    int64_t *last;    /* key -> token of its last request, -1 = none */
} sim;

/* Counts one request of key at token tok by its reuse distance. */
static void sim_count(sim *s, crep_result *r, int32_t key, int64_t tok, int hit)
{
    int b = CREP_NDIST - 1;
    if (s->last[key] >= 0) {
        int64_t g = tok - s->last[key];
        b = g <= 1 ? 0 : g <= 2 ? 1 : g <= 4 ? 2 : g <= 8 ? 3 : g <= 16 ? 4 : 5;
    }
    s->last[key] = tok;
    r->dist_accesses[b]++;
    r->dist_hits[b] += (uint64_t)hit;
}

static void sim_free(sim *s)
{
    free(s->slot_of);
    free(s->key_of);
    free(s->busy);
    free(s->cur);
    free(s->last);
}

static int sim_init(sim *s, const crep_trace *t, int slots)
{
    s->slots = slots;
    s->keys = (size_t)t->n_layers * (size_t)t->n_expert;
    s->slot_of = malloc((s->keys ? s->keys : 1) * sizeof *s->slot_of);
    s->key_of = malloc((size_t)(slots > 0 ? slots : 1) * sizeof *s->key_of);
    s->busy = calloc((size_t)(slots > 0 ? slots : 1), sizeof *s->busy);
    s->cur = malloc((size_t)(t->topk > 0 ? t->topk : 1) * sizeof *s->cur);
    s->last = malloc((s->keys ? s->keys : 1) * sizeof *s->last);
    if (!s->slot_of || !s->key_of || !s->busy || !s->cur || !s->last) {
        sim_free(s);
        return -ENOMEM;
    }
    for (size_t k = 0; k < s->keys; k++) {
        s->slot_of[k] = -1;
        s->last[k] = -1;
    }
    for (int i = 0; i < slots; i++)
        s->key_of[i] = -1;
    return 0;
}

static void sim_place(sim *s, int slot, int32_t key)
{
    if (s->key_of[slot] >= 0)
        s->slot_of[s->key_of[slot]] = -1;
    s->key_of[slot] = key;
    s->slot_of[key] = slot;
}

int crep_policy(const crep_trace *t, int kind, int slots, crep_result *r)
{
    memset(r, 0, sizeof *r);
    sim s;
    cpol p;
    if (sim_init(&s, t, slots))
        return -ENOMEM;
    if (cpol_init(&p, kind, slots, t->n_layers, t->n_expert, t->n_layers)) {
        sim_free(&s);
        return -ENOMEM;
    }
    for (int tok = 0; tok < t->n_tok; tok++)
        for (int l = 0; l < t->n_layers; l++) {
            cpol_tick(&p, l);
            int nc = 0;
            for (int pass = 0; pass < 2; pass++)
                for (int k = 0; k < t->topk; k++) {
                    int32_t e = id_at(t, tok, l, k);
                    if (e < 0)
                        continue;
                    int32_t key = (int32_t)l * t->n_expert + e;
                    int sl = s.slot_of[key];
                    if (pass == 0) { /* hits, pinned before any victim is chosen */
                        r->accesses++;
                        sim_count(&s, r, key, tok, sl >= 0 && !s.busy[sl]);
                        if (sl < 0 || s.busy[sl])
                            continue;
                        r->hits++;
                    } else {
                        if (sl >= 0)
                            continue; /* a hit, or a repeat of this step's miss */
                        sl = cpol_victim(&p, s.busy);
                        if (sl < 0)
                            continue; /* the pool is smaller than the step */
                        sim_place(&s, sl, key);
                    }
                    cpol_access(&p, sl, key);
                    s.busy[sl] = true;
                    s.cur[nc++] = sl;
                }
            for (int i = 0; i < nc; i++)
                s.busy[s.cur[i]] = false;
        }
    cpol_free(&p);
    sim_free(&s);
    return 0;
}

int crep_min(const crep_trace *t, int slots, crep_result *r)
{
    memset(r, 0, sizeof *r);
    const size_t n = (size_t)t->n_tok * (size_t)t->n_layers * (size_t)t->topk;
    sim s;
    if (sim_init(&s, t, slots))
        return -ENOMEM;
    uint64_t *next = malloc((n ? n : 1) * sizeof *next);    /* access -> next access of its key */
    uint64_t *seen = malloc((s.keys ? s.keys : 1) * sizeof *seen);
    uint64_t *nxt_of = malloc((size_t)(slots > 0 ? slots : 1) * sizeof *nxt_of); /* slot -> next use */
    if (!next || !seen || !nxt_of) {
        free(next);
        free(seen);
        free(nxt_of);
        sim_free(&s);
        return -ENOMEM;
    }
    /* Accesses are numbered in replay order; a step's accesses share its
     * number range, so "next use" compares steps correctly. */
    for (size_t k = 0; k < s.keys; k++)
        seen[k] = UINT64_MAX;
    for (size_t i = n; i-- > 0;) {
        int32_t e = t->ids[i];
        if (e < 0)
            continue;
        size_t key = (i / (size_t)t->topk % (size_t)t->n_layers) * (size_t)t->n_expert + (size_t)e;
        next[i] = seen[key];
        seen[key] = i;
    }
    for (size_t step = 0; step < n / (size_t)t->topk; step++) {
        const int l = (int)(step % (size_t)t->n_layers);
        int nc = 0;
        for (int pass = 0; pass < 2; pass++)
            for (int k = 0; k < t->topk; k++) {
                size_t i = step * (size_t)t->topk + (size_t)k;
                int32_t e = t->ids[i];
                if (e < 0)
                    continue;
                int32_t key = (int32_t)l * t->n_expert + e;
                int sl = s.slot_of[key];
                if (pass == 0) {
                    r->accesses++;
                    sim_count(&s, r, key, (int64_t)(step / (size_t)t->n_layers), sl >= 0 && !s.busy[sl]);
                    if (sl < 0 || s.busy[sl])
                        continue;
                    r->hits++;
                } else {
                    if (sl >= 0) {
                        if (s.busy[sl])
                            nxt_of[sl] = next[i] > nxt_of[sl] ? next[i] : nxt_of[sl];
                        continue;
                    }
                    sl = -1;
                    for (int j = 0; j < slots; j++) {
                        if (s.busy[j])
                            continue;
                        if (s.key_of[j] < 0) {
                            sl = j;
                            break;
                        }
                        if (sl < 0 || nxt_of[j] > nxt_of[sl])
                            sl = j;
                    }
                    if (sl < 0)
                        continue;
                    sim_place(&s, sl, key);
                }
                nxt_of[sl] = next[i];
                s.busy[sl] = true;
                s.cur[nc++] = sl;
            }
        for (int i = 0; i < nc; i++)
            s.busy[s.cur[i]] = false;
    }
    free(next);
    free(seen);
    free(nxt_of);
    sim_free(&s);
    return 0;
}
