/* cmd_serve.c - `moestream serve`: an OpenAI-compatible HTTP server on
 * libmicrohttpd (a thread per connection), bound to loopback by default.
 *   POST /v1/chat/completions  JSON, or SSE with "stream": true (ending in
 *                              data: [DONE]); R1 reasoning in
 *                              reasoning_content / delta.reasoning_content
 *   POST /v1/completions       plain prompt, no template (JSON only)
 *   GET  /v1/models, GET /health (503 while loading), GET /metrics
 *   POST /tokenize             {"content": "..."} -> {"tokens": [...]}
 *   POST /detokenize           {"tokens": [...]} -> {"content": "..."}
 *   GET  /                     a short JSON about the server
 *   OPTIONS (any path)         a CORS preflight: 204, no API key, no model work
 * Every response carries Access-Control-Allow-Origin as --cors-origins
 * says (llama-server's default "*").  One line per request goes to stderr
 * when the response is done (--log-format text|json).
 * --host is an IPv4 or IPv6 address or a host name; a name listens on each
 * of its addresses (one libmicrohttpd daemon per address; the connection
 * limits are per daemon).
 * Continuous batching: up to --parallel requests generate together, stepped
 * by one scheduler thread through the library's ms_batch (every step the
 * next token of each plus a -b chunk of a waiting prompt; at temperature 0
 * each reply is the one the request gets alone).  Beyond them up to --queue
 * requests wait in arrival order; past that a request gets 429.  Active
 * sequences, queue depth, tokens per step and tokens/s are in /metrics.
 * Callbacks of a generation run on the scheduler thread; the connection's
 * thread waits for its on_done.  A client that disconnects (streaming or
 * not, generating or waiting in the queue) cancels its generation: the
 * socket is polled for the peer's hang-up between tokens.
 * --timeout bounds a request from its arrival: waiting in the queue, then
 * generating (checked between tokens; one prompt evaluation is not cut).
 * Errors use the OpenAI error JSON with the right status; request bodies
 * are validated by request.c.  Errors libmicrohttpd answers itself before
 * any handler runs (malformed request line or headers, bad Content-Length,
 * headers over its buffer) keep its compiled-in HTML pages: 0.9.75 has no
 * hook to replace them.
 *
 * Connections: up to --max-connections (per client address
 * --max-per-address), a thread each.  A connection that has not sent a
 * complete request within --idle-timeout seconds of opening (or of its
 * previous response) is shut down by a reaper thread, so idle or
 * slow-sending clients cannot hold the server; one that stops reading a
 * response is closed by libmicrohttpd's inactivity timeout, which is
 * restarted after every long wait of ours (it would otherwise count the
 * generation as inactivity).
 * Memory: a request with a body reserves request_mem_cost(its length) of
 * the plan's request budget before its body is read, and waits (until its
 * deadline) while the budget is taken; GET requests reserve nothing, so
 * /health and /metrics never wait.
 * SIGTERM/SIGINT drain: the listening socket closes, requests in flight
 * finish (each is bounded by --timeout), new requests on open connections
 * get 503, then the process exits 0. */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <fcntl.h>
#include <jansson.h>
#include <microhttpd.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "cmd.h"
#include "moestream.h"
#include "request.h"
#include "strbuf.h"

#define MAX_BODY REQUEST_MAX_BODY

/* One open connection, from libmicrohttpd's connection-start notice to its
 * close notice (which comes before the socket is closed, so fd stays valid
 * while the watch is listed). */
typedef struct watch {
    int fd;
    double since; /* monotonic seconds: began waiting for a request */
    bool busy;    /* handling a complete request, or waiting for memory */
    bool shut;    /* the reaper shut it down */
    struct watch *prev, *next;
} watch;

struct job;

typedef struct server {
    ms_engine *e;
    int n_ctx;       /* per sequence */
    /* the scheduler: jobs wait in the queue (arrival order) until the batch
     * has a free slot; the batch's slots keep their caches, so a shared
     * prefix is reused (ms_batch_submit) */
    ms_batch *batch; /* driven by the scheduler thread only */
    pthread_mutex_t q_mu;
    pthread_cond_t q_cv;    /* the scheduler: a job arrived, or stop */
    pthread_cond_t done_cv; /* the waiting connections: a job ended */
    struct job *q_head, *q_tail;
    long q_len, q_max;      /* waiting jobs; --queue */
    bool sched_stop;
    ms_batch_stats bst;     /* copied after each step, under q_mu */
    const char *api_key; /* NULL: no key; else any length, compared in constant time */
    size_t api_key_len;
    const char *model_name; /* --alias, else the model file's name */
    json_int_t created;     /* /v1/models: the model file's modification time */
    char fingerprint[96];   /* system_fingerprint: version and commit */
    const char *cors;       /* --cors-origins: "*", "localhost" or a comma list */
    bool log_json;          /* --log-format json */
    bool log_off;           /* --log-disable */
    atomic_int loading;
    atomic_long requests, errors, tokens_out, tokens_in, queued, active;
    /* generation time in microseconds: /metrics reads it while a request
     * adds to it, so atomic like the counters beside it */
    atomic_llong gen_us;
    double timeout_s; /* --timeout: a request's whole life, queue included */
    unsigned idle_s;  /* --idle-timeout: to send a complete request */
    atomic_int draining;  /* SIGTERM: finishing the requests in flight */
    atomic_int abort_all; /* the drain ran out of time: cancel every generation */
    atomic_long inflight; /* requests from their complete arrival to their completion */
    /* the plan's request-handling budget, shared by requests with a body */
    pthread_mutex_t mem_mu;
    pthread_cond_t mem_cv;
    uint64_t mem_budget, mem_used;
    /* open connections, for the reaper */
    pthread_mutex_t watch_mu;
    watch *watches;
    atomic_int reaper_stop;
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
    int32_t *ids;    /* the rendered prompt, before the stream starts */
    size_t n_ids;
    double deadline; /* CLOCK_REALTIME seconds: arrival + --timeout */
    int fd;          /* the client's socket, polled for a hang-up */
    uint64_t mem;    /* bytes of the request budget held */
    bool mem_fail;   /* no share of the budget before the deadline */
    bool counted;    /* in S.inflight */
    atomic_int refs; /* a stream is owned by its response and its request */
    struct MHD_Connection *mc;
    char id[64];
    /* the request log line */
    double t0;            /* monotonic seconds: the request's headers arrived */
    char method[8];
    char path[96];
    int n_prompt, n_gen;  /* tokens, once known (a stream sets them under mu) */
} conn;

/* ---- CORS ---- */

/* Whether origin ("scheme://host[:port]") names this machine. */
static bool origin_is_local(const char *o)
{
    const char *h = strstr(o, "://");
    h = h ? h + 3 : o;
    static const char *const locals[] = {"localhost", "127.0.0.1", "[::1]"};
    for (size_t i = 0; i < sizeof locals / sizeof locals[0]; i++) {
        size_t n = strlen(locals[i]);
        if (!strncasecmp(h, locals[i], n) && (h[n] == 0 || h[n] == ':' || h[n] == '/'))
            return true;
    }
    return false;
}

/* Whether origin is one of --cors-origins' comma-separated entries. */
static bool origin_listed(const char *o)
{
    const size_t lo = strlen(o);
    for (const char *p = S.cors; *p;) {
        while (*p == ' ' || *p == ',')
            p++;
        size_t n = strcspn(p, ",");
        size_t t = n;
        while (t && p[t - 1] == ' ')
            t--;
        if (t && t == lo && !strncasecmp(p, o, t))
            return true;
        p += n;
    }
    return false;
}

/* Access-Control-Allow-Origin for the request on c: "*" answers any origin
 * (llama-server's default; the API key, not the origin, guards the server),
 * "localhost" echoes local origins only, a list echoes its members only.
 * Another origin gets no header, and the browser keeps the reply from the
 * page. */
static void cors_add(struct MHD_Connection *c, struct MHD_Response *r)
{
    if (!strcmp(S.cors, "*")) {
        MHD_add_response_header(r, "Access-Control-Allow-Origin", "*");
        return;
    }
    MHD_add_response_header(r, "Vary", "Origin");
    const char *o = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Origin");
    if (o && (!strcmp(S.cors, "localhost") ? origin_is_local(o) : origin_listed(o)))
        MHD_add_response_header(r, "Access-Control-Allow-Origin", o);
}

/* Queues r with the CORS headers every response carries, and drops our
 * reference to it. */
static enum MHD_Result respond(struct MHD_Connection *c, unsigned status, struct MHD_Response *r)
{
    cors_add(c, r);
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

/* A preflight: what a browser asks before a cross-origin POST with an
 * Authorization header.  Answered without the API key (browsers never send
 * one here) and without touching the model. */
static enum MHD_Result preflight(struct MHD_Connection *c)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
    MHD_add_response_header(r, "Access-Control-Allow-Methods", "GET, POST, OPTIONS");
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Access-Control-Request-Headers");
    /* "*" does not cover Authorization, so the asked-for headers are echoed */
    MHD_add_response_header(r, "Access-Control-Allow-Headers",
                            h && h[0] ? h : "Authorization, Content-Type");
    MHD_add_response_header(r, "Access-Control-Max-Age", "86400");
    return respond(c, 204, r);
}

static enum MHD_Result send_json(struct MHD_Connection *c, unsigned status, json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(s), s, MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header(r, "Content-Type", "application/json");
    return respond(c, status, r);
}

/* llama-server's "timings" object, so tools that read it (its web UI,
 * benchmark scripts) work unchanged: prompt_n counts the prompt tokens
 * evaluated (cache_n the ones reused), prompt_ms runs from admission to
 * the prompt's logits (queue wait included), predicted_ms from there to
 * the last token. */
static json_t *timings_json(const ms_gen_result *r)
{
    const int pn = r->n_prompt - r->n_cached;
    const double pms = r->t_prompt_s * 1e3, gms = r->t_gen_s * 1e3;
    return json_pack("{s:i,s:i,s:f,s:f,s:f,s:i,s:f,s:f,s:f}", "cache_n", r->n_cached, "prompt_n", pn,
                     "prompt_ms", pms, "prompt_per_token_ms", pn > 0 ? pms / pn : 0.0, "prompt_per_second",
                     pms > 0 ? pn * 1e3 / pms : 0.0, "predicted_n", r->n_gen, "predicted_ms", gms,
                     "predicted_per_token_ms", r->n_gen > 0 ? gms / r->n_gen : 0.0, "predicted_per_second",
                     gms > 0 ? r->n_gen * 1e3 / gms : 0.0);
}

/* An OpenAI error; param: the request field at fault, or NULL. */
static enum MHD_Result send_error_param(struct MHD_Connection *c, unsigned status,
                                        const char *type, const char *msg, const char *code,
                                        const char *param)
{
    atomic_fetch_add(&S.errors, 1);
    return send_json(c, status,
                     json_pack("{s:{s:s,s:s,s:s?,s:s?}}", "error", "message", msg, "type", type,
                               "param", param, "code", code));
}

static enum MHD_Result send_error(struct MHD_Connection *c, unsigned status, const char *type,
                                  const char *msg, const char *code)
{
    return send_error_param(c, status, type, msg, code, NULL);
}

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Whether the client on fd has hung up: the peer closed or reset its end.
 * Data waiting to be read (a pipelined request) is not a hang-up. */
static bool peer_gone(int fd)
{
    if (fd < 0)
        return false;
    struct pollfd p = {fd, POLLIN | POLLRDHUP, 0};
    return poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL));
}

/* Restarts libmicrohttpd's inactivity clock of c: after a long wait inside
 * a handler or the stream reader, its check would otherwise find the
 * connection "inactive" for that long and close it before the response is
 * sent.  Setting the timeout from 0 stamps the last activity (0.9.75's
 * MHD_set_connection_option). */
static void conn_touch(struct MHD_Connection *c)
{
    MHD_set_connection_option(c, MHD_CONNECTION_OPTION_TIMEOUT, 0u);
    MHD_set_connection_option(c, MHD_CONNECTION_OPTION_TIMEOUT, S.idle_s);
}

/* ---- connection watch (the reaper) ---- */

static watch *conn_watch(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

/* busy: a complete request is being handled (or waits for memory), so the
 * reaper leaves it; not busy: the connection has --idle-timeout seconds
 * from now to deliver its (next) request. */
static void watch_busy(watch *w, bool busy)
{
    if (!w)
        return;
    pthread_mutex_lock(&S.watch_mu);
    w->busy = busy;
    w->since = mono_s();
    pthread_mutex_unlock(&S.watch_mu);
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    (void)cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        watch *w = calloc(1, sizeof *w);
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        if (!w || !ci) { /* unwatched: libmicrohttpd's inactivity timeout still applies */
            free(w);
            *socket_context = NULL;
            return;
        }
        w->fd = ci->connect_fd;
        w->since = mono_s();
        pthread_mutex_lock(&S.watch_mu);
        w->next = S.watches;
        if (S.watches)
            S.watches->prev = w;
        S.watches = w;
        pthread_mutex_unlock(&S.watch_mu);
        *socket_context = w;
    } else if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
        watch *w = *socket_context;
        if (!w)
            return;
        pthread_mutex_lock(&S.watch_mu);
        if (w->prev)
            w->prev->next = w->next;
        else
            S.watches = w->next;
        if (w->next)
            w->next->prev = w->prev;
        pthread_mutex_unlock(&S.watch_mu);
        free(w);
        *socket_context = NULL;
    }
}

/* Shuts down connections that have not delivered a complete request within
 * --idle-timeout: libmicrohttpd's own timeout counts inactivity, so a client
 * sending a byte now and then would never reach it.  shutdown() (not
 * close: the socket stays libmicrohttpd's) makes its next read see the end. */
static void *reaper_main(void *arg)
{
    (void)arg;
    while (!atomic_load(&S.reaper_stop)) {
        struct timespec ts = {0, 200 * 1000 * 1000};
        nanosleep(&ts, NULL);
        const double now = mono_s();
        pthread_mutex_lock(&S.watch_mu);
        for (watch *w = S.watches; w; w = w->next)
            if (!w->busy && !w->shut && now - w->since > (double)S.idle_s) {
                shutdown(w->fd, SHUT_RDWR);
                w->shut = true;
            }
        pthread_mutex_unlock(&S.watch_mu);
    }
    return NULL;
}

/* ---- request memory budget ---- */

/* Takes bytes of the request budget, waiting until the deadline
 * (CLOCK_REALTIME seconds) while it is taken.  false: none before then. */
static bool mem_acquire(uint64_t bytes, double deadline)
{
    if (bytes > S.mem_budget)
        bytes = S.mem_budget; /* cannot happen: the budget holds the largest body's cost */
    struct timespec dl = {(time_t)deadline, (long)((deadline - (double)(time_t)deadline) * 1e9)};
    pthread_mutex_lock(&S.mem_mu);
    int rc = 0;
    while (S.mem_used + bytes > S.mem_budget && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&S.mem_cv, &S.mem_mu, &dl);
    bool ok = S.mem_used + bytes <= S.mem_budget;
    if (ok)
        S.mem_used += bytes;
    pthread_mutex_unlock(&S.mem_mu);
    return ok;
}

static void mem_release(uint64_t bytes)
{
    if (!bytes)
        return;
    pthread_mutex_lock(&S.mem_mu);
    S.mem_used -= bytes > S.mem_used ? S.mem_used : bytes;
    pthread_cond_broadcast(&S.mem_cv);
    pthread_mutex_unlock(&S.mem_mu);
}

/* ---- generation ---- */

typedef struct collect {
    strbuf ans, rsn;
    conn *stream; /* non-NULL: emit SSE chunks */
    volatile sig_atomic_t *cancel; /* polled between tokens (on_cancel) */
    double deadline;               /* CLOCK_REALTIME seconds */
    bool timed_out;
    int fd; /* the client's socket: a hang-up cancels */
    struct job *job; /* generate()'s, while it runs */
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
    if (json_object_get(j, "choices")) /* a chunk, not an error */
        json_object_set_new(j, "system_fingerprint", json_string(S.fingerprint));
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
        char *clean = ms_utf8_sanitize(t, n);
        json_t *delta = json_pack("{s:s}", reasoning ? "reasoning_content" : "content", clean);
        free(clean);
        sse_json(c->stream, json_pack("{s:s,s:s,s:I,s:s,s:[{s:i,s:o,s:n}]}", "id", c->stream->id,
                                      "object", "chat.completion.chunk", "created",
                                      (json_int_t)time(NULL), "model", S.model_name, "choices",
                                      "index", 0, "delta", delta, "finish_reason"));
    }
    return c->stream && c->stream->cancel;
}

/* Every generated token: past the deadline, ask the generation to stop (it polls
 * the flag before the next token; a token without text never reaches
 * on_text, so the check lives here); so does a client that hung up. */
static void on_token(void *ud, int32_t id)
{
    (void)id;
    collect *c = ud;
    if (wall_s() > c->deadline) {
        c->timed_out = true;
        *c->cancel = 1;
    }
    if (peer_gone(c->fd) || atomic_load(&S.abort_all))
        *c->cancel = 1;
}

static int on_cancel(void *ud)
{
    collect *c = ud;
    return *c->cancel != 0;
}

/* The prompt ids of a request (chat messages through the template, or
 * rq->prompt as is), refused with -E2BIG before tokenizing when the text
 * cannot fit the context, and after when the ids do not.  Needs no engine
 * lock (the vocabulary is immutable).  *ids malloc'd. */
static int render(const request *rq, int32_t **ids, size_t *n, char *err, size_t errlen)
{
    const size_t n_ctx = (size_t)S.n_ctx;
    int rc;
    *ids = NULL;
    *n = 0;
    if (rq->prompt) {
        rc = ms_text_check_fits(ms_engine_vocab(S.e), strlen(rq->prompt), n_ctx, err, errlen);
        if (!rc && ms_tokenize(ms_engine_vocab(S.e), rq->prompt, strlen(rq->prompt),
                                   MS_TOK_ADD_BOS | MS_TOK_PARSE_SPECIAL, ids, n)) {
            snprintf(err, errlen, "out of memory");
            rc = -ENOMEM;
        }
    } else {
        rc = ms_chat_check_fits(ms_engine_vocab(S.e), rq->msgs, rq->n_msgs, n_ctx, err, errlen);
        if (!rc)
            rc = ms_chat_render(ms_engine_vocab(S.e), rq->msgs, rq->n_msgs, rq->go.reasoning, ids, n, err, errlen);
    }
    if (!rc && *n >= n_ctx) { /* ms_generate's own test, made before any stream starts */
        snprintf(err, errlen, "prompt of %zu tokens does not fit the context of %zu; raise "
                              "-c/--ctx-size or shorten the prompt", *n, n_ctx);
        rc = -E2BIG;
    }
    if (rc) {
        ms_free(*ids);
        *ids = NULL;
    }
    return rc;
}

/* One request's generation, from its arrival in generate() to on_done. */
typedef struct job {
    const request *rq;
    const int32_t *ids;
    size_t n;
    collect *col;
    ms_gen_result res;
    int rc;
    char err[512];
    bool started, done;
    struct job *next;
} job;

static void job_done(void *ud, int rc, const ms_gen_result *res, const char *err)
{
    collect *col = ud;
    job *j = col->job;
    pthread_mutex_lock(&S.q_mu);
    j->rc = rc;
    if (res)
        j->res = *res;
    snprintf(j->err, sizeof j->err, "%s", err ? err : "");
    j->done = true;
    pthread_cond_broadcast(&S.done_cv);
    pthread_mutex_unlock(&S.q_mu);
}

/* The scheduler thread: moves queued jobs into free slots of the batch
 * and steps it while it has generations; sleeps when there is nothing. */
static void *sched_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&S.q_mu);
    for (;;) {
        while (S.q_head && S.bst.active < S.bst.slots) {
            job *j = S.q_head;
            S.q_head = j->next;
            if (!S.q_head)
                S.q_tail = NULL;
            S.q_len--;
            atomic_fetch_sub(&S.queued, 1);
            j->started = true;
            ms_callbacks cb = {on_text, on_token, NULL, on_cancel, j->col};
            int rc = ms_batch_submit(S.batch, j->ids, j->n, &j->rq->go, &cb, job_done, j->err,
                                     sizeof j->err);
            if (rc) {
                j->rc = rc;
                j->done = true;
                pthread_cond_broadcast(&S.done_cv);
            }
            ms_batch_get_stats(S.batch, &S.bst);
        }
        if (!S.bst.active) {
            if (S.sched_stop)
                break;
            pthread_cond_wait(&S.q_cv, &S.q_mu);
            continue;
        }
        pthread_mutex_unlock(&S.q_mu);
        ms_batch_step(S.batch); /* callbacks run here, without q_mu */
        pthread_mutex_lock(&S.q_mu);
        ms_batch_get_stats(S.batch, &S.bst);
        atomic_store(&S.active, S.bst.active);
    }
    pthread_mutex_unlock(&S.q_mu);
    return NULL;
}

/* Takes j out of the queue if it is still there (q_mu held). */
static bool queue_remove(job *j)
{
    for (job **p = &S.q_head, *prev = NULL; *p; prev = *p, p = &(*p)->next)
        if (*p == j) {
            *p = j->next;
            if (S.q_tail == j)
                S.q_tail = prev;
            S.q_len--;
            atomic_fetch_sub(&S.queued, 1);
            return true;
        }
    return false;
}

/* Runs one request's prompt ids through the scheduler: queued (refused
 * with -EAGAIN when --queue are waiting already), then generated with up to
 * --parallel others.  -ETIMEDOUT when the deadline passed, in the queue or
 * while generating; -ECANCELED when the client left in the queue. */
static int generate(const request *rq, const int32_t *ids, size_t n, collect *col,
                    ms_gen_result *res, char *err, size_t errlen)
{
    job j = {rq, ids, n, col, {0}, 0, "", false, false, NULL};
    col->job = &j;
    pthread_mutex_lock(&S.q_mu);
    if (S.q_len >= S.q_max && (S.q_head || S.bst.active >= S.bst.slots)) {
        const int act = S.bst.active;
        const long ql = S.q_len;
        pthread_mutex_unlock(&S.q_mu);
        snprintf(err, errlen, "server busy: %d requests generating and %ld waiting (--parallel %d, "
                              "--queue %ld); retry later", act, ql, S.bst.slots, S.q_max);
        return -EAGAIN;
    }
    if (S.q_tail)
        S.q_tail->next = &j;
    else
        S.q_head = &j;
    S.q_tail = &j;
    S.q_len++;
    atomic_fetch_add(&S.queued, 1);
    pthread_cond_signal(&S.q_cv);
    int wrc = 0;
    while (!j.done) {
        const double now = wall_s(), until = now + 0.1;
        struct timespec dl = {(time_t)until, (long)((until - (double)(time_t)until) * 1e9)};
        pthread_cond_timedwait(&S.done_cv, &S.q_mu, &dl);
        if (j.started || j.done)
            continue;
        /* still waiting for a slot */
        if (wall_s() >= col->deadline)
            wrc = -ETIMEDOUT;
        else if (*col->cancel || peer_gone(col->fd) || atomic_load(&S.abort_all))
            wrc = -ECANCELED;
        if (wrc && queue_remove(&j))
            break;
        wrc = 0;
    }
    pthread_mutex_unlock(&S.q_mu);
    if (wrc == -ETIMEDOUT) {
        snprintf(err, errlen, "request timed out after %g s waiting in the queue (--timeout)", S.timeout_s);
        return -ETIMEDOUT;
    }
    if (wrc) {
        snprintf(err, errlen, "request cancelled while waiting in the queue (the client left)");
        return wrc;
    }
    int rc = j.rc;
    if (rc) {
        snprintf(err, errlen, "%s", j.err);
        return rc;
    }
    *res = j.res;
    if (col->timed_out && !strcmp(res->finish, "cancelled")) { /* not one that ended anyway */
        snprintf(err, errlen, "request stopped after the --timeout of %g s (%d tokens generated)",
                 S.timeout_s, res->n_gen);
        return -ETIMEDOUT;
    }
    atomic_fetch_add(&S.tokens_in, res->n_prompt);
    atomic_fetch_add(&S.tokens_out, res->n_gen);
    atomic_fetch_add(&S.gen_us, (long long)(res->t_gen_s * 1e6));
    return 0;
}

/* The status, OpenAI error type and code for a failed generation. */
static unsigned gen_status(int rc, const char **type, const char **code)
{
    *type = rc == -E2BIG ? "invalid_request_error" : rc == -EAGAIN ? "rate_limit_error" : "server_error";
    *code = rc == -E2BIG     ? "context_length_exceeded"
            : rc == -ETIMEDOUT ? "timeout"
            : rc == -EAGAIN    ? "queue_full"
                               : NULL;
    /* 499: the client left while queued (nginx's code; nobody reads it) */
    return rc == -E2BIG ? 400 : rc == -ETIMEDOUT ? 504 : rc == -ECANCELED ? 499 : rc == -EAGAIN ? 429 : 500;
}

static void *stream_main(void *arg)
{
    conn *cn = arg;
    collect col = {STRBUF_INIT, STRBUF_INIT, cn, &cn->cancel, cn->deadline, false, cn->fd, NULL};
    ms_gen_result res;
    char err[512];
    bool usage = cn->rq.include_usage;
    int rc = generate(&cn->rq, cn->ids, cn->n_ids, &col, &res, err, sizeof err);
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
    if (!rc) { /* for the request log line */
        cn->n_prompt = res.n_prompt;
        cn->n_gen = res.n_gen;
    }
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
    conn_touch(cn->mc); /* the wait was ours, not the client's inactivity */
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
    ms_free(cn->ids);
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
    char buf[4096];
    ms_stats ps;
    ms_engine_stats(S.e, &ps);
    pthread_mutex_lock(&S.q_mu);
    const ms_batch_stats b = S.bst;
    const long waiting = S.q_len;
    pthread_mutex_unlock(&S.q_mu);
    long out = atomic_load(&S.tokens_out);
    long long gen_us = atomic_load(&S.gen_us);
    snprintf(buf, sizeof buf,
             "# TYPE moestream_requests_total counter\nmoestream_requests_total %ld\n"
             "# TYPE moestream_request_errors_total counter\nmoestream_request_errors_total %ld\n"
             "# TYPE moestream_prompt_tokens_total counter\nmoestream_prompt_tokens_total %ld\n"
             "# TYPE moestream_generated_tokens_total counter\nmoestream_generated_tokens_total %ld\n"
             "# TYPE moestream_generation_tokens_per_second gauge\nmoestream_generation_tokens_per_second %.3f\n"
             "# HELP moestream_queue_depth requests waiting for a free sequence (--queue at most)\n"
             "# TYPE moestream_queue_depth gauge\nmoestream_queue_depth %ld\n"
             "# HELP moestream_active_requests requests generating now (--parallel at most)\n"
             "# TYPE moestream_active_requests gauge\nmoestream_active_requests %d\n"
             "# HELP moestream_active_sequences sequences in the batch now (prompt or decoding)\n"
             "# TYPE moestream_active_sequences gauge\nmoestream_active_sequences %d\n"
             "# TYPE moestream_parallel gauge\nmoestream_parallel %d\n"
             "# TYPE moestream_decoding_sequences gauge\nmoestream_decoding_sequences %d\n"
             "# HELP moestream_step_tokens tokens the last batch step evaluated\n"
             "# TYPE moestream_step_tokens gauge\nmoestream_step_tokens %d\n"
             "# TYPE moestream_step_sequences gauge\nmoestream_step_sequences %d\n"
             "# TYPE moestream_steps_total counter\nmoestream_steps_total %llu\n"
             "# HELP moestream_step_tokens_total tokens evaluated by all steps (prompt and generated)\n"
             "# TYPE moestream_step_tokens_total counter\nmoestream_step_tokens_total %llu\n"
             "# HELP moestream_prompt_tokens_evaluated_total prompt tokens evaluated (a reused "
             "prefix is not)\n"
             "# TYPE moestream_prompt_tokens_evaluated_total counter\n"
             "moestream_prompt_tokens_evaluated_total %llu\n"
             "# HELP moestream_batch_tokens_per_second tokens generated per second of stepping, all "
             "sequences together\n"
             "# TYPE moestream_batch_tokens_per_second gauge\nmoestream_batch_tokens_per_second %.3f\n"
             "# TYPE moestream_expert_cache_hits_total counter\nmoestream_expert_cache_hits_total %llu\n"
             "# TYPE moestream_expert_cache_misses_total counter\nmoestream_expert_cache_misses_total %llu\n"
             "# TYPE moestream_expert_bytes_read_total counter\nmoestream_expert_bytes_read_total %llu\n"
             "# TYPE moestream_peak_rss_bytes gauge\nmoestream_peak_rss_bytes %llu\n",
             atomic_load(&S.requests), atomic_load(&S.errors), atomic_load(&S.tokens_in), out,
             gen_us > 0 ? (double)out / ((double)gen_us / 1e6) : 0.0, waiting, b.active, b.active,
             b.slots, b.decoding, b.last_step_tokens, b.last_step_seqs, (unsigned long long)b.steps,
             (unsigned long long)b.tokens, (unsigned long long)b.prompt_tokens,
             b.step_s > 0 ? (double)b.generated / b.step_s : 0.0, (unsigned long long)ps.hits, (unsigned long long)ps.misses,
             (unsigned long long)ps.bytes_read, (unsigned long long)ps.peak_rss);
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(buf), buf, MHD_RESPMEM_MUST_COPY);
    MHD_add_response_header(r, "Content-Type", "text/plain; version=0.0.4");
    return respond(c, 200, r);
}

/* Once the prompt is rendered, the tokenizer's scratch is gone: a request
 * waiting in the queue or generating (minutes) keeps only its parsed body
 * (about twice the body), its ids and the reply, so it hands the rest of
 * its share back for other requests to be read and tokenized. */
static void mem_after_render(conn *cn)
{
    const size_t body = cn->body.n;
    strbuf_free(&cn->body); /* parsed: req holds what is used */
    uint64_t keep = request_mem_cost(0) + 2 * (uint64_t)body + 4 * (uint64_t)cn->n_ids;
    if (keep < cn->mem) {
        mem_release(cn->mem - keep);
        cn->mem = keep;
    }
}

/* A failed generation as an OpenAI error response; param: the field a
 * prompt over the context came from. */
static enum MHD_Result send_gen_error(struct MHD_Connection *c, int rc, const char *err,
                                      const char *param)
{
    const char *type, *code;
    unsigned status = gen_status(rc, &type, &code);
    return send_error_param(c, status, type, err, code, rc == -E2BIG ? param : NULL);
}

static enum MHD_Result chat_completions(struct MHD_Connection *c, conn *cn)
{
    json_error_t je;
    json_t *req = json_loadb(strbuf_str(&cn->body), cn->body.n, 0, &je);
    if (!req)
        return send_error(c, 400, "invalid_request_error", "the body is not valid JSON", "invalid_json");
    ms_gen_opts base;
    ms_gen_opts_default(&base);
    base.n_predict = 4096;
    char bad[256];
    if (request_parse_chat(&cn->rq, req, &base, bad, sizeof bad)) {
        json_decref(req);
        return send_error_param(c, 400, "invalid_request_error", bad, "invalid_request", cn->rq.param);
    }
    snprintf(cn->id, sizeof cn->id, "chatcmpl-%ld-%ld", (long)time(NULL), atomic_load(&S.requests));
    char err[512];
    /* rendered here, so a prompt over the context is a 400 before any stream starts */
    int rc = render(&cn->rq, &cn->ids, &cn->n_ids, err, sizeof err);
    if (rc) {
        json_decref(req);
        return send_gen_error(c, rc, err, "messages");
    }
    mem_after_render(cn);
    if (cn->rq.stream) {
        cn->req = req;
        cn->streaming = true;
        pthread_mutex_init(&cn->mu, NULL);
        pthread_cond_init(&cn->cv, NULL);
        /* the first chunk names the role, as OpenAI's streams do */
        sse_json(cn, json_pack("{s:s,s:s,s:I,s:s,s:[{s:i,s:{s:s,s:s},s:n}]}", "id", cn->id, "object",
                               "chat.completion.chunk", "created", (json_int_t)time(NULL), "model",
                               S.model_name, "choices", "index", 0, "delta", "role", "assistant",
                               "content", "", "finish_reason"));
        if (pthread_create(&cn->th, NULL, stream_main, cn)) {
            return send_error(c, 500, "server_error", "cannot start the generation", NULL);
        }
        cn->started = true;
        atomic_store(&cn->refs, 2);
        struct MHD_Response *r =
            MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, stream_reader, cn, stream_free);
        MHD_add_response_header(r, "Content-Type", "text/event-stream");
        MHD_add_response_header(r, "Cache-Control", "no-cache");
        return respond(c, 200, r);
    }
    collect col = {STRBUF_INIT, STRBUF_INIT, NULL, &cn->cancel, cn->deadline, false, cn->fd, NULL};
    ms_gen_result res;
    rc = generate(&cn->rq, cn->ids, cn->n_ids, &col, &res, err, sizeof err);
    json_decref(req);
    if (rc) {
        strbuf_free(&col.ans);
        strbuf_free(&col.rsn);
        return send_gen_error(c, rc, err, NULL);
    }
    cn->n_prompt = res.n_prompt;
    cn->n_gen = res.n_gen;
    char *ans = ms_utf8_sanitize(strbuf_str(&col.ans), col.ans.n);
    json_t *msg = json_pack("{s:s,s:s}", "role", "assistant", "content", ans);
    free(ans);
    if (col.rsn.n) {
        char *rs = ms_utf8_sanitize(col.rsn.s, col.rsn.n);
        json_object_set_new(msg, "reasoning_content", json_string(rs));
        free(rs);
    }
    strbuf_free(&col.ans);
    strbuf_free(&col.rsn);
    return send_json(c, 200,
                     json_pack("{s:s,s:s,s:I,s:s,s:s,s:[{s:i,s:o,s:s}],s:{s:i,s:i,s:i},s:o}", "id", cn->id,
                               "object", "chat.completion", "created", (json_int_t)time(NULL),
                               "model", S.model_name, "system_fingerprint", S.fingerprint, "choices", "index", 0, "message", msg,
                               "finish_reason", !strcmp(res.finish, "length") ? "length" : "stop",
                               "usage", "prompt_tokens", res.n_prompt, "completion_tokens",
                               res.n_gen, "total_tokens", res.n_prompt + res.n_gen, "timings", timings_json(&res)));
}

/* Plain completion: the prompt is tokenized as is (BOS added, control
 * tokens parsed, no chat template); non-streaming. */
static enum MHD_Result completions(struct MHD_Connection *c, conn *cn)
{
    json_t *req = json_loadb(strbuf_str(&cn->body), cn->body.n, 0, NULL);
    if (!req)
        return send_error(c, 400, "invalid_request_error", "the body is not valid JSON", "invalid_json");
    ms_gen_opts base;
    ms_gen_opts_default(&base);
    base.n_predict = 16; /* the OpenAI default for completions */
    base.reasoning = false;
    char bad[256];
    if (request_parse_completion(&cn->rq, req, &base, bad, sizeof bad)) {
        json_decref(req);
        return send_error_param(c, 400, "invalid_request_error", bad, "invalid_request", cn->rq.param);
    }
    collect col = {STRBUF_INIT, STRBUF_INIT, NULL, &cn->cancel, cn->deadline, false, cn->fd, NULL};
    ms_gen_result res;
    char err[512];
    int rc = render(&cn->rq, &cn->ids, &cn->n_ids, err, sizeof err);
    if (rc) {
        json_decref(req);
        return send_gen_error(c, rc, err, "prompt");
    }
    mem_after_render(cn);
    rc = generate(&cn->rq, cn->ids, cn->n_ids, &col, &res, err, sizeof err);
    json_decref(req);
    if (rc) {
        strbuf_free(&col.ans);
        strbuf_free(&col.rsn);
        return send_gen_error(c, rc, err, NULL);
    }
    cn->n_prompt = res.n_prompt;
    cn->n_gen = res.n_gen;
    char *text = ms_utf8_sanitize(strbuf_str(&col.ans), col.ans.n);
    strbuf_free(&col.ans);
    strbuf_free(&col.rsn);
    char id[64];
    snprintf(id, sizeof id, "cmpl-%ld-%ld", (long)time(NULL), atomic_load(&S.requests));
    json_t *out = json_pack("{s:s,s:s,s:I,s:s,s:s,s:[{s:s,s:i,s:n,s:s}],s:{s:i,s:i,s:i},s:o}", "id", id,
                            "object", "text_completion", "created", (json_int_t)time(NULL), "model",
                            S.model_name, "system_fingerprint", S.fingerprint, "choices", "text", text, "index", 0, "logprobs",
                            "finish_reason", !strcmp(res.finish, "length") ? "length" : "stop",
                            "usage", "prompt_tokens", res.n_prompt, "completion_tokens", res.n_gen,
                            "total_tokens", res.n_prompt + res.n_gen, "timings", timings_json(&res));
    free(text);
    return send_json(c, 200, out);
}

/* /tokenize: the ids written straight into the response text (a JSON array
 * of jansson integers would take ~50 bytes a token). */
static enum MHD_Result tokenize(struct MHD_Connection *c, conn *cn)
{
    json_t *req = json_loadb(strbuf_str(&cn->body), cn->body.n, 0, NULL);
    const char *text = json_string_value(json_object_get(req, "content"));
    if (!text) {
        json_decref(req);
        return send_error_param(c, 400, "invalid_request_error", "need {\"content\": string}",
                                "invalid_request", "content");
    }
    int32_t *ids;
    size_t n;
    int rc = ms_tokenize(ms_engine_vocab(S.e), text, json_string_length(json_object_get(req, "content")),
                         MS_TOK_NO_ADDED, &ids, &n);
    json_decref(req);
    if (rc)
        return send_error(c, 500, "server_error", "out of memory", NULL);
    const size_t cap = 16 + n * 12; /* "-2147483648," at most per id */
    char *out = malloc(cap);
    if (!out) {
        ms_free(ids);
        return send_error(c, 500, "server_error", "out of memory", NULL);
    }
    size_t o = (size_t)snprintf(out, cap, "{\"tokens\":[");
    for (size_t i = 0; i < n; i++)
        o += (size_t)snprintf(out + o, cap - o, i ? ",%d" : "%d", ids[i]);
    o += (size_t)snprintf(out + o, cap - o, "]}");
    ms_free(ids);
    struct MHD_Response *r = MHD_create_response_from_buffer(o, out, MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header(r, "Content-Type", "application/json");
    return respond(c, 200, r);
}

/* /detokenize: {"tokens": [ids]} -> {"content": text}, the ids' pieces
 * joined (invalid UTF-8 replaced, as in the completions). */
static enum MHD_Result detokenize(struct MHD_Connection *c, conn *cn)
{
    json_t *req = json_loadb(strbuf_str(&cn->body), cn->body.n, 0, NULL);
    json_t *toks = json_object_get(req, "tokens");
    if (!json_is_array(toks)) {
        json_decref(req);
        return send_error_param(c, 400, "invalid_request_error", "need {\"tokens\": [ids]}",
                                "invalid_request", "tokens");
    }
    const ms_vocab *v = ms_engine_vocab(S.e);
    const json_int_t n_vocab = (json_int_t)ms_vocab_size(v);
    strbuf text = STRBUF_INIT;
    char piece[256];
    for (size_t i = 0; i < json_array_size(toks); i++) {
        json_t *t = json_array_get(toks, i);
        if (!json_is_integer(t) || json_integer_value(t) < 0 || json_integer_value(t) >= n_vocab) {
            char msg[128];
            snprintf(msg, sizeof msg, "tokens[%zu] is not a token id in [0, %lld)", i, (long long)n_vocab);
            json_decref(req);
            strbuf_free(&text);
            return send_error_param(c, 400, "invalid_request_error", msg, "invalid_request", "tokens");
        }
        size_t k = ms_token_piece(v, (int32_t)json_integer_value(t), piece, sizeof piece);
        if (strbuf_append(&text, piece, k < sizeof piece ? k : sizeof piece)) {
            json_decref(req);
            strbuf_free(&text);
            return send_error(c, 500, "server_error", "out of memory", NULL);
        }
    }
    json_decref(req);
    char *clean = ms_utf8_sanitize(strbuf_str(&text), text.n);
    strbuf_free(&text);
    json_t *out = json_pack("{s:s}", "content", clean);
    free(clean);
    return send_json(c, 200, out);
}

/* GET /: what answers here, for a person or a probe that found the port.
 * Needs no key; the model's name is shown only when no key guards the
 * server. */
static enum MHD_Result about(struct MHD_Connection *c)
{
    json_t *j = json_pack("{s:s,s:s,s:s,s:[s,s,s,s,s,s,s,s]}", "name", "moestream", "version",
                          cli_version(), "status",
                          atomic_load(&S.loading) ? "loading" : atomic_load(&S.draining) ? "draining" : "ok",
                          "endpoints", "POST /v1/chat/completions", "POST /v1/completions",
                          "GET /v1/models", "POST /tokenize", "POST /detokenize", "GET /health",
                          "GET /metrics", "GET /");
    if (j && !S.api_key)
        json_object_set_new(j, "model", json_string(S.model_name));
    return send_json(c, 200, j);
}

/* Whether the Authorization header is "Bearer <key>": the key's bytes are
 * all compared whatever the header holds, so the time taken says nothing
 * about how much of it matched. */
static bool authorized(struct MHD_Connection *c)
{
    const char *auth = NULL;
    size_t n = 0;
    if (MHD_lookup_connection_value_n(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION,
                                      strlen(MHD_HTTP_HEADER_AUTHORIZATION), &auth, &n) != MHD_YES)
        auth = NULL;
    const char *got = "";
    size_t ng = 0;
    if (auth && n >= 7 && !strncasecmp(auth, "Bearer ", 7)) {
        got = auth + 7;
        ng = n - 7;
    }
    volatile unsigned char d = ng != S.api_key_len;
    for (size_t i = 0; i < S.api_key_len; i++)
        d |= (unsigned char)(S.api_key[i] ^ (i < ng ? got[i] : 0));
    return auth && d == 0;
}

/* The endpoints and the one method each takes. */
static const struct route {
    const char *url, *method;
} routes[] = {
    {"/health", "GET"},  {"/metrics", "GET"},
    {"/v1/models", "GET"}, {"/v1/chat/completions", "POST"},
    {"/v1/completions", "POST"}, {"/tokenize", "POST"},
    {"/detokenize", "POST"}, {"/", "GET"},
};

static enum MHD_Result route(struct MHD_Connection *c, conn *cn, const char *url, const char *method)
{
    atomic_fetch_add(&S.requests, 1);
    if (!strcmp(method, "OPTIONS"))
        return preflight(c);
    const struct route *rt = NULL;
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++)
        if (!strcmp(url, routes[i].url))
            rt = &routes[i];
    if (!rt)
        return send_error(c, 404, "invalid_request_error", "no such endpoint", "not_found");
    if (strcmp(method, rt->method)) {
        char msg[96];
        snprintf(msg, sizeof msg, "%s takes %s only", rt->url, rt->method);
        atomic_fetch_add(&S.errors, 1);
        struct MHD_Response *r;
        char *s = json_dumps(json_pack("{s:{s:s,s:s,s:n,s:s}}", "error", "message", msg, "type",
                                       "invalid_request_error", "param", "code", "method_not_allowed"),
                             JSON_COMPACT);
        r = MHD_create_response_from_buffer(strlen(s), s, MHD_RESPMEM_MUST_FREE);
        MHD_add_response_header(r, "Content-Type", "application/json");
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, rt->method);
        return respond(c, 405, r);
    }
    if (cn->too_big)
        return send_error(c, 413, "invalid_request_error", "request body over 1 MB", "body_too_large");
    if (cn->oom)
        return send_error(c, 500, "server_error", "out of memory reading the request body", NULL);
    if (!strcmp(url, "/health")) {
        if (atomic_load(&S.loading))
            return send_json(c, 503, json_pack("{s:s}", "status", "loading"));
        if (atomic_load(&S.draining))
            return send_json(c, 503, json_pack("{s:s}", "status", "draining"));
        return send_json(c, 200, json_pack("{s:s}", "status", "ok"));
    }
    if (!strcmp(url, "/metrics"))
        return metrics(c);
    if (!strcmp(url, "/"))
        return about(c);
    if (S.api_key && !authorized(c))
        return send_error(c, 401, "invalid_request_error", "incorrect API key", "invalid_api_key");
    if (atomic_load(&S.loading))
        return send_error(c, 503, "server_error", "the model is still loading", NULL);
    if (atomic_load(&S.draining))
        return send_error(c, 503, "server_error", "the server is shutting down", "shutting_down");
    if (cn->mem_fail)
        return send_error(c, 503, "server_error",
                          "no room in the request memory budget before --timeout", "server_busy");
    if (!strcmp(url, "/v1/models"))
        return send_json(c, 200, json_pack("{s:s,s:[{s:s,s:s,s:I,s:s}]}", "object", "list", "data",
                                           "id", S.model_name, "object", "model", "created",
                                           S.created, "owned_by", "moestream"));
    if (!strcmp(url, "/v1/chat/completions"))
        return chat_completions(c, cn);
    if (!strcmp(url, "/v1/completions"))
        return completions(c, cn);
    if (!strcmp(url, "/detokenize"))
        return detokenize(c, cn);
    return tokenize(c, cn);
}

/* The first call of a request (its headers are in): a request with a body
 * takes its share of the request memory budget now, before the body is
 * read, all at once (a request never holds part of the budget while it
 * waits for more, so requests cannot deadlock on it). */
static void request_begin(struct MHD_Connection *c, conn *cn, const char *url, const char *method)
{
    cn->mc = c;
    cn->t0 = mono_s();
    snprintf(cn->method, sizeof cn->method, "%s", method);
    snprintf(cn->path, sizeof cn->path, "%s", url);
    cn->deadline = wall_s() + S.timeout_s;
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    cn->fd = ci ? ci->connect_fd : -1;
    if (!strcmp(method, "GET") || !strcmp(method, "HEAD") || !strcmp(method, "OPTIONS"))
        return;
    const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    unsigned long long len = MAX_BODY; /* chunked: as much as may come */
    if (cl) {
        char *end;
        errno = 0;
        len = strtoull(cl, &end, 10);
        if (errno || end == cl)
            len = MAX_BODY;
    }
    if (len > MAX_BODY) {
        cn->too_big = true; /* 413 without reading it into memory */
        return;
    }
    if (len == 0)
        return;
    watch *w = conn_watch(c);
    watch_busy(w, true);
    uint64_t cost = request_mem_cost((size_t)len);
    if (mem_acquire(cost, cn->deadline))
        cn->mem = cost;
    else
        cn->mem_fail = true;
    watch_busy(w, false); /* the body has --idle-timeout from now to arrive */
    conn_touch(c);
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
        request_begin(c, cn, url, method);
        return MHD_YES;
    }
    if (*upload_size) { /* body arrives in pieces */
        if (cn->body.n + *upload_size > MAX_BODY)
            cn->too_big = true;
        else if (!cn->mem_fail && !cn->too_big && strbuf_append(&cn->body, upload, *upload_size))
            cn->oom = true;
        *upload_size = 0;
        return MHD_YES;
    }
    watch_busy(conn_watch(c), true);
    cn->counted = true;
    atomic_fetch_add(&S.inflight, 1);
    enum MHD_Result ret = route(c, cn, url, method);
    conn_touch(c); /* generating was not the client's inactivity */
    return ret;
}

/* The request log: one line on stderr per request when its response is
 * done (or the client left), with time (UTC), client, method, path, status,
 * prompt and generated tokens and duration; --log-format json writes the
 * same as one JSON object a line.  One fprintf a line: stdio's lock keeps
 * the lines of concurrent requests whole. */
static void log_request(struct MHD_Connection *c, conn *cn, enum MHD_RequestTerminationCode t)
{
    if (S.log_off)
        return;
    const union MHD_ConnectionInfo *si = MHD_get_connection_info(c, MHD_CONNECTION_INFO_HTTP_STATUS);
    const unsigned status = si ? si->http_status : 0;
    int n_prompt = cn->n_prompt, n_gen = cn->n_gen;
    if (cn->streaming) {
        pthread_mutex_lock(&cn->mu);
        n_prompt = cn->n_prompt;
        n_gen = cn->n_gen;
        pthread_mutex_unlock(&cn->mu);
    }
    char client[INET6_ADDRSTRLEN + 8] = "-";
    const union MHD_ConnectionInfo *ai = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (ai && ai->client_addr) {
        const struct sockaddr *sa = ai->client_addr;
        socklen_t len = sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
        if (getnameinfo(sa, len, client, sizeof client, NULL, 0, NI_NUMERICHOST))
            snprintf(client, sizeof client, "-");
        if (!strncmp(client, "::ffff:", 7) && strchr(client + 7, '.')) /* IPv4 on a dual-stack socket */
            memmove(client, client + 7, strlen(client + 7) + 1);
    }
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    struct tm tm;
    gmtime_r(&now.tv_sec, &tm);
    char when[80];
    snprintf(when, sizeof when, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, now.tv_nsec / 1000000);
    const double dur = mono_s() - cn->t0;
    const bool left = t != MHD_REQUEST_TERMINATED_COMPLETED_OK;
    if (S.log_json) {
        json_t *j = json_pack("{s:s,s:s,s:s,s:s,s:i,s:i,s:i,s:f}", "time", when, "client", client,
                              "method", cn->method, "path", cn->path, "status", (int)status,
                              "prompt_tokens", n_prompt, "completion_tokens", n_gen, "duration_s",
                              dur);
        if (j && left)
            json_object_set_new(j, "incomplete", json_true());
        char *line = j ? json_dumps(j, JSON_COMPACT | JSON_ENSURE_ASCII | JSON_REAL_PRECISION(4)) : NULL;
        json_decref(j);
        if (line)
            fprintf(stderr, "%s\n", line);
        free(line);
        return;
    }
    char path[sizeof cn->path];
    size_t i = 0;
    for (; cn->path[i]; i++) /* the path is the client's: no control bytes in our log */
        path[i] = (unsigned char)cn->path[i] < 0x21 || cn->path[i] == 0x7f ? '?' : cn->path[i];
    path[i] = 0;
    fprintf(stderr, "%s %s %s %s %u prompt=%d gen=%d %.3fs%s\n", when, client, cn->method, path, status,
            n_prompt, n_gen, dur, left ? " incomplete" : "");
}

static void completed(void *cls, struct MHD_Connection *c, void **ptr, enum MHD_RequestTerminationCode t)
{
    (void)cls;
    conn *cn = *ptr;
    *ptr = NULL;
    watch_busy(conn_watch(c), false); /* --idle-timeout for the next request */
    if (!cn)
        return;
    log_request(c, cn, t);
    mem_release(cn->mem);
    cn->mem = 0;
    if (cn->counted)
        atomic_fetch_sub(&S.inflight, 1);
    if (!cn->started || atomic_fetch_sub(&cn->refs, 1) == 1)
        conn_free(cn);
}

/* The API key from --api-key, --api-key-file or MOESTREAM_API_KEY (in that
 * order).  A file's one trailing newline is dropped.  An empty key, or one
 * with bytes no HTTP header can carry, is refused: 0 or -EINVAL (message
 * printed).  *owned: what to free. */
static int api_key_setup(const char *arg, const char *file, char **owned)
{
    *owned = NULL;
    const char *key = arg, *from = "--api-key";
    if (arg && file) {
        fprintf(stderr, "moestream serve: give --api-key or --api-key-file, not both\n");
        return -EINVAL;
    }
    if (file) {
        if (!(*owned = cli_read_file(file))) {
            fprintf(stderr, "moestream serve: cannot read --api-key-file %s: %s\n", file, strerror(errno));
            return -EINVAL;
        }
        size_t l = strlen(*owned);
        if (l && (*owned)[l - 1] == '\n')
            (*owned)[--l] = 0;
        if (l && (*owned)[l - 1] == '\r')
            (*owned)[--l] = 0;
        key = *owned;
        from = "--api-key-file";
    } else if (!arg && getenv("MOESTREAM_API_KEY")) {
        key = getenv("MOESTREAM_API_KEY");
        from = "MOESTREAM_API_KEY";
    }
    if (!key)
        return 0;
    if (!key[0]) {
        fprintf(stderr, "moestream serve: the API key from %s is empty; refusing to start\n", from);
        return -EINVAL;
    }
    for (const unsigned char *p = (const unsigned char *)key; *p; p++)
        if (*p < 0x20 || *p == 0x7f) {
            fprintf(stderr, "moestream serve: the API key from %s has a control character (byte "
                            "%ld), which no HTTP header can carry\n", from, (long)(p - (const unsigned char *)key));
            return -EINVAL;
        }
    S.api_key = key;
    S.api_key_len = strlen(key);
    return 0;
}

/* Room for every connection the server may hold: raise the soft limit on
 * open files toward the hard one.  Returns the connections that fit. */
static unsigned fd_room(unsigned want)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl))
        return want;
    const rlim_t need = (rlim_t)want + 64; /* model files, io_uring, stdio */
    if (rl.rlim_cur < need) {
        rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= need ? need : rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need)
        return rl.rlim_cur > 128 ? (unsigned)(rl.rlim_cur - 64) : 64;
    return want;
}

/* ---- listening ---- */

#define MAX_LISTEN 8 /* addresses of one --host */

/* --host into the addresses to listen on: a numeric IPv4 or IPv6 address
 * (brackets allowed around IPv6) or a name, which resolves to each of its
 * addresses.  0 or -EINVAL (message printed); *out for freeaddrinfo. */
static int resolve_host(const char *host, unsigned port, struct addrinfo **out)
{
    char h[256], ps[8];
    size_t n = strlen(host);
    if (n >= 2 && host[0] == '[' && host[n - 1] == ']' && n - 2 < sizeof h)
        snprintf(h, sizeof h, "%.*s", (int)(n - 2), host + 1);
    else
        snprintf(h, sizeof h, "%s", host);
    snprintf(ps, sizeof ps, "%u", port);
    struct addrinfo hints = {0};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    int rc = getaddrinfo(h, ps, &hints, out);
    if (rc) {
        fprintf(stderr, "moestream serve: --host %s: %s\n", host, gai_strerror(rc));
        return -EINVAL;
    }
    return 0;
}

/* One daemon per address of ais (duplicates skipped), all sharing the
 * handlers and S.  "::" listens on IPv4 too (dual stack), as it does for
 * most servers; every other IPv6 address is IPv6 only, so a name that
 * resolves to both 0.0.0.0 and :: can bind both.  A name binds what it can
 * (each failure printed; a numeric --host has one address).  Returns how
 * many daemons run (0: message printed). */
static size_t listen_all(const struct addrinfo *ais, const char *host, unsigned conns,
                         unsigned per_addr, struct MHD_Daemon **ds)
{
    size_t n = 0, tried = 0;
    for (const struct addrinfo *a = ais; a && n < MAX_LISTEN; a = a->ai_next) {
        if (a->ai_family != AF_INET && a->ai_family != AF_INET6)
            continue;
        bool dup = false;
        for (const struct addrinfo *b = ais; b != a; b = b->ai_next)
            dup |= b->ai_addrlen == a->ai_addrlen && !memcmp(b->ai_addr, a->ai_addr, a->ai_addrlen);
        if (dup)
            continue;
        tried++;
        unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ITC |
                         MHD_USE_ERROR_LOG;
        if (a->ai_family == AF_INET6) {
            const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)a->ai_addr;
            flags |= IN6_IS_ADDR_UNSPECIFIED(&s6->sin6_addr) ? MHD_USE_DUAL_STACK : MHD_USE_IPv6;
        }
        const uint16_t port = ntohs(a->ai_family == AF_INET6 ? ((const struct sockaddr_in6 *)a->ai_addr)->sin6_port
                                                             : ((const struct sockaddr_in *)a->ai_addr)->sin_port);
        struct MHD_Daemon *d = MHD_start_daemon(
            flags, port, NULL, NULL, handler, NULL, MHD_OPTION_SOCK_ADDR, a->ai_addr,
            MHD_OPTION_NOTIFY_COMPLETED, completed, NULL, MHD_OPTION_NOTIFY_CONNECTION, on_connection,
            NULL, MHD_OPTION_CONNECTION_LIMIT, conns, MHD_OPTION_PER_IP_CONNECTION_LIMIT, per_addr,
            MHD_OPTION_CONNECTION_TIMEOUT, S.idle_s, MHD_OPTION_END);
        char addr[INET6_ADDRSTRLEN] = "?";
        getnameinfo(a->ai_addr, a->ai_addrlen, addr, sizeof addr, NULL, 0, NI_NUMERICHOST);
        if (!d) {
            fprintf(stderr, "moestream serve: cannot listen on %s port %u (--host %s)\n", addr, port, host);
            continue;
        }
        ds[n++] = d;
    }
    if (!n && !tried)
        fprintf(stderr, "moestream serve: --host %s has no IPv4 or IPv6 address\n", host);
    return n;
}

int cmd_serve(int argc, char **argv)
{
    cli_common c;
    cli_common_default(&c);
    const char *host = "127.0.0.1", *key_arg = NULL, *key_file = NULL, *alias = NULL;
    S.cors = "*";
    long port = 8080, max_conn = 1024, per_addr = 256;
    S.q_max = 64;
    S.timeout_s = 600;
    S.idle_s = 15;
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
            key_arg = argv[++i];
        else if (!strcmp(argv[i], "--alias") && i + 1 < argc) {
            alias = argv[++i];
            if (!alias[0]) {
                fprintf(stderr, "moestream serve: --alias wants a non-empty name\n");
                return 2;
            }
        } else if (!strcmp(argv[i], "--cors-origins") && i + 1 < argc) {
            S.cors = argv[++i];
            if (!S.cors[0] || strpbrk(S.cors, "\r\n")) {
                fprintf(stderr, "moestream serve: --cors-origins wants *, localhost or a comma-separated "
                                "list of origins\n");
                return 2;
            }
        } else if (!strcmp(argv[i], "--log-format") && i + 1 < argc) {
            const char *f = argv[++i];
            if (strcmp(f, "text") && strcmp(f, "json")) {
                fprintf(stderr, "moestream serve: --log-format wants text or json (got %s)\n", f);
                return 2;
            }
            S.log_json = !strcmp(f, "json");
        } else if (!strcmp(argv[i], "--log-disable"))
            S.log_off = true;
        else if (!strcmp(argv[i], "--api-key-file") && i + 1 < argc)
            key_file = argv[++i];
        else if (!strcmp(argv[i], "--timeout") && i + 1 < argc) {
            long t;
            if (cli_parse_int(argv[++i], 1, 7 * 24 * 3600, &t)) {
                fprintf(stderr, "moestream serve: --timeout wants whole seconds in [1, 604800]\n");
                return 2;
            }
            S.timeout_s = (double)t;
        } else if (!strcmp(argv[i], "--idle-timeout") && i + 1 < argc) {
            long t;
            if (cli_parse_int(argv[++i], 1, 3600, &t)) {
                fprintf(stderr, "moestream serve: --idle-timeout wants whole seconds in [1, 3600]\n");
                return 2;
            }
            S.idle_s = (unsigned)t;
        } else if (!strcmp(argv[i], "--max-connections") && i + 1 < argc) {
            if (cli_parse_int(argv[++i], 1, 65536, &max_conn)) {
                fprintf(stderr, "moestream serve: --max-connections wants a count in [1, 65536]\n");
                return 2;
            }
        } else if (!strcmp(argv[i], "--queue") && i + 1 < argc) {
            if (cli_parse_int(argv[++i], 0, 1 << 20, &S.q_max)) {
                fprintf(stderr, "moestream serve: --queue wants a count in [0, 1048576]\n");
                return 2;
            }
        } else if (!strcmp(argv[i], "--max-per-address") && i + 1 < argc) {
            if (cli_parse_int(argv[++i], 1, 65536, &per_addr)) {
                fprintf(stderr, "moestream serve: --max-per-address wants a count in [1, 65536]\n");
                return 2;
            }
        } else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            printf("usage: moestream serve -m MODEL [--host 127.0.0.1] [--port 8080] [--api-key KEY | "
                   "--api-key-file FILE] [--timeout SECONDS] [--idle-timeout SECONDS] [options]\n"
                   "  --api-key KEY           require \"Authorization: Bearer KEY\" (also "
                   "MOESTREAM_API_KEY,\n"
                   "                          which keeps the key out of the command line)\n"
                   "  --api-key-file FILE     the key from FILE (one trailing newline dropped)\n"
                   "  --timeout SECONDS       stop a request this long after it arrived, queue "
                   "included (default 600);\n"
                   "                          SIGTERM waits this long at most for requests in flight\n"
                   "  --idle-timeout SECONDS  drop a connection that has not sent a complete request "
                   "this long\n"
                   "                          after opening or after its last response (default 15)\n"
                   "  --max-connections N     open connections at most (default 1024)\n"
                   "  --max-per-address N     open connections per client address at most (default "
                   "256)\n"
                   "  --host ADDR             an IPv4 or IPv6 address (:: listens on IPv6 and IPv4) or a "
                   "host name,\n"
                   "                          which listens on each of its addresses (default 127.0.0.1)\n"
                   "  --port PORT             TCP port (default 8080)\n"
                   "  --alias, -a NAME        the model id in responses and /v1/models (default: the "
                   "file name)\n"
                   "  --cors-origins ORIGINS  Access-Control-Allow-Origin: * (default, as llama-server), "
                   "localhost\n"
                   "                          (local origins only) or a comma-separated list of "
                   "origins\n"
                   "  --log-format text|json  the request log on stderr, one line per request (default "
                   "text)\n"
                   "  --log-disable           no request log\n"
                   "  --parallel, -np N       requests generated together (default 4, fewer when --mem\n"
                   "                          is too small for 4), continuous batching;\n"
                   "                          each has its own cache of -c positions (unlike\n"
                   "                          llama-server, where -c is split over the slots)\n"
                   "  --queue N               requests waiting for a free sequence at most (default\n"
                   "                          64); past that 429\n"
                   "  Endpoints: POST /v1/chat/completions (JSON or SSE), /v1/completions, /tokenize,\n"
                   "  /detokenize; GET /v1/models, /health, /metrics, /; OPTIONS anywhere (CORS preflight).\n%s",
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
    char *key_owned = NULL;
    if (api_key_setup(key_arg, key_file, &key_owned)) {
        free(key_owned);
        return 2;
    }
    struct addrinfo *ais = NULL;
    if (resolve_host(host, (unsigned)port, &ais)) {
        free(key_owned);
        return 2;
    }
    unsigned conns = fd_room((unsigned)max_conn);
    if (conns < (unsigned)max_conn)
        fprintf(stderr, "moestream serve: the open-file limit allows %u connections, not %ld\n", conns, max_conn);
    pthread_mutex_init(&S.q_mu, NULL);
    pthread_cond_init(&S.q_cv, NULL);
    pthread_cond_init(&S.done_cv, NULL);
    pthread_mutex_init(&S.mem_mu, NULL);
    pthread_cond_init(&S.mem_cv, NULL);
    pthread_mutex_init(&S.watch_mu, NULL);
    S.mem_budget = request_mem_budget();
    atomic_store(&S.loading, 1);
    S.model_name = alias ? alias : strrchr(c.model, '/') ? strrchr(c.model, '/') + 1 : c.model;
    struct stat mst;
    S.created = stat(c.model, &mst) == 0 ? (json_int_t)mst.st_mtime : (json_int_t)time(NULL);
    snprintf(S.fingerprint, sizeof S.fingerprint, "moestream-%s", cli_version());
    /* listen first, so /health answers 503 while the weights load */
    struct MHD_Daemon *ds[MAX_LISTEN];
    size_t n_d = listen_all(ais, host, conns, (unsigned)per_addr, ds);
    freeaddrinfo(ais);
    if (!n_d) {
        free(key_owned);
        return 1;
    }
    pthread_t reaper;
    bool have_reaper = pthread_create(&reaper, NULL, reaper_main, NULL) == 0;
    char err[512] = "";
    ms_engine_opts eo;
    cli_engine_opts(&c, &eo);
    eo.max_seqs = c.parallel > 0 ? c.parallel : 4;
    if (isatty(2))
        eo.on_load = cli_load_bar;
    int rc = ms_engine_open(&S.e, c.model, &eo, err, sizeof err);
    /* the default of 4 yields to a small --mem (the plan is refused before
     * any weight is read); a --parallel that was asked for does not */
    while (rc == -ENOMEM && c.parallel <= 0 && eo.max_seqs > 1) {
        eo.max_seqs--;
        rc = ms_engine_open(&S.e, c.model, &eo, err, sizeof err);
        if (!rc)
            fprintf(stderr, "moestream serve: --mem fits %d sequence%s of %d positions, not the "
                            "default 4: --parallel %d (give --parallel to insist)\n",
                    eo.max_seqs, eo.max_seqs == 1 ? "" : "s", eo.n_ctx, eo.max_seqs);
    }
    if (!rc)
        rc = ms_batch_create(S.e, eo.max_seqs, &S.batch, err, sizeof err);
    pthread_t sched;
    if (!rc) {
        ms_mem_plan plan;
        ms_engine_plan(S.e, &plan);
        S.n_ctx = plan.n_ctx;
        ms_batch_get_stats(S.batch, &S.bst);
        if (pthread_create(&sched, NULL, sched_main, NULL)) {
            snprintf(err, sizeof err, "cannot start the scheduler thread");
            rc = -EAGAIN;
        }
    }
    if (rc) {
        fprintf(stderr, "moestream serve: %s\n", err);
        atomic_store(&S.reaper_stop, 1);
        if (have_reaper)
            pthread_join(reaper, NULL);
        for (size_t k = 0; k < n_d; k++)
            MHD_stop_daemon(ds[k]);
        ms_batch_destroy(S.batch);
        ms_engine_close(S.e);
        free(key_owned);
        return 1;
    }
    atomic_store(&S.loading, 0);
    for (size_t k = 0; k < n_d; k++) {
        const union MHD_DaemonInfo *di = MHD_get_daemon_info(ds[k], MHD_DAEMON_INFO_LISTEN_FD);
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        char a[INET6_ADDRSTRLEN] = "?";
        if (di && !getsockname(di->listen_fd, (struct sockaddr *)&ss, &sl))
            getnameinfo((struct sockaddr *)&ss, sl, a, sizeof a, NULL, 0, NI_NUMERICHOST);
        fprintf(stderr, "moestream serve: listening on http://%s%s%s:%ld (model %s)\n",
                strchr(a, ':') ? "[" : "", a, strchr(a, ':') ? "]" : "", port, S.model_name);
    }
    struct sigaction sa = {0};
    sa.sa_handler = on_term;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    while (!quit)
        pause();
    /* drain: no new connections; requests in flight finish, each within its
     * own --timeout (so the wait is bounded by it) */
    atomic_store(&S.draining, 1);
    for (size_t k = 0; k < n_d; k++) {
        MHD_socket lfd = MHD_quiesce_daemon(ds[k]);
        if (lfd != MHD_INVALID_SOCKET)
            close(lfd);
    }
    const long pending = atomic_load(&S.inflight);
    fprintf(stderr, "moestream serve: stopping; %ld request%s in flight\n", pending, pending == 1 ? "" : "s");
    const double until = mono_s() + S.timeout_s + 5;
    while (atomic_load(&S.inflight) > 0 && mono_s() < until) {
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    int status = 0;
    if (atomic_load(&S.inflight) > 0) {
        fprintf(stderr, "moestream serve: %ld requests still running after --timeout; cancelling\n",
                atomic_load(&S.inflight));
        atomic_store(&S.abort_all, 1);
        status = 1;
    }
    atomic_store(&S.reaper_stop, 1);
    if (have_reaper)
        pthread_join(reaper, NULL);
    for (size_t k = 0; k < n_d; k++)
        MHD_stop_daemon(ds[k]);
    pthread_mutex_lock(&S.q_mu);
    S.sched_stop = true;
    pthread_cond_signal(&S.q_cv);
    pthread_mutex_unlock(&S.q_mu);
    pthread_join(sched, NULL);
    ms_batch_destroy(S.batch);
    ms_engine_close(S.e);
    free(key_owned);
    return status;
}
