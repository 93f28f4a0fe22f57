/* Max pooling k x k with a stride, no padding; the error goes to the first
 * maximum of each window, found again from the saved input. */
#include <string.h>
#include "engine/tr_layers.h"

uint32_t tr_maxpool_get_buffer_size(const tr_layer *L)
{
    return (L->stride < L->kh) ? 4u * L->in.h * L->in.w * L->in.c : 0u;
}

tr_status tr_maxpool_forward(const tr_layer *L, const uint8_t *in, uint8_t *out)
{
    const uint32_t C = L->in.c;
    for (uint32_t oy = 0; oy < L->out.h; oy++) {
        for (uint32_t ox = 0; ox < L->out.w; ox++) {
            uint8_t *o = out + (oy * L->out.w + ox) * C;
            memset(o, 0, C);
            for (uint32_t ky = 0; ky < L->kh; ky++) {
                for (uint32_t kx = 0; kx < L->kw; kx++) {
                    const uint8_t *x =
                        in + ((oy * L->stride + ky) * L->in.w + ox * L->stride + kx) * C;
                    for (uint32_t c = 0; c < C; c++) {
                        if (x[c] > o[c]) {
                            o[c] = x[c];
                        }
                    }
                }
            }
        }
    }
    return TR_OK;
}

tr_status tr_maxpool_backward(const tr_layer *L, const uint8_t *in, const uint8_t *out,
                              const uint8_t *err, tr_qparam qerr, int32_t *acc, uint8_t *err_in,
                              tr_qparam *qin_err)
{
    /* shape in locals: stores through uint8_t pointers may alias *L */
    const uint32_t C = L->in.c;
    const uint32_t n_in = L->in.h * L->in.w * C;
    const uint32_t row = L->in.w * C;
    const uint32_t kh = L->kh, kw = L->kw, stride = L->stride;
    const uint32_t oh = L->out.h, ow = L->out.w;
    const int32_t z = qerr.z;
    const int overlap = stride < kh;
    if (overlap) {
        memset(acc, 0, 4u * n_in);
    } else {
        memset(err_in, z, n_in);
    }
    for (uint32_t oy = 0; oy < oh; oy++) {
        for (uint32_t ox = 0; ox < ow; ox++) {
            const uint8_t *e = err + (oy * ow + ox) * C;
            const uint8_t *m = out + (oy * ow + ox) * C;
            const uint32_t base = (oy * stride) * row + ox * stride * C;
            for (uint32_t c = 0; c < C; c++) {
                /* the error goes to the first element equal to the pooled
                 * output (kept by the forward): the window's first maximum */
                uint32_t idx = base + c;
                int found = 0;
                if ((int32_t)e[c] == z) {
                    continue;
                }
                for (uint32_t ky = 0; ky < kh && !found; ky++) {
                    for (uint32_t kx = 0; kx < kw; kx++) {
                        uint32_t k = base + ky * row + kx * C + c;
                        if (in[k] == m[c]) {
                            idx = k;
                            found = 1;
                            break;
                        }
                    }
                }
                if (overlap) {
                    acc[idx] += (int32_t)e[c] - z;
                } else {
                    err_in[idx] = e[c];
                }
            }
        }
    }
    if (overlap) {
        tr_error_requant(acc, n_in, qerr.s, err_in, qin_err);
    } else {
        *qin_err = qerr;
    }
    return TR_OK;
}
