/* test_strbuf.c - the checked growable buffer: appends across many
 * growths keep every byte, a failed growth (injected through the fault
 * hook, "alloc:N[:K]") returns -ENOMEM and leaves the text intact and
 * appendable once memory is back, size overflow is refused, and
 * consume/clear/detach keep the terminator. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fault.h"
#include "strbuf.h"

static void test_append_many(void **state)
{
    (void)state;
    strbuf b = STRBUF_INIT;
    assert_string_equal(strbuf_str(&b), "");
    /* 10000 pieces of varying length: many growths, the content checked
     * byte for byte against a plain reconstruction */
    char want[200000];
    size_t wn = 0;
    for (int i = 0; i < 10000; i++) {
        char piece[32];
        int k = snprintf(piece, sizeof piece, "%d,", i * 7919 % 100003);
        assert_int_equal(strbuf_append(&b, piece, (size_t)k), 0);
        memcpy(want + wn, piece, (size_t)k);
        wn += (size_t)k;
    }
    assert_int_equal(b.n, wn);
    assert_true(b.cap > b.n);
    assert_memory_equal(b.s, want, wn);
    assert_int_equal(b.s[b.n], 0);
    /* bytes with NULs in them */
    strbuf_clear(&b);
    assert_int_equal(strbuf_append(&b, "a\0b", 3), 0);
    assert_int_equal(b.n, 3);
    assert_memory_equal(b.s, "a\0b", 4);
    strbuf_free(&b);
    assert_null(b.s);
    strbuf_free(NULL);
}

static void test_alloc_failure_keeps_text(void **state)
{
    (void)state;
    strbuf b = STRBUF_INIT;
    fault_set("alloc:2:1"); /* the second growth fails, once */
    assert_int_equal(strbuf_puts(&b, "hello "), 0); /* growth 1: 64 bytes */
    char big[100];
    memset(big, 'x', sizeof big);
    int rc = strbuf_append(&b, big, sizeof big); /* growth 2: fails */
    assert_int_equal(rc, -ENOMEM);
    assert_string_equal(strbuf_str(&b), "hello ");
    assert_int_equal(b.n, 6);
    assert_int_equal(b.cap, 64);
    /* small appends within the capacity need no growth and still work */
    assert_int_equal(strbuf_puts(&b, "world"), 0);
    assert_string_equal(strbuf_str(&b), "hello world");
    /* memory is back (K = 1 failure): the same append succeeds */
    assert_int_equal(strbuf_append(&b, big, sizeof big), 0);
    assert_int_equal(b.n, 111);
    assert_memory_equal(b.s + 11, big, sizeof big);
    strbuf_free(&b);

    /* the very first growth failing leaves an empty, usable buffer */
    fault_set("alloc:1:1");
    assert_int_equal(strbuf_puts(&b, "x"), -ENOMEM);
    assert_null(b.s);
    assert_string_equal(strbuf_str(&b), "");
    assert_int_equal(strbuf_puts(&b, "x"), 0);
    assert_string_equal(strbuf_str(&b), "x");
    strbuf_free(&b);
    fault_set(NULL);
}

static void test_overflow_refused(void **state)
{
    (void)state;
    strbuf b = STRBUF_INIT;
    assert_int_equal(strbuf_puts(&b, "abc"), 0);
    assert_int_equal(strbuf_reserve(&b, SIZE_MAX), -ENOMEM);
    assert_int_equal(strbuf_reserve(&b, SIZE_MAX - 3), -ENOMEM);
    assert_string_equal(strbuf_str(&b), "abc");
    strbuf_free(&b);
}

static void test_consume_detach(void **state)
{
    (void)state;
    strbuf b = STRBUF_INIT;
    assert_int_equal(strbuf_puts(&b, "stop-string tail"), 0);
    strbuf_consume(&b, 5);
    assert_string_equal(strbuf_str(&b), "string tail");
    strbuf_consume(&b, 100); /* more than held: everything */
    assert_int_equal(b.n, 0);
    assert_string_equal(strbuf_str(&b), "");
    assert_int_equal(strbuf_puts(&b, "kept"), 0);
    char *s = strbuf_detach(&b);
    assert_string_equal(s, "kept");
    assert_null(b.s);
    assert_int_equal(b.n, 0);
    free(s);
    assert_null(strbuf_detach(&b));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_append_many),
        cmocka_unit_test(test_alloc_failure_keeps_text),
        cmocka_unit_test(test_overflow_refused),
        cmocka_unit_test(test_consume_detach),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
