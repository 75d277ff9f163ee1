/* kern_repack_avx512.c - AVX-512 (BW + VNNI + VBMI) products over the
 * repacked IQ1_S layout (simd/repack.h), compiled with the AVX-512 flags and
 * called only through repack_mul_mat when the avx512 table is in use.
 *
 * Owns: repack_avx512 (IQ1_S, IQ1_M, IQ2_XXS: see its section).  Bit-exact with the scalar reference
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
 * by the 16 rows.  Several columns: see "several columns" below. */
#include <immintrin.h>
#include <pthread.h>
#include <stdlib.h>
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
/* byte d + 4 * ls3 -> 15 + (2 ls3 + 1) * (d - 1) (0..30): the multi-column
 * weights, unsigned so the activations go in as they are */
static __m512i prescale_tab;
/* IQ2_XXS: t2[h][0..3]: grid index (256, vpermi2b over 128 + bit 7
 * blend) -> the 2-bit codes (8, 25, 43 -> 0, 1, 2) of the grid row's
 * elements 4h..4h+3, code q at bits 2q; t2lut: byte e -> 43 + the value of
 * code e & 3 (vpermb reads six bits: bits 2-5 are other codes); t2ctl[l]:
 * vpmultishiftqb, dword i of a qword <- code byte l of that dword, bits 2q
 * into byte q */
static __m512i t2[2][4], t2lut, t2ctl[4];
static pthread_once_t tab_once = PTHREAD_ONCE_INIT;

static void tab_init(void)
{
    for (int h = 0; h < 2; h++) {
        uint8_t t[256];
        for (int i = 0; i < 256; i++) {
            uint8_t g[8];
            memcpy(g, &iq2xxs_grid[i], 8);
            t[i] = 0;
            for (int q = 0; q < 4; q++)
                t[i] |= (uint8_t)((g[4 * h + q] == 8 ? 0 : g[4 * h + q] == 25 ? 1 : 2) << (2 * q));
        }
        for (int k = 0; k < 4; k++)
            t2[h][k] = _mm512_loadu_si512(t + 64 * k);
    }
    uint8_t lut[64];
    for (int e = 0; e < 64; e++)
        lut[e] = (uint8_t)(43 + ((e & 3) == 0 ? 8 : (e & 3) == 1 ? 25 : (e & 3) == 2 ? 43 : 0));
    t2lut = _mm512_loadu_si512(lut);
    for (int l = 0; l < 4; l++) {
        uint64_t c = 0;
        for (int q = 0; q < 8; q++)
            c |= (uint64_t)(32 * (q / 4) + 8 * l + 2 * (q % 4)) << (8 * q);
        t2ctl[l] = _mm512_set1_epi64((long long)c);
    }

    uint8_t ps[64] = {0};
    for (int l3 = 0; l3 < 8; l3++)
        for (int d = 0; d < 3; d++)
            ps[d + 4 * l3] = (uint8_t)(15 + (2 * l3 + 1) * (d - 1));
    prescale_tab = _mm512_loadu_si512(ps);
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
#pragma GCC unroll 4
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

/* The next group (gbytes at next, NULL at the end) a 1/nb slice per block:
 * the hardware prefetcher alone leaves the one-column kernels waiting on
 * DRAM (they outrun it: 26 KB per group of 7168-wide rows). */
INLINE size_t prefetch_chunk(size_t gbytes, int64_t nb)
{
    return (gbytes / (size_t)nb + 63) & ~(size_t)63;
}

INLINE void prefetch_next(const uint8_t *next, size_t gbytes, size_t chunk, int64_t b)
{
    if (!next)
        return;
    const size_t lo = (size_t)b * chunk, hi = lo + chunk < gbytes ? lo + chunk : gbytes;
    for (size_t o = lo; o < hi; o += 64)
        _mm_prefetch((const char *)next + o, _MM_HINT_T0);
}

/* FOR_TUPLES(X): decode the block's 13 code vectors (cb) and run
 * X(s, m, ib, w) for its 64 tuples in order (s, its lane m = s & 7 and
 * sub-block ib = s >> 3 as literals, for token pasting): written out so the
 * accumulators are named variables; as arrays of zmm under `#pragma GCC
 * unroll` GCC kept them in memory (past the scalar-replacement size limit),
 * zeroed by a rep stos per block */
#define FOR_TUPLES(X) \
    { __m512i w_[5]; decode5(cb, 0, w_); X(0, 0, 0, w_[0]) X(1, 1, 0, w_[1]) X(2, 2, 0, w_[2]) X(3, 3, 0, w_[3]) X(4, 4, 0, w_[4]) } \
    { __m512i w_[5]; decode5(cb, 1, w_); X(5, 5, 0, w_[0]) X(6, 6, 0, w_[1]) X(7, 7, 0, w_[2]) X(8, 0, 1, w_[3]) X(9, 1, 1, w_[4]) } \
    { __m512i w_[5]; decode5(cb, 2, w_); X(10, 2, 1, w_[0]) X(11, 3, 1, w_[1]) X(12, 4, 1, w_[2]) X(13, 5, 1, w_[3]) X(14, 6, 1, w_[4]) } \
    { __m512i w_[5]; decode5(cb, 3, w_); X(15, 7, 1, w_[0]) X(16, 0, 2, w_[1]) X(17, 1, 2, w_[2]) X(18, 2, 2, w_[3]) X(19, 3, 2, w_[4]) } \
    { __m512i w_[5]; decode5(cb, 4, w_); X(20, 4, 2, w_[0]) X(21, 5, 2, w_[1]) X(22, 6, 2, w_[2]) X(23, 7, 2, w_[3]) X(24, 0, 3, w_[4]) } \
    { __m512i w_[5]; decode5(cb, 5, w_); X(25, 1, 3, w_[0]) X(26, 2, 3, w_[1]) X(27, 3, 3, w_[2]) X(28, 4, 3, w_[3]) X(29, 5, 3, w_[4]) } \
    { __m512i w_[5]; decode5(cb, 6, w_); X(30, 6, 3, w_[0]) X(31, 7, 3, w_[1]) X(32, 0, 4, w_[2]) X(33, 1, 4, w_[3]) X(34, 2, 4, w_[4]) } \
    { __m512i w_[5]; decode5(cb, 7, w_); X(35, 3, 4, w_[0]) X(36, 4, 4, w_[1]) X(37, 5, 4, w_[2]) X(38, 6, 4, w_[3]) X(39, 7, 4, w_[4]) } \
    { __m512i w_[5]; decode5(cb, 8, w_); X(40, 0, 5, w_[0]) X(41, 1, 5, w_[1]) X(42, 2, 5, w_[2]) X(43, 3, 5, w_[3]) X(44, 4, 5, w_[4]) } \
    { __m512i w_[5]; decode5(cb, 9, w_); X(45, 5, 5, w_[0]) X(46, 6, 5, w_[1]) X(47, 7, 5, w_[2]) X(48, 0, 6, w_[3]) X(49, 1, 6, w_[4]) } \
    { __m512i w_[5]; decode5(cb, 10, w_); X(50, 2, 6, w_[0]) X(51, 3, 6, w_[1]) X(52, 4, 6, w_[2]) X(53, 5, 6, w_[3]) X(54, 6, 6, w_[4]) } \
    { __m512i w_[5]; decode5(cb, 11, w_); X(55, 7, 6, w_[0]) X(56, 0, 7, w_[1]) X(57, 1, 7, w_[2]) X(58, 2, 7, w_[3]) X(59, 3, 7, w_[4]) } \
    { __m512i w_[5]; decode5(cb, 12, w_); X(60, 4, 7, w_[0]) X(61, 5, 7, w_[1]) X(62, 6, 7, w_[2]) X(63, 7, 7, w_[3]) }

/* 16 IQ1_S rows of group base `gp` against one column y: the 16 results */
static __m512 iq1s_group_col(int64_t nb, const uint8_t *gp, const block_q8_K *y, const uint8_t *next, size_t gbytes)
{
    const uint8_t *codes = gp, *scales = gp + (size_t)nb * CODE_BYTES,
                  *dh = gp + (size_t)nb * (CODE_BYTES + 64);
    const __m512i m7 = _mm512_set1_epi32(7), one32 = _mm512_set1_epi32(1);
    __m512 f0, f1, f2, f3, f4, f5, f6, f7, fd;
    f0 = f1 = f2 = f3 = f4 = f5 = f6 = f7 = fd = _mm512_setzero_ps();
    const size_t pfc = prefetch_chunk(gbytes, nb);
    for (int64_t b = 0; b < nb; b++) {
        prefetch_next(next, gbytes, pfc, b);
        const int8_t *q8 = y[b].qs;
        int32_t nsum[64];
        tuple_sums(q8, nsum, NULL);
        /* per sub-block: (ls, 0) and (+-ls, .) per row; the bsums of its 32
         * as (bsum, 0) */
        const __m512i sc = _mm512_loadu_si512(scales + (size_t)b * 64);
        __m512i accd = _mm512_setzero_si512();
        __m512i ls0, ls1, ls2, ls3, ls4, ls5, ls6, ls7;
#define LS(ib)                                                                                                     \
    {                                                                                                              \
        ls##ib = _mm512_or_si512(_mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(sc, 4 * ib), m7), 1), one32); \
        const __mmask16 neg = _mm512_test_epi32_mask(sc, _mm512_set1_epi32((int)(8u << (4 * ib))));                 \
        const __m512i sls = _mm512_mask_sub_epi32(ls##ib, neg, _mm512_setzero_si512(), ls##ib);                     \
        const int32_t bs = (int32_t)(uint16_t)(int16_t)(y[b].bsums[2 * ib] + y[b].bsums[2 * ib + 1]);              \
        accd = _mm512_dpwssd_epi32(accd, sls, _mm512_set1_epi32(bs));                                              \
    }
        LS(0) LS(1) LS(2) LS(3) LS(4) LS(5) LS(6) LS(7)
#undef LS
        __m512i a0, a1, a2, a3, a4, a5, a6, a7;
        a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = _mm512_setzero_si512();
        const uint8_t *cb = codes + (size_t)b * CODE_BYTES;
#define X(s, m, ib, w) a##m = _mm512_dpwssd_epi32(a##m, tuple_dot(w, q8, nsum, s), ls##ib);
        FOR_TUPLES(X)
#undef X
        const __m512 d = _mm512_mul_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(dh + (size_t)b * 32))),
                                       _mm512_set1_ps(y[b].d));
#define F(m) f##m = _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(a##m), f##m);
        F(0) F(1) F(2) F(3) F(4) F(5) F(6) F(7)
#undef F
        fd = _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(accd), fd);
    }
    const __m512 f[8] = {f0, f1, f2, f3, f4, f5, f6, f7};
    return _mm512_add_ps(hsum_tree(f), _mm512_mul_ps(_mm512_set1_ps(IQ1S_DELTA), fd));
}

/* 16 IQ1_M rows of group base `gp` against one column y */
static __m512 iq1m_group_col(int64_t nb, const uint8_t *gp, const block_q8_K *y, const uint8_t *next, size_t gbytes)
{
    const uint8_t *codes = gp, *sc_lo = gp + (size_t)nb * CODE_BYTES, *sc_hi = sc_lo + (size_t)nb * 64,
                  *dl = sc_hi + (size_t)nb * 64, *dh = dl + (size_t)nb * 64;
    const __m512i m7 = _mm512_set1_epi32(7), one32 = _mm512_set1_epi32(1);
    __m512 f0, f1, f2, f3, f4, f5, f6, f7, e0, e1, e2, e3, e4, e5, e6, e7;
    f0 = f1 = f2 = f3 = f4 = f5 = f6 = f7 = _mm512_setzero_ps();
    e0 = e1 = e2 = e3 = e4 = e5 = e6 = e7 = _mm512_setzero_ps();
    const size_t pfc = prefetch_chunk(gbytes, nb);
    for (int64_t b = 0; b < nb; b++) {
        prefetch_next(next, gbytes, pfc, b);
        const int8_t *q8 = y[b].qs;
        int32_t nsum[64], psum[64];
        tuple_sums(q8, nsum, psum);
        /* per sub-block ib (at its first tuple): lsA, lsB the ls of its
         * two 16s per row, (ls, 0); sl0..sl3 +-ls of its four 8s (the delta
         * sign per 8) */
        const __m512i sc[2] = {_mm512_loadu_si512(sc_lo + (size_t)b * 64), _mm512_loadu_si512(sc_hi + (size_t)b * 64)};
        const __m512i dsg = _mm512_loadu_si512(dl + (size_t)b * 64);
        __m512i lsA, lsB, sl0, sl1, sl2, sl3;
        __m512i a0, a1, a2, a3, a4, a5, a6, a7, b0, b1, b2, b3, b4, b5, b6, b7;
        a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = _mm512_setzero_si512();
        b0 = b1 = b2 = b3 = b4 = b5 = b6 = b7 = _mm512_setzero_si512();
        const uint8_t *cb = codes + (size_t)b * CODE_BYTES;
#define LS(i) _mm512_or_si512(_mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(sc[(i) / 8], 4 * ((i) % 8)), m7), 1), one32)
#define SL(i, l) _mm512_mask_sub_epi32(l, _mm512_test_epi32_mask(dsg, _mm512_set1_epi32((int)(1u << (i)))), _mm512_setzero_si512(), l)
#define X(s, m, ib, w)                                                                                   \
    if ((m) == 0) {                                                                                      \
        lsA = LS(2 * (ib));                                                                              \
        lsB = LS(2 * (ib) + 1);                                                                          \
        sl0 = SL(4 * (ib), lsA);                                                                         \
        sl1 = SL(4 * (ib) + 1, lsA);                                                                     \
        sl2 = SL(4 * (ib) + 2, lsB);                                                                     \
        sl3 = SL(4 * (ib) + 3, lsB);                                                                     \
    }                                                                                                    \
    a##m = _mm512_dpwssd_epi32(a##m, tuple_dot(w, q8, nsum, s), (m) < 4 ? lsA : lsB);                    \
    b##m = _mm512_dpwssd_epi32(b##m, (m) < 2 ? sl0 : (m) < 4 ? sl1 : (m) < 6 ? sl2 : sl3, _mm512_set1_epi32(psum[s]));
        FOR_TUPLES(X)
#undef X
#undef SL
#undef LS
        const __m512 d = _mm512_mul_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(dh + (size_t)b * 32))),
                                       _mm512_set1_ps(y[b].d));
#define F(m)                                                      \
    f##m = _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(a##m), f##m); \
    e##m = _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(b##m), e##m);
        F(0) F(1) F(2) F(3) F(4) F(5) F(6) F(7)
#undef F
    }
    const __m512 f[8] = {f0, f1, f2, f3, f4, f5, f6, f7}, e[8] = {e0, e1, e2, e3, e4, e5, e6, e7};
    return _mm512_add_ps(hsum_tree(f), _mm512_mul_ps(_mm512_set1_ps(IQ1M_DELTA), hsum_tree(e)));
}

/* ---- IQ2_XXS ----
 * Per row and tuple s = 8ib + m (elements 4s..4s+3, reference lane m, the
 * half m%2 of grid row m/2 of sub-block ib) the weights are 43 + sign * g in
 * 0..86, an unsigned vpdpbusd operand: from minus 43 * the activation sum it
 * gives the exact sum(sign * g * q8) (|.| <= 22016, an int16 for the ls
 * vpdpwssd).  Decode per sub-block: the 64 grid indices (16 rows x 4) to
 * 2-bit code bytes per half grid row (two vpermi2b and a blend each), then
 * per tuple a vpmultishiftqb (the code byte's four codes to four bytes), a
 * vpermb (43 + g) and a masked subtract (86 - that where the sign is set,
 * the mask loaded as is from the layout). */

/* the code bytes of half h for the 64 indices I */
INLINE __m512i iq2xxs_codes(int h, __m512i I, __mmask64 hi)
{
    return _mm512_mask_blend_epi8(hi, _mm512_permutex2var_epi8(t2[h][0], I, t2[h][1]),
                                  _mm512_permutex2var_epi8(t2[h][2], I, t2[h][3]));
}

/* the weights 43 + sign * g of tuple 8ib + m from the code bytes T[m % 2] */
INLINE __m512i iq2xxs_weights(const __m512i T[2], int m, const uint8_t *sgn)
{
    const __m512i c86 = _mm512_set1_epi8(86);
    uint64_t k;
    memcpy(&k, sgn, 8);
    const __m512i w = _mm512_permutexvar_epi8(_mm512_multishift_epi64_epi8(t2ctl[m / 2], T[m % 2]), t2lut);
    return _mm512_mask_sub_epi8(w, (__mmask64)k, c86, w);
}

/* minus 43 * the sum of each tuple's 4 activations */
INLINE void iq2xxs_starts(const int8_t *q8, int32_t nsum[64])
{
    const __m512i c43 = _mm512_set1_epi8(43);
    for (int k = 0; k < 4; k++)
        _mm512_storeu_si512(nsum + 16 * k, _mm512_sub_epi32(_mm512_setzero_si512(),
                                                             _mm512_dpbusd_epi32(_mm512_setzero_si512(), c43,
                                                                                 _mm512_loadu_si512(q8 + 64 * k))));
}

/* ls = 2 * (nibble ib) + 1 per row */
INLINE __m512i iq2xxs_ls(__m512i sc, int ib)
{
    return _mm512_or_si512(_mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(sc, 4 * ib), _mm512_set1_epi32(15)), 1),
                           _mm512_set1_epi32(1));
}

/* 16 IQ2_XXS rows of group base `gp` against one column y */
static __m512 iq2xxs_group_col(int64_t nb, const uint8_t *gp, const block_q8_K *y, const uint8_t *next, size_t gbytes)
{
    const uint8_t *idx = gp, *sg = gp + (size_t)nb * 512, *scs = sg + (size_t)nb * 512, *dh = scs + (size_t)nb * 64;
    __m512 f0, f1, f2, f3, f4, f5, f6, f7;
    f0 = f1 = f2 = f3 = f4 = f5 = f6 = f7 = _mm512_setzero_ps();
    const size_t pfc = prefetch_chunk(gbytes, nb);
    for (int64_t b = 0; b < nb; b++) {
        prefetch_next(next, gbytes, pfc, b);
        const int8_t *q8 = y[b].qs;
        int32_t nsum[64];
        iq2xxs_starts(q8, nsum);
        const __m512i sc = _mm512_loadu_si512(scs + (size_t)b * 64);
        __m512i a0, a1, a2, a3, a4, a5, a6, a7;
        a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = _mm512_setzero_si512();
        for (int ib = 0; ib < 8; ib++) {
            const __m512i I = _mm512_loadu_si512(idx + (size_t)b * 512 + 64 * ib);
            const __mmask64 hi = _mm512_movepi8_mask(I);
            const __m512i T[2] = {iq2xxs_codes(0, I, hi), iq2xxs_codes(1, I, hi)};
            const __m512i ls = iq2xxs_ls(sc, ib);
            /* named accumulators (an array of them stayed in memory) */
#define X(m)                                                                                              \
    {                                                                                                     \
        const int s = 8 * ib + (m);                                                                       \
        const __m512i w = iq2xxs_weights(T, m, sg + (size_t)b * 512 + 8 * s);                             \
        int32_t a4_;                                                                                      \
        memcpy(&a4_, q8 + 4 * s, 4);                                                                      \
        a##m = _mm512_dpwssd_epi32(a##m, _mm512_dpbusd_epi32(_mm512_set1_epi32(nsum[s]), w, _mm512_set1_epi32(a4_)), ls); \
    }
            X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7)
#undef X
        }
        const __m512 d = _mm512_mul_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(dh + (size_t)b * 32))),
                                       _mm512_set1_ps(y[b].d));
#define F(m) f##m = _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(a##m), f##m);
        F(0) F(1) F(2) F(3) F(4) F(5) F(6) F(7)
#undef F
    }
    const __m512 f[8] = {f0, f1, f2, f3, f4, f5, f6, f7};
    return _mm512_mul_ps(_mm512_set1_ps(0.125f), hsum_tree(f));
}

/* ---- several columns ----
 * The group's block is decoded once for up to MC_COLS columns into unsigned
 * prescaled weights w = 15 + ls * g (0..30; a vpermb over (digit, ls3)), so
 * a column costs one vpdpbusd per tuple, with the column's int8 activations
 * as the broadcast memory operand; the 15 * sum(q8) of each lane this adds
 * is the same for the 16 rows, so each lane starts from minus it (per column
 * and block).  The delta sums go two sub-blocks per vpdpwssd: IQ1_S's
 * (+-ls, +-ls') of sub-blocks 2j, 2j+1 per row against the column's
 * (bsum, bsum'); IQ1_M's (+-ls, +-ls') of the two sub-blocks' 8s of lane
 * m/2 against the two tuple sums of lane m.  The lanes stay the exact integer
 * sums of the one-column path and each column's floats take the same steps,
 * so the results are the same.
 *
 * Order: per block, lane by lane: the lane's eight weight vectors (one per
 * sub-block) are loaded once and kept in registers for all columns, four
 * (IQ1_M two) columns at a time, four accumulator chains per column
 * (sub-blocks ib % 4; the integer sums are exact either way; with one or
 * two chains the loop waited on vpdpbusd latency: 8 columns in L2 14.9 /
 * 14.2 / 12.3 ns per row and block with 1 / 2 / 4).  (Per column over all
 * 64 tuples, reloading each weight vector per column, was load-bound.)
 * The columns' side (mc_col) depends on no row: repack_avx512 computes it
 * once per call.  Two or three columns go tuple by tuple instead
 * (two_cols, iq2xxs_2cols). */

#define MC_COLS 16

typedef struct {
    __m512i w[64]; /* 15 + ls * g of tuple s, 4 bytes per row */
    __m512i dp[16]; /* IQ1_S: dp[j] (+-ls of 2j, of 2j+1) as words per row;
                     * IQ1_M: dp[4j + l] (+-ls of the 8s 8(4(2j) + l).., 8(4(2j+1) + l)..) */
} mc_block;

typedef struct {
    int32_t start[16]; /* [m < 8] minus 15 * the sum of lane m's 32 activations */
    int32_t pair[32];  /* IQ1_S: [j] (bsum of sub-block 2j, of 2j+1) as words;
                        * IQ1_M: [8j + m] (tuple sums of 16j + m, 16j + 8 + m) */
    float d;           /* the column's block scale */
} mc_col;

/* per row lane (int32 ls3 in 0..7): ls3 << 2 in each of its 4 bytes */
INLINE __m512i ls3_bytes(__m512i l3)
{
    return _mm512_mullo_epi32(l3, _mm512_set1_epi32(0x04040404));
}

/* the low words of lo and hi as one (lo, hi) word pair per dword */
INLINE __m512i word_pair(__m512i lo, __m512i hi)
{
    return _mm512_mask_blend_epi16(0xaaaaaaaa, lo, _mm512_slli_epi32(hi, 16));
}

static void mc_prep_iq1s(int64_t nb, const uint8_t *gp, int64_t b, mc_block *P)
{
    const __m512i sc = _mm512_loadu_si512(gp + (size_t)nb * CODE_BYTES + (size_t)b * 64);
    const __m512i m7 = _mm512_set1_epi32(7), one32 = _mm512_set1_epi32(1);
    __m512i sls[8];
    for (int ib = 0; ib < 8; ib++) {
        const __m512i ls = _mm512_or_si512(_mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(sc, 4 * ib), m7), 1), one32);
        const __mmask16 neg = _mm512_test_epi32_mask(sc, _mm512_set1_epi32((int)(8u << (4 * ib))));
        sls[ib] = _mm512_mask_sub_epi32(ls, neg, _mm512_setzero_si512(), ls);
    }
    for (int j = 0; j < 4; j++)
        P->dp[j] = word_pair(sls[2 * j], sls[2 * j + 1]);
    const uint8_t *cb = gp + (size_t)b * CODE_BYTES;
    __m512i lb;
#define X(s, m, ib, wv)                                                                     \
    if ((m) == 0)                                                                           \
        lb = ls3_bytes(_mm512_and_si512(_mm512_srli_epi32(sc, 4 * (ib)), m7));              \
    P->w[s] = _mm512_permutexvar_epi8(_mm512_or_si512(wv, lb), prescale_tab);
    FOR_TUPLES(X)
#undef X
}

static void mc_prep_iq1m(int64_t nb, const uint8_t *gp, int64_t b, mc_block *P)
{
    const uint8_t *sc_lo = gp + (size_t)nb * CODE_BYTES, *sc_hi = sc_lo + (size_t)nb * 64, *dl = sc_hi + (size_t)nb * 64;
    const __m512i sc[2] = {_mm512_loadu_si512(sc_lo + (size_t)b * 64), _mm512_loadu_si512(sc_hi + (size_t)b * 64)};
    const __m512i dsg = _mm512_loadu_si512(dl + (size_t)b * 64);
    const __m512i m7 = _mm512_set1_epi32(7), one32 = _mm512_set1_epi32(1);
#define L3(i) _mm512_and_si512(_mm512_srli_epi32(sc[(i) / 8], 4 * ((i) % 8)), m7)
    /* sl(ib, l): +-ls of the 8 elements 8 * (4ib + l).. */
    __m512i sl[32];
    for (int i = 0; i < 32; i++) {
        const __m512i ls = _mm512_or_si512(_mm512_slli_epi32(L3(i / 2), 1), one32);
        const __mmask16 neg = _mm512_test_epi32_mask(dsg, _mm512_set1_epi32((int)(1u << i)));
        sl[i] = _mm512_mask_sub_epi32(ls, neg, _mm512_setzero_si512(), ls);
    }
    for (int j = 0; j < 4; j++)
        for (int l = 0; l < 4; l++)
            P->dp[4 * j + l] = word_pair(sl[4 * (2 * j) + l], sl[4 * (2 * j + 1) + l]);
    const uint8_t *cb = gp + (size_t)b * CODE_BYTES;
    __m512i lbA, lbB;
#define X(s, m, ib, wv)                                                                     \
    if ((m) == 0) {                                                                         \
        lbA = ls3_bytes(L3(2 * (ib)));                                                      \
        lbB = ls3_bytes(L3(2 * (ib) + 1));                                                  \
    }                                                                                       \
    P->w[s] = _mm512_permutexvar_epi8(_mm512_or_si512(wv, (m) < 4 ? lbA : lbB), prescale_tab);
    FOR_TUPLES(X)
#undef X
#undef L3
}

/* the column's side of block y: lane starts, delta word pairs, d (nothing
 * here depends on the rows: a call computes it once for all its groups) */
static void mc_col_prep(const int m1, const block_q8_K *y, mc_col *C)
{
    const __m512i ones = _mm512_set1_epi8(1);
    __m512i t[4];
    for (int k = 0; k < 4; k++)
        t[k] = _mm512_dpbusd_epi32(_mm512_setzero_si512(), ones, _mm512_loadu_si512(y->qs + 64 * k));
    /* t[k] dword i: the sum of tuple 16k + i (lane i % 8) */
    const __m512i s = _mm512_add_epi32(_mm512_add_epi32(t[0], t[1]), _mm512_add_epi32(t[2], t[3]));
    const __m512i l = _mm512_add_epi32(s, _mm512_shuffle_i64x2(s, s, _MM_SHUFFLE(1, 0, 3, 2)));
    _mm512_storeu_si512(C->start, _mm512_sub_epi32(l, _mm512_slli_epi32(l, 4)));
    if (m1) {
        for (int k = 0; k < 4; k++)
            _mm256_storeu_si256((__m256i *)(C->pair + 8 * k),
                                _mm512_castsi512_si256(word_pair(t[k], _mm512_shuffle_i64x2(t[k], t[k], _MM_SHUFFLE(1, 0, 3, 2)))));
    }
    else {
        for (int j = 0; j < 4; j++) {
            const uint16_t lo = (uint16_t)(int16_t)(y->bsums[4 * j] + y->bsums[4 * j + 1]);
            const uint16_t hi = (uint16_t)(int16_t)(y->bsums[4 * j + 2] + y->bsums[4 * j + 3]);
            C->pair[j] = (int32_t)((uint32_t)lo | (uint32_t)hi << 16);
        }
    }
    C->d = y->d;
}

/* The per-thread scratch for the columns' side (nc x nb mc_col, up to
 * ncols x nb entries of mc_col or x2_col): grown as needed, freed at thread exit. */
static pthread_key_t side_key;
static pthread_once_t side_once = PTHREAD_ONCE_INIT;
static int side_key_ok;
static _Thread_local struct {
    size_t cap;
    void *p;
} side_tl;

static void side_free(void *x)
{
    (void)x;
    free(side_tl.p);
    side_tl.p = NULL;
    side_tl.cap = 0;
}

static void side_key_init(void)
{
    side_key_ok = pthread_key_create(&side_key, side_free) == 0;
}

/* n bytes, or NULL (out of memory) */
static void *side_get(size_t n)
{
    pthread_once(&side_once, side_key_init);
    if (side_tl.cap >= n)
        return side_tl.p;
    if (!side_key_ok)
        return NULL;
    void *p = realloc(side_tl.p, n);
    if (!p)
        return NULL;
    if (!side_tl.p && pthread_setspecific(side_key, &side_tl)) {
        free(p);
        return NULL;
    }
    side_tl.p = p;
    side_tl.cap = n;
    return p;
}

/* Lane m of K (1, 2 or 4) columns c.. of block b: into f[c][m] (and IQ1_M's
 * delta lanes into e[c][m]); W0..W7 / D0..D3 the lane's weights and delta
 * pairs in registers */
#define MC_LANE_COL_BEGIN(k)                                                                                    \
    const int32_t *q##k = (const int32_t *)((const block_q8_K *)(a + (size_t)(c + k) * as) + b)->qs + m;       \
    __m512i x##k = _mm512_set1_epi32(S[(size_t)(c + k) * (size_t)nb + (size_t)b].start[m]), z##k = _mm512_setzero_si512(),                        \
            u##k = _mm512_setzero_si512(), p##k = _mm512_setzero_si512(), r##k = _mm512_setzero_si512(), v##k = _mm512_setzero_si512();
/* the activation dword as vpdpbusd's broadcast memory operand (GCC emits a
 * separate vpbroadcastd for _mm512_set1_epi32 of a load) */
INLINE __m512i dpbusd_bcast(__m512i acc, __m512i w, const int32_t *q)
{
    __asm__("vpdpbusd %2%{1to16%}, %1, %0" : "+v"(acc) : "v"(w), "m"(*q));
    return acc;
}
#define MC_DOT(k, ib, acc) acc##k = dpbusd_bcast(acc##k, W##ib, &q##k[8 * (ib)]);
#define MC_LANE_COL(k)                                                                                          \
    MC_DOT(k, 0, x) MC_DOT(k, 1, z) MC_DOT(k, 2, p) MC_DOT(k, 3, r)                                             \
    MC_DOT(k, 4, x) MC_DOT(k, 5, z) MC_DOT(k, 6, p) MC_DOT(k, 7, r)                                             \
    if (m1) {                                                                                                   \
        u##k = _mm512_dpwssd_epi32(u##k, D0, _mm512_set1_epi32(S[(size_t)(c + k) * (size_t)nb + (size_t)b].pair[m]));                              \
        u##k = _mm512_dpwssd_epi32(u##k, D1, _mm512_set1_epi32(S[(size_t)(c + k) * (size_t)nb + (size_t)b].pair[8 + m]));                          \
        v##k = _mm512_dpwssd_epi32(v##k, D2, _mm512_set1_epi32(S[(size_t)(c + k) * (size_t)nb + (size_t)b].pair[16 + m]));                         \
        v##k = _mm512_dpwssd_epi32(v##k, D3, _mm512_set1_epi32(S[(size_t)(c + k) * (size_t)nb + (size_t)b].pair[24 + m]));                         \
    }
#define MC_LANE_COL_END(k)                                                                                      \
    f[8 * (c + k) + m] = _mm512_fmadd_ps(dv[c + k], _mm512_cvtepi32_ps(_mm512_add_epi32(_mm512_add_epi32(x##k, z##k), _mm512_add_epi32(p##k, r##k))),          \
                                         f[8 * (c + k) + m]);                                                    \
    if (m1)                                                                                                     \
        e[8 * (c + k) + m] = _mm512_fmadd_ps(dv[c + k], _mm512_cvtepi32_ps(_mm512_add_epi32(u##k, v##k)), e[8 * (c + k) + m]);

/* columns [0, nc) (nc <= MC_COLS) of the 16 rows of group gp into v[c*16..];
 * m1: IQ1_M, else IQ1_S */
INLINE void group_cols(const int m1, int64_t nb, const uint8_t *gp, const uint8_t *a, size_t as, const mc_col *S, int nc,
                       float *v, const uint8_t *next, size_t gbytes)
{
    const uint8_t *dh = gp + (size_t)nb * (CODE_BYTES + (m1 ? 192 : 64));
    __m512 f[MC_COLS * 8], e[MC_COLS * 8], fd[MC_COLS];
    for (int i = 0; i < nc * 8; i++)
        f[i] = e[i] = _mm512_setzero_ps();
    for (int c = 0; c < nc; c++)
        fd[c] = _mm512_setzero_ps();
    mc_block P;
    __m512 dv[MC_COLS];
    const size_t pfc = prefetch_chunk(gbytes, nb);
    for (int64_t b = 0; b < nb; b++) {
        prefetch_next(next, gbytes, pfc, b);
        if (m1)
            mc_prep_iq1m(nb, gp, b, &P);
        else
            mc_prep_iq1s(nb, gp, b, &P);
        const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(dh + (size_t)b * 32)));
        /* the rows' d times the column's, as the one-column kernels */
        for (int c = 0; c < nc; c++)
            dv[c] = _mm512_mul_ps(dw, _mm512_set1_ps(S[(size_t)c * (size_t)nb + (size_t)b].d));
        for (int m = 0; m < 8; m++) {
            const __m512i W0 = P.w[m], W1 = P.w[8 + m], W2 = P.w[16 + m], W3 = P.w[24 + m], W4 = P.w[32 + m],
                          W5 = P.w[40 + m], W6 = P.w[48 + m], W7 = P.w[56 + m];
            /* IQ1_M's delta pairs of lane m (IQ1_S fills dp[0..3] only) */
            const __m512i z = _mm512_setzero_si512();
            const __m512i D0 = m1 ? P.dp[m / 2] : z, D1 = m1 ? P.dp[4 + m / 2] : z, D2 = m1 ? P.dp[8 + m / 2] : z,
                          D3 = m1 ? P.dp[12 + m / 2] : z;
            (void)D0, (void)D1, (void)D2, (void)D3;
            int c = 0;
            /* IQ1_S four columns at a time; IQ1_M two (its delta chains
             * would not leave registers for four; in L2, 8 columns 18.0
             * against 19.8 ns per row and block with four) */
            if (!m1)
                for (; c + 4 <= nc; c += 4) {
                    MC_LANE_COL_BEGIN(0) MC_LANE_COL_BEGIN(1) MC_LANE_COL_BEGIN(2) MC_LANE_COL_BEGIN(3)
                    MC_LANE_COL(0) MC_LANE_COL(1) MC_LANE_COL(2) MC_LANE_COL(3)
                    MC_LANE_COL_END(0) MC_LANE_COL_END(1) MC_LANE_COL_END(2) MC_LANE_COL_END(3)
                }
            for (; c + 2 <= nc; c += 2) {
                MC_LANE_COL_BEGIN(0) MC_LANE_COL_BEGIN(1)
                MC_LANE_COL(0) MC_LANE_COL(1)
                MC_LANE_COL_END(0) MC_LANE_COL_END(1)
            }
            for (; c < nc; c++) {
                MC_LANE_COL_BEGIN(0)
                MC_LANE_COL(0)
                MC_LANE_COL_END(0)
            }
        }
        if (!m1)
            for (int c = 0; c < nc; c++) {
                __m512i a1 = _mm512_setzero_si512();
                for (int j = 0; j < 4; j++)
                    a1 = _mm512_dpwssd_epi32(a1, P.dp[j], _mm512_set1_epi32(S[(size_t)c * (size_t)nb + (size_t)b].pair[j]));
                fd[c] = _mm512_fmadd_ps(dv[c], _mm512_cvtepi32_ps(a1), fd[c]);
            }
    }
    for (int c = 0; c < nc; c++)
        _mm512_storeu_ps(v + 16 * c, m1 ? _mm512_add_ps(hsum_tree(f + 8 * c), _mm512_mul_ps(_mm512_set1_ps(IQ1M_DELTA), hsum_tree(e + 8 * c)))
                                        : _mm512_add_ps(hsum_tree(f + 8 * c), _mm512_mul_ps(_mm512_set1_ps(IQ1S_DELTA), fd[c])));
}
#undef MC_LANE_COL_BEGIN
#undef MC_DOT
#undef MC_LANE_COL
#undef MC_LANE_COL_END


/* IQ2_XXS, several columns: the column's side per block is the 64 tuple
 * starts (minus 43 * the tuple's activation sum) and d; per block the 64
 * weight vectors are decoded once, then lane by lane (its eight weight and
 * ls vectors in registers) two columns at a time, four dpwssd chains per
 * column; per tuple and column still two VNNI ops (the ls scaling cannot be
 * folded into the int8 weights, |43 * 31| > 127). */
typedef struct {
    int32_t nsum[64];
    float d;
} x2_col;

static void x2_col_prep(const block_q8_K *y, x2_col *C)
{
    iq2xxs_starts(y->qs, C->nsum);
    C->d = y->d;
}

#define X2_BEGIN(k)                                                                                           \
    const int32_t *q##k = (const int32_t *)((const block_q8_K *)(a + (size_t)(c + k) * as) + b)->qs + m;     \
    const int32_t *n##k = S[(size_t)(c + k) * (size_t)nb + (size_t)b].nsum + m;                              \
    __m512i x##k = _mm512_setzero_si512(), z##k = _mm512_setzero_si512(), p##k = _mm512_setzero_si512(),     \
            r##k = _mm512_setzero_si512();
#define X2_DOT(k, ib, acc)                                                                                    \
    acc##k = _mm512_dpwssd_epi32(acc##k, dpbusd_bcast(_mm512_set1_epi32(n##k[8 * (ib)]), W##ib, &q##k[8 * (ib)]), \
                                 L##ib);
#define X2_COL(k)                                                                                             \
    X2_DOT(k, 0, x) X2_DOT(k, 1, z) X2_DOT(k, 2, p) X2_DOT(k, 3, r)                                           \
    X2_DOT(k, 4, x) X2_DOT(k, 5, z) X2_DOT(k, 6, p) X2_DOT(k, 7, r)
#define X2_END(k)                                                                                             \
    f[8 * (c + k) + m] = _mm512_fmadd_ps(dv[c + k],                                                           \
                                         _mm512_cvtepi32_ps(_mm512_add_epi32(_mm512_add_epi32(x##k, z##k),     \
                                                                             _mm512_add_epi32(p##k, r##k))),   \
                                         f[8 * (c + k) + m]);

static void iq2xxs_group_cols(int64_t nb, const uint8_t *gp, const uint8_t *a, size_t as, const x2_col *S, int nc,
                              float *v, const uint8_t *next, size_t gbytes)
{
    const uint8_t *idx = gp, *sg = gp + (size_t)nb * 512, *scs = sg + (size_t)nb * 512, *dh = scs + (size_t)nb * 64;
    __m512 f[MC_COLS * 8], dv[MC_COLS];
    for (int i = 0; i < nc * 8; i++)
        f[i] = _mm512_setzero_ps();
    __m512i w[64], ls[8];
    const size_t pfc = prefetch_chunk(gbytes, nb);
    for (int64_t b = 0; b < nb; b++) {
        prefetch_next(next, gbytes, pfc, b);
        const __m512i sc = _mm512_loadu_si512(scs + (size_t)b * 64);
        for (int ib = 0; ib < 8; ib++) {
            const __m512i I = _mm512_loadu_si512(idx + (size_t)b * 512 + 64 * ib);
            const __mmask64 hi = _mm512_movepi8_mask(I);
            const __m512i T[2] = {iq2xxs_codes(0, I, hi), iq2xxs_codes(1, I, hi)};
            ls[ib] = iq2xxs_ls(sc, ib);
            for (int m = 0; m < 8; m++)
                w[8 * ib + m] = iq2xxs_weights(T, m, sg + (size_t)b * 512 + 8 * (8 * ib + m));
        }
        const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(dh + (size_t)b * 32)));
        for (int c = 0; c < nc; c++)
            dv[c] = _mm512_mul_ps(dw, _mm512_set1_ps(S[(size_t)c * (size_t)nb + (size_t)b].d));
        const __m512i L0 = ls[0], L1 = ls[1], L2 = ls[2], L3 = ls[3], L4 = ls[4], L5 = ls[5], L6 = ls[6], L7 = ls[7];
        for (int m = 0; m < 8; m++) {
            const __m512i W0 = w[m], W1 = w[8 + m], W2 = w[16 + m], W3 = w[24 + m], W4 = w[32 + m], W5 = w[40 + m],
                          W6 = w[48 + m], W7 = w[56 + m];
            int c = 0;
            for (; c + 2 <= nc; c += 2) {
                X2_BEGIN(0) X2_BEGIN(1)
                X2_COL(0) X2_COL(1)
                X2_END(0) X2_END(1)
            }
            for (; c < nc; c++) {
                X2_BEGIN(0)
                X2_COL(0)
                X2_END(0)
            }
        }
    }
    for (int c = 0; c < nc; c++)
        _mm512_storeu_ps(v + 16 * c, _mm512_mul_ps(_mm512_set1_ps(0.125f), hsum_tree(f + 8 * c)));
}
#undef X2_BEGIN
#undef X2_DOT
#undef X2_COL
#undef X2_END

/* IQ2_XXS, two columns: the one-column kernel's order, each decoded weight
 * vector used by both columns */
static void iq2xxs_2cols(int64_t nb, const uint8_t *gp, const uint8_t *a, size_t as, const void *Sv, int nc, float *v,
                         const uint8_t *next, size_t gbytes)
{
    (void)nc;
    const x2_col *S = Sv;
    const uint8_t *idx = gp, *sg = gp + (size_t)nb * 512, *scs = sg + (size_t)nb * 512, *dh = scs + (size_t)nb * 64;
    __m512 f[16];
    for (int i = 0; i < 16; i++)
        f[i] = _mm512_setzero_ps();
    const size_t pfc = prefetch_chunk(gbytes, nb);
    for (int64_t b = 0; b < nb; b++) {
        prefetch_next(next, gbytes, pfc, b);
        const x2_col *C0 = S + b, *C1 = S + nb + b;
        const int32_t *q0 = (const int32_t *)((const block_q8_K *)a + b)->qs,
                      *q1 = (const int32_t *)((const block_q8_K *)(a + as) + b)->qs;
        const __m512i sc = _mm512_loadu_si512(scs + (size_t)b * 64);
        __m512i a0, a1, a2, a3, a4, a5, a6, a7, b0, b1, b2, b3, b4, b5, b6, b7;
        a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = _mm512_setzero_si512();
        b0 = b1 = b2 = b3 = b4 = b5 = b6 = b7 = _mm512_setzero_si512();
        for (int ib = 0; ib < 8; ib++) {
            const __m512i I = _mm512_loadu_si512(idx + (size_t)b * 512 + 64 * ib);
            const __mmask64 hi = _mm512_movepi8_mask(I);
            const __m512i T[2] = {iq2xxs_codes(0, I, hi), iq2xxs_codes(1, I, hi)};
            const __m512i ls = iq2xxs_ls(sc, ib);
#define X(m)                                                                                                   \
    {                                                                                                          \
        const int s = 8 * ib + (m);                                                                            \
        const __m512i w = iq2xxs_weights(T, m, sg + (size_t)b * 512 + 8 * s);                                  \
        a##m = _mm512_dpwssd_epi32(a##m, dpbusd_bcast(_mm512_set1_epi32(C0->nsum[s]), w, q0 + s), ls);         \
        b##m = _mm512_dpwssd_epi32(b##m, dpbusd_bcast(_mm512_set1_epi32(C1->nsum[s]), w, q1 + s), ls);         \
    }
            X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7)
#undef X
        }
        const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(dh + (size_t)b * 32)));
        const __m512 d0 = _mm512_mul_ps(dw, _mm512_set1_ps(C0->d)), d1 = _mm512_mul_ps(dw, _mm512_set1_ps(C1->d));
#define F(m)                                                              \
    f[m] = _mm512_fmadd_ps(d0, _mm512_cvtepi32_ps(a##m), f[m]);           \
    f[8 + m] = _mm512_fmadd_ps(d1, _mm512_cvtepi32_ps(b##m), f[8 + m]);
        F(0) F(1) F(2) F(3) F(4) F(5) F(6) F(7)
#undef F
    }
    for (int c = 0; c < 2; c++)
        _mm512_storeu_ps(v + 16 * c, _mm512_mul_ps(_mm512_set1_ps(0.125f), hsum_tree(f + 8 * c)));
}

static void iq2xxs_cols(int64_t nb, const uint8_t *gp, const uint8_t *a, size_t as, const void *S, int nc, float *v,
                        const uint8_t *next, size_t gbytes)
{
    iq2xxs_group_cols(nb, gp, a, as, S, nc, v, next, gbytes);
}

/* IQ1_S / IQ1_M (m1), two columns: tuple by tuple as the one-column
 * kernels, each prescaled weight vector used by both columns straight from
 * the decode (one vpdpbusd per tuple and column); the delta sums after the
 * tuples, two sub-blocks per vpdpwssd as in group_cols.  With two columns
 * the lane-by-lane path's decode to memory cost as much as the columns. */
INLINE void two_cols(const int m1, int64_t nb, const uint8_t *gp, const uint8_t *a, size_t as, const mc_col *S, float *v,
                     const uint8_t *next, size_t gbytes)
{
    const uint8_t *codes = gp, *sc_lo = gp + (size_t)nb * CODE_BYTES, *sc_hi = sc_lo + (size_t)nb * 64,
                  *dl = sc_hi + (size_t)nb * 64, *dh = gp + (size_t)nb * (CODE_BYTES + (m1 ? 192 : 64));
    const __m512i m7 = _mm512_set1_epi32(7), one32 = _mm512_set1_epi32(1);
    __m512 f[16], e[16], fd[2];
    for (int i = 0; i < 16; i++)
        f[i] = e[i] = _mm512_setzero_ps();
    fd[0] = fd[1] = _mm512_setzero_ps();
    const size_t pfc = prefetch_chunk(gbytes, nb);
    for (int64_t b = 0; b < nb; b++) {
        prefetch_next(next, gbytes, pfc, b);
        const mc_col *C0 = S + b, *C1 = S + nb + b;
        const int32_t *q0 = (const int32_t *)((const block_q8_K *)a + b)->qs,
                      *q1 = (const int32_t *)((const block_q8_K *)(a + as) + b)->qs;
        /* IQ1_S: sc[0] the nibbles ls3 | sign << 3 per sub-block; IQ1_M:
         * ls3 per 16 elements in sc[0] (0..7), sc[1] (8..15) */
        const __m512i sc[2] = {_mm512_loadu_si512(sc_lo + (size_t)b * 64),
                               m1 ? _mm512_loadu_si512(sc_hi + (size_t)b * 64) : _mm512_setzero_si512()};
#define L3(i) _mm512_and_si512(_mm512_srli_epi32(sc[(i) / 8], 4 * ((i) % 8)), m7)
#define A(m) __m512i a##m = _mm512_set1_epi32(C0->start[m]), b##m = _mm512_set1_epi32(C1->start[m]);
        A(0) A(1) A(2) A(3) A(4) A(5) A(6) A(7)
#undef A
        const uint8_t *cb = codes + (size_t)b * CODE_BYTES;
        __m512i lbA, lbB;
#define X(s, m, ib, wv)                                                                                          \
    if ((m) == 0) {                                                                                              \
        lbA = ls3_bytes(m1 ? L3(2 * (ib)) : L3(ib));                                                             \
        lbB = m1 ? ls3_bytes(L3(2 * (ib) + 1)) : lbA;                                                            \
    }                                                                                                            \
    {                                                                                                            \
        const __m512i W = _mm512_permutexvar_epi8(_mm512_or_si512(wv, (m) < 4 ? lbA : lbB), prescale_tab);      \
        a##m = dpbusd_bcast(a##m, W, q0 + (s));                                                                  \
        b##m = dpbusd_bcast(b##m, W, q1 + (s));                                                                  \
    }
        FOR_TUPLES(X)
#undef X
        const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(dh + (size_t)b * 32)));
        const __m512 d0 = _mm512_mul_ps(dw, _mm512_set1_ps(C0->d)), d1 = _mm512_mul_ps(dw, _mm512_set1_ps(C1->d));
#define F(m)                                                              \
    f[m] = _mm512_fmadd_ps(d0, _mm512_cvtepi32_ps(a##m), f[m]);           \
    f[8 + m] = _mm512_fmadd_ps(d1, _mm512_cvtepi32_ps(b##m), f[8 + m]);
        F(0) F(1) F(2) F(3) F(4) F(5) F(6) F(7)
#undef F
        if (m1) {
            /* sl(ib, l): +-ls of the 8 elements 8 * (4ib + l).. */
            const __m512i dsg = _mm512_loadu_si512(dl + (size_t)b * 64);
            __m512i sl[32], dp[16];
            for (int i = 0; i < 32; i++) {
                const __m512i ls = _mm512_or_si512(_mm512_slli_epi32(L3(i / 2), 1), one32);
                const __mmask16 neg = _mm512_test_epi32_mask(dsg, _mm512_set1_epi32((int)(1u << i)));
                sl[i] = _mm512_mask_sub_epi32(ls, neg, _mm512_setzero_si512(), ls);
            }
            for (int j = 0; j < 4; j++)
                for (int l = 0; l < 4; l++)
                    dp[4 * j + l] = word_pair(sl[4 * (2 * j) + l], sl[4 * (2 * j + 1) + l]);
            for (int m = 0; m < 8; m++) {
                __m512i u0 = _mm512_setzero_si512(), u1 = _mm512_setzero_si512();
                for (int j = 0; j < 4; j++) {
                    u0 = _mm512_dpwssd_epi32(u0, dp[4 * j + m / 2], _mm512_set1_epi32(C0->pair[8 * j + m]));
                    u1 = _mm512_dpwssd_epi32(u1, dp[4 * j + m / 2], _mm512_set1_epi32(C1->pair[8 * j + m]));
                }
                e[m] = _mm512_fmadd_ps(d0, _mm512_cvtepi32_ps(u0), e[m]);
                e[8 + m] = _mm512_fmadd_ps(d1, _mm512_cvtepi32_ps(u1), e[8 + m]);
            }
        }
        else {
            __m512i sls[8];
            for (int ib = 0; ib < 8; ib++) {
                const __m512i ls = _mm512_or_si512(_mm512_slli_epi32(L3(ib), 1), one32);
                const __mmask16 neg = _mm512_test_epi32_mask(sc[0], _mm512_set1_epi32((int)(8u << (4 * ib))));
                sls[ib] = _mm512_mask_sub_epi32(ls, neg, _mm512_setzero_si512(), ls);
            }
            __m512i e0 = _mm512_setzero_si512(), e1 = _mm512_setzero_si512();
            for (int j = 0; j < 4; j++) {
                const __m512i dp = word_pair(sls[2 * j], sls[2 * j + 1]);
                e0 = _mm512_dpwssd_epi32(e0, dp, _mm512_set1_epi32(C0->pair[j]));
                e1 = _mm512_dpwssd_epi32(e1, dp, _mm512_set1_epi32(C1->pair[j]));
            }
            fd[0] = _mm512_fmadd_ps(d0, _mm512_cvtepi32_ps(e0), fd[0]);
            fd[1] = _mm512_fmadd_ps(d1, _mm512_cvtepi32_ps(e1), fd[1]);
        }
#undef L3
    }
    for (int c = 0; c < 2; c++)
        _mm512_storeu_ps(v + 16 * c,
                         m1 ? _mm512_add_ps(hsum_tree(f + 8 * c), _mm512_mul_ps(_mm512_set1_ps(IQ1M_DELTA), hsum_tree(e + 8 * c)))
                            : _mm512_add_ps(hsum_tree(f + 8 * c), _mm512_mul_ps(_mm512_set1_ps(IQ1S_DELTA), fd[c])));
}

static void iq1s_2cols(int64_t nb, const uint8_t *gp, const uint8_t *a, size_t as, const void *S, int nc, float *v,
                       const uint8_t *next, size_t gbytes)
{
    (void)nc;
    two_cols(0, nb, gp, a, as, S, v, next, gbytes);
}

static void iq1m_2cols(int64_t nb, const uint8_t *gp, const uint8_t *a, size_t as, const void *S, int nc, float *v,
                       const uint8_t *next, size_t gbytes)
{
    (void)nc;
    two_cols(1, nb, gp, a, as, S, v, next, gbytes);
}

static void iq1s_cols(int64_t nb, const uint8_t *gp, const uint8_t *a, size_t as, const void *S, int nc, float *v,
                      const uint8_t *next, size_t gbytes)
{
    group_cols(0, nb, gp, a, as, S, nc, v, next, gbytes);
}

static void iq1m_cols(int64_t nb, const uint8_t *gp, const uint8_t *a, size_t as, const void *S, int nc, float *v,
                      const uint8_t *next, size_t gbytes)
{
    group_cols(1, nb, gp, a, as, S, nc, v, next, gbytes);
}

/* rows [row0, row1) of groups [g0, g1), one column at a time */
static void by_column(__m512 (*col)(int64_t, const uint8_t *, const block_q8_K *, const uint8_t *, size_t), int64_t nb,
                      const uint8_t *rp, size_t gbytes, int64_t g0, int64_t g1, int64_t row0, int64_t row1,
                      const uint8_t *a, size_t a_stride, int64_t ncols, float *out, size_t out_stride)
{
    for (int64_t c = 0; c < ncols; c++)
        for (int64_t g = g0; g < g1; g++) {
            const uint8_t *gp = rp + (size_t)g * gbytes;
            const int64_t r0 = g * REPACK_ROWS;
            const int lo = (int)(row0 > r0 ? row0 - r0 : 0);
            const int hi = (int)(row1 < r0 + REPACK_ROWS ? row1 - r0 : REPACK_ROWS);
            float v[16];
            _mm512_storeu_ps(v, col(nb, gp, (const block_q8_K *)(a + (size_t)c * a_stride),
                                    g + 1 < g1 ? gp + gbytes : NULL, gbytes));
            for (int r = lo; r < hi; r++)
                out[(size_t)c * out_stride + (size_t)(r0 + r)] = v[r];
        }
}

void repack_avx512(int type, int64_t n, const void *rp, size_t gbytes, int64_t g0, int64_t g1, int64_t row0,
                   int64_t row1, const void *a, size_t a_stride, int64_t ncols, float *out, size_t out_stride)
{
    pthread_once(&tab_once, tab_init);
    const int64_t nb = n / QK_K;
    __m512 (*const col)(int64_t, const uint8_t *, const block_q8_K *, const uint8_t *, size_t) =
        type == MS_TYPE_IQ1_M ? iq1m_group_col : type == MS_TYPE_IQ2_XXS ? iq2xxs_group_col : iq1s_group_col;
    if (ncols == 1) {
        by_column(col, nb, rp, gbytes, g0, g1, row0, row1, a, a_stride, 1, out, out_stride);
        return;
    }
    void (*const cols)(int64_t, const uint8_t *, const uint8_t *, size_t, const void *, int, float *, const uint8_t *,
                       size_t) = type == MS_TYPE_IQ1_M ? iq1m_cols : type == MS_TYPE_IQ2_XXS ? iq2xxs_cols : iq1s_cols;
    /* the columns' side, once for all groups */
    const size_t esz = type == MS_TYPE_IQ2_XXS ? sizeof(x2_col) : sizeof(mc_col);
    uint8_t *S = side_get((size_t)ncols * (size_t)nb * esz);
    if (!S) {
        by_column(col, nb, rp, gbytes, g0, g1, row0, row1, a, a_stride, ncols, out, out_stride);
        return;
    }
    for (int64_t c = 0; c < ncols; c++)
        for (int64_t b = 0; b < nb; b++) {
            const block_q8_K *y = (const block_q8_K *)((const uint8_t *)a + (size_t)c * a_stride) + b;
            const size_t i = (size_t)c * (size_t)nb + (size_t)b;
            if (type == MS_TYPE_IQ2_XXS)
                x2_col_prep(y, (x2_col *)(void *)S + i);
            else
                mc_col_prep(type == MS_TYPE_IQ1_M, y, (mc_col *)(void *)S + i);
        }
    for (int64_t g = g0; g < g1; g++) {
        const uint8_t *gp = (const uint8_t *)rp + (size_t)g * gbytes;
        const int64_t r0 = g * REPACK_ROWS;
        const int lo = (int)(row0 > r0 ? row0 - r0 : 0);
        const int hi = (int)(row1 < r0 + REPACK_ROWS ? row1 - r0 : REPACK_ROWS);
        for (int64_t c0 = 0; c0 < ncols; c0 += MC_COLS) {
            const int nc = (int)(ncols - c0 < MC_COLS ? ncols - c0 : MC_COLS);
            float v[MC_COLS * 16];
            const uint8_t *ac = (const uint8_t *)a + (size_t)c0 * a_stride, *sc = S + (size_t)c0 * (size_t)nb * esz;
            /* the next group is fetched during the first column chunk */
            const uint8_t *nx = c0 == 0 && g + 1 < g1 ? gp + gbytes : NULL;
            /* two columns tuple by tuple; three as two and one, but for
             * IQ1_M (measured in L2, ns per row and block: IQ1_S 6.9
             * against 8.1 lane by lane, IQ2_XXS 8.8 against 10.1, IQ1_M
             * 12.2 against 11.2) */
            if (nc == 2 || (nc == 3 && type != MS_TYPE_IQ1_M)) {
                (type == MS_TYPE_IQ1_S ? iq1s_2cols : type == MS_TYPE_IQ1_M ? iq1m_2cols : iq2xxs_2cols)(
                    nb, gp, ac, a_stride, sc, 2, v, nx, gbytes);
                if (nc == 3)
                    _mm512_storeu_ps(v + 32, col(nb, gp, (const block_q8_K *)(ac + 2 * a_stride), NULL, gbytes));
            }
            else
                cols(nb, gp, ac, a_stride, sc, nc, v, nx, gbytes);
            for (int c = 0; c < nc; c++) {
                float *o = out + (size_t)(c0 + c) * out_stride + (size_t)r0;
                for (int r = lo; r < hi; r++)
                    o[r] = v[16 * c + r];
            }
        }
    }
}
