/* The model zoo: every model the product ships, defined once. The daemon
 * reads it through `tinyrig-train zoo --json`. Each model adapts to any
 * input shape h x w x c and class count. */
#ifndef TR_ZOO_H
#define TR_ZOO_H

#include <stddef.h>
#include <stdint.h>
#include "common/tr_status.h"
#include "model/tr_model.h"

typedef struct {
    const char *name;
    const char *description;
    tr_shape input;     /* default input shape */
    uint32_t classes;   /* default class count */
} tr_zoo_entry;

uint32_t tr_zoo_count(void);
const tr_zoo_entry *tr_zoo_at(uint32_t i);
const tr_zoo_entry *tr_zoo_find(const char *name);

/* Fills the layer list of zoo model `name` for this input and class count
 * (not yet planned: call tr_model_plan or tr_engine_check_desc). */
tr_status tr_zoo_desc(const char *name, tr_shape input, uint32_t classes, tr_model_desc *m);

/* Seeded initial weights blob for a planned model: He-uniform int8 weights
 * (bound sqrt(6/fan_in) before a ReLU, sqrt(3/fan_in) otherwise) with one
 * scale per channel, zero biases, default output ranges. len must equal
 * m->weights_bytes. Integer PRNG: the same bytes on every target. */
tr_status tr_model_init_weights(const tr_model_desc *m, uint32_t seed, uint8_t *blob, size_t len);

#endif
