/* In-place weight and bias updates; see tr_optimizer.h. */
#include "train/tr_optimizer.h"

#include "kernels/tr_kernels.h"
#include "quant/tr_quant.h"

#define FRAC 16
#define ONE (1 << FRAC)
#define V_LIMIT (255 * ONE)          /* |new value| kept under 255 steps */
#define GROW_AT (127 * ONE + ONE / 2) /* rescale when a value rounds past 127 */
#define SHRINK_AT (64 * ONE)          /* ... or the range fell under half */
#define BIAS_LIMIT 1073741824         /* 2^30 */

/* floor(v / 2^s) for any sign, s in 1..30 */
static int32_t floor_shift(int32_t v, int32_t s)
{
    if (v >= 0) {
        return v >> s;
    }
    return -(int32_t)((((uint32_t)(-(v + 1))) >> s) + 1u);
}

/* v * |m| with m a float, in Q31 mult/shift form; sign applied. */
typedef struct {
    int32_t mult, shift, neg;
} scaled;

static scaled make_scaled(float m)
{
    scaled s;
    s.neg = m < 0.0f;
    tr_quant_multiplier(s.neg ? -m : m, &s.mult, &s.shift);
    return s;
}

static int32_t apply_scaled(const scaled *s, int32_t v)
{
    int32_t r = tr_mulshift_s32(v, s->mult, s->shift);
    if (r > V_LIMIT) {
        r = V_LIMIT;
    } else if (r < -V_LIMIT) {
        r = -V_LIMIT;
    }
    return s->neg ? -r : r;
}

/* Channel gradient mean and standard deviation (real units). */
static void grad_stats(const int32_t *g, uint32_t n, float g_unit, float *mu, float *sd)
{
    uint32_t gmax = 0;
    int32_t sh = 0;
    int64_t sum = 0;
    int64_t sq = 0;
    for (uint32_t j = 0; j < n; j++) {
        uint32_t a = g[j] < 0 ? (uint32_t)0 - (uint32_t)g[j] : (uint32_t)g[j];
        if (a > gmax) {
            gmax = a;
        }
    }
    while ((gmax >> sh) >= 32768u) {
        sh++;
    }
    for (uint32_t j = 0; j < n; j++) {
        int32_t v = g[j] >= 0 ? (g[j] >> sh) : -(int32_t)(((uint32_t)0 - (uint32_t)g[j]) >> sh);
        sum += v;
        sq += (int64_t)v * v;
    }
    {
        int64_t var_n2 = (int64_t)n * sq - sum * sum; /* n^2 * variance, >= 0 */
        float unit = tr_ldexp_f32(g_unit, sh);
        if (var_n2 < 0) {
            var_n2 = 0;
        }
        *mu = ((float)sum / (float)n) * unit;
        *sd = ((float)tr_isqrt_u64((uint64_t)var_n2) / (float)n) * unit;
    }
}

void tr_opt_update_weights(const tr_opt *o, int8_t *w, uint32_t n, uint32_t stride, float *scale,
                           int per_tensor, int32_t *g, float g_unit, tr_chan_state *st)
{
    float s_w = *scale;
    float a_real, b_real = 0.0f;
    scaled A;
    int32_t B, vmax = 0;

    if (n == 0) {
        return;
    }
    if (o->mode == TR_OPT_STANDARDIZED) {
        float mu, sd;
        grad_stats(g, n, g_unit, &mu, &sd);
        if (st->sigma > 0.0f) {
            st->mu = TR_OPT_GRAD_EMA * st->mu + (1.0f - TR_OPT_GRAD_EMA) * mu;
            st->sigma = TR_OPT_GRAD_EMA * st->sigma + (1.0f - TR_OPT_GRAD_EMA) * sd;
        } else {
            st->mu = mu;
            st->sigma = sd;
        }
        if (!(st->sigma > 1e-30f)) {
            return;
        }
        /* steps_j = -lr (g_j g_unit - mu) / (sigma s_w) = A g_j + B */
        a_real = -(o->lr * g_unit) / (st->sigma * s_w);
        b_real = (o->lr * st->mu) / (st->sigma * s_w);
    } else if (o->mode == TR_OPT_SGD_QAS) {
        a_real = -(o->lr * g_unit) / s_w;
    } else {
        a_real = -(o->lr * g_unit) * s_w;
    }
    A = make_scaled(a_real * (float)ONE);
    {
        float bq = b_real * (float)ONE;
        B = bq > (float)V_LIMIT ? V_LIMIT : (bq < -(float)V_LIMIT ? -V_LIMIT : tr_round_f32(bq));
    }
    /* new values with 16 fractional bits, kept in g */
    for (uint32_t j = 0; j < n; j++) {
        int32_t v = (int32_t)w[j * stride] * ONE + apply_scaled(&A, g[j]) + B;
        int32_t a;
        v = v > V_LIMIT ? V_LIMIT : (v < -V_LIMIT ? -V_LIMIT : v);
        g[j] = v;
        a = v < 0 ? -v : v;
        if (a > vmax) {
            vmax = a;
        }
    }
    if (!per_tensor && vmax > 0 && (vmax >= GROW_AT || vmax < SHRINK_AT)) {
        /* rescale so the largest value lands on 127 steps */
        float ratio = (float)(127 * ONE) / (float)vmax;
        scaled R = make_scaled(ratio);
        *scale = s_w / ratio;
        for (uint32_t j = 0; j < n; j++) {
            g[j] = apply_scaled(&R, g[j]);
        }
    }
    {
        /* 16 random bits per weight, two per PRNG draw */
        uint32_t bits = 0;
        uint32_t left = 0;
        for (uint32_t j = 0; j < n; j++) {
            int32_t add = ONE / 2;
            int32_t q;
            if (o->stochastic) {
                if (left == 0) {
                    bits = tr_rng_next(o->rng);
                    left = 2;
                }
                add = (int32_t)(bits & 0xFFFFu);
                bits >>= 16;
                left--;
            }
            q = floor_shift(g[j] + add, FRAC);
            w[j * stride] = (int8_t)(q > 127 ? 127 : (q < -127 ? -127 : q));
        }
    }
}

void tr_opt_update_bias(const tr_opt *o, int32_t *bias, int32_t gb, float gb_unit,
                        tr_chan_state *st)
{
    float g = (float)gb * gb_unit;
    float step;
    float b;
    if (o->mode == TR_OPT_STANDARDIZED) {
        float a = g < 0.0f ? -g : g;
        st->bmag = (st->bmag > 0.0f) ? TR_OPT_GRAD_EMA * st->bmag + (1.0f - TR_OPT_GRAD_EMA) * a
                                     : a;
        if (!(st->bmag > 1e-30f)) {
            return;
        }
        step = -(o->lr * g) / st->bmag;
    } else {
        step = -(o->lr * g);
    }
    b = (float)*bias + tr_ldexp_f32(step, 20);
    if (step == 0.0f) {
        return;
    }
    if (b > (float)BIAS_LIMIT) {
        *bias = BIAS_LIMIT;
    } else if (b < -(float)BIAS_LIMIT) {
        *bias = -BIAS_LIMIT;
    } else {
        *bias = tr_round_f32(b);
    }
}

void tr_opt_rescale_tensor(int8_t *w, uint32_t n, float *scales, uint32_t channels)
{
    int32_t mx = 0;
    float ratio;
    scaled R;
    for (uint32_t i = 0; i < n; i++) {
        int32_t a = w[i] < 0 ? -w[i] : w[i];
        if (a > mx) {
            mx = a;
        }
    }
    if (mx == 127) {
        ratio = 0.8f; /* saturated: widen by 1.25 */
    } else if (mx > 0 && mx < 64) {
        ratio = 127.0f / (float)mx;
    } else {
        return;
    }
    R = make_scaled(ratio);
    for (uint32_t i = 0; i < n; i++) {
        int32_t v = apply_scaled(&R, (int32_t)w[i] * ONE);
        int32_t q = floor_shift(v + ONE / 2, FRAC);
        w[i] = (int8_t)(q > 127 ? 127 : (q < -127 ? -127 : q));
    }
    for (uint32_t c = 0; c < channels; c++) {
        scales[c] = scales[c] / ratio;
    }
}

uint32_t tr_sparse_k(uint32_t n, float lambda_min, float lambda_max, float loss_ratio)
{
    float f = lambda_min + loss_ratio * (lambda_max - lambda_min);
    int32_t k;
    if (!(f < 1.0f)) {
        return n;
    }
    k = tr_floor_f32(f * (float)n);
    if (k < 1) {
        k = 1;
    }
    return (uint32_t)k > n ? n : (uint32_t)k;
}

void tr_sparse_select(const uint32_t *mag, uint32_t n, uint32_t k, uint8_t *sel)
{
    for (uint32_t c = 0; c < n; c++) {
        sel[c] = 0;
    }
    if (k >= n) {
        for (uint32_t c = 0; c < n; c++) {
            sel[c] = 1;
        }
        return;
    }
    /* rank of each channel: how many come before it (larger, or equal and
     * lower index); O(n^2) over the channels of one layer only */
    for (uint32_t c = 0; c < n; c++) {
        uint32_t rank = 0;
        for (uint32_t d = 0; d < n && rank < k; d++) {
            if (mag[d] > mag[c] || (mag[d] == mag[c] && d < c)) {
                rank++;
            }
        }
        sel[c] = rank < k;
    }
}

void tr_sparse_select_weighted(uint32_t *mag, uint32_t n, uint32_t k, uint32_t *rng, uint8_t *sel)
{
    if (k < n) {
        uint32_t bits = 0;
        uint32_t left = 0;
        for (uint32_t c = 0; c < n; c++) {
            uint64_t key;
            if (left == 0) {
                bits = tr_rng_next(rng);
                left = 4;
            }
            key = (uint64_t)mag[c] * ((bits & 0xFFu) + 1u);
            bits >>= 8;
            left--;
            mag[c] = key > 0xFFFFFFFFu ? 0xFFFFFFFFu : (uint32_t)key;
        }
    }
    tr_sparse_select(mag, n, k, sel);
}
