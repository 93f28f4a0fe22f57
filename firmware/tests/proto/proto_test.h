/* Minimal check macros for the protocol tests: print and count failures. */
#ifndef TR_PROTO_TEST_H
#define TR_PROTO_TEST_H

#include <stdio.h>

static int g_failures;
static int g_checks;

#define CHECK(cond, what)                                                          \
    do {                                                                           \
        g_checks++;                                                                \
        if (!(cond)) {                                                             \
            g_failures++;                                                          \
            printf("FAIL %s:%d: %s (%s)\n", __FILE__, __LINE__, what, #cond);      \
        }                                                                          \
    } while (0)

#define TEST_DONE(name)                                                            \
    do {                                                                           \
        printf("%s: %d checks, %d failures\n", name, g_checks, g_failures);        \
        return g_failures == 0 ? 0 : 1;                                            \
    } while (0)

#endif
