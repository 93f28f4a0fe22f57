/* CMSDK APB watchdog of the MPS2 machines (0x40008000), clocked at 25 MHz and
 * wired to the NMI: work that does not return to the main loop within the
 * timeout ends in the NMI handler, which reports and stops the board, so its
 * supervisor restarts it. Under -icount the timeout is virtual time: 40
 * instructions a tick, and virtual time runs on while the core sleeps.
 *
 * The watchdog is never stopped. QEMU's model keeps counting with INTEN clear:
 * the interrupt status latches while "stopped" and the NMI fires the moment
 * INTEN is set again; a second expiry stops the counter until LOAD is written.
 * So the main loop sleeps in tr_qemu_idle_wait() with the watchdog running,
 * and an expiry that finds it there is cleared (which reloads the counter)
 * and the sleep goes on: an idle board never faults, and the first expiry
 * after it wakes is a real hang, however long it slept. */
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

static volatile int g_idle;              /* the main loop sleeps in tr_qemu_idle_wait */
static volatile uint32_t g_idle_expiries;
static uint32_t g_load;

void tr_qemu_watchdog_start(uint32_t timeout_ms)
{
    g_load = timeout_ms * WDOG_TICKS_PER_MS;
    WDOG_LOCK = WDOG_UNLOCK_KEY;
    WDOG_INTCLR = 1u;
    WDOG_LOAD = g_load; /* a LOAD write also restarts a stopped counter */
    WDOG_CONTROL = WDOG_INTEN;
    WDOG_LOCK = 0u;
}

void tr_qemu_watchdog_feed(void)
{
    WDOG_LOCK = WDOG_UNLOCK_KEY;
    WDOG_INTCLR = 1u; /* clears the interrupt and reloads the counter */
    WDOG_LOCK = 0u;
}

int tr_qemu_watchdog_fired(void)
{
    return (WDOG_MIS & 1u) != 0u;
}

void tr_qemu_idle_wait(int (*ready)(void))
{
    /* With interrupts masked, WFI still wakes on a pending one: nothing that
     * makes ready() true can slip in between the check and the sleep. The
     * NMI is never masked. */
    __asm__ volatile("cpsid i" ::: "memory");
    g_idle = 1;
    while (!ready()) {
        __asm__ volatile("wfi" ::: "memory");
        __asm__ volatile("cpsie i\n cpsid i" ::: "memory"); /* let the handler run */
    }
    tr_qemu_watchdog_feed(); /* before leaving idle: the work gets a whole period */
    g_idle = 0;
    __asm__ volatile("cpsie i" ::: "memory");
}

int tr_qemu_watchdog_idle_expiry(void)
{
    if (!g_idle || !tr_qemu_watchdog_fired()) {
        return 0;
    }
    /* LOAD too: a host that starves QEMU past two periods while the board
     * sleeps lets both expiries land before this runs, which stops the counter */
    WDOG_LOCK = WDOG_UNLOCK_KEY;
    WDOG_INTCLR = 1u;
    WDOG_LOAD = g_load;
    WDOG_LOCK = 0u;
    g_idle_expiries++;
    return 1;
}

uint32_t tr_qemu_watchdog_idle_expiries(void)
{
    return g_idle_expiries;
}
