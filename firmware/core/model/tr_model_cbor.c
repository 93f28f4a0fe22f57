/* Parses the CBOR model blob (model/FORMAT.md) into a layer list. Reads only
 * the canonical subset the format uses: unsigned integers, byte and text
 * strings, definite arrays and maps. Every defect has its own status. */
#include "model/tr_model_cbor.h"

#include <string.h>

typedef struct {
    const uint8_t *p;
    const uint8_t *end;
} rd;

/* Reads an item head: major type and argument. */
static tr_status head(rd *r, uint8_t *major, uint32_t *arg)
{
    uint8_t ib, info;
    uint32_t n, v = 0;
    if (r->p >= r->end) {
        return TR_ERR_TRUNCATED;
    }
    ib = *r->p++;
    *major = (uint8_t)(ib >> 5);
    info = (uint8_t)(ib & 0x1Fu);
    if (info < 24u) {
        *arg = info;
        return TR_OK;
    }
    if (info == 24u) {
        n = 1;
    } else if (info == 25u) {
        n = 2;
    } else if (info == 26u) {
        n = 4;
    } else {
        return TR_ERR_FORMAT; /* 64-bit arguments, indefinite lengths, reserved */
    }
    if ((size_t)(r->end - r->p) < n) {
        return TR_ERR_TRUNCATED;
    }
    while (n-- > 0) {
        v = (v << 8) | *r->p++;
    }
    *arg = v;
    return TR_OK;
}

static tr_status expect(rd *r, uint8_t want, uint32_t *arg)
{
    uint8_t major;
    tr_status st = head(r, &major, arg);
    if (st != TR_OK) {
        return st;
    }
    return major == want ? TR_OK : TR_ERR_FORMAT;
}

static tr_status uint_item(rd *r, uint32_t *v)
{
    return expect(r, 0, v);
}

static tr_status bytes_item(rd *r, uint8_t major, const uint8_t **data, uint32_t *len)
{
    tr_status st = expect(r, major, len);
    if (st != TR_OK) {
        return st;
    }
    if ((size_t)(r->end - r->p) < *len) {
        return TR_ERR_TRUNCATED;
    }
    *data = r->p;
    r->p += *len;
    return TR_OK;
}

/* Skips one item of an unknown key (bounded nesting). */
static tr_status skip(rd *r, int depth)
{
    uint8_t major;
    uint32_t arg;
    tr_status st;
    if (depth > 8) {
        return TR_ERR_FORMAT;
    }
    st = head(r, &major, &arg);
    if (st != TR_OK) {
        return st;
    }
    switch (major) {
    case 0:
    case 1:
        return TR_OK;
    case 2:
    case 3:
        if ((size_t)(r->end - r->p) < arg) {
            return TR_ERR_TRUNCATED;
        }
        r->p += arg;
        return TR_OK;
    case 4:
    case 5: {
        uint32_t items = (major == 5u) ? arg * 2u : arg;
        if (major == 5u && arg > 0x7FFFFFFFu) {
            return TR_ERR_FORMAT;
        }
        for (uint32_t i = 0; i < items; i++) {
            st = skip(r, depth + 1);
            if (st != TR_OK) {
                return st;
            }
        }
        return TR_OK;
    }
    case 7:
        return (arg >= 20u && arg <= 22u) ? TR_OK : TR_ERR_FORMAT;
    default:
        return TR_ERR_FORMAT; /* tags */
    }
}

static tr_status u16_field(rd *r, uint16_t *out)
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

static tr_status u8_field(rd *r, uint8_t *out)
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
static tr_status parse_layer(rd *r, tr_layer *L)
{
    uint32_t n, kind;
    tr_status st = expect(r, 4, &n);
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
    rd r;
    uint32_t pairs;
    uint32_t seen = 0;
    tr_status st;
    if (blob == NULL || m == NULL || out == NULL) {
        return TR_ERR_ARG;
    }
    memset(m, 0, sizeof *m);
    memset(out, 0, sizeof *out);
    r.p = blob;
    r.end = blob + len;
    st = expect(&r, 5, &pairs);
    if (st != TR_OK) {
        return st;
    }
    for (uint32_t i = 0; i < pairs; i++) {
        uint32_t key, v;
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
            if ((st = expect(&r, 4, &v)) != TR_OK) {
                return st;
            }
            if (v != 3u) {
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
            if ((st = expect(&r, 4, &v)) != TR_OK) {
                return st;
            }
            if (v == 0u || v > TR_MAX_LAYERS) {
                return TR_ERR_FORMAT;
            }
            for (uint32_t k = 0; k < v; k++) {
                if ((st = parse_layer(&r, &m->layers[k])) != TR_OK) {
                    return st;
                }
            }
            m->n_layers = v;
            break;
        case 5:
            if ((st = bytes_item(&r, 2, &out->weights, &v)) != TR_OK) {
                return st;
            }
            out->weights_len = v;
            break;
        case 6:
            if ((st = bytes_item(&r, 3, &out->name, &v)) != TR_OK) {
                return st;
            }
            out->name_len = v;
            break;
        case 7:
            if ((st = uint_item(&r, &out->seed)) != TR_OK) {
                return st;
            }
            break;
        default:
            if ((st = skip(&r, 1)) != TR_OK) {
                return st;
            }
            break;
        }
    }
    if ((seen & 0x3Eu) != 0x3Eu) {
        return TR_ERR_FORMAT; /* keys 1..5 are required */
    }
    if (r.p != r.end) {
        return TR_ERR_FORMAT; /* trailing bytes */
    }
    return TR_OK;
}
