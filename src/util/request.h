/* request.h - OpenAI request bodies (chat/completions, completions) and
 * batch input lines turned into what one generation needs: chat messages
 * and generation options, or a clear error string.
 *
 * Everything here comes from a socket or a file, so nothing is trusted:
 * every field's type and range is checked, counts are capped, and a bad
 * request is an error message, never a crash (tests/fuzz/fuzz_request.c,
 * tests/fuzz/fuzz_batch.c).
 * Owns: request_* only.  No I/O, no model: the caller renders the chat
 * template and runs the generation.  Thread-safe (no shared state).
 *
 * Lifetime: a request borrows its strings from the JSON document (or the
 * line) it was parsed from; keep that alive while the request is used.  A
 * request is self-referential (go.stop points at its own stops[]): parse it
 * where it will live and never copy it by value. */
#ifndef MS_REQUEST_H
#define MS_REQUEST_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "moestream.h"

#define REQUEST_MAX_MESSAGES 256
#define REQUEST_MAX_STOPS 8
#define REQUEST_MAX_TOKENS (1 << 20) /* cap on max_tokens: keeps n_predict an int */
#define REQUEST_MAX_BODY (1 << 20)   /* HTTP request bodies; larger ones get 413 */

typedef struct request {
    ms_chat_msg msgs[REQUEST_MAX_MESSAGES]; /* n_msgs used; strings borrowed */
    size_t n_msgs;
    const char *prompt;   /* /v1/completions: the plain prompt (borrowed), else NULL */
    ms_gen_opts go;          /* the caller's base options with the request's fields applied */
    const char *stops[REQUEST_MAX_STOPS]; /* go.stop points here */
    bool stream;          /* "stream": true */
    bool include_usage;   /* "stream_options": {"include_usage": true} */
    const char *custom_id; /* batch: the line's id (borrowed), set even when the line is bad */
    char line_id[32];     /* batch: "line-N" for a plain text line */
    const char *param;    /* after a refusal: the field at fault (static string), or NULL */
} request;

/* The memory handling one request may take, by the size of its body: the
 * body, its parsed copy, the tokenizer's scratch (tens of bytes per input
 * byte) and the response.  An upper estimate, measured in
 * tests/safety_server.sh (item 9). */
uint64_t request_mem_cost(size_t body_bytes);

/* The request-handling budget the memory plan reserves inside --mem: one
 * request of REQUEST_MAX_BODY bytes, or several smaller ones, at a time. */
uint64_t request_mem_budget(void);

/* An OpenAI chat/completions body: messages (1..256, role system|developer
 * (as system)|user|assistant, content a string or an array of text parts,
 * which are joined with newlines into the message's "content": the one
 * change the parse makes to body), stream, stream_options.include_usage,
 * max_tokens (or max_completion_tokens, 1..2^20), temperature [0, 2],
 * top_p (0, 1], min_p [0, 1], seed >= 0, stop (a string or up to 8).
 * n other than 1, tools, functions, response_format other than text,
 * logprobs and top_logprobs are refused as unsupported.
 * base: the options to start from.  0, or -EINVAL with the message in err
 * (it names the field). */
int request_parse_chat(request *r, json_t *body, const ms_gen_opts *base, char *err,
                       size_t errlen);

/* An OpenAI completions body: prompt (string), max_tokens, temperature,
 * seed; streaming, n other than 1 and logprobs refused.  0 or -EINVAL with the message in err. */
int request_parse_completion(request *r, const json_t *body, const ms_gen_opts *base, char *err,
                             size_t errlen);

/* One line of a batch input file (no trailing newline; NUL-terminated):
 * a JSON object {"custom_id": string, "body": chat body} or, when it does
 * not start with '{' (after blanks), plain text that becomes one user
 * message with custom_id "line-<idx>".  A line of only blanks and a JSON
 * array are refused.  *doc receives the parsed document (or NULL) and
 * must be released with json_decref by the caller in every case; r borrows
 * from it and from line.  0 or -EINVAL with the message in err; r->custom_id
 * is set whenever the line had one, so the error can be reported under it. */
int request_parse_batch_line(request *r, json_t **doc, const char *line, long idx,
                             const ms_gen_opts *base, char *err, size_t errlen);

#endif
