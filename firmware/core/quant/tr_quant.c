/* Quantization helpers: see tr_quant.h for the determinism contract. */
#include "quant/tr_quant.h"

#include <string.h>

static uint32_t f32_bits(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return u;
}

static float f32_from_bits(uint32_t u)
{
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}

int tr_isfinite_f32(float x)
{
    return ((f32_bits(x) >> 23) & 0xFFu) != 0xFFu;
}

tr_qparam tr_qparam_from_range(float mn, float mx)
{
    tr_qparam q;
    if (!tr_isfinite_f32(mn) || !tr_isfinite_f32(mx)) {
        mn = -1.0f;
        mx = 1.0f;
    }
    if (mn > 0.0f) {
        mn = 0.0f;
    }
    if (mx < 0.0f) {
        mx = 0.0f;
    }
    if (mx - mn < 1e-20f) {
        mx = mn + 1e-20f;
    }
    q.s = (mx - mn) / 255.0f;
    q.z = tr_round_f32(-mn / q.s);
    if (q.z < 0) {
        q.z = 0;
    } else if (q.z > 255) {
        q.z = 255;
    }
    return q;
}

void tr_quant_multiplier(float m, int32_t *mult, int32_t *shift)
{
    uint32_t u = f32_bits(m);
    int32_t e = (int32_t)((u >> 23) & 0xFFu);
    if ((u >> 31) != 0 || e == 0 || e == 0xFF) {
        /* negative, zero, subnormal, inf or NaN: no contribution */
        *mult = 0;
        *shift = 0;
        return;
    }
    /* m = 1.f * 2^(e-127) = (mant24 << 7) * 2^-31 * 2^(e-126) */
    int32_t q = (int32_t)(((u & 0x7FFFFFu) | 0x800000u) << 7);
    int32_t s = e - 126;
    if (s > 30) {
        q = INT32_MAX;
        s = 30;
    }
    if (s < -31) {
        q = 0;
        s = 0;
    }
    *mult = q;
    *shift = s;
}

int32_t tr_floor_f32(float x)
{
    if (x != x) {
        return 0;
    }
    if (x >= 2147483520.0f) {
        return INT32_MAX;
    }
    if (x <= -2147483648.0f) {
        return INT32_MIN;
    }
    int32_t i = (int32_t)x; /* truncates toward zero */
    if ((float)i > x) {
        i -= 1;
    }
    return i;
}

int32_t tr_round_f32(float x)
{
    /* floor(x + 0.5) without the double rounding of x + 0.5f near 2^23 */
    int32_t f = tr_floor_f32(x);
    if (f == INT32_MAX || f == INT32_MIN) {
        return f;
    }
    float frac = x - (float)f; /* exact for |x| < 2^24; 0 above */
    return (frac >= 0.5f) ? f + 1 : f;
}

float tr_ldexp_f32(float x, int32_t n)
{
    uint32_t u = f32_bits(x);
    int32_t e = (int32_t)((u >> 23) & 0xFFu);
    if (e == 0 || e == 0xFF) {
        return x;
    }
    e += n;
    if (e <= 0) {
        return 0.0f;
    }
    if (e >= 0xFF) {
        e = 0xFE;
    }
    return f32_from_bits((u & 0x807FFFFFu) | ((uint32_t)e << 23));
}

float tr_exp_neg_f32(float x)
{
    if (x != x) {
        return 0.0f;
    }
    if (x > 0.0f) {
        x = 0.0f;
    }
    if (x < -87.0f) {
        return 0.0f;
    }
    /* e^x = 2^n * e^r, n = round(x / ln2), |r| <= ln2/2 */
    const float ln2_hi = 0.693145751953125f;   /* exact in 16 bits */
    const float ln2_lo = 1.428606765330187e-06f;
    int32_t n = tr_round_f32(x * 1.44269504088896341f);
    float r = (x - (float)n * ln2_hi) - (float)n * ln2_lo;
    /* Taylor to r^7/7!: |r| <= 0.347, truncation < 1e-8 */
    float p = 1.0f / 5040.0f;
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    if (n < -125) {
        return 0.0f;
    }
    return tr_ldexp_f32(p, n);
}

float tr_log_f32(float x)
{
    if (!(x > 0.0f) || !tr_isfinite_f32(x)) {
        return (x > 0.0f) ? 88.7f : -103.0f;
    }
    uint32_t u = f32_bits(x);
    int32_t e = (int32_t)((u >> 23) & 0xFFu);
    if (e == 0) {
        return -103.0f; /* subnormal: treat as ~0 */
    }
    /* x = m * 2^k with m in [sqrt(1/2), sqrt(2)) */
    int32_t k = e - 127;
    float m = f32_from_bits((u & 0x7FFFFFu) | (127u << 23));
    if (m > 1.41421356f) {
        m = m * 0.5f;
        k += 1;
    }
    /* log(m) = 2 atanh(t), t = (m-1)/(m+1), |t| <= 0.1716 */
    float t = (m - 1.0f) / (m + 1.0f);
    float t2 = t * t;
    float p = 1.0f / 11.0f;
    p = p * t2 + 1.0f / 9.0f;
    p = p * t2 + 1.0f / 7.0f;
    p = p * t2 + 1.0f / 5.0f;
    p = p * t2 + 1.0f / 3.0f;
    p = p * t2 + 1.0f;
    float lm = 2.0f * t * p;
    return (float)k * 0.693147180559945f + lm;
}

uint32_t tr_isqrt_u64(uint64_t v)
{
    uint64_t r = 0;
    uint64_t bit = (uint64_t)1 << 62;
    while (bit > v) {
        bit >>= 2;
    }
    while (bit != 0) {
        if (v >= r + bit) {
            v -= r + bit;
            r = (r >> 1) + bit;
        } else {
            r >>= 1;
        }
        bit >>= 2;
    }
    return (uint32_t)r;
}

float tr_sqrt_f32(float x)
{
    if (!(x > 0.0f) || !tr_isfinite_f32(x)) {
        return 0.0f;
    }
    /* scale x by an even power of two into [2^40, 2^42), integer sqrt, undo */
    uint32_t u = f32_bits(x);
    int32_t e = (int32_t)((u >> 23) & 0xFFu) - 127;
    int32_t k = 40 - e;
    if (k & 1) {
        k += 1;
    }
    float xs = tr_ldexp_f32(x, k);
    uint64_t vi = (uint64_t)xs; /* < 2^43, exact float -> integer */
    float y = (float)tr_isqrt_u64(vi);
    y = 0.5f * (y + xs / y); /* one Newton step */
    return tr_ldexp_f32(y, -k / 2);
}

uint32_t tr_rng_seed(uint32_t seed)
{
    /* splitmix-style scramble so that nearby seeds give unrelated streams */
    uint32_t z = seed + 0x9E3779B9u;
    z = (z ^ (z >> 16)) * 0x85EBCA6Bu;
    z = (z ^ (z >> 13)) * 0xC2B2AE35u;
    z ^= z >> 16;
    return z != 0 ? z : 0x6D2B79F5u;
}

uint32_t tr_rng_next(uint32_t *state)
{
    uint32_t x = *state;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    *state = x;
    return x;
}
