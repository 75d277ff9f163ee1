/* chat.h - the DeepSeek-R1 chat template, built in C for this model family.
 *
 * BOS, the system prompt(s) directly (several joined by a blank line), then
 * <｜User｜>text and <｜Assistant｜>answer<｜end▁of▁sentence｜> per turn, where
 * an earlier answer keeps only the text after its last </think>; the
 * generation prompt is <｜Assistant｜><think>\n (DeepSeek's advice so R1
 * reasons) or just <｜Assistant｜>.  Role tokens are inserted by id, found by
 * their text; message text is tokenized with no added-token matching, so a
 * user typing "<｜Assistant｜>" cannot forge a turn.
 * Owns: chat_* only.  Thread-safe (pure functions of their inputs). */
#ifndef MS_CHAT_H
#define MS_CHAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "moestream.h"
#include "tokenizer.h"

/* The public struct itself: role ("system", "user" or "assistant") and
 * UTF-8 content. */
typedef ms_chat_msg chat_msg;

/* Token ids of the conversation followed by the generation prompt.
 * *ids malloc'd.  0, -EINVAL (unknown role, vocabulary without the R1 chat
 * tokens: message names the token) or -ENOMEM. */
int chat_render_ids(const tok_vocab *v, const chat_msg *msgs, size_t n, bool think,
                    int32_t **ids, size_t *n_ids, char *err, size_t errlen);

/* Refuses, before rendering and tokenizing, a conversation whose text
 * (message contents as the template keeps them) cannot fit in n_ctx
 * tokens: tok_check_fits on its byte length.  0 or -E2BIG with a message. */
int chat_check_fits(const tok_vocab *v, const chat_msg *msgs, size_t n, size_t n_ctx, char *err,
                    size_t errlen);

/* The same conversation as text (for display and debugging); malloc'd. */
char *chat_render_text(const chat_msg *msgs, size_t n, bool think);

/* The part of an answer after its last </think> (pointer into s). */
const char *chat_strip_think(const char *s);

#endif
