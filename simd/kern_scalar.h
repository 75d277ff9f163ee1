/* kern_scalar.h - internal: the scalar kernel table and the generic mul_mat
 * (simd/kern_scalar.c), the layer every ISA table builds on.  Depends only
 * on the traits table (quant.h) and the kernel types (kernels.h). */
#ifndef MS_KERN_SCALAR_H
#define MS_KERN_SCALAR_H

#include "kernels.h"

/* The scalar reference table; never NULL, immutable once returned.  ISA
 * tables start from a copy of it. */
const kern_table *kern_table_scalar(void);

/* Generic mul_mat over a vec_dot (row-outer, each row against every column):
 * what ISA tables use for types they do not specialise.  ti is unused (kept
 * for callers that pass it). */
void kern_mul_mat_generic(kern_vec_dot_fn dot, const quant_type_info *ti, int64_t n, const void *w,
                          size_t w_stride, int64_t row0, int64_t row1, const void *a,
                          size_t a_stride, int64_t ncols, float *out, size_t out_stride);

#endif
