/* Frame receive state machine (incremental COBS decode) and frame encoder. */
#include "proto/tr_frame.h"

#include "proto/tr_crc32.h"

tr_status tr_frame_rx_init(tr_frame_rx *rx, uint8_t *buf, size_t cap)
{
    if (rx == NULL || buf == NULL || cap < TR_FRAME_OVERHEAD) {
        return TR_ERR_ARG;
    }
    rx->buf = buf;
    rx->cap = cap;
    rx->len = 0;
    rx->left = 0;
    rx->code = 0;
    rx->started = 0;
    rx->over = 0;
    return TR_OK;
}

static void append(tr_frame_rx *rx, uint8_t b)
{
    if (rx->len < rx->cap) {
        rx->buf[rx->len++] = b;
    } else {
        rx->over = 1;
    }
}

static tr_frame_event finish(tr_frame_rx *rx)
{
    uint32_t crc, got;
    tr_frame_event ev = TR_FRAME_BAD;

    if (!rx->over && rx->left == 0u && rx->len >= TR_FRAME_OVERHEAD &&
        tr_crc32(rx->buf, rx->len - 4u, &crc) == TR_OK) {
        got = (uint32_t)rx->buf[rx->len - 4u] | ((uint32_t)rx->buf[rx->len - 3u] << 8) |
              ((uint32_t)rx->buf[rx->len - 2u] << 16) | ((uint32_t)rx->buf[rx->len - 1u] << 24);
        if (got == crc) {
            ev = TR_FRAME_OK;
        }
    }
    rx->left = 0;
    rx->code = 0;
    rx->started = 0;
    rx->over = 0;
    return ev;
}

tr_status tr_frame_feed(tr_frame_rx *rx, const uint8_t *bytes, size_t len, size_t *consumed,
                        tr_frame_event *ev)
{
    size_t i;

    if (rx == NULL || (bytes == NULL && len != 0u) || consumed == NULL || ev == NULL) {
        return TR_ERR_ARG;
    }
    *ev = TR_FRAME_NONE;
    for (i = 0; i < len; i++) {
        uint8_t b = bytes[i];

        if (b == 0u) {
            if (!rx->started) {
                rx->len = 0;
                continue;   /* empty frame: ignored */
            }
            *ev = finish(rx);
            *consumed = i + 1u;
            return TR_OK;
        }
        if (!rx->started) {
            rx->len = 0;
            rx->started = 1;
        } else if (rx->left == 0u && rx->code != 0xFFu) {
            append(rx, 0);   /* the zero a short block stands for */
        }
        if (rx->left == 0u) {
            rx->code = b;
            rx->left = (uint8_t)(b - 1u);
        } else {
            append(rx, b);
            rx->left--;
        }
    }
    *consumed = len;
    return TR_OK;
}

tr_status tr_frame_parse(const uint8_t *raw, size_t len, tr_frame *f)
{
    uint32_t crc, got;
    tr_status s;

    if (raw == NULL || f == NULL) {
        return TR_ERR_ARG;
    }
    if (len < TR_FRAME_OVERHEAD) {
        return TR_ERR_TRUNCATED;
    }
    s = tr_crc32(raw, len - 4u, &crc);
    if (s != TR_OK) {
        return s;
    }
    got = (uint32_t)raw[len - 4u] | ((uint32_t)raw[len - 3u] << 8) |
          ((uint32_t)raw[len - 2u] << 16) | ((uint32_t)raw[len - 1u] << 24);
    if (got != crc) {
        return TR_ERR_HASH;
    }
    f->ver = raw[0];
    f->type = raw[1];
    f->seq = (uint16_t)(raw[2] | (raw[3] << 8));
    f->flags = raw[4];
    f->body = raw + TR_FRAME_HEADER;
    f->body_len = len - TR_FRAME_OVERHEAD;
    return TR_OK;
}

tr_status tr_frame_encode(const tr_frame *f, uint8_t *out, size_t cap, size_t *out_len)
{
    uint8_t hdr[TR_FRAME_HEADER], tail[4];
    uint32_t reg = TR_CRC32_INIT;
    tr_cobs_encoder e;
    size_t n;
    tr_status s;

    if (f == NULL || out == NULL || out_len == NULL || (f->body == NULL && f->body_len != 0u)) {
        return TR_ERR_ARG;
    }
    hdr[0] = f->ver;
    hdr[1] = f->type;
    hdr[2] = (uint8_t)f->seq;
    hdr[3] = (uint8_t)(f->seq >> 8);
    hdr[4] = f->flags;
    s = tr_crc32_update(&reg, hdr, sizeof hdr);
    if (s == TR_OK) {
        s = tr_crc32_update(&reg, f->body, f->body_len);
    }
    reg ^= 0xFFFFFFFFu;
    tail[0] = (uint8_t)reg;
    tail[1] = (uint8_t)(reg >> 8);
    tail[2] = (uint8_t)(reg >> 16);
    tail[3] = (uint8_t)(reg >> 24);
    if (s == TR_OK) {
        s = tr_cobs_encoder_init(&e, out, cap);
    }
    if (s == TR_OK) {
        s = tr_cobs_encoder_put(&e, hdr, sizeof hdr);
    }
    if (s == TR_OK) {
        s = tr_cobs_encoder_put(&e, f->body, f->body_len);
    }
    if (s == TR_OK) {
        s = tr_cobs_encoder_put(&e, tail, sizeof tail);
    }
    if (s == TR_OK) {
        s = tr_cobs_encoder_finish(&e, &n);
    }
    if (s != TR_OK) {
        return s;
    }
    if (n >= cap) {
        return TR_ERR_NOMEM;
    }
    out[n] = 0;
    *out_len = n + 1u;
    return TR_OK;
}
