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

typedef struct stopper {
    strbuf held; /* text that could still start a stop string */
    const char *const *stop;
    int n_stop;
} stopper;

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

int gen_run_cb(const model *m, const tok_vocab *v, fwd_state *st, const int32_t *prompt, size_t n,
               size_t n_cached, const gen_opts *o, const gen_cb *cb, gen_result *res, char *err,
               size_t errlen)
{
    memset(res, 0, sizeof *res);
    const uint32_t V = m->hp.n_vocab;
    const int ctx = fwd_n_ctx(st);
    const gen_text_fn on_text = cb->on_text;
    const gen_token_fn on_token = cb->on_token;
    void *const ud = cb->ud;
    if (n_cached >= n) {
        snprintf(err, errlen, "no prompt tokens to evaluate (%zu of %zu cached)", n_cached, n);
        return -EINVAL;
    }
    if ((int64_t)fwd_n_past(st) + (int64_t)(n - n_cached) >= ctx) {
        snprintf(err, errlen, "prompt of %zu tokens does not fit the context of %d (%d used); "
                              "raise -c/--ctx-size or shorten the prompt",
                 n - n_cached, ctx, fwd_n_past(st));
        return -E2BIG;
    }
    float *logits = malloc((size_t)V * sizeof *logits);
    size_t hcap = n + (o->n_predict > 0 ? (size_t)o->n_predict : (size_t)ctx) + 1;
    int32_t *hist = malloc(hcap * sizeof *hist);
    sampler *smp = sampler_create(&o->sp, V);
    stopper sp = {STRBUF_INIT, o->stop, o->n_stop};
    int rc = logits && hist && smp ? 0 : -ENOMEM;
    if (rc) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    res->seed = sampler_seed(smp);
    memcpy(hist, prompt, n * sizeof *hist);
    size_t nh = n;
    double t0 = now_s();
    res->n_prompt = (int)n;
    res->n_cached = (int)n_cached;
    /* chunk by chunk, so progress and cancel can be reported between them;
     * fwd_eval would cut the same chunks */
    const size_t B = (size_t)fwd_n_batch(st);
    for (size_t i = n_cached; i < n; i += B) {
        if (cancelled(cb)) {
            res->finish = "cancelled";
            res->t_prompt_s = now_s() - t0;
            goto out;
        }
        const size_t c = n - i < B ? n - i : B;
        if ((rc = fwd_eval(st, prompt + i, (int)c, NULL, logits, err, errlen)))
            goto out;
        if (cb->on_progress)
            cb->on_progress(ud, i + c - n_cached, n - n_cached);
    }
    res->t_prompt_s = now_s() - t0;
    t0 = now_s();
    /* --ignore-eos bans the end-of-generation tokens, as the reference does
     * with a -inf logit bias; found once, a handful in any vocabulary. */
    int32_t eog[16];
    int n_eog = 0;
    for (uint32_t t = 0; o->sp.ignore_eos && t < V && n_eog < 16; t++)
        if (tok_is_eog(v, (int32_t)t))
            eog[n_eog++] = (int32_t)t;
    const int32_t think_end = tok_find(v, "</think>");
    bool reasoning = o->reasoning && think_end >= 0;
    tok_stream ts;
    tok_stream_init(&ts);
    char piece[1024];
    res->finish = "length";
    for (;;) {
        if (cancelled(cb)) {
            res->finish = "cancelled";
            break;
        }
        if (o->n_predict > 0 && res->n_gen >= o->n_predict)
            break;
        if (fwd_n_past(st) >= ctx) {
            res->finish = "length";
            break;
        }
        for (int k = 0; k < n_eog; k++)
            logits[eog[k]] = -INFINITY;
        int32_t id = sampler_sample(smp, logits, hist, nh);
        hist[nh++] = id;
        res->n_gen++;
        if (on_token)
            on_token(ud, id);
        if (tok_is_eog(v, id)) {
            res->finish = "stop";
            break;
        }
        int r = 0;
        if (id == think_end && reasoning) {
            size_t k = tok_stream_flush(&ts, piece, sizeof piece);
            r = stop_feed(&sp, piece, k, true, on_text, ud, true);
            reasoning = false;
        } else {
            size_t k = tok_stream_push(&ts, v, id, piece, sizeof piece);
            r = stop_feed(&sp, piece, k, false, on_text, ud, reasoning);
        }
        if (r < 0) {
            rc = feed_error(r, err, errlen);
            goto out;
        }
        if (r) {
            res->finish = r == 1 ? "stop" : "cancelled";
            break;
        }
        if (o->n_predict > 0 && res->n_gen >= o->n_predict)
            break;
        if (fwd_n_past(st) >= ctx)
            break;
        if ((rc = fwd_eval(st, &id, 1, NULL, logits, err, errlen)))
            goto out;
    }
    if (strcmp(res->finish, "stop") != 0 || sp.held.n) {
        size_t k = tok_stream_flush(&ts, piece, sizeof piece);
        int r = stop_feed(&sp, piece, k, true, on_text, ud, reasoning);
        if (r < 0) {
            rc = feed_error(r, err, errlen);
            goto out;
        }
    }
    res->t_gen_s = now_s() - t0;
out:
    strbuf_free(&sp.held);
    free(logits);
    free(hist);
    sampler_destroy(smp);
    return rc;
}

int gen_run(const model *m, const tok_vocab *v, fwd_state *st, const int32_t *prompt, size_t n,
            const gen_opts *o, gen_text_fn on_text, gen_token_fn on_token, void *ud,
            volatile sig_atomic_t *cancel, gen_result *res, char *err, size_t errlen)
{
    gen_cb cb = {on_text, on_token, NULL, NULL, cancel, ud};
    return gen_run_cb(m, v, st, prompt, n, 0, o, &cb, res, err, errlen);
}
