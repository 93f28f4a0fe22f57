/* tinyrig-board for the QEMU MPS2 stand-ins: the protocol dispatcher and the
 * training engine on the CMSDK UART, with every buffer static and sized for
 * the real board's SRAM (the linker script caps RAM at it). The class comes
 * from -D flags of mk/qemu.mk, whose figures mk/boards.mk has from boards.json. */
#include <string.h>
#include "board/tr_port.h"
#include "qemu_port.h"

#ifndef TR_BUILD_ID
#define TR_BUILD_ID "0.1.0+unknown-qemu"
#endif
#if !defined(TR_QEMU_BOARD) || !defined(TR_QEMU_CPU) || !defined(TR_QEMU_CLOCK_HZ) || \
    !defined(TR_QEMU_RAM_BYTES) || !defined(TR_QEMU_ARENA_BYTES) || !defined(TR_QEMU_MAX_FRAME) || \
    !defined(TR_QEMU_BLOB_MAX) || !defined(TR_QEMU_SAMPLE_BYTES_MAX)
#error "build through mk/qemu.mk: the board's class is defined there (mk/boards.mk)"
#endif

/* Buffers (DESIGN §3: everything static, no allocation). A full window of
 * the largest frames fits the UART ring (qemu_uart.c, 16 KiB). */
#define MAX_FRAME TR_QEMU_MAX_FRAME
#define WINDOW 4u
#define SAMPLE_SLOTS 40u
#define SAMPLE_BYTES_MAX TR_QEMU_SAMPLE_BYTES_MAX
#define BLOB_MAX TR_QEMU_BLOB_MAX
#define MAX_TRAIN 32u

/* The rig writes a fresh random boot id here (QEMU -device loader); a board
 * started without one derives it from the instruction counter. */
#define BOOT_ID_ADDR 0x003FFF00u
/* A main loop stuck this long (virtual time) is a hung board. The longest
 * legitimate turn, a TRAIN of MAX_TRAIN steps of the largest model that fits,
 * is a few seconds of virtual time. The rig may write another period (ms)
 * at WATCHDOG_MS_ADDR (its --watchdog-ms, for tests); 0 keeps this one. */
#define WATCHDOG_MS 30000u
#define WATCHDOG_MS_ADDR 0x003FFF04u

TR_DEVICE_STORAGE(g_store, MAX_FRAME, WINDOW, SAMPLE_SLOTS, SAMPLE_BYTES_MAX, BLOB_MAX,
                  TR_QEMU_ARENA_BYTES, MAX_TRAIN);
static int g_dev_ready;
static volatile int g_reset_pending;
static uint32_t g_boot_id;
static uint32_t g_watchdog_ms;

static tr_status board_tx(void *ctx, const uint8_t *bytes, size_t len)
{
    (void)ctx;
    tr_qemu_uart_write(bytes, len);
    return TR_OK;
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

static uint32_t board_boot_id(void)
{
    uint32_t id;
    if (g_boot_id == 0u) {
        id = *(volatile const uint32_t *)BOOT_ID_ADDR;
    } else {
        /* a RESET: the time it arrives depends on the host, so does the id */
        id = mix32(g_boot_id ^ (uint32_t)tr_qemu_instructions());
    }
    if (id == 0u) {
        id = mix32((uint32_t)tr_qemu_instructions() | 1u);
    }
    g_boot_id = id;
    return id;
}

static tr_status board_reset(void)
{
    g_reset_pending = 1; /* the main loop starts the device afresh */
    return TR_OK;
}

void tr_qemu_fault_report(const char *what, uint32_t pc)
{
    static const char hex[] = "0123456789abcdef";
    char text[48];
    size_t n = 0;
    while (*what != '\0' && n < 24u) {
        text[n++] = *what++;
    }
    memcpy(text + n, " pc=0x", 6);
    n += 6;
    for (int shift = 28; shift >= 0; shift -= 4) {
        text[n++] = hex[(pc >> shift) & 0xFu];
    }
    text[n] = '\0';
    if (g_dev_ready) {
        int hung = tr_qemu_watchdog_fired();
        (void)tr_device_event(g_store.dev, hung ? TR_EVENT_WATCHDOG : TR_EVENT_FAULT,
                              hung ? "main loop hung: watchdog" : text);
    }
}

static tr_status start_device(void)
{
    tr_port port;

    memset(&port, 0, sizeof port);
    port.tx = board_tx;
    port.counter = tr_qemu_instructions;
    port.stack_peak = tr_qemu_stack_peak;
    port.reset = board_reset;
    port.info.board = TR_QEMU_BOARD;
    port.info.build = TR_BUILD_ID;
    port.info.cpu = TR_QEMU_CPU;
    port.info.counter = "instructions";
    port.info.clock_hz = TR_QEMU_CLOCK_HZ;
    port.info.ram_bytes = TR_QEMU_RAM_BYTES;
    port.info.static_ram = tr_qemu_static_ram();
    port.info.stack_bytes = tr_qemu_stack_bytes();
    port.info.watchdog_ms = g_watchdog_ms;
    port.boot_id = board_boot_id();
    return tr_port_start(&g_store, &port);
}

static uint32_t watchdog_period_ms(void)
{
    uint32_t ms = *(volatile const uint32_t *)WATCHDOG_MS_ADDR;
    return (ms == 0u || ms > TR_QEMU_WATCHDOG_MS_MAX) ? WATCHDOG_MS : ms;
}

int main(void)
{
    static uint8_t buf[256];
    tr_qemu_counter_init();
    tr_qemu_uart_init();
    g_watchdog_ms = watchdog_period_ms();
    tr_qemu_watchdog_start(g_watchdog_ms);
    if (start_device() != TR_OK) {
        tr_qemu_write0("tinyrig-board: bad device configuration\n");
        return 2;
    }
    g_dev_ready = 1;
    for (;;) {
        size_t n = tr_qemu_uart_read(buf, sizeof buf);
        if (n == 0u) {
            /* the watchdog keeps running: an expiry while asleep is cleared by the NMI handler */
            tr_qemu_idle_wait(tr_qemu_uart_pending);
            continue;
        }
        tr_qemu_watchdog_feed();
        /* No interrupt inside the work: a byte of the host's next pipelined
         * request would otherwise add its handler to a step's count. QEMU
         * holds further bytes in the UART (and the PTY) until we unmask, so
         * nothing is lost; the watchdog's NMI is not masked. */
        __asm__ volatile("cpsid i" ::: "memory");
        (void)tr_device_feed(g_store.dev, buf, n);
        __asm__ volatile("cpsie i" ::: "memory");
        if (g_reset_pending) {
            g_reset_pending = 0;
            g_dev_ready = 0;
            (void)start_device();
            g_dev_ready = 1;
        }
    }
}
