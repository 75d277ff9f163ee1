/* blas.h - the F32 matrix products handed to OpenBLAS.
 *
 * Owns: OpenBLAS's setup (one thread per call: our pool splits the work, so
 * its own threads would only fight ours; its kernel choice where its CPU
 * detection fails) and a row-major GEMM/GEMV wrapper.  Used where the float
 * order is ours to choose (not where a product must follow the reference
 * engine's rounding).
 * Thread safety: blas_setup is idempotent and safe from any thread;
 * blas_gemm may run on several threads at once after it. */
#ifndef MS_BLAS_H
#define MS_BLAS_H

#include <stdbool.h>

/* Once per process, before any blas_gemm: OpenBLAS to one thread, and, when
 * its detection fell back to the generic SSE3 kernels ("Prescott", what
 * OpenBLAS 0.3.21 picks for CPU models newer than it) on a CPU with AVX-512
 * or AVX2 and OPENBLAS_CORETYPE unset, its SkylakeX or Haswell kernels. */
void blas_setup(void);

/* OpenBLAS's kernel family in use (e.g. "SkylakeX"); runs blas_setup first. */
const char *blas_core(void);

/* y (m x n, row stride ldy) = x (m x k, stride ldx) * B + beta * y, where B
 * is b^T for trans_b (b: n rows of k, stride ldb) or b (k rows of n) if
 * not.  m == 1 runs as a GEMV. */
void blas_gemm(int m, int n, int k, const float *x, int ldx, const float *b, int ldb, bool trans_b,
               float beta, float *y, int ldy);

#endif
