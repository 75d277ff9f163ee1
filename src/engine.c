/* engine.c - see engine.h.
 * The plan: budget = resident weights + context (cache + scratch) + slack
 * + expert pool.  auto mode keeps every expert in RAM when that fits, else
 * pages them through a pool of what remains. */
#include "engine.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blas.h"
#include "kernels.h"

#define SLACK_BYTES ((uint64_t)192 << 20)
/* Sizes are printed in binary units, as --mem reads them (20G = 20 GiB). */
#define GIB 1073741824.0
#define MIB 1048576.0

static void bar(void *ud, uint64_t done, uint64_t total)
{
    (void)ud;
    static int last = -1;
    int pct = total ? (int)(done * 100 / total) : 100;
    if (pct == last)
        return;
    last = pct;
    int w = pct / 4;
    fprintf(stderr, "\rloading resident weights [%.*s%*s] %3d%% %.2f/%.2f GiB", w,
            "#########################", 25 - w, "", pct, (double)done / GIB, (double)total / GIB);
    if (done >= total)
        fputc('\n', stderr);
}

static void trace_route(void *ud, int il, int pos, int n, const int32_t *ids, const float *w)
{
    (void)w;
    FILE *f = ud;
    fprintf(f, "%d %d", il, pos);
    for (int i = 0; i < n; i++)
        fprintf(f, " %d", ids[i]);
    fputc('\n', f);
}

/* --attn auto: the decompressed form when its cache is small next to the
 * budget (small legacy models, exact against the reference), the absorbed
 * latent form otherwise (DeepSeek-R1: ~10 MB per position). */
bool engine_attn_mha(const model *m, const cli_common *opt)
{
    if (m->hp.is_mla || opt->attn == ATTN_ABSORBED)
        return false;
    if (opt->attn == ATTN_MHA)
        return true;
    return fwd_mha_cache_bytes(m, opt->n_ctx) <= opt->mem / 16;
}

static void fwd_defaults(const engine *e, fwd_opts *fo)
{
    fwd_opts_default(fo);
    fo->n_ctx = e->opt.n_ctx;
    fo->n_batch = e->opt.n_batch;
    fo->cache_type = e->opt.cache_type;
    fo->attn_mha = engine_attn_mha(e->m, &e->opt);
    fo->tp = e->tp;
    fo->experts = e->pg ? pager_src(e->pg) : NULL;
    fo->uniform_routing_seed = e->opt.uniform_routing;
    fo->prefetch = !e->opt.no_prefetch;
    if (e->trace) {
        fo->on_route = trace_route;
        fo->route_ud = e->trace;
    }
}

int engine_pager_layout(const model *m, pager_layout *lo)
{
    memset(lo, 0, sizeof *lo);
    const size_t keys = (size_t)m->hp.n_layer * (size_t)m->hp.n_expert;
    pager_extent *ext = calloc(keys ? keys * 3 : 1, sizeof *ext);
    const char **paths = malloc(m->gguf->n_parts * sizeof *paths);
    if (!ext || !paths) {
        free(ext);
        free(paths);
        return -ENOMEM;
    }
    for (uint32_t i = 0; i < m->gguf->n_parts; i++)
        paths[i] = m->gguf->parts[i].path;
    for (uint32_t il = 0; il < m->hp.n_layer; il++) {
        const mlayer *L = &m->layers[il];
        if (!L->is_moe)
            continue; /* length 0: no experts */
        const mweight *w[3] = {&L->gate_exps, &L->up_exps, &L->down_exps};
        for (uint32_t e = 0; e < m->hp.n_expert; e++)
            for (int k = 0; k < 3; k++)
                ext[((size_t)il * m->hp.n_expert + e) * 3 + (size_t)k] =
                    (pager_extent){w[k]->part, w[k]->offset + (uint64_t)e * w[k]->mat_bytes, w[k]->mat_bytes};
    }
    lo->n_layer = (int)m->hp.n_layer;
    lo->n_expert = (int)m->hp.n_expert;
    lo->n_files = (int)m->gguf->n_parts;
    lo->paths = paths;
    lo->ext = ext;
    return 0;
}

void engine_pager_layout_free(pager_layout *lo)
{
    free((void *)lo->paths);
    free((void *)lo->ext);
    memset(lo, 0, sizeof *lo);
}

int engine_make_plan(const model *m, const cli_common *opt, int n_threads, engine_plan *p,
                     char *err, size_t errlen)
{
    (void)n_threads; /* per-thread scratch is counted through fwd_bytes_needed's pool size */
    memset(p, 0, sizeof *p);
    fwd_opts fo;
    fwd_opts_default(&fo);
    fo.n_ctx = opt->n_ctx;
    fo.n_batch = opt->n_batch;
    fo.cache_type = opt->cache_type;
    fo.attn_mha = engine_attn_mha(m, opt);
    p->budget = opt->mem;
    p->resident = m->arena_bytes;
    p->context = fwd_bytes_needed(m, &fo);
    p->slack = SLACK_BYTES;
    p->experts = m->expert_bytes;
    p->n_expert = (int)m->hp.n_expert;
    p->n_moe_layers = 0;
    for (uint32_t il = 0; il < m->hp.n_layer; il++)
        p->n_moe_layers += m->layers[il].is_moe;
    if (p->n_moe_layers) {
        pager_layout lo;
        if (engine_pager_layout(m, &lo)) {
            snprintf(err, errlen, "out of memory for the expert layout");
            return -ENOMEM;
        }
        p->slot_bytes = pager_slot_bytes(&lo);
        engine_pager_layout_free(&lo);
    }
    const uint64_t base = p->resident + p->context + p->slack;
    const int n_used = (int)(m->hp.n_expert_used ? m->hp.n_expert_used : 1);
    int mode = opt->load_mode;
    if (mode == LOAD_AUTO)
        mode = opt->cache_experts == 0 && base + p->experts <= p->budget ? LOAD_RAM : LOAD_PAGER;
    if (p->n_moe_layers == 0)
        mode = LOAD_RAM;
    p->mode = mode;
    if (mode != LOAD_MMAP && base > p->budget) {
        snprintf(err, errlen, "--mem %.2f GiB is too small: resident weights %.2f GiB + context "
                              "%.2f GiB + %.2f GiB slack need at least %.2f GiB%s",
                 (double)p->budget / GIB, (double)p->resident / GIB, (double)p->context / GIB,
                 (double)p->slack / GIB,
                 (double)(base + (mode == LOAD_PAGER ? (uint64_t)n_used * p->slot_bytes : 0)) / GIB,
                 mode == LOAD_PAGER ? " with room for one token's experts" : "");
        return -ENOMEM;
    }
    if (mode == LOAD_RAM && base + p->experts > p->budget) {
        snprintf(err, errlen, "--load-mode ram needs %.2f GiB (experts %.2f GiB) but --mem is %.2f GiB",
                 (double)(base + p->experts) / GIB, (double)p->experts / GIB,
                 (double)p->budget / GIB);
        return -ENOMEM;
    }
    if (mode == LOAD_PAGER) {
        uint64_t room = p->budget - base;
        uint64_t n = room / p->slot_bytes;
        uint64_t all = (uint64_t)p->n_moe_layers * (uint64_t)p->n_expert;
        if (n > all)
            n = all;
        if (opt->cache_experts > 0 && (uint64_t)opt->cache_experts < n)
            n = (uint64_t)opt->cache_experts;
        if (n < 1 || (opt->cache_experts == 0 && n < (uint64_t)n_used)) {
            snprintf(err, errlen, "--mem %.2f GiB leaves no room for the expert pool: need at "
                                  "least %.2f GiB (resident %.2f + context %.2f + %d experts of "
                                  "%.1f MiB)",
                     (double)p->budget / GIB, (double)(base + (uint64_t)n_used * p->slot_bytes) / GIB,
                     (double)p->resident / GIB, (double)p->context / GIB, n_used,
                     (double)p->slot_bytes / MIB);
            return -ENOMEM;
        }
        p->n_slots = (int)n;
        p->pool = n * p->slot_bytes;
    }
    return 0;
}

void engine_print_plan(const engine_plan *p, FILE *f)
{
    static const char *modes[] = {"auto", "all in RAM", "paged (io_uring pool)", "mmap (page cache)"};
    fprintf(f, "memory plan (--mem %.2f GiB): resident weights %.2f GiB + context %.2f GiB + slack "
               "%.2f GiB",
            (double)p->budget / GIB, (double)p->resident / GIB, (double)p->context / GIB,
            (double)p->slack / GIB);
    if (p->mode == LOAD_PAGER)
        fprintf(f, " + expert pool %.2f GiB (%d experts of %.1f MiB = %.1f per MoE layer, %.1f%% of "
                   "%.2f GiB of experts)\n",
                (double)p->pool / GIB, p->n_slots, (double)p->slot_bytes / MIB,
                p->n_moe_layers ? (double)p->n_slots / p->n_moe_layers : 0.0,
                p->experts ? 100.0 * (double)p->pool / (double)p->experts : 0.0,
                (double)p->experts / GIB);
    else
        fprintf(f, " + experts %.2f GiB, %s\n", (double)p->experts / GIB, modes[p->mode]);
}

uint64_t engine_peak_rss(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return 0;
    char line[256];
    unsigned long long kb = 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmHWM: %llu kB", &kb) == 1)
            break;
    fclose(f);
    return (uint64_t)kb * 1024;
}

void engine_print_stats(const engine *e, FILE *f)
{
    if (e->pg) {
        pager_stats s;
        pager_get_stats(e->pg, &s);
        uint64_t acc = s.hits + s.misses;
        fprintf(f, "expert cache: %llu hits (%llu read ahead), %llu misses (%.1f%% hit rate), %.3f GiB read at "
                   "%.2f GiB/s (%s; +%.1f%% alignment), stalled %.3f s of %.3f s reading, pool "
                   "%d/%d slots used%s\n",
                (unsigned long long)s.hits, (unsigned long long)s.prefetch_used,
                (unsigned long long)s.misses, acc ? 100.0 * (double)s.hits / (double)acc : 0.0,
                (double)s.bytes_read / GIB, s.busy_s > 0 ? (double)s.bytes_read / GIB / s.busy_s : 0.0,
                s.path,
                s.read_bytes_needed ? 100.0 * ((double)s.bytes_read / (double)s.read_bytes_needed - 1)
                                    : 0.0,
                s.stall_s, s.busy_s, s.used_slots, s.n_slots, s.huge_pages ? ", huge pages" : "");
        if (s.prefetched)
            fprintf(f, "prefetch: %llu experts read ahead, %llu used by the next layer (%.1f%% right)\n",
                    (unsigned long long)s.prefetched, (unsigned long long)s.prefetch_used,
                    100.0 * (double)s.prefetch_used / (double)s.prefetched);
    }
    fprintf(f, "peak RSS %.3f GiB (budget %.2f GiB)\n", (double)engine_peak_rss() / GIB,
            (double)e->opt.mem / GIB);
}

int engine_open(engine *e, const cli_common *opt, bool progress, bool need_tokenizer, char *err,
                size_t errlen)
{
    memset(e, 0, sizeof *e);
    e->opt = *opt;
    model_opts mo;
    model_opts_default(&mo);
    mo.expert_groups = opt->expert_groups;
    mo.expert_groups_used = opt->expert_groups_used;
    mo.load_experts = false; /* decided by the plan */
    if (progress && isatty(2))
        mo.progress = bar;
    int rc = model_load(&e->m, opt->model, &mo, err, errlen);
    if (!rc)
        rc = tpool_create(&e->tp, opt->threads, err, errlen);
    if (!rc)
        rc = engine_make_plan(e->m, &e->opt, tpool_size(e->tp), &e->plan, err, errlen);
    if (!rc && e->plan.mode == LOAD_RAM)
        rc = model_load_experts(e->m, err, errlen);
    if (!rc && e->plan.mode == LOAD_MMAP)
        rc = model_map_experts(e->m, err, errlen);
    if (!rc && e->plan.mode == LOAD_PAGER) {
        pager_opts po = {e->plan.n_slots, opt->cache_policy, opt->mlock};
        pager_layout lo;
        rc = engine_pager_layout(e->m, &lo);
        if (!rc)
            rc = pager_create(&e->pg, &lo, &po, err, errlen);
        else
            snprintf(err, errlen, "out of memory for the expert layout");
        engine_pager_layout_free(&lo);
    }
    if (!rc) {
        char terr[512];
        int trc = tok_load(&e->v, e->m->gguf, terr, sizeof terr);
        if (trc && need_tokenizer) {
            snprintf(err, errlen, "%s", terr);
            rc = trc;
        }
    }
    if (!rc && opt->trace_routing && !(e->trace = fopen(opt->trace_routing, "w"))) {
        snprintf(err, errlen, "%s: %s", opt->trace_routing, strerror(errno));
        rc = -errno;
    }
    if (!rc && opt->verbose) {
        fprintf(stderr, "moestream: kernels %s, OpenBLAS %s; %s\n", kern_get()->isa, blas_core(), tpool_describe(e->tp));
        engine_print_plan(&e->plan, stderr);
    }
    if (rc)
        engine_close(e);
    return rc;
}

void engine_close(engine *e)
{
    if (e->trace)
        fclose(e->trace);
    tok_free(e->v);
    pager_destroy(e->pg);
    tpool_destroy(e->tp);
    model_free(e->m);
    memset(e, 0, sizeof *e);
}

int engine_state(engine *e, fwd_state **st, char *err, size_t errlen)
{
    fwd_opts fo;
    fwd_defaults(e, &fo);
    return fwd_create(st, e->m, &fo, err, errlen);
}
