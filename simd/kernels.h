/* kernels.h - the kernel table chosen once at run time.
 *
 * Owns: CPU detection (with the OS-support check), the MOESTREAM_SIMD
 * override (scalar|avx2|avx512|neon), and the table of hot kernels.
 * Kernels take plain pointers and sizes; they know nothing of models,
 * layers or experts, allocate nothing and start no threads.
 * Thread safety: kern_get() is safe to call from any thread after the first
 * call returns (the table is immutable once chosen). */
#ifndef MS_KERNELS_H
#define MS_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "quant.h"

/* The kernel signatures are the traits table's (quant.h), so a scalar
 * reference function drops into any table. */
/* *s = dot(weight row w, activation a in quant_info(type)->act_type). */
typedef quant_vec_dot_fn kern_vec_dot_fn;
/* Quantize an activation row (x, n floats) into dst of this act type. */
typedef quant_from_float_fn kern_quantize_fn;
/* For rows r in [row0,row1) of W (row r at w + r*w_stride) and activation
 * columns c in [0,ncols) (column c at a + c*a_stride, already quantized):
 * out[c*out_stride + r] = dot(row r, column c). */
typedef quant_mul_mat_fn kern_mul_mat_fn;
/* dst[0,n) = the weights of row src (n a multiple of the type's block),
 * bit-identical to quant_dequantize_row in every table. */
typedef quant_dequant_fn kern_dequant_fn;
/* y[i] += a * x[i] for i in [0,n), a product then a sum (never fused), so
 * every table gives the scalar loop's bits. */
typedef void (*kern_axpy_fn)(int64_t n, float a, const float *x, float *y);
/* vmath_softmax_exp and vmath_swiglu (vmath.h), bit for bit in every table:
 * the same per-lane fused operations, the same 16-wide sum tree. */
typedef double (*kern_softmax_exp_fn)(float *x, int64_t n, float max);
typedef void (*kern_swiglu_fn)(float *y, const float *x, const float *g, int64_t n);

typedef struct kern_table {
    const char *isa; /* "scalar", "avx2", "avx512", "neon" */
    kern_vec_dot_fn vec_dot[MS_TYPE_COUNT];
    kern_quantize_fn quantize[MS_TYPE_COUNT]; /* indexed by activation type */
    kern_mul_mat_fn mul_mat[MS_TYPE_COUNT];   /* indexed by weight type */
    /* As mul_mat, but every column with the bits mul_mat gives it alone
     * (types whose order depends on the column count, quant_order_by_cols);
     * NULL: callers run mul_mat one column at a time. */
    kern_mul_mat_fn mul_mat_cols1[MS_TYPE_COUNT];
    kern_dequant_fn dequant[MS_TYPE_COUNT];   /* indexed by weight type */
    /* Q4_K over its 16-row layout (repack_q4k.h), rows in whole groups: bit
     * for bit mul_mat[Q4_K] and mul_mat_cols1[Q4_K] on the plain rows; NULL
     * where the table has none (the layout is then never made). */
    kern_mul_mat_fn q4k_r16_mul_mat, q4k_r16_mul_mat_cols1;
    kern_axpy_fn axpy_f32;
    kern_softmax_exp_fn softmax_exp;
    kern_swiglu_fn swiglu;
} kern_table;

/* The table for this CPU (or MOESTREAM_SIMD); never NULL.  An override naming
 * an ISA this CPU lacks falls back to the best available and says so once on
 * stderr. */
const kern_table *kern_get(void);

/* The table for a named ISA, or NULL if not built in or not supported by this
 * CPU; for tests and benchmarks that compare ISAs in one process. */
const kern_table *kern_get_isa(const char *isa);

#endif
