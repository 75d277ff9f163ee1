/* imatrix_load.c - importance matrix files (GGUF and legacy .dat) for the
 * quantizer: see imatrix_load.h.  Owns imatrix_*; parsing of GGUF itself is
 * gguf.c's.  Every count and length from a .dat file is checked against
 * the file size before use. */
#include "imatrix_load.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf.h"

static int entry_cmp(const void *a, const void *b)
{
    return strcmp(((const imatrix_entry *)a)->name, ((const imatrix_entry *)b)->name);
}

void imatrix_free(imatrix_data *m)
{
    if (!m) return;
    for (size_t i = 0; i < m->n_entries; ++i) {
        free(m->entries[i].name);
        free(m->entries[i].values);
    }
    free(m->entries);
    free(m->dataset);
    free(m);
}

const imatrix_entry *imatrix_find(const imatrix_data *m, const char *name)
{
    if (!m || !m->n_entries) return NULL;
    imatrix_entry key = {.name = (char *)name};
    return bsearch(&key, m->entries, m->n_entries, sizeof key, entry_cmp);
}

static int add_entry(imatrix_data *m, size_t *cap, const char *name, size_t name_len, float *values, int64_t n)
{
    if (m->n_entries == *cap) {
        size_t nc = *cap ? *cap * 2 : 64;
        imatrix_entry *e = realloc(m->entries, nc * sizeof *e);
        if (!e) return -ENOMEM;
        m->entries = e;
        *cap = nc;
    }
    char *s = strndup(name, name_len);
    if (!s) return -ENOMEM;
    m->entries[m->n_entries++] = (imatrix_entry){s, values, n};
    return 0;
}

static bool ends_with(const char *s, const char *suffix, size_t *stem)
{
    size_t ls = strlen(s), lf = strlen(suffix);
    if (ls < lf || strcmp(s + ls - lf, suffix)) return false;
    *stem = ls - lf;
    return true;
}

static int load_gguf(imatrix_data *m, gguf_file *g, const char *path, char *err, size_t errlen)
{
    size_t cap = 0;
    const gguf_value *ds = gguf_find(g, "imatrix.datasets");
    const gguf_value *cc = gguf_find(g, "imatrix.chunk_count");
    const gguf_value *cs = gguf_find(g, "imatrix.chunk_size");
    if (!ds || !cc || !cs) {
        snprintf(err, errlen, "%s: missing imatrix metadata (imatrix.datasets, imatrix.chunk_count, imatrix.chunk_size)", path);
        return -EBADMSG;
    }
    if (ds->type == GGUF_T_ARRAY && ds->arr.type == GGUF_T_STRING && ds->arr.n > 0) {
        const gguf_str *s0 = ds->arr.data;
        m->dataset = strdup(s0[0].s);
        if (!m->dataset) return -ENOMEM;
    }
    uint32_t chunks = 0;
    if (gguf_get_u32(g, "imatrix.chunk_count", &chunks, err, errlen) == 0) m->chunk_count = chunks;
    for (uint64_t i = 0; i < g->n_tensors; ++i) {
        const gguf_tensor *t = &g->tensors[i];
        size_t stem;
        if (!ends_with(t->name, ".in_sum2", &stem)) continue;
        char cname[512];
        if (stem + 8 > sizeof cname) continue;
        snprintf(cname, sizeof cname, "%.*s.counts", (int)stem, t->name);
        const gguf_tensor *c = gguf_find_tensor(g, cname);
        if (!c) {
            snprintf(err, errlen, "%s: mismatched sums and counts for %.*s", path, (int)stem, t->name);
            return -EBADMSG;
        }
        if (t->type != 0 || c->type != 0) {
            snprintf(err, errlen, "%s: %s or its counts is not F32", path, t->name);
            return -EBADMSG;
        }
        const int64_t nval = (int64_t)(t->nbytes / 4), ncounts = (int64_t)(c->nbytes / 4);
        if (ncounts < 1 || nval % ncounts) {
            snprintf(err, errlen, "%s: %s: %lld sums do not split into %lld experts", path, t->name, (long long)nval,
                     (long long)ncounts);
            return -EBADMSG;
        }
        float *v = malloc((size_t)nval * 4), *cnt = malloc((size_t)ncounts * 4);
        if (!v || !cnt) {
            free(v);
            free(cnt);
            return -ENOMEM;
        }
        int rc = gguf_read(g, t->part, t->offset, v, (size_t)nval * 4, err, errlen);
        rc = rc ? rc : gguf_read(g, c->part, c->offset, cnt, (size_t)ncounts * 4, err, errlen);
        if (rc) {
            free(v);
            free(cnt);
            return rc;
        }
        const int64_t ne0 = nval / ncounts;
        for (int64_t j = 0; j < ncounts; ++j) {
            /* the reference rounds the stored float count to an integer, then
             * divides by it as a float */
            const float count = (float)lroundf(cnt[j]);
            for (int64_t k = 0; k < ne0; ++k) v[j * ne0 + k] = count > 0.0f ? v[j * ne0 + k] / count : 1.0f;
        }
        free(cnt);
        rc = add_entry(m, &cap, t->name, stem, v, nval);
        if (rc) {
            free(v);
            return rc;
        }
    }
    return 0;
}

/* Bounded reader over a whole .dat file in memory. */
typedef struct {
    const uint8_t *p;
    size_t n, pos;
} dat_cursor;

static bool dat_i32(dat_cursor *c, int32_t *out)
{
    if (c->n - c->pos < 4) return false;
    memcpy(out, c->p + c->pos, 4);
    c->pos += 4;
    return true;
}

static int load_dat(imatrix_data *m, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -errno;
    }
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = sz > 0 ? malloc((size_t)sz) : NULL;
    if (!buf || fread(buf, 1, (size_t)sz, f) != (size_t)sz) {
        fclose(f);
        free(buf);
        snprintf(err, errlen, "%s: cannot read", path);
        return -EIO;
    }
    fclose(f);
    dat_cursor c = {buf, (size_t)sz, 0};
    size_t cap = 0;
    int32_t n_entries;
    int rc = 0;
    if (!dat_i32(&c, &n_entries) || n_entries < 1) {
        snprintf(err, errlen, "%s: not an importance matrix (no GGUF header, no legacy entry count)", path);
        rc = -EBADMSG;
        goto out;
    }
    for (int32_t i = 0; i < n_entries; ++i) {
        int32_t len, ncall, nval;
        if (!dat_i32(&c, &len) || len < 1 || (size_t)len > c.n - c.pos) {
            snprintf(err, errlen, "%s: entry %d: bad name length at byte %zu", path, i, c.pos);
            rc = -EBADMSG;
            goto out;
        }
        const char *name = (const char *)c.p + c.pos;
        c.pos += (size_t)len;
        if (!dat_i32(&c, &ncall) || !dat_i32(&c, &nval) || nval < 1 || (size_t)nval > (c.n - c.pos) / 4) {
            snprintf(err, errlen, "%s: entry %d (%.*s): bad value count at byte %zu", path, i, (int)len, name, c.pos);
            rc = -EBADMSG;
            goto out;
        }
        float *v = malloc((size_t)nval * 4);
        if (!v) {
            rc = -ENOMEM;
            goto out;
        }
        memcpy(v, c.p + c.pos, (size_t)nval * 4);
        c.pos += (size_t)nval * 4;
        /* legacy sums hold (raw / count) * ncall */
        if (ncall > 0)
            for (int32_t k = 0; k < nval; ++k) v[k] = v[k] / (float)(int64_t)ncall;
        rc = add_entry(m, &cap, name, (size_t)len, v, nval);
        if (rc) {
            free(v);
            goto out;
        }
    }
    int32_t n_calls, dlen;
    if (dat_i32(&c, &n_calls)) {
        m->chunk_count = n_calls;
        if (dat_i32(&c, &dlen) && dlen > 0 && (size_t)dlen <= c.n - c.pos) {
            m->dataset = strndup((const char *)c.p + c.pos, (size_t)dlen);
            if (!m->dataset) rc = -ENOMEM;
        }
    }
out:
    free(buf);
    return rc;
}

int imatrix_load(imatrix_data **out, const char *path, char *err, size_t errlen)
{
    *out = NULL;
    imatrix_data *m = calloc(1, sizeof *m);
    if (!m) return -ENOMEM;
    gguf_file *g = NULL;
    char gerr[256];
    int rc;
    if (gguf_open(&g, path, gerr, sizeof gerr) == 0) {
        rc = load_gguf(m, g, path, err, errlen);
        gguf_close(g);
    } else {
        rc = load_dat(m, path, err, errlen);
    }
    if (rc == 0 && m->n_entries == 0) {
        snprintf(err, errlen, "%s: no importance matrix entries", path);
        rc = -EBADMSG;
    }
    if (rc) {
        imatrix_free(m);
        return rc;
    }
    qsort(m->entries, m->n_entries, sizeof *m->entries, entry_cmp);
    *out = m;
    return 0;
}
