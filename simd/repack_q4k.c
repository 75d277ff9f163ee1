/* repack_q4k.c - Q4_K's 16-row layout: conversion both ways, in place.
 *
 * Owns: repack_q4k_fits, repack_q4k_matrix, repack_q4k_unpack_matrix
 * (repack_q4k.h).  Does not own: the products over the layout
 * (kern_gemm_avx512.c), the decision to convert (model.c). */
#include "repack_q4k.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "quant_blocks.h"

_Static_assert(REPACK_Q4K_BLOCK_BYTES == REPACK_Q4K_ROWS * sizeof(block_q4_K), "q4k r16 block");

bool repack_q4k_fits(int64_t n_out, int64_t n_in)
{
    return n_out > 0 && n_in > 0 && n_out % REPACK_Q4K_ROWS == 0 && n_in % QK_K == 0;
}

/* one group, plain rows (src) <-> layout (dst), per direction */
static void pack_group(const uint8_t *src, size_t rb, int64_t nb, uint8_t *dst)
{
    for (int64_t b = 0; b < nb; b++) {
        uint8_t *o = dst + (size_t)b * REPACK_Q4K_BLOCK_BYTES;
        for (int r = 0; r < REPACK_Q4K_ROWS; r++) {
            const uint8_t *blk = src + (size_t)r * rb + (size_t)b * sizeof(block_q4_K);
            memcpy(o + 2 * r, blk, 2);
            memcpy(o + 32 + 2 * r, blk + 2, 2);
            for (int s = 0; s < 3; s++)
                memcpy(o + 64 + 64 * s + 4 * r, blk + 4 + 4 * s, 4);
            for (int j = 0; j < 32; j++)
                memcpy(o + 256 + 64 * j + 4 * r, blk + 16 + 4 * j, 4);
        }
    }
}

static void unpack_group(const uint8_t *src, size_t rb, int64_t nb, uint8_t *dst)
{
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *g = src + (size_t)b * REPACK_Q4K_BLOCK_BYTES;
        for (int r = 0; r < REPACK_Q4K_ROWS; r++) {
            uint8_t *blk = dst + (size_t)r * rb + (size_t)b * sizeof(block_q4_K);
            memcpy(blk, g + 2 * r, 2);
            memcpy(blk + 2, g + 32 + 2 * r, 2);
            for (int s = 0; s < 3; s++)
                memcpy(blk + 4 + 4 * s, g + 64 + 64 * s + 4 * r, 4);
            for (int j = 0; j < 32; j++)
                memcpy(blk + 16 + 4 * j, g + 256 + 64 * j + 4 * r, 4);
        }
    }
}

static int convert(void *data, int64_t n_out, int64_t n_in, bool to_layout)
{
    if (!repack_q4k_fits(n_out, n_in))
        return -EINVAL;
    const int64_t nb = n_in / QK_K;
    const size_t rb = (size_t)nb * sizeof(block_q4_K), gb = rb * REPACK_Q4K_ROWS;
    uint8_t *tmp = malloc(gb);
    if (!tmp)
        return -ENOMEM;
    for (int64_t g = 0; g < n_out / REPACK_Q4K_ROWS; g++) {
        uint8_t *p = (uint8_t *)data + (size_t)g * gb;
        memcpy(tmp, p, gb);
        if (to_layout)
            pack_group(tmp, rb, nb, p);
        else
            unpack_group(tmp, rb, nb, p);
    }
    free(tmp);
    return 0;
}

int repack_q4k_matrix(void *data, int64_t n_out, int64_t n_in) { return convert(data, n_out, n_in, true); }

int repack_q4k_unpack_matrix(void *data, int64_t n_out, int64_t n_in)
{
    return convert(data, n_out, n_in, false);
}
