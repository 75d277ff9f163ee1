/* threadpool.h - one persistent pool of worker threads for fork/join work.
 *
 * Owns: worker threads (created once, pinned one per physical core through
 * hwloc when available), a generation-counter fork and a spinning barrier
 * for the per-layer fork/join of decode.  No thread is created in the token
 * loop; jobs may not nest (a job must not call tpool_run).
 * Thread safety: tpool_run must be called from one thread at a time (the
 * owner); jobs run concurrently on all workers. */
#ifndef MS_THREADPOOL_H
#define MS_THREADPOOL_H

#include <stdbool.h>
#include <stddef.h>

typedef struct tpool tpool;

/* A job: called once on every thread ith in [0, nth) (the caller is ith 0). */
typedef void (*tpool_fn)(void *ctx, int ith, int nth);

/* n_threads <= 0: one per physical core.  Returns 0 or -errno. */
int tpool_create(tpool **out, int n_threads, char *err, size_t errlen);
void tpool_destroy(tpool *p); /* accepts NULL */
int tpool_size(const tpool *p); /* 1 for NULL */
/* What tpool_create(n_threads <= 0) would make: the physical core count. */
int tpool_default_threads(void);
/* Runs fn on every thread and returns when all have finished.  p may be
 * NULL: fn(ctx, 0, 1) on the caller. */
void tpool_run(tpool *p, tpool_fn fn, void *ctx);
/* Splits [0, n) evenly: thread ith gets [*lo, *hi). */
void tpool_split(long n, int ith, int nth, long *lo, long *hi);
/* A one-line description of the placement ("4 threads pinned to cores 0-3"). */
const char *tpool_describe(const tpool *p);

#endif
