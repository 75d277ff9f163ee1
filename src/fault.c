/* fault.c - see fault.h.  The spec is parsed once, on the first check
 * (pthread_once), so a front end needs no setup call; the counters are
 * atomic because the server's connection threads grow buffers at once. */
#include "fault.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const names[FAULT_KINDS] = {"write", "alloc"};

static struct {
    atomic_long every[FAULT_KINDS]; /* fail every Nth event; 0: never */
    atomic_long max[FAULT_KINDS];   /* at most this many failures; 0: no limit */
    atomic_long seen[FAULT_KINDS], failed[FAULT_KINDS];
} F;

static pthread_once_t once = PTHREAD_ONCE_INIT;

static void parse(const char *spec)
{
    for (int k = 0; k < FAULT_KINDS; k++) {
        atomic_store(&F.every[k], 0);
        atomic_store(&F.max[k], 0);
        atomic_store(&F.seen[k], 0);
        atomic_store(&F.failed[k], 0);
    }
    if (!spec || !*spec)
        return;
    char kind[16];
    long n = 0, max = 0;
    int got = sscanf(spec, "%15[a-z]:%ld:%ld", kind, &n, &max);
    for (int k = 0; k < FAULT_KINDS; k++)
        if (got >= 2 && !strcmp(kind, names[k])) {
            if (n <= 0 || (got == 3 && max <= 0)) {
                fprintf(stderr, "moestream: ignoring MOESTREAM_FAULT=%s (want %s:N[:K], N, K > 0)\n",
                        spec, names[k]);
                return;
            }
            atomic_store(&F.every[k], n);
            atomic_store(&F.max[k], got == 3 ? max : 0);
        }
    /* other kinds (eio, short, stall) belong to io/uring.c */
}

static void parse_env(void)
{
    parse(getenv("MOESTREAM_FAULT"));
}

bool fault_hit(fault_kind k)
{
    pthread_once(&once, parse_env);
    long every = atomic_load_explicit(&F.every[k], memory_order_relaxed);
    if (!every)
        return false;
    long i = atomic_fetch_add(&F.seen[k], 1) + 1;
    if (i % every)
        return false;
    long max = atomic_load(&F.max[k]);
    if (max && atomic_fetch_add(&F.failed[k], 1) >= max)
        return false;
    return true;
}

void fault_set(const char *spec)
{
    pthread_once(&once, parse_env);
    parse(spec);
}
