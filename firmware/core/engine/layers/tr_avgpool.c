/* Average pooling k x k with a stride, no padding. The mean keeps the input's
 * quantization (rounded half up); backward spreads the error with the scale
 * divided by k*k, so without overlap the values are copied exactly. */
#include <string.h>
#include "engine/tr_layers.h"

uint32_t tr_avgpool_get_buffer_size(const tr_layer *L)
{
    return (L->stride < L->kh) ? 4u * L->in.h * L->in.w * L->in.c : 0u;
}

tr_status tr_avgpool_forward(const tr_layer *L, const uint8_t *in, uint8_t *out)
{
    const uint32_t C = L->in.c;
    const uint32_t area = (uint32_t)L->kh * L->kw;
    for (uint32_t oy = 0; oy < L->out.h; oy++) {
        for (uint32_t ox = 0; ox < L->out.w; ox++) {
            for (uint32_t c = 0; c < C; c++) {
                uint32_t sum = 0;
                for (uint32_t ky = 0; ky < L->kh; ky++) {
                    for (uint32_t kx = 0; kx < L->kw; kx++) {
                        sum += in[((oy * L->stride + ky) * L->in.w + ox * L->stride + kx) * C + c];
                    }
                }
                out[(oy * L->out.w + ox) * C + c] = (uint8_t)((sum + area / 2u) / area);
            }
        }
    }
    return TR_OK;
}

tr_status tr_avgpool_backward(const tr_layer *L, const uint8_t *err, tr_qparam qerr,
                              int32_t *acc, uint8_t *err_in, tr_qparam *qin_err)
{
    const uint32_t C = L->in.c;
    const uint32_t n_in = L->in.h * L->in.w * C;
    const float unit = qerr.s / (float)((uint32_t)L->kh * L->kw);
    const int overlap = L->stride < L->kh;
    if (overlap) {
        memset(acc, 0, 4u * n_in);
    } else {
        memset(err_in, qerr.z, n_in);
    }
    for (uint32_t oy = 0; oy < L->out.h; oy++) {
        for (uint32_t ox = 0; ox < L->out.w; ox++) {
            const uint8_t *e = err + (oy * L->out.w + ox) * C;
            for (uint32_t ky = 0; ky < L->kh; ky++) {
                for (uint32_t kx = 0; kx < L->kw; kx++) {
                    uint32_t base = ((oy * L->stride + ky) * L->in.w + ox * L->stride + kx) * C;
                    for (uint32_t c = 0; c < C; c++) {
                        if (overlap) {
                            acc[base + c] += (int32_t)e[c] - qerr.z;
                        } else {
                            err_in[base + c] = e[c];
                        }
                    }
                }
            }
        }
    }
    if (overlap) {
        tr_error_requant(acc, n_in, unit, err_in, qin_err);
    } else {
        qin_err->s = unit;
        qin_err->z = qerr.z;
    }
    return TR_OK;
}
