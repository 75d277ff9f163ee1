/* kern_dispatch.c - picks the kernel table once: CPU features (cpuid plus
 * the OS's xgetbv save-state check on x86, hwcaps on aarch64), overridable
 * with MOESTREAM_SIMD=scalar|avx2|avx512|neon.  Also owns the scalar table,
 * whose entries are the reference functions of quant_ref.c. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kern_isa.h"
#include "quant.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

/* ---- scalar table ---- */

#define SCALAR_DOT(T)                                                                              \
    static void dot_##T(int64_t n, float *s, const void *w, const void *a)                         \
    {                                                                                              \
        quant_vec_dot_ref(T, n, s, w, a);                                                          \
    }                                                                                              \
    static void mm_##T(int64_t n, const void *w, size_t ws, int64_t r0, int64_t r1, const void *a, \
                       size_t as, int64_t nc, float *o, size_t os)                                 \
    {                                                                                              \
        kern_mul_mat_generic(dot_##T, quant_info(T), n, w, ws, r0, r1, a, as, nc, o, os);          \
    }
#define SCALAR_DQ(T)                                                                               \
    static void dq_##T(const void *src, float *dst, int64_t n) { quant_dequantize_row(T, src, dst, n); }
#define SCALAR_Q(T)                                                                                \
    static void q_##T(const float *x, void *d, int64_t n) { quant_quantize_row(T, x, d, n); }

SCALAR_DOT(MS_TYPE_F32) SCALAR_DOT(MS_TYPE_F16) SCALAR_DOT(MS_TYPE_BF16)
SCALAR_DOT(MS_TYPE_Q4_0) SCALAR_DOT(MS_TYPE_Q4_1) SCALAR_DOT(MS_TYPE_Q5_0)
SCALAR_DOT(MS_TYPE_Q5_1) SCALAR_DOT(MS_TYPE_Q8_0) SCALAR_DOT(MS_TYPE_Q2_K)
SCALAR_DOT(MS_TYPE_Q3_K) SCALAR_DOT(MS_TYPE_Q4_K) SCALAR_DOT(MS_TYPE_Q5_K)
SCALAR_DOT(MS_TYPE_Q6_K) SCALAR_DOT(MS_TYPE_IQ2_XXS) SCALAR_DOT(MS_TYPE_IQ2_XS)
SCALAR_DOT(MS_TYPE_IQ2_S) SCALAR_DOT(MS_TYPE_IQ3_XXS) SCALAR_DOT(MS_TYPE_IQ3_S)
SCALAR_DOT(MS_TYPE_IQ1_S) SCALAR_DOT(MS_TYPE_IQ1_M) SCALAR_DOT(MS_TYPE_IQ4_NL)
SCALAR_DOT(MS_TYPE_IQ4_XS)
SCALAR_DQ(MS_TYPE_F32) SCALAR_DQ(MS_TYPE_F16) SCALAR_DQ(MS_TYPE_BF16)
SCALAR_DQ(MS_TYPE_Q4_0) SCALAR_DQ(MS_TYPE_Q4_1) SCALAR_DQ(MS_TYPE_Q5_0)
SCALAR_DQ(MS_TYPE_Q5_1) SCALAR_DQ(MS_TYPE_Q8_0) SCALAR_DQ(MS_TYPE_Q2_K)
SCALAR_DQ(MS_TYPE_Q3_K) SCALAR_DQ(MS_TYPE_Q4_K) SCALAR_DQ(MS_TYPE_Q5_K)
SCALAR_DQ(MS_TYPE_Q6_K) SCALAR_DQ(MS_TYPE_IQ2_XXS) SCALAR_DQ(MS_TYPE_IQ2_XS)
SCALAR_DQ(MS_TYPE_IQ2_S) SCALAR_DQ(MS_TYPE_IQ3_XXS) SCALAR_DQ(MS_TYPE_IQ3_S)
SCALAR_DQ(MS_TYPE_IQ1_S) SCALAR_DQ(MS_TYPE_IQ1_M) SCALAR_DQ(MS_TYPE_IQ4_NL)
SCALAR_DQ(MS_TYPE_IQ4_XS)
SCALAR_Q(MS_TYPE_F32) SCALAR_Q(MS_TYPE_F16) SCALAR_Q(MS_TYPE_BF16) SCALAR_Q(MS_TYPE_Q8_0)
SCALAR_Q(MS_TYPE_Q8_1) SCALAR_Q(MS_TYPE_Q8_K)

void kern_mul_mat_generic(kern_vec_dot_fn dot, const quant_type_info *ti, int64_t n, const void *w,
                          size_t w_stride, int64_t row0, int64_t row1, const void *a,
                          size_t a_stride, int64_t ncols, float *out, size_t out_stride)
{
    (void)ti;
    const uint8_t *wb = w, *ab = a;
    /* Row-outer: each weight row is fetched once and stays in cache for all
     * activation columns. */
    for (int64_t r = row0; r < row1; r++)
        for (int64_t c = 0; c < ncols; c++)
            dot(n, &out[(size_t)c * out_stride + (size_t)r], wb + (size_t)r * w_stride,
                ab + (size_t)c * a_stride);
}

static void mm_f32_ref(int64_t n, const void *w, size_t ws, int64_t r0, int64_t r1, const void *a,
                       size_t as, int64_t nc, float *o, size_t os)
{
    quant_mul_mat_f32_ref(n, w, ws, r0, r1, a, as, nc, o, os);
}

/* Columns [0, ncols - ncols % 4) in the reference's gemm order, the rest
 * in its gemv order (quant_dot_q4_K_x86). */
#define MM_REPACK_REF(NAME, FN)                                                                    \
    static void NAME(int64_t n, const void *w, size_t ws, int64_t r0, int64_t r1, const void *a,  \
                     size_t as, int64_t nc, float *o, size_t os)                                  \
    {                                                                                              \
        const int64_t ngemm = nc - nc % 4;                                                         \
        for (int64_t r = r0; r < r1; r++)                                                          \
            for (int64_t c = 0; c < nc; c++)                                                       \
                o[(size_t)c * os + (size_t)r] = FN(n, (const uint8_t *)w + (size_t)r * ws,         \
                                                   (const uint8_t *)a + (size_t)c * as, c < ngemm); \
    }
MM_REPACK_REF(mm_q4_K_ref, quant_dot_q4_K_x86)
MM_REPACK_REF(mm_q2_K_ref, quant_dot_q2_K_x86)

/* F16/BF16: tinyBLAS order for two or more columns (quant_order_by_cols). */
#define MM_HALF_REF(NAME, FN)                                                                      \
    static void NAME(int64_t n, const void *w, size_t ws, int64_t r0, int64_t r1, const void *a,  \
                     size_t as, int64_t nc, float *o, size_t os)                                  \
    {                                                                                              \
        for (int64_t r = r0; r < r1; r++)                                                          \
            for (int64_t c = 0; c < nc; c++)                                                       \
                o[(size_t)c * os + (size_t)r] = FN(n, (const uint8_t *)w + (size_t)r * ws,         \
                                                   (const uint8_t *)a + (size_t)c * as, nc >= 2);  \
    }
MM_HALF_REF(mm_f16_ref, quant_dot_f16_x86)
MM_HALF_REF(mm_bf16_ref, quant_dot_bf16_x86)

static void axpy_f32_ref(int64_t n, float a, const float *x, float *y)
{
    for (int64_t i = 0; i < n; i++)
        y[i] += a * x[i];
}

static kern_table scalar_tab;

static void scalar_init(void)
{
    kern_table *t = &scalar_tab;
    t->isa = "scalar";
#define SET(T)                                                                                     \
    t->vec_dot[T] = dot_##T;                                                                       \
    t->mul_mat[T] = mm_##T;                                                                        \
    t->dequant[T] = dq_##T;
    SET(MS_TYPE_F32) SET(MS_TYPE_F16) SET(MS_TYPE_BF16) SET(MS_TYPE_Q4_0) SET(MS_TYPE_Q4_1)
    SET(MS_TYPE_Q5_0) SET(MS_TYPE_Q5_1) SET(MS_TYPE_Q8_0) SET(MS_TYPE_Q2_K) SET(MS_TYPE_Q3_K)
    SET(MS_TYPE_Q4_K) SET(MS_TYPE_Q5_K) SET(MS_TYPE_Q6_K) SET(MS_TYPE_IQ2_XXS)
    SET(MS_TYPE_IQ2_XS) SET(MS_TYPE_IQ2_S) SET(MS_TYPE_IQ3_XXS) SET(MS_TYPE_IQ3_S)
    SET(MS_TYPE_IQ1_S) SET(MS_TYPE_IQ1_M) SET(MS_TYPE_IQ4_NL) SET(MS_TYPE_IQ4_XS)
#undef SET
    t->axpy_f32 = axpy_f32_ref;
    t->mul_mat[MS_TYPE_F32] = mm_f32_ref;
    t->mul_mat[MS_TYPE_Q4_K] = mm_q4_K_ref;
    t->mul_mat[MS_TYPE_Q2_K] = mm_q2_K_ref;
    t->mul_mat[MS_TYPE_F16] = mm_f16_ref;
    t->mul_mat[MS_TYPE_BF16] = mm_bf16_ref;
    t->quantize[MS_TYPE_F32] = q_MS_TYPE_F32;
    t->quantize[MS_TYPE_F16] = q_MS_TYPE_F16;
    t->quantize[MS_TYPE_BF16] = q_MS_TYPE_BF16;
    t->quantize[MS_TYPE_Q8_0] = q_MS_TYPE_Q8_0;
    t->quantize[MS_TYPE_Q8_1] = q_MS_TYPE_Q8_1;
    t->quantize[MS_TYPE_Q8_K] = q_MS_TYPE_Q8_K;
}

static pthread_once_t scalar_once = PTHREAD_ONCE_INIT;

const kern_table *kern_table_scalar(void)
{
    pthread_once(&scalar_once, scalar_init);
    return &scalar_tab;
}

/* ---- CPU detection ---- */

static bool cpu_has(const char *isa)
{
#if defined(__x86_64__) || defined(__i386__)
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d))
        return false;
    bool osxsave = c & (1u << 27), avx = c & (1u << 28), fma = c & (1u << 12), f16c = c & (1u << 29);
    if (!osxsave || !avx)
        return false;
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    bool ymm_os = (lo & 0x6) == 0x6, zmm_os = (lo & 0xe6) == 0xe6;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d))
        return false;
    bool avx2 = b & (1u << 5), bmi2 = b & (1u << 8);
    bool avx512f = b & (1u << 16), avx512dq = b & (1u << 17), avx512bw = b & (1u << 30),
         avx512vl = b & (1u << 31), vbmi = c & (1u << 1), vnni = c & (1u << 11);
    if (!strcmp(isa, "avx2"))
        return ymm_os && avx2 && fma && f16c && bmi2;
    if (!strcmp(isa, "avx512"))
        return ymm_os && zmm_os && avx2 && fma && f16c && bmi2 && avx512f && avx512dq &&
               avx512bw && avx512vl && vbmi && vnni;
    return false;
#elif defined(__aarch64__)
    return !strcmp(isa, "neon");
#else
    (void)isa;
    return false;
#endif
}

const kern_table *kern_get_isa(const char *isa)
{
    if (!strcmp(isa, "scalar"))
        return kern_table_scalar();
    if (!cpu_has(isa))
        return NULL;
#ifdef KERN_HAVE_AVX2
    if (!strcmp(isa, "avx2"))
        return kern_table_avx2();
#endif
#ifdef KERN_HAVE_AVX512
    if (!strcmp(isa, "avx512"))
        return kern_table_avx512();
#endif
#ifdef KERN_HAVE_NEON
    if (!strcmp(isa, "neon"))
        return kern_table_neon();
#endif
    return NULL; /* avx512: no dedicated kernels yet; avx2 runs on those CPUs */
}

static const kern_table *chosen;
static pthread_once_t chosen_once = PTHREAD_ONCE_INIT;

static void choose(void)
{
    static const char *order[] = {"avx512", "avx2", "neon", "scalar"};
    const char *want = getenv("MOESTREAM_SIMD");
    if (want && *want) {
        chosen = kern_get_isa(want);
        if (!chosen)
            fprintf(stderr, "moestream: MOESTREAM_SIMD=%s is not available on this CPU/build; "
                            "using the best available\n",
                    want);
    }
    for (size_t i = 0; !chosen && i < sizeof order / sizeof order[0]; i++)
        chosen = kern_get_isa(order[i]);
}

const kern_table *kern_get(void)
{
    pthread_once(&chosen_once, choose);
    return chosen;
}
