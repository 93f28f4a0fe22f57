/* CMSDK APB watchdog of the MPS2 machines (0x40008000), clocked at 25 MHz and
 * wired to the NMI: work that does not return to the main loop within the
 * timeout ends in the NMI handler, which reports and stops the board, so its
 * supervisor restarts it. The loop stops the watchdog before it sleeps (a
 * sleeping board is not hung) and starts it again when bytes arrive. Under
 * -icount the timeout is virtual time: 40 instructions a tick. */
#include "qemu_port.h"

#define WDOG_BASE 0x40008000u
#define WDOG_LOAD (*(volatile uint32_t *)(WDOG_BASE + 0x000u))
#define WDOG_CONTROL (*(volatile uint32_t *)(WDOG_BASE + 0x008u))
#define WDOG_INTCLR (*(volatile uint32_t *)(WDOG_BASE + 0x00Cu))
#define WDOG_MIS (*(volatile uint32_t *)(WDOG_BASE + 0x014u))
#define WDOG_LOCK (*(volatile uint32_t *)(WDOG_BASE + 0xC00u))
#define WDOG_UNLOCK_KEY 0x1ACCE551u
#define WDOG_INTEN 0x1u
#define WDOG_TICKS_PER_MS 25000u

void tr_qemu_watchdog_start(uint32_t timeout_ms)
{
    WDOG_LOCK = WDOG_UNLOCK_KEY;
    WDOG_LOAD = timeout_ms * WDOG_TICKS_PER_MS;
    WDOG_CONTROL = WDOG_INTEN;
    WDOG_LOCK = 0u;
}

void tr_qemu_watchdog_feed(void)
{
    WDOG_LOCK = WDOG_UNLOCK_KEY;
    WDOG_INTCLR = 1u; /* clears the interrupt and reloads the counter */
    WDOG_LOCK = 0u;
}

void tr_qemu_watchdog_stop(void)
{
    WDOG_LOCK = WDOG_UNLOCK_KEY;
    WDOG_CONTROL = 0u;
    WDOG_INTCLR = 1u;
    WDOG_LOCK = 0u;
}

int tr_qemu_watchdog_fired(void)
{
    return (WDOG_MIS & 1u) != 0u;
}
