/* Global average pooling: one mean per channel, same quantization as the
 * input; backward broadcasts the error with the scale divided by h*w. */
#include "engine/tr_layers.h"

uint32_t tr_gap_get_buffer_size(const tr_layer *L)
{
    (void)L;
    return 0;
}

tr_status tr_gap_forward(const tr_layer *L, const uint8_t *in, uint8_t *out)
{
    const uint32_t C = L->in.c;
    const uint32_t hw = L->in.h * L->in.w;
    for (uint32_t c = 0; c < C; c++) {
        uint32_t sum = 0;
        for (uint32_t p = 0; p < hw; p++) {
            sum += in[p * C + c];
        }
        out[c] = (uint8_t)((sum + hw / 2u) / hw);
    }
    return TR_OK;
}

tr_status tr_gap_backward(const tr_layer *L, const uint8_t *err, tr_qparam qerr, uint8_t *err_in,
                          tr_qparam *qin_err)
{
    const uint32_t C = L->in.c;
    const uint32_t hw = L->in.h * L->in.w;
    for (uint32_t p = 0; p < hw; p++) {
        for (uint32_t c = 0; c < C; c++) {
            err_in[p * C + c] = err[c];
        }
    }
    qin_err->s = qerr.s / (float)hw;
    qin_err->z = qerr.z;
    return TR_OK;
}
