/* engine.c - see engine.h. */
#include "engine.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "kernels.h"

static void bar(void *ud, uint64_t done, uint64_t total)
{
    (void)ud;
    static int last = -1;
    int pct = total ? (int)(done * 100 / total) : 100;
    if (pct == last)
        return;
    last = pct;
    int w = pct / 4;
    fprintf(stderr, "\rloading resident weights [%.*s%*s] %3d%% %.2f/%.2f GB", w,
            "##########################", 25 - w, "", pct, (double)done / 1e9, (double)total / 1e9);
    if (done >= total)
        fputc('\n', stderr);
}

int engine_open(engine *e, const cli_common *opt, bool progress, char *err, size_t errlen)
{
    memset(e, 0, sizeof *e);
    e->opt = *opt;
    model_opts mo;
    model_opts_default(&mo);
    mo.expert_groups = opt->expert_groups;
    mo.expert_groups_used = opt->expert_groups_used;
    if (progress && isatty(2))
        mo.progress = bar;
    int rc = model_load(&e->m, opt->model, &mo, err, errlen);
    if (!rc)
        rc = tok_load(&e->v, e->m->gguf, err, errlen);
    if (!rc)
        rc = tpool_create(&e->tp, opt->threads, err, errlen);
    if (!rc && opt->verbose)
        fprintf(stderr, "moestream: kernels %s; %s; resident %.2f GB\n", kern_get()->isa,
                tpool_describe(e->tp), (double)e->m->arena_bytes / 1e9);
    if (rc)
        engine_close(e);
    return rc;
}

void engine_close(engine *e)
{
    tok_free(e->v);
    tpool_destroy(e->tp);
    model_free(e->m);
    memset(e, 0, sizeof *e);
}

int engine_state(engine *e, fwd_state **st, char *err, size_t errlen)
{
    fwd_opts fo;
    fwd_opts_default(&fo);
    fo.n_ctx = e->opt.n_ctx;
    fo.n_batch = e->opt.n_batch;
    fo.cache_type = e->opt.cache_type;
    fo.tp = e->tp;
    return fwd_create(st, e->m, &fo, err, errlen);
}
