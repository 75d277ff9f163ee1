/* ms_engine.c - the public engine API (include/moestream.h): options and
 * their defaults, opening and closing an engine, its plan, statistics and
 * model information; model files inspected without loading (ms_file_*);
 * the small library-wide functions (version, free, kernel ISA, peak RSS).
 * Owns: ms_engine_*, ms_file_*, ms_plan_print, ms_stats_print, ms_version,
 * ms_free, ms_kernel_isa, ms_peak_rss.  The work is engine.c's; this file
 * translates between the public plain structs and the internal ones. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "repack.h"
#include "gguf.h"
#include "kernels.h"
#include "model.h"
#include "moestream.h"
#include "quant.h"
#include "threadpool.h"

#define GIB 1073741824.0

MS_API const char *ms_version(void)
{
    return "0.1";
}

MS_API void ms_free(void *p)
{
    free(p);
}

MS_API const char *ms_kernel_isa(void)
{
    return kern_get()->isa;
}

MS_API uint64_t ms_peak_rss(void)
{
    return engine_peak_rss();
}

MS_API void ms_engine_opts_default(ms_engine_opts *o)
{
    memset(o, 0, sizeof *o);
    o->mem = (uint64_t)20 << 30;
    o->cache_policy = MS_POLICY_LEARN; /* the best policy on the recorded traces (bench/RESULTS.md) */
    o->prefetch = true;
    o->max_seqs = 1;
    o->n_ctx = 4096;
    o->n_batch = 64;
    o->cache_type = MS_CACHE_F32;
    o->attn = MS_ATTN_AUTO;
    o->expert_groups = -1;
    o->need_tokenizer = true;
}

static int check_opts(const ms_engine_opts *o, char *err, size_t errlen)
{
    const char *bad = NULL;
    if (o->n_batch < 1 || o->n_batch > (1 << 16))
        bad = "batch size out of range [1, 65536]";
    else if (o->cache_type < MS_CACHE_F32 || o->cache_type > MS_CACHE_Q4_0)
        bad = "unknown cache type";
    else if (o->load_mode < MS_LOAD_AUTO || o->load_mode > MS_LOAD_MMAP)
        bad = "unknown load mode";
    else if (o->attn < MS_ATTN_AUTO || o->attn > MS_ATTN_FLASH)
        bad = "unknown attention form";
    else if (o->cache_policy < MS_POLICY_LRU || o->cache_policy > MS_POLICY_LEARN)
        bad = "unknown cache policy";
    else if (o->threads < 0 || o->threads > 1024)
        bad = "thread count out of range [0, 1024]";
    else if (o->cache_experts < 0)
        bad = "negative expert cache size";
    else if (o->repack && strcmp(o->repack, "auto") && strcmp(o->repack, "on") && strcmp(o->repack, "off"))
        bad = "repack must be auto, on or off";
    if (bad) {
        snprintf(err, errlen, "%s", bad);
        return -EINVAL;
    }
    return 0;
}

MS_API int ms_engine_open(ms_engine **out, const char *path, const ms_engine_opts *o, char *err,
                          size_t errlen)
{
    char dummy[8];
    if (!err) {
        err = dummy;
        errlen = sizeof dummy;
    }
    *out = NULL;
    ms_engine_opts d;
    if (!o) {
        ms_engine_opts_default(&d);
        o = &d;
    }
    int rc = check_opts(o, err, errlen);
    if (rc)
        return rc;
    if (o->repack) /* read when the model's experts are bound, so set before loading */
        repack_mode_set(o->repack);
    engine *e = malloc(sizeof *e);
    if (!e) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    if ((rc = engine_load(e, path, o, err, errlen))) {
        free(e);
        return rc;
    }
    *out = e;
    return 0;
}

MS_API void ms_engine_close(ms_engine *e)
{
    if (!e)
        return;
    engine_close(e);
    free(e);
}

MS_API void ms_engine_plan(const ms_engine *e, ms_mem_plan *out)
{
    *out = e->plan;
}

static void info_from(const model *m, ms_model_info *o)
{
    const model_hparams *hp = &m->hp;
    memset(o, 0, sizeof *o);
    o->n_vocab = hp->n_vocab;
    o->n_embd = hp->n_embd;
    o->n_layer = hp->n_layer;
    o->n_dense_lead = hp->n_dense_lead;
    o->n_head = hp->n_head;
    o->n_ff = hp->n_ff;
    o->n_ff_exp = hp->n_ff_exp;
    o->n_expert = hp->n_expert;
    o->n_expert_used = hp->n_expert_used;
    o->n_expert_shared = hp->n_expert_shared;
    o->n_group = hp->n_group;
    o->n_group_used = hp->n_group_used;
    o->q_lora = hp->q_lora;
    o->kv_lora = hp->kv_lora;
    o->qk_nope = hp->qk_nope;
    o->qk_rope = hp->qk_rope;
    o->v_head = hp->v_head;
    o->n_ctx_train = hp->n_ctx_train;
    o->split_attention = hp->is_mla;
    o->expert_bytes = m->expert_bytes;
    o->resident_bytes = m->resident_bytes;
}

MS_API void ms_engine_model_info(const ms_engine *e, ms_model_info *out)
{
    info_from(e->m, out);
}

MS_API const ms_engine_opts *ms_engine_get_opts(const ms_engine *e)
{
    return &e->opt;
}

MS_API const char *ms_engine_describe(const ms_engine *e)
{
    return tpool_describe(e->tp);
}

MS_API void ms_engine_stats(const ms_engine *e, ms_stats *out)
{
    memset(out, 0, sizeof *out);
    if (e->pg) {
        pager_stats s;
        pager_get_stats(e->pg, &s);
        out->paged = true;
        out->hits = s.hits;
        out->misses = s.misses;
        out->prefetched = s.prefetched;
        out->prefetch_used = s.prefetch_used;
        out->bytes_read = s.bytes_read;
        out->read_bytes_needed = s.read_bytes_needed;
        out->stall_s = s.stall_s;
        out->busy_s = s.busy_s;
        out->used_slots = s.used_slots;
        out->n_slots = s.n_slots;
        out->huge_pages = s.huge_pages;
        out->converted = s.transformed;
        out->convert_s = s.transform_s;
        snprintf(out->io_path, sizeof out->io_path, "%s", s.path);
    }
    out->peak_rss = engine_peak_rss();
    out->budget = e->opt.mem;
    out->sessions = e->n_sessions;
}

MS_API void ms_stats_print(const ms_stats *s, FILE *f)
{
    if (s->paged) {
        uint64_t acc = s->hits + s->misses;
        fprintf(f, "expert cache: %llu hits (%llu read ahead), %llu misses (%.1f%% hit rate), %.3f GiB read at "
                   "%.2f GiB/s (%s; +%.1f%% alignment), stalled %.3f s of %.3f s reading, pool "
                   "%d/%d slots used%s\n",
                (unsigned long long)s->hits, (unsigned long long)s->prefetch_used,
                (unsigned long long)s->misses, acc ? 100.0 * (double)s->hits / (double)acc : 0.0,
                (double)s->bytes_read / GIB,
                s->busy_s > 0 ? (double)s->bytes_read / GIB / s->busy_s : 0.0, s->io_path,
                s->read_bytes_needed
                    ? 100.0 * ((double)s->bytes_read / (double)s->read_bytes_needed - 1)
                    : 0.0,
                s->stall_s, s->busy_s, s->used_slots, s->n_slots, s->huge_pages ? ", huge pages" : "");
        if (s->prefetched)
            fprintf(f, "prefetch: %llu experts read ahead, %llu used by the next layer (%.1f%% right)\n",
                    (unsigned long long)s->prefetched, (unsigned long long)s->prefetch_used,
                    100.0 * (double)s->prefetch_used / (double)s->prefetched);
        fprintf(f, "pool conversions: %llu expert matrices repacked or unpacked as they landed, %.3f s\n",
                (unsigned long long)s->converted, s->convert_s);
    }
    fprintf(f, "peak RSS %.3f GiB (budget %.2f GiB)\n", (double)s->peak_rss / GIB,
            (double)s->budget / GIB);
}

MS_API void ms_plan_print(const ms_mem_plan *p, FILE *f)
{
    engine_print_plan(p, f);
}

/* ---- model files ---- */

struct ms_file {
    gguf_file *g;
    char *path;
};

MS_API int ms_file_open(ms_file **out, const char *path, char *err, size_t errlen)
{
    *out = NULL;
    ms_file *f = calloc(1, sizeof *f);
    if (!f || !(f->path = strdup(path))) {
        free(f);
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    int rc = gguf_open(&f->g, path, err, errlen);
    if (rc) {
        ms_file_close(f);
        return rc;
    }
    *out = f;
    return 0;
}

MS_API void ms_file_close(ms_file *f)
{
    if (!f)
        return;
    gguf_close(f->g);
    free(f->path);
    free(f);
}

MS_API int ms_file_n_parts(const ms_file *f) { return (int)f->g->n_parts; }
MS_API int ms_file_shared_layers(const ms_file *f) { return (int)f->g->shared_layers; }
MS_API int ms_file_repack_version(const ms_file *f) { return (int)f->g->repack_version; }
MS_API int ms_file_version(const ms_file *f) { return (int)f->g->version; }
MS_API size_t ms_file_n_meta(const ms_file *f) { return (size_t)f->g->n_kv; }
MS_API size_t ms_file_n_tensors(const ms_file *f) { return (size_t)f->g->n_tensors; }

MS_API int ms_file_meta(const ms_file *f, size_t i, ms_meta *o)
{
    if (i >= f->g->n_kv)
        return -EINVAL;
    const gguf_kv *kv = &f->g->kv[i];
    const gguf_value *v = &kv->val;
    memset(o, 0, sizeof *o);
    o->key = kv->key;
    o->type_name = gguf_vtype_name(v->type);
    switch (v->type) {
    case GGUF_T_STRING:
        o->kind = MS_META_STRING;
        o->str = v->str.s;
        o->str_len = (size_t)v->str.len;
        break;
    case GGUF_T_ARRAY:
        o->kind = MS_META_ARRAY;
        o->array_type = gguf_vtype_name(v->arr.type);
        o->array_n = v->arr.n;
        break;
    case GGUF_T_FLOAT32:
    case GGUF_T_FLOAT64:
        o->kind = MS_META_FLOAT;
        o->f = v->f;
        break;
    case GGUF_T_BOOL:
        o->kind = MS_META_BOOL;
        o->u = v->u;
        break;
    case GGUF_T_INT8:
    case GGUF_T_INT16:
    case GGUF_T_INT32:
    case GGUF_T_INT64:
        o->kind = MS_META_INT;
        o->i = v->i;
        break;
    default:
        o->kind = MS_META_UINT;
        o->u = v->u;
        break;
    }
    return 0;
}

MS_API int ms_file_tensor(const ms_file *f, size_t i, ms_tensor *o)
{
    if (i >= f->g->n_tensors)
        return -EINVAL;
    const gguf_tensor *t = &f->g->tensors[i];
    memset(o, 0, sizeof *o);
    o->name = t->name;
    o->type = (int)t->type;
    o->type_name = quant_info((int)t->type) ? quant_info((int)t->type)->name : "?";
    o->n_dims = (int)t->n_dims;
    for (int d = 0; d < 4; d++)
        o->ne[d] = t->ne[d];
    o->nbytes = t->nbytes;
    o->routed_expert = strstr(t->name, "_exps.") != NULL;
    const int plain = quant_private_plain((int)t->type);
    o->plain_type_name = plain >= 0 ? quant_info(plain)->name : NULL;
    return 0;
}

MS_API int ms_file_plan(const ms_file *f, const ms_engine_opts *o, ms_model_info *info,
                        ms_mem_plan *plan, char *err, size_t errlen)
{
    int rc = check_opts(o, err, errlen);
    if (rc)
        return rc;
    if (o->repack) /* read when the model's experts are bound, so set before loading */
        repack_mode_set(o->repack);
    model_opts mo;
    model_opts_default(&mo);
    mo.expert_groups = o->expert_groups;
    mo.expert_groups_used = o->expert_groups_used;
    mo.load_experts = false;
    mo.bind_only = true;
    model *m = NULL;
    if ((rc = model_load(&m, f->path, &mo, err, errlen)))
        return rc;
    if (info)
        info_from(m, info);
    if (plan)
        rc = engine_make_plan(m, o, o->threads > 0 ? o->threads : tpool_default_threads(), plan,
                              err, errlen);
    model_free(m);
    return rc;
}
