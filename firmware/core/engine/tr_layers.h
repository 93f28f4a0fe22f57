/* Layer operators: one per file in engine/layers/, forward and backward.
 *
 * Activations and errors are uint8 tensors (HWC, batch 1) with one tr_qparam
 * each. Parametric layers (conv2d, dwconv2d, dense) read their parameters from
 * the weights blob through tr_lparams: int8 symmetric weights with one float
 * scale per output channel, int32 biases in units of 2^-20, and the output
 * range record (EMA of the real min/max of the pre-quantization output).
 *
 * Scratch: every operator states the int32 scratch it needs with
 * <op>_get_buffer_size(); the engine plans it in the arena once at load.
 *
 * Backward error of conv2d / dense (scatter form): for each selected output
 * channel c and output element, a = round((e - z_e) * r_c * 2^(k-15)) with
 * r_c = round(2^15 * s_w[c] / max_c s_w[c]) and k = L->err_shift, then
 * acc[input span] += a * w. acc is then in units of s_e * max(s_w) * 2^-k and
 * is requantized with its exact min/max (tr_error_requant). No float tensor.
 */
#ifndef TR_LAYERS_H
#define TR_LAYERS_H

#include <stdint.h>
#include "common/tr_status.h"
#include "model/tr_model.h"
#include "quant/tr_quant.h"

typedef struct {
    float *range;      /* [0] min, [1] max (EMA of the real output) */
    uint32_t *seen;    /* 0 until the range was first observed */
    float *scale;      /* per output channel */
    int32_t *bias;     /* per output channel, real = bias * 2^-20 */
    int8_t *w;         /* layout: conv2d [cout][kh][kw][cin], dense [out][in],
                          dwconv2d [kh][kw][c] */
} tr_lparams;

/* Observed real min / max of a parametric layer's output before clamping. */
typedef struct {
    float mn, mx;
} tr_obs;

/* Per-channel forward scratch: 6 int32 per output channel. */
#define TR_CHAN_SCRATCH_WORDS 6u

/* --- forward ------------------------------------------------------------- */
uint32_t tr_conv2d_get_buffer_size(const tr_layer *L);
tr_status tr_conv2d_forward(const tr_layer *L, const tr_lparams *P, const uint8_t *in,
                            tr_qparam qin, uint8_t *out, tr_qparam qout, int32_t *scratch,
                            tr_obs *obs);
uint32_t tr_dwconv2d_get_buffer_size(const tr_layer *L);
tr_status tr_dwconv2d_forward(const tr_layer *L, const tr_lparams *P, const uint8_t *in,
                              tr_qparam qin, uint8_t *out, tr_qparam qout, int32_t *scratch,
                              tr_obs *obs);
uint32_t tr_dense_get_buffer_size(const tr_layer *L);
tr_status tr_dense_forward(const tr_layer *L, const tr_lparams *P, const uint8_t *in,
                           tr_qparam qin, uint8_t *out, tr_qparam qout, int32_t *scratch,
                           tr_obs *obs);
uint32_t tr_relu_get_buffer_size(const tr_layer *L);
tr_status tr_relu_forward(const tr_layer *L, const uint8_t *in, tr_qparam q, uint8_t *out);
uint32_t tr_maxpool_get_buffer_size(const tr_layer *L);
tr_status tr_maxpool_forward(const tr_layer *L, const uint8_t *in, uint8_t *out);
uint32_t tr_avgpool_get_buffer_size(const tr_layer *L);
tr_status tr_avgpool_forward(const tr_layer *L, const uint8_t *in, uint8_t *out);
uint32_t tr_gap_get_buffer_size(const tr_layer *L);
tr_status tr_gap_forward(const tr_layer *L, const uint8_t *in, uint8_t *out);

/* Softmax + cross-entropy on uint8 logits: probabilities and loss in float
 * scalars (one per class). Writes the predicted class and the loss (natural
 * log); when err != NULL also the error dL/dlogits = p - onehot(label),
 * quantized with its exact range into err / *qerr. */
uint32_t tr_softmax_get_buffer_size(const tr_layer *L);
tr_status tr_softmax_ce(const tr_layer *L, const uint8_t *logits, tr_qparam ql, uint32_t label,
                        uint32_t *pred, float *loss, uint8_t *err, tr_qparam *qerr);

/* --- backward ------------------------------------------------------------ */
/* Zeroes the error where a fused ReLU clamped the output (out <= z_out). */
void tr_relu_mask_error(const uint8_t *out, tr_qparam qout, uint8_t *err, tr_qparam qerr,
                        uint32_t n);

/* Clipped straight-through estimator: zeroes the error where the output was
 * clamped (by a fused ReLU, or by the top / bottom of the output range) and
 * descent would push it further out; relu: 1 for a fused ReLU. Without it a
 * saturated output keeps growing the weights that feed it. */
void tr_clamp_mask_error(const uint8_t *out, tr_qparam qout, int relu, uint8_t *err,
                         tr_qparam qerr, uint32_t n);

/* tr_clamp_mask_error (fused ReLU) and tr_error_magnitude in one pass. */
void tr_mask_magnitude(const uint8_t *out, tr_qparam qout, uint8_t *err, tr_qparam qerr,
                       uint32_t positions, uint32_t channels, uint32_t *mag, int32_t *bsum);

/* Per-channel error magnitude sum_p |e(p, c) - z_e| into mag[channels], and
 * (bsum not NULL) the signed sum sum_p (e(p, c) - z_e), the bias gradient in
 * error steps, into bsum[channels]: a sparse step updates every bias for it. */
void tr_error_magnitude(const uint8_t *err, tr_qparam qerr, uint32_t positions,
                        uint32_t channels, uint32_t *mag, int32_t *bsum);

/* Error to the input of conv2d / dense / dwconv2d into acc (int32, input
 * elements), for channels with sel[c] != 0 (sel NULL: all). *unit receives
 * the real value of one acc step. ratio: int32 scratch, one per channel. */
tr_status tr_conv2d_backward(const tr_layer *L, const tr_lparams *P, const uint8_t *err,
                             tr_qparam qerr, const uint8_t *sel, int32_t *ratio, int32_t *acc,
                             float *unit);
tr_status tr_dense_backward(const tr_layer *L, const tr_lparams *P, const uint8_t *err,
                            tr_qparam qerr, const uint8_t *sel, int32_t *ratio, int32_t *acc,
                            float *unit);
tr_status tr_dwconv2d_backward(const tr_layer *L, const tr_lparams *P, const uint8_t *err,
                               tr_qparam qerr, const uint8_t *sel, int32_t *ratio, int32_t *acc,
                               float *unit);

/* Requantizes int32 error accumulators (real = acc * unit) to uint8 with the
 * exact range of this sample. */
void tr_error_requant(const int32_t *acc, uint32_t n, float unit, uint8_t *out,
                      tr_qparam *qout);

/* The same with stochastic rounding (unbiased: small errors survive on
 * average) drawing one number per non-zero element from the seeded PRNG. */
void tr_error_requant_sr(const int32_t *acc, uint32_t n, float unit, uint8_t *out,
                         tr_qparam *qout, uint32_t *rng);

/* Gradient of output channel c: g[fan_in] = sum_p (e - z_e)(x - z_x) (units
 * s_e * s_x) and gb = sum_p (e - z_e) (units s_e). g is ordered like the
 * channel's weights (dwconv2d: tap order). */
tr_status tr_conv2d_grad(const tr_layer *L, const uint8_t *in, tr_qparam qin, const uint8_t *err,
                         tr_qparam qerr, uint32_t c, int32_t *g, int32_t *gb);
tr_status tr_dense_grad(const tr_layer *L, const uint8_t *in, tr_qparam qin, const uint8_t *err,
                        tr_qparam qerr, uint32_t c, int32_t *g, int32_t *gb);
tr_status tr_dwconv2d_grad(const tr_layer *L, const uint8_t *in, tr_qparam qin,
                           const uint8_t *err, tr_qparam qerr, uint32_t c, int32_t *g,
                           int32_t *gb);

/* Pools and ReLU route the error; the output quantization of err_in is set
 * in *qin_err (pools without overlap keep values exactly, only the scale of
 * an average changes). acc: int32 scratch for overlapping windows. */
tr_status tr_relu_backward(const tr_layer *L, const uint8_t *out, tr_qparam qout,
                           const uint8_t *err, tr_qparam qerr, uint8_t *err_in,
                           tr_qparam *qin_err);
/* maxpool: out is the pooled output of the same forward (finds the argmax). */
tr_status tr_maxpool_backward(const tr_layer *L, const uint8_t *in, const uint8_t *out,
                              const uint8_t *err, tr_qparam qerr, int32_t *acc, uint8_t *err_in,
                              tr_qparam *qin_err);
tr_status tr_avgpool_backward(const tr_layer *L, const uint8_t *err, tr_qparam qerr,
                              int32_t *acc, uint8_t *err_in, tr_qparam *qin_err);
tr_status tr_gap_backward(const tr_layer *L, const uint8_t *err, tr_qparam qerr, uint8_t *err_in,
                          tr_qparam *qin_err);

/* Shared forward helpers (engine/layers/tr_requant.c). */
void tr_layer_prep_requant(const tr_layer *L, const tr_lparams *P, tr_qparam qin, tr_qparam qout,
                           int32_t *bias_acc, int32_t *mult, int32_t *shift);
/* Forward scratch (TR_CHAN_SCRATCH_WORDS per channel): acc | bias | mult |
 * shift | min | max. tr_layer_begin fills bias..max; tr_layer_store
 * requantizes one output pixel's acc[C] into o (clamped to lo..255) and
 * tracks each channel's accumulator range. */
void tr_layer_begin(const tr_layer *L, const tr_lparams *P, tr_qparam qin, tr_qparam qout,
                    int32_t *scratch);
void tr_layer_store(int32_t *scratch, uint32_t C, int32_t zp, int32_t lo, uint8_t *o);
void tr_layer_obs_finish(const tr_layer *L, const tr_lparams *P, tr_qparam qin,
                         const int32_t *mn, const int32_t *mx, tr_obs *obs);
/* Channel ratios r_c = round(2^15 s_w[c] / max s_w) into ratio; returns max s_w. */
float tr_layer_scale_ratios(const tr_layer *L, const tr_lparams *P, int32_t *ratio);

#endif
