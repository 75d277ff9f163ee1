/* test_tokenizer.c - the tokenizer against the reference engine's ids for
 * ../shared/golden/tokenizer/dev.json with the full R1 vocabulary, decoding
 * back to the exact bytes, added-token modes, and UTF-8 streaming. */
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "gguf.h"
#include "tokenizer.h"
#include "golden.h"

static gguf_file *g_file;
static tok_vocab *g_vocab;


static int setup(void **state)
{
    (void)state;
    char path[1024], err[512];
    if (!golden_present()) /* each test skips (or fails under CI) */
        return 0;
    snprintf(path, sizeof path, "%s/models/deepseek-r1-vocab.gguf", golden_dir());
    if (gguf_open(&g_file, path, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    if (tok_load(&g_vocab, g_file, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    tok_free(g_vocab);
    gguf_close(g_file);
    return 0;
}

static void test_dev_set(void **state)
{
    (void)state;
    GOLDEN_REQUIRE();
    char path[1024];
    snprintf(path, sizeof path, "%s/tokenizer/dev.json", golden_dir());
    json_error_t je;
    json_t *cases = json_load_file(path, JSON_ALLOW_NUL, &je);
    if (!cases)
        fail_msg("cannot read %s: %s", path, je.text);
    size_t n = json_array_size(cases), ok = 0, dec_ok = 0;
    assert_true(n >= 50);
    for (size_t i = 0; i < n; i++) {
        json_t *c = json_array_get(cases, i);
        json_t *jt = json_object_get(c, "text");
        const char *text = json_string_value(jt);
        size_t len = json_string_length(jt);
        json_t *jids = json_object_get(c, "ids");
        int32_t *ids;
        size_t nid;
        assert_int_equal(tok_encode(g_vocab, text, len, TOK_PARSE_SPECIAL, &ids, &nid), 0);
        bool same = nid == json_array_size(jids);
        for (size_t k = 0; same && k < nid; k++)
            same = ids[k] == json_integer_value(json_array_get(jids, k));
        if (same)
            ok++;
        else {
            printf("case %zu mismatch: text=%.60s\n  got :", i, text);
            for (size_t k = 0; k < nid && k < 40; k++)
                printf(" %d", ids[k]);
            printf("\n  want:");
            for (size_t k = 0; k < json_array_size(jids) && k < 40; k++)
                printf(" %lld", (long long)json_integer_value(json_array_get(jids, k)));
            printf("\n");
        }
        /* decode the golden ids back to the exact bytes */
        size_t cap = len * 4 + 64, o = 0;
        char *buf = malloc(cap);
        for (size_t k = 0; k < json_array_size(jids); k++) {
            int32_t id = (int32_t)json_integer_value(json_array_get(jids, k));
            size_t pl = tok_piece(g_vocab, id, buf + o, cap - o);
            o += pl;
        }
        if (o == len && !memcmp(buf, text, len))
            dec_ok++;
        else
            printf("case %zu: decode differs (%zu vs %zu bytes)\n", i, o, len);
        free(buf);
        free(ids);
    }
    printf("MEASURE tokenizer dev set: %zu/%zu exact ids, %zu/%zu exact decodes\n", ok, n, dec_ok, n);
    json_decref(cases);
    assert_int_equal(ok, n);
    assert_int_equal(dec_ok, n);
}

static void test_added_token_modes(void **state)
{
    (void)state;
    GOLDEN_REQUIRE();
    const char *t = "<｜User｜>hi<think>";
    int32_t *a, *b;
    size_t na, nb;
    assert_int_equal(tok_encode(g_vocab, t, strlen(t), 0, &a, &na), 0);
    assert_int_equal(tok_encode(g_vocab, t, strlen(t), TOK_NO_ADDED, &b, &nb), 0);
    int32_t user = tok_find(g_vocab, "<｜User｜>"), think = tok_find(g_vocab, "<think>");
    assert_true(user >= 0 && think >= 0);
    assert_int_equal(a[0], user);
    assert_int_equal(a[na - 1], think);
    /* with added-token matching off the role text is plain text */
    for (size_t k = 0; k < nb; k++)
        assert_true(b[k] != user && b[k] != think);
    assert_true(nb > na);
    free(a);
    free(b);
    /* CONTROL tokens only with TOK_PARSE_SPECIAL */
    const char *e = "<｜end▁of▁sentence｜>";
    assert_int_equal(tok_encode(g_vocab, e, strlen(e), 0, &a, &na), 0);
    assert_int_equal(tok_encode(g_vocab, e, strlen(e), TOK_PARSE_SPECIAL | TOK_ADD_BOS, &b, &nb), 0);
    assert_true(na > 1);
    assert_int_equal(nb, 2);
    assert_int_equal(b[0], tok_bos(g_vocab));
    assert_int_equal(b[1], tok_eos(g_vocab));
    free(a);
    free(b);
}

static void test_stream_split_chars(void **state)
{
    (void)state;
    GOLDEN_REQUIRE();
    /* A 4-byte emoji and a CJK char encoded as byte tokens arrive one byte
     * per token: nothing may be emitted until each character is complete. */
    const char *text = "a\xF0\x9F\x98\x80\xE4\xB8\xAD!";
    size_t len = strlen(text);
    tok_stream st;
    tok_stream_init(&st);
    char out[1024];
    size_t o = 0;
    size_t emitted_after[16];
    for (size_t i = 0; i < len; i++) {
        /* the byte token of text[i] */
        char one[2] = {text[i], 0};
        int32_t *ids;
        size_t n;
        assert_int_equal(tok_encode(g_vocab, one, 1, TOK_NO_ADDED, &ids, &n), 0);
        assert_int_equal(n, 1);
        o += tok_stream_push(&st, g_vocab, ids[0], out + o, sizeof out - o);
        emitted_after[i] = o;
        free(ids);
    }
    o += tok_stream_flush(&st, out + o, sizeof out - o);
    assert_int_equal(o, len);
    assert_memory_equal(out, text, len);
    assert_int_equal(emitted_after[1], 1); /* first emoji byte held back */
    assert_int_equal(emitted_after[3], 1);
    assert_int_equal(emitted_after[4], 5); /* emoji complete */
    assert_int_equal(emitted_after[6], 5);
    assert_int_equal(emitted_after[7], 8);
}

static void test_invalid_utf8_roundtrip(void **state)
{
    (void)state;
    GOLDEN_REQUIRE();
    const char text[] = "ok\xff\xfe\xc3(\x80" "end";
    size_t len = sizeof text - 1;
    int32_t *ids;
    size_t n;
    assert_int_equal(tok_encode(g_vocab, text, len, 0, &ids, &n), 0);
    char buf[256];
    size_t o = 0;
    for (size_t k = 0; k < n; k++)
        o += tok_piece(g_vocab, ids[k], buf + o, sizeof buf - o);
    assert_int_equal(o, len);
    assert_memory_equal(buf, text, len);
    free(ids);
}


/* Pieces of the pre-tokenizer for text, as "|"-joined strings. */
static void pieces_of(const char *text, char *out, size_t cap)
{
    size_t *ends, n, o = 0, prev = 0;
    assert_int_equal(tok_pretokenize(g_vocab, text, strlen(text), &ends, &n), 0);
    for (size_t i = 0; i < n; i++) {
        o += (size_t)snprintf(out + o, cap - o, "%s%.*s", i ? "|" : "", (int)(ends[i] - prev), text + prev);
        prev = ends[i];
    }
    free(ends);
}

/* Where the reference's collapsed-category regex differs from a true
 * Unicode regex (each expectation checked against an independent emulation
 * of the reference's algorithm). */
static void test_reference_regex_quirks(void **state)
{
    (void)state;
    GOLDEN_REQUIRE();
    static const struct { const char *text, *want; } cases[] = {
        /* '~' is in no category: it may prefix a letter run, and a run of
         * them is a gap (no alternative matches) */
        {"~é x", "~é| x"},
        {"a ~~~ b", "a| |~~~| b"},
        /* U+180E is not whitespace for the reference (PCRE2's \s says it is) */
        {"a\xE1\xA0\x8E b", "a|\xE1\xA0\x8E| b"},
        /* U+001C..U+001F are not \s (Python's isspace says they are) */
        {"a\x1c b", "a|\x1c| b"},
        /* non-ASCII White_Space joins whitespace runs like a space */
        {"x\xC2\xA0\xC2\xA0y", "x|\xC2\xA0|\xC2\xA0y"},
        /* digits of any script are \p{N}, in runs of up to three */
        {"\xD9\xA3\xD9\xA4\xD9\xA5\xD9\xA6", "\xD9\xA3\xD9\xA4\xD9\xA5|\xD9\xA6"},
        {"x\xC2\xB2\xC2\xB3", "x|\xC2\xB2\xC2\xB3"},
        /* combining marks continue a letter run; a lone mark starts one */
        {"e\xCC\x81t \xCC\x81", "e\xCC\x81t| \xCC\x81"},
        /* a Unicode 15.0 emoji (U+1FA77) is a symbol, as in the reference */
        {" \xF0\x9F\xA9\xB7!", " \xF0\x9F\xA9\xB7!"},
        /* kana and the CJK block are isolated before the general pattern */
        {"a\xE4\xB8\xAD\xE3\x81\x82" "b", "a|\xE4\xB8\xAD\xE3\x81\x82|b"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char got[256];
        pieces_of(cases[i].text, got, sizeof got);
        if (strcmp(got, cases[i].want))
            fail_msg("case %zu: pieces '%s', want '%s'", i, got, cases[i].want);
    }
}

/* Long runs: linear-time regexes and BPE (heap-ordered), no JIT stack
 * overflow, lossless. */
static void test_long_runs(void **state)
{
    (void)state;
    GOLDEN_REQUIRE();
    size_t n = 1 << 20;
    char *t = malloc(n + 1);
    assert_non_null(t);
    const char fill[3] = {' ', 'a', '\n'};
    for (int k = 0; k < 3; k++) {
        memset(t, fill[k], n);
        t[n] = 0;
        int32_t *ids;
        size_t ni;
        assert_int_equal(tok_encode(g_vocab, t, n, 0, &ids, &ni), 0);
        size_t o = 0;
        char buf[256];
        for (size_t i = 0; i < ni; i++) {
            size_t l = tok_piece(g_vocab, ids[i], buf, sizeof buf);
            assert_true(l <= sizeof buf);
            assert_memory_equal(buf, t + o, l);
            o += l;
        }
        assert_int_equal(o, n);
        free(ids);
    }
    free(t);
}

/* The no-added-token mode keeps every role and control text as plain text. */
static void test_no_added_never_matches(void **state)
{
    (void)state;
    GOLDEN_REQUIRE();
    const char *t = "<｜begin▁of▁sentence｜><｜User｜><｜Assistant｜><｜end▁of▁sentence｜><think></think>"
                    "<｜tool▁calls▁begin｜><｜fim▁hole｜>";
    int32_t *ids;
    size_t n;
    assert_int_equal(tok_encode(g_vocab, t, strlen(t), TOK_NO_ADDED | TOK_PARSE_SPECIAL, &ids, &n), 0);
    for (size_t i = 0; i < n; i++)
        if (tok_type(g_vocab, ids[i]) != TOK_NORMAL)
            fail_msg("id %d (type %d) at %zu is an added token", ids[i], tok_type(g_vocab, ids[i]), i);
    free(ids);
    /* without TOK_PARSE_SPECIAL the fim tokens stay text too: the reference
     * treats them as control tokens whatever their GGUF type */
    const char *f = "<｜fim▁hole｜>";
    assert_int_equal(tok_encode(g_vocab, f, strlen(f), 0, &ids, &n), 0);
    assert_true(n > 1);
    free(ids);
    assert_int_equal(tok_encode(g_vocab, f, strlen(f), TOK_PARSE_SPECIAL, &ids, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(ids[0], tok_find(g_vocab, f));
    free(ids);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dev_set),
        cmocka_unit_test(test_added_token_modes),
        cmocka_unit_test(test_stream_split_chars),
        cmocka_unit_test(test_invalid_utf8_roundtrip),
        cmocka_unit_test(test_reference_regex_quirks),
        cmocka_unit_test(test_long_runs),
        cmocka_unit_test(test_no_added_never_matches),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
