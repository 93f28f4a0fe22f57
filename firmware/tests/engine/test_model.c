/* Model blobs and the engine as a whole: every defect of a model blob gets its
 * named status; training stays inside the arena (guard bytes on both sides,
 * and ASan in the sanitizer build); the same seed and sample stream give the
 * same weight bytes; sparse updates touch fewer channels; the planned arena
 * bytes cover the measured peak. printf + exit code only (runs under QEMU). */
#include <string.h>
#include "engine/tr_engine.h"
#include "engine/tr_engine_desc.h"
#include "model/tr_model_cbor.h"
#include "model/tr_zoo.h"
#include "quant/tr_quant.h"
#include "train/tr_optimizer.h"
#include "model_writer/trainer_model.h"
#include "tr_test.h"

#define GUARD 64u
#define ARENA_MAX (64u * 1024u)
#define BLOB_MAX (32u * 1024u) /* small enough for a 256 KiB board under QEMU */
#define GUARD_BYTE 0xA5u

static uint8_t blob[BLOB_MAX];
static uint8_t blob2[BLOB_MAX];
static uint8_t weights[BLOB_MAX];
static uint8_t weights_run1[BLOB_MAX];
/* 8-byte aligned arenas with guard bytes on both sides */
static uint64_t arena_words[(ARENA_MAX + 2u * GUARD) / 8u];
static uint8_t sample[28u * 28u * 3u];

static tr_model_desc desc;

/* Model blob of zoo model `name` with seeded weights; returns its size. */
static size_t make_blob(const char *name, tr_shape in, uint32_t classes, uint32_t seed,
                        uint8_t *out, size_t cap)
{
    tr_model_info info;
    size_t n;
    if (tr_zoo_desc(name, in, classes, &desc) != TR_OK) {
        return 0;
    }
    if (tr_model_plan(&desc, tr_engine_state_bytes()) != TR_OK || desc.weights_bytes > cap) {
        return 0;
    }
    if (tr_model_init_weights(&desc, seed, weights, desc.weights_bytes) != TR_OK) {
        return 0;
    }
    n = tr_trainer_encode_model(&desc, weights, desc.weights_bytes, name, seed, out, cap);
    (void)info;
    return n;
}

/* Offset of the weights byte string inside a blob made by make_blob. */
static size_t weights_offset(const uint8_t *b, size_t len, uint32_t wlen)
{
    for (size_t i = 0; i + 5u <= len; i++) {
        if (b[i] == 0x05u && b[i + 1] == 0x5Au && b[i + 2] == (uint8_t)(wlen >> 24) &&
            b[i + 3] == (uint8_t)(wlen >> 16) && b[i + 4] == (uint8_t)(wlen >> 8) &&
            i + 6u <= len && b[i + 5] == (uint8_t)wlen) {
            return i + 6u;
        }
        if (b[i] == 0x05u && b[i + 1] == 0x59u && wlen <= 0xFFFFu &&
            b[i + 2] == (uint8_t)(wlen >> 8) && b[i + 3] == (uint8_t)wlen) {
            return i + 4u;
        }
    }
    return 0;
}

static void next_sample(uint32_t *rng, uint32_t n, uint32_t *label, uint32_t classes)
{
    /* class-dependent bright band plus noise: learnable, cheap, deterministic */
    uint32_t k = tr_rng_next(rng) % classes;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t band = (i * classes) / n;
        uint32_t v = (tr_rng_next(rng) >> 26) + (band == k ? 180u : 20u);
        sample[i] = (uint8_t)(v > 255u ? 255u : v);
    }
    *label = k;
}

static int guards_intact(const uint8_t *a, size_t arena_bytes)
{
    for (uint32_t i = 0; i < GUARD; i++) {
        if (a[i] != GUARD_BYTE || a[GUARD + arena_bytes + i] != GUARD_BYTE) {
            return 0;
        }
    }
    return 1;
}

static void test_valid_and_info(void)
{
    const char *names[] = { "cnn", "mlp", "dscnn" };
    for (uint32_t k = 0; k < 3u; k++) {
        /* the mlp at 28x28 has 51 KB of weights: checked at 20x20 here */
        tr_shape in = { k == 1u ? 20u : 28u, k == 1u ? 20u : 28u, 1 };
        tr_model_info info;
        size_t len = make_blob(names[k], in, 10, 1, blob, sizeof blob);
        CHECK(len > 0, "%s: blob", names[k]);
        CHECK(tr_engine_validate(blob, len, ARENA_MAX, &info) == TR_OK, "%s valid", names[k]);
        CHECK(info.input_bytes == in.h * in.w && info.classes == 10u, "%s info", names[k]);
        CHECK(info.weights_bytes == desc.weights_bytes, "%s weights bytes", names[k]);
        CHECK(info.infer_bytes > 0 && info.infer_bytes <= info.train_bytes, "%s plan", names[k]);
    }
    /* forward MACs of the reference CNN, by hand: conv1 28*28*8*9, conv2
     * 14*14*16*(9*8), dense1 (7*7*16)*32, dense2 32*10 */
    {
        tr_shape in = { 28, 28, 1 };
        tr_model_info info;
        size_t len = make_blob("cnn", in, 10, 1, blob, sizeof blob);
        CHECK(len > 0 && tr_engine_validate(blob, len, ARENA_MAX, &info) == TR_OK, "cnn valid");
        CHECK(info.forward_macs == 56448u + 225792u + 25088u + 320u, "cnn forward MACs %llu",
              (unsigned long long)info.forward_macs);
    }
    /* any input shape and class count */
    {
        tr_shape in = { 12, 20, 3 };
        tr_model_info info;
        size_t len = make_blob("cnn", in, 3, 7, blob, sizeof blob);
        CHECK(len > 0 && tr_engine_validate(blob, len, ARENA_MAX, &info) == TR_OK,
              "cnn 12x20x3 / 3 classes");
        CHECK(info.input_bytes == 720u && info.classes == 3u, "shape info");
    }
}

static void test_defects(void)
{
    tr_shape in = { 28, 28, 1 };
    tr_model_info info;
    size_t len = make_blob("cnn", in, 10, 1, blob, sizeof blob);
    size_t woff = weights_offset(blob, len, desc.weights_bytes);
    tr_status st;
    CHECK(woff > 0, "weights located");

    /* truncated anywhere: never OK, and inside the weights: TRUNCATED */
    for (size_t cut = 0; cut < len; cut += (cut < 64u ? 1u : 997u)) {
        st = tr_engine_validate(blob, cut, ARENA_MAX, &info);
        CHECK(st == TR_ERR_TRUNCATED || st == TR_ERR_FORMAT, "cut at %u: %d", (unsigned)cut, st);
    }
    CHECK(tr_engine_validate(blob, woff + 100u, ARENA_MAX, &info) == TR_ERR_TRUNCATED,
          "truncated weights");
    CHECK(tr_engine_validate(blob, len - 1u, ARENA_MAX, &info) == TR_ERR_TRUNCATED,
          "truncated tail");

    /* trailing garbage */
    memcpy(blob2, blob, len);
    blob2[len] = 0;
    CHECK(tr_engine_validate(blob2, len + 1u, ARENA_MAX, &info) == TR_ERR_FORMAT, "trailing byte");

    /* unknown layer kind: the first layer's kind byte follows 0x04 0x88 */
    memcpy(blob2, blob, len);
    for (size_t i = 0; i + 2u < len; i++) {
        if (blob2[i] == 0x04u && (blob2[i + 1] & 0xE0u) == 0x80u && blob2[i + 2] == 0x88u) {
            blob2[i + 3] = 0x17u; /* kind 23 */
            break;
        }
    }
    CHECK(tr_engine_validate(blob2, len, ARENA_MAX, &info) == TR_ERR_UNKNOWN_LAYER, "unknown layer");

    /* bad shape: zero-sized input, and a 2x2 input the cnn still maps but a
     * 5x5 window on a 1x1 map does not fit */
    {
        tr_shape bad = { 28, 28, 1 };
        size_t n = make_blob("cnn", bad, 10, 1, blob2, sizeof blob2);
        /* input key 2: [28, 28, 1] = 0x02 0x83 0x18 0x1C 0x18 0x1C 0x01 */
        for (size_t i = 0; i + 6u < n; i++) {
            if (blob2[i] == 0x02u && blob2[i + 1] == 0x83u && blob2[i + 6] == 0x01u) {
                blob2[i + 6] = 0x00u;
                break;
            }
        }
        CHECK(tr_engine_validate(blob2, n, ARENA_MAX, &info) == TR_ERR_SHAPE, "zero channels");
    }
    {
        tr_model_desc m;
        memset(&m, 0, sizeof m);
        m.input.h = 4;
        m.input.w = 4;
        m.input.c = 1;
        m.classes = 2;
        m.n_layers = 3;
        m.layers[0].kind = TR_LAYER_CONV2D;
        m.layers[0].units = 2;
        m.layers[0].kh = 5;
        m.layers[0].kw = 5;
        m.layers[0].stride = 1;
        m.layers[1].kind = TR_LAYER_DENSE;
        m.layers[1].units = 2;
        m.layers[2].kind = TR_LAYER_SOFTMAX;
        CHECK(tr_model_plan(&m, tr_engine_state_bytes()) == TR_ERR_SHAPE, "window too large");
        /* last layer not a softmax over the classes */
        m.layers[0].kh = 3;
        m.layers[0].kw = 3;
        m.layers[1].units = 3;
        CHECK(tr_model_plan(&m, tr_engine_state_bytes()) == TR_ERR_SHAPE, "classes mismatch");
        /* overflowing sizes */
        m.layers[1].units = 2;
        m.input.h = 65535;
        m.input.w = 65535;
        CHECK(tr_model_plan(&m, tr_engine_state_bytes()) == TR_ERR_OVERFLOW, "overflowing input");
        m.input.h = 70000;
        m.input.w = 1;
        CHECK(tr_model_plan(&m, tr_engine_state_bytes()) == TR_ERR_OVERFLOW, "dimension too big");
    }

    /* bad quantization: NaN scale, zero scale, weight -128, inverted range */
    {
        const tr_layer *L0 = &desc.layers[0];
        static const uint8_t nan_bits[4] = { 0x00, 0x00, 0xC0, 0x7F };
        memcpy(blob2, blob, len);
        memcpy(blob2 + woff + L0->s_off, nan_bits, 4);
        CHECK(tr_engine_validate(blob2, len, ARENA_MAX, &info) == TR_ERR_QUANT, "NaN scale");
        memcpy(blob2, blob, len);
        memset(blob2 + woff + L0->s_off, 0, 4);
        CHECK(tr_engine_validate(blob2, len, ARENA_MAX, &info) == TR_ERR_QUANT, "zero scale");
        memcpy(blob2, blob, len);
        blob2[woff + L0->w_off + 3u] = 0x80u;
        CHECK(tr_engine_validate(blob2, len, ARENA_MAX, &info) == TR_ERR_QUANT, "weight -128");
        memcpy(blob2, blob, len);
        blob2[woff + L0->p_off + 7u] = 0xC0u; /* max = -x */
        CHECK(tr_engine_validate(blob2, len, ARENA_MAX, &info) == TR_ERR_QUANT, "negative max");
    }

    /* weights blob header: wrong magic */
    memcpy(blob2, blob, len);
    blob2[woff] ^= 0xFFu;
    CHECK(tr_engine_validate(blob2, len, ARENA_MAX, &info) == TR_ERR_FORMAT, "weights magic");

    /* other format version */
    memcpy(blob2, blob, len);
    CHECK(blob2[1] == 0x01u && blob2[2] == 0x01u, "version key first");
    blob2[2] = 0x09u;
    CHECK(tr_engine_validate(blob2, len, ARENA_MAX, &info) == TR_ERR_UNSUPPORTED, "version");

    /* the seed (last pair, 07 01) in an 8-byte head: a value that fits 32
     * bits is read, one past 32 bits is a format defect */
    {
        static const uint8_t seed_small[9] = { 0x1Bu, 0, 0, 0, 0, 0, 0, 0, 5u };
        static const uint8_t seed_big[9] = { 0x1Bu, 0, 0, 0, 1u, 0, 0, 0, 0 };
        tr_model_desc m;
        tr_model_blob mb;
        CHECK(blob[len - 2u] == 0x07u && blob[len - 1u] == 0x01u, "seed key last");
        memcpy(blob2, blob, len - 1u);
        memcpy(blob2 + len - 1u, seed_small, sizeof seed_small);
        CHECK(tr_model_parse(blob2, len + 8u, &m, &mb) == TR_OK && mb.seed == 5u, "64-bit head seed");
        memcpy(blob2 + len - 1u, seed_big, sizeof seed_big);
        CHECK(tr_model_parse(blob2, len + 8u, &m, &mb) == TR_ERR_FORMAT, "seed past 32 bits");
        CHECK(tr_model_parse(blob2, len + 7u, &m, &mb) == TR_ERR_TRUNCATED, "seed cut short");
    }

    /* too big for the arena: NOMEM, and the bytes needed reported */
    memset(&info, 0, sizeof info);
    st = tr_engine_validate(blob, len, 4096u, &info);
    CHECK(st == TR_ERR_NOMEM, "nomem %d", st);
    CHECK(info.train_bytes > 4096u && info.train_bytes <= ARENA_MAX, "train_bytes %u",
          (unsigned)info.train_bytes);
    {
        tr_engine *e = NULL;
        uint8_t *arena = (uint8_t *)arena_words;
        CHECK(tr_engine_load(&e, blob, len, arena, info.train_bytes - 1u, &info) == TR_ERR_NOMEM &&
                  e == NULL,
              "load into too small an arena");
        CHECK(tr_engine_load(&e, blob, len, arena, info.train_bytes, &info) == TR_OK,
              "load into exactly train_bytes");
    }
}

/* Trains `steps` samples; returns the engine (arena guarded by the caller). */
static tr_engine *run(uint8_t *arena, size_t arena_bytes, const uint8_t *b, size_t len,
                      const tr_train_params *p, uint32_t steps, uint32_t data_seed,
                      uint32_t *updated, uint32_t *total, uint32_t *correct_last)
{
    tr_engine *e = NULL;
    tr_model_info info;
    uint32_t rng = tr_rng_seed(data_seed);
    tr_status st = tr_engine_load(&e, b, len, arena, arena_bytes, &info);
    CHECK(st == TR_OK, "load %d", st);
    if (st != TR_OK) {
        return NULL;
    }
    *updated = 0;
    *total = 0;
    *correct_last = 0;
    for (uint32_t s = 0; s < steps; s++) {
        uint32_t label;
        tr_step_result r;
        next_sample(&rng, info.input_bytes, &label, info.classes);
        st = tr_engine_train(e, sample, label, p, &r);
        CHECK(st == TR_OK, "train step %u: %d", (unsigned)s, st);
        if (st != TR_OK) {
            return e;
        }
        *updated += r.channels_updated;
        *total += r.channels_total;
        if (s >= steps - 100u) {
            *correct_last += r.correct;
        }
    }
    return e;
}

static void test_training(const char *name, tr_shape in, uint32_t classes)
{
    uint8_t *a1 = (uint8_t *)arena_words;
    uint8_t *a2 = (uint8_t *)arena_words; /* run 2 reuses it, other fill */
    tr_model_info info;
    size_t len = make_blob(name, in, classes, 3, blob, sizeof blob);
    tr_train_params p;
    uint32_t upd, tot, corr, upd_s, tot_s, corr_s;
    const uint8_t *w1, *w2;
    size_t n1, n2;
    tr_engine *e1, *e2;
    size_t need;

    CHECK(tr_engine_validate(blob, len, ARENA_MAX, &info) == TR_OK, "%s valid", name);
    need = info.train_bytes;
    memset(&p, 0, sizeof p);
    p.lr_ppm = 20000;
    p.lambda_min_ppm = 1000000;
    p.lambda_max_ppm = 1000000;
    p.options = TR_TRAIN_QAS | TR_TRAIN_STOCHASTIC;

    /* run 1: guarded arena of exactly train_bytes */
    memset(a1, GUARD_BYTE, need + 2u * GUARD);
    e1 = run(a1 + GUARD, need, blob, len, &p, 400, 11, &upd, &tot, &corr);
    if (e1 == NULL) {
        return;
    }
    CHECK(guards_intact(a1, need), "%s: bytes written outside the arena", name);
    CHECK(tr_engine_arena_peak(e1) <= need, "%s: peak %u > planned %u", name,
          (unsigned)tr_engine_arena_peak(e1), (unsigned)need);
    CHECK(tr_engine_arena_peak(e1) >= info.infer_bytes, "%s: peak %u < inference %u", name,
          (unsigned)tr_engine_arena_peak(e1), (unsigned)info.infer_bytes);
    CHECK(upd == tot && tot > 0, "%s: dense update touches every channel", name);
    CHECK(corr >= 60u, "%s: learns the synthetic task (%u/100 correct)", name, (unsigned)corr);
    CHECK(tr_engine_weights(e1, &w1, &n1) == TR_OK && n1 == info.weights_bytes, "%s weights",
          name);
    CHECK(memcmp(w1, weights, n1) != 0, "%s: training changed the weights", name);
    memcpy(weights_run1, w1, n1);

    /* run 2: same blob, seed and stream, another arena: the same bytes */
    memset(a2, 0x5A, need + 2u * GUARD);
    e2 = run(a2 + GUARD, need, blob, len, &p, 400, 11, &upd, &tot, &corr);
    if (e2 == NULL) {
        return;
    }
    CHECK(tr_engine_weights(e2, &w2, &n2) == TR_OK && n2 == n1, "%s weights 2", name);
    CHECK(memcmp(weights_run1, w2, n1) == 0, "%s: two runs differ", name);

    /* another sample stream gives other weights (the check above can fail) */
    e2 = run(a2 + GUARD, need, blob, len, &p, 400, 12, &upd, &tot, &corr);
    CHECK(e2 != NULL && tr_engine_weights(e2, &w2, &n2) == TR_OK &&
              memcmp(weights_run1, w2, n1) != 0,
          "%s: another stream gives other weights", name);

    /* sparse update at lambda 0.1..1.0: fewer channels, still learns */
    p.lambda_min_ppm = 100000;
    memset(a1, GUARD_BYTE, need + 2u * GUARD);
    e1 = run(a1 + GUARD, need, blob, len, &p, 400, 11, &upd_s, &tot_s, &corr_s);
    CHECK(e1 != NULL && guards_intact(a1, need), "%s sparse: guards", name);
    CHECK(tot_s == tot && upd_s * 4u < tot_s * 3u, "%s sparse: %u of %u channels", name,
          (unsigned)upd_s, (unsigned)tot_s);
    CHECK(corr_s >= 50u, "%s sparse learns (%u/100)", name, (unsigned)corr_s);

    /* every optimizer mode and mask stays in the arena */
    {
        const uint32_t modes[] = { 0u, TR_TRAIN_STOCHASTIC, TR_TRAIN_SGD, TR_TRAIN_QAS };
        for (uint32_t k = 0; k < 4u; k++) {
            p.options = modes[k];
            p.lr_ppm = (modes[k] & (TR_TRAIN_QAS | TR_TRAIN_SGD)) ? 20000u : 1000u;
            p.trainable = (k == 3u) ? (1u << (desc.n_layers - 2u)) : 0u;
            p.bias_only = (k == 2u) ? 1u : 0u;
            memset(a1, GUARD_BYTE, need + 2u * GUARD);
            e1 = run(a1 + GUARD, need, blob, len, &p, 120, 5, &upd, &tot, &corr);
            CHECK(e1 != NULL && guards_intact(a1, need), "%s mode %u: guards", name,
                  (unsigned)k);
        }
    }

    /* inference fits infer_bytes and does not touch the weights */
    {
        int8_t logits[16];
        tr_step_result r;
        memset(a1, GUARD_BYTE, need + 2u * GUARD);
        p.options = TR_TRAIN_QAS;
        p.trainable = 0;
        p.bias_only = 0;
        e1 = run(a1 + GUARD, need, blob, len, &p, 100, 3, &upd, &tot, &corr);
        if (e1 != NULL && tr_engine_weights(e1, &w1, &n1) == TR_OK) {
            memcpy(weights_run1, w1, n1);
            CHECK(tr_engine_infer(e1, sample, 0, &r, classes <= 16u ? logits : NULL) == TR_OK,
                  "infer");
            CHECK(r.predicted < classes, "prediction in range");
            CHECK(memcmp(weights_run1, w1, n1) == 0, "%s: inference changed weights", name);
            /* set_weights round trip, and a bad blob is refused */
            CHECK(tr_engine_set_weights(e1, weights, n1) == TR_OK, "set weights");
            CHECK(memcmp(w1, weights, n1) == 0, "set weights took effect");
            weights_run1[0] ^= 1u;
            CHECK(tr_engine_set_weights(e1, weights_run1, n1) == TR_ERR_FORMAT,
                  "bad weights refused");
            CHECK(tr_engine_set_weights(e1, weights, n1 - 4u) == TR_ERR_SHAPE, "short weights");
            CHECK(guards_intact(a1, need), "%s infer: guards", name);
        }
    }
}

/* A sparse step (lambda 0.1): per hidden layer at most k channels change their
 * weights, the classifier updates densely, and channels left out still learn
 * their bias. The weighted draw gives every channel with an error its turn. */
static void test_sparse_step(void)
{
    uint8_t *arena = (uint8_t *)arena_words;
    tr_shape in = { 28, 28, 1 };
    size_t len = make_blob("cnn", in, 10, 5, blob, sizeof blob);
    tr_model_info info;
    tr_engine *e = NULL;
    tr_train_params p;
    uint32_t rng = tr_rng_seed(21);
    uint32_t bias_only_changes = 0, weight_changes = 0;
    static uint32_t picked[64]; /* weight updates per channel of conv2 (layer 2) */
    const tr_model_desc *m;
    const uint8_t *w;
    size_t wn;

    memset(picked, 0, sizeof picked);
    memset(&p, 0, sizeof p);
    p.lr_ppm = 20000;
    p.lambda_min_ppm = 100000;
    p.lambda_max_ppm = 100000;
    p.options = TR_TRAIN_QAS | TR_TRAIN_STOCHASTIC;
    CHECK(tr_engine_load(&e, blob, len, arena, ARENA_MAX, &info) == TR_OK, "sparse: load");
    if (e == NULL) {
        return;
    }
    m = tr_engine_desc(e);
    for (uint32_t s = 0; s < 60u; s++) {
        uint32_t label;
        tr_step_result r;
        tr_engine_weights(e, &w, &wn);
        memcpy(weights_run1, w, wn);
        next_sample(&rng, info.input_bytes, &label, info.classes);
        CHECK(tr_engine_train(e, sample, label, &p, &r) == TR_OK, "sparse step %u", (unsigned)s);
        for (uint32_t i = 0; i < m->n_layers; i++) {
            const tr_layer *L = &m->layers[i];
            uint32_t changed = 0, last = 1;
            if (!tr_layer_has_params(L)) {
                continue;
            }
            for (uint32_t j = i + 1u; j < m->n_layers; j++) {
                last = last && !tr_layer_has_params(&m->layers[j]);
            }
            for (uint32_t c = 0; c < L->channels; c++) {
                int wch = memcmp(weights_run1 + L->w_off + c * L->fan_in, w + L->w_off + c * L->fan_in,
                                 L->fan_in) != 0;
                int bch = memcmp(weights_run1 + L->b_off + 4u * c, w + L->b_off + 4u * c, 4) != 0;
                changed += (uint32_t)wch;
                bias_only_changes += (uint32_t)(!wch && bch && !last);
                if (wch && i == 2u && c < 64u) {
                    picked[c]++;
                }
            }
            weight_changes += changed;
            if (!last) {
                uint32_t k = tr_sparse_k(L->channels, 0.1f, 0.1f, 0.0f);
                CHECK(changed <= k, "sparse: layer %u changed %u channels, k = %u", (unsigned)i,
                      (unsigned)changed, (unsigned)k);
            }
        }
    }
    CHECK(weight_changes > 0, "sparse steps change weights");
    CHECK(bias_only_changes > 0, "channels left out of a sparse step still learn their bias");
    /* the second conv layer (16 channels, k = 1): over 60 steps the update
     * goes to several channels, not always to the one of largest error */
    {
        uint32_t distinct = 0;
        for (uint32_t c = 0; c < m->layers[2].channels && c < 64u; c++) {
            distinct += picked[c] > 0u;
        }
        CHECK(m->layers[2].kind == TR_LAYER_CONV2D && distinct >= 4u,
              "sparse: %u distinct channels of conv2 updated", (unsigned)distinct);
    }
}

/* The weighted draw: exactly k, zero errors last, frequency follows magnitude,
 * deterministic for one PRNG state; a plain top-k always picks the same. */
static void test_weighted_select(void)
{
    static const uint32_t mag0[8] = { 0, 100, 120, 140, 160, 180, 200, 220 };
    uint32_t count[8] = { 0 };
    uint32_t mag[8];
    uint8_t sel[8], sel2[8];
    uint32_t rng = tr_rng_seed(7), rng2;
    for (uint32_t t = 0; t < 4000u; t++) {
        uint32_t n = 0;
        memcpy(mag, mag0, sizeof mag);
        rng2 = rng;
        tr_sparse_select_weighted(mag, 8, 2, &rng, sel);
        for (uint32_t c = 0; c < 8u; c++) {
            n += sel[c];
            count[c] += sel[c];
        }
        CHECK(n == 2u, "weighted: %u selected", (unsigned)n);
        if (t == 0u) {
            memcpy(mag, mag0, sizeof mag);
            tr_sparse_select_weighted(mag, 8, 2, &rng2, sel2);
            CHECK(memcmp(sel, sel2, 8) == 0 && rng2 == rng, "weighted: same PRNG state, same pick");
        }
    }
    CHECK(count[0] == 0u, "weighted: a zero error is never picked over a nonzero one");
    for (uint32_t c = 1; c < 8u; c++) {
        CHECK(count[c] > 0u, "weighted: channel %u never picked", (unsigned)c);
        CHECK(c < 2u || count[c] + 40u >= count[c - 1u], "weighted: %u picked %u, %u picked %u",
              (unsigned)c, (unsigned)count[c], (unsigned)(c - 1u), (unsigned)count[c - 1u]);
    }
    CHECK(count[7] > count[1] * 2u, "weighted: large errors picked more often (%u vs %u)",
          (unsigned)count[7], (unsigned)count[1]);
    /* with only one nonzero channel and k = 3, that channel and then index order */
    {
        uint32_t one[5] = { 0, 0, 9, 0, 0 };
        tr_sparse_select_weighted(one, 5, 3, &rng, sel);
        CHECK(sel[2] && sel[0] && sel[1] && !sel[3] && !sel[4], "weighted: zero keys by index");
    }
    memcpy(mag, mag0, sizeof mag);
    tr_sparse_select(mag, 8, 2, sel);
    CHECK(sel[6] && sel[7] && !sel[5], "plain top-k picks the two largest");
}

int main(void)
{
    tr_shape mnist = { 28, 28, 1 };
    tr_shape small = { 10, 12, 3 };
    test_valid_and_info();
    test_defects();
    test_training("cnn", mnist, 10);
    test_training("mlp", (tr_shape){ 16, 16, 1 }, 10);
    test_training("dscnn", small, 4);
    test_training("cnn", small, 5);
    test_weighted_select();
    test_sparse_step();
    return tr_test_done("test_model");
}
