/* CBOR subset, COBS, CRC-32, SHA-256 (FIPS 180-2 vectors) and the frame
 * receiver fed byte by byte and in random splits. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cbor/tr_cbor.h"
#include "crypto/tr_sha256.h"
#include "proto/tr_cobs.h"
#include "proto/tr_crc32.h"
#include "proto/tr_frame.h"
#include "proto_test.h"

static int hex_eq(const uint8_t *p, size_t n, const char *hex)
{
    size_t i;
    char buf[3];

    if (strlen(hex) != 2u * n) {
        return 0;
    }
    for (i = 0; i < n; i++) {
        snprintf(buf, sizeof buf, "%02x", p[i]);
        if (buf[0] != hex[2 * i] || buf[1] != hex[2 * i + 1]) {
            return 0;
        }
    }
    return 1;
}

static void test_cbor_writer(void)
{
    uint8_t buf[64];
    tr_cbor_writer w;

    tr_cbor_writer_init(&w, buf, sizeof buf);
    tr_cbor_write_uint(&w, 0);
    tr_cbor_write_uint(&w, 23);
    tr_cbor_write_uint(&w, 24);
    tr_cbor_write_uint(&w, 255);
    tr_cbor_write_uint(&w, 256);
    tr_cbor_write_uint(&w, 65536);
    tr_cbor_write_uint(&w, 0x100000000ull);
    tr_cbor_write_int(&w, -1);
    tr_cbor_write_int(&w, -25);
    CHECK(w.status == TR_OK && hex_eq(buf, w.len, "0017181818ff1901001a000100001b00000001000000002038"
                                                    "18"),
          "shortest integers");
    tr_cbor_writer_init(&w, buf, sizeof buf);
    tr_cbor_write_map(&w, 2);
    tr_cbor_write_uint(&w, 1);
    tr_cbor_write_bytes(&w, (const uint8_t *)"\x01\x02", 2);
    tr_cbor_write_uint(&w, 2);
    tr_cbor_write_cstr(&w, "hi");
    tr_cbor_write_array(&w, 3);
    tr_cbor_write_bool(&w, 0);
    tr_cbor_write_bool(&w, 1);
    tr_cbor_write_null(&w);
    CHECK(w.status == TR_OK && hex_eq(buf, w.len, "a20142010202626869" "83f4f5f6"), "map, strings, simple");
    /* Overflow is reported and sticky. */
    tr_cbor_writer_init(&w, buf, 3);
    CHECK(tr_cbor_write_uint(&w, 1000) == TR_OK, "3 bytes fit");
    CHECK(tr_cbor_write_uint(&w, 1) == TR_ERR_NOMEM, "4th byte overflows");
    CHECK(tr_cbor_write_uint(&w, 0) == TR_ERR_NOMEM && w.len == 3, "sticky");
}

static void test_cbor_reader(void)
{
    static const uint8_t ok[] = {0xa3, 0x01, 0x1a, 0x00, 0x01, 0x00, 0x00, 0x02, 0x42, 0xaa, 0xbb,
                                 0x03, 0x82, 0x38, 0x18, 0xf5};
    tr_cbor_reader r;
    size_t n;
    uint64_t v;
    uint32_t u;
    int64_t i;
    const uint8_t *p;
    int b;
    tr_cbor_type t;

    CHECK(tr_cbor_check(ok, sizeof ok) == TR_OK, "well-formed map");
    tr_cbor_reader_init(&r, ok, sizeof ok);
    CHECK(tr_cbor_read_map(&r, &n) == TR_OK && n == 3, "map header");
    CHECK(tr_cbor_read_uint(&r, &v) == TR_OK && v == 1, "key 1");
    CHECK(tr_cbor_read_u32(&r, &u) == TR_OK && u == 65536, "u32 value");
    CHECK(tr_cbor_read_uint(&r, &v) == TR_OK && v == 2, "key 2");
    CHECK(tr_cbor_peek_type(&r, &t) == TR_OK && t == TR_CBOR_BYTES, "peek bytes");
    CHECK(tr_cbor_read_bytes(&r, &p, &n) == TR_OK && n == 2 && p == ok + 9, "zero-copy bytes");
    CHECK(tr_cbor_read_uint(&r, &v) == TR_OK && v == 3, "key 3");
    CHECK(tr_cbor_read_array(&r, &n) == TR_OK && n == 2, "array");
    CHECK(tr_cbor_read_int(&r, &i) == TR_OK && i == -25, "negative");
    CHECK(tr_cbor_read_bool(&r, &b) == TR_OK && b == 1, "true");
    CHECK(tr_cbor_peek_type(&r, &t) == TR_OK && t == TR_CBOR_END, "end");
    CHECK(tr_cbor_read_uint(&r, &v) == TR_ERR_TRUNCATED, "read past end");
    {
        static const uint8_t big[] = {0x1b, 0, 0, 0, 1, 0, 0, 0, 0};
        tr_cbor_reader_init(&r, big, sizeof big);
        CHECK(tr_cbor_read_u32(&r, &u) == TR_ERR_OVERFLOW && r.pos == 0, "33-bit value is not a u32");
        CHECK(tr_cbor_read_uint(&r, &v) == TR_OK && v == 0x100000000ull, "but a uint64");
    }
    /* Rejected shapes (SPEC §2). */
    {
        static const uint8_t flt[] = {0xf9, 0x3c, 0x00};
        static const uint8_t tag[] = {0xc1, 0x01};
        static const uint8_t indef[] = {0x9f, 0x01, 0xff};
        static const uint8_t past[] = {0x45, 0x01, 0x02};
        static const uint8_t trunc[] = {0x19, 0x01};
        static const uint8_t undef[] = {0xf7};
        static const uint8_t bigmap[] = {0xbb, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0};
        static const uint8_t deep8[] = {0x81, 0x81, 0x81, 0x81, 0x81, 0x81, 0x81, 0x80};
        static const uint8_t deep9[] = {0x81, 0x81, 0x81, 0x81, 0x81, 0x81, 0x81, 0x81, 0x80};
        static const uint8_t trailing[] = {0x01, 0x02};

        CHECK(tr_cbor_check(flt, sizeof flt) != TR_OK, "float rejected");
        CHECK(tr_cbor_check(tag, sizeof tag) != TR_OK, "tag rejected");
        CHECK(tr_cbor_check(indef, sizeof indef) != TR_OK, "indefinite rejected");
        CHECK(tr_cbor_check(past, sizeof past) == TR_ERR_TRUNCATED, "length past end");
        CHECK(tr_cbor_check(trunc, sizeof trunc) == TR_ERR_TRUNCATED, "truncated head");
        CHECK(tr_cbor_check(undef, sizeof undef) != TR_OK, "undefined rejected");
        CHECK(tr_cbor_check(bigmap, sizeof bigmap) == TR_ERR_TRUNCATED, "huge count");
        CHECK(tr_cbor_check(deep8, sizeof deep8) == TR_OK, "8 levels accepted");
        CHECK(tr_cbor_check(deep9, sizeof deep9) == TR_ERR_FORMAT, "9 levels rejected");
        CHECK(tr_cbor_check(trailing, sizeof trailing) == TR_ERR_FORMAT, "trailing bytes");
        tr_cbor_reader_init(&r, ok, sizeof ok);
        CHECK(tr_cbor_read_array(&r, &n) == TR_ERR_FORMAT && r.pos == 0, "wrong major type");
    }
}

/* The primitives the shared vectors need beyond the device's bodies. */
static void test_cbor_nint_and_strict(void)
{
    static const uint8_t min64[] = {0x3b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    uint8_t buf[16];
    tr_cbor_writer w;
    tr_cbor_reader r;
    uint64_t n;
    int64_t i;

    /* -2^64 has no int64_t: read and written as its argument 2^64-1 */
    tr_cbor_reader_init(&r, min64, sizeof min64);
    CHECK(tr_cbor_read_int(&r, &i) == TR_ERR_OVERFLOW, "-2^64 is not an int64");
    CHECK(tr_cbor_read_nint(&r, &n) == TR_OK && n == UINT64_MAX && r.pos == sizeof min64, "nint -2^64");
    tr_cbor_reader_init(&r, min64, 1);
    CHECK(tr_cbor_read_nint(&r, &n) == TR_ERR_TRUNCATED, "nint cut short");
    tr_cbor_reader_init(&r, (const uint8_t *)"\x01", 1);
    CHECK(tr_cbor_read_nint(&r, &n) == TR_ERR_FORMAT && r.pos == 0, "uint is not a nint");
    tr_cbor_writer_init(&w, buf, sizeof buf);
    tr_cbor_write_nint(&w, UINT64_MAX);
    tr_cbor_write_nint(&w, 0);
    tr_cbor_write_nint(&w, 24);
    CHECK(w.status == TR_OK && hex_eq(buf, w.len, "3bffffffffffffffff" "20" "3818"), "nint writer");

    /* content rules: UTF-8 text, unsigned and unique map keys (at any depth) */
    {
        static const struct {
            const char *hex;
            tr_status want;
        } cases[] = {
            {"a201000200", TR_OK},               /* keys 1, 2 */
            {"a202000100", TR_OK},               /* order is not checked, repeats are */
            {"a201000100", TR_ERR_FORMAT},       /* key 1 twice */
            {"a3010002001a0000000100", TR_ERR_FORMAT}, /* same key, longer head */
            {"a1616101", TR_ERR_FORMAT},         /* text key */
            {"a12001", TR_ERR_FORMAT},           /* negative key */
            {"81a201000100", TR_ERR_FORMAT},     /* repeat inside an array */
            {"a101a201000100", TR_ERR_FORMAT},   /* repeat in a nested map */
            {"6568c3a96c6c", TR_OK},             /* "h\u00e9ll" */
            {"64f09f9880", TR_OK},               /* U+1F600 */
            {"62c328", TR_ERR_FORMAT},           /* bad continuation */
            {"62c0af", TR_ERR_FORMAT},           /* overlong '/' */
            {"63eda080", TR_ERR_FORMAT},         /* surrogate U+D800 */
            {"64f4908080", TR_ERR_FORMAT},       /* past U+10FFFF */
            {"62e282", TR_ERR_FORMAT},           /* sequence cut by the string's end */
            {"62c3a9", TR_OK},
            {"4101", TR_OK},                     /* byte strings are not UTF-8 checked */
            {"42c328", TR_OK},
            {"a201", TR_ERR_TRUNCATED},          /* well-formedness first */
        };
        for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
            uint8_t item[32];
            size_t len = strlen(cases[k].hex) / 2u;
            char what[64];
            for (size_t j = 0; j < len; j++) {
                unsigned v;
                sscanf(cases[k].hex + 2u * j, "%2x", &v);
                item[j] = (uint8_t)v;
            }
            snprintf(what, sizeof what, "strict check of %s", cases[k].hex);
            CHECK(tr_cbor_check_strict(item, len) == cases[k].want, what);
        }
    }
}

static void test_sha256(void)
{
    uint8_t d[32];
    tr_sha256_ctx c;
    static uint8_t million[1000000];
    size_t i;

    tr_sha256((const uint8_t *)"abc", 3, d);
    CHECK(hex_eq(d, 32, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"), "abc");
    tr_sha256((const uint8_t *)"", 0, d);
    CHECK(hex_eq(d, 32, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"), "empty");
    tr_sha256((const uint8_t *)"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 56, d);
    CHECK(hex_eq(d, 32, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"), "448 bits");
    memset(million, 'a', sizeof million);
    tr_sha256_init(&c);
    for (i = 0; i < sizeof million; i += 997u) {   /* odd pieces cross every block boundary */
        tr_sha256_update(&c, million + i, sizeof million - i < 997u ? sizeof million - i : 997u);
    }
    tr_sha256_final(&c, d);
    CHECK(hex_eq(d, 32, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"), "million a");
    CHECK(tr_sha256_update(&c, million, 1) == TR_ERR_ARG, "spent context refused");
}

static void test_crc_cobs(void)
{
    uint32_t crc;
    uint8_t in[600], enc[700], dec[600];
    size_t n, m, len, i;

    tr_crc32((const uint8_t *)"123456789", 9, &crc);
    CHECK(crc == 0xCBF43926u, "CRC-32 check value");
    {
        static const uint8_t z[] = {0x11, 0x22, 0x00, 0x33};
        tr_cobs_encode(z, sizeof z, enc, sizeof enc, &n);
        CHECK(hex_eq(enc, n, "03112202" "33"), "COBS with a zero");
    }
    for (len = 0; len < 600; len += 1u + len / 7u) {
        for (i = 0; i < len; i++) {
            in[i] = (uint8_t)((i * 37u + len) % 5u == 0u ? 0u : i + 1u);
        }
        CHECK(tr_cobs_encode(in, len, enc, sizeof enc, &n) == TR_OK, "encode");
        CHECK(n <= TR_COBS_MAX(len), "within the worst case");
        CHECK(memchr(enc, 0, n) == NULL, "no zero inside");
        CHECK(tr_cobs_decode(enc, n, dec, sizeof dec, &m) == TR_OK && m == len &&
                  memcmp(in, dec, len) == 0, "round trip");
    }
    /* 254 non-zero bytes: one full block, then an empty block (as the host codec) */
    memset(in, 7, 254);
    tr_cobs_encode(in, 254, enc, sizeof enc, &n);
    CHECK(n == 256 && enc[0] == 0xFF && enc[255] == 0x01 && n <= TR_COBS_MAX(254), "full block");
    CHECK(tr_cobs_encode(in, 254, enc, 255, &n) == TR_ERR_NOMEM, "no room for the empty block");
    CHECK(tr_cobs_encode(in, 254, enc, 200, &n) == TR_ERR_NOMEM, "encode overflow");
    {
        static const uint8_t bad1[] = {0x05, 0x01};
        static const uint8_t bad2[] = {0x03, 0x01, 0x00};
        CHECK(tr_cobs_decode(bad1, sizeof bad1, dec, sizeof dec, &m) == TR_ERR_FORMAT, "block past end");
        CHECK(tr_cobs_decode(bad2, sizeof bad2, dec, sizeof dec, &m) == TR_ERR_FORMAT, "zero inside");
    }
}

/* Feeds wire bytes in pieces of random size; collects good and bad frames. */
static void feed_split(const uint8_t *wire, size_t n, unsigned seed, int *good, int *bad,
                       uint8_t *last, size_t *last_len)
{
    uint8_t buf[512];
    tr_frame_rx rx;
    size_t pos = 0;

    tr_frame_rx_init(&rx, buf, sizeof buf);
    srand(seed);
    while (pos < n) {
        size_t piece = seed == 0u ? 1u : 1u + (size_t)rand() % 40u;
        size_t used;
        tr_frame_event ev;

        if (piece > n - pos) {
            piece = n - pos;
        }
        while (piece > 0u) {
            tr_frame_feed(&rx, wire + pos, piece, &used, &ev);
            pos += used;
            piece -= used;
            if (ev == TR_FRAME_OK) {
                (*good)++;
                memcpy(last, rx.buf, rx.len);
                *last_len = rx.len;
            } else if (ev == TR_FRAME_BAD) {
                (*bad)++;
            }
        }
    }
}

static void test_frames(void)
{
    uint8_t body[300], wire[2048], last[512];
    tr_frame f, g;
    size_t n = 0, k, last_len = 0;
    unsigned seed;
    int i;

    for (i = 0; i < 300; i++) {
        body[i] = (uint8_t)(i % 3 == 0 ? 0 : i);
    }
    f.ver = 1;
    f.type = 0x30;
    f.seq = 0xBEEF;
    f.flags = TR_FRAME_FLAG_RESP;
    f.body = body;
    f.body_len = sizeof body;
    /* Wire: empty frame, good frame, corrupt frame, garbage, good frame. */
    wire[n++] = 0;
    tr_frame_encode(&f, wire + n, sizeof wire - n, &k);
    n += k;
    tr_frame_encode(&f, wire + n, sizeof wire - n, &k);
    wire[n + 10] ^= 0x40;   /* breaks the CRC (or the COBS) */
    if (wire[n + 10] == 0) {
        wire[n + 10] = 1;
    }
    n += k;
    memcpy(wire + n, "\x03\x01\x02\x00", 4);   /* 2 bytes: too short */
    n += 4;
    tr_frame_encode(&f, wire + n, sizeof wire - n, &k);
    n += k;
    for (seed = 0; seed < 50; seed++) {
        int good = 0, bad = 0;

        feed_split(wire, n, seed, &good, &bad, last, &last_len);
        CHECK(good == 2 && bad == 2, "two good, two bad, empty ignored");
    }
    CHECK(tr_frame_parse(last, last_len, &g) == TR_OK && g.type == 0x30 && g.seq == 0xBEEF &&
              g.flags == TR_FRAME_FLAG_RESP && g.body_len == sizeof body &&
              memcmp(g.body, body, sizeof body) == 0, "decoded header and body");
    /* A frame longer than the receive buffer is dropped, the next one served. */
    {
        uint8_t small[64];
        tr_frame_rx rx;
        size_t used, pos = 0;
        tr_frame_event ev;
        int good = 0, bad = 0;

        tr_frame_rx_init(&rx, small, sizeof small);
        f.body_len = 10;
        tr_frame_encode(&f, wire + n, sizeof wire - n, &k);
        k += n;
        pos = 0;
        /* wire[0..n) holds 300-byte frames: too long for 64 bytes. */
        while (pos < k) {
            tr_frame_feed(&rx, wire + pos, k - pos, &used, &ev);
            pos += used;
            good += ev == TR_FRAME_OK;
            bad += ev == TR_FRAME_BAD;
        }
        CHECK(good == 1 && bad == 4, "oversized frames dropped, small one kept");
    }
}

int main(void)
{
    test_cbor_writer();
    test_cbor_reader();
    test_cbor_nint_and_strict();
    test_sha256();
    test_crc_cobs();
    test_frames();
    TEST_DONE("test_codec");
}
