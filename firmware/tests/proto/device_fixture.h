/* Static memory for one device context, sized by MAX_FRAME, SLOTS, SAMPLE_MAX,
 * BLOB_MAX and ARENA defined before inclusion (tests and the fuzz harness). */
#ifndef TR_DEVICE_FIXTURE_H
#define TR_DEVICE_FIXTURE_H

#include <string.h>
#include "proto/tr_device.h"

static uint8_t rx_buf[MAX_FRAME], body_buf[MAX_FRAME], wire_buf[TR_FRAME_WIRE_MAX(MAX_FRAME)];
static uint8_t samples[SLOTS * SAMPLE_MAX];
static tr_sample_meta meta[SLOTS];
static uint8_t staging[BLOB_MAX];
static uint8_t granules[TR_DEVICE_BITMAP_BYTES(BLOB_MAX)];
static uint64_t arena_words[ARENA / 8u];
static tr_train_record records[64];
static tr_device dev;

/* The config and memory of the fixture's device. */
static void fixture_setup(tr_device_config *cfg, tr_device_mem *mem)
{
    tr_device_config c = {MAX_FRAME, 4, SLOTS, SAMPLE_MAX, BLOB_MAX, ARENA, 64};
    tr_device_mem m = {rx_buf, body_buf, wire_buf, samples, meta, staging, granules,
                       (uint8_t *)arena_words, records};

    *cfg = c;
    *mem = m;
}

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
