/* generate.h - one generation: evaluate a prompt, then sample token by token,
 * streaming text through a callback as complete UTF-8, with R1 reasoning
 * (up to </think>) marked, stop strings held back until they cannot match,
 * a token limit, and cancellation between tokens.
 * Owns: gen_* only; borrows model, tokenizer and forward state.
 * Used by every front end (run, chat, batch, serve). */
#ifndef MS_GENERATE_H
#define MS_GENERATE_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "forward.h"
#include "model.h"
#include "sampler.h"
#include "tokenizer.h"

typedef struct gen_opts {
    int n_predict;            /* max new tokens; <= 0: until EOS or context end */
    const char *const *stop;  /* stop strings (not emitted) */
    int n_stop;
    sampler_params sp;
    bool reasoning;           /* the prompt opened <think>: text is reasoning until </think> */
} gen_opts;

/* Called with each piece of visible text.  Returns 0 to go on, > 0 to stop
 * (finish "cancelled"), or a negative errno when it failed (out of memory
 * collecting the text, say): gen_run then stops and returns that error. */
typedef int (*gen_text_fn)(void *ud, const char *text, size_t n, bool reasoning);
/* Called with each generated token id (before its text), may be NULL. */
typedef void (*gen_token_fn)(void *ud, int32_t id);

typedef struct gen_result {
    int n_prompt, n_gen;
    double t_prompt_s, t_gen_s;
    uint64_t seed;
    const char *finish; /* "stop" (EOS or stop string), "length", "cancelled" */
} gen_result;

void gen_opts_default(gen_opts *o);

/* Appends prompt[0..n) to st (which may already hold a prefix) and
 * generates.  cancel (may be NULL) is polled between tokens.  Returns 0
 * (see res->finish) or -errno with a message (context full, I/O error,
 * -ENOMEM, or the text callback's error). */
int gen_run(const model *m, const tok_vocab *v, fwd_state *st, const int32_t *prompt, size_t n,
            const gen_opts *o, gen_text_fn on_text, gen_token_fn on_token, void *ud,
            volatile sig_atomic_t *cancel, gen_result *res, char *err, size_t errlen);

#endif
