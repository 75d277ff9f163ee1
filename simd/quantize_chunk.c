/* quantize_chunk.c - by-id quantization through the traits table. */
#include "quantize_chunk.h"

#include <string.h>

#include "quant.h"
#include "quantize.h"

bool quantize_supported(int type)
{
    const quant_type_info *qi = quant_info(type);
    return qi && (qi->quantize_row || type == MS_TYPE_F32 || type == MS_TYPE_F16 || type == MS_TYPE_BF16);
}

bool quantize_needs_imatrix(int type)
{
    return type == MS_TYPE_IQ2_XXS || type == MS_TYPE_IQ2_XS || type == MS_TYPE_IQ1_S;
}

size_t quantize_chunk(int type, const float *src, void *dst, int64_t nrow, int64_t n_per_row,
                      const float *imatrix)
{
    const int64_t n = nrow * n_per_row;
    switch (type) {
    case MS_TYPE_F32:
        memcpy(dst, src, (size_t)n * sizeof(float));
        return (size_t)n * sizeof(float);
    case MS_TYPE_F16:
        for (int64_t i = 0; i < n; ++i) ((uint16_t *)dst)[i] = quant_f32_to_f16(src[i]);
        return (size_t)n * 2;
    case MS_TYPE_BF16:
        for (int64_t i = 0; i < n; ++i) ((uint16_t *)dst)[i] = quant_f32_to_bf16(src[i]);
        return (size_t)n * 2;
    default: break;
    }
    const quant_type_info *qi = quant_info(type);
    if (!qi || !qi->quantize_row || (quantize_needs_imatrix(type) && !imatrix)) return 0;
    return qi->quantize_row(src, dst, nrow, n_per_row, imatrix);
}
