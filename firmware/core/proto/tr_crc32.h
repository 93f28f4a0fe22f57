/* CRC-32 (IEEE 802.3: reflected, poly 0xEDB88320, init and xor-out
 * 0xFFFFFFFF), the frame check of protocol/SPEC.md §1. */
#ifndef TR_CRC32_H
#define TR_CRC32_H

#include <stddef.h>
#include <stdint.h>
#include "common/tr_status.h"

#define TR_CRC32_INIT 0xFFFFFFFFu

/* Running register: start from TR_CRC32_INIT, feed, then xor 0xFFFFFFFF. */
tr_status tr_crc32_update(uint32_t *reg, const uint8_t *data, size_t len);
/* One-shot CRC of a buffer. */
tr_status tr_crc32(const uint8_t *data, size_t len, uint32_t *crc);

#endif
