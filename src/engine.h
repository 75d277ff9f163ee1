/* engine.h - everything a front end needs loaded once: model, tokenizer,
 * thread pool, and where routed experts live (all in RAM, paged through the
 * expert pool, or mapped), decided by one memory plan under --mem; and
 * per-conversation forward states.
 * Owns: engine_* only.  Not thread-safe: one owner thread drives it. */
#ifndef MS_ENGINE_H
#define MS_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "cli.h"
#include "forward.h"
#include "model.h"
#include "pager.h"
#include "threadpool.h"
#include "tokenizer.h"

typedef struct engine_plan {
    uint64_t budget;
    uint64_t resident;   /* non-expert weights */
    uint64_t context;    /* latent cache + scratch for -c/-b */
    uint64_t slack;      /* allocator, stacks, thread pool */
    uint64_t experts;    /* all routed experts in the file */
    int mode;            /* LOAD_RAM, LOAD_PAGER or LOAD_MMAP */
    int n_slots;         /* pager: experts the pool holds */
    size_t slot_bytes;
    uint64_t pool;       /* n_slots * slot_bytes */
    int n_moe_layers, n_expert;
} engine_plan;

typedef struct engine {
    cli_common opt;
    model *m;
    tok_vocab *v;        /* NULL if the file has no tokenizer and none was required */
    tpool *tp;
    pager *pg;           /* LOAD_PAGER */
    engine_plan plan;
    FILE *trace;         /* --trace-routing: "layer pos id id ..." per token per MoE layer */
} engine;

/* Loads opt->model under the memory plan.  progress: a bar on stderr while
 * resident weights load (when stderr is a terminal).  need_tokenizer: fail
 * if the file has none.  Over budget: -ENOMEM naming the smallest budget. */
int engine_open(engine *e, const cli_common *opt, bool progress, bool need_tokenizer, char *err,
                size_t errlen);
void engine_close(engine *e); /* accepts a zeroed or failed engine */
/* A new empty conversation state with the engine's context options. */
int engine_state(engine *e, fwd_state **st, char *err, size_t errlen);
void engine_print_plan(const engine_plan *p, FILE *f);
/* Whether m runs the decompressed (mha) attention under opt->attn. */
bool engine_attn_mha(const model *m, const cli_common *opt);
/* The plan for model m (bound, weights need not be loaded) under opt. */
int engine_make_plan(const model *m, const cli_common *opt, int n_threads, engine_plan *p,
                     char *err, size_t errlen);
void engine_print_stats(const engine *e, FILE *f);
/* The pager's view of m's routed experts: per (layer, expert) the file
 * part, offset and length of gate, up and down (length 0 in dense layers).
 * Fills *lo with malloc'd tables; free with engine_pager_layout_free.
 * 0 or -ENOMEM. */
int engine_pager_layout(const model *m, pager_layout *lo);
void engine_pager_layout_free(pager_layout *lo); /* accepts a zeroed layout */
/* Peak resident set of this process (VmHWM), bytes. */
uint64_t engine_peak_rss(void);

#endif
