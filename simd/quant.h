/* quant.h - tensor types: the one traits table of block formats, and the
 * scalar reference for dequantization, activation quantization and dot
 * products.
 *
 * Owns: the type ids (equal to ggml's, so GGUF files map 1:1), per-type block
 * geometry and functions (quant_traits.c), the scalar reference kernels
 * (quant_ref.c, reached through the table's columns).  The scalar versions are the
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

/* ---- moestream-private types (never in a reference file) ----
 * Routed-expert stacks (ffn_{gate,up,down}_exps) that `moestream repack`
 * stored in the repacked 16-row layout of simd/repack.h, one id per plain
 * type with a layout.  Ids start at 1000, far from ggml's, so the reference
 * refuses such a file as an unknown type instead of misreading it.  A file
 * with any of them carries MS_REPACK_KEY (uint32) = MS_REPACK_VERSION, the
 * layout's version; gguf.c refuses other versions.  quant_info gives their
 * geometry (block = one row's 256 elements, type_size = that row's share of
 * a 16-row group) and no functions: model binding maps them to (plain type,
 * repacked) before any kernel sees a type.  Every stored matrix has a
 * multiple of 16 rows, so the bytes are blocks x type_size exactly. */
enum ms_private_type {
    MS_TYPE_IQ1_S_R16 = 1000,
    MS_TYPE_IQ1_M_R16 = 1001,
    MS_TYPE_IQ2_XXS_R16 = 1002,
    MS_TYPE_PRIVATE_END /* one past the last private id */
};
#define MS_TYPE_PRIVATE_BASE 1000
#define MS_REPACK_KEY "moestream.repack.version"
/* 1: the geometry of repack.c as of issue 17 (IQ1_S r16t5, IQ1_M, IQ2_XXS) */
#define MS_REPACK_VERSION 1u

/* The plain type a private type stores repacked, or -1 if `type` is not
 * private. */
int quant_private_plain(int type);
/* The private type storing `plain` repacked, or -1 if it has none. */
int quant_private_of(int plain);

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
/* For rows r in [row0,row1) of W (row r at w + r*w_stride) and activation
 * columns c in [0,ncols) (column c at a + c*a_stride, already quantized):
 * out[c*out_stride + r] = dot(row r, column c). */
typedef void (*quant_mul_mat_fn)(int64_t n, const void *w, size_t w_stride, int64_t row0,
                                 int64_t row1, const void *a, size_t a_stride, int64_t ncols,
                                 float *out, size_t out_stride);
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
    /* The scalar reference (quant_ref.c), the specification every SIMD
     * kernel is tested against: */
    quant_vec_dot_fn vec_dot;       /* weight types (in_files); else NULL */
    quant_dequant_fn dequant;       /* every type */
    quant_from_float_fn from_float; /* types that are some type's act_type; else NULL */
    /* Products whose float order depends on how many columns one call
     * takes (quant_order_by_cols); NULL: vec_dot per column. */
    quant_mul_mat_fn mul_mat;
    /* Weight-side quantization from float (simd/quantize.c, moestream
     * quantize); NULL for types it does not produce.  Never on the hot path. */
    quant_quantize_fn quantize_row;
} quant_type_info;

/* The traits of `type`, or NULL if the type is unknown/unsupported. */
const quant_type_info *quant_info(int type);

/* Bytes of a row of n elements; 0 if type unknown or n not a multiple of
 * the block size (callers validate before). */
size_t quant_row_bytes(int type, int64_t n);

/* ---- the columns by type id (quant_traits.c), for callers holding a type ---- */

/* Scalar reference: dequantize n elements (a multiple of the block size) of
 * `type` (weight types and the Q8_K/Q8_0 activation formats) from src to
 * dst.  Returns 0, or -ENOTSUP for an unknown type. */
int quant_dequantize_row(int type, const void *src, float *dst, int64_t n);

/* Scalar reference: quantize an activation row of n floats to act_type
 * (MS_TYPE_Q8_K, MS_TYPE_Q8_0, MS_TYPE_Q8_1, MS_TYPE_F16, MS_TYPE_BF16, or
 * MS_TYPE_F32 = plain copy) with the reference engine's x86 rounding (DEEPSEEK-FACTS 5.3). */
void quant_quantize_row(int act_type, const float *x, void *dst, int64_t n);

/* Scalar reference dot product: *s = dot(weight row w of `type`, activation a
 * already quantized to quant_info(type)->act_type), n elements; NaN for a
 * type without a vec_dot (callers validated the type). */
void quant_vec_dot_ref(int type, int64_t n, float *s, const void *w, const void *a);

/* Whether the reference's float order for this weight type depends on how
 * many activation columns one product takes (F32/F16/BF16: tinyBLAS for
 * two or more; Q4_K/Q2_K: repacked gemm for columns in fours).  Kernels' mul_mat
 * follow it; a product that must match a lone column calls with ncols 1. */
bool quant_order_by_cols(int type); /* quant_info(type)->mul_mat != NULL */

/* ---- the reference's x86 float orders and conversions (quant_ref.c) ---- */

/* Q4_K x Q8_K in the reference's repacked-kernel order: gemm for columns
 * that come in groups of four, gemv (the vec_dot order) otherwise. */
float quant_dot_q4_K_x86(int64_t n, const void *w, const void *a, bool gemm);
float quant_dot_q2_K_x86(int64_t n, const void *w, const void *a, bool gemm);

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

/* IEEE half / bfloat16 conversions (round to nearest even, like ggml). */
float quant_f16_to_f32(uint16_t h);
uint16_t quant_f32_to_f16(float f);
float quant_bf16_to_f32(uint16_t h);
uint16_t quant_f32_to_bf16(float f);

/* ---- random valid blocks (quant_random.c) ---- */

/* Fill nblocks blocks of `type` with random but valid content (finite
 * scales of roughly `scale` magnitude) from a xorshift state; for synthetic
 * models and tests. */
void quant_fill_random(int type, void *dst, int64_t nblocks, uint64_t *rng, float scale);

#endif
