/* What a port (host twin, QEMU, Zephyr) provides to the portable core.
 * The core calls these; each port implements them once. */
#ifndef TR_BOARD_H
#define TR_BOARD_H

#include <stddef.h>
#include <stdint.h>
#include "common/tr_status.h"

typedef struct {
    const char *board;       /* HELLO board, e.g. "host-twin", "qemu-mps2-an386" */
    const char *build;       /* "<version>+<git>-<variant>" */
    const char *cpu;         /* "cortex-m4", "x86_64", ... */
    const char *counter;     /* unit of tr_board_counter(): "cycles", "instructions", "ns" */
    uint32_t clock_hz;
    uint32_t ram_bytes;      /* SRAM of the (real) board */
    uint32_t static_ram;     /* static RAM of the image (linker map), 0 if unknown */
    uint32_t stack_bytes;    /* stack reserved */
    uint32_t watchdog_ms;    /* the watchdog's period: a request busy longer resets the board; 0 = none */
} tr_board_info;

/* Sends wire bytes (one or more whole frames). Blocking until queued. */
tr_status tr_board_tx(const uint8_t *bytes, size_t len);
/* Free-running step counter in info.counter units; differences are used. */
uint64_t tr_board_counter(void);
/* Fills *info; the strings must live as long as the program. */
tr_status tr_board_info_get(tr_board_info *info);
/* Stack high-water mark in bytes, 0 if the port cannot measure it. */
uint32_t tr_board_stack_peak(void);
/* A random 32-bit boot id (a fresh one every boot). */
uint32_t tr_board_boot_id(void);
/* Restarts the board after the current response has been sent. The core
 * calls it last thing in a RESET; a port may return and restart later. */
tr_status tr_board_reset(void);

#endif
