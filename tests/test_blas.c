/* test_blas.c - the OpenBLAS wrapper: blas_gemm equals a double-precision
 * product for every form it serves (GEMV for one row, GEMM otherwise, b
 * transposed or not, beta 0 and 1, strided views as the attention passes
 * them), on seeded random non-degenerate data; blas_setup leaves OpenBLAS
 * on a SIMD kernel family where this CPU has one (not the SSE3 fallback). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cmocka.h>

#include "blas.h"
#include "kernels.h"

/* float sums of up to 600 products of values in [-1, 1): relative to the
 * sum of |products|, reordering costs at most a few ulps per term */
#define GEMM_TOL 1e-5

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static float frand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((double)(rng >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

static void check_form(int m, int n, int k, bool trans_b, float beta)
{
    const int ldx = k + 3, ldb = (trans_b ? k : n) + 5, ldy = n + 7;
    const int brows = trans_b ? n : k;
    float *x = malloc(sizeof(float) * (size_t)m * ldx), *b = malloc(sizeof(float) * (size_t)brows * ldb);
    float *y = malloc(sizeof(float) * (size_t)m * ldy), *y0 = malloc(sizeof(float) * (size_t)m * ldy);
    assert_non_null(x);
    assert_non_null(b);
    assert_non_null(y);
    assert_non_null(y0);
    for (int i = 0; i < m * ldx; i++)
        x[i] = frand();
    for (int i = 0; i < brows * ldb; i++)
        b[i] = frand();
    for (int i = 0; i < m * ldy; i++)
        y0[i] = y[i] = frand();
    assert_true(x[0] != x[1] && b[0] != b[1]);
    blas_gemm(m, n, k, x, ldx, b, ldb, trans_b, beta, y, ldy);
    double worst = 0;
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            double want = beta * (double)y0[(size_t)i * ldy + j], mag = fabs(want);
            for (int l = 0; l < k; l++) {
                double p = (double)x[(size_t)i * ldx + l] *
                           (double)(trans_b ? b[(size_t)j * ldb + l] : b[(size_t)l * ldb + j]);
                want += p;
                mag += fabs(p);
            }
            double d = fabs(y[(size_t)i * ldy + j] - want) / mag;
            if (d > worst)
                worst = d;
            if (d > GEMM_TOL)
                fail_msg("m=%d n=%d k=%d trans_b=%d beta=%g: y[%d][%d] got %.9g want %.9g", m, n, k, trans_b,
                         beta, i, j, y[(size_t)i * ldy + j], want);
        }
    /* the padding between rows is not written */
    for (int i = 0; i < m; i++)
        for (int j = n; j < ldy; j++)
            assert_true(y[(size_t)i * ldy + j] == y0[(size_t)i * ldy + j]);
    printf("MEASURE blas m=%d n=%d k=%d trans_b=%d beta=%g: max rel err %.2e\n", m, n, k, trans_b, beta, worst);
    free(x);
    free(b);
    free(y);
    free(y0);
}

static void test_gemm_forms(void **state)
{
    (void)state;
    blas_setup();
    /* the attention's shapes: q~ (n x 512 from 128), scores (n x np from
     * 512, b^T, then += from 64), obar (n x 512 from np), o (n x 128 from 512, b^T) */
    const int ms[] = {1, 2, 7, 64};
    for (size_t i = 0; i < sizeof ms / sizeof ms[0]; i++) {
        check_form(ms[i], 512, 128, false, 0.0f);
        check_form(ms[i], 80, 512, true, 0.0f);
        check_form(ms[i], 80, 64, true, 1.0f);
        check_form(ms[i], 512, 80, false, 0.0f);
        check_form(ms[i], 128, 512, true, 0.0f);
        check_form(ms[i], 3, 5, false, 1.0f);
    }
}

static void test_setup_core(void **state)
{
    (void)state;
    blas_setup();
    blas_setup(); /* idempotent */
    const char *core = blas_core();
    printf("MEASURE blas core %s (OPENBLAS_CORETYPE %s)\n", core,
           getenv("OPENBLAS_CORETYPE") ? getenv("OPENBLAS_CORETYPE") : "unset");
    if (!kern_get_isa("avx2"))
        skip(); /* no SIMD family to insist on */
    assert_true(strcasecmp(core, "prescott") != 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_setup_core),
        cmocka_unit_test(test_gemm_forms),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
