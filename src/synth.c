/* synth.c - writes DeepSeek-R1-shaped GGUFs with random valid blocks.
 *
 * Shapes and metadata follow DEEPSEEK-FACTS sections 2-4 (legacy attn_kv_b
 * form, the January 2025 R1 keys); the type mix follows the UD recipes of
 * section 4.2.  Weights are random with magnitude ~1/sqrt(fan_in) so the
 * activations stay finite through many layers; norms are 1.  Data is
 * generated per block from a seed derived from (tensor, block index), so a
 * file's bytes do not depend on how the writer chunks it.
 * Routing skew: the selection bias exp_probs_b of expert e is
 * skew * max(0, 1 - rank(e)/hot) over a per-layer random permutation with
 * hot = n_expert/8, so about an eighth of the experts are preferred: the
 * strength of the preference grows with skew (0 = near-uniform routing,
 * the worst case for an expert cache). */
#include "synth.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf.h"
#include "gguf_write.h"
#include "quant.h"

void synth_opts_default(synth_opts *o)
{
    memset(o, 0, sizeof *o);
    o->dense_layers = -1;
    o->moe_layers = -1;
    o->seed = 42;
}

int synth_profile_parse(const char *s)
{
    static const char *names[] = {"ud-iq1_s", "ud-iq1_m", "ud-iq2_xxs", "ud-q2_k_xl"};
    for (int i = 0; i < 4; i++)
        if (!strcmp(s, names[i]))
            return i;
    return -1;
}

static uint64_t mix64(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

enum fill_kind { FILL_RANDOM, FILL_ONES, FILL_BIAS };

typedef struct tfill {
    int type;
    int kind;
    uint64_t seed;
    float scale;
    int64_t n_elem;   /* for F32 vectors */
    float skew;
    int n_expert;
} tfill;

static int fill_cb(void *ud, void *buf, uint64_t off, size_t n)
{
    tfill *f = ud;
    const quant_type_info *ti = quant_info(f->type);
    uint8_t *out = buf;
    if (f->kind != FILL_RANDOM) {
        /* F32 vectors: small, generated whole. */
        for (size_t i = 0; i < n; i += 4) {
            uint64_t e = (off + i) / 4;
            float v = 1.0f;
            if (f->kind == FILL_BIAS) {
                /* rank of e in a per-layer permutation, via a hash sort key */
                uint64_t key = mix64(f->seed ^ e);
                int rank = 0;
                for (int k = 0; k < f->n_expert; k++)
                    rank += mix64(f->seed ^ (uint64_t)k) < key;
                int hot = f->n_expert / 8 > 0 ? f->n_expert / 8 : 1;
                float r = 1.0f - (float)rank / (float)hot;
                v = f->skew * (r > 0 ? r : 0);
            }
            memcpy(out + i, &v, 4);
        }
        return 0;
    }
    const size_t ts = (size_t)ti->type_size;
    uint64_t b0 = off / ts, b1 = (off + n + ts - 1) / ts;
    uint8_t tmp[512];
    for (uint64_t b = b0; b < b1; b++) {
        uint64_t rng = mix64(f->seed ^ (b * 0x9E3779B97F4A7C15ull)) | 1;
        quant_fill_random(f->type, tmp, 1, &rng, f->scale);
        uint64_t bs = b * ts, be = bs + ts;
        uint64_t s = bs > off ? bs : off, e = be < off + n ? be : off + n;
        memcpy(out + (s - off), tmp + (s - bs), e - s);
    }
    return 0;
}

typedef struct builder {
    gguf_writer *w;
    tfill *fills;
    size_t n_fills, cap;
    uint64_t seed;
    int rc;
} builder;

static void add(builder *b, const char *name, int type, int nd, int64_t n0, int64_t n1, int64_t n2,
                int kind, float skew, int n_expert)
{
    if (b->rc)
        return;
    int64_t ne[3] = {n0, n1, n2};
    tfill *f = &b->fills[b->n_fills++];
    f->type = type;
    f->kind = kind;
    f->seed = mix64(b->seed + b->n_fills);
    f->scale = 2.0f / sqrtf((float)n0);
    f->n_elem = n0;
    f->skew = skew;
    f->n_expert = n_expert;
    b->rc = gguf_writer_add_tensor(b->w, name, (uint32_t)type, (uint32_t)nd, ne, NULL, fill_cb, f);
}

/* Byte-level vocabulary: the 256 GPT-2-mapped byte tokens, the chat
 * controls, then [PADn] fillers up to n_vocab. */
static int byte_vocab(gguf_writer *w, int n_vocab, int *bos, int *eos)
{
    static const char *specials[] = {"<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>",
                                     "<｜User｜>", "<｜Assistant｜>", "<think>", "</think>"};
    static const int stypes[] = {3, 3, 4, 4, 4, 4};
    char **toks = calloc((size_t)n_vocab, sizeof *toks);
    int32_t *types = calloc((size_t)n_vocab, sizeof *types);
    int rc = toks && types ? 0 : -ENOMEM;
    int n = 0, extra = 0;
    for (int b = 0; b < 256 && !rc; b++) {
        bool keep = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        uint32_t cp = keep ? (uint32_t)b : 256u + (uint32_t)extra++;
        char *s = malloc(4);
        if (!s) {
            rc = -ENOMEM;
            break;
        }
        if (cp < 0x80) {
            s[0] = (char)cp;
            s[1] = 0;
        } else {
            s[0] = (char)(0xC0 | (cp >> 6));
            s[1] = (char)(0x80 | (cp & 0x3F));
            s[2] = 0;
        }
        toks[n] = s;
        types[n++] = 1;
    }
    *bos = n;
    *eos = n + 1;
    for (int k = 0; k < 6 && !rc; k++) {
        toks[n] = strdup(specials[k]);
        types[n++] = stypes[k];
    }
    for (; n < n_vocab && !rc; n++) {
        char tmp[32];
        snprintf(tmp, sizeof tmp, "[PAD%d]", n);
        toks[n] = strdup(tmp);
        types[n] = 5;
    }
    if (!rc) {
        rc = gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", (uint64_t)n_vocab,
                                     (const char *const *)toks);
        rc = rc ? rc : gguf_writer_set_arr(w, "tokenizer.ggml.token_type", GGUF_T_INT32, (uint64_t)n_vocab, types);
        rc = rc ? rc : gguf_writer_set_arr(w, "tokenizer.ggml.merges", GGUF_T_STRING, 0, NULL);
        rc = rc ? rc : gguf_writer_set_str(w, "tokenizer.ggml.model", "gpt2");
        rc = rc ? rc : gguf_writer_set_str(w, "tokenizer.ggml.pre", "deepseek-v3");
        rc = rc ? rc : gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)*bos);
        rc = rc ? rc : gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)*eos);
        rc = rc ? rc : gguf_writer_set_u32(w, "tokenizer.ggml.padding_token_id", (uint32_t)*eos);
        rc = rc ? rc : gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", true);
        rc = rc ? rc : gguf_writer_set_bool(w, "tokenizer.ggml.add_eos_token", false);
    }
    for (int i = 0; toks && i < n_vocab; i++)
        free(toks[i]);
    free(toks);
    free(types);
    return rc;
}

int synth_write(const char *path, const synth_opts *o, char *first_part, char *err, size_t errlen)
{
    const bool tiny = o->tiny;
    const int n_embd = tiny ? 256 : 7168, n_head = tiny ? 4 : 128, q_lora = tiny ? 256 : 1536;
    const int kv_lora = tiny ? 256 : 512, nope = tiny ? 64 : 128, rope = tiny ? 32 : 64;
    const int v_head = tiny ? 64 : 128, n_ff = tiny ? 512 : 18432, n_ff_exp = tiny ? 256 : 2048;
    const int n_expert = tiny ? 16 : 256, n_used = tiny ? 4 : 8;
    const int n_dense = o->dense_layers >= 0 ? o->dense_layers : (tiny ? 1 : 3);
    const int n_moe = o->moe_layers >= 0 ? o->moe_layers : (tiny ? 3 : 2);
    const int n_layer = n_dense + n_moe;
    if (n_layer <= 0 || n_layer > 1000) {
        snprintf(err, errlen, "synth: need 1..1000 layers (got %d dense + %d MoE)", n_dense, n_moe);
        return -EINVAL;
    }
    int t_gu = MS_TYPE_IQ1_S, t_down = MS_TYPE_IQ1_S, t_down_first = MS_TYPE_IQ2_XXS;
    int t_sh_gu = MS_TYPE_Q5_K;
    switch (o->profile) {
    case SYNTH_UD_IQ1_M: t_gu = MS_TYPE_IQ1_M; t_down = t_down_first = MS_TYPE_IQ2_XXS; break;
    case SYNTH_UD_IQ2_XXS: t_gu = MS_TYPE_IQ2_XXS; t_down = MS_TYPE_Q2_K; t_down_first = MS_TYPE_Q3_K; break;
    case SYNTH_UD_Q2_K_XL:
        t_gu = MS_TYPE_Q2_K; t_down = MS_TYPE_Q2_K; t_down_first = MS_TYPE_Q3_K; t_sh_gu = MS_TYPE_Q4_K;
        break;
    default: break;
    }
    /* The recipe's 6 of 58 MoE layers with wider down projections. */
    const int n_first = (n_moe * 6 + 57) / 58;

    gguf_writer *w = gguf_writer_create();
    builder b = {w, NULL, 0, 0, o->seed, 0};
    b.cap = (size_t)n_layer * 24 + 8;
    b.fills = calloc(b.cap, sizeof *b.fills);
    gguf_file *voc = NULL;
    int rc = w && b.fills ? 0 : -ENOMEM;
    int n_vocab = tiny ? 262 : 129280, bos = 0, eos = 1;
    if (!rc && o->vocab) {
        rc = gguf_open(&voc, o->vocab, err, errlen);
        uint64_t nt = 0;
        const void *d;
        if (!rc && (rc = gguf_get_arr(voc, "tokenizer.ggml.tokens", GGUF_T_STRING, &nt, &d, err, errlen)) == 0) {
            n_vocab = (int)nt;
            rc = gguf_writer_copy_kvs(w, voc, NULL);
            /* keep only the tokenizer's keys */
            for (uint64_t i = 0; !rc && i < voc->n_kv; i++)
                if (strncmp(voc->kv[i].key, "tokenizer.", 10))
                    gguf_writer_remove(w, voc->kv[i].key);
        }
    } else if (!rc) {
        rc = byte_vocab(w, n_vocab, &bos, &eos);
    }
    static const char *pnames[] = {"UD-IQ1_S", "UD-IQ1_M", "UD-IQ2_XXS", "UD-Q2_K_XL"};
    char name[128];
    snprintf(name, sizeof name, "moestream synthetic %s %s (random weights: produces noise)",
             tiny ? "tiny" : "R1-shaped", pnames[o->profile]);
#define KU(k, v) rc = rc ? rc : gguf_writer_set_u32(w, "deepseek2." k, (uint32_t)(v))
#define KF(k, v) rc = rc ? rc : gguf_writer_set_f32(w, "deepseek2." k, (float)(v))
    rc = rc ? rc : gguf_writer_set_str(w, "general.architecture", "deepseek2");
    rc = rc ? rc : gguf_writer_set_str(w, "general.name", name);
    KU("block_count", n_layer);
    KU("context_length", 163840);
    KU("embedding_length", n_embd);
    KU("feed_forward_length", n_ff);
    KU("attention.head_count", n_head);
    KU("attention.head_count_kv", n_head);
    KF("rope.freq_base", 10000);
    KF("attention.layer_norm_rms_epsilon", 1e-6);
    KU("expert_used_count", n_used);
    KU("leading_dense_block_count", n_dense);
    KU("vocab_size", n_vocab);
    KU("attention.q_lora_rank", q_lora);
    KU("attention.kv_lora_rank", kv_lora);
    KU("attention.key_length", nope + rope);
    KU("attention.value_length", v_head);
    KU("expert_feed_forward_length", n_ff_exp);
    KU("expert_count", n_expert);
    KU("expert_shared_count", 1);
    KF("expert_weights_scale", 2.5);
    rc = rc ? rc : gguf_writer_set_bool(w, "deepseek2.expert_weights_norm", true);
    KU("expert_gating_func", 2);
    KU("rope.dimension_count", rope);
    rc = rc ? rc : gguf_writer_set_str(w, "deepseek2.rope.scaling.type", "yarn");
    KF("rope.scaling.factor", 40);
    KU("rope.scaling.original_context_length", 4096);
    KF("rope.scaling.yarn_log_multiplier", 0.1);
    rc = rc ? rc : gguf_writer_set_u32(w, "general.quantization_version", 2);
#undef KU
#undef KF
    if (rc) {
        if (!err[0])
            snprintf(err, errlen, "synth: building metadata failed (%d)", rc);
        goto out;
    }
    b.rc = 0;
    add(&b, "token_embd.weight", MS_TYPE_Q4_K, 2, n_embd, n_vocab, 1, FILL_RANDOM, 0, 0);
    add(&b, "output_norm.weight", MS_TYPE_F32, 1, n_embd, 1, 1, FILL_ONES, 0, 0);
    add(&b, "output.weight", MS_TYPE_Q6_K, 2, n_embd, n_vocab, 1, FILL_RANDOM, 0, 0);
    for (int il = 0; il < n_layer && !b.rc; il++) {
        char nm[96];
#define T(s) (snprintf(nm, sizeof nm, "blk.%d." s, il), nm)
        add(&b, T("attn_norm.weight"), MS_TYPE_F32, 1, n_embd, 1, 1, FILL_ONES, 0, 0);
        add(&b, T("attn_q_a_norm.weight"), MS_TYPE_F32, 1, q_lora, 1, 1, FILL_ONES, 0, 0);
        add(&b, T("attn_kv_a_norm.weight"), MS_TYPE_F32, 1, kv_lora, 1, 1, FILL_ONES, 0, 0);
        add(&b, T("ffn_norm.weight"), MS_TYPE_F32, 1, n_embd, 1, 1, FILL_ONES, 0, 0);
        add(&b, T("attn_q_a.weight"), MS_TYPE_Q4_K, 2, n_embd, q_lora, 1, FILL_RANDOM, 0, 0);
        add(&b, T("attn_q_b.weight"), MS_TYPE_Q4_K, 2, q_lora, n_head * (nope + rope), 1, FILL_RANDOM, 0, 0);
        add(&b, T("attn_kv_a_mqa.weight"), MS_TYPE_Q6_K, 2, n_embd, kv_lora + rope, 1, FILL_RANDOM, 0, 0);
        add(&b, T("attn_kv_b.weight"), MS_TYPE_Q6_K, 2, kv_lora, n_head * (nope + v_head), 1, FILL_RANDOM, 0, 0);
        add(&b, T("attn_output.weight"), MS_TYPE_Q4_K, 2, n_head * v_head, n_embd, 1, FILL_RANDOM, 0, 0);
        if (il < n_dense) {
            add(&b, T("ffn_gate.weight"), MS_TYPE_Q4_K, 2, n_embd, n_ff, 1, FILL_RANDOM, 0, 0);
            add(&b, T("ffn_up.weight"), MS_TYPE_Q4_K, 2, n_embd, n_ff, 1, FILL_RANDOM, 0, 0);
            add(&b, T("ffn_down.weight"), MS_TYPE_Q6_K, 2, n_ff, n_embd, 1, FILL_RANDOM, 0, 0);
            continue;
        }
        const int moe_idx = il - n_dense;
        add(&b, T("ffn_gate_inp.weight"), MS_TYPE_F32, 2, n_embd, n_expert, 1, FILL_RANDOM, 0, 0);
        add(&b, T("exp_probs_b.bias"), MS_TYPE_F32, 1, n_expert, 1, 1, FILL_BIAS, o->routing_skew, n_expert);
        add(&b, T("ffn_gate_exps.weight"), t_gu, 3, n_embd, n_ff_exp, n_expert, FILL_RANDOM, 0, 0);
        add(&b, T("ffn_up_exps.weight"), t_gu, 3, n_embd, n_ff_exp, n_expert, FILL_RANDOM, 0, 0);
        add(&b, T("ffn_down_exps.weight"), moe_idx < n_first ? t_down_first : t_down, 3, n_ff_exp,
            n_embd, n_expert, FILL_RANDOM, 0, 0);
        add(&b, T("ffn_gate_shexp.weight"), t_sh_gu, 2, n_embd, n_ff_exp, 1, FILL_RANDOM, 0, 0);
        add(&b, T("ffn_up_shexp.weight"), t_sh_gu, 2, n_embd, n_ff_exp, 1, FILL_RANDOM, 0, 0);
        add(&b, T("ffn_down_shexp.weight"), MS_TYPE_Q6_K, 2, n_ff_exp, n_embd, 1, FILL_RANDOM, 0, 0);
#undef T
    }
    if (b.rc) {
        rc = b.rc;
        snprintf(err, errlen, "synth: adding tensors failed (%d)", rc);
        goto out;
    }
    rc = gguf_writer_write(w, path, o->split_bytes, first_part, err, errlen);
out:
    gguf_close(voc);
    gguf_writer_free(w);
    free(b.fills);
    return rc;
}
