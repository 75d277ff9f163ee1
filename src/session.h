/* session.h - what the public ms_session is inside, for the files that
 * drive sessions (ms_session.c, ms_batch.c).
 * Invariant: toks[0..n_past) are the tokens whose cache entries kv holds. */
#ifndef MS_SESSION_H
#define MS_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine.h"
#include "forward.h"

struct ms_session {
    engine *e;
    fwd_kv *kv;
    int32_t *toks;   /* (n_ctx) */
    float *logits;   /* (n_vocab) of the last evaluated position */
    bool have_logits;
};

/* Tokens of tokens[0..n) the cache holds already (common prefix). */
size_t session_common_prefix(const ms_session *s, const int32_t *tokens, size_t n);
/* The prefix of tokens[0..n) the cache keeps for an evaluation of them:
 * the common prefix, at most n - 1 (the last token is evaluated for its
 * logits), rounded down to a whole number of batches so the rest is
 * chunked as a cold run is. */
size_t session_keep_prefix(const ms_session *s, const int32_t *tokens, size_t n);
/* The engine's scratch with s's cache bound. */
fwd_state *session_bind(ms_session *s);

#endif
