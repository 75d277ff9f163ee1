/* quantize_model.c - model quantization (see quantize_model.h).
 *
 * The plan follows the reference's llama-quant.cpp: tensors in name order
 * (its weights map is a std::map), a type per tensor from
 * llama_tensor_get_type (quantizable = 2D/3D "...weight" minus norms and the
 * router; token embedding / output overrides first; then the first matching
 * --tensor-type regex, else the ftype's mix rules unless --pure; then the
 * shape fallback), counters advanced only where the reference advances
 * them.  Data: each tensor is produced on demand by the writer's fill
 * callback, a chunk of at most CHUNK_FLOATS elements of rows within one
 * expert at a time: read, convert to float, quantize rows over the pool,
 * hand out bytes.  Rows are independent, so the
 * bytes do not depend on the thread count.
 * Invariant: fill calls for one tensor come in increasing offsets (the
 * writer streams), so one chunk buffer suffices. */
#include "quantize_model.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "gguf.h"
#include "gguf_write.h"
#include "imatrix_load.h"
#include "quant.h"
#include "quantize.h"
#include "quantize_chunk.h"
#include "recipe.h"
#include "threadpool.h"

/* ---- file types ---- */

/* llama_ftype values (general.file_type) and their default tensor type. */
enum {
    FT_F32 = 0, FT_F16 = 1, FT_Q4_0 = 2, FT_Q4_1 = 3, FT_Q8_0 = 7, FT_Q5_0 = 8, FT_Q5_1 = 9,
    FT_Q2_K = 10, FT_Q3_K_S = 11, FT_Q3_K_M = 12, FT_Q3_K_L = 13, FT_Q4_K_S = 14, FT_Q4_K_M = 15,
    FT_Q5_K_S = 16, FT_Q5_K_M = 17, FT_Q6_K = 18, FT_IQ2_XXS = 19, FT_IQ2_XS = 20, FT_Q2_K_S = 21,
    FT_IQ3_XS = 22, FT_IQ3_XXS = 23, FT_IQ1_S = 24, FT_IQ4_NL = 25, FT_IQ3_S = 26, FT_IQ3_M = 27,
    FT_IQ2_S = 28, FT_IQ2_M = 29, FT_IQ4_XS = 30, FT_IQ1_M = 31, FT_BF16 = 32,
};

static const struct {
    const char *name;
    int ftype, type;
} FTYPES[] = {
    {"Q4_0", FT_Q4_0, MS_TYPE_Q4_0},       {"Q4_1", FT_Q4_1, MS_TYPE_Q4_1},
    {"Q5_0", FT_Q5_0, MS_TYPE_Q5_0},       {"Q5_1", FT_Q5_1, MS_TYPE_Q5_1},
    {"IQ2_XXS", FT_IQ2_XXS, MS_TYPE_IQ2_XXS}, {"IQ2_XS", FT_IQ2_XS, MS_TYPE_IQ2_XS},
    {"IQ2_S", FT_IQ2_S, MS_TYPE_IQ2_XS},   {"IQ2_M", FT_IQ2_M, MS_TYPE_IQ2_S},
    {"IQ1_S", FT_IQ1_S, MS_TYPE_IQ1_S},    {"IQ1_M", FT_IQ1_M, MS_TYPE_IQ1_M},
    {"Q2_K", FT_Q2_K, MS_TYPE_Q2_K},       {"Q2_K_S", FT_Q2_K_S, MS_TYPE_Q2_K},
    {"IQ3_XXS", FT_IQ3_XXS, MS_TYPE_IQ3_XXS}, {"IQ3_S", FT_IQ3_S, MS_TYPE_IQ3_S},
    {"IQ3_M", FT_IQ3_M, MS_TYPE_IQ3_S},    {"Q3_K", FT_Q3_K_M, MS_TYPE_Q3_K},
    {"IQ3_XS", FT_IQ3_XS, MS_TYPE_IQ3_S},  {"Q3_K_S", FT_Q3_K_S, MS_TYPE_Q3_K},
    {"Q3_K_M", FT_Q3_K_M, MS_TYPE_Q3_K},   {"Q3_K_L", FT_Q3_K_L, MS_TYPE_Q3_K},
    {"IQ4_NL", FT_IQ4_NL, MS_TYPE_IQ4_NL}, {"IQ4_XS", FT_IQ4_XS, MS_TYPE_IQ4_XS},
    {"Q4_K", FT_Q4_K_M, MS_TYPE_Q4_K},     {"Q4_K_S", FT_Q4_K_S, MS_TYPE_Q4_K},
    {"Q4_K_M", FT_Q4_K_M, MS_TYPE_Q4_K},   {"Q5_K", FT_Q5_K_M, MS_TYPE_Q5_K},
    {"Q5_K_S", FT_Q5_K_S, MS_TYPE_Q5_K},   {"Q5_K_M", FT_Q5_K_M, MS_TYPE_Q5_K},
    {"Q6_K", FT_Q6_K, MS_TYPE_Q6_K},       {"Q8_0", FT_Q8_0, MS_TYPE_Q8_0},
    {"F16", FT_F16, MS_TYPE_F16},          {"BF16", FT_BF16, MS_TYPE_BF16},
    {"F32", FT_F32, MS_TYPE_F32},
};

void quantize_model_opts_default(quantize_model_opts *o)
{
    memset(o, 0, sizeof *o);
    o->token_embd_type = -1;
    o->output_type = -1;
    o->recipe = -1;
}

int quantize_model_type_parse(const char *name)
{
    for (int t = 0; t < MS_TYPE_COUNT; ++t) {
        const quant_type_info *qi = quant_info(t);
        if (qi && qi->in_files && !strcasecmp(qi->name, name)) return t;
    }
    return -1;
}

int quantize_model_add_override(quantize_model_opts *o, const char *spec, char *err, size_t errlen)
{
    const char *eq = strchr(spec, '=');
    if (!eq || eq == spec || !eq[1]) {
        snprintf(err, errlen, "malformed tensor type '%s' (want REGEX=TYPE)", spec);
        return -EINVAL;
    }
    const int type = quantize_model_type_parse(eq + 1);
    if (type < 0 || !quantize_supported(type)) {
        snprintf(err, errlen, "invalid quantization type '%s' in '%s'", eq + 1, spec);
        return -EINVAL;
    }
    if (o->n_overrides >= QUANTIZE_MAX_OVERRIDES) {
        snprintf(err, errlen, "more than %d tensor type overrides", QUANTIZE_MAX_OVERRIDES);
        return -EINVAL;
    }
    char *re = strndup(spec, (size_t)(eq - spec));
    if (!re) return -ENOMEM;
    for (char *p = re; *p; ++p) *p = (char)tolower((unsigned char)*p); /* as the reference */
    o->override_re[o->n_overrides] = re;
    o->override_type[o->n_overrides++] = type;
    return 0;
}

int quantize_model_add_override_file(quantize_model_opts *o, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -errno;
    }
    char word[4096];
    int rc = 0;
    while (rc == 0 && fscanf(f, "%4095s", word) == 1) rc = quantize_model_add_override(o, word, err, errlen);
    fclose(f);
    return rc;
}

/* ---- plan ---- */

enum cat { CAT_OTHER, CAT_OUTPUT, CAT_TOKEN_EMBD, CAT_ATTN_QKV, CAT_ATTN_KV_B, CAT_ATTN_V, CAT_ATTN_K,
           CAT_ATTN_Q, CAT_ATTN_OUTPUT, CAT_FFN_UP, CAT_FFN_GATE, CAT_FFN_DOWN };

static int category(const char *n)
{
    if (!strcmp(n, "output.weight")) return CAT_OUTPUT;
    if (!strcmp(n, "token_embd.weight") || !strcmp(n, "per_layer_token_embd.weight")) return CAT_TOKEN_EMBD;
    if (strstr(n, "attn_qkv.weight")) return CAT_ATTN_QKV;
    if (strstr(n, "attn_kv_b.weight")) return CAT_ATTN_KV_B;
    if (strstr(n, "attn_v.weight")) return CAT_ATTN_V;
    if (strstr(n, "attn_k.weight")) return CAT_ATTN_K;
    if (strstr(n, "attn_q.weight")) return CAT_ATTN_Q;
    if (strstr(n, "attn_output.weight")) return CAT_ATTN_OUTPUT;
    if (strstr(n, "ffn_up")) return CAT_FFN_UP;
    if (strstr(n, "ffn_gate")) return CAT_FFN_GATE;
    if (strstr(n, "ffn_down")) return CAT_FFN_DOWN;
    return CAT_OTHER;
}

static bool cat_attn_v(int c) { return c == CAT_ATTN_V || c == CAT_ATTN_QKV || c == CAT_ATTN_KV_B; }

/* The reference's tensor_allows_quantization, for the names a DeepSeek (or
 * any llama.cpp text model) file holds. */
static bool allows_quantization(const gguf_tensor *t)
{
    if (t->n_dims < 2) return false;
    const char *n = t->name;
    const size_t len = strlen(n);
    if (len < 6 || strcmp(n + len - 6, "weight")) return false;
    static const char *const skip[] = {
        "_norm.weight", "ffn_gate_inp.weight", "ffn_gate_tid2eid.weight", "altup", "laurel",
        "per_layer_model_proj", "ssm_conv1d", "shortconv.conv.weight", "indexer.k_proj.weight",
        "indexer.q_proj.weight", "time_mix_first.weight", "time_mix_w0.weight", "time_mix_w1.weight",
        "time_mix_w2.weight", "time_mix_v0.weight", "time_mix_v1.weight", "time_mix_v2.weight",
        "time_mix_a0.weight", "time_mix_a1.weight", "time_mix_a2.weight", "time_mix_g1.weight",
        "time_mix_g2.weight", "time_mix_decay_w1.weight", "time_mix_decay_w2.weight",
        "time_mix_lerp_fused.weight", "attn_rel_b.weight", ".position_embd", "sam.pos_embd", "sam.neck.",
        "sam.net_", ".rel_pos", ".patch_embd", ".patch_merger", "a.rvq.codebook", "mm.a.code_embd"};
    for (size_t i = 0; i < sizeof skip / sizeof skip[0]; ++i)
        if (strstr(n, skip[i])) return false;
    if (!strcmp(n, "position_embd.weight") || !strcmp(n, "token_types.weight")) return false;
    return true;
}

typedef struct plan_state {
    int ftype;
    bool has_imatrix, tied_embd, falcon;
    int n_expert, n_gqa;
    int n_attn_wv, n_ffn, i_attn_wv, i_ffn_down, i_ffn_gate, i_ffn_up;
    int n_fallback;
} plan_state;

static bool use_more_bits(int i, int n) { return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2; }

/* Layer index for the ffn rules: parsed from the name for MoE models (the
 * reference's layer_info), else the running counter. */
static int layer_of(const plan_state *s, int counter, const char *name, char *err, size_t errlen, int *out)
{
    if (s->n_expert > 1) {
        int il;
        if (sscanf(name, "blk.%d.", &il) != 1 || il < 0 || il >= s->n_ffn) {
            snprintf(err, errlen, "%s: cannot determine its layer in [0, %d)", name, s->n_ffn);
            return -EBADMSG;
        }
        *out = il;
    } else {
        *out = counter;
    }
    return 0;
}

/* llama_tensor_get_type_impl: the ftype's mix rules. */
static int mix_type(plan_state *s, int t, const gguf_tensor *tn, int cat, char *err, size_t errlen)
{
    const int ft = s->ftype;
    const char *name = tn->name;
    int il = 0, rc;
    if (cat == CAT_OUTPUT || (s->tied_embd && cat == CAT_TOKEN_EMBD)) {
        const quant_type_info *qi = quant_info(t);
        if (s->falcon || tn->ne[0] % qi->blck) t = MS_TYPE_Q8_0;
        else if (ft == FT_IQ2_XXS || ft == FT_IQ2_XS || ft == FT_IQ3_XXS || ft == FT_IQ1_S || ft == FT_IQ2_S ||
                 ft == FT_IQ2_M || ft == FT_IQ1_M)
            t = MS_TYPE_Q5_K;
        else if (t != MS_TYPE_Q8_0) t = MS_TYPE_Q6_K;
    } else if (cat == CAT_TOKEN_EMBD) {
        if (ft == FT_IQ2_XXS || ft == FT_IQ2_XS || ft == FT_IQ1_S || ft == FT_IQ1_M) t = MS_TYPE_Q2_K;
        else if (ft == FT_IQ2_S || ft == FT_IQ2_M || ft == FT_IQ3_XXS) t = MS_TYPE_IQ3_S;
    } else if (ft == FT_IQ2_XXS || ft == FT_IQ2_XS || ft == FT_IQ1_S || ft == FT_IQ2_S || ft == FT_IQ2_M ||
               ft == FT_IQ1_M) {
        if (cat_attn_v(cat)) {
            if (s->n_gqa >= 4 || s->n_expert >= 4) t = MS_TYPE_Q4_K;
            else t = ft == FT_IQ2_S || ft == FT_IQ2_M ? MS_TYPE_IQ3_S : MS_TYPE_Q2_K;
            ++s->i_attn_wv;
        } else if (s->n_expert == 8 && cat == CAT_ATTN_K) {
            t = MS_TYPE_Q4_K;
        } else if (cat == CAT_FFN_DOWN) {
            if (s->i_ffn_down < s->n_ffn / 8) t = ft == FT_IQ2_S || ft == FT_IQ2_M ? MS_TYPE_IQ3_S : MS_TYPE_Q2_K;
            ++s->i_ffn_down;
        } else if (cat == CAT_ATTN_OUTPUT) {
            if (s->n_expert == 8) t = MS_TYPE_Q5_K;
            else if (ft == FT_IQ1_S || ft == FT_IQ1_M) t = MS_TYPE_IQ2_XXS;
            else if (ft == FT_IQ2_S || ft == FT_IQ2_M) t = MS_TYPE_IQ3_S;
        }
    } else if (cat_attn_v(cat)) {
        if (ft == FT_Q2_K) t = s->n_gqa >= 4 ? MS_TYPE_Q4_K : MS_TYPE_Q3_K;
        else if (ft == FT_Q2_K_S && s->n_gqa >= 4) t = MS_TYPE_Q4_K;
        else if (ft == FT_IQ3_XXS) t = s->n_gqa >= 4 ? MS_TYPE_Q4_K : !s->has_imatrix ? MS_TYPE_IQ3_S : MS_TYPE_IQ3_XXS;
        else if ((ft == FT_IQ3_XS || ft == FT_IQ3_S) && s->n_gqa >= 4) t = MS_TYPE_Q4_K;
        else if (ft == FT_IQ3_M) t = MS_TYPE_Q4_K;
        else if (ft == FT_Q3_K_M) t = s->i_attn_wv < 2 ? MS_TYPE_Q5_K : MS_TYPE_Q4_K;
        else if (ft == FT_Q3_K_L) t = MS_TYPE_Q5_K;
        else if ((ft == FT_IQ4_NL || ft == FT_IQ4_XS) && s->n_gqa >= 4) t = MS_TYPE_Q5_K;
        else if ((ft == FT_Q4_K_M || ft == FT_Q5_K_M) && use_more_bits(s->i_attn_wv, s->n_attn_wv)) t = MS_TYPE_Q6_K;
        else if (ft == FT_Q4_K_S && s->i_attn_wv < 4) t = MS_TYPE_Q5_K;
        /* (the reference's 70B-model bump does not apply to these architectures) */
        if (s->n_expert == 8) t = MS_TYPE_Q8_0;
        ++s->i_attn_wv;
    } else if (cat == CAT_ATTN_K) {
        if (s->n_expert == 8) t = MS_TYPE_Q8_0;
        else if (ft == FT_IQ3_XS) t = MS_TYPE_IQ3_XXS;
        else if (ft == FT_IQ3_XXS) t = MS_TYPE_IQ2_S;
    } else if (cat == CAT_ATTN_Q) {
        if (ft == FT_IQ3_XS) t = MS_TYPE_IQ3_XXS;
        else if (ft == FT_IQ3_XXS) t = MS_TYPE_IQ2_S;
    } else if (cat == CAT_FFN_DOWN) {
        if ((rc = layer_of(s, s->i_ffn_down, name, err, errlen, &il))) return rc;
        const int nl = s->n_ffn;
        if (ft == FT_Q2_K) t = MS_TYPE_Q3_K;
        else if (ft == FT_Q2_K_S) {
            if (il < nl / 8) t = MS_TYPE_Q4_K;
        } else if (ft == FT_IQ3_XXS && !s->has_imatrix) t = il < nl / 8 ? MS_TYPE_Q4_K : MS_TYPE_Q3_K;
        else if (ft == FT_Q3_K_M)
            t = il < nl / 16 ? MS_TYPE_Q5_K : !s->falcon || use_more_bits(il, nl) ? MS_TYPE_Q4_K : MS_TYPE_Q3_K;
        else if (ft == FT_IQ3_M && (il < nl / 8 || (s->n_expert == 8 && use_more_bits(il, nl)))) t = MS_TYPE_Q4_K;
        else if (ft == FT_Q3_K_L) t = s->falcon ? MS_TYPE_Q4_K : MS_TYPE_Q5_K;
        else if (ft == FT_Q4_K_M) {
            if (s->falcon) t = il < nl / 16 ? MS_TYPE_Q6_K : use_more_bits(il, nl) ? MS_TYPE_Q5_K : MS_TYPE_Q4_K;
            else if (use_more_bits(il, nl)) t = MS_TYPE_Q6_K;
        } else if (il < nl / 8 && (ft == FT_IQ4_NL || ft == FT_IQ4_XS) && !s->has_imatrix) t = MS_TYPE_Q5_K;
        else if (ft == FT_Q5_K_M && use_more_bits(il, nl)) t = MS_TYPE_Q6_K;
        else if (ft == FT_Q4_K_S && !s->falcon && il < nl / 8) t = MS_TYPE_Q5_K;
        else if ((ft == FT_Q4_0 || ft == FT_Q5_0) && s->has_imatrix && il < nl / 8)
            t = ft == FT_Q4_0 ? MS_TYPE_Q4_1 : MS_TYPE_Q5_1;
        ++s->i_ffn_down;
    } else if (cat == CAT_ATTN_OUTPUT) {
        if (!s->falcon) {
            if (s->n_expert == 8) {
                if (ft == FT_Q2_K || ft == FT_IQ3_XS || ft == FT_IQ3_XXS || ft == FT_Q3_K_S || ft == FT_Q3_K_M ||
                    ft == FT_IQ4_NL || ft == FT_Q4_K_S || ft == FT_Q4_K_M || ft == FT_IQ3_S || ft == FT_IQ3_M ||
                    ft == FT_IQ4_XS)
                    t = MS_TYPE_Q5_K;
            } else {
                if (ft == FT_Q2_K) t = MS_TYPE_Q3_K;
                else if (ft == FT_IQ3_XXS) t = MS_TYPE_IQ3_S;
                else if (ft == FT_Q3_K_M) t = MS_TYPE_Q4_K;
                else if (ft == FT_Q3_K_L) t = MS_TYPE_Q5_K;
                else if (ft == FT_IQ3_M) t = MS_TYPE_Q4_K;
            }
        } else if (ft == FT_Q3_K_L) {
            t = MS_TYPE_Q4_K;
        }
    } else if (cat == CAT_ATTN_QKV) {
        if (ft == FT_Q3_K_M || ft == FT_Q3_K_L || ft == FT_IQ3_M) t = MS_TYPE_Q4_K;
        else if (ft == FT_Q4_K_M) t = MS_TYPE_Q5_K;
        else if (ft == FT_Q5_K_M) t = MS_TYPE_Q6_K;
    } else if (cat == CAT_FFN_GATE || cat == CAT_FFN_UP) {
        int *ctr = cat == CAT_FFN_GATE ? &s->i_ffn_gate : &s->i_ffn_up;
        if ((rc = layer_of(s, *ctr, name, err, errlen, &il))) return rc;
        if (ft == FT_IQ3_XS && il >= s->n_ffn / 8 && il < 7 * s->n_ffn / 8) t = MS_TYPE_IQ3_XXS;
        ++*ctr;
    }
    return t;
}

/* tensor_type_fallback: a type whose block does not divide the row. */
static int fallback_type(plan_state *s, const gguf_tensor *tn, int t, FILE *log)
{
    const int64_t ncols = tn->ne[0];
    if (ncols % quant_info(t)->blck == 0) return t;
    ++s->n_fallback;
    int r;
    switch (t) {
    case MS_TYPE_IQ1_S: case MS_TYPE_IQ1_M: case MS_TYPE_IQ2_XXS: case MS_TYPE_IQ2_XS: case MS_TYPE_IQ2_S:
    case MS_TYPE_IQ3_XXS: case MS_TYPE_IQ3_S: case MS_TYPE_IQ4_XS: r = MS_TYPE_IQ4_NL; break;
    case MS_TYPE_Q2_K: case MS_TYPE_Q3_K: r = MS_TYPE_Q4_0; break;
    case MS_TYPE_Q4_K: r = MS_TYPE_Q5_0; break;
    case MS_TYPE_Q5_K: r = MS_TYPE_Q5_1; break;
    case MS_TYPE_Q6_K: r = MS_TYPE_Q8_0; break;
    default: r = MS_TYPE_F16; break;
    }
    if (ncols % quant_info(r)->blck) r = MS_TYPE_F16;
    if (log)
        fprintf(log, "warning: %s - ncols %" PRId64 " not divisible by %d (required for %s) -> falling back to %s\n",
                tn->name, ncols, quant_info(t)->blck, quant_info(t)->name, quant_info(r)->name);
    return r;
}

static bool requires_imatrix(const char *name, int t, int ftype)
{
    if (!strcmp(name, "token_embd.weight") || !strcmp(name, "per_layer_token_embd.weight") ||
        !strcmp(name, "output.weight"))
        return false;
    switch (t) {
    case MS_TYPE_IQ3_XXS: case MS_TYPE_IQ2_XXS: case MS_TYPE_IQ2_XS: case MS_TYPE_IQ2_S: case MS_TYPE_IQ1_M:
    case MS_TYPE_IQ1_S: return true;
    case MS_TYPE_Q2_K: return ftype == FT_Q2_K_S;
    default: return false;
    }
}

/* ---- run ---- */

typedef struct tensor_job {
    const gguf_file *g;
    const gguf_tensor *src;
    int type;                 /* target type */
    const float *imatrix;     /* ne0 * ne2 values or NULL */
    struct run_ctx *run;
    int index;
    int64_t row0, nrows;      /* rows (over all experts) held in run->q; nrows 0: none */
    uint64_t row_bytes;       /* quantized bytes of one row */
    int64_t chunk_rows;       /* rows per chunk: a chunk never crosses an expert */
} tensor_job;

/* Floats converted and quantized per step: bounds the working set (an R1
 * token embedding is 3.7 GB of floats, an expert slice 59 MB). */
#define CHUNK_FLOATS (16u << 20)

typedef struct run_ctx {
    const quantize_model_opts *o;
    tpool *pool;
    float *f32;               /* one chunk of floats */
    uint8_t *raw;             /* one chunk of source bytes */
    uint8_t *q;               /* one chunk quantized */
    size_t f32_cap, raw_cap, q_cap;
    int n_tensors;
    uint64_t in_total, in_done;
    struct timespec t0;
    double last_report;       /* seconds since t0 of the last progress line */
    char *err;
    size_t errlen;
} run_ctx;

typedef struct slice_work {
    int type;
    const float *x;
    uint8_t *dst;
    int64_t nrow, n_per_row;
    const float *imatrix;
} slice_work;

static void slice_job(void *ctx, int ith, int nth)
{
    const slice_work *w = ctx;
    long r0, r1;
    tpool_split((long)w->nrow, ith, nth, &r0, &r1);
    if (r1 <= r0) return;
    const size_t rb = quant_row_bytes(w->type, w->n_per_row);
    quantize_chunk(w->type, w->x + r0 * w->n_per_row, w->dst + (size_t)r0 * rb, r1 - r0, w->n_per_row, w->imatrix);
}

static int grow(void **p, size_t *cap, size_t n)
{
    if (*cap >= n) return 0;
    void *q = realloc(*p, n);
    if (!q) return -ENOMEM;
    *p = q;
    *cap = n;
    return 0;
}

static double elapsed_s(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0->tv_sec) + 1e-9 * (double)(t.tv_nsec - t0->tv_nsec);
}

/* Quantizes the chunk holding global row `grow_` (rows of all experts
 * counted together) into run->q. */
static int make_chunk(tensor_job *j, int64_t grow_)
{
    run_ctx *r = j->run;
    const gguf_tensor *t = j->src;
    const int64_t ne0 = t->ne[0], ne1 = t->ne[1];
    const int64_t i2 = grow_ / ne1, within = grow_ % ne1 / j->chunk_rows * j->chunk_rows;
    const int64_t rows = ne1 - within < j->chunk_rows ? ne1 - within : j->chunk_rows;
    const int64_t n = ne0 * rows;
    const size_t src_row = quant_row_bytes((int)t->type, ne0), src_bytes = src_row * (size_t)rows;
    int rc = grow((void **)&r->raw, &r->raw_cap, src_bytes);
    rc = rc ? rc : grow((void **)&r->f32, &r->f32_cap, (size_t)n * sizeof(float));
    rc = rc ? rc : grow((void **)&r->q, &r->q_cap, (size_t)j->row_bytes * (size_t)rows);
    if (rc) {
        snprintf(r->err, r->errlen, "%s: out of memory for %" PRId64 " rows", t->name, rows);
        return rc;
    }
    const int64_t first = i2 * ne1 + within;
    rc = gguf_read(j->g, t->part, t->offset + (uint64_t)first * src_row, r->raw, src_bytes, r->err, r->errlen);
    if (rc) return rc;
    if (t->type == MS_TYPE_F32) memcpy(r->f32, r->raw, (size_t)n * sizeof(float));
    else if (quant_dequantize_row((int)t->type, r->raw, r->f32, n)) {
        snprintf(r->err, r->errlen, "%s: cannot convert %s to float", t->name, quant_info((int)t->type)->name);
        return -ENOTSUP;
    }
    slice_work w = {j->type, r->f32, r->q, rows, ne0, j->imatrix ? j->imatrix + i2 * ne0 : NULL};
    tpool_run(r->pool, slice_job, &w);
    j->row0 = first;
    j->nrows = rows;
    r->in_done += src_bytes;
    if (r->o->log) {
        /* a terminal gets one line redrawn at most 4 times a second; a log
         * file one line per tensor */
        const double s = elapsed_s(&r->t0), frac = r->in_total ? (double)r->in_done / (double)r->in_total : 1.0;
        const bool tty = isatty(fileno(r->o->log));
        if (tty ? s - r->last_report >= 0.25 : first == 0) {
            r->last_report = s;
            const double eta = frac > 0 ? s / frac - s : 0;
            fprintf(r->o->log, "%s[%4d/%4d] %-36s %-7s -> %-7s %5.1f%%  %.0f s, ETA %.0f s%s", tty ? "\r" : "",
                    j->index + 1, r->n_tensors, t->name, quant_info((int)t->type)->name, quant_info(j->type)->name,
                    100.0 * frac, s, eta, tty ? "   " : "\n");
            fflush(r->o->log);
        }
    }
    return 0;
}

static int fill_quantized(void *ud, void *buf, uint64_t off, size_t n)
{
    tensor_job *j = ud;
    uint8_t *out = buf;
    while (n) {
        const int64_t row = (int64_t)(off / j->row_bytes);
        if (row < j->row0 || row >= j->row0 + j->nrows) {
            int rc = make_chunk(j, row);
            if (rc) return rc;
        }
        const uint64_t in = off - (uint64_t)j->row0 * j->row_bytes;
        size_t take = (size_t)((uint64_t)j->nrows * j->row_bytes - in);
        if (take > n) take = n;
        memcpy(out, j->run->q + in, take);
        out += take;
        off += take;
        n -= take;
    }
    return 0;
}

static int fill_copy(void *ud, void *buf, uint64_t off, size_t n)
{
    tensor_job *j = ud;
    j->run->in_done += n;
    return gguf_read(j->g, j->src->part, j->src->offset + off, buf, n, j->run->err, j->run->errlen);
}

/* Tensor-type file order: non-layer tensors by name, then layers in
 * numeric order, names sorted within a layer. */
static int map_order(const char *a, const char *b)
{
    int la = -1, lb = -1;
    sscanf(a, "blk.%d.", &la);
    sscanf(b, "blk.%d.", &lb);
    if (la != lb) return la < lb ? -1 : 1;
    return strcmp(a, b);
}

/* The plan as a tensor-type file: one ^name$=type per quantized weight,
 * dots escaped, types as ggml names them ("q4_K", "iq1_s"). */
static void print_plan(FILE *f, const gguf_tensor **ts, const tensor_job *jobs, int nt)
{
    int *ord = malloc((size_t)nt * sizeof *ord);
    if (!ord) return;
    int n = 0;
    for (int i = 0; i < nt; ++i)
        if (allows_quantization(ts[i])) ord[n++] = i;
    for (int i = 1; i < n; ++i) /* insertion sort: a few thousand names */
        for (int k = i; k > 0 && map_order(ts[ord[k - 1]]->name, ts[ord[k]]->name) > 0; --k) {
            int x = ord[k];
            ord[k] = ord[k - 1];
            ord[k - 1] = x;
        }
    for (int i = 0; i < n; ++i) {
        const char *name = ts[ord[i]]->name;
        fputc('^', f);
        for (const char *p = name; *p; ++p) {
            if (strchr(".^$*+?()[]{}|\\", *p)) fputc('\\', f);
            fputc(*p, f);
        }
        char tn[32];
        snprintf(tn, sizeof tn, "%s", quant_info(jobs[ord[i]].type)->name);
        for (char *p = tn; *p; ++p) *p = (char)tolower((unsigned char)*p);
        const size_t l = strlen(tn);
        if (l > 2 && tn[l - 2] == '_' && tn[l - 1] == 'k') tn[l - 1] = 'K';
        fprintf(f, "$=%s\n", tn);
    }
    free(ord);
}

static int cmp_tensor_name(const void *a, const void *b)
{
    return strcmp((*(const gguf_tensor *const *)a)->name, (*(const gguf_tensor *const *)b)->name);
}

static int cmp_tensor_place(const void *a, const void *b)
{
    const gguf_tensor *x = *(const gguf_tensor *const *)a, *y = *(const gguf_tensor *const *)b;
    if (x->part != y->part) return x->part < y->part ? -1 : 1;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

static int arch_u32(const gguf_file *g, const char *arch, const char *key, uint32_t *out)
{
    char k[256];
    snprintf(k, sizeof k, "%s.%s", arch, key);
    char e[64];
    return gguf_get_u32(g, k, out, e, sizeof e);
}

int quantize_model_run(const quantize_model_opts *o, char *err, size_t errlen)
{
    int rc = 0, ftype = -1, default_type = -1;
    const char *ftype_name = o->recipe >= 0 ? recipe_ftype(o->recipe) : o->ftype;
    for (size_t i = 0; ftype_name && i < sizeof FTYPES / sizeof FTYPES[0]; ++i)
        if (!strcasecmp(FTYPES[i].name, ftype_name)) {
            ftype = FTYPES[i].ftype;
            default_type = FTYPES[i].type;
        }
    if (ftype < 0) {
        snprintf(err, errlen, "unknown quantization type '%s'", ftype_name ? ftype_name : "(none)");
        return -EINVAL;
    }
    if (!o->dry_run && o->out) {
        struct stat si, so;
        if (stat(o->in, &si) == 0 && stat(o->out, &so) == 0 && si.st_dev == so.st_dev && si.st_ino == so.st_ino) {
            snprintf(err, errlen, "input and output files are the same: '%s'", o->in);
            return -EINVAL;
        }
    }
    gguf_file *g = NULL;
    imatrix_data *im = NULL;
    pcre2_code **re = NULL;
    const gguf_tensor **ts = NULL;
    tensor_job *jobs = NULL;
    gguf_writer *w = NULL;
    run_ctx run = {.o = o, .err = err, .errlen = errlen};
    if ((rc = gguf_open(&g, o->in, err, errlen))) return rc;
    if (g->repack_version) { /* its private types have no dequantization */
        snprintf(err, errlen, "%s: a file of moestream repack (repacked experts); quantize the original GGUF", o->in);
        rc = -ENOTSUP;
        goto out;
    }
    if (o->imatrix && (rc = imatrix_load(&im, o->imatrix, err, errlen))) goto out;
    if (im && o->log) fprintf(o->log, "loaded %zu importance matrix entries from %s computed on %" PRId64 " chunks\n",
                              im->n_entries, o->imatrix, im->chunk_count);
    if (im)
        for (size_t i = 0; i < im->n_entries; ++i)
            for (int64_t k = 0; k < im->entries[i].n; ++k)
                if (!isfinite(im->entries[i].values[k])) {
                    snprintf(err, errlen, "%s: imatrix entry %s holds a non-finite value", o->imatrix, im->entries[i].name);
                    rc = -EBADMSG;
                    goto out;
                }

    re = calloc((size_t)o->n_overrides + 1, sizeof *re);
    if (!re) {
        rc = -ENOMEM;
        goto out;
    }
    for (int i = 0; i < o->n_overrides; ++i) {
        int ec;
        PCRE2_SIZE eo;
        re[i] = pcre2_compile((PCRE2_SPTR)o->override_re[i], PCRE2_ZERO_TERMINATED, 0, &ec, &eo, NULL);
        if (!re[i]) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(ec, msg, sizeof msg);
            snprintf(err, errlen, "tensor type pattern '%s': %s at offset %zu", o->override_re[i], (char *)msg, (size_t)eo);
            rc = -EINVAL;
            goto out;
        }
    }

    /* model facts the rules use */
    plan_state st = {.ftype = ftype, .has_imatrix = im != NULL, .tied_embd = true};
    gguf_str arch = {"", 0};
    char e2[128];
    gguf_get_str(g, "general.architecture", &arch, e2, sizeof e2);
    st.falcon = !strcmp(arch.s, "falcon");
    uint32_t v = 0;
    st.n_expert = arch_u32(g, arch.s, "expert_count", &v) == 0 ? (int)v : 0;
    uint32_t heads = 0, heads_kv = 0;
    arch_u32(g, arch.s, "attention.head_count", &heads);
    if (arch_u32(g, arch.s, "attention.head_count_kv", &heads_kv) || !heads_kv) heads_kv = heads;
    st.n_gqa = heads_kv ? (int)(heads / heads_kv) : 1;
    st.n_ffn = arch_u32(g, arch.s, "block_count", &v) == 0 ? (int)v : 0;
    const int n_dense = arch_u32(g, arch.s, "leading_dense_block_count", &v) == 0 ? (int)v : 0;
    if (o->recipe >= 0 && (st.n_expert < 2 || n_dense > st.n_ffn)) {
        snprintf(err, errlen, "%s: recipe %s needs a MoE model (expert_count %d, %d of %d blocks dense)", o->in,
                 recipe_name(o->recipe), st.n_expert, n_dense, st.n_ffn);
        rc = -EINVAL;
        goto out;
    }

    const int nt = (int)g->n_tensors;
    ts = malloc((size_t)nt * sizeof *ts);
    jobs = calloc((size_t)nt, sizeof *jobs);
    if (!ts || !jobs) {
        rc = -ENOMEM;
        goto out;
    }
    for (int i = 0; i < nt; ++i) ts[i] = &g->tensors[i];
    const bool keep_split = o->keep_split && g->n_parts > 1;
    qsort(ts, (size_t)nt, sizeof *ts, keep_split ? cmp_tensor_place : cmp_tensor_name);
    for (int i = 0; i < nt; ++i) {
        const int c = category(ts[i]->name);
        if (cat_attn_v(c)) ++st.n_attn_wv;
        if (c == CAT_OUTPUT) st.tied_embd = false;
    }

    /* plan */
    pcre2_match_data *md = pcre2_match_data_create(4, NULL);
    uint64_t size_in = 0, size_out = 0;
    bool dry_needs_imatrix = false;
    for (int i = 0; i < nt && !rc; ++i) {
        const gguf_tensor *t = ts[i];
        const int c = category(t->name);
        int type = (int)t->type;
        const bool allow = allows_quantization(t);
        if (allow) {
            if (o->token_embd_type >= 0 && c == CAT_TOKEN_EMBD) type = o->token_embd_type;
            else if (o->output_type >= 0 && c == CAT_OUTPUT) type = o->output_type;
            else {
                type = default_type;
                if (quant_info(default_type)->blck > 1) {
                    bool manual = false;
                    for (int k = 0; k < o->n_overrides; ++k)
                        if (pcre2_match(re[k], (PCRE2_SPTR)t->name, PCRE2_ZERO_TERMINATED, 0, 0, md, NULL) >= 0) {
                            type = o->override_type[k];
                            manual = true;
                            break;
                        }
                    if (!manual && o->recipe >= 0) {
                        const int rt = recipe_tensor_type(o->recipe, t->name, n_dense, st.n_ffn - n_dense);
                        if (rt >= 0) {
                            type = rt;
                            manual = true;
                        }
                    }
                    if (!manual && !o->pure) {
                        type = mix_type(&st, type, t, c, err, errlen);
                        if (type < 0) {
                            rc = type;
                            break;
                        }
                    }
                    type = fallback_type(&st, t, type, o->log);
                }
            }
        }
        tensor_job *j = &jobs[i];
        *j = (tensor_job){.g = g, .src = t, .type = type, .run = &run, .index = i};
        const bool need = allow && requires_imatrix(t->name, type, ftype);
        if (allow && type != (int)t->type) {
            if (!quantize_supported(type)) {
                snprintf(err, errlen, "%s: cannot quantize to %s", t->name, quant_info(type)->name);
                rc = -ENOTSUP;
                break;
            }
            const int st_type = (int)t->type;
            if (st_type != MS_TYPE_F32 && st_type != MS_TYPE_F16 && st_type != MS_TYPE_BF16 &&
                st_type != MS_TYPE_Q8_0 && !o->allow_requantize) {
                snprintf(err, errlen, "%s: requantizing from type %s is disabled (--allow-requantize)", t->name,
                         quant_info(st_type)->name);
                rc = -EINVAL;
                break;
            }
            if (im) {
                const imatrix_entry *e = imatrix_find(im, t->name);
                if (e) {
                    if (e->n == t->ne[0] * t->ne[2]) j->imatrix = e->values;
                    else if (c != CAT_TOKEN_EMBD) {
                        snprintf(err, errlen, "imatrix size %" PRId64 " is different from tensor size %" PRId64 " for %s",
                                 e->n, t->ne[0] * t->ne[2], t->name);
                        rc = -EINVAL;
                        break;
                    }
                }
            }
            if (need && !j->imatrix) {
                if (o->dry_run) dry_needs_imatrix = true;
                else {
                    snprintf(err, errlen, "%s: %s needs an importance matrix (--imatrix)%s", t->name,
                             quant_info(type)->name, im ? "; the given one has no entry for this tensor" : "");
                    rc = -EINVAL;
                    break;
                }
            }
            if (quantize_needs_imatrix(type) && !j->imatrix && !o->dry_run) {
                snprintf(err, errlen, "%s: %s needs an importance matrix (--imatrix)", t->name, quant_info(type)->name);
                rc = -EINVAL;
                break;
            }
            j->row_bytes = quant_row_bytes(type, t->ne[0]);
            j->chunk_rows = (int64_t)(CHUNK_FLOATS / (uint64_t)t->ne[0]);
            if (j->chunk_rows < 1) j->chunk_rows = 1;
        }
        const uint64_t nb_out = (allow && type != (int)t->type)
                                    ? j->row_bytes * (uint64_t)(t->ne[1] * t->ne[2] * t->ne[3])
                                    : t->nbytes;
        size_in += t->nbytes;
        size_out += nb_out;
        if (o->log && o->dry_run)
            fprintf(o->log, "[%4d/%4d] %-36s [%5" PRId64 ", %5" PRId64 ", %4" PRId64 "] %-7s -> %-7s %10.2f MiB -> %10.2f MiB\n",
                    i + 1, nt, t->name, t->ne[0], t->ne[1], t->ne[2], quant_info((int)t->type)->name,
                    quant_info(type)->name, (double)t->nbytes / 1048576.0, (double)nb_out / 1048576.0);
    }
    pcre2_match_data_free(md);
    if (rc) goto out;
    if (o->print_types) print_plan(o->print_types, ts, jobs, nt);
    for (int i = 0; i < nt && !o->dry_run; ++i)
        if (jobs[i].type != (int)ts[i]->type && (rc = quantize_init_type(jobs[i].type))) {
            snprintf(err, errlen, "cannot build the %s search tables: out of memory", quant_info(jobs[i].type)->name);
            goto out;
        }
    run.n_tensors = nt;
    run.in_total = size_in;
    if (o->log)
        fprintf(o->log, "%smodel size %.2f MiB, quant size %.2f MiB (%.2f%%)%s\n", o->dry_run ? "" : "plan: ",
                (double)size_in / 1048576.0, (double)size_out / 1048576.0, 100.0 * (double)size_out / (double)size_in,
                dry_needs_imatrix ? "; this quantization will require an importance matrix" : "");
    if (st.n_fallback && o->log)
        fprintf(o->log, "warning: %d of %d tensor(s) required fallback quantization\n", st.n_fallback, nt);
    if (o->dry_run) goto out;

    /* output */
    w = gguf_writer_create();
    if (!w) {
        rc = -ENOMEM;
        goto out;
    }
    rc = gguf_writer_copy_kvs(w, g, "split.");
    rc = rc ? rc : gguf_writer_set_u32(w, "general.quantization_version", 2);
    rc = rc ? rc : gguf_writer_set_u32(w, "general.file_type", (uint32_t)ftype);
    if (!rc && im) {
        /* as the reference's tool: kv overrides, strings cut at 127 bytes,
         * integers as u32 */
        char s[128];
        snprintf(s, sizeof s, "%s", o->imatrix);
        rc = gguf_writer_set_str(w, "quantize.imatrix.file", s);
        if (!rc && im->dataset) {
            snprintf(s, sizeof s, "%s", im->dataset);
            rc = gguf_writer_set_str(w, "quantize.imatrix.dataset", s);
        }
        rc = rc ? rc : gguf_writer_set_u32(w, "quantize.imatrix.entries_count", (uint32_t)im->n_entries);
        if (!rc && im->chunk_count > 0)
            rc = gguf_writer_set_u32(w, "quantize.imatrix.chunks_count", (uint32_t)im->chunk_count);
    }
    for (int i = 0; i < nt && !rc; ++i) {
        tensor_job *j = &jobs[i];
        const bool q = j->type != (int)j->src->type;
        rc = gguf_writer_add_tensor(w, j->src->name, (uint32_t)j->type, j->src->n_dims, j->src->ne, NULL,
                                    q ? fill_quantized : fill_copy, j);
    }
    if (rc) {
        snprintf(err, errlen, "%s: cannot set up the output (%s)", o->out, strerror(-rc));
        goto out;
    }
    if ((rc = tpool_create(&run.pool, o->n_threads, err, errlen))) goto out;
    clock_gettime(CLOCK_MONOTONIC, &run.t0);
    if (keep_split) {
        uint32_t *part = malloc((size_t)nt * sizeof *part);
        if (!part) {
            rc = -ENOMEM;
            goto out;
        }
        for (int i = 0; i < nt; ++i) part[i] = ts[i]->part;
        rc = gguf_writer_write_parts(w, o->out, part, NULL, err, errlen);
        free(part);
    } else {
        rc = gguf_writer_write(w, o->out, o->split_max_bytes, NULL, err, errlen);
    }
    if (o->log) fprintf(o->log, "\n%s %s in %.1f s\n", rc ? "failed writing" : "wrote", o->out, elapsed_s(&run.t0));
out:
    tpool_destroy(run.pool);
    gguf_writer_free(w);
    free(run.f32);
    free(run.raw);
    free(run.q);
    free(jobs);
    free(ts);
    if (re)
        for (int i = 0; i < o->n_overrides; ++i) pcre2_code_free(re[i]);
    free(re);
    imatrix_free(im);
    gguf_close(g);
    return rc;
}
