/* quantize.h - weight quantization from float rows (simd/quantize.c).
 *
 * Every quantize_<type>() takes nrow rows of n_per_row floats (a multiple of
 * the type's block size) at src and writes nrow rows of
 * quant_row_bytes(type, n_per_row) bytes at dst; imatrix, when not NULL,
 * holds n_per_row importance weights (one per column, shared by the rows).
 * Returns the bytes written.  Output is bit for bit the reference
 * quantizer's for the same input.  The i-quants (IQ1_*, IQ2_*, IQ3_*) need
 * quantize_init() to have returned 0; IQ1_S, IQ1_M, IQ2_XXS, IQ2_XS (and the
 * reference's Q2_K below 3 bits does not) need imatrix (quantize_needs_imatrix).
 * Thread safety: reentrant after quantize_init(). */
#ifndef MS_QUANTIZE_H
#define MS_QUANTIZE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Builds the i-quant search tables once (thread-safe, idempotent).
 * Returns 0 or -ENOMEM. */
int quantize_init(void);

/* Whether `type` is a weight type this quantizer can produce. */
bool quantize_supported(int type);

/* Whether the reference refuses to produce `type` without an importance
 * matrix (ggml_quantize_requires_imatrix). */
bool quantize_needs_imatrix(int type);

/* Quantize rows to `type` (see above).  Returns the bytes written, or 0 for
 * an unsupported type. F32/F16/BF16 are plain conversions. */
size_t quantize_chunk(int type, const float *src, void *dst, int64_t nrow, int64_t n_per_row,
                      const float *imatrix);

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
