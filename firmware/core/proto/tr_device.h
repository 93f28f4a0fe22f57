/* The protocol dispatcher: one device context in caller-provided memory.
 * Bytes from the link go in through tr_device_feed(); responses leave through
 * the port's tx callback. Every size comes from tr_device_config, so a 256 KiB
 * QEMU board and the host twin size it differently. No allocation.
 * A port starts it through board/tr_port.h (TR_DEVICE_STORAGE, tr_port_start). */
#ifndef TR_DEVICE_H
#define TR_DEVICE_H

#include <stddef.h>
#include <stdint.h>
#include "common/tr_status.h"
#include "proto/tr_frame.h"
#include "proto/tr_proto.h"
#include "store/tr_slots.h"
#ifdef TR_WITH_ENGINE
#include "engine/tr_engine.h"
#endif

#define TR_GRANULE 64u
/* Bytes of the received-granule bitmap for a staging slot of blob_max bytes. */
#define TR_DEVICE_BITMAP_BYTES(blob_max) ((((blob_max) + TR_GRANULE - 1u) / TR_GRANULE + 7u) / 8u)

typedef struct {
    uint32_t max_frame;        /* largest raw frame accepted (HELLO 7) */
    uint32_t window;           /* HELLO 8 */
    uint32_t sample_slots;     /* HELLO 10 */
    uint32_t sample_bytes_max; /* bytes of one sample slot */
    uint32_t blob_max;         /* HELLO 12: staging slot size */
    uint32_t arena_bytes;      /* HELLO 11 */
    uint32_t max_train;        /* HELLO 16 (capped so a TRAIN response fits a frame) */
} tr_device_config;

typedef struct {
    uint32_t id;     /* sample number */
    uint16_t len;
    uint8_t label;
    uint8_t held;
} tr_sample_meta;

typedef struct {
    uint32_t loss_ppm;
    uint32_t counter;
    uint32_t updated_ppm;
    uint32_t correct;
    uint32_t peak_ram;
} tr_train_record;

/* Memory the caller provides (static arrays on a board). */
typedef struct {
    uint8_t *rx;                 /* max_frame */
    uint8_t *body;               /* max_frame: response body */
    uint8_t *wire;               /* TR_FRAME_WIRE_MAX(max_frame) */
    uint8_t *samples;            /* sample_slots * sample_bytes_max */
    tr_sample_meta *sample_meta; /* sample_slots */
    uint8_t *staging;            /* blob_max */
    uint8_t *granules;           /* TR_DEVICE_BITMAP_BYTES(blob_max) */
    uint8_t *arena;              /* arena_bytes, 8-byte aligned */
    tr_train_record *records;    /* max_train: records of the TRAIN applied last */
} tr_device_mem;

/* What the board is, as HELLO reports it. The strings live as long as the program. */
typedef struct {
    const char *board;       /* HELLO board, e.g. "host-twin", "qemu-mps2-an386", "nucleo_f746zg" */
    const char *build;       /* "<version>+<git>-<variant>" */
    const char *cpu;         /* "cortex-m4", "x86_64", ... */
    const char *counter;     /* unit of tr_port.counter: "cycles", "instructions", "ns" */
    uint32_t clock_hz;
    uint32_t ram_bytes;      /* SRAM of the (real) board */
    uint32_t static_ram;     /* static RAM of the image (linker map), 0 if unknown */
    uint32_t stack_bytes;    /* stack reserved */
    uint32_t watchdog_ms;    /* the watchdog's period: a request busy longer resets the board; 0 = none */
} tr_board_info;

/* The one struct a port fills (host twin, QEMU, Zephyr, tests): how bytes
 * leave, how work is counted, how the board restarts, what it is. */
typedef struct {
    /* Sends wire bytes (one or more whole frames); blocks until queued. */
    tr_status (*tx)(void *ctx, const uint8_t *bytes, size_t len);
    void *tx_ctx;
    /* Free-running counter in info.counter units; only differences are used. */
    uint64_t (*counter)(void);
    /* Stack high-water mark in bytes; may be NULL (not measured). */
    uint32_t (*stack_peak)(void);
    /* Restarts the board after the RESET response is sent; it may return and
     * restart later (the port's loop starts the device afresh). NULL: RESET is NOT_SUPPORTED. */
    tr_status (*reset)(void);
    tr_board_info info;
    uint32_t boot_id;        /* a fresh random id every boot */
    /* Flash slots for the live model (store/tr_slots.h); NULL: nothing is
     * kept across a restart and HELLO/STATS carry no stored_seq. */
    const tr_slots *slots;
    /* The energy marker: high(1) just before each training step, low(0) just
     * after, so an external meter can cut out the steps; may be NULL. */
    void (*step_marker)(int high);
} tr_port;

enum { TR_STAGED_NONE = 0, TR_STAGED_MODEL = 1, TR_STAGED_WEIGHTS = 2 };

typedef struct {
    tr_device_config cfg;
    tr_device_mem mem;
    tr_port port;
    tr_frame_rx rx;
    uint16_t dev_seq;          /* seq of device-initiated frames */
    uint16_t last_seq;         /* highest request seq seen */
    uint8_t have_seq;
    uint8_t nak_sent;          /* NAK for the gap after last_seq already sent */
    /* staging slot B */
    uint8_t staged_kind;
    uint8_t staged_committed;  /* the staged blob is the live one */
    uint32_t staged_size;
    uint8_t staged_sha[32];
    /* live model and weights (slot A) */
    uint8_t have_model;
    uint8_t model_sha[32];
    uint32_t held_weights;     /* without the engine: bytes of the raw weights blob in the arena */
#ifdef TR_WITH_ENGINE
    tr_engine *engine;
    tr_model_info model;
#endif
    /* training */
    uint32_t steps_applied;
    uint32_t last_step_id;     /* highest applied */
    uint8_t have_steps;
    uint64_t step_bits;        /* bit k: step last_step_id - (k + 1) applied */
    /* the TRAIN applied last (not always the highest id): its records are
     * mem.records[0 .. records_count), its answer is replayed to a duplicate */
    uint8_t have_records;
    uint32_t records_step_id;
    uint32_t records_count;
    uint32_t records_fault;    /* engine status that stopped it early, 0 if none */
    uint32_t arena_peak;
    uint64_t counter_total;
    uint32_t samples_held;
    /* flash slots (port.slots) */
    uint32_t boot_seq;         /* the stored copy loaded at start, 0 = none */
    uint32_t stored_seq;       /* the newest stored copy, 0 = none */
    uint32_t store_faults;     /* commits that went live but could not be stored */
    /* link */
    uint32_t frames_rx;
    uint32_t frames_bad;
} tr_device;

/* Checks the config against the memory, resets all state, sends EVENT BOOT. */
tr_status tr_device_init(tr_device *d, const tr_device_config *cfg, const tr_device_mem *mem,
                         const tr_port *port);
/* Sends a device-initiated EVENT {1: kind, 2: text} (text may be NULL; at
 * most 80 bytes of it are sent). Safe from a fault handler: no state changes
 * but the device sequence number. */
tr_status tr_device_event(tr_device *d, uint32_t kind, const char *text);
/* Feeds received bytes; answers every complete frame through port.tx. */
tr_status tr_device_feed(tr_device *d, const uint8_t *bytes, size_t len);
/* Handles one raw frame (already de-COBSed, CRC not yet checked). */
tr_status tr_device_handle_raw(tr_device *d, const uint8_t *raw, size_t len);

#endif
