/* tinyrig-train plan and build --spec: a network the daemon received (a
 * layer list without weights, or a whole model blob) checked by the engine's
 * own parser and planner, with the first defect named by layer and rule, and
 * the plan printed as JSON: weights, training and inference arena bytes,
 * forward MACs, each layer's shapes. */
#include "trainer_plan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "engine/tr_engine.h"
#include "engine/tr_engine_desc.h"
#include "model/tr_model_cbor.h"
#include "model/tr_zoo.h"
#include "model_writer/trainer_model.h"

static const char *status_word(tr_status st)
{
    static const char *names[] = { "OK", "ARG", "NOMEM", "TRUNCATED", "FORMAT", "SHAPE",
                                   "UNKNOWN_LAYER", "OVERFLOW", "QUANT", "UNSUPPORTED",
                                   "HASH", "STATE" };
    return ((unsigned)st < sizeof names / sizeof names[0]) ? names[st] : "?";
}

static const char *kind_name(uint32_t kind)
{
    static const char *names[] = { "?", "conv2d", "dwconv2d", "dense", "relu", "maxpool",
                                   "avgpool", "gap", "flatten", "softmax" };
    return kind < sizeof names / sizeof names[0] ? names[kind] : "?";
}

static uint32_t window_out(uint32_t n, uint32_t k, uint32_t stride, uint32_t pad)
{
    return (n + 2u * pad < k || stride == 0) ? 0u : (n + 2u * pad - k) / stride + 1u;
}

/* The rule a layer broke, in words, from the same limits the planner checks. */
static void describe(const tr_layer *L, const tr_shape *in, int last, uint32_t classes, tr_status st,
                     char *buf, size_t cap)
{
    uint32_t elems = in->h * in->w * in->c;
    if (st == TR_ERR_UNKNOWN_LAYER) {
        snprintf(buf, cap, "unknown layer kind %u", (unsigned)L->kind);
        return;
    }
    switch (L->kind) {
    case TR_LAYER_CONV2D:
    case TR_LAYER_DWCONV2D:
        if (L->kh == 0 || L->kw == 0 || L->stride == 0) {
            snprintf(buf, cap, "kernel and stride must be at least 1");
        } else if (L->kh > 255 || L->kw > 255 || L->stride > 255) {
            snprintf(buf, cap, "kernel and stride are at most 255");
        } else if (L->pad >= L->kh || L->pad >= L->kw) {
            snprintf(buf, cap, "pad %u must be smaller than the %ux%u kernel", (unsigned)L->pad,
                     (unsigned)L->kh, (unsigned)L->kw);
        } else if (window_out(in->h, L->kh, L->stride, L->pad) == 0 ||
                   window_out(in->w, L->kw, L->stride, L->pad) == 0) {
            snprintf(buf, cap, "a %ux%u kernel (pad %u) does not fit the %ux%u input", (unsigned)L->kh,
                     (unsigned)L->kw, (unsigned)L->pad, (unsigned)in->h, (unsigned)in->w);
        } else if (L->kind == TR_LAYER_CONV2D && L->units == 0) {
            snprintf(buf, cap, "units must be at least 1");
        } else if (L->kind == TR_LAYER_CONV2D &&
                   (uint64_t)L->kh * L->kw * in->c > TR_MAX_FAN_IN) {
            snprintf(buf, cap, "fan-in %ux%ux%u = %llu exceeds %u", (unsigned)L->kh, (unsigned)L->kw,
                     (unsigned)in->c, (unsigned long long)L->kh * L->kw * in->c, TR_MAX_FAN_IN);
        } else if (L->act > TR_ACT_RELU || L->wq > TR_WQ_PER_TENSOR) {
            snprintf(buf, cap, "act is none or relu, wq per-channel or per-tensor");
        } else {
            snprintf(buf, cap, "the output (more than %u positions a channel, or past 65535 a "
                     "dimension or 2^20 elements) is past the engine's limits", TR_MAX_POSITIONS);
        }
        break;
    case TR_LAYER_DENSE:
        if (L->units == 0) {
            snprintf(buf, cap, "units must be at least 1");
        } else if (elems > TR_MAX_FAN_IN) {
            snprintf(buf, cap, "fan-in %u (its %ux%ux%u input flattened) exceeds %u", (unsigned)elems,
                     (unsigned)in->h, (unsigned)in->w, (unsigned)in->c, TR_MAX_FAN_IN);
        } else if (L->act > TR_ACT_RELU || L->wq > TR_WQ_PER_TENSOR) {
            snprintf(buf, cap, "act is none or relu, wq per-channel or per-tensor");
        } else {
            snprintf(buf, cap, "%u units are past the engine's limits", (unsigned)L->units);
        }
        break;
    case TR_LAYER_MAXPOOL:
    case TR_LAYER_AVGPOOL:
        if (L->kh == 0 || L->stride == 0 || L->kh > 255 || L->stride > 255) {
            snprintf(buf, cap, "window and stride are 1 ... 255");
        } else {
            snprintf(buf, cap, "a %ux%u window does not fit the %ux%u input", (unsigned)L->kh,
                     (unsigned)L->kh, (unsigned)in->h, (unsigned)in->w);
        }
        break;
    case TR_LAYER_GAP:
        snprintf(buf, cap, "a %ux%u input has more than 65535 positions to average", (unsigned)in->h,
                 (unsigned)in->w);
        break;
    case TR_LAYER_FLATTEN:
        snprintf(buf, cap, "%u elements flattened exceed 65535", (unsigned)elems);
        break;
    case TR_LAYER_SOFTMAX:
        if (!last) {
            snprintf(buf, cap, "softmax must be the last layer");
        } else {
            snprintf(buf, cap, "softmax over %u values, but the model has %u classes", (unsigned)elems,
                     (unsigned)classes);
        }
        return;
    default:
        break;
    }
    if (st == TR_ERR_FORMAT && last && L->kind != TR_LAYER_SOFTMAX) {
        snprintf(buf, cap, "the last layer must be softmax over the %u classes", (unsigned)classes);
    }
}

static int fail(const char *status, int layer, const char *kind, const char *rule)
{
    printf("{\"ok\":false,\"status\":\"%s\"", status);
    if (layer >= 0) {
        printf(",\"layer\":%d,\"kind\":\"%s\"", layer, kind);
    }
    printf(",\"rule\":\"%s\"}\n", rule);
    return 1;
}

/* Resolves every layer in turn so a defect names its layer; then plans. */
static int check_and_plan(tr_model_desc *m)
{
    char rule[200];
    tr_shape cur = m->input;
    tr_status st;
    if (m->input.h == 0 || m->input.w == 0 || m->input.c == 0 || m->input.h > TR_MAX_DIM ||
        m->input.w > TR_MAX_DIM || m->input.c > TR_MAX_DIM ||
        (uint64_t)m->input.h * m->input.w * m->input.c > TR_MAX_ELEMS) {
        return fail("SHAPE", -1, "", "input must be h, w, c of 1 ... 65535 with at most 2^20 elements");
    }
    if (m->classes < 2u || m->classes > 65535u) {
        return fail("SHAPE", -1, "", "classes must be 2 ... 65535");
    }
    for (uint32_t i = 0; i < m->n_layers; i++) {
        tr_layer L = m->layers[i];
        int last = i + 1u == m->n_layers;
        st = tr_model_resolve_layer(&L, &cur, last, m->classes);
        if (st != TR_OK) {
            describe(&m->layers[i], &cur, last, m->classes, st, rule, sizeof rule);
            return fail(status_word(st), (int)i, kind_name(m->layers[i].kind), rule);
        }
        cur = L.out;
    }
    st = tr_model_plan(m, tr_engine_state_bytes());
    if (st != TR_OK) {
        return fail(status_word(st), -1, "", "the weights or the arena plan are past the engine's 2^31-byte limits");
    }
    return 0;
}

static void print_plan(const tr_model_desc *m, const uint8_t *blob, size_t len, const tr_model_blob *b)
{
    char hm[65], hw[65];
    tr_trainer_sha256_hex(blob, len, hm);
    tr_trainer_sha256_hex(b->weights, b->weights_len, hw);
    printf("{\"ok\":true,\"sha256_model\":\"%s\",\"sha256_weights\":\"%s\",\"bytes\":%zu,", hm, hw, len);
    printf("\"name\":");
    if (b->name != NULL) {
        printf("\"%.*s\"", (int)b->name_len, (const char *)b->name);
    } else {
        printf("null");
    }
    printf(",\"seed\":%u,\"input\":[%u,%u,%u],\"classes\":%u,\"weights_bytes\":%u,\"train_bytes\":%u,"
           "\"infer_bytes\":%u,\"forward_macs\":%llu,\"layers\":[",
           (unsigned)b->seed, (unsigned)m->input.h, (unsigned)m->input.w, (unsigned)m->input.c,
           (unsigned)m->classes, (unsigned)m->weights_bytes, (unsigned)m->train_bytes,
           (unsigned)m->infer_bytes, (unsigned long long)tr_model_forward_macs(m));
    for (uint32_t i = 0; i < m->n_layers; i++) {
        const tr_layer *L = &m->layers[i];
        uint32_t params = tr_layer_has_params(L) ? L->channels * L->fan_in + L->channels : 0u;
        printf("%s{\"kind\":\"%s\",\"in\":[%u,%u,%u],\"out\":[%u,%u,%u],\"params\":%u}", i ? "," : "",
               kind_name(L->kind), (unsigned)L->in.h, (unsigned)L->in.w, (unsigned)L->in.c,
               (unsigned)L->out.h, (unsigned)L->out.w, (unsigned)L->out.c, (unsigned)params);
    }
    printf("]}\n");
}

int tr_trainer_cmd_plan(const uint8_t *blob, size_t len)
{
    tr_model_desc m;
    tr_model_blob b;
    tr_status st = tr_model_parse(blob, len, &m, &b);
    if (st != TR_OK) {
        return fail(status_word(st), -1, "", "not a model blob of FORMAT.md version 1");
    }
    if (check_and_plan(&m) != 0) {
        return 1;
    }
    st = tr_model_check_weights(&m, b.weights, b.weights_len);
    if (st != TR_OK) {
        return fail(status_word(st), -1, "",
                    b.weights_len != m.weights_bytes ? "the weights blob does not match the layer list"
                                                     : "a quantization parameter of the weights is out of range");
    }
    print_plan(&m, blob, len, &b);
    return 0;
}

int tr_trainer_cmd_build_spec(const uint8_t *spec, size_t len, uint32_t seed, const char *name,
                              const char *out_path)
{
    tr_model_desc m;
    tr_model_blob b;
    tr_model_blob built;
    uint8_t *w, *blob;
    size_t cap, n;
    FILE *f;
    tr_status st = tr_model_parse(spec, len, &m, &b);
    if (st != TR_OK) {
        return fail(status_word(st), -1, "", "not a layer list of FORMAT.md version 1 (weights: an empty byte string)");
    }
    if (check_and_plan(&m) != 0) {
        return 1;
    }
    w = malloc(m.weights_bytes);
    cap = m.weights_bytes + 4096u;
    blob = malloc(cap);
    if (w == NULL || blob == NULL || tr_model_init_weights(&m, seed, w, m.weights_bytes) != TR_OK) {
        free(w);
        free(blob);
        return fail("NOMEM", -1, "", "cannot initialise the weights");
    }
    n = tr_trainer_encode_model(&m, w, m.weights_bytes, name, seed, blob, cap);
    free(w);
    if (n == 0 || tr_model_parse(blob, n, &m, &built) != TR_OK) {
        free(blob);
        return fail("FORMAT", -1, "", "cannot encode the model");
    }
    f = fopen(out_path, "wb");
    if (f == NULL || fwrite(blob, 1, n, f) != n || fclose(f) != 0) {
        fprintf(stderr, "cannot write %s\n", out_path);
        free(blob);
        return 1;
    }
    if (check_and_plan(&m) != 0) {
        free(blob);
        return 1;
    }
    print_plan(&m, blob, n, &built);
    free(blob);
    return 0;
}
