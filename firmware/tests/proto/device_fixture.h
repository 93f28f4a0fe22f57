/* Static memory for one device context, sized by MAX_FRAME, SLOTS, SAMPLE_MAX,
 * BLOB_MAX and ARENA defined before inclusion (tests and the fuzz harness). */
#ifndef TR_DEVICE_FIXTURE_H
#define TR_DEVICE_FIXTURE_H

#include <string.h>
#include "board/tr_port.h"

/* The fixture's device: fixture_dev in fixture (tr_port_start(&fixture, &port)). */
TR_DEVICE_STORAGE(fixture, MAX_FRAME, 4, SLOTS, SAMPLE_MAX, BLOB_MAX, ARENA, 64);

/* Everything the device sent, as wire bytes (tests reset sent_len). */
static uint8_t sent[64 * 1024];
static size_t sent_len;

/* A port tx that captures into sent[]; NOMEM when it is full. */
static inline tr_status cap_tx(void *ctx, const uint8_t *b, size_t n)
{
    (void)ctx;
    if (n > sizeof sent - sent_len) {
        return TR_ERR_NOMEM;
    }
    memcpy(sent + sent_len, b, n);
    sent_len += n;
    return TR_OK;
}

#endif
