/* ms_session.c - the public session API: one sequence (its cache from the
 * engine's plan, the tokens the cache holds, the last logits), evaluation,
 * prefix-reusing sync, and generation.
 * Owns: ms_session_*, ms_generate, ms_gen_opts_default,
 * ms_sampler_params_default.  Sessions share the engine's one scratch:
 * each evaluation binds the session's cache to it first (fwd_bind), so
 * sessions of one engine are used one at a time, from one thread at a
 * time.
 * Invariant: toks[0..n_past) are the tokens whose cache entries the
 * session's fwd_kv holds. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "generate.h"
#include "moestream.h"
#include "sampler.h"
#include "session.h"


MS_API void ms_sampler_params_default(ms_sampler_params *p)
{
    sampler_params_default(p); /* the same struct (sampler.h) */
}

MS_API void ms_gen_opts_default(ms_gen_opts *o)
{
    gen_opts_default(o); /* the same struct (generate.h) */
}

MS_API int ms_session_create(ms_engine *e, ms_session **out, char *err, size_t errlen)
{
    *out = NULL;
    ms_session *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    s->e = e;
    s->toks = malloc((size_t)e->plan.n_ctx * sizeof *s->toks);
    s->logits = malloc((size_t)e->m->hp.n_vocab * sizeof *s->logits);
    if (!s->toks || !s->logits) {
        free(s->toks);
        free(s->logits);
        free(s);
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    int rc = engine_kv_take(e, &s->kv, err, errlen);
    if (rc) {
        free(s->toks);
        free(s->logits);
        free(s);
        return rc;
    }
    *out = s;
    return 0;
}

MS_API void ms_session_destroy(ms_session *s)
{
    if (!s)
        return;
    if (s->e->scratch)
        fwd_bind(s->e->scratch, NULL);
    engine_kv_give(s->e, s->kv);
    free(s->toks);
    free(s->logits);
    free(s);
}

MS_API int ms_session_n_past(const ms_session *s) { return fwd_kv_n_past(s->kv); }
MS_API int ms_session_n_ctx(const ms_session *s) { return s->e->plan.n_ctx; }
MS_API uint32_t ms_session_n_vocab(const ms_session *s) { return s->e->m->hp.n_vocab; }

MS_API void ms_session_truncate(ms_session *s, int n)
{
    if (n < fwd_kv_n_past(s->kv))
        s->have_logits = false;
    fwd_kv_truncate(s->kv, n);
}

MS_API const float *ms_session_logits(const ms_session *s)
{
    return s->have_logits ? s->logits : NULL;
}

fwd_state *session_bind(ms_session *s)
{
    fwd_bind(s->e->scratch, s->kv); /* same options by construction: cannot fail */
    return s->e->scratch;
}

MS_API int ms_session_eval(ms_session *s, const int32_t *tokens, size_t n, float *logits_all,
                           char *err, size_t errlen)
{
    const int past = fwd_kv_n_past(s->kv);
    if (n == 0 || n > (size_t)s->e->plan.n_ctx) {
        snprintf(err, errlen, "%zu tokens to evaluate (context %d)", n, s->e->plan.n_ctx);
        return n ? -E2BIG : -EINVAL;
    }
    int rc = fwd_eval(session_bind(s), tokens, (int)n, logits_all, s->logits, err, errlen);
    if (rc)
        return rc;
    memcpy(s->toks + past, tokens, n * sizeof *tokens);
    s->have_logits = true;
    return 0;
}

size_t session_common_prefix(const ms_session *s, const int32_t *tokens, size_t n)
{
    const size_t past = (size_t)fwd_kv_n_past(s->kv);
    size_t k = 0;
    while (k < past && k < n && s->toks[k] == tokens[k])
        k++;
    return k;
}

size_t session_keep_prefix(const ms_session *s, const int32_t *tokens, size_t n)
{
    size_t k = session_common_prefix(s, tokens, n);
    if (k >= n)
        k = n - 1;
    const size_t B = (size_t)s->e->plan.n_batch;
    return k - k % B;
}

MS_API int ms_session_sync(ms_session *s, const int32_t *tokens, size_t n, size_t *n_evaluated,
                           char *err, size_t errlen)
{
    if (n_evaluated)
        *n_evaluated = 0;
    if (n == 0) {
        snprintf(err, errlen, "no tokens");
        return -EINVAL;
    }
    size_t k = session_keep_prefix(s, tokens, n);
    ms_session_truncate(s, (int)k);
    int rc = ms_session_eval(s, tokens + k, n - k, NULL, err, errlen);
    if (!rc && n_evaluated)
        *n_evaluated = n - k;
    return rc;
}

/* ---- generation ---- */

typedef struct gen_ctx {
    ms_session *s;
    const ms_callbacks *cb;
    size_t next; /* where the next generated token goes in s->toks */
} gen_ctx;

static int g_text(void *ud, const char *t, size_t n, bool reasoning)
{
    gen_ctx *g = ud;
    /* any non-zero from the caller means stop (not an error) */
    return g->cb->on_text && g->cb->on_text(g->cb->ud, t, n, reasoning) ? 1 : 0;
}

static void g_token(void *ud, int32_t id)
{
    gen_ctx *g = ud;
    /* recorded now, evaluated (and so in the cache) only if generation
     * goes on; n_past says how many are */
    if (g->next < (size_t)g->s->e->plan.n_ctx)
        g->s->toks[g->next++] = id;
    if (g->cb->on_token)
        g->cb->on_token(g->cb->ud, id);
}

static void g_progress(void *ud, size_t done, size_t total)
{
    gen_ctx *g = ud;
    if (g->cb->on_progress)
        g->cb->on_progress(g->cb->ud, done, total);
}

static int g_cancel(void *ud)
{
    gen_ctx *g = ud;
    return g->cb->cancel ? g->cb->cancel(g->cb->ud) : 0;
}

MS_API int ms_generate(ms_session *s, const int32_t *prompt, size_t n, const ms_gen_opts *o,
                       const ms_callbacks *cb, ms_gen_result *res, char *err, size_t errlen)
{
    memset(res, 0, sizeof *res);
    static const ms_callbacks none = {0};
    if (!cb)
        cb = &none;
    if (n == 0) {
        snprintf(err, errlen, "empty prompt");
        return -EINVAL;
    }
    if (n >= (size_t)s->e->plan.n_ctx) {
        snprintf(err, errlen, "prompt of %zu tokens does not fit the context of %d; raise "
                              "-c/--ctx-size or shorten the prompt",
                 n, s->e->plan.n_ctx);
        return -E2BIG;
    }
    ms_gen_opts d;
    if (!o) {
        ms_gen_opts_default(&d);
        o = &d;
    }
    size_t k = session_keep_prefix(s, prompt, n);
    ms_session_truncate(s, (int)k);
    memcpy(s->toks, prompt, n * sizeof *prompt);
    s->have_logits = false;
    gen_ctx g = {s, cb, n};
    gen_cb gcb = {g_text, g_token, g_progress, g_cancel, NULL, &g};
    gen_result r;
    int rc = gen_run_cb(s->e->m, s->e->v, session_bind(s), prompt, n, k, o, &gcb, &r, err, errlen);
    if (rc) {
        /* what was evaluated of the prompt stays; toks already say so */
        return rc;
    }
    res->n_prompt = r.n_prompt;
    res->n_cached = r.n_cached;
    res->n_gen = r.n_gen;
    res->t_prompt_s = r.t_prompt_s;
    res->t_gen_s = r.t_gen_s;
    res->seed = r.seed;
    res->finish = r.finish;
    return 0;
}
