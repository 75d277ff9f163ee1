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

#define HUGE_PAGE ((size_t)2 << 20)
#define PAGE ((size_t)4096)

static size_t round_up(size_t bytes, size_t unit) { return (bytes + unit - 1) & ~(unit - 1); }

/* Fields of a /proc "Name: N [kB]" file, read once: vals[i] gets the number
 * after names[i], 0 where absent or unreadable. */
static void proc_fields(const char *path, const char *const *names, unsigned long long *vals, int n)
{
    for (int i = 0; i < n; i++)
        vals[i] = 0;
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    char line[256];
    while (fgets(line, sizeof line, f))
        for (int i = 0; i < n; i++) {
            const size_t fl = strlen(names[i]);
            if (!strncmp(line, names[i], fl) && line[fl] == ':')
                sscanf(line + fl + 1, " %llu", &vals[i]);
        }
    fclose(f);
}

int hugemem_alloc(hugemem *h, size_t bytes, bool allow_hugetlb)
{
    memset(h, 0, sizeof *h);
    if (bytes == 0 || bytes > SIZE_MAX - HUGE_PAGE)
        return -ENOMEM;
    void *m = MAP_FAILED;
#ifdef MAP_HUGETLB
    if (allow_hugetlb) {
        /* the length must be whole 2 MiB pages; a private mapping reserves
         * its pages here, so too few free fails now, not at first touch */
        const size_t hbytes = round_up(bytes, HUGE_PAGE);
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
        const size_t pbytes = round_up(bytes, PAGE);
        m = aligned_alloc(PAGE, pbytes);
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

size_t hugemem_footprint(size_t bytes, bool allow_hugetlb)
{
    if (bytes == 0 || bytes > SIZE_MAX - HUGE_PAGE)
        return bytes;
#ifdef MAP_HUGETLB
    if (allow_hugetlb) {
        const size_t hbytes = round_up(bytes, HUGE_PAGE);
        /* free pages not yet promised to another mapping (Rsvd: reserved by
         * a mapping, not yet touched), as mmap counts them; Hugepagesize in kB */
        static const char *const names[] = {"HugePages_Free", "HugePages_Rsvd", "Hugepagesize"};
        unsigned long long v[3];
        proc_fields("/proc/meminfo", names, v, 3);
        if (v[2] == HUGE_PAGE / 1024 && v[0] > v[1] && (v[0] - v[1]) * HUGE_PAGE >= hbytes)
            return hbytes;
    }
#endif
    return round_up(bytes, PAGE);
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
    unsigned long long kb;
    proc_fields("/proc/self/status", &field, &kb, 1);
    return (uint64_t)kb * 1024;
}

uint64_t hugemem_process_bytes(void) { return proc_status_bytes("HugetlbPages"); }
