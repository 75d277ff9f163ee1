/* forward.h - the deepseek2 forward pass for one sequence.
 *
 * Owns: the latent KV cache (kv_lora + rope dims per token per layer: the
 * absorbed MLA form), per-session scratch sized once at creation, and the
 * per-layer computation (attention in attention.c style sections, dense FFN,
 * MoE routing and expert products).  Prompt tokens are processed as a batch
 * (chunks of n_batch); decode is a batch of one.
 * Does not own: the model weights (borrowed), where routed experts come from
 * (an expert_src, resident by default), sampling, tokens as text.
 * Thread safety: one fwd_state per sequence, driven by one thread; work is
 * spread over the thread pool it is given. */
#ifndef MS_FORWARD_H
#define MS_FORWARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "expert_src.h"
#include "model.h"
#include "threadpool.h"

enum fwd_cache_type { FWD_CACHE_F32 = 0, FWD_CACHE_F16 = 1, FWD_CACHE_Q8_0 = 2, FWD_CACHE_Q4_0 = 3 };

typedef struct fwd_opts {
    int n_ctx;          /* positions the cache holds (default 4096) */
    int cache_type;     /* enum fwd_cache_type (default f32) */
    int n_batch;        /* prompt tokens per chunk (default 64) */
    tpool *tp;          /* borrowed; NULL = single-threaded */
    const expert_src *experts; /* borrowed; NULL = resident */
    /* Benchmarks only: when non-zero, experts are chosen uniformly at random
     * (seeded by this value, position and layer) instead of by the router,
     * the worst case for an expert cache.  Changes results. */
    uint64_t uniform_routing_seed;
    /* Predict the next MoE layer's experts from the current hidden state
     * (its router on the residual before this layer's FFN) and hand them to
     * experts->prefetch so their reads start a layer early. */
    bool prefetch;
    /* Routing trace: when non-NULL, called with each token's chosen experts. */
    void (*on_route)(void *ud, int il, int pos, int n, const int32_t *ids, const float *w);
    void *route_ud;
    /* Legacy attn_kv_b files: decompress K and V per head into a full cache,
     * as the reference engine does for them (its layout and float order, so
     * results equal it bit for bit), instead of the absorbed latent form.
     * Memory: fwd_mha_cache_bytes(); only worth it for small models. */
    bool attn_mha;
} fwd_opts;

typedef struct fwd_state fwd_state;

void fwd_opts_default(fwd_opts *o);

/* Bytes of the decompressed K/V cache attn_mha would add for m at n_ctx
 * positions (0 for split-form files, which have no such mode). */
uint64_t fwd_mha_cache_bytes(const model *m, int n_ctx);

/* Bytes of one cached latent of kv_lora elements in cache type t (enum
 * fwd_cache_type): F32 4, F16 2, Q8_0 34 and Q4_0 18 per 32. */
size_t fwd_cache_row_bytes(int t, int64_t kv_lora);

/* Allocates the cache and scratch for m (borrowed; must outlive the state). */
int fwd_create(fwd_state **out, const model *m, const fwd_opts *o, char *err, size_t errlen);
void fwd_destroy(fwd_state *s); /* accepts NULL */

/* Evaluates tokens tok[0..n) at positions n_past.. and advances n_past.
 * logits_all (n x n_vocab floats) receives every position's logits if
 * non-NULL; logits_last (n_vocab) the last position's if non-NULL.
 * Errors: -EINVAL bad token id, -E2BIG context full, -EIO/-ECANCELED from
 * the expert source.  On error n_past is unchanged. */
int fwd_eval(fwd_state *s, const int32_t *tok, int n, float *logits_all, float *logits_last,
             char *err, size_t errlen);

int fwd_n_past(const fwd_state *s);
/* Forgets positions >= n (n <= n_past), e.g. to reuse a shared prefix. */
void fwd_truncate(fwd_state *s, int n);
int fwd_n_ctx(const fwd_state *s);
/* Bytes of cache + scratch this state allocated. */
size_t fwd_bytes(const fwd_state *s);
/* Bytes fwd_create would allocate for these options (for the memory plan). */
size_t fwd_bytes_needed(const model *m, const fwd_opts *o);

#endif
