/* quantize_chunk.h - quantize rows to any weight type by its id
 * (simd/quantize_chunk.c).
 *
 * The by-id entry points above the traits table: they look a type up in
 * quant_info() and call its quantize_row column, so they sit in their own
 * file, not in quantize.c, whose functions the table names (one-way links,
 * checked by tests/simd_layers.sh). */
#ifndef MS_QUANTIZE_CHUNK_H
#define MS_QUANTIZE_CHUNK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Whether `type` is a weight type this quantizer can produce. */
bool quantize_supported(int type);

/* Whether the reference refuses to produce `type` without an importance
 * matrix (ggml_quantize_requires_imatrix). */
bool quantize_needs_imatrix(int type);

/* Quantize rows to `type` (see above).  Returns the bytes written, or 0 for
 * an unsupported type. F32/F16/BF16 are plain conversions. */
size_t quantize_chunk(int type, const float *src, void *dst, int64_t nrow, int64_t n_per_row,
                      const float *imatrix);

#endif
