/* The training engine: forward, backward and in-place update of one sample,
 * everything inside the caller's arena (plan in model/tr_model_plan.c). */
#include "engine/tr_engine.h"

#include <string.h>
#include "engine/tr_engine_desc.h"
#include "engine/tr_layers.h"
#include "model/tr_model_cbor.h"
#include "kernels/tr_kernels.h"
#include "quant/tr_quant.h"
#include "train/tr_optimizer.h"

#define ENGINE_MAGIC 0x454E5254u  /* "TRNE" */
#ifndef TR_RANGE_EMA
#define TR_RANGE_EMA 0.05f        /* activation range EMA weight of a new sample */
#endif
#define RANGE_EMA TR_RANGE_EMA
#ifndef TR_RANGE_HEADROOM
#define TR_RANGE_HEADROOM 1.5f   /* quantized output range = tracked range x this:
                                    fewer clamped activations (+0.8 points) */
#endif

struct tr_engine {
    uint32_t magic;
    uint32_t seed;
    uint32_t rng;
    uint32_t steps;
    float max_loss;
    uint8_t *arena;
    size_t arena_bytes;
    size_t peak;
    tr_model_desc m;
    tr_qparam qact[TR_MAX_LAYERS];  /* output quantization of the last forward */
    tr_obs obs[TR_MAX_LAYERS];      /* observed output range of the last forward */
};

static const tr_qparam INPUT_Q = { 1.0f / 255.0f, 0 }; /* real input = byte / 255 */

uint32_t tr_engine_state_bytes(void)
{
    return (uint32_t)sizeof(struct tr_engine);
}

static int little_endian(void)
{
    const uint16_t one = 1;
    return *(const uint8_t *)&one == 1;
}

static void fill_info(const tr_model_desc *m, tr_model_info *info)
{
    if (info == NULL) {
        return;
    }
    info->input_bytes = m->input.h * m->input.w * m->input.c;
    info->classes = m->classes;
    info->layers = m->n_layers;
    info->weights_bytes = m->weights_bytes;
    info->infer_bytes = m->infer_bytes;
    info->train_bytes = m->train_bytes;
    info->forward_macs = tr_model_forward_macs(m);
    info->param_layers = 0u;
    for (uint32_t i = 0; i < m->n_layers && i < 32u; i++) {
        if (tr_layer_has_params(&m->layers[i])) {
            info->param_layers |= 1u << i;
        }
    }
}

tr_status tr_engine_check_desc(tr_model_desc *m, const uint8_t *weights, size_t wlen,
                               size_t arena_bytes, tr_model_info *info)
{
    tr_status st;
    if (m == NULL) {
        return TR_ERR_ARG;
    }
    if (!little_endian()) {
        return TR_ERR_UNSUPPORTED;
    }
    st = tr_model_plan(m, tr_engine_state_bytes());
    if (st != TR_OK) {
        return st;
    }
    fill_info(m, info);
    if (weights == NULL || wlen < TR_WEIGHTS_HEADER) {
        return TR_ERR_TRUNCATED;
    }
    st = tr_model_check_weights(m, weights, wlen);
    if (st != TR_OK) {
        return st;
    }
    if (m->train_bytes > arena_bytes) {
        return TR_ERR_NOMEM;
    }
    return TR_OK;
}

tr_status tr_engine_load_desc(tr_engine **out, const tr_model_desc *m, const uint8_t *weights,
                              size_t wlen, uint32_t seed, uint8_t *arena, size_t arena_bytes,
                              tr_model_info *info)
{
    tr_engine *e;
    tr_status st;
    if (out == NULL || m == NULL || arena == NULL) {
        return TR_ERR_ARG;
    }
    *out = NULL;
    if (((uintptr_t)arena & 7u) != 0) {
        return TR_ERR_ARG; /* the plan assumes an 8-byte aligned arena */
    }
    if (arena_bytes < sizeof(struct tr_engine)) {
        tr_model_desc tmp = *m;
        st = tr_engine_check_desc(&tmp, weights, wlen, arena_bytes, info);
        return st == TR_OK ? TR_ERR_NOMEM : st;
    }
    e = (tr_engine *)(void *)arena;
    memset(e, 0, sizeof *e);
    e->m = *m;
    st = tr_engine_check_desc(&e->m, weights, wlen, arena_bytes, info);
    if (st != TR_OK) {
        memset(e, 0, sizeof *e);
        return st;
    }
    e->magic = ENGINE_MAGIC;
    e->seed = seed;
    e->rng = tr_rng_seed(seed);
    e->arena = arena;
    e->arena_bytes = arena_bytes;
    memcpy(arena + e->m.off_weights, weights, wlen);
    memset(arena + e->m.off_opt, 0, e->m.off_chan - e->m.off_opt);
    e->peak = e->m.off_chan;
    *out = e;
    return TR_OK;
}

const tr_model_desc *tr_engine_desc(const tr_engine *e)
{
    return &e->m;
}

uint32_t tr_engine_steps(const tr_engine *e)
{
    return e->steps;
}

static void touch(tr_engine *e, const void *p, size_t bytes)
{
    size_t end = (size_t)((const uint8_t *)p - e->arena) + bytes;
    if (end > e->peak) {
        e->peak = end;
    }
}

static tr_lparams layer_params(const tr_engine *e, const tr_layer *L)
{
    tr_lparams P;
    uint8_t *wb = e->arena + e->m.off_weights;
    P.range = (float *)(void *)(wb + L->p_off);
    P.seen = (uint32_t *)(void *)(wb + L->p_off + 8u);
    P.scale = (float *)(void *)(wb + L->s_off);
    P.bias = (int32_t *)(void *)(wb + L->b_off);
    P.w = (int8_t *)(wb + L->w_off);
    return P;
}

static uint32_t n_elems(const tr_shape *s)
{
    return s->h * s->w * s->c;
}

static tr_qparam out_qparam(const tr_layer *L, const tr_lparams *P)
{
    float mn = (L->act == TR_ACT_RELU) ? 0.0f : P->range[0];
    return tr_qparam_from_range(mn * TR_RANGE_HEADROOM, P->range[1] * TR_RANGE_HEADROOM);
}

/* Forward pass. train: every output kept in its own slot (for backward) and
 * ranges observed; otherwise two ping-pong buffers. Returns the logits. */
static tr_status forward(tr_engine *e, const uint8_t *sample, int train, const uint8_t **logits,
                         tr_qparam *ql)
{
    const tr_model_desc *m = &e->m;
    uint8_t *act = e->arena + m->off_act;
    uint8_t *ping[2];
    int32_t *chan = (int32_t *)(void *)(e->arena + m->off_chan);
    const uint8_t *cur = act;
    tr_qparam q = INPUT_Q;
    uint32_t side = 0;
    ping[0] = act;
    ping[1] = act + m->infer_ping;
    memcpy(act, sample, n_elems(&m->input));
    touch(e, act, n_elems(&m->input));
    for (uint32_t i = 0; i < m->n_layers; i++) {
        const tr_layer *L = &m->layers[i];
        uint8_t *out = train ? act + L->act_off : ping[side ^ 1u];
        tr_status st = TR_OK;
        tr_qparam qo = q;
        if (L->kind == TR_LAYER_SOFTMAX) {
            *logits = cur;
            *ql = q;
            e->qact[i] = q;
            return TR_OK;
        }
        if (L->kind == TR_LAYER_FLATTEN) {
            e->qact[i] = q;
            continue; /* HWC is already flat */
        }
        if (tr_layer_has_params(L)) {
            tr_lparams P = layer_params(e, L);
            tr_obs *obs = train ? &e->obs[i] : NULL;
            qo = out_qparam(L, &P);
            touch(e, chan, 4u * TR_CHAN_SCRATCH_WORDS * L->channels);
            if (L->kind == TR_LAYER_CONV2D) {
                st = tr_conv2d_forward(L, &P, cur, q, out, qo, chan, obs);
            } else if (L->kind == TR_LAYER_DENSE) {
                st = tr_dense_forward(L, &P, cur, q, out, qo, chan, obs);
            } else {
                st = tr_dwconv2d_forward(L, &P, cur, q, out, qo, chan, obs);
            }
        } else if (L->kind == TR_LAYER_RELU) {
            st = tr_relu_forward(L, cur, q, out);
        } else if (L->kind == TR_LAYER_MAXPOOL) {
            st = tr_maxpool_forward(L, cur, out);
        } else if (L->kind == TR_LAYER_AVGPOOL) {
            st = tr_avgpool_forward(L, cur, out);
        } else if (L->kind == TR_LAYER_GAP) {
            st = tr_gap_forward(L, cur, out);
        } else {
            return TR_ERR_UNKNOWN_LAYER;
        }
        if (st != TR_OK) {
            return st;
        }
        touch(e, out, n_elems(&L->out));
        e->qact[i] = qo;
        q = qo;
        cur = out;
        side ^= 1u;
    }
    return TR_ERR_STATE; /* plan guarantees a final softmax */
}

static int layer_trains(const tr_train_params *p, uint32_t i)
{
    uint32_t bit = (i < 32u) ? (1u << i) : 0u;
    return p->trainable == 0u || (p->trainable & bit) != 0u || (p->bias_only & bit) != 0u;
}

static int layer_bias_only(const tr_train_params *p, uint32_t i)
{
    return (i < 32u) && (p->bias_only & (1u << i)) != 0u;
}

static void update_ranges(tr_engine *e)
{
    for (uint32_t i = 0; i < e->m.n_layers; i++) {
        const tr_layer *L = &e->m.layers[i];
        tr_lparams P;
        float mn, mx;
        if (!tr_layer_has_params(L)) {
            continue;
        }
        P = layer_params(e, L);
        mn = (L->act == TR_ACT_RELU) ? 0.0f : e->obs[i].mn;
        mx = e->obs[i].mx;
        if (mx - mn < 1e-6f) {
            mx = mn + 1e-6f;
        }
        if (*P.seen == 0u) {
            P.range[0] = mn;
            P.range[1] = mx;
            *P.seen = 1u;
        } else {
            P.range[0] = P.range[0] + RANGE_EMA * (mn - P.range[0]);
            P.range[1] = P.range[1] + RANGE_EMA * (mx - P.range[1]);
        }
    }
}

/* 1 when no parametric layer follows layer i. */
static int is_classifier(const tr_model_desc *m, uint32_t i)
{
    for (uint32_t j = i + 1u; j < m->n_layers; j++) {
        if (tr_layer_has_params(&m->layers[j])) {
            return 0;
        }
    }
    return 1;
}

/* Backward of one parametric layer; e_in may be NULL (no error needed below). */
static tr_status backward_param(tr_engine *e, uint32_t i, const tr_train_params *p,
                                const tr_opt *opt, float loss_ratio, uint8_t *err, tr_qparam qe,
                                uint8_t *e_in, tr_qparam *qe_in, tr_step_result *r)
{
    const tr_model_desc *m = &e->m;
    const tr_layer *L = &m->layers[i];
    tr_lparams P = layer_params(e, L);
    uint8_t *act = e->arena + m->off_act;
    const uint8_t *x = (i == 0) ? act : act + m->layers[i - 1].act_off;
    tr_qparam qx = (i == 0) ? INPUT_Q : e->qact[i - 1];
    uint32_t C = L->channels;
    uint32_t positions = L->out.h * L->out.w;
    int32_t *chan = (int32_t *)(void *)(e->arena + m->off_chan);
    int32_t *ratio = chan;
    uint32_t *mag = (uint32_t *)(chan + C);
    uint8_t *sel = (uint8_t *)(chan + 2u * C);
    int32_t *bsum = chan + 3u * C;   /* bias gradients of a sparse step */
    int32_t *acc = (int32_t *)(void *)(e->arena + m->off_acc);
    int32_t *g = (int32_t *)(void *)(e->arena + m->off_grad);
    tr_chan_state *cs = (tr_chan_state *)(void *)(e->arena + m->off_opt + L->opt_off);
    int trains = layer_trains(p, i);
    int bias_only = layer_bias_only(p, i);
    uint32_t k = C;
    tr_status st = TR_OK;

    touch(e, chan, 16u * C);
    /* The classifier (last parametric layer) always updates densely: with
     * only its top-k logits pushed, the others never learn to fall. */
    if (trains && p->lambda_min_ppm < 1000000u && !is_classifier(m, i)) {
        k = tr_sparse_k(C, (float)p->lambda_min_ppm * 1e-6f, (float)p->lambda_max_ppm * 1e-6f,
                        loss_ratio);
    }
    if (k < C) {
        /* the same pass sums each channel's bias gradient: a skipped channel
         * still learns its bias, for one add per error element */
        if (L->act == TR_ACT_RELU) {
            tr_mask_magnitude(act + L->act_off, e->qact[i], err, qe, positions, C, mag, bsum);
        } else {
            tr_error_magnitude(err, qe, positions, C, mag, bsum);
        }
        tr_sparse_select_weighted(mag, C, k, &e->rng, sel);
    } else {
        if (L->act == TR_ACT_RELU) {
            tr_clamp_mask_error(act + L->act_off, e->qact[i], 1, err, qe, positions * C);
        }
        memset(sel, 1, C);
    }
    if (e_in != NULL) {
        float unit;
        uint32_t n_in = n_elems(&L->in);
        const uint8_t *use = trains ? sel : NULL;
        touch(e, acc, 4u * n_in);
        if (L->kind == TR_LAYER_CONV2D) {
            st = tr_conv2d_backward(L, &P, err, qe, use, ratio, acc, &unit);
        } else if (L->kind == TR_LAYER_DENSE) {
            st = tr_dense_backward(L, &P, err, qe, use, ratio, acc, &unit);
        } else {
            st = tr_dwconv2d_backward(L, &P, err, qe, use, ratio, acc, &unit);
        }
        if (st != TR_OK) {
            return st;
        }
        if (opt->stochastic) {
            tr_error_requant_sr(acc, n_in, unit, e_in, qe_in, opt->rng);
        } else {
            tr_error_requant(acc, n_in, unit, e_in, qe_in);
        }
        touch(e, e_in, n_in);
    }
    if (!trains) {
        return TR_OK;
    }
    r->channels_total += C;
    touch(e, g, 4u * L->fan_in);
    for (uint32_t c = 0; c < C; c++) {
        int32_t gb;
        if (!sel[c]) {
            tr_opt_update_bias(opt, &P.bias[c], bsum[c], qe.s, &cs[c]);
            continue;
        }
        if (L->kind == TR_LAYER_CONV2D) {
            st = tr_conv2d_grad(L, x, qx, err, qe, c, g, &gb);
        } else if (L->kind == TR_LAYER_DENSE) {
            st = tr_dense_grad(L, x, qx, err, qe, c, g, &gb);
        } else {
            st = tr_dwconv2d_grad(L, x, qx, err, qe, c, g, &gb);
        }
        if (st != TR_OK) {
            return st;
        }
        if (!bias_only) {
            int8_t *w = (L->kind == TR_LAYER_DWCONV2D) ? P.w + c : P.w + c * L->fan_in;
            uint32_t stride = (L->kind == TR_LAYER_DWCONV2D) ? C : 1u;
            tr_opt_update_weights(opt, w, L->fan_in, stride, &P.scale[c],
                                  L->wq == TR_WQ_PER_TENSOR, g, qe.s * qx.s, &cs[c]);
        }
        tr_opt_update_bias(opt, &P.bias[c], gb, qe.s, &cs[c]);
        r->channels_updated += 1u;
    }
    if (!bias_only && L->wq == TR_WQ_PER_TENSOR) {
        tr_opt_rescale_tensor(P.w, C * L->fan_in, P.scale, C);
    }
    return TR_OK;
}

/* The whole backward pass (error propagation and updates) in one function
 * that is never inlined, so profilers can count it on its own. */
#if defined(__GNUC__)
__attribute__((noinline))
#endif
tr_status tr_engine_backward_pass(tr_engine *e, uint32_t label, const uint8_t *logits,
                                  tr_qparam ql, const tr_train_params *p, float loss_ratio,
                                  tr_step_result *r);

tr_status tr_engine_backward_pass(tr_engine *e, uint32_t label, const uint8_t *logits,
                                  tr_qparam ql, const tr_train_params *p, float loss_ratio,
                                  tr_step_result *r)
{
    const tr_model_desc *m = &e->m;
    uint8_t *act = e->arena + m->off_act;
    uint8_t *ebuf[2];
    uint32_t last = m->n_layers - 1u;
    uint32_t lowest = m->n_layers;
    uint32_t pred;
    float loss;
    tr_qparam qe;
    tr_opt opt;
    tr_status st;

    ebuf[0] = e->arena + m->off_err0;
    ebuf[1] = e->arena + m->off_err1;
    for (uint32_t i = 0; i < last; i++) {
        if (tr_layer_has_params(&m->layers[i]) && layer_trains(p, i)) {
            lowest = i;
            break;
        }
    }
    if (lowest >= last || last == 0u) {
        return TR_OK; /* nothing trains */
    }
    st = tr_softmax_ce(&m->layers[last], logits, ql, label, &pred, &loss, ebuf[(last - 1u) & 1u],
                       &qe);
    if (st != TR_OK) {
        return st;
    }
    touch(e, ebuf[(last - 1u) & 1u], m->classes);
    opt.lr = (float)p->lr_ppm * 1e-6f;
    opt.mode = (p->options & TR_TRAIN_QAS) ? TR_OPT_SGD_QAS
               : (p->options & TR_TRAIN_SGD) ? TR_OPT_SGD
                                             : TR_OPT_STANDARDIZED;
    opt.stochastic = (p->options & TR_TRAIN_STOCHASTIC) != 0u;
    opt.rng = &e->rng;
    for (uint32_t i = last; i-- > lowest;) {
        const tr_layer *L = &m->layers[i];
        uint8_t *err = ebuf[i & 1u];
        uint8_t *e_in = (i > lowest) ? ebuf[(i - 1u) & 1u] : NULL;
        const uint8_t *x = (i == 0) ? act : act + m->layers[i - 1].act_off;
        tr_qparam qin = qe;
        int32_t *acc = (int32_t *)(void *)(e->arena + m->off_acc);
        if (tr_layer_has_params(L)) {
            st = backward_param(e, i, p, &opt, loss_ratio, err, qe, e_in, &qin, r);
        } else if (e_in == NULL) {
            break;
        } else if (L->kind == TR_LAYER_RELU) {
            st = tr_relu_backward(L, act + L->act_off, e->qact[i], err, qe, e_in, &qin);
        } else if (L->kind == TR_LAYER_MAXPOOL) {
            st = tr_maxpool_backward(L, x, act + L->act_off, err, qe, acc, e_in, &qin);
        } else if (L->kind == TR_LAYER_AVGPOOL) {
            st = tr_avgpool_backward(L, err, qe, acc, e_in, &qin);
        } else if (L->kind == TR_LAYER_GAP) {
            st = tr_gap_backward(L, err, qe, e_in, &qin);
        } else if (L->kind == TR_LAYER_FLATTEN) {
            memcpy(e_in, err, n_elems(&L->in));
        } else {
            st = TR_ERR_UNKNOWN_LAYER;
        }
        if (st != TR_OK) {
            return st;
        }
        if (e_in != NULL) {
            touch(e, e_in, n_elems(&L->in));
        }
        qe = qin;
    }
    return TR_OK;
}

static tr_status check_engine(const tr_engine *e)
{
    return (e != NULL && e->magic == ENGINE_MAGIC) ? TR_OK : TR_ERR_STATE;
}

static uint32_t loss_ppm(float loss)
{
    float v = loss * 1e6f;
    if (!(v > 0.0f)) {
        return 0;
    }
    if (v > 4.0e9f) {
        return 4000000000u;
    }
    if (v >= 2.0e9f) {
        return (uint32_t)tr_round_f32(v * 0.5f) * 2u; /* int32 rounding range */
    }
    return (uint32_t)tr_round_f32(v);
}

tr_status tr_engine_train(tr_engine *e, const uint8_t *sample, uint32_t label,
                          const tr_train_params *p, tr_step_result *r)
{
    const uint8_t *logits = NULL;
    tr_qparam ql;
    uint32_t pred;
    float loss;
    float ratio;
    tr_step_result res;
    tr_status st = check_engine(e);
    if (st != TR_OK) {
        return st;
    }
    if (sample == NULL || p == NULL || label >= e->m.classes ||
        p->lambda_min_ppm > p->lambda_max_ppm || p->lr_ppm > TR_TRAIN_LR_MAX_PPM) {
        return TR_ERR_ARG;
    }
    memset(&res, 0, sizeof res);
    st = forward(e, sample, 1, &logits, &ql);
    if (st != TR_OK) {
        return st;
    }
    st = tr_softmax_ce(&e->m.layers[e->m.n_layers - 1u], logits, ql, label, &pred, &loss, NULL,
                       NULL);
    if (st != TR_OK) {
        return st;
    }
    if (loss > e->max_loss) {
        e->max_loss = loss;
    }
    ratio = (e->max_loss > 0.0f) ? loss / e->max_loss : 1.0f;
    st = tr_engine_backward_pass(e, label, logits, ql, p, ratio, &res);
    if (st != TR_OK) {
        return st;
    }
    update_ranges(e);
    e->steps++;
    res.loss_ppm = loss_ppm(loss);
    res.predicted = pred;
    res.correct = (pred == label) ? 1u : 0u;
    if (r != NULL) {
        *r = res;
    }
    return TR_OK;
}

tr_status tr_engine_infer(tr_engine *e, const uint8_t *sample, uint32_t label,
                          tr_step_result *r, int8_t *logits)
{
    const uint8_t *lq = NULL;
    tr_qparam ql;
    uint32_t pred;
    float loss;
    tr_status st = check_engine(e);
    if (st != TR_OK) {
        return st;
    }
    if (sample == NULL) {
        return TR_ERR_ARG;
    }
    st = forward(e, sample, 0, &lq, &ql);
    if (st != TR_OK) {
        return st;
    }
    st = tr_softmax_ce(&e->m.layers[e->m.n_layers - 1u], lq, ql, label, &pred, &loss, NULL, NULL);
    if (st != TR_OK) {
        return st;
    }
    if (logits != NULL) {
        for (uint32_t i = 0; i < e->m.classes; i++) {
            logits[i] = (int8_t)((int32_t)lq[i] - 128);
        }
    }
    if (r != NULL) {
        memset(r, 0, sizeof *r);
        r->loss_ppm = loss_ppm(loss);
        r->predicted = pred;
        r->correct = (pred == label) ? 1u : 0u;
    }
    return TR_OK;
}

tr_status tr_engine_weights(const tr_engine *e, const uint8_t **weights, size_t *len)
{
    tr_status st = check_engine(e);
    if (st != TR_OK) {
        return st;
    }
    if (weights == NULL || len == NULL) {
        return TR_ERR_ARG;
    }
    *weights = e->arena + e->m.off_weights;
    *len = e->m.weights_bytes;
    return TR_OK;
}

tr_status tr_engine_set_weights(tr_engine *e, const uint8_t *weights, size_t len)
{
    tr_status st = check_engine(e);
    if (st != TR_OK) {
        return st;
    }
    st = tr_model_check_weights(&e->m, weights, len);
    if (st != TR_OK) {
        return st;
    }
    memmove(e->arena + e->m.off_weights, weights, len);
    /* optimizer statistics belong to the weights they were measured on */
    memset(e->arena + e->m.off_opt, 0, e->m.off_chan - e->m.off_opt);
    e->max_loss = 0.0f;
    return TR_OK;
}

size_t tr_engine_arena_peak(const tr_engine *e)
{
    return check_engine(e) == TR_OK ? e->peak : 0u;
}

tr_status tr_engine_validate(const uint8_t *model, size_t len, size_t arena_bytes,
                             tr_model_info *info)
{
    tr_model_desc m;
    tr_model_blob b;
    tr_status st;
    if (model == NULL) {
        return TR_ERR_ARG;
    }
    st = tr_model_parse(model, len, &m, &b);
    if (st != TR_OK) {
        return st;
    }
    return tr_engine_check_desc(&m, b.weights, b.weights_len, arena_bytes, info);
}

tr_status tr_engine_load(tr_engine **out, const uint8_t *model, size_t len, uint8_t *arena,
                         size_t arena_bytes, tr_model_info *info)
{
    tr_model_desc m;
    tr_model_blob b;
    tr_status st;
    if (out == NULL || model == NULL) {
        return TR_ERR_ARG;
    }
    *out = NULL;
    st = tr_model_parse(model, len, &m, &b);
    if (st != TR_OK) {
        return st;
    }
    if (arena != NULL && b.weights + b.weights_len > arena && b.weights < arena + arena_bytes) {
        return TR_ERR_ARG; /* the model blob may not live inside the arena */
    }
    return tr_engine_load_desc(out, &m, b.weights, b.weights_len, b.seed, arena, arena_bytes,
                               info);
}
