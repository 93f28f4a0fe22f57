/* HELLO, PING, RESET, STATS. */
#include "proto/tr_handlers.h"

#ifdef TR_WITH_ENGINE
#define ENGINE_LINKED 1
#else
#define ENGINE_LINKED 0
#endif

tr_status tr_handle_hello(tr_device *d, const tr_body *req, tr_reply *rep)
{
    tr_cbor_writer *w = &rep->w;
    const tr_board_info *b = &d->port.info;

    (void)req;

    tr_cbor_write_map(w, d->port.slots != NULL ? 19u : 18u);
    tr_cbor_write_uint(w, 1);
    tr_cbor_write_uint(w, 1);
    tr_cbor_write_uint(w, 2);
    tr_cbor_write_cstr(w, b->board != NULL ? b->board : "");
    tr_cbor_write_uint(w, 3);
    tr_cbor_write_cstr(w, b->build != NULL ? b->build : "");
    tr_cbor_write_uint(w, 4);
    tr_cbor_write_cstr(w, b->cpu != NULL ? b->cpu : "");
    tr_cbor_write_uint(w, 5);
    tr_cbor_write_uint(w, b->clock_hz);
    tr_cbor_write_uint(w, 6);
    tr_cbor_write_uint(w, b->ram_bytes);
    tr_cbor_write_uint(w, 7);
    tr_cbor_write_uint(w, d->cfg.max_frame);
    tr_cbor_write_uint(w, 8);
    tr_cbor_write_uint(w, d->cfg.window);
    tr_cbor_write_uint(w, 9);
    tr_cbor_write_uint(w, d->port.boot_id);
    tr_cbor_write_uint(w, 10);
    tr_cbor_write_uint(w, d->cfg.sample_slots);
    tr_cbor_write_uint(w, 11);
    tr_cbor_write_uint(w, d->cfg.arena_bytes);
    tr_cbor_write_uint(w, 12);
    tr_cbor_write_uint(w, d->cfg.blob_max);
    tr_cbor_write_uint(w, 13);
    tr_cbor_write_cstr(w, b->counter != NULL ? b->counter : "");
    tr_cbor_write_uint(w, 14);
    tr_cbor_write_uint(w, b->static_ram);
    tr_cbor_write_uint(w, 15);
    tr_cbor_write_uint(w, b->stack_bytes);
    tr_cbor_write_uint(w, 16);
    tr_cbor_write_uint(w, d->cfg.max_train);
    tr_cbor_write_uint(w, 17);
    tr_cbor_write_bool(w, ENGINE_LINKED);
    tr_cbor_write_uint(w, 18);
    tr_cbor_write_uint(w, b->watchdog_ms);
    if (d->port.slots != NULL) {
        tr_cbor_write_uint(w, 19);   /* the stored copy loaded at start */
        tr_cbor_write_uint(w, d->boot_seq);
    }
    return w->status;
}

tr_status tr_handle_ping(tr_device *d, const tr_body *req, tr_reply *rep)
{
    const uint8_t *data = NULL;
    size_t n = 0;

    (void)d;
    (void)req;

    if (tr_body_opt_bytes(req, 1, &data, &n) != TR_OK) {
        return tr_reply_error(rep, TR_E_BAD_BODY);
    }
    tr_cbor_write_map(&rep->w, 1);
    tr_cbor_write_uint(&rep->w, 1);
    tr_cbor_write_bytes(&rep->w, data, n);
    return TR_OK;
}

tr_status tr_handle_reset(tr_device *d, const tr_body *req, tr_reply *rep)
{
    (void)d;
    (void)req;
    if (d->port.reset == NULL) {
        return tr_reply_error(rep, TR_E_NOT_SUPPORTED);
    }
    tr_cbor_write_map(&rep->w, 0);
    rep->after_reset = 1;
    return TR_OK;
}

tr_status tr_handle_stats(tr_device *d, const tr_body *req, tr_reply *rep)
{
    tr_cbor_writer *w = &rep->w;
    uint32_t peak = d->arena_peak;

    (void)req;

#ifdef TR_WITH_ENGINE
    if (d->engine != NULL && tr_engine_arena_peak(d->engine) > peak) {
        peak = (uint32_t)tr_engine_arena_peak(d->engine);
        d->arena_peak = peak;
    }
#endif
    tr_cbor_write_map(w, d->port.slots != NULL ? 12u : 10u);
    tr_cbor_write_uint(w, 1);
    tr_cbor_write_uint(w, d->steps_applied);
    tr_cbor_write_uint(w, 2);
    tr_cbor_write_uint(w, d->have_steps ? d->last_step_id : 0u);
    tr_cbor_write_uint(w, 3);
    tr_cbor_write_uint(w, peak);
    tr_cbor_write_uint(w, 4);
    tr_cbor_write_uint(w, d->port.stack_peak != NULL ? d->port.stack_peak() : 0u);
    tr_cbor_write_uint(w, 5);
    tr_cbor_write_uint(w, d->port.info.static_ram);
    tr_cbor_write_uint(w, 6);
    tr_cbor_write_uint(w, d->counter_total);
    tr_cbor_write_uint(w, 7);
    tr_cbor_write_uint(w, d->samples_held);
    tr_cbor_write_uint(w, 8);
    tr_cbor_write_bytes(w, d->model_sha, d->have_model ? 32u : 0u);
    tr_cbor_write_uint(w, 9);
    tr_cbor_write_uint(w, d->frames_rx);
    tr_cbor_write_uint(w, 10);
    tr_cbor_write_uint(w, d->frames_bad);
    if (d->port.slots != NULL) {
        tr_cbor_write_uint(w, 11);   /* the newest stored copy */
        tr_cbor_write_uint(w, d->stored_seq);
        tr_cbor_write_uint(w, 12);
        tr_cbor_write_uint(w, d->store_faults);
    }
    return TR_OK;
}
