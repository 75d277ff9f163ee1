/* quant_blocks.h - the block layouts of every tensor type (DEEPSEEK-FACTS
 * 5.1-5.4; byte-compatible with ggml).  Halves are raw IEEE binary16 bits.
 * Each struct is followed by a check of its size against the reference's
 * (ggml's type_traits), the one place those byte counts are written; the
 * traits table (quant_traits.c) takes sizeof these structs.  Q8_0 doubles as
 * the activation format for Q4_0/Q5_0/Q8_0/IQ4_NL weights. */
#ifndef MS_QUANT_BLOCKS_H
#define MS_QUANT_BLOCKS_H

#include <stdint.h>
#include <string.h>

#define QK_K 256
#define QK8_0 32
#define QK8_1 32
#define QK4_0 32
#define QK4_1 32
#define QK5_0 32
#define QK5_1 32
#define QK4_NL 32
#define K_SCALE_SIZE 12

typedef struct { uint16_t d; int8_t qs[QK8_0]; } block_q8_0;
_Static_assert(sizeof(block_q8_0) == 34, "q8_0");

typedef struct { uint16_t d; uint8_t qs[QK4_0 / 2]; } block_q4_0;
_Static_assert(sizeof(block_q4_0) == 18, "q4_0");

typedef struct { uint16_t d, m; uint8_t qs[QK4_1 / 2]; } block_q4_1;
_Static_assert(sizeof(block_q4_1) == 20, "q4_1");

typedef struct { uint16_t d; uint8_t qh[4]; uint8_t qs[QK5_0 / 2]; } block_q5_0;
_Static_assert(sizeof(block_q5_0) == 22, "q5_0");

typedef struct { uint16_t d, m; uint8_t qh[4]; uint8_t qs[QK5_1 / 2]; } block_q5_1;
_Static_assert(sizeof(block_q5_1) == 24, "q5_1");

/* Q8_1: activation format for Q4_1/Q5_1: d and s = d * sum(qs) as halves. */
typedef struct { uint16_t d, s; int8_t qs[QK8_1]; } block_q8_1;
_Static_assert(sizeof(block_q8_1) == 36, "q8_1");

typedef struct { uint8_t scales[QK_K / 16]; uint8_t qs[QK_K / 4]; uint16_t d, dmin; } block_q2_K;
_Static_assert(sizeof(block_q2_K) == 84, "q2_K");

typedef struct { uint8_t hmask[QK_K / 8]; uint8_t qs[QK_K / 4]; uint8_t scales[12]; uint16_t d; } block_q3_K;
_Static_assert(sizeof(block_q3_K) == 110, "q3_K");

typedef struct { uint16_t d, dmin; uint8_t scales[K_SCALE_SIZE]; uint8_t qs[QK_K / 2]; } block_q4_K;
_Static_assert(sizeof(block_q4_K) == 144, "q4_K");

/* Q4_K/Q5_K's 12 packed scale bytes -> out bytes 0-7 the eight 6-bit
 * scales, bytes 8-15 the eight mins (get_scale_min_k4's values), as four
 * words for the SIMD kernels to load. */
static inline void quant_k4_scales(const uint8_t p[12], uint32_t out[4])
{
    memcpy(out, p, 12);
    const uint32_t m6 = 0x3f3f3f3f, m4 = 0x0f0f0f0f, m2 = 0x03030303;
    out[3] = ((out[2] >> 4) & m4) | (((out[1] >> 6) & m2) << 4);
    const uint32_t mins_lo = out[1] & m6;
    out[1] = (out[2] & m4) | (((out[0] >> 6) & m2) << 4);
    out[2] = mins_lo;
    out[0] &= m6;
}

typedef struct { uint16_t d, dmin; uint8_t scales[K_SCALE_SIZE]; uint8_t qh[QK_K / 8]; uint8_t qs[QK_K / 2]; } block_q5_K;
_Static_assert(sizeof(block_q5_K) == 176, "q5_K");

typedef struct { uint8_t ql[QK_K / 2]; uint8_t qh[QK_K / 4]; int8_t scales[QK_K / 16]; uint16_t d; } block_q6_K;
_Static_assert(sizeof(block_q6_K) == 210, "q6_K");

/* Activation format: f32 scale, int8 values, sums of each 16 values. */
typedef struct { float d; int8_t qs[QK_K]; int16_t bsums[QK_K / 16]; } block_q8_K;
_Static_assert(sizeof(block_q8_K) == 292, "q8_K");

typedef struct { uint16_t d; uint16_t qs[QK_K / 8]; } block_iq2_xxs;
_Static_assert(sizeof(block_iq2_xxs) == 66, "iq2_xxs");

typedef struct { uint16_t d; uint16_t qs[QK_K / 8]; uint8_t scales[QK_K / 32]; } block_iq2_xs;
_Static_assert(sizeof(block_iq2_xs) == 74, "iq2_xs");

typedef struct { uint16_t d; uint8_t qs[QK_K / 4]; uint8_t qh[QK_K / 32]; uint8_t scales[QK_K / 32]; } block_iq2_s;
_Static_assert(sizeof(block_iq2_s) == 82, "iq2_s");

typedef struct { uint16_t d; uint8_t qs[3 * QK_K / 8]; } block_iq3_xxs;
_Static_assert(sizeof(block_iq3_xxs) == 98, "iq3_xxs");

typedef struct { uint16_t d; uint8_t qs[QK_K / 4]; uint8_t qh[QK_K / 32]; uint8_t signs[QK_K / 8]; uint8_t scales[QK_K / 64]; } block_iq3_s;
_Static_assert(sizeof(block_iq3_s) == 110, "iq3_s");

typedef struct { uint16_t d; uint8_t qs[QK_K / 8]; uint16_t qh[QK_K / 32]; } block_iq1_s;
_Static_assert(sizeof(block_iq1_s) == 50, "iq1_s");

typedef struct { uint8_t qs[QK_K / 8]; uint8_t qh[QK_K / 16]; uint8_t scales[QK_K / 32]; } block_iq1_m;
_Static_assert(sizeof(block_iq1_m) == 56, "iq1_m");

typedef struct { uint16_t d; uint8_t qs[QK4_NL / 2]; } block_iq4_nl;
_Static_assert(sizeof(block_iq4_nl) == 18, "iq4_nl");

typedef struct { uint16_t d; uint16_t scales_h; uint8_t scales_l[QK_K / 64]; uint8_t qs[QK_K / 2]; } block_iq4_xs;
_Static_assert(sizeof(block_iq4_xs) == 136, "iq4_xs");

/* ---- moestream-private: the repacked 16-row groups (simd/repack.h) ----
 * One block of 16 rows (256 elements each) of a routed-expert tensor stored
 * by `moestream repack` (types MS_TYPE_*_R16, quant.h).  Inside a group the
 * arrays are laid out array-major over the group's blocks (repack.c's
 * geometry), so these structs give the sizes, not the placement; the traits
 * table takes a row's share, sizeof / 16, as the bytes per row and block. */
typedef struct { uint8_t codes[13 * 64]; uint32_t scales[16]; uint16_t d[16]; } block_iq1_s_r16;
_Static_assert(sizeof(block_iq1_s_r16) == 16 * 58, "iq1_s_r16");

typedef struct { uint8_t codes[13 * 64]; uint32_t scales_lo[16], scales_hi[16], delta[16]; uint16_t d[16]; } block_iq1_m_r16;
_Static_assert(sizeof(block_iq1_m_r16) == 16 * 66, "iq1_m_r16");

typedef struct { uint8_t grid[8 * 64]; uint8_t signs[64 * 8]; uint32_t scales[16]; uint16_t d[16]; } block_iq2_xxs_r16;
_Static_assert(sizeof(block_iq2_xxs_r16) == 16 * 70, "iq2_xxs_r16");

#endif
