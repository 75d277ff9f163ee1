/* cmd_inspect.c - `moestream inspect`: metadata, tensor counts by type,
 * routed-expert vs resident bytes, and the RAM each part needs.
 * Reads only the GGUF header (no weights are loaded); through the public
 * API (ms_file_*). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cmd.h"
#include "moestream.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: moestream inspect -m MODEL [--json] [--full] [-c N] [--cache-type T] [--mem SIZE]\n"
               "Shows the model, its memory plan under --mem, weights by type, then the metadata\n"
               "(sizes in GiB).\n\n"
               "      --json              machine-readable output, memory plan included (bytes)\n"
               "      --full              the whole chat template (default: its first lines)\n"
               "      --parallel, -np N   plan for N sequences of -c positions each (serve -np N)\n%s",
            cli_common_help());
}

/* Prints a metadata value; long arrays are summarized. */
static void print_value(FILE *f, const ms_meta *v, bool json)
{
    switch (v->kind) {
    case MS_META_STRING: {
        fputc('"', f);
        size_t lim = json ? v->str_len : (v->str_len > 80 ? 80 : v->str_len);
        for (size_t i = 0; i < lim; i++) {
            unsigned char ch = (unsigned char)v->str[i];
            if (ch == '"' || ch == '\\')
                fprintf(f, "\\%c", ch);
            else if (ch < 0x20)
                fprintf(f, "\\u%04x", ch);
            else
                fputc(ch, f);
        }
        fputc('"', f);
        if (lim < v->str_len)
            fprintf(f, "... (%llu bytes)", (unsigned long long)v->str_len);
        break;
    }
    case MS_META_ARRAY:
        if (json)
            fprintf(f, "{\"array_of\":\"%s\",\"n\":%llu}", v->array_type,
                    (unsigned long long)v->array_n);
        else
            fprintf(f, "[%s x %llu]", v->array_type, (unsigned long long)v->array_n);
        break;
    case MS_META_FLOAT:
        fprintf(f, "%.9g", v->f);
        break;
    case MS_META_BOOL:
        fprintf(f, "%s", v->u ? "true" : "false");
        break;
    case MS_META_INT:
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
static void print_template(const char *s, size_t len, bool full)
{
    size_t end = len, lines = 0;
    for (size_t i = 0; i < len && end == len; i++)
        if (s[i] == '\n' && ++lines == TEMPLATE_LINES)
            end = i + 1;
    if (end > TEMPLATE_BYTES) {
        end = TEMPLATE_BYTES;
        while (end > 0 && ((unsigned char)s[end] & 0xC0) == 0x80)
            end--;
    }
    if (full)
        end = len;
    printf("\nchat template (tokenizer.chat_template, %zu bytes):\n%.*s", len, (int)end, s);
    if (end < len)
        printf("%s... (%zu more bytes; --full prints it all)\n", s[end - 1] == '\n' ? "" : "\n",
               len - end);
    else if (end == 0 || s[end - 1] != '\n')
        printf("\n");
}

/* Tensor count and bytes per type, in order of type id: ggml's ids below
 * PRIVATE_SLOT, moestream's repacked types (ids 1000 and up) after them. */
#define MAX_TYPES 64
#define PRIVATE_SLOT 48
typedef struct type_sum {
    const char *name;
    const char *plain; /* repacked types: the type they hold */
    uint64_t count, bytes;
} type_sum;

static int type_slot(int type)
{
    if (type >= 0 && type < PRIVATE_SLOT)
        return type;
    if (type >= 1000 && type < 1000 + MAX_TYPES - PRIVATE_SLOT)
        return PRIVATE_SLOT + type - 1000;
    return -1;
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
    ms_file *f = NULL;
    int rc = ms_file_open(&f, c.model, err, sizeof err);
    if (rc) {
        fprintf(stderr, "moestream inspect: %s\n", err);
        return 1;
    }
    type_sum types[MAX_TYPES] = {{0}};
    uint64_t exp_bytes = 0, res_bytes = 0, n_exp_t = 0;
    const size_t n_tensors = ms_file_n_tensors(f), n_meta = ms_file_n_meta(f);
    for (size_t i = 0; i < n_tensors; i++) {
        ms_tensor t;
        ms_file_tensor(f, i, &t);
        const int slot = type_slot(t.type);
        if (slot >= 0) {
            types[slot].name = t.type_name;
            types[slot].plain = t.plain_type_name;
            types[slot].count++;
            types[slot].bytes += t.nbytes;
        }
        if (t.routed_expert) {
            exp_bytes += t.nbytes;
            n_exp_t++;
        } else {
            res_bytes += t.nbytes;
        }
    }
    /* Hyperparameters and the plan need a valid binding; metadata-only
     * files (a vocabulary) still get the listing. */
    ms_engine_opts eo;
    cli_engine_opts(&c, &eo);
    if (c.parallel > 0)
        eo.max_seqs = c.parallel;
    ms_model_info hp;
    ms_mem_plan plan;
    memset(&plan, 0, sizeof plan);
    bool have_hp = false, bind_failed = false;
    int plan_rc = -1;
    char plan_err[512] = "", merr[512] = "";
    if (n_tensors > 0) {
        if (ms_file_plan(f, &eo, &hp, NULL, merr, sizeof merr) == 0) {
            have_hp = true;
            plan_rc = ms_file_plan(f, &eo, NULL, &plan, plan_err, sizeof plan_err);
        } else {
            bind_failed = true;
        }
    }
    const bool mha = plan.attn_mha;
    const uint64_t kv_bytes = plan.kv;
    if (json) {
        printf("{\"file\":\"%s\",\"parts\":%d,\"version\":%d,\"tensors\":%zu,\"metadata\":{", c.model,
               ms_file_n_parts(f), ms_file_version(f), n_tensors);
        for (size_t i = 0; i < n_meta; i++) {
            ms_meta m;
            ms_file_meta(f, i, &m);
            printf("%s\"%s\":", i ? "," : "", m.key);
            print_value(stdout, &m, true);
        }
        printf("},\"types\":{");
        bool first = true;
        for (int t = 0; t < MAX_TYPES; t++)
            if (types[t].count) {
                printf("%s\"%s\":{\"tensors\":%llu,\"bytes\":%llu}", first ? "" : ",", types[t].name,
                       (unsigned long long)types[t].count, (unsigned long long)types[t].bytes);
                first = false;
            }
        printf("},\"expert_bytes\":%llu,\"resident_bytes\":%llu,\"kv_cache_bytes\":%llu,"
               "\"attn\":\"%s\",\"ctx\":%d,\"simd\":\"%s\"",
               (unsigned long long)exp_bytes, (unsigned long long)res_bytes,
               (unsigned long long)kv_bytes, mha ? "mha" : "absorbed", c.n_ctx, ms_kernel_isa());
        printf(",\"shared_expert_layers\":%d", ms_file_shared_layers(f));
        printf(",\"repack_version\":%d,\"repacked_types\":{", ms_file_repack_version(f));
        first = true;
        for (int t = PRIVATE_SLOT; t < MAX_TYPES; t++)
            if (types[t].count && types[t].plain) {
                printf("%s\"%s\":\"%s\"", first ? "" : ",", types[t].name, types[t].plain);
                first = false;
            }
        printf("}");
        /* The plan the model commands would make with these options, bytes. */
        static const char *modes[] = {"auto", "ram", "pager", "mmap"};
        if (plan_rc == 0) {
            printf(",\"memory_plan\":{\"budget_bytes\":%llu,\"resident_bytes\":%llu,"
                   "\"scratch_bytes\":%llu,\"cache_bytes\":%llu,\"sequences\":%d,"
                   "\"slack_bytes\":%llu,\"requests_bytes\":%llu,\"experts_bytes\":%llu,"
                   "\"load_mode\":\"%s\",\"pool_bytes\":%llu,\"pool_experts\":%d,"
                   "\"expert_slot_bytes\":%llu}",
                   (unsigned long long)plan.budget, (unsigned long long)plan.resident,
                   (unsigned long long)plan.scratch, (unsigned long long)plan.kv, plan.max_seqs,
                   (unsigned long long)plan.slack, (unsigned long long)plan.requests,
                   (unsigned long long)plan.experts, modes[plan.mode & 3],
                   (unsigned long long)plan.pool, plan.n_slots, (unsigned long long)plan.slot_bytes);
        } else if (have_hp) {
            printf(",\"memory_plan\":{\"error\":");
            ms_meta em = {.kind = MS_META_STRING, .str = plan_err, .str_len = strlen(plan_err)};
            print_value(stdout, &em, true);
            printf("}");
        }
        printf("}\n");
    } else {
        printf("file: %s (%d part%s, GGUF v%d, %zu tensors, %zu metadata keys)\n", c.model,
               ms_file_n_parts(f), ms_file_n_parts(f) == 1 ? "" : "s", ms_file_version(f),
               n_tensors, n_meta);
        /* What a user decides on first (does it fit, how): model, plan and
         * weights before the long metadata listing. */
        if (have_hp) {
            printf("\nmodel: %u layers (%u dense), n_embd %u, %u heads, q_lora %u, kv_lora %u, "
                   "rope %u, %u experts (%u used, %u shared), expert ffn %u, vocab %u, "
                   "attention %s, routing %s\n",
                   hp.n_layer, hp.n_dense_lead, hp.n_embd, hp.n_head, hp.q_lora, hp.kv_lora,
                   hp.qk_rope, hp.n_expert, hp.n_expert_used, hp.n_expert_shared, hp.n_ff_exp,
                   hp.n_vocab, hp.split_attention ? "split attn_k_b/attn_v_b" : "legacy attn_kv_b",
                   hp.n_group > 1 ? "group-limited" : "plain top-k");
            printf("RAM: resident weights %.3f GiB + %s %.3f GiB at -c %d (%d sequence%s)\n",
                   (double)res_bytes / GIB,
                   mha ? "decompressed K/V cache (--attn mha)" : "latent cache", (double)kv_bytes / GIB,
                   c.n_ctx, plan.max_seqs, plan.max_seqs == 1 ? "" : "s");
            if (plan_rc == 0)
                ms_plan_print(&plan, stdout);
            else
                printf("memory plan: %s\n", plan_err);
        }
        printf("\nweights:\n  routed experts  %12.3f GiB (%llu tensors)\n  resident        %12.3f GiB\n",
               (double)exp_bytes / GIB, (unsigned long long)n_exp_t, (double)res_bytes / GIB);
        if (ms_file_shared_layers(f) > 0)
            printf("  shared experts: a synthetic benchmark file; MoE layer j's routed experts are\n"
                   "  MoE layer (j mod %d)'s bytes (moestream.synthetic.shared_layers = %d, pattern\n"
                   "  checked), so the file holds fewer expert bytes than the model reads\n",
                   ms_file_shared_layers(f), ms_file_shared_layers(f));
        if (ms_file_repack_version(f) > 0)
            printf("  repacked: written by moestream repack (moestream.repack.version %d): routed\n"
                   "  experts stored in the 16-row repacked layout, read ready to use; other\n"
                   "  programs (llama.cpp) refuse this file\n",
                   ms_file_repack_version(f));
        printf("\ntensors by type:\n");
        for (int t = 0; t < MAX_TYPES; t++)
            if (types[t].count) {
                printf("  %-11s %6llu tensors %12.3f GiB", types[t].name,
                       (unsigned long long)types[t].count, (double)types[t].bytes / GIB);
                if (types[t].plain)
                    printf("  (%s repacked, 16-row groups)", types[t].plain);
                printf("\n");
            }
        printf("kernels: %s\n", ms_kernel_isa());
        printf("\nmetadata:\n");
        const ms_meta *tmpl = NULL;
        ms_meta tm;
        for (size_t i = 0; i < n_meta; i++) {
            ms_meta m;
            ms_file_meta(f, i, &m);
            printf("  %-48s ", m.key);
            print_value(stdout, &m, false);
            printf("\n");
            if (m.kind == MS_META_STRING && !strcmp(m.key, "tokenizer.chat_template")) {
                tm = m;
                tmpl = &tm;
            }
        }
        if (tmpl)
            print_template(tmpl->str, tmpl->str_len, full);
    }
    ms_file_close(f);
    if (bind_failed) {
        fprintf(stderr, "moestream inspect: not loadable as a DeepSeek model: %s\n", merr);
        return 1;
    }
    return 0;
}
