/* matmul.h - weight x activations products on the thread pool.
 *
 * Owns: quantizing activation rows to the weight's activation type exactly
 * where the reference engine does (Q8_K before K/i-quants, Q8_0 before
 * Q8_0/Q4_0/IQ4_NL, F16/BF16 before F16/BF16, nothing before F32), splitting
 * rows across threads, and calling the dispatched kernel.  Knows nothing of
 * layers or experts beyond the mweight it is handed.
 * Thread safety: call from the pool owner only. */
#ifndef MS_MATMUL_H
#define MS_MATMUL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model.h"
#include "threadpool.h"

/* Bytes needed to hold n_tok activation rows of n floats quantized for a
 * weight of type `type`. */
size_t mm_act_bytes(int type, int64_t n, int n_tok);

/* Quantizes n_tok rows of x (row t at x + t*x_stride floats) for weight type
 * `type` into q (rows packed, mm_act_bytes/n_tok apart). */
void mm_quantize(tpool *tp, int type, const float *x, size_t x_stride, int64_t n, int n_tok, void *q);

/* y[t*y_stride + o] = dot(row o of matrix `mat` of w, activation row t),
 * rows o in [0, w->n_out), activations already quantized by mm_quantize. */
void mm_mul_q(tpool *tp, const mweight *w, int64_t mat, const void *q, int n_tok, float *y,
              size_t y_stride);

/* As mm_mul_q, but every column in the order the kernels give a lone
 * column (quant_order_by_cols), whatever n_tok is: column t's bits are
 * those of mm_mul_q with n_tok = 1.  Weights are still read once per call,
 * so decode rows of several sequences share them. */
void mm_mul_cols1_q(tpool *tp, const mweight *w, int64_t mat, const void *q, int n_tok, float *y,
                    size_t y_stride);

/* Quantize + multiply in one call; q is scratch of mm_act_bytes bytes. */
void mm_mul(tpool *tp, const mweight *w, int64_t mat, const float *x, size_t x_stride, int n_tok,
            float *y, size_t y_stride, void *q);

/* Same for raw weight bytes: a matrix of n_out rows of n_in elements at
 * `data` (used for experts handed over by the pager). */
void mm_mul_raw_q(tpool *tp, int type, const void *data, int64_t n_in, int64_t n_out,
                  const void *q, int n_tok, float *y, size_t y_stride);

/* Rows per claim when nth threads split n_out rows from a shared counter:
 * about eight claims per thread, a multiple of align (a power of two),
 * so the kernels' 4- and 16-row groups stay whole. */
long mm_claim_rows(long n_out, int nth, long align);
/* Rows [lo, hi) of an expert's product, on the calling thread: every
 * token in the order of a lone column (quant_order_by_cols), as the
 * reference multiplies experts, whoever computes the rows and in whatever
 * order.  repacked: data is in simd/repack.h's layout (same results).
 * Activation rows q_row bytes apart; lo and hi multiples of 16 (or hi =
 * the row count), so repacked row groups stay whole.  For callers that
 * split several experts' rows over the pool in one fork. */
void mm_expert_rows(int type, bool repacked, const void *data, int64_t n_in, const void *q, size_t q_row,
                    int n_tok, int64_t lo, int64_t hi, float *y, size_t y_stride);
#endif
