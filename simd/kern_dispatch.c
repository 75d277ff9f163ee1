/* kern_dispatch.c - picks the kernel table once: CPU features (cpuid plus
 * the OS's xgetbv save-state check on x86, hwcaps on aarch64), overridable
 * with MOESTREAM_SIMD=scalar|avx2|avx512|neon.
 * The top of simd/'s layers: it calls the ISA tables (kern_isa.h) and the
 * scalar one (kern_scalar.h); nothing below calls back into it. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kern_isa.h"
#include "kern_scalar.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

/* ---- CPU detection ---- */

static bool cpu_has(const char *isa)
{
#if defined(__x86_64__) || defined(__i386__)
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d))
        return false;
    bool osxsave = c & (1u << 27), avx = c & (1u << 28), fma = c & (1u << 12), f16c = c & (1u << 29);
    if (!osxsave || !avx)
        return false;
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    bool ymm_os = (lo & 0x6) == 0x6, zmm_os = (lo & 0xe6) == 0xe6;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d))
        return false;
    bool avx2 = b & (1u << 5), bmi2 = b & (1u << 8);
    bool avx512f = b & (1u << 16), avx512dq = b & (1u << 17), avx512bw = b & (1u << 30),
         avx512vl = b & (1u << 31), vbmi = c & (1u << 1), vnni = c & (1u << 11);
    if (!strcmp(isa, "avx2"))
        return ymm_os && avx2 && fma && f16c && bmi2;
    if (!strcmp(isa, "avx512"))
        return ymm_os && zmm_os && avx2 && fma && f16c && bmi2 && avx512f && avx512dq &&
               avx512bw && avx512vl && vbmi && vnni;
    return false;
#elif defined(__aarch64__)
    return !strcmp(isa, "neon");
#else
    (void)isa;
    return false;
#endif
}

const kern_table *kern_get_isa(const char *isa)
{
    if (!strcmp(isa, "scalar"))
        return kern_table_scalar();
    if (!cpu_has(isa))
        return NULL;
#ifdef KERN_HAVE_AVX2
    if (!strcmp(isa, "avx2"))
        return kern_table_avx2();
#endif
#ifdef KERN_HAVE_AVX512
    if (!strcmp(isa, "avx512"))
        return kern_table_avx512();
#endif
#ifdef KERN_HAVE_NEON
    if (!strcmp(isa, "neon"))
        return kern_table_neon();
#endif
    return NULL; /* avx512: no dedicated kernels yet; avx2 runs on those CPUs */
}

static const kern_table *chosen;
static pthread_once_t chosen_once = PTHREAD_ONCE_INIT;

static void choose(void)
{
    static const char *order[] = {"avx512", "avx2", "neon", "scalar"};
    const char *want = getenv("MOESTREAM_SIMD");
    if (want && *want) {
        chosen = kern_get_isa(want);
        if (!chosen)
            fprintf(stderr, "moestream: MOESTREAM_SIMD=%s is not available on this CPU/build; "
                            "using the best available\n",
                    want);
    }
    for (size_t i = 0; !chosen && i < sizeof order / sizeof order[0]; i++)
        chosen = kern_get_isa(order[i]);
}

const kern_table *kern_get(void)
{
    pthread_once(&chosen_once, choose);
    return chosen;
}
