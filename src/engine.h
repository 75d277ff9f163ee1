/* engine.h - what the public ms_engine is inside: model, tokenizer, thread
 * pool, where routed experts live (all in RAM, paged through the expert
 * pool, or mapped), decided by one memory plan under the budget; one
 * evaluation scratch shared by the sequences, and the sequence caches
 * (fwd_kv) the plan counts for max_seqs.
 * Owns: engine_* only.  Not thread-safe: one owner thread drives it. */
#ifndef MS_ENGINE_H
#define MS_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "forward.h"
#include "model.h"
#include "moestream.h"
#include "pager.h"
#include "routing_trace.h"
#include "threadpool.h"
#include "tokenizer.h"

typedef ms_mem_plan engine_plan;

/* The public vocabulary handle: the engine's (borrowed) or one opened
 * alone with its file (ms_vocab_open: owned). */
struct ms_vocab {
    const tok_vocab *v;
    gguf_file *g;
    tok_vocab *own;
};

typedef struct ms_engine engine;
struct ms_engine {
    ms_engine_opts opt;
    model *m;
    tok_vocab *v;        /* NULL if the file has no tokenizer and none was required */
    struct ms_vocab vocab; /* v as the public handle */
    tpool *tp;
    pager *pg;           /* LOAD_PAGER */
    engine_plan plan;
    FILE *trace;         /* trace_routing: "layer pos id id ..." per token per MoE layer */
    rtrace bench_trace;  /* bench_routing_trace: experts from this recording (ids NULL: none) */
    char *state_path;    /* cache_state read (or absent): written back there at close */
    fwd_opts fo;         /* what every sequence and the scratch are made with */
    fwd_state *scratch;  /* shared by the sessions, one evaluation at a time */
    fwd_kv **kv;         /* (max_seqs) caches, made on first use and reused */
    bool *kv_busy;       /* (max_seqs) held by a session */
    int n_sessions;
    bulkread_stats load_st; /* the resident weights' read */
};

/* Loads path under the memory plan.  Over budget: -ENOMEM naming the
 * smallest budget, or the largest max_seqs / n_ctx that fits. */
int engine_load(engine *e, const char *path, const ms_engine_opts *opt, char *err, size_t errlen);
void engine_close(engine *e); /* accepts a zeroed or failed engine */

/* Takes a free sequence cache (made on first use): its index, or -EBUSY
 * when max_seqs are held, -ENOMEM. */
int engine_kv_take(engine *e, fwd_kv **kv, char *err, size_t errlen);
void engine_kv_give(engine *e, fwd_kv *kv);

/* Bytes a session holds besides its cache: its token list (n_ctx) and
 * last logits (n_vocab); part of the plan's kv_per_seq. */
uint64_t engine_session_bytes(const model *m, int n_ctx);

void engine_print_plan(const engine_plan *p, FILE *f);
/* The pager's view of m's routed experts: per (layer, expert) the file
 * part, offset and length of gate, up and down (length 0 in dense layers).
 * Fills *lo with malloc'd tables; free with engine_pager_layout_free.
 * 0 or -ENOMEM. */
int engine_pager_layout(const model *m, pager_layout *lo);
void engine_pager_layout_free(pager_layout *lo); /* accepts a zeroed layout */
/* Whether m runs the decompressed (mha) attention under opt. */
bool engine_attn_mha(const model *m, const ms_engine_opts *opt);
/* The plan for model m (bound, weights need not be loaded) under opt with
 * n_threads workers (the scratch has per-thread parts).  The sizes come
 * from the same functions that allocate (fwd_scratch_bytes_needed,
 * fwd_kv_bytes_needed), so plan and allocation cannot drift. */
int engine_make_plan(const model *m, const ms_engine_opts *opt, int n_threads, engine_plan *p,
                     char *err, size_t errlen);
void engine_print_stats(const engine *e, FILE *f);
/* Peak resident set of this process (VmHWM) plus the reserved huge pages
 * it has mapped (not in VmHWM), bytes. */
uint64_t engine_peak_rss(void);

#endif
