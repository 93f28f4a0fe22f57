/* Float32 versions of every layer, forward and backward: the reference the
 * int8 layers are tested against and the body of the float32 twin trainer.
 * Test and benchmark code only, never part of the firmware core. Same layouts
 * as the int8 layers (HWC activations, conv2d [cout][kh][kw][cin], dense
 * [out][in], dwconv2d [kh][kw][c]); pure C, no I/O. */
#ifndef TR_FLOAT_LAYERS_H
#define TR_FLOAT_LAYERS_H

#include <stdint.h>
#include "model/tr_model.h"

/* out = act(W x + b) for conv2d / dwconv2d / dense. */
void tr_f_param_forward(const tr_layer *L, const float *in, const float *w, const float *b,
                        float *out);
/* Error to the input (err_in, input elements) from the output error, for the
 * channels with sel[c] != 0 (sel NULL: all). Does not apply the fused ReLU
 * mask: the caller masks err first (tr_f_relu_mask). */
void tr_f_param_backward(const tr_layer *L, const float *w, const float *err, const uint8_t *sel,
                         float *err_in);
/* Gradient of channel c: g[fan_in] (weight order of the channel), *gb. */
void tr_f_param_grad(const tr_layer *L, const float *in, const float *err, uint32_t c, float *g,
                     float *gb);
void tr_f_relu_mask(const float *out, float *err, uint32_t n);

/* Layers without parameters. */
void tr_f_relu_forward(const tr_layer *L, const float *in, float *out);
void tr_f_maxpool_forward(const tr_layer *L, const float *in, float *out);
void tr_f_avgpool_forward(const tr_layer *L, const float *in, float *out);
void tr_f_gap_forward(const tr_layer *L, const float *in, float *out);
void tr_f_relu_backward(const tr_layer *L, const float *out, const float *err, float *err_in);
void tr_f_maxpool_backward(const tr_layer *L, const float *in, const float *err, float *err_in);
void tr_f_avgpool_backward(const tr_layer *L, const float *err, float *err_in);
void tr_f_gap_backward(const tr_layer *L, const float *err, float *err_in);

/* Softmax + cross-entropy: returns the loss, writes p - onehot to err (n). */
float tr_f_softmax_ce(const float *logits, uint32_t n, uint32_t label, uint32_t *pred, float *err);

#endif
