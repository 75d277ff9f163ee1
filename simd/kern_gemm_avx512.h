/* kern_gemm_avx512.h - internal: the AVX-512 Q4_K gemm
 * (simd/kern_gemm_avx512.c), called by kern_avx512.c's Q4_K mul_mat. */
#ifndef MS_KERN_GEMM_AVX512_H
#define MS_KERN_GEMM_AVX512_H

#include <stddef.h>
#include <stdint.h>

/* Q4_K mul_mat in the reference's gemm order (quant_dot_q4_K_x86 with
 * gemm), rows [row0, row1) with row1 - row0 a multiple of 16, all ncols
 * columns (the caller keeps ncols % 4 for the gemv order); worth its
 * transpose from KERN_GEMM_Q4K_MIN_COLS columns (bench_kernels). */
void kern_gemm_q4k_avx512(int64_t n, const void *w, size_t w_stride, int64_t row0, int64_t row1,
                          const void *a, size_t a_stride, int64_t ncols, float *out, size_t out_stride);
/* Q4_K products over the 16-row layout (repack_q4k.h) at w (w_stride: the
 * plain row bytes): rows [row0, row1), both multiples of 16; columns
 * [0, ngemm) in the gemm order above, the others each in its one-column
 * (gemv) order - bit for bit what the plain rows give. */
void kern_q4k_r16_avx512(int64_t n, const void *w, size_t w_stride, int64_t row0, int64_t row1,
                         const void *a, size_t a_stride, int64_t ncols, int64_t ngemm, float *out,
                         size_t out_stride);
#ifndef KERN_GEMM_Q4K_MIN_COLS /* a -D moves it for benchmarks */
#define KERN_GEMM_Q4K_MIN_COLS 8
#endif

#endif
