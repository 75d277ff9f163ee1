/* strbuf.h - one checked growable byte buffer for the front ends and the
 * generator: text collected token by token, request bodies, SSE output.
 * A failed growth returns -ENOMEM and leaves the buffer as it was (its
 * text intact and still owned), so a caller can report the error instead
 * of losing the buffer; sizes are overflow-checked.
 * Owns: strbuf_* only.  Allocation failures can be injected for tests
 * (MOESTREAM_FAULT=alloc:N[:K], see fault.h).
 * Thread safety: a strbuf belongs to one thread at a time. */
#ifndef MS_STRBUF_H
#define MS_STRBUF_H

#include <stddef.h>

typedef struct strbuf {
    char *s;    /* the bytes plus a NUL terminator, owned; NULL until the first growth */
    size_t n;   /* bytes held, the terminator not counted */
    size_t cap; /* bytes allocated at s */
} strbuf;

#define STRBUF_INIT {NULL, 0, 0}

void strbuf_init(strbuf *b);
/* Releases the bytes; b is empty and reusable after.  Accepts NULL. */
void strbuf_free(strbuf *b);
/* Room for `more` bytes beyond n (and the terminator).  0 or -ENOMEM
 * (allocation failed or the size would overflow). */
int strbuf_reserve(strbuf *b, size_t more);
/* Appends n bytes (which may contain NULs).  0 or -ENOMEM; on failure the
 * buffer is unchanged. */
int strbuf_append(strbuf *b, const void *p, size_t n);
int strbuf_puts(strbuf *b, const char *s);
/* The text, NUL-terminated; "" while nothing was ever added. */
const char *strbuf_str(const strbuf *b);
/* Forgets the first k bytes (k <= n), keeping the allocation. */
void strbuf_consume(strbuf *b, size_t k);
/* Empties the buffer, keeping the allocation. */
void strbuf_clear(strbuf *b);
/* Hands the bytes to the caller (free() them; NULL if nothing was ever
 * added) and leaves b empty. */
char *strbuf_detach(strbuf *b);

#endif
