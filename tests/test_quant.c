/* test_quant.c - the traits table (simd/quant_traits.c), the scalar
 * reference (simd/quant_ref.c) and the scalar kernel table
 * (simd/kern_scalar.c).
 *
 * - the traits table agrees with the block structs (sizeof, block length),
 *   with the golden dequant index (id, name, vector length) and with the
 *   tensor layout of the reference-written golden models (each tensor's
 *   bytes by the table = the gap to the next tensor);
 * - golden dequantization: for every entry of ../shared/golden/dequant/
 *   index.json (first rows of one tensor per type, dequantized by two
 *   independent references that agree bit for bit), our dequantization of the
 *   same bytes read through the GGUF reader must be equal bit for bit;
 * - activation quantization Q8_K / Q8_0 / Q8_1: known values (ties, zero
 *   block, sign of the max, multiply-by-127/amax rather than divide) and
 *   round-trip bounds on seeded random rows;
 * - F16 / BF16 conversions: every half value, every rounding midpoint;
 * - vec_dot_ref against dot(deq(w), deq(a)) in double for every weight type;
 * - quant_fill_random gives finite, varied values of the asked magnitude;
 * - the scalar kernel table is complete and its mul_mat equals vec_dot.
 * Golden data missing skips the golden test (tests/golden.h; a failure when
 * CI is set). */
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
#include <time.h>

#include <cmocka.h>

#include "gguf.h"
#include "kernels.h"
#include "quant.h"
#include "quant_blocks.h"
#include "quantize_chunk.h"
#include "golden.h"

/* |vec_dot_ref - exact dot of the dequantized operands| may be at most this
 * times sum |w_i * a_i|: the reference's float arithmetic is a product or two
 * per block term and about n/32 + 8 additions (block terms, Q3_K's lanes),
 * each off by at most 2^-24 of a partial sum bounded by sum |w_i * a_i|:
 * (1024/32 + 8 + 3) * 2^-24 ~ 2.6e-6 at n = 1024.  Observed: ~2e-8.
 * For Q4_1/Q5_1 the half rounding of Q8_1's s field is allowed on top. */
#define TOL_DOT_REL 3e-6

/* Every type the reference supports, with its block geometry and activation
 * type (DEEPSEEK-FACTS 5.1; Q4_1/Q5_0/Q5_1/Q8_1 from ggml's type_traits). */
static const struct {
    int type;
    const char *name;
    int blck, size, act;
    bool in_files;
} TYPES[] = {
    {MS_TYPE_F32, "F32", 1, 4, MS_TYPE_F32, true},
    {MS_TYPE_F16, "F16", 1, 2, MS_TYPE_F16, true},
    {MS_TYPE_BF16, "BF16", 1, 2, MS_TYPE_BF16, true},
    {MS_TYPE_Q4_0, "Q4_0", 32, 18, MS_TYPE_Q8_0, true},
    {MS_TYPE_Q4_1, "Q4_1", 32, 20, MS_TYPE_Q8_1, true},
    {MS_TYPE_Q5_0, "Q5_0", 32, 22, MS_TYPE_Q8_0, true},
    {MS_TYPE_Q5_1, "Q5_1", 32, 24, MS_TYPE_Q8_1, true},
    {MS_TYPE_Q8_0, "Q8_0", 32, 34, MS_TYPE_Q8_0, true},
    {MS_TYPE_Q8_1, "Q8_1", 32, 36, MS_TYPE_Q8_1, false},
    {MS_TYPE_Q2_K, "Q2_K", 256, 84, MS_TYPE_Q8_K, true},
    {MS_TYPE_Q3_K, "Q3_K", 256, 110, MS_TYPE_Q8_K, true},
    {MS_TYPE_Q4_K, "Q4_K", 256, 144, MS_TYPE_Q8_K, true},
    {MS_TYPE_Q5_K, "Q5_K", 256, 176, MS_TYPE_Q8_K, true},
    {MS_TYPE_Q6_K, "Q6_K", 256, 210, MS_TYPE_Q8_K, true},
    {MS_TYPE_Q8_K, "Q8_K", 256, 292, MS_TYPE_Q8_K, false},
    {MS_TYPE_IQ2_XXS, "IQ2_XXS", 256, 66, MS_TYPE_Q8_K, true},
    {MS_TYPE_IQ2_XS, "IQ2_XS", 256, 74, MS_TYPE_Q8_K, true},
    {MS_TYPE_IQ3_XXS, "IQ3_XXS", 256, 98, MS_TYPE_Q8_K, true},
    {MS_TYPE_IQ1_S, "IQ1_S", 256, 50, MS_TYPE_Q8_K, true},
    {MS_TYPE_IQ4_NL, "IQ4_NL", 32, 18, MS_TYPE_Q8_0, true},
    {MS_TYPE_IQ3_S, "IQ3_S", 256, 110, MS_TYPE_Q8_K, true},
    {MS_TYPE_IQ2_S, "IQ2_S", 256, 82, MS_TYPE_Q8_K, true},
    {MS_TYPE_IQ4_XS, "IQ4_XS", 256, 136, MS_TYPE_Q8_K, true},
    {MS_TYPE_IQ1_M, "IQ1_M", 256, 56, MS_TYPE_Q8_K, true},
};
#define N_TYPES (sizeof TYPES / sizeof TYPES[0])


static uint64_t rng_next(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

/* Uniform in [-1, 1). */
static float rng_unit(uint64_t *s) { return (float)((double)(rng_next(s) >> 11) / 4503599627370496.0 - 1.0); }

/* A row of n seeded values whose magnitude varies per 32-block (so blocks
 * have different scales) and which are not all equal. */
static void random_row(float *x, int64_t n, uint64_t *s)
{
    float blk_scale = 1.0f;
    for (int64_t i = 0; i < n; i++) {
        if (i % 32 == 0)
            blk_scale = ldexpf(1.0f, (int)(rng_next(s) % 9) - 4);
        x[i] = blk_scale * rng_unit(s);
    }
    int64_t distinct = 0;
    for (int64_t i = 1; i < n; i++)
        distinct += x[i] != x[0];
    assert_true(distinct > n / 2);
}

static uint32_t f2u(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static float u2f(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static float h2f(uint16_t h) { return quant_f16_to_f32(h); }

/* ---- the type table ---- */

static void test_type_table(void **state)
{
    (void)state;
    for (size_t k = 0; k < N_TYPES; k++) {
        const quant_type_info *ti = quant_info(TYPES[k].type);
        assert_non_null(ti);
        assert_string_equal(ti->name, TYPES[k].name);
        assert_int_equal(ti->blck, TYPES[k].blck);
        assert_int_equal(ti->type_size, TYPES[k].size);
        assert_int_equal(ti->act_type, TYPES[k].act);
        assert_int_equal(ti->in_files, TYPES[k].in_files);
        assert_int_equal(quant_row_bytes(TYPES[k].type, 7168),
                         (size_t)(7168 / TYPES[k].blck) * (size_t)TYPES[k].size);
        if (TYPES[k].blck > 1)
            assert_int_equal(quant_row_bytes(TYPES[k].type, TYPES[k].blck + 1), 0);
    }
    /* moestream's private repacked types (1000..): geometry only, mapped to
     * their plain type; the ids around them are unknown */
    for (int t = MS_TYPE_PRIVATE_BASE; t < MS_TYPE_PRIVATE_END; t++) {
        const quant_type_info *ti = quant_info(t);
        assert_non_null(ti);
        assert_true(ti->in_files && !ti->vec_dot && !ti->dequant && ti->blck == 256);
        const int plain = quant_private_plain(t);
        assert_true(plain >= 0 && plain < MS_TYPE_COUNT);
        assert_int_equal(quant_private_of(plain), t);
        assert_true(ti->type_size >= quant_info(plain)->type_size); /* 1.06x-1.18x */
        assert_true(4 * ti->type_size <= 5 * quant_info(plain)->type_size);
    }
    assert_int_equal(quant_private_plain(MS_TYPE_IQ1_S), -1);
    assert_int_equal(quant_private_of(MS_TYPE_Q4_K), -1);
    const int unknown[] = {-1, 4, 5, 24, 28, 31, MS_TYPE_COUNT, 999, MS_TYPE_PRIVATE_END};
    for (size_t k = 0; k < sizeof unknown / sizeof unknown[0]; k++) {
        assert_null(quant_info(unknown[k]));
        assert_int_equal(quant_row_bytes(unknown[k], 256), 0);
    }
    float f[32];
    uint8_t raw[64] = {0};
    assert_int_equal(quant_dequantize_row(4, raw, f, 32), -ENOTSUP);
}

/* ---- the traits table against the block structs and the golden files ---- */

/* Each type's block struct (quant_blocks.h), written out independently of
 * the table's rows so a row naming the wrong struct of the same size class
 * is caught by the golden checks below; a type added to the table without a
 * line here fails. */
static const struct {
    int type;
    size_t size;
    int blck;
} BLOCKS[] = {
    {MS_TYPE_F32, sizeof(float), 1},
    {MS_TYPE_F16, sizeof(uint16_t), 1},
    {MS_TYPE_BF16, sizeof(uint16_t), 1},
    {MS_TYPE_Q4_0, sizeof(block_q4_0), QK4_0},
    {MS_TYPE_Q4_1, sizeof(block_q4_1), QK4_1},
    {MS_TYPE_Q5_0, sizeof(block_q5_0), QK5_0},
    {MS_TYPE_Q5_1, sizeof(block_q5_1), QK5_1},
    {MS_TYPE_Q8_0, sizeof(block_q8_0), QK8_0},
    {MS_TYPE_Q8_1, sizeof(block_q8_1), QK8_1},
    {MS_TYPE_Q2_K, sizeof(block_q2_K), QK_K},
    {MS_TYPE_Q3_K, sizeof(block_q3_K), QK_K},
    {MS_TYPE_Q4_K, sizeof(block_q4_K), QK_K},
    {MS_TYPE_Q5_K, sizeof(block_q5_K), QK_K},
    {MS_TYPE_Q6_K, sizeof(block_q6_K), QK_K},
    {MS_TYPE_Q8_K, sizeof(block_q8_K), QK_K},
    {MS_TYPE_IQ2_XXS, sizeof(block_iq2_xxs), QK_K},
    {MS_TYPE_IQ2_XS, sizeof(block_iq2_xs), QK_K},
    {MS_TYPE_IQ2_S, sizeof(block_iq2_s), QK_K},
    {MS_TYPE_IQ3_XXS, sizeof(block_iq3_xxs), QK_K},
    {MS_TYPE_IQ3_S, sizeof(block_iq3_s), QK_K},
    {MS_TYPE_IQ1_S, sizeof(block_iq1_s), QK_K},
    {MS_TYPE_IQ1_M, sizeof(block_iq1_m), QK_K},
    {MS_TYPE_IQ4_NL, sizeof(block_iq4_nl), QK4_NL},
    {MS_TYPE_IQ4_XS, sizeof(block_iq4_xs), QK_K},
};

/* File types the golden data does not hold (neither a dequant vector nor a
 * tensor in a golden model); their geometry rests on the struct checks
 * alone.  Q8_1/Q8_K are activation-only and never in a file. */
static const int NO_GOLDEN[] = {MS_TYPE_Q4_1, MS_TYPE_Q5_0, MS_TYPE_Q5_1};

/* Checks every tensor of a GGUF written by the reference against the table:
 * consecutive tensors' data offsets are its byte size (blocks times
 * type_size) rounded up to the alignment, and the last one ends at the file
 * end within the alignment.  Counts the tensors checked per type. */
static void check_layout(const char *path, int counted[MS_TYPE_COUNT])
{
    char err[512];
    gguf_file *g = NULL;
    if (gguf_open(&g, path, err, sizeof err))
        fail_msg("%s", err);
    assert_int_equal(g->n_parts, 1);
    const uint64_t al = g->alignment, size = g->parts[0].size;
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const gguf_tensor *t = &g->tensors[i];
        /* the next tensor in the file: the least offset above this one */
        uint64_t next = size;
        bool last = true;
        for (uint64_t j = 0; j < g->n_tensors; j++)
            if (g->tensors[j].offset > t->offset && g->tensors[j].offset <= next) {
                next = g->tensors[j].offset;
                last = false;
            }
        const quant_type_info *ti = quant_info((int)t->type);
        assert_non_null(ti);
        uint64_t nel = 1;
        for (int d = 0; d < 4; d++)
            nel *= (uint64_t)t->ne[d];
        const uint64_t bytes = nel / (uint64_t)ti->blck * (uint64_t)ti->type_size;
        const uint64_t padded = (bytes + al - 1) / al * al;
        const bool ok = last ? next - t->offset >= bytes && next - t->offset <= padded
                             : next - t->offset == padded;
        if (!ok)
            fail_msg("%s: tensor %s (%s, %llu elements): %llu bytes by the table, the file gives "
                     "it %llu", path, t->name, ti->name, (unsigned long long)nel,
                     (unsigned long long)bytes, (unsigned long long)(next - t->offset));
        counted[t->type]++;
    }
    gguf_close(g);
}

static void test_traits_agree(void **state)
{
    (void)state;
    /* table <-> block structs */
    int listed = 0;
    for (int type = 0; type < MS_TYPE_COUNT; type++) {
        const quant_type_info *ti = quant_info(type);
        if (!ti)
            continue;
        size_t k = 0;
        while (k < sizeof BLOCKS / sizeof BLOCKS[0] && BLOCKS[k].type != type)
            k++;
        if (k == sizeof BLOCKS / sizeof BLOCKS[0])
            fail_msg("type %s (%d) is in the traits table but has no block struct here", ti->name, type);
        listed++;
        if ((size_t)ti->type_size != BLOCKS[k].size || ti->blck != BLOCKS[k].blck)
            fail_msg("%s: table says %d elements in %d bytes, the block struct %d in %zu", ti->name,
                     ti->blck, ti->type_size, BLOCKS[k].blck, BLOCKS[k].size);
        /* a row that splits into weight blocks splits into activation blocks */
        const quant_type_info *at = quant_info(ti->act_type);
        assert_non_null(at);
        assert_int_equal(at->blck, ti->blck);
        /* the columns the scalar kernel table is made from */
        assert_non_null(ti->dequant);
        assert_non_null(at->from_float);
        if (ti->in_files != (ti->vec_dot != NULL))
            fail_msg("%s: a file type needs a vec_dot, an activation-only type has none", ti->name);
        assert_int_equal(quant_order_by_cols(type), ti->mul_mat != NULL);
    }
    assert_int_equal(listed, (int)(sizeof BLOCKS / sizeof BLOCKS[0]));

    /* table <-> golden dequant vectors and the reference-written models
     * (without the golden set the checks above still ran; the test then
     * counts as skipped) */
    GOLDEN_REQUIRE();
    int counted[MS_TYPE_COUNT] = {0}, dequant[MS_TYPE_COUNT] = {0};
    char path[1024];
    snprintf(path, sizeof path, "%s/dequant/index.json", golden_dir());
    json_error_t je;
    json_t *idx = json_load_file(path, 0, &je);
    if (!idx)
        fail_msg("cannot read %s: %s (set MOESTREAM_GOLDEN)", path, je.text);
    const char *models[16];
    size_t n_models = 0;
    for (size_t k = 0; k < json_array_size(idx); k++) {
        json_t *e = json_array_get(idx, k);
        const char *tname = json_string_value(json_object_get(e, "type"));
        const char *model = json_string_value(json_object_get(e, "model"));
        const char *file = json_string_value(json_object_get(e, "file"));
        const int type = (int)json_integer_value(json_object_get(e, "ggml_type_id"));
        const int64_t values = json_integer_value(json_object_get(e, "values"));
        const int64_t row_len = json_integer_value(json_object_get(e, "row_length"));
        assert_true(tname && model && file);
        const quant_type_info *ti = quant_info(type);
        if (!ti || strcmp(ti->name, tname) || !ti->in_files)
            fail_msg("golden type %s is id %d; the table has %s there", tname, type, ti ? ti->name : "nothing");
        assert_int_equal(row_len % ti->blck, 0);
        snprintf(path, sizeof path, "%s/dequant/%s", golden_dir(), file);
        FILE *f = fopen(path, "rb");
        if (!f)
            fail_msg("cannot open %s", path);
        assert_int_equal(fseek(f, 0, SEEK_END), 0);
        assert_int_equal(ftell(f), values * 4);
        fclose(f);
        dequant[type]++;
        size_t m = 0;
        while (m < n_models && strcmp(models[m], model))
            m++;
        if (m == n_models) {
            assert_true(n_models < sizeof models / sizeof models[0]);
            models[n_models++] = model;
        }
    }
    for (size_t m = 0; m < n_models; m++) {
        snprintf(path, sizeof path, "%s/models/%s", golden_dir(), models[m]);
        check_layout(path, counted);
    }
    snprintf(path, sizeof path, "%s/models/tiny-f32-legacy.gguf", golden_dir());
    check_layout(path, counted);
    json_decref(idx);

    /* every file type is covered by golden data or named as not */
    for (int type = 0; type < MS_TYPE_COUNT; type++) {
        const quant_type_info *ti = quant_info(type);
        if (!ti || !ti->in_files)
            continue;
        bool exempt = false;
        for (size_t k = 0; k < sizeof NO_GOLDEN / sizeof NO_GOLDEN[0]; k++)
            exempt |= NO_GOLDEN[k] == type;
        printf("MEASURE traits %-8s %3d B / %3d: %d golden dequant vector(s), %d golden tensor layout(s)%s\n",
               ti->name, ti->type_size, ti->blck, dequant[type], counted[type],
               exempt ? " (no golden data: struct checks only)" : "");
        if (exempt)
            assert_true(dequant[type] == 0 && counted[type] == 0); /* else take it off NO_GOLDEN */
        else if (counted[type] == 0)
            fail_msg("%s: no tensor of this type in the golden models checks its size", ti->name);
    }
}

/* ---- golden dequantization ---- */

static void test_golden_dequant(void **state)
{
    (void)state;
    GOLDEN_REQUIRE();
    char path[1024], err[512];
    snprintf(path, sizeof path, "%s/dequant/index.json", golden_dir());
    json_error_t je;
    json_t *idx = json_load_file(path, 0, &je);
    if (!idx)
        fail_msg("cannot read %s: %s (set MOESTREAM_GOLDEN)", path, je.text);
    size_t n_types = json_array_size(idx);
    assert_true(n_types >= 18);
    int bad_types = 0;
    for (size_t k = 0; k < n_types; k++) {
        json_t *e = json_array_get(idx, k);
        const char *model = json_string_value(json_object_get(e, "model"));
        const char *tensor = json_string_value(json_object_get(e, "tensor"));
        const char *file = json_string_value(json_object_get(e, "file"));
        const char *tname = json_string_value(json_object_get(e, "type"));
        if (!model || !tensor || !file || !tname)
            fail_msg("%s: entry %zu lacks model/tensor/file/type", path, k);
        int type = (int)json_integer_value(json_object_get(e, "ggml_type_id"));
        int64_t values = json_integer_value(json_object_get(e, "values"));
        int64_t row_len = json_integer_value(json_object_get(e, "row_length"));
        int64_t rows = json_integer_value(json_object_get(e, "rows"));
        int64_t boff = json_integer_value(json_object_get(e, "byte_offset_in_tensor"));
        assert_int_equal(values, row_len * rows);
        const quant_type_info *ti = quant_info(type);
        if (!ti)
            fail_msg("golden type %s (id %d) unsupported", tname, type);
        assert_string_equal(ti->name, tname);

        snprintf(path, sizeof path, "%s/models/%s", golden_dir(), model);
        gguf_file *g = NULL;
        if (gguf_open(&g, path, err, sizeof err))
            fail_msg("%s", err);
        const gguf_tensor *t = gguf_find_tensor(g, tensor);
        if (!t)
            fail_msg("%s: no tensor %s", path, tensor);
        assert_int_equal((int)t->type, type);
        assert_int_equal(t->ne[0], row_len);
        size_t nb = quant_row_bytes(type, values);
        assert_true(nb > 0 && (uint64_t)boff + nb <= t->nbytes);
        uint8_t *raw = malloc(nb);
        float *got = malloc((size_t)values * 4), *want = malloc((size_t)values * 4);
        assert_true(raw && got && want);
        if (gguf_read(g, t->part, t->offset + (uint64_t)boff, raw, nb, err, sizeof err))
            fail_msg("%s", err);
        /* Row by row, as the engine does. */
        const size_t rb = quant_row_bytes(type, row_len);
        for (int64_t r = 0; r < rows; r++)
            assert_int_equal(quant_dequantize_row(type, raw + (size_t)r * rb, got + r * row_len, row_len), 0);
        snprintf(path, sizeof path, "%s/dequant/%s", golden_dir(), file);
        FILE *f = fopen(path, "rb");
        if (!f)
            fail_msg("cannot open %s", path);
        assert_int_equal(fread(want, 4, (size_t)values, f), (size_t)values);
        fclose(f);
        int64_t nbad = 0, shown = 0;
        for (int64_t i = 0; i < values; i++)
            if (f2u(got[i]) != f2u(want[i])) {
                if (shown++ < 5)
                    printf("  %s index %lld: got %.9g (0x%08x) want %.9g (0x%08x)\n", tname,
                           (long long)i, (double)got[i], f2u(got[i]), (double)want[i], f2u(want[i]));
                nbad++;
            }
        printf("MEASURE dequant %-8s %s %s: %lld/%lld values bit-exact%s\n", tname, model, tensor,
               (long long)(values - nbad), (long long)values, nbad ? "  <-- MISMATCH" : "");
        bad_types += nbad != 0;
        free(raw);
        free(got);
        free(want);
        gguf_close(g);
    }
    json_decref(idx);
    assert_int_equal(bad_types, 0);
}

/* ---- Q8_K ---- */

static void test_q8_K_known(void **state)
{
    (void)state;
    float x[QK_K];
    block_q8_K q;

    /* Negative max -127: iscale = -127/max = 1 exactly, so q = round(x) with
     * the reference's half-to-even (1.5*2^23 trick). */
    memset(x, 0, sizeof x);
    const float in[] = {-127.0f, 0.5f, 1.5f, 2.5f, -0.5f, -1.5f, -2.5f, 126.5f, 3.49f, -3.51f, 127.0f};
    const int want[] = {-127, 0, 2, 2, 0, -2, -2, 126, 3, -4, 127};
    for (size_t i = 0; i < sizeof in / sizeof in[0]; i++)
        x[i] = in[i];
    quant_quantize_row(MS_TYPE_Q8_K, x, &q, QK_K);
    assert_true(q.d == 1.0f);
    for (size_t i = 0; i < sizeof in / sizeof in[0]; i++)
        if (q.qs[i] != want[i])
            fail_msg("Q8_K tie case %zu: x=%g got %d want %d", i, (double)in[i], q.qs[i], want[i]);
    for (int j = 0; j < QK_K / 16; j++) {
        int sum = 0;
        for (int i = 0; i < 16; i++)
            sum += q.qs[16 * j + i];
        assert_int_equal(q.bsums[j], sum);
    }

    /* Positive max: the sign is kept, so d is negative and the max element
     * becomes -127 (d * -127 = max). */
    memset(x, 0, sizeof x);
    x[5] = 2.0f;
    x[6] = -1.0f;
    x[7] = 1.0f;
    quant_quantize_row(MS_TYPE_Q8_K, x, &q, QK_K);
    assert_true(q.d == 1.0f / (-127.0f / 2.0f));
    assert_true(q.d < 0);
    assert_int_equal(q.qs[5], -127);
    assert_int_equal(q.qs[6], 64);  /* 63.5 -> 64 (even) */
    assert_int_equal(q.qs[7], -64); /* -63.5 -> -64 (even) */
    assert_int_equal(q.bsums[0], -127);

    /* Equal magnitudes: the first one found sets the sign. */
    memset(x, 0, sizeof x);
    x[3] = 4.0f;
    x[9] = -4.0f;
    quant_quantize_row(MS_TYPE_Q8_K, x, &q, QK_K);
    assert_int_equal(q.qs[3], -127);
    assert_int_equal(q.qs[9], 127);

    /* Zero block: d = 0, all q and bsums 0; a second block is independent. */
    float x2[2 * QK_K];
    memset(x2, 0, sizeof x2);
    x2[QK_K + 1] = -3.0f;
    block_q8_K q2[2];
    memset(q2, 0x55, sizeof q2);
    quant_quantize_row(MS_TYPE_Q8_K, x2, q2, 2 * QK_K);
    assert_true(q2[0].d == 0.0f);
    for (int i = 0; i < QK_K; i++)
        assert_int_equal(q2[0].qs[i], 0);
    for (int j = 0; j < QK_K / 16; j++)
        assert_int_equal(q2[0].bsums[j], 0);
    assert_int_equal(q2[1].qs[1], -127);
    assert_true(q2[1].d == 1.0f / (-127.0f / -3.0f));
}

static void test_q8_K_roundtrip(void **state)
{
    (void)state;
    const int64_t n = 4 * QK_K;
    float x[4 * QK_K], y[4 * QK_K];
    block_q8_K q[4];
    uint64_t s = 0x1234567;
    for (int rep = 0; rep < 50; rep++) {
        random_row(x, n, &s);
        quant_quantize_row(MS_TYPE_Q8_K, x, q, n);
        assert_int_equal(quant_dequantize_row(MS_TYPE_Q8_K, q, y, n), 0);
        for (int b = 0; b < 4; b++) {
            float amax = 0;
            int imax = 0;
            for (int i = 0; i < QK_K; i++)
                if (fabsf(x[b * QK_K + i]) > amax) {
                    amax = fabsf(x[b * QK_K + i]);
                    imax = i;
                }
            assert_int_equal(q[b].qs[imax], -127);
            const double bound = 0.5 * fabs((double)q[b].d) * (1 + 1e-5);
            for (int i = 0; i < QK_K; i++) {
                const double err = fabs((double)y[b * QK_K + i] - (double)x[b * QK_K + i]);
                if (err > bound)
                    fail_msg("Q8_K block %d index %d: x=%.9g deq=%.9g err %.3g > %.3g", b, i,
                             (double)x[b * QK_K + i], (double)y[b * QK_K + i], err, bound);
            }
            for (int j = 0; j < QK_K / 16; j++) {
                int sum = 0;
                for (int i = 0; i < 16; i++)
                    sum += q[b].qs[16 * j + i];
                assert_int_equal(q[b].bsums[j], sum);
            }
        }
    }
}

/* ---- Q8_0 / Q8_1 ---- */

static void test_q8_0_known(void **state)
{
    (void)state;
    float x[32];
    block_q8_0 q;
    /* amax 127: id = 127/127 = 1, so q = x rounded half to even (the x86
     * _mm256_round_ps path), not half away from zero (the scalar roundf). */
    memset(x, 0, sizeof x);
    const float in[] = {127.0f, 0.5f, 1.5f, 2.5f, -0.5f, -1.5f, -2.5f, -126.5f, 3.5f};
    const int want[] = {127, 0, 2, 2, 0, -2, -2, -126, 4};
    for (size_t i = 0; i < sizeof in / sizeof in[0]; i++)
        x[i] = in[i];
    quant_quantize_row(MS_TYPE_Q8_0, x, &q, 32);
    assert_int_equal(q.d, quant_f32_to_f16(1.0f));
    for (size_t i = 0; i < sizeof in / sizeof in[0]; i++)
        if (q.qs[i] != want[i])
            fail_msg("Q8_0 tie case %zu: x=%g got %d want %d", i, (double)in[i], q.qs[i], want[i]);

    /* amax 3 (from a negative element: d stays positive, that element maps
     * to -127): the x86 path multiplies by id = 127/amax = 42.333332f.
     * x = 0x1.0a1428p-3: x*id = 5.49999952 -> 5, whereas x/(amax/127) = 5.5
     * would round to 6; x = 0x1.fbf7fp-3: x*id = 10.5 exactly -> 10 (even). */
    memset(x, 0, sizeof x);
    x[0] = -3.0f;
    x[1] = 0x1.0a1428p-3f;
    x[2] = 0x1.fbf7fp-3f;
    x[3] = -0x1.fbf7fp-3f;
    quant_quantize_row(MS_TYPE_Q8_0, x, &q, 32);
    assert_int_equal(q.d, quant_f32_to_f16(3.0f / 127.0f));
    assert_true(h2f(q.d) > 0);
    assert_int_equal(q.qs[0], -127);
    assert_int_equal(q.qs[1], 5);
    assert_true(roundf(x[1] / (3.0f / 127.0f)) == 6.0f); /* why this case matters */
    assert_int_equal(q.qs[2], 10);
    assert_int_equal(q.qs[3], -10);

    /* Zero block. */
    memset(x, 0, sizeof x);
    memset(&q, 0x55, sizeof q);
    quant_quantize_row(MS_TYPE_Q8_0, x, &q, 32);
    assert_int_equal(q.d, 0);
    for (int i = 0; i < 32; i++)
        assert_int_equal(q.qs[i], 0);

    /* Q8_1: the same d and q, plus s = half(d * sum(q)). */
    for (int i = 0; i < 32; i++)
        x[i] = (float)(i - 10) * 0.25f;
    block_q8_1 q1;
    quant_quantize_row(MS_TYPE_Q8_0, x, &q, 32);
    quant_quantize_row(MS_TYPE_Q8_1, x, &q1, 32);
    assert_int_equal(q1.d, q.d);
    assert_memory_equal(q1.qs, q.qs, 32);
    int sum = 0;
    for (int i = 0; i < 32; i++)
        sum += q1.qs[i];
    assert_int_equal(q1.s, quant_f32_to_f16((5.25f / 127.0f) * (float)sum));
}

static void test_q8_0_roundtrip(void **state)
{
    (void)state;
    const int64_t n = 1024;
    float x[1024], y[1024];
    block_q8_0 q[1024 / 32];
    uint64_t s = 0xabcdef;
    for (int rep = 0; rep < 50; rep++) {
        random_row(x, n, &s);
        quant_quantize_row(MS_TYPE_Q8_0, x, q, n);
        assert_int_equal(quant_dequantize_row(MS_TYPE_Q8_0, q, y, n), 0);
        for (int b = 0; b < n / 32; b++) {
            float amax = 0;
            for (int i = 0; i < 32; i++)
                amax = fmaxf(amax, fabsf(x[32 * b + i]));
            assert_int_equal(q[b].d, quant_f32_to_f16(amax / 127.0f));
            /* Rounding of q (half a step) plus d's half rounding (2^-11
             * relative) times |q| <= 127. */
            const double d = (double)amax / 127.0;
            const double bound = 0.5 * d + 127.0 * d * 0x1p-11 + 1e-12;
            for (int i = 0; i < 32; i++) {
                const double err = fabs((double)y[32 * b + i] - (double)x[32 * b + i]);
                if (err > bound)
                    fail_msg("Q8_0 block %d index %d: x=%.9g deq=%.9g err %.3g > %.3g", b, i,
                             (double)x[32 * b + i], (double)y[32 * b + i], err, bound);
                assert_true(q[b].qs[i] >= -127 && q[b].qs[i] <= 127);
            }
        }
    }
}

/* Q4_0 as the latent cache's q4_0 stores it (simd/quantize.c without an
 * importance matrix): the reference's rounding on a known block
 * - x_j = (j - 16) / 4, largest magnitude -4 -> d = 0.5, q_j = trunc(j/2 +
 * 0.5) with 16 clamped to 15 - and error bounds on seeded random rows. */
static void test_q4_0_cache_rounding(void **state)
{
    (void)state;
    float x[32];
    block_q4_0 q;
    for (int j = 0; j < 32; j++)
        x[j] = (float)(j - 16) * 0.25f;
    quantize_chunk(MS_TYPE_Q4_0, x, &q, 1, 32, NULL);
    assert_int_equal(q.d, quant_f32_to_f16(0.5f));
    for (int j = 0; j < 32; j++) {
        int want = (j + 1) / 2 < 15 ? (j + 1) / 2 : 15;
        int got = j < 16 ? q.qs[j] & 15 : q.qs[j - 16] >> 4;
        if (got != want)
            fail_msg("Q4_0 known block index %d: q=%d want %d", j, got, want);
    }
    const int64_t n = 1024;
    float xr[1024], yr[1024];
    block_q4_0 qr[1024 / 32];
    uint64_t s = 0x4040;
    for (int rep = 0; rep < 50; rep++) {
        random_row(xr, n, &s);
        quantize_chunk(MS_TYPE_Q4_0, xr, qr, 1, n, NULL);
        assert_int_equal(quant_dequantize_row(MS_TYPE_Q4_0, qr, yr, n), 0);
        for (int b = 0; b < n / 32; b++) {
            float amax = 0;
            for (int i = 0; i < 32; i++)
                amax = fmaxf(amax, fabsf(xr[32 * b + i]));
            /* half a step, a whole one where +8 clamps to 7, plus d's half
             * rounding (2^-11 relative) times |q - 8| <= 8 */
            const double d = (double)amax / 8.0;
            for (int i = 0; i < 32; i++) {
                const int qi = i < 16 ? qr[b].qs[i] & 15 : qr[b].qs[i - 16] >> 4;
                const double bound = (qi == 15 ? 1.0 : 0.5) * d + 8.0 * d * 0x1p-11 + 1e-12;
                const double err = fabs((double)yr[32 * b + i] - (double)xr[32 * b + i]);
                if (err > bound)
                    fail_msg("Q4_0 block %d index %d: x=%.9g deq=%.9g err %.3g > %.3g", b, i,
                             (double)xr[32 * b + i], (double)yr[32 * b + i], err, bound);
            }
        }
    }
}

/* ---- F16 / BF16 ---- */

/* An independent decoding of a half: (-1)^s * m * 2^(e-25) (+ implicit bit). */
static float f16_ref(uint16_t h)
{
    const int s = h >> 15, e = (h >> 10) & 31, m = h & 1023;
    float v;
    if (e == 31)
        v = m ? NAN : INFINITY;
    else if (e == 0)
        v = ldexpf((float)m, -24);
    else
        v = ldexpf((float)(m | 1024), e - 25);
    return s ? -v : v;
}

static void test_f16(void **state)
{
    (void)state;
    /* Every half decodes exactly and encodes back to itself; NaNs stay NaN. */
    for (uint32_t h = 0; h < 65536; h++) {
        const float f = quant_f16_to_f32((uint16_t)h), r = f16_ref((uint16_t)h);
        if (isnan(r)) {
            assert_true(isnan(f));
            assert_true(isnan(quant_f16_to_f32(quant_f32_to_f16(f))));
            continue;
        }
        if (f2u(f) != f2u(r))
            fail_msg("f16 0x%04x: got %.9g want %.9g", h, (double)f, (double)r);
        if (quant_f32_to_f16(f) != h)
            fail_msg("f16 round trip 0x%04x: got 0x%04x", h, quant_f32_to_f16(f));
    }
    /* Every rounding midpoint between adjacent positive halves (subnormals,
     * normals, up to the overflow threshold 65520) rounds to the even
     * neighbour; one float either side rounds to the nearer one.  Negative
     * values mirror. */
    for (uint32_t h = 0; h < 0x7c00; h++) {
        const float lo = f16_ref((uint16_t)h), hi = h + 1 < 0x7c00 ? f16_ref((uint16_t)(h + 1)) : 65536.0f;
        const float mid = (lo + hi) * 0.5f; /* exact: a half has 11 significant bits */
        const uint16_t even = (h & 1) ? (uint16_t)(h + 1) : (uint16_t)h;
        if (quant_f32_to_f16(mid) != even)
            fail_msg("f16 tie above 0x%04x (%.9g): got 0x%04x want 0x%04x", h, (double)mid,
                     quant_f32_to_f16(mid), even);
        if (quant_f32_to_f16(-mid) != (0x8000 | even))
            fail_msg("f16 tie -%.9g: got 0x%04x", (double)mid, quant_f32_to_f16(-mid));
        assert_int_equal(quant_f32_to_f16(nextafterf(mid, 0)), h);
        assert_int_equal(quant_f32_to_f16(nextafterf(mid, INFINITY)), h + 1);
    }
    /* Named edge values. */
    assert_int_equal(quant_f32_to_f16(0.0f), 0x0000);
    assert_int_equal(quant_f32_to_f16(-0.0f), 0x8000);
    assert_int_equal(quant_f32_to_f16(1.0f), 0x3c00);
    assert_int_equal(quant_f32_to_f16(65504.0f), 0x7bff);
    assert_int_equal(quant_f32_to_f16(65519.996f), 0x7bff);
    assert_int_equal(quant_f32_to_f16(65520.0f), 0x7c00); /* tie to even = inf */
    assert_int_equal(quant_f32_to_f16(1e10f), 0x7c00);
    assert_int_equal(quant_f32_to_f16(-1e10f), 0xfc00);
    assert_int_equal(quant_f32_to_f16(INFINITY), 0x7c00);
    assert_int_equal(quant_f32_to_f16(-INFINITY), 0xfc00);
    assert_int_equal(quant_f32_to_f16(0x1p-24f), 0x0001);           /* smallest subnormal */
    assert_int_equal(quant_f32_to_f16(0x1p-25f), 0x0000);           /* tie to even: 0 */
    assert_int_equal(quant_f32_to_f16(0x1.000002p-25f), 0x0001);    /* just above the tie */
    assert_int_equal(quant_f32_to_f16(0x1.8p-24f), 0x0002);         /* 1.5 ulp: tie to even 2 */
    assert_int_equal(quant_f32_to_f16(0x1p-14f), 0x0400);           /* smallest normal */
    assert_int_equal(quant_f32_to_f16(0x1.ff8p-15f), 0x03ff);       /* largest subnormal */
    assert_int_equal(quant_f32_to_f16(0x1.ffcp-15f), 0x0400);       /* tie: up into normal */
    assert_int_equal(quant_f32_to_f16(1.0f + 0x1p-11f), 0x3c00);    /* tie to even */
    assert_int_equal(quant_f32_to_f16(1.0f + 0x3p-11f), 0x3c02);    /* tie to even */
    assert_int_equal(quant_f32_to_f16(u2f(0x00000001)), 0x0000);    /* f32 subnormal */
    assert_int_equal(quant_f32_to_f16(u2f(0x80000001)), 0x8000);
    /* NaN: quiet, sign and top payload bits kept (F16C behaviour). */
    assert_int_equal(quant_f32_to_f16(u2f(0x7fc00000)), 0x7e00);
    assert_int_equal(quant_f32_to_f16(u2f(0xffc00000)), 0xfe00);
    assert_int_equal(quant_f32_to_f16(u2f(0x7f800001)), 0x7e00); /* signalling -> quiet */
    assert_int_equal(quant_f32_to_f16(u2f(0x7fa02000)), 0x7f01);
}

static void test_bf16(void **state)
{
    (void)state;
    for (uint32_t h = 0; h < 65536; h++) {
        const float f = quant_bf16_to_f32((uint16_t)h);
        assert_int_equal(f2u(f), h << 16);
        if (isnan(f))
            assert_true(isnan(quant_bf16_to_f32(quant_f32_to_bf16(f))));
        else
            assert_int_equal(quant_f32_to_bf16(f), h);
    }
    /* Ties (low 16 bits 0x8000) round to even; anything above rounds up. */
    assert_int_equal(quant_f32_to_bf16(u2f(0x3f808000)), 0x3f80);
    assert_int_equal(quant_f32_to_bf16(u2f(0x3f818000)), 0x3f82);
    assert_int_equal(quant_f32_to_bf16(u2f(0x3f808001)), 0x3f81);
    assert_int_equal(quant_f32_to_bf16(u2f(0x3f807fff)), 0x3f80);
    assert_int_equal(quant_f32_to_bf16(u2f(0xbf818000)), 0xbf82);
    assert_int_equal(quant_f32_to_bf16(u2f(0x00008000)), 0x0000); /* subnormal tie */
    assert_int_equal(quant_f32_to_bf16(u2f(0x00018000)), 0x0002);
    assert_int_equal(quant_f32_to_bf16(u2f(0x7f7f8000)), 0x7f80); /* overflow to inf */
    assert_int_equal(quant_f32_to_bf16(INFINITY), 0x7f80);
    assert_int_equal(quant_f32_to_bf16(-INFINITY), 0xff80);
    assert_int_equal(quant_f32_to_bf16(-0.0f), 0x8000);
    /* NaN: truncated and forced quiet (ggml_compute_fp32_to_bf16). */
    assert_int_equal(quant_f32_to_bf16(u2f(0x7f800001)), 0x7fc0);
    assert_int_equal(quant_f32_to_bf16(u2f(0xff810000)), 0xffc1);
    assert_int_equal(quant_f32_to_bf16(u2f(0x7fffffff)), 0x7fff);
}

/* ---- dot products ---- */

static void test_vec_dot_vs_dequant(void **state)
{
    (void)state;
    const int64_t n = 1024;
    float *x = malloc((size_t)n * 4), *wf = malloc((size_t)n * 4), *af = malloc((size_t)n * 4);
    uint8_t *w = malloc(quant_row_bytes(MS_TYPE_F32, n)), *a = malloc(quant_row_bytes(MS_TYPE_F32, n));
    assert_true(x && wf && af && w && a);
    uint64_t s = 0x5eed;
    double worst_all = 0;
    for (size_t k = 0; k < N_TYPES; k++) {
        const int type = TYPES[k].type, at = TYPES[k].act;
        if (!TYPES[k].in_files)
            continue;
        const int64_t nblocks = n / TYPES[k].blck;
        double worst = 0;
        for (int rep = 0; rep < 20; rep++) {
            quant_fill_random(type, w, nblocks, &s, 1.0f);
            random_row(x, n, &s);
            quant_quantize_row(at, x, a, n);
            assert_int_equal(quant_dequantize_row(type, w, wf, n), 0);
            assert_int_equal(quant_dequantize_row(at, a, af, n), 0);
            double exact = 0, mag = 0;
            int64_t distinct = 0;
            for (int64_t i = 0; i < n; i++) {
                exact += (double)wf[i] * (double)af[i];
                mag += fabs((double)wf[i] * (double)af[i]);
                distinct += wf[i] != wf[0];
            }
            assert_true(distinct > n / 8); /* non-degenerate weights */
            assert_true(mag > 0);
            /* Q8_1 carries s = half(d * sum(q)) and Q4_1/Q5_1 dots use it for
             * the min term, so that half rounding is part of the format: */
            double s_err = 0;
            if (at == MS_TYPE_Q8_1)
                for (int64_t b = 0; b < n / 32; b++) {
                    const block_q8_1 *ab = (const block_q8_1 *)a + b;
                    uint16_t mh; /* Q4_1 and Q5_1 both start with d, m */
                    memcpy(&mh, w + (size_t)b * (size_t)TYPES[k].size + 2, 2);
                    int sum = 0;
                    for (int i = 0; i < 32; i++)
                        sum += ab->qs[i];
                    s_err += fabs((double)h2f(mh)) *
                             fabs((double)h2f(ab->s) - (double)h2f(ab->d) * sum);
                }
            float got = NAN;
            quant_vec_dot_ref(type, n, &got, w, a);
            const double diff = fabs((double)got - exact), rel = diff / mag;
            if (!(diff <= s_err + TOL_DOT_REL * mag))
                fail_msg("%s rep %d: vec_dot %.9g, dot of dequantized %.9g (|diff|/sum|w*a| = %.3g > "
                         "%g + s allowance %.3g)",
                         TYPES[k].name, rep, (double)got, exact, rel, TOL_DOT_REL, s_err / mag);
            worst = fmax(worst, rel);
        }
        printf("MEASURE vec_dot %-8s x %-4s: max |ref - exact| / sum|w*a| = %.2e (tolerance %g%s)\n",
               TYPES[k].name, quant_info(at)->name, worst, TOL_DOT_REL,
               at == MS_TYPE_Q8_1 ? " + Q8_1 s rounding" : "");
        worst_all = fmax(worst_all, worst);
    }
    assert_true(worst_all > 0); /* the float sums do round somewhere: the check is live */
    free(x);
    free(wf);
    free(af);
    free(w);
    free(a);
}

/* The sign and scale conventions of a few types on hand-made blocks, so an
 * error shared by dequant and vec_dot cannot hide: IQ1_S with all-zero
 * grid index 0 and a negative delta, Q4_0 with known nibbles. */
static void test_vec_dot_known(void **state)
{
    (void)state;
    /* Q4_0 x Q8_0: w = d*(nibble-8); a = Q8_0(all ones) = 127 * d_a. */
    block_q4_0 w0;
    w0.d = quant_f32_to_f16(0.5f);
    for (int j = 0; j < 16; j++)
        w0.qs[j] = (uint8_t)((j & 0xF) | (((15 - j) & 0xF) << 4));
    float x[32];
    for (int i = 0; i < 32; i++)
        x[i] = 1.0f;
    block_q8_0 a0;
    quant_quantize_row(MS_TYPE_Q8_0, x, &a0, 32);
    float got;
    quant_vec_dot_ref(MS_TYPE_Q4_0, 32, &got, &w0, &a0);
    /* sum of (nibble - 8) over 0..15 twice = 2 * (120 - 128) = -16. */
    const float want = (float)(-16 * 127) * (0.5f * h2f(a0.d));
    assert_true(got == want);
}

/* ---- random blocks ---- */

static void test_fill_random(void **state)
{
    (void)state;
    uint64_t s = 42;
    for (size_t k = 0; k < N_TYPES; k++) {
        if (!TYPES[k].in_files)
            continue;
        const int type = TYPES[k].type;
        const int64_t n = 64 * 256, nblocks = n / TYPES[k].blck;
        uint8_t *buf = malloc(quant_row_bytes(type, n));
        float *y = malloc((size_t)n * 4);
        const float scales[] = {1.0f, 0.02f};
        for (int si = 0; si < 2; si++) {
            quant_fill_random(type, buf, nblocks, &s, scales[si]);
            assert_int_equal(quant_dequantize_row(type, buf, y, n), 0);
            double amax = 0, sum = 0;
            int64_t distinct = 0;
            for (int64_t i = 0; i < n; i++) {
                if (!isfinite(y[i]))
                    fail_msg("%s: value %lld not finite (%g)", TYPES[k].name, (long long)i, (double)y[i]);
                amax = fmax(amax, fabs((double)y[i]));
                sum += y[i];
                distinct += y[i] != y[0];
            }
            assert_true(distinct > n / 4);
            if (!(amax > 0.05 * scales[si] && amax < 20.0 * scales[si]))
                fail_msg("%s: max |value| %g for scale %g", TYPES[k].name, amax, (double)scales[si]);
        }
        free(buf);
        free(y);
    }

    /* Speed: synthetic models are built with this. */
    const size_t bytes = (size_t)64 << 20;
    uint8_t *big = malloc(bytes);
    assert_non_null(big);
    memset(big, 0, bytes); /* page faults out of the timing */
    const int speed_types[] = {MS_TYPE_IQ1_S, MS_TYPE_Q4_K, MS_TYPE_F32};
    for (size_t k = 0; k < 3; k++) {
        const quant_type_info *ti = quant_info(speed_types[k]);
        const int64_t nb = (int64_t)(bytes / (size_t)ti->type_size);
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        quant_fill_random(speed_types[k], big, nb, &s, 1.0f);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        const double dt = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
        printf("MEASURE quant_fill_random %s: %.2f GB/s (64 MiB)\n", ti->name,
               (double)nb * ti->type_size / dt / 1e9);
    }
    free(big);
}

/* ---- the scalar kernel table ---- */

static void test_scalar_table(void **state)
{
    (void)state;
    const kern_table *t = kern_get_isa("scalar");
    assert_non_null(t);
    assert_string_equal(t->isa, "scalar");
    assert_null(kern_get_isa("no-such-isa"));
    assert_non_null(kern_get());
    const int64_t n = 512;
    const int rows = 9, cols = 3;
    float x[512];
    uint64_t s = 7;
    for (size_t k = 0; k < N_TYPES; k++) {
        if (!TYPES[k].in_files)
            continue;
        const int type = TYPES[k].type, at = TYPES[k].act;
        assert_non_null(t->vec_dot[type]);
        assert_non_null(t->mul_mat[type]);
        assert_non_null(t->quantize[at]);
        const size_t wr = quant_row_bytes(type, n), ar = quant_row_bytes(at, n);
        uint8_t *w = malloc(wr * rows), *a = malloc(ar * cols), *a2 = malloc(ar);
        quant_fill_random(type, w, rows * (n / TYPES[k].blck), &s, 1.0f);
        for (int c = 0; c < cols; c++) {
            random_row(x, n, &s);
            t->quantize[at](x, a + ar * (size_t)c, n);
            quant_quantize_row(at, x, a2, n);
            assert_memory_equal(a2, a + ar * (size_t)c, ar);
        }
        float out[9 * 3];
        for (int i = 0; i < rows * cols; i++)
            out[i] = -1234.5f;
        t->mul_mat[type](n, w, wr, 2, 7, a, ar, cols, out, rows);
        for (int c = 0; c < cols; c++)
            for (int r = 0; r < rows; r++) {
                if (r < 2 || r >= 7) {
                    assert_true(out[c * rows + r] == -1234.5f); /* outside [row0,row1) untouched */
                    continue;
                }
                float want;
                quant_vec_dot_ref(type, n, &want, w + wr * (size_t)r, a + ar * (size_t)c);
                float got1;
                t->vec_dot[type](n, &got1, w + wr * (size_t)r, a + ar * (size_t)c);
                assert_true(f2u(got1) == f2u(want));
                /* three columns: F32/F16/BF16 products take tinyBLAS's order
                 * (quant_order_by_cols); Q4_K/Q2_K's gemm needs four */
                const void *wrow = w + wr * (size_t)r, *acol = a + ar * (size_t)c;
                float want_mm = want;
                if (type == MS_TYPE_F32)
                    want_mm = quant_dot_f32_x86(n, wrow, acol, true);
                else if (type == MS_TYPE_F16)
                    want_mm = quant_dot_f16_x86(n, wrow, acol, true);
                else if (type == MS_TYPE_BF16)
                    want_mm = quant_dot_bf16_x86(n, wrow, acol, true);
                assert_true(f2u(out[c * rows + r]) == f2u(want_mm));
            }
        free(w);
        free(a);
        free(a2);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_type_table),
        cmocka_unit_test(test_traits_agree),
        cmocka_unit_test(test_golden_dequant),
        cmocka_unit_test(test_q8_K_known),
        cmocka_unit_test(test_q8_K_roundtrip),
        cmocka_unit_test(test_q8_0_known),
        cmocka_unit_test(test_q8_0_roundtrip),
        cmocka_unit_test(test_q4_0_cache_rounding),
        cmocka_unit_test(test_f16),
        cmocka_unit_test(test_bf16),
        cmocka_unit_test(test_vec_dot_vs_dequant),
        cmocka_unit_test(test_vec_dot_known),
        cmocka_unit_test(test_fill_random),
        cmocka_unit_test(test_scalar_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
