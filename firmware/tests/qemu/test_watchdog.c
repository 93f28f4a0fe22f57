/* Watchdog test: fed, the board keeps running; left alone, the NMI fires and
 * the handler reports it (the board's supervisor then restarts it). */
#include "qemu_port.h"

static volatile int g_spins;

void tr_qemu_fault_report(const char *what, uint32_t pc)
{
    (void)pc;
    if (what[0] == 'n' && tr_qemu_watchdog_fired() && g_spins > 0) {
        tr_qemu_write0("watchdog: ok (nmi after the feeding stopped)\n");
        tr_qemu_exit(0);
    }
    tr_qemu_write0("watchdog: FAIL unexpected fault\n");
    tr_qemu_exit(1);
}

int main(void)
{
    tr_qemu_watchdog_start(2); /* 2 ms = 2,000,000 instructions */
    for (int i = 0; i < 2000; i++) {
        for (volatile int j = 0; j < 100; j++) { }
        tr_qemu_watchdog_feed();
    }
    for (;;) {
        g_spins++;
    }
}
