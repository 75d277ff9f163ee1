/* cli.h - option parsing shared by the subcommands: model path, threads,
 * context, cache type, routing groups, sizes like "20G".
 * Owns: cli_* only; no I/O besides writing usage errors to stderr. */
#ifndef MS_CLI_H
#define MS_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "moestream.h"

typedef struct cli_common {
    const char *model;   /* -m/--model */
    int threads;         /* -t/--threads, 0 = one per physical core */
    int n_ctx;           /* -c/--ctx-size */
    int n_batch;         /* -b/--batch-size */
    int cache_type;      /* --cache-type f32|f16|q8_0|q4_0 (enum fwd_cache_type) */
    int expert_groups;   /* --expert-groups: -1 as the file says, -2 auto, 0 none, G */
    int expert_groups_used;
    bool verbose;        /* -v/--verbose */
    uint64_t mem;        /* --mem SIZE|auto: the whole process's memory budget (default 20G) */
    int cache_experts;   /* --cache-experts N: cap the expert cache (0 = what fits) */
    int load_mode;       /* --load-mode auto|ram|pager|mmap (enum cli_load_mode) */
    int cache_policy;    /* --cache-policy lru|lfu|reuse|learn (enum ms_cache_policy) */
    bool mlock;          /* --mlock: lock the expert pool in RAM */
    const char *trace_routing; /* --trace-routing FILE */
    uint64_t uniform_routing;  /* --bench-uniform-routing SEED (benchmarks only) */
    const char *routing_trace; /* --bench-routing-trace FILE|DIR (benchmarks only) */
    bool pool_routing;         /* --bench-pool-routing (benchmarks only) */
    const char *cache_state;   /* --cache-state FILE: warm start of the expert pool */
    bool no_prefetch;          /* --no-prefetch: do not read the next layer's experts ahead */
    int attn;                  /* --attn auto|absorbed|mha (enum cli_attn) */
    const char *repack;        /* --repack auto|on|off (NULL: MOESTREAM_REPACK or auto) */
    int parallel;              /* --parallel/-np N: sequences generated together (serve,
                                * batch; 0: the command's default); becomes max_seqs */
} cli_common;

enum cli_load_mode { LOAD_AUTO = 0, LOAD_RAM, LOAD_PAGER, LOAD_MMAP };

/* Attention of legacy attn_kv_b files: auto takes the decompressed (mha)
 * form, exact against the reference, when its K/V cache is at most 1/16 of
 * --mem, else the absorbed latent form (always for DeepSeek-R1 itself). */
enum cli_attn { ATTN_AUTO = 0, ATTN_ABSORBED, ATTN_MHA, ATTN_FLASH };

void cli_common_default(cli_common *c);

/* Tries to consume argv[*i] (and its value) as a common option.
 * Returns 1 if consumed (*i advanced past the value), 0 if not a common
 * option, -1 on a bad value (message printed). */
int cli_common_arg(cli_common *c, int argc, char **argv, int *i);

/* Usage text for the common options. */
const char *cli_common_help(void);

/* "VERSION-GITCOMMIT" of this build (main.c, which the Makefile stamps). */
const char *cli_version(void);

/* Sampler flags: --temp --top-k --top-p --min-p --repeat-penalty
 * --repeat-last-n --seed.  Same return convention as cli_common_arg. */
int cli_sampler_arg(ms_sampler_params *p, int argc, char **argv, int *i);
const char *cli_sampler_help(void);

/* --mem auto: MemAvailable (/proc/meminfo) minus this margin, left for the
 * kernel, page tables and whatever else starts while the model runs. */
#define CLI_MEM_AUTO_MARGIN ((uint64_t)1 << 30)

/* The --mem auto budget into *out.  0, or -errno with a message. */
int cli_mem_auto(uint64_t *out, char *err, size_t errlen);

/* "20G", "512M", "4096", "1.5T" (powers of 1024) -> bytes.  0 or -EINVAL. */
int cli_parse_size(const char *s, uint64_t *out);

/* A whole file (at most 1 GB) as a NUL-terminated malloc'd string, or
 * NULL with errno set. */
char *cli_read_file(const char *path);

/* Integer in [lo, hi].  0 or -EINVAL. */
int cli_parse_int(const char *s, long lo, long hi, long *out);

/* The engine options the common flags ask for (need_tokenizer on, no
 * progress bar: the caller sets those). */
void cli_engine_opts(const cli_common *c, ms_engine_opts *o);
/* An ms_progress_fn: a bar on stderr while resident weights load. */
void cli_load_bar(void *ud, uint64_t done, uint64_t total);

#endif
