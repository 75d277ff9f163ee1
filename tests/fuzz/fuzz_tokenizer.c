/* fuzz_tokenizer.c - libFuzzer harness for the tokenizer (R1 vocabulary):
 * arbitrary bytes, invalid UTF-8 included, in every added-token mode; the
 * pieces of the ids must give back the input bytes exactly, and the chat
 * template must accept any message text. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat.h"
#include "gguf.h"
#include "tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static tok_vocab *V;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!V) {
        const char *g = getenv("MOESTREAM_GOLDEN");
        char path[1024], err[512];
        snprintf(path, sizeof path, "%s/models/deepseek-r1-vocab.gguf", g ? g : "../shared/golden");
        gguf_file *f = NULL;
        if (gguf_open(&f, path, err, sizeof err) || tok_load(&V, f, err, sizeof err)) {
            fprintf(stderr, "%s\n", err);
            abort();
        }
        gguf_close(f); /* the vocabulary keeps its own copies */
    }
    int modes[3] = {0, TOK_PARSE_SPECIAL, TOK_NO_ADDED};
    for (int k = 0; k < 3; k++) {
        int32_t *ids;
        size_t n;
        if (tok_encode(V, (const char *)data, size, modes[k], &ids, &n))
            continue;
        char *back = malloc(size + 64);
        size_t o = 0;
        for (size_t i = 0; i < n; i++) {
            size_t l = tok_piece(V, ids[i], back + o, size + 64 - o);
            o += l;
            if (o > size + 32)
                abort();
        }
        if (o != size || memcmp(back, data, size))
            abort(); /* detokenization must be lossless */
        free(back);
        free(ids);
    }
    char *msg = malloc(size + 1);
    memcpy(msg, data, size);
    msg[size] = 0;
    chat_msg m[2] = {{"system", msg}, {"user", msg}};
    int32_t *ids;
    size_t n;
    char err[256];
    if (chat_render_ids(V, m, 2, true, &ids, &n, err, sizeof err) == 0)
        free(ids);
    free(msg);
    return 0;
}
