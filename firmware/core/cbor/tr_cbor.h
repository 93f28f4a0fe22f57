/* A small CBOR subset (protocol/SPEC.md §2): unsigned and negative integers,
 * byte and text strings (zero-copy views into the input), definite arrays and
 * maps, false/true/null. The reader rejects floats, tags, undefined, simple
 * values, indefinite lengths, nesting deeper than TR_CBOR_MAX_DEPTH and
 * lengths that run past the end; the writer emits the canonical (shortest)
 * form and reports overflow of the caller's buffer. No allocation.
 *
 * Reading a map body:
 *     tr_cbor_reader r; size_t n; uint64_t key;
 *     tr_cbor_reader_init(&r, buf, len);
 *     if (tr_cbor_read_map(&r, &n) != TR_OK) ...
 *     for (i = 0; i < n; i++) { tr_cbor_read_uint(&r, &key); ...value or tr_cbor_skip(&r)... }
 *
 * Writing: every writer call returns TR_ERR_NOMEM once the buffer is full and
 * the error is sticky (w->status), so a body can be written in one go and
 * checked once at the end. */
#ifndef TR_CBOR_H
#define TR_CBOR_H

#include <stddef.h>
#include <stdint.h>
#include "common/tr_status.h"

/* Containers nested deeper than this are rejected (SPEC §2). */
#define TR_CBOR_MAX_DEPTH 8

typedef enum {
    TR_CBOR_UINT = 0,   /* major 0 */
    TR_CBOR_NINT = 1,   /* major 1: value is -1 - n */
    TR_CBOR_BYTES = 2,
    TR_CBOR_TEXT = 3,
    TR_CBOR_ARRAY = 4,
    TR_CBOR_MAP = 5,
    TR_CBOR_BOOL = 6,   /* major 7, values 20/21 */
    TR_CBOR_NULL = 7,   /* major 7, value 22 */
    TR_CBOR_END = 8,    /* no bytes left */
    TR_CBOR_INVALID = 9 /* anything outside the subset (float, tag, ...) */
} tr_cbor_type;

typedef struct {
    const uint8_t *buf;
    size_t len;
    size_t pos;   /* offset of the next item */
} tr_cbor_reader;

typedef struct {
    uint8_t *buf;
    size_t cap;
    size_t len;        /* bytes written so far */
    tr_status status;  /* TR_OK, or the first error (sticky) */
} tr_cbor_writer;

/* ---- reader ---- */
tr_status tr_cbor_reader_init(tr_cbor_reader *r, const uint8_t *buf, size_t len);
/* Type of the next item without consuming it (TR_CBOR_END at the end). */
tr_status tr_cbor_peek_type(const tr_cbor_reader *r, tr_cbor_type *type);
/* Major 0 only. */
tr_status tr_cbor_read_uint(tr_cbor_reader *r, uint64_t *v);
/* Major 0 only, TR_ERR_OVERFLOW above 32 bits (device integers). */
tr_status tr_cbor_read_u32(tr_cbor_reader *r, uint32_t *v);
/* Major 0 or 1; TR_ERR_OVERFLOW when it does not fit an int64_t. */
tr_status tr_cbor_read_int(tr_cbor_reader *r, int64_t *v);
/* Major 1 only: the item's value is -1 - *n (covers -2^64 ... -1). */
tr_status tr_cbor_read_nint(tr_cbor_reader *r, uint64_t *n);
/* Byte string: *p points into the input, valid as long as the input is. */
tr_status tr_cbor_read_bytes(tr_cbor_reader *r, const uint8_t **p, size_t *n);
/* Text string (not NUL-terminated; UTF-8 is not checked). */
tr_status tr_cbor_read_text(tr_cbor_reader *r, const char **p, size_t *n);
/* Array / map header: *n items (a map has *n key/value pairs) follow. */
tr_status tr_cbor_read_array(tr_cbor_reader *r, size_t *n);
tr_status tr_cbor_read_map(tr_cbor_reader *r, size_t *n);
/* *v is 0 or 1. */
tr_status tr_cbor_read_bool(tr_cbor_reader *r, int *v);
tr_status tr_cbor_read_null(tr_cbor_reader *r);
/* Skips one whole item (containers included, depth-checked). */
tr_status tr_cbor_skip(tr_cbor_reader *r);
/* TR_OK when buf holds exactly one well-formed item of the subset. */
tr_status tr_cbor_check(const uint8_t *buf, size_t len);
/* tr_cbor_check plus the content rules of SPEC §2 that the host codec enforces:
 * text is valid UTF-8 (no overlong forms, surrogates or code points past
 * U+10FFFF) and every map key is an unsigned integer, none repeated within its
 * map (TR_ERR_FORMAT otherwise). Finding repeats costs O(keys^2) per map. */
tr_status tr_cbor_check_strict(const uint8_t *buf, size_t len);

/* ---- writer ---- */
tr_status tr_cbor_writer_init(tr_cbor_writer *w, uint8_t *buf, size_t cap);
tr_status tr_cbor_write_uint(tr_cbor_writer *w, uint64_t v);
tr_status tr_cbor_write_int(tr_cbor_writer *w, int64_t v);
/* The negative integer -1 - n (major 1; reaches -2^64, which int64_t cannot). */
tr_status tr_cbor_write_nint(tr_cbor_writer *w, uint64_t n);
tr_status tr_cbor_write_bytes(tr_cbor_writer *w, const uint8_t *p, size_t n);
tr_status tr_cbor_write_text(tr_cbor_writer *w, const char *p, size_t n);
/* NUL-terminated text. */
tr_status tr_cbor_write_cstr(tr_cbor_writer *w, const char *s);
tr_status tr_cbor_write_array(tr_cbor_writer *w, size_t n);
tr_status tr_cbor_write_map(tr_cbor_writer *w, size_t n);
tr_status tr_cbor_write_bool(tr_cbor_writer *w, int v);
tr_status tr_cbor_write_null(tr_cbor_writer *w);
/* Reserves n bytes for a byte string the caller fills in place at *p. */
tr_status tr_cbor_write_bytes_reserve(tr_cbor_writer *w, size_t n, uint8_t **p);

#endif
