/* Zoo definitions and the seeded weight initialisation. */
#include "model/tr_zoo.h"

#include <string.h>
#include "quant/tr_quant.h"

static const tr_zoo_entry ZOO[] = {
    { "cnn", "conv3x3(8)+relu, maxpool2, conv3x3(16)+relu, maxpool2, dense(32)+relu, dense(classes), softmax",
      { 28, 28, 1 }, 10 },
    { "mlp", "dense(64)+relu, dense(classes), softmax", { 28, 28, 1 }, 10 },
    { "dscnn", "conv3x3/2(8)+relu, dwconv3x3+relu, conv1x1(16)+relu, global avgpool, dense(classes), softmax",
      { 28, 28, 1 }, 10 },
};

uint32_t tr_zoo_count(void)
{
    return (uint32_t)(sizeof ZOO / sizeof ZOO[0]);
}

const tr_zoo_entry *tr_zoo_at(uint32_t i)
{
    return i < tr_zoo_count() ? &ZOO[i] : NULL;
}

const tr_zoo_entry *tr_zoo_find(const char *name)
{
    for (uint32_t i = 0; name != NULL && i < tr_zoo_count(); i++) {
        if (strcmp(ZOO[i].name, name) == 0) {
            return &ZOO[i];
        }
    }
    return NULL;
}

static tr_layer *add(tr_model_desc *m, uint8_t kind)
{
    tr_layer *L = &m->layers[m->n_layers++];
    memset(L, 0, sizeof *L);
    L->kind = kind;
    return L;
}

static void conv(tr_model_desc *m, uint16_t units, uint16_t k, uint16_t stride, uint16_t pad)
{
    tr_layer *L = add(m, TR_LAYER_CONV2D);
    L->units = units;
    L->kh = k;
    L->kw = k;
    L->stride = stride;
    L->pad = pad;
    L->act = TR_ACT_RELU;
}

static void dense(tr_model_desc *m, uint16_t units, uint8_t act)
{
    tr_layer *L = add(m, TR_LAYER_DENSE);
    L->units = units;
    L->act = act;
}

tr_status tr_zoo_desc(const char *name, tr_shape input, uint32_t classes, tr_model_desc *m)
{
    if (m == NULL || tr_zoo_find(name) == NULL) {
        return TR_ERR_ARG;
    }
    if (classes < 2 || classes > 65535u) {
        return TR_ERR_SHAPE;
    }
    memset(m, 0, sizeof *m);
    m->input = input;
    m->classes = classes;
    if (strcmp(name, "cnn") == 0) {
        uint32_t h = input.h, w = input.w;
        conv(m, 8, 3, 1, 1);
        if (h >= 2 && w >= 2) {
            tr_layer *P = add(m, TR_LAYER_MAXPOOL);
            P->kh = 2;
            P->stride = 2;
            h /= 2;
            w /= 2;
        }
        conv(m, 16, 3, 1, 1);
        if (h >= 2 && w >= 2) {
            tr_layer *P = add(m, TR_LAYER_MAXPOOL);
            P->kh = 2;
            P->stride = 2;
        }
        add(m, TR_LAYER_FLATTEN);
        dense(m, 32, TR_ACT_RELU);
        dense(m, (uint16_t)classes, TR_ACT_NONE);
    } else if (strcmp(name, "mlp") == 0) {
        add(m, TR_LAYER_FLATTEN);
        dense(m, 64, TR_ACT_RELU);
        dense(m, (uint16_t)classes, TR_ACT_NONE);
    } else {
        tr_layer *L;
        conv(m, 8, 3, (input.h >= 3 && input.w >= 3) ? 2 : 1, 1);
        L = add(m, TR_LAYER_DWCONV2D);
        L->kh = 3;
        L->kw = 3;
        L->stride = 1;
        L->pad = 1;
        L->act = TR_ACT_RELU;
        conv(m, 16, 1, 1, 0);
        add(m, TR_LAYER_GAP);
        dense(m, (uint16_t)classes, TR_ACT_NONE);
    }
    add(m, TR_LAYER_SOFTMAX);
    return TR_OK;
}

static void put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static void put_f32(uint8_t *p, float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    put_u32(p, u);
}

tr_status tr_model_init_weights(const tr_model_desc *m, uint32_t seed, uint8_t *blob, size_t len)
{
    uint32_t rng = tr_rng_seed(seed);
    if (m == NULL || blob == NULL || len != m->weights_bytes) {
        return TR_ERR_ARG;
    }
    memset(blob, 0, len);
    put_u32(blob, TR_WEIGHTS_MAGIC);
    put_u32(blob + 4, m->weights_bytes);
    put_u32(blob + 8, tr_model_param_layers(m));
    for (uint32_t i = 0; i < m->n_layers; i++) {
        const tr_layer *L = &m->layers[i];
        float bound, scale;
        int8_t *w;
        if (!tr_layer_has_params(L)) {
            continue;
        }
        bound = tr_sqrt_f32(((L->act == TR_ACT_RELU) ? 6.0f : 3.0f) / (float)L->fan_in);
        scale = bound / 127.0f;
        put_f32(blob + L->p_off, (L->act == TR_ACT_RELU) ? 0.0f : -4.0f);
        put_f32(blob + L->p_off + 4, 4.0f);
        for (uint32_t c = 0; c < L->channels; c++) {
            put_f32(blob + L->s_off + 4u * c, scale);
        }
        w = (int8_t *)(blob + L->w_off);
        for (uint32_t k = 0; k < L->channels * L->fan_in; k++) {
            w[k] = (int8_t)((int32_t)(tr_rng_next(&rng) % 255u) - 127);
        }
    }
    return TR_OK;
}
