/* chat_remote.h - `moestream chat --connect URL`: the conversation sent to
 * a running `moestream serve` (or any OpenAI-compatible server) over HTTP
 * with libcurl, the reply read as a server-sent event stream, so a laptop
 * keeps one loaded server and a chat starts without loading the model.
 * Owns: chat_remote_* only.  No engine: the server renders the template,
 * samples and keeps its own cache.
 * Not thread-safe (one conversation, one connection at a time). */
#ifndef MS_CHAT_REMOTE_H
#define MS_CHAT_REMOTE_H

#include <stdbool.h>
#include <stddef.h>

#include "moestream.h"

typedef struct chat_remote chat_remote;

/* Connects to url (the server's root, with or without a trailing /v1) and
 * lists its models to check that it answers and accepts key (NULL: none),
 * waiting (up to 5 minutes, one line on stderr) while it answers 503
 * because it is still loading.
 * *model receives the served model's id (owned by the handle).
 * 0, or -ECONNREFUSED / -EACCES (the key was refused) / -EPROTO / -ENOMEM
 * with the message in err. */
int chat_remote_open(chat_remote **out, const char *url, const char *key, const char **model,
                     char *err, size_t errlen);
void chat_remote_close(chat_remote *r); /* accepts NULL */

/* Streams one reply to msgs with the options of go (max tokens, sampler;
 * a seed only when go->sp.seed is not 0).  cb->on_text gets each piece of
 * reasoning or answer; cb->on_token(ud, -1) each chunk (the server's ids
 * are not sent); cb->should_cancel is polled (at least once a second) and
 * stops the reply, closing the connection, which cancels it on the server.
 * res gets n_prompt, n_gen and seed from the server's usage (n_gen counts
 * the chunks when the reply was stopped), t_gen_s and finish ("stop",
 * "length" or "cancelled").
 * 0; -E2BIG when the server says the conversation does not fit its
 * context; another negative errno with the server's message in err. */
int chat_remote_generate(chat_remote *r, const ms_chat_msg *msgs, size_t n, const ms_gen_opts *go,
                         const ms_callbacks *cb, ms_gen_result *res, char *err, size_t errlen);

#endif
