/* quantize.h - weight quantization from float rows (simd/quantize.c).
 *
 * Every quantize_<type>() takes nrow rows of n_per_row floats (a multiple of
 * the type's block size) at src and writes nrow rows of
 * quant_row_bytes(type, n_per_row) bytes at dst; imatrix, when not NULL,
 * holds n_per_row importance weights (one per column, shared by the rows).
 * Returns the bytes written.  Output is bit for bit the reference
 * quantizer's for the same input.  These functions fill the traits table's
 * quantize_row column (quant_info(type)->quantize_row).
 * The i-quants (IQ1_*, IQ2_*, IQ3_*) build their search tables on first use
 * (0 bytes written if that runs out of memory; quantize_init_type() reports
 * it first).  IQ1_S, IQ2_XXS and IQ2_XS need imatrix (quantize_needs_imatrix);
 * without it quantize_chunk (quantize_chunk.h) writes nothing.
 * Thread safety: reentrant; the one-time table builds are serialized. */
#ifndef MS_QUANTIZE_H
#define MS_QUANTIZE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Builds the i-quant search tables once (thread-safe, idempotent): all of
 * them, or the one `type` needs (nothing for the other types).  Returns 0
 * or -ENOMEM. */
int quantize_init(void);
int quantize_init_type(int type);

size_t quantize_q4_0(const float *src, void *dst, int64_t nrow, int64_t n_per_row, const float *imatrix);
size_t quantize_q4_1(const float *src, void *dst, int64_t nrow, int64_t n_per_row, const float *imatrix);
size_t quantize_q5_0(const float *src, void *dst, int64_t nrow, int64_t n_per_row, const float *imatrix);
size_t quantize_q5_1(const float *src, void *dst, int64_t nrow, int64_t n_per_row, const float *imatrix);
size_t quantize_q8_0(const float *src, void *dst, int64_t nrow, int64_t n_per_row, const float *imatrix);
size_t quantize_q2_K(const float *src, void *dst, int64_t nrow, int64_t n_per_row, const float *imatrix);
size_t quantize_q3_K(const float *src, void *dst, int64_t nrow, int64_t n_per_row, const float *imatrix);
size_t quantize_q4_K(const float *src, void *dst, int64_t nrow, int64_t n_per_row, const float *imatrix);
size_t quantize_q5_K(const float *src, void *dst, int64_t nrow, int64_t n_per_row, const float *imatrix);
size_t quantize_q6_K(const float *src, void *dst, int64_t nrow, int64_t n_per_row, const float *imatrix);
size_t quantize_iq2_xxs(const float *src, void *dst, int64_t nrow, int64_t n_per_row, const float *imatrix);
size_t quantize_iq2_xs(const float *src, void *dst, int64_t nrow, int64_t n_per_row, const float *imatrix);
size_t quantize_iq2_s(const float *src, void *dst, int64_t nrow, int64_t n_per_row, const float *imatrix);
size_t quantize_iq3_xxs(const float *src, void *dst, int64_t nrow, int64_t n_per_row, const float *imatrix);
size_t quantize_iq3_s(const float *src, void *dst, int64_t nrow, int64_t n_per_row, const float *imatrix);
size_t quantize_iq1_s(const float *src, void *dst, int64_t nrow, int64_t n_per_row, const float *imatrix);
size_t quantize_iq1_m(const float *src, void *dst, int64_t nrow, int64_t n_per_row, const float *imatrix);
size_t quantize_iq4_nl(const float *src, void *dst, int64_t nrow, int64_t n_per_row, const float *imatrix);
size_t quantize_iq4_xs(const float *src, void *dst, int64_t nrow, int64_t n_per_row, const float *imatrix);

#endif
