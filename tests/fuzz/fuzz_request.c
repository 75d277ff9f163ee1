/* fuzz_request.c - libFuzzer harness for the server's request parser: any
 * bytes as an HTTP body -> JSON -> request_parse_chat (chat/completions) and
 * request_parse_completion.  A refused body must come with a message; an
 * accepted one must respect every cap and range the parser promises, and
 * its messages must render through the chat template. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat.h"
#include "request.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_opts(const request *r, const ms_gen_opts *base)
{
    const ms_gen_opts *go = &r->go;
    if (go->n_predict != base->n_predict && (go->n_predict < 1 || go->n_predict > REQUEST_MAX_TOKENS))
        abort();
    if (!(go->sp.temp >= 0 && go->sp.temp <= 2) || !(go->sp.top_p > 0 && go->sp.top_p <= 1) ||
        !(go->sp.min_p >= 0 && go->sp.min_p <= 1))
        abort();
    if (go->n_stop < 0 || go->n_stop > REQUEST_MAX_STOPS || (go->n_stop && go->stop != r->stops))
        abort();
    for (int k = 0; k < go->n_stop; k++)
        if (!go->stop[k])
            abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *body = json_loadb((const char *)data, size, 0, NULL);
    if (!body)
        return 0;
    ms_gen_opts base;
    ms_gen_opts_default(&base);
    base.n_predict = 4096;
    static request r; /* 4 KB of messages: static keeps the fuzzer's stack small */
    char err[256];
    err[0] = 0;
    if (request_parse_chat(&r, body, &base, err, sizeof err) == 0) {
        if (r.n_msgs < 1 || r.n_msgs > REQUEST_MAX_MESSAGES)
            abort();
        for (size_t i = 0; i < r.n_msgs; i++)
            if (!r.msgs[i].role || !r.msgs[i].content)
                abort();
        check_opts(&r, &base);
        free(chat_render_text(r.msgs, r.n_msgs, r.go.reasoning));
    } else if (!err[0]) {
        abort(); /* a refusal must say why */
    }
    base.n_predict = 16;
    err[0] = 0;
    if (request_parse_completion(&r, body, &base, err, sizeof err) == 0) {
        if (!r.prompt || r.stream)
            abort();
        check_opts(&r, &base);
    } else if (!err[0]) {
        abort();
    }
    json_decref(body);
    return 0;
}
