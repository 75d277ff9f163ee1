/* quant_traits.c - the traits table: one row per tensor type, the only place
 * block geometry is written down.
 *
 * Owns: quant_info and quant_row_bytes.  Block bytes are sizeof the block
 * structs of quant_blocks.h (each pinned there by a _Static_assert to the
 * reference's layout); elements per block are its QK constants.  The GGUF
 * reader and writer, model binding, forward and the kernels take sizes from
 * here, never from literals.
 * Does not own: the block layouts (quant_blocks.h), the scalar functions
 * (quant_ref.c), kernel tables (kern_*.c).
 * Invariants (tests/test_quant.c checks them against the structs and the
 * golden files): a weight type's act_type has the same block length, so a
 * row that splits into weight blocks splits into activation blocks too. */
#include "quant.h"

#include "quant_blocks.h"

/* F16/BF16 elements are raw 16-bit patterns (ggml_fp16_t, ggml_bf16_t). */
#define ROW(T, NAME, QK, BLOCK, ACT, IN_FILES)                                                     \
    [T] = {.name = NAME, .blck = QK, .type_size = (int)sizeof(BLOCK), .act_type = ACT, .in_files = IN_FILES}

static const quant_type_info infos[MS_TYPE_COUNT] = {
    ROW(MS_TYPE_F32, "F32", 1, float, MS_TYPE_F32, true),
    ROW(MS_TYPE_F16, "F16", 1, uint16_t, MS_TYPE_F16, true),
    ROW(MS_TYPE_BF16, "BF16", 1, uint16_t, MS_TYPE_BF16, true),
    ROW(MS_TYPE_Q4_0, "Q4_0", QK4_0, block_q4_0, MS_TYPE_Q8_0, true),
    ROW(MS_TYPE_Q4_1, "Q4_1", QK4_1, block_q4_1, MS_TYPE_Q8_1, true),
    ROW(MS_TYPE_Q5_0, "Q5_0", QK5_0, block_q5_0, MS_TYPE_Q8_0, true),
    ROW(MS_TYPE_Q5_1, "Q5_1", QK5_1, block_q5_1, MS_TYPE_Q8_1, true),
    ROW(MS_TYPE_Q8_0, "Q8_0", QK8_0, block_q8_0, MS_TYPE_Q8_0, true),
    ROW(MS_TYPE_Q8_1, "Q8_1", QK8_1, block_q8_1, MS_TYPE_Q8_1, false),
    ROW(MS_TYPE_Q2_K, "Q2_K", QK_K, block_q2_K, MS_TYPE_Q8_K, true),
    ROW(MS_TYPE_Q3_K, "Q3_K", QK_K, block_q3_K, MS_TYPE_Q8_K, true),
    ROW(MS_TYPE_Q4_K, "Q4_K", QK_K, block_q4_K, MS_TYPE_Q8_K, true),
    ROW(MS_TYPE_Q5_K, "Q5_K", QK_K, block_q5_K, MS_TYPE_Q8_K, true),
    ROW(MS_TYPE_Q6_K, "Q6_K", QK_K, block_q6_K, MS_TYPE_Q8_K, true),
    ROW(MS_TYPE_Q8_K, "Q8_K", QK_K, block_q8_K, MS_TYPE_Q8_K, false),
    ROW(MS_TYPE_IQ2_XXS, "IQ2_XXS", QK_K, block_iq2_xxs, MS_TYPE_Q8_K, true),
    ROW(MS_TYPE_IQ2_XS, "IQ2_XS", QK_K, block_iq2_xs, MS_TYPE_Q8_K, true),
    ROW(MS_TYPE_IQ2_S, "IQ2_S", QK_K, block_iq2_s, MS_TYPE_Q8_K, true),
    ROW(MS_TYPE_IQ3_XXS, "IQ3_XXS", QK_K, block_iq3_xxs, MS_TYPE_Q8_K, true),
    ROW(MS_TYPE_IQ3_S, "IQ3_S", QK_K, block_iq3_s, MS_TYPE_Q8_K, true),
    ROW(MS_TYPE_IQ1_S, "IQ1_S", QK_K, block_iq1_s, MS_TYPE_Q8_K, true),
    ROW(MS_TYPE_IQ1_M, "IQ1_M", QK_K, block_iq1_m, MS_TYPE_Q8_K, true),
    ROW(MS_TYPE_IQ4_NL, "IQ4_NL", QK4_NL, block_iq4_nl, MS_TYPE_Q8_0, true),
    ROW(MS_TYPE_IQ4_XS, "IQ4_XS", QK_K, block_iq4_xs, MS_TYPE_Q8_K, true),
};

const quant_type_info *quant_info(int type)
{
    if (type < 0 || type >= MS_TYPE_COUNT || !infos[type].name)
        return NULL;
    return &infos[type];
}

size_t quant_row_bytes(int type, int64_t n)
{
    const quant_type_info *ti = quant_info(type);
    if (!ti || n < 0 || n % ti->blck)
        return 0;
    return (size_t)(n / ti->blck) * (size_t)ti->type_size;
}
