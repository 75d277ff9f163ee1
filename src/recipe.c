/* recipe.c - the UD recipes as rules (see recipe.h).  Owns recipe_*. */
#include "recipe.h"

#include <stdio.h>
#include <string.h>

#include "quant.h"

static const struct {
    const char *name, *label, *ftype;
    uint32_t file_type;
    int gate_up, down, down_wide, shexp_gate_up, k_first;
    bool imatrix;
} R[RECIPE_COUNT] = {
    {"ud-iq1_s", "UD-IQ1_S", "IQ1_S", 24, MS_TYPE_IQ1_S, MS_TYPE_IQ1_S, MS_TYPE_IQ2_XXS, MS_TYPE_Q5_K, 6, true},
    {"ud-iq1_m", "UD-IQ1_M", "IQ1_M", 31, MS_TYPE_IQ1_M, MS_TYPE_IQ2_XXS, MS_TYPE_IQ2_XXS, MS_TYPE_Q5_K, 0, true},
    {"ud-iq2_xxs", "UD-IQ2_XXS", "IQ2_XXS", 19, MS_TYPE_IQ2_XXS, MS_TYPE_Q2_K, MS_TYPE_Q3_K, MS_TYPE_Q5_K, 3, true},
    {"ud-q2_k_xl", "UD-Q2_K_XL", "Q2_K", 10, MS_TYPE_Q2_K, MS_TYPE_Q2_K, MS_TYPE_Q3_K, MS_TYPE_Q4_K, 3, false},
};

static bool valid(int r) { return r >= 0 && r < RECIPE_COUNT; }

int recipe_parse(const char *name)
{
    for (int i = 0; i < RECIPE_COUNT; i++)
        if (!strcmp(name, R[i].name)) return i;
    return -1;
}

const char *recipe_name(int r) { return valid(r) ? R[r].name : "?"; }
const char *recipe_label(int r) { return valid(r) ? R[r].label : "?"; }
const char *recipe_ftype(int r) { return valid(r) ? R[r].ftype : "?"; }
uint32_t recipe_file_type(int r) { return valid(r) ? R[r].file_type : 0; }
bool recipe_uses_imatrix(int r) { return valid(r) && R[r].imatrix; }

int recipe_n_wide_down(int r, int n_moe)
{
    return valid(r) ? (n_moe * R[r].k_first + 57) / 58 : 0;
}

int recipe_tensor_type(int r, const char *name, int n_dense, int n_moe)
{
    if (!valid(r)) return -1;
    if (!strcmp(name, "token_embd.weight")) return MS_TYPE_Q4_K;
    if (!strcmp(name, "output.weight")) return MS_TYPE_Q6_K;
    int il, pos = 0;
    if (sscanf(name, "blk.%d.%n", &il, &pos) != 1 || pos == 0 || il < 0 || il >= n_dense + n_moe) return -1;
    const char *t = name + pos;
    static const struct {
        const char *name;
        int type;
    } fixed[] = {
        {"attn_q_a.weight", MS_TYPE_Q4_K},      {"attn_q_b.weight", MS_TYPE_Q4_K},
        {"attn_output.weight", MS_TYPE_Q4_K},   {"attn_kv_a_mqa.weight", MS_TYPE_Q6_K},
        {"attn_kv_b.weight", MS_TYPE_Q6_K},     {"ffn_gate.weight", MS_TYPE_Q4_K},
        {"ffn_up.weight", MS_TYPE_Q4_K},        {"ffn_down.weight", MS_TYPE_Q6_K},
        {"ffn_down_shexp.weight", MS_TYPE_Q6_K},
        /* the MLA form of newer conversions splits attn_kv_b in two */
        {"attn_k_b.weight", MS_TYPE_Q6_K},      {"attn_v_b.weight", MS_TYPE_Q6_K},
    };
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        if (!strcmp(t, fixed[i].name)) return fixed[i].type;
    if (!strcmp(t, "ffn_gate_shexp.weight") || !strcmp(t, "ffn_up_shexp.weight")) return R[r].shexp_gate_up;
    if (!strcmp(t, "ffn_gate_exps.weight") || !strcmp(t, "ffn_up_exps.weight")) return R[r].gate_up;
    if (!strcmp(t, "ffn_down_exps.weight"))
        return il - n_dense < recipe_n_wide_down(r, n_moe) ? R[r].down_wide : R[r].down;
    return -1;
}
