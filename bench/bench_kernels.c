/* bench_kernels.c - weight throughput of the kernel tables, in GB/s of GGUF
 * bytes, next to the machine's streaming read bandwidth measured in the same
 * run (a STREAM-like sum over a buffer as large as the weights).
 *
 * Per type and ISA (scalar, avx2, avx512, neon as available): GEMV (one
 * activation column, the decode shape) at 1 thread and all threads, and
 * mul_mat with NCOLS columns (prefill / experts shared by several tokens) at all
 * threads.  Weights are MB (default 512) per type: at least 4x the last-level
 * cache of current server parts, so every byte comes from DRAM.  Times are
 * the best of REPS runs after one warm-up (scalar: one timed run - it is
 * 10-50x slower and only a baseline).  Rows are split over the pool as
 * src/matmul.c does (tpool_split).
 * NCOLS (env, 1..64, default 8) sets the mul_mat column count; the mul_mat
 * GB/s count the weight bytes once per call, at all threads and (last
 * column) at 1 thread.
 * Arguments after MB name types and/or ISAs to run (default: all of each);
 * for the side-by-side runs against the reference (bench/bench_gemv_ref.sh)
 * the weights are 1229 MB, 4x the 300 MiB L3 of the project VM, and the slow
 * scalar baseline is left out by naming the SIMD ISAs.
 *   build/bench/bench_kernels [MB] [type|isa ...]   e.g. bench_kernels 1229 avx2 avx512 IQ1_S Q4_K
 * With the word dequant among them it times the dequant entries instead
 * (rows of 512, one thread; see bench_dequant), e.g. bench_kernels 64 dequant Q6_K
 * With the word exp it times softmax_exp and swiglu instead (one thread, in
 * ns per element; see bench_exp), e.g. bench_kernels 16 exp
 * With the word repack, each type with a repacked layout (simd/repack.h) gets
 * a second line per ISA, "<isa>+repack", timed right after the plain one on
 * the same rows repacked; its GB/s count the GGUF bytes (the repacked ones
 * are repack_bytes, ~1.16x), e.g. bench_kernels 256 repack avx512 IQ1_S
 * BENCH_CPUTIME=1 times runs by their workers' thread CPU time (see
 * best_time), for a machine busy with other jobs. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernels.h"
#include "quant.h"
#include "repack.h"
#include "threadpool.h"

#define REPS 3

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
    const uint8_t *a;
    size_t ar;
    int ncols;
    float *out;
    const uint8_t *rp; /* the weights repacked (repack.h), or NULL */
    /* stream */
    const uint64_t *mem;
    size_t words;
    uint64_t sink[64];
};

static void gemm_job(void *ctx, int ith, int nth)
{
    struct job *j = ctx;
    long lo, hi;
    tpool_split(j->rows, ith, nth, &lo, &hi);
    if (lo < hi)
        j->k->mul_mat[j->type](j->n, j->w, j->wr, lo, hi, j->a, j->ar, j->ncols, j->out, (size_t)j->rows);
}

/* the repacked rows, split on whole groups */
static void repack_job(void *ctx, int ith, int nth)
{
    struct job *j = ctx;
    long lo, hi;
    tpool_split((j->rows + REPACK_ROWS - 1) / REPACK_ROWS, ith, nth, &lo, &hi);
    hi = hi * REPACK_ROWS < j->rows ? hi * REPACK_ROWS : j->rows;
    if (lo * REPACK_ROWS < hi)
        repack_mul_mat(j->k, j->type, j->n, j->rp, lo * REPACK_ROWS, hi, j->a, j->ar, j->ncols, j->out, (size_t)j->rows);
}

static void stream_job(void *ctx, int ith, int nth)
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

static void empty_job(void *ctx, int ith, int nth)
{
    (void)ctx;
    (void)ith;
    (void)nth;
}

/* BENCH_CPUTIME=1: a run's time is the longest thread CPU time of its
 * workers instead of the wall clock: on a machine shared with other jobs
 * (a loaded CI box) that is the time the run would take with the cores to
 * itself, memory bandwidth contention aside.  Say so next to the numbers. */
static bool use_cputime;

struct timed {
    tpool_fn fn;
    void *ctx;
    double cpu[256];
};

static double thread_cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void timed_job(void *ctx, int ith, int nth)
{
    struct timed *t = ctx;
    const double t0 = thread_cpu_s();
    t->fn(t->ctx, ith, nth);
    t->cpu[ith % 256] = thread_cpu_s() - t0;
}

static double best_time(tpool *tp, tpool_fn fn, void *ctx, int reps)
{
    tpool_run(tp, fn, ctx); /* warm-up: page faults, caches, frequency */
    double best = 1e30;
    struct timed tm = {fn, ctx, {0}};
    const int nth = tpool_size(tp);
    for (int r = 0; r < reps; r++) {
        double t0 = now_s();
        tpool_run(tp, use_cputime ? timed_job : fn, use_cputime ? (void *)&tm : ctx);
        double t = now_s() - t0;
        if (use_cputime) {
            t = 0;
            for (int i = 0; i < nth && i < 256; i++)
                t = tm.cpu[i] > t ? tm.cpu[i] : t;
        }
        best = t < best ? t : best;
    }
    return best;
}

static const int ALL_TYPES[] = {MS_TYPE_IQ1_S,   MS_TYPE_IQ1_M, MS_TYPE_IQ2_XXS, MS_TYPE_Q4_K,
                                MS_TYPE_Q5_K,    MS_TYPE_Q6_K,  MS_TYPE_Q8_0,    MS_TYPE_Q4_0,
                                MS_TYPE_IQ4_NL,  MS_TYPE_IQ4_XS, MS_TYPE_Q2_K,   MS_TYPE_Q3_K,
                                MS_TYPE_IQ2_XS,  MS_TYPE_IQ2_S, MS_TYPE_IQ3_XXS, MS_TYPE_IQ3_S,
                                MS_TYPE_F16,     MS_TYPE_BF16,  MS_TYPE_F32};

/* ---- dequant mode ----
 * The absorbed attention of legacy attn_kv_b files dequantizes a Q6_K
 * matrix row by row (rows of 512) into a buffer that stays in L1, per layer
 * and token: GB/s of GGUF bytes per ISA on one thread, with the rows in L2
 * (256 KB, the kernel's own speed) and MB of rows (the memory system's
 * share, next to a one-thread streaming read of as many bytes), and the
 * ratio to the scalar table in the same run. */

static const int DQ_TYPES[] = {MS_TYPE_Q6_K, MS_TYPE_Q4_K, MS_TYPE_Q5_K,
                               MS_TYPE_Q8_0, MS_TYPE_F16,  MS_TYPE_BF16};

/* best seconds of one pass over rows [0, rows) */
static double dequant_pass(const kern_table *kt, int type, const uint8_t *w, size_t wr, long rows, float *y,
                           int reps)
{
    double best = 1e30;
    for (int r = -1; r < reps; r++) { /* r = -1: warm-up */
        const double t0 = now_s();
        for (long i = 0; i < rows; i++)
            kt->dequant[type](w + (size_t)i * wr, y, 512);
        const double t = now_s() - t0;
        best = r >= 0 && t < best ? t : best;
    }
    return best;
}

/* The streaming read's buffer: mb MB of distinct words, set in s. */
static uint64_t *stream_buffer(struct job *s, size_t mb)
{
    s->words = (mb << 20) / 8;
    uint64_t *mem = malloc(s->words * 8);
    if (!mem)
        return NULL;
    for (size_t i = 0; i < s->words; i++)
        mem[i] = i * 0x9E3779B97F4A7C15ull;
    s->mem = mem;
    return mem;
}

static int bench_dequant(size_t mb, const int *types, int ntypes, const char *const *isas, const bool *isa_on,
                         int n_isas)
{
    printf("## bench_kernels dequant: rows of 512 into one L1 buffer, 1 thread; %zu MB of rows and 256 KB "
           "(L2) of rows\n",
           mb);
    struct job s = {0};
    uint64_t *mem = stream_buffer(&s, mb);
    if (!mem)
        return 1;
    double tbw = 1e30;
    for (int r = -1; r < REPS; r++) {
        const double t0 = now_s();
        stream_job(&s, 0, 1);
        const double t = now_s() - t0;
        tbw = r >= 0 && t < tbw ? t : tbw;
    }
    free(mem);
    printf("streaming read bandwidth (STREAM-like sum, %zu MB): %.1f GB/s 1 thread\n\n", mb,
           (double)(s.words * 8) / tbw / 1e9);
    printf("| type | isa | GB/s rows in L2 | ns/row in L2 | x scalar | GB/s %zu MB of rows |\n"
           "|---|---|---|---|---|---|\n",
           mb);
    float *y = malloc(512 * 4);
    if (!y)
        return 1;
    for (int ti = 0; ti < ntypes; ti++) {
        const int type = types[ti];
        const quant_type_info *inf = quant_info(type);
        const size_t wr = quant_row_bytes(type, 512);
        const long rows = (long)((mb << 20) / wr), rows_l2 = (long)((256 << 10) / wr);
        uint8_t *w = malloc(wr * (size_t)rows);
        if (!w)
            return 1;
        uint64_t r2 = 99;
        quant_fill_random(type, w, (int64_t)(wr * (size_t)rows / (size_t)inf->type_size), &r2, 1.0f);
        double scalar_l2 = 0;
        for (int k = 0; k < n_isas; k++) {
            const kern_table *kt = isa_on[k] ? kern_get_isa(isas[k]) : NULL;
            if (!kt)
                continue;
            /* L2 passes are short: repeat them to time ~10 ms */
            double tl2 = 1e30;
            for (int rep = 0; rep < 20; rep++) {
                const double t = dequant_pass(kt, type, w, wr, rows_l2, y, 3);
                tl2 = t < tl2 ? t : tl2;
            }
            const double tmb = dequant_pass(kt, type, w, wr, rows, y, k == 0 ? 1 : REPS);
            const double gl2 = (double)(wr * (size_t)rows_l2) / tl2 / 1e9;
            if (k == 0)
                scalar_l2 = gl2;
            char xs[16] = "-";
            if (scalar_l2 > 0)
                snprintf(xs, sizeof xs, "%.1f", gl2 / scalar_l2);
            printf("| %s | %s | %.2f | %.1f | %s | %.2f |\n", inf->name, kt->isa, gl2,
                   tl2 / (double)rows_l2 * 1e9, xs, (double)(wr * (size_t)rows) / tmb / 1e9);
            fflush(stdout);
        }
        free(w);
    }
    free(y);
    return 0;
}

/* ---- exp mode ----
 * softmax_exp over rows of 4096 scores (an attention row at 4096
 * positions) and swiglu over 18432 (R1's dense FFN width), warm in cache,
 * one thread: the exp evaluation itself, per element. */
static int bench_exp(const char *const *isas, const bool *isa_on, int n_isas)
{
    enum { NS = 4096, NF = 18432, REPS_EXP = 200 };
    float *x = malloc(NS * sizeof *x), *g = malloc(NF * sizeof *g), *u = malloc(NF * sizeof *u),
          *y = malloc(NF * sizeof *y);
    if (!x || !g || !u || !y)
        return 1;
    for (int i = 0; i < NF; i++) {
        g[i] = (float)(i % 89) / 89.0f * 8.0f - 4.0f;
        u[i] = (float)(i % 97) / 97.0f - 0.5f;
    }
    printf("## bench_kernels exp: softmax_exp over %d scores, swiglu over %d, 1 thread, warm\n", NS, NF);
    printf("| isa | softmax_exp ns/element | swiglu ns/element |\n|---|---|---|\n");
    double sink = 0.0;
    for (int k = 0; k < n_isas; k++) {
        const kern_table *kt = isa_on[k] ? kern_get_isa(isas[k]) : NULL;
        if (!kt)
            continue;
        double bs = 1e9, bw = 1e9;
        for (int r = 0; r < REPS; r++) {
            double t0 = now_s();
            for (int it = 0; it < REPS_EXP; it++) {
                /* refilled each time: softmax_exp works in place */
                for (int i = 0; i < NS; i++)
                    x[i] = -(float)(i % 997) * 0.05f;
                sink += kt->softmax_exp(x, NS, 0.0f);
            }
            double t1 = now_s();
            for (int it = 0; it < REPS_EXP; it++)
                kt->swiglu(y, g, u, NF);
            double t2 = now_s();
            sink += y[NF - 1];
            bs = t1 - t0 < bs ? t1 - t0 : bs;
            bw = t2 - t1 < bw ? t2 - t1 : bw;
        }
        printf("| %s | %.2f | %.2f |\n", kt->isa, bs * 1e9 / ((double)REPS_EXP * NS),
               bw * 1e9 / ((double)REPS_EXP * NF));
    }
    free(x);
    free(g);
    free(u);
    free(y);
    return sink == 0.12345 ? 3 : 0; /* keeps the results live */
}

int main(int argc, char **argv)
{
    size_t mb = argc > 1 ? (size_t)atoi(argv[1]) : 512;
    if (mb < 16)
        mb = 16;
    const char *isas[] = {"scalar", "avx2", "avx512", "neon"};
    enum { N_ISAS = sizeof isas / sizeof isas[0] };
    int types[64], ntypes = 0;
    bool isa_on[N_ISAS] = {0}, isa_named = false, dequant = false, rep = false, expm = false;
    for (int i = 2; i < argc; i++) {
        bool known = !strcmp(argv[i], "dequant");
        dequant = dequant || known;
        if (!strcmp(argv[i], "exp"))
            expm = known = true;
        if (!strcmp(argv[i], "repack"))
            rep = known = true;
        for (size_t t = 0; t < sizeof ALL_TYPES / sizeof ALL_TYPES[0]; t++)
            if (!strcmp(argv[i], quant_info(ALL_TYPES[t])->name) && ntypes < 64) {
                types[ntypes++] = ALL_TYPES[t];
                known = true;
            }
        for (int k = 0; k < N_ISAS; k++)
            if (!strcmp(argv[i], isas[k]))
                isa_on[k] = isa_named = known = true;
        if (!known) {
            fprintf(stderr, "bench_kernels: unknown type or isa '%s'\n", argv[i]);
            return 2;
        }
    }
    for (int k = 0; k < N_ISAS; k++)
        isa_on[k] = isa_on[k] || !isa_named;
    if (expm)
        return bench_exp(isas, isa_on, N_ISAS);
    if (dequant && !ntypes)
        for (size_t t = 0; t < sizeof DQ_TYPES / sizeof DQ_TYPES[0]; t++)
            types[ntypes++] = DQ_TYPES[t];
    if (dequant)
        return bench_dequant(mb, types, ntypes, isas, isa_on, N_ISAS);
    if (!ntypes)
        for (size_t t = 0; t < sizeof ALL_TYPES / sizeof ALL_TYPES[0]; t++)
            types[ntypes++] = ALL_TYPES[t];
    char err[256];
    tpool *all = NULL, *one = NULL;
    if (tpool_create(&all, 0, err, sizeof err) || tpool_create(&one, 1, err, sizeof err)) {
        fprintf(stderr, "bench_kernels: %s\n", err);
        return 1;
    }
    const int nth = tpool_size(all);
    printf("## bench_kernels: %zu MB of weights per type, row length 7168\n", mb);
    printf("machine: %s; kernel table chosen: %s\n", tpool_describe(all), kern_get()->isa);
    use_cputime = getenv("BENCH_CPUTIME") && atoi(getenv("BENCH_CPUTIME"));
    if (use_cputime)
        printf("times: longest worker thread CPU time (BENCH_CPUTIME=1), not the wall clock\n");

    struct job s = {0};
    uint64_t *mem = stream_buffer(&s, mb);
    if (!mem)
        return 1;
    const double bw1 = (double)(s.words * 8) / best_time(one, stream_job, &s, REPS) / 1e9;
    const double bwn = (double)(s.words * 8) / best_time(all, stream_job, &s, REPS) / 1e9;
    free(mem);
    printf("streaming read bandwidth (STREAM-like sum, same buffer size): %.1f GB/s 1 thread, "
           "%.1f GB/s %d threads\n\n",
           bw1, bwn, nth);
    /* fork/join cost of the pool: decode runs ~10 forks per layer */
    const int forks = 20000;
    tpool_run(all, empty_job, NULL);
    double t0 = now_s();
    for (int i = 0; i < forks; i++)
        tpool_run(all, empty_job, NULL);
    printf("thread pool fork/join (empty job, %d threads): %.2f us\n\n", nth, (now_s() - t0) / forks * 1e6);
    const char *ncs = getenv("NCOLS");
    const int NC = ncs && atoi(ncs) >= 1 && atoi(ncs) <= 64 ? atoi(ncs) : 8;
    printf("| type | isa | GEMV GB/s 1 thr | GEMV GB/s %d thr | %% of %d-thr bw | x scalar | mul_mat %d cols "
           "GB/s %d thr | %d-col time / 1-col time | mul_mat %d cols GB/s 1 thr |\n"
           "|---|---|---|---|---|---|---|---|---|\n",
           nth, nth, NC, nth, NC, NC);

    const int64_t n = 7168;
    float *x = malloc((size_t)n * NC * 4);
    uint64_t rng = 7;
    for (int64_t i = 0; i < n * NC; i++) {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        x[i] = (float)((double)(rng >> 11) / 9007199254740992.0 * 2.0 - 1.0);
    }
    for (int ti = 0; ti < ntypes; ti++) {
        const int type = types[ti];
        const quant_type_info *inf = quant_info(type);
        const size_t wr = quant_row_bytes(type, n), ar = quant_row_bytes(inf->act_type, n);
        const long rows = (long)((mb << 20) / wr);
        const size_t wbytes = wr * (size_t)rows;
        uint8_t *w = malloc(wbytes), *a = malloc(ar * NC);
        float *out = malloc((size_t)rows * NC * 4);
        if (!w || !a || !out)
            return 1;
        uint64_t r2 = 99;
        quant_fill_random(type, w, (int64_t)(wbytes / (size_t)inf->type_size), &r2, 1.0f);
        double scalar_gbs = 0;
        uint8_t *rp = NULL;
        if (rep && repack_has_layout(type)) {
            rp = malloc(repack_bytes(type, rows, n));
            if (!rp || repack_rows(type, w, wr, rows, n, rp, err, sizeof err)) {
                fprintf(stderr, "bench_kernels: repack: %s\n", rp ? err : "out of memory");
                return 1;
            }
        }
        for (int k = 0; k < N_ISAS; k++)
            for (int pass = 0; pass < (rp ? 2 : 1); pass++) {
                const kern_table *kt = isa_on[k] ? kern_get_isa(isas[k]) : NULL;
                if (!kt || (pass && !repack_fast(kt, type)))
                    continue;
                const int reps = k == 0 ? 1 : REPS;
                for (int c = 0; c < NC; c++)
                    kt->quantize[inf->act_type](x + (size_t)c * (size_t)n, a + ar * (size_t)c, n);
                struct job g = {kt, type, n, w, wr, rows, a, ar, 1, out, pass ? rp : NULL, NULL, 0, {0}};
                const tpool_fn fn = pass ? repack_job : gemm_job;
                const double g1 = (double)wbytes / best_time(one, fn, &g, reps) / 1e9;
                const double tn = best_time(all, fn, &g, reps);
                const double gn = (double)wbytes / tn / 1e9;
                g.ncols = NC;
                const double t8 = best_time(all, fn, &g, reps);
                const double t81 = best_time(one, fn, &g, reps);
                if (k == 0 && !pass)
                    scalar_gbs = gn;
                char xs[16] = "-"; /* x scalar: only when the scalar baseline ran */
                if (scalar_gbs > 0)
                    snprintf(xs, sizeof xs, "%.1f", gn / scalar_gbs);
                printf("| %s | %s%s | %.2f | %.2f | %.0f%% | %s | %.2f | %.2f | %.2f |\n", inf->name, kt->isa,
                       pass ? "+repack" : "", g1, gn,
                       100.0 * gn / bwn, xs, (double)wbytes / t8 / 1e9, t8 / tn, (double)wbytes / t81 / 1e9);
                fflush(stdout);
            }
        free(rp);
        free(w);
        free(a);
        free(out);
    }
    free(x);
    tpool_destroy(all);
    tpool_destroy(one);
    return 0;
}
