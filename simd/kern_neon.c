/* kern_neon.c - NEON kernels (aarch64), with the dotprod extension (SDOT)
 * where the CPU has it.
 *
 * Owns: kern_table_neon.  Dotprod is checked once at run time
 * (getauxval(AT_HWCAP) & HWCAP_ASIMDDP), and MOESTREAM_NEON_DOTPROD=0 turns
 * it off (tests run both paths; `make neon-test` runs this file under
 * qemu-aarch64 with -cpu max and -cpu cortex-a53, which lacks dotprod).  The
 * file is compiled with -march=armv8.2-a+dotprod, so the non-dotprod path is
 * written with explicit widening multiplies (SMULL + SADALP) and must never
 * reach SDOT: the cortex-a53 run would die with SIGILL if it did.
 *
 * Bit-exact with the scalar reference (simd/quant_ref.c), which follows the
 * reference engine's x86 float order: SIMD computes the integer sums (exact
 * in any order) in the shape the reference's float steps need, and the
 * float steps are the reference's, in its order.
 * - Q5_K, Q6_K, IQ1_S, IQ1_M, IQ2_XXS (Q8_0: per 32-block): eight int32
 *   lanes per 256-block, lane m = bytes 4m..4m+3 of each 32-element chunk
 *   (one SDOT result lane, or SMULL plus two pairwise adds), one vfmaq_f32
 *   per lane and block, hsum8_x86's
 *   tree at the end; Q5_K's mins and IQ1_S's delta as scalar fmaf chains,
 *   IQ1_M's delta as a second set of lanes.
 * - Q4_K: two scalar fmaf chains (isum and msum), one term per block for
 *   vec_dot and the tail columns of mul_mat (gemv), one per 64 elements for
 *   mul_mat columns in groups of four (gemm; quant_order_by_cols).
 * Fused steps are written as fmaf/vfmaq_f32; everything else must stay
 * unfused, so this file is compiled with -ffp-contract=off (Makefile,
 * tests/neon_qemu.sh): aarch64 GCC would otherwise contract a*b+c.
 * Specialised: Q4_K, Q5_K, Q6_K, IQ1_S, IQ1_M, IQ2_XXS, Q8_0 dots; Q8_K
 * and Q8_0 quantization; Q6_K, Q4_K, Q5_K, Q8_0, F16, BF16 dequantization
 * (bit-identical to quant_dequantize_row).  The other types (F32 included)
 * keep the scalar entries (not on an R1 hot path: UD-IQ1_S uses
 * IQ1_S/IQ2_XXS experts and Q4_K/Q5_K/Q6_K resident weights). */
#include <arm_neon.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>

#include "kern_isa.h"
#include "quant.h"
#include "quant_blocks.h"
#include "quant_grids.h"
#include "vmath.h"

#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1 << 20)
#endif

const kern_table *kern_table_neon(void);

#define INLINE static inline __attribute__((always_inline))

/* ---- the reference's eight int32 / float lanes ----
 * Q5_K, Q6_K, IQ1_S and IQ2_XXS follow the reference's x86 order
 * (quant_ref.c, "the reference's x86 float order"): lane m of a 256-block
 * holds bytes 4m..4m+3 of every 32-element chunk, so a chunk's first 16
 * bytes feed lanes 0-3 (`lo`) and its last 16 lanes 4-7 (`hi`), one lane per
 * 4 consecutive bytes - exactly SDOT's result shape.  Each block is folded
 * into eight float lanes with one FMA each (vfmaq_f32 = fmaf per lane); the
 * lanes are added at the end in hsum8_x86's tree. */

/* Lane i += a[4i..4i+3] . b[4i..4i+3].  The SMULL path adds product pairs in
 * int16 first: exact while one operand is within [-127, 127] (the Q8_K
 * activations) and the other within [-128, 127]: |2 * 128 * 127| < 2^15. */
INLINE int32x4_t dot4_mull(int32x4_t acc, int8x16_t a, int8x16_t b)
{
    const int16x8_t p = vpaddq_s16(vmull_s8(vget_low_s8(a), vget_low_s8(b)), vmull_high_s8(a, b));
    return vpadalq_s16(acc, p);
}

#define DOT4A(dp, acc, a, b) ((dp) ? vdotq_s32(acc, a, b) : dot4_mull(acc, a, b))
#define DOT4(dp, a, b) DOT4A(dp, vdupq_n_s32(0), a, b)

/* acc[m] = fmaf(d, (float)lane[m], acc[m]) for the eight lanes. */
INLINE void lanes_fma(float32x4_t acc[2], float d, int32x4_t lo, int32x4_t hi)
{
    const float32x4_t vd = vdupq_n_f32(d);
    acc[0] = vfmaq_f32(acc[0], vd, vcvtq_f32_s32(lo));
    acc[1] = vfmaq_f32(acc[1], vd, vcvtq_f32_s32(hi));
}

/* ((a4+a0)+(a6+a2)) + ((a5+a1)+(a7+a3)), as hsum8_x86. */
INLINE float hsum8(const float32x4_t acc[2])
{
    const float32x4_t r = vaddq_f32(acc[1], acc[0]);
    return (vgetq_lane_f32(r, 0) + vgetq_lane_f32(r, 2)) + (vgetq_lane_f32(r, 1) + vgetq_lane_f32(r, 3));
}

/* ---- Q4_K / Q5_K ---- */

/* The 12 packed bytes -> eight 6-bit scales and eight 6-bit mins
 * (get_scale_min_k4 for j = 0..7, four at a time). */
INLINE void k4_scales(const uint8_t *packed, uint8_t sc[8], uint8_t mn[8])
{
    uint32_t u[4];
    memcpy(u, packed, 12);
    u[3] = ((u[2] >> 4) & 0x0f0f0f0f) | (((u[1] >> 6) & 0x03030303) << 4);
    const uint32_t mins_lo = u[1] & 0x3f3f3f3f;
    u[1] = (u[2] & 0x0f0f0f0f) | (((u[0] >> 6) & 0x03030303) << 4);
    u[2] = mins_lo;
    u[0] &= 0x3f3f3f3f;
    memcpy(sc, u, 8);
    memcpy(mn, u + 2, 8);
}

/* mn[j] * (bsums[2j] + bsums[2j+1]) for j = 0..7, as two int32x4 (j 0-3,
 * 4-7).  A pair of 16-sums is at most 32 * 127 in magnitude: int16 holds it. */
INLINE void k4_mins(const int16_t *bsums, const uint8_t mn[8], int32x4_t *p0, int32x4_t *p1)
{
    const int16x8_t bs = vpaddq_s16(vld1q_s16(bsums), vld1q_s16(bsums + 8));
    const int16x8_t m = vreinterpretq_s16_u16(vmovl_u8(vld1_u8(mn)));
    *p0 = vmull_s16(vget_low_s16(bs), vget_low_s16(m));
    *p1 = vmull_high_s16(bs, m);
}

/* Q4_K as quant_dot_q4_K_x86: two scalar FMA chains, A += isum * (d*da) and
 * M += msum * (dmin*da), result A - M; gemv adds one term per 256-block,
 * gemm one per 64-element pair of sub-blocks. */
INLINE float dot_q4k(const int dp, int64_t n, const void *w, const void *a, const int gemm)
{
    const block_q4_K *x = w;
    const block_q8_K *y = a;
    const uint8x16_t m4 = vdupq_n_u8(0x0F);
    float acc = 0.0f, accm = 0.0f;
    for (int64_t b = 0; b < n / QK_K; b++) {
        uint8_t sc[8], mn[8];
        k4_scales(x[b].scales, sc, mn);
        int32x4_t s[4]; /* per pair c of sub-blocks: sc-weighted sums, 4 partial lanes */
        for (int c = 0; c < 4; c++) {
            const uint8x16_t q0 = vld1q_u8(x[b].qs + 32 * c), q1 = vld1q_u8(x[b].qs + 32 * c + 16);
            const int8_t *q8 = y[b].qs + 64 * c;
            int32x4_t lo = DOT4(dp, vreinterpretq_s8_u8(vandq_u8(q0, m4)), vld1q_s8(q8));
            lo = DOT4A(dp, lo, vreinterpretq_s8_u8(vandq_u8(q1, m4)), vld1q_s8(q8 + 16));
            int32x4_t hi = DOT4(dp, vreinterpretq_s8_u8(vshrq_n_u8(q0, 4)), vld1q_s8(q8 + 32));
            hi = DOT4A(dp, hi, vreinterpretq_s8_u8(vshrq_n_u8(q1, 4)), vld1q_s8(q8 + 48));
            s[c] = vmlaq_n_s32(vmulq_n_s32(lo, sc[2 * c]), hi, sc[2 * c + 1]);
        }
        int32x4_t p0, p1;
        k4_mins(y[b].bsums, mn, &p0, &p1);
        const float dd = quant_f16_to_f32(x[b].d) * y[b].d, dm = quant_f16_to_f32(x[b].dmin) * y[b].d;
        if (gemm) {
            int32_t is[4], ms[4];
            vst1q_s32(is, vpaddq_s32(vpaddq_s32(s[0], s[1]), vpaddq_s32(s[2], s[3])));
            vst1q_s32(ms, vpaddq_s32(p0, p1));
            for (int c = 0; c < 4; c++) {
                acc = fmaf((float)is[c], dd, acc);
                accm = fmaf((float)ms[c], dm, accm);
            }
        } else {
            const int32_t isum = vaddvq_s32(vaddq_s32(vaddq_s32(s[0], s[1]), vaddq_s32(s[2], s[3])));
            const int32_t msum = vaddvq_s32(vaddq_s32(p0, p1));
            acc = fmaf((float)isum, dd, acc);
            accm = fmaf((float)msum, dm, accm);
        }
    }
    return acc - accm;
}

/* Q5_K: eight lanes with one scale per 32; the mins as one scalar FMA chain
 * with -d_a*dmin, added after the lane sum. */
INLINE float dot_q5k(const int dp, int64_t n, const void *w, const void *a)
{
    const block_q5_K *x = w;
    const block_q8_K *y = a;
    const uint8x16_t m4 = vdupq_n_u8(0x0F), s16 = vdupq_n_u8(16);
    float32x4_t acc[2] = {vdupq_n_f32(0.0f), vdupq_n_f32(0.0f)};
    float summs = 0.0f;
    for (int64_t b = 0; b < n / QK_K; b++) {
        uint8_t sc[8], mn[8];
        k4_scales(x[b].scales, sc, mn);
        const uint8x16_t h0 = vld1q_u8(x[b].qh), h1 = vld1q_u8(x[b].qh + 16);
        int32x4_t lo = vdupq_n_s32(0), hi = vdupq_n_s32(0);
        for (int c = 0; c < 4; c++) {
            const uint8x16_t q0 = vld1q_u8(x[b].qs + 32 * c), q1 = vld1q_u8(x[b].qs + 32 * c + 16);
            /* bit 2c of qh[l] -> +16 for the low nibbles, bit 2c+1 for the high */
            const uint8x16_t bl = vdupq_n_u8((uint8_t)(1u << (2 * c))), bh = vdupq_n_u8((uint8_t)(2u << (2 * c)));
            const uint8x16_t l0 = vorrq_u8(vandq_u8(q0, m4), vandq_u8(vtstq_u8(h0, bl), s16));
            const uint8x16_t l1 = vorrq_u8(vandq_u8(q1, m4), vandq_u8(vtstq_u8(h1, bl), s16));
            const uint8x16_t u0 = vorrq_u8(vshrq_n_u8(q0, 4), vandq_u8(vtstq_u8(h0, bh), s16));
            const uint8x16_t u1 = vorrq_u8(vshrq_n_u8(q1, 4), vandq_u8(vtstq_u8(h1, bh), s16));
            const int8_t *q8 = y[b].qs + 64 * c;
            lo = vmlaq_n_s32(lo, DOT4(dp, vreinterpretq_s8_u8(l0), vld1q_s8(q8)), sc[2 * c]);
            hi = vmlaq_n_s32(hi, DOT4(dp, vreinterpretq_s8_u8(l1), vld1q_s8(q8 + 16)), sc[2 * c]);
            lo = vmlaq_n_s32(lo, DOT4(dp, vreinterpretq_s8_u8(u0), vld1q_s8(q8 + 32)), sc[2 * c + 1]);
            hi = vmlaq_n_s32(hi, DOT4(dp, vreinterpretq_s8_u8(u1), vld1q_s8(q8 + 48)), sc[2 * c + 1]);
        }
        int32x4_t p0, p1;
        k4_mins(y[b].bsums, mn, &p0, &p1);
        const int32_t msum = vaddvq_s32(vaddq_s32(p0, p1));
        const float d = y[b].d * quant_f16_to_f32(x[b].d), dmin = -y[b].d * quant_f16_to_f32(x[b].dmin);
        summs = fmaf(dmin, (float)msum, summs);
        lanes_fma(acc, d, lo, hi);
    }
    return hsum8(acc) + summs;
}

/* ---- Q6_K ---- */

/* Unsigned 6-bit values in the lanes; the -32 comes back per lane m as
 * 32 * (bsums * scales) of 16-groups 2m and 2m+1 (the reference's shape). */
INLINE float dot_q6k(const int dp, int64_t n, const void *w, const void *a)
{
    const block_q6_K *x = w;
    const block_q8_K *y = a;
    const uint8x16_t m4 = vdupq_n_u8(0x0F), m3 = vdupq_n_u8(3);
    float32x4_t acc[2] = {vdupq_n_f32(0.0f), vdupq_n_f32(0.0f)};
    for (int64_t b = 0; b < n / QK_K; b++) {
        int32x4_t lanes[2] = {vdupq_n_s32(0), vdupq_n_s32(0)};
        for (int half = 0; half < 2; half++) {
            const uint8_t *ql = x[b].ql + 64 * half, *qh = x[b].qh + 32 * half;
            const int8_t *sc = x[b].scales + 8 * half;
            const int8_t *q8 = y[b].qs + 128 * half;
            for (int k = 0; k < 2; k++) { /* l in [16k, 16k+16): lanes 4k..4k+3 */
                const uint8x16_t L0 = vld1q_u8(ql + 16 * k), L1 = vld1q_u8(ql + 32 + 16 * k);
                const uint8x16_t H = vld1q_u8(qh + 16 * k);
                uint8x16_t q[4];
                q[0] = vorrq_u8(vandq_u8(L0, m4), vshlq_n_u8(vandq_u8(H, m3), 4));
                q[1] = vorrq_u8(vandq_u8(L1, m4), vshlq_n_u8(vandq_u8(vshrq_n_u8(H, 2), m3), 4));
                q[2] = vorrq_u8(vshrq_n_u8(L0, 4), vshlq_n_u8(vandq_u8(vshrq_n_u8(H, 4), m3), 4));
                q[3] = vorrq_u8(vshrq_n_u8(L1, 4), vshlq_n_u8(vshrq_n_u8(H, 6), 4));
                for (int qt = 0; qt < 4; qt++) /* 16 elements 32*qt + 16k + [0,16): one scale */
                    lanes[k] = vmlaq_n_s32(lanes[k], DOT4(dp, vreinterpretq_s8_u8(q[qt]), vld1q_s8(q8 + 32 * qt + 16 * k)),
                                           sc[k + 2 * qt]);
            }
        }
        const int8x16_t scv = vld1q_s8(x[b].scales);
        const int16x8_t sc0 = vmovl_s8(vget_low_s8(scv)), sc1 = vmovl_high_s8(scv);
        const int16x8_t bs0 = vld1q_s16(y[b].bsums), bs1 = vld1q_s16(y[b].bsums + 8);
        const int32x4_t c0 = vpaddq_s32(vmull_s16(vget_low_s16(bs0), vget_low_s16(sc0)), vmull_high_s16(bs0, sc0));
        const int32x4_t c1 = vpaddq_s32(vmull_s16(vget_low_s16(bs1), vget_low_s16(sc1)), vmull_high_s16(bs1, sc1));
        lanes_fma(acc, y[b].d * quant_f16_to_f32(x[b].d), vsubq_s32(lanes[0], vshlq_n_s32(c0, 5)),
                  vsubq_s32(lanes[1], vshlq_n_s32(c1, 5)));
    }
    return hsum8(acc);
}

/* ---- IQ1_S / IQ1_M ---- */

INLINE int8x16_t grid2(uint32_t i0, uint32_t i1)
{
    return vreinterpretq_s8_u64(vcombine_u64(vcreate_u64(iq1s_grid[i0]), vcreate_u64(iq1s_grid[i1])));
}

/* Grid term in the eight lanes; the delta term as one scalar FMA chain,
 * times IQ1S_DELTA and added last. */
INLINE float dot_iq1s(const int dp, int64_t n, const void *w, const void *a)
{
    const block_iq1_s *x = w;
    const block_q8_K *y = a;
    float32x4_t acc[2] = {vdupq_n_f32(0.0f), vdupq_n_f32(0.0f)};
    float acc1 = 0.0f;
    for (int64_t b = 0; b < n / QK_K; b++) {
        int32x4_t lo = vdupq_n_s32(0), hi = vdupq_n_s32(0);
        int32_t sumi1 = 0;
        for (int ib = 0; ib < 8; ib++) {
            const uint32_t h = x[b].qh[ib];
            const uint8_t *qs = x[b].qs + 4 * ib;
            const int8x16_t g0 = grid2(qs[0] | ((h << 8) & 0x700), qs[1] | ((h << 5) & 0x700));
            const int8x16_t g1 = grid2(qs[2] | ((h << 2) & 0x700), qs[3] | ((h >> 1) & 0x700));
            const int8_t *q8 = y[b].qs + 32 * ib;
            const int32_t ls = 2 * ((h >> 12) & 7) + 1;
            lo = vmlaq_n_s32(lo, DOT4(dp, g0, vld1q_s8(q8)), ls);
            hi = vmlaq_n_s32(hi, DOT4(dp, g1, vld1q_s8(q8 + 16)), ls);
            sumi1 += ls * (h & 0x8000 ? -1 : 1) * (y[b].bsums[2 * ib] + y[b].bsums[2 * ib + 1]);
        }
        const float d = y[b].d * quant_f16_to_f32(x[b].d);
        lanes_fma(acc, d, lo, hi);
        acc1 = fmaf(d, (float)sumi1, acc1);
    }
    return hsum8(acc) + IQ1S_DELTA * acc1;
}

/* Grid and delta terms in two sets of eight lanes; hsum(grid) +
 * IQ1M_DELTA * hsum(delta). */
INLINE float dot_iq1m(const int dp, int64_t n, const void *w, const void *a)
{
    const block_iq1_m *x = w;
    const block_q8_K *y = a;
    float32x4_t acc1[2] = {vdupq_n_f32(0.0f), vdupq_n_f32(0.0f)}, acc2[2] = {vdupq_n_f32(0.0f), vdupq_n_f32(0.0f)};
    for (int64_t b = 0; b < n / QK_K; b++) {
        uint16_t sc[4];
        memcpy(sc, x[b].scales, 8);
        const uint16_t dbits = (uint16_t)((sc[0] >> 12) | ((sc[1] >> 8) & 0x00f0) | ((sc[2] >> 4) & 0x0f00) | (sc[3] & 0xf000));
        const uint8_t *qs = x[b].qs, *qh = x[b].qh;
        int32x4_t lo1 = vdupq_n_s32(0), hi1 = vdupq_n_s32(0), lo2 = vdupq_n_s32(0), hi2 = vdupq_n_s32(0);
        for (int ib = 0; ib < 8; ib++, qs += 4, qh += 2) {
            const int8_t *q8 = y[b].qs + 32 * ib;
            const int8x16_t y0 = vld1q_s8(q8), y1 = vld1q_s8(q8 + 16);
            const int8x16_t g0 = grid2(qs[0] | ((qh[0] << 8) & 0x700), qs[1] | ((qh[0] << 4) & 0x700));
            const int8x16_t g1 = grid2(qs[2] | ((qh[1] << 8) & 0x700), qs[3] | ((qh[1] << 4) & 0x700));
            const int8x16_t d0 = vcombine_s8(vdup_n_s8(qh[0] & 0x08 ? -1 : 1), vdup_n_s8(qh[0] & 0x80 ? -1 : 1));
            const int8x16_t d1 = vcombine_s8(vdup_n_s8(qh[1] & 0x08 ? -1 : 1), vdup_n_s8(qh[1] & 0x80 ? -1 : 1));
            const int32_t ls1 = 2 * ((sc[ib / 2] >> (6 * (ib % 2))) & 7) + 1;
            const int32_t ls2 = 2 * ((sc[ib / 2] >> (6 * (ib % 2) + 3)) & 7) + 1;
            lo1 = vmlaq_n_s32(lo1, DOT4(dp, g0, y0), ls1);
            hi1 = vmlaq_n_s32(hi1, DOT4(dp, g1, y1), ls2);
            lo2 = vmlaq_n_s32(lo2, DOT4(dp, d0, y0), ls1);
            hi2 = vmlaq_n_s32(hi2, DOT4(dp, d1, y1), ls2);
        }
        const float d = y[b].d * quant_f16_to_f32(dbits);
        lanes_fma(acc1, d, lo1, hi1);
        lanes_fma(acc2, d, lo2, hi2);
    }
    return hsum8(acc1) + IQ1M_DELTA * hsum8(acc2);
}

/* ---- IQ2_XXS ---- */

static uint64_t signs64[128]; /* 0xFF in the bytes whose sign bit is set */

/* Eight lanes, 1/8 after the lane sum. */
INLINE float dot_iq2xxs(const int dp, int64_t n, const void *w, const void *a)
{
    const block_iq2_xxs *x = w;
    const block_q8_K *y = a;
    float32x4_t acc[2] = {vdupq_n_f32(0.0f), vdupq_n_f32(0.0f)};
    for (int64_t b = 0; b < n / QK_K; b++) {
        int32x4_t lanes[2] = {vdupq_n_s32(0), vdupq_n_s32(0)};
        for (int ib = 0; ib < 8; ib++) {
            uint32_t aux[2];
            memcpy(aux, x[b].qs + 4 * ib, 8);
            const uint8_t *a8 = (const uint8_t *)aux;
            const int32_t ls = 2 * (int32_t)(aux[1] >> 28) + 1;
            const int8_t *q8 = y[b].qs + 32 * ib;
            for (int k = 0; k < 2; k++) { /* elements 16k..16k+15: lanes 4k..4k+3 */
                const uint8x16_t gv = vcombine_u8(vcreate_u8(iq2xxs_grid[a8[2 * k]]), vcreate_u8(iq2xxs_grid[a8[2 * k + 1]]));
                const uint8x16_t sv = vcombine_u8(vcreate_u8(signs64[(aux[1] >> (14 * k)) & 127]),
                                                  vcreate_u8(signs64[(aux[1] >> (14 * k + 7)) & 127]));
                /* (g ^ s) - s: negate where s = 0xFF */
                const int8x16_t g = vsubq_s8(vreinterpretq_s8_u8(veorq_u8(gv, sv)), vreinterpretq_s8_u8(sv));
                lanes[k] = vmlaq_n_s32(lanes[k], DOT4(dp, g, vld1q_s8(q8 + 16 * k)), ls);
            }
        }
        lanes_fma(acc, quant_f16_to_f32(x[b].d) * y[b].d, lanes[0], lanes[1]);
    }
    return 0.125f * hsum8(acc);
}

/* ---- Q8_0 ---- */

/* Eight lanes per 32-block, one FMA per lane with d_w*d_a. */
INLINE float dot_q80(const int dp, int64_t n, const void *w, const void *a)
{
    const block_q8_0 *x = w, *y = a;
    float32x4_t acc[2] = {vdupq_n_f32(0.0f), vdupq_n_f32(0.0f)};
    for (int64_t b = 0; b < n / 32; b++) {
        const int32x4_t lo = DOT4(dp, vld1q_s8(x[b].qs), vld1q_s8(y[b].qs));
        const int32x4_t hi = DOT4(dp, vld1q_s8(x[b].qs + 16), vld1q_s8(y[b].qs + 16));
        lanes_fma(acc, quant_f16_to_f32(x[b].d) * quant_f16_to_f32(y[b].d), lo, hi);
    }
    return hsum8(acc);
}

/* ---- activation quantization (byte-identical to quant_ref.c) ---- */

static void quant_q8_k(const float *x, void *dst, int64_t n)
{
    block_q8_K *y = dst;
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        float32x4_t m = vdupq_n_f32(0.0f);
        for (int j = 0; j < QK_K; j += 4)
            m = vmaxq_f32(m, vabsq_f32(vld1q_f32(x + j)));
        const float amax = vmaxvq_f32(m);
        if (!(amax > 0.0f)) {
            memset(&y[i], 0, sizeof y[i]);
            continue;
        }
        float max = 0.0f; /* the first element whose |x| is the largest */
        for (int j = 0; j < QK_K; j++)
            if (fabsf(x[j]) == amax) {
                max = x[j];
                break;
            }
        const float iscale = -127.f / max;
        const float32x4_t vs = vdupq_n_f32(iscale), magic = vdupq_n_f32(12582912.f);
        const int32x4_t mant = vdupq_n_s32(0x007fffff), off = vdupq_n_s32(0x00400000), lim = vdupq_n_s32(127);
        for (int j = 0; j < QK_K; j += 16) {
            int32x4_t q[4];
            for (int k = 0; k < 4; k++) {
                const float32x4_t v = vaddq_f32(vmulq_f32(vs, vld1q_f32(x + j + 4 * k)), magic);
                q[k] = vminq_s32(vsubq_s32(vandq_s32(vreinterpretq_s32_f32(v), mant), off), lim);
            }
            const int16x8_t p0 = vcombine_s16(vmovn_s32(q[0]), vmovn_s32(q[1]));
            const int16x8_t p1 = vcombine_s16(vmovn_s32(q[2]), vmovn_s32(q[3]));
            vst1q_s8(y[i].qs + j, vcombine_s8(vmovn_s16(p0), vmovn_s16(p1)));
            y[i].bsums[j / 16] = (int16_t)vaddvq_s32(vaddq_s32(vaddq_s32(q[0], q[1]), vaddq_s32(q[2], q[3])));
        }
        y[i].d = 1 / iscale;
    }
}

static void quant_q8_0(const float *x, void *dst, int64_t n)
{
    block_q8_0 *y = dst;
    for (int64_t i = 0; i < n / 32; i++, x += 32) {
        float32x4_t v[8];
        float32x4_t m = vdupq_n_f32(0.0f);
        for (int k = 0; k < 8; k++) {
            v[k] = vld1q_f32(x + 4 * k);
            m = vmaxq_f32(m, vabsq_f32(v[k]));
        }
        const float amax = vmaxvq_f32(m);
        const float d = amax / 127.f;
        y[i].d = quant_f32_to_f16(d);
        const float id = amax != 0.0f ? 127.f / amax : 0.0f;
        for (int k = 0; k < 8; k += 2) {
            /* round half to even (FRINTN), as nearbyintf in the default mode */
            const int32x4_t a0 = vcvtq_s32_f32(vrndnq_f32(vmulq_f32(v[k], vdupq_n_f32(id))));
            const int32x4_t a1 = vcvtq_s32_f32(vrndnq_f32(vmulq_f32(v[k + 1], vdupq_n_f32(id))));
            vst1_s8(y[i].qs + 4 * k, vmovn_s16(vcombine_s16(vmovn_s32(a0), vmovn_s32(a1))));
        }
    }
}

/* ---- entry points: one copy with SDOT, one without ---- */

#define ENTRY(NAME, EXPR)                                                                          \
    static void dot_##NAME##_dp(int64_t n, float *s, const void *w, const void *a) { *s = EXPR(1); } \
    static void dot_##NAME##_nodp(int64_t n, float *s, const void *w, const void *a) { *s = EXPR(0); } \
    static void mm_##NAME##_dp(int64_t n, const void *w, size_t ws, int64_t r0, int64_t r1,        \
                               const void *a, size_t as, int64_t nc, float *o, size_t os)          \
    {                                                                                              \
        kern_mul_mat_generic(dot_##NAME##_dp, NULL, n, w, ws, r0, r1, a, as, nc, o, os);           \
    }                                                                                              \
    static void mm_##NAME##_nodp(int64_t n, const void *w, size_t ws, int64_t r0, int64_t r1,      \
                                 const void *a, size_t as, int64_t nc, float *o, size_t os)        \
    {                                                                                              \
        kern_mul_mat_generic(dot_##NAME##_nodp, NULL, n, w, ws, r0, r1, a, as, nc, o, os);         \
    }

#define E_Q5K(dp) dot_q5k(dp, n, w, a)
#define E_Q6K(dp) dot_q6k(dp, n, w, a)
#define E_IQ1S(dp) dot_iq1s(dp, n, w, a)
#define E_IQ1M(dp) dot_iq1m(dp, n, w, a)
#define E_IQ2XXS(dp) dot_iq2xxs(dp, n, w, a)
#define E_Q80(dp) dot_q80(dp, n, w, a)
ENTRY(q5k, E_Q5K)
ENTRY(q6k, E_Q6K)
ENTRY(iq1s, E_IQ1S)
ENTRY(iq1m, E_IQ1M)
ENTRY(iq2xxs, E_IQ2XXS)
ENTRY(q80, E_Q80)

/* Q4_K: vec_dot in the gemv order; mul_mat columns [0, ncols - ncols % 4)
 * in the gemm order, the rest gemv (as quant_ref_mul_mat_q4_K, quant_order_by_cols). */
INLINE void mm_q4k(const int dp, int64_t n, const void *w, size_t ws, int64_t r0, int64_t r1,
                   const void *a, size_t as, int64_t nc, float *o, size_t os)
{
    const int64_t ngemm = nc - nc % 4;
    for (int64_t r = r0; r < r1; r++)
        for (int64_t c = 0; c < nc; c++)
            o[(size_t)c * os + (size_t)r] = dot_q4k(dp, n, (const uint8_t *)w + (size_t)r * ws,
                                                    (const uint8_t *)a + (size_t)c * as, c < ngemm);
}

static void dot_q4k_dp(int64_t n, float *s, const void *w, const void *a) { *s = dot_q4k(1, n, w, a, 0); }
static void dot_q4k_nodp(int64_t n, float *s, const void *w, const void *a) { *s = dot_q4k(0, n, w, a, 0); }
static void mm_q4k_dp(int64_t n, const void *w, size_t ws, int64_t r0, int64_t r1, const void *a, size_t as,
                      int64_t nc, float *o, size_t os)
{
    mm_q4k(1, n, w, ws, r0, r1, a, as, nc, o, os);
}
static void mm_q4k_nodp(int64_t n, const void *w, size_t ws, int64_t r0, int64_t r1, const void *a, size_t as,
                        int64_t nc, float *o, size_t os)
{
    mm_q4k(0, n, w, ws, r0, r1, a, as, nc, o, os);
}

/* ---- dequantization ----
 * Bit-identical to quant_dequantize_row: the integer codes are exact on any
 * route, and the floats are the scalar's products in its order - Q6_K
 * (d*sc)*q, Q4_K/Q5_K (d*sc)*q - dmin*m (vmulq then vsubq, never vfmsq),
 * Q8_0 q*d.  Scales are converted by FCVT: it quiets a signaling NaN that
 * quant_f16_to_f32 keeps, but every scale goes through a product, which
 * quiets it anyway, so the bits agree. */

INLINE float dq_half(uint16_t h)
{
    return vgetq_lane_f32(vcvt_f32_f16(vreinterpret_f16_u16(vdup_n_u16(h))), 0);
}

/* y[0,16) = s * (float)q */
INLINE void dq_mul16_s(float *y, int8x16_t q, float32x4_t s)
{
    const int16x8_t lo = vmovl_s8(vget_low_s8(q)), hi = vmovl_high_s8(q);
    vst1q_f32(y, vmulq_f32(s, vcvtq_f32_s32(vmovl_s16(vget_low_s16(lo)))));
    vst1q_f32(y + 4, vmulq_f32(s, vcvtq_f32_s32(vmovl_high_s16(lo))));
    vst1q_f32(y + 8, vmulq_f32(s, vcvtq_f32_s32(vmovl_s16(vget_low_s16(hi)))));
    vst1q_f32(y + 12, vmulq_f32(s, vcvtq_f32_s32(vmovl_high_s16(hi))));
}

/* y[0,16) = s * (float)q - m */
INLINE void dq_mulsub16_u(float *y, uint8x16_t q, float32x4_t s, float32x4_t m)
{
    const uint16x8_t lo = vmovl_u8(vget_low_u8(q)), hi = vmovl_high_u8(q);
    vst1q_f32(y, vsubq_f32(vmulq_f32(s, vcvtq_f32_u32(vmovl_u16(vget_low_u16(lo)))), m));
    vst1q_f32(y + 4, vsubq_f32(vmulq_f32(s, vcvtq_f32_u32(vmovl_high_u16(lo))), m));
    vst1q_f32(y + 8, vsubq_f32(vmulq_f32(s, vcvtq_f32_u32(vmovl_u16(vget_low_u16(hi)))), m));
    vst1q_f32(y + 12, vsubq_f32(vmulq_f32(s, vcvtq_f32_u32(vmovl_high_u16(hi))), m));
}

static void dq_q6k(const void *src, float *y, int64_t n)
{
    const block_q6_K *x = src;
    const uint8x16_t m4 = vdupq_n_u8(0x0F), m3 = vdupq_n_u8(3);
    const int8x16_t c32 = vdupq_n_s8(32);
    for (int64_t i = 0; i < n / QK_K; i++, y += QK_K) {
        float ds[16];
        const float32x4_t d = vdupq_n_f32(dq_half(x[i].d));
        const int8x16_t sc = vld1q_s8(x[i].scales);
        const int16x8_t s0 = vmovl_s8(vget_low_s8(sc)), s1 = vmovl_high_s8(sc);
        vst1q_f32(ds, vmulq_f32(d, vcvtq_f32_s32(vmovl_s16(vget_low_s16(s0)))));
        vst1q_f32(ds + 4, vmulq_f32(d, vcvtq_f32_s32(vmovl_high_s16(s0))));
        vst1q_f32(ds + 8, vmulq_f32(d, vcvtq_f32_s32(vmovl_s16(vget_low_s16(s1)))));
        vst1q_f32(ds + 12, vmulq_f32(d, vcvtq_f32_s32(vmovl_high_s16(s1))));
        for (int h = 0; h < 2; h++) {
            const uint8_t *ql = x[i].ql + 64 * h, *qh = x[i].qh + 32 * h;
            float *yh = y + 128 * h;
            const float *sh = ds + 8 * h;
            for (int l = 0; l < 32; l += 16) {
                /* VSLI keeps the low nibble of its first operand and puts
                 * the qh bit pair (bits 0-1, 2-3, 4-5, 6-7) above it */
                const uint8x16_t a = vld1q_u8(ql + l), b = vld1q_u8(ql + 32 + l), hb = vld1q_u8(qh + l);
                const uint8x16_t q1 = vsliq_n_u8(vandq_u8(a, m4), vandq_u8(hb, m3), 4);
                const uint8x16_t q2 = vsliq_n_u8(vandq_u8(b, m4), vandq_u8(vshrq_n_u8(hb, 2), m3), 4);
                const uint8x16_t q3 = vsliq_n_u8(vshrq_n_u8(a, 4), vandq_u8(vshrq_n_u8(hb, 4), m3), 4);
                const uint8x16_t q4 = vsliq_n_u8(vshrq_n_u8(b, 4), vshrq_n_u8(hb, 6), 4);
                const int g = l / 16;
                dq_mul16_s(yh + l, vsubq_s8(vreinterpretq_s8_u8(q1), c32), vld1q_dup_f32(sh + g));
                dq_mul16_s(yh + 32 + l, vsubq_s8(vreinterpretq_s8_u8(q2), c32), vld1q_dup_f32(sh + 2 + g));
                dq_mul16_s(yh + 64 + l, vsubq_s8(vreinterpretq_s8_u8(q3), c32), vld1q_dup_f32(sh + 4 + g));
                dq_mul16_s(yh + 96 + l, vsubq_s8(vreinterpretq_s8_u8(q4), c32), vld1q_dup_f32(sh + 6 + g));
            }
        }
    }
}

/* Q4_K/Q5_K: dm[0,8) = d * sc, dm[8,16) = dmin * m (quant_ref.c's d1, m1) */
INLINE void dq_k4_scales(uint16_t dh, uint16_t mh, const uint8_t *packed, float dm[16])
{
    uint8_t sm[16];
    k4_scales(packed, sm, sm + 8);
    const uint8x16_t v = vld1q_u8(sm);
    const uint16x8_t s = vmovl_u8(vget_low_u8(v)), m = vmovl_high_u8(v);
    const float32x4_t d = vdupq_n_f32(dq_half(dh)), dmin = vdupq_n_f32(dq_half(mh));
    vst1q_f32(dm, vmulq_f32(d, vcvtq_f32_u32(vmovl_u16(vget_low_u16(s)))));
    vst1q_f32(dm + 4, vmulq_f32(d, vcvtq_f32_u32(vmovl_high_u16(s))));
    vst1q_f32(dm + 8, vmulq_f32(dmin, vcvtq_f32_u32(vmovl_u16(vget_low_u16(m)))));
    vst1q_f32(dm + 12, vmulq_f32(dmin, vcvtq_f32_u32(vmovl_high_u16(m))));
}

/* one 32-element sub-block s of codes (two vectors) to y */
INLINE void dq_k4_sub(float *y, uint8x16_t q0, uint8x16_t q1, const float dm[16], int s)
{
    const float32x4_t sc = vld1q_dup_f32(dm + s), mn = vld1q_dup_f32(dm + 8 + s);
    dq_mulsub16_u(y, q0, sc, mn);
    dq_mulsub16_u(y + 16, q1, sc, mn);
}

static void dq_q4k(const void *src, float *y, int64_t n)
{
    const block_q4_K *x = src;
    const uint8x16_t m4 = vdupq_n_u8(0x0F);
    for (int64_t i = 0; i < n / QK_K; i++, y += QK_K) {
        float dm[16];
        dq_k4_scales(x[i].d, x[i].dmin, x[i].scales, dm);
        for (int c = 0; c < 4; c++) {
            const uint8x16_t v0 = vld1q_u8(x[i].qs + 32 * c), v1 = vld1q_u8(x[i].qs + 32 * c + 16);
            dq_k4_sub(y + 64 * c, vandq_u8(v0, m4), vandq_u8(v1, m4), dm, 2 * c);
            dq_k4_sub(y + 64 * c + 32, vshrq_n_u8(v0, 4), vshrq_n_u8(v1, 4), dm, 2 * c + 1);
        }
    }
}

static void dq_q5k(const void *src, float *y, int64_t n)
{
    const block_q5_K *x = src;
    const uint8x16_t m4 = vdupq_n_u8(0x0F), c16 = vdupq_n_u8(16);
    for (int64_t i = 0; i < n / QK_K; i++, y += QK_K) {
        float dm[16];
        dq_k4_scales(x[i].d, x[i].dmin, x[i].scales, dm);
        const uint8x16_t h0 = vld1q_u8(x[i].qh), h1 = vld1q_u8(x[i].qh + 16);
        for (int c = 0; c < 4; c++) {
            /* sub-block s takes bit s of qh[l] as +16 */
            const uint8x16_t b0 = vdupq_n_u8((uint8_t)(1 << 2 * c)), b1 = vdupq_n_u8((uint8_t)(2 << 2 * c));
            const uint8x16_t v0 = vld1q_u8(x[i].qs + 32 * c), v1 = vld1q_u8(x[i].qs + 32 * c + 16);
            dq_k4_sub(y + 64 * c, vorrq_u8(vandq_u8(v0, m4), vandq_u8(vtstq_u8(h0, b0), c16)),
                      vorrq_u8(vandq_u8(v1, m4), vandq_u8(vtstq_u8(h1, b0), c16)), dm, 2 * c);
            dq_k4_sub(y + 64 * c + 32, vorrq_u8(vshrq_n_u8(v0, 4), vandq_u8(vtstq_u8(h0, b1), c16)),
                      vorrq_u8(vshrq_n_u8(v1, 4), vandq_u8(vtstq_u8(h1, b1), c16)), dm, 2 * c + 1);
        }
    }
}

static void dq_q80(const void *src, float *y, int64_t n)
{
    const block_q8_0 *x = src;
    for (int64_t i = 0; i < n / QK8_0; i++, y += QK8_0) {
        const float32x4_t d = vdupq_n_f32(dq_half(x[i].d));
        dq_mul16_s(y, vld1q_s8(x[i].qs), d);
        dq_mul16_s(y + 16, vld1q_s8(x[i].qs + 16), d);
    }
}

/* 4 halves to floats with integers only, bit for bit quant_f16_to_f32 on
 * every input: FCVT would quiet signaling NaNs, which the scalar keeps.
 * Exponent rebias; inf/NaN get the rest of the rebias to 255; zeros and
 * subnormals are normalised by subtracting 2^-14 (exact; selected, so the
 * subtraction never touches a NaN lane's result). */
INLINE float32x4_t dq_f16x4(uint16x4_t hv)
{
    const uint32x4_t h = vmovl_u16(hv), emask = vdupq_n_u32(0x0f800000), rebias = vdupq_n_u32(112 << 23);
    uint32x4_t o = vshlq_n_u32(vandq_u32(h, vdupq_n_u32(0x7fff)), 13);
    const uint32x4_t e = vandq_u32(o, emask);
    o = vaddq_u32(o, rebias);
    o = vaddq_u32(o, vandq_u32(vceqq_u32(e, emask), rebias));
    const uint32x4_t sub = vceqzq_u32(e);
    o = vaddq_u32(o, vandq_u32(sub, vdupq_n_u32(1 << 23)));
    const float32x4_t f = vreinterpretq_f32_u32(o);
    const float32x4_t fn = vbslq_f32(sub, vsubq_f32(f, vreinterpretq_f32_u32(vdupq_n_u32(113 << 23))), f);
    const uint32x4_t sign = vshlq_n_u32(vandq_u32(h, vdupq_n_u32(0x8000)), 16);
    return vreinterpretq_f32_u32(vorrq_u32(vreinterpretq_u32_f32(fn), sign));
}

static void dq_f16(const void *src, float *y, int64_t n)
{
    const uint16_t *x = src;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const uint16x8_t v = vld1q_u16(x + i);
        vst1q_f32(y + i, dq_f16x4(vget_low_u16(v)));
        vst1q_f32(y + i + 4, dq_f16x4(vget_high_u16(v)));
    }
    for (; i < n; i++)
        y[i] = quant_f16_to_f32(x[i]);
}

static void dq_bf16(const void *src, float *y, int64_t n)
{
    const uint16_t *x = src;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const uint16x8_t v = vld1q_u16(x + i);
        vst1q_u32((uint32_t *)(y + i), vshll_n_u16(vget_low_u16(v), 16));
        vst1q_u32((uint32_t *)(y + i + 4), vshll_high_n_u16(v, 16));
    }
    for (; i < n; i++)
        y[i] = quant_bf16_to_f32(x[i]);
}

/* ---- exp, softmax, SwiGLU (vmath.h's functions, four lanes) ---- */

/* vmath_expf per lane: the same fused steps (fmaf(-n, c, t) is vfmsq);
 * ldexpf(j, n) as j * 2^(n/2) * 2^(n - n/2): the first product is exact
 * (|n| <= 192 keeps it normal), so the second rounds once, as ldexpf does */
static inline float32x4_t expf4(float32x4_t x)
{
    const float32x4_t r = vdupq_n_f32(0x1.8p23f);
    const float32x4_t z = vfmaq_f32(r, x, vdupq_n_f32(0x1.715476p+0f));
    const float32x4_t n = vsubq_f32(z, r);
    const float32x4_t b = vfmsq_f32(vfmsq_f32(x, n, vdupq_n_f32(0x1.62e4p-1f)), n, vdupq_n_f32(0x1.7f7d1cp-20f));
    const float32x4_t u = vmulq_f32(b, b);
    const float32x4_t j =
        vfmaq_f32(vfmaq_f32(vdupq_n_f32(1.0f), vdupq_n_f32(0x1.ffffecp-1f), b),
                  vfmaq_f32(vfmaq_f32(vdupq_n_f32(0x1.fffdb6p-2f), vdupq_n_f32(0x1.555e66p-3f), b),
                            vfmaq_f32(vdupq_n_f32(0x1.573e2ep-5f), vdupq_n_f32(0x1.0e4020p-7f), b), u),
                  u);
    const int32x4_t ni = vcvtq_s32_f32(n), n1 = vshrq_n_s32(ni, 1), n2 = vsubq_s32(ni, n1);
    const int32x4_t bias = vdupq_n_s32(127);
    const float32x4_t p1 = vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(n1, bias), 23));
    const float32x4_t p2 = vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(n2, bias), 23));
    const float32x4_t res = vmulq_f32(vmulq_f32(j, p1), p2);
    const uint32x4_t big = vcagtq_f32(n, vdupq_n_f32(192.0f));
    if (!vmaxvq_u32(big))
        return res;
    const float32x4_t alt = vbslq_f32(vclezq_f32(n), vdupq_n_f32(0.0f), vdupq_n_f32(INFINITY));
    return vbslq_f32(big, alt, res);
}

static double softmax_exp(float *x, int64_t n, float max)
{
    const float32x4_t mx = vdupq_n_f32(max);
    double sum = 0.0;
    for (int64_t i = 0; i < n; i += 16) {
        const int64_t k = n - i < 16 ? n - i : 16;
        float t[16] = {0};
        memcpy(t, x + i, (size_t)k * sizeof *t);
        float32x4_t v[4];
        for (int q = 0; q < 4; q++)
            v[q] = expf4(vsubq_f32(vld1q_f32(t + 4 * q), mx));
        for (int q = 0; q < 4; q++)
            vst1q_f32(t + 4 * q, v[q]);
        for (int64_t l = k; l < 16; l++) /* lanes past n count 0, as in vmath_softmax_exp */
            t[l] = 0.0f;
        memcpy(x + i, t, (size_t)k * sizeof *t);
        /* halves, then pairs: the tree vmath_softmax_exp spells out */
        const float32x4_t h4 = vaddq_f32(vaddq_f32(vld1q_f32(t), vld1q_f32(t + 8)),
                                         vaddq_f32(vld1q_f32(t + 4), vld1q_f32(t + 12)));
        const float32x2_t h2 = vadd_f32(vget_low_f32(h4), vget_high_f32(h4));
        sum += (double)(vget_lane_f32(h2, 0) + vget_lane_f32(h2, 1));
    }
    return sum;
}

static void swiglu(float *y, const float *x, const float *g, int64_t n)
{
    const float32x4_t one = vdupq_n_f32(1.0f), zero = vdupq_n_f32(0.0f);
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        const float32x4_t v = vld1q_f32(x + i);
        const float32x4_t s = vdivq_f32(v, vaddq_f32(one, expf4(vsubq_f32(zero, v))));
        vst1q_f32(y + i, vmulq_f32(s, vld1q_f32(g + i)));
    }
    if (i < n)
        vmath_swiglu(y + i, x + i, g + i, n - i);
}

/* ---- table ---- */

/* a product then a sum per lane, as the scalar loop (vmulq + vaddq, not vfmaq) */
static void axpy_f32(int64_t n, float a, const float *x, float *y)
{
    const float32x4_t va = vdupq_n_f32(a);
    int64_t i = 0;
    for (; i + 4 <= n; i += 4)
        vst1q_f32(y + i, vaddq_f32(vld1q_f32(y + i), vmulq_f32(va, vld1q_f32(x + i))));
    for (; i < n; i++)
        y[i] += a * x[i];
}

static kern_table tab;
static pthread_once_t tab_once = PTHREAD_ONCE_INIT;

static void tab_init(void)
{
    for (int i = 0; i < 128; i++) {
        uint64_t v = 0;
        for (int j = 0; j < 8; j++)
            if (ksigns_iq2xs[i] & (1u << j))
                v |= (uint64_t)0xFF << (8 * j);
        signs64[i] = v;
    }
    const char *env = getenv("MOESTREAM_NEON_DOTPROD");
    const int dp = (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) && !(env && !strcmp(env, "0"));
    tab = *kern_table_scalar();
    tab.isa = "neon"; /* the dotprod choice is reported by tests/neon/neon_main.c */
    tab.axpy_f32 = axpy_f32;
    tab.softmax_exp = softmax_exp;
    tab.swiglu = swiglu;
#define SET(T, NAME)                                                                               \
    tab.vec_dot[T] = dp ? dot_##NAME##_dp : dot_##NAME##_nodp;                                     \
    tab.mul_mat[T] = dp ? mm_##NAME##_dp : mm_##NAME##_nodp;
    SET(MS_TYPE_Q4_K, q4k)
    SET(MS_TYPE_Q5_K, q5k)
    SET(MS_TYPE_Q6_K, q6k)
    SET(MS_TYPE_IQ1_S, iq1s)
    SET(MS_TYPE_IQ1_M, iq1m)
    SET(MS_TYPE_IQ2_XXS, iq2xxs)
    SET(MS_TYPE_Q8_0, q80)
#undef SET
    tab.quantize[MS_TYPE_Q8_K] = quant_q8_k;
    tab.quantize[MS_TYPE_Q8_0] = quant_q8_0;
    tab.dequant[MS_TYPE_Q6_K] = dq_q6k;
    tab.dequant[MS_TYPE_Q4_K] = dq_q4k;
    tab.dequant[MS_TYPE_Q5_K] = dq_q5k;
    tab.dequant[MS_TYPE_Q8_0] = dq_q80;
    tab.dequant[MS_TYPE_F16] = dq_f16;
    tab.dequant[MS_TYPE_BF16] = dq_bf16;
}

const kern_table *kern_table_neon(void)
{
    pthread_once(&tab_once, tab_init);
    return &tab;
}
