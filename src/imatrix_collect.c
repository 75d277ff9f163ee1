/* imatrix_collect.c - the importance-matrix collector and its two file
 * formats (tools/imatrix/imatrix.cpp of the reference: collect_imatrix,
 * save_imatrix, save_imatrix_legacy).
 * Owns: imatrix_collect_*.  Entries are found by weight pointer in an
 * open-addressed table; routed-expert entries stage one ubatch of rows
 * (one row per token for gate/up, whose input every slot shares; one per
 * (token, slot) for down) and the expert of every (row, slot).
 * Invariant: values/counts only grow; nothing is allocated per call. */
#include "imatrix_collect.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf_write.h"

typedef struct ic_entry {
    const mweight *w;
    int64_t n_in, n_mat; /* n_mat: experts of a *_exps tensor, else 1 */
    int64_t width;       /* sums per count: n_in, times the heads of attn_k_b/attn_v_b
                          * (one count for all heads, as the reference keeps them) */
    float *values;       /* (n_mat, width) sums of squares */
    int64_t *counts;     /* (n_mat) */
    bool routed;
    bool per_slot;       /* staged per (row, slot) (down), else per row (gate/up) */
    float *stage;        /* routed: (ub_max * (per_slot ? K : 1), n_in) */
    int32_t *stage_ex;   /* routed: (ub_max * K) expert of (row, slot), -1 none */
} ic_entry;

struct imatrix_collect {
    const model *m;
    int chunk_size, ub_max, ub_rows, row0, K;
    bool process_output;
    ic_entry *e;          /* in model order */
    int n_e;
    int *slot_of;         /* hash: (cap) index into e, -1 empty */
    size_t cap;
    size_t stage_bytes;
};

static int fail(char *err, size_t errlen, int rc, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return rc;
}

static size_t hash_ptr(const void *p, size_t cap)
{
    uint64_t x = (uint64_t)(uintptr_t)p;
    x ^= x >> 29;
    x *= 0xBF58476D1CE4E5B9ull;
    x ^= x >> 32;
    return (size_t)x & (cap - 1);
}

static ic_entry *find(const imatrix_collect *c, const mweight *w)
{
    for (size_t h = hash_ptr(w, c->cap);; h = (h + 1) & (c->cap - 1)) {
        const int i = c->slot_of[h];
        if (i < 0)
            return NULL;
        if (c->e[i].w == w)
            return &c->e[i];
    }
}

/* The weights the reference collects: products with a "blk." weight, and
 * output.weight with process_output. */
static bool wanted(const imatrix_collect *c, const mweight *w)
{
    if (!w->name)
        return false;
    return !strncmp(w->name, "blk.", 4) || (c->process_output && !strcmp(w->name, "output.weight"));
}

static int add(imatrix_collect *c, const mweight *w, bool routed, bool per_slot)
{
    if (!wanted(c, w))
        return 0;
    ic_entry *e = &c->e[c->n_e];
    memset(e, 0, sizeof *e);
    e->w = w;
    e->n_in = w->n_in;
    e->routed = routed;
    e->per_slot = per_slot;
    e->n_mat = routed ? w->n_mat : 1;
    e->width = routed ? w->n_in : w->n_in * (w->n_mat > 1 ? w->n_mat : 1);
    e->values = calloc((size_t)(e->n_mat * e->width), sizeof *e->values);
    e->counts = calloc((size_t)e->n_mat, sizeof *e->counts);
    if (!e->values || !e->counts)
        return -ENOMEM;
    if (routed) {
        const size_t rows = (size_t)c->ub_max * (per_slot ? (size_t)c->K : 1);
        e->stage = malloc(rows * (size_t)e->n_in * sizeof *e->stage);
        e->stage_ex = malloc((size_t)c->ub_max * (size_t)c->K * sizeof *e->stage_ex);
        if (!e->stage || !e->stage_ex)
            return -ENOMEM;
        c->stage_bytes += rows * (size_t)e->n_in * 4 + (size_t)c->ub_max * (size_t)c->K * 4;
        for (size_t i = 0; i < (size_t)c->ub_max * (size_t)c->K; i++)
            e->stage_ex[i] = -1;
    }
    size_t h = hash_ptr(w, c->cap);
    while (c->slot_of[h] >= 0)
        h = (h + 1) & (c->cap - 1);
    c->slot_of[h] = c->n_e++;
    return 0;
}

int imatrix_collect_create(imatrix_collect **out, const model *m, int chunk_size, int ub_max,
                           bool process_output, char *err, size_t errlen)
{
    *out = NULL;
    if (chunk_size < 1 || ub_max < 1)
        return fail(err, errlen, -EINVAL, "imatrix: chunk size %d, ubatch %d", chunk_size, ub_max);
    imatrix_collect *c = calloc(1, sizeof *c);
    if (!c)
        return fail(err, errlen, -ENOMEM, "imatrix: out of memory");
    const model_hparams *hp = &m->hp;
    c->m = m;
    c->chunk_size = chunk_size;
    c->ub_max = ub_max;
    c->process_output = process_output;
    c->K = (int)hp->n_expert_used;
    const size_t max_e = (size_t)hp->n_layer * 20 + 1;
    c->cap = 64;
    while (c->cap < 2 * max_e)
        c->cap *= 2;
    c->e = calloc(max_e, sizeof *c->e);
    c->slot_of = malloc(c->cap * sizeof *c->slot_of);
    int rc = c->e && c->slot_of ? 0 : -ENOMEM;
    if (!rc)
        for (size_t i = 0; i < c->cap; i++)
            c->slot_of[i] = -1;
    for (uint32_t il = 0; il < hp->n_layer && !rc; il++) {
        const mlayer *L = &m->layers[il];
        const mweight *dense[] = {&L->wq_a, &L->wq_b, &L->wq, &L->wkv_a, &L->wkv_b, &L->wo,
                                  &L->ffn_gate, &L->ffn_up, &L->ffn_down, &L->gate_inp,
                                  &L->gate_sh, &L->up_sh, &L->down_sh, &L->wk_b, &L->wv_b};
        for (size_t i = 0; i < sizeof dense / sizeof dense[0] && !rc; i++)
            rc = add(c, dense[i], false, false);
        if (L->is_moe && !rc)
            rc = add(c, &L->gate_exps, true, false);
        if (L->is_moe && !rc)
            rc = add(c, &L->up_exps, true, false);
        if (L->is_moe && !rc)
            rc = add(c, &L->down_exps, true, true);
    }
    if (!rc)
        rc = add(c, &m->output, false, false);
    if (rc) {
        imatrix_collect_destroy(c);
        return fail(err, errlen, rc, "imatrix: out of memory for the sums and the staging of one "
                                     "ubatch of %d rows", ub_max);
    }
    *out = c;
    return 0;
}

void imatrix_collect_destroy(imatrix_collect *c)
{
    if (!c)
        return;
    for (int i = 0; c->e && i < c->n_e; i++) {
        free(c->e[i].values);
        free(c->e[i].counts);
        free(c->e[i].stage);
        free(c->e[i].stage_ex);
    }
    free(c->e);
    free(c->slot_of);
    free(c);
}

size_t imatrix_collect_stage_bytes(const imatrix_collect *c) { return c->stage_bytes; }

void imatrix_collect_begin_ubatch(imatrix_collect *c, int ub_rows)
{
    c->ub_rows = ub_rows <= c->ub_max ? ub_rows : c->ub_max;
    c->row0 = 0;
}

void imatrix_collect_rows(imatrix_collect *c, int row0) { c->row0 = row0; }

void imatrix_collect_hook(void *ud, const fwd_mm_in *in)
{
    imatrix_collect *c = ud;
    ic_entry *e = find(c, in->w);
    if (!e)
        return;
    const int64_t n_in = e->n_in;
    if (!e->routed) {
        /* the reference asks only for products of 16 rows or more */
        if (c->ub_rows < 16)
            return;
        const int head = in->expert > 0 ? in->expert : 0;
        if ((int64_t)(head + 1) * n_in > e->width)
            return; /* cannot happen: heads come from the weight's own shape */
        float *v = e->values + (size_t)head * (size_t)n_in;
        for (int r = 0; r < in->n; r++) {
            const float *x = in->x + (size_t)(in->gather ? in->gather[r] : r) * in->ld;
            for (int64_t j = 0; j < n_in; j++)
                v[j] += x[j] * x[j];
        }
        if (head == 0) /* one count per product, whatever its heads */
            e->counts[0] += in->n;
        return;
    }
    const int K = c->K;
    for (int r = 0; r < in->n; r++) {
        const int row = c->row0 + in->tok[r], slot = in->slot[r];
        if (row < 0 || row >= c->ub_max || slot < 0 || slot >= K)
            continue; /* cannot happen with the rows begin_ubatch sized for */
        const float *x = in->x + (size_t)(in->gather ? in->gather[r] : r) * in->ld;
        const size_t at = e->per_slot ? (size_t)row * K + (size_t)slot : (size_t)row;
        memcpy(e->stage + at * (size_t)n_in, x, (size_t)n_in * sizeof *x);
        e->stage_ex[(size_t)row * K + (size_t)slot] = in->expert;
    }
}

void imatrix_collect_end_ubatch(imatrix_collect *c)
{
    const int K = c->K, rows = c->ub_rows;
    for (int i = 0; i < c->n_e; i++) {
        ic_entry *e = &c->e[i];
        if (!e->routed)
            continue;
        const int64_t n_in = e->n_in;
        /* the reference's loop: every expert, every slot, every row */
        for (int64_t ex = 0; ex < e->n_mat; ex++) {
            float *v = e->values + (size_t)ex * (size_t)n_in;
            for (int idx = 0; idx < K; idx++) {
                for (int row = 0; row < rows; row++) {
                    if (e->stage_ex[(size_t)row * K + (size_t)idx] != ex)
                        continue;
                    const size_t at = e->per_slot ? (size_t)row * K + (size_t)idx : (size_t)row;
                    const float *x = e->stage + at * (size_t)n_in;
                    e->counts[ex]++;
                    for (int64_t j = 0; j < n_in; j++)
                        v[j] += x[j] * x[j];
                }
            }
        }
        for (size_t k = 0; k < (size_t)c->ub_max * (size_t)K; k++)
            e->stage_ex[k] = -1;
    }
    c->ub_rows = 0;
}

/* ---- files ---- */

static int cmp_name(const void *a, const void *b)
{
    const ic_entry *x = *(const ic_entry *const *)a, *y = *(const ic_entry *const *)b;
    return strcmp(x->w->name, y->w->name);
}

/* Entries in name order (the reference sorts its std::strings: bytewise). */
static const ic_entry **sorted(const imatrix_collect *c)
{
    const ic_entry **s = malloc((size_t)(c->n_e ? c->n_e : 1) * sizeof *s);
    if (!s)
        return NULL;
    for (int i = 0; i < c->n_e; i++)
        s[i] = &c->e[i];
    qsort(s, (size_t)c->n_e, sizeof *s, cmp_name);
    return s;
}

static bool seen(const ic_entry *e)
{
    for (int64_t k = 0; k < e->n_mat; k++)
        if (e->counts[k])
            return true;
    return false;
}

/* The reference's m_last_chunk: whole chunks in the largest count. */
static int32_t last_chunk(const imatrix_collect *c)
{
    int64_t mx = 0;
    for (int i = 0; i < c->n_e; i++)
        for (int64_t k = 0; k < c->e[i].n_mat; k++)
            mx = c->e[i].counts[k] > mx ? c->e[i].counts[k] : mx;
    return (int32_t)(mx / c->chunk_size);
}

int imatrix_collect_save_gguf(const imatrix_collect *c, const char *path, const char *dataset,
                              char *err, size_t errlen)
{
    const ic_entry **s = sorted(c);
    gguf_writer *w = gguf_writer_create();
    float **bufs = calloc((size_t)(2 * c->n_e + 1), sizeof *bufs);
    int rc = s && w && bufs ? 0 : -ENOMEM;
    if (!rc)
        rc = gguf_writer_set_str(w, "general.type", "imatrix");
    if (!rc)
        rc = gguf_writer_set_arr_str(w, "imatrix.datasets", 1, &dataset);
    if (!rc)
        rc = gguf_writer_set_u32(w, "imatrix.chunk_count", (uint32_t)last_chunk(c));
    if (!rc)
        rc = gguf_writer_set_u32(w, "imatrix.chunk_size", (uint32_t)c->chunk_size);
    int nb = 0;
    for (int i = 0; i < c->n_e && !rc; i++) {
        const ic_entry *e = s[i];
        /* every entry the reference saw, with partial data too (loaders
         * correct it); one it never saw is absent from its map */
        if (!seen(e))
            continue;
        char name[512];
        float *counts = malloc((size_t)e->n_mat * sizeof *counts);
        if (!counts) {
            rc = -ENOMEM;
            break;
        }
        bufs[nb++] = counts;
        for (int64_t k = 0; k < e->n_mat; k++)
            counts[k] = (float)e->counts[k];
        const int64_t ne_v[2] = {e->width, e->n_mat}, ne_c[2] = {1, e->n_mat};
        snprintf(name, sizeof name, "%s.in_sum2", e->w->name);
        rc = gguf_writer_add_tensor(w, name, 0, e->n_mat > 1 ? 2 : 1, ne_v, e->values, NULL, NULL);
        snprintf(name, sizeof name, "%s.counts", e->w->name);
        if (!rc)
            rc = gguf_writer_add_tensor(w, name, 0, e->n_mat > 1 ? 2 : 1, ne_c, counts, NULL, NULL);
    }
    if (!rc)
        rc = gguf_writer_write(w, path, 0, NULL, err, errlen);
    else
        fail(err, errlen, rc, "imatrix: cannot build %s: %s", path, strerror(-rc));
    for (int i = 0; i < nb; i++)
        free(bufs[i]);
    free(bufs);
    gguf_writer_free(w);
    free(s);
    return rc;
}

int imatrix_collect_save_dat(const imatrix_collect *c, const char *path, const char *dataset,
                             char *err, size_t errlen)
{
    const ic_entry **s = sorted(c);
    if (!s)
        return fail(err, errlen, -ENOMEM, "imatrix: out of memory");
    FILE *f = fopen(path, "wb");
    if (!f) {
        free(s);
        return fail(err, errlen, -errno, "cannot create %s: %s", path, strerror(errno));
    }
    int32_t n_entries = 0;
    for (int i = 0; i < c->n_e; i++)
        n_entries += seen(s[i]); /* entries without any data are skipped */
    bool ok = fwrite(&n_entries, 4, 1, f) == 1;
    for (int i = 0; i < c->n_e && ok; i++) {
        const ic_entry *e = s[i];
        if (!seen(e))
            continue;
        int64_t mx = 0;
        for (int64_t k = 0; k < e->n_mat; k++)
            mx = e->counts[k] > mx ? e->counts[k] : mx;
        const int32_t len = (int32_t)strlen(e->w->name);
        const int32_t ncall = (int32_t)((mx + (c->chunk_size - 1)) / c->chunk_size);
        const int32_t nval = (int32_t)(e->width * e->n_mat);
        ok = fwrite(&len, 4, 1, f) == 1 && fwrite(e->w->name, 1, (size_t)len, f) == (size_t)len &&
             fwrite(&ncall, 4, 1, f) == 1 && fwrite(&nval, 4, 1, f) == 1;
        for (int64_t k = 0; k < e->n_mat && ok; k++) {
            for (int64_t j = 0; j < e->width && ok; j++) {
                float count = (float)e->counts[k];
                float value = e->values[k * e->width + j];
                if (count == 0.0f) { /* partial data: 1, as the reference stores it */
                    value = 1.0f;
                    count = 1.0f;
                }
                const float t = (value / count) * (float)ncall;
                ok = fwrite(&t, 4, 1, f) == 1;
            }
        }
    }
    const int32_t lc = last_chunk(c), dl = (int32_t)strlen(dataset);
    ok = ok && fwrite(&lc, 4, 1, f) == 1 && fwrite(&dl, 4, 1, f) == 1 &&
         fwrite(dataset, 1, (size_t)dl, f) == (size_t)dl;
    ok = fclose(f) == 0 && ok;
    free(s);
    if (!ok)
        return fail(err, errlen, -EIO, "cannot write %s: %s", path, strerror(errno));
    return 0;
}
