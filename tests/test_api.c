/* test_api.c - the public API (include/moestream.h) on the golden models,
 * through that header only:
 *  - the memory plan equals what the engine really allocates (heap and
 *    mapped bytes counted by glibc's allocator, mallinfo2, plus reserved huge
 *    pages mapped) within 1 MB, at
 *    1, 2 and 8 threads and 1 and 4 sequences;
 *  - a budget too small for N sequences is refused naming the most that fit;
 *  - sessions beyond max_seqs are refused (-EBUSY);
 *  - evaluation through a session reproduces the reference's greedy tokens;
 *  - ms_session_sync keeps the common prefix rounded down to whole batches,
 *    evaluates only the rest, and gives the cold run's logits bit for bit;
 *  - generation at temperature 0 gives the reference's greedy tokens and
 *    reuses the cached prompt on a second call. */
#include <errno.h>
#include <jansson.h>
#include <malloc.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "golden.h"

#include "moestream.h"

#define PLAN_TOL_BYTES ((int64_t)1 << 20) /* the bound: plan vs allocation */


static void model_path(char *buf, size_t n, const char *name)
{
    snprintf(buf, n, "%s/models/%s.gguf", golden_dir(), name);
}

typedef struct golden {
    int32_t *prompt, *greedy;
    size_t n_prompt, n_greedy;
} golden;

static void golden_load(const char *name, golden *g)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/logits/%s.json", golden_dir(), name);
    json_error_t je;
    json_t *root = json_load_file(path, 0, &je);
    if (!root)
        fail_msg("%s: %s", path, je.text);
    json_t *p = json_object_get(root, "prompt"), *gr = json_object_get(root, "greedy");
    g->n_prompt = json_array_size(p);
    g->n_greedy = json_array_size(gr);
    assert_true(g->n_prompt > 8 && g->n_greedy >= 8);
    g->prompt = malloc(g->n_prompt * sizeof *g->prompt);
    g->greedy = malloc(g->n_greedy * sizeof *g->greedy);
    for (size_t i = 0; i < g->n_prompt; i++)
        g->prompt[i] = (int32_t)json_integer_value(json_array_get(p, i));
    for (size_t i = 0; i < g->n_greedy; i++)
        g->greedy[i] = (int32_t)json_integer_value(json_array_get(gr, i));
    json_decref(root);
}

static void golden_free(golden *g)
{
    free(g->prompt);
    free(g->greedy);
}

/* Bytes the allocator has handed out: in-use heap chunks of every arena
 * plus chunks it mapped on its own (large allocations).  Under a sanitizer
 * the allocator is the sanitizer's (glibc's mallinfo2 then reads 0): its
 * own count of bytes in use. */
/* Reserved huge pages the process maps (the engine puts its big buffers
 * there when vm.nr_hugepages has enough): not the allocator's. */
static int64_t hugetlb_bytes(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long long kb = 0;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "HugetlbPages: %lld kB", &kb) == 1)
            break;
    if (f)
        fclose(f);
    return kb * 1024;
}

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
/* sanitizer/allocator_interface.h, declared here: not every toolchain
 * ships the header, every sanitizer runtime has the function */
size_t __sanitizer_get_current_allocated_bytes(void);
static int64_t heap_bytes(void)
{
    return (int64_t)__sanitizer_get_current_allocated_bytes() + hugetlb_bytes();
}
#else
static int64_t heap_bytes(void)
{
    struct mallinfo2 mi = mallinfo2();
    return (int64_t)mi.uordblks + (int64_t)mi.hblkhd + hugetlb_bytes();
}
#endif

static int32_t argmax(const float *x, uint32_t n)
{
    int32_t best = 0;
    for (uint32_t i = 1; i < n; i++)
        if (x[i] > x[best])
            best = (int32_t)i;
    return best;
}

/* ---- plan vs allocation ---- */

static void plan_matches(const char *name, int threads, int seqs)
{
    char path[1024], err[512] = "";
    model_path(path, sizeof path, name);
    ms_engine_opts o;
    ms_engine_opts_default(&o);
    o.threads = threads;
    o.max_seqs = seqs;
    o.load_mode = MS_LOAD_RAM;
    const int64_t before = heap_bytes();
    ms_engine *e;
    if (ms_engine_open(&e, path, &o, err, sizeof err))
        fail_msg("open: %s", err);
    ms_session *s[8];
    for (int i = 0; i < seqs; i++)
        if (ms_session_create(e, &s[i], err, sizeof err))
            fail_msg("session %d: %s", i, err);
    const int64_t used = heap_bytes() - before;
    ms_mem_plan p;
    ms_engine_plan(e, &p);
    assert_int_equal(p.threads, threads);
    assert_int_equal(p.max_seqs, seqs);
    assert_int_equal(p.mode, MS_LOAD_RAM);
    const int64_t planned = (int64_t)(p.resident + p.scratch + p.kv + p.experts);
    const int64_t d = used - planned;
    print_message("MEASURE plan %s threads=%d seqs=%d: allocated %.3f MB, planned %.3f MB "
                  "(resident %.3f + scratch %.3f + cache %d x %.3f + experts %.3f), diff %+.3f MB\n",
                  name, threads, seqs, (double)used / 1e6, (double)planned / 1e6,
                  (double)p.resident / 1e6, (double)p.scratch / 1e6, seqs,
                  (double)p.kv_per_seq / 1e6, (double)p.experts / 1e6, (double)d / 1e6);
    if (d > PLAN_TOL_BYTES || d < -PLAN_TOL_BYTES)
        fail_msg("%s threads=%d seqs=%d: allocated %lld bytes, plan %lld (diff %lld > %lld)", name,
                 threads, seqs, (long long)used, (long long)planned, (long long)d,
                 (long long)PLAN_TOL_BYTES);
    for (int i = 0; i < seqs; i++)
        ms_session_destroy(s[i]);
    ms_engine_close(e);
}

static void test_plan_equals_allocation(void **state)
{
    (void)state;
    GOLDEN_REQUIRE();
    static const int threads[] = {1, 2, 8}, seqs[] = {1, 4};
    for (size_t t = 0; t < 3; t++)
        for (size_t q = 0; q < 2; q++) {
            plan_matches("tiny-mix-mla", threads[t], seqs[q]);
            plan_matches("tiny-f32-legacy", threads[t], seqs[q]);
        }
}

/* A budget with room for 2 sequences of the context but not 4: refused,
 * and the message names 2. */
static void test_budget_names_what_fits(void **state)
{
    (void)state;
    GOLDEN_REQUIRE();
    char path[1024], err[512] = "";
    model_path(path, sizeof path, "tiny-mix-mla");
    ms_file *f;
    if (ms_file_open(&f, path, err, sizeof err))
        fail_msg("%s", err);
    ms_engine_opts o;
    ms_engine_opts_default(&o);
    o.threads = 1;
    o.load_mode = MS_LOAD_RAM;
    o.n_ctx = 16384;
    o.max_seqs = 1;
    ms_mem_plan one;
    assert_int_equal(ms_file_plan(f, &o, NULL, &one, err, sizeof err), 0);
    /* exactly two sequences' worth (their caches, and the scratch rows a
     * step of two takes), plus the experts */
    o.max_seqs = 2;
    ms_mem_plan two;
    assert_int_equal(ms_file_plan(f, &o, NULL, &two, err, sizeof err), 0);
    assert_true(two.scratch > one.scratch);
    o.mem = two.resident + two.scratch + two.kv + two.slack + two.requests + two.experts;
    assert_int_equal(ms_file_plan(f, &o, NULL, &two, err, sizeof err), 0);
    o.max_seqs = 4;
    ms_mem_plan four;
    err[0] = 0;
    assert_int_equal(ms_file_plan(f, &o, NULL, &four, err, sizeof err), -ENOMEM);
    print_message("refusal: %s\n", err);
    assert_non_null(strstr(err, "at most 2 sequences"));
    /* one sequence over the budget names the context that fits */
    o.max_seqs = 1;
    o.mem = one.resident + one.scratch + one.kv_per_seq / 2 + one.slack + one.requests + one.experts;
    assert_int_equal(ms_file_plan(f, &o, NULL, &four, err, sizeof err), -ENOMEM);
    print_message("refusal: %s\n", err);
    assert_non_null(strstr(err, "the largest context that fits 1 sequence is"));
    ms_file_close(f);
}

static void test_max_seqs(void **state)
{
    (void)state;
    GOLDEN_REQUIRE();
    char path[1024], err[512] = "";
    model_path(path, sizeof path, "tiny-mix-mla");
    ms_engine_opts o;
    ms_engine_opts_default(&o);
    o.threads = 1;
    o.max_seqs = 2;
    o.n_ctx = 256;
    ms_engine *e;
    if (ms_engine_open(&e, path, &o, err, sizeof err))
        fail_msg("%s", err);
    ms_session *a, *b, *c;
    assert_int_equal(ms_session_create(e, &a, err, sizeof err), 0);
    assert_int_equal(ms_session_create(e, &b, err, sizeof err), 0);
    assert_int_equal(ms_session_create(e, &c, err, sizeof err), -EBUSY);
    ms_session_destroy(a);
    assert_int_equal(ms_session_create(e, &c, err, sizeof err), 0);
    assert_int_equal(ms_session_n_past(c), 0);
    ms_session_destroy(b);
    ms_session_destroy(c);
    ms_engine_close(e);
}

/* ---- evaluation ---- */

static void greedy_via_eval(const char *name, int n_batch)
{
    char path[1024], err[512] = "";
    model_path(path, sizeof path, name);
    golden g;
    golden_load(name, &g);
    ms_engine_opts o;
    ms_engine_opts_default(&o);
    o.n_ctx = 512;
    o.n_batch = n_batch;
    o.max_seqs = 2;
    ms_engine *e;
    if (ms_engine_open(&e, path, &o, err, sizeof err))
        fail_msg("%s", err);
    ms_session *s, *t;
    assert_int_equal(ms_session_create(e, &s, err, sizeof err), 0);
    assert_int_equal(ms_session_create(e, &t, err, sizeof err), 0);
    const uint32_t V = ms_session_n_vocab(s);
    /* two sessions interleaved: each keeps its own cache */
    size_t ne;
    if (ms_session_sync(s, g.prompt, g.n_prompt, &ne, err, sizeof err))
        fail_msg("%s", err);
    assert_int_equal(ne, g.n_prompt);
    if (ms_session_sync(t, g.prompt, g.n_prompt / 2, &ne, err, sizeof err))
        fail_msg("%s", err);
    for (size_t i = 0; i < g.n_greedy; i++) {
        int32_t id = argmax(ms_session_logits(s), V);
        if (id != g.greedy[i])
            fail_msg("%s -b %d: greedy token %zu: got %d want %d", name, n_batch, i, id, g.greedy[i]);
        if (ms_session_eval(s, &id, 1, NULL, err, sizeof err))
            fail_msg("%s", err);
        if (i == 3) { /* the other session moves in between */
            if (ms_session_eval(t, g.prompt + g.n_prompt / 2, 1, NULL, err, sizeof err))
                fail_msg("%s", err);
        }
    }
    ms_session_destroy(s);
    ms_session_destroy(t);
    ms_engine_close(e);
    golden_free(&g);
}

static void test_greedy_through_sessions(void **state)
{
    (void)state;
    GOLDEN_REQUIRE();
    greedy_via_eval("tiny-mix-mla", 64);
    greedy_via_eval("tiny-ud-iq1_s", 7);
    greedy_via_eval("tiny-f32-legacy", 64);
}

/* A second prompt sharing a prefix with the first evaluates only what lies
 * past the last whole batch of the common prefix, and its logits equal a
 * cold session's bit for bit. */
static void test_sync_prefix(void **state)
{
    (void)state;
    GOLDEN_REQUIRE();
    const char *name = "tiny-ud-iq1_s";
    char path[1024], err[512] = "";
    model_path(path, sizeof path, name);
    golden g;
    golden_load(name, &g);
    const int B = 8;
    ms_engine_opts o;
    ms_engine_opts_default(&o);
    o.n_ctx = 512;
    o.n_batch = B;
    o.max_seqs = 2;
    ms_engine *e;
    if (ms_engine_open(&e, path, &o, err, sizeof err))
        fail_msg("%s", err);
    ms_session *warm, *cold;
    assert_int_equal(ms_session_create(e, &warm, err, sizeof err), 0);
    assert_int_equal(ms_session_create(e, &cold, err, sizeof err), 0);
    const uint32_t V = ms_session_n_vocab(warm);
    /* second prompt: the golden prompt with its tail replaced */
    const size_t n = g.n_prompt, common = n - 5;
    int32_t *p2 = malloc((n + 3) * sizeof *p2);
    memcpy(p2, g.prompt, common * sizeof *p2);
    for (size_t i = common; i < n + 3; i++)
        p2[i] = (int32_t)((g.prompt[i % n] + 17 + i) % 4096);
    size_t ne;
    assert_int_equal(ms_session_sync(warm, g.prompt, n, &ne, err, sizeof err), 0);
    assert_int_equal(ms_session_sync(warm, p2, n + 3, &ne, err, sizeof err), 0);
    const size_t keep = common - common % B;
    print_message("sync: %zu common tokens, %zu kept, %zu evaluated of %zu\n", common, keep, ne, n + 3);
    assert_int_equal(ne, n + 3 - keep);
    assert_int_equal(ms_session_sync(cold, p2, n + 3, &ne, err, sizeof err), 0);
    assert_int_equal(ne, n + 3);
    assert_memory_equal(ms_session_logits(warm), ms_session_logits(cold), V * sizeof(float));
    /* the same prompt again: only the last token is evaluated (for its
     * logits), when it starts a batch; else back to the batch start */
    assert_int_equal(ms_session_sync(warm, p2, n + 3, &ne, err, sizeof err), 0);
    assert_int_equal(ne, (n + 2) % B + 1);
    assert_memory_equal(ms_session_logits(warm), ms_session_logits(cold), V * sizeof(float));
    free(p2);
    ms_session_destroy(warm);
    ms_session_destroy(cold);
    ms_engine_close(e);
    golden_free(&g);
}

/* ---- generation ---- */

typedef struct collected {
    int32_t ids[64];
    int n;
    size_t progress;
} collected;

static void on_token(void *ud, int32_t id)
{
    collected *c = ud;
    if (c->n < 64)
        c->ids[c->n++] = id;
}

static void on_progress(void *ud, size_t done, size_t total)
{
    collected *c = ud;
    assert_true(done <= total);
    c->progress = done;
}

static void test_generate_greedy(void **state)
{
    (void)state;
    GOLDEN_REQUIRE();
    const char *name = "tiny-mix-mla";
    char path[1024], err[512] = "";
    model_path(path, sizeof path, name);
    golden g;
    golden_load(name, &g);
    ms_engine_opts o;
    ms_engine_opts_default(&o);
    o.n_ctx = 512;
    o.n_batch = 16;
    ms_engine *e;
    if (ms_engine_open(&e, path, &o, err, sizeof err))
        fail_msg("%s", err);
    ms_session *s;
    assert_int_equal(ms_session_create(e, &s, err, sizeof err), 0);
    ms_gen_opts go;
    ms_gen_opts_default(&go);
    go.sp.temp = 0;
    go.sp.min_p = 0;
    go.n_predict = 8;
    for (int round = 0; round < 2; round++) {
        collected c = {{0}, 0, 0};
        ms_callbacks cb = {NULL, on_token, on_progress, NULL, &c};
        ms_gen_result r;
        if (ms_generate(s, g.prompt, g.n_prompt, &go, &cb, &r, err, sizeof err))
            fail_msg("%s", err);
        assert_int_equal(r.n_prompt, g.n_prompt);
        /* the second round finds the prompt in the cache */
        assert_int_equal(r.n_cached, round ? (int)((g.n_prompt - 1) / 16 * 16) : 0);
        assert_int_equal(c.progress, g.n_prompt - (size_t)r.n_cached);
        for (int i = 0; i < c.n; i++)
            if (c.ids[i] != g.greedy[i] && !ms_token_is_eog(ms_engine_vocab(e), c.ids[i]))
                fail_msg("round %d token %d: got %d want %d", round, i, c.ids[i], g.greedy[i]);
        assert_true(c.n >= 1);
    }
    ms_session_destroy(s);
    ms_engine_close(e);
    golden_free(&g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plan_equals_allocation),
        cmocka_unit_test(test_budget_names_what_fits),
        cmocka_unit_test(test_max_seqs),
        cmocka_unit_test(test_greedy_through_sessions),
        cmocka_unit_test(test_sync_prefix),
        cmocka_unit_test(test_generate_greedy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
