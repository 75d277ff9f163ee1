/* test_quantize.c - weight quantization (simd/quantize.c) against the
 * reference quantizer.
 *
 * - golden rows: for every output of ../shared/golden/quantize/ that has a
 *   rows/ file (the first 16 rows of expert 0 of blk.1.ffn_gate_exps.weight,
 *   as the reference wrote them), quantizing the same F32 rows of
 *   tiny-f32-legacy.gguf to that tensor's type (from hashes.json), with the
 *   importance matrix for the pure-* and ud-* outputs and without it for
 *   noimat-*, gives the same bytes;
 * - the golden importance matrix read from its GGUF and legacy .dat forms:
 *   same entries, metadata, and values (equal where the .dat's ncall is a
 *   power of two, else within IMATRIX_DAT_REL: the format stores
 *   (sum / count) * ncall, read back divided by ncall);
 * - the types that need an importance matrix write nothing without one;
 * - F32 rows that quantize to all-zero blocks stay finite (zero input).
 * Golden data missing is a failure, never a skip. */
#include <errno.h>
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
#include "imatrix_load.h"
#include "quant.h"
#include "quantize.h"
#include "golden.h"
#include "quantize_chunk.h"

#define ROWS 16
#define GATE "blk.1.ffn_gate_exps.weight"


static int type_by_name(const char *name)
{
    for (int t = 0; t < MS_TYPE_COUNT; ++t) {
        const quant_type_info *qi = quant_info(t);
        if (qi && !strcmp(qi->name, name)) return t;
    }
    return -1;
}

/* Importance weights of expert 0 of `name` from a GGUF imatrix: in_sum2 over
 * the rounded count, as the reference's loader does. */
static void imatrix_expert0(const char *name, float *w, int64_t n)
{
    char path[512], err[256], tn[256];
    snprintf(path, sizeof path, "%s/quantize/tiny-f32-legacy.imatrix.gguf", golden_dir());
    gguf_file *im = NULL;
    assert_int_equal(gguf_open(&im, path, err, sizeof err), 0);
    snprintf(tn, sizeof tn, "%s.in_sum2", name);
    const gguf_tensor *s = gguf_find_tensor(im, tn);
    snprintf(tn, sizeof tn, "%s.counts", name);
    const gguf_tensor *c = gguf_find_tensor(im, tn);
    assert_non_null(s);
    assert_non_null(c);
    float count;
    assert_int_equal(gguf_read(im, s->part, s->offset, w, (size_t)n * 4, err, sizeof err), 0);
    assert_int_equal(gguf_read(im, c->part, c->offset, &count, 4, err, sizeof err), 0);
    const long lc = lroundf(count);
    assert_true(lc > 0);
    for (int64_t i = 0; i < n; ++i) w[i] = w[i] / (float)lc;
    gguf_close(im);
}

static void test_golden_rows(void **state)
{
    (void)state;
    GOLDEN_REQUIRE();
    char path[512], err[256];
    assert_int_equal(quantize_init(), 0);
    snprintf(path, sizeof path, "%s/models/tiny-f32-legacy.gguf", golden_dir());
    gguf_file *g = NULL;
    if (gguf_open(&g, path, err, sizeof err)) fail_msg("%s", err);
    const gguf_tensor *t = gguf_find_tensor(g, GATE);
    assert_non_null(t);
    assert_int_equal(t->type, MS_TYPE_F32);
    const int64_t n = t->ne[0];
    float *x = malloc((size_t)(ROWS * n) * sizeof(float));
    float *w = malloc((size_t)n * sizeof(float));
    uint8_t *got = malloc((size_t)(ROWS * n) * 4), *want = malloc((size_t)(ROWS * n) * 4 + 1);
    assert_int_equal(gguf_read(g, t->part, t->offset, x, (size_t)(ROWS * n) * 4, err, sizeof err), 0);
    imatrix_expert0(GATE, w, n);

    snprintf(path, sizeof path, "%s/quantize/hashes.json", golden_dir());
    json_error_t je;
    json_t *h = json_load_file(path, 0, &je);
    if (!h) fail_msg("cannot read %s: %s", path, je.text);
    const char *out;
    json_t *tensors;
    int checked = 0, failed = 0;
    json_object_foreach(h, out, tensors) {
        char stem[128];
        snprintf(stem, sizeof stem, "%.*s", (int)(strlen(out) - 5), out); /* drop .gguf */
        snprintf(path, sizeof path, "%s/quantize/rows/%s.blk1-ffn_gate_exps-e0-rows0-15.bin", golden_dir(), stem);
        FILE *f = fopen(path, "rb");
        if (!f) fail_msg("missing %s", path);
        const size_t nwant = fread(want, 1, (size_t)(ROWS * n) * 4 + 1, f);
        fclose(f);
        const char *tname = json_string_value(json_object_get(json_object_get(tensors, GATE), "type"));
        assert_non_null(tname);
        const int type = type_by_name(tname);
        assert_true(type >= 0);
        const bool use_imatrix = strncmp(stem, "noimat-", 7) != 0;
        const size_t ngot = quantize_chunk(type, x, got, ROWS, n, use_imatrix ? w : NULL);
        ++checked;
        if (ngot != nwant || memcmp(got, want, nwant)) {
            size_t i = 0;
            while (i < nwant && i < ngot && got[i] == want[i]) ++i;
            const size_t rb = quant_row_bytes(type, n);
            print_error("%s (%s): %zu bytes, want %zu; first difference at byte %zu (row %zu): got %02x want %02x\n",
                        stem, tname, ngot, nwant, i, rb ? i / rb : 0, i < ngot ? got[i] : 0, i < nwant ? want[i] : 0);
            ++failed;
        }
    }
    print_message("golden rows: %d outputs checked, %d differ\n", checked, failed);
    assert_true(checked >= 29);
    assert_int_equal(failed, 0);
    json_decref(h);
    free(x);
    free(w);
    free(got);
    free(want);
    gguf_close(g);
}

/* (v / c) * ncall / ncall against v / c: two float roundings, 2^-23 each. */
#define IMATRIX_DAT_REL 3e-7

static void test_imatrix_formats(void **state)
{
    (void)state;
    GOLDEN_REQUIRE();
    char path[512], err[256];
    imatrix_data *a = NULL, *b = NULL;
    snprintf(path, sizeof path, "%s/quantize/tiny-f32-legacy.imatrix.gguf", golden_dir());
    if (imatrix_load(&a, path, err, sizeof err)) fail_msg("%s", err);
    snprintf(path, sizeof path, "%s/quantize/tiny-f32-legacy.imatrix.dat", golden_dir());
    if (imatrix_load(&b, path, err, sizeof err)) fail_msg("%s", err);
    assert_int_equal(a->n_entries, b->n_entries);
    assert_true(a->n_entries >= 40);
    assert_int_equal(a->chunk_count, 16);
    assert_int_equal(b->chunk_count, 16);
    assert_non_null(a->dataset);
    assert_non_null(b->dataset);
    assert_non_null(strstr(a->dataset, "calib"));
    assert_non_null(strstr(b->dataset, "calib"));
    int exact = 0, close = 0;
    for (size_t i = 0; i < a->n_entries; ++i) {
        const imatrix_entry *ea = &a->entries[i], *eb = imatrix_find(b, ea->name);
        if (!eb) fail_msg("%s missing from the .dat", ea->name);
        assert_int_equal(ea->n, eb->n);
        bool same = true;
        for (int64_t k = 0; k < ea->n; ++k) {
            const float x = ea->values[k], y = eb->values[k];
            if (x != y) same = false;
            if (!(fabsf(x - y) <= IMATRIX_DAT_REL * fabsf(x)))
                fail_msg("%s[%lld]: gguf %.9g, dat %.9g", ea->name, (long long)k, (double)x, (double)y);
        }
        if (!strstr(ea->name, "_exps")) {
            /* one matrix: ncall = 16 chunks, a power of two: exact */
            if (!same) fail_msg("%s: .dat values differ from the GGUF ones", ea->name);
        }
        same ? ++exact : ++close;
    }
    print_message("imatrix: %d entries equal, %d within %g\n", exact, close, IMATRIX_DAT_REL);
    assert_true(exact > 0);
    assert_null(imatrix_find(a, "no.such.weight"));
    imatrix_free(a);
    imatrix_free(b);
}

static void test_needs_imatrix(void **state)
{
    (void)state;
    float x[256];
    uint8_t out[256 * 4];
    for (int i = 0; i < 256; ++i) x[i] = sinf((float)i);
    assert_int_equal(quantize_init(), 0);
    const int need[] = {MS_TYPE_IQ1_S, MS_TYPE_IQ2_XXS, MS_TYPE_IQ2_XS};
    for (size_t i = 0; i < sizeof need / sizeof need[0]; ++i) {
        assert_true(quantize_needs_imatrix(need[i]));
        assert_int_equal(quantize_chunk(need[i], x, out, 1, 256, NULL), 0);
    }
    const int free_types[] = {MS_TYPE_IQ1_M, MS_TYPE_IQ2_S, MS_TYPE_IQ3_XXS, MS_TYPE_Q2_K, MS_TYPE_Q4_0};
    for (size_t i = 0; i < sizeof free_types / sizeof free_types[0]; ++i) {
        assert_false(quantize_needs_imatrix(free_types[i]));
        assert_int_equal(quantize_chunk(free_types[i], x, out, 1, 256, NULL), quant_row_bytes(free_types[i], 256));
    }
}

/* Every block type a model file may hold has its quantizer in the traits
 * table. */
static void test_traits_column(void **state)
{
    (void)state;
    int n = 0;
    for (int t = 0; t < MS_TYPE_COUNT; ++t) {
        const quant_type_info *qi = quant_info(t);
        if (!qi || !qi->in_files || qi->blck == 1) continue;
        if (!qi->quantize_row) fail_msg("%s: no quantize_row in the traits table", qi->name);
        assert_true(quantize_supported(t));
        ++n;
    }
    assert_int_equal(n, 19);
}

/* A zero row quantizes (the all-zero guards) and dequantizes back to zeros. */
static void test_zero_rows(void **state)
{
    (void)state;
    float x[256] = {0}, y[256], w[256];
    uint8_t out[256 * 4];
    for (int i = 0; i < 256; ++i) w[i] = 1.0f;
    assert_int_equal(quantize_init(), 0);
    for (int t = 0; t < MS_TYPE_COUNT; ++t) {
        const quant_type_info *qi = quant_info(t);
        if (!qi || !qi->in_files || !quantize_supported(t)) continue;
        assert_int_equal(quantize_chunk(t, x, out, 1, 256, w), quant_row_bytes(t, 256));
        assert_int_equal(quant_dequantize_row(t, out, y, 256), 0);
        for (int i = 0; i < 256; ++i)
            if (y[i] != 0.0f) fail_msg("%s: element %d of a zero row dequantizes to %g", qi->name, i, (double)y[i]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden_rows),
        cmocka_unit_test(test_imatrix_formats),
        cmocka_unit_test(test_needs_imatrix),
        cmocka_unit_test(test_traits_column),
        cmocka_unit_test(test_zero_rows),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
