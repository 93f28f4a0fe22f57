/* The CBOR model blob (FORMAT.md) to a layer list plus the weights blob. */
#ifndef TR_MODEL_CBOR_H
#define TR_MODEL_CBOR_H

#include <stddef.h>
#include <stdint.h>
#include "model/tr_model.h"

typedef struct {
    const uint8_t *weights;  /* points into the model blob */
    uint32_t weights_len;
    const uint8_t *name;     /* UTF-8, not terminated; NULL when absent */
    uint32_t name_len;
    uint32_t seed;           /* seeds stochastic rounding; 0 when absent */
} tr_model_blob;

/* Layer kinds and hyper-parameters, input shape and classes into m (not yet
 * planned). Statuses: TR_ERR_TRUNCATED (blob ends inside an item),
 * TR_ERR_FORMAT (wrong type, missing or duplicate key, bad field count,
 * trailing bytes), TR_ERR_UNKNOWN_LAYER, TR_ERR_SHAPE (a dimension past
 * 16 bits), TR_ERR_UNSUPPORTED (other format version). */
tr_status tr_model_parse(const uint8_t *blob, size_t len, tr_model_desc *m, tr_model_blob *out);

#endif
