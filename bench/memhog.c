/* memhog.c - holds N bytes of RAM locked until killed, so a benchmark can
 * run a process with only (total - N) of the machine's memory available to
 * it and its page cache (the mmap baseline held to the pager's budget). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: memhog BYTES\n");
        return 2;
    }
    size_t n = strtoull(argv[1], NULL, 10);
    void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED || mlock(p, n) != 0) {
        perror("memhog");
        return 1;
    }
    memset(p, 1, n);
    printf("locked %zu bytes\n", n);
    fflush(stdout);
    pause();
    return 0;
}
