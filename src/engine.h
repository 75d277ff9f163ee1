/* engine.h - everything a front end needs loaded once: model, tokenizer,
 * thread pool; and per-conversation forward states.
 * Owns: engine_* only.  Not thread-safe: one owner thread drives it. */
#ifndef MS_ENGINE_H
#define MS_ENGINE_H

#include <stddef.h>

#include "cli.h"
#include "forward.h"
#include "model.h"
#include "threadpool.h"
#include "tokenizer.h"

typedef struct engine {
    cli_common opt;
    model *m;
    tok_vocab *v;
    tpool *tp;
} engine;

/* Loads opt->model; progress: show a bar on stderr while resident weights
 * load (when stderr is a terminal). */
int engine_open(engine *e, const cli_common *opt, bool progress, char *err, size_t errlen);
void engine_close(engine *e); /* accepts a zeroed or failed engine */
/* A new empty conversation state with the engine's context options. */
int engine_state(engine *e, fwd_state **st, char *err, size_t errlen);

#endif
