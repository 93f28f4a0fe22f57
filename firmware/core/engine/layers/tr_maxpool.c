/* Max pooling k x k with a stride, no padding; the error goes to the first
 * maximum of each window, found again from the saved input. */
#include <string.h>
#include "engine/tr_layers.h"

uint32_t tr_maxpool_get_buffer_size(const tr_layer *L)
{
    return (L->stride < L->kh) ? 4u * L->in.h * L->in.w * L->in.c : 0u;
}

/* Input index of the first maximum of window (oy, ox) in channel c: the
 * first element equal to the pooled output m (which the forward kept). */
static uint32_t window_argmax(const tr_layer *L, const uint8_t *in, uint32_t oy, uint32_t ox,
                              uint32_t c, uint8_t m)
{
    const uint32_t C = L->in.c;
    const uint32_t row = L->in.w * C;
    const uint32_t base = ((oy * L->stride) * L->in.w + ox * L->stride) * C + c;
    for (uint32_t ky = 0; ky < L->kh; ky++) {
        const uint8_t *p = in + base + ky * row;
        for (uint32_t kx = 0; kx < L->kw; kx++) {
            if (p[kx * C] == m) {
                return base + ky * row + kx * C;
            }
        }
    }
    return base; /* not reached when m is the window's maximum */
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
    const uint32_t C = L->in.c;
    const uint32_t n_in = L->in.h * L->in.w * C;
    const int overlap = L->stride < L->kh;
    if (overlap) {
        memset(acc, 0, 4u * n_in);
    } else {
        memset(err_in, qerr.z, n_in);
    }
    for (uint32_t oy = 0; oy < L->out.h; oy++) {
        for (uint32_t ox = 0; ox < L->out.w; ox++) {
            const uint8_t *e = err + (oy * L->out.w + ox) * C;
            const uint8_t *m = out + (oy * L->out.w + ox) * C;
            for (uint32_t c = 0; c < C; c++) {
                uint32_t idx;
                if ((int32_t)e[c] == qerr.z) {
                    continue;
                }
                idx = window_argmax(L, in, oy, ox, c, m[c]);
                if (overlap) {
                    acc[idx] += (int32_t)e[c] - qerr.z;
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
