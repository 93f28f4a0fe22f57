/* The board's hardware watchdog (devicetree alias watchdog0) through the
 * Zephyr watchdog API, with the bare-metal QEMU port's semantics: started at
 * boot and never stopped, fed by the main loop only, so a request that keeps
 * the loop away for a period resets the board; the loop's idle wait wakes
 * every quarter period to feed it, so an idle board never resets. After a
 * watchdog reset the board says so (EVENT WATCHDOG, after EVENT BOOT).
 *
 * Where the driver calls back before the reset (the CMSDK watchdog's NMI
 * under QEMU, the nRF52840's WDT interrupt), the callback marks the reset in
 * RAM that survives it and reboots at once; the STM32 IWDG and the RP2040's
 * reset by themselves and hwinfo's reset cause tells. Under QEMU an expiry
 * that finds the loop in its idle wait is fed instead, as the bare-metal
 * port does: a QEMU whose host starved it past the period lets the
 * watchdog's deadline and the wake-up land together. */
#include "port.h"

#ifdef CONFIG_TINYRIG_WATCHDOG
#include <zephyr/drivers/hwinfo.h>
#include <zephyr/drivers/watchdog.h>
#include <zephyr/linker/section_tags.h>
#include <zephyr/sys/reboot.h>

#define WDT_NODE DT_ALIAS(watchdog0)
#define HUNG_MARK 0x57444f47u /* "WDOG" */

/* The CMSDK watchdog counts a 32-bit LOAD at 25 MHz: at most 171 s. */
#if DT_NODE_HAS_COMPAT(WDT_NODE, arm_cmsdk_watchdog)
#define PERIOD_MAX_MS 171000u
#else
#define PERIOD_MAX_MS 0xffffffffu
#endif

static const struct device *const g_wdt = DEVICE_DT_GET(WDT_NODE);
static int g_channel = -1;
static uint32_t g_period_ms;
static volatile int g_idle;
static __noinit uint32_t g_hung_mark;

static void on_expiry(const struct device *dev, int channel)
{
    if (g_idle) {
        (void)wdt_feed(dev, channel);
        return;
    }
    g_hung_mark = HUNG_MARK;
    sys_reboot(SYS_REBOOT_COLD);
}

/* The period: Kconfig's, or the rig's word when the board names one. */
static uint32_t period_ms(void)
{
    uint32_t word = tr_rig_word(CONFIG_TINYRIG_WATCHDOG_MS_ADDR);

    return word != 0u && word <= PERIOD_MAX_MS ? word : CONFIG_TINYRIG_WATCHDOG_MS;
}

uint32_t tr_watchdog_start(void)
{
    struct wdt_timeout_cfg cfg = {
        .window = {.min = 0, .max = 0},
        .callback = on_expiry,
        .flags = WDT_FLAG_RESET_SOC,
    };

    if (!device_is_ready(g_wdt)) {
        return 0;
    }
    g_period_ms = period_ms();
    cfg.window.max = g_period_ms;
    g_channel = wdt_install_timeout(g_wdt, &cfg);
    if (g_channel == -ENOTSUP) {
        /* no early-warning callback (STM32 IWDG, RP2040): the reset cause tells */
        cfg.callback = NULL;
        g_channel = wdt_install_timeout(g_wdt, &cfg);
    }
    if (g_channel < 0 || wdt_setup(g_wdt, WDT_OPT_PAUSE_HALTED_BY_DBG) != 0) {
        g_channel = -1;
        return 0;
    }
    return g_period_ms;
}

void tr_watchdog_feed(void)
{
    if (g_channel >= 0) {
        (void)wdt_feed(g_wdt, g_channel);
    }
}

k_timeout_t tr_watchdog_idle_begin(void)
{
    if (g_channel < 0) {
        return K_FOREVER;
    }
    g_idle = 1;
    return K_MSEC(g_period_ms / 4u);
}

void tr_watchdog_idle_end(void)
{
    g_idle = 0;
    tr_watchdog_feed(); /* the work that follows gets a whole period */
}

int tr_watchdog_caused_reset(void)
{
    uint32_t cause = 0;
    int hung = g_hung_mark == HUNG_MARK;

    g_hung_mark = 0;
    if (hwinfo_get_reset_cause(&cause) == 0) {
        hung |= (cause & RESET_WATCHDOG) != 0u;
        (void)hwinfo_clear_reset_cause();
    }
    return hung;
}
#else
uint32_t tr_watchdog_start(void)
{
    return 0;
}

void tr_watchdog_feed(void)
{
}

k_timeout_t tr_watchdog_idle_begin(void)
{
    return K_FOREVER;
}

void tr_watchdog_idle_end(void)
{
}

int tr_watchdog_caused_reset(void)
{
    return 0;
}
#endif
