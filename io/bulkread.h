/* bulkread.h - one pass of large reads from the model files into the
 * caller's memory (the resident weights at load): O_DIRECT through the
 * ring, many reads in flight, each range landing straight in its final
 * place.  It knows files and byte ranges, never a model: the caller lays
 * out the regions and gives the list.
 *
 * O_DIRECT reads whole 4 KiB blocks into 4 KiB-aligned memory, so a range
 * (file, off, len) is read as its aligned superset into a region of
 * bulkread_region_bytes(off, len) bytes at a 4 KiB-aligned address; its
 * bytes then start at off % 4096 in the region.  Where that offset is not a
 * multiple of the alignment the caller asks for (GGUF aligns tensors to 32
 * bytes; SIMD rows want 64), the bytes are moved down in the region once
 * the range has landed, to bulkread_data_off(off, align).
 *
 * Falls back as io/uring.h does: buffered io_uring when the filesystem
 * refuses O_DIRECT (tmpfs, some FUSE), pread when io_uring is unavailable
 * (MOESTREAM_NO_URING too); bulkread_stats.path says which, nothing is
 * printed.  Fault injection for tests: MOESTREAM_LOAD_FAULT, with
 * MOESTREAM_FAULT's syntax (uring.h), kept apart so the expert-read faults
 * of other tests do not hit the load.
 *
 * Owns: bulkread_* only.  One call, one thread; it returns when every read
 * finished (or the first failure, after draining the rest). */
#ifndef MS_BULKREAD_H
#define MS_BULKREAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct bulkread_range {
    uint32_t file;    /* index into the paths */
    uint64_t off;     /* bytes wanted: [off, off + len) of the file */
    uint64_t len;
    uint8_t *region;  /* 4096-aligned, bulkread_region_bytes(off, len) bytes */
} bulkread_range;

typedef struct bulkread_opts {
    size_t align;        /* where the bytes must start in the region (power of two <= 4096; default 64) */
    size_t chunk;        /* bytes per read (default 4 MiB) */
    int depth;           /* reads in flight at most (default 32) */
    size_t max_inflight; /* bytes in flight at most (default 128 MiB) */
    bool no_uring;       /* force the pread path (tests) */
    void (*progress)(void *ud, uint64_t done, uint64_t total); /* bytes landed; may be NULL */
    void *progress_ud;
} bulkread_opts;

typedef struct bulkread_stats {
    uint64_t bytes;       /* bytes read, alignment included */
    uint64_t wanted;      /* sum of the ranges' lengths */
    uint64_t moved;       /* bytes moved to meet the alignment */
    uint64_t reads;
    double seconds;
    bool io_uring, direct;
    char path[160];       /* as uring_stats.path */
} bulkread_stats;

void bulkread_opts_default(bulkread_opts *o);
uint64_t bulkread_region_bytes(uint64_t off, uint64_t len);
uint64_t bulkread_data_off(uint64_t off, size_t align);

/* Reads every range.  0, or the first failure as -errno (-EIO for a read
 * that failed or ended early; -EINVAL for a region not 4096-aligned or a
 * file index out of range) with a message naming file, offset and length.
 * After a failure the regions' contents are undefined.  st may be NULL. */
int bulkread_run(const char *const *paths, int n_paths, const bulkread_range *r, size_t n,
                 const bulkread_opts *o, bulkread_stats *st, char *err, size_t errlen);

#endif
