/* test_gguf.c - the GGUF reader on the golden files, writer round trips of
 * every metadata type and of split sets, synthetic models, and the legacy ->
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
#include "synth.h"

static const char *golden_dir(void)
{
    const char *d = getenv("MOESTREAM_GOLDEN");
    return d && *d ? d : "../shared/golden";
}

static const char *tmp_dir(void)
{
    const char *d = getenv("MOESTREAM_TMP");
    return d && *d ? d : "/tmp";
}

static gguf_file *open_golden(const char *name)
{
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
    assert_int_equal(gguf_writer_write(w, path, 2u << 20, first, err, sizeof err), 0);
    gguf_writer_free(w);
    gguf_file *g = NULL;
    if (gguf_open(&g, first, err, sizeof err))
        fail_msg("%s", err);
    assert_true(g->n_parts >= 2);
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

static void test_synth_models(void **state)
{
    (void)state;
    char path[1024], err[512];
    snprintf(path, sizeof path, "%s/synth-%d.gguf", tmp_dir(), (int)getpid());
    synth_opts o;
    synth_opts_default(&o);
    o.tiny = 1;
    assert_int_equal(synth_write(path, &o, NULL, err, sizeof err), 0);
    model *m = NULL;
    if (model_load(&m, path, NULL, err, sizeof err))
        fail_msg("%s", err);
    assert_int_equal(m->hp.n_embd, 256);
    assert_int_equal(m->hp.n_expert, 16);
    fwd_opts fo;
    fwd_opts_default(&fo);
    fo.n_ctx = 64;
    fwd_state *st = NULL;
    assert_int_equal(fwd_create(&st, m, &fo, err, sizeof err), 0);
    int32_t ids[4] = {256, 10, 20, 30};
    float *lg = malloc(m->hp.n_vocab * sizeof *lg);
    assert_int_equal(fwd_eval(st, ids, 4, NULL, lg, err, sizeof err), 0);
    for (uint32_t i = 0; i < m->hp.n_vocab; i++)
        assert_true(isfinite(lg[i]));
    free(lg);
    fwd_destroy(st);
    model_free(m);
    unlink(path);

    /* Full width, one MoE layer, no dense layer: the real R1 shapes. */
    synth_opts_default(&o);
    o.dense_layers = 0;
    o.moe_layers = 1;
    assert_int_equal(synth_write(path, &o, NULL, err, sizeof err), 0);
    gguf_file *g = NULL;
    assert_int_equal(gguf_open(&g, path, err, sizeof err), 0);
    const gguf_tensor *t = gguf_find_tensor(g, "blk.0.ffn_gate_exps.weight");
    assert_non_null(t);
    assert_int_equal(t->type, MS_TYPE_IQ1_S);
    assert_int_equal(t->ne[0], 7168);
    assert_int_equal(t->ne[1], 2048);
    assert_int_equal(t->ne[2], 256);
    assert_int_equal(t->nbytes / 256, 2867200); /* DEEPSEEK-FACTS 3.3 */
    t = gguf_find_tensor(g, "blk.0.ffn_down_exps.weight");
    assert_int_equal(t->type, MS_TYPE_IQ2_XXS);
    assert_int_equal(t->nbytes, 968884224ull);
    t = gguf_find_tensor(g, "output.weight");
    assert_int_equal(t->nbytes, 760166400ull);
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
        cmocka_unit_test(test_synth_models),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
