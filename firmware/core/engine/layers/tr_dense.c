/* dense (fully connected): int8 weights [out][in] with per-channel symmetric
 * scales; the input of any shape is read flattened (HWC order). */
#include <string.h>
#include "engine/tr_layers.h"
#include "kernels/tr_kernels.h"

uint32_t tr_dense_get_buffer_size(const tr_layer *L)
{
    return TR_CHAN_SCRATCH_WORDS * 4u * L->channels;
}

tr_status tr_dense_forward(const tr_layer *L, const tr_lparams *P, const uint8_t *in,
                           tr_qparam qin, uint8_t *out, tr_qparam qout, int32_t *scratch,
                           tr_obs *obs)
{
    const uint32_t C = L->channels;
    const int32_t *bias = scratch + C;
    const int32_t lo = (L->act == TR_ACT_RELU) ? qout.z : 0;

    tr_layer_begin(L, P, qin, qout, scratch);
    for (uint32_t c = 0; c < C; c++) {
        scratch[c] = bias[c] + tr_dot_s8u8(P->w + c * L->fan_in, in, L->fan_in, qin.z);
    }
    tr_layer_store(scratch, C, qout.z, lo, out);
    if (obs != NULL) {
        tr_layer_obs_finish(L, P, qin, scratch + 4u * C, scratch + 5u * C, obs);
    }
    return TR_OK;
}

tr_status tr_dense_backward(const tr_layer *L, const tr_lparams *P, const uint8_t *err,
                            tr_qparam qerr, const uint8_t *sel, int32_t *ratio, int32_t *acc,
                            float *unit)
{
    const int32_t rshift = 15 - (int32_t)L->err_shift;
    const int32_t rhalf = (int32_t)1 << (rshift - 1);
    float smax = tr_layer_scale_ratios(L, P, ratio);

    memset(acc, 0, 4u * L->fan_in);
    for (uint32_t c = 0; c < L->channels; c++) {
        int32_t d = (int32_t)err[c] - qerr.z;
        int32_t a;
        if (d == 0 || (sel != NULL && sel[c] == 0)) {
            continue;
        }
        a = d * ratio[c] + rhalf;
        a = (a >= 0) ? (a >> rshift) : -((-a + (1 << rshift) - 1) >> rshift);
        if (a != 0) {
            tr_axpy_s8(acc, P->w + c * L->fan_in, L->fan_in, a);
        }
    }
    *unit = tr_ldexp_f32(qerr.s * smax, -(int32_t)L->err_shift);
    return TR_OK;
}

tr_status tr_dense_grad(const tr_layer *L, const uint8_t *in, tr_qparam qin, const uint8_t *err,
                        tr_qparam qerr, uint32_t c, int32_t *g, int32_t *gb)
{
    int32_t d = (int32_t)err[c] - qerr.z;
    memset(g, 0, 4u * L->fan_in);
    if (d != 0) {
        tr_axpy_u8(g, in, L->fan_in, qin.z, d);
    }
    *gb = d;
    return TR_OK;
}
