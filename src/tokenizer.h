/* tokenizer.h - the DeepSeek byte-level BPE tokenizer, read from GGUF
 * metadata (tokenizer.ggml.*), with the deepseek-v3 pre-tokenizer.
 *
 * Owns: vocabulary, merge ranks, added/special-token matching, encoding,
 * decoding, and a streaming UTF-8 assembler for detokenized output.
 * Does not own: chat formatting (chat.c), sampling.
 * Thread safety: a loaded tok_vocab is immutable; tok_encode and the piece
 * functions may run concurrently from any threads. */
#ifndef MS_TOKENIZER_H
#define MS_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gguf.h"

typedef struct tok_vocab tok_vocab;

enum tok_flags {
    TOK_ADD_BOS = 1,       /* prepend BOS */
    TOK_PARSE_SPECIAL = 2, /* match CONTROL tokens (<｜begin▁of▁sentence｜>...) in the text */
    TOK_NO_ADDED = 4,      /* match no added tokens at all: user text stays plain text */
};

enum tok_type { TOK_NORMAL = 1, TOK_UNKNOWN = 2, TOK_CONTROL = 3, TOK_USER_DEFINED = 4,
                TOK_UNUSED = 5, TOK_BYTE = 6 };

/* Loads the vocabulary of g (a model or a vocabulary-only GGUF).  Supports
 * tokenizer.ggml.model "gpt2" with pre-tokenizer "deepseek-v3" (others are
 * refused with -ENOTSUP).  0 or -errno with a message. */
int tok_load(tok_vocab **out, const gguf_file *g, char *err, size_t errlen);
void tok_free(tok_vocab *v); /* accepts NULL */

/* Encodes len bytes of text.  *ids is malloc'd (caller frees), *n_ids set.
 * Returns 0, -ENOMEM. */
int tok_encode(const tok_vocab *v, const char *text, size_t len, int flags, int32_t **ids,
               size_t *n_ids);

/* The pre-tokenizer's pieces of text (no added-token matching): *ends
 * (malloc'd, caller frees) gets the byte end offset of each of the *n
 * pieces.  For tests and tools.  Returns 0, -ENOMEM, -E2BIG. */
int tok_pretokenize(const tok_vocab *v, const char *text, size_t len, size_t **ends, size_t *n);

/* The bytes of token id (byte-level decoded; added tokens as their text).
 * Writes up to cap bytes to buf and returns the full length (0 for an
 * invalid id). */
size_t tok_piece(const tok_vocab *v, int32_t id, char *buf, size_t cap);

uint32_t tok_n_vocab(const tok_vocab *v);
int32_t tok_bos(const tok_vocab *v);
int32_t tok_eos(const tok_vocab *v);
/* tokenizer.ggml.add_bos_token (true when absent): whether prompts start with BOS. */
bool tok_add_bos(const tok_vocab *v);
/* The most bytes of text one token stands for (the longest tok_piece). */
size_t tok_max_piece(const tok_vocab *v);
/* Refuses, before tokenizing (which takes tens of bytes per input byte),
 * text of len bytes that cannot fit in n_ctx tokens: longer than n_ctx
 * times tok_max_piece.  0, or -E2BIG with a message naming the sizes. */
int tok_check_fits(const tok_vocab *v, size_t len, size_t n_ctx, char *err, size_t errlen);
int tok_type(const tok_vocab *v, int32_t id);
/* Id of the token whose text is exactly `text` (as stored), or -1. */
int32_t tok_find(const tok_vocab *v, const char *text);
/* End of generation: EOS and the other end-of-turn controls. */
bool tok_is_eog(const tok_vocab *v, int32_t id);

/* Streams detokenized bytes as complete UTF-8 characters: a character split
 * across tokens is held back until its last byte arrives. */
typedef struct tok_stream {
    unsigned char pend[8];
    int n_pend;
} tok_stream;

void tok_stream_init(tok_stream *s);
/* Appends the piece of token id; writes the complete characters available
 * to out (cap >= 256 + piece length suffices) and returns their count. */
size_t tok_stream_push(tok_stream *s, const tok_vocab *v, int32_t id, char *out, size_t cap);
/* Remaining held bytes (an incomplete character at the end), as is. */
size_t tok_stream_flush(tok_stream *s, char *out, size_t cap);

/* A copy of s[0..n) with every invalid UTF-8 sequence replaced by U+FFFD
 * (for JSON, which must be valid UTF-8).  malloc'd, NUL-terminated. */
char *tok_utf8_sanitize(const char *s, size_t n);

#endif
