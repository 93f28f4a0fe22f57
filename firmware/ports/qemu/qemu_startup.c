/* Bare-metal startup for the QEMU MPS2 stand-ins: vector table, .data/.bss
 * init, semihosting exit with the status returned by main. */
#include <stdint.h>

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack;
int main(void);
void tr_qemu_reset(void);

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

static void tr_qemu_fault(void)
{
    tr_qemu_write0("FAULT\n");
    tr_qemu_exit(3);
}

void tr_qemu_reset(void)
{
    uint32_t *src = &_sidata;
    for (uint32_t *dst = &_sdata; dst < &_edata;) { *dst++ = *src++; }
    for (uint32_t *dst = &_sbss; dst < &_ebss;) { *dst++ = 0u; }
    tr_qemu_exit(main());
}

__attribute__((section(".vectors"), used))
static void (*const tr_qemu_vectors[16])(void) = {
    (void (*)(void))&_estack, tr_qemu_reset, tr_qemu_fault, tr_qemu_fault,
    tr_qemu_fault, tr_qemu_fault, tr_qemu_fault, 0, 0, 0, 0,
    tr_qemu_fault, tr_qemu_fault, 0, tr_qemu_fault, tr_qemu_fault,
};
