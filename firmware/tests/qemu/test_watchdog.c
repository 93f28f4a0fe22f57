/* Watchdog test, through the idle wait the board's main loop uses:
 * 1. fed, the board keeps running;
 * 2. asleep in tr_qemu_idle_wait() for more than two periods, the board does
 *    not fault (each expiry is cleared by the NMI handler);
 * 3. then left alone (a hang after the long idle), the NMI fires and the
 *    handler reports it (the board's supervisor then restarts it). */
#include "qemu_port.h"

#define PERIOD_MS 2u /* 2,000,000 instructions */
#define IDLE_EXPIRIES 3u

static volatile int g_phase;
static volatile int g_spins;

static void say(const char *s)
{
    tr_qemu_write0(s);
}

void tr_qemu_fault_report(const char *what, uint32_t pc)
{
    (void)pc;
    if (what[0] == 'n' && tr_qemu_watchdog_fired() && g_phase == 3 && g_spins > 0) {
        say("watchdog: ok (no fault while idle past two periods; nmi once the loop hung)\n");
        tr_qemu_exit(0);
    }
    say(g_phase == 2 ? "watchdog: FAIL nmi reported as a fault while idle\n"
                     : g_phase == 1 ? "watchdog: FAIL nmi while fed\n"
                                    : "watchdog: FAIL unexpected fault\n");
    tr_qemu_exit(1);
}

/* The idle wait's condition: no byte arrives here (-serial none); the board
 * wakes only for the watchdog's expiries. */
static int idled_long_enough(void)
{
    return tr_qemu_watchdog_idle_expiries() >= IDLE_EXPIRIES;
}

int main(void)
{
    uint64_t t0, slept;

    tr_qemu_counter_init();
    tr_qemu_watchdog_start(PERIOD_MS);
    g_phase = 1;
    for (int i = 0; i < 2000; i++) {
        for (volatile int j = 0; j < 100; j++) { }
        tr_qemu_watchdog_feed();
    }
    g_phase = 2;
    t0 = tr_qemu_instructions();
    tr_qemu_idle_wait(idled_long_enough);
    slept = tr_qemu_instructions() - t0;
    if (slept < 2u * PERIOD_MS * 1000000u) {
        say("watchdog: FAIL the idle wait returned before two periods\n");
        return 1;
    }
    g_phase = 3;
    for (;;) {
        g_spins++;
    }
}
