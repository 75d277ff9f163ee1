/* repack.c - the repacked i-quant layouts (see repack.h): conversion from
 * and to the GGUF rows, and products over them.
 *
 * Owns: repack_*.  Does not own the AVX-512 kernel (kern_repack_avx512.c,
 * compiled with the ISA flags) nor the plain kernels it falls back to.
 * Invariants: conversion is exact both ways (repack_unpack_row gives back the
 * bytes repack_rows read), so every product over the repacked layout can be
 * checked against the plain kernels bit for bit. */
#include "repack.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "quant.h"
#include "quant_blocks.h"
#include "quant_grids.h"

/* ---- IQ1_S r16t5 geometry ---- */

#define IQ1S_CODE_BYTES (13 * 64)          /* per group and block */
#define IQ1S_SCALE_BYTES (REPACK_ROWS * 4) /* per group and block */
#define IQ1S_D_BYTES (REPACK_ROWS * 2)     /* per group and block */
#define IQ1S_GROUP_BLOCK (IQ1S_CODE_BYTES + IQ1S_SCALE_BYTES + IQ1S_D_BYTES)

static const uint8_t POW3[5] = {1, 3, 9, 27, 81};

/* 8 grid values as base-3 digits g+1 (digit i weighs 3^i) -> grid index,
 * 0xffff where no grid row has those values */
static uint16_t iq1s_rev[6561];
static pthread_once_t rev_once = PTHREAD_ONCE_INIT;

static void rev_init(void)
{
    memset(iq1s_rev, 0xff, sizeof iq1s_rev);
    for (int i = 0; i < 2048; i++) {
        int8_t g[8];
        memcpy(g, &iq1s_grid[i], 8);
        int code = 0;
        for (int j = 7; j >= 0; j--)
            code = 3 * code + (g[j] + 1);
        iq1s_rev[code] = (uint16_t)i;
    }
}

bool repack_has_layout(int type)
{
    return type == MS_TYPE_IQ1_S;
}

size_t repack_group_bytes(int type, int64_t n)
{
    if (!repack_has_layout(type) || n <= 0 || n % QK_K || n / QK_K > REPACK_MAX_BLOCKS)
        return 0;
    return (size_t)(n / QK_K) * IQ1S_GROUP_BLOCK;
}

size_t repack_bytes(int type, int64_t rows, int64_t n)
{
    const size_t gb = repack_group_bytes(type, n);
    if (!gb || rows <= 0)
        return 0;
    return (size_t)((rows + REPACK_ROWS - 1) / REPACK_ROWS) * gb;
}

/* the three arrays of group g, block b */
static uint8_t *iq1s_codes(const void *rp, int64_t nb, int64_t g, int64_t b)
{
    return (uint8_t *)rp + (size_t)g * (size_t)nb * IQ1S_GROUP_BLOCK + (size_t)b * IQ1S_CODE_BYTES;
}
static uint8_t *iq1s_scales(const void *rp, int64_t nb, int64_t g, int64_t b)
{
    return (uint8_t *)rp + (size_t)g * (size_t)nb * IQ1S_GROUP_BLOCK + (size_t)nb * IQ1S_CODE_BYTES +
           (size_t)b * IQ1S_SCALE_BYTES;
}
static uint8_t *iq1s_d(const void *rp, int64_t nb, int64_t g, int64_t b)
{
    return (uint8_t *)rp + (size_t)g * (size_t)nb * IQ1S_GROUP_BLOCK +
           (size_t)nb * (IQ1S_CODE_BYTES + IQ1S_SCALE_BYTES) + (size_t)b * IQ1S_D_BYTES;
}

/* one block of one row into lane r of its group */
static void iq1s_pack_block(const block_iq1_s *x, uint8_t *codes, uint8_t *scales, uint8_t *d, int r)
{
    uint8_t t[QK_K]; /* g + 1 per element */
    uint32_t sc = 0;
    for (int ib = 0; ib < 8; ib++) {
        const uint16_t h = x->qh[ib];
        sc |= (uint32_t)(((h >> 12) & 7) | ((h >> 15) << 3)) << (4 * ib);
        for (int l = 0; l < 4; l++) {
            int8_t g[8];
            memcpy(g, &iq1s_grid[x->qs[4 * ib + l] | (((h >> 3 * l) & 7) << 8)], 8);
            for (int j = 0; j < 8; j++)
                t[32 * ib + 8 * l + j] = (uint8_t)(g[j] + 1);
        }
    }
    memset(codes + 4 * r, 0, 4);
    for (int k = 0; k < 13; k++)
        for (int q = 0; q < 4; q++) {
            unsigned v = 0;
            for (int j = 0; j < 5; j++) {
                const int s = 5 * k + j;
                if (s < 64)
                    v += t[4 * s + q] * POW3[j];
            }
            codes[64 * k + 4 * r + q] = (uint8_t)v;
        }
    memcpy(scales + 4 * r, &sc, 4);
    memcpy(d + 2 * r, &x->d, 2);
}

static void iq1s_unpack_block(const uint8_t *codes, const uint8_t *scales, const uint8_t *d, int r, block_iq1_s *x)
{
    uint8_t t[QK_K];
    for (int k = 0; k < 13; k++)
        for (int q = 0; q < 4; q++) {
            unsigned v = codes[64 * k + 4 * r + q];
            for (int j = 0; j < 5; j++, v /= 3) {
                const int s = 5 * k + j;
                if (s < 64)
                    t[4 * s + q] = (uint8_t)(v % 3);
            }
        }
    uint32_t sc;
    memcpy(&sc, scales + 4 * r, 4);
    memcpy(&x->d, d + 2 * r, 2);
    for (int ib = 0; ib < 8; ib++) {
        const uint32_t nib = (sc >> (4 * ib)) & 15;
        uint16_t h = (uint16_t)(((nib & 7) << 12) | ((nib >> 3) << 15));
        for (int l = 0; l < 4; l++) {
            int code = 0;
            for (int j = 7; j >= 0; j--)
                code = 3 * code + t[32 * ib + 8 * l + j];
            const uint16_t idx = iq1s_rev[code] == 0xffff ? 0 : iq1s_rev[code];
            x->qs[4 * ib + l] = (uint8_t)idx;
            h |= (uint16_t)((idx >> 8) << (3 * l));
        }
        x->qh[ib] = h;
    }
}

/* ---- conversion ---- */

int repack_rows(int type, const void *src, size_t src_stride, int64_t rows, int64_t n, void *dst, char *err,
                size_t errlen)
{
    if (!repack_bytes(type, rows, n)) {
        snprintf(err, errlen, "repack: no layout for type %d with %lld rows of %lld elements", type,
                 (long long)rows, (long long)n);
        return -EINVAL;
    }
    pthread_once(&rev_once, rev_init);
    const int64_t nb = n / QK_K, ng = (rows + REPACK_ROWS - 1) / REPACK_ROWS;
    const block_iq1_s zero = {0};
    for (int64_t g = 0; g < ng; g++)
        for (int64_t b = 0; b < nb; b++)
            for (int r = 0; r < REPACK_ROWS; r++) {
                const int64_t row = g * REPACK_ROWS + r;
                const block_iq1_s *x = row < rows ? (const block_iq1_s *)((const uint8_t *)src + (size_t)row * src_stride) + b
                                                  : &zero;
                iq1s_pack_block(x, iq1s_codes(dst, nb, g, b), iq1s_scales(dst, nb, g, b), iq1s_d(dst, nb, g, b), r);
            }
    return 0;
}

void repack_unpack_row(int type, const void *rp, int64_t n, int64_t r, void *dst)
{
    (void)type;
    pthread_once(&rev_once, rev_init);
    const int64_t nb = n / QK_K, g = r / REPACK_ROWS;
    const int lane = (int)(r % REPACK_ROWS);
    block_iq1_s *x = dst;
    for (int64_t b = 0; b < nb; b++)
        iq1s_unpack_block(iq1s_codes(rp, nb, g, b), iq1s_scales(rp, nb, g, b), iq1s_d(rp, nb, g, b), lane, &x[b]);
}

/* ---- products ---- */

bool repack_fast(const kern_table *kt, int type)
{
#if defined(__x86_64__)
    return type == MS_TYPE_IQ1_S && !strcmp(kt->isa, "avx512");
#else
    (void)kt;
    (void)type;
    return false;
#endif
}

void repack_mul_mat(const kern_table *kt, int type, int64_t n, const void *rp, int64_t row0, int64_t row1,
                    const void *a, size_t a_stride, int64_t ncols, float *out, size_t out_stride)
{
    if (row0 >= row1)
        return;
#if defined(__x86_64__)
    if (repack_fast(kt, type)) {
        repack_iq1s_avx512(n, rp, row0 / REPACK_ROWS, (row1 + REPACK_ROWS - 1) / REPACK_ROWS, row0, row1, a,
                           a_stride, ncols, out, out_stride);
        return;
    }
#endif
    /* one plain row at a time through the table's own kernel */
    block_iq1_s row[REPACK_MAX_BLOCKS];
    for (int64_t r = row0; r < row1; r++) {
        repack_unpack_row(type, rp, n, r, row);
        kt->mul_mat[type](n, row, 0, 0, 1, a, a_stride, ncols, out + r, out_stride);
    }
}
