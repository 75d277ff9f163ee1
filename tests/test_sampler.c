/* test_sampler.c - sampler invariants on crafted distributions: top-k,
 * top-p and min-p keep exactly the right sets, temperature 0 is greedy, a
 * fixed seed reproduces, different seeds differ, the repetition penalty
 * pushes repeated tokens down. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sampler.h"

#define NV 8
/* probabilities 0.4 0.3 0.15 0.1 0.03 0.01 0.007 0.003 */
static const double P[NV] = {0.4, 0.3, 0.15, 0.1, 0.03, 0.01, 0.007, 0.003};

static void fill(float *l)
{
    for (int i = 0; i < NV; i++)
        l[i] = (float)log(P[i]);
}

/* The set of tokens a sampler can return, from many draws. */
static unsigned support(sampler_params p)
{
    unsigned seen = 0;
    for (int k = 0; k < 4000; k++) {
        p.seed = (uint64_t)k + 1;
        sampler *s = sampler_create(&p, NV);
        float l[NV];
        fill(l);
        seen |= 1u << sampler_sample(s, l, NULL, 0);
        sampler_destroy(s);
    }
    return seen;
}

static sampler_params base(void)
{
    sampler_params p;
    sampler_params_default(&p);
    p.temp = 1.0f;
    p.min_p = 0.0f;
    return p;
}

static void test_truncations(void **state)
{
    (void)state;
    sampler_params p = base();
    assert_int_equal(support(p), 0xFF); /* nothing cut: all 8 appear */
    p.top_k = 3;
    assert_int_equal(support(p), 0x07);
    p = base();
    p.top_p = 0.8f; /* 0.4+0.3 = 0.7 < 0.8 <= 0.85: keep 3 */
    assert_int_equal(support(p), 0x07);
    p.top_p = 0.7f; /* exactly reached with 2 */
    assert_int_equal(support(p), 0x03);
    p = base();
    p.min_p = 0.2f; /* >= 0.08: 0.4 0.3 0.15 0.1 */
    assert_int_equal(support(p), 0x0F);
    p.min_p = 0.5f; /* >= 0.2 */
    assert_int_equal(support(p), 0x03);
}

static void test_greedy_and_seed(void **state)
{
    (void)state;
    sampler_params p = base();
    p.temp = 0.0f;
    for (int k = 0; k < 10; k++) {
        p.seed = (uint64_t)k + 7;
        sampler *s = sampler_create(&p, NV);
        float l[NV];
        fill(l);
        assert_int_equal(sampler_sample(s, l, NULL, 0), 0);
        sampler_destroy(s);
    }
    /* ties: lowest id */
    sampler *s = sampler_create(&p, NV);
    float flat[NV] = {0, 1, 1, 0, 0, 0, 0, 0};
    assert_int_equal(sampler_sample(s, flat, NULL, 0), 1);
    sampler_destroy(s);

    p = base();
    int32_t a[64], b[64], c[64];
    for (int run = 0; run < 3; run++) {
        p.seed = run < 2 ? 1234 : 999;
        sampler *t = sampler_create(&p, NV);
        assert_int_equal(sampler_seed(t), p.seed);
        for (int i = 0; i < 64; i++) {
            float l[NV];
            fill(l);
            (run == 0 ? a : run == 1 ? b : c)[i] = sampler_sample(t, l, NULL, 0);
        }
        sampler_destroy(t);
    }
    assert_memory_equal(a, b, sizeof a);
    assert_memory_not_equal(a, c, sizeof a);
    /* seed 0 picks one and reports it */
    p.seed = 0;
    sampler *t = sampler_create(&p, NV);
    assert_true(sampler_seed(t) != 0);
    sampler_destroy(t);
}

static void test_repeat_penalty(void **state)
{
    (void)state;
    sampler_params p = base();
    p.temp = 0.0f;
    p.repeat_penalty = 2.0f;
    sampler *s = sampler_create(&p, NV);
    float l[NV] = {2.0f, 1.5f, 0, 0, 0, 0, 0, 0};
    int32_t hist[3] = {0, 0, 5};
    /* 2.0 / 2 = 1.0 < 1.5: token 1 wins */
    assert_int_equal(sampler_sample(s, l, hist, 3), 1);
    sampler_destroy(s);
}

/* The reference's penalties: logit -= count x frequency + presence, for
 * the tokens of the last repeat_last_n, after the repeat penalty. */
static void test_presence_frequency(void **state)
{
    (void)state;
    sampler_params p = base();
    p.temp = 0.0f;
    p.repeat_last_n = 4;
    int32_t hist[6] = {1, 1, 0, 0, 0, 2}; /* window: 0 0 0 2; token 1 is outside it */
    const float l0[NV] = {3.0f, 2.5f, 2.9f, 2.0f, 0, 0, 0, 0};
    float l[NV];

    /* presence 0.2: 0 -> 2.8, 2 -> 2.7; token 0 still wins */
    p.presence_penalty = 0.2f;
    sampler *s = sampler_create(&p, NV);
    memcpy(l, l0, sizeof l);
    assert_int_equal(sampler_sample(s, l, hist, 6), 0);
    assert_true(l[0] == 3.0f - 0.2f && l[2] == 2.9f - 0.2f && l[1] == 2.5f && l[3] == 2.0f);
    sampler_destroy(s);

    /* frequency 0.2: token 0 seen 3 times -> 2.4, token 2 once -> 2.7 wins;
     * token 1 (outside the window) keeps 2.5 */
    p.presence_penalty = 0.0f;
    p.frequency_penalty = 0.2f;
    s = sampler_create(&p, NV);
    memcpy(l, l0, sizeof l);
    assert_int_equal(sampler_sample(s, l, hist, 6), 2);
    assert_true(l[0] == 3.0f - 3 * 0.2f && l[1] == 2.5f);
    sampler_destroy(s);

    /* negative values encourage repetition: presence -1 lifts token 2 over 0 */
    p.frequency_penalty = 0.0f;
    p.presence_penalty = -1.0f;
    p.repeat_last_n = 1; /* only token 2 */
    s = sampler_create(&p, NV);
    memcpy(l, l0, sizeof l);
    assert_int_equal(sampler_sample(s, l, hist, 6), 2);
    sampler_destroy(s);

    /* with the repeat penalty: (3.0 / 2) - 3 x 0.1 - 0.1 = 1.1 */
    p.repeat_last_n = 4;
    p.repeat_penalty = 2.0f;
    p.presence_penalty = 0.1f;
    p.frequency_penalty = 0.1f;
    s = sampler_create(&p, NV);
    memcpy(l, l0, sizeof l);
    (void)sampler_sample(s, l, hist, 6);
    assert_true(fabsf(l[0] - 1.1f) < 1e-6f);
    sampler_destroy(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_truncations),
        cmocka_unit_test(test_greedy_and_seed),
        cmocka_unit_test(test_repeat_penalty),
        cmocka_unit_test(test_presence_frequency),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
