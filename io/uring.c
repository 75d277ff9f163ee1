/* uring.c - see uring.h.
 *
 * Requests live in a fixed table (depth entries); the sqe user_data is the
 * table index.  A completion with fewer bytes than asked (short read) or
 * -EAGAIN is resubmitted for the rest, in place; a read that reached the
 * end of the file is complete once `need` bytes are there.  With the pread
 * fallback a read is done at queue time and its completion waits in the
 * table for uring_wait, so callers see one behaviour. */
#include "uring.h"

#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct req {
    bool used, done;
    int file;
    uint8_t *buf;
    uint64_t off;
    size_t len, need, got;
    uint64_t tag;
    int res;
} req;

struct uring {
    bool ring_ok, fixed_files, fixed_bufs;
    struct io_uring ring;
    int n_files;
    int *fds;
    char **paths;
    struct iovec *bufs;
    int n_bufs;
    int depth;
    req *reqs;
    int in_flight, queued;
    uring_stats st;
    /* fault injection */
    int f_eio, f_short, f_stall_ms;
    uint64_t n_submitted;
    double busy_since;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void parse_faults(uring *u)
{
    const char *f = getenv("MOESTREAM_FAULT");
    if (!f)
        return;
    char kind[16];
    int n;
    if (sscanf(f, "%15[a-z]:%d", kind, &n) == 2 && n > 0) {
        if (!strcmp(kind, "eio"))
            u->f_eio = n;
        else if (!strcmp(kind, "short"))
            u->f_short = n;
        else if (!strcmp(kind, "stall"))
            u->f_stall_ms = n;
    }
}

int uring_create(uring **out, const char *const *paths, int n_paths, const struct iovec *bufs,
                 int n_bufs, int depth, char *err, size_t errlen)
{
    *out = NULL;
    uring *u = calloc(1, sizeof *u);
    if (!u)
        return -ENOMEM;
    u->depth = depth > 0 ? depth : 64;
    u->n_files = n_paths;
    u->fds = calloc((size_t)n_paths, sizeof *u->fds);
    u->paths = calloc((size_t)n_paths, sizeof *u->paths);
    u->reqs = calloc((size_t)u->depth, sizeof *u->reqs);
    u->bufs = calloc((size_t)(n_bufs > 0 ? n_bufs : 1), sizeof *u->bufs);
    if (!u->fds || !u->paths || !u->reqs || !u->bufs) {
        uring_destroy(u);
        return -ENOMEM;
    }
    memcpy(u->bufs, bufs, (size_t)n_bufs * sizeof *bufs);
    u->n_bufs = n_bufs;
    parse_faults(u);
    u->st.direct = true;
    for (int i = 0; i < n_paths; i++) {
        u->fds[i] = -1;
        u->paths[i] = strdup(paths[i]);
    }
    for (int i = 0; i < n_paths; i++) {
        u->fds[i] = open(paths[i], O_RDONLY | O_DIRECT | O_CLOEXEC);
        if (u->fds[i] < 0 && errno == EINVAL) { /* filesystem without O_DIRECT */
            u->st.direct = false;
            u->fds[i] = open(paths[i], O_RDONLY | O_CLOEXEC);
        }
        if (u->fds[i] < 0) {
            int e = errno;
            snprintf(err, errlen, "%s: cannot open for paging: %s", paths[i], strerror(e));
            uring_destroy(u);
            return -e;
        }
    }
    if (!getenv("MOESTREAM_NO_URING") && io_uring_queue_init((unsigned)u->depth, &u->ring, 0) == 0) {
        u->ring_ok = true;
        u->fixed_files = io_uring_register_files(&u->ring, u->fds, (unsigned)n_paths) == 0;
        u->fixed_bufs = n_bufs > 0 && io_uring_register_buffers(&u->ring, bufs, (unsigned)n_bufs) == 0;
    } else {
        fprintf(stderr, "moestream: io_uring unavailable; expert reads use pread (slower)\n");
    }
    u->st.io_uring = u->ring_ok;
    *out = u;
    return 0;
}

void uring_destroy(uring *u)
{
    if (!u)
        return;
    if (u->ring_ok) {
        /* drain: the kernel may still write into the buffers */
        while (u->in_flight > 0) {
            struct io_uring_cqe *cqe;
            if (io_uring_wait_cqe(&u->ring, &cqe) != 0)
                break;
            io_uring_cqe_seen(&u->ring, cqe);
            u->in_flight--;
        }
        io_uring_queue_exit(&u->ring);
    }
    for (int i = 0; u->fds && i < u->n_files; i++)
        if (u->fds[i] >= 0)
            close(u->fds[i]);
    for (int i = 0; u->paths && i < u->n_files; i++)
        free(u->paths[i]);
    free(u->fds);
    free(u->paths);
    free(u->reqs);
    free(u->bufs);
    free(u);
}

static int buf_index(const uring *u, const void *p, size_t len)
{
    for (int i = 0; i < u->n_bufs; i++) {
        const uint8_t *b = u->bufs[i].iov_base;
        if ((const uint8_t *)p >= b && (const uint8_t *)p + len <= b + u->bufs[i].iov_len)
            return i;
    }
    return -1;
}

/* Puts request r (its remaining part) on the ring. */
static int push_sqe(uring *u, int r)
{
    req *q = &u->reqs[r];
    struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);
    if (!sqe) {
        io_uring_submit(&u->ring);
        sqe = io_uring_get_sqe(&u->ring);
        if (!sqe)
            return -EBUSY;
    }
    size_t len = q->len - q->got;
    u->n_submitted++;
    if (u->f_short && u->n_submitted % (uint64_t)u->f_short == 0 && len > URING_ALIGN)
        len = (len / 2) & ~(size_t)(URING_ALIGN - 1); /* injected short read */
    uint8_t *dst = q->buf + q->got;
    int fd = u->fixed_files ? q->file : u->fds[q->file];
    int bi = u->fixed_bufs ? buf_index(u, dst, len) : -1;
    if (bi >= 0)
        io_uring_prep_read_fixed(sqe, fd, dst, (unsigned)len, q->off + q->got, bi);
    else
        io_uring_prep_read(sqe, fd, dst, (unsigned)len, q->off + q->got);
    if (u->fixed_files)
        sqe->flags |= IOSQE_FIXED_FILE;
    io_uring_sqe_set_data64(sqe, (uint64_t)r);
    u->queued++;
    return 0;
}

int uring_read(uring *u, int file, void *buf, uint64_t off, size_t len, size_t need, uint64_t tag)
{
    if (file < 0 || file >= u->n_files || (off | len) % URING_ALIGN ||
        ((uintptr_t)buf % URING_ALIGN) || need > len)
        return -EINVAL; /* alignment is checked at submission, never assumed */
    int r = -1;
    for (int i = 0; i < u->depth; i++)
        if (!u->reqs[i].used) {
            r = i;
            break;
        }
    if (r < 0)
        return -EBUSY;
    req *q = &u->reqs[r];
    *q = (req){true, false, file, buf, off, len, need, 0, tag, 0};
    u->st.reads++;
    if (u->in_flight == 0)
        u->busy_since = now_s();
    u->in_flight++;
    if (!u->ring_ok) {
        /* pread fallback: complete now, report at wait */
        while (q->got < q->need) {
            ssize_t n = pread(u->fds[file], q->buf + q->got, q->len - q->got, (off_t)(q->off + q->got));
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0) {
                q->res = n < 0 ? -errno : -EIO;
                break;
            }
            q->got += (size_t)n;
        }
        u->n_submitted++;
        if (u->f_eio && u->n_submitted % (uint64_t)u->f_eio == 0)
            q->res = -EIO;
        q->done = true;
        return 0;
    }
    return push_sqe(u, r);
}

int uring_submit(uring *u)
{
    if (!u->ring_ok || u->queued == 0)
        return 0;
    if (u->f_stall_ms)
        nanosleep(&(struct timespec){u->f_stall_ms / 1000, (long)(u->f_stall_ms % 1000) * 1000000L}, NULL);
    int n = io_uring_submit(&u->ring);
    if (n < 0)
        return n;
    u->queued = 0;
    return 0;
}

int uring_in_flight(const uring *u) { return u->in_flight; }

static int finish(uring *u, int r, uint64_t *tag, int *res, char *err, size_t errlen)
{
    req *q = &u->reqs[r];
    *tag = q->tag;
    *res = q->res;
    if (q->res < 0) {
        u->st.errors++;
        snprintf(err, errlen, "%s: read of %zu bytes at offset %llu failed: %s", u->paths[q->file],
                 q->len, (unsigned long long)q->off, strerror(-q->res));
    } else {
        u->st.bytes += q->got;
    }
    q->used = false;
    u->in_flight--;
    if (u->in_flight == 0)
        u->st.busy_s += now_s() - u->busy_since;
    return 0;
}

int uring_wait(uring *u, uint64_t *tag, int *res, char *err, size_t errlen)
{
    if (u->in_flight == 0)
        return -ENOENT;
    if (!u->ring_ok) {
        for (int i = 0; i < u->depth; i++)
            if (u->reqs[i].used && u->reqs[i].done)
                return finish(u, i, tag, res, err, errlen);
        return -ENOENT;
    }
    uring_submit(u);
    for (;;) {
        struct io_uring_cqe *cqe;
        int rc = io_uring_wait_cqe(&u->ring, &cqe);
        if (rc == -EINTR)
            continue;
        if (rc)
            return rc;
        int r = (int)io_uring_cqe_get_data64(cqe);
        int cres = cqe->res;
        io_uring_cqe_seen(&u->ring, cqe);
        req *q = &u->reqs[r];
        if (u->f_eio && (u->st.reads + u->st.resubmits) % (uint64_t)u->f_eio == 0 && cres > 0 &&
            q->got == 0)
            cres = -EIO; /* injected */
        if (cres == -EAGAIN || cres == -EINTR || (cres > 0 && q->got + (size_t)cres < q->len &&
                                                  q->got + (size_t)cres < q->need)) {
            if (cres > 0)
                q->got += (size_t)cres;
            u->st.resubmits++;
            if ((rc = push_sqe(u, r)))
                return rc;
            uring_submit(u);
            continue;
        }
        if (cres < 0) {
            q->res = cres;
        } else {
            q->got += (size_t)cres;
            if (q->got < q->need)
                q->res = -EIO; /* end of file before the data we need */
        }
        return finish(u, r, tag, res, err, errlen);
    }
}

void uring_get_stats(const uring *u, uring_stats *s) { *s = u->st; }
