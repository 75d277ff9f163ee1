/* matmul.c - activation quantization and row-parallel products.
 *
 * Rows go to threads in chunks claimed from a shared counter; every thread
 * computes all activation columns for its rows, so each weight byte is read
 * from memory once per call whatever the batch size (the point of batching
 * prefill).  Chunks, not one even split: a core slowed by a neighbour (a VM,
 * a hyperthread sibling, a busier NUMA node) would otherwise hold every
 * fork/join for its whole share; each row's result is the same whoever
 * computes it. */
#include "matmul.h"

#include <stdatomic.h>

#include "kernels.h"
#include "quant.h"
#include "repack.h"

size_t mm_act_bytes(int type, int64_t n, int n_tok)
{
    int at = quant_info(type)->act_type;
    return quant_row_bytes(at, n) * (size_t)n_tok;
}

struct quant_job {
    kern_quantize_fn fn;
    const float *x;
    size_t x_stride;
    int64_t n;
    int n_tok;
    uint8_t *q;
    size_t q_row;
};

static void quant_job_run(void *ctx, int ith, int nth)
{
    struct quant_job *j = ctx;
    long lo, hi;
    tpool_split(j->n_tok, ith, nth, &lo, &hi);
    for (long t = lo; t < hi; t++)
        j->fn(j->x + (size_t)t * j->x_stride, j->q + (size_t)t * j->q_row, j->n);
}

void mm_quantize(tpool *tp, int type, const float *x, size_t x_stride, int64_t n, int n_tok, void *q)
{
    const kern_table *k = kern_get();
    int at = quant_info(type)->act_type;
    struct quant_job j = {k->quantize[at], x, x_stride, n, n_tok, q, quant_row_bytes(at, n)};
    if (n_tok == 1)
        quant_job_run(&j, 0, 1);
    else
        tpool_run(tp, quant_job_run, &j);
}

struct mul_job {
    kern_mul_mat_fn fn;
    int64_t n_in, n_out;
    const uint8_t *w;
    size_t row_bytes;
    const void *q;
    size_t q_row;
    int n_tok;
    float *y;
    size_t y_stride;
    bool cols1;       /* every column in its one-column order (mm_mul_cols1_q) */
    kern_mul_mat_fn fn_cols1; /* the table's kernel for that, if it has one */
    atomic_long next; /* first row not yet claimed */
};

long mm_claim_rows(long n_out, int nth, long align)
{
    long c = n_out / ((long)nth * 8);
    c = (c + align - 1) / align * align;
    return c < align ? align : c;
}

/* Rows [lo, hi) of a mul_job on the calling thread. */
static void mul_rows(const struct mul_job *j, long lo, long hi)
{
    if (!j->cols1) {
        j->fn(j->n_in, j->w, j->row_bytes, lo, hi, j->q, j->q_row, j->n_tok, j->y, j->y_stride);
        return;
    }
    if (j->fn_cols1) {
        j->fn_cols1(j->n_in, j->w, j->row_bytes, lo, hi, j->q, j->q_row, j->n_tok, j->y, j->y_stride);
        return;
    }
    /* one call per column over the claimed rows: a kernel given one
     * column uses the one-column order, and the chunk's rows (16-64 of
     * them, a few hundred KB at most) stay in L2 for the next column,
     * so each weight byte still comes from memory once */
    for (int t = 0; t < j->n_tok; t++)
        j->fn(j->n_in, j->w, j->row_bytes, lo, hi, (const uint8_t *)j->q + (size_t)t * j->q_row, j->q_row, 1,
              j->y + (size_t)t * j->y_stride, j->y_stride);
}

static void mul_job_run(void *ctx, int ith, int nth)
{
    struct mul_job *j = ctx;
    (void)ith;
    const long chunk = mm_claim_rows(j->n_out, nth, 16);
    for (;;) {
        const long lo = atomic_fetch_add_explicit(&j->next, chunk, memory_order_relaxed);
        if (lo >= j->n_out)
            break;
        mul_rows(j, lo, lo + chunk < j->n_out ? lo + chunk : j->n_out);
    }
}

/* r16: data is Q4_K in its 16-row layout (repack_q4k.h; mweight.r16) */
static void mul_raw(tpool *tp, int type, bool r16, const void *data, int64_t n_in, int64_t n_out,
                    const void *q, int n_tok, float *y, size_t y_stride, bool cols1)
{
    const kern_table *k = kern_get();
    int at = quant_info(type)->act_type;
    struct mul_job j = {r16 ? k->q4k_r16_mul_mat : k->mul_mat[type], n_in, n_out, data,
                        quant_row_bytes(type, n_in), q, quant_row_bytes(at, n_in), n_tok, y, y_stride,
                        cols1 && n_tok > 1, r16 ? k->q4k_r16_mul_mat_cols1 : k->mul_mat_cols1[type], 0};
    /* Tiny products are not worth a fork. */
    if ((uint64_t)n_in * (uint64_t)n_out * (uint64_t)n_tok < 32768)
        mul_job_run(&j, 0, 1);
    else
        tpool_run(tp, mul_job_run, &j);
}

void mm_mul_raw_q(tpool *tp, int type, const void *data, int64_t n_in, int64_t n_out,
                  const void *q, int n_tok, float *y, size_t y_stride)
{
    mul_raw(tp, type, false, data, n_in, n_out, q, n_tok, y, y_stride, false);
}

void mm_mul_cols1_q(tpool *tp, const mweight *w, int64_t mat, const void *q, int n_tok, float *y,
                    size_t y_stride)
{
    mul_raw(tp, w->type, w->r16, w->data + (size_t)mat * w->mat_bytes, w->n_in, w->n_out, q, n_tok, y,
            y_stride, quant_order_by_cols(w->type));
}

void mm_mul_q(tpool *tp, const mweight *w, int64_t mat, const void *q, int n_tok, float *y,
              size_t y_stride)
{
    mul_raw(tp, w->type, w->r16, w->data + (size_t)mat * w->mat_bytes, w->n_in, w->n_out, q, n_tok, y,
            y_stride, false);
}

void mm_mul(tpool *tp, const mweight *w, int64_t mat, const float *x, size_t x_stride, int n_tok,
            float *y, size_t y_stride, void *q)
{
    mm_quantize(tp, w->type, x, x_stride, w->n_in, n_tok, q);
    mm_mul_q(tp, w, mat, q, n_tok, y, y_stride);
}

void mm_expert_rows(int type, bool repacked, const void *data, int64_t n_in, const void *q, size_t q_row,
                    int n_tok, int64_t lo, int64_t hi, float *y, size_t y_stride)
{
    const kern_table *k = kern_get();
    if (repacked) { /* the repacked types keep no column-count order */
        repack_mul_mat(k, type, n_in, data, lo, hi, q, q_row, n_tok, y, y_stride);
        return;
    }
    /* The reference's expert product (mul_mat_id) takes one token at a
     * time, so the types of quant_order_by_cols keep their one-column
     * order. */
    const bool cols1 = quant_order_by_cols(type) && n_tok > 1;
    struct mul_job j = {k->mul_mat[type], n_in, 0, data, quant_row_bytes(type, n_in), q, q_row, n_tok, y,
                        y_stride, cols1, k->mul_mat_cols1[type], 0};
    mul_rows(&j, (long)lo, (long)hi);
}
