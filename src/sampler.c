/* sampler.c - see sampler.h.  Candidate order and truncation follow the
 * reference's default chain: penalties (repeat, frequency, presence), top-k,
 * top-p, min-p, temperature, then a draw.  min-p compares probabilities
 * before temperature. */
#include "sampler.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct cand {
    float logit;
    int32_t id;
} cand;

struct sampler {
    sampler_params p;
    uint32_t n_vocab;
    cand *c;
    uint64_t rng[2];
};

void sampler_params_default(sampler_params *p)
{
    p->temp = 0.6f;
    p->top_k = 0;
    p->top_p = 1.0f;
    p->min_p = 0.05f;
    p->repeat_penalty = 1.0f;
    p->repeat_last_n = 64;
    p->presence_penalty = 0.0f;
    p->frequency_penalty = 0.0f;
    p->ignore_eos = false;
    p->seed = 0;
}

static uint64_t splitmix(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

sampler *sampler_create(const sampler_params *p, uint32_t n_vocab)
{
    sampler *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->p = *p;
    s->n_vocab = n_vocab;
    s->c = malloc((size_t)n_vocab * sizeof *s->c);
    if (!s->c) {
        free(s);
        return NULL;
    }
    if (s->p.seed == 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t x = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20);
        s->p.seed = (splitmix(&x) & 0x7fffffffffffull) | 1;
    }
    uint64_t x = s->p.seed;
    s->rng[0] = splitmix(&x);
    s->rng[1] = splitmix(&x);
    return s;
}

void sampler_destroy(sampler *s)
{
    if (!s)
        return;
    free(s->c);
    free(s);
}

uint64_t sampler_seed(const sampler *s) { return s->p.seed; }

/* xorshift128+: uniform in [0, 1) */
static double uniform(sampler *s)
{
    uint64_t a = s->rng[0], b = s->rng[1];
    s->rng[0] = b;
    a ^= a << 23;
    s->rng[1] = a ^ b ^ (a >> 17) ^ (b >> 26);
    return (double)((s->rng[1] + b) >> 11) * (1.0 / 9007199254740992.0);
}

static int by_logit_desc(const void *a, const void *b)
{
    const cand *x = a, *y = b;
    if (x->logit != y->logit)
        return x->logit > y->logit ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

int32_t sampler_sample(sampler *s, float *logits, const int32_t *hist, size_t n_hist)
{
    const sampler_params *p = &s->p;
    const bool penalize = p->repeat_penalty != 1.0f || p->presence_penalty != 0.0f ||
                          p->frequency_penalty != 0.0f;
    if (penalize && n_hist > 0) {
        /* The reference's penalties sampler: each distinct token of the
         * window once, the repeat penalty scaling its logit towards zero,
         * then count x frequency + presence subtracted.  The window is at
         * most repeat_last_n tokens, so counting by rescanning stays cheap
         * and allocates nothing. */
        size_t from = n_hist > (size_t)p->repeat_last_n ? n_hist - (size_t)p->repeat_last_n : 0;
        for (size_t i = from; i < n_hist; i++) {
            int32_t t = hist[i];
            if (t < 0 || (uint32_t)t >= s->n_vocab)
                continue;
            bool seen = false;
            for (size_t j = from; j < i && !seen; j++)
                seen = hist[j] == t;
            if (seen)
                continue;
            int count = 1;
            for (size_t j = i + 1; j < n_hist; j++)
                count += hist[j] == t;
            if (p->repeat_penalty != 1.0f)
                logits[t] = logits[t] > 0 ? logits[t] / p->repeat_penalty : logits[t] * p->repeat_penalty;
            logits[t] -= (float)count * p->frequency_penalty + p->presence_penalty;
        }
    }
    int32_t best = 0;
    for (uint32_t v = 1; v < s->n_vocab; v++)
        if (logits[v] > logits[best])
            best = (int32_t)v;
    if (p->temp <= 0.0f)
        return best;

    /* Candidates: min-p can be applied first as a logit threshold, since it
     * only depends on the ratio to the best token; it shrinks the sort. */
    const float maxl = logits[best];
    const float cut = p->min_p > 0.0f ? maxl + logf(p->min_p) : -INFINITY;
    size_t n = 0;
    for (uint32_t v = 0; v < s->n_vocab; v++)
        if (logits[v] >= cut || (p->top_p < 1.0f || p->top_k > 0))
            s->c[n++] = (cand){logits[v], (int32_t)v};
    qsort(s->c, n, sizeof *s->c, by_logit_desc);
    if (p->top_k > 0 && (size_t)p->top_k < n)
        n = (size_t)p->top_k;
    if (p->top_p < 1.0f) {
        double sum = 0, acc = 0;
        for (size_t i = 0; i < n; i++)
            sum += exp((double)(s->c[i].logit - maxl));
        size_t keep = n;
        for (size_t i = 0; i < n; i++) {
            acc += exp((double)(s->c[i].logit - maxl)) / sum;
            if (acc >= p->top_p) {
                keep = i + 1;
                break;
            }
        }
        n = keep;
    }
    if (p->min_p > 0.0f) {
        size_t keep = 0;
        while (keep < n && s->c[keep].logit >= cut)
            keep++;
        n = keep > 0 ? keep : 1;
    }
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += exp((double)(s->c[i].logit - maxl) / p->temp);
    double r = uniform(s) * sum, acc = 0;
    for (size_t i = 0; i < n; i++) {
        acc += exp((double)(s->c[i].logit - maxl) / p->temp);
        if (r < acc)
            return s->c[i].id;
    }
    return s->c[n - 1].id;
}
