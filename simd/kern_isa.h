/* kern_isa.h - internal: the per-ISA kernel tables (simd/kern_<isa>.c),
 * for kern_dispatch.c and the tests that compare ISAs.  Each returns a
 * filled table: a copy of the table below it with the entries it
 * accelerates replaced (avx2 and neon start from the scalar table, avx512
 * from avx2's, as every CPU with the avx512 set has avx2).  Which exist
 * depends on the target architecture (not weak symbols: an archive member
 * is never pulled in for a weak reference).
 * Layering: kern_dispatch -> kern_avx512 -> kern_avx2 -> kern_scalar ->
 * quant_*; kern_neon -> kern_scalar.  No ISA file calls dispatch. */
#ifndef MS_KERN_ISA_H
#define MS_KERN_ISA_H

#include "kern_scalar.h"
#include "kernels.h"

#if defined(__x86_64__)
#define KERN_HAVE_AVX2 1
const kern_table *kern_table_avx2(void);
#define KERN_HAVE_AVX512 1
const kern_table *kern_table_avx512(void);
#endif
#if defined(__aarch64__)
#define KERN_HAVE_NEON 1
const kern_table *kern_table_neon(void);
#endif

#endif
