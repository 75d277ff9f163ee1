/* synth.h - synthetic DeepSeek-shaped GGUF models with random but valid
 * weights: the embedded default model (--tiny) and full-width R1 stand-ins
 * with the real tensor shapes and UD quantization mix for benchmarks.
 * Owns: synth_* only.  Random weights produce noise, not language. */
#ifndef MS_SYNTH_H
#define MS_SYNTH_H

#include <stddef.h>
#include <stdint.h>

/* The UD recipes (recipe.h ids), then sources for the quantizer: every
 * weight in Q8_0 or BF16, as the released checkpoints are converted. */
enum synth_profile { SYNTH_UD_IQ1_S = 0, SYNTH_UD_IQ1_M, SYNTH_UD_IQ2_XXS, SYNTH_UD_Q2_K_XL, SYNTH_Q8_0, SYNTH_BF16 };

typedef struct synth_opts {
    int tiny;              /* small widths (n_embd 256, 16 experts) */
    int dense_layers;      /* leading dense blocks (3 full-size, 1 tiny) */
    int moe_layers;        /* MoE blocks */
    int profile;           /* enum synth_profile */
    uint64_t split_bytes;  /* 0 = one file */
    const char *vocab;     /* copy tokenizer.* from this GGUF, or NULL */
    float routing_skew;    /* 0 = uniform routing */
    int expert_layers;     /* MoE layers with their own expert bytes; the others
                            * share them cyclically (synth.c); 0 = all */
    uint64_t seed;
} synth_opts;

void synth_opts_default(synth_opts *o);
/* Parses "ud-iq1_s" etc., "q8_0", "bf16"; -1 if unknown. */
int synth_profile_parse(const char *s);

/* Writes the model to path (the first part's name goes to first_part if
 * non-NULL, 4096 bytes).  0 or -errno with a message. */
int synth_write(const char *path, const synth_opts *o, char *first_part, char *err,
                size_t errlen);

#endif
