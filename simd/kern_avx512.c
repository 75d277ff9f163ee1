/* kern_avx512.c - AVX-512 (F/BW/VL/DQ + VNNI + VBMI) kernels for the hot
 * types, compiled with the AVX-512 flags only in this file and chosen at run
 * time (kern_dispatch.c checks cpuid and the OS's zmm save state).
 *
 * Owns: kern_table_avx512: Q4_K, Q5_K, Q6_K, IQ1_S, IQ1_M, IQ2_XXS products,
 * Q8_K quantization, and dequantization of Q6_K, Q4_K, Q5_K, Q8_0, F16 and
 * BF16 (see the dequantization section).  Every other entry is the AVX2
 * table's (AVX2 runs on every CPU that passes the AVX-512 check).
 *
 * Bit-exact with the scalar reference (simd/quant_ref.c), whose float order
 * is the reference engine's x86 kernels' (so the golden data matches bit for
 * bit): integer sums are exact in any order, and the floats follow it:
 *  - Q5_K, Q6_K, IQ1_S, IQ1_M, IQ2_XXS: eight int32 lanes per 256-block,
 *    element e in lane (e & 31) >> 2; per lane acc = fma(d, lane, acc)
 *    across blocks; at the end hsum_float_8's tree
 *    ((a4+a0)+(a6+a2)) + ((a5+a1)+(a7+a3)).  A zmm of int32 over 64
 *    consecutive elements holds bytes 4k..4k+3 in lane k, so reference lane
 *    m = zmm lanes m and m+8 (fold8x2); float lanes hold two rows (GEMV) or
 *    two columns (multi-column IQ1_S/IQ2_XXS) per zmm.  Corrections go into the
 *    same lanes as the reference's: Q6_K's -32 as 32*(bsums*scales) of
 *    16-groups 2m, 2m+1 in lane m; the +1 of the IQ1_S/IQ1_M grid lookups as
 *    the pair sums of q8 subtracted in each int16 lane.  Scalar chains: Q5_K
 *    summs = fma(-da*dmin, msum, summs), added after the hsum; IQ1_S acc1 =
 *    fma(d, sumi1, acc1), hsum + IQ1S_DELTA*acc1; IQ1_M a second set of
 *    eight lanes for the delta term; IQ2_XXS 0.125f * hsum.
 *  - Q4_K: the reference's repacked kernels, two chains per row,
 *    A = fma(isum, d*da, A), M = fma(msum, dmin*da, M), result A - M; gemv
 *    (vec_dot, and mul_mat columns past ncols - ncols % 4) one term per
 *    block, four rows per pass with one row per float lane; gemm (mul_mat
 *    columns in fours) one term per 64-element pair of sub-blocks,
 *    q4k_gemm_cols4: one row decoded once for four columns, one column per
 *    float lane (also faster than the four-row pass per column it replaces,
 *    which reduced 16 vectors per block).
 *  - explicit FMA/mul/add intrinsics (the Makefile adds -ffp-contract=off).
 *  - Q8_K activation quantization reproduces quantize_row_q8_K_ref bit for
 *    bit (the same multiply, the same 1.5*2^23 rounding add).
 *
 * Layout tricks (all exact):
 *  - u8 x s8 products go through vpmaddubsw (pairs to s16, no saturation for
 *    these ranges: |w| <= 63, |q8| <= 127) and the per-sub-block scale is
 *    applied by vpdpwssd (VNNI) into s32 accumulators;
 *  - IQ1_S grid values {-1,0,1} are looked up with +1 added ({0,1,2}, an
 *    unsigned operand for vpmaddubsw/vpdpbusd) in the four-row GEMVs (the q8
 *    sums that take the +1 off are shared by the rows); the multi-column
 *    kernel uses |g| and a sign mask made once per block instead.  The
 *    multi-column kernel reads the 2048-entry grid with scalar loads
 *    assembled into a zmm: vpgatherqq measured no faster there on a Zen 5
 *    (3.9 GB/s either way, 7168-wide rows in L2, 1 thread) and is slow on
 *    Intel parts with the GDS microcode fix.  The IQ1_S and IQ1_M GEMVs
 *    build their indices in vectors and gather (vpgatherdq): on a Sapphire
 *    Rapids VM (GDS not reported) 1.5-1.8x the scalar-load versions;
 *  - IQ2_XXS: its 256-entry grid (values 8, 25, 43) is kept as 2-bit codes in
 *    eight zmm and looked up with vpermi2w, then expanded to bytes with
 *    vpermb/vpmultishiftqb; signs are rebuilt from the 7 stored bits plus
 *    parity (vpmultishiftqb, then vpermi2b over ksigns_iq2xs) and applied to
 *    the activation as a byte mask;
 *  - the four-row GEMV prefetches the next four rows linearly (see
 *    prefetch_group). */
#include <immintrin.h>
#include <math.h>
#include <pthread.h>
#include <string.h>

#include "kern_gemm_avx512.h"
#include "kern_isa.h"
#include "quant.h"
#include "quant_blocks.h"
#include "quant_grids.h"

#define INLINE static inline __attribute__((always_inline))

/* ---- helpers ---- */

/* Lane r of the result = sum of the int32 lanes of v[r]. */
INLINE __m128i red4_512(__m512i a, __m512i b, __m512i c, __m512i d)
{
    __m256i a2 = _mm256_add_epi32(_mm512_castsi512_si256(a), _mm512_extracti64x4_epi64(a, 1));
    __m256i b2 = _mm256_add_epi32(_mm512_castsi512_si256(b), _mm512_extracti64x4_epi64(b, 1));
    __m256i c2 = _mm256_add_epi32(_mm512_castsi512_si256(c), _mm512_extracti64x4_epi64(c, 1));
    __m256i d2 = _mm256_add_epi32(_mm512_castsi512_si256(d), _mm512_extracti64x4_epi64(d, 1));
    __m256i ab = _mm256_hadd_epi32(a2, b2), cd = _mm256_hadd_epi32(c2, d2);
    __m256i abcd = _mm256_hadd_epi32(ab, cd);
    return _mm_add_epi32(_mm256_castsi256_si128(abcd), _mm256_extracti128_si256(abcd, 1));
}

INLINE __m128i red4_256(__m256i a, __m256i b, __m256i c, __m256i d)
{
    __m256i ab = _mm256_hadd_epi32(a, b), cd = _mm256_hadd_epi32(c, d);
    __m256i abcd = _mm256_hadd_epi32(ab, cd);
    return _mm_add_epi32(_mm256_castsi256_si128(abcd), _mm256_extracti128_si256(abcd, 1));
}

/* Four halves (one per row) to floats; exact like quant_f16_to_f32. */
INLINE __m128 halves4(const uint16_t h[4])
{
    __m128i v = _mm_loadl_epi64((const __m128i *)h);
    return _mm_cvtph_ps(v);
}

/* ---- the reference's eight float lanes ----
 * A zmm of int32 filled from 64 consecutive elements holds bytes 4k..4k+3 in
 * lane k, so the reference's lane m (elements with (e & 31) >> 2 == m) is
 * lanes m and m+8 added (exact).  Float lanes keep two rows (or columns) per
 * zmm: lanes 0-7 the first, 8-15 the second. */

/* lanes 0-7: a's reference lanes, 8-15: b's */
INLINE __m512i fold8x2(__m512i a, __m512i b)
{
    return _mm512_add_epi32(_mm512_shuffle_i64x2(a, b, _MM_SHUFFLE(1, 0, 1, 0)),
                            _mm512_shuffle_i64x2(a, b, _MM_SHUFFLE(3, 2, 3, 2)));
}

/* zmm of d[2i] in lanes 0-7, d[2i+1] in lanes 8-15 (d = the low lanes of dd) */
INLINE __m512 dpair(__m512 dd, int i)
{
    return _mm512_permutexvar_ps(_mm512_inserti64x4(_mm512_set1_epi32(2 * i), _mm256_set1_epi32(2 * i + 1), 1), dd);
}

/* four rows: f[0] = rows 0,1, f[1] = rows 2,3; lane = fma(d_r, (float)lane, lane) */
INLINE void lanes_fma4(__m512 f[2], const __m512i acc[4], __m128 d)
{
    const __m512 dd = _mm512_castps128_ps512(d);
    f[0] = _mm512_fmadd_ps(dpair(dd, 0), _mm512_cvtepi32_ps(fold8x2(acc[0], acc[1])), f[0]);
    f[1] = _mm512_fmadd_ps(dpair(dd, 1), _mm512_cvtepi32_ps(fold8x2(acc[2], acc[3])), f[1]);
}

/* the reference's hsum_float_8: ((v4+v0)+(v6+v2)) + ((v5+v1)+(v7+v3)) */
static inline float hsum8(const float v[8])
{
    const float r0 = v[4] + v[0], r1 = v[5] + v[1], r2 = v[6] + v[2], r3 = v[7] + v[3];
    return (r0 + r2) + (r1 + r3);
}

INLINE __m128 hsum8x4(const __m512 f[2])
{
    float v[32];
    _mm512_storeu_ps(v, f[0]);
    _mm512_storeu_ps(v + 16, f[1]);
    return _mm_setr_ps(hsum8(v), hsum8(v + 8), hsum8(v + 16), hsum8(v + 24));
}

/* Sums of 16 vectors, in two steps (few live registers): part() leaves in
 * every 128-bit lane the partial sums of v0..v3 (lane order); join() adds
 * the four 128-bit lanes of four parts: lane 4i+j = sum of v_j of part i. */
INLINE __m512i red4x4_part(__m512i v0, __m512i v1, __m512i v2, __m512i v3)
{
    const __m512i a = _mm512_add_epi32(_mm512_unpacklo_epi32(v0, v1), _mm512_unpackhi_epi32(v0, v1));
    const __m512i b = _mm512_add_epi32(_mm512_unpacklo_epi32(v2, v3), _mm512_unpackhi_epi32(v2, v3));
    return _mm512_add_epi32(_mm512_unpacklo_epi64(a, b), _mm512_unpackhi_epi64(a, b));
}

INLINE __m512i red4x4_join(__m512i p0, __m512i p1, __m512i p2, __m512i p3)
{
    const __m512i c0 = _mm512_add_epi32(_mm512_shuffle_i32x4(p0, p1, _MM_SHUFFLE(2, 0, 2, 0)),
                                        _mm512_shuffle_i32x4(p0, p1, _MM_SHUFFLE(3, 1, 3, 1)));
    const __m512i c1 = _mm512_add_epi32(_mm512_shuffle_i32x4(p2, p3, _MM_SHUFFLE(2, 0, 2, 0)),
                                        _mm512_shuffle_i32x4(p2, p3, _MM_SHUFFLE(3, 1, 3, 1)));
    return _mm512_add_epi32(_mm512_shuffle_i32x4(c0, c1, _MM_SHUFFLE(2, 0, 2, 0)),
                            _mm512_shuffle_i32x4(c0, c1, _MM_SHUFFLE(3, 1, 3, 1)));
}

/* vpermw index: lanes [0,16) -> s, [16,32) -> s+1 (per-32 scale, 2 sub-blocks per zmm) */
INLINE __m512i idx_pair(int s)
{
    return _mm512_inserti64x4(_mm512_set1_epi16((short)s), _mm256_set1_epi16((short)(s + 1)), 1);
}

/* vpermw index: lanes [8i, 8i+8) -> s+i, i = 0..3 (per-16 scale) */
INLINE __m512i idx_quad(int s)
{
    return _mm512_inserti64x4(
        _mm512_castsi256_si512(_mm256_inserti128_si256(_mm256_castsi128_si256(_mm_set1_epi16((short)s)),
                                                       _mm_set1_epi16((short)(s + 1)), 1)),
        _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_set1_epi16((short)(s + 2))),
                                _mm_set1_epi16((short)(s + 3)), 1),
        1);
}

/* Software prefetch of the next group of four rows, read linearly (at block
 * b, its b-th slice of 4*ws/nb bytes): four interleaved row streams left the
 * hardware prefetcher at a fraction of the in-cache speed from DRAM (Q4_K
 * 7 GB/s vs 16 in L2 at 1 thread on this Zen 5; with this, 15.7).  Rows are
 * dense (ws = nb * block bytes) in every caller; if not, a prefetch is only
 * a wasted hint. */
INLINE void prefetch_group(const uint8_t *w, size_t ws, int64_t nb, int64_t b)
{
    const size_t chunk = 4 * ws / (size_t)nb;
    const char *p = (const char *)w + 4 * ws + (size_t)b * chunk;
    for (size_t o = 0; o < chunk; o += 64)
        _mm_prefetch(p + o, _MM_HINT_T0);
}

/* The block at p of the next row (ws bytes on), for the kernels that take
 * one row against several columns: the hardware prefetcher does not run
 * far enough ahead of their work (measured, Q6_K 18432 x 7168 against four
 * columns, one core: 5.4 ms with it, 11.1 without).  Past a matrix's last
 * row it touches nothing: prefetches do not fault. */
INLINE void prefetch_next_row(const void *p, size_t ws, size_t bytes)
{
    for (size_t o = 0; o < bytes; o += 64)
        _mm_prefetch((const char *)p + ws + o, _MM_HINT_T0);
}

/* ---- Q8_K / Q8_0 activation quantization ---- */

static void quant_q8_k(const float *x, void *dst, int64_t n)
{
    block_q8_K *y = dst;
    const __m512 absmask = _mm512_castsi512_ps(_mm512_set1_epi32(0x7fffffff));
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        __m512 m = _mm512_setzero_ps();
        for (int j = 0; j < QK_K; j += 16)
            m = _mm512_max_ps(m, _mm512_and_ps(_mm512_loadu_ps(x + j), absmask));
        const float amax = _mm512_reduce_max_ps(m);
        if (!(amax > 0.0f)) { /* all zero (the reference's !amax) */
            memset(&y[i], 0, sizeof y[i]);
            continue;
        }
        /* the reference keeps the first element whose |x| is the largest */
        float max = 0.0f;
        const __m512 vam = _mm512_set1_ps(amax);
        for (int j = 0; j < QK_K; j += 16) {
            __mmask16 k = _mm512_cmp_ps_mask(_mm512_and_ps(_mm512_loadu_ps(x + j), absmask), vam,
                                             _CMP_EQ_OQ);
            if (k) {
                max = x[j + __builtin_ctz(k)];
                break;
            }
        }
        const float iscale = -127.f / max;
        const __m512 vs = _mm512_set1_ps(iscale), magic = _mm512_set1_ps(12582912.f);
        const __m512i mant = _mm512_set1_epi32(0x007fffff), off = _mm512_set1_epi32(0x00400000),
                      lim = _mm512_set1_epi32(127);
        for (int j = 0; j < QK_K; j += 16) {
            __m512 v = _mm512_add_ps(_mm512_mul_ps(vs, _mm512_loadu_ps(x + j)), magic);
            __m512i q = _mm512_sub_epi32(_mm512_and_si512(_mm512_castps_si512(v), mant), off);
            q = _mm512_min_epi32(q, lim);
            _mm_storeu_si128((__m128i *)(y[i].qs + j), _mm512_cvtepi32_epi8(q));
            y[i].bsums[j / 16] = (int16_t)_mm512_reduce_add_epi32(q);
        }
        y[i].d = 1 / iscale;
    }
}

/* ---- Q4_K / Q5_K ---- */

/* 12 packed bytes -> scales[0..7] (bytes 0-7), mins[0..7] (bytes 8-15),
 * the same values as get_scale_min_k4 */
INLINE __m128i k4_scales(const uint8_t *p)
{
    uint32_t u[4];
    quant_k4_scales(p, u);
    return _mm_loadu_si128((const __m128i *)u);
}

/* What the 256-block's integers go into: Q4_K's two per-row scalar chains in
 * the reference's gemv order (one term per block; the gemm order is
 * q4k_gemm_cols4), or Q5_K's eight lanes plus its scalar mins chain. */
enum { Q4K_GEMV, Q5K };

INLINE __m128 dot_q45k_rows(const int mode, const int nr, int64_t nb, const uint8_t *w, size_t ws,
                            const block_q8_K *y)
{
    const int five = mode == Q5K, bs = five ? (int)sizeof(block_q5_K) : (int)sizeof(block_q4_K), qoff = five ? 48 : 16;
    const __m512i m4 = _mm512_set1_epi8(0x0F), p16 = _mm512_set1_epi8(16);
    const __m512i ix0 = idx_pair(0), ix1 = idx_pair(2), ix2 = idx_pair(4), ix3 = idx_pair(6);
    const __m256i idup = _mm256_setr_epi16(8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13, 14, 14, 15, 15);
    __m128 A = _mm_setzero_ps(), M = _mm_setzero_ps(); /* Q4_K: isum, msum chains; Q5_K: M = summs */
    __m512 f[2] = {_mm512_setzero_ps(), _mm512_setzero_ps()}; /* Q5_K lanes */
    for (int64_t b = 0; b < nb; b++) {
        if (nr == 4)
            prefetch_group(w, ws, nb, b);
        const int8_t *q8 = y[b].qs;
        const __m512i y0 = _mm512_loadu_si512(q8), y1 = _mm512_loadu_si512(q8 + 64),
                      y2 = _mm512_loadu_si512(q8 + 128), y3 = _mm512_loadu_si512(q8 + 192);
        const __m256i bsums = _mm256_loadu_si256((const __m256i *)y[b].bsums);
        __m512i acc[4];
        __m256i macc[4];
        uint16_t dh[4] = {0, 0, 0, 0}, mh[4] = {0, 0, 0, 0};
        for (int r = 0; r < 4; r++) {
            acc[r] = _mm512_setzero_si512();
            macc[r] = _mm256_setzero_si256();
            if (r >= nr)
                continue;
            const uint8_t *blk = w + (size_t)r * ws + (size_t)b * (size_t)bs;
            memcpy(&dh[r], blk, 2);
            memcpy(&mh[r], blk + 2, 2);
            const __m128i sm = k4_scales(blk + 4);
            const __m512i sc = _mm512_castsi256_si512(_mm256_cvtepu8_epi16(sm)); /* sc 0-7, m 8-15 */
            /* lane j = m_j * (bsums 2j + 2j+1) */
            macc[r] = _mm256_madd_epi16(bsums, _mm256_permutexvar_epi16(idup, _mm512_castsi512_si256(sc)));
            const __m512i qa = _mm512_loadu_si512(blk + qoff), qb = _mm512_loadu_si512(blk + qoff + 64);
            __m512i la = _mm512_and_si512(qa, m4), ha = _mm512_and_si512(_mm512_srli_epi16(qa, 4), m4);
            __m512i lb = _mm512_and_si512(qb, m4), hb = _mm512_and_si512(_mm512_srli_epi16(qb, 4), m4);
            /* elements 0-63 = chunk 0 (lo, hi), 64-127 = chunk 1, ... */
            __m512i w0 = _mm512_shuffle_i64x2(la, ha, _MM_SHUFFLE(1, 0, 1, 0));
            __m512i w1 = _mm512_shuffle_i64x2(la, ha, _MM_SHUFFLE(3, 2, 3, 2));
            __m512i w2 = _mm512_shuffle_i64x2(lb, hb, _MM_SHUFFLE(1, 0, 1, 0));
            __m512i w3 = _mm512_shuffle_i64x2(lb, hb, _MM_SHUFFLE(3, 2, 3, 2));
            if (five) {
                /* 5th bit of element l of sub-block j is bit j of qh[l] */
                const __m512i hh = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(blk + 16)));
                const __m512i b01 = _mm512_inserti64x4(_mm512_set1_epi8(1), _mm256_set1_epi8(2), 1);
                w0 = _mm512_mask_add_epi8(w0, _mm512_test_epi8_mask(hh, b01), w0, p16);
                w1 = _mm512_mask_add_epi8(w1, _mm512_test_epi8_mask(hh, _mm512_slli_epi16(b01, 2)), w1, p16);
                w2 = _mm512_mask_add_epi8(w2, _mm512_test_epi8_mask(hh, _mm512_slli_epi16(b01, 4)), w2, p16);
                w3 = _mm512_mask_add_epi8(w3, _mm512_test_epi8_mask(hh, _mm512_slli_epi16(b01, 6)), w3, p16);
            }
            __m512i a = acc[r];
            a = _mm512_dpwssd_epi32(a, _mm512_maddubs_epi16(w0, y0), _mm512_permutexvar_epi16(ix0, sc));
            a = _mm512_dpwssd_epi32(a, _mm512_maddubs_epi16(w1, y1), _mm512_permutexvar_epi16(ix1, sc));
            a = _mm512_dpwssd_epi32(a, _mm512_maddubs_epi16(w2, y2), _mm512_permutexvar_epi16(ix2, sc));
            a = _mm512_dpwssd_epi32(a, _mm512_maddubs_epi16(w3, y3), _mm512_permutexvar_epi16(ix3, sc));
            acc[r] = a;
        }
        const __m128 yd = _mm_set1_ps(y[b].d);
        const __m128 d = _mm_mul_ps(yd, halves4(dh)), dmin = _mm_mul_ps(yd, halves4(mh));
        if (mode == Q4K_GEMV) {
            /* A = fma(isum, d*da, A), M = fma(msum, dmin*da, M) */
            A = _mm_fmadd_ps(_mm_cvtepi32_ps(red4_512(acc[0], acc[1], acc[2], acc[3])), d, A);
            M = _mm_fmadd_ps(_mm_cvtepi32_ps(red4_256(macc[0], macc[1], macc[2], macc[3])), dmin, M);
        } else {
            /* summs = fma(-da*dmin, msum, summs); lanes = fma(d*da, lane, lanes) */
            const __m128 ndmin = _mm_xor_ps(dmin, _mm_set1_ps(-0.0f));
            M = _mm_fmadd_ps(ndmin, _mm_cvtepi32_ps(red4_256(macc[0], macc[1], macc[2], macc[3])), M);
            lanes_fma4(f, acc, d);
        }
    }
    return five ? _mm_add_ps(hsum8x4(f), M) : _mm_sub_ps(A, M);
}

/* One Q4_K (or Q5_K: five) block decoded for products against several
 * columns: the halves dh (d) and mh (dmin), the 256 quants as four
 * 64-element vectors (pair p of sub-blocks in wq[p]), their scales spread
 * per 16-bit lane (scp[p]), and the mins duplicated per bsums pair (mdup). */
INLINE void k45_block(const uint8_t *blk, const int five, uint16_t *dh, uint16_t *mh, __m512i wq[4],
                      __m512i scp[4], __m256i *mdup)
{
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    const __m256i idup = _mm256_setr_epi16(8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13, 14, 14, 15, 15);
    memcpy(dh, blk, 2);
    memcpy(mh, blk + 2, 2);
    const __m512i sc = _mm512_castsi256_si512(_mm256_cvtepu8_epi16(k4_scales(blk + 4)));
    *mdup = _mm256_permutexvar_epi16(idup, _mm512_castsi512_si256(sc));
    const int qoff = five ? 48 : 16;
    const __m512i qa = _mm512_loadu_si512(blk + qoff), qb = _mm512_loadu_si512(blk + qoff + 64);
    const __m512i la = _mm512_and_si512(qa, m4), ha = _mm512_and_si512(_mm512_srli_epi16(qa, 4), m4);
    const __m512i lb = _mm512_and_si512(qb, m4), hb = _mm512_and_si512(_mm512_srli_epi16(qb, 4), m4);
    wq[0] = _mm512_shuffle_i64x2(la, ha, _MM_SHUFFLE(1, 0, 1, 0));
    wq[1] = _mm512_shuffle_i64x2(la, ha, _MM_SHUFFLE(3, 2, 3, 2));
    wq[2] = _mm512_shuffle_i64x2(lb, hb, _MM_SHUFFLE(1, 0, 1, 0));
    wq[3] = _mm512_shuffle_i64x2(lb, hb, _MM_SHUFFLE(3, 2, 3, 2));
    if (five) { /* as dot_q45k_rows: bit j of qh[l] is element l of sub-block j's 5th bit */
        const __m512i p16 = _mm512_set1_epi8(16);
        const __m512i hh = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(blk + 16)));
        const __m512i b01 = _mm512_inserti64x4(_mm512_set1_epi8(1), _mm256_set1_epi8(2), 1);
#pragma GCC unroll 4
        for (int p = 0; p < 4; p++)
            wq[p] = _mm512_mask_add_epi8(wq[p], _mm512_test_epi8_mask(hh, _mm512_slli_epi16(b01, 2 * p)), wq[p], p16);
    }
#pragma GCC unroll 4
    for (int p = 0; p < 4; p++)
        scp[p] = _mm512_permutexvar_epi16(idx_pair(2 * p), sc);
}

/* A Q4_K (five: Q5_K) block decoded once and its exact integer sums
 * against four columns (block b of each): acc[c] the scaled quant products
 * (int32 lanes, dot_q45k_rows' lanes), macc[c] the mins times the bsums
 * pairs, yd[c] the column's d; dh and mh the block's halves. */
INLINE void k45_block_cols4(const uint8_t *blk, const int five, size_t ws, const uint8_t *const yc[4], int64_t b,
                            uint16_t *dh, uint16_t *mh, __m512i acc[4], __m256i macc[4], float yd[4])
{
    prefetch_next_row(blk, ws, five ? sizeof(block_q5_K) : sizeof(block_q4_K));
    __m512i wq[4], scp[4];
    __m256i mdup;
    k45_block(blk, five, dh, mh, wq, scp, &mdup);
#pragma GCC unroll 4
    for (int c = 0; c < 4; c++) {
        const block_q8_K *y = (const block_q8_K *)yc[c] + b;
        yd[c] = y->d;
        macc[c] = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)y->bsums), mdup);
        __m512i a = _mm512_setzero_si512();
#pragma GCC unroll 4
        for (int p = 0; p < 4; p++)
            a = _mm512_dpwssd_epi32(a, _mm512_maddubs_epi16(wq[p], _mm512_loadu_si512(y->qs + 64 * p)), scp[p]);
        acc[c] = a;
    }
}

/* Q5_K, one weight row against four columns: each block decoded once for
 * the four, column c in the float lanes dot_q45k_rows keeps for row c (its
 * eight lanes, its mins chain, the same final sum), so every column has its
 * lone-column bits whatever the column count. */
static void q5k_cols4(int64_t nb, const uint8_t *wrow, const uint8_t *const yc[4], float out[4])
{
    __m512 f[2] = {_mm512_setzero_ps(), _mm512_setzero_ps()};
    __m128 M = _mm_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        uint16_t dh, mh;
        __m512i acc[4];
        __m256i macc[4];
        float yd[4];
        k45_block_cols4(wrow + (size_t)b * sizeof(block_q5_K), 1, (size_t)nb * sizeof(block_q5_K), yc, b, &dh,
                        &mh, acc, macc, yd);
        const __m128 ydv = _mm_loadu_ps(yd);
        const __m128 d = _mm_mul_ps(ydv, _mm_set1_ps(_cvtsh_ss(dh)));
        const __m128 ndmin = _mm_xor_ps(_mm_mul_ps(ydv, _mm_set1_ps(_cvtsh_ss(mh))), _mm_set1_ps(-0.0f));
        M = _mm_fmadd_ps(ndmin, _mm_cvtepi32_ps(red4_256(macc[0], macc[1], macc[2], macc[3])), M);
        lanes_fma4(f, acc, d);
    }
    _mm_storeu_ps(out, _mm_add_ps(hsum8x4(f), M));
}

/* Q4_K in the reference's gemm order (columns in fours): one weight row
 * against four columns, each 256-block decoded once for the four.  Two
 * chains per column, one term per 64-element pair p of sub-blocks:
 * A = fma(isum_p, d*da, A), M = fma(msum_p, dmin*da, M); out = A - M.  A
 * 4-row pass per column (the GEMV kernel) would decode each block once per
 * column and reduce 16 vectors per row group. */
static void q4k_gemm_cols4(int64_t nb, const uint8_t *wrow, const uint8_t *const yc[4], float out[4])
{
    /* to lane 4p+c (pair p, column c): from the isum join (lane 4c+p) and
     * from the two msum hadds */
    const __m512i iisum = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    const __m512i imsum = _mm512_setr_epi32(0, 2, 8, 10, 1, 3, 9, 11, 4, 6, 12, 14, 5, 7, 13, 15);
    __m128 A = _mm_setzero_ps(), M = _mm_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        uint16_t dh, mh;
        __m512i wq[4], scp[4];
        __m256i mdup;
        k45_block(wrow + (size_t)b * sizeof(block_q4_K), 0, &dh, &mh, wq, scp, &mdup);
        __m512i part[4];
        __m256i macc[4];
        float yd[4];
#pragma GCC unroll 4
        for (int c = 0; c < 4; c++) {
            const block_q8_K *y = (const block_q8_K *)yc[c] + b;
            yd[c] = y->d;
            macc[c] = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)y->bsums), mdup);
            __m512i P[4];
#pragma GCC unroll 4
            for (int p = 0; p < 4; p++)
                P[p] = _mm512_madd_epi16(_mm512_maddubs_epi16(wq[p], _mm512_loadu_si512(y->qs + 64 * p)), scp[p]);
            part[c] = red4x4_part(P[0], P[1], P[2], P[3]);
        }
        const __m512 is = _mm512_cvtepi32_ps(
            _mm512_permutexvar_epi32(iisum, red4x4_join(part[0], part[1], part[2], part[3])));
        const __m256i h01 = _mm256_hadd_epi32(macc[0], macc[1]), h23 = _mm256_hadd_epi32(macc[2], macc[3]);
        const __m512 ms = _mm512_cvtepi32_ps(
            _mm512_permutexvar_epi32(imsum, _mm512_inserti64x4(_mm512_castsi256_si512(h01), h23, 1)));
        const __m128 ydv = _mm_loadu_ps(yd);
        const __m128 d = _mm_mul_ps(_mm_set1_ps(_cvtsh_ss(dh)), ydv);
        const __m128 dmin = _mm_mul_ps(_mm_set1_ps(_cvtsh_ss(mh)), ydv);
        A = _mm_fmadd_ps(_mm512_castps512_ps128(is), d, A);
        M = _mm_fmadd_ps(_mm512_castps512_ps128(ms), dmin, M);
        A = _mm_fmadd_ps(_mm512_extractf32x4_ps(is, 1), d, A);
        M = _mm_fmadd_ps(_mm512_extractf32x4_ps(ms, 1), dmin, M);
        A = _mm_fmadd_ps(_mm512_extractf32x4_ps(is, 2), d, A);
        M = _mm_fmadd_ps(_mm512_extractf32x4_ps(ms, 2), dmin, M);
        A = _mm_fmadd_ps(_mm512_extractf32x4_ps(is, 3), d, A);
        M = _mm_fmadd_ps(_mm512_extractf32x4_ps(ms, 3), dmin, M);
    }
    _mm_storeu_ps(out, _mm_sub_ps(A, M));
}

/* Q4_K in the reference's gemv order (one term per block per chain, as
 * dot_q45k_rows) for one weight row against four columns: the block is
 * decoded once and its integer sums taken per column, which are exact, so
 * lane c ends with column c's lone-column bits.  The decode rows of several
 * sequences share a step this way (mm_mul_cols1_q). */
static void q4k_gemv_cols4(int64_t nb, const uint8_t *wrow, const uint8_t *const yc[4], float out[4])
{
    __m128 A = _mm_setzero_ps(), M = _mm_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        uint16_t dh, mh;
        __m512i acc[4];
        __m256i macc[4];
        float yd[4];
        k45_block_cols4(wrow + (size_t)b * sizeof(block_q4_K), 0, (size_t)nb * sizeof(block_q4_K), yc, b, &dh,
                        &mh, acc, macc, yd);
        const __m128 ydv = _mm_loadu_ps(yd);
        const __m128 d = _mm_mul_ps(ydv, _mm_set1_ps(_cvtsh_ss(dh)));
        const __m128 dmin = _mm_mul_ps(ydv, _mm_set1_ps(_cvtsh_ss(mh)));
        A = _mm_fmadd_ps(_mm_cvtepi32_ps(red4_512(acc[0], acc[1], acc[2], acc[3])), d, A);
        M = _mm_fmadd_ps(_mm_cvtepi32_ps(red4_256(macc[0], macc[1], macc[2], macc[3])), dmin, M);
    }
    _mm_storeu_ps(out, _mm_sub_ps(A, M));
}

/* ---- Q6_K ---- */

INLINE __m128 dot_q6k_rows(const int nr, int64_t nb, const uint8_t *w, size_t ws, const block_q8_K *y)
{
    const __m512i m4 = _mm512_set1_epi8(0x0F), m3 = _mm512_set1_epi8(3);
    const __m512i ix0 = idx_quad(0), ix1 = idx_quad(4), ix2 = idx_quad(8), ix3 = idx_quad(12);
    __m512 f[2] = {_mm512_setzero_ps(), _mm512_setzero_ps()};
    for (int64_t b = 0; b < nb; b++) {
        if (nr == 4)
            prefetch_group(w, ws, nb, b);
        const int8_t *q8 = y[b].qs;
        const __m512i y0 = _mm512_loadu_si512(q8), y1 = _mm512_loadu_si512(q8 + 64),
                      y2 = _mm512_loadu_si512(q8 + 128), y3 = _mm512_loadu_si512(q8 + 192);
        const __m256i bsums = _mm256_loadu_si256((const __m256i *)y[b].bsums);
        __m512i acc[4];
        uint16_t dh[4] = {0, 0, 0, 0};
        for (int r = 0; r < 4; r++) {
            acc[r] = _mm512_setzero_si512();
            if (r >= nr)
                continue;
            const block_q6_K *x = (const block_q6_K *)(w + (size_t)r * ws) + b;
            dh[r] = x->d;
            const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)x->scales));
            const __m512i sc = _mm512_castsi256_si512(sc16);
            /* the -32 offset, per reference lane m: 32 * (sc_2m * bsums_2m +
             * sc_2m+1 * bsums_2m+1), in zmm lanes 0-7 */
            __m256i corr = _mm256_slli_epi32(_mm256_madd_epi16(sc16, bsums), 5);
            __m512i a = _mm512_zextsi256_si512(_mm256_sub_epi32(_mm256_setzero_si256(), corr));
            for (int h = 0; h < 2; h++) {
                const __m512i L = _mm512_loadu_si512(x->ql + 64 * h);
                const __m256i H = _mm256_loadu_si256((const __m256i *)(x->qh + 32 * h));
                const __m512i HH = _mm512_inserti64x4(_mm512_castsi256_si512(H), _mm256_srli_epi16(H, 2), 1);
                const __m512i wlo = _mm512_or_si512(_mm512_and_si512(L, m4),
                                                    _mm512_slli_epi16(_mm512_and_si512(HH, m3), 4));
                const __m512i whi = _mm512_or_si512(
                    _mm512_and_si512(_mm512_srli_epi16(L, 4), m4),
                    _mm512_slli_epi16(_mm512_and_si512(_mm512_srli_epi16(HH, 4), m3), 4));
                a = _mm512_dpwssd_epi32(a, _mm512_maddubs_epi16(wlo, h ? y2 : y0),
                                        _mm512_permutexvar_epi16(h ? ix2 : ix0, sc));
                a = _mm512_dpwssd_epi32(a, _mm512_maddubs_epi16(whi, h ? y3 : y1),
                                        _mm512_permutexvar_epi16(h ? ix3 : ix1, sc));
            }
            acc[r] = a;
        }
        lanes_fma4(f, acc, _mm_mul_ps(_mm_set1_ps(y[b].d), halves4(dh)));
    }
    return hsum8x4(f);
}

/* Q6_K, one weight row against four columns: each block decoded once for
 * the four, column c in float lanes as dot_q6k_rows keeps row c (the same
 * integer lanes, the same fma per block, the same final sum), so every
 * column has its lone-column bits whatever the column count.  The -32
 * offset is one vpdpwssd of the block's scales times -32 against the
 * column's bsums: the same integers as dot_q6k_rows' madd and shift. */
static void q6k_cols4(int64_t nb, const uint8_t *wrow, const uint8_t *const yc[4], float out[4])
{
    const __m512i m4 = _mm512_set1_epi8(0x0F), m3 = _mm512_set1_epi8(3);
    const __m512i ix[4] = {idx_quad(0), idx_quad(4), idx_quad(8), idx_quad(12)};
    __m512 f[2] = {_mm512_setzero_ps(), _mm512_setzero_ps()};
    for (int64_t b = 0; b < nb; b++) {
        const block_q6_K *x = (const block_q6_K *)wrow + b;
        prefetch_next_row(x, (size_t)nb * sizeof *x, sizeof *x);
        const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)x->scales));
        const __m256i scm32 = _mm256_slli_epi16(_mm256_sub_epi16(_mm256_setzero_si256(), sc16), 5);
        const __m512i sc = _mm512_castsi256_si512(sc16);
        __m512i wq[4], scp[4];
#pragma GCC unroll 2
        for (int h = 0; h < 2; h++) {
            const __m512i L = _mm512_loadu_si512(x->ql + 64 * h);
            const __m256i H = _mm256_loadu_si256((const __m256i *)(x->qh + 32 * h));
            const __m512i HH = _mm512_inserti64x4(_mm512_castsi256_si512(H), _mm256_srli_epi16(H, 2), 1);
            wq[2 * h] = _mm512_or_si512(_mm512_and_si512(L, m4), _mm512_slli_epi16(_mm512_and_si512(HH, m3), 4));
            wq[2 * h + 1] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(L, 4), m4),
                                            _mm512_slli_epi16(_mm512_and_si512(_mm512_srli_epi16(HH, 4), m3), 4));
        }
#pragma GCC unroll 4
        for (int p = 0; p < 4; p++)
            scp[p] = _mm512_permutexvar_epi16(ix[p], sc);
        __m512i acc[4];
        float yd[4];
#pragma GCC unroll 4
        for (int c = 0; c < 4; c++) {
            const block_q8_K *y = (const block_q8_K *)yc[c] + b;
            yd[c] = y->d;
            __m512i a = _mm512_zextsi256_si512(
                _mm256_dpwssd_epi32(_mm256_setzero_si256(), scm32, _mm256_loadu_si256((const __m256i *)y->bsums)));
            /* dot_q6k_rows' order of the four products: lo h0, hi h0, lo h1, hi h1
             * (integers: any order gives the same sum) */
#pragma GCC unroll 4
            for (int p = 0; p < 4; p++)
                a = _mm512_dpwssd_epi32(a, _mm512_maddubs_epi16(wq[p], _mm512_loadu_si512(y->qs + 64 * p)), scp[p]);
            acc[c] = a;
        }
        lanes_fma4(f, acc, _mm_mul_ps(_mm_loadu_ps(yd), _mm_set1_ps(_cvtsh_ss(x->d))));
    }
    _mm_storeu_ps(out, hsum8x4(f));
}

/* ---- IQ1_S ---- */

static uint64_t iq1s_grid_p1[2048]; /* iq1s_grid with 1 added to every byte: {0,1,2} */
/* iq2xxs_grid as 2-bit codes (bytes 8, 25, 43 -> 0, 1, 2), value j in bits
 * 2j..2j+1: the 256-entry grid fits in eight zmm and is looked up with
 * vpermi2w instead of 32 scalar loads per block */
static uint16_t iq2xxs_code[256];
static pthread_once_t grids_once = PTHREAD_ONCE_INIT;
static void grids_init(void)
{
    for (int i = 0; i < 256; i++) {
        uint16_t code = 0;
        for (int j = 0; j < 8; j++) {
            const uint8_t v = (uint8_t)(iq2xxs_grid[i] >> (8 * j));
            code |= (uint16_t)((v == 8 ? 0 : v == 25 ? 1 : 2) << (2 * j));
        }
        iq2xxs_code[i] = code;
    }
    for (int i = 0; i < 2048; i++) {
        uint8_t b[8];
        memcpy(b, &iq1s_grid[i], 8);
        for (int j = 0; j < 8; j++)
            b[j] = (uint8_t)((int8_t)b[j] + 1);
        memcpy(&iq1s_grid_p1[i], b, 8);
    }
}

/* Four rows per pass (nr = 1: row 0 stands in for the other three, whose
 * results are dropped).  Per block: the grid indices are built in vectors
 * (qs | 3 bits of qh << 8, one per dword) and looked up with vpgatherdq;
 * each 64-element chunk k is one vpdpbusd of the {0,1,2} grid bytes into a
 * start of minus the 4-element q8 sums (so the exact sums of 4 products per
 * int32 lane, |s| <= 508), times ls per sub-block as (ls, 0) word pairs in
 * vpdpwssd.  ls and the delta term are made for the four rows at once from
 * one zmm of their qh words (word 8r + sub-block). */
INLINE __m128 dot_iq1s_rows(const int nr, int64_t nb, const uint8_t *w, size_t ws, const block_q8_K *y)
{
    const long long *grid = (const long long *)iq1s_grid_p1;
    const __m512i ones = _mm512_set1_epi8(1);
    /* vpermw: both words of dword l <- qh word 4h + l/4; vprold by 8 - 3j
     * (mod 32) brings bits 3j..3j+2 of the low word to bits 8..10 */
    __m512i iqh0, iqh1, ils[2][4];
    {
        int16_t t[2][32];
        int32_t u[16];
        for (int l = 0; l < 32; l++) {
            t[0][l] = (int16_t)(l / 8);
            t[1][l] = (int16_t)(4 + l / 8);
        }
        iqh0 = _mm512_loadu_si512(t[0]);
        iqh1 = _mm512_loadu_si512(t[1]);
        /* vpermd over the dword ls of two rows (lane 8q + sub-block):
         * lanes 0-7 <- sub-block 2k of row q, 8-15 <- 2k + 1 */
        for (int q = 0; q < 2; q++)
            for (int k = 0; k < 4; k++) {
                for (int l = 0; l < 16; l++)
                    u[l] = 8 * q + 2 * k + l / 8;
                ils[q][k] = _mm512_loadu_si512(u);
            }
    }
    const __m512i rot = _mm512_set_epi32(31, 2, 5, 8, 31, 2, 5, 8, 31, 2, 5, 8, 31, 2, 5, 8);
    const __m512i m700 = _mm512_set1_epi32(0x700);
    const __m512i sel4 = _mm512_castsi128_si512(_mm_setr_epi32(0, 4, 8, 12));
    __m512 f[2] = {_mm512_setzero_ps(), _mm512_setzero_ps()};
    __m128 f1 = _mm_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        if (nr == 4)
            prefetch_group(w, ws, nb, b);
        const int8_t *q8 = y[b].qs;
        const __m512i yv[4] = {_mm512_loadu_si512(q8), _mm512_loadu_si512(q8 + 64),
                               _mm512_loadu_si512(q8 + 128), _mm512_loadu_si512(q8 + 192)};
        /* minus the sums of 4 q8 per int32 lane: the +1 of the lookups,
         * taken off in the same lane (so in the same reference lane) as the
         * start value of each row's vpdpbusd */
        const __m512i z = _mm512_setzero_si512();
        const __m512i nq[4] = {_mm512_sub_epi32(z, _mm512_dpbusd_epi32(z, ones, yv[0])),
                               _mm512_sub_epi32(z, _mm512_dpbusd_epi32(z, ones, yv[1])),
                               _mm512_sub_epi32(z, _mm512_dpbusd_epi32(z, ones, yv[2])),
                               _mm512_sub_epi32(z, _mm512_dpbusd_epi32(z, ones, yv[3]))};
        /* q8 sums per sub-block (|.| <= 32 * 127) as words, once per row */
        const __m256i bs32 = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)y[b].bsums), _mm256_set1_epi16(1));
        const __m512i bs4 = _mm512_broadcast_i32x4(_mm256_cvtepi32_epi16(bs32));
        const block_iq1_s *x[4];
        for (int r = 0; r < 4; r++)
            x[r] = (const block_iq1_s *)(w + (size_t)(r < nr ? r : 0) * ws) + b;
        const __m512i qh4 = _mm512_inserti64x4(
            _mm512_castsi256_si512(_mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)x[0]->qh)),
                                                           _mm_loadu_si128((const __m128i *)x[1]->qh), 1)),
            _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)x[2]->qh)),
                                    _mm_loadu_si128((const __m128i *)x[3]->qh), 1),
            1);
        /* ls = 2 * ((h >> 12) & 7) + 1 = ((h >> 11) & 14) | 1; the delta's sign is bit 15 */
        const __m512i ls4 = _mm512_ternarylogic_epi32(_mm512_srli_epi16(qh4, 11), _mm512_set1_epi16(14),
                                                      _mm512_set1_epi16(1), 0xea);
        const __m512i lss = _mm512_mask_sub_epi16(ls4, _mm512_movepi16_mask(qh4), z, ls4);
        /* ls * delta * sum(q8): int32 lane 4r + i of row r, summed per row */
        __m512i ds = _mm512_madd_epi16(lss, bs4);
        ds = _mm512_add_epi32(ds, _mm512_shuffle_epi32(ds, _MM_PERM_BADC));
        ds = _mm512_add_epi32(ds, _mm512_shuffle_epi32(ds, _MM_PERM_CDAB));
        const __m128i sumi1 = _mm512_castsi512_si128(_mm512_permutexvar_epi32(sel4, ds));
        const __m512i lsd[2] = {_mm512_cvtepu16_epi32(_mm512_castsi512_si256(ls4)),
                                _mm512_cvtepu16_epi32(_mm512_extracti64x4_epi64(ls4, 1))};
        __m512i acc[4];
        uint16_t dh[4];
#pragma GCC unroll 4
        for (int r = 0; r < 4; r++) {
            dh[r] = x[r]->d;
            const __m128i qh = _mm_loadu_si128((const __m128i *)x[r]->qh);
            __m512i a = _mm512_setzero_si512();
            for (int h = 0; h < 2; h++) {
                /* grid indices of groups 16h..16h+15, one per dword:
                 * qs | ((qh[ib] >> 3j) & 7) << 8 (j = group % 4) */
                const __m512i q32 = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(x[r]->qs + 16 * h)));
                const __m512i hw = _mm512_permutexvar_epi16(h ? iqh1 : iqh0, _mm512_castsi128_si512(qh));
                const __m512i gi = _mm512_ternarylogic_epi32(q32, _mm512_rolv_epi32(hw, rot), m700, 0xf8);
                for (int t = 0; t < 2; t++) {
                    const int k = 2 * h + t;
                    const __m512i g = _mm512_i32gather_epi64(t ? _mm512_extracti64x4_epi64(gi, 1) : _mm512_castsi512_si256(gi),
                                                             grid, 8);
                    const __m512i gs = _mm512_dpbusd_epi32(nq[k], g, yv[k]);
                    a = _mm512_dpwssd_epi32(a, gs, _mm512_permutexvar_epi32(ils[r & 1][k], lsd[r >> 1]));
                }
            }
            acc[r] = a;
        }
        const __m128 d = _mm_mul_ps(halves4(dh), _mm_set1_ps(y[b].d));
        /* lanes = fma(d, lane, lanes); acc1 = fma(d, sumi1, acc1) */
        lanes_fma4(f, acc, d);
        f1 = _mm_fmadd_ps(d, _mm_cvtepi32_ps(sumi1), f1);
    }
    return _mm_add_ps(hsum8x4(f), _mm_mul_ps(_mm_set1_ps(IQ1S_DELTA), f1));
}

/* ---- IQ1_M ----
 * Like IQ1_S (the same grid, +1 lookups), with a 3-bit scale per 16 and a
 * delta sign per 8.  Grid and delta terms each go into their own eight
 * reference lanes.  The grid lookups are gathered and summed like IQ1_S's
 * (vpdpbusd into minus the 4-element q8 sums, then (ls, 0) pairs); the delta lanes are per-lane q8 sums (made once per block for
 * the four rows) times the +-scale of their group, two vpdpwssd per row. */

INLINE __m128 dot_iq1m_rows(const int nr, int64_t nb, const uint8_t *w, size_t ws, const block_q8_K *y)
{
    const __m512i ix[4] = {idx_quad(0), idx_quad(4), idx_quad(8), idx_quad(12)};
    /* scale j (per 16) = bits 3*(j%4).. of 16-bit word j/4 */
    const __m256i iw = _mm256_setr_epi16(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
    const __m256i sh = _mm256_setr_epi16(0, 3, 6, 9, 0, 3, 6, 9, 0, 3, 6, 9, 0, 3, 6, 9);
    /* lanes g (0..31) -> scale g/2 */
    const __m512i ihalf = _mm512_set_epi16(15, 15, 14, 14, 13, 13, 12, 12, 11, 11, 10, 10, 9, 9, 8, 8, 7, 7, 6, 6, 5, 5,
                                           4, 4, 3, 3, 2, 2, 1, 1, 0, 0);
    /* Delta lanes from S[ib][m] = sum of the 4 q8 of sub-block ib in
     * reference lane m (vpdpbusd with ones: int32 lane j of chunk k is
     * S[2k + j/8][j%8]), packed as int16 pairs: Z_h word 2j+t = S[ib][j%8]
     * with ib = 4h + 2(j/8) + t, so vpdpwssd leaves lane m in int32 lanes m
     * and m+8; isg_h picks the matching +-ls of group 4ib + m/2. */
    __m512i ipack, isg[2];
    {
        int16_t t[32], u[2][32];
        for (int j = 0; j < 16; j++)
            for (int q = 0; q < 2; q++) {
                t[2 * j + q] = (int16_t)(j < 8 ? 2 * (j + 8 * q) : 32 + 2 * (j - 8 + 8 * q));
                for (int h = 0; h < 2; h++)
                    u[h][2 * j + q] = (int16_t)(4 * (4 * h + 2 * (j / 8) + q) + (j % 8) / 2);
            }
        ipack = _mm512_loadu_si512(t);
        isg[0] = _mm512_loadu_si512(u[0]);
        isg[1] = _mm512_loadu_si512(u[1]);
    }
    /* vpermb: byte 1 of dword l <- qh byte 8h + l/2, then >> 4 (l odd) */
    __m512i iqb0, iqb1;
    {
        int8_t t[2][64];
        for (int i = 0; i < 64; i++) {
            t[0][i] = (int8_t)(i / 8);
            t[1][i] = (int8_t)(8 + i / 8);
        }
        iqb0 = _mm512_loadu_si512(t[0]);
        iqb1 = _mm512_loadu_si512(t[1]);
    }
    const __m512i nsh = _mm512_set_epi32(4, 0, 4, 0, 4, 0, 4, 0, 4, 0, 4, 0, 4, 0, 4, 0);
    const __m512i m700 = _mm512_set1_epi32(0x700);
    const __m512i ones = _mm512_set1_epi8(1);
    const long long *grid = (const long long *)iq1s_grid_p1;
    __m512 f[2] = {_mm512_setzero_ps(), _mm512_setzero_ps()}, f2[2] = {_mm512_setzero_ps(), _mm512_setzero_ps()};
    for (int64_t b = 0; b < nb; b++) {
        if (nr == 4)
            prefetch_group(w, ws, nb, b);
        const int8_t *q8 = y[b].qs;
        const __m512i yv[4] = {_mm512_loadu_si512(q8), _mm512_loadu_si512(q8 + 64),
                               _mm512_loadu_si512(q8 + 128), _mm512_loadu_si512(q8 + 192)};
        __m512i D[4], Z[2], nq[4];
        for (int k = 0; k < 4; k++) {
            D[k] = _mm512_dpbusd_epi32(_mm512_setzero_si512(), ones, yv[k]);
            nq[k] = _mm512_sub_epi32(_mm512_setzero_si512(), D[k]);
        }
        Z[0] = _mm512_permutex2var_epi16(D[0], ipack, D[1]);
        Z[1] = _mm512_permutex2var_epi16(D[2], ipack, D[3]);
        __m512i acc[4], acc2[4];
        uint16_t dh[4] = {0, 0, 0, 0};
        for (int r = 0; r < 4; r++) {
            acc[r] = _mm512_setzero_si512();
            acc2[r] = _mm512_setzero_si512();
            if (r >= nr)
                continue;
            const block_iq1_m *x = (const block_iq1_m *)(w + (size_t)r * ws) + b;
            uint16_t sc[4];
            memcpy(sc, x->scales, 8);
            dh[r] = (uint16_t)((sc[0] >> 12) | ((sc[1] >> 8) & 0x00f0) | ((sc[2] >> 4) & 0x0f00) | (sc[3] & 0xf000));
            const __m256i scw = _mm256_permutexvar_epi16(iw, _mm256_castsi128_si256(_mm_loadl_epi64((const __m128i *)x->scales)));
            const __m256i ls16 = _mm256_or_si256(
                _mm256_slli_epi16(_mm256_and_si256(_mm256_srlv_epi16(scw, sh), _mm256_set1_epi16(7)), 1), _mm256_set1_epi16(1));
            const __m512i ls512 = _mm512_castsi256_si512(ls16);
            /* +-ls per group of 8; the sign is bit 3 of nibble g of qh */
            uint64_t h64[2];
            memcpy(h64, x->qh, 16);
            const uint32_t dneg = (uint32_t)_pext_u64(h64[0], 0x8888888888888888ull) |
                                  ((uint32_t)_pext_u64(h64[1], 0x8888888888888888ull) << 16);
            const __m512i lsg = _mm512_permutexvar_epi16(ihalf, ls512);
            const __m512i lsgs = _mm512_mask_sub_epi16(lsg, (__mmask32)dneg, _mm512_setzero_si512(), lsg);
            __m512i a = acc[r];
            acc2[r] = _mm512_dpwssd_epi32(_mm512_madd_epi16(Z[0], _mm512_permutexvar_epi16(isg[0], lsgs)), Z[1],
                                          _mm512_permutexvar_epi16(isg[1], lsgs));
            const __m128i qhv = _mm_loadu_si128((const __m128i *)x->qh);
            for (int h = 0; h < 2; h++) {
                /* grid indices of groups 16h..16h+15, one per dword:
                 * qs | (nibble l of qh & 7) << 8 */
                const __m512i q32 = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(x->qs + 16 * h)));
                const __m512i hb = _mm512_maskz_permutexvar_epi8(0x2222222222222222ull, h ? iqb1 : iqb0, _mm512_castsi128_si512(qhv));
                const __m512i gi = _mm512_ternarylogic_epi32(q32, _mm512_srlv_epi32(hb, nsh), m700, 0xf8);
                for (int t = 0; t < 2; t++) {
                    const int k = 2 * h + t;
                    const __m512i g = _mm512_i32gather_epi64(t ? _mm512_extracti64x4_epi64(gi, 1) : _mm512_castsi512_si256(gi),
                                                             grid, 8);
                    /* exact sums of 4 products per lane (|s| <= 508), times ls as (ls, 0) */
                    const __m512i gs = _mm512_dpbusd_epi32(nq[k], g, yv[k]);
                    a = _mm512_dpwssd_epi32(a, gs, _mm512_maskz_permutexvar_epi16(0x55555555u, ix[k], ls512));
                }
            }
            acc[r] = a;
        }
        const __m128 d = _mm_mul_ps(halves4(dh), _mm_set1_ps(y[b].d));
        lanes_fma4(f, acc, d);
        lanes_fma4(f2, acc2, d);
    }
    /* hsum(grid) + IQ1M_DELTA * hsum(delta) */
    return _mm_add_ps(hsum8x4(f), _mm_mul_ps(_mm_set1_ps(IQ1M_DELTA), hsum8x4(f2)));
}

/* ---- IQ2_XXS ---- */

typedef struct {
    __m512i t[8];      /* iq2xxs_code, 32 words per zmm */
    __m512i spread[4]; /* vpermb: qword i of zmm k <- code of group 8k+i */
    __m512i shctl;     /* vpmultishiftqb: byte j <- bits 2j.. of the code */
    __m512i lut;       /* vpermb: byte e -> {8, 25, 43}[e & 3] */
} iq2xxs_tabs;

static iq2xxs_tabs iq2xxs_T; /* built once by tab_init */

static void iq2xxs_tabs_init(iq2xxs_tabs *T)
{
    for (int i = 0; i < 8; i++)
        T->t[i] = _mm512_loadu_si512(iq2xxs_code + 32 * i);
    for (int k = 0; k < 4; k++) {
        uint8_t sp[64];
        for (int i = 0; i < 8; i++)
            for (int b = 0; b < 8; b++)
                sp[8 * i + b] = (uint8_t)(2 * (8 * k + i) + (b ? 1 : 0));
        T->spread[k] = _mm512_loadu_si512(sp);
    }
    T->shctl = _mm512_set1_epi64(0x0E0C0A0806040200ll);
    uint8_t lut[64];
    for (int e = 0; e < 64; e++)
        lut[e] = (uint8_t)((e & 3) == 0 ? 8 : (e & 3) == 1 ? 25 : (e & 3) == 2 ? 43 : 0);
    T->lut = _mm512_loadu_si512(lut);
}

/* the 32 grid rows of a block (indices: bytes of gidx) as 4 zmm of bytes */
INLINE void iq2xxs_decode(const iq2xxs_tabs *T, __m256i gidx, __m512i g[4])
{
    const __m512i idx = _mm512_cvtepu8_epi16(gidx);
    const __m512i c0 = _mm512_permutex2var_epi16(T->t[0], idx, T->t[1]);
    const __m512i c1 = _mm512_permutex2var_epi16(T->t[2], idx, T->t[3]);
    const __m512i c2 = _mm512_permutex2var_epi16(T->t[4], idx, T->t[5]);
    const __m512i c3 = _mm512_permutex2var_epi16(T->t[6], idx, T->t[7]);
    const __mmask32 b6 = _mm512_test_epi16_mask(idx, _mm512_set1_epi16(0x40));
    const __mmask32 b7 = _mm512_test_epi16_mask(idx, _mm512_set1_epi16(0x80));
    const __m512i C = _mm512_mask_blend_epi16(b7, _mm512_mask_blend_epi16(b6, c0, c1), _mm512_mask_blend_epi16(b6, c2, c3));
    for (int k = 0; k < 4; k++) {
        /* bits above a code's 16 only reach index bits the LUT ignores */
        const __m512i m = _mm512_multishift_epi64_epi8(T->shctl, _mm512_permutexvar_epi8(T->spread[k], C));
        g[k] = _mm512_permutexvar_epi8(m, T->lut);
    }
}


INLINE __m128 dot_iq2xxs_rows(const int nr, int64_t nb, const uint8_t *w, size_t ws, const block_q8_K *y)
{
    const __m512i ix0 = idx_pair(0), ix1 = idx_pair(2), ix2 = idx_pair(4), ix3 = idx_pair(6);
    /* bytes 0-3 of each qword: the four 7-bit sign fields of aux[1] (bits 32+7l) */
    const __m512i sctl = _mm512_set1_epi64(0x00000000352e2720ll);
    const iq2xxs_tabs *T = &iq2xxs_T;
    const __m512i ks0 = _mm512_loadu_si512(ksigns_iq2xs), ks1 = _mm512_loadu_si512(ksigns_iq2xs + 64);
    __m512 f[2] = {_mm512_setzero_ps(), _mm512_setzero_ps()};
    for (int64_t b = 0; b < nb; b++) {
        if (nr == 4)
            prefetch_group(w, ws, nb, b);
        const int8_t *q8 = y[b].qs;
        const __m512i yv[4] = {_mm512_loadu_si512(q8), _mm512_loadu_si512(q8 + 64),
                               _mm512_loadu_si512(q8 + 128), _mm512_loadu_si512(q8 + 192)};
        __m512i acc[4];
        uint16_t dh[4] = {0, 0, 0, 0};
        for (int r = 0; r < 4; r++) {
            acc[r] = _mm512_setzero_si512();
            if (r >= nr)
                continue;
            const block_iq2_xxs *x = (const block_iq2_xxs *)(w + (size_t)r * ws) + b;
            dh[r] = x->d;
            const __m512i Q = _mm512_loadu_si512(x->qs); /* qword ib = aux0 | aux1 << 32 */
            const __m256i gidx = _mm512_cvtepi64_epi32(Q); /* byte 4ib+l = grid index */
            const __m256i s7 = _mm512_cvtepi64_epi32(_mm512_multishift_epi64_epi8(sctl, Q));
            /* sign bytes = ksigns_iq2xs[s7] (7 stored bits + parity): one
             * vpermi2b over the 128-byte table, which ignores index bit 7 */
            const __m256i sg = _mm512_castsi512_si256(
                _mm512_permutex2var_epi8(ks0, _mm512_castsi256_si512(s7), ks1));
            /* ls = 2*(aux1 >> 28) + 1 */
            const __m128i ls = _mm_or_si128(_mm_slli_epi16(_mm512_cvtepi64_epi16(_mm512_srli_epi64(Q, 60)), 1),
                                            _mm_set1_epi16(1));
            const __m512i ls512 = _mm512_castsi128_si512(ls);
            __m512i a = acc[r];
            uint64_t sm[4];
            _mm256_storeu_si256((__m256i *)sm, sg);
            __m512i g[4];
            iq2xxs_decode(T, gidx, g);
            for (int k = 0; k < 4; k++) {
                const __mmask64 m = (__mmask64)sm[k];
                const __m512i ys = _mm512_mask_sub_epi8(yv[k], m, _mm512_setzero_si512(), yv[k]);
                const __m512i ix = k == 0 ? ix0 : k == 1 ? ix1 : k == 2 ? ix2 : ix3;
                a = _mm512_dpwssd_epi32(a, _mm512_maddubs_epi16(g[k], ys), _mm512_permutexvar_epi16(ix, ls512));
            }
            acc[r] = a;
        }
        lanes_fma4(f, acc, _mm_mul_ps(halves4(dh), _mm_set1_ps(y[b].d)));
    }
    return _mm_mul_ps(_mm_set1_ps(0.125f), hsum8x4(f));
}

/* ---- IQ1_S / IQ2_XXS with several activation columns ----
 * Prefill and experts shared by several tokens: one weight row is decoded
 * once per block (the grid lookups are most of the cost) and used for NC
 * columns, a compile-time count 1..8 (no padded column is computed), each
 * with its own eight reference lanes (two columns per zmm; an odd count
 * leaves the upper half of the last zmm on zero integers, never stored).
 * Measured on the project VM (Xeon, 256 rows x 7168 in L2, 1 thread, GB/s
 * of weight bytes per call; IQ1_S / IQ2_XXS): 1 column 2.26 / 3.99 (the
 * four-row GEMV: 2.49 / 4.46, so it keeps nc == 1), 2: 2.21 / 3.44,
 * 3: 1.82 / 2.79, 4: 1.55 / 2.50, 8: 0.87 / 1.56 (the padded 8-column
 * kernel this replaces: 0.72 / 1.26 at 2 columns, 0.58 / 1.01 at 8).
 * Past 8, groups of 8 then the rest: balanced groups (9 = 5 + 4) measured
 * no faster. */

/* zero-padded float lanes of NC columns: f[i] = columns 2i, 2i+1 */
INLINE void lanes_fma_nc(const int NC, __m512 f[4], const __m512i acc[8], __m256 d)
{
    const __m512 dd = _mm512_castps256_ps512(d);
#pragma GCC unroll 4
    for (int i = 0; i < (NC + 1) / 2; i++) {
        const __m512i hi = 2 * i + 1 < NC ? acc[2 * i + 1] : _mm512_setzero_si512();
        f[i] = _mm512_fmadd_ps(dpair(dd, i), _mm512_cvtepi32_ps(fold8x2(acc[2 * i], hi)), f[i]);
    }
}

/* lane c = sum of the int32 lanes of v[c], c < NC (lanes past NC: 0 or
 * sums of zeros) */
INLINE __m256i red_nc(const int NC, const __m256i v[8])
{
    const __m256i z = _mm256_setzero_si256();
    const __m256i h01 = _mm256_hadd_epi32(v[0], NC > 1 ? v[1] : z);
    const __m256i h23 = NC > 2 ? _mm256_hadd_epi32(v[2], NC > 3 ? v[3] : z) : z;
    const __m256i x = _mm256_hadd_epi32(h01, h23);
    const __m128i lo = _mm_add_epi32(_mm256_castsi256_si128(x), _mm256_extracti128_si256(x, 1));
    if (NC <= 4)
        return _mm256_zextsi128_si256(lo);
    const __m256i h45 = _mm256_hadd_epi32(v[4], NC > 5 ? v[5] : z);
    const __m256i h67 = NC > 6 ? _mm256_hadd_epi32(v[6], NC > 7 ? v[7] : z) : z;
    const __m256i y = _mm256_hadd_epi32(h45, h67);
    const __m128i hi = _mm_add_epi32(_mm256_castsi256_si128(y), _mm256_extracti128_si256(y, 1));
    return _mm256_set_m128i(hi, lo);
}

/* per column c: hsum8 of its lanes times k, plus add1 * a1[c] (if a1) */
INLINE void store_nc(const int NC, const __m512 f[4], float k, const float *a1, float add1, float *o, size_t os)
{
    float v[64];
#pragma GCC unroll 4
    for (int i = 0; i < (NC + 1) / 2; i++)
        _mm512_storeu_ps(v + 16 * i, f[i]);
#pragma GCC unroll 8
    for (int c = 0; c < NC; c++)
        o[(size_t)c * os] = a1 ? hsum8(v + 8 * c) + add1 * a1[c] : k * hsum8(v + 8 * c);
}

INLINE void iq1s_cols(const int NC, int64_t nb, const uint8_t *wrow, const uint8_t *a, size_t as, float *o,
                      size_t os)
{
    const __m512i ix[4] = {idx_pair(0), idx_pair(2), idx_pair(4), idx_pair(6)};
    const __m256i idup = _mm256_setr_epi16(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
    /* the signed grid here: |g| and its sign mask are made once per block
     * for NC columns, a masked negate of q8 per column (cheaper than the
     * GEMV's +1 lookups, whose correction is per column) */
    const long long *grid = (const long long *)iq1s_grid;
    const block_iq1_s *x = (const block_iq1_s *)wrow;
    __m512 f[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
    __m256 f1 = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const __m128i qh = _mm_loadu_si128((const __m128i *)x[b].qh);
        const __m128i ls = _mm_or_si128(_mm_slli_epi16(_mm_and_si128(_mm_srli_epi16(qh, 12), _mm_set1_epi16(7)), 1),
                                        _mm_set1_epi16(1));
        const __m512i ls512 = _mm512_castsi128_si512(ls);
        const __m256i lsd = _mm256_permutexvar_epi16(idup, _mm256_castsi128_si256(ls));
        const __m256i neg = _mm256_srai_epi16(_mm256_permutexvar_epi16(idup, _mm256_castsi128_si256(qh)), 15);
        const __m256i lsds = _mm256_sub_epi16(_mm256_xor_si256(lsd, neg), neg);
        __m512i g[4], sc[4];
        __mmask64 gneg[4];
#pragma GCC unroll 4
        for (int k = 0; k < 4; k++) {
            uint64_t q64;
            uint32_t h2;
            memcpy(&q64, x[b].qs + 8 * k, 8);
            memcpy(&h2, x[b].qh + 2 * k, 4);
            const uint64_t i0 = _pdep_u64(q64 & 0xffffffff, 0x00ff00ff00ff00ffull) | _pdep_u64(h2 & 0xfff, 0x0700070007000700ull);
            const uint64_t i1 = _pdep_u64(q64 >> 32, 0x00ff00ff00ff00ffull) | _pdep_u64(h2 >> 16, 0x0700070007000700ull);
            const __m512i gs = _mm512_set_epi64(grid[i1 >> 48], grid[(i1 >> 32) & 0xffff], grid[(i1 >> 16) & 0xffff], grid[i1 & 0xffff],
                                                grid[i0 >> 48], grid[(i0 >> 32) & 0xffff], grid[(i0 >> 16) & 0xffff], grid[i0 & 0xffff]);
            g[k] = _mm512_abs_epi8(gs);
            gneg[k] = _mm512_movepi8_mask(gs);
            sc[k] = _mm512_permutexvar_epi16(ix[k], ls512);
        }
        __m512i acc[8];
        __m256i acc1[8];
        float yd[8] = {0, 0, 0, 0, 0, 0, 0, 0};
#pragma GCC unroll 8
        for (int c = 0; c < NC; c++) {
            const block_q8_K *y = (const block_q8_K *)(a + (size_t)c * as) + b;
            yd[c] = y->d;
            acc1[c] = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)y->bsums), lsds);
            __m512i s = _mm512_setzero_si512();
#pragma GCC unroll 4
            for (int k = 0; k < 4; k++) {
                const __m512i yv = _mm512_loadu_si512(y->qs + 64 * k);
                const __m512i ys = _mm512_mask_sub_epi8(yv, gneg[k], _mm512_setzero_si512(), yv);
                s = _mm512_dpwssd_epi32(s, _mm512_maddubs_epi16(g[k], ys), sc[k]);
            }
            acc[c] = s;
        }
        const __m256 sumi1 = _mm256_cvtepi32_ps(red_nc(NC, acc1));
        const __m256 d = _mm256_mul_ps(_mm256_loadu_ps(yd), _mm256_set1_ps(_cvtsh_ss(x[b].d)));
        lanes_fma_nc(NC, f, acc, d);
        f1 = _mm256_fmadd_ps(d, sumi1, f1);
    }
    float a1[8];
    _mm256_storeu_ps(a1, f1);
    store_nc(NC, f, 1.0f, a1, IQ1S_DELTA, o, os);
}

INLINE void iq2xxs_cols(const int NC, int64_t nb, const uint8_t *wrow, const uint8_t *a, size_t as, float *o,
                        size_t os)
{
    const __m512i ix[4] = {idx_pair(0), idx_pair(2), idx_pair(4), idx_pair(6)};
    const __m512i sctl = _mm512_set1_epi64(0x00000000352e2720ll);
    const __m512i ks0 = _mm512_loadu_si512(ksigns_iq2xs), ks1 = _mm512_loadu_si512(ksigns_iq2xs + 64);
    const iq2xxs_tabs *T = &iq2xxs_T;
    const block_iq2_xxs *x = (const block_iq2_xxs *)wrow;
    __m512 f[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
    for (int64_t b = 0; b < nb; b++) {
        const __m512i Q = _mm512_loadu_si512(x[b].qs);
        const __m256i gidx = _mm512_cvtepi64_epi32(Q);
        const __m256i s7 = _mm512_cvtepi64_epi32(_mm512_multishift_epi64_epi8(sctl, Q));
        const __m256i sg = _mm512_castsi512_si256(_mm512_permutex2var_epi8(ks0, _mm512_castsi256_si512(s7), ks1));
        const __m128i ls = _mm_or_si128(_mm_slli_epi16(_mm512_cvtepi64_epi16(_mm512_srli_epi64(Q, 60)), 1), _mm_set1_epi16(1));
        const __m512i ls512 = _mm512_castsi128_si512(ls);
        uint64_t sm[4];
        _mm256_storeu_si256((__m256i *)sm, sg);
        __m512i g[4], sc[4];
        iq2xxs_decode(T, gidx, g);
#pragma GCC unroll 4
        for (int k = 0; k < 4; k++)
            sc[k] = _mm512_permutexvar_epi16(ix[k], ls512);
        __m512i acc[8];
        float yd[8] = {0, 0, 0, 0, 0, 0, 0, 0};
#pragma GCC unroll 8
        for (int c = 0; c < NC; c++) {
            const block_q8_K *y = (const block_q8_K *)(a + (size_t)c * as) + b;
            yd[c] = y->d;
            __m512i s = _mm512_setzero_si512();
#pragma GCC unroll 4
            for (int k = 0; k < 4; k++) {
                const __m512i yv = _mm512_loadu_si512(y->qs + 64 * k);
                const __m512i ys = _mm512_mask_sub_epi8(yv, (__mmask64)sm[k], _mm512_setzero_si512(), yv);
                s = _mm512_dpwssd_epi32(s, _mm512_maddubs_epi16(g[k], ys), sc[k]);
            }
            acc[c] = s;
        }
        lanes_fma_nc(NC, f, acc, _mm256_mul_ps(_mm256_set1_ps(_cvtsh_ss(x[b].d)), _mm256_loadu_ps(yd)));
    }
    store_nc(NC, f, 0.125f, NULL, 0.0f, o, os);
}

/* NC columns (a + c*as, out o + c*os) of one row */
typedef void (*cols_fn)(int64_t nb, const uint8_t *wrow, const uint8_t *a, size_t as, float *o, size_t os);

#define COLS_NC(NAME, NC)                                                                          \
    static void NAME##_cols##NC(int64_t nb, const uint8_t *wrow, const uint8_t *a, size_t as, float *o, \
                                size_t os)                                                         \
    {                                                                                              \
        NAME##_cols(NC, nb, wrow, a, as, o, os);                                                   \
    }
#define COLS_ALL(NAME)                                                                             \
    COLS_NC(NAME, 1) COLS_NC(NAME, 2) COLS_NC(NAME, 3) COLS_NC(NAME, 4)                            \
    COLS_NC(NAME, 5) COLS_NC(NAME, 6) COLS_NC(NAME, 7) COLS_NC(NAME, 8)                            \
    static const cols_fn NAME##_cols_tab[9] = {NULL,             NAME##_cols1, NAME##_cols2,       \
                                               NAME##_cols3,     NAME##_cols4, NAME##_cols5,       \
                                               NAME##_cols6,     NAME##_cols7, NAME##_cols8};
COLS_ALL(iq1s)
COLS_ALL(iq2xxs)

/* rows one at a time; per row, columns 8 at a time, then the rest */
static void mul_mat_cols(const cols_fn tab_nc[9], int64_t n, const void *w, size_t ws, int64_t r0, int64_t r1,
                         const void *a, size_t as, int64_t nc, float *out, size_t os)
{
    const uint8_t *wb = w, *ab = a;
    const int64_t nb = n / QK_K;
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *wr = wb + (size_t)r * ws;
        int64_t c = 0;
        for (; c + 8 <= nc; c += 8)
            tab_nc[8](nb, wr, ab + (size_t)c * as, as, out + (size_t)c * os + (size_t)r, os);
        if (c < nc)
            tab_nc[nc - c](nb, wr, ab + (size_t)c * as, as, out + (size_t)c * os + (size_t)r, os);
    }
}

/* ---- per-type entry points: vec_dot and mul_mat (4 rows at a time) ---- */

static __m128 rows_q4k(int nr, int64_t nb, const uint8_t *w, size_t ws, const block_q8_K *y)
{
    return nr == 4 ? dot_q45k_rows(Q4K_GEMV, 4, nb, w, ws, y) : dot_q45k_rows(Q4K_GEMV, 1, nb, w, ws, y);
}
static __m128 rows_q5k(int nr, int64_t nb, const uint8_t *w, size_t ws, const block_q8_K *y)
{
    return nr == 4 ? dot_q45k_rows(Q5K, 4, nb, w, ws, y) : dot_q45k_rows(Q5K, 1, nb, w, ws, y);
}
static __m128 rows_q6k(int nr, int64_t nb, const uint8_t *w, size_t ws, const block_q8_K *y)
{
    return nr == 4 ? dot_q6k_rows(4, nb, w, ws, y) : dot_q6k_rows(1, nb, w, ws, y);
}
static __m128 rows_iq1s(int nr, int64_t nb, const uint8_t *w, size_t ws, const block_q8_K *y)
{
    return nr == 4 ? dot_iq1s_rows(4, nb, w, ws, y) : dot_iq1s_rows(1, nb, w, ws, y);
}
static __m128 rows_iq1m(int nr, int64_t nb, const uint8_t *w, size_t ws, const block_q8_K *y)
{
    return nr == 4 ? dot_iq1m_rows(4, nb, w, ws, y) : dot_iq1m_rows(1, nb, w, ws, y);
}
static __m128 rows_iq2xxs(int nr, int64_t nb, const uint8_t *w, size_t ws, const block_q8_K *y)
{
    return nr == 4 ? dot_iq2xxs_rows(4, nb, w, ws, y) : dot_iq2xxs_rows(1, nb, w, ws, y);
}

typedef __m128 (*rows_fn)(int nr, int64_t nb, const uint8_t *w, size_t ws, const block_q8_K *y);

INLINE void mul_mat_rows(rows_fn f, int64_t n, const void *w, size_t ws, int64_t r0, int64_t r1,
                         const void *a, size_t as, int64_t nc, float *out, size_t os)
{
    const uint8_t *wb = w, *ab = a;
    const int64_t nb = n / QK_K;
    int64_t r = r0;
    /* row groups outer, columns inner: the group's 4 rows stay in L1/L2 for
     * every column, so each weight byte comes from memory once */
    for (; r + 4 <= r1; r += 4)
        for (int64_t c = 0; c < nc; c++) {
            float s[4];
            _mm_storeu_ps(s, f(4, nb, wb + (size_t)r * ws, ws, (const block_q8_K *)(ab + (size_t)c * as)));
            float *o = out + (size_t)c * os + (size_t)r;
            o[0] = s[0];
            o[1] = s[1];
            o[2] = s[2];
            o[3] = s[3];
        }
    for (; r < r1; r++)
        for (int64_t c = 0; c < nc; c++)
            out[(size_t)c * os + (size_t)r] =
                _mm_cvtss_f32(f(1, nb, wb + (size_t)r * ws, ws, (const block_q8_K *)(ab + (size_t)c * as)));
}

#define ENTRY(NAME)                                                                                \
    static void dot_##NAME(int64_t n, float *s, const void *w, const void *a)                      \
    {                                                                                              \
        *s = _mm_cvtss_f32(rows_##NAME(1, n / QK_K, w, 0, a));                                     \
    }                                                                                              \
    static void mm_##NAME(int64_t n, const void *w, size_t ws, int64_t r0, int64_t r1,             \
                          const void *a, size_t as, int64_t nc, float *o, size_t os)               \
    {                                                                                              \
        mul_mat_rows(rows_##NAME, n, w, ws, r0, r1, a, as, nc, o, os);                             \
    }
ENTRY(q4k) ENTRY(q5k) ENTRY(q6k) ENTRY(iq1s) ENTRY(iq1m) ENTRY(iq2xxs)

typedef void (*cols4_fn)(int64_t nb, const uint8_t *wrow, const uint8_t *const yc[4], float out[4]);

/* Rows [r0, r1) against columns [0, nc) in fours with f, a row at a time
 * in tiles of 16 rows per group of four columns: eight columns' Q8_K
 * activations (65 KB at n = 7168) overflow L1, four (33 KB) do not, and a
 * tile's weight rows (about 100 KB) come back from L2 for the next four
 * (measured, Q6_K 7168 wide, 8 columns: 2.8 ns per block and column
 * against 3.2 row by row).  A last group of fewer is padded with its last
 * column, whose extra results are dropped (cheaper here than narrower
 * kernels, measured). */
static void mul_mat_cols4(cols4_fn f, int64_t n, const uint8_t *w, size_t ws, int64_t r0, int64_t r1,
                          const uint8_t *a, size_t as, int64_t nc, float *o, size_t os)
{
    enum { TILE = 16 };
    for (int64_t rt = r0; rt < r1; rt += TILE)
        for (int64_t c0 = 0; c0 < nc; c0 += 4) {
            const uint8_t *yc[4];
            for (int c = 0; c < 4; c++)
                yc[c] = a + (size_t)(c0 + c < nc ? c0 + c : nc - 1) * as;
            for (int64_t r = rt; r < rt + TILE && r < r1; r++) {
                float s[4];
                f(n / QK_K, w + (size_t)r * ws, yc, s);
                for (int c = 0; c < 4 && c0 + c < nc; c++)
                    o[(size_t)(c0 + c) * os + (size_t)r] = s[c];
            }
        }
}

/* Q4_K: columns [0, nc - nc % 4) in the reference's gemm order, four at a
 * time per row; the rest in its gemv order, four rows per pass */
static void mm_q4k_any(int64_t n, const void *w, size_t ws, int64_t r0, int64_t r1, const void *a,
                       size_t as, int64_t nc, float *o, size_t os)
{
    const int64_t ng = nc - nc % 4;
    const uint8_t *wb = w, *ab = a;
    /* many columns: sixteen rows per pass in lanes (kern_gemm_avx512.c),
     * its transpose paid once for all of them */
    int64_t rg = r0; /* first row left for the one-row gemm */
    if (ng >= KERN_GEMM_Q4K_MIN_COLS && r1 - r0 >= 16) {
        rg = r0 + (r1 - r0) / 16 * 16;
        kern_gemm_q4k_avx512(n, w, ws, r0, rg, a, as, ng, o, os);
    }
    if (ng)
        mul_mat_cols4(q4k_gemm_cols4, n, wb, ws, rg, r1, ab, as, ng, o, os);
    if (ng < nc)
        mm_q4k(n, w, ws, r0, r1, ab + (size_t)ng * as, as, nc - ng, o + (size_t)ng * os, os);
}

/* Q6_K: one column four rows per pass; more, a row at a time against four
 * columns (q6k_cols4; the same bits per column either way). */
static void mm_q6k_any(int64_t n, const void *w, size_t ws, int64_t r0, int64_t r1, const void *a,
                       size_t as, int64_t nc, float *o, size_t os)
{
    if (nc < 2)
        mm_q6k(n, w, ws, r0, r1, a, as, nc, o, os);
    else
        mul_mat_cols4(q6k_cols4, n, w, ws, r0, r1, a, as, nc, o, os);
}

/* Q5_K: one column four rows per pass; more, a row at a time against four
 * columns (q5k_cols4; the same bits per column either way). */
static void mm_q5k_any(int64_t n, const void *w, size_t ws, int64_t r0, int64_t r1, const void *a,
                       size_t as, int64_t nc, float *o, size_t os)
{
    if (nc < 2)
        mm_q5k(n, w, ws, r0, r1, a, as, nc, o, os);
    else
        mul_mat_cols4(q5k_cols4, n, w, ws, r0, r1, a, as, nc, o, os);
}

/* Every column in its lone-column (gemv) order: one column four rows per
 * pass as vec_dot; more, a row at a time against four columns. */
static void mm_q4k_cols1(int64_t n, const void *w, size_t ws, int64_t r0, int64_t r1, const void *a,
                         size_t as, int64_t nc, float *o, size_t os)
{
    if (nc < 2)
        mm_q4k(n, w, ws, r0, r1, a, as, nc, o, os);
    else
        mul_mat_cols4(q4k_gemv_cols4, n, w, ws, r0, r1, a, as, nc, o, os);
}

/* Q4_K's 16-row layout: the columns mm_q4k_any takes in the gemm order
 * (all but nc % 4) in that order, the rest in the one-column order; or
 * every column in the one-column order (cols1). */
static void mm_q4k_r16(int64_t n, const void *w, size_t ws, int64_t r0, int64_t r1, const void *a, size_t as,
                       int64_t nc, float *o, size_t os)
{
    kern_q4k_r16_avx512(n, w, ws, r0, r1, a, as, nc, nc - nc % 4, o, os);
}

static void mm_q4k_r16_cols1(int64_t n, const void *w, size_t ws, int64_t r0, int64_t r1, const void *a,
                             size_t as, int64_t nc, float *o, size_t os)
{
    kern_q4k_r16_avx512(n, w, ws, r0, r1, a, as, nc, 0, o, os);
}

/* one column: four rows per pass; several: decode once, up to eight columns per pass */
static void mm_iq1s_any(int64_t n, const void *w, size_t ws, int64_t r0, int64_t r1, const void *a,
                        size_t as, int64_t nc, float *o, size_t os)
{
    if (nc >= 2)
        mul_mat_cols(iq1s_cols_tab, n, w, ws, r0, r1, a, as, nc, o, os);
    else
        mm_iq1s(n, w, ws, r0, r1, a, as, nc, o, os);
}

static void mm_iq2xxs_any(int64_t n, const void *w, size_t ws, int64_t r0, int64_t r1, const void *a,
                          size_t as, int64_t nc, float *o, size_t os)
{
    if (nc >= 2)
        mul_mat_cols(iq2xxs_cols_tab, n, w, ws, r0, r1, a, as, nc, o, os);
    else
        mm_iq2xxs(n, w, ws, r0, r1, a, as, nc, o, os);
}

/* ---- dequantization ----
 * Bit-identical to quant_dequantize_row: the integer codes are exact on any
 * route, and the floats are the scalar's products in its order - Q6_K
 * (d*sc)*q, Q4_K/Q5_K (d*sc)*q - dmin*m (a mul then a sub, never fused),
 * Q8_0 q*d.  The codes of a block are decoded 64 at a time into a 256-byte
 * scratch and widened from memory (vpmovsxbd/vpmovzxbd with a load operand:
 * one shuffle per 16 floats, against two for extracting lanes from the
 * decoded zmm); the per-16 scales are stored as floats and broadcast from
 * memory (a load, not a shuffle).  Scales use F16C: it quiets a signaling
 * NaN that quant_f16_to_f32 keeps, but every scale goes through a product,
 * which quiets it anyway, so the bits agree. */

/* Makes the compiler reload q and ds from memory: left to itself it keeps
 * them in registers and pays an extract and a vpermd (two more shuffles)
 * per 16 floats. */
#define FROM_MEMORY(q, ds) __asm__("" : "+m"(q), "+m"(ds))

/* 16 codes (bytes at p, signed or not) to floats */
INLINE __m512 codes16_s(const int8_t *p)
{
    return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)p)));
}
INLINE __m512 codes16_u(const uint8_t *p)
{
    return _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)p)));
}

static void dq_q6k(const void *src, float *y, int64_t n)
{
    const block_q6_K *x = src;
    const __m512i m4 = _mm512_set1_epi8(0x0F), m30 = _mm512_set1_epi8(0x30), c32 = _mm512_set1_epi8(32);
    for (int64_t i = 0; i < n / QK_K; i++, y += QK_K) {
        int8_t q[QK_K];
        float ds[16];
        const __m128i sc8 = _mm_loadu_si128((const __m128i *)x[i].scales);
        const __m512 sc = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(sc8));
        _mm512_storeu_ps(ds, _mm512_mul_ps(_mm512_set1_ps(_cvtsh_ss(x[i].d)), sc));
        for (int h = 0; h < 2; h++) {
            /* 128 elements: ql[0,64) lows are elements 0-63 (qh bits 0-1,
             * then 2-3), its highs 64-127 (qh bits 4-5, then 6-7); each
             * pair of qh bits is moved to bits 4-5 by a 16-bit shift that
             * never carries the bits it keeps across a byte */
            const __m512i ql = _mm512_loadu_si512(x[i].ql + 64 * h);
            const __m256i qh = _mm256_loadu_si256((const __m256i *)(x[i].qh + 32 * h));
            const __m512i hl = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_slli_epi16(qh, 4)),
                                                  _mm256_slli_epi16(qh, 2), 1);
            const __m512i hh = _mm512_inserti64x4(_mm512_castsi256_si512(qh), _mm256_srli_epi16(qh, 2), 1);
            const __m512i lo = _mm512_or_si512(_mm512_and_si512(ql, m4), _mm512_and_si512(hl, m30));
            const __m512i hi =
                _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(ql, 4), m4), _mm512_and_si512(hh, m30));
            _mm512_storeu_si512(q + 128 * h, _mm512_sub_epi8(lo, c32));
            _mm512_storeu_si512(q + 128 * h + 64, _mm512_sub_epi8(hi, c32));
        }
        FROM_MEMORY(q, ds);
#pragma GCC unroll 16
        for (int j = 0; j < 16; j++)
            _mm512_storeu_ps(y + 16 * j, _mm512_mul_ps(_mm512_set1_ps(ds[j]), codes16_s(q + 16 * j)));
    }
}

/* dm[0,8) = d * sc, dm[8,16) = dmin * m, as quant_ref.c's d1 and m1 */
INLINE void k4_scale_floats(uint16_t dh, uint16_t mh, const uint8_t *packed, float dm[16])
{
    const __m512 dd = _mm512_insertf32x8(_mm512_set1_ps(_cvtsh_ss(dh)), _mm256_set1_ps(_cvtsh_ss(mh)), 1);
    _mm512_storeu_ps(dm, _mm512_mul_ps(dd, _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(k4_scales(packed)))));
}

/* 256 codes in element order (sub-block s = q[32s, 32s+32)) to y */
INLINE void k4_store(uint8_t q[QK_K], float dm[16], float *y)
{
    FROM_MEMORY(*(uint8_t(*)[QK_K])q, *(float(*)[16])dm);
#pragma GCC unroll 16
    for (int j = 0; j < 16; j++) {
        const __m512 p = _mm512_mul_ps(_mm512_set1_ps(dm[j / 2]), codes16_u(q + 16 * j));
        _mm512_storeu_ps(y + 16 * j, _mm512_sub_ps(p, _mm512_set1_ps(dm[8 + j / 2])));
    }
}

/* 64 bytes of nibbles (two 32-byte chunks c, c+1) in element order: chunk
 * c's lows, its highs, chunk c+1's lows, its highs */
INLINE void k4_nibbles(__m512i qs, __m512i *a, __m512i *b)
{
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    const __m512i lo = _mm512_and_si512(qs, m4), hi = _mm512_and_si512(_mm512_srli_epi16(qs, 4), m4);
    *a = _mm512_shuffle_i64x2(lo, hi, 0x44);
    *b = _mm512_shuffle_i64x2(lo, hi, 0xEE);
}

static void dq_q4k(const void *src, float *y, int64_t n)
{
    const block_q4_K *x = src;
    for (int64_t i = 0; i < n / QK_K; i++, y += QK_K) {
        uint8_t q[QK_K];
        float dm[16];
        k4_scale_floats(x[i].d, x[i].dmin, x[i].scales, dm);
        for (int h = 0; h < 2; h++) {
            __m512i a, b;
            k4_nibbles(_mm512_loadu_si512(x[i].qs + 64 * h), &a, &b);
            _mm512_storeu_si512(q + 128 * h, a);
            _mm512_storeu_si512(q + 128 * h + 64, b);
        }
        k4_store(q, dm, y);
    }
}

static void dq_q5k(const void *src, float *y, int64_t n)
{
    const block_q5_K *x = src;
    const __m512i c16 = _mm512_set1_epi8(16);
    for (int64_t i = 0; i < n / QK_K; i++, y += QK_K) {
        uint8_t q[QK_K];
        float dm[16];
        k4_scale_floats(x[i].d, x[i].dmin, x[i].scales, dm);
        /* sub-block s takes bit s of qh[l] as +16 */
        const __m512i qh = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)x[i].qh));
        for (int h = 0; h < 2; h++) {
            __m512i a, b;
            k4_nibbles(_mm512_loadu_si512(x[i].qs + 64 * h), &a, &b);
            const __m512i ba = _mm512_inserti64x4(_mm512_set1_epi8((char)(1 << 4 * h)),
                                                  _mm256_set1_epi8((char)(2 << 4 * h)), 1);
            const __m512i bb = _mm512_slli_epi16(ba, 2); /* the bit stays in its byte: bits 2..7 */
            a = _mm512_mask_add_epi8(a, _mm512_test_epi8_mask(qh, ba), a, c16);
            b = _mm512_mask_add_epi8(b, _mm512_test_epi8_mask(qh, bb), b, c16);
            _mm512_storeu_si512(q + 128 * h, a);
            _mm512_storeu_si512(q + 128 * h + 64, b);
        }
        k4_store(q, dm, y);
    }
}

static void dq_q80(const void *src, float *y, int64_t n)
{
    const block_q8_0 *x = src;
    for (int64_t i = 0; i < n / QK8_0; i++, y += QK8_0) {
        const __m512 d = _mm512_set1_ps(_cvtsh_ss(x[i].d));
        _mm512_storeu_ps(y, _mm512_mul_ps(codes16_s(x[i].qs), d));
        _mm512_storeu_ps(y + 16, _mm512_mul_ps(codes16_s(x[i].qs + 16), d));
    }
}

/* 16 halves to floats with integers only, bit for bit quant_f16_to_f32 on
 * every input: vcvtph2ps would quiet signaling NaNs, which the scalar keeps.
 * Exponent rebias; inf/NaN get the rest of the rebias to 255; zeros and
 * subnormals are normalised by subtracting 2^-14 (exact). */
INLINE __m512 f16x16(__m256i hv)
{
    const __m512i h = _mm512_cvtepu16_epi32(hv), emask = _mm512_set1_epi32(0x0f800000);
    const __m512i rebias = _mm512_set1_epi32(112 << 23);
    __m512i o = _mm512_slli_epi32(_mm512_and_si512(h, _mm512_set1_epi32(0x7fff)), 13);
    const __m512i e = _mm512_and_si512(o, emask);
    o = _mm512_add_epi32(o, rebias);
    o = _mm512_mask_add_epi32(o, _mm512_cmpeq_epi32_mask(e, emask), o, rebias);
    const __mmask16 sub = _mm512_testn_epi32_mask(e, e);
    o = _mm512_mask_add_epi32(o, sub, o, _mm512_set1_epi32(1 << 23));
    __m512 f = _mm512_castsi512_ps(o);
    f = _mm512_mask_sub_ps(f, sub, f, _mm512_castsi512_ps(_mm512_set1_epi32(113 << 23)));
    const __m512i sign = _mm512_slli_epi32(_mm512_and_si512(h, _mm512_set1_epi32(0x8000)), 16);
    return _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(f), sign));
}

static void dq_f16(const void *src, float *y, int64_t n)
{
    const uint16_t *x = src;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(y + i, f16x16(_mm256_loadu_si256((const __m256i *)(x + i))));
    for (; i < n; i++)
        y[i] = quant_f16_to_f32(x[i]);
}

static void dq_bf16(const void *src, float *y, int64_t n)
{
    const uint16_t *x = src;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m256i h = _mm256_loadu_si256((const __m256i *)(x + i));
        _mm512_storeu_si512(y + i, _mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
    }
    for (; i < n; i++)
        y[i] = quant_bf16_to_f32(x[i]);
}

/* ---- exp, softmax, SwiGLU (vmath.h's functions, sixteen lanes) ---- */

/* vmath_expf per lane: the same fused steps, and scalef for ldexpf (n is
 * an integer, so both give the correctly rounded j * 2^n, subnormal or
 * not) */
INLINE __m512 expf16(__m512 x)
{
    const __m512 r = _mm512_set1_ps(0x1.8p23f);
    const __m512 z = _mm512_fmadd_ps(x, _mm512_set1_ps(0x1.715476p+0f), r);
    const __m512 n = _mm512_sub_ps(z, r);
    const __m512 b = _mm512_fnmadd_ps(n, _mm512_set1_ps(0x1.7f7d1cp-20f),
                                      _mm512_fnmadd_ps(n, _mm512_set1_ps(0x1.62e4p-1f), x));
    const __m512 u = _mm512_mul_ps(b, b);
    const __m512 j = _mm512_fmadd_ps(
        _mm512_fmadd_ps(_mm512_fmadd_ps(_mm512_set1_ps(0x1.0e4020p-7f), b, _mm512_set1_ps(0x1.573e2ep-5f)), u,
                        _mm512_fmadd_ps(_mm512_set1_ps(0x1.555e66p-3f), b, _mm512_set1_ps(0x1.fffdb6p-2f))),
        u, _mm512_fmadd_ps(_mm512_set1_ps(0x1.ffffecp-1f), b, _mm512_set1_ps(1.0f)));
    const __m512 res = _mm512_scalef_ps(j, n);
    const __mmask16 big = _mm512_cmp_ps_mask(_mm512_abs_ps(n), _mm512_set1_ps(192.0f), _CMP_GT_OQ);
    if (!big)
        return res;
    const __mmask16 neg = _mm512_cmp_ps_mask(n, _mm512_setzero_ps(), _CMP_LE_OQ);
    const __m512 alt = _mm512_mask_blend_ps(neg, _mm512_set1_ps(INFINITY), _mm512_setzero_ps());
    return _mm512_mask_blend_ps(big, res, alt);
}

static double softmax_exp(float *x, int64_t n, float max)
{
    const __m512 mx = _mm512_set1_ps(max);
    double sum = 0.0;
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 m = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1);
        const __m512 v = _mm512_maskz_mov_ps(m, expf16(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), mx)));
        _mm512_mask_storeu_ps(x + i, m, v);
        /* halves, then pairs: the tree vmath_softmax_exp spells out */
        const __m256 h8 = _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
        const __m128 h4 = _mm_add_ps(_mm256_castps256_ps128(h8), _mm256_extractf128_ps(h8, 1));
        const __m128 h2 = _mm_add_ps(h4, _mm_movehl_ps(h4, h4));
        sum += (double)_mm_cvtss_f32(_mm_add_ss(h2, _mm_movehdup_ps(h2)));
    }
    return sum;
}

static void swiglu(float *y, const float *x, const float *g, int64_t n)
{
    const __m512 one = _mm512_set1_ps(1.0f), zero = _mm512_setzero_ps();
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 m = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1);
        const __m512 v = _mm512_maskz_loadu_ps(m, x + i);
        const __m512 s = _mm512_div_ps(v, _mm512_add_ps(one, expf16(_mm512_sub_ps(zero, v))));
        _mm512_mask_storeu_ps(y + i, m, _mm512_mul_ps(s, _mm512_maskz_loadu_ps(m, g + i)));
    }
}

/* ---- table ---- */

/* a product then a sum per lane, as the scalar loop (no FMA) */
static void axpy_f32(int64_t n, float a, const float *x, float *y)
{
    const __m512 va = _mm512_set1_ps(a);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(y + i, _mm512_add_ps(_mm512_loadu_ps(y + i), _mm512_mul_ps(va, _mm512_loadu_ps(x + i))));
    for (; i < n; i++)
        y[i] += a * x[i];
}

static kern_table tab;
static pthread_once_t tab_once = PTHREAD_ONCE_INIT;

static void tab_init(void)
{
    pthread_once(&grids_once, grids_init);
    iq2xxs_tabs_init(&iq2xxs_T);
    tab = *kern_table_avx2();
    tab.isa = "avx512";
    tab.axpy_f32 = axpy_f32;
    tab.softmax_exp = softmax_exp;
    tab.swiglu = swiglu;
    tab.quantize[MS_TYPE_Q8_K] = quant_q8_k;
    tab.dequant[MS_TYPE_Q6_K] = dq_q6k;
    tab.dequant[MS_TYPE_Q4_K] = dq_q4k;
    tab.dequant[MS_TYPE_Q5_K] = dq_q5k;
    tab.dequant[MS_TYPE_Q8_0] = dq_q80;
    tab.dequant[MS_TYPE_F16] = dq_f16;
    tab.dequant[MS_TYPE_BF16] = dq_bf16;
#define SET(T, NAME)                                                                               \
    tab.vec_dot[T] = dot_##NAME;                                                                   \
    tab.mul_mat[T] = mm_##NAME;
    SET(MS_TYPE_Q4_K, q4k)
    SET(MS_TYPE_Q5_K, q5k)
    SET(MS_TYPE_Q6_K, q6k)
    SET(MS_TYPE_IQ1_S, iq1s)
    SET(MS_TYPE_IQ1_M, iq1m)
    SET(MS_TYPE_IQ2_XXS, iq2xxs)
#undef SET
    tab.mul_mat[MS_TYPE_Q4_K] = mm_q4k_any;
    tab.mul_mat_cols1[MS_TYPE_Q4_K] = mm_q4k_cols1;
    tab.q4k_r16_mul_mat = mm_q4k_r16;
    tab.q4k_r16_mul_mat_cols1 = mm_q4k_r16_cols1;
    tab.mul_mat[MS_TYPE_Q6_K] = mm_q6k_any;
    tab.mul_mat[MS_TYPE_Q5_K] = mm_q5k_any;
    tab.mul_mat[MS_TYPE_IQ1_S] = mm_iq1s_any;
    tab.mul_mat[MS_TYPE_IQ2_XXS] = mm_iq2xxs_any;
}

const kern_table *kern_table_avx512(void)
{
    pthread_once(&tab_once, tab_init);
    return &tab;
}
