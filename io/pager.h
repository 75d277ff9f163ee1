/* pager.h - routed experts paged from the model files into the fixed pool,
 * cached by (layer, expert), served to the forward pass as an expert_src.
 *
 * acquire() looks up every expert the layer needs, starts reads for the
 * misses at once (they overlap each other and, via wait(), the compute of
 * the hits), and pins the set until release().  A failed read invalidates
 * its slot and fails the request with file and offset; nothing computed
 * from a partial read is ever used.
 * The pager knows files, offsets and lengths (pager_layout), never a model:
 * it compiles with io/ alone on the include path.
 * Owns: pager_* only.  One thread (the forward pass's) drives it; with a
 * transform in the layout the pager runs one more thread of its own. */
#ifndef MS_PAGER_H
#define MS_PAGER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "expert_src.h"

/* Where one expert matrix lies: file index (into pager_layout.paths),
 * absolute byte offset, length.  len == 0: no such expert (a dense layer).
 * xf_len > 0: the matrix is converted in place once it has landed (the
 * layout's transform) and needs a region of xf_len bytes for that; the read
 * then goes to the end of the region and the matrix is served from its
 * start. */
typedef struct pager_extent {
    uint32_t file;
    uint64_t off;
    uint64_t len;
    uint64_t xf_len;
} pager_extent;

/* Converts matrix k (0 gate, 1 up, 2 down) of expert e of layer il in
 * place: its file bytes are at region + data_off, the result goes to the
 * region's start (region_bytes long, at least the extent's xf_len).
 * Returns 0 or a negative errno with a message; a failure fails the slot
 * like a failed read.  Runs on the pager's transform thread, or on the
 * thread driving the pager when that one would otherwise wait for it, while
 * other reads stay in flight: it must be safe to call from any thread, and
 * two calls may run at once (on different slots). */
typedef int (*pager_transform_fn)(void *ud, int il, int e, int k, uint8_t *region, size_t region_bytes,
                                  size_t data_off, char *err, size_t errlen);

/* Everything the pager knows about the experts: a plain table, built by the
 * caller (src/engine.c from a model; tests from a fake file).  Keys are
 * layer * n_expert + expert.  pager_create copies the table and the paths. */
typedef struct pager_layout {
    int n_layer, n_expert;
    int n_files;
    const char *const *paths;  /* (n_files) */
    const pager_extent *ext;   /* (n_layer * n_expert * 3): gate, up, down of each key */
    pager_transform_fn transform; /* for the extents with xf_len > 0; NULL: none has */
    void *transform_ud;
    /* Passed on as expert_src.repacked: the matrices come in the layout the
     * caller calls repacked (stored so, or made so by the transform).  Also
     * set whenever the layout has a transform. */
    bool repacked;
} pager_layout;

typedef struct pager_opts {
    int n_slots;      /* experts the pool holds */
    int policy;       /* enum cpol_kind */
    bool lock;        /* mlock the pool */
} pager_opts;

typedef struct pager_stats {
    uint64_t hits, misses;
    uint64_t bytes_read;        /* bytes transferred, alignment padding included */
    uint64_t read_bytes_needed; /* expert bytes those reads were for (misses + read-ahead) */
    double stall_s;     /* time the forward pass waited on reads */
    double busy_s;      /* time reads were in flight */
    int n_slots, used_slots;
    size_t slot_bytes;
    bool io_uring, direct;
    uint64_t errors;
    uint64_t resubmits;       /* short reads / -EAGAIN continued */
    size_t peak_inflight;     /* most bytes on the ring at once */
    char path[160];           /* "io_uring + O_DIRECT ..." or the fallback and why */
    bool huge_pages;          /* the pool is on huge pages (hugetlbfs or THP advice) */
    uint64_t prefetched;      /* experts read ahead on a guess */
    uint64_t prefetch_used;   /* ... that the next layer then asked for */
    uint64_t transformed;     /* matrices converted by the layout's transform */
    double transform_s;       /* time the transform thread spent on them */
} pager_stats;

typedef struct pager pager;

/* Bytes of one pool slot for this layout (largest expert, aligned reads). */
size_t pager_slot_bytes(const pager_layout *lo);
/* A pager over lo (copied; lo may go after the call) with o->n_slots slots.
 * 0, or -EINVAL (no slots, an extent's file out of range), -ENOMEM, or the
 * error opening a file, with a message. */
int pager_create(pager **out, const pager_layout *lo, const pager_opts *o, char *err, size_t errlen);
void pager_destroy(pager *p); /* accepts NULL */
const expert_src *pager_src(pager *p);
void pager_get_stats(const pager *p, pager_stats *s);

/* Warm start.  save: writes the policy's popularity of every expert to path
 * (text: "moestream-cache-state 1 POLICY N_LAYER N_EXPERT", then
 * "layer expert score" lines, hottest first, zeros left out).  load: reads
 * such a file for the same layout, seeds the policy with the scores when it
 * is the same policy, and starts reads of the hottest experts, as many as
 * the pool holds; they land in the background (the ring) while the caller
 * goes on, e.g. evaluates the prompt, and count as read-ahead.  Returns
 * the experts whose reads started, or -ENOENT (no file), -EBADMSG
 * (malformed, with the line), -EINVAL (another layout), with a message. */
int pager_state_save(const pager *p, const char *path, char *err, size_t errlen);
int pager_state_load(pager *p, const char *path, char *err, size_t errlen);

#endif
