/* forward.c - the deepseek2 forward pass (DEEPSEEK-FACTS section 6).
 *
 * Numerics follow the reference engine operation by operation, because the
 * tiny golden models are chaotic (a change below quantization noise flips
 * expert choices):
 *  - activations are quantized exactly where the reference quantizes them
 *    (matmul.c), and nowhere else;
 *  - RMSNorm sums squares in double, as ggml does;
 *  - RoPE/YaRN factors are computed with the same float expressions;
 *  - attention runs in the absorbed form.  For legacy attn_kv_b files the
 *    reference decompresses K/V per head from Qact(c), so the cache holds
 *    deq(Qact(c)); q~ = W_kb^T q_nope and o = W_vb obar use dequantized kv_b
 *    rows against float vectors (no second quantization): the same math,
 *    other rounding.  fwd_opts.attn_mha instead decompresses K/V per head as
 *    the reference does (exact against it, memory-heavy).  Split-form files
 *    (attn_k_b/attn_v_b) quantize q_nope and obar by those tensors' types.
 *  - RoPE's cos/sin table and rotation, the scores, softmax and the
 *    weighted sums of the decompressed path use the reference's float
 *    expressions including the FMAs its -ffp-contract=fast build forms.
 *  - expert outputs are combined in selection order (highest score first),
 *    whatever order they were computed in, so neither prefill grouping nor
 *    the expert cache can change a result.
 * Invariant: nothing is allocated after fwd_create. */
#include "forward.h"

#include <errno.h>
#include <math.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blas.h"
#include "kernels.h"
#include "matmul.h"
#include "quant.h"
#include "quantize_chunk.h"

/* One sequence's cache: everything that outlives an evaluation.  The
 * scratch in fwd_state is shared by every sequence evaluated through it. */
struct fwd_kv {
    const model *m;
    int n_ctx, cache_type, n_kv_pad;
    bool mha;
    int n_past;
    /* latent cache: layer il, position p at lat + (il*n_ctx + p)*lat_row */
    uint8_t *lat;
    float *pe;          /* (n_layer, n_ctx, qk_rope) roped k_pe, F32 */
    float *kmha;        /* (n_layer, n_ctx, n_head, qk_nope + qk_rope) K rows (mha) */
    float *vmha;        /* (n_layer, n_head, v_head, n_kv_pad) V, transposed (mha) */
    size_t bytes;
};

/* Heads per group of the legacy absorbed attention (attn_group_legacy):
 * fixed, not per thread count, so a sequence's products keep their shapes
 * whatever the pool; 16 leaves 8 groups of R1's 128 heads to share out. */
enum { LEGACY_HEAD_GROUP = 16 };

/* One sequence's part of a legacy absorbed attention job (attn_legacy_job):
 * its rows of the step and its cache as the heads read them. */
struct attn_seq {
    int n_tok, n_past;
    float *q, *qt, *obar, *ao; /* its first row in s->q, s->qt, s->obar, s->ao */
    const float *lat;          /* (n_past + n_tok, kv_lora) */
    const float *pe;           /* (n_past + n_tok, qk_rope) */
};

struct fwd_state {
    const model *m;
    fwd_opts o;
    int nth;
    fwd_kv *kv;         /* the sequence evaluated now: own_kv or one bound by fwd_bind */
    fwd_kv *own_kv;     /* fwd_create's own sequence (NULL for fwd_scratch_create) */
    size_t lat_row;     /* bytes per cached latent (kv_lora in cache_type) */
    bool mha;           /* legacy file in decompressed mode (fwd_opts.attn_mha) */
    float *kvb;         /* (R, n_head * (qk_nope + v_head)) kv_b output */
    /* The rows of the evaluation in progress: sequence i owns rows
     * [seg[i].row0, seg[i].row0 + seg[i].n).  R = rows = n_batch + n_seqs - 1
     * sizes every per-row buffer; B = n_batch the per-sequence attention
     * scratch (one sequence's chunk at a time). */
    int rows;
    struct fwd_seg { fwd_kv *kv; int row0, n; } *seg; /* (n_seqs) */
    int n_seg;
    int32_t *row_pos;   /* (R) each row's position in its sequence */
    int32_t *row_tok;   /* (R) fwd_step's tokens, gathered */
    float *logit_rows;  /* (n_seqs, n_vocab) fwd_step's logits, n_seqs > 1 only */
    int n_kv_pad;       /* n_ctx rounded up to 64: softmax weights past the
                         * causal end are zeros, as in the reference's padded
                         * KV window */
    float *lat_f32;     /* (n_ctx, kv_lora) dequantized view for non-F32 caches;
                         * the legacy absorbed path packs the views of
                         * several sequences in it while their positions fit */
    struct attn_seq *aseq; /* (n_seqs) the step's sequences (legacy absorbed) */
    /* per-step activations, R rows */
    float *x, *h, *qa, *q, *kva, *qt, *obar, *ao, *tmp, *g, *u, *router, *moe, *slots;
    void *qbuf;         /* quantized activations, B rows of the widest */
    size_t qbuf_bytes;
    /* MoE bookkeeping */
    int32_t *sel;       /* (B, n_used) */
    float *selw;        /* (B, n_used) */
    int32_t *etok;      /* tokens per expert (B*n_used) */
    int32_t *eslot;
    int32_t *ecount, *estart; /* (n_expert) */
    int32_t *act;       /* active expert ids of a chunk (n_expert) */
    uint8_t *edone;     /* per active expert of a group: computed */
    uint8_t *pmask;     /* (n_expert) pool_routing: in memory now */
    void *uq;           /* h2 quantized for up_exps when its act type differs */
    const uint8_t **gp, **up, **dp; /* their matrices (n_expert) */
    float *probs, *score; /* routing scratch (n_expert) */
    void *egather;      /* gathered quantized rows: gate's R rows, then up's R rows */
    int32_t *ebatch;    /* (2, n_expert) an expert batch's members, their first pair row */
    float *eg, *eu, *ey;
    void *eq;
    /* per-thread attention scratch */
    float *th_scores;   /* (nth, sc_rows, n_kv_pad) softmax weights of a head's tokens
                         * (legacy absorbed decode: of a head group, one row a head) */
    int sc_rows;        /* max(B, LEGACY_HEAD_GROUP) */
    float *th_qcat;     /* (nth, B, kv_lora + qk_rope) [q~ | q_pe] (split form) */
    float *kcat;        /* (n_ctx, kv_lora + qk_rope) [c | k_pe] of the layer (split form) */
    float *vlat;        /* (kv_lora, n_kv_pad) the layer's latents transposed (split form) */
    float *th_w;        /* (nth, max(qk_nope, v_head), kv_lora) one head's kv_b rows (legacy absorbed) */
    uint8_t *th_q;      /* (nth, th_q_bytes) */
    size_t th_q_bytes;
    /* RoPE tables for the current chunk: (B, qk_rope) cos/sin interleaved */
    float *rope;
    float kq_scale;
    float rope_mscale;
    float corr_dims[2];
    float theta_scale;
    float ext_factor;
    size_t bytes;
};

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

void fwd_opts_default(fwd_opts *o)
{
    memset(o, 0, sizeof *o);
    o->n_ctx = 4096;
    o->cache_type = FWD_CACHE_F32;
    o->n_batch = 64;
}

static int fwd_cache_quant_type(int t);

/* Hands a product's input rows to fwd_opts.on_matmul (imatrix). */
static void mm_seen(const fwd_state *s, const mweight *w, int expert, int n, const float *x,
                    size_t ld, const int32_t *gather, const int32_t *tok, const int32_t *slot)
{
    if (!s->o.on_matmul)
        return;
    const fwd_mm_in in = {w, expert, n, x, ld, gather, tok, slot, s->kv->n_past};
    s->o.on_matmul(s->o.matmul_ud, &in);
}

/* ---- small float ops, with the reference's operation order ---- */

static void rmsnorm(float *y, const float *x, const float *w, int64_t n, float eps)
{
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++)
        sum += (double)(x[i] * x[i]);
    const float mean = (float)(sum / (double)n);
    const float scale = 1.0f / sqrtf(mean + eps);
    for (int64_t i = 0; i < n; i++)
        y[i] = (x[i] * scale) * w[i];
}

/* x -> deq(Qact(x)) for activation type at: the value a product with a weight
 * of that activation type actually sees. */
static void act_roundtrip(int at, const float *x, float *y, int64_t n, void *scratch)
{
    if (at == MS_TYPE_F32) {
        if (y != x)
            memcpy(y, x, (size_t)n * sizeof *y);
        return;
    }
    kern_get()->quantize[at](x, scratch, n);
    quant_dequantize_row(at, scratch, y, n);
}

/* ---- RoPE / YaRN (DEEPSEEK-FACTS 6.2-6.3; float expressions as ggml) ---- */

static float corr_dim(int n_dims, int n_ctx_orig, float n_rot, float base)
{
    return (float)n_dims * logf((float)n_ctx_orig / (n_rot * 2 * (float)M_PI)) / (2 * logf(base));
}

static void rope_setup(fwd_state *s)
{
    const model_hparams *hp = &s->m->hp;
    const float freq_scale = hp->rope_freq_scale;
    const bool yarn = hp->rope_scaling == MODEL_ROPE_YARN;
    s->ext_factor = yarn ? 1.0f : 0.0f;
    /* The context's attn_factor (llama-context.cpp), then the graph's
     * kq_scale pre-scaling (models/deepseek2.cpp). */
    float attn_factor = 1.0f;
    if (s->ext_factor != 0.0f) {
        const float factor = 1.0f / freq_scale;
        float mscale_dflt = 1.0f, mscale_all = hp->yarn_log_mul;
#define GET_MSCALE(sc, ms) ((sc) <= 1.0f ? 1.0f : (0.1f * (ms) * logf(sc) + 1.0f))
        if (hp->yarn_log_mul != 0.0f) {
            float mscale = mscale_dflt;
            if (mscale_all != 1.0f)
                mscale = mscale_all;
            attn_factor = GET_MSCALE(factor, mscale) / GET_MSCALE(factor, mscale_all);
        } else {
            attn_factor = GET_MSCALE(factor, 1.0f);
        }
#undef GET_MSCALE
        attn_factor *= 1.0f / (1.0f + 0.1f * logf(factor));
    }
    attn_factor *= hp->rope_attn_factor;
    const float attn_factor_org = attn_factor * (1.0f + 0.1f * logf(1.0f / freq_scale));
    const float mscale = attn_factor_org * (1.0f + 0.1f * hp->yarn_log_mul * logf(1.0f / freq_scale));
    s->kq_scale = 1.0f * mscale * mscale / sqrtf((float)model_head_k(hp));
    s->rope_mscale = attn_factor;
    const int n_dims = (int)hp->qk_rope;
    float start = floorf(corr_dim(n_dims, (int)hp->n_ctx_orig, hp->yarn_beta_fast, hp->rope_freq_base));
    float end = ceilf(corr_dim(n_dims, (int)hp->n_ctx_orig, hp->yarn_beta_slow, hp->rope_freq_base));
    s->corr_dims[0] = start > 0 ? start : 0;
    s->corr_dims[1] = end < (float)(n_dims - 1) ? end : (float)(n_dims - 1);
    s->theta_scale = powf(hp->rope_freq_base, -2.0f / (float)n_dims);
}

/* The cos/sin table as the reference's ggml_rope_cache_init computes it:
 * its -ffp-contract=fast build fuses the YaRN mix and the mscale factor
 * into FMAs, and it takes cos and sin from one sincosf. */
static void rope_table(const fwd_state *s, int pos, float *cs)
{
    const model_hparams *hp = &s->m->hp;
    const float freq_scale = hp->rope_freq_scale;
    float theta = (float)pos;
    for (int i0 = 0; i0 < (int)hp->qk_rope; i0 += 2) {
        float theta_interp = freq_scale * theta;
        float th = theta_interp;
        float msc = s->rope_mscale;
        if (s->ext_factor != 0.0f) {
            float y = ((float)(i0 / 2) - s->corr_dims[0]) /
                      fmaxf(0.001f, s->corr_dims[1] - s->corr_dims[0]);
            float ramp = 1 - fminf(1, fmaxf(0, y));
            float ramp_mix = ramp * s->ext_factor;
            th = fmaf(theta_interp, 1 - ramp_mix, theta * ramp_mix);
            msc = fmaf(0.1f, logf(1.0f / freq_scale), 1.0f) * msc;
        }
        float sn, cn;
        sincosf(th, &sn, &cn);
        cs[i0] = cn * msc;
        cs[i0 + 1] = sn * msc;
        theta *= s->theta_scale;
    }
}

/* Adjacent pairs as the reference's vectorized loop (vfmaddsub) rotates
 * them: one product rounded, the other fused. */
static void rope_apply(float *v, const float *cs, int n)
{
    for (int i = 0; i < n; i += 2) {
        const float x0 = v[i], x1 = v[i + 1];
        v[i] = fmaf(x0, cs[i], -(x1 * cs[i + 1]));
        v[i + 1] = fmaf(x0, cs[i + 1], x1 * cs[i]);
    }
}

/* ---- creation ---- */

static size_t act_row_max(const model *m)
{
    /* Widest quantized activation row any product in this model needs. */
    const model_hparams *hp = &m->hp;
    int64_t widths[] = {hp->n_embd, hp->q_lora, hp->kv_lora, (int64_t)hp->n_head * hp->v_head,
                        hp->n_ff, (int64_t)hp->n_ff_exp * (hp->n_expert_shared ? hp->n_expert_shared : 1),
                        hp->n_ff_exp, hp->qk_nope};
    size_t best = 0;
    for (size_t i = 0; i < sizeof widths / sizeof widths[0]; i++) {
        int64_t w = widths[i];
        if (w <= 0)
            continue;
        /* F32 activations are the widest per element (4 bytes); Q8_K/Q8_0
         * are ~1.1 bytes.  Round w up to a block multiple for Q8_K. */
        size_t b = (size_t)w * 4 + 512;
        if (b > best)
            best = b;
    }
    return best;
}

/* Rows of one thread's th_w: a head's k rows, then its v rows, of kv_b. */
static size_t th_w_rows(const model_hparams *hp)
{
    return hp->qk_nope > hp->v_head ? hp->qk_nope : hp->v_head;
}

#define ALLOC(p, n)                                                                                \
    do {                                                                                           \
        size_t nb_ = ((n) + 63) & ~(size_t)63;                                                     \
        if (!nb_)                                                                                  \
            nb_ = 64;                                                                              \
        (p) = real ? aligned_alloc(64, nb_) : NULL;                                                \
        ok = ok && (!real || (p));                                                                 \
        *bytes += nb_;                                                                             \
    } while (0)

/* Sizes (and with real, allocates) one sequence's cache; kv->m, n_ctx,
 * cache_type, mha set.  Shared by fwd_kv_create and fwd_kv_bytes_needed. */
static bool kv_alloc(fwd_kv *kv, bool real)
{
    const model_hparams *hp = &kv->m->hp;
    const size_t ctx = (size_t)kv->n_ctx, H = hp->n_head;
    size_t *bytes = &kv->bytes;
    bool ok = true;
    kv->bytes = 0;
    kv->n_kv_pad = (int)((ctx + 63) & ~(size_t)63);
    ALLOC(kv->lat, hp->n_layer * ctx * fwd_cache_row_bytes(kv->cache_type, (int64_t)hp->kv_lora));
    ALLOC(kv->pe, hp->n_layer * ctx * hp->qk_rope * sizeof(float));
    if (kv->mha) {
        const size_t N = hp->qk_nope, R = hp->qk_rope, V = hp->v_head;
        ALLOC(kv->kmha, hp->n_layer * ctx * H * (N + R) * 4);
        ALLOC(kv->vmha, hp->n_layer * H * V * (size_t)kv->n_kv_pad * 4);
    }
    return ok;
}

/* Sizes (and with real, allocates) every scratch buffer of s; s->m, s->o,
 * s->nth and s->mha set.  One function serves fwd_create and
 * fwd_bytes_needed so the memory plan and the allocation cannot drift. */
static bool scratch_alloc(fwd_state *s, bool real)
{
    const model_hparams *hp = &s->m->hp;
    const size_t B = (size_t)s->o.n_batch, E = hp->n_embd, H = hp->n_head, L = hp->kv_lora;
    const size_t R = (size_t)s->o.n_batch + (size_t)s->o.n_seqs - 1;
    const size_t ctx = (size_t)s->o.n_ctx, U = hp->n_expert_used ? hp->n_expert_used : 1;
    const size_t X = hp->n_expert ? hp->n_expert : 1;
    size_t widest = hp->n_ff;
    if (widest < (size_t)hp->n_ff_exp * hp->n_expert_shared)
        widest = (size_t)hp->n_ff_exp * hp->n_expert_shared;
    if (widest < hp->n_ff_exp)
        widest = hp->n_ff_exp;
    s->lat_row = fwd_cache_row_bytes(s->o.cache_type, L);
    size_t qrow = act_row_max(s->m);
    s->rows = (int)R;
    s->qbuf_bytes = R * qrow;
    s->th_q_bytes = B * qrow;
    bool ok = true;
    size_t *bytes = &s->bytes;
    s->bytes = 0;
    if (s->o.cache_type != FWD_CACHE_F32)
        ALLOC(s->lat_f32, ctx * L * sizeof(float));
    ALLOC(s->x, R * E * 4);
    ALLOC(s->h, R * E * 4);
    ALLOC(s->tmp, R * E * 4);
    ALLOC(s->moe, R * E * 4);
    ALLOC(s->qa, R * (hp->q_lora ? hp->q_lora : 1) * 4);
    ALLOC(s->q, R * H * model_head_k(hp) * 4);
    ALLOC(s->kva, R * (L + hp->qk_rope) * 4);
    ALLOC(s->qt, R * H * L * 4);
    ALLOC(s->obar, R * H * L * 4);
    ALLOC(s->ao, R * H * hp->v_head * 4);
    ALLOC(s->g, R * widest * 4);
    ALLOC(s->u, R * widest * 4);
    ALLOC(s->router, R * X * 4);
    ALLOC(s->slots, R * U * E * 4);
    ALLOC(s->qbuf, s->qbuf_bytes);
    ALLOC(s->sel, R * U * 4);
    ALLOC(s->selw, R * U * 4);
    ALLOC(s->etok, R * U * 4);
    ALLOC(s->eslot, R * U * 4);
    ALLOC(s->ecount, (X + 1) * 4);
    ALLOC(s->estart, (X + 1) * 4);
    ALLOC(s->act, X * 4);
    ALLOC(s->edone, X);
    ALLOC(s->pmask, X);
    ALLOC(s->uq, R * qrow);
    ALLOC(s->gp, X * sizeof *s->gp);
    ALLOC(s->up, X * sizeof *s->up);
    ALLOC(s->dp, X * sizeof *s->dp);
    ALLOC(s->probs, X * 4);
    ALLOC(s->score, X * 4);
    ALLOC(s->egather, 2 * R * qrow);
    ALLOC(s->ebatch, 2 * X * 4);
    ALLOC(s->eg, R * (hp->n_ff_exp ? hp->n_ff_exp : 1) * 4);
    ALLOC(s->eu, R * (hp->n_ff_exp ? hp->n_ff_exp : 1) * 4);
    ALLOC(s->ey, R * E * 4);
    ALLOC(s->eq, R * qrow);
    ALLOC(s->seg, (size_t)s->o.n_seqs * sizeof *s->seg);
    ALLOC(s->row_pos, R * 4);
    ALLOC(s->row_tok, R * 4);
    if (s->o.n_seqs > 1)
        ALLOC(s->logit_rows, (size_t)s->o.n_seqs * hp->n_vocab * 4);
    s->n_kv_pad = (int)((ctx + 63) & ~(size_t)63);
    s->sc_rows = (int)(B > LEGACY_HEAD_GROUP ? B : LEGACY_HEAD_GROUP);
    ALLOC(s->th_scores, (size_t)s->nth * (size_t)s->sc_rows * (size_t)s->n_kv_pad * 4);
    if (hp->is_mla) {
        ALLOC(s->th_qcat, (size_t)s->nth * B * (L + hp->qk_rope) * 4);
        ALLOC(s->kcat, ctx * (L + hp->qk_rope) * 4);
        ALLOC(s->vlat, L * (size_t)s->n_kv_pad * 4);
    }
    if (s->mha) {
        const size_t N = hp->qk_nope, V = hp->v_head;
        ALLOC(s->kvb, R * H * (N + V) * 4);
    }
    if (!hp->is_mla && !s->mha) { /* the head's kv_b rows, dequantized */
        ALLOC(s->th_w, (size_t)s->nth * th_w_rows(hp) * L * 4);
        ALLOC(s->aseq, (size_t)s->o.n_seqs * sizeof *s->aseq);
    }
    ALLOC(s->th_q, (size_t)s->nth * s->th_q_bytes);
    ALLOC(s->rope, R * hp->qk_rope * 4);
    return ok;
}
#undef ALLOC

/* The block format of a latent cache type. */
static int fwd_cache_quant_type(int t)
{
    switch (t) {
    case FWD_CACHE_F32: return MS_TYPE_F32;
    case FWD_CACHE_F16: return MS_TYPE_F16;
    case FWD_CACHE_Q4_0: return MS_TYPE_Q4_0;
    default: return MS_TYPE_Q8_0;
    }
}

size_t fwd_cache_row_bytes(int t, int64_t kv_lora)
{
    return quant_row_bytes(fwd_cache_quant_type(t), kv_lora);
}

uint64_t fwd_mha_cache_bytes(const model *m, int n_ctx)
{
    const model_hparams *hp = &m->hp;
    if (hp->is_mla)
        return 0;
    return (uint64_t)hp->n_layer * (uint64_t)n_ctx * hp->n_head *
           (uint64_t)(hp->qk_nope + hp->qk_rope + hp->v_head) * 4;
}

/* The options every sizing and creation function uses: defaults filled
 * in, the batch clamped to the context.  0 or -EINVAL. */
static int opts_normalize(const model *m, const fwd_opts *in, fwd_opts *o, char *err, size_t errlen)
{
    if (in)
        *o = *in;
    else
        fwd_opts_default(o);
    if (o->n_ctx <= 0 || o->n_ctx > (1 << 24))
        return fail(err, errlen, -EINVAL, "context size %d out of range", o->n_ctx);
    if (o->n_batch <= 0)
        o->n_batch = 64;
    if (o->n_batch > o->n_ctx)
        o->n_batch = o->n_ctx;
    if (o->n_seqs <= 0)
        o->n_seqs = 1;
    if (o->n_seqs > 4096)
        return fail(err, errlen, -EINVAL, "%d sequences per step out of range", o->n_seqs);
    if ((o->cache_type == FWD_CACHE_Q8_0 || o->cache_type == FWD_CACHE_Q4_0) &&
        m->hp.kv_lora % quant_info(fwd_cache_quant_type(o->cache_type))->blck != 0)
        return fail(err, errlen, -EINVAL, "%s cache needs kv_lora_rank %% 32 == 0",
                    o->cache_type == FWD_CACHE_Q8_0 ? "q8_0" : "q4_0");
    o->attn_mha = o->attn_mha && !m->hp.is_mla;
    return 0;
}

static void kv_init(fwd_kv *kv, const model *m, const fwd_opts *o)
{
    memset(kv, 0, sizeof *kv);
    kv->m = m;
    kv->n_ctx = o->n_ctx;
    kv->cache_type = o->cache_type;
    kv->mha = o->attn_mha;
}

size_t fwd_kv_bytes_needed(const model *m, const fwd_opts *opts)
{
    fwd_opts o;
    if (opts_normalize(m, opts, &o, NULL, 0))
        return 0;
    fwd_kv kv;
    kv_init(&kv, m, &o);
    kv_alloc(&kv, false);
    return kv.bytes;
}

size_t fwd_scratch_bytes_needed(const model *m, const fwd_opts *opts)
{
    fwd_state s = {0};
    if (opts_normalize(m, opts, &s.o, NULL, 0))
        return 0;
    s.m = m;
    s.nth = s.o.tp ? tpool_size(s.o.tp) : s.o.n_threads > 0 ? s.o.n_threads : 1;
    s.mha = s.o.attn_mha;
    scratch_alloc(&s, false);
    return s.bytes;
}

size_t fwd_bytes_needed(const model *m, const fwd_opts *o)
{
    return fwd_scratch_bytes_needed(m, o) + fwd_kv_bytes_needed(m, o);
}

int fwd_kv_create(fwd_kv **out, const model *m, const fwd_opts *opts, char *err, size_t errlen)
{
    *out = NULL;
    fwd_opts o;
    int rc = opts_normalize(m, opts, &o, err, errlen);
    if (rc)
        return rc;
    fwd_kv *kv = malloc(sizeof *kv);
    if (!kv)
        return fail(err, errlen, -ENOMEM, "out of memory");
    kv_init(kv, m, &o);
    if (!kv_alloc(kv, true)) {
        size_t want = kv->bytes;
        fwd_kv_destroy(kv);
        return fail(err, errlen, -ENOMEM, "cannot allocate %.1f MB for a sequence's cache",
                    (double)want / 1e6);
    }
    if (kv->mha) {
        /* positions past the causal end meet zero weights in V^T a; zero
         * (not garbage that may be NaN) keeps 0 * v == 0 */
        const model_hparams *hp = &m->hp;
        const size_t kr = hp->qk_nope + hp->qk_rope;
        memset(kv->kmha, 0, (size_t)hp->n_layer * (size_t)o.n_ctx * hp->n_head * kr * 4);
        memset(kv->vmha, 0, (size_t)hp->n_layer * hp->n_head * hp->v_head * (size_t)kv->n_kv_pad * 4);
    }
    *out = kv;
    return 0;
}

void fwd_kv_destroy(fwd_kv *kv)
{
    if (!kv)
        return;
    free(kv->lat);
    free(kv->pe);
    free(kv->kmha);
    free(kv->vmha);
    free(kv);
}

int fwd_kv_n_past(const fwd_kv *kv) { return kv->n_past; }
size_t fwd_kv_bytes(const fwd_kv *kv) { return kv->bytes; }

void fwd_kv_truncate(fwd_kv *kv, int n)
{
    if (n >= 0 && n < kv->n_past)
        kv->n_past = n;
}

int fwd_scratch_create(fwd_state **out, const model *m, const fwd_opts *opts, char *err,
                       size_t errlen)
{
    *out = NULL;
    const model_hparams *hp = &m->hp;
    fwd_opts o;
    int rc = opts_normalize(m, opts, &o, err, errlen);
    if (rc)
        return rc;
    fwd_state *s = calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    s->m = m;
    s->o = o;
    s->nth = tpool_size(o.tp);
    s->mha = o.attn_mha;
    blas_setup();
    bool ok = scratch_alloc(s, true);
    if (!ok) {
        size_t want = s->bytes;
        fwd_destroy(s);
        return fail(err, errlen, -ENOMEM, "cannot allocate %.1f MB of scratch", (double)want / 1e6);
    }
    memset(s->edone, 0, hp->n_expert ? hp->n_expert : 1);
    if (hp->is_mla) /* the transposed latents past the causal end: zero, not garbage */
        memset(s->vlat, 0, (size_t)hp->kv_lora * (size_t)s->n_kv_pad * 4);
    rope_setup(s);
    *out = s;
    return 0;
}

int fwd_create(fwd_state **out, const model *m, const fwd_opts *opts, char *err, size_t errlen)
{
    fwd_state *s;
    int rc = fwd_scratch_create(&s, m, opts, err, errlen);
    if (rc)
        return rc;
    if ((rc = fwd_kv_create(&s->own_kv, m, &s->o, err, errlen))) {
        fwd_destroy(s);
        *out = NULL;
        return rc;
    }
    s->kv = s->own_kv;
    *out = s;
    return 0;
}

int fwd_bind(fwd_state *s, fwd_kv *kv)
{
    if (kv && (kv->m != s->m || kv->n_ctx != s->o.n_ctx || kv->cache_type != s->o.cache_type ||
               kv->mha != s->mha))
        return -EINVAL;
    s->kv = kv;
    return 0;
}

void fwd_destroy(fwd_state *s)
{
    if (!s)
        return;
    void *ps[] = {s->lat_f32, s->x, s->h, s->tmp, s->moe, s->qa, s->q, s->kva,
                  s->qt, s->obar, s->ao, s->g, s->u, s->router, s->slots, s->qbuf, s->sel,
                  s->selw, s->etok, s->eslot, s->ecount, s->estart, s->egather, s->eg, s->eu,
                  s->ey, s->eq, s->th_scores, s->th_w, s->th_q, s->rope, s->act,
                  (void *)s->gp, (void *)s->up, (void *)s->dp, s->probs, s->score,
                  s->edone, s->pmask, s->uq, s->kvb, s->th_qcat, s->kcat, s->vlat, s->seg, s->row_pos,
                  s->row_tok, s->logit_rows, s->aseq, s->ebatch};
    for (size_t i = 0; i < sizeof ps / sizeof ps[0]; i++)
        free(ps[i]);
    fwd_kv_destroy(s->own_kv);
    free(s);
}

int fwd_n_past(const fwd_state *s) { return s->kv ? s->kv->n_past : 0; }

void fwd_set_matmul_hook(fwd_state *s, void (*fn)(void *ud, const fwd_mm_in *in), void *ud)
{
    s->o.on_matmul = fn;
    s->o.matmul_ud = ud;
}
int fwd_n_ctx(const fwd_state *s) { return s->o.n_ctx; }
int fwd_n_batch(const fwd_state *s) { return s->o.n_batch; }
size_t fwd_bytes(const fwd_state *s) { return s->bytes + (s->own_kv ? s->own_kv->bytes : 0); }

void fwd_truncate(fwd_state *s, int n)
{
    if (s->kv)
        fwd_kv_truncate(s->kv, n);
}

/* ---- latent cache ---- */

static uint8_t *lat_at(const fwd_state *s, int il, int pos)
{
    return s->kv->lat + ((size_t)il * (size_t)s->o.n_ctx + (size_t)pos) * s->lat_row;
}

static void lat_store(fwd_state *s, int il, int pos, const float *c, void *scratch)
{
    const int64_t L = s->m->hp.kv_lora;
    uint8_t *dst = lat_at(s, il, pos);
    switch (s->o.cache_type) {
    case FWD_CACHE_F32:
        memcpy(dst, c, (size_t)L * 4);
        break;
    case FWD_CACHE_F16:
        for (int64_t i = 0; i < L; i++) {
            uint16_t h = quant_f32_to_f16(c[i]);
            memcpy(dst + 2 * i, &h, 2);
        }
        break;
    case FWD_CACHE_Q4_0: /* llama.cpp's -ctk q4_0: its quantize_row_q4_0_ref rounding */
        quantize_chunk(MS_TYPE_Q4_0, c, dst, 1, L, NULL);
        break;
    default:
        kern_get()->quantize[MS_TYPE_Q8_0](c, scratch, L);
        memcpy(dst, scratch, s->lat_row);
        break;
    }
}

/* F32 view of layer il's latents [0, n): the cache itself, or for other
 * cache types dequantized into buf (n rows of kv_lora floats). */
static const float *lat_view(fwd_state *s, int il, int n, float *buf)
{
    const int64_t L = s->m->hp.kv_lora;
    if (s->o.cache_type == FWD_CACHE_F32)
        return (const float *)lat_at(s, il, 0);
    for (int p = 0; p < n; p++) {
        const uint8_t *src = lat_at(s, il, p);
        float *dst = buf + (size_t)p * L;
        if (s->o.cache_type == FWD_CACHE_F16)
            for (int64_t i = 0; i < L; i++) {
                uint16_t h;
                memcpy(&h, src + 2 * i, 2);
                dst[i] = quant_f16_to_f32(h);
            }
        else
            quant_dequantize_row(s->o.cache_type == FWD_CACHE_Q4_0 ? MS_TYPE_Q4_0 : MS_TYPE_Q8_0, src,
                                 dst, L);
    }
    return buf;
}

/* ---- attention ---- */

struct attn_job {
    fwd_state *s;
    const mlayer *L;
    int il;
    int n_tok;        /* the sequence's rows of the step (s->kv is its cache) */
    float *q, *qt, *obar, *ao; /* its first row in s->q, s->qt, s->obar, s->ao */
    const float *lat; /* (n_past + n_tok, kv_lora) */
    const float *pe;  /* (n_past + n_tok, qk_rope) */
};

/* Softmax of one row of raw scores in place, as the reference's soft_max
 * with kq_scale: token position pos, its causal window [0, pos] scaled,
 * zeros past it up to np. */
static void softmax_row(const fwd_state *s, float *st, int pos, int np)
{
    float mx = -INFINITY;
    for (int p = 0; p <= pos; p++) {
        st[p] *= s->kq_scale;
        if (st[p] > mx)
            mx = st[p];
    }
    const float inv = (float)(1.0 / kern_get()->softmax_exp(st, pos + 1, mx));
    for (int p = 0; p <= pos; p++)
        st[p] *= inv;
    for (int p = pos + 1; p < np; p++)
        st[p] = 0.0f;
}

/* Softmax weights of the chunk's n tokens for one head, as the reference
 * computes them: each score an F32 vec_dot of the query row (q + t*qs,
 * K floats) with key row p (keys + p*ks), times kq_scale; its softmax; the
 * weights past each token's causal end zero up to the returned width (the
 * chunk's last position rounded up to 64, where the reference's padded KV
 * window has zeros too).  Rows of n_kv_pad floats in this thread's scores. */
static int attn_weights(fwd_state *s, int ith, int n, const float *q, size_t qs, const float *keys,
                        size_t ks, int64_t K)
{
    const kern_vec_dot_fn dot = kern_get()->vec_dot[MS_TYPE_F32];
    const int npad = (s->kv->n_past + n + 63) & ~63;
    for (int t = 0; t < n; t++) {
        const int pos = s->kv->n_past + t;
        float *sc = s->th_scores + ((size_t)ith * s->sc_rows + t) * s->n_kv_pad;
        for (int p = 0; p <= pos; p++)
            dot(K, &sc[p], q + (size_t)t * qs, keys + (size_t)p * ks);
        softmax_row(s, sc, pos, npad);
    }
    return npad;
}

/* Split-form (attn_k_b / attn_v_b) absorbed attention for one head, in the
 * reference's order: q~ = W_kb^T q_nope and o = W_vb obar are quantized
 * products, the scores one F32 dot of [q~|q_pe] with [c|k_pe], obar = C^T a
 * one product over the chunk's tokens. */
static void attn_head_split(struct attn_job *j, int h, int ith)
{
    fwd_state *s = j->s;
    const model_hparams *hp = &s->m->hp;
    const mlayer *Ly = j->L;
    const kern_table *k = kern_get();
    const int64_t Lr = hp->kv_lora, R = hp->qk_rope, N = hp->qk_nope, V = hp->v_head;
    const int64_t hk = model_head_k(hp), H = hp->n_head, K = Lr + R;
    const int n = j->n_tok;
    float *scores = s->th_scores + (size_t)ith * s->sc_rows * s->n_kv_pad;
    uint8_t *tq = s->th_q + (size_t)ith * s->th_q_bytes;

    const mweight *wk = &Ly->wk_b;
    int at = quant_info(wk->type)->act_type;
    size_t qr = quant_row_bytes(at, N);
    for (int t = 0; t < n; t++)
        k->quantize[at](j->q + ((size_t)t * H + h) * hk, tq + (size_t)t * qr, N);
    k->mul_mat[wk->type](N, wk->data + (size_t)h * wk->mat_bytes, wk->row_bytes, 0, Lr, tq, qr, n,
                         j->qt + (size_t)h * Lr, (size_t)(H * Lr));

    float *qcat = s->th_qcat + (size_t)ith * s->o.n_batch * K;
    for (int t = 0; t < n; t++) {
        memcpy(qcat + (size_t)t * K, j->qt + ((size_t)t * H + h) * Lr, (size_t)Lr * 4);
        memcpy(qcat + (size_t)t * K + Lr, j->q + ((size_t)t * H + h) * hk + N, (size_t)R * 4);
    }
    const int npad = attn_weights(s, ith, n, qcat, K, s->kcat, K, K);
    k->mul_mat[MS_TYPE_F32](npad, s->vlat, (size_t)s->n_kv_pad * 4, 0, Lr, scores, (size_t)s->n_kv_pad * 4,
                            n, j->obar + (size_t)h * Lr, (size_t)(H * Lr));

    const mweight *wv = &Ly->wv_b;
    at = quant_info(wv->type)->act_type;
    qr = quant_row_bytes(at, Lr);
    for (int t = 0; t < n; t++)
        k->quantize[at](j->obar + ((size_t)t * H + h) * Lr, tq + (size_t)t * qr, Lr);
    k->mul_mat[wv->type](Lr, wv->data + (size_t)h * wv->mat_bytes, wv->row_bytes, 0, V, tq, qr, n,
                         j->ao + (size_t)h * V, (size_t)(H * V));
}

/* Legacy absorbed attention: the step's sequences, one tpool_run per
 * layer (or per group of sequences, see attention_legacy). */
struct attn_legacy_job {
    fwd_state *s;
    const mlayer *L;
    const struct attn_seq *sq;
    int n_seq;
};

/* Absorbed attention for heads [h0, h1) of a legacy attn_kv_b file, for
 * every sequence of the job.  The reference decompresses K and V
 * (attn_head_mha, exact); this form is the same math in another order, so
 * it takes the fast one: each head's k rows of kv_b dequantized once for
 * all the sequences, then its v rows, and every product an OpenBLAS GEMM
 * (GEMV for one row) on one thread - ours split the head groups.  Per
 * sequence and head:
 *   q~ = q_nope W_kb, S = q~ C^T + q_pe P^T, A = causal softmax(S * scale),
 *   obar = A C, o = obar W_vb^T.
 * A decoding sequence (one token) takes S and obar for the group's heads
 * in one product each: the latents C, n_past rows of kv_lora floats (2 MB
 * at 1000 positions), are then read once per group instead of twice per
 * head, which at long contexts was most of the layer's attention time.
 * A sequence's products (shapes, inputs, order) are those it has when it
 * runs alone, with any thread count, so its result does not depend on the
 * others in the step. */
static void attn_group_legacy(const struct attn_legacy_job *j, int h0, int h1, int ith)
{
    fwd_state *s = j->s;
    const model_hparams *hp = &s->m->hp;
    const mweight *w = &j->L->wkv_b;
    const kern_dequant_fn dq = kern_get()->dequant[w->type];
    const int64_t Lr = hp->kv_lora, R = hp->qk_rope, N = hp->qk_nope, V = hp->v_head;
    const int64_t hk = model_head_k(hp), H = hp->n_head;
    const int ld = s->n_kv_pad, ldq = (int)(H * Lr), nh = h1 - h0;
    float *wb = s->th_w + (size_t)ith * th_w_rows(hp) * Lr;
    float *sc = s->th_scores + (size_t)ith * s->sc_rows * s->n_kv_pad;

    for (int h = h0; h < h1; h++) {
        const uint8_t *rows = w->data + (size_t)h * (N + V) * w->row_bytes;
        for (int64_t d = 0; d < N; d++)
            dq(rows + (size_t)d * w->row_bytes, wb + d * Lr, Lr);
        for (int i = 0; i < j->n_seq; i++) {
            const struct attn_seq *q = &j->sq[i];
            blas_gemm(q->n_tok, (int)Lr, (int)N, q->q + (size_t)h * hk, (int)(H * hk), wb, (int)Lr, false, 0.0f,
                      q->qt + (size_t)h * Lr, ldq);
        }
    }
    for (int i = 0; i < j->n_seq; i++) {
        const struct attn_seq *q = &j->sq[i];
        const int n = q->n_tok, np = q->n_past + n;
        if (n == 1) { /* rows are the group's heads */
            blas_gemm(nh, np, (int)Lr, q->qt + (size_t)h0 * Lr, (int)Lr, q->lat, (int)Lr, true, 0.0f, sc, ld);
            blas_gemm(nh, np, (int)R, q->q + (size_t)h0 * hk + N, (int)hk, q->pe, (int)R, true, 1.0f, sc, ld);
            for (int r = 0; r < nh; r++)
                softmax_row(s, sc + (size_t)r * ld, q->n_past, np);
            blas_gemm(nh, (int)Lr, np, sc, ld, q->lat, (int)Lr, false, 0.0f, q->obar + (size_t)h0 * Lr, (int)Lr);
            continue;
        }
        for (int h = h0; h < h1; h++) { /* rows are the chunk's tokens */
            const float *qt = q->qt + (size_t)h * Lr;
            blas_gemm(n, np, (int)Lr, qt, ldq, q->lat, (int)Lr, true, 0.0f, sc, ld);
            blas_gemm(n, np, (int)R, q->q + (size_t)h * hk + N, (int)(H * hk), q->pe, (int)R, true, 1.0f, sc, ld);
            for (int t = 0; t < n; t++)
                softmax_row(s, sc + (size_t)t * ld, q->n_past + t, np);
            blas_gemm(n, (int)Lr, np, sc, ld, q->lat, (int)Lr, false, 0.0f, q->obar + (size_t)h * Lr, ldq);
        }
    }
    for (int h = h0; h < h1; h++) {
        const uint8_t *rows = w->data + (size_t)h * (N + V) * w->row_bytes;
        for (int64_t d = 0; d < V; d++)
            dq(rows + (size_t)(N + d) * w->row_bytes, wb + d * Lr, Lr);
        for (int i = 0; i < j->n_seq; i++) {
            const struct attn_seq *q = &j->sq[i];
            blas_gemm(q->n_tok, (int)V, (int)Lr, q->obar + (size_t)h * Lr, ldq, wb, (int)Lr, true, 0.0f,
                      q->ao + (size_t)h * V, (int)(H * V));
        }
    }
}

static void attn_legacy_run(void *ctx, int ith, int nth)
{
    const struct attn_legacy_job *j = ctx;
    const int H = (int)j->s->m->hp.n_head, G = LEGACY_HEAD_GROUP;
    long lo, hi;
    tpool_split((H + G - 1) / G, ith, nth, &lo, &hi);
    for (long g = lo; g < hi; g++)
        attn_group_legacy(j, (int)g * G, (int)g * G + G < H ? (int)g * G + G : H, ith);
}

/* Decompressed attention for one head (fwd_opts.attn_mha), in the
 * reference's order: scores are F32 vec_dot products of [q_nope|q_pe] with
 * the cached [k_nope|k_pe] rows (its kq takes a permuted, non-contiguous q,
 * so no tinyBLAS), its softmax, and o = V^T a over the positions padded to
 * 64 - one product for all tokens of the chunk, so tinyBLAS order for two
 * or more tokens and vec_dot order for one. */
static void attn_head_mha(struct attn_job *j, int h, int ith)
{
    fwd_state *s = j->s;
    const model_hparams *hp = &s->m->hp;
    const int64_t N = hp->qk_nope, R = hp->qk_rope, V = hp->v_head, H = hp->n_head;
    const int64_t hk = model_head_k(hp), kr = N + R;
    const float *kl = s->kv->kmha + (size_t)j->il * s->o.n_ctx * H * kr;
    const float *vl = s->kv->vmha + ((size_t)j->il * H + h) * V * s->n_kv_pad;
    const int npad = attn_weights(s, ith, j->n_tok, j->q + (size_t)h * hk, (size_t)(H * hk), kl + (size_t)h * kr,
                                  (size_t)(H * kr), kr);
    kern_get()->mul_mat[MS_TYPE_F32](npad, vl, (size_t)s->n_kv_pad * 4, 0, V,
                                     s->th_scores + (size_t)ith * s->sc_rows * s->n_kv_pad,
                                     (size_t)s->n_kv_pad * 4, j->n_tok, j->ao + (size_t)h * V, (size_t)(H * V));
}

/* The reference's CPU flash attention (llama.cpp's default), its tiled
 * path for ubatches of 64 or more query rows (ggml's
 * flash_attn_ext_tiled), one query row at a time - its rows are
 * independent: K and V rounded to F16; per tile of 64 positions the scores
 * as one fused multiply-add chain over the key, times the scale, the tile's
 * max folded into the running one (earlier sums rescaled by libm's expf),
 * the tile's exponentials and their sum as ggml_vec_soft_max_f32 (vmath),
 * V accumulated by FMA chains over the tile's positions; 1/S at the end. */
#define FA_TILE 64

/* Its path for ubatches under 64 query rows (flash_attn_ext_f16_one_chunk):
 * the query rounded to F16 and each score an F16 vec_dot, an online
 * softmax position by position, V accumulated in F16 (each step rounded). */
static void attn_head_fa_rows(struct attn_job *j, int h)
{
    fwd_state *s = j->s;
    const model_hparams *hp = &s->m->hp;
    const int64_t N = hp->qk_nope, R = hp->qk_rope, V = hp->v_head, H = hp->n_head;
    const int64_t hk = model_head_k(hp), kr = N + R;
    const float *kl = s->kv->kmha + (size_t)j->il * s->o.n_ctx * H * kr + (size_t)h * kr;
    const float *vl = s->kv->vmha + ((size_t)j->il * H + h) * V * s->n_kv_pad;
    uint16_t qh[512], kh[512], vkq[512];
    for (int t = 0; t < j->n_tok; t++) {
        const int pos = s->kv->n_past + t;
        const float *q = j->q + ((size_t)t * H + h) * hk;
        for (int64_t d = 0; d < kr; d++)
            qh[d] = quant_f32_to_f16(q[d]);
        for (int64_t d = 0; d < V; d++)
            vkq[d] = 0;
        float M = -INFINITY, S = 0.0f;
        for (int p = 0; p <= pos; p++) {
            const float *k = kl + (size_t)p * H * kr;
            for (int64_t d = 0; d < kr; d++)
                kh[d] = quant_f32_to_f16(k[d]);
            float sc = quant_dot_f16_x86(kr, kh, qh, false);
            sc = sc * s->kq_scale + 0.0f; /* + the mask's 0 */
            const float Mold = M;
            float ms = 1.0f, vs = 1.0f;
            if (sc > M) {
                M = sc;
                ms = expf(Mold - M);
                for (int64_t d = 0; d < V; d++)
                    vkq[d] = quant_f32_to_f16(quant_f16_to_f32(vkq[d]) * ms);
            } else {
                vs = expf(sc - M);
            }
            for (int64_t d = 0; d < V; d++) {
                const float v = quant_f16_to_f32(quant_f32_to_f16(vl[d * s->n_kv_pad + p]));
                vkq[d] = quant_f32_to_f16(fmaf(v, vs, quant_f16_to_f32(vkq[d])));
            }
            S = fmaf(S, ms, vs); /* contracted in the reference's build */
        }
        const float S_inv = S == 0.0f ? 0.0f : 1.0f / S;
        float *o = j->ao + ((size_t)t * H + h) * V;
        for (int64_t d = 0; d < V; d++)
            o[d] = quant_f16_to_f32(vkq[d]) * S_inv;
    }
}

static bool attn_head_fa(struct attn_job *j, int h)
{
    fwd_state *s = j->s;
    const model_hparams *hp = &s->m->hp;
    const int64_t N = hp->qk_nope, R = hp->qk_rope, V = hp->v_head, H = hp->n_head;
    const int64_t hk = model_head_k(hp), kr = N + R;
    if (V > 512 || kr > 512)
        return false;
    if (j->n_tok < FA_TILE) {
        attn_head_fa_rows(j, h);
        return true;
    }
    const float *kl = s->kv->kmha + (size_t)j->il * s->o.n_ctx * H * kr + (size_t)h * kr;
    const float *vl = s->kv->vmha + ((size_t)j->il * H + h) * V * s->n_kv_pad;
    for (int t = 0; t < j->n_tok; t++) {
        const int pos = s->kv->n_past + t;
        const float *q = j->q + ((size_t)t * H + h) * hk;
        float vkq[512], sc[FA_TILE], M = -INFINITY, S = 0.0f;
        for (int64_t d = 0; d < V; d++)
            vkq[d] = 0.0f;
        for (int ic = 0; ic <= pos; ic += FA_TILE) {
            float tmax = -INFINITY;
            for (int tk = 0; tk < FA_TILE; tk++) {
                const int p = ic + tk;
                if (p > pos) {
                    sc[tk] = -INFINITY;
                    continue;
                }
                const float *k = kl + (size_t)p * H * kr;
                float a = 0.0f;
                for (int64_t d = 0; d < kr; d++)
                    a = fmaf(quant_f16_to_f32(quant_f32_to_f16(k[d])), q[d], a);
                sc[tk] = a * s->kq_scale + 0.0f; /* + the mask's 0 */
                tmax = sc[tk] > tmax ? sc[tk] : tmax;
            }
            const float Mnew = fmaxf(M, tmax);
            if (Mnew > M) {
                const float ms = expf(M - Mnew);
                for (int64_t d = 0; d < V; d++)
                    vkq[d] *= ms;
                S *= ms;
            }
            M = Mnew;
            S = (float)((double)S + kern_get()->softmax_exp(sc, FA_TILE, Mnew));
            for (int tk = 0; tk < FA_TILE && ic + tk <= pos; tk++)
                for (int64_t d = 0; d < V; d++)
                    vkq[d] = fmaf(quant_f16_to_f32(quant_f32_to_f16(vl[d * s->n_kv_pad + ic + tk])), sc[tk],
                                  vkq[d]);
        }
        const float S_inv = S == 0.0f ? 0.0f : 1.0f / S;
        float *o = j->ao + ((size_t)t * H + h) * V;
        for (int64_t d = 0; d < V; d++)
            o[d] = vkq[d] * S_inv;
    }
    return true;
}

static void attn_job_run(void *ctx, int ith, int nth)
{
    struct attn_job *j = ctx;
    long lo, hi;
    tpool_split(j->s->m->hp.n_head, ith, nth, &lo, &hi);
    for (long h = lo; h < hi; h++) {
        if (j->s->mha) {
            if (!j->s->o.attn_fa || !attn_head_fa(j, (int)h))
                attn_head_mha(j, (int)h, ith);
        } else {
            attn_head_split(j, (int)h, ith);
        }
    }
}

/* Whether a product of weight type `type` runs per sequence in this
 * step: its float order depends on the column count (quant_order_by_cols),
 * so each sequence gets its own columns as one call, as when it runs
 * alone.  Other types take all rows in one call (each weight byte read
 * once per step). */
static bool per_seq(const fwd_state *s, int type)
{
    return s->n_seg > 1 && quant_order_by_cols(type);
}

/* y = w q for the step's n rows of activations q, already quantized for w
 * (rows mm_act_bytes(w, n_in, 1) apart); y rows ys floats apart. */
static void step_mul_q(fwd_state *s, const mweight *w, const void *q, int n, float *y, size_t ys)
{
    if (!per_seq(s, w->type)) {
        mm_mul_q(s->o.tp, w, 0, q, n, y, ys);
        return;
    }
    const size_t qr = mm_act_bytes(w->type, w->n_in, 1);
    for (int i = 0; i < s->n_seg;) {
        /* a run of one-row (decoding) sequences is one call, each row in
         * the lone-column order: the weights are read once for all of them */
        int k = i;
        while (k < s->n_seg && s->seg[k].n == 1)
            k++;
        if (k - i >= 2) {
            const int r0 = s->seg[i].row0, nr = s->seg[k - 1].row0 + 1 - r0;
            mm_mul_cols1_q(s->o.tp, w, 0, (const uint8_t *)q + (size_t)r0 * qr, nr, y + (size_t)r0 * ys, ys);
            i = k;
            continue;
        }
        mm_mul_q(s->o.tp, w, 0, (const uint8_t *)q + (size_t)s->seg[i].row0 * qr, s->seg[i].n,
                 y + (size_t)s->seg[i].row0 * ys, ys);
        i++;
    }
}

/* y = w x for the step's n rows of x (xs floats apart), through s->qbuf. */
static void step_mul(fwd_state *s, const mweight *w, const float *x, size_t xs, int n, float *y,
                     size_t ys)
{
    mm_quantize(s->o.tp, w->type, x, xs, w->n_in, n, s->qbuf);
    step_mul_q(s, w, s->qbuf, n, y, ys);
}

/* One sequence's rows [r0, r0 + n) of the step before the heads (s->kv is
 * its cache): RoPE, the cache entries (and the decompressed K/V for mha). */
static void attn_prep(fwd_state *s, int il, int r0, int n)
{
    const model_hparams *hp = &s->m->hp;
    const mlayer *Ly = &s->m->layers[il];
    const int64_t H = hp->n_head, Lr = hp->kv_lora, R = hp->qk_rope;
    const int64_t hk = model_head_k(hp), N = hp->qk_nope;
    float *q = s->q + (size_t)r0 * H * hk;

    /* Latent c = RMSNorm(kva[0:Lr]); k_pe = RoPE(kva[Lr:]) (not normalized);
     * for legacy files the cache keeps the value kv_b actually multiplies. */
    const int lat_act = hp->is_mla ? MS_TYPE_F32 : quant_info(Ly->wkv_b.type)->act_type;
    for (int t = 0; t < n; t++) {
        const int pos = s->kv->n_past + t;
        float *kva = s->kva + (size_t)(r0 + t) * (Lr + R);
        float *cs = s->rope + (size_t)(r0 + t) * R;
        rope_table(s, pos, cs);
        rmsnorm(kva, kva, Ly->kv_a_norm, Lr, hp->rms_eps);
        if (!hp->is_mla) /* what the reference multiplies attn_kv_b by */
            mm_seen(s, &Ly->wkv_b, -1, 1, kva, (size_t)(Lr + R), NULL, NULL, NULL);
        if (!s->mha) /* mha multiplies kv_b by c itself, quantized inside */
            act_roundtrip(lat_act, kva, kva, Lr, s->qbuf);
        lat_store(s, il, pos, kva, s->qbuf);
        float *pe = s->kv->pe + ((size_t)il * s->o.n_ctx + pos) * R;
        memcpy(pe, kva + Lr, (size_t)R * 4);
        rope_apply(pe, cs, (int)R);
        for (int64_t h = 0; h < H; h++)
            rope_apply(q + ((size_t)t * H + h) * hk + N, cs, (int)R);
    }

    if (s->mha) {
        /* kv = W_kv_b Qact(c) for the chunk, one product as the reference
         * multiplies it; then K rows [k_nope|k_pe] and V transposed. */
        const int64_t V = hp->v_head, kr = N + R, nkv = H * (N + V);
        mm_mul(s->o.tp, &Ly->wkv_b, 0, s->kva + (size_t)r0 * (Lr + R), Lr + R, n, s->kvb, nkv, s->qbuf);
        for (int t = 0; t < n; t++) {
            const int pos = s->kv->n_past + t;
            const float *kv = s->kvb + (size_t)t * nkv;
            const float *pe = s->kv->pe + ((size_t)il * s->o.n_ctx + pos) * R;
            float *kd = s->kv->kmha + (((size_t)il * s->o.n_ctx + pos) * H) * kr;
            for (int64_t h = 0; h < H; h++) {
                memcpy(kd + h * kr, kv + h * (N + V), (size_t)N * 4);
                memcpy(kd + h * kr + N, pe, (size_t)R * 4);
                for (int64_t d = 0; d < V; d++)
                    s->kv->vmha[(((size_t)il * H + h) * V + d) * s->n_kv_pad + pos] = kv[h * (N + V) + N + d];
            }
        }
    }
}

/* One sequence's attention over its rows [r0, r0 + n) of the step (s->kv
 * is its cache), split-form or mha: RoPE, the cache entries, the heads. */
static void attention_seq(fwd_state *s, int il, int r0, int n)
{
    const model_hparams *hp = &s->m->hp;
    const mlayer *Ly = &s->m->layers[il];
    const int64_t H = hp->n_head, Lr = hp->kv_lora, R = hp->qk_rope;
    const int64_t hk = model_head_k(hp);
    float *q = s->q + (size_t)r0 * H * hk;
    attn_prep(s, il, r0, n);
    struct attn_job j = {s, Ly, il, n, q, s->qt + (size_t)r0 * H * Lr, s->obar + (size_t)r0 * H * Lr,
                         s->ao + (size_t)r0 * H * hp->v_head, lat_view(s, il, s->kv->n_past + n, s->lat_f32),
                         s->kv->pe + (size_t)il * s->o.n_ctx * R};
    if (hp->is_mla) {
        /* the layer's keys [c|k_pe] and the latents transposed, the shapes
         * the reference multiplies */
        const int np = s->kv->n_past + n;
        for (int p = 0; p < np; p++) {
            memcpy(s->kcat + (size_t)p * (Lr + R), j.lat + (size_t)p * Lr, (size_t)Lr * 4);
            memcpy(s->kcat + (size_t)p * (Lr + R) + Lr, j.pe + (size_t)p * R, (size_t)R * 4);
            for (int64_t l = 0; l < Lr; l++)
                s->vlat[(size_t)l * s->n_kv_pad + p] = j.lat[(size_t)p * Lr + l];
        }
    }
    tpool_run(s->o.tp, attn_job_run, &j);
    if (hp->is_mla && s->o.on_matmul) /* per head, after the threads: q_nope, obar */
        for (int64_t h = 0; h < H; h++) {
            mm_seen(s, &Ly->wk_b, (int)h, n, j.q + (size_t)h * hk, (size_t)(H * hk), NULL, NULL, NULL);
            mm_seen(s, &Ly->wv_b, (int)h, n, j.obar + (size_t)h * Lr, (size_t)(H * Lr), NULL, NULL, NULL);
        }
}

/* Legacy absorbed attention for every sequence of the step: each one's
 * RoPE and cache entries, then one job over the heads for all of them, so
 * each head's kv_b rows are dequantized once per step rather than once per
 * sequence.  A non-F32 cache is read through lat_f32 (n_ctx rows): the
 * sequences whose views fit in it together form one job; the next view
 * that does not fit waits for the job before it to end. */
static void attention_legacy(fwd_state *s, int il)
{
    const model_hparams *hp = &s->m->hp;
    const int64_t H = hp->n_head, Lr = hp->kv_lora, R = hp->qk_rope, hk = model_head_k(hp);
    for (int i = 0; i < s->n_seg; i++) {
        s->kv = s->seg[i].kv;
        attn_prep(s, il, s->seg[i].row0, s->seg[i].n);
    }
    struct attn_legacy_job j = {s, &s->m->layers[il], s->aseq, 0};
    size_t used = 0; /* rows of lat_f32 taken by the job's views */
    for (int i = 0; i < s->n_seg; i++) {
        fwd_kv *kv = s->kv = s->seg[i].kv;
        const int r0 = s->seg[i].row0, n = s->seg[i].n, np = kv->n_past + n;
        if (s->o.cache_type != FWD_CACHE_F32 && used + (size_t)np > (size_t)s->o.n_ctx) {
            tpool_run(s->o.tp, attn_legacy_run, &j);
            j.sq += j.n_seq;
            j.n_seq = 0;
            used = 0;
        }
        s->aseq[i] = (struct attn_seq){n, kv->n_past, s->q + (size_t)r0 * H * hk,
                                       s->qt + (size_t)r0 * H * Lr, s->obar + (size_t)r0 * H * Lr,
                                       s->ao + (size_t)r0 * H * hp->v_head,
                                       lat_view(s, il, np, s->lat_f32 + used * (size_t)Lr),
                                       kv->pe + (size_t)il * s->o.n_ctx * R};
        used += (size_t)np;
        j.n_seq++;
    }
    tpool_run(s->o.tp, attn_legacy_run, &j);
}

/* x (n rows) += attention(x) for layer il: the projections over all rows
 * of the step, the attention itself per sequence (legacy absorbed: one job
 * over the heads for the step's sequences, attention_legacy). */
static void attention(fwd_state *s, int il, int n)
{
    const model_hparams *hp = &s->m->hp;
    const mlayer *Ly = &s->m->layers[il];
    const int64_t E = hp->n_embd, H = hp->n_head, Lr = hp->kv_lora, R = hp->qk_rope;
    const int64_t hk = model_head_k(hp);

    for (int t = 0; t < n; t++)
        rmsnorm(s->h + (size_t)t * E, s->x + (size_t)t * E, Ly->attn_norm, E, hp->rms_eps);
    if (hp->q_lora) {
        mm_seen(s, &Ly->wq_a, -1, n, s->h, E, NULL, NULL, NULL);
        step_mul(s, &Ly->wq_a, s->h, E, n, s->qa, hp->q_lora);
        for (int t = 0; t < n; t++)
            rmsnorm(s->qa + (size_t)t * hp->q_lora, s->qa + (size_t)t * hp->q_lora, Ly->q_a_norm,
                    hp->q_lora, hp->rms_eps);
        mm_seen(s, &Ly->wq_b, -1, n, s->qa, hp->q_lora, NULL, NULL, NULL);
        step_mul(s, &Ly->wq_b, s->qa, hp->q_lora, n, s->q, H * hk);
    } else {
        mm_seen(s, &Ly->wq, -1, n, s->h, E, NULL, NULL, NULL);
        step_mul(s, &Ly->wq, s->h, E, n, s->q, H * hk);
    }
    mm_seen(s, &Ly->wkv_a, -1, n, s->h, E, NULL, NULL, NULL);
    step_mul(s, &Ly->wkv_a, s->h, E, n, s->kva, Lr + R);

    fwd_kv *bound = s->kv;
    if (!hp->is_mla && !s->mha)
        attention_legacy(s, il);
    else
        for (int i = 0; i < s->n_seg; i++) {
            s->kv = s->seg[i].kv;
            attention_seq(s, il, s->seg[i].row0, s->seg[i].n);
        }
    s->kv = bound;

    mm_seen(s, &Ly->wo, -1, n, s->ao, (size_t)(H * hp->v_head), NULL, NULL, NULL);
    step_mul(s, &Ly->wo, s->ao, H * hp->v_head, n, s->tmp, E);
    for (size_t i = 0; i < (size_t)n * E; i++)
        s->x[i] = s->tmp[i] + s->x[i];
}

/* ---- feed-forward ---- */

/* y (n rows of n_embd) = down(silu(gate h) * up h) for one matrix of each. */
static void swiglu_ffn(fwd_state *s, const mweight *gate, const mweight *up, const mweight *down,
                       const float *h, int n, float *y)
{
    tpool *tp = s->o.tp;
    const int64_t E = s->m->hp.n_embd, F = gate->n_out;
    mm_seen(s, gate, -1, n, h, E, NULL, NULL, NULL);
    mm_seen(s, up, -1, n, h, E, NULL, NULL, NULL);
    mm_quantize(tp, gate->type, h, E, E, n, s->qbuf);
    step_mul_q(s, gate, s->qbuf, n, s->g, F);
    if (quant_info(up->type)->act_type != quant_info(gate->type)->act_type)
        mm_quantize(tp, up->type, h, E, E, n, s->qbuf);
    step_mul_q(s, up, s->qbuf, n, s->u, F);
    kern_get()->swiglu(s->g, s->g, s->u, (int64_t)n * F);
    mm_seen(s, down, -1, n, s->g, F, NULL, NULL, NULL);
    step_mul(s, down, s->g, F, n, y, E);
}

/* Expert choice for one token (DEEPSEEK-FACTS 6.4).  sel/w get n_used
 * entries in descending selection score. */
static void route(const model_hparams *hp, const float *logits, const float *bias, int32_t *sel,
                  float *w, float *probs, float *score, const uint8_t *allow)
{
    const int X = (int)hp->n_expert, K = (int)hp->n_expert_used;
    if (hp->gating == MODEL_GATING_SIGMOID) {
        for (int e = 0; e < X; e++)
            probs[e] = 1.0f / (1.0f + expf(-logits[e]));
    } else {
        float mx = -INFINITY;
        for (int e = 0; e < X; e++)
            mx = fmaxf(mx, logits[e]);
        double sum = 0.0;
        for (int e = 0; e < X; e++) {
            probs[e] = expf(logits[e] - mx);
            sum += (double)probs[e];
        }
        const float inv = (float)(1.0 / sum);
        for (int e = 0; e < X; e++)
            probs[e] *= inv;
    }
    for (int e = 0; e < X; e++)
        score[e] = bias ? probs[e] + bias[e] : probs[e];
    if (allow) { /* fwd_opts.pool_routing: the caller saw >= K allowed */
        for (int e = 0; e < X; e++)
            if (!allow[e])
                score[e] = -INFINITY;
    } else if (hp->n_group > 1) {
        const int G = (int)hp->n_group, per = X / G;
        float gsc[256];
        bool keep[256];
        for (int g = 0; g < G; g++) {
            float a = -INFINITY, b = -INFINITY; /* top two */
            for (int i = 0; i < per; i++) {
                float v = score[g * per + i];
                if (v > a) {
                    b = a;
                    a = v;
                } else if (v > b) {
                    b = v;
                }
            }
            gsc[g] = a + b;
            keep[g] = false;
        }
        for (int r = 0; r < (int)hp->n_group_used; r++) {
            int best = -1;
            for (int g = 0; g < G; g++)
                if (!keep[g] && (best < 0 || gsc[g] > gsc[best]))
                    best = g;
            keep[best] = true;
        }
        for (int g = 0; g < G; g++)
            if (!keep[g])
                for (int i = 0; i < per; i++)
                    score[g * per + i] = -INFINITY;
    }
    for (int r = 0; r < K; r++) {
        int best = -1;
        for (int e = 0; e < X; e++) {
            bool taken = false;
            for (int q = 0; q < r; q++)
                taken = taken || sel[q] == e;
            if (!taken && (best < 0 || score[e] > score[best]))
                best = e;
        }
        sel[r] = best;
        w[r] = probs[best];
    }
    if (hp->weights_norm) {
        double sum = 0.0;
        for (int r = 0; r < K; r++)
            sum += (double)w[r];
        float fs = (float)sum;
        if (fs < 6.103515625e-5f)
            fs = 6.103515625e-5f;
        for (int r = 0; r < K; r++)
            w[r] = w[r] / fs;
    }
    if (hp->weights_scale != 0.0f && hp->weights_scale != 1.0f)
        for (int r = 0; r < K; r++)
            w[r] = w[r] * hp->weights_scale;
}

/* A batch of routed experts, each on the tokens that chose it, in two
 * forks for the whole batch rather than four per expert: with eight
 * sequences decoding, a layer runs ~57 experts of a few hundred
 * microseconds each, and a fork per product paid its join's wait (the
 * last claimed chunk) each time.
 *   Fork 1 claims (expert, rows of the hidden width) chunks: gate and up
 * on those rows, SwiGLU, and the rows quantized for down - chunks are
 * whole activation blocks, which quantize on their own, so the bytes are
 * those of quantizing the row at once.
 *   Fork 2 claims (expert, rows of n_embd) chunks of down, written to the
 * (token, slot) place (a lone token straight there).
 * Every row is the kernel's row whoever computes it: results do not depend
 * on the batch, the thread count or the order. */
struct expert_batch {
    fwd_state *s;
    const mlayer *Ly;
    int n;                        /* experts in the batch */
    const int32_t *ids;           /* (n) their index in the acquired group */
    const int32_t *off;           /* (n) their first row in eg/eu/eq/ey */
    const int32_t *act;           /* the group's expert ids */
    const uint8_t *const *gw, *const *uw, *const *dw; /* the group's matrices */
    const uint8_t *uqbuf;         /* h2 for up, when its activation type differs */
    uint8_t *ugather;             /* its gathered rows (egather's second half) */
    bool rg, ru, rd;              /* repacked layouts */
    int gat, uat, dat;            /* activation types */
    size_t gq, uq, dq;            /* their row bytes */
    int64_t fchunk, echunk;       /* rows per claim in fork 1, fork 2 */
    int64_t nfc, nec;             /* claims per expert */
    atomic_long next;
};

/* Expert i's gathered rows for gate (u = 0) or up (u = 1): the token's own
 * row for a lone token, else copied together by expert_batch_gather. */
static const uint8_t *expert_rows_q(const struct expert_batch *b, int i, int u)
{
    const fwd_state *s = b->s;
    const int e = b->act[b->ids[i]];
    const size_t rb = u ? b->uq : b->gq;
    const uint8_t *src = u && b->uat != b->gat ? b->uqbuf : (const uint8_t *)s->qbuf;
    if (s->ecount[e] == 1)
        return src + (size_t)s->etok[s->estart[e]] * rb;
    return (u ? b->ugather : (const uint8_t *)s->egather) + (size_t)b->off[i] * rb;
}

static void expert_batch_gather(const struct expert_batch *b)
{
    const fwd_state *s = b->s;
    for (int i = 0; i < b->n; i++) {
        const int e = b->act[b->ids[i]], c = s->ecount[e], st = s->estart[e];
        if (c == 1)
            continue;
        for (int u = 0; u < (b->uat != b->gat ? 2 : 1); u++) {
            const size_t rb = u ? b->uq : b->gq;
            const uint8_t *src = u ? b->uqbuf : (const uint8_t *)s->qbuf;
            uint8_t *dst = (uint8_t *)expert_rows_q(b, i, u);
            for (int r = 0; r < c; r++)
                memcpy(dst + (size_t)r * rb, src + (size_t)s->etok[st + r] * rb, rb);
        }
    }
}

/* Claims the batch's next chunk: expert i, rows [lo, hi) of `rows`, in
 * chunks of `chunk`, nc of them an expert; false when all are taken. */
static bool expert_claim(struct expert_batch *b, int64_t nc, int64_t chunk, int64_t rows, int *i, int64_t *lo,
                         int64_t *hi)
{
    const long it = atomic_fetch_add_explicit(&b->next, 1, memory_order_relaxed);
    if (it >= b->n * nc)
        return false;
    *i = (int)(it / nc);
    *lo = it % nc * chunk;
    *hi = *lo + chunk < rows ? *lo + chunk : rows;
    return true;
}

static void expert_up_run(void *ctx, int ith, int nth)
{
    struct expert_batch *b = ctx;
    (void)ith, (void)nth;
    fwd_state *s = b->s;
    const int64_t E = s->m->hp.n_embd, F = s->m->hp.n_ff_exp;
    const kern_table *k = kern_get();
    int i;
    int64_t lo, hi;
    while (expert_claim(b, b->nfc, b->fchunk, F, &i, &lo, &hi)) {
        const int e = b->act[b->ids[i]], c = s->ecount[e], o = b->off[i];
        const uint8_t *qg = expert_rows_q(b, i, 0), *qu = b->uat != b->gat ? expert_rows_q(b, i, 1) : qg;
        float *g = s->eg + (size_t)o * F, *u = s->eu + (size_t)o * F;
        mm_expert_rows(b->Ly->gate_exps.type, b->rg, b->gw[b->ids[i]], E, qg, b->gq, c, lo, hi, g, (size_t)F);
        mm_expert_rows(b->Ly->up_exps.type, b->ru, b->uw[b->ids[i]], E, qu, b->uq, c, lo, hi, u, (size_t)F);
        for (int r = 0; r < c; r++) {
            float *gr = g + (size_t)r * F + lo;
            k->swiglu(gr, gr, u + (size_t)r * F + lo, hi - lo);
            k->quantize[b->dat](gr, (uint8_t *)s->eq + (size_t)(o + r) * b->dq + quant_row_bytes(b->dat, lo),
                                hi - lo);
        }
    }
}

static void expert_down_run(void *ctx, int ith, int nth)
{
    struct expert_batch *b = ctx;
    (void)ith, (void)nth;
    fwd_state *s = b->s;
    const int64_t E = s->m->hp.n_embd, F = s->m->hp.n_ff_exp;
    const int K = (int)s->m->hp.n_expert_used;
    int i;
    int64_t lo, hi;
    while (expert_claim(b, b->nec, b->echunk, E, &i, &lo, &hi)) {
        const int e = b->act[b->ids[i]], c = s->ecount[e], o = b->off[i], st = s->estart[e];
        const uint8_t *q = (const uint8_t *)s->eq + (size_t)o * b->dq;
        if (c == 1) {
            float *y = s->slots + ((size_t)s->etok[st] * K + s->eslot[st]) * E;
            mm_expert_rows(b->Ly->down_exps.type, b->rd, b->dw[b->ids[i]], F, q, b->dq, 1, lo, hi, y, (size_t)E);
            continue;
        }
        float *y = s->ey + (size_t)o * E;
        mm_expert_rows(b->Ly->down_exps.type, b->rd, b->dw[b->ids[i]], F, q, b->dq, c, lo, hi, y, (size_t)E);
        for (int r = 0; r < c; r++)
            memcpy(s->slots + ((size_t)s->etok[st + r] * K + s->eslot[st + r]) * E + lo, y + (size_t)r * E + lo,
                   (size_t)(hi - lo) * 4);
    }
}

static void expert_batch_run(struct expert_batch *b)
{
    fwd_state *s = b->s;
    const int64_t F = s->m->hp.n_ff_exp, E = s->m->hp.n_embd;
    expert_batch_gather(b);
    const int64_t blk = quant_info(b->dat)->blck;
    b->fchunk = mm_claim_rows((long)F, s->nth, blk > 16 ? (long)blk : 16);
    b->echunk = mm_claim_rows((long)E, s->nth, 16);
    b->nfc = (F + b->fchunk - 1) / b->fchunk;
    b->nec = (E + b->echunk - 1) / b->echunk;
    atomic_store(&b->next, 0);
    tpool_run(s->o.tp, expert_up_run, b);
    if (s->o.on_matmul)
        for (int i = 0; i < b->n; i++) {
            const int e = b->act[b->ids[i]], st = s->estart[e];
            mm_seen(s, &b->Ly->down_exps, e, s->ecount[e], s->eg + (size_t)b->off[i] * F, F, NULL, s->etok + st,
                    s->eslot + st);
        }
    atomic_store(&b->next, 0);
    tpool_run(s->o.tp, expert_down_run, b);
}

/* fwd_opts.pool_routing: layer il's experts in memory now, or NULL (off,
 * or fewer than top-k of them: the router chooses freely and the reads
 * fill the pool). */
static const uint8_t *pool_mask(fwd_state *s, int il)
{
    const expert_src *src = s->o.experts;
    if (!s->o.pool_routing || !src || !src->cached)
        return NULL;
    int n = src->cached(src->ud, il, s->pmask);
    return n >= (int)s->m->hp.n_expert_used ? s->pmask : NULL;
}

static int moe(fwd_state *s, int il, int n, const float *h2, float *y, char *err, size_t errlen)
{
    const model_hparams *hp = &s->m->hp;
    const mlayer *Ly = &s->m->layers[il];
    tpool *tp = s->o.tp;
    const int64_t E = hp->n_embd;
    const int X = (int)hp->n_expert, K = (int)hp->n_expert_used;

    mm_seen(s, &Ly->gate_inp, -1, n, h2, E, NULL, NULL, NULL);
    step_mul(s, &Ly->gate_inp, h2, E, n, s->router, X);
    float *probs = s->probs, *score = s->score;
    const uint8_t *allow = pool_mask(s, il);
    for (int t = 0; t < n; t++) {
        route(hp, s->router + (size_t)t * X, Ly->exp_probs_b, s->sel + (size_t)t * K,
              s->selw + (size_t)t * K, probs, score, allow);
        if (s->o.uniform_routing_seed) {
            /* odd multiplier hash: never the xorshift fixed point 0 */
            uint64_t x = (s->o.uniform_routing_seed * 0x9E3779B97F4A7C15ull) ^
                         ((uint64_t)s->row_pos[t] << 20) ^ ((uint64_t)il << 8);
            x = (x ^ (x >> 31)) * 0xBF58476D1CE4E5B9ull | 1;
            int32_t *sel = s->sel + (size_t)t * K;
            for (int r = 0; r < K; r++) {
                int e;
                bool dup;
                do {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    e = (int)(x % (uint64_t)X);
                    dup = false;
                    for (int q = 0; q < r; q++)
                        dup = dup || sel[q] == e;
                } while (dup);
                sel[r] = e;
            }
        }
        if (s->o.route_pick)
            s->o.route_pick(s->o.pick_ud, il, s->row_pos[t], K, s->sel + (size_t)t * K);
        if (s->o.on_route)
            s->o.on_route(s->o.route_ud, il, s->row_pos[t], K, s->sel + (size_t)t * K,
                          s->selw + (size_t)t * K);
    }

    /* Group (token, slot) pairs by expert so each expert is read and
     * multiplied once per chunk (counting sort, ascending expert id). */
    memset(s->ecount, 0, (size_t)(X + 1) * 4);
    for (int i = 0; i < n * K; i++)
        s->ecount[s->sel[i]]++;
    for (int e = 0, acc = 0; e < X; e++) {
        s->estart[e] = acc;
        acc += s->ecount[e];
    }
    for (int i = 0; i < n * K; i++) {
        int e = s->sel[i];
        int at = s->estart[e]++;
        s->etok[at] = i / K;
        s->eslot[at] = i % K;
    }
    for (int e = X - 1; e >= 0; e--) /* restore starts */
        s->estart[e] -= s->ecount[e];

    /* Active expert ids, ascending. */
    int32_t *act = s->act;
    int na = 0;
    for (int e = 0; e < X; e++)
        if (s->ecount[e])
            act[na++] = e;
    for (int i = 0; i < na && s->o.on_matmul; i++) {
        const int e = act[i], st = s->estart[e];
        const int32_t *tk = s->etok + st, *sl = s->eslot + st;
        mm_seen(s, &Ly->gate_exps, e, s->ecount[e], h2, E, tk, tk, sl);
        mm_seen(s, &Ly->up_exps, e, s->ecount[e], h2, E, tk, tk, sl);
    }

    const int gat = quant_info(Ly->gate_exps.type)->act_type;
    const int uat = quant_info(Ly->up_exps.type)->act_type;
    /* h2 quantized once per activation type, then gathered per expert. */
    mm_quantize(tp, Ly->gate_exps.type, h2, E, E, n, s->qbuf);
    uint8_t *uqbuf = (uint8_t *)s->qbuf;
    if (uat != gat) {
        uqbuf = s->uq;
        mm_quantize(tp, Ly->up_exps.type, h2, E, E, n, uqbuf);
    }
    const expert_src *src = s->o.experts;
    const int cap = src && src->capacity > 0 ? src->capacity : na;
    for (int g0 = 0; g0 < na; g0 += cap) {
        const int gn = na - g0 < cap ? na - g0 : cap;
        const uint8_t **gp = s->gp, **up = s->up, **dp = s->dp;
        if (src) {
            int rc = src->acquire(src->ud, il, gn, act + g0, gp, up, dp, err, errlen);
            if (rc) {
                if (src->release)
                    src->release(src->ud, il);
                return rc;
            }
        } else {
            for (int i = 0; i < gn; i++) {
                gp[i] = Ly->gate_exps.data + (size_t)act[g0 + i] * mweight_stride(&Ly->gate_exps);
                up[i] = Ly->up_exps.data + (size_t)act[g0 + i] * mweight_stride(&Ly->up_exps);
                dp[i] = Ly->down_exps.data + (size_t)act[g0 + i] * mweight_stride(&Ly->down_exps);
            }
        }
        /* Experts already in memory first, in batches, while the reads of
         * the others are in flight; then the rest as they land, each batch
         * whatever has landed (waiting only when nothing has).  A batch's
         * token rows fit the per-row buffers.  Each expert's output goes
         * to its (token, slot) place, so the order changes nothing in the
         * result. */
        const bool resident = !src || src->repacked;
        struct expert_batch eb = {.s = s, .Ly = Ly, .ids = s->ebatch, .off = s->ebatch + X, .act = act + g0,
                                  .gw = gp, .uw = up, .dw = dp, .uqbuf = uqbuf,
                                  .ugather = (uint8_t *)s->egather + (size_t)s->rows * act_row_max(s->m),
                                  .rg = resident && Ly->gate_exps.rp_mat_bytes,
                                  .ru = resident && Ly->up_exps.rp_mat_bytes,
                                  .rd = resident && Ly->down_exps.rp_mat_bytes, .gat = gat, .uat = uat,
                                  .dat = quant_info(Ly->down_exps.type)->act_type};
        eb.gq = quant_row_bytes(gat, E);
        eb.uq = quant_row_bytes(uat, E);
        eb.dq = quant_row_bytes(eb.dat, hp->n_ff_exp);
        int32_t *ids = s->ebatch, *off = s->ebatch + X;
        for (int done = 0, block = 0; done < gn;) {
            int nb = 0, rows = 0;
            for (int i = 0; i < gn; i++) {
                if (s->edone[i])
                    continue;
                const int c = s->ecount[act[g0 + i]];
                if (rows + c > s->rows)
                    break;
                if (src && src->wait) {
                    int w = src->wait(src->ud, il, i, block && nb == 0, err, errlen);
                    if (w < 0) {
                        if (src->release)
                            src->release(src->ud, il);
                        memset(s->edone, 0, (size_t)gn);
                        return w;
                    }
                    if (w > 0)
                        continue;
                }
                s->edone[i] = 1;
                ids[nb] = i;
                off[nb++] = rows;
                rows += c;
            }
            block = nb == 0;
            if (nb) {
                eb.n = nb;
                expert_batch_run(&eb);
                done += nb;
            }
        }
        memset(s->edone, 0, (size_t)gn);
        if (src && src->release)
            src->release(src->ud, il);
    }

    /* Combine in selection order: (e0*w0 + e1*w1) + e2*w2 + ... */
    for (int t = 0; t < n; t++) {
        float *yt = y + (size_t)t * E;
        const float *w = s->selw + (size_t)t * K;
        const float *sl = s->slots + (size_t)t * K * E;
        for (int64_t i = 0; i < E; i++)
            yt[i] = sl[i] * w[0];
        for (int r = 1; r < K; r++)
            for (int64_t i = 0; i < E; i++)
                yt[i] = yt[i] + sl[(size_t)r * E + i] * w[r];
    }
    return 0;
}

/* Guess layer il+1's experts for the tokens of this chunk: its router on
 * RMSNorm(x) with its own ffn_norm, x being the residual before layer il's
 * FFN (one layer early: the guess is cheap and often right, since the
 * residual stream changes slowly).  Wrong guesses cost only disk reads. */
static void prefetch_next(fwd_state *s, int il, int n)
{
    const model_hparams *hp = &s->m->hp;
    const expert_src *src = s->o.experts;
    if (!s->o.prefetch || !src || !src->prefetch || (uint32_t)il + 1 >= hp->n_layer)
        return;
    const mlayer *Nx = &s->m->layers[il + 1];
    if (!Nx->is_moe)
        return;
    const int64_t E = hp->n_embd;
    const int X = (int)hp->n_expert, K = (int)hp->n_expert_used;
    for (int t = 0; t < n; t++)
        rmsnorm(s->tmp + (size_t)t * E, s->x + (size_t)t * E, Nx->ffn_norm, E, hp->rms_eps);
    mm_mul(s->o.tp, &Nx->gate_inp, 0, s->tmp, E, n, s->router, X, s->qbuf);
    /* union of the tokens' choices, capped so a prefetch never needs more
     * than half the pool */
    int cap = src->capacity > 0 ? src->capacity / 2 : X;
    int np = 0;
    memset(s->edone, 0, (size_t)X);
    int32_t sel[64];
    float w[64];
    const uint8_t *allow = pool_mask(s, il + 1);
    for (int t = 0; t < n && np < cap; t++) {
        route(hp, s->router + (size_t)t * X, Nx->exp_probs_b, sel, w, s->probs, s->score, allow);
        for (int r = 0; r < K && np < cap; r++)
            if (!s->edone[sel[r]]) {
                s->edone[sel[r]] = 1;
                s->act[np++] = sel[r];
            }
    }
    memset(s->edone, 0, (size_t)X);
    if (np)
        src->prefetch(src->ud, il + 1, np, s->act);
}

static int ffn(fwd_state *s, int il, int n, char *err, size_t errlen)
{
    const model_hparams *hp = &s->m->hp;
    const mlayer *Ly = &s->m->layers[il];
    const int64_t E = hp->n_embd;
    if (hp->n_expert_used <= 64)
        prefetch_next(s, il, n);
    for (int t = 0; t < n; t++)
        rmsnorm(s->h + (size_t)t * E, s->x + (size_t)t * E, Ly->ffn_norm, E, hp->rms_eps);
    if (!Ly->is_moe) {
        swiglu_ffn(s, &Ly->ffn_gate, &Ly->ffn_up, &Ly->ffn_down, s->h, n, s->tmp);
        for (size_t i = 0; i < (size_t)n * E; i++)
            s->x[i] = s->tmp[i] + s->x[i];
        return 0;
    }
    int rc = moe(s, il, n, s->h, s->moe, err, errlen);
    if (rc)
        return rc;
    if (Ly->gate_sh.name) {
        swiglu_ffn(s, &Ly->gate_sh, &Ly->up_sh, &Ly->down_sh, s->h, n, s->tmp);
        for (size_t i = 0; i < (size_t)n * E; i++)
            s->moe[i] = s->moe[i] + s->tmp[i];
    }
    for (size_t i = 0; i < (size_t)n * E; i++)
        s->x[i] = s->moe[i] + s->x[i];
    return 0;
}

/* ---- evaluation ---- */

/* The layers over the step's rows (s->seg, s->row_pos set): embedding,
 * attention and FFN; x holds the final residuals. */
static int eval_layers(fwd_state *s, const int32_t *tok, int n, char *err, size_t errlen)
{
    const model *m = s->m;
    const model_hparams *hp = &m->hp;
    const int64_t E = hp->n_embd;
    for (int t = 0; t < n; t++)
        quant_dequantize_row(m->tok_embd.type, m->tok_embd.data + (size_t)tok[t] * m->tok_embd.row_bytes,
                             s->x + (size_t)t * E, E);
    for (uint32_t il = 0; il < hp->n_layer; il++) {
        attention(s, (int)il, n);
        int rc = ffn(s, (int)il, n, err, errlen);
        if (rc)
            return rc;
    }
    return 0;
}

static int eval_chunk(fwd_state *s, const int32_t *tok, int n, float *logits_all,
                      float *logits_last, char *err, size_t errlen)
{
    const model *m = s->m;
    const model_hparams *hp = &m->hp;
    const int64_t E = hp->n_embd;
    s->seg[0] = (struct fwd_seg){s->kv, 0, n};
    s->n_seg = 1;
    for (int t = 0; t < n; t++)
        s->row_pos[t] = s->kv->n_past + t;
    int rc = eval_layers(s, tok, n, err, errlen);
    if (rc)
        return rc;
    /* Logits only for the rows asked for. */
    int first = logits_all ? 0 : n - 1;
    if (!logits_all && !logits_last)
        return 0;
    for (int t = first; t < n; t++)
        rmsnorm(s->h + (size_t)(t - first) * E, s->x + (size_t)t * E, m->output_norm, E, hp->rms_eps);
    int rows = n - first;
    float *dst = logits_all ? logits_all : logits_last;
    mm_seen(s, &m->output, -1, rows, s->h, E, NULL, NULL, NULL);
    mm_mul(s->o.tp, &m->output, 0, s->h, E, rows, dst, hp->n_vocab, s->qbuf);
    if (logits_all && logits_last)
        memcpy(logits_last, logits_all + (size_t)(n - 1) * hp->n_vocab, (size_t)hp->n_vocab * 4);
    return 0;
}

int fwd_max_rows(const fwd_state *s) { return s->rows; }

int fwd_step(fwd_state *s, const fwd_seq *seqs, int n_seqs, char *err, size_t errlen)
{
    const model *m = s->m;
    const model_hparams *hp = &m->hp;
    const int64_t E = hp->n_embd;
    if (n_seqs <= 0 || n_seqs > s->o.n_seqs)
        return fail(err, errlen, -EINVAL, "%d sequences in a step (at most %d)", n_seqs, s->o.n_seqs);
    int rows = 0;
    for (int i = 0; i < n_seqs; i++) {
        const fwd_seq *q = &seqs[i];
        fwd_kv *kv = q->kv;
        if (!kv || kv->m != m || kv->n_ctx != s->o.n_ctx || kv->cache_type != s->o.cache_type ||
            kv->mha != s->mha)
            return fail(err, errlen, -EINVAL, "sequence %d: no cache, or one made for other options", i);
        if (q->n <= 0 || q->n > s->o.n_batch)
            return fail(err, errlen, -EINVAL, "sequence %d: %d tokens (1 to %d per step)", i, q->n,
                        s->o.n_batch);
        for (int k = 0; k < i; k++)
            if (seqs[k].kv == kv)
                return fail(err, errlen, -EINVAL, "sequences %d and %d share a cache", k, i);
        if ((int64_t)kv->n_past + q->n > s->o.n_ctx)
            return fail(err, errlen, -E2BIG,
                        "context full: %d tokens already, %d more would exceed the context size %d "
                        "(raise -c/--ctx-size)", kv->n_past, q->n, s->o.n_ctx);
        for (int t = 0; t < q->n; t++)
            if (q->tok[t] < 0 || (uint32_t)q->tok[t] >= hp->n_vocab)
                return fail(err, errlen, -EINVAL, "token id %d of sequence %d out of range [0, %u)",
                            q->tok[t], i, hp->n_vocab);
        rows += q->n;
    }
    if (rows > s->rows)
        return fail(err, errlen, -EINVAL, "%d tokens in a step (at most %d)", rows, s->rows);
    for (int i = 0, r = 0; i < n_seqs; i++) {
        s->seg[i] = (struct fwd_seg){seqs[i].kv, r, seqs[i].n};
        for (int t = 0; t < seqs[i].n; t++, r++) {
            s->row_tok[r] = seqs[i].tok[t];
            s->row_pos[r] = seqs[i].kv->n_past + t;
        }
    }
    s->n_seg = n_seqs;
    int rc = eval_layers(s, s->row_tok, rows, err, errlen);
    if (rc)
        return rc;
    /* The last row of each sequence that wants logits, through the output
     * head: one call for all of them unless its order depends on the
     * column count (then one row per call, as a sequence alone has). */
    int k = 0;
    for (int i = 0; i < n_seqs; i++)
        if (seqs[i].logits) {
            const int t = s->seg[i].row0 + s->seg[i].n - 1;
            rmsnorm(s->h + (size_t)k++ * E, s->x + (size_t)t * E, m->output_norm, E, hp->rms_eps);
        }
    if (k == 1 || quant_order_by_cols(m->output.type) || !s->logit_rows) {
        for (int i = 0, j = 0; i < n_seqs; i++)
            if (seqs[i].logits)
                mm_mul(s->o.tp, &m->output, 0, s->h + (size_t)j++ * E, E, 1, seqs[i].logits,
                       hp->n_vocab, s->qbuf);
    } else if (k > 1) {
        mm_mul(s->o.tp, &m->output, 0, s->h, E, k, s->logit_rows, hp->n_vocab, s->qbuf);
        for (int i = 0, j = 0; i < n_seqs; i++)
            if (seqs[i].logits)
                memcpy(seqs[i].logits, s->logit_rows + (size_t)j++ * hp->n_vocab,
                       (size_t)hp->n_vocab * 4);
    }
    for (int i = 0; i < n_seqs; i++)
        seqs[i].kv->n_past += seqs[i].n;
    return 0;
}

int fwd_eval(fwd_state *s, const int32_t *tok, int n, float *logits_all, float *logits_last,
             char *err, size_t errlen)
{
    const model_hparams *hp = &s->m->hp;
    if (!s->kv)
        return fail(err, errlen, -EINVAL, "no sequence bound to the forward state");
    if (n <= 0)
        return fail(err, errlen, -EINVAL, "no tokens to evaluate");
    if ((int64_t)s->kv->n_past + n > s->o.n_ctx)
        return fail(err, errlen, -E2BIG,
                    "context full: %d tokens already, %d more would exceed the context size %d "
                    "(raise -c/--ctx-size)",
                    s->kv->n_past, n, s->o.n_ctx);
    for (int i = 0; i < n; i++)
        if (tok[i] < 0 || (uint32_t)tok[i] >= hp->n_vocab)
            return fail(err, errlen, -EINVAL, "token id %d at index %d out of range [0, %u)",
                        tok[i], i, hp->n_vocab);
    const int start = s->kv->n_past;
    for (int i = 0; i < n; i += s->o.n_batch) {
        int c = n - i < s->o.n_batch ? n - i : s->o.n_batch;
        bool last = i + c == n;
        int rc = eval_chunk(s, tok + i, c, logits_all ? logits_all + (size_t)i * hp->n_vocab : NULL,
                            last ? logits_last : NULL, err, errlen);
        if (rc) {
            s->kv->n_past = start;
            return rc;
        }
        s->kv->n_past += c;
    }
    return 0;
}
