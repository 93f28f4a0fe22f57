/* Depthwise conv2d (channel multiplier 1): int8 weights [kh][kw][c] with a
 * per-channel symmetric scale, stride and symmetric zero padding. */
#include <string.h>
#include "engine/tr_layers.h"
#include "kernels/tr_kernels.h"

uint32_t tr_dwconv2d_get_buffer_size(const tr_layer *L)
{
    return TR_CHAN_SCRATCH_WORDS * 4u * L->channels;
}

tr_status tr_dwconv2d_forward(const tr_layer *L, const tr_lparams *P, const uint8_t *in,
                              tr_qparam qin, uint8_t *out, tr_qparam qout, int32_t *scratch,
                              tr_obs *obs)
{
    const uint32_t C = L->channels;
    int32_t *acc = scratch;
    int32_t *bias = scratch + C;
    const int32_t *mn = scratch + 4u * C;
    const int32_t *mx = scratch + 5u * C;
    const int32_t lo = (L->act == TR_ACT_RELU) ? qout.z : 0;

    tr_layer_begin(L, P, qin, qout, scratch);
    for (uint32_t oy = 0; oy < L->out.h; oy++) {
        for (uint32_t ox = 0; ox < L->out.w; ox++) {
            uint8_t *o = out + (oy * L->out.w + ox) * C;
            memcpy(acc, bias, 4u * C);
            for (uint32_t ky = 0; ky < L->kh; ky++) {
                int32_t iy = (int32_t)(oy * L->stride + ky) - (int32_t)L->pad;
                if (iy < 0 || iy >= (int32_t)L->in.h) {
                    continue;
                }
                for (uint32_t kx = 0; kx < L->kw; kx++) {
                    int32_t ix = (int32_t)(ox * L->stride + kx) - (int32_t)L->pad;
                    if (ix < 0 || ix >= (int32_t)L->in.w) {
                        continue;
                    }
                    tr_mac_s8u8(acc, P->w + (ky * L->kw + kx) * C,
                                in + ((uint32_t)iy * L->in.w + (uint32_t)ix) * C, C, qin.z);
                }
            }
            tr_layer_store(scratch, C, qout.z, lo, o);
        }
    }
    if (obs != NULL) {
        tr_layer_obs_finish(L, P, qin, mn, mx, obs);
    }
    return TR_OK;
}

tr_status tr_dwconv2d_backward(const tr_layer *L, const tr_lparams *P, const uint8_t *err,
                               tr_qparam qerr, const uint8_t *sel, int32_t *ratio, int32_t *acc,
                               float *unit)
{
    const uint32_t C = L->channels;
    const uint32_t n = L->in.h * L->in.w * C;
    float smax = tr_layer_scale_ratios(L, P, ratio);

    memset(acc, 0, 4u * n);
    for (uint32_t oy = 0; oy < L->out.h; oy++) {
        for (uint32_t ox = 0; ox < L->out.w; ox++) {
            const uint8_t *e = err + (oy * L->out.w + ox) * C;
            for (uint32_t ky = 0; ky < L->kh; ky++) {
                int32_t iy = (int32_t)(oy * L->stride + ky) - (int32_t)L->pad;
                if (iy < 0 || iy >= (int32_t)L->in.h) {
                    continue;
                }
                for (uint32_t kx = 0; kx < L->kw; kx++) {
                    int32_t ix = (int32_t)(ox * L->stride + kx) - (int32_t)L->pad;
                    if (ix < 0 || ix >= (int32_t)L->in.w) {
                        continue;
                    }
                    tr_mac_s8u8(acc + ((uint32_t)iy * L->in.w + (uint32_t)ix) * C,
                                P->w + (ky * L->kw + kx) * C, e, C, qerr.z);
                }
            }
        }
    }
    /* Each input channel only sees its own output channel: bring every
     * channel to the common unit s_e * max(s_w) after the exact sum. */
    for (uint32_t i = 0; i < n; i++) {
        uint32_t c = i % C;
        if (sel != NULL && sel[c] == 0) {
            acc[i] = 0;
        } else if (ratio[c] != 32768) {
            acc[i] = tr_mulshift_s32(acc[i], ratio[c] << 16, 0);
        }
    }
    *unit = qerr.s * smax;
    return TR_OK;
}

tr_status tr_dwconv2d_grad(const tr_layer *L, const uint8_t *in, tr_qparam qin,
                           const uint8_t *err, tr_qparam qerr, uint32_t c, int32_t *g,
                           int32_t *gb)
{
    const uint32_t C = L->channels;
    int32_t bsum = 0;
    memset(g, 0, 4u * L->fan_in);
    for (uint32_t oy = 0; oy < L->out.h; oy++) {
        for (uint32_t ox = 0; ox < L->out.w; ox++) {
            int32_t d = (int32_t)err[(oy * L->out.w + ox) * C + c] - qerr.z;
            if (d == 0) {
                continue;
            }
            bsum += d;
            for (uint32_t ky = 0; ky < L->kh; ky++) {
                int32_t iy = (int32_t)(oy * L->stride + ky) - (int32_t)L->pad;
                if (iy < 0 || iy >= (int32_t)L->in.h) {
                    continue;
                }
                for (uint32_t kx = 0; kx < L->kw; kx++) {
                    int32_t ix = (int32_t)(ox * L->stride + kx) - (int32_t)L->pad;
                    if (ix < 0 || ix >= (int32_t)L->in.w) {
                        continue;
                    }
                    g[ky * L->kw + kx] +=
                        d * ((int32_t)in[((uint32_t)iy * L->in.w + (uint32_t)ix) * C + c] - qin.z);
                }
            }
        }
    }
    *gb = bsum;
    return TR_OK;
}
