/* expert_src.h - where the forward pass gets routed experts from: an
 * interface with no model in it, so the pager (io/) and the forward pass
 * (src/) meet here without either including the other.
 * Owns: the expert_src type only. */
#ifndef MS_EXPERT_SRC_H
#define MS_EXPERT_SRC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* acquire() makes experts ids[0..n) of layer il readable and returns
 * pointers to their gate/up/down matrices; the pointers stay valid until
 * release(il).  Errors: negative errno with a message in err.  One thread
 * drives an expert_src.  A NULL expert_src (in fwd_opts) means the model's
 * resident copies. */
typedef struct expert_src {
    int (*acquire)(void *ud, int il, int n, const int32_t *ids, const uint8_t **gate,
                   const uint8_t **up, const uint8_t **down, char *err, size_t errlen);
    void (*release)(void *ud, int il);
    /* Optional: a guess of layer il's experts (from the current hidden state)
     * so reads can start early.  May be NULL. */
    void (*prefetch)(void *ud, int il, int n, const int32_t *ids);
    void *ud;
    /* Optional: makes expert i of the last acquire readable.  block=false:
     * returns 1 if it is not ready yet.  0 ready, <0 error (message). */
    int (*wait)(void *ud, int il, int i, bool block, char *err, size_t errlen);
    int capacity; /* most experts one acquire may pin; 0 = unlimited */
    /* The matrices come in the repacked layout (simd/repack.h) wherever the
     * model's expert weight says so (model.h rp_mat_bytes): stored so in a
     * file of `moestream repack`, or converted by the layout's transform
     * (pager.h). */
    bool repacked;
    /* Optional (benchmarks): sets mask[e] (n_expert bytes) to 1 for layer
     * il's experts whose bytes are in memory now (no read needed, none in
     * flight), 0 for the others; returns how many.  May be NULL. */
    int (*cached)(void *ud, int il, uint8_t *mask);
} expert_src;

#endif
