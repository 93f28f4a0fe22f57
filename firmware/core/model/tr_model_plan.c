/* Resolves shapes, checks every size for overflow, lays out the weights blob
 * and plans the arena. Runs once at load; the training step trusts its result. */
#include "model/tr_model.h"

#include <string.h>
#include "quant/tr_quant.h"

#define ALIGN8(x) (((x) + 7u) & ~7u)
#define ALIGN4(x) (((x) + 3u) & ~3u)

int tr_layer_has_params(const tr_layer *L)
{
    return L->kind == TR_LAYER_CONV2D || L->kind == TR_LAYER_DWCONV2D ||
           L->kind == TR_LAYER_DENSE;
}

uint64_t tr_model_forward_macs(const tr_model_desc *m)
{
    uint64_t macs = 0;
    for (uint32_t i = 0; i < m->n_layers; i++) {
        const tr_layer *L = &m->layers[i];
        uint64_t per_channel = (L->kind == TR_LAYER_DWCONV2D) ? (uint64_t)L->kh * L->kw : L->fan_in;
        if (tr_layer_has_params(L)) {
            macs += (uint64_t)L->out.h * L->out.w * L->channels * per_channel;
        }
    }
    return macs;
}

uint32_t tr_model_param_layers(const tr_model_desc *m)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < m->n_layers; i++) {
        n += tr_layer_has_params(&m->layers[i]) ? 1u : 0u;
    }
    return n;
}

static int mul_ok(uint32_t a, uint32_t b, uint32_t limit, uint32_t *out)
{
    if (a != 0 && b > limit / a) {
        return 0;
    }
    *out = a * b;
    return 1;
}

static uint32_t elems(const tr_shape *s)
{
    return s->h * s->w * s->c; /* bounded by TR_MAX_ELEMS once checked */
}

static tr_status shape_ok(const tr_shape *s)
{
    uint32_t hw, n;
    if (s->h == 0 || s->w == 0 || s->c == 0) {
        return TR_ERR_SHAPE;
    }
    if (s->h > TR_MAX_DIM || s->w > TR_MAX_DIM || s->c > TR_MAX_DIM) {
        return TR_ERR_OVERFLOW;
    }
    if (!mul_ok(s->h, s->w, TR_MAX_ELEMS, &hw) || !mul_ok(hw, s->c, TR_MAX_ELEMS, &n)) {
        return TR_ERR_OVERFLOW;
    }
    return TR_OK;
}

/* Output size of a window op; 0 when the window does not fit. */
static uint32_t window_out(uint32_t in, uint32_t k, uint32_t stride, uint32_t pad)
{
    uint32_t span = in + 2u * pad;
    if (k == 0 || stride == 0 || span < k) {
        return 0;
    }
    return (span - k) / stride + 1u;
}

static uint32_t ceil_div(uint32_t a, uint32_t b)
{
    return (a + b - 1u) / b;
}

/* Bits of headroom for the scaled error a = (e - z) * 2^k of conv/dense backward:
 * 255 * 127 * 2^k * terms < 2^31 and 255 * 2^k <= 32767. */
static int err_shift_for(uint32_t terms, uint8_t *k)
{
    uint32_t budget = 2147483647u / (255u * 127u); /* 66311 */
    if (terms == 0 || terms > budget) {
        return 0;
    }
    uint32_t q = budget / terms;
    uint8_t s = 0;
    while (s < 7u && ((uint32_t)2u << s) <= q) {
        s++;
    }
    *k = s;
    return 1;
}

tr_status tr_model_resolve_layer(tr_layer *L, const tr_shape *in, int last, uint32_t classes)
{
    tr_status st;
    uint32_t t;
    L->in = *in;
    L->channels = 0;
    L->fan_in = 0;
    L->err_shift = 0;
    switch (L->kind) {
    case TR_LAYER_CONV2D:
    case TR_LAYER_DWCONV2D:
        if (L->kh == 0 || L->kw == 0 || L->stride == 0 || L->pad >= L->kh ||
            L->pad >= L->kw || L->kh > 255 || L->kw > 255 || L->stride > 255) {
            return TR_ERR_SHAPE;
        }
        L->out.h = window_out(in->h, L->kh, L->stride, L->pad);
        L->out.w = window_out(in->w, L->kw, L->stride, L->pad);
        if (L->out.h == 0 || L->out.w == 0) {
            return TR_ERR_SHAPE;
        }
        if (L->kind == TR_LAYER_CONV2D) {
            if (L->units == 0) {
                return TR_ERR_SHAPE;
            }
            L->out.c = L->units;
            if (!mul_ok((uint32_t)L->kh * L->kw, in->c, TR_MAX_FAN_IN, &L->fan_in)) {
                return TR_ERR_OVERFLOW;
            }
        } else {
            L->out.c = in->c;
            L->fan_in = (uint32_t)L->kh * L->kw;
        }
        L->channels = L->out.c;
        if (!mul_ok(L->out.h, L->out.w, TR_MAX_POSITIONS, &t)) {
            return TR_ERR_OVERFLOW;
        }
        {
            uint32_t taps = ceil_div(L->kh, L->stride) * ceil_div(L->kw, L->stride);
            uint32_t terms = (L->kind == TR_LAYER_CONV2D) ? taps * L->channels : taps;
            if (!err_shift_for(terms, &L->err_shift)) {
                return TR_ERR_OVERFLOW;
            }
        }
        if (L->act > TR_ACT_RELU || L->wq > TR_WQ_PER_TENSOR) {
            return TR_ERR_FORMAT;
        }
        break;
    case TR_LAYER_DENSE:
        if (L->units == 0) {
            return TR_ERR_SHAPE;
        }
        L->fan_in = elems(in);
        if (L->fan_in > TR_MAX_FAN_IN) {
            return TR_ERR_OVERFLOW;
        }
        L->out.h = 1;
        L->out.w = 1;
        L->out.c = L->units;
        L->channels = L->units;
        if (!err_shift_for(L->channels, &L->err_shift)) {
            return TR_ERR_OVERFLOW;
        }
        if (L->act > TR_ACT_RELU || L->wq > TR_WQ_PER_TENSOR) {
            return TR_ERR_FORMAT;
        }
        break;
    case TR_LAYER_RELU:
        L->out = *in;
        break;
    case TR_LAYER_MAXPOOL:
    case TR_LAYER_AVGPOOL:
        if (L->kh == 0 || L->stride == 0 || L->kh > 255 || L->stride > 255) {
            return TR_ERR_SHAPE;
        }
        L->kw = L->kh;
        L->pad = 0;
        L->out.h = window_out(in->h, L->kh, L->stride, 0);
        L->out.w = window_out(in->w, L->kw, L->stride, 0);
        L->out.c = in->c;
        if (L->out.h == 0 || L->out.w == 0) {
            return TR_ERR_SHAPE;
        }
        break;
    case TR_LAYER_GAP:
        L->out.h = 1;
        L->out.w = 1;
        L->out.c = in->c;
        if ((uint64_t)in->h * in->w > 65535u) {
            return TR_ERR_OVERFLOW; /* the sum of a channel must fit 24 bits */
        }
        break;
    case TR_LAYER_FLATTEN:
        L->out.h = 1;
        L->out.w = 1;
        L->out.c = elems(in);
        if (L->out.c > TR_MAX_DIM) {
            return TR_ERR_OVERFLOW;
        }
        break;
    case TR_LAYER_SOFTMAX:
        if (!last) {
            return TR_ERR_FORMAT;
        }
        if (elems(in) != classes) {
            return TR_ERR_SHAPE;
        }
        L->out = *in;
        break;
    default:
        return TR_ERR_UNKNOWN_LAYER;
    }
    if (last && L->kind != TR_LAYER_SOFTMAX) {
        return TR_ERR_FORMAT;
    }
    st = shape_ok(&L->out);
    return st;
}

/* Adds n to *acc, failing on overflow past 2^31. */
static int add_ok(uint32_t *acc, uint32_t n)
{
    if (n > 0x7FFFFFFFu - *acc) {
        return 0;
    }
    *acc += n;
    return 1;
}

tr_status tr_model_plan(tr_model_desc *m, uint32_t state_bytes)
{
    tr_status st;
    tr_shape cur;
    uint32_t i;
    uint32_t wb = TR_WEIGHTS_HEADER;
    uint32_t opt = 0;
    uint32_t act = 0;
    uint32_t ping = 0;
    uint32_t err[2] = { 0, 0 };
    uint32_t acc = 0;
    uint32_t grad = 0;
    uint32_t maxch = 1;

    if (m->n_layers == 0 || m->n_layers > TR_MAX_LAYERS) {
        return TR_ERR_FORMAT;
    }
    if (m->classes < 2 || m->classes > 65535u) {
        return TR_ERR_SHAPE;
    }
    st = shape_ok(&m->input);
    if (st != TR_OK) {
        return st;
    }
    cur = m->input;
    act = ALIGN4(elems(&cur)); /* the input copy */
    ping = elems(&cur);
    for (i = 0; i < m->n_layers; i++) {
        tr_layer *L = &m->layers[i];
        uint32_t n_in = elems(&cur);
        uint32_t n_out;
        st = tr_model_resolve_layer(L, &cur, i + 1u == m->n_layers, m->classes);
        if (st != TR_OK) {
            return st;
        }
        n_out = elems(&L->out);
        if (tr_layer_has_params(L)) {
            uint32_t wbytes;
            if (!mul_ok(L->channels, L->fan_in, 0x7FFFFFFFu, &wbytes)) {
                return TR_ERR_OVERFLOW;
            }
            L->p_off = wb;
            if (!add_ok(&wb, 12u)) {
                return TR_ERR_OVERFLOW;
            }
            L->s_off = wb;
            if (!add_ok(&wb, 4u * L->channels)) {
                return TR_ERR_OVERFLOW;
            }
            L->b_off = wb;
            if (!add_ok(&wb, 4u * L->channels)) {
                return TR_ERR_OVERFLOW;
            }
            L->w_off = wb;
            if (!add_ok(&wb, wbytes) || !add_ok(&wb, 3u)) {
                return TR_ERR_OVERFLOW;
            }
            wb &= ~3u;
            L->opt_off = opt;
            if (!add_ok(&opt, 12u * L->channels)) {
                return TR_ERR_OVERFLOW;
            }
            if (L->channels > maxch) {
                maxch = L->channels;
            }
            if (L->fan_in > grad) {
                grad = L->fan_in;
            }
        }
        /* activation slot: flatten and softmax reuse their input's */
        if (L->kind == TR_LAYER_FLATTEN || L->kind == TR_LAYER_SOFTMAX) {
            L->act_off = (i == 0) ? 0u : m->layers[i - 1].act_off;
        } else {
            L->act_off = act;
            if (!add_ok(&act, ALIGN4(n_out))) {
                return TR_ERR_OVERFLOW;
            }
        }
        if (n_out > ping) {
            ping = n_out;
        }
        /* the error of this layer's output (not needed for the softmax) */
        if (L->kind != TR_LAYER_SOFTMAX && n_out > err[i & 1u]) {
            err[i & 1u] = n_out;
        }
        /* int32 accumulators for the error of this layer's input */
        if (i > 0 && (tr_layer_has_params(L) ||
                      ((L->kind == TR_LAYER_MAXPOOL || L->kind == TR_LAYER_AVGPOOL) &&
                       L->stride < L->kh))) {
            if (n_in > acc) {
                acc = n_in;
            }
        }
        cur = L->out;
    }
    m->weights_bytes = wb;
    m->max_channels = maxch;
    {
        uint32_t off = ALIGN8(state_bytes);
        m->off_weights = off;
        if (!add_ok(&off, ALIGN8(wb))) {
            return TR_ERR_OVERFLOW;
        }
        m->off_opt = off;
        if (!add_ok(&off, ALIGN8(opt))) {
            return TR_ERR_OVERFLOW;
        }
        m->off_chan = off;
        if (!add_ok(&off, ALIGN8(24u * maxch))) {
            return TR_ERR_OVERFLOW;
        }
        m->off_act = off;
        m->infer_ping = ALIGN8(ping);
        m->act_region = ALIGN8(act);
        if (m->act_region < 2u * m->infer_ping) {
            m->act_region = 2u * m->infer_ping;
        }
        m->infer_bytes = off + 2u * m->infer_ping;
        if (!add_ok(&off, m->act_region)) {
            return TR_ERR_OVERFLOW;
        }
        m->off_err0 = off;
        if (!add_ok(&off, ALIGN8(err[0]))) {
            return TR_ERR_OVERFLOW;
        }
        m->off_err1 = off;
        if (!add_ok(&off, ALIGN8(err[1]))) {
            return TR_ERR_OVERFLOW;
        }
        m->off_acc = off;
        if (!add_ok(&off, ALIGN8(4u * acc))) {
            return TR_ERR_OVERFLOW;
        }
        m->off_grad = off;
        if (!add_ok(&off, ALIGN8(4u * grad))) {
            return TR_ERR_OVERFLOW;
        }
        m->train_bytes = off;
    }
    return TR_OK;
}

static float rd_f32(const uint8_t *p)
{
    uint32_t u = (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
                 ((uint32_t)p[3] << 24);
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static uint32_t rd_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
           ((uint32_t)p[3] << 24);
}

tr_status tr_model_check_weights(const tr_model_desc *m, const uint8_t *blob, size_t len)
{
    if (blob == NULL || len != m->weights_bytes) {
        return TR_ERR_SHAPE;
    }
    if (rd_u32(blob) != TR_WEIGHTS_MAGIC || rd_u32(blob + 4) != m->weights_bytes ||
        rd_u32(blob + 8) != tr_model_param_layers(m) || rd_u32(blob + 12) != 0) {
        return TR_ERR_FORMAT;
    }
    for (uint32_t i = 0; i < m->n_layers; i++) {
        const tr_layer *L = &m->layers[i];
        if (!tr_layer_has_params(L)) {
            continue;
        }
        float mn = rd_f32(blob + L->p_off);
        float mx = rd_f32(blob + L->p_off + 4);
        if (!tr_isfinite_f32(mn) || !tr_isfinite_f32(mx) || mn > 0.0f || mx < 0.0f ||
            !(mx - mn > 1e-20f) || mx - mn > 1e12f) {
            return TR_ERR_QUANT;
        }
        for (uint32_t c = 0; c < L->channels; c++) {
            float s = rd_f32(blob + L->s_off + 4u * c);
            if (!tr_isfinite_f32(s) || !(s > 1e-20f) || s > 1e12f) {
                return TR_ERR_QUANT;
            }
            if (L->wq == TR_WQ_PER_TENSOR && c > 0 && rd_u32(blob + L->s_off + 4u * c) !=
                                                      rd_u32(blob + L->s_off)) {
                return TR_ERR_QUANT;
            }
        }
        {
            const int8_t *w = (const int8_t *)(blob + L->w_off);
            uint32_t n = L->channels * L->fan_in;
            for (uint32_t k = 0; k < n; k++) {
                if (w[k] == -128) {
                    return TR_ERR_QUANT; /* weights are symmetric: -127..127 */
                }
            }
        }
    }
    return TR_OK;
}
