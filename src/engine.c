/* engine.c - see engine.h.
 * The plan: budget = resident weights + scratch (one, shared) + max_seqs
 * sequence caches + slack + expert pool.  auto mode keeps every expert in
 * RAM when that fits, else pages them through a pool of what remains.
 * Scratch and caches are sized by forward.c's own allocation functions with
 * the engine's real thread count, so the plan is what gets allocated. */
#include "engine.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blas.h"
#include "kernels.h"
#include "request.h"
#include "repack.h"

#define SLACK_BYTES ((uint64_t)192 << 20)
/* Sizes are printed in binary units, as --mem reads them (20G = 20 GiB). */
#define GIB 1073741824.0
#define MIB 1048576.0

static void trace_route(void *ud, int il, int pos, int n, const int32_t *ids, const float *w)
{
    (void)w;
    FILE *f = ud;
    fprintf(f, "%d %d", il, pos);
    for (int i = 0; i < n; i++)
        fprintf(f, " %d", ids[i]);
    fputc('\n', f);
}

/* --bench-routing-trace: the recording's experts for model layer il, the
 * mapping of rtrace_pick by MoE layer rank (layer il counts the MoE layers
 * before it). */
static void pick_from_trace(void *ud, int il, int pos, int k, int32_t *sel)
{
    const engine *e = ud;
    int j = 0;
    for (int l = 0; l < il; l++)
        j += e->m->layers[l].is_moe;
    rtrace_pick(&e->bench_trace, j, pos, (int)e->m->hp.n_expert, k, sel);
}

/* auto: the decompressed form when its cache for every sequence is small
 * next to the budget (small legacy models, exact against the reference),
 * the absorbed latent form otherwise (DeepSeek-R1: ~10 MB per position). */
bool engine_attn_mha(const model *m, const ms_engine_opts *opt)
{
    if (m->hp.is_mla || opt->attn == MS_ATTN_ABSORBED)
        return false;
    if (opt->attn == MS_ATTN_MHA)
        return true;
    const uint64_t seqs = opt->max_seqs > 0 ? (uint64_t)opt->max_seqs : 1;
    return fwd_mha_cache_bytes(m, opt->n_ctx) * seqs <= opt->mem / 16;
}

/* The forward options of opt for m; tp NULL with n_threads for sizing. */
static void fwd_from_opts(const model *m, const ms_engine_opts *opt, tpool *tp, int n_threads,
                          fwd_opts *fo)
{
    fwd_opts_default(fo);
    fo->n_ctx = opt->n_ctx;
    fo->n_batch = opt->n_batch;
    fo->n_seqs = opt->max_seqs; /* one step may take a token of each (ms_batch) */
    fo->cache_type = opt->cache_type;
    fo->attn_mha = engine_attn_mha(m, opt);
    fo->attn_fa = fo->attn_mha && opt->attn == MS_ATTN_FLASH;
    fo->tp = tp;
    fo->n_threads = n_threads;
    fo->uniform_routing_seed = opt->bench_uniform_routing;
    fo->pool_routing = opt->bench_pool_routing;
    fo->prefetch = opt->prefetch;
}

/* The pager's transform (pager.h): an expert matrix converted in place
 * once its read has landed, either way.
 * Repack (--repack on, a plain file): in place works group by group because
 * group g's output, [g, g+1) x the group bytes, ends before group g's rows
 * start (region + data_off + g x 16 rows; the extent's xf_len leaves that
 * room), so no row is overwritten before it is read.
 * Unpack (a repacked file whose experts the policy keeps plain, e.g. a CPU
 * without repacked kernels or --repack off): in place as repack_unpack_rows
 * allows it, the file's bytes at least 16 plain rows into the region. */
static int engine_convert_matrix(void *ud, int il, int e, int k, uint8_t *region, size_t region_bytes,
                                 size_t data_off, char *err, size_t errlen)
{
    const model *m = ud;
    const mlayer *L = &m->layers[il];
    const mweight *w = k == 0 ? &L->gate_exps : k == 1 ? &L->up_exps : &L->down_exps;
    (void)e;
    const size_t gb = repack_group_bytes(w->type, w->n_in), gsrc = REPACK_ROWS * w->row_bytes;
    const size_t ng = (size_t)(w->n_out + REPACK_ROWS - 1) / REPACK_ROWS;
    if (w->file_rp) {
        if (!gb || gsrc > gb || data_off < gsrc || data_off + w->file_mat_bytes > region_bytes) {
            snprintf(err, errlen, "%s: no room to unpack in place (%zu bytes at %zu of a %zu-byte region)", w->name,
                     w->file_mat_bytes, data_off, region_bytes);
            return -EINVAL;
        }
        repack_unpack_rows(w->type, region + data_off, w->n_in, w->n_out, region, w->row_bytes);
        return 0;
    }
    if (!gb || data_off + w->mat_bytes > region_bytes || ng * gb > data_off + (ng - 1) * gsrc) {
        snprintf(err, errlen, "%s: no room to repack in place (%zu bytes at %zu of a %zu-byte region)", w->name,
                 (size_t)w->mat_bytes, data_off, region_bytes);
        return -EINVAL;
    }
    return repack_rows(w->type, region + data_off, w->row_bytes, w->n_out, w->n_in, region, err, errlen);
}

/* Under --repack on the pager repacks the experts that the model keeps
 * repacked (rp_mat_bytes) as they land: on the Zen 5 VM it costs ~3.5 ms
 * per 2.9 MB IQ1_S matrix (repack_rows, ~850 MB/s, one core) against
 * ~0.3 ms saved per product (5 -> 12 GB/s, bench/RESULTS.md), so a paged
 * expert would have to be used ~10 times per landing to gain: auto keeps
 * paged experts plain. */
static bool pager_repacks(void)
{
    return repack_mode() == REPACK_ON;
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
            for (int k = 0; k < 3; k++) {
                /* the repacked matrix plus one group of plain rows: room to
                 * repack or unpack in place (engine_convert_matrix); a
                 * repacked file's matrix kept repacked is served as read */
                const bool rp_in = w[k]->file_rp, rp_out = w[k]->rp_mat_bytes && (rp_in || pager_repacks());
                const uint64_t rpb = rp_in ? w[k]->file_mat_bytes : w[k]->rp_mat_bytes;
                const uint64_t xf = rp_in != rp_out ? rpb + (uint64_t)REPACK_ROWS * w[k]->row_bytes : 0;
                ext[((size_t)il * m->hp.n_expert + e) * 3 + (size_t)k] =
                    (pager_extent){w[k]->part, w[k]->offset + (uint64_t)e * w[k]->file_mat_bytes,
                                   w[k]->file_mat_bytes, xf};
                if (xf) {
                    lo->transform = engine_convert_matrix;
                    lo->transform_ud = (void *)m;
                }
                /* every expert with rp_mat_bytes comes repacked (model.c
                 * keeps a repacked file's plain experts plain) */
                lo->repacked = lo->repacked || rp_out;
            }
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

uint64_t engine_session_bytes(const model *m, int n_ctx)
{
    return ((uint64_t)n_ctx * 4 + 63) / 64 * 64 + ((uint64_t)m->hp.n_vocab * 4 + 63) / 64 * 64;
}

/* Everything but the experts, for n_ctx positions per sequence and seqs
 * sequences. */
static uint64_t base_bytes(const model *m, const ms_engine_opts *opt, int n_threads, int n_ctx,
                           int seqs, uint64_t *scratch, uint64_t *kv_per)
{
    ms_engine_opts o = *opt;
    o.n_ctx = n_ctx;
    o.max_seqs = seqs;
    fwd_opts fo;
    fwd_from_opts(m, &o, NULL, n_threads, &fo);
    uint64_t s = fwd_scratch_bytes_needed(m, &fo);
    uint64_t k = fwd_kv_bytes_needed(m, &fo) + engine_session_bytes(m, n_ctx);
    if (scratch)
        *scratch = s;
    if (kv_per)
        *kv_per = k;
    return m->arena_bytes + s + (uint64_t)seqs * k + SLACK_BYTES + request_mem_budget();
}

/* Appends what would fit to a refusal: the most sequences at this context,
 * else the longest context for these sequences.  need: expert bytes that
 * must fit beside the base. */
static void fit_hint(const model *m, const ms_engine_opts *opt, int n_threads, uint64_t need,
                     char *err, size_t errlen)
{
    size_t l = strlen(err);
    if (!errlen || l + 1 >= errlen)
        return;
    int seqs = opt->max_seqs > 0 ? opt->max_seqs : 1;
    if (seqs > 1) {
        int lo = 0;
        for (int n = seqs - 1; n >= 1; n--)
            if (base_bytes(m, opt, n_threads, opt->n_ctx, n, NULL, NULL) + need <= opt->mem) {
                lo = n;
                break;
            }
        if (lo) {
            snprintf(err + l, errlen - l, "; at most %d sequence%s of %d positions fit", lo,
                     lo == 1 ? "" : "s", opt->n_ctx);
            return;
        }
    }
    int lo = 0, hi = opt->n_ctx - 1; /* largest ctx in [1, n_ctx) that fits, 0 if none */
    while (lo < hi) {
        int mid = lo + (hi - lo + 1) / 2;
        if (base_bytes(m, opt, n_threads, mid, seqs, NULL, NULL) + need <= opt->mem)
            lo = mid;
        else
            hi = mid - 1;
    }
    if (lo >= 1)
        snprintf(err + l, errlen - l, "; the largest context that fits %d sequence%s is %d", seqs,
                 seqs == 1 ? "" : "s", lo);
}

int engine_make_plan(const model *m, const ms_engine_opts *opt, int n_threads, engine_plan *p,
                     char *err, size_t errlen)
{
    memset(p, 0, sizeof *p);
    if (opt->max_seqs < 1 || opt->max_seqs > 4096) {
        snprintf(err, errlen, "max sequences %d out of range [1, 4096]", opt->max_seqs);
        return -EINVAL;
    }
    if (opt->n_ctx < 1 || opt->n_ctx > (1 << 24)) {
        snprintf(err, errlen, "context size %d out of range", opt->n_ctx);
        return -EINVAL;
    }
    p->budget = opt->mem;
    /* what the arena and the experts really map: whole 2 MiB pages where
     * they go (or, for the experts, will go) on reserved huge pages */
    p->resident = m->arena_mem.base ? m->arena_mem.map_bytes : hugemem_footprint(m->arena_bytes, true);
    p->max_seqs = opt->max_seqs;
    p->n_ctx = opt->n_ctx;
    p->n_batch = opt->n_batch > opt->n_ctx ? opt->n_ctx : opt->n_batch;
    p->threads = n_threads;
    p->attn_mha = engine_attn_mha(m, opt);
    const uint64_t base = base_bytes(m, opt, n_threads, opt->n_ctx, opt->max_seqs, &p->scratch,
                                     &p->kv_per_seq) +
                          (p->resident - m->arena_bytes);
    p->kv = (uint64_t)opt->max_seqs * p->kv_per_seq;
    p->slack = SLACK_BYTES;
    p->requests = request_mem_budget();
    p->experts = m->expert_mem.base ? m->expert_mem.map_bytes : hugemem_footprint(m->expert_bytes, true);
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
    const int n_used = (int)(m->hp.n_expert_used ? m->hp.n_expert_used : 1);
    int mode = opt->load_mode;
    if (mode == MS_LOAD_AUTO)
        mode = opt->cache_experts == 0 && base + p->experts <= p->budget ? MS_LOAD_RAM : MS_LOAD_PAGER;
    if (p->n_moe_layers == 0)
        mode = MS_LOAD_RAM;
    p->mode = mode;
    const uint64_t min_pool = mode == MS_LOAD_PAGER ? (uint64_t)n_used * p->slot_bytes : 0;
    if (mode != MS_LOAD_MMAP && base > p->budget) {
        snprintf(err, errlen, "--mem %.2f GiB is too small: resident weights %.2f GiB + scratch "
                              "%.2f GiB + cache %.2f GiB (%d x %.3f GiB) + %.2f GiB slack + %.2f GiB "
                              "requests need at least %.2f GiB%s",
                 (double)p->budget / GIB, (double)p->resident / GIB, (double)p->scratch / GIB,
                 (double)p->kv / GIB, opt->max_seqs, (double)p->kv_per_seq / GIB,
                 (double)p->slack / GIB, (double)p->requests / GIB, (double)(base + min_pool) / GIB,
                 mode == MS_LOAD_PAGER ? " with room for one token's experts" : "");
        fit_hint(m, opt, n_threads, min_pool, err, errlen);
        return -ENOMEM;
    }
    if (mode == MS_LOAD_RAM && base + p->experts > p->budget) {
        snprintf(err, errlen, "--load-mode ram needs %.2f GiB (experts %.2f GiB) but --mem is %.2f GiB",
                 (double)(base + p->experts) / GIB, (double)p->experts / GIB,
                 (double)p->budget / GIB);
        fit_hint(m, opt, n_threads, p->experts, err, errlen);
        return -ENOMEM;
    }
    if (mode == MS_LOAD_PAGER) {
        uint64_t room = p->budget - base;
        uint64_t n = room / p->slot_bytes;
        uint64_t all = (uint64_t)p->n_moe_layers * (uint64_t)p->n_expert;
        if (n > all)
            n = all;
        if (opt->cache_experts > 0 && (uint64_t)opt->cache_experts < n)
            n = (uint64_t)opt->cache_experts;
        if (n < 1 || (opt->cache_experts == 0 && n < (uint64_t)n_used)) {
            snprintf(err, errlen, "--mem %.2f GiB leaves no room for the expert pool: need at "
                                  "least %.2f GiB (resident %.2f + scratch %.2f + cache %.2f + %d "
                                  "experts of %.1f MiB)",
                     (double)p->budget / GIB, (double)(base + min_pool) / GIB,
                     (double)p->resident / GIB, (double)p->scratch / GIB, (double)p->kv / GIB,
                     n_used, (double)p->slot_bytes / MIB);
            fit_hint(m, opt, n_threads, min_pool, err, errlen);
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
    fprintf(f, "memory plan (--mem %.2f GiB): resident weights %.2f GiB + scratch %.2f GiB (%d "
               "thread%s) + cache %.2f GiB (%d x %d positions) + slack %.2f GiB + requests %.2f GiB",
            (double)p->budget / GIB, (double)p->resident / GIB, (double)p->scratch / GIB,
            p->threads, p->threads == 1 ? "" : "s", (double)p->kv / GIB, p->max_seqs, p->n_ctx,
            (double)p->slack / GIB, (double)p->requests / GIB);
    if (p->mode == MS_LOAD_PAGER)
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
    /* reserved huge pages (hugemem.h) are not in VmHWM; ours stay mapped
     * from load to exit, so the ones mapped now are the peak's */
    return proc_status_bytes("VmHWM") + hugemem_process_bytes();
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

int engine_load(engine *e, const char *path, const ms_engine_opts *opt, char *err, size_t errlen)
{
    memset(e, 0, sizeof *e);
    e->opt = *opt;
    /* the caller's strings are not kept past this call */
    e->opt.trace_routing = e->opt.bench_routing_trace = e->opt.repack = e->opt.cache_state = NULL;
    model_opts mo;
    model_opts_default(&mo);
    mo.expert_groups = opt->expert_groups;
    mo.expert_groups_used = opt->expert_groups_used;
    mo.load_experts = false; /* decided by the plan */
    mo.progress = opt->on_load;
    mo.progress_ud = opt->load_ud;
    mo.defer_read = true; /* after the pool's setup has started, which then overlaps the reads */
    int rc = model_load(&e->m, path, &mo, err, errlen);
    if (!rc)
        rc = tpool_create(&e->tp, opt->threads, err, errlen);
    if (!rc)
        rc = engine_make_plan(e->m, &e->opt, tpool_size(e->tp), &e->plan, err, errlen);
    if (!rc && e->plan.mode == MS_LOAD_RAM)
        rc = model_load_experts(e->m, err, errlen);
    if (!rc && e->plan.mode == MS_LOAD_MMAP)
        rc = model_map_experts(e->m, err, errlen);
    if (!rc && e->plan.mode == MS_LOAD_PAGER) {
        pager_opts po = {e->plan.n_slots, opt->cache_policy, opt->mlock};
        pager_layout lo;
        rc = engine_pager_layout(e->m, &lo);
        if (!rc)
            rc = pager_create(&e->pg, &lo, &po, err, errlen);
        else
            snprintf(err, errlen, "out of memory for the expert layout");
        engine_pager_layout_free(&lo);
    }
    if (!rc)
        rc = model_read_resident(e->m, &e->load_st, err, errlen);
    if (!rc && e->pg) /* now: it faults in GBs, as the load did */
        pager_register_start(e->pg);
    if (!rc && opt->verbose) {
        const bulkread_stats *b = &e->load_st;
        fprintf(stderr, "moestream: resident weights %.2f GiB read in %.2f s (%.2f GiB/s, %llu reads; %s%s; %s)\n",
                (double)b->bytes / GIB, b->seconds, b->seconds > 0 ? (double)b->bytes / GIB / b->seconds : 0.0,
                (unsigned long long)b->reads, b->path,
                b->direct ? "" : "; slower than O_DIRECT, and it fills the page cache",
                e->m->arena_mem.hugetlb ? "on reserved huge pages" : "on ordinary pages");
        if (b->moved)
            fprintf(stderr, "moestream: %.1f MiB of them moved into alignment after their reads\n",
                    (double)b->moved / MIB);
        if (e->pg)
            fprintf(stderr, "moestream: registering the expert pool with the ring in the background\n");
    }
    if (!rc && e->pg && opt->cache_state) {
        /* no file yet is the first run: it is written at close */
        char serr[512] = "";
        int n = pager_state_load(e->pg, opt->cache_state, serr, sizeof serr);
        if (n < 0 && n != -ENOENT) {
            snprintf(err, errlen, "--cache-state: %s", serr);
            rc = n;
        } else if (!(e->state_path = strdup(opt->cache_state))) {
            snprintf(err, errlen, "out of memory");
            rc = -ENOMEM;
        }
        if (!rc && opt->verbose) {
            fprintf(stderr, "moestream: warm start: %d experts being read from %s\n", n < 0 ? 0 : n,
                    opt->cache_state);
        }
    }
    if (!rc) {
        char terr[512];
        int trc = tok_load(&e->v, e->m->gguf, terr, sizeof terr);
        if (trc && opt->need_tokenizer) {
            snprintf(err, errlen, "%s", terr);
            rc = trc;
        }
    }
    if (!rc && opt->bench_routing_trace) {
        rc = rtrace_load(&e->bench_trace, opt->bench_routing_trace, 6, err, errlen);
        if (!rc)
            rc = rtrace_check(&e->bench_trace, (int)e->m->hp.n_expert, (int)e->m->hp.n_expert_used, err,
                              errlen);
    }
    if (!rc && opt->trace_routing && !(e->trace = fopen(opt->trace_routing, "w"))) {
        rc = -errno;
        snprintf(err, errlen, "%s: %s", opt->trace_routing, strerror(errno));
    }
    if (!rc) {
        fwd_from_opts(e->m, &e->opt, e->tp, 0, &e->fo);
        e->fo.experts = e->pg ? pager_src(e->pg) : NULL;
        if (e->trace) {
            e->fo.on_route = trace_route;
            e->fo.route_ud = e->trace;
        }
        if (e->bench_trace.ids) {
            e->fo.route_pick = pick_from_trace;
            e->fo.pick_ud = e;
        }
        rc = fwd_scratch_create(&e->scratch, e->m, &e->fo, err, errlen);
        e->vocab.v = e->v;
    }
    if (!rc) {
        e->kv = calloc((size_t)e->plan.max_seqs, sizeof *e->kv);
        e->kv_busy = calloc((size_t)e->plan.max_seqs, sizeof *e->kv_busy);
        if (!e->kv || !e->kv_busy) {
            snprintf(err, errlen, "out of memory");
            rc = -ENOMEM;
        }
    }
    if (!rc && opt->verbose) {
        fprintf(stderr, "moestream: kernels %s, OpenBLAS %s; %s\n", kern_get()->isa, blas_core(), tpool_describe(e->tp));
        char rp[512];
        repack_describe(rp, sizeof rp);
        fprintf(stderr, "moestream: %s%s\n", rp,
                e->m->gguf->repack_version
                    ? " file stored repacked (moestream repack): experts the policy keeps plain are unpacked as read"
                : e->plan.mode == MS_LOAD_RAM ? ""
                : e->plan.mode == MS_LOAD_PAGER && pager_repacks() ? " paged experts repacked as they land (--repack on)"
                : " experts not in RAM: plain (repacking as they land costs more than it saves here; --repack on forces it)");
        if (e->m->r16_mats)
            fprintf(stderr, "moestream: %d resident Q4_K matrices (%.2f GiB) in the 16-row layout (--repack off: "
                            "plain rows)\n", e->m->r16_mats, (double)e->m->r16_bytes / 1073741824.0);
        engine_print_plan(&e->plan, stderr);
    }
    if (rc)
        engine_close(e);
    return rc;
}

void engine_close(engine *e)
{
    if (e->kv)
        for (int i = 0; i < e->plan.max_seqs; i++)
            fwd_kv_destroy(e->kv[i]);
    free(e->kv);
    free(e->kv_busy);
    fwd_destroy(e->scratch);
    if (e->trace)
        fclose(e->trace);
    tok_free(e->v);
    rtrace_free(&e->bench_trace);
    if (e->pg && e->state_path) {
        char serr[512];
        if (pager_state_save(e->pg, e->state_path, serr, sizeof serr))
            fprintf(stderr, "moestream: cannot save the cache state: %s\n", serr);
    }
    free(e->state_path);
    if (e->pg && e->opt.verbose) {
        pager_stats ps;
        pager_get_stats(e->pg, &ps);
        if (ps.pool_register_s > 0)
            fprintf(stderr, "moestream: the expert pool (%d chunks) was registered in the background in %.2f s\n",
                    ps.pool_chunks, ps.pool_register_s);
    }
    pager_destroy(e->pg);
    tpool_destroy(e->tp);
    model_free(e->m);
    memset(e, 0, sizeof *e);
}

int engine_kv_take(engine *e, fwd_kv **kv, char *err, size_t errlen)
{
    *kv = NULL;
    for (int i = 0; i < e->plan.max_seqs; i++) {
        if (e->kv_busy[i])
            continue;
        if (!e->kv[i]) {
            int rc = fwd_kv_create(&e->kv[i], e->m, &e->fo, err, errlen);
            if (rc)
                return rc;
        }
        fwd_kv_truncate(e->kv[i], 0);
        e->kv_busy[i] = true;
        e->n_sessions++;
        *kv = e->kv[i];
        return 0;
    }
    snprintf(err, errlen, "all %d sequences are in use (raise the maximum number of sequences)",
             e->plan.max_seqs);
    return -EBUSY;
}

void engine_kv_give(engine *e, fwd_kv *kv)
{
    for (int i = 0; i < e->plan.max_seqs; i++)
        if (e->kv[i] == kv && e->kv_busy[i]) {
            e->kv_busy[i] = false;
            e->n_sessions--;
        }
}
