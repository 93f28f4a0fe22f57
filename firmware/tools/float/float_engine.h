/* Float32 twin of the training engine: the same network, initial weights,
 * sample order and training loop (standardized gradients with EMA, sparse
 * updates, masks) with float32 tensors everywhere. For tests and benchmarks
 * only: it is the yardstick the int8 engine's accuracy is compared with. */
#ifndef TR_FLOAT_ENGINE_H
#define TR_FLOAT_ENGINE_H

#include <stddef.h>
#include <stdint.h>
#include "engine/tr_engine.h"
#include "model/tr_model.h"

typedef struct tr_float_engine tr_float_engine;

/* m must be planned; the initial weights are the dequantized int8 blob. */
tr_float_engine *tr_float_create(const tr_model_desc *m, const uint8_t *weights, size_t len);
void tr_float_destroy(tr_float_engine *fe);
tr_status tr_float_train(tr_float_engine *fe, const uint8_t *sample, uint32_t label,
                         const tr_train_params *p, tr_step_result *r);
tr_status tr_float_infer(tr_float_engine *fe, const uint8_t *sample, uint32_t label,
                         tr_step_result *r);

/* SHA-256 (hex) of every parameter as float32 little-endian, layer order. */
void tr_float_digest(const tr_float_engine *fe, char hex[65]);

#endif
