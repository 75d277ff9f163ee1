/* uring.h - asynchronous reads from the model files into registered
 * buffers: io_uring with O_DIRECT, or pread when io_uring is unavailable
 * (ENOSYS under seccomp, EPERM when disabled by sysctl) or buffered reads
 * when the filesystem refuses O_DIRECT (tmpfs); said once per process on
 * stderr and always in the stats (`path`).
 *
 * Owns: the ring, the file descriptors, request tracking (a fixed table;
 * reads beyond the in-flight bounds wait in FIFO order and go out as
 * others complete; short reads and -EAGAIN resubmit the rest; errors carry
 * file, offset, length), and fault injection for tests.
 * The only file that includes liburing.h.
 *
 * Fault injection (MOESTREAM_FAULT, read at uring_create, or
 * uring_opts.fault): "eio:N" every Nth completed read fails with EIO;
 * "short:N" every Nth submission transfers only half (aligned); "stall:MS"
 * no read completes earlier than MS ms after it went out (a slow disk).
 * "eio:N:K" / "short:N:K": the same, K times at most, then the disk is
 * healthy again ("eio:3:1": only the 3rd read fails), so a long-lived
 * process (the server) can be shown to recover.  "write:N" and "alloc:N"
 * are src/fault.h's (output writes, buffer growth) and are ignored here.
 *
 * A read that fails (or ends early at end of file) checks its file against
 * the size and mtime recorded at open; a truncated, rewritten or replaced
 * model file is reported as "model file X changed on disk (size A -> B)".
 *
 * Thread safety: one thread drives a uring (with register_bg the ring's
 * registration thread only calls io_uring_register, which the kernel
 * serialises with submissions; readiness is published per buffer with an
 * atomic flag). */
#ifndef MS_URING_H
#define MS_URING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#define URING_ALIGN 4096

typedef struct uring uring;

typedef struct uring_opts {
    int depth;              /* reads on the ring at most (default 64) */
    int n_reqs;             /* reads queued or in flight at most (default 4 * depth) */
    size_t max_inflight;    /* bytes on the ring at most (default 64 MiB; a single
                               larger read still goes, alone) */
    const char *fault;      /* fault spec as MOESTREAM_FAULT; NULL = from the env */
    bool no_uring;          /* force the pread path (tests) */
    bool quiet;             /* no line on stderr for a fallback path (the caller says it) */
    /* Register the buffers from a thread of the ring's own, one buffer at
     * a time, instead of before uring_create returns: registration faults
     * in and pins every page (seconds for a pool of GBs), and meanwhile
     * reads into a buffer not yet registered go out as ordinary reads of
     * the same memory (the kernel pins those pages per read), so no read
     * waits for it.  Needs sparse registration (Linux 5.13); without it the
     * buffers stay unregistered. */
    bool register_bg;
    bool register_later;    /* register_bg, started by uring_register_start only */
} uring_opts;

void uring_opts_default(uring_opts *o);

typedef struct uring_stats {
    bool io_uring;      /* false: pread fallback */
    bool direct;        /* O_DIRECT on every file */
    char path[160];     /* the path used and, for a fallback, why */
    uint64_t reads;     /* reads requested */
    uint64_t bytes;     /* bytes transferred by completed reads */
    uint64_t resubmits; /* short reads / -EAGAIN continued */
    uint64_t errors;    /* reads that failed */
    uint64_t queued_waits; /* reads that waited for in-flight room */
    size_t peak_inflight;  /* most bytes on the ring at once */
    double busy_s;      /* wall time with at least one read outstanding */
    int bufs, bufs_registered; /* buffers given, and registered so far */
    double register_s;  /* time registration took (background: until the last one) */
} uring_stats;

/* paths: the model's files.  bufs: memory reads may land in (registered
 * with the kernel when possible; every read's buffer must lie inside one of
 * them).  o: NULL = defaults.  0 or -errno with a message (a file that
 * cannot be opened). */
int uring_create(uring **out, const char *const *paths, int n_paths, const struct iovec *bufs,
                 int n_bufs, const uring_opts *o, char *err, size_t errlen);
void uring_destroy(uring *u); /* accepts NULL; waits for reads on the ring */

/* Queues a read of len bytes at off of file `file` into buf; off, len and
 * buf must be multiples of URING_ALIGN (-EINVAL otherwise: alignment is
 * checked here, never assumed).  The read succeeds once `need` bytes
 * arrived (the aligned tail may pass the end of the file).  tag comes back
 * from uring_wait.  -EBUSY when the request table is full (reap first). */
int uring_read(uring *u, int file, void *buf, uint64_t off, size_t len, size_t need, uint64_t tag);
/* Sends queued reads to the kernel.  0 or -errno. */
int uring_submit(uring *u);
/* The next finished read: *tag and *res = 0 or -errno with a message in
 * err (file, offset, length).  block=false: -EAGAIN when none has finished.
 * -ENOENT when nothing is queued or in flight. */
int uring_wait(uring *u, bool block, uint64_t *tag, int *res, char *err, size_t errlen);
int uring_pending(const uring *u); /* reads queued or in flight */
/* register_later: starts the background registration now (once; later
 * calls do nothing).  Faulting in GBs takes the same memory bandwidth a
 * load needs, so a caller that loads first starts it afterwards. */
void uring_register_start(uring *u);
void uring_get_stats(const uring *u, uring_stats *s);

#endif
