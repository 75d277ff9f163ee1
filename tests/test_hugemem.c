/* test_hugemem.c - io/hugemem.h: a buffer on ordinary pages when reserved
 * huge pages are not allowed or not there (page-rounded, writable, freed
 * once); on reserved 2 MiB pages when the kernel has them (the test sets
 * some aside as root and puts the old count back): rounded to whole pages,
 * counted by hugemem_process_bytes and by engine_peak_rss above VmHWM, and
 * given back by hugemem_free.  Zero bytes is refused. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "engine.h"
#include "hugemem.h"

#define MIB ((size_t)1 << 20)
static const char *NR = "/proc/sys/vm/nr_hugepages";

static long read_long(const char *path)
{
    FILE *f = fopen(path, "r");
    long v = -1;
    if (f) {
        if (fscanf(f, "%ld", &v) != 1)
            v = -1;
        fclose(f);
    }
    return v;
}

static int write_long(const char *path, long v)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    int rc = fprintf(f, "%ld\n", v) < 0;
    return fclose(f) || rc ? -1 : 0;
}

/* hugemem_footprint: whole 4 KiB pages, or 2 MiB ones when they would be
 * reserved ones (checked against the allocation in both tests) */
static void test_ordinary(void **state)
{
    (void)state;
    hugemem h;
    assert_int_equal(hugemem_alloc(&h, 5 * MIB + 123, false), 0);
    assert_non_null(h.base);
    assert_false(h.hugetlb);
    assert_int_equal(h.bytes, 5 * MIB + 123);
    assert_true(h.map_bytes >= h.bytes && h.map_bytes % 4096 == 0 && h.map_bytes - h.bytes < 4096);
    /* what a plan counts for it */
    assert_int_equal(hugemem_footprint(5 * MIB + 123, false), h.map_bytes);
    memset(h.base, 0x5a, h.bytes);
    assert_int_equal(((unsigned char *)h.base)[h.bytes - 1], 0x5a);
    hugemem_free(&h);
    assert_null(h.base);
    hugemem_free(&h); /* freed: a no-op */
    assert_int_equal(hugemem_alloc(&h, 0, true), -ENOMEM);
    assert_null(h.base);
}

static long nr_old = -1; /* put back by restore_pages, whatever failed */

static int restore_pages(void **state)
{
    (void)state;
    if (nr_old >= 0)
        write_long(NR, nr_old);
    nr_old = -1;
    return 0;
}

static void test_reserved(void **state)
{
    (void)state;
    const long old = read_long(NR);
    nr_old = old;
    if (old < 0 || write_long(NR, old + 40)) {
        nr_old = -1;
        skip(); /* not root: cannot set pages aside */
        return;
    }
    const size_t want = 64 * MIB + 1;
    hugemem h;
    const uint64_t before = hugemem_process_bytes();
    const size_t foot = hugemem_footprint(want, true);
    int rc = hugemem_alloc(&h, want, true);
    if (rc == 0 && !h.hugetlb) { /* the kernel found too few free 2 MiB pages */
        hugemem_free(&h);
        write_long(NR, old);
        skip();
        return;
    }
    assert_int_equal(rc, 0);
    assert_true(h.hugetlb && h.huge);
    assert_int_equal(h.map_bytes, 66 * MIB);
    assert_int_equal(foot, h.map_bytes); /* the plan's figure, taken before */
    assert_int_equal(hugemem_footprint(want, false), 64 * MIB + 4096);
    memset(h.base, 1, h.bytes);
    assert_true(hugemem_process_bytes() >= before + 66 * MIB);
    const uint64_t hwm = proc_status_bytes("VmHWM"); /* first: VmHWM only grows */
    assert_true(engine_peak_rss() >= hwm + 66 * MIB);
    hugemem_free(&h);
    assert_int_equal(hugemem_process_bytes(), before);
    /* not allowed: ordinary pages even with reserved ones free */
    assert_int_equal(hugemem_alloc(&h, want, false), 0);
    assert_false(h.hugetlb);
    hugemem_free(&h);
    assert_int_equal(write_long(NR, old), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ordinary),
        cmocka_unit_test_teardown(test_reserved, restore_pages),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
