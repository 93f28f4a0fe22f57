/* COBS encoder (streaming) and decoder. */
#include "proto/tr_cobs.h"

tr_status tr_cobs_encoder_init(tr_cobs_encoder *e, uint8_t *out, size_t cap)
{
    if (e == NULL || out == NULL || cap == 0u) {
        return TR_ERR_ARG;
    }
    e->out = out;
    e->cap = cap;
    e->len = 1;   /* room for the first code byte */
    e->code_pos = 0;
    e->code = 1;
    e->status = TR_OK;
    return TR_OK;
}

/* Writes the current block's code byte and opens the next block. */
static int close_block(tr_cobs_encoder *e)
{
    if (e->len >= e->cap) {
        e->status = TR_ERR_NOMEM;
        return 0;
    }
    e->out[e->code_pos] = e->code;
    e->code_pos = e->len++;
    e->code = 1;
    return 1;
}

tr_status tr_cobs_encoder_put(tr_cobs_encoder *e, const uint8_t *data, size_t len)
{
    size_t i;

    if (e == NULL || (data == NULL && len != 0u)) {
        return TR_ERR_ARG;
    }
    for (i = 0; i < len && e->status == TR_OK; i++) {
        /* A full block is closed when the next byte comes, or by finish(). */
        if (e->code == 0xFFu && !close_block(e)) {
            break;
        }
        if (data[i] == 0u) {
            close_block(e);
            continue;
        }
        if (e->len >= e->cap) {
            e->status = TR_ERR_NOMEM;
            break;
        }
        e->out[e->len++] = data[i];
        e->code++;
    }
    return e->status;
}

tr_status tr_cobs_encoder_finish(tr_cobs_encoder *e, size_t *len)
{
    if (e == NULL || len == NULL) {
        return TR_ERR_ARG;
    }
    if (e->status != TR_OK) {
        return e->status;
    }
    /* Data ending on a full block gets an empty 0x01 block after it, as the
     * host codec writes it (protocol/vectors/cobs.vec): byte-identical frames. */
    if (e->code == 0xFFu && !close_block(e)) {
        return e->status;
    }
    e->out[e->code_pos] = e->code;
    *len = e->len;
    return TR_OK;
}

tr_status tr_cobs_encode(const uint8_t *in, size_t n, uint8_t *out, size_t cap, size_t *out_len)
{
    tr_cobs_encoder e;
    tr_status s = tr_cobs_encoder_init(&e, out, cap);

    if (s == TR_OK) {
        s = tr_cobs_encoder_put(&e, in, n);
    }
    if (s == TR_OK) {
        s = tr_cobs_encoder_finish(&e, out_len);
    }
    return s;
}

tr_status tr_cobs_decode(const uint8_t *in, size_t n, uint8_t *out, size_t cap, size_t *out_len)
{
    size_t i = 0, o = 0;

    if ((in == NULL && n != 0u) || out_len == NULL || (out == NULL && cap != 0u)) {
        return TR_ERR_ARG;
    }
    if (n == 0u) {
        return TR_ERR_FORMAT;
    }
    while (i < n) {
        uint8_t code = in[i++];
        size_t k;

        if (code == 0u || (size_t)(code - 1u) > n - i) {
            return TR_ERR_FORMAT;
        }
        for (k = 1; k < code; k++) {
            if (in[i] == 0u) {
                return TR_ERR_FORMAT;
            }
            if (o >= cap) {
                return TR_ERR_NOMEM;
            }
            out[o++] = in[i++];
        }
        if (code != 0xFFu && i < n) {
            if (o >= cap) {
                return TR_ERR_NOMEM;
            }
            out[o++] = 0;
        }
    }
    *out_len = o;
    return TR_OK;
}
