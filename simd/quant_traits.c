/* quant_traits.c - the traits table: one row per tensor type, the only place
 * block geometry is written down and the only place that names the scalar
 * reference functions.
 *
 * Owns: quant_info, quant_row_bytes, and the by-type-id wrappers over the
 * columns (quant_dequantize_row, quant_quantize_row, quant_vec_dot_ref,
 * quant_order_by_cols).  Block bytes are sizeof the block
 * structs of quant_blocks.h (each pinned there by a _Static_assert to the
 * reference's layout); elements per block are its QK constants.  The GGUF
 * reader and writer, model binding and forward take sizes from here; SIMD
 * kernels from sizeof the same structs; none from literals.
 * Does not own: the block layouts (quant_blocks.h), the scalar functions
 * (quant_ref.c), kernel tables (kern_*.c).
 * Invariants (tests/test_quant.c checks them against the structs and the
 * golden files): a weight type's act_type has the same block length, so a
 * row that splits into weight blocks splits into activation blocks too. */
#include "quant.h"

#include <errno.h>
#include <math.h>
#include <string.h>

#include "quant_blocks.h"
#include "quant_ref.h"
#include "quantize.h"

/* F16/BF16 elements are raw 16-bit patterns (ggml_fp16_t, ggml_bf16_t).
 * Columns: geometry, act_type, in_files, then the scalar reference:
 * vec_dot, dequant, from_float (act types), mul_mat (column-count orders);
 * quantize_row (weights from float, simd/quantize.c). */
#define GEOM(NAME, QK, BLOCK, ACT, IN_FILES)                                                       \
    .name = NAME, .blck = QK, .type_size = (int)sizeof(BLOCK), .act_type = ACT, .in_files = IN_FILES
#define WEIGHT(t) .vec_dot = quant_ref_dot_##t, .dequant = quant_ref_dequant_##t

static const quant_type_info infos[MS_TYPE_COUNT] = {
    [MS_TYPE_F32] = {GEOM("F32", 1, float, MS_TYPE_F32, true), WEIGHT(f32),
                     .from_float = quant_ref_from_float_f32, .mul_mat = quant_ref_mul_mat_f32},
    [MS_TYPE_F16] = {GEOM("F16", 1, uint16_t, MS_TYPE_F16, true), WEIGHT(f16),
                     .from_float = quant_ref_from_float_f16, .mul_mat = quant_ref_mul_mat_f16},
    [MS_TYPE_BF16] = {GEOM("BF16", 1, uint16_t, MS_TYPE_BF16, true), WEIGHT(bf16),
                      .from_float = quant_ref_from_float_bf16, .mul_mat = quant_ref_mul_mat_bf16},
    [MS_TYPE_Q4_0] = {GEOM("Q4_0", QK4_0, block_q4_0, MS_TYPE_Q8_0, true), WEIGHT(q4_0),
                      .quantize_row = quantize_q4_0},
    [MS_TYPE_Q4_1] = {GEOM("Q4_1", QK4_1, block_q4_1, MS_TYPE_Q8_1, true), WEIGHT(q4_1),
                      .quantize_row = quantize_q4_1},
    [MS_TYPE_Q5_0] = {GEOM("Q5_0", QK5_0, block_q5_0, MS_TYPE_Q8_0, true), WEIGHT(q5_0),
                      .quantize_row = quantize_q5_0},
    [MS_TYPE_Q5_1] = {GEOM("Q5_1", QK5_1, block_q5_1, MS_TYPE_Q8_1, true), WEIGHT(q5_1),
                      .quantize_row = quantize_q5_1},
    [MS_TYPE_Q8_0] = {GEOM("Q8_0", QK8_0, block_q8_0, MS_TYPE_Q8_0, true), WEIGHT(q8_0),
                      .from_float = quant_ref_from_float_q8_0,
                      .quantize_row = quantize_q8_0},
    [MS_TYPE_Q8_1] = {GEOM("Q8_1", QK8_1, block_q8_1, MS_TYPE_Q8_1, false),
                      .dequant = quant_ref_dequant_q8_1, .from_float = quant_ref_from_float_q8_1},
    [MS_TYPE_Q2_K] = {GEOM("Q2_K", QK_K, block_q2_K, MS_TYPE_Q8_K, true), WEIGHT(q2_K),
                      .mul_mat = quant_ref_mul_mat_q2_K,
                      .quantize_row = quantize_q2_K},
    [MS_TYPE_Q3_K] = {GEOM("Q3_K", QK_K, block_q3_K, MS_TYPE_Q8_K, true), WEIGHT(q3_K),
                      .quantize_row = quantize_q3_K},
    [MS_TYPE_Q4_K] = {GEOM("Q4_K", QK_K, block_q4_K, MS_TYPE_Q8_K, true), WEIGHT(q4_K),
                      .mul_mat = quant_ref_mul_mat_q4_K,
                      .quantize_row = quantize_q4_K},
    [MS_TYPE_Q5_K] = {GEOM("Q5_K", QK_K, block_q5_K, MS_TYPE_Q8_K, true), WEIGHT(q5_K),
                      .quantize_row = quantize_q5_K},
    [MS_TYPE_Q6_K] = {GEOM("Q6_K", QK_K, block_q6_K, MS_TYPE_Q8_K, true), WEIGHT(q6_K),
                      .quantize_row = quantize_q6_K},
    [MS_TYPE_Q8_K] = {GEOM("Q8_K", QK_K, block_q8_K, MS_TYPE_Q8_K, false),
                      .dequant = quant_ref_dequant_q8_K, .from_float = quant_ref_from_float_q8_K},
    [MS_TYPE_IQ2_XXS] = {GEOM("IQ2_XXS", QK_K, block_iq2_xxs, MS_TYPE_Q8_K, true), WEIGHT(iq2_xxs),
                         .quantize_row = quantize_iq2_xxs},
    [MS_TYPE_IQ2_XS] = {GEOM("IQ2_XS", QK_K, block_iq2_xs, MS_TYPE_Q8_K, true), WEIGHT(iq2_xs),
                        .quantize_row = quantize_iq2_xs},
    [MS_TYPE_IQ2_S] = {GEOM("IQ2_S", QK_K, block_iq2_s, MS_TYPE_Q8_K, true), WEIGHT(iq2_s),
                       .quantize_row = quantize_iq2_s},
    [MS_TYPE_IQ3_XXS] = {GEOM("IQ3_XXS", QK_K, block_iq3_xxs, MS_TYPE_Q8_K, true), WEIGHT(iq3_xxs),
                         .quantize_row = quantize_iq3_xxs},
    [MS_TYPE_IQ3_S] = {GEOM("IQ3_S", QK_K, block_iq3_s, MS_TYPE_Q8_K, true), WEIGHT(iq3_s),
                       .quantize_row = quantize_iq3_s},
    [MS_TYPE_IQ1_S] = {GEOM("IQ1_S", QK_K, block_iq1_s, MS_TYPE_Q8_K, true), WEIGHT(iq1_s),
                       .quantize_row = quantize_iq1_s},
    [MS_TYPE_IQ1_M] = {GEOM("IQ1_M", QK_K, block_iq1_m, MS_TYPE_Q8_K, true), WEIGHT(iq1_m),
                       .quantize_row = quantize_iq1_m},
    [MS_TYPE_IQ4_NL] = {GEOM("IQ4_NL", QK4_NL, block_iq4_nl, MS_TYPE_Q8_0, true), WEIGHT(iq4_nl),
                        .quantize_row = quantize_iq4_nl},
    [MS_TYPE_IQ4_XS] = {GEOM("IQ4_XS", QK_K, block_iq4_xs, MS_TYPE_Q8_K, true), WEIGHT(iq4_xs),
                        .quantize_row = quantize_iq4_xs},
};
/* The private types: geometry only (quant.h); .act_type is the plain
 * type's, for callers that size activations before binding maps the type. */
#define PRIV(NAME, BLOCK) \
    .name = NAME, .blck = QK_K, .type_size = (int)(sizeof(BLOCK) / 16), .act_type = MS_TYPE_Q8_K, .in_files = true
static const quant_type_info privs[MS_TYPE_PRIVATE_END - MS_TYPE_PRIVATE_BASE] = {
    [MS_TYPE_IQ1_S_R16 - MS_TYPE_PRIVATE_BASE] = {PRIV("IQ1_S_R16", block_iq1_s_r16)},
    [MS_TYPE_IQ1_M_R16 - MS_TYPE_PRIVATE_BASE] = {PRIV("IQ1_M_R16", block_iq1_m_r16)},
    [MS_TYPE_IQ2_XXS_R16 - MS_TYPE_PRIVATE_BASE] = {PRIV("IQ2_XXS_R16", block_iq2_xxs_r16)},
};
static const int priv_plain[MS_TYPE_PRIVATE_END - MS_TYPE_PRIVATE_BASE] = {
    [MS_TYPE_IQ1_S_R16 - MS_TYPE_PRIVATE_BASE] = MS_TYPE_IQ1_S,
    [MS_TYPE_IQ1_M_R16 - MS_TYPE_PRIVATE_BASE] = MS_TYPE_IQ1_M,
    [MS_TYPE_IQ2_XXS_R16 - MS_TYPE_PRIVATE_BASE] = MS_TYPE_IQ2_XXS,
};
#undef PRIV
#undef GEOM
#undef WEIGHT

const quant_type_info *quant_info(int type)
{
    if (type >= MS_TYPE_PRIVATE_BASE && type < MS_TYPE_PRIVATE_END)
        return &privs[type - MS_TYPE_PRIVATE_BASE];
    if (type < 0 || type >= MS_TYPE_COUNT || !infos[type].name)
        return NULL;
    return &infos[type];
}

int quant_private_plain(int type)
{
    return type >= MS_TYPE_PRIVATE_BASE && type < MS_TYPE_PRIVATE_END ? priv_plain[type - MS_TYPE_PRIVATE_BASE] : -1;
}

int quant_private_of(int plain)
{
    for (int t = MS_TYPE_PRIVATE_BASE; t < MS_TYPE_PRIVATE_END; t++)
        if (priv_plain[t - MS_TYPE_PRIVATE_BASE] == plain)
            return t;
    return -1;
}

size_t quant_row_bytes(int type, int64_t n)
{
    const quant_type_info *ti = quant_info(type);
    if (!ti || n < 0 || n % ti->blck)
        return 0;
    return (size_t)(n / ti->blck) * (size_t)ti->type_size;
}

/* ---- the columns by type id ---- */

int quant_dequantize_row(int type, const void *src, float *dst, int64_t n)
{
    const quant_type_info *ti = quant_info(type);
    if (!ti || !ti->dequant)
        return -ENOTSUP;
    ti->dequant(src, dst, n);
    return 0;
}

void quant_quantize_row(int act_type, const float *x, void *dst, int64_t n)
{
    const quant_type_info *ti = quant_info(act_type);
    if (ti && ti->from_float)
        ti->from_float(x, dst, n);
    else /* documented: anything else is F32, a plain copy */
        memcpy(dst, x, (size_t)n * sizeof *x);
}

void quant_vec_dot_ref(int type, int64_t n, float *s, const void *w, const void *a)
{
    const quant_type_info *ti = quant_info(type);
    if (ti && ti->vec_dot)
        ti->vec_dot(n, s, w, a);
    else
        *s = NAN; /* not a weight type: callers validated the type */
}

bool quant_order_by_cols(int type)
{
    const quant_type_info *ti = quant_info(type);
    return ti && ti->mul_mat;
}
