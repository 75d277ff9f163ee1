/* threadpool.c - persistent pinned workers with a generation-counter fork
 * and a spinning join.
 *
 * Why spin: decode forks ~10 jobs per layer and each job is tens of
 * microseconds; a futex wake/sleep round trip per job would cost more than
 * the work.  Workers spin briefly on the generation counter, then yield,
 * then sleep on a condition variable that tpool_run signals only when
 * someone sleeps: an idle pool (a server between requests, chat waiting
 * for the user) costs no CPU and no timer wake-ups.
 * Placement: hwloc enumerates physical cores (not SMT siblings); worker i is
 * bound to core i, so thread i's scratch memory is first-touched on that
 * core's NUMA node. */
#include "threadpool.h"

#include <errno.h>
#include <hwloc.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct tpool {
    int n;
    pthread_t *threads;
    hwloc_topology_t topo;
    hwloc_bitmap_t *cpusets; /* per thread, NULL if unpinned */
    _Atomic unsigned gen;    /* bumped to start a job */
    _Atomic int done;        /* workers finished with the current job */
    _Atomic int stop;
    _Atomic int sleepers;   /* workers in (or entering) the condvar wait */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    tpool_fn fn;
    void *ctx;
    char desc[160];
};

struct worker_arg {
    tpool *p;
    int ith;
};

static void pin_self(tpool *p, int ith)
{
    if (p->cpusets && p->cpusets[ith])
        hwloc_set_cpubind(p->topo, p->cpusets[ith], HWLOC_CPUBIND_THREAD);
}

static void *worker_main(void *arg)
{
    struct worker_arg wa = *(struct worker_arg *)arg;
    free(arg);
    tpool *p = wa.p;
    pin_self(p, wa.ith);
    unsigned seen = 0;
    for (;;) {
        unsigned g;
        int spins = 0;
        while ((g = atomic_load_explicit(&p->gen, memory_order_acquire)) == seen) {
            if (atomic_load_explicit(&p->stop, memory_order_relaxed))
                return NULL;
            /* Spin, then yield, then sleep until the next fork.  The
             * sleeper count goes up before gen is read again and tpool_run
             * bumps gen before it reads the count (both sequentially
             * consistent), so one of the two always sees the other: no
             * lost wake-up. */
            if (++spins > 200000) {
                pthread_mutex_lock(&p->mu);
                atomic_fetch_add(&p->sleepers, 1);
                while (atomic_load(&p->gen) == seen && !atomic_load(&p->stop))
                    pthread_cond_wait(&p->cv, &p->mu);
                atomic_fetch_sub(&p->sleepers, 1);
                pthread_mutex_unlock(&p->mu);
                spins = 0;
            } else if (spins > 2000) {
                sched_yield();
            }
        }
        seen = g;
        if (atomic_load_explicit(&p->stop, memory_order_relaxed))
            return NULL;
        p->fn(p->ctx, wa.ith, p->n);
        atomic_fetch_add_explicit(&p->done, 1, memory_order_acq_rel);
    }
}

int tpool_default_threads(void)
{
    hwloc_topology_t topo;
    int n = 0;
    if (hwloc_topology_init(&topo) == 0) {
        if (hwloc_topology_load(topo) == 0)
            n = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_CORE);
        hwloc_topology_destroy(topo);
    }
    return n > 0 ? n : 1;
}

int tpool_create(tpool **out, int n_threads, char *err, size_t errlen)
{
    *out = NULL;
    tpool *p = calloc(1, sizeof *p);
    if (!p)
        return -ENOMEM;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    int n_cores = 0;
    if (hwloc_topology_init(&p->topo) == 0 && hwloc_topology_load(p->topo) == 0) {
        n_cores = hwloc_get_nbobjs_by_type(p->topo, HWLOC_OBJ_CORE);
    } else {
        p->topo = NULL;
    }
    if (n_cores <= 0)
        n_cores = 1;
    if (n_threads <= 0)
        n_threads = n_cores;
    if (n_threads > 1024) {
        snprintf(err, errlen, "thread count %d too large", n_threads);
        tpool_destroy(p); /* the topology is loaded already */
        return -EINVAL;
    }
    p->n = n_threads;
    p->threads = calloc((size_t)n_threads, sizeof *p->threads);
    p->cpusets = calloc((size_t)n_threads, sizeof *p->cpusets);
    if (!p->threads || !p->cpusets) {
        tpool_destroy(p);
        return -ENOMEM;
    }
    /* Pin only when there is a core per thread; oversubscribed pools float. */
    bool pin = p->topo && n_threads <= n_cores && n_threads > 1;
    if (pin) {
        for (int i = 0; i < n_threads; i++) {
            hwloc_obj_t core = hwloc_get_obj_by_type(p->topo, HWLOC_OBJ_CORE, (unsigned)i);
            if (core && core->cpuset) {
                p->cpusets[i] = hwloc_bitmap_dup(core->cpuset);
                hwloc_bitmap_singlify(p->cpusets[i]);
            }
        }
    }
    int nodes = p->topo ? hwloc_get_nbobjs_by_type(p->topo, HWLOC_OBJ_NUMANODE) : 1;
    snprintf(p->desc, sizeof p->desc, "%d thread%s, %s, %d physical core%s, %d NUMA node%s",
             n_threads, n_threads == 1 ? "" : "s", pin ? "pinned one per core" : "unpinned",
             n_cores, n_cores == 1 ? "" : "s", nodes, nodes == 1 ? "" : "s");
    pin_self(p, 0);
    for (int i = 1; i < n_threads; i++) {
        struct worker_arg *wa = malloc(sizeof *wa);
        if (!wa) {
            p->n = i;
            tpool_destroy(p);
            return -ENOMEM;
        }
        wa->p = p;
        wa->ith = i;
        int rc = pthread_create(&p->threads[i], NULL, worker_main, wa);
        if (rc) {
            free(wa);
            snprintf(err, errlen, "pthread_create: %s", strerror(rc));
            p->n = i;
            tpool_destroy(p);
            return -rc;
        }
    }
    *out = p;
    return 0;
}

/* Wake sleeping workers (after gen moved); free when none sleeps. */
static void wake(tpool *p)
{
    if (atomic_load(&p->sleepers) > 0) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
    }
}

void tpool_destroy(tpool *p)
{
    if (!p)
        return;
    atomic_store(&p->stop, 1);
    atomic_fetch_add(&p->gen, 1);
    wake(p);
    for (int i = 1; i < p->n; i++)
        if (p->threads && p->threads[i])
            pthread_join(p->threads[i], NULL);
    if (p->cpusets) {
        for (int i = 0; i < p->n; i++)
            if (p->cpusets[i])
                hwloc_bitmap_free(p->cpusets[i]);
        free(p->cpusets);
    }
    if (p->topo)
        hwloc_topology_destroy(p->topo);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    free(p->threads);
    free(p);
}

int tpool_size(const tpool *p) { return p ? p->n : 1; }

const char *tpool_describe(const tpool *p) { return p ? p->desc : "1 thread (no pool)"; }

void tpool_run(tpool *p, tpool_fn fn, void *ctx)
{
    if (!p || p->n == 1) {
        fn(ctx, 0, 1);
        return;
    }
    p->fn = fn;
    p->ctx = ctx;
    atomic_store_explicit(&p->done, 0, memory_order_relaxed);
    atomic_fetch_add(&p->gen, 1);
    wake(p);
    fn(ctx, 0, p->n);
    int spins = 0;
    while (atomic_load_explicit(&p->done, memory_order_acquire) < p->n - 1)
        if (++spins > 2000)
            sched_yield();
}

void tpool_split(long n, int ith, int nth, long *lo, long *hi)
{
    long per = n / nth, rem = n % nth;
    *lo = ith * per + (ith < rem ? ith : rem);
    *hi = *lo + per + (ith < rem ? 1 : 0);
}
