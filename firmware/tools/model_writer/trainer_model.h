/* Writes the CBOR model blob (core/model/FORMAT.md) for the host tools and
 * names blobs by their SHA-256 (crypto/tr_sha256.h). */
#ifndef TR_TRAINER_MODEL_H
#define TR_TRAINER_MODEL_H

#include <stddef.h>
#include <stdint.h>
#include "model/tr_model.h"

/* Encodes m (planned) with its weights blob, a name and the seed into buf.
 * Returns the blob size, or 0 when cap is too small. */
size_t tr_trainer_encode_model(const tr_model_desc *m, const uint8_t *weights, size_t wlen,
                               const char *name, uint32_t seed, uint8_t *buf, size_t cap);

/* SHA-256 of data in lower-case hex, 64 characters plus the terminator. */
void tr_trainer_sha256_hex(const uint8_t *data, size_t len, char out[65]);

#endif
