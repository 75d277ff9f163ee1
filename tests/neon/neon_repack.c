/* neon_repack.c - repacked IQ1_S/IQ1_M/IQ2_XXS tensors (simd/repack.h) run on the
 * NEON table, against the scalar table's mul_mat on the plain rows, bit for
 * bit; built with the aarch64 cross compiler and run under qemu-aarch64 by
 * tests/neon_qemu.sh.  NEON has no repacked kernel: repack_mul_mat unpacks
 * rows and runs the NEON plain kernel, and this checks that route (1..17
 * columns, odd row counts and ranges) and that no fast kernel is claimed.
 * Prints one "ok"/"FAIL" line per check; exits non-zero on any failure. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kern_isa.h"
#include "quant.h"
#include "repack.h"

static uint64_t rng_next(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

static int fails;

static void report(int ok, const char *what, int type, long long n, const char *detail)
{
    if (ok)
        printf("ok   %s %s n=%lld\n", what, quant_info(type)->name, n);
    else {
        printf("FAIL %s %s n=%lld: %s\n", what, quant_info(type)->name, n, detail);
        fails++;
    }
}

static void check(const kern_table *t, const kern_table *ref, int type, int64_t n, int rows, int cols, uint64_t *rng)
{
    char err[256], detail[256] = "";
    const size_t wr = quant_row_bytes(type, n), ar = quant_row_bytes(MS_TYPE_Q8_K, n);
    uint8_t *w = malloc(wr * (size_t)rows), *rp = malloc(repack_bytes(type, rows, n)), *a = malloc(ar * (size_t)cols);
    float *x = malloc((size_t)n * 4), *got = malloc((size_t)rows * (size_t)cols * 4),
          *want = malloc((size_t)rows * (size_t)cols * 4);
    if (!w || !rp || !a || !x || !got || !want) {
        report(0, "alloc", type, n, "out of memory");
        return;
    }
    quant_fill_random(type, w, (int64_t)rows * (n / 256), rng, 0.05f);
    if (repack_rows(type, w, wr, rows, n, rp, err, sizeof err)) {
        report(0, "repack_rows", type, n, err);
        return;
    }
    for (int c = 0; c < cols; c++) {
        for (int64_t i = 0; i < n; i++)
            x[i] = ldexpf((float)(rng_next(rng) >> 40) / (float)(1 << 24) * 2.0f - 1.0f, (int)(i / 32 % 9) - 4);
        ref->quantize[MS_TYPE_Q8_K](x, a + (size_t)c * ar, n);
    }
    int ok = 1, distinct = 0;
    for (int nc = 1; nc <= cols && ok; nc++) {
        const int half = (rows + 1) / 2, r0 = nc % 7 % half, r1 = rows - nc % 5 % half;
        for (size_t i = 0; i < (size_t)rows * (size_t)cols; i++)
            got[i] = want[i] = NAN;
        repack_mul_mat(t, type, n, rp, r0, r1, a, ar, nc, got, (size_t)rows);
        ref->mul_mat[type](n, w, wr, r0, r1, a, ar, nc, want, (size_t)rows);
        for (size_t i = 0; i < (size_t)rows * (size_t)cols && ok; i++) {
            const int r = (int)(i % (size_t)rows), c = (int)(i / (size_t)rows);
            const int in = c < nc && r >= r0 && r < r1;
            if (in ? memcmp(&got[i], &want[i], 4) != 0 : !isnan(got[i])) {
                snprintf(detail, sizeof detail, "%d cols row %d col %d: got %.9g want %.9g", nc, r, c,
                         (double)got[i], (double)want[i]);
                ok = 0;
            }
            distinct += in && isfinite(want[i]) && want[i] != want[r0];
        }
    }
    if (ok && !distinct)
        snprintf(detail, sizeof detail, "degenerate products"), ok = 0;
    report(ok, "repack_mul_mat", type, n, detail);
    /* a file of `moestream repack` where the experts are kept plain (every
     * NEON CPU: no fast kernel): unpacked at load into another buffer, or in
     * place in a pool slot (the file's bytes 16 plain rows in), the GGUF
     * rows byte for byte */
    const size_t rb = repack_bytes(type, rows, n), pre = REPACK_ROWS * wr;
    uint8_t *back = malloc(wr * (size_t)rows), *slot = malloc(pre + rb);
    if (!back || !slot) {
        report(0, "alloc", type, n, "out of memory");
        return;
    }
    repack_unpack_rows(type, rp, n, rows, back, wr);
    report(!memcmp(back, w, wr * (size_t)rows), "repack_unpack_rows", type, n, "rows differ from the GGUF's");
    memcpy(slot + pre, rp, rb);
    repack_unpack_rows(type, slot + pre, n, rows, slot, wr);
    report(!memcmp(slot, w, wr * (size_t)rows), "repack_unpack_rows in place", type, n,
           "rows differ from the GGUF's");
    free(back), free(slot);
    free(w), free(rp), free(a), free(x), free(got), free(want);
}

int main(void)
{
    const kern_table *t = kern_table_neon(), *ref = kern_table_scalar();
    const int types[] = {MS_TYPE_IQ1_S, MS_TYPE_IQ1_M, MS_TYPE_IQ2_XXS};
    uint64_t rng = 31337;
    for (int ti = 0; ti < (int)(sizeof types / sizeof types[0]); ti++) {
        report(!repack_fast(t, types[ti]), "no fast kernel claimed", types[ti], 0, "repack_fast true on neon");
        check(t, ref, types[ti], 256, 37, 17, &rng);
        check(t, ref, types[ti], 7168, 48, 2, &rng); /* R1's rows, whole groups as in a repacked file */
        check(t, ref, types[ti], 1792, 5, 9, &rng);
    }
    printf("%s\n", fails ? "FAIL" : "all ok");
    return fails != 0;
}
