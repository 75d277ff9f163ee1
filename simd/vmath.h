/* vmath.h - the elementwise transcendental functions of the forward pass,
 * computed the way the reference engine's vector code computes them.
 *
 * Why: the tiny golden models are chaotic; the reference evaluates exp in
 * SiLU and softmax with a polynomial approximation (max error ~1.5 ulp), not
 * libm's expf.  A 1-ulp difference in an activation flips a Q8_K rounding
 * now and then, and downstream an expert choice.  Evaluating the same
 * polynomial with the same fused operations reproduces its values exactly.
 * Owns: vmath_* only.  Pure functions, thread-safe. */
#ifndef MS_VMATH_H
#define MS_VMATH_H

#include <stdint.h>

/* exp(x): range reduction x = n*ln2 + b, degree-5 polynomial, scale by 2^n
 * (the ARM optimized-routines algorithm as vectorized by the reference). */
float vmath_expf(float x);
/* x / (1 + exp(-x)) with vmath_expf. */
float vmath_silu(float x);
/* y[i] = silu(x[i]) * g[i] for i < n (x == y allowed). */
void vmath_swiglu(float *y, const float *x, const float *g, int64_t n);
/* Softmax of x[0..n) in place given its max; returns the sum of the
 * exponentials accumulated as the reference does (per 16-wide chunk in a
 * float tree, chunks in double). */
double vmath_softmax_exp(float *x, int64_t n, float max);

#endif
