/* bench_kernels.c - GEMV weight throughput per type and ISA, at 1 thread
 * and all threads, in GB/s of GGUF bytes, next to the machine's streaming
 * read bandwidth measured in the same run (a STREAM-like sum).  Weights are
 * 512 MB per type (>= 4x the last-level cache of typical CPUs).
 *   build/bench/bench_kernels [MB] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernels.h"
#include "quant.h"
#include "threadpool.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

struct job {
    const kern_table *k;
    int type;
    int64_t n;
    const uint8_t *w;
    size_t wr;
    long rows;
    const void *a;
    float *out;
    const uint64_t *mem;
    size_t words;
    uint64_t sink[64];
};

static void gemv(void *ctx, int ith, int nth)
{
    struct job *j = ctx;
    long lo, hi;
    tpool_split(j->rows, ith, nth, &lo, &hi);
    j->k->mul_mat[j->type](j->n, j->w, j->wr, lo, hi, j->a, 0, 1, j->out, 0);
}

static void stream(void *ctx, int ith, int nth)
{
    struct job *j = ctx;
    long lo, hi;
    tpool_split((long)j->words, ith, nth, &lo, &hi);
    uint64_t a = 0, b = 0, c = 0, d = 0;
    for (long i = lo; i + 4 <= hi; i += 4) {
        a ^= j->mem[i];
        b ^= j->mem[i + 1];
        c ^= j->mem[i + 2];
        d ^= j->mem[i + 3];
    }
    j->sink[ith % 64] = a ^ b ^ c ^ d;
}

int main(int argc, char **argv)
{
    size_t mb = argc > 1 ? (size_t)atoi(argv[1]) : 512;
    char err[256];
    tpool *all = NULL, *one = NULL;
    tpool_create(&all, 0, err, sizeof err);
    tpool_create(&one, 1, err, sizeof err);
    printf("machine: %s\n", tpool_describe(all));
    struct job j = {0};
    j.words = (mb << 20) / 8;
    uint64_t *mem = malloc(j.words * 8);
    for (size_t i = 0; i < j.words; i++)
        mem[i] = i * 0x9E3779B97F4A7C15ull;
    j.mem = mem;
    double bw[2];
    for (int p = 0; p < 2; p++) {
        tpool *tp = p ? all : one;
        tpool_run(tp, stream, &j);
        double best = 1e9;
        for (int r = 0; r < 3; r++) {
            double t0 = now_s();
            tpool_run(tp, stream, &j);
            double t = now_s() - t0;
            best = t < best ? t : best;
        }
        bw[p] = (double)(j.words * 8) / best / 1e9;
    }
    free(mem);
    printf("streaming read bandwidth: %.2f GB/s (1 thread), %.2f GB/s (%d threads)\n\n", bw[0], bw[1],
           tpool_size(all));
    printf("| type | isa | GB/s 1 thread | GB/s %d threads | %% of read bandwidth |\n|---|---|---|---|---|\n",
           tpool_size(all));
    const int types[] = {MS_TYPE_IQ1_S, MS_TYPE_IQ2_XXS, MS_TYPE_Q4_K, MS_TYPE_Q5_K, MS_TYPE_Q6_K,
                         MS_TYPE_Q8_0};
    const char *isas[] = {"scalar", "avx2"};
    const int64_t n = 7168;
    float *x = malloc(n * 4);
    for (int64_t i = 0; i < n; i++)
        x[i] = (float)((i * 37) % 101) / 50.0f - 1.0f;
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        const int type = types[ti];
        const quant_type_info *inf = quant_info(type);
        size_t wr = quant_row_bytes(type, n);
        long rows = (long)((mb << 20) / wr);
        uint8_t *w = malloc(wr * (size_t)rows);
        uint64_t rng = 99;
        quant_fill_random(type, w, (int64_t)(wr * (size_t)rows / (size_t)inf->type_size), &rng, 1.0f);
        void *a = malloc(quant_row_bytes(inf->act_type, n));
        float *out = malloc((size_t)rows * 4);
        for (int k = 0; k < 2; k++) {
            const kern_table *kt = kern_get_isa(isas[k]);
            if (!kt)
                continue;
            kt->quantize[inf->act_type](x, a, n);
            struct job g = {kt, type, n, w, wr, rows, a, out, NULL, 0, {0}};
            double gbs[2];
            for (int p = 0; p < 2; p++) {
                tpool *tp = p ? all : one;
                tpool_run(tp, gemv, &g);
                double best = 1e9;
                for (int r = 0; r < 2; r++) {
                    double t0 = now_s();
                    tpool_run(tp, gemv, &g);
                    double t = now_s() - t0;
                    best = t < best ? t : best;
                }
                gbs[p] = (double)(wr * (size_t)rows) / best / 1e9;
            }
            printf("| %s | %s | %.2f | %.2f | %.0f%% |\n", inf->name, isas[k], gbs[0], gbs[1],
                   100.0 * gbs[1] / bw[1]);
        }
        free(w);
        free(a);
        free(out);
    }
    free(x);
    tpool_destroy(all);
    tpool_destroy(one);
    return 0;
}
