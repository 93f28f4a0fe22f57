/* Two flash slots (A/B) holding the live model and its weights, so a board
 * restarts with the last committed model and a cut during a write never
 * loses it. The port provides erase/write/read of each slot (flash map
 * partitions on Zephyr, a file or RAM in tests); this file owns the layout:
 *
 *   [0, 128)   header: magic "TRAB", version, sequence number, sizes,
 *              SHA-256 of the payload and of the model blob, CRC-32 of the header
 *   [128, ..)  payload: the model blob, then the weights (none = the model's own)
 *
 * A save erases the slot that does not hold the newest valid copy, writes
 * the payload, and writes the header last: until that last write the other
 * slot is the newest valid one, after it the new slot (sequence + 1) is. */
#ifndef TR_SLOTS_H
#define TR_SLOTS_H

#include <stddef.h>
#include <stdint.h>
#include "common/tr_status.h"

#define TR_SLOT_HEADER_BYTES 128u
#define TR_SLOT_CHUNK 64u   /* bytes per write (a multiple of write_align) */

typedef struct {
    void *ctx;
    uint32_t slot_bytes;    /* size of each slot */
    uint32_t write_align;   /* program unit; a power of two <= TR_SLOT_CHUNK */
    /* slot is 0 or 1; write offsets and lengths are multiples of write_align */
    tr_status (*erase)(void *ctx, unsigned slot);
    tr_status (*write)(void *ctx, unsigned slot, uint32_t off, const uint8_t *data, size_t len);
    tr_status (*read)(void *ctx, unsigned slot, uint32_t off, uint8_t *data, size_t len);
} tr_slots;

typedef struct {
    uint32_t seq;            /* 1, 2, ... (wraps, compared as serial numbers) */
    uint32_t slot;
    uint32_t model_bytes;
    uint32_t weights_bytes;  /* 0: the weights are the model blob's own */
    uint8_t model_sha[32];   /* SHA-256 of the model blob */
} tr_slot_info;

/* The newest slot whose header and payload check out; TR_ERR_STATE if neither does. */
tr_status tr_slots_newest(const tr_slots *s, tr_slot_info *out);
/* Payload bytes of a slot found by tr_slots_newest: the model at 0, the weights at model_bytes. */
tr_status tr_slots_read(const tr_slots *s, const tr_slot_info *info, uint32_t off, uint8_t *buf,
                        size_t len);
/* Saves a model blob (sha: its SHA-256) with its own weights, or with weights when weights_bytes > 0. */
tr_status tr_slots_save(const tr_slots *s, const uint8_t *model, uint32_t model_bytes,
                        const uint8_t model_sha[32], const uint8_t *weights, uint32_t weights_bytes,
                        tr_slot_info *out);
/* Saves new weights for the model of the newest slot (copied from it).
 * TR_ERR_STATE when no valid slot holds the model whose SHA-256 is model_sha. */
tr_status tr_slots_save_weights(const tr_slots *s, const uint8_t model_sha[32], const uint8_t *weights,
                                uint32_t weights_bytes, tr_slot_info *out);

#endif
