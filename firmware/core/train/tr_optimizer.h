/* The in-place optimizer (batch size 1, no gradient buffer) and the dynamic
 * sparse channel selection.
 *
 * Modes (tr_engine.h options):
 *  - standardized gradients (default, DESIGN §2.1): per output channel
 *    w <- requant(w - lr * (g - mu)/sigma), mu and sigma of the channel's
 *    gradient smoothed by an EMA (TR_OPT_GRAD_EMA);
 *  - TR_TRAIN_QAS: plain SGD with quantization-aware scaling (DESIGN §2.2):
 *    the update in weight steps is -lr * g / s_w (= G_W / s_W^2 in the int
 *    domain), i.e. what float SGD would do;
 *  - TR_TRAIN_SGD: plain SGD in the int domain without QAS, the naive int8
 *    baseline: -lr * g * s_w steps.
 * The new value of a weight is computed with 16 fractional bits and rounded
 * to nearest, or stochastically with the engine's seeded PRNG. A channel whose
 * new values leave +-127.5 steps (or fall under half of the range) is
 * rescaled: its scale is set from the real range, every weight requantized.
 */
#ifndef TR_OPTIMIZER_H
#define TR_OPTIMIZER_H

#include <stdint.h>
#include "common/tr_status.h"

#ifndef TR_OPT_GRAD_EMA
#define TR_OPT_GRAD_EMA 0.8f   /* EMA of the channel gradient mean / std */
#endif

typedef enum {
    TR_OPT_STANDARDIZED = 0,
    TR_OPT_SGD_QAS = 1,
    TR_OPT_SGD = 2
} tr_opt_mode;

typedef struct {
    float lr;
    uint32_t mode;       /* tr_opt_mode */
    int stochastic;      /* stochastic rounding of weight updates */
    uint32_t *rng;       /* PRNG state for stochastic rounding */
} tr_opt;

/* Optimizer state of one output channel (in the arena, 12 bytes). */
typedef struct {
    float mu, sigma;     /* EMA of the weight gradient's mean and std (real) */
    float bmag;          /* EMA of |bias gradient| (real) */
} tr_chan_state;

/* Updates the n weights of one channel, w[j * stride], in place.
 * g: the gradient (int32, units g_unit), overwritten (scratch).
 * *scale: the channel's scale; with per_tensor != 0 it is not changed (the
 * new values saturate at +-127 and tr_opt_rescale_tensor runs after). */
void tr_opt_update_weights(const tr_opt *o, int8_t *w, uint32_t n, uint32_t stride, float *scale,
                           int per_tensor, int32_t *g, float g_unit, tr_chan_state *st);

/* Updates one bias (real = bias * 2^-20) from its gradient gb * gb_unit. */
void tr_opt_update_bias(const tr_opt *o, int32_t *bias, int32_t gb, float gb_unit,
                        tr_chan_state *st);

/* Per-tensor weights: widens the shared scale when values saturated, narrows
 * it when the largest magnitude fell under 64 steps; requantizes (nearest). */
void tr_opt_rescale_tensor(int8_t *w, uint32_t n, float *scales, uint32_t channels);

/* Dynamic sparse update: number of channels to update out of n,
 * k = floor(min(lmin + ratio * (lmax - lmin), 1) * n), at least 1. */
uint32_t tr_sparse_k(uint32_t n, float lambda_min, float lambda_max, float loss_ratio);

/* Marks in sel[] the k channels of largest mag (ties: lower index first). */
void tr_sparse_select(const uint32_t *mag, uint32_t n, uint32_t k, uint8_t *sel);

/* The engine's selection: k channels drawn at random, favouring large error
 * magnitudes. Each channel's key is mag[c] * (1 + 8 random bits from *rng);
 * the k largest keys win (ties: lower index first). A channel whose error is
 * zero is never chosen over one whose error is not. Unlike a plain top-k, a
 * channel whose error is always second-largest still gets its share of updates:
 * a fixed top-k keeps pushing the same channels on the hardest samples only,
 * which lost 2.2 points when fine-tuning a trained model (bench/engine.ts).
 * Overwrites mag[] with the keys; integer only (bit-exact on every target). */
void tr_sparse_select_weighted(uint32_t *mag, uint32_t n, uint32_t k, uint32_t *rng, uint8_t *sel);

#endif
