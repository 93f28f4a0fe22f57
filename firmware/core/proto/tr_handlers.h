/* Shared by the dispatcher and its handlers (not part of the public API). */
#ifndef TR_HANDLERS_H
#define TR_HANDLERS_H

#include "cbor/tr_cbor.h"
#include "proto/tr_device.h"

/* Max key of a request body the handlers look at. */
#define TR_BODY_KEYS 32u

/* A parsed request body: where each known key's value starts. */
typedef struct {
    const uint8_t *buf;
    size_t len;
    size_t off[TR_BODY_KEYS];
    uint32_t present;   /* bit k: key k seen */
} tr_body;

/* A response in the making: the body, or an error code with detail. */
typedef struct {
    tr_cbor_writer w;
    tr_proto_error code;
    uint32_t detail;
    uint8_t has_detail;
    uint8_t after_reset;   /* call port.reset once the response is out */
} tr_reply;

typedef tr_status (*tr_handler)(tr_device *d, const tr_body *req, tr_reply *rep);

tr_status tr_body_parse(tr_body *b, const uint8_t *body, size_t len);
/* Required keys: TR_ERR_FORMAT when missing or of the wrong type. */
tr_status tr_body_u32(const tr_body *b, unsigned key, uint32_t *v);
tr_status tr_body_bytes(const tr_body *b, unsigned key, const uint8_t **p, size_t *n);
/* Optional keys: *v keeps its default when absent. */
tr_status tr_body_opt_u32(const tr_body *b, unsigned key, uint32_t *v);
tr_status tr_body_opt_bytes(const tr_body *b, unsigned key, const uint8_t **p, size_t *n);
tr_status tr_body_opt_bool(const tr_body *b, unsigned key, int *v);

/* Sets an error reply (always returns TR_OK: the request was handled). */
tr_status tr_reply_error(tr_reply *rep, tr_proto_error code);
tr_status tr_reply_error_detail(tr_reply *rep, tr_proto_error code, uint32_t detail);
/* Most data bytes one frame may carry (max_frame - 32, SPEC §3). */
uint32_t tr_device_data_max(const tr_device *d);
/* Bytes of the largest EVAL answer with predictions (SPEC 0x32 keys 1-6) for
 * count samples of a model with classes classes. */
uint32_t tr_eval_answer_max(uint32_t count, uint32_t classes);
/* Loads the newest stored model and weights (port.slots) as the live ones;
 * nothing changes when there is none or it does not load. */
void tr_device_restore(tr_device *d);
/* SHA-256 of the live weights (and their size). */
tr_status tr_device_weights_sha(tr_device *d, uint8_t sha[32], uint32_t *bytes);

tr_status tr_handle_hello(tr_device *d, const tr_body *req, tr_reply *rep);
tr_status tr_handle_ping(tr_device *d, const tr_body *req, tr_reply *rep);
tr_status tr_handle_reset(tr_device *d, const tr_body *req, tr_reply *rep);
tr_status tr_handle_stats(tr_device *d, const tr_body *req, tr_reply *rep);
tr_status tr_handle_model_begin(tr_device *d, const tr_body *req, tr_reply *rep);
tr_status tr_handle_weights_begin(tr_device *d, const tr_body *req, tr_reply *rep);
tr_status tr_handle_chunk(tr_device *d, const tr_body *req, tr_reply *rep);
tr_status tr_handle_model_commit(tr_device *d, const tr_body *req, tr_reply *rep);
tr_status tr_handle_weights_commit(tr_device *d, const tr_body *req, tr_reply *rep);
tr_status tr_handle_weights_info(tr_device *d, const tr_body *req, tr_reply *rep);
tr_status tr_handle_weights_read(tr_device *d, const tr_body *req, tr_reply *rep);
tr_status tr_handle_samples(tr_device *d, const tr_body *req, tr_reply *rep);
tr_status tr_handle_train(tr_device *d, const tr_body *req, tr_reply *rep);
tr_status tr_handle_eval(tr_device *d, const tr_body *req, tr_reply *rep);
tr_status tr_handle_infer(tr_device *d, const tr_body *req, tr_reply *rep);

#endif
