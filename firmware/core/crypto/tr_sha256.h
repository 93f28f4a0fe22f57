/* SHA-256 (FIPS 180-4), incremental: the one digest of models, weights and
 * snapshots in the product. No allocation; the context is the caller's. */
#ifndef TR_SHA256_H
#define TR_SHA256_H

#include <stddef.h>
#include <stdint.h>
#include "common/tr_status.h"

#define TR_SHA256_BYTES 32u

typedef struct {
    uint32_t h[8];
    uint64_t total;      /* bytes hashed so far */
    uint8_t block[64];
    size_t fill;         /* bytes waiting in block */
} tr_sha256_ctx;

tr_status tr_sha256_init(tr_sha256_ctx *c);
tr_status tr_sha256_update(tr_sha256_ctx *c, const uint8_t *data, size_t len);
/* Writes the digest; the context must be re-initialised before reuse. */
tr_status tr_sha256_final(tr_sha256_ctx *c, uint8_t out[TR_SHA256_BYTES]);
/* One-shot digest of a buffer. */
tr_status tr_sha256(const uint8_t *data, size_t len, uint8_t out[TR_SHA256_BYTES]);

#endif
