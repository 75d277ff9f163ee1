/* uring.h - asynchronous reads from the model files into registered
 * buffers: io_uring with O_DIRECT, or pread when io_uring or O_DIRECT is
 * unavailable (said once on stderr and in the stats).
 *
 * Owns: the ring, the O_DIRECT file descriptors, request tracking (short
 * reads and -EAGAIN resubmit the rest; errors carry file, offset, length),
 * and fault injection for tests (MOESTREAM_FAULT=eio:N|short:N|stall:MS:
 * every Nth read fails with EIO / comes back short; every submit stalls).
 * The only file that includes liburing.h.
 * Thread safety: one thread drives a uring. */
#ifndef MS_URING_H
#define MS_URING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#define URING_ALIGN 4096

typedef struct uring uring;

typedef struct uring_stats {
    bool io_uring;      /* false: pread fallback */
    bool direct;        /* O_DIRECT on every file */
    uint64_t reads, bytes, resubmits, errors;
    double busy_s;      /* wall time with at least one read in flight */
} uring_stats;

/* paths: the model's files.  bufs: memory reads may land in (registered
 * when possible; every read buffer must lie inside one of them, aligned to
 * URING_ALIGN).  depth: max reads in flight. */
int uring_create(uring **out, const char *const *paths, int n_paths, const struct iovec *bufs,
                 int n_bufs, int depth, char *err, size_t errlen);
void uring_destroy(uring *u); /* accepts NULL */

/* Queues a read of len bytes at off (both multiples of URING_ALIGN) of file
 * `file` into buf; the read succeeds when at least `need` bytes arrived
 * (the aligned tail may pass the end of the file).  tag comes back from
 * uring_wait.  Submits when the queue is full.  0 or -errno. */
int uring_read(uring *u, int file, void *buf, uint64_t off, size_t len, size_t need, uint64_t tag);
/* Submits queued reads. */
int uring_submit(uring *u);
/* Blocks for the next finished read: *tag, and *res = 0 or -errno with a
 * message in err (file, offset, length).  -ENOENT when nothing is in flight. */
int uring_wait(uring *u, uint64_t *tag, int *res, char *err, size_t errlen);
int uring_in_flight(const uring *u);
void uring_get_stats(const uring *u, uring_stats *s);

#endif
