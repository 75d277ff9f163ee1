/* kern_gemm_avx512.c - AVX-512 VNNI products of many activation columns
 * (prefill), sixteen weight rows per pass with one row per int32/float lane.
 *
 * Owns: kern_gemm_q4k_avx512 (declared in kern_gemm_avx512.h, called by
 * kern_avx512.c's Q4_K mul_mat for columns in the reference's gemm order)
 * and kern_q4k_r16_avx512 (the same rows-in-lanes products over Q4_K's
 * 16-row layout, repack_q4k.h, in either order).
 * Does not own: the one-column and few-column kernels, the order itself
 * (quant_dot_q4_K_x86 in quant_ref.c is the specification).
 *
 * Why rows in lanes: a kernel with one row and columns in lanes must reduce
 * sixteen int32 lanes to one number per 64-element pair, per column and
 * block; with sixteen rows across the lanes of every vector no lane is ever
 * summed with another.  The price is a transpose of each 16-row 256-block
 * into 64 vectors of four codes per row (done once, used by every column),
 * so this path is for many columns only.
 *
 * Exactness: per (row, column) the float operations are the specification's,
 * in its order: per block, per pair p of sub-blocks, A = fma((float)isum_p,
 * d*da, A) and M = fma((float)msum_p, dmin*da, M), blocks in order; the
 * integer sums are exact in any order (|sum| < 2^31).  The one-column
 * (gemv) order takes one term per block instead: A = fma((float)isum,
 * d*da, A), M = fma((float)msum, dmin*da, M), isum and msum the whole
 * block's (quant_dot_q4_K_x86 without gemm). */
#include <immintrin.h>
#include <string.h>

#include "kern_gemm_avx512.h"
#include "quant_blocks.h"

#define INLINE static inline __attribute__((always_inline))

enum { ROWS = 16, MAXC = 64 };

/* 16x16 transpose of dwords: r[i] lane j -> r[j] lane i */
INLINE void transpose16(__m512i r[16])
{
    __m512i t[16];
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);
    }
    for (int i = 0; i < 16; i += 4) {
        r[i] = _mm512_unpacklo_epi64(t[i], t[i + 2]);
        r[i + 1] = _mm512_unpackhi_epi64(t[i], t[i + 2]);
        r[i + 2] = _mm512_unpacklo_epi64(t[i + 1], t[i + 3]);
        r[i + 3] = _mm512_unpackhi_epi64(t[i + 1], t[i + 3]);
    }
    /* now r[4a+b] holds, in each 128-bit lane q, row 4q'+... : finish with
     * the 128-bit lane shuffles */
    for (int i = 0; i < 4; i++) {
        t[i] = _mm512_shuffle_i32x4(r[i], r[i + 4], 0x88);
        t[i + 4] = _mm512_shuffle_i32x4(r[i], r[i + 4], 0xdd);
        t[i + 8] = _mm512_shuffle_i32x4(r[i + 8], r[i + 12], 0x88);
        t[i + 12] = _mm512_shuffle_i32x4(r[i + 8], r[i + 12], 0xdd);
    }
    for (int i = 0; i < 4; i++) {
        r[i] = _mm512_shuffle_i32x4(t[i], t[i + 8], 0x88);
        r[i + 8] = _mm512_shuffle_i32x4(t[i], t[i + 8], 0xdd);
        r[i + 4] = _mm512_shuffle_i32x4(t[i + 4], t[i + 12], 0x88);
        r[i + 12] = _mm512_shuffle_i32x4(t[i + 4], t[i + 12], 0xdd);
    }
}

typedef struct {
    __m512i w[64];  /* w[k] lane r: codes 4k..4k+3 of row r (u8) */
    __m512i sc[8];  /* sub-block scale per row (int32) */
    __m512i mp[4];  /* pair p: m_2p | m_2p+1 << 16 per row (int16 pairs) */
    __m512 d, dmin; /* per row */
} q4k_tile;

/* Block b of rows w, w + ws, ... (16 rows) into the tile. */
static void q4k_tile_load(q4k_tile *t, const uint8_t *w, size_t ws, int64_t b)
{
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    uint8_t sm[ROWS][16]; /* per row: scales 0-7, mins 8-15 */
    uint16_t dh[ROWS], mh[ROWS];
    /* codes of row r as 4 vectors of 64 bytes = elements 64q..64q+63 */
    for (int g = 0; g < 4; g++) {
        __m512i r[16];
        for (int i = 0; i < ROWS; i++) {
            const uint8_t *blk = w + (size_t)i * ws + (size_t)b * sizeof(block_q4_K);
            /* chunk g: low nibbles = elements 64g..64g+31, high = 64g+32.. */
            const __m256i q = _mm256_loadu_si256((const __m256i *)(blk + 16 + 32 * g));
            const __m512i qq = _mm512_castsi256_si512(q);
            const __m512i lo = _mm512_and_si512(qq, m4), hi = _mm512_and_si512(_mm512_srli_epi16(qq, 4), m4);
            r[i] = _mm512_inserti64x4(lo, _mm512_castsi512_si256(hi), 1);
            if (g == 0) {
                memcpy(&dh[i], blk, 2);
                memcpy(&mh[i], blk + 2, 2);
                uint32_t u[4];
                quant_k4_scales(blk + 4, u);
                memcpy(sm[i], u, 16);
            }
        }
        transpose16(r);
        for (int k = 0; k < 16; k++)
            t->w[16 * g + k] = r[k];
    }
    int32_t sc[8][ROWS], mp[4][ROWS];
    for (int i = 0; i < ROWS; i++) {
        for (int j = 0; j < 8; j++)
            sc[j][i] = sm[i][j];
        for (int p = 0; p < 4; p++)
            mp[p][i] = (int32_t)((uint32_t)sm[i][8 + 2 * p] | (uint32_t)sm[i][9 + 2 * p] << 16);
    }
    for (int j = 0; j < 8; j++)
        t->sc[j] = _mm512_loadu_si512(sc[j]);
    for (int p = 0; p < 4; p++)
        t->mp[p] = _mm512_loadu_si512(mp[p]);
    t->d = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)dh));
    t->dmin = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)mh));
}

/* One column's pair p, its integer parts: the two sub-blocks' code sums
 * per row (*sa, *sb: the 16 dpbusd in four chains of four, short enough for
 * the out-of-order window to overlap columns) and the pair's bsums as the
 * int16 pair (B_2p | B_2p+1 << 16) the packed mins multiply. */
INLINE __m512i q4k_pair_sums(const __m512i w0[8], const __m512i w1[8], const block_q8_K *y, int p, __m512i *sa,
                             __m512i *sb)
{
    const int32_t *q = (const int32_t *)(y->qs + 64 * p);
    __m512i s[4] = {_mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512(),
                    _mm512_setzero_si512()};
#pragma GCC unroll 4
    for (int k = 0; k < 4; k++) {
        s[0] = _mm512_dpbusd_epi32(s[0], w0[k], _mm512_set1_epi32(q[k]));
        s[1] = _mm512_dpbusd_epi32(s[1], w0[4 + k], _mm512_set1_epi32(q[4 + k]));
        s[2] = _mm512_dpbusd_epi32(s[2], w1[k], _mm512_set1_epi32(q[8 + k]));
        s[3] = _mm512_dpbusd_epi32(s[3], w1[4 + k], _mm512_set1_epi32(q[12 + k]));
    }
    *sa = _mm512_add_epi32(s[0], s[1]);
    *sb = _mm512_add_epi32(s[2], s[3]);
    const int32_t B0 = y->bsums[4 * p] + y->bsums[4 * p + 1];
    const int32_t B1 = y->bsums[4 * p + 2] + y->bsums[4 * p + 3];
    return _mm512_set1_epi32((int32_t)(((uint32_t)B0 & 0xffff) | (uint32_t)B1 << 16));
}

/* One column's pair p in the gemm order: isum (exact, as float: every
 * partial is an integer below 2^24, so the float products and sum are
 * exact and equal (float)isum) and msum. */
INLINE void q4k_pair_col(const __m512i w0[8], const __m512i w1[8], __m512 saf, __m512 sbf, __m512i mp,
                         const block_q8_K *y, int p, __m512 *isum, __m512 *msum)
{
    __m512i sa, sb;
    const __m512i bp = q4k_pair_sums(w0, w1, y, p, &sa, &sb);
    *isum = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sb), sbf, _mm512_mul_ps(_mm512_cvtepi32_ps(sa), saf));
    *msum = _mm512_cvtepi32_ps(_mm512_dpwssd_epi32(_mm512_setzero_si512(), mp, bp));
}

/* Sixteen rows (w, w + ws, ...) times nc <= MAXC columns (a + c*as, Q8_K),
 * A/M chains updated in place (acc[c], accm[c], one lane per row). */
static void q4k_tile_cols(const q4k_tile *t, int64_t b, const uint8_t *a, size_t as, int nc, __m512 *acc,
                          __m512 *accm)
{
    for (int p = 0; p < 4; p++) {
        const __m512 saf = _mm512_cvtepi32_ps(t->sc[2 * p]), sbf = _mm512_cvtepi32_ps(t->sc[2 * p + 1]);
        const __m512i mp = t->mp[p];
        /* the pair's 16 code vectors stay in registers for every column */
        __m512i w0[8], w1[8];
#pragma GCC unroll 8
        for (int k = 0; k < 8; k++) {
            w0[k] = t->w[16 * p + k];
            w1[k] = t->w[16 * p + 8 + k];
        }
        for (int c = 0; c < nc; c++) {
            const block_q8_K *y = (const block_q8_K *)(a + (size_t)c * as) + b;
            __m512 is, ms;
            q4k_pair_col(w0, w1, saf, sbf, mp, y, p, &is, &ms);
            const __m512 da = _mm512_set1_ps(y->d);
            acc[c] = _mm512_fmadd_ps(is, _mm512_mul_ps(t->d, da), acc[c]);
            accm[c] = _mm512_fmadd_ps(ms, _mm512_mul_ps(t->dmin, da), accm[c]);
        }
    }
}

void kern_gemm_q4k_avx512(int64_t n, const void *w, size_t ws, int64_t r0, int64_t r1, const void *a,
                          size_t as, int64_t nc, float *out, size_t os)
{
    const uint8_t *wb = w, *ab = a;
    const int64_t nb = n / QK_K;
    q4k_tile t;
    __m512 acc[MAXC], accm[MAXC];
    for (int64_t r = r0; r + ROWS <= r1; r += ROWS)
        for (int64_t c0 = 0; c0 < nc; c0 += MAXC) {
            const int cn = (int)(nc - c0 < MAXC ? nc - c0 : MAXC);
            for (int c = 0; c < cn; c++)
                acc[c] = accm[c] = _mm512_setzero_ps();
            for (int64_t b = 0; b < nb; b++) {
                q4k_tile_load(&t, wb + (size_t)r * ws, ws, b);
                q4k_tile_cols(&t, b, ab + (size_t)c0 * as, as, cn, acc, accm);
            }
            for (int c = 0; c < cn; c++) {
                float v[ROWS];
                _mm512_storeu_ps(v, _mm512_sub_ps(acc[c], accm[c]));
                float *o = out + (size_t)(c0 + c) * os + (size_t)r;
                memcpy(o, v, sizeof v);
            }
        }
}

/* ---- the 16-row layout (repack_q4k.h) ---- */

/* Block b of a 16-row group in the layout into the tile: no transpose, the
 * codes' nibbles split and the scales unpacked in lanes (quant_k4_scales
 * on every row at once). */
static void q4k_tile_load_r16(q4k_tile *t, const uint8_t *g)
{
    const __m512i m4 = _mm512_set1_epi8(0x0F), ff = _mm512_set1_epi32(0xff),
                  ff00 = _mm512_set1_epi32(0xff00);
    t->d = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)g));
    t->dmin = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(g + 32)));
    const __m512i u0 = _mm512_loadu_si512(g + 64), u1 = _mm512_loadu_si512(g + 128),
                  u2 = _mm512_loadu_si512(g + 192);
    const __m512i k6 = _mm512_set1_epi32(0x3f3f3f3f), k4 = _mm512_set1_epi32(0x0f0f0f0f),
                  k2 = _mm512_set1_epi32(0x03030303);
    const __m512i s03 = _mm512_and_si512(u0, k6);
    const __m512i s47 = _mm512_or_si512(_mm512_and_si512(u2, k4),
                                        _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(u0, 6), k2), 4));
    const __m512i m03 = _mm512_and_si512(u1, k6);
    const __m512i m47 = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi32(u2, 4), k4),
                                        _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(u1, 6), k2), 4));
#pragma GCC unroll 4
    for (int j = 0; j < 4; j++) {
        t->sc[j] = _mm512_and_si512(_mm512_srli_epi32(s03, 8 * j), ff);
        t->sc[4 + j] = _mm512_and_si512(_mm512_srli_epi32(s47, 8 * j), ff);
    }
#pragma GCC unroll 2
    for (int h = 0; h < 2; h++) {
        const __m512i lo = _mm512_srli_epi32(m03, 16 * h), hi = _mm512_srli_epi32(m47, 16 * h);
        t->mp[h] = _mm512_or_si512(_mm512_and_si512(lo, ff), _mm512_slli_epi32(_mm512_and_si512(lo, ff00), 8));
        t->mp[2 + h] = _mm512_or_si512(_mm512_and_si512(hi, ff), _mm512_slli_epi32(_mm512_and_si512(hi, ff00), 8));
    }
    const uint8_t *codes = g + 256;
#pragma GCC unroll 8
    for (int j = 0; j < 32; j++) {
        const __m512i q = _mm512_loadu_si512(codes + 64 * j);
        /* dword j = qs bytes 4j..: low nibbles are elements 64(j/8) + 4(j%8)
         * on, high nibbles the same plus 32 - tile vectors 16(j/8) + j%8 and
         * that + 8 */
        t->w[16 * (j / 8) + j % 8] = _mm512_and_si512(q, m4);
        t->w[16 * (j / 8) + 8 + j % 8] = _mm512_and_si512(_mm512_srli_epi16(q, 4), m4);
    }
}

/* As q4k_tile_cols in the one-column order: the block's isum and msum per
 * column summed over the pairs as integers, then one fma each. */
static void q4k_tile_cols_gemv(const q4k_tile *t, int64_t b, const uint8_t *a, size_t as, int nc, __m512 *acc,
                               __m512 *accm)
{
    __m512i isum[MAXC], msum[MAXC];
    for (int c = 0; c < nc; c++)
        isum[c] = msum[c] = _mm512_setzero_si512();
    for (int p = 0; p < 4; p++) {
        const __m512i sa = t->sc[2 * p], sb = t->sc[2 * p + 1], mp = t->mp[p];
        __m512i w0[8], w1[8];
#pragma GCC unroll 8
        for (int k = 0; k < 8; k++) {
            w0[k] = t->w[16 * p + k];
            w1[k] = t->w[16 * p + 8 + k];
        }
        for (int c = 0; c < nc; c++) {
            __m512i da, db;
            const __m512i bp = q4k_pair_sums(w0, w1, (const block_q8_K *)(a + (size_t)c * as) + b, p, &da, &db);
            isum[c] = _mm512_add_epi32(isum[c],
                                       _mm512_add_epi32(_mm512_mullo_epi32(da, sa), _mm512_mullo_epi32(db, sb)));
            msum[c] = _mm512_dpwssd_epi32(msum[c], mp, bp);
        }
    }
    for (int c = 0; c < nc; c++) {
        const __m512 da = _mm512_set1_ps(((const block_q8_K *)(a + (size_t)c * as) + b)->d);
        acc[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum[c]), _mm512_mul_ps(t->d, da), acc[c]);
        accm[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(msum[c]), _mm512_mul_ps(t->dmin, da), accm[c]);
    }
}

void kern_q4k_r16_avx512(int64_t n, const void *w, size_t ws, int64_t r0, int64_t r1, const void *a, size_t as,
                         int64_t nc, int64_t ngemm, float *out, size_t os)
{
    const uint8_t *wb = w, *ab = a;
    const int64_t nb = n / QK_K;
    q4k_tile t;
    __m512 acc[MAXC], accm[MAXC];
    for (int64_t r = r0; r + ROWS <= r1; r += ROWS) {
        const uint8_t *grp = wb + (size_t)r * ws;
        for (int64_t c0 = 0; c0 < nc; c0 += MAXC) {
            const int cn = (int)(nc - c0 < MAXC ? nc - c0 : MAXC);
            /* columns [0, ng) of this pass in the gemm order */
            const int ng = ngemm <= c0 ? 0 : ngemm - c0 < cn ? (int)(ngemm - c0) : cn;
            for (int c = 0; c < cn; c++)
                acc[c] = accm[c] = _mm512_setzero_ps();
            for (int64_t b = 0; b < nb; b++) {
                /* two blocks ahead (4.6 KB): the hardware prefetcher alone
                 * leaves the tile loads waiting on DRAM (measured, 18432 x
                 * 7168, one core: 8 columns 10.9 -> 6.3 ms, 1 column 4.9
                 * -> 3.2 ms); past the matrix's end it touches nothing */
                const char *pf = (const char *)grp + (size_t)(b + 2) * (ROWS * sizeof(block_q4_K));
                for (size_t o = 0; o < ROWS * sizeof(block_q4_K); o += 64)
                    _mm_prefetch(pf + o, _MM_HINT_T0);
                q4k_tile_load_r16(&t, grp + (size_t)b * (ROWS * sizeof(block_q4_K)));
                const uint8_t *ac = ab + (size_t)c0 * as;
                if (ng)
                    q4k_tile_cols(&t, b, ac, as, ng, acc, accm);
                if (ng < cn)
                    q4k_tile_cols_gemv(&t, b, ac + (size_t)ng * as, as, cn - ng, acc + ng, accm + ng);
            }
            for (int c = 0; c < cn; c++) {
                float v[ROWS];
                _mm512_storeu_ps(v, _mm512_sub_ps(acc[c], accm[c]));
                memcpy(out + (size_t)(c0 + c) * os + (size_t)r, v, sizeof v);
            }
        }
    }
}
