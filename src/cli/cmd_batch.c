/* cmd_batch.c - `moestream batch`: headless generation over a JSONL file in
 * the OpenAI batch format (custom_id, body with messages and sampler
 * fields; plain text lines are accepted as one user message), one output
 * line per request in the OpenAI batch output format.  Each line is written
 * whole, flushed and fsynced, so a crash never leaves a broken record;
 * --resume drops a half-written last line and skips custom_ids already in
 * OUT.  A bad input line becomes an error record (lines are parsed by
 * request.c, the same validation as the server's).  Requests run one after
 * another (the expert cache carries over between them). */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "chat.h"
#include "cli.h"
#include "cmd.h"
#include "engine.h"
#include "generate.h"
#include "request.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

typedef struct text {
    char *s;
    size_t n, cap;
} text;

static void text_put(text *t, const char *s, size_t n)
{
    if (t->n + n + 1 > t->cap) {
        t->cap = (t->n + n + 1) * 2;
        t->s = realloc(t->s, t->cap);
    }
    memcpy(t->s + t->n, s, n);
    t->n += n;
    t->s[t->n] = 0;
}

typedef struct outbuf {
    text answer, reasoning;
} outbuf;

static int collect(void *ud, const char *t, size_t n, bool reasoning)
{
    outbuf *o = ud;
    text_put(reasoning ? &o->reasoning : &o->answer, t, n);
    return 0;
}

/* Truncates a half-written last line; returns the set of done custom_ids. */
static json_t *done_ids(const char *path)
{
    json_t *done = json_object();
    FILE *f = fopen(path, "r+");
    if (!f)
        return done;
    char *line = NULL;
    size_t cap = 0;
    long good = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, f)) > 0) {
        if (line[n - 1] != '\n')
            break; /* half-written: dropped below */
        json_t *j = json_loads(line, 0, NULL);
        const char *id = j ? json_string_value(json_object_get(j, "custom_id")) : NULL;
        if (!j) {
            json_decref(j);
            break;
        }
        if (id)
            json_object_set_new(done, id, json_true());
        json_decref(j);
        good = ftell(f);
    }
    free(line);
    fflush(f);
    if (ftruncate(fileno(f), good) != 0)
        fprintf(stderr, "moestream batch: cannot truncate %s: %s\n", path, strerror(errno));
    fclose(f);
    return done;
}

static void write_record(FILE *out, json_t *rec)
{
    char *s = json_dumps(rec, JSON_COMPACT);
    fprintf(out, "%s\n", s);
    free(s);
    fflush(out);
    fsync(fileno(out));
}

static json_t *error_record(long idx, const char *cid, const char *code, const char *msg)
{
    char id[64];
    snprintf(id, sizeof id, "batch_req_%ld", idx);
    return json_pack("{s:s,s:s?,s:n,s:{s:s,s:s}}", "id", id, "custom_id", cid, "response", "error",
                     "code", code, "message", msg);
}

static void progress(long done, long total, double t0)
{
    if (!isatty(2) || total <= 0)
        return;
    double el = now_s() - t0, eta = done ? el / (double)done * (double)(total - done) : 0;
    int w = (int)(30 * done / total);
    fprintf(stderr, "\r[%.*s%*s] %ld/%ld  %.0fs elapsed, ETA %.0fs ", w,
            "##############################", 30 - w, "", done, total, el, eta);
    if (done == total)
        fputc('\n', stderr);
}

int cmd_batch(int argc, char **argv)
{
    cli_common c;
    cli_common_default(&c);
    gen_opts base;
    gen_opts_default(&base);
    const char *in = NULL, *outp = NULL;
    bool resume = false;
    long max_tokens = 1024;
    for (int i = 1; i < argc; i++) {
        int r = cli_common_arg(&c, argc, argv, &i);
        if (!r)
            r = cli_sampler_arg(&base.sp, argc, argv, &i);
        if (r < 0)
            return 2;
        if (r > 0)
            continue;
        if (!strcmp(argv[i], "--resume"))
            resume = true;
        else if (!strcmp(argv[i], "-i") && i + 1 < argc)
            in = argv[++i];
        else if (!strcmp(argv[i], "-o") && i + 1 < argc)
            outp = argv[++i];
        else if (!strcmp(argv[i], "-n") && i + 1 < argc) {
            if (cli_parse_int(argv[++i], -1, 1 << 24, &max_tokens))
                return 2;
        } else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            printf("usage: moestream batch -m MODEL -i IN.jsonl -o OUT.jsonl [--resume] [-n MAX] [options]\n"
                   "      --resume            skip the requests OUT.jsonl already answers\n"
                   "  -n, --n-predict N       max_tokens of lines that give none (default 1024; -1:\n"
                   "                          until end of text or context)\n%s%s",
                   cli_common_help(), cli_sampler_help());
            return 0;
        } else {
            fprintf(stderr, "moestream batch: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (!c.model || !in || !outp) {
        fprintf(stderr, "usage: moestream batch -m MODEL -i IN.jsonl -o OUT.jsonl [--resume]\n");
        return 2;
    }
    FILE *fin = fopen(in, "r");
    if (!fin) {
        fprintf(stderr, "moestream batch: cannot read %s: %s\n", in, strerror(errno));
        return 1;
    }
    long total = 0;
    {
        int ch, last = '\n';
        while ((ch = fgetc(fin)) != EOF) {
            total += ch == '\n';
            last = ch;
        }
        total += last != '\n';
        rewind(fin);
    }
    json_t *done = resume ? done_ids(outp) : json_object();
    FILE *out = fopen(outp, resume ? "a" : "w");
    if (!out) {
        fprintf(stderr, "moestream batch: cannot write %s: %s\n", outp, strerror(errno));
        fclose(fin);
        json_decref(done);
        return 1;
    }
    char err[512] = "";
    engine e;
    fwd_state *st = NULL;
    int rc = engine_open(&e, &c, false, true, err, sizeof err);
    if (!rc)
        rc = engine_state(&e, &st, err, sizeof err);
    if (rc) {
        fprintf(stderr, "moestream batch: %s\n", err);
        engine_close(&e);
        fclose(fin);
        fclose(out);
        json_decref(done);
        return 1;
    }
    const char *model_name = strrchr(c.model, '/') ? strrchr(c.model, '/') + 1 : c.model;
    char *line = NULL;
    size_t lcap = 0;
    ssize_t ln;
    long idx = 0, n_ok = 0, n_err = 0, n_skip = 0;
    double t0 = now_s();
    while ((ln = getline(&line, &lcap, fin)) > 0) {
        idx++;
        while (ln > 0 && (line[ln - 1] == '\n' || line[ln - 1] == '\r'))
            line[--ln] = 0;
        if (!ln) {
            progress(idx, total, t0);
            continue;
        }
        json_t *req = NULL;
        request rq;
        gen_opts go = base;
        go.n_predict = (int)max_tokens;
        char bad[256];
        int prc = request_parse_batch_line(&rq, &req, line, idx, &go, bad, sizeof bad);
        const char *cid = rq.custom_id;
        if (cid && json_object_get(done, cid)) {
            n_skip++;
            json_decref(req);
            progress(idx, total, t0);
            continue;
        }
        if (prc) {
            json_t *rec = error_record(idx, cid, "invalid_request", bad);
            write_record(out, rec);
            json_decref(rec);
            json_decref(req);
            n_err++;
            progress(idx, total, t0);
            continue;
        }
        int32_t *ids = NULL;
        size_t n = 0;
        outbuf ob = {{0}, {0}};
        gen_result res;
        fwd_truncate(st, 0);
        rc = chat_render_ids(e.v, rq.msgs, rq.n_msgs, true, &ids, &n, err, sizeof err);
        if (!rc)
            rc = gen_run(e.m, e.v, st, ids, n, &rq.go, collect, NULL, &ob, NULL, &res, err, sizeof err);
        json_t *rec;
        if (rc) {
            rec = error_record(idx, cid, rc == -E2BIG ? "context_length_exceeded" : "server_error", err);
            n_err++;
        } else {
            char id[64], rid[64];
            snprintf(id, sizeof id, "batch_req_%ld", idx);
            snprintf(rid, sizeof rid, "chatcmpl-%ld-%ld", (long)time(NULL), idx);
            /* generated bytes may not be valid UTF-8 (a model can emit half
             * a character before stopping); JSON must be */
            char *ans = tok_utf8_sanitize(ob.answer.s ? ob.answer.s : "", ob.answer.n);
            json_t *msg = json_pack("{s:s,s:s}", "role", "assistant", "content", ans ? ans : "");
            free(ans);
            if (ob.reasoning.n) {
                char *rs = tok_utf8_sanitize(ob.reasoning.s, ob.reasoning.n);
                json_object_set_new(msg, "reasoning_content", json_string(rs ? rs : ""));
                free(rs);
            }
            rec = json_pack("{s:s,s:s,s:{s:i,s:s,s:{s:s,s:s,s:I,s:s,s:[{s:i,s:o,s:s}],s:{s:i,s:i,s:i}}},s:n}",
                            "id", id, "custom_id", cid, "response", "status_code", 200, "request_id", rid,
                            "body", "id", rid, "object", "chat.completion", "created", (json_int_t)time(NULL),
                            "model", model_name, "choices", "index", 0, "message", msg, "finish_reason",
                            !strcmp(res.finish, "length") ? "length" : "stop", "usage", "prompt_tokens",
                            res.n_prompt, "completion_tokens", res.n_gen, "total_tokens",
                            res.n_prompt + res.n_gen, "error");
            n_ok++;
        }
        write_record(out, rec);
        json_decref(rec);
        free(ids);
        free(ob.answer.s);
        free(ob.reasoning.s);
        json_decref(req);
        progress(idx, total, t0);
    }
    free(line);
    fclose(fin);
    int status = fclose(out) ? 1 : 0;
    fprintf(stderr, "batch: %ld done, %ld errors, %ld skipped (already in %s) in %.1f s\n", n_ok,
            n_err, n_skip, outp, now_s() - t0);
    json_decref(done);
    fwd_destroy(st);
    engine_close(&e);
    return status;
}
