/* generate.c - see generate.h.
 * Text path: token -> tok_stream (complete UTF-8 characters only) -> stop
 * matcher (holds back the longest tail that could start a stop string) ->
 * callback.  The </think> token switches reasoning off and is not shown. */
#include "generate.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "strbuf.h"

void gen_opts_default(gen_opts *o)
{
    memset(o, 0, sizeof *o);
    sampler_params_default(&o->sp);
    o->n_predict = -1;
    o->reasoning = true;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}


/* The callback's verdict: > 0 asks to stop (cancelled), < 0 is an error
 * (a negative errno), passed on as is. */
#define STOP_CANCEL 2

static int emit(gen_text_fn fn, void *ud, const char *t, size_t n, bool reasoning)
{
    int r = fn(ud, t, n, reasoning);
    return r > 0 ? STOP_CANCEL : r;
}

/* Appends text; emits what can no longer be part of a stop string.
 * Returns 1 if a stop string matched (text before it emitted),
 * STOP_CANCEL if the callback asked to stop, a negative errno if holding
 * the text failed (-ENOMEM) or the callback failed, 0 otherwise. */
static int stop_feed(stopper *sp, const char *t, size_t n, bool final, gen_text_fn fn, void *ud,
                     bool reasoning)
{
    strbuf *s = &sp->held;
    int rc = strbuf_append(s, t, n);
    if (rc)
        return rc;
    size_t hit = SIZE_MAX;
    for (int k = 0; k < sp->n_stop; k++) {
        if (!sp->stop[k][0])
            continue;
        const char *p = memmem(s->s, s->n, sp->stop[k], strlen(sp->stop[k]));
        if (p && (size_t)(p - s->s) < hit)
            hit = (size_t)(p - s->s);
    }
    if (hit != SIZE_MAX) {
        if (hit && (rc = emit(fn, ud, s->s, hit, reasoning)))
            return rc;
        strbuf_clear(s);
        return 1;
    }
    size_t keep = 0;
    if (!final)
        for (int k = 0; k < sp->n_stop; k++) {
            size_t sl = strlen(sp->stop[k]);
            for (size_t l = sl > 1 ? sl - 1 : 0; l > keep; l--)
                if (l <= s->n && !memcmp(s->s + s->n - l, sp->stop[k], l)) {
                    keep = l;
                    break;
                }
        }
    size_t out = s->n - keep;
    if (out && (rc = emit(fn, ud, s->s, out, reasoning)))
        return rc;
    strbuf_consume(s, out);
    return 0;
}

/* Turns a failed stop_feed into gen_run's return and message. */
static int feed_error(int r, char *err, size_t errlen)
{
    if (r == -ENOMEM)
        snprintf(err, errlen, "out of memory while generating");
    else
        snprintf(err, errlen, "generated text could not be delivered: %s", strerror(-r));
    return r;
}

static bool cancelled(const gen_cb *cb)
{
    return (cb->cancel_flag && *cb->cancel_flag) || (cb->cancel && cb->cancel(cb->ud));
}

int gen_begin(gen_state *g, const model *m, const tok_vocab *v, int n_ctx, const int32_t *prompt,
              size_t n, size_t n_cached, const gen_opts *o, const gen_cb *cb, gen_result *res,
              char *err, size_t errlen)
{
    memset(g, 0, sizeof *g);
    memset(res, 0, sizeof *res);
    g->v = v;
    g->o = o;
    g->cb = cb;
    g->res = res;
    g->n_ctx = n_ctx;
    const uint32_t V = m->hp.n_vocab;
    if (n_cached >= n) {
        snprintf(err, errlen, "no prompt tokens to evaluate (%zu of %zu cached)", n_cached, n);
        return -EINVAL;
    }
    if ((int64_t)n_cached + (int64_t)(n - n_cached) >= n_ctx) {
        snprintf(err, errlen, "prompt of %zu tokens does not fit the context of %d (%zu used); "
                              "raise -c/--ctx-size or shorten the prompt",
                 n - n_cached, n_ctx, n_cached);
        return -E2BIG;
    }
    size_t hcap = n + (o->n_predict > 0 ? (size_t)o->n_predict : (size_t)n_ctx) + 1;
    g->hist = malloc(hcap * sizeof *g->hist);
    g->smp = sampler_create(&o->sp, V);
    g->sp = (stopper){STRBUF_INIT, o->stop, o->n_stop};
    if (!g->hist || !g->smp) {
        gen_end(g);
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    res->seed = sampler_seed(g->smp);
    memcpy(g->hist, prompt, n * sizeof *g->hist);
    g->nh = n;
    g->t0 = now_s();
    res->n_prompt = (int)n;
    res->n_cached = (int)n_cached;
    /* --ignore-eos bans the end-of-generation tokens, as the reference does
     * with a -inf logit bias; found once, a handful in any vocabulary. */
    for (uint32_t t = 0; o->sp.ignore_eos && t < V && g->n_eog < 16; t++)
        if (tok_is_eog(v, (int32_t)t))
            g->eog[g->n_eog++] = (int32_t)t;
    g->think_end = tok_find(v, "</think>");
    g->reasoning = o->reasoning && g->think_end >= 0;
    tok_stream_init(&g->ts);
    res->finish = "length";
    return 0;
}

bool gen_cancelled(const gen_state *g)
{
    return cancelled(g->cb);
}

void gen_prompt_cancelled(gen_state *g)
{
    g->res->finish = "cancelled";
    g->res->t_prompt_s = now_s() - g->t0;
}

void gen_prompt_done(gen_state *g)
{
    g->res->t_prompt_s = now_s() - g->t0;
    g->t0 = now_s();
}

/* The end of a generation: the text held back, the time. */
static int gen_finish(gen_state *g, char *err, size_t errlen)
{
    gen_result *res = g->res;
    if (strcmp(res->finish, "stop") != 0 || g->sp.held.n) {
        size_t k = tok_stream_flush(&g->ts, g->piece, sizeof g->piece);
        int r = stop_feed(&g->sp, g->piece, k, true, g->cb->on_text, g->cb->ud, g->reasoning);
        if (r < 0)
            return feed_error(r, err, errlen);
    }
    res->t_gen_s = now_s() - g->t0;
    return 1;
}

int gen_next(gen_state *g, float *logits, int n_past, int32_t *next, char *err, size_t errlen)
{
    const gen_opts *o = g->o;
    gen_result *res = g->res;
    const gen_cb *cb = g->cb;
    if (cancelled(cb)) {
        res->finish = "cancelled";
        return gen_finish(g, err, errlen);
    }
    if (o->n_predict > 0 && res->n_gen >= o->n_predict)
        return gen_finish(g, err, errlen);
    if (n_past >= g->n_ctx) {
        res->finish = "length";
        return gen_finish(g, err, errlen);
    }
    for (int k = 0; k < g->n_eog; k++)
        logits[g->eog[k]] = -INFINITY;
    int32_t id = sampler_sample(g->smp, logits, g->hist, g->nh);
    g->hist[g->nh++] = id;
    res->n_gen++;
    if (cb->on_token)
        cb->on_token(cb->ud, id);
    if (tok_is_eog(g->v, id)) {
        res->finish = "stop";
        return gen_finish(g, err, errlen);
    }
    int r = 0;
    if (id == g->think_end && g->reasoning) {
        size_t k = tok_stream_flush(&g->ts, g->piece, sizeof g->piece);
        r = stop_feed(&g->sp, g->piece, k, true, cb->on_text, cb->ud, true);
        g->reasoning = false;
    } else {
        size_t k = tok_stream_push(&g->ts, g->v, id, g->piece, sizeof g->piece);
        r = stop_feed(&g->sp, g->piece, k, false, cb->on_text, cb->ud, g->reasoning);
    }
    if (r < 0)
        return feed_error(r, err, errlen);
    if (r) {
        res->finish = r == 1 ? "stop" : "cancelled";
        return gen_finish(g, err, errlen);
    }
    if ((o->n_predict > 0 && res->n_gen >= o->n_predict) || n_past >= g->n_ctx)
        return gen_finish(g, err, errlen);
    *next = id;
    return 0;
}

void gen_end(gen_state *g)
{
    strbuf_free(&g->sp.held);
    free(g->hist);
    sampler_destroy(g->smp);
    g->hist = NULL;
    g->smp = NULL;
}

int gen_run_cb(const model *m, const tok_vocab *v, fwd_state *st, const int32_t *prompt, size_t n,
               size_t n_cached, const gen_opts *o, const gen_cb *cb, gen_result *res, char *err,
               size_t errlen)
{
    if ((int64_t)fwd_n_past(st) + (int64_t)(n - n_cached) >= fwd_n_ctx(st) && n_cached < n) {
        memset(res, 0, sizeof *res);
        snprintf(err, errlen, "prompt of %zu tokens does not fit the context of %d (%d used); "
                              "raise -c/--ctx-size or shorten the prompt",
                 n - n_cached, fwd_n_ctx(st), fwd_n_past(st));
        return -E2BIG;
    }
    gen_state g;
    int rc = gen_begin(&g, m, v, fwd_n_ctx(st), prompt, n, n_cached, o, cb, res, err, errlen);
    if (rc)
        return rc;
    float *logits = malloc((size_t)m->hp.n_vocab * sizeof *logits);
    if (!logits) {
        gen_end(&g);
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    /* chunk by chunk, so progress and cancel can be reported between them;
     * fwd_eval would cut the same chunks */
    const size_t B = (size_t)fwd_n_batch(st);
    for (size_t i = n_cached; i < n; i += B) {
        if (gen_cancelled(&g)) {
            gen_prompt_cancelled(&g);
            goto out;
        }
        const size_t c = n - i < B ? n - i : B;
        if ((rc = fwd_eval(st, prompt + i, (int)c, NULL, logits, err, errlen)))
            goto out;
        if (cb->on_progress)
            cb->on_progress(cb->ud, i + c - n_cached, n - n_cached);
    }
    gen_prompt_done(&g);
    for (;;) {
        int32_t id;
        int r = gen_next(&g, logits, fwd_n_past(st), &id, err, errlen);
        if (r) {
            rc = r < 0 ? r : 0;
            break;
        }
        if ((rc = fwd_eval(st, &id, 1, NULL, logits, err, errlen)))
            break;
    }
out:
    free(logits);
    gen_end(&g);
    return rc;
}

int gen_run(const model *m, const tok_vocab *v, fwd_state *st, const int32_t *prompt, size_t n,
            const gen_opts *o, gen_text_fn on_text, gen_token_fn on_token, void *ud,
            volatile sig_atomic_t *cancel, gen_result *res, char *err, size_t errlen)
{
    gen_cb cb = {on_text, on_token, NULL, NULL, cancel, ud};
    return gen_run_cb(m, v, st, prompt, n, 0, o, &cb, res, err, errlen);
}
