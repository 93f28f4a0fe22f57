/* The model blob writer of the host tools, on the protocol's CBOR subset
 * writer (cbor/tr_cbor.h): shortest integer heads, definite lengths, map keys
 * ascending (protocol/SPEC.md §2). */
#include "trainer_model.h"

#include <string.h>
#include "cbor/tr_cbor.h"
#include "crypto/tr_sha256.h"

/* One layer array: the kind, then its fields in FORMAT.md order. */
static void layer(tr_cbor_writer *w, const tr_layer *L)
{
    uint32_t f[8];
    uint32_t n = 0;
    f[n++] = L->kind;
    if (L->kind == TR_LAYER_CONV2D || L->kind == TR_LAYER_DENSE) {
        f[n++] = L->units;
    }
    if (L->kind == TR_LAYER_CONV2D || L->kind == TR_LAYER_DWCONV2D) {
        f[n++] = L->kh;
        f[n++] = L->kw;
        f[n++] = L->stride;
        f[n++] = L->pad;
    } else if (L->kind == TR_LAYER_MAXPOOL || L->kind == TR_LAYER_AVGPOOL) {
        f[n++] = L->kh;
        f[n++] = L->stride;
    }
    if (tr_layer_has_params(L)) {
        f[n++] = L->act;
        f[n++] = L->wq;
    }
    tr_cbor_write_array(w, n);
    for (uint32_t i = 0; i < n; i++) {
        tr_cbor_write_uint(w, f[i]);
    }
}

size_t tr_trainer_encode_model(const tr_model_desc *m, const uint8_t *weights, size_t wlen,
                               const char *name, uint32_t seed, uint8_t *buf, size_t cap)
{
    tr_cbor_writer w;
    if (tr_cbor_writer_init(&w, buf, cap) != TR_OK) {
        return 0;
    }
    /* every writer call is sticky on overflow: one check at the end */
    tr_cbor_write_map(&w, name != NULL ? 7u : 6u);
    tr_cbor_write_uint(&w, 1);
    tr_cbor_write_uint(&w, TR_MODEL_VERSION);
    tr_cbor_write_uint(&w, 2);
    tr_cbor_write_array(&w, 3);
    tr_cbor_write_uint(&w, m->input.h);
    tr_cbor_write_uint(&w, m->input.w);
    tr_cbor_write_uint(&w, m->input.c);
    tr_cbor_write_uint(&w, 3);
    tr_cbor_write_uint(&w, m->classes);
    tr_cbor_write_uint(&w, 4);
    tr_cbor_write_array(&w, m->n_layers);
    for (uint32_t i = 0; i < m->n_layers; i++) {
        layer(&w, &m->layers[i]);
    }
    tr_cbor_write_uint(&w, 5);
    tr_cbor_write_bytes(&w, weights, wlen);
    if (name != NULL) {
        tr_cbor_write_uint(&w, 6);
        tr_cbor_write_cstr(&w, name);
    }
    tr_cbor_write_uint(&w, 7);
    tr_cbor_write_uint(&w, seed);
    return w.status == TR_OK ? w.len : 0u;
}

void tr_trainer_sha256_hex(const uint8_t *data, size_t len, char out[65])
{
    static const char digits[] = "0123456789abcdef";
    uint8_t d[TR_SHA256_BYTES];
    tr_sha256(data, len, d);
    for (size_t i = 0; i < TR_SHA256_BYTES; i++) {
        out[2 * i] = digits[d[i] >> 4];
        out[2 * i + 1] = digits[d[i] & 15u];
    }
    out[64] = '\0';
}
