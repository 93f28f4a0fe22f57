/* Message types and error codes of protocol/SPEC.md §3. */
#ifndef TR_PROTO_H
#define TR_PROTO_H

enum {
    TR_MSG_HELLO = 0x01,
    TR_MSG_PING = 0x02,
    TR_MSG_RESET = 0x03,
    TR_MSG_MODEL_BEGIN = 0x10,
    TR_MSG_MODEL_CHUNK = 0x11,
    TR_MSG_MODEL_COMMIT = 0x12,
    TR_MSG_WEIGHTS_BEGIN = 0x20,
    TR_MSG_WEIGHTS_CHUNK = 0x21,
    TR_MSG_WEIGHTS_COMMIT = 0x22,
    TR_MSG_WEIGHTS_INFO = 0x23,
    TR_MSG_WEIGHTS_READ = 0x24,
    TR_MSG_SAMPLES = 0x30,
    TR_MSG_TRAIN = 0x31,
    TR_MSG_EVAL = 0x32,
    TR_MSG_INFER = 0x33,
    TR_MSG_STATS = 0x40,
    TR_MSG_EVENT = 0x50,
    TR_MSG_LOG = 0x51,
    TR_MSG_NAK = 0x7E,
    TR_MSG_ERROR = 0x7F
};

enum {
    TR_EVENT_BOOT = 1,
    TR_EVENT_FAULT = 2,
    TR_EVENT_MODEL_LOADED = 3,
    TR_EVENT_WATCHDOG = 4
};

typedef enum {
    TR_E_NONE = 0,
    TR_E_BAD_FRAME = 1,
    TR_E_UNKNOWN_TYPE = 2,
    TR_E_BAD_BODY = 3,
    TR_E_TOO_LARGE = 4,
    TR_E_BAD_CHUNK = 5,
    TR_E_INCOMPLETE = 6,
    TR_E_HASH_MISMATCH = 7,
    TR_E_NO_MODEL = 8,
    TR_E_MODEL_INVALID = 9,
    TR_E_MODEL_TOO_LARGE = 10,
    TR_E_BAD_WEIGHTS = 11,
    TR_E_BAD_SAMPLE = 12,
    TR_E_BAD_ARG = 13,
    TR_E_NOT_SUPPORTED = 14,
    TR_E_INTERNAL = 15
} tr_proto_error;

#endif
