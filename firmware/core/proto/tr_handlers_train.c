/* SAMPLES into the ring, TRAIN (exactly once per step id), EVAL, INFER.
 * Each engine call is measured with the port's step counter. */
#include <string.h>

#include "proto/tr_handlers.h"

tr_status tr_handle_samples(tr_device *d, const tr_body *req, tr_reply *rep)
{
    uint32_t index, sb, i, limit;
    const uint8_t *labels, *data;
    size_t nl, nd;

    if (tr_body_u32(req, 1, &index) != TR_OK || tr_body_u32(req, 2, &sb) != TR_OK ||
        tr_body_bytes(req, 3, &labels, &nl) != TR_OK || tr_body_bytes(req, 4, &data, &nd) != TR_OK) {
        return tr_reply_error(rep, TR_E_BAD_BODY);
    }
    limit = d->cfg.sample_bytes_max;
#ifdef TR_WITH_ENGINE
    if (d->engine != NULL && sb != d->model.input_bytes) {
        return tr_reply_error_detail(rep, TR_E_BAD_SAMPLE, d->model.input_bytes);
    }
#endif
    if (sb == 0u || sb > limit) {
        return tr_reply_error_detail(rep, TR_E_BAD_SAMPLE, limit);
    }
    if (nl > d->cfg.sample_slots) {
        return tr_reply_error_detail(rep, TR_E_TOO_LARGE, d->cfg.sample_slots);
    }
    if ((uint64_t)nl * sb != nd) {
        return tr_reply_error(rep, TR_E_BAD_BODY);
    }
#ifdef TR_WITH_ENGINE
    /* The whole batch or nothing: a label the live model cannot learn is refused at once. */
    for (i = 0; d->engine != NULL && i < (uint32_t)nl; i++) {
        if (labels[i] >= d->model.classes) {
            return tr_reply_error_detail(rep, TR_E_BAD_SAMPLE, index + i);
        }
    }
#endif
    for (i = 0; i < (uint32_t)nl; i++) {
        uint32_t id = index + i;
        uint32_t slot = id % d->cfg.sample_slots;
        tr_sample_meta *m = &d->mem.sample_meta[slot];

        if (!m->held) {
            d->samples_held++;
        }
        memcpy(d->mem.samples + (size_t)slot * d->cfg.sample_bytes_max, data + (size_t)i * sb, sb);
        m->id = id;
        m->len = (uint16_t)sb;
        m->label = labels[i];
        m->held = 1;
    }
    tr_cbor_write_map(&rep->w, 2);
    tr_cbor_write_uint(&rep->w, 1);
    tr_cbor_write_uint(&rep->w, index);
    tr_cbor_write_uint(&rep->w, 2);
    return tr_cbor_write_uint(&rep->w, nl);
}

#ifdef TR_WITH_ENGINE
/* TRAIN options (SPEC 0x31 key 9): QAS, stochastic rounding, plain int8 SGD. */
#define TRAIN_OPTIONS (TR_TRAIN_QAS | TR_TRAIN_STOCHASTIC | TR_TRAIN_SGD)

/* The held sample with number id that the live model can use (its size, a
 * label below classes), or NULL. Samples stay held across a MODEL load, so a
 * sample sent before it may not fit the model now. */
static const uint8_t *held_sample(tr_device *d, uint32_t id, uint8_t *label)
{
    uint32_t slot = id % d->cfg.sample_slots;
    const tr_sample_meta *m = &d->mem.sample_meta[slot];

    if (!m->held || m->id != id || m->len != d->model.input_bytes || m->label >= d->model.classes) {
        return NULL;
    }
    *label = m->label;
    return d->mem.samples + (size_t)slot * d->cfg.sample_bytes_max;
}

/* Checks that count samples from index are all held and usable. */
static tr_status check_held(tr_device *d, uint32_t index, uint32_t count, tr_reply *rep, int *ok)
{
    uint32_t i;
    uint8_t label;

    *ok = 0;
    if (count == 0u || count > d->cfg.max_train || count > d->cfg.sample_slots) {
        return tr_reply_error_detail(rep, TR_E_BAD_ARG, d->cfg.max_train);
    }
    for (i = 0; i < count; i++) {
        if (held_sample(d, index + i, &label) == NULL) {
            return tr_reply_error_detail(rep, TR_E_BAD_SAMPLE, index + i);
        }
    }
    *ok = 1;
    return TR_OK;
}

/* TRAIN's layer masks (SPEC 0x31 keys 7, 8) as the engine takes them, or 0
 * (BAD_ARG) when a bit names a layer without parameters or nothing would
 * train. Absent trainable: every layer; present, 0 is no layer (the engine
 * reads 0 as all, so it gets the bias-only layers then). */
static int train_layers(const tr_device *d, const tr_body *req, tr_train_params *p)
{
    uint32_t params = d->model.param_layers;
    int has_trainable = (req->present & (1u << 7)) != 0u;

    if ((p->trainable & ~params) != 0u || (p->bias_only & ~params) != 0u) {
        return 0;
    }
    if (has_trainable && p->trainable == 0u) {
        p->trainable = p->bias_only;
    }
    return (has_trainable ? (p->trainable | p->bias_only) : params) != 0u;
}

static uint32_t clamp32(uint64_t v)
{
    return v > 0xFFFFFFFFu ? 0xFFFFFFFFu : (uint32_t)v;
}

static tr_status write_records(tr_device *d, tr_cbor_writer *w, uint32_t n)
{
    uint32_t i;

    tr_cbor_write_array(w, n);
    for (i = 0; i < n; i++) {
        const tr_train_record *r = &d->mem.records[i];

        tr_cbor_write_array(w, 5);
        tr_cbor_write_uint(w, r->loss_ppm);
        tr_cbor_write_uint(w, r->counter);
        tr_cbor_write_uint(w, r->updated_ppm);
        tr_cbor_write_bool(w, (int)r->correct);
        tr_cbor_write_uint(w, r->peak_ram);
    }
    return w->status;
}

/* The answer of a TRAIN: with_records carries the held records (and the
 * fault that stopped them, if any), which are step_id's own. */
static tr_status train_reply(tr_device *d, tr_reply *rep, uint32_t step_id, int duplicate,
                             int with_records)
{
    tr_cbor_writer *w = &rep->w;
    int fault = with_records && d->records_fault != 0u;

    tr_cbor_write_map(w, fault ? 5u : 4u);
    tr_cbor_write_uint(w, 1);
    tr_cbor_write_uint(w, step_id);
    tr_cbor_write_uint(w, 2);
    tr_cbor_write_bool(w, duplicate);
    tr_cbor_write_uint(w, 3);
    tr_cbor_write_uint(w, d->steps_applied);
    tr_cbor_write_uint(w, 4);
    write_records(d, w, with_records ? d->records_count : 0u);
    if (fault) {
        tr_cbor_write_uint(w, 5);
        tr_cbor_write_uint(w, d->records_fault);
    }
    return w->status;
}
#endif

tr_status tr_handle_train(tr_device *d, const tr_body *req, tr_reply *rep)
{
    (void)d;
    (void)req;
#ifdef TR_WITH_ENGINE
    uint32_t step_id, index, count, i;
    tr_train_params p;
    tr_status s;
    int ok;

    memset(&p, 0, sizeof p);
    p.lambda_min_ppm = 1000000u;
    p.lambda_max_ppm = 1000000u;
    if (tr_body_u32(req, 1, &step_id) != TR_OK || tr_body_u32(req, 2, &index) != TR_OK ||
        tr_body_u32(req, 3, &count) != TR_OK || tr_body_u32(req, 4, &p.lr_ppm) != TR_OK ||
        tr_body_opt_u32(req, 5, &p.lambda_min_ppm) != TR_OK ||
        tr_body_opt_u32(req, 6, &p.lambda_max_ppm) != TR_OK ||
        tr_body_opt_u32(req, 7, &p.trainable) != TR_OK ||
        tr_body_opt_u32(req, 8, &p.bias_only) != TR_OK ||
        tr_body_opt_u32(req, 9, &p.options) != TR_OK) {
        return tr_reply_error(rep, TR_E_BAD_BODY);
    }
    if (p.lr_ppm > TR_TRAIN_LR_MAX_PPM || p.lambda_min_ppm > p.lambda_max_ppm ||
        p.lambda_max_ppm > 1000000u || (p.options & ~TRAIN_OPTIONS) != 0u) {
        return tr_reply_error(rep, TR_E_BAD_ARG);
    }
    if (d->engine == NULL) {
        return tr_reply_error(rep, TR_E_NO_MODEL);
    }
    if (!train_layers(d, req, &p)) {
        return tr_reply_error_detail(rep, TR_E_BAD_ARG, d->model.param_layers);
    }
    /* Exactly once: the highest id and a bitmap of the 64 ids below it. A
     * duplicate gets its own records when it is the TRAIN applied last (a
     * retransmit always is), else none: never another step's. */
    if (d->have_steps) {
        int seen = step_id == d->last_step_id;

        if (step_id < d->last_step_id) {
            uint32_t back = d->last_step_id - step_id;

            seen = back > 64u || (d->step_bits & ((uint64_t)1 << (back - 1u))) != 0u;
        }
        if (seen) {
            return train_reply(d, rep, step_id, 1,
                               d->have_records && d->records_step_id == step_id);
        }
    }
    /* Everything that can be refused is checked before the first step: an
     * ERROR answer means nothing was applied and the step id is still free. */
    s = check_held(d, index, count, rep, &ok);
    if (!ok) {
        return s;
    }
    if (!d->have_steps) {
        d->have_steps = 1;
        d->last_step_id = step_id;
        d->step_bits = 0;
    } else if (step_id > d->last_step_id) {
        uint32_t ahead = step_id - d->last_step_id;

        d->step_bits = ahead >= 64u ? 0u : d->step_bits << ahead;
        if (ahead <= 64u) {
            d->step_bits |= (uint64_t)1 << (ahead - 1u);
        }
        d->last_step_id = step_id;
    } else {
        d->step_bits |= (uint64_t)1 << (d->last_step_id - step_id - 1u);
    }
    d->have_records = 1;
    d->records_step_id = step_id;
    d->records_count = 0;
    d->records_fault = 0;
    for (i = 0; i < count; i++) {
        tr_step_result r;
        tr_train_record *rec = &d->mem.records[i];
        uint8_t label = 0;
        const uint8_t *x = held_sample(d, index + i, &label);
        uint64_t t0, dt;
        size_t peak;

        memset(&r, 0, sizeof r);
        if (d->port.step_marker != NULL) {
            d->port.step_marker(1);
        }
        t0 = d->port.counter();
        s = tr_engine_train(d->engine, x, label, &p, &r);
        dt = d->port.counter() - t0;
        if (d->port.step_marker != NULL) {
            d->port.step_marker(0);
        }
        if (s != TR_OK) {
            /* Not refusable up front (an engine defect): the steps before it
             * stay applied, so this is a TRAIN answer with a fault, not an ERROR. */
            d->records_fault = (uint32_t)s;
            break;
        }
        peak = tr_engine_arena_peak(d->engine);
        if (peak > d->arena_peak) {
            d->arena_peak = (uint32_t)peak;
        }
        d->steps_applied++;
        d->counter_total += dt;
        rec->loss_ppm = r.loss_ppm;
        rec->counter = clamp32(dt);
        rec->updated_ppm = r.channels_total != 0u ?
            (uint32_t)((uint64_t)r.channels_updated * 1000000u / r.channels_total) : 0u;
        rec->correct = r.correct != 0u;
        rec->peak_ram = (uint32_t)peak;
        d->records_count = i + 1u;
    }
    return train_reply(d, rep, step_id, 0, 1);
#else
    return tr_reply_error(rep, TR_E_NOT_SUPPORTED);
#endif
}

/* CBOR head bytes of an unsigned value on the device (SPEC §2, up to 32 bits). */
static uint32_t uint_bytes(uint32_t v)
{
    return v < 24u ? 1u : v <= 0xFFu ? 2u : v <= 0xFFFFu ? 3u : 5u;
}

/* Map head, six keys, count and correct (at most count), the two 32-bit
 * totals, two array heads of count, then per sample its class (below
 * classes) and its 32-bit loss. */
uint32_t tr_eval_answer_max(uint32_t count, uint32_t classes)
{
    uint32_t per_sample = uint_bytes(classes > 0u ? classes - 1u : 0u) + 5u;

    return 1u + 6u + 4u * uint_bytes(count) + 5u + 5u + count * per_sample;
}

#ifdef TR_WITH_ENGINE
/* EVAL with predictions keeps each sample's class and loss in the wire buffer
 * (free until the answer is sent), since the totals are written first. */
#define EVAL_KEPT_BYTES 8u

static void put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Whether an EVAL answer with predictions for count samples fits a frame. */
static int eval_fits(const tr_device *d, uint32_t count)
{
    return tr_eval_answer_max(count, d->model.classes) <= d->cfg.max_frame - TR_FRAME_OVERHEAD &&
           (uint64_t)count * EVAL_KEPT_BYTES <= TR_FRAME_WIRE_MAX(d->cfg.max_frame);
}

static tr_status write_kept(tr_cbor_writer *w, const uint8_t *kept, uint32_t count, uint32_t field)
{
    uint32_t i;

    tr_cbor_write_array(w, count);
    for (i = 0; i < count; i++) {
        tr_cbor_write_uint(w, get_u32(kept + (size_t)i * EVAL_KEPT_BYTES + field * 4u));
    }
    return w->status;
}
#endif

tr_status tr_handle_eval(tr_device *d, const tr_body *req, tr_reply *rep)
{
    (void)d;
    (void)req;
#ifdef TR_WITH_ENGINE
    uint32_t index, count, i, correct = 0;
    uint64_t loss = 0, counter = 0;
    uint8_t *kept = d->mem.wire;
    int predictions = 0;
    tr_status s;
    int ok;

    if (tr_body_u32(req, 1, &index) != TR_OK || tr_body_u32(req, 2, &count) != TR_OK ||
        tr_body_opt_bool(req, 3, &predictions) != TR_OK) {
        return tr_reply_error(rep, TR_E_BAD_BODY);
    }
    if (d->engine == NULL) {
        return tr_reply_error(rep, TR_E_NO_MODEL);
    }
    s = check_held(d, index, count, rep, &ok);
    if (!ok) {
        return s;
    }
    /* Never expected (max_train is capped for TRAIN's larger records), but a
     * refusal up front, never an answer cut short. */
    if (predictions && !eval_fits(d, count)) {
        uint32_t fit = count;

        while (fit > 0u && !eval_fits(d, fit)) {
            fit--;
        }
        return tr_reply_error_detail(rep, TR_E_TOO_LARGE, fit);
    }
    for (i = 0; i < count; i++) {
        tr_step_result r;
        uint8_t label = 0;
        const uint8_t *x = held_sample(d, index + i, &label);
        uint64_t t0;

        memset(&r, 0, sizeof r);
        t0 = d->port.counter();
        s = tr_engine_infer(d->engine, x, label, &r, NULL);
        counter += d->port.counter() - t0;
        if (s != TR_OK) {
            return tr_reply_error_detail(rep, TR_E_INTERNAL, (uint32_t)s);
        }
        correct += r.correct != 0u;
        loss += r.loss_ppm;
        if (predictions) {
            put_u32(kept + (size_t)i * EVAL_KEPT_BYTES, r.predicted);
            put_u32(kept + (size_t)i * EVAL_KEPT_BYTES + 4u, r.loss_ppm);
        }
    }
    tr_cbor_write_map(&rep->w, predictions ? 6u : 4u);
    tr_cbor_write_uint(&rep->w, 1);
    tr_cbor_write_uint(&rep->w, count);
    tr_cbor_write_uint(&rep->w, 2);
    tr_cbor_write_uint(&rep->w, correct);
    tr_cbor_write_uint(&rep->w, 3);
    tr_cbor_write_uint(&rep->w, clamp32(loss));
    tr_cbor_write_uint(&rep->w, 4);
    tr_cbor_write_uint(&rep->w, clamp32(counter));
    if (predictions) {
        tr_cbor_write_uint(&rep->w, 5);
        write_kept(&rep->w, kept, count, 0u);
        tr_cbor_write_uint(&rep->w, 6);
        write_kept(&rep->w, kept, count, 1u);
    }
    return rep->w.status;
#else
    return tr_reply_error(rep, TR_E_NOT_SUPPORTED);
#endif
}

tr_status tr_handle_infer(tr_device *d, const tr_body *req, tr_reply *rep)
{
    (void)d;
    (void)req;
#ifdef TR_WITH_ENGINE
    const uint8_t *x;
    uint8_t *logits;
    size_t n;
    tr_step_result r;
    uint64_t t0, dt;
    tr_status s;

    if (tr_body_bytes(req, 1, &x, &n) != TR_OK) {
        return tr_reply_error(rep, TR_E_BAD_BODY);
    }
    if (d->engine == NULL) {
        return tr_reply_error(rep, TR_E_NO_MODEL);
    }
    if (n != d->model.input_bytes) {
        return tr_reply_error_detail(rep, TR_E_BAD_SAMPLE, d->model.input_bytes);
    }
    if (d->model.classes > tr_device_data_max(d)) {
        return tr_reply_error_detail(rep, TR_E_TOO_LARGE, tr_device_data_max(d));
    }
    /* The logits go to the wire buffer first: it is free until the reply is sent. */
    logits = d->mem.wire;
    memset(&r, 0, sizeof r);
    t0 = d->port.counter();
    s = tr_engine_infer(d->engine, x, 0, &r, (int8_t *)logits);
    dt = d->port.counter() - t0;
    if (s != TR_OK) {
        return tr_reply_error_detail(rep, TR_E_INTERNAL, (uint32_t)s);
    }
    tr_cbor_write_map(&rep->w, 3);
    tr_cbor_write_uint(&rep->w, 1);
    tr_cbor_write_uint(&rep->w, r.predicted);
    tr_cbor_write_uint(&rep->w, 2);
    tr_cbor_write_bytes(&rep->w, logits, d->model.classes);
    tr_cbor_write_uint(&rep->w, 3);
    return tr_cbor_write_uint(&rep->w, clamp32(dt));
#else
    return tr_reply_error(rep, TR_E_NOT_SUPPORTED);
#endif
}
