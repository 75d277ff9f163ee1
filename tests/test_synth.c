/* test_synth.c - synthetic DeepSeek-shaped models: the tiny model (shapes,
 * types, vocabulary, a forward pass with finite logits of sane magnitude),
 * a full-width model with one MoE layer checked against the byte sizes of
 * DEEPSEEK-FACTS 3.3 and the keys of 2.1, every profile's type mix (4.2),
 * routing skew, split output, --vocab, determinism. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "forward.h"
#include "gguf.h"
#include "model.h"
#include "quant.h"
#include "synth.h"
#include "golden.h"


static const char *tmp_dir(void)
{
    const char *d = getenv("MOESTREAM_TMP");
    return d && *d ? d : "/tmp";
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static gguf_file *write_and_open(const char *path, const synth_opts *o)
{
    char err[512] = "", first[4096];
    if (synth_write(path, o, first, err, sizeof err))
        fail_msg("synth_write: %s", err);
    gguf_file *g = NULL;
    if (gguf_open(&g, first, err, sizeof err))
        fail_msg("%s", err);
    return g;
}

static const gguf_tensor *must_tensor(const gguf_file *g, const char *name)
{
    const gguf_tensor *t = gguf_find_tensor(g, name);
    if (!t)
        fail_msg("tensor %s missing", name);
    return t;
}

static void expect_tensor(const gguf_file *g, const char *name, uint32_t type, int64_t n0,
                          int64_t n1, int64_t n2, uint64_t nbytes)
{
    const gguf_tensor *t = must_tensor(g, name);
    if (t->type != type || t->ne[0] != n0 || t->ne[1] != n1 || t->ne[2] != n2 ||
        (nbytes && t->nbytes != nbytes))
        fail_msg("%s: got type %u ne [%lld, %lld, %lld] %llu bytes, want type %u ne [%lld, %lld, "
                 "%lld] %llu bytes",
                 name, t->type, (long long)t->ne[0], (long long)t->ne[1], (long long)t->ne[2],
                 (unsigned long long)t->nbytes, type, (long long)n0, (long long)n1, (long long)n2,
                 (unsigned long long)nbytes);
}

static uint32_t get_u32(const gguf_file *g, const char *key)
{
    uint32_t v = 0;
    char err[256];
    if (gguf_get_u32(g, key, &v, err, sizeof err))
        fail_msg("%s missing or not an integer", key);
    return v;
}

static const char *token(const gguf_file *g, uint32_t id)
{
    uint64_t n;
    const void *d;
    char err[256];
    assert_int_equal(gguf_get_arr(g, "tokenizer.ggml.tokens", GGUF_T_STRING, &n, &d, err, sizeof err), 0);
    assert_true(id < n);
    return ((const gguf_str *)d)[id].s;
}

/* Dequantizes `rows` rows of tensor t starting at row r0 into a malloc'd
 * buffer. */
static float *read_rows(const gguf_file *g, const gguf_tensor *t, int64_t r0, int64_t rows)
{
    const quant_type_info *ti = quant_info((int)t->type);
    size_t rb = (size_t)(t->ne[0] / ti->blck) * (size_t)ti->type_size;
    uint8_t *raw = malloc(rb * (size_t)rows);
    float *x = malloc(sizeof *x * (size_t)(t->ne[0] * rows));
    char err[512];
    assert_int_equal(gguf_read(g, t->part, t->offset + (uint64_t)r0 * rb, raw, rb * (size_t)rows,
                               err, sizeof err), 0);
    for (int64_t r = 0; r < rows; r++)
        assert_int_equal(quant_dequantize_row((int)t->type, raw + rb * (size_t)r,
                                              x + r * t->ne[0], t->ne[0]), 0);
    free(raw);
    return x;
}

static double rms(const float *x, int64_t n)
{
    double s = 0;
    for (int64_t i = 0; i < n; i++) {
        if (!isfinite(x[i]))
            fail_msg("non-finite weight at %lld", (long long)i);
        s += (double)x[i] * x[i];
    }
    return sqrt(s / (double)n);
}

static void test_tiny(void **state)
{
    (void)state;
    char path[1024], err[512];
    snprintf(path, sizeof path, "%s/synth-tiny-%d.gguf", tmp_dir(), (int)getpid());
    synth_opts o;
    synth_opts_default(&o);
    o.tiny = 1;
    double t0 = now_s();
    gguf_file *g = write_and_open(path, &o);
    double dt = now_s() - t0;
    printf("MEASURE synth --tiny: %.3f s, %llu bytes\n", dt, (unsigned long long)g->parts[0].size);
    assert_true(dt < 1.0);
    gguf_str s;
    assert_int_equal(gguf_get_str(g, "general.architecture", &s, err, sizeof err), 0);
    assert_string_equal(s.s, "deepseek2");
    assert_int_equal(get_u32(g, "deepseek2.block_count"), 4);
    assert_int_equal(get_u32(g, "deepseek2.leading_dense_block_count"), 1);
    assert_int_equal(get_u32(g, "deepseek2.expert_count"), 16);
    assert_int_equal(get_u32(g, "deepseek2.expert_used_count"), 4);
    assert_int_equal(get_u32(g, "deepseek2.expert_group_count"), 4);
    assert_int_equal(get_u32(g, "deepseek2.expert_group_used_count"), 2);
    assert_int_equal(g->n_tensors, 3 + 12 + 3 * 17);
    /* vocabulary: 256 byte tokens + 6 chat tokens */
    assert_int_equal(get_u32(g, "deepseek2.vocab_size"), 262);
    assert_int_equal(gguf_get_str(g, "tokenizer.ggml.model", &s, err, sizeof err), 0);
    assert_string_equal(s.s, "gpt2");
    assert_int_equal(gguf_get_str(g, "tokenizer.ggml.pre", &s, err, sizeof err), 0);
    assert_string_equal(s.s, "deepseek-v3");
    assert_string_equal(token(g, get_u32(g, "tokenizer.ggml.bos_token_id")), "<｜begin▁of▁sentence｜>");
    assert_string_equal(token(g, get_u32(g, "tokenizer.ggml.eos_token_id")), "<｜end▁of▁sentence｜>");
    assert_string_equal(token(g, 'A'), "A");
    assert_string_equal(token(g, ' '), "Ġ"); /* GPT-2 byte map: space -> U+0120 */
    const char *chat[] = {"<｜User｜>", "<｜Assistant｜>", "<think>", "</think>"};
    for (int k = 0; k < 4; k++) {
        int found = 0;
        for (uint32_t i = 256; i < 262; i++)
            found += !strcmp(token(g, i), chat[k]);
        assert_int_equal(found, 1);
    }
    uint64_t n;
    const void *d;
    assert_int_equal(gguf_get_arr(g, "tokenizer.ggml.token_type", GGUF_T_INT32, &n, &d, err, sizeof err), 0);
    assert_int_equal(n, 262);
    assert_int_equal(((const int32_t *)d)[65], 1);
    assert_int_equal(((const int32_t *)d)[256], 3);
    /* the UD-IQ1_S mix (DEEPSEEK-FACTS 4.2) at tiny widths */
    expect_tensor(g, "token_embd.weight", MS_TYPE_Q4_K, 256, 262, 1, 0);
    expect_tensor(g, "output.weight", MS_TYPE_Q6_K, 256, 262, 1, 0);
    expect_tensor(g, "blk.0.ffn_gate.weight", MS_TYPE_Q4_K, 256, 512, 1, 0);
    expect_tensor(g, "blk.0.ffn_down.weight", MS_TYPE_Q6_K, 512, 256, 1, 0);
    expect_tensor(g, "blk.0.attn_kv_b.weight", MS_TYPE_Q6_K, 256, 4 * 128, 1, 0);
    expect_tensor(g, "blk.1.ffn_gate_exps.weight", MS_TYPE_IQ1_S, 256, 256, 16, 0);
    expect_tensor(g, "blk.1.ffn_down_exps.weight", MS_TYPE_IQ2_XXS, 256, 256, 16, 0);
    expect_tensor(g, "blk.3.ffn_down_exps.weight", MS_TYPE_IQ1_S, 256, 256, 16, 0);
    expect_tensor(g, "blk.3.ffn_up_shexp.weight", MS_TYPE_Q5_K, 256, 256, 1, 0);
    expect_tensor(g, "blk.3.ffn_gate_inp.weight", MS_TYPE_F32, 256, 16, 1, 0);
    expect_tensor(g, "blk.3.exp_probs_b.bias", MS_TYPE_F32, 16, 1, 1, 0);
    /* weights: finite, RMS about 1/sqrt(fan_in), rows differ */
    float *x = read_rows(g, must_tensor(g, "blk.2.ffn_up_exps.weight"), 0, 2);
    double r = rms(x, 512);
    printf("MEASURE tiny expert weight rms %.4f (target %.4f)\n", r, 1 / sqrt(256.0));
    assert_true(r > 0.5 / 16 && r < 2.0 / 16);
    assert_memory_not_equal(x, x + 256, 256 * sizeof *x);
    free(x);
    gguf_close(g);

    /* a forward pass: finite logits of sane spread */
    model *m = NULL;
    if (model_load(&m, path, NULL, err, sizeof err))
        fail_msg("%s", err);
    fwd_opts fo;
    fwd_opts_default(&fo);
    fo.n_ctx = 64;
    fwd_state *st = NULL;
    assert_int_equal(fwd_create(&st, m, &fo, err, sizeof err), 0);
    int32_t ids[6] = {256, 72, 101, 108, 108, 111};
    float *lg = malloc(m->hp.n_vocab * sizeof *lg);
    assert_int_equal(fwd_eval(st, ids, 6, NULL, lg, err, sizeof err), 0);
    double sd = rms(lg, m->hp.n_vocab);
    printf("MEASURE tiny logits rms %.3f\n", sd);
    assert_true(sd > 1e-3 && sd < 1e3);
    free(lg);
    fwd_destroy(st);
    model_free(m);
    unlink(path);

    /* R1's depth (3 dense + 58 MoE blocks) at tiny width: the calibrated
     * magnitudes keep the logits finite and O(1) */
    o.dense_layers = 3;
    o.moe_layers = 58;
    gguf_close(write_and_open(path, &o));
    if (model_load(&m, path, NULL, err, sizeof err))
        fail_msg("%s", err);
    assert_int_equal(fwd_create(&st, m, &fo, err, sizeof err), 0);
    lg = malloc(m->hp.n_vocab * sizeof *lg);
    assert_int_equal(fwd_eval(st, ids, 6, NULL, lg, err, sizeof err), 0);
    sd = rms(lg, m->hp.n_vocab);
    printf("MEASURE tiny 61-block logits rms %.3f\n", sd);
    assert_true(sd > 1e-3 && sd < 1e3);
    free(lg);
    fwd_destroy(st);
    model_free(m);
    unlink(path);
}

/* One MoE layer at full width: the real R1 tensor sizes. */
static void test_full_width(void **state)
{
    (void)state;
    char path[1024], err[512];
    snprintf(path, sizeof path, "%s/synth-full-%d.gguf", tmp_dir(), (int)getpid());
    synth_opts o;
    synth_opts_default(&o);
    o.dense_layers = 0;
    o.moe_layers = 1;
    double t0 = now_s();
    gguf_file *g = write_and_open(path, &o);
    double dt = now_s() - t0;
    printf("MEASURE synth full width, 1 MoE layer: %.2f GB in %.2f s = %.2f GB/s\n",
           (double)g->parts[0].size * 1e-9, dt, (double)g->parts[0].size * 1e-9 / dt);
    /* DEEPSEEK-FACTS 3.3 */
    expect_tensor(g, "blk.0.ffn_gate_exps.weight", MS_TYPE_IQ1_S, 7168, 2048, 256, 734003200ull);
    expect_tensor(g, "blk.0.ffn_up_exps.weight", MS_TYPE_IQ1_S, 7168, 2048, 256, 734003200ull);
    assert_int_equal(must_tensor(g, "blk.0.ffn_gate_exps.weight")->nbytes / 256, 2867200);
    /* the first MoE layer of UD-IQ1_S has IQ2_XXS down projections */
    expect_tensor(g, "blk.0.ffn_down_exps.weight", MS_TYPE_IQ2_XXS, 2048, 7168, 256, 968884224ull);
    expect_tensor(g, "token_embd.weight", MS_TYPE_Q4_K, 7168, 129280, 1, 521256960ull);
    expect_tensor(g, "output.weight", MS_TYPE_Q6_K, 7168, 129280, 1, 760166400ull);
    expect_tensor(g, "blk.0.attn_q_a.weight", MS_TYPE_Q4_K, 7168, 1536, 1, 6193152ull);
    expect_tensor(g, "blk.0.attn_q_b.weight", MS_TYPE_Q4_K, 1536, 24576, 1, 21233664ull);
    expect_tensor(g, "blk.0.attn_kv_a_mqa.weight", MS_TYPE_Q6_K, 7168, 576, 1, 3386880ull);
    expect_tensor(g, "blk.0.attn_kv_b.weight", MS_TYPE_Q6_K, 512, 32768, 1, 13762560ull);
    expect_tensor(g, "blk.0.attn_output.weight", MS_TYPE_Q4_K, 16384, 7168, 1, 66060288ull);
    expect_tensor(g, "blk.0.ffn_gate_shexp.weight", MS_TYPE_Q5_K, 7168, 2048, 1, 10092544ull);
    expect_tensor(g, "blk.0.ffn_down_shexp.weight", MS_TYPE_Q6_K, 2048, 7168, 1, 12042240ull);
    expect_tensor(g, "blk.0.ffn_gate_inp.weight", MS_TYPE_F32, 7168, 256, 1, 7340032ull);
    expect_tensor(g, "blk.0.exp_probs_b.bias", MS_TYPE_F32, 256, 1, 1, 1024);
    assert_int_equal(g->n_tensors, 3 + 17);
    /* DEEPSEEK-FACTS 2.1 keys and values */
    assert_int_equal(get_u32(g, "deepseek2.context_length"), 163840);
    assert_int_equal(get_u32(g, "deepseek2.embedding_length"), 7168);
    assert_int_equal(get_u32(g, "deepseek2.feed_forward_length"), 18432);
    assert_int_equal(get_u32(g, "deepseek2.attention.head_count"), 128);
    assert_int_equal(get_u32(g, "deepseek2.attention.head_count_kv"), 128);
    assert_int_equal(get_u32(g, "deepseek2.vocab_size"), 129280);
    assert_int_equal(get_u32(g, "deepseek2.attention.q_lora_rank"), 1536);
    assert_int_equal(get_u32(g, "deepseek2.attention.kv_lora_rank"), 512);
    assert_int_equal(get_u32(g, "deepseek2.attention.key_length"), 192);
    assert_int_equal(get_u32(g, "deepseek2.attention.value_length"), 128);
    assert_int_equal(get_u32(g, "deepseek2.expert_feed_forward_length"), 2048);
    assert_int_equal(get_u32(g, "deepseek2.expert_count"), 256);
    assert_int_equal(get_u32(g, "deepseek2.expert_used_count"), 8);
    assert_int_equal(get_u32(g, "deepseek2.expert_shared_count"), 1);
    assert_int_equal(get_u32(g, "deepseek2.expert_gating_func"), 2);
    assert_int_equal(get_u32(g, "deepseek2.rope.dimension_count"), 64);
    assert_int_equal(get_u32(g, "deepseek2.rope.scaling.original_context_length"), 4096);
    assert_int_equal(get_u32(g, "general.file_type"), 24);
    assert_null(gguf_find(g, "deepseek2.expert_group_count")); /* absent in the R1 files */
    double f;
    assert_int_equal(gguf_get_f64(g, "deepseek2.expert_weights_scale", &f, err, sizeof err), 0);
    assert_true(f == 2.5);
    assert_int_equal(gguf_get_f64(g, "deepseek2.rope.scaling.factor", &f, err, sizeof err), 0);
    assert_true(f == 40);
    assert_int_equal(gguf_get_f64(g, "deepseek2.rope.scaling.yarn_log_multiplier", &f, err, sizeof err), 0);
    assert_true(fabs(f - 0.1) < 1e-7);
    /* R1 ids of the special tokens (DEEPSEEK-FACTS 7.3) */
    assert_int_equal(get_u32(g, "tokenizer.ggml.bos_token_id"), 0);
    assert_int_equal(get_u32(g, "tokenizer.ggml.eos_token_id"), 1);
    assert_int_equal(get_u32(g, "tokenizer.ggml.padding_token_id"), 128815);
    assert_string_equal(token(g, 128798), "<think>");
    assert_string_equal(token(g, 128799), "</think>");
    assert_string_equal(token(g, 128803), "<｜User｜>");
    assert_string_equal(token(g, 128804), "<｜Assistant｜>");
    /* expert weights from the reused pattern: valid, RMS ~ 1/sqrt(7168),
     * rows and experts differ */
    const gguf_tensor *t = must_tensor(g, "blk.0.ffn_gate_exps.weight");
    float *a = read_rows(g, t, 0, 2), *z = read_rows(g, t, 255 * 2048, 1);
    double r = rms(a, 2 * 7168);
    printf("MEASURE full expert weight rms %.5f (target %.5f)\n", r, 1 / sqrt(7168.0));
    assert_true(r > 0.5 / sqrt(7168.0) && r < 2.0 / sqrt(7168.0));
    assert_memory_not_equal(a, a + 7168, 7168 * sizeof *a);
    assert_memory_not_equal(a, z, 7168 * sizeof *a);
    free(a);
    free(z);
    gguf_close(g);
    unlink(path);
}

/* Each profile's routed-expert and shared-expert types (DEEPSEEK-FACTS
 * 4.2), checked at tiny widths with 58 MoE layers so the count of wider
 * down projections is R1's. */
static void test_profiles(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        uint32_t gu, down, down_first, sh_gu, file_type;
        int n_first;
    } want[] = {
        {"ud-iq1_s", MS_TYPE_IQ1_S, MS_TYPE_IQ1_S, MS_TYPE_IQ2_XXS, MS_TYPE_Q5_K, 24, 6},
        {"ud-iq1_m", MS_TYPE_IQ1_M, MS_TYPE_IQ2_XXS, MS_TYPE_IQ2_XXS, MS_TYPE_Q5_K, 31, 0},
        {"ud-iq2_xxs", MS_TYPE_IQ2_XXS, MS_TYPE_Q2_K, MS_TYPE_Q3_K, MS_TYPE_Q5_K, 19, 3},
        {"ud-q2_k_xl", MS_TYPE_Q2_K, MS_TYPE_Q2_K, MS_TYPE_Q3_K, MS_TYPE_Q4_K, 10, 3},
    };
    assert_int_equal(synth_profile_parse("nope"), -1);
    char path[1024], nm[64];
    snprintf(path, sizeof path, "%s/synth-prof-%d.gguf", tmp_dir(), (int)getpid());
    for (int p = 0; p < 4; p++) {
        synth_opts o;
        synth_opts_default(&o);
        o.tiny = 1;
        o.dense_layers = 0;
        o.moe_layers = 58;
        o.profile = synth_profile_parse(want[p].name);
        assert_int_equal(o.profile, p);
        gguf_file *g = write_and_open(path, &o);
        int n_first = 0;
        for (int l = 0; l < 58; l++) {
            snprintf(nm, sizeof nm, "blk.%d.ffn_gate_exps.weight", l);
            assert_int_equal(must_tensor(g, nm)->type, want[p].gu);
            snprintf(nm, sizeof nm, "blk.%d.ffn_down_exps.weight", l);
            uint32_t dt = must_tensor(g, nm)->type;
            assert_true(dt == (l < want[p].n_first ? want[p].down_first : want[p].down));
            n_first += want[p].down_first != want[p].down && dt == want[p].down_first;
            snprintf(nm, sizeof nm, "blk.%d.ffn_up_shexp.weight", l);
            assert_int_equal(must_tensor(g, nm)->type, want[p].sh_gu);
        }
        assert_int_equal(n_first, want[p].down_first != want[p].down ? want[p].n_first : 0);
        assert_int_equal(get_u32(g, "general.file_type"), want[p].file_type);
        assert_true((gguf_find(g, "quantize.imatrix.file") != NULL) == (p != 3));
        gguf_close(g);
        unlink(path);
    }
}

/* exp_probs_b is 0 without skew; with skew S an eighth of the experts get
 * a bias in (0, S] and router rows scaled by up to 1 + S. */
static void test_routing_skew(void **state)
{
    (void)state;
    char path[1024], err[512];
    snprintf(path, sizeof path, "%s/synth-skew-%d.gguf", tmp_dir(), (int)getpid());
    for (int k = 0; k < 2; k++) {
        synth_opts o;
        synth_opts_default(&o);
        o.tiny = 1;
        o.routing_skew = k ? 3.0f : 0.0f;
        gguf_file *g = write_and_open(path, &o);
        const gguf_tensor *b = must_tensor(g, "blk.2.exp_probs_b.bias");
        float bias[16];
        assert_int_equal(gguf_read(g, b->part, b->offset, bias, sizeof bias, err, sizeof err), 0);
        float *rows = read_rows(g, must_tensor(g, "blk.2.ffn_gate_inp.weight"), 0, 16);
        int n_hot = 0;
        double hot_rms = 0, cold_rms = 0;
        for (int e = 0; e < 16; e++) {
            double rr = rms(rows + e * 256, 256);
            if (bias[e] > 0) {
                n_hot++;
                assert_true(bias[e] <= 3.0f);
                hot_rms += rr;
            } else {
                assert_true(bias[e] == 0);
                cold_rms += rr;
            }
        }
        if (k == 0) {
            assert_int_equal(n_hot, 0);
        } else {
            assert_int_equal(n_hot, 2); /* 16/8: ranks 0 and 1 get S and S/2 */
            printf("MEASURE skew 3: hot router row rms %.4f vs cold %.4f\n", hot_rms / n_hot,
                   cold_rms / (16 - n_hot));
            assert_true(hot_rms / n_hot > 2 * cold_rms / (16 - n_hot));
        }
        free(rows);
        gguf_close(g);
        unlink(path);
    }
}

/* Split output holds the same bytes as one file; the same seed gives the
 * same bytes, another seed others; --vocab copies the tokenizer. */
static void test_split_seed_vocab(void **state)
{
    (void)state;
    GOLDEN_REQUIRE();
    char p1[1024], p2[1024], err[512];
    snprintf(p1, sizeof p1, "%s/synth-one-%d.gguf", tmp_dir(), (int)getpid());
    snprintf(p2, sizeof p2, "%s/synth-parts-%d.gguf", tmp_dir(), (int)getpid());
    synth_opts o;
    synth_opts_default(&o);
    o.tiny = 1;
    gguf_file *a = write_and_open(p1, &o);
    o.split_bytes = 1u << 20;
    gguf_file *b = write_and_open(p2, &o);
    assert_true(b->n_parts >= 3);
    assert_int_equal(a->n_tensors, b->n_tensors);
    for (uint64_t i = 0; i < a->n_tensors; i++) {
        const gguf_tensor *ta = &a->tensors[i], *tb = must_tensor(b, ta->name);
        assert_int_equal(ta->nbytes, tb->nbytes);
        uint8_t *x = malloc(ta->nbytes), *y = malloc(ta->nbytes);
        assert_int_equal(gguf_read(a, ta->part, ta->offset, x, ta->nbytes, err, sizeof err), 0);
        assert_int_equal(gguf_read(b, tb->part, tb->offset, y, tb->nbytes, err, sizeof err), 0);
        if (memcmp(x, y, ta->nbytes))
            fail_msg("tensor %s differs between one file and split output", ta->name);
        free(x);
        free(y);
    }
    for (uint32_t k = 0; k < b->n_parts; k++)
        unlink(b->parts[k].path);
    gguf_close(b);
    /* another seed: different expert bytes */
    o.split_bytes = 0;
    o.seed = 7;
    b = write_and_open(p2, &o);
    const gguf_tensor *ta = must_tensor(a, "blk.1.ffn_up_exps.weight");
    const gguf_tensor *tb = must_tensor(b, "blk.1.ffn_up_exps.weight");
    uint8_t x[1024], y[1024];
    assert_int_equal(gguf_read(a, ta->part, ta->offset, x, sizeof x, err, sizeof err), 0);
    assert_int_equal(gguf_read(b, tb->part, tb->offset, y, sizeof y, err, sizeof err), 0);
    assert_memory_not_equal(x, y, sizeof x);
    gguf_close(b);
    gguf_close(a);
    unlink(p1);

    /* --vocab: the R1 tokenizer in a tiny model */
    char voc[1024];
    snprintf(voc, sizeof voc, "%s/models/deepseek-r1-vocab.gguf", golden_dir());
    synth_opts_default(&o);
    o.tiny = 1;
    o.vocab = voc;
    b = write_and_open(p2, &o);
    assert_int_equal(get_u32(b, "deepseek2.vocab_size"), 129280);
    expect_tensor(b, "token_embd.weight", MS_TYPE_Q4_K, 256, 129280, 1, 0);
    uint64_t n;
    const void *d;
    assert_int_equal(gguf_get_arr(b, "tokenizer.ggml.merges", GGUF_T_STRING, &n, &d, err, sizeof err), 0);
    assert_int_equal(n, 127741);
    assert_string_equal(token(b, 128798), "<think>");
    gguf_str s;
    assert_int_equal(gguf_get_str(b, "general.architecture", &s, err, sizeof err), 0);
    assert_string_equal(s.s, "deepseek2");
    gguf_close(b);
    unlink(p2);
    /* a missing vocabulary file is an error naming it */
    o.vocab = "/nonexistent/vocab.gguf";
    assert_true(synth_write(p2, &o, NULL, err, sizeof err) < 0);
    assert_non_null(strstr(err, "/nonexistent/vocab.gguf"));
}

/* --expert-layers K: MoE layer j's expert tensors are layer (j mod K)'s
 * bytes, every other tensor is the all-distinct file's own, the file says
 * so and loads and runs; K >= the MoE layers writes the plain file. */
static void test_expert_layers(void **state)
{
    (void)state;
    char p1[1024], p2[1024], err[512];
    snprintf(p1, sizeof p1, "%s/synth-distinct-%d.gguf", tmp_dir(), (int)getpid());
    snprintf(p2, sizeof p2, "%s/synth-shared-%d.gguf", tmp_dir(), (int)getpid());
    synth_opts o;
    synth_opts_default(&o);
    o.tiny = 1;
    o.moe_layers = 5;
    gguf_file *a = write_and_open(p1, &o);
    assert_int_equal(a->shared_layers, 0);
    o.expert_layers = 2;
    gguf_file *b = write_and_open(p2, &o);
    assert_int_equal(b->shared_layers, 2);
    assert_int_equal(a->n_tensors, b->n_tensors);
    uint64_t saved = 0, expert = 0;
    for (uint64_t i = 0; i < b->n_tensors; i++) {
        const gguf_tensor *t = &b->tensors[i];
        char src[96];
        snprintf(src, sizeof src, "%s", t->name);
        int il, pos = 0;
        if (strstr(t->name, "_exps.") && sscanf(t->name, "blk.%d.%n", &il, &pos) == 1) {
            expert += t->nbytes;
            const int j = il - 1; /* tiny: one dense layer */
            if (j >= 2) {
                snprintf(src, sizeof src, "blk.%d.%s", 1 + j % 2, t->name + pos);
                const gguf_tensor *s = must_tensor(b, src);
                assert_true(s->offset == t->offset && s->type == t->type);
                saved += must_tensor(a, t->name)->nbytes; /* its own bytes in a */
            }
        }
        const gguf_tensor *ta = must_tensor(a, src);
        assert_int_equal(ta->nbytes, t->nbytes);
        uint8_t *x = malloc(t->nbytes), *y = malloc(t->nbytes);
        assert_int_equal(gguf_read(a, ta->part, ta->offset, x, ta->nbytes, err, sizeof err), 0);
        assert_int_equal(gguf_read(b, t->part, t->offset, y, t->nbytes, err, sizeof err), 0);
        if (memcmp(x, y, t->nbytes))
            fail_msg("%s: not the bytes of %s in the all-distinct file", t->name, src);
        free(x);
        free(y);
    }
    /* 3 of 5 layers' experts are not on disk (the sizes also differ by
     * the header's extra key) */
    assert_true(saved * 2 > expert && saved < expert);
    assert_true(b->parts[0].size + saved <= a->parts[0].size + 4096 &&
                a->parts[0].size <= b->parts[0].size + saved + 4096);
    gguf_close(a);
    gguf_close(b);

    /* it loads and runs */
    model *m = NULL;
    if (model_load(&m, p2, NULL, err, sizeof err))
        fail_msg("%s", err);
    fwd_opts fo;
    fwd_opts_default(&fo);
    fo.n_ctx = 64;
    fwd_state *st = NULL;
    assert_int_equal(fwd_create(&st, m, &fo, err, sizeof err), 0);
    const int32_t ids[4] = {1, 2, 3, 4};
    float *lg = malloc((size_t)m->hp.n_vocab * sizeof *lg);
    assert_int_equal(fwd_eval(st, ids, 4, NULL, lg, err, sizeof err), 0);
    for (uint32_t v = 0; v < m->hp.n_vocab; v++)
        assert_true(isfinite(lg[v]));
    free(lg);
    fwd_destroy(st);
    model_free(m);

    /* K at or past the MoE layer count: the plain file; split: refused */
    o.expert_layers = 5;
    b = write_and_open(p2, &o);
    assert_int_equal(b->shared_layers, 0);
    gguf_close(b);
    o.expert_layers = 2;
    o.split_bytes = 1u << 20;
    assert_int_equal(synth_write(p2, &o, NULL, err, sizeof err), -EINVAL);
    unlink(p1);
    unlink(p2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tiny),
        cmocka_unit_test(test_full_width),
        cmocka_unit_test(test_profiles),
        cmocka_unit_test(test_routing_skew),
        cmocka_unit_test(test_split_seed_vocab),
        cmocka_unit_test(test_expert_layers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
