/* ms_vocab.c - the public tokenizer and chat-template API: the engine's
 * vocabulary or one opened alone, tokenize, token pieces and lookups, the
 * DeepSeek-R1 chat template, UTF-8 sanitizing of generated text.
 * Owns: ms_vocab_*, ms_tokenize, ms_token_*, ms_chat_*, ms_utf8_sanitize.
 * An ms_vocab (engine.h) wraps the internal tok_vocab; one opened alone
 * also owns its GGUF file. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "chat.h"
#include "engine.h"
#include "gguf.h"
#include "moestream.h"
#include "tokenizer.h"

MS_API int ms_vocab_open(ms_vocab **out, const char *path, char *err, size_t errlen)
{
    *out = NULL;
    ms_vocab *w = calloc(1, sizeof *w);
    if (!w) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    int rc = gguf_open(&w->g, path, err, errlen);
    if (!rc)
        rc = tok_load(&w->own, w->g, err, errlen);
    if (rc) {
        ms_vocab_close(w);
        return rc;
    }
    w->v = w->own;
    *out = w;
    return 0;
}

MS_API void ms_vocab_close(ms_vocab *w)
{
    if (!w)
        return;
    tok_free(w->own);
    gguf_close(w->g);
    free(w);
}

MS_API const ms_vocab *ms_engine_vocab(const ms_engine *e)
{
    return e->vocab.v ? &e->vocab : NULL;
}

MS_API int ms_tokenize(const ms_vocab *w, const char *text, size_t len, int flags, int32_t **ids,
                       size_t *n_ids)
{
    int f = 0;
    if (flags & MS_TOK_ADD_BOS)
        f |= TOK_ADD_BOS;
    if (flags & MS_TOK_PARSE_SPECIAL)
        f |= TOK_PARSE_SPECIAL;
    if (flags & MS_TOK_NO_ADDED)
        f |= TOK_NO_ADDED;
    return tok_encode(w->v, text, len, f, ids, n_ids);
}

MS_API size_t ms_token_piece(const ms_vocab *w, int32_t id, char *buf, size_t cap)
{
    return tok_piece(w->v, id, buf, cap);
}

MS_API uint32_t ms_vocab_size(const ms_vocab *w) { return tok_n_vocab(w->v); }
MS_API int32_t ms_token_find(const ms_vocab *w, const char *text) { return tok_find(w->v, text); }
MS_API bool ms_token_is_eog(const ms_vocab *w, int32_t id) { return tok_is_eog(w->v, id); }
MS_API int32_t ms_token_bos(const ms_vocab *w) { return tok_bos(w->v); }
MS_API int32_t ms_token_eos(const ms_vocab *w) { return tok_eos(w->v); }

MS_API int ms_chat_render(const ms_vocab *w, const ms_chat_msg *msgs, size_t n, bool think,
                          int32_t **ids, size_t *n_ids, char *err, size_t errlen)
{
    return chat_render_ids(w->v, msgs, n, think, ids, n_ids, err, errlen); /* chat_msg is ms_chat_msg */
}

MS_API int ms_text_check_fits(const ms_vocab *w, size_t len, size_t n_ctx, char *err, size_t errlen)
{
    return tok_check_fits(w->v, len, n_ctx, err, errlen);
}

MS_API int ms_chat_check_fits(const ms_vocab *w, const ms_chat_msg *msgs, size_t n, size_t n_ctx,
                              char *err, size_t errlen)
{
    return chat_check_fits(w->v, msgs, n, n_ctx, err, errlen);
}

MS_API char *ms_chat_render_text(const ms_chat_msg *msgs, size_t n, bool think)
{
    return chat_render_text(msgs, n, think);
}

MS_API char *ms_utf8_sanitize(const char *s, size_t n)
{
    return tok_utf8_sanitize(s, n);
}
