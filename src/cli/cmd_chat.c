/* cmd_chat.c - `moestream chat`: an interactive conversation (readline:
 * line editing, history in ~/.moestream_history, a trailing '\' continues
 * the line), replies streamed with R1's reasoning shown dim, then the
 * answer.  Ctrl-C stops the current reply; at the prompt it clears the
 * line, and at an empty prompt it asks for a second Ctrl-C (status 130) or
 * Ctrl-D (status 0) to exit, so one stray key never ends the conversation.
 * /help (/?) lists the commands: /exit /clear /regen /system TEXT /stats
 * /save FILE /load FILE.  /regen samples again with a new seed unless
 * --seed pins one.  While a reply is generated on a terminal, its bottom
 * row shows a live status line (tokens/s, expert cache hit rate, RSS;
 * --no-status turns it off).  With stdin not a terminal: one prompt per
 * line, plain text out.
 * --connect URL chats with a running `moestream serve` instead (no model
 * is loaded here; chat_remote.c): the same commands, the server's context
 * limit handled by dropping the oldest turns as below.  The latent cache is reused for the shared prefix of
 * consecutive turns, so a turn costs only its new tokens.  --ids prints
 * each turn's rendered prompt ids and generated ids to stderr, as run
 * does, so tests can compare a turn with `eval --greedy`.  Through the
 * public API: the session keeps the conversation's cache and ms_generate
 * reuses its common prefix (in whole -b chunks, so a turn's result is the
 * cold run's).
 * A conversation that no longer fits the context loses its oldest whole
 * turns (never the system prompt), with a notice; a turn that fails anyway
 * makes the exit status 1.  /save repairs invalid UTF-8 (JSON needs it) and
 * says how many messages it repaired. */
#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include <readline/history.h>
#include <readline/readline.h>

#include "chat_remote.h"
#include "cli.h"
#include "cmd.h"
#include "moestream.h"
#include "request.h"
#include "strbuf.h"

static volatile sig_atomic_t stop_gen;
static volatile sig_atomic_t generating;
static volatile sig_atomic_t got_int; /* Ctrl-C at the prompt */
static volatile sig_atomic_t interactive; /* readline reads the terminal */

static void on_sigint(int sig)
{
    (void)sig;
    if (generating)
        stop_gen = 1;
    else if (interactive)
        got_int = 1;
    else
        _exit(130); /* prompts from a pipe: no line to clear, leave as before */
}

/* readline's input: a read interrupted by Ctrl-C (the handler is installed
 * without SA_RESTART) ends the line as if Enter was pressed on an empty
 * one, and the loop sees got_int; *had_text says whether text was cleared. */
static bool int_had_text;

static int chat_getc(FILE *f)
{
    for (;;) {
        unsigned char ch;
        ssize_t k = read(fileno(f), &ch, 1);
        if (k == 1)
            return ch;
        if (k == 0 || errno != EINTR)
            return EOF;
        if (got_int) {
            int_had_text = rl_end > 0;
            rl_replace_line("", 0);
            rl_point = rl_end = 0;
            return '\n';
        }
    }
}

static const char chat_help[] =
    "  /help, /?         this list\n"
    "  /exit, /quit      leave (also Ctrl-D, or Ctrl-C twice at an empty prompt)\n"
    "  /clear            forget the conversation (the system prompt stays)\n"
    "  /regen            a new reply to the last message (a new seed unless --seed pins one)\n"
    "  /system TEXT      set the system prompt and start over\n"
    "  /stats            speed, context use, expert cache and memory\n"
    "  /save FILE        write the conversation as JSON\n"
    "  /load FILE        read a conversation written by /save\n"
    "  Ctrl-C            stop a reply; at the prompt, clear the line\n"
    "  a trailing \\        continues the message on the next line\n";

/* ---- the live status line ---- */

/* The terminal's bottom row, reserved with a scroll region while a reply
 * is generated (the way apt draws its progress bar): the reply scrolls
 * above it, and the row is given back afterwards. */
typedef struct status_line {
    bool on;
    int rows;
    const ms_engine *e;
    double t0, last; /* monotonic seconds: generation start, last drawing */
    int n_tok;
    uint64_t hits0, misses0; /* the cache counters before this reply */
} status_line;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t rss_bytes(void)
{
    unsigned long long size, res;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f)
        return 0;
    int k = fscanf(f, "%llu %llu", &size, &res);
    fclose(f);
    return k == 2 ? (uint64_t)res * (uint64_t)sysconf(_SC_PAGESIZE) : 0;
}

static void status_begin(status_line *sl, const ms_engine *e, bool enabled)
{
    struct winsize ws;
    sl->on = enabled && ioctl(2, TIOCGWINSZ, &ws) == 0 && ws.ws_row >= 4;
    if (!sl->on)
        return;
    sl->rows = ws.ws_row;
    sl->e = e;
    sl->t0 = sl->last = now_s();
    sl->n_tok = 0;
    if (e) {
        ms_stats ss;
        ms_engine_stats(e, &ss);
        sl->hits0 = ss.hits;
        sl->misses0 = ss.misses;
    }
    fflush(stdout);
    /* a new line first, so shrinking the region scrolls nothing away; then
     * the region (which homes the cursor), back to where the text was */
    fprintf(stderr, "\n\0337\033[1;%dr\0338\033[1A", sl->rows - 1);
    fflush(stderr);
}

static void status_draw(status_line *sl)
{
    const double dt = now_s() - sl->t0;
    fflush(stdout);
    if (!sl->e) { /* --connect: the cache and memory are the server's */
        fprintf(stderr, "\0337\033[%d;1H\033[7m %d chunks | %.2f chunks/s | remote \033[0m\033[K\0338",
                sl->rows, sl->n_tok, dt > 0 ? sl->n_tok / dt : 0.0);
        fflush(stderr);
        sl->last = now_s();
        return;
    }
    ms_stats ss;
    ms_engine_stats(sl->e, &ss);
    const uint64_t h = ss.hits - sl->hits0, m = ss.misses - sl->misses0;
    char hit[32] = "-";
    if (h + m)
        snprintf(hit, sizeof hit, "%.1f%%", 100.0 * (double)h / (double)(h + m));
    fprintf(stderr, "\0337\033[%d;1H\033[7m %d tokens | %.2f tok/s | expert cache hit %s | RSS %.2f GiB "
                    "\033[0m\033[K\0338",
            sl->rows, sl->n_tok, dt > 0 ? sl->n_tok / dt : 0.0, hit,
            (double)rss_bytes() / (1024.0 * 1024 * 1024));
    fflush(stderr);
    sl->last = now_s();
}

static void status_end(status_line *sl)
{
    if (!sl->on)
        return;
    fflush(stdout);
    fprintf(stderr, "\0337\033[1;%dr\033[%d;1H\033[K\0338", sl->rows, sl->rows);
    fflush(stderr);
    sl->on = false;
}

typedef struct conv {
    ms_chat_msg *m;
    char **owned; /* content strings */
    size_t n, cap;
} conv;

/* 0, or -ENOMEM with the conversation unchanged. */
static int conv_add(conv *c, const char *role, const char *text)
{
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 16;
        ms_chat_msg *m = realloc(c->m, cap * sizeof *m);
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
    c->m[c->n] = (ms_chat_msg){role, c->owned[c->n]};
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
    bool print_ids;
    status_line *sl;
} reply;

static int on_cancel(void *ud)
{
    (void)ud;
    return stop_gen;
}

static void on_token(void *ud, int32_t id)
{
    reply *r = ud;
    if (r->print_ids)
        fprintf(stderr, "[%d]", id);
    if (r->sl->on) {
        r->sl->n_tok++;
        if (now_s() - r->sl->last >= 0.25)
            status_draw(r->sl);
    }
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

/* Writes every message to path as a JSON array.  JSON text must be valid
 * UTF-8, and a reply cut by Ctrl-C or -n (or a model's stray byte tokens)
 * may not be: such a message is saved with each invalid sequence replaced
 * by U+FFFD, and *repaired counts them.  0 or -1 (out of memory or a
 * write error; errno says which). */
static int save_conv(const conv *c, const char *path, size_t *repaired)
{
    *repaired = 0;
    json_t *a = json_array();
    int rc = a ? 0 : -1;
    for (size_t i = 0; i < c->n && !rc; i++) {
        const size_t len = strlen(c->m[i].content);
        char *fixed = ms_utf8_sanitize(c->m[i].content, len);
        if (!fixed) {
            errno = ENOMEM;
            rc = -1;
            break;
        }
        *repaired += strlen(fixed) != len || memcmp(fixed, c->m[i].content, len) != 0;
        json_t *m = json_pack("{s:s,s:s}", "role", c->m[i].role, "content", fixed);
        free(fixed);
        if (!m || json_array_append_new(a, m)) {
            errno = ENOMEM;
            rc = -1;
        }
    }
    if (!rc)
        rc = json_dump_file(a, path, JSON_INDENT(1));
    json_decref(a);
    return rc;
}

/* Drops the oldest whole turn (a user message and the replies after it, up
 * to the next user message), never a system message and never the last
 * user message.  false when there is none to drop. */
static bool conv_drop_oldest_turn(conv *c)
{
    size_t i = 0, last_user = c->n;
    for (size_t k = 0; k < c->n; k++)
        if (!strcmp(c->m[k].role, "user"))
            last_user = k;
    while (i < c->n && !strcmp(c->m[i].role, "system"))
        i++;
    if (i >= last_user)
        return false;
    size_t j = i + 1; /* the turn: i up to the next user message */
    while (j < last_user && strcmp(c->m[j].role, "user"))
        j++;
    for (size_t k = i; k < j; k++)
        free(c->owned[k]);
    memmove(c->m + i, c->m + j, (c->n - j) * sizeof *c->m);
    memmove(c->owned + i, c->owned + j, (c->n - j) * sizeof *c->owned);
    c->n -= j - i;
    return true;
}

/* The prompt ids of the conversation, dropping its oldest turns (with a
 * notice) until the prompt leaves room for a reply of `room` tokens in
 * n_ctx; a prompt that fits without that room still runs.  -E2BIG when even
 * the system prompt and the last message cannot fit. */
static int render_fitting(const ms_vocab *v, conv *c, bool think, size_t n_ctx, size_t room,
                          int32_t **ids, size_t *n, char *err, size_t errlen)
{
    /* the system prompt and the last message alone: if their text cannot
     * fit, dropping history would not help, so keep it */
    ms_chat_msg alone[REQUEST_MAX_MESSAGES];
    size_t na = 0;
    for (size_t k = 0; k < c->n && na + 1 < REQUEST_MAX_MESSAGES; k++)
        if (!strcmp(c->m[k].role, "system"))
            alone[na++] = c->m[k];
    if (c->n)
        alone[na++] = c->m[c->n - 1];
    int rc = ms_chat_check_fits(v, alone, na, n_ctx, err, errlen);
    if (!rc)
        rc = ms_chat_render(v, alone, na, think, ids, n, err, errlen);
    if (!rc) {
        free(*ids);
        *ids = NULL;
        if (*n >= n_ctx) {
            snprintf(err, errlen, "this message does not fit the context of %zu tokens (%zu tokens "
                                  "with the system prompt); raise -c/--ctx-size or shorten it",
                     n_ctx, *n);
            rc = -E2BIG;
        }
    }
    if (rc)
        return rc;
    size_t dropped = 0;
    for (;;) {
        /* a cheap refusal first: text that cannot fit is not tokenized */
        rc = ms_chat_check_fits(v, c->m, c->n, n_ctx, err, errlen);
        if (!rc)
            rc = ms_chat_render(v, c->m, c->n, think, ids, n, err, errlen);
        if (rc && rc != -E2BIG)
            return rc;
        const bool fits = !rc && *n < n_ctx;
        if (fits && *n + room < n_ctx)
            break;
        const size_t before = c->n;
        if (!conv_drop_oldest_turn(c)) {
            if (fits)
                break; /* short of room for the reply, but nothing left to drop */
            if (!rc) { /* not reached: the message alone fit above */
                snprintf(err, errlen, "the conversation does not fit the context of %zu tokens", n_ctx);
                free(*ids);
                *ids = NULL;
                rc = -E2BIG;
            }
            break;
        }
        dropped += before - c->n;
        if (!rc) {
            free(*ids);
            *ids = NULL;
        }
    }
    if (dropped)
        fprintf(stderr, "(context full: dropped the %zu oldest message%s; the system prompt stays)\n",
                dropped, dropped == 1 ? "" : "s");
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
    ms_gen_opts go;
    ms_gen_opts_default(&go);
    const char *system = NULL, *connect = NULL, *api_key = NULL;
    bool print_ids = false, status_opt = true;
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
        } else if (!strcmp(argv[i], "--no-status")) {
            status_opt = false;
        } else if (!strcmp(argv[i], "--connect") && i + 1 < argc) {
            connect = argv[++i];
        } else if (!strcmp(argv[i], "--api-key") && i + 1 < argc) {
            api_key = argv[++i];
        } else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            printf("usage: moestream chat -m MODEL [--system TEXT] [-n N] [--ids] [options]\n"
                   "       moestream chat --connect URL [--api-key KEY] [--system TEXT] [-n N] [sampler "
                   "options]\n"
                   "      --connect URL       chat with a running `moestream serve` at URL (e.g.\n"
                   "                          http://127.0.0.1:8080) instead of loading a model here\n"
                   "      --api-key KEY       the server's key for --connect (also MOESTREAM_API_KEY)\n"
                   "      --system TEXT       system prompt; also -sys, --system-prompt\n"
                   "  -n, --n-predict N       max new tokens per reply (default or -1: until end)\n"
                   "      --ids               print each turn's prompt ids and generated ids to stderr\n"
                   "      --no-status         no live status line (tokens/s, cache hit rate, RSS) on a "
                   "terminal\n"
                   "  At the prompt: /help lists the commands; Ctrl-C clears the line, and twice at an\n"
                   "  empty prompt (or Ctrl-D) exits; /regen samples again with a new seed unless\n"
                   "  --seed pins one.\n"
                   "  When the conversation fills the context (-c), its oldest turns are dropped\n"
                   "  (the system prompt stays); with stdin not a terminal the exit status is 1\n"
                   "  if a turn failed.\n%s%s",
                   cli_common_help(), cli_sampler_help());
            return 0;
        } else {
            fprintf(stderr, "moestream chat: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (!c.model && !connect) {
        fprintf(stderr, "usage: moestream chat -m MODEL [--system TEXT] [options]  (or --connect URL)\n");
        return 2;
    }
    if (connect && print_ids) {
        fprintf(stderr, "moestream chat: --ids needs the model here (the server sends text, not ids)\n");
        return 2;
    }
    if (api_key && !connect) {
        fprintf(stderr, "moestream chat: --api-key is for --connect\n");
        return 2;
    }
    const bool tty = isatty(0) && isatty(1);
    char err[512] = "";
    ms_engine *e = NULL;
    ms_session *st = NULL;
    chat_remote *remote = NULL;
    int rc;
    if (connect) {
        if (c.model)
            fprintf(stderr, "moestream chat: --connect: ignoring -m %s (the server's model answers)\n", c.model);
        const char *model = NULL;
        if (!api_key)
            api_key = getenv("MOESTREAM_API_KEY");
        if ((rc = chat_remote_open(&remote, connect, api_key, &model, err, sizeof err))) {
            fprintf(stderr, "moestream chat: %s\n", err);
            return 1;
        }
        if (tty)
            fprintf(stderr, "connected to %s (model %s)\n", connect, model);
    } else {
        if (tty)
            fprintf(stderr, "loading %s ...\n", c.model);
        ms_engine_opts eo;
        cli_engine_opts(&c, &eo);
        if (tty && isatty(2))
            eo.on_load = cli_load_bar;
        rc = ms_engine_open(&e, c.model, &eo, err, sizeof err);
        if (!rc)
            rc = ms_session_create(e, &st, err, sizeof err);
        if (rc) {
            fprintf(stderr, "moestream chat: %s\n", err);
            ms_engine_close(e);
            return 1;
        }
    }
    if (tty && e) {
        ms_mem_plan plan;
        ms_engine_plan(e, &plan);
        ms_plan_print(&plan, stderr);
    }
    if (tty) {
        fprintf(stderr, "type a message; /help lists the commands; Ctrl-C stops a reply, Ctrl-D exits\n");
    }
    struct sigaction sa = {0};
    sa.sa_handler = on_sigint; /* no SA_RESTART: Ctrl-C interrupts readline's read */
    sigaction(SIGINT, &sa, NULL);
    if (tty) {
        interactive = 1;
        rl_catch_signals = 0; /* ours: readline's handler would re-raise it */
        rl_getc_function = chat_getc;
    }
    status_line sl = {0};
    const bool status_on = status_opt && tty && isatty(2);
    bool int_armed = false; /* Ctrl-C at an empty prompt once: the next one exits */
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
    double tok_s = 0;
    int status = 0;
    strbuf acc = STRBUF_INIT; /* a line continued with '\\' */
    for (;;) {
        char *line = NULL;
        if (tty) {
            got_int = 0;
            line = readline(acc.s ? "... " : "> ");
            if (line && got_int) {
                got_int = 0;
                free(line);
                if (int_had_text || acc.s) { /* clear the line (and a continued one) */
                    strbuf_free(&acc);
                    int_armed = false;
                    continue;
                }
                if (int_armed) {
                    status = 130;
                    break;
                }
                int_armed = true;
                fprintf(stderr, "(Ctrl-C again or Ctrl-D to exit; /help lists the commands)\n");
                continue;
            }
            int_armed = false;
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
            } else if (!strcmp(line, "/help") || !strcmp(line, "/?")) {
                fputs(chat_help, stderr);
            } else if (!strcmp(line, "/clear")) {
                conv_clear(&cv, true);
                fprintf(stderr, "(conversation cleared)\n");
            } else if (!strncmp(line, "/system ", 8)) {
                conv_clear(&cv, false);
                if (conv_add(&cv, "system", line + 8))
                    fprintf(stderr, "error: out of memory\n");
                else
                    fprintf(stderr, "(system prompt set; conversation cleared)\n");
            } else if (!strcmp(line, "/stats") && remote) {
                fprintf(stderr, "last reply %.2f tok/s (as received); the server's /metrics has its "
                                "cache and memory\n", tok_s);
            } else if (!strcmp(line, "/stats")) {
                fprintf(stderr, "last reply %.2f tok/s; context %d/%d tokens\n", tok_s,
                        ms_session_n_past(st), ms_session_n_ctx(st));
                ms_stats ss;
                ms_engine_stats(e, &ss);
                ms_stats_print(&ss, stderr);
            } else if (!strncmp(line, "/save ", 6)) {
                size_t fixed = 0;
                if (save_conv(&cv, line + 6, &fixed))
                    fprintf(stderr, "cannot write %s: %s\n", line + 6, strerror(errno));
                else if (fixed)
                    fprintf(stderr, "(saved %zu messages to %s; %zu had invalid UTF-8, saved with "
                                    "U+FFFD in its place)\n", cv.n, line + 6, fixed);
                else
                    fprintf(stderr, "(saved %zu messages to %s)\n", cv.n, line + 6);
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
                fprintf(stderr, "unknown command %s (/help lists them)\n", line);
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
        int32_t *ids = NULL;
        size_t n = 0;
        if (!remote) {
            const size_t n_ctx = (size_t)ms_session_n_ctx(st);
            /* room for a reply: -n tokens, at most half the context */
            const size_t room = go.n_predict > 0 && (size_t)go.n_predict < n_ctx / 2 ? (size_t)go.n_predict : n_ctx / 2;
            if (render_fitting(ms_engine_vocab(e), &cv, go.reasoning, n_ctx, room, &ids, &n, err, sizeof err)) {
                fprintf(stderr, "error: %s\n", err);
                if (cv.n && !strcmp(cv.m[cv.n - 1].role, "user"))
                    conv_pop(&cv);
                status = 1; /* a turn failed: the exit status says so */
                continue;
            }
        }
        reply r = {STRBUF_INIT, tty, false, false, print_ids, &sl};
        ms_gen_result res;
        stop_gen = 0;
        if (print_ids) { /* the whole rendered prompt, whatever the cache reuses */
            fprintf(stderr, "prompt ids:");
            for (size_t j = 0; j < n; j++)
                fprintf(stderr, " %d", ids[j]);
            fprintf(stderr, "\ngenerated ids:");
        }
        generating = 1;
        status_begin(&sl, e, status_on);
        ms_callbacks cb = {on_text, print_ids || sl.on ? on_token : NULL, NULL, on_cancel, &r};
        if (remote) {
            size_t dropped = 0;
            /* the server knows its context: over it, the oldest turns go */
            while ((rc = chat_remote_generate(remote, cv.m, cv.n, &go, &cb, &res, err, sizeof err)) == -E2BIG) {
                const size_t before = cv.n;
                if (!conv_drop_oldest_turn(&cv))
                    break;
                dropped += before - cv.n;
            }
            if (dropped)
                fprintf(stderr, "(context full: dropped the %zu oldest message%s; the system prompt stays)\n",
                        dropped, dropped == 1 ? "" : "s");
        } else {
            rc = ms_generate(st, ids, n, &go, &cb, &res, err, sizeof err);
        }
        status_end(&sl);
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
            if (st)
                ms_session_truncate(st, 0);
            status = 1;
        } else {
            if (conv_add(&cv, "assistant", strbuf_str(&r.text))) {
                fprintf(stderr, "error: out of memory; the reply is not kept\n");
                conv_pop(&cv);
                if (st)
                    ms_session_truncate(st, 0);
                ms_free(ids);
                strbuf_free(&r.text);
                continue;
            }
            /* the session holds the prompt and the reply's tokens; the
             * next turn's prompt shares what it can of them */
            tok_s = res.t_gen_s > 0 ? res.n_gen / res.t_gen_s : 0;
            if (tty)
                fprintf(stderr, "[%d tokens, %.2f tok/s, seed %llu%s]\n", res.n_gen, tok_s,
                        (unsigned long long)res.seed, !strcmp(res.finish, "cancelled") ? ", stopped" : "");
        }
        ms_free(ids);
        strbuf_free(&r.text);
    }
    if (hist[0])
        write_history(hist);
    conv_clear(&cv, false);
    free(cv.m);
    free(cv.owned);
    strbuf_free(&acc);
    ms_session_destroy(st);
    ms_engine_close(e);
    chat_remote_close(remote);
    return status;
}
