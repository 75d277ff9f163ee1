/* gguf.c - GGUF reader: header, metadata and tensor table of a file or a
 * split set, validated once (see gguf.h for the contract).
 *
 * The header region is read through a bounded cursor (struct cur) over a
 * 1 MB window of the file that checks every length and count against the
 * bytes left in the file before allocating, and remembers the first error
 * with its byte offset.  Parsed strings and arrays live in an arena owned
 * by the gguf_file; nothing points into the read window after parsing.
 * Arrays of arrays are accepted (the spec allows them; the reference does
 * not) up to MAX_ARRAY_DEPTH levels.
 * Invariants after gguf_open: every tensor has a known file type, 1..4 dims
 * (n_dims 0, which the reference accepts, is reported as 1), a row length
 * that is a multiple of its block size, an aligned offset, and data inside
 * its part that overlaps no other tensor (one exception: the shared expert
 * layers a synthetic file declares, see shared_aliases); keys and tensor names (over all
 * parts) are unique; split parts are numbered as their names say.
 * Not owned here: what the tensors mean (model.c). */
#include "gguf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "quant.h"

#define GGUF_MAGIC 0x46554747u /* "GGUF" little-endian */
#define GGUF_DEFAULT_ALIGNMENT 32
#define MAX_NAME 64           /* GGML_MAX_NAME: names must be shorter */
#define MAX_KEY (1u << 16)
#define MAX_ARRAY_DEPTH 8
#define MAX_PARTS 1000

/* ---- arena ---- */

/* Arena blocks are anonymous mappings populated up front (MAP_POPULATE): the
 * R1 vocabulary puts ~6 MB of small strings here, and on the VMs we measured
 * one populate call costs far less than a page fault per 4 KB page (the
 * vocabulary file opened in ~50 ms with malloc'd blocks, most of it faults). */
typedef struct arena_blk {
    struct arena_blk *next;
    size_t used, cap, map_size;
    _Alignas(16) unsigned char data[];
} arena_blk;

typedef struct name_slot {
    const char *name;
    uint64_t idx;
} name_slot;

typedef struct priv {
    arena_blk *arena;
    unsigned n_blocks;
    name_slot *tidx; /* tensor name hash (open addressing) */
    uint64_t tcap;
} priv;

/* n bytes aligned to `align` (a power of two <= 16). */
static inline void *arena_alloc_aligned(priv *p, size_t n, size_t align)
{
    arena_blk *b = p->arena;
    size_t at = b ? (b->used + align - 1) & ~(align - 1) : 0;
    if (!b || at > b->cap || b->cap - at < n) {
        unsigned shift = p->n_blocks < 4 ? p->n_blocks : 4;
        size_t cap = (size_t)256 << 10 << shift; /* 256 KB .. 4 MB */
        if (cap < n)
            cap = n;
        if (n > SIZE_MAX - sizeof *b - 4096)
            return NULL;
        size_t ms = (sizeof *b + cap + 4095) & ~(size_t)4095;
        void *m = mmap(NULL, ms, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE,
                       -1, 0);
        if (m == MAP_FAILED)
            return NULL;
        b = m;
        b->next = p->arena;
        b->used = 0;
        b->cap = ms - sizeof *b;
        b->map_size = ms;
        p->arena = b;
        p->n_blocks++;
        at = 0;
    }
    b->used = at + n;
    return b->data + at;
}

static void *arena_alloc(priv *p, size_t n) { return arena_alloc_aligned(p, n, 16); }

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    while (*s)
        h = (h ^ (unsigned char)*s++) * 1099511628211ull;
    return h;
}

/* ---- bounded cursor over one file ---- */

/* The cursor keeps a window [wstart, wstart + wlen) of the file in win;
 * runs longer than half the window (big scalar arrays) are read straight
 * into their destination.  Every request is checked against the file size
 * before anything is read or allocated. */
#define WINDOW (1u << 20)

typedef struct cur {
    const char *path;
    int fd;
    uint64_t size;   /* file size */
    uint8_t *win;    /* WINDOW bytes */
    uint64_t wstart, wlen;
    uint64_t pos;
    int rc;          /* first error */
    char *err;
    size_t errlen;
    priv *p;
} cur;

static int cur_fail(cur *c, int rc, const char *fmt, ...)
{
    if (c->rc)
        return c->rc;
    c->rc = rc;
    if (c->err && c->errlen) {
        int k = snprintf(c->err, c->errlen, "%s: ", c->path);
        if (k < 0 || (size_t)k >= c->errlen)
            return rc;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->err + k, c->errlen - (size_t)k, fmt, ap);
        va_end(ap);
    }
    return rc;
}

static bool pread_all(cur *c, void *dst, uint64_t n, uint64_t off)
{
    uint8_t *d = dst;
    while (n) {
        ssize_t r = pread(c->fd, d, n, (off_t)off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            cur_fail(c, -EIO, "read error at byte %llu: %s", (unsigned long long)off,
                     r < 0 ? strerror(errno) : "unexpected end of file (file shrank?)");
            return false;
        }
        d += r;
        off += (uint64_t)r;
        n -= (uint64_t)r;
    }
    return true;
}

/* Fails unless [pos, pos + n) lies inside the file. */
static bool cur_check(cur *c, uint64_t n, const char *what)
{
    if (c->rc)
        return false;
    if (n > c->size || c->pos > c->size - n) {
        cur_fail(c, -EBADMSG, "%s at byte %llu: needs %llu bytes but the file ends at %llu "
                              "(truncated or corrupt)",
                 what, (unsigned long long)c->pos, (unsigned long long)n,
                 (unsigned long long)c->size);
        return false;
    }
    return true;
}

/* Makes [pos, pos + n) (n <= WINDOW) readable at cur_ptr(c). */
static bool cur_need(cur *c, uint64_t n, const char *what)
{
    if (!cur_check(c, n, what))
        return false;
    if (c->pos >= c->wstart && c->pos + n <= c->wstart + c->wlen)
        return true;
    uint64_t keep = 0;
    if (c->pos >= c->wstart && c->pos < c->wstart + c->wlen) {
        keep = c->wstart + c->wlen - c->pos;
        memmove(c->win, c->win + (c->pos - c->wstart), keep);
    }
    uint64_t want = c->size - c->pos < WINDOW ? c->size - c->pos : WINDOW;
    c->wstart = c->pos;
    c->wlen = keep;
    if (!pread_all(c, c->win + keep, want - keep, c->pos + keep))
        return false;
    c->wlen = want;
    return true;
}

static const uint8_t *cur_ptr(const cur *c) { return c->win + (c->pos - c->wstart); }

static bool cur_bytes(cur *c, void *dst, uint64_t n, const char *what)
{
    if (n > WINDOW / 2) {
        if (!cur_check(c, n, what) || !pread_all(c, dst, n, c->pos))
            return false;
    } else {
        if (!cur_need(c, n, what))
            return false;
        memcpy(dst, cur_ptr(c), n);
    }
    c->pos += n;
    return true;
}

static bool cur_u32(cur *c, uint32_t *v, const char *what) { return cur_bytes(c, v, 4, what); }
static bool cur_u64(cur *c, uint64_t *v, const char *what) { return cur_bytes(c, v, 8, what); }

/* A string: u64 length + bytes, copied NUL-terminated into the arena. */
static bool cur_str(cur *c, gguf_str *s, uint64_t max, const char *what)
{
    uint64_t at = c->pos, n;
    /* Fast path (the R1 vocabulary has 257k short strings): length and
     * bytes already inside the window. */
    uint64_t wend = c->wstart + c->wlen;
    if (!c->rc && at >= c->wstart && wend - at >= 8) {
        memcpy(&n, cur_ptr(c), 8);
        if (n <= max && n <= wend - at - 8) {
            char *d = arena_alloc_aligned(c->p, n + 1, 1);
            if (!d) {
                cur_fail(c, -ENOMEM, "out of memory");
                return false;
            }
            memcpy(d, cur_ptr(c) + 8, n);
            d[n] = 0;
            c->pos += 8 + n;
            s->s = d;
            s->len = n;
            return true;
        }
    }
    if (!cur_u64(c, &n, what))
        return false;
    if (n > max || n > c->size - c->pos) {
        c->pos = at;
        cur_fail(c, -EBADMSG, "%s at byte %llu: string length %llu exceeds %s", what,
                 (unsigned long long)at, (unsigned long long)n,
                 n > max ? "the limit" : "the bytes left in the file");
        return false;
    }
    char *d = arena_alloc_aligned(c->p, n + 1, 1);
    if (!d) {
        cur_fail(c, -ENOMEM, "out of memory");
        return false;
    }
    if (!cur_bytes(c, d, n, what))
        return false;
    d[n] = 0;
    s->s = d;
    s->len = n;
    return true;
}

/* ---- metadata values ---- */

size_t gguf_vtype_size(uint32_t t)
{
    switch (t) {
    case GGUF_T_UINT8: case GGUF_T_INT8: case GGUF_T_BOOL: return 1;
    case GGUF_T_UINT16: case GGUF_T_INT16: return 2;
    case GGUF_T_UINT32: case GGUF_T_INT32: case GGUF_T_FLOAT32: return 4;
    case GGUF_T_UINT64: case GGUF_T_INT64: case GGUF_T_FLOAT64: return 8;
    default: return 0;
    }
}

const char *gguf_vtype_name(uint32_t t)
{
    static const char *names[] = {"u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool",
                                  "str", "arr", "u64", "i64", "f64"};
    return t < sizeof names / sizeof names[0] ? names[t] : "?";
}

static void scalar_decode(uint32_t t, const uint8_t *b, gguf_value *v)
{
    v->type = t;
    switch (t) {
    case GGUF_T_UINT8: v->u = b[0]; break;
    case GGUF_T_INT8: v->i = (int8_t)b[0]; break;
    case GGUF_T_BOOL: v->u = b[0] != 0; break;
    case GGUF_T_UINT16: { uint16_t x; memcpy(&x, b, 2); v->u = x; break; }
    case GGUF_T_INT16: { int16_t x; memcpy(&x, b, 2); v->i = x; break; }
    case GGUF_T_UINT32: { uint32_t x; memcpy(&x, b, 4); v->u = x; break; }
    case GGUF_T_INT32: { int32_t x; memcpy(&x, b, 4); v->i = x; break; }
    case GGUF_T_FLOAT32: { float x; memcpy(&x, b, 4); v->f = x; break; }
    case GGUF_T_UINT64: { uint64_t x; memcpy(&x, b, 8); v->u = x; break; }
    case GGUF_T_INT64: { int64_t x; memcpy(&x, b, 8); v->i = x; break; }
    case GGUF_T_FLOAT64: { double x; memcpy(&x, b, 8); v->f = x; break; }
    default: break;
    }
}

static bool parse_value(cur *c, uint32_t type, gguf_value *v, int depth, const char *key)
{
    uint64_t at = c->pos;
    v->type = type;
    size_t es = gguf_vtype_size(type);
    if (es) {
        uint8_t b[8];
        if (!cur_bytes(c, b, es, key))
            return false;
        if (type == GGUF_T_BOOL && b[0] > 1) {
            cur_fail(c, -EBADMSG, "key '%s' at byte %llu: bool value %u is not 0 or 1", key,
                     (unsigned long long)at, b[0]);
            return false;
        }
        scalar_decode(type, b, v);
        return true;
    }
    if (type == GGUF_T_STRING)
        return cur_str(c, &v->str, UINT64_MAX, key);
    if (type != GGUF_T_ARRAY) {
        cur_fail(c, -EBADMSG, "key '%s' at byte %llu: unknown value type %u", key,
                 (unsigned long long)at, type);
        return false;
    }
    if (depth >= MAX_ARRAY_DEPTH) {
        cur_fail(c, -EBADMSG, "key '%s' at byte %llu: arrays nested deeper than %d", key,
                 (unsigned long long)at, MAX_ARRAY_DEPTH);
        return false;
    }
    uint32_t et;
    uint64_t n;
    if (!cur_u32(c, &et, key) || !cur_u64(c, &n, key))
        return false;
    size_t ees = gguf_vtype_size(et);
    /* Every element takes at least one byte (8 for strings and arrays):
     * bound the count by the bytes left before allocating anything. */
    uint64_t min_el = ees ? ees : (et == GGUF_T_STRING ? 8 : 12);
    if (et > GGUF_T_FLOAT64 || (ees == 0 && et != GGUF_T_STRING && et != GGUF_T_ARRAY)) {
        cur_fail(c, -EBADMSG, "key '%s' at byte %llu: unknown array element type %u", key,
                 (unsigned long long)at, et);
        return false;
    }
    if (n > (c->size - c->pos) / min_el) {
        cur_fail(c, -EBADMSG, "key '%s' at byte %llu: array of %llu elements cannot fit in the "
                              "%llu bytes left",
                 key, (unsigned long long)at, (unsigned long long)n,
                 (unsigned long long)(c->size - c->pos));
        return false;
    }
    v->arr.type = et;
    v->arr.n = n;
    if (ees) {
        void *d = arena_alloc(c->p, n * ees);
        if (!d || !cur_bytes(c, d, n * ees, key)) {
            if (!d)
                cur_fail(c, -ENOMEM, "out of memory");
            return false;
        }
        v->arr.data = d;
        return true;
    }
    if (et == GGUF_T_STRING) {
        gguf_str *d = arena_alloc(c->p, n * sizeof *d);
        if (!d) {
            cur_fail(c, -ENOMEM, "out of memory");
            return false;
        }
        for (uint64_t i = 0; i < n; i++)
            if (!cur_str(c, &d[i], UINT64_MAX, key))
                return false;
        v->arr.data = d;
        return true;
    }
    gguf_value *d = arena_alloc(c->p, n * sizeof *d);
    if (!d) {
        cur_fail(c, -ENOMEM, "out of memory");
        return false;
    }
    /* Array of arrays: each element is itself an array (element type,
     * count, elements) with no type tag of its own, as in the GGUF spec. */
    for (uint64_t i = 0; i < n; i++)
        if (!parse_value(c, GGUF_T_ARRAY, &d[i], depth + 1, key))
            return false;
    v->arr.data = d;
    return true;
}

/* ---- one part ---- */

typedef struct part_hdr {
    uint32_t version;
    uint64_t n_kv;
    gguf_kv *kv;
    uint64_t n_tensors;
    gguf_tensor *tensors;
    uint32_t alignment;
    uint64_t data_off;
    uint64_t *info_at; /* byte offset of each tensor info (malloc'd; for messages) */
    uint64_t *kv_at;   /* byte offset of each key (malloc'd; for messages) */
    uint32_t shared_layers; /* SHARED_KEY's value, checked (0: none) */
} part_hdr;

static void part_hdr_free(part_hdr *h)
{
    free(h->info_at);
    free(h->kv_at);
    h->info_at = h->kv_at = NULL;
}

/* Byte offset of key's entry in h, or 0 if absent. */
static uint64_t kv_at(const part_hdr *h, const char *key)
{
    for (uint64_t i = 0; i < h->n_kv; i++)
        if (!strcmp(h->kv[i].key, key))
            return h->kv_at[i];
    return 0;
}

static const gguf_value *kv_find(const part_hdr *h, const char *key)
{
    for (uint64_t i = 0; i < h->n_kv; i++)
        if (!strcmp(h->kv[i].key, key))
            return &h->kv[i].val;
    return NULL;
}

typedef struct off_idx {
    uint64_t off, idx;
} off_idx;

static int cmp_off_idx(const void *a, const void *b)
{
    const off_idx *x = a, *y = b;
    return x->off < y->off ? -1 : x->off > y->off;
}

/* ---- shared expert layers (synthetic benchmark files) ---- */

static int get_uint(const gguf_value *v, uint64_t *out);

#define SHARED_KEY "moestream.synthetic.shared_layers"
#define MAX_SHARED_LAYER 100000

static const char *const shared_kinds[3] = {"ffn_gate_exps.weight", "ffn_up_exps.weight",
                                            "ffn_down_exps.weight"};

/* Layer number and kind (0..2) of a name "blk.N.<shared_kinds[k]>", or -1. */
static int shared_name(const char *name, long *layer)
{
    if (strncmp(name, "blk.", 4))
        return -1;
    const char *q = name + 4;
    long n = 0;
    int digits = 0;
    while (*q >= '0' && *q <= '9' && digits < 7) {
        n = n * 10 + (*q++ - '0');
        digits++;
    }
    if (!digits || *q != '.' || (digits > 1 && name[4] == '0'))
        return -1;
    for (int k = 0; k < 3; k++)
        if (!strcmp(q + 1, shared_kinds[k])) {
            *layer = n;
            return k;
        }
    return -1;
}

/* A file whose SHARED_KEY is K may give several layers' routed-expert
 * tensors one data range, in exactly one pattern: with L_0 < ... < L_{M-1}
 * the layers that have blk.L.ffn_{gate,up,down}_exps.weight (all three
 * each), tensor kind k of L_j for j >= K is tensor kind k of L_{j mod K}:
 * same type, same shape, same offset.  Sets alias[i] for those tensors
 * (the overlap sweep then skips them; the sources still may not overlap
 * anything) and h->shared_layers.  Without the key: nothing, no aliases.
 * Anything else under the key fails the whole file. */
static int shared_aliases(cur *c, part_hdr *h, uint8_t *alias)
{
    const gguf_value *v = kv_find(h, SHARED_KEY);
    if (!v)
        return 0;
    const unsigned long long at = (unsigned long long)kv_at(h, SHARED_KEY);
    uint64_t K = 0;
    if (get_uint(v, &K))
        return cur_fail(c, -EBADMSG, "key '" SHARED_KEY "' at byte %llu has type %s, want an "
                                     "unsigned integer", at, gguf_vtype_name(v->type));
    long max_layer = -1;
    for (uint64_t i = 0; i < h->n_tensors; i++) {
        long l;
        if (shared_name(h->tensors[i].name, &l) >= 0) {
            if (l > MAX_SHARED_LAYER)
                return cur_fail(c, -EBADMSG, "tensor '%s' (tensor info at byte %llu): layer %ld "
                                             "(at most %d in a file with '" SHARED_KEY "')",
                                h->tensors[i].name, (unsigned long long)h->info_at[i], l,
                                MAX_SHARED_LAYER);
            if (l > max_layer)
                max_layer = l;
        }
    }
    const size_t nl = (size_t)(max_layer + 1);
    uint64_t *idx = malloc((nl ? nl : 1) * 3 * sizeof *idx);
    long *moe = malloc((nl ? nl : 1) * sizeof *moe);
    int rc = 0;
    if (!idx || !moe) {
        rc = cur_fail(c, -ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < nl * 3; i++)
        idx[i] = UINT64_MAX;
    for (uint64_t i = 0; i < h->n_tensors && !rc; i++) {
        long l;
        int k = shared_name(h->tensors[i].name, &l);
        if (k < 0)
            continue;
        if (idx[(size_t)l * 3 + (size_t)k] != UINT64_MAX)
            rc = cur_fail(c, -EBADMSG, "tensor '%s' (tensor info at byte %llu): duplicate name",
                          h->tensors[i].name, (unsigned long long)h->info_at[i]);
        idx[(size_t)l * 3 + (size_t)k] = i;
    }
    size_t M = 0;
    for (size_t l = 0; l < nl && !rc; l++) {
        int have = 0;
        for (int k = 0; k < 3; k++)
            have += idx[l * 3 + (size_t)k] != UINT64_MAX;
        if (have == 0)
            continue;
        for (int k = 0; k < 3 && have < 3; k++)
            if (idx[l * 3 + (size_t)k] == UINT64_MAX)
                rc = cur_fail(c, -EBADMSG, "key '" SHARED_KEY "' at byte %llu: layer %zu has "
                                           "routed-expert tensors but no blk.%zu.%s",
                              at, l, l, shared_kinds[k]);
        moe[M++] = (long)l;
    }
    if (!rc && (K < 1 || K > M))
        rc = cur_fail(c, -EBADMSG, "key '" SHARED_KEY "' at byte %llu is %llu, but the file has "
                                   "%zu layers of routed experts (want 1..%zu)",
                      at, (unsigned long long)K, M, M);
    for (size_t j = (size_t)K; j < M && !rc; j++)
        for (int k = 0; k < 3 && !rc; k++) {
            const uint64_t ia = idx[(size_t)moe[j] * 3 + (size_t)k];
            const uint64_t is = idx[(size_t)moe[j % K] * 3 + (size_t)k];
            const gguf_tensor *a = &h->tensors[ia], *s = &h->tensors[is];
            if (a->type != s->type || a->n_dims != s->n_dims ||
                memcmp(a->ne, s->ne, sizeof a->ne) || a->offset != s->offset) {
                rc = cur_fail(c, -EBADMSG,
                              "key '" SHARED_KEY "' at byte %llu says %llu layers of experts "
                              "repeat cyclically, but tensor '%s' (tensor info at byte %llu: "
                              "type %u, [%lld, %lld, %lld], data offset %llu) is not the same "
                              "as '%s' (tensor info at byte %llu: type %u, [%lld, %lld, %lld], "
                              "data offset %llu)",
                              at, (unsigned long long)K, a->name,
                              (unsigned long long)h->info_at[ia], a->type, (long long)a->ne[0],
                              (long long)a->ne[1], (long long)a->ne[2],
                              (unsigned long long)a->offset, s->name,
                              (unsigned long long)h->info_at[is], s->type, (long long)s->ne[0],
                              (long long)s->ne[1], (long long)s->ne[2],
                              (unsigned long long)s->offset);
                break;
            }
            alias[ia] = 1;
        }
    if (!rc)
        h->shared_layers = (uint32_t)K;
out:
    free(idx);
    free(moe);
    return rc;
}

static int parse_part(cur *c, part_hdr *h, uint32_t part_idx)
{
    uint32_t magic;
    if (!cur_u32(c, &magic, "magic"))
        return c->rc;
    if (magic != GGUF_MAGIC)
        return cur_fail(c, -EBADMSG, "not a GGUF file (magic at byte 0 is 0x%08x, want \"GGUF\")",
                        magic);
    if (!cur_u32(c, &h->version, "version"))
        return c->rc;
    if ((h->version & 0xFFFF) == 0)
        return cur_fail(c, -ENOTSUP, "version field at byte 4 is 0x%08x: a byte-swapped "
                                     "(big-endian) file, not supported",
                        h->version);
    if (h->version < 2 || h->version > 3)
        return cur_fail(c, -ENOTSUP, "GGUF version %u at byte 4 is not supported (need 2 or 3)",
                        h->version);
    if (!cur_u64(c, &h->n_tensors, "tensor count") || !cur_u64(c, &h->n_kv, "metadata count"))
        return c->rc;
    /* A key/value takes >= 12 bytes, a tensor info >= 28. */
    uint64_t left = c->size - c->pos;
    if (h->n_kv > left / 12)
        return cur_fail(c, -EBADMSG, "metadata count %llu at byte 16 cannot fit in the file",
                        (unsigned long long)h->n_kv);
    if (h->n_tensors > left / 28)
        return cur_fail(c, -EBADMSG, "tensor count %llu at byte 8 cannot fit in the file",
                        (unsigned long long)h->n_tensors);
    h->kv = arena_alloc(c->p, (h->n_kv ? h->n_kv : 1) * sizeof *h->kv);
    h->tensors = arena_alloc(c->p, (h->n_tensors ? h->n_tensors : 1) * sizeof *h->tensors);
    if (!h->kv || !h->tensors)
        return cur_fail(c, -ENOMEM, "out of memory");

    h->kv_at = malloc((h->n_kv ? h->n_kv : 1) * sizeof *h->kv_at);
    if (!h->kv_at)
        return cur_fail(c, -ENOMEM, "out of memory");
    /* Key uniqueness through a temporary hash set. */
    uint64_t kcap = 16;
    while (kcap < h->n_kv * 2)
        kcap *= 2;
    const char **kset = calloc(kcap, sizeof *kset);
    if (!kset)
        return cur_fail(c, -ENOMEM, "out of memory");
    for (uint64_t i = 0; i < h->n_kv; i++) {
        uint64_t at = c->pos;
        gguf_str key;
        uint32_t type;
        h->kv_at[i] = at;
        if (!cur_str(c, &key, MAX_KEY, "metadata key"))
            break;
        if (key.len == 0 || strlen(key.s) != key.len) {
            cur_fail(c, -EBADMSG, "metadata key %llu at byte %llu is empty or contains NUL",
                     (unsigned long long)i, (unsigned long long)at);
            break;
        }
        uint64_t hh = hash_str(key.s) & (kcap - 1);
        bool dup = false;
        while (kset[hh]) {
            if (!strcmp(kset[hh], key.s)) {
                dup = true;
                break;
            }
            hh = (hh + 1) & (kcap - 1);
        }
        if (dup) {
            cur_fail(c, -EBADMSG, "duplicate metadata key '%s' at byte %llu", key.s,
                     (unsigned long long)at);
            break;
        }
        kset[hh] = key.s;
        h->kv[i].key = key.s;
        if (!cur_u32(c, &type, key.s) || !parse_value(c, type, &h->kv[i].val, 0, key.s))
            break;
    }
    free(kset);
    if (c->rc)
        return c->rc;

    h->alignment = GGUF_DEFAULT_ALIGNMENT;
    const gguf_value *al = kv_find(h, "general.alignment");
    if (al) {
        if (al->type != GGUF_T_UINT32 || al->u == 0 || (al->u & (al->u - 1)) || al->u > (1u << 30))
            return cur_fail(c, -EBADMSG, "key 'general.alignment' at byte %llu: must be a "
                                         "power-of-two u32 (got %s %llu)",
                            (unsigned long long)kv_at(h, "general.alignment"),
                            gguf_vtype_name(al->type), (unsigned long long)al->u);
        h->alignment = (uint32_t)al->u;
    }

    h->info_at = malloc((h->n_tensors ? h->n_tensors : 1) * sizeof *h->info_at);
    if (!h->info_at)
        return cur_fail(c, -ENOMEM, "out of memory");
    for (uint64_t i = 0; i < h->n_tensors; i++) {
        gguf_tensor *t = &h->tensors[i];
        uint64_t at = c->pos;
        h->info_at[i] = at;
        gguf_str name;
        if (!cur_str(c, &name, MAX_NAME - 1, "tensor name"))
            return c->rc;
        if (name.len == 0 || strlen(name.s) != name.len)
            return cur_fail(c, -EBADMSG, "tensor %llu (tensor info at byte %llu): empty name or "
                                         "name with NUL",
                            (unsigned long long)i, (unsigned long long)at);
        t->name = name.s;
        t->part = part_idx;
        if (!cur_u32(c, &t->n_dims, t->name))
            return c->rc;
        if (t->n_dims > 4)
            return cur_fail(c, -EBADMSG, "tensor '%s' (tensor info at byte %llu): n_dims %u "
                                         "(at most 4)",
                            t->name, (unsigned long long)at, t->n_dims);
        for (int d = 0; d < 4; d++)
            t->ne[d] = 1;
        for (uint32_t d = 0; d < t->n_dims; d++) {
            uint64_t ne;
            if (!cur_u64(c, &ne, t->name))
                return c->rc;
            if (ne > (uint64_t)INT64_MAX)
                return cur_fail(c, -EBADMSG, "tensor '%s' (tensor info at byte %llu): dim %u = "
                                             "%llu is negative as int64",
                                t->name, (unsigned long long)at, d, (unsigned long long)ne);
            t->ne[d] = (int64_t)ne;
        }
        /* The reference accepts n_dims 0 (a single element) and dims of 0
         * (an empty tensor); so do we.  n_dims 0 is reported as 1 so that
         * n_dims stays in 1..4 for the rest of the program. */
        if (t->n_dims == 0)
            t->n_dims = 1;
        if (!cur_u32(c, &t->type, t->name) || !cur_u64(c, &t->offset, t->name))
            return c->rc;
        const quant_type_info *ti = quant_info((int)t->type);
        if (t->type > INT32_MAX || !ti || !ti->in_files)
            return cur_fail(c, -ENOTSUP, "tensor '%s' (tensor info at byte %llu): unknown or "
                                         "unsupported type %u",
                            t->name, (unsigned long long)at, t->type);
        if (t->ne[0] % ti->blck != 0)
            return cur_fail(c, -EBADMSG, "tensor '%s' (tensor info at byte %llu): row length %lld "
                                         "is not a multiple of the %s block size %d",
                            t->name, (unsigned long long)at, (long long)t->ne[0], ti->name,
                            ti->blck);
        /* Element count and byte size without overflow. */
        uint64_t nel = 1;
        bool over = false;
        for (int d = 0; d < 4; d++) {
            uint64_t x = (uint64_t)t->ne[d];
            if (x && nel > (uint64_t)INT64_MAX / x)
                over = true;
            nel *= x;
        }
        uint64_t blocks = nel / (uint64_t)ti->blck;
        if (over || blocks > UINT64_MAX / (uint64_t)ti->type_size)
            return cur_fail(c, -EBADMSG, "tensor '%s' (tensor info at byte %llu): shape [%lld, "
                                         "%lld, %lld, %lld] overflows",
                            t->name, (unsigned long long)at, (long long)t->ne[0],
                            (long long)t->ne[1], (long long)t->ne[2], (long long)t->ne[3]);
        t->nbytes = blocks * (uint64_t)ti->type_size;
        if (t->offset % h->alignment)
            return cur_fail(c, -EBADMSG, "tensor '%s' (tensor info at byte %llu): data offset "
                                         "%llu is not a multiple of the alignment %u",
                            t->name, (unsigned long long)at, (unsigned long long)t->offset,
                            h->alignment);
    }
    uint64_t end = c->pos;
    uint64_t data = (end + h->alignment - 1) / h->alignment * h->alignment;
    if (h->n_tensors > 0 && data > c->size)
        return cur_fail(c, -EBADMSG, "tensor data section would start at byte %llu (after the "
                                     "tensor infos ending at byte %llu), past the end of the "
                                     "file (size %llu)",
                        (unsigned long long)data, (unsigned long long)end,
                        (unsigned long long)c->size);
    h->data_off = data;
    /* Data inside the file and not overlapping (but for the declared
     * shared expert layers): sort by offset and sweep. */
    off_idx *order = malloc((h->n_tensors ? h->n_tensors : 1) * sizeof *order);
    uint8_t *alias = calloc(h->n_tensors ? h->n_tensors : 1, 1);
    if (!order || !alias) {
        free(order);
        free(alias);
        return cur_fail(c, -ENOMEM, "out of memory");
    }
    uint64_t n_own = 0;
    for (uint64_t i = 0; i < h->n_tensors; i++) {
        gguf_tensor *t = &h->tensors[i];
        uint64_t room = c->size - data;
        if (t->offset > room || t->nbytes > room - t->offset) {
            free(order);
            free(alias);
            uint64_t s0 = t->offset > UINT64_MAX - data ? UINT64_MAX : data + t->offset;
            uint64_t s1 = t->nbytes > UINT64_MAX - s0 ? UINT64_MAX : s0 + t->nbytes;
            return cur_fail(c, -EBADMSG, "tensor '%s' (tensor info at byte %llu): data [%llu, "
                                         "%llu) extends past end of file (size %llu)",
                            t->name, (unsigned long long)h->info_at[i], (unsigned long long)s0,
                            (unsigned long long)s1, (unsigned long long)c->size);
        }
    }
    if (shared_aliases(c, h, alias)) {
        free(order);
        free(alias);
        return c->rc;
    }
    for (uint64_t i = 0; i < h->n_tensors; i++)
        if (!alias[i])
            order[n_own++] = (off_idx){h->tensors[i].offset, i};
    free(alias);
    qsort(order, n_own, sizeof *order, cmp_off_idx);
    for (uint64_t k = 1; k < n_own; k++) {
        const gguf_tensor *x = &h->tensors[order[k - 1].idx], *y = &h->tensors[order[k].idx];
        if (x->offset + x->nbytes > y->offset) {
            int rc = cur_fail(c, -EBADMSG, "tensor '%s' (tensor info at byte %llu): data [%llu, "
                                           "%llu) overlaps tensor '%s' (tensor info at byte "
                                           "%llu) at [%llu, %llu)",
                              y->name, (unsigned long long)h->info_at[order[k].idx],
                              (unsigned long long)(data + y->offset),
                              (unsigned long long)(data + y->offset + y->nbytes), x->name,
                              (unsigned long long)h->info_at[order[k - 1].idx],
                              (unsigned long long)(data + x->offset),
                              (unsigned long long)(data + x->offset + x->nbytes));
            free(order);
            return rc;
        }
    }
    free(order);
    for (uint64_t i = 0; i < h->n_tensors; i++)
        h->tensors[i].offset += data; /* absolute from here on */
    return 0;
}

static int open_part(gguf_file *g, uint32_t idx, const char *path, part_hdr *h, char *err,
                     size_t errlen)
{
    gguf_part *pp = &g->parts[idx];
    pp->fd = -1;
    pp->path = strdup(path);
    if (!pp->path)
        return -ENOMEM;
    /* O_NONBLOCK: opening a FIFO for reading would otherwise wait for a
     * writer forever (and a character device may block too); the type is
     * checked on the descriptor before any read, then blocking restored. */
    pp->fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (pp->fd < 0) {
        int e = errno;
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(e));
        return -e;
    }
    struct stat st;
    if (fstat(pp->fd, &st) != 0) {
        int e = errno;
        snprintf(err, errlen, "%s: cannot stat: %s", path, strerror(e));
        return -e;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s: is %s, not a regular file (a model must be a GGUF file)", path,
                 S_ISDIR(st.st_mode) ? "a directory" : S_ISFIFO(st.st_mode) ? "a FIFO (named pipe)"
                 : S_ISCHR(st.st_mode) ? "a character device" : S_ISBLK(st.st_mode) ? "a block device"
                 : S_ISSOCK(st.st_mode) ? "a socket" : "a special file");
        return -EINVAL;
    }
    int fl = fcntl(pp->fd, F_GETFL);
    if (fl < 0 || fcntl(pp->fd, F_SETFL, fl & ~O_NONBLOCK) < 0) {
        int e = errno;
        snprintf(err, errlen, "%s: cannot restore blocking reads: %s", path, strerror(e));
        return -e;
    }
    pp->size = (uint64_t)st.st_size;
    pp->mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
    cur c = {.path = path, .fd = pp->fd, .size = pp->size, .err = err, .errlen = errlen,
             .p = g->priv, .win = malloc(WINDOW)};
    if (!c.win)
        return -ENOMEM;
    int rc = parse_part(&c, h, idx);
    free(c.win);
    pp->data_off = h->data_off;
    return rc;
}

/* ---- split sets ---- */

static int get_uint(const gguf_value *v, uint64_t *out)
{
    if (!v)
        return -ENOENT;
    switch (v->type) {
    case GGUF_T_UINT8: case GGUF_T_UINT16: case GGUF_T_UINT32: case GGUF_T_UINT64:
        *out = v->u;
        return 0;
    case GGUF_T_INT8: case GGUF_T_INT16: case GGUF_T_INT32: case GGUF_T_INT64:
        if (v->i < 0)
            return -ERANGE;
        *out = (uint64_t)v->i;
        return 0;
    default:
        return -EBADMSG;
    }
}

/* "<prefix>-00001-of-00003.gguf" -> prefix length, or -1. */
/* A file of `moestream repack` (quant.h, the private types): MS_REPACK_KEY
 * must say a layout version this build reads, and a private tensor type
 * needs the key.  Sets g->repack_version. */
static int repack_check(gguf_file *g, const char *path, char *err, size_t errlen)
{
    const gguf_value *v = gguf_find(g, MS_REPACK_KEY);
    const gguf_tensor *priv_t = NULL;
    for (uint64_t i = 0; i < g->n_tensors && !priv_t; i++)
        if (quant_private_plain((int)g->tensors[i].type) >= 0)
            priv_t = &g->tensors[i];
    if (!v && !priv_t)
        return 0;
    uint64_t ver = 0;
    if (!v) {
        snprintf(err, errlen, "%s: tensor '%s' has the moestream-private type %s (%u) but the file has no '"
                              MS_REPACK_KEY "' key: not a file written by moestream repack",
                 path, priv_t->name, quant_info((int)priv_t->type)->name, priv_t->type);
        return -EBADMSG;
    }
    if (get_uint(v, &ver)) {
        snprintf(err, errlen, "%s: key '" MS_REPACK_KEY "' has type %s, want an unsigned integer", path, gguf_vtype_name(v->type));
        return -EBADMSG;
    }
    if (ver != MS_REPACK_VERSION) {
        snprintf(err, errlen, "%s: repacked expert layout version %llu (key '" MS_REPACK_KEY "'), but this "
                              "moestream reads version %u only; repack the original GGUF again with this "
                              "build (moestream repack -m ORIGINAL -o OUT)",
                 path, (unsigned long long)ver, MS_REPACK_VERSION);
        return -ENOTSUP;
    }
    g->repack_version = (uint32_t)ver;
    return 0;
}

static int split_prefix_len(const char *path, uint32_t count)
{
    size_t n = strlen(path);
    char tail[64];
    snprintf(tail, sizeof tail, "-%05u-of-%05u.gguf", 1u, count);
    size_t tl = strlen(tail);
    if (n <= tl || strcmp(path + n - tl, tail) != 0)
        return -1;
    return (int)(n - tl);
}

static bool name_insert(priv *p, const char *name, uint64_t idx, uint64_t *dup)
{
    uint64_t h = hash_str(name) & (p->tcap - 1);
    while (p->tidx[h].name) {
        if (!strcmp(p->tidx[h].name, name)) {
            *dup = p->tidx[h].idx;
            return false;
        }
        h = (h + 1) & (p->tcap - 1);
    }
    p->tidx[h].name = name;
    p->tidx[h].idx = idx;
    return true;
}

int gguf_open(gguf_file **out, const char *path, char *err, size_t errlen)
{
    *out = NULL;
    if (err && errlen)
        err[0] = 0;
    gguf_file *g = calloc(1, sizeof *g);
    priv *p = calloc(1, sizeof *p);
    if (!g || !p) {
        free(g);
        free(p);
        return -ENOMEM;
    }
    g->priv = p;
    part_hdr *hdrs = NULL;
    int rc;
    g->parts = calloc(1, sizeof *g->parts);
    if (!g->parts) {
        rc = -ENOMEM;
        goto fail;
    }
    g->n_parts = 1;
    part_hdr h0 = {0};
    if ((rc = open_part(g, 0, path, &h0, err, errlen))) {
        part_hdr_free(&h0);
        goto fail;
    }
    g->version = h0.version;
    g->alignment = h0.alignment;
    g->n_kv = h0.n_kv;
    g->kv = h0.kv;
    g->shared_layers = h0.shared_layers;

    /* Split set: count <= 1 (a merged file keeps split.count 0) is one file. */
    uint64_t count = 0, no = 0, total = 0;
    const gguf_value *vc = kv_find(&h0, "split.count");
    rc = -EBADMSG;
    if (vc && get_uint(vc, &count)) {
        snprintf(err, errlen, "%s: key 'split.count' at byte %llu has type %s, want u16", path,
                 (unsigned long long)kv_at(&h0, "split.count"), gguf_vtype_name(vc->type));
        part_hdr_free(&h0);
        goto fail;
    }
    if (count > MAX_PARTS) {
        snprintf(err, errlen, "%s: key 'split.count' at byte %llu is %llu (at most %d parts)",
                 path, (unsigned long long)kv_at(&h0, "split.count"), (unsigned long long)count,
                 MAX_PARTS);
        part_hdr_free(&h0);
        goto fail;
    }
    uint32_t n_parts = count > 1 ? (uint32_t)count : 1;
    hdrs = calloc(n_parts, sizeof *hdrs);
    if (!hdrs) {
        part_hdr_free(&h0);
        rc = -ENOMEM;
        goto fail;
    }
    hdrs[0] = h0;
    if (count > 1) {
        if (get_uint(kv_find(&h0, "split.no"), &no) || no != 0) {
            rc = -EINVAL;
            snprintf(err, errlen, "%s: key 'split.no' at byte %llu says this is part %llu of a "
                                  "split set of %llu; open part 1 (...-00001-of-%05llu.gguf)",
                     path, (unsigned long long)kv_at(&h0, "split.no"), (unsigned long long)no + 1,
                     (unsigned long long)count, (unsigned long long)count);
            goto fail;
        }
        int pl = split_prefix_len(path, (uint32_t)count);
        if (pl < 0) {
            rc = -EINVAL;
            snprintf(err, errlen, "%s: split.count is %llu but the name does not end in "
                                  "-00001-of-%05llu.gguf, so the other parts cannot be found",
                     path, (unsigned long long)count, (unsigned long long)count);
            goto fail;
        }
        gguf_part *np = realloc(g->parts, count * sizeof *np);
        if (!np) {
            rc = -ENOMEM;
            goto fail;
        }
        g->parts = np;
        memset(g->parts + 1, 0, (count - 1) * sizeof *np);
        for (uint64_t i = 1; i < count; i++)
            g->parts[i].fd = -1;
        for (uint32_t i = 1; i < count; i++) {
            char pth[4096];
            snprintf(pth, sizeof pth, "%.*s-%05u-of-%05u.gguf", pl, path, i + 1, (uint32_t)count);
            g->n_parts = i + 1;
            if ((rc = open_part(g, i, pth, &hdrs[i], err, errlen))) {
                if (rc == -ENOENT)
                    snprintf(err, errlen, "%s: split part %u of %llu is missing: %s does not exist",
                             path, i + 1, (unsigned long long)count, pth);
                goto fail;
            }
            const char *bad = NULL;
            uint64_t pno = 0, pc = 0;
            if (get_uint(kv_find(&hdrs[i], "split.no"), &pno) || pno != i)
                bad = "split.no";
            else if (get_uint(kv_find(&hdrs[i], "split.count"), &pc) || pc != count)
                bad = "split.count";
            if (bad) {
                rc = -EBADMSG;
                if (kv_find(&hdrs[i], bad))
                    snprintf(err, errlen, "%s: key '%s' at byte %llu: want %llu (this file is part "
                                          "%u of %llu by name), got %llu",
                             pth, bad, (unsigned long long)kv_at(&hdrs[i], bad),
                             (unsigned long long)(bad[6] == 'n' ? i : count), i + 1,
                             (unsigned long long)count,
                             (unsigned long long)(bad[6] == 'n' ? pno : pc));
                else
                    snprintf(err, errlen, "%s: key '%s' is missing or not an unsigned integer "
                                          "(part %u of a split set of %llu)",
                             pth, bad, i + 1, (unsigned long long)count);
                goto fail;
            }
        }
    }
    for (uint32_t i = 0; i < g->n_parts; i++)
        total += hdrs[i].n_tensors;
    g->n_tensors = total;
    g->tensors = arena_alloc(p, (total ? total : 1) * sizeof *g->tensors);
    p->tcap = 16;
    while (p->tcap < total * 2)
        p->tcap *= 2;
    p->tidx = calloc(p->tcap, sizeof *p->tidx);
    if (!g->tensors || !p->tidx) {
        rc = -ENOMEM;
        goto fail;
    }
    uint64_t k = 0;
    for (uint32_t i = 0; i < g->n_parts; i++)
        for (uint64_t j = 0; j < hdrs[i].n_tensors; j++) {
            uint64_t dup;
            g->tensors[k] = hdrs[i].tensors[j];
            if (!name_insert(p, g->tensors[k].name, k, &dup)) {
                const gguf_tensor *o = &g->tensors[dup];
                uint64_t j0 = dup;
                for (uint32_t q = 0; q < o->part; q++)
                    j0 -= hdrs[q].n_tensors;
                rc = -EBADMSG;
                snprintf(err, errlen, "%s: tensor '%s' (tensor info at byte %llu): duplicate name, "
                                      "first defined in %s (tensor info at byte %llu)",
                         g->parts[i].path, g->tensors[k].name,
                         (unsigned long long)hdrs[i].info_at[j], g->parts[o->part].path,
                         (unsigned long long)hdrs[o->part].info_at[j0]);
                goto fail;
            }
            k++;
        }
    uint64_t want = 0;
    const gguf_value *vt = kv_find(&hdrs[0], "split.tensors.count");
    if (count > 1 && vt && (get_uint(vt, &want) || want != total)) {
        rc = -EBADMSG;
        snprintf(err, errlen, "%s: key 'split.tensors.count' at byte %llu is %llu but the %u parts "
                              "hold %llu tensors",
                 path, (unsigned long long)kv_at(&hdrs[0], "split.tensors.count"),
                 (unsigned long long)want, g->n_parts, (unsigned long long)total);
        goto fail;
    }
    if ((rc = repack_check(g, path, err, errlen)))
        goto fail;
    for (uint32_t i = 0; i < n_parts; i++)
        part_hdr_free(&hdrs[i]);
    free(hdrs);
    *out = g;
    return 0;
fail:
    for (uint32_t i = 0; hdrs && i < g->n_parts; i++)
        part_hdr_free(&hdrs[i]);
    free(hdrs);
    if (rc == 0)
        rc = -EBADMSG;
    gguf_close(g);
    return rc;
}

void gguf_close(gguf_file *g)
{
    if (!g)
        return;
    for (uint32_t i = 0; i < g->n_parts; i++) {
        if (g->parts[i].fd >= 0)
            close(g->parts[i].fd);
        free(g->parts[i].path);
    }
    free(g->parts);
    priv *p = g->priv;
    if (p) {
        free(p->tidx);
        for (arena_blk *b = p->arena; b;) {
            arena_blk *n = b->next;
            munmap(b, b->map_size);
            b = n;
        }
        free(p);
    }
    free(g);
}

/* ---- lookups ---- */

const gguf_value *gguf_find(const gguf_file *g, const char *key)
{
    for (uint64_t i = 0; i < g->n_kv; i++)
        if (!strcmp(g->kv[i].key, key))
            return &g->kv[i].val;
    return NULL;
}

const gguf_tensor *gguf_find_tensor(const gguf_file *g, const char *name)
{
    const priv *p = g->priv;
    if (!p->tidx)
        return NULL;
    uint64_t h = hash_str(name) & (p->tcap - 1);
    while (p->tidx[h].name) {
        if (!strcmp(p->tidx[h].name, name))
            return &g->tensors[p->tidx[h].idx];
        h = (h + 1) & (p->tcap - 1);
    }
    return NULL;
}

static int wrong_type(const gguf_file *g, const char *key, const gguf_value *v, const char *want,
                      char *err, size_t errlen)
{
    if (err && errlen)
        snprintf(err, errlen, "%s: metadata '%s' has type %s, expected %s", g->parts[0].path, key,
                 gguf_vtype_name(v->type), want);
    return -EBADMSG;
}

int gguf_get_u64(const gguf_file *g, const char *key, uint64_t *out, char *err, size_t errlen)
{
    const gguf_value *v = gguf_find(g, key);
    if (!v)
        return -ENOENT;
    if (get_uint(v, out))
        return wrong_type(g, key, v, "a non-negative integer", err, errlen);
    return 0;
}

int gguf_get_u32(const gguf_file *g, const char *key, uint32_t *out, char *err, size_t errlen)
{
    uint64_t x;
    int rc = gguf_get_u64(g, key, &x, err, errlen);
    if (rc)
        return rc;
    if (x > UINT32_MAX)
        return wrong_type(g, key, gguf_find(g, key), "a 32-bit value", err, errlen);
    *out = (uint32_t)x;
    return 0;
}

int gguf_get_f64(const gguf_file *g, const char *key, double *out, char *err, size_t errlen)
{
    const gguf_value *v = gguf_find(g, key);
    if (!v)
        return -ENOENT;
    if (v->type != GGUF_T_FLOAT32 && v->type != GGUF_T_FLOAT64)
        return wrong_type(g, key, v, "f32", err, errlen);
    *out = v->f;
    return 0;
}

int gguf_get_bool(const gguf_file *g, const char *key, bool *out, char *err, size_t errlen)
{
    const gguf_value *v = gguf_find(g, key);
    if (!v)
        return -ENOENT;
    if (v->type != GGUF_T_BOOL)
        return wrong_type(g, key, v, "bool", err, errlen);
    *out = v->u != 0;
    return 0;
}

int gguf_get_str(const gguf_file *g, const char *key, gguf_str *out, char *err, size_t errlen)
{
    const gguf_value *v = gguf_find(g, key);
    if (!v)
        return -ENOENT;
    if (v->type != GGUF_T_STRING)
        return wrong_type(g, key, v, "string", err, errlen);
    *out = v->str;
    return 0;
}

int gguf_get_arr(const gguf_file *g, const char *key, uint32_t elem_type, uint64_t *n,
                 const void **data, char *err, size_t errlen)
{
    const gguf_value *v = gguf_find(g, key);
    if (!v)
        return -ENOENT;
    if (v->type != GGUF_T_ARRAY || v->arr.type != elem_type) {
        if (err && errlen)
            snprintf(err, errlen, "%s: metadata '%s' is %s%s%s, expected an array of %s",
                     g->parts[0].path, key, gguf_vtype_name(v->type),
                     v->type == GGUF_T_ARRAY ? " of " : "",
                     v->type == GGUF_T_ARRAY ? gguf_vtype_name(v->arr.type) : "",
                     gguf_vtype_name(elem_type));
        return -EBADMSG;
    }
    *n = v->arr.n;
    *data = v->arr.data;
    return 0;
}

int gguf_read(const gguf_file *g, uint32_t part, uint64_t off, void *dst, size_t n, char *err,
              size_t errlen)
{
    if (part >= g->n_parts) {
        snprintf(err, errlen, "read from part %u of %u", part, g->n_parts);
        return -EINVAL;
    }
    const gguf_part *pp = &g->parts[part];
    if (off > pp->size || n > pp->size - off) {
        snprintf(err, errlen, "%s: read of %zu bytes at offset %llu is past the end (%llu bytes; "
                              "was the file truncated or replaced?)",
                 pp->path, n, (unsigned long long)off, (unsigned long long)pp->size);
        return -EIO;
    }
    uint8_t *d = dst;
    size_t done = 0;
    while (done < n) {
        ssize_t r = pread(pp->fd, d + done, n - done, (off_t)(off + done));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            int e = r < 0 ? errno : 0;
            struct stat st;
            bool changed = fstat(pp->fd, &st) == 0 && (uint64_t)st.st_size != pp->size;
            snprintf(err, errlen, "%s: read of %zu bytes at offset %llu failed: %s%s", pp->path,
                     n - done, (unsigned long long)(off + done), e ? strerror(e) : "end of file",
                     changed ? " (the file changed size since it was opened)" : "");
            return -EIO;
        }
        done += (size_t)r;
    }
    return 0;
}
