/* test_gguf_corrupt.c - a directory of corrupted GGUF files made from a
 * golden model: every one must be refused with a negative errno and a
 * message naming the file, never a crash (this test also runs under ASan
 * and UBSan in `make asan`).  The same files through `moestream inspect`
 * and `eval` must exit 1 with a message (tests/corrupt_cli.sh). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "gguf.h"
#include "gguf_write.h"
#include "model.h"
#include "quant.h"
#include "golden.h"

static uint8_t *orig;
static size_t orig_len;
static char dir[512];


static int setup(void **state)
{
    (void)state;
    char path[1024];
    const char *t = getenv("MOESTREAM_TMP");
    snprintf(dir, sizeof dir, "%s/corrupt-gguf", t && *t ? t : "/tmp");
    mkdir(dir, 0755);
    if (!golden_present()) /* each test skips (or fails under CI); test_shared_layers runs */
        return 0;
    snprintf(path, sizeof path, "%s/models/tiny-ud-iq1_s.gguf", golden_dir());
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "golden model %s missing (set MOESTREAM_GOLDEN)\n", path);
        return -1;
    }
    fseek(f, 0, SEEK_END);
    orig_len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    orig = malloc(orig_len);
    if (fread(orig, 1, orig_len, f) != orig_len)
        return -1;
    fclose(f);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    free(orig);
    return 0;
}

static void write_file(const char *path, const uint8_t *b, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(b, 1, n, f), n);
    fclose(f);
}

/* Opens path expecting failure with a message that names the file. */
static void expect_refused(const char *path, const char *what)
{
    char err[1024] = "";
    gguf_file *g = NULL;
    int rc = gguf_open(&g, path, err, sizeof err);
    if (rc == 0) {
        /* the header may be intact (e.g. truncation inside the last
         * tensor's padding is harmless); then binding or reading must fail */
        model *m = NULL;
        gguf_close(g);
        rc = model_load(&m, path, NULL, err, sizeof err);
        model_free(m);
        if (rc == 0)
            fail_msg("%s: corrupted file was accepted", what);
    }
    assert_true(rc < 0);
    if (!strstr(err, path))
        fail_msg("%s: message does not name the file: %s", what, err);
}

/* Offsets of interesting fields in the golden header, found by parsing. */
static size_t kv_end, ti_start;

static void find_sections(void)
{
    char path[1024], err[256];
    snprintf(path, sizeof path, "%s/models/tiny-ud-iq1_s.gguf", golden_dir());
    gguf_file *g = NULL;
    assert_int_equal(gguf_open(&g, path, err, sizeof err), 0);
    /* tensor infos start where the first tensor's name is stored */
    const char *name = g->tensors[0].name;
    size_t nl = strlen(name);
    for (size_t i = 24; i + nl < orig_len; i++)
        if (!memcmp(orig + i, name, nl) && i >= 8) {
            uint64_t len;
            memcpy(&len, orig + i - 8, 8);
            if (len == nl) {
                ti_start = i - 8;
                break;
            }
        }
    kv_end = ti_start;
    gguf_close(g);
    assert_true(ti_start > 24);
}

/* Offset of the bytes of a length-prefixed string equal to name, or 0. */
static size_t find_name(const uint8_t *b, size_t n, const char *name)
{
    size_t nl = strlen(name);
    for (size_t i = 8; i + nl <= n; i++) {
        uint64_t len;
        memcpy(&len, b + i - 8, 8);
        if (len == nl && !memcmp(b + i, name, nl))
            return i;
    }
    return 0;
}

static void test_truncations(void **state)
{
    (void)state;
    GOLDEN_REQUIRE();
    find_sections();
    char path[1024];
    /* many cut points: inside the fixed header, the metadata, the tensor
     * infos, the padding and the data */
    size_t cuts[64];
    int n = 0;
    size_t fixed[] = {0, 3, 4, 7, 8, 15, 16, 23, 24, 30, 100, 1000};
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        cuts[n++] = fixed[i];
    for (int k = 1; k <= 10; k++)
        cuts[n++] = ti_start * (size_t)k / 11;
    for (int k = 0; k < 10; k++)
        cuts[n++] = ti_start + (size_t)k * 97;
    for (int k = 1; k <= 10; k++)
        cuts[n++] = orig_len - orig_len * (size_t)k / 23;
    cuts[n++] = orig_len - 1;
    for (int i = 0; i < n; i++) {
        snprintf(path, sizeof path, "%s/trunc-%08zu.gguf", dir, cuts[i]);
        write_file(path, orig, cuts[i]);
        expect_refused(path, "truncated");
    }
    printf("MEASURE corrupt: %d truncation points refused\n", n);
}

static void patch_and_check(const char *tag, size_t off, const void *bytes, size_t n)
{
    char path[1024];
    uint8_t *b = malloc(orig_len);
    memcpy(b, orig, orig_len);
    memcpy(b + off, bytes, n);
    snprintf(path, sizeof path, "%s/%s.gguf", dir, tag);
    write_file(path, b, orig_len);
    free(b);
    expect_refused(path, tag);
}

static void test_header_fields(void **state)
{
    (void)state;
    GOLDEN_REQUIRE();
    uint32_t v;
    uint64_t q;
    patch_and_check("bad-magic", 0, "GGUX", 4);
    v = 1;
    patch_and_check("version-1", 4, &v, 4);
    v = 4;
    patch_and_check("version-4", 4, &v, 4);
    v = 0x03000000;
    patch_and_check("byteswapped", 4, &v, 4);
    q = UINT64_MAX;
    patch_and_check("huge-tensor-count", 8, &q, 8);
    q = 1ull << 40;
    patch_and_check("huge-kv-count", 16, &q, 8);
    q = 1ull << 62;
    patch_and_check("huge-key-length", 24, &q, 8);
    /* first KV's value type -> 99 (unknown); key "general.architecture" */
    uint64_t klen;
    memcpy(&klen, orig + 24, 8);
    v = 99;
    patch_and_check("unknown-value-type", 24 + 8 + klen, &v, 4);
    /* first string value's length -> huge */
    q = 1ull << 50;
    patch_and_check("huge-string-value", 24 + 8 + klen + 4, &q, 8);
    /* the token list's element count -> huge (more than the file holds) */
    size_t tk = find_name(orig, orig_len, "tokenizer.ggml.tokens");
    assert_true(tk > 0);
    q = 1ull << 40;
    patch_and_check("huge-array-count", tk + strlen("tokenizer.ggml.tokens") + 4 + 4, &q, 8);
    /* its element type -> 13 (unknown) */
    v = 13;
    patch_and_check("unknown-array-type", tk + strlen("tokenizer.ggml.tokens") + 4, &v, 4);
    /* general.alignment is not set in the golden file: make the header
     * claim 3 tensors fewer than it holds (tensor infos parsed as data are
     * not reached; the tensor table no longer matches the model) */
    q = 63;
    patch_and_check("tensor-count-short", 8, &q, 8);
}

static void test_tensor_infos(void **state)
{
    (void)state;
    GOLDEN_REQUIRE();
    find_sections();
    uint64_t nl;
    memcpy(&nl, orig + ti_start, 8);
    size_t nd_off = ti_start + 8 + nl;
    uint32_t nd;
    memcpy(&nd, orig + nd_off, 4);
    size_t dims_off = nd_off + 4, type_off = dims_off + 8 * nd, off_off = type_off + 4;
    uint32_t v;
    uint64_t q;
    v = 5;
    patch_and_check("n-dims-5", nd_off, &v, 4);
    v = 0;
    patch_and_check("n-dims-0", nd_off, &v, 4);
    q = (uint64_t)1 << 63;
    patch_and_check("negative-dim", dims_off, &q, 8);
    q = (uint64_t)1 << 40;
    patch_and_check("overflowing-dims", dims_off, &q, 8);
    q = 100; /* not a multiple of the block size */
    patch_and_check("row-not-block-multiple", dims_off, &q, 8);
    v = 77;
    patch_and_check("unknown-type", type_off, &v, 4);
    v = 15; /* Q8_K: activation-only */
    patch_and_check("activation-type", type_off, &v, 4);
    q = 1ull << 50;
    patch_and_check("offset-out-of-range", off_off, &q, 8);
    q = 7;
    patch_and_check("misaligned-offset", off_off, &q, 8);
    /* second tensor's offset -> first tensor's: overlap */
    size_t t2 = off_off + 8;
    uint64_t nl2;
    memcpy(&nl2, orig + t2, 8);
    uint32_t nd2;
    memcpy(&nd2, orig + t2 + 8 + nl2, 4);
    size_t off2 = t2 + 8 + nl2 + 4 + 8 * nd2 + 4;
    uint64_t first_off;
    memcpy(&first_off, orig + off_off, 8);
    patch_and_check("overlapping-tensors", off2, &first_off, 8);
    /* blk.2.attn_norm.weight renamed to blk.1.attn_norm.weight (same
     * length): a duplicate tensor name */
    size_t at2 = find_name(orig, orig_len, "blk.2.attn_norm.weight");
    assert_true(at2 > 0);
    patch_and_check("duplicate-tensor-name", at2 + 4, "1", 1);
    /* a duplicate metadata key: a writer-made file whose second key is
     * then patched to equal the first */
    {
        gguf_writer *w = gguf_writer_create();
        assert_int_equal(gguf_writer_set_u32(w, "dup.key", 1), 0);
        assert_int_equal(gguf_writer_set_u32(w, "dup.kez", 2), 0);
        char path[1024], err[512];
        snprintf(path, sizeof path, "%s/duplicate-key.gguf", dir);
        assert_int_equal(gguf_writer_write(w, path, 0, NULL, err, sizeof err), 0);
        gguf_writer_free(w);
        FILE *f = fopen(path, "r+b");
        assert_non_null(f);
        uint8_t hb[256];
        size_t n = fread(hb, 1, sizeof hb, f);
        uint8_t *z = memmem(hb, n, "dup.kez", 7);
        assert_non_null(z);
        z[6] = 'y';
        fseek(f, 0, SEEK_SET);
        assert_int_equal(fwrite(hb, 1, n, f), n);
        fclose(f);
        gguf_file *g = NULL;
        assert_int_equal(gguf_open(&g, path, err, sizeof err), -EBADMSG);
        assert_non_null(strstr(err, path));
        assert_non_null(strstr(err, "duplicate"));
    }
}

static void test_wrong_arch_and_missing(void **state)
{
    (void)state;
    GOLDEN_REQUIRE();
    /* architecture value "deepseek2" -> "deepseekX" */
    uint64_t klen;
    memcpy(&klen, orig + 24, 8);
    size_t val = 24 + 8 + klen + 4 + 8;
    assert_memory_equal(orig + val, "deepseek2", 9);
    patch_and_check("wrong-arch", val, "llama0000", 9);
    /* a missing required tensor: rename blk.0.attn_norm.weight's info
     * (output.weight would be legal to miss: tied embeddings) */
    const char *req = "blk.0.attn_norm.weight";
    size_t rl = strlen(req), at = 0;
    for (size_t i = 8; i + rl < orig_len && !at; i++) {
        uint64_t len;
        memcpy(&len, orig + i - 8, 8);
        if (len == rl && !memcmp(orig + i, req, rl))
            at = i;
    }
    assert_true(at > 0);
    patch_and_check("missing-tensor", at, "X", 1);
}

/* A 3-part split set written from the golden model, then broken: a part
 * missing, a wrong split.no / split.count in a later part, a wrong
 * split.tensors.count, a later part opened first. */
static void write_split(char *first)
{
    char path[1024], err[512];
    snprintf(path, sizeof path, "%s/split.gguf", dir);
    gguf_file *src = NULL;
    char gp[1024];
    snprintf(gp, sizeof gp, "%s/models/tiny-ud-iq1_s.gguf", golden_dir());
    assert_int_equal(gguf_open(&src, gp, err, sizeof err), 0);
    gguf_writer *w = gguf_writer_create();
    assert_int_equal(gguf_writer_copy_kvs(w, src, NULL), 0);
    for (uint64_t i = 0; i < src->n_tensors; i++) {
        const gguf_tensor *t = &src->tensors[i];
        assert_int_equal(gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, t->ne,
                                                orig + t->offset, NULL, NULL), 0);
    }
    assert_int_equal(gguf_writer_write(w, path, orig_len * 2 / 5, first, err, sizeof err), 0);
    gguf_writer_free(w);
    gguf_close(src);
    gguf_file *g = NULL;
    if (gguf_open(&g, first, err, sizeof err))
        fail_msg("%s", err);
    assert_int_equal(g->n_parts, 3);
    gguf_close(g);
}

static void part_name(char *out, size_t n, const char *first, int k)
{
    const char *p = strstr(first, "-00001-of-");
    snprintf(out, n, "%.*s-%05d%s", (int)(p - first), first, k, p + 6);
}

static uint8_t *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc(*n);
    assert_int_equal(fread(b, 1, *n, f), *n);
    fclose(f);
    return b;
}

/* Patches the value of key (of scalar type) in file path; restores with
 * the returned original bytes. */
static void patch_key(const char *path, const char *key, const void *val, size_t vn, void *saved)
{
    size_t n;
    uint8_t *b = slurp(path, &n);
    size_t at = find_name(b, n, key);
    assert_true(at > 0);
    size_t v = at + strlen(key) + 4;
    if (saved)
        memcpy(saved, b + v, vn);
    memcpy(b + v, val, vn);
    write_file(path, b, n);
    free(b);
}

static void expect_split_error(const char *first, const char *names, const char *also)
{
    char err[1024] = "";
    gguf_file *g = NULL;
    int rc = gguf_open(&g, first, err, sizeof err);
    if (rc == 0) {
        gguf_close(g);
        fail_msg("split set %s with a broken %s was accepted", first, also ? also : names);
    }
    assert_null(g);
    assert_true(rc < 0);
    if (!strstr(err, names))
        fail_msg("message does not name %s: %s", names, err);
    if (also && !strstr(err, also))
        fail_msg("message lacks '%s': %s", also, err);
}

static void test_split_sets(void **state)
{
    (void)state;
    GOLDEN_REQUIRE();
    char first[4096], p2[4200], p3[4200], moved[4300];
    write_split(first);
    part_name(p2, sizeof p2, first, 2);
    part_name(p3, sizeof p3, first, 3);

    /* missing part: the message names the missing file */
    snprintf(moved, sizeof moved, "%s.away", p3);
    assert_int_equal(rename(p3, moved), 0);
    expect_split_error(first, p3, "missing");
    assert_int_equal(rename(moved, p3), 0);

    /* wrong split.no in part 2 (says 2, is 1) */
    uint16_t two = 2, three = 4, saved16;
    patch_key(p2, "split.no", &two, 2, &saved16);
    expect_split_error(first, p2, "split.no");
    patch_key(p2, "split.no", &saved16, 2, NULL);

    /* wrong split.count in part 3 */
    patch_key(p3, "split.count", &three, 2, &saved16);
    expect_split_error(first, p3, "split.count");
    patch_key(p3, "split.count", &saved16, 2, NULL);

    /* wrong split.tensors.count in part 1 */
    int32_t many = 67, saved32;
    patch_key(first, "split.tensors.count", &many, 4, &saved32);
    expect_split_error(first, first, "split.tensors.count");
    patch_key(first, "split.tensors.count", &saved32, 4, NULL);

    /* a later part opened as if it were the first */
    expect_split_error(p2, p2, "part");

    /* a name of part 1 repeated in part 3: blk.N.<x> in part 3 renamed to
     * blk.0.<x>, which part 1 holds (block 0 comes first) */
    {
        static const char *blk0[] = {"attn_norm.weight", "ffn_norm.weight", "attn_q_a.weight",
                                     "attn_kv_b.weight", "attn_output.weight"};
        size_t n3;
        uint8_t *b3 = slurp(p3, &n3);
        size_t at = 0;
        char nm[64];
        for (int blk = 3; blk >= 1 && !at; blk--)
            for (int k = 0; k < 5 && !at; k++) {
                snprintf(nm, sizeof nm, "blk.%d.%s", blk, blk0[k]);
                at = find_name(b3, n3, nm);
            }
        assert_true(at > 0);
        uint8_t saved = b3[at + 4];
        b3[at + 4] = '0';
        write_file(p3, b3, n3);
        expect_split_error(first, p3, "duplicate");
        b3[at + 4] = saved;
        write_file(p3, b3, n3);
        free(b3);
    }

    /* intact again: opens */
    char err[512];
    gguf_file *g = NULL;
    if (gguf_open(&g, first, err, sizeof err))
        fail_msg("%s", err);
    gguf_close(g);
    /* the directory keeps only corrupted files (corrupt_cli.sh runs them all) */
    unlink(first);
    unlink(p2);
    unlink(p3);
}

/* ---- shared expert layers (synth --expert-layers) ---- */

enum shared_variant {
    SV_OK,             /* the cyclic pattern, key K = 2 */
    SV_NO_KEY,         /* the same sharing without the key */
    SV_WRONG_SOURCE,   /* MoE layer 3 shares layer 0's gate instead of layer 1's */
    SV_NO_SHARING,     /* key present, every layer has its own bytes */
    SV_EXTRA_OVERLAP,  /* the pattern plus a non-expert tensor on a source's bytes */
    SV_MISSING_KIND,   /* the last MoE layer has no ffn_down_exps */
    SV_KEY_TOO_BIG,    /* key 6, but only 5 layers of experts */
    SV_KEY_STRING,     /* key of type string */
};

/* A small file shaped like a synthetic model: blk.0 dense (a norm), blk.1
 * .. blk.5 with gate/up/down expert tensors (F32 [32, 2, 4]). */
static void write_shared(const char *path, enum shared_variant v)
{
    static float data[6][3][32 * 2 * 4];
    for (int l = 0; l < 6; l++)
        for (int k = 0; k < 3; k++)
            for (int i = 0; i < 32 * 2 * 4; i++)
                data[l][k][i] = (float)(l * 1000 + k * 100 + i);
    static const char *const kind[3] = {"ffn_gate_exps", "ffn_up_exps", "ffn_down_exps"};
    const int64_t ne[3] = {32, 2, 4};
    const int K = 2;
    gguf_writer *w = gguf_writer_create();
    assert_non_null(w);
    if (v == SV_KEY_STRING)
        assert_int_equal(gguf_writer_set_str(w, "moestream.synthetic.shared_layers", "2"), 0);
    else if (v != SV_NO_KEY)
        assert_int_equal(gguf_writer_set_u32(w, "moestream.synthetic.shared_layers",
                                             v == SV_KEY_TOO_BIG ? 6 : K), 0);
    assert_int_equal(gguf_writer_add_tensor(w, "blk.0.attn_norm.weight", MS_TYPE_F32, 1, ne,
                                            data[0][0], NULL, NULL), 0);
    for (int j = 0; j < 5; j++)
        for (int k = 0; k < 3; k++) {
            char nm[64], src[64];
            snprintf(nm, sizeof nm, "blk.%d.%s.weight", 1 + j, kind[k]);
            if (v == SV_MISSING_KIND && j == 4 && k == 2)
                continue;
            if (j < K || v == SV_NO_SHARING) {
                assert_int_equal(gguf_writer_add_tensor(w, nm, MS_TYPE_F32, 3, ne, data[1 + j][k],
                                                        NULL, NULL), 0);
                continue;
            }
            int sj = j % K;
            if (v == SV_WRONG_SOURCE && j == 3 && k == 0)
                sj = 0;
            snprintf(src, sizeof src, "blk.%d.%s.weight", 1 + sj, kind[k]);
            assert_int_equal(gguf_writer_add_alias(w, nm, src), 0);
        }
    if (v == SV_EXTRA_OVERLAP)
        assert_int_equal(gguf_writer_add_alias(w, "blk.0.ffn_norm.weight", "blk.2.ffn_up_exps.weight"), 0);
    char err[512];
    if (gguf_writer_write(w, path, 0, NULL, err, sizeof err))
        fail_msg("%s", err);
    gguf_writer_free(w);
}

static void test_shared_layers(void **state)
{
    (void)state;
    char path[1024], err[1024];
    /* the declared pattern opens, and the sharing is what it says */
    snprintf(path, sizeof path, "%s/shared-ok.tmp", dir);
    write_shared(path, SV_OK);
    gguf_file *g = NULL;
    if (gguf_open(&g, path, err, sizeof err))
        fail_msg("%s", err);
    assert_int_equal(g->shared_layers, 2);
    const gguf_tensor *a = gguf_find_tensor(g, "blk.5.ffn_up_exps.weight"); /* j 4 -> 0 */
    const gguf_tensor *b = gguf_find_tensor(g, "blk.1.ffn_up_exps.weight");
    const gguf_tensor *c = gguf_find_tensor(g, "blk.2.ffn_up_exps.weight");
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(c);
    assert_true(a->offset == b->offset && a->nbytes == b->nbytes);
    assert_true(c->offset >= b->offset + b->nbytes); /* the sources stay apart */
    float x[4];
    assert_int_equal(gguf_read(g, a->part, a->offset, x, sizeof x, err, sizeof err), 0);
    assert_true(x[0] == 1100.0f && x[3] == 1103.0f); /* layer 1's up bytes */
    gguf_close(g);
    unlink(path); /* the directory keeps only refused files */

    /* sharing broken or undeclared: refused, naming the file */
    static const struct {
        enum shared_variant v;
        const char *tag, *why;
    } bad[] = {
        {SV_NO_KEY, "shared-no-key", "overlaps"},
        {SV_WRONG_SOURCE, "shared-wrong-source", "blk.4.ffn_gate_exps.weight"},
        {SV_NO_SHARING, "shared-no-sharing", "repeat cyclically"},
        {SV_EXTRA_OVERLAP, "shared-extra-overlap", "overlaps"},
        {SV_MISSING_KIND, "shared-missing-kind", "no blk.5.ffn_down_exps.weight"},
        {SV_KEY_TOO_BIG, "shared-key-too-big", "want 1..5"},
        {SV_KEY_STRING, "shared-key-string", "want an unsigned integer"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(path, sizeof path, "%s/%s.gguf", dir, bad[i].tag);
        write_shared(path, bad[i].v);
        g = NULL;
        err[0] = 0;
        int rc = gguf_open(&g, path, err, sizeof err);
        gguf_close(g);
        if (rc != -EBADMSG || !strstr(err, path) || !strstr(err, bad[i].why))
            fail_msg("%s: rc %d, want -EBADMSG with '%s': %s", bad[i].tag, rc, bad[i].why, err);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_truncations),
        cmocka_unit_test(test_header_fields),
        cmocka_unit_test(test_tensor_infos),
        cmocka_unit_test(test_wrong_arch_and_missing),
        cmocka_unit_test(test_split_sets),
        cmocka_unit_test(test_shared_layers),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
