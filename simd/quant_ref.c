/* quant_ref.c - the scalar reference: dequantization,
 * activation quantization, dot products, random valid blocks.
 *
 * Dequantization reproduces the reference engine's float expressions term
 * for term ((d * sc) * q - dmin * m, (db * grid) * sign, ...) so results are
 * bit-identical to ../shared/golden/dequant.  Activation quantization follows
 * what the reference runs on x86 (Q8_K: quantize_row_q8_K_ref with the
 * 1.5*2^23 rounding trick; Q8_0/Q8_1: multiply by 127/amax and round half to
 * even, as its AVX path does).
 *
 * Dot products mirror the reference's generic scalar code (ggml-cpu
 * quants.c *_generic, vec.cpp without SIMD): the same integer sums (exact, so
 * their order is free) and the same float expressions in the same order,
 * e.g. Q3_K's eight float lanes, IQ4_XS's one float term per 32, F32/F16/BF16
 * products accumulated in double.  Exceptions, kept because simd/kern_avx2.c
 * reproduces them bit for bit (tests/test_kernels.c): Q4_K, Q5_K and Q6_K
 * use one float term per 256-block (d*isum - dmin*msum, as the reference's
 * x86 kernels group it) in place of the generic code's eight float lanes -
 * the same exact integer sums; the float rounding differs by a few ulp of
 * the row sum.
 * Does not own: SIMD kernels (simd/kern_*.c) or the choice between them. */
#include "quant.h"

#include <errno.h>
#include <math.h>
#include <string.h>

#include "quant_blocks.h"
#include "quant_grids.h"

/* ---- half and bfloat16 ---- */

float quant_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else { /* subnormal: normalize */
            int e = -1;
            do {
                man <<= 1;
                e++;
            } while (!(man & 0x400));
            bits = sign | (uint32_t)(127 - 15 - e) << 23 | (man & 0x3ff) << 13;
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000 | man << 13;
    } else {
        bits = sign | (exp + 127 - 15) << 23 | man << 13;
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t quant_f32_to_f16(float f)
{
    /* Round to nearest even, as F16C's _cvtss_sh(x, 0) does. */
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000, exp = (x >> 23) & 0xff, man = x & 0x7fffff;
    if (exp == 0xff)
        return (uint16_t)(sign | 0x7c00 | (man ? 0x200 | (man >> 13) : 0));
    int e = (int)exp - 127 + 15;
    if (e >= 31)
        return (uint16_t)(sign | 0x7c00);
    if (e <= 0) {
        if (e < -10)
            return (uint16_t)sign;
        man |= 0x800000;
        int shift = 14 - e;
        uint32_t half = man >> shift, rem = man & ((1u << shift) - 1), mid = 1u << (shift - 1);
        if (rem > mid || (rem == mid && (half & 1)))
            half++;
        return (uint16_t)(sign | half);
    }
    uint32_t half = (uint32_t)e << 10 | man >> 13, rem = man & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (half & 1)))
        half++; /* may carry into the exponent: still correct, up to inf */
    return (uint16_t)(sign | half);
}

float quant_bf16_to_f32(uint16_t h)
{
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t quant_f32_to_bf16(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7fffffff) > 0x7f800000) /* NaN: keep it quiet */
        return (uint16_t)((x >> 16) | 64);
    return (uint16_t)((x + (0x7fff + ((x >> 16) & 1))) >> 16);
}

#define H2F(h) quant_f16_to_f32(h)

/* ---- dequantization ---- */

static void get_scale_min_k4(int j, const uint8_t *q, uint8_t *d, uint8_t *m)
{
    if (j < 4) {
        *d = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *d = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
        *m = (q[j + 4] >> 4) | ((q[j - 0] >> 6) << 4);
    }
}

static void deq_q4_0(const block_q4_0 *x, float *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, y += 32) {
        const float d = H2F(x[i].d);
        for (int j = 0; j < 16; j++) {
            y[j] = (float)((x[i].qs[j] & 0x0F) - 8) * d;
            y[j + 16] = (float)((x[i].qs[j] >> 4) - 8) * d;
        }
    }
}

static void deq_q4_1(const block_q4_1 *x, float *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, y += 32) {
        const float d = H2F(x[i].d), m = H2F(x[i].m);
        for (int j = 0; j < 16; j++) {
            y[j] = (float)(x[i].qs[j] & 0x0F) * d + m;
            y[j + 16] = (float)(x[i].qs[j] >> 4) * d + m;
        }
    }
}

static void deq_q5(const uint8_t *qs, const uint8_t *qhb, float d, float m, int off, float *y)
{
    uint32_t qh;
    memcpy(&qh, qhb, 4);
    for (int j = 0; j < 16; j++) {
        const uint8_t xh0 = ((qh >> (j + 0)) << 4) & 0x10;
        const uint8_t xh1 = ((qh >> (j + 12))) & 0x10;
        y[j] = (float)(((qs[j] & 0x0F) | xh0) - off) * d + m;
        y[j + 16] = (float)(((qs[j] >> 4) | xh1) - off) * d + m;
    }
}

static void deq_q8_0(const block_q8_0 *x, float *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, y += 32) {
        const float d = H2F(x[i].d);
        for (int j = 0; j < 32; j++)
            y[j] = (float)x[i].qs[j] * d;
    }
}

static void deq_q2_K(const block_q2_K *x, float *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++) {
        const float d = H2F(x[i].d), mn = H2F(x[i].dmin);
        const uint8_t *q = x[i].qs;
        int is = 0;
        for (int n = 0; n < QK_K; n += 128) {
            int shift = 0;
            for (int j = 0; j < 4; ++j) {
                uint8_t sc = x[i].scales[is++];
                float dl = d * (float)(sc & 0xF), ml = mn * (float)(sc >> 4);
                for (int l = 0; l < 16; ++l)
                    *y++ = dl * (float)((int8_t)((q[l] >> shift) & 3)) - ml;
                sc = x[i].scales[is++];
                dl = d * (float)(sc & 0xF);
                ml = mn * (float)(sc >> 4);
                for (int l = 0; l < 16; ++l)
                    *y++ = dl * (float)((int8_t)((q[l + 16] >> shift) & 3)) - ml;
                shift += 2;
            }
            q += 32;
        }
    }
}

/* The sixteen 6-bit scales of a Q3_K block, offset by -32. */
static void q3_K_scales(const uint8_t *packed, int8_t scales[16])
{
    const uint32_t kmask1 = 0x03030303, kmask2 = 0x0f0f0f0f;
    uint32_t aux[4];
    memcpy(aux, packed, 12);
    uint32_t tmp = aux[2];
    aux[2] = ((aux[0] >> 4) & kmask2) | (((tmp >> 4) & kmask1) << 4);
    aux[3] = ((aux[1] >> 4) & kmask2) | (((tmp >> 6) & kmask1) << 4);
    aux[0] = (aux[0] & kmask2) | (((tmp >> 0) & kmask1) << 4);
    aux[1] = (aux[1] & kmask2) | (((tmp >> 2) & kmask1) << 4);
    memcpy(scales, aux, 16);
    for (int j = 0; j < 16; j++)
        scales[j] = (int8_t)(scales[j] - 32);
}

static void deq_q3_K(const block_q3_K *x, float *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++) {
        const float d_all = H2F(x[i].d);
        const uint8_t *q = x[i].qs, *hm = x[i].hmask;
        uint8_t m = 1;
        int8_t scales[16];
        q3_K_scales(x[i].scales, scales);
        int is = 0;
        for (int n = 0; n < QK_K; n += 128) {
            int shift = 0;
            for (int j = 0; j < 4; ++j) {
                float dl = d_all * (float)scales[is++];
                for (int l = 0; l < 16; ++l)
                    *y++ = dl * (float)((int8_t)((q[l] >> shift) & 3) - ((hm[l] & m) ? 0 : 4));
                dl = d_all * (float)scales[is++];
                for (int l = 0; l < 16; ++l)
                    *y++ = dl * (float)((int8_t)((q[l + 16] >> shift) & 3) - ((hm[l + 16] & m) ? 0 : 4));
                shift += 2;
                m <<= 1;
            }
            q += 32;
        }
    }
}

static void deq_q4_K(const block_q4_K *x, float *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++) {
        const uint8_t *q = x[i].qs;
        const float d = H2F(x[i].d), mn = H2F(x[i].dmin);
        int is = 0;
        uint8_t sc, m;
        for (int j = 0; j < QK_K; j += 64) {
            get_scale_min_k4(is + 0, x[i].scales, &sc, &m);
            const float d1 = d * sc, m1 = mn * m;
            get_scale_min_k4(is + 1, x[i].scales, &sc, &m);
            const float d2 = d * sc, m2 = mn * m;
            for (int l = 0; l < 32; ++l)
                *y++ = d1 * (float)(q[l] & 0xF) - m1;
            for (int l = 0; l < 32; ++l)
                *y++ = d2 * (float)(q[l] >> 4) - m2;
            q += 32;
            is += 2;
        }
    }
}

static void deq_q5_K(const block_q5_K *x, float *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++) {
        const uint8_t *ql = x[i].qs, *qh = x[i].qh;
        const float d = H2F(x[i].d), mn = H2F(x[i].dmin);
        int is = 0;
        uint8_t sc, m, u1 = 1, u2 = 2;
        for (int j = 0; j < QK_K; j += 64) {
            get_scale_min_k4(is + 0, x[i].scales, &sc, &m);
            const float d1 = d * sc, m1 = mn * m;
            get_scale_min_k4(is + 1, x[i].scales, &sc, &m);
            const float d2 = d * sc, m2 = mn * m;
            for (int l = 0; l < 32; ++l)
                *y++ = d1 * (float)((ql[l] & 0xF) + (qh[l] & u1 ? 16 : 0)) - m1;
            for (int l = 0; l < 32; ++l)
                *y++ = d2 * (float)((ql[l] >> 4) + (qh[l] & u2 ? 16 : 0)) - m2;
            ql += 32;
            is += 2;
            u1 <<= 2;
            u2 <<= 2;
        }
    }
}

static void deq_q6_K(const block_q6_K *x, float *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++) {
        const float d = H2F(x[i].d);
        const uint8_t *ql = x[i].ql, *qh = x[i].qh;
        const int8_t *sc = x[i].scales;
        for (int n = 0; n < QK_K; n += 128) {
            for (int l = 0; l < 32; ++l) {
                int is = l / 16;
                const int8_t q1 = (int8_t)((ql[l + 0] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
                const int8_t q2 = (int8_t)((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
                const int8_t q3 = (int8_t)((ql[l + 0] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                const int8_t q4 = (int8_t)((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                y[l + 0] = d * (float)sc[is + 0] * (float)q1;
                y[l + 32] = d * (float)sc[is + 2] * (float)q2;
                y[l + 64] = d * (float)sc[is + 4] * (float)q3;
                y[l + 96] = d * (float)sc[is + 6] * (float)q4;
            }
            y += 128;
            ql += 64;
            qh += 32;
            sc += 8;
        }
    }
}

static void deq_q8_K(const block_q8_K *x, float *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, y += QK_K)
        for (int j = 0; j < QK_K; j++)
            y[j] = x[i].d * (float)x[i].qs[j];
}

static inline float sgn(uint8_t signs, int j) { return signs & kmask_iq2xs[j] ? -1.f : 1.f; }

static void deq_iq2_xxs(const block_iq2_xxs *x, float *y, int64_t nb)
{
    uint32_t aux32[2];
    for (int64_t i = 0; i < nb; i++) {
        const float d = H2F(x[i].d);
        for (int ib = 0; ib < QK_K / 32; ++ib) {
            memcpy(aux32, x[i].qs + 4 * ib, 8);
            const uint8_t *aux8 = (const uint8_t *)aux32;
            const float db = d * (0.5f + (float)(aux32[1] >> 28)) * 0.25f;
            for (int l = 0; l < 4; ++l) {
                const uint8_t *grid = (const uint8_t *)(iq2xxs_grid + aux8[l]);
                const uint8_t signs = ksigns_iq2xs[(aux32[1] >> 7 * l) & 127];
                for (int j = 0; j < 8; ++j)
                    y[j] = db * (float)grid[j] * sgn(signs, j);
                y += 8;
            }
        }
    }
}

static void deq_iq2_xs(const block_iq2_xs *x, float *y, int64_t nb)
{
    float db[2];
    for (int64_t i = 0; i < nb; i++) {
        const float d = H2F(x[i].d);
        for (int ib = 0; ib < QK_K / 32; ++ib) {
            db[0] = d * (0.5f + (float)(x[i].scales[ib] & 0xf)) * 0.25f;
            db[1] = d * (0.5f + (float)(x[i].scales[ib] >> 4)) * 0.25f;
            for (int l = 0; l < 4; ++l) {
                const uint8_t *grid = (const uint8_t *)(iq2xs_grid + (x[i].qs[4 * ib + l] & 511));
                const uint8_t signs = ksigns_iq2xs[x[i].qs[4 * ib + l] >> 9];
                for (int j = 0; j < 8; ++j)
                    y[j] = db[l / 2] * (float)grid[j] * sgn(signs, j);
                y += 8;
            }
        }
    }
}

static void deq_iq2_s(const block_iq2_s *x, float *y, int64_t nb)
{
    float db[2];
    for (int64_t i = 0; i < nb; i++) {
        const float d = H2F(x[i].d);
        const uint8_t *qs = x[i].qs, *qh = x[i].qh, *signs = qs + QK_K / 8;
        for (int ib = 0; ib < QK_K / 32; ++ib) {
            db[0] = d * (0.5f + (float)(x[i].scales[ib] & 0xf)) * 0.25f;
            db[1] = d * (0.5f + (float)(x[i].scales[ib] >> 4)) * 0.25f;
            for (int l = 0; l < 4; ++l) {
                const float dl = db[l / 2];
                const uint8_t *grid = (const uint8_t *)(iq2s_grid + (qs[l] | ((qh[ib] << (8 - 2 * l)) & 0x300)));
                for (int j = 0; j < 8; ++j)
                    y[j] = dl * (float)grid[j] * sgn(signs[l], j);
                y += 8;
            }
            qs += 4;
            signs += 4;
        }
    }
}

static void deq_iq3_xxs(const block_iq3_xxs *x, float *y, int64_t nb)
{
    uint32_t aux32;
    for (int64_t i = 0; i < nb; i++) {
        const float d = H2F(x[i].d);
        const uint8_t *qs = x[i].qs, *sas = qs + QK_K / 4;
        for (int ib = 0; ib < QK_K / 32; ++ib) {
            memcpy(&aux32, sas + 4 * ib, 4);
            const float db = d * (0.5f + (float)(aux32 >> 28)) * 0.5f;
            for (int l = 0; l < 4; ++l) {
                const uint8_t signs = ksigns_iq2xs[(aux32 >> 7 * l) & 127];
                const uint8_t *g1 = (const uint8_t *)(iq3xxs_grid + qs[2 * l + 0]);
                const uint8_t *g2 = (const uint8_t *)(iq3xxs_grid + qs[2 * l + 1]);
                for (int j = 0; j < 4; ++j) {
                    y[j + 0] = db * (float)g1[j] * sgn(signs, j);
                    y[j + 4] = db * (float)g2[j] * sgn(signs, j + 4);
                }
                y += 8;
            }
            qs += 8;
        }
    }
}

static void deq_iq3_s(const block_iq3_s *x, float *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++) {
        const float d = H2F(x[i].d);
        const uint8_t *qs = x[i].qs, *qh = x[i].qh, *signs = x[i].signs;
        for (int ib = 0; ib < QK_K / 32; ib += 2) {
            const float db1 = d * (float)(1 + 2 * (x[i].scales[ib / 2] & 0xf));
            const float db2 = d * (float)(1 + 2 * (x[i].scales[ib / 2] >> 4));
            for (int half = 0; half < 2; half++) {
                const float db = half ? db2 : db1;
                for (int l = 0; l < 4; ++l) {
                    const uint8_t *g1 = (const uint8_t *)(iq3s_grid + (qs[2 * l + 0] | ((qh[half] << (8 - 2 * l)) & 256)));
                    const uint8_t *g2 = (const uint8_t *)(iq3s_grid + (qs[2 * l + 1] | ((qh[half] << (7 - 2 * l)) & 256)));
                    for (int j = 0; j < 4; ++j) {
                        y[j + 0] = db * (float)g1[j] * sgn(signs[l], j);
                        y[j + 4] = db * (float)g2[j] * sgn(signs[l], j + 4);
                    }
                    y += 8;
                }
                qs += 8;
                signs += 4;
            }
            qh += 2;
        }
    }
}

static void deq_iq1_s(const block_iq1_s *x, float *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++) {
        const float d = H2F(x[i].d);
        const uint8_t *qs = x[i].qs;
        for (int ib = 0; ib < QK_K / 32; ++ib) {
            const uint16_t h = x[i].qh[ib];
            const float dl = d * (float)(2 * ((h >> 12) & 7) + 1);
            const float delta = h & 0x8000 ? -IQ1S_DELTA : IQ1S_DELTA;
            for (int l = 0; l < 4; ++l) {
                const int8_t *grid = (const int8_t *)(iq1s_grid + (qs[l] | (((h >> 3 * l) & 7) << 8)));
                for (int j = 0; j < 8; ++j)
                    y[j] = dl * ((float)grid[j] + delta);
                y += 8;
            }
            qs += 4;
        }
    }
}

static float iq1m_d(const block_iq1_m *x)
{
    uint16_t sc[4];
    memcpy(sc, x->scales, 8);
    return H2F((uint16_t)((sc[0] >> 12) | ((sc[1] >> 8) & 0x00f0) | ((sc[2] >> 4) & 0x0f00) |
                          (sc[3] & 0xf000)));
}

static void deq_iq1_m(const block_iq1_m *x, float *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++) {
        uint16_t sc[4];
        memcpy(sc, x[i].scales, 8);
        const float d = iq1m_d(&x[i]);
        const uint8_t *qs = x[i].qs, *qh = x[i].qh;
        for (int ib = 0; ib < QK_K / 32; ++ib) {
            const float dl1 = d * (float)(2 * ((sc[ib / 2] >> (6 * (ib % 2) + 0)) & 0x7) + 1);
            const float dl2 = d * (float)(2 * ((sc[ib / 2] >> (6 * (ib % 2) + 3)) & 0x7) + 1);
            uint16_t idx[4] = {(uint16_t)(qs[0] | ((qh[0] << 8) & 0x700)),
                               (uint16_t)(qs[1] | ((qh[0] << 4) & 0x700)),
                               (uint16_t)(qs[2] | ((qh[1] << 8) & 0x700)),
                               (uint16_t)(qs[3] | ((qh[1] << 4) & 0x700))};
            float delta[4] = {qh[0] & 0x08 ? -IQ1S_DELTA : IQ1S_DELTA,
                              qh[0] & 0x80 ? -IQ1S_DELTA : IQ1S_DELTA,
                              qh[1] & 0x08 ? -IQ1S_DELTA : IQ1S_DELTA,
                              qh[1] & 0x80 ? -IQ1S_DELTA : IQ1S_DELTA};
            for (int l = 0; l < 4; ++l) {
                const int8_t *grid = (const int8_t *)(iq1s_grid + idx[l]);
                const float dl = l < 2 ? dl1 : dl2;
                for (int j = 0; j < 8; ++j)
                    y[j] = dl * ((float)grid[j] + delta[l]);
                y += 8;
            }
            qs += 4;
            qh += 2;
        }
    }
}

static void deq_iq4_nl(const block_iq4_nl *x, float *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, y += 32) {
        const float d = H2F(x[i].d);
        for (int j = 0; j < 16; ++j) {
            y[j] = d * (float)kvalues_iq4nl[x[i].qs[j] & 0xf];
            y[j + 16] = d * (float)kvalues_iq4nl[x[i].qs[j] >> 4];
        }
    }
}

static void deq_iq4_xs(const block_iq4_xs *x, float *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++) {
        const uint8_t *qs = x[i].qs;
        const float d = H2F(x[i].d);
        for (int ib = 0; ib < QK_K / 32; ++ib) {
            const int ls = ((x[i].scales_l[ib / 2] >> 4 * (ib % 2)) & 0xf) |
                           (((x[i].scales_h >> 2 * ib) & 3) << 4);
            const float dl = d * (float)(ls - 32);
            for (int j = 0; j < 16; ++j) {
                y[j + 0] = dl * (float)kvalues_iq4nl[qs[j] & 0xf];
                y[j + 16] = dl * (float)kvalues_iq4nl[qs[j] >> 4];
            }
            y += 32;
            qs += 16;
        }
    }
}

int quant_dequantize_row(int type, const void *src, float *y, int64_t n)
{
    const quant_type_info *ti = quant_info(type);
    if (!ti)
        return -ENOTSUP;
    const int64_t nb = n / ti->blck;
    switch (type) {
    case MS_TYPE_F32:
        memcpy(y, src, (size_t)n * 4);
        break;
    case MS_TYPE_F16:
        for (int64_t i = 0; i < n; i++)
            y[i] = quant_f16_to_f32(((const uint16_t *)src)[i]);
        break;
    case MS_TYPE_BF16:
        for (int64_t i = 0; i < n; i++)
            y[i] = quant_bf16_to_f32(((const uint16_t *)src)[i]);
        break;
    case MS_TYPE_Q4_0: deq_q4_0(src, y, nb); break;
    case MS_TYPE_Q4_1: deq_q4_1(src, y, nb); break;
    case MS_TYPE_Q5_0:
        for (int64_t i = 0; i < nb; i++) {
            const block_q5_0 *b = (const block_q5_0 *)src + i;
            deq_q5(b->qs, b->qh, H2F(b->d), 0.0f, 16, y + 32 * i);
        }
        break;
    case MS_TYPE_Q5_1:
        for (int64_t i = 0; i < nb; i++) {
            const block_q5_1 *b = (const block_q5_1 *)src + i;
            deq_q5(b->qs, b->qh, H2F(b->d), H2F(b->m), 0, y + 32 * i);
        }
        break;
    case MS_TYPE_Q8_0: deq_q8_0(src, y, nb); break;
    case MS_TYPE_Q8_1:
        for (int64_t i = 0; i < nb; i++) {
            const block_q8_1 *b = (const block_q8_1 *)src + i;
            for (int j = 0; j < 32; j++)
                y[32 * i + j] = (float)b->qs[j] * H2F(b->d);
        }
        break;
    case MS_TYPE_Q2_K: deq_q2_K(src, y, nb); break;
    case MS_TYPE_Q3_K: deq_q3_K(src, y, nb); break;
    case MS_TYPE_Q4_K: deq_q4_K(src, y, nb); break;
    case MS_TYPE_Q5_K: deq_q5_K(src, y, nb); break;
    case MS_TYPE_Q6_K: deq_q6_K(src, y, nb); break;
    case MS_TYPE_Q8_K: deq_q8_K(src, y, nb); break;
    case MS_TYPE_IQ2_XXS: deq_iq2_xxs(src, y, nb); break;
    case MS_TYPE_IQ2_XS: deq_iq2_xs(src, y, nb); break;
    case MS_TYPE_IQ2_S: deq_iq2_s(src, y, nb); break;
    case MS_TYPE_IQ3_XXS: deq_iq3_xxs(src, y, nb); break;
    case MS_TYPE_IQ3_S: deq_iq3_s(src, y, nb); break;
    case MS_TYPE_IQ1_S: deq_iq1_s(src, y, nb); break;
    case MS_TYPE_IQ1_M: deq_iq1_m(src, y, nb); break;
    case MS_TYPE_IQ4_NL: deq_iq4_nl(src, y, nb); break;
    case MS_TYPE_IQ4_XS: deq_iq4_xs(src, y, nb); break;
    default:
        return -ENOTSUP;
    }
    return 0;
}

/* ---- activation quantization ---- */

static int nearest_int(float fval)
{
    float val = fval + 12582912.f;
    int i;
    memcpy(&i, &val, sizeof i);
    return (i & 0x007fffff) - 0x00400000;
}

static void quant_q8_K(const float *x, block_q8_K *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, x += QK_K) {
        float max = 0, amax = 0;
        for (int j = 0; j < QK_K; ++j) {
            float ax = fabsf(x[j]);
            if (ax > amax) {
                amax = ax;
                max = x[j];
            }
        }
        if (!amax) {
            y[i].d = 0;
            memset(y[i].qs, 0, QK_K);
            memset(y[i].bsums, 0, sizeof y[i].bsums);
            continue;
        }
        const float iscale = -127.f / max;
        for (int j = 0; j < QK_K; ++j) {
            int v = nearest_int(iscale * x[j]);
            y[i].qs[j] = (int8_t)(v < 127 ? v : 127);
        }
        for (int j = 0; j < QK_K / 16; ++j) {
            int sum = 0;
            for (int ii = 0; ii < 16; ++ii)
                sum += y[i].qs[j * 16 + ii];
            y[i].bsums[j] = (int16_t)sum;
        }
        y[i].d = 1 / iscale;
    }
}

/* Q8_0/Q8_1 as the reference's AVX path: amax, d = amax/127 stored as half,
 * q = round-half-even(x * (127/amax)). */
static float amax32(const float *x)
{
    float m = 0.0f;
    for (int j = 0; j < 32; j++) {
        float a = fabsf(x[j]);
        m = a > m ? a : m;
    }
    return m;
}

static void quant_q8_0(const float *x, block_q8_0 *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, x += 32) {
        const float amax = amax32(x);
        const float d = amax / 127.f;
        y[i].d = quant_f32_to_f16(d);
        const float id = amax != 0.0f ? 127.f / amax : 0.0f;
        for (int j = 0; j < 32; j++)
            y[i].qs[j] = (int8_t)nearbyintf(x[j] * id);
    }
}

static void quant_q8_1(const float *x, block_q8_1 *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, x += 32) {
        const float amax = amax32(x);
        const float d = amax / 127.f;
        y[i].d = quant_f32_to_f16(d);
        const float id = amax != 0.0f ? 127.f / amax : 0.0f;
        int sum = 0;
        for (int j = 0; j < 32; j++) {
            y[i].qs[j] = (int8_t)nearbyintf(x[j] * id);
            sum += y[i].qs[j];
        }
        y[i].s = quant_f32_to_f16(d * (float)sum);
    }
}

void quant_quantize_row(int act_type, const float *x, void *dst, int64_t n)
{
    switch (act_type) {
    case MS_TYPE_Q8_K: quant_q8_K(x, dst, n / QK_K); break;
    case MS_TYPE_Q8_0: quant_q8_0(x, dst, n / 32); break;
    case MS_TYPE_Q8_1: quant_q8_1(x, dst, n / 32); break;
    case MS_TYPE_F16:
        for (int64_t i = 0; i < n; i++)
            ((uint16_t *)dst)[i] = quant_f32_to_f16(x[i]);
        break;
    case MS_TYPE_BF16:
        for (int64_t i = 0; i < n; i++)
            ((uint16_t *)dst)[i] = quant_f32_to_bf16(x[i]);
        break;
    default: /* F32 */
        memcpy(dst, x, (size_t)n * 4);
        break;
    }
}

/* ---- the reference's x86 float order ----
 * The golden data comes from the reference built for x86-64 with AVX-512.
 * Its K/i-quant dot kernels keep eight int32 lanes per 256-block (lane m
 * holds bytes 4m..4m+3 of every 32-element chunk, the shape maddubs/madd
 * leave in a ymm), fold each block into eight float lanes with one FMA per
 * lane, and add the lanes at the end in hsum_float_8's tree.  Integer sums
 * are exact, so only the lane an element lands in matters. */

static inline int lane8(int e) { return (e & 31) >> 2; }

/* ((v4+v0)+(v6+v2)) + ((v5+v1)+(v7+v3)): extract-high + low, movehl, movehdup. */
static float hsum8_x86(const float v[8])
{
    const float r0 = v[4] + v[0], r1 = v[5] + v[1], r2 = v[6] + v[2], r3 = v[7] + v[3];
    return (r0 + r2) + (r1 + r3);
}

/* _mm512_reduce_add_ps as GCC expands it: halves, quarters, then pairs. */
float quant_reduce16_x86(const float v[16])
{
    float t3[8], t6[4];
    for (int i = 0; i < 8; i++)
        t3[i] = v[i + 8] + v[i];
    for (int i = 0; i < 4; i++)
        t6[i] = t3[i + 4] + t3[i];
    return (t6[0] + t6[2]) + (t6[1] + t6[3]);
}

static void lanes_fma(float acc[8], float d, const int32_t lane[8])
{
    for (int m = 0; m < 8; m++)
        acc[m] = fmaf(d, (float)lane[m], acc[m]);
}

bool quant_order_by_cols(int type)
{
    return type == MS_TYPE_F32 || type == MS_TYPE_F16 || type == MS_TYPE_BF16 || type == MS_TYPE_Q4_K ||
           type == MS_TYPE_Q2_K;
}

float quant_dot_f16_x86(int64_t n, const void *w, const void *a, bool tiny_blas)
{
    /* Both sides are F16; converted to F32 exactly, tinyBLAS multiplies as
     * in F32.  vec_dot is the F32C path of a CPU without AVX512-FP16 (the
     * golden data's): F32 lanes as vec_dot_f32, the reduced sum and the
     * tail in double. */
    const uint16_t *x = w, *y = a;
    float xf[64], yf[64];
    if (tiny_blas && n % 16 == 0) {
        float acc[16] = {0};
        for (int64_t i = 0; i < n; i += 16)
            for (int l = 0; l < 16; l++)
                acc[l] = fmaf(quant_f16_to_f32(x[i + l]), quant_f16_to_f32(y[i + l]), acc[l]);
        return quant_reduce16_x86(acc);
    }
    const int64_t np = n & ~(int64_t)63;
    float acc[4][16] = {{0}};
    for (int64_t i = 0; i < np; i += 64) {
        for (int k = 0; k < 64; k++) {
            xf[k] = quant_f16_to_f32(x[i + k]);
            yf[k] = quant_f16_to_f32(y[i + k]);
        }
        for (int j = 0; j < 4; j++)
            for (int l = 0; l < 16; l++)
                acc[j][l] = fmaf(xf[16 * j + l], yf[16 * j + l], acc[j][l]);
    }
    float lanes[16];
    for (int l = 0; l < 16; l++)
        lanes[l] = (acc[0][l] + acc[2][l]) + (acc[1][l] + acc[3][l]);
    double sum = (double)quant_reduce16_x86(lanes);
    for (int64_t i = np; i < n; i++)
        sum += (double)(quant_f16_to_f32(x[i]) * quant_f16_to_f32(y[i]));
    return (float)sum;
}

/* vdpbf16ps on one lane: the odd pair, then the even pair, each an FMA
 * with denormal inputs read as zero and a denormal result flushed. */
static float dpbf16(float acc, uint16_t a0, uint16_t a1, uint16_t b0, uint16_t b1)
{
    const float fa1 = quant_bf16_to_f32(a1), fb1 = quant_bf16_to_f32(b1);
    const float fa0 = quant_bf16_to_f32(a0), fb0 = quant_bf16_to_f32(b0);
#define DAZ(v) (fabsf(v) < 0x1p-126f ? 0.0f * (v) : (v))
    acc = DAZ(fmaf(DAZ(fa1), DAZ(fb1), DAZ(acc)));
    acc = DAZ(fmaf(DAZ(fa0), DAZ(fb0), acc));
#undef DAZ
    return acc;
}

float quant_dot_bf16_x86(int64_t n, const void *w, const void *a, bool tiny_blas)
{
    /* AVX512-BF16: tinyBLAS steps 32 elements with one vdpbf16ps
     * accumulator (lane i takes pairs 2i, 2i+1); vec_dot keeps two, for the
     * halves of each 64, reduces each into a double, and adds the tail in
     * double. */
    const uint16_t *x = w, *y = a;
    if (tiny_blas && n % 32 == 0) {
        float acc[16] = {0};
        for (int64_t i = 0; i < n; i += 32)
            for (int l = 0; l < 16; l++)
                acc[l] = dpbf16(acc[l], x[i + 2 * l], x[i + 2 * l + 1], y[i + 2 * l], y[i + 2 * l + 1]);
        return quant_reduce16_x86(acc);
    }
    float c1[16] = {0}, c2[16] = {0};
    int64_t i = 0;
    for (; i + 64 <= n; i += 64)
        for (int l = 0; l < 16; l++) {
            c1[l] = dpbf16(c1[l], x[i + 2 * l], x[i + 2 * l + 1], y[i + 2 * l], y[i + 2 * l + 1]);
            c2[l] = dpbf16(c2[l], x[i + 32 + 2 * l], x[i + 33 + 2 * l], y[i + 32 + 2 * l], y[i + 33 + 2 * l]);
        }
    double sum = 0.0;
    sum += (double)quant_reduce16_x86(c1);
    sum += (double)quant_reduce16_x86(c2);
    for (; i < n; i++)
        sum += (double)(quant_bf16_to_f32(x[i]) * quant_bf16_to_f32(y[i]));
    return (float)sum;
}

float quant_dot_f32_x86(int64_t n, const float *x, const float *y, bool tiny_blas)
{
    if (tiny_blas && n % 16 == 0) {
        /* tinyBLAS: one 16-lane FMA accumulator, then the 16-lane reduce */
        float acc[16] = {0};
        for (int64_t i = 0; i < n; i += 16)
            for (int l = 0; l < 16; l++)
                acc[l] = fmaf(x[i + l], y[i + l], acc[l]);
        return quant_reduce16_x86(acc);
    }
    /* ggml_vec_dot_f32 with AVX-512: four 16-lane FMA accumulators over
     * steps of 64, (0+2)+(1+3), the 16-lane reduce, then the tail as
     * rounded products added one by one. */
    float acc[4][16] = {{0}};
    const int64_t np = n & ~(int64_t)63;
    for (int64_t i = 0; i < np; i += 64)
        for (int j = 0; j < 4; j++)
            for (int l = 0; l < 16; l++)
                acc[j][l] = fmaf(x[i + 16 * j + l], y[i + 16 * j + l], acc[j][l]);
    for (int l = 0; l < 16; l++) {
        acc[0][l] = acc[0][l] + acc[2][l];
        acc[1][l] = acc[1][l] + acc[3][l];
    }
    for (int l = 0; l < 16; l++)
        acc[0][l] = acc[0][l] + acc[1][l];
    float sumf = quant_reduce16_x86(acc[0]);
    for (int64_t i = np; i < n; i++)
        sumf = sumf + x[i] * y[i];
    return sumf;
}

void quant_mul_mat_f32_ref(int64_t n, const float *w, size_t w_stride, int64_t row0, int64_t row1,
                           const float *a, size_t a_stride, int64_t ncols, float *out,
                           size_t out_stride)
{
    for (int64_t r = row0; r < row1; r++) {
        const float *wr = (const float *)((const uint8_t *)w + (size_t)r * w_stride);
        for (int64_t c = 0; c < ncols; c++)
            out[(size_t)c * out_stride + (size_t)r] =
                quant_dot_f32_x86(n, wr, (const float *)((const uint8_t *)a + (size_t)c * a_stride), ncols >= 2);
    }
}

/* One term of the repacked kernels' two chains (scale and min sums), then
 * the integer sums start again. */
static void chains_add(float *acc, float *accm, int32_t *isum, int32_t *msum, float dd, float dm)
{
    *acc = fmaf((float)*isum, dd, *acc);
    *accm = fmaf((float)*msum, dm, *accm);
    *isum = *msum = 0;
}

float quant_dot_q2_K_x86(int64_t n, const void *w, const void *a, bool gemm)
{
    /* Repacked like Q4_K (8x8, on AVX-512 CPUs): isum * (d*da) and
     * msum * (dmin*da) chains subtracted at the end; the gemv adds one
     * term per 256-block, the gemm one per 128-element half. */
    const block_q2_K *x = w;
    const block_q8_K *y = a;
    float acc = 0.0f, accm = 0.0f;
    for (int64_t b = 0; b < n / QK_K; b++) {
        const uint8_t *sc = x[b].scales;
        const float dd = H2F(x[b].d) * y[b].d, dm = H2F(x[b].dmin) * y[b].d;
        int32_t isum = 0, msum = 0;
        for (int g = 0; g < 16; g++) { /* 16-groups in element order */
            const int half = g / 8, pass = (g % 8) / 2, hi = g % 2;
            const uint8_t *q2 = x[b].qs + 32 * half + 16 * hi;
            const int8_t *q8 = y[b].qs + 16 * g;
            int32_t isuml = 0;
            for (int l = 0; l < 16; l++)
                isuml += q8[l] * ((q2[l] >> (2 * pass)) & 3);
            isum += (sc[g] & 0xF) * isuml;
            msum += y[b].bsums[g] * (sc[g] >> 4);
            if (gemm && g % 8 == 7) {
                chains_add(&acc, &accm, &isum, &msum, dd, dm);
            }
        }
        if (!gemm)
            chains_add(&acc, &accm, &isum, &msum, dd, dm);
    }
    return acc - accm;
}

float quant_dot_q4_K_x86(int64_t n, const void *w, const void *a, bool gemm)
{
    /* The reference repacks every Q4_K matrix with a multiple of 8 rows
     * (8x8 interleave) and runs two FMA chains per row, isum * (d*da) and
     * msum * (dmin*da), subtracted at the end.  Its gemv (a lone column)
     * adds one term per 256-block, its gemm (columns in fours) one per
     * 64-element pair of sub-blocks. */
    const block_q8_K *y = a;
    float acc = 0.0f, accm = 0.0f;
    for (int64_t b = 0; b < n / QK_K; b++) {
        const uint8_t *blk = (const uint8_t *)w + (size_t)b * 144;
        uint16_t dh, mh;
        memcpy(&dh, blk, 2);
        memcpy(&mh, blk + 2, 2);
        const float dd = H2F(dh) * y[b].d, dm = H2F(mh) * y[b].d;
        int32_t isum = 0, msum = 0;
        for (int j = 0; j < 8; j++) {
            uint8_t sc, m;
            get_scale_min_k4(j, blk + 4, &sc, &m);
            int32_t sub = 0;
            for (int l = 0; l < 32; l++) {
                const uint8_t byte = blk[16 + 32 * (j / 2) + l];
                sub += (j % 2 ? byte >> 4 : byte & 0xF) * y[b].qs[32 * j + l];
            }
            isum += sub * sc;
            msum += m * (y[b].bsums[2 * j] + y[b].bsums[2 * j + 1]);
            if (gemm && j % 2) {
                chains_add(&acc, &accm, &isum, &msum, dd, dm);
            }
        }
        if (!gemm)
            chains_add(&acc, &accm, &isum, &msum, dd, dm);
    }
    return acc - accm;
}

/* ---- dot products ---- */

void quant_vec_dot_ref(int type, int64_t n, float *s, const void *w, const void *a)
{
    const quant_type_info *ti = quant_info(type);
    float sumf = 0.0f;
    switch (type) {
    case MS_TYPE_F32:
        sumf = quant_dot_f32_x86(n, w, a, false);
        break;
    case MS_TYPE_F16:
        sumf = quant_dot_f16_x86(n, w, a, false);
        break;
    case MS_TYPE_BF16:
        sumf = quant_dot_bf16_x86(n, w, a, false);
        break;
    case MS_TYPE_Q8_0: {
        /* ggml_vec_dot_q8_0_q8_0 (AVX2) and tinyBLAS_Q0_AVX alike: eight
         * int32 lanes per 32-block, one FMA per lane with d_w*d_a. */
        const block_q8_0 *x = w, *y = a;
        float acc[8] = {0};
        for (int64_t b = 0; b < n / 32; b++) {
            int32_t lane[8] = {0};
            for (int j = 0; j < 32; j++)
                lane[j >> 2] += x[b].qs[j] * y[b].qs[j];
            lanes_fma(acc, H2F(x[b].d) * H2F(y[b].d), lane);
        }
        sumf = hsum8_x86(acc);
        break;
    }
    case MS_TYPE_Q4_0:
    case MS_TYPE_IQ4_NL: {
        /* The reference repacks these (8x8 interleave, every matrix with a
         * multiple of 8 rows): per row one FMA chain, one term per 32-block,
         * in its gemv and gemm alike. */
        const block_q8_0 *y = a;
        for (int64_t b = 0; b < n / 32; b++) {
            const uint8_t *blk = (const uint8_t *)w + (size_t)b * 18;
            uint16_t dh;
            memcpy(&dh, blk, 2);
            int sumi = 0;
            for (int j = 0; j < 16; j++) {
                const int lo = blk[2 + j] & 0x0F, hi = blk[2 + j] >> 4;
                const int w0 = type == MS_TYPE_Q4_0 ? lo - 8 : kvalues_iq4nl[lo];
                const int w1 = type == MS_TYPE_Q4_0 ? hi - 8 : kvalues_iq4nl[hi];
                sumi += w0 * y[b].qs[j] + w1 * y[b].qs[j + 16];
            }
            sumf = fmaf((float)sumi, H2F(dh) * H2F(y[b].d), sumf);
        }
        break;
    }
    case MS_TYPE_Q4_1:
    case MS_TYPE_Q5_1: {
        /* Against Q8_1: d_w*d_a*sum(q_w*q_a) + m_w*s_a, with s_a = d_a*sum(q_a). */
        const block_q8_1 *y = a;
        for (int64_t b = 0; b < n / 32; b++) {
            int sumi0 = 0, sumi1 = 0;
            uint16_t dh, mh;
            const uint8_t *qs;
            uint32_t qh = 0;
            if (type == MS_TYPE_Q4_1) {
                const block_q4_1 *x = (const block_q4_1 *)w + b;
                dh = x->d;
                mh = x->m;
                qs = x->qs;
            } else {
                const block_q5_1 *x = (const block_q5_1 *)w + b;
                dh = x->d;
                mh = x->m;
                qs = x->qs;
                memcpy(&qh, x->qh, 4);
            }
            for (int j = 0; j < 16; j++) {
                const int v0 = (qs[j] & 0x0F) | (((qh >> j) << 4) & 0x10);
                const int v1 = (qs[j] >> 4) | ((qh >> (j + 12)) & 0x10);
                sumi0 += v0 * y[b].qs[j];
                sumi1 += v1 * y[b].qs[j + 16];
            }
            const int sumi = sumi0 + sumi1;
            sumf += (H2F(dh) * H2F(y[b].d)) * (float)sumi + H2F(mh) * H2F(y[b].s);
        }
        break;
    }
    case MS_TYPE_Q5_0: {
        const block_q5_0 *x = w;
        const block_q8_0 *y = a;
        for (int64_t b = 0; b < n / 32; b++) {
            uint32_t qh;
            memcpy(&qh, x[b].qh, 4);
            int sumi0 = 0, sumi1 = 0;
            for (int j = 0; j < 16; j++) {
                const int x0 = ((x[b].qs[j] & 0x0F) | (((qh >> j) << 4) & 0x10)) - 16;
                const int x1 = ((x[b].qs[j] >> 4) | ((qh >> (j + 12)) & 0x10)) - 16;
                sumi0 += x0 * y[b].qs[j];
                sumi1 += x1 * y[b].qs[j + 16];
            }
            sumf += (H2F(x[b].d) * H2F(y[b].d)) * (float)(sumi0 + sumi1);
        }
        break;
    }
    case MS_TYPE_Q4_K:
        sumf = quant_dot_q4_K_x86(n, w, a, false);
        break;
    case MS_TYPE_Q5_K: {
        /* ggml_vec_dot_q5_K_q8_K (AVX2): eight lanes, one scale per 32; the
         * mins as one scalar FMA chain with -d_a*dmin, added last. */
        const block_q8_K *y = a;
        float acc[8] = {0}, summs = 0.0f;
        for (int64_t b = 0; b < n / QK_K; b++) {
            const uint8_t *blk = (const uint8_t *)w + (size_t)b * (size_t)ti->type_size;
            uint16_t dh, mh;
            memcpy(&dh, blk, 2);
            memcpy(&mh, blk + 2, 2);
            int32_t lane[8] = {0}, msum = 0;
            for (int j = 0; j < 8; j++) {
                uint8_t sc, m;
                get_scale_min_k4(j, blk + 4, &sc, &m);
                for (int l = 0; l < 32; l++) {
                    const uint8_t byte = blk[48 + 32 * (j / 2) + l];
                    const int q = (j % 2 ? byte >> 4 : byte & 0xF) + ((blk[16 + l] >> j) & 1 ? 16 : 0);
                    lane[lane8(l)] += sc * (q * y[b].qs[32 * j + l]);
                }
                msum += m * (y[b].bsums[2 * j] + y[b].bsums[2 * j + 1]);
            }
            const float d = y[b].d * H2F(dh), dmin = -y[b].d * H2F(mh);
            summs = fmaf(dmin, (float)msum, summs);
            lanes_fma(acc, d, lane);
        }
        sumf = hsum8_x86(acc) + summs;
        break;
    }
    case MS_TYPE_Q6_K: {
        /* ggml_vec_dot_q6_K_q8_K (AVX2): unsigned 6-bit values in the lanes;
         * the -32 comes back per lane as 32 * (bsums * scales) of 16-groups
         * 2m and 2m+1. */
        const block_q6_K *x = w;
        const block_q8_K *y = a;
        float acc[8] = {0};
        for (int64_t b = 0; b < n / QK_K; b++) {
            int32_t lane[8] = {0};
            for (int e = 0; e < QK_K; e++) {
                const int half = e / 128, quarter = (e % 128) / 32, l = e % 32;
                const uint8_t *ql = x[b].ql + 64 * half, *qh = x[b].qh + 32 * half;
                int q;
                switch (quarter) {
                case 0: q = (ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4); break;
                case 1: q = (ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4); break;
                case 2: q = (ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4); break;
                default: q = (ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4); break;
                }
                lane[lane8(e)] += x[b].scales[e / 16] * (q * y[b].qs[e]);
            }
            for (int m = 0; m < 8; m++)
                lane[m] -= 32 * (y[b].bsums[2 * m] * x[b].scales[2 * m] +
                                 y[b].bsums[2 * m + 1] * x[b].scales[2 * m + 1]);
            lanes_fma(acc, y[b].d * H2F(x[b].d), lane);
        }
        sumf = hsum8_x86(acc);
        break;
    }
    case MS_TYPE_IQ2_XXS: {
        /* ggml_vec_dot_iq2_xxs_q8_K (AVX2): eight lanes, 1/8 after the sum. */
        const block_iq2_xxs *x = w;
        const block_q8_K *y = a;
        float acc[8] = {0};
        for (int64_t b = 0; b < n / QK_K; b++) {
            int32_t lane[8] = {0};
            for (int ib = 0; ib < 8; ib++) {
                uint32_t aux[2];
                memcpy(aux, x[b].qs + 4 * ib, 8);
                const uint8_t *a8 = (const uint8_t *)aux;
                const int32_t ls = 2 * (int32_t)(aux[1] >> 28) + 1;
                for (int l = 0; l < 4; l++) {
                    const uint8_t *grid = (const uint8_t *)(iq2xxs_grid + a8[l]);
                    const uint8_t signs = ksigns_iq2xs[(aux[1] >> 7 * l) & 127];
                    for (int j = 0; j < 8; j++) {
                        const int e = 8 * l + j;
                        lane[lane8(e)] += ls * (grid[j] * y[b].qs[32 * ib + e] * (signs & kmask_iq2xs[j] ? -1 : 1));
                    }
                }
            }
            lanes_fma(acc, H2F(x[b].d) * y[b].d, lane);
        }
        sumf = 0.125f * hsum8_x86(acc);
        break;
    }
    case MS_TYPE_IQ1_S: {
        /* ggml_vec_dot_iq1_s_q8_K (AVX2): grid term in eight lanes; delta
         * term one scalar FMA chain (the compiler contracts it), times
         * IQ1S_DELTA and added last. */
        const block_iq1_s *x = w;
        const block_q8_K *y = a;
        float acc[8] = {0}, acc1 = 0.0f;
        for (int64_t b = 0; b < n / QK_K; b++) {
            int32_t lane[8] = {0}, sumi1 = 0;
            for (int ib = 0; ib < 8; ib++) {
                const uint16_t h = x[b].qh[ib];
                const int32_t ls = 2 * ((h >> 12) & 7) + 1;
                for (int l = 0; l < 4; l++) {
                    const int8_t *grid = (const int8_t *)(iq1s_grid + (x[b].qs[4 * ib + l] | (((h >> 3 * l) & 7) << 8)));
                    for (int j = 0; j < 8; j++) {
                        const int e = 8 * l + j;
                        lane[lane8(e)] += ls * (grid[j] * y[b].qs[32 * ib + e]);
                    }
                }
                sumi1 += (y[b].bsums[2 * ib] + y[b].bsums[2 * ib + 1]) * (h & 0x8000 ? -1 : 1) * ls;
            }
            const float d = y[b].d * H2F(x[b].d);
            lanes_fma(acc, d, lane);
            acc1 = fmaf(d, (float)sumi1, acc1);
        }
        sumf = hsum8_x86(acc) + IQ1S_DELTA * acc1;
        break;
    }
    case MS_TYPE_Q2_K:
        sumf = quant_dot_q2_K_x86(n, w, a, false);
        break;
    case MS_TYPE_Q3_K: {
        /* ggml_vec_dot_q3_K_q8_K (AVX2): eight lanes, one FMA per lane. */
        const block_q3_K *x = w;
        const block_q8_K *y = a;
        float acc[8] = {0};
        for (int64_t b = 0; b < n / QK_K; b++) {
            int8_t sc[16];
            q3_K_scales(x[b].scales, sc);
            int32_t lane[8] = {0};
            for (int e = 0; e < QK_K; e++) {
                const int half = e / 128, pass = (e % 128) / 32, l = e % 32;
                const int q = ((x[b].qs[32 * half + l] >> (2 * pass)) & 3) -
                              (x[b].hmask[l] & (1u << (4 * half + pass)) ? 0 : 4);
                lane[lane8(e)] += sc[e / 16] * (q * y[b].qs[e]);
            }
            lanes_fma(acc, y[b].d * H2F(x[b].d), lane);
        }
        sumf = hsum8_x86(acc);
        break;
    }
    case MS_TYPE_IQ2_XS:
    case MS_TYPE_IQ2_S: {
        /* ggml_vec_dot_iq2_xs/_s_q8_K (AVX2): eight lanes, two 4-bit scales
         * per 32 (elements 0-15, 16-31), 1/8 after the sum. */
        const block_q8_K *y = a;
        float acc[8] = {0};
        for (int64_t b = 0; b < n / QK_K; b++) {
            const uint8_t *blk = (const uint8_t *)w + (size_t)b * (size_t)ti->type_size;
            uint16_t dh;
            memcpy(&dh, blk, 2);
            int32_t lane[8] = {0};
            for (int ib = 0; ib < 8; ib++) {
                const block_iq2_xs *x2 = (const block_iq2_xs *)blk;
                const block_iq2_s *xs = (const block_iq2_s *)blk;
                const uint8_t scb = type == MS_TYPE_IQ2_XS ? x2->scales[ib] : xs->scales[ib];
                const int32_t ls[2] = {2 * (scb & 0xf) + 1, 2 * (scb >> 4) + 1};
                for (int l = 0; l < 4; l++) {
                    const uint8_t *grid;
                    uint8_t signs;
                    if (type == MS_TYPE_IQ2_XS) {
                        const uint16_t q = x2->qs[4 * ib + l];
                        grid = (const uint8_t *)(iq2xs_grid + (q & 511));
                        signs = ksigns_iq2xs[q >> 9];
                    } else {
                        grid = (const uint8_t *)(iq2s_grid + (xs->qs[4 * ib + l] |
                                                              ((xs->qh[ib] << (8 - 2 * l)) & 0x300)));
                        signs = xs->qs[QK_K / 8 + 4 * ib + l];
                    }
                    const int8_t *q8 = y[b].qs + 32 * ib + 8 * l;
                    for (int j = 0; j < 8; j++)
                        lane[lane8(8 * l + j)] += ls[l / 2] * (grid[j] * q8[j] * (signs & kmask_iq2xs[j] ? -1 : 1));
                }
            }
            lanes_fma(acc, H2F(dh) * y[b].d, lane);
        }
        sumf = 0.125f * hsum8_x86(acc);
        break;
    }
    case MS_TYPE_IQ3_XXS: {
        /* ggml_vec_dot_iq3_xxs_q8_K (AVX2): eight lanes, 1/4 after the sum. */
        const block_iq3_xxs *x = w;
        const block_q8_K *y = a;
        float acc[8] = {0};
        for (int64_t b = 0; b < n / QK_K; b++) {
            int32_t lane[8] = {0};
            for (int ib = 0; ib < 8; ib++) {
                uint32_t aux;
                memcpy(&aux, x[b].qs + QK_K / 4 + 4 * ib, 4);
                const int32_t ls = 2 * (int32_t)(aux >> 28) + 1;
                for (int l = 0; l < 4; l++) {
                    const uint8_t *g1 = (const uint8_t *)(iq3xxs_grid + x[b].qs[8 * ib + 2 * l]);
                    const uint8_t *g2 = (const uint8_t *)(iq3xxs_grid + x[b].qs[8 * ib + 2 * l + 1]);
                    const uint8_t signs = ksigns_iq2xs[(aux >> 7 * l) & 127];
                    const int8_t *q8 = y[b].qs + 32 * ib + 8 * l;
                    for (int j = 0; j < 4; j++) {
                        lane[lane8(8 * l + j)] += ls * (g1[j] * q8[j] * (signs & kmask_iq2xs[j] ? -1 : 1));
                        lane[lane8(8 * l + 4 + j)] += ls * (g2[j] * q8[j + 4] * (signs & kmask_iq2xs[j + 4] ? -1 : 1));
                    }
                }
            }
            lanes_fma(acc, H2F(x[b].d) * y[b].d, lane);
        }
        sumf = 0.25f * hsum8_x86(acc);
        break;
    }
    case MS_TYPE_IQ3_S: {
        /* ggml_vec_dot_iq3_s_q8_K (AVX2): eight lanes, one scale per 32. */
        const block_iq3_s *x = w;
        const block_q8_K *y = a;
        float acc[8] = {0};
        for (int64_t b = 0; b < n / QK_K; b++) {
            int32_t lane[8] = {0};
            for (int ib = 0; ib < 8; ib++) {
                const int32_t ls = 2 * ((x[b].scales[ib / 2] >> (4 * (ib % 2))) & 0xf) + 1;
                const uint8_t h = x[b].qh[ib];
                for (int l = 0; l < 4; l++) {
                    const uint8_t *qs = x[b].qs + 8 * ib + 2 * l;
                    const uint8_t *g1 = (const uint8_t *)(iq3s_grid + (qs[0] | ((h << (8 - 2 * l)) & 256)));
                    const uint8_t *g2 = (const uint8_t *)(iq3s_grid + (qs[1] | ((h << (7 - 2 * l)) & 256)));
                    const uint8_t signs = x[b].signs[4 * ib + l];
                    const int8_t *q8 = y[b].qs + 32 * ib + 8 * l;
                    for (int j = 0; j < 4; j++) {
                        lane[lane8(8 * l + j)] += ls * (g1[j] * q8[j] * (signs & kmask_iq2xs[j] ? -1 : 1));
                        lane[lane8(8 * l + 4 + j)] += ls * (g2[j] * q8[j + 4] * (signs & kmask_iq2xs[j + 4] ? -1 : 1));
                    }
                }
            }
            lanes_fma(acc, H2F(x[b].d) * y[b].d, lane);
        }
        sumf = hsum8_x86(acc);
        break;
    }
    case MS_TYPE_IQ1_M: {
        /* ggml_vec_dot_iq1_m_q8_K (AVX2): grid and delta terms in two sets
         * of eight lanes; hsum(grid) + IQ1M_DELTA * hsum(delta). */
        const block_iq1_m *x = w;
        const block_q8_K *y = a;
        float acc1[8] = {0}, acc2[8] = {0};
        for (int64_t b = 0; b < n / QK_K; b++) {
            uint16_t sc[4];
            memcpy(sc, x[b].scales, 8);
            const uint8_t *qs = x[b].qs, *qh = x[b].qh;
            int32_t lane1[8] = {0}, lane2[8] = {0};
            for (int ib = 0; ib < 8; ib++) {
                const int delta[4] = {qh[0] & 0x08 ? -1 : 1, qh[0] & 0x80 ? -1 : 1,
                                      qh[1] & 0x08 ? -1 : 1, qh[1] & 0x80 ? -1 : 1};
                const int ls[2] = {2 * ((sc[ib / 2] >> (6 * (ib % 2) + 0)) & 0x7) + 1,
                                   2 * ((sc[ib / 2] >> (6 * (ib % 2) + 3)) & 0x7) + 1};
                for (int l = 0; l < 4; l++) {
                    const int8_t *grid = (const int8_t *)(iq1s_grid + (qs[l] | (((uint16_t)qh[l / 2] << (8 - 4 * (l % 2))) & 0x700)));
                    const int8_t *q8 = y[b].qs + 32 * ib + 8 * l;
                    for (int j = 0; j < 8; j++) {
                        const int e = 8 * l + j;
                        lane1[lane8(e)] += ls[l / 2] * (q8[j] * grid[j]);
                        lane2[lane8(e)] += ls[l / 2] * (q8[j] * delta[l]);
                    }
                }
                qs += 4;
                qh += 2;
            }
            const float d = y[b].d * iq1m_d(&x[b]);
            lanes_fma(acc1, d, lane1);
            lanes_fma(acc2, d, lane2);
        }
        sumf = hsum8_x86(acc1) + IQ1M_DELTA * hsum8_x86(acc2);
        break;
    }
    case MS_TYPE_IQ4_XS: {
        /* ggml_vec_dot_iq4_xs_q8_K (AVX2): eight lanes, scale - 32 per 32. */
        const block_iq4_xs *x = w;
        const block_q8_K *y = a;
        float acc[8] = {0};
        for (int64_t b = 0; b < n / QK_K; b++) {
            int32_t lane[8] = {0};
            for (int ib = 0; ib < 8; ib++) {
                const int ls = (((x[b].scales_l[ib / 2] >> (4 * (ib % 2))) & 0xf) |
                                (((x[b].scales_h >> (2 * ib)) & 3) << 4)) - 32;
                const uint8_t *qs = x[b].qs + 16 * ib;
                const int8_t *q8 = y[b].qs + 32 * ib;
                for (int j = 0; j < 16; j++) {
                    lane[lane8(j)] += ls * (q8[j] * kvalues_iq4nl[qs[j] & 0xf]);
                    lane[lane8(j + 16)] += ls * (q8[j + 16] * kvalues_iq4nl[qs[j] >> 4]);
                }
            }
            lanes_fma(acc, H2F(x[b].d) * y[b].d, lane);
        }
        sumf = hsum8_x86(acc);
        break;
    }
    default:
        sumf = NAN; /* not a weight type: callers validated the type */
        break;
    }
    *s = sumf;
}

/* ---- random valid blocks ---- */

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
    case MS_TYPE_Q4_1: *n = 2; off[1] = 2; *code = 15; break;
    case MS_TYPE_Q5_0: *code = 16; break;
    case MS_TYPE_Q5_1: *n = 2; off[1] = 2; *code = 31; break;
    case MS_TYPE_Q8_0: *code = 127; break;
    case MS_TYPE_Q2_K: *n = 2; off[0] = 80; off[1] = 82; *code = 45; break;
    case MS_TYPE_Q3_K: off[0] = 108; *code = 128; break;
    case MS_TYPE_Q4_K: *n = 2; off[1] = 2; *code = 945; break;
    case MS_TYPE_Q5_K: *n = 2; off[1] = 2; *code = 1953; break;
    case MS_TYPE_Q6_K: off[0] = 208; *code = 4064; break;
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
            memcpy(sc, tmp + 48, 8);
            for (int k = 0; k < 4; k++)
                sc[k] = (uint16_t)((sc[k] & 0x0fff) | (((h >> (4 * k)) & 0xf) << 12));
            memcpy(tmp + 48, sc, 8);
        }
        memcpy(blk, tmp, ts);
    }
    *rng = st;
}
