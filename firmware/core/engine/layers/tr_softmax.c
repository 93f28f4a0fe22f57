/* Softmax + cross-entropy on the uint8 logits. One float scalar per class
 * (never a float tensor in the arena); exp and log are our own, so the loss
 * and the error bytes are identical on every target. */
#include "engine/tr_layers.h"

uint32_t tr_softmax_get_buffer_size(const tr_layer *L)
{
    (void)L;
    return 0;
}

tr_status tr_softmax_ce(const tr_layer *L, const uint8_t *logits, tr_qparam ql, uint32_t label,
                        uint32_t *pred, float *loss, uint8_t *err, tr_qparam *qerr)
{
    const uint32_t n = L->in.h * L->in.w * L->in.c;
    uint32_t best = 0;
    float sum = 0.0f;
    float emn = 0.0f;
    float emx = 0.0f;
    for (uint32_t i = 1; i < n; i++) {
        if (logits[i] > logits[best]) {
            best = i;
        }
    }
    *pred = best;
    /* p_i = exp(s (q_i - q_max)) / sum */
    for (uint32_t i = 0; i < n; i++) {
        sum += tr_exp_neg_f32(ql.s * (float)((int32_t)logits[i] - (int32_t)logits[best]));
    }
    if (label < n) {
        *loss = tr_log_f32(sum) -
                ql.s * (float)((int32_t)logits[label] - (int32_t)logits[best]);
    } else {
        *loss = 0.0f;
    }
    if (err == NULL) {
        return TR_OK;
    }
    if (label >= n) {
        return TR_ERR_ARG;
    }
    /* error range first (p - onehot), then quantize with it */
    for (uint32_t i = 0; i < n; i++) {
        float p = tr_exp_neg_f32(ql.s * (float)((int32_t)logits[i] - (int32_t)logits[best])) / sum;
        float e = (i == label) ? p - 1.0f : p;
        if (e < emn) {
            emn = e;
        }
        if (e > emx) {
            emx = e;
        }
    }
    *qerr = tr_qparam_from_range(emn, emx);
    for (uint32_t i = 0; i < n; i++) {
        float p = tr_exp_neg_f32(ql.s * (float)((int32_t)logits[i] - (int32_t)logits[best])) / sum;
        float e = (i == label) ? p - 1.0f : p;
        int32_t q = tr_round_f32(e / qerr->s) + qerr->z;
        err[i] = (uint8_t)(q < 0 ? 0 : (q > 255 ? 255 : q));
    }
    return TR_OK;
}
