/* cmd_quantize.c - `moestream quantize`: write a quantized GGUF from an
 * F32/F16/BF16/Q8_0 one, bit for bit with the reference's llama-quantize for
 * the same type, options and importance matrix (src/quantize_model.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cmd.h"
#include "quantize_model.h"
#include "recipe.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: moestream quantize -m|--model IN.gguf -o|--output OUT.gguf (--type T | --recipe R) [options]\n"
            "       moestream quantize -m IN.gguf (--type T | --recipe R) --dry-run [--print-tensor-types]\n"
            "Quantizes every 2D/3D weight the way llama-quantize does (same type mix, same bytes).\n"
            "  --type T                 file type: Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 Q2_K Q2_K_S Q3_K(_S/M/L)\n"
            "                           Q4_K(_S/M) Q5_K(_S/M) Q6_K IQ1_S IQ1_M IQ2_XXS IQ2_XS IQ2_S IQ2_M\n"
            "                           IQ3_XXS IQ3_XS IQ3_S IQ3_M IQ4_NL IQ4_XS F16 BF16 F32\n"
            "  --recipe R               unsloth's dynamic mixes for DeepSeek MoE models, from the layer\n"
            "                           counts: ud-iq1_s ud-iq1_m ud-iq2_xxs ud-q2_k_xl (the last\n"
            "                           without importance matrix)\n"
            "  --print-tensor-types     with --dry-run: write the resolved plan to stdout as a file\n"
            "                           for --tensor-type-file\n"
            "  --imatrix FILE           importance matrix (GGUF or legacy .dat)\n"
            "  --pure                   no type mix: every weight in the type's default tensor type\n"
            "  --tensor-type RE=TYPE    tensors whose name matches RE (unanchored; first match wins)\n"
            "  --tensor-type-file FILE  one RE=TYPE per word\n"
            "  --token-embedding-type T, --output-tensor-type T\n"
            "  --allow-requantize       accept inputs in other quantized types than Q8_0\n"
            "  --split-max-size SIZE    output parts of at most SIZE bytes of tensor data (e.g. 50G)\n"
            "  --keep-split             output in the same parts as a split input (OUT-0000i-of-0000N.gguf)\n"
            "  --dry-run                print the per-tensor plan and the final size, write nothing\n"
            "  -t, --threads N          threads (default: one per core)\n");
}

int cmd_quantize(int argc, char **argv)
{
    static quantize_model_opts o;
    quantize_model_opts_default(&o);
    o.log = stderr;
    char err[1024] = "";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        long v;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(a, "--pure")) {
            o.pure = true;
            continue;
        }
        if (!strcmp(a, "--dry-run")) {
            o.dry_run = true;
            continue;
        }
        if (!strcmp(a, "--print-tensor-types")) {
            o.print_types = stdout;
            continue;
        }
        if (!strcmp(a, "--keep-split")) {
            o.keep_split = true;
            continue;
        }
        if (!strcmp(a, "--allow-requantize")) {
            o.allow_requantize = true;
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "moestream quantize: unknown option or missing value: %s\n", a);
            usage(stderr);
            return 2;
        }
        const char *val = argv[++i];
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            o.in = val;
        } else if (!strcmp(a, "-o") || !strcmp(a, "--output")) {
            o.out = val;
        } else if (!strcmp(a, "--type")) {
            o.ftype = val;
        } else if (!strcmp(a, "--recipe")) {
            if ((o.recipe = recipe_parse(val)) < 0) goto bad;
        } else if (!strcmp(a, "--imatrix")) {
            o.imatrix = val;
        } else if (!strcmp(a, "--tensor-type")) {
            if (quantize_model_add_override(&o, val, err, sizeof err)) goto bad_msg;
        } else if (!strcmp(a, "--tensor-type-file")) {
            if (quantize_model_add_override_file(&o, val, err, sizeof err)) goto bad_msg;
        } else if (!strcmp(a, "--token-embedding-type") || !strcmp(a, "--output-tensor-type")) {
            const int t = quantize_model_type_parse(val);
            if (t < 0) goto bad;
            if (a[2] == 't') o.token_embd_type = t;
            else o.output_type = t;
        } else if (!strcmp(a, "--split-max-size")) {
            if (cli_parse_size(val, &o.split_max_bytes) || o.split_max_bytes < (1u << 20)) goto bad;
        } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
            if (cli_parse_int(val, 1, 4096, &v)) goto bad;
            o.n_threads = (int)v;
        } else {
            fprintf(stderr, "moestream quantize: unknown option %s\n", a);
            usage(stderr);
            return 2;
        }
        continue;
    bad:
        fprintf(stderr, "moestream quantize: bad value '%s' for %s\n", val, a);
        return 2;
    bad_msg:
        fprintf(stderr, "moestream quantize: %s\n", err);
        return 2;
    }
    if (o.print_types && !o.dry_run) {
        fprintf(stderr, "moestream quantize: --print-tensor-types goes with --dry-run\n");
        return 2;
    }
    if (o.keep_split && o.split_max_bytes) {
        fprintf(stderr, "moestream quantize: --keep-split and --split-max-size exclude each other\n");
        return 2;
    }
    if (o.recipe >= 0 && o.ftype) {
        fprintf(stderr, "moestream quantize: --recipe and --type exclude each other\n");
        return 2;
    }
    if (o.recipe >= 0 && o.imatrix && !recipe_uses_imatrix(o.recipe)) {
        fprintf(stderr, "quantize: %s is made without an importance matrix; ignoring %s\n", recipe_name(o.recipe),
                o.imatrix);
        o.imatrix = NULL;
    }
    if (!o.in || (!o.ftype && o.recipe < 0) || (!o.out && !o.dry_run)) {
        usage(stderr);
        return 2;
    }
    int rc = quantize_model_run(&o, err, sizeof err);
    for (int i = 0; i < o.n_overrides; ++i) free((void *)o.override_re[i]);
    if (rc) {
        fprintf(stderr, "moestream quantize: %s\n", err[0] ? err : "failed");
        return 1;
    }
    return 0;
}
