/* pool.h - the fixed RAM pool that routed experts are paged into: n slots
 * of slot_bytes, allocated once, 4 KiB aligned (O_DIRECT), on huge pages
 * where the system allows, optionally locked in RAM.
 * Owns: pool_* only.  The memory is the pool's; slots are handed out by
 * index and never move. */
#ifndef MS_POOL_H
#define MS_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hugemem.h"
#include <sys/uio.h>

typedef struct pool {
    uint8_t *base;
    size_t slot_bytes; /* multiple of 4096 */
    int n_slots;
    size_t bytes;
    hugemem mem;       /* the memory behind base (hugemem.h): mem.hugetlb, mem.huge */
    bool locked;
    /* Whole slots, ~128 MiB each, for buffer registration: the unit the
     * ring registers in the background (slots past the last one are read
     * unregistered). */
    struct iovec iov[256];
    int n_iov;
} pool;

/* 0, -EINVAL (no slots) or -ENOMEM, with a message.  p is zeroed first,
 * so pool_free(p) is safe after a failure. */
int pool_init(pool *p, int n_slots, size_t slot_bytes, bool lock, char *err, size_t errlen);
void pool_free(pool *p);
static inline uint8_t *pool_slot(const pool *p, int i) { return p->base + (size_t)i * p->slot_bytes; }

#endif
