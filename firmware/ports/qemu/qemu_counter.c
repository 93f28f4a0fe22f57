/* The instruction counter. Under -icount shift=0 QEMU advances virtual time
 * by exactly 1 ns per guest instruction, so the SysTick on the 25 MHz system
 * clock counts one tick per 40 instructions, the same on every run whatever
 * the host's load. The interrupt extends the 24-bit counter to 64 bits. */
#include "qemu_port.h"

#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)
#define SCB_ICSR (*(volatile uint32_t *)0xE000ED04u)
#define ICSR_PENDSTSET (1u << 26)
#define SYST_PERIOD 0x01000000u /* 2^24 ticks per wrap */
#ifndef TR_QEMU_NS_PER_TICK
#define TR_QEMU_NS_PER_TICK 40u /* 25 MHz system clock */
#endif

static volatile uint64_t g_wraps_ticks;

void tr_qemu_systick_handler(void)
{
    g_wraps_ticks += SYST_PERIOD;
}

void tr_qemu_counter_init(void)
{
    g_wraps_ticks = 0u;
    SYST_RVR = SYST_PERIOD - 1u;
    SYST_CVR = 0u;
    SYST_CSR = 0x7u; /* processor clock, interrupt, enable */
}

uint64_t tr_qemu_instructions(void)
{
    uint32_t primask;
    uint64_t base;
    uint32_t cur;
    __asm__ volatile("mrs %0, primask\n cpsid i" : "=r"(primask)::"memory");
    cur = SYST_CVR;
    base = g_wraps_ticks;
    if (SCB_ICSR & ICSR_PENDSTSET) {
        /* wrapped since the last interrupt: count the wrap, read again */
        cur = SYST_CVR;
        base += SYST_PERIOD;
    }
    __asm__ volatile("msr primask, %0" ::"r"(primask) : "memory");
    return (base + (SYST_PERIOD - 1u - cur)) * TR_QEMU_NS_PER_TICK;
}
