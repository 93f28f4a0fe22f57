/* Float32 twin trainer (see float_engine.h). */
#include "float_engine.h"

#include <stdlib.h>
#include <string.h>
#include "float_layers.h"
#include "quant/tr_quant.h"
#include "train/tr_optimizer.h"
#include "model_writer/trainer_model.h"

struct tr_float_engine {
    tr_model_desc m;
    float *w[TR_MAX_LAYERS];
    float *b[TR_MAX_LAYERS];
    float *mu[TR_MAX_LAYERS], *sigma[TR_MAX_LAYERS], *bmag[TR_MAX_LAYERS];
    float *act[TR_MAX_LAYERS + 1]; /* act[0] input, act[i+1] output of layer i */
    float *err_out, *err_in, *g;
    uint32_t *mag;
    uint8_t *sel;
    float *bsum;     /* bias gradients of a sparse step */
    float max_loss;
    uint32_t rng;    /* the sparse draw (the int8 engine's rule, own stream) */
};

static uint32_t elems(const tr_shape *s)
{
    return s->h * s->w * s->c;
}

static float rd_f32(const uint8_t *p)
{
    float f;
    memcpy(&f, p, 4);
    return f;
}

tr_float_engine *tr_float_create(const tr_model_desc *m, const uint8_t *weights, size_t len)
{
    tr_float_engine *fe = calloc(1, sizeof *fe);
    uint32_t maxe = elems(&m->input), maxf = 1, maxc = 1;
    if (fe == NULL || len != m->weights_bytes) {
        free(fe);
        return NULL;
    }
    fe->m = *m;
    fe->act[0] = calloc(elems(&m->input), sizeof(float));
    for (uint32_t i = 0; i < m->n_layers; i++) {
        const tr_layer *L = &m->layers[i];
        uint32_t n = elems(&L->out);
        fe->act[i + 1] = calloc(n, sizeof(float));
        maxe = n > maxe ? n : maxe;
        if (tr_layer_has_params(L)) {
            uint32_t nw = L->channels * L->fan_in;
            fe->w[i] = calloc(nw, sizeof(float));
            fe->b[i] = calloc(L->channels, sizeof(float));
            fe->mu[i] = calloc(L->channels, sizeof(float));
            fe->sigma[i] = calloc(L->channels, sizeof(float));
            fe->bmag[i] = calloc(L->channels, sizeof(float));
            for (uint32_t k = 0; k < nw; k++) {
                uint32_t c = (L->kind == TR_LAYER_DWCONV2D) ? k % L->channels : k / L->fan_in;
                float s = rd_f32(weights + L->s_off + 4u * c);
                fe->w[i][k] = s * (float)((const int8_t *)(weights + L->w_off))[k];
            }
            for (uint32_t c = 0; c < L->channels; c++) {
                int32_t bi;
                memcpy(&bi, weights + L->b_off + 4u * c, 4);
                fe->b[i][c] = (float)bi * 9.5367431640625e-07f;
            }
            maxf = L->fan_in > maxf ? L->fan_in : maxf;
            maxc = L->channels > maxc ? L->channels : maxc;
        }
    }
    fe->err_out = calloc(maxe, sizeof(float));
    fe->err_in = calloc(maxe, sizeof(float));
    fe->g = calloc(maxf, sizeof(float));
    fe->mag = calloc(maxc, sizeof(uint32_t));
    fe->sel = calloc(maxc, 1);
    fe->bsum = calloc(maxc, sizeof(float));
    fe->rng = tr_rng_seed(1);
    return fe;
}

void tr_float_destroy(tr_float_engine *fe)
{
    if (fe == NULL) {
        return;
    }
    for (uint32_t i = 0; i <= TR_MAX_LAYERS; i++) {
        free(fe->act[i]);
        if (i < TR_MAX_LAYERS) {
            free(fe->w[i]);
            free(fe->b[i]);
            free(fe->mu[i]);
            free(fe->sigma[i]);
            free(fe->bmag[i]);
        }
    }
    free(fe->err_out);
    free(fe->err_in);
    free(fe->g);
    free(fe->mag);
    free(fe->sel);
    free(fe->bsum);
    free(fe);
}

static const float *forward(tr_float_engine *fe, const uint8_t *sample)
{
    const tr_model_desc *m = &fe->m;
    for (uint32_t k = 0; k < elems(&m->input); k++) {
        fe->act[0][k] = (float)sample[k] / 255.0f;
    }
    for (uint32_t i = 0; i < m->n_layers; i++) {
        const tr_layer *L = &m->layers[i];
        const float *in = fe->act[i];
        float *out = fe->act[i + 1];
        switch (L->kind) {
        case TR_LAYER_CONV2D:
        case TR_LAYER_DWCONV2D:
        case TR_LAYER_DENSE:
            tr_f_param_forward(L, in, fe->w[i], fe->b[i], out);
            break;
        case TR_LAYER_RELU:
            tr_f_relu_forward(L, in, out);
            break;
        case TR_LAYER_MAXPOOL:
            tr_f_maxpool_forward(L, in, out);
            break;
        case TR_LAYER_AVGPOOL:
            tr_f_avgpool_forward(L, in, out);
            break;
        case TR_LAYER_GAP:
            tr_f_gap_forward(L, in, out);
            break;
        default: /* flatten, softmax: same values */
            memcpy(out, in, sizeof(float) * elems(&L->out));
            break;
        }
    }
    return fe->act[m->n_layers];
}

static void update_channel(const tr_train_params *p, float lr, float *w, uint32_t n,
                           uint32_t stride, const float *g, float *mu, float *sigma, int weights)
{
    uint32_t mode = (p->options & TR_TRAIN_QAS) ? TR_OPT_SGD_QAS
                    : (p->options & TR_TRAIN_SGD) ? TR_OPT_SGD
                                                  : TR_OPT_STANDARDIZED;
    if (!weights) {
        return;
    }
    if (mode != TR_OPT_STANDARDIZED) {
        for (uint32_t j = 0; j < n; j++) {
            w[j * stride] -= lr * g[j];
        }
        return;
    }
    {
        float s = 0.0f, sq = 0.0f, m, sd;
        for (uint32_t j = 0; j < n; j++) {
            s += g[j];
        }
        m = s / (float)n;
        for (uint32_t j = 0; j < n; j++) {
            sq += (g[j] - m) * (g[j] - m);
        }
        sd = tr_sqrt_f32(sq / (float)n);
        if (*sigma > 0.0f) {
            *mu = TR_OPT_GRAD_EMA * *mu + (1.0f - TR_OPT_GRAD_EMA) * m;
            *sigma = TR_OPT_GRAD_EMA * *sigma + (1.0f - TR_OPT_GRAD_EMA) * sd;
        } else {
            *mu = m;
            *sigma = sd;
        }
        if (!(*sigma > 1e-30f)) {
            return;
        }
        for (uint32_t j = 0; j < n; j++) {
            w[j * stride] -= lr * (g[j] - *mu) / *sigma;
        }
    }
}

static void update_bias(const tr_train_params *p, float lr, float *b, float gb, float *bmag)
{
    if (p->options & (TR_TRAIN_QAS | TR_TRAIN_SGD)) {
        *b -= lr * gb;
        return;
    }
    {
        float a = gb < 0.0f ? -gb : gb;
        *bmag = (*bmag > 0.0f) ? TR_OPT_GRAD_EMA * *bmag + (1.0f - TR_OPT_GRAD_EMA) * a : a;
        if (*bmag > 1e-30f) {
            *b -= lr * gb / *bmag;
        }
    }
}

static int trains(const tr_train_params *p, uint32_t i)
{
    return p->trainable == 0u || (p->trainable & (1u << i)) || (p->bias_only & (1u << i));
}

tr_status tr_float_train(tr_float_engine *fe, const uint8_t *sample, uint32_t label,
                         const tr_train_params *p, tr_step_result *r)
{
    const tr_model_desc *m = &fe->m;
    const uint32_t last = m->n_layers - 1u;
    const float *logits = forward(fe, sample);
    uint32_t pred, lowest = m->n_layers;
    float lr = (float)p->lr_ppm * 1e-6f;
    float loss = tr_f_softmax_ce(logits, m->classes, label, &pred, fe->err_out);
    float ratio;
    memset(r, 0, sizeof *r);
    if (loss > fe->max_loss) {
        fe->max_loss = loss;
    }
    ratio = fe->max_loss > 0.0f ? loss / fe->max_loss : 1.0f;
    for (uint32_t i = 0; i < last; i++) {
        if (tr_layer_has_params(&m->layers[i]) && trains(p, i)) {
            lowest = i;
            break;
        }
    }
    for (uint32_t i = last; lowest < last && i-- > lowest;) {
        const tr_layer *L = &m->layers[i];
        float *err = fe->err_out;
        int need_in = i > lowest;
        uint32_t n_out = elems(&L->out);
        if (tr_layer_has_params(L)) {
            int tr = trains(p, i);
            int bias_only = (p->bias_only & (1u << i)) != 0u;
            uint32_t C = L->channels, k = C, positions = L->out.h * L->out.w;
            if (L->act == TR_ACT_RELU) {
                tr_f_relu_mask(fe->act[i + 1], err, n_out);
            }
            int classifier = 1;
            for (uint32_t j = i + 1u; j < m->n_layers; j++) {
                classifier = classifier && !tr_layer_has_params(&m->layers[j]);
            }
            if (tr && p->lambda_min_ppm < 1000000u && !classifier) {
                k = tr_sparse_k(C, (float)p->lambda_min_ppm * 1e-6f,
                                (float)p->lambda_max_ppm * 1e-6f, ratio);
            }
            if (k < C) {
                /* the int8 engine's draw (tr_sparse_select_weighted): key =
                 * sum |e| x (1 + 8 random bits), the k largest keys; and the
                 * signed sums, the bias gradients of the channels left out */
                uint32_t bits = 0, left = 0;
                for (uint32_t c = 0; c < C; c++) {
                    float s = 0.0f, b = 0.0f;
                    for (uint32_t q = 0; q < positions; q++) {
                        float v = err[q * C + c];
                        s += v < 0.0f ? -v : v;
                        b += v;
                    }
                    if (left == 0) {
                        bits = tr_rng_next(&fe->rng);
                        left = 4;
                    }
                    s *= (float)((bits & 0xFFu) + 1u);
                    bits >>= 8;
                    left--;
                    fe->bsum[c] = b;
                    memcpy(&fe->mag[c], &s, 4); /* non-negative floats order like their bits */
                }
                tr_sparse_select(fe->mag, C, k, fe->sel);
            } else {
                memset(fe->sel, 1, C);
            }
            if (need_in) {
                tr_f_param_backward(L, fe->w[i], err, tr ? fe->sel : NULL, fe->err_in);
            }
            if (tr) {
                r->channels_total += C;
                for (uint32_t c = 0; c < C; c++) {
                    float gb;
                    if (!fe->sel[c]) {
                        update_bias(p, lr, &fe->b[i][c], fe->bsum[c], &fe->bmag[i][c]);
                        continue;
                    }
                    tr_f_param_grad(L, fe->act[i], err, c, fe->g, &gb);
                    if (L->kind == TR_LAYER_DWCONV2D) {
                        update_channel(p, lr, fe->w[i] + c, L->fan_in, C, fe->g, &fe->mu[i][c],
                                       &fe->sigma[i][c], !bias_only);
                    } else {
                        update_channel(p, lr, fe->w[i] + c * L->fan_in, L->fan_in, 1u, fe->g,
                                       &fe->mu[i][c], &fe->sigma[i][c], !bias_only);
                    }
                    update_bias(p, lr, &fe->b[i][c], gb, &fe->bmag[i][c]);
                    r->channels_updated++;
                }
            }
        } else if (!need_in) {
            break;
        } else if (L->kind == TR_LAYER_RELU) {
            tr_f_relu_backward(L, fe->act[i + 1], err, fe->err_in);
        } else if (L->kind == TR_LAYER_MAXPOOL) {
            tr_f_maxpool_backward(L, fe->act[i], err, fe->err_in);
        } else if (L->kind == TR_LAYER_AVGPOOL) {
            tr_f_avgpool_backward(L, err, fe->err_in);
        } else if (L->kind == TR_LAYER_GAP) {
            tr_f_gap_backward(L, err, fe->err_in);
        } else {
            memcpy(fe->err_in, err, sizeof(float) * elems(&L->in));
        }
        if (need_in) {
            float *t = fe->err_out;
            fe->err_out = fe->err_in;
            fe->err_in = t;
        }
    }
    r->loss_ppm = (uint32_t)(loss * 1e6f);
    r->predicted = pred;
    r->correct = pred == label;
    return TR_OK;
}

tr_status tr_float_infer(tr_float_engine *fe, const uint8_t *sample, uint32_t label,
                         tr_step_result *r)
{
    const float *logits = forward(fe, sample);
    uint32_t pred;
    float loss = tr_f_softmax_ce(logits, fe->m.classes, label < fe->m.classes ? label : 0, &pred,
                                 NULL);
    memset(r, 0, sizeof *r);
    r->loss_ppm = (uint32_t)(loss * 1e6f);
    r->predicted = pred;
    r->correct = pred == label;
    return TR_OK;
}

void tr_float_digest(const tr_float_engine *fe, char hex[65])
{
    size_t total = 0, off = 0;
    uint8_t *buf;
    for (uint32_t i = 0; i < fe->m.n_layers; i++) {
        const tr_layer *L = &fe->m.layers[i];
        if (tr_layer_has_params(L)) {
            total += sizeof(float) * ((size_t)L->channels * L->fan_in + L->channels);
        }
    }
    buf = malloc(total + 1u);
    if (buf == NULL) {
        hex[0] = 0;
        return;
    }
    for (uint32_t i = 0; i < fe->m.n_layers; i++) {
        const tr_layer *L = &fe->m.layers[i];
        if (tr_layer_has_params(L)) {
            size_t nw = sizeof(float) * (size_t)L->channels * L->fan_in;
            memcpy(buf + off, fe->w[i], nw);
            off += nw;
            memcpy(buf + off, fe->b[i], sizeof(float) * L->channels);
            off += sizeof(float) * L->channels;
        }
    }
    tr_trainer_sha256_hex(buf, total, hex);
    free(buf);
}
