/* Frames of protocol/SPEC.md §1: COBS(ver type seq flags body crc32) 0x00.
 * Framing is a pure function: bytes go in, complete raw frames (or a bad-frame
 * indication) come out, decoded into the caller's buffer; encoding writes
 * into the caller's buffer. No I/O here. */
#ifndef TR_FRAME_H
#define TR_FRAME_H

#include <stddef.h>
#include <stdint.h>
#include "common/tr_status.h"
#include "proto/tr_cobs.h"

#define TR_PROTO_VERSION 1u
#define TR_FRAME_HEADER 5u
#define TR_FRAME_OVERHEAD 9u          /* header + CRC: the shortest raw frame */
#define TR_FRAME_FLAG_RESP 0x01u
#define TR_FRAME_FLAG_DEV 0x02u
/* Wire bytes of a raw frame of n bytes: COBS worst case plus the delimiter. */
#define TR_FRAME_WIRE_MAX(n) (TR_COBS_MAX(n) + 1u)

typedef enum {
    TR_FRAME_NONE = 0,   /* no complete frame yet */
    TR_FRAME_OK = 1,     /* rx->buf[0 .. rx->len) holds a raw frame with a good CRC */
    TR_FRAME_BAD = 2     /* a frame was dropped: COBS, length or CRC */
} tr_frame_event;

typedef struct {
    uint8_t *buf;     /* decoded raw frame */
    size_t cap;       /* largest raw frame accepted (max_frame) */
    size_t len;
    uint8_t left;     /* data bytes still due in the current COBS block */
    uint8_t code;     /* code byte of the current block */
    uint8_t started;  /* a byte of this frame has arrived */
    uint8_t over;     /* the frame outgrew buf */
} tr_frame_rx;

typedef struct {
    uint8_t ver;
    uint8_t type;
    uint16_t seq;
    uint8_t flags;
    const uint8_t *body;   /* CBOR, may be empty (= empty map) */
    size_t body_len;
} tr_frame;

tr_status tr_frame_rx_init(tr_frame_rx *rx, uint8_t *buf, size_t cap);
/* Consumes bytes up to and including the first delimiter that ends a frame
 * (*consumed says how many) and reports it in *ev; call again with the rest.
 * A TR_FRAME_OK frame stays in rx->buf until the next call. */
tr_status tr_frame_feed(tr_frame_rx *rx, const uint8_t *bytes, size_t len, size_t *consumed,
                        tr_frame_event *ev);
/* Splits a raw frame (CRC checked again: TR_ERR_HASH; short: TR_ERR_TRUNCATED). */
tr_status tr_frame_parse(const uint8_t *raw, size_t len, tr_frame *f);
/* Encodes f (ver, type, seq, flags, body) as wire bytes with the delimiter. */
tr_status tr_frame_encode(const tr_frame *f, uint8_t *out, size_t cap, size_t *out_len);

#endif
