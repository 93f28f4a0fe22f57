/* Instructions per forward MAC on the QEMU M4/M7 stand-ins (-icount shift=0,
 * counted by the CMSDK timer: ports/qemu/qemu_counter.c).
 *
 * Two figures, printed as one JSON line after "KERNELS_JSON ":
 *  - kernels: the forward MAC kernels alone at the reference CNN's spans
 *    (conv1 fan-in 9 and conv2 fan-in 72 through dot2, dense1 fan-in 784
 *    through dot), the reference and, in a TR_KERNELS_DSP build, the SIMD
 *    variant side by side;
 *  - model: a whole inference and a dense training step of the zoo `cnn`
 *    (28x28x1, 10 classes) with the kernels this build links, divided by the
 *    model's forward MACs; with the logits' checksum, which must be the same
 *    in the reference and the SIMD build.
 * Exit status 0 when every run succeeded (it measures, it does not judge). */
#include <stdio.h>
#include <string.h>
#include "engine/tr_engine.h"
#include "engine/tr_engine_desc.h"
#include "kernels/tr_kernels.h"
#include "model/tr_zoo.h"
#include "qemu_port.h"
#include "model_writer/trainer_model.h"

#define BLOB_MAX (64u * 1024u)
#define ARENA_MAX (160u * 1024u)
#define KERNEL_REPS 64u
#define SPAN_MAX 784u

#if defined(TR_KERNELS_DSP)
#define BENCH_KERNELS "dsp"
#else
#define BENCH_KERNELS "ref"
#endif

static uint8_t blob[BLOB_MAX];
static uint8_t weights[BLOB_MAX];
static uint64_t arena_words[ARENA_MAX / 8u];
static uint8_t sample[28u * 28u];
static tr_model_desc desc;

static int8_t kw0[SPAN_MAX], kw1[SPAN_MAX];
static uint8_t kx[SPAN_MAX];
static volatile int32_t sink;

static uint32_t rng = 0x2545F491u;
static uint32_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 17;
    rng ^= rng << 5;
    return rng;
}

typedef int32_t (*dot_fn)(const int8_t *, const uint8_t *, uint32_t, int32_t);
typedef void (*dot2_fn)(const int8_t *, const int8_t *, const uint8_t *, uint32_t, int32_t,
                        int32_t[2]);

/* Instructions per MAC of KERNEL_REPS calls over a span of n (two filters for dot2). */
/* x / y to three decimals, as text (newlib-nano's printf has no %f). */
static const char *milli(uint64_t x, uint64_t y, char buf[24])
{
    uint64_t m = (x * 1000u + y / 2u) / y;
    snprintf(buf, 24, "%u.%03u", (unsigned)(m / 1000u), (unsigned)(m % 1000u));
    return buf;
}

static uint64_t per_mac_dot(dot_fn f, uint32_t n)
{
    uint64_t t0 = tr_qemu_instructions();
    for (uint32_t r = 0; r < KERNEL_REPS; r++) {
        sink = f(kw0, kx, n, 117);
    }
    uint64_t t1 = tr_qemu_instructions();
    return t1 - t0; /* over KERNEL_REPS * n MACs */
}

static uint64_t per_mac_dot2(dot2_fn f, uint32_t n)
{
    int32_t two[2];
    uint64_t t0 = tr_qemu_instructions();
    for (uint32_t r = 0; r < KERNEL_REPS; r++) {
        f(kw0, kw1, kx, n, 117, two);
        sink = two[0] + two[1];
    }
    uint64_t t1 = tr_qemu_instructions();
    return t1 - t0; /* over KERNEL_REPS * 2 * n MACs */
}

static void print_kernel(const char *name, const char *kernel, uint32_t n, uint64_t macs,
                         uint64_t ref, uint64_t dsp, int last)
{
    char b[24];
    printf("{\"span\":\"%s\",\"kernel\":\"%s\",\"n\":%u,\"ref\":%s,", name, kernel, (unsigned)n,
           milli(ref, macs, b));
    if (dsp > 0u) {
        printf("\"dsp\":%s}%s", milli(dsp, macs, b), last ? "" : ",");
    } else {
        printf("\"dsp\":null}%s", last ? "" : ",");
    }
}

int main(void)
{
    static const struct {
        const char *name;
        uint32_t n;
        int two;
    } spans[] = { { "conv1", 9u, 1 }, { "conv2", 72u, 1 }, { "dense1", 784u, 0 } };
    tr_shape in = { 28u, 28u, 1u };
    tr_model_info info;
    tr_engine *e = NULL;
    tr_step_result r;
    tr_train_params p;
    int8_t logits[10];
    uint32_t sum = 0;
    size_t len;
    char buf[24];

    tr_qemu_counter_init();
    for (uint32_t i = 0; i < SPAN_MAX; i++) {
        kw0[i] = (int8_t)(next_rand() & 0xFFu);
        kw1[i] = (int8_t)(next_rand() & 0xFFu);
        kx[i] = (uint8_t)next_rand();
    }

    if (tr_zoo_desc("cnn", in, 10u, &desc) != TR_OK ||
        tr_model_plan(&desc, tr_engine_state_bytes()) != TR_OK ||
        desc.weights_bytes > sizeof weights ||
        tr_model_init_weights(&desc, 3u, weights, desc.weights_bytes) != TR_OK) {
        printf("bench_kernels: cannot build the cnn\n");
        return 1;
    }
    len = tr_trainer_encode_model(&desc, weights, desc.weights_bytes, "cnn", 3u, blob, sizeof blob);
    if (len == 0u || tr_engine_load(&e, blob, len, (uint8_t *)arena_words, sizeof arena_words,
                                    &info) != TR_OK) {
        printf("bench_kernels: cannot load the cnn\n");
        return 1;
    }
    for (uint32_t i = 0; i < sizeof sample; i++) {
        sample[i] = (uint8_t)next_rand();
    }

    /* one inference first: the measured one runs on a settled engine */
    if (tr_engine_infer(e, sample, 3u, &r, logits) != TR_OK) {
        return 1;
    }
    uint64_t t0 = tr_qemu_instructions();
    tr_status st = tr_engine_infer(e, sample, 3u, &r, logits);
    uint64_t t1 = tr_qemu_instructions();
    for (uint32_t i = 0; i < 10u; i++) {
        sum = sum * 31u + (uint8_t)logits[i];
    }
    memset(&p, 0, sizeof p);
    p.lr_ppm = 20000u;
    p.lambda_min_ppm = 1000000u;
    p.lambda_max_ppm = 1000000u;
    p.options = TR_TRAIN_QAS;
    uint64_t t2 = tr_qemu_instructions();
    tr_status st2 = tr_engine_train(e, sample, 3u, &p, &r);
    uint64_t t3 = tr_qemu_instructions();
    if (st != TR_OK || st2 != TR_OK) {
        printf("bench_kernels: run failed %d %d\n", st, st2);
        return 1;
    }
    uint64_t macs = tr_model_forward_macs(&desc);

    printf("KERNELS_JSON {\"kernels_linked\":\"%s\",\"model\":\"cnn\",\"forward_macs\":%u,"
           "\"infer_instructions\":%u,\"infer_instructions_per_mac\":%s,"
           "\"train_step_instructions\":%u,\"logits_checksum\":%u,\"spans\":[",
           BENCH_KERNELS, (unsigned)macs, (unsigned)(t1 - t0), milli(t1 - t0, macs, buf),
           (unsigned)(t3 - t2), (unsigned)sum);
    for (uint32_t s = 0; s < 3u; s++) {
        uint64_t ref, dsp = 0u;
        uint64_t kmacs = (uint64_t)KERNEL_REPS * spans[s].n * (spans[s].two ? 2u : 1u);
        if (spans[s].two) {
            ref = per_mac_dot2(tr_dot2_s8u8_ref, spans[s].n);
#if defined(TR_KERNELS_DSP)
            dsp = per_mac_dot2(tr_dot2_s8u8_dsp, spans[s].n);
#endif
        } else {
            ref = per_mac_dot(tr_dot_s8u8_ref, spans[s].n);
#if defined(TR_KERNELS_DSP)
            dsp = per_mac_dot(tr_dot_s8u8_dsp, spans[s].n);
#endif
        }
        print_kernel(spans[s].name, spans[s].two ? "dot2_s8u8" : "dot_s8u8", spans[s].n, kmacs, ref, dsp,
                     s == 2u);
    }
    printf("]}\n");
    return 0;
}
