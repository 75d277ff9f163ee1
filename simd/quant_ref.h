/* quant_ref.h - internal: the scalar reference, one function per type
 * (simd/quant_ref.c).  Only the traits table (quant_traits.c) names them;
 * everyone else reaches them through quant_info(type)'s columns or the
 * kernel table, so a type is added in one row.  Signatures are the
 * quant_*_fn types of quant.h.  Pure and reentrant. */
#ifndef MS_QUANT_REF_H
#define MS_QUANT_REF_H

#include "quant.h"

/* dequantization: dst[0,n) from n elements (a block multiple) at src */
void quant_ref_dequant_f32(const void *src, float *dst, int64_t n);
void quant_ref_dequant_f16(const void *src, float *dst, int64_t n);
void quant_ref_dequant_bf16(const void *src, float *dst, int64_t n);
void quant_ref_dequant_q4_0(const void *src, float *dst, int64_t n);
void quant_ref_dequant_q4_1(const void *src, float *dst, int64_t n);
void quant_ref_dequant_q5_0(const void *src, float *dst, int64_t n);
void quant_ref_dequant_q5_1(const void *src, float *dst, int64_t n);
void quant_ref_dequant_q8_0(const void *src, float *dst, int64_t n);
void quant_ref_dequant_q8_1(const void *src, float *dst, int64_t n);
void quant_ref_dequant_q2_K(const void *src, float *dst, int64_t n);
void quant_ref_dequant_q3_K(const void *src, float *dst, int64_t n);
void quant_ref_dequant_q4_K(const void *src, float *dst, int64_t n);
void quant_ref_dequant_q5_K(const void *src, float *dst, int64_t n);
void quant_ref_dequant_q6_K(const void *src, float *dst, int64_t n);
void quant_ref_dequant_q8_K(const void *src, float *dst, int64_t n);
void quant_ref_dequant_iq2_xxs(const void *src, float *dst, int64_t n);
void quant_ref_dequant_iq2_xs(const void *src, float *dst, int64_t n);
void quant_ref_dequant_iq2_s(const void *src, float *dst, int64_t n);
void quant_ref_dequant_iq3_xxs(const void *src, float *dst, int64_t n);
void quant_ref_dequant_iq3_s(const void *src, float *dst, int64_t n);
void quant_ref_dequant_iq1_s(const void *src, float *dst, int64_t n);
void quant_ref_dequant_iq1_m(const void *src, float *dst, int64_t n);
void quant_ref_dequant_iq4_nl(const void *src, float *dst, int64_t n);
void quant_ref_dequant_iq4_xs(const void *src, float *dst, int64_t n);

/* activation quantization, with the reference's x86 rounding */
void quant_ref_from_float_f32(const float *x, void *dst, int64_t n);
void quant_ref_from_float_f16(const float *x, void *dst, int64_t n);
void quant_ref_from_float_bf16(const float *x, void *dst, int64_t n);
void quant_ref_from_float_q8_0(const float *x, void *dst, int64_t n);
void quant_ref_from_float_q8_1(const float *x, void *dst, int64_t n);
void quant_ref_from_float_q8_K(const float *x, void *dst, int64_t n);

/* dot products: weight row of the type x activation row of its act_type */
void quant_ref_dot_f32(int64_t n, float *s, const void *w, const void *a);
void quant_ref_dot_f16(int64_t n, float *s, const void *w, const void *a);
void quant_ref_dot_bf16(int64_t n, float *s, const void *w, const void *a);
void quant_ref_dot_q4_0(int64_t n, float *s, const void *w, const void *a);
void quant_ref_dot_q4_1(int64_t n, float *s, const void *w, const void *a);
void quant_ref_dot_q5_0(int64_t n, float *s, const void *w, const void *a);
void quant_ref_dot_q5_1(int64_t n, float *s, const void *w, const void *a);
void quant_ref_dot_q8_0(int64_t n, float *s, const void *w, const void *a);
void quant_ref_dot_q2_K(int64_t n, float *s, const void *w, const void *a);
void quant_ref_dot_q3_K(int64_t n, float *s, const void *w, const void *a);
void quant_ref_dot_q4_K(int64_t n, float *s, const void *w, const void *a);
void quant_ref_dot_q5_K(int64_t n, float *s, const void *w, const void *a);
void quant_ref_dot_q6_K(int64_t n, float *s, const void *w, const void *a);
void quant_ref_dot_iq2_xxs(int64_t n, float *s, const void *w, const void *a);
void quant_ref_dot_iq2_xs(int64_t n, float *s, const void *w, const void *a);
void quant_ref_dot_iq2_s(int64_t n, float *s, const void *w, const void *a);
void quant_ref_dot_iq3_xxs(int64_t n, float *s, const void *w, const void *a);
void quant_ref_dot_iq3_s(int64_t n, float *s, const void *w, const void *a);
void quant_ref_dot_iq1_s(int64_t n, float *s, const void *w, const void *a);
void quant_ref_dot_iq1_m(int64_t n, float *s, const void *w, const void *a);
void quant_ref_dot_iq4_nl(int64_t n, float *s, const void *w, const void *a);
void quant_ref_dot_iq4_xs(int64_t n, float *s, const void *w, const void *a);

/* mul_mat for the types whose float order depends on the column count */
void quant_ref_mul_mat_f32(int64_t n, const void *w, size_t w_stride, int64_t row0, int64_t row1,
                           const void *a, size_t a_stride, int64_t ncols, float *out, size_t out_stride);
void quant_ref_mul_mat_f16(int64_t n, const void *w, size_t w_stride, int64_t row0, int64_t row1,
                           const void *a, size_t a_stride, int64_t ncols, float *out, size_t out_stride);
void quant_ref_mul_mat_bf16(int64_t n, const void *w, size_t w_stride, int64_t row0, int64_t row1,
                            const void *a, size_t a_stride, int64_t ncols, float *out, size_t out_stride);
void quant_ref_mul_mat_q4_K(int64_t n, const void *w, size_t w_stride, int64_t row0, int64_t row1,
                            const void *a, size_t a_stride, int64_t ncols, float *out, size_t out_stride);
void quant_ref_mul_mat_q2_K(int64_t n, const void *w, size_t w_stride, int64_t row0, int64_t row1,
                            const void *a, size_t a_stride, int64_t ncols, float *out, size_t out_stride);

#endif
