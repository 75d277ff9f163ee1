/* test_repack.c - the repacked i-quant layouts (simd/repack.h).
 *
 * - conversion: random rows repacked and unpacked give the same bytes back;
 *   sizes at most 1.25x the GGUF bytes; bad shapes refused with a message;
 * - products: repack_mul_mat with every kernel table this CPU runs (scalar,
 *   avx2, avx512, neon) against the scalar table's mul_mat on the plain rows,
 *   bit for bit: 1..17 columns, odd row counts and odd row ranges (group
 *   edges cut), several row lengths; outputs outside the range untouched;
 * - which path: the AVX-512 table has the fast kernel, the others unpack;
 * - the policy (--repack / MOESTREAM_REPACK): words, forced modes, auto's
 *   start-up measurement reported. */
#include <errno.h>
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
#include "repack.h"

static const int TYPES[] = {MS_TYPE_IQ1_S, MS_TYPE_IQ1_M, MS_TYPE_IQ2_XXS};
#define N_TYPES (sizeof TYPES / sizeof TYPES[0])
static const char *ISAS[] = {"scalar", "avx2", "avx512", "neon"};

static uint64_t rng_next(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

/* uniform in [-1, 1) times a per-32 magnitude in [2^-4, 2^4] */
static void fill_act(float *x, int64_t n, uint64_t *rng)
{
    float mag = 1.0f;
    for (int64_t i = 0; i < n; i++) {
        if (i % 32 == 0)
            mag = ldexpf(1.0f, (int)(rng_next(rng) % 9) - 4);
        x[i] = mag * ((float)(rng_next(rng) >> 40) / (float)(1 << 24) * 2.0f - 1.0f);
    }
}

/* rows x n random plain rows (malloc'd) */
static uint8_t *random_rows(int type, int64_t n, int rows, uint64_t *rng)
{
    const size_t wr = quant_row_bytes(type, n);
    uint8_t *w = malloc(wr * (size_t)rows);
    assert_non_null(w);
    quant_fill_random(type, w, (int64_t)rows * (n / quant_info(type)->blck), rng, 0.05f);
    return w;
}

static uint8_t *repacked(int type, const uint8_t *w, int64_t n, int rows)
{
    char err[256];
    const size_t bytes = repack_bytes(type, rows, n);
    assert_true(bytes > 0);
    uint8_t *rp = malloc(bytes);
    assert_non_null(rp);
    memset(rp, 0xa5, bytes); /* every byte must be written */
    assert_int_equal(repack_rows(type, w, quant_row_bytes(type, n), rows, n, rp, err, sizeof err), 0);
    return rp;
}

static void test_round_trip(void **state)
{
    (void)state;
    uint64_t rng = 4242;
    for (size_t ti = 0; ti < N_TYPES; ti++) {
        const int type = TYPES[ti];
        const int64_t lens[] = {256, 1792, 7168};
        for (int li = 0; li < 3; li++) {
            const int64_t n = lens[li];
            const int rows = 37;
            const size_t wr = quant_row_bytes(type, n);
            uint8_t *w = random_rows(type, n, rows, &rng), *rp = repacked(type, w, n, rows);
            uint8_t *back = malloc(wr);
            assert_non_null(back);
            for (int r = 0; r < rows; r++) {
                repack_unpack_row(type, rp, n, r, back);
                if (memcmp(back, w + (size_t)r * wr, wr))
                    fail_msg("%s n=%lld row %d: unpacked bytes differ", quant_info(type)->name, (long long)n, r);
            }
            /* 16-row groups: the size is a whole number of groups, each at
             * most 1.25x its 16 GGUF rows */
            const double ratio = (double)repack_group_bytes(type, n) / (double)(REPACK_ROWS * wr);
            assert_true(ratio <= 1.25);
            assert_int_equal(repack_bytes(type, rows, n), 3 * repack_group_bytes(type, n));
            if (li == 2)
                printf("MEASURE repack %s: round trip exact, %.3fx the GGUF bytes\n", quant_info(type)->name, ratio);
            /* a file of moestream repack kept plain: unpacked whole into a
             * buffer and in place in a pool slot (the repacked bytes one
             * group of plain rows in), byte for byte the GGUF rows */
            const size_t rb = repack_bytes(type, rows, n), pre = REPACK_ROWS * wr;
            uint8_t *all = malloc(wr * rows), *slot = malloc(pre + rb);
            assert_non_null(all);
            assert_non_null(slot);
            repack_unpack_rows(type, rp, n, rows, all, wr);
            assert_memory_equal(all, w, wr * rows);
            memcpy(slot + pre, rp, rb);
            repack_unpack_rows(type, slot + pre, n, rows, slot, wr);
            assert_memory_equal(slot, w, wr * rows);
            /* the private type of the file agrees with this geometry: its
             * row share of a group, the plain type it maps back to */
            const int pt = quant_private_of(type);
            assert_true(pt >= MS_TYPE_PRIVATE_BASE);
            assert_int_equal(quant_private_plain(pt), type);
            assert_int_equal((size_t)quant_info(pt)->type_size * REPACK_ROWS * (size_t)(n / 256),
                             repack_group_bytes(type, n));
            assert_int_equal(quant_row_bytes(pt, n) * 48, repack_bytes(type, 48, n));
            free(all);
            free(slot);
            free(back);
            free(rp);
            free(w);
        }
    }
}

/* In place, as the pager's transform does it (src/engine.c): the plain
 * rows at the end of a buffer of the repacked size plus one group of plain
 * rows give the bytes of the out-of-place repack, for every type, at R1's
 * expert shapes and an odd row count; repack_rows goes group by group and
 * group g's output ends before group g's rows start. */
static void test_in_place(void **state)
{
    (void)state;
    uint64_t rng = 777;
    for (size_t ti = 0; ti < N_TYPES; ti++) {
        const int type = TYPES[ti];
        const int64_t shapes[3][2] = {{7168, 2048}, {2048, 7168}, {1792, 37}}; /* n, rows */
        for (int si = 0; si < 3; si++) {
            const int64_t n = shapes[si][0];
            const int rows = (int)shapes[si][1];
            const size_t wr = quant_row_bytes(type, n), plain = wr * (size_t)rows, rp = repack_bytes(type, rows, n);
            const size_t room = rp + REPACK_ROWS * wr; /* what engine_pager_layout asks for */
            uint8_t *w = random_rows(type, n, rows, &rng), *want = repacked(type, w, n, rows), *buf = malloc(room);
            assert_non_null(buf);
            memset(buf, 0x5a, room);
            memcpy(buf + room - plain, w, plain);
            char err[256];
            assert_int_equal(repack_rows(type, buf + room - plain, wr, rows, n, buf, err, sizeof err), 0);
            if (memcmp(buf, want, rp))
                fail_msg("%s n=%lld rows=%d: in-place repack differs", quant_info(type)->name, (long long)n, rows);
            free(buf);
            free(want);
            free(w);
        }
    }
    printf("MEASURE repack in place (plain rows at the end of repacked + 16 rows): equal to out of place, "
           "IQ1_S/IQ1_M/IQ2_XXS at 2048 x 7168, 7168 x 2048, 37 x 1792\n");
}

static void test_refused(void **state)
{
    (void)state;
    char err[256] = "";
    uint8_t buf[64];
    assert_int_equal(repack_bytes(MS_TYPE_Q4_K, 16, 256), 0);
    assert_int_equal(repack_bytes(MS_TYPE_IQ1_S, 16, 100), 0);
    assert_int_equal(repack_bytes(MS_TYPE_IQ1_S, 0, 256), 0);
    assert_true(repack_rows(MS_TYPE_Q4_K, buf, 144, 1, 256, buf, err, sizeof err) < 0);
    assert_non_null(strstr(err, "no layout"));
    assert_true(repack_rows(MS_TYPE_IQ1_S, buf, 50, 1, 300, buf, err, sizeof err) < 0);
}

static int n_fail;

static void compare(const kern_table *t, const kern_table *ref, int type, int64_t n, int rows, int cols,
                    uint64_t *rng)
{
    const quant_type_info *inf = quant_info(type);
    const size_t wr = quant_row_bytes(type, n), ar = quant_row_bytes(inf->act_type, n);
    uint8_t *w = random_rows(type, n, rows, rng), *rp = repacked(type, w, n, rows);
    uint8_t *a = malloc(ar * (size_t)cols);
    float *x = malloc((size_t)n * 4), *got = malloc((size_t)rows * (size_t)cols * 4),
          *want = malloc((size_t)rows * (size_t)cols * 4);
    assert_true(a && x && got && want);
    for (int c = 0; c < cols; c++) {
        fill_act(x, n, rng);
        ref->quantize[inf->act_type](x, a + (size_t)c * ar, n);
    }
    for (int nc = 1; nc <= cols; nc++) {
        /* ranges that start and end inside groups, and whole ones */
        const int half = (rows + 1) / 2;
        const int r0 = nc % 4 == 0 ? 0 : nc % 7 % half, r1 = nc % 3 == 0 ? rows : rows - nc % 5 % half;
        for (size_t i = 0; i < (size_t)rows * (size_t)cols; i++)
            got[i] = want[i] = NAN;
        repack_mul_mat(t, type, n, rp, r0, r1, a, ar, nc, got, (size_t)rows);
        ref->mul_mat[type](n, w, wr, r0, r1, a, ar, nc, want, (size_t)rows);
        int distinct = 0;
        for (int c = 0; c < cols; c++)
            for (int r = 0; r < rows; r++) {
                const size_t i = (size_t)c * (size_t)rows + (size_t)r;
                const bool in = c < nc && r >= r0 && r < r1;
                if (in && memcmp(&got[i], &want[i], 4) && n_fail++ < 10)
                    printf("  %s %s n=%lld row %d col %d (%d cols, rows [%d,%d)): got %.9g want %.9g\n", t->isa,
                           inf->name, (long long)n, r, c, nc, r0, r1, (double)got[i], (double)want[i]);
                if (!in && !isnan(got[i]) && n_fail++ < 10)
                    printf("  %s %s wrote outside rows [%d,%d) x %d cols\n", t->isa, inf->name, r0, r1, nc);
                distinct += in && isfinite(want[i]) && want[i] != want[(size_t)r0];
            }
        /* non-degenerate: finite products that differ */
        assert_true(distinct > 0);
    }
    free(want);
    free(got);
    free(x);
    free(a);
    free(rp);
    free(w);
}

static void test_products(void **state)
{
    (void)state;
    const kern_table *ref = kern_get_isa("scalar");
    uint64_t rng = 99;
    n_fail = 0;
    for (size_t k = 0; k < sizeof ISAS / sizeof ISAS[0]; k++) {
        const kern_table *t = kern_get_isa(ISAS[k]);
        if (!t)
            continue;
        for (size_t ti = 0; ti < N_TYPES; ti++) {
            const int64_t lens[] = {256, 1792, 7168};
            const int rows[] = {37, 16, 5};
            for (int li = 0; li < 3; li++)
                compare(t, ref, TYPES[ti], lens[li], rows[li], 19, &rng);
            printf("MEASURE repack %s %s (%s): 1-19 columns (chunks of 16 and 1-3), 37/16/5 rows, odd ranges equal scalar bit for bit\n",
                   t->isa, quant_info(TYPES[ti])->name, repack_fast(t, TYPES[ti]) ? "repacked kernel" : "unpacked");
        }
    }
    assert_int_equal(n_fail, 0);
}

static void test_paths(void **state)
{
    (void)state;
    assert_false(repack_fast(kern_get_isa("scalar"), MS_TYPE_IQ1_S));
    assert_false(repack_has_layout(MS_TYPE_Q4_K));
    const kern_table *t = kern_get_isa("avx2");
    if (t)
        assert_false(repack_fast(t, MS_TYPE_IQ1_S));
    t = kern_get_isa("neon");
    if (t)
        assert_false(repack_fast(t, MS_TYPE_IQ1_S));
    t = kern_get_isa("avx512");
    if (t) {
        assert_true(repack_fast(t, MS_TYPE_IQ1_S));
        assert_true(repack_fast(t, MS_TYPE_IQ1_M));
        assert_true(repack_fast(t, MS_TYPE_IQ2_XXS));
    }
    else
        printf("skip: no avx512 on this CPU, the repacked kernel is not exercised\n");
}

/* the policy: bad words refused, on/off forced, auto measured where a
 * repacked kernel exists and said so */
static void test_policy(void **state)
{
    (void)state;
    char line[512];
    assert_int_equal(repack_mode_set("sometimes"), -EINVAL);
    assert_int_equal(repack_mode_set(NULL), -EINVAL);
    assert_int_equal(repack_mode_set("on"), 0);
    assert_int_equal(repack_mode(), REPACK_ON);
    assert_true(repack_use(MS_TYPE_IQ1_S, 7168) && repack_use(MS_TYPE_IQ1_M, 256) && repack_use(MS_TYPE_IQ2_XXS, 2048));
    assert_false(repack_use(MS_TYPE_Q4_K, 7168));
    assert_false(repack_use(MS_TYPE_IQ1_S, 100));
    assert_int_equal(repack_mode_set("off"), 0);
    assert_false(repack_use(MS_TYPE_IQ1_S, 7168));
    repack_describe(line, sizeof line);
    assert_non_null(strstr(line, "--repack off"));
    assert_int_equal(repack_mode_set("auto"), 0);
    const bool fast = repack_fast(kern_get(), MS_TYPE_IQ1_S);
    if (!fast)
        assert_false(repack_use(MS_TYPE_IQ1_S, 7168));
    else
        (void)repack_use(MS_TYPE_IQ1_S, 7168); /* whichever the measurement chose */
    repack_describe(line, sizeof line);
    printf("MEASURE repack %s\n", line);
    assert_non_null(strstr(line, fast ? "measured" : "no repacked kernel"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_in_place),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_products),
        cmocka_unit_test(test_paths),
        cmocka_unit_test(test_policy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
