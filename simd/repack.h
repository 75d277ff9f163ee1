/* repack.h - the row-interleaved ("repacked") layouts of the 1.58-bit
 * i-quants and the products over them.
 *
 * A repacked tensor holds the same numbers as its GGUF rows in a layout made
 * for SIMD: REPACK_ROWS rows per group, side by side, with the grid codes
 * re-encoded so a kernel decodes them with table shuffles (no gathers, no
 * per-element scalar lookups).  Every product over it is bit-identical to the
 * plain kernels (and so to simd/quant_ref.c): the integer sums per block and
 * the float order per row are the reference's.
 *
 * Layout (IQ1_S, "r16t5"): rows in groups of 16 (the last group padded with
 * zero rows); a group holds its nb = n/256 blocks as three arrays:
 *   codes  nb x 13 x 64 bytes: the 64 "tuples" of a row's block (tuple s =
 *          elements 4s..4s+3, one reference lane s%8 of sub-block s/8) as
 *          base-3 digits g+1 in {0,1,2}: dword k of row r (bytes k*64 + 4r)
 *          byte q holds element q of tuples 5k..5k+4 as digits 0..4 (digit
 *          j weighs 3^j; tuple 64 does not exist and is 0);
 *   scales nb x 16 x uint32: row r's word, nibble ib = ls3 | sign << 3 of
 *          sub-block ib (qh bits 12-14 and 15);
 *   d      nb x 16 x uint16: the block scales (halves).
 * 58 bytes per row and block against the GGUF's 50 (1.16x).
 * IQ1_M: the same codes (its grid is IQ1_S's); scales, delta signs and d as
 * described in repack.c's geometry: 66 bytes per row and block against 56
 * (1.18x).
 *
 * Who does what: repack_rows / repack_unpack_rows convert (both ways, exact);
 * repack_mul_mat computes products with the best kernel for a kern_table (the
 * AVX-512 kernel when the table is avx512, otherwise rows unpacked into a
 * scratch on the stack and the table's plain mul_mat: slower, bit-identical,
 * what NEON and the scalar table run). */
#ifndef MS_REPACK_H
#define MS_REPACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kernels.h"

#define REPACK_ROWS 16
/* the unpacking path keeps one plain row on the stack */
#define REPACK_MAX_BLOCKS 256

/* true if `type` has a repacked layout (IQ1_S, IQ1_M) */
bool repack_has_layout(int type);

/* Bytes of a repacked (rows, n) tensor of `type`; 0 if the type has no
 * layout or n is not a positive multiple of 256 (n/256 <= REPACK_MAX_BLOCKS). */
size_t repack_bytes(int type, int64_t rows, int64_t n);

/* Bytes of one group of REPACK_ROWS rows (the stride between groups). */
size_t repack_group_bytes(int type, int64_t n);

/* Repack rows [0, rows) of a plain tensor (row r at src + r*src_stride) into
 * dst (repack_bytes(type, rows, n) bytes).  Returns 0, or -EINVAL with err
 * filled (unsupported type or shape, a grid index past the table). */
int repack_rows(int type, const void *src, size_t src_stride, int64_t rows, int64_t n, void *dst, char *err,
                size_t errlen);

/* The plain GGUF bytes of row r of a repacked tensor into dst
 * (quant_row_bytes(type, n) bytes), byte for byte what repack_rows read. */
void repack_unpack_row(int type, const void *rp, int64_t n, int64_t r, void *dst);

/* Rows [0, rows) of the repacked tensor rp back to the plain GGUF rows,
 * row r at dst + r * dst_stride (dst_stride = quant_row_bytes(type, n)):
 * how a file of `moestream repack` runs where its experts are kept plain.
 * In place is allowed when rp >= dst + REPACK_ROWS * dst_stride: row r of
 * group g then ends by dst + (g+1) x 16 plain rows <= rp + g x the group
 * bytes (a group's plain rows are never longer than its repacked bytes),
 * where group g starts, so nothing is overwritten before it is read. */
void repack_unpack_rows(int type, const void *rp, int64_t n, int64_t rows, void *dst, size_t dst_stride);

/* out[c*out_stride + r] = dot(row r, column c) for r in [row0, row1) of the
 * repacked tensor rp, columns as in kern_mul_mat_fn (activations quantized
 * to quant_info(type)->act_type).  Bit-identical to kt->mul_mat[type] on the
 * plain rows.  Rows are computed a group at a time: callers that split rows
 * over threads split on multiples of REPACK_ROWS to not decode twice. */
void repack_mul_mat(const kern_table *kt, int type, int64_t n, const void *rp, int64_t row0, int64_t row1,
                    const void *a, size_t a_stride, int64_t ncols, float *out, size_t out_stride);

/* true if repack_mul_mat has a dedicated kernel for this table and type
 * (otherwise it unpacks: use the plain layout instead there) */
bool repack_fast(const kern_table *kt, int type);

/* ---- the policy: which tensors a model keeps repacked ----
 * auto (default): the types this CPU's kernel table has a repacked kernel
 * for (repack_fast) where a start-up measurement (~1 ms, once) finds it
 * faster than the plain kernel; on: every type with a layout (tables
 * without repacked kernels unpack rows: slower, bit-identical; for tests);
 * off: none.  Set once at
 * start-up, before a model is loaded: from MOESTREAM_REPACK when set, or
 * --repack. */
enum { REPACK_AUTO = 0, REPACK_ON = 1, REPACK_OFF = 2 };

/* "auto", "on" or "off" -> the process-wide mode; -EINVAL otherwise. */
int repack_mode_set(const char *mode);
int repack_mode(void);

/* true if a (rows, n) tensor of `type` is to be kept repacked under the
 * current mode and kernel table (kern_get) */
bool repack_use(int type, int64_t n);

/* One line for -v: the mode, the choice per type and why. */
void repack_describe(char *buf, size_t len);

/* internal: the codes array's bytes per group and block (13 x 64) */
#define REPACK_CODE_BYTES 832

/* internal: the AVX-512 kernels (simd/kern_repack_avx512.c), whole groups
 * [g0, g1) of an IQ1_S or IQ1_M tensor (groups gbytes =
 * repack_group_bytes(type, n) apart: passed in so the kernel file calls
 * nothing in repack.c, which calls it), rows stored only where in
 * [row0, row1) */
#if defined(__x86_64__)
void repack_avx512(int type, int64_t n, const void *rp, size_t gbytes, int64_t g0, int64_t g1, int64_t row0,
                   int64_t row1, const void *a, size_t a_stride, int64_t ncols, float *out, size_t out_stride);
#endif

#endif
