/* MODEL_* and WEIGHTS_* staging (slot B), commit to live (slot A), weights
 * info and read. A blob becomes live only after every 64-byte granule arrived
 * and its SHA-256 matches both BEGIN and COMMIT. */
#include <string.h>

#include "crypto/tr_sha256.h"
#include "proto/tr_handlers.h"

static tr_status begin(tr_device *d, const tr_body *req, tr_reply *rep, uint8_t kind)
{
    uint32_t size;
    const uint8_t *sha;
    size_t n;

    if (tr_body_u32(req, 1, &size) != TR_OK || tr_body_bytes(req, 2, &sha, &n) != TR_OK ||
        n != 32u) {
        return tr_reply_error(rep, TR_E_BAD_BODY);
    }
    d->staged_kind = TR_STAGED_NONE;   /* BEGIN discards whatever was staged */
    d->staged_committed = 0;
    if (size > d->cfg.blob_max) {
        return tr_reply_error_detail(rep, TR_E_TOO_LARGE, d->cfg.blob_max);
    }
    memset(d->mem.granules, 0, TR_DEVICE_BITMAP_BYTES(d->cfg.blob_max));
    d->staged_kind = kind;
    d->staged_size = size;
    memcpy(d->staged_sha, sha, 32);
    return tr_cbor_write_map(&rep->w, 0);
}

tr_status tr_handle_model_begin(tr_device *d, const tr_body *req, tr_reply *rep)
{
    (void)d;
    (void)req;
    return begin(d, req, rep, TR_STAGED_MODEL);
}

tr_status tr_handle_weights_begin(tr_device *d, const tr_body *req, tr_reply *rep)
{
    (void)d;
    (void)req;
    return begin(d, req, rep, TR_STAGED_WEIGHTS);
}

tr_status tr_handle_chunk(tr_device *d, const tr_body *req, tr_reply *rep)
{
    uint32_t off, g, first, last;
    const uint8_t *data;
    size_t n;

    (void)d;
    (void)req;

    if (tr_body_u32(req, 1, &off) != TR_OK || tr_body_bytes(req, 2, &data, &n) != TR_OK) {
        return tr_reply_error(rep, TR_E_BAD_BODY);
    }
    if (d->staged_kind == TR_STAGED_NONE || off % TR_GRANULE != 0u || off > d->staged_size ||
        n > d->staged_size - off) {
        return tr_reply_error(rep, TR_E_BAD_CHUNK);
    }
    /* Every chunk but the last is whole granules. */
    if (n % TR_GRANULE != 0u && off + n != d->staged_size) {
        return tr_reply_error(rep, TR_E_BAD_CHUNK);
    }
    if (n > tr_device_data_max(d)) {
        return tr_reply_error_detail(rep, TR_E_TOO_LARGE, tr_device_data_max(d));
    }
    if (d->staged_committed) {
        /* A retransmitted chunk of the committed blob: same bytes, nothing to do;
         * different bytes would make staging disagree with the live blob. */
        if (n != 0u && memcmp(d->mem.staging + off, data, n) != 0) {
            return tr_reply_error(rep, TR_E_BAD_CHUNK);
        }
    } else if (n != 0u) {
        memcpy(d->mem.staging + off, data, n);
        first = off / TR_GRANULE;
        last = (uint32_t)((off + n - 1u) / TR_GRANULE);
        for (g = first; g <= last; g++) {
            d->mem.granules[g / 8u] |= (uint8_t)(1u << (g % 8u));
        }
    }
    tr_cbor_write_map(&rep->w, 2);
    tr_cbor_write_uint(&rep->w, 1);
    tr_cbor_write_uint(&rep->w, off);
    tr_cbor_write_uint(&rep->w, 2);
    return tr_cbor_write_uint(&rep->w, n);
}

/* Checks the staged blob: kind, granules, hashes. TR_OK when it may go live. */
static tr_status check_staged(tr_device *d, const tr_body *req, tr_reply *rep, uint8_t kind,
                              int *ok)
{
    const uint8_t *sha;
    uint8_t got[32];
    size_t n;
    uint32_t g, granules;

    *ok = 0;
    if (tr_body_bytes(req, 1, &sha, &n) != TR_OK || n != 32u) {
        return tr_reply_error(rep, TR_E_BAD_BODY);
    }
    if (d->staged_kind != kind) {
        return tr_reply_error(rep, TR_E_BAD_CHUNK);
    }
    granules = (d->staged_size + TR_GRANULE - 1u) / TR_GRANULE;
    for (g = 0; g < granules; g++) {
        if ((d->mem.granules[g / 8u] & (1u << (g % 8u))) == 0u) {
            return tr_reply_error_detail(rep, TR_E_INCOMPLETE, g * TR_GRANULE);
        }
    }
    if (memcmp(sha, d->staged_sha, 32) != 0) {
        return tr_reply_error(rep, TR_E_HASH_MISMATCH);
    }
    if (!d->staged_committed) {
        tr_status s = tr_sha256(d->mem.staging, d->staged_size, got);

        if (s != TR_OK) {
            return s;
        }
        if (memcmp(got, sha, 32) != 0) {
            return tr_reply_error(rep, TR_E_HASH_MISMATCH);
        }
    }
    *ok = 1;
    return TR_OK;
}

tr_status tr_device_weights_sha(tr_device *d, uint8_t sha[32], uint32_t *bytes)
{
#ifdef TR_WITH_ENGINE
    const uint8_t *w;
    size_t n;
    tr_status s;

    if (d->engine == NULL) {
        return TR_ERR_STATE;
    }
    s = tr_engine_weights(d->engine, &w, &n);
    if (s != TR_OK) {
        return s;
    }
    *bytes = (uint32_t)n;
    return tr_sha256(w, n, sha);
#else
    *bytes = d->held_weights;
    return tr_sha256(d->mem.arena, d->held_weights, sha);
#endif
}

/* The live weights as bytes (engine parameter memory, or the raw held blob). */
static tr_status live_weights(tr_device *d, const uint8_t **w, size_t *n)
{
#ifdef TR_WITH_ENGINE
    if (d->engine == NULL) {
        return TR_ERR_STATE;
    }
    return tr_engine_weights(d->engine, w, n);
#else
    *w = d->mem.arena;
    *n = d->held_weights;
    return TR_OK;
#endif
}

/* ---- flash slots (port.slots): the live model survives a restart ---- */

void tr_device_restore(tr_device *d)
{
#ifdef TR_WITH_ENGINE
    const tr_slots *s = d->port.slots;
    tr_slot_info info;
    tr_model_info model;
    tr_engine *e = NULL;

    if (s == NULL || tr_slots_newest(s, &info) != TR_OK) {
        return;
    }
    d->stored_seq = info.seq;
    if (info.model_bytes > d->cfg.blob_max || info.weights_bytes > d->cfg.blob_max ||
        tr_slots_read(s, &info, 0, d->mem.staging, info.model_bytes) != TR_OK) {
        return;
    }
    memset(&model, 0, sizeof model);
    if (tr_engine_load(&e, d->mem.staging, info.model_bytes, d->mem.arena, d->cfg.arena_bytes,
                       &model) != TR_OK) {
        return;
    }
    /* staging is free again once the engine holds the model */
    if (info.weights_bytes > 0u &&
        (tr_slots_read(s, &info, info.model_bytes, d->mem.staging, info.weights_bytes) != TR_OK ||
         tr_engine_set_weights(e, d->mem.staging, info.weights_bytes) != TR_OK)) {
        return;
    }
    d->engine = e;
    d->model = model;
    d->have_model = 1;
    memcpy(d->model_sha, info.model_sha, 32);
    d->arena_peak = (uint32_t)tr_engine_arena_peak(e);
    d->boot_seq = info.seq;
#else
    (void)d;
#endif
}

#ifdef TR_WITH_ENGINE
/* After a commit went live: keep it in the slot that is not the newest.
 * A store that fails leaves the live blob live and the previous copy stored. */
static void store_live(tr_device *d, uint8_t kind)
{
    tr_slot_info info;
    tr_status s;

    if (d->port.slots == NULL) {
        return;
    }
    if (kind == TR_STAGED_MODEL) {
        s = tr_slots_save(d->port.slots, d->mem.staging, d->staged_size, d->model_sha, NULL, 0, &info);
    } else {
        s = tr_slots_save_weights(d->port.slots, d->model_sha, d->mem.staging, d->staged_size, &info);
    }
    if (s == TR_OK) {
        d->stored_seq = info.seq;
    } else {
        d->store_faults++;
    }
}
#endif

tr_status tr_handle_model_commit(tr_device *d, const tr_body *req, tr_reply *rep)
{
    (void)d;
    (void)req;
#ifdef TR_WITH_ENGINE
    uint8_t wsha[32];
    uint32_t wbytes;
    tr_model_info info;
    tr_engine *e = NULL;
    tr_status s;
    int ok;

    s = check_staged(d, req, rep, TR_STAGED_MODEL, &ok);
    if (!ok) {
        return s;
    }
    if (!d->staged_committed) {
        memset(&info, 0, sizeof info);
        s = tr_engine_validate(d->mem.staging, d->staged_size, d->cfg.arena_bytes, &info);
        if (s == TR_ERR_NOMEM) {
            return tr_reply_error_detail(rep, TR_E_MODEL_TOO_LARGE, info.train_bytes);
        }
        if (s != TR_OK) {
            return tr_reply_error_detail(rep, TR_E_MODEL_INVALID, (uint32_t)s);
        }
        /* Validated without touching the live model: only now is slot A replaced. */
        d->engine = NULL;
        d->have_model = 0;
        s = tr_engine_load(&e, d->mem.staging, d->staged_size, d->mem.arena, d->cfg.arena_bytes,
                           &info);
        if (s != TR_OK) {
            return tr_reply_error_detail(rep, TR_E_MODEL_INVALID, (uint32_t)s);
        }
        d->engine = e;
        d->model = info;
        d->have_model = 1;
        memcpy(d->model_sha, d->staged_sha, 32);
        d->staged_committed = 1;
        d->steps_applied = 0;
        d->have_steps = 0;
        d->last_step_id = 0;
        d->step_bits = 0;
        d->have_records = 0;
        d->records_count = 0;
        d->records_fault = 0;
        d->arena_peak = (uint32_t)tr_engine_arena_peak(e);
        store_live(d, TR_STAGED_MODEL);
    }
    s = tr_device_weights_sha(d, wsha, &wbytes);
    if (s != TR_OK) {
        return s;
    }
    tr_cbor_write_map(&rep->w, 7);
    tr_cbor_write_uint(&rep->w, 1);
    tr_cbor_write_bytes(&rep->w, wsha, 32);
    tr_cbor_write_uint(&rep->w, 2);
    tr_cbor_write_uint(&rep->w, wbytes);
    tr_cbor_write_uint(&rep->w, 3);
    tr_cbor_write_uint(&rep->w, d->model.input_bytes);
    tr_cbor_write_uint(&rep->w, 4);
    tr_cbor_write_uint(&rep->w, d->model.classes);
    tr_cbor_write_uint(&rep->w, 5);
    tr_cbor_write_uint(&rep->w, d->model.layers);
    tr_cbor_write_uint(&rep->w, 6);
    tr_cbor_write_uint(&rep->w, d->model.train_bytes);
    tr_cbor_write_uint(&rep->w, 7);
    return tr_cbor_write_uint(&rep->w, d->model.infer_bytes);
#else
    return tr_reply_error(rep, TR_E_NOT_SUPPORTED);
#endif
}

tr_status tr_handle_weights_commit(tr_device *d, const tr_body *req, tr_reply *rep)
{
    uint8_t wsha[32];
    uint32_t wbytes;
    tr_status s;
    int ok;

    (void)d;
    (void)req;

    s = check_staged(d, req, rep, TR_STAGED_WEIGHTS, &ok);
    if (!ok) {
        return s;
    }
    if (!d->staged_committed) {
#ifdef TR_WITH_ENGINE
        if (d->engine == NULL) {
            return tr_reply_error(rep, TR_E_NO_MODEL);
        }
        if (d->staged_size != d->model.weights_bytes) {
            return tr_reply_error_detail(rep, TR_E_BAD_WEIGHTS, d->model.weights_bytes);
        }
        s = tr_engine_set_weights(d->engine, d->mem.staging, d->staged_size);
        if (s != TR_OK) {
            return tr_reply_error_detail(rep, TR_E_BAD_WEIGHTS, (uint32_t)s);
        }
        store_live(d, TR_STAGED_WEIGHTS);
#else
        /* No engine: the arena holds the raw weights blob. */
        if (d->staged_size > d->cfg.arena_bytes) {
            return tr_reply_error_detail(rep, TR_E_TOO_LARGE, d->cfg.arena_bytes);
        }
        memcpy(d->mem.arena, d->mem.staging, d->staged_size);
        d->held_weights = d->staged_size;
#endif
        d->staged_committed = 1;
    }
    s = tr_device_weights_sha(d, wsha, &wbytes);
    if (s != TR_OK) {
        return s;
    }
    tr_cbor_write_map(&rep->w, 2);
    tr_cbor_write_uint(&rep->w, 1);
    tr_cbor_write_bytes(&rep->w, wsha, 32);
    tr_cbor_write_uint(&rep->w, 2);
    return tr_cbor_write_uint(&rep->w, wbytes);
}

tr_status tr_handle_weights_info(tr_device *d, const tr_body *req, tr_reply *rep)
{
    uint8_t wsha[32];
    uint32_t wbytes;
    tr_status s;

    (void)d;
    (void)req;

#ifdef TR_WITH_ENGINE
    if (d->engine == NULL) {
        return tr_reply_error(rep, TR_E_NO_MODEL);
    }
#endif
    s = tr_device_weights_sha(d, wsha, &wbytes);
    if (s != TR_OK) {
        return s;
    }
    tr_cbor_write_map(&rep->w, 4);
    tr_cbor_write_uint(&rep->w, 1);
    tr_cbor_write_bytes(&rep->w, wsha, 32);
    tr_cbor_write_uint(&rep->w, 2);
    tr_cbor_write_uint(&rep->w, wbytes);
    tr_cbor_write_uint(&rep->w, 3);
    tr_cbor_write_uint(&rep->w, d->steps_applied);
    tr_cbor_write_uint(&rep->w, 4);
    return tr_cbor_write_bytes(&rep->w, d->model_sha, d->have_model ? 32u : 0u);
}

tr_status tr_handle_weights_read(tr_device *d, const tr_body *req, tr_reply *rep)
{
    uint32_t off, len;
    const uint8_t *w;
    size_t n;
    tr_status s;

    (void)d;
    (void)req;

    if (tr_body_u32(req, 1, &off) != TR_OK || tr_body_u32(req, 2, &len) != TR_OK) {
        return tr_reply_error(rep, TR_E_BAD_BODY);
    }
#ifdef TR_WITH_ENGINE
    if (d->engine == NULL) {
        return tr_reply_error(rep, TR_E_NO_MODEL);
    }
#endif
    s = live_weights(d, &w, &n);
    if (s != TR_OK) {
        return s;
    }
    if (off > n || len > n - off) {
        return tr_reply_error_detail(rep, TR_E_BAD_ARG, (uint32_t)n);
    }
    if (len > tr_device_data_max(d)) {
        return tr_reply_error_detail(rep, TR_E_TOO_LARGE, tr_device_data_max(d));
    }
    tr_cbor_write_map(&rep->w, 2);
    tr_cbor_write_uint(&rep->w, 1);
    tr_cbor_write_uint(&rep->w, off);
    tr_cbor_write_uint(&rep->w, 2);
    return tr_cbor_write_bytes(&rep->w, w + off, len);
}
