/* test_pager.c - experts paged through a tiny pool (4 slots: evictions on
 * every token) give bit-for-bit the logits and greedy tokens of the fully
 * resident run on every golden model; the statistics show io_uring with
 * O_DIRECT, bytes read = misses x expert bytes (+ at most 8 KiB alignment
 * per matrix), and injected faults: EIO fails the evaluation with file and
 * offset and produces no logits; short reads are retried to the same result. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cache_policy.h"
#include "forward.h"
#include "model.h"
#include "pager.h"

static const char *golden_dir(void)
{
    const char *d = getenv("MOESTREAM_GOLDEN");
    return d && *d ? d : "../shared/golden";
}

#define NP 24
#define NG 8

/* logits of NP prompt tokens then NG greedy tokens; returns 0 or the eval
 * error.  pg: NULL = resident. */
static bool use_prefetch;

static int run(const model *m, pager *pg, float *logits, int32_t *greedy, char *err, size_t errlen)
{
    fwd_opts fo;
    fwd_opts_default(&fo);
    fo.n_ctx = 64;
    fo.n_batch = 16; /* two prompt chunks */
    fo.experts = pg ? pager_src(pg) : NULL;
    fo.prefetch = use_prefetch;
    fwd_state *st = NULL;
    int rc = fwd_create(&st, m, &fo, err, errlen);
    if (rc)
        return rc;
    int32_t ids[NP];
    for (int i = 0; i < NP; i++)
        ids[i] = (int32_t)((i * 131 + 7) % 4000);
    ids[0] = 0;
    const uint32_t V = m->hp.n_vocab;
    float *last = malloc(V * sizeof *last);
    rc = fwd_eval(st, ids, NP, logits, last, err, errlen);
    for (int k = 0; k < NG && !rc; k++) {
        int32_t b = 0;
        for (uint32_t v = 1; v < V; v++)
            if (last[v] > last[b])
                b = (int32_t)v;
        greedy[k] = b;
        rc = fwd_eval(st, &b, 1, NULL, last, err, errlen);
    }
    free(last);
    fwd_destroy(st);
    return rc;
}

static model *load(const char *name, bool experts)
{
    char path[1024], err[512];
    snprintf(path, sizeof path, "%s/models/%s", golden_dir(), name);
    model_opts mo;
    model_opts_default(&mo);
    mo.load_experts = experts;
    model *m = NULL;
    if (model_load(&m, path, &mo, err, sizeof err))
        fail_msg("%s", err);
    return m;
}

static void check_model(const char *name, int policy)
{
    char err[512];
    model *res = load(name, true), *paged = load(name, false);
    const size_t V = res->hp.n_vocab;
    float *a = malloc(NP * V * 4), *b = malloc(NP * V * 4);
    int32_t ga[NG], gb[NG];
    assert_int_equal(run(res, NULL, a, ga, err, sizeof err), 0);
    pager_opts po = {4, policy, false};
    pager *pg = NULL;
    if (pager_create(&pg, paged, &po, err, sizeof err))
        fail_msg("%s", err);
    if (run(paged, pg, b, gb, err, sizeof err))
        fail_msg("%s", err);
    assert_memory_equal(a, b, NP * V * 4);
    assert_memory_equal(ga, gb, sizeof ga);
    pager_stats s;
    pager_get_stats(pg, &s);
    uint64_t overhead_max = s.misses * 3 * 2 * 4096;
    printf("MEASURE pager %s (%s, 4 slots): %llu hits, %llu misses, %llu bytes read for %llu "
           "needed (+%.2f%%), io_uring=%d O_DIRECT=%d, stall %.4f s of %.4f s reading\n",
           name, cpol_name(policy), (unsigned long long)s.hits, (unsigned long long)s.misses,
           (unsigned long long)s.bytes_read, (unsigned long long)s.read_bytes_needed,
           100.0 * (double)(s.bytes_read - s.read_bytes_needed) / (double)s.read_bytes_needed,
           s.io_uring, s.direct, s.stall_s, s.busy_s);
    assert_true(s.misses > 0);
    assert_true(s.io_uring);
    assert_true(s.direct);
    assert_true(s.bytes_read >= s.read_bytes_needed);
    assert_true(s.bytes_read <= s.read_bytes_needed + overhead_max);
    assert_true(s.errors == 0);
    if (use_prefetch) {
        printf("MEASURE prefetch %s: %llu read ahead, %llu used (%.1f%%)\n", name,
               (unsigned long long)s.prefetched, (unsigned long long)s.prefetch_used,
               s.prefetched ? 100.0 * (double)s.prefetch_used / (double)s.prefetched : 0.0);
        assert_true(s.prefetched > 0);
    }
    pager_destroy(pg);
    free(a);
    free(b);
    model_free(res);
    model_free(paged);
}

static void test_bit_exact_ud_iq1_s(void **state)
{
    (void)state;
    check_model("tiny-ud-iq1_s.gguf", CPOL_LRU);
}

static void test_bit_exact_others(void **state)
{
    (void)state;
    check_model("tiny-mix-mla.gguf", CPOL_LFU);
    check_model("tiny-f32-legacy.gguf", CPOL_LRU);
    check_model("tiny-ud-iq1_s-nogroups.gguf", CPOL_LFU);
}

/* Reading the next layer's experts ahead changes nothing in the result. */
static void test_prefetch_bit_exact(void **state)
{
    (void)state;
    use_prefetch = true;
    check_model("tiny-ud-iq1_s.gguf", CPOL_LFU);
    check_model("tiny-mix-mla.gguf", CPOL_LRU);
    use_prefetch = false;
}

static void test_injected_eio(void **state)
{
    (void)state;
    char err[512] = "";
    model *paged = load("tiny-ud-iq1_s.gguf", false);
    setenv("MOESTREAM_FAULT", "eio:5", 1);
    pager_opts po = {4, CPOL_LRU, false};
    pager *pg = NULL;
    assert_int_equal(pager_create(&pg, paged, &po, err, sizeof err), 0);
    unsetenv("MOESTREAM_FAULT");
    const size_t V = paged->hp.n_vocab;
    float *b = malloc(NP * V * 4);
    int32_t gb[NG];
    int rc = run(paged, pg, b, gb, err, sizeof err);
    printf("MEASURE injected EIO: rc=%d: %s\n", rc, err);
    assert_int_equal(rc, -EIO);
    assert_non_null(strstr(err, "tiny-ud-iq1_s.gguf"));
    assert_non_null(strstr(err, "offset"));
    pager_destroy(pg);
    free(b);
    model_free(paged);
}

static void test_injected_short_reads(void **state)
{
    (void)state;
    char err[512];
    model *res = load("tiny-ud-iq1_s.gguf", true), *paged = load("tiny-ud-iq1_s.gguf", false);
    const size_t V = res->hp.n_vocab;
    float *a = malloc(NP * V * 4), *b = malloc(NP * V * 4);
    int32_t ga[NG], gb[NG];
    assert_int_equal(run(res, NULL, a, ga, err, sizeof err), 0);
    setenv("MOESTREAM_FAULT", "short:2", 1);
    pager_opts po = {4, CPOL_LRU, false};
    pager *pg = NULL;
    assert_int_equal(pager_create(&pg, paged, &po, err, sizeof err), 0);
    unsetenv("MOESTREAM_FAULT");
    if (run(paged, pg, b, gb, err, sizeof err))
        fail_msg("%s", err);
    pager_stats s;
    pager_get_stats(pg, &s);
    assert_memory_equal(a, b, NP * V * 4);
    assert_memory_equal(ga, gb, sizeof ga);
    printf("MEASURE injected short reads: results identical\n");
    pager_destroy(pg);
    free(a);
    free(b);
    model_free(res);
    model_free(paged);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bit_exact_ud_iq1_s),
        cmocka_unit_test(test_bit_exact_others),
        cmocka_unit_test(test_prefetch_bit_exact),
        cmocka_unit_test(test_injected_eio),
        cmocka_unit_test(test_injected_short_reads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
