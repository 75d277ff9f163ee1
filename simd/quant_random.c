/* quant_random.c - random but valid blocks of every type
 * (quant_fill_random), for synthetic models, tests and benchmarks.
 *
 * Owns: which bytes of a block are fp16 scales (they get finite values of a
 * chosen magnitude; every other field and grid index is valid whatever its
 * bits).  Sits above the traits table (block sizes) and the scalar
 * reference (half conversions); nothing in the kernels depends on it. */
#include "quant.h"

#include <stddef.h>
#include <string.h>

#include "quant_blocks.h"

/* xorshift64; the state is never 0 (quant_fill_random replaces a 0 seed). */
static inline uint64_t xs64(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *s = x;
    return x;
}

/* Uniform in [0, 1) from 24 random bits. */
static inline float unit24(uint32_t r) { return (float)(r >> 8) * 0x1p-24f; }

/* Offsets of the fp16 scale fields of each block type, and the magnitude of
 * the integer code product, so dequantized values are about `scale`. */
static void scale_fields(int type, int off[2], int *n, float *code)
{
    *n = 1;
    off[0] = 0;
    switch (type) {
    case MS_TYPE_Q4_0: *code = 8; break;
    case MS_TYPE_Q4_1: *n = 2; off[1] = offsetof(block_q4_1, m); *code = 15; break;
    case MS_TYPE_Q5_0: *code = 16; break;
    case MS_TYPE_Q5_1: *n = 2; off[1] = offsetof(block_q5_1, m); *code = 31; break;
    case MS_TYPE_Q8_0: *code = 127; break;
    case MS_TYPE_Q2_K: *n = 2; off[0] = offsetof(block_q2_K, d); off[1] = offsetof(block_q2_K, dmin); *code = 45; break;
    case MS_TYPE_Q3_K: off[0] = offsetof(block_q3_K, d); *code = 128; break;
    case MS_TYPE_Q4_K: *n = 2; off[1] = offsetof(block_q4_K, dmin); *code = 945; break;
    case MS_TYPE_Q5_K: *n = 2; off[1] = offsetof(block_q5_K, dmin); *code = 1953; break;
    case MS_TYPE_Q6_K: off[0] = offsetof(block_q6_K, d); *code = 4064; break;
    case MS_TYPE_IQ2_XXS: case MS_TYPE_IQ2_XS: case MS_TYPE_IQ2_S: *code = 167; break;
    case MS_TYPE_IQ3_XXS: *code = 480; break;
    case MS_TYPE_IQ3_S: *code = 465; break;
    case MS_TYPE_IQ1_S: *code = 17; break;
    case MS_TYPE_IQ1_M: *n = 0; *code = 17; break;
    case MS_TYPE_IQ4_NL: *code = 127; break;
    case MS_TYPE_IQ4_XS: *code = 4064; break;
    default: *n = 0; *code = 1; break;
    }
}

void quant_fill_random(int type, void *dst, int64_t nblocks, uint64_t *rng, float scale)
{
    const quant_type_info *ti = quant_info(type);
    if (!ti || nblocks <= 0)
        return;
    /* A local copy of the state: stores through the byte pointer would
     * otherwise force a reload of *rng on every step. */
    uint64_t st = *rng ? *rng : 0x9E3779B97F4A7C15ull;
    uint8_t *p = dst;
    if (type == MS_TYPE_F32 || type == MS_TYPE_F16 || type == MS_TYPE_BF16) {
        /* Uniform in [-scale, scale), two values per random word. */
        for (int64_t i = 0; i < nblocks; i += 2) {
            const uint64_t r = xs64(&st);
            for (int64_t k = i; k < i + 2 && k < nblocks; k++) {
                const float v = scale * (2.0f * unit24((uint32_t)(r >> (32 * (k - i)))) - 1.0f);
                if (type == MS_TYPE_F32) {
                    memcpy(p + 4 * k, &v, 4);
                } else {
                    const uint16_t h = type == MS_TYPE_F16 ? quant_f32_to_f16(v) : quant_f32_to_bf16(v);
                    memcpy(p + 2 * k, &h, 2);
                }
            }
        }
        *rng = st;
        return;
    }
    /* Per block, in one pass while it is in cache: random bytes everywhere
     * (every integer field and grid index is valid whatever its bits), then
     * finite positive scales of about scale/code in the fp16 scale fields. */
    int off[2], nf;
    float code;
    scale_fields(type, off, &nf, &code);
    const size_t ts = (size_t)ti->type_size;
    uint8_t tmp[QK_K * 2 + 8]; /* the largest block (Q6_K, 210 B) rounded up to 8 */
    for (int64_t b = 0; b < nblocks; b++) {
        uint8_t *blk = p + (size_t)b * ts;
        for (size_t i = 0; i < ts; i += 8) {
            const uint64_t r = xs64(&st);
            memcpy(tmp + i, &r, 8);
        }
        const uint64_t r = xs64(&st);
        for (int f = 0; f < nf; f++) {
            const uint16_t h = quant_f32_to_f16(scale / code * (0.5f + unit24((uint32_t)(r >> (32 * f)))));
            memcpy(tmp + off[f], &h, 2);
        }
        if (type == MS_TYPE_IQ1_M) { /* the half is spread over the scales' top nibbles */
            const uint16_t h = quant_f32_to_f16(scale / code * (0.5f + unit24((uint32_t)r)));
            uint16_t sc[4];
            memcpy(sc, tmp + offsetof(block_iq1_m, scales), 8);
            for (int k = 0; k < 4; k++)
                sc[k] = (uint16_t)((sc[k] & 0x0fff) | (((h >> (4 * k)) & 0xf) << 12));
            memcpy(tmp + offsetof(block_iq1_m, scales), sc, 8);
        }
        memcpy(blk, tmp, ts);
    }
    *rng = st;
}
