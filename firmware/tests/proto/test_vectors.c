/* The shared vectors protocol/vectors/NAME.vec (format: protocol/vectors/README.md):
 * each block's wire hex is decoded and its header fields and body checked,
 * re-encoded and compared byte for byte, and its body rendered in CBOR
 * diagnostic notation and compared with `diag:`. Usage: test_vectors DIR */
#include <dirent.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cbor/tr_cbor.h"
#include "proto/tr_frame.h"
#include "proto_test.h"

#define MAX_BLOCK_KEYS 24
#define MAX_LINE 140000

typedef struct {
    char key[32];
    char *val;
} kv;

static kv g_kv[MAX_BLOCK_KEYS];
static int g_nkv;
static int g_vectors;

static const char *get(const char *key)
{
    int i;

    for (i = 0; i < g_nkv; i++) {
        if (strcmp(g_kv[i].key, key) == 0) {
            return g_kv[i].val;
        }
    }
    return NULL;
}

static size_t unhex(const char *s, uint8_t *out, size_t cap, int *ok)
{
    size_t n = 0;

    *ok = 1;
    while (*s != '\0') {
        unsigned v;

        if (*s == ' ' || *s == '\t') {
            s++;
            continue;
        }
        if (s[1] == '\0' || sscanf(s, "%2x", &v) != 1 || n >= cap) {
            *ok = 0;
            return n;
        }
        out[n++] = (uint8_t)v;
        s += 2;
    }
    return n;
}

/* CBOR diagnostic notation (RFC 8949 §8) of one item, appended to out. */
static int diag_item(tr_cbor_reader *r, char *out, size_t cap, size_t *len, int depth);

static int put(char *out, size_t cap, size_t *len, const char *s)
{
    size_t n = strlen(s);

    if (*len + n + 1u > cap) {
        return -1;
    }
    memcpy(out + *len, s, n + 1u);
    *len += n;
    return 0;
}

static int diag_item(tr_cbor_reader *r, char *out, size_t cap, size_t *len, int depth)
{
    tr_cbor_type t;
    char tmp[32];
    size_t n, i;
    const uint8_t *p;
    const char *c;
    uint64_t u;
    int64_t s;
    int b;

    if (depth > TR_CBOR_MAX_DEPTH || tr_cbor_peek_type(r, &t) != TR_OK) {
        return -1;
    }
    switch (t) {
    case TR_CBOR_UINT:
        if (tr_cbor_read_uint(r, &u) != TR_OK) return -1;
        snprintf(tmp, sizeof tmp, "%llu", (unsigned long long)u);
        return put(out, cap, len, tmp);
    case TR_CBOR_NINT:
        if (tr_cbor_read_int(r, &s) != TR_OK) return -1;
        snprintf(tmp, sizeof tmp, "%lld", (long long)s);
        return put(out, cap, len, tmp);
    case TR_CBOR_BYTES:
        if (tr_cbor_read_bytes(r, &p, &n) != TR_OK || put(out, cap, len, "h'") != 0) return -1;
        for (i = 0; i < n; i++) {
            snprintf(tmp, sizeof tmp, "%02x", p[i]);
            if (put(out, cap, len, tmp) != 0) return -1;
        }
        return put(out, cap, len, "'");
    case TR_CBOR_TEXT:
        if (tr_cbor_read_text(r, &c, &n) != TR_OK || put(out, cap, len, "\"") != 0) return -1;
        for (i = 0; i < n; i++) {
            if (c[i] == '"' || c[i] == '\\') {
                tmp[0] = '\\';
                tmp[1] = c[i];
                tmp[2] = '\0';
            } else {
                tmp[0] = c[i];
                tmp[1] = '\0';
            }
            if (put(out, cap, len, tmp) != 0) return -1;
        }
        return put(out, cap, len, "\"");
    case TR_CBOR_ARRAY:
    case TR_CBOR_MAP:
        if ((t == TR_CBOR_ARRAY ? tr_cbor_read_array(r, &n) : tr_cbor_read_map(r, &n)) != TR_OK ||
            put(out, cap, len, t == TR_CBOR_ARRAY ? "[" : "{") != 0) {
            return -1;
        }
        for (i = 0; i < n; i++) {
            if ((i > 0 && put(out, cap, len, ", ") != 0) || diag_item(r, out, cap, len, depth + 1) != 0) {
                return -1;
            }
            if (t == TR_CBOR_MAP &&
                (put(out, cap, len, ": ") != 0 || diag_item(r, out, cap, len, depth + 1) != 0)) {
                return -1;
            }
        }
        return put(out, cap, len, t == TR_CBOR_ARRAY ? "]" : "}");
    case TR_CBOR_BOOL:
        if (tr_cbor_read_bool(r, &b) != TR_OK) return -1;
        return put(out, cap, len, b ? "true" : "false");
    case TR_CBOR_NULL:
        if (tr_cbor_read_null(r) != TR_OK) return -1;
        return put(out, cap, len, "null");
    default:
        return -1;
    }
}

static int is_bad_vector(void)
{
    const char *v = get("valid");
    const char *e = get("expect");

    return (v != NULL && strcmp(v, "false") == 0) || (e != NULL && strstr(e, "bad") != NULL) ||
           (e != NULL && strstr(e, "drop") != NULL) || (e != NULL && strstr(e, "nak") != NULL);
}

static unsigned long num(const char *s)
{
    return strtoul(s, NULL, 0);
}

static void check_block(const char *file)
{
    static uint8_t wire[70000], raw[70000], again[70000];
    static char dg[200000];
    const char *w = get("wire"), *name = get("name"), *v;
    tr_frame_rx rx;
    tr_frame f;
    size_t n, used, len = 0, wl;
    tr_frame_event ev = TR_FRAME_NONE;
    int ok;
    char what[256];

    if (w == NULL) {
        return;
    }
    g_vectors++;
    snprintf(what, sizeof what, "%s: %s", file, name != NULL ? name : "(unnamed)");
    n = unhex(w, wire, sizeof wire, &ok);
    CHECK(ok, what);
    tr_frame_rx_init(&rx, raw, sizeof raw);
    tr_frame_feed(&rx, wire, n, &used, &ev);
    if (is_bad_vector()) {
        CHECK(ev != TR_FRAME_OK || tr_frame_parse(rx.buf, rx.len, &f) != TR_OK ||
                  (v = get("error")) != NULL, what);
        return;
    }
    CHECK(ev == TR_FRAME_OK && used == n, what);
    if (ev != TR_FRAME_OK || tr_frame_parse(rx.buf, rx.len, &f) != TR_OK) {
        printf("  %s does not decode\n", what);
        return;
    }
    if ((v = get("type")) != NULL && strspn(v, "0123456789xXabcdefABCDEF") == strlen(v)) {
        CHECK(f.type == num(v), what);
    }
    if ((v = get("seq")) != NULL) {
        CHECK(f.seq == num(v), what);
    }
    if ((v = get("flags")) != NULL && strspn(v, "0123456789xXabcdefABCDEF") == strlen(v)) {
        CHECK(f.flags == num(v), what);
    }
    if ((v = get("ver")) != NULL) {
        CHECK(f.ver == num(v), what);
    }
    if ((v = get("body")) != NULL) {
        static uint8_t body[70000];
        size_t bn = unhex(v, body, sizeof body, &ok);

        CHECK(ok && bn == f.body_len && memcmp(body, f.body, bn) == 0, what);
    }
    /* Re-encode: the same wire bytes. */
    CHECK(tr_frame_encode(&f, again, sizeof again, &wl) == TR_OK && wl == n && memcmp(again, wire, n) == 0,
          what);
    if ((v = get("diag")) != NULL) {
        tr_cbor_reader r;

        if (f.body_len == 0u) {
            strcpy(dg, "{}");
        } else {
            tr_cbor_reader_init(&r, f.body, f.body_len);
            len = 0;
            dg[0] = '\0';
            CHECK(diag_item(&r, dg, sizeof dg, &len, 0) == 0 && r.pos == f.body_len, what);
        }
        if (strcmp(dg, v) != 0) {
            printf("  %s diag\n    want %s\n    got  %s\n", what, v, dg);
        }
        CHECK(strcmp(dg, v) == 0, what);
    }
}

static void run_file(const char *dir, const char *file)
{
    char path[1024];
    static char line[MAX_LINE];
    FILE *fp;

    snprintf(path, sizeof path, "%s/%s", dir, file);
    fp = fopen(path, "r");
    CHECK(fp != NULL, path);
    if (fp == NULL) {
        return;
    }
    g_nkv = 0;
    while (1) {
        char *got = fgets(line, sizeof line, fp);
        size_t l;
        char *colon;

        if (got != NULL) {
            l = strlen(line);
            while (l > 0 && (line[l - 1] == '\n' || line[l - 1] == '\r')) {
                line[--l] = '\0';
            }
        }
        if (got == NULL || line[0] == '\0') {
            int i;

            check_block(file);
            for (i = 0; i < g_nkv; i++) {
                free(g_kv[i].val);
            }
            g_nkv = 0;
            if (got == NULL) {
                break;
            }
            continue;
        }
        if (line[0] == '#') {
            continue;
        }
        colon = strchr(line, ':');
        if (colon == NULL || g_nkv >= MAX_BLOCK_KEYS || (size_t)(colon - line) >= sizeof g_kv[0].key) {
            continue;
        }
        memcpy(g_kv[g_nkv].key, line, (size_t)(colon - line));
        g_kv[g_nkv].key[colon - line] = '\0';
        colon++;
        while (*colon == ' ') {
            colon++;
        }
        g_kv[g_nkv].val = malloc(strlen(colon) + 1u);
        strcpy(g_kv[g_nkv].val, colon);
        g_nkv++;
    }
    fclose(fp);
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : "../protocol/vectors";
    DIR *d = opendir(dir);
    struct dirent *e;
    int files = 0;

    if (d != NULL) {
        while ((e = readdir(d)) != NULL) {
            size_t l = strlen(e->d_name);
            if (l > 4 && strcmp(e->d_name + l - 4, ".vec") == 0) {
                run_file(dir, e->d_name);
                files++;
            }
        }
        closedir(d);
    }
    printf("test_vectors: %d files, %d vectors\n", files, g_vectors);
    TEST_DONE("test_vectors");
}
