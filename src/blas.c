/* blas.c - OpenBLAS setup and the row-major F32 GEMM wrapper (blas.h).
 *
 * Does not own: which products go here (forward.c decides; the ones that
 * must round like the reference engine use the kernel table instead). */
#include "blas.h"

#include <cblas.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "kernels.h"

/* Not in cblas.h but exported by every DYNAMIC_ARCH OpenBLAS: the kernel
 * family in use, and the pair that drops and redoes the selection (which
 * honours OPENBLAS_CORETYPE).  Its constructor has chosen before main runs,
 * so setting the variable from inside the process needs the pair.  Weak: a
 * build without runtime selection lacks them, and then there is nothing to
 * fix. */
char *openblas_get_corename(void) __attribute__((weak));
void gotoblas_dynamic_init(void) __attribute__((weak));
void gotoblas_dynamic_quit(void) __attribute__((weak));

static pthread_once_t once = PTHREAD_ONCE_INIT;

static void setup(void)
{
    openblas_set_num_threads(1);
    if (!openblas_get_corename || !gotoblas_dynamic_init || !gotoblas_dynamic_quit)
        return;
    const char *core = openblas_get_corename();
    if (getenv("OPENBLAS_CORETYPE") || !core || strcasecmp(core, "prescott"))
        return;
    const char *want = kern_get_isa("avx512") ? "SkylakeX" : kern_get_isa("avx2") ? "Haswell" : NULL;
    if (!want)
        return;
    /* before any product: no buffer has been sized by the old choice yet */
    setenv("OPENBLAS_CORETYPE", want, 0);
    gotoblas_dynamic_quit();
    gotoblas_dynamic_init();
    openblas_set_num_threads(1);
}

void blas_setup(void) { pthread_once(&once, setup); }

const char *blas_core(void)
{
    blas_setup();
    const char *c = openblas_get_corename ? openblas_get_corename() : NULL;
    return c ? c : "?";
}

void blas_gemm(int m, int n, int k, const float *x, int ldx, const float *b, int ldb, bool trans_b,
               float beta, float *y, int ldy)
{
    if (m == 1)
        cblas_sgemv(CblasRowMajor, trans_b ? CblasNoTrans : CblasTrans, trans_b ? n : k, trans_b ? k : n, 1.0f,
                    b, ldb, x, 1, beta, y, 1);
    else
        cblas_sgemm(CblasRowMajor, CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, m, n, k, 1.0f, x, ldx, b,
                    ldb, beta, y, ldy);
}
