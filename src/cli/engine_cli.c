/* engine_cli.c - transitional: engine_open with the command line's options,
 * for the commands not yet on the public API (see engine.h).  Goes with
 * the last of them. */
#include <stdio.h>
#include <unistd.h>

#include "cli.h"
#include "engine.h"

int engine_open(engine *e, const cli_common *c, bool progress, bool need_tokenizer, char *err,
                size_t errlen)
{
    ms_engine_opts o;
    cli_engine_opts(c, &o);
    o.need_tokenizer = need_tokenizer;
    if (progress && isatty(2))
        o.on_load = cli_load_bar;
    return engine_load(e, c->model, &o, err, errlen);
}
