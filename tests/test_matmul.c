/* test_matmul.c - row-parallel products (src/matmul.h).
 *
 * - mm_mul_q / mm_mul_raw_q / mm_mul: the same bits whatever the thread
 *   count, and the same as one call per column for the types whose column
 *   order does not depend on the count;
 * - mm_mul_cols1_q and mm_expert_rows (16-row chunks, last first, as
 *   another thread might claim them): every column bit for bit what it is
 *   alone (n_tok = 1), for every type, 2..9 columns.  For the types whose
 *   order does depend on the count (quant_order_by_cols), a plain mm_mul_q
 *   of four columns must differ somewhere from the lone-column bits, or the
 *   comparison above would prove nothing;
 * - Q4_K in its 16-row layout (simd/repack_q4k.h, mweight.r16): every
 *   product bit for bit the plain rows', 1..70 columns (past the kernel's
 *   64-column pass), both orders, 1 and 2 threads; the conversion is exact
 *   both ways. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kernels.h"
#include "matmul.h"
#include "repack_q4k.h"
#include "quant.h"
#include "threadpool.h"

#define N_IN 512
#define N_OUT 80
#define MAX_COLS 9

static const int TYPES[] = {MS_TYPE_Q4_K, MS_TYPE_Q2_K, MS_TYPE_F32,   MS_TYPE_F16,   MS_TYPE_BF16,
                            MS_TYPE_Q6_K, MS_TYPE_Q5_K, MS_TYPE_Q8_0,  MS_TYPE_IQ1_S, MS_TYPE_IQ1_M,
                            MS_TYPE_IQ2_XXS};
#define N_TYPES (sizeof TYPES / sizeof TYPES[0])

typedef struct fixture {
    tpool *tp1, *tp2;
    mweight w;
    uint8_t *wdata;
    float x[MAX_COLS * N_IN];
    uint8_t *q;
} fixture;

static float frand(uint64_t *s)
{
    uint64_t v = *s;
    v ^= v << 13;
    v ^= v >> 7;
    v ^= v << 17;
    *s = v;
    return (float)((double)(v >> 11) / 9007199254740992.0) * 2.0f - 1.0f;
}

static void make(fixture *f, int type)
{
    const quant_type_info *ti = quant_info(type);
    uint64_t rng = 0x9e3779b97f4a7c15ull ^ (uint64_t)type;
    f->w = (mweight){.name = "w", .type = type, .n_in = N_IN, .n_out = N_OUT, .n_mat = 1};
    f->w.row_bytes = quant_row_bytes(type, N_IN);
    f->w.mat_bytes = f->w.row_bytes * N_OUT;
    free(f->wdata);
    f->wdata = malloc(f->w.mat_bytes);
    assert_non_null(f->wdata);
    quant_fill_random(type, f->wdata, (int64_t)N_OUT * N_IN / ti->blck, &rng, 0.05f);
    f->w.data = f->wdata;
    for (size_t i = 0; i < MAX_COLS * N_IN; i++)
        f->x[i] = frand(&rng);
    free(f->q);
    f->q = malloc(mm_act_bytes(type, N_IN, MAX_COLS));
    assert_non_null(f->q);
    mm_quantize(f->tp2, type, f->x, N_IN, N_IN, MAX_COLS, f->q);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    char err[256];
    if (!f || tpool_create(&f->tp1, 1, err, sizeof err) || tpool_create(&f->tp2, 2, err, sizeof err))
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    tpool_destroy(f->tp1);
    tpool_destroy(f->tp2);
    free(f->wdata);
    free(f->q);
    free(f);
    return 0;
}

/* Lone-column results: ref[c * N_OUT + r]. */
static void lone(fixture *f, float *ref)
{
    const size_t qr = mm_act_bytes(f->w.type, N_IN, 1);
    for (int c = 0; c < MAX_COLS; c++)
        mm_mul_q(f->tp1, &f->w, 0, f->q + (size_t)c * qr, 1, ref + (size_t)c * N_OUT, N_OUT);
}

static void assert_bits(const float *a, const float *b, size_t n, const char *what, int type, int nc)
{
    if (memcmp(a, b, n * sizeof *a))
        for (size_t i = 0; i < n; i++)
            if (memcmp(&a[i], &b[i], sizeof *a))
                fail_msg("%s, %s, %d columns: element %zu (column %zu row %zu): %.9g vs %.9g", what,
                         quant_info(type)->name, nc, i, i / N_OUT, i % N_OUT, (double)a[i], (double)b[i]);
}

static void test_cols1_equals_lone(void **state)
{
    fixture *f = *state;
    for (size_t ti = 0; ti < N_TYPES; ti++) {
        const int type = TYPES[ti];
        make(f, type);
        float ref[MAX_COLS * N_OUT], got[MAX_COLS * N_OUT];
        lone(f, ref);
        for (int nc = 2; nc <= MAX_COLS; nc++) {
            for (int th = 1; th <= 2; th++) {
                memset(got, 0xff, sizeof got);
                mm_mul_cols1_q(th == 1 ? f->tp1 : f->tp2, &f->w, 0, f->q, nc, got, N_OUT);
                assert_bits(got, ref, (size_t)nc * N_OUT, "mm_mul_cols1_q", type, nc);
            }
            memset(got, 0xff, sizeof got);
            for (int64_t lo = (N_OUT - 1) / 16 * 16; lo >= 0; lo -= 16)
                mm_expert_rows(type, false, f->wdata, N_IN, f->q, mm_act_bytes(type, N_IN, 1), nc, lo,
                               lo + 16 < N_OUT ? lo + 16 : N_OUT, got, N_OUT);
            assert_bits(got, ref, (size_t)nc * N_OUT, "mm_expert_rows", type, nc);
        }
    }
}

static void test_column_count_orders(void **state)
{
    fixture *f = *state;
    for (size_t ti = 0; ti < N_TYPES; ti++) {
        const int type = TYPES[ti];
        make(f, type);
        float ref[MAX_COLS * N_OUT], got[MAX_COLS * N_OUT], got2[MAX_COLS * N_OUT];
        lone(f, ref);
        mm_mul_q(f->tp1, &f->w, 0, f->q, 4, got, N_OUT);
        /* threads never change a product's bits */
        mm_mul_raw_q(f->tp2, type, f->wdata, N_IN, N_OUT, f->q, 4, got2, N_OUT);
        assert_bits(got2, got, 4 * N_OUT, "mm_mul_raw_q at 2 threads", type, 4);
        if (!quant_order_by_cols(type)) {
            assert_bits(got, ref, 4 * N_OUT, "mm_mul_q", type, 4);
            continue;
        }
        if (!memcmp(got, ref, 4 * N_OUT * sizeof *got))
            fail_msg("%s: four columns in one call gave the lone-column bits everywhere; the "
                     "cols1 comparison would not see a wrong order",
                     quant_info(type)->name);
    }
}

static void test_mm_mul_quantizes(void **state)
{
    fixture *f = *state;
    make(f, MS_TYPE_Q4_K);
    float ref[MAX_COLS * N_OUT], got[MAX_COLS * N_OUT];
    mm_mul_q(f->tp2, &f->w, 0, f->q, 3, ref, N_OUT);
    uint8_t *scratch = malloc(mm_act_bytes(MS_TYPE_Q4_K, N_IN, 3));
    assert_non_null(scratch);
    mm_mul(f->tp2, &f->w, 0, f->x, N_IN, 3, got, N_OUT, scratch);
    assert_bits(got, ref, 3 * N_OUT, "mm_mul", MS_TYPE_Q4_K, 3);
    free(scratch);
}

static void test_q4k_r16(void **state)
{
    fixture *f = *state;
    if (!kern_get()->q4k_r16_mul_mat) {
        printf("    (this kernel table has no 16-row Q4_K kernels: %s)\n", kern_get()->isa);
        skip();
    }
    make(f, MS_TYPE_Q4_K);
    enum { NC = 70 };
    uint64_t rng = 12345;
    float *x = malloc(sizeof *x * NC * N_IN), *ref = malloc(sizeof *ref * NC * N_OUT),
          *got = malloc(sizeof *got * NC * N_OUT);
    uint8_t *q = malloc(mm_act_bytes(MS_TYPE_Q4_K, N_IN, NC)), *plain = malloc(f->w.mat_bytes);
    assert_true(x && ref && got && q && plain);
    for (size_t i = 0; i < (size_t)NC * N_IN; i++)
        x[i] = frand(&rng);
    mm_quantize(f->tp2, MS_TYPE_Q4_K, x, N_IN, N_IN, NC, q);
    memcpy(plain, f->wdata, f->w.mat_bytes);
    mweight rw = f->w;
    assert_int_equal(repack_q4k_matrix(f->wdata, N_OUT, N_IN), 0);
    assert_true(memcmp(plain, f->wdata, f->w.mat_bytes) != 0);
    rw.r16 = true;
    const int ncs[] = {1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 63, 64, 65, 70};
    for (size_t i = 0; i < sizeof ncs / sizeof ncs[0]; i++)
        for (int th = 1; th <= 2; th++) {
            tpool *tp = th == 1 ? f->tp1 : f->tp2;
            const int nc = ncs[i];
            f->w.data = plain;
            mm_mul_q(tp, &f->w, 0, q, nc, ref, N_OUT);
            memset(got, 0xff, sizeof *got * NC * N_OUT);
            mm_mul_q(tp, &rw, 0, q, nc, got, N_OUT);
            assert_bits(got, ref, (size_t)nc * N_OUT, "mm_mul_q, 16-row layout", MS_TYPE_Q4_K, nc);
            mm_mul_cols1_q(tp, &f->w, 0, q, nc, ref, N_OUT);
            memset(got, 0xff, sizeof *got * NC * N_OUT);
            mm_mul_cols1_q(tp, &rw, 0, q, nc, got, N_OUT);
            assert_bits(got, ref, (size_t)nc * N_OUT, "mm_mul_cols1_q, 16-row layout", MS_TYPE_Q4_K, nc);
        }
    assert_int_equal(repack_q4k_unpack_matrix(f->wdata, N_OUT, N_IN), 0);
    assert_memory_equal(plain, f->wdata, f->w.mat_bytes);
    assert_int_equal(repack_q4k_matrix(f->wdata, N_OUT - 8, N_IN), -EINVAL);
    f->w.data = f->wdata;
    free(x), free(ref), free(got), free(q), free(plain);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cols1_equals_lone),
        cmocka_unit_test(test_column_count_orders),
        cmocka_unit_test(test_mm_mul_quantizes),
        cmocka_unit_test(test_q4k_r16),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
