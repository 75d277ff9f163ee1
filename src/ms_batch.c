/* ms_batch.c - the public continuous-batching scheduler: up to n_slots
 * generations stepped together through fwd_step.
 * Owns: ms_batch_*.  Each slot is a session of its own (made at create)
 * and a stepped generation (generate.h's gen_state, the very loop
 * ms_generate runs, so a batched generation samples and emits what a lone
 * one does for the same logits, and fwd_step gives the same logits).
 * A step: every decoding slot's next token, plus at most n_batch prompt
 * rows: the next chunk of each slot still in its prompt, oldest first, as
 * long as they fit (chunks from a multiple of n_batch, as a cold run cuts
 * them; the oldest one always fits).  Requests that arrive together thus
 * start together (their short prompts share a step, each routed expert
 * read once for all of them) instead of one a step: measured +4.5-5.5%
 * aggregate at 4-8 streams of 16 tokens (bench/RESULTS.md); prompt work
 * itself stays per token.  Within fwd_max_rows (n_batch + n_slots - 1
 * when max_seqs = n_slots: a prompting slot is not decoding).
 * Invariant: a slot is free (g unused) or holds one generation; a
 * prompting slot has pos prompt tokens in its cache. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine.h"
#include "generate.h"
#include "moestream.h"
#include "session.h"

enum slot_state { SLOT_FREE = 0, SLOT_PROMPT, SLOT_DECODE };

typedef struct slot {
    ms_session *s;
    int state;             /* enum slot_state */
    uint64_t order;        /* admission number: the oldest prompt goes first */
    int32_t *prompt;       /* (n) copy */
    size_t n, pos;         /* prompt length, next prompt token to evaluate */
    int32_t next;          /* decoding: the token to evaluate this step */
    ms_gen_opts o;
    ms_callbacks cb;
    ms_done_fn on_done;
    gen_cb gcb;
    gen_state g;
    gen_result r;
} slot;

struct ms_batch {
    ms_engine *e;
    int n_slots;
    slot *sl;
    fwd_seq *seqs;         /* (n_slots) one step's sequences */
    slot **in_step;        /* (n_slots) their slots */
    uint64_t admitted;
    ms_batch_stats st;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- the callbacks as generate.h takes them ---- */

static int g_text(void *ud, const char *t, size_t n, bool reasoning)
{
    slot *x = ud;
    return x->cb.on_text && x->cb.on_text(x->cb.ud, t, n, reasoning) ? 1 : 0;
}

static void g_token(void *ud, int32_t id)
{
    slot *x = ud;
    if (x->cb.on_token)
        x->cb.on_token(x->cb.ud, id);
}

static int g_cancel(void *ud)
{
    slot *x = ud;
    return x->cb.cancel ? x->cb.cancel(x->cb.ud) : 0;
}

/* ---- create / destroy ---- */

MS_API int ms_batch_create(ms_engine *e, int n_slots, ms_batch **out, char *err, size_t errlen)
{
    *out = NULL;
    const int left = e->plan.max_seqs - e->n_sessions;
    if (n_slots <= 0)
        n_slots = left;
    if (n_slots <= 0 || n_slots > left) {
        snprintf(err, errlen, "a batch of %d slots needs as many free sequences; %d of max_seqs %d "
                              "are free (raise --parallel)",
                 n_slots, left > 0 ? left : 0, e->plan.max_seqs);
        return -EBUSY;
    }
    ms_batch *b = calloc(1, sizeof *b);
    if (b) {
        b->sl = calloc((size_t)n_slots, sizeof *b->sl);
        b->seqs = calloc((size_t)n_slots, sizeof *b->seqs);
        b->in_step = calloc((size_t)n_slots, sizeof *b->in_step);
    }
    if (!b || !b->sl || !b->seqs || !b->in_step) {
        if (b) {
            free(b->sl);
            free(b->seqs);
            free(b->in_step);
        }
        free(b);
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    b->e = e;
    b->n_slots = n_slots;
    b->st.slots = n_slots;
    for (int i = 0; i < n_slots; i++) {
        int rc = ms_session_create(e, &b->sl[i].s, err, errlen);
        if (rc) {
            ms_batch_destroy(b);
            return rc;
        }
    }
    *out = b;
    return 0;
}

/* Ends slot x's generation: its result to on_done, the slot free. */
static void slot_done(ms_batch *b, slot *x, int rc, const char *err)
{
    ms_gen_result res = {0};
    if (!rc) {
        res.n_prompt = x->r.n_prompt;
        res.n_cached = x->r.n_cached;
        res.n_gen = x->r.n_gen;
        res.t_prompt_s = x->r.t_prompt_s;
        res.t_gen_s = x->r.t_gen_s;
        res.seed = x->r.seed;
        res.finish = x->r.finish;
    }
    gen_end(&x->g);
    free(x->prompt);
    x->prompt = NULL;
    if (x->state == SLOT_DECODE)
        b->st.decoding--;
    b->st.active--;
    x->state = SLOT_FREE;
    if (x->on_done)
        x->on_done(x->cb.ud, rc, rc ? NULL : &res, rc ? err : "");
}

MS_API void ms_batch_destroy(ms_batch *b)
{
    if (!b)
        return;
    for (int i = 0; i < b->n_slots; i++) {
        if (b->sl[i].state != SLOT_FREE)
            slot_done(b, &b->sl[i], -ECANCELED, "the batch was destroyed");
        ms_session_destroy(b->sl[i].s);
    }
    free(b->sl);
    free(b->seqs);
    free(b->in_step);
    free(b);
}

/* ---- submit ---- */

MS_API int ms_batch_submit(ms_batch *b, const int32_t *prompt, size_t n, const ms_gen_opts *o,
                           const ms_callbacks *cb, ms_done_fn on_done, char *err, size_t errlen)
{
    const int n_ctx = b->e->plan.n_ctx;
    if (n == 0) {
        snprintf(err, errlen, "empty prompt");
        return -EINVAL;
    }
    if (n >= (size_t)n_ctx) {
        snprintf(err, errlen, "prompt of %zu tokens does not fit the context of %d; raise "
                              "-c/--ctx-size or shorten the prompt",
                 n, n_ctx);
        return -E2BIG;
    }
    /* the free slot whose cache shares the longest prefix with the prompt */
    slot *x = NULL;
    size_t best = 0;
    for (int i = 0; i < b->n_slots; i++) {
        slot *c = &b->sl[i];
        if (c->state != SLOT_FREE)
            continue;
        size_t k = session_common_prefix(c->s, prompt, n);
        if (!x || k > best) {
            x = c;
            best = k;
        }
    }
    if (!x) {
        snprintf(err, errlen, "all %d slots are generating", b->n_slots);
        return -EBUSY;
    }
    x->prompt = malloc(n * sizeof *prompt);
    if (!x->prompt) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    memcpy(x->prompt, prompt, n * sizeof *prompt);
    if (o)
        x->o = *o;
    else
        ms_gen_opts_default(&x->o);
    static const ms_callbacks none = {0};
    x->cb = cb ? *cb : none;
    x->on_done = on_done;
    x->gcb = (gen_cb){g_text, g_token, NULL, g_cancel, NULL, x};
    ms_session *s = x->s;
    const size_t k = session_keep_prefix(s, prompt, n);
    int rc = gen_begin(&x->g, b->e->m, b->e->v, n_ctx, prompt, n, k, &x->o, &x->gcb, &x->r, err,
                       errlen);
    if (rc) {
        free(x->prompt);
        x->prompt = NULL;
        return rc;
    }
    ms_session_truncate(s, (int)k);
    memcpy(s->toks, prompt, n * sizeof *prompt);
    s->have_logits = false;
    x->n = n;
    x->pos = k;
    x->state = SLOT_PROMPT;
    x->order = b->admitted++;
    b->st.active++;
    return 0;
}

/* ---- step ---- */

/* After x's sequence got logits for its last token: sample (gen_next);
 * the slot decodes the token next step or its generation ends. */
static void slot_sample(ms_batch *b, slot *x)
{
    char err[512] = "";
    int32_t id;
    const int past = fwd_kv_n_past(x->s->kv);
    const int before = x->r.n_gen;
    int r = gen_next(&x->g, x->s->logits, past, &id, err, sizeof err);
    b->st.generated += (uint64_t)(x->r.n_gen - before);
    if (r) {
        slot_done(b, x, r < 0 ? r : 0, err);
        return;
    }
    if (x->state != SLOT_DECODE) {
        x->state = SLOT_DECODE;
        b->st.decoding++;
    }
    x->next = id;
    x->s->toks[past] = id; /* in the cache after the next step */
}

MS_API int ms_batch_step(ms_batch *b)
{
    const double t0 = now_s();
    fwd_state *fs = b->e->scratch;
    const int B = fwd_n_batch(fs);
    int ns = 0, rows = 0;
    /* cancels during the prompt end it before anything more is evaluated
     * (decoding ones are polled by gen_next) */
    for (int i = 0; i < b->n_slots; i++) {
        slot *x = &b->sl[i];
        if (x->state == SLOT_PROMPT && gen_cancelled(&x->g)) {
            gen_prompt_cancelled(&x->g);
            slot_done(b, x, 0, "");
        }
    }
    for (int i = 0; i < b->n_slots; i++) {
        slot *x = &b->sl[i];
        if (x->state != SLOT_DECODE)
            continue;
        b->seqs[ns] = (fwd_seq){x->s->kv, &x->next, 1, x->s->logits};
        b->in_step[ns++] = x;
        rows++;
    }
    /* prompting slots by admission, oldest first (n_slots is small) */
    int prows = 0;
    for (uint64_t after = 0;;) {
        slot *p = NULL;
        for (int i = 0; i < b->n_slots; i++) {
            slot *x = &b->sl[i];
            if (x->state == SLOT_PROMPT && x->order >= after && (!p || x->order < p->order))
                p = x;
        }
        if (!p)
            break;
        after = p->order + 1;
        const int c = p->n - p->pos < (size_t)B ? (int)(p->n - p->pos) : B;
        if (prows + c > B || rows + c > fwd_max_rows(fs))
            continue; /* a later, shorter one may still fit */
        const bool last = p->pos + (size_t)c == p->n;
        b->seqs[ns] = (fwd_seq){p->s->kv, p->prompt + p->pos, c, last ? p->s->logits : NULL};
        b->in_step[ns++] = p;
        rows += c;
        prows += c;
    }
    if (!ns)
        return b->st.active;
    char err[512] = "";
    int rc = fwd_step(fs, b->seqs, ns, err, sizeof err);
    b->st.steps++;
    b->st.last_step_seqs = ns;
    b->st.last_step_tokens = rc ? 0 : rows;
    if (rc) {
        for (int i = 0; i < ns; i++)
            slot_done(b, b->in_step[i], rc, err);
        b->st.step_s += now_s() - t0;
        return b->st.active;
    }
    b->st.tokens += (uint64_t)rows;
    for (int i = 0; i < ns; i++) {
        slot *x = b->in_step[i];
        x->s->have_logits = b->seqs[i].logits != NULL;
        if (x->state == SLOT_PROMPT) {
            x->pos += (size_t)b->seqs[i].n;
            b->st.prompt_tokens += (uint64_t)b->seqs[i].n;
            if (x->cb.on_progress)
                x->cb.on_progress(x->cb.ud, x->pos - (size_t)x->r.n_cached, x->n - (size_t)x->r.n_cached);
            if (x->pos < x->n)
                continue;
            gen_prompt_done(&x->g);
        }
        slot_sample(b, x);
    }
    b->st.step_s += now_s() - t0;
    return b->st.active;
}

MS_API void ms_batch_get_stats(const ms_batch *b, ms_batch_stats *out)
{
    *out = b->st;
}
