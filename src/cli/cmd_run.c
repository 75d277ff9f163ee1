/* cmd_run.c - `moestream run`: one prompt through the R1 chat template,
 * the reply streamed to stdout as it is generated.  On a terminal the
 * reasoning (up to </think>) is shown dim; on a pipe everything is plain
 * text.  Prompt and generation speed go to stderr.  Ctrl-C stops.
 * Through the public API. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "cmd.h"
#include "moestream.h"

static volatile sig_atomic_t interrupted;
static void on_sigint(int sig)
{
    (void)sig;
    interrupted = 1;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: moestream run -m MODEL (-p TEXT | -f FILE) [-n N] [--system TEXT]\n"
            "                     [--stop S]... [--no-think] [--ids] [sampler and model options]\n"
            "Applies the DeepSeek-R1 chat template and streams the reply.\n\n"
            "  -p, --prompt TEXT       the user message\n"
            "  -f, --file FILE         the user message from a file\n"
            "  -n, --n-predict N       max new tokens (default or -1: until end of text or context)\n"
            "      --system TEXT       system prompt; also -sys, --system-prompt\n"
            "      --stop S            stop at S (not printed; up to 16); also -r, --reverse-prompt\n"
            "      --no-think          do not open the reply with <think>\n"
            "      --ids               also print the generated token ids to stderr\n"
            "  -cnv, --conversation    interactive: the same as `moestream chat` (-p is then\n"
            "                          the system prompt, as in llama-cli)\n%s%s",
            cli_common_help(), cli_sampler_help());
}

struct out_ctx {
    bool tty;
    bool in_reasoning;
    bool print_ids;
};

static int on_text(void *ud, const char *t, size_t n, bool reasoning)
{
    struct out_ctx *o = ud;
    if (o->tty && reasoning != o->in_reasoning) {
        fputs(reasoning ? "\033[2m" : "\033[0m\n", stdout);
        o->in_reasoning = reasoning;
    }
    fwrite(t, 1, n, stdout);
    fflush(stdout);
    return 0;
}

static void on_token(void *ud, int32_t id)
{
    struct out_ctx *o = ud;
    if (o->print_ids)
        fprintf(stderr, "[%d]", id);
}

static int on_cancel(void *ud)
{
    (void)ud;
    return interrupted;
}

int cmd_run(int argc, char **argv)
{
    cli_common c;
    cli_common_default(&c);
    ms_gen_opts go;
    ms_gen_opts_default(&go);
    const char *prompt = NULL, *file = NULL, *system = NULL;
    const char *stops[16];
    int n_stops = 0;
    bool think = true, ids = false;
    for (int i = 1; i < argc; i++) {
        int r = cli_common_arg(&c, argc, argv, &i);
        if (!r)
            r = cli_sampler_arg(&go.sp, argc, argv, &i);
        if (r < 0)
            return 2;
        if (r > 0)
            continue;
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--no-think")) {
            think = false;
        } else if (!strcmp(a, "--ids")) {
            ids = true;
        } else if (i + 1 < argc && (!strcmp(a, "-p") || !strcmp(a, "--prompt"))) {
            prompt = argv[++i];
        } else if (i + 1 < argc && (!strcmp(a, "-f") || !strcmp(a, "--file"))) {
            file = argv[++i];
        } else if (i + 1 < argc && !strcmp(a, "--system")) {
            system = argv[++i];
        } else if (i + 1 < argc && !strcmp(a, "--stop")) {
            if (n_stops == 16) {
                fprintf(stderr, "moestream run: at most 16 --stop strings\n");
                return 2;
            }
            stops[n_stops++] = argv[++i];
        } else if (i + 1 < argc && (!strcmp(a, "-n") || !strcmp(a, "--n-predict"))) {
            long v;
            if (cli_parse_int(argv[++i], -1, 1 << 24, &v)) {
                fprintf(stderr, "moestream run: bad value for -n\n");
                return 2;
            }
            go.n_predict = (int)v;
        } else {
            fprintf(stderr, "moestream run: unknown option %s\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (!c.model || !prompt == !file) {
        fprintf(stderr, "moestream run: need -m MODEL and one of -p TEXT / -f FILE\n");
        usage(stderr);
        return 2;
    }
    char *owned = NULL;
    if (file) {
        owned = cli_read_file(file);
        if (!owned) {
            fprintf(stderr, "moestream run: cannot read %s: %s\n", file, strerror(errno));
            return 1;
        }
        prompt = owned;
    }
    go.stop = stops;
    go.n_stop = n_stops;
    go.reasoning = think;
    char err[512] = "";
    ms_engine *e = NULL;
    ms_session *st = NULL;
    int32_t *pids = NULL;
    size_t np = 0;
    int status = 1;
    ms_engine_opts eo;
    cli_engine_opts(&c, &eo);
    if (isatty(2))
        eo.on_load = cli_load_bar;
    int rc = ms_engine_open(&e, c.model, &eo, err, sizeof err);
    if (!rc)
        rc = ms_session_create(e, &st, err, sizeof err);
    ms_chat_msg msgs[2];
    size_t nm = 0;
    if (system)
        msgs[nm++] = (ms_chat_msg){"system", system};
    msgs[nm++] = (ms_chat_msg){"user", prompt};
    if (!rc) /* a prompt that cannot fit is refused before it is tokenized */
        rc = ms_chat_check_fits(ms_engine_vocab(e), msgs, nm, (size_t)ms_session_n_ctx(st), err, sizeof err);
    if (!rc)
        rc = ms_chat_render(ms_engine_vocab(e), msgs, nm, think, &pids, &np, err, sizeof err);
    if (rc)
        goto done;
    struct sigaction sa = {0};
    sa.sa_handler = on_sigint;
    sigaction(SIGINT, &sa, NULL);
    struct out_ctx oc = {isatty(1) != 0, false, ids};
    ms_gen_result res;
    if (ids) {
        fprintf(stderr, "prompt ids:");
        for (size_t k = 0; k < np; k++)
            fprintf(stderr, " %d", pids[k]);
        fprintf(stderr, "\ngenerated ids:");
    }
    ms_callbacks cb = {on_text, on_token, NULL, on_cancel, &oc};
    rc = ms_generate(st, pids, np, &go, &cb, &res, err, sizeof err);
    if (oc.tty && oc.in_reasoning)
        fputs("\033[0m", stdout);
    fputc('\n', stdout);
    fflush(stdout);
    if (ids)
        fputc('\n', stderr);
    if (rc)
        goto done;
    fprintf(stderr, "seed %llu | prompt %d tokens, %.2f tok/s | generated %d tokens, %.2f tok/s | %s\n",
            (unsigned long long)res.seed, res.n_prompt,
            res.t_prompt_s > 0 ? res.n_prompt / res.t_prompt_s : 0.0, res.n_gen,
            res.t_gen_s > 0 ? res.n_gen / res.t_gen_s : 0.0, res.finish);
    if (c.verbose) { /* the cache statistics -v promises */
        ms_stats ss;
        ms_engine_stats(e, &ss);
        ms_stats_print(&ss, stderr);
    }
    status = interrupted ? 130 : 0;
done:
    if (rc)
        fprintf(stderr, "moestream run: %s\n", err[0] ? err : strerror(-rc));
    ms_free(pids);
    free(owned);
    ms_session_destroy(st);
    ms_engine_close(e);
    return status;
}
