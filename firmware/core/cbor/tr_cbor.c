/* CBOR subset reader and writer (see tr_cbor.h). */
#include "cbor/tr_cbor.h"

#include <string.h>

/* Decodes the head of the item at r->pos without consuming it. */
static tr_status head(const tr_cbor_reader *r, uint8_t *major, uint64_t *arg, size_t *hlen)
{
    size_t left, need, i;
    uint8_t ib, info;
    uint64_t v;

    if (r->pos >= r->len) {
        return TR_ERR_TRUNCATED;
    }
    left = r->len - r->pos;
    ib = r->buf[r->pos];
    *major = (uint8_t)(ib >> 5);
    info = (uint8_t)(ib & 0x1Fu);
    if (info < 24u) {
        *arg = info;
        *hlen = 1;
        return TR_OK;
    }
    if (info > 27u) {
        return TR_ERR_FORMAT;   /* reserved or indefinite length */
    }
    need = (size_t)1 << (info - 24u);
    if (left < need + 1u) {
        return TR_ERR_TRUNCATED;
    }
    v = 0;
    for (i = 0; i < need; i++) {
        v = (v << 8) | r->buf[r->pos + 1u + i];
    }
    *arg = v;
    *hlen = need + 1u;
    return TR_OK;
}

tr_status tr_cbor_reader_init(tr_cbor_reader *r, const uint8_t *buf, size_t len)
{
    if (r == NULL || (buf == NULL && len != 0)) {
        return TR_ERR_ARG;
    }
    r->buf = buf;
    r->len = len;
    r->pos = 0;
    return TR_OK;
}

tr_status tr_cbor_peek_type(const tr_cbor_reader *r, tr_cbor_type *type)
{
    uint8_t major;
    uint64_t arg;
    size_t hlen;
    tr_status s;

    if (r == NULL || type == NULL) {
        return TR_ERR_ARG;
    }
    if (r->pos >= r->len) {
        *type = TR_CBOR_END;
        return TR_OK;
    }
    s = head(r, &major, &arg, &hlen);
    if (s != TR_OK) {
        *type = TR_CBOR_INVALID;
        return TR_OK;
    }
    if (major <= 5u) {
        *type = (tr_cbor_type)major;
    } else if (major == 7u && hlen == 1u && (arg == 20u || arg == 21u)) {
        *type = TR_CBOR_BOOL;
    } else if (major == 7u && hlen == 1u && arg == 22u) {
        *type = TR_CBOR_NULL;
    } else {
        *type = TR_CBOR_INVALID;
    }
    return TR_OK;
}

/* Reads a head of the given major type and consumes it. */
static tr_status read_head(tr_cbor_reader *r, uint8_t want, uint64_t *arg)
{
    uint8_t major;
    size_t hlen;
    tr_status s;

    if (r == NULL || arg == NULL) {
        return TR_ERR_ARG;
    }
    s = head(r, &major, arg, &hlen);
    if (s != TR_OK) {
        return s;
    }
    if (major != want) {
        return TR_ERR_FORMAT;
    }
    r->pos += hlen;
    return TR_OK;
}

tr_status tr_cbor_read_uint(tr_cbor_reader *r, uint64_t *v)
{
    if (v == NULL) {
        return TR_ERR_ARG;
    }
    return read_head(r, 0, v);
}

tr_status tr_cbor_read_u32(tr_cbor_reader *r, uint32_t *v)
{
    uint64_t x;
    size_t save;
    tr_status s;

    if (r == NULL || v == NULL) {
        return TR_ERR_ARG;
    }
    save = r->pos;
    s = read_head(r, 0, &x);
    if (s != TR_OK) {
        return s;
    }
    if (x > 0xFFFFFFFFu) {
        r->pos = save;
        return TR_ERR_OVERFLOW;
    }
    *v = (uint32_t)x;
    return TR_OK;
}

tr_status tr_cbor_read_int(tr_cbor_reader *r, int64_t *v)
{
    uint8_t major;
    uint64_t arg;
    size_t hlen;
    tr_status s;

    if (r == NULL || v == NULL) {
        return TR_ERR_ARG;
    }
    s = head(r, &major, &arg, &hlen);
    if (s != TR_OK) {
        return s;
    }
    if (major > 1u) {
        return TR_ERR_FORMAT;
    }
    if (arg > (uint64_t)INT64_MAX) {
        return TR_ERR_OVERFLOW;
    }
    *v = major == 0u ? (int64_t)arg : -1 - (int64_t)arg;
    r->pos += hlen;
    return TR_OK;
}

tr_status tr_cbor_read_nint(tr_cbor_reader *r, uint64_t *n)
{
    if (n == NULL) {
        return TR_ERR_ARG;
    }
    return read_head(r, 1, n);
}

static tr_status read_string(tr_cbor_reader *r, uint8_t want, const uint8_t **p, size_t *n)
{
    uint8_t major;
    uint64_t arg;
    size_t hlen;
    tr_status s;

    if (r == NULL || p == NULL || n == NULL) {
        return TR_ERR_ARG;
    }
    s = head(r, &major, &arg, &hlen);
    if (s != TR_OK) {
        return s;
    }
    if (major != want) {
        return TR_ERR_FORMAT;
    }
    if (arg > (uint64_t)(r->len - r->pos - hlen)) {
        return TR_ERR_TRUNCATED;
    }
    *p = r->buf + r->pos + hlen;
    *n = (size_t)arg;
    r->pos += hlen + (size_t)arg;
    return TR_OK;
}

tr_status tr_cbor_read_bytes(tr_cbor_reader *r, const uint8_t **p, size_t *n)
{
    return read_string(r, 2, p, n);
}

tr_status tr_cbor_read_text(tr_cbor_reader *r, const char **p, size_t *n)
{
    const uint8_t *q = NULL;
    tr_status s;

    if (p == NULL) {
        return TR_ERR_ARG;
    }
    s = read_string(r, 3, &q, n);
    if (s == TR_OK) {
        *p = (const char *)q;
    }
    return s;
}

static tr_status read_container(tr_cbor_reader *r, uint8_t want, size_t *n)
{
    uint64_t arg;
    size_t save;
    size_t left;
    tr_status s;

    if (r == NULL || n == NULL) {
        return TR_ERR_ARG;
    }
    save = r->pos;
    s = read_head(r, want, &arg);
    if (s != TR_OK) {
        return s;
    }
    /* Every item takes at least one byte: a count past the end is truncated. */
    left = r->len - r->pos;
    if (arg > (uint64_t)left || (want == 5u && arg > (uint64_t)(left / 2u))) {
        r->pos = save;
        return TR_ERR_TRUNCATED;
    }
    *n = (size_t)arg;
    return TR_OK;
}

tr_status tr_cbor_read_array(tr_cbor_reader *r, size_t *n)
{
    return read_container(r, 4, n);
}

tr_status tr_cbor_read_map(tr_cbor_reader *r, size_t *n)
{
    return read_container(r, 5, n);
}

static tr_status read_simple(tr_cbor_reader *r, uint64_t *arg)
{
    uint8_t major;
    size_t hlen;
    tr_status s;

    if (r == NULL) {
        return TR_ERR_ARG;
    }
    s = head(r, &major, arg, &hlen);
    if (s != TR_OK) {
        return s;
    }
    if (major != 7u || hlen != 1u) {
        return TR_ERR_FORMAT;
    }
    return TR_OK;
}

tr_status tr_cbor_read_bool(tr_cbor_reader *r, int *v)
{
    uint64_t arg;
    tr_status s;

    if (v == NULL) {
        return TR_ERR_ARG;
    }
    s = read_simple(r, &arg);
    if (s != TR_OK) {
        return s;
    }
    if (arg != 20u && arg != 21u) {
        return TR_ERR_FORMAT;
    }
    *v = arg == 21u;
    r->pos += 1;
    return TR_OK;
}

tr_status tr_cbor_read_null(tr_cbor_reader *r)
{
    uint64_t arg;
    tr_status s = read_simple(r, &arg);

    if (s != TR_OK) {
        return s;
    }
    if (arg != 22u) {
        return TR_ERR_FORMAT;
    }
    r->pos += 1;
    return TR_OK;
}

/* Iterative skip: a stack of remaining-item counts, one per open container. */
tr_status tr_cbor_skip(tr_cbor_reader *r)
{
    uint64_t remaining[TR_CBOR_MAX_DEPTH + 1];
    size_t depth = 0;
    size_t start;
    tr_status s;

    if (r == NULL) {
        return TR_ERR_ARG;
    }
    start = r->pos;
    remaining[0] = 1;
    while (1) {
        uint8_t major;
        uint64_t arg;
        size_t hlen;

        if (remaining[depth] == 0u) {
            if (depth == 0u) {
                return TR_OK;
            }
            depth--;
            continue;
        }
        remaining[depth]--;
        s = head(r, &major, &arg, &hlen);
        if (s != TR_OK) {
            r->pos = start;
            return s;
        }
        switch (major) {
        case 0: case 1:
            r->pos += hlen;
            break;
        case 2: case 3:
            if (arg > (uint64_t)(r->len - r->pos - hlen)) {
                r->pos = start;
                return TR_ERR_TRUNCATED;
            }
            r->pos += hlen + (size_t)arg;
            break;
        case 4: case 5:
            if (depth >= TR_CBOR_MAX_DEPTH) {
                r->pos = start;
                return TR_ERR_FORMAT;
            }
            r->pos += hlen;
            if (arg > (uint64_t)(r->len - r->pos) ||
                (major == 5u && arg > (uint64_t)((r->len - r->pos) / 2u))) {
                r->pos = start;
                return TR_ERR_TRUNCATED;
            }
            depth++;
            remaining[depth] = major == 5u ? arg * 2u : arg;
            break;
        case 7:
            if (hlen != 1u || arg < 20u || arg > 22u) {
                r->pos = start;
                return TR_ERR_FORMAT;
            }
            r->pos += 1;
            break;
        default:   /* 6: tags */
            r->pos = start;
            return TR_ERR_FORMAT;
        }
    }
}

tr_status tr_cbor_check(const uint8_t *buf, size_t len)
{
    tr_cbor_reader r;
    tr_status s = tr_cbor_reader_init(&r, buf, len);

    if (s != TR_OK) {
        return s;
    }
    s = tr_cbor_skip(&r);
    if (s != TR_OK) {
        return s;
    }
    return r.pos == len ? TR_OK : TR_ERR_FORMAT;
}

/* Length of the valid UTF-8 sequence at p (at most n bytes), 0 when invalid. */
static size_t utf8_seq(const uint8_t *p, size_t n)
{
    uint8_t b = p[0];
    size_t len, i;
    uint8_t lo = 0x80u, hi = 0xBFu;   /* range of the second byte */

    if (b < 0x80u) {
        return 1;
    }
    if (b >= 0xC2u && b <= 0xDFu) {
        len = 2;
    } else if (b >= 0xE0u && b <= 0xEFu) {
        len = 3;
        lo = b == 0xE0u ? 0xA0u : 0x80u;   /* no overlong forms */
        hi = b == 0xEDu ? 0x9Fu : 0xBFu;   /* no surrogates */
    } else if (b >= 0xF0u && b <= 0xF4u) {
        len = 4;
        lo = b == 0xF0u ? 0x90u : 0x80u;
        hi = b == 0xF4u ? 0x8Fu : 0xBFu;   /* nothing past U+10FFFF */
    } else {
        return 0;
    }
    if (n < len || p[1] < lo || p[1] > hi) {
        return 0;
    }
    for (i = 2; i < len; i++) {
        if (p[i] < 0x80u || p[i] > 0xBFu) {
            return 0;
        }
    }
    return len;
}

static int utf8_valid(const uint8_t *p, size_t n)
{
    size_t i = 0;

    while (i < n) {
        size_t l = utf8_seq(p + i, n - i);
        if (l == 0u) {
            return 0;
        }
        i += l;
    }
    return 1;
}

/* Walks one well-formed item (tr_cbor_check passed) applying the content rules. */
static tr_status check_content(tr_cbor_reader *r, int depth)
{
    tr_cbor_type t;
    const uint8_t *p;
    size_t n, i, j;
    uint64_t key, other;
    tr_status s;

    if (depth > TR_CBOR_MAX_DEPTH) {
        return TR_ERR_FORMAT;
    }
    tr_cbor_peek_type(r, &t);
    switch (t) {
    case TR_CBOR_TEXT:
        s = read_string(r, 3, &p, &n);
        if (s != TR_OK) {
            return s;
        }
        return utf8_valid(p, n) ? TR_OK : TR_ERR_FORMAT;
    case TR_CBOR_ARRAY:
        s = tr_cbor_read_array(r, &n);
        for (i = 0; s == TR_OK && i < n; i++) {
            s = check_content(r, depth + 1);
        }
        return s;
    case TR_CBOR_MAP: {
        size_t first;

        s = tr_cbor_read_map(r, &n);
        first = r->pos;
        for (i = 0; s == TR_OK && i < n; i++) {
            s = tr_cbor_read_uint(r, &key);   /* TR_ERR_FORMAT for any other key type */
            if (s == TR_OK) {
                s = check_content(r, depth + 1);
            }
            if (s == TR_OK && i > 0u) {
                /* compare with the keys before it: re-read them from the map's start */
                tr_cbor_reader prev = *r;
                prev.pos = first;
                for (j = 0; j < i; j++) {
                    tr_cbor_read_uint(&prev, &other);
                    tr_cbor_skip(&prev);
                    if (other == key) {
                        return TR_ERR_FORMAT;
                    }
                }
            }
        }
        return s;
    }
    default:
        return tr_cbor_skip(r);
    }
}

tr_status tr_cbor_check_strict(const uint8_t *buf, size_t len)
{
    tr_cbor_reader r;
    tr_status s = tr_cbor_check(buf, len);

    if (s != TR_OK) {
        return s;
    }
    tr_cbor_reader_init(&r, buf, len);
    return check_content(&r, 0);
}

/* ---- writer ---- */

tr_status tr_cbor_writer_init(tr_cbor_writer *w, uint8_t *buf, size_t cap)
{
    if (w == NULL || (buf == NULL && cap != 0)) {
        return TR_ERR_ARG;
    }
    w->buf = buf;
    w->cap = cap;
    w->len = 0;
    w->status = TR_OK;
    return TR_OK;
}

static tr_status put(tr_cbor_writer *w, const uint8_t *p, size_t n)
{
    if (w->status != TR_OK) {
        return w->status;
    }
    if (n > w->cap - w->len) {
        w->status = TR_ERR_NOMEM;
        return w->status;
    }
    if (n != 0u) {
        memcpy(w->buf + w->len, p, n);
    }
    w->len += n;
    return TR_OK;
}

static tr_status put_head(tr_cbor_writer *w, uint8_t major, uint64_t v)
{
    uint8_t h[9];
    size_t n, i;

    if (w == NULL) {
        return TR_ERR_ARG;
    }
    if (v < 24u) {
        h[0] = (uint8_t)((major << 5) | (uint8_t)v);
        return put(w, h, 1);
    }
    if (v <= 0xFFu) {
        h[0] = (uint8_t)((major << 5) | 24u);
        n = 1;
    } else if (v <= 0xFFFFu) {
        h[0] = (uint8_t)((major << 5) | 25u);
        n = 2;
    } else if (v <= 0xFFFFFFFFu) {
        h[0] = (uint8_t)((major << 5) | 26u);
        n = 4;
    } else {
        h[0] = (uint8_t)((major << 5) | 27u);
        n = 8;
    }
    for (i = 0; i < n; i++) {
        h[1u + i] = (uint8_t)(v >> (8u * (n - 1u - i)));
    }
    return put(w, h, n + 1u);
}

tr_status tr_cbor_write_uint(tr_cbor_writer *w, uint64_t v)
{
    return put_head(w, 0, v);
}

tr_status tr_cbor_write_int(tr_cbor_writer *w, int64_t v)
{
    if (v >= 0) {
        return put_head(w, 0, (uint64_t)v);
    }
    return put_head(w, 1, (uint64_t)(-1 - v));
}

tr_status tr_cbor_write_nint(tr_cbor_writer *w, uint64_t n)
{
    return put_head(w, 1, n);
}

tr_status tr_cbor_write_bytes(tr_cbor_writer *w, const uint8_t *p, size_t n)
{
    tr_status s;

    if (p == NULL && n != 0u) {
        return TR_ERR_ARG;
    }
    s = put_head(w, 2, n);
    return s != TR_OK ? s : put(w, p, n);
}

tr_status tr_cbor_write_text(tr_cbor_writer *w, const char *p, size_t n)
{
    tr_status s;

    if (p == NULL && n != 0u) {
        return TR_ERR_ARG;
    }
    s = put_head(w, 3, n);
    return s != TR_OK ? s : put(w, (const uint8_t *)p, n);
}

tr_status tr_cbor_write_cstr(tr_cbor_writer *w, const char *s)
{
    if (s == NULL) {
        return TR_ERR_ARG;
    }
    return tr_cbor_write_text(w, s, strlen(s));
}

tr_status tr_cbor_write_array(tr_cbor_writer *w, size_t n)
{
    return put_head(w, 4, n);
}

tr_status tr_cbor_write_map(tr_cbor_writer *w, size_t n)
{
    return put_head(w, 5, n);
}

tr_status tr_cbor_write_bool(tr_cbor_writer *w, int v)
{
    uint8_t b = v ? 0xF5u : 0xF4u;

    if (w == NULL) {
        return TR_ERR_ARG;
    }
    return put(w, &b, 1);
}

tr_status tr_cbor_write_null(tr_cbor_writer *w)
{
    uint8_t b = 0xF6u;

    if (w == NULL) {
        return TR_ERR_ARG;
    }
    return put(w, &b, 1);
}

tr_status tr_cbor_write_bytes_reserve(tr_cbor_writer *w, size_t n, uint8_t **p)
{
    tr_status s;

    if (p == NULL) {
        return TR_ERR_ARG;
    }
    s = put_head(w, 2, n);
    if (s != TR_OK) {
        return s;
    }
    if (n > w->cap - w->len) {
        w->status = TR_ERR_NOMEM;
        return w->status;
    }
    *p = w->buf + w->len;
    w->len += n;
    return TR_OK;
}
