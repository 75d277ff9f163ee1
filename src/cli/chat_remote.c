/* chat_remote.c - see chat_remote.h.
 * libcurl does the HTTP (chunked transfer, keep-alive, TLS when the URL is
 * https, proxies from the environment); this file builds the OpenAI
 * request, splits the event stream into lines and each "data: " line into
 * its delta.  A reply the server refuses (HTTP status other than 200)
 * arrives as one JSON error object instead of a stream; its message is
 * handed back as is.
 * Invariant: a line of the stream is handled only once its '\n' arrived, so
 * a JSON object split across two reads is never parsed half. */
#include "chat_remote.h"

#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "strbuf.h"

struct chat_remote {
    CURL *h;
    char *base;  /* the server's root, without a trailing / or /v1 */
    char *auth;  /* "Authorization: Bearer KEY", or NULL */
    char *model; /* the id /v1/models gave */
};

/* One transfer: the body (an error, or the models list) or the stream. */
typedef struct xfer {
    strbuf body;     /* a non-stream reply, whole */
    strbuf line;     /* the stream's current, incomplete line */
    bool stream;     /* the server answered with text/event-stream */
    const ms_callbacks *cb;
    int n_chunks;
    int n_prompt, n_gen; /* from the usage chunk, -1 until it came */
    const char *finish;
    bool done, oom, stopped; /* [DONE] seen; out of memory; on_text asked to stop */
    char err[512];       /* an error event inside the stream */
    double t0;
} xfer;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int set_err(char *err, size_t errlen, int rc, const char *fmt, const char *a, const char *b)
{
    snprintf(err, errlen, fmt, a, b);
    return rc;
}

/* ---- the event stream ---- */

/* One "data: {...}" payload: a chunk with a delta, the usage, or an error. */
static void stream_event(xfer *x, const char *data)
{
    if (!strcmp(data, "[DONE]")) {
        x->done = true;
        return;
    }
    json_t *j = json_loads(data, 0, NULL);
    if (!j)
        return; /* not ours to judge: the stream goes on */
    json_t *e = json_object_get(j, "error");
    if (e) {
        const char *m = json_string_value(json_object_get(e, "message"));
        snprintf(x->err, sizeof x->err, "%s", m ? m : "the server reported an error");
    }
    json_t *u = json_object_get(j, "usage");
    if (json_is_object(u)) {
        x->n_prompt = (int)json_integer_value(json_object_get(u, "prompt_tokens"));
        x->n_gen = (int)json_integer_value(json_object_get(u, "completion_tokens"));
    }
    json_t *ch = json_array_get(json_object_get(j, "choices"), 0);
    json_t *d = json_object_get(ch, "delta");
    const char *fin = json_string_value(json_object_get(ch, "finish_reason"));
    if (fin)
        x->finish = !strcmp(fin, "length") ? "length" : "stop";
    static const char *const keys[] = {"reasoning_content", "content"};
    for (int k = 0; k < 2 && !x->stopped; k++) {
        json_t *t = json_object_get(d, keys[k]);
        if (!json_is_string(t) || !json_string_length(t))
            continue;
        if (x->cb->on_token)
            x->cb->on_token(x->cb->ud, -1);
        x->n_chunks++;
        if (x->cb->on_text && x->cb->on_text(x->cb->ud, json_string_value(t), json_string_length(t), k == 0))
            x->stopped = true;
    }
    json_decref(j);
}

static size_t on_data(char *p, size_t size, size_t nmemb, void *ud)
{
    xfer *x = ud;
    const size_t n = size * nmemb;
    if (!x->stream) {
        if (x->body.n + n > (1u << 20) || strbuf_append(&x->body, p, n)) {
            x->oom = true;
            return 0;
        }
        return n;
    }
    for (size_t i = 0; i < n; i++) {
        if (p[i] != '\n') {
            if (strbuf_append(&x->line, p + i, 1)) {
                x->oom = true;
                return 0;
            }
            continue;
        }
        char *l = x->line.s ? x->line.s : "";
        size_t ln = x->line.n;
        if (ln && l[ln - 1] == '\r')
            l[--ln] = 0;
        if (!strncmp(l, "data:", 5))
            stream_event(x, l + 5 + (l[5] == ' '));
        x->line.n = 0;
        if (x->line.s)
            x->line.s[0] = 0;
        if (x->stopped)
            return 0; /* ends the transfer: the server sees the hang-up */
    }
    return n;
}

static size_t on_header(char *p, size_t size, size_t nmemb, void *ud)
{
    xfer *x = ud;
    const size_t n = size * nmemb;
    static const char ct[] = "content-type:";
    if (n > sizeof ct && !strncasecmp(p, ct, sizeof ct - 1)) {
        char v[128];
        snprintf(v, sizeof v, "%.*s", (int)(n - (sizeof ct - 1)), p + sizeof ct - 1);
        x->stream = strstr(v, "text/event-stream") != NULL;
    } else if (n >= 5 && !strncmp(p, "HTTP/", 5)) {
        x->stream = false; /* a new response (after a redirect or 100) */
    }
    return n;
}

static int on_progress(void *ud, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
    (void)a, (void)b, (void)c, (void)d;
    xfer *x = ud;
    return x->cb && x->cb->cancel && x->cb->cancel(x->cb->ud);
}

/* Runs one request: GET when body is NULL, else POST of the JSON body.
 * *status: the HTTP status (0 when none came).  0 or a negative errno
 * (message in err) for a transfer that failed before or while answering. */
static int request(chat_remote *r, const char *path, const char *body, xfer *x, long *status,
                   char *err, size_t errlen)
{
    char url[2048];
    snprintf(url, sizeof url, "%s%s", r->base, path);
    CURL *h = r->h;
    curl_easy_reset(h);
    struct curl_slist *hd = NULL, *t;
    if (r->auth && (t = curl_slist_append(hd, r->auth)))
        hd = t;
    if (body && (t = curl_slist_append(hd, "Content-Type: application/json")))
        hd = t;
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hd);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L); /* Ctrl-C is ours */
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, x);
    if (body) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    }
    CURLcode cc = curl_easy_perform(h);
    *status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
    curl_slist_free_all(hd);
    if (cc == CURLE_OK || cc == CURLE_ABORTED_BY_CALLBACK || (cc == CURLE_WRITE_ERROR && x->stopped))
        return 0;
    if (x->oom)
        return set_err(err, errlen, -ENOMEM, "out of memory reading the reply from %s%s", url, "");
    return set_err(err, errlen, cc == CURLE_COULDNT_CONNECT ? -ECONNREFUSED : -EPROTO, "%s: %s", url,
                   curl_easy_strerror(cc));
}

/* The message of an OpenAI error body, or the start of whatever came. */
static void error_message(const strbuf *b, long status, char *err, size_t errlen)
{
    json_t *j = json_loadb(b->s ? b->s : "", b->n, 0, NULL);
    const char *m = json_string_value(json_object_get(json_object_get(j, "error"), "message"));
    if (m)
        snprintf(err, errlen, "the server answered %ld: %s", status, m);
    else
        snprintf(err, errlen, "the server answered %ld: %.200s", status, b->s ? b->s : "(no body)");
    json_decref(j);
}

static bool is_context_error(const strbuf *b)
{
    json_t *j = json_loadb(b->s ? b->s : "", b->n, 0, NULL);
    const char *c = json_string_value(json_object_get(json_object_get(j, "error"), "code"));
    bool yes = c && !strcmp(c, "context_length_exceeded");
    json_decref(j);
    return yes;
}

/* ---- the handle ---- */

int chat_remote_open(chat_remote **out, const char *url, const char *key, const char **model,
                     char *err, size_t errlen)
{
    *out = NULL;
    if (strncmp(url, "http://", 7) && strncmp(url, "https://", 8))
        return set_err(err, errlen, -EINVAL, "--connect wants an http:// or https:// URL (got %s)%s", url, "");
    static bool inited;
    if (!inited && curl_global_init(CURL_GLOBAL_DEFAULT))
        return set_err(err, errlen, -ENOMEM, "cannot initialize libcurl%s%s", "", "");
    inited = true;
    chat_remote *r = calloc(1, sizeof *r);
    if (!r || !(r->base = strdup(url)) || !(r->h = curl_easy_init())) {
        chat_remote_close(r);
        return set_err(err, errlen, -ENOMEM, "out of memory%s%s", "", "");
    }
    size_t n = strlen(r->base);
    while (n && r->base[n - 1] == '/')
        r->base[--n] = 0;
    if (n >= 3 && !strcmp(r->base + n - 3, "/v1"))
        r->base[n - 3] = 0;
    if (key) {
        size_t k = strlen(key) + 32;
        if (!(r->auth = malloc(k))) {
            chat_remote_close(r);
            return set_err(err, errlen, -ENOMEM, "out of memory%s%s", "", "");
        }
        snprintf(r->auth, k, "Authorization: Bearer %s", key);
    }
    xfer x = {STRBUF_INIT, STRBUF_INIT, false, NULL, 0, -1, -1, NULL, false, false, false, "", 0};
    long status;
    int rc;
    /* a server still loading its model answers 503 for a while: wait */
    for (int tries = 0;; tries++) {
        rc = request(r, "/v1/models", NULL, &x, &status, err, errlen);
        if (rc || status != 503 || tries == 2 * 300)
            break;
        if (tries == 0)
            fprintf(stderr, "(%s answers 503, still loading its model: waiting up to 5 minutes)\n", url);
        x.body.n = 0;
        nanosleep(&(struct timespec){0, 500 * 1000 * 1000}, NULL);
    }
    if (!rc && status != 200) {
        error_message(&x.body, status, err, errlen);
        rc = status == 401 ? -EACCES : -EPROTO;
    }
    if (!rc) {
        json_t *j = json_loadb(x.body.s ? x.body.s : "", x.body.n, 0, NULL);
        const char *id = json_string_value(json_object_get(json_array_get(json_object_get(j, "data"), 0), "id"));
        if (!id)
            rc = set_err(err, errlen, -EPROTO, "%s/v1/models lists no model%s", r->base, "");
        else if (!(r->model = strdup(id)))
            rc = set_err(err, errlen, -ENOMEM, "out of memory%s%s", "", "");
        json_decref(j);
    }
    strbuf_free(&x.body);
    strbuf_free(&x.line);
    if (rc) {
        chat_remote_close(r);
        return rc;
    }
    *model = r->model;
    *out = r;
    return 0;
}

void chat_remote_close(chat_remote *r)
{
    if (!r)
        return;
    if (r->h)
        curl_easy_cleanup(r->h);
    free(r->base);
    free(r->auth);
    free(r->model);
    free(r);
}

/* ---- one reply ---- */

int chat_remote_generate(chat_remote *r, const ms_chat_msg *msgs, size_t n, const ms_gen_opts *go,
                         const ms_callbacks *cb, ms_gen_result *res, char *err, size_t errlen)
{
    memset(res, 0, sizeof *res);
    res->finish = "cancelled";
    uint64_t seed = go->sp.seed;
    if (!seed && getrandom(&seed, sizeof seed, 0) != (ssize_t)sizeof seed)
        seed = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)&seed;
    seed &= 0x7fffffffffffull; /* fits a JSON integer anywhere */
    if (!seed)
        seed = 1;
    json_t *ms = json_array();
    for (size_t i = 0; ms && i < n; i++)
        json_array_append_new(ms, json_pack("{s:s,s:s}", "role", msgs[i].role, "content", msgs[i].content));
    json_t *req = json_pack("{s:s,s:o,s:b,s:{s:b},s:f,s:f,s:f,s:f,s:f,s:I}", "model", r->model, "messages", ms,
                            "stream", 1, "stream_options", "include_usage", 1, "temperature",
                            (double)go->sp.temp, "top_p", (double)go->sp.top_p, "min_p",
                            (double)go->sp.min_p, "presence_penalty", (double)go->sp.presence_penalty,
                            "frequency_penalty", (double)go->sp.frequency_penalty, "seed",
                            (json_int_t)seed);
    if (req && go->n_predict > 0)
        json_object_set_new(req, "max_tokens", json_integer(go->n_predict));
    char *body = req ? json_dumps(req, JSON_COMPACT) : NULL;
    json_decref(req);
    if (!body)
        return set_err(err, errlen, -ENOMEM, "out of memory building the request%s%s", "", "");
    xfer x = {STRBUF_INIT, STRBUF_INIT, false, cb, 0, -1, -1, NULL, false, false, false, "", now_s()};
    long status;
    int rc = request(r, "/v1/chat/completions", body, &x, &status, err, errlen);
    free(body);
    if (!rc && status != 200) {
        error_message(&x.body, status, err, errlen);
        rc = status == 400 && is_context_error(&x.body) ? -E2BIG : -EPROTO;
    } else if (!rc && x.err[0]) {
        snprintf(err, errlen, "%s", x.err);
        rc = -EPROTO;
    }
    if (!rc) {
        res->t_gen_s = now_s() - x.t0;
        res->n_prompt = x.n_prompt > 0 ? x.n_prompt : 0;
        res->n_gen = x.n_gen >= 0 ? x.n_gen : x.n_chunks;
        res->seed = seed;
        res->finish = x.done && x.finish ? x.finish : "cancelled";
    }
    strbuf_free(&x.body);
    strbuf_free(&x.line);
    return rc;
}
