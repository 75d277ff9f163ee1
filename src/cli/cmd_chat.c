/* cmd_chat.c - `moestream chat`: an interactive conversation (readline:
 * line editing, history in ~/.moestream_history, a trailing '\' continues
 * the line), replies streamed with R1's reasoning shown dim, then the
 * answer.  Ctrl-C stops the current reply; Ctrl-C at the prompt or Ctrl-D
 * exits (status 130 / 0).  /exit /clear /regen /system TEXT /stats
 * /save FILE /load FILE.  With stdin not a terminal: one prompt per line,
 * plain text out.  The latent cache is reused for the shared prefix of
 * consecutive turns, so a turn costs only its new tokens.  --ids prints
 * each turn's rendered prompt ids and generated ids to stderr, as run
 * does, so tests can compare a turn with `eval --greedy`. */
#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <readline/history.h>
#include <readline/readline.h>

#include "chat.h"
#include "cli.h"
#include "cmd.h"
#include "engine.h"
#include "generate.h"
#include "strbuf.h"

static volatile sig_atomic_t stop_gen;
static volatile sig_atomic_t generating;

static void on_sigint(int sig)
{
    (void)sig;
    if (generating) {
        stop_gen = 1;
        return;
    }
    /* at the prompt: leave with the conventional status */
    rl_cleanup_after_signal();
    _exit(130);
}

typedef struct conv {
    chat_msg *m;
    char **owned; /* content strings */
    size_t n, cap;
} conv;

/* 0, or -ENOMEM with the conversation unchanged. */
static int conv_add(conv *c, const char *role, const char *text)
{
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 16;
        chat_msg *m = realloc(c->m, cap * sizeof *m);
        if (m)
            c->m = m;
        char **o = m ? realloc(c->owned, cap * sizeof *o) : NULL;
        if (!o)
            return -ENOMEM;
        c->owned = o;
        c->cap = cap;
    }
    if (!(c->owned[c->n] = strdup(text)))
        return -ENOMEM;
    c->m[c->n] = (chat_msg){role, c->owned[c->n]};
    c->n++;
    return 0;
}

static void conv_pop(conv *c)
{
    if (c->n) {
        c->n--;
        free(c->owned[c->n]);
    }
}

static void conv_clear(conv *c, bool keep_system)
{
    size_t k = 0;
    for (size_t i = 0; i < c->n; i++) {
        if (keep_system && !strcmp(c->m[i].role, "system")) {
            c->m[k] = c->m[i];
            c->owned[k++] = c->owned[i];
        } else {
            free(c->owned[i]);
        }
    }
    c->n = k;
}

typedef struct reply {
    strbuf text;
    bool tty, dim;
    bool think; /* stored text is inside <think> */
} reply;

static void on_token(void *ud, int32_t id)
{
    (void)ud;
    fprintf(stderr, "[%d]", id);
}

static int on_text(void *ud, const char *t, size_t n, bool reasoning)
{
    reply *r = ud;
    if (r->tty && reasoning != r->dim) {
        fputs(reasoning ? "\033[2m" : "\033[0m\n", stdout);
        r->dim = reasoning;
    }
    fwrite(t, 1, n, stdout);
    fflush(stdout);
    /* the stored answer keeps its reasoning delimited, so the template can
     * drop it from later turns */
    int rc = 0;
    if (reasoning && !r->think) {
        rc = strbuf_append(&r->text, "<think>\n", 8);
        r->think = true;
    } else if (!reasoning && r->think) {
        rc = strbuf_append(&r->text, "</think>", 8);
        r->think = false;
    }
    return rc ? rc : strbuf_append(&r->text, t, n);
}

static int save_conv(const conv *c, const char *path)
{
    json_t *a = json_array();
    for (size_t i = 0; i < c->n; i++)
        json_array_append_new(a, json_pack("{s:s,s:s}", "role", c->m[i].role, "content", c->m[i].content));
    int rc = json_dump_file(a, path, JSON_INDENT(1));
    json_decref(a);
    return rc;
}

static int load_conv(conv *c, const char *path, char *err, size_t errlen)
{
    json_error_t je;
    json_t *a = json_load_file(path, 0, &je);
    if (!a || !json_is_array(a)) {
        snprintf(err, errlen, "%s: %s", path, a ? "not a JSON array of messages" : je.text);
        json_decref(a);
        return -EINVAL;
    }
    conv_clear(c, false);
    size_t i;
    json_t *v;
    json_array_foreach(a, i, v)
    {
        const char *role = json_string_value(json_object_get(v, "role"));
        const char *content = json_string_value(json_object_get(v, "content"));
        if (!role || !content || (strcmp(role, "system") && strcmp(role, "user") && strcmp(role, "assistant"))) {
            snprintf(err, errlen, "%s: message %zu needs role system|user|assistant and content", path, i);
            json_decref(a);
            return -EINVAL;
        }
        if (conv_add(c, !strcmp(role, "system") ? "system" : !strcmp(role, "user") ? "user" : "assistant", content)) {
            snprintf(err, errlen, "%s: out of memory at message %zu", path, i);
            json_decref(a);
            return -ENOMEM;
        }
    }
    json_decref(a);
    return 0;
}

int cmd_chat(int argc, char **argv)
{
    cli_common c;
    cli_common_default(&c);
    gen_opts go;
    gen_opts_default(&go);
    const char *system = NULL;
    bool print_ids = false;
    for (int i = 1; i < argc; i++) {
        int r = cli_common_arg(&c, argc, argv, &i);
        if (!r)
            r = cli_sampler_arg(&go.sp, argc, argv, &i);
        if (r < 0)
            return 2;
        if (r > 0)
            continue;
        if (!strcmp(argv[i], "--system") && i + 1 < argc) {
            system = argv[++i];
        } else if (!strcmp(argv[i], "-n") && i + 1 < argc) {
            long v;
            if (cli_parse_int(argv[++i], -1, 1 << 24, &v))
                return 2;
            go.n_predict = (int)v;
        } else if (!strcmp(argv[i], "--ids")) {
            print_ids = true;
        } else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            printf("usage: moestream chat -m MODEL [--system TEXT] [-n N] [--ids] [options]\n"
                   "      --system TEXT       system prompt; also -sys, --system-prompt\n"
                   "  -n, --n-predict N       max new tokens per reply (default or -1: until end)\n"
                   "      --ids               print each turn's prompt ids and generated ids to stderr\n%s%s",
                   cli_common_help(), cli_sampler_help());
            return 0;
        } else {
            fprintf(stderr, "moestream chat: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (!c.model) {
        fprintf(stderr, "usage: moestream chat -m MODEL [--system TEXT] [options]\n");
        return 2;
    }
    const bool tty = isatty(0) && isatty(1);
    char err[512] = "";
    engine e;
    fwd_state *st = NULL;
    if (tty)
        fprintf(stderr, "loading %s ...\n", c.model);
    int rc = engine_open(&e, &c, tty, true, err, sizeof err);
    if (!rc)
        rc = engine_state(&e, &st, err, sizeof err);
    if (rc) {
        fprintf(stderr, "moestream chat: %s\n", err);
        engine_close(&e);
        return 1;
    }
    if (tty) {
        engine_print_plan(&e.plan, stderr);
        fprintf(stderr, "type a message; /exit /clear /regen /system TEXT /stats /save F /load F; "
                        "Ctrl-C stops a reply\n");
    }
    struct sigaction sa = {0};
    sa.sa_handler = on_sigint;
    sigaction(SIGINT, &sa, NULL);
    char hist[4096] = "";
    if (tty && getenv("HOME")) {
        snprintf(hist, sizeof hist, "%s/.moestream_history", getenv("HOME"));
        read_history(hist);
    }
    conv cv = {0};
    if (system && conv_add(&cv, "system", system)) {
        fprintf(stderr, "moestream chat: out of memory\n");
        return 1;
    }
    int32_t *in_cache = NULL; /* ids the state holds */
    size_t n_cache = 0;
    double tok_s = 0;
    int status = 0;
    strbuf acc = STRBUF_INIT; /* a line continued with '\\' */
    for (;;) {
        char *line = NULL;
        if (tty) {
            line = readline(acc.s ? "... " : "> ");
        } else {
            size_t cap = 0;
            if (getline(&line, &cap, stdin) < 0) {
                free(line);
                line = NULL;
            } else {
                line[strcspn(line, "\n")] = 0;
            }
        }
        if (!line)
            break; /* Ctrl-D / end of input */
        size_t ll = strlen(line);
        if (tty && ll && line[ll - 1] == '\\') { /* continued line */
            line[ll - 1] = '\n';
            if (strbuf_append(&acc, line, ll))
                fprintf(stderr, "error: out of memory; the continued line is lost\n");
            free(line);
            continue;
        }
        if (acc.s) {
            int arc = strbuf_append(&acc, line, ll);
            free(line);
            line = strbuf_detach(&acc);
            if (arc) {
                fprintf(stderr, "error: out of memory; the line is lost\n");
                free(line);
                continue;
            }
        }
        if (!line[0]) {
            free(line);
            continue;
        }
        if (tty)
            add_history(line);
        bool regen = false;
        if (line[0] == '/') {
            if (!strcmp(line, "/exit") || !strcmp(line, "/quit")) {
                free(line);
                break;
            } else if (!strcmp(line, "/clear")) {
                conv_clear(&cv, true);
                fprintf(stderr, "(conversation cleared)\n");
            } else if (!strncmp(line, "/system ", 8)) {
                conv_clear(&cv, false);
                if (conv_add(&cv, "system", line + 8))
                    fprintf(stderr, "error: out of memory\n");
                else
                    fprintf(stderr, "(system prompt set; conversation cleared)\n");
            } else if (!strcmp(line, "/stats")) {
                fprintf(stderr, "last reply %.2f tok/s; context %d/%d tokens\n", tok_s,
                        fwd_n_past(st), fwd_n_ctx(st));
                engine_print_stats(&e, stderr);
            } else if (!strncmp(line, "/save ", 6)) {
                if (save_conv(&cv, line + 6))
                    fprintf(stderr, "cannot write %s\n", line + 6);
            } else if (!strncmp(line, "/load ", 6)) {
                if (load_conv(&cv, line + 6, err, sizeof err))
                    fprintf(stderr, "%s\n", err);
                else
                    fprintf(stderr, "(loaded %zu messages)\n", cv.n);
            } else if (!strcmp(line, "/regen")) {
                if (cv.n && !strcmp(cv.m[cv.n - 1].role, "assistant")) {
                    conv_pop(&cv);
                    regen = true;
                } else {
                    fprintf(stderr, "(nothing to regenerate)\n");
                }
            } else {
                fprintf(stderr, "unknown command %s\n", line);
            }
            free(line);
            if (!regen)
                continue;
        } else {
            int arc = conv_add(&cv, "user", line);
            free(line);
            if (arc) {
                fprintf(stderr, "error: out of memory\n");
                continue;
            }
        }
        int32_t *ids;
        size_t n;
        if (chat_render_ids(e.v, cv.m, cv.n, go.reasoning, &ids, &n, err, sizeof err)) {
            fprintf(stderr, "%s\n", err);
            conv_pop(&cv);
            continue;
        }
        /* reuse the cached prefix */
        size_t k = 0;
        while (k < n_cache && k + 1 < n && in_cache[k] == ids[k])
            k++;
        fwd_truncate(st, (int)k);
        reply r = {STRBUF_INIT, tty, false, false};
        gen_result res;
        stop_gen = 0;
        if (print_ids) { /* the whole rendered prompt, whatever the cache reuses */
            fprintf(stderr, "prompt ids:");
            for (size_t j = 0; j < n; j++)
                fprintf(stderr, " %d", ids[j]);
            fprintf(stderr, "\ngenerated ids:");
        }
        generating = 1;
        rc = gen_run(e.m, e.v, st, ids + k, n - k, &go, on_text, print_ids ? on_token : NULL, &r,
                     &stop_gen, &res, err, sizeof err);
        generating = 0;
        if (print_ids)
            fputc('\n', stderr);
        if (r.dim)
            fputs("\033[0m", stdout);
        fputc('\n', stdout);
        fflush(stdout);
        if (rc) {
            fprintf(stderr, "error: %s\n", err);
            conv_pop(&cv);
            fwd_truncate(st, 0);
            n_cache = 0;
        } else {
            if (conv_add(&cv, "assistant", strbuf_str(&r.text))) {
                fprintf(stderr, "error: out of memory; the reply is not kept\n");
                conv_pop(&cv);
                fwd_truncate(st, 0);
                n_cache = 0;
                free(ids);
                strbuf_free(&r.text);
                continue;
            }
            /* the state now holds the prompt and the reply's tokens; we
             * only remember the prompt part for prefix reuse */
            free(in_cache);
            in_cache = ids;
            ids = NULL;
            n_cache = n;
            fwd_truncate(st, (int)n);
            tok_s = res.t_gen_s > 0 ? res.n_gen / res.t_gen_s : 0;
            if (tty)
                fprintf(stderr, "[%d tokens, %.2f tok/s%s]\n", res.n_gen, tok_s,
                        !strcmp(res.finish, "cancelled") ? ", stopped" : "");
        }
        free(ids);
        strbuf_free(&r.text);
    }
    if (hist[0])
        write_history(hist);
    free(in_cache);
    conv_clear(&cv, false);
    free(cv.m);
    free(cv.owned);
    strbuf_free(&acc);
    fwd_destroy(st);
    engine_close(&e);
    return status;
}
