/* hugemem.c - see hugemem.h.
 *
 * Owns: hugemem_alloc, hugemem_footprint, hugemem_free,
 * hugemem_process_bytes, proc_status_bytes.  Used by the
 * expert pool (pool.c) and the resident weights' arena (src/model.c). */
#include "hugemem.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

int hugemem_alloc(hugemem *h, size_t bytes, bool allow_hugetlb)
{
    memset(h, 0, sizeof *h);
    if (bytes == 0 || bytes > SIZE_MAX - ((size_t)2 << 20))
        return -ENOMEM;
    void *m = MAP_FAILED;
#ifdef MAP_HUGETLB
    if (allow_hugetlb) {
        /* the length must be whole 2 MiB pages; a private mapping reserves
         * its pages here, so too few free fails now, not at first touch */
        const size_t hsz = (size_t)2 << 20, hbytes = (bytes + hsz - 1) & ~(hsz - 1);
        m = mmap(NULL, hbytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
        if (m != MAP_FAILED) {
            h->hugetlb = true;
            h->map_bytes = hbytes;
        }
    }
#endif
    if (m == MAP_FAILED) {
        /* from the allocator, so that its counts (mallinfo2, a sanitizer's)
         * see these bytes as they saw them before this file existed; glibc
         * maps a block this big on its own */
        const size_t pbytes = (bytes + 4095) & ~(size_t)4095;
        m = aligned_alloc(4096, pbytes);
        if (!m)
            return -ENOMEM;
        h->map_bytes = pbytes;
        /* 2 MB pages where the kernel has them: fewer faults, fewer TLB misses */
        h->huge = madvise(m, pbytes, MADV_HUGEPAGE) == 0;
    }
    h->huge = h->huge || h->hugetlb;
    h->base = m;
    h->bytes = bytes;
    return 0;
}

/* a "Field: N" line of /proc/meminfo (a page count); 0 if absent */
static uint64_t meminfo_count(const char *field)
{
    FILE *f = fopen("/proc/meminfo", "r");
    if (!f)
        return 0;
    const size_t fl = strlen(field);
    char line[256];
    unsigned long long n = 0;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, field, fl) && line[fl] == ':' && sscanf(line + fl + 1, " %llu", &n) == 1)
            break;
    fclose(f);
    return (uint64_t)n;
}

size_t hugemem_footprint(size_t bytes, bool allow_hugetlb)
{
    if (bytes == 0 || bytes > SIZE_MAX - ((size_t)2 << 20))
        return bytes;
#ifdef MAP_HUGETLB
    if (allow_hugetlb) {
        const size_t hsz = (size_t)2 << 20, hbytes = (bytes + hsz - 1) & ~(hsz - 1);
        /* free pages not yet promised to another mapping (Rsvd: reserved by
         * a mapping, not yet touched), as mmap counts them */
        const uint64_t fr = meminfo_count("HugePages_Free"), rs = meminfo_count("HugePages_Rsvd");
        if (meminfo_count("Hugepagesize") == 2048 && fr > rs && (fr - rs) * hsz >= hbytes)
            return hbytes;
    }
#endif
    return (bytes + 4095) & ~(size_t)4095;
}

void hugemem_free(hugemem *h)
{
    if (h->base && h->hugetlb)
        munmap(h->base, h->map_bytes);
    else
        free(h->base);
    memset(h, 0, sizeof *h);
}

uint64_t proc_status_bytes(const char *field)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return 0;
    const size_t fl = strlen(field);
    char line[256];
    unsigned long long kb = 0;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, field, fl) && line[fl] == ':' && sscanf(line + fl + 1, " %llu kB", &kb) == 1)
            break;
    fclose(f);
    return (uint64_t)kb * 1024;
}

uint64_t hugemem_process_bytes(void) { return proc_status_bytes("HugetlbPages"); }
