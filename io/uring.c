/* uring.c - see uring.h.
 *
 * Requests live in a fixed table (n_reqs entries, allocated at create); an
 * sqe's user_data is the table index.  A request is FREE, WAITING (queued in
 * FIFO order for room on the ring), ON_RING, or DONE (pread path: finished
 * at queue time, reported by uring_wait so callers see one behaviour).
 * Room on the ring: at most `depth` reads and `max_inflight` bytes, so a
 * layer's worth of misses cannot flood the device queue and reads finish
 * roughly in the order they were asked for (the pager waits for experts in
 * that order).  A completion with fewer bytes than needed (short read) or
 * -EAGAIN/-EINTR is resubmitted for the rest, in place; a read that reached
 * the end of the file is complete once `need` bytes are there.
 * Invariants: on_ring counts ON_RING requests and ring_bytes their full
 * lengths; pending counts every request that is not FREE. */
#include "uring.h"

#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

enum { R_FREE = 0, R_WAITING, R_ON_RING, R_DONE };

typedef struct req {
    int state;
    int file;
    uint8_t *buf;   /* borrowed, inside one of the registered buffers */
    uint64_t off;   /* aligned file offset */
    size_t len;     /* aligned length asked for */
    size_t need;    /* bytes that must arrive */
    size_t got;     /* bytes arrived so far */
    uint64_t tag;
    int res;
    double t_out;   /* when it first went on the ring (stall injection) */
} req;

struct uring {
    bool ring_ok, fixed_files, fixed_bufs, direct;
    struct io_uring ring;
    int n_files;
    int *fds;
    char **paths;
    struct stat *opened; /* each file as it was at the first open (changed-on-disk check) */
    bool have_opened;
    struct iovec *bufs;
    int n_bufs;
    atomic_bool *buf_ready;  /* registered (fixed reads allowed), per buffer */
    atomic_int n_ready;
    atomic_bool reg_stop;
    pthread_t reg_thr;
    bool reg_started, reg_done_sync;
    double reg_t0;
    _Atomic double reg_s;
    uring_opts o;
    req *reqs;
    int *free_stack, n_free;
    int *fifo, fifo_head, fifo_n; /* WAITING (ring path) or DONE (pread path) */
    int on_ring, unsubmitted, pending;
    size_t ring_bytes;
    uring_stats st;
    int f_eio, f_short, f_stall_ms;
    int f_max, f_done; /* at most f_max eio/short faults (0: no limit), f_done so far */
    uint64_t n_pushes, n_finished;
    double busy_since;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void uring_opts_default(uring_opts *o)
{
    memset(o, 0, sizeof *o);
    o->depth = 64;
    o->n_reqs = 256;
    o->max_inflight = (size_t)64 << 20;
}

static void parse_faults(uring *u, const char *f)
{
    if (!f || !*f)
        return;
    char kind[16];
    int n, max = 0;
    int got = sscanf(f, "%15[a-z]:%d:%d", kind, &n, &max);
    if (got >= 2 && n > 0 && (got == 2 || max > 0)) {
        u->f_max = got == 3 ? max : 0;
        if (!strcmp(kind, "eio"))
            u->f_eio = n;
        else if (!strcmp(kind, "short"))
            u->f_short = n;
        else if (!strcmp(kind, "stall"))
            u->f_stall_ms = n;
    }
    /* write:N and alloc:N are src/fault.c's (output writes, buffers) */
    bool other = got >= 2 && (!strcmp(kind, "write") || !strcmp(kind, "alloc"));
    if (!u->f_eio && !u->f_short && !u->f_stall_ms && !other)
        fprintf(stderr, "moestream: ignoring MOESTREAM_FAULT=%s (want eio:N[:K], short:N[:K] or stall:MS)\n", f);
}

/* ---- setup ---- */

static int open_files(uring *u, bool direct, char *err, size_t errlen)
{
    for (int i = 0; i < u->n_files; i++) {
        if (u->fds[i] >= 0)
            close(u->fds[i]);
        u->fds[i] = open(u->paths[i], O_RDONLY | O_CLOEXEC | (direct ? O_DIRECT : 0));
        if (u->fds[i] < 0 && direct && errno == EINVAL) /* filesystem without O_DIRECT */
            return open_files(u, false, err, errlen);
        if (u->fds[i] < 0) {
            int e = errno;
            snprintf(err, errlen, "%s: cannot open for paging: %s", u->paths[i], strerror(e));
            return -e;
        }
        if (!u->have_opened && fstat(u->fds[i], &u->opened[i]) != 0)
            memset(&u->opened[i], 0, sizeof u->opened[i]);
    }
    u->have_opened = true; /* a reopen (O_DIRECT refused per read) keeps the first record */
    u->direct = direct;
    return 0;
}

/* Whether a file changed since it was opened: truncated or rewritten in
 * place (same inode, new size or mtime), replaced by a rename (another
 * inode at the path) or removed.  The descriptor still reads the old inode
 * in the last two cases, but the file on disk is no longer the model that
 * was loaded, so it is said all the same.  Only called for a read that
 * failed or came back short: the stat turns "end of file" into the cause.
 * Writes "model file X changed on disk (...)" into buf, returns true if so. */
static bool file_changed(const uring *u, int file, char *buf, size_t n)
{
    const struct stat *was = &u->opened[file];
    struct stat now;
    if (stat(u->paths[file], &now) != 0) {
        snprintf(buf, n, "model file %s changed on disk (it is gone: %s)", u->paths[file], strerror(errno));
        return true;
    }
    bool replaced = now.st_ino != was->st_ino || now.st_dev != was->st_dev;
    if (now.st_size != was->st_size)
        snprintf(buf, n, "model file %s changed on disk (%ssize %lld -> %lld)", u->paths[file],
                 replaced ? "replaced, " : "", (long long)was->st_size, (long long)now.st_size);
    else if (replaced || now.st_mtim.tv_sec != was->st_mtim.tv_sec || now.st_mtim.tv_nsec != was->st_mtim.tv_nsec)
        snprintf(buf, n, "model file %s changed on disk (%s, size %lld)", u->paths[file],
                 replaced ? "replaced" : "modified since it was opened", (long long)now.st_size);
    else
        return false;
    return true;
}

static void describe_path(uring *u, const char *why)
{
    uring_stats *s = &u->st;
    s->io_uring = u->ring_ok;
    s->direct = u->direct;
    if (u->ring_ok && u->direct)
        snprintf(s->path, sizeof s->path, "io_uring + O_DIRECT (%s buffers, %s files)",
                 !u->fixed_bufs ? "unregistered" : u->o.register_bg ? "registered in the background" : "registered",
                 u->fixed_files ? "registered" : "unregistered");
    else if (u->ring_ok)
        snprintf(s->path, sizeof s->path, "io_uring, buffered (O_DIRECT refused by the filesystem)");
    else
        snprintf(s->path, sizeof s->path, "pread%s (io_uring unavailable: %s)%s",
                 u->direct ? " + O_DIRECT" : "", why,
                 u->direct ? "" : "; O_DIRECT refused by the filesystem");
    static atomic_flag said = ATOMIC_FLAG_INIT; /* once per process */
    if (!(u->ring_ok && u->direct) && !u->o.quiet && !atomic_flag_test_and_set(&said))
        fprintf(stderr, "moestream: expert reads use %s: slower than io_uring + O_DIRECT\n", s->path);
}

/* Registers the buffers one by one into the sparse table (each update
 * faults in and pins that buffer's pages), publishing each as it lands. */
static void *reg_main(void *arg)
{
    uring *u = arg;
    for (int i = 0; i < u->n_bufs && !atomic_load(&u->reg_stop); i++) {
        if (io_uring_register_buffers_update_tag(&u->ring, (unsigned)i, &u->bufs[i], NULL, 1) != 1)
            continue; /* e.g. past RLIMIT_MEMLOCK: this buffer stays unregistered */
        atomic_store_explicit(&u->buf_ready[i], true, memory_order_release);
        atomic_fetch_add(&u->n_ready, 1);
    }
    atomic_store(&u->reg_s, now_s() - u->reg_t0);
    return NULL;
}

/* Registration of the buffers: all at once now, or (register_bg) a sparse
 * table now and the buffers from a thread. */
static void register_bufs(uring *u)
{
    u->reg_t0 = now_s();
    if (u->n_bufs <= 0)
        return;
    if (!u->o.register_bg) {
        u->fixed_bufs = io_uring_register_buffers(&u->ring, u->bufs, (unsigned)u->n_bufs) == 0;
        for (int i = 0; u->fixed_bufs && i < u->n_bufs; i++)
            atomic_store(&u->buf_ready[i], true);
        atomic_store(&u->n_ready, u->fixed_bufs ? u->n_bufs : 0);
        atomic_store(&u->reg_s, now_s() - u->reg_t0);
        return;
    }
    if (io_uring_register_buffers_sparse(&u->ring, (unsigned)u->n_bufs) != 0)
        return; /* old kernel: reads stay unregistered */
    u->fixed_bufs = true;
    if (!u->o.register_later)
        uring_register_start(u);
}

void uring_register_start(uring *u)
{
    if (!u->fixed_bufs || !u->o.register_bg || u->reg_started || u->reg_done_sync)
        return;
    u->reg_t0 = now_s();
    if (pthread_create(&u->reg_thr, NULL, reg_main, u) == 0)
        u->reg_started = true;
    else {
        reg_main(u); /* no thread: register now */
        u->reg_done_sync = true;
    }
}

int uring_create(uring **out, const char *const *paths, int n_paths, const struct iovec *bufs,
                 int n_bufs, const uring_opts *opts, char *err, size_t errlen)
{
    *out = NULL;
    uring *u = calloc(1, sizeof *u);
    if (!u)
        return -ENOMEM;
    uring_opts_default(&u->o);
    if (opts) {
        u->o = *opts;
        if (u->o.depth <= 0)
            u->o.depth = 64;
        if (u->o.n_reqs < u->o.depth)
            u->o.n_reqs = 4 * u->o.depth;
        if (u->o.max_inflight == 0)
            u->o.max_inflight = (size_t)64 << 20;
    }
    const int nr = u->o.n_reqs;
    u->n_files = n_paths;
    u->fds = malloc((size_t)(n_paths > 0 ? n_paths : 1) * sizeof *u->fds);
    u->paths = calloc((size_t)(n_paths > 0 ? n_paths : 1), sizeof *u->paths);
    u->opened = calloc((size_t)(n_paths > 0 ? n_paths : 1), sizeof *u->opened);
    u->reqs = calloc((size_t)nr, sizeof *u->reqs);
    u->free_stack = malloc((size_t)nr * sizeof *u->free_stack);
    u->fifo = malloc((size_t)nr * sizeof *u->fifo);
    u->bufs = calloc((size_t)(n_bufs > 0 ? n_bufs : 1), sizeof *u->bufs);
    u->buf_ready = calloc((size_t)(n_bufs > 0 ? n_bufs : 1), sizeof *u->buf_ready);
    if (!u->fds || !u->paths || !u->opened || !u->reqs || !u->free_stack || !u->fifo || !u->bufs ||
        !u->buf_ready) {
        uring_destroy(u);
        return -ENOMEM;
    }
    if (n_bufs > 0)
        memcpy(u->bufs, bufs, (size_t)n_bufs * sizeof *bufs);
    u->n_bufs = n_bufs;
    for (int i = nr - 1; i >= 0; i--)
        u->free_stack[u->n_free++] = i;
    parse_faults(u, u->o.fault ? u->o.fault : getenv("MOESTREAM_FAULT"));
    for (int i = 0; i < n_paths; i++) {
        u->fds[i] = -1;
        if (!(u->paths[i] = strdup(paths[i]))) {
            uring_destroy(u);
            return -ENOMEM;
        }
    }
    int rc = open_files(u, true, err, errlen);
    if (rc) {
        uring_destroy(u);
        return rc;
    }
    char why[64] = "";
    if (u->o.no_uring || getenv("MOESTREAM_NO_URING")) {
        snprintf(why, sizeof why, "disabled");
    } else if ((rc = io_uring_queue_init((unsigned)u->o.depth, &u->ring, 0)) != 0) {
        snprintf(why, sizeof why, "%s", strerror(-rc)); /* ENOSYS (seccomp), EPERM (sysctl) */
    } else {
        u->ring_ok = true;
        u->fixed_files = io_uring_register_files(&u->ring, u->fds, (unsigned)n_paths) == 0;
        /* Registration pins the buffers; it fails past RLIMIT_MEMLOCK on old
         * kernels, and reads then go to unregistered memory. */
        register_bufs(u);
    }
    describe_path(u, why);
    *out = u;
    return 0;
}

void uring_destroy(uring *u)
{
    if (!u)
        return;
    if (u->reg_started) { /* before the ring goes */
        atomic_store(&u->reg_stop, true);
        pthread_join(u->reg_thr, NULL);
    }
    if (u->ring_ok) {
        if (u->unsubmitted)
            io_uring_submit(&u->ring);
        /* drain: the kernel may still write into the buffers */
        while (u->on_ring > 0) {
            struct io_uring_cqe *cqe;
            int rc = io_uring_wait_cqe(&u->ring, &cqe);
            if (rc == -EINTR)
                continue;
            if (rc)
                break;
            req *q = &u->reqs[io_uring_cqe_get_data64(cqe)];
            io_uring_cqe_seen(&u->ring, cqe);
            if (q->state == R_ON_RING) { /* done, short or failed: not resubmitted */
                q->state = R_FREE;
                u->on_ring--;
            }
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
    free(u->opened);
    free(u->reqs);
    free(u->free_stack);
    free(u->fifo);
    free(u->bufs);
    free(u->buf_ready);
    free(u);
}

/* ---- submission ---- */

static int buf_index(const uring *u, const void *p, size_t len)
{
    for (int i = 0; i < u->n_bufs; i++) {
        const uint8_t *b = u->bufs[i].iov_base;
        if ((const uint8_t *)p >= b && (const uint8_t *)p + len <= b + u->bufs[i].iov_len)
            return i;
    }
    return -1;
}

/* Bytes the next transfer of a remaining `len` asks for: all of it, or
 * half (aligned) when a short read is injected. */
static size_t transfer_len(uring *u, size_t len)
{
    u->n_pushes++;
    if (u->f_short && u->n_pushes % (uint64_t)u->f_short == 0 && len > URING_ALIGN &&
        (!u->f_max || u->f_done < u->f_max)) {
        u->f_done++;
        return (len / 2) & ~(size_t)(URING_ALIGN - 1);
    }
    return len;
}

/* Puts the rest of request r on the ring (an sqe is free: on_ring <= depth
 * = ring entries, and r is counted in on_ring already). */
static void push_sqe(uring *u, int r)
{
    req *q = &u->reqs[r];
    struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);
    if (!sqe) { /* cannot happen while on_ring <= depth; be safe */
        io_uring_submit(&u->ring);
        u->unsubmitted = 0;
        sqe = io_uring_get_sqe(&u->ring);
    }
    size_t len = transfer_len(u, q->len - q->got);
    uint8_t *dst = q->buf + q->got;
    int fd = u->fixed_files ? q->file : u->fds[q->file];
    int bi = u->fixed_bufs ? buf_index(u, dst, len) : -1;
    if (bi >= 0 && atomic_load_explicit(&u->buf_ready[bi], memory_order_acquire))
        io_uring_prep_read_fixed(sqe, fd, dst, (unsigned)len, q->off + q->got, bi);
    else
        io_uring_prep_read(sqe, fd, dst, (unsigned)len, q->off + q->got);
    if (u->fixed_files)
        sqe->flags |= IOSQE_FIXED_FILE;
    io_uring_sqe_set_data64(sqe, (uint64_t)r);
    u->unsubmitted++;
}

/* Moves waiting requests onto the ring while there is room. */
static void pump(uring *u)
{
    while (u->fifo_n > 0) {
        int r = u->fifo[u->fifo_head];
        req *q = &u->reqs[r];
        if (u->on_ring >= u->o.depth ||
            (u->on_ring > 0 && u->ring_bytes + q->len > u->o.max_inflight))
            break;
        u->fifo_head = (u->fifo_head + 1) % u->o.n_reqs;
        u->fifo_n--;
        q->state = R_ON_RING;
        q->t_out = u->f_stall_ms ? now_s() : 0;
        u->on_ring++;
        u->ring_bytes += q->len;
        if (u->ring_bytes > u->st.peak_inflight)
            u->st.peak_inflight = u->ring_bytes;
        push_sqe(u, r);
    }
}

int uring_submit(uring *u)
{
    if (!u->ring_ok)
        return 0;
    pump(u);
    while (u->unsubmitted > 0) {
        int n = io_uring_submit(&u->ring);
        if (n == -EINTR)
            continue;
        if (n < 0)
            return n;
        u->unsubmitted = n >= u->unsubmitted ? 0 : u->unsubmitted - n;
        if (n == 0)
            break;
    }
    return 0;
}

/* The pread path: the whole read, now. */
static void pread_all(uring *u, req *q)
{
    while (q->got < q->need) {
        size_t len = transfer_len(u, q->len - q->got);
        ssize_t n = pread(u->fds[q->file], q->buf + q->got, len, (off_t)(q->off + q->got));
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n < 0) {
            q->res = -errno;
            return;
        }
        if (n == 0) {
            q->res = -EIO; /* end of file before the data we need */
            return;
        }
        q->got += (size_t)n;
    }
    if (u->f_stall_ms)
        nanosleep(&(struct timespec){u->f_stall_ms / 1000, (long)(u->f_stall_ms % 1000) * 1000000L},
                  NULL);
}

int uring_read(uring *u, int file, void *buf, uint64_t off, size_t len, size_t need, uint64_t tag)
{
    if (file < 0 || file >= u->n_files || len == 0 || (off | len) % URING_ALIGN ||
        ((uintptr_t)buf % URING_ALIGN) || need > len || len > (1u << 30))
        return -EINVAL;
    if (u->n_free == 0)
        return -EBUSY;
    int r = u->free_stack[--u->n_free];
    req *q = &u->reqs[r];
    *q = (req){R_WAITING, file, buf, off, len, need, 0, tag, 0, 0};
    u->st.reads++;
    if (u->pending++ == 0)
        u->busy_since = now_s();
    if (!u->ring_ok) {
        pread_all(u, q);
        q->state = R_DONE;
    } else if (u->fifo_n > 0 || u->on_ring >= u->o.depth ||
               (u->on_ring > 0 && u->ring_bytes + len > u->o.max_inflight)) {
        u->st.queued_waits++;
    }
    u->fifo[(u->fifo_head + u->fifo_n) % u->o.n_reqs] = r;
    u->fifo_n++;
    if (u->ring_ok)
        pump(u);
    return 0;
}

int uring_pending(const uring *u) { return u->pending; }

/* ---- completion ---- */

static void finish(uring *u, int r, uint64_t *tag, int *res, char *err, size_t errlen)
{
    req *q = &u->reqs[r];
    u->n_finished++;
    if (q->res == 0 && u->f_eio && u->n_finished % (uint64_t)u->f_eio == 0 &&
        (!u->f_max || u->f_done < u->f_max)) {
        u->f_done++;
        q->res = -EIO; /* injected */
    }
    *tag = q->tag;
    *res = q->res;
    if (q->res < 0) {
        u->st.errors++;
        char changed[384];
        if (file_changed(u, q->file, changed, sizeof changed))
            snprintf(err, errlen, "%s: read of %zu bytes at offset %llu failed: %s (%zu bytes arrived)",
                     changed, q->len, (unsigned long long)q->off, strerror(-q->res), q->got);
        else
            snprintf(err, errlen, "%s: read of %zu bytes at offset %llu failed: %s (%zu bytes arrived)",
                     u->paths[q->file], q->len, (unsigned long long)q->off, strerror(-q->res), q->got);
    }
    u->st.bytes += q->got;
    if (q->state == R_ON_RING) {
        u->on_ring--;
        u->ring_bytes -= q->len;
    }
    q->state = R_FREE;
    u->free_stack[u->n_free++] = r;
    if (--u->pending == 0)
        u->st.busy_s += now_s() - u->busy_since;
}

/* The filesystem took O_DIRECT at open but refuses it per read: continue
 * buffered.  0 or -errno. */
static int drop_direct(uring *u)
{
    char e[256];
    if (open_files(u, false, e, sizeof e))
        return -EIO;
    if (u->fixed_files && io_uring_register_files_update(&u->ring, 0, u->fds, (unsigned)u->n_files) < 0)
        u->fixed_files = false;
    describe_path(u, "");
    return 0;
}

int uring_wait(uring *u, bool block, uint64_t *tag, int *res, char *err, size_t errlen)
{
    if (u->pending == 0)
        return -ENOENT;
    if (!u->ring_ok) {
        int r = u->fifo[u->fifo_head];
        u->fifo_head = (u->fifo_head + 1) % u->o.n_reqs;
        u->fifo_n--;
        finish(u, r, tag, res, err, errlen);
        return 0;
    }
    int rc = uring_submit(u);
    if (rc)
        return rc;
    for (;;) {
        struct io_uring_cqe *cqe;
        rc = block ? io_uring_wait_cqe(&u->ring, &cqe) : io_uring_peek_cqe(&u->ring, &cqe);
        if (rc == -EINTR)
            continue;
        if (rc == -EAGAIN && !block)
            return -EAGAIN;
        if (rc)
            return rc;
        const int r = (int)io_uring_cqe_get_data64(cqe);
        req *q = &u->reqs[r];
        if (u->f_stall_ms) { /* injected slow disk: not visible before t_out + stall */
            double left = q->t_out + u->f_stall_ms * 1e-3 - now_s();
            if (left > 0) {
                if (!block)
                    return -EAGAIN; /* cqe left in the ring */
                nanosleep(&(struct timespec){(time_t)left, (long)((left - (double)(time_t)left) * 1e9)},
                          NULL);
            }
        }
        const int cres = cqe->res;
        io_uring_cqe_seen(&u->ring, cqe);
        if (cres == -EINVAL && u->direct && drop_direct(u) == 0) {
            u->st.resubmits++;
            push_sqe(u, r);
        } else if (cres == -EAGAIN || cres == -EINTR ||
                   (cres > 0 && q->got + (size_t)cres < q->need)) {
            if (cres > 0)
                q->got += (size_t)cres; /* short read: the rest */
            u->st.resubmits++;
            push_sqe(u, r);
        } else {
            if (cres < 0)
                q->res = cres;
            else if ((q->got += (size_t)cres) < q->need) /* cres == 0: end of file */
                q->res = -EIO;
            finish(u, r, tag, res, err, errlen);
            pump(u);
            if ((rc = uring_submit(u)) != 0)
                return rc;
            return 0;
        }
        if ((rc = uring_submit(u)) != 0)
            return rc;
    }
}

void uring_get_stats(const uring *u, uring_stats *s)
{
    *s = u->st;
    if (u->pending > 0)
        s->busy_s += now_s() - u->busy_since;
    s->bufs = u->n_bufs;
    s->bufs_registered = atomic_load(&u->n_ready);
    s->register_s = atomic_load(&u->reg_s);
}
