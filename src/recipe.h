/* recipe.h - unsloth's dynamic ("UD") quantization recipes for DeepSeek
 * R1-family models (DEEPSEEK-FACTS 4.2) as rules over the model's layer
 * counts, shared by `synth --profile` and `quantize --recipe`.
 *
 * Every recipe keeps the non-routed weights at 4-6 bits (token_embd, attn_q_a,
 * attn_q_b, attn_output, dense gate/up Q4_K; output, attn_kv_a_mqa,
 * attn_kv_b, dense down, ffn_down_shexp Q6_K; shared gate/up Q5_K, Q4_K in
 * ud-q2_k_xl) and sets the routed experts' gate/up and down types, with the
 * first ceil(n_moe * k / 58) MoE layers' ffn_down_exps one type wider
 * (k = 6, 0, 3, 3: R1's 58 MoE layers scaled to the model).
 * Thread safety: pure functions. */
#ifndef MS_RECIPE_H
#define MS_RECIPE_H

#include <stdbool.h>
#include <stdint.h>

enum recipe_id { RECIPE_UD_IQ1_S = 0, RECIPE_UD_IQ1_M, RECIPE_UD_IQ2_XXS, RECIPE_UD_Q2_K_XL, RECIPE_COUNT };

/* "ud-iq1_s" etc. -> id; -1 if unknown. */
int recipe_parse(const char *name);
const char *recipe_name(int r);    /* "ud-iq1_s" */
const char *recipe_label(int r);   /* "UD-IQ1_S" */
const char *recipe_ftype(int r);   /* llama-quantize file type: "IQ1_S", "IQ1_M", "IQ2_XXS", "Q2_K" */
uint32_t recipe_file_type(int r);  /* general.file_type of that type */
bool recipe_uses_imatrix(int r);   /* false for ud-q2_k_xl, made without calibration */

/* MoE layers (counted from the first MoE block) whose ffn_down_exps take
 * the wider type. */
int recipe_n_wide_down(int r, int n_moe);

/* Type of weight `name` ("token_embd.weight", "blk.5.ffn_down_exps.weight")
 * in a model of n_dense dense blocks followed by n_moe MoE blocks; -1 for
 * tensors the recipe does not assign (norms, router, biases, unknown). */
int recipe_tensor_type(int r, const char *name, int n_dense, int n_moe);

#endif
