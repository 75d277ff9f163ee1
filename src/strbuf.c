/* strbuf.c - see strbuf.h.
 * Growth doubles the capacity (at least 64 bytes) so appending token by
 * token is amortised O(1); the allocation is never shrunk.  The only
 * allocation call is in grow(), so the fault hook covers every path. */
#include "strbuf.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fault.h"

void strbuf_init(strbuf *b)
{
    b->s = NULL;
    b->n = b->cap = 0;
}

void strbuf_free(strbuf *b)
{
    if (!b)
        return;
    free(b->s);
    strbuf_init(b);
}

static int grow(strbuf *b, size_t need)
{
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need) {
        if (cap > SIZE_MAX / 2) {
            cap = need;
            break;
        }
        cap *= 2;
    }
    if (fault_hit(FAULT_ALLOC))
        return -ENOMEM;
    char *s = realloc(b->s, cap);
    if (!s)
        return -ENOMEM;
    if (!b->s)
        s[0] = 0;
    b->s = s;
    b->cap = cap;
    return 0;
}

int strbuf_reserve(strbuf *b, size_t more)
{
    if (more > SIZE_MAX - 1 - b->n)
        return -ENOMEM;
    size_t need = b->n + more + 1;
    return need <= b->cap ? 0 : grow(b, need);
}

int strbuf_append(strbuf *b, const void *p, size_t n)
{
    int rc = strbuf_reserve(b, n);
    if (rc)
        return rc;
    if (n)
        memcpy(b->s + b->n, p, n);
    b->n += n;
    b->s[b->n] = 0;
    return 0;
}

int strbuf_puts(strbuf *b, const char *s)
{
    return strbuf_append(b, s, strlen(s));
}

const char *strbuf_str(const strbuf *b)
{
    return b->s ? b->s : "";
}

void strbuf_consume(strbuf *b, size_t k)
{
    if (k > b->n)
        k = b->n;
    if (!k)
        return;
    memmove(b->s, b->s + k, b->n - k);
    b->n -= k;
    b->s[b->n] = 0;
}

void strbuf_clear(strbuf *b)
{
    b->n = 0;
    if (b->s)
        b->s[0] = 0;
}

char *strbuf_detach(strbuf *b)
{
    char *s = b->s;
    strbuf_init(b);
    return s;
}
