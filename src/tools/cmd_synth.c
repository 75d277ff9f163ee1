/* cmd_synth.c - `moestream synth`: write a random-weight DeepSeek-shaped
 * GGUF (the embedded default model with --tiny; full-width R1 stand-ins for
 * benchmarks).  Random weights produce noise, not language. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "cmd.h"
#include "synth.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: moestream synth -o|--output FILE [--tiny] [--moe-layers N] [--dense-layers N]\n"
            "                       [--profile ud-iq1_s|ud-iq1_m|ud-iq2_xxs|ud-q2_k_xl|q8_0|bf16]\n"
            "                       [--split SIZE] [--vocab FILE.gguf] [--routing-skew S] [--seed N]\n"
            "                       [--expert-layers K]\n"
            "Writes a DeepSeek-R1-shaped GGUF with random (valid) weights. It produces noise:\n"
            "it is for tests and benchmarks, not for reading.  Full width by default\n"
            "(7168 hidden, 256 experts of 2048; 3 dense + 2 MoE blocks); --tiny writes a\n"
            "small model of the same family in well under a second.\n"
            "  --profile P        per-tensor type mix of that unsloth recipe (default ud-iq1_s), or\n"
            "                     q8_0 / bf16: every weight in that type (a source for quantize)\n"
            "  --split SIZE       parts of at most SIZE bytes of tensor data (e.g. 20G; >= 1M)\n"
            "  --vocab FILE.gguf  copy tokenizer.* from FILE (vocab_size follows it)\n"
            "  --routing-skew S   make about an eighth of each layer's experts hot: router rows\n"
            "                     scaled by up to 1+S and exp_probs_b up to S (0 = uniform)\n"
            "  --expert-layers K  write the routed experts of K MoE layers only; MoE layer j\n"
            "                     shares layer (j mod K)'s (moestream.synthetic.shared_layers =\n"
            "                     K): full depth in less disk, for benchmarks; one file\n"
            "  --seed N           the same options and seed give the same bytes (default 42)\n");
}

int cmd_synth(int argc, char **argv)
{
    synth_opts o;
    synth_opts_default(&o);
    const char *out = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        long v;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(a, "--tiny")) {
            o.tiny = 1;
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "moestream synth: unknown option or missing value: %s\n", a);
            usage(stderr);
            return 2;
        }
        const char *val = argv[++i];
        if (!strcmp(a, "-o") || !strcmp(a, "--output")) {
            out = val;
        } else if (!strcmp(a, "--moe-layers") || !strcmp(a, "--dense-layers")) {
            if (cli_parse_int(val, 0, 1000, &v))
                goto bad;
            if (a[2] == 'm')
                o.moe_layers = (int)v;
            else
                o.dense_layers = (int)v;
        } else if (!strcmp(a, "--expert-layers")) {
            if (cli_parse_int(val, 1, 1000, &v))
                goto bad;
            o.expert_layers = (int)v;
        } else if (!strcmp(a, "--profile")) {
            if ((o.profile = synth_profile_parse(val)) < 0)
                goto bad;
        } else if (!strcmp(a, "--split")) {
            if (cli_parse_size(val, &o.split_bytes) || o.split_bytes < (1u << 20))
                goto bad;
        } else if (!strcmp(a, "--vocab")) {
            o.vocab = val;
        } else if (!strcmp(a, "--routing-skew")) {
            char *end;
            o.routing_skew = strtof(val, &end);
            if (*end || !(o.routing_skew >= 0 && o.routing_skew <= 100))
                goto bad;
        } else if (!strcmp(a, "--seed")) {
            if (cli_parse_int(val, 0, 0x7fffffff, &v))
                goto bad;
            o.seed = (uint64_t)v;
        } else {
            fprintf(stderr, "moestream synth: unknown option %s\n", a);
            usage(stderr);
            return 2;
        }
        continue;
    bad:
        fprintf(stderr, "moestream synth: bad value '%s' for %s\n", val, a);
        return 2;
    }
    if (!out) {
        usage(stderr);
        return 2;
    }
    char err[512] = "", first[4096];
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int rc = synth_write(out, &o, first, err, sizeof err);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (rc) {
        fprintf(stderr, "moestream synth: %s\n", err[0] ? err : "failed");
        return 1;
    }
    fprintf(stderr, "synth: wrote %s in %.2f s (random weights: output will be noise)\n", first,
            (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9);
    return 0;
}
