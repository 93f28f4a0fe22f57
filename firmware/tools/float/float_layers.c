/* Float32 reference layers (see float_layers.h). */
#include "float_layers.h"

#include <string.h>
#include "quant/tr_quant.h"

static int in_range(int32_t v, uint32_t n)
{
    return v >= 0 && v < (int32_t)n;
}

/* Index of weight (c, ky, kx, ci) in the layer's layout. */
static uint32_t widx(const tr_layer *L, uint32_t c, uint32_t ky, uint32_t kx, uint32_t ci)
{
    if (L->kind == TR_LAYER_DWCONV2D) {
        return (ky * L->kw + kx) * L->channels + c;
    }
    return c * L->fan_in + (ky * L->kw + kx) * L->in.c + ci;
}

void tr_f_param_forward(const tr_layer *L, const float *in, const float *w, const float *b,
                        float *out)
{
    if (L->kind == TR_LAYER_DENSE) {
        for (uint32_t c = 0; c < L->channels; c++) {
            float s = b[c];
            for (uint32_t j = 0; j < L->fan_in; j++) {
                s += w[c * L->fan_in + j] * in[j];
            }
            out[c] = (L->act == TR_ACT_RELU && s < 0.0f) ? 0.0f : s;
        }
        return;
    }
    for (uint32_t oy = 0; oy < L->out.h; oy++) {
        for (uint32_t ox = 0; ox < L->out.w; ox++) {
            for (uint32_t c = 0; c < L->channels; c++) {
                float s = b[c];
                for (uint32_t ky = 0; ky < L->kh; ky++) {
                    int32_t iy = (int32_t)(oy * L->stride + ky) - (int32_t)L->pad;
                    if (!in_range(iy, L->in.h)) {
                        continue;
                    }
                    for (uint32_t kx = 0; kx < L->kw; kx++) {
                        int32_t ix = (int32_t)(ox * L->stride + kx) - (int32_t)L->pad;
                        if (!in_range(ix, L->in.w)) {
                            continue;
                        }
                        const float *x = in + ((uint32_t)iy * L->in.w + (uint32_t)ix) * L->in.c;
                        if (L->kind == TR_LAYER_DWCONV2D) {
                            s += w[widx(L, c, ky, kx, 0)] * x[c];
                        } else {
                            for (uint32_t ci = 0; ci < L->in.c; ci++) {
                                s += w[widx(L, c, ky, kx, ci)] * x[ci];
                            }
                        }
                    }
                }
                out[(oy * L->out.w + ox) * L->channels + c] =
                    (L->act == TR_ACT_RELU && s < 0.0f) ? 0.0f : s;
            }
        }
    }
}

void tr_f_relu_mask(const float *out, float *err, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        if (out[i] <= 0.0f) {
            err[i] = 0.0f;
        }
    }
}

void tr_f_param_backward(const tr_layer *L, const float *w, const float *err, const uint8_t *sel,
                         float *err_in)
{
    memset(err_in, 0, sizeof(float) * L->in.h * L->in.w * L->in.c);
    if (L->kind == TR_LAYER_DENSE) {
        for (uint32_t c = 0; c < L->channels; c++) {
            if (sel != NULL && !sel[c]) {
                continue;
            }
            for (uint32_t j = 0; j < L->fan_in; j++) {
                err_in[j] += w[c * L->fan_in + j] * err[c];
            }
        }
        return;
    }
    for (uint32_t oy = 0; oy < L->out.h; oy++) {
        for (uint32_t ox = 0; ox < L->out.w; ox++) {
            for (uint32_t c = 0; c < L->channels; c++) {
                float e = err[(oy * L->out.w + ox) * L->channels + c];
                if ((sel != NULL && !sel[c]) || e == 0.0f) {
                    continue;
                }
                for (uint32_t ky = 0; ky < L->kh; ky++) {
                    int32_t iy = (int32_t)(oy * L->stride + ky) - (int32_t)L->pad;
                    if (!in_range(iy, L->in.h)) {
                        continue;
                    }
                    for (uint32_t kx = 0; kx < L->kw; kx++) {
                        int32_t ix = (int32_t)(ox * L->stride + kx) - (int32_t)L->pad;
                        if (!in_range(ix, L->in.w)) {
                            continue;
                        }
                        float *xi = err_in + ((uint32_t)iy * L->in.w + (uint32_t)ix) * L->in.c;
                        if (L->kind == TR_LAYER_DWCONV2D) {
                            xi[c] += w[widx(L, c, ky, kx, 0)] * e;
                        } else {
                            for (uint32_t ci = 0; ci < L->in.c; ci++) {
                                xi[ci] += w[widx(L, c, ky, kx, ci)] * e;
                            }
                        }
                    }
                }
            }
        }
    }
}

void tr_f_param_grad(const tr_layer *L, const float *in, const float *err, uint32_t c, float *g,
                     float *gb)
{
    float bs = 0.0f;
    memset(g, 0, sizeof(float) * L->fan_in);
    if (L->kind == TR_LAYER_DENSE) {
        for (uint32_t j = 0; j < L->fan_in; j++) {
            g[j] = err[c] * in[j];
        }
        *gb = err[c];
        return;
    }
    for (uint32_t oy = 0; oy < L->out.h; oy++) {
        for (uint32_t ox = 0; ox < L->out.w; ox++) {
            float e = err[(oy * L->out.w + ox) * L->channels + c];
            if (e == 0.0f) {
                continue;
            }
            bs += e;
            for (uint32_t ky = 0; ky < L->kh; ky++) {
                int32_t iy = (int32_t)(oy * L->stride + ky) - (int32_t)L->pad;
                if (!in_range(iy, L->in.h)) {
                    continue;
                }
                for (uint32_t kx = 0; kx < L->kw; kx++) {
                    int32_t ix = (int32_t)(ox * L->stride + kx) - (int32_t)L->pad;
                    if (!in_range(ix, L->in.w)) {
                        continue;
                    }
                    const float *x = in + ((uint32_t)iy * L->in.w + (uint32_t)ix) * L->in.c;
                    if (L->kind == TR_LAYER_DWCONV2D) {
                        g[ky * L->kw + kx] += e * x[c];
                    } else {
                        for (uint32_t ci = 0; ci < L->in.c; ci++) {
                            g[(ky * L->kw + kx) * L->in.c + ci] += e * x[ci];
                        }
                    }
                }
            }
        }
    }
    *gb = bs;
}

void tr_f_relu_forward(const tr_layer *L, const float *in, float *out)
{
    uint32_t n = L->in.h * L->in.w * L->in.c;
    for (uint32_t i = 0; i < n; i++) {
        out[i] = in[i] > 0.0f ? in[i] : 0.0f;
    }
}

void tr_f_relu_backward(const tr_layer *L, const float *out, const float *err, float *err_in)
{
    uint32_t n = L->in.h * L->in.w * L->in.c;
    for (uint32_t i = 0; i < n; i++) {
        err_in[i] = out[i] > 0.0f ? err[i] : 0.0f;
    }
}

static uint32_t pool_idx(const tr_layer *L, uint32_t oy, uint32_t ox, uint32_t ky, uint32_t kx,
                         uint32_t c)
{
    return ((oy * L->stride + ky) * L->in.w + ox * L->stride + kx) * L->in.c + c;
}

void tr_f_maxpool_forward(const tr_layer *L, const float *in, float *out)
{
    for (uint32_t oy = 0; oy < L->out.h; oy++) {
        for (uint32_t ox = 0; ox < L->out.w; ox++) {
            for (uint32_t c = 0; c < L->in.c; c++) {
                float m = in[pool_idx(L, oy, ox, 0, 0, c)];
                for (uint32_t ky = 0; ky < L->kh; ky++) {
                    for (uint32_t kx = 0; kx < L->kw; kx++) {
                        float v = in[pool_idx(L, oy, ox, ky, kx, c)];
                        m = v > m ? v : m;
                    }
                }
                out[(oy * L->out.w + ox) * L->in.c + c] = m;
            }
        }
    }
}

void tr_f_maxpool_backward(const tr_layer *L, const float *in, const float *err, float *err_in)
{
    memset(err_in, 0, sizeof(float) * L->in.h * L->in.w * L->in.c);
    for (uint32_t oy = 0; oy < L->out.h; oy++) {
        for (uint32_t ox = 0; ox < L->out.w; ox++) {
            for (uint32_t c = 0; c < L->in.c; c++) {
                uint32_t best = pool_idx(L, oy, ox, 0, 0, c);
                for (uint32_t ky = 0; ky < L->kh; ky++) {
                    for (uint32_t kx = 0; kx < L->kw; kx++) {
                        uint32_t k = pool_idx(L, oy, ox, ky, kx, c);
                        if (in[k] > in[best]) {
                            best = k;
                        }
                    }
                }
                err_in[best] += err[(oy * L->out.w + ox) * L->in.c + c];
            }
        }
    }
}

void tr_f_avgpool_forward(const tr_layer *L, const float *in, float *out)
{
    float area = (float)(L->kh * L->kw);
    for (uint32_t oy = 0; oy < L->out.h; oy++) {
        for (uint32_t ox = 0; ox < L->out.w; ox++) {
            for (uint32_t c = 0; c < L->in.c; c++) {
                float s = 0.0f;
                for (uint32_t ky = 0; ky < L->kh; ky++) {
                    for (uint32_t kx = 0; kx < L->kw; kx++) {
                        s += in[pool_idx(L, oy, ox, ky, kx, c)];
                    }
                }
                out[(oy * L->out.w + ox) * L->in.c + c] = s / area;
            }
        }
    }
}

void tr_f_avgpool_backward(const tr_layer *L, const float *err, float *err_in)
{
    float area = (float)(L->kh * L->kw);
    memset(err_in, 0, sizeof(float) * L->in.h * L->in.w * L->in.c);
    for (uint32_t oy = 0; oy < L->out.h; oy++) {
        for (uint32_t ox = 0; ox < L->out.w; ox++) {
            for (uint32_t c = 0; c < L->in.c; c++) {
                for (uint32_t ky = 0; ky < L->kh; ky++) {
                    for (uint32_t kx = 0; kx < L->kw; kx++) {
                        err_in[pool_idx(L, oy, ox, ky, kx, c)] +=
                            err[(oy * L->out.w + ox) * L->in.c + c] / area;
                    }
                }
            }
        }
    }
}

void tr_f_gap_forward(const tr_layer *L, const float *in, float *out)
{
    uint32_t hw = L->in.h * L->in.w;
    for (uint32_t c = 0; c < L->in.c; c++) {
        float s = 0.0f;
        for (uint32_t p = 0; p < hw; p++) {
            s += in[p * L->in.c + c];
        }
        out[c] = s / (float)hw;
    }
}

void tr_f_gap_backward(const tr_layer *L, const float *err, float *err_in)
{
    uint32_t hw = L->in.h * L->in.w;
    for (uint32_t p = 0; p < hw; p++) {
        for (uint32_t c = 0; c < L->in.c; c++) {
            err_in[p * L->in.c + c] = err[c] / (float)hw;
        }
    }
}

float tr_f_softmax_ce(const float *logits, uint32_t n, uint32_t label, uint32_t *pred, float *err)
{
    uint32_t best = 0;
    float sum = 0.0f;
    for (uint32_t i = 1; i < n; i++) {
        if (logits[i] > logits[best]) {
            best = i;
        }
    }
    *pred = best;
    for (uint32_t i = 0; i < n; i++) {
        sum += tr_exp_neg_f32(logits[i] - logits[best]);
    }
    if (err != NULL) {
        for (uint32_t i = 0; i < n; i++) {
            float p = tr_exp_neg_f32(logits[i] - logits[best]) / sum;
            err[i] = (i == label) ? p - 1.0f : p;
        }
    }
    return tr_log_f32(sum) - (logits[label] - logits[best]);
}
