/* bulkread.c - see bulkread.h.
 *
 * The ranges are read in file order (sorted by file, then offset), so the
 * disk sees one forward sweep however the caller ordered them; each range
 * goes out as chunk-sized reads, and the ring (io/uring.c) keeps `depth`
 * reads and `max_inflight` bytes on it, queueing the rest.  A range whose
 * last read landed is moved into alignment at once, while the others are
 * still in flight.  Reads use unregistered buffers: registering GBs of
 * memory would pin it page by page before the first read could start. */
#include "bulkread.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "uring.h"

#define BLK ((uint64_t)URING_ALIGN)

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void bulkread_opts_default(bulkread_opts *o)
{
    memset(o, 0, sizeof *o);
    o->align = 64;
    o->chunk = (size_t)4 << 20;
    o->depth = 32;
    o->max_inflight = (size_t)128 << 20;
}

uint64_t bulkread_region_bytes(uint64_t off, uint64_t len)
{
    if (len == 0)
        return 0;
    uint64_t a = off & ~(BLK - 1), b = (off + len + BLK - 1) & ~(BLK - 1);
    return b - a;
}

uint64_t bulkread_data_off(uint64_t off, size_t align)
{
    return (off % BLK) & ~(uint64_t)(align - 1);
}

static int by_file_off(const void *a, const void *b, void *base)
{
    const bulkread_range *r = base;
    const bulkread_range *x = &r[*(const size_t *)a], *y = &r[*(const size_t *)b];
    if (x->file != y->file)
        return x->file < y->file ? -1 : 1;
    return x->off < y->off ? -1 : x->off > y->off;
}

typedef struct run {
    const bulkread_range *r;
    const bulkread_opts *o;
    uint32_t *left;     /* reads outstanding per range */
    uint64_t done, total;
    uint64_t moved;
    int rc;             /* first failure */
} run;

/* One finished read: its range is complete when it was the last. */
static void landed(run *ru, uint64_t tag, int res, const char *rerr, char *err, size_t errlen)
{
    if (res < 0) {
        if (ru->rc == 0) {
            ru->rc = -EIO;
            snprintf(err, errlen, "%s", rerr);
        }
        return;
    }
    const bulkread_range *q = &ru->r[tag];
    if (--ru->left[tag] > 0)
        return;
    const uint64_t at = q->off % BLK, to = bulkread_data_off(q->off, ru->o->align);
    if (at != to && ru->rc == 0) {
        memmove(q->region + to, q->region + at, q->len);
        ru->moved += q->len;
    }
    ru->done += q->len;
    if (ru->o->progress && ru->rc == 0)
        ru->o->progress(ru->o->progress_ud, ru->done, ru->total);
}

/* Waits for one read and accounts for it.  0, or the ring's own failure. */
static int reap(uring *u, run *ru, char *err, size_t errlen)
{
    uint64_t tag;
    int res;
    char rerr[512] = "";
    int rc = uring_wait(u, true, &tag, &res, rerr, sizeof rerr);
    if (rc == -ENOENT)
        return 0;
    if (rc) {
        if (ru->rc == 0) {
            ru->rc = rc;
            snprintf(err, errlen, "reading the resident weights: %s", strerror(-rc));
        }
        return rc;
    }
    landed(ru, tag, res, rerr, err, errlen);
    return 0;
}

int bulkread_run(const char *const *paths, int n_paths, const bulkread_range *r, size_t n,
                 const bulkread_opts *opts, bulkread_stats *st, char *err, size_t errlen)
{
    bulkread_opts o;
    bulkread_opts_default(&o);
    if (opts) {
        o = *opts;
        if (o.align == 0)
            o.align = 64;
        if (o.chunk == 0)
            o.chunk = (size_t)4 << 20;
        if (o.depth <= 0)
            o.depth = 32;
        if (o.max_inflight == 0)
            o.max_inflight = (size_t)128 << 20;
    }
    o.chunk = (o.chunk + BLK - 1) & ~(BLK - 1);
    if (o.chunk > ((size_t)1 << 30))
        o.chunk = (size_t)1 << 30;
    if (st)
        memset(st, 0, sizeof *st);
    if (o.align > BLK || (o.align & (o.align - 1))) {
        snprintf(err, errlen, "bulk read: alignment %zu is not a power of two <= %llu", o.align,
                 (unsigned long long)BLK);
        return -EINVAL;
    }
    run ru = {r, &o, NULL, 0, 0, 0, 0};
    for (size_t i = 0; i < n; i++) {
        if (r[i].file >= (uint32_t)n_paths || ((uintptr_t)r[i].region % BLK)) {
            snprintf(err, errlen, "bulk read: range %zu has file %u of %d or a region not %llu-aligned", i,
                     r[i].file, n_paths, (unsigned long long)BLK);
            return -EINVAL;
        }
        ru.total += r[i].len;
    }
    size_t *order = malloc((n ? n : 1) * sizeof *order);
    ru.left = calloc(n ? n : 1, sizeof *ru.left);
    if (!order || !ru.left) {
        free(order);
        free(ru.left);
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    for (size_t i = 0; i < n; i++)
        order[i] = i;
    qsort_r(order, n, sizeof *order, by_file_off, (void *)r);

    const double t0 = now_s();
    uring_opts uo;
    uring_opts_default(&uo);
    uo.depth = o.depth;
    uo.n_reqs = 4 * o.depth;
    uo.max_inflight = o.max_inflight;
    uo.no_uring = o.no_uring;
    uo.quiet = true;
    const char *lf = getenv("MOESTREAM_LOAD_FAULT");
    uo.fault = lf ? lf : "";
    uring *u = NULL;
    int rc = uring_create(&u, paths, n_paths, NULL, 0, &uo, err, errlen);
    if (rc) {
        free(order);
        free(ru.left);
        return rc;
    }
    for (size_t k = 0; k < n && ru.rc == 0; k++) {
        const size_t i = order[k];
        const bulkread_range *q = &r[i];
        if (q->len == 0)
            continue;
        const uint64_t a = q->off & ~(BLK - 1), end = q->off + q->len;
        const uint64_t b = (end + BLK - 1) & ~(BLK - 1);
        for (uint64_t c = a; c < b; c += o.chunk)
            ru.left[i]++;
        for (uint64_t c = a; c < b && ru.rc == 0; c += o.chunk) {
            const uint64_t len = b - c < o.chunk ? b - c : o.chunk;
            const uint64_t need = (end < c + len ? end : c + len) - c; /* the tail may pass the end of the file */
            while ((rc = uring_read(u, (int)q->file, q->region + (c - a), c, (size_t)len, (size_t)need, i)) ==
                   -EBUSY)
                if (reap(u, &ru, err, errlen))
                    break;
            if (rc && rc != -EBUSY && ru.rc == 0) {
                ru.rc = rc;
                snprintf(err, errlen, "%s: bulk read of %llu bytes at offset %llu refused: %s", paths[q->file],
                         (unsigned long long)len, (unsigned long long)c, strerror(-rc));
            }
            if (ru.rc)
                break;
        }
        if (ru.rc == 0 && (rc = uring_submit(u)) != 0) {
            ru.rc = rc;
            snprintf(err, errlen, "reading the resident weights: %s", strerror(-rc));
        }
    }
    while (ru.rc == 0 && uring_pending(u) > 0)
        if (reap(u, &ru, err, errlen))
            break;
    if (st) {
        uring_stats us;
        uring_get_stats(u, &us);
        st->bytes = us.bytes;
        st->reads = us.reads;
        st->io_uring = us.io_uring;
        st->direct = us.direct;
        snprintf(st->path, sizeof st->path, "%s", us.path);
        st->wanted = ru.total;
        st->moved = ru.moved;
    }
    uring_destroy(u); /* after a failure: drains the reads still on the ring */
    if (st)
        st->seconds = now_s() - t0;
    free(order);
    free(ru.left);
    return ru.rc;
}
