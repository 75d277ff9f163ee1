/* moestream.h - the public API of libmoestream: load a DeepSeek-V3/R1
 * (deepseek2) GGUF model under a memory budget, keep one or more sequences
 * (sessions) with their caches, evaluate tokens, generate text.
 *
 * C11.  Every type is opaque or a plain struct of numbers and strings;
 * nothing of the engine's internals is visible here.  Only ms_* symbols are
 * exported by the shared library.
 *
 * Errors: fallible functions return 0 or a negative errno and write a
 * NUL-terminated message (what, where, expected vs got) to err[0..errlen)
 * when err is not NULL:
 *   -EINVAL  bad argument or option, token id out of range
 *   -EBADMSG malformed or unsupported model file     -ENOTSUP unsupported
 *   -ENOMEM  over the memory budget (the message names what would fit)
 *   -E2BIG   context full                            -EBUSY   max sequences open
 *   -EIO     expert read failed                      -ECANCELED cancelled
 * Memory returned by the library (token arrays, strings) is released with
 * ms_free.
 *
 * Threads: an ms_engine and its sessions are driven by one thread at a
 * time (the caller serializes); the engine spreads each evaluation over its
 * own thread pool.  Functions on a closed or NULL object are not allowed
 * unless stated. */
#ifndef MOESTREAM_H
#define MOESTREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define MS_API __attribute__((visibility("default")))
#else
#define MS_API
#endif

#define MS_VERSION_MAJOR 0
#define MS_VERSION_MINOR 1
/* "0.1" */
MS_API const char *ms_version(void);

/* Releases memory the library handed out (accepts NULL). */
MS_API void ms_free(void *p);

/* ---- engine options ---- */

enum ms_load_mode { MS_LOAD_AUTO = 0, MS_LOAD_RAM, MS_LOAD_PAGER, MS_LOAD_MMAP };
enum ms_cache_type { MS_CACHE_F32 = 0, MS_CACHE_F16 = 1, MS_CACHE_Q8_0 = 2, MS_CACHE_Q4_0 = 3 };
/* REUSE: evicts the expert whose last uses are furthest apart (issue 18's
 * replay policy); LFU stays the default (bench/RESULTS.md). */
enum ms_cache_policy { MS_POLICY_LRU = 0, MS_POLICY_LFU = 1, MS_POLICY_REUSE = 2, MS_POLICY_LEARN = 3 };
/* Attention of legacy attn_kv_b files: auto takes the decompressed (mha)
 * form, exact against the reference, when its cache for all sequences is
 * at most 1/16 of the budget; else the absorbed latent form (always for
 * DeepSeek-R1 itself). */
/* FLASH: as AUTO, and where the decompressed form is chosen it computes
 * with the reference's CPU flash-attention arithmetic (F16 K/V, online
 * softmax; llama.cpp's default, so the numbers llama-perplexity and
 * llama-imatrix print with their defaults). */
enum ms_attn { MS_ATTN_AUTO = 0, MS_ATTN_ABSORBED, MS_ATTN_MHA, MS_ATTN_FLASH };

/* Called while resident weights load: bytes done of total. */
typedef void (*ms_progress_fn)(void *ud, uint64_t done, uint64_t total);

typedef struct ms_engine_opts {
    uint64_t mem;          /* the whole process's memory budget, bytes (default 20 GiB) */
    int threads;           /* worker threads; 0 = one per physical core */
    int load_mode;         /* enum ms_load_mode: where routed experts live */
    int cache_experts;     /* cap the expert pool at N experts (0 = what fits; implies pager) */
    int cache_policy;      /* enum ms_cache_policy of the expert pool (default LEARN) */
    bool mlock;            /* lock the expert pool in RAM */
    bool prefetch;         /* read the next layer's predicted experts ahead (default on) */
    /* Warm start: the pool reads the experts this file says are hottest in
     * the background while the first prompt runs; written back at close.
     * NULL: none.  Paged models only. */
    const char *cache_state;
    /* RAM-resident IQ1_S/IQ1_M experts in the 16-row repacked layout
     * (and, unless "off", resident Q4_K matrices in Q4_K's 16-row layout):
     * "auto" (where a start-up measurement finds it faster), "on", "off";
     * NULL: MOESTREAM_REPACK, else auto.  Process-wide: the last engine
     * opened sets it. */
    const char *repack;
    int max_seqs;          /* sessions open at once; each has its own cache (default 1) */
    int n_ctx;             /* positions per sequence (default 4096) */
    int n_batch;           /* prompt tokens per evaluation chunk (default 64) */
    int cache_type;        /* enum ms_cache_type of the latent cache (default f32) */
    int attn;              /* enum ms_attn */
    /* Routing groups: -1 as the file says, -2 auto (the file's keys or
     * DeepSeek-V3's 8:4), 0 plain top-k, G > 0 with expert_groups_used K. */
    int expert_groups;
    int expert_groups_used;
    bool need_tokenizer;   /* fail if the file has no tokenizer (default true) */
    const char *trace_routing;      /* write "layer pos id ..." per token per MoE layer to this file */
    uint64_t bench_uniform_routing; /* benchmarks only: seed of uniformly random routing (changes results) */
    const char *bench_routing_trace; /* benchmarks only: experts from a recorded trace (a
                                      * trace_routing file or an ESFT log directory) */
    bool bench_pool_routing; /* benchmarks only: top-k among the experts already in the pool
                              * once a layer has that many (no reads: the compute-only
                              * bound); changes results */
    bool verbose;          /* report kernels, threads and the memory plan on stderr */
    ms_progress_fn on_load;
    void *load_ud;
} ms_engine_opts;

MS_API void ms_engine_opts_default(ms_engine_opts *o);

/* ---- model file: metadata, tensors, plan (no weights read) ---- */

enum ms_meta_kind { MS_META_UINT = 0, MS_META_INT, MS_META_FLOAT, MS_META_BOOL, MS_META_STRING,
                    MS_META_ARRAY };

/* One metadata entry; strings borrowed from the file object. */
typedef struct ms_meta {
    const char *key;
    int kind;              /* enum ms_meta_kind */
    const char *type_name; /* GGUF type: "u32", "f32", "str", "arr", ... */
    uint64_t u;            /* MS_META_UINT, MS_META_BOOL */
    int64_t i;             /* MS_META_INT */
    double f;              /* MS_META_FLOAT */
    const char *str;       /* MS_META_STRING: str_len bytes (NUL-terminated) */
    size_t str_len;
    const char *array_type; /* MS_META_ARRAY: element type name and count */
    uint64_t array_n;
} ms_meta;

typedef struct ms_tensor {
    const char *name;      /* borrowed */
    const char *type_name; /* "Q4_K", "IQ1_S", "F32", ... */
    int type;              /* GGUF type id */
    int n_dims;
    int64_t ne[4];
    uint64_t nbytes;
    bool routed_expert;    /* a *_exps tensor: paged or resident by the plan */
    const char *plain_type_name; /* moestream's repacked types ("IQ1_S_R16", ids 1000
                                    and up): the type it holds ("IQ1_S"); else NULL */
} ms_tensor;

/* Hyperparameters of a bound model (what `inspect` shows). */
typedef struct ms_model_info {
    uint32_t n_vocab, n_embd, n_layer, n_dense_lead, n_head, n_ff, n_ff_exp;
    uint32_t n_expert, n_expert_used, n_expert_shared, n_group, n_group_used;
    uint32_t q_lora, kv_lora, qk_nope, qk_rope, v_head, n_ctx_train;
    bool split_attention;  /* attn_k_b/attn_v_b (else legacy attn_kv_b) */
    uint64_t expert_bytes, resident_bytes;
} ms_model_info;

/* The memory plan: budget = resident + scratch + kv (all sequences) +
 * slack + experts (in RAM) or pool (paged); mmap leaves experts to the
 * page cache.  The engine allocates exactly these sizes. */
typedef struct ms_mem_plan {
    uint64_t budget;
    uint64_t resident;     /* non-expert weights */
    uint64_t scratch;      /* evaluation scratch for -b, shared by the sequences (per thread parts included) */
    uint64_t kv_per_seq;   /* one sequence's cache at n_ctx, with its token list and logits */
    uint64_t kv;           /* max_seqs * kv_per_seq */
    uint64_t slack;        /* allocator, stacks, thread pool, metadata */
    uint64_t requests;     /* the front ends' request handling (bodies, tokenizing, responses) */
    uint64_t experts;      /* all routed experts in the file */
    int mode;              /* enum ms_load_mode, resolved (never AUTO) */
    int n_slots;           /* pager: experts the pool holds */
    uint64_t slot_bytes;
    uint64_t pool;         /* n_slots * slot_bytes */
    int n_moe_layers, n_expert;
    int max_seqs, n_ctx, n_batch, threads;
    bool attn_mha;         /* decompressed attention chosen */
} ms_mem_plan;

typedef struct ms_file ms_file;

/* Opens the GGUF header (part 1 of a split set is enough) without reading
 * weights.  A file without tensors (a vocabulary) opens too. */
MS_API int ms_file_open(ms_file **out, const char *path, char *err, size_t errlen);
MS_API void ms_file_close(ms_file *f); /* accepts NULL */
MS_API int ms_file_n_parts(const ms_file *f);
/* K when the file is a synthetic benchmark model whose MoE layers share
 * the routed-expert bytes of K layers cyclically (`synth --expert-layers`;
 * the key moestream.synthetic.shared_layers, its pattern checked at open);
 * 0 for any other file. */
MS_API int ms_file_shared_layers(const ms_file *f);
/* The layout version of a file written by `moestream repack` (its routed
 * experts stored in moestream's repacked layout; the key
 * moestream.repack.version, checked at open); 0 for any other file. */
MS_API int ms_file_repack_version(const ms_file *f);
MS_API int ms_file_version(const ms_file *f);
MS_API size_t ms_file_n_meta(const ms_file *f);
MS_API int ms_file_meta(const ms_file *f, size_t i, ms_meta *out); /* 0 or -EINVAL */
MS_API size_t ms_file_n_tensors(const ms_file *f);
MS_API int ms_file_tensor(const ms_file *f, size_t i, ms_tensor *out);
/* Binds the tensors as a DeepSeek model (shapes and types checked, no
 * weights read) and fills its hyperparameters and, when plan is not NULL,
 * the memory plan under o.  A plan over budget fills *plan as far as known
 * and returns -ENOMEM with the message. */
MS_API int ms_file_plan(const ms_file *f, const ms_engine_opts *o, ms_model_info *info,
                        ms_mem_plan *plan, char *err, size_t errlen);

/* Human-readable one-line plan ("memory plan (--mem ...): ..."). */
MS_API void ms_plan_print(const ms_mem_plan *p, FILE *f);
/* The kernel set chosen for this CPU ("avx512", "avx2", "neon", "scalar"). */
MS_API const char *ms_kernel_isa(void);
/* Peak resident set of this process (VmHWM, plus the reserved huge pages it
 * has mapped, which VmHWM leaves out), bytes; 0 if unknown. */
MS_API uint64_t ms_peak_rss(void);

/* ---- engine ---- */

typedef struct ms_engine ms_engine;

/* Loads the model at path under the plan: resident weights, thread pool,
 * kernel table, expert pager, tokenizer, one shared evaluation scratch.
 * Sequence caches are made by ms_session_create (counted in the plan for
 * max_seqs).  -ENOMEM over budget, naming the largest max_seqs (or n_ctx)
 * that fits. */
MS_API int ms_engine_open(ms_engine **out, const char *path, const ms_engine_opts *o, char *err,
                          size_t errlen);
MS_API void ms_engine_close(ms_engine *e); /* accepts NULL; sessions must be destroyed first */

MS_API void ms_engine_plan(const ms_engine *e, ms_mem_plan *out);
MS_API void ms_engine_model_info(const ms_engine *e, ms_model_info *out);
MS_API const ms_engine_opts *ms_engine_get_opts(const ms_engine *e);
/* Threads and pinning in words. */
MS_API const char *ms_engine_describe(const ms_engine *e);

typedef struct ms_stats {
    bool paged;            /* the expert pool is in use (load mode pager) */
    uint64_t hits, misses, prefetched, prefetch_used;
    uint64_t bytes_read, read_bytes_needed;
    double stall_s, busy_s;
    int used_slots, n_slots;
    bool huge_pages;
    char io_path[160];     /* "io_uring + O_DIRECT ..." or the fallback and why */
    uint64_t peak_rss;
    uint64_t budget;
    int sessions;          /* open now */
    uint64_t converted;    /* expert matrices converted in the pool as they landed: repacked
                              (--repack on) or unpacked (a `moestream repack` file kept plain) */
    double convert_s;      /* time the pager's thread spent on that */
} ms_stats;

MS_API void ms_engine_stats(const ms_engine *e, ms_stats *out);
/* The expert cache and peak-RSS report lines. */
MS_API void ms_stats_print(const ms_stats *s, FILE *f);

/* ---- tokenizer and chat template ---- */

typedef struct ms_vocab ms_vocab;

/* The engine's vocabulary, or NULL when the file has none. Borrowed. */
MS_API const ms_vocab *ms_engine_vocab(const ms_engine *e);
/* A vocabulary alone (a vocabulary-only GGUF works). */
MS_API int ms_vocab_open(ms_vocab **out, const char *path, char *err, size_t errlen);
MS_API void ms_vocab_close(ms_vocab *v); /* accepts NULL; not for ms_engine_vocab's */

enum ms_tok_flags {
    MS_TOK_ADD_BOS = 1,       /* prepend BOS when the vocabulary asks for it */
    MS_TOK_PARSE_SPECIAL = 2, /* match control-token text like <think> */
    MS_TOK_NO_ADDED = 4,      /* no added-token matching at all */
};
/* *ids malloc'd (ms_free).  0 or -ENOMEM. */
MS_API int ms_tokenize(const ms_vocab *v, const char *text, size_t len, int flags, int32_t **ids,
                       size_t *n_ids);
/* Bytes of token id (not NUL-terminated); the length even if cap is short. */
MS_API size_t ms_token_piece(const ms_vocab *v, int32_t id, char *buf, size_t cap);
MS_API uint32_t ms_vocab_size(const ms_vocab *v);
/* Id of the token whose text is exactly text, or -1. */
MS_API int32_t ms_token_find(const ms_vocab *v, const char *text);
MS_API bool ms_token_is_eog(const ms_vocab *v, int32_t id);
MS_API int32_t ms_token_bos(const ms_vocab *v);
MS_API int32_t ms_token_eos(const ms_vocab *v);

typedef struct ms_chat_msg {
    const char *role;    /* "system", "user" or "assistant" */
    const char *content; /* UTF-8 */
} ms_chat_msg;

/* The DeepSeek-R1 chat template: token ids of the conversation and the
 * generation prompt (<｜Assistant｜>, then <think>\n when think).  *ids
 * malloc'd.  0, -EINVAL (unknown role, no R1 chat tokens) or -ENOMEM. */
MS_API int ms_chat_render(const ms_vocab *v, const ms_chat_msg *msgs, size_t n, bool think,
                          int32_t **ids, size_t *n_ids, char *err, size_t errlen);
/* Whether text of len bytes can fit n_ctx tokens, decided before any
 * tokenizing: a token covers at most the vocabulary's longest piece, so a
 * longer text cannot.  0, or -E2BIG with a message naming the sizes.
 * ms_chat_check_fits: the same for a conversation's contents. */
MS_API int ms_text_check_fits(const ms_vocab *v, size_t len, size_t n_ctx, char *err, size_t errlen);
MS_API int ms_chat_check_fits(const ms_vocab *v, const ms_chat_msg *msgs, size_t n, size_t n_ctx,
                              char *err, size_t errlen);
/* The same conversation as text; malloc'd (ms_free). */
MS_API char *ms_chat_render_text(const ms_chat_msg *msgs, size_t n, bool think);
/* s[0..n) with invalid UTF-8 replaced by U+FFFD, NUL-terminated; malloc'd. */
MS_API char *ms_utf8_sanitize(const char *s, size_t n);

/* ---- sessions ---- */

typedef struct ms_session ms_session;

/* A new empty sequence: its cache (from the plan), position and sampler.
 * -EBUSY when max_seqs sessions are open. */
MS_API int ms_session_create(ms_engine *e, ms_session **out, char *err, size_t errlen);
MS_API void ms_session_destroy(ms_session *s); /* accepts NULL; returns its cache to the engine */

MS_API int ms_session_n_past(const ms_session *s);
MS_API int ms_session_n_ctx(const ms_session *s);
/* Forgets positions >= n. */
MS_API void ms_session_truncate(ms_session *s, int n);

/* Appends tokens[0..n) at the current position and evaluates them in
 * chunks of n_batch.  logits_all (n x n_vocab) receives every position's
 * logits when not NULL; the last position's are kept (ms_session_logits).
 * -EINVAL bad id, -E2BIG context full (position unchanged on error). */
MS_API int ms_session_eval(ms_session *s, const int32_t *tokens, size_t n, float *logits_all,
                           char *err, size_t errlen);

/* Brings the cache to exactly tokens[0..n): keeps the longest common prefix
 * with what it holds, rounded down to a multiple of n_batch (so the chunks
 * evaluated are those of a cold run from position 0, and so are the
 * results), and evaluates the rest (at least the last token, for its
 * logits).  *n_evaluated (may be NULL) receives how many were evaluated. */
MS_API int ms_session_sync(ms_session *s, const int32_t *tokens, size_t n, size_t *n_evaluated,
                           char *err, size_t errlen);

/* The last evaluated position's logits (n_vocab floats), NULL before any
 * evaluation.  Valid until the next evaluation. */
MS_API const float *ms_session_logits(const ms_session *s);
MS_API uint32_t ms_session_n_vocab(const ms_session *s);

/* ---- generation ---- */

typedef struct ms_sampler_params {
    float temp;           /* <= 0: greedy (lowest id on ties); default 0.6 */
    int top_k;            /* 0: off */
    float top_p;          /* 1: off */
    float min_p;          /* 0: off; relative to the most likely token (default 0.05) */
    float repeat_penalty; /* 1: off */
    int repeat_last_n;    /* window for the three penalties */
    float presence_penalty;  /* 0: off; subtracted once from a token seen in the window */
    float frequency_penalty; /* 0: off; subtracted per occurrence in the window */
    bool ignore_eos;      /* end-of-generation tokens are never chosen */
    uint64_t seed;        /* 0: pick one (reported in ms_gen_result.seed) */
} ms_sampler_params;

MS_API void ms_sampler_params_default(ms_sampler_params *p);

typedef struct ms_gen_opts {
    int n_predict;             /* max new tokens; <= 0: until EOS or context end */
    const char *const *stop;   /* stop strings (not emitted) */
    int n_stop;
    ms_sampler_params sp;
    bool reasoning;            /* the prompt opened <think>: text is reasoning until </think> */
} ms_gen_opts;

MS_API void ms_gen_opts_default(ms_gen_opts *o);

typedef struct ms_callbacks {
    /* Each piece of visible text (complete UTF-8, stop strings held back);
     * non-zero stops generation (finish "cancelled"). */
    int (*on_text)(void *ud, const char *text, size_t n, bool reasoning);
    /* Each generated token id, before its text. */
    void (*on_token)(void *ud, int32_t id);
    /* Prompt evaluation: tokens done of total, after each chunk. */
    void (*on_progress)(void *ud, size_t done, size_t total);
    /* Polled between chunks and tokens; non-zero cancels. */
    int (*cancel)(void *ud);
    void *ud;
} ms_callbacks;

typedef struct ms_gen_result {
    int n_prompt;         /* prompt tokens */
    int n_cached;         /* of them reused from the session's cache */
    int n_gen;
    double t_prompt_s, t_gen_s;
    uint64_t seed;
    const char *finish;   /* "stop" (EOS or stop string), "length", "cancelled" */
} ms_gen_result;

/* Syncs the session to prompt[0..n) (prefix reuse as ms_session_sync),
 * then samples until EOS, a stop string, n_predict, the context end or a
 * cancel.  Afterwards the session holds the prompt and the generated
 * tokens.  cb may be NULL.  0 (see res->finish) or -errno. */
MS_API int ms_generate(ms_session *s, const int32_t *prompt, size_t n, const ms_gen_opts *o,
                       const ms_callbacks *cb, ms_gen_result *res, char *err, size_t errlen);

/* ---- continuous batching ---- */

/* A scheduler that generates for up to n_slots requests together.  Each
 * ms_batch_step evaluates the next token of every decoding generation plus
 * one n_batch chunk of a waiting prompt, in one pass over the weights: the
 * tokens are routed together and each routed expert is read and multiplied
 * once per step for all the sequences that chose it.  Generations join
 * (ms_batch_submit) and leave (their on_done) between steps.
 *
 * Deterministic: a generation's tokens are exactly those ms_generate gives
 * the same prompt and options on a fresh session, whatever else is in the
 * batch - prompt chunks are n_batch tokens from position 0 (or from a
 * reused prefix of whole chunks), and products whose float order depends
 * on the column count run per sequence.  With temperature > 0 the sampler
 * is per generation (seeded as ms_generate's).
 *
 * The batch owns n_slots sessions (made at ms_batch_create, counted against
 * max_seqs); each keeps its cache after a generation, and a new one goes to
 * the free slot holding the longest common prefix with its prompt, so a
 * shared prefix (a system prompt) is evaluated once in whole chunks.
 * Threads: one thread drives a batch (submit, step, stats, destroy);
 * callbacks run on it, inside ms_batch_step. */
typedef struct ms_batch ms_batch;

/* n_slots 1..max_seqs - open sessions (0: all that are left).  -EBUSY when
 * the engine has fewer free sequences, -ENOMEM. */
MS_API int ms_batch_create(ms_engine *e, int n_slots, ms_batch **out, char *err, size_t errlen);
/* Accepts NULL.  Generations still in it end with on_done(-ECANCELED). */
MS_API void ms_batch_destroy(ms_batch *b);

/* Called once when a generation ends: rc 0 and res (finish "stop",
 * "length" or "cancelled"), or a negative errno, res NULL and err the
 * message.  ud is the ms_callbacks' ud.  The slot is free again on return. */
typedef void (*ms_done_fn)(void *ud, int rc, const ms_gen_result *res, const char *err);

/* Queues a generation of prompt[0..n) (copied) into a free slot; it starts
 * at the next step.  o (copied; its stop strings are borrowed until
 * on_done) may be NULL for the defaults; cb (copied; may be NULL) as for
 * ms_generate, cancel polled before each step of this generation.
 * 0, -EBUSY (no free slot), -EINVAL (empty prompt), -E2BIG (prompt does
 * not fit the context), -ENOMEM. */
MS_API int ms_batch_submit(ms_batch *b, const int32_t *prompt, size_t n, const ms_gen_opts *o,
                           const ms_callbacks *cb, ms_done_fn on_done, char *err, size_t errlen);

/* Runs one step (nothing when no generation is in the batch) and returns
 * how many generations are in the batch afterwards.  A failed evaluation
 * (-EIO from the expert pool, say) ends the generations of that step with
 * on_done(rc); the others go on. */
MS_API int ms_batch_step(ms_batch *b);

typedef struct ms_batch_stats {
    int slots;             /* n_slots */
    int active;            /* generations in the batch (prompt or decoding) */
    int decoding;          /* of them past their prompt */
    int last_step_tokens;  /* tokens the last step evaluated */
    int last_step_seqs;    /* sequences in the last step */
    uint64_t steps;        /* steps run */
    uint64_t tokens;       /* tokens evaluated in them (prompt + generated) */
    uint64_t prompt_tokens; /* prompt tokens evaluated (a reused prefix is not) */
    uint64_t generated;    /* tokens sampled */
    double step_s;         /* seconds spent in steps */
} ms_batch_stats;

MS_API void ms_batch_get_stats(const ms_batch *b, ms_batch_stats *out);

#ifdef __cplusplus
}
#endif

#endif
