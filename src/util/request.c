/* request.c - see request.h.
 * One validator for the chat body serves both the HTTP server and batch
 * lines (the batch format's body is a chat/completions body), so the two
 * front ends accept exactly the same requests.  Ranges are written as
 * "!(lo <= x && x <= hi)" so a NaN (jansson never parses one, but a caller
 * might build one) is refused rather than slipping through both tests. */
#include "request.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int bad(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -EINVAL;
}

static void request_start(request *r, const ms_gen_opts *base)
{
    memset(r, 0, sizeof *r);
    r->go = *base;
}

/* max_tokens (or max_completion_tokens, the newer name) into go.n_predict. */
static int parse_max_tokens(request *r, const json_t *body, char *err, size_t errlen)
{
    const json_t *v = json_object_get(body, "max_tokens");
    if (!v)
        v = json_object_get(body, "max_completion_tokens");
    if (!v)
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > REQUEST_MAX_TOKENS)
        return r->param = "max_tokens", bad(err, errlen, "'max_tokens' must be a positive integer (at most %d)", REQUEST_MAX_TOKENS);
    r->go.n_predict = (int)json_integer_value(v);
    return 0;
}

/* A number field into *dst; lo_open: the lower bound itself is refused.
 * The double is range-checked before the conversion (a double past the
 * float range would make it undefined), and an open bound is checked again
 * on the float that will be used: "top_p": 1e-50 is above 0 as a double but
 * 0 as a float (found by the fuzz_request invariant; the input is in
 * tests/fuzz/regress/request/). */
static int parse_number(request *r, const json_t *body, const char *key, double lo, bool lo_open, double hi,
                        float *dst, char *err, size_t errlen)
{
    const json_t *v = json_object_get(body, key);
    if (!v)
        return 0;
    const double d = json_is_number(v) ? json_number_value(v) : 0;
    const bool ok = json_is_number(v) && (lo_open ? d > lo : d >= lo) && d <= hi;
    if (!ok || (lo_open && !((float)d > (float)lo)))
        return r->param = key, bad(err, errlen, "'%s' must be a number in %c%g, %g]", key, lo_open ? '(' : '[', lo, hi);
    *dst = (float)d;
    return 0;
}

static int parse_seed(request *r, const json_t *body, char *err, size_t errlen)
{
    const json_t *v = json_object_get(body, "seed");
    if (!v)
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return r->param = "seed", bad(err, errlen, "'seed' must be a non-negative integer");
    r->go.sp.seed = (uint64_t)json_integer_value(v);
    return 0;
}

/* llama-server's extension: keep sampling past end-of-generation tokens
 * (benchmarks use it to get exactly max_tokens) */
static int parse_ignore_eos(request *r, const json_t *body, char *err, size_t errlen)
{
    const json_t *v = json_object_get(body, "ignore_eos");
    if (!v)
        return 0;
    if (!json_is_boolean(v))
        return r->param = "ignore_eos", bad(err, errlen, "'ignore_eos' must be a boolean");
    r->go.sp.ignore_eos = json_is_true(v);
    return 0;
}

static int parse_stop(request *r, const json_t *body, char *err, size_t errlen)
{
    const json_t *v = json_object_get(body, "stop");
    if (!v)
        return 0;
    r->param = "stop"; /* cleared below once it is good */
    if (json_is_string(v)) {
        r->stops[0] = json_string_value(v);
        r->go.n_stop = 1;
    } else if (json_is_array(v) && json_array_size(v) <= REQUEST_MAX_STOPS) {
        for (size_t k = 0; k < json_array_size(v); k++)
            if (!(r->stops[k] = json_string_value(json_array_get(v, k))))
                return bad(err, errlen, "'stop' must be a string or an array of strings");
        r->go.n_stop = (int)json_array_size(v);
    } else {
        return bad(err, errlen, "'stop' must be a string or an array of up to %d strings",
                   REQUEST_MAX_STOPS);
    }
    r->go.stop = r->stops;
    r->param = NULL;
    return 0;
}

/* ---- memory ---- */

/* Bytes per body byte: tok_encode's scratch is about 40 per input byte for
 * one fragment, the body and its parsed copy two more, the ids and the
 * response text up to 16 (one token per byte, "12345," each); rounded up. */
#define COST_PER_BYTE 64
#define COST_FIXED ((uint64_t)256 << 10) /* a small request: JSON trees, stacks */

uint64_t request_mem_cost(size_t body_bytes)
{
    return (uint64_t)body_bytes * COST_PER_BYTE + COST_FIXED;
}

uint64_t request_mem_budget(void) { return request_mem_cost(REQUEST_MAX_BODY); }

/* ---- chat/completions ---- */

/* A message's text: a string, or an array of text parts
 * ([{"type": "text", "text": "..."}], as OpenAI clients send for
 * multimodal models) joined with newlines as llama.cpp joins them.  The
 * joined text replaces "content" in the message itself, so it lives as long
 * as the document the request borrows from (the one mutation a parse makes). */
static int message_content(json_t *m, size_t k, const char **out, char *err, size_t errlen)
{
    json_t *c = json_object_get(m, "content");
    if ((*out = json_string_value(c)))
        return 0;
    if (!json_is_array(c))
        return bad(err, errlen, "each message needs a 'content' string or array of text parts (message %zu)", k);
    size_t len = 0;
    for (size_t i = 0; i < json_array_size(c); i++) {
        const json_t *p = json_array_get(c, i);
        const char *type = json_string_value(json_object_get(p, "type"));
        if (!type || strcmp(type, "text"))
            return bad(err, errlen, "content part %zu of message %zu: only parts of type 'text' are "
                                    "supported (this model reads text only)", i, k);
        if (!json_is_string(json_object_get(p, "text")))
            return bad(err, errlen, "content part %zu of message %zu needs a string 'text'", i, k);
        len += json_string_length(json_object_get(p, "text")) + 1;
    }
    char *buf = malloc(len + 1), *o = buf;
    if (!buf)
        return bad(err, errlen, "out of memory joining the content parts of message %zu", k);
    for (size_t i = 0; i < json_array_size(c); i++) {
        const json_t *t = json_object_get(json_array_get(c, i), "text");
        if (i)
            *o++ = '\n';
        memcpy(o, json_string_value(t), json_string_length(t));
        o += json_string_length(t);
    }
    json_t *joined = json_stringn_nocheck(buf, (size_t)(o - buf));
    free(buf);
    if (!joined || json_object_set_new(m, "content", joined))
        return bad(err, errlen, "out of memory joining the content parts of message %zu", k);
    *out = json_string_value(json_object_get(m, "content"));
    return 0;
}

/* Fields of the OpenAI API this server does not implement: a 400 that says
 * so, rather than an answer that silently ignores them. */
static int refuse_unsupported(request *r, const json_t *body, bool chat, char *err, size_t errlen)
{
    const json_t *v;
    if ((v = json_object_get(body, "n")) && !json_is_null(v) &&
        !(json_is_integer(v) && json_integer_value(v) == 1))
        return r->param = "n", bad(err, errlen, "'n' other than 1 is not supported (one choice per request)");
    if ((v = json_object_get(body, "tools")) && !json_is_null(v) &&
        !(json_is_array(v) && json_array_size(v) == 0))
        return r->param = "tools", bad(err, errlen, "'tools' (function calling) is not supported");
    if ((v = json_object_get(body, "functions")) && !json_is_null(v))
        return r->param = "functions", bad(err, errlen, "'functions' (function calling) is not supported");
    if ((v = json_object_get(body, "response_format")) && !json_is_null(v)) {
        const char *t = json_string_value(json_object_get(v, "type"));
        if (!t || strcmp(t, "text"))
            return r->param = "response_format",
                   bad(err, errlen, "'response_format' other than {\"type\": \"text\"} is not supported");
    }
    /* chat: a boolean; completions: a count, where 0 asks for none */
    if ((v = json_object_get(body, "logprobs")) && !json_is_null(v) && !json_is_false(v) &&
        !(!chat && json_is_integer(v) && json_integer_value(v) == 0))
        return r->param = "logprobs", bad(err, errlen, "'logprobs' is not supported");
    if ((v = json_object_get(body, "top_logprobs")) && !json_is_null(v) &&
        !(json_is_integer(v) && json_integer_value(v) == 0))
        return r->param = "top_logprobs", bad(err, errlen, "'top_logprobs' is not supported");
    return 0;
}

int request_parse_chat(request *r, json_t *body, const ms_gen_opts *base, char *err, size_t errlen)
{
    request_start(r, base);
    if (!json_is_object(body))
        return bad(err, errlen, "the body must be a JSON object");
    const json_t *ms = json_object_get(body, "messages");
    r->param = "messages"; /* cleared below once they are good */
    if (!json_is_array(ms) || json_array_size(ms) == 0)
        return bad(err, errlen, "'messages' must be a non-empty array");
    if (json_array_size(ms) > REQUEST_MAX_MESSAGES)
        return bad(err, errlen, "too many messages (at most %d)", REQUEST_MAX_MESSAGES);
    for (size_t k = 0; k < json_array_size(ms); k++) {
        json_t *m = json_array_get(ms, k);
        const char *role = json_string_value(json_object_get(m, "role"));
        if (!role)
            return bad(err, errlen, "each message needs a string 'role' (message %zu)", k);
        if (!strcmp(role, "developer")) /* the newer name of system */
            role = "system";
        if (strcmp(role, "system") && strcmp(role, "user") && strcmp(role, "assistant"))
            return bad(err, errlen, "'role' must be system, developer, user or assistant (message %zu)", k);
        const char *content;
        int rc = message_content(m, k, &content, err, errlen);
        if (rc)
            return rc;
        r->msgs[r->n_msgs++] = (ms_chat_msg){role, content};
    }
    r->param = NULL;
    int rc;
    if ((rc = refuse_unsupported(r, body, true, err, errlen)))
        return rc;
    const json_t *v;
    if ((v = json_object_get(body, "stream"))) {
        if (!json_is_boolean(v))
            return r->param = "stream", bad(err, errlen, "'stream' must be a boolean");
        r->stream = json_is_true(v);
    }
    r->include_usage = json_is_true(json_object_get(json_object_get(body, "stream_options"), "include_usage"));
    if ((rc = parse_max_tokens(r, body, err, errlen)) ||
        (rc = parse_number(r, body, "temperature", 0, false, 2, &r->go.sp.temp, err, errlen)) ||
        (rc = parse_number(r, body, "top_p", 0, true, 1, &r->go.sp.top_p, err, errlen)) ||
        (rc = parse_number(r, body, "min_p", 0, false, 1, &r->go.sp.min_p, err, errlen)) ||
        (rc = parse_number(r, body, "presence_penalty", -2, false, 2, &r->go.sp.presence_penalty, err,
                           errlen)) ||
        (rc = parse_number(r, body, "frequency_penalty", -2, false, 2, &r->go.sp.frequency_penalty, err,
                           errlen)) ||
        (rc = parse_seed(r, body, err, errlen)) || (rc = parse_ignore_eos(r, body, err, errlen)) ||
        (rc = parse_stop(r, body, err, errlen)))
        return rc;
    return 0;
}

/* ---- completions ---- */

int request_parse_completion(request *r, const json_t *body, const ms_gen_opts *base, char *err,
                             size_t errlen)
{
    request_start(r, base);
    if (!(r->prompt = json_string_value(json_object_get(body, "prompt"))))
        return r->param = "prompt", bad(err, errlen, "'prompt' must be a string");
    if (json_is_true(json_object_get(body, "stream")))
        return r->param = "stream", bad(err, errlen, "streaming is supported on /v1/chat/completions only");
    int rc;
    if ((rc = refuse_unsupported(r, body, false, err, errlen)))
        return rc;
    if ((rc = parse_max_tokens(r, body, err, errlen)) ||
        (rc = parse_number(r, body, "temperature", 0, false, 2, &r->go.sp.temp, err, errlen)) ||
        (rc = parse_number(r, body, "presence_penalty", -2, false, 2, &r->go.sp.presence_penalty, err,
                           errlen)) ||
        (rc = parse_number(r, body, "frequency_penalty", -2, false, 2, &r->go.sp.frequency_penalty, err,
                           errlen)) ||
        (rc = parse_seed(r, body, err, errlen)) || (rc = parse_ignore_eos(r, body, err, errlen)))
        return rc;
    return 0;
}

/* ---- batch lines ---- */

int request_parse_batch_line(request *r, json_t **doc, const char *line, long idx,
                             const ms_gen_opts *base, char *err, size_t errlen)
{
    *doc = NULL;
    /* a line of only blanks asks nothing: running it as a prompt would
     * spend a generation on an accident of the file */
    size_t lead = strspn(line, " \t\r\f\v");
    if (!line[lead]) {
        request_start(r, base);
        return bad(err, errlen, "line is blank (only whitespace)");
    }
    if (line[lead] == '[') { /* a JSON array is a mistake, not a prompt */
        json_t *a = json_loads(line, 0, NULL);
        bool arr = json_is_array(a);
        json_decref(a);
        if (arr) {
            request_start(r, base);
            return bad(err, errlen, "line is a JSON array; each line must be one request object "
                                    "(or plain text)");
        }
    }
    if (line[lead] != '{') { /* plain text: one user message */
        request_start(r, base);
        snprintf(r->line_id, sizeof r->line_id, "line-%ld", idx);
        r->custom_id = r->line_id;
        r->msgs[r->n_msgs++] = (ms_chat_msg){"user", line};
        return 0;
    }
    json_error_t je;
    *doc = json_loads(line, 0, &je);
    if (!*doc || !json_is_object(*doc)) {
        request_start(r, base);
        return bad(err, errlen, "line is not a JSON object");
    }
    const char *cid = json_string_value(json_object_get(*doc, "custom_id"));
    json_t *body = json_object_get(*doc, "body");
    int rc;
    if (!cid) {
        request_start(r, base);
        rc = bad(err, errlen, "missing string custom_id");
    } else if (!json_is_object(body)) {
        request_start(r, base);
        rc = bad(err, errlen, "'body' must be a JSON object with the request");
    } else {
        rc = request_parse_chat(r, body, base, err, errlen);
    }
    r->custom_id = cid; /* after the parse, which starts from a clean request */
    return rc;
}
