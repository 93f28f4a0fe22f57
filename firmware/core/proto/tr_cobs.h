/* Consistent Overhead Byte Stuffing (blocks of at most 254 data bytes).
 * The delimiter 0x00 is not written or expected by these functions. */
#ifndef TR_COBS_H
#define TR_COBS_H

#include <stddef.h>
#include <stdint.h>
#include "common/tr_status.h"

/* Worst-case encoded size of n bytes (without the delimiter). */
#define TR_COBS_MAX(n) ((n) + (n) / 254u + 1u)

/* Streaming encoder: lets a frame be encoded from several pieces
 * (header, body, CRC) straight into the output buffer. */
typedef struct {
    uint8_t *out;
    size_t cap;
    size_t len;
    size_t code_pos;   /* where the current block's code byte goes */
    uint8_t code;      /* 1 + data bytes in the current block */
    tr_status status;  /* sticky */
} tr_cobs_encoder;

tr_status tr_cobs_encoder_init(tr_cobs_encoder *e, uint8_t *out, size_t cap);
tr_status tr_cobs_encoder_put(tr_cobs_encoder *e, const uint8_t *data, size_t len);
/* Closes the last block; *len is the encoded length. */
tr_status tr_cobs_encoder_finish(tr_cobs_encoder *e, size_t *len);

tr_status tr_cobs_encode(const uint8_t *in, size_t n, uint8_t *out, size_t cap, size_t *out_len);
/* TR_ERR_FORMAT on a zero byte or a block running past the end;
 * TR_ERR_NOMEM when out is too small. */
tr_status tr_cobs_decode(const uint8_t *in, size_t n, uint8_t *out, size_t cap, size_t *out_len);

#endif
