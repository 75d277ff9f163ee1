/* golden.h - where the cmocka tests find the golden set (../shared/golden
 * or $MOESTREAM_GOLDEN, see README "Golden set") and what a test does
 * without it: GOLDEN_REQUIRE() skips the test with one line saying where it
 * looked and how to point at the set; with CI set it fails instead, so CI
 * cannot pass without the golden data.  Header-only, for tests/test_*.c
 * (include after cmocka.h). */
#ifndef MS_TESTS_GOLDEN_H
#define MS_TESTS_GOLDEN_H

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static inline const char *golden_dir(void)
{
    const char *d = getenv("MOESTREAM_GOLDEN");
    return d && *d ? d : "../shared/golden";
}

/* The set is there when its models are: every test reads models/ or files
 * written beside them. */
static inline int golden_present(void)
{
    char p[1024];
    snprintf(p, sizeof p, "%s/models/tiny-ud-iq1_s.gguf", golden_dir());
    return access(p, R_OK) == 0;
}

#define GOLDEN_REQUIRE()                                                                          \
    do {                                                                                          \
        if (!golden_present()) {                                                                  \
            if (getenv("CI"))                                                                     \
                fail_msg("golden set not found at %s (CI is set, so this is a failure)",          \
                         golden_dir());                                                           \
            printf("skip: golden set not found at %s; point MOESTREAM_GOLDEN at it (README: "     \
                   "Golden set)\n",                                                               \
                   golden_dir());                                                                 \
            skip();                                                                               \
        }                                                                                         \
    } while (0)

#endif
