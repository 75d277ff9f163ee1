/* neon_main.c - the NEON kernel table against the scalar reference, built
 * with the aarch64 cross compiler and run under qemu-aarch64 by
 * tests/neon_qemu.sh (twice: -cpu max with dotprod, -cpu cortex-a53 without).
 * No cmocka: prints one "ok"/"FAIL" line per check and exits non-zero on any
 * failure.  Same rules as tests/test_kernels.c: activation quantizers byte
 * for byte, every weight type's vec_dot and mul_mat (1..9 columns, odd row
 * ranges) bit for bit, on seeded random, non-degenerate inputs.  mul_mat is
 * compared with the scalar mul_mat of the same column count: for F32 and
 * Q4_K the reference's float order depends on it (quant_order_by_cols).
 * Dequant of every weight type bit for bit quant_dequantize_row (F16/BF16
 * on every bit pattern too), axpy_f32 bit for bit the unfused loop, softmax_exp
 * and swiglu bit for bit vmath's. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>

#include "kern_isa.h"
#include "quant.h"
#include "vmath.h"

#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1 << 20)
#endif

static uint64_t rng_next(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

static void fill_act(float *x, int64_t n, uint64_t *rng)
{
    float mag = 1.0f;
    for (int64_t i = 0; i < n; i++) {
        if (i % 32 == 0)
            mag = ldexpf(1.0f, (int)(rng_next(rng) % 9) - 4);
        x[i] = mag * ((float)(rng_next(rng) >> 40) / (float)(1 << 24) * 2.0f - 1.0f);
    }
}

static int fails, oks;

static void report(int ok, const char *what, const char *type, long long n, const char *detail)
{
    if (ok) {
        oks++;
        printf("ok   %s %s n=%lld\n", what, type, n);
    } else {
        fails++;
        printf("FAIL %s %s n=%lld: %s\n", what, type, n, detail);
    }
}

int main(void)
{
    const kern_table *ref = kern_table_scalar(), *t = kern_table_neon();
    const char *env = getenv("MOESTREAM_NEON_DOTPROD");
    const int dp = (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) && !(env && !strcmp(env, "0"));
    printf("neon kernels, dotprod %s\n", dp ? "on (SDOT path)" : "off (SMULL/SADALP path)");
    uint64_t rng = 2024;
    char msg[256];
    /* activation quantizers */
    const int acts[] = {MS_TYPE_Q8_K, MS_TYPE_Q8_0, MS_TYPE_Q8_1, MS_TYPE_F16, MS_TYPE_BF16};
    const int64_t nq = 2048;
    float *x = malloc((size_t)nq * 4);
    uint8_t *q1 = malloc((size_t)nq * 4), *q2 = malloc((size_t)nq * 4);
    for (int trial = 0; trial < 3; trial++) {
        fill_act(x, nq, &rng);
        if (trial == 1)
            for (int i = 0; i < 256; i++) {
                x[i] = 0.0f;
                x[256 + i] = i % 2 ? -3.0f : 3.0f;
            }
        if (trial == 2)
            for (int i = 0; i < 256; i++)
                x[i] = i == 0 ? 127.0f : (float)(i % 64) + 0.5f;
        for (size_t k = 0; k < sizeof acts / sizeof acts[0]; k++) {
            const size_t qb = quant_row_bytes(acts[k], nq);
            memset(q1, 0xAA, qb);
            memset(q2, 0x55, qb);
            ref->quantize[acts[k]](x, q1, nq);
            t->quantize[acts[k]](x, q2, nq);
            snprintf(msg, sizeof msg, "trial %d bytes differ", trial);
            report(!memcmp(q1, q2, qb), "quantize", quant_info(acts[k])->name, nq, msg);
        }
    }
    /* products */
    const int types[] = {MS_TYPE_F32, MS_TYPE_IQ1_S, MS_TYPE_IQ1_M, MS_TYPE_IQ2_XXS, MS_TYPE_Q4_K, MS_TYPE_Q5_K,
                         MS_TYPE_Q6_K,  MS_TYPE_Q8_0,  MS_TYPE_Q4_0,    MS_TYPE_IQ4_XS, MS_TYPE_Q2_K,
                         MS_TYPE_Q3_K};
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        const int type = types[ti];
        const quant_type_info *inf = quant_info(type);
        const int at = inf->act_type;
        const int64_t lens[] = {256, 1792, 7168};
        for (int li = 0; li < 3; li++) {
            const int64_t n = lens[li];
            const int rows = 11, cols = 9;
            const size_t wr = quant_row_bytes(type, n), ar = quant_row_bytes(at, n);
            uint8_t *w = malloc(wr * rows), *a = malloc(ar * cols);
            float *xa = malloc((size_t)n * 4), *want = malloc(rows * cols * 4), *got = malloc(rows * cols * 4);
            float *want_mm = malloc(rows * cols * 4);
            quant_fill_random(type, w, (int64_t)(wr * rows / (size_t)inf->type_size), &rng, 1.0f);
            for (int c = 0; c < cols; c++) {
                fill_act(xa, n, &rng);
                ref->quantize[at](xa, a + ar * (size_t)c, n);
            }
            int bad = 0, distinct = 0;
            for (int r = 0; r < rows; r++)
                for (int c = 0; c < cols; c++) {
                    float s1, s2;
                    ref->vec_dot[type](n, &s1, w + wr * r, a + ar * c);
                    t->vec_dot[type](n, &s2, w + wr * r, a + ar * c);
                    want[c * rows + r] = s1;
                    distinct += s1 != want[0];
                    if (memcmp(&s1, &s2, 4) && !bad++)
                        snprintf(msg, sizeof msg, "vec_dot row %d col %d got %.9g want %.9g", r, c, (double)s2, (double)s1);
                }
            if (!distinct && !bad++)
                snprintf(msg, sizeof msg, "degenerate inputs: all products equal");
            for (int nc = 1; nc <= cols && !bad; nc++) {
                const int r0 = nc % 3, r1 = rows - nc % 2;
                for (int i = 0; i < rows * cols; i++)
                    got[i] = want_mm[i] = NAN;
                t->mul_mat[type](n, w, wr, r0, r1, a, ar, nc, got, rows);
                ref->mul_mat[type](n, w, wr, r0, r1, a, ar, nc, want_mm, rows);
                for (int c = 0; c < cols; c++)
                    for (int r = 0; r < rows; r++) {
                        const int in = c < nc && r >= r0 && r < r1;
                        const float g = got[c * rows + r], wv = want_mm[c * rows + r];
                        if (in && (nc == 1 || !quant_order_by_cols(type)) && memcmp(&wv, &want[c * rows + r], 4) &&
                            !bad++)
                            snprintf(msg, sizeof msg, "scalar mul_mat(%d cols) != scalar vec_dot at row %d col %d", nc, r, c);
                        if ((in ? memcmp(&g, &wv, 4) != 0 : !isnan(g)) && !bad++)
                            snprintf(msg, sizeof msg, "mul_mat %d cols rows [%d,%d): row %d col %d got %.9g want %.9g",
                                     nc, r0, r1, r, c, (double)g, (double)wv);
                    }
            }
            report(!bad, "vec_dot+mul_mat", inf->name, n, msg);
            free(w);
            free(a);
            free(xa);
            free(want);
            free(want_mm);
            free(got);
        }
    }
    /* dequant: every weight type against quant_dequantize_row, bit for bit,
     * nothing written past the row; F16/BF16 also on every bit pattern
     * (subnormals, infinities, quiet and signaling NaNs) */
    const int dtypes[] = {MS_TYPE_F32,  MS_TYPE_F16,    MS_TYPE_BF16,   MS_TYPE_Q4_0,    MS_TYPE_Q4_1,
                          MS_TYPE_Q5_0, MS_TYPE_Q5_1,   MS_TYPE_Q8_0,   MS_TYPE_Q2_K,    MS_TYPE_Q3_K,
                          MS_TYPE_Q4_K, MS_TYPE_Q5_K,   MS_TYPE_Q6_K,   MS_TYPE_IQ2_XXS, MS_TYPE_IQ2_XS,
                          MS_TYPE_IQ2_S, MS_TYPE_IQ3_XXS, MS_TYPE_IQ3_S, MS_TYPE_IQ1_S,  MS_TYPE_IQ1_M,
                          MS_TYPE_IQ4_NL, MS_TYPE_IQ4_XS};
    uint16_t *all = malloc(65536 * 2);
    for (int i = 0; i < 65536; i++)
        all[i] = (uint16_t)i;
    for (size_t ti = 0; ti < sizeof dtypes / sizeof dtypes[0]; ti++) {
        const int type = dtypes[ti];
        const quant_type_info *inf = quant_info(type);
        const int64_t lens[] = {inf->blck == 1 ? 17 : inf->blck, inf->blck == 1 ? 515 : 4 * inf->blck, 7168,
                                65536};
        for (int li = 0; li < 4; li++) {
            const int64_t n = lens[li];
            const int exhaustive = n == 65536;
            if (exhaustive && type != MS_TYPE_F16 && type != MS_TYPE_BF16)
                continue;
            const int rows = exhaustive ? 1 : 5;
            const size_t wr = quant_row_bytes(type, n);
            uint8_t *w = exhaustive ? (uint8_t *)all : malloc(wr * rows);
            float *want = malloc((size_t)(n + 16) * 4), *got = malloc((size_t)(n + 16) * 4);
            if (!exhaustive)
                quant_fill_random(type, w, (int64_t)(wr * rows / (size_t)inf->type_size), &rng, 1.0f);
            int bad = 0, distinct = 0;
            for (int r = 0; r < rows && !bad; r++) {
                for (int64_t i = 0; i < n + 16; i++)
                    got[i] = want[i] = NAN;
                quant_dequantize_row(type, w + wr * r, want, n);
                t->dequant[type](w + wr * r, got, n);
                for (int64_t i = 1; i < n; i++)
                    distinct += want[i] != want[i - 1];
                for (int64_t i = 0; i < n + 16 && !bad; i++)
                    if (memcmp(&got[i], &want[i], 4) && !bad++)
                        snprintf(msg, sizeof msg, "row %d [%lld]%s got %.9g want %.9g", r, (long long)i,
                                 i >= n ? " (past the row)" : "", (double)got[i], (double)want[i]);
            }
            if (!bad && distinct < n / 4 && !bad++)
                snprintf(msg, sizeof msg, "degenerate inputs: %d distinct neighbours", distinct);
            report(!bad, exhaustive ? "dequant (every bit pattern)" : "dequant", inf->name, n, msg);
            if (!exhaustive)
                free(w);
            free(want);
            free(got);
        }
    }
    free(all);
    /* axpy_f32: the unfused scalar loop, bit for bit, across the tails */
    const int64_t alens[] = {1, 15, 16, 17, 515};
    for (size_t li = 0; li < sizeof alens / sizeof alens[0]; li++) {
        const int64_t n = alens[li];
        float *xa = malloc((size_t)n * 4), *y0 = malloc((size_t)n * 4), *want = malloc((size_t)n * 4),
              *got = malloc((size_t)n * 4), a[1];
        fill_act(xa, n, &rng);
        fill_act(y0, n, &rng);
        fill_act(a, 1, &rng);
        for (int64_t i = 0; i < n; i++) {
            const volatile float p = a[0] * xa[i];
            want[i] = y0[i] + p;
        }
        memcpy(got, y0, (size_t)n * 4);
        t->axpy_f32(n, a[0], xa, got);
        int bad = 0;
        for (int64_t i = 0; i < n && !bad; i++)
            if (memcmp(&got[i], &want[i], 4) && !bad++)
                snprintf(msg, sizeof msg, "[%lld] got %.9g want %.9g", (long long)i, (double)got[i],
                         (double)want[i]);
        report(!bad, "axpy_f32", "F32", n, msg);
        free(xa);
        free(y0);
        free(want);
        free(got);
    }
    /* softmax_exp and swiglu: vmath's bits, sums included, across the
     * tails and every branch of its exp */
    static const float edge[] = {-INFINITY, -1e30f, -200.0f, -150.0f, -104.0f, -103.5f, -100.0f, -95.0f,
                                 -88.0f,    -87.4f, -20.0f,  -0.0f,   0.0f,    1e-30f,  0.5f,    20.0f,
                                 88.5f,     88.8f,  89.0f,   100.0f,  150.0f,  1e30f};
    const int64_t slens[] = {1, 3, 4, 5, 15, 16, 17, 33, 1000};
    for (int rep = 0; rep < 8; rep++)
        for (size_t li = 0; li < sizeof slens / sizeof slens[0]; li++) {
            const int64_t n = slens[li];
            float *xs = malloc((size_t)n * 4), *gs = malloc((size_t)n * 4), *want = malloc((size_t)n * 4),
                  *got = malloc((size_t)n * 4);
            fill_act(xs, n, &rng);
            fill_act(gs, n, &rng);
            float mx = -INFINITY;
            for (int64_t i = 0; i < n; i++) {
                xs[i] *= 60.0f;
                if (rng_next(&rng) % 4 == 0)
                    xs[i] = edge[rng_next(&rng) % (sizeof edge / sizeof edge[0])];
                mx = xs[i] > mx ? xs[i] : mx;
            }
            const float m = rep % 2 || !isfinite(mx) ? mx : mx - 150.0f;
            memcpy(want, xs, (size_t)n * 4);
            memcpy(got, xs, (size_t)n * 4);
            const double ws = vmath_softmax_exp(want, n, m), gsum = t->softmax_exp(got, n, m);
            int bad = memcmp(&ws, &gsum, sizeof ws) != 0;
            snprintf(msg, sizeof msg, "sum %.17g want %.17g", gsum, ws);
            for (int64_t i = 0; i < n && !bad; i++)
                if (memcmp(&got[i], &want[i], 4) && !bad++)
                    snprintf(msg, sizeof msg, "[%lld] got %.9g want %.9g", (long long)i, (double)got[i],
                             (double)want[i]);
            report(!bad, "softmax_exp", "F32", n, msg);
            vmath_swiglu(want, xs, gs, n);
            t->swiglu(got, xs, gs, n);
            bad = 0;
            for (int64_t i = 0; i < n && !bad; i++)
                if (memcmp(&got[i], &want[i], 4) && !(isnan(got[i]) && isnan(want[i])) && !bad++)
                    snprintf(msg, sizeof msg, "[%lld] x=%.9g got %.9g want %.9g", (long long)i, (double)xs[i],
                             (double)got[i], (double)want[i]);
            report(!bad, "swiglu", "F32", n, msg);
            free(xs);
            free(gs);
            free(want);
            free(got);
        }
    free(x);
    free(q1);
    free(q2);
    printf("%d ok, %d FAIL (dotprod %s)\n", oks, fails, dp ? "on" : "off");
    return fails ? 1 : 0;
}
