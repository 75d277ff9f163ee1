/* gguf_write.c - see gguf_write.h.
 * Metadata values are serialized to bytes when set; tensors keep a pointer
 * or a fill callback until write, which streams data through a 4 MB buffer.
 * Each file is written to a temporary name beside it, flushed, fsynced and
 * renamed over the final name, so a crash, a full disk or an I/O error
 * leaves either the old file or the new one, never a torn one (and the
 * temporary file is removed on every error path). */
#include "gguf_write.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fault.h"
#include "quant.h"

typedef struct wbuf {
    uint8_t *p;
    size_t n, cap;
} wbuf;

static int wb_put(wbuf *b, const void *d, size_t n)
{
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n)
            cap *= 2;
        uint8_t *np = realloc(b->p, cap);
        if (!np)
            return -ENOMEM;
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->n, d, n);
    b->n += n;
    return 0;
}

static int wb_u32(wbuf *b, uint32_t x) { return wb_put(b, &x, 4); }
static int wb_u64(wbuf *b, uint64_t x) { return wb_put(b, &x, 8); }
static int wb_str(wbuf *b, const char *s, uint64_t n)
{
    return wb_u64(b, n) || wb_put(b, s, n) ? -ENOMEM : 0;
}

typedef struct wkv {
    char *key;
    wbuf val; /* type + value bytes */
} wkv;

typedef struct wtensor {
    char *name;
    uint32_t type, n_dims;
    int64_t ne[4];
    uint64_t nbytes;
    const void *data;
    gguf_fill_fn fill;
    void *ud;
    bool alias;      /* no bytes of its own: its data is tensor alias_of's */
    size_t alias_of; /* index of an earlier, non-alias tensor */
} wtensor;

struct gguf_writer {
    wkv *kv;
    size_t n_kv, cap_kv;
    wtensor *t;
    size_t n_t, cap_t;
    uint32_t alignment;
};

gguf_writer *gguf_writer_create(void)
{
    gguf_writer *w = calloc(1, sizeof *w);
    if (w)
        w->alignment = 32;
    return w;
}

void gguf_writer_free(gguf_writer *w)
{
    if (!w)
        return;
    for (size_t i = 0; i < w->n_kv; i++) {
        free(w->kv[i].key);
        free(w->kv[i].val.p);
    }
    for (size_t i = 0; i < w->n_t; i++)
        free(w->t[i].name);
    free(w->kv);
    free(w->t);
    free(w);
}

static int ser_value(wbuf *b, const gguf_value *v, bool with_type)
{
    if (with_type && wb_u32(b, v->type))
        return -ENOMEM;
    size_t es = gguf_vtype_size(v->type);
    if (es) {
        uint8_t tmp[8];
        switch (v->type) {
        case GGUF_T_FLOAT32: { float f = (float)v->f; memcpy(tmp, &f, 4); break; }
        case GGUF_T_FLOAT64: memcpy(tmp, &v->f, 8); break;
        case GGUF_T_INT8: case GGUF_T_INT16: case GGUF_T_INT32: case GGUF_T_INT64:
            memcpy(tmp, &v->i, es); /* little-endian truncation keeps the value */
            break;
        default: memcpy(tmp, &v->u, es); break;
        }
        return wb_put(b, tmp, es);
    }
    if (v->type == GGUF_T_STRING)
        return wb_str(b, v->str.s, v->str.len);
    if (v->type != GGUF_T_ARRAY)
        return -EINVAL;
    if (wb_u32(b, v->arr.type) || wb_u64(b, v->arr.n))
        return -ENOMEM;
    size_t ees = gguf_vtype_size(v->arr.type);
    if (ees)
        return wb_put(b, v->arr.data, ees * v->arr.n);
    if (v->arr.type == GGUF_T_STRING) {
        const gguf_str *s = v->arr.data;
        for (uint64_t i = 0; i < v->arr.n; i++)
            if (wb_str(b, s[i].s, s[i].len))
                return -ENOMEM;
        return 0;
    }
    if (v->arr.type != GGUF_T_ARRAY)
        return -EINVAL;
    /* Array of arrays: each element is an array header (element type,
     * count) and its elements, without a type tag of its own (GGUF spec). */
    const gguf_value *e = v->arr.data;
    for (uint64_t i = 0; i < v->arr.n; i++) {
        if (e[i].type != GGUF_T_ARRAY)
            return -EINVAL;
        int rc = ser_value(b, &e[i], false);
        if (rc)
            return rc;
    }
    return 0;
}

void gguf_writer_remove(gguf_writer *w, const char *key)
{
    if (!strcmp(key, "general.alignment"))
        w->alignment = 32;
    for (size_t i = 0; i < w->n_kv; i++)
        if (!strcmp(w->kv[i].key, key)) {
            free(w->kv[i].key);
            free(w->kv[i].val.p);
            memmove(w->kv + i, w->kv + i + 1, (w->n_kv - i - 1) * sizeof *w->kv);
            w->n_kv--;
            return;
        }
}

int gguf_writer_set(gguf_writer *w, const char *key, const gguf_value *v)
{
    wbuf b = {0};
    int rc = ser_value(&b, v, true);
    if (rc) {
        free(b.p);
        return rc;
    }
    for (size_t i = 0; i < w->n_kv; i++)
        if (!strcmp(w->kv[i].key, key)) {
            free(w->kv[i].val.p);
            w->kv[i].val = b;
            return 0;
        }
    if (w->n_kv == w->cap_kv) {
        size_t cap = w->cap_kv ? w->cap_kv * 2 : 32;
        wkv *nk = realloc(w->kv, cap * sizeof *nk);
        if (!nk) {
            free(b.p);
            return -ENOMEM;
        }
        w->kv = nk;
        w->cap_kv = cap;
    }
    w->kv[w->n_kv].key = strdup(key);
    w->kv[w->n_kv].val = b;
    if (!w->kv[w->n_kv].key) {
        free(b.p);
        return -ENOMEM;
    }
    w->n_kv++;
    if (!strcmp(key, "general.alignment") && v->type == GGUF_T_UINT32 && v->u &&
        !(v->u & (v->u - 1)))
        w->alignment = (uint32_t)v->u;
    return 0;
}

int gguf_writer_set_u32(gguf_writer *w, const char *key, uint32_t x)
{
    gguf_value v = {.type = GGUF_T_UINT32, .u = x};
    return gguf_writer_set(w, key, &v);
}

int gguf_writer_set_i32(gguf_writer *w, const char *key, int32_t x)
{
    gguf_value v = {.type = GGUF_T_INT32, .i = x};
    return gguf_writer_set(w, key, &v);
}

int gguf_writer_set_f32(gguf_writer *w, const char *key, float x)
{
    gguf_value v = {.type = GGUF_T_FLOAT32, .f = x};
    return gguf_writer_set(w, key, &v);
}

int gguf_writer_set_bool(gguf_writer *w, const char *key, bool x)
{
    gguf_value v = {.type = GGUF_T_BOOL, .u = x};
    return gguf_writer_set(w, key, &v);
}

int gguf_writer_set_str(gguf_writer *w, const char *key, const char *s)
{
    gguf_value v = {.type = GGUF_T_STRING, .str = {s, strlen(s)}};
    return gguf_writer_set(w, key, &v);
}

int gguf_writer_set_arr(gguf_writer *w, const char *key, uint32_t elem_type, uint64_t n,
                        const void *data)
{
    gguf_value v = {.type = GGUF_T_ARRAY, .arr = {elem_type, n, data}};
    return gguf_writer_set(w, key, &v);
}

int gguf_writer_set_arr_str(gguf_writer *w, const char *key, uint64_t n, const char *const *s)
{
    gguf_str *a = malloc((n ? n : 1) * sizeof *a);
    if (!a)
        return -ENOMEM;
    for (uint64_t i = 0; i < n; i++)
        a[i] = (gguf_str){s[i], strlen(s[i])};
    gguf_value v = {.type = GGUF_T_ARRAY, .arr = {GGUF_T_STRING, n, a}};
    int rc = gguf_writer_set(w, key, &v);
    free(a);
    return rc;
}

int gguf_writer_copy_kvs(gguf_writer *w, const gguf_file *g, const char *skip_prefix)
{
    for (uint64_t i = 0; i < g->n_kv; i++) {
        if (skip_prefix && !strncmp(g->kv[i].key, skip_prefix, strlen(skip_prefix)))
            continue;
        int rc = gguf_writer_set(w, g->kv[i].key, &g->kv[i].val);
        if (rc)
            return rc;
    }
    return 0;
}

int gguf_writer_add_tensor(gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims,
                           const int64_t *ne, const void *data, gguf_fill_fn fill, void *ud)
{
    const quant_type_info *ti = quant_info((int)type);
    if (!ti || !ti->in_files || n_dims < 1 || n_dims > 4 || !name[0] || strlen(name) >= 64 ||
        (!data && !fill))
        return -EINVAL;
    /* Duplicate names would make the file unreadable (by us and by the
     * reference); a linear scan is fine at R1's 1025 tensors. */
    for (size_t i = 0; i < w->n_t; i++)
        if (!strcmp(w->t[i].name, name))
            return -EEXIST;
    if (w->n_t == w->cap_t) {
        size_t cap = w->cap_t ? w->cap_t * 2 : 64;
        wtensor *nt = realloc(w->t, cap * sizeof *nt);
        if (!nt)
            return -ENOMEM;
        w->t = nt;
        w->cap_t = cap;
    }
    wtensor *t = &w->t[w->n_t];
    memset(t, 0, sizeof *t);
    t->name = strdup(name);
    if (!t->name)
        return -ENOMEM;
    t->type = type;
    t->n_dims = n_dims;
    uint64_t nel = 1;
    bool bad = false;
    for (int d = 0; d < 4; d++) {
        t->ne[d] = d < (int)n_dims ? ne[d] : 1;
        if (t->ne[d] < 0 || (t->ne[d] && nel > (uint64_t)INT64_MAX / (uint64_t)t->ne[d]))
            bad = true;
        else
            nel *= (uint64_t)t->ne[d];
    }
    if (bad || t->ne[0] % ti->blck) {
        free(t->name);
        return -EINVAL;
    }
    t->nbytes = nel / (uint64_t)ti->blck * (uint64_t)ti->type_size;
    t->data = data;
    t->fill = fill;
    t->ud = ud;
    w->n_t++;
    return 0;
}

int gguf_writer_add_alias(gguf_writer *w, const char *name, const char *src)
{
    size_t i = 0;
    while (i < w->n_t && strcmp(w->t[i].name, src))
        i++;
    if (i == w->n_t || w->t[i].alias)
        return -ENOENT;
    wtensor s = w->t[i]; /* copy: add_tensor may move the array */
    int rc = gguf_writer_add_tensor(w, name, s.type, s.n_dims, s.ne, s.data, s.fill, s.ud);
    if (rc)
        return rc;
    w->t[w->n_t - 1].alias = true;
    w->t[w->n_t - 1].alias_of = i;
    return 0;
}

static bool has_alias(const gguf_writer *w)
{
    for (size_t i = 0; i < w->n_t; i++)
        if (w->t[i].alias)
            return true;
    return false;
}

static uint64_t pad_to(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

/* fwrite that keeps errno (EIO when stdio gives none) and fails where
 * MOESTREAM_FAULT=write:N says (util/fault.h: EIO, as a failing disk). */
static bool fw(FILE *f, const void *p, size_t n)
{
    if (fault_hit(FAULT_WRITE)) {
        errno = EIO;
        return false;
    }
    errno = 0;
    if (fwrite(p, 1, n, f) == n)
        return true;
    if (!errno)
        errno = EIO;
    return false;
}

/* The directory of path synced, so the rename is durable; best effort
 * (some filesystems refuse fsync on a directory). */
static void sync_dir(const char *path)
{
    char d[4096];
    snprintf(d, sizeof d, "%s", path);
    int fd = open(dirname(d), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
}

static int write_part_to(gguf_writer *w, FILE *f, const char *path, size_t t0, size_t t1, const wbuf *extra,
                         size_t n_extra, bool all_kv, char *err, size_t errlen);

/* Writes one file with kvs [all or split-only] and tensors [t0, t1): to
 * <path>.tmp-XXXXXX, then flush, fsync, rename over path. */
static int write_part(gguf_writer *w, const char *path, size_t t0, size_t t1, const wbuf *extra,
                      size_t n_extra, bool all_kv, char *err, size_t errlen)
{
    char tmp[4096];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp-XXXXXX", path) >= sizeof tmp) {
        snprintf(err, errlen, "%s: path too long", path);
        return -ENAMETOOLONG;
    }
    int fd = mkstemp(tmp);
    if (fd < 0) {
        int e = errno;
        snprintf(err, errlen, "%s: cannot create %s: %s", path, tmp, strerror(e));
        return -e;
    }
    (void)fchmod(fd, 0644); /* mkstemp's 0600 is not what fopen would give */
    FILE *f = fdopen(fd, "wb");
    if (!f) {
        int e = errno;
        close(fd);
        unlink(tmp);
        snprintf(err, errlen, "%s: cannot open %s: %s", path, tmp, strerror(e));
        return -e;
    }
    int rc = write_part_to(w, f, path, t0, t1, extra, n_extra, all_kv, err, errlen);
    if (!rc && fsync(fileno(f)) != 0) {
        rc = -errno;
        snprintf(err, errlen, "%s: fsync failed: %s", path, strerror(errno));
    }
    if (fclose(f) != 0 && !rc) {
        rc = errno ? -errno : -EIO;
        snprintf(err, errlen, "%s: write failed: %s", path, strerror(-rc));
    }
    if (!rc && rename(tmp, path) != 0) {
        rc = -errno;
        snprintf(err, errlen, "%s: cannot rename %s over it: %s", path, tmp, strerror(errno));
    }
    if (rc) {
        unlink(tmp);
        return rc;
    }
    sync_dir(path);
    return 0;
}

/* The file's bytes into f (write_part owns opening, syncing, renaming). */
static int write_part_to(gguf_writer *w, FILE *f, const char *path, size_t t0, size_t t1, const wbuf *extra,
                         size_t n_extra, bool all_kv, char *err, size_t errlen)
{
    static const size_t BUF = 4u << 20;
    setvbuf(f, NULL, _IOFBF, BUF);
    wbuf h = {0};
    int rc = 0;
    /* split.* keys describe this output, never a copied input. */
    uint64_t n_kv = n_extra;
    for (size_t i = 0; all_kv && i < w->n_kv; i++)
        n_kv += strncmp(w->kv[i].key, "split.", 6) != 0;
    rc |= wb_put(&h, "GGUF", 4);
    rc |= wb_u32(&h, 3);
    rc |= wb_u64(&h, t1 - t0);
    rc |= wb_u64(&h, n_kv);
    for (size_t i = 0; all_kv && i < w->n_kv; i++) {
        if (!strncmp(w->kv[i].key, "split.", 6))
            continue;
        rc |= wb_str(&h, w->kv[i].key, strlen(w->kv[i].key));
        rc |= wb_put(&h, w->kv[i].val.p, w->kv[i].val.n);
    }
    for (size_t i = 0; i < n_extra; i++)
        rc |= wb_put(&h, extra[i].p, extra[i].n);
    uint64_t off = 0;
    /* offsets of this part's tensors, for aliases (whose sources come
     * earlier in the same part: one-file output only) */
    uint64_t *offs = malloc((t1 - t0 + 1) * sizeof *offs);
    if (!offs) {
        free(h.p);
        return -ENOMEM;
    }
    for (size_t i = t0; i < t1; i++) {
        wtensor *t = &w->t[i];
        rc |= wb_str(&h, t->name, strlen(t->name));
        rc |= wb_u32(&h, t->n_dims);
        for (uint32_t d = 0; d < t->n_dims; d++)
            rc |= wb_u64(&h, (uint64_t)t->ne[d]);
        rc |= wb_u32(&h, t->type);
        if (t->alias) {
            offs[i - t0] = offs[t->alias_of - t0];
        } else {
            offs[i - t0] = off;
            off = pad_to(off + t->nbytes, w->alignment);
        }
        rc |= wb_u64(&h, offs[i - t0]);
    }
    free(offs);
    uint64_t hdr = pad_to(h.n, w->alignment);
    static const uint8_t zeros[4096];
    if (rc) {
        rc = -ENOMEM;
        goto out;
    }
    if (!fw(f, h.p, h.n))
        goto io;
    for (uint64_t k = h.n; k < hdr;) {
        size_t m = hdr - k < sizeof zeros ? (size_t)(hdr - k) : sizeof zeros;
        if (!fw(f, zeros, m))
            goto io;
        k += m;
    }
    uint8_t *buf = malloc(BUF);
    if (!buf) {
        rc = -ENOMEM;
        goto out;
    }
    int werr = 0; /* errno of a failed write */
    for (size_t i = t0; i < t1 && !rc && !werr; i++) {
        wtensor *t = &w->t[i];
        if (t->alias)
            continue;
        if (t->data) {
            if (!fw(f, t->data, t->nbytes))
                werr = errno;
        } else {
            for (uint64_t o = 0; o < t->nbytes && !rc && !werr; o += BUF) {
                size_t n = t->nbytes - o < BUF ? (size_t)(t->nbytes - o) : BUF;
                rc = t->fill(t->ud, buf, o, n);
                if (!rc && !fw(f, buf, n))
                    werr = errno;
            }
        }
        /* Every tensor, the last one included, is padded to the
         * alignment, as the reference's writer does. */
        uint64_t padn = pad_to(t->nbytes, w->alignment) - t->nbytes;
        while (!rc && !werr && padn) {
            size_t k = padn < sizeof zeros ? (size_t)padn : sizeof zeros;
            if (!fw(f, zeros, k))
                werr = errno;
            padn -= k;
        }
        if (rc) {
            snprintf(err, errlen, "%s: producing the data of tensor '%s' failed (%s)", path,
                     t->name, strerror(-rc));
            break;
        }
    }
    free(buf);
    if (werr) {
        errno = werr;
        goto io;
    }
    if (rc)
        goto out;
    errno = 0;
    if (fflush(f) != 0)
        goto io;
    free(h.p);
    return 0;
io:
    /* errno from the failed write: ENOSPC, EIO, EFBIG, ... */
    rc = errno ? -errno : -EIO;
    snprintf(err, errlen, "%s: write failed: %s", path, strerror(-rc));
out:
    free(h.p);
    return rc;
}

/* Writes parts [start[p], start[p+1]) for p < n_parts as
 * <prefix>-0000p-of-0000N.gguf. */
static int write_split(gguf_writer *w, const char *path, const size_t *start, size_t n_parts, char *first_part,
                       char *err, size_t errlen)
{
    char prefix[4000];
    size_t pl = strlen(path);
    if (pl > 5 && !strcmp(path + pl - 5, ".gguf"))
        pl -= 5;
    snprintf(prefix, sizeof prefix, "%.*s", (int)pl, path);
    int rc = 0;
    for (size_t p = 0; p < n_parts && !rc; p++) {
        wbuf ex[3] = {{0}};
        gguf_value vno = {.type = GGUF_T_UINT16, .u = p};
        gguf_value vcount = {.type = GGUF_T_UINT16, .u = n_parts};
        gguf_value vtc = {.type = GGUF_T_INT32, .i = (int64_t)w->n_t};
        rc |= wb_str(&ex[0], "split.no", 8) | ser_value(&ex[0], &vno, true);
        rc |= wb_str(&ex[1], "split.count", 11) | ser_value(&ex[1], &vcount, true);
        rc |= wb_str(&ex[2], "split.tensors.count", 19) | ser_value(&ex[2], &vtc, true);
        char pp[4096];
        snprintf(pp, sizeof pp, "%s-%05zu-of-%05zu.gguf", prefix, p + 1, n_parts);
        if (p == 0 && first_part)
            snprintf(first_part, 4096, "%s", pp);
        if (!rc)
            rc = write_part(w, pp, start[p], start[p + 1], ex, 3, p == 0, err, errlen);
        for (int k = 0; k < 3; k++)
            free(ex[k].p);
    }
    return rc;
}

int gguf_writer_write(gguf_writer *w, const char *path, uint64_t max_part_bytes, char *first_part,
                      char *err, size_t errlen)
{
    if (first_part)
        snprintf(first_part, 4096, "%s", path);
    if (max_part_bytes == 0)
        return write_part(w, path, 0, w->n_t, NULL, 0, true, err, errlen);
    if (has_alias(w)) {
        snprintf(err, errlen, "%s: tensors that share data (aliases) need one-file output", path);
        return -ENOTSUP;
    }
    /* Assign tensors to parts greedily. */
    size_t *start = malloc((w->n_t + 2) * sizeof *start);
    if (!start)
        return -ENOMEM;
    size_t n_parts = 0;
    uint64_t cur = 0;
    start[0] = 0;
    for (size_t i = 0; i < w->n_t; i++) {
        uint64_t sz = pad_to(w->t[i].nbytes, w->alignment);
        if (i > start[n_parts] && cur + sz > max_part_bytes) {
            start[++n_parts] = i;
            cur = 0;
        }
        cur += sz;
    }
    n_parts++;
    start[n_parts] = w->n_t;
    int rc = write_split(w, path, start, n_parts, first_part, err, errlen);
    free(start);
    return rc;
}

int gguf_writer_write_parts(gguf_writer *w, const char *path, const uint32_t *part, char *first_part, char *err,
                            size_t errlen)
{
    if (first_part)
        snprintf(first_part, 4096, "%s", path);
    if (has_alias(w)) {
        snprintf(err, errlen, "%s: tensors that share data (aliases) need one-file output", path);
        return -ENOTSUP;
    }
    size_t *start = malloc((w->n_t + 2) * sizeof *start);
    if (!start)
        return -ENOMEM;
    size_t n_parts = 0;
    start[0] = 0;
    for (size_t i = 1; i < w->n_t; i++) {
        if (part[i] < part[i - 1]) {
            free(start);
            snprintf(err, errlen, "%s: tensors not in part order", path);
            return -EINVAL;
        }
        if (part[i] != part[i - 1])
            start[++n_parts] = i;
    }
    n_parts++;
    start[n_parts] = w->n_t;
    int rc = write_split(w, path, start, n_parts, first_part, err, errlen);
    free(start);
    return rc;
}
