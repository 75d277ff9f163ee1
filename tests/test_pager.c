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
#include "forward.h"
#include "model.h"
#include "pager.h"
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
                                  in->capacity},
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
    /* overlap: part of the read time was spent computing, not waiting */
    assert_true(s.stall_s < s.busy_s);
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
    int rc = pager_create(&pg, paged, &po, err, sizeof err);
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
    assert_int_equal(pager_create(&pg, paged, &po, err, sizeof err), 0);
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
    assert_int_equal(pager_create(&pg, paged, &po, err, sizeof err), 0);
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
    assert_int_equal(pager_create(&pg, paged, &po, err, sizeof err), 0);
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
    assert_int_equal(cpol_init(&p, kind, slots, L * X, L), 0);
    int32_t slot_of[L * X];
    bool busy[1024] = {0};
    for (int i = 0; i < L * X; i++)
        slot_of[i] = -1;
    uint64_t rng = 12345, hit = 0, acc = 0;
    int ex_hist[X] = {0};
    for (int t = 0; t < T; t++)
        for (int l = 0; l < L; l++) {
            cpol_tick(&p);
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
    double h[2][4];
    int rows = 0;
    while (fgets(line, sizeof line, f)) {
        int k = !strncmp(line, "lru", 3) ? 0 : !strncmp(line, "lfu", 3) ? 1 : -1;
        if (k < 0)
            continue;
        assert_int_equal(sscanf(line + 3, " %lf%% %lf%% %lf%% %lf%%", &h[k][0], &h[k][1], &h[k][2],
                                &h[k][3]), 4);
        rows++;
        printf("MEASURE replay intent %s", line);
    }
    assert_int_equal(pclose(f), 0);
    assert_int_equal(rows, 2);
    for (int i = 0; i < 4; i++) {
        assert_true(h[0][i] >= 0 && h[0][i] <= 100 && h[1][i] >= 0 && h[1][i] <= 100);
        assert_true(h[1][i] >= h[0][i]); /* the default (LFU) is the better one */
    }
    assert_true(h[1][3] > 50);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bit_exact_ud_iq1_s),
        cmocka_unit_test(test_bit_exact_others),
        cmocka_unit_test(test_prefetch_bit_exact),
        cmocka_unit_test(test_injected_eio),
        cmocka_unit_test(test_injected_eio_no_logits),
        cmocka_unit_test(test_injected_short_reads),
        cmocka_unit_test(test_injected_stall),
        cmocka_unit_test(test_injected_eio_once_recovers),
        cmocka_unit_test(test_truncated_file_named),
        cmocka_unit_test(test_pread_fallback),
        cmocka_unit_test(test_uring_engine),
        cmocka_unit_test(test_replay_policies),
        cmocka_unit_test(test_replay_cli),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
