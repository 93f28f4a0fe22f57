/* IDX reader over `gzip -dc`. */
#define _POSIX_C_SOURCE 200809L
#include "dataset.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint8_t *read_gz(const char *path, size_t *len)
{
    char cmd[1024];
    FILE *p;
    size_t cap = 1u << 20;
    size_t n = 0;
    uint8_t *buf;
    if (snprintf(cmd, sizeof cmd, "gzip -dc '%s'", path) >= (int)sizeof cmd) {
        return NULL;
    }
    p = popen(cmd, "r");
    if (p == NULL) {
        return NULL;
    }
    buf = malloc(cap);
    while (buf != NULL) {
        size_t got;
        if (n == cap) {
            uint8_t *nb = realloc(buf, cap * 2u);
            if (nb == NULL) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2u;
        }
        got = fread(buf + n, 1, cap - n, p);
        if (got == 0) {
            break;
        }
        n += got;
    }
    if (pclose(p) != 0 && buf != NULL) {
        free(buf);
        buf = NULL;
    }
    *len = n;
    return buf;
}

static uint32_t be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

int tr_dataset_load(const char *dir, const char *prefix, tr_dataset *ds)
{
    char path[512];
    size_t ilen = 0, llen = 0;
    uint8_t *img, *lab;
    uint32_t n;
    memset(ds, 0, sizeof *ds);
    snprintf(path, sizeof path, "%s/%s-images-idx3-ubyte.gz", dir, prefix);
    img = read_gz(path, &ilen);
    if (img == NULL || ilen < 16 || be32(img) != 0x803u) {
        fprintf(stderr, "cannot read IDX images %s\n", path);
        free(img);
        return -1;
    }
    snprintf(path, sizeof path, "%s/%s-labels-idx1-ubyte.gz", dir, prefix);
    lab = read_gz(path, &llen);
    if (lab == NULL || llen < 8 || be32(lab) != 0x801u) {
        fprintf(stderr, "cannot read IDX labels %s\n", path);
        free(img);
        free(lab);
        return -1;
    }
    n = be32(img + 4);
    ds->h = be32(img + 8);
    ds->w = be32(img + 12);
    ds->c = 1;
    if (be32(lab + 4) != n || ilen < 16u + (size_t)n * ds->h * ds->w || llen < 8u + n) {
        fprintf(stderr, "IDX files of %s disagree or are truncated\n", prefix);
        free(img);
        free(lab);
        return -1;
    }
    ds->count = n;
    ds->images = malloc((size_t)n * ds->h * ds->w);
    ds->labels = malloc(n);
    if (ds->images == NULL || ds->labels == NULL) {
        free(img);
        free(lab);
        tr_dataset_free(ds);
        return -1;
    }
    memcpy(ds->images, img + 16, (size_t)n * ds->h * ds->w);
    memcpy(ds->labels, lab + 8, n);
    free(img);
    free(lab);
    return 0;
}

void tr_dataset_filter(tr_dataset *ds, uint32_t lo, uint32_t hi)
{
    size_t sz = (size_t)ds->h * ds->w * ds->c;
    uint32_t k = 0;
    for (uint32_t i = 0; i < ds->count; i++) {
        if (ds->labels[i] >= lo && ds->labels[i] <= hi) {
            memmove(ds->images + k * sz, ds->images + i * sz, sz);
            ds->labels[k] = ds->labels[i];
            k++;
        }
    }
    ds->count = k;
}

void tr_dataset_free(tr_dataset *ds)
{
    free(ds->images);
    free(ds->labels);
    ds->images = NULL;
    ds->labels = NULL;
    ds->count = 0;
}
