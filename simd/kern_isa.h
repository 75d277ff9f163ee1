/* kern_isa.h - internal: the per-ISA kernel tables (simd/kern_<isa>.c).
 * Each returns a filled table (entries it does not accelerate copied from
 * the scalar table).  Which exist depends on the target architecture (not
 * weak symbols: an archive member is never pulled in for a weak reference). */
#ifndef MS_KERN_ISA_H
#define MS_KERN_ISA_H

#include "kernels.h"

const kern_table *kern_table_scalar(void);
#if defined(__x86_64__)
#define KERN_HAVE_AVX2 1
const kern_table *kern_table_avx2(void);
#define KERN_HAVE_AVX512 1
const kern_table *kern_table_avx512(void);
/* Q4_K mul_mat in the reference's gemm order (quant_dot_q4_K_x86 with
 * gemm), rows [row0, row1) with row1 - row0 a multiple of 16, all ncols
 * columns (the caller keeps ncols % 4 for the gemv order); worth its
 * transpose from KERN_GEMM_Q4K_MIN_COLS columns (bench_kernels). */
void kern_gemm_q4k_avx512(int64_t n, const void *w, size_t w_stride, int64_t row0, int64_t row1,
                          const void *a, size_t a_stride, int64_t ncols, float *out, size_t out_stride);
#ifndef KERN_GEMM_Q4K_MIN_COLS /* a -D moves it for benchmarks */
#define KERN_GEMM_Q4K_MIN_COLS 8
#endif
#endif
#if defined(__aarch64__)
#define KERN_HAVE_NEON 1
const kern_table *kern_table_neon(void);
#endif

/* Generic mul_mat over a vec_dot: what ISA tables use for types they do not
 * specialise. */
void kern_mul_mat_generic(kern_vec_dot_fn dot, const quant_type_info *ti, int64_t n, const void *w,
                          size_t w_stride, int64_t row0, int64_t row1, const void *a,
                          size_t a_stride, int64_t ncols, float *out, size_t out_stride);

#endif
