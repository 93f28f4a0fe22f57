/* A model as the engine runs it: the layer list with every shape resolved,
 * where each layer's parameters sit in the weights blob, and the arena plan.
 * Built from the CBOR blob (tr_model_parse) or from the zoo (tr_zoo_build);
 * the blob format is documented in model/FORMAT.md. */
#ifndef TR_MODEL_H
#define TR_MODEL_H

#include <stddef.h>
#include <stdint.h>
#include "common/tr_status.h"

#define TR_MODEL_VERSION 1u
#define TR_MAX_LAYERS 32u          /* the train masks are 32-bit */
#define TR_MAX_DIM 65535u          /* any one of h, w, c */
#define TR_MAX_ELEMS (1u << 20)    /* elements of one tensor */
#define TR_MAX_FAN_IN 32767u       /* weights per output channel */
#define TR_MAX_POSITIONS 33025u    /* output pixels of a conv (gradient sums) */
#define TR_WEIGHTS_MAGIC 0x31575254u /* "TRW1" little-endian */
#define TR_WEIGHTS_HEADER 16u
#define TR_BIAS_FRAC_BITS 20       /* real bias = int32 bias * 2^-20 */

typedef enum {
    TR_LAYER_CONV2D = 1,
    TR_LAYER_DWCONV2D = 2,
    TR_LAYER_DENSE = 3,
    TR_LAYER_RELU = 4,
    TR_LAYER_MAXPOOL = 5,
    TR_LAYER_AVGPOOL = 6,
    TR_LAYER_GAP = 7,
    TR_LAYER_FLATTEN = 8,
    TR_LAYER_SOFTMAX = 9
} tr_layer_kind;

#define TR_ACT_NONE 0u
#define TR_ACT_RELU 1u

#define TR_WQ_PER_CHANNEL 0u
#define TR_WQ_PER_TENSOR 1u

typedef struct {
    uint32_t h, w, c;
} tr_shape;

typedef struct {
    uint8_t kind;        /* tr_layer_kind */
    uint8_t act;         /* TR_ACT_* (conv2d, dwconv2d, dense) */
    uint8_t wq;          /* TR_WQ_* (conv2d, dwconv2d, dense) */
    uint8_t err_shift;   /* backward error scaling bits (see tr_layers.h) */
    uint16_t kh, kw;     /* kernel / pool window */
    uint16_t stride, pad;
    uint16_t units;      /* output channels of conv2d / dense */
    tr_shape in, out;
    uint32_t fan_in;     /* weights per output channel */
    uint32_t channels;   /* output channels (0 for layers without weights) */
    /* offsets into the weights blob (parametric layers) */
    uint32_t p_off;      /* range record: f32 min, f32 max, u32 seen */
    uint32_t s_off;      /* f32 scale[channels] */
    uint32_t b_off;      /* i32 bias[channels] */
    uint32_t w_off;      /* i8 weights[channels * fan_in] */
    /* offsets of the layer's output activation and optimizer state in the arena */
    uint32_t act_off;
    uint32_t opt_off;
} tr_layer;

typedef struct {
    tr_shape input;
    uint32_t classes;
    uint32_t n_layers;
    tr_layer layers[TR_MAX_LAYERS];
    /* weights blob */
    uint32_t weights_bytes;
    /* arena plan: byte offsets from the start of the arena */
    uint32_t off_weights;
    uint32_t off_opt;      /* optimizer state (per channel) */
    uint32_t off_act;      /* activations: input copy then every layer output */
    uint32_t act_region;   /* bytes of the activation region */
    uint32_t infer_ping;   /* inference ping-pong buffer size */
    uint32_t off_err0, off_err1; /* error ping-pong buffers */
    uint32_t off_acc;      /* int32 error accumulators */
    uint32_t off_grad;     /* int32 per-channel gradient (fan_in) */
    uint32_t off_chan;     /* per-channel scratch (forward and backward) */
    uint32_t infer_bytes;
    uint32_t train_bytes;
    uint32_t max_channels;
} tr_model_desc;

/* Shapes, parameter offsets and arena plan for a layer list whose kind and
 * hyper-parameter fields (and input/classes) are filled in. state_bytes is
 * what the caller keeps at the start of the arena before everything else.
 * Returns a named status per defect. */
tr_status tr_model_plan(tr_model_desc *m, uint32_t state_bytes);

/* Resolves one layer's output shape, fan-in, channels and error shift from
 * its input shape; last says whether it ends the model (then it must be the
 * softmax over `classes` elements). */
tr_status tr_model_resolve_layer(tr_layer *L, const tr_shape *in, int last, uint32_t classes);

/* Checks every quantization parameter of a weights blob for model m. */
tr_status tr_model_check_weights(const tr_model_desc *m, const uint8_t *blob, size_t len);

/* Number of parametric layers. */
uint32_t tr_model_param_layers(const tr_model_desc *m);

/* Multiply-accumulates of one forward pass (conv2d, dwconv2d, dense). */
uint64_t tr_model_forward_macs(const tr_model_desc *m);

/* 1 for conv2d, dwconv2d, dense. */
int tr_layer_has_params(const tr_layer *L);

#endif
