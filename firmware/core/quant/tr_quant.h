/* Quantization parameters and the few scalar float operations the engine uses.
 *
 * Tensors are uint8 with a per-tensor scale s and zero point z: real = s*(q - z).
 * Only scalars (one per tensor or per channel) are ever float; every per-element
 * operation is integer. The float scalar code uses +, -, *, / and int<->float
 * conversions only (no libm), which IEEE 754 single precision defines exactly,
 * so results are bit-identical on x86-64 (SSE), ARMv6-M and ARMv7E-M soft-float
 * and hard-float, provided the compiler does not contract a*b+c into an FMA
 * (build with -ffp-contract=off) and evaluates float in float (FLT_EVAL_METHOD 0).
 */
#ifndef TR_QUANT_H
#define TR_QUANT_H

#include <stdint.h>

typedef struct {
    float s;    /* scale, > 0 */
    int32_t z;  /* zero point, 0..255 */
} tr_qparam;

/* Asymmetric uint8 parameters covering [mn, mx] (widened to include 0):
 * s = (mx - mn) / 255, z = round(-mn / s). A degenerate range gets a tiny one. */
tr_qparam tr_qparam_from_range(float mn, float mx);

/* Q31 multiplier and shift with m ~= mult * 2^(shift - 31), for m >= 0;
 * mult in [2^30, 2^31) or 0 (m too small), shift in -31..30 (clamped). */
void tr_quant_multiplier(float m, int32_t *mult, int32_t *shift);

/* round half up to int32, saturating; NaN gives 0. */
int32_t tr_round_f32(float x);

/* floor, saturating to int32; NaN gives 0. */
int32_t tr_floor_f32(float x);

/* 1 when x is neither infinite nor NaN. */
int tr_isfinite_f32(float x);

/* x * 2^n for a normal x and a normal result (exponent arithmetic only). */
float tr_ldexp_f32(float x, int32_t n);

/* e^x, for x <= 0 (softmax after subtracting the max); relative error < 2e-7. */
float tr_exp_neg_f32(float x);

/* natural log for x > 0; absolute error < 1e-6 for x in (1e-30, 1e30). */
float tr_log_f32(float x);

/* floor(sqrt(v)) exactly. */
uint32_t tr_isqrt_u64(uint64_t v);

/* sqrt for x >= 0: from tr_isqrt_u64 on a scaled integer plus one Newton step. */
float tr_sqrt_f32(float x);

/* Seeded integer PRNG (xorshift32): identical sequences on every target.
 * The state must be non-zero; tr_rng_seed maps any seed to a valid state. */
uint32_t tr_rng_seed(uint32_t seed);
uint32_t tr_rng_next(uint32_t *state);

#endif
