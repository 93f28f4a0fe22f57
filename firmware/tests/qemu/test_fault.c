/* Fault test: an undefined instruction traps into the port's fault handler,
 * which hands the report hook the fault's name and the stacked pc (the
 * address of the faulting instruction) before the board stops. The board
 * image's hook turns this into an EVENT FAULT frame on the UART. */
#include "qemu_port.h"

extern const char tr_test_fault_site[];

static volatile int g_armed;

void tr_qemu_fault_report(const char *what, uint32_t pc)
{
    uint32_t site = (uint32_t)(uintptr_t)tr_test_fault_site & ~1u;
    if (!g_armed) {
        tr_qemu_write0("fault: FAIL a fault before the test's own\n");
        tr_qemu_exit(1);
    }
    /* ARMv6-M escalates everything to HardFault; ARMv7-M without the
     * UsageFault enable does too. */
    if (what[0] != 'h' && what[0] != 'u') {
        tr_qemu_write0("fault: FAIL wrong handler: ");
        tr_qemu_write0(what);
        tr_qemu_write0("\n");
        tr_qemu_exit(1);
    }
    if (pc != site) {
        tr_qemu_write0("fault: FAIL the reported pc is not the faulting instruction\n");
        tr_qemu_exit(1);
    }
    tr_qemu_write0("fault: ok (");
    tr_qemu_write0(what);
    tr_qemu_write0(" at the faulting instruction)\n");
    tr_qemu_exit(0);
}

int main(void)
{
    g_armed = 1;
    __asm__ volatile(".global tr_test_fault_site\n"
                     "tr_test_fault_site: udf #0\n" ::: "memory");
    tr_qemu_write0("fault: FAIL the undefined instruction ran on\n");
    return 1;
}
