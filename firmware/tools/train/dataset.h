/* Fashion-MNIST (or any IDX image/label pair) loaded into memory for the
 * host tools. The gzip files are decompressed with `gzip -dc` through popen. */
#ifndef TR_DATASET_H
#define TR_DATASET_H

#include <stdint.h>

#define TR_FASHION_DIR "/usr/share/datasets/fashion-mnist"

typedef struct {
    uint32_t count;
    uint32_t h, w, c;
    uint8_t *images; /* count * h * w * c */
    uint8_t *labels; /* count */
} tr_dataset;

/* Loads "<dir>/<prefix>-images-idx3-ubyte.gz" and the labels; prefix is
 * "train" or "t10k". Returns 0 on success, prints the reason otherwise. */
int tr_dataset_load(const char *dir, const char *prefix, tr_dataset *ds);

/* Keeps only samples whose label is in [lo, hi], in order. */
void tr_dataset_filter(tr_dataset *ds, uint32_t lo, uint32_t hi);

void tr_dataset_free(tr_dataset *ds);

#endif
