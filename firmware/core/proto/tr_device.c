/* Dispatcher: frame intake, sequence tracking, the command table, errors. */
#include "proto/tr_device.h"

#include <string.h>

#include "proto/tr_handlers.h"

static const char *const ERROR_NAMES[] = {
    "NONE", "BAD_FRAME", "UNKNOWN_TYPE", "BAD_BODY", "TOO_LARGE", "BAD_CHUNK", "INCOMPLETE",
    "HASH_MISMATCH", "NO_MODEL", "MODEL_INVALID", "MODEL_TOO_LARGE", "BAD_WEIGHTS",
    "BAD_SAMPLE", "BAD_ARG", "NOT_SUPPORTED", "INTERNAL"
};

/* The command table, indexed by message type. */
static const tr_handler HANDLERS[0x80] = {
    [TR_MSG_HELLO] = tr_handle_hello,
    [TR_MSG_PING] = tr_handle_ping,
    [TR_MSG_RESET] = tr_handle_reset,
    [TR_MSG_MODEL_BEGIN] = tr_handle_model_begin,
    [TR_MSG_MODEL_CHUNK] = tr_handle_chunk,
    [TR_MSG_MODEL_COMMIT] = tr_handle_model_commit,
    [TR_MSG_WEIGHTS_BEGIN] = tr_handle_weights_begin,
    [TR_MSG_WEIGHTS_CHUNK] = tr_handle_chunk,
    [TR_MSG_WEIGHTS_COMMIT] = tr_handle_weights_commit,
    [TR_MSG_WEIGHTS_INFO] = tr_handle_weights_info,
    [TR_MSG_WEIGHTS_READ] = tr_handle_weights_read,
    [TR_MSG_SAMPLES] = tr_handle_samples,
    [TR_MSG_TRAIN] = tr_handle_train,
    [TR_MSG_EVAL] = tr_handle_eval,
    [TR_MSG_INFER] = tr_handle_infer,
    [TR_MSG_STATS] = tr_handle_stats,
};

/* ---- request bodies ---- */

tr_status tr_body_parse(tr_body *b, const uint8_t *body, size_t len)
{
    tr_cbor_reader r;
    size_t n, i;
    tr_status s;

    if (b == NULL) {
        return TR_ERR_ARG;
    }
    b->buf = body;
    b->len = len;
    b->present = 0;
    if (len == 0u) {
        return TR_OK;   /* empty body = empty map */
    }
    s = tr_cbor_check(body, len);
    if (s != TR_OK) {
        return s;
    }
    tr_cbor_reader_init(&r, body, len);
    s = tr_cbor_read_map(&r, &n);
    if (s != TR_OK) {
        return s;
    }
    for (i = 0; i < n; i++) {
        tr_cbor_type t;
        uint64_t key = UINT64_MAX;

        tr_cbor_peek_type(&r, &t);
        if (t == TR_CBOR_UINT) {
            tr_cbor_read_uint(&r, &key);
        } else {
            s = tr_cbor_skip(&r);   /* a key we do not know */
            if (s != TR_OK) {
                return s;
            }
        }
        if (key < TR_BODY_KEYS) {
            b->off[key] = r.pos;
            b->present |= 1u << key;
        }
        s = tr_cbor_skip(&r);
        if (s != TR_OK) {
            return s;
        }
    }
    return TR_OK;
}

static tr_status body_at(const tr_body *b, unsigned key, tr_cbor_reader *r)
{
    if (b == NULL || key >= TR_BODY_KEYS || (b->present & (1u << key)) == 0u) {
        return TR_ERR_FORMAT;
    }
    tr_cbor_reader_init(r, b->buf, b->len);
    r->pos = b->off[key];
    return TR_OK;
}

tr_status tr_body_u32(const tr_body *b, unsigned key, uint32_t *v)
{
    tr_cbor_reader r;
    tr_status s = body_at(b, key, &r);

    if (s != TR_OK) {
        return s;
    }
    s = tr_cbor_read_u32(&r, v);
    return s == TR_OK ? TR_OK : TR_ERR_FORMAT;
}

tr_status tr_body_bytes(const tr_body *b, unsigned key, const uint8_t **p, size_t *n)
{
    tr_cbor_reader r;
    tr_status s = body_at(b, key, &r);

    if (s != TR_OK) {
        return s;
    }
    s = tr_cbor_read_bytes(&r, p, n);
    return s == TR_OK ? TR_OK : TR_ERR_FORMAT;
}

tr_status tr_body_opt_u32(const tr_body *b, unsigned key, uint32_t *v)
{
    if (b != NULL && key < TR_BODY_KEYS && (b->present & (1u << key)) == 0u) {
        return TR_OK;
    }
    return tr_body_u32(b, key, v);
}

tr_status tr_body_opt_bytes(const tr_body *b, unsigned key, const uint8_t **p, size_t *n)
{
    if (b != NULL && key < TR_BODY_KEYS && (b->present & (1u << key)) == 0u) {
        return TR_OK;
    }
    return tr_body_bytes(b, key, p, n);
}

tr_status tr_body_opt_bool(const tr_body *b, unsigned key, int *v)
{
    tr_cbor_reader r;
    tr_status s;

    if (b != NULL && key < TR_BODY_KEYS && (b->present & (1u << key)) == 0u) {
        return TR_OK;
    }
    s = body_at(b, key, &r);
    if (s != TR_OK) {
        return s;
    }
    s = tr_cbor_read_bool(&r, v);
    return s == TR_OK ? TR_OK : TR_ERR_FORMAT;
}

tr_status tr_reply_error(tr_reply *rep, tr_proto_error code)
{
    if (rep == NULL) {
        return TR_ERR_ARG;
    }
    rep->code = code;
    rep->has_detail = 0;
    return TR_OK;
}

tr_status tr_reply_error_detail(tr_reply *rep, tr_proto_error code, uint32_t detail)
{
    if (rep == NULL) {
        return TR_ERR_ARG;
    }
    rep->code = code;
    rep->detail = detail;
    rep->has_detail = 1;
    return TR_OK;
}

uint32_t tr_device_data_max(const tr_device *d)
{
    return d->cfg.max_frame > 64u ? d->cfg.max_frame - 32u : 32u;
}

/* ---- sending ---- */

static tr_status send_frame(tr_device *d, uint8_t type, uint16_t seq, uint8_t flags,
                            const uint8_t *body, size_t body_len)
{
    tr_frame f;
    size_t n;
    tr_status s;

    f.ver = TR_PROTO_VERSION;
    f.type = type;
    f.seq = seq;
    f.flags = flags;
    f.body = body;
    f.body_len = body_len;
    s = tr_frame_encode(&f, d->mem.wire, TR_FRAME_WIRE_MAX(d->cfg.max_frame), &n);
    if (s != TR_OK) {
        return s;
    }
    return d->port.tx(d->port.tx_ctx, d->mem.wire, n);
}

/* Device-initiated frame with a small body built in a local buffer. */
static tr_status send_dev(tr_device *d, uint8_t type, const uint8_t *body, size_t len)
{
    tr_status s = send_frame(d, type, d->dev_seq, TR_FRAME_FLAG_DEV, body, len);

    d->dev_seq++;
    return s;
}

static tr_status send_nak(tr_device *d, int with_seq, uint16_t seq)
{
    uint8_t buf[8];
    tr_cbor_writer w;

    tr_cbor_writer_init(&w, buf, sizeof buf);
    if (with_seq) {
        tr_cbor_write_map(&w, 1);
        tr_cbor_write_uint(&w, 1);
        tr_cbor_write_uint(&w, seq);
    } else {
        tr_cbor_write_map(&w, 0);
    }
    return send_dev(d, TR_MSG_NAK, buf, w.len);
}

static tr_status send_error(tr_device *d, uint16_t seq, const tr_reply *rep)
{
    tr_cbor_writer w;
    const char *name = ERROR_NAMES[rep->code <= TR_E_INTERNAL ? rep->code : TR_E_INTERNAL];

    tr_cbor_writer_init(&w, d->mem.body, d->cfg.max_frame - TR_FRAME_OVERHEAD);
    tr_cbor_write_map(&w, rep->has_detail ? 3u : 2u);
    tr_cbor_write_uint(&w, 1);
    tr_cbor_write_uint(&w, rep->code);
    tr_cbor_write_uint(&w, 2);
    tr_cbor_write_cstr(&w, name);
    if (rep->has_detail) {
        tr_cbor_write_uint(&w, 3);
        tr_cbor_write_uint(&w, rep->detail);
    }
    if (w.status != TR_OK) {
        return w.status;
    }
    return send_frame(d, TR_MSG_ERROR, seq, TR_FRAME_FLAG_RESP, d->mem.body, w.len);
}

/* ---- init and intake ---- */

tr_status tr_device_init(tr_device *d, const tr_device_config *cfg, const tr_device_mem *mem,
                         const tr_port *port)
{
    uint8_t boot[4];
    uint32_t fit;

    if (d == NULL || cfg == NULL || mem == NULL || port == NULL || port->tx == NULL ||
        port->counter == NULL || mem->rx == NULL || mem->body == NULL || mem->wire == NULL ||
        mem->samples == NULL || mem->sample_meta == NULL || mem->staging == NULL ||
        mem->granules == NULL || mem->arena == NULL || mem->records == NULL) {
        return TR_ERR_ARG;
    }
    if (cfg->max_frame < 128u || cfg->max_frame > 65535u || cfg->sample_slots == 0u ||
        cfg->sample_bytes_max == 0u || cfg->sample_bytes_max > 65535u || cfg->max_train == 0u ||
        cfg->window == 0u || ((uintptr_t)mem->arena & 7u) != 0u) {
        return TR_ERR_ARG;
    }
    memset(d, 0, sizeof *d);
    d->cfg = *cfg;
    d->mem = *mem;
    d->port = *port;
    /* A TRAIN response (at most ~28 bytes a record) must fit one frame; an
     * EVAL answer with predictions (at most 8 bytes a sample) then fits too. */
    fit = (cfg->max_frame - 48u) / 28u;
    if (d->cfg.max_train > fit) {
        d->cfg.max_train = fit;
    }
    memset(mem->sample_meta, 0, sizeof(tr_sample_meta) * cfg->sample_slots);
    memset(mem->granules, 0, TR_DEVICE_BITMAP_BYTES(cfg->blob_max));
    tr_frame_rx_init(&d->rx, mem->rx, cfg->max_frame);
    tr_device_restore(d);
    boot[0] = 0xA1;   /* {1: 1} EVENT BOOT */
    boot[1] = 0x01;
    boot[2] = TR_EVENT_BOOT;
    return send_dev(d, TR_MSG_EVENT, boot, 3);
}

tr_status tr_device_event(tr_device *d, uint32_t kind, const char *text)
{
    uint8_t buf[96];
    tr_cbor_writer w;
    size_t n = 0;

    if (d == NULL) {
        return TR_ERR_ARG;
    }
    while (text != NULL && text[n] != '\0' && n < 80u) {
        n++;
    }
    tr_cbor_writer_init(&w, buf, sizeof buf);
    tr_cbor_write_map(&w, text != NULL ? 2u : 1u);
    tr_cbor_write_uint(&w, 1);
    tr_cbor_write_uint(&w, kind);
    if (text != NULL) {
        tr_cbor_write_uint(&w, 2);
        tr_cbor_write_text(&w, text, n);
    }
    return send_dev(d, TR_MSG_EVENT, buf, w.len);
}

/* seq arithmetic mod 2^16: true when a is after b. */
static int seq_after(uint16_t a, uint16_t b)
{
    return (uint16_t)(a - b) != 0u && (uint16_t)(a - b) < 0x8000u;
}

tr_status tr_device_handle_raw(tr_device *d, const uint8_t *raw, size_t len)
{
    tr_frame f;
    tr_body body;
    tr_reply rep;
    tr_handler h;
    tr_status s;

    if (d == NULL || raw == NULL) {
        return TR_ERR_ARG;
    }
    if (tr_frame_parse(raw, len, &f) != TR_OK || len > d->cfg.max_frame) {
        d->frames_bad++;
        return send_nak(d, 0, 0);
    }
    d->frames_rx++;
    if (f.type == TR_MSG_HELLO || !d->have_seq) {
        d->last_seq = f.seq;
        d->have_seq = 1;
        d->nak_sent = 0;
    } else if (seq_after(f.seq, d->last_seq)) {
        if ((uint16_t)(f.seq - d->last_seq) > 1u && !d->nak_sent) {
            s = send_nak(d, 1, (uint16_t)(d->last_seq + 1u));
            if (s != TR_OK) {
                return s;
            }
            d->nak_sent = 1;
        } else if ((uint16_t)(f.seq - d->last_seq) == 1u) {
            d->nak_sent = 0;
        }
        d->last_seq = f.seq;
    }
    memset(&rep, 0, sizeof rep);
    tr_cbor_writer_init(&rep.w, d->mem.body, d->cfg.max_frame - TR_FRAME_OVERHEAD);
    h = f.type < 0x80u ? HANDLERS[f.type] : NULL;
    if (f.ver != TR_PROTO_VERSION) {
        tr_reply_error(&rep, TR_E_BAD_FRAME);
    } else if (h == NULL) {
        tr_reply_error(&rep, TR_E_UNKNOWN_TYPE);
    } else if (tr_body_parse(&body, f.body, f.body_len) != TR_OK) {
        tr_reply_error(&rep, TR_E_BAD_BODY);
    } else {
        s = h(d, &body, &rep);
        if (s != TR_OK && rep.code == TR_E_NONE) {
            tr_reply_error_detail(&rep, TR_E_INTERNAL, (uint32_t)s);
        }
        if (rep.code == TR_E_NONE && rep.w.status != TR_OK) {
            tr_reply_error_detail(&rep, TR_E_TOO_LARGE, d->cfg.max_frame);
        }
    }
    if (rep.code != TR_E_NONE) {
        return send_error(d, f.seq, &rep);
    }
    s = send_frame(d, f.type, f.seq, TR_FRAME_FLAG_RESP, d->mem.body, rep.w.len);
    if (s == TR_OK && rep.after_reset && d->port.reset != NULL) {
        s = d->port.reset();
    }
    return s;
}

tr_status tr_device_feed(tr_device *d, const uint8_t *bytes, size_t len)
{
    size_t used;
    tr_frame_event ev;
    tr_status s;

    if (d == NULL || (bytes == NULL && len != 0u)) {
        return TR_ERR_ARG;
    }
    while (len > 0u) {
        s = tr_frame_feed(&d->rx, bytes, len, &used, &ev);
        if (s != TR_OK) {
            return s;
        }
        bytes += used;
        len -= used;
        if (ev == TR_FRAME_OK) {
            s = tr_device_handle_raw(d, d->rx.buf, d->rx.len);
        } else if (ev == TR_FRAME_BAD) {
            d->frames_bad++;
            s = send_nak(d, 0, 0);
        }
        if (s != TR_OK) {
            return s;
        }
    }
    return TR_OK;
}
