/* ReLU on a uint8 tensor: clamps at the zero point, quantization unchanged. */
#include "engine/tr_layers.h"

uint32_t tr_relu_get_buffer_size(const tr_layer *L)
{
    (void)L;
    return 0;
}

tr_status tr_relu_forward(const tr_layer *L, const uint8_t *in, tr_qparam q, uint8_t *out)
{
    const uint32_t n = L->in.h * L->in.w * L->in.c;
    const uint8_t z = (uint8_t)q.z;
    for (uint32_t i = 0; i < n; i++) {
        out[i] = in[i] > z ? in[i] : z;
    }
    return TR_OK;
}

tr_status tr_relu_backward(const tr_layer *L, const uint8_t *out, tr_qparam qout,
                           const uint8_t *err, tr_qparam qerr, uint8_t *err_in,
                           tr_qparam *qin_err)
{
    const uint32_t n = L->in.h * L->in.w * L->in.c;
    const uint8_t ze = (uint8_t)qerr.z;
    for (uint32_t i = 0; i < n; i++) {
        err_in[i] = ((int32_t)out[i] > qout.z) ? err[i] : ze;
    }
    *qin_err = qerr;
    return TR_OK;
}
