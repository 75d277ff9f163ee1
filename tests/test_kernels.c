/* test_kernels.c - every kernel of every ISA table this CPU runs
 * (kern_get_isa: avx2, avx512, neon) against the scalar reference table.
 *
 * - activation quantization (Q8_K, Q8_0, Q8_1, F16, BF16, F32): byte for byte
 *   (it decides which experts are chosen downstream);
 * - vec_dot and mul_mat for every weight type, F32/F16/BF16 included: bit
 *   for bit (mul_mat against the scalar mul_mat with the same column count:
 *   for F32/F16/BF16, Q4_K and Q2_K the reference's float order depends on
 *   it, quant_order_by_cols);
 * - inputs: seeded random blocks (quant_fill_random) and activations with a
 *   spread of magnitudes, checked to be non-degenerate; several row lengths;
 *   mul_mat with 1..9 columns (IQ1_S, IQ2_XXS: 1..17) and odd row ranges;
 * - the tensors behind the golden dequant vectors ($MOESTREAM_GOLDEN/
 *   dequant/index.json, default ../shared/golden): real quantized rows;
 * - dequant of every weight type: bit for bit quant_dequantize_row on random
 *   rows (and nothing written past the row), every F16/BF16 bit pattern,
 *   and the golden dequant floats themselves (scalar table included);
 *   axpy_f32: bit for bit the unfused scalar loop, lengths that reach the
 *   SIMD tails;
 * - softmax_exp and swiglu: bit for bit vmath's (values and the returned
 *   sum), on inputs that reach every branch of its exp (subnormal results,
 *   overflow, the |n| > 192 cut-off, -inf), lengths that reach the tails;
 *   vmath_expf itself within 2 ulp of libm's expf. */
#include <jansson.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "gguf.h"
#include "kernels.h"
#include "quant.h"
#include "golden.h"
#include "vmath.h"

static const int WTYPES[] = {MS_TYPE_IQ1_S,   MS_TYPE_IQ1_M,  MS_TYPE_IQ2_XXS, MS_TYPE_Q4_K,
                             MS_TYPE_Q5_K,    MS_TYPE_Q6_K,   MS_TYPE_Q8_0,    MS_TYPE_Q4_0,
                             MS_TYPE_Q4_1,    MS_TYPE_Q5_0,   MS_TYPE_Q5_1,    MS_TYPE_IQ4_NL,
                             MS_TYPE_IQ4_XS,  MS_TYPE_Q2_K,   MS_TYPE_Q3_K,    MS_TYPE_IQ2_XS,
                             MS_TYPE_IQ2_S,   MS_TYPE_IQ3_XXS, MS_TYPE_IQ3_S,  MS_TYPE_F16,
                             MS_TYPE_BF16,    MS_TYPE_F32};
#define N_WTYPES (sizeof WTYPES / sizeof WTYPES[0])
static const char *ISAS[] = {"avx2", "avx512", "neon"};

static uint64_t rng_next(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

/* uniform in [-1, 1) times a per-32 magnitude in [2^-4, 2^4]: activations
 * whose blocks have different scales, like real residual rows */
static void fill_act(float *x, int64_t n, uint64_t *rng)
{
    float mag = 1.0f;
    for (int64_t i = 0; i < n; i++) {
        if (i % 32 == 0)
            mag = ldexpf(1.0f, (int)(rng_next(rng) % 9) - 4);
        x[i] = mag * ((float)(rng_next(rng) >> 40) / (float)(1 << 24) * 2.0f - 1.0f);
    }
}

static int n_fail;

/* got vs want for row r, column c: bit for bit */
static void check(const char *isa, int type, int64_t n, const char *what, int r, int c, float got,
                  float want)
{
    if (!memcmp(&got, &want, 4))
        return;
    if (n_fail++ < 10)
        printf("  %s %s %s n=%lld row %d col %d: got %.9g want %.9g diff %.3g\n", isa,
               quant_info(type)->name, what, (long long)n, r, c, (double)got, (double)want,
               fabs((double)got - (double)want));
}

/* Compares vec_dot and mul_mat of table t with the scalar table on `rows`
 * weight rows w and `cols` quantized activation columns a. */
static void compare_products(const kern_table *t, const kern_table *ref, int type, int64_t n,
                             const uint8_t *w, int rows, const uint8_t *a, int cols)
{
    const quant_type_info *inf = quant_info(type);
    const size_t wr = quant_row_bytes(type, n), ar = quant_row_bytes(inf->act_type, n);
    float *want = malloc((size_t)rows * (size_t)cols * 4), *got = malloc((size_t)rows * (size_t)cols * 4);
    float *want_mm = malloc((size_t)rows * (size_t)cols * 4);
    assert_non_null(want);
    assert_non_null(got);
    assert_non_null(want_mm);
    int distinct = 0;
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++) {
            float s1, s2;
            ref->vec_dot[type](n, &s1, w + wr * (size_t)r, a + ar * (size_t)c);
            t->vec_dot[type](n, &s2, w + wr * (size_t)r, a + ar * (size_t)c);
            want[(size_t)c * (size_t)rows + (size_t)r] = s1;
            check(t->isa, type, n, "vec_dot", r, c, s2, s1);
            distinct += r + c > 0 && s1 != want[0];
        }
    /* non-degenerate: the products differ from each other and are finite */
    assert_true(rows * cols == 1 || distinct > 0);
    assert_true(isfinite(want[0]));
    /* mul_mat: 1..cols columns over odd row ranges; untouched outputs stay NaN */
    for (int nc = 1; nc <= cols; nc++) {
        const int r0 = nc % 3, r1 = rows - (nc % 2);
        for (size_t i = 0; i < (size_t)rows * (size_t)cols; i++)
            got[i] = want_mm[i] = NAN;
        t->mul_mat[type](n, w, wr, r0, r1, a, ar, nc, got, (size_t)rows);
        ref->mul_mat[type](n, w, wr, r0, r1, a, ar, nc, want_mm, (size_t)rows);
        for (int c = 0; c < cols; c++)
            for (int r = 0; r < rows; r++) {
                const float g = got[(size_t)c * (size_t)rows + (size_t)r];
                if (c < nc && r >= r0 && r < r1) {
                    const float wm = want_mm[(size_t)c * (size_t)rows + (size_t)r];
                    check(t->isa, type, n, "mul_mat", r, c, g, wm);
                    /* one column, or a type whose order ignores the count: vec_dot */
                    if ((nc == 1 || !quant_order_by_cols(type)) &&
                        memcmp(&wm, &want[(size_t)c * (size_t)rows + (size_t)r], 4) && n_fail++ < 10)
                        printf("  scalar %s mul_mat(%d cols) != vec_dot at row %d col %d\n", inf->name, nc, r, c);
                }
                else if (!isnan(g) && n_fail++ < 10)
                    printf("  %s %s mul_mat wrote outside rows [%d,%d) x cols %d\n", t->isa, inf->name,
                           r0, r1, nc);
            }
    }
    free(want);
    free(want_mm);
    free(got);
}

/* ---- activation quantization ---- */

static void test_quantize_equal(void **state)
{
    (void)state;
    const kern_table *ref = kern_get_isa("scalar");
    const int acts[] = {MS_TYPE_Q8_K, MS_TYPE_Q8_0, MS_TYPE_Q8_1, MS_TYPE_F16, MS_TYPE_BF16, MS_TYPE_F32};
    const int64_t n = 4096;
    float *x = malloc((size_t)n * 4);
    uint8_t *q1 = malloc(quant_row_bytes(MS_TYPE_F32, n)), *q2 = malloc(quant_row_bytes(MS_TYPE_F32, n));
    uint64_t rng = 777;
    int tested = 0;
    for (size_t k = 0; k < sizeof ISAS / sizeof ISAS[0]; k++) {
        const kern_table *t = kern_get_isa(ISAS[k]);
        if (!t)
            continue;
        for (int trial = 0; trial < 6; trial++) {
            fill_act(x, n, &rng);
            if (trial == 1) /* an all-zero block and a block of one repeated |max| */
                for (int i = 0; i < 256; i++) {
                    x[i] = 0.0f;
                    x[256 + i] = i % 2 ? -3.0f : 3.0f;
                }
            if (trial == 2) /* exact rounding ties: x*127/amax lands on k + 0.5 */
                for (int i = 0; i < 256; i++)
                    x[i] = i == 0 ? 127.0f : (float)(i % 64) + 0.5f;
            for (size_t ai = 0; ai < sizeof acts / sizeof acts[0]; ai++) {
                const size_t qb = quant_row_bytes(acts[ai], n);
                memset(q1, 0xAA, qb);
                memset(q2, 0x55, qb);
                ref->quantize[acts[ai]](x, q1, n);
                t->quantize[acts[ai]](x, q2, n);
                if (memcmp(q1, q2, qb)) {
                    size_t i = 0;
                    while (q1[i] == q2[i])
                        i++;
                    fail_msg("%s quantize %s trial %d: byte %zu got 0x%02x want 0x%02x", t->isa,
                             quant_info(acts[ai])->name, trial, i, q2[i], q1[i]);
                }
                tested++;
            }
        }
        printf("MEASURE kernels %s: activation quantizers byte-identical to scalar\n", t->isa);
    }
    printf("MEASURE kernels: %d quantizer runs compared\n", tested);
    free(x);
    free(q1);
    free(q2);
}

/* ---- random blocks ---- */

/* compare_products on `rows` random weight rows of `type` (n long) and
 * `cols` random activation columns quantized by the scalar table. */
static void compare_random(const kern_table *t, const kern_table *ref, int type, int64_t n, int rows, int cols,
                           uint64_t *rng)
{
    const quant_type_info *inf = quant_info(type);
    const int at = inf->act_type;
    const size_t wr = quant_row_bytes(type, n), ar = quant_row_bytes(at, n);
    uint8_t *w = malloc(wr * (size_t)rows), *a = malloc(ar * (size_t)cols);
    float *x = malloc((size_t)n * 4);
    assert_true(w && a && x);
    quant_fill_random(type, w, (int64_t)(wr * (size_t)rows / (size_t)inf->type_size), rng, 1.0f);
    for (int c = 0; c < cols; c++) {
        fill_act(x, n, rng);
        ref->quantize[at](x, a + ar * (size_t)c, n);
    }
    compare_products(t, ref, type, n, w, rows, a, cols);
    free(w);
    free(a);
    free(x);
}

/* Prefill shapes: many columns over row ranges past 16 (the AVX-512 Q4_K
 * sixteen-row tiles, their row tail and the columns past the last four). */
static void test_products_many_cols(void **state)
{
    (void)state;
    const kern_table *ref = kern_get_isa("scalar");
    const int types[] = {MS_TYPE_Q4_K};
    uint64_t rng = 777;
    n_fail = 0;
    for (size_t k = 0; k < sizeof ISAS / sizeof ISAS[0]; k++) {
        const kern_table *t = kern_get_isa(ISAS[k]);
        if (!t)
            continue;
        for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
            const int64_t lens[] = {256, 1792};
            for (int li = 0; li < 2; li++)
                compare_random(t, ref, types[ti], lens[li], 37, 70, &rng);
        }
        printf("MEASURE kernels %s: Q4_K mul_mat 1-70 columns x 37 rows equal scalar bit for bit\n", t->isa);
    }
    assert_int_equal(n_fail, 0);
}

static void test_products_random(void **state)
{
    (void)state;
    const kern_table *ref = kern_get_isa("scalar");
    uint64_t rng = 12345;
    int tested = 0;
    n_fail = 0;
    for (size_t k = 0; k < sizeof ISAS / sizeof ISAS[0]; k++) {
        const kern_table *t = kern_get_isa(ISAS[k]);
        if (!t)
            continue;
        for (size_t ti = 0; ti < N_WTYPES; ti++) {
            const int type = WTYPES[ti];
            const int64_t lens[] = {quant_info(type)->blck == 256 ? 256 : 96, 512, 1792, 7168};
            for (int li = 0; li < 4; li++) {
                const int64_t n = lens[li];
                /* IQ1_S, IQ2_XXS: 1..17 columns (column groups of 8 and every remainder) */
                compare_random(t, ref, type, n, 13, type == MS_TYPE_IQ1_S || type == MS_TYPE_IQ2_XXS ? 17 : 9,
                               &rng);
                tested++;
            }
        }
        printf("MEASURE kernels %s: %zu weight types x 4 row lengths, vec_dot and mul_mat (1-9 "
               "columns, IQ1_S/IQ2_XXS 1-17) equal scalar bit for bit\n",
               t->isa, N_WTYPES);
    }
    printf("MEASURE kernels: %d (isa, type, length) combinations; selected isa %s\n", tested,
           kern_get()->isa);
    assert_int_equal(n_fail, 0);
}

/* ---- the golden dequant tensors ---- */


/* The golden dequant index (skips the test when it is missing). */
static json_t *golden_index(void)
{
    GOLDEN_REQUIRE();
    char path[1024];
    snprintf(path, sizeof path, "%s/dequant/index.json", golden_dir());
    json_error_t je;
    json_t *idx = json_load_file(path, 0, &je);
    if (!idx) {
        printf("skip: no golden index at %s (%s)\n", path, je.text);
        skip();
    }
    return idx;
}

/* One index entry: its fields and its `rows` weight rows read from the
 * golden model (w, malloc'd, rows of quant_row_bytes(type, n)). */
typedef struct {
    const char *tensor, *file;
    int type, rows;
    int64_t n;
    uint8_t *w;
} golden_rows;

static golden_rows golden_rows_read(json_t *o)
{
    char path[1024], err[512];
    golden_rows g = {0};
    const char *model = json_string_value(json_object_get(o, "model"));
    g.tensor = json_string_value(json_object_get(o, "tensor"));
    g.file = json_string_value(json_object_get(o, "file"));
    g.type = (int)json_integer_value(json_object_get(o, "ggml_type_id"));
    g.n = json_integer_value(json_object_get(o, "row_length"));
    g.rows = (int)json_integer_value(json_object_get(o, "rows"));
    const int64_t boff = json_integer_value(json_object_get(o, "byte_offset_in_tensor"));
    assert_non_null(quant_info(g.type));
    assert_true(model && g.tensor && g.n > 0 && g.rows > 0);
    snprintf(path, sizeof path, "%s/models/%s", golden_dir(), model);
    gguf_file *gf = NULL;
    if (gguf_open(&gf, path, err, sizeof err))
        fail_msg("%s", err);
    const gguf_tensor *gt = gguf_find_tensor(gf, g.tensor);
    assert_non_null(gt);
    const size_t wr = quant_row_bytes(g.type, g.n);
    assert_true(wr > 0 && (uint64_t)boff + wr * (size_t)g.rows <= gt->nbytes);
    g.w = malloc(wr * (size_t)g.rows);
    assert_non_null(g.w);
    if (gguf_read(gf, gt->part, gt->offset + (uint64_t)boff, g.w, wr * (size_t)g.rows, err, sizeof err))
        fail_msg("%s", err);
    gguf_close(gf);
    return g;
}

static void test_products_golden(void **state)
{
    (void)state;
    json_t *idx = golden_index();
    const kern_table *ref = kern_get_isa("scalar");
    uint64_t rng = 4242;
    n_fail = 0;
    int tested = 0;
    for (size_t e = 0; e < json_array_size(idx); e++) {
        golden_rows g = golden_rows_read(json_array_get(idx, e));
        const int type = g.type, rows = g.rows;
        const int64_t n = g.n;
        const uint8_t *w = g.w;
        const quant_type_info *inf = quant_info(type);
        const size_t ar = quant_row_bytes(inf->act_type, n);
        const int cols = 5;
        uint8_t *a = malloc(ar * cols);
        float *x = malloc((size_t)n * 4);
        assert_true(a && x);
        for (int c = 0; c < cols; c++) {
            fill_act(x, n, &rng);
            ref->quantize[inf->act_type](x, a + ar * (size_t)c, n);
        }
        for (size_t k = 0; k < sizeof ISAS / sizeof ISAS[0]; k++) {
            const kern_table *t = kern_get_isa(ISAS[k]);
            if (!t)
                continue;
            compare_products(t, ref, type, n, w, rows, a, cols);
            tested++;
        }
        free(g.w);
        free(a);
        free(x);
    }
    json_decref(idx);
    printf("MEASURE kernels golden: %d (isa, tensor) pairs of real quantized rows equal scalar\n", tested);
    assert_int_equal(n_fail, 0);
}

/* ---- dequantization and axpy ---- */

/* Table t's dequant of rows of `type` against quant_dequantize_row, bit
 * for bit, and nothing written past n; returns the number of mismatches. */
static int compare_dequant(const kern_table *t, int type, int64_t n, const uint8_t *w, int rows,
                           const char *what)
{
    const size_t wr = quant_row_bytes(type, n);
    float *want = malloc((size_t)(n + 16) * 4), *got = malloc((size_t)(n + 16) * 4);
    assert_true(want && got);
    int bad = 0;
    for (int r = 0; r < rows; r++) {
        for (int64_t i = 0; i < n + 16; i++)
            got[i] = want[i] = NAN;
        assert_int_equal(quant_dequantize_row(type, w + wr * (size_t)r, want, n), 0);
        t->dequant[type](w + wr * (size_t)r, got, n);
        if (!memcmp(got, want, (size_t)(n + 16) * 4))
            continue;
        int64_t i = 0;
        while (!memcmp(&got[i], &want[i], 4))
            i++;
        uint32_t gb, wb;
        memcpy(&gb, &got[i], 4);
        memcpy(&wb, &want[i], 4);
        if (bad++ < 5)
            printf("  %s %s dequant %s n=%lld row %d [%lld]: got %.9g (0x%08x) want %.9g (0x%08x)%s\n",
                   t->isa, quant_info(type)->name, what, (long long)n, r, (long long)i, (double)got[i],
                   gb, (double)want[i], wb, i >= n ? " (past the row)" : "");
    }
    free(want);
    free(got);
    return bad;
}

static void test_dequant_random(void **state)
{
    (void)state;
    uint64_t rng = 9001;
    int bad[sizeof ISAS / sizeof ISAS[0]] = {0}, tested = 0, total = 0;
    for (size_t ti = 0; ti < N_WTYPES; ti++) {
        const int type = WTYPES[ti];
        const quant_type_info *inf = quant_info(type);
        /* F16/BF16/F32 (block 1): odd lengths reach the SIMD tails */
        const int64_t lens[] = {inf->blck == 1 ? 17 : inf->blck, inf->blck == 1 ? 515 : 4 * inf->blck,
                                512, 7168};
        for (int li = 0; li < 4; li++) {
            const int64_t n = lens[li];
            const int rows = 7;
            const size_t wr = quant_row_bytes(type, n);
            uint8_t *w = malloc(wr * rows);
            float *y = malloc((size_t)n * 4);
            assert_true(w && y);
            quant_fill_random(type, w, (int64_t)(wr * rows / (size_t)inf->type_size), &rng, 1.0f);
            /* non-degenerate: finite, and most values of a row distinct */
            quant_dequantize_row(type, w, y, n);
            int distinct = 0;
            for (int64_t i = 0; i < n; i++) {
                assert_true(isfinite(y[i]));
                distinct += i > 0 && y[i] != y[i - 1];
            }
            assert_true(distinct > n / 4);
            for (size_t k = 0; k < sizeof ISAS / sizeof ISAS[0]; k++) {
                const kern_table *t = kern_get_isa(ISAS[k]);
                if (!t)
                    continue;
                bad[k] += compare_dequant(t, type, n, w, rows, "random");
                tested++;
            }
            free(w);
            free(y);
        }
    }
    /* every half and bfloat16 bit pattern (subnormals, infinities, quiet and
     * signaling NaNs) in one row */
    uint16_t *all = malloc(65536 * 2);
    assert_non_null(all);
    for (int i = 0; i < 65536; i++)
        all[i] = (uint16_t)i;
    for (size_t k = 0; k < sizeof ISAS / sizeof ISAS[0]; k++) {
        const kern_table *t = kern_get_isa(ISAS[k]);
        if (!t)
            continue;
        bad[k] += compare_dequant(t, MS_TYPE_F16, 65536, (const uint8_t *)all, 1, "all 65536 bit patterns");
        bad[k] += compare_dequant(t, MS_TYPE_BF16, 65536, (const uint8_t *)all, 1, "all 65536 bit patterns");
        tested += 2;
        if (!bad[k])
            printf("MEASURE kernels %s: dequant of %zu weight types (random rows, every F16/BF16 bit "
                   "pattern) equals quant_dequantize_row bit for bit\n",
                   t->isa, N_WTYPES);
        else
            printf("MEASURE kernels %s: dequant differs from quant_dequantize_row in %d rows\n", t->isa,
                   bad[k]);
        total += bad[k];
    }
    free(all);
    printf("MEASURE kernels: %d (isa, type, length) dequant comparisons\n", tested);
    assert_int_equal(total, 0);
}

/* dequant of the golden tensors' rows: equal to the independent reference's
 * floats (../shared/golden/dequant/<type>.f32) bit for bit, in every table */
static void test_dequant_golden(void **state)
{
    (void)state;
    char path[1024];
    json_t *idx = golden_index();
    const char *isas[] = {"scalar", "avx2", "avx512", "neon"};
    int bad = 0, tested = 0;
    for (size_t e = 0; e < json_array_size(idx); e++) {
        golden_rows g = golden_rows_read(json_array_get(idx, e));
        const int type = g.type, rows = g.rows;
        const int64_t n = g.n;
        const char *tensor = g.tensor;
        const uint8_t *w = g.w;
        assert_non_null(g.file);
        const size_t wr = quant_row_bytes(type, n), nv = (size_t)n * (size_t)rows;
        float *want = malloc(nv * 4), *got = malloc(nv * 4);
        assert_true(want && got);
        snprintf(path, sizeof path, "%s/dequant/%s", golden_dir(), g.file);
        FILE *f = fopen(path, "rb");
        assert_non_null(f);
        assert_int_equal(fread(want, 4, nv, f), nv);
        fclose(f);
        for (size_t k = 0; k < sizeof isas / sizeof isas[0]; k++) {
            const kern_table *t = kern_get_isa(isas[k]);
            if (!t)
                continue;
            for (int r = 0; r < rows; r++)
                t->dequant[type](w + wr * (size_t)r, got + (size_t)r * (size_t)n, n);
            for (size_t i = 0; i < nv; i++)
                if (memcmp(&got[i], &want[i], 4) && bad++ < 5)
                    printf("  %s %s dequant golden %s [%zu]: got %.9g want %.9g\n", t->isa,
                           quant_info(type)->name, tensor, i, (double)got[i], (double)want[i]);
            tested++;
        }
        free(g.w);
        free(want);
        free(got);
    }
    json_decref(idx);
    printf("MEASURE kernels golden: dequant of %d (isa, tensor) pairs equals the reference floats bit "
           "for bit\n",
           tested);
    assert_int_equal(bad, 0);
}

static void test_axpy(void **state)
{
    (void)state;
    uint64_t rng = 31337;
    const int64_t lens[] = {1, 15, 16, 17, 515, 4096};
    float *x = malloc(4096 * 4), *y0 = malloc(4096 * 4), *want = malloc(4096 * 4), *got = malloc(4096 * 4);
    assert_true(x && y0 && want && got);
    const char *isas[] = {"scalar", "avx2", "avx512", "neon"};
    int bad = 0, tested = 0;
    for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++) {
        const int64_t n = lens[li];
        fill_act(x, n, &rng);
        fill_act(y0, n, &rng);
        float a[1];
        fill_act(a, 1, &rng);
        /* the scalar loop, a product then a sum: a*x[i] rounded before the add */
        for (int64_t i = 0; i < n; i++) {
            const volatile float p = a[0] * x[i];
            want[i] = y0[i] + p;
        }
        for (size_t k = 0; k < sizeof isas / sizeof isas[0]; k++) {
            const kern_table *t = kern_get_isa(isas[k]);
            if (!t)
                continue;
            memcpy(got, y0, (size_t)n * 4);
            t->axpy_f32(n, a[0], x, got);
            for (int64_t i = 0; i < n; i++)
                if (memcmp(&got[i], &want[i], 4) && bad++ < 5)
                    printf("  %s axpy_f32 n=%lld [%lld]: got %.9g want %.9g\n", t->isa, (long long)n,
                           (long long)i, (double)got[i], (double)want[i]);
            tested++;
        }
    }
    printf("MEASURE kernels: axpy_f32 of %d (isa, length) pairs equals the unfused scalar loop\n", tested);
    free(x);
    free(y0);
    free(want);
    free(got);
    assert_int_equal(bad, 0);
}

/* Inputs for exp: mostly moderate, with every edge of vmath_expf */
static void fill_exp_inputs(float *x, int64_t n, uint64_t *rng)
{
    static const float edge[] = {-INFINITY, -1e30f, -200.0f, -150.0f, -104.0f, -103.5f, -100.0f, -95.0f,
                                 -88.0f,    -87.4f, -20.0f,  -0.0f,   0.0f,    1e-30f,  0.5f,    20.0f,
                                 88.5f,     88.8f,  89.0f,   100.0f,  150.0f,  1e30f};
    for (int64_t i = 0; i < n; i++) {
        *rng = *rng * 6364136223846793005ull + 1442695040888963407ull;
        const uint32_t r = (uint32_t)(*rng >> 33);
        if (r % 5 == 0)
            x[i] = edge[(r / 5) % (sizeof edge / sizeof edge[0])];
        else
            x[i] = ((float)(r % 2000001) / 1e4f - 100.0f) * (r % 3 ? 0.2f : 1.0f);
    }
}

/* Equal bits, or both NaN (whose payloads the ISAs need not agree on). */
static bool same_float(float a, float b) { return !memcmp(&a, &b, 4) || (isnan(a) && isnan(b)); }

static void test_softmax_swiglu(void **state)
{
    (void)state;
    uint64_t rng = 4242;
    /* vmath_expf, the specification, against libm: within 2 ulp where the
     * result is normal, exact at the edges */
    int far = 0;
    for (int i = 0; i < 200000; i++) {
        float x;
        fill_exp_inputs(&x, 1, &rng);
        const float got = vmath_expf(x), want = expf(x);
        if (isinf(want) || want == 0.0f || x < -87.0f) {
            far += x < -104.0f && got != 0.0f;
            far += x > 89.0f && !isinf(got);
            continue;
        }
        int32_t a, b;
        memcpy(&a, &got, 4);
        memcpy(&b, &want, 4);
        far += abs(a - b) > 2;
    }
    assert_int_equal(far, 0);
    const int64_t lens[] = {1, 7, 8, 9, 15, 16, 17, 31, 33, 100, 1000};
    float *x = malloc(1000 * 4), *g = malloc(1000 * 4), *want = malloc(1000 * 4), *wantg = malloc(1000 * 4),
          *got = malloc(1000 * 4);
    assert_true(x && g && want && wantg && got);
    const char *isas[] = {"scalar", "avx2", "avx512", "neon"};
    int bad = 0, tested = 0;
    for (int rep = 0; rep < 20; rep++)
        for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++) {
            const int64_t n = lens[li];
            fill_exp_inputs(x, n, &rng);
            fill_exp_inputs(g, n, &rng);
            float mx = -INFINITY;
            for (int64_t i = 0; i < n; i++)
                mx = x[i] > mx ? x[i] : mx;
            /* a softmax's inputs minus their max are <= 0; half the runs
             * shift the max down so positive exponents (and overflow) occur */
            const float m = rep % 2 || !isfinite(mx) ? mx : mx - 150.0f;
            memcpy(want, x, (size_t)n * 4);
            const double ws = vmath_softmax_exp(want, n, m);
            vmath_swiglu(wantg, x, g, n);
            for (size_t k = 0; k < sizeof isas / sizeof isas[0]; k++) {
                const kern_table *t = kern_get_isa(isas[k]);
                if (!t)
                    continue;
                memcpy(got, x, (size_t)n * 4);
                const double gs = t->softmax_exp(got, n, m);
                bool same = !memcmp(&gs, &ws, sizeof gs) || (isnan(gs) && isnan(ws));
                for (int64_t i = 0; i < n; i++)
                    same &= same_float(got[i], want[i]);
                if (!same && bad++ < 5)
                    printf("  %s softmax_exp n=%lld differs from vmath's (sum %.17g, want %.17g)\n", t->isa,
                           (long long)n, gs, ws);
                t->swiglu(got, x, g, n);
                for (int64_t i = 0; i < n; i++)
                    if (!same_float(got[i], wantg[i]) && bad++ < 5)
                        printf("  %s swiglu n=%lld [%lld] x=%.9g: got %.9g want %.9g\n", t->isa, (long long)n,
                               (long long)i, (double)x[i], (double)got[i], (double)wantg[i]);
                tested++;
            }
        }
    printf("MEASURE kernels: softmax_exp and swiglu of %d (isa, input) pairs equal vmath's bit for bit\n",
           tested);
    free(x);
    free(g);
    free(want);
    free(wantg);
    free(got);
    assert_int_equal(bad, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quantize_equal),
        cmocka_unit_test(test_products_random),
        cmocka_unit_test(test_products_many_cols),
        cmocka_unit_test(test_products_golden),
        cmocka_unit_test(test_dequant_random),
        cmocka_unit_test(test_dequant_golden),
        cmocka_unit_test(test_axpy),
        cmocka_unit_test(test_softmax_swiglu),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
