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
#include "strbuf.h"
#include "tokenizer.h"

/* The public struct itself (include/moestream.h): n_predict (<= 0: until
 * EOS or the context end), stop strings (not emitted), sampler params,
 * reasoning (the prompt opened <think>: text is reasoning until </think>). */
typedef ms_gen_opts gen_opts;

/* Called with each piece of visible text.  Returns 0 to go on, > 0 to stop
 * (finish "cancelled"), or a negative errno when it failed (out of memory
 * collecting the text, say): gen_run then stops and returns that error. */
typedef int (*gen_text_fn)(void *ud, const char *text, size_t n, bool reasoning);
/* Called with each generated token id (before its text), may be NULL. */
typedef void (*gen_token_fn)(void *ud, int32_t id);

typedef struct gen_result {
    int n_prompt, n_gen;
    int n_cached; /* prompt tokens already in the state, not evaluated */
    double t_prompt_s, t_gen_s;
    uint64_t seed;
    const char *finish; /* "stop" (EOS or stop string), "length", "cancelled" */
} gen_result;

void gen_opts_default(gen_opts *o);

/* Everything a generation reports to and asks of its caller; any may be
 * NULL.  cancel and cancel_flag are polled between prompt chunks and
 * between tokens. */
typedef struct gen_cb {
    gen_text_fn on_text;
    gen_token_fn on_token;
    void (*on_progress)(void *ud, size_t done, size_t total); /* prompt tokens evaluated */
    int (*cancel)(void *ud);
    volatile sig_atomic_t *cancel_flag;
    void *ud;
} gen_cb;

/* prompt[0..n) is the whole prompt; its first n_cached (< n) tokens are
 * already in st, the rest is appended (the caller keeps n_cached a multiple
 * of the batch size with n_past == n_cached, so the chunks evaluated are a
 * cold run's).  The repetition history is the whole prompt.  Returns 0 (see res->finish; a cancel during the prompt
 * finishes "cancelled" with no tokens) or -errno with a message. */
int gen_run_cb(const model *m, const tok_vocab *v, fwd_state *st, const int32_t *prompt, size_t n,
               size_t n_cached, const gen_opts *o, const gen_cb *cb, gen_result *res, char *err,
               size_t errlen);

/* ---- one generation as steps (for the scheduler, ms_batch.c) ----
 * gen_begin; the prompt's chunks evaluated by the caller (gen_cancelled
 * polled before each, gen_prompt_cancelled when it says so); then
 * gen_prompt_done and gen_next with the last position's logits, evaluating
 * the token it returns, until gen_next returns non-zero; gen_end always.
 * gen_run_cb is exactly this loop, so a stepped generation samples and
 * emits what gen_run_cb does for the same logits. */
typedef struct stopper {
    strbuf held; /* text that could still start a stop string */
    const char *const *stop;
    int n_stop;
} stopper;

typedef struct gen_state {
    const tok_vocab *v;
    const gen_opts *o;   /* borrowed until gen_end */
    const gen_cb *cb;    /* borrowed until gen_end */
    gen_result *res;     /* borrowed: filled as the generation goes */
    int n_ctx;
    int32_t *hist;       /* prompt + generated ids (repetition history) */
    size_t nh;
    sampler *smp;
    stopper sp;
    tok_stream ts;
    int32_t eog[16];     /* banned by ignore_eos */
    int n_eog;
    int32_t think_end;
    bool reasoning;
    double t0;
    char piece[1024];
} gen_state;

/* n_cached: prompt tokens already in the sequence's cache (< n).  0 or
 * -EINVAL / -E2BIG (prompt over n_ctx) / -ENOMEM; on error nothing to end. */
int gen_begin(gen_state *g, const model *m, const tok_vocab *v, int n_ctx, const int32_t *prompt,
              size_t n, size_t n_cached, const gen_opts *o, const gen_cb *cb, gen_result *res,
              char *err, size_t errlen);
bool gen_cancelled(const gen_state *g);
void gen_prompt_cancelled(gen_state *g); /* finish "cancelled" during the prompt */
void gen_prompt_done(gen_state *g);
/* Samples from logits (n_vocab; modified: banned tokens), emits text.  n_past:
 * positions the sequence holds.  0: evaluate *next, then call again with its
 * logits; 1: finished (res->finish); < 0: error with message. */
int gen_next(gen_state *g, float *logits, int n_past, int32_t *next, char *err, size_t errlen);
void gen_end(gen_state *g); /* accepts an ended state */

/* Appends prompt[0..n) to st (which may already hold a prefix) and
 * generates (gen_run_cb with nothing cached).  cancel (may be NULL) is polled between tokens.  Returns 0
 * (see res->finish) or -errno with a message (context full, I/O error,
 * -ENOMEM, or the text callback's error). */
int gen_run(const model *m, const tok_vocab *v, fwd_state *st, const int32_t *prompt, size_t n,
            const gen_opts *o, gen_text_fn on_text, gen_token_fn on_token, void *ud,
            volatile sig_atomic_t *cancel, gen_result *res, char *err, size_t errlen);

#endif
