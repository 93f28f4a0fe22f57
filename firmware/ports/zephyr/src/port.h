/* The Zephyr port's pieces around firmware/core (board/tr_port.h). */
#ifndef TR_ZEPHYR_PORT_H
#define TR_ZEPHYR_PORT_H

#include <stddef.h>
#include <stdint.h>
#include <zephyr/kernel.h>
#include "board/tr_port.h"

/* The link: devicetree chosen tinyrig,uart, async API (DMA) or interrupt-driven. */
int tr_link_init(void);
/* Moves up to cap received bytes out of the ring, waiting up to wait for the first. */
size_t tr_link_read(uint8_t *out, size_t cap, k_timeout_t wait);
/* tr_port.tx: whole frames, blocking until the UART has taken them. */
tr_status tr_link_tx(void *ctx, const uint8_t *bytes, size_t len);
/* Bytes lost because the ring was full (never expected). */
uint32_t tr_link_overruns(void);

/* Step counter: DWT CYCCNT ("cycles") or the system timer ("timer"). */
void tr_counter_init(void);
uint64_t tr_counter_read(void);
const char *tr_counter_unit(void);

/* The hardware watchdog (watchdog.c): starts it, returning its period in ms
 * (0: none); fed after each turn of the main loop, whose idle wait takes
 * tr_watchdog_idle_begin()'s timeout and ends with tr_watchdog_idle_end(). */
uint32_t tr_watchdog_start(void);
void tr_watchdog_feed(void);
k_timeout_t tr_watchdog_idle_begin(void);
void tr_watchdog_idle_end(void);
/* Whether this boot follows a watchdog reset (read once: it clears the cause). */
int tr_watchdog_caused_reset(void);

/* A word the emulated rig writes before boot (QEMU -device loader), where the
 * bare-metal QEMU images read theirs: the boot id's (CONFIG_TINYRIG_BOOT_ID_ADDR)
 * and the watchdog period's (CONFIG_TINYRIG_WATCHDOG_MS_ADDR). 0 when the word
 * is unset or addr is 0 (the board names none). */
static inline uint32_t tr_rig_word(uintptr_t addr)
{
    return addr != 0u ? *(volatile const uint32_t *)addr : 0u;
}

/* The flash slots of the A/B model store, NULL when the board has none. */
const tr_slots *tr_flash_slots(void);

#endif
