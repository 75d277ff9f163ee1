/* kern_repack_avx512.c - AVX-512 (BW + VNNI + VBMI) products over the
 * repacked IQ1_S layout (simd/repack.h), compiled with the AVX-512 flags and
 * called only through repack_mul_mat when the avx512 table is in use.
 *
 * Owns: repack_avx512 (IQ1_S, IQ1_M).  Bit-exact with the scalar reference
 * (simd/quant_ref.c, ggml_vec_dot_iq1_s/_m_q8_K's order): per row and block
 * the eight reference lanes (lane m = elements with (e & 31) >> 2 == m) are
 * exact int32 sums, then lane = fma(d, lane, lane) across blocks, the
 * hsum_float_8 tree at the end; IQ1_S plus IQ1S_DELTA * the fma chain of the
 * delta sums, IQ1_M plus IQ1M_DELTA * the hsum of eight more lanes (delta).
 *
 * How (16 rows in the 16 int32 lanes of a zmm, one row per lane):
 *  - a 64-byte code vector (dword k of the 16 rows) holds five tuples per
 *    row as base-3 digits, byte v = u + 81 * d4: two unsigned compares give
 *    d4 (tuple 5k+4) and u, and digit j < 4 of u is one vpermi2b over a
 *    128-entry table, which gives the 16 rows' {0,1,2} = g+1 values of
 *    tuple 5k+j, 4 bytes a row (a 256-entry lookup per digit, two vpermi2b
 *    and a blend, was 1.3x slower);
 *  - tuple s (elements 4s..4s+3, reference lane s%8, sub-block s/8) is one
 *    vpdpbusd against the 4 activation bytes broadcast, starting from minus
 *    their sum (taking off the +1, the same for every row): exact
 *    sum(g*q8) per row, |.| <= 508;
 *  - times the row's ls of sub-block s/8 by vpdpwssd with (ls, 0) pairs into
 *    the accumulator of lane s%8: lane m of 16 rows in one zmm;
 *  - IQ1_S's delta sum per row, sum over ib of +-ls * (bsums of sub-block
 *    ib), by vpdpwssd with (+-ls, .) x (bsum, 0);
 *  - IQ1_M: ls per 16 elements (sub-block s/8, half (s%8)/4), and the delta
 *    lanes per tuple as vpdpwssd of the row's +-ls (sign per 8 elements) by
 *    the tuple's activation sum as (sum, 0).
 * So no gathers and no scalar lookups; the decode per code vector is shared
 * by the 16 rows.  Several columns: the group is decoded again per column
 * (its ~26 KB for 7168-wide rows stays in L1/L2). */
#include <immintrin.h>
#include <pthread.h>
#include <string.h>

#include "quant.h"
#include "quant_blocks.h"
#include "quant_grids.h"
#include "repack.h"

#define INLINE static inline __attribute__((always_inline))

#define CODE_BYTES REPACK_CODE_BYTES

/* tab[j][0..1]: u (0..80, four digits) -> digit j of u in base 3, as two zmm
 * of 64 entries (vpermi2b over 128) */
static __m512i tab[4][2];
static pthread_once_t tab_once = PTHREAD_ONCE_INIT;

static void tab_init(void)
{
    for (int j = 0; j < 4; j++) {
        uint8_t t[128];
        for (int u = 0; u < 128; u++) {
            int x = u < 81 ? u : 0;
            for (int i = 0; i < j; i++)
                x /= 3;
            t[u] = (uint8_t)(x % 3);
        }
        for (int q = 0; q < 2; q++)
            tab[j][q] = _mm512_loadu_si512(t + 64 * q);
    }
}

/* the hsum_float_8 tree per row lane: ((f4+f0)+(f6+f2)) + ((f5+f1)+(f7+f3)) */
INLINE __m512 hsum_tree(const __m512 f[8])
{
    const __m512 r0 = _mm512_add_ps(f[4], f[0]), r1 = _mm512_add_ps(f[5], f[1]);
    const __m512 r2 = _mm512_add_ps(f[6], f[2]), r3 = _mm512_add_ps(f[7], f[3]);
    return _mm512_add_ps(_mm512_add_ps(r0, r2), _mm512_add_ps(r1, r3));
}

/* minus the sum of each tuple's 4 activations (the +1 of the digits), and
 * the sums themselves as (sum, 0) word pairs */
INLINE void tuple_sums(const int8_t *q8, int32_t nsum[64], int32_t psum[64])
{
    const __m512i ones = _mm512_set1_epi8(1);
    for (int k = 0; k < 4; k++) {
        const __m512i s = _mm512_dpbusd_epi32(_mm512_setzero_si512(), ones, _mm512_loadu_si512(q8 + 64 * k));
        _mm512_storeu_si512(nsum + 16 * k, _mm512_sub_epi32(_mm512_setzero_si512(), s));
        if (psum)
            _mm512_storeu_si512(psum + 16 * k, _mm512_and_si512(s, _mm512_set1_epi32(0xffff)));
    }
}

/* the five digit vectors of code vector k (tuples 5k..5k+4; v = u + 81 *
 * d4: d4 from two compares, u's four digits by one vpermi2b each) */
INLINE void decode5(const uint8_t *cb, int k, __m512i w[5])
{
    const __m512i ones = _mm512_set1_epi8(1), c81 = _mm512_set1_epi8(81), c162 = _mm512_set1_epi8((char)162);
    const __m512i v = _mm512_loadu_si512(cb + 64 * k);
    const __mmask64 k1 = _mm512_cmpge_epu8_mask(v, c81), k2 = _mm512_cmpge_epu8_mask(v, c162);
    const __m512i u1 = _mm512_mask_sub_epi8(v, k1, v, c81);
    const __m512i u = _mm512_mask_sub_epi8(u1, k2, u1, c81);
    const __m512i d1 = _mm512_maskz_mov_epi8(k1, ones);
    w[4] = _mm512_mask_add_epi8(d1, k2, d1, ones);
    for (int j = 0; j < 4; j++)
        w[j] = _mm512_permutex2var_epi8(tab[j][0], u, tab[j][1]);
}

/* exact sum(g * q8) of tuple s per row: the digits against the 4 activation
 * bytes broadcast, from minus their sum */
INLINE __m512i tuple_dot(__m512i w, const int8_t *q8, const int32_t nsum[64], int s)
{
    int32_t a4;
    memcpy(&a4, q8 + 4 * s, 4);
    return _mm512_dpbusd_epi32(_mm512_set1_epi32(nsum[s]), w, _mm512_set1_epi32(a4));
}

/* 16 IQ1_S rows of group base `gp` against one column y: the 16 results */
static __m512 iq1s_group_col(int64_t nb, const uint8_t *gp, const block_q8_K *y)
{
    const uint8_t *codes = gp, *scales = gp + (size_t)nb * CODE_BYTES,
                  *dh = gp + (size_t)nb * (CODE_BYTES + 64);
    const __m512i m7 = _mm512_set1_epi32(7), one32 = _mm512_set1_epi32(1);
    __m512 f[8], f1 = _mm512_setzero_ps();
    for (int m = 0; m < 8; m++)
        f[m] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const int8_t *q8 = y[b].qs;
        int32_t nsum[64];
        tuple_sums(q8, nsum, NULL);
        /* per sub-block: (ls, 0) and (+-ls, .) per row; the bsums of its 32
         * as (bsum, 0) */
        const __m512i sc = _mm512_loadu_si512(scales + (size_t)b * 64);
        __m512i ls[8], acc1 = _mm512_setzero_si512();
        for (int ib = 0; ib < 8; ib++) {
            const __m512i l3 = _mm512_and_si512(_mm512_srli_epi32(sc, 4 * ib), m7);
            ls[ib] = _mm512_or_si512(_mm512_slli_epi32(l3, 1), one32);
            const __mmask16 neg = _mm512_test_epi32_mask(sc, _mm512_set1_epi32(8 << (4 * ib)));
            const __m512i sls = _mm512_mask_sub_epi32(ls[ib], neg, _mm512_setzero_si512(), ls[ib]);
            const int32_t bs = (int32_t)(uint16_t)(int16_t)(y[b].bsums[2 * ib] + y[b].bsums[2 * ib + 1]);
            acc1 = _mm512_dpwssd_epi32(acc1, sls, _mm512_set1_epi32(bs));
        }
        __m512i acc[8];
        for (int m = 0; m < 8; m++)
            acc[m] = _mm512_setzero_si512();
        const uint8_t *cb = codes + (size_t)b * CODE_BYTES;
#pragma GCC unroll 13
        for (int k = 0; k < 13; k++) {
            __m512i w[5];
            decode5(cb, k, w);
#pragma GCC unroll 5
            for (int j = 0; j < 5; j++) {
                const int s = 5 * k + j;
                if (s >= 64)
                    break;
                acc[s & 7] = _mm512_dpwssd_epi32(acc[s & 7], tuple_dot(w[j], q8, nsum, s), ls[s >> 3]);
            }
        }
        const __m512 d = _mm512_mul_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(dh + (size_t)b * 32))),
                                       _mm512_set1_ps(y[b].d));
        for (int m = 0; m < 8; m++)
            f[m] = _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(acc[m]), f[m]);
        f1 = _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(acc1), f1);
    }
    return _mm512_add_ps(hsum_tree(f), _mm512_mul_ps(_mm512_set1_ps(IQ1S_DELTA), f1));
}

/* 16 IQ1_M rows of group base `gp` against one column y */
static __m512 iq1m_group_col(int64_t nb, const uint8_t *gp, const block_q8_K *y)
{
    const uint8_t *codes = gp, *sc_lo = gp + (size_t)nb * CODE_BYTES, *sc_hi = sc_lo + (size_t)nb * 64,
                  *dl = sc_hi + (size_t)nb * 64, *dh = dl + (size_t)nb * 64;
    const __m512i m7 = _mm512_set1_epi32(7), one32 = _mm512_set1_epi32(1);
    __m512 f[8], f2[8];
    for (int m = 0; m < 8; m++)
        f[m] = f2[m] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const int8_t *q8 = y[b].qs;
        int32_t nsum[64], psum[64];
        tuple_sums(q8, nsum, psum);
        /* ls of the 16 elements 16i.. per row, (ls, 0) */
        const __m512i sc[2] = {_mm512_loadu_si512(sc_lo + (size_t)b * 64), _mm512_loadu_si512(sc_hi + (size_t)b * 64)};
        const __m512i dsg = _mm512_loadu_si512(dl + (size_t)b * 64);
        __m512i ls[16];
        for (int i = 0; i < 16; i++)
            ls[i] = _mm512_or_si512(_mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(sc[i / 8], 4 * (i % 8)), m7), 1),
                                    one32);
        __m512i acc[8], acc2[8];
        for (int m = 0; m < 8; m++)
            acc[m] = acc2[m] = _mm512_setzero_si512();
        const uint8_t *cb = codes + (size_t)b * CODE_BYTES;
#pragma GCC unroll 13
        for (int k = 0; k < 13; k++) {
            __m512i w[5];
            decode5(cb, k, w);
#pragma GCC unroll 5
            for (int j = 0; j < 5; j++) {
                const int s = 5 * k + j, ib = s >> 3, m = s & 7;
                if (s >= 64)
                    break;
                const __m512i l = ls[2 * ib + m / 4];
                acc[m] = _mm512_dpwssd_epi32(acc[m], tuple_dot(w[j], q8, nsum, s), l);
                /* +-ls of the 8 elements 8 * (4ib + m/2).. times the tuple's sum */
                const __mmask16 neg = _mm512_test_epi32_mask(dsg, _mm512_set1_epi32(1 << (4 * ib + m / 2)));
                acc2[m] = _mm512_dpwssd_epi32(acc2[m], _mm512_mask_sub_epi32(l, neg, _mm512_setzero_si512(), l),
                                              _mm512_set1_epi32(psum[s]));
            }
        }
        const __m512 d = _mm512_mul_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(dh + (size_t)b * 32))),
                                       _mm512_set1_ps(y[b].d));
        for (int m = 0; m < 8; m++) {
            f[m] = _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(acc[m]), f[m]);
            f2[m] = _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(acc2[m]), f2[m]);
        }
    }
    return _mm512_add_ps(hsum_tree(f), _mm512_mul_ps(_mm512_set1_ps(IQ1M_DELTA), hsum_tree(f2)));
}

void repack_avx512(int type, int64_t n, const void *rp, int64_t g0, int64_t g1, int64_t row0, int64_t row1,
                   const void *a, size_t a_stride, int64_t ncols, float *out, size_t out_stride)
{
    pthread_once(&tab_once, tab_init);
    const int64_t nb = n / QK_K;
    const size_t gbytes = repack_group_bytes(type, n);
    __m512 (*const col)(int64_t, const uint8_t *, const block_q8_K *) =
        type == MS_TYPE_IQ1_M ? iq1m_group_col : iq1s_group_col;
    for (int64_t g = g0; g < g1; g++) {
        const uint8_t *gp = (const uint8_t *)rp + (size_t)g * gbytes;
        const int64_t r0 = g * REPACK_ROWS;
        const int lo = (int)(row0 > r0 ? row0 - r0 : 0);
        const int hi = (int)(row1 < r0 + REPACK_ROWS ? row1 - r0 : REPACK_ROWS);
        for (int64_t c = 0; c < ncols; c++) {
            float v[16];
            _mm512_storeu_ps(v, col(nb, gp, (const block_q8_K *)((const uint8_t *)a + (size_t)c * a_stride)));
            float *o = out + (size_t)c * out_stride + (size_t)r0;
            for (int r = lo; r < hi; r++)
                o[r] = v[r];
        }
    }
}
