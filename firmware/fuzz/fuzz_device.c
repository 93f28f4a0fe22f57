/* libFuzzer harness over the frame decoder, the CBOR reader and the
 * dispatcher. Input byte 0 picks the mode:
 *   bit 0 clear: the rest is wire bytes fed to a device in pieces of 1..64;
 *   bit 0 set:   the rest is a list of [len][raw frame without CRC] items that
 *                get a good CRC and COBS, so the fuzzer reaches every handler;
 *   bit 1 set:   a small model is loaded first (TRAIN/EVAL/INFER/WEIGHTS live).
 * Every input also runs through tr_cbor_check and a reader walk. */
#include <stdint.h>
#include <string.h>

#include "cbor/tr_cbor.h"
#include "crypto/tr_sha256.h"
#include "engine/tr_engine.h"
#include "engine/tr_engine_desc.h"
#include "model/tr_zoo.h"
#include "proto/tr_crc32.h"
#include "proto/tr_device.h"
#include "../tools/model_writer/trainer_model.h"

#define MAX_FRAME 512u
#define SLOTS 8u
#define SAMPLE_MAX 128u
#define BLOB_MAX 8192u
#define ARENA (64u * 1024u)

#include "../tests/proto/device_fixture.h"
static uint64_t clock_ns;

static uint8_t model_blob[BLOB_MAX];
static size_t model_len;

static tr_status sink(void *ctx, const uint8_t *b, size_t n)
{
    (void)ctx;
    (void)b;
    (void)n; /* the fuzzer only needs the device to answer, not what it said */
    return TR_OK;
}

static uint64_t counter(void)
{
    return ++clock_ns;
}

static tr_status no_reset(void)
{
    return TR_OK;
}

static void send_raw(uint8_t type, const uint8_t *body, size_t n)
{
    tr_frame f = {1, type, 0, 0, body, n};
    uint8_t w[TR_FRAME_WIRE_MAX(MAX_FRAME)];
    size_t wl;
    static uint16_t seq;

    f.seq = ++seq;
    if (tr_frame_encode(&f, w, sizeof w, &wl) == TR_OK) {
        tr_device_feed(&fixture_dev, w, wl);
    }
}

static void load_model(void)
{
    uint8_t body[MAX_FRAME], sha[32];
    tr_cbor_writer w;
    size_t off;

    tr_sha256(model_blob, model_len, sha);
    tr_cbor_writer_init(&w, body, sizeof body);
    tr_cbor_write_map(&w, 2);
    tr_cbor_write_uint(&w, 1);
    tr_cbor_write_uint(&w, model_len);
    tr_cbor_write_uint(&w, 2);
    tr_cbor_write_bytes(&w, sha, 32);
    send_raw(TR_MSG_MODEL_BEGIN, body, w.len);
    for (off = 0; off < model_len; off += 256u) {
        tr_cbor_writer_init(&w, body, sizeof body);
        tr_cbor_write_map(&w, 2);
        tr_cbor_write_uint(&w, 1);
        tr_cbor_write_uint(&w, off);
        tr_cbor_write_uint(&w, 2);
        tr_cbor_write_bytes(&w, model_blob + off, model_len - off < 256u ? model_len - off : 256u);
        send_raw(TR_MSG_MODEL_CHUNK, body, w.len);
    }
    tr_cbor_writer_init(&w, body, sizeof body);
    tr_cbor_write_map(&w, 1);
    tr_cbor_write_uint(&w, 1);
    tr_cbor_write_bytes(&w, sha, 32);
    send_raw(TR_MSG_MODEL_COMMIT, body, w.len);
}

static void walk_cbor(const uint8_t *data, size_t size)
{
    tr_cbor_reader r;
    unsigned steps = 0;

    tr_cbor_check(data, size);
    tr_cbor_reader_init(&r, data, size);
    while (r.pos < r.len && steps++ < 256u) {
        tr_cbor_type t;
        const uint8_t *p;
        size_t n;
        uint64_t u;
        int64_t i;
        int b;
        tr_status s = TR_ERR_FORMAT;

        tr_cbor_peek_type(&r, &t);
        switch (t) {
        case TR_CBOR_UINT: s = tr_cbor_read_uint(&r, &u); break;
        case TR_CBOR_NINT: s = tr_cbor_read_int(&r, &i); break;
        case TR_CBOR_BYTES: s = tr_cbor_read_bytes(&r, &p, &n); break;
        case TR_CBOR_TEXT: s = tr_cbor_read_text(&r, (const char **)&p, &n); break;
        case TR_CBOR_ARRAY: s = tr_cbor_read_array(&r, &n); break;
        case TR_CBOR_MAP: s = tr_cbor_read_map(&r, &n); break;
        case TR_CBOR_BOOL: s = tr_cbor_read_bool(&r, &b); break;
        case TR_CBOR_NULL: s = tr_cbor_read_null(&r); break;
        default: break;
        }
        if (s != TR_OK) {
            break;
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tr_port port;
    uint8_t mode;

    if (model_len == 0u) {
        static uint8_t weights[BLOB_MAX];
        static tr_model_desc desc;
        tr_shape in = {8, 8, 1};

        if (tr_zoo_desc("mlp", in, 4, &desc) == TR_OK &&
            tr_model_plan(&desc, tr_engine_state_bytes()) == TR_OK &&
            tr_model_init_weights(&desc, 3, weights, desc.weights_bytes) == TR_OK) {
            model_len = tr_trainer_encode_model(&desc, weights, desc.weights_bytes, "mlp", 3, model_blob,
                                                sizeof model_blob);
        }
    }
    walk_cbor(data, size);
    if (size == 0u) {
        return 0;
    }
    memset(&port, 0, sizeof port);
    port.tx = sink;
    port.counter = counter;
    port.reset = no_reset;
    port.info.board = "fuzz";
    port.boot_id = 1;
    tr_port_start(&fixture, &port);
    mode = data[0];
    data++;
    size--;
    if ((mode & 2u) != 0u && model_len != 0u) {
        load_model();
    }
    if ((mode & 1u) == 0u) {
        size_t piece = 1u + (mode >> 2);

        while (size > 0u) {
            size_t n = size < piece ? size : piece;
            tr_device_feed(&fixture_dev, data, n);
            data += n;
            size -= n;
        }
    } else {
        while (size >= 2u) {
            size_t n = data[0];
            data++;
            size--;
            if (n < 2u || n > size) {
                n = size;
            }
            /* data[0] = type, rest = body: header and CRC are made good. */
            send_raw(data[0], data + 1, n - 1u);
            data += n;
            size -= n;
        }
    }
    return 0;
}
