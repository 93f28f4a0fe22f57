/* Minimal test harness for the engine tests: printf and an exit code only,
 * so the same tests run on the host and under QEMU semihosting. */
#ifndef TR_TEST_H
#define TR_TEST_H

#include <stdint.h>
#include <stdio.h>

static int tr_test_failures;
static int tr_test_checks;

#define CHECK(cond, ...)                                                  \
    do {                                                                  \
        tr_test_checks++;                                                 \
        if (!(cond)) {                                                    \
            tr_test_failures++;                                           \
            if (tr_test_failures <= 20) {                                 \
                printf("FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);    \
                printf(__VA_ARGS__);                                      \
                printf("\n");                                             \
            }                                                             \
        }                                                                 \
    } while (0)

static inline int tr_test_done(const char *name)
{
    printf("%s: %d checks, %d failures\n", name, tr_test_checks, tr_test_failures);
    return tr_test_failures == 0 ? 0 : 1;
}

/* Test PRNG (xorshift32), independent of the engine's. */
static uint32_t tr_test_rng = 0x12345678u;
static inline uint32_t trand(void)
{
    uint32_t x = tr_test_rng;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    tr_test_rng = x;
    return x;
}
static inline uint32_t trand_range(uint32_t lo, uint32_t hi) /* inclusive */
{
    return lo + trand() % (hi - lo + 1u);
}
static inline float trand_unit(void) /* [0, 1) */
{
    return (float)(trand() >> 8) / 16777216.0f;
}

#endif
