/* chat.c - see chat.h. */
#include "chat.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define T_BOS "<｜begin▁of▁sentence｜>"
#define T_EOS "<｜end▁of▁sentence｜>"
#define T_USER "<｜User｜>"
#define T_ASSISTANT "<｜Assistant｜>"
#define T_THINK "<think>"

const char *chat_strip_think(const char *s)
{
    const char *last = NULL, *p = s;
    while ((p = strstr(p, "</think>")) != NULL) {
        last = p + strlen("</think>");
        p = last;
    }
    return last ? last : s;
}

int chat_check_fits(const tok_vocab *v, const chat_msg *msgs, size_t n, size_t n_ctx, char *err,
                    size_t errlen)
{
    size_t len = 0;
    for (size_t i = 0; i < n; i++) /* earlier turns' reasoning is not rendered */
        len += strlen(!strcmp(msgs[i].role, "assistant") ? chat_strip_think(msgs[i].content)
                                                          : msgs[i].content);
    return tok_check_fits(v, len, n_ctx, err, errlen);
}

typedef struct idv {
    int32_t *v;
    size_t n, cap;
} idv;

static int push(idv *a, const int32_t *x, size_t n)
{
    if (a->n + n > a->cap) {
        size_t cap = a->cap ? a->cap : 256;
        while (cap < a->n + n)
            cap *= 2;
        int32_t *nv = realloc(a->v, cap * sizeof *nv);
        if (!nv)
            return -ENOMEM;
        a->v = nv;
        a->cap = cap;
    }
    memcpy(a->v + a->n, x, n * sizeof *x);
    a->n += n;
    return 0;
}

static int push_text(idv *a, const tok_vocab *v, const char *text)
{
    int32_t *ids;
    size_t n;
    int rc = tok_encode(v, text, strlen(text), TOK_NO_ADDED, &ids, &n);
    if (rc)
        return rc;
    rc = push(a, ids, n);
    free(ids);
    return rc;
}

static int push_tok(idv *a, const tok_vocab *v, const char *text, char *err, size_t errlen)
{
    int32_t id = tok_find(v, text);
    if (id < 0) {
        snprintf(err, errlen, "the vocabulary has no %s token: not a DeepSeek-R1 chat model", text);
        return -EINVAL;
    }
    return push(a, &id, 1);
}

int chat_render_ids(const tok_vocab *v, const chat_msg *msgs, size_t n, bool think,
                    int32_t **ids, size_t *n_ids, char *err, size_t errlen)
{
    idv a = {0};
    int rc = push_tok(&a, v, T_BOS, err, errlen);
    /* System prompts are joined first and tokenized as one text, as the
     * reference tokenizes the rendered string (".\n\n" may be one token). */
    size_t syslen = 1;
    for (size_t i = 0; i < n; i++)
        if (!strcmp(msgs[i].role, "system"))
            syslen += strlen(msgs[i].content) + 2;
    char *sys = malloc(syslen);
    if (!sys)
        rc = -ENOMEM;
    size_t so = 0;
    for (size_t i = 0; i < n && !rc; i++)
        if (!strcmp(msgs[i].role, "system"))
            so += (size_t)snprintf(sys + so, syslen - so, "%s%s", so ? "\n\n" : "", msgs[i].content);
    if (!rc && so)
        rc = push_text(&a, v, sys);
    free(sys);
    for (size_t i = 0; i < n && !rc; i++) {
        const chat_msg *m = &msgs[i];
        if (!strcmp(m->role, "system")) {
            continue;
        } else if (!strcmp(m->role, "user")) {
            rc = push_tok(&a, v, T_USER, err, errlen);
            if (!rc)
                rc = push_text(&a, v, m->content);
        } else if (!strcmp(m->role, "assistant")) {
            rc = push_tok(&a, v, T_ASSISTANT, err, errlen);
            if (!rc)
                rc = push_text(&a, v, chat_strip_think(m->content));
            if (!rc)
                rc = push_tok(&a, v, T_EOS, err, errlen);
        } else {
            snprintf(err, errlen, "unknown chat role '%s' (use system, user or assistant)", m->role);
            rc = -EINVAL;
        }
    }
    if (!rc)
        rc = push_tok(&a, v, T_ASSISTANT, err, errlen);
    if (!rc && think) {
        rc = push_tok(&a, v, T_THINK, err, errlen);
        if (!rc)
            rc = push_text(&a, v, "\n");
    }
    if (rc) {
        free(a.v);
        if (rc == -ENOMEM)
            snprintf(err, errlen, "out of memory");
        return rc;
    }
    *ids = a.v;
    *n_ids = a.n;
    return 0;
}

char *chat_render_text(const chat_msg *msgs, size_t n, bool think)
{
    size_t cap = 256;
    for (size_t i = 0; i < n; i++)
        cap += strlen(msgs[i].content) + 64;
    char *s = malloc(cap);
    if (!s)
        return NULL;
    size_t o = (size_t)snprintf(s, cap, "%s", T_BOS);
    bool first_sys = true;
    for (size_t i = 0; i < n; i++) {
        const chat_msg *m = &msgs[i];
        if (!strcmp(m->role, "system")) {
            o += (size_t)snprintf(s + o, cap - o, "%s%s", first_sys ? "" : "\n\n", m->content);
            first_sys = false;
        } else if (!strcmp(m->role, "user")) {
            o += (size_t)snprintf(s + o, cap - o, "%s%s", T_USER, m->content);
        } else if (!strcmp(m->role, "assistant")) {
            o += (size_t)snprintf(s + o, cap - o, "%s%s%s", T_ASSISTANT,
                                  chat_strip_think(m->content), T_EOS);
        }
    }
    snprintf(s + o, cap - o, "%s%s", T_ASSISTANT, think ? T_THINK "\n" : "");
    return s;
}
