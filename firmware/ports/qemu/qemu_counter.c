/* The instruction counter. Under -icount shift=0 QEMU advances virtual time
 * by exactly 1 ns per guest instruction; CMSDK TIMER0 counts down at the
 * 25 MHz peripheral clock, one tick per 40 instructions. Each read waits for
 * the next tick edge, so a step that starts at an edge and runs the same
 * instructions ends at the same phase: the difference of two reads is the
 * same on every run, to the instruction, whatever the host's load. No
 * interrupt is involved (none may land inside a step and add to it). The
 * edge is found at a fixed instruction offset (wait_edge). */
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

/* Waits for the next tick edge and returns the timer value after it, always
 * the same number of instructions after the edge. The polling loop (ldr, cmp,
 * beq) sees the edge 0, 1 or 2 instructions late; two loads 38 and 39
 * instructions after the one that saw it tell how late (whether the next
 * edge, 40 after this one, is already there), and the paths that follow pad
 * the difference away: 4 + 2 (0 late), 6 + 0 (1 late), 5 + 1 (2 late). So a
 * step starts at a fixed phase of the timer and the read at its end lands on
 * the same tick whatever the phase the board woke at. Thumb-1 only (M0+ too). */
static uint32_t wait_edge(void)
{
    uint32_t now, a, b;
    volatile uint32_t *value = &TIMER_VALUE;

    __asm__ volatile(
        "    b 5f\n"
        "2:  nop\n"
        "    b 4f\n"
        "3:  b 4f\n"
        "5:  ldr %[b], [%[v]]\n"
        "1:  ldr %[now], [%[v]]\n"
        "    cmp %[now], %[b]\n"
        "    beq 1b\n"
        "    .rept 35\n"
        "    nop\n"
        "    .endr\n"
        "    ldr %[a], [%[v]]\n"
        "    ldr %[b], [%[v]]\n"
        "    cmp %[a], %[now]\n"
        "    bne 2b\n"
        "    cmp %[b], %[now]\n"
        "    bne 3b\n"
        "    nop\n"
        "    nop\n"
        "4:\n"
        : [now] "=&l"(now), [a] "=&l"(a), [b] "=&l"(b)
        : [v] "l"(value)
        : "cc", "memory");
    return now;
}

/* Free-running: a 32-bit wrap takes 171 s of virtual time; a wrap missed
 * while the board sleeps longer than that only shifts the origin, never the
 * difference between two reads around a step. */
uint64_t tr_qemu_instructions(void)
{
    uint32_t now = wait_edge();

    g_ticks += (uint32_t)(g_last - now); /* a down counter: wraps in unsigned arithmetic */
    g_last = now;
    return g_ticks * NS_PER_TICK;
}
