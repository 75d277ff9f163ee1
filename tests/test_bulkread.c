/* test_bulkread.c - the load's bulk reader on a temp file of known bytes
 * (byte i = hash of i): ranges at unaligned offsets and lengths, one ending
 * at the end of the file (its aligned tail passes it), land byte for byte
 * at bulkread_data_off in their regions, moved down where the asked
 * alignment needs it, and the bytes around them stay untouched where the
 * region has room; the same through the pread path and with injected short
 * reads (MOESTREAM_LOAD_FAULT=short:N); an injected EIO fails the call with
 * the file and offset; a region not 4096-aligned or a file index out of
 * range is refused before any read; progress reaches the total.  And the
 * ring's background buffer registration (the pool's): reads before it
 * starts, while it runs and after it finished all land right, and every
 * buffer ends up registered. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <unistd.h>

#include "bulkread.h"
#include "uring.h"

#define FILE_BYTES (3 * 1048576 + 12345)

static char path[256];

static uint8_t byte_at(uint64_t i) { return (uint8_t)((i * 2654435761u) >> 13); }

static int setup(void **state)
{
    (void)state;
    const char *d = getenv("MOESTREAM_TMP");
    snprintf(path, sizeof path, "%s/bulkread.XXXXXX", d && *d ? d : "/var/tmp");
    int fd = mkstemp(path);
    if (fd < 0)
        return -1;
    uint8_t *b = malloc(FILE_BYTES);
    for (uint64_t i = 0; i < FILE_BYTES; i++)
        b[i] = byte_at(i);
    ssize_t n = write(fd, b, FILE_BYTES);
    free(b);
    close(fd);
    return n == FILE_BYTES ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    unlink(path);
    return 0;
}

/* (off, len) pairs: unaligned both ways, one inside a block, one at 32 mod
 * 64 (GGUF's usual), one block-aligned, one to the end of the file, one
 * larger than a chunk. */
static const uint64_t RANGES[][2] = {
    {100, 5000},          {4096 * 3 + 32, 777}, {8192, 4096},
    {FILE_BYTES - 3001, 3001}, {12345, 1048576 + 999}, {4096 * 500 + 4064, 64},
};
#define NR (sizeof RANGES / sizeof RANGES[0])

typedef struct prog {
    uint64_t last, total;
    int calls;
} prog;

static void on_progress(void *ud, uint64_t done, uint64_t total)
{
    prog *p = ud;
    p->last = done;
    p->total = total;
    p->calls++;
}

/* Reads the ranges with the given options; checks every range's bytes and
 * the progress.  Returns bulkread_run's result. */
static int read_and_check(size_t align, bool no_uring, size_t chunk, char *err, size_t errlen)
{
    const char *paths[1] = {path};
    bulkread_range r[NR];
    uint8_t *mem[NR];
    for (size_t i = 0; i < NR; i++) {
        uint64_t rb = bulkread_region_bytes(RANGES[i][0], RANGES[i][1]);
        assert_true(rb % 4096 == 0 && rb >= RANGES[i][1]);
        mem[i] = aligned_alloc(4096, rb);
        memset(mem[i], 0xEE, rb);
        r[i] = (bulkread_range){0, RANGES[i][0], RANGES[i][1], mem[i]};
    }
    bulkread_opts o;
    bulkread_opts_default(&o);
    o.align = align;
    o.no_uring = no_uring;
    o.chunk = chunk;
    prog p = {0, 0, 0};
    o.progress = on_progress;
    o.progress_ud = &p;
    bulkread_stats st;
    int rc = bulkread_run(paths, 1, r, NR, &o, &st, err, errlen);
    if (rc == 0) {
        uint64_t want = 0, moved = 0;
        for (size_t i = 0; i < NR; i++) {
            const uint64_t off = RANGES[i][0], len = RANGES[i][1];
            const uint64_t at = bulkread_data_off(off, align);
            assert_true(at % align == 0 && at <= off % 4096);
            moved += at != off % 4096 ? len : 0;
            for (uint64_t k = 0; k < len; k++)
                if (mem[i][at + k] != byte_at(off + k))
                    fail_msg("range %zu (off %llu len %llu, align %zu): byte %llu wrong", i,
                             (unsigned long long)off, (unsigned long long)len, align, (unsigned long long)k);
            want += len;
        }
        assert_int_equal(st.wanted, want);
        assert_int_equal(st.moved, moved);
        assert_true(st.bytes >= want);
        assert_int_equal(p.last, want);
        assert_int_equal(p.total, want);
        assert_true(p.calls >= (int)NR);
        assert_true(st.path[0] != 0);
        assert_int_equal(st.io_uring, !no_uring);
    }
    for (size_t i = 0; i < NR; i++)
        free(mem[i]);
    return rc;
}

static void test_ranges_land(void **state)
{
    (void)state;
    char err[512] = "";
    unsetenv("MOESTREAM_LOAD_FAULT");
    for (size_t align = 1; align <= 4096; align *= 4)
        assert_int_equal(read_and_check(align, false, 0, err, sizeof err), 0);
    assert_int_equal(read_and_check(64, false, 8192, err, sizeof err), 0); /* many chunks per range */
    assert_int_equal(read_and_check(32, true, 0, err, sizeof err), 0);     /* pread */
}

static void test_short_reads(void **state)
{
    (void)state;
    char err[512] = "";
    setenv("MOESTREAM_LOAD_FAULT", "short:1", 1); /* every read comes back half done */
    assert_int_equal(read_and_check(64, false, 65536, err, sizeof err), 0);
    assert_int_equal(read_and_check(64, true, 65536, err, sizeof err), 0);
    unsetenv("MOESTREAM_LOAD_FAULT");
}

static void test_eio(void **state)
{
    (void)state;
    for (int no_uring = 0; no_uring < 2; no_uring++) {
        char err[512] = "";
        setenv("MOESTREAM_LOAD_FAULT", "eio:3", 1);
        assert_int_equal(read_and_check(64, no_uring, 0, err, sizeof err), -EIO);
        unsetenv("MOESTREAM_LOAD_FAULT");
        assert_non_null(strstr(err, path));
        assert_non_null(strstr(err, "at offset"));
        assert_non_null(strstr(err, "Input/output error"));
    }
}

static void test_refused(void **state)
{
    (void)state;
    const char *paths[1] = {path};
    uint8_t *m = aligned_alloc(4096, 3 * 4096);
    char err[256] = "";
    bulkread_range bad_region = {0, 0, 100, m + 64};
    assert_int_equal(bulkread_run(paths, 1, &bad_region, 1, NULL, NULL, err, sizeof err), -EINVAL);
    bulkread_range bad_file = {1, 0, 100, m};
    assert_int_equal(bulkread_run(paths, 1, &bad_file, 1, NULL, NULL, err, sizeof err), -EINVAL);
    /* past the end of the file: the read ends early */
    bulkread_range past = {0, FILE_BYTES - 10, 100, m};
    assert_int_equal(bulkread_run(paths, 1, &past, 1, NULL, NULL, err, sizeof err), -EIO);
    assert_non_null(strstr(err, path));
    free(m);
}

/* Reads block b of the file into buffer slot i and checks it. */
static void ring_read_check(uring *u, uint8_t *buf, uint64_t b)
{
    assert_int_equal(uring_read(u, 0, buf, b * 4096, 4096, 4096, b), 0);
    assert_int_equal(uring_submit(u), 0);
    uint64_t tag;
    int res;
    char err[256];
    assert_int_equal(uring_wait(u, true, &tag, &res, err, sizeof err), 0);
    assert_int_equal(res, 0);
    assert_int_equal(tag, b);
    for (uint64_t k = 0; k < 4096; k++)
        if (buf[k] != byte_at(b * 4096 + k))
            fail_msg("block %llu byte %llu wrong", (unsigned long long)b, (unsigned long long)k);
}

static void test_background_registration(void **state)
{
    (void)state;
    enum { NB = 16, PER = 64 * 4096 };
    uint8_t *mem = aligned_alloc(4096, (size_t)NB * PER);
    struct iovec iov[NB];
    for (int i = 0; i < NB; i++)
        iov[i] = (struct iovec){mem + (size_t)i * PER, PER};
    const char *paths[1] = {path};
    uring_opts o;
    uring_opts_default(&o);
    o.fault = "";
    o.register_bg = true;
    o.register_later = true;
    uring *u;
    char err[256];
    assert_int_equal(uring_create(&u, paths, 1, iov, NB, &o, err, sizeof err), 0);
    uring_stats st;
    uring_get_stats(u, &st);
    assert_int_equal(st.bufs, NB);
    assert_int_equal(st.bufs_registered, 0); /* later: not before uring_register_start */
    for (int i = 0; i < NB; i++)             /* unregistered reads */
        ring_read_check(u, mem + (size_t)i * PER, (uint64_t)i);
    uring_register_start(u);
    for (int round = 0; round < 2000; round++) { /* while it runs */
        const int i = round % NB;
        ring_read_check(u, mem + (size_t)i * PER + 4096 * (size_t)(round % 64), (uint64_t)(round % 700));
        uring_get_stats(u, &st);
        if (st.bufs_registered == NB && round >= NB)
            break;
    }
    for (int w = 0; w < 500 && st.bufs_registered < NB; w++) {
        usleep(10000);
        uring_get_stats(u, &st);
    }
    assert_int_equal(st.bufs_registered, NB);
    for (int i = 0; i < NB; i++) /* registered reads */
        ring_read_check(u, mem + (size_t)i * PER + 8192, (uint64_t)(i + 100));
    uring_get_stats(u, &st);
    if (st.io_uring)
        assert_non_null(strstr(st.path, "registered in the background"));
    uring_register_start(u); /* a second start does nothing */
    uring_destroy(u);
    /* destroyed while the registration runs: joins it */
    assert_int_equal(uring_create(&u, paths, 1, iov, NB, &o, err, sizeof err), 0);
    uring_register_start(u);
    uring_destroy(u);
    free(mem);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ranges_land),
        cmocka_unit_test(test_short_reads),
        cmocka_unit_test(test_eio),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_background_registration),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
