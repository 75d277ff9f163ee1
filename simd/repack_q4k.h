/* repack_q4k.h - Q4_K's 16-row layout for RAM-resident dense weights.
 *
 * Why: a product of several activation columns in the one-column (gemv)
 * float order must reduce its integer lanes to one number per row, column
 * and block when rows run one at a time (kern_avx512.c q4k_gemv_cols4);
 * with sixteen rows side by side, one per int32 lane, nothing is reduced
 * and every dpbusd does 64 useful products (kern_gemm_avx512.c).  Plain
 * rows pay a transpose per 16-row block for that; this layout stores the
 * transposed bytes, so the decode rows of several sequences (serve
 * --parallel) and prompt chunks read it directly.  Same size as the rows.
 *
 * Layout: rows in groups of 16 (only matrices of whole groups are
 * converted); a group's n/256 blocks in order, each 2304 bytes:
 *   [0, 32)      d of rows 0-15 (halves)
 *   [32, 64)     dmin of rows 0-15 (halves)
 *   [64, 256)    scale dword s (0-2) of row r at 64 + 64 s + 4 r (the
 *                block's 12 packed scale bytes, as stored)
 *   [256, 2304)  code dword j (0-31) of row r at 256 + 64 j + 4 r (the
 *                block's 128 qs bytes, as stored)
 * so group g starts at 16 g row_bytes, as in the plain matrix, and a
 * group converts in place.
 *
 * Who uses it: model.c converts eligible resident Q4_K matrices where the
 * kernel table has the kernels (kern_table.q4k_r16_*; AVX-512 VNNI) and
 * --repack is not off, and marks them (mweight.r16); matmul.c calls those
 * kernels for them.  Results are bit for bit the plain kernels'. */
#ifndef MS_REPACK_Q4K_H
#define MS_REPACK_Q4K_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define REPACK_Q4K_ROWS 16
#define REPACK_Q4K_BLOCK_BYTES 2304 /* one block of a 16-row group */

/* true if an (n_out, n_in) Q4_K matrix can take the layout */
bool repack_q4k_fits(int64_t n_out, int64_t n_in);

/* Convert rows [0, n_out) of a plain Q4_K matrix at data (rows
 * quant_row_bytes apart) to the layout, in place.  Returns 0, -EINVAL if
 * the shape does not fit, -ENOMEM. */
int repack_q4k_matrix(void *data, int64_t n_out, int64_t n_in);

/* The inverse, in place (tests; a matrix handed back to plain code). */
int repack_q4k_unpack_matrix(void *data, int64_t n_out, int64_t n_in);

#endif
