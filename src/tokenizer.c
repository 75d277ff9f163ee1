/* tokenizer.c - byte-level BPE with the deepseek-v3 pre-tokenizer, bit-exact
 * with the reference engine (llama.cpp's llama-vocab.cpp + unicode.cpp).
 *
 * Owns: the vocabulary (texts, types, text->id and merge-rank tables), the
 * per-code-point Unicode class table (built once per process from PCRE2's
 * own Unicode properties), encoding, decoding, UTF-8 streaming.
 * Does not own: chat formatting (chat.c), sampling (sampler.c).
 *
 * Encoding, in the reference's order:
 *  1. split the text at added tokens, longest text first (CONTROL and
 *     UNKNOWN only with TOK_PARSE_SPECIAL; USER_DEFINED always; none at all
 *     with TOK_NO_ADDED), like tokenizer_st_partition;
 *  2. pre-tokenize each remaining fragment with the three deepseek-v3
 *     regexes in sequence, each pass splitting every piece of the previous
 *     one and keeping both matches and the gaps between them;
 *  3. BPE each piece: its bytes mapped to GPT-2 byte characters, the
 *     adjacent pair of lowest merge rank merged first (leftmost on ties).
 *
 * Why the regexes do not run on the text itself: the reference does not run
 * a Unicode regex.  It maps every code point to one byte ("collapsed" text:
 * ASCII kept, non-ASCII whitespace -> 0x0B, other code points -> one byte per
 * general category: 0xD1 N, 0xD2 L, 0xD3 P, 0xD4 M, 0xD5 S, 0xD0 anything
 * else) and runs std::regex over those bytes with every \p{X} rewritten to
 * [<category byte><ASCII members of X>].  That differs from a true Unicode
 * regex in ways real text hits:
 *  - ASCII '~' is in no class: the ASCII list for \p{S} lacks it, so '~'
 *    may prefix a letter run ("~é" is one piece) and is never punctuation;
 *  - \s is C-locale isspace (\t\n\v\f\r and space) plus the collapsed
 *    whitespace byte, i.e. exactly Unicode White_Space: not U+180E (PCRE2's
 *    \s includes it), not U+001C..U+001F;
 *  - categories come from the reference's table (Unicode 15.1), not from
 *    whatever Unicode the regex library knows.
 * So we do the same: PCRE2 (8-bit, no UTF) runs the same rewritten patterns
 * over the same collapsed bytes, which reproduces the reference on every
 * input; the class of each code point comes from PCRE2's \p{..} tables plus
 * the characters Unicode 15.0/15.1 added (PCRE2 10.42 knows Unicode 14).
 * The CJK pass (no \p{}) runs, as in the reference, on the code points
 * themselves (UTF-8, PCRE2_UTF).
 *
 * Invalid UTF-8: the reference decodes each bad byte as U+FFFD and re-encodes
 * it, losing the input.  We classify each bad byte as U+FFFD for the split
 * (so piece boundaries are the reference's) but keep the original bytes, so
 * decoding the ids always gives back the input.
 *
 * Invariants: after tok_load the vocabulary and tables are read-only; every
 * id < n has a non-empty text. */
#include "tokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <errno.h>
#include <pcre2.h>
#include <pthread.h>
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
    uint64_t cap; /* power of two, at least twice the entries */
} htab;

static uint64_t fnv(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h ^ (h >> 29);
}

static int htab_init(htab *t, uint64_t n)
{
    t->cap = 16;
    while (t->cap < n * 2)
        t->cap *= 2;
    t->slots = calloc(t->cap, sizeof *t->slots);
    return t->slots ? 0 : -ENOMEM;
}

/* overwrite: a later value replaces an earlier one for the same key */
static void htab_put(htab *t, const char *s, size_t n, int32_t val, bool overwrite)
{
    uint64_t h = fnv(s, n) & (t->cap - 1);
    while (t->slots[h].s) {
        if (t->slots[h].len == n && !memcmp(t->slots[h].s, s, n)) {
            if (overwrite)
                t->slots[h].val = val;
            return;
        }
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

/* ---- Unicode classes of code points ---- */

/* The collapsed byte of each class (the reference's values). */
enum { UC_WS = 0x0B, UC_OTHER = 0xD0, UC_N = 0xD1, UC_L = 0xD2, UC_P = 0xD3, UC_M = 0xD4, UC_S = 0xD5 };
#define UC_NCP 0x110000u
#define UC_REPLACEMENT 0xFFFDu

static uint8_t g_ucls[UC_NCP]; /* code point -> collapsed byte; read-only once built */
static pthread_once_t g_ucls_once = PTHREAD_ONCE_INIT;
static int g_ucls_rc;

/* Characters Unicode 15.0 and 15.1 assigned, which PCRE2 10.42 (Unicode
 * 14) reports as unassigned and the reference's table (Unicode 15.1) has.
 * Generated by comparing PCRE2 10.42's \p{L,N,M,P,S,Z} with ICU 72 (Unicode
 * 15.0) over all code points, plus the 15.1 additions (U+2FFC..2FFF, U+31EF,
 * CJK Extension I).  Applied only where PCRE2 says "none of these", so a
 * newer PCRE2 makes it a no-op. */
static const struct { uint32_t lo, hi; uint8_t cls; } UC_DELTA[] = {
    {0x0CF3, 0x0CF3, UC_M},   {0x0ECE, 0x0ECE, UC_M},   {0x2FFC, 0x2FFF, UC_S},
    {0x31EF, 0x31EF, UC_S},   {0x10EFD, 0x10EFF, UC_M}, {0x1123F, 0x11240, UC_L},
    {0x11241, 0x11241, UC_M}, {0x11B00, 0x11B09, UC_P}, {0x11F00, 0x11F01, UC_M},
    {0x11F02, 0x11F02, UC_L}, {0x11F03, 0x11F03, UC_M}, {0x11F04, 0x11F10, UC_L},
    {0x11F12, 0x11F33, UC_L}, {0x11F34, 0x11F3A, UC_M}, {0x11F3E, 0x11F42, UC_M},
    {0x11F43, 0x11F4F, UC_P}, {0x11F50, 0x11F59, UC_N}, {0x1342F, 0x1342F, UC_L},
    {0x13440, 0x13440, UC_M}, {0x13441, 0x13446, UC_L}, {0x13447, 0x13455, UC_M},
    {0x1B132, 0x1B132, UC_L}, {0x1B155, 0x1B155, UC_L}, {0x1D2C0, 0x1D2D3, UC_N},
    {0x1DF25, 0x1DF2A, UC_L}, {0x1E030, 0x1E06D, UC_L}, {0x1E08F, 0x1E08F, UC_M},
    {0x1E4D0, 0x1E4EB, UC_L}, {0x1E4EC, 0x1E4EF, UC_M}, {0x1E4F0, 0x1E4F9, UC_N},
    {0x1F6DC, 0x1F6DC, UC_S}, {0x1F774, 0x1F776, UC_S}, {0x1F77B, 0x1F77F, UC_S},
    {0x1F7D9, 0x1F7D9, UC_S}, {0x1FA75, 0x1FA77, UC_S}, {0x1FA87, 0x1FA88, UC_S},
    {0x1FAAD, 0x1FAAF, UC_S}, {0x1FABB, 0x1FABD, UC_S}, {0x1FABF, 0x1FABF, UC_S},
    {0x1FACE, 0x1FACF, UC_S}, {0x1FADA, 0x1FADB, UC_S}, {0x1FAE8, 0x1FAE8, UC_S},
    {0x1FAF7, 0x1FAF8, UC_S}, {0x2B739, 0x2B739, UC_L}, {0x2EBF0, 0x2EE5D, UC_L},
    {0x31350, 0x323AF, UC_L},
};

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

/* Decodes the code point at s[0..n) as the reference does (unicode.cpp
 * unicode_cpt_from_utf8): lead byte and continuation bits checked, overlong
 * forms, surrogates and values up to 0x1FFFFF accepted; anything else is
 * one byte of U+FFFD.  Sets *len to the bytes consumed. */
static uint32_t ref_decode(const unsigned char *s, size_t n, size_t *len)
{
    unsigned char c = s[0];
    *len = 1;
    if (c < 0x80)
        return c;
    size_t need = (c & 0x40) == 0 ? 0 : (c & 0x20) == 0 ? 2 : (c & 0x10) == 0 ? 3 : (c & 0x08) == 0 ? 4 : 0;
    if (need == 0 || need > n)
        return UC_REPLACEMENT;
    uint32_t cp = c & (0x7Fu >> need);
    for (size_t i = 1; i < need; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return UC_REPLACEMENT;
        cp = (cp << 6) | (s[i] & 0x3Fu);
    }
    *len = need;
    return cp;
}

static void ucls_build(void)
{
    /* One UTF-8 string of every scalar value from U+0080 up, scanned once
     * with a JIT-compiled alternation of the categories: each match is a run
     * of one category, the group that matched says which. */
    static const char *pat = "(\\p{L}+)|(\\p{N}+)|(\\p{P}+)|(\\p{S}+)|(\\p{M}+)|(\\p{Z}+)";
    static const uint8_t group_cls[7] = {UC_OTHER, UC_L, UC_N, UC_P, UC_S, UC_M, UC_WS};
    size_t cap = (size_t)(UC_NCP - 0x80) * 4, n = 0;
    char *buf = malloc(cap);
    int ec;
    PCRE2_SIZE eo;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP, &ec,
                                   &eo, NULL);
    pcre2_match_data *md = re ? pcre2_match_data_create_from_pattern(re, NULL) : NULL;
    if (!buf || !md) {
        g_ucls_rc = -ENOMEM;
        goto out;
    }
    pcre2_jit_compile(re, PCRE2_JIT_COMPLETE); /* optional speed-up */
    for (uint32_t c = 0; c < 0x80; c++)
        g_ucls[c] = (uint8_t)c;
    for (uint32_t c = 0x80; c < UC_NCP; c++) {
        g_ucls[c] = UC_OTHER;
        if (c < 0xD800 || c > 0xDFFF)
            n += utf8_put(c, buf + n);
    }
    PCRE2_SIZE pos = 0;
    /* valid UTF-8 by construction; PCRE2's check of the whole 4 MB on every
     * call would take seconds (measured 7.5 s vs 0.03 s) */
    while (pos < n && pcre2_match(re, (PCRE2_SPTR)buf, n, pos, PCRE2_NO_UTF_CHECK, md, NULL) > 0) {
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        uint32_t cnt = pcre2_get_ovector_count(md), g = 1;
        while (g < cnt && ov[2 * g] == PCRE2_UNSET)
            g++;
        for (size_t i = ov[0]; i < ov[1];) {
            size_t l;
            uint32_t cp = ref_decode((const unsigned char *)buf + i, ov[1] - i, &l);
            g_ucls[cp] = g < 7 ? group_cls[g] : (uint8_t)UC_OTHER;
            i += l;
        }
        pos = ov[1] > pos ? ov[1] : pos + 1;
    }
    /* White_Space = \p{Z} (done above) + U+0085; it wins over the category */
    g_ucls[0x85] = UC_WS;
    for (size_t k = 0; k < sizeof UC_DELTA / sizeof UC_DELTA[0]; k++)
        for (uint32_t c = UC_DELTA[k].lo; c <= UC_DELTA[k].hi; c++)
            if (g_ucls[c] == UC_OTHER)
                g_ucls[c] = UC_DELTA[k].cls;
out:
    pcre2_match_data_free(md);
    pcre2_code_free(re);
    free(buf);
}

static uint8_t ucls(uint32_t cp) { return cp < UC_NCP ? g_ucls[cp] : UC_OTHER; }

/* ---- the pre-tokenizer patterns ---- */

/* deepseek-v3 (DEEPSEEK-FACTS 7.2), as the reference spells them. */
static const char *const PRE_DEEPSEEK3[3] = {
    "\\p{N}{1,3}",
    "[\\x{4E00}-\\x{9FA5}\\x{3040}-\\x{309F}\\x{30A0}-\\x{30FF}]+",
    "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\\r\\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+|"
    " ?[\\p{P}\\p{S}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
};

/* The ASCII members the reference gives each category in collapsed mode
 * (unicode.cpp k_ucat_map), in PCRE2 class syntax.  Note \p{S} without '~'. */
static const struct { const char *name; uint8_t cls; const char *ascii; } UCAT[] = {
    {"\\p{N}", UC_N, "0-9"},
    {"\\p{L}", UC_L, "A-Za-z"},
    {"\\p{P}", UC_P, "!-#%-*,-/:-;?-@\\[-\\]_\\{\\}"},
    {"\\p{M}", UC_M, ""},
    {"\\p{S}", UC_S, "\\$\\+<->^`\\|"},
    {"\\p{Lu}", UC_L, "A-Za-z"},
    {"\\p{Ll}", UC_L, "A-Za-z"},
    {"\\p{Lt}", UC_L, "A-Za-z"},
    {"\\p{Lm}", UC_L, "A-Za-z"},
    {"\\p{Lo}", UC_L, "A-Za-z"},
};

/* Rewrites pattern p for the collapsed text as the reference does: each
 * \p{X} becomes the class byte plus X's ASCII members, wrapped in [] when
 * outside a bracket expression.  Returns 1 if p uses \p{} (and so runs on
 * collapsed text), 0 if it runs on code points, -1 if out is too small. */
static int collapse_pattern(const char *p, char *out, size_t cap)
{
    size_t o = 0, n = strlen(p);
    bool inside = false, used = false;
    for (size_t i = 0; i < n; i++) {
        const char *add = NULL;
        char tmp[64];
        if (p[i] == '[' && (i == 0 || p[i - 1] != '\\')) {
            inside = true;
        } else if (inside && p[i] == ']' && p[i - 1] != '\\') {
            inside = false;
        } else if (p[i] == '\\' && p[i + 1] == 'p' && p[i + 2] == '{') {
            for (size_t k = 0; k < sizeof UCAT / sizeof UCAT[0]; k++) {
                size_t l = strlen(UCAT[k].name);
                if (!strncmp(p + i, UCAT[k].name, l)) {
                    snprintf(tmp, sizeof tmp, "%s\\x%02X%s%s", inside ? "" : "[", UCAT[k].cls,
                             UCAT[k].ascii, inside ? "" : "]");
                    add = tmp;
                    i += l - 1;
                    used = true;
                    break;
                }
            }
        }
        size_t al = add ? strlen(add) : 1;
        if (o + al + 1 > cap)
            return -1;
        memcpy(out + o, add ? add : p + i, al);
        o += al;
    }
    out[o] = 0;
    return used;
}

/* ---- the vocabulary ---- */

enum { ATTR_ADDED = 1, ATTR_CONTROL = 2 }; /* matched before BPE; only with TOK_PARSE_SPECIAL */

typedef struct pre_regex {
    pcre2_code *re;
    bool collapsed; /* runs on the collapsed bytes (else on UTF-8 code points) */
} pre_regex;

struct tok_vocab {
    uint32_t n;
    gguf_str *text;   /* each token's text, in arena (NUL-terminated) */
    char *arena;
    int8_t *type;     /* GGUF token type */
    uint8_t *attr;    /* ATTR_* */
    htab tokens;      /* text -> id (the last id for a duplicate text, as the reference) */
    htab merges;      /* "left right" -> rank (the first rank for a duplicate) */
    int32_t bos, eos, eot;
    bool add_bos;     /* tokenizer.ggml.add_bos_token (default true) */
    size_t max_piece; /* the most bytes one token stands for (tok_piece length) */
    int32_t *special; /* added tokens, longest text first */
    uint32_t n_special;
    pre_regex pre[3];
    uint32_t n_pre;
    uint16_t byte_cp[256]; /* GPT-2 byte -> code point */
    int16_t cp_byte[512];  /* code point -> byte, -1 if none */
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

static int cmp_special_len(const void *a, const void *b, void *ctx)
{
    const tok_vocab *v = ctx;
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    if (v->text[x].len != v->text[y].len)
        return v->text[x].len > v->text[y].len ? -1 : 1;
    return x < y ? -1 : x > y;
}

/* Texts the reference promotes to CONTROL whatever their GGUF type (its
 * EOT/EOG/FIM auto-detection, llama-vocab.cpp), limited to this family's. */
static const char *const FORCED_CONTROL[] = {
    "<｜end▁of▁sentence｜>", "<｜fim▁begin｜>", "<｜fim▁hole｜>", "<｜fim▁end｜>",
};

static int32_t opt_id(const gguf_file *g, const char *key, uint64_t n_tok)
{
    uint32_t id;
    char e[8];
    return gguf_get_u32(g, key, &id, e, sizeof e) == 0 && id < n_tok ? (int32_t)id : -1;
}

int tok_load(tok_vocab **out, const gguf_file *g, char *err, size_t errlen)
{
    *out = NULL;
    int rc = pthread_once(&g_ucls_once, ucls_build);
    if (rc || g_ucls_rc) {
        snprintf(err, errlen, "tokenizer: cannot build the Unicode class table (out of memory)");
        return -ENOMEM;
    }
    gguf_str model, pre;
    rc = gguf_get_str(g, "tokenizer.ggml.model", &model, err, errlen);
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
    if (rc == 0 && strcmp(pre.s, "deepseek-v3") != 0) {
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
    v->attr = calloc(n_tok, 1);
    v->special = malloc(n_tok * sizeof *v->special);
    size_t bytes = 0;
    const gguf_str *ts = toks, *ms = merges;
    for (uint64_t i = 0; i < n_tok; i++)
        bytes += (ts[i].len ? ts[i].len : 32) + 1; /* "[EMPTY_i]" for an empty text */
    for (uint64_t i = 0; i < n_merges; i++)
        bytes += ms[i].len + 1;
    v->arena = malloc(bytes ? bytes : 1);
    if (!v->text || !v->type || !v->attr || !v->special || !v->arena ||
        htab_init(&v->tokens, n_tok) || htab_init(&v->merges, n_merges)) {
        tok_free(v);
        return -ENOMEM;
    }
    char *p = v->arena;
    for (uint64_t i = 0; i < n_tok; i++) {
        size_t l = ts[i].len;
        if (l)
            memcpy(p, ts[i].s, l);
        else /* as the reference: an empty text is renamed, so it never matches */
            l = (size_t)snprintf(p, 32, "[EMPTY_%llu]", (unsigned long long)i);
        p[l] = 0;
        v->text[i] = (gguf_str){p, l};
        p += l + 1;
        int32_t ty = TOK_NORMAL;
        if (types)
            memcpy(&ty, (const char *)types + 4 * i, 4);
        v->type[i] = (int8_t)ty;
        if (ty == TOK_CONTROL || ty == TOK_UNKNOWN)
            v->attr[i] = ATTR_ADDED | ATTR_CONTROL;
        else if (ty == TOK_USER_DEFINED)
            v->attr[i] = ATTR_ADDED;
        htab_put(&v->tokens, v->text[i].s, v->text[i].len, (int32_t)i, true);
    }
    for (size_t k = 0; k < sizeof FORCED_CONTROL / sizeof FORCED_CONTROL[0]; k++) {
        int32_t id = htab_get(&v->tokens, FORCED_CONTROL[k], strlen(FORCED_CONTROL[k]));
        if (id >= 0)
            v->attr[id] |= ATTR_ADDED | ATTR_CONTROL;
    }
    for (uint64_t i = 0; i < n_merges; i++) {
        memcpy(p, ms[i].s, ms[i].len);
        p[ms[i].len] = 0;
        htab_put(&v->merges, p, ms[i].len, (int32_t)i, false);
        p += ms[i].len + 1;
    }
    v->bos = opt_id(g, "tokenizer.ggml.bos_token_id", n_tok);
    v->eos = opt_id(g, "tokenizer.ggml.eos_token_id", n_tok);
    v->eot = opt_id(g, "tokenizer.ggml.eot_token_id", n_tok);
    bool ab;
    char e2[8];
    v->add_bos = gguf_get_bool(g, "tokenizer.ggml.add_bos_token", &ab, e2, sizeof e2) == 0 ? ab : true;
    byte_map_init(v);
    for (uint32_t i = 0; i < v->n; i++) {
        size_t l = tok_piece(v, (int32_t)i, NULL, 0);
        if (l > v->max_piece)
            v->max_piece = l;
    }

    for (uint32_t i = 0; i < v->n; i++)
        if (v->attr[i] & ATTR_ADDED)
            v->special[v->n_special++] = (int32_t)i;
    qsort_r(v->special, v->n_special, sizeof *v->special, cmp_special_len, v);

    for (uint32_t r = 0; r < 3; r++) {
        char pat[1024];
        int col = collapse_pattern(PRE_DEEPSEEK3[r], pat, sizeof pat);
        int ec = 0;
        PCRE2_SIZE eo = 0;
        /* collapsed text is bytes (no UTF); code-point passes are UTF-8 */
        v->pre[r].collapsed = col == 1;
        v->pre[r].re = col < 0 ? NULL
                               : pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED,
                                               col == 1 ? 0 : PCRE2_UTF, &ec, &eo, NULL);
        if (!v->pre[r].re) {
            PCRE2_UCHAR msg[256] = "pattern too long";
            if (col >= 0)
                pcre2_get_error_message(ec, msg, sizeof msg);
            snprintf(err, errlen, "pre-tokenizer regex %u: %s at %zu", r, (char *)msg, (size_t)eo);
            tok_free(v);
            return -EINVAL;
        }
        pcre2_jit_compile(v->pre[r].re, PCRE2_JIT_COMPLETE); /* optional speed-up */
        v->n_pre++;
    }
    *out = v;
    return 0;
}

void tok_free(tok_vocab *v)
{
    if (!v)
        return;
    for (uint32_t r = 0; r < 3; r++)
        pcre2_code_free(v->pre[r].re);
    free(v->text);
    free(v->type);
    free(v->attr);
    free(v->arena);
    free(v->tokens.slots);
    free(v->merges.slots);
    free(v->special);
    free(v);
}

uint32_t tok_n_vocab(const tok_vocab *v) { return v->n; }
int32_t tok_bos(const tok_vocab *v) { return v->bos; }
int32_t tok_eos(const tok_vocab *v) { return v->eos; }
bool tok_add_bos(const tok_vocab *v) { return v->add_bos; }
size_t tok_max_piece(const tok_vocab *v) { return v->max_piece; }

int tok_check_fits(const tok_vocab *v, size_t len, size_t n_ctx, char *err, size_t errlen)
{
    /* every token stands for at most max_piece bytes of text (byte-level BPE
     * drops no byte), so longer text needs more than n_ctx tokens */
    const size_t most = v->max_piece ? v->max_piece : 1;
    if (n_ctx > SIZE_MAX / most || len <= n_ctx * most)
        return 0;
    snprintf(err, errlen, "text of %zu bytes cannot fit the context of %zu tokens (a token covers at "
                          "most %zu bytes); raise -c/--ctx-size or shorten the prompt",
             len, n_ctx, most);
    return -E2BIG;
}
int tok_type(const tok_vocab *v, int32_t id) { return id >= 0 && (uint32_t)id < v->n ? v->type[id] : 0; }

int32_t tok_find(const tok_vocab *v, const char *text)
{
    return htab_get(&v->tokens, text, strlen(text));
}

bool tok_is_eog(const tok_vocab *v, int32_t id)
{
    return id >= 0 && (id == v->eos || id == v->eot);
}

/* ---- encoding: added tokens ---- */

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

/* Splits text at added tokens (longest first; each token splits every
 * remaining raw fragment at all its occurrences). */
static int split_special(const tok_vocab *v, const char *text, size_t len, int flags, fvec *out)
{
    fvec cur = {0}, nxt = {0};
    int rc = fpush(&cur, 0, len, -1);
    for (uint32_t k = 0; k < v->n_special && !rc && !(flags & TOK_NO_ADDED); k++) {
        int32_t id = v->special[k];
        if ((v->attr[id] & ATTR_CONTROL) && !(flags & TOK_PARSE_SPECIAL))
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

/* ---- encoding: pre-tokenizer ---- */

typedef struct seg {
    uint32_t start, len; /* in code points */
} seg;

/* Per-fragment work space, sized for the longest fragment of one call. */
typedef struct scratch {
    size_t cap;       /* bytes of fragment this can hold */
    uint32_t *cp_off; /* (cap + 1) byte offset of each code point in the fragment */
    uint8_t *col;     /* (cap) collapsed byte of each code point */
    char *u8;         /* (3 * cap) code points as UTF-8 (bad bytes as U+FFFD) */
    uint32_t *u8_off; /* (cap + 1) offset of each code point in u8 */
    seg *sa, *sb;     /* (cap) pieces, ping-pong between passes */
    /* BPE of one piece */
    char *enc;        /* (2 * cap) piece in GPT-2 byte characters */
    struct sym { int32_t at, n, prev, next; } *sym; /* (cap) */
    struct bigram { int32_t rank, left, ln, rn; } *heap; /* (3 * cap) */
    char *key;        /* (2 * cap + 2) "left right" */
    pcre2_match_data *md;
} scratch;

static void scratch_free(scratch *s)
{
    free(s->cp_off);
    free(s->col);
    free(s->u8);
    free(s->u8_off);
    free(s->sa);
    free(s->sb);
    free(s->enc);
    free(s->sym);
    free(s->heap);
    free(s->key);
    pcre2_match_data_free(s->md);
}

static int scratch_init(scratch *s, size_t cap)
{
    memset(s, 0, sizeof *s);
    cap = cap ? cap : 1;
    s->cap = cap;
    s->cp_off = malloc((cap + 1) * sizeof *s->cp_off);
    s->col = malloc(cap);
    s->u8 = malloc(3 * cap);
    s->u8_off = malloc((cap + 1) * sizeof *s->u8_off);
    s->sa = malloc(cap * sizeof *s->sa);
    s->sb = malloc(cap * sizeof *s->sb);
    s->enc = malloc(2 * cap);
    s->sym = malloc(cap * sizeof *s->sym);
    s->heap = malloc(3 * cap * sizeof *s->heap);
    s->key = malloc(2 * cap + 2);
    s->md = pcre2_match_data_create(1, NULL);
    if (!s->cp_off || !s->col || !s->u8 || !s->u8_off || !s->sa || !s->sb || !s->enc || !s->sym ||
        !s->heap || !s->key || !s->md) {
        scratch_free(s);
        return -ENOMEM;
    }
    return 0;
}

/* Decodes a fragment into code points (offsets, collapsed bytes, UTF-8
 * copy); returns the number of code points. */
static uint32_t frag_decode(scratch *s, const unsigned char *t, size_t len)
{
    uint32_t n = 0;
    size_t u = 0;
    for (size_t i = 0; i < len;) {
        size_t l;
        uint32_t cp = ref_decode(t + i, len - i, &l);
        uint8_t c = ucls(cp);
        s->cp_off[n] = (uint32_t)i;
        s->col[n] = c;
        s->u8_off[n] = (uint32_t)u;
        /* as the reference's std::wregex input: non-ASCII whitespace as
         * 0x0B; what UTF-8 cannot carry (surrogates, > U+10FFFF) as U+FFFD */
        if (cp > 0x7F && c == UC_WS)
            cp = 0x0B;
        if ((cp >= 0xD800 && cp <= 0xDFFF) || cp >= UC_NCP)
            cp = UC_REPLACEMENT;
        u += utf8_put(cp, s->u8 + u);
        i += l;
        n++;
    }
    s->cp_off[n] = (uint32_t)len;
    s->u8_off[n] = (uint32_t)u;
    return n;
}

/* One pass: splits each piece of in[0..nin) with re into matches and the
 * gaps between them (out, returns the count).  Each piece is matched on its
 * own, so look-aheads stop at its end, as with the reference's
 * regex_iterator over [start, start + len). */
static uint32_t split_pass(const scratch *s, const pre_regex *pr, const seg *in, uint32_t nin, seg *out)
{
    uint32_t no = 0;
    for (uint32_t i = 0; i < nin; i++) {
        uint32_t st = in[i].start, len = in[i].len, pos = 0;
        const char *subj;
        size_t slen;
        if (pr->collapsed) {
            subj = (const char *)s->col + st;
            slen = len;
        } else {
            subj = s->u8 + s->u8_off[st];
            slen = s->u8_off[st + len] - s->u8_off[st];
        }
        uint32_t cpi = 0; /* code-point cursor for byte -> index (UTF-8 subject) */
        size_t bpos = 0;
        while (pos < len) {
            /* the UTF-8 copy is valid by construction: skip PCRE2's
             * per-call check, which would make many matches quadratic */
            if (pcre2_match(pr->re, (PCRE2_SPTR)subj, slen, bpos, pr->collapsed ? 0 : PCRE2_NO_UTF_CHECK,
                            s->md, NULL) <= 0)
                break;
            PCRE2_SIZE *ov = pcre2_get_ovector_pointer(s->md);
            uint32_t ms, me;
            if (pr->collapsed) {
                ms = (uint32_t)ov[0];
                me = (uint32_t)ov[1];
            } else {
                size_t base = s->u8_off[st];
                while (s->u8_off[st + cpi] - base < ov[0])
                    cpi++;
                ms = cpi;
                while (s->u8_off[st + cpi] - base < ov[1])
                    cpi++;
                me = cpi;
            }
            if (me == ms) /* these patterns cannot match empty; never loop */
                break;
            if (ms > pos)
                out[no++] = (seg){st + pos, ms - pos};
            out[no++] = (seg){st + ms, me - ms};
            pos = me;
            bpos = pr->collapsed ? me : ov[1];
        }
        if (pos < len)
            out[no++] = (seg){st + pos, len - pos};
    }
    return no;
}

/* ---- encoding: BPE ---- */

static bool bigram_less(const struct bigram *a, const struct bigram *b)
{
    return a->rank < b->rank || (a->rank == b->rank && a->left < b->left);
}

static void heap_push(struct bigram *h, uint32_t *n, struct bigram b)
{
    uint32_t i = (*n)++;
    while (i > 0) {
        uint32_t p = (i - 1) / 2;
        if (!bigram_less(&b, &h[p]))
            break;
        h[i] = h[p];
        i = p;
    }
    h[i] = b;
}

static struct bigram heap_pop(struct bigram *h, uint32_t *n)
{
    struct bigram top = h[0], last = h[--(*n)];
    uint32_t i = 0;
    for (;;) {
        uint32_t c = 2 * i + 1;
        if (c >= *n)
            break;
        if (c + 1 < *n && bigram_less(&h[c + 1], &h[c]))
            c++;
        if (!bigram_less(&h[c], &last))
            break;
        h[i] = h[c];
        i = c;
    }
    if (*n)
        h[i] = last;
    return top;
}

static void try_bigram(const tok_vocab *v, scratch *s, struct bigram *h, uint32_t *nh, int32_t l, int32_t r)
{
    if (l < 0 || r < 0)
        return;
    const struct sym *a = &s->sym[l], *b = &s->sym[r];
    memcpy(s->key, s->enc + a->at, (size_t)a->n);
    s->key[a->n] = ' ';
    memcpy(s->key + a->n + 1, s->enc + b->at, (size_t)b->n);
    int32_t rank = htab_get(&v->merges, s->key, (size_t)a->n + 1 + (size_t)b->n);
    if (rank >= 0)
        heap_push(h, nh, (struct bigram){rank, l, a->n, b->n});
}

/* BPE of one piece w[0..n): merges as the reference's priority queue does
 * (lowest rank first, leftmost on ties; stale pairs skipped). */
static int bpe_piece(const tok_vocab *v, scratch *s, const unsigned char *w, size_t n, ivec *out)
{
    int32_t ns = 0, el = 0;
    for (size_t i = 0; i < n; i++) {
        int32_t l = (int32_t)utf8_put(v->byte_cp[w[i]], s->enc + el);
        s->sym[ns] = (struct sym){el, l, ns - 1, i + 1 < n ? ns + 1 : -1};
        el += l;
        ns++;
    }
    uint32_t nh = 0;
    for (int32_t i = 1; i < ns; i++)
        try_bigram(v, s, s->heap, &nh, i - 1, i);
    while (nh) {
        struct bigram b = heap_pop(s->heap, &nh);
        struct sym *a = &s->sym[b.left];
        if (a->n != b.ln || a->next < 0)
            continue;
        struct sym *r = &s->sym[a->next];
        if (r->n != b.rn)
            continue; /* stale: one side changed since it was queued */
        a->n += r->n;
        r->n = 0;
        a->next = r->next;
        if (a->next >= 0)
            s->sym[a->next].prev = b.left;
        try_bigram(v, s, s->heap, &nh, a->prev, b.left);
        try_bigram(v, s, s->heap, &nh, b.left, a->next);
    }
    int rc = 0;
    for (int32_t i = 0; i >= 0 && i < ns && !rc; i = s->sym[i].next) {
        const struct sym *y = &s->sym[i];
        int32_t id = htab_get(&v->tokens, s->enc + y->at, (size_t)y->n);
        if (id >= 0) {
            rc = ipush(out, id);
            continue;
        }
        /* not a token: the reference looks up each byte of the symbol's
         * text as a one-byte token and drops the bytes that are none */
        for (int32_t k = 0; k < y->n && !rc; k++) {
            int32_t bt = htab_get(&v->tokens, s->enc + y->at + k, 1);
            if (bt >= 0)
                rc = ipush(out, bt);
        }
    }
    return rc;
}

int tok_pretokenize(const tok_vocab *v, const char *text, size_t len, size_t **ends, size_t *n)
{
    *ends = NULL;
    *n = 0;
    if (len > UINT32_MAX / 4)
        return -E2BIG;
    scratch s;
    int rc = scratch_init(&s, len);
    size_t *e = rc ? NULL : malloc((len ? len : 1) * sizeof *e);
    if (!e) {
        if (!rc)
            scratch_free(&s);
        return -ENOMEM;
    }
    uint32_t ncp = frag_decode(&s, (const unsigned char *)text, len), nseg = ncp ? 1 : 0;
    seg *a = s.sa, *b = s.sb;
    a[0] = (seg){0, ncp};
    for (uint32_t r = 0; r < v->n_pre && nseg; r++) {
        nseg = split_pass(&s, &v->pre[r], a, nseg, b);
        seg *tmp = a;
        a = b;
        b = tmp;
    }
    for (uint32_t k = 0; k < nseg; k++)
        e[k] = s.cp_off[a[k].start + a[k].len];
    *ends = e;
    *n = nseg;
    scratch_free(&s);
    return 0;
}

int tok_encode(const tok_vocab *v, const char *text, size_t len, int flags, int32_t **ids,
               size_t *n_ids)
{
    ivec out = {0};
    fvec parts = {0};
    scratch s;
    bool have_s = false;
    int rc = 0;
    *ids = NULL;
    *n_ids = 0;
    if (len > UINT32_MAX / 4)
        return -E2BIG;
    if ((flags & TOK_ADD_BOS) && v->bos >= 0)
        rc = ipush(&out, v->bos);
    if (!rc)
        rc = split_special(v, text, len, flags, &parts);
    size_t maxf = 0;
    for (size_t i = 0; i < parts.n && !rc; i++)
        if (parts.f[i].id < 0 && parts.f[i].len > maxf)
            maxf = parts.f[i].len;
    if (!rc && maxf) {
        rc = scratch_init(&s, maxf);
        have_s = rc == 0;
    }
    for (size_t i = 0; i < parts.n && !rc; i++) {
        frag f = parts.f[i];
        if (f.id >= 0) {
            rc = ipush(&out, f.id);
            continue;
        }
        if (f.len == 0)
            continue;
        const unsigned char *t = (const unsigned char *)text + f.off;
        uint32_t ncp = frag_decode(&s, t, f.len), nseg = 1;
        seg *a = s.sa, *b = s.sb;
        a[0] = (seg){0, ncp};
        for (uint32_t r = 0; r < v->n_pre; r++) {
            nseg = split_pass(&s, &v->pre[r], a, nseg, b);
            seg *tmp = a;
            a = b;
            b = tmp;
        }
        for (uint32_t k = 0; k < nseg && !rc; k++) {
            uint32_t b0 = s.cp_off[a[k].start], b1 = s.cp_off[a[k].start + a[k].len];
            rc = bpe_piece(v, &s, t + b0, b1 - b0, &out);
        }
    }
    if (have_s)
        scratch_free(&s);
    free(parts.f);
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
