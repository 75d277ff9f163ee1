/* imatrix_collect.h - collecting an importance matrix from the forward
 * pass (fwd_opts.on_matmul) the way the reference's llama-imatrix does, and
 * writing it in both of its formats (GGUF: <name>.in_sum2 and <name>.counts
 * with imatrix.* keys; legacy .dat), so that imatrix_load.c and the
 * reference's quantizer read it.
 *
 * Per weight: the sum over tokens of x[j]^2 for every input column j, and
 * the token count; per routed expert of a *_exps tensor its own sums and
 * count (a token counts once per expert it chose).  Sums are floats added in
 * the reference's order: dense products row by row as its ubatches present
 * them, routed experts per ubatch expert by expert, then selection slot,
 * then ubatch row - which is why routed rows are staged until the ubatch
 * ends (imatrix_collect_end_ubatch).  Dense products of ubatches under 16
 * rows are skipped, as the reference skips them.
 * Owns: imatrix_collect_*.  Thread safety: one thread (the evaluating one). */
#ifndef MS_IMATRIX_COLLECT_H
#define MS_IMATRIX_COLLECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "forward.h"
#include "model.h"

typedef struct imatrix_collect imatrix_collect;

/* chunk_size: tokens per chunk (imatrix.chunk_size); ub_max: the most rows
 * an ubatch has (staging is sized for it); process_output: collect
 * output.weight too.  0, -EINVAL or -ENOMEM (message says how much). */
int imatrix_collect_create(imatrix_collect **out, const model *m, int chunk_size, int ub_max,
                           bool process_output, char *err, size_t errlen);
void imatrix_collect_destroy(imatrix_collect *c); /* accepts NULL */

/* Bytes the routed-expert staging takes (the rest is the sums). */
size_t imatrix_collect_stage_bytes(const imatrix_collect *c);

/* An ubatch of ub_rows rows starts; the next evaluations' rows are its rows
 * row0.. (imatrix_collect_rows) until imatrix_collect_end_ubatch. */
void imatrix_collect_begin_ubatch(imatrix_collect *c, int ub_rows);
void imatrix_collect_rows(imatrix_collect *c, int row0);
void imatrix_collect_end_ubatch(imatrix_collect *c);

/* The fwd_opts.on_matmul callback; ud is the collector. */
void imatrix_collect_hook(void *ud, const fwd_mm_in *in);

/* Writes the GGUF form (dataset: the text file's name as given). */
int imatrix_collect_save_gguf(const imatrix_collect *c, const char *path, const char *dataset,
                              char *err, size_t errlen);
/* Writes the legacy .dat form. */
int imatrix_collect_save_dat(const imatrix_collect *c, const char *path, const char *dataset,
                             char *err, size_t errlen);

#endif
