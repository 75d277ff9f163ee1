/* synth.c - writes DeepSeek-R1-shaped GGUFs with random valid blocks.
 *
 * Owns synth_*; the bytes go out through gguf_write.  Shapes and metadata
 * follow DEEPSEEK-FACTS sections 2-4: the January 2025 R1 keys of 2.1 with
 * their real values, the legacy attn_kv_b form, and the per-tensor type mix
 * of the UD recipes of 4.2.  Random weights produce noise, not language.
 *
 * Magnitudes: norms are 1; every weight matrix is calibrated so that its
 * dequantized weights have an RMS of 1/sqrt(fan_in) (the RMS of random
 * blocks of each type is measured once at start: K-quants with a min, for
 * instance, are not zero-mean), so a matmul keeps the RMS of its input and
 * activations stay finite and O(1) through many layers.
 *
 * Speed: small tensors are generated block by block from a seed derived
 * from (tensor, block).  Large ones (the routed experts, tens of GB in a
 * full model) reuse one pattern of PATTERN_BLOCKS random blocks per tensor:
 * block b is a copy of pattern block hash(tensor, b) mod PATTERN_BLOCKS, a
 * memcpy per block, so generation runs far faster than the disk.  Every
 * block is a valid random block; rows and experts differ because the picks
 * do.  Either way a file's bytes depend only on the options and the seed,
 * not on how the writer chunks it.
 *
 * Routing skew S (0 = uniform): per MoE layer a random eighth of the
 * experts is "hot", with hotness h(e) = max(0, 1 - rank(e) / (n_expert/8))
 * over a per-layer random permutation.  exp_probs_b(e) = S * h(e) adds
 * directly to the selection score, and router row e of ffn_gate_inp is
 * scaled by (1 + S * h(e)): a row with a larger norm gives logits of larger
 * spread, so that expert lands among the top-k more often.  Selection
 * frequency then falls off with rank, as the expert popularity in real
 * traces does.
 *
 * Shared expert layers (expert_layers K < MoE layers): only the first K MoE
 * layers' routed-expert tensors get bytes; MoE layer j's ffn_*_exps point
 * at layer (j mod K)'s (gguf_writer_add_alias), and the file says so in
 * moestream.synthetic.shared_layers = K, the one case the reader accepts
 * overlapping data.  Every other tensor (attention, router, shared expert,
 * norms) stays per layer, so a 61-layer file has R1's resident set, KV
 * cache and memory plan in ~30 GB of disk.  The K sources' ffn_down_exps
 * types follow the recipe as if the model had K MoE layers. */
#include "synth.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf.h"
#include "gguf_write.h"
#include "quant.h"
#include "recipe.h"

void synth_opts_default(synth_opts *o)
{
    memset(o, 0, sizeof *o);
    o->dense_layers = -1;
    o->moe_layers = -1;
    o->seed = 42;
}

int synth_profile_parse(const char *s)
{
    if (!strcmp(s, "q8_0"))
        return SYNTH_Q8_0;
    if (!strcmp(s, "bf16"))
        return SYNTH_BF16;
    return recipe_parse(s);
}

/* Type of weight `name` under the profile: the recipe's, or the source
 * profiles' one type. */
static int weight_type(int profile, const char *name, int n_dense, int n_moe)
{
    if (profile == SYNTH_Q8_0)
        return MS_TYPE_Q8_0;
    if (profile == SYNTH_BF16)
        return MS_TYPE_BF16;
    return recipe_tensor_type(profile, name, n_dense, n_moe);
}

static uint64_t mix64(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

enum fill_kind { FILL_RANDOM, FILL_ONES, FILL_BIAS, FILL_ROUTER };

#define PATTERN_MIN_BYTES (32u << 20) /* tensors from this size reuse a pattern */
#define PATTERN_BLOCKS 4096

typedef struct tfill {
    int type;
    int kind;
    uint64_t seed;
    float scale;
    int64_t row;        /* elements per row (FILL_ROUTER: rows are experts) */
    const float *hot;   /* per-expert hotness in [0, 1] (FILL_BIAS, FILL_ROUTER) */
    float skew;
    uint64_t nbytes;
    uint8_t *pattern;   /* PATTERN_BLOCKS blocks, made on first use */
} tfill;

static int fill_cb(void *ud, void *buf, uint64_t off, size_t n)
{
    tfill *f = ud;
    const quant_type_info *ti = quant_info(f->type);
    uint8_t *out = buf;
    if (f->kind == FILL_ONES || f->kind == FILL_BIAS) {
        /* F32 vectors (off and n are multiples of 4: the writer's chunks
         * are, and so are tensor sizes) */
        for (size_t i = 0; i + 4 <= n; i += 4) {
            uint64_t e = (off + i) / 4;
            float v = f->kind == FILL_ONES ? 1.0f : f->skew * f->hot[e];
            memcpy(out + i, &v, 4);
        }
        return 0;
    }
    if (f->kind == FILL_ROUTER) {
        for (size_t i = 0; i + 4 <= n; i += 4) {
            uint64_t e = (off + i) / 4;
            uint64_t rng = mix64(f->seed ^ (e * 0x9E3779B97F4A7C15ull)) | 1;
            float v;
            quant_fill_random(MS_TYPE_F32, &v, 1, &rng, f->scale);
            v *= 1.0f + f->skew * f->hot[e / (uint64_t)f->row];
            memcpy(out + i, &v, 4);
        }
        return 0;
    }
    const size_t ts = (size_t)ti->type_size;
    if (f->nbytes >= PATTERN_MIN_BYTES && !f->pattern) {
        f->pattern = malloc((size_t)PATTERN_BLOCKS * ts);
        if (!f->pattern)
            return -ENOMEM;
        uint64_t rng = mix64(f->seed) | 1;
        quant_fill_random(f->type, f->pattern, PATTERN_BLOCKS, &rng, f->scale);
    }
    uint64_t b0 = off / ts, b1 = (off + n + ts - 1) / ts;
    uint8_t tmp[512];
    for (uint64_t b = b0; b < b1; b++) {
        const uint8_t *src;
        uint64_t h = mix64(f->seed ^ (b * 0x9E3779B97F4A7C15ull));
        if (f->pattern) {
            src = f->pattern + (size_t)(h % PATTERN_BLOCKS) * ts;
        } else {
            uint64_t rng = h | 1;
            quant_fill_random(f->type, tmp, 1, &rng, f->scale);
            src = tmp;
        }
        uint64_t bs = b * ts, be = bs + ts;
        uint64_t s0 = bs > off ? bs : off, e0 = be < off + n ? be : off + n;
        memcpy(out + (s0 - off), src + (s0 - bs), e0 - s0);
    }
    return 0;
}

/* RMS of the dequantized weights of random blocks of `type` made with
 * scale 1 (0 if the type cannot be dequantized). */
static float type_rms(int type)
{
    static float cache[MS_TYPE_COUNT];
    if (type < 0 || type >= MS_TYPE_COUNT)
        return 0;
    if (cache[type] > 0)
        return cache[type];
    const quant_type_info *ti = quant_info(type);
    enum { N = 64 * 256 };
    static float x[N];
    uint8_t *blk = malloc((size_t)(N / ti->blck) * (size_t)ti->type_size);
    if (!blk)
        return 0;
    uint64_t rng = 0x5EEDull;
    quant_fill_random(type, blk, N / ti->blck, &rng, 1.0f);
    double s2 = 0;
    if (quant_dequantize_row(type, blk, x, N) == 0)
        for (int i = 0; i < N; i++)
            s2 += (double)x[i] * x[i];
    free(blk);
    cache[type] = (float)sqrt(s2 / N);
    return cache[type];
}

typedef struct builder {
    gguf_writer *w;
    tfill *fills;
    size_t n_fills, cap;
    uint64_t seed;
    uint64_t n_named; /* tensors so far, aliases included: the seed index, so
                       * a tensor's bytes do not depend on --expert-layers */
    int rc;
} builder;

/* Adds a tensor of shape (n0, n1, n2) filled by kind; random weights get
 * RMS 1/sqrt(n0) (n0 = fan-in: the row length). */
static void add(builder *b, const char *name, int type, int nd, int64_t n0, int64_t n1, int64_t n2,
                int kind, float skew, const float *hot)
{
    if (b->rc)
        return;
    if (b->n_fills == b->cap) {
        b->rc = -ENOMEM;
        return;
    }
    int64_t ne[3] = {n0, n1, n2};
    tfill *f = &b->fills[b->n_fills++];
    const quant_type_info *ti = quant_info(type);
    float rms = type_rms(type);
    f->type = type;
    f->kind = kind;
    f->seed = mix64(b->seed * 0x100000001B3ull + ++b->n_named);
    f->scale = rms > 0 ? 1.0f / (rms * sqrtf((float)n0)) : 1.0f / sqrtf((float)n0);
    f->row = n0;
    f->hot = hot;
    f->skew = skew;
    f->nbytes = (uint64_t)(n0 * n1 * n2) / (uint64_t)ti->blck * (uint64_t)ti->type_size;
    b->rc = gguf_writer_add_tensor(b->w, name, (uint32_t)type, (uint32_t)nd, ne, NULL, fill_cb, f);
}

/* Hotness of each expert for one layer (see the file comment). */
static void layer_hotness(float *hot, int n_expert, uint64_t seed)
{
    int n_hot = n_expert / 8 > 0 ? n_expert / 8 : 1;
    for (int e = 0; e < n_expert; e++) {
        uint64_t key = mix64(seed ^ (uint64_t)e);
        int rank = 0;
        for (int k = 0; k < n_expert; k++) {
            uint64_t kk = mix64(seed ^ (uint64_t)k);
            rank += kk < key || (kk == key && k < e);
        }
        float h = 1.0f - (float)rank / (float)n_hot;
        hot[e] = h > 0 ? h : 0;
    }
}

/* Byte-level vocabulary (byte tokens in the GPT-2 byte-to-unicode map,
 * no merges: every byte is a token) plus the chat tokens.  Tiny: the 256
 * byte tokens, then BOS, EOS, User, Assistant, <think>, </think>.  Full
 * size: the R1 ids of DEEPSEEK-FACTS 7.3 for the special tokens (BOS 0,
 * EOS 1, <think> 128798, </think> 128799, User 128803, Assistant 128804,
 * pad 128815), the byte tokens at 3..258, unused fillers elsewhere. */
static int byte_vocab(gguf_writer *w, bool tiny, int n_vocab)
{
    enum { NORMAL = 1, CONTROL = 3, USER_DEFINED = 4, UNUSED = 5 };
    struct special { int id; const char *text; int type; };
    static const struct special sp_tiny[] = {
        {256, "<｜begin▁of▁sentence｜>", CONTROL}, {257, "<｜end▁of▁sentence｜>", CONTROL},
        {258, "<｜User｜>", USER_DEFINED},         {259, "<｜Assistant｜>", USER_DEFINED},
        {260, "<think>", USER_DEFINED},             {261, "</think>", USER_DEFINED}};
    static const struct special sp_full[] = {
        {0, "<｜begin▁of▁sentence｜>", CONTROL}, {1, "<｜end▁of▁sentence｜>", CONTROL},
        {2, "<｜▁pad▁｜>", CONTROL},             {128798, "<think>", USER_DEFINED},
        {128799, "</think>", USER_DEFINED},       {128803, "<｜User｜>", USER_DEFINED},
        {128804, "<｜Assistant｜>", USER_DEFINED}, {128815, "<｜PAD▁TOKEN｜>", CONTROL}};
    const struct special *sp = tiny ? sp_tiny : sp_full;
    const int n_sp = tiny ? 6 : 8, byte0 = tiny ? 0 : 3;
    const int bos = sp[0].id, eos = sp[1].id, pad = tiny ? eos : 128815;
    if (n_vocab < sp[n_sp - 1].id + 1 || n_vocab < byte0 + 256)
        return -EINVAL;
    char **toks = calloc((size_t)n_vocab, sizeof *toks);
    int32_t *types = calloc((size_t)n_vocab, sizeof *types);
    int rc = toks && types ? 0 : -ENOMEM;
    int extra = 0;
    for (int b = 0; b < 256 && !rc; b++) {
        /* GPT-2 byte map: printable bytes stand for themselves, the others
         * map to U+0100 upwards in byte order */
        bool keep = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        uint32_t cp = keep ? (uint32_t)b : 256u + (uint32_t)extra++;
        char *t = malloc(4);
        if (!t) {
            rc = -ENOMEM;
            break;
        }
        if (cp < 0x80) {
            t[0] = (char)cp;
            t[1] = 0;
        } else {
            t[0] = (char)(0xC0 | (cp >> 6));
            t[1] = (char)(0x80 | (cp & 0x3F));
            t[2] = 0;
        }
        toks[byte0 + b] = t;
        types[byte0 + b] = NORMAL;
    }
    for (int k = 0; k < n_sp && !rc; k++) {
        toks[sp[k].id] = strdup(sp[k].text);
        types[sp[k].id] = sp[k].type;
        if (!toks[sp[k].id])
            rc = -ENOMEM;
    }
    for (int i = 0; i < n_vocab && !rc; i++) {
        if (toks[i])
            continue;
        char tmp[32];
        snprintf(tmp, sizeof tmp, "[PAD%d]", i);
        if (!(toks[i] = strdup(tmp)))
            rc = -ENOMEM;
        types[i] = UNUSED;
    }
    if (!rc) {
        rc = gguf_writer_set_str(w, "tokenizer.ggml.model", "gpt2");
        rc = rc ? rc : gguf_writer_set_str(w, "tokenizer.ggml.pre", "deepseek-v3");
        rc = rc ? rc : gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", (uint64_t)n_vocab,
                                              (const char *const *)toks);
        rc = rc ? rc : gguf_writer_set_arr(w, "tokenizer.ggml.token_type", GGUF_T_INT32,
                                          (uint64_t)n_vocab, types);
        rc = rc ? rc : gguf_writer_set_arr(w, "tokenizer.ggml.merges", GGUF_T_STRING, 0, NULL);
        rc = rc ? rc : gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)bos);
        rc = rc ? rc : gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)eos);
        rc = rc ? rc : gguf_writer_set_u32(w, "tokenizer.ggml.padding_token_id", (uint32_t)pad);
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
    if (err && errlen)
        err[0] = 0;
    const bool tiny = o->tiny;
    const int n_embd = tiny ? 256 : 7168, n_head = tiny ? 4 : 128, q_lora = tiny ? 256 : 1536;
    const int kv_lora = tiny ? 256 : 512, nope = tiny ? 64 : 128, rope = tiny ? 32 : 64;
    const int v_head = tiny ? 64 : 128, n_ff = tiny ? 512 : 18432, n_ff_exp = tiny ? 256 : 2048;
    const int n_expert = tiny ? 16 : 256, n_used = tiny ? 4 : 8;
    const int n_dense = o->dense_layers >= 0 ? o->dense_layers : (tiny ? 1 : 3);
    const int n_moe = o->moe_layers >= 0 ? o->moe_layers : (tiny ? 3 : 2);
    const int n_layer = n_dense + n_moe;
    /* MoE layers whose expert bytes are written; the others share them */
    const int n_src = o->expert_layers > 0 && o->expert_layers < n_moe ? o->expert_layers : n_moe;
    if (n_layer <= 0 || n_layer > 1000) {
        snprintf(err, errlen, "synth: need 1..1000 layers (got %d dense + %d MoE)", n_dense, n_moe);
        return -EINVAL;
    }
    if (o->expert_layers < 0 || (n_src < n_moe && o->split_bytes)) {
        snprintf(err, errlen, "synth: --expert-layers %d%s", o->expert_layers,
                 o->expert_layers < 0 ? " is negative" : " writes one file (no --split)");
        return -EINVAL;
    }
    if (o->profile < 0 || o->profile > SYNTH_BF16 || !(o->routing_skew >= 0)) {
        snprintf(err, errlen, "synth: bad profile %d or routing skew", o->profile);
        return -EINVAL;
    }
    /* DEEPSEEK-FACTS 4.2: the recipe's type for each weight (recipe.c,
     * shared with quantize --recipe) */
    const uint32_t file_type = o->profile == SYNTH_Q8_0   ? 7
                               : o->profile == SYNTH_BF16 ? 32
                                                          : recipe_file_type(o->profile);

    gguf_writer *w = gguf_writer_create();
    builder b = {w, NULL, 0, 0, o->seed, 0, 0};
    b.cap = (size_t)n_layer * 24 + 8;
    b.fills = calloc(b.cap, sizeof *b.fills);
    float *hot = calloc((size_t)n_layer * (size_t)n_expert, sizeof *hot);
    gguf_file *voc = NULL;
    int rc = w && b.fills && hot ? 0 : -ENOMEM;
    int n_vocab = tiny ? 262 : 129280;
    if (!rc && o->vocab) {
        rc = gguf_open(&voc, o->vocab, err, errlen);
        uint64_t nt = 0;
        const void *d;
        if (!rc) {
            rc = gguf_get_arr(voc, "tokenizer.ggml.tokens", GGUF_T_STRING, &nt, &d, err, errlen);
            if (rc == -ENOENT)
                snprintf(err, errlen, "%s: no tokenizer.ggml.tokens", o->vocab);
        }
        if (!rc && (nt < 1 || nt > INT32_MAX)) {
            snprintf(err, errlen, "%s: %llu tokens", o->vocab, (unsigned long long)nt);
            rc = -EBADMSG;
        }
        if (!rc)
            n_vocab = (int)nt;
    }

    char name[128];
    snprintf(name, sizeof name, "moestream synthetic %s %s (random weights: produces noise)",
             tiny ? "tiny" : "R1-shaped", o->profile == SYNTH_Q8_0 ? "Q8_0" : o->profile == SYNTH_BF16 ? "BF16" : recipe_label(o->profile));
    /* DEEPSEEK-FACTS 2.1, in the order of the R1 files */
#define KS(k, v) rc = rc ? rc : gguf_writer_set_str(w, k, v)
#define KU(k, v) rc = rc ? rc : gguf_writer_set_u32(w, "deepseek2." k, (uint32_t)(v))
#define KF(k, v) rc = rc ? rc : gguf_writer_set_f32(w, "deepseek2." k, (float)(v))
    KS("general.architecture", "deepseek2");
    KS("general.type", "model");
    KS("general.name", name);
    KS("general.quantized_by", "Unsloth");
    KS("general.size_label", tiny ? "16x0.3M" : "256x20B");
    KS("general.repo_url", "https://huggingface.co/unsloth");
    KU("block_count", n_layer);
    KU("context_length", 163840);
    KU("embedding_length", n_embd);
    KU("feed_forward_length", n_ff);
    KU("attention.head_count", n_head);
    KU("attention.head_count_kv", n_head); /* legacy form */
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
    /* The R1 files lack the group keys (plain top-k over 256 experts); the
     * tiny family has them, like the golden tiny models: 4 groups, top 2. */
    if (tiny) {
        KU("expert_group_count", 4);
        KU("expert_group_used_count", 2);
    }
    KU("rope.dimension_count", rope);
    KS("deepseek2.rope.scaling.type", "yarn");
    KF("rope.scaling.factor", 40);
    KU("rope.scaling.original_context_length", 4096);
    KF("rope.scaling.yarn_log_multiplier", 0.1);
    if (!rc && voc) {
        /* tokenizer.* only, from the vocabulary file */
        for (uint64_t i = 0; !rc && i < voc->n_kv; i++)
            if (!strncmp(voc->kv[i].key, "tokenizer.", 10))
                rc = gguf_writer_set(w, voc->kv[i].key, &voc->kv[i].val);
    } else if (!rc) {
        rc = byte_vocab(w, tiny, n_vocab);
    }
    rc = rc ? rc : gguf_writer_set_u32(w, "general.quantization_version", 2);
    rc = rc ? rc : gguf_writer_set_u32(w, "general.file_type", file_type);
    if (o->profile < SYNTH_Q8_0 && recipe_uses_imatrix(o->profile)) { /* Q2_K_XL was made without one */
        KS("quantize.imatrix.file", "DeepSeek-R1.imatrix");
        KS("quantize.imatrix.dataset", "/training_data/calibration_datav3.txt");
        rc = rc ? rc : gguf_writer_set_i32(w, "quantize.imatrix.entries_count", 720);
        rc = rc ? rc : gguf_writer_set_i32(w, "quantize.imatrix.chunks_count", 124);
    }
    /* gguf.c accepts the shared ranges only with this key, and only in
     * exactly this pattern (MoE layer j's experts are layer j mod K's) */
    if (n_src < n_moe)
        rc = rc ? rc : gguf_writer_set_u32(w, "moestream.synthetic.shared_layers", (uint32_t)n_src);
#undef KS
#undef KU
#undef KF
    if (rc) {
        if (!err[0])
            snprintf(err, errlen, "synth: building metadata failed: %s", strerror(-rc));
        goto out;
    }
    add(&b, "token_embd.weight", weight_type(o->profile, "token_embd.weight", n_dense, n_moe), 2, n_embd, n_vocab, 1, FILL_RANDOM, 0, NULL);
    add(&b, "output_norm.weight", MS_TYPE_F32, 1, n_embd, 1, 1, FILL_ONES, 0, NULL);
    add(&b, "output.weight", weight_type(o->profile, "output.weight", n_dense, n_moe), 2, n_embd, n_vocab, 1, FILL_RANDOM, 0, NULL);
    for (int il = 0; il < n_layer && !b.rc; il++) {
        char nm[96];
#define T(s) (snprintf(nm, sizeof nm, "blk.%d." s, il), nm)
#define W(s) (snprintf(nm, sizeof nm, "blk.%d." s, il), weight_type(o->profile, nm, n_dense, n_moe))
        add(&b, T("attn_norm.weight"), MS_TYPE_F32, 1, n_embd, 1, 1, FILL_ONES, 0, NULL);
        add(&b, T("attn_q_a_norm.weight"), MS_TYPE_F32, 1, q_lora, 1, 1, FILL_ONES, 0, NULL);
        add(&b, T("attn_kv_a_norm.weight"), MS_TYPE_F32, 1, kv_lora, 1, 1, FILL_ONES, 0, NULL);
        add(&b, T("ffn_norm.weight"), MS_TYPE_F32, 1, n_embd, 1, 1, FILL_ONES, 0, NULL);
        add(&b, nm, W("attn_q_a.weight"), 2, n_embd, q_lora, 1, FILL_RANDOM, 0, NULL);
        add(&b, nm, W("attn_q_b.weight"), 2, q_lora, n_head * (nope + rope), 1,
            FILL_RANDOM, 0, NULL);
        add(&b, nm, W("attn_kv_a_mqa.weight"), 2, n_embd, kv_lora + rope, 1,
            FILL_RANDOM, 0, NULL);
        add(&b, nm, W("attn_kv_b.weight"), 2, kv_lora, n_head * (nope + v_head), 1,
            FILL_RANDOM, 0, NULL);
        add(&b, nm, W("attn_output.weight"), 2, n_head * v_head, n_embd, 1,
            FILL_RANDOM, 0, NULL);
        if (il < n_dense) {
            add(&b, nm, W("ffn_gate.weight"), 2, n_embd, n_ff, 1, FILL_RANDOM, 0, NULL);
            add(&b, nm, W("ffn_up.weight"), 2, n_embd, n_ff, 1, FILL_RANDOM, 0, NULL);
            add(&b, nm, W("ffn_down.weight"), 2, n_ff, n_embd, 1, FILL_RANDOM, 0, NULL);
            continue;
        }
        float *lh = hot + (size_t)il * (size_t)n_expert;
        layer_hotness(lh, n_expert, mix64(o->seed ^ 0xC0FFEEull ^ (uint64_t)il));
        add(&b, T("ffn_gate_inp.weight"), MS_TYPE_F32, 2, n_embd, n_expert, 1, FILL_ROUTER,
            o->routing_skew, lh);
        add(&b, T("exp_probs_b.bias"), MS_TYPE_F32, 1, n_expert, 1, 1, FILL_BIAS, o->routing_skew,
            lh);
        const int j = il - n_dense; /* MoE layer index */
        if (j < n_src) {
            /* the sources' types follow the recipe for n_src MoE layers (its
             * wide ffn_down_exps layers scaled to them) */
#define WS(s) (snprintf(nm, sizeof nm, "blk.%d." s, il), weight_type(o->profile, nm, n_dense, n_src))
            add(&b, nm, WS("ffn_gate_exps.weight"), 3, n_embd, n_ff_exp, n_expert, FILL_RANDOM, 0,
                NULL);
            add(&b, nm, WS("ffn_up_exps.weight"), 3, n_embd, n_ff_exp, n_expert, FILL_RANDOM, 0,
                NULL);
            add(&b, nm, WS("ffn_down_exps.weight"), 3, n_ff_exp, n_embd, n_expert, FILL_RANDOM, 0,
                NULL);
#undef WS
        } else {
            static const char *const ex[3] = {"ffn_gate_exps", "ffn_up_exps", "ffn_down_exps"};
            for (int k = 0; k < 3 && !b.rc; k++) {
                char src[96];
                snprintf(src, sizeof src, "blk.%d.%s.weight", n_dense + j % n_src, ex[k]);
                snprintf(nm, sizeof nm, "blk.%d.%s.weight", il, ex[k]);
                b.rc = gguf_writer_add_alias(w, nm, src);
                b.n_named++;
            }
        }
        add(&b, nm, W("ffn_gate_shexp.weight"), 2, n_embd, n_ff_exp, 1, FILL_RANDOM, 0, NULL);
        add(&b, nm, W("ffn_up_shexp.weight"), 2, n_embd, n_ff_exp, 1, FILL_RANDOM, 0, NULL);
        add(&b, nm, W("ffn_down_shexp.weight"), 2, n_ff_exp, n_embd, 1, FILL_RANDOM, 0,
            NULL);
#undef T
#undef W
    }
    if (b.rc) {
        rc = b.rc;
        snprintf(err, errlen, "synth: adding tensors failed: %s", strerror(-rc));
        goto out;
    }
    rc = gguf_writer_write(w, path, o->split_bytes, first_part, err, errlen);
out:
    for (size_t i = 0; b.fills && i < b.n_fills; i++)
        free(b.fills[i].pattern);
    gguf_close(voc);
    gguf_writer_free(w);
    free(b.fills);
    free(hot);
    return rc;
}
