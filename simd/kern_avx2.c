/* kern_avx2.c - AVX2 dot products for the hot types (compiled with
 * -mavx2 -mfma -mf16c -mbmi2 only in this file; chosen at run time).
 *
 * Bit-exact with the scalar table (simd/quant_ref.c, kern_dispatch.c) by
 * construction: integer sums are exact in any order, so SIMD only has to put
 * each element in the same int32 lane as the scalar and repeat its float
 * operations in the same order, with explicit FMA intrinsics where it fuses
 * (the build has -ffp-contract=off, so a*b+c is never fused by accident).
 * Which order each kernel follows, and why:
 * - Q5_K, Q6_K, IQ1_S, IQ2_XXS, Q3_K, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S,
 *   IQ4_XS, IQ1_M: the reference engine's (ggml) x86 order,
 *   which the golden data comes from: per 256-block eight int32 lanes, lane
 *   (e & 31) >> 2 - exactly what maddubs+madd leave in a ymm when each
 *   32-element chunk is one ymm - then one FMA per lane with the block scale
 *   across blocks, then hsum_float_8 (hsum8_ps).  Q6_K keeps unsigned q and
 *   subtracts 32 * bsums * scales per lane; Q5_K adds its mins as a scalar
 *   FMA chain after the hsum; IQ1_S its delta chain times IQ1S_DELTA;
 *   IQ1_M keeps its delta term in a second set of lanes (hsum + IQ1M_DELTA
 *   * hsum); IQ2_XS/IQ2_S multiply the sum by 1/8, IQ3_XXS by 1/4.  Q8_0
 *   is the same with one 32-block per FMA (scale d_w*d_a).
 * - Q4_K: the reference's repacked kernels (two FMA chains, isum*d*da and
 *   msum*dmin*da): vec_dot and columns past the last multiple of 4 in gemv
 *   order (one term per block), the other columns in gemm order (one term
 *   per 64-element pair of sub-blocks), four columns per decoded block.
 * - F32: vec_dot in ggml_vec_dot_f32's AVX-512 order (a 16-lane
 *   accumulator is two ymm here); mul_mat with >= 2 columns and n % 16 == 0
 *   in tinyBLAS order (one 16-lane accumulator per output), four columns per
 *   weight load.
 * - Q2_K: the repacked kernels' two chains like Q4_K, gemm order one term
 *   per 128-element half.  Q4_0/IQ4_NL: one FMA chain, one term per
 *   32-block (their repacked gemv and gemm alike).
 * - F16: vec_dot in ggml_vec_dot_f16's F32C order (four 16-lane
 *   accumulators, reduce, tail in double), mul_mat with >= 2 columns and
 *   n % 16 == 0 in tinyBLAS order.  BF16: vdpbf16ps emulated (per lane the
 *   odd pair, then the even pair, each an FMA; denormal inputs and results
 *   flushed to signed zero), vec_dot with two accumulators over each 64,
 *   tinyBLAS (one accumulator, steps of 32) for >= 2 columns, n % 32 == 0.
 * mul_mat of Q8_0, Q2_K, Q3_K, IQ4_XS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S, IQ1_M
 * decodes each weight block once for up to four columns, IQ1_S and IQ2_XXS
 * for up to eight; per column the float operations are those of its order
 * above.
 * Activation quantization (Q8_K, Q8_0, Q8_1) is byte-identical.
 * Dequantization of Q6_K, Q4_K, Q5_K, Q8_0, F16, BF16 is bit-identical to
 * quant_dequantize_row (the others keep the scalar entries).
 * Every type has an entry here except Q4_1, Q5_0 and Q5_1, which keep the
 * scalar ones: no DeepSeek-R1 GGUF uses them.
 * Owns: kern_table_avx2 only. */
#include <immintrin.h>
#include <math.h>
#include <pthread.h>
#include <string.h>

#include "kern_isa.h"
#include "quant.h"
#include "quant_blocks.h"
#include "quant_grids.h"
#include "vmath.h"

static inline int32_t hsum_i32(__m256i v)
{
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
    return _mm_cvtsi128_si32(s);
}

static inline __m256i dot_u8s8(__m256i u, __m256i s)
{
    /* 32 (u8 x s8) products summed in pairs to s16 (never saturates here:
     * |u| <= 63 and |s| <= 127), then in pairs to s32 */
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
}

/* signed x signed via sign transfer: |x| * sign(x)·y */
static inline __m256i dot_s8s8(__m256i x, __m256i y)
{
    return dot_u8s8(_mm256_sign_epi8(x, x), _mm256_sign_epi8(y, x));
}

/* ---- the reference's x86 float order (Q4_K, Q5_K, Q6_K, IQ1_S, IQ2_XXS, F32) ----
 * Integer sums are exact in any order; what must match the scalar table
 * (quant_ref.c, "the reference's x86 float order") is which int32 lane an
 * element lands in and the order of the float operations after it. */

/* ggml's hsum_float_8: ((v4+v0)+(v6+v2)) + ((v5+v1)+(v7+v3)) - extract-high
 * + low, movehl, movehdup (scalar: hsum8_x86). */
static inline float hsum8_ps(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_extractf128_ps(v, 1), _mm256_castps256_ps128(v));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* quant_reduce16_x86 of the 16 lanes (lo = lanes 0-7, hi = 8-15): halves,
 * then the same tree as hsum8. */
static inline float reduce16_ps(__m256 lo, __m256 hi) { return hsum8_ps(_mm256_add_ps(hi, lo)); }

/* one rounding: fmaf(a, b, c), explicit (the build has -ffp-contract=off) */
static inline float fma1(float a, float b, float c)
{
    return _mm_cvtss_f32(_mm_fmadd_ss(_mm_set_ss(a), _mm_set_ss(b), _mm_set_ss(c)));
}

/* the block's eight int32 lanes folded into eight float lanes:
 * acc[m] = fma(d, (float)lane[m], acc[m]) (scalar: lanes_fma) */
static inline __m256 lanes_fma_ps(__m256 acc, float d, __m256i lane)
{
    return _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(lane), acc);
}

/* u8 x s8 products of a 32-element chunk, pairs to s16 (no saturation:
 * |pair| <= 2*63*127), then pairs times a per-chunk scale to s32: lane m
 * holds elements 4m..4m+3 of the chunk (lane8), times sc */
static inline __m256i dot_u8s8_sc(__m256i u, __m256i s, int sc)
{
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16((short)sc));
}

/* ---- Q4_K / Q5_K ---- */

static inline void scale_min_k4(int j, const uint8_t *q, uint8_t *d, uint8_t *m)
{
    if (j < 4) {
        *d = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *d = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
        *m = (q[j + 4] >> 4) | ((q[j - 0] >> 6) << 4);
    }
}

/* Q4_K x Q8_K in the reference's repacked-kernel order (quant_dot_q4_K_x86):
 * two FMA chains per output, isum * (d*da) and msum * (dmin*da), subtracted
 * at the end; gemv adds one term per 256-block, gemm one per 64-element
 * pair of sub-blocks (four per block).  In gemm both chains live in lanes
 * 0 and 1 of one xmm, so each term is one FMA of [isum, msum] x [d*da,
 * dmin*da]; four columns share each decoded weight block. */

typedef struct {
    __m256i q[8];   /* sub-block j's 32 nibbles as bytes */
    __m256i mins16; /* int16 lane g: min of sub-block g/2 (bsums are per 16) */
    uint8_t sc[8];
    float d, dmin;
} q4_k_block;

static inline void q4_k_decode(const uint8_t *blk, q4_k_block *k)
{
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    uint16_t dh, mh;
    memcpy(&dh, blk, 2);
    memcpy(&mh, blk + 2, 2);
    k->d = quant_f16_to_f32(dh);
    k->dmin = quant_f16_to_f32(mh);
    uint8_t mn[16];
    for (int j = 0; j < 8; j++) {
        scale_min_k4(j, blk + 4, &k->sc[j], &mn[j]);
        mn[8 + j] = 0;
    }
    const __m128i dup = _mm_setr_epi8(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
    k->mins16 = _mm256_cvtepu8_epi16(_mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)mn), dup));
    for (int c = 0; c < 4; c++) {
        const __m256i q = _mm256_loadu_si256((const __m256i *)(blk + 16 + 32 * c));
        k->q[2 * c] = _mm256_and_si256(q, m4);
        k->q[2 * c + 1] = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
    }
}

/* gemm, one block of one column: four terms v[0] += isum_c*dd, v[1] += msum_c*dm */
static inline __m128 q4_k_block_gemm(const q4_k_block *k, const block_q8_K *y, __m128 v)
{
    __m256i p[4];
    for (int c = 0; c < 4; c++)
        p[c] = _mm256_add_epi32(dot_u8s8_sc(k->q[2 * c], _mm256_loadu_si256((const __m256i *)(y->qs + 64 * c)), k->sc[2 * c]),
                                dot_u8s8_sc(k->q[2 * c + 1], _mm256_loadu_si256((const __m256i *)(y->qs + 64 * c + 32)),
                                            k->sc[2 * c + 1]));
    /* int32 lane j: min_j * (bsums[2j] + bsums[2j+1]) */
    const __m256i mv = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)y->bsums), k->mins16);
    const float dd = k->d * y->d, dm = k->dmin * y->d;
    const __m128 ddm = _mm_setr_ps(dd, dm, dd, dm);
    /* the four pair sums of isum (hadd tree, then the 128-bit halves) and of msum */
    const __m256i h = _mm256_hadd_epi32(_mm256_hadd_epi32(p[0], p[1]), _mm256_hadd_epi32(p[2], p[3]));
    const __m128 is = _mm_cvtepi32_ps(_mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1)));
    const __m256i hm = _mm256_hadd_epi32(mv, mv);
    const __m128 ms = _mm_cvtepi32_ps(_mm_unpacklo_epi64(_mm256_castsi256_si128(hm), _mm256_extracti128_si256(hm, 1)));
    const __m128 u01 = _mm_unpacklo_ps(is, ms), u23 = _mm_unpackhi_ps(is, ms); /* [is_c, ms_c, ...] */
    v = _mm_fmadd_ps(u01, ddm, v);
    v = _mm_fmadd_ps(_mm_movehl_ps(u01, u01), ddm, v);
    v = _mm_fmadd_ps(u23, ddm, v);
    return _mm_fmadd_ps(_mm_movehl_ps(u23, u23), ddm, v);
}

static inline float q4_k_finish(__m128 v) { return _mm_cvtss_f32(v) - _mm_cvtss_f32(_mm_movehdup_ps(v)); }

/* gemv: one column, straight from the block (no decode struct: measured
 * faster for a lone column) */
static void dot_q4_k(int64_t n, float *s, const void *w, const void *a)
{
    const block_q8_K *y = a;
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    float acc = 0.0f, accm = 0.0f;
    for (int64_t b = 0; b < n / QK_K; b++) {
        const uint8_t *blk = (const uint8_t *)w + (size_t)b * sizeof(block_q4_K);
        uint16_t dh, mh;
        memcpy(&dh, blk, 2);
        memcpy(&mh, blk + 2, 2);
        __m256i lane = _mm256_setzero_si256();
        int32_t msum = 0;
        for (int c = 0; c < 4; c++) {
            uint8_t sc0, m0, sc1, m1;
            scale_min_k4(2 * c, blk + 4, &sc0, &m0);
            scale_min_k4(2 * c + 1, blk + 4, &sc1, &m1);
            const __m256i q = _mm256_loadu_si256((const __m256i *)(blk + 16 + 32 * c));
            const __m256i lo = _mm256_and_si256(q, m4), hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
            const __m256i y0 = _mm256_loadu_si256((const __m256i *)(y[b].qs + 64 * c));
            const __m256i y1 = _mm256_loadu_si256((const __m256i *)(y[b].qs + 64 * c + 32));
            lane = _mm256_add_epi32(lane, _mm256_add_epi32(dot_u8s8_sc(lo, y0, sc0), dot_u8s8_sc(hi, y1, sc1)));
            msum += m0 * (y[b].bsums[4 * c] + y[b].bsums[4 * c + 1]) +
                    m1 * (y[b].bsums[4 * c + 2] + y[b].bsums[4 * c + 3]);
        }
        acc = fma1((float)hsum_i32(lane), quant_f16_to_f32(dh) * y[b].d, acc);
        accm = fma1((float)msum, quant_f16_to_f32(mh) * y[b].d, accm);
    }
    *s = acc - accm;
}

/* Columns [0, ncols - ncols % 4) in gemm order, four at a time with each
 * weight block decoded once; the rest in gemv order. */
static void mm_q4_k(int64_t n, const void *w, size_t ws, int64_t r0, int64_t r1, const void *a, size_t as,
                    int64_t nc, float *o, size_t os)
{
    const int64_t ngemm = nc - nc % 4;
    const uint8_t *ab = a;
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *wr = (const uint8_t *)w + (size_t)r * ws;
        for (int64_t c0 = 0; c0 < ngemm; c0 += 4) {
            __m128 v[4] = {_mm_setzero_ps(), _mm_setzero_ps(), _mm_setzero_ps(), _mm_setzero_ps()};
            q4_k_block k;
            for (int64_t b = 0; b < n / QK_K; b++) {
                q4_k_decode(wr + (size_t)b * sizeof(block_q4_K), &k);
                for (int j = 0; j < 4; j++)
                    v[j] = q4_k_block_gemm(&k, (const block_q8_K *)(ab + (size_t)(c0 + j) * as) + b, v[j]);
            }
            for (int j = 0; j < 4; j++)
                o[(size_t)(c0 + j) * os + (size_t)r] = q4_k_finish(v[j]);
        }
        for (int64_t c = ngemm; c < nc; c++)
            dot_q4_k(n, &o[(size_t)c * os + (size_t)r], wr, ab + (size_t)c * as);
    }
}

/* ggml_vec_dot_q5_K_q8_K: eight lanes, one scale per 32; the mins one
 * scalar FMA chain with -d_a*dmin, added after the hsum. */
static void dot_q5_k(int64_t n, float *s, const void *w, const void *a)
{
    const block_q8_K *y = a;
    const __m256i m4 = _mm256_set1_epi8(0x0F), one = _mm256_set1_epi8(1);
    __m256 acc = _mm256_setzero_ps();
    float summs = 0.0f;
    for (int64_t b = 0; b < n / QK_K; b++) {
        const uint8_t *blk = (const uint8_t *)w + (size_t)b * sizeof(block_q5_K);
        uint16_t dh, mh;
        memcpy(&dh, blk, 2);
        memcpy(&mh, blk + 2, 2);
        const uint8_t *scales = blk + 4, *qs = blk + 48;
        const __m256i hb = _mm256_loadu_si256((const __m256i *)(blk + 16));
        __m256i lane = _mm256_setzero_si256();
        int32_t msum = 0;
        for (int c = 0; c < 4; c++) {
            uint8_t sc0, m0, sc1, m1;
            scale_min_k4(2 * c, scales, &sc0, &m0);
            scale_min_k4(2 * c + 1, scales, &sc1, &m1);
            const __m256i q = _mm256_loadu_si256((const __m256i *)(qs + 32 * c));
            /* bit 2c of qh[l] -> +16 for the low nibbles, bit 2c+1 for the high */
            const __m256i bl = _mm256_and_si256(_mm256_srli_epi16(hb, 2 * c), one);
            const __m256i bh = _mm256_and_si256(_mm256_srli_epi16(hb, 2 * c + 1), one);
            const __m256i lo = _mm256_or_si256(_mm256_and_si256(q, m4), _mm256_slli_epi16(bl, 4));
            const __m256i hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 4), m4), _mm256_slli_epi16(bh, 4));
            const __m256i y0 = _mm256_loadu_si256((const __m256i *)(y[b].qs + 64 * c));
            const __m256i y1 = _mm256_loadu_si256((const __m256i *)(y[b].qs + 64 * c + 32));
            lane = _mm256_add_epi32(lane, _mm256_add_epi32(dot_u8s8_sc(lo, y0, sc0), dot_u8s8_sc(hi, y1, sc1)));
            msum += m0 * (y[b].bsums[4 * c] + y[b].bsums[4 * c + 1]) +
                    m1 * (y[b].bsums[4 * c + 2] + y[b].bsums[4 * c + 3]);
        }
        const float d = y[b].d * quant_f16_to_f32(dh), dmin = -y[b].d * quant_f16_to_f32(mh);
        summs = fma1(dmin, (float)msum, summs);
        acc = lanes_fma_ps(acc, d, lane);
    }
    *s = hsum8_ps(acc) + summs;
}

/* ---- Q6_K ---- */

/* pshufb masks: bytes 0-7 take scale 2g, bytes 8-15 scale 2g+1 */
static inline __m128i q6_scale_shuffle(int g)
{
    return _mm_add_epi8(_mm_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1), _mm_set1_epi8((char)(2 * g)));
}

/* ggml_vec_dot_q6_K_q8_K: unsigned 6-bit values in the lanes; the -32 comes
 * back per lane as 32 * (bsums * scales) of 16-groups 2m and 2m+1. */
static void dot_q6_k(int64_t n, float *s, const void *w, const void *a)
{
    const block_q6_K *x = w;
    const block_q8_K *y = a;
    const __m256i m4 = _mm256_set1_epi8(0x0F), m3 = _mm256_set1_epi8(3);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = 0; b < n / QK_K; b++) {
        const __m128i sc8 = _mm_loadu_si128((const __m128i *)x[b].scales);
        /* lane m: bsums[2m]*sc[2m] + bsums[2m+1]*sc[2m+1], times 32 */
        const __m256i corr = _mm256_slli_epi32(
            _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)y[b].bsums), _mm256_cvtepi8_epi16(sc8)), 5);
        __m256i lane = _mm256_setzero_si256();
        for (int half = 0; half < 2; half++) {
            const uint8_t *ql = x[b].ql + 64 * half, *qh = x[b].qh + 32 * half;
            const int8_t *q8 = y[b].qs + 128 * half;
            const __m256i l0 = _mm256_loadu_si256((const __m256i *)ql);
            const __m256i l1 = _mm256_loadu_si256((const __m256i *)(ql + 32));
            const __m256i h = _mm256_loadu_si256((const __m256i *)qh);
            __m256i q[4];
            q[0] = _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_slli_epi16(_mm256_and_si256(h, m3), 4));
            q[1] = _mm256_or_si256(_mm256_and_si256(l1, m4),
                                   _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 2), m3), 4));
            q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4),
                                   _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 4), m3), 4));
            q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                                   _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 6), m3), 4));
            for (int k = 0; k < 4; k++) {
                const __m256i yv = _mm256_loadu_si256((const __m256i *)(q8 + 32 * k));
                /* per 16: products in s16 pairs (<= 2*63*127), then x scale into s32 */
                const __m256i scv = _mm256_cvtepi8_epi16(_mm_shuffle_epi8(sc8, q6_scale_shuffle(4 * half + k)));
                lane = _mm256_add_epi32(lane, _mm256_madd_epi16(_mm256_maddubs_epi16(q[k], yv), scv));
            }
        }
        acc = lanes_fma_ps(acc, y[b].d * quant_f16_to_f32(x[b].d), _mm256_sub_epi32(lane, corr));
    }
    *s = hsum8_ps(acc);
}

/* ---- IQ1_S ---- */

/* chunk ib (32 elements) of an IQ1_S block: |grid| (u8), the grid itself as
 * the sign source (values {-1,0,1}: sign_epi8(y, g) is y times the weight's
 * sign, or 0) and the scale 2*((h >> 12) & 7) + 1 of both halves */
static inline void iq1_s_chunk(const block_iq1_s *x, int ib, __m256i *mag, __m256i *sgn, __m256i *sc)
{
    const uint16_t h = x->qh[ib];
    const uint8_t *qs = x->qs + 4 * ib;
    const __m256i g = _mm256_setr_epi64x((long long)iq1s_grid[qs[0] | ((h << 8) & 0x700)],
                                         (long long)iq1s_grid[qs[1] | ((h << 5) & 0x700)],
                                         (long long)iq1s_grid[qs[2] | ((h << 2) & 0x700)],
                                         (long long)iq1s_grid[qs[3] | ((h >> 1) & 0x700)]);
    *mag = _mm256_sign_epi8(g, g);
    *sgn = g;
    *sc = _mm256_set1_epi16((short)(2 * ((h >> 12) & 7) + 1));
}

/* the delta term's factors: int16 lanes 2ib, 2ib+1 = ls_ib, negated where
 * bit 15 of qh[ib] is set, so madd with the 16 bsums puts
 * (bsums[2ib] + bsums[2ib+1]) * +-ls_ib in int32 lane ib (exact) */
static inline __m256i iq1_s_delta(const block_iq1_s *x)
{
    const __m128i qh = _mm_loadu_si128((const __m128i *)x->qh);
    const __m128i ls = _mm_or_si128(_mm_slli_epi16(_mm_and_si128(_mm_srli_epi16(qh, 12), _mm_set1_epi16(7)), 1),
                                    _mm_set1_epi16(1));
    const __m128i neg = _mm_srai_epi16(qh, 15);
    const __m256i w = _mm256_cvtepu16_epi32(_mm_sub_epi16(_mm_xor_si128(ls, neg), neg));
    return _mm256_or_si256(w, _mm256_slli_epi32(w, 16));
}

/* ggml_vec_dot_iq1_s_q8_K: grid term in eight lanes; the delta term one
 * scalar FMA chain, times IQ1S_DELTA and added last. */
static void dot_iq1_s(int64_t n, float *s, const void *w, const void *a)
{
    const block_iq1_s *x = w;
    const block_q8_K *y = a;
    __m256 acc = _mm256_setzero_ps();
    float acc1 = 0.0f;
    for (int64_t b = 0; b < n / QK_K; b++) {
        __m256i lane = _mm256_setzero_si256();
#pragma GCC unroll 8
        for (int ib = 0; ib < 8; ib++) {
            __m256i mag, sgn, sc;
            iq1_s_chunk(&x[b], ib, &mag, &sgn, &sc);
            const __m256i yv = _mm256_loadu_si256((const __m256i *)(y[b].qs + 32 * ib));
            lane = _mm256_add_epi32(lane, _mm256_madd_epi16(_mm256_maddubs_epi16(mag, _mm256_sign_epi8(yv, sgn)), sc));
        }
        const int32_t sumi1 =
            hsum_i32(_mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)y[b].bsums), iq1_s_delta(&x[b])));
        const float d = y[b].d * quant_f16_to_f32(x[b].d);
        acc = lanes_fma_ps(acc, d, lane);
        acc1 = fma1(d, (float)sumi1, acc1);
    }
    *s = hsum8_ps(acc) + IQ1S_DELTA * acc1;
}

/* ---- IQ2_XXS ---- */

static uint64_t signs64[128]; /* 0xFF in the bytes whose sign bit is set */
static pthread_once_t signs_once = PTHREAD_ONCE_INIT;
static void signs_init(void)
{
    for (int i = 0; i < 128; i++) {
        uint64_t v = 0;
        for (int j = 0; j < 8; j++)
            if (ksigns_iq2xs[i] & (1u << j))
                v |= (uint64_t)0xFF << (8 * j);
        signs64[i] = v;
    }
}

/* chunk ib of an IQ2_XXS block: grid bytes (u8), the sign source (signs
 * from the 7 stored bits + parity, | 1) and the scale 2*(aux1 >> 28) + 1 */
static inline void iq2_xxs_chunk(const block_iq2_xxs *x, int ib, __m256i *mag, __m256i *sgn, __m256i *sc)
{
    uint32_t aux[2];
    memcpy(aux, x->qs + 4 * ib, 8);
    const uint8_t *a8 = (const uint8_t *)aux;
    *mag = _mm256_setr_epi64x((long long)iq2xxs_grid[a8[0]], (long long)iq2xxs_grid[a8[1]],
                              (long long)iq2xxs_grid[a8[2]], (long long)iq2xxs_grid[a8[3]]);
    *sgn = _mm256_or_si256(_mm256_setr_epi64x((long long)signs64[(aux[1] >> 0) & 127],
                                              (long long)signs64[(aux[1] >> 7) & 127],
                                              (long long)signs64[(aux[1] >> 14) & 127],
                                              (long long)signs64[(aux[1] >> 21) & 127]),
                           _mm256_set1_epi8(1));
    *sc = _mm256_set1_epi16((short)(2 * (int32_t)(aux[1] >> 28) + 1));
}

/* ggml_vec_dot_iq2_xxs_q8_K: eight lanes, 1/8 after the sum. */
static void dot_iq2_xxs(int64_t n, float *s, const void *w, const void *a)
{
    pthread_once(&signs_once, signs_init);
    const block_iq2_xxs *x = w;
    const block_q8_K *y = a;
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = 0; b < n / QK_K; b++) {
        __m256i lane = _mm256_setzero_si256();
#pragma GCC unroll 8
        for (int ib = 0; ib < 8; ib++) {
            __m256i mag, sgn, sc;
            iq2_xxs_chunk(&x[b], ib, &mag, &sgn, &sc);
            const __m256i yv = _mm256_loadu_si256((const __m256i *)(y[b].qs + 32 * ib));
            lane = _mm256_add_epi32(lane, _mm256_madd_epi16(_mm256_maddubs_epi16(mag, _mm256_sign_epi8(yv, sgn)), sc));
        }
        acc = lanes_fma_ps(acc, quant_f16_to_f32(x[b].d) * y[b].d, lane);
    }
    *s = 0.125f * hsum8_ps(acc);
}

/* ---- helpers of the remaining types ---- */

/* byte j of the result = 0xFF if bit j of the 32-bit word w is set (w holds
 * four sign bytes: bit j of byte j/8 for element j) */
static inline __m256i bits_to_bytes(uint32_t w)
{
    const __m256i shuf = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2,
                                          2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
    const __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ull);
    __m256i v = _mm256_shuffle_epi8(_mm256_set1_epi32((int)w), shuf);
    return _mm256_cmpeq_epi8(_mm256_and_si256(v, bit), bit);
}

/* binary16 -> float with F16C: exact, as quant_f16_to_f32 */
static inline float h2f(uint16_t h) { return _cvtsh_ss(h); }

/* |x| as u8 times sign(x)*y: 32 s8 x s8 products, pairs to s16 (no
 * saturation while y != -128: activations are in [-127, 127]) */
static inline __m256i mul_s8s8(__m256i x, __m256i y)
{
    return _mm256_maddubs_epi16(_mm256_sign_epi8(x, x), _mm256_sign_epi8(y, x));
}

/* pshufb control for a 128-bit-duplicated vector of eight int16 scales:
 * bytes 0-15 take scale 2i, bytes 16-31 scale 2i+1 (16-element groups
 * 2i and 2i+1 of a 32-element chunk in one ymm) */
static inline __m256i scale_pair_shuffle(int i)
{
    return _mm256_setr_m128i(_mm_set1_epi16((short)(0x0100 + 0x0404 * i)),
                             _mm_set1_epi16((short)(0x0302 + 0x0404 * i)));
}

/* ---- types whose 32-element chunks are |w| x (y with w's sign) x a scale ----
 * IQ4_XS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S: NAME##_chunk(block, ib, &mag, &sgn,
 * &sc) gives chunk ib's weight magnitudes (u8), a sign source (sign_epi8(y,
 * sgn) = y times the weight's sign, or 0 where the weight is 0) and the int16
 * scales of its two 16-element halves; the chunk's int32 lanes are
 * madd(maddubs(mag, sign(y, sgn)), sc) - lane (e & 31) >> 2.  vec_dot and
 * mul_mat share the chunk code; mul_mat decodes each block once for up to
 * four columns (the float order is vec_dot's: it does not depend on the
 * column count). */

typedef struct {
    __m256i mag[8], sgn[8], sc[8];
    float d;
} chunk_block;

static inline __m256i chunk_lane(__m256i mag, __m256i sgn, __m256i sc, const int8_t *q8)
{
    return _mm256_madd_epi16(_mm256_maddubs_epi16(mag, _mm256_sign_epi8(_mm256_loadu_si256((const __m256i *)q8), sgn)),
                             sc);
}

/* dot_NAME, NAME_cols (NC columns of one row) and mm_NAME; FACTOR scales
 * the hsum (1/8, 1/4 or 1); INIT runs once per call (sign tables) */
#define CHUNK_KERNELS(NAME, BLOCK, FACTOR, INIT)                                                   \
    static void dot_##NAME(int64_t n, float *s, const void *w, const void *a)                      \
    {                                                                                              \
        INIT;                                                                                      \
        const BLOCK *x = w;                                                                        \
        const block_q8_K *y = a;                                                                   \
        __m256 acc = _mm256_setzero_ps();                                                          \
        for (int64_t b = 0; b < n / QK_K; b++) {                                                   \
            __m256i lane = _mm256_setzero_si256();                                                 \
            _Pragma("GCC unroll 8") for (int ib = 0; ib < 8; ib++)                                 \
            {                                                                                      \
                __m256i mag, sgn, sc;                                                              \
                NAME##_chunk(&x[b], ib, &mag, &sgn, &sc);                                          \
                lane = _mm256_add_epi32(lane, chunk_lane(mag, sgn, sc, y[b].qs + 32 * ib));        \
            }                                                                                      \
            acc = lanes_fma_ps(acc, h2f(x[b].d) * y[b].d, lane);                                   \
        }                                                                                          \
        *s = FACTOR * hsum8_ps(acc);                                                               \
    }                                                                                              \
    static inline void NAME##_cols(int NC, int64_t n, const BLOCK *x, const uint8_t *a, size_t as, \
                                   float *o, size_t os)                                            \
    {                                                                                              \
        __m256 acc[4];                                                                             \
        _Pragma("GCC unroll 4") for (int c = 0; c < NC; c++) acc[c] = _mm256_setzero_ps();         \
        chunk_block k;                                                                             \
        for (int64_t b = 0; b < n / QK_K; b++) {                                                   \
            _Pragma("GCC unroll 8") for (int ib = 0; ib < 8; ib++)                                 \
                NAME##_chunk(&x[b], ib, &k.mag[ib], &k.sgn[ib], &k.sc[ib]);                        \
            k.d = h2f(x[b].d);                                                                     \
            _Pragma("GCC unroll 4") for (int c = 0; c < NC; c++)                                   \
            {                                                                                      \
                const block_q8_K *y = (const block_q8_K *)(a + (size_t)c * as) + b;                \
                __m256i lane = _mm256_setzero_si256();                                             \
                _Pragma("GCC unroll 8") for (int ib = 0; ib < 8; ib++)                             \
                    lane = _mm256_add_epi32(lane, chunk_lane(k.mag[ib], k.sgn[ib], k.sc[ib], y->qs + 32 * ib)); \
                acc[c] = lanes_fma_ps(acc[c], k.d * y->d, lane);                                   \
            }                                                                                      \
        }                                                                                          \
        _Pragma("GCC unroll 4") for (int c = 0; c < NC; c++) o[(size_t)c * os] = FACTOR * hsum8_ps(acc[c]); \
    }                                                                                              \
    static void mm_##NAME(int64_t n, const void *w, size_t ws, int64_t r0, int64_t r1, const void *a, \
                          size_t as, int64_t nc, float *o, size_t os)                              \
    {                                                                                              \
        INIT;                                                                                      \
        const uint8_t *ab = a;                                                                     \
        for (int64_t r = r0; r < r1; r++) {                                                        \
            const uint8_t *wr = (const uint8_t *)w + (size_t)r * ws;                               \
            const BLOCK *x = (const BLOCK *)wr;                                                    \
            float *orow = o + (size_t)r;                                                           \
            int64_t c = 0;                                                                         \
            for (; c + 4 <= nc; c += 4)                                                            \
                NAME##_cols(4, n, x, ab + (size_t)c * as, as, orow + (size_t)c * os, os);          \
            switch (nc - c) {                                                                      \
            case 3: NAME##_cols(3, n, x, ab + (size_t)c * as, as, orow + (size_t)c * os, os); break; \
            case 2: NAME##_cols(2, n, x, ab + (size_t)c * as, as, orow + (size_t)c * os, os); break; \
            case 1: dot_##NAME(n, orow + (size_t)c * os, wr, ab + (size_t)c * as); break;         \
            default: break;                                                                        \
            }                                                                                      \
        }                                                                                          \
    }

/* ---- IQ1_S / IQ2_XXS mul_mat: columns share each decoded block ----
 * NC (1-8) columns of one row per pass, the block's eight chunks decoded
 * once (the grid lookups are most of the cost); per column the float
 * operations are vec_dot's (IQ1_S: eight lanes and the delta chain).
 * Eight rather than the other types' four: on the project VM (Xeon, 256
 * rows x 7168 in L2, 1 thread) one 5-column pass took 0.70x the time of 4
 * columns + a vec_dot, 6 columns 0.74x of 4 + 2, 8 columns 0.82x of 4 + 4
 * (IQ2_XXS; IQ1_S 0.72x, 0.77x, 0.83x). */

static inline void iq1_s_cols(int NC, int64_t n, const block_iq1_s *x, const uint8_t *a, size_t as, float *o,
                              size_t os)
{
    __m256 acc[8];
    float acc1[8];
#pragma GCC unroll 8
    for (int c = 0; c < NC; c++) {
        acc[c] = _mm256_setzero_ps();
        acc1[c] = 0.0f;
    }
    chunk_block k;
    for (int64_t b = 0; b < n / QK_K; b++) {
#pragma GCC unroll 8
        for (int ib = 0; ib < 8; ib++)
            iq1_s_chunk(&x[b], ib, &k.mag[ib], &k.sgn[ib], &k.sc[ib]);
        k.d = h2f(x[b].d);
        const __m256i dl = iq1_s_delta(&x[b]);
#pragma GCC unroll 8
        for (int c = 0; c < NC; c++) {
            const block_q8_K *y = (const block_q8_K *)(a + (size_t)c * as) + b;
            __m256i lane = _mm256_setzero_si256();
#pragma GCC unroll 8
            for (int ib = 0; ib < 8; ib++)
                lane = _mm256_add_epi32(lane, chunk_lane(k.mag[ib], k.sgn[ib], k.sc[ib], y->qs + 32 * ib));
            const int32_t sumi1 = hsum_i32(_mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)y->bsums), dl));
            const float d = y->d * k.d;
            acc[c] = lanes_fma_ps(acc[c], d, lane);
            acc1[c] = fma1(d, (float)sumi1, acc1[c]);
        }
    }
#pragma GCC unroll 8
    for (int c = 0; c < NC; c++)
        o[(size_t)c * os] = hsum8_ps(acc[c]) + IQ1S_DELTA * acc1[c];
}

static inline void iq2_xxs_cols(int NC, int64_t n, const block_iq2_xxs *x, const uint8_t *a, size_t as,
                                float *o, size_t os)
{
    __m256 acc[8];
#pragma GCC unroll 8
    for (int c = 0; c < NC; c++)
        acc[c] = _mm256_setzero_ps();
    chunk_block k;
    for (int64_t b = 0; b < n / QK_K; b++) {
#pragma GCC unroll 8
        for (int ib = 0; ib < 8; ib++)
            iq2_xxs_chunk(&x[b], ib, &k.mag[ib], &k.sgn[ib], &k.sc[ib]);
        k.d = h2f(x[b].d);
#pragma GCC unroll 8
        for (int c = 0; c < NC; c++) {
            const block_q8_K *y = (const block_q8_K *)(a + (size_t)c * as) + b;
            __m256i lane = _mm256_setzero_si256();
#pragma GCC unroll 8
            for (int ib = 0; ib < 8; ib++)
                lane = _mm256_add_epi32(lane, chunk_lane(k.mag[ib], k.sgn[ib], k.sc[ib], y->qs + 32 * ib));
            acc[c] = lanes_fma_ps(acc[c], k.d * y->d, lane);
        }
    }
#pragma GCC unroll 8
    for (int c = 0; c < NC; c++)
        o[(size_t)c * os] = 0.125f * hsum8_ps(acc[c]);
}

/* per row: columns eight at a time, then the rest together, a last
 * single one by vec_dot */
#define MM_COLS(NAME, BLOCK, INIT)                                                                 \
    static void mm_##NAME(int64_t n, const void *w, size_t ws, int64_t r0, int64_t r1, const void *a, \
                          size_t as, int64_t nc, float *o, size_t os)                              \
    {                                                                                              \
        INIT;                                                                                      \
        const uint8_t *ab = a;                                                                     \
        for (int64_t r = r0; r < r1; r++) {                                                        \
            const uint8_t *wr = (const uint8_t *)w + (size_t)r * ws;                               \
            const BLOCK *x = (const BLOCK *)wr;                                                    \
            float *orow = o + (size_t)r;                                                           \
            int64_t c = 0;                                                                         \
            for (; c + 8 <= nc; c += 8)                                                            \
                NAME##_cols(8, n, x, ab + (size_t)c * as, as, orow + (size_t)c * os, os);          \
            switch (nc - c) {                                                                      \
            case 7: NAME##_cols(7, n, x, ab + (size_t)c * as, as, orow + (size_t)c * os, os); break; \
            case 6: NAME##_cols(6, n, x, ab + (size_t)c * as, as, orow + (size_t)c * os, os); break; \
            case 5: NAME##_cols(5, n, x, ab + (size_t)c * as, as, orow + (size_t)c * os, os); break; \
            case 4: NAME##_cols(4, n, x, ab + (size_t)c * as, as, orow + (size_t)c * os, os); break; \
            case 3: NAME##_cols(3, n, x, ab + (size_t)c * as, as, orow + (size_t)c * os, os); break; \
            case 2: NAME##_cols(2, n, x, ab + (size_t)c * as, as, orow + (size_t)c * os, os); break; \
            case 1: dot_##NAME(n, orow + (size_t)c * os, wr, ab + (size_t)c * as); break;         \
            default: break;                                                                        \
            }                                                                                      \
        }                                                                                          \
    }
MM_COLS(iq1_s, block_iq1_s, (void)0)
MM_COLS(iq2_xxs, block_iq2_xxs, pthread_once(&signs_once, signs_init))

/* ---- Q8_0: eight lanes of 4 bytes per 32-block, FMA with d_w*d_a ---- */

static void dot_q8_0(int64_t n, float *s, const void *w, const void *a)
{
    const block_q8_0 *x = w, *y = a;
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = 0; b < n / 32; b++) {
        const __m256i xv = _mm256_loadu_si256((const __m256i *)x[b].qs);
        const __m256i yv = _mm256_loadu_si256((const __m256i *)y[b].qs);
        /* weights may be -128 (|x| = 128 as u8); activations are in [-127, 127] */
        acc = lanes_fma_ps(acc, h2f(x[b].d) * h2f(y[b].d), dot_s8s8(xv, yv));
    }
    *s = hsum8_ps(acc);
}

/* NC (1-4) columns of one row sharing each weight load and |x| */
static inline void q8_0_cols(int NC, int64_t n, const block_q8_0 *x, const uint8_t *a, size_t as, float *o,
                             size_t os)
{
    const __m256i one = _mm256_set1_epi16(1);
    __m256 acc[4];
#pragma GCC unroll 4
    for (int c = 0; c < NC; c++)
        acc[c] = _mm256_setzero_ps();
    for (int64_t b = 0; b < n / 32; b++) {
        const __m256i xv = _mm256_loadu_si256((const __m256i *)x[b].qs), ax = _mm256_sign_epi8(xv, xv);
        const float dx = h2f(x[b].d);
#pragma GCC unroll 4
        for (int c = 0; c < NC; c++) {
            const block_q8_0 *y = (const block_q8_0 *)(a + (size_t)c * as) + b;
            const __m256i yv = _mm256_loadu_si256((const __m256i *)y->qs);
            acc[c] = lanes_fma_ps(acc[c], dx * h2f(y->d),
                                  _mm256_madd_epi16(_mm256_maddubs_epi16(ax, _mm256_sign_epi8(yv, xv)), one));
        }
    }
#pragma GCC unroll 4
    for (int c = 0; c < NC; c++)
        o[(size_t)c * os] = hsum8_ps(acc[c]);
}

static void mm_q8_0(int64_t n, const void *w, size_t ws, int64_t r0, int64_t r1, const void *a, size_t as,
                    int64_t nc, float *o, size_t os)
{
    const uint8_t *ab = a;
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *wr = (const uint8_t *)w + (size_t)r * ws;
        const block_q8_0 *x = (const block_q8_0 *)wr;
        float *orow = o + (size_t)r;
        int64_t c = 0;
        for (; c + 4 <= nc; c += 4)
            q8_0_cols(4, n, x, ab + (size_t)c * as, as, orow + (size_t)c * os, os);
        switch (nc - c) {
        case 3: q8_0_cols(3, n, x, ab + (size_t)c * as, as, orow + (size_t)c * os, os); break;
        case 2: q8_0_cols(2, n, x, ab + (size_t)c * as, as, orow + (size_t)c * os, os); break;
        case 1: dot_q8_0(n, orow + (size_t)c * os, wr, ab + (size_t)c * as); break;
        default: break;
        }
    }
}

/* ---- Q4_0 / IQ4_NL: one FMA chain, one term per 32-block ---- */

/* the 32 values of a 4-bit block as bytes: low nibbles (elements 0-15) in
 * the low half, high nibbles (16-31) in the high half */
static inline __m256i nibbles32(const uint8_t *qs)
{
    const __m128i q = _mm_loadu_si128((const __m128i *)qs), m4 = _mm_set1_epi8(0x0F);
    return _mm256_setr_m128i(_mm_and_si128(q, m4), _mm_and_si128(_mm_srli_epi16(q, 4), m4));
}

static inline __m256i q4_0_vals(const uint8_t *qs, __m256i kv)
{
    (void)kv;
    return _mm256_sub_epi8(nibbles32(qs), _mm256_set1_epi8(8));
}

static inline __m256i iq4_nl_vals(const uint8_t *qs, __m256i kv) { return _mm256_shuffle_epi8(kv, nibbles32(qs)); }

/* sumf = fma((float)sumi_b, d_w*d_a, sumf) block after block; the integer
 * sums of four blocks come out of one hadd tree */
static inline float dot_4bit_32(int64_t n, const void *w, const void *a, __m256i (*vals)(const uint8_t *, __m256i))
{
    const block_q4_0 *x = w; /* IQ4_NL has the same layout */
    const block_q8_0 *y = a;
    const __m256i kv = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)kvalues_iq4nl));
    const int64_t nb = n / 32;
    __m128 sum = _mm_setzero_ps();
    int64_t b = 0;
    for (; b + 4 <= nb; b += 4) {
        __m256i l[4];
        for (int k = 0; k < 4; k++)
            l[k] = dot_s8s8(vals(x[b + k].qs, kv), _mm256_loadu_si256((const __m256i *)y[b + k].qs));
        const __m256i h = _mm256_hadd_epi32(_mm256_hadd_epi32(l[0], l[1]), _mm256_hadd_epi32(l[2], l[3]));
        const __m128 si = _mm_cvtepi32_ps(_mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1)));
        const __m128 dd = _mm_mul_ps(_mm_cvtph_ps(_mm_setr_epi16((short)x[b].d, (short)x[b + 1].d, (short)x[b + 2].d,
                                                                 (short)x[b + 3].d, 0, 0, 0, 0)),
                                     _mm_cvtph_ps(_mm_setr_epi16((short)y[b].d, (short)y[b + 1].d, (short)y[b + 2].d,
                                                                 (short)y[b + 3].d, 0, 0, 0, 0)));
        sum = _mm_fmadd_ss(si, dd, sum);
        sum = _mm_fmadd_ss(_mm_movehdup_ps(si), _mm_movehdup_ps(dd), sum);
        sum = _mm_fmadd_ss(_mm_movehl_ps(si, si), _mm_movehl_ps(dd, dd), sum);
        sum = _mm_fmadd_ss(_mm_shuffle_ps(si, si, 3), _mm_shuffle_ps(dd, dd, 3), sum);
    }
    float sumf = _mm_cvtss_f32(sum);
    for (; b < nb; b++) {
        const __m256i l = dot_s8s8(vals(x[b].qs, kv), _mm256_loadu_si256((const __m256i *)y[b].qs));
        sumf = fma1((float)hsum_i32(l), h2f(x[b].d) * h2f(y[b].d), sumf);
    }
    return sumf;
}

static void dot_q4_0(int64_t n, float *s, const void *w, const void *a) { *s = dot_4bit_32(n, w, a, q4_0_vals); }
static void dot_iq4_nl(int64_t n, float *s, const void *w, const void *a) { *s = dot_4bit_32(n, w, a, iq4_nl_vals); }

/* ---- IQ4_XS: eight lanes, scale - 32 per 32 ---- */

static inline void iq4_xs_chunk(const block_iq4_xs *x, int ib, __m256i *mag, __m256i *sgn, __m256i *sc)
{
    const __m256i kv = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)kvalues_iq4nl));
    const int ls = (((x->scales_l[ib / 2] >> (4 * (ib % 2))) & 0xf) | (((x->scales_h >> (2 * ib)) & 3) << 4)) - 32;
    const __m256i v = _mm256_shuffle_epi8(kv, nibbles32(x->qs + 16 * ib));
    *mag = _mm256_sign_epi8(v, v);
    *sgn = v;
    *sc = _mm256_set1_epi16((short)ls);
}

CHUNK_KERNELS(iq4_xs, block_iq4_xs, 1.0f, (void)0)

/* ---- Q2_K: isum*(d*da) and msum*(dmin*da) chains ---- */

/* integer sums of one block as [isum half 0, msum half 0, isum half 1,
 * msum half 1] (halves of 128 elements) */
static inline __m128i q2_k_sums(const block_q2_K *x, const block_q8_K *y)
{
    const __m128i sc8 = _mm_loadu_si128((const __m128i *)x->scales), m4 = _mm_set1_epi8(0x0F);
    const __m256i m3 = _mm256_set1_epi8(3);
    /* int32 lane j: bsums[2j]*min[2j] + bsums[2j+1]*min[2j+1]; lanes 0-3 are half 0 */
    const __m256i mv = _mm256_madd_epi16(_mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(sc8, 4), m4)),
                                         _mm256_loadu_si256((const __m256i *)y->bsums));
    const __m256i sc16 = _mm256_cvtepu8_epi16(_mm_and_si128(sc8, m4));
    /* scales 8h..8h+7 in both 128-bit halves */
    const __m256i scvs[2] = {_mm256_permute4x64_epi64(sc16, 0x44), _mm256_permute4x64_epi64(sc16, 0xEE)};
    __m256i lane[2];
    /* unrolled, so the shuffle controls are constants: 3.0 -> 6.4 GB/s in cache */
#pragma GCC unroll 2
    for (int h = 0; h < 2; h++) {
        const __m256i scv = scvs[h];
        const __m256i q = _mm256_loadu_si256((const __m256i *)(x->qs + 32 * h));
        const int8_t *q8 = y->qs + 128 * h;
        __m256i l = _mm256_setzero_si256();
#pragma GCC unroll 4
        for (int p = 0; p < 4; p++) {
            /* 2-bit values (<= 3) x s8: pairs fit s16; 16-groups 8h+2p, 8h+2p+1 */
            const __m256i v = _mm256_and_si256(_mm256_srli_epi16(q, 2 * p), m3);
            const __m256i p16 = _mm256_maddubs_epi16(v, _mm256_loadu_si256((const __m256i *)(q8 + 32 * p)));
            l = _mm256_add_epi32(l, _mm256_madd_epi16(p16, _mm256_shuffle_epi8(scv, scale_pair_shuffle(p))));
        }
        lane[h] = l;
    }
    /* hadd tree: low 128 [is0(0-3), is1(0-3), m0+m1, m4+m5], high the
     * rest; the 128-bit halves added give [is0, is1, ms0, ms1] */
    const __m256i h2 = _mm256_hadd_epi32(_mm256_hadd_epi32(lane[0], lane[1]), _mm256_permute4x64_epi64(mv, 0xD8));
    const __m128i t = _mm_add_epi32(_mm256_castsi256_si128(h2), _mm256_extracti128_si256(h2, 1));
    return _mm_shuffle_epi32(t, 0xD8);
}

/* quant_dot_q2_K_x86: lanes 0 and 1 of one xmm are the two chains, each
 * term one FMA of [isum, msum] x [d*da, dmin*da]; gemv one term per block,
 * gemm one per half */
static float dot_q2_k_x(int64_t n, const void *w, const void *a, int gemm)
{
    const block_q2_K *x = w;
    const block_q8_K *y = a;
    __m128 acc = _mm_setzero_ps();
    for (int64_t b = 0; b < n / QK_K; b++) {
        const __m128i t = q2_k_sums(&x[b], &y[b]);
        const __m128 ddm = _mm_setr_ps(h2f(x[b].d) * y[b].d, h2f(x[b].dmin) * y[b].d, 0.0f, 0.0f);
        if (gemm) {
            acc = _mm_fmadd_ps(_mm_cvtepi32_ps(t), ddm, acc);
            acc = _mm_fmadd_ps(_mm_cvtepi32_ps(_mm_unpackhi_epi64(t, t)), ddm, acc);
        } else {
            acc = _mm_fmadd_ps(_mm_cvtepi32_ps(_mm_add_epi32(t, _mm_unpackhi_epi64(t, t))), ddm, acc);
        }
    }
    return _mm_cvtss_f32(acc) - _mm_cvtss_f32(_mm_movehdup_ps(acc));
}

static void dot_q2_k(int64_t n, float *s, const void *w, const void *a) { *s = dot_q2_k_x(n, w, a, 0); }

/* A block decoded once for several columns: the 2-bit values of half h,
 * pass p in v[4h+p] with their int16 scales in sc[4h+p], the mins as int16. */
typedef struct {
    __m256i v[8], sc[8], mins16;
    float d, dmin;
} q2_k_block;

static inline void q2_k_decode(const block_q2_K *x, q2_k_block *k)
{
    const __m128i sc8 = _mm_loadu_si128((const __m128i *)x->scales), m4 = _mm_set1_epi8(0x0F);
    const __m256i m3 = _mm256_set1_epi8(3);
    k->mins16 = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(sc8, 4), m4));
    const __m256i sc16 = _mm256_cvtepu8_epi16(_mm_and_si128(sc8, m4));
    const __m256i scvs[2] = {_mm256_permute4x64_epi64(sc16, 0x44), _mm256_permute4x64_epi64(sc16, 0xEE)};
#pragma GCC unroll 2
    for (int h = 0; h < 2; h++) {
        const __m256i q = _mm256_loadu_si256((const __m256i *)(x->qs + 32 * h));
#pragma GCC unroll 4
        for (int p = 0; p < 4; p++) {
            k->v[4 * h + p] = _mm256_and_si256(_mm256_srli_epi16(q, 2 * p), m3);
            k->sc[4 * h + p] = _mm256_shuffle_epi8(scvs[h], scale_pair_shuffle(p));
        }
    }
    k->d = h2f(x->d);
    k->dmin = h2f(x->dmin);
}

/* q2_k_sums from a decoded block */
static inline __m128i q2_k_block_sums(const q2_k_block *k, const block_q8_K *y)
{
    const __m256i mv = _mm256_madd_epi16(k->mins16, _mm256_loadu_si256((const __m256i *)y->bsums));
    __m256i lane[2];
#pragma GCC unroll 2
    for (int h = 0; h < 2; h++) {
        __m256i l = _mm256_setzero_si256();
#pragma GCC unroll 4
        for (int p = 0; p < 4; p++) {
            const __m256i yv = _mm256_loadu_si256((const __m256i *)(y->qs + 128 * h + 32 * p));
            l = _mm256_add_epi32(l, _mm256_madd_epi16(_mm256_maddubs_epi16(k->v[4 * h + p], yv), k->sc[4 * h + p]));
        }
        lane[h] = l;
    }
    const __m256i h2 = _mm256_hadd_epi32(_mm256_hadd_epi32(lane[0], lane[1]), _mm256_permute4x64_epi64(mv, 0xD8));
    const __m128i t = _mm_add_epi32(_mm256_castsi256_si128(h2), _mm256_extracti128_si256(h2, 1));
    return _mm_shuffle_epi32(t, 0xD8);
}

/* NC (1-4) columns of one row, each weight block decoded once; gemm or
 * gemv order for all NC (a group of four below ncols - ncols%4 is gemm) */
static inline void q2_k_cols(int NC, int gemm, int64_t n, const block_q2_K *x, const uint8_t *a, size_t as,
                             float *o, size_t os)
{
    __m128 acc[4];
#pragma GCC unroll 4
    for (int c = 0; c < NC; c++)
        acc[c] = _mm_setzero_ps();
    q2_k_block k;
    for (int64_t b = 0; b < n / QK_K; b++) {
        q2_k_decode(&x[b], &k);
#pragma GCC unroll 4
        for (int c = 0; c < NC; c++) {
            const block_q8_K *y = (const block_q8_K *)(a + (size_t)c * as) + b;
            const __m128i t = q2_k_block_sums(&k, y);
            const __m128 ddm = _mm_setr_ps(k.d * y->d, k.dmin * y->d, 0.0f, 0.0f);
            if (gemm) {
                acc[c] = _mm_fmadd_ps(_mm_cvtepi32_ps(t), ddm, acc[c]);
                acc[c] = _mm_fmadd_ps(_mm_cvtepi32_ps(_mm_unpackhi_epi64(t, t)), ddm, acc[c]);
            } else {
                acc[c] = _mm_fmadd_ps(_mm_cvtepi32_ps(_mm_add_epi32(t, _mm_unpackhi_epi64(t, t))), ddm, acc[c]);
            }
        }
    }
#pragma GCC unroll 4
    for (int c = 0; c < NC; c++)
        o[(size_t)c * os] = _mm_cvtss_f32(acc[c]) - _mm_cvtss_f32(_mm_movehdup_ps(acc[c]));
}

/* Columns [0, ncols - ncols % 4) in gemm order, four at a time, the rest
 * (up to three) in gemv order, also sharing each decoded block; a lone
 * column takes the direct gemv. */
static void mm_q2_k(int64_t n, const void *w, size_t ws, int64_t r0, int64_t r1, const void *a, size_t as,
                    int64_t nc, float *o, size_t os)
{
    const int64_t ngemm = nc - nc % 4;
    const uint8_t *ab = a;
    for (int64_t r = r0; r < r1; r++) {
        const block_q2_K *x = (const block_q2_K *)((const uint8_t *)w + (size_t)r * ws);
        float *orow = o + (size_t)r;
        for (int64_t c = 0; c < ngemm; c += 4)
            q2_k_cols(4, 1, n, x, ab + (size_t)c * as, as, orow + (size_t)c * os, os);
        switch (nc - ngemm) {
        case 3: q2_k_cols(3, 0, n, x, ab + (size_t)ngemm * as, as, orow + (size_t)ngemm * os, os); break;
        case 2: q2_k_cols(2, 0, n, x, ab + (size_t)ngemm * as, as, orow + (size_t)ngemm * os, os); break;
        case 1: orow[(size_t)ngemm * os] = dot_q2_k_x(n, x, ab + (size_t)ngemm * as, 0); break;
        default: break;
        }
    }
}

/* ---- Q3_K: eight lanes, one FMA per lane ---- */

static void dot_q3_k(int64_t n, float *s, const void *w, const void *a)
{
    const block_q3_K *x = w;
    const block_q8_K *y = a;
    const __m256i m3 = _mm256_set1_epi8(3), four = _mm256_set1_epi8(4);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = 0; b < n / QK_K; b++) {
        uint32_t aux[4];
        memcpy(aux, x[b].scales, 12);
        const uint32_t tmp = aux[2];
        aux[2] = ((aux[0] >> 4) & 0x0f0f0f0f) | (((tmp >> 4) & 0x03030303) << 4);
        aux[3] = ((aux[1] >> 4) & 0x0f0f0f0f) | (((tmp >> 6) & 0x03030303) << 4);
        aux[0] = (aux[0] & 0x0f0f0f0f) | (((tmp >> 0) & 0x03030303) << 4);
        aux[1] = (aux[1] & 0x0f0f0f0f) | (((tmp >> 2) & 0x03030303) << 4);
        const __m128i sc8 = _mm_sub_epi8(_mm_loadu_si128((const __m128i *)aux), _mm_set1_epi8(32));
        const __m256i sc16 = _mm256_cvtepi8_epi16(sc8);
        const __m256i hm = _mm256_loadu_si256((const __m256i *)x[b].hmask);
        const __m256i scvs[2] = {_mm256_permute4x64_epi64(sc16, 0x44), _mm256_permute4x64_epi64(sc16, 0xEE)};
        __m256i lane = _mm256_setzero_si256();
#pragma GCC unroll 2
        for (int h = 0; h < 2; h++) {
            const __m256i scv = scvs[h];
            const __m256i q = _mm256_loadu_si256((const __m256i *)(x[b].qs + 32 * h));
#pragma GCC unroll 4
            for (int p = 0; p < 4; p++) {
                const __m256i v = _mm256_and_si256(_mm256_srli_epi16(q, 2 * p), m3);
                /* 4 where the high bit (4h+p) of hmask is clear */
                const __m256i hb = _mm256_set1_epi8((char)(1u << (4 * h + p)));
                const __m256i h4 = _mm256_andnot_si256(_mm256_cmpeq_epi8(_mm256_and_si256(hm, hb), hb), four);
                const __m256i yv = _mm256_loadu_si256((const __m256i *)(y[b].qs + 128 * h + 32 * p));
                const __m256i p16 = _mm256_sub_epi16(_mm256_maddubs_epi16(v, yv), _mm256_maddubs_epi16(h4, yv));
                lane = _mm256_add_epi32(lane, _mm256_madd_epi16(p16, _mm256_shuffle_epi8(scv, scale_pair_shuffle(p))));
            }
        }
        acc = lanes_fma_ps(acc, y[b].d * h2f(x[b].d), lane);
    }
    *s = hsum8_ps(acc);
}

/* A block decoded once for several columns (mul_mat): the signed 3-bit
 * values q - 4*(hmask bit clear) of half h, pass p in q[4h+p] (|q| in aq),
 * their int16 scales (groups 8h+2p, 8h+2p+1) in sc. */
typedef struct {
    __m256i aq[8], q[8], sc[8];
    float d;
} q3_k_block;

static inline void q3_k_decode(const block_q3_K *x, q3_k_block *k)
{
    const __m256i m3 = _mm256_set1_epi8(3), four = _mm256_set1_epi8(4);
    uint32_t aux[4];
    memcpy(aux, x->scales, 12);
    const uint32_t tmp = aux[2];
    aux[2] = ((aux[0] >> 4) & 0x0f0f0f0f) | (((tmp >> 4) & 0x03030303) << 4);
    aux[3] = ((aux[1] >> 4) & 0x0f0f0f0f) | (((tmp >> 6) & 0x03030303) << 4);
    aux[0] = (aux[0] & 0x0f0f0f0f) | (((tmp >> 0) & 0x03030303) << 4);
    aux[1] = (aux[1] & 0x0f0f0f0f) | (((tmp >> 2) & 0x03030303) << 4);
    const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_sub_epi8(_mm_loadu_si128((const __m128i *)aux), _mm_set1_epi8(32)));
    const __m256i scvs[2] = {_mm256_permute4x64_epi64(sc16, 0x44), _mm256_permute4x64_epi64(sc16, 0xEE)};
    const __m256i hm = _mm256_loadu_si256((const __m256i *)x->hmask);
#pragma GCC unroll 2
    for (int h = 0; h < 2; h++) {
        const __m256i q = _mm256_loadu_si256((const __m256i *)(x->qs + 32 * h));
#pragma GCC unroll 4
        for (int p = 0; p < 4; p++) {
            const __m256i hb = _mm256_set1_epi8((char)(1u << (4 * h + p)));
            const __m256i h4 = _mm256_andnot_si256(_mm256_cmpeq_epi8(_mm256_and_si256(hm, hb), hb), four);
            const __m256i v = _mm256_sub_epi8(_mm256_and_si256(_mm256_srli_epi16(q, 2 * p), m3), h4);
            k->q[4 * h + p] = v;
            k->aq[4 * h + p] = _mm256_sign_epi8(v, v);
            k->sc[4 * h + p] = _mm256_shuffle_epi8(scvs[h], scale_pair_shuffle(p));
        }
    }
    k->d = h2f(x->d);
}

/* NC (1-4) columns of one row, each block decoded once; vec_dot's lanes */
static inline void q3_k_cols(int NC, int64_t n, const block_q3_K *x, const uint8_t *a, size_t as, float *o,
                             size_t os)
{
    __m256 acc[4];
#pragma GCC unroll 4
    for (int c = 0; c < NC; c++)
        acc[c] = _mm256_setzero_ps();
    q3_k_block k;
    for (int64_t b = 0; b < n / QK_K; b++) {
        q3_k_decode(&x[b], &k);
#pragma GCC unroll 4
        for (int c = 0; c < NC; c++) {
            const block_q8_K *y = (const block_q8_K *)(a + (size_t)c * as) + b;
            __m256i lane = _mm256_setzero_si256();
#pragma GCC unroll 8
            for (int j = 0; j < 8; j++) {
                const __m256i yv = _mm256_loadu_si256((const __m256i *)(y->qs + 32 * j));
                lane = _mm256_add_epi32(
                    lane, _mm256_madd_epi16(_mm256_maddubs_epi16(k.aq[j], _mm256_sign_epi8(yv, k.q[j])), k.sc[j]));
            }
            acc[c] = lanes_fma_ps(acc[c], y->d * k.d, lane);
        }
    }
#pragma GCC unroll 4
    for (int c = 0; c < NC; c++)
        o[(size_t)c * os] = hsum8_ps(acc[c]);
}

static void mm_q3_k(int64_t n, const void *w, size_t ws, int64_t r0, int64_t r1, const void *a, size_t as,
                    int64_t nc, float *o, size_t os)
{
    const uint8_t *ab = a;
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *wr = (const uint8_t *)w + (size_t)r * ws;
        const block_q3_K *x = (const block_q3_K *)wr;
        float *orow = o + (size_t)r;
        int64_t c = 0;
        for (; c + 4 <= nc; c += 4)
            q3_k_cols(4, n, x, ab + (size_t)c * as, as, orow + (size_t)c * os, os);
        switch (nc - c) {
        case 3: q3_k_cols(3, n, x, ab + (size_t)c * as, as, orow + (size_t)c * os, os); break;
        case 2: q3_k_cols(2, n, x, ab + (size_t)c * as, as, orow + (size_t)c * os, os); break;
        case 1: dot_q3_k(n, orow + (size_t)c * os, wr, ab + (size_t)c * as); break;
        default: break;
        }
    }
}

/* ---- IQ2_XS / IQ2_S: two 4-bit scales per 32, 1/8 after the sum ---- */

static inline __m256i scale2_16(int s0, int s1)
{
    return _mm256_setr_m128i(_mm_set1_epi16((short)s0), _mm_set1_epi16((short)s1));
}

static inline void iq2_xs_chunk(const block_iq2_xs *x, int ib, __m256i *mag, __m256i *sgn, __m256i *sc)
{
    const uint16_t *q = x->qs + 4 * ib;
    *mag = _mm256_setr_epi64x((long long)iq2xs_grid[q[0] & 511], (long long)iq2xs_grid[q[1] & 511],
                              (long long)iq2xs_grid[q[2] & 511], (long long)iq2xs_grid[q[3] & 511]);
    *sgn = _mm256_or_si256(_mm256_setr_epi64x((long long)signs64[q[0] >> 9], (long long)signs64[q[1] >> 9],
                                              (long long)signs64[q[2] >> 9], (long long)signs64[q[3] >> 9]),
                           _mm256_set1_epi8(1));
    const int scb = x->scales[ib];
    *sc = scale2_16(2 * (scb & 0xf) + 1, 2 * (scb >> 4) + 1);
}

CHUNK_KERNELS(iq2_xs, block_iq2_xs, 0.125f, pthread_once(&signs_once, signs_init))

static inline void iq2_s_chunk(const block_iq2_s *x, int ib, __m256i *mag, __m256i *sgn, __m256i *sc)
{
    const uint8_t *qs = x->qs + 4 * ib;
    const unsigned h = x->qh[ib];
    *mag = _mm256_setr_epi64x((long long)iq2s_grid[qs[0] | ((h << 8) & 0x300)],
                              (long long)iq2s_grid[qs[1] | ((h << 6) & 0x300)],
                              (long long)iq2s_grid[qs[2] | ((h << 4) & 0x300)],
                              (long long)iq2s_grid[qs[3] | ((h << 2) & 0x300)]);
    uint32_t sg;
    memcpy(&sg, x->qs + QK_K / 8 + 4 * ib, 4);
    *sgn = _mm256_or_si256(bits_to_bytes(sg), _mm256_set1_epi8(1));
    const int scb = x->scales[ib];
    *sc = scale2_16(2 * (scb & 0xf) + 1, 2 * (scb >> 4) + 1);
}

CHUNK_KERNELS(iq2_s, block_iq2_s, 0.125f, (void)0)

/* ---- IQ3_XXS (1/4 after the sum) / IQ3_S: one scale per 32 ---- */

static inline void iq3_xxs_chunk(const block_iq3_xxs *x, int ib, __m256i *mag, __m256i *sgn, __m256i *sc)
{
    uint32_t aux;
    memcpy(&aux, x->qs + QK_K / 4 + 4 * ib, 4);
    const uint8_t *q = x->qs + 8 * ib;
    *mag = _mm256_setr_epi32((int)iq3xxs_grid[q[0]], (int)iq3xxs_grid[q[1]], (int)iq3xxs_grid[q[2]],
                             (int)iq3xxs_grid[q[3]], (int)iq3xxs_grid[q[4]], (int)iq3xxs_grid[q[5]],
                             (int)iq3xxs_grid[q[6]], (int)iq3xxs_grid[q[7]]);
    *sgn = _mm256_or_si256(_mm256_setr_epi64x((long long)signs64[aux & 127], (long long)signs64[(aux >> 7) & 127],
                                              (long long)signs64[(aux >> 14) & 127],
                                              (long long)signs64[(aux >> 21) & 127]),
                           _mm256_set1_epi8(1));
    *sc = _mm256_set1_epi16((short)(2 * (int)(aux >> 28) + 1));
}

CHUNK_KERNELS(iq3_xxs, block_iq3_xxs, 0.25f, pthread_once(&signs_once, signs_init))

static inline void iq3_s_chunk(const block_iq3_s *x, int ib, __m256i *mag, __m256i *sgn, __m256i *sc)
{
    /* grid index j: qs[j] | bit j of qh << 8 */
    const __m256i idx = _mm256_or_si256(
        _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(x->qs + 8 * ib))),
        _mm256_and_si256(_mm256_sllv_epi32(_mm256_set1_epi32(x->qh[ib]), _mm256_setr_epi32(8, 7, 6, 5, 4, 3, 2, 1)),
                         _mm256_set1_epi32(256)));
    *mag = _mm256_i32gather_epi32((const int *)iq3s_grid, idx, 4);
    uint32_t sg;
    memcpy(&sg, x->signs + 4 * ib, 4);
    *sgn = _mm256_or_si256(bits_to_bytes(sg), _mm256_set1_epi8(1));
    *sc = _mm256_set1_epi16((short)(2 * ((x->scales[ib / 2] >> (4 * (ib % 2))) & 0xf) + 1));
}

CHUNK_KERNELS(iq3_s, block_iq3_s, 1.0f, (void)0)

/* ---- IQ1_M: grid and delta lanes, hsum(grid) + IQ1M_DELTA*hsum(delta) ---- */

/* the delta signs of a chunk's four 8-groups (bit g of the index) as +-1
 * bytes, ready for sign_epi8 */
#define IQ1M_D8(i, g) (((i) >> (g)) & 1 ? -1LL : 0x0101010101010101LL)
#define IQ1M_DROW(i) {IQ1M_D8(i, 0), IQ1M_D8(i, 1), IQ1M_D8(i, 2), IQ1M_D8(i, 3)}
static const _Alignas(32) int64_t iq1m_delta_signs[16][4] = {
    IQ1M_DROW(0),  IQ1M_DROW(1),  IQ1M_DROW(2),  IQ1M_DROW(3),  IQ1M_DROW(4),  IQ1M_DROW(5),
    IQ1M_DROW(6),  IQ1M_DROW(7),  IQ1M_DROW(8),  IQ1M_DROW(9),  IQ1M_DROW(10), IQ1M_DROW(11),
    IQ1M_DROW(12), IQ1M_DROW(13), IQ1M_DROW(14), IQ1M_DROW(15)};
#undef IQ1M_DROW
#undef IQ1M_D8

/* The delta bits of two chunks (bits 3 and 7 of their four qh bytes) as
 * two 4-bit indices: the bits moved to 0,4,...,28, then one multiply
 * gathers bits 4i+{0..3} of each 16-bit half into 12..15 (and 28..31) - the
 * sixteen partial products land on distinct bits, so nothing carries. */
static inline uint32_t iq1m_delta_idx(uint32_t qh4)
{
    return (uint32_t)(((uint64_t)((qh4 >> 3) & 0x11111111u) * 0x1248u) >> 12);
}

/* ggml_vec_dot_iq1_m_q8_K's integer layout, two 32-element chunks per step.
 * The eight grid indices of a step are built in one ymm and fetched with
 * two 4-wide gathers: 1.8-2.0 GB/s in cache on one thread here, against
 * 1.35 GB/s with scalar index arithmetic and inserts; the delta signs from
 * iq1m_delta_signs instead of pshufb/and/cmpeq masks: 2.0 -> 2.2 GB/s (same
 * process, best of 200-300 calls). */
static void dot_iq1_m(int64_t n, float *s, const void *w, const void *a)
{
    const block_iq1_m *x = w;
    const block_q8_K *y = a;
    /* the 3-bit scales as int16 2s+1: the 64-bit scale word shifted by 0
     * (ib even, elements 0-15 of the chunk), 6 (ib odd, 0-15), 3 (ib even,
     * 16-31), 9 (ib odd, 16-31); pshufb with idx1 (idx2) then puts chunk
     * ib's (ib+1's) first scale in bytes 0-15 and its second in 16-31 */
    const __m256i mask = _mm256_set1_epi16(7), mone = _mm256_set1_epi16(1);
    const __m256i scales_shift = _mm256_set_epi64x(9, 3, 6, 0);
    const __m256i ones8 = _mm256_set1_epi8(1);
    /* grid index k of a step: qs[k] | ((qh[k/2] >> 4*(k%2)) & 7) << 8 */
    const __m256i hsh = _mm256_setr_epi32(8, 4, 8, 4, 8, 4, 8, 4), m700 = _mm256_set1_epi32(0x700);
    const __m128i qhdup = _mm_setr_epi8(0, 0, 1, 1, 2, 2, 3, 3, -1, -1, -1, -1, -1, -1, -1, -1);
    /* the delta of 8-group l of a chunk is bit 3 (l even) or 7 (l odd) of
     * its qh[l/2]: iq1m_delta_idx/iq1m_delta_signs */
    __m256 acc1 = _mm256_setzero_ps(), acc2 = _mm256_setzero_ps();
    for (int64_t b = 0; b < n / QK_K; b++) {
        uint16_t sc[4];
        memcpy(sc, x[b].scales, 8);
        uint64_t sc64;
        memcpy(&sc64, x[b].scales, 8);
        const uint16_t dbits =
            (uint16_t)((sc[0] >> 12) | ((sc[1] >> 8) & 0x00f0) | ((sc[2] >> 4) & 0x0f00) | (sc[3] & 0xf000));
        __m256i scales = _mm256_srlv_epi64(_mm256_set1_epi64x((long long)sc64), scales_shift);
        scales = _mm256_add_epi16(_mm256_slli_epi16(_mm256_and_si256(scales, mask), 1), mone);
        __m256i idx1 = _mm256_set1_epi16(0x0100), idx2 = _mm256_set1_epi16(0x0908);
        const uint8_t *qs = x[b].qs, *qh = x[b].qh;
        const int8_t *q8 = y[b].qs;
        __m256i s1 = _mm256_setzero_si256(), s2 = _mm256_setzero_si256();
#pragma GCC unroll 4
        for (int ib = 0; ib < 8; ib += 2, qs += 8, qh += 4, q8 += 64) {
            uint32_t qh4;
            memcpy(&qh4, qh, 4);
            const __m128i qhv = _mm_cvtsi32_si128((int)qh4);
            const __m256i hi =
                _mm256_and_si256(_mm256_sllv_epi32(_mm256_cvtepu8_epi32(_mm_shuffle_epi8(qhv, qhdup)), hsh), m700);
            const __m256i idx = _mm256_or_si256(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)qs)), hi);
            const __m256i g1 = _mm256_i32gather_epi64((const long long *)iq1s_grid, _mm256_castsi256_si128(idx), 8);
            const __m256i g2 =
                _mm256_i32gather_epi64((const long long *)iq1s_grid, _mm256_extracti128_si256(idx, 1), 8);
            const __m256i y1 = _mm256_loadu_si256((const __m256i *)q8);
            const __m256i y2 = _mm256_loadu_si256((const __m256i *)(q8 + 32));
            const uint32_t di = iq1m_delta_idx(qh4);
            const __m256i dl1 = _mm256_load_si256((const __m256i *)iq1m_delta_signs[di & 15]);
            const __m256i dl2 = _mm256_load_si256((const __m256i *)iq1m_delta_signs[(di >> 16) & 15]);
            const __m256i sc1 = _mm256_shuffle_epi8(scales, idx1), sc2 = _mm256_shuffle_epi8(scales, idx2);
            idx1 = _mm256_add_epi8(idx1, _mm256_set1_epi8(2));
            idx2 = _mm256_add_epi8(idx2, _mm256_set1_epi8(2));
            /* grid in {-1,0,1}: |g| as u8 times sign(g)*y; the delta as 1 x (+-y) */
            s1 = _mm256_add_epi32(s1, _mm256_add_epi32(_mm256_madd_epi16(mul_s8s8(g1, y1), sc1),
                                                       _mm256_madd_epi16(mul_s8s8(g2, y2), sc2)));
            s2 = _mm256_add_epi32(
                s2, _mm256_add_epi32(_mm256_madd_epi16(_mm256_maddubs_epi16(ones8, _mm256_sign_epi8(y1, dl1)), sc1),
                                     _mm256_madd_epi16(_mm256_maddubs_epi16(ones8, _mm256_sign_epi8(y2, dl2)), sc2)));
        }
        const float d = y[b].d * h2f(dbits);
        acc1 = lanes_fma_ps(acc1, d, s1);
        acc2 = lanes_fma_ps(acc2, d, s2);
    }
    *s = hsum8_ps(acc1) + IQ1M_DELTA * hsum8_ps(acc2);
}

/* A block decoded once for several columns (mul_mat): per 32-element
 * chunk |grid| and grid (the sign source), the two scales (bytes 0-15,
 * 16-31) and the same scales carrying each 8-group's delta sign, so the
 * delta term of a column is madd(pair sums of y, scd) - the same lanes. */
typedef struct {
    __m256i ag[8], g[8], sc[8], scd[8];
    float d;
} iq1_m_block;

static inline void iq1_m_decode(const block_iq1_m *x, iq1_m_block *k)
{
    const __m256i mask = _mm256_set1_epi16(7), mone = _mm256_set1_epi16(1);
    const __m256i scales_shift = _mm256_set_epi64x(9, 3, 6, 0);
    const __m256i hsh = _mm256_setr_epi32(8, 4, 8, 4, 8, 4, 8, 4), m700 = _mm256_set1_epi32(0x700);
    const __m128i qhdup = _mm_setr_epi8(0, 0, 1, 1, 2, 2, 3, 3, -1, -1, -1, -1, -1, -1, -1, -1);
    uint16_t sc[4];
    memcpy(sc, x->scales, 8);
    uint64_t sc64;
    memcpy(&sc64, x->scales, 8);
    k->d = h2f((uint16_t)((sc[0] >> 12) | ((sc[1] >> 8) & 0x00f0) | ((sc[2] >> 4) & 0x0f00) | (sc[3] & 0xf000)));
    __m256i scales = _mm256_srlv_epi64(_mm256_set1_epi64x((long long)sc64), scales_shift);
    scales = _mm256_add_epi16(_mm256_slli_epi16(_mm256_and_si256(scales, mask), 1), mone);
    __m256i idx1 = _mm256_set1_epi16(0x0100), idx2 = _mm256_set1_epi16(0x0908);
    const uint8_t *qs = x->qs, *qh = x->qh;
#pragma GCC unroll 4
    for (int ib = 0; ib < 8; ib += 2, qs += 8, qh += 4) {
        uint32_t qh4;
        memcpy(&qh4, qh, 4);
        const __m256i hi = _mm256_and_si256(
            _mm256_sllv_epi32(_mm256_cvtepu8_epi32(_mm_shuffle_epi8(_mm_cvtsi32_si128((int)qh4), qhdup)), hsh), m700);
        const __m256i idx = _mm256_or_si256(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)qs)), hi);
        const __m256i g1 = _mm256_i32gather_epi64((const long long *)iq1s_grid, _mm256_castsi256_si128(idx), 8);
        const __m256i g2 = _mm256_i32gather_epi64((const long long *)iq1s_grid, _mm256_extracti128_si256(idx, 1), 8);
        const uint32_t di = iq1m_delta_idx(qh4);
        const __m256i dl1 = _mm256_load_si256((const __m256i *)iq1m_delta_signs[di & 15]);
        const __m256i dl2 = _mm256_load_si256((const __m256i *)iq1m_delta_signs[(di >> 16) & 15]);
        const __m256i sc1 = _mm256_shuffle_epi8(scales, idx1), sc2 = _mm256_shuffle_epi8(scales, idx2);
        idx1 = _mm256_add_epi8(idx1, _mm256_set1_epi8(2));
        idx2 = _mm256_add_epi8(idx2, _mm256_set1_epi8(2));
        k->ag[ib] = _mm256_sign_epi8(g1, g1);
        k->ag[ib + 1] = _mm256_sign_epi8(g2, g2);
        k->g[ib] = g1;
        k->g[ib + 1] = g2;
        k->sc[ib] = sc1;
        k->sc[ib + 1] = sc2;
        /* an int16 of the +-1 bytes is 0xFFFF (negative) or 0x0101 (positive) */
        k->scd[ib] = _mm256_sign_epi16(sc1, dl1);
        k->scd[ib + 1] = _mm256_sign_epi16(sc2, dl2);
    }
}

/* NC (1-4) columns of one row, each block decoded once */
static inline void iq1_m_cols(int NC, int64_t n, const block_iq1_m *x, const uint8_t *a, size_t as, float *o,
                              size_t os)
{
    const __m256i ones8 = _mm256_set1_epi8(1);
    __m256 acc1[4], acc2[4];
#pragma GCC unroll 4
    for (int c = 0; c < NC; c++)
        acc1[c] = acc2[c] = _mm256_setzero_ps();
    iq1_m_block k;
    for (int64_t b = 0; b < n / QK_K; b++) {
        iq1_m_decode(&x[b], &k);
#pragma GCC unroll 4
        for (int c = 0; c < NC; c++) {
            const block_q8_K *y = (const block_q8_K *)(a + (size_t)c * as) + b;
            __m256i s1 = _mm256_setzero_si256(), s2 = _mm256_setzero_si256();
#pragma GCC unroll 8
            for (int ib = 0; ib < 8; ib++) {
                const __m256i yv = _mm256_loadu_si256((const __m256i *)(y->qs + 32 * ib));
                s1 = _mm256_add_epi32(
                    s1, _mm256_madd_epi16(_mm256_maddubs_epi16(k.ag[ib], _mm256_sign_epi8(yv, k.g[ib])), k.sc[ib]));
                s2 = _mm256_add_epi32(s2, _mm256_madd_epi16(_mm256_maddubs_epi16(ones8, yv), k.scd[ib]));
            }
            const float d = y->d * k.d;
            acc1[c] = lanes_fma_ps(acc1[c], d, s1);
            acc2[c] = lanes_fma_ps(acc2[c], d, s2);
        }
    }
#pragma GCC unroll 4
    for (int c = 0; c < NC; c++)
        o[(size_t)c * os] = hsum8_ps(acc1[c]) + IQ1M_DELTA * hsum8_ps(acc2[c]);
}

/* vec_dot order for every column (it does not depend on the count); two or
 * more columns share each decoded block, four at a time */
static void mm_iq1_m(int64_t n, const void *w, size_t ws, int64_t r0, int64_t r1, const void *a, size_t as,
                     int64_t nc, float *o, size_t os)
{
    const uint8_t *ab = a;
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *wr = (const uint8_t *)w + (size_t)r * ws;
        float *orow = o + (size_t)r;
        int64_t c = 0;
        for (; c + 4 <= nc; c += 4)
            iq1_m_cols(4, n, (const block_iq1_m *)wr, ab + (size_t)c * as, as, orow + (size_t)c * os, os);
        switch (nc - c) {
        case 3: iq1_m_cols(3, n, (const block_iq1_m *)wr, ab + (size_t)c * as, as, orow + (size_t)c * os, os); break;
        case 2: iq1_m_cols(2, n, (const block_iq1_m *)wr, ab + (size_t)c * as, as, orow + (size_t)c * os, os); break;
        case 1: dot_iq1_m(n, orow + (size_t)c * os, wr, ab + (size_t)c * as); break;
        default: break;
        }
    }
}

/* ---- F32: the reference's orders (quant_dot_f32_x86) ----
 * A 16-lane AVX-512 accumulator is two ymm here (lanes 0-7, 8-15) with the
 * same lane arithmetic. */

/* ggml_vec_dot_f32 (AVX-512): four 16-lane FMA accumulators over steps of
 * 64, (0+2),(1+3), then 0+1, the 16-lane reduce, then the tail n%64 as
 * rounded products added one by one. */
static void dot_f32(int64_t n, float *s, const void *w, const void *a)
{
    const float *x = w, *y = a;
    __m256 c0 = _mm256_setzero_ps(), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0, c6 = c0, c7 = c0;
    const int64_t np = n & ~(int64_t)63;
    for (int64_t i = 0; i < np; i += 64) {
        c0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i), c0);
        c1 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 8), _mm256_loadu_ps(y + i + 8), c1);
        c2 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 16), _mm256_loadu_ps(y + i + 16), c2);
        c3 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 24), _mm256_loadu_ps(y + i + 24), c3);
        c4 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 32), _mm256_loadu_ps(y + i + 32), c4);
        c5 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 40), _mm256_loadu_ps(y + i + 40), c5);
        c6 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 48), _mm256_loadu_ps(y + i + 48), c6);
        c7 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 56), _mm256_loadu_ps(y + i + 56), c7);
    }
    /* accumulator j is (c[2j], c[2j+1]) */
    c0 = _mm256_add_ps(c0, c4);
    c1 = _mm256_add_ps(c1, c5);
    c2 = _mm256_add_ps(c2, c6);
    c3 = _mm256_add_ps(c3, c7);
    c0 = _mm256_add_ps(c0, c2);
    c1 = _mm256_add_ps(c1, c3);
    float sumf = reduce16_ps(c0, c1);
    for (int64_t i = np; i < n; i++)
        sumf = sumf + x[i] * y[i];
    *s = sumf;
}

/* tinyBLAS order for NC columns of one row: one 16-lane FMA accumulator per
 * output over the whole row (n % 16 == 0), then the 16-lane reduce; the
 * weight vectors are loaded once for all NC columns. */
static inline void f32_tiny_cols(int NC, int64_t n, const float *x, const uint8_t *a, size_t as, float *o,
                                 size_t os)
{
    __m256 lo[4], hi[4];
    const float *y[4];
#pragma GCC unroll 4
    for (int k = 0; k < NC; k++) {
        lo[k] = hi[k] = _mm256_setzero_ps();
        y[k] = (const float *)(a + (size_t)k * as);
    }
    for (int64_t i = 0; i < n; i += 16) {
        const __m256 x0 = _mm256_loadu_ps(x + i), x1 = _mm256_loadu_ps(x + i + 8);
#pragma GCC unroll 4
        for (int k = 0; k < NC; k++) {
            lo[k] = _mm256_fmadd_ps(x0, _mm256_loadu_ps(y[k] + i), lo[k]);
            hi[k] = _mm256_fmadd_ps(x1, _mm256_loadu_ps(y[k] + i + 8), hi[k]);
        }
    }
#pragma GCC unroll 4
    for (int k = 0; k < NC; k++)
        o[(size_t)k * os] = reduce16_ps(lo[k], hi[k]);
}

/* ncols >= 2 and n % 16 == 0: tinyBLAS order, four columns at a time; other
 * shapes: vec_dot per column (quant_ref_mul_mat_f32) */
static void mm_f32(int64_t n, const void *w, size_t ws, int64_t r0, int64_t r1, const void *a, size_t as,
                   int64_t nc, float *o, size_t os)
{
    if (nc < 2 || n % 16) {
        kern_mul_mat_generic(dot_f32, NULL, n, w, ws, r0, r1, a, as, nc, o, os);
        return;
    }
    const uint8_t *ab = a;
    for (int64_t r = r0; r < r1; r++) {
        const float *x = (const float *)((const uint8_t *)w + (size_t)r * ws);
        int64_t c = 0;
        for (; c + 4 <= nc; c += 4)
            f32_tiny_cols(4, n, x, ab + (size_t)c * as, as, o + (size_t)c * os + (size_t)r, os);
        switch (nc - c) {
        case 3: f32_tiny_cols(3, n, x, ab + (size_t)c * as, as, o + (size_t)c * os + (size_t)r, os); break;
        case 2: f32_tiny_cols(2, n, x, ab + (size_t)c * as, as, o + (size_t)c * os + (size_t)r, os); break;
        case 1: f32_tiny_cols(1, n, x, ab + (size_t)c * as, as, o + (size_t)c * os + (size_t)r, os); break;
        default: break;
        }
    }
}

/* ---- F16: ggml_vec_dot_f16 (F32C, AVX-512 lanes) and tinyBLAS ---- */

static inline __m256 f16x8(const uint16_t *p) { return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p)); }

static float dot_f16_vd(int64_t n, const uint16_t *x, const uint16_t *y)
{
    const int64_t np = n & ~(int64_t)63;
    __m256 c[8];
    for (int k = 0; k < 8; k++)
        c[k] = _mm256_setzero_ps();
    for (int64_t i = 0; i < np; i += 64)
        for (int k = 0; k < 8; k++)
            c[k] = _mm256_fmadd_ps(f16x8(x + i + 8 * k), f16x8(y + i + 8 * k), c[k]);
    /* accumulator j is (c[2j], c[2j+1]); lanes (0+2)+(1+3) */
    const __m256 lo = _mm256_add_ps(_mm256_add_ps(c[0], c[4]), _mm256_add_ps(c[2], c[6]));
    const __m256 hi = _mm256_add_ps(_mm256_add_ps(c[1], c[5]), _mm256_add_ps(c[3], c[7]));
    double sum = (double)reduce16_ps(lo, hi);
    for (int64_t i = np; i < n; i++)
        sum += (double)(h2f(x[i]) * h2f(y[i]));
    return (float)sum;
}

static void dot_f16(int64_t n, float *s, const void *w, const void *a) { *s = dot_f16_vd(n, w, a); }

/* tinyBLAS for NC columns of one row (n % 16 == 0): one 16-lane
 * accumulator per output, weights converted once for all NC */
static inline void f16_tiny_cols(int NC, int64_t n, const uint16_t *x, const uint8_t *a, size_t as, float *o,
                                 size_t os)
{
    __m256 lo[4], hi[4];
    const uint16_t *y[4];
#pragma GCC unroll 4
    for (int k = 0; k < NC; k++) {
        lo[k] = hi[k] = _mm256_setzero_ps();
        y[k] = (const uint16_t *)(a + (size_t)k * as);
    }
    for (int64_t i = 0; i < n; i += 16) {
        const __m256 x0 = f16x8(x + i), x1 = f16x8(x + i + 8);
#pragma GCC unroll 4
        for (int k = 0; k < NC; k++) {
            lo[k] = _mm256_fmadd_ps(x0, f16x8(y[k] + i), lo[k]);
            hi[k] = _mm256_fmadd_ps(x1, f16x8(y[k] + i + 8), hi[k]);
        }
    }
#pragma GCC unroll 4
    for (int k = 0; k < NC; k++)
        o[(size_t)k * os] = reduce16_ps(lo[k], hi[k]);
}

/* mul_mat of the half types: vec_dot order per column for one column (or
 * a row length tinyBLAS would not take), tinyBLAS order in fours else. */
#define MM_HALF(NAME, STEP, DOT, TINY)                                                             \
    static void NAME(int64_t n, const void *w, size_t ws, int64_t r0, int64_t r1, const void *a,  \
                     size_t as, int64_t nc, float *o, size_t os)                                  \
    {                                                                                              \
        const uint8_t *ab = a;                                                                     \
        for (int64_t r = r0; r < r1; r++) {                                                        \
            const uint16_t *x = (const uint16_t *)((const uint8_t *)w + (size_t)r * ws);           \
            if (nc < 2 || n % (STEP)) {                                                            \
                for (int64_t c = 0; c < nc; c++)                                                   \
                    o[(size_t)c * os + (size_t)r] = DOT(n, x, (const uint16_t *)(ab + (size_t)c * as)); \
                continue;                                                                          \
            }                                                                                      \
            int64_t c = 0;                                                                         \
            for (; c + 4 <= nc; c += 4)                                                            \
                TINY(4, n, x, ab + (size_t)c * as, as, o + (size_t)c * os + (size_t)r, os);        \
            for (; c < nc; c++)                                                                    \
                TINY(1, n, x, ab + (size_t)c * as, as, o + (size_t)c * os + (size_t)r, os);        \
        }                                                                                          \
    }
MM_HALF(mm_f16, 16, dot_f16_vd, f16_tiny_cols)

/* ---- BF16: vdpbf16ps emulated (odd pair, then even, DAZ/FTZ) ---- */

/* |v| < 2^-126 -> signed zero (as 0.0f * v), else v (NaN kept) */
static inline __m256 daz_ps(__m256 v)
{
    const __m256 absm = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    const __m256 tiny = _mm256_cmp_ps(_mm256_and_ps(v, absm), _mm256_set1_ps(0x1p-126f), _CMP_LT_OQ);
    return _mm256_andnot_ps(_mm256_and_ps(tiny, absm), v);
}

/* 16 bf16 (8 pairs) as odd (high halves) and even (low halves) floats,
 * denormals read as zero */
typedef struct {
    __m256 odd, even;
} bf16_pairs;

static inline bf16_pairs bf16_load(const uint16_t *p)
{
    const __m256i v = _mm256_loadu_si256((const __m256i *)p);
    bf16_pairs r;
    r.odd = daz_ps(_mm256_castsi256_ps(_mm256_and_si256(v, _mm256_set1_epi32((int)0xffff0000u))));
    r.even = daz_ps(_mm256_castsi256_ps(_mm256_slli_epi32(v, 16)));
    return r;
}

static inline __m256 dpbf16_8(__m256 acc, bf16_pairs x, bf16_pairs y)
{
    acc = daz_ps(_mm256_fmadd_ps(x.odd, y.odd, acc));
    return daz_ps(_mm256_fmadd_ps(x.even, y.even, acc));
}

static float dot_bf16_vd(int64_t n, const uint16_t *x, const uint16_t *y)
{
    __m256 c1l = _mm256_setzero_ps(), c1h = c1l, c2l = c1l, c2h = c1l;
    int64_t i = 0;
    for (; i + 64 <= n; i += 64) {
        c1l = dpbf16_8(c1l, bf16_load(x + i), bf16_load(y + i));
        c1h = dpbf16_8(c1h, bf16_load(x + i + 16), bf16_load(y + i + 16));
        c2l = dpbf16_8(c2l, bf16_load(x + i + 32), bf16_load(y + i + 32));
        c2h = dpbf16_8(c2h, bf16_load(x + i + 48), bf16_load(y + i + 48));
    }
    double sum = 0.0;
    sum += (double)reduce16_ps(c1l, c1h);
    sum += (double)reduce16_ps(c2l, c2h);
    for (; i < n; i++)
        sum += (double)(quant_bf16_to_f32(x[i]) * quant_bf16_to_f32(y[i]));
    return (float)sum;
}

static void dot_bf16(int64_t n, float *s, const void *w, const void *a) { *s = dot_bf16_vd(n, w, a); }

static inline void bf16_tiny_cols(int NC, int64_t n, const uint16_t *x, const uint8_t *a, size_t as, float *o,
                                  size_t os)
{
    __m256 lo[4], hi[4];
    const uint16_t *y[4];
#pragma GCC unroll 4
    for (int k = 0; k < NC; k++) {
        lo[k] = hi[k] = _mm256_setzero_ps();
        y[k] = (const uint16_t *)(a + (size_t)k * as);
    }
    for (int64_t i = 0; i < n; i += 32) {
        const bf16_pairs x0 = bf16_load(x + i), x1 = bf16_load(x + i + 16);
#pragma GCC unroll 4
        for (int k = 0; k < NC; k++) {
            lo[k] = dpbf16_8(lo[k], x0, bf16_load(y[k] + i));
            hi[k] = dpbf16_8(hi[k], x1, bf16_load(y[k] + i + 16));
        }
    }
#pragma GCC unroll 4
    for (int k = 0; k < NC; k++)
        o[(size_t)k * os] = reduce16_ps(lo[k], hi[k]);
}

MM_HALF(mm_bf16, 32, dot_bf16_vd, bf16_tiny_cols)

/* ---- activation quantization (byte-identical to quant_ref.c) ---- */

static inline float hmax_ps(__m256 v)
{
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
}

static void quant_q8_k(const float *x, void *dst, int64_t n)
{
    block_q8_K *y = dst;
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        __m256 m = _mm256_setzero_ps();
        for (int j = 0; j < QK_K; j += 8)
            m = _mm256_max_ps(m, _mm256_and_ps(_mm256_loadu_ps(x + j), absmask));
        const float amax = hmax_ps(m);
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
        const __m256 vs = _mm256_set1_ps(iscale), magic = _mm256_set1_ps(12582912.f);
        const __m256i mant = _mm256_set1_epi32(0x007fffff), off = _mm256_set1_epi32(0x00400000),
                      lim = _mm256_set1_epi32(127);
        for (int j = 0; j < QK_K; j += 16) {
            __m256i q[2];
            for (int k = 0; k < 2; k++) {
                const __m256 v = _mm256_add_ps(_mm256_mul_ps(vs, _mm256_loadu_ps(x + j + 8 * k)), magic);
                q[k] = _mm256_min_epi32(_mm256_sub_epi32(_mm256_and_si256(_mm256_castps_si256(v), mant), off), lim);
            }
            /* values are in [-128, 127]: saturating packs are exact */
            const __m256i p16 = _mm256_permute4x64_epi64(_mm256_packs_epi32(q[0], q[1]), 0xD8);
            const __m128i p8 = _mm_packs_epi16(_mm256_castsi256_si128(p16), _mm256_extracti128_si256(p16, 1));
            _mm_storeu_si128((__m128i *)(y[i].qs + j), p8);
            y[i].bsums[j / 16] = (int16_t)hsum_i32(_mm256_add_epi32(q[0], q[1]));
        }
        y[i].d = 1 / iscale;
    }
}

/* Q8_0 / Q8_1: amax per 32, d = amax/127 as half, q = round-half-even(x*127/amax) */
static void quant_q8_01(int type, const float *x, void *dst, int64_t n)
{
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    uint8_t *out = dst;
    const size_t bs = type == MS_TYPE_Q8_0 ? sizeof(block_q8_0) : sizeof(block_q8_1);
    for (int64_t i = 0; i < n / 32; i++, x += 32, out += bs) {
        __m256 v[4];
        __m256 m = _mm256_setzero_ps();
        for (int k = 0; k < 4; k++) {
            v[k] = _mm256_loadu_ps(x + 8 * k);
            m = _mm256_max_ps(m, _mm256_and_ps(v[k], absmask));
        }
        const float amax = hmax_ps(m);
        const float d = amax / 127.f;
        const uint16_t dh = quant_f32_to_f16(d);
        const float id = amax != 0.0f ? 127.f / amax : 0.0f;
        __m256i q[4];
        for (int k = 0; k < 4; k++)
            q[k] = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v[k], _mm256_set1_ps(id)),
                                                       _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
        const __m256i a01 = _mm256_packs_epi32(q[0], q[1]), a23 = _mm256_packs_epi32(q[2], q[3]);
        __m256i p8 = _mm256_packs_epi16(a01, a23);
        p8 = _mm256_permutevar8x32_epi32(p8, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        memcpy(out, &dh, 2);
        if (type == MS_TYPE_Q8_0) {
            _mm256_storeu_si256((__m256i *)(out + 2), p8);
        } else {
            _mm256_storeu_si256((__m256i *)(out + 4), p8);
            const int32_t sum = hsum_i32(_mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3])));
            const uint16_t sh = quant_f32_to_f16(d * (float)sum);
            memcpy(out + 2, &sh, 2);
        }
    }
}

static void quant_q8_0(const float *x, void *dst, int64_t n) { quant_q8_01(MS_TYPE_Q8_0, x, dst, n); }
static void quant_q8_1(const float *x, void *dst, int64_t n) { quant_q8_01(MS_TYPE_Q8_1, x, dst, n); }

/* ---- dequantization ----
 * Bit-identical to quant_dequantize_row: the integer codes are exact on any
 * route, and the floats are the scalar's products in its order - Q6_K
 * (d*sc)*q, Q4_K/Q5_K (d*sc)*q - dmin*m (a mul then a sub, never fused),
 * Q8_0 q*d.  A block's codes are decoded 32 at a time into a 256-byte
 * scratch and widened from memory (vpmovsxbd/vpmovzxbd with a load operand:
 * one shuffle per 8 floats), and the per-sub-block scales are stored as
 * floats and broadcast from memory (a load, not a shuffle); DQ_FROM_MEMORY
 * keeps the compiler from turning those into register extracts and vpermd.
 * Scales use F16C: it quiets a signaling NaN that quant_f16_to_f32 keeps,
 * but every scale goes through a product, which quiets it anyway. */

#define DQ_FROM_MEMORY(q, ds) __asm__("" : "+m"(q), "+m"(ds))

static inline __m256 dq_codes8_s(const int8_t *p)
{
    return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)p)));
}
static inline __m256 dq_codes8_u(const uint8_t *p)
{
    return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)p)));
}

static void dq_q6_k(const void *src, float *y, int64_t n)
{
    const block_q6_K *x = src;
    const __m256i m4 = _mm256_set1_epi8(0x0F), m30 = _mm256_set1_epi8(0x30), c32 = _mm256_set1_epi8(32);
    for (int64_t i = 0; i < n / QK_K; i++, y += QK_K) {
        int8_t q[QK_K];
        float ds[16];
        const __m256 d = _mm256_set1_ps(_cvtsh_ss(x[i].d));
        const __m128i sc = _mm_loadu_si128((const __m128i *)x[i].scales);
        _mm256_storeu_ps(ds, _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(sc))));
        _mm256_storeu_ps(ds + 8,
                         _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(sc, 8)))));
        for (int h = 0; h < 2; h++) {
            /* elements 32k.. of this half: the lows of ql[0,32), of
             * ql[32,64), the highs of each, with qh bit pairs 0-1, 2-3, 4-5,
             * 6-7 moved to bits 4-5 (16-bit shifts by at most 4: the bits
             * kept never cross a byte) */
            const __m256i l0 = _mm256_loadu_si256((const __m256i *)(x[i].ql + 64 * h));
            const __m256i l1 = _mm256_loadu_si256((const __m256i *)(x[i].ql + 64 * h + 32));
            const __m256i qh = _mm256_loadu_si256((const __m256i *)(x[i].qh + 32 * h));
            const __m256i v[4] = {
                _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_and_si256(_mm256_slli_epi16(qh, 4), m30)),
                _mm256_or_si256(_mm256_and_si256(l1, m4), _mm256_and_si256(_mm256_slli_epi16(qh, 2), m30)),
                _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4), _mm256_and_si256(qh, m30)),
                _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                                _mm256_and_si256(_mm256_srli_epi16(qh, 2), m30)),
            };
            for (int k = 0; k < 4; k++)
                _mm256_storeu_si256((__m256i *)(q + 128 * h + 32 * k), _mm256_sub_epi8(v[k], c32));
        }
        DQ_FROM_MEMORY(q, ds);
#pragma GCC unroll 32
        for (int j = 0; j < 32; j++)
            _mm256_storeu_ps(y + 8 * j, _mm256_mul_ps(_mm256_set1_ps(ds[j / 2]), dq_codes8_s(q + 8 * j)));
    }
}

/* Q4_K/Q5_K: dm[0,8) = d * sc, dm[8,16) = dmin * m (quant_ref.c's d1, m1) */
static inline void dq_k4_scales(uint16_t dh, uint16_t mh, const uint8_t *packed, float dm[16])
{
    uint32_t u[4];
    memcpy(u, packed, 12);
    /* get_scale_min_k4 for j = 0..7 at once: scales in bytes 0-7, mins 8-15 */
    u[3] = ((u[2] >> 4) & 0x0f0f0f0f) | (((u[1] >> 6) & 0x03030303) << 4);
    const uint32_t mins_lo = u[1] & 0x3f3f3f3f;
    u[1] = (u[2] & 0x0f0f0f0f) | (((u[0] >> 6) & 0x03030303) << 4);
    u[2] = mins_lo;
    u[0] &= 0x3f3f3f3f;
    const __m128i sm = _mm_loadu_si128((const __m128i *)u);
    const __m256 s = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(sm));
    const __m256 m = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(sm, 8)));
    _mm256_storeu_ps(dm, _mm256_mul_ps(_mm256_set1_ps(_cvtsh_ss(dh)), s));
    _mm256_storeu_ps(dm + 8, _mm256_mul_ps(_mm256_set1_ps(_cvtsh_ss(mh)), m));
}

/* 256 codes in element order (sub-block s = q[32s, 32s+32)) to y */
static inline void dq_k4_store(uint8_t q[QK_K], float dm[16], float *y)
{
    DQ_FROM_MEMORY(*(uint8_t(*)[QK_K])q, *(float(*)[16])dm);
#pragma GCC unroll 32
    for (int j = 0; j < 32; j++) {
        const __m256 p = _mm256_mul_ps(_mm256_set1_ps(dm[j / 4]), dq_codes8_u(q + 8 * j));
        _mm256_storeu_ps(y + 8 * j, _mm256_sub_ps(p, _mm256_set1_ps(dm[8 + j / 4])));
    }
}

static void dq_q4_k(const void *src, float *y, int64_t n)
{
    const block_q4_K *x = src;
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    for (int64_t i = 0; i < n / QK_K; i++, y += QK_K) {
        uint8_t q[QK_K];
        float dm[16];
        dq_k4_scales(x[i].d, x[i].dmin, x[i].scales, dm);
        for (int c = 0; c < 4; c++) {
            const __m256i v = _mm256_loadu_si256((const __m256i *)(x[i].qs + 32 * c));
            _mm256_storeu_si256((__m256i *)(q + 64 * c), _mm256_and_si256(v, m4));
            _mm256_storeu_si256((__m256i *)(q + 64 * c + 32), _mm256_and_si256(_mm256_srli_epi16(v, 4), m4));
        }
        dq_k4_store(q, dm, y);
    }
}

static void dq_q5_k(const void *src, float *y, int64_t n)
{
    const block_q5_K *x = src;
    const __m256i m4 = _mm256_set1_epi8(0x0F), c16 = _mm256_set1_epi8(16);
    for (int64_t i = 0; i < n / QK_K; i++, y += QK_K) {
        uint8_t q[QK_K];
        float dm[16];
        dq_k4_scales(x[i].d, x[i].dmin, x[i].scales, dm);
        const __m256i qh = _mm256_loadu_si256((const __m256i *)x[i].qh);
        for (int c = 0; c < 4; c++) {
            /* sub-block s takes bit s of qh[l] as +16 */
            const __m256i v = _mm256_loadu_si256((const __m256i *)(x[i].qs + 32 * c));
            const __m256i b0 = _mm256_set1_epi8((char)(1 << 2 * c));
            const __m256i b1 = _mm256_set1_epi8((char)(2 << 2 * c));
            const __m256i h0 = _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(qh, b0), b0), c16);
            const __m256i h1 = _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(qh, b1), b1), c16);
            _mm256_storeu_si256((__m256i *)(q + 64 * c), _mm256_or_si256(_mm256_and_si256(v, m4), h0));
            _mm256_storeu_si256((__m256i *)(q + 64 * c + 32),
                                _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(v, 4), m4), h1));
        }
        dq_k4_store(q, dm, y);
    }
}

static void dq_q8_0(const void *src, float *y, int64_t n)
{
    const block_q8_0 *x = src;
    for (int64_t i = 0; i < n / QK8_0; i++, y += QK8_0) {
        const __m256 d = _mm256_set1_ps(_cvtsh_ss(x[i].d));
        for (int j = 0; j < 4; j++)
            _mm256_storeu_ps(y + 8 * j, _mm256_mul_ps(dq_codes8_s(x[i].qs + 8 * j), d));
    }
}

/* 8 halves to floats with integers only, bit for bit quant_f16_to_f32 on
 * every input: vcvtph2ps would quiet signaling NaNs, which the scalar keeps.
 * Exponent rebias; inf/NaN get the rest of the rebias to 255; zeros and
 * subnormals are normalised by subtracting 2^-14 (exact). */
static inline __m256 dq_f16x8(__m128i hv)
{
    const __m256i h = _mm256_cvtepu16_epi32(hv), emask = _mm256_set1_epi32(0x0f800000);
    const __m256i rebias = _mm256_set1_epi32(112 << 23);
    __m256i o = _mm256_slli_epi32(_mm256_and_si256(h, _mm256_set1_epi32(0x7fff)), 13);
    const __m256i e = _mm256_and_si256(o, emask);
    o = _mm256_add_epi32(o, rebias);
    o = _mm256_add_epi32(o, _mm256_and_si256(_mm256_cmpeq_epi32(e, emask), rebias));
    const __m256i sub = _mm256_cmpeq_epi32(e, _mm256_setzero_si256());
    o = _mm256_add_epi32(o, _mm256_and_si256(sub, _mm256_set1_epi32(1 << 23)));
    /* a blend, not f - (sub ? 2^-14 : 0): f - 0 would quiet a signaling NaN */
    const __m256 f = _mm256_castsi256_ps(o);
    const __m256 fn = _mm256_blendv_ps(f, _mm256_sub_ps(f, _mm256_castsi256_ps(_mm256_set1_epi32(113 << 23))),
                                       _mm256_castsi256_ps(sub));
    const __m256i sign = _mm256_slli_epi32(_mm256_and_si256(h, _mm256_set1_epi32(0x8000)), 16);
    return _mm256_castsi256_ps(_mm256_or_si256(_mm256_castps_si256(fn), sign));
}

static void dq_f16(const void *src, float *y, int64_t n)
{
    const uint16_t *x = src;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, dq_f16x8(_mm_loadu_si128((const __m128i *)(x + i))));
    for (; i < n; i++)
        y[i] = quant_f16_to_f32(x[i]);
}

static void dq_bf16(const void *src, float *y, int64_t n)
{
    const uint16_t *x = src;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m128i h = _mm_loadu_si128((const __m128i *)(x + i));
        _mm256_storeu_si256((__m256i *)(y + i), _mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
    }
    for (; i < n; i++)
        y[i] = quant_bf16_to_f32(x[i]);
}

/* ---- table ---- */

#define MM(NAME)                                                                                   \
    static void mm_##NAME(int64_t n, const void *w, size_t ws, int64_t r0, int64_t r1,             \
                          const void *a, size_t as, int64_t nc, float *o, size_t os)               \
    {                                                                                              \
        kern_mul_mat_generic(dot_##NAME, NULL, n, w, ws, r0, r1, a, as, nc, o, os);                \
    }
MM(q5_k) MM(q6_k)
MM(q4_0) MM(iq4_nl)

/* ---- exp, softmax, SwiGLU (vmath.h's functions, eight lanes) ---- */

/* vmath_expf per lane: the same fused steps; ldexpf(j, n) as j * 2^(n/2)
 * * 2^(n - n/2): the first product is exact (|n| <= 192 keeps it normal),
 * so the second rounds once, as ldexpf does */
static inline __m256 expf8(__m256 x)
{
    const __m256 r = _mm256_set1_ps(0x1.8p23f);
    const __m256 z = _mm256_fmadd_ps(x, _mm256_set1_ps(0x1.715476p+0f), r);
    const __m256 n = _mm256_sub_ps(z, r);
    const __m256 b = _mm256_fnmadd_ps(n, _mm256_set1_ps(0x1.7f7d1cp-20f),
                                      _mm256_fnmadd_ps(n, _mm256_set1_ps(0x1.62e4p-1f), x));
    const __m256 u = _mm256_mul_ps(b, b);
    const __m256 j = _mm256_fmadd_ps(
        _mm256_fmadd_ps(_mm256_fmadd_ps(_mm256_set1_ps(0x1.0e4020p-7f), b, _mm256_set1_ps(0x1.573e2ep-5f)), u,
                        _mm256_fmadd_ps(_mm256_set1_ps(0x1.555e66p-3f), b, _mm256_set1_ps(0x1.fffdb6p-2f))),
        u, _mm256_fmadd_ps(_mm256_set1_ps(0x1.ffffecp-1f), b, _mm256_set1_ps(1.0f)));
    const __m256i ni = _mm256_cvtps_epi32(n), n1 = _mm256_srai_epi32(ni, 1), n2 = _mm256_sub_epi32(ni, n1);
    const __m256i bias = _mm256_set1_epi32(127);
    const __m256 p1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n1, bias), 23));
    const __m256 p2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n2, bias), 23));
    const __m256 res = _mm256_mul_ps(_mm256_mul_ps(j, p1), p2);
    const __m256 absn = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), n);
    const __m256 big = _mm256_cmp_ps(absn, _mm256_set1_ps(192.0f), _CMP_GT_OQ);
    if (!_mm256_movemask_ps(big))
        return res;
    const __m256 alt = _mm256_blendv_ps(_mm256_set1_ps(INFINITY), _mm256_setzero_ps(),
                                        _mm256_cmp_ps(n, _mm256_setzero_ps(), _CMP_LE_OQ));
    return _mm256_blendv_ps(res, alt, big);
}

static double softmax_exp(float *x, int64_t n, float max)
{
    const __m256 mx = _mm256_set1_ps(max);
    double sum = 0.0;
    for (int64_t i = 0; i < n; i += 16) {
        const int64_t k = n - i < 16 ? n - i : 16;
        float t[16] = {0};
        memcpy(t, x + i, (size_t)k * sizeof *t);
        __m256 lo = expf8(_mm256_sub_ps(_mm256_loadu_ps(t), mx));
        __m256 hi = expf8(_mm256_sub_ps(_mm256_loadu_ps(t + 8), mx));
        if (k < 16) { /* lanes past n count 0, as in vmath_softmax_exp */
            const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
            const __m256i kk = _mm256_set1_epi32((int)k);
            lo = _mm256_and_ps(lo, _mm256_castsi256_ps(_mm256_cmpgt_epi32(kk, idx)));
            hi = _mm256_and_ps(hi, _mm256_castsi256_ps(_mm256_cmpgt_epi32(kk, _mm256_add_epi32(idx, _mm256_set1_epi32(8)))));
        }
        _mm256_storeu_ps(t, lo);
        _mm256_storeu_ps(t + 8, hi);
        memcpy(x + i, t, (size_t)k * sizeof *t);
        /* halves, then pairs: the tree vmath_softmax_exp spells out */
        const __m256 h8 = _mm256_add_ps(lo, hi);
        const __m128 h4 = _mm_add_ps(_mm256_castps256_ps128(h8), _mm256_extractf128_ps(h8, 1));
        const __m128 h2 = _mm_add_ps(h4, _mm_movehl_ps(h4, h4));
        sum += (double)_mm_cvtss_f32(_mm_add_ss(h2, _mm_movehdup_ps(h2)));
    }
    return sum;
}

static void swiglu(float *y, const float *x, const float *g, int64_t n)
{
    const __m256 one = _mm256_set1_ps(1.0f), zero = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 v = _mm256_loadu_ps(x + i);
        const __m256 s = _mm256_div_ps(v, _mm256_add_ps(one, expf8(_mm256_sub_ps(zero, v))));
        _mm256_storeu_ps(y + i, _mm256_mul_ps(s, _mm256_loadu_ps(g + i)));
    }
    if (i < n)
        vmath_swiglu(y + i, x + i, g + i, n - i);
}

/* a product then a sum per lane, as the scalar loop (no FMA) */
static void axpy_f32(int64_t n, float a, const float *x, float *y)
{
    const __m256 va = _mm256_set1_ps(a);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_add_ps(_mm256_loadu_ps(y + i), _mm256_mul_ps(va, _mm256_loadu_ps(x + i))));
    for (; i < n; i++)
        y[i] += a * x[i];
}

static kern_table tab;
static pthread_once_t tab_once = PTHREAD_ONCE_INIT;

static void tab_init(void)
{
    tab = *kern_table_scalar();
    tab.isa = "avx2";
    tab.axpy_f32 = axpy_f32;
    tab.softmax_exp = softmax_exp;
    tab.swiglu = swiglu;
    tab.vec_dot[MS_TYPE_Q4_K] = dot_q4_k;
    tab.mul_mat[MS_TYPE_Q4_K] = mm_q4_k;
    tab.vec_dot[MS_TYPE_Q5_K] = dot_q5_k;
    tab.mul_mat[MS_TYPE_Q5_K] = mm_q5_k;
    tab.vec_dot[MS_TYPE_Q6_K] = dot_q6_k;
    tab.mul_mat[MS_TYPE_Q6_K] = mm_q6_k;
    tab.vec_dot[MS_TYPE_IQ1_S] = dot_iq1_s;
    tab.mul_mat[MS_TYPE_IQ1_S] = mm_iq1_s;
    tab.vec_dot[MS_TYPE_IQ2_XXS] = dot_iq2_xxs;
    tab.mul_mat[MS_TYPE_IQ2_XXS] = mm_iq2_xxs;
    tab.vec_dot[MS_TYPE_Q8_0] = dot_q8_0;
    tab.mul_mat[MS_TYPE_Q8_0] = mm_q8_0;
#define SET(T, NAME)                                                                               \
    tab.vec_dot[T] = dot_##NAME;                                                                   \
    tab.mul_mat[T] = mm_##NAME;
    SET(MS_TYPE_Q4_0, q4_0)
    SET(MS_TYPE_IQ4_NL, iq4_nl)
    SET(MS_TYPE_IQ4_XS, iq4_xs)
    SET(MS_TYPE_Q2_K, q2_k)
    SET(MS_TYPE_Q3_K, q3_k)
    SET(MS_TYPE_IQ2_XS, iq2_xs)
    SET(MS_TYPE_IQ2_S, iq2_s)
    SET(MS_TYPE_IQ3_XXS, iq3_xxs)
    SET(MS_TYPE_IQ3_S, iq3_s)
    SET(MS_TYPE_IQ1_M, iq1_m)
    SET(MS_TYPE_F32, f32)
    SET(MS_TYPE_F16, f16)
    SET(MS_TYPE_BF16, bf16)
#undef SET
    tab.quantize[MS_TYPE_Q8_K] = quant_q8_k;
    tab.quantize[MS_TYPE_Q8_0] = quant_q8_0;
    tab.quantize[MS_TYPE_Q8_1] = quant_q8_1;
    tab.dequant[MS_TYPE_Q6_K] = dq_q6_k;
    tab.dequant[MS_TYPE_Q4_K] = dq_q4_k;
    tab.dequant[MS_TYPE_Q5_K] = dq_q5_k;
    tab.dequant[MS_TYPE_Q8_0] = dq_q8_0;
    tab.dequant[MS_TYPE_F16] = dq_f16;
    tab.dequant[MS_TYPE_BF16] = dq_bf16;
}

const kern_table *kern_table_avx2(void)
{
    pthread_once(&tab_once, tab_init);
    return &tab;
}
