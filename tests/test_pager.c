/* test_pager.c - experts paged through a tiny pool (4 slots: evictions on
 * every token) give bit-for-bit the logits and greedy tokens of the fully
 * resident run on every golden model; the statistics show io_uring with
 * O_DIRECT, bytes read = misses x expert bytes (+ the alignment overhead:
 * at most 8 KiB per matrix read, since slices start 32-byte aligned) and
 * stall time below read time; injected faults: EIO fails the evaluation
 * with file and offset and produces no logits; short reads are retried and
 * a slow disk (stall) is waited for, both to the same result; a bounded
 * fault (eio:1:1) fails one evaluation and the next one on the same pager
 * equals the resident run; a model file truncated under the pager is
 * named as changed on disk with both sizes; the pread
 * fallback gives the same result and says so; the read engine rejects
 * unaligned reads and keeps its in-flight bytes bounded; the cache
 * policies replay a skewed trace with sane hit rates. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <fcntl.h>
#include <math.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cache_policy.h"
#include "cache_replay.h"
#include "engine.h"
#include "forward.h"
#include "model.h"
#include "pager.h"
#include "repack.h"
#include "uring.h"
#include "golden.h"


#define NP 24
#define NG 8

/* logits of NP prompt tokens then NG greedy tokens; returns 0 or the eval
 * error.  pg: NULL = resident. */
static bool use_prefetch;

/* Counts, from the model's own tensor sizes, the expert bytes the pager's
 * misses should have read: misses within one layer all have that layer's
 * gate+up+down size. */
typedef struct counting_src {
    expert_src src;
    const expert_src *inner;
    pager *pg;
    const model *m;
    uint64_t want_bytes;
} counting_src;

static int count_acquire(void *ud, int il, int n, const int32_t *ids, const uint8_t **g,
                         const uint8_t **u, const uint8_t **d, char *err, size_t errlen)
{
    counting_src *c = ud;
    pager_stats a, b;
    pager_get_stats(c->pg, &a);
    int rc = c->inner->acquire(c->inner->ud, il, n, ids, g, u, d, err, errlen);
    pager_get_stats(c->pg, &b);
    const mlayer *L = &c->m->layers[il];
    c->want_bytes += (b.misses - a.misses) *
                     (L->gate_exps.mat_bytes + L->up_exps.mat_bytes + L->down_exps.mat_bytes);
    return rc;
}
static void count_release(void *ud, int il)
{
    counting_src *c = ud;
    c->inner->release(c->inner->ud, il);
}
static void count_prefetch(void *ud, int il, int n, const int32_t *ids)
{
    counting_src *c = ud;
    c->inner->prefetch(c->inner->ud, il, n, ids);
}
static int count_wait(void *ud, int il, int i, bool block, char *err, size_t errlen)
{
    counting_src *c = ud;
    return c->inner->wait(c->inner->ud, il, i, block, err, errlen);
}
static counting_src counter;

static int run(const model *m, pager *pg, float *logits, int32_t *greedy, char *err, size_t errlen)
{
    fwd_opts fo;
    fwd_opts_default(&fo);
    fo.n_ctx = 64;
    fo.n_batch = 16; /* two prompt chunks */
    if (pg) {
        const expert_src *in = pager_src(pg);
        counter = (counting_src){{count_acquire, count_release, count_prefetch, &counter, count_wait,
                                  in->capacity, in->repacked, NULL},
                                 in, pg, m, 0};
    }
    fo.experts = pg ? &counter.src : NULL;
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

/* A pager over m's experts, through the layout the engine builds. */
static int make_pager(pager **pg, const model *m, const pager_opts *po, char *err, size_t errlen)
{
    pager_layout lo;
    if (engine_pager_layout(m, &lo))
        return -ENOMEM;
    int rc = pager_create(pg, &lo, po, err, errlen);
    engine_pager_layout_free(&lo);
    return rc;
}

static model *load_path(const char *path, bool experts)
{
    char err[512];
    model_opts mo;
    model_opts_default(&mo);
    mo.load_experts = experts;
    model *m = NULL;
    if (model_load(&m, path, &mo, err, sizeof err))
        fail_msg("%s", err);
    return m;
}

static model *load(const char *name, bool experts)
{
    GOLDEN_REQUIRE();
    char path[1024];
    snprintf(path, sizeof path, "%s/models/%s", golden_dir(), name);
    return load_path(path, experts);
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
    if (make_pager(&pg, paged, &po, err, sizeof err))
        fail_msg("%s", err);
    if (run(paged, pg, b, gb, err, sizeof err))
        fail_msg("%s", err);
    assert_memory_equal(a, b, NP * V * 4);
    assert_memory_equal(ga, gb, sizeof ga);
    pager_stats s;
    pager_get_stats(pg, &s);
    uint64_t overhead_max = s.misses * 3 * 2 * 4096;
    printf("MEASURE pager %s (%s, 4 slots): %llu hits, %llu misses, %llu bytes read for %llu "
           "needed (+%.2f%% alignment), %s, stall %.4f s of %.4f s reading\n",
           name, cpol_name(policy), (unsigned long long)s.hits, (unsigned long long)s.misses,
           (unsigned long long)s.bytes_read, (unsigned long long)s.read_bytes_needed,
           100.0 * (double)(s.bytes_read - s.read_bytes_needed) / (double)s.read_bytes_needed,
           s.path, s.stall_s, s.busy_s);
    assert_true(s.misses > 0);
    if (!use_prefetch) /* bytes read = misses x expert bytes (+ alignment) */
        assert_true(s.read_bytes_needed == counter.want_bytes);
    assert_true(s.io_uring);
    assert_true(s.direct);
    assert_true(s.bytes_read >= s.read_bytes_needed);
    assert_true(s.bytes_read <= s.read_bytes_needed + overhead_max);
    assert_true(s.errors == 0);
    assert_non_null(strstr(s.path, "io_uring + O_DIRECT"));
    /* overlap: part of the read time (and of the transforms', when the
     * pager repacks) was spent computing, not waiting */
    if (s.transformed)
        printf("MEASURE pager %s: %llu matrices repacked as they landed, %.4f s on the transform thread\n", name,
               (unsigned long long)s.transformed, s.transform_s);
    assert_true(s.stall_s < s.busy_s + s.transform_s);
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
    check_model("tiny-ud-iq1_s.gguf", CPOL_REUSE);
}

/* --repack on: the pager repacks the experts in place as they land
 * (engine_pager_layout's transform) and the forward pass runs the repacked
 * products on them: still the resident run's bits (which are repacked too),
 * and the slots count the repacked size. */
static void test_repacked_bit_exact(void **state)
{
    (void)state;
    static const char *words[] = {"auto", "on", "off"};
    const int was = repack_mode();
    assert_int_equal(repack_mode_set("on"), 0);
    model *m = load("tiny-ud-iq1_s.gguf", false);
    pager_layout lo;
    assert_int_equal(engine_pager_layout(m, &lo), 0);
    assert_non_null(lo.transform);
    size_t plain = 0, xf = 0;
    for (size_t i = 0; i < (size_t)lo.n_layer * (size_t)lo.n_expert * 3; i++) {
        plain += lo.ext[i].len;
        xf += lo.ext[i].xf_len ? lo.ext[i].xf_len : lo.ext[i].len;
    }
    printf("MEASURE pager repack: expert matrices %zu bytes plain, %zu with the room to repack in place (%.3fx), "
           "slot %zu bytes\n", plain, xf, (double)xf / (double)plain, pager_slot_bytes(&lo));
    assert_true(xf > plain && (double)xf <= 1.25 * (double)plain);
    engine_pager_layout_free(&lo);
    model_free(m);
    check_model("tiny-ud-iq1_s.gguf", CPOL_LFU);
    check_model("tiny-mix-mla.gguf", CPOL_LRU);
    use_prefetch = true;
    check_model("tiny-ud-iq1_s-nogroups.gguf", CPOL_LFU);
    use_prefetch = false;
    assert_int_equal(repack_mode_set(words[was]), 0);
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
    assert_int_equal(make_pager(&pg, paged, &po, err, sizeof err), 0);
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

/* Pages name through a 4-slot pool with a fault spec and/or the pread path
 * and checks the result equals the resident run.  Fills *out. */
static void paged_equal(const char *name, const char *fault, bool no_uring, pager_stats *out)
{
    char err[512];
    model *res = load(name, true), *paged = load(name, false);
    const size_t V = res->hp.n_vocab;
    float *a = malloc(NP * V * 4), *b = malloc(NP * V * 4);
    int32_t ga[NG], gb[NG];
    assert_int_equal(run(res, NULL, a, ga, err, sizeof err), 0);
    if (fault)
        setenv("MOESTREAM_FAULT", fault, 1);
    if (no_uring)
        setenv("MOESTREAM_NO_URING", "1", 1);
    pager_opts po = {4, CPOL_LRU, false};
    pager *pg = NULL;
    int rc = make_pager(&pg, paged, &po, err, sizeof err);
    unsetenv("MOESTREAM_FAULT");
    unsetenv("MOESTREAM_NO_URING");
    if (rc)
        fail_msg("%s", err);
    if (run(paged, pg, b, gb, err, sizeof err))
        fail_msg("%s", err);
    assert_memory_equal(a, b, NP * V * 4);
    assert_memory_equal(ga, gb, sizeof ga);
    pager_get_stats(pg, out);
    assert_true(out->errors == 0);
    pager_destroy(pg);
    free(a);
    free(b);
    model_free(res);
    model_free(paged);
}

static void test_injected_short_reads(void **state)
{
    (void)state;
    pager_stats s;
    paged_equal("tiny-ud-iq1_s.gguf", "short:2", false, &s);
    printf("MEASURE injected short reads: results identical, %llu reads continued\n",
           (unsigned long long)s.resubmits);
    assert_true(s.resubmits > 0);
}

/* A slow disk (every read lands >= 5 ms after it went out): the pass over
 * resident experts does not wait for it, the result is the same. */
static void test_injected_stall(void **state)
{
    (void)state;
    pager_stats s;
    paged_equal("tiny-mix-mla.gguf", "stall:5", false, &s);
    printf("MEASURE injected 5 ms stall: results identical, stalled %.3f s of %.3f s reading\n",
           s.stall_s, s.busy_s);
    assert_true(s.stall_s > 0.005);
    assert_true(s.stall_s < s.busy_s);
}

/* EIO on the very first read: the call fails, names file and offset, and
 * writes no logits at all. */
static void test_injected_eio_no_logits(void **state)
{
    (void)state;
    char err[512] = "";
    model *paged = load("tiny-ud-iq1_s.gguf", false);
    setenv("MOESTREAM_FAULT", "eio:1", 1);
    pager_opts po = {4, CPOL_LRU, false};
    pager *pg = NULL;
    assert_int_equal(make_pager(&pg, paged, &po, err, sizeof err), 0);
    unsetenv("MOESTREAM_FAULT");
    const size_t V = paged->hp.n_vocab;
    fwd_opts fo;
    fwd_opts_default(&fo);
    fo.n_ctx = 64;
    fo.experts = pager_src(pg);
    fwd_state *st = NULL;
    assert_int_equal(fwd_create(&st, paged, &fo, err, sizeof err), 0);
    float *all = malloc(NP * V * 4), *last = malloc(V * 4);
    memset(all, 0x7f, NP * V * 4);
    memset(last, 0x7f, V * 4);
    int32_t ids[NP];
    for (int i = 0; i < NP; i++)
        ids[i] = i + 10;
    int rc = fwd_eval(st, ids, NP, all, last, err, sizeof err);
    assert_int_equal(rc, -EIO);
    assert_int_equal(fwd_n_past(st), 0);
    assert_non_null(strstr(err, "tiny-ud-iq1_s.gguf"));
    assert_non_null(strstr(err, "offset"));
    for (size_t i = 0; i < NP * V; i++)
        if (((uint32_t *)all)[i] != 0x7f7f7f7fu)
            fail_msg("logit %zu written by a failed evaluation", i);
    for (size_t i = 0; i < V; i++)
        if (((uint32_t *)last)[i] != 0x7f7f7f7fu)
            fail_msg("last logit %zu written by a failed evaluation", i);
    fwd_destroy(st);
    pager_destroy(pg);
    free(all);
    free(last);
    model_free(paged);
}

/* Only the first read fails (a transient fault): that evaluation fails,
 * the pager throws the slot away, and the next evaluation on the same pager
 * reads it again and equals the resident run bit for bit. */
static void test_injected_eio_once_recovers(void **state)
{
    (void)state;
    char err[512] = "";
    model *res = load("tiny-ud-iq1_s.gguf", true), *paged = load("tiny-ud-iq1_s.gguf", false);
    const size_t V = res->hp.n_vocab;
    float *a = malloc(NP * V * 4), *b = malloc(NP * V * 4);
    int32_t ga[NG], gb[NG];
    assert_int_equal(run(res, NULL, a, ga, err, sizeof err), 0);
    setenv("MOESTREAM_FAULT", "eio:1:1", 1);
    pager_opts po = {4, CPOL_LFU, false};
    pager *pg = NULL;
    assert_int_equal(make_pager(&pg, paged, &po, err, sizeof err), 0);
    unsetenv("MOESTREAM_FAULT");
    assert_int_equal(run(paged, pg, b, gb, err, sizeof err), -EIO);
    printf("MEASURE injected one EIO: %s\n", err);
    assert_non_null(strstr(err, "offset"));
    if (run(paged, pg, b, gb, err, sizeof err))
        fail_msg("the run after a transient fault failed: %s", err);
    assert_memory_equal(a, b, NP * V * 4);
    assert_memory_equal(ga, gb, sizeof ga);
    pager_stats s;
    pager_get_stats(pg, &s);
    assert_true(s.errors == 1);
    pager_destroy(pg);
    free(a);
    free(b);
    model_free(res);
    model_free(paged);
}

/* The model file is truncated while the pager serves from it: the failing
 * read says the file changed on disk, with the sizes at open and now. */
static void test_truncated_file_named(void **state)
{
    (void)state;
    GOLDEN_REQUIRE();
    char src[1024], path[1024], err[512] = "", want[1200];
    snprintf(src, sizeof src, "%s/models/tiny-ud-iq1_s.gguf", golden_dir());
    const char *tmp = getenv("MOESTREAM_TMP");
    snprintf(path, sizeof path, "%s/test_pager_trunc_%d.gguf", tmp && *tmp ? tmp : "/tmp", (int)getpid());
    FILE *in = fopen(src, "rb"), *out = fopen(path, "wb");
    assert_non_null(in);
    assert_non_null(out);
    char buf[65536];
    size_t n, size = 0;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0) {
        assert_int_equal(fwrite(buf, 1, n, out), n);
        size += n;
    }
    fclose(in);
    assert_int_equal(fclose(out), 0);
    model *paged = load_path(path, false);
    pager_opts po = {4, CPOL_LRU, false};
    pager *pg = NULL;
    assert_int_equal(make_pager(&pg, paged, &po, err, sizeof err), 0);
    assert_int_equal(truncate(path, (off_t)(size / 3)), 0);
    const size_t V = paged->hp.n_vocab;
    float *b = malloc(NP * V * 4);
    int32_t gb[NG];
    assert_int_equal(run(paged, pg, b, gb, err, sizeof err), -EIO);
    printf("MEASURE truncated under the pager: %s\n", err);
    snprintf(want, sizeof want, "model file %s changed on disk (size %zu -> %zu)", path, size, size / 3);
    if (!strstr(err, want))
        fail_msg("want \"%s\" in \"%s\"", want, err);
    pager_destroy(pg);
    model_free(paged);
    free(b);
    unlink(path);
}

/* io_uring unavailable: pread gives the same result and the stats say so. */
static void test_pread_fallback(void **state)
{
    (void)state;
    pager_stats s;
    paged_equal("tiny-ud-iq1_s.gguf", NULL, true, &s);
    printf("MEASURE fallback: %s\n", s.path);
    assert_false(s.io_uring);
    assert_non_null(strstr(s.path, "pread"));
    assert_non_null(strstr(s.path, "disabled"));
}

/* The read engine alone: alignment is checked at submission, the bytes on
 * the ring stay under the bound, every byte arrives intact, a read past
 * the end of the file succeeds with the bytes that exist. */
static void test_uring_engine(void **state)
{
    (void)state;
    GOLDEN_REQUIRE();
    char path[1024], err[512] = "";
    snprintf(path, sizeof path, "%s/models/tiny-ud-iq1_s.gguf", golden_dir());
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    off_t fsize = lseek(fd, 0, SEEK_END);
    const size_t chunk = 16384, n = 64, bytes = chunk * n;
    assert_true((size_t)fsize > bytes + 2 * chunk);
    uint8_t *buf = mmap(NULL, bytes + chunk, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(buf != MAP_FAILED);
    uint8_t *want = malloc(bytes + chunk);
    struct iovec iov = {buf, bytes + chunk};
    uring_opts o;
    uring_opts_default(&o);
    o.depth = 8;
    o.n_reqs = (int)n + 1;
    o.max_inflight = 4 * chunk;
    o.fault = "";
    uring *u = NULL;
    const char *paths[] = {path};
    assert_int_equal(uring_create(&u, paths, 1, &iov, 1, &o, err, sizeof err), 0);
    assert_int_equal(uring_read(u, 0, buf, 512, chunk, chunk, 0), -EINVAL);     /* offset */
    assert_int_equal(uring_read(u, 0, buf, 0, chunk + 8, chunk, 0), -EINVAL);   /* length */
    assert_int_equal(uring_read(u, 0, buf + 32, 0, chunk, chunk, 0), -EINVAL);  /* buffer */
    for (size_t i = 0; i < n; i++) /* backwards through the file: no readahead luck */
        assert_int_equal(uring_read(u, 0, buf + i * chunk, (n - 1 - i) * chunk, chunk, chunk, i), 0);
    /* the file's last partial page: aligned length past the end */
    uint64_t tail = (uint64_t)fsize & ~(uint64_t)4095;
    size_t tail_need = (size_t)((uint64_t)fsize - tail);
    if (tail_need)
        assert_int_equal(uring_read(u, 0, buf + bytes, tail, chunk, tail_need, n), 0);
    assert_int_equal(uring_submit(u), 0);
    int done = 0;
    uint64_t tag;
    int res;
    while (uring_wait(u, true, &tag, &res, err, sizeof err) == 0) {
        if (res)
            fail_msg("%s", err);
        done++;
    }
    assert_int_equal(done, (int)n + (tail_need ? 1 : 0));
    for (size_t i = 0; i < n; i++)
        assert_int_equal(pread(fd, want + i * chunk, chunk, (off_t)((n - 1 - i) * chunk)), (ssize_t)chunk);
    assert_memory_equal(buf, want, bytes);
    if (tail_need) {
        assert_int_equal(pread(fd, want, tail_need, (off_t)tail), (ssize_t)tail_need);
        assert_memory_equal(buf + bytes, want, tail_need);
    }
    uring_stats st;
    uring_get_stats(u, &st);
    printf("MEASURE uring: %s, %llu reads, peak %zu bytes on the ring (bound %zu), %llu waited for room\n",
           st.path, (unsigned long long)st.reads, st.peak_inflight, o.max_inflight,
           (unsigned long long)st.queued_waits);
    assert_true(st.peak_inflight <= o.max_inflight);
    assert_true(st.queued_waits > 0);
    assert_true(st.errors == 0);
    uring_destroy(u);
    munmap(buf, bytes + chunk);
    free(want);
    close(fd);
}

/* Hit rate of a policy over a seeded skewed trace (Zipf-like per layer,
 * decode order: tokens, then layers). */
static double replay_skewed(int kind, int slots)
{
    enum { L = 8, X = 64, K = 6, T = 1500 };
    cpol p;
    assert_int_equal(cpol_init(&p, kind, slots, L, X, L), 0);
    int32_t slot_of[L * X];
    bool busy[1024] = {0};
    for (int i = 0; i < L * X; i++)
        slot_of[i] = -1;
    uint64_t rng = 12345, hit = 0, acc = 0;
    int ex_hist[X] = {0};
    for (int t = 0; t < T; t++)
        for (int l = 0; l < L; l++) {
            cpol_tick(&p, l);
            int32_t sel[K], cur[K];
            for (int k = 0; k < K; k++) {
                int e, dup;
                do { /* P(e) ~ 1/(e+1): a few hot experts, a long tail */
                    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
                    double r = (double)(rng >> 11) / 9007199254740992.0;
                    e = (int)floor(pow((double)X + 1, r)) - 1;
                    e = (e + 7 * l) % X; /* a different hot set per layer */
                    dup = 0;
                    for (int q = 0; q < k; q++)
                        dup |= sel[q] == e;
                } while (dup);
                sel[k] = e;
                ex_hist[e]++;
                int key = l * X + e, sl = slot_of[key];
                acc++;
                if (sl >= 0) {
                    hit++;
                } else {
                    sl = cpol_victim(&p, busy);
                    assert_true(sl >= 0);
                    if (p.key[sl] >= 0)
                        slot_of[p.key[sl]] = -1;
                    slot_of[key] = sl;
                }
                cpol_access(&p, sl, key);
                busy[sl] = true;
                cur[k] = sl;
            }
            for (int k = 0; k < K; k++)
                busy[cur[k]] = false;
        }
    int distinct = 0;
    for (int e = 0; e < X; e++)
        distinct += ex_hist[e] > 0;
    assert_true(distinct > X / 2); /* the trace is not degenerate */
    cpol_free(&p);
    return (double)hit / (double)acc;
}

static void test_replay_policies(void **state)
{
    (void)state;
    static const double share[] = {0.05, 0.10, 0.20, 0.40};
    double h[2][4];
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < 4; i++) {
            h[k][i] = replay_skewed(k, (int)(share[i] * 8 * 64));
            assert_true(h[k][i] >= 0 && h[k][i] <= 1);
        }
    printf("MEASURE replay (skewed synthetic trace) lru %.1f %.1f %.1f %.1f%%, lfu %.1f %.1f %.1f %.1f%%\n",
           100 * h[0][0], 100 * h[0][1], 100 * h[0][2], 100 * h[0][3], 100 * h[1][0],
           100 * h[1][1], 100 * h[1][2], 100 * h[1][3]);
    for (int i = 1; i < 4; i++) /* LRU is a stack algorithm: more room never hurts */
        assert_true(h[0][i] >= h[0][i - 1]);
    assert_true(h[0][3] > 0.3);
    for (int i = 0; i < 4; i++) /* frequency pays on a skewed trace */
        assert_true(h[1][i] >= h[0][i]);
    assert_true(h[1][0] > h[0][0] + 0.05);
}

/* LEARN learns from the trace which state precedes a pick: on one layer
 * where experts 0 and 1 take turns (token t picks t mod 2) and 2 is picked
 * on every token, the one of 0 and 1 just picked is not needed next.
 * Recency (LRU) evicts the other, and so do frequency (LFU: the older
 * request has faded more) and REUSE (its streak average is lower); LEARN
 * has seen that "picked on the last visit" is never followed by a pick
 * there and evicts it.  Checked once the slow averages have settled
 * (tokens 2000-2099: ~0.5, just above after a pick, just below after a
 * miss: a state of its own each). */
static void test_learn_alternating(void **state)
{
    (void)state;
    for (int kind = 0; kind < CPOL_N_KINDS; kind++) {
        cpol p;
        assert_int_equal(cpol_init(&p, kind, 3, 1, 8, 1), 0);
        int wrong = 0, right = 0;
        for (int t = 0; t < 2100; t++) {
            cpol_tick(&p, 0);
            cpol_access(&p, t % 2, t % 2); /* slot e holds expert e */
            cpol_access(&p, 2, 2);
            if (t < 2000)
                continue;
            int v = cpol_victim(&p, NULL);
            right += v == t % 2;
            wrong += v != t % 2;
        }
        if (kind == CPOL_LEARN)
            assert_int_equal(right, 100);
        else
            assert_true(wrong > 50); /* the pattern needs learning */
        cpol_free(&p);
    }
}

/* Belady's MIN on traces small enough to solve by hand (cache_replay.h
 * rules: hits of a step pinned first, no bypass). */
static void test_replay_min_by_hand(void **state)
{
    (void)state;
    crep_result r;
    /* a b c a b c, one expert per step, 2 slots: MIN keeps a at c (b is
     * next used later), then c at b: 2 hits; LRU always evicts the one
     * needed next: 0 hits; 3 slots: every repeat hits */
    const int32_t abc[6] = {0, 1, 2, 0, 1, 2};
    crep_trace t1 = {6, 1, 1, 3, abc};
    assert_int_equal(crep_min(&t1, 2, &r), 0);
    assert_true(r.hits == 2 && r.accesses == 6);
    /* both hits come back 3 tokens later; the first three are first uses */
    assert_true(r.dist_hits[2] == 2 && r.dist_accesses[2] == 3 && r.dist_accesses[CREP_NDIST - 1] == 3);
    assert_int_equal(crep_policy(&t1, CPOL_LRU, 2, &r), 0);
    assert_true(r.hits == 0 && r.accesses == 6);
    assert_int_equal(crep_min(&t1, 3, &r), 0);
    assert_true(r.hits == 3);
    /* two experts per step, 3 slots: {0 1} {2 3} {0 2} {1 3}.  At step 2,
     * 2 takes the free slot and 3 must evict 0 or 1 (2 is pinned): MIN
     * evicts 1 (needed last); then 0 and 2 hit, 3 hits: 3 of 8, the most
     * possible (4 keys all reused, only 3 slots after step 2). */
    const int32_t pin[8] = {0, 1, 2, 3, 0, 2, 1, 3};
    crep_trace t2 = {4, 1, 2, 4, pin};
    assert_int_equal(crep_min(&t2, 3, &r), 0);
    assert_true(r.hits == 3 && r.accesses == 8);
    /* keys are (layer, expert): expert 0 of layers 0 and 1 are two keys;
     * 1 slot: they evict each other (0 hits), 2 slots: 4 of 6 hit; -1
     * entries are not accesses */
    const int32_t lay[6] = {0, 0, 0, 0, 0, 0};
    crep_trace t3 = {3, 2, 1, 1, lay};
    assert_int_equal(crep_min(&t3, 1, &r), 0);
    assert_true(r.hits == 0 && r.accesses == 6);
    assert_int_equal(crep_min(&t3, 2, &r), 0);
    assert_true(r.hits == 4);
    const int32_t gap[4] = {0, -1, -1, 0};
    crep_trace t4 = {2, 1, 2, 1, gap};
    assert_int_equal(crep_min(&t4, 1, &r), 0);
    assert_true(r.hits == 1 && r.accesses == 2);
    /* MIN bounds every policy on the skewed synthetic trace's shape */
    for (int kind = 0; kind < CPOL_N_KINDS; kind++) {
        crep_result a;
        assert_int_equal(crep_policy(&t2, kind, 3, &a), 0);
        assert_true(a.hits <= 3);
    }
}

/* The replay command on a real recorded trace, when the data is there. */
static void test_replay_cli(void **state)
{
    (void)state;
    const char *bin = getenv("MOESTREAM_BIN");
    char dir[1024], cmd[2300], line[512];
    snprintf(dir, sizeof dir, "%s/../routing/esft-vanilla-lite/intent", golden_dir());
    if (!bin || access(dir, R_OK) != 0) {
        printf("skip: replay CLI: no MOESTREAM_BIN or no recorded routing at %s\n", dir);
        skip();
    }
    snprintf(cmd, sizeof cmd, "'%s' replay '%s' --tokens 3000", bin, dir);
    FILE *f = popen(cmd, "r");
    assert_non_null(f);
    enum { NPOL = CPOL_N_KINDS, RMIN = NPOL }; /* rows: the policies in enum order, then MIN */
    static const char *rows[NPOL + 1] = {"lru", "lfu", "reuse", "learn", "min"};
    double h[NPOL + 1][4], ratio[NPOL][4];
    int got = 0, last = -1;
    while (fgets(line, sizeof line, f)) {
        printf("MEASURE replay intent %s", line);
        int k = -1;
        for (int q = 0; q <= NPOL; q++)
            if (!strncmp(line, rows[q], strlen(rows[q])) && line[strlen(rows[q])] == ' ')
                k = q;
        if (k >= 0) {
            assert_int_equal(sscanf(line + strlen(rows[k]), " %lf%% %lf%% %lf%% %lf%%", &h[k][0], &h[k][1],
                                    &h[k][2], &h[k][3]), 4);
            got |= 1 << k;
            last = k;
        } else if (strstr(line, "/ min") && last >= 0 && last < NPOL) {
            assert_int_equal(sscanf(strstr(line, "min") + 3, " %lfx %lfx %lfx %lfx", &ratio[last][0],
                                    &ratio[last][1], &ratio[last][2], &ratio[last][3]), 4);
            got |= (1 << (NPOL + 1)) << last;
        }
    }
    assert_int_equal(pclose(f), 0);
    assert_int_equal(got, (1 << (2 * NPOL + 1)) - 1); /* every row and every ratio row */
    for (int i = 0; i < 4; i++) {
        for (int k = 0; k < NPOL; k++) {
            assert_true(h[k][i] >= 0 && h[k][i] <= h[RMIN][i] + 0.05); /* MIN bounds them all */
            assert_true(fabs(ratio[k][i] - h[k][i] / h[RMIN][i]) < 0.006);
        }
        assert_true(h[CPOL_LFU][i] >= h[CPOL_LRU][i]); /* frequency beats recency on real routing */
        assert_true(h[CPOL_REUSE][i] >= h[CPOL_LRU][i]);
        /* the default (LEARN) beats every other policy here */
        for (int k = 0; k < CPOL_LEARN; k++)
            assert_true(h[CPOL_LEARN][i] >= h[k][i]);
    }
    assert_true(h[RMIN][0] > 20 && h[RMIN][3] > 70);
}

/* ---- the pager alone: fake experts in a temp file, no model ---- */

/* Layer 0 has no experts (a dense layer), layers 1 and 2 have FX each.
 * Matrix lengths are not page multiples and extents start 32-byte aligned
 * (as GGUF slices do), so every read needs the aligned superset. */
enum { FL = 3, FX = 6 };
static const uint64_t flen[3] = {5000, 5000, 7000};

typedef struct fake {
    char path[1024];
    const char *paths[1];
    pager_extent ext[FL * FX * 3];
    pager_layout lo;
} fake;

static uint8_t fake_byte(int il, int e, int k, uint64_t i)
{
    uint64_t h = ((uint64_t)il * 1000003u + (uint64_t)e * 7919u + (uint64_t)k * 131u + i) * 0x9E3779B97F4A7C15ull;
    return (uint8_t)(h >> 56);
}

static void fake_make(fake *f)
{
    memset(f, 0, sizeof *f);
    const char *tmp = getenv("MOESTREAM_TMP");
    snprintf(f->path, sizeof f->path, "%s/test_pager_fake_%d.bin", tmp && *tmp ? tmp : "/tmp", (int)getpid());
    FILE *out = fopen(f->path, "wb");
    assert_non_null(out);
    uint64_t pos = 96; /* a header, then the experts, each matrix 32-byte aligned */
    for (int il = 1; il < FL; il++)
        for (int e = 0; e < FX; e++)
            for (int k = 0; k < 3; k++) {
                pos = (pos + 31) & ~(uint64_t)31;
                f->ext[(il * FX + e) * 3 + k] = (pager_extent){0, pos, flen[k], 0};
                pos += flen[k];
            }
    for (uint64_t i = 0; i < pos; i++)
        fputc(0xEE, out); /* filler: never an expert byte at its place */
    for (int il = 1; il < FL; il++)
        for (int e = 0; e < FX; e++)
            for (int k = 0; k < 3; k++) {
                const pager_extent *x = &f->ext[(il * FX + e) * 3 + k];
                assert_int_equal(fseek(out, (long)x->off, SEEK_SET), 0);
                for (uint64_t i = 0; i < x->len; i++)
                    fputc(fake_byte(il, e, k, i), out);
            }
    assert_int_equal(fclose(out), 0);
    f->paths[0] = f->path;
    f->lo = (pager_layout){FL, FX, 1, f->paths, f->ext, NULL, NULL, false};
}

static pager *fake_pager(fake *f, int slots, int policy, const char *fault)
{
    char err[512] = "";
    pager_opts po = {slots, policy, false};
    pager *pg = NULL;
    if (fault)
        setenv("MOESTREAM_FAULT", fault, 1);
    int rc = pager_create(&pg, &f->lo, &po, err, sizeof err);
    unsetenv("MOESTREAM_FAULT");
    if (rc)
        fail_msg("pager_create: %s", err);
    return pg;
}

/* The transform of test_unit_transform: the bytes reversed and xored, then
 * XF_EXTRA more (the repacked layouts are larger than the file's), in place */
enum { XF_EXTRA = 3000 };
static bool xf_on;
static int xf_fail_e = -1; /* this expert's transform fails */

static uint8_t xf_byte(int il, int e, int k, uint64_t i)
{
    return i < flen[k] ? (uint8_t)(fake_byte(il, e, k, flen[k] - 1 - i) ^ 0x5a) : (uint8_t)(i * 7 + (uint64_t)k);
}

static int xf_fn(void *ud, int il, int e, int k, uint8_t *region, size_t region_bytes, size_t data_off, char *err,
                 size_t errlen)
{
    (void)ud;
    if (e == xf_fail_e) {
        snprintf(err, errlen, "transform refused expert %d", e);
        return -EINVAL;
    }
    assert_true(data_off + flen[k] <= region_bytes && flen[k] + XF_EXTRA <= region_bytes);
    uint8_t *tmp = malloc(flen[k]);
    assert_non_null(tmp);
    memcpy(tmp, region + data_off, flen[k]);
    for (uint64_t i = 0; i < flen[k]; i++)
        assert_int_equal(tmp[i], fake_byte(il, e, k, i)); /* the file bytes where it says */
    for (uint64_t i = 0; i < flen[k] + XF_EXTRA; i++)
        region[i] = i < flen[k] ? (uint8_t)(tmp[flen[k] - 1 - i] ^ 0x5a) : (uint8_t)(i * 7 + (uint64_t)k);
    free(tmp);
    return 0;
}

/* Whether the pointers of expert i of the last acquire hold (il, e)'s bytes
 * (transformed when xf_on). */
static void check_bytes(int il, int e, const uint8_t *g, const uint8_t *u, const uint8_t *d)
{
    const uint8_t *m[3] = {g, u, d};
    for (int k = 0; k < 3; k++)
        for (uint64_t i = 0; i < flen[k] + (xf_on ? XF_EXTRA : 0); i++) {
            const uint8_t want = xf_on ? xf_byte(il, e, k, i) : fake_byte(il, e, k, i);
            if (m[k][i] != want)
                fail_msg("layer %d expert %d matrix %d byte %llu: got %u want %u", il, e, k,
                         (unsigned long long)i, m[k][i], want);
        }
}

/* acquire + wait for every expert + byte check; the set stays pinned until
 * the caller releases.  Returns the first error (message in err). */
static int fake_take(pager *pg, int il, int n, const int32_t *ids, char *err, size_t errlen)
{
    const expert_src *src = pager_src(pg);
    const uint8_t *g[16], *u[16], *d[16];
    err[0] = 0;
    int rc = src->acquire(src->ud, il, n, ids, g, u, d, err, errlen);
    for (int i = 0; i < n && !rc; i++)
        rc = src->wait(src->ud, il, i, true, err, errlen);
    for (int i = 0; i < n && !rc; i++)
        check_bytes(il, ids[i], g[i], u[i], d[i]);
    return rc;
}

/* One acquire..release; returns the misses it caused. */
static uint64_t fake_step(pager *pg, int il, int n, const int32_t *ids)
{
    char err[512];
    pager_stats a, b;
    pager_get_stats(pg, &a);
    if (fake_take(pg, il, n, ids, err, sizeof err))
        fail_msg("layer %d: %s", il, err);
    pager_src(pg)->release(pager_src(pg)->ud, il);
    pager_get_stats(pg, &b);
    assert_true(b.hits + b.misses == a.hits + a.misses + (uint64_t)n);
    return b.misses - a.misses;
}

static uint64_t one(pager *pg, int il, int32_t e) { return fake_step(pg, il, 1, &e); }

/* LRU through a 3-slot pool: the expert used longest ago goes first, a hit
 * refreshes; bytes read = misses x the three matrices' aligned supersets. */
static void test_unit_eviction_order(void **state)
{
    (void)state;
    fake f;
    fake_make(&f);
    pager *pg = fake_pager(&f, 3, CPOL_LRU, NULL);
    assert_int_equal(one(pg, 1, 0) + one(pg, 1, 1) + one(pg, 1, 2), 3); /* cold: {0 1 2} */
    assert_int_equal(one(pg, 1, 0), 0);  /* hit; LRU order now 1 2 0 */
    assert_int_equal(one(pg, 1, 3), 1);  /* evicts 1 */
    assert_int_equal(one(pg, 1, 2), 0);
    assert_int_equal(one(pg, 1, 0), 0);
    assert_int_equal(one(pg, 1, 3), 0);
    assert_int_equal(one(pg, 1, 1), 1);  /* 1 was the victim; now evicts 2 */
    assert_int_equal(one(pg, 1, 0), 0);
    assert_int_equal(one(pg, 1, 2), 1);
    /* keys are (layer, expert): the same id in layer 2 is another expert */
    assert_int_equal(one(pg, 2, 0), 1);
    pager_stats s;
    pager_get_stats(pg, &s);
    assert_true(s.misses == 7 && s.hits == 5);
    assert_int_equal(s.used_slots, 3);
    assert_true(s.read_bytes_needed == 7 * (flen[0] + flen[1] + flen[2]));
    assert_true(s.bytes_read >= s.read_bytes_needed);
    assert_true(s.bytes_read <= s.read_bytes_needed + 7 * 3 * 2 * 4096);
    char err[512];
    int32_t bad = FX;
    assert_int_equal(fake_take(pg, 1, 1, &bad, err, sizeof err), -EINVAL); /* no such expert */
    pager_src(pg)->release(pager_src(pg)->ud, 1);
    bad = 0;
    assert_int_equal(fake_take(pg, 0, 1, &bad, err, sizeof err), -EINVAL); /* dense layer */
    pager_src(pg)->release(pager_src(pg)->ud, 0);
    printf("MEASURE unit eviction: %s, %llu bytes read for %llu needed\n", s.path,
           (unsigned long long)s.bytes_read, (unsigned long long)s.read_bytes_needed);
    pager_destroy(pg);
    unlink(f.path);
}

/* Experts of the current acquire stay put: the misses of an acquire never
 * take the slots of its hits, a read-ahead never takes a pinned slot, and
 * a layer wanting more experts than the pool holds is an error. */
static void test_unit_pinning(void **state)
{
    (void)state;
    fake f;
    fake_make(&f);
    pager *pg = fake_pager(&f, 3, CPOL_LRU, NULL);
    const expert_src *src = pager_src(pg);
    assert_false(src->repacked); /* no transform, not marked */
    char err[512];
    int32_t a[3] = {0, 1, 2}, b[3] = {3, 4, 0};
    assert_int_equal(fake_step(pg, 1, 3, a), 3);
    /* 0 is the oldest, but it is a hit of this acquire: 3 and 4 must take 1 and 2 */
    assert_int_equal(fake_take(pg, 1, 3, b, err, sizeof err), 0);
    /* while all three are pinned, a read-ahead finds no slot and does nothing */
    int32_t guess[2] = {5, 1};
    src->prefetch(src->ud, 2, 2, guess);
    pager_stats s;
    pager_get_stats(pg, &s);
    assert_true(s.prefetched == 0);
    src->release(src->ud, 1);
    assert_int_equal(fake_step(pg, 1, 3, b), 0); /* all still there, bytes intact */
    int32_t four[4] = {0, 1, 2, 3};
    const uint8_t *g[4], *u[4], *d[4];
    assert_int_equal(src->acquire(src->ud, 1, 4, four, g, u, d, err, sizeof err), -ENOMEM);
    assert_non_null(strstr(err, "pool holds 3"));
    src->release(src->ud, 1);
    pager_destroy(pg);
    /* a file stored repacked (moestream repack): served as read, marked
     * repacked for the forward pass without any transform */
    f.lo.repacked = true;
    pg = fake_pager(&f, 3, CPOL_LRU, NULL);
    assert_true(pager_src(pg)->repacked);
    assert_int_equal(fake_step(pg, 1, 3, a), 3); /* the file's bytes, untouched */
    pager_destroy(pg);
    unlink(f.path);
}

/* Every submission transfers only half: the rest is asked for again and
 * the bytes are the same. */
static void test_unit_short_reads(void **state)
{
    (void)state;
    fake f;
    fake_make(&f);
    pager *pg = fake_pager(&f, 4, CPOL_LFU, "short:1");
    for (int t = 0; t < 3; t++)
        for (int il = 1; il < FL; il++) {
            int32_t ids[2] = {(t * 2 + il) % FX, (t * 3 + 1) % FX};
            fake_step(pg, il, ids[0] == ids[1] ? 1 : 2, ids);
        }
    pager_stats s;
    pager_get_stats(pg, &s);
    printf("MEASURE unit short reads: %llu misses, %llu reads continued\n", (unsigned long long)s.misses,
           (unsigned long long)s.resubmits);
    assert_true(s.resubmits >= 3 * s.misses); /* each of the three reads at least once */
    assert_true(s.errors == 0);
    pager_destroy(pg);
    unlink(f.path);
}

/* A layout with a transform (the engine's in-place repack of paged
 * experts): the matrices are served transformed, from regions that count
 * the transformed size; a refused transform fails the request with its
 * message like a failed read, and the next request reads the expert again;
 * read-ahead and short reads land transformed too. */
static void test_unit_transform(void **state)
{
    (void)state;
    fake f;
    fake_make(&f);
    const size_t plain = pager_slot_bytes(&f.lo);
    for (size_t i = 0; i < FL * FX * 3; i++)
        if (f.ext[i].len)
            f.ext[i].xf_len = f.ext[i].len + XF_EXTRA;
    char err[512] = "";
    pager_opts po = {3, CPOL_LRU, false};
    pager *pg = NULL;
    assert_int_equal(pager_create(&pg, &f.lo, &po, err, sizeof err), -EINVAL); /* xf_len without a transform */
    assert_non_null(strstr(err, "transform"));
    f.lo.transform = xf_fn;
    const size_t xf = pager_slot_bytes(&f.lo);
    printf("MEASURE unit transform: slot %zu bytes plain, %zu with the transform's room\n", plain, xf);
    assert_true(xf >= plain && xf >= (flen[0] + flen[1] + flen[2] + 3 * XF_EXTRA));
    xf_on = true;
    pg = fake_pager(&f, 3, CPOL_LRU, "short:1");
    assert_true(pager_src(pg)->repacked);
    assert_int_equal(one(pg, 1, 0) + one(pg, 1, 1) + one(pg, 2, 3), 3);
    assert_int_equal(one(pg, 1, 0), 0); /* a hit: served as transformed, not transformed twice */
    assert_int_equal(one(pg, 1, 4), 1); /* evicts (1, 1) */
    const int32_t ids[2] = {5, 2};
    pager_src(pg)->prefetch(pager_src(pg)->ud, 2, 2, ids);
    assert_int_equal(fake_step(pg, 2, 2, ids), 0);
    xf_fail_e = 3;
    const int32_t bad = 3;
    assert_true(fake_take(pg, 1, 1, &bad, err, sizeof err) < 0);
    assert_non_null(strstr(err, "transform refused expert 3"));
    pager_src(pg)->release(pager_src(pg)->ud, 1);
    xf_fail_e = -1;
    assert_int_equal(one(pg, 1, 3), 1); /* thrown away, read again, intact */
    pager_stats s;
    pager_get_stats(pg, &s);
    assert_true(s.slot_bytes == xf);
    pager_destroy(pg);
    xf_on = false;
    unlink(f.path);
}

/* The second read fails once: that request fails naming file and offset,
 * the slot is thrown away on release, the same expert is read again on the
 * next request and is intact. */
static void test_unit_eio(void **state)
{
    (void)state;
    fake f;
    fake_make(&f);
    pager *pg = fake_pager(&f, 3, CPOL_LRU, "eio:2:1");
    const expert_src *src = pager_src(pg);
    char err[512];
    int32_t e = 4;
    assert_int_equal(fake_take(pg, 2, 1, &e, err, sizeof err), -EIO);
    printf("MEASURE unit EIO: %s\n", err);
    assert_non_null(strstr(err, f.path));
    assert_non_null(strstr(err, "offset"));
    src->release(src->ud, 2);
    pager_stats s;
    pager_get_stats(pg, &s);
    assert_int_equal(s.used_slots, 0); /* nothing half-read is kept */
    assert_int_equal(one(pg, 2, 4), 1);
    assert_int_equal(one(pg, 2, 4), 0);
    pager_get_stats(pg, &s);
    assert_true(s.errors == 1);
    pager_destroy(pg);
    unlink(f.path);
}

/* Read-ahead that the next layer uses: hits, counted as used. */
static void test_unit_prefetch_use(void **state)
{
    (void)state;
    fake f;
    fake_make(&f);
    pager *pg = fake_pager(&f, 4, CPOL_LFU, NULL);
    const expert_src *src = pager_src(pg);
    int32_t guess[2] = {1, 3}, want[3] = {1, 3, 5};
    src->prefetch(src->ud, 2, 2, guess);
    assert_int_equal(fake_step(pg, 2, 3, want), 1);
    pager_stats s;
    pager_get_stats(pg, &s);
    assert_true(s.prefetched == 2 && s.prefetch_used == 2);
    assert_true(s.hits == 2 && s.misses == 1);
    /* a read-ahead that fails is read again when asked for, wherever its
     * read stood at that moment; the request succeeds */
    pager_destroy(pg);
    pg = fake_pager(&f, 4, CPOL_LFU, "eio:1:1");
    src = pager_src(pg);
    src->prefetch(src->ud, 1, 1, guess);
    fake_step(pg, 1, 1, guess); /* fails the test on an error or wrong bytes */
    assert_int_equal(fake_step(pg, 1, 1, guess), 0);
    pager_get_stats(pg, &s);
    assert_true(s.errors == 1);
    pager_destroy(pg);
    unlink(f.path);
}

/* Read-ahead that is never used: its slots are taken back by later misses
 * (after their reads land), nothing is lost, and destroying a pager with
 * reads ahead still in flight is clean. */
static void test_unit_prefetch_drop(void **state)
{
    (void)state;
    fake f;
    fake_make(&f);
    pager *pg = fake_pager(&f, 3, CPOL_LRU, NULL);
    const expert_src *src = pager_src(pg);
    int32_t guess[3] = {3, 4, 5}, want[3] = {0, 1, 2};
    src->prefetch(src->ud, 1, 3, guess);
    assert_int_equal(fake_step(pg, 1, 3, want), 3);
    assert_int_equal(one(pg, 1, 4), 1); /* the guess was dropped */
    pager_stats s;
    pager_get_stats(pg, &s);
    assert_true(s.prefetched == 3 && s.prefetch_used == 0);
    src->prefetch(src->ud, 2, 3, guess);
    pager_destroy(pg); /* with those reads possibly in flight */
    unlink(f.path);
}

/* Warm start: the hottest experts of a saved state are read into a fresh
 * pool at load and then hit; the file is checked (missing, malformed,
 * another layout). */
static void test_unit_warm_start(void **state)
{
    (void)state;
    fake f;
    fake_make(&f);
    char path[1100], err[512];
    snprintf(path, sizeof path, "%s.state", f.path);
    pager *pg = fake_pager(&f, 4, CPOL_LFU, NULL);
    for (int i = 0; i < 5; i++)
        one(pg, 1, 2);
    for (int i = 0; i < 3; i++)
        one(pg, 1, 4);
    one(pg, 2, 1);
    one(pg, 2, 1);
    one(pg, 2, 0);
    assert_int_equal(pager_state_save(pg, path, err, sizeof err), 0);
    pager_destroy(pg);
    FILE *in = fopen(path, "r");
    assert_non_null(in);
    char line[256];
    assert_non_null(fgets(line, sizeof line, in));
    assert_string_equal(line, "moestream-cache-state 1 lfu 3 6\n");
    assert_non_null(fgets(line, sizeof line, in));
    assert_int_equal(strncmp(line, "1 2 ", 4), 0); /* hottest first */
    fclose(in);

    pg = fake_pager(&f, 3, CPOL_LFU, NULL);
    int n = pager_state_load(pg, path, err, sizeof err);
    if (n < 0)
        fail_msg("%s", err);
    assert_int_equal(n, 3); /* the pool's worth: 1/2, 1/4, 2/1 */
    assert_int_equal(one(pg, 1, 2) + one(pg, 1, 4) + one(pg, 2, 1), 0);
    pager_stats s;
    pager_get_stats(pg, &s);
    assert_true(s.prefetched == 3 && s.prefetch_used == 3 && s.misses == 0);
    assert_int_equal(one(pg, 2, 0), 1); /* the fourth did not fit */
    pager_destroy(pg);

    pg = fake_pager(&f, 3, CPOL_REUSE, NULL); /* another policy: same hot set, no seeding */
    assert_int_equal(pager_state_load(pg, path, err, sizeof err), 3);
    assert_int_equal(one(pg, 1, 2), 0);
    pager_destroy(pg);

    pg = fake_pager(&f, 3, CPOL_LFU, NULL);
    FILE *out = fopen(path, "w");
    fputs("moestream-cache-state 1 lfu 3 6\n1 2 0.5\n1 99 0.25\n", out);
    fclose(out);
    assert_int_equal(pager_state_load(pg, path, err, sizeof err), -EBADMSG);
    assert_non_null(strstr(err, "line 3"));
    out = fopen(path, "w");
    fputs("moestream-cache-state 1 lfu 3 7\n", out);
    fclose(out);
    assert_int_equal(pager_state_load(pg, path, err, sizeof err), -EINVAL);
    unlink(path);
    assert_int_equal(pager_state_load(pg, path, err, sizeof err), -ENOENT);
    pager_destroy(pg);
    unlink(f.path);
}

/* cached() reports the experts whose bytes are in the pool, per layer. */
static void test_unit_cached(void **state)
{
    (void)state;
    fake f;
    fake_make(&f);
    pager *pg = fake_pager(&f, 3, CPOL_LRU, NULL);
    const expert_src *src = pager_src(pg);
    uint8_t mask[FX];
    assert_non_null(src->cached);
    assert_int_equal(src->cached(src->ud, 1, mask), 0);
    assert_int_equal(one(pg, 1, 4) + one(pg, 1, 1) + one(pg, 2, 1), 3);
    assert_int_equal(src->cached(src->ud, 1, mask), 2);
    assert_true(mask[1] && mask[4] && !mask[0] && !mask[2] && !mask[3] && !mask[5]);
    assert_int_equal(src->cached(src->ud, 2, mask), 1);
    assert_true(mask[1] && !mask[4]);
    assert_int_equal(one(pg, 2, 5), 1); /* evicts layer 1's expert 4 (LRU) */
    assert_int_equal(src->cached(src->ud, 1, mask), 1);
    assert_true(mask[1] && !mask[4]);
    assert_int_equal(src->cached(src->ud, 0, mask), 0); /* a dense layer */
    pager_destroy(pg);
    unlink(f.path);
}

/* --bench-pool-routing: once the pool holds top-k experts of every layer,
 * decoding reads nothing (the router's own choice keeps missing). */
static void test_pool_routing(void **state)
{
    (void)state;
    char err[512] = "";
    model *m = load("tiny-ud-iq1_s.gguf", false);
    const int K = (int)m->hp.n_expert_used;
    int n_moe = 0;
    for (uint32_t il = 0; il < m->hp.n_layer; il++)
        n_moe += m->layers[il].is_moe;
    uint64_t decode_misses[2];
    for (int pr = 0; pr < 2; pr++) {
        pager_opts po = {2 * K * n_moe, CPOL_LFU, false};
        pager *pg = NULL;
        assert_int_equal(make_pager(&pg, m, &po, err, sizeof err), 0);
        fwd_opts fo;
        fwd_opts_default(&fo);
        fo.n_ctx = 64;
        fo.experts = pager_src(pg);
        fo.pool_routing = pr;
        fwd_state *st = NULL;
        assert_int_equal(fwd_create(&st, m, &fo, err, sizeof err), 0);
        float *last = malloc(m->hp.n_vocab * sizeof *last);
        int32_t ids[8] = {0, 17, 300, 41, 999, 5, 77, 2000};
        assert_int_equal(fwd_eval(st, ids, 8, NULL, last, err, sizeof err), 0);
        pager_stats a, b;
        for (int t = 0; t < 28; t++) {
            if (t == 4) /* a layer short of k experts after the prompt routes freely once */
                pager_get_stats(pg, &a);
            int32_t tok = (int32_t)((t * 131 + 7) % 4000); /* distinct inputs, distinct routes */
            if (fwd_eval(st, &tok, 1, NULL, last, err, sizeof err))
                fail_msg("%s", err);
        }
        for (uint32_t v = 0; v < m->hp.n_vocab; v++)
            assert_true(isfinite(last[v]));
        pager_get_stats(pg, &b);
        decode_misses[pr] = b.misses - a.misses;
        assert_true(b.hits - a.hits + decode_misses[pr] >= (uint64_t)(24 * K * n_moe));
        free(last);
        fwd_destroy(st);
        pager_destroy(pg);
    }
    printf("MEASURE pool routing: 24 decode tokens after 4, %llu misses routed freely, %llu confined to the pool\n",
           (unsigned long long)decode_misses[0], (unsigned long long)decode_misses[1]);
    assert_true(decode_misses[0] > 0);
    assert_int_equal(decode_misses[1], 0);
    model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bit_exact_ud_iq1_s),
        cmocka_unit_test(test_unit_cached),
        cmocka_unit_test(test_pool_routing),
        cmocka_unit_test(test_bit_exact_others),
        cmocka_unit_test(test_prefetch_bit_exact),
        cmocka_unit_test(test_repacked_bit_exact),
        cmocka_unit_test(test_injected_eio),
        cmocka_unit_test(test_injected_eio_no_logits),
        cmocka_unit_test(test_injected_short_reads),
        cmocka_unit_test(test_injected_stall),
        cmocka_unit_test(test_injected_eio_once_recovers),
        cmocka_unit_test(test_truncated_file_named),
        cmocka_unit_test(test_pread_fallback),
        cmocka_unit_test(test_uring_engine),
        cmocka_unit_test(test_replay_policies),
        cmocka_unit_test(test_replay_min_by_hand),
        cmocka_unit_test(test_learn_alternating),
        cmocka_unit_test(test_replay_cli),
        cmocka_unit_test(test_unit_eviction_order),
        cmocka_unit_test(test_unit_pinning),
        cmocka_unit_test(test_unit_short_reads),
        cmocka_unit_test(test_unit_eio),
        cmocka_unit_test(test_unit_transform),
        cmocka_unit_test(test_unit_prefetch_use),
        cmocka_unit_test(test_unit_prefetch_drop),
        cmocka_unit_test(test_unit_warm_start),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
