/* Engine entry points below the CBOR model blob: load from a resolved layer
 * list and a weights blob (the zoo, the tests and the host tools use them;
 * tr_engine_load is parse + tr_engine_load_desc). */
#ifndef TR_ENGINE_DESC_H
#define TR_ENGINE_DESC_H

#include "engine/tr_engine.h"
#include "model/tr_model.h"

/* Arena bytes the engine keeps for itself before the planned regions. */
uint32_t tr_engine_state_bytes(void);

/* Plans m (for this engine's state size) and checks the weights blob. */
tr_status tr_engine_check_desc(tr_model_desc *m, const uint8_t *weights, size_t wlen,
                               size_t arena_bytes, tr_model_info *info);

/* Loads a planned-or-not layer list; the weights are copied into the arena.
 * seed seeds the PRNG used for stochastic rounding. */
tr_status tr_engine_load_desc(tr_engine **out, const tr_model_desc *m, const uint8_t *weights,
                              size_t wlen, uint32_t seed, uint8_t *arena, size_t arena_bytes,
                              tr_model_info *info);

/* The resolved model of a loaded engine. */
const tr_model_desc *tr_engine_desc(const tr_engine *e);

/* Steps applied since load, and the PRNG state (both part of what makes a
 * run reproducible). */
uint32_t tr_engine_steps(const tr_engine *e);

#endif
