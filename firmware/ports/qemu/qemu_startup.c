/* Bare-metal startup for the QEMU MPS2 stand-ins: vector table, .data/.bss
 * init, stack painting, fault reporting, semihosting exit with main's status. */
#include "qemu_port.h"

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _sstack, _estack;
int main(void);
void tr_qemu_reset(void);
void tr_qemu_default_irq(void);
void tr_qemu_nmi_c(const uint32_t *frame);
void tr_qemu_hardfault_c(const uint32_t *frame);
void tr_qemu_memmanage_c(const uint32_t *frame);
void tr_qemu_busfault_c(const uint32_t *frame);
void tr_qemu_usagefault_c(const uint32_t *frame);
void tr_qemu_unexpected_c(const uint32_t *frame);

#define STACK_PAINT 0xA5A5A5A5u

static int semihost(int op, const void *arg)
{
    register int r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

void tr_qemu_write0(const char *s) { (void)semihost(0x04, s); }

void tr_qemu_exit(int status)
{
    uint32_t block[2] = {0x20026u, (uint32_t)status}; /* ADP_Stopped_ApplicationExit */
    (void)semihost(0x20, block);
    for (;;) { }
}

uint32_t tr_qemu_stack_bytes(void)
{
    return (uint32_t)((uintptr_t)&_estack - (uintptr_t)&_sstack);
}

uint32_t tr_qemu_stack_peak(void)
{
    const uint32_t *p = &_sstack;
    while (p < &_estack && *p == STACK_PAINT) {
        p++;
    }
    return (uint32_t)((uintptr_t)&_estack - (uintptr_t)p);
}

uint32_t tr_qemu_static_ram(void)
{
    return (uint32_t)((uintptr_t)&_ebss - (uintptr_t)&_sdata);
}

__attribute__((weak)) void tr_qemu_fault_report(const char *what, uint32_t pc)
{
    (void)what;
    (void)pc;
}

/* Reports the fault and stops the board: the semihosting exit ends QEMU with
 * status 3, so whoever supervises the board sees it die and restarts it.
 * frame is the exception frame the core stacked (r0-r3, r12, lr, pc, xpsr). */
static void fault(const char *what, const uint32_t *frame)
{
    tr_qemu_fault_report(what, frame[6]); /* stacked pc */
    tr_qemu_write0("FAULT ");
    tr_qemu_write0(what);
    tr_qemu_write0("\n");
    tr_qemu_exit(3);
}

/* The C half of each handler gets the frame from its entry below. */
void tr_qemu_nmi_c(const uint32_t *frame)
{
    if (tr_qemu_watchdog_idle_expiry()) {
        return; /* asleep in the idle wait is not hung: cleared, back to sleep */
    }
    fault("nmi", frame);
}
void tr_qemu_hardfault_c(const uint32_t *frame) { fault("hardfault", frame); }
void tr_qemu_memmanage_c(const uint32_t *frame) { fault("memmanage", frame); }
void tr_qemu_busfault_c(const uint32_t *frame) { fault("busfault", frame); }
void tr_qemu_usagefault_c(const uint32_t *frame) { fault("usagefault", frame); }
void tr_qemu_unexpected_c(const uint32_t *frame) { fault("unexpected interrupt", frame); }

/* Each entry reads MSP before anything is pushed on it, so the frame is the
 * one the core stacked (a C handler would push its own registers first). The
 * port runs on MSP only. ARMv6-M has no B.W: branch through a register. */
#define FAULT_ENTRY(entry, c_half)                                                 \
    __attribute__((naked)) void entry(void)                                        \
    {                                                                              \
        __asm__ volatile("mrs r0, msp\n ldr r1, =" #c_half "\n bx r1\n .ltorg"); \
    }

static FAULT_ENTRY(nmi_handler, tr_qemu_nmi_c)
static FAULT_ENTRY(hardfault_handler, tr_qemu_hardfault_c)
static FAULT_ENTRY(memmanage_handler, tr_qemu_memmanage_c)
static FAULT_ENTRY(busfault_handler, tr_qemu_busfault_c)
static FAULT_ENTRY(usagefault_handler, tr_qemu_usagefault_c)
FAULT_ENTRY(tr_qemu_default_irq, tr_qemu_unexpected_c)

void tr_qemu_uart0_rx_handler(void) __attribute__((weak, alias("tr_qemu_default_irq")));

void tr_qemu_reset(void)
{
    uint32_t *src = &_sidata;
    uint32_t *sp;
#if defined(__ARM_FP)
    /* Hard-float builds: give the FPU (CP10, CP11) full access before any
     * float instruction runs. */
    *(volatile uint32_t *)0xE000ED88u |= 0xFu << 20;
    __asm__ volatile("dsb\n isb" ::: "memory");
#endif
    for (uint32_t *dst = &_sdata; dst < &_edata;) { *dst++ = *src++; }
    for (uint32_t *dst = &_sbss; dst < &_ebss;) { *dst++ = 0u; }
    /* Paint the stack below the live frame: the first word that is no longer
     * the pattern marks the deepest the stack ever went. */
    __asm__ volatile("mov %0, sp" : "=r"(sp));
    for (uint32_t *p = &_sstack; p < sp - 16; p++) { *p = STACK_PAINT; }
    tr_qemu_exit(main());
}

/* 16 system exceptions, then the MPS2 interrupts: UART0 RX is IRQ 0. */
__attribute__((section(".vectors"), used))
static void (*const tr_qemu_vectors[16 + 32])(void) = {
    [0] = (void (*)(void))&_estack,
    [1] = tr_qemu_reset,
    [2] = nmi_handler,
    [3] = hardfault_handler,
    [4] = memmanage_handler,
    [5] = busfault_handler,
    [6] = usagefault_handler,
    [11] = tr_qemu_default_irq, /* SVCall */
    [12] = tr_qemu_default_irq, /* debug monitor */
    [14] = tr_qemu_default_irq, /* PendSV */
    [15] = tr_qemu_default_irq, /* SysTick: not used */
    [16 + 0] = tr_qemu_uart0_rx_handler,
    [16 + 1] = tr_qemu_default_irq,  [16 + 2] = tr_qemu_default_irq,  [16 + 3] = tr_qemu_default_irq,
    [16 + 4] = tr_qemu_default_irq,  [16 + 5] = tr_qemu_default_irq,  [16 + 6] = tr_qemu_default_irq,
    [16 + 7] = tr_qemu_default_irq,  [16 + 8] = tr_qemu_default_irq,  [16 + 9] = tr_qemu_default_irq,
    [16 + 10] = tr_qemu_default_irq, [16 + 11] = tr_qemu_default_irq, [16 + 12] = tr_qemu_default_irq,
    [16 + 13] = tr_qemu_default_irq, [16 + 14] = tr_qemu_default_irq, [16 + 15] = tr_qemu_default_irq,
    [16 + 16] = tr_qemu_default_irq, [16 + 17] = tr_qemu_default_irq, [16 + 18] = tr_qemu_default_irq,
    [16 + 19] = tr_qemu_default_irq, [16 + 20] = tr_qemu_default_irq, [16 + 21] = tr_qemu_default_irq,
    [16 + 22] = tr_qemu_default_irq, [16 + 23] = tr_qemu_default_irq, [16 + 24] = tr_qemu_default_irq,
    [16 + 25] = tr_qemu_default_irq, [16 + 26] = tr_qemu_default_irq, [16 + 27] = tr_qemu_default_irq,
    [16 + 28] = tr_qemu_default_irq, [16 + 29] = tr_qemu_default_irq, [16 + 30] = tr_qemu_default_irq,
    [16 + 31] = tr_qemu_default_irq,
};
