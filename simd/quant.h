/* quant.h - tensor types: the one table of block formats, and the scalar
 * reference for dequantization, activation quantization and dot products.
 *
 * Owns: the type ids (equal to ggml's, so GGUF files map 1:1), per-type block
 * geometry, and the scalar reference kernels.  The scalar versions are the
 * specification every SIMD kernel (simd/kern_*.c) is tested against; they are
 * kept forever and selectable at run time (MOESTREAM_SIMD=scalar).
 * Does not own: SIMD kernels or dispatch (simd/kernels.h).
 * Thread safety: every function here is pure and reentrant. */
#ifndef MS_QUANT_H
#define MS_QUANT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum ms_type {
    MS_TYPE_F32 = 0,
    MS_TYPE_F16 = 1,
    MS_TYPE_Q4_0 = 2,
    MS_TYPE_Q4_1 = 3,
    MS_TYPE_Q5_0 = 6,
    MS_TYPE_Q5_1 = 7,
    MS_TYPE_Q8_0 = 8,
    MS_TYPE_Q8_1 = 9, /* activation format for Q4_1/Q5_1 */
    MS_TYPE_Q2_K = 10,
    MS_TYPE_Q3_K = 11,
    MS_TYPE_Q4_K = 12,
    MS_TYPE_Q5_K = 13,
    MS_TYPE_Q6_K = 14,
    MS_TYPE_Q8_K = 15, /* activation format only, never in a model file */
    MS_TYPE_IQ2_XXS = 16,
    MS_TYPE_IQ2_XS = 17,
    MS_TYPE_IQ3_XXS = 18,
    MS_TYPE_IQ1_S = 19,
    MS_TYPE_IQ4_NL = 20,
    MS_TYPE_IQ3_S = 21,
    MS_TYPE_IQ2_S = 22,
    MS_TYPE_IQ4_XS = 23,
    MS_TYPE_IQ1_M = 29,
    MS_TYPE_BF16 = 30,
    MS_TYPE_COUNT = 40 /* array bound for per-type tables */
};

/* ---- the traits table (simd/quant_traits.c) ----
 * One row per type: geometry from the block structs of quant_blocks.h
 * (sizeof, never a literal), the activation type, and the scalar reference
 * functions.  The scalar kernel table (simd/kern_scalar.c) is made from these
 * columns; the GGUF reader, the writer and model binding take sizes from it. */

/* *s = dot(weight row w of the row's type, activation a already in that
 * type's act_type), n elements (a multiple of the block size). */
typedef void (*quant_vec_dot_fn)(int64_t n, float *s, const void *w, const void *a);
/* dst[0,n) = the values of the n elements at src (n a block multiple). */
typedef void (*quant_dequant_fn)(const void *src, float *dst, int64_t n);
/* Quantize an activation row x of n floats into dst, in this type. */
typedef void (*quant_from_float_fn)(const float *x, void *dst, int64_t n);
/* Quantize weights: nrows rows of n_per_row floats (src, row-major) into dst
 * (nrows * quant_row_bytes(type, n_per_row) bytes).  imatrix: n_per_row
 * importances weighting each column's squared error, or NULL for none.
 * Returns the bytes written.  (The reference's quantize_<type>.) */
typedef size_t (*quant_quantize_fn)(const float *src, void *dst, int64_t nrows, int64_t n_per_row,
                                    const float *imatrix);

typedef struct quant_type_info {
    const char *name; /* "Q4_K", as ggml prints it */
    int blck;         /* elements per block (1 for F32/F16/BF16) */
    int type_size;    /* bytes per block: sizeof the block struct */
    int act_type;     /* what an activation row is quantized to before a dot
                         with a weight row of this type (ggml's vec_dot_type) */
    bool in_files;    /* may appear as a tensor type in a GGUF (not Q8_K) */
    /* Weight-side quantization from float (moestream quantize); NULL where
     * not written yet.  Never on the hot path. */
    quant_quantize_fn quantize_row;
} quant_type_info;

/* The traits of `type`, or NULL if the type is unknown/unsupported. */
const quant_type_info *quant_info(int type);

/* Bytes of a row of n elements; 0 if type unknown or n not a multiple of
 * the block size (callers validate before). */
size_t quant_row_bytes(int type, int64_t n);

/* Scalar reference: dequantize n elements (a multiple of the block size) of
 * `type` (weight types and the Q8_K/Q8_0 activation formats) from src to
 * dst.  Returns 0, or -ENOTSUP for an unknown type. */
int quant_dequantize_row(int type, const void *src, float *dst, int64_t n);

/* Scalar reference: quantize an activation row of n floats to act_type
 * (MS_TYPE_Q8_K, MS_TYPE_Q8_0, MS_TYPE_Q8_1, MS_TYPE_F16, MS_TYPE_BF16, or
 * MS_TYPE_F32 = plain copy) with the reference engine's x86 rounding (DEEPSEEK-FACTS 5.3). */
void quant_quantize_row(int act_type, const float *x, void *dst, int64_t n);

/* Scalar reference dot product: *s = dot(weight row w of `type`, activation a
 * already quantized to quant_info(type)->act_type), n elements. */
void quant_vec_dot_ref(int type, int64_t n, float *s, const void *w, const void *a);

/* Q4_K x Q8_K in the reference's repacked-kernel order: gemm for columns
 * that come in groups of four, gemv (the vec_dot order) otherwise. */
float quant_dot_q4_K_x86(int64_t n, const void *w, const void *a, bool gemm);
float quant_dot_q2_K_x86(int64_t n, const void *w, const void *a, bool gemm);

/* Whether the reference's float order for this weight type depends on how
 * many activation columns one product takes (F32/F16/BF16: tinyBLAS for
 * two or more; Q4_K/Q2_K: repacked gemm for columns in fours).  Kernels' mul_mat
 * follow it; a product that must match a lone column calls with ncols 1. */
bool quant_order_by_cols(int type);

/* The sum of 16 floats in the order GCC's _mm512_reduce_add_ps adds them
 * (the reference's 16-lane reductions); for the kernels of every ISA. */
float quant_reduce16_x86(const float v[16]);

/* F32 dot in the reference's order: tinyBLAS's (one 16-lane FMA
 * accumulator) when tiny_blas and n % 16 == 0 - it multiplies two or more
 * columns that way - else ggml_vec_dot_f32's AVX-512 order. */
float quant_dot_f32_x86(int64_t n, const float *x, const float *y, bool tiny_blas);

/* F16 / BF16 weights x activations of the same type, in the reference's
 * order (tinyBLAS when tiny_blas, else its AVX-512 vec_dot; see the
 * definitions for which CPU features those assume). */
float quant_dot_f16_x86(int64_t n, const void *w, const void *a, bool tiny_blas);
float quant_dot_bf16_x86(int64_t n, const void *w, const void *a, bool tiny_blas);

/* F32 weights x F32 activations for ncols >= 2 with n % 16 == 0, in the
 * reference's tinyBLAS order: one 16-lane FMA accumulator per output, then
 * quant_reduce16_x86.  Other shapes take quant_vec_dot_ref per column. */
void quant_mul_mat_f32_ref(int64_t n, const float *w, size_t w_stride, int64_t row0, int64_t row1,
                           const float *a, size_t a_stride, int64_t ncols, float *out,
                           size_t out_stride);

/* Fill nblocks blocks of `type` with random but valid content (finite
 * scales of roughly `scale` magnitude) from a xorshift state; for synthetic
 * models and tests. */
void quant_fill_random(int type, void *dst, int64_t nblocks, uint64_t *rng, float scale);

/* IEEE half / bfloat16 conversions (round to nearest even, like ggml). */
float quant_f16_to_f32(uint16_t h);
uint16_t quant_f32_to_f16(float f);
float quant_bf16_to_f32(uint16_t h);
uint16_t quant_f32_to_bf16(float f);

#endif
