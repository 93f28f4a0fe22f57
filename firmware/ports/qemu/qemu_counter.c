/* The instruction counter. Under -icount shift=0 QEMU advances virtual time
 * by exactly 1 ns per guest instruction; CMSDK TIMER0 counts down at the
 * 25 MHz peripheral clock, one tick per 40 instructions. Each read waits for
 * the next tick edge, so a step that starts at an edge and runs the same
 * instructions ends at the same phase: the difference of two reads is the
 * same on every run, to the instruction, whatever the host's load. No
 * interrupt is involved (none may land inside a step and add to it). */
#include "qemu_port.h"

#define TIMER0_BASE 0x40000000u
#define TIMER_CTRL (*(volatile uint32_t *)(TIMER0_BASE + 0x00u))
#define TIMER_VALUE (*(volatile uint32_t *)(TIMER0_BASE + 0x04u))
#define TIMER_RELOAD (*(volatile uint32_t *)(TIMER0_BASE + 0x08u))
#define TIMER_ENABLE 0x1u
#define NS_PER_TICK 40u /* 25 MHz */

static uint64_t g_ticks;  /* ticks up to g_last */
static uint32_t g_last;   /* timer value at the last read */

void tr_qemu_counter_init(void)
{
    TIMER_CTRL = 0u;
    TIMER_RELOAD = 0xFFFFFFFFu;
    TIMER_VALUE = 0xFFFFFFFFu;
    TIMER_CTRL = TIMER_ENABLE;
    g_ticks = 0u;
    g_last = TIMER_VALUE;
}

/* Free-running: a 32-bit wrap takes 171 s of virtual time; a wrap missed
 * while the board sleeps longer than that only shifts the origin, never the
 * difference between two reads around a step. */
uint64_t tr_qemu_instructions(void)
{
    uint32_t start = TIMER_VALUE;
    uint32_t now;
    do {
        now = TIMER_VALUE;
    } while (now == start);
    g_ticks += (uint32_t)(g_last - now); /* a down counter: wraps in unsigned arithmetic */
    g_last = now;
    return g_ticks * NS_PER_TICK;
}
