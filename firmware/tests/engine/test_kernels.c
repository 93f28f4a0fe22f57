/* Every kernel tr_<name> (the optimized variant in a DSP build) against its
 * portable reference tr_<name>_ref on random data, bit for bit. On the host
 * both are the reference; under QEMU with TR_KERNELS_DSP the ACLE ones run. */
#include <string.h>
#include "kernels/tr_kernels.h"
#include "tr_test.h"

#define MAXN 300

static int8_t w8[MAXN + 8];
static uint8_t xa[MAXN + 8], xb[MAXN + 8];
static int32_t acc1[MAXN + 8], acc2[MAXN + 8];
static uint32_t uacc1[MAXN + 8], uacc2[MAXN + 8];
static uint8_t out1[MAXN + 8], out2[MAXN + 8];

static void fill(uint32_t n)
{
    /* extremes often: they are where packing and sign extension break */
    for (uint32_t i = 0; i < n + 8; i++) {
        uint32_t r = trand();
        w8[i] = (r & 7u) == 0 ? -128 : ((r & 7u) == 1 ? 127 : (int8_t)(r >> 8));
        xa[i] = (r & 0x30u) == 0 ? 255 : (uint8_t)(r >> 16);
        xb[i] = (uint8_t)(r >> 24);
        acc1[i] = (int32_t)(trand() >> 4) - (1 << 27);
        uacc1[i] = trand() >> 4;
    }
}

/* round(v * mult * 2^(shift - 31)), half up, saturated: by C99 division
 * (truncating) fixed up to a floor, independent of tr_mulshift_s32's code. */
static int32_t mulshift_oracle(int32_t v, int32_t mult, int32_t shift)
{
    int32_t s = 31 - shift;
    int64_t d = (int64_t)1 << s;
    int64_t q = (int64_t)v * mult + d / 2;
    int64_t r = q / d;
    if (q % d != 0 && q < 0) {
        r -= 1;
    }
    return r > INT32_MAX ? INT32_MAX : (r < INT32_MIN ? INT32_MIN : (int32_t)r);
}

int main(void)
{
    for (int i = 0; i < 20000; i++) {
        int32_t v = (int32_t)trand();
        int32_t mult = (i % 5 == 0) ? 0 : (int32_t)((1u << 30) | (trand() >> 2));
        int32_t shift = (int32_t)trand_range(0, 61) - 31;
        if (i % 3 == 0) {
            v >>= trand_range(0, 30); /* small values too */
        }
        CHECK(tr_mulshift_s32(v, mult, shift) == mulshift_oracle(v, mult, shift),
              "mulshift v=%ld mult=%ld shift=%ld", (long)v, (long)mult, (long)shift);
    }
    for (int iter = 0; iter < 400; iter++) {
        uint32_t n = (iter < 40) ? (uint32_t)iter : trand_range(0, MAXN);
        uint32_t off = trand() & 3u; /* unaligned byte pointers */
        int32_t zp = (int32_t)trand_range(0, 255);
        int32_t zp2 = (int32_t)trand_range(0, 255);
        int32_t a = (int32_t)trand_range(0, 65534) - 32767;
        int32_t r1, r2;
        fill(n);

        r1 = tr_dot_s8u8_ref(w8 + off, xa + off, n, zp);
        r2 = tr_dot_s8u8(w8 + off, xa + off, n, zp);
        CHECK(r1 == r2, "dot n=%u off=%u: %ld vs %ld", (unsigned)n, (unsigned)off, (long)r1,
              (long)r2);

        {
            /* the second filter: the bytes after the first, shifted by one */
            const int8_t *w1 = w8 + ((off + 1u) & 7u);
            int32_t two[2];
            tr_dot2_s8u8(w8 + off, w1, xa + off, n, zp, two);
            CHECK(two[0] == r1 && two[1] == tr_dot_s8u8_ref(w1, xa + off, n, zp),
                  "dot2 n=%u off=%u", (unsigned)n, (unsigned)off);
        }

        memcpy(acc2, acc1, sizeof acc1);
        tr_axpy_s8_ref(acc1, w8 + off, n, a);
        tr_axpy_s8(acc2, w8 + off, n, a);
        CHECK(memcmp(acc1, acc2, sizeof acc1) == 0, "axpy_s8 n=%u", (unsigned)n);

        memcpy(acc2, acc1, sizeof acc1);
        tr_axpy_u8_ref(acc1, xa + off, n, zp, a);
        tr_axpy_u8(acc2, xa + off, n, zp, a);
        CHECK(memcmp(acc1, acc2, sizeof acc1) == 0, "axpy_u8 n=%u", (unsigned)n);

        memcpy(acc2, acc1, sizeof acc1);
        tr_mac_s8u8_ref(acc1, w8 + off, xa + off, n, zp);
        tr_mac_s8u8(acc2, w8 + off, xa + off, n, zp);
        CHECK(memcmp(acc1, acc2, sizeof acc1) == 0, "mac_s8u8 n=%u", (unsigned)n);

        memcpy(acc2, acc1, sizeof acc1);
        tr_mac_u8u8_ref(acc1, xa + off, xb + off, n, zp, zp2);
        tr_mac_u8u8(acc2, xa + off, xb + off, n, zp, zp2);
        CHECK(memcmp(acc1, acc2, sizeof acc1) == 0, "mac_u8u8 n=%u", (unsigned)n);

        memcpy(uacc2, uacc1, sizeof uacc1);
        tr_absdiff_acc_u8_ref(uacc1, xa + off, n, zp);
        tr_absdiff_acc_u8(uacc2, xa + off, n, zp);
        CHECK(memcmp(uacc1, uacc2, sizeof uacc1) == 0, "absdiff n=%u", (unsigned)n);

        {
            int32_t mult = (int32_t)((1u << 30) | (trand() >> 2));
            int32_t shift = (int32_t)trand_range(0, 40) - 31;
            int32_t lo = (int32_t)trand_range(0, 100), hi = (int32_t)trand_range(150, 255);
            if (iter % 7 == 0) {
                mult = 0;
            }
            memset(out1, 0xAA, sizeof out1);
            memset(out2, 0xAA, sizeof out2);
            tr_requant_s32_u8_ref(acc1, out1, n, mult, shift, zp, lo, hi);
            tr_requant_s32_u8(acc1, out2, n, mult, shift, zp, lo, hi);
            CHECK(memcmp(out1, out2, sizeof out1) == 0, "requant n=%u", (unsigned)n);
        }
        {
            int32_t mn1 = INT32_MAX, mx1 = INT32_MIN, mn2 = INT32_MAX, mx2 = INT32_MIN;
            tr_minmax_s32_ref(acc1, n, &mn1, &mx1);
            tr_minmax_s32(acc1, n, &mn2, &mx2);
            CHECK(mn1 == mn2 && mx1 == mx2, "minmax n=%u", (unsigned)n);
        }
    }
    /* the reference itself: a hand-computed case */
    {
        const int8_t w[4] = { 1, -2, 127, -128 };
        const uint8_t x[4] = { 10, 0, 255, 1 };
        CHECK(tr_dot_s8u8_ref(w, x, 4, 1) == 9 + 2 + 127 * 254 + 0, "dot value");
        CHECK(tr_mulshift_s32(3, 1 << 30, 0) == 2, "1.5 rounds half up");
        CHECK(tr_mulshift_s32(-3, 1 << 30, 0) == -1, "-1.5 rounds half up");
        CHECK(tr_mulshift_s32(-5, 1 << 30, 0) == -2, "-2.5 rounds half up");
        CHECK(tr_mulshift_s32(1000, 1 << 30, 2) == 2000, "shift left");
    }
    return tr_test_done("test_kernels");
}
