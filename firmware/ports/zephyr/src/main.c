/* tinyrig-board on Zephyr: the protocol dispatcher and the training engine
 * (firmware/core) on the board's USB serial, with every buffer static and
 * sized by Kconfig (defaults per board from firmware/boards.json). */
#include <zephyr/kernel.h>
#include <zephyr/devicetree.h>
#include <zephyr/drivers/gpio.h>
#include <zephyr/drivers/hwinfo.h>
#include <zephyr/linker/section_tags.h>
#include <zephyr/sys/reboot.h>
#include <string.h>

/* F7: the staging blob in the DTCM, so the arena fits the main SRAM. */
#if DT_NODE_HAS_STATUS_OKAY(DT_CHOSEN(zephyr_dtcm))
#define TR_STORAGE_STAGING_ATTR __dtcm_bss_section
#endif
#include "port.h"

#ifndef TR_BUILD_ID
#define TR_BUILD_ID "0.1.0+unknown-zephyr"
#endif

/* The CPU clock from the devicetree (cpu0, the STM32 RCC, the RP2040's
 * clk_sys), the nRF52's fixed 64 MHz, else the system timer's rate (mps2). */
#if DT_NODE_HAS_PROP(DT_PATH(cpus, cpu_0), clock_frequency)
#define CPU_HZ DT_PROP(DT_PATH(cpus, cpu_0), clock_frequency)
#elif DT_NODE_HAS_PROP(DT_NODELABEL(rcc), clock_frequency)
#define CPU_HZ DT_PROP(DT_NODELABEL(rcc), clock_frequency)
#elif DT_NODE_HAS_PROP(DT_NODELABEL(clk_sys), clock_frequency)
#define CPU_HZ DT_PROP(DT_NODELABEL(clk_sys), clock_frequency)
#elif defined(CONFIG_SOC_SERIES_NRF52X)
#define CPU_HZ 64000000u   /* the nRF52 core runs from the 64 MHz HFCLK */
#else
#define CPU_HZ CONFIG_SYS_CLOCK_HW_CYCLES_PER_SEC
#endif
/* SRAM of the board: the chosen SRAM plus a DTCM where there is one. */
#if DT_NODE_HAS_STATUS_OKAY(DT_CHOSEN(zephyr_dtcm))
#define RAM_BYTES (DT_REG_SIZE(DT_CHOSEN(zephyr_sram)) + DT_REG_SIZE(DT_CHOSEN(zephyr_dtcm)))
#else
#define RAM_BYTES DT_REG_SIZE(DT_CHOSEN(zephyr_sram))
#endif

#if defined(CONFIG_CPU_CORTEX_M0PLUS)
#define CPU_NAME "cortex-m0plus"
#elif defined(CONFIG_CPU_CORTEX_M4)
#define CPU_NAME "cortex-m4"
#elif defined(CONFIG_CPU_CORTEX_M7)
#define CPU_NAME "cortex-m7"
#else
#define CPU_NAME "arm"
#endif

TR_DEVICE_STORAGE(g_store, CONFIG_TINYRIG_MAX_FRAME, CONFIG_TINYRIG_WINDOW, CONFIG_TINYRIG_SAMPLE_SLOTS,
                  CONFIG_TINYRIG_SAMPLE_BYTES_MAX, CONFIG_TINYRIG_BLOB_MAX, CONFIG_TINYRIG_ARENA_BYTES,
                  CONFIG_TINYRIG_MAX_TRAIN);

static volatile int g_reset_pending;
static __noinit uint32_t g_boot_count;

#ifdef CONFIG_TINYRIG_MARKER
static const struct gpio_dt_spec g_marker = GPIO_DT_SPEC_GET(DT_ALIAS(tinyrig_marker), gpios);

static void marker(int high)
{
    gpio_pin_set_dt(&g_marker, high);
}
#endif

static tr_status board_reset(void)
{
    g_reset_pending = 1;   /* the main loop reboots once the response is out */
    return TR_OK;
}

static uint32_t stack_peak(void)
{
    size_t unused = 0;

    if (k_thread_stack_space_get(k_current_get(), &unused) != 0) {
        return 0;
    }
    return (uint32_t)(CONFIG_MAIN_STACK_SIZE - unused);
}

static uint32_t mix32(uint32_t x)
{
    x ^= x >> 16;
    x *= 0x7feb352dU;
    x ^= x >> 15;
    x *= 0x846ca68bU;
    x ^= x >> 16;
    return x;
}

/* A fresh id each boot: a count kept across warm reboots and the time the
 * board took to get here, mixed with the device id, or with the rig's word
 * where it is set: under QEMU -icount every process boots in the same time
 * with the same count, so only the rig's fresh word tells two processes apart. */
static uint32_t boot_id(void)
{
    uint32_t seed = tr_rig_word(CONFIG_TINYRIG_BOOT_ID_ADDR);
    uint32_t id;

    if (seed == 0u) {
        uint8_t uid[8] = {0};

        (void)hwinfo_get_device_id(uid, sizeof uid);
        seed = (uint32_t)uid[0] | ((uint32_t)uid[1] << 8) | ((uint32_t)uid[2] << 16) |
               ((uint32_t)uid[3] << 24);
    }
    g_boot_count++;
    id = mix32(seed ^ mix32(g_boot_count) ^ k_cycle_get_32());
    return id != 0u ? id : 1u;
}

/* Static RAM of the image: the linker's data and bss. */
extern char __data_region_start[], __bss_end[];

int main(void)
{
    static uint8_t buf[256];
    tr_port port;
    int hung = tr_watchdog_caused_reset();

    tr_counter_init();
    if (tr_link_init() != 0) {
        return 1;
    }
#ifdef CONFIG_TINYRIG_MARKER
    (void)gpio_pin_configure_dt(&g_marker, GPIO_OUTPUT_INACTIVE);
#endif
    memset(&port, 0, sizeof port);
    port.tx = tr_link_tx;
    port.counter = tr_counter_read;
    port.stack_peak = stack_peak;
    port.reset = board_reset;
    port.slots = tr_flash_slots();
#ifdef CONFIG_TINYRIG_MARKER
    port.step_marker = marker;
#endif
    port.info.board = CONFIG_BOARD_TARGET;
    port.info.build = TR_BUILD_ID;
    port.info.cpu = CPU_NAME;
    port.info.counter = tr_counter_unit();
    port.info.clock_hz = CPU_HZ;
    port.info.ram_bytes = RAM_BYTES;
    port.info.static_ram = (uint32_t)(__bss_end - __data_region_start);
    port.info.stack_bytes = CONFIG_MAIN_STACK_SIZE;
    port.info.watchdog_ms = tr_watchdog_start();
    port.boot_id = boot_id();
    if (tr_port_start(&g_store, &port) == TR_ERR_ARG) {
        return 2;
    }
    if (hung) {
        (void)tr_device_event(g_store.dev, TR_EVENT_WATCHDOG, "main loop hung: watchdog");
    }
    for (;;) {
        size_t n = tr_link_read(buf, sizeof buf, tr_watchdog_idle_begin());

        tr_watchdog_idle_end();
        if (n > 0u) {
            (void)tr_device_feed(g_store.dev, buf, n);
            tr_watchdog_feed();
        }
        if (g_reset_pending) {
            k_sleep(K_MSEC(20));   /* the RESET answer leaves the UART first */
            sys_reboot(SYS_REBOOT_WARM);
        }
    }
}
