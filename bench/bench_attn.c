/* bench_attn.c - the F32 products of the absorbed attention (legacy
 * attn_kv_b files, src/forward.c attn_group_legacy) on OpenBLAS against the
 * kernel table's F32 mul_mat (tinyBLAS order, what the split form must use
 * to round like the reference), in one process, one thread, for one layer
 * of DeepSeek-R1 (128 heads, kv_lora 512, rope 64).
 *   build/bench/bench_attn [TOKENS [POSITIONS]]   (default 64 64: a prefill chunk)
 * Prints ms per layer for obar = A C (TOKENS x 512 from POSITIONS) and the
 * scores S = [q~|q_pe] [c|k_pe]^T (TOKENS x POSITIONS from 576), best of 5,
 * and OpenBLAS's kernel family (blas_setup's fix for its detection).
 * With TOKENS 1 (decode) also the two ways of taking the heads on
 * OpenBLAS: one product per head (the latents read twice per head) against
 * groups of 16 heads as the rows of one product (forward.c's
 * LEGACY_HEAD_GROUP: read twice per group). */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "blas.h"
#include "kernels.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static float *filled(size_t n, unsigned mod)
{
    float *p = malloc(n * sizeof *p);
    if (!p) {
        perror("bench_attn");
        exit(1);
    }
    for (size_t i = 0; i < n; i++)
        p[i] = (float)(i % mod) / (float)mod - 0.5f;
    return p;
}

int main(int argc, char **argv)
{
    const int n = argc > 1 ? atoi(argv[1]) : 64, np = argc > 2 ? atoi(argv[2]) : 64;
    const int L = 512, K = 576, H = 128;
    if (n < 1 || np < 1) {
        fprintf(stderr, "usage: bench_attn [TOKENS [POSITIONS]]\n");
        return 2;
    }
    blas_setup();
    const kern_table *k = kern_get();
    float *a = filled((size_t)n * np, 97), *lat = filled((size_t)np * L, 89), *latt = malloc(sizeof(float) * L * np);
    float *q = filled((size_t)n * K, 83), *keys = filled((size_t)np * K, 79);
    float *o = malloc(sizeof(float) * n * L), *s = malloc(sizeof(float) * n * np);
    if (!latt || !o || !s)
        return 1;
    for (int p = 0; p < np; p++)
        for (int l = 0; l < L; l++)
            latt[(size_t)l * np + p] = lat[(size_t)p * L + l];
    double best[4] = {1e9, 1e9, 1e9, 1e9};
    for (int rep = 0; rep < 5; rep++) {
        double t[5];
        t[0] = now_s();
        for (int h = 0; h < H; h++)
            k->mul_mat[MS_TYPE_F32](np, latt, (size_t)np * 4, 0, L, a, (size_t)np * 4, n, o, L);
        t[1] = now_s();
        for (int h = 0; h < H; h++)
            blas_gemm(n, L, np, a, np, lat, L, false, 0.0f, o, L);
        t[2] = now_s();
        for (int h = 0; h < H; h++)
            k->mul_mat[MS_TYPE_F32](K, keys, (size_t)K * 4, 0, np, q, (size_t)K * 4, n, s, np);
        t[3] = now_s();
        for (int h = 0; h < H; h++)
            blas_gemm(n, np, K, q, K, keys, K, true, 0.0f, s, np);
        t[4] = now_s();
        for (int i = 0; i < 4; i++)
            if (t[i + 1] - t[i] < best[i])
                best[i] = t[i + 1] - t[i];
    }
    printf("## bench_attn: one layer, 128 heads, %d tokens x %d positions, 1 thread\n", n, np);
    printf("| product | kernel table (%s) ms | OpenBLAS (%s) ms | ratio |\n|---|---|---|---|\n", k->isa, blas_core());
    printf("| obar = A C | %.2f | %.2f | %.2fx |\n", best[0] * 1e3, best[1] * 1e3, best[0] / best[1]);
    printf("| scores | %.2f | %.2f | %.2fx |\n", best[2] * 1e3, best[3] * 1e3, best[2] / best[3]);
    if (n == 1) {
        enum { G = 16 };
        float *qg = filled((size_t)H * K, 83), *og = malloc(sizeof(float) * H * L), *sg = malloc(sizeof(float) * G * np);
        if (!og || !sg)
            return 1;
        double bh = 1e9, bg = 1e9;
        for (int rep = 0; rep < 5; rep++) {
            const double t0 = now_s();
            for (int h = 0; h < H; h++) {
                blas_gemm(1, np, K, qg + (size_t)h * K, K, keys, K, true, 0.0f, sg, np);
                blas_gemm(1, L, np, sg, np, lat, L, false, 0.0f, og + (size_t)h * L, L);
            }
            const double t1 = now_s();
            for (int h = 0; h < H; h += G) {
                blas_gemm(G, np, K, qg + (size_t)h * K, K, keys, K, true, 0.0f, sg, np);
                blas_gemm(G, L, np, sg, np, lat, L, false, 0.0f, og + (size_t)h * L, L);
            }
            const double t2 = now_s();
            bh = t1 - t0 < bh ? t1 - t0 : bh;
            bg = t2 - t1 < bg ? t2 - t1 : bg;
        }
        printf("| decode, scores + obar, OpenBLAS | one head a product: %.2f | %d heads a product: %.2f | %.2fx |\n",
               bh * 1e3, G, bg * 1e3, bh / bg);
        free(qg);
        free(og);
        free(sg);
    }
    free(a);
    free(lat);
    free(latt);
    free(q);
    free(keys);
    free(o);
    free(s);
    return 0;
}
