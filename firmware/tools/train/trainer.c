/* tinyrig-train: the host tool around the training engine.
 *
 *   tinyrig-train zoo [--json]
 *   tinyrig-train build --model NAME --seed S [--input HxWxC] [--classes K] --out FILE
 *   tinyrig-train train --model NAME --seed S --epochs E [options]   (see usage())
 *
 * It trains exactly as a board does: the same engine code, one sample per
 * step, on Fashion-MNIST read from Debian's dataset-fashion-mnist. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dataset.h"
#include "engine/tr_engine.h"
#include "engine/tr_engine_desc.h"
#include "float/float_engine.h"
#include "model/tr_model_cbor.h"
#include "model/tr_zoo.h"
#include "quant/tr_quant.h"
#include "train/tr_schedule.h"
#include "model_writer/trainer_model.h"
#include "trainer_plan.h"

static void usage(void)
{
    fprintf(stderr,
            "usage:\n"
            "  tinyrig-train zoo [--json]\n"
            "  tinyrig-train build --model NAME --seed S [--input HxWxC] [--classes K] --out FILE\n"
            "  tinyrig-train build --spec FILE --seed S [--name NAME] --out FILE\n"
            "                       FILE: a model blob (FORMAT.md) whose weights are empty;\n"
            "                       seeded initial weights; the plan as JSON on stdout\n"
            "  tinyrig-train plan --in FILE       check a model blob, print its plan as JSON\n"
            "  tinyrig-train train --model NAME --seed S --epochs E [options]\n"
            "  tinyrig-train memory --model NAME [--input HxWxC] [--classes K] [--json]\n"
            "options of train:\n"
            "  --in FILE            start from this model blob instead of a fresh zoo model\n"
            "  --out FILE           write the trained model blob (int8 only)\n"
            "  --input HxWxC --classes K   model shape (default: the zoo's)\n"
            "  --train-count N      use the first N training images (default: all)\n"
            "  --test-count N       evaluate on the first N test images (default: all)\n"
            "  --lr X               initial learning rate (default 0.02 with --qas or --sgd,\n"
            "                       0.001 for standardized gradients)\n"
            "  --schedule constant|linear|step   learning-rate schedule (default linear)\n"
            "  --lambda-min X --lambda-max X     dynamic sparse update (default 1 1: dense)\n"
            "  --qas                SGD with quantization-aware scaling\n"
            "  --sgd                plain int8 SGD (no QAS, no standardization)\n"
            "                       (default optimizer: standardized gradients)\n"
            "  --stochastic         stochastic rounding of weight updates\n"
            "  --float              run the float32 twin of the same network and loop\n"
            "  --train-classes A-B  train and test only on labels A..B\n"
            "  --pretrain-classes A-B  first train every layer on labels A..B, then\n"
            "  --finetune-classes C-D  fine-tune on labels C..D with\n"
            "  --train-last N       only the last N layers with weights trainable\n"
            "  --pretrain-epochs E  epochs of the pretraining phase (default: --epochs)\n"
            "  --data DIR           IDX directory (default " TR_FASHION_DIR ")\n"
            "  --json               print one JSON object\n");
}

typedef struct {
    const char *model, *in, *out, *data, *spec, *name;
    uint32_t seed, epochs, pretrain_epochs, train_count, test_count, classes;
    tr_shape input;
    int has_input, has_classes;
    double lr, lmin, lmax;
    int qas, sgd, stochastic, use_float, json;
    tr_schedule schedule;
    int has_train, has_pre, has_fine;
    uint32_t train_lo, train_hi, pre_lo, pre_hi, fine_lo, fine_hi, train_last;
} opts;

static int parse_range(const char *s, uint32_t *lo, uint32_t *hi)
{
    unsigned a, b;
    if (sscanf(s, "%u-%u", &a, &b) == 2 && a <= b) {
        *lo = a;
        *hi = b;
        return 0;
    }
    if (sscanf(s, "%u", &a) == 1) {
        *lo = *hi = a;
        return 0;
    }
    return -1;
}

static int parse_opts(int argc, char **argv, opts *o)
{
    memset(o, 0, sizeof *o);
    o->model = "cnn";
    o->seed = 1;
    o->epochs = 1;
    o->lr = -1.0; /* per optimizer, after parsing */
    o->lmin = 1.0;
    o->lmax = 1.0;
    o->data = TR_FASHION_DIR;
    o->schedule = TR_SCHEDULE_LINEAR;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        const char *v = (i + 1 < argc) ? argv[i + 1] : NULL;
#define ARG(name) (strcmp(a, name) == 0 && v != NULL && (++i, 1))
        if (strcmp(a, "--json") == 0) {
            o->json = 1;
        } else if (strcmp(a, "--qas") == 0) {
            o->qas = 1;
        } else if (strcmp(a, "--sgd") == 0) {
            o->sgd = 1;
        } else if (strcmp(a, "--stochastic") == 0) {
            o->stochastic = 1;
        } else if (strcmp(a, "--float") == 0) {
            o->use_float = 1;
        } else if (ARG("--model")) {
            o->model = v;
        } else if (ARG("--in")) {
            o->in = v;
        } else if (ARG("--spec")) {
            o->spec = v;
        } else if (ARG("--name")) {
            o->name = v;
        } else if (ARG("--out")) {
            o->out = v;
        } else if (ARG("--data")) {
            o->data = v;
        } else if (ARG("--seed")) {
            o->seed = (uint32_t)strtoul(v, NULL, 10);
        } else if (ARG("--epochs")) {
            o->epochs = (uint32_t)strtoul(v, NULL, 10);
        } else if (ARG("--pretrain-epochs")) {
            o->pretrain_epochs = (uint32_t)strtoul(v, NULL, 10);
        } else if (ARG("--train-count")) {
            o->train_count = (uint32_t)strtoul(v, NULL, 10);
        } else if (ARG("--test-count")) {
            o->test_count = (uint32_t)strtoul(v, NULL, 10);
        } else if (ARG("--classes")) {
            o->classes = (uint32_t)strtoul(v, NULL, 10);
            o->has_classes = 1;
        } else if (ARG("--input")) {
            unsigned h, w, c;
            if (sscanf(v, "%ux%ux%u", &h, &w, &c) != 3) {
                fprintf(stderr, "--input wants HxWxC\n");
                return -1;
            }
            o->input.h = h;
            o->input.w = w;
            o->input.c = c;
            o->has_input = 1;
        } else if (ARG("--lr")) {
            o->lr = atof(v);
        } else if (ARG("--lambda-min")) {
            o->lmin = atof(v);
        } else if (ARG("--lambda-max")) {
            o->lmax = atof(v);
        } else if (ARG("--schedule")) {
            o->schedule = strcmp(v, "constant") == 0 ? TR_SCHEDULE_CONSTANT
                          : strcmp(v, "step") == 0   ? TR_SCHEDULE_STEP
                                                     : TR_SCHEDULE_LINEAR;
        } else if (ARG("--train-classes")) {
            o->has_train = parse_range(v, &o->train_lo, &o->train_hi) == 0;
        } else if (ARG("--pretrain-classes")) {
            o->has_pre = parse_range(v, &o->pre_lo, &o->pre_hi) == 0;
        } else if (ARG("--finetune-classes")) {
            o->has_fine = parse_range(v, &o->fine_lo, &o->fine_hi) == 0;
        } else if (ARG("--train-last")) {
            o->train_last = (uint32_t)strtoul(v, NULL, 10);
        } else {
            fprintf(stderr, "unknown or incomplete option %s\n", a);
            return -1;
        }
#undef ARG
    }
    if (o->lmin < 0.0 || o->lmax > 1.0 || o->lmin > o->lmax) {
        fprintf(stderr, "need 0 <= lambda-min <= lambda-max <= 1\n");
        return -1;
    }
    if (o->lr < 0.0) {
        /* measured on Fashion-MNIST: standardized gradients diverge above ~0.001 */
        o->lr = (o->qas || o->sgd) ? 0.02 : 0.001;
    }
    return 0;
}

static const char *status_name(tr_status st)
{
    static const char *names[] = { "OK", "ARG", "NOMEM", "TRUNCATED", "FORMAT", "SHAPE",
                                   "UNKNOWN_LAYER", "OVERFLOW", "QUANT", "UNSUPPORTED",
                                   "HASH", "STATE" };
    return ((unsigned)st < sizeof names / sizeof names[0]) ? names[st] : "?";
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* A zoo model, planned, with seeded weights, as a CBOR blob (malloc'd). */
static uint8_t *build_blob(const char *name, tr_shape in, uint32_t classes, uint32_t seed,
                           size_t *len, tr_model_desc *m)
{
    tr_status st = tr_zoo_desc(name, in, classes, m);
    uint8_t *w, *blob;
    size_t cap;
    if (st == TR_OK) {
        st = tr_model_plan(m, tr_engine_state_bytes());
    }
    if (st != TR_OK) {
        fprintf(stderr, "model %s %ux%ux%u/%u: %s\n", name, (unsigned)in.h, (unsigned)in.w,
                (unsigned)in.c, (unsigned)classes, status_name(st));
        return NULL;
    }
    w = malloc(m->weights_bytes);
    cap = m->weights_bytes + 1024u;
    blob = malloc(cap);
    if (w == NULL || blob == NULL || tr_model_init_weights(m, seed, w, m->weights_bytes) != TR_OK) {
        free(w);
        free(blob);
        return NULL;
    }
    *len = tr_trainer_encode_model(m, w, m->weights_bytes, name, seed, blob, cap);
    free(w);
    if (*len == 0) {
        free(blob);
        return NULL;
    }
    return blob;
}

static int cmd_zoo(const opts *o)
{
    if (o->json) {
        printf("[");
    }
    for (uint32_t i = 0; i < tr_zoo_count(); i++) {
        const tr_zoo_entry *z = tr_zoo_at(i);
        tr_model_desc m;
        tr_status st = tr_zoo_desc(z->name, z->input, z->classes, &m);
        if (st == TR_OK) {
            st = tr_model_plan(&m, tr_engine_state_bytes());
        }
        if (st != TR_OK) {
            fprintf(stderr, "zoo model %s: %s\n", z->name, status_name(st));
            return 1;
        }
        if (o->json) {
            printf("%s{\"name\":\"%s\",\"description\":\"%s\",\"input\":[%u,%u,%u],\"classes\":%u,"
                   "\"layers\":%u,\"weights_bytes\":%u,\"train_bytes\":%u,\"infer_bytes\":%u}",
                   i ? "," : "", z->name, z->description, (unsigned)z->input.h,
                   (unsigned)z->input.w, (unsigned)z->input.c, (unsigned)z->classes,
                   (unsigned)m.n_layers, (unsigned)m.weights_bytes, (unsigned)m.train_bytes,
                   (unsigned)m.infer_bytes);
        } else {
            printf("%-6s %ux%ux%u -> %u  layers %2u  weights %6u B  train %6u B  infer %6u B\n"
                   "       %s\n",
                   z->name, (unsigned)z->input.h, (unsigned)z->input.w, (unsigned)z->input.c,
                   (unsigned)z->classes, (unsigned)m.n_layers, (unsigned)m.weights_bytes,
                   (unsigned)m.train_bytes, (unsigned)m.infer_bytes, z->description);
        }
    }
    if (o->json) {
        printf("]\n");
    }
    return 0;
}

static int write_file(const char *path, const uint8_t *d, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL || fwrite(d, 1, n, f) != n) {
        fprintf(stderr, "cannot write %s\n", path);
        if (f != NULL) {
            fclose(f);
        }
        return -1;
    }
    return fclose(f) == 0 ? 0 : -1;
}

static uint8_t *read_file(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf = NULL;
    long sz;
    if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (sz = ftell(f)) < 0 ||
        fseek(f, 0, SEEK_SET) != 0) {
        fprintf(stderr, "cannot read %s\n", path);
        if (f != NULL) {
            fclose(f);
        }
        return NULL;
    }
    buf = malloc((size_t)sz + 1u);
    if (buf != NULL && fread(buf, 1, (size_t)sz, f) != (size_t)sz) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    *n = (size_t)sz;
    return buf;
}

static void shape_defaults(const opts *o, tr_shape *in, uint32_t *classes)
{
    const tr_zoo_entry *z = tr_zoo_find(o->model);
    *in = o->has_input ? o->input : (z != NULL ? z->input : (tr_shape){ 28, 28, 1 });
    *classes = o->has_classes ? o->classes : (z != NULL ? z->classes : 10u);
}

static int cmd_build(const opts *o)
{
    tr_model_desc m;
    tr_model_blob b;
    tr_shape in;
    uint32_t classes;
    size_t len;
    uint8_t *blob;
    char hm[65], hw[65];
    if (o->spec != NULL && o->out != NULL) {
        size_t n;
        uint8_t *spec = read_file(o->spec, &n);
        int rc = spec != NULL ? tr_trainer_cmd_build_spec(spec, n, o->seed, o->name, o->out) : 1;
        free(spec);
        return rc;
    }
    if (o->out == NULL || tr_zoo_find(o->model) == NULL) {
        fprintf(stderr, "build needs --model (a zoo name) or --spec FILE, and --out\n");
        return 2;
    }
    shape_defaults(o, &in, &classes);
    blob = build_blob(o->model, in, classes, o->seed, &len, &m);
    if (blob == NULL || tr_model_parse(blob, len, &m, &b) != TR_OK) {
        free(blob);
        return 1;
    }
    if (write_file(o->out, blob, len) != 0) {
        free(blob);
        return 1;
    }
    tr_trainer_sha256_hex(blob, len, hm);
    tr_trainer_sha256_hex(b.weights, b.weights_len, hw);
    printf("{\"sha256_model\":\"%s\",\"sha256_weights\":\"%s\",\"bytes\":%zu,\"weights_bytes\":%u}\n",
           hm, hw, len, (unsigned)b.weights_len);
    free(blob);
    return 0;
}

/* --- training ------------------------------------------------------------ */

typedef struct {
    tr_engine *e;
    tr_float_engine *fe;
} runner;

static tr_status run_train(runner *r, const uint8_t *x, uint32_t y, const tr_train_params *p,
                           tr_step_result *res)
{
    return r->fe != NULL ? tr_float_train(r->fe, x, y, p, res) : tr_engine_train(r->e, x, y, p, res);
}

static tr_status run_infer(runner *r, const uint8_t *x, uint32_t y, tr_step_result *res)
{
    return r->fe != NULL ? tr_float_infer(r->fe, x, y, res) : tr_engine_infer(r->e, x, y, res, NULL);
}

typedef struct {
    uint32_t steps;
    double loss_first, loss_last, updated_fraction, seconds;
    double test_accuracy, test_loss;
    uint32_t test_samples;
} phase_result;

static void evaluate(runner *r, const tr_dataset *te, uint32_t count, uint32_t isz,
                     phase_result *pr)
{
    uint32_t correct = 0;
    double loss = 0.0;
    uint32_t n = (count != 0 && count < te->count) ? count : te->count;
    for (uint32_t i = 0; i < n; i++) {
        tr_step_result res;
        if (run_infer(r, te->images + (size_t)i * isz, te->labels[i], &res) != TR_OK) {
            break;
        }
        correct += res.correct;
        loss += res.loss_ppm * 1e-6;
    }
    pr->test_samples = n;
    pr->test_accuracy = n ? (double)correct / n : 0.0;
    pr->test_loss = n ? loss / n : 0.0;
}

static int train_phase(runner *r, const opts *o, const tr_dataset *tr, const tr_dataset *te,
                       uint32_t epochs, uint32_t trainable, uint32_t seed, phase_result *pr)
{
    uint32_t n = (o->train_count != 0 && o->train_count < tr->count) ? o->train_count : tr->count;
    uint32_t isz = tr->h * tr->w * tr->c;
    uint32_t *order = malloc(sizeof(uint32_t) * (n ? n : 1u));
    uint32_t total = n * epochs, step = 0, window = total / 10u ? total / 10u : 1u;
    uint32_t rng = tr_rng_seed(seed ^ 0x5EEDu);
    uint64_t upd = 0, tot = 0;
    double lf = 0.0, ll = 0.0, t0 = now_s();
    tr_train_params p;
    memset(pr, 0, sizeof *pr);
    if (order == NULL) {
        return -1;
    }
    memset(&p, 0, sizeof p);
    p.lambda_min_ppm = (uint32_t)(o->lmin * 1e6 + 0.5);
    p.lambda_max_ppm = (uint32_t)(o->lmax * 1e6 + 0.5);
    p.trainable = trainable;
    p.options = (o->qas ? TR_TRAIN_QAS : 0u) | (o->sgd ? TR_TRAIN_SGD : 0u) |
                (o->stochastic ? TR_TRAIN_STOCHASTIC : 0u);
    for (uint32_t ep = 0; ep < epochs; ep++) {
        for (uint32_t i = 0; i < n; i++) {
            order[i] = i;
        }
        for (uint32_t i = n; i > 1u; i--) { /* Fisher-Yates with the seeded PRNG */
            uint32_t j = tr_rng_next(&rng) % i;
            uint32_t t = order[i - 1u];
            order[i - 1u] = order[j];
            order[j] = t;
        }
        for (uint32_t i = 0; i < n; i++, step++) {
            tr_step_result res;
            uint32_t k = order[i];
            tr_status st;
            p.lr_ppm = tr_schedule_lr_ppm(o->schedule, (uint32_t)(o->lr * 1e6 + 0.5), step, total);
            st = run_train(r, tr->images + (size_t)k * isz, tr->labels[k], &p, &res);
            if (st != TR_OK) {
                fprintf(stderr, "train step %u: %s\n", (unsigned)step, status_name(st));
                free(order);
                return -1;
            }
            if (step < window) {
                lf += res.loss_ppm * 1e-6;
            }
            if (step >= total - window) {
                ll += res.loss_ppm * 1e-6;
            }
            upd += res.channels_updated;
            tot += res.channels_total;
            if (!o->json && (step + 1u) % 10000u == 0u) {
                fprintf(stderr, "  step %u/%u\n", (unsigned)(step + 1u), (unsigned)total);
            }
        }
    }
    free(order);
    pr->steps = total;
    pr->seconds = now_s() - t0;
    pr->loss_first = lf / window;
    pr->loss_last = ll / window;
    pr->updated_fraction = tot ? (double)upd / (double)tot : 0.0;
    evaluate(r, te, o->test_count, isz, pr);
    return 0;
}

static uint32_t last_layers_mask(const tr_model_desc *m, uint32_t n)
{
    uint32_t mask = 0;
    for (uint32_t i = m->n_layers; i-- > 0 && n > 0;) {
        if (tr_layer_has_params(&m->layers[i])) {
            mask |= 1u << i;
            n--;
        }
    }
    return mask;
}

static void print_phase(const char *key, const phase_result *pr)
{
    printf("\"%s\":{\"steps\":%u,\"seconds\":%.3f,\"train_loss_first\":%.4f,"
           "\"train_loss_last\":%.4f,\"updated_fraction\":%.4f,\"test_samples\":%u,"
           "\"test_accuracy\":%.4f,\"test_loss\":%.4f}",
           key, (unsigned)pr->steps, pr->seconds, pr->loss_first, pr->loss_last,
           pr->updated_fraction, (unsigned)pr->test_samples, pr->test_accuracy, pr->test_loss);
}

static int cmd_train(const opts *o)
{
    tr_dataset tr, te, tr2, te2;
    tr_model_desc m;
    tr_model_blob b;
    tr_model_info info;
    tr_shape in;
    uint32_t classes;
    size_t len = 0;
    uint8_t *blob, *arena = NULL;
    runner r = { NULL, NULL };
    phase_result pre, main_phase, pre_after;
    uint32_t trainable = 0;
    int has_pre = o->has_pre;
    char hex[65];
    const char *optimizer = o->qas ? "sgd+qas" : (o->sgd ? "sgd" : "standardized");
    tr_status st;
    double t0 = now_s();

    memset(&pre, 0, sizeof pre);
    memset(&pre_after, 0, sizeof pre_after);
    shape_defaults(o, &in, &classes);
    blob = o->in != NULL ? read_file(o->in, &len) : build_blob(o->model, in, classes, o->seed, &len, &m);
    if (blob == NULL) {
        return 1;
    }
    st = tr_model_parse(blob, len, &m, &b);
    if (st == TR_OK) {
        st = tr_engine_check_desc(&m, b.weights, b.weights_len, (size_t)-1, &info);
    }
    if (st != TR_OK) {
        fprintf(stderr, "model: %s\n", status_name(st));
        free(blob);
        return 1;
    }
    if (tr_dataset_load(o->data, "train", &tr) != 0 || tr_dataset_load(o->data, "t10k", &te) != 0) {
        free(blob);
        return 1;
    }
    if (tr.h * tr.w * tr.c != info.input_bytes) {
        fprintf(stderr, "model input is %u bytes, the images are %ux%ux%u\n",
                (unsigned)info.input_bytes, (unsigned)tr.h, (unsigned)tr.w, (unsigned)tr.c);
        return 1;
    }
    if (o->use_float) {
        r.fe = tr_float_create(&m, b.weights, b.weights_len);
    } else {
        arena = malloc(info.train_bytes);
        st = arena ? tr_engine_load(&r.e, blob, len, arena, info.train_bytes, &info) : TR_ERR_NOMEM;
        if (st != TR_OK) {
            fprintf(stderr, "load: %s\n", status_name(st));
            return 1;
        }
    }
    if (r.e == NULL && r.fe == NULL) {
        return 1;
    }
    /* transfer learning: pretrain every layer on one class range first */
    if (has_pre) {
        tr2 = tr;
        te2 = te;
        tr2.images = malloc((size_t)tr.count * tr.h * tr.w * tr.c);
        tr2.labels = malloc(tr.count);
        te2.images = malloc((size_t)te.count * te.h * te.w * te.c);
        te2.labels = malloc(te.count);
        memcpy(tr2.images, tr.images, (size_t)tr.count * tr.h * tr.w * tr.c);
        memcpy(tr2.labels, tr.labels, tr.count);
        memcpy(te2.images, te.images, (size_t)te.count * te.h * te.w * te.c);
        memcpy(te2.labels, te.labels, te.count);
        tr_dataset_filter(&tr2, o->pre_lo, o->pre_hi);
        tr_dataset_filter(&te2, o->pre_lo, o->pre_hi);
        if (train_phase(&r, o, &tr2, &te2, o->pretrain_epochs ? o->pretrain_epochs : o->epochs, 0,
                        o->seed + 1u, &pre) != 0) {
            return 1;
        }
    }
    if (o->has_fine || o->has_train) {
        uint32_t lo = o->has_fine ? o->fine_lo : o->train_lo;
        uint32_t hi = o->has_fine ? o->fine_hi : o->train_hi;
        tr_dataset_filter(&tr, lo, hi);
        tr_dataset_filter(&te, lo, hi);
    }
    if (o->train_last > 0) {
        trainable = last_layers_mask(&m, o->train_last);
    }
    if (train_phase(&r, o, &tr, &te, o->epochs, trainable, o->seed, &main_phase) != 0) {
        return 1;
    }
    if (has_pre) {
        evaluate(&r, &te2, o->test_count, te2.h * te2.w * te2.c, &pre_after);
    }
    if (r.fe != NULL) {
        tr_float_digest(r.fe, hex);
    } else {
        const uint8_t *w;
        size_t wl;
        tr_engine_weights(r.e, &w, &wl);
        tr_trainer_sha256_hex(w, wl, hex);
        if (o->out != NULL) {
            size_t cap = wl + 1024u;
            uint8_t *ob = malloc(cap);
            size_t on = ob ? tr_trainer_encode_model(&m, w, wl, o->model, b.seed, ob, cap) : 0u;
            if (on == 0 || write_file(o->out, ob, on) != 0) {
                free(ob);
                return 1;
            }
            free(ob);
        }
    }
    if (o->json) {
        printf("{\"model\":\"%s\",\"precision\":\"%s\",\"optimizer\":\"%s\",\"stochastic\":%s,"
               "\"seed\":%u,\"epochs\":%u,\"train_samples\":%u,\"lr\":%g,\"schedule\":%d,"
               "\"lambda_min\":%g,\"lambda_max\":%g,\"trainable_mask\":%u,"
               "\"weights_bytes\":%u,\"train_bytes\":%u,\"infer_bytes\":%u,\"arena_peak\":%zu,",
               o->model, r.fe ? "float32" : "int8", optimizer, o->stochastic ? "true" : "false",
               (unsigned)o->seed, (unsigned)o->epochs, (unsigned)tr.count, o->lr,
               (int)o->schedule, o->lmin, o->lmax, (unsigned)trainable,
               (unsigned)info.weights_bytes, (unsigned)info.train_bytes,
               (unsigned)info.infer_bytes, r.e ? tr_engine_arena_peak(r.e) : (size_t)0);
        print_phase("train", &main_phase);
        if (has_pre) {
            printf(",");
            print_phase("pretrain", &pre);
            printf(",\"pretrain_classes_accuracy_after\":%.4f", pre_after.test_accuracy);
        }
        printf(",\"test_accuracy\":%.4f,\"test_loss\":%.4f,\"seconds\":%.3f,\"sha256_weights\":\"%s\"}\n",
               main_phase.test_accuracy, main_phase.test_loss, now_s() - t0, hex);
    } else {
        if (has_pre) {
            printf("pretrain  %u steps  test accuracy %.2f %%  (%u test images)\n",
                   (unsigned)pre.steps, 100.0 * pre.test_accuracy, (unsigned)pre.test_samples);
        }
        printf("%s %s %s%s: %u steps in %.1f s, train loss %.3f -> %.3f, updated %.1f %% of channels\n",
               o->model, r.fe ? "float32" : "int8", optimizer, o->stochastic ? "+stochastic" : "",
               (unsigned)main_phase.steps, main_phase.seconds, main_phase.loss_first,
               main_phase.loss_last, 100.0 * main_phase.updated_fraction);
        printf("test accuracy %.2f %% (%u images), loss %.4f\n", 100.0 * main_phase.test_accuracy,
               (unsigned)main_phase.test_samples, main_phase.test_loss);
        if (has_pre) {
            printf("pretrain classes after fine-tuning: %.2f %%\n", 100.0 * pre_after.test_accuracy);
        }
        printf("sha256 of the final weights: %s\n", hex);
    }
    tr_float_destroy(r.fe);
    free(arena);
    free(blob);
    tr_dataset_free(&tr);
    tr_dataset_free(&te);
    return 0;
}

/* Arena bytes planned and measured: one inference in a fresh engine, then
 * one training step (peaks count from the start of the arena: engine state,
 * weights, optimizer state, activations, error and scratch buffers). */
static int cmd_memory(const opts *o)
{
    tr_model_desc m;
    tr_model_info info;
    tr_shape in;
    uint32_t classes;
    size_t len = 0, infer_peak, train_peak;
    uint8_t *blob, *arena, *sample;
    tr_engine *e = NULL;
    tr_train_params p;
    tr_step_result r;
    tr_status st;
    shape_defaults(o, &in, &classes);
    blob = build_blob(o->model, in, classes, o->seed, &len, &m);
    if (blob == NULL) {
        return 1;
    }
    arena = malloc(m.train_bytes);
    sample = calloc(1, (size_t)in.h * in.w * in.c);
    st = (arena != NULL && sample != NULL) ? tr_engine_load(&e, blob, len, arena, m.train_bytes, &info)
                                           : TR_ERR_NOMEM;
    if (st == TR_OK) {
        for (size_t i = 0; i < (size_t)in.h * in.w * in.c; i++) {
            sample[i] = (uint8_t)(i * 37u);
        }
        st = tr_engine_infer(e, sample, 0, &r, NULL);
    }
    infer_peak = st == TR_OK ? tr_engine_arena_peak(e) : 0u;
    memset(&p, 0, sizeof p);
    p.lr_ppm = 10000;
    p.lambda_min_ppm = 1000000;
    p.lambda_max_ppm = 1000000;
    p.options = TR_TRAIN_QAS | TR_TRAIN_STOCHASTIC;
    if (st == TR_OK) {
        st = tr_engine_train(e, sample, 0, &p, &r);
    }
    train_peak = st == TR_OK ? tr_engine_arena_peak(e) : 0u;
    free(sample);
    free(arena);
    free(blob);
    if (st != TR_OK) {
        fprintf(stderr, "memory %s: %s\n", o->model, status_name(st));
        return 1;
    }
    if (o->json) {
        printf("{\"model\":\"%s\",\"input\":[%u,%u,%u],\"classes\":%u,\"weights_bytes\":%u,"
               "\"infer_planned_bytes\":%u,\"train_planned_bytes\":%u,\"infer_peak_bytes\":%zu,"
               "\"train_peak_bytes\":%zu,\"forward_macs\":%llu}\n",
               o->model, (unsigned)in.h, (unsigned)in.w, (unsigned)in.c, (unsigned)classes,
               (unsigned)info.weights_bytes, (unsigned)info.infer_bytes, (unsigned)info.train_bytes,
               infer_peak, train_peak, (unsigned long long)info.forward_macs);
    } else {
        printf("%s: weights %u B, inference %zu B (planned %u), training %zu B (planned %u)\n",
               o->model, (unsigned)info.weights_bytes, infer_peak, (unsigned)info.infer_bytes,
               train_peak, (unsigned)info.train_bytes);
    }
    return 0;
}

int main(int argc, char **argv)
{
    opts o;
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage();
        return argc < 2 ? 2 : 0;
    }
    if (parse_opts(argc, argv, &o) != 0) {
        usage();
        return 2;
    }
    if (strcmp(argv[1], "zoo") == 0) {
        return cmd_zoo(&o);
    }
    if (strcmp(argv[1], "build") == 0) {
        return cmd_build(&o);
    }
    if (strcmp(argv[1], "train") == 0) {
        return cmd_train(&o);
    }
    if (strcmp(argv[1], "memory") == 0) {
        return cmd_memory(&o);
    }
    if (strcmp(argv[1], "plan") == 0 && o.in != NULL) {
        size_t n;
        uint8_t *blob = read_file(o.in, &n);
        int rc = blob != NULL ? tr_trainer_cmd_plan(blob, n) : 1;
        free(blob);
        return rc;
    }
    usage();
    return 2;
}
