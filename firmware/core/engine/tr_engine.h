/* The training engine as the protocol handlers and the host tools see it.
 * Everything the engine holds (state, weights, activations, error buffers)
 * lives in the one arena the caller passes; nothing is allocated per step. */
#ifndef TR_ENGINE_H
#define TR_ENGINE_H

#include <stddef.h>
#include <stdint.h>
#include "common/tr_status.h"

typedef struct tr_engine tr_engine;   /* lives inside the caller's arena */

typedef struct {
    uint32_t input_bytes;    /* bytes per sample (h*w*c, uint8) */
    uint32_t classes;
    uint32_t layers;
    uint32_t weights_bytes;  /* size of the weights blob (tr_engine_weights) */
    uint32_t infer_bytes;    /* arena bytes needed for inference */
    uint32_t train_bytes;    /* arena bytes needed for training (>= infer_bytes) */
    uint64_t forward_macs;   /* multiply-accumulates of one forward pass */
    uint32_t param_layers;   /* bit i: layer i (i < 32) has weights and a bias (can train) */
} tr_model_info;

/* Train options (bit flags of tr_train_params.options). */
#define TR_TRAIN_QAS 0x1u            /* quantization-aware gradient scaling */
#define TR_TRAIN_STOCHASTIC 0x2u     /* stochastic rounding of weight updates */
#define TR_TRAIN_SGD 0x4u            /* plain int8 SGD without QAS (baseline); with
                                        neither QAS nor SGD the optimizer uses
                                        standardized gradients (train/tr_optimizer.h) */
#define TR_TRAIN_LR_MAX_PPM 100000000u /* largest learning rate accepted: 100 */

typedef struct {
    uint32_t lr_ppm;          /* learning rate x 1e6 */
    uint32_t lambda_min_ppm;  /* dynamic sparse update; 1e6/1e6 means dense. A sparse
                                 step updates the weights of k channels per hidden
                                 layer (DESIGN §2.1), drawn at random with weights
                                 growing with their error (tr_sparse_select_weighted);
                                 every channel's bias and the classifier update in full */
    uint32_t lambda_max_ppm;
    uint32_t trainable;       /* bit i: layer i trains its weights; 0 = all */
    uint32_t bias_only;       /* bit i: layer i trains only its bias */
    uint32_t options;         /* TR_TRAIN_* */
} tr_train_params;

typedef struct {
    uint32_t loss_ppm;          /* cross-entropy of the sample x 1e6 */
    uint32_t predicted;         /* class predicted by the forward pass */
    uint32_t correct;           /* 1 when predicted == label */
    uint32_t channels_updated;  /* channels whose weights changed this step */
    uint32_t channels_total;    /* trainable channels this step could touch */
} tr_step_result;

/* Checks a model blob without touching any memory but *info: every defect
 * gets its own status; TR_ERR_NOMEM when train_bytes > arena_bytes. */
tr_status tr_engine_validate(const uint8_t *model, size_t len, size_t arena_bytes,
                             tr_model_info *info);

/* Validates, then lays the model out in the arena (state, weights, buffers). */
tr_status tr_engine_load(tr_engine **out, const uint8_t *model, size_t len,
                         uint8_t *arena, size_t arena_bytes, tr_model_info *info);

/* One SGD step (batch size 1) on one sample. */
tr_status tr_engine_train(tr_engine *e, const uint8_t *sample, uint32_t label,
                          const tr_train_params *p, tr_step_result *r);

/* Forward pass only; logits (int8, one per class) may be NULL. */
tr_status tr_engine_infer(tr_engine *e, const uint8_t *sample, uint32_t label,
                          tr_step_result *r, int8_t *logits);

/* The live weights blob: contiguous, its bytes are what WEIGHTS_READ serves. */
tr_status tr_engine_weights(const tr_engine *e, const uint8_t **weights, size_t *len);

/* Replaces the live weights after checking size and quantization parameters. */
tr_status tr_engine_set_weights(tr_engine *e, const uint8_t *weights, size_t len);

/* Most arena bytes in use at once since load. */
size_t tr_engine_arena_peak(const tr_engine *e);

#endif
