/* kern_scalar.c - the scalar kernel table and the generic mul_mat.
 *
 * Owns: kern_table_scalar (made from the traits table's columns: every
 * entry is a scalar reference function of quant_ref.c) and
 * kern_mul_mat_generic, the row-outer loop over a vec_dot that every ISA
 * table uses for the types it does not specialise.
 * Layering (no include or link cycle in simd/): quant_* (traits, reference)
 * <- kern_scalar <- kern_<isa> <- kern_dispatch; this file calls only the
 * layer below it.  Thread safety: the table is built once (pthread_once). */
#include "vmath.h"
#include "kern_scalar.h"

#include <pthread.h>

/* A scalar mul_mat for every type id: kernel tables index mul_mat by type
 * alone, so each id gets a trampoline to the generic loop over its
 * reference vec_dot (ids 0-39 through MM_TEN; the assert catches a grown
 * id space). */
_Static_assert(MS_TYPE_COUNT == 40, "one MM_TEN per ten type ids below");
#define MM_ID(N)                                                                                   \
    static void mm_##N(int64_t n, const void *w, size_t ws, int64_t r0, int64_t r1, const void *a, \
                       size_t as, int64_t nc, float *o, size_t os)                                 \
    {                                                                                              \
        kern_mul_mat_generic(quant_info(N)->vec_dot, quant_info(N), n, w, ws, r0, r1, a, as, nc, o, \
                             os);                                                                  \
    }
#define MM_TEN(D)                                                                                  \
    MM_ID(D##0) MM_ID(D##1) MM_ID(D##2) MM_ID(D##3) MM_ID(D##4) MM_ID(D##5) MM_ID(D##6)           \
    MM_ID(D##7) MM_ID(D##8) MM_ID(D##9)
MM_TEN() MM_TEN(1) MM_TEN(2) MM_TEN(3)
#define MM_PTR_TEN(D)                                                                              \
    mm_##D##0, mm_##D##1, mm_##D##2, mm_##D##3, mm_##D##4, mm_##D##5, mm_##D##6, mm_##D##7,        \
        mm_##D##8, mm_##D##9
static const kern_mul_mat_fn mm_generic[MS_TYPE_COUNT] = {MM_PTR_TEN(), MM_PTR_TEN(1), MM_PTR_TEN(2),
                                                          MM_PTR_TEN(3)};
#undef MM_ID
#undef MM_TEN
#undef MM_PTR_TEN

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

static void axpy_f32_ref(int64_t n, float a, const float *x, float *y)
{
    for (int64_t i = 0; i < n; i++)
        y[i] += a * x[i];
}

static kern_table scalar_tab;

/* Made from the traits table's columns: weight types (in_files) get the
 * reference vec_dot, dequant and mul_mat (the type's own where its order
 * depends on the column count, else the generic loop); activation types
 * their from_float. */
static void scalar_init(void)
{
    kern_table *t = &scalar_tab;
    t->isa = "scalar";
    for (int type = 0; type < MS_TYPE_COUNT; type++) {
        const quant_type_info *ti = quant_info(type);
        if (!ti)
            continue;
        t->quantize[type] = ti->from_float;
        if (!ti->in_files)
            continue;
        t->vec_dot[type] = ti->vec_dot;
        t->dequant[type] = ti->dequant;
        t->mul_mat[type] = ti->mul_mat ? ti->mul_mat : mm_generic[type];
    }
    t->axpy_f32 = axpy_f32_ref;
    t->softmax_exp = vmath_softmax_exp;
    t->swiglu = vmath_swiglu;
}

static pthread_once_t scalar_once = PTHREAD_ONCE_INIT;

const kern_table *kern_table_scalar(void)
{
    pthread_once(&scalar_once, scalar_init);
    return &scalar_tab;
}
