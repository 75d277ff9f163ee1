/* quant_grids.h - the i-quant lookup grids (generated: simd/quant_grids.c).
 * Grid entries hold 8 (uint64) or 4 (uint32) byte values read in memory
 * order: byte 0 of the little-endian word is the first element. */
#ifndef MS_QUANT_GRIDS_H
#define MS_QUANT_GRIDS_H

#include <stdint.h>

extern const uint8_t kmask_iq2xs[8];
extern const uint8_t ksigns_iq2xs[128];
extern const uint64_t iq2xxs_grid[256];
extern const uint64_t iq2xs_grid[512];
extern const uint64_t iq2s_grid[1024];
extern const uint32_t iq3xxs_grid[256];
extern const uint32_t iq3s_grid[512];
extern const int8_t kvalues_iq4nl[16];
extern const uint64_t iq1s_grid[2048];

#define IQ1S_DELTA 0.125f
#define IQ1M_DELTA 0.125f

#endif
