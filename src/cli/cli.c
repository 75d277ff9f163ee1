/* cli.c - shared option parsing (see cli.h). */
#include "cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "moestream.h"

void cli_common_default(cli_common *c)
{
    memset(c, 0, sizeof *c);
    c->n_ctx = 4096;
    c->n_batch = 64;
    c->cache_type = MS_CACHE_F32;
    c->expert_groups = -1;
    c->mem = (uint64_t)20 << 30;
    c->cache_policy = MS_POLICY_LEARN; /* the best mean hit rate on each of the four recorded
                                          tasks, and at the 5% share on all (bench/RESULTS.md) */
}

int cli_parse_int(const char *s, long lo, long hi, long *out)
{
    if (!s || !*s)
        return -EINVAL;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < lo || v > hi)
        return -EINVAL;
    *out = v;
    return 0;
}

int cli_parse_size(const char *s, uint64_t *out)
{
    if (!s || !*s)
        return -EINVAL;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || !(v >= 0))
        return -EINVAL;
    double mul = 1;
    switch (*end) {
    case 'k': case 'K': mul = 1024.0; end++; break;
    case 'm': case 'M': mul = 1024.0 * 1024; end++; break;
    case 'g': case 'G': mul = 1024.0 * 1024 * 1024; end++; break;
    case 't': case 'T': mul = 1024.0 * 1024 * 1024 * 1024; end++; break;
    default: break;
    }
    if (*end == 'B' || *end == 'b' || (*end == 'i' && end[1] == 'B'))
        end += *end == 'i' ? 2 : 1;
    if (*end || v * mul > 1.8e19)
        return -EINVAL;
    *out = (uint64_t)(v * mul);
    return 0;
}

int cli_mem_auto(uint64_t *out, char *err, size_t errlen)
{
    FILE *f = fopen("/proc/meminfo", "r");
    if (!f) {
        snprintf(err, errlen, "--mem auto: cannot read /proc/meminfo: %s", strerror(errno));
        return -errno;
    }
    char line[256];
    unsigned long long kb = 0;
    bool found = false;
    while (!found && fgets(line, sizeof line, f))
        found = sscanf(line, "MemAvailable: %llu kB", &kb) == 1;
    fclose(f);
    const uint64_t avail = (uint64_t)kb << 10;
    if (!found || avail < CLI_MEM_AUTO_MARGIN + ((uint64_t)16 << 20)) {
        snprintf(err, errlen, "--mem auto: MemAvailable %s (%.2f GiB) leaves nothing after the %.0f GiB "
                              "margin; give --mem SIZE",
                 found ? "is too small" : "not found in /proc/meminfo", (double)avail / 1073741824.0,
                 (double)CLI_MEM_AUTO_MARGIN / 1073741824.0);
        return -ENOMEM;
    }
    *out = avail - CLI_MEM_AUTO_MARGIN;
    return 0;
}

static int need_value(int argc, char **argv, int i)
{
    if (i + 1 >= argc) {
        fprintf(stderr, "moestream: option %s needs a value\n", argv[i]);
        return -1;
    }
    return 0;
}

int cli_common_arg(cli_common *c, int argc, char **argv, int *i)
{
    const char *a = argv[*i];
    long v;
    if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) {
        c->verbose = true;
        return 1;
    }
    if (!strcmp(a, "--config")) {
        /* A profile sets long options as if given here; later flags override. */
        if (need_value(argc, argv, *i))
            return -1;
        const char *name = argv[++*i];
        config cf;
        char err[256];
        if (config_load(&cf, name, argv[0], err, sizeof err)) {
            fprintf(stderr, "moestream: %s\n", err);
            return -1;
        }
        char *args[64];
        int na = config_to_args(&cf, args, 64);
        for (int k = 0; k + 1 < na; k += 2) {
            char *pair[3] = {args[k], args[k + 1], NULL};
            int j = 0;
            int r = cli_common_arg(c, 2, pair, &j);
            if (r <= 0) {
                fprintf(stderr, "moestream: config %s: bad or unknown entry '%s = %s'\n", name,
                        args[k] + 2, args[k + 1]);
                return -1;
            }
        }
        return 1;
    }
    if (!strcmp(a, "--parallel")) {
        /* read by every command (a profile's key), used by serve and batch */
        if (need_value(argc, argv, *i))
            return -1;
        long np;
        if (cli_parse_int(argv[++*i], 1, 4096, &np))
            return -1;
        c->parallel = (int)np;
        return 1;
    }
    if (!strcmp(a, "--no-prefetch")) {
        c->no_prefetch = true;
        return 1;
    }
    if (!strcmp(a, "--mlock")) {
        c->mlock = true;
        return 1;
    }
    if (!strcmp(a, "--repack")) {
        if (need_value(argc, argv, *i))
            return -1;
        const char *r = argv[++*i];
        if (strcmp(r, "auto") && strcmp(r, "on") && strcmp(r, "off")) {
            fprintf(stderr, "moestream: bad value '%s' for --repack (auto | on | off)\n", r);
            return -1;
        }
        c->repack = r;
        return 1;
    }
    if (!strcmp(a, "--bench-uniform-routing")) {
        if (need_value(argc, argv, *i))
            return -1;
        if (cli_parse_int(argv[++*i], 1, 0x7fffffff, &v)) {
            fprintf(stderr, "moestream: bad value for --bench-uniform-routing\n");
            return -1;
        }
        c->uniform_routing = (uint64_t)v;
        return 1;
    }
    if (!strcmp(a, "--cache-state")) {
        if (need_value(argc, argv, *i))
            return -1;
        c->cache_state = argv[++*i];
        return 1;
    }
    if (!strcmp(a, "--bench-pool-routing")) {
        c->pool_routing = true;
        return 1;
    }
    if (!strcmp(a, "--bench-routing-trace")) {
        if (need_value(argc, argv, *i))
            return -1;
        c->routing_trace = argv[++*i];
        return 1;
    }
    if (!strcmp(a, "--trace-routing")) {
        if (need_value(argc, argv, *i))
            return -1;
        c->trace_routing = argv[++*i];
        return 1;
    }
    if (!strcmp(a, "--mem") || !strcmp(a, "--cache-experts") || !strcmp(a, "--load-mode") ||
        !strcmp(a, "--cache-policy")) {
        if (need_value(argc, argv, *i))
            return -1;
        const char *val = argv[++*i];
        if (!strcmp(a, "--mem") && !strcmp(val, "auto")) {
            char err[256];
            if (cli_mem_auto(&c->mem, err, sizeof err)) {
                fprintf(stderr, "moestream: %s\n", err);
                return -1;
            }
            fprintf(stderr, "moestream: --mem auto: %.2f GiB (MemAvailable minus a %.0f GiB margin)\n",
                    (double)c->mem / 1073741824.0, (double)CLI_MEM_AUTO_MARGIN / 1073741824.0);
        } else if (!strcmp(a, "--mem")) {
            if (cli_parse_size(val, &c->mem) || c->mem < (16u << 20))
                goto bad2;
        } else if (!strcmp(a, "--cache-experts")) {
            if (cli_parse_int(val, 1, 1 << 24, &v))
                goto bad2;
            c->cache_experts = (int)v;
        } else if (!strcmp(a, "--load-mode")) {
            static const char *modes[] = {"auto", "ram", "pager", "mmap"};
            int k = -1;
            for (int j = 0; j < 4; j++)
                if (!strcmp(val, modes[j]))
                    k = j;
            if (k < 0)
                goto bad2;
            c->load_mode = k;
        } else {
            static const char *pols[] = {"lru", "lfu", "reuse", "learn"}; /* enum ms_cache_policy */
            int k = -1;
            for (int j = 0; j < 4; j++)
                if (!strcmp(val, pols[j]))
                    k = j;
            if (k < 0)
                goto bad2;
            c->cache_policy = k;
        }
        return 1;
    bad2:
        fprintf(stderr, "moestream: bad value '%s' for %s\n", val, a);
        return -1;
    }
    bool known = !strcmp(a, "-m") || !strcmp(a, "--model") || !strcmp(a, "-t") ||
                 !strcmp(a, "--threads") || !strcmp(a, "-c") || !strcmp(a, "--ctx-size") ||
                 !strcmp(a, "-b") || !strcmp(a, "--batch-size") || !strcmp(a, "--cache-type") ||
                 !strcmp(a, "--expert-groups") || !strcmp(a, "--attn");
    if (!known)
        return 0;
    if (need_value(argc, argv, *i))
        return -1;
    const char *val = argv[++*i];
    if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
        c->model = val;
    } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
        if (cli_parse_int(val, 0, 1024, &v))
            goto bad;
        c->threads = (int)v;
    } else if (!strcmp(a, "-c") || !strcmp(a, "--ctx-size")) {
        if (cli_parse_int(val, 1, 1 << 24, &v))
            goto bad;
        c->n_ctx = (int)v;
    } else if (!strcmp(a, "-b") || !strcmp(a, "--batch-size")) {
        if (cli_parse_int(val, 1, 1 << 16, &v))
            goto bad;
        c->n_batch = (int)v;
    } else if (!strcmp(a, "--cache-type")) {
        if (!strcmp(val, "f32"))
            c->cache_type = MS_CACHE_F32;
        else if (!strcmp(val, "f16"))
            c->cache_type = MS_CACHE_F16;
        else if (!strcmp(val, "q8_0"))
            c->cache_type = MS_CACHE_Q8_0;
        else if (!strcmp(val, "q4_0"))
            c->cache_type = MS_CACHE_Q4_0;
        else
            goto bad;
    } else if (!strcmp(a, "--attn")) {
        if (!strcmp(val, "auto"))
            c->attn = ATTN_AUTO;
        else if (!strcmp(val, "absorbed"))
            c->attn = ATTN_ABSORBED;
        else if (!strcmp(val, "mha"))
            c->attn = ATTN_MHA;
        else if (!strcmp(val, "flash"))
            c->attn = ATTN_FLASH;
        else
            goto bad;
    } else { /* --expert-groups */
        unsigned g, k;
        char tail;
        if (!strcmp(val, "auto")) {
            c->expert_groups = -2; /* resolved by model_load */
        } else if (!strcmp(val, "none")) {
            c->expert_groups = 0;
        } else if (sscanf(val, "%u:%u%c", &g, &k, &tail) == 2 && g >= 1 && g <= 256 && k >= 1 &&
                   k <= g) {
            c->expert_groups = (int)g;
            c->expert_groups_used = (int)k;
        } else {
            goto bad;
        }
    }
    return 1;
bad:
    fprintf(stderr, "moestream: bad value '%s' for %s\n", val, a);
    return -1;
}

const char *cli_common_help(void)
{
    return "  -m, --model FILE        GGUF model (part 1 of a split set)\n"
           "      --config NAME|FILE  hardware profile (configs/NAME.conf); later flags override\n"
           "  -t, --threads N         worker threads (default: one per physical core)\n"
           "  -c, --ctx-size N        context positions (default 4096)\n"
           "  -b, --batch-size N      prompt tokens per batch (default 64)\n"
           "      --cache-type T      latent cache: f32 | f16 | q8_0 | q4_0 (default f32); also\n"
           "                          -ctk/--cache-type-k (-ctv/--cache-type-v: accepted, unused:\n"
           "                          the absorbed MLA cache has no separate V)\n"
           "      --attn A            legacy attn_kv_b files: auto | absorbed | mha | flash (default auto:\n"
           "                          mha, exact against the reference, if its cache fits 1/16 of --mem;\n"
           "                          flash: as auto, where mha with the reference's flash-attention\n"
           "                          arithmetic, its default: perplexity's and imatrix's default)\n"
           "      --expert-groups G   auto (8:4) | none | G:K (default: as the file says)\n"
           "      --mem SIZE|auto     memory budget for the whole process in GiB (20G = 20 GiB;\n"
           "                          default 20G); auto: MemAvailable minus a 1 GiB margin\n"
           "      --load-mode M       auto | ram | pager | mmap (default auto: ram if it all fits)\n"
           "      --cache-experts N   cap the expert cache at N experts (implies pager)\n"
           "      --cache-policy P    learn | lfu | reuse | lru (default learn)\n"
           "      --mlock             lock the expert pool in RAM\n"
           "      --cache-state F     warm start: read the experts F says are hottest into the\n"
           "                          pool in the background at start, save F at exit\n"
           "      --repack R          auto | on | off: keep RAM-resident IQ1_S/IQ1_M experts (and, unless\n"
           "                          off, resident Q4_K matrices) in 16-row interleaved layouts\n"
           "                          (default auto: where this CPU has their kernels);\n"
           "                          a file of `moestream repack` is read as stored, or unpacked where\n"
           "                          this says plain: the same results either way\n"
           "      --no-prefetch       do not read the next layer's predicted experts ahead\n"
           "      --trace-routing F   write each token's chosen experts to F (for replay)\n"
           "      --bench-uniform-routing SEED  benchmarks: experts uniformly at random\n"
           "      --bench-routing-trace F  benchmarks: experts from a recorded trace (a\n"
           "                          --trace-routing file or an ESFT log directory), mapped\n"
           "                          onto the model as routing_trace.h documents\n"
           "      --bench-pool-routing  benchmarks: each layer's top-k among the experts already\n"
           "                          in the pool (no reads once the pool holds k per layer):\n"
           "                          decode speed without I/O, the compute-only bound\n"
           "  -v, --verbose           report SIMD, threads, memory plan, cache statistics\n"
           "  llama.cpp flags taken as they are there: --mmap (= --load-mode mmap), --no-mmap,\n"
           "  --no-warmup, --log-disable, --color, --jinja (the R1 template is always applied);\n"
           "  ignored with a note: --numa MODE, --chat-template-file FILE, and the GPU flags\n"
           "  -ngl/--n-gpu-layers/--gpu-layers N, -fa/--flash-attn on|off|auto,\n"
           "  -ot/--override-tensor PATTERN, --cpu-moe/-cmoe, --n-cpu-moe/-ncmoe N,\n"
           "  -mg/--main-gpu N, -ts/--tensor-split LIST, -sm/--split-mode MODE,\n"
           "  --no-kv-offload/-nkvo (no GPU offload: the experts are paged from disk)\n";
}

int cli_sampler_arg(ms_sampler_params *p, int argc, char **argv, int *i)
{
    const char *a = argv[*i];
    if (!strcmp(a, "--ignore-eos")) {
        p->ignore_eos = true;
        return 1;
    }
    static const char *names[] = {"--temp",          "--top-k",          "--top-p",
                                  "--min-p",         "--repeat-penalty", "--repeat-last-n",
                                  "--seed",          "--presence-penalty", "--frequency-penalty"};
    int k = -1;
    for (int j = 0; j < 9; j++)
        if (!strcmp(a, names[j]))
            k = j;
    if (k < 0)
        return 0;
    if (need_value(argc, argv, *i))
        return -1;
    const char *val = argv[++*i];
    char *end;
    errno = 0;
    if (k == 1 || k == 5 || k == 6) {
        long long v = strtoll(val, &end, 10);
        if (k == 6 && !*end && !errno && v == -1) { /* llama.cpp's "random": a new seed, printed */
            p->seed = 0;
            return 1;
        }
        if (errno || *end || v < 0 || (k != 6 && v > (1 << 24)))
            goto bad;
        if (k == 1)
            p->top_k = (int)v;
        else if (k == 5)
            p->repeat_last_n = (int)v;
        else
            p->seed = (uint64_t)v;
        return 1;
    }
    float f = strtof(val, &end);
    if (k >= 7) { /* OpenAI's range for both */
        if (errno || *end || !(f >= -2.0f && f <= 2.0f))
            goto bad;
        if (k == 7)
            p->presence_penalty = f;
        else
            p->frequency_penalty = f;
        return 1;
    }
    if (errno || *end || !(f >= 0.0f) || f > 100.0f)
        goto bad;
    if ((k == 2 || k == 3) && f > 1.0f)
        goto bad;
    if (k == 4 && f == 0.0f)
        goto bad;
    switch (k) {
    case 0: p->temp = f; break;
    case 2: p->top_p = f; break;
    case 3: p->min_p = f; break;
    default: p->repeat_penalty = f; break;
    }
    return 1;
bad:
    fprintf(stderr, "moestream: bad value '%s' for %s\n", val, a);
    return -1;
}

const char *cli_sampler_help(void)
{
    return "      --temp T            temperature (default 0.6; 0 = greedy); also --temperature\n"
           "      --min-p P           drop tokens below P x the best token's probability (0.05)\n"
           "      --top-p P           nucleus sampling (default 1 = off)\n"
           "      --top-k K           keep the K most likely (default 0 = off)\n"
           "      --repeat-penalty R  penalize the last --repeat-last-n tokens (default 1 = off)\n"
           "      --repeat-last-n N   window of the three penalties (default 64)\n"
           "      --presence-penalty P   subtract P from tokens in the window (-2..2, default 0)\n"
           "      --frequency-penalty F  subtract F x their count in the window (-2..2, default 0)\n"
           "      --ignore-eos        never end at an end-of-sequence token (-n or the context ends it)\n"
           "  -s, --seed N            random seed (default or -1: new each run; printed)\n";
}

char *cli_read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 1 << 16, n = 0, r;
    char *b = malloc(cap + 1);
    while (b && (r = fread(b + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n < cap)
            continue;
        char *nb = cap < ((size_t)1 << 30) ? realloc(b, cap * 2 + 1) : NULL;
        if (!nb) {
            free(b);
            b = NULL;
            errno = EFBIG;
            break;
        }
        b = nb;
        cap *= 2;
    }
    if (b && ferror(f)) {
        free(b);
        b = NULL;
        errno = EIO;
    }
    if (b)
        b[n] = 0;
    fclose(f);
    return b;
}

void cli_engine_opts(const cli_common *c, ms_engine_opts *o)
{
    ms_engine_opts_default(o);
    o->mem = c->mem;
    o->threads = c->threads;
    o->load_mode = c->load_mode;
    o->cache_experts = c->cache_experts;
    o->cache_policy = c->cache_policy;
    o->mlock = c->mlock;
    o->prefetch = !c->no_prefetch;
    o->n_ctx = c->n_ctx;
    o->n_batch = c->n_batch;
    o->cache_type = c->cache_type;
    o->attn = c->attn;
    o->expert_groups = c->expert_groups;
    o->expert_groups_used = c->expert_groups_used;
    o->trace_routing = c->trace_routing;
    o->bench_uniform_routing = c->uniform_routing;
    o->bench_routing_trace = c->routing_trace;
    o->bench_pool_routing = c->pool_routing;
    o->cache_state = c->cache_state;
    o->repack = c->repack;
    o->verbose = c->verbose;
}

void cli_load_bar(void *ud, uint64_t done, uint64_t total)
{
    (void)ud;
    static int last = -1;
    int pct = total ? (int)(done * 100 / total) : 100;
    if (pct == last)
        return;
    last = pct;
    int w = pct / 4;
    fprintf(stderr, "\rloading resident weights [%.*s%*s] %3d%% %.2f/%.2f GiB", w,
            "#########################", 25 - w, "", pct, (double)done / 1073741824.0,
            (double)total / 1073741824.0);
    if (done >= total)
        fputc('\n', stderr);
}
