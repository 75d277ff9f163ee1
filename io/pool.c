/* pool.c - see pool.h.  One anonymous mapping, on reserved huge pages
 * (MAP_HUGETLB) when there are enough, else with MADV_HUGEPAGE so the kernel
 * backs it with 2 MB pages where it can (fewer TLB misses on the hot GEMV
 * path); mlock on request so a busy system cannot swap experts out. */
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
    /* Reserved huge pages first (only when the admin set vm.nr_hugepages;
     * the mapping length must be a multiple of the 2 MB page), else
     * ordinary pages with transparent huge page advice. */
    const size_t huge_sz = (size_t)2 << 20;
    size_t hbytes = (p->bytes + huge_sz - 1) & ~(huge_sz - 1);
    void *m = MAP_FAILED;
#ifdef MAP_HUGETLB
    m = mmap(NULL, hbytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
    if (m != MAP_FAILED) {
        p->hugetlb = true;
        p->map_bytes = hbytes;
    }
#endif
    if (m == MAP_FAILED) {
        m = mmap(NULL, p->bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED) {
            snprintf(err, errlen, "cannot map a %.2f GiB expert pool: %s", (double)p->bytes / 1073741824.0,
                     strerror(errno));
            return -ENOMEM;
        }
        p->map_bytes = p->bytes;
    }
    p->base = m;
    p->huge = p->hugetlb || madvise(m, p->bytes, MADV_HUGEPAGE) == 0;
    if (lock)
        p->locked = mlock(m, p->bytes) == 0;
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
    if (p->base)
        munmap(p->base, p->map_bytes);
    memset(p, 0, sizeof *p);
}
