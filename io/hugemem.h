/* hugemem.h - big anonymous buffers on reserved huge pages when there are
 * enough, else on ordinary pages with transparent-huge-page advice.
 *
 * Why reserved pages first: besides fewer TLB misses, on a VM whose host
 * takes back freed guest memory (free page reporting, DAMON reclaim) every
 * first touch of ordinary memory waits on the host: 0.4 GiB/s measured,
 * slower than the disk, on every load.  Reserved huge pages stay with the
 * guest between processes, so only their first use pays it (then 14 GiB/s
 * measured on the same VM). */
#ifndef MOESTREAM_HUGEMEM_H
#define MOESTREAM_HUGEMEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct hugemem {
    void *base;
    size_t bytes;     /* asked for */
    size_t map_bytes; /* bytes rounded up to the page size used */
    bool hugetlb;     /* on reserved huge pages (vm.nr_hugepages) */
    bool huge;        /* hugetlb, or transparent huge pages advised */
} hugemem;

/* bytes (> 0) on reserved 2 MiB pages when allow_hugetlb and the kernel
 * has enough free, else ordinary pages from the allocator (4 KiB aligned)
 * advised MADV_HUGEPAGE.
 * 0, or -ENOMEM with *h zeroed. */
int hugemem_alloc(hugemem *h, size_t bytes, bool allow_hugetlb);

/* The bytes hugemem_alloc(bytes, allow_hugetlb) would map if called now:
 * rounded up to whole 2 MiB pages when the kernel has that many reserved
 * pages free, else to 4 KiB.  What a memory plan counts (the free count
 * can change before the allocation; a few MiB at most either way). */
size_t hugemem_footprint(size_t bytes, bool allow_hugetlb);

/* Unmaps; a zeroed or freed *h is a no-op. */
void hugemem_free(hugemem *h);

/* Bytes of reserved huge pages this process has mapped now (HugetlbPages
 * of /proc/self/status): not in VmRSS/VmHWM, so a memory budget check adds
 * them. 0 if unknown. */
uint64_t hugemem_process_bytes(void);

/* A "Field: N kB" line of /proc/self/status (VmHWM, HugetlbPages, ...) in
 * bytes; 0 if absent or unreadable. */
uint64_t proc_status_bytes(const char *field);

#endif
