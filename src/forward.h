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

/* The float input rows of one weight product (fwd_opts.on_matmul): row r
 * is x + (gather ? gather[r] : r) * ld, w->n_in floats, as the reference
 * hands them to its matmul (before any activation quantization). */
typedef struct fwd_mm_in {
    const mweight *w;
    int expert;            /* routed experts: the expert id; per-head weights (attn_k_b,
                            * attn_v_b): the head; else -1 */
    int n;                 /* rows */
    const float *x;
    size_t ld;             /* floats between rows */
    const int32_t *gather; /* NULL: rows consecutive */
    const int32_t *tok;    /* routed experts: row r's token (0-based in the chunk) */
    const int32_t *slot;   /* routed experts: row r's place in the token's selection */
    int n_past;            /* position of the chunk's first token */
} fwd_mm_in;

typedef struct fwd_opts {
    int n_ctx;          /* positions the cache holds (default 4096) */
    int cache_type;     /* enum fwd_cache_type (default f32) */
    int n_batch;        /* prompt tokens per chunk (default 64) */
    int n_seqs;         /* sequences one fwd_step may take (default 1): the
                         * scratch holds n_batch + n_seqs - 1 rows */
    tpool *tp;          /* borrowed; NULL = single-threaded */
    int n_threads;      /* sizing only (fwd_*_bytes_needed) when tp is NULL: the
                         * pool size the state will be made with; 0 = 1 */
    const expert_src *experts; /* borrowed; NULL = resident */
    /* Benchmarks only: when non-zero, experts are chosen uniformly at random
     * (seeded by this value, position and layer) instead of by the router,
     * the worst case for an expert cache.  Changes results. */
    uint64_t uniform_routing_seed;
    /* Benchmarks only: when non-NULL, replaces the router's choice at layer
     * il, position pos with the k ids route_pick writes to sel (distinct,
     * < n_expert; e.g. from a recorded trace, routing_trace.h).  The
     * weights stay the router's.  Changes results. */
    void (*route_pick)(void *ud, int il, int pos, int k, int32_t *sel);
    void *pick_ud;
    /* Benchmarks only (the compute-only bound): each MoE layer's top-k is
     * taken among the experts experts->cached reports in memory, so no
     * read happens, whenever at least k are (the first tokens fill the
     * pool by the router's choice); the prefetch guesses likewise.  Group
     * limits are not applied then.  No effect without an expert_src that
     * has cached().  Changes results. */
    bool pool_routing;
    /* Predict the next MoE layer's experts from the current hidden state
     * (its router on the residual before this layer's FFN) and hand them to
     * experts->prefetch so their reads start a layer early. */
    bool prefetch;
    /* Routing trace: when non-NULL, called with each token's chosen experts. */
    void (*on_route)(void *ud, int il, int pos, int n, const int32_t *ids, const float *w);
    void *route_ud;
    /* Importance matrix (imatrix_collect.h): when non-NULL, called with the
     * input rows of every weight product of the model, dense rows in token
     * order (the wkv_b latent one token at a time), routed experts once per
     * expert with its rows; not for the prefetch guess. */
    void (*on_matmul)(void *ud, const fwd_mm_in *in);
    void *matmul_ud;
    /* Legacy attn_kv_b files: decompress K and V per head into a full cache,
     * as the reference engine does for them (its layout and float order, so
     * results equal it bit for bit), instead of the absorbed latent form.
     * Memory: fwd_mha_cache_bytes(); only worth it for small models. */
    bool attn_mha;
    /* With attn_mha: the reference's CPU flash-attention arithmetic
     * (llama.cpp's default): its tiled path for chunks of 64+ tokens, its
     * row-by-row F16 path below.  Not emulated: its split-KV path for one
     * query at 512+ cached positions (long decodes). */
    bool attn_fa;
} fwd_opts;

typedef struct fwd_state fwd_state;
/* One sequence's cache (latents, roped keys, decompressed K/V in mha mode)
 * and position.  A fwd_state's scratch serves any number of these, one at
 * a time (fwd_bind), so N sequences cost N caches plus one scratch. */
typedef struct fwd_kv fwd_kv;

void fwd_opts_default(fwd_opts *o);

/* Bytes of the decompressed K/V cache attn_mha would add for m at n_ctx
 * positions (0 for split-form files, which have no such mode). */
uint64_t fwd_mha_cache_bytes(const model *m, int n_ctx);

/* Bytes of one cached latent of kv_lora elements in cache type t (enum
 * fwd_cache_type): F32 4, F16 2, Q8_0 34 and Q4_0 18 per 32. */
size_t fwd_cache_row_bytes(int t, int64_t kv_lora);

/* Allocates the cache and scratch for m (borrowed; must outlive the state):
 * a scratch with its own sequence bound. */
int fwd_create(fwd_state **out, const model *m, const fwd_opts *o, char *err, size_t errlen);
/* Scratch only: no sequence bound until fwd_bind. */
int fwd_scratch_create(fwd_state **out, const model *m, const fwd_opts *o, char *err,
                       size_t errlen);
void fwd_destroy(fwd_state *s); /* accepts NULL; destroys its own sequence, not bound ones */

/* A sequence's cache for the options o (n_ctx, cache_type, attn_mha matter). */
int fwd_kv_create(fwd_kv **out, const model *m, const fwd_opts *o, char *err, size_t errlen);
void fwd_kv_destroy(fwd_kv *kv); /* accepts NULL */
int fwd_kv_n_past(const fwd_kv *kv);
void fwd_kv_truncate(fwd_kv *kv, int n);
size_t fwd_kv_bytes(const fwd_kv *kv);
/* Makes kv the sequence fwd_eval extends (NULL: none).  -EINVAL when kv
 * was made for another model or other cache options.
 * One scratch, N caches from the plan; fwd_step evaluates several at
 * once. */
int fwd_bind(fwd_state *s, fwd_kv *kv);

/* Evaluates tokens tok[0..n) at positions n_past.. and advances n_past.
 * logits_all (n x n_vocab floats) receives every position's logits if
 * non-NULL; logits_last (n_vocab) the last position's if non-NULL.
 * Errors: -EINVAL bad token id, -E2BIG context full, -EIO/-ECANCELED from
 * the expert source.  On error n_past is unchanged. */
int fwd_eval(fwd_state *s, const int32_t *tok, int n, float *logits_all, float *logits_last,
             char *err, size_t errlen);

/* Sets on_matmul/matmul_ud of a made state (e.g. the engine's scratch). */
void fwd_set_matmul_hook(fwd_state *s, void (*fn)(void *ud, const fwd_mm_in *in), void *ud);

/* One sequence's part of a step: n (1..n_batch) tokens appended to kv at
 * its position; logits (n_vocab floats) receives the last one's logits
 * when not NULL. */
typedef struct fwd_seq {
    fwd_kv *kv;
    const int32_t *tok;
    int n;
    float *logits;
} fwd_seq;

/* Evaluates several sequences together (continuous batching): their
 * tokens are routed together, so each routed expert is read and multiplied
 * once for all the sequences choosing it.  Each sequence's results equal
 * those of evaluating its tokens alone with fwd_eval (same chunk): the
 * products whose float order depends on the column count
 * (quant_order_by_cols: F32/F16/BF16 tinyBLAS, Q4_K/Q2_K gemm) run per
 * sequence, with its columns as one call; every other product, the
 * experts included, takes all the step's columns at once, since its
 * per-column order does not depend on the other columns.  Attention runs
 * per sequence on its own cache and positions.
 * Limits: n_seqs <= fwd_opts.n_seqs, distinct caches, total tokens <=
 * fwd_max_rows.  -EINVAL bad argument or token, -E2BIG a context full
 * (nothing evaluated), -EIO/-ECANCELED from the expert source (no
 * position advanced).  The bound sequence (fwd_bind) stays bound. */
int fwd_step(fwd_state *s, const fwd_seq *seqs, int n_seqs, char *err, size_t errlen);
/* Tokens one fwd_step may take in all: n_batch + n_seqs - 1. */
int fwd_max_rows(const fwd_state *s);

int fwd_n_past(const fwd_state *s);
/* Forgets positions >= n (n <= n_past) of the bound sequence, e.g. to
 * reuse a shared prefix. */
void fwd_truncate(fwd_state *s, int n);
int fwd_n_ctx(const fwd_state *s);
int fwd_n_batch(const fwd_state *s); /* after clamping to the context */
/* Bytes of scratch + own cache this state allocated. */
size_t fwd_bytes(const fwd_state *s);
/* Bytes fwd_create would allocate for these options: scratch + one cache.
 * The same sizing functions as the allocation (counted in the 64-byte
 * rounded sizes aligned_alloc is asked for), for the memory plan. */
size_t fwd_bytes_needed(const model *m, const fwd_opts *o);
size_t fwd_scratch_bytes_needed(const model *m, const fwd_opts *o);
size_t fwd_kv_bytes_needed(const model *m, const fwd_opts *o);

#endif
