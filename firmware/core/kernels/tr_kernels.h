/* The hot inner loops of every layer, forward and backward.
 *
 * Each kernel exists as a portable C reference `tr_<name>_ref` (tr_kernels_ref.c)
 * and may have an ARMv7E-M variant `tr_<name>_dsp` (ACLE SIMD, *_dsp.c) with the
 * same signature. Layers call `tr_<name>`, which is the reference unless
 * TR_KERNELS_DSP is defined; then every `tr_<name>` is the `_dsp` variant, so a
 * DSP build must provide all of them (a `_dsp` may simply call its `_ref`).
 * *_dsp.c files must compile to nothing unless TR_KERNELS_DSP is defined: every
 * .c under core/ is built for every target.
 *
 * Contract shared by all kernels:
 *  - integer math only, results are exact (no saturation inside a kernel, no
 *    rounding except where stated), so `_ref` and `_dsp` agree bit for bit;
 *  - byte arrays (uint8_t / int8_t) have no alignment requirement, int32_t
 *    arrays are naturally (4-byte) aligned; any length n >= 0 is valid (n = 0
 *    does nothing / returns 0);
 *  - an output array never aliases an input array unless stated;
 *  - zero points are in 0..255 and "a" scalars in -32768..32767 (int16 range,
 *    so a DSP variant may pack them into halfwords);
 *  - the caller guarantees that no int32 accumulation overflows (the layers
 *    bound fan-in at model load time; see each kernel).
 */
#ifndef TR_KERNELS_H
#define TR_KERNELS_H

#include <stdint.h>

/* sum_i w[i] * (x[i] - x_zp)
 * Forward dense row / conv filter span. n <= 65535 (then |sum| < 2^31). */
int32_t tr_dot_s8u8_ref(const int8_t *w, const uint8_t *x, uint32_t n, int32_t x_zp);

/* out[0] = sum_i w0[i] * (x[i] - x_zp), out[1] = sum_i w1[i] * (x[i] - x_zp)
 * Two filters over one input span (conv2d forward: a channel pair shares the
 * loads and widening of x). n <= 65535. */
void tr_dot2_s8u8_ref(const int8_t *w0, const int8_t *w1, const uint8_t *x, uint32_t n,
                      int32_t x_zp, int32_t out[2]);

/* acc[i] += a * w[i]
 * Backward error of dense / conv ("transposed" product, scatter form): a is one
 * output channel's (scaled) error, w that channel's weights. |a| <= 32767. */
void tr_axpy_s8_ref(int32_t *acc, const int8_t *w, uint32_t n, int32_t a);

/* acc[i] += a * (x[i] - x_zp)
 * Weight gradient (outer product of one channel's error a with the layer
 * input x). |a| <= 32767. */
void tr_axpy_u8_ref(int32_t *acc, const uint8_t *x, uint32_t n, int32_t x_zp, int32_t a);

/* acc[i] += w[i] * (x[i] - x_zp)
 * Element-wise multiply-accumulate across channels: depthwise forward
 * (x = input, w = one kernel tap over all channels) and depthwise backward
 * error (x = output error). */
void tr_mac_s8u8_ref(int32_t *acc, const int8_t *w, const uint8_t *x, uint32_t n,
                     int32_t x_zp);

/* acc[i] += (a[i] - a_zp) * (b[i] - b_zp)
 * Depthwise weight gradient (a = output error, b = input activation). */
void tr_mac_u8u8_ref(int32_t *acc, const uint8_t *a, const uint8_t *b, uint32_t n,
                     int32_t a_zp, int32_t b_zp);

/* acc[i] += |x[i] - x_zp|
 * Per-channel error magnitude for dynamic sparse updates (x = one pixel's
 * channels of an error tensor, acc one counter per channel). acc is uint32. */
void tr_absdiff_acc_u8_ref(uint32_t *acc, const uint8_t *x, uint32_t n, int32_t x_zp);

/* out[i] = clamp(zp + round(acc[i] * mult * 2^(shift - 31)), lo, hi)
 * Requantization of int32 accumulators to uint8 with a Q31 multiplier
 * (mult in [2^30, 2^31), or 0) and shift in -31..30. round = half up:
 * floor(p / 2^s + 1/2), computed exactly in 64 bits. 0 <= lo <= hi <= 255.
 * acc and out may not alias. */
void tr_requant_s32_u8_ref(const int32_t *acc, uint8_t *out, uint32_t n, int32_t mult,
                           int32_t shift, int32_t zp, int32_t lo, int32_t hi);

/* *mn = min(*mn, acc[i]), *mx = max(*mx, acc[i]) over i (the caller seeds them). */
void tr_minmax_s32_ref(const int32_t *acc, uint32_t n, int32_t *mn, int32_t *mx);

/* One requantization step, the scalar form of tr_requant_s32_u8 (no clamp,
 * no zero point): round(v * mult * 2^(shift - 31)). Portable C, with a
 * shortcut on ARMv7-M that gives the same integers (tests/engine/test_kernels.c
 * checks it against an independent division-based computation). */
int32_t tr_mulshift_s32(int32_t v, int32_t mult, int32_t shift);

#if defined(TR_KERNELS_DSP)
int32_t tr_dot_s8u8_dsp(const int8_t *w, const uint8_t *x, uint32_t n, int32_t x_zp);
void tr_dot2_s8u8_dsp(const int8_t *w0, const int8_t *w1, const uint8_t *x, uint32_t n,
                      int32_t x_zp, int32_t out[2]);
void tr_axpy_s8_dsp(int32_t *acc, const int8_t *w, uint32_t n, int32_t a);
void tr_axpy_u8_dsp(int32_t *acc, const uint8_t *x, uint32_t n, int32_t x_zp, int32_t a);
void tr_mac_s8u8_dsp(int32_t *acc, const int8_t *w, const uint8_t *x, uint32_t n,
                     int32_t x_zp);
void tr_mac_u8u8_dsp(int32_t *acc, const uint8_t *a, const uint8_t *b, uint32_t n,
                     int32_t a_zp, int32_t b_zp);
void tr_absdiff_acc_u8_dsp(uint32_t *acc, const uint8_t *x, uint32_t n, int32_t x_zp);
void tr_requant_s32_u8_dsp(const int32_t *acc, uint8_t *out, uint32_t n, int32_t mult,
                           int32_t shift, int32_t zp, int32_t lo, int32_t hi);
void tr_minmax_s32_dsp(const int32_t *acc, uint32_t n, int32_t *mn, int32_t *mx);
#define tr_dot_s8u8 tr_dot_s8u8_dsp
#define tr_dot2_s8u8 tr_dot2_s8u8_dsp
#define tr_axpy_s8 tr_axpy_s8_dsp
#define tr_axpy_u8 tr_axpy_u8_dsp
#define tr_mac_s8u8 tr_mac_s8u8_dsp
#define tr_mac_u8u8 tr_mac_u8u8_dsp
#define tr_absdiff_acc_u8 tr_absdiff_acc_u8_dsp
#define tr_requant_s32_u8 tr_requant_s32_u8_dsp
#define tr_minmax_s32 tr_minmax_s32_dsp
#else
#define tr_dot_s8u8 tr_dot_s8u8_ref
#define tr_dot2_s8u8 tr_dot2_s8u8_ref
#define tr_axpy_s8 tr_axpy_s8_ref
#define tr_axpy_u8 tr_axpy_u8_ref
#define tr_mac_s8u8 tr_mac_s8u8_ref
#define tr_mac_u8u8 tr_mac_u8u8_ref
#define tr_absdiff_acc_u8 tr_absdiff_acc_u8_ref
#define tr_requant_s32_u8 tr_requant_s32_u8_ref
#define tr_minmax_s32 tr_minmax_s32_ref
#endif

#endif
