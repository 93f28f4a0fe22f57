/* The A/B model slots (core/store/tr_slots.h) on an emulated flash, alone
 * and behind the dispatcher (port.slots): a committed MODEL or WEIGHTS is
 * kept, a restart loads the newest valid copy, and a power cut after any
 * flash operation of a save (the operation itself torn half way) leaves
 * the previous copy live. */
#include <stdint.h>
#include <string.h>

#include "cbor/tr_cbor.h"
#include "crypto/tr_sha256.h"
#include "engine/tr_engine.h"
#include "engine/tr_engine_desc.h"
#include "model/tr_zoo.h"
#include "proto/tr_frame.h"
#include "proto/tr_handlers.h"
#include "store/tr_slots.h"
#include "../../tools/model_writer/trainer_model.h"
#include "proto_test.h"

#define MAX_FRAME 512u
#define SLOTS 8u
#define SAMPLE_MAX 128u
#define BLOB_MAX 8192u
#define ARENA (64u * 1024u)
#include "device_fixture.h"

/* ---- emulated flash: 0xFF erased, writes only clear bits, a cut stops it ---- */

#define SLOT_BYTES (20u * 1024u)
#define ALIGN 8u

static uint8_t flash[2][SLOT_BYTES];
static unsigned ops;        /* flash operations since the counter was cleared */
static unsigned cut_at;     /* 0: no cut; k: operation k is torn, then the power is off */
static int dead;

static int power(void)
{
    if (dead) {
        return 0;
    }
    ops++;
    if (cut_at != 0u && ops == cut_at) {
        dead = 1;
        return -1;   /* this operation is torn */
    }
    return 1;
}

static tr_status f_erase(void *ctx, unsigned slot)
{
    int p = power();

    (void)ctx;
    if (p == 0) {
        return TR_ERR_STATE;
    }
    memset(flash[slot], 0xFF, p < 0 ? SLOT_BYTES / 2u : SLOT_BYTES);
    return p < 0 ? TR_ERR_STATE : TR_OK;
}

static tr_status f_write(void *ctx, unsigned slot, uint32_t off, const uint8_t *d, size_t n)
{
    int p = power();
    size_t i, m;

    (void)ctx;
    if (off % ALIGN != 0u || n % ALIGN != 0u || off + n > SLOT_BYTES) {
        g_failures++;
        printf("FAIL misaligned or out of the slot: %u+%u\n", (unsigned)off, (unsigned)n);
        return TR_ERR_ARG;
    }
    if (p == 0) {
        return TR_ERR_STATE;
    }
    m = p < 0 ? n / 2u : n;
    for (i = 0; i < m; i++) {
        flash[slot][off + i] &= d[i];   /* NOR: programming only clears bits */
    }
    return p < 0 ? TR_ERR_STATE : TR_OK;
}

static tr_status f_read(void *ctx, unsigned slot, uint32_t off, uint8_t *d, size_t n)
{
    (void)ctx;
    if (off + n > SLOT_BYTES) {
        return TR_ERR_ARG;
    }
    memcpy(d, flash[slot] + off, n);
    return TR_OK;
}

static const tr_slots g_slots = {NULL, SLOT_BYTES, ALIGN, f_erase, f_write, f_read};

static void power_on(unsigned cut)
{
    ops = 0;
    cut_at = cut;
    dead = 0;
}

/* ---- models ---- */

static uint8_t model_a[BLOB_MAX], model_b[BLOB_MAX], weights_a[BLOB_MAX], weights_b[BLOB_MAX];
static size_t len_a, len_b, wlen;
static uint8_t sha_a[32], sha_b[32];

/* An 8x8 MLP of 4 classes from seed: its blob, SHA-256 and own weights. */
static size_t make_model(uint32_t seed, uint8_t *out, uint8_t sha[32], uint8_t *weights)
{
    static uint8_t w[BLOB_MAX];
    static tr_model_desc desc;
    tr_shape in = {8, 8, 1};
    size_t n = 0;

    if (tr_zoo_desc("mlp", in, 4, &desc) == TR_OK && tr_model_plan(&desc, tr_engine_state_bytes()) == TR_OK &&
        tr_model_init_weights(&desc, seed, w, desc.weights_bytes) == TR_OK) {
        n = tr_trainer_encode_model(&desc, w, desc.weights_bytes, "mlp", seed, out, BLOB_MAX);
        wlen = desc.weights_bytes;
        memcpy(weights, w, wlen);
    }
    tr_sha256(out, n, sha);
    return n;
}

/* ---- the slot layer alone ---- */

static void test_slots_alone(void)
{
    tr_slot_info info;
    uint8_t w2[BLOB_MAX], back[BLOB_MAX];
    unsigned total, k, old_seen = 0, new_seen = 0;

    memset(flash, 0xFF, sizeof flash);
    power_on(0);
    CHECK(tr_slots_newest(&g_slots, &info) == TR_ERR_STATE, "erased flash holds nothing");
    CHECK(tr_slots_save(&g_slots, model_a, (uint32_t)len_a, sha_a, NULL, 0, &info) == TR_OK &&
              info.seq == 1u && info.slot == 0u, "first save: slot A, sequence 1");
    CHECK(tr_slots_newest(&g_slots, &info) == TR_OK && info.seq == 1u && info.model_bytes == len_a &&
              info.weights_bytes == 0u && memcmp(info.model_sha, sha_a, 32) == 0, "found again");
    CHECK(tr_slots_read(&g_slots, &info, 0, back, len_a) == TR_OK && memcmp(back, model_a, len_a) == 0,
          "the model reads back byte for byte");

    /* model B over A, cut after every operation */
    power_on(0);
    CHECK(tr_slots_save(&g_slots, model_b, (uint32_t)len_b, sha_b, NULL, 0, &info) == TR_OK && info.slot == 1u,
          "second save goes to slot B");
    total = ops;
    CHECK(total >= 3u, "a save is an erase, payload writes and a header write");
    for (k = 1; k <= total; k++) {
        memset(flash, 0xFF, sizeof flash);
        power_on(0);
        tr_slots_save(&g_slots, model_a, (uint32_t)len_a, sha_a, NULL, 0, NULL);
        power_on(k);
        CHECK(tr_slots_save(&g_slots, model_b, (uint32_t)len_b, sha_b, NULL, 0, NULL) != TR_OK,
              "a cut save fails");
        power_on(0);
        CHECK(tr_slots_newest(&g_slots, &info) == TR_OK, "after a cut one copy is valid");
        if (memcmp(info.model_sha, sha_a, 32) == 0) {
            old_seen++;
            CHECK(info.seq == 1u, "the old copy keeps its sequence");
        } else {
            new_seen++;
        }
        CHECK(tr_slots_read(&g_slots, &info, 0, back, info.model_bytes) == TR_OK &&
                  memcmp(back, memcmp(info.model_sha, sha_a, 32) == 0 ? model_a : model_b,
                         info.model_bytes) == 0, "the valid copy is whole");
    }
    /* the header write is the last operation: a cut anywhere leaves A live */
    CHECK(old_seen == total && new_seen == 0u, "every cut of a save leaves the previous model live");

    /* weights for A, copied from its slot, cut after every operation */
    for (k = 0; k < wlen; k++) {
        w2[k] = (uint8_t)(weights_a[k] ^ 0x5Au);
    }
    memset(flash, 0xFF, sizeof flash);
    power_on(0);
    tr_slots_save(&g_slots, model_a, (uint32_t)len_a, sha_a, NULL, 0, NULL);
    CHECK(tr_slots_save_weights(&g_slots, sha_b, w2, (uint32_t)wlen, NULL) == TR_ERR_STATE,
          "weights for another model than the stored one are refused");
    power_on(0);
    CHECK(tr_slots_save_weights(&g_slots, sha_a, w2, (uint32_t)wlen, &info) == TR_OK && info.seq == 2u &&
              info.weights_bytes == wlen, "weights saved with the model copied");
    total = ops;
    for (k = 1; k <= total; k++) {
        memset(flash, 0xFF, sizeof flash);
        power_on(0);
        tr_slots_save(&g_slots, model_a, (uint32_t)len_a, sha_a, NULL, 0, NULL);
        power_on(k);
        tr_slots_save_weights(&g_slots, sha_a, w2, (uint32_t)wlen, NULL);
        power_on(0);
        CHECK(tr_slots_newest(&g_slots, &info) == TR_OK && info.seq == 1u && info.weights_bytes == 0u,
              "a cut weights save leaves the model with its own weights");
    }
    /* a third save reuses slot A: B (sequence 2) stays newest until it completes */
    memset(flash, 0xFF, sizeof flash);
    power_on(0);
    tr_slots_save(&g_slots, model_a, (uint32_t)len_a, sha_a, NULL, 0, NULL);
    tr_slots_save(&g_slots, model_b, (uint32_t)len_b, sha_b, NULL, 0, NULL);
    CHECK(tr_slots_save(&g_slots, model_a, (uint32_t)len_a, sha_a, NULL, 0, &info) == TR_OK && info.slot == 0u &&
              info.seq == 3u, "the third save overwrites the older slot");
    flash[0][TR_SLOT_HEADER_BYTES + 10] ^= 0x01;   /* one bit of A's payload flips */
    CHECK(tr_slots_newest(&g_slots, &info) == TR_OK && info.seq == 2u && memcmp(info.model_sha, sha_b, 32) == 0,
          "a payload that fails its SHA-256 is skipped for the other slot");
}

/* ---- behind the dispatcher ---- */

static uint16_t g_seq;

static void send(uint8_t type, const uint8_t *body, size_t n)
{
    tr_frame f = {1, type, 0, 0, body, n};
    static uint8_t w[TR_FRAME_WIRE_MAX(MAX_FRAME)];
    size_t wl;

    f.seq = ++g_seq;
    if (tr_frame_encode(&f, w, sizeof w, &wl) == TR_OK) {
        tr_device_feed(&fixture_dev, w, wl);
    }
}

static void upload(int weights, const uint8_t *blob, size_t len)
{
    uint8_t body[MAX_FRAME], sha[32];
    tr_cbor_writer w;
    size_t off;

    tr_sha256(blob, len, sha);
    tr_cbor_writer_init(&w, body, sizeof body);
    tr_cbor_write_map(&w, 2);
    tr_cbor_write_uint(&w, 1);
    tr_cbor_write_uint(&w, len);
    tr_cbor_write_uint(&w, 2);
    tr_cbor_write_bytes(&w, sha, 32);
    send(weights ? TR_MSG_WEIGHTS_BEGIN : TR_MSG_MODEL_BEGIN, body, w.len);
    for (off = 0; off < len; off += 256u) {
        tr_cbor_writer_init(&w, body, sizeof body);
        tr_cbor_write_map(&w, 2);
        tr_cbor_write_uint(&w, 1);
        tr_cbor_write_uint(&w, off);
        tr_cbor_write_uint(&w, 2);
        tr_cbor_write_bytes(&w, blob + off, len - off < 256u ? len - off : 256u);
        send(weights ? TR_MSG_WEIGHTS_CHUNK : TR_MSG_MODEL_CHUNK, body, w.len);
    }
    tr_cbor_writer_init(&w, body, sizeof body);
    tr_cbor_write_map(&w, 1);
    tr_cbor_write_uint(&w, 1);
    tr_cbor_write_bytes(&w, sha, 32);
    send(weights ? TR_MSG_WEIGHTS_COMMIT : TR_MSG_MODEL_COMMIT, body, w.len);
}

static uint64_t clock_ns;
static uint64_t counter(void)
{
    return ++clock_ns;
}

static void boot(void)
{
    tr_port port;

    memset(&port, 0, sizeof port);
    port.tx = cap_tx;
    port.counter = counter;
    port.info.board = "slots-board";
    port.info.counter = "ns";
    port.boot_id = 7;
    port.slots = &g_slots;
    sent_len = 0;
    CHECK(tr_port_start(&fixture, &port) == TR_OK, "start");
}

static int live_weights_are(const uint8_t *w, size_t n)
{
    uint8_t want[32], got[32];
    uint32_t bytes = 0;

    tr_sha256(w, n, want);
    return tr_device_weights_sha(&fixture_dev, got, &bytes) == TR_OK && bytes == n &&
           memcmp(want, got, 32) == 0;
}

/* The body of the last frame the device sent (after request type t). */
static int last_body_head(uint8_t t, uint8_t *head)
{
    static uint8_t raw[MAX_FRAME];
    tr_frame_rx rx;
    tr_frame f;
    size_t pos = 0;
    int found = 0;

    sent_len = 0;
    send(t, NULL, 0);
    tr_frame_rx_init(&rx, raw, sizeof raw);
    while (pos < sent_len) {
        tr_frame_event ev = TR_FRAME_NONE;
        size_t used = 0;

        tr_frame_feed(&rx, sent + pos, sent_len - pos, &used, &ev);
        pos += used;
        if (ev == TR_FRAME_OK && tr_frame_parse(rx.buf, rx.len, &f) == TR_OK && f.type == t && f.body_len > 0u) {
            *head = f.body[0];
            found = 1;
        }
        if (used == 0u) {
            break;
        }
    }
    return found;
}

static void test_device(void)
{
    const uint8_t *w2 = weights_b;   /* B's weights fit A's layout: same shapes */
    unsigned total, k;

    memset(flash, 0xFF, sizeof flash);
    power_on(0);
    boot();
    CHECK(!fixture_dev.have_model && fixture_dev.boot_seq == 0u && fixture_dev.stored_seq == 0u,
          "an erased flash boots without a model");
    {
        uint8_t head = 0;

        CHECK(last_body_head(TR_MSG_HELLO, &head) && head == 0xB3u, "HELLO with slots has 19 keys");
        CHECK(last_body_head(TR_MSG_STATS, &head) && head == 0xACu, "STATS with slots has 12 keys");
    }
    upload(0, model_a, len_a);
    CHECK(fixture_dev.have_model && fixture_dev.stored_seq == 1u && fixture_dev.store_faults == 0u,
          "a committed MODEL is stored");
    boot();
    CHECK(fixture_dev.have_model && fixture_dev.boot_seq == 1u && memcmp(fixture_dev.model_sha, sha_a, 32) == 0 &&
              live_weights_are(weights_a, wlen), "a restart loads it");
    upload(1, w2, wlen);
    CHECK(fixture_dev.stored_seq == 2u && live_weights_are(w2, wlen), "a committed WEIGHTS is stored");
    boot();
    CHECK(fixture_dev.boot_seq == 2u && live_weights_are(w2, wlen), "a restart loads the model with those weights");

    /* MODEL B, cut after every flash operation of its store, then a restart */
    power_on(0);
    upload(0, model_b, len_b);
    total = ops;
    for (k = 1; k <= total; k++) {
        memset(flash, 0xFF, sizeof flash);
        power_on(0);
        boot();
        upload(0, model_a, len_a);
        upload(1, w2, wlen);
        power_on(k);
        upload(0, model_b, len_b);
        CHECK(memcmp(fixture_dev.model_sha, sha_b, 32) == 0, "B is live until the power goes");
        power_on(0);
        boot();
        CHECK(fixture_dev.have_model && fixture_dev.boot_seq == 2u && memcmp(fixture_dev.model_sha, sha_a, 32) == 0 &&
                  live_weights_are(w2, wlen), "after the cut the previous model and weights are live");
    }
    CHECK(total > 3u, "a store takes several flash operations");
}

int main(void)
{
    len_a = make_model(3, model_a, sha_a, weights_a);
    len_b = make_model(4, model_b, sha_b, weights_b);
    CHECK(len_a > 0u && len_b > 0u && memcmp(sha_a, sha_b, 32) != 0, "two models");
    test_slots_alone();
    test_device();
    TEST_DONE("test_slots");
}
