/* test_threadpool.c - the fork/join pool: every thread runs each job exactly
 * once with the right (ith, nth); what the jobs write with plain stores is
 * visible to the caller after tpool_run returns, and what the caller writes
 * before tpool_run is visible to the jobs (the generation counter and the
 * done count carry the ordering: under -fsanitize=thread a missing
 * happens-before shows up as a race here); pools of 1..8 threads
 * (oversubscribed on a small machine), created and destroyed repeatedly;
 * tpool_split covers [0, n) without overlap and evenly; a NULL pool runs the
 * job on the caller; an idle pool's workers go to sleep (the process uses
 * almost no CPU: a nap-polling pool fails this) and every fork wakes them
 * (a lost wake-up hangs the test). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "threadpool.h"

#define MAX_THREADS 8

typedef struct count_job {
    int calls[MAX_THREADS]; /* plain ints on purpose: the pool must order them */
    int nth_seen[MAX_THREADS];
} count_job;

static void count_fn(void *ctx, int ith, int nth)
{
    count_job *j = ctx;
    j->calls[ith]++;
    j->nth_seen[ith] = nth;
}

static void test_every_thread_once(void **state)
{
    (void)state;
    const int sizes[] = {1, 2, 3, 4, 8};
    for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
        char err[256];
        tpool *p = NULL;
        assert_int_equal(tpool_create(&p, sizes[k], err, sizeof err), 0);
        const int n = tpool_size(p);
        assert_int_equal(n, sizes[k]);
        count_job j;
        memset(&j, 0, sizeof j);
        const int rounds = n > 2 ? 100 : 500; /* oversubscribed pools join slowly */
        for (int r = 0; r < rounds; r++) {
            tpool_run(p, count_fn, &j);
            for (int i = 0; i < n; i++) {
                if (j.calls[i] != r + 1)
                    fail_msg("pool of %d, round %d: thread %d ran %d times", n, r, i, j.calls[i]);
                assert_int_equal(j.nth_seen[i], n);
            }
        }
        printf("MEASURE pool of %d (%s): %d fork/joins, each thread once per job\n", n,
               tpool_describe(p), rounds);
        tpool_destroy(p);
    }
}

/* The caller fills x, the jobs compute y = 2x + round on their slices, the
 * caller checks y and refills x: data flows both ways across each join. */
typedef struct axpy_job {
    long n;
    int round;
    int32_t *x, *y;
} axpy_job;

static void axpy_fn(void *ctx, int ith, int nth)
{
    axpy_job *j = ctx;
    long lo, hi;
    tpool_split(j->n, ith, nth, &lo, &hi);
    for (long i = lo; i < hi; i++)
        j->y[i] = 2 * j->x[i] + j->round;
}

static void test_data_visible_both_ways(void **state)
{
    (void)state;
    char err[256];
    tpool *p = NULL;
    assert_int_equal(tpool_create(&p, 3, err, sizeof err), 0);
    axpy_job j = {10007, 0, malloc(10007 * sizeof(int32_t)), malloc(10007 * sizeof(int32_t))};
    assert_non_null(j.x);
    assert_non_null(j.y);
    uint32_t seed = 12345;
    for (j.round = 0; j.round < 50; j.round++) {
        for (long i = 0; i < j.n; i++) {
            seed = seed * 1664525u + 1013904223u; /* distinct values: a stale read cannot pass */
            j.x[i] = (int32_t)(seed >> 8);
        }
        tpool_run(p, axpy_fn, &j);
        for (long i = 0; i < j.n; i++)
            if (j.y[i] != 2 * j.x[i] + j.round)
                fail_msg("round %d index %ld: got %d want %d", j.round, i, j.y[i], 2 * j.x[i] + j.round);
    }
    free(j.x);
    free(j.y);
    tpool_destroy(p);
}

static void test_create_destroy(void **state)
{
    (void)state;
    for (int k = 0; k < 20; k++) {
        char err[256];
        tpool *p = NULL;
        assert_int_equal(tpool_create(&p, 1 + k % 4, err, sizeof err), 0);
        count_job j;
        memset(&j, 0, sizeof j);
        if (k % 2) /* half of them destroyed without ever running a job */
            tpool_run(p, count_fn, &j);
        tpool_destroy(p);
    }
    tpool_destroy(NULL);
}

static void test_split(void **state)
{
    (void)state;
    const long ns[] = {0, 1, 7, 64, 1000, 100003};
    for (size_t a = 0; a < sizeof ns / sizeof *ns; a++)
        for (int nth = 1; nth <= 9; nth++) {
            long next = 0, mn = ns[a], mx = 0;
            for (int ith = 0; ith < nth; ith++) {
                long lo, hi;
                tpool_split(ns[a], ith, nth, &lo, &hi);
                if (lo != next || hi < lo)
                    fail_msg("n %ld nth %d ith %d: [%ld, %ld) after %ld", ns[a], nth, ith, lo, hi, next);
                next = hi;
                mn = hi - lo < mn ? hi - lo : mn;
                mx = hi - lo > mx ? hi - lo : mx;
            }
            assert_int_equal(next, ns[a]);
            assert_true(mx - mn <= 1);
        }
}

static void test_null_pool(void **state)
{
    (void)state;
    count_job j;
    memset(&j, 0, sizeof j);
    tpool_run(NULL, count_fn, &j);
    assert_int_equal(j.calls[0], 1);
    assert_int_equal(j.nth_seen[0], 1);
    assert_int_equal(tpool_size(NULL), 1);
    char err[256];
    tpool *p = NULL;
    assert_int_equal(tpool_create(&p, 2000, err, sizeof err), -EINVAL);
    assert_null(p);
}

static double cpu_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static void test_idle_sleeps(void **state)
{
    (void)state;
    char err[256];
    tpool *p = NULL;
    assert_int_equal(tpool_create(&p, 2, err, sizeof err), 0);
    count_job j;
    memset(&j, 0, sizeof j);
    for (int r = 0; r < 4; r++) {
        tpool_run(p, count_fn, &j);
        /* long enough for the worker to finish spinning and yielding */
        nanosleep(&(struct timespec){1, 0}, NULL);
        const double c0 = cpu_seconds();
        nanosleep(&(struct timespec){0, 300000000}, NULL);
        const double used = cpu_seconds() - c0;
        printf("MEASURE idle pool of 2, round %d: %.3f ms CPU in 300 ms\n", r, used * 1e3);
        if (used > 0.003)
            fail_msg("an idle pool used %.3f ms of CPU in 300 ms: its workers poll", used * 1e3);
    }
    /* the sleeping worker woke for every job */
    assert_int_equal(j.calls[0], 4);
    assert_int_equal(j.calls[1], 4);
    tpool_destroy(p); /* wakes a sleeping worker to stop it */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_thread_once),
        cmocka_unit_test(test_data_visible_both_ways),
        cmocka_unit_test(test_create_destroy),
        cmocka_unit_test(test_split),
        cmocka_unit_test(test_null_pool),
        cmocka_unit_test(test_idle_sleeps),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
