/* Portable reference kernels: the truth every optimized variant must match. */
#include "kernels/tr_kernels.h"

int32_t tr_dot_s8u8_ref(const int8_t *w, const uint8_t *x, uint32_t n, int32_t x_zp)
{
    int32_t sum = 0;
    for (uint32_t i = 0; i < n; i++) {
        sum += (int32_t)w[i] * ((int32_t)x[i] - x_zp);
    }
    return sum;
}

void tr_dot2_s8u8_ref(const int8_t *w0, const int8_t *w1, const uint8_t *x, uint32_t n,
                      int32_t x_zp, int32_t out[2])
{
    int32_t s0 = 0;
    int32_t s1 = 0;
    for (uint32_t i = 0; i < n; i++) {
        int32_t d = (int32_t)x[i] - x_zp;
        s0 += (int32_t)w0[i] * d;
        s1 += (int32_t)w1[i] * d;
    }
    out[0] = s0;
    out[1] = s1;
}

void tr_axpy_s8_ref(int32_t *acc, const int8_t *w, uint32_t n, int32_t a)
{
    for (uint32_t i = 0; i < n; i++) {
        acc[i] += a * (int32_t)w[i];
    }
}

void tr_axpy_u8_ref(int32_t *acc, const uint8_t *x, uint32_t n, int32_t x_zp, int32_t a)
{
    for (uint32_t i = 0; i < n; i++) {
        acc[i] += a * ((int32_t)x[i] - x_zp);
    }
}

void tr_mac_s8u8_ref(int32_t *acc, const int8_t *w, const uint8_t *x, uint32_t n,
                     int32_t x_zp)
{
    for (uint32_t i = 0; i < n; i++) {
        acc[i] += (int32_t)w[i] * ((int32_t)x[i] - x_zp);
    }
}

void tr_mac_u8u8_ref(int32_t *acc, const uint8_t *a, const uint8_t *b, uint32_t n,
                     int32_t a_zp, int32_t b_zp)
{
    for (uint32_t i = 0; i < n; i++) {
        acc[i] += ((int32_t)a[i] - a_zp) * ((int32_t)b[i] - b_zp);
    }
}

void tr_absdiff_acc_u8_ref(uint32_t *acc, const uint8_t *x, uint32_t n, int32_t x_zp)
{
    for (uint32_t i = 0; i < n; i++) {
        int32_t d = (int32_t)x[i] - x_zp;
        acc[i] += (uint32_t)(d < 0 ? -d : d);
    }
}

/* floor(p / 2^s + 1/2) for s in 1..62 without relying on signed right shifts. */
static int64_t round_shift_s64(int64_t p, int32_t s)
{
    int64_t half = (int64_t)1 << (s - 1);
    int64_t v = p + half;
    if (v >= 0) {
        return (int64_t)((uint64_t)v >> s);
    }
    /* floor for negatives: -ceil(-v / 2^s) */
    uint64_t m = (uint64_t)(-(v + 1)); /* -v - 1 >= 0 */
    return -(int64_t)(m >> s) - 1;
}

int32_t tr_mulshift_s32(int32_t v, int32_t mult, int32_t shift)
{
    int64_t p;
#if defined(__GNUC__) && (defined(__ARM_ARCH_7M__) || defined(__ARM_ARCH_7EM__))
    /* ARMv7-M: for s = 31 - shift >= 33 (every requantization that scales
     * down) the high word of SMULL is enough: floor((p + 2^(s-1)) / 2^s) =
     * floor((floor(p / 2^32) + 2^(k-1)) / 2^k) with k = s - 32, because
     * 2^(s-1) is a multiple of 2^32. |hi| <= 2^30 and k <= 30, so nothing
     * overflows and no saturation is needed; GCC shifts signed values
     * arithmetically (floor). Same integers as the general path below. */
    if (shift <= -2) {
        int32_t hi = (int32_t)(((int64_t)v * (int64_t)mult) >> 32);
        int32_t k = -1 - shift;
        return (hi + (int32_t)(1u << (k - 1))) >> k;
    }
#endif
    p = (int64_t)v * (int64_t)mult;
    int32_t s = 31 - shift; /* 1 .. 62 */
    int64_t r = round_shift_s64(p, s);
    if (r > INT32_MAX) {
        return INT32_MAX;
    }
    if (r < INT32_MIN) {
        return INT32_MIN;
    }
    return (int32_t)r;
}

void tr_requant_s32_u8_ref(const int32_t *acc, uint8_t *out, uint32_t n, int32_t mult,
                           int32_t shift, int32_t zp, int32_t lo, int32_t hi)
{
    for (uint32_t i = 0; i < n; i++) {
        int32_t r = tr_mulshift_s32(acc[i], mult, shift);
        /* clamp before adding the zero point so the sum cannot overflow */
        if (r > 255) {
            r = 255;
        } else if (r < -255) {
            r = -255;
        }
        r += zp;
        if (r < lo) {
            r = lo;
        } else if (r > hi) {
            r = hi;
        }
        out[i] = (uint8_t)r;
    }
}

void tr_minmax_s32_ref(const int32_t *acc, uint32_t n, int32_t *mn, int32_t *mx)
{
    int32_t lo = *mn;
    int32_t hi = *mx;
    for (uint32_t i = 0; i < n; i++) {
        if (acc[i] < lo) {
            lo = acc[i];
        }
        if (acc[i] > hi) {
            hi = acc[i];
        }
    }
    *mn = lo;
    *mx = hi;
}
