/* bench_repack_l2.c - the arithmetic of the repacked AVX-512 products
 * (repack_mul_mat, simd/repack.h) with the weights in L2: 128 rows x 7168
 * (one thread, 16-row groups), 1 to 64 activation columns, each time the
 * best of REPS calls by the thread's CPU time (so a busy machine shows less),
 * in ns per row and 256-element block; the ratio to one column follows.
 * What bench_kernels measures from DRAM, without the memory: where a kernel
 * change shows first.
 *   build/bench/bench_repack_l2 [types] [reps]   e.g. bench_repack_l2 IQ1_S,IQ1_M 40 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernels.h"
#include "quant.h"
#include "repack.h"

static double cpu_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
    const int64_t n = 7168, rows = 128;
    const int reps = argc > 2 && atoi(argv[2]) > 0 ? atoi(argv[2]) : 40;
    const kern_table *kt = kern_get_isa("avx512");
    if (!kt || !repack_fast(kt, MS_TYPE_IQ1_S)) {
        printf("bench_repack_l2: no AVX-512 repacked kernels on this CPU\n");
        return 0;
    }
    const int types[] = {MS_TYPE_IQ1_S, MS_TYPE_IQ1_M, MS_TYPE_IQ2_XXS};
    const int cols[] = {1, 2, 3, 4, 8, 16, 64};
    float *x = malloc((size_t)n * 64 * sizeof *x);
    if (!x)
        return 1;
    uint64_t r = 7;
    for (int64_t i = 0; i < n * 64; i++) {
        r ^= r << 13;
        r ^= r >> 7;
        r ^= r << 17;
        x[i] = (float)((double)(r >> 11) / 9007199254740992.0 * 2.0 - 1.0);
    }
    printf("repacked products in L2, 1 thread, %lld x %lld, best of %d, ns per row and block (x one column)\n",
           (long long)rows, (long long)n, reps);
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        const int type = types[ti];
        const quant_type_info *inf = quant_info(type);
        if (argc > 1 && !strstr(argv[1], inf->name))
            continue;
        const size_t wr = quant_row_bytes(type, n), ar = quant_row_bytes(inf->act_type, n);
        uint8_t *w = malloc(wr * (size_t)rows), *a = malloc(ar * 64), *rp = malloc(repack_bytes(type, rows, n));
        float *out = malloc((size_t)rows * 64 * sizeof *out);
        if (!w || !a || !rp || !out)
            return 1;
        uint64_t r2 = 99;
        quant_fill_random(type, w, (int64_t)(wr * (size_t)rows / (size_t)inf->type_size), &r2, 1.0f);
        char err[128];
        if (repack_rows(type, w, wr, rows, n, rp, err, sizeof err)) {
            fprintf(stderr, "bench_repack_l2: %s\n", err);
            return 1;
        }
        for (int c = 0; c < 64; c++)
            kt->quantize[inf->act_type](x + (size_t)c * (size_t)n, a + ar * (size_t)c, n);
        printf("%-8s", inf->name);
        double t1 = 0;
        for (size_t ci = 0; ci < sizeof cols / sizeof cols[0]; ci++) {
            double best = 1e9;
            for (int k = 0; k < reps; k++) {
                const double t0 = cpu_s();
                repack_mul_mat(kt, type, n, rp, 0, rows, a, ar, cols[ci], out, (size_t)rows);
                const double t = cpu_s() - t0;
                best = t < best ? t : best;
            }
            const double ns = best * 1e9 / (double)(rows * (n / 256));
            t1 = ci == 0 ? ns : t1;
            printf(" c%d %.2f (%.2fx)", cols[ci], ns, ns / t1);
        }
        printf("\n");
        free(w);
        free(a);
        free(rp);
        free(out);
    }
    free(x);
    return 0;
}
