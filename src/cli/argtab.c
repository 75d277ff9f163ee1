/* argtab.c - every command's options in one table, applied before the
 * command's own parser (see argtab.h).  Owns the llama.cpp spellings and the
 * flags accepted for compatibility; the commands' parsers own the meaning of
 * our own options and the checks of non-integer values.
 * Invariant: an integer range here equals the one its parser checks, so a
 * value the parser refuses has already been refused here with a message. */
#include "argtab.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

enum {
    C_EVAL = 1 << 0,
    C_INSPECT = 1 << 1,
    C_SYNTH = 1 << 2,
    C_TOKENIZE = 1 << 3,
    C_RUN = 1 << 4,
    C_BATCH = 1 << 5,
    C_SERVE = 1 << 6,
    C_CHAT = 1 << 7,
    C_REPLAY = 1 << 8,
    C_QUANTIZE = 1 << 9,
    C_PERPLEXITY = 1 << 10,
    C_IMATRIX = 1 << 11,
    C_REPACK = 1 << 12,
    C_ALL = (1 << 13) - 1,
    /* the commands that load a model through cli_common_arg */
    C_MODEL = C_EVAL | C_INSPECT | C_RUN | C_BATCH | C_SERVE | C_CHAT | C_PERPLEXITY | C_IMATRIX,
    C_SAMPLE = C_RUN | C_BATCH | C_CHAT, /* cli_sampler_arg */
};

static const char *const cmd_names[] = {"eval", "inspect", "synth", "tokenize", "run",
                                        "batch", "serve", "chat", "replay", "quantize",
                                        "perplexity", "imatrix", "repack"};

enum kind {
    K_PASS,  /* ours: passed on under its first spelling */
    K_GPU,   /* GPU/offload flag: taken out, all of them named in one stderr line */
    K_DROP,  /* what it asks is what happens anyway: taken out silently */
    K_NOTE,  /* taken out with the entry's note on stderr */
    K_MMAP,  /* --mmap: becomes --load-mode mmap */
    K_CTV,   /* --cache-type-v: taken out, noted when it differs from the K type */
};

typedef struct opt {
    const char *names; /* "|"-separated; the first is the parser's spelling */
    const char *meta;  /* value name; NULL: a switch */
    unsigned cmds;
    enum kind kind;
    long lo, hi; /* integer range when lo < hi */
    const char *note;
} opt;

#define INT(lo, hi) K_PASS, lo, hi, NULL
#define STR K_PASS, 0, 0, NULL

static const opt table[] = {
    {"-h|--help", NULL, C_ALL, STR},
    /* cli_common_arg */
    {"-m|--model", "FILE", C_MODEL | C_TOKENIZE | C_QUANTIZE | C_REPACK, STR},
    {"--config", "NAME", C_MODEL, STR},
    {"-t|--threads", "N", C_MODEL, INT(0, 1024)},
    {"-c|--ctx-size", "N", C_MODEL, INT(1, 1 << 24)},
    {"-b|--batch-size", "N", C_MODEL, INT(1, 1 << 16)},
    {"--cache-type|-ctk|--cache-type-k", "T", C_MODEL, STR},
    {"--cache-type-v|-ctv", "T", C_MODEL, K_CTV, 0, 0, NULL},
    {"--attn", "A", C_MODEL, STR},
    {"--expert-groups", "G:K", C_MODEL, STR},
    {"--mem", "SIZE", C_MODEL, STR},
    {"--load-mode", "M", C_MODEL, STR},
    {"--cache-experts", "N", C_MODEL, INT(1, 1 << 24)},
    {"--cache-policy", "P", C_MODEL, STR},
    {"--mlock", NULL, C_MODEL, STR},
    {"--no-prefetch", NULL, C_MODEL, STR},
    {"--trace-routing", "FILE", C_MODEL, STR},
    {"--bench-uniform-routing", "SEED", C_MODEL, INT(1, 0x7fffffff)},
    {"--bench-routing-trace", "FILE|DIR", C_MODEL, STR},
    {"--bench-pool-routing", NULL, C_MODEL, STR},
    {"--cache-state", "FILE", C_MODEL, STR},
    {"--repack", "auto|on|off", C_MODEL, STR},
    {"-v|--verbose", NULL, C_MODEL, STR},
    {"--mmap", NULL, C_MODEL, K_MMAP, 0, 0, NULL},
    {"--no-mmap", NULL, C_MODEL, K_DROP, 0, 0, NULL}, /* only --load-mode mmap maps */
    {"--numa", "MODE", C_MODEL, K_NOTE, 0, 0,
     "the worker threads are pinned one per physical core through hwloc"},
    {"--no-warmup", NULL, C_MODEL, K_DROP, 0, 0, NULL}, /* there is no warmup run */
    {"--log-disable", NULL, C_MODEL & ~C_SERVE, K_DROP, 0, 0, NULL},
    {"--color", NULL, C_MODEL, K_DROP, 0, 0, NULL}, /* colours are on when stdout is a terminal */
    {"--jinja", NULL, C_MODEL, K_DROP, 0, 0, NULL}, /* the R1 template is always applied */
    {"--chat-template-file", "FILE", C_MODEL, K_NOTE, 0, 0,
     "the DeepSeek-R1 chat template is built in"},
    /* accepted and ignored: no GPU offload; the experts are paged from disk */
    {"-ngl|--n-gpu-layers|--gpu-layers", "N", C_MODEL, K_GPU, 0, 0, NULL},
    {"-fa|--flash-attn", "on|off|auto", C_MODEL, K_GPU, 0, 0, NULL},
    {"-ot|--override-tensor", "PATTERN", C_MODEL, K_GPU, 0, 0, NULL},
    {"--cpu-moe|-cmoe", NULL, C_MODEL, K_GPU, 0, 0, NULL},
    {"--n-cpu-moe|-ncmoe", "N", C_MODEL, K_GPU, 0, 0, NULL},
    {"-mg|--main-gpu", "N", C_MODEL, K_GPU, 0, 0, NULL},
    {"-ts|--tensor-split", "LIST", C_MODEL, K_GPU, 0, 0, NULL},
    {"-sm|--split-mode", "MODE", C_MODEL, K_GPU, 0, 0, NULL},
    {"--no-kv-offload|-nkvo", NULL, C_MODEL, K_GPU, 0, 0, NULL},
    /* cli_sampler_arg */
    {"--temp|--temperature", "T", C_SAMPLE, STR},
    {"--top-k", "K", C_SAMPLE, INT(0, 1 << 24)},
    {"--top-p", "P", C_SAMPLE, STR},
    {"--min-p", "P", C_SAMPLE, STR},
    {"--repeat-penalty", "R", C_SAMPLE, STR},
    {"--repeat-last-n", "N", C_SAMPLE, INT(0, 1 << 24)},
    {"--presence-penalty", "P", C_SAMPLE, STR},
    {"--frequency-penalty", "F", C_SAMPLE, STR},
    {"--seed|-s", "N", C_SAMPLE, STR},
    {"--ignore-eos", NULL, C_SAMPLE, STR},
    /* run, chat, batch */
    {"-n|--n-predict", "N", C_RUN | C_CHAT | C_BATCH, INT(-1, 1 << 24)},
    {"--system|-sys|--system-prompt", "TEXT", C_RUN | C_CHAT, STR},
    {"-p|--prompt", "TEXT", C_RUN, STR},
    {"-f|--file", "FILE", C_RUN | C_PERPLEXITY | C_IMATRIX, STR},
    {"--stop|-r|--reverse-prompt", "S", C_RUN, STR},
    {"--no-think", NULL, C_RUN, STR},
    {"-cnv|--conversation", NULL, C_RUN, K_DROP, 0, 0, NULL}, /* main.c: run -cnv is chat */
    {"--ids", NULL, C_RUN | C_CHAT, STR},
    {"--no-status", NULL, C_CHAT, STR},
    {"--connect", "URL", C_CHAT, STR},
    {"-i", "IN.jsonl", C_BATCH, STR},
    {"-o", "OUT.jsonl", C_BATCH, STR},
    {"--resume", NULL, C_BATCH, STR},
    {"--overwrite", NULL, C_BATCH, STR},
    /* serve */
    {"--host", "ADDR", C_SERVE, STR},
    {"--port", "PORT", C_SERVE, INT(1, 65535)},
    {"--api-key", "KEY", C_SERVE | C_CHAT, STR},
    {"--api-key-file", "FILE", C_SERVE, STR},
    {"--idle-timeout", "SECONDS", C_SERVE, INT(1, 3600)},
    {"--max-connections", "N", C_SERVE, INT(1, 65536)},
    {"--max-per-address", "N", C_SERVE, INT(1, 65536)},
    {"--timeout", "SECONDS", C_SERVE, INT(1, 7 * 24 * 3600)},
    {"--alias|-a", "NAME", C_SERVE, STR},
    {"--cors-origins", "ORIGINS", C_SERVE, STR},
    {"--log-format", "text|json", C_SERVE, STR},
    {"--log-disable", NULL, C_SERVE, STR}, /* serve: no request log */
    {"--parallel|-np", "N", C_SERVE | C_BATCH | C_INSPECT, INT(1, 4096)},
    {"--queue", "N", C_SERVE, INT(0, 1 << 20)},
    /* eval */
    {"--tokens", "IDS", C_EVAL, STR},
    {"--tokens-file", "FILE", C_EVAL, STR},
    {"--logits", "OUT.f32", C_EVAL, STR},
    {"--greedy", "N", C_EVAL, INT(0, 1 << 24)},
    /* inspect, tokenize */
    {"--json", NULL, C_INSPECT, STR},
    {"--full", NULL, C_INSPECT, STR},
    {"--no-bos", NULL, C_TOKENIZE, STR},
    /* synth */
    {"-o|--output", "FILE", C_SYNTH | C_QUANTIZE | C_IMATRIX | C_REPACK, STR},
    {"--tiny", NULL, C_SYNTH, STR},
    {"--moe-layers", "N", C_SYNTH, INT(0, 1000)},
    {"--dense-layers", "N", C_SYNTH, INT(0, 1000)},
    {"--profile", "P", C_SYNTH, STR},
    {"--split", "SIZE", C_SYNTH, STR},
    {"--vocab", "FILE", C_SYNTH, STR},
    {"--routing-skew", "S", C_SYNTH, STR},
    {"--seed", "N", C_SYNTH, STR},
    {"--expert-layers", "K", C_SYNTH, INT(1, 1000)},
    /* replay */
    {"--topk", "K", C_REPLAY, INT(1, 64)},
    {"--tokens", "N", C_REPLAY, INT(1, 1L << 30)},
    {"--by-distance", NULL, C_REPLAY, STR},
    /* quantize */
    {"-t|--threads", "N", C_QUANTIZE, INT(1, 4096)},
    {"--type", "T", C_QUANTIZE, STR},
    {"--recipe", "R", C_QUANTIZE, STR},
    {"--imatrix", "FILE", C_QUANTIZE, STR},
    {"--tensor-type", "RE=TYPE", C_QUANTIZE, STR},
    {"--tensor-type-file", "FILE", C_QUANTIZE, STR},
    {"--token-embedding-type", "T", C_QUANTIZE, STR},
    {"--output-tensor-type", "T", C_QUANTIZE, STR},
    {"--split-max-size", "SIZE", C_QUANTIZE, STR},
    {"--keep-split", NULL, C_QUANTIZE, STR},
    {"--pure", NULL, C_QUANTIZE, STR},
    {"--dry-run", NULL, C_QUANTIZE | C_REPACK, STR},
    {"--print-tensor-types", NULL, C_QUANTIZE, STR},
    {"--allow-requantize", NULL, C_QUANTIZE, STR},
    /* perplexity, imatrix */
    {"--chunks", "N", C_PERPLEXITY | C_IMATRIX, INT(-1, 1 << 24)},
    {"--kl-divergence-base", "FILE", C_PERPLEXITY, STR},
    {"--kl-divergence", NULL, C_PERPLEXITY, STR},
    {"--output-format", "gguf|dat", C_IMATRIX, STR},
    {"--process-output", NULL, C_IMATRIX, STR},
};
#define N_OPTS (sizeof table / sizeof table[0])

static int cmd_bit(const char *cmd)
{
    for (size_t i = 0; i < sizeof cmd_names / sizeof cmd_names[0]; i++)
        if (!strcmp(cmd, cmd_names[i]))
            return 1 << i;
    return 0;
}

/* Does `names` ("a|b|c") contain s?  Writes the first spelling to first. */
static bool has_name(const char *names, const char *s, char *first, size_t cap)
{
    const char *bar = strchr(names, '|');
    size_t n0 = bar ? (size_t)(bar - names) : strlen(names);
    if (first)
        snprintf(first, cap, "%.*s", (int)n0, names);
    size_t ls = strlen(s);
    for (const char *p = names; p;) {
        const char *e = strchr(p, '|');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n == ls && !memcmp(p, s, n))
            return true;
        p = e ? e + 1 : NULL;
    }
    return false;
}

static const opt *find(const char *s, unsigned bit, char *first, size_t cap)
{
    for (size_t i = 0; i < N_OPTS; i++)
        if ((table[i].cmds & bit) && has_name(table[i].names, s, first, cap))
            return &table[i];
    return NULL;
}

static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 63 || lb > 63)
        return 64;
    size_t d[64][64];
    for (size_t i = 0; i <= la; i++)
        d[i][0] = i;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = j;
    for (size_t i = 1; i <= la; i++)
        for (size_t j = 1; j <= lb; j++) {
            size_t best = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
            if (d[i - 1][j] + 1 < best)
                best = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < best)
                best = d[i][j - 1] + 1;
            d[i][j] = best;
        }
    return d[la][lb];
}

/* The closest spelling cmd takes, or NULL when none is close. */
static const char *closest(const char *s, unsigned bit, char *buf, size_t cap)
{
    size_t best = (size_t)-1;
    for (size_t i = 0; i < N_OPTS; i++) {
        if (!(table[i].cmds & bit))
            continue;
        for (const char *p = table[i].names; p;) {
            const char *e = strchr(p, '|');
            size_t n = e ? (size_t)(e - p) : strlen(p);
            char name[64];
            snprintf(name, sizeof name, "%.*s", (int)n, p);
            size_t d = edit_distance(s, name);
            if (d < best) {
                best = d;
                snprintf(buf, cap, "%s", name);
            }
            p = e ? e + 1 : NULL;
        }
    }
    size_t len = strlen(s);
    return best <= 2 || best <= len / 3 ? buf : NULL;
}

/* The K cache type the command line asks for (the last one given), NULL if none. */
static const char *k_type(int argc, char **argv)
{
    const char *t = NULL;
    for (int i = 1; i + 1 < argc; i++)
        if (has_name("--cache-type|-ctk|--cache-type-k", argv[i], NULL, 0))
            t = argv[++i];
    return t;
}

/* The parser's spelling of each table entry, filled on first use: the
 * rewritten argv points here, so it holds no allocation but its own array. */
static char canon[N_OPTS][64];

int argtab_prepare(const char *cmd, int argc, char **argv, int *out_argc, char ***out_argv)
{
    unsigned bit = (unsigned)cmd_bit(cmd);
    char **out = malloc(((size_t)argc * 2 + 1) * sizeof *out);
    if (!out) {
        fprintf(stderr, "moestream: out of memory\n");
        return 2;
    }
    int n = 0;
    out[n++] = argv[0];
    char gpu[512] = "";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!bit || a[0] != '-' || !a[1]) { /* a positional argument (replay's input, "-") */
            out[n++] = argv[i];
            continue;
        }
        char first[64];
        const opt *o = find(a, bit, first, sizeof first);
        if (!o) {
            char buf[64];
            const opt *other = find(a, C_ALL, NULL, 0);
            if (other) {
                fprintf(stderr, "moestream %s: %s is not an option of %s (moestream %s --help)\n", cmd,
                        a, cmd, cmd);
            } else if (closest(a, bit, buf, sizeof buf)) {
                fprintf(stderr, "moestream %s: unknown option %s (did you mean %s?)\n", cmd, a, buf);
            } else {
                fprintf(stderr, "moestream %s: unknown option %s (moestream %s --help lists them)\n",
                        cmd, a, cmd);
            }
            free(out);
            return 2;
        }
        const char *val = NULL;
        if (o->meta) {
            if (i + 1 >= argc) {
                fprintf(stderr, "moestream %s: option %s needs a value (%s)\n", cmd, a, o->meta);
                free(out);
                return 2;
            }
            val = argv[++i];
            long v;
            if (o->lo < o->hi && cli_parse_int(val, o->lo, o->hi, &v)) {
                fprintf(stderr, "moestream %s: bad value '%s' for %s (an integer in [%ld, %ld])\n",
                        cmd, val, a, o->lo, o->hi);
                free(out);
                return 2;
            }
        }
        switch (o->kind) {
        case K_PASS:
            if (strcmp(a, first)) { /* an alias: the parser's spelling */
                char *c = canon[o - table];
                snprintf(c, sizeof canon[0], "%s", first);
                out[n++] = c;
            } else {
                out[n++] = argv[i - (val != NULL)];
            }
            if (val)
                out[n++] = (char *)val;
            break;
        case K_GPU: {
            size_t l = strlen(gpu);
            snprintf(gpu + l, sizeof gpu - l, "%s%s%s%s", l ? " " : "", a, val ? " " : "",
                     val ? val : "");
            break;
        }
        case K_DROP:
            break;
        case K_NOTE:
            fprintf(stderr, "moestream %s: ignoring %s%s%s: %s\n", cmd, a, val ? " " : "",
                    val ? val : "", o->note);
            break;
        case K_MMAP:
            out[n++] = "--load-mode";
            out[n++] = "mmap";
            break;
        case K_CTV: {
            const char *k = k_type(argc, argv);
            if (strcmp(val, k ? k : "f32"))
                fprintf(stderr,
                        "moestream %s: %s %s is not used: the absorbed MLA cache keeps one latent "
                        "per position, typed by --cache-type-k/--cache-type (%s)\n",
                        cmd, a, val, k ? k : "f32");
            break;
        }
        }
    }
    if (gpu[0])
        fprintf(stderr,
                "moestream %s: ignoring %s: there is no GPU offload; non-expert weights stay in RAM "
                "and the routed experts are paged from disk\n",
                cmd, gpu);
    out[n] = NULL;
    *out_argc = n;
    *out_argv = out;
    return 0;
}

int argtab_list(FILE *f, const char *cmd)
{
    unsigned bit = (unsigned)cmd_bit(cmd);
    if (!bit)
        return 2;
    for (size_t i = 0; i < N_OPTS; i++) {
        if (!(table[i].cmds & bit))
            continue;
        for (const char *p = table[i].names; p;) {
            const char *e = strchr(p, '|');
            int len = e ? (int)(e - p) : (int)strlen(p);
            fprintf(f, "%.*s\n", len, p);
            p = e ? e + 1 : NULL;
        }
    }
    return 0;
}
