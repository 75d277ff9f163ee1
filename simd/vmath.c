/* vmath.c - see vmath.h.  Every multiply-add below is an explicit fmaf, as
 * the reference's _mm512_fmadd_ps; the build uses -ffp-contract=off so the
 * compiler adds no others. */
#include "vmath.h"

#include <math.h>

float vmath_expf(float x)
{
    const float r = 0x1.8p23f;
    const float z = fmaf(x, 0x1.715476p+0f, r);
    const float n = z - r;
    const float b = fmaf(-n, 0x1.7f7d1cp-20f, fmaf(-n, 0x1.62e4p-1f, x));
    const float u = b * b;
    const float j = fmaf(fmaf(fmaf(0x1.0e4020p-7f, b, 0x1.573e2ep-5f), u,
                              fmaf(0x1.555e66p-3f, b, 0x1.fffdb6p-2f)),
                         u, fmaf(0x1.ffffecp-1f, b, 1.0f));
    if (fabsf(n) > 192.0f)
        return n <= 0.0f ? 0.0f : INFINITY;
    return ldexpf(j, (int)n);
}

float vmath_silu(float x)
{
    return x / (1.0f + vmath_expf(0.0f - x));
}

void vmath_swiglu(float *y, const float *x, const float *g, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        y[i] = vmath_silu(x[i]) * g[i];
}

double vmath_softmax_exp(float *x, int64_t n, float max)
{
    double sum = 0.0;
    for (int64_t i = 0; i < n; i += 16) {
        float v[16];
        for (int k = 0; k < 16; k++) {
            v[k] = i + k < n ? vmath_expf(x[i + k] - max) : 0.0f;
            if (i + k < n)
                x[i + k] = v[k];
        }
        /* the reduction tree of _mm512_reduce_add_ps: halves, then pairs */
        for (int w = 8; w >= 1; w /= 2)
            for (int k = 0; k < w; k++)
                v[k] = v[k] + v[k + w];
        sum += (double)v[0];
    }
    return sum;
}
