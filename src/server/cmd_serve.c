/* cmd_serve.c - `moestream serve`: an OpenAI-compatible HTTP server on
 * libmicrohttpd (a thread per connection), bound to loopback by default.
 *   POST /v1/chat/completions  JSON, or SSE with "stream": true (ending in
 *                              data: [DONE]); R1 reasoning in
 *                              reasoning_content / delta.reasoning_content
 *   POST /v1/completions       plain prompt, no template (JSON only)
 *   GET  /v1/models, GET /health (503 while loading), GET /metrics
 *   POST /tokenize             {"content": "..."} -> {"tokens": [...]}
 * Requests are queued: one generation at a time owns the engine (the
 * expert pool and thread pool serve one sequence); queue depth is in
 * /metrics.  A client that disconnects mid-stream cancels its generation.
 * --timeout bounds a request from its arrival: waiting in the queue, then
 * generating (checked between tokens; one prompt evaluation is not cut).
 * Errors use the OpenAI error JSON with the right status; request bodies
 * are validated by request.c. */
#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <microhttpd.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "chat.h"
#include "cli.h"
#include "cmd.h"
#include "engine.h"
#include "generate.h"
#include "request.h"
#include "strbuf.h"

#define MAX_BODY (1 << 20)

typedef struct server {
    engine e;
    fwd_state *st;
    pthread_mutex_t gen_lock; /* one generation at a time */
    const char *api_key;
    const char *model_name;
    atomic_int loading;
    atomic_long requests, errors, tokens_out, tokens_in, queued, active;
    /* generation time in microseconds: /metrics reads it while a request
     * adds to it, so atomic like the counters beside it */
    atomic_llong gen_us;
    double timeout_s; /* --timeout: a request's whole life, queue included */
} server;

static server S;
static volatile sig_atomic_t quit;

static void on_term(int sig)
{
    (void)sig;
    quit = 1;
}

/* ---- per-connection state ---- */

typedef struct conn {
    strbuf body;
    bool too_big, oom;
    /* streaming */
    pthread_t th;
    bool streaming, started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    strbuf out;     /* SSE bytes produced; out_pos of them sent */
    size_t out_pos;
    bool done;
    volatile sig_atomic_t cancel;
    json_t *req;     /* the parsed body; rq borrows from it */
    request rq;
    double deadline; /* CLOCK_REALTIME seconds: arrival + --timeout */
    atomic_int refs; /* a stream is owned by its response and its request */
    char id[64];
} conn;

static enum MHD_Result send_json(struct MHD_Connection *c, unsigned status, json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(s), s, MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header(r, "Content-Type", "application/json");
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result send_error(struct MHD_Connection *c, unsigned status, const char *type,
                                  const char *msg, const char *code)
{
    atomic_fetch_add(&S.errors, 1);
    return send_json(c, status,
                     json_pack("{s:{s:s,s:s,s:n,s:s?}}", "error", "message", msg, "type", type,
                               "param", "code", code));
}

/* ---- generation ---- */

typedef struct collect {
    strbuf ans, rsn;
    conn *stream; /* non-NULL: emit SSE chunks */
    volatile sig_atomic_t *cancel; /* polled by gen_run between tokens */
    double deadline;               /* CLOCK_REALTIME seconds */
    bool timed_out;
} collect;

static double wall_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Out of memory, the chunk is dropped and the generation cancelled: the
 * client sees the stream end without [DONE]. */
static void stream_put(conn *cn, const char *s, size_t n)
{
    pthread_mutex_lock(&cn->mu);
    if (strbuf_append(&cn->out, s, n))
        cn->cancel = 1;
    pthread_cond_signal(&cn->cv);
    pthread_mutex_unlock(&cn->mu);
}

static void sse_json(conn *cn, json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    stream_put(cn, "data: ", 6);
    stream_put(cn, s, strlen(s));
    stream_put(cn, "\n\n", 2);
    free(s);
}

static int on_text(void *ud, const char *t, size_t n, bool reasoning)
{
    collect *c = ud;
    int rc = strbuf_append(reasoning ? &c->rsn : &c->ans, t, n);
    if (rc)
        return rc;
    if (c->stream) {
        char *clean = tok_utf8_sanitize(t, n);
        json_t *delta = json_pack("{s:s}", reasoning ? "reasoning_content" : "content", clean);
        free(clean);
        sse_json(c->stream, json_pack("{s:s,s:s,s:I,s:s,s:[{s:i,s:o,s:n}]}", "id", c->stream->id,
                                      "object", "chat.completion.chunk", "created",
                                      (json_int_t)time(NULL), "model", S.model_name, "choices",
                                      "index", 0, "delta", delta, "finish_reason"));
    }
    return c->stream && c->stream->cancel;
}

/* Every generated token: past the deadline, ask gen_run to stop (it polls
 * the flag before the next token; a token without text never reaches
 * on_text, so the check lives here). */
static void on_token(void *ud, int32_t id)
{
    (void)id;
    collect *c = ud;
    if (wall_s() > c->deadline) {
        c->timed_out = true;
        *c->cancel = 1;
    }
}

/* Runs one request (chat messages, or rq->prompt as is) under the engine
 * lock, waiting for it no longer than the deadline.  -ETIMEDOUT when the
 * deadline passed, in the queue or while generating. */
static int generate(const request *rq, collect *col, gen_result *res, char *err, size_t errlen)
{
    atomic_fetch_add(&S.queued, 1);
    struct timespec dl = {(time_t)col->deadline,
                          (long)((col->deadline - (double)(time_t)col->deadline) * 1e9)};
    int lrc = pthread_mutex_timedlock(&S.gen_lock, &dl);
    atomic_fetch_sub(&S.queued, 1);
    if (lrc) {
        snprintf(err, errlen, "request timed out after %g s waiting in the queue (--timeout)", S.timeout_s);
        return -ETIMEDOUT;
    }
    atomic_fetch_add(&S.active, 1);
    int32_t *ids = NULL;
    size_t n = 0;
    fwd_truncate(S.st, 0);
    int rc = 0;
    if (rq->prompt) {
        if (tok_encode(S.e.v, rq->prompt, strlen(rq->prompt), TOK_ADD_BOS | TOK_PARSE_SPECIAL, &ids, &n)) {
            snprintf(err, errlen, "out of memory");
            rc = -ENOMEM;
        }
    } else {
        rc = chat_render_ids(S.e.v, rq->msgs, rq->n_msgs, rq->go.reasoning, &ids, &n, err, errlen);
    }
    if (!rc)
        rc = gen_run(S.e.m, S.e.v, S.st, ids, n, &rq->go, on_text, on_token, col, col->cancel, res,
                     err, errlen);
    if (!rc && col->timed_out && !strcmp(res->finish, "cancelled")) { /* not one that ended anyway */
        snprintf(err, errlen, "request stopped after the --timeout of %g s (%d tokens generated)",
                 S.timeout_s, res->n_gen);
        rc = -ETIMEDOUT;
    }
    if (!rc) {
        atomic_fetch_add(&S.tokens_in, res->n_prompt);
        atomic_fetch_add(&S.tokens_out, res->n_gen);
        atomic_fetch_add(&S.gen_us, (long long)(res->t_gen_s * 1e6));
    }
    free(ids);
    atomic_fetch_sub(&S.active, 1);
    pthread_mutex_unlock(&S.gen_lock);
    return rc;
}

/* The status, OpenAI error type and code for a failed generation. */
static unsigned gen_status(int rc, const char **type, const char **code)
{
    *type = rc == -E2BIG ? "invalid_request_error" : "server_error";
    *code = rc == -E2BIG ? "context_length_exceeded" : rc == -ETIMEDOUT ? "timeout" : NULL;
    return rc == -E2BIG ? 400 : rc == -ETIMEDOUT ? 504 : 500;
}

static void *stream_main(void *arg)
{
    conn *cn = arg;
    collect col = {STRBUF_INIT, STRBUF_INIT, cn, &cn->cancel, cn->deadline, false};
    gen_result res;
    char err[512];
    bool usage = cn->rq.include_usage;
    int rc = generate(&cn->rq, &col, &res, err, sizeof err);
    if (rc) {
        const char *type, *code;
        gen_status(rc, &type, &code);
        atomic_fetch_add(&S.errors, 1);
        sse_json(cn, json_pack("{s:{s:s,s:s,s:s?}}", "error", "message", err, "type", type, "code", code));
    } else {
        sse_json(cn, json_pack("{s:s,s:s,s:I,s:s,s:[{s:i,s:{},s:s}]}", "id", cn->id, "object",
                               "chat.completion.chunk", "created", (json_int_t)time(NULL), "model",
                               S.model_name, "choices", "index", 0, "delta", "finish_reason",
                               !strcmp(res.finish, "length") ? "length" : "stop"));
        if (usage)
            sse_json(cn, json_pack("{s:s,s:s,s:I,s:s,s:[],s:{s:i,s:i,s:i}}", "id", cn->id, "object",
                                   "chat.completion.chunk", "created", (json_int_t)time(NULL),
                                   "model", S.model_name, "choices", "usage", "prompt_tokens",
                                   res.n_prompt, "completion_tokens", res.n_gen, "total_tokens",
                                   res.n_prompt + res.n_gen));
    }
    stream_put(cn, "data: [DONE]\n\n", 14);
    strbuf_free(&col.ans);
    strbuf_free(&col.rsn);
    pthread_mutex_lock(&cn->mu);
    cn->done = true;
    pthread_cond_signal(&cn->cv);
    pthread_mutex_unlock(&cn->mu);
    return NULL;
}

static ssize_t stream_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    conn *cn = cls;
    pthread_mutex_lock(&cn->mu);
    while (cn->out_pos == cn->out.n && !cn->done)
        pthread_cond_wait(&cn->cv, &cn->mu);
    ssize_t k;
    if (cn->out_pos == cn->out.n && cn->done) {
        k = MHD_CONTENT_READER_END_OF_STREAM;
    } else {
        size_t n = cn->out.n - cn->out_pos < max ? cn->out.n - cn->out_pos : max;
        memcpy(buf, cn->out.s + cn->out_pos, n);
        cn->out_pos += n;
        k = (ssize_t)n;
    }
    pthread_mutex_unlock(&cn->mu);
    return k;
}

/* The stream's response owns the streaming connection state: MHD calls
 * this once, when the response is done or the client went away. */
static void conn_free(conn *cn)
{
    if (cn->streaming) {
        pthread_mutex_destroy(&cn->mu);
        pthread_cond_destroy(&cn->cv);
        json_decref(cn->req);
        strbuf_free(&cn->out);
    }
    strbuf_free(&cn->body);
    free(cn);
}

static void stream_free(void *cls)
{
    conn *cn = cls;
    cn->cancel = 1; /* client gone or stream over: stop generating */
    pthread_join(cn->th, NULL);
    if (atomic_fetch_sub(&cn->refs, 1) == 1)
        conn_free(cn);
}


/* ---- handlers ---- */

static enum MHD_Result metrics(struct MHD_Connection *c)
{
    char buf[2048];
    pager_stats ps = {0};
    if (S.e.pg)
        pager_get_stats(S.e.pg, &ps);
    long out = atomic_load(&S.tokens_out);
    long long gen_us = atomic_load(&S.gen_us);
    snprintf(buf, sizeof buf,
             "# TYPE moestream_requests_total counter\nmoestream_requests_total %ld\n"
             "# TYPE moestream_request_errors_total counter\nmoestream_request_errors_total %ld\n"
             "# TYPE moestream_prompt_tokens_total counter\nmoestream_prompt_tokens_total %ld\n"
             "# TYPE moestream_generated_tokens_total counter\nmoestream_generated_tokens_total %ld\n"
             "# TYPE moestream_generation_tokens_per_second gauge\nmoestream_generation_tokens_per_second %.3f\n"
             "# HELP moestream_queue_depth requests waiting for the engine (requests are queued and "
             "run one at a time, not batched)\n"
             "# TYPE moestream_queue_depth gauge\nmoestream_queue_depth %ld\n"
             "# HELP moestream_active_requests requests generating now (0 or 1: one engine, one "
             "sequence)\n"
             "# TYPE moestream_active_requests gauge\nmoestream_active_requests %ld\n"
             "# TYPE moestream_expert_cache_hits_total counter\nmoestream_expert_cache_hits_total %llu\n"
             "# TYPE moestream_expert_cache_misses_total counter\nmoestream_expert_cache_misses_total %llu\n"
             "# TYPE moestream_expert_bytes_read_total counter\nmoestream_expert_bytes_read_total %llu\n"
             "# TYPE moestream_peak_rss_bytes gauge\nmoestream_peak_rss_bytes %llu\n",
             atomic_load(&S.requests), atomic_load(&S.errors), atomic_load(&S.tokens_in), out,
             gen_us > 0 ? (double)out / ((double)gen_us / 1e6) : 0.0, atomic_load(&S.queued),
             atomic_load(&S.active), (unsigned long long)ps.hits, (unsigned long long)ps.misses,
             (unsigned long long)ps.bytes_read, (unsigned long long)engine_peak_rss());
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(buf), buf, MHD_RESPMEM_MUST_COPY);
    MHD_add_response_header(r, "Content-Type", "text/plain; version=0.0.4");
    enum MHD_Result ret = MHD_queue_response(c, 200, r);
    MHD_destroy_response(r);
    return ret;
}

/* A failed generation as an OpenAI error response. */
static enum MHD_Result send_gen_error(struct MHD_Connection *c, int rc, const char *err)
{
    const char *type, *code;
    unsigned status = gen_status(rc, &type, &code);
    return send_error(c, status, type, err, code);
}

static enum MHD_Result chat_completions(struct MHD_Connection *c, conn *cn)
{
    json_error_t je;
    json_t *req = json_loadb(strbuf_str(&cn->body), cn->body.n, 0, &je);
    if (!req)
        return send_error(c, 400, "invalid_request_error", "the body is not valid JSON", "invalid_json");
    gen_opts base;
    gen_opts_default(&base);
    base.n_predict = 4096;
    char bad[256];
    if (request_parse_chat(&cn->rq, req, &base, bad, sizeof bad)) {
        json_decref(req);
        return send_error(c, 400, "invalid_request_error", bad, "invalid_request");
    }
    cn->deadline = wall_s() + S.timeout_s;
    snprintf(cn->id, sizeof cn->id, "chatcmpl-%ld-%ld", (long)time(NULL), atomic_load(&S.requests));
    if (cn->rq.stream) {
        cn->req = req;
        cn->streaming = true;
        pthread_mutex_init(&cn->mu, NULL);
        pthread_cond_init(&cn->cv, NULL);
        if (pthread_create(&cn->th, NULL, stream_main, cn)) {
            return send_error(c, 500, "server_error", "cannot start the generation", NULL);
        }
        cn->started = true;
        atomic_store(&cn->refs, 2);
        struct MHD_Response *r =
            MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, stream_reader, cn, stream_free);
        MHD_add_response_header(r, "Content-Type", "text/event-stream");
        MHD_add_response_header(r, "Cache-Control", "no-cache");
        enum MHD_Result ret = MHD_queue_response(c, 200, r);
        MHD_destroy_response(r);
        return ret;
    }
    collect col = {STRBUF_INIT, STRBUF_INIT, NULL, &cn->cancel, cn->deadline, false};
    gen_result res;
    char err[512];
    int rc = generate(&cn->rq, &col, &res, err, sizeof err);
    json_decref(req);
    if (rc) {
        strbuf_free(&col.ans);
        strbuf_free(&col.rsn);
        return send_gen_error(c, rc, err);
    }
    char *ans = tok_utf8_sanitize(strbuf_str(&col.ans), col.ans.n);
    json_t *msg = json_pack("{s:s,s:s}", "role", "assistant", "content", ans);
    free(ans);
    if (col.rsn.n) {
        char *rs = tok_utf8_sanitize(col.rsn.s, col.rsn.n);
        json_object_set_new(msg, "reasoning_content", json_string(rs));
        free(rs);
    }
    strbuf_free(&col.ans);
    strbuf_free(&col.rsn);
    return send_json(c, 200,
                     json_pack("{s:s,s:s,s:I,s:s,s:[{s:i,s:o,s:s}],s:{s:i,s:i,s:i}}", "id", cn->id,
                               "object", "chat.completion", "created", (json_int_t)time(NULL),
                               "model", S.model_name, "choices", "index", 0, "message", msg,
                               "finish_reason", !strcmp(res.finish, "length") ? "length" : "stop",
                               "usage", "prompt_tokens", res.n_prompt, "completion_tokens",
                               res.n_gen, "total_tokens", res.n_prompt + res.n_gen));
}

/* Plain completion: the prompt is tokenized as is (BOS added, control
 * tokens parsed, no chat template); non-streaming. */
static enum MHD_Result completions(struct MHD_Connection *c, conn *cn)
{
    json_t *req = json_loadb(strbuf_str(&cn->body), cn->body.n, 0, NULL);
    if (!req)
        return send_error(c, 400, "invalid_request_error", "the body is not valid JSON", "invalid_json");
    gen_opts base;
    gen_opts_default(&base);
    base.n_predict = 16; /* the OpenAI default for completions */
    base.reasoning = false;
    char bad[256];
    if (request_parse_completion(&cn->rq, req, &base, bad, sizeof bad)) {
        json_decref(req);
        return send_error(c, 400, "invalid_request_error", bad, "invalid_request");
    }
    cn->deadline = wall_s() + S.timeout_s;
    collect col = {STRBUF_INIT, STRBUF_INIT, NULL, &cn->cancel, cn->deadline, false};
    gen_result res;
    char err[512];
    int rc = generate(&cn->rq, &col, &res, err, sizeof err);
    json_decref(req);
    if (rc) {
        strbuf_free(&col.ans);
        strbuf_free(&col.rsn);
        return send_gen_error(c, rc, err);
    }
    char *text = tok_utf8_sanitize(strbuf_str(&col.ans), col.ans.n);
    strbuf_free(&col.ans);
    strbuf_free(&col.rsn);
    char id[64];
    snprintf(id, sizeof id, "cmpl-%ld-%ld", (long)time(NULL), atomic_load(&S.requests));
    json_t *out = json_pack("{s:s,s:s,s:I,s:s,s:[{s:s,s:i,s:n,s:s}],s:{s:i,s:i,s:i}}", "id", id,
                            "object", "text_completion", "created", (json_int_t)time(NULL), "model",
                            S.model_name, "choices", "text", text, "index", 0, "logprobs",
                            "finish_reason", !strcmp(res.finish, "length") ? "length" : "stop",
                            "usage", "prompt_tokens", res.n_prompt, "completion_tokens", res.n_gen,
                            "total_tokens", res.n_prompt + res.n_gen);
    free(text);
    return send_json(c, 200, out);
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url,
                               const char *method, const char *version, const char *upload,
                               size_t *upload_size, void **ptr)
{
    (void)cls;
    (void)version;
    conn *cn = *ptr;
    if (!cn) {
        cn = calloc(1, sizeof *cn);
        if (!cn)
            return MHD_NO;
        *ptr = cn;
        return MHD_YES;
    }
    if (*upload_size) { /* body arrives in pieces */
        if (cn->body.n + *upload_size > MAX_BODY)
            cn->too_big = true;
        else if (strbuf_append(&cn->body, upload, *upload_size))
            cn->oom = true;
        *upload_size = 0;
        return MHD_YES;
    }
    atomic_fetch_add(&S.requests, 1);
    if (cn->too_big)
        return send_error(c, 413, "invalid_request_error", "request body over 1 MB", "body_too_large");
    if (cn->oom)
        return send_error(c, 500, "server_error", "out of memory reading the request body", NULL);
    bool get = !strcmp(method, "GET"), post = !strcmp(method, "POST");
    if (get && !strcmp(url, "/health")) {
        if (atomic_load(&S.loading))
            return send_json(c, 503, json_pack("{s:s}", "status", "loading"));
        return send_json(c, 200, json_pack("{s:s}", "status", "ok"));
    }
    if (get && !strcmp(url, "/metrics"))
        return metrics(c);
    if (S.api_key) {
        const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
        char want[512];
        snprintf(want, sizeof want, "Bearer %s", S.api_key);
        if (!auth || strcmp(auth, want) != 0)
            return send_error(c, 401, "invalid_request_error", "incorrect API key", "invalid_api_key");
    }
    if (atomic_load(&S.loading))
        return send_error(c, 503, "server_error", "the model is still loading", NULL);
    if (get && !strcmp(url, "/v1/models"))
        return send_json(c, 200, json_pack("{s:s,s:[{s:s,s:s,s:I,s:s}]}", "object", "list", "data",
                                           "id", S.model_name, "object", "model", "created",
                                           (json_int_t)0, "owned_by", "moestream"));
    if (post && !strcmp(url, "/v1/chat/completions"))
        return chat_completions(c, cn);
    if (post && !strcmp(url, "/v1/completions"))
        return completions(c, cn);
    if (post && !strcmp(url, "/tokenize")) {
        json_t *req = json_loadb(strbuf_str(&cn->body), cn->body.n, 0, NULL);
        const char *text = json_string_value(json_object_get(req, "content"));
        if (!text) {
            json_decref(req);
            return send_error(c, 400, "invalid_request_error", "need {\"content\": string}", "invalid_request");
        }
        int32_t *ids;
        size_t n;
        if (tok_encode(S.e.v, text, strlen(text), TOK_NO_ADDED, &ids, &n)) {
            json_decref(req);
            return send_error(c, 500, "server_error", "out of memory", NULL);
        }
        json_t *a = json_array();
        for (size_t i = 0; i < n; i++)
            json_array_append_new(a, json_integer(ids[i]));
        free(ids);
        json_decref(req);
        return send_json(c, 200, json_pack("{s:o}", "tokens", a));
    }
    return send_error(c, 404, "invalid_request_error", "no such endpoint", "not_found");
}

static void completed(void *cls, struct MHD_Connection *c, void **ptr, enum MHD_RequestTerminationCode t)
{
    (void)cls;
    (void)c;
    (void)t;
    conn *cn = *ptr;
    *ptr = NULL;
    if (!cn)
        return;
    if (!cn->started || atomic_fetch_sub(&cn->refs, 1) == 1)
        conn_free(cn);
}

int cmd_serve(int argc, char **argv)
{
    cli_common c;
    cli_common_default(&c);
    const char *host = "127.0.0.1";
    long port = 8080;
    S.timeout_s = 600;
    for (int i = 1; i < argc; i++) {
        int r = cli_common_arg(&c, argc, argv, &i);
        if (r < 0)
            return 2;
        if (r > 0)
            continue;
        if (!strcmp(argv[i], "--host") && i + 1 < argc)
            host = argv[++i];
        else if (!strcmp(argv[i], "--port") && i + 1 < argc) {
            if (cli_parse_int(argv[++i], 1, 65535, &port))
                return 2;
        } else if (!strcmp(argv[i], "--api-key") && i + 1 < argc)
            S.api_key = argv[++i];
        else if (!strcmp(argv[i], "--timeout") && i + 1 < argc) {
            long t;
            if (cli_parse_int(argv[++i], 1, 7 * 24 * 3600, &t)) {
                fprintf(stderr, "moestream serve: --timeout wants whole seconds in [1, 604800]\n");
                return 2;
            }
            S.timeout_s = (double)t;
        }
        else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            printf("usage: moestream serve -m MODEL [--host 127.0.0.1] [--port 8080] [--api-key KEY] "
                   "[--timeout SECONDS] [options]\n"
                   "  --timeout SECONDS       stop a request this long after it arrived, queue "
                   "included (default 600)\n"
                   "  --parallel, -np N       accepted and ignored: requests are queued, one at a time\n%s",
                   cli_common_help());
            return 0;
        } else {
            fprintf(stderr, "moestream serve: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (!c.model) {
        fprintf(stderr, "usage: moestream serve -m MODEL [--host H] [--port P] [--api-key KEY]\n");
        return 2;
    }
    struct sockaddr_in addr = {0};
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) {
        fprintf(stderr, "moestream serve: --host must be an IPv4 address (got %s)\n", host);
        return 2;
    }
    pthread_mutex_init(&S.gen_lock, NULL);
    atomic_store(&S.loading, 1);
    S.model_name = strrchr(c.model, '/') ? strrchr(c.model, '/') + 1 : c.model;
    /* listen first, so /health answers 503 while the weights load */
    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG,
        (uint16_t)port, NULL, NULL, handler, NULL, MHD_OPTION_SOCK_ADDR, &addr,
        MHD_OPTION_NOTIFY_COMPLETED, completed, NULL, MHD_OPTION_CONNECTION_LIMIT, 64u,
        MHD_OPTION_CONNECTION_TIMEOUT, 600u, MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "moestream serve: cannot listen on %s:%ld\n", host, port);
        return 1;
    }
    char err[512] = "";
    int rc = engine_open(&S.e, &c, true, true, err, sizeof err);
    if (!rc)
        rc = engine_state(&S.e, &S.st, err, sizeof err);
    if (rc) {
        fprintf(stderr, "moestream serve: %s\n", err);
        MHD_stop_daemon(d);
        engine_close(&S.e);
        return 1;
    }
    atomic_store(&S.loading, 0);
    fprintf(stderr, "moestream serve: listening on http://%s:%ld (model %s)\n", host, port, S.model_name);
    struct sigaction sa = {0};
    sa.sa_handler = on_term;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    while (!quit)
        pause();
    MHD_stop_daemon(d);
    fwd_destroy(S.st);
    engine_close(&S.e);
    return 0;
}
