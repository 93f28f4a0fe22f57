/* A/B model slots in flash (store/tr_slots.h). */
#include "store/tr_slots.h"

#include <string.h>

#include "crypto/tr_sha256.h"
#include "proto/tr_crc32.h"

#define MAGIC 0x42415254u   /* "TRAB" little-endian */
#define VERSION 1u
#define OFF_SEQ 8u
#define OFF_MODEL 12u
#define OFF_WEIGHTS 16u
#define OFF_PAYLOAD_SHA 24u
#define OFF_MODEL_SHA 56u
#define OFF_CRC 124u

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static int usable(const tr_slots *s)
{
    return s != NULL && s->erase != NULL && s->write != NULL && s->read != NULL &&
           s->write_align != 0u && s->write_align <= TR_SLOT_CHUNK &&
           (s->write_align & (s->write_align - 1u)) == 0u && s->slot_bytes > TR_SLOT_HEADER_BYTES;
}

/* Checks one slot: header CRC and fields, then the payload's SHA-256. */
static int slot_valid(const tr_slots *s, unsigned slot, tr_slot_info *info)
{
    uint8_t h[TR_SLOT_HEADER_BYTES], buf[TR_SLOT_CHUNK], sha[32];
    tr_sha256_ctx c;
    uint32_t crc, total, off;

    if (s->read(s->ctx, slot, 0, h, sizeof h) != TR_OK || get32(h) != MAGIC ||
        get32(h + 4) != (VERSION | (TR_SLOT_HEADER_BYTES << 16))) {
        return 0;
    }
    if (tr_crc32(h, OFF_CRC, &crc) != TR_OK || crc != get32(h + OFF_CRC)) {
        return 0;
    }
    info->slot = slot;
    info->seq = get32(h + OFF_SEQ);
    info->model_bytes = get32(h + OFF_MODEL);
    info->weights_bytes = get32(h + OFF_WEIGHTS);
    memcpy(info->model_sha, h + OFF_MODEL_SHA, 32);
    if (info->model_bytes == 0u || info->model_bytes > s->slot_bytes - TR_SLOT_HEADER_BYTES ||
        info->weights_bytes > s->slot_bytes - TR_SLOT_HEADER_BYTES - info->model_bytes) {
        return 0;
    }
    total = info->model_bytes + info->weights_bytes;
    tr_sha256_init(&c);
    for (off = 0; off < total; off += TR_SLOT_CHUNK) {
        uint32_t n = total - off < TR_SLOT_CHUNK ? total - off : TR_SLOT_CHUNK;

        if (s->read(s->ctx, slot, TR_SLOT_HEADER_BYTES + off, buf, n) != TR_OK) {
            return 0;
        }
        tr_sha256_update(&c, buf, n);
    }
    tr_sha256_final(&c, sha);
    return memcmp(sha, h + OFF_PAYLOAD_SHA, 32) == 0;
}

/* Bit k of *valid: slot k checks out. *newest: the newer valid slot. */
static void scan(const tr_slots *s, tr_slot_info info[2], unsigned *valid, unsigned *newest)
{
    unsigned k;

    *valid = 0;
    for (k = 0; k < 2u; k++) {
        if (slot_valid(s, k, &info[k])) {
            *valid |= 1u << k;
        }
    }
    if (*valid == 3u) {
        *newest = (int32_t)(info[1].seq - info[0].seq) > 0 ? 1u : 0u;
    } else {
        *newest = *valid == 2u ? 1u : 0u;
    }
}

tr_status tr_slots_newest(const tr_slots *s, tr_slot_info *out)
{
    tr_slot_info info[2];
    unsigned valid, newest;

    if (!usable(s) || out == NULL) {
        return TR_ERR_ARG;
    }
    scan(s, info, &valid, &newest);
    if (valid == 0u) {
        return TR_ERR_STATE;
    }
    *out = info[newest];
    return TR_OK;
}

tr_status tr_slots_read(const tr_slots *s, const tr_slot_info *info, uint32_t off, uint8_t *buf,
                        size_t len)
{
    if (!usable(s) || info == NULL || info->slot > 1u || buf == NULL ||
        off > info->model_bytes + info->weights_bytes ||
        len > info->model_bytes + info->weights_bytes - off) {
        return TR_ERR_ARG;
    }
    return s->read(s->ctx, info->slot, TR_SLOT_HEADER_BYTES + off, buf, len);
}

/* Payload writer: whole chunks, the last padded to the program unit. */
typedef struct {
    const tr_slots *s;
    unsigned slot;
    uint32_t off;
    uint32_t fill;
    uint8_t buf[TR_SLOT_CHUNK];
    tr_sha256_ctx sha;
} writer;

static tr_status push(writer *w, const uint8_t *p, uint32_t n)
{
    tr_sha256_update(&w->sha, p, n);
    while (n > 0u) {
        uint32_t k = TR_SLOT_CHUNK - w->fill < n ? TR_SLOT_CHUNK - w->fill : n;

        memcpy(w->buf + w->fill, p, k);
        w->fill += k;
        p += k;
        n -= k;
        if (w->fill == TR_SLOT_CHUNK) {
            tr_status st = w->s->write(w->s->ctx, w->slot, w->off, w->buf, TR_SLOT_CHUNK);

            if (st != TR_OK) {
                return st;
            }
            w->off += TR_SLOT_CHUNK;
            w->fill = 0;
        }
    }
    return TR_OK;
}

static tr_status flush(writer *w)
{
    uint32_t n = (w->fill + w->s->write_align - 1u) & ~(w->s->write_align - 1u);

    if (n == 0u) {
        return TR_OK;
    }
    memset(w->buf + w->fill, 0xFF, n - w->fill);
    return w->s->write(w->s->ctx, w->slot, w->off, w->buf, n);
}

/* The common save: model from RAM (model != NULL) or from slot src, then weights. */
static tr_status save(const tr_slots *s, const uint8_t *model, const tr_slot_info *src,
                      uint32_t model_bytes, const uint8_t model_sha[32], const uint8_t *weights,
                      uint32_t weights_bytes, uint32_t seq, unsigned target, tr_slot_info *out)
{
    static writer w;   /* one save at a time; keeps the SHA state off the stack */
    uint8_t h[TR_SLOT_HEADER_BYTES], piece[TR_SLOT_CHUNK];
    uint32_t off, crc;
    tr_status st;

    if (model_bytes == 0u || model_bytes > s->slot_bytes - TR_SLOT_HEADER_BYTES ||
        weights_bytes > s->slot_bytes - TR_SLOT_HEADER_BYTES - model_bytes ||
        (weights_bytes > 0u && weights == NULL)) {
        return TR_ERR_NOMEM;
    }
    st = s->erase(s->ctx, target);
    if (st != TR_OK) {
        return st;
    }
    memset(&w, 0, sizeof w);
    w.s = s;
    w.slot = target;
    w.off = TR_SLOT_HEADER_BYTES;
    tr_sha256_init(&w.sha);
    for (off = 0; off < model_bytes && st == TR_OK; off += TR_SLOT_CHUNK) {
        uint32_t n = model_bytes - off < TR_SLOT_CHUNK ? model_bytes - off : TR_SLOT_CHUNK;

        if (model != NULL) {
            st = push(&w, model + off, n);
        } else {
            st = tr_slots_read(s, src, off, piece, n);
            if (st == TR_OK) {
                st = push(&w, piece, n);
            }
        }
    }
    if (st == TR_OK && weights_bytes > 0u) {
        st = push(&w, weights, weights_bytes);
    }
    if (st == TR_OK) {
        st = flush(&w);
    }
    if (st != TR_OK) {
        return st;
    }
    memset(h, 0xFF, sizeof h);
    put32(h, MAGIC);
    put32(h + 4, VERSION | (TR_SLOT_HEADER_BYTES << 16));
    put32(h + OFF_SEQ, seq);
    put32(h + OFF_MODEL, model_bytes);
    put32(h + OFF_WEIGHTS, weights_bytes);
    put32(h + 20, 0);
    tr_sha256_final(&w.sha, h + OFF_PAYLOAD_SHA);
    memcpy(h + OFF_MODEL_SHA, model_sha, 32);
    tr_crc32(h, OFF_CRC, &crc);
    put32(h + OFF_CRC, crc);
    st = s->write(s->ctx, target, 0, h, sizeof h);   /* the commit */
    if (st != TR_OK) {
        return st;
    }
    if (out != NULL) {
        out->seq = seq;
        out->slot = target;
        out->model_bytes = model_bytes;
        out->weights_bytes = weights_bytes;
        memcpy(out->model_sha, model_sha, 32);
    }
    return TR_OK;
}

static uint32_t next_seq(uint32_t seq)
{
    return seq + 1u == 0u ? 1u : seq + 1u;
}

tr_status tr_slots_save(const tr_slots *s, const uint8_t *model, uint32_t model_bytes,
                        const uint8_t model_sha[32], const uint8_t *weights, uint32_t weights_bytes,
                        tr_slot_info *out)
{
    tr_slot_info info[2];
    unsigned valid, newest;

    if (!usable(s) || model == NULL || model_sha == NULL) {
        return TR_ERR_ARG;
    }
    scan(s, info, &valid, &newest);
    if (valid == 0u) {
        return save(s, model, NULL, model_bytes, model_sha, weights, weights_bytes, 1u, 0u, out);
    }
    return save(s, model, NULL, model_bytes, model_sha, weights, weights_bytes,
                next_seq(info[newest].seq), newest ^ 1u, out);
}

tr_status tr_slots_save_weights(const tr_slots *s, const uint8_t model_sha[32], const uint8_t *weights,
                                uint32_t weights_bytes, tr_slot_info *out)
{
    tr_slot_info info[2];
    unsigned valid, newest;

    if (!usable(s) || model_sha == NULL || weights == NULL || weights_bytes == 0u) {
        return TR_ERR_ARG;
    }
    scan(s, info, &valid, &newest);
    if (valid == 0u || memcmp(info[newest].model_sha, model_sha, 32) != 0) {
        return TR_ERR_STATE;
    }
    return save(s, NULL, &info[newest], info[newest].model_bytes, model_sha, weights, weights_bytes,
                next_seq(info[newest].seq), newest ^ 1u, out);
}
