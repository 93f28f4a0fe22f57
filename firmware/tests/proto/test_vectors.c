/* The shared vectors protocol/vectors/NAME.vec (format: protocol/vectors/README.md),
 * so that the C codec agrees with the TypeScript one on every block:
 * - frames (`wire:`): decoded, header fields and body checked, re-encoded byte
 *   for byte, body rendered in CBOR diagnostic notation and compared with
 *   `diag:`; an invalid frame is fed to a device, which must drop it with a NAK
 *   or answer the ERROR code the vector names;
 * - device.vec: each scenario's requests fed in order to one live device (the
 *   model a block names loaded first): the answer the block names, byte for
 *   byte where it gives `answer:`; an ERROR leaves every piece of state as it
 *   was (samples, weights, steps applied, step-id memory), as does a duplicate;
 * - CBOR items (cbor.vec): a valid item passes the strict subset check, renders
 *   as `diag:` and re-encodes canonically to `hex:`; an invalid one is refused
 *   (TRUNCATED as TR_ERR_TRUNCATED, every other defect as TR_ERR_FORMAT);
 * - CRC-32 (crc32.vec) and COBS (cobs.vec): computed, encoded and decoded back.
 * Usage: test_vectors DIR */
#include <dirent.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cbor/tr_cbor.h"
#include "proto/tr_cobs.h"
#include "proto/tr_crc32.h"
#include "proto/tr_device.h"
#include "proto/tr_frame.h"
#include "proto/tr_handlers.h"
#include "proto/tr_proto.h"
#include "crypto/tr_sha256.h"
#include "engine/tr_engine_desc.h"
#include "model/tr_zoo.h"
#include "../../tools/model_writer/trainer_model.h"
#include "proto_test.h"

/* The device of the invalid frames (no model needed to refuse them) and of
 * device.vec (protocol/vectors/README.md: 4 sample slots, max_train 64). */
#define MAX_FRAME 2048u
#define SLOTS 4u
#define SAMPLE_MAX 256u
#define BLOB_MAX 8192u
#define ARENA (16u * 1024u)
#include "device_fixture.h"

#define MAX_BLOCK_KEYS 24
#define MAX_LINE 140000

typedef struct {
    char key[32];
    char *val;
} kv;

static kv g_kv[MAX_BLOCK_KEYS];
static int g_nkv;
static int g_vectors;

static const char *get(const char *key)
{
    int i;

    for (i = 0; i < g_nkv; i++) {
        if (strcmp(g_kv[i].key, key) == 0) {
            return g_kv[i].val;
        }
    }
    return NULL;
}

static size_t unhex(const char *s, uint8_t *out, size_t cap, int *ok)
{
    size_t n = 0;

    *ok = 1;
    while (*s != '\0') {
        unsigned v;

        if (*s == ' ' || *s == '\t') {
            s++;
            continue;
        }
        if (s[1] == '\0' || sscanf(s, "%2x", &v) != 1 || n >= cap) {
            *ok = 0;
            return n;
        }
        out[n++] = (uint8_t)v;
        s += 2;
    }
    return n;
}

/* CBOR diagnostic notation (RFC 8949 §8) of one item, appended to out; with w
 * not NULL the item is also re-encoded through the canonical writer (check
 * w->status after). */
static int diag_item(tr_cbor_reader *r, char *out, size_t cap, size_t *len, tr_cbor_writer *w,
                     int depth);

static int put(char *out, size_t cap, size_t *len, const char *s)
{
    size_t n = strlen(s);

    if (*len + n + 1u > cap) {
        return -1;
    }
    memcpy(out + *len, s, n + 1u);
    *len += n;
    return 0;
}

static int diag_item(tr_cbor_reader *r, char *out, size_t cap, size_t *len, tr_cbor_writer *w,
                     int depth)
{
    tr_cbor_type t;
    char tmp[32];
    size_t n, i;
    const uint8_t *p;
    const char *c;
    uint64_t u;
    int b;

    if (depth > TR_CBOR_MAX_DEPTH || tr_cbor_peek_type(r, &t) != TR_OK) {
        return -1;
    }
    switch (t) {
    case TR_CBOR_UINT:
        if (tr_cbor_read_uint(r, &u) != TR_OK) return -1;
        if (w != NULL) tr_cbor_write_uint(w, u);
        snprintf(tmp, sizeof tmp, "%llu", (unsigned long long)u);
        return put(out, cap, len, tmp);
    case TR_CBOR_NINT:
        /* -1 - u; at u = 2^64-1 the magnitude 2^64 needs one more bit than u */
        if (tr_cbor_read_nint(r, &u) != TR_OK) return -1;
        if (w != NULL) tr_cbor_write_nint(w, u);
        if (u == UINT64_MAX) {
            return put(out, cap, len, "-18446744073709551616");
        }
        snprintf(tmp, sizeof tmp, "-%llu", (unsigned long long)u + 1ull);
        return put(out, cap, len, tmp);
    case TR_CBOR_BYTES:
        if (tr_cbor_read_bytes(r, &p, &n) != TR_OK || put(out, cap, len, "h'") != 0) return -1;
        if (w != NULL) tr_cbor_write_bytes(w, p, n);
        for (i = 0; i < n; i++) {
            snprintf(tmp, sizeof tmp, "%02x", p[i]);
            if (put(out, cap, len, tmp) != 0) return -1;
        }
        return put(out, cap, len, "'");
    case TR_CBOR_TEXT:
        if (tr_cbor_read_text(r, &c, &n) != TR_OK || put(out, cap, len, "\"") != 0) return -1;
        if (w != NULL) tr_cbor_write_text(w, c, n);
        for (i = 0; i < n; i++) {
            if (c[i] == '"' || c[i] == '\\') {
                tmp[0] = '\\';
                tmp[1] = c[i];
                tmp[2] = '\0';
            } else {
                tmp[0] = c[i];
                tmp[1] = '\0';
            }
            if (put(out, cap, len, tmp) != 0) return -1;
        }
        return put(out, cap, len, "\"");
    case TR_CBOR_ARRAY:
    case TR_CBOR_MAP:
        if ((t == TR_CBOR_ARRAY ? tr_cbor_read_array(r, &n) : tr_cbor_read_map(r, &n)) != TR_OK ||
            put(out, cap, len, t == TR_CBOR_ARRAY ? "[" : "{") != 0) {
            return -1;
        }
        if (w != NULL) {
            (t == TR_CBOR_ARRAY ? tr_cbor_write_array : tr_cbor_write_map)(w, n);
        }
        for (i = 0; i < n; i++) {
            if ((i > 0 && put(out, cap, len, ", ") != 0) || diag_item(r, out, cap, len, w, depth + 1) != 0) {
                return -1;
            }
            if (t == TR_CBOR_MAP &&
                (put(out, cap, len, ": ") != 0 || diag_item(r, out, cap, len, w, depth + 1) != 0)) {
                return -1;
            }
        }
        return put(out, cap, len, t == TR_CBOR_ARRAY ? "]" : "}");
    case TR_CBOR_BOOL:
        if (tr_cbor_read_bool(r, &b) != TR_OK) return -1;
        if (w != NULL) tr_cbor_write_bool(w, b);
        return put(out, cap, len, b ? "true" : "false");
    case TR_CBOR_NULL:
        if (tr_cbor_read_null(r) != TR_OK) return -1;
        if (w != NULL) tr_cbor_write_null(w);
        return put(out, cap, len, "null");
    default:
        return -1;
    }
}

static int g_cbor, g_crc, g_cobs;

/* cbor.vec: one item, valid or refused. */
static void check_cbor(const char *what, const char *hex)
{
    static uint8_t item[4096], again[4096];
    static char dg[16384];
    const char *valid = get("valid"), *want = get("diag"), *error = get("error");
    size_t n, len = 0;
    int ok;
    tr_status st;

    g_cbor++;
    n = unhex(hex, item, sizeof item, &ok);
    CHECK(ok && valid != NULL, what);
    st = tr_cbor_check_strict(item, n);
    if (valid != NULL && strcmp(valid, "false") == 0) {
        tr_status expect = error != NULL && strcmp(error, "TRUNCATED") == 0 ? TR_ERR_TRUNCATED
                                                                             : TR_ERR_FORMAT;
        if (st != expect) {
            printf("  %s: %s refused with %d, want %d\n", what, error != NULL ? error : "?", st, expect);
        }
        CHECK(error != NULL && st == expect, what);
        return;
    }
    CHECK(st == TR_OK && want != NULL, what);
    if (st != TR_OK || want == NULL) {
        return;
    }
    {
        tr_cbor_reader r;
        tr_cbor_writer w;

        tr_cbor_reader_init(&r, item, n);
        tr_cbor_writer_init(&w, again, sizeof again);
        dg[0] = '\0';
        CHECK(diag_item(&r, dg, sizeof dg, &len, &w, 0) == 0 && r.pos == n, what);
        if (strcmp(dg, want) != 0) {
            printf("  %s diag\n    want %s\n    got  %s\n", what, want, dg);
        }
        CHECK(strcmp(dg, want) == 0, what);
        CHECK(w.status == TR_OK && w.len == n && memcmp(again, item, n) == 0, what);
    }
}

/* crc32.vec: the CRC of `hex`, one-shot and fed in two pieces. */
static void check_crc(const char *what, const char *hex, const char *want)
{
    static uint8_t in[4096];
    size_t n;
    int ok;
    uint32_t crc = 0, reg = TR_CRC32_INIT;

    g_crc++;
    n = unhex(hex, in, sizeof in, &ok);
    CHECK(ok, what);
    CHECK(tr_crc32(in, n, &crc) == TR_OK && crc == (uint32_t)strtoul(want, NULL, 0), what);
    tr_crc32_update(&reg, in, n / 3u);
    tr_crc32_update(&reg, in + n / 3u, n - n / 3u);
    CHECK((reg ^ 0xFFFFFFFFu) == crc, what);
}

/* cobs.vec: `hex` encodes to `cobs` and `cobs` decodes back to `hex`. */
static void check_cobs(const char *what, const char *hex, const char *want)
{
    static uint8_t in[4096], enc[4096], dec[4096], out[4096];
    size_t n, en, on, dn;
    int ok, ok2;

    g_cobs++;
    n = unhex(hex, in, sizeof in, &ok);
    en = unhex(want, enc, sizeof enc, &ok2);
    CHECK(ok && ok2, what);
    CHECK(tr_cobs_encode(in, n, out, sizeof out, &on) == TR_OK && on == en && memcmp(out, enc, en) == 0,
          what);
    CHECK(on <= TR_COBS_MAX(n), what);
    CHECK(tr_cobs_decode(enc, en, dec, sizeof dec, &dn) == TR_OK && dn == n && memcmp(dec, in, n) == 0,
          what);
}

static uint64_t no_counter(void)
{
    return 0;
}

static uint32_t code_of(const char *name)
{
    static const char *const names[] = {"NONE", "BAD_FRAME", "UNKNOWN_TYPE", "BAD_BODY", "TOO_LARGE",
                                        "BAD_CHUNK", "INCOMPLETE", "HASH_MISMATCH", "NO_MODEL",
                                        "MODEL_INVALID", "MODEL_TOO_LARGE", "BAD_WEIGHTS", "BAD_SAMPLE",
                                        "BAD_ARG", "NOT_SUPPORTED", "INTERNAL"};
    uint32_t i;

    for (i = 1; i < sizeof names / sizeof names[0]; i++) {
        if (strcmp(names[i], name) == 0) {
            return i;
        }
    }
    return 0;
}

/* invalid.vec on a fresh device: `device: nak` or `device: error NAME`. */
static void check_device(const char *what, const uint8_t *wire, size_t n, const char *want)
{
    static uint8_t raw[MAX_FRAME];
    tr_port port;
    tr_frame_rx rx;
    tr_frame f;
    tr_frame_event ev = TR_FRAME_NONE;
    size_t used = 0;
    uint32_t code = 0;
    memset(&port, 0, sizeof port);
    port.tx = cap_tx;
    port.counter = no_counter;
    port.info.board = "vector-board";
    port.info.counter = "ns";
    CHECK(tr_port_start(&fixture, &port) == TR_OK, what);
    sent_len = 0;   /* the boot event */
    tr_device_feed(&fixture_dev, wire, n);
    tr_frame_rx_init(&rx, raw, sizeof raw);
    tr_frame_feed(&rx, sent, sent_len, &used, &ev);
    CHECK(ev == TR_FRAME_OK && tr_frame_parse(rx.buf, rx.len, &f) == TR_OK, what);
    if (ev != TR_FRAME_OK || tr_frame_parse(rx.buf, rx.len, &f) != TR_OK) {
        return;
    }
    if (strcmp(want, "nak") == 0) {
        CHECK(f.type == TR_MSG_NAK, what);
        return;
    }
    if (f.type == TR_MSG_ERROR && f.body_len > 0u) {
        tr_cbor_reader r;
        size_t pairs, i;
        uint64_t key;

        tr_cbor_reader_init(&r, f.body, f.body_len);
        if (tr_cbor_read_map(&r, &pairs) == TR_OK) {
            for (i = 0; i < pairs && tr_cbor_read_uint(&r, &key) == TR_OK; i++) {
                if (key == 1u) {
                    tr_cbor_read_u32(&r, &code);
                    break;
                }
                tr_cbor_skip(&r);
            }
        }
    }
    if (strncmp(want, "error ", 6) != 0 || f.type != TR_MSG_ERROR || code != code_of(want + 6)) {
        printf("  %s: device sent type 0x%02x code %u, want %s\n", what, f.type, (unsigned)code, want);
    }
    CHECK(strncmp(want, "error ", 6) == 0 && f.type == TR_MSG_ERROR && code == code_of(want + 6), what);
}

/* ---- device.vec: scenarios on a live device ---- */

static char g_scenario[256];
static uint16_t g_setup_seq;
static int g_device_steps;

/* Records (the CBOR of TRAIN key 4) of each answered TRAIN of the scenario, by block name. */
#define MAX_KEPT 32
static struct {
    char name[160];
    uint8_t cbor[MAX_FRAME];
    size_t len;
} g_kept[MAX_KEPT];
static int g_nkept;

/* Keys 1-4 (count, correct, loss_ppm_sum, counter) of each answered EVAL of the scenario, by block name. */
static struct {
    char name[160];
    uint32_t totals[4];
} g_evals[MAX_KEPT];
static int g_nevals;

/* Everything a refused request or a duplicate must leave as it was. */
typedef struct {
    uint8_t weights_sha[32];
    uint8_t model_sha[32];
    uint8_t have_model;
    uint32_t steps_applied, last_step_id, records_step_id, records_count, records_fault;
    uint8_t have_steps, have_records;
    uint64_t step_bits;
    uint32_t samples_held;
    uint8_t meta_sha[32], samples_sha[32];
} dev_state;

static void snapshot(dev_state *st)
{
    uint32_t wb = 0;

    memset(st, 0, sizeof *st);
    if (fixture_dev.have_model) {
        (void)tr_device_weights_sha(&fixture_dev, st->weights_sha, &wb);
    }
    memcpy(st->model_sha, fixture_dev.model_sha, 32);
    st->have_model = fixture_dev.have_model;
    st->steps_applied = fixture_dev.steps_applied;
    st->last_step_id = fixture_dev.last_step_id;
    st->have_steps = fixture_dev.have_steps;
    st->step_bits = fixture_dev.step_bits;
    st->have_records = fixture_dev.have_records;
    st->records_step_id = fixture_dev.records_step_id;
    st->records_count = fixture_dev.records_count;
    st->records_fault = fixture_dev.records_fault;
    st->samples_held = fixture_dev.samples_held;
    tr_sha256((const uint8_t *)fixture_sample_meta, sizeof fixture_sample_meta, st->meta_sha);
    tr_sha256(fixture_samples, sizeof fixture_samples, st->samples_sha);
}

/* Feeds one request; *resp is the device's answer to seq (device-initiated frames skipped). */
static int exchange(const uint8_t *wire, size_t n, uint16_t seq, tr_frame *resp, uint8_t *raw)
{
    tr_frame_rx rx;
    size_t pos = 0, used;
    tr_frame_event ev;
    int found = 0;

    sent_len = 0;
    tr_device_feed(&fixture_dev, wire, n);
    while (pos < sent_len) {
        tr_frame_rx_init(&rx, raw, MAX_FRAME);
        ev = TR_FRAME_NONE;
        while (pos < sent_len && ev == TR_FRAME_NONE) {
            tr_frame_feed(&rx, sent + pos, sent_len - pos, &used, &ev);
            pos += used;
        }
        if (ev == TR_FRAME_OK && tr_frame_parse(rx.buf, rx.len, resp) == TR_OK &&
            (resp->flags & TR_FRAME_FLAG_RESP) != 0u && resp->seq == seq) {
            found = 1;
            break;
        }
    }
    sent_len = 0;
    return found;
}

/* One request of the reader's own (model upload), answered with its type. */
static int setup_request(uint8_t type, const uint8_t *body, size_t len)
{
    static uint8_t w[TR_FRAME_WIRE_MAX(MAX_FRAME)], raw[MAX_FRAME];
    tr_frame f = {1, type, 0, 0, body, len}, r;
    size_t wl;

    f.seq = ++g_setup_seq;
    if (tr_frame_encode(&f, w, sizeof w, &wl) != TR_OK) {
        return 0;
    }
    return exchange(w, wl, f.seq, &r, raw) && r.type == type;
}

/* `model: NAME HxWxC CLASSES SEED`: built from the zoo, uploaded in 1 KiB chunks. */
static int load_model(const char *what, const char *spec)
{
    static uint8_t weights[BLOB_MAX], blob[BLOB_MAX], body[MAX_FRAME];
    static tr_model_desc desc;
    char zoo[32];
    unsigned h, w, c, classes, seed;
    tr_shape in;
    uint8_t sha[32];
    size_t n, off;
    tr_cbor_writer wr;

    if (sscanf(spec, "%31s %ux%ux%u %u %u", zoo, &h, &w, &c, &classes, &seed) != 6) {
        printf("  %s: cannot read model '%s'\n", what, spec);
        return 0;
    }
    in.h = h;
    in.w = w;
    in.c = c;
    if (tr_zoo_desc(zoo, in, classes, &desc) != TR_OK || tr_model_plan(&desc, tr_engine_state_bytes()) != TR_OK ||
        tr_model_init_weights(&desc, seed, weights, desc.weights_bytes) != TR_OK) {
        return 0;
    }
    n = tr_trainer_encode_model(&desc, weights, desc.weights_bytes, zoo, seed, blob, sizeof blob);
    if (n == 0u) {
        return 0;
    }
    tr_sha256(blob, n, sha);
    tr_cbor_writer_init(&wr, body, sizeof body);
    tr_cbor_write_map(&wr, 2);
    tr_cbor_write_uint(&wr, 1);
    tr_cbor_write_uint(&wr, n);
    tr_cbor_write_uint(&wr, 2);
    tr_cbor_write_bytes(&wr, sha, 32);
    if (!setup_request(TR_MSG_MODEL_BEGIN, body, wr.len)) {
        return 0;
    }
    for (off = 0; off < n; off += 1024u) {
        tr_cbor_writer_init(&wr, body, sizeof body);
        tr_cbor_write_map(&wr, 2);
        tr_cbor_write_uint(&wr, 1);
        tr_cbor_write_uint(&wr, off);
        tr_cbor_write_uint(&wr, 2);
        tr_cbor_write_bytes(&wr, blob + off, n - off < 1024u ? n - off : 1024u);
        if (!setup_request(TR_MSG_MODEL_CHUNK, body, wr.len)) {
            return 0;
        }
    }
    tr_cbor_writer_init(&wr, body, sizeof body);
    tr_cbor_write_map(&wr, 1);
    tr_cbor_write_uint(&wr, 1);
    tr_cbor_write_bytes(&wr, sha, 32);
    return setup_request(TR_MSG_MODEL_COMMIT, body, wr.len);
}

static uint64_t vec_clock;
static uint64_t vec_counter(void)
{
    return vec_clock += 100u;
}

static void fresh_device(const char *what)
{
    tr_port port;
    memset(&port, 0, sizeof port);
    port.tx = cap_tx;
    port.counter = vec_counter;
    port.info.board = "vector-board";
    port.info.counter = "ns";
    port.boot_id = 1;
    CHECK(tr_port_start(&fixture, &port) == TR_OK, what);
    sent_len = 0;
    g_setup_seq = 30000u;
    g_nkept = 0;
    g_nevals = 0;
}

/* The uints of the array at key k (at most cap) into out: their number, or -1. */
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

/* An EVAL answered `ok` with `predicted: N|none` and `totals_of: NAME`: keys
 * 5 and 6 with N entries each (a class below the model's classes, losses that
 * add up to key 3, correct = classes equal to the held labels) or keys 1-4
 * only; the totals those of the named block; nothing changed. */
static void check_eval(const char *what, const tr_frame *req, const tr_frame *r, const dev_state *before,
                       const dev_state *after)
{
    static uint32_t predicted[MAX_FRAME], loss[MAX_FRAME];
    const char *want = get("predicted"), *of = get("totals_of");
    uint32_t totals[4] = {0, 0, 0, 0}, index = 0, k;
    tr_body b, rb;
    int i;

    CHECK(tr_body_parse(&b, r->body, r->body_len) == TR_OK && tr_body_parse(&rb, req->body, req->body_len) == TR_OK &&
              tr_body_u32(&rb, 1, &index) == TR_OK, what);
    for (k = 0; k < 4u; k++) {
        CHECK(tr_body_u32(&b, k + 1u, &totals[k]) == TR_OK, what);
    }
    CHECK(memcmp(before, after, sizeof *before) == 0, what); /* EVAL only reads */
    if (want != NULL && strcmp(want, "none") == 0) {
        CHECK(b.present == 0x1Eu, what);
        if (b.present != 0x1Eu) {
            printf("  %s: keys 0x%x, want 1-4 only\n", what, (unsigned)b.present);
        }
    } else if (want != NULL) {
        long n = (long)strtoul(want, NULL, 10);
        long np = uint_array(&b, 5, predicted, MAX_FRAME), nl = uint_array(&b, 6, loss, MAX_FRAME);
        uint64_t sum = 0;
        uint32_t correct = 0;

        CHECK(b.present == 0x7Eu && np == n && nl == n && totals[0] == (uint32_t)n, what);
        if (np != n || nl != n) {
            printf("  %s: %ld classes and %ld losses, want %ld\n", what, np, nl, n);
            return;
        }
        for (i = 0; i < n; i++) {
            const tr_sample_meta *m = &fixture_sample_meta[(index + (uint32_t)i) % SLOTS];

            CHECK(predicted[i] < fixture_dev.model.classes, what);
            correct += predicted[i] == m->label;
            sum += loss[i];
        }
        CHECK(correct == totals[1], what);
        CHECK(sum == totals[2], what);
    }
    if (of != NULL) {
        int found = 0;

        for (i = 0; i < g_nevals; i++) {
            if (strcmp(g_evals[i].name, of) == 0) {
                found = 1;
                CHECK(memcmp(g_evals[i].totals, totals, sizeof totals) == 0, what);
                if (memcmp(g_evals[i].totals, totals, sizeof totals) != 0) {
                    printf("  %s: totals are not those of '%s'\n", what, of);
                }
            }
        }
        CHECK(found, what);
    }
    if (g_nevals < MAX_KEPT) {
        snprintf(g_evals[g_nevals].name, sizeof g_evals[0].name, "%s", get("name"));
        memcpy(g_evals[g_nevals].totals, totals, sizeof totals);
        g_nevals++;
    }
}

/* The value of `key=` in a `device: train ...` line, or NULL. */
static const char *token(const char *line, const char *key, char *out, size_t cap)
{
    size_t kl = strlen(key);
    const char *p = line;

    while ((p = strstr(p, key)) != NULL) {
        if ((p == line || p[-1] == ' ') && p[kl] == '=') {
            size_t n = strcspn(p + kl + 1, " ");
            if (n >= cap) {
                n = cap - 1u;
            }
            memcpy(out, p + kl + 1, n);
            out[n] = '\0';
            return out;
        }
        p += kl;
    }
    return NULL;
}

static void check_device_step(const char *what, const uint8_t *wire, size_t n, const tr_frame *req)
{
    static uint8_t raw[MAX_FRAME], want[MAX_FRAME + 64], again[TR_FRAME_WIRE_MAX(MAX_FRAME)];
    const char *scenario = get("scenario"), *model = get("model"), *device = get("device"), *ans = get("answer");
    dev_state before, after;
    tr_frame r;
    tr_body b;
    int ok;

    CHECK(device != NULL, what);
    if (device == NULL) {
        return;
    }
    g_device_steps++;
    if (strcmp(scenario, g_scenario) != 0) {
        snprintf(g_scenario, sizeof g_scenario, "%s", scenario);
        fresh_device(what);
    }
    if (model != NULL) {
        CHECK(load_model(what, model), what);
    }
    snapshot(&before);
    ok = exchange(wire, n, req->seq, &r, raw);
    CHECK(ok, what);
    if (!ok) {
        printf("  %s: no answer\n", what);
        return;
    }
    snapshot(&after);
    if (ans != NULL) {
        size_t an = unhex(ans, want, sizeof want, &ok), wl = 0;

        CHECK(ok && tr_frame_encode(&r, again, sizeof again, &wl) == TR_OK && wl == an &&
                  memcmp(again, want, an) == 0, what);
        if (!(ok && wl == an && memcmp(again, want, an) == 0)) {
            printf("  %s: answer differs (type 0x%02x)\n", what, r.type);
        }
    }
    if (strncmp(device, "error ", 6) == 0) {
        uint32_t code = 0;

        CHECK(r.type == TR_MSG_ERROR && tr_body_parse(&b, r.body, r.body_len) == TR_OK &&
                  tr_body_u32(&b, 1, &code) == TR_OK && code == code_of(device + 6), what);
        CHECK(memcmp(&before, &after, sizeof before) == 0, what); /* an ERROR changed nothing */
        if (memcmp(&before, &after, sizeof before) != 0) {
            printf("  %s: an ERROR answer changed the device's state\n", what);
        }
    } else if (strcmp(device, "ok") == 0) {
        CHECK(r.type == req->type, what);
        if (r.type == TR_MSG_EVAL && (get("predicted") != NULL || get("totals_of") != NULL)) {
            check_eval(what, req, &r, &before, &after);
        }
    } else if (strncmp(device, "train", 5) == 0) {
        char v[64];
        const char *of = get("records_of");
        uint32_t applied = 0;
        int dup = -1;
        size_t nrec = 0, start, end;
        tr_cbor_reader rd;

        CHECK(r.type == TR_MSG_TRAIN && tr_body_parse(&b, r.body, r.body_len) == TR_OK, what);
        if (r.type != TR_MSG_TRAIN || tr_body_parse(&b, r.body, r.body_len) != TR_OK) {
            printf("  %s: answered type 0x%02x\n", what, r.type);
            return;
        }
        tr_cbor_reader_init(&rd, b.buf, b.len);
        rd.pos = b.off[2];
        CHECK(tr_cbor_read_bool(&rd, &dup) == TR_OK, what);
        rd.pos = start = b.off[4];
        CHECK(tr_cbor_read_array(&rd, &nrec) == TR_OK, what);
        rd.pos = start;
        tr_cbor_skip(&rd);
        end = rd.pos;
        CHECK(tr_body_u32(&b, 3, &applied) == TR_OK, what);
        CHECK((b.present & (1u << 5)) == 0u, what); /* no engine fault */
        if (token(device, "duplicate", v, sizeof v) != NULL) {
            CHECK(dup == (strcmp(v, "true") == 0), what);
        }
        if (token(device, "records", v, sizeof v) != NULL) {
            CHECK(nrec == strtoul(v, NULL, 10), what);
            if (nrec != strtoul(v, NULL, 10)) {
                printf("  %s: %u records, want %s\n", what, (unsigned)nrec, v);
            }
        }
        if (token(device, "steps_applied", v, sizeof v) != NULL) {
            CHECK(applied == strtoul(v, NULL, 10) && applied == fixture_dev.steps_applied, what);
        }
        if (token(device, "weights", v, sizeof v) != NULL) {
            int same = memcmp(before.weights_sha, after.weights_sha, 32) == 0;
            CHECK(strcmp(v, "same") == 0 ? same : !same, what);
        }
        if (dup == 1) {
            CHECK(memcmp(&before, &after, sizeof before) == 0, what); /* a duplicate changed nothing */
        }
        if (of != NULL) {
            int i, found = 0;

            for (i = 0; i < g_nkept; i++) {
                if (strcmp(g_kept[i].name, of) == 0) {
                    found = 1;
                    CHECK(g_kept[i].len == end - start && memcmp(g_kept[i].cbor, b.buf + start, end - start) == 0,
                          what);
                    if (!(g_kept[i].len == end - start && memcmp(g_kept[i].cbor, b.buf + start, end - start) == 0)) {
                        printf("  %s: records are not those of '%s'\n", what, of);
                    }
                }
            }
            CHECK(found, what);
            CHECK(nrec > 0u, what);
        }
        if (g_nkept < MAX_KEPT && end - start <= sizeof g_kept[0].cbor) {
            snprintf(g_kept[g_nkept].name, sizeof g_kept[0].name, "%s", get("name"));
            memcpy(g_kept[g_nkept].cbor, b.buf + start, end - start);
            g_kept[g_nkept].len = end - start;
            g_nkept++;
        }
    } else {
        printf("  %s: unknown device expectation '%s'\n", what, device);
        CHECK(0, what);
    }
}

static int is_bad_vector(void)
{
    const char *v = get("valid");
    const char *e = get("expect");

    return (v != NULL && strcmp(v, "false") == 0) || (e != NULL && strstr(e, "bad") != NULL) ||
           (e != NULL && strstr(e, "drop") != NULL) || (e != NULL && strstr(e, "nak") != NULL);
}

static unsigned long num(const char *s)
{
    return strtoul(s, NULL, 0);
}

static void check_block(const char *file)
{
    static uint8_t wire[70000], raw[65535] /* the host limit */, again[70000];
    static char dg[200000];
    const char *w = get("wire"), *name = get("name"), *v;
    tr_frame_rx rx;
    tr_frame f;
    size_t n, used, len = 0, wl;
    tr_frame_event ev = TR_FRAME_NONE;
    int ok;
    char what[256];

    snprintf(what, sizeof what, "%s: %s", file, name != NULL ? name : "(unnamed)");
    if (w == NULL) {
        const char *hex = get("hex");
        if (hex != NULL && (v = get("crc32")) != NULL) {
            check_crc(what, hex, v);
        } else if (hex != NULL && (v = get("cobs")) != NULL) {
            check_cobs(what, hex, v);
        } else if (hex != NULL) {
            check_cbor(what, hex);
        }
        return;
    }
    g_vectors++;
    n = unhex(w, wire, sizeof wire, &ok);
    CHECK(ok, what);
    tr_frame_rx_init(&rx, raw, sizeof raw);
    tr_frame_feed(&rx, wire, n, &used, &ev);
    if (is_bad_vector()) {
        const char *dev_want = get("device");
        const char *error = get("error");
        int dropped = ev != TR_FRAME_OK || tr_frame_parse(rx.buf, rx.len, &f) != TR_OK;

        CHECK(error != NULL && dev_want != NULL, what);
        if (error == NULL || dev_want == NULL) {
            return;
        }
        /* COBS, length and CRC defects never reach the dispatcher */
        if (strcmp(error, "BAD_COBS") == 0 || strcmp(error, "TOO_SHORT") == 0 ||
            strcmp(error, "TOO_LONG") == 0 || strcmp(error, "BAD_CRC") == 0) {
            CHECK(dropped, what);
        } else {
            CHECK(!dropped, what);
        }
        if (!dropped && strcmp(error, "BAD_CBOR") == 0) {
            CHECK(tr_cbor_check_strict(f.body, f.body_len) != TR_OK, what);
        }
        check_device(what, wire, n, dev_want);
        return;
    }
    CHECK(ev == TR_FRAME_OK && used == n, what);
    if (ev != TR_FRAME_OK || tr_frame_parse(rx.buf, rx.len, &f) != TR_OK) {
        printf("  %s does not decode\n", what);
        return;
    }
    if ((v = get("type")) != NULL && strspn(v, "0123456789xXabcdefABCDEF") == strlen(v)) {
        CHECK(f.type == num(v), what);
    }
    if ((v = get("seq")) != NULL) {
        CHECK(f.seq == num(v), what);
    }
    if ((v = get("flags")) != NULL && strspn(v, "0123456789xXabcdefABCDEF") == strlen(v)) {
        CHECK(f.flags == num(v), what);
    }
    if ((v = get("ver")) != NULL) {
        CHECK(f.ver == num(v), what);
    }
    if ((v = get("body")) != NULL) {
        static uint8_t body[70000];
        size_t bn = unhex(v, body, sizeof body, &ok);

        CHECK(ok && bn == f.body_len && memcmp(body, f.body, bn) == 0, what);
    }
    /* Re-encode: the same wire bytes. */
    CHECK(tr_frame_encode(&f, again, sizeof again, &wl) == TR_OK && wl == n && memcmp(again, wire, n) == 0,
          what);
    if ((v = get("diag")) != NULL) {
        tr_cbor_reader r;

        if (f.body_len == 0u) {
            strcpy(dg, "{}");
        } else {
            tr_cbor_reader_init(&r, f.body, f.body_len);
            len = 0;
            dg[0] = '\0';
            CHECK(diag_item(&r, dg, sizeof dg, &len, NULL, 0) == 0 && r.pos == f.body_len, what);
        }
        if (strcmp(dg, v) != 0) {
            printf("  %s diag\n    want %s\n    got  %s\n", what, v, dg);
        }
        CHECK(strcmp(dg, v) == 0, what);
    }
    if (get("scenario") != NULL) {
        check_device_step(what, wire, n, &f);
    }
}

static void run_file(const char *dir, const char *file)
{
    char path[1024];
    static char line[MAX_LINE];
    FILE *fp;

    snprintf(path, sizeof path, "%s/%s", dir, file);
    fp = fopen(path, "r");
    CHECK(fp != NULL, path);
    if (fp == NULL) {
        return;
    }
    g_nkv = 0;
    while (1) {
        char *got = fgets(line, sizeof line, fp);
        size_t l;
        char *colon;

        if (got != NULL) {
            l = strlen(line);
            while (l > 0 && (line[l - 1] == '\n' || line[l - 1] == '\r')) {
                line[--l] = '\0';
            }
        }
        if (got == NULL || line[0] == '\0') {
            int i;

            check_block(file);
            for (i = 0; i < g_nkv; i++) {
                free(g_kv[i].val);
            }
            g_nkv = 0;
            if (got == NULL) {
                break;
            }
            continue;
        }
        if (line[0] == '#') {
            continue;
        }
        colon = strchr(line, ':');
        if (colon == NULL || g_nkv >= MAX_BLOCK_KEYS || (size_t)(colon - line) >= sizeof g_kv[0].key) {
            continue;
        }
        memcpy(g_kv[g_nkv].key, line, (size_t)(colon - line));
        g_kv[g_nkv].key[colon - line] = '\0';
        colon++;
        while (*colon == ' ') {
            colon++;
        }
        g_kv[g_nkv].val = malloc(strlen(colon) + 1u);
        strcpy(g_kv[g_nkv].val, colon);
        g_nkv++;
    }
    fclose(fp);
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : "../protocol/vectors";
    DIR *d = opendir(dir);
    struct dirent *e;
    int files = 0;

    if (d != NULL) {
        while ((e = readdir(d)) != NULL) {
            size_t l = strlen(e->d_name);
            if (l > 4 && strcmp(e->d_name + l - 4, ".vec") == 0) {
                run_file(dir, e->d_name);
                files++;
            }
        }
        closedir(d);
    }
    printf("test_vectors: %d files, %d frames (%d fed to a live device), %d CBOR items, %d CRC-32, %d COBS\n",
           files, g_vectors, g_device_steps, g_cbor, g_crc, g_cobs);
    CHECK(g_vectors > 0 && g_device_steps > 0 && g_cbor > 0 && g_crc > 0 && g_cobs > 0,
          "every kind of vector was read");
    TEST_DONE("test_vectors");
}
