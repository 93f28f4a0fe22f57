/* conv2d: int8 weights [cout][kh][kw][cin] (per-channel symmetric scales),
 * uint8 input and output, stride and symmetric zero padding, optional fused ReLU. */
#include <string.h>
#include "engine/tr_layers.h"
#include "kernels/tr_kernels.h"

uint32_t tr_conv2d_get_buffer_size(const tr_layer *L)
{
    return TR_CHAN_SCRATCH_WORDS * 4u * L->channels;
}

/* Valid kernel columns [*k0, *k1) for output column ox. */
static void kx_range(const tr_layer *L, uint32_t ox, uint32_t *k0, uint32_t *k1)
{
    int32_t base = (int32_t)(ox * L->stride) - (int32_t)L->pad;
    int32_t lo = base < 0 ? -base : 0;
    int32_t hi = (int32_t)L->in.w - base;
    if (hi > (int32_t)L->kw) {
        hi = (int32_t)L->kw;
    }
    *k0 = (uint32_t)lo;
    *k1 = hi > lo ? (uint32_t)hi : (uint32_t)lo;
}

/* Receptive fields up to this many bytes are gathered into one contiguous
 * patch (on the stack) so each channel is one dot product over the whole
 * fan-in: long spans for the SIMD kernels, a tenth of the calls of a row at a
 * time. Padding is filled with the input zero point, which contributes
 * exactly 0, so the sums are the same integers as row by row. */
#define CONV_PATCH_MAX 512u

static void gather_patch(const tr_layer *L, const uint8_t *in, uint32_t oy, uint32_t ox,
                         uint8_t zp, uint8_t *patch)
{
    const uint32_t cin = L->in.c;
    const uint32_t row = L->kw * cin;
    uint32_t k0, k1;
    kx_range(L, ox, &k0, &k1);
    for (uint32_t ky = 0; ky < L->kh; ky++) {
        int32_t iy = (int32_t)(oy * L->stride + ky) - (int32_t)L->pad;
        uint8_t *p = patch + ky * row;
        if (iy < 0 || iy >= (int32_t)L->in.h || k1 <= k0) {
            memset(p, zp, row);
            continue;
        }
        if (k0 > 0u) { /* padding only at the edges: no library call in between */
            memset(p, zp, k0 * cin);
        }
        memcpy(p + k0 * cin, in + ((uint32_t)iy * L->in.w + ox * L->stride + k0 - L->pad) * cin,
               (k1 - k0) * cin);
        if (k1 < L->kw) {
            memset(p + k1 * cin, zp, (L->kw - k1) * cin);
        }
    }
}

tr_status tr_conv2d_forward(const tr_layer *L, const tr_lparams *P, const uint8_t *in,
                            tr_qparam qin, uint8_t *out, tr_qparam qout, int32_t *scratch,
                            tr_obs *obs)
{
    const uint32_t C = L->channels;
    const uint32_t cin = L->in.c;
    int32_t *acc = scratch;
    int32_t *bias = scratch + C;
    const int32_t *mn = scratch + 4u * C;
    const int32_t *mx = scratch + 5u * C;
    const int32_t lo = (L->act == TR_ACT_RELU) ? qout.z : 0;

    tr_layer_begin(L, P, qin, qout, scratch);
    if (L->fan_in <= CONV_PATCH_MAX) {
        uint8_t patch[CONV_PATCH_MAX];
        for (uint32_t oy = 0; oy < L->out.h; oy++) {
            for (uint32_t ox = 0; ox < L->out.w; ox++) {
                gather_patch(L, in, oy, ox, (uint8_t)qin.z, patch);
                uint32_t c = 0;
                for (; c + 1u < C; c += 2u) {
                    const int8_t *w = P->w + c * L->fan_in;
                    int32_t two[2];
                    tr_dot2_s8u8(w, w + L->fan_in, patch, L->fan_in, qin.z, two);
                    acc[c] = bias[c] + two[0];
                    acc[c + 1u] = bias[c + 1u] + two[1];
                }
                if (c < C) {
                    acc[c] = bias[c] + tr_dot_s8u8(P->w + c * L->fan_in, patch, L->fan_in, qin.z);
                }
                tr_layer_store(scratch, C, qout.z, lo, out + (oy * L->out.w + ox) * C);
            }
        }
    } else {
    for (uint32_t oy = 0; oy < L->out.h; oy++) {
        for (uint32_t ox = 0; ox < L->out.w; ox++) {
            uint32_t k0, k1;
            uint8_t *o = out + (oy * L->out.w + ox) * C;
            kx_range(L, ox, &k0, &k1);
            memcpy(acc, bias, 4u * C);
            for (uint32_t ky = 0; ky < L->kh; ky++) {
                int32_t iy = (int32_t)(oy * L->stride + ky) - (int32_t)L->pad;
                if (iy < 0 || iy >= (int32_t)L->in.h || k1 <= k0) {
                    continue;
                }
                uint32_t ix = ox * L->stride + k0 - L->pad;
                const uint8_t *x = in + ((uint32_t)iy * L->in.w + ix) * cin;
                uint32_t span = (k1 - k0) * cin;
                uint32_t woff = (ky * L->kw + k0) * cin;
                for (uint32_t c = 0; c < C; c++) {
                    acc[c] += tr_dot_s8u8(P->w + c * L->fan_in + woff, x, span, qin.z);
                }
            }
            tr_layer_store(scratch, C, qout.z, lo, o);
        }
    }
    }
    if (obs != NULL) {
        tr_layer_obs_finish(L, P, qin, mn, mx, obs);
    }
    return TR_OK;
}

tr_status tr_conv2d_backward(const tr_layer *L, const tr_lparams *P, const uint8_t *err,
                             tr_qparam qerr, const uint8_t *sel, int32_t *ratio, int32_t *acc,
                             float *unit)
{
    const uint32_t C = L->channels;
    const uint32_t cin = L->in.c;
    const int32_t rshift = 15 - (int32_t)L->err_shift;
    const int32_t rhalf = (int32_t)1 << (rshift - 1);
    float smax = tr_layer_scale_ratios(L, P, ratio);

    memset(acc, 0, 4u * L->in.h * L->in.w * cin);
    for (uint32_t oy = 0; oy < L->out.h; oy++) {
        for (uint32_t ox = 0; ox < L->out.w; ox++) {
            uint32_t k0, k1;
            const uint8_t *e = err + (oy * L->out.w + ox) * C;
            kx_range(L, ox, &k0, &k1);
            if (k1 <= k0) {
                continue;
            }
            for (uint32_t c = 0; c < C; c++) {
                int32_t d = (int32_t)e[c] - qerr.z;
                int32_t a;
                if (d == 0 || (sel != NULL && sel[c] == 0)) {
                    continue;
                }
                /* a = round(d * r_c * 2^(k-15)), half up, exact for negatives */
                a = d * ratio[c] + rhalf;
                a = (a >= 0) ? (a >> rshift) : -((-a + (1 << rshift) - 1) >> rshift);
                if (a == 0) {
                    continue;
                }
                for (uint32_t ky = 0; ky < L->kh; ky++) {
                    int32_t iy = (int32_t)(oy * L->stride + ky) - (int32_t)L->pad;
                    if (iy < 0 || iy >= (int32_t)L->in.h) {
                        continue;
                    }
                    uint32_t ix = ox * L->stride + k0 - L->pad;
                    tr_axpy_s8(acc + ((uint32_t)iy * L->in.w + ix) * cin,
                               P->w + c * L->fan_in + (ky * L->kw + k0) * cin, (k1 - k0) * cin,
                               a);
                }
            }
        }
    }
    *unit = tr_ldexp_f32(qerr.s * smax, -(int32_t)L->err_shift);
    return TR_OK;
}

tr_status tr_conv2d_grad(const tr_layer *L, const uint8_t *in, tr_qparam qin, const uint8_t *err,
                         tr_qparam qerr, uint32_t c, int32_t *g, int32_t *gb)
{
    const uint32_t C = L->channels;
    const uint32_t cin = L->in.c;
    int32_t bsum = 0;
    memset(g, 0, 4u * L->fan_in);
    for (uint32_t oy = 0; oy < L->out.h; oy++) {
        for (uint32_t ox = 0; ox < L->out.w; ox++) {
            int32_t d = (int32_t)err[(oy * L->out.w + ox) * C + c] - qerr.z;
            uint32_t k0, k1;
            if (d == 0) {
                continue;
            }
            bsum += d;
            kx_range(L, ox, &k0, &k1);
            if (k1 <= k0) {
                continue;
            }
            for (uint32_t ky = 0; ky < L->kh; ky++) {
                int32_t iy = (int32_t)(oy * L->stride + ky) - (int32_t)L->pad;
                if (iy < 0 || iy >= (int32_t)L->in.h) {
                    continue;
                }
                uint32_t ix = ox * L->stride + k0 - L->pad;
                tr_axpy_u8(g + (ky * L->kw + k0) * cin,
                           in + ((uint32_t)iy * L->in.w + ix) * cin, (k1 - k0) * cin, qin.z, d);
            }
        }
    }
    *gb = bsum;
    return TR_OK;
}
