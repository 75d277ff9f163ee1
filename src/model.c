/* model.c - binds a deepseek2 GGUF to a model: hyperparameters from
 * metadata, every tensor checked against the expected shape, resident
 * weights read once, with large O_DIRECT reads (io/bulkread.h) straight
 * into one arena.
 *
 * Invariants after model_load succeeds: every mweight of the layout exists
 * with the right dims and a known type; every row length is a multiple of
 * its type's block size; norm vectors are F32; `data` is non-NULL for every
 * weight except routed experts when they are left to the pager. */
#include "model.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <unistd.h>

#include "quant.h"
#include "repack.h"
#include "repack_q4k.h"

#define ARENA_ALIGN 64
/* Where a tensor read from the file starts in RAM: the GGUF default
 * alignment, so that a tensor of an ordinary file lands where it is served
 * (O_DIRECT keeps the file offset's place within a 512-byte block, and the
 * files' tensors sit at 32 mod 64) and is not moved after its read; paged
 * experts are served the same way.  The kernels do unaligned loads. */
#define READ_ALIGN 32
#define ARENA_BLOCK 4096
#define ARENA_BLOCK_UP(x) (((uint64_t)(x) + ARENA_BLOCK - 1) & ~(uint64_t)(ARENA_BLOCK - 1))

static int fail(char *err, size_t errlen, int rc, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return rc;
}

/* ---- hyperparameters ---- */

typedef struct keyctx {
    const gguf_file *g;
    const char *path;
    char *err;
    size_t errlen;
} keyctx;

static int key_u32(keyctx *k, const char *suffix, uint32_t *out, bool required, uint32_t dflt)
{
    char key[128];
    snprintf(key, sizeof key, "deepseek2.%s", suffix);
    int rc = gguf_get_u32(k->g, key, out, k->err, k->errlen);
    if (rc == -ENOENT) {
        if (required)
            return fail(k->err, k->errlen, -EBADMSG, "%s: missing metadata key '%s'", k->path, key);
        *out = dflt;
        return 0;
    }
    return rc;
}

static int key_f32(keyctx *k, const char *suffix, float *out, bool required, float dflt)
{
    char key[128];
    double v;
    snprintf(key, sizeof key, "deepseek2.%s", suffix);
    int rc = gguf_get_f64(k->g, key, &v, k->err, k->errlen);
    if (rc == -ENOENT) {
        if (required)
            return fail(k->err, k->errlen, -EBADMSG, "%s: missing metadata key '%s'", k->path, key);
        *out = dflt;
        return 0;
    }
    if (rc == 0)
        *out = (float)v;
    return rc;
}

static int read_hparams(model *m, const model_opts *o, const char *path, char *err, size_t errlen)
{
    const gguf_file *g = m->gguf;
    model_hparams *hp = &m->hp;
    keyctx k = {g, path, err, errlen};
    gguf_str arch;
    int rc = gguf_get_str(g, "general.architecture", &arch, err, errlen);
    if (rc == -ENOENT)
        return fail(err, errlen, -ENOTSUP, "%s: no general.architecture key; not a model file", path);
    if (rc)
        return rc;
    if (strcmp(arch.s, "deepseek2") != 0)
        return fail(err, errlen, -ENOTSUP,
                    "%s: architecture '%s' is not supported (moestream runs 'deepseek2': "
                    "DeepSeek-V3/R1)",
                    path, arch.s);

    uint32_t key_len = 0, val_len = 0, key_mla = 0, val_mla = 0, head_kv = 0;
    if ((rc = key_u32(&k, "block_count", &hp->n_layer, true, 0)) ||
        (rc = key_u32(&k, "context_length", &hp->n_ctx_train, false, 4096)) ||
        (rc = key_u32(&k, "embedding_length", &hp->n_embd, true, 0)) ||
        (rc = key_u32(&k, "feed_forward_length", &hp->n_ff, false, 0)) ||
        (rc = key_u32(&k, "attention.head_count", &hp->n_head, true, 0)) ||
        (rc = key_u32(&k, "attention.head_count_kv", &head_kv, false, 0)) ||
        (rc = key_u32(&k, "leading_dense_block_count", &hp->n_dense_lead, false, 0)) ||
        (rc = key_u32(&k, "attention.q_lora_rank", &hp->q_lora, false, 0)) ||
        (rc = key_u32(&k, "attention.kv_lora_rank", &hp->kv_lora, true, 0)) ||
        (rc = key_u32(&k, "attention.key_length", &key_len, true, 0)) ||
        (rc = key_u32(&k, "attention.value_length", &val_len, true, 0)) ||
        (rc = key_u32(&k, "attention.key_length_mla", &key_mla, false, 0)) ||
        (rc = key_u32(&k, "attention.value_length_mla", &val_mla, false, 0)) ||
        (rc = key_u32(&k, "rope.dimension_count", &hp->qk_rope, true, 0)) ||
        (rc = key_u32(&k, "expert_feed_forward_length", &hp->n_ff_exp, false, 0)) ||
        (rc = key_u32(&k, "expert_count", &hp->n_expert, false, 0)) ||
        (rc = key_u32(&k, "expert_used_count", &hp->n_expert_used, false, 0)) ||
        (rc = key_u32(&k, "expert_shared_count", &hp->n_expert_shared, false, 0)) ||
        (rc = key_u32(&k, "expert_gating_func", &hp->gating, false, 0)) ||
        (rc = key_u32(&k, "expert_group_count", &hp->n_group, false, 0)) ||
        (rc = key_u32(&k, "expert_group_used_count", &hp->n_group_used, false, 0)) ||
        (rc = key_f32(&k, "attention.layer_norm_rms_epsilon", &hp->rms_eps, true, 0)) ||
        (rc = key_f32(&k, "expert_weights_scale", &hp->weights_scale, false, 0)) ||
        (rc = key_f32(&k, "rope.freq_base", &hp->rope_freq_base, false, 10000.0f)))
        return rc;
    (void)head_kv;

    bool wn = false;
    rc = gguf_get_bool(g, "deepseek2.expert_weights_norm", &wn, err, errlen);
    if (rc && rc != -ENOENT)
        return rc;
    hp->weights_norm = wn;

    /* The reference decides "MLA layout" iff both *_mla keys are present. */
    hp->is_mla = key_mla != 0 && val_mla != 0;
    uint32_t head_k = hp->is_mla ? key_mla : key_len;
    hp->v_head = hp->is_mla ? val_mla : val_len;
    if (head_k <= hp->qk_rope || hp->qk_rope % 2 != 0)
        return fail(err, errlen, -EBADMSG,
                    "%s: key length %u must exceed rope.dimension_count %u (which must be even)",
                    path, head_k, hp->qk_rope);
    hp->qk_nope = head_k - hp->qk_rope;

    if (hp->n_layer == 0 || hp->n_layer > 4096 || hp->n_embd == 0 || hp->n_head == 0 ||
        hp->kv_lora == 0 || hp->v_head == 0)
        return fail(err, errlen, -EBADMSG,
                    "%s: implausible hyperparameters (block_count %u, embedding_length %u, "
                    "head_count %u, kv_lora_rank %u, value length %u)",
                    path, hp->n_layer, hp->n_embd, hp->n_head, hp->kv_lora, hp->v_head);
    if (hp->n_dense_lead > hp->n_layer)
        return fail(err, errlen, -EBADMSG, "%s: leading_dense_block_count %u > block_count %u",
                    path, hp->n_dense_lead, hp->n_layer);
    if (hp->n_dense_lead < hp->n_layer) {
        if (hp->n_expert == 0 || hp->n_expert_used == 0 || hp->n_expert_used > hp->n_expert ||
            hp->n_ff_exp == 0)
            return fail(err, errlen, -EBADMSG,
                        "%s: MoE blocks need expert_count > 0, 0 < expert_used_count <= "
                        "expert_count and expert_feed_forward_length > 0 (got %u, %u, %u)",
                        path, hp->n_expert, hp->n_expert_used, hp->n_ff_exp);
        if (hp->n_expert > 65536)
            return fail(err, errlen, -EBADMSG, "%s: expert_count %u too large", path,
                        hp->n_expert);
    }
    if (hp->gating == 0) /* files from before the key: DeepSeek V2 used softmax */
        hp->gating = MODEL_GATING_SOFTMAX;
    if (hp->gating != MODEL_GATING_SOFTMAX && hp->gating != MODEL_GATING_SIGMOID)
        return fail(err, errlen, -ENOTSUP, "%s: expert_gating_func %u is not supported", path,
                    hp->gating);

    /* Routing groups (DEEPSEEK-FACTS 6.4). */
    hp->has_group_keys = hp->n_group > 1 && hp->n_group_used > 0;
    if (!hp->has_group_keys) {
        hp->n_group = 1;
        hp->n_group_used = 1;
    }
    if (o->expert_groups == -2 && !hp->has_group_keys && hp->n_expert % 8 == 0 &&
        hp->n_expert_used <= hp->n_expert / 2) {
        hp->n_group = 8;
        hp->n_group_used = 4;
    } else if (o->expert_groups == 0) {
        hp->n_group = 1;
        hp->n_group_used = 1;
    } else if (o->expert_groups > 0) {
        hp->n_group = (uint32_t)o->expert_groups;
        hp->n_group_used = (uint32_t)o->expert_groups_used;
    }
    if (hp->n_group > 1) {
        if (hp->n_group > 256 || hp->n_expert % hp->n_group != 0 || hp->n_group_used == 0 ||
            hp->n_group_used > hp->n_group ||
            (uint64_t)hp->n_group_used * (hp->n_expert / hp->n_group) < hp->n_expert_used ||
            hp->n_expert / hp->n_group < 2)
            return fail(err, errlen, -EINVAL,
                        "%s: expert groups %u:%u do not fit %u experts with %u used", path,
                        hp->n_group, hp->n_group_used, hp->n_expert, hp->n_expert_used);
    }

    /* RoPE scaling, mirroring the reference's defaults. */
    gguf_str st = {0};
    rc = gguf_get_str(g, "deepseek2.rope.scaling.type", &st, err, errlen);
    if (rc && rc != -ENOENT)
        return rc;
    bool has_type = rc == 0;
    hp->rope_scaling = MODEL_ROPE_NONE;
    float factor = 0.0f;
    if ((rc = key_f32(&k, "rope.scaling.factor", &factor, false, 0.0f)))
        return rc;
    if (has_type) {
        if (!strcmp(st.s, "yarn"))
            hp->rope_scaling = MODEL_ROPE_YARN;
        else if (!strcmp(st.s, "linear"))
            hp->rope_scaling = MODEL_ROPE_LINEAR;
        else if (strcmp(st.s, "none") != 0)
            return fail(err, errlen, -ENOTSUP, "%s: rope.scaling.type '%s' is not supported", path,
                        st.s);
    } else if (factor != 0.0f) {
        hp->rope_scaling = MODEL_ROPE_LINEAR;
    }
    if (!(factor >= 0.0f) || factor > 1e6f)
        return fail(err, errlen, -EBADMSG, "%s: rope.scaling.factor %g out of range", path,
                    (double)factor);
    hp->rope_freq_scale = factor == 0.0f ? 1.0f : 1.0f / factor;
    if (hp->rope_scaling == MODEL_ROPE_NONE)
        hp->rope_freq_scale = 1.0f;
    float log_mul = 0.0f;
    if ((rc = key_f32(&k, "rope.scaling.yarn_log_multiplier", &log_mul, false, 0.0f)))
        return rc;
    /* The converter stores 0.1 * mscale_all_dim; the reference divides it
     * back out at load ([TAG_DEEPSEEK2_YARN_LOG_MUL_FIX]). */
    hp->yarn_log_mul = log_mul / 0.1f;
    if ((rc = key_f32(&k, "rope.scaling.yarn_beta_fast", &hp->yarn_beta_fast, false, 32.0f)) ||
        (rc = key_f32(&k, "rope.scaling.yarn_beta_slow", &hp->yarn_beta_slow, false, 1.0f)) ||
        (rc = key_f32(&k, "rope.scaling.attn_factor", &hp->rope_attn_factor, false, 1.0f)) ||
        (rc = key_u32(&k, "rope.scaling.original_context_length", &hp->n_ctx_orig, false,
                      hp->n_ctx_train)))
        return rc;
    if (!(hp->rms_eps >= 0.0f) || !(hp->rope_freq_base > 0.0f))
        return fail(err, errlen, -EBADMSG, "%s: bad rms epsilon %g or rope.freq_base %g", path,
                    (double)hp->rms_eps, (double)hp->rope_freq_base);
    return 0;
}

/* ---- tensor binding ---- */

typedef struct binder {
    model *m;
    const char *path;
    char *err;
    size_t errlen;
    uint64_t arena_need;
    bool allow_rp; /* binding routed experts: the private types are allowed */
} binder;

static int bind(binder *b, mweight *w, const char *name, int ndims, int64_t n_in, int64_t n_out,
                int64_t n_mat, bool required)
{
    const gguf_tensor *t = gguf_find_tensor(b->m->gguf, name);
    memset(w, 0, sizeof *w);
    if (!t) {
        if (!required)
            return 0;
        return fail(b->err, b->errlen, -EBADMSG, "%s: missing tensor '%s' (expected shape {%lld, %lld%s})",
                    b->path, name, (long long)n_in, (long long)n_out, n_mat > 1 ? ", ..." : "");
    }
    int64_t want[4] = {n_in, ndims > 1 ? n_out : 1, ndims > 2 ? n_mat : 1, 1};
    bool ok = true;
    for (int i = 0; i < 4; i++)
        ok = ok && t->ne[i] == want[i];
    if (!ok)
        return fail(b->err, b->errlen, -EBADMSG,
                    "%s: tensor '%s' has shape {%lld, %lld, %lld, %lld}, expected {%lld, %lld, %lld, %lld}",
                    b->path, name, (long long)t->ne[0], (long long)t->ne[1], (long long)t->ne[2],
                    (long long)t->ne[3], (long long)want[0], (long long)want[1],
                    (long long)want[2], (long long)want[3]);
    const quant_type_info *ti = quant_info((int)t->type);
    if (!ti || !ti->in_files)
        return fail(b->err, b->errlen, -ENOTSUP, "%s: tensor '%s' has unsupported type %u",
                    b->path, name, t->type);
    const int plain = quant_private_plain((int)t->type);
    if (plain >= 0 && !b->allow_rp)
        return fail(b->err, b->errlen, -EBADMSG, "%s: tensor '%s' has the repacked type %s, which only "
                    "routed-expert tensors (ffn_*_exps) may have", b->path, name, ti->name);
    w->name = t->name;
    w->type = plain >= 0 ? plain : (int)t->type;
    w->n_in = want[0];
    w->n_out = want[1];
    w->n_mat = want[2];
    w->row_bytes = quant_row_bytes(w->type, w->n_in);
    w->mat_bytes = w->row_bytes * (size_t)w->n_out;
    w->part = t->part;
    w->offset = t->offset;
    w->file_rp = plain >= 0;
    w->file_mat_bytes = w->file_rp ? repack_bytes(plain, w->n_out, w->n_in) : w->mat_bytes;
    if (w->file_rp && (w->n_out % REPACK_ROWS || !w->file_mat_bytes))
        return fail(b->err, b->errlen, -EBADMSG, "%s: tensor '%s' of type %s has %lld rows of %lld: the "
                    "repacked layout needs whole groups of %d rows of at most %d blocks", b->path, name,
                    ti->name, (long long)w->n_out, (long long)w->n_in, REPACK_ROWS, REPACK_MAX_BLOCKS);
    if (w->row_bytes == 0 || (uint64_t)w->file_mat_bytes * (uint64_t)w->n_mat != t->nbytes)
        return fail(b->err, b->errlen, -EBADMSG, "%s: tensor '%s': %llu bytes do not match its shape",
                    b->path, name, (unsigned long long)t->nbytes);
    return 0;
}

/* 1-D F32 vector of n elements. */
static int bind_vec(binder *b, const float **out, mweight *w, const char *name, int64_t n,
                    bool required)
{
    int rc = bind(b, w, name, 1, n, 1, 1, required);
    if (rc || !w->name)
        return rc;
    if (w->type != MS_TYPE_F32)
        return fail(b->err, b->errlen, -ENOTSUP, "%s: tensor '%s' must be F32, is %s", b->path,
                    name, quant_info(w->type)->name);
    *out = NULL; /* set after the arena is loaded */
    return 0;
}

/* All weights in load order, so they can be read into the arena in one pass. */
typedef struct wlist {
    mweight **w;
    const float ***vec; /* non-NULL for F32 vectors: where to store the pointer */
    size_t n, cap;
} wlist;

static int wlist_add(wlist *l, mweight *w, const float **vec)
{
    if (!w->name)
        return 0;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 256;
        mweight **nw = realloc(l->w, cap * sizeof *nw);
        if (!nw)
            return -ENOMEM;
        l->w = nw;
        const float ***nv = realloc(l->vec, cap * sizeof *nv);
        if (!nv)
            return -ENOMEM;
        l->vec = nv;
        l->cap = cap;
    }
    l->w[l->n] = w;
    l->vec[l->n] = vec;
    l->n++;
    return 0;
}

typedef struct layer_vecs {
    mweight attn_norm, q_a_norm, kv_a_norm, ffn_norm, exp_probs_b;
} layer_vecs;

static int bind_layer(binder *b, int il, mlayer *L, layer_vecs *V, wlist *l, bool load_experts)
{
    const model_hparams *hp = &b->m->hp;
    char nm[96];
    int rc;
    const int64_t E = hp->n_embd, H = hp->n_head, hk = model_head_k(hp);
#define NAME(s) (snprintf(nm, sizeof nm, "blk.%d." s, il), nm)
#define TRY(x)                                                                                     \
    do {                                                                                           \
        if ((rc = (x)))                                                                            \
            return rc;                                                                             \
    } while (0)
    TRY(bind_vec(b, &L->attn_norm, &V->attn_norm, NAME("attn_norm.weight"), E, true));
    TRY(wlist_add(l, &V->attn_norm, &L->attn_norm));
    if (hp->q_lora) {
        TRY(bind_vec(b, &L->q_a_norm, &V->q_a_norm, NAME("attn_q_a_norm.weight"), hp->q_lora, true));
        TRY(wlist_add(l, &V->q_a_norm, &L->q_a_norm));
        TRY(bind(b, &L->wq_a, NAME("attn_q_a.weight"), 2, E, hp->q_lora, 1, true));
        TRY(bind(b, &L->wq_b, NAME("attn_q_b.weight"), 2, hp->q_lora, H * hk, 1, true));
    } else {
        TRY(bind(b, &L->wq, NAME("attn_q.weight"), 2, E, H * hk, 1, true));
    }
    TRY(bind_vec(b, &L->kv_a_norm, &V->kv_a_norm, NAME("attn_kv_a_norm.weight"), hp->kv_lora, true));
    TRY(wlist_add(l, &V->kv_a_norm, &L->kv_a_norm));
    TRY(bind(b, &L->wkv_a, NAME("attn_kv_a_mqa.weight"), 2, E, hp->kv_lora + hp->qk_rope, 1, true));
    if (hp->is_mla) {
        TRY(bind(b, &L->wk_b, NAME("attn_k_b.weight"), 3, hp->qk_nope, hp->kv_lora, H, true));
        TRY(bind(b, &L->wv_b, NAME("attn_v_b.weight"), 3, hp->kv_lora, hp->v_head, H, true));
    } else {
        TRY(bind(b, &L->wkv_b, NAME("attn_kv_b.weight"), 2, hp->kv_lora,
                 H * (hp->qk_nope + hp->v_head), 1, true));
    }
    TRY(bind(b, &L->wo, NAME("attn_output.weight"), 2, H * hp->v_head, E, 1, true));
    TRY(bind_vec(b, &L->ffn_norm, &V->ffn_norm, NAME("ffn_norm.weight"), E, true));
    TRY(wlist_add(l, &V->ffn_norm, &L->ffn_norm));
    TRY(wlist_add(l, &L->wq_a, NULL));
    TRY(wlist_add(l, &L->wq_b, NULL));
    TRY(wlist_add(l, &L->wq, NULL));
    TRY(wlist_add(l, &L->wkv_a, NULL));
    TRY(wlist_add(l, &L->wkv_b, NULL));
    TRY(wlist_add(l, &L->wk_b, NULL));
    TRY(wlist_add(l, &L->wv_b, NULL));
    TRY(wlist_add(l, &L->wo, NULL));

    L->is_moe = (uint32_t)il >= hp->n_dense_lead;
    if (!L->is_moe) {
        if (hp->n_ff == 0)
            return fail(b->err, b->errlen, -EBADMSG, "%s: dense block %d but feed_forward_length is 0",
                        b->path, il);
        TRY(bind(b, &L->ffn_gate, NAME("ffn_gate.weight"), 2, E, hp->n_ff, 1, true));
        TRY(bind(b, &L->ffn_up, NAME("ffn_up.weight"), 2, E, hp->n_ff, 1, true));
        TRY(bind(b, &L->ffn_down, NAME("ffn_down.weight"), 2, hp->n_ff, E, 1, true));
        TRY(wlist_add(l, &L->ffn_gate, NULL));
        TRY(wlist_add(l, &L->ffn_up, NULL));
        TRY(wlist_add(l, &L->ffn_down, NULL));
        return 0;
    }
    const int64_t X = hp->n_expert, F = hp->n_ff_exp, S = (int64_t)hp->n_ff_exp * hp->n_expert_shared;
    TRY(bind(b, &L->gate_inp, NAME("ffn_gate_inp.weight"), 2, E, X, 1, true));
    TRY(bind_vec(b, &L->exp_probs_b, &V->exp_probs_b, NAME("exp_probs_b.bias"), X, false));
    TRY(wlist_add(l, &V->exp_probs_b, &L->exp_probs_b));
    b->allow_rp = true;
    TRY(bind(b, &L->gate_exps, NAME("ffn_gate_exps.weight"), 3, E, F, X, true));
    TRY(bind(b, &L->up_exps, NAME("ffn_up_exps.weight"), 3, E, F, X, true));
    TRY(bind(b, &L->down_exps, NAME("ffn_down_exps.weight"), 3, F, E, X, true));
    b->allow_rp = false;
    if (S > 0) {
        TRY(bind(b, &L->gate_sh, NAME("ffn_gate_shexp.weight"), 2, E, S, 1, true));
        TRY(bind(b, &L->up_sh, NAME("ffn_up_shexp.weight"), 2, E, S, 1, true));
        TRY(bind(b, &L->down_sh, NAME("ffn_down_shexp.weight"), 2, S, E, 1, true));
    }
    TRY(wlist_add(l, &L->gate_inp, NULL));
    TRY(wlist_add(l, &L->gate_sh, NULL));
    TRY(wlist_add(l, &L->up_sh, NULL));
    TRY(wlist_add(l, &L->down_sh, NULL));
    for (int k = 0; k < 3; k++) {
        mweight *w = k == 0 ? &L->gate_exps : k == 1 ? &L->up_exps : &L->down_exps;
        /* A repacked file's experts stay repacked where the policy keeps
         * experts repacked, else are unpacked as they are read.  The plain
         * experts of such a file (a type without a layout) stay plain in
         * every mode, so that every expert with rp_mat_bytes comes repacked
         * from every source (the pager's expert_src.repacked is one flag). */
        if (w->file_rp)
            w->rp_mat_bytes = repack_use(w->type, w->n_in) ? w->file_mat_bytes : 0;
        else if (!b->m->gguf->repack_version && repack_use(w->type, w->n_in))
            w->rp_mat_bytes = repack_bytes(w->type, w->n_out, w->n_in);
        b->m->expert_bytes += mweight_stride(w) * (uint64_t)X;
    }
    if (load_experts) {
        TRY(wlist_add(l, &L->gate_exps, NULL));
        TRY(wlist_add(l, &L->up_exps, NULL));
        TRY(wlist_add(l, &L->down_exps, NULL));
    }
    return 0;
#undef NAME
#undef TRY
}

void model_opts_default(model_opts *o)
{
    memset(o, 0, sizeof *o);
    o->expert_groups = -1;
    o->load_experts = true;
}

/* Expert stack w read matrix by matrix into dst in the repacked layout
 * (w->rp_mat_bytes per matrix), through one matrix of scratch. */
static int read_repacked(model *m, const mweight *w, uint8_t *dst, char *err, size_t errlen)
{
    uint8_t *tmp = malloc(w->mat_bytes);
    if (!tmp)
        return fail(err, errlen, -ENOMEM, "out of memory repacking %s", w->name);
    int rc = 0;
    for (int64_t e = 0; e < w->n_mat && !rc; e++) {
        rc = gguf_read(m->gguf, w->part, w->offset + (uint64_t)e * w->mat_bytes, tmp, w->mat_bytes, err, errlen);
        char rerr[256];
        if (!rc && (rc = repack_rows(w->type, tmp, w->row_bytes, w->n_out, w->n_in, dst + (size_t)e * w->rp_mat_bytes,
                                     rerr, sizeof rerr)))
            rc = fail(err, errlen, rc, "%s: %s", w->name, rerr);
    }
    free(tmp);
    return rc;
}

/* Expert stack w of a repacked file (w->file_rp) read matrix by matrix into
 * dst in the plain layout (w->mat_bytes per matrix), through one matrix of
 * scratch: what the file held before moestream repack, byte for byte. */
static int read_unpacked(model *m, const mweight *w, uint8_t *dst, char *err, size_t errlen)
{
    uint8_t *tmp = malloc(w->file_mat_bytes);
    if (!tmp)
        return fail(err, errlen, -ENOMEM, "out of memory unpacking %s", w->name);
    int rc = 0;
    for (int64_t e = 0; e < w->n_mat && !rc; e++) {
        rc = gguf_read(m->gguf, w->part, w->offset + (uint64_t)e * w->file_mat_bytes, tmp, w->file_mat_bytes, err,
                       errlen);
        if (!rc)
            repack_unpack_rows(w->type, tmp, w->n_in, w->n_out, dst + (size_t)e * w->mat_bytes, w->row_bytes);
    }
    free(tmp);
    return rc;
}

/* Expert stack w into dst as the model keeps it (mweight_stride(w) per
 * matrix): converted from or to the repacked layout where the file's and
 * the kept layout differ, else one large read. */
static int read_experts(model *m, const mweight *w, uint8_t *dst, char *err, size_t errlen)
{
    if (w->rp_mat_bytes && !w->file_rp)
        return read_repacked(m, w, dst, err, errlen);
    if (w->file_rp && !w->rp_mat_bytes)
        return read_unpacked(m, w, dst, err, errlen);
    return gguf_read(m->gguf, w->part, w->offset, dst, mweight_stride(w) * (size_t)w->n_mat, err, errlen);
}

int model_load(model **out, const char *path, const model_opts *o, char *err, size_t errlen)
{
    model_opts dflt;
    if (!o) {
        model_opts_default(&dflt);
        o = &dflt;
    }
    *out = NULL;
    model *m = calloc(1, sizeof *m);
    if (!m)
        return fail(err, errlen, -ENOMEM, "out of memory");
    int rc = gguf_open(&m->gguf, path, err, errlen);
    if (rc)
        goto out;
    if ((rc = read_hparams(m, o, path, err, errlen)))
        goto out;
    model_hparams *hp = &m->hp;
    binder b = {m, path, err, errlen, 0, false};
    wlist l = {0};
    layer_vecs *vecs = NULL;
    mweight outnorm_w;

    /* token_embd fixes n_vocab: the tensor is what the forward pass indexes. */
    const gguf_tensor *te = gguf_find_tensor(m->gguf, "token_embd.weight");
    if (!te || te->n_dims != 2) {
        rc = fail(err, errlen, -EBADMSG, "%s: missing or non-2-D tensor 'token_embd.weight'", path);
        goto out;
    }
    hp->n_vocab = (uint32_t)te->ne[1];
    uint32_t vs = 0;
    char kerr[8];
    if (gguf_get_u32(m->gguf, "deepseek2.vocab_size", &vs, kerr, sizeof kerr) == 0 &&
        vs != hp->n_vocab) {
        rc = fail(err, errlen, -EBADMSG, "%s: deepseek2.vocab_size %u but token_embd has %lld rows",
                  path, vs, (long long)te->ne[1]);
        goto out;
    }
    m->layers = calloc(hp->n_layer, sizeof *m->layers);
    vecs = calloc(hp->n_layer, sizeof *vecs);
    if (!m->layers || !vecs) {
        rc = fail(err, errlen, -ENOMEM, "out of memory");
        goto out_l;
    }
    if ((rc = bind(&b, &m->tok_embd, "token_embd.weight", 2, hp->n_embd, hp->n_vocab, 1, true)) ||
        (rc = bind_vec(&b, &m->output_norm, &outnorm_w, "output_norm.weight", hp->n_embd, true)) ||
        (rc = bind(&b, &m->output, "output.weight", 2, hp->n_embd, hp->n_vocab, 1, false)))
        goto out_l;
    if (!m->output.name)
        m->output = m->tok_embd; /* tied embeddings */
    if ((rc = wlist_add(&l, &m->tok_embd, NULL)) || (rc = wlist_add(&l, &outnorm_w, &m->output_norm)))
        goto out_l;
    if (m->output.name != m->tok_embd.name && (rc = wlist_add(&l, &m->output, NULL)))
        goto out_l;
    for (uint32_t il = 0; il < hp->n_layer; il++)
        if ((rc = bind_layer(&b, (int)il, &m->layers[il], &vecs[il], &l, o->load_experts)))
            goto out_l;

    /* One arena.  Each tensor gets a region of whole 4 KiB blocks that its
     * O_DIRECT read lands in (bulkread.h: the aligned superset of its file
     * range) and is served from a READ_ALIGN-aligned point in it; expert
     * stacks converted to or from the repacked layout on the way in are
     * written, not read there, and need only their own bytes. */
    uint64_t total = 0;
    size_t n_plain = 0;
    for (size_t i = 0; i < l.n; i++) {
        const mweight *w = l.w[i];
        const uint64_t n = mweight_stride(w) * (uint64_t)w->n_mat;
        const bool convert = (w->rp_mat_bytes != 0) != w->file_rp;
        total += ARENA_BLOCK_UP(convert ? n : bulkread_region_bytes(w->offset, n));
        n_plain += !convert;
    }
    m->arena_bytes = total;
    if (o->bind_only) {
        m->resident_bytes = total - (o->load_experts ? m->expert_bytes : 0);
        rc = 0;
        goto out_l;
    }
    /* on reserved huge pages when there are enough (hugemem.h: on a VM
     * that takes freed memory back, they fill at memory speed where fresh
     * pages come at 0.4 GiB/s, slower than the disk) */
    if (hugemem_alloc(&m->arena_mem, total ? total : ARENA_BLOCK, true) == 0)
        m->arena = m->arena_mem.base;
    m->ld_r = calloc(n_plain ? n_plain : 1, sizeof *m->ld_r);
    m->ld_rp = calloc(l.n - n_plain ? l.n - n_plain : 1, sizeof *m->ld_rp);
    if (!m->arena || !m->ld_r || !m->ld_rp) {
        rc = fail(err, errlen, -ENOMEM, "%s: cannot allocate %.2f GiB for resident weights", path,
                  (double)total / 1073741824.0);
        goto out_l;
    }
    m->ld_progress = o->progress;
    m->ld_progress_ud = o->progress_ud;
    m->ld_total = total;
    uint64_t pos = 0;
    for (size_t i = 0; i < l.n; i++) {
        mweight *w = l.w[i];
        const uint64_t n = mweight_stride(w) * (uint64_t)w->n_mat;
        if ((w->rp_mat_bytes != 0) != w->file_rp) { /* converted on the way in */
            m->ld_rp[m->ld_nrp++] = w;
            w->data = m->arena + pos;
            pos += ARENA_BLOCK_UP(n);
        } else {
            m->ld_r[m->ld_nr++] = (bulkread_range){w->part, w->offset, n, m->arena + pos};
            w->data = m->arena + pos + bulkread_data_off(w->offset, READ_ALIGN);
            pos += ARENA_BLOCK_UP(bulkread_region_bytes(w->offset, n));
        }
        if (l.vec[i])
            *l.vec[i] = (const float *)w->data;
    }
    if (m->output.name == m->tok_embd.name)
        m->output = m->tok_embd;
    if (!o->defer_read && (rc = model_read_resident(m, NULL, err, errlen)))
        goto out_l;
    m->resident_bytes = total - (o->load_experts ? m->expert_bytes : 0);
    rc = 0;
out_l:
    free(l.w);
    free(l.vec);
    free(vecs);
out:
    if (rc) {
        model_free(m);
        return rc;
    }
    *out = m;
    return 0;
}

/* Resident Q4_K matrices of whole 16-row groups into that layout
 * (simd/repack_q4k.h), in place, where the kernel table has its products
 * and --repack is not off: several columns then run without a per-call
 * transpose or per-row lane sums (same bits).  Only weights that no code
 * reads but matmul.c's products: not token_embd (rows are looked up), nor
 * an output head tied to it, nor attn_kv_b / attn_k_b / attn_v_b (the
 * attention dequantizes or slices them). */
static int repack_one(model *m, mweight *w, char *err, size_t errlen)
{
    if (!w->data || w->r16 || w->type != MS_TYPE_Q4_K || w->n_mat != 1 || !repack_q4k_fits(w->n_out, w->n_in))
        return 0;
    const int rc = repack_q4k_matrix((void *)w->data, w->n_out, w->n_in);
    if (rc)
        return fail(err, errlen, rc, "%s: cannot convert to the 16-row layout", w->name);
    w->r16 = true;
    m->r16_mats++;
    m->r16_bytes += w->mat_bytes;
    return 0;
}

static int repack_dense(model *m, char *err, size_t errlen)
{
    if (!kern_get()->q4k_r16_mul_mat || repack_mode() == REPACK_OFF)
        return 0;
    int rc = 0;
    for (uint32_t il = 0; il < m->hp.n_layer && !rc; il++) {
        mlayer *L = &m->layers[il];
        mweight *list[] = {&L->wq_a,   &L->wq_b,     &L->wq,       &L->wkv_a,   &L->wo,    &L->ffn_gate,
                           &L->ffn_up, &L->ffn_down, &L->gate_inp, &L->gate_sh, &L->up_sh, &L->down_sh};
        for (size_t i = 0; i < sizeof list / sizeof list[0] && !rc; i++)
            rc = repack_one(m, list[i], err, errlen);
    }
    if (!rc && m->output.data != m->tok_embd.data)
        rc = repack_one(m, &m->output, err, errlen);
    return rc;
}

static void ld_progress(void *ud, uint64_t done, uint64_t total)
{
    (void)total;
    const model *m = ud;
    m->ld_progress(m->ld_progress_ud, done, m->ld_total);
}

int model_read_resident(model *m, bulkread_stats *st, char *err, size_t errlen)
{
    bulkread_stats own;
    if (!st)
        st = &own;
    memset(st, 0, sizeof *st);
    if (!m->ld_r)
        return 0; /* read already, or nothing laid out */
    const gguf_file *g = m->gguf;
    const char **paths = malloc((g->n_parts ? g->n_parts : 1) * sizeof *paths);
    if (!paths)
        return fail(err, errlen, -ENOMEM, "out of memory");
    for (uint32_t i = 0; i < g->n_parts; i++)
        paths[i] = g->parts[i].path;
    bulkread_opts bo;
    bulkread_opts_default(&bo);
    bo.align = READ_ALIGN;
    bo.no_uring = m->ld_no_uring;
    if (m->ld_progress) {
        bo.progress = ld_progress;
        bo.progress_ud = m;
    }
    char rerr[512] = "";
    int rc = bulkread_run(paths, (int)g->n_parts, m->ld_r, m->ld_nr, &bo, st, rerr, sizeof rerr);
    free(paths);
    if (rc)
        return fail(err, errlen, rc, "loading the resident weights: %s", rerr);
    uint64_t done = st->wanted;
    for (size_t i = 0; i < m->ld_nrp; i++) {
        mweight *w = m->ld_rp[i];
        if ((rc = read_experts(m, w, (uint8_t *)w->data, err, errlen)))
            return rc;
        done += mweight_stride(w) * (uint64_t)w->n_mat;
        if (m->ld_progress)
            m->ld_progress(m->ld_progress_ud, done, m->ld_total);
    }
    free(m->ld_r);
    free(m->ld_rp);
    m->ld_r = NULL;
    m->ld_rp = NULL;
    return repack_dense(m, err, errlen);
}

static mweight *expert_mat(mlayer *L, int k)
{
    return k == 0 ? &L->gate_exps : k == 1 ? &L->up_exps : &L->down_exps;
}

int model_load_experts(model *m, char *err, size_t errlen)
{
    if (m->expert_arena || m->maps)
        return 0;
    /* reserved huge pages where there are enough, as the resident arena */
    if (hugemem_alloc(&m->expert_mem, m->expert_bytes ? m->expert_bytes : ARENA_ALIGN, true) == 0)
        m->expert_arena = m->expert_mem.base;
    if (!m->expert_arena)
        return fail(err, errlen, -ENOMEM, "cannot allocate %.2f GiB for the routed experts",
                    (double)m->expert_bytes / 1073741824.0);
    uint64_t pos = 0;
    for (uint32_t il = 0; il < m->hp.n_layer; il++)
        for (int k = 0; k < 3 && m->layers[il].is_moe; k++) {
            mweight *w = expert_mat(&m->layers[il], k);
            uint64_t n = mweight_stride(w) * (uint64_t)w->n_mat;
            int rc = read_experts(m, w, m->expert_arena + pos, err, errlen);
            if (rc)
                return rc;
            w->data = m->expert_arena + pos;
            pos += n;
        }
    return 0;
}

/* ---- mmap mode: a file truncated under its mapping ----
 * A read past the new end of a mapped file raises SIGBUS; there is no
 * error return to give, so the handler names the file and exits with 1
 * (a clean error, not a crash).  Async-signal-safe: reads a table filled
 * before the handler is installed, write(2), _exit. */

#define MAP_GUARD_MAX 64
static struct {
    const uint8_t *base;
    size_t len;
    char path[256];
} map_guard[MAP_GUARD_MAX];
static int map_guard_n;


static void on_sigbus(int sig, siginfo_t *si, void *uc)
{
    (void)sig;
    (void)uc;
    /* worker threads fault together: the first one speaks (in one write,
     * so the line is not interleaved) and exits; the others wait for it */
    static atomic_flag once = ATOMIC_FLAG_INIT;
    if (atomic_flag_test_and_set(&once))
        for (;;)
            pause();
    const uint8_t *a = si->si_addr;
    const char *path = "(a mapped model part)";
    for (int i = 0; i < map_guard_n; i++)
        if (a >= map_guard[i].base && a < map_guard[i].base + map_guard[i].len)
            path = map_guard[i].path;
    char msg[512];
    size_t n = 0;
    const char *parts[] = {"moestream: model file ", path,
                           " changed on disk while mapped (truncated?): cannot read its weights; stopping\n"};
    for (size_t k = 0; k < 3; k++)
        for (const char *t = parts[k]; *t && n < sizeof msg; t++)
            msg[n++] = *t;
    (void)!write(2, msg, n);
    _exit(1);
}

static void map_guard_add(const void *base, size_t len, const char *path)
{
    if (map_guard_n >= MAP_GUARD_MAX)
        return;
    map_guard[map_guard_n].base = base;
    map_guard[map_guard_n].len = len;
    snprintf(map_guard[map_guard_n].path, sizeof map_guard[map_guard_n].path, "%s", path);
    map_guard_n++;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_sigbus;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGBUS, &sa, NULL);
}

/* A range unmapped by model_free no longer names its file. */
static void map_guard_remove(const void *base)
{
    for (int i = 0; i < map_guard_n; i++)
        if (map_guard[i].base == base)
            map_guard[i].len = 0;
}

int model_map_experts(model *m, char *err, size_t errlen)
{
    const gguf_file *g = m->gguf;
    m->maps = calloc(g->n_parts, sizeof *m->maps);
    m->map_len = calloc(g->n_parts, sizeof *m->map_len);
    if (!m->maps || !m->map_len)
        return fail(err, errlen, -ENOMEM, "out of memory");
    for (uint32_t i = 0; i < g->n_parts; i++) {
        void *p = mmap(NULL, g->parts[i].size, PROT_READ, MAP_SHARED, g->parts[i].fd, 0);
        if (p == MAP_FAILED)
            return fail(err, errlen, -errno, "%s: mmap: %s", g->parts[i].path, strerror(errno));
        m->maps[i] = p;
        m->map_len[i] = g->parts[i].size;
        map_guard_add(p, g->parts[i].size, g->parts[i].path);
    }
    for (uint32_t il = 0; il < m->hp.n_layer; il++)
        for (int k = 0; k < 3 && m->layers[il].is_moe; k++) {
            mweight *w = expert_mat(&m->layers[il], k);
            w->data = (const uint8_t *)m->maps[w->part] + w->offset;
            w->rp_mat_bytes = w->file_rp ? w->file_mat_bytes : 0; /* the file's bytes, as stored */
        }
    return 0;
}

void model_free(model *m)
{
    if (!m)
        return;
    hugemem_free(&m->expert_mem);
    for (uint32_t i = 0; m->maps && i < m->gguf->n_parts; i++)
        if (m->maps[i]) {
            map_guard_remove(m->maps[i]);
            munmap(m->maps[i], m->map_len[i]);
        }
    free(m->maps);
    free(m->map_len);
    free(m->ld_r);
    free(m->ld_rp);
    hugemem_free(&m->arena_mem);
    free(m->layers);
    gguf_close(m->gguf);
    free(m);
}
