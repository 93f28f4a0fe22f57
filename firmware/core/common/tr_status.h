/* Status codes returned by every public firmware function.
 * Append new codes at the end: the values travel in ERROR.detail. */
#ifndef TR_STATUS_H
#define TR_STATUS_H

typedef enum {
    TR_OK = 0,
    TR_ERR_ARG = 1,            /* a NULL pointer or an argument out of range */
    TR_ERR_NOMEM = 2,          /* arena or buffer too small */
    TR_ERR_TRUNCATED = 3,      /* input ends before the item it announces */
    TR_ERR_FORMAT = 4,         /* input is not of the expected shape or type */
    TR_ERR_SHAPE = 5,          /* tensor shapes do not fit together */
    TR_ERR_UNKNOWN_LAYER = 6,  /* model names a layer kind this engine lacks */
    TR_ERR_OVERFLOW = 7,       /* a size computation would overflow */
    TR_ERR_QUANT = 8,          /* quantization parameters out of range */
    TR_ERR_UNSUPPORTED = 9,    /* valid request this build cannot serve */
    TR_ERR_HASH = 10,          /* content does not match its declared hash */
    TR_ERR_STATE = 11          /* called in the wrong state (e.g. no model) */
} tr_status;

#endif
