/* Canonical CBOR writer for the model blob: shortest integer heads, definite
 * lengths, map keys ascending (the subset protocol/SPEC.md §2 allows). */
#include "trainer_model.h"

#include <string.h>

typedef struct {
    uint8_t *p;
    size_t n, cap;
    int overflow;
} wr;

static void put(wr *w, const void *d, size_t len)
{
    if (w->n + len > w->cap) {
        w->overflow = 1;
        return;
    }
    memcpy(w->p + w->n, d, len);
    w->n += len;
}

static void head(wr *w, uint8_t major, uint32_t v)
{
    uint8_t b[5];
    size_t len;
    if (v < 24u) {
        b[0] = (uint8_t)((major << 5) | v);
        len = 1;
    } else if (v <= 0xFFu) {
        b[0] = (uint8_t)((major << 5) | 24u);
        b[1] = (uint8_t)v;
        len = 2;
    } else if (v <= 0xFFFFu) {
        b[0] = (uint8_t)((major << 5) | 25u);
        b[1] = (uint8_t)(v >> 8);
        b[2] = (uint8_t)v;
        len = 3;
    } else {
        b[0] = (uint8_t)((major << 5) | 26u);
        b[1] = (uint8_t)(v >> 24);
        b[2] = (uint8_t)(v >> 16);
        b[3] = (uint8_t)(v >> 8);
        b[4] = (uint8_t)v;
        len = 5;
    }
    put(w, b, len);
}

static void layer(wr *w, const tr_layer *L)
{
    switch (L->kind) {
    case TR_LAYER_CONV2D:
        head(w, 4, 8);
        head(w, 0, L->kind);
        head(w, 0, L->units);
        head(w, 0, L->kh);
        head(w, 0, L->kw);
        head(w, 0, L->stride);
        head(w, 0, L->pad);
        head(w, 0, L->act);
        head(w, 0, L->wq);
        break;
    case TR_LAYER_DWCONV2D:
        head(w, 4, 7);
        head(w, 0, L->kind);
        head(w, 0, L->kh);
        head(w, 0, L->kw);
        head(w, 0, L->stride);
        head(w, 0, L->pad);
        head(w, 0, L->act);
        head(w, 0, L->wq);
        break;
    case TR_LAYER_DENSE:
        head(w, 4, 4);
        head(w, 0, L->kind);
        head(w, 0, L->units);
        head(w, 0, L->act);
        head(w, 0, L->wq);
        break;
    case TR_LAYER_MAXPOOL:
    case TR_LAYER_AVGPOOL:
        head(w, 4, 3);
        head(w, 0, L->kind);
        head(w, 0, L->kh);
        head(w, 0, L->stride);
        break;
    default:
        head(w, 4, 1);
        head(w, 0, L->kind);
        break;
    }
}

size_t tr_trainer_encode_model(const tr_model_desc *m, const uint8_t *weights, size_t wlen,
                               const char *name, uint32_t seed, uint8_t *buf, size_t cap)
{
    wr w = { buf, 0, cap, 0 };
    size_t nlen = name != NULL ? strlen(name) : 0;
    head(&w, 5, name != NULL ? 7u : 6u);
    head(&w, 0, 1);
    head(&w, 0, TR_MODEL_VERSION);
    head(&w, 0, 2);
    head(&w, 4, 3);
    head(&w, 0, m->input.h);
    head(&w, 0, m->input.w);
    head(&w, 0, m->input.c);
    head(&w, 0, 3);
    head(&w, 0, m->classes);
    head(&w, 0, 4);
    head(&w, 4, m->n_layers);
    for (uint32_t i = 0; i < m->n_layers; i++) {
        layer(&w, &m->layers[i]);
    }
    head(&w, 0, 5);
    head(&w, 2, (uint32_t)wlen);
    put(&w, weights, wlen);
    if (name != NULL) {
        head(&w, 0, 6);
        head(&w, 3, (uint32_t)nlen);
        put(&w, name, nlen);
    }
    head(&w, 0, 7);
    head(&w, 0, seed);
    return w.overflow ? 0u : w.n;
}
