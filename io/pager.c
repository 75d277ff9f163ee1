/* pager.c - see pager.h.
 *
 * Slot layout: gate, up, down matrices one after another, each region big
 * enough for the 4 KiB-aligned superset of the largest such matrix in the
 * layout (GGUF expert slices are whole multiples of 4 KiB long but start
 * only 32-byte aligned in the file, DEEPSEEK-FACTS 1.3): overhead <= 8 KiB
 * per matrix read.  A read's tag is slot * 4 + matrix.
 * Invariants: slot_of[key] >= 0 iff key_of[slot] == key and the slot's
 * data is complete (pending == 0, not failed) or being read for the
 * current acquire; no slot with reads in flight is ever chosen as victim
 * (release drains). */
#include "pager.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cache_policy.h"
#include "pool.h"
#include "uring.h"

/* one transform for the transform thread: slot, matrix, where the data
 * lies, and (back) its result */
typedef struct xf_job {
    int slot, k, il, e;
    size_t doff;
    int rc;
    char err[256];
} xf_job;

struct pager {
    int n_layer;
    pager_extent *ext; /* (n_layer * n_expert * 3) copied from the layout */
    pager_opts o;
    pool pool;
    uring *u;
    cpol pol;
    expert_src src;
    int n_expert;
    int32_t *slot_of; /* (n_layer * n_expert) -> slot or -1 */
    int32_t *key_of;  /* slot -> key or -1 */
    uint8_t *pending; /* slot -> reads in flight */
    uint8_t *failed;  /* slot -> a read failed */
    bool *busy;       /* slot pinned by the current acquire */
    bool *guess;      /* slot filled by a prefetch, not yet asked for */
    bool *ahead;      /* slot's reads were started by a prefetch (asked for since or not) */
    bool *mask;       /* scratch: busy or reads in flight */
    int32_t *cur;     /* slots of the current acquire, in request order */
    int n_cur;
    size_t moff[3];
    size_t mbytes[3]; /* region sizes */
    pager_transform_fn transform;
    void *transform_ud;
    /* The transform thread (layouts with a transform): a matrix whose read
     * has landed is queued (its slot stays pending), converted there while
     * the forward pass computes and other reads are in flight, and handed
     * back through the done list, which the forward thread harvests where
     * it takes read completions (reap).  xf_inflight (forward thread
     * only): queued + running + done not yet harvested. */
    pthread_t xf_thr;
    bool xf_started, xf_stop;
    pthread_mutex_t xf_mu;
    pthread_cond_t xf_cv_job, xf_cv_done;
    xf_job *xf_q, *xf_d; /* (xf_cap) ring of queued jobs; done jobs */
    int xf_cap, xf_qh, xf_qn, xf_dn;
    int xf_inflight;
    uint64_t xf_count; /* under xf_mu */
    double xf_s;       /* under xf_mu */
    pager_stats st;
    char err[512];
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static const pager_extent *ext_of(const pager *p, int il, int e, int k)
{
    return &p->ext[((size_t)il * (size_t)p->n_expert + (size_t)e) * 3 + (size_t)k];
}

/* Bytes of the region for matrix k: the 4 KiB-aligned superset of the
 * longest such matrix, wherever it starts, or what its transform needs
 * (xf_len; the read then ends at most 2 x 4 KiB before the region's end). */
static size_t region_bytes(const pager_extent *ext, size_t keys, int k)
{
    uint64_t mx = 0;
    for (size_t i = 0; i < keys; i++) {
        const pager_extent *x = &ext[i * 3 + (size_t)k];
        if (x->len > mx)
            mx = x->len;
        if (x->xf_len > mx)
            mx = x->xf_len;
    }
    return ((size_t)mx + 2 * URING_ALIGN + URING_ALIGN - 1) & ~(size_t)(URING_ALIGN - 1);
}

/* Where the read of extent x starts in its region of rb bytes: the start
 * when it is served as read, the last aligned place when it is transformed */
static size_t read_off(const pager_extent *x, size_t rb)
{
    if (!x->xf_len)
        return 0;
    const uint64_t a0 = x->off & ~(uint64_t)(URING_ALIGN - 1);
    const uint64_t a1 = (x->off + x->len + URING_ALIGN - 1) & ~(uint64_t)(URING_ALIGN - 1);
    return rb - (size_t)(a1 - a0);
}

size_t pager_slot_bytes(const pager_layout *lo)
{
    size_t keys = (size_t)lo->n_layer * (size_t)lo->n_expert;
    return region_bytes(lo->ext, keys, 0) + region_bytes(lo->ext, keys, 1) + region_bytes(lo->ext, keys, 2);
}

static int acquire(void *ud, int il, int n, const int32_t *ids, const uint8_t **gp,
                   const uint8_t **upp, const uint8_t **dp, char *err, size_t errlen);

/* expert_src.cached (benchmarks): a slot counts once its read has landed
 * and nothing about it is in flight or failed. */
static int cached(void *ud, int il, uint8_t *mask)
{
    pager *p = ud;
    int n = 0;
    for (int e = 0; e < p->n_expert; e++) {
        int32_t s = il >= 0 && il < p->n_layer ? p->slot_of[(size_t)il * p->n_expert + e] : -1;
        mask[e] = s >= 0 && !p->pending[s] && !p->failed[s];
        n += mask[e];
    }
    return n;
}

static void prefetch(void *ud, int il, int n, const int32_t *ids);
static int wait_one(void *ud, int il, int i, bool block, char *err, size_t errlen);
static void release(void *ud, int il);
static void *xf_main(void *arg);

int pager_create(pager **out, const pager_layout *lo, const pager_opts *o, char *err, size_t errlen)
{
    *out = NULL;
    if (lo->n_layer <= 0 || lo->n_expert <= 0 || lo->n_files <= 0) {
        snprintf(err, errlen, "expert layout is empty (%d layers, %d experts, %d files)", lo->n_layer,
                 lo->n_expert, lo->n_files);
        return -EINVAL;
    }
    const size_t keys = (size_t)lo->n_layer * (size_t)lo->n_expert;
    int n_moe = 0;
    for (int il = 0; il < lo->n_layer; il++) {
        bool any = false;
        for (size_t i = (size_t)il * (size_t)lo->n_expert * 3; i < (size_t)(il + 1) * (size_t)lo->n_expert * 3; i++) {
            const pager_extent *x = &lo->ext[i];
            if (x->len && (x->file >= (uint32_t)lo->n_files || x->off > UINT64_MAX - x->len - URING_ALIGN)) {
                snprintf(err, errlen, "expert layout: layer %d entry %zu: file %u of %d, offset %llu, "
                                      "length %llu", il, i % ((size_t)lo->n_expert * 3), x->file,
                         lo->n_files, (unsigned long long)x->off, (unsigned long long)x->len);
                return -EINVAL;
            }
            any = any || x->len > 0;
        }
        n_moe += any;
    }
    int ns = o->n_slots;
    if (ns <= 0) {
        snprintf(err, errlen, "expert pool has no slots");
        return -EINVAL;
    }
    pager *p = calloc(1, sizeof *p);
    if (!p)
        return -ENOMEM;
    p->o = *o;
    p->n_layer = lo->n_layer;
    p->n_expert = lo->n_expert;
    p->moff[0] = 0;
    p->moff[1] = region_bytes(lo->ext, keys, 0);
    p->moff[2] = p->moff[1] + region_bytes(lo->ext, keys, 1);
    for (int k = 0; k < 3; k++)
        p->mbytes[k] = region_bytes(lo->ext, keys, k);
    p->transform = lo->transform;
    p->transform_ud = lo->transform_ud;
    for (size_t i = 0; i < keys * 3; i++)
        if (lo->ext[i].xf_len && !lo->transform) {
            snprintf(err, errlen, "expert layout: entry %zu needs a transform but the layout has none", i);
            free(p);
            return -EINVAL;
        }
    p->ext = malloc(keys * 3 * sizeof *p->ext);
    if (!p->ext) {
        free(p);
        return -ENOMEM;
    }
    memcpy(p->ext, lo->ext, keys * 3 * sizeof *p->ext);
    int rc = pool_init(&p->pool, ns, pager_slot_bytes(lo), o->lock, err, errlen);
    if (rc) {
        pager_destroy(p);
        return rc;
    }
    p->slot_of = malloc(keys * sizeof *p->slot_of);
    p->key_of = malloc((size_t)ns * sizeof *p->key_of);
    p->pending = calloc((size_t)ns, 1);
    p->failed = calloc((size_t)ns, 1);
    p->busy = calloc((size_t)ns, sizeof *p->busy);
    p->guess = calloc((size_t)ns, sizeof *p->guess);
    p->ahead = calloc((size_t)ns, sizeof *p->ahead);
    p->mask = calloc((size_t)ns, sizeof *p->mask);
    p->cur = malloc((size_t)ns * sizeof *p->cur);
    if (!p->slot_of || !p->key_of || !p->pending || !p->failed || !p->busy || !p->cur || !p->guess || !p->ahead || !p->mask ||
        cpol_init(&p->pol, o->policy, ns, p->n_layer, p->n_expert, n_moe)) {
        pager_destroy(p);
        return -ENOMEM;
    }
    for (size_t k = 0; k < keys; k++)
        p->slot_of[k] = -1;
    for (int s = 0; s < ns; s++)
        p->key_of[s] = -1;
    /* Every slot may have its three reads outstanding at once (a layer's
     * misses plus read-ahead), so the request table never fills; the ring
     * itself is bounded in reads and bytes (uring.h defaults: 64 reads,
     * 64 MiB, enough to keep an NVMe queue busy). */
    uring_opts uo;
    uring_opts_default(&uo);
    uo.n_reqs = 3 * ns + 3;
    uo.register_bg = true;
    uo.register_later = true; /* pager_register_start */ /* the first token need not wait for the whole pool */
    rc = uring_create(&p->u, lo->paths, lo->n_files, p->pool.iov, p->pool.n_iov, &uo, err, errlen);
    if (rc) {
        pager_destroy(p);
        return rc;
    }
    if (p->transform) {
        p->xf_cap = 3 * ns; /* every slot's three matrices at most */
        p->xf_q = malloc((size_t)p->xf_cap * sizeof *p->xf_q);
        p->xf_d = malloc((size_t)p->xf_cap * sizeof *p->xf_d);
        if (!p->xf_q || !p->xf_d) {
            pager_destroy(p);
            return -ENOMEM;
        }
        pthread_mutex_init(&p->xf_mu, NULL);
        pthread_cond_init(&p->xf_cv_job, NULL);
        pthread_cond_init(&p->xf_cv_done, NULL);
        if ((rc = pthread_create(&p->xf_thr, NULL, xf_main, p))) {
            snprintf(err, errlen, "starting the expert transform thread: %s", strerror(rc));
            pthread_mutex_destroy(&p->xf_mu);
            pthread_cond_destroy(&p->xf_cv_job);
            pthread_cond_destroy(&p->xf_cv_done);
            pager_destroy(p);
            return -rc;
        }
        p->xf_started = true;
    }
    p->st.n_slots = ns;
    p->st.slot_bytes = p->pool.slot_bytes;
    p->src = (expert_src){acquire, release, prefetch, p, wait_one, ns, lo->transform != NULL || lo->repacked, cached};
    *out = p;
    return 0;
}

void pager_destroy(pager *p)
{
    if (!p)
        return;
    uring_destroy(p->u); /* drains reads into the pool before it goes */
    if (p->xf_started) { /* the thread ends its queue, then stops, before the pool goes */
        pthread_mutex_lock(&p->xf_mu);
        p->xf_stop = true;
        pthread_cond_signal(&p->xf_cv_job);
        pthread_mutex_unlock(&p->xf_mu);
        pthread_join(p->xf_thr, NULL);
        pthread_mutex_destroy(&p->xf_mu);
        pthread_cond_destroy(&p->xf_cv_job);
        pthread_cond_destroy(&p->xf_cv_done);
    }
    free(p->xf_q);
    free(p->xf_d);
    pool_free(&p->pool);
    cpol_free(&p->pol);
    free(p->ext);
    free(p->slot_of);
    free(p->key_of);
    free(p->pending);
    free(p->failed);
    free(p->busy);
    free(p->guess);
    free(p->ahead);
    free(p->mask);
    free(p->cur);
    free(p);
}

const expert_src *pager_src(pager *p) { return &p->src; }

void pager_register_start(pager *p) { uring_register_start(p->u); }

void pager_get_stats(const pager *p, pager_stats *s)
{
    *s = p->st;
    uring_stats us;
    uring_get_stats(p->u, &us);
    s->bytes_read = us.bytes;
    s->busy_s = us.busy_s;
    s->io_uring = us.io_uring;
    s->direct = us.direct;
    s->errors = us.errors;
    s->resubmits = us.resubmits;
    s->peak_inflight = us.peak_inflight;
    snprintf(s->path, sizeof s->path, "%s", us.path);
    s->huge_pages = p->pool.mem.huge;
    s->pool_chunks = us.bufs;
    s->pool_chunks_registered = us.bufs_registered;
    s->pool_register_s = us.register_s;
    if (p->xf_started) {
        pthread_mutex_lock((pthread_mutex_t *)&p->xf_mu);
        s->transformed = p->xf_count;
        s->transform_s = p->xf_s;
        pthread_mutex_unlock((pthread_mutex_t *)&p->xf_mu);
    }
    s->used_slots = 0;
    for (int i = 0; i < p->pool.n_slots; i++)
        s->used_slots += p->key_of[i] >= 0;
}

static const uint8_t *mat_ptr(const pager *p, int slot, int il, int e, int k)
{
    const pager_extent *x = ext_of(p, il, e, k);
    return pool_slot(&p->pool, slot) + p->moff[k] + (x->xf_len ? 0 : x->off % URING_ALIGN);
}

/* Runs the oldest queued transform (xf_mu held on entry and on return,
 * released while it runs); false if none is queued. */
static bool xf_run_one(pager *p)
{
    if (!p->xf_qn)
        return false;
    xf_job j = p->xf_q[p->xf_qh];
    p->xf_qh = (p->xf_qh + 1) % p->xf_cap;
    p->xf_qn--;
    pthread_mutex_unlock(&p->xf_mu);
    const int k = j.k;
    j.err[0] = 0;
    const double t0 = now_s();
    j.rc = p->transform(p->transform_ud, j.il, j.e, k, pool_slot(&p->pool, j.slot) + p->moff[k], p->mbytes[k], j.doff,
                        j.err, sizeof j.err);
    const double dt = now_s() - t0;
    pthread_mutex_lock(&p->xf_mu);
    p->xf_count++;
    p->xf_s += dt;
    p->xf_d[p->xf_dn++] = j;
    pthread_cond_signal(&p->xf_cv_done);
    return true;
}

static void *xf_main(void *arg)
{
    pager *p = arg;
    pthread_mutex_lock(&p->xf_mu);
    for (;;) {
        while (!p->xf_qn && !p->xf_stop)
            pthread_cond_wait(&p->xf_cv_job, &p->xf_mu);
        if (!xf_run_one(p))
            break; /* stopping, nothing left */
    }
    pthread_mutex_unlock(&p->xf_mu);
    return NULL;
}

/* Takes the finished transforms: their slots are complete (or failed).
 * Returns how many. */
static int xf_harvest(pager *p)
{
    if (!p->xf_inflight)
        return 0;
    pthread_mutex_lock(&p->xf_mu);
    const int n = p->xf_dn;
    for (int i = 0; i < n; i++) {
        const xf_job *j = &p->xf_d[i];
        p->pending[j->slot]--;
        if (j->rc) {
            p->failed[j->slot] = 1;
            snprintf(p->err, sizeof p->err, "expert %d of layer %d, matrix %d: %s", j->e, j->il, j->k, j->err);
        }
    }
    p->xf_dn = 0;
    pthread_mutex_unlock(&p->xf_mu);
    p->xf_inflight -= n;
    return n;
}

/* reads or transforms not yet accounted to their slots */
static int inflight(const pager *p)
{
    return (int)uring_pending(p->u) + p->xf_inflight;
}

/* One completion (block=false: one if there is one): account it to its
 * slot.  *got says whether one came. */
static int reap(pager *p, bool block, bool *got)
{
    if (xf_harvest(p) > 0) {
        *got = true;
        return 0;
    }
    if (block && p->xf_inflight > 0) {
        /* a transform or a read, whichever ends first */
        for (;;) {
            if (uring_pending(p->u) > 0) {
                int rc = reap(p, false, got);
                if (rc || *got)
                    return rc;
            }
            pthread_mutex_lock(&p->xf_mu);
            /* The forward thread has nothing else to do: it takes a queued
             * transform itself rather than wait for the thread to wake (on
             * a machine whose cores are all computing, that wake-up cost
             * more than the transforms: stall 0.16 s for 0.01 s of them,
             * tiny-ud-iq1_s in test_pager) */
            if (!p->xf_dn && !xf_run_one(p)) {
                if (uring_pending(p->u) > 0) {
                    struct timespec ts;
                    clock_gettime(CLOCK_REALTIME, &ts);
                    ts.tv_nsec += 100000; /* 0.1 ms: then look at the ring again */
                    if (ts.tv_nsec >= 1000000000L) {
                        ts.tv_sec++;
                        ts.tv_nsec -= 1000000000L;
                    }
                    pthread_cond_timedwait(&p->xf_cv_done, &p->xf_mu, &ts);
                }
                else
                    while (!p->xf_dn)
                        pthread_cond_wait(&p->xf_cv_done, &p->xf_mu);
            }
            pthread_mutex_unlock(&p->xf_mu);
            if (xf_harvest(p) > 0) {
                *got = true;
                return 0;
            }
        }
    }
    uint64_t tag;
    int res;
    char e[512];
    int rc = uring_wait(p->u, block, &tag, &res, e, sizeof e);
    *got = rc == 0;
    if (rc)
        return rc == -ENOENT || rc == -EAGAIN ? 0 : rc;
    int slot = (int)(tag / 4);
    const int k = (int)(tag % 4);
    if (res < 0) {
        p->pending[slot]--;
        p->failed[slot] = 1;
        snprintf(p->err, sizeof p->err, "%s", e);
        return 0;
    }
    const int32_t key = p->key_of[slot];
    const pager_extent *x = key >= 0 ? ext_of(p, key / p->n_expert, key % p->n_expert, k) : NULL;
    if (!x || !x->xf_len || p->failed[slot] || !p->xf_started) {
        p->pending[slot]--;
        return 0;
    }
    /* to the transform thread; the slot stays pending until it is back */
    const xf_job j = {slot, k, key / p->n_expert, key % p->n_expert,
                      read_off(x, p->mbytes[k]) + (size_t)(x->off % URING_ALIGN), 0, ""};
    pthread_mutex_lock(&p->xf_mu);
    p->xf_q[(p->xf_qh + p->xf_qn) % p->xf_cap] = j;
    p->xf_qn++;
    pthread_cond_signal(&p->xf_cv_job);
    pthread_mutex_unlock(&p->xf_mu);
    p->xf_inflight++;
    return 0;
}

/* A slot to (re)fill: never one pinned by the current acquire or with
 * reads in flight. */
static int pick_victim(pager *p)
{
    for (int i = 0; i < p->pool.n_slots; i++)
        p->mask[i] = p->busy[i] || p->pending[i] > 0;
    return cpol_victim(&p->pol, p->mask);
}

/* Starts the three reads of expert e of layer il into slot s. */
static int fill_slot(pager *p, int il, int e, int s)
{
    if (p->key_of[s] >= 0)
        p->slot_of[p->key_of[s]] = -1;
    const int32_t key = il * p->n_expert + e;
    p->key_of[s] = key;
    p->slot_of[key] = s;
    p->failed[s] = 0;
    int rc = 0;
    for (int k = 0; k < 3 && !rc; k++) {
        const pager_extent *x = ext_of(p, il, e, k);
        uint64_t a0 = x->off & ~(uint64_t)(URING_ALIGN - 1);
        uint64_t a1 = (x->off + x->len + URING_ALIGN - 1) & ~(uint64_t)(URING_ALIGN - 1);
        uint8_t *dst = pool_slot(&p->pool, s) + p->moff[k] + read_off(x, p->mbytes[k]);
        for (;;) {
            rc = uring_read(p->u, (int)x->file, dst, a0, (size_t)(a1 - a0),
                            (size_t)(x->off + x->len - a0), (uint64_t)s * 4 + (uint64_t)k);
            if (rc != -EBUSY)
                break;
            bool got; /* request table full (cannot happen, see pager_create): make room */
            if ((rc = reap(p, true, &got)) || !got)
                break;
        }
        if (!rc) {
            p->pending[s]++;
            p->st.read_bytes_needed += x->len;
        }
    }
    return rc;
}

/* Whether (il, e) names an expert of the layout. */
static bool key_ok(const pager *p, int il, int32_t e)
{
    return il >= 0 && il < p->n_layer && e >= 0 && e < p->n_expert && ext_of(p, il, e, 0)->len > 0;
}

static void prefetch(void *ud, int il, int n, const int32_t *ids)
{
    pager *p = ud;
    for (int i = 0; i < n; i++) {
        if (!key_ok(p, il, ids[i]))
            continue; /* a guess; acquire reports bad keys */
        if (p->slot_of[(size_t)il * p->n_expert + ids[i]] >= 0)
            continue;
        int s = pick_victim(p);
        if (s < 0)
            break;
        if (fill_slot(p, il, ids[i], s))
            break;
        cpol_fill(&p->pol, s, (int32_t)((size_t)il * p->n_expert + ids[i]));
        p->guess[s] = true;
        p->ahead[s] = true;
        p->st.prefetched++;
    }
    uring_submit(p->u);
}

static int acquire(void *ud, int il, int n, const int32_t *ids, const uint8_t **gp,
                   const uint8_t **upp, const uint8_t **dp, char *err, size_t errlen)
{
    pager *p = ud;
    uring_register_start(p->u); /* once; the engine has started it already */
    bool got = true; /* harvest landed reads (read-ahead): frees slots, keeps busy time honest */
    while (got && inflight(p) > 0)
        if (reap(p, false, &got))
            break;
    p->n_cur = 0;
    if (n > p->pool.n_slots) {
        snprintf(err, errlen, "layer %d needs %d experts at once but the pool holds %d", il, n,
                 p->pool.n_slots);
        return -ENOMEM;
    }
    for (int i = 0; i < n; i++)
        if (!key_ok(p, il, ids[i])) {
            snprintf(err, errlen, "layer %d has no expert %d in the expert layout", il, ids[i]);
            return -EINVAL;
        }
    cpol_tick(&p->pol, il);
    /* hits first, so they are pinned before any victim is chosen */
    for (int i = 0; i < n; i++) {
        int32_t s = p->slot_of[(size_t)il * p->n_expert + ids[i]];
        if (s >= 0 && p->failed[s] && !p->pending[s]) { /* a failed read ahead: read again */
            p->slot_of[p->key_of[s]] = -1;
            p->key_of[s] = -1;
            cpol_drop(&p->pol, s);
            p->failed[s] = 0;
            p->guess[s] = false;
            p->ahead[s] = false;
            s = -1;
        }
        p->cur[i] = s;
        if (s >= 0) {
            p->busy[s] = true;
            cpol_access(&p->pol, s, il * p->n_expert + ids[i]);
            p->st.hits++;
            if (p->guess[s]) {
                p->guess[s] = false;
                p->st.prefetch_used++;
            }
        }
    }
    int rc = 0;
    for (int i = 0; i < n && !rc; i++) {
        if (p->cur[i] >= 0)
            continue;
        int s = pick_victim(p);
        while (s < 0 && inflight(p) > 0) { /* slots still being read ahead */
            if (reap(p, true, &got) || !got)
                break;
            s = pick_victim(p);
        }
        if (s < 0) {
            snprintf(err, errlen, "expert pool exhausted");
            rc = -ENOMEM;
            break;
        }
        p->busy[s] = true;
        p->guess[s] = false;
        p->ahead[s] = false;
        p->cur[i] = s;
        cpol_access(&p->pol, s, il * p->n_expert + ids[i]);
        p->st.misses++;
        rc = fill_slot(p, il, ids[i], s);
    }
    if (!rc)
        rc = uring_submit(p->u);
    p->n_cur = n;
    for (int i = 0; i < n; i++) {
        int s = p->cur[i];
        if (s < 0)
            continue;
        gp[i] = mat_ptr(p, s, il, ids[i], 0);
        upp[i] = mat_ptr(p, s, il, ids[i], 1);
        dp[i] = mat_ptr(p, s, il, ids[i], 2);
    }
    if (rc && !err[0])
        snprintf(err, errlen, "submitting expert reads failed: %s", strerror(-rc));
    return rc;
}

static int wait_one(void *ud, int il, int i, bool block, char *err, size_t errlen)
{
    pager *p = ud;
    (void)il;
    int s = p->cur[i];
    double t0 = 0;
    for (;;) {
        bool got = true;
        while (p->pending[s] > 0 && got) /* take what has landed, without waiting */
            if (reap(p, false, &got))
                break;
        while (p->pending[s] > 0) {
            if (!block)
                return 1;
            if (t0 == 0)
                t0 = now_s();
            int rc = reap(p, true, &got);
            if (rc || !got) {
                snprintf(err, errlen, "waiting for expert reads: %s", rc ? strerror(-rc) : "no reads in flight");
                return rc ? rc : -EIO;
            }
        }
        /* A read-ahead that failed while still in flight when it was asked
         * for is read again, once, as one that failed earlier would have
         * been (acquire): a wrong or failed guess never fails a request by
         * itself. */
        if (!p->failed[s] || !p->ahead[s])
            break;
        p->ahead[s] = false;
        const int32_t key = p->key_of[s];
        int rc = fill_slot(p, key / p->n_expert, key % p->n_expert, s);
        if (!rc)
            rc = uring_submit(p->u);
        if (rc) {
            snprintf(err, errlen, "reading expert again after a failed read-ahead: %s", strerror(-rc));
            return rc;
        }
    }
    if (t0 != 0)
        p->st.stall_s += now_s() - t0;
    if (p->failed[s]) {
        snprintf(err, errlen, "%s", p->err);
        return -EIO;
    }
    return 0;
}

static void release(void *ud, int il)
{
    pager *p = ud;
    (void)il;
    /* If an error cut the layer short, drain what is in flight so no slot
     * is reused while the kernel may still write into it.  Normally every
     * pinned slot is complete and prefetch reads stay in flight. */
    bool cut = false;
    for (int i = 0; i < p->n_cur; i++)
        cut = cut || (p->cur[i] >= 0 && (p->pending[p->cur[i]] || p->failed[p->cur[i]]));
    bool got = true;
    while (cut && inflight(p) > 0 && got)
        if (reap(p, true, &got))
            break;
    for (int i = 0; i < p->n_cur; i++) {
        int s = p->cur[i];
        if (s < 0)
            continue;
        p->busy[s] = false;
        if (p->failed[s] || p->pending[s]) { /* never serve a partial read */
            if (p->key_of[s] >= 0)
                p->slot_of[p->key_of[s]] = -1;
            p->key_of[s] = -1;
            cpol_drop(&p->pol, s);
            p->failed[s] = 0;
            p->pending[s] = 0;
            p->ahead[s] = false;
        }
    }
    p->n_cur = 0;
}

/* ---- warm start ---- */

typedef struct scored {
    int32_t key;
    double score;
} scored;

static int by_score(const void *a, const void *b)
{
    const scored *x = a, *y = b;
    if (x->score != y->score)
        return x->score < y->score ? 1 : -1;
    return x->key < y->key ? -1 : x->key > y->key;
}

int pager_state_save(const pager *p, const char *path, char *err, size_t errlen)
{
    const size_t keys = (size_t)p->n_layer * (size_t)p->n_expert;
    scored *v = malloc(keys * sizeof *v);
    if (!v)
        return -ENOMEM;
    size_t n = 0;
    for (size_t k = 0; k < keys; k++) {
        double sc = cpol_score(&p->pol, (int32_t)k);
        if (sc > 0)
            v[n++] = (scored){(int32_t)k, sc};
    }
    qsort(v, n, sizeof *v, by_score);
    FILE *f = fopen(path, "w");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        free(v);
        return -errno;
    }
    fprintf(f, "moestream-cache-state 1 %s %d %d\n", cpol_name(p->o.policy), p->n_layer, p->n_expert);
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%d %d %.9g\n", v[i].key / p->n_expert, v[i].key % p->n_expert, v[i].score);
    free(v);
    if (fclose(f)) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -errno;
    }
    return 0;
}

int pager_state_load(pager *p, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -errno;
    }
    char pol[16];
    int ver, nl, ne;
    if (fscanf(f, "moestream-cache-state %d %15s %d %d", &ver, pol, &nl, &ne) != 4 || ver != 1) {
        snprintf(err, errlen, "%s: not a moestream cache state (version 1)", path);
        fclose(f);
        return -EBADMSG;
    }
    if (nl != p->n_layer || ne != p->n_expert) {
        snprintf(err, errlen, "%s: saved for %d layers x %d experts, this model has %d x %d", path, nl, ne,
                 p->n_layer, p->n_expert);
        fclose(f);
        return -EINVAL;
    }
    const bool same = cpol_parse(pol) == p->o.policy;
    int32_t *hot = malloc((size_t)p->pool.n_slots * sizeof *hot);
    if (!hot) {
        fclose(f);
        return -ENOMEM;
    }
    int n_hot = 0, line = 1, l, e, rc = 0;
    double sc;
    for (;;) {
        int got = fscanf(f, "%d %d %lf", &l, &e, &sc);
        if (got == EOF)
            break;
        line++;
        if (got != 3 || !key_ok(p, l, e) || !(sc >= 0)) {
            snprintf(err, errlen, "%s line %d: want \"layer expert score\" of an expert of the layout", path, line);
            rc = -EBADMSG;
            break;
        }
        const int32_t key = (int32_t)((size_t)l * p->n_expert + (size_t)e);
        if (same)
            cpol_seed(&p->pol, key, sc);
        if (n_hot < p->pool.n_slots)
            hot[n_hot++] = key; /* the file is hottest first */
    }
    fclose(f);
    int started = 0;
    for (int i = 0; !rc && i < n_hot; i++) {
        const int32_t key = hot[i];
        if (p->slot_of[key] >= 0)
            continue;
        int s = pick_victim(p);
        if (s < 0 || fill_slot(p, key / p->n_expert, key % p->n_expert, s))
            break;
        cpol_fill(&p->pol, s, key);
        p->guess[s] = true;
        p->ahead[s] = true;
        p->st.prefetched++;
        started++;
    }
    free(hot);
    if (rc)
        return rc;
    rc = uring_submit(p->u);
    if (rc) {
        snprintf(err, errlen, "submitting warm-start reads: %s", strerror(-rc));
        return rc;
    }
    return started;
}
