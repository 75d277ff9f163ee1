/* cmd_inspect.c - `moestream inspect`: metadata, tensor counts by type,
 * routed-expert vs resident bytes, and the RAM each part needs.
 * Reads only the GGUF header (no weights are loaded). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "engine.h"
#include "cmd.h"
#include "forward.h"
#include "gguf.h"
#include "kernels.h"
#include "model.h"
#include "quant.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: moestream inspect -m MODEL [--json] [--full] [-c N] [--cache-type T] [--mem SIZE]\n"
               "Shows the model, its memory plan under --mem, weights by type, then the metadata\n"
               "(sizes in GiB).\n\n"
               "      --json              machine-readable output, memory plan included (bytes)\n"
               "      --full              the whole chat template (default: its first lines)\n%s",
            cli_common_help());
}

static bool is_expert(const char *name)
{
    return strstr(name, "_exps.") != NULL;
}

/* Prints a metadata value; long arrays are summarized. */
static void print_value(FILE *f, const gguf_value *v, bool json)
{
    switch (v->type) {
    case GGUF_T_STRING: {
        fputc('"', f);
        size_t lim = json ? v->str.len : (v->str.len > 80 ? 80 : v->str.len);
        for (size_t i = 0; i < lim; i++) {
            unsigned char ch = (unsigned char)v->str.s[i];
            if (ch == '"' || ch == '\\')
                fprintf(f, "\\%c", ch);
            else if (ch < 0x20)
                fprintf(f, "\\u%04x", ch);
            else
                fputc(ch, f);
        }
        fputc('"', f);
        if (lim < v->str.len)
            fprintf(f, "... (%llu bytes)", (unsigned long long)v->str.len);
        break;
    }
    case GGUF_T_ARRAY:
        if (json)
            fprintf(f, "{\"array_of\":\"%s\",\"n\":%llu}", gguf_vtype_name(v->arr.type),
                    (unsigned long long)v->arr.n);
        else
            fprintf(f, "[%s x %llu]", gguf_vtype_name(v->arr.type), (unsigned long long)v->arr.n);
        break;
    case GGUF_T_FLOAT32:
    case GGUF_T_FLOAT64:
        fprintf(f, "%.9g", v->f);
        break;
    case GGUF_T_BOOL:
        fprintf(f, "%s", v->u ? "true" : "false");
        break;
    case GGUF_T_INT8:
    case GGUF_T_INT16:
    case GGUF_T_INT32:
    case GGUF_T_INT64:
        fprintf(f, "%lld", (long long)v->i);
        break;
    default:
        fprintf(f, "%llu", (unsigned long long)v->u);
        break;
    }
}

/* Sizes in binary units, as --mem reads them. */
#define GIB 1073741824.0

/* The chat template: whole with --full, else its first TEMPLATE_LINES lines
 * or TEMPLATE_BYTES bytes (cut at a UTF-8 boundary) and how much was left out. */
#define TEMPLATE_LINES 8
#define TEMPLATE_BYTES 400
static void print_template(const gguf_str *t, bool full)
{
    size_t end = t->len, lines = 0;
    for (size_t i = 0; i < t->len && end == t->len; i++)
        if (t->s[i] == '\n' && ++lines == TEMPLATE_LINES)
            end = i + 1;
    if (end > TEMPLATE_BYTES) {
        end = TEMPLATE_BYTES;
        while (end > 0 && ((unsigned char)t->s[end] & 0xC0) == 0x80)
            end--;
    }
    if (full)
        end = t->len;
    printf("\nchat template (tokenizer.chat_template, %llu bytes):\n%.*s",
           (unsigned long long)t->len, (int)end, t->s);
    if (end < t->len)
        printf("%s... (%llu more bytes; --full prints it all)\n", t->s[end - 1] == '\n' ? "" : "\n",
               (unsigned long long)(t->len - end));
    else if (end == 0 || t->s[end - 1] != '\n')
        printf("\n");
}

int cmd_inspect(int argc, char **argv)
{
    cli_common c;
    cli_common_default(&c);
    bool json = false, full = false;
    for (int i = 1; i < argc; i++) {
        int r = cli_common_arg(&c, argc, argv, &i);
        if (r < 0)
            return 2;
        if (r > 0)
            continue;
        if (!strcmp(argv[i], "--json"))
            json = true;
        else if (!strcmp(argv[i], "--full"))
            full = true;
        else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "moestream inspect: unknown option %s\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    if (!c.model) {
        usage(stderr);
        return 2;
    }
    char err[512] = "";
    gguf_file *g = NULL;
    int rc = gguf_open(&g, c.model, err, sizeof err);
    if (rc) {
        fprintf(stderr, "moestream inspect: %s\n", err);
        return 1;
    }
    uint64_t count[MS_TYPE_COUNT] = {0}, bytes[MS_TYPE_COUNT] = {0};
    uint64_t exp_bytes = 0, res_bytes = 0, n_exp_t = 0;
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const gguf_tensor *t = &g->tensors[i];
        count[t->type]++;
        bytes[t->type] += t->nbytes;
        if (is_expert(t->name)) {
            exp_bytes += t->nbytes;
            n_exp_t++;
        } else {
            res_bytes += t->nbytes;
        }
    }
    /* Hyperparameters and the per-token cache cost need a valid binding;
     * metadata-only files (a vocabulary) still get the listing. */
    model_hparams hp;
    bool have_hp = false, bind_failed = false, mha = false;
    uint64_t mha_bytes = 0;
    engine_plan plan;
    int plan_rc = -1;
    char plan_err[512] = "";
    char merr[512] = "";
    {
        model *m = NULL;
        model_opts mo;
        model_opts_default(&mo);
        mo.load_experts = false;
        mo.bind_only = true;
        /* Binding reads resident weights; for inspect we only need shapes,
         * so bind with experts left out and free immediately. */
        if (g->n_tensors > 0 && model_load(&m, c.model, &mo, merr, sizeof merr) == 0) {
            hp = m->hp;
            have_hp = true;
            plan_rc = engine_make_plan(m, &c, 1, &plan, plan_err, sizeof plan_err);
            mha = engine_attn_mha(m, &c);
            mha_bytes = fwd_mha_cache_bytes(m, c.n_ctx);
            model_free(m);
        } else if (g->n_tensors > 0) {
            bind_failed = true;
        }
    }
    size_t kv_bytes = 0;
    if (have_hp && mha) {
        kv_bytes = (size_t)mha_bytes;
    } else if (have_hp) {
        size_t lat = fwd_cache_row_bytes(c.cache_type, hp.kv_lora);
        kv_bytes = (size_t)hp.n_layer * (size_t)c.n_ctx * (lat + hp.qk_rope * 4);
    }
    if (json) {
        printf("{\"file\":\"%s\",\"parts\":%u,\"version\":%u,\"tensors\":%llu,\"metadata\":{", c.model,
               g->n_parts, g->version, (unsigned long long)g->n_tensors);
        for (uint64_t i = 0; i < g->n_kv; i++) {
            printf("%s\"%s\":", i ? "," : "", g->kv[i].key);
            print_value(stdout, &g->kv[i].val, true);
        }
        printf("},\"types\":{");
        bool first = true;
        for (int t = 0; t < MS_TYPE_COUNT; t++)
            if (count[t]) {
                printf("%s\"%s\":{\"tensors\":%llu,\"bytes\":%llu}", first ? "" : ",",
                       quant_info(t) ? quant_info(t)->name : "?", (unsigned long long)count[t],
                       (unsigned long long)bytes[t]);
                first = false;
            }
        printf("},\"expert_bytes\":%llu,\"resident_bytes\":%llu,\"kv_cache_bytes\":%zu,"
               "\"attn\":\"%s\",\"ctx\":%d,\"simd\":\"%s\"",
               (unsigned long long)exp_bytes, (unsigned long long)res_bytes, kv_bytes,
               mha ? "mha" : "absorbed", c.n_ctx, kern_get()->isa);
        /* The plan the model commands would make with these options, bytes. */
        static const char *modes[] = {"auto", "ram", "pager", "mmap"};
        if (plan_rc == 0)
            printf(",\"memory_plan\":{\"budget_bytes\":%llu,\"resident_bytes\":%llu,"
                   "\"context_bytes\":%llu,\"slack_bytes\":%llu,\"experts_bytes\":%llu,"
                   "\"load_mode\":\"%s\",\"pool_bytes\":%llu,\"pool_experts\":%d,"
                   "\"expert_slot_bytes\":%zu}",
                   (unsigned long long)plan.budget, (unsigned long long)plan.resident,
                   (unsigned long long)plan.context, (unsigned long long)plan.slack,
                   (unsigned long long)plan.experts, modes[plan.mode], (unsigned long long)plan.pool,
                   plan.n_slots, plan.slot_bytes);
        else if (have_hp)
            printf(",\"memory_plan\":{\"error\":\"%s\"}", plan_err);
        printf("}\n");
    } else {
        printf("file: %s (%u part%s, GGUF v%u, %llu tensors, %llu metadata keys)\n", c.model,
               g->n_parts, g->n_parts == 1 ? "" : "s", g->version, (unsigned long long)g->n_tensors,
               (unsigned long long)g->n_kv);
        /* What a user decides on first (does it fit, how): model, plan and
         * weights before the long metadata listing. */
        if (have_hp) {
            printf("\nmodel: %u layers (%u dense), n_embd %u, %u heads, q_lora %u, kv_lora %u, "
                   "rope %u, %u experts (%u used, %u shared), expert ffn %u, vocab %u, "
                   "attention %s, routing %s\n",
                   hp.n_layer, hp.n_dense_lead, hp.n_embd, hp.n_head, hp.q_lora, hp.kv_lora,
                   hp.qk_rope, hp.n_expert, hp.n_expert_used, hp.n_expert_shared, hp.n_ff_exp,
                   hp.n_vocab, hp.is_mla ? "split attn_k_b/attn_v_b" : "legacy attn_kv_b",
                   hp.n_group > 1 ? "group-limited" : "plain top-k");
            printf("RAM: resident weights %.3f GiB + %s %.3f GiB at -c %d\n", (double)res_bytes / GIB,
                   mha ? "decompressed K/V cache (--attn mha)" : "latent cache", (double)kv_bytes / GIB,
                   c.n_ctx);
            if (plan_rc == 0)
                engine_print_plan(&plan, stdout);
            else
                printf("memory plan: %s\n", plan_err);
        }
        printf("\nweights:\n  routed experts  %12.3f GiB (%llu tensors)\n  resident        %12.3f GiB\n",
               (double)exp_bytes / GIB, (unsigned long long)n_exp_t, (double)res_bytes / GIB);
        printf("\ntensors by type:\n");
        for (int t = 0; t < MS_TYPE_COUNT; t++)
            if (count[t])
                printf("  %-8s %6llu tensors %12.3f GiB\n", quant_info(t) ? quant_info(t)->name : "?",
                       (unsigned long long)count[t], (double)bytes[t] / GIB);
        printf("kernels: %s\n", kern_get()->isa);
        printf("\nmetadata:\n");
        for (uint64_t i = 0; i < g->n_kv; i++) {
            printf("  %-48s ", g->kv[i].key);
            print_value(stdout, &g->kv[i].val, false);
            printf("\n");
        }
        gguf_str tmpl;
        char e2[8];
        if (gguf_get_str(g, "tokenizer.chat_template", &tmpl, e2, sizeof e2) == 0)
            print_template(&tmpl, full);
    }
    gguf_close(g);
    if (bind_failed) {
        fprintf(stderr, "moestream inspect: not loadable as a DeepSeek model: %s\n", merr);
        return 1;
    }
    return 0;
}
