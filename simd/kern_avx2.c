/* kern_avx2.c - AVX2 dot products for the hot types (compiled with
 * -mavx2 -mfma -mf16c -mbmi2 only in this file; chosen at run time).
 *
 * Bit-exact with the scalar table (simd/quant_ref.c, kern_dispatch.c) by
 * construction: integer sums are exact in any order, so SIMD only has to put
 * each element in the same int32 lane as the scalar and repeat its float
 * operations in the same order, with explicit FMA intrinsics where it fuses
 * (the build has -ffp-contract=off, so a*b+c is never fused by accident).
 * Which order each kernel follows, and why:
 * - Q5_K, Q6_K, IQ1_S, IQ2_XXS: the reference engine's (ggml) x86 order,
 *   which the golden data comes from: per 256-block eight int32 lanes, lane
 *   (e & 31) >> 2 - exactly what maddubs+madd leave in a ymm when each
 *   32-element chunk is one ymm - then one FMA per lane with the block scale
 *   across blocks, then hsum_float_8 (hsum8_ps).  Q6_K keeps unsigned q and
 *   subtracts 32 * bsums * scales per lane; Q5_K adds its mins as a scalar
 *   FMA chain after the hsum; IQ1_S its delta chain times IQ1S_DELTA.
 * - Q4_K: the reference's repacked kernels (two FMA chains, isum*d*da and
 *   msum*dmin*da): vec_dot and columns past the last multiple of 4 in gemv
 *   order (one term per block), the other columns in gemm order (one term
 *   per 64-element pair of sub-blocks), four columns per decoded block.
 * - F32: vec_dot in ggml_vec_dot_f32's AVX-512 order (a 16-lane
 *   accumulator is two ymm here); mul_mat with >= 2 columns and n % 16 == 0
 *   in tinyBLAS order (one 16-lane accumulator per output), four columns per
 *   weight load.
 * - The other types: each block's float combination is the reference's
 *   expression in the same order; Q3_K keeps the reference's eight float
 *   lanes as one ymm.  F16/BF16 sum float products in four double lanes
 *   (equal within TOL_DOUBLE_SUM, tests/test_kernels.c).
 * Activation quantization (Q8_K, Q8_0, Q8_1) is byte-identical.
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
        const uint8_t *blk = (const uint8_t *)w + (size_t)b * 144;
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
                q4_k_decode(wr + (size_t)b * 144, &k);
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
        const uint8_t *blk = (const uint8_t *)w + (size_t)b * 176;
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
        int32_t sumi1 = 0;
        for (int ib = 0; ib < 8; ib++) {
            const uint16_t h = x[b].qh[ib];
            const uint8_t *qs = x[b].qs + 4 * ib;
            const __m256i g = _mm256_setr_epi64x((long long)iq1s_grid[qs[0] | ((h << 8) & 0x700)],
                                                 (long long)iq1s_grid[qs[1] | ((h << 5) & 0x700)],
                                                 (long long)iq1s_grid[qs[2] | ((h << 2) & 0x700)],
                                                 (long long)iq1s_grid[qs[3] | ((h >> 1) & 0x700)]);
            const __m256i yv = _mm256_loadu_si256((const __m256i *)(y[b].qs + 32 * ib));
            const int32_t ls = 2 * ((h >> 12) & 7) + 1;
            /* grid in {-1,0,1}: |g| as u8 times sign(g)*y */
            lane = _mm256_add_epi32(lane, dot_u8s8_sc(_mm256_sign_epi8(g, g), _mm256_sign_epi8(yv, g), ls));
            sumi1 += (y[b].bsums[2 * ib] + y[b].bsums[2 * ib + 1]) * (h & 0x8000 ? -1 : 1) * ls;
        }
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

/* ggml_vec_dot_iq2_xxs_q8_K: eight lanes, 1/8 after the sum. */
static void dot_iq2_xxs(int64_t n, float *s, const void *w, const void *a)
{
    pthread_once(&signs_once, signs_init);
    const block_iq2_xxs *x = w;
    const block_q8_K *y = a;
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = 0; b < n / QK_K; b++) {
        __m256i lane = _mm256_setzero_si256();
        for (int ib = 0; ib < 8; ib++) {
            uint32_t aux[2];
            memcpy(aux, x[b].qs + 4 * ib, 8);
            const uint8_t *a8 = (const uint8_t *)aux;
            const __m256i g = _mm256_setr_epi64x((long long)iq2xxs_grid[a8[0]], (long long)iq2xxs_grid[a8[1]],
                                                 (long long)iq2xxs_grid[a8[2]], (long long)iq2xxs_grid[a8[3]]);
            const __m256i sg = _mm256_setr_epi64x((long long)signs64[(aux[1] >> 0) & 127],
                                                  (long long)signs64[(aux[1] >> 7) & 127],
                                                  (long long)signs64[(aux[1] >> 14) & 127],
                                                  (long long)signs64[(aux[1] >> 21) & 127]);
            __m256i yv = _mm256_loadu_si256((const __m256i *)(y[b].qs + 32 * ib));
            /* y * (+1 | -1): sign_epi8 with (sg | 1) */
            yv = _mm256_sign_epi8(yv, _mm256_or_si256(sg, _mm256_set1_epi8(1)));
            lane = _mm256_add_epi32(lane, dot_u8s8_sc(g, yv, 2 * (int32_t)(aux[1] >> 28) + 1));
        }
        acc = lanes_fma_ps(acc, quant_f16_to_f32(x[b].d) * y[b].d, lane);
    }
    *s = 0.125f * hsum8_ps(acc);
}

/* ---- Q8_0 ---- */

static void dot_q8_0(int64_t n, float *s, const void *w, const void *a)
{
    const block_q8_0 *x = w, *y = a;
    float sumf = 0.0f;
    for (int64_t b = 0; b < n / 32; b++) {
        __m256i xv = _mm256_loadu_si256((const __m256i *)x[b].qs);
        __m256i yv = _mm256_loadu_si256((const __m256i *)y[b].qs);
        const int32_t sumi = hsum_i32(dot_s8s8(xv, yv));
        sumf += (float)sumi * (quant_f16_to_f32(x[b].d) * quant_f16_to_f32(y[b].d));
    }
    *s = sumf;
}

/* ---- helpers for the remaining types ---- */

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

/* y * (+1 | -1) where mask bytes are 0xFF for negative */
static inline __m256i apply_signs(__m256i y, __m256i neg)
{
    return _mm256_sign_epi8(y, _mm256_or_si256(neg, _mm256_set1_epi8(1)));
}

/* 32 products of u8 weights and s8 activations, summed in pairs (s16), then
 * scaled per 16 elements: lanes 0-3 (elements 0-15 of each 128-bit half...)
 * madd with a vector holding s0 for int16 lanes 0-7 and s1 for 8-15 */
static inline __m256i scale16(__m256i p16, int s0, int s1)
{
    return _mm256_madd_epi16(p16, _mm256_setr_epi16((short)s0, (short)s0, (short)s0, (short)s0, (short)s0,
                                                    (short)s0, (short)s0, (short)s0, (short)s1, (short)s1,
                                                    (short)s1, (short)s1, (short)s1, (short)s1, (short)s1,
                                                    (short)s1));
}

/* ---- Q4_0 / IQ4_NL (Q8_0 activations) ---- */

static void dot_q4_0(int64_t n, float *s, const void *w, const void *a)
{
    const block_q4_0 *x = w;
    const block_q8_0 *y = a;
    const __m128i m4 = _mm_set1_epi8(0x0F);
    float sumf = 0.0f;
    for (int64_t b = 0; b < n / 32; b++) {
        const __m128i q = _mm_loadu_si128((const __m128i *)x[b].qs);
        __m256i v = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(q, 4), m4), _mm_and_si128(q, m4));
        v = _mm256_sub_epi8(v, _mm256_set1_epi8(8));
        const int32_t sumi = hsum_i32(dot_s8s8(v, _mm256_loadu_si256((const __m256i *)y[b].qs)));
        sumf += (float)sumi * quant_f16_to_f32(x[b].d) * quant_f16_to_f32(y[b].d);
    }
    *s = sumf;
}

static void dot_iq4_nl(int64_t n, float *s, const void *w, const void *a)
{
    const block_iq4_nl *x = w;
    const block_q8_0 *y = a;
    const __m128i m4 = _mm_set1_epi8(0x0F);
    const __m256i kv = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)kvalues_iq4nl));
    float sumf = 0.0f;
    for (int64_t b = 0; b < n / 32; b++) {
        const __m128i q = _mm_loadu_si128((const __m128i *)x[b].qs);
        const __m256i idx = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(q, 4), m4), _mm_and_si128(q, m4));
        const __m256i v = _mm256_shuffle_epi8(kv, idx);
        const int32_t sumi = hsum_i32(dot_s8s8(v, _mm256_loadu_si256((const __m256i *)y[b].qs)));
        const float d = quant_f16_to_f32(y[b].d) * quant_f16_to_f32(x[b].d);
        sumf += d * (float)sumi;
    }
    *s = sumf;
}

/* ---- IQ4_XS: one float term per 32 ---- */

static void dot_iq4_xs(int64_t n, float *s, const void *w, const void *a)
{
    const block_iq4_xs *x = w;
    const block_q8_K *y = a;
    const __m128i m4 = _mm_set1_epi8(0x0F);
    const __m256i kv = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)kvalues_iq4nl));
    float sumf = 0.0f;
    for (int64_t b = 0; b < n / QK_K; b++) {
        const float d4d8 = quant_f16_to_f32(x[b].d) * y[b].d;
        for (int ib = 0; ib < 8; ib++) {
            const int ls = ((x[b].scales_l[ib / 2] >> (4 * (ib % 2))) & 0xf) | (((x[b].scales_h >> (2 * ib)) & 3) << 4);
            const float dl = d4d8 * (float)(ls - 32);
            const __m128i q = _mm_loadu_si128((const __m128i *)(x[b].qs + 16 * ib));
            const __m256i idx = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(q, 4), m4), _mm_and_si128(q, m4));
            const __m256i v = _mm256_shuffle_epi8(kv, idx);
            const int32_t sumi = hsum_i32(dot_s8s8(v, _mm256_loadu_si256((const __m256i *)(y[b].qs + 32 * ib))));
            sumf += dl * (float)sumi;
        }
    }
    *s = sumf;
}

/* ---- Q2_K ---- */

static void dot_q2_k(int64_t n, float *s, const void *w, const void *a)
{
    const block_q2_K *x = w;
    const block_q8_K *y = a;
    const __m256i m3 = _mm256_set1_epi8(3), m4 = _mm256_set1_epi8(0x0F);
    float sumf = 0.0f;
    for (int64_t b = 0; b < n / QK_K; b++) {
        const __m128i sc8 = _mm_loadu_si128((const __m128i *)x[b].scales);
        /* summs = sum_j bsums[j] * (sc[j] >> 4) */
        const __m256i mins = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(sc8, 4), _mm256_castsi256_si128(m4)));
        const int32_t summs = hsum_i32(_mm256_madd_epi16(mins, _mm256_loadu_si256((const __m256i *)y[b].bsums)));
        const float dall = y[b].d * quant_f16_to_f32(x[b].d), dmin = y[b].d * quant_f16_to_f32(x[b].dmin);
        __m256i acc = _mm256_setzero_si256();
        for (int half = 0; half < 2; half++) {
            const __m256i q = _mm256_loadu_si256((const __m256i *)(x[b].qs + 32 * half));
            for (int pass = 0; pass < 4; pass++) {
                const int g = 8 * half + 2 * pass;
                const __m256i v = _mm256_and_si256(_mm256_srli_epi16(q, 2 * pass), m3);
                const __m256i yv = _mm256_loadu_si256((const __m256i *)(y[b].qs + 16 * g));
                acc = _mm256_add_epi32(acc, scale16(_mm256_maddubs_epi16(v, yv), x[b].scales[g] & 0xF,
                                                    x[b].scales[g + 1] & 0xF));
            }
        }
        const int32_t isum = hsum_i32(acc);
        sumf += dall * (float)isum - dmin * (float)summs;
    }
    *s = sumf;
}

/* ---- Q3_K: the reference's eight float lanes (element index mod 8) ---- */

static void dot_q3_k(int64_t n, float *s, const void *w, const void *a)
{
    const block_q3_K *x = w;
    const block_q8_K *y = a;
    const __m256i m3 = _mm256_set1_epi8(3);
    __m256 sums = _mm256_setzero_ps();
    for (int64_t b = 0; b < n / QK_K; b++) {
        /* sixteen signed 6-bit scales */
        uint32_t aux[4];
        memcpy(aux, x[b].scales, 12);
        const uint32_t tmp = aux[2];
        aux[2] = ((aux[0] >> 4) & 0x0f0f0f0f) | (((tmp >> 4) & 0x03030303) << 4);
        aux[3] = ((aux[1] >> 4) & 0x0f0f0f0f) | (((tmp >> 6) & 0x03030303) << 4);
        aux[0] = (aux[0] & 0x0f0f0f0f) | (((tmp >> 0) & 0x03030303) << 4);
        aux[1] = (aux[1] & 0x0f0f0f0f) | (((tmp >> 2) & 0x03030303) << 4);
        int8_t sc[16];
        memcpy(sc, aux, 16);
        for (int j = 0; j < 16; j++)
            sc[j] = (int8_t)(sc[j] - 32);
        const __m256i hm = _mm256_loadu_si256((const __m256i *)x[b].hmask);
        __m256i lane = _mm256_setzero_si256();
        for (int half = 0; half < 2; half++) {
            const __m256i q = _mm256_loadu_si256((const __m256i *)(x[b].qs + 32 * half));
            for (int pass = 0; pass < 4; pass++) {
                const int e0 = 128 * half + 32 * pass;
                __m256i v = _mm256_and_si256(_mm256_srli_epi16(q, 2 * pass), m3);
                /* minus 4 where the high bit (4*half+pass) of hmask is clear */
                const __m256i hb = _mm256_set1_epi8((char)(1u << (4 * half + pass)));
                const __m256i clear = _mm256_cmpeq_epi8(_mm256_and_si256(hm, hb), _mm256_setzero_si256());
                v = _mm256_sub_epi8(v, _mm256_and_si256(clear, _mm256_set1_epi8(4)));
                const __m256i yv = _mm256_loadu_si256((const __m256i *)(y[b].qs + e0));
                /* q*q8 and sc*(q*q8) fit int16 (|.| <= 32*4*128) */
                for (int k = 0; k < 2; k++) {
                    const __m128i v8 = k ? _mm256_extracti128_si256(v, 1) : _mm256_castsi256_si128(v);
                    const __m128i y8 = k ? _mm256_extracti128_si256(yv, 1) : _mm256_castsi256_si128(yv);
                    __m256i p = _mm256_mullo_epi16(_mm256_cvtepi8_epi16(v8), _mm256_cvtepi8_epi16(y8));
                    p = _mm256_mullo_epi16(p, _mm256_set1_epi16(sc[(e0 + 16 * k) / 16]));
                    /* int16 lanes 0-7 and 8-15 are elements with index mod 8 = lane */
                    lane = _mm256_add_epi32(lane, _mm256_cvtepi16_epi32(_mm256_castsi256_si128(p)));
                    lane = _mm256_add_epi32(lane, _mm256_cvtepi16_epi32(_mm256_extracti128_si256(p, 1)));
                }
            }
        }
        const __m256 d = _mm256_set1_ps(quant_f16_to_f32(x[b].d) * y[b].d);
        sums = _mm256_add_ps(sums, _mm256_mul_ps(d, _mm256_cvtepi32_ps(lane)));
    }
    float l[8];
    _mm256_storeu_ps(l, sums);
    float sumf = 0.0f;
    for (int i = 0; i < 8; i++)
        sumf += l[i];
    *s = sumf;
}

/* ---- IQ2_XS / IQ2_S: two 4-bit scales per 32 ---- */

static void dot_iq2_xs_s(int type, int64_t n, float *s, const void *w, const void *a)
{
    pthread_once(&signs_once, signs_init);
    const block_q8_K *y = a;
    const int ts = type == MS_TYPE_IQ2_XS ? 74 : 82;
    float sumf = 0.0f;
    for (int64_t b = 0; b < n / QK_K; b++) {
        const uint8_t *blk = (const uint8_t *)w + (size_t)b * (size_t)ts;
        const block_iq2_xs *x2 = (const block_iq2_xs *)blk;
        const block_iq2_s *xs = (const block_iq2_s *)blk;
        uint16_t dh;
        memcpy(&dh, blk, 2);
        const float d = quant_f16_to_f32(dh) * y[b].d;
        __m256i acc = _mm256_setzero_si256();
        for (int ib = 0; ib < 8; ib++) {
            __m256i g, neg;
            uint8_t scb;
            if (type == MS_TYPE_IQ2_XS) {
                uint16_t q[4];
                memcpy(q, x2->qs + 4 * ib, 8);
                g = _mm256_setr_epi64x((long long)iq2xs_grid[q[0] & 511], (long long)iq2xs_grid[q[1] & 511],
                                       (long long)iq2xs_grid[q[2] & 511], (long long)iq2xs_grid[q[3] & 511]);
                neg = _mm256_setr_epi64x((long long)signs64[q[0] >> 9], (long long)signs64[q[1] >> 9],
                                         (long long)signs64[q[2] >> 9], (long long)signs64[q[3] >> 9]);
                scb = x2->scales[ib];
            } else {
                const uint8_t *qs = xs->qs + 4 * ib, h = xs->qh[ib];
                g = _mm256_setr_epi64x((long long)iq2s_grid[qs[0] | ((h << 8) & 0x300)],
                                       (long long)iq2s_grid[qs[1] | ((h << 6) & 0x300)],
                                       (long long)iq2s_grid[qs[2] | ((h << 4) & 0x300)],
                                       (long long)iq2s_grid[qs[3] | ((h << 2) & 0x300)]);
                uint32_t sg;
                memcpy(&sg, xs->qs + QK_K / 8 + 4 * ib, 4);
                neg = bits_to_bytes(sg);
                scb = xs->scales[ib];
            }
            const __m256i yv = apply_signs(_mm256_loadu_si256((const __m256i *)(y[b].qs + 32 * ib)), neg);
            acc = _mm256_add_epi32(acc, scale16(_mm256_maddubs_epi16(g, yv), 2 * (scb & 0xf) + 1, 2 * (scb >> 4) + 1));
        }
        sumf += d * (float)hsum_i32(acc);
    }
    *s = 0.125f * sumf;
}

static void dot_iq2_xs(int64_t n, float *s, const void *w, const void *a) { dot_iq2_xs_s(MS_TYPE_IQ2_XS, n, s, w, a); }
static void dot_iq2_s(int64_t n, float *s, const void *w, const void *a) { dot_iq2_xs_s(MS_TYPE_IQ2_S, n, s, w, a); }

/* ---- IQ3_XXS / IQ3_S ---- */

static void dot_iq3_xxs(int64_t n, float *s, const void *w, const void *a)
{
    pthread_once(&signs_once, signs_init);
    const block_iq3_xxs *x = w;
    const block_q8_K *y = a;
    float sumf = 0.0f;
    for (int64_t b = 0; b < n / QK_K; b++) {
        const float d = quant_f16_to_f32(x[b].d) * y[b].d;
        __m256i acc = _mm256_setzero_si256();
        for (int ib = 0; ib < 8; ib++) {
            uint32_t aux;
            memcpy(&aux, x[b].qs + QK_K / 4 + 4 * ib, 4);
            const uint8_t *q = x[b].qs + 8 * ib;
            const __m256i g = _mm256_setr_epi32((int)iq3xxs_grid[q[0]], (int)iq3xxs_grid[q[1]], (int)iq3xxs_grid[q[2]],
                                                (int)iq3xxs_grid[q[3]], (int)iq3xxs_grid[q[4]], (int)iq3xxs_grid[q[5]],
                                                (int)iq3xxs_grid[q[6]], (int)iq3xxs_grid[q[7]]);
            const __m256i neg = _mm256_setr_epi64x((long long)signs64[aux & 127], (long long)signs64[(aux >> 7) & 127],
                                                   (long long)signs64[(aux >> 14) & 127],
                                                   (long long)signs64[(aux >> 21) & 127]);
            const __m256i yv = apply_signs(_mm256_loadu_si256((const __m256i *)(y[b].qs + 32 * ib)), neg);
            const int ls = 2 * (int)(aux >> 28) + 1;
            acc = _mm256_add_epi32(acc, scale16(_mm256_maddubs_epi16(g, yv), ls, ls));
        }
        sumf += d * (float)hsum_i32(acc);
    }
    *s = 0.25f * sumf;
}

static void dot_iq3_s(int64_t n, float *s, const void *w, const void *a)
{
    const block_iq3_s *x = w;
    const block_q8_K *y = a;
    float sumf = 0.0f;
    for (int64_t b = 0; b < n / QK_K; b++) {
        const float d = quant_f16_to_f32(x[b].d) * y[b].d;
        __m256i acc = _mm256_setzero_si256();
        for (int ib = 0; ib < 8; ib++) {
            const uint8_t *q = x[b].qs + 8 * ib;
            const int h = x[b].qh[ib];
            int32_t gi[8];
            for (int j = 0; j < 8; j++)
                gi[j] = (int32_t)iq3s_grid[q[j] | (((h >> j) & 1) << 8)];
            const __m256i g = _mm256_loadu_si256((const __m256i *)gi);
            uint32_t sg;
            memcpy(&sg, x[b].signs + 4 * ib, 4);
            const __m256i yv = apply_signs(_mm256_loadu_si256((const __m256i *)(y[b].qs + 32 * ib)), bits_to_bytes(sg));
            const int ls = 2 * ((x[b].scales[ib / 2] >> (4 * (ib % 2))) & 0xf) + 1;
            acc = _mm256_add_epi32(acc, scale16(_mm256_maddubs_epi16(g, yv), ls, ls));
        }
        sumf += d * (float)hsum_i32(acc);
    }
    *s = sumf;
}

/* ---- IQ1_M ---- */

static void dot_iq1_m(int64_t n, float *s, const void *w, const void *a)
{
    const block_iq1_m *x = w;
    const block_q8_K *y = a;
    float sumf = 0.0f;
    for (int64_t b = 0; b < n / QK_K; b++) {
        uint16_t sc[4];
        memcpy(sc, x[b].scales, 8);
        const uint16_t dbits = (uint16_t)((sc[0] >> 12) | ((sc[1] >> 8) & 0x00f0) | ((sc[2] >> 4) & 0x0f00) | (sc[3] & 0xf000));
        const uint8_t *qs = x[b].qs, *qh = x[b].qh;
        __m256i acc1 = _mm256_setzero_si256(), acc2 = _mm256_setzero_si256();
        for (int ib = 0; ib < 8; ib++, qs += 4, qh += 2) {
            const __m256i g = _mm256_setr_epi64x((long long)iq1s_grid[qs[0] | ((qh[0] << 8) & 0x700)],
                                                 (long long)iq1s_grid[qs[1] | ((qh[0] << 4) & 0x700)],
                                                 (long long)iq1s_grid[qs[2] | ((qh[1] << 8) & 0x700)],
                                                 (long long)iq1s_grid[qs[3] | ((qh[1] << 4) & 0x700)]);
            /* delta sign per group of 8: -1 where the bit is set */
            const __m256i dl = _mm256_setr_epi64x(qh[0] & 0x08 ? -1 : 0, qh[0] & 0x80 ? -1 : 0,
                                                  qh[1] & 0x08 ? -1 : 0, qh[1] & 0x80 ? -1 : 0);
            const __m256i yv = _mm256_loadu_si256((const __m256i *)(y[b].qs + 32 * ib));
            const int ls1 = 2 * ((sc[ib / 2] >> (6 * (ib % 2))) & 7) + 1;
            const int ls2 = 2 * ((sc[ib / 2] >> (6 * (ib % 2) + 3)) & 7) + 1;
            /* grid in {-1,0,1}: |g| as u8 times sign(g)*y */
            const __m256i p1 = _mm256_maddubs_epi16(_mm256_sign_epi8(g, g), _mm256_sign_epi8(yv, g));
            const __m256i p2 = _mm256_maddubs_epi16(_mm256_set1_epi8(1), apply_signs(yv, dl));
            acc1 = _mm256_add_epi32(acc1, scale16(p1, ls1, ls2));
            acc2 = _mm256_add_epi32(acc2, scale16(p2, ls1, ls2));
        }
        const float d = quant_f16_to_f32(dbits);
        sumf += d * y[b].d * ((float)hsum_i32(acc1) + IQ1M_DELTA * (float)hsum_i32(acc2));
    }
    *s = sumf;
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
 * shapes: vec_dot per column (quant_mul_mat_f32_ref) */
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

/* ---- F16 / BF16: float products accumulated in double ----
 * The reference sums (double)(x*y) in element order; here four double lanes,
 * so the result may differ from it in the last float ulp (test tolerance
 * TOL_DOUBLE_SUM in tests/test_kernels.c). */

static inline __m256d acc_pd(__m256d acc, __m256 p)
{
    acc = _mm256_add_pd(acc, _mm256_cvtps_pd(_mm256_castps256_ps128(p)));
    return _mm256_add_pd(acc, _mm256_cvtps_pd(_mm256_extractf128_ps(p, 1)));
}

static inline float finish_pd(__m256d acc, double tail)
{
    double l[4];
    _mm256_storeu_pd(l, acc);
    return (float)(((l[0] + l[1]) + (l[2] + l[3])) + tail);
}

static void dot_f16(int64_t n, float *s, const void *w, const void *a)
{
    const uint16_t *x = w, *y = a;
    __m256d acc = _mm256_setzero_pd();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 xv = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(x + i)));
        const __m256 yv = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(y + i)));
        acc = acc_pd(acc, _mm256_mul_ps(xv, yv));
    }
    double tail = 0.0;
    for (; i < n; i++)
        tail += (double)(quant_f16_to_f32(x[i]) * quant_f16_to_f32(y[i]));
    *s = finish_pd(acc, tail);
}

static inline __m256 bf16x8(const uint16_t *p)
{
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p)), 16));
}

static void dot_bf16(int64_t n, float *s, const void *w, const void *a)
{
    const uint16_t *x = w, *y = a;
    __m256d acc = _mm256_setzero_pd();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        acc = acc_pd(acc, _mm256_mul_ps(bf16x8(x + i), bf16x8(y + i)));
    double tail = 0.0;
    for (; i < n; i++)
        tail += (double)(quant_bf16_to_f32(x[i]) * quant_bf16_to_f32(y[i]));
    *s = finish_pd(acc, tail);
}

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
    const size_t bs = type == MS_TYPE_Q8_0 ? 34 : 36;
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

/* ---- table ---- */

#define MM(NAME)                                                                                   \
    static void mm_##NAME(int64_t n, const void *w, size_t ws, int64_t r0, int64_t r1,             \
                          const void *a, size_t as, int64_t nc, float *o, size_t os)               \
    {                                                                                              \
        kern_mul_mat_generic(dot_##NAME, NULL, n, w, ws, r0, r1, a, as, nc, o, os);                \
    }
MM(q5_k) MM(q6_k) MM(iq1_s) MM(iq2_xxs) MM(q8_0)
MM(q4_0) MM(iq4_nl) MM(iq4_xs) MM(q2_k) MM(q3_k) MM(iq2_xs) MM(iq2_s) MM(iq3_xxs) MM(iq3_s)
MM(iq1_m) MM(f16) MM(bf16)

static kern_table tab;
static pthread_once_t tab_once = PTHREAD_ONCE_INIT;

static void tab_init(void)
{
    tab = *kern_table_scalar();
    tab.isa = "avx2";
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
}

const kern_table *kern_table_avx2(void)
{
    pthread_once(&tab_once, tab_init);
    return &tab;
}
