/* kern_avx2.c - AVX2 dot products for the hot types (compiled with
 * -mavx2 -mfma -mf16c -mbmi2 only in this file; chosen at run time).
 *
 * Bit-exact with the scalar reference by construction: SIMD computes only
 * the integer sums of a block (exact in any order), and each block's float
 * combination is the reference's expression, evaluated in the same order
 * (simd/quant_ref.c).  Types not listed keep their scalar entries.
 * Owns: kern_table_avx2 only. */
#include <immintrin.h>
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

static void dot_q45_k(int type, int64_t n, float *s, const void *w, const void *a)
{
    const block_q8_K *y = a;
    const int ts = type == MS_TYPE_Q4_K ? 144 : 176;
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    float sumf = 0.0f;
    for (int64_t b = 0; b < n / QK_K; b++) {
        const uint8_t *blk = (const uint8_t *)w + (size_t)b * (size_t)ts;
        uint16_t dh, mh;
        memcpy(&dh, blk, 2);
        memcpy(&mh, blk + 2, 2);
        const uint8_t *scales = blk + 4;
        const uint8_t *qs = type == MS_TYPE_Q4_K ? blk + 16 : blk + 48;
        __m256i hb = type == MS_TYPE_Q5_K ? _mm256_loadu_si256((const __m256i *)(blk + 16))
                                          : _mm256_setzero_si256();
        __m256i acc = _mm256_setzero_si256();
        int32_t msum = 0;
        for (int c = 0; c < 4; c++) {
            uint8_t sc0, m0, sc1, m1;
            scale_min_k4(2 * c, scales, &sc0, &m0);
            scale_min_k4(2 * c + 1, scales, &sc1, &m1);
            __m256i q = _mm256_loadu_si256((const __m256i *)(qs + 32 * c));
            __m256i lo = _mm256_and_si256(q, m4), hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
            if (type == MS_TYPE_Q5_K) {
                /* bit 2c of qh[l] -> +16 for the low half, bit 2c+1 for the high */
                __m256i bl = _mm256_and_si256(_mm256_srli_epi16(hb, 2 * c), _mm256_set1_epi8(1));
                __m256i bh = _mm256_and_si256(_mm256_srli_epi16(hb, 2 * c + 1), _mm256_set1_epi8(1));
                lo = _mm256_or_si256(lo, _mm256_slli_epi16(bl, 4));
                hi = _mm256_or_si256(hi, _mm256_slli_epi16(bh, 4));
            }
            __m256i y0 = _mm256_loadu_si256((const __m256i *)(y[b].qs + 64 * c));
            __m256i y1 = _mm256_loadu_si256((const __m256i *)(y[b].qs + 64 * c + 32));
            acc = _mm256_add_epi32(acc, _mm256_mullo_epi32(dot_u8s8(lo, y0), _mm256_set1_epi32(sc0)));
            acc = _mm256_add_epi32(acc, _mm256_mullo_epi32(dot_u8s8(hi, y1), _mm256_set1_epi32(sc1)));
            msum += m0 * (y[b].bsums[4 * c] + y[b].bsums[4 * c + 1]) +
                    m1 * (y[b].bsums[4 * c + 2] + y[b].bsums[4 * c + 3]);
        }
        const int32_t isum = hsum_i32(acc);
        const float d = y[b].d * quant_f16_to_f32(dh), dmin = y[b].d * quant_f16_to_f32(mh);
        sumf += d * (float)isum - dmin * (float)msum;
    }
    *s = sumf;
}

static void dot_q4_k(int64_t n, float *s, const void *w, const void *a) { dot_q45_k(MS_TYPE_Q4_K, n, s, w, a); }
static void dot_q5_k(int64_t n, float *s, const void *w, const void *a) { dot_q45_k(MS_TYPE_Q5_K, n, s, w, a); }

/* ---- Q6_K ---- */

static void dot_q6_k(int64_t n, float *s, const void *w, const void *a)
{
    const block_q6_K *x = w;
    const block_q8_K *y = a;
    const __m256i m4 = _mm256_set1_epi8(0x0F), m3 = _mm256_set1_epi8(3);
    float sumf = 0.0f;
    for (int64_t b = 0; b < n / QK_K; b++) {
        __m256i acc = _mm256_setzero_si256();
        int32_t corr = 0;
        for (int half = 0; half < 2; half++) {
            const uint8_t *ql = x[b].ql + 64 * half, *qh = x[b].qh + 32 * half;
            const int8_t *sc = x[b].scales + 8 * half;
            const int8_t *q8 = y[b].qs + 128 * half;
            __m256i l0 = _mm256_loadu_si256((const __m256i *)ql);
            __m256i l1 = _mm256_loadu_si256((const __m256i *)(ql + 32));
            __m256i h = _mm256_loadu_si256((const __m256i *)qh);
            __m256i q[4];
            q[0] = _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_slli_epi16(_mm256_and_si256(h, m3), 4));
            q[1] = _mm256_or_si256(_mm256_and_si256(l1, m4),
                                   _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 2), m3), 4));
            q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4),
                                   _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 4), m3), 4));
            q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                                   _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 6), m3), 4));
            for (int k = 0; k < 4; k++) {
                __m256i yv = _mm256_loadu_si256((const __m256i *)(q8 + 32 * k));
                /* per 16: products in s16 pairs, then x scale into s32 */
                __m256i p = _mm256_maddubs_epi16(q[k], yv);
                __m256i scv = _mm256_setr_epi16(sc[2 * k], sc[2 * k], sc[2 * k], sc[2 * k], sc[2 * k],
                                                sc[2 * k], sc[2 * k], sc[2 * k], sc[2 * k + 1],
                                                sc[2 * k + 1], sc[2 * k + 1], sc[2 * k + 1],
                                                sc[2 * k + 1], sc[2 * k + 1], sc[2 * k + 1], sc[2 * k + 1]);
                acc = _mm256_add_epi32(acc, _mm256_madd_epi16(p, scv));
                /* the -32 offset: sum of q8 over each 16 is bsums */
                const int g = 8 * half + 2 * k; /* 16-groups of this 32 */
                corr += 32 * (sc[2 * k] * y[b].bsums[g] + sc[2 * k + 1] * y[b].bsums[g + 1]);
            }
        }
        const int32_t isum = hsum_i32(acc) - corr;
        sumf += y[b].d * quant_f16_to_f32(x[b].d) * (float)isum;
    }
    *s = sumf;
}

/* ---- IQ1_S ---- */

static void dot_iq1_s(int64_t n, float *s, const void *w, const void *a)
{
    const block_iq1_s *x = w;
    const block_q8_K *y = a;
    float sumf = 0.0f;
    for (int64_t b = 0; b < n / QK_K; b++) {
        int32_t sumi = 0, sumi1 = 0;
        for (int ib = 0; ib < 8; ib++) {
            const uint16_t h = x[b].qh[ib];
            const uint8_t *qs = x[b].qs + 4 * ib;
            __m256i g = _mm256_setr_epi64x((long long)iq1s_grid[qs[0] | ((h << 8) & 0x700)],
                                           (long long)iq1s_grid[qs[1] | ((h << 5) & 0x700)],
                                           (long long)iq1s_grid[qs[2] | ((h << 2) & 0x700)],
                                           (long long)iq1s_grid[qs[3] | ((h >> 1) & 0x700)]);
            __m256i yv = _mm256_loadu_si256((const __m256i *)(y[b].qs + 32 * ib));
            const int32_t lsum = hsum_i32(dot_s8s8(g, yv));
            const int32_t ls = 2 * ((h >> 12) & 7) + 1;
            sumi += ls * lsum;
            sumi1 += ls * (h & 0x8000 ? -1 : 1) * (y[b].bsums[2 * ib] + y[b].bsums[2 * ib + 1]);
        }
        sumf += quant_f16_to_f32(x[b].d) * y[b].d * ((float)sumi + IQ1S_DELTA * (float)sumi1);
    }
    *s = sumf;
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

static void dot_iq2_xxs(int64_t n, float *s, const void *w, const void *a)
{
    pthread_once(&signs_once, signs_init);
    const block_iq2_xxs *x = w;
    const block_q8_K *y = a;
    float sumf = 0.0f;
    for (int64_t b = 0; b < n / QK_K; b++) {
        const float d = quant_f16_to_f32(x[b].d) * y[b].d;
        int32_t bsum = 0;
        for (int ib = 0; ib < 8; ib++) {
            uint32_t aux[2];
            memcpy(aux, x[b].qs + 4 * ib, 8);
            const uint8_t *a8 = (const uint8_t *)aux;
            __m256i g = _mm256_setr_epi64x((long long)iq2xxs_grid[a8[0]], (long long)iq2xxs_grid[a8[1]],
                                           (long long)iq2xxs_grid[a8[2]], (long long)iq2xxs_grid[a8[3]]);
            __m256i sg = _mm256_setr_epi64x((long long)signs64[(aux[1] >> 0) & 127],
                                            (long long)signs64[(aux[1] >> 7) & 127],
                                            (long long)signs64[(aux[1] >> 14) & 127],
                                            (long long)signs64[(aux[1] >> 21) & 127]);
            __m256i yv = _mm256_loadu_si256((const __m256i *)(y[b].qs + 32 * ib));
            /* y * (+1 | -1): sign_epi8 with (sg | 1) */
            yv = _mm256_sign_epi8(yv, _mm256_or_si256(sg, _mm256_set1_epi8(1)));
            const int32_t sumi = hsum_i32(dot_u8s8(g, yv));
            bsum += sumi * (2 * (int32_t)(aux[1] >> 28) + 1);
        }
        sumf += d * (float)bsum;
    }
    *s = 0.125f * sumf;
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

/* ---- table ---- */

#define MM(NAME)                                                                                   \
    static void mm_##NAME(int64_t n, const void *w, size_t ws, int64_t r0, int64_t r1,             \
                          const void *a, size_t as, int64_t nc, float *o, size_t os)               \
    {                                                                                              \
        kern_mul_mat_generic(dot_##NAME, NULL, n, w, ws, r0, r1, a, as, nc, o, os);                \
    }
MM(q4_k) MM(q5_k) MM(q6_k) MM(iq1_s) MM(iq2_xxs) MM(q8_0)

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
}

const kern_table *kern_table_avx2(void)
{
    pthread_once(&tab_once, tab_init);
    return &tab;
}
