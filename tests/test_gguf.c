/* test_gguf.c - the GGUF reader on the golden files, writer round trips of
 * every metadata type (nested arrays included) and of split sets (3 parts),
 * the writer's layout rules, and the legacy ->
 * split attention-form conversion (logits within 1e-3 sigma of the legacy
 * run; the reference agrees with itself to 3e-5 between the two forms). */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "forward.h"
#include "gguf.h"
#include "gguf_write.h"
#include "model.h"
#include "quant.h"
#include "golden.h"


static const char *tmp_dir(void)
{
    const char *d = getenv("MOESTREAM_TMP");
    return d && *d ? d : "/tmp";
}

static gguf_file *open_golden(const char *name)
{
    GOLDEN_REQUIRE();
    char path[1024], err[512];
    snprintf(path, sizeof path, "%s/models/%s", golden_dir(), name);
    gguf_file *g = NULL;
    if (gguf_open(&g, path, err, sizeof err))
        fail_msg("%s", err);
    return g;
}

static void test_golden_files(void **state)
{
    (void)state;
    GOLDEN_REQUIRE();
    gguf_file *g = open_golden("deepseek-r1-vocab.gguf");
    uint64_t n;
    const void *d;
    char err[256];
    assert_int_equal(gguf_get_arr(g, "tokenizer.ggml.tokens", GGUF_T_STRING, &n, &d, err, sizeof err), 0);
    assert_int_equal(n, 129280);
    assert_int_equal(gguf_get_arr(g, "tokenizer.ggml.merges", GGUF_T_STRING, &n, &d, err, sizeof err), 0);
    assert_int_equal(n, 127741);
    assert_int_equal(g->n_tensors, 0);
    gguf_close(g);

    const char *models[] = {"tiny-f32-legacy.gguf", "tiny-ud-iq1_s.gguf", "tiny-mix-mla.gguf",
                            "tiny-ud-iq1_s-nogroups.gguf"};
    for (int i = 0; i < 4; i++) {
        g = open_golden(models[i]);
        gguf_str arch;
        assert_int_equal(gguf_get_str(g, "general.architecture", &arch, err, sizeof err), 0);
        assert_string_equal(arch.s, "deepseek2");
        const gguf_tensor *t = gguf_find_tensor(g, "blk.1.ffn_gate_exps.weight");
        assert_non_null(t);
        assert_int_equal(t->ne[0], 256);
        assert_int_equal(t->ne[1], 256);
        assert_int_equal(t->ne[2], 16);
        assert_null(gguf_find_tensor(g, "no.such.tensor"));
        /* DEEPSEEK-FACTS 3.2 counts for 1 dense + 3 MoE blocks: 3 global,
         * 12 per dense block, 17 per MoE block (legacy); the split form has
         * attn_k_b + attn_v_b instead of attn_kv_b (+1 per block).  F32:
         * output_norm + 4 norms per block + router and bias per MoE block. */
        bool mla = strstr(models[i], "mla") != NULL;
        assert_int_equal(g->n_tensors, 3 + 12 + 3 * 17 + (mla ? 4 : 0));
        uint64_t nf32 = 0;
        for (uint64_t k = 0; k < g->n_tensors; k++)
            nf32 += g->tensors[k].type == MS_TYPE_F32;
        if (i != 0 && !mla)
            assert_int_equal(nf32, 1 + 4 * 4 + 3 * 2);
        t = gguf_find_tensor(g, mla ? "blk.0.attn_v_b.weight" : "blk.0.attn_kv_b.weight");
        assert_non_null(t);
        if (mla) { /* {kv_lora, v_head, n_head} */
            assert_int_equal(t->ne[0], 256);
            assert_int_equal(t->ne[1], 64);
            assert_int_equal(t->ne[2], 4);
        } else { /* {kv_lora, n_head * (nope + v_head)} */
            assert_int_equal(t->ne[0], 256);
            assert_int_equal(t->ne[1], 4 * (64 + 64));
        }
        t = gguf_find_tensor(g, "blk.3.exp_probs_b.bias");
        assert_non_null(t);
        assert_int_equal(t->type, MS_TYPE_F32);
        assert_int_equal(t->n_dims, 1);
        assert_int_equal(t->ne[0], 16);
        t = gguf_find_tensor(g, "token_embd.weight");
        assert_int_equal(t->ne[0], 256);
        assert_int_equal(t->ne[1], 4100);
        uint32_t u;
        assert_int_equal(gguf_get_u32(g, "deepseek2.block_count", &u, err, sizeof err), 0);
        assert_int_equal(u, 4);
        assert_int_equal(gguf_get_u32(g, "deepseek2.nope", &u, err, sizeof err), -ENOENT);
        /* wrong-type getter is an error with a message, not a crash */
        assert_int_equal(gguf_get_u32(g, "general.architecture", &u, err, sizeof err), -EBADMSG);
        assert_non_null(strstr(err, "general.architecture"));
        gguf_close(g);
    }
}

static void test_writer_roundtrip_types(void **state)
{
    (void)state;
    char path[1024], err[512];
    snprintf(path, sizeof path, "%s/rt-%d.gguf", tmp_dir(), (int)getpid());
    gguf_writer *w = gguf_writer_create();
    assert_int_equal(gguf_writer_set_u32(w, "a.u32", 4000000000u), 0);
    assert_int_equal(gguf_writer_set_i32(w, "a.i32", -7), 0);
    assert_int_equal(gguf_writer_set_f32(w, "a.f32", 1.5f), 0);
    assert_int_equal(gguf_writer_set_bool(w, "a.bool", true), 0);
    assert_int_equal(gguf_writer_set_str(w, "a.str", "héllo"), 0);
    gguf_value v8 = {.type = GGUF_T_INT8, .i = -5}, v16 = {.type = GGUF_T_UINT16, .u = 65535},
               v64 = {.type = GGUF_T_INT64, .i = -1234567890123ll},
               vd = {.type = GGUF_T_FLOAT64, .f = 0.1};
    assert_int_equal(gguf_writer_set(w, "a.i8", &v8), 0);
    assert_int_equal(gguf_writer_set(w, "a.u16", &v16), 0);
    assert_int_equal(gguf_writer_set(w, "a.i64", &v64), 0);
    assert_int_equal(gguf_writer_set(w, "a.f64", &vd), 0);
    int32_t arr[5] = {1, -2, 3, -4, 5};
    assert_int_equal(gguf_writer_set_arr(w, "a.arr", GGUF_T_INT32, 5, arr), 0);
    const char *strs[3] = {"x", "", "zz z"};
    assert_int_equal(gguf_writer_set_arr_str(w, "a.strs", 3, strs), 0);
    /* nested: array of two arrays of u8 */
    uint8_t in0[2] = {1, 2}, in1[3] = {3, 4, 5};
    gguf_value inner[2] = {{.type = GGUF_T_ARRAY, .arr = {GGUF_T_UINT8, 2, in0}},
                           {.type = GGUF_T_ARRAY, .arr = {GGUF_T_UINT8, 3, in1}}};
    gguf_value nested = {.type = GGUF_T_ARRAY, .arr = {GGUF_T_ARRAY, 2, inner}};
    assert_int_equal(gguf_writer_set(w, "a.nested", &nested), 0);
    float data[64];
    for (int i = 0; i < 64; i++)
        data[i] = (float)i * 0.5f;
    int64_t ne[2] = {32, 2};
    assert_int_equal(gguf_writer_add_tensor(w, "t.f32", MS_TYPE_F32, 2, ne, data, NULL, NULL), 0);
    assert_int_equal(gguf_writer_write(w, path, 0, NULL, err, sizeof err), 0);
    gguf_writer_free(w);

    gguf_file *g = NULL;
    if (gguf_open(&g, path, err, sizeof err))
        fail_msg("%s", err);
    uint32_t u;
    double f;
    bool b;
    gguf_str s;
    assert_int_equal(gguf_get_u32(g, "a.u32", &u, err, sizeof err), 0);
    assert_int_equal(u, 4000000000u);
    assert_int_equal(gguf_find(g, "a.i32")->i, -7);
    assert_int_equal(gguf_get_f64(g, "a.f32", &f, err, sizeof err), 0);
    assert_true(f == 1.5);
    assert_int_equal(gguf_get_bool(g, "a.bool", &b, err, sizeof err), 0);
    assert_true(b);
    assert_int_equal(gguf_get_str(g, "a.str", &s, err, sizeof err), 0);
    assert_string_equal(s.s, "héllo");
    assert_int_equal(gguf_find(g, "a.i8")->i, -5);
    assert_int_equal(gguf_find(g, "a.u16")->u, 65535);
    assert_int_equal(gguf_find(g, "a.i64")->i, -1234567890123ll);
    assert_true(gguf_find(g, "a.f64")->f == 0.1);
    const gguf_value *a = gguf_find(g, "a.arr");
    assert_int_equal(a->arr.n, 5);
    assert_memory_equal(a->arr.data, arr, sizeof arr);
    const gguf_value *ss = gguf_find(g, "a.strs");
    assert_int_equal(ss->arr.n, 3);
    assert_string_equal(((const gguf_str *)ss->arr.data)[2].s, "zz z");
    assert_int_equal(((const gguf_str *)ss->arr.data)[1].len, 0);
    const gguf_value *nv = gguf_find(g, "a.nested");
    assert_int_equal(nv->arr.type, GGUF_T_ARRAY);
    const gguf_value *in = nv->arr.data;
    assert_int_equal(in[1].arr.n, 3);
    assert_int_equal(((const uint8_t *)in[1].arr.data)[2], 5);
    const gguf_tensor *t = gguf_find_tensor(g, "t.f32");
    assert_non_null(t);
    float back[64];
    assert_int_equal(gguf_read(g, t->part, t->offset, back, sizeof back, err, sizeof err), 0);
    assert_memory_equal(back, data, sizeof data);
    gguf_close(g);
    unlink(path);
}

static void test_split_roundtrip(void **state)
{
    (void)state;
    char path[1024], first[4096], err[512];
    snprintf(path, sizeof path, "%s/split-%d.gguf", tmp_dir(), (int)getpid());
    gguf_file *src = open_golden("tiny-ud-iq1_s.gguf");
    gguf_writer *w = gguf_writer_create();
    assert_int_equal(gguf_writer_copy_kvs(w, src, NULL), 0);
    uint8_t **bufs = calloc(src->n_tensors, sizeof *bufs);
    for (uint64_t i = 0; i < src->n_tensors; i++) {
        const gguf_tensor *t = &src->tensors[i];
        bufs[i] = malloc(t->nbytes);
        assert_int_equal(gguf_read(src, t->part, t->offset, bufs[i], t->nbytes, err, sizeof err), 0);
        assert_int_equal(gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, t->ne, bufs[i], NULL, NULL), 0);
    }
    /* Part limit T/3 + the largest tensor: greedy filling then closes each
     * part past T/3 bytes, and the limit stays below T/2: exactly 3 parts. */
    uint64_t total = 0, big = 0;
    for (uint64_t i = 0; i < src->n_tensors; i++) {
        uint64_t sz = (src->tensors[i].nbytes + 31) / 32 * 32;
        total += sz;
        big = sz > big ? sz : big;
    }
    assert_true(total / 3 + big < total / 2);
    assert_int_equal(gguf_writer_write(w, path, total / 3 + big, first, err, sizeof err), 0);
    gguf_writer_free(w);
    gguf_file *g = NULL;
    if (gguf_open(&g, first, err, sizeof err))
        fail_msg("%s", err);
    assert_int_equal(g->n_parts, 3);
    assert_non_null(strstr(first, "-00001-of-00003.gguf"));
    /* split.* keys with the reference's types; full KV set in part 1 only */
    assert_int_equal(gguf_find(g, "split.no")->type, GGUF_T_UINT16);
    assert_int_equal(gguf_find(g, "split.count")->type, GGUF_T_UINT16);
    assert_int_equal(gguf_find(g, "split.count")->u, 3);
    assert_int_equal(gguf_find(g, "split.tensors.count")->type, GGUF_T_INT32);
    assert_int_equal(gguf_find(g, "split.tensors.count")->i, (int64_t)src->n_tensors);
    assert_int_equal(g->n_kv, src->n_kv + 3);
    for (uint32_t k = 1; k < 3; k++) {
        FILE *pf = fopen(g->parts[k].path, "rb");
        uint64_t hdr[3];
        assert_non_null(pf);
        assert_int_equal(fread(hdr, 8, 3, pf), 3);
        fclose(pf);
        assert_int_equal(hdr[2], 3); /* n_kv: split.no, split.count, split.tensors.count */
    }
    printf("MEASURE split round trip: %u parts, %llu tensors\n", g->n_parts,
           (unsigned long long)g->n_tensors);
    assert_int_equal(g->n_tensors, src->n_tensors);
    for (uint64_t i = 0; i < src->n_tensors; i++) {
        const gguf_tensor *t = gguf_find_tensor(g, src->tensors[i].name);
        assert_non_null(t);
        uint8_t *b = malloc(t->nbytes);
        assert_int_equal(gguf_read(g, t->part, t->offset, b, t->nbytes, err, sizeof err), 0);
        assert_memory_equal(b, bufs[i], t->nbytes);
        free(b);
    }
    /* the same model loads from the split set */
    model *m = NULL;
    assert_int_equal(model_load(&m, first, NULL, err, sizeof err), 0);
    model_free(m);
    /* opening a later part, or with a part missing, is a clear error */
    char p2[4200];
    snprintf(p2, sizeof p2, "%.*s00002%s", (int)(strstr(first, "00001") - first), first,
             strstr(first, "00001") + 5);
    gguf_file *bad = NULL;
    assert_int_not_equal(gguf_open(&bad, p2, err, sizeof err), 0);
    assert_non_null(strstr(err, "part"));
    char moved[4300];
    snprintf(moved, sizeof moved, "%s.moved", p2);
    assert_int_equal(rename(p2, moved), 0);
    assert_int_not_equal(gguf_open(&bad, first, err, sizeof err), 0);
    assert_non_null(strstr(err, "missing"));
    rename(moved, p2);
    for (uint32_t k = 0; k < g->n_parts; k++)
        unlink(g->parts[k].path);
    gguf_close(g);
    for (uint64_t i = 0; i < src->n_tensors; i++)
        free(bufs[i]);
    free(bufs);
    gguf_close(src);
}

/* Eval of a prompt on a model file; logits (n x V) returned, malloc'd. */
static float *eval_logits(const char *path, const int32_t *ids, int n, uint32_t *V)
{
    char err[512];
    model *m = NULL;
    if (model_load(&m, path, NULL, err, sizeof err))
        fail_msg("%s", err);
    fwd_opts fo;
    fwd_opts_default(&fo);
    fo.n_ctx = 128;
    fwd_state *st = NULL;
    assert_int_equal(fwd_create(&st, m, &fo, err, sizeof err), 0);
    *V = m->hp.n_vocab;
    float *lg = malloc((size_t)n * *V * sizeof *lg);
    if (fwd_eval(st, ids, n, lg, NULL, err, sizeof err))
        fail_msg("%s", err);
    fwd_destroy(st);
    model_free(m);
    return lg;
}

static void test_convert_to_split_form(void **state)
{
    (void)state;
    GOLDEN_REQUIRE();
    char err[512], out[1024], src_path[1024];
    snprintf(src_path, sizeof src_path, "%s/models/tiny-f32-legacy.gguf", golden_dir());
    snprintf(out, sizeof out, "%s/mla-%d.gguf", tmp_dir(), (int)getpid());
    gguf_file *src = open_golden("tiny-f32-legacy.gguf");
    model *m = NULL;
    assert_int_equal(model_load(&m, src_path, NULL, err, sizeof err), 0);
    const model_hparams *hp = &m->hp;
    const int64_t H = hp->n_head, N = hp->qk_nope, Vh = hp->v_head, L = hp->kv_lora;
    gguf_writer *w = gguf_writer_create();
    assert_int_equal(gguf_writer_copy_kvs(w, src, NULL), 0);
    assert_int_equal(gguf_writer_set_u32(w, "deepseek2.attention.key_length", (uint32_t)(L + hp->qk_rope)), 0);
    assert_int_equal(gguf_writer_set_u32(w, "deepseek2.attention.value_length", (uint32_t)L), 0);
    assert_int_equal(gguf_writer_set_u32(w, "deepseek2.attention.key_length_mla", (uint32_t)(N + hp->qk_rope)), 0);
    assert_int_equal(gguf_writer_set_u32(w, "deepseek2.attention.value_length_mla", (uint32_t)Vh), 0);
    assert_int_equal(gguf_writer_set_u32(w, "deepseek2.attention.head_count_kv", 1), 0);
    uint8_t **keep = calloc(src->n_tensors + 2 * hp->n_layer, sizeof *keep);
    size_t nk = 0;
    for (uint64_t i = 0; i < src->n_tensors; i++) {
        const gguf_tensor *t = &src->tensors[i];
        uint8_t *b = malloc(t->nbytes);
        assert_int_equal(gguf_read(src, t->part, t->offset, b, t->nbytes, err, sizeof err), 0);
        keep[nk++] = b;
        const char *kvb = strstr(t->name, "attn_kv_b.weight");
        if (!kvb) {
            assert_int_equal(gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, t->ne, b, NULL, NULL), 0);
            continue;
        }
        assert_int_equal(t->type, MS_TYPE_F32);
        const float *kv = (const float *)b;
        float *kb = malloc((size_t)(N * L * H) * 4), *vb = malloc((size_t)(L * Vh * H) * 4);
        for (int64_t h = 0; h < H; h++) {
            for (int64_t l = 0; l < L; l++)
                for (int64_t d = 0; d < N; d++)
                    kb[(h * L + l) * N + d] = kv[(h * (N + Vh) + d) * L + l];
            for (int64_t d = 0; d < Vh; d++)
                memcpy(vb + (h * Vh + d) * L, kv + (h * (N + Vh) + N + d) * L, (size_t)L * 4);
        }
        keep[nk++] = (uint8_t *)kb;
        keep[nk++] = (uint8_t *)vb;
        char nm[96];
        int blk = atoi(t->name + 4);
        int64_t nek[3] = {N, L, H}, nev[3] = {L, Vh, H};
        snprintf(nm, sizeof nm, "blk.%d.attn_k_b.weight", blk);
        assert_int_equal(gguf_writer_add_tensor(w, nm, MS_TYPE_F32, 3, nek, kb, NULL, NULL), 0);
        snprintf(nm, sizeof nm, "blk.%d.attn_v_b.weight", blk);
        assert_int_equal(gguf_writer_add_tensor(w, nm, MS_TYPE_F32, 3, nev, vb, NULL, NULL), 0);
    }
    assert_int_equal(gguf_writer_write(w, out, 0, NULL, err, sizeof err), 0);
    gguf_writer_free(w);
    model_free(m);

    int32_t ids[24];
    for (int i = 0; i < 24; i++)
        ids[i] = (int32_t)((i * 977 + 13) % 4096);
    ids[0] = 0;
    uint32_t V1, V2;
    float *a = eval_logits(src_path, ids, 24, &V1);
    float *b = eval_logits(out, ids, 24, &V2);
    assert_int_equal(V1, V2);
    size_t N2 = (size_t)24 * V1;
    double mean = 0, var = 0, maxd = 0;
    for (size_t i = 0; i < N2; i++)
        mean += a[i];
    mean /= (double)N2;
    for (size_t i = 0; i < N2; i++) {
        var += (a[i] - mean) * (a[i] - mean);
        double d = fabs((double)a[i] - b[i]);
        maxd = d > maxd ? d : maxd;
    }
    double sigma = sqrt(var / (double)N2);
    printf("MEASURE legacy vs converted split form: max|d|/sigma=%.3g\n", maxd / sigma);
    assert_true(maxd / sigma <= 1e-3);
    /* and the split form is what the model binding saw */
    gguf_file *g = NULL;
    assert_int_equal(gguf_open(&g, out, err, sizeof err), 0);
    assert_non_null(gguf_find_tensor(g, "blk.0.attn_k_b.weight"));
    assert_null(gguf_find_tensor(g, "blk.0.attn_kv_b.weight"));
    gguf_close(g);
    free(a);
    free(b);
    for (size_t i = 0; i < nk; i++)
        free(keep[i]);
    free(keep);
    gguf_close(src);
    unlink(out);
}


/* Every scalar type, arrays of every element type, arrays of arrays (of
 * strings, 3 deep), the on-disk encoding of a nested array, the depth cap,
 * and copying KVs with skipped and replaced keys. */
static void test_value_types(void **state)
{
    (void)state;
    char path[1024], path2[1024], err[512];
    snprintf(path, sizeof path, "%s/types-%d.gguf", tmp_dir(), (int)getpid());
    snprintf(path2, sizeof path2, "%s/types2-%d.gguf", tmp_dir(), (int)getpid());
    gguf_writer *w = gguf_writer_create();
    gguf_value sc[] = {
        {.type = GGUF_T_UINT8, .u = 250},         {.type = GGUF_T_INT8, .i = -128},
        {.type = GGUF_T_UINT16, .u = 60000},      {.type = GGUF_T_INT16, .i = -30000},
        {.type = GGUF_T_UINT32, .u = 4000000000u}, {.type = GGUF_T_INT32, .i = -2000000000},
        {.type = GGUF_T_FLOAT32, .f = -0.25},     {.type = GGUF_T_BOOL, .u = 1},
        {.type = GGUF_T_UINT64, .u = UINT64_MAX}, {.type = GGUF_T_INT64, .i = INT64_MIN},
        {.type = GGUF_T_FLOAT64, .f = 1e300},
    };
    int nsc = (int)(sizeof sc / sizeof sc[0]);
    char key[64];
    uint8_t raw[8 * 4];
    for (int i = 0; i < 32; i++)
        raw[i] = (uint8_t)(i * 37 + 1) & 0x7F; /* valid for every type incl. bool 0/1 below */
    for (int i = 0; i < nsc; i++) {
        snprintf(key, sizeof key, "s.%s", gguf_vtype_name(sc[i].type));
        assert_int_equal(gguf_writer_set(w, key, &sc[i]), 0);
        uint8_t el[32];
        memcpy(el, raw, sizeof el);
        if (sc[i].type == GGUF_T_BOOL)
            for (int k = 0; k < 32; k++)
                el[k] &= 1;
        snprintf(key, sizeof key, "a.%s", gguf_vtype_name(sc[i].type));
        size_t es = gguf_vtype_size(sc[i].type);
        assert_int_equal(gguf_writer_set_arr(w, key, sc[i].type, 32 / es, el), 0);
    }
    /* [[["a","bc"],[]],[["",  "d"]]] : arrays of arrays of arrays of strings */
    gguf_str s0[2] = {{"a", 1}, {"bc", 2}}, s1[2] = {{"", 0}, {"d", 1}};
    gguf_value l2a[2] = {{.type = GGUF_T_ARRAY, .arr = {GGUF_T_STRING, 2, s0}},
                         {.type = GGUF_T_ARRAY, .arr = {GGUF_T_STRING, 0, NULL}}};
    gguf_value l2b[1] = {{.type = GGUF_T_ARRAY, .arr = {GGUF_T_STRING, 2, s1}}};
    gguf_value l1[2] = {{.type = GGUF_T_ARRAY, .arr = {GGUF_T_ARRAY, 2, l2a}},
                        {.type = GGUF_T_ARRAY, .arr = {GGUF_T_ARRAY, 1, l2b}}};
    gguf_value top = {.type = GGUF_T_ARRAY, .arr = {GGUF_T_ARRAY, 2, l1}};
    assert_int_equal(gguf_writer_set(w, "n.deep", &top), 0);
    /* [[7]] as u16: its exact bytes are checked below */
    uint16_t seven = 7;
    gguf_value in7 = {.type = GGUF_T_ARRAY, .arr = {GGUF_T_UINT16, 1, &seven}};
    gguf_value out7 = {.type = GGUF_T_ARRAY, .arr = {GGUF_T_ARRAY, 1, &in7}};
    assert_int_equal(gguf_writer_set(w, "n.seven", &out7), 0);
    /* a non-array element inside an array of arrays is refused */
    gguf_value notarr = {.type = GGUF_T_UINT8, .u = 1};
    gguf_value badarr = {.type = GGUF_T_ARRAY, .arr = {GGUF_T_ARRAY, 1, &notarr}};
    assert_int_equal(gguf_writer_set(w, "n.bad", &badarr), -EINVAL);
    assert_int_equal(gguf_writer_write(w, path, 0, NULL, err, sizeof err), 0);
    gguf_writer_free(w);

    gguf_file *g = NULL;
    if (gguf_open(&g, path, err, sizeof err))
        fail_msg("%s", err);
    assert_null(gguf_find(g, "n.bad"));
    for (int i = 0; i < nsc; i++) {
        snprintf(key, sizeof key, "s.%s", gguf_vtype_name(sc[i].type));
        const gguf_value *v = gguf_find(g, key);
        assert_non_null(v);
        assert_int_equal(v->type, sc[i].type);
        if (sc[i].type == GGUF_T_FLOAT32 || sc[i].type == GGUF_T_FLOAT64)
            assert_true(v->f == sc[i].f);
        else
            assert_memory_equal(&v->u, &sc[i].u, 8);
        snprintf(key, sizeof key, "a.%s", gguf_vtype_name(sc[i].type));
        v = gguf_find(g, key);
        assert_non_null(v);
        assert_int_equal(v->arr.type, sc[i].type);
        assert_int_equal(v->arr.n, 32 / gguf_vtype_size(sc[i].type));
        if (sc[i].type != GGUF_T_BOOL)
            assert_memory_equal(v->arr.data, raw, 32);
    }
    const gguf_value *d = gguf_find(g, "n.deep");
    assert_int_equal(d->arr.type, GGUF_T_ARRAY);
    assert_int_equal(d->arr.n, 2);
    const gguf_value *e1 = d->arr.data;
    assert_int_equal(e1[0].arr.type, GGUF_T_ARRAY);
    const gguf_value *e2 = e1[0].arr.data;
    assert_int_equal(e2[0].arr.type, GGUF_T_STRING);
    assert_string_equal(((const gguf_str *)e2[0].arr.data)[1].s, "bc");
    assert_int_equal(e2[1].arr.n, 0);
    const gguf_value *e3 = e1[1].arr.data;
    assert_string_equal(((const gguf_str *)e3[0].arr.data)[1].s, "d");
    assert_int_equal(((const gguf_str *)e3[0].arr.data)[0].len, 0);

    /* Copy all KVs, skipping the "a." prefix and replacing one key. */
    gguf_writer *w2 = gguf_writer_create();
    assert_int_equal(gguf_writer_copy_kvs(w2, g, "a."), 0);
    assert_int_equal(gguf_writer_set_str(w2, "s.u8", "replaced"), 0);
    assert_int_equal(gguf_writer_write(w2, path2, 0, NULL, err, sizeof err), 0);
    gguf_writer_free(w2);
    gguf_file *g2 = NULL;
    if (gguf_open(&g2, path2, err, sizeof err))
        fail_msg("%s", err);
    assert_int_equal(g2->n_kv, (uint64_t)nsc + 2);
    assert_null(gguf_find(g2, "a.u8"));
    assert_string_equal(gguf_find(g2, "s.u8")->str.s, "replaced");
    assert_int_equal(gguf_find(g2, "s.i64")->i, INT64_MIN);
    assert_string_equal(((const gguf_str *)((const gguf_value *)((const gguf_value *)gguf_find(
                                               g2, "n.deep")->arr.data)[1].arr.data)[0].arr.data)[1].s,
                        "d");
    gguf_close(g2);
    gguf_close(g);

    /* The file holds "n.seven" as the GGUF spec lays out an array of
     * arrays: type ARRAY, elem type ARRAY, count 1, then the element
     * (elem type UINT16, count 1, value 7) with no type tag of its own. */
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *all = malloc((size_t)sz);
    assert_int_equal(fread(all, 1, (size_t)sz, f), (size_t)sz);
    fclose(f);
    uint8_t want[4 + 4 + 8 + 4 + 8 + 2] = {0};
    uint32_t t9 = GGUF_T_ARRAY, t2 = GGUF_T_UINT16;
    uint64_t one = 1;
    memcpy(want, &t9, 4);
    memcpy(want + 4, &t9, 4);
    memcpy(want + 8, &one, 8);
    memcpy(want + 16, &t2, 4);
    memcpy(want + 20, &one, 8);
    memcpy(want + 28, &seven, 2);
    uint8_t *hit = memmem(all, (size_t)sz, "n.seven", 7);
    assert_non_null(hit);
    assert_memory_equal(hit + 7, want, sizeof want);
    free(all);
    unlink(path);
    unlink(path2);

    /* Nesting depth: 8 array levels are accepted, 9 refused with a message. */
    for (int depth = 8; depth <= 9; depth++) {
        gguf_value lv[9];
        lv[0] = (gguf_value){.type = GGUF_T_ARRAY, .arr = {GGUF_T_UINT8, 1, raw}};
        for (int k = 1; k < depth; k++)
            lv[k] = (gguf_value){.type = GGUF_T_ARRAY, .arr = {GGUF_T_ARRAY, 1, &lv[k - 1]}};
        w = gguf_writer_create();
        assert_int_equal(gguf_writer_set(w, "n.depth", &lv[depth - 1]), 0);
        assert_int_equal(gguf_writer_write(w, path, 0, NULL, err, sizeof err), 0);
        gguf_writer_free(w);
        g = NULL;
        int rc = gguf_open(&g, path, err, sizeof err);
        if (depth == 8) {
            assert_int_equal(rc, 0);
        } else {
            assert_int_equal(rc, -EBADMSG);
            assert_non_null(strstr(err, path));
            assert_non_null(strstr(err, "n.depth"));
        }
        gguf_close(g);
        unlink(path);
    }
}

/* Writer layout as the reference requires it: tensors packed in info
 * order, each (the last included) padded to general.alignment, data blob
 * aligned; bad tensors refused at add time. */
static void test_writer_rules(void **state)
{
    (void)state;
    char path[1024], err[512];
    snprintf(path, sizeof path, "%s/rules-%d.gguf", tmp_dir(), (int)getpid());
    gguf_writer *w = gguf_writer_create();
    assert_int_equal(gguf_writer_set_u32(w, "general.alignment", 64), 0);
    float a[40], b[8];
    for (int i = 0; i < 40; i++)
        a[i] = (float)i;
    for (int i = 0; i < 8; i++)
        b[i] = -(float)i;
    int64_t na[2] = {10, 4}, nb[1] = {8};
    assert_int_equal(gguf_writer_add_tensor(w, "a", MS_TYPE_F32, 2, na, a, NULL, NULL), 0);
    assert_int_equal(gguf_writer_add_tensor(w, "b", MS_TYPE_F32, 1, nb, b, NULL, NULL), 0);
    /* duplicate, empty or 64-byte names, 5 dims, bad row length: refused */
    assert_int_equal(gguf_writer_add_tensor(w, "a", MS_TYPE_F32, 1, nb, b, NULL, NULL), -EEXIST);
    assert_int_equal(gguf_writer_add_tensor(w, "", MS_TYPE_F32, 1, nb, b, NULL, NULL), -EINVAL);
    char longname[65];
    memset(longname, 'x', 64);
    longname[64] = 0;
    assert_int_equal(gguf_writer_add_tensor(w, longname, MS_TYPE_F32, 1, nb, b, NULL, NULL), -EINVAL);
    int64_t n5[5] = {1, 1, 1, 1, 1};
    assert_int_equal(gguf_writer_add_tensor(w, "c", MS_TYPE_F32, 5, n5, b, NULL, NULL), -EINVAL);
    int64_t nq[1] = {100};
    assert_int_equal(gguf_writer_add_tensor(w, "d", MS_TYPE_Q4_K, 1, nq, b, NULL, NULL), -EINVAL);
    assert_int_equal(gguf_writer_write(w, path, 0, NULL, err, sizeof err), 0);
    gguf_writer_free(w);
    gguf_file *g = NULL;
    if (gguf_open(&g, path, err, sizeof err))
        fail_msg("%s", err);
    assert_int_equal(g->alignment, 64);
    const gguf_tensor *ta = gguf_find_tensor(g, "a"), *tb = gguf_find_tensor(g, "b");
    assert_int_equal(g->parts[0].data_off % 64, 0);
    assert_int_equal(ta->offset, g->parts[0].data_off);
    assert_int_equal(tb->offset, ta->offset + 192); /* 160 bytes padded to 64 */
    assert_int_equal(g->parts[0].size, tb->offset + 64); /* last tensor padded too */
    gguf_close(g);
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden_files),
        cmocka_unit_test(test_writer_roundtrip_types),
        cmocka_unit_test(test_split_roundtrip),
        cmocka_unit_test(test_convert_to_split_form),
        cmocka_unit_test(test_value_types),
        cmocka_unit_test(test_writer_rules),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
