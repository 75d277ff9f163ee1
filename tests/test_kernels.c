/* test_kernels.c - every SIMD kernel of every ISA this CPU runs equals the
 * scalar reference bit for bit (the kernels keep the reference's integer
 * sums and its float order) on seeded random blocks, several row lengths,
 * and mul_mat over 1..9 columns and odd row ranges. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kernels.h"
#include "quant.h"

static const int TYPES[] = {MS_TYPE_Q4_K, MS_TYPE_Q5_K, MS_TYPE_Q6_K, MS_TYPE_IQ1_S,
                            MS_TYPE_IQ2_XXS, MS_TYPE_Q8_0, MS_TYPE_Q2_K, MS_TYPE_Q3_K,
                            MS_TYPE_IQ1_M, MS_TYPE_IQ4_XS, MS_TYPE_Q4_0, MS_TYPE_F16};

static void test_isa_equals_scalar(void **state)
{
    (void)state;
    const kern_table *ref = kern_get_isa("scalar");
    const char *isas[] = {"avx2", "avx512", "neon"};
    int tested = 0;
    uint64_t rng = 12345;
    for (int k = 0; k < 3; k++) {
        const kern_table *t = kern_get_isa(isas[k]);
        if (!t)
            continue;
        for (size_t ti = 0; ti < sizeof TYPES / sizeof TYPES[0]; ti++) {
            const int type = TYPES[ti];
            const quant_type_info *inf = quant_info(type);
            const int at = inf->act_type;
            const int64_t lens[] = {256, 512, 2048, 7168};
            for (int li = 0; li < 4; li++) {
                const int64_t n = lens[li];
                const int rows = 13, cols = 9;
                size_t wr = quant_row_bytes(type, n), ar = quant_row_bytes(at, n);
                uint8_t *w = malloc(wr * rows), *a = malloc(ar * cols);
                float *x = malloc((size_t)n * 4);
                quant_fill_random(type, w, (int64_t)(wr * rows / (size_t)inf->type_size), &rng, 1.0f);
                for (int c = 0; c < cols; c++) {
                    double prev = 0;
                    bool varied = false;
                    for (int64_t i = 0; i < n; i++) {
                        rng ^= rng << 13;
                        rng ^= rng >> 7;
                        rng ^= rng << 17;
                        x[i] = (float)((double)(rng >> 11) / 9007199254740992.0 * 4.0 - 2.0);
                        varied = varied || (i && x[i] != prev);
                        prev = x[i];
                    }
                    assert_true(varied); /* non-degenerate inputs */
                    ref->quantize[at](x, a + ar * (size_t)c, n);
                    /* the ISA's quantizer must agree byte for byte too */
                    uint8_t *a2 = malloc(ar);
                    t->quantize[at](x, a2, n);
                    assert_memory_equal(a2, a + ar * (size_t)c, ar);
                    free(a2);
                }
                for (int r = 0; r < rows; r++)
                    for (int c = 0; c < cols; c++) {
                        float s1, s2;
                        ref->vec_dot[type](n, &s1, w + wr * (size_t)r, a + ar * (size_t)c);
                        t->vec_dot[type](n, &s2, w + wr * (size_t)r, a + ar * (size_t)c);
                        if (memcmp(&s1, &s2, 4))
                            fail_msg("%s %s n=%lld row %d col %d: got %.9g want %.9g", isas[k],
                                     inf->name, (long long)n, r, c, (double)s2, (double)s1);
                    }
                float *o1 = calloc((size_t)rows * cols, 4), *o2 = calloc((size_t)rows * cols, 4);
                ref->mul_mat[type](n, w, wr, 3, 11, a, ar, cols, o1, rows);
                t->mul_mat[type](n, w, wr, 3, 11, a, ar, cols, o2, rows);
                assert_memory_equal(o1, o2, (size_t)rows * cols * 4);
                free(o1);
                free(o2);
                free(w);
                free(a);
                free(x);
                tested++;
            }
        }
        printf("MEASURE kernels %s: %zu types x 4 row lengths bit-exact with scalar\n", isas[k],
               sizeof TYPES / sizeof TYPES[0]);
    }
    printf("MEASURE kernels: %d (isa, type, length) combinations checked; selected isa %s\n",
           tested, kern_get()->isa);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_isa_equals_scalar),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
