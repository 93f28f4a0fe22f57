/* Helpers shared by the parametric layers: per-channel requantization
 * parameters, observed output range, error requantization. */
#include "engine/tr_layers.h"
#include "kernels/tr_kernels.h"

#define BIAS_UNIT 9.5367431640625e-07f /* 2^-20 */
#define BIAS_ACC_LIMIT 1073741824      /* 2^30: acc = bias + dot stays in int32 */

void tr_layer_prep_requant(const tr_layer *L, const tr_lparams *P, tr_qparam qin, tr_qparam qout,
                           int32_t *bias_acc, int32_t *mult, int32_t *shift)
{
    for (uint32_t c = 0; c < L->channels; c++) {
        float unit = qin.s * P->scale[c]; /* one accumulator step */
        float b = ((float)P->bias[c] * BIAS_UNIT) / unit;
        int32_t bi;
        tr_quant_multiplier(unit / qout.s, &mult[c], &shift[c]);
        if (b > (float)BIAS_ACC_LIMIT) {
            bi = BIAS_ACC_LIMIT;
        } else if (b < -(float)BIAS_ACC_LIMIT) {
            bi = -BIAS_ACC_LIMIT;
        } else {
            bi = tr_round_f32(b);
        }
        bias_acc[c] = bi;
    }
}

void tr_layer_begin(const tr_layer *L, const tr_lparams *P, tr_qparam qin, tr_qparam qout,
                    int32_t *scratch)
{
    const uint32_t C = L->channels;
    tr_layer_prep_requant(L, P, qin, qout, scratch + C, scratch + 2u * C, scratch + 3u * C);
    for (uint32_t c = 0; c < C; c++) {
        scratch[4u * C + c] = INT32_MAX;
        scratch[5u * C + c] = INT32_MIN;
    }
}

void tr_layer_store(int32_t *scratch, uint32_t C, int32_t zp, int32_t lo, uint8_t *o)
{
    const int32_t *acc = scratch;
    const int32_t *mult = scratch + 2u * C;
    const int32_t *shift = scratch + 3u * C;
    int32_t *mn = scratch + 4u * C;
    int32_t *mx = scratch + 5u * C;
    for (uint32_t c = 0; c < C; c++) {
        int32_t a = acc[c];
        int32_t r;
        if (a < mn[c]) {
            mn[c] = a;
        }
        if (a > mx[c]) {
            mx[c] = a;
        }
        r = tr_mulshift_s32(a, mult[c], shift[c]);
        r = (r > 255) ? 255 : (r < -255 ? -255 : r);
        r += zp;
        o[c] = (uint8_t)(r < lo ? lo : (r > 255 ? 255 : r));
    }
}

void tr_layer_obs_finish(const tr_layer *L, const tr_lparams *P, tr_qparam qin,
                         const int32_t *mn, const int32_t *mx, tr_obs *obs)
{
    float lo = 0.0f;
    float hi = 0.0f;
    for (uint32_t c = 0; c < L->channels; c++) {
        float unit = qin.s * P->scale[c];
        float a = (float)mn[c] * unit;
        float b = (float)mx[c] * unit;
        if (a < lo) {
            lo = a;
        }
        if (b > hi) {
            hi = b;
        }
    }
    obs->mn = lo;
    obs->mx = hi;
}

float tr_layer_scale_ratios(const tr_layer *L, const tr_lparams *P, int32_t *ratio)
{
    float smax = 0.0f;
    for (uint32_t c = 0; c < L->channels; c++) {
        if (P->scale[c] > smax) {
            smax = P->scale[c];
        }
    }
    for (uint32_t c = 0; c < L->channels; c++) {
        ratio[c] = tr_round_f32((P->scale[c] / smax) * 32768.0f);
    }
    return smax;
}

void tr_error_requant(const int32_t *acc, uint32_t n, float unit, uint8_t *out, tr_qparam *qout)
{
    int32_t mn = 0;
    int32_t mx = 0;
    int32_t mult, shift;
    tr_minmax_s32(acc, n, &mn, &mx);
    if (mn == 0 && mx == 0) {
        mx = 1; /* an all-zero error still gets a valid scale */
    }
    *qout = tr_qparam_from_range((float)mn * unit, (float)mx * unit);
    tr_quant_multiplier(unit / qout->s, &mult, &shift);
    tr_requant_s32_u8(acc, out, n, mult, shift, qout->z, 0, 255);
}

/* floor(v / 2^s) for s in 1..62, any sign, without relying on >> of negatives */
static int64_t floor_shift_s64(int64_t v, int32_t s)
{
    if (v >= 0) {
        return (int64_t)((uint64_t)v >> s);
    }
    return -(int64_t)(((uint64_t)(-(v + 1))) >> s) - 1;
}

void tr_error_requant_sr(const int32_t *acc, uint32_t n, float unit, uint8_t *out,
                         tr_qparam *qout, uint32_t *rng)
{
    int32_t mn = 0;
    int32_t mx = 0;
    int32_t mult, shift, s;
    tr_minmax_s32(acc, n, &mn, &mx);
    if (mn == 0 && mx == 0) {
        mx = 1;
    }
    *qout = tr_qparam_from_range((float)mn * unit, (float)mx * unit);
    tr_quant_multiplier(unit / qout->s, &mult, &shift);
    s = 31 - shift; /* 1 .. 62 */
    {
        const int32_t z = qout->z; /* stores to out may alias *qout */
        /* 8 random bits per element (4 per PRNG draw): rounding resolution
         * of 1/256 of a step is plenty and the PRNG cost drops 4x */
        uint32_t bits = 0;
        uint32_t left = 0;
        for (uint32_t i = 0; i < n; i++) {
            int64_t r;
            uint64_t u, add;
            if (acc[i] == 0) {
                out[i] = (uint8_t)z; /* zero stays exactly zero */
                continue;
            }
            if (left == 0) {
                bits = tr_rng_next(rng);
                left = 4;
            }
            u = bits & 0xFFu;
            bits >>= 8;
            left--;
            add = (s >= 8) ? (u << (s - 8)) : (u >> (8 - s));
            r = floor_shift_s64((int64_t)acc[i] * (int64_t)mult + (int64_t)add, s);
            r = (r > 255) ? 255 : (r < -255 ? -255 : r);
            r += z;
            out[i] = (uint8_t)(r < 0 ? 0 : (r > 255 ? 255 : r));
        }
    }
}

void tr_mask_magnitude(const uint8_t *out, tr_qparam qout, uint8_t *err, tr_qparam qerr,
                       uint32_t positions, uint32_t channels, uint32_t *mag, int32_t *bsum)
{
    const uint8_t ze = (uint8_t)qerr.z;
    const int32_t lo = qout.z;
    for (uint32_t c = 0; c < channels; c++) {
        mag[c] = 0;
        if (bsum != NULL) {
            bsum[c] = 0;
        }
    }
    for (uint32_t p = 0; p < positions; p++) {
        const uint8_t *o = out + p * channels;
        uint8_t *e = err + p * channels;
        for (uint32_t c = 0; c < channels; c++) {
            int32_t d = (int32_t)e[c] - qerr.z;
            if (d == 0) {
                continue; /* most elements below a max-pool */
            }
            if ((int32_t)o[c] <= lo || o[c] == 255u) {
                e[c] = ze;
                continue;
            }
            mag[c] += (uint32_t)(d < 0 ? -d : d);
            if (bsum != NULL) {
                bsum[c] += d;
            }
        }
    }
}

void tr_clamp_mask_error(const uint8_t *out, tr_qparam qout, int relu, uint8_t *err,
                         tr_qparam qerr, uint32_t n)
{
    const uint8_t ze = (uint8_t)qerr.z;
    const int32_t lo = relu ? qout.z : -1;
    for (uint32_t i = 0; i < n; i++) {
        int32_t o = out[i];
        if (o <= lo || o == 255) {
            err[i] = ze;
        }
    }
}

void tr_relu_mask_error(const uint8_t *out, tr_qparam qout, uint8_t *err, tr_qparam qerr,
                        uint32_t n)
{
    uint8_t ze = (uint8_t)qerr.z;
    for (uint32_t i = 0; i < n; i++) {
        if ((int32_t)out[i] <= qout.z) {
            err[i] = ze;
        }
    }
}

void tr_error_magnitude(const uint8_t *err, tr_qparam qerr, uint32_t positions,
                        uint32_t channels, uint32_t *mag, int32_t *bsum)
{
    for (uint32_t c = 0; c < channels; c++) {
        mag[c] = 0;
    }
    for (uint32_t p = 0; p < positions; p++) {
        tr_absdiff_acc_u8(mag, err + p * channels, channels, qerr.z);
    }
    if (bsum != NULL) {
        for (uint32_t c = 0; c < channels; c++) {
            bsum[c] = 0;
        }
        for (uint32_t p = 0; p < positions; p++) {
            const uint8_t *e = err + p * channels;
            for (uint32_t c = 0; c < channels; c++) {
                bsum[c] += (int32_t)e[c] - qerr.z;
            }
        }
    }
}
