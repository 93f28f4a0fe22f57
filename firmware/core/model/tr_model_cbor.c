/* Parses the CBOR model blob (model/FORMAT.md) into a layer list with the
 * protocol's CBOR subset reader (cbor/tr_cbor.h): a model is read by the same
 * code that reads every other body on the wire. Every defect has its own status. */
#include "model/tr_model_cbor.h"

#include <string.h>
#include "cbor/tr_cbor.h"

/* A 32-bit field: an integer past 32 bits is a format defect, not an overflow. */
static tr_status uint_item(tr_cbor_reader *r, uint32_t *v)
{
    tr_status st = tr_cbor_read_u32(r, v);
    return st == TR_ERR_OVERFLOW ? TR_ERR_FORMAT : st;
}

/* Lengths past 32 bits exist only on 64-bit hosts (a blob over 4 GiB). */
static int fits_u32(size_t n)
{
#if SIZE_MAX > 0xFFFFFFFFu
    return n <= 0xFFFFFFFFu;
#else
    (void)n;
    return 1;
#endif
}

/* A byte or text string whose length fits the 32-bit fields of tr_model_blob. */
static tr_status string_item(tr_cbor_reader *r, int text, const uint8_t **data, uint32_t *len)
{
    size_t n;
    tr_status st;
    if (text) {
        const char *p;
        st = tr_cbor_read_text(r, &p, &n);
        *data = (const uint8_t *)p;
    } else {
        st = tr_cbor_read_bytes(r, data, &n);
    }
    if (st != TR_OK) {
        return st;
    }
    if (!fits_u32(n)) {
        return TR_ERR_FORMAT;
    }
    *len = (uint32_t)n;
    return TR_OK;
}

static tr_status u16_field(tr_cbor_reader *r, uint16_t *out)
{
    uint32_t v;
    tr_status st = uint_item(r, &v);
    if (st != TR_OK) {
        return st;
    }
    if (v > 65535u) {
        return TR_ERR_SHAPE;
    }
    *out = (uint16_t)v;
    return TR_OK;
}

static tr_status u8_field(tr_cbor_reader *r, uint8_t *out)
{
    uint32_t v;
    tr_status st = uint_item(r, &v);
    if (st != TR_OK) {
        return st;
    }
    if (v > 255u) {
        return TR_ERR_FORMAT;
    }
    *out = (uint8_t)v;
    return TR_OK;
}

/* Fields after the kind, per layer kind (FORMAT.md). */
static tr_status parse_layer(tr_cbor_reader *r, tr_layer *L)
{
    size_t n;
    uint32_t kind;
    tr_status st = tr_cbor_read_array(r, &n);
    if (st != TR_OK) {
        return st;
    }
    if (n == 0) {
        return TR_ERR_FORMAT;
    }
    st = uint_item(r, &kind);
    if (st != TR_OK) {
        return st;
    }
    memset(L, 0, sizeof *L);
    switch (kind) {
    case TR_LAYER_CONV2D:
        if (n != 8u) {
            return TR_ERR_FORMAT;
        }
        if ((st = u16_field(r, &L->units)) != TR_OK || (st = u16_field(r, &L->kh)) != TR_OK ||
            (st = u16_field(r, &L->kw)) != TR_OK || (st = u16_field(r, &L->stride)) != TR_OK ||
            (st = u16_field(r, &L->pad)) != TR_OK || (st = u8_field(r, &L->act)) != TR_OK ||
            (st = u8_field(r, &L->wq)) != TR_OK) {
            return st;
        }
        break;
    case TR_LAYER_DWCONV2D:
        if (n != 7u) {
            return TR_ERR_FORMAT;
        }
        if ((st = u16_field(r, &L->kh)) != TR_OK || (st = u16_field(r, &L->kw)) != TR_OK ||
            (st = u16_field(r, &L->stride)) != TR_OK || (st = u16_field(r, &L->pad)) != TR_OK ||
            (st = u8_field(r, &L->act)) != TR_OK || (st = u8_field(r, &L->wq)) != TR_OK) {
            return st;
        }
        break;
    case TR_LAYER_DENSE:
        if (n != 4u) {
            return TR_ERR_FORMAT;
        }
        if ((st = u16_field(r, &L->units)) != TR_OK || (st = u8_field(r, &L->act)) != TR_OK ||
            (st = u8_field(r, &L->wq)) != TR_OK) {
            return st;
        }
        break;
    case TR_LAYER_MAXPOOL:
    case TR_LAYER_AVGPOOL:
        if (n != 3u) {
            return TR_ERR_FORMAT;
        }
        if ((st = u16_field(r, &L->kh)) != TR_OK || (st = u16_field(r, &L->stride)) != TR_OK) {
            return st;
        }
        break;
    case TR_LAYER_RELU:
    case TR_LAYER_GAP:
    case TR_LAYER_FLATTEN:
    case TR_LAYER_SOFTMAX:
        if (n != 1u) {
            return TR_ERR_FORMAT;
        }
        break;
    default:
        return TR_ERR_UNKNOWN_LAYER;
    }
    L->kind = (uint8_t)kind;
    return TR_OK;
}

tr_status tr_model_parse(const uint8_t *blob, size_t len, tr_model_desc *m, tr_model_blob *out)
{
    tr_cbor_reader r;
    size_t pairs;
    uint32_t seen = 0;
    tr_status st;
    if (blob == NULL || m == NULL || out == NULL) {
        return TR_ERR_ARG;
    }
    memset(m, 0, sizeof *m);
    memset(out, 0, sizeof *out);
    if ((st = tr_cbor_reader_init(&r, blob, len)) != TR_OK ||
        (st = tr_cbor_read_map(&r, &pairs)) != TR_OK) {
        return st;
    }
    for (size_t i = 0; i < pairs; i++) {
        uint32_t key, v;
        size_t items;
        st = uint_item(&r, &key);
        if (st != TR_OK) {
            return st;
        }
        if (key >= 1u && key <= 7u) {
            if (seen & (1u << key)) {
                return TR_ERR_FORMAT; /* duplicate key */
            }
            seen |= 1u << key;
        }
        switch (key) {
        case 1:
            if ((st = uint_item(&r, &v)) != TR_OK) {
                return st;
            }
            if (v != TR_MODEL_VERSION) {
                return TR_ERR_UNSUPPORTED;
            }
            break;
        case 2:
            if ((st = tr_cbor_read_array(&r, &items)) != TR_OK) {
                return st;
            }
            if (items != 3u) {
                return TR_ERR_FORMAT;
            }
            if ((st = uint_item(&r, &m->input.h)) != TR_OK ||
                (st = uint_item(&r, &m->input.w)) != TR_OK ||
                (st = uint_item(&r, &m->input.c)) != TR_OK) {
                return st;
            }
            break;
        case 3:
            if ((st = uint_item(&r, &m->classes)) != TR_OK) {
                return st;
            }
            break;
        case 4:
            if ((st = tr_cbor_read_array(&r, &items)) != TR_OK) {
                return st;
            }
            if (items == 0u || items > TR_MAX_LAYERS) {
                return TR_ERR_FORMAT;
            }
            for (size_t k = 0; k < items; k++) {
                if ((st = parse_layer(&r, &m->layers[k])) != TR_OK) {
                    return st;
                }
            }
            m->n_layers = (uint32_t)items;
            break;
        case 5:
            if ((st = string_item(&r, 0, &out->weights, &out->weights_len)) != TR_OK) {
                return st;
            }
            break;
        case 6:
            if ((st = string_item(&r, 1, &out->name, &out->name_len)) != TR_OK) {
                return st;
            }
            break;
        case 7:
            if ((st = uint_item(&r, &out->seed)) != TR_OK) {
                return st;
            }
            break;
        default:
            if ((st = tr_cbor_skip(&r)) != TR_OK) {
                return st;
            }
            break;
        }
    }
    if ((seen & 0x3Eu) != 0x3Eu) {
        return TR_ERR_FORMAT; /* keys 1..5 are required */
    }
    if (r.pos != len) {
        return TR_ERR_FORMAT; /* trailing bytes */
    }
    return TR_OK;
}
