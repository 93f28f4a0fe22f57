/* SHA-256 (FIPS 180-4) for the host trainer's digests of models and weights. */
#ifndef TR_TRAINER_SHA256_H
#define TR_TRAINER_SHA256_H

#include <stddef.h>
#include <stdint.h>

void tr_trainer_sha256(const uint8_t *data, size_t len, uint8_t out[32]);
/* Lower-case hex, 64 characters plus the terminator. */
void tr_trainer_sha256_hex(const uint8_t *data, size_t len, char out[65]);

#endif
