/* fuzz_batch.c - libFuzzer harness for the batch line parser: any bytes as
 * one line of a batch input file (cut at the first newline and stripped of
 * \r as `moestream batch` does) -> request_parse_batch_line.  A refused line
 * must come with a message; an accepted one has a custom_id, 1..256
 * messages with role and content, options within range, and renders
 * through the chat template. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat.h"
#include "request.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nl = memchr(data, '\n', size);
    size_t n = nl ? (size_t)(nl - data) : size;
    char *line = malloc(n + 1);
    if (!line)
        return 0;
    memcpy(line, data, n);
    line[n] = 0;
    while (n > 0 && line[n - 1] == '\r')
        line[--n] = 0;
    if (!n) { /* batch skips empty lines before parsing */
        free(line);
        return 0;
    }
    ms_gen_opts base;
    ms_gen_opts_default(&base);
    base.n_predict = 1024;
    static request r; /* 4 KB of messages: static keeps the fuzzer's stack small */
    json_t *doc = NULL;
    char err[256];
    err[0] = 0;
    if (request_parse_batch_line(&r, &doc, line, 7, &base, err, sizeof err) == 0) {
        if (!r.custom_id || r.n_msgs < 1 || r.n_msgs > REQUEST_MAX_MESSAGES)
            abort();
        for (size_t i = 0; i < r.n_msgs; i++)
            if (!r.msgs[i].role || !r.msgs[i].content)
                abort();
        if (r.go.n_predict != base.n_predict && (r.go.n_predict < 1 || r.go.n_predict > REQUEST_MAX_TOKENS))
            abort();
        if (!(r.go.sp.temp >= 0 && r.go.sp.temp <= 2) || !(r.go.sp.top_p > 0 && r.go.sp.top_p <= 1) ||
            !(r.go.sp.min_p >= 0 && r.go.sp.min_p <= 1) || r.go.n_stop < 0 || r.go.n_stop > REQUEST_MAX_STOPS)
            abort();
        for (int k = 0; k < r.go.n_stop; k++)
            if (!r.go.stop[k])
                abort();
        free(chat_render_text(r.msgs, r.n_msgs, true));
    } else if (!err[0]) {
        abort(); /* a refusal must say why */
    }
    json_decref(doc);
    free(line);
    return 0;
}
