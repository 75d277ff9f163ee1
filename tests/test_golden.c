/* test_golden.c - the forward pass against the reference engine's logits
 * and greedy tokens on the golden tiny models (../shared/golden/logits).
 *
 * Tolerance (named by the issue, not tuned): every logit within 1e-3 of the
 * reference logits' standard deviation; greedy continuation exact.  Each
 * model prints "MEASURE golden <model> max|d|/sigma=..." for the record.
 * MOESTREAM_SIMD selects the kernel table (the suite runs each choice). */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "forward.h"
#include "kernels.h"
#include "model.h"
#include "threadpool.h"
#include "golden.h"

#define LOGIT_TOL_SIGMA 1e-3


typedef struct golden {
    int32_t *prompt;
    int n_prompt;
    int32_t *greedy;
    int n_greedy;
    int n_vocab;
    float *logits; /* n_prompt x n_vocab */
} golden;

static void golden_load(const char *name, golden *g)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/logits/%s.json", golden_dir(), name);
    json_error_t je;
    json_t *root = json_load_file(path, 0, &je);
    if (!root)
        fail_msg("cannot read %s: %s (golden data missing is a failure)", path, je.text);
    json_t *p = json_object_get(root, "prompt"), *gr = json_object_get(root, "greedy");
    assert_true(json_is_array(p) && json_is_array(gr));
    g->n_vocab = (int)json_integer_value(json_object_get(root, "n_vocab"));
    g->n_prompt = (int)json_array_size(p);
    g->n_greedy = (int)json_array_size(gr);
    g->prompt = malloc(sizeof(int32_t) * (size_t)g->n_prompt);
    g->greedy = malloc(sizeof(int32_t) * (size_t)g->n_greedy);
    for (int i = 0; i < g->n_prompt; i++)
        g->prompt[i] = (int32_t)json_integer_value(json_array_get(p, (size_t)i));
    for (int i = 0; i < g->n_greedy; i++)
        g->greedy[i] = (int32_t)json_integer_value(json_array_get(gr, (size_t)i));
    json_decref(root);
    snprintf(path, sizeof path, "%s/logits/%s.f32", golden_dir(), name);
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot open %s", path);
    size_t n = (size_t)g->n_prompt * (size_t)g->n_vocab;
    g->logits = malloc(n * sizeof(float));
    assert_int_equal(fread(g->logits, sizeof(float), n, f), n);
    fclose(f);
}

static void golden_free(golden *g)
{
    free(g->prompt);
    free(g->greedy);
    free(g->logits);
}

enum golden_mode {
    GOLDEN_STRICT,    /* every row within tolerance, greedy exact */
    GOLDEN_EARLY,     /* rows 0-1 within tolerance; the rest measured only */
    GOLDEN_MEASURE,   /* measured only (a lossy cache type); rows 0-1 in last_early */
};

/* max |d| / sigma over rows 0-1 of the last run_model_mode */
static double last_early;

/* Runs prompt + greedy through the library; returns max |d| / sigma.
 * mha: legacy files in the decompressed attention (fwd_opts.attn_mha). */
static double run_model_mode(const char *name, const char *model_file, int n_threads, int n_batch,
                             int cache_type, bool mha, enum golden_mode mode)
{
    GOLDEN_REQUIRE();
    golden g;
    golden_load(name, &g);
    char path[1024], err[512] = "";
    snprintf(path, sizeof path, "%s/models/%s", golden_dir(), model_file);
    model *m = NULL;
    int rc = model_load(&m, path, NULL, err, sizeof err);
    if (rc)
        fail_msg("model_load %s: %s", path, err);
    assert_int_equal((int)m->hp.n_vocab, g.n_vocab);
    tpool *tp = NULL;
    assert_int_equal(tpool_create(&tp, n_threads, err, sizeof err), 0);
    fwd_opts fo;
    fwd_opts_default(&fo);
    fo.n_ctx = 256;
    fo.n_batch = n_batch;
    fo.cache_type = cache_type;
    fo.attn_mha = mha;
    fo.tp = tp;
    fwd_state *st = NULL;
    if (fwd_create(&st, m, &fo, err, sizeof err))
        fail_msg("fwd_create: %s", err);
    const size_t V = (size_t)g.n_vocab;
    float *logits = malloc((size_t)g.n_prompt * V * sizeof(float));
    float *last = malloc(V * sizeof(float));
    if (fwd_eval(st, g.prompt, g.n_prompt, logits, last, err, sizeof err))
        fail_msg("fwd_eval: %s", err);

    double mean = 0, var = 0;
    size_t N = (size_t)g.n_prompt * V;
    for (size_t i = 0; i < N; i++)
        mean += g.logits[i];
    mean /= (double)N;
    for (size_t i = 0; i < N; i++)
        var += (g.logits[i] - mean) * (g.logits[i] - mean);
    double sigma = sqrt(var / (double)N);
    double maxd = 0;
    size_t at = 0;
    for (size_t i = 0; i < N; i++) {
        double d = fabs((double)logits[i] - (double)g.logits[i]);
        if (!(d <= maxd)) { /* also catches NaN */
            maxd = isnan(d) ? INFINITY : d;
            at = i;
        }
    }
    double ratio = maxd / sigma;
    double early = 0; /* rows 0-1: every kernel, no cross-position accumulation */
    for (size_t i = 0; i < 2 * V && i < N; i++) {
        double d = fabs((double)logits[i] - (double)g.logits[i]);
        early = d > early || isnan(d) ? (isnan(d) ? INFINITY : d) : early;
    }
    printf("MEASURE golden %s cache=%d rows 0-1: max|d|/sigma=%.3g\n", name, cache_type, early / sigma);
    last_early = early / sigma;
    if (mode != GOLDEN_MEASURE)
        assert_true(early / sigma <= LOGIT_TOL_SIGMA);
    printf("MEASURE golden %s attn=%s simd=%s threads=%d batch=%d: max|d|/sigma=%.3g (max|d|=%.3g at "
           "row %zu col %zu, got %.6f want %.6f, sigma=%.4f)\n",
           name, m->hp.is_mla ? "split" : mha ? "mha" : "absorbed", kern_get()->isa, tpool_size(tp),
           n_batch, ratio, maxd, at / V, at % V,
           (double)logits[at], (double)g.logits[at], sigma);

    int32_t *got = malloc(sizeof(int32_t) * (size_t)g.n_greedy);
    for (int k = 0; k < g.n_greedy; k++) {
        int32_t best = 0;
        for (size_t v = 1; v < V; v++)
            if (last[v] > last[best])
                best = (int32_t)v;
        got[k] = best;
        if (k + 1 < g.n_greedy && fwd_eval(st, &best, 1, NULL, last, err, sizeof err))
            fail_msg("decode: %s", err);
    }
    int first_bad = -1;
    for (int k = 0; k < g.n_greedy && first_bad < 0; k++)
        if (got[k] != g.greedy[k])
            first_bad = k;
    if (first_bad >= 0)
        printf("greedy mismatch at %d: got %d want %d\n", first_bad, got[first_bad],
               g.greedy[first_bad]);
    if (mode == GOLDEN_STRICT) {
        assert_int_equal(first_bad, -1);
        assert_true(ratio <= LOGIT_TOL_SIGMA);
    }
    free(got);
    free(logits);
    free(last);
    fwd_destroy(st);
    tpool_destroy(tp);
    model_free(m);
    golden_free(&g);
    return ratio;
}

static double run_model(const char *name, const char *model_file, int n_threads, int n_batch,
                        int cache_type)
{
    return run_model_mode(name, model_file, n_threads, n_batch, cache_type, true, GOLDEN_STRICT);
}

static void test_f32_legacy(void **state)
{
    (void)state;
    run_model("tiny-f32-legacy", "tiny-f32-legacy.gguf", 2, 64, FWD_CACHE_F32);
}

static void test_ud_iq1_s(void **state)
{
    (void)state;
    run_model("tiny-ud-iq1_s", "tiny-ud-iq1_s.gguf", 2, 64, FWD_CACHE_F32);
}

static void test_ud_iq1_s_nogroups(void **state)
{
    (void)state;
    run_model("tiny-ud-iq1_s-nogroups", "tiny-ud-iq1_s-nogroups.gguf", 2, 64, FWD_CACHE_F32);
}

/* The absorbed form on legacy files (what DeepSeek-R1 runs): the same math
 * as the reference with other rounding.  On the F32 model nothing is
 * quantized downstream, so it stays within the tolerance; on the quantized
 * model a last-bit difference flips an 8-bit rounding and, in this chaotic
 * model, later expert choices: the first rows are checked, the rest
 * measured. */
static void test_absorbed_legacy(void **state)
{
    (void)state;
    run_model_mode("tiny-f32-legacy", "tiny-f32-legacy.gguf", 2, 64, FWD_CACHE_F32, false, GOLDEN_STRICT);
    /* one token per chunk (the GEMV branch) and ragged chunks on one thread */
    run_model_mode("tiny-f32-legacy", "tiny-f32-legacy.gguf", 1, 1, FWD_CACHE_F32, false, GOLDEN_STRICT);
    run_model_mode("tiny-f32-legacy", "tiny-f32-legacy.gguf", 1, 7, FWD_CACHE_F32, false, GOLDEN_STRICT);
    run_model_mode("tiny-ud-iq1_s", "tiny-ud-iq1_s.gguf", 2, 64, FWD_CACHE_F32, false, GOLDEN_EARLY);
}

static void test_mix_mla(void **state)
{
    (void)state;
    run_model("tiny-mix-mla", "tiny-mix-mla.gguf", 2, 64, FWD_CACHE_F32);
}

/* Lossy latent caches (q8_0, and q4_0 as in unsloth's recipe for these
 * files): their drift from the reference's F32-cache logits is measured
 * (bench/RESULTS.md); rows 0-1 must order f32 < q8_0 < q4_0, so a cache
 * type that is silently not applied, or that corrupts the latent, fails. */
static void test_lossy_cache_drift(void **state)
{
    (void)state;
    if (getenv("MOESTREAM_FAST")) { /* the sanitizer passes: no new threading here, 6 more runs */
        printf("skip: lossy cache drift is measured in the default run (MOESTREAM_FAST set)\n");
        skip();
    }
    const char *models[2][2] = {{"tiny-mix-mla", "tiny-mix-mla.gguf"},
                                {"tiny-f32-legacy", "tiny-f32-legacy.gguf"}};
    for (int k = 0; k < 2; k++) {
        double e[3];
        const int types[3] = {FWD_CACHE_F32, FWD_CACHE_Q8_0, FWD_CACHE_Q4_0};
        for (int t = 0; t < 3; t++) {
            run_model_mode(models[k][0], models[k][1], 2, 64, types[t], false, GOLDEN_MEASURE);
            e[t] = last_early;
        }
        printf("MEASURE cache drift %s rows 0-1 max|d|/sigma: f32 %.3g q8_0 %.3g q4_0 %.3g\n",
               models[k][0], e[0], e[1], e[2]);
        assert_true(e[0] < e[1] && e[1] < e[2] && isfinite(e[2]));
    }
}

/* Batch size and thread count do not change the result: the prompt one
 * token at a time on one thread, and in chunks of 7, still match. */
static void test_batch_and_threads_invariant(void **state)
{
    (void)state;
    run_model("tiny-f32-legacy", "tiny-f32-legacy.gguf", 1, 1, FWD_CACHE_F32);
    run_model("tiny-f32-legacy", "tiny-f32-legacy.gguf", 2, 7, FWD_CACHE_F32);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_f32_legacy),
        cmocka_unit_test(test_ud_iq1_s),
        cmocka_unit_test(test_ud_iq1_s_nogroups),
        cmocka_unit_test(test_mix_mla),
        cmocka_unit_test(test_absorbed_legacy),
        cmocka_unit_test(test_batch_and_threads_invariant),
        cmocka_unit_test(test_lossy_cache_drift),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
