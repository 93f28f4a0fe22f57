/* The one interface between a port (host twin, QEMU, Zephyr, tests) and the
 * portable core: the port fills a tr_port (proto/tr_device.h), declares the
 * device's memory with TR_DEVICE_STORAGE and starts it with tr_port_start.
 *
 *     TR_DEVICE_STORAGE(g_store, 2048, 4, 40, 1024, 65536, 98304, 32);
 *     tr_port port = { .tx = uart_tx, .counter = cycles, ... };
 *     tr_port_start(&g_store, &port);             (sends EVENT BOOT)
 *     for (;;) { n = uart_read(buf); tr_device_feed(g_store.dev, buf, n); }
 *
 * A RESET calls port.reset; the port's loop then calls tr_port_start again. */
#ifndef TR_PORT_H
#define TR_PORT_H

#include <stddef.h>
#include <stdint.h>
#include "common/tr_status.h"
#include "proto/tr_device.h"

/* A device context with its sizes and memory. */
typedef struct {
    tr_device_config cfg;
    tr_device_mem mem;
    tr_device *dev;
} tr_device_storage;

/* Where a port wants the two bulk buffers (e.g. a tightly coupled RAM
 * section); empty by default. */
#ifndef TR_STORAGE_SAMPLES_ATTR
#define TR_STORAGE_SAMPLES_ATTR
#endif
#ifndef TR_STORAGE_STAGING_ATTR
#define TR_STORAGE_STAGING_ATTR
#endif

/* Static memory for one device: `name` (a tr_device_storage) and its arrays,
 * name##_dev the device. arena_bytes is rounded down to 8 bytes. */
#define TR_DEVICE_STORAGE(name, max_frame, window, sample_slots, sample_bytes_max, blob_max,     \
                          arena_bytes, max_train)                                                \
    static uint8_t name##_rx[(max_frame)];                                                        \
    static uint8_t name##_body[(max_frame)];                                                      \
    static uint8_t name##_wire[TR_FRAME_WIRE_MAX(max_frame)];                                     \
    static uint8_t name##_samples[(sample_slots) * (sample_bytes_max)] TR_STORAGE_SAMPLES_ATTR;   \
    static tr_sample_meta name##_sample_meta[(sample_slots)];                                     \
    static uint8_t name##_staging[(blob_max)] TR_STORAGE_STAGING_ATTR;                            \
    static uint8_t name##_granules[TR_DEVICE_BITMAP_BYTES(blob_max)];                             \
    static uint64_t name##_arena[(arena_bytes) / 8u];                                             \
    static tr_train_record name##_records[(max_train)];                                           \
    static tr_device name##_dev;                                                                  \
    static const tr_device_storage name = {                                                      \
        {(max_frame), (window), (sample_slots), (sample_bytes_max), (blob_max),                   \
         (uint32_t)((arena_bytes) & ~7u), (max_train)},                                           \
        {name##_rx, name##_body, name##_wire, name##_samples, name##_sample_meta, name##_staging, \
         name##_granules, (uint8_t *)name##_arena, name##_records},                              \
        &name##_dev}

/* Bytes of device memory for cfg: every buffer of tr_device_mem and the
 * context itself (what a port that allocates reports as its RAM). */
size_t tr_device_storage_bytes(const tr_device_config *cfg);

/* Resets every device state and sends EVENT BOOT; TR_ERR_ARG when the
 * sizes do not match the memory. Called at boot and after each RESET. */
tr_status tr_port_start(const tr_device_storage *store, const tr_port *port);

#endif
