/* tokenizer.c - byte-level BPE with the deepseek-v3 pre-tokenizer.
 *
 * Encoding: (1) split the text at added tokens (longest text first; CONTROL
 * tokens only with TOK_PARSE_SPECIAL, none with TOK_NO_ADDED), as the
 * reference's tokenizer_st_partition does; (2) split each remaining fragment
 * with the three deepseek-v3 regexes in sequence, each isolating its
 * matches (PCRE2, UTF + UCP, matched per fragment so look-aheads stop at the
 * fragment end, like the reference); (3) byte-encode each piece with the
 * GPT-2 byte map and merge the adjacent pair of lowest merge rank (leftmost
 * on ties) until none applies; symbols missing from the vocabulary fall back
 * to one token per byte.
 * Invariant: after tok_load every id < n_vocab has a text; the merge and
 * token hash tables are read-only. */
#include "tokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <errno.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- string -> int hash table ---- */

typedef struct hslot {
    const char *s;
    uint32_t len;
    int32_t val;
} hslot;

typedef struct htab {
    hslot *slots;
    uint64_t cap; /* power of two */
} htab;

static uint64_t fnv(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

static int htab_init(htab *t, uint64_t n)
{
    t->cap = 16;
    while (t->cap < n * 2)
        t->cap *= 2;
    t->slots = calloc(t->cap, sizeof *t->slots);
    return t->slots ? 0 : -ENOMEM;
}

/* Keeps the first value for a duplicate key (as the reference's maps). */
static void htab_put(htab *t, const char *s, size_t n, int32_t val)
{
    uint64_t h = fnv(s, n) & (t->cap - 1);
    while (t->slots[h].s) {
        if (t->slots[h].len == n && !memcmp(t->slots[h].s, s, n))
            return;
        h = (h + 1) & (t->cap - 1);
    }
    t->slots[h] = (hslot){s, (uint32_t)n, val};
}

static int32_t htab_get(const htab *t, const char *s, size_t n)
{
    uint64_t h = fnv(s, n) & (t->cap - 1);
    while (t->slots[h].s) {
        if (t->slots[h].len == n && !memcmp(t->slots[h].s, s, n))
            return t->slots[h].val;
        h = (h + 1) & (t->cap - 1);
    }
    return -1;
}

/* ---- the vocabulary ---- */

struct tok_vocab {
    uint32_t n;
    gguf_str *text;   /* borrowed strings copied into own arena below */
    char *arena;
    int8_t *type;
    htab tokens;      /* text -> id */
    htab merges;      /* "left right" -> rank */
    int32_t bos, eos, eot;
    int32_t *special; /* added tokens, longest text first */
    uint32_t n_special;
    int32_t byte_tok[256]; /* token of each byte's mapped character */
    pcre2_code *re[3];
    uint16_t byte_cp[256];  /* GPT-2 byte -> code point */
    int16_t cp_byte[512];   /* code point -> byte, -1 if none */
};

static void byte_map_init(tok_vocab *v)
{
    int n = 0;
    for (int b = 0; b < 512; b++)
        v->cp_byte[b] = -1;
    for (int b = 0; b < 256; b++) {
        bool keep = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        v->byte_cp[b] = (uint16_t)(keep ? b : 256 + n++);
        v->cp_byte[v->byte_cp[b]] = (int16_t)b;
    }
}

static size_t utf8_put(uint32_t cp, char *o)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Length of the UTF-8 character at s (1 for an invalid byte). */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    size_t l = s[0] < 0x80 ? 1 : (s[0] >> 5) == 6 ? 2 : (s[0] >> 4) == 14 ? 3 : (s[0] >> 3) == 30 ? 4 : 1;
    if (l > n)
        return 1;
    for (size_t i = 1; i < l; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 1;
    return l;
}

static const char *const PATTERNS[3] = {
    "\\p{N}{1,3}",
    "[\\x{4E00}-\\x{9FA5}\\x{3040}-\\x{309F}\\x{30A0}-\\x{30FF}]+",
    "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\\r\\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+|"
    " ?[\\p{P}\\p{S}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
};

static int cmp_special_len(const void *a, const void *b, void *ctx)
{
    const tok_vocab *v = ctx;
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    if (v->text[x].len != v->text[y].len)
        return v->text[x].len > v->text[y].len ? -1 : 1;
    return x < y ? -1 : x > y;
}

int tok_load(tok_vocab **out, const gguf_file *g, char *err, size_t errlen)
{
    *out = NULL;
    gguf_str model, pre;
    int rc = gguf_get_str(g, "tokenizer.ggml.model", &model, err, errlen);
    if (rc) {
        if (rc == -ENOENT)
            snprintf(err, errlen, "%s: no tokenizer in this file (tokenizer.ggml.model missing)",
                     g->parts[0].path);
        return rc == -ENOENT ? -ENOTSUP : rc;
    }
    if (strcmp(model.s, "gpt2") != 0) {
        snprintf(err, errlen, "%s: tokenizer model '%s' is not supported (need byte-level BPE 'gpt2')",
                 g->parts[0].path, model.s);
        return -ENOTSUP;
    }
    rc = gguf_get_str(g, "tokenizer.ggml.pre", &pre, err, errlen);
    if (rc == 0 && strcmp(pre.s, "deepseek-v3") != 0 && strcmp(pre.s, "deepseek-llm") != 0) {
        snprintf(err, errlen, "%s: pre-tokenizer '%s' is not supported (need 'deepseek-v3')",
                 g->parts[0].path, pre.s);
        return -ENOTSUP;
    }
    uint64_t n_tok, n_types = 0, n_merges = 0;
    const void *toks, *types = NULL, *merges = NULL;
    if ((rc = gguf_get_arr(g, "tokenizer.ggml.tokens", GGUF_T_STRING, &n_tok, &toks, err, errlen)))
        return rc == -ENOENT ? -EBADMSG : rc;
    if (n_tok == 0 || n_tok > (1u << 24)) {
        snprintf(err, errlen, "%s: %llu tokens is not a plausible vocabulary", g->parts[0].path,
                 (unsigned long long)n_tok);
        return -EBADMSG;
    }
    rc = gguf_get_arr(g, "tokenizer.ggml.token_type", GGUF_T_INT32, &n_types, &types, err, errlen);
    if (rc && rc != -ENOENT)
        return rc;
    if (types && n_types != n_tok) {
        snprintf(err, errlen, "%s: %llu token types for %llu tokens", g->parts[0].path,
                 (unsigned long long)n_types, (unsigned long long)n_tok);
        return -EBADMSG;
    }
    rc = gguf_get_arr(g, "tokenizer.ggml.merges", GGUF_T_STRING, &n_merges, &merges, err, errlen);
    if (rc && rc != -ENOENT)
        return rc;

    tok_vocab *v = calloc(1, sizeof *v);
    if (!v)
        return -ENOMEM;
    v->n = (uint32_t)n_tok;
    v->text = malloc(n_tok * sizeof *v->text);
    v->type = malloc(n_tok);
    size_t bytes = 0;
    const gguf_str *ts = toks, *ms = merges;
    for (uint64_t i = 0; i < n_tok; i++)
        bytes += ts[i].len + 1;
    for (uint64_t i = 0; i < n_merges; i++)
        bytes += ms[i].len + 1;
    v->arena = malloc(bytes ? bytes : 1);
    if (!v->text || !v->type || !v->arena || htab_init(&v->tokens, n_tok) ||
        htab_init(&v->merges, n_merges)) {
        tok_free(v);
        return -ENOMEM;
    }
    char *p = v->arena;
    for (uint64_t i = 0; i < n_tok; i++) {
        memcpy(p, ts[i].s, ts[i].len);
        p[ts[i].len] = 0;
        v->text[i] = (gguf_str){p, ts[i].len};
        p += ts[i].len + 1;
        int32_t ty = TOK_NORMAL;
        if (types)
            memcpy(&ty, (const char *)types + 4 * i, 4);
        v->type[i] = (int8_t)ty;
        htab_put(&v->tokens, v->text[i].s, v->text[i].len, (int32_t)i);
    }
    for (uint64_t i = 0; i < n_merges; i++) {
        memcpy(p, ms[i].s, ms[i].len);
        p[ms[i].len] = 0;
        htab_put(&v->merges, p, ms[i].len, (int32_t)i);
        p += ms[i].len + 1;
    }
    uint32_t id;
    char e2[8];
    v->bos = gguf_get_u32(g, "tokenizer.ggml.bos_token_id", &id, e2, sizeof e2) == 0 && id < n_tok ? (int32_t)id : -1;
    v->eos = gguf_get_u32(g, "tokenizer.ggml.eos_token_id", &id, e2, sizeof e2) == 0 && id < n_tok ? (int32_t)id : -1;
    v->eot = gguf_get_u32(g, "tokenizer.ggml.eot_token_id", &id, e2, sizeof e2) == 0 && id < n_tok ? (int32_t)id : -1;

    byte_map_init(v);
    for (int b = 0; b < 256; b++) {
        char buf[4];
        size_t l = utf8_put(v->byte_cp[b], buf);
        v->byte_tok[b] = htab_get(&v->tokens, buf, l);
    }
    /* Added tokens: CONTROL, USER_DEFINED and UNKNOWN types, longest first. */
    v->special = malloc(n_tok * sizeof *v->special);
    if (!v->special) {
        tok_free(v);
        return -ENOMEM;
    }
    for (uint32_t i = 0; i < v->n; i++)
        if ((v->type[i] == TOK_CONTROL || v->type[i] == TOK_USER_DEFINED || v->type[i] == TOK_UNKNOWN) &&
            v->text[i].len > 0)
            v->special[v->n_special++] = (int32_t)i;
    qsort_r(v->special, v->n_special, sizeof *v->special, cmp_special_len, v);

    for (int r = 0; r < 3; r++) {
        int ec;
        PCRE2_SIZE eo;
        v->re[r] = pcre2_compile((PCRE2_SPTR)PATTERNS[r], PCRE2_ZERO_TERMINATED,
                                 PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &ec, &eo, NULL);
        if (!v->re[r]) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(ec, msg, sizeof msg);
            snprintf(err, errlen, "pre-tokenizer regex %d: %s at %zu", r, (char *)msg, (size_t)eo);
            tok_free(v);
            return -EINVAL;
        }
        pcre2_jit_compile(v->re[r], PCRE2_JIT_COMPLETE); /* optional speed-up */
    }
    *out = v;
    return 0;
}

void tok_free(tok_vocab *v)
{
    if (!v)
        return;
    for (int r = 0; r < 3; r++)
        pcre2_code_free(v->re[r]);
    free(v->text);
    free(v->type);
    free(v->arena);
    free(v->tokens.slots);
    free(v->merges.slots);
    free(v->special);
    free(v);
}

uint32_t tok_n_vocab(const tok_vocab *v) { return v->n; }
int32_t tok_bos(const tok_vocab *v) { return v->bos; }
int32_t tok_eos(const tok_vocab *v) { return v->eos; }
int tok_type(const tok_vocab *v, int32_t id) { return id >= 0 && (uint32_t)id < v->n ? v->type[id] : 0; }

int32_t tok_find(const tok_vocab *v, const char *text)
{
    return htab_get(&v->tokens, text, strlen(text));
}

bool tok_is_eog(const tok_vocab *v, int32_t id)
{
    return id >= 0 && (id == v->eos || id == v->eot);
}

/* ---- encoding ---- */

typedef struct frag {
    size_t off, len;
    int32_t id; /* >= 0: an added token already matched */
} frag;

typedef struct fvec {
    frag *f;
    size_t n, cap;
} fvec;

static int fpush(fvec *v, size_t off, size_t len, int32_t id)
{
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 64;
        frag *nf = realloc(v->f, cap * sizeof *nf);
        if (!nf)
            return -ENOMEM;
        v->f = nf;
        v->cap = cap;
    }
    v->f[v->n++] = (frag){off, len, id};
    return 0;
}

typedef struct ivec {
    int32_t *v;
    size_t n, cap;
} ivec;

static int ipush(ivec *v, int32_t x)
{
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 64;
        int32_t *nv = realloc(v->v, cap * sizeof *nv);
        if (!nv)
            return -ENOMEM;
        v->v = nv;
        v->cap = cap;
    }
    v->v[v->n++] = x;
    return 0;
}

static int split_special(const tok_vocab *v, const char *text, size_t len, int flags, fvec *out)
{
    fvec cur = {0}, nxt = {0};
    int rc = fpush(&cur, 0, len, -1);
    for (uint32_t k = 0; k < v->n_special && !rc; k++) {
        int32_t id = v->special[k];
        if (flags & TOK_NO_ADDED)
            break;
        if (v->type[id] == TOK_CONTROL && !(flags & TOK_PARSE_SPECIAL))
            continue;
        const gguf_str *t = &v->text[id];
        nxt.n = 0;
        for (size_t i = 0; i < cur.n && !rc; i++) {
            frag f = cur.f[i];
            if (f.id >= 0 || f.len < t->len) {
                rc = fpush(&nxt, f.off, f.len, f.id);
                continue;
            }
            size_t pos = f.off, end = f.off + f.len;
            while (!rc && pos < end) {
                const char *hit = memmem(text + pos, end - pos, t->s, t->len);
                if (!hit) {
                    rc = fpush(&nxt, pos, end - pos, -1);
                    break;
                }
                size_t h = (size_t)(hit - text);
                if (h > pos)
                    rc = fpush(&nxt, pos, h - pos, -1);
                if (!rc)
                    rc = fpush(&nxt, h, t->len, id);
                pos = h + t->len;
            }
        }
        fvec tmp = cur;
        cur = nxt;
        nxt = tmp;
    }
    free(nxt.f);
    if (rc) {
        free(cur.f);
        return rc;
    }
    *out = cur;
    return 0;
}

/* Splits every fragment with regex re, keeping matches and gaps in order. */
static int split_regex(const pcre2_code *re, pcre2_match_data *md, const char *text, fvec *in,
                       fvec *out)
{
    out->n = 0;
    for (size_t i = 0; i < in->n; i++) {
        frag f = in->f[i];
        size_t pos = 0;
        while (pos < f.len) {
            int r = pcre2_match(re, (PCRE2_SPTR)(text + f.off), f.len, pos, 0, md, NULL);
            if (r < 0)
                break;
            PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
            size_t ms = ov[0], me = ov[1];
            if (ms > pos && fpush(out, f.off + pos, ms - pos, -1))
                return -ENOMEM;
            if (me == ms) { /* empty match: never from these patterns; step one char */
                me = ms + utf8_len((const unsigned char *)text + f.off + ms, f.len - ms);
                if (fpush(out, f.off + ms, me - ms, -1))
                    return -ENOMEM;
            } else if (fpush(out, f.off + ms, me - ms, -1)) {
                return -ENOMEM;
            }
            pos = me;
        }
        if (pos < f.len && fpush(out, f.off + pos, f.len - pos, -1))
            return -ENOMEM;
    }
    return 0;
}

/* BPE of one pre-token (raw bytes). */
static int bpe_word(const tok_vocab *v, const unsigned char *w, size_t n, ivec *out)
{
    /* Byte-encode: each byte becomes the UTF-8 of its mapped code point. */
    char stackbuf[1024];
    size_t cap = n * 2 + 1;
    char *enc = cap <= sizeof stackbuf ? stackbuf : malloc(cap);
    size_t *st = malloc((n + 1) * sizeof *st), *ln = malloc((n + 1) * sizeof *ln);
    char *key = malloc(cap + 1);
    if (!enc || !st || !ln || !key) {
        if (enc != stackbuf)
            free(enc);
        free(st);
        free(ln);
        free(key);
        return -ENOMEM;
    }
    size_t el = 0;
    /* Symbols start as single bytes, each spelled as its mapped character
     * (merges may then join parts of a multi-byte character). */
    size_t ns = 0;
    for (size_t i = 0; i < n; i++) {
        st[ns] = el;
        el += utf8_put(v->byte_cp[w[i]], enc + el);
        ln[ns] = el - st[ns];
        ns++;
    }
    for (;;) {
        int32_t best = -1;
        size_t bi = 0;
        for (size_t i = 0; i + 1 < ns; i++) {
            memcpy(key, enc + st[i], ln[i]);
            key[ln[i]] = ' ';
            memcpy(key + ln[i] + 1, enc + st[i + 1], ln[i + 1]);
            int32_t r = htab_get(&v->merges, key, ln[i] + 1 + ln[i + 1]);
            if (r >= 0 && (best < 0 || r < best)) {
                best = r;
                bi = i;
            }
        }
        if (best < 0)
            break;
        ln[bi] += ln[bi + 1];
        memmove(st + bi + 1, st + bi + 2, (ns - bi - 2) * sizeof *st);
        memmove(ln + bi + 1, ln + bi + 2, (ns - bi - 2) * sizeof *ln);
        ns--;
    }
    int rc = 0;
    for (size_t i = 0; i < ns && !rc; i++) {
        int32_t id = htab_get(&v->tokens, enc + st[i], ln[i]);
        if (id >= 0) {
            rc = ipush(out, id);
            continue;
        }
        /* Unknown symbol: one token per byte of it. */
        for (size_t k = 0; k < ln[i] && !rc;) {
            const unsigned char *c = (const unsigned char *)enc + st[i] + k;
            size_t cl = utf8_len(c, ln[i] - k);
            uint32_t cp = cl == 1 ? c[0] : cl == 2 ? ((c[0] & 0x1Fu) << 6) | (c[1] & 0x3Fu) : 0;
            int b = cp < 512 ? v->cp_byte[cp] : -1;
            if (b >= 0 && v->byte_tok[b] >= 0)
                rc = ipush(out, v->byte_tok[b]);
            k += cl;
        }
    }
    if (enc != stackbuf)
        free(enc);
    free(st);
    free(ln);
    free(key);
    return rc;
}

int tok_encode(const tok_vocab *v, const char *text, size_t len, int flags, int32_t **ids,
               size_t *n_ids)
{
    ivec out = {0};
    fvec parts = {0}, a = {0}, b = {0};
    pcre2_match_data *md = pcre2_match_data_create(4, NULL);
    int rc = md ? 0 : -ENOMEM;
    if (!rc && (flags & TOK_ADD_BOS) && v->bos >= 0)
        rc = ipush(&out, v->bos);
    if (!rc)
        rc = split_special(v, text, len, flags, &parts);
    for (size_t i = 0; i < parts.n && !rc; i++) {
        frag f = parts.f[i];
        if (f.id >= 0) {
            rc = ipush(&out, f.id);
            continue;
        }
        a.n = 0;
        rc = fpush(&a, f.off, f.len, -1);
        for (int r = 0; r < 3 && !rc; r++) {
            rc = split_regex(v->re[r], md, text, &a, &b);
            fvec t = a;
            a = b;
            b = t;
        }
        for (size_t k = 0; k < a.n && !rc; k++)
            rc = bpe_word(v, (const unsigned char *)text + a.f[k].off, a.f[k].len, &out);
    }
    pcre2_match_data_free(md);
    free(parts.f);
    free(a.f);
    free(b.f);
    if (rc) {
        free(out.v);
        return rc;
    }
    *ids = out.v ? out.v : malloc(sizeof(int32_t));
    *n_ids = out.n;
    return *ids ? 0 : -ENOMEM;
}

/* ---- decoding ---- */

size_t tok_piece(const tok_vocab *v, int32_t id, char *buf, size_t cap)
{
    if (id < 0 || (uint32_t)id >= v->n)
        return 0;
    const gguf_str *t = &v->text[id];
    int ty = v->type[id];
    if (ty == TOK_CONTROL || ty == TOK_USER_DEFINED || ty == TOK_UNKNOWN || ty == TOK_UNUSED) {
        if (cap)
            memcpy(buf, t->s, t->len < cap ? t->len : cap);
        return t->len;
    }
    size_t o = 0;
    const unsigned char *s = (const unsigned char *)t->s;
    for (size_t i = 0; i < t->len;) {
        size_t cl = utf8_len(s + i, t->len - i);
        uint32_t cp = s[i];
        if (cl == 2)
            cp = ((s[i] & 0x1Fu) << 6) | (s[i + 1] & 0x3Fu);
        int b = cl <= 2 && cp < 512 ? v->cp_byte[cp] : -1;
        if (b >= 0) {
            if (o < cap)
                buf[o] = (char)b;
            o++;
        } else { /* not a byte-map character: keep its UTF-8 */
            for (size_t k = 0; k < cl; k++, o++)
                if (o < cap)
                    buf[o] = (char)s[i + k];
        }
        i += cl;
    }
    return o;
}

/* ---- streaming UTF-8 ---- */

void tok_stream_init(tok_stream *s) { s->n_pend = 0; }

static size_t need_len(unsigned char c)
{
    return c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1;
}

size_t tok_stream_push(tok_stream *s, const tok_vocab *v, int32_t id, char *out, size_t cap)
{
    char piece[512];
    size_t n = tok_piece(v, id, piece, sizeof piece);
    if (n > sizeof piece)
        n = sizeof piece;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)piece[i];
        if (s->n_pend > 0 && (c & 0xC0) != 0x80) { /* broken sequence: emit as is */
            for (int k = 0; k < s->n_pend && o < cap; k++)
                out[o++] = (char)s->pend[k];
            s->n_pend = 0;
        }
        s->pend[s->n_pend++] = c;
        if ((size_t)s->n_pend >= need_len(s->pend[0])) {
            for (int k = 0; k < s->n_pend && o < cap; k++)
                out[o++] = (char)s->pend[k];
            s->n_pend = 0;
        }
    }
    return o;
}

size_t tok_stream_flush(tok_stream *s, char *out, size_t cap)
{
    size_t o = 0;
    for (int k = 0; k < s->n_pend && o < cap; k++)
        out[o++] = (char)s->pend[k];
    s->n_pend = 0;
    return o;
}

char *tok_utf8_sanitize(const char *s, size_t n)
{
    char *o = malloc(n * 3 + 1);
    if (!o)
        return NULL;
    size_t k = 0;
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        size_t l = utf8_len(u + i, n - i);
        bool ok = l > 1 || u[i] < 0x80;
        if (ok && l > 1) { /* reject overlong forms and surrogates */
            uint32_t cp = l == 2 ? (u[i] & 0x1Fu) : l == 3 ? (u[i] & 0x0Fu) : (u[i] & 0x07u);
            for (size_t j = 1; j < l; j++)
                cp = (cp << 6) | (u[i + j] & 0x3Fu);
            ok = !(l == 2 && cp < 0x80) && !(l == 3 && cp < 0x800) && !(l == 4 && cp < 0x10000) &&
                 !(cp >= 0xD800 && cp <= 0xDFFF) && cp <= 0x10FFFF;
        }
        if (ok) {
            memcpy(o + k, u + i, l);
            k += l;
            i += l;
        } else {
            /* one U+FFFD per maximal invalid subpart (a lead byte and the
             * continuation bytes that follow it), as Unicode recommends */
            size_t want = u[i] >= 0xF0 && u[i] <= 0xF4 ? 4 : u[i] >= 0xE0 && u[i] <= 0xEF ? 3
                        : u[i] >= 0xC2 && u[i] <= 0xDF ? 2 : 1;
            size_t j = 1;
            while (j < want && i + j < n && (u[i + j] & 0xC0) == 0x80)
                j++;
            memcpy(o + k, "\xEF\xBF\xBD", 3);
            k += 3;
            i += j;
        }
    }
    o[k] = 0;
    return o;
}
