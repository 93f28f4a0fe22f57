/* Every handler through the dispatcher, with byte arrays and no I/O: the
 * port's tx writes into a buffer that the test decodes with the frame codec. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cbor/tr_cbor.h"
#include "crypto/tr_sha256.h"
#include "engine/tr_engine.h"
#include "engine/tr_engine_desc.h"
#include "model/tr_zoo.h"
#include "proto/tr_device.h"
#include "proto/tr_handlers.h"
#include "../../tools/model_writer/trainer_model.h"
#include "proto_test.h"

#define MAX_FRAME 1024u
#define SLOTS 16u
#define SAMPLE_MAX 256u
#define BLOB_MAX (64u * 1024u)
#define ARENA (256u * 1024u)

#include "device_fixture.h"

/* What the device sent (sent[], sent_len of the fixture) is decoded into
 * frames on demand. */
static uint64_t fake_clock;
static int resets;

/* When set, the reading with this number takes the engine away (an engine
 * failure inside a TRAIN, which validation cannot cause). */
static int fail_at_reading;
static tr_engine *taken_engine;

static uint64_t counter(void)
{
    if (fail_at_reading > 0 && --fail_at_reading == 0) {
        taken_engine = fixture_dev.engine;
        fixture_dev.engine = NULL;
    }
    return fake_clock += 1000u;   /* each reading 1000 units later */
}

static tr_status do_reset(void)
{
    resets++;
    return TR_OK;
}

/* Frames the device sent since the last call. */
static uint8_t frames[8][MAX_FRAME];
static size_t frame_len[8];

static int collect(void)
{
    uint8_t buf[MAX_FRAME];
    tr_frame_rx rx;
    size_t pos = 0, used;
    tr_frame_event ev;
    int n = 0;

    tr_frame_rx_init(&rx, buf, sizeof buf);
    while (pos < sent_len) {
        tr_frame_feed(&rx, sent + pos, sent_len - pos, &used, &ev);
        pos += used;
        if (ev == TR_FRAME_OK && n < 8) {
            memcpy(frames[n], rx.buf, rx.len);
            frame_len[n++] = rx.len;
        }
        CHECK(ev != TR_FRAME_BAD, "device frames decode");
    }
    sent_len = 0;
    return n;
}

static uint16_t g_seq;

/* Sends a request, returns the one response frame parsed into *resp. */
static int request(uint8_t type, const uint8_t *body, size_t n, tr_frame *resp, tr_body *rb)
{
    tr_frame f;
    uint8_t w[TR_FRAME_WIRE_MAX(MAX_FRAME)];
    size_t wl;
    int got;

    f.ver = 1;
    f.type = type;
    f.seq = ++g_seq;
    f.flags = 0;
    f.body = body;
    f.body_len = n;
    if (tr_frame_encode(&f, w, sizeof w, &wl) != TR_OK) {
        return 0;
    }
    tr_device_feed(&fixture_dev, w, wl);
    got = collect();
    if (got != 1 || tr_frame_parse(frames[0], frame_len[0], resp) != TR_OK) {
        return 0;
    }
    CHECK(resp->seq == g_seq && (resp->flags & TR_FRAME_FLAG_RESP) != 0, "response to this request");
    if (tr_body_parse(rb, resp->body, resp->body_len) != TR_OK) {
        return 0;
    }
    return 1;
}

static uint32_t err_code(const tr_frame *r, const tr_body *b)
{
    uint32_t c = 0;

    if (r->type != TR_MSG_ERROR) {
        return 0;
    }
    tr_body_u32(b, 1, &c);
    return c;
}

/* Body builder. */
static uint8_t req_buf[MAX_FRAME];
static tr_cbor_writer req;
static void body_begin(size_t pairs)
{
    tr_cbor_writer_init(&req, req_buf, sizeof req_buf);
    tr_cbor_write_map(&req, pairs);
}
static void kv_u(unsigned k, uint64_t v)
{
    tr_cbor_write_uint(&req, k);
    tr_cbor_write_uint(&req, v);
}
static void kv_b(unsigned k, const uint8_t *p, size_t n)
{
    tr_cbor_write_uint(&req, k);
    tr_cbor_write_bytes(&req, p, n);
}

static void kv_bool(unsigned k, int v)
{
    tr_cbor_write_uint(&req, k);
    tr_cbor_write_bool(&req, v);
}

static uint8_t model_blob[BLOB_MAX];
static uint8_t weights0[BLOB_MAX];
static tr_model_desc desc;

static size_t make_model_classes(uint32_t classes)
{
    tr_shape in = {8, 8, 1};

    if (tr_zoo_desc("mlp", in, classes, &desc) != TR_OK || tr_model_plan(&desc, tr_engine_state_bytes()) != TR_OK ||
        tr_model_init_weights(&desc, 7, weights0, desc.weights_bytes) != TR_OK) {
        return 0;
    }
    return tr_trainer_encode_model(&desc, weights0, desc.weights_bytes, "mlp", 7, model_blob,
                                   sizeof model_blob);
}

/* Uploads blob with BEGIN/CHUNK/COMMIT of the given family (0x10 or 0x20),
 * chunks in reverse order with one retransmit. Returns the COMMIT response. */
static int upload(uint8_t base, const uint8_t *blob, size_t n, tr_frame *r, tr_body *rb)
{
    uint8_t sha[32];
    size_t chunk = 256, off;
    long i;

    tr_sha256(blob, n, sha);
    body_begin(2);
    kv_u(1, n);
    kv_b(2, sha, 32);
    if (!request(base, req_buf, req.len, r, rb) || r->type != base) {
        return 0;
    }
    for (i = (long)((n + chunk - 1) / chunk) - 1; i >= 0; i--) {
        off = (size_t)i * chunk;
        body_begin(2);
        kv_u(1, off);
        kv_b(2, blob + off, n - off < chunk ? n - off : chunk);
        if (!request((uint8_t)(base + 1), req_buf, req.len, r, rb) || r->type != base + 1) {
            return 0;
        }
        if (i == 0) {   /* a retransmit is harmless */
            request((uint8_t)(base + 1), req_buf, req.len, r, rb);
        }
    }
    body_begin(1);
    kv_b(1, sha, 32);
    return request((uint8_t)(base + 2), req_buf, req.len, r, rb);
}

static size_t make_model(void)
{
    return make_model_classes(4);
}

static void test_link(void)
{
    tr_frame r;
    tr_body b;
    uint32_t v = 0;
    const uint8_t *p;
    size_t n;
    int ebool = 0;

    /* HELLO: limits and identity. */
    CHECK(request(TR_MSG_HELLO, NULL, 0, &r, &b) && r.type == TR_MSG_HELLO, "HELLO answered");
    CHECK(tr_body_u32(&b, 7, &v) == TR_OK && v == MAX_FRAME, "max_frame");
    CHECK(tr_body_u32(&b, 9, &v) == TR_OK && v == 0xC0FFEEu, "boot_id");
    CHECK(tr_body_u32(&b, 10, &v) == TR_OK && v == SLOTS, "sample_slots");
    CHECK(tr_body_u32(&b, 16, &v) == TR_OK && v >= 1u && v <= 64u, "max_train");
    {
        tr_cbor_reader rd;
        tr_cbor_reader_init(&rd, b.buf, b.len);
        rd.pos = b.off[17];
        CHECK(tr_cbor_read_bool(&rd, &ebool) == TR_OK && ebool == 1, "engine: true");
    }
    /* PING echoes. */
    body_begin(1);
    kv_b(1, (const uint8_t *)"\x00\x01\x02", 3);
    CHECK(request(TR_MSG_PING, req_buf, req.len, &r, &b) && tr_body_bytes(&b, 1, &p, &n) == TR_OK &&
              n == 3 && memcmp(p, "\x00\x01\x02", 3) == 0, "PING echo");
    /* Errors by name. */
    CHECK(request(0x05, NULL, 0, &r, &b) && err_code(&r, &b) == 2, "UNKNOWN_TYPE");
    {
        static const uint8_t flt[] = {0xa1, 0x01, 0xf9, 0x3c, 0x00};
        CHECK(request(TR_MSG_PING, flt, sizeof flt, &r, &b) && err_code(&r, &b) == 3, "float body: BAD_BODY");
        CHECK(tr_body_bytes(&b, 2, &p, &n) != TR_OK, "name is text");
    }
    body_begin(1);
    kv_u(1, 5);   /* data of the wrong type */
    CHECK(request(TR_MSG_PING, req_buf, req.len, &r, &b) && err_code(&r, &b) == 3, "wrong major type: BAD_BODY");
    /* Bad CRC: NAK without seq, device keeps serving. */
    {
        tr_frame f = {1, TR_MSG_PING, 77, 0, NULL, 0};
        uint8_t w[64];
        size_t wl;
        tr_frame nak;
        tr_body nb;
        uint32_t bad0 = fixture_dev.frames_bad;

        tr_frame_encode(&f, w, sizeof w, &wl);
        w[3] ^= 0x01;
        tr_device_feed(&fixture_dev, w, wl);
        CHECK(collect() == 1 && tr_frame_parse(frames[0], frame_len[0], &nak) == TR_OK &&
                  nak.type == TR_MSG_NAK && (nak.flags & TR_FRAME_FLAG_DEV) &&
                  tr_body_parse(&nb, nak.body, nak.body_len) == TR_OK && nb.present == 0,
              "NAK {} on a bad CRC");
        CHECK(fixture_dev.frames_bad == bad0 + 1u, "frames_bad counted");
        /* Version 2 with a good CRC: ERROR BAD_FRAME. */
        f.ver = 2;
        f.seq = ++g_seq;
        tr_frame_encode(&f, w, sizeof w, &wl);
        tr_device_feed(&fixture_dev, w, wl);
        CHECK(collect() == 1 && tr_frame_parse(frames[0], frame_len[0], &nak) == TR_OK &&
                  nak.type == TR_MSG_ERROR && tr_body_parse(&nb, nak.body, nak.body_len) == TR_OK &&
                  tr_body_u32(&nb, 1, &v) == TR_OK && v == 1, "BAD_FRAME on version 2");
        /* A seq gap: NAK {seq: first missing}, then the answer. */
        f.ver = 1;
        f.seq = (uint16_t)(g_seq + 3u);
        tr_frame_encode(&f, w, sizeof w, &wl);
        tr_device_feed(&fixture_dev, w, wl);
        CHECK(collect() == 2 && tr_frame_parse(frames[0], frame_len[0], &nak) == TR_OK &&
                  nak.type == TR_MSG_NAK && tr_body_parse(&nb, nak.body, nak.body_len) == TR_OK &&
                  tr_body_u32(&nb, 1, &v) == TR_OK && v == (uint16_t)(g_seq + 1u), "NAK names the gap");
        g_seq = f.seq;
    }
}

static void test_model_and_training(void)
{
    tr_frame r;
    tr_body b;
    uint32_t v = 0, wbytes = 0, applied = 0;
    const uint8_t *p;
    size_t n, blob_len = make_model(), i;
    uint8_t sha[32], wsha0[32], first_commit[256], snap[BLOB_MAX];
    size_t first_len;
    static uint8_t batch[4 * 64];
    uint8_t labels[4] = {0, 1, 2, 3};

    CHECK(blob_len > 0, "test model built");
    /* Engine-dependent requests before any model. */
    body_begin(1);
    kv_b(1, batch, 64);
    CHECK(request(TR_MSG_INFER, req_buf, req.len, &r, &b) && err_code(&r, &b) == 8, "NO_MODEL");
    /* Staging errors. */
    tr_sha256(model_blob, blob_len, sha);
    body_begin(2);
    kv_u(1, BLOB_MAX + 1u);
    kv_b(2, sha, 32);
    CHECK(request(TR_MSG_MODEL_BEGIN, req_buf, req.len, &r, &b) && err_code(&r, &b) == 4 &&
              tr_body_u32(&b, 3, &v) == TR_OK && v == BLOB_MAX, "TOO_LARGE with the limit");
    body_begin(2);
    kv_u(1, 0);
    kv_b(2, model_blob, 64);
    CHECK(request(TR_MSG_MODEL_CHUNK, req_buf, req.len, &r, &b) && err_code(&r, &b) == 5, "chunk without BEGIN");
    body_begin(2);
    kv_u(1, blob_len);
    kv_b(2, sha, 32);
    request(TR_MSG_MODEL_BEGIN, req_buf, req.len, &r, &b);
    body_begin(2);
    kv_u(1, 32);
    kv_b(2, model_blob + 32, 64);
    CHECK(request(TR_MSG_MODEL_CHUNK, req_buf, req.len, &r, &b) && err_code(&r, &b) == 5, "misaligned chunk");
    body_begin(2);
    kv_u(1, 0);
    kv_b(2, model_blob, 64);
    request(TR_MSG_MODEL_CHUNK, req_buf, req.len, &r, &b);
    body_begin(1);
    kv_b(1, sha, 32);
    CHECK(request(TR_MSG_MODEL_COMMIT, req_buf, req.len, &r, &b) && err_code(&r, &b) == 6, "INCOMPLETE");
    /* Corrupted upload: HASH_MISMATCH and nothing live. */
    model_blob[100] ^= 1u;
    {
        uint8_t good_sha[32];
        memcpy(good_sha, sha, 32);
        tr_sha256(model_blob, blob_len, sha);
        model_blob[100] ^= 1u;
        /* announce the corrupt hash, send good bytes: the bytes do not hash to it */
        body_begin(2);
        kv_u(1, blob_len);
        kv_b(2, sha, 32);
        request(TR_MSG_MODEL_BEGIN, req_buf, req.len, &r, &b);
        for (i = 0; i < blob_len; i += 512) {
            body_begin(2);
            kv_u(1, i);
            kv_b(2, model_blob + i, blob_len - i < 512 ? blob_len - i : 512);
            request(TR_MSG_MODEL_CHUNK, req_buf, req.len, &r, &b);
        }
        body_begin(1);
        kv_b(1, sha, 32);
        CHECK(request(TR_MSG_MODEL_COMMIT, req_buf, req.len, &r, &b) && err_code(&r, &b) == 7, "HASH_MISMATCH");
        CHECK(!fixture_dev.have_model, "nothing live after a failed commit");
    }
    /* The real upload. */
    CHECK(upload(TR_MSG_MODEL_BEGIN, model_blob, blob_len, &r, &b) && r.type == TR_MSG_MODEL_COMMIT, "model live");
    CHECK(tr_body_u32(&b, 2, &wbytes) == TR_OK && wbytes == desc.weights_bytes, "weights_bytes");
    CHECK(tr_body_u32(&b, 3, &v) == TR_OK && v == 64u, "input_bytes");
    CHECK(tr_body_u32(&b, 4, &v) == TR_OK && v == 4u, "classes");
    CHECK(tr_body_bytes(&b, 1, &p, &n) == TR_OK && n == 32, "weights sha");
    tr_sha256(weights0, desc.weights_bytes, sha);
    CHECK(memcmp(p, sha, 32) == 0, "live weights are the blob's weights");
    memcpy(wsha0, p, 32);
    first_len = r.body_len;
    memcpy(first_commit, r.body, first_len);
    /* Repeated COMMIT: same success body. */
    tr_sha256(model_blob, blob_len, sha);
    body_begin(1);
    kv_b(1, sha, 32);
    CHECK(request(TR_MSG_MODEL_COMMIT, req_buf, req.len, &r, &b) && r.type == TR_MSG_MODEL_COMMIT &&
              r.body_len == first_len && memcmp(r.body, first_commit, first_len) == 0, "COMMIT idempotent");
    /* WEIGHTS_READ the whole snapshot. */
    for (i = 0; i < wbytes; i += 500) {
        body_begin(2);
        kv_u(1, i);
        kv_u(2, wbytes - i < 500 ? wbytes - i : 500);
        CHECK(request(TR_MSG_WEIGHTS_READ, req_buf, req.len, &r, &b) && tr_body_bytes(&b, 2, &p, &n) == TR_OK,
              "WEIGHTS_READ");
        memcpy(snap + i, p, n);
    }
    CHECK(memcmp(snap, weights0, wbytes) == 0, "read back the loaded weights");
    body_begin(2);
    kv_u(1, wbytes - 10u);
    kv_u(2, 11);
    CHECK(request(TR_MSG_WEIGHTS_READ, req_buf, req.len, &r, &b) && err_code(&r, &b) == 13, "read past the end: BAD_ARG");
    /* SAMPLES: wrong size, then a batch of 4. */
    for (i = 0; i < sizeof batch; i++) {
        batch[i] = (uint8_t)(i * 7u);
    }
    body_begin(4);
    kv_u(1, 0);
    kv_u(2, 63);
    kv_b(3, labels, 4);
    kv_b(4, batch, 4 * 63);
    CHECK(request(TR_MSG_SAMPLES, req_buf, req.len, &r, &b) && err_code(&r, &b) == 12, "BAD_SAMPLE size");
    body_begin(4);
    kv_u(1, 100);
    kv_u(2, 64);
    kv_b(3, labels, 4);
    kv_b(4, batch, sizeof batch);
    CHECK(request(TR_MSG_SAMPLES, req_buf, req.len, &r, &b) && tr_body_u32(&b, 2, &v) == TR_OK && v == 4,
          "4 samples held");
    CHECK(fixture_dev.samples_held == 4u, "samples_held");
    /* TRAIN exactly once. */
    body_begin(4);
    kv_u(1, 10);
    kv_u(2, 100);
    kv_u(3, 4);
    kv_u(4, 20000);
    CHECK(request(TR_MSG_TRAIN, req_buf, req.len, &r, &b) && r.type == TR_MSG_TRAIN, "TRAIN applied");
    {
        tr_cbor_reader rd;
        size_t nrec, k, cnt;
        int dup = 1;
        uint32_t ctr = 0;

        tr_cbor_reader_init(&rd, b.buf, b.len);
        rd.pos = b.off[2];
        CHECK(tr_cbor_read_bool(&rd, &dup) == TR_OK && dup == 0, "not a duplicate");
        rd.pos = b.off[4];
        CHECK(tr_cbor_read_array(&rd, &nrec) == TR_OK && nrec == 4, "4 records");
        for (k = 0; k < nrec; k++) {
            tr_cbor_read_array(&rd, &cnt);
            CHECK(cnt == 5, "record of 5");
            tr_cbor_skip(&rd);
            CHECK(tr_cbor_read_u32(&rd, &ctr) == TR_OK && ctr == 1000u, "step measured by the port counter");
            tr_cbor_skip(&rd);
            tr_cbor_skip(&rd);
            tr_cbor_skip(&rd);
        }
    }
    CHECK(tr_body_u32(&b, 3, &applied) == TR_OK && applied == 4, "4 steps applied");
    first_len = r.body_len;
    memcpy(first_commit, r.body, first_len);
    /* The retransmit: duplicate with the same records, nothing applied. */
    CHECK(request(TR_MSG_TRAIN, req_buf, req.len, &r, &b) && tr_body_u32(&b, 3, &applied) == TR_OK && applied == 4,
          "retransmit not applied");
    CHECK(r.body_len == first_len && memcmp(r.body + 3, first_commit + 3, first_len - 3) != 0 &&
              memcmp(r.body + 5, first_commit + 5, first_len - 5) == 0, "duplicate: true, same records");
    /* Step 12, then the late step 11 (applied once), then 11 again. */
    body_begin(4);
    kv_u(1, 12);
    kv_u(2, 100);
    kv_u(3, 1);
    kv_u(4, 20000);
    request(TR_MSG_TRAIN, req_buf, req.len, &r, &b);
    body_begin(4);
    kv_u(1, 11);
    kv_u(2, 101);
    kv_u(3, 1);
    kv_u(4, 20000);
    CHECK(request(TR_MSG_TRAIN, req_buf, req.len, &r, &b) && tr_body_u32(&b, 3, &applied) == TR_OK && applied == 6,
          "late step 11 applied");
    CHECK(request(TR_MSG_TRAIN, req_buf, req.len, &r, &b) && tr_body_u32(&b, 3, &applied) == TR_OK && applied == 6,
          "step 11 only once");
    body_begin(4);
    kv_u(1, 13);
    kv_u(2, 104);
    kv_u(3, 1);
    kv_u(4, 20000);
    CHECK(request(TR_MSG_TRAIN, req_buf, req.len, &r, &b) && err_code(&r, &b) == 12, "sample not held: BAD_SAMPLE");
    /* WEIGHTS_INFO sees the trained weights. */
    CHECK(request(TR_MSG_WEIGHTS_INFO, NULL, 0, &r, &b) && tr_body_bytes(&b, 1, &p, &n) == TR_OK &&
              memcmp(p, wsha0, 32) != 0 && tr_body_u32(&b, 3, &v) == TR_OK && v == 6, "weights changed, 6 steps");
    /* A half-written weights blob is never live. */
    tr_sha256(snap, wbytes, sha);
    body_begin(2);
    kv_u(1, wbytes);
    kv_b(2, sha, 32);
    request(TR_MSG_WEIGHTS_BEGIN, req_buf, req.len, &r, &b);
    body_begin(2);
    kv_u(1, 0);
    kv_b(2, snap, 64);
    request(TR_MSG_WEIGHTS_CHUNK, req_buf, req.len, &r, &b);
    body_begin(1);
    kv_b(1, sha, 32);
    CHECK(request(TR_MSG_WEIGHTS_COMMIT, req_buf, req.len, &r, &b) && err_code(&r, &b) == 6, "weights INCOMPLETE");
    CHECK(request(TR_MSG_WEIGHTS_INFO, NULL, 0, &r, &b) && tr_body_bytes(&b, 1, &p, &n) == TR_OK &&
              memcmp(p, wsha0, 32) != 0, "still the trained weights");
    /* Roll back to the snapshot. */
    CHECK(upload(TR_MSG_WEIGHTS_BEGIN, snap, wbytes, &r, &b) && r.type == TR_MSG_WEIGHTS_COMMIT &&
              tr_body_bytes(&b, 1, &p, &n) == TR_OK && memcmp(p, wsha0, 32) == 0, "rollback to the snapshot");
    CHECK(upload(TR_MSG_WEIGHTS_BEGIN, snap, wbytes - 1u, &r, &b) == 1 && err_code(&r, &b) == 11, "BAD_WEIGHTS size");
    /* EVAL and INFER. */
    body_begin(2);
    kv_u(1, 100);
    kv_u(2, 4);
    CHECK(request(TR_MSG_EVAL, req_buf, req.len, &r, &b) && r.type == TR_MSG_EVAL && tr_body_u32(&b, 1, &v) == TR_OK &&
              v == 4 && tr_body_u32(&b, 2, &v) == TR_OK && v <= 4, "EVAL");
    body_begin(1);
    kv_b(1, batch, 64);
    CHECK(request(TR_MSG_INFER, req_buf, req.len, &r, &b) && r.type == TR_MSG_INFER && tr_body_u32(&b, 1, &v) == TR_OK &&
              v < 4 && tr_body_bytes(&b, 2, &p, &n) == TR_OK && n == 4, "INFER: class and 4 logits");
    body_begin(1);
    kv_b(1, batch, 63);
    CHECK(request(TR_MSG_INFER, req_buf, req.len, &r, &b) && err_code(&r, &b) == 12, "INFER wrong size");
    /* STATS. */
    CHECK(request(TR_MSG_STATS, NULL, 0, &r, &b) && tr_body_u32(&b, 1, &v) == TR_OK && v == 6 &&
              tr_body_u32(&b, 2, &v) == TR_OK && v == 12 && tr_body_u32(&b, 7, &v) == TR_OK && v == 4 &&
              tr_body_u32(&b, 3, &v) == TR_OK && v > 0 && tr_body_bytes(&b, 8, &p, &n) == TR_OK && n == 32,
          "STATS");
    /* A new model resets the step memory. */
    CHECK(upload(TR_MSG_MODEL_BEGIN, model_blob, blob_len, &r, &b) && r.type == TR_MSG_MODEL_COMMIT, "reload");
    body_begin(4);
    kv_u(1, 10);
    kv_u(2, 100);
    kv_u(3, 1);
    kv_u(4, 20000);
    CHECK(request(TR_MSG_TRAIN, req_buf, req.len, &r, &b) && tr_body_u32(&b, 3, &applied) == TR_OK && applied == 1,
          "step 10 applies again on the new model");
}

/* The device state an ERROR answer must leave as it was. */
typedef struct {
    uint8_t sha[32];
    uint32_t steps_applied, last_step_id, samples_held;
    uint64_t step_bits;
    uint8_t have_steps;
} train_state;

static void train_state_get(train_state *t)
{
    uint32_t wb;

    memset(t, 0, sizeof *t);
    CHECK(tr_device_weights_sha(&fixture_dev, t->sha, &wb) == TR_OK, "weights hash");
    t->steps_applied = fixture_dev.steps_applied;
    t->last_step_id = fixture_dev.last_step_id;
    t->samples_held = fixture_dev.samples_held;
    t->step_bits = fixture_dev.step_bits;
    t->have_steps = fixture_dev.have_steps;
}

static void train_body(uint32_t step_id, uint32_t index, uint32_t count, int trainable, int bias_only)
{
    body_begin(4u + (trainable >= 0) + (bias_only >= 0));
    kv_u(1, step_id);
    kv_u(2, index);
    kv_u(3, count);
    kv_u(4, 20000);
    if (trainable >= 0) {
        kv_u(7, (uint32_t)trainable);
    }
    if (bias_only >= 0) {
        kv_u(8, (uint32_t)bias_only);
    }
}

static size_t records_of(const tr_body *b)
{
    tr_cbor_reader rd;
    size_t n = 0;

    tr_cbor_reader_init(&rd, b->buf, b->len);
    rd.pos = b->off[4];
    return tr_cbor_read_array(&rd, &n) == TR_OK ? n : (size_t)-1;
}

/* An ERROR TRAIN applies nothing and leaves its step id free; labels are
 * checked against the live model; trainable 0 names no layer; a duplicate
 * answers with its own records (or none), a TRAIN that fails mid-way with a
 * fault, not an ERROR. */
static void test_exactly_once(void)
{
    tr_frame r;
    tr_body b;
    train_state t0, t1;
    uint32_t v = 0;
    static uint8_t batch[4 * 64];
    uint8_t labels[4] = {0, 1, 2, 3}, bad[2] = {1, 4};
    uint8_t sha_bias[32], sha_bias2[32], sha_all[32], first[MAX_FRAME];
    size_t blob_len, first_len, i;

    /* A 4-class model and four samples; a batch with label 4 is refused whole. */
    blob_len = make_model_classes(4);
    CHECK(upload(TR_MSG_MODEL_BEGIN, model_blob, blob_len, &r, &b) && r.type == TR_MSG_MODEL_COMMIT, "4-class model");
    for (i = 0; i < sizeof batch; i++) {
        batch[i] = (uint8_t)(i * 13u + 5u);
    }
    body_begin(4);
    kv_u(1, 0);
    kv_u(2, 64);
    kv_b(3, labels, 4);
    kv_b(4, batch, sizeof batch);
    CHECK(request(TR_MSG_SAMPLES, req_buf, req.len, &r, &b) && r.type == TR_MSG_SAMPLES, "samples 0-3");
    train_state_get(&t0);
    body_begin(4);
    kv_u(1, 8);
    kv_u(2, 64);
    kv_b(3, bad, 2);
    kv_b(4, batch, 2 * 64);
    CHECK(request(TR_MSG_SAMPLES, req_buf, req.len, &r, &b) && err_code(&r, &b) == 12 &&
              tr_body_u32(&b, 3, &v) == TR_OK && v == 9, "label 4 of 4 classes: BAD_SAMPLE naming sample 9");
    CHECK(fixture_dev.samples_held == t0.samples_held && !fixture_dev.mem.sample_meta[8].held && !fixture_dev.mem.sample_meta[9].held,
          "the batch was not stored, not even its good first sample");

    /* A 2-class model: samples 2 and 3 are held but their labels no longer fit. */
    blob_len = make_model_classes(2);
    CHECK(upload(TR_MSG_MODEL_BEGIN, model_blob, blob_len, &r, &b) && r.type == TR_MSG_MODEL_COMMIT, "2-class model");
    train_state_get(&t0);
    train_body(7, 0, 4, -1, -1);
    CHECK(request(TR_MSG_TRAIN, req_buf, req.len, &r, &b) && err_code(&r, &b) == 12 &&
              tr_body_u32(&b, 3, &v) == TR_OK && v == 2, "TRAIN over a label the model cannot learn: BAD_SAMPLE 2");
    train_state_get(&t1);
    CHECK(memcmp(&t0, &t1, sizeof t0) == 0, "the ERROR TRAIN left weights, steps and step-id memory as they were");
    body_begin(2);
    kv_u(1, 0);
    kv_u(2, 4);
    CHECK(request(TR_MSG_EVAL, req_buf, req.len, &r, &b) && err_code(&r, &b) == 12, "EVAL over it: BAD_SAMPLE");
    train_body(7, 0, 1, 0, -1);
    CHECK(request(TR_MSG_TRAIN, req_buf, req.len, &r, &b) && err_code(&r, &b) == 13 &&
              tr_body_u32(&b, 3, &v) == TR_OK && v == 0x6u, "trainable 0: BAD_ARG, detail the layers with parameters");
    train_body(7, 0, 1, 0x1, -1);
    CHECK(request(TR_MSG_TRAIN, req_buf, req.len, &r, &b) && err_code(&r, &b) == 13, "trainable names the flatten layer: BAD_ARG");
    train_state_get(&t1);
    CHECK(memcmp(&t0, &t1, sizeof t0) == 0, "refused TRAINs changed nothing");
    train_body(7, 0, 2, -1, -1);
    CHECK(request(TR_MSG_TRAIN, req_buf, req.len, &r, &b) && r.type == TR_MSG_TRAIN && records_of(&b) == 2 &&
              tr_body_u32(&b, 3, &v) == TR_OK && v == 2, "step 7 was still free: applied over the samples that fit");

    /* trainable 0 with bias_only: only those biases; the same as naming them in both. */
    CHECK(upload(TR_MSG_MODEL_BEGIN, model_blob, blob_len, &r, &b) && r.type == TR_MSG_MODEL_COMMIT, "reload");
    train_body(1, 0, 2, 0, 0x4);
    CHECK(request(TR_MSG_TRAIN, req_buf, req.len, &r, &b) && r.type == TR_MSG_TRAIN, "trainable 0, bias_only layer 2");
    train_state_get(&t1);
    memcpy(sha_bias, t1.sha, 32);
    CHECK(upload(TR_MSG_MODEL_BEGIN, model_blob, blob_len, &r, &b) && r.type == TR_MSG_MODEL_COMMIT, "reload");
    train_state_get(&t0);
    train_body(1, 0, 2, 0x4, 0x4);
    CHECK(request(TR_MSG_TRAIN, req_buf, req.len, &r, &b) && r.type == TR_MSG_TRAIN, "trainable and bias_only layer 2");
    train_state_get(&t1);
    memcpy(sha_bias2, t1.sha, 32);
    CHECK(upload(TR_MSG_MODEL_BEGIN, model_blob, blob_len, &r, &b) && r.type == TR_MSG_MODEL_COMMIT, "reload");
    train_body(1, 0, 2, -1, 0);
    CHECK(request(TR_MSG_TRAIN, req_buf, req.len, &r, &b) && r.type == TR_MSG_TRAIN, "every layer (bias_only 0)");
    train_state_get(&t1);
    memcpy(sha_all, t1.sha, 32);
    CHECK(memcmp(sha_bias, t0.sha, 32) != 0, "the bias of layer 2 trained");
    CHECK(memcmp(sha_bias, sha_bias2, 32) == 0, "trainable 0 + bias_only {2} trains what {2} + {2} trains");
    CHECK(memcmp(sha_bias, sha_all, 32) != 0, "and not what every layer trains");

    /* Duplicates: 10, 12, late 11; 11 again has 11's records, 12 again none. */
    train_body(10, 0, 2, -1, -1);
    request(TR_MSG_TRAIN, req_buf, req.len, &r, &b);
    train_body(12, 0, 1, -1, -1);
    request(TR_MSG_TRAIN, req_buf, req.len, &r, &b);
    train_body(11, 1, 1, -1, -1);
    CHECK(request(TR_MSG_TRAIN, req_buf, req.len, &r, &b) && records_of(&b) == 1, "late step 11 applied");
    first_len = r.body_len;
    memcpy(first, r.body, first_len);
    train_state_get(&t0);
    CHECK(request(TR_MSG_TRAIN, req_buf, req.len, &r, &b) && r.body_len == first_len &&
              memcmp(r.body + 5, first + 5, first_len - 5) == 0 && r.body[4] == 0xF5 && first[4] == 0xF4,
          "step 11 again: duplicate, its own records");
    train_body(12, 0, 1, -1, -1);
    CHECK(request(TR_MSG_TRAIN, req_buf, req.len, &r, &b) && records_of(&b) == 0, "step 12 again: no records, not step 11's");
    train_body(10, 0, 2, -1, -1);
    CHECK(request(TR_MSG_TRAIN, req_buf, req.len, &r, &b) && records_of(&b) == 0, "step 10 again: no records");
    train_state_get(&t1);
    CHECK(memcmp(&t0, &t1, sizeof t0) == 0, "duplicates applied nothing");

    /* An engine failure before the second step: the first stays applied and
     * is reported with a fault (not an ERROR); its retry replays that answer. */
    train_state_get(&t0);
    fail_at_reading = 3;   /* readings: before step 1, after it, before step 2 */
    train_body(20, 0, 2, -1, -1);
    CHECK(request(TR_MSG_TRAIN, req_buf, req.len, &r, &b) && r.type == TR_MSG_TRAIN && records_of(&b) == 1 &&
              tr_body_u32(&b, 5, &v) == TR_OK && v == (uint32_t)TR_ERR_STATE, "fault mid-TRAIN: one record and the fault");
    fixture_dev.engine = taken_engine;
    CHECK(tr_body_u32(&b, 3, &v) == TR_OK && v == t0.steps_applied + 1u && fixture_dev.steps_applied == v,
          "the step before the fault counts");
    first_len = r.body_len;
    memcpy(first, r.body, first_len);
    CHECK(request(TR_MSG_TRAIN, req_buf, req.len, &r, &b) && r.body_len == first_len &&
              memcmp(r.body + 5, first + 5, first_len - 5) == 0 && tr_body_u32(&b, 5, &v) == TR_OK,
          "its retry: duplicate with the same record and fault, nothing applied");
    CHECK(fixture_dev.steps_applied == t0.steps_applied + 1u, "still one step");
}

/* One EVAL of 12 samples from index 200: predictions -1 leaves key 3 out. */
static int eval_request(int predictions, tr_frame *r, tr_body *b)
{
    body_begin(predictions >= 0 ? 3u : 2u);
    kv_u(1, 200);
    kv_u(2, 12);
    if (predictions >= 0) {
        kv_bool(3, predictions);
    }
    return request(TR_MSG_EVAL, req_buf, req.len, r, b);
}

/* The uints of the array at key k of b into out (at most cap); their number, or -1. */
static long uint_array(const tr_body *b, unsigned k, uint32_t *out, size_t cap)
{
    tr_cbor_reader rd;
    size_t n = 0, i;

    if ((b->present & (1u << k)) == 0u) {
        return -1;
    }
    tr_cbor_reader_init(&rd, b->buf, b->len);
    rd.pos = b->off[k];
    if (tr_cbor_read_array(&rd, &n) != TR_OK || n > cap) {
        return -1;
    }
    for (i = 0; i < n; i++) {
        if (tr_cbor_read_u32(&rd, &out[i]) != TR_OK) {
            return -1;
        }
    }
    return (long)n;
}

/* EVAL predictions: each sample's class is INFER's argmax for it, the losses
 * add up to loss_ppm_sum, the totals are those of an EVAL without the key,
 * which answers exactly as before; the answer fits every max_frame, and one
 * that would not is refused before any inference. */
static void test_eval_predictions(void)
{
    enum { N = 12, CLASSES = 40 };
    static uint8_t batch[N * 64];
    uint8_t labels[N], sha0[32], sha1[32], plain[MAX_FRAME];
    uint32_t predicted[N], loss[N], v = 0, count = 0, correct = 0, loss_sum = 0, want_correct = 0, wb;
    uint32_t steps0, mf;
    uint64_t sum = 0, clock0;
    size_t blob_len, i, plain_len;
    tr_frame r;
    tr_body b;
    const uint8_t *p;
    size_t n;

    blob_len = make_model_classes(CLASSES);
    CHECK(upload(TR_MSG_MODEL_BEGIN, model_blob, blob_len, &r, &b) && r.type == TR_MSG_MODEL_COMMIT, "40-class model");
    for (i = 0; i < sizeof batch; i++) {
        batch[i] = (uint8_t)(i * 29u + (i >> 6) * 71u);
    }
    for (i = 0; i < N; i++) {
        labels[i] = (uint8_t)((i * 7u) % CLASSES);
    }
    body_begin(4);
    kv_u(1, 200);
    kv_u(2, 64);
    kv_b(3, labels, N);
    kv_b(4, batch, sizeof batch);
    CHECK(request(TR_MSG_SAMPLES, req_buf, req.len, &r, &b) && r.type == TR_MSG_SAMPLES, "12 samples");
    CHECK(tr_device_weights_sha(&fixture_dev, sha0, &wb) == TR_OK, "weights hash");
    steps0 = fixture_dev.steps_applied;

    CHECK(eval_request(1, &r, &b) && r.type == TR_MSG_EVAL, "EVAL with predictions");
    CHECK(tr_body_u32(&b, 1, &count) == TR_OK && count == N, "count");
    CHECK(tr_body_u32(&b, 2, &correct) == TR_OK && tr_body_u32(&b, 3, &loss_sum) == TR_OK, "totals");
    CHECK(uint_array(&b, 5, predicted, N) == N, "predicted: one class a sample");
    CHECK(uint_array(&b, 6, loss, N) == N, "loss_ppm: one loss a sample");
    CHECK(r.body_len <= tr_eval_answer_max(N, CLASSES), "within the worst case");
    for (i = 0; i < N; i++) {
        body_begin(1);
        kv_b(1, batch + i * 64u, 64);
        CHECK(request(TR_MSG_INFER, req_buf, req.len, &r, &b) && tr_body_u32(&b, 1, &v) == TR_OK &&
                  tr_body_bytes(&b, 2, &p, &n) == TR_OK && n == CLASSES, "INFER");
        CHECK(predicted[i] == v, "predicted[i] is INFER's class for the sample");
        {
            size_t k, best = 0;
            for (k = 1; k < n; k++) {
                best = (int8_t)p[k] > (int8_t)p[best] ? k : best;
            }
            CHECK(predicted[i] == best, "predicted[i] is the argmax of INFER's logits");
        }
        want_correct += predicted[i] == labels[i];
        sum += loss[i];
    }
    CHECK(correct == want_correct, "correct counts predicted[i] == label");
    CHECK(sum == loss_sum, "the losses add up to loss_ppm_sum");
    /* Relabelled so that every other prediction is right: correct follows. */
    for (i = 0; i < N; i++) {
        labels[i] = (uint8_t)(i % 2u == 0u ? predicted[i] : (predicted[i] + 1u) % CLASSES);
    }
    body_begin(4);
    kv_u(1, 200);
    kv_u(2, 64);
    kv_b(3, labels, N);
    kv_b(4, batch, sizeof batch);
    CHECK(request(TR_MSG_SAMPLES, req_buf, req.len, &r, &b) && r.type == TR_MSG_SAMPLES, "relabelled");
    {
        uint32_t again[N];

        CHECK(eval_request(1, &r, &b) && tr_body_u32(&b, 2, &correct) == TR_OK && correct == N / 2,
              "half the predictions right");
        CHECK(uint_array(&b, 5, again, N) == N && memcmp(again, predicted, sizeof again) == 0,
              "the same predictions");
    }

    /* Without the key: keys 1-4 only, the same totals (and counter). */
    CHECK(eval_request(1, &r, &b) && r.type == TR_MSG_EVAL, "again");
    plain_len = r.body_len;
    memcpy(plain, r.body, plain_len);
    CHECK(eval_request(-1, &r, &b) && r.type == TR_MSG_EVAL && b.present == 0x1Eu, "without key 3: keys 1-4");
    CHECK(r.body[0] == 0xa4 && plain[0] == 0xa6 && r.body_len < plain_len &&
              memcmp(r.body + 1, plain + 1, r.body_len - 1u) == 0, "the same totals as with predictions");
    plain_len = r.body_len;
    memcpy(plain, r.body, plain_len);
    CHECK(eval_request(0, &r, &b) && r.body_len == plain_len && memcmp(r.body, plain, plain_len) == 0,
          "predictions false: as without the key");
    body_begin(3);
    kv_u(1, 200);
    kv_u(2, 12);
    kv_u(3, 1);
    CHECK(request(TR_MSG_EVAL, req_buf, req.len, &r, &b) && err_code(&r, &b) == 3, "predictions not a bool: BAD_BODY");
    CHECK(tr_device_weights_sha(&fixture_dev, sha1, &wb) == TR_OK && memcmp(sha0, sha1, 32) == 0 &&
              fixture_dev.steps_applied == steps0, "EVAL changes nothing");

    /* The worst case (max_train as init caps it, 65535 classes) fits every max_frame. */
    for (mf = 128u; mf <= 65535u; mf++) {
        uint32_t cap = (mf - 48u) / 28u;
        if (tr_eval_answer_max(cap, 65535u) > mf - TR_FRAME_OVERHEAD || cap * 8u > TR_FRAME_WIRE_MAX(mf)) {
            CHECK(0, "EVAL answer fits max_frame at max_train");
            printf("  max_frame %u, max_train %u\n", (unsigned)mf, (unsigned)cap);
            break;
        }
    }
    CHECK(tr_eval_answer_max(2, 65535u) <= 128u - TR_FRAME_OVERHEAD, "twin minimum: 128-byte frames, 2 samples");
    CHECK(tr_eval_answer_max(32, 65535u) <= 2048u - TR_FRAME_OVERHEAD, "QEMU: 2048-byte frames, 32 samples");

    /* A frame smaller than max_train assumes (init never allows it): TOO_LARGE
     * with the count that fits, and no inference run. */
    mf = fixture_dev.cfg.max_frame;
    fixture_dev.cfg.max_frame = 60u;
    clock0 = fake_clock;
    CHECK(eval_request(1, &r, &b) && err_code(&r, &b) == 4 && tr_body_u32(&b, 3, &v) == TR_OK && v == 4u,
          "TOO_LARGE: 4 samples fit");
    CHECK(fake_clock == clock0, "refused before any inference");
    CHECK(eval_request(-1, &r, &b) && r.type == TR_MSG_EVAL, "the totals still fit");
    fixture_dev.cfg.max_frame = mf;
}

int main(void)
{
    tr_port port;
    tr_frame f;
    tr_body b;
    memset(&port, 0, sizeof port);
    port.tx = cap_tx;
    port.counter = counter;
    port.reset = do_reset;
    port.info.board = "test-board";
    port.info.counter = "ns";
    port.boot_id = 0xC0FFEE;
    CHECK(tr_port_start(&fixture, &port) == TR_OK, "init");
    CHECK(collect() == 1 && tr_frame_parse(frames[0], frame_len[0], &f) == TR_OK && f.type == TR_MSG_EVENT &&
              (f.flags & TR_FRAME_FLAG_DEV) && f.body_len == 3 && memcmp(f.body, "\xa1\x01\x01", 3) == 0,
          "EVENT BOOT at start");
    test_link();
    test_model_and_training();
    test_exactly_once();
    test_eval_predictions();
    CHECK(request(TR_MSG_RESET, NULL, 0, &f, &b) && f.type == TR_MSG_RESET && resets == 1, "RESET via the port");
    TEST_DONE("test_device");
}
