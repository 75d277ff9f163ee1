/* engine_cli.c - transitional: engine_open with the command line's options,
 * for the commands not yet on the public API (see engine.h).  Goes with
 * the last of them. */
#include <stdio.h>
#include <unistd.h>

#include "cli.h"
#include "engine.h"

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
            "#########################", 25 - w, "", pct, (double)done / 1e9, (double)total / 1e9);
    if (done >= total)
        fputc('\n', stderr);
}

int engine_open(engine *e, const cli_common *c, bool progress, bool need_tokenizer, char *err,
                size_t errlen)
{
    ms_engine_opts o;
    cli_engine_opts(c, &o);
    o.need_tokenizer = need_tokenizer;
    if (progress && isatty(2))
        o.on_load = bar;
    return engine_load(e, c->model, &o, err, errlen);
}
