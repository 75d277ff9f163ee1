/* pager.c - see pager.h.
 *
 * Slot layout: gate, up, down matrices one after another, each region big
 * enough for the 4 KiB-aligned superset of the largest such matrix in the
 * model (expert slices are whole multiples of 4 KiB long but start only
 * 32-byte aligned in the file, DEEPSEEK-FACTS 1.3): overhead <= 8 KiB per
 * matrix read.  A read's tag is slot * 4 + matrix.
 * Invariants: slot_of[key] >= 0 iff key_of[slot] == key and the slot's
 * data is complete (pending == 0, not failed) or being read for the
 * current acquire; no slot with reads in flight is ever chosen as victim
 * (release drains). */
#include "pager.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cache_policy.h"
#include "pool.h"
#include "uring.h"

struct pager {
    const model *m;
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
    bool *mask;       /* scratch: busy or reads in flight */
    int32_t *cur;     /* slots of the current acquire, in request order */
    int n_cur;
    size_t moff[3];
    pager_stats st;
    char err[512];
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static const mweight *mat(const mlayer *L, int k)
{
    return k == 0 ? &L->gate_exps : k == 1 ? &L->up_exps : &L->down_exps;
}

static size_t region_bytes(const model *m, int k)
{
    size_t mx = 0;
    for (uint32_t il = 0; il < m->hp.n_layer; il++)
        if (m->layers[il].is_moe && mat(&m->layers[il], k)->mat_bytes > mx)
            mx = mat(&m->layers[il], k)->mat_bytes;
    return (mx + 2 * URING_ALIGN + URING_ALIGN - 1) & ~(size_t)(URING_ALIGN - 1);
}

size_t pager_slot_bytes(const model *m)
{
    return region_bytes(m, 0) + region_bytes(m, 1) + region_bytes(m, 2);
}

static int acquire(void *ud, int il, int n, const int32_t *ids, const uint8_t **gp,
                   const uint8_t **upp, const uint8_t **dp, char *err, size_t errlen);
static void prefetch(void *ud, int il, int n, const int32_t *ids);
static int wait_one(void *ud, int il, int i, bool block, char *err, size_t errlen);
static void release(void *ud, int il);

int pager_create(pager **out, const model *m, const pager_opts *o, char *err, size_t errlen)
{
    *out = NULL;
    pager *p = calloc(1, sizeof *p);
    if (!p)
        return -ENOMEM;
    p->m = m;
    p->o = *o;
    p->n_expert = (int)m->hp.n_expert;
    const size_t keys = (size_t)m->hp.n_layer * (size_t)(p->n_expert ? p->n_expert : 1);
    int ns = o->n_slots, n_moe = 0;
    for (uint32_t il = 0; il < m->hp.n_layer; il++)
        n_moe += m->layers[il].is_moe;
    if (ns <= 0) {
        snprintf(err, errlen, "expert pool has no slots");
        free(p);
        return -EINVAL;
    }
    p->moff[0] = 0;
    p->moff[1] = region_bytes(m, 0);
    p->moff[2] = p->moff[1] + region_bytes(m, 1);
    int rc = pool_init(&p->pool, ns, pager_slot_bytes(m), o->lock, err, errlen);
    if (rc) {
        free(p);
        return rc;
    }
    p->slot_of = malloc(keys * sizeof *p->slot_of);
    p->key_of = malloc((size_t)ns * sizeof *p->key_of);
    p->pending = calloc((size_t)ns, 1);
    p->failed = calloc((size_t)ns, 1);
    p->busy = calloc((size_t)ns, sizeof *p->busy);
    p->guess = calloc((size_t)ns, sizeof *p->guess);
    p->mask = calloc((size_t)ns, sizeof *p->mask);
    p->cur = malloc((size_t)ns * sizeof *p->cur);
    if (!p->slot_of || !p->key_of || !p->pending || !p->failed || !p->busy || !p->cur || !p->guess || !p->mask ||
        cpol_init(&p->pol, o->policy, ns, (int)keys, n_moe)) {
        pager_destroy(p);
        return -ENOMEM;
    }
    for (size_t k = 0; k < keys; k++)
        p->slot_of[k] = -1;
    for (int s = 0; s < ns; s++)
        p->key_of[s] = -1;
    const gguf_file *g = m->gguf;
    const char **paths = malloc(g->n_parts * sizeof *paths);
    if (!paths) {
        pager_destroy(p);
        return -ENOMEM;
    }
    for (uint32_t i = 0; i < g->n_parts; i++)
        paths[i] = g->parts[i].path;
    /* Every slot may have its three reads outstanding at once (a layer's
     * misses plus read-ahead), so the request table never fills; the ring
     * itself is bounded in reads and bytes (uring.h defaults: 64 reads,
     * 64 MiB, enough to keep an NVMe queue busy). */
    uring_opts uo;
    uring_opts_default(&uo);
    uo.n_reqs = 3 * ns + 3;
    rc = uring_create(&p->u, paths, (int)g->n_parts, p->pool.iov, p->pool.n_iov, &uo, err, errlen);
    free(paths);
    if (rc) {
        pager_destroy(p);
        return rc;
    }
    p->st.n_slots = ns;
    p->st.slot_bytes = p->pool.slot_bytes;
    p->src = (expert_src){acquire, release, prefetch, p, wait_one, ns};
    *out = p;
    return 0;
}

void pager_destroy(pager *p)
{
    if (!p)
        return;
    uring_destroy(p->u); /* drains reads into the pool before it goes */
    pool_free(&p->pool);
    cpol_free(&p->pol);
    free(p->slot_of);
    free(p->key_of);
    free(p->pending);
    free(p->failed);
    free(p->busy);
    free(p->guess);
    free(p->mask);
    free(p->cur);
    free(p);
}

const expert_src *pager_src(pager *p) { return &p->src; }

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
    s->huge_pages = p->pool.huge;
    s->used_slots = 0;
    for (int i = 0; i < p->pool.n_slots; i++)
        s->used_slots += p->key_of[i] >= 0;
}

static const uint8_t *mat_ptr(const pager *p, int slot, int il, int e, int k)
{
    const mweight *w = mat(&p->m->layers[il], k);
    uint64_t off = w->offset + (uint64_t)e * w->mat_bytes;
    return pool_slot(&p->pool, slot) + p->moff[k] + (off % URING_ALIGN);
}

/* One completion (block=false: one if there is one): account it to its
 * slot.  *got says whether one came. */
static int reap(pager *p, bool block, bool *got)
{
    uint64_t tag;
    int res;
    char e[512];
    int rc = uring_wait(p->u, block, &tag, &res, e, sizeof e);
    *got = rc == 0;
    if (rc)
        return rc == -ENOENT || rc == -EAGAIN ? 0 : rc;
    int slot = (int)(tag / 4);
    p->pending[slot]--;
    if (res < 0) {
        p->failed[slot] = 1;
        snprintf(p->err, sizeof p->err, "%s", e);
    }
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
        const mweight *w = mat(&p->m->layers[il], k);
        uint64_t off = w->offset + (uint64_t)e * w->mat_bytes;
        uint64_t a0 = off & ~(uint64_t)(URING_ALIGN - 1);
        uint64_t a1 = (off + w->mat_bytes + URING_ALIGN - 1) & ~(uint64_t)(URING_ALIGN - 1);
        uint8_t *dst = pool_slot(&p->pool, s) + p->moff[k];
        for (;;) {
            rc = uring_read(p->u, (int)w->part, dst, a0, (size_t)(a1 - a0),
                            (size_t)(off + w->mat_bytes - a0), (uint64_t)s * 4 + (uint64_t)k);
            if (rc != -EBUSY)
                break;
            bool got; /* request table full (cannot happen, see pager_create): make room */
            if ((rc = reap(p, true, &got)) || !got)
                break;
        }
        if (!rc) {
            p->pending[s]++;
            p->st.read_bytes_needed += w->mat_bytes;
        }
    }
    return rc;
}

static void prefetch(void *ud, int il, int n, const int32_t *ids)
{
    pager *p = ud;
    for (int i = 0; i < n; i++) {
        if (p->slot_of[(size_t)il * p->n_expert + ids[i]] >= 0)
            continue;
        int s = pick_victim(p);
        if (s < 0)
            break;
        if (fill_slot(p, il, ids[i], s))
            break;
        cpol_fill(&p->pol, s, (int32_t)((size_t)il * p->n_expert + ids[i]));
        p->guess[s] = true;
        p->st.prefetched++;
    }
    uring_submit(p->u);
}

static int acquire(void *ud, int il, int n, const int32_t *ids, const uint8_t **gp,
                   const uint8_t **upp, const uint8_t **dp, char *err, size_t errlen)
{
    pager *p = ud;
    bool got = true; /* harvest landed reads (read-ahead): frees slots, keeps busy time honest */
    while (got && uring_pending(p->u) > 0)
        if (reap(p, false, &got))
            break;
    if (n > p->pool.n_slots) {
        snprintf(err, errlen, "layer %d needs %d experts at once but the pool holds %d", il, n,
                 p->pool.n_slots);
        return -ENOMEM;
    }
    cpol_tick(&p->pol);
    p->n_cur = 0;
    /* hits first, so they are pinned before any victim is chosen */
    for (int i = 0; i < n; i++) {
        int32_t s = p->slot_of[(size_t)il * p->n_expert + ids[i]];
        if (s >= 0 && p->failed[s] && !p->pending[s]) { /* a failed read ahead: read again */
            p->slot_of[p->key_of[s]] = -1;
            p->key_of[s] = -1;
            cpol_drop(&p->pol, s);
            p->failed[s] = 0;
            p->guess[s] = false;
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
        while (s < 0 && uring_pending(p->u) > 0) { /* slots still being read ahead */
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
    while (cut && uring_pending(p->u) > 0 && got)
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
        }
    }
    p->n_cur = 0;
}
