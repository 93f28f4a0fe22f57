/* ARMv7E-M variants of the kernels (Cortex-M4/M7), with the ACLE SIMD
 * intrinsics: four bytes per load, widened to halfword pairs (SXTB16/UXTB16,
 * the odd bytes through a free rotate), zero points taken off two lanes at a
 * time (SSUB16), two multiply-accumulates per instruction (SMLAD) or one
 * 16x16 multiply-accumulate per element (SMLABB/SMLATB). Every result equals
 * the reference's exactly (tests/engine/test_kernels.c under QEMU): the lanes
 * never overflow (|x - zp| <= 255, |w| <= 128, |a| <= 32767) and the sums are
 * the same integers added in another order. Compiles to nothing unless
 * TR_KERNELS_DSP is defined (a DSP build of an M4/M7 target). */
#include "kernels/tr_kernels.h"

#if defined(TR_KERNELS_DSP)
#include <arm_acle.h>
#include <string.h>

#if !defined(__ARM_FEATURE_DSP)
#error "TR_KERNELS_DSP needs an ARMv7E-M target (-mcpu=cortex-m4 or cortex-m7)"
#endif

/* An unaligned 32-bit load (LDR allows it on ARMv7-M). */
static inline uint32_t ld4(const void *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* Bytes 1 and 3, widened: SXTB16/UXTB16 with their own rotate operand (the
 * intrinsic of a rotated value costs a separate rotate). */
static inline int16x2_t sxtb16_odd(uint32_t v)
{
    int16x2_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(v));
    return r;
}

static inline int16x2_t uxtb16_odd(uint32_t v)
{
    int16x2_t r;
    __asm__("uxtb16 %0, %1, ror #8" : "=r"(r) : "r"(v));
    return r;
}

static inline uint32_t pair(int32_t v)
{
    return ((uint32_t)v & 0xFFFFu) | ((uint32_t)v << 16);
}

static int32_t dot_tail(const int8_t *w, const uint8_t *x, uint32_t n, int32_t x_zp, int32_t sum)
{
    while (n-- > 0u) {
        sum += (int32_t)*w++ * ((int32_t)*x++ - x_zp);
    }
    return sum;
}

/* n >= 8: eight multiply-accumulates in 23 instructions. */
__attribute__((noinline)) static int32_t dot_simd(const int8_t *w, const uint8_t *x, uint32_t n,
                                                  int32_t x_zp)
{
    const int16x2_t zp = (int16x2_t)pair(x_zp);
    int32_t sum = 0;
    while (n >= 8u) {
        uint32_t w0 = ld4(w), x0 = ld4(x), w1 = ld4(w + 4), x1 = ld4(x + 4);
        sum = __smlad(__sxtb16(w0), __ssub16((int16x2_t)__uxtb16(x0), zp), sum);
        sum = __smlad(sxtb16_odd(w0), __ssub16(uxtb16_odd(x0), zp), sum);
        sum = __smlad(__sxtb16(w1), __ssub16((int16x2_t)__uxtb16(x1), zp), sum);
        sum = __smlad(sxtb16_odd(w1), __ssub16(uxtb16_odd(x1), zp), sum);
        w += 8;
        x += 8;
        n -= 8u;
    }
    if (n >= 4u) {
        uint32_t w0 = ld4(w), x0 = ld4(x);
        sum = __smlad(__sxtb16(w0), __ssub16((int16x2_t)__uxtb16(x0), zp), sum);
        sum = __smlad(sxtb16_odd(w0), __ssub16(uxtb16_odd(x0), zp), sum);
        w += 4;
        x += 4;
        n -= 4u;
    }
    return dot_tail(w, x, n, x_zp, sum);
}

int32_t tr_dot_s8u8_dsp(const int8_t *w, const uint8_t *x, uint32_t n, int32_t x_zp)
{
    /* short spans (a first conv layer's rows) stay out of the SIMD loop's prologue */
    return n >= 8u ? dot_simd(w, x, n, x_zp) : dot_tail(w, x, n, x_zp, 0);
}

/* Four bytes of both filters against four bytes of x: x widened and its zero
 * point taken off once (4 instructions), then 4 per filter. */
static inline void dot2_quad(uint32_t xv, uint32_t a, uint32_t b, int16x2_t zp, int32_t *s0,
                             int32_t *s1)
{
    int16x2_t xe = __ssub16((int16x2_t)__uxtb16(xv), zp);
    int16x2_t xo = __ssub16(uxtb16_odd(xv), zp);
    *s0 = __smlad(__sxtb16(a), xe, *s0);
    *s0 = __smlad(sxtb16_odd(a), xo, *s0);
    *s1 = __smlad(__sxtb16(b), xe, *s1);
    *s1 = __smlad(sxtb16_odd(b), xo, *s1);
}

void tr_dot2_s8u8_dsp(const int8_t *w0, const int8_t *w1, const uint8_t *x, uint32_t n,
                      int32_t x_zp, int32_t out[2])
{
    const int16x2_t zp = (int16x2_t)pair(x_zp);
    int32_t s0 = 0;
    int32_t s1 = 0;
    /* the odd bytes first, so nothing but the sums lives past the SIMD loop
     * (no pointer spills around it: short spans such as a 3x3x1 filter pay
     * little more than their MACs) */
    for (uint32_t t = n & 3u; t > 0u; t--) {
        int32_t d = (int32_t)*x++ - x_zp;
        s0 += (int32_t)*w0++ * d;
        s1 += (int32_t)*w1++ * d;
    }
    for (const uint8_t *end = x + (n & ~3u); x != end; x += 4, w0 += 4, w1 += 4) {
        dot2_quad(ld4(x), ld4(w0), ld4(w1), zp, &s0, &s1);
    }
    out[0] = s0;
    out[1] = s1;
}

/* acc[0..3] += a * lanes: even lanes (bytes 0, 2) and odd lanes (bytes 1, 3). */
static inline void acc4(int32_t *acc, int16x2_t even, int16x2_t odd, int32_t a)
{
    acc[0] = __smlabb(even, a, acc[0]);
    acc[1] = __smlabb(odd, a, acc[1]);
    acc[2] = __smlatb(even, a, acc[2]);
    acc[3] = __smlatb(odd, a, acc[3]);
}

void tr_axpy_s8_dsp(int32_t *acc, const int8_t *w, uint32_t n, int32_t a)
{
    while (n >= 4u) {
        uint32_t v = ld4(w);
        acc4(acc, __sxtb16(v), sxtb16_odd(v), a);
        acc += 4;
        w += 4;
        n -= 4u;
    }
    while (n-- > 0u) {
        *acc++ += a * (int32_t)*w++;
    }
}

void tr_axpy_u8_dsp(int32_t *acc, const uint8_t *x, uint32_t n, int32_t x_zp, int32_t a)
{
    const int16x2_t zp = (int16x2_t)pair(x_zp);
    while (n >= 4u) {
        uint32_t v = ld4(x);
        acc4(acc, __ssub16((int16x2_t)__uxtb16(v), zp), __ssub16(uxtb16_odd(v), zp), a);
        acc += 4;
        x += 4;
        n -= 4u;
    }
    while (n-- > 0u) {
        *acc++ += a * ((int32_t)*x++ - x_zp);
    }
}

/* acc[0..3] += lanes of p * lanes of q, element by element. */
static inline void mac4(int32_t *acc, int16x2_t pe, int16x2_t po, int16x2_t qe, int16x2_t qo)
{
    acc[0] = __smlabb(pe, qe, acc[0]);
    acc[1] = __smlabb(po, qo, acc[1]);
    acc[2] = __smlatt(pe, qe, acc[2]);
    acc[3] = __smlatt(po, qo, acc[3]);
}

void tr_mac_s8u8_dsp(int32_t *acc, const int8_t *w, const uint8_t *x, uint32_t n, int32_t x_zp)
{
    const int16x2_t zp = (int16x2_t)pair(x_zp);
    while (n >= 4u) {
        uint32_t wv = ld4(w), xv = ld4(x);
        mac4(acc, __sxtb16(wv), sxtb16_odd(wv), __ssub16((int16x2_t)__uxtb16(xv), zp),
             __ssub16(uxtb16_odd(xv), zp));
        acc += 4;
        w += 4;
        x += 4;
        n -= 4u;
    }
    while (n-- > 0u) {
        *acc++ += (int32_t)*w++ * ((int32_t)*x++ - x_zp);
    }
}

void tr_mac_u8u8_dsp(int32_t *acc, const uint8_t *a, const uint8_t *b, uint32_t n, int32_t a_zp,
                     int32_t b_zp)
{
    const int16x2_t za = (int16x2_t)pair(a_zp), zb = (int16x2_t)pair(b_zp);
    while (n >= 4u) {
        uint32_t av = ld4(a), bv = ld4(b);
        mac4(acc, __ssub16((int16x2_t)__uxtb16(av), za), __ssub16(uxtb16_odd(av), za),
             __ssub16((int16x2_t)__uxtb16(bv), zb), __ssub16(uxtb16_odd(bv), zb));
        acc += 4;
        a += 4;
        b += 4;
        n -= 4u;
    }
    while (n-- > 0u) {
        *acc++ += ((int32_t)*a++ - a_zp) * ((int32_t)*b++ - b_zp);
    }
}

/* Not on the hot path of a step, or no SIMD form that beats the reference. */
void tr_absdiff_acc_u8_dsp(uint32_t *acc, const uint8_t *x, uint32_t n, int32_t x_zp)
{
    tr_absdiff_acc_u8_ref(acc, x, n, x_zp);
}

void tr_requant_s32_u8_dsp(const int32_t *acc, uint8_t *out, uint32_t n, int32_t mult,
                           int32_t shift, int32_t zp, int32_t lo, int32_t hi)
{
    tr_requant_s32_u8_ref(acc, out, n, mult, shift, zp, lo, hi);
}

void tr_minmax_s32_dsp(const int32_t *acc, uint32_t n, int32_t *mn, int32_t *mx)
{
    tr_minmax_s32_ref(acc, n, mn, mx);
}

#else
typedef int tr_kernels_dsp_unused; /* ISO C wants a declaration in every file */
#endif
