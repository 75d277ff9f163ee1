/* model.h - a DeepSeek-V3/R1 (arch "deepseek2") model bound to a GGUF file.
 *
 * Owns: reading every hyperparameter from metadata, binding and validating
 * every tensor against the expected layout (both attention forms: legacy
 * attn_kv_b and split attn_k_b/attn_v_b), and holding the resident weights
 * in their GGUF blocks (no F32 copies of big tensors).
 * Does not own: the forward pass (forward.c), expert paging (io/), tokens.
 * Errors: model_load returns 0 or a negative errno with a message naming the
 * file, tensor, expected and actual.
 * Thread safety: a loaded model is immutable and may be shared by threads. */
#ifndef MS_MODEL_H
#define MS_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bulkread.h"
#include "hugemem.h"
#include "gguf.h"

enum model_gating { MODEL_GATING_SOFTMAX = 1, MODEL_GATING_SIGMOID = 2 };
enum model_rope_scaling { MODEL_ROPE_NONE = 0, MODEL_ROPE_LINEAR = 1, MODEL_ROPE_YARN = 2 };

typedef struct model_hparams {
    uint32_t n_vocab;
    uint32_t n_embd;        /* residual width (7168 for R1) */
    uint32_t n_layer;       /* blocks (61) */
    uint32_t n_dense_lead;  /* leading dense blocks (3) */
    uint32_t n_head;        /* attention heads (128) */
    uint32_t n_ff;          /* dense FFN width (18432) */
    uint32_t n_ff_exp;      /* routed/shared expert width (2048) */
    uint32_t n_expert;      /* routed experts per MoE block (256) */
    uint32_t n_expert_used; /* chosen per token (8) */
    uint32_t n_expert_shared;
    uint32_t n_group;       /* expert groups for group-limited routing; 1 = plain top-k */
    uint32_t n_group_used;
    uint32_t q_lora;        /* 0 = no q LoRA (lite models: attn_q) */
    uint32_t kv_lora;       /* latent width (512) */
    uint32_t qk_nope;       /* per-head non-rope q/k dims (128) */
    uint32_t qk_rope;       /* per-head rope dims (64) */
    uint32_t v_head;        /* per-head value dims (128) */
    uint32_t n_ctx_train;
    float rms_eps;
    uint32_t gating;        /* enum model_gating */
    bool weights_norm;
    float weights_scale;
    bool is_mla;            /* split attn_k_b / attn_v_b form */
    bool has_group_keys;    /* file carried expert_group_count/used_count */
    /* RoPE / YaRN, as the reference engine derives them */
    int rope_scaling;       /* enum model_rope_scaling */
    float rope_freq_base;
    float rope_freq_scale; /* 1 / rope.scaling.factor */
    float yarn_log_mul;    /* rope.scaling.yarn_log_multiplier / 0.1 (0 if absent) */
    float yarn_beta_fast, yarn_beta_slow;
    float rope_attn_factor;
    uint32_t n_ctx_orig;
} model_hparams;

/* One weight matrix or stack of matrices (experts, heads) in GGUF blocks.
 * y[o] = dot(row o, x): rows have n_in elements, there are n_out rows per
 * matrix and n_mat matrices. */
typedef struct mweight {
    const char *name;     /* borrowed from the gguf_file */
    int type;             /* enum ms_type */
    int64_t n_in, n_out, n_mat;
    size_t row_bytes;
    size_t mat_bytes;     /* n_out * row_bytes */
    const uint8_t *data;  /* resident bytes, or NULL when paged (routed experts) */
    uint32_t part;        /* file part and absolute offset, for paging */
    uint64_t offset;
    /* Routed experts only: > 0 when read into RAM repacked (simd/repack.h;
     * data then holds that layout, this many bytes per matrix); decided at
     * binding by repack_use, 0 again when the experts are mapped.  Paged
     * experts come as the file's bytes whatever this says (the forward pass
     * reads it only for experts without an expert_src). */
    size_t rp_mat_bytes;
    /* Routed experts of a `moestream repack` file (a moestream-private type,
     * simd/quant.h): the file stores each matrix in the repacked layout,
     * file_mat_bytes long (type is then the plain type).  Kept so
     * (rp_mat_bytes = file_mat_bytes) where repack_use says so, else
     * unpacked to the plain rows as they are read or land in the pool.
     * Every other weight: file_rp false, file_mat_bytes = mat_bytes. */
    bool file_rp;
    size_t file_mat_bytes;
    /* A resident Q4_K matrix held in the 16-row layout (simd/repack_q4k.h;
     * set by model_read_resident): only matmul.c's products read it. */
    bool r16;
} mweight;

/* Bytes between matrices in w->data. */
static inline size_t mweight_stride(const mweight *w) { return w->rp_mat_bytes ? w->rp_mat_bytes : w->mat_bytes; }

typedef struct mlayer {
    const float *attn_norm;  /* (n_embd) */
    const float *q_a_norm;   /* (q_lora) or NULL */
    const float *kv_a_norm;  /* (kv_lora) */
    const float *ffn_norm;   /* (n_embd) */
    mweight wq_a, wq_b, wq;  /* wq only when q_lora == 0 */
    mweight wkv_a;           /* (n_embd -> kv_lora + qk_rope) */
    mweight wkv_b;           /* legacy: (kv_lora -> n_head*(qk_nope+v_head)) */
    mweight wk_b, wv_b;      /* split form: (qk_nope -> kv_lora) x n_head, (kv_lora -> v_head) x n_head */
    mweight wo;              /* (n_head*v_head -> n_embd) */
    bool is_moe;
    mweight ffn_gate, ffn_up, ffn_down;    /* dense blocks */
    mweight gate_inp;                      /* router (n_embd -> n_expert) */
    const float *exp_probs_b;              /* (n_expert) selection bias or NULL */
    mweight gate_exps, up_exps, down_exps; /* routed, n_mat = n_expert */
    mweight gate_sh, up_sh, down_sh;       /* shared expert(s) */
} mlayer;

typedef struct model_opts {
    /* Routing groups: -1 = as the file says (plain top-k when the group keys
     * are absent, like the reference engine); -2 = auto: the file's keys, or
     * else the original DeepSeek-V3/R1 routing (8 groups, keep 4) when the
     * expert count allows; 0 = force plain top-k; >0 = n_group given here
     * with expert_groups_used kept. */
    int expert_groups;
    int expert_groups_used;
    bool load_experts;       /* read routed experts into RAM (else left to the pager) */
    bool bind_only;          /* validate and size everything, read no weights (inspect) */
    void (*progress)(void *ud, uint64_t done, uint64_t total); /* resident-load progress, may be NULL */
    void *progress_ud;
    /* Lay out and allocate the resident weights but read them later, with
     * model_read_resident (the engine starts the expert pool first, so its
     * setup overlaps the reads). */
    bool defer_read;
} model_opts;

typedef struct model {
    gguf_file *gguf;
    model_hparams hp;
    mweight tok_embd, output;
    const float *output_norm;
    mlayer *layers;          /* n_layer */
    uint8_t *arena;          /* resident bytes (arena_mem's), owned */
    hugemem arena_mem;
    size_t arena_bytes;
    uint64_t expert_bytes;   /* routed-expert bytes in RAM when loaded (repacked where planned) */
    uint64_t resident_bytes; /* everything else */
    int r16_mats;            /* resident Q4_K matrices in the 16-row layout */
    uint64_t r16_bytes;
    uint8_t *expert_arena;   /* model_load_experts (expert_mem's), owned */
    hugemem expert_mem;
    void **maps;             /* model_map_experts: one mapping per part */
    size_t *map_len;
    /* The resident reads still to do (model_read_resident): the file ranges
     * and their regions in the arena, and the repacked stacks. */
    bulkread_range *ld_r;
    size_t ld_nr;
    mweight **ld_rp;
    size_t ld_nrp;
    uint64_t ld_total;
    bool ld_no_uring;        /* tests: force the pread path */
    void (*ld_progress)(void *ud, uint64_t done, uint64_t total);
    void *ld_progress_ud;
} model;

void model_opts_default(model_opts *o);

/* Opens `path` (part 1 of a split set is enough), validates arch, hyper-
 * parameters and every tensor, and reads resident weights into RAM.
 * *out is owned by the caller: model_free. */
int model_load(model **out, const char *path, const model_opts *o, char *err, size_t errlen);
void model_free(model *m); /* accepts NULL */

/* Reads the resident weights laid out by model_load with defer_read (a
 * no-op once read): large O_DIRECT reads straight into the arena
 * (io/bulkread.h).  0, or -errno with a message naming file and offset;
 * the weights are unusable after a failure (model_free only).  st: where
 * the bytes, time and read path go; may be NULL. */
int model_read_resident(model *m, bulkread_stats *st, char *err, size_t errlen);

/* After model_load with load_experts = false: read every routed expert
 * into RAM (one allocation), or map them from the files and leave them to
 * the page cache (the way the reference engine runs a model larger than
 * RAM; the baseline the pager is measured against). */
int model_load_experts(model *m, char *err, size_t errlen);
int model_map_experts(model *m, char *err, size_t errlen);

/* Per-head dims in the reference's naming: the "k head" is qk_nope + qk_rope. */
static inline uint32_t model_head_k(const model_hparams *hp) { return hp->qk_nope + hp->qk_rope; }

#endif
