/* touch_mem.c - how fast never-touched memory is handed out: maps N GiB
 * (argv[1], default 4) with MADV_HUGEPAGE, as the loader's arena is, and
 * writes one byte per 4 KiB page.  Every cold load has to do this for its
 * resident weights whatever reads them; in a VM with free page reporting
 * the host backs each page on first touch, and that can be slower than the
 * disk (bench/bench_load.sh prints it next to the disk's bandwidth).
 * Standalone (cc -O2 touch_mem.c). */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>

int main(int argc, char **argv)
{
    const double gib = argc > 1 ? atof(argv[1]) : 4.0;
    const size_t n = (size_t)(gib * 1073741824.0);
    char *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        perror("mmap");
        return 1;
    }
    (void)madvise(p, n, MADV_HUGEPAGE);
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (size_t i = 0; i < n; i += 4096)
        p[i] = 1;
    clock_gettime(CLOCK_MONOTONIC, &b);
    const double s = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) * 1e-9;
    printf("%.1f GiB first-touched in %.2f s = %.2f GiB/s\n", gib, s, gib / s);
    return 0;
}
