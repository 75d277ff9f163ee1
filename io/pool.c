/* pool.c - see pool.h.  One anonymous mapping (hugemem.h: reserved huge
 * pages when there are enough, else transparent huge pages advised: fewer
 * TLB misses on the hot GEMV path); mlock on request so a busy system
 * cannot swap experts out. */
#include "pool.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

int pool_init(pool *p, int n_slots, size_t slot_bytes, bool lock, char *err, size_t errlen)
{
    memset(p, 0, sizeof *p);
    slot_bytes = (slot_bytes + 4095) & ~(size_t)4095;
    p->slot_bytes = slot_bytes;
    p->n_slots = n_slots;
    p->bytes = slot_bytes * (size_t)n_slots;
    if (n_slots <= 0) {
        snprintf(err, errlen, "expert pool needs at least one slot");
        return -EINVAL;
    }
    /* reserved huge pages when the admin set enough aside, else ordinary
     * pages with transparent huge page advice (hugemem.h) */
    const int rc = hugemem_alloc(&p->mem, p->bytes, true);
    if (rc) {
        snprintf(err, errlen, "cannot map a %.2f GiB expert pool: %s", (double)p->bytes / 1073741824.0,
                 strerror(-rc));
        return rc;
    }
    p->base = p->mem.base;
    if (lock)
        p->locked = mlock(p->base, p->bytes) == 0;
    /* registration iovecs: whole slots, ~128 MiB each (the kernel's limit
     * is 1 GiB; smaller chunks land sooner in background registration) */
    size_t per = ((size_t)128 << 20) / slot_bytes;
    if (per == 0)
        per = 1;
    const int max_iov = (int)(sizeof p->iov / sizeof p->iov[0]);
    for (int s = 0; s < n_slots && p->n_iov < max_iov; s += (int)per) {
        size_t k = (size_t)(n_slots - s) < per ? (size_t)(n_slots - s) : per;
        p->iov[p->n_iov].iov_base = pool_slot(p, s);
        p->iov[p->n_iov].iov_len = k * slot_bytes;
        p->n_iov++;
    }
    return 0;
}

void pool_free(pool *p)
{
    if (p->locked)
        munlock(p->base, p->bytes);
    hugemem_free(&p->mem);
    memset(p, 0, sizeof *p);
}
