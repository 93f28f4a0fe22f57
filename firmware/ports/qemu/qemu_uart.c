/* CMSDK APB UART0 of the MPS2 machines (0x40004000, RX interrupt IRQ 0):
 * every received byte goes into a ring from the interrupt, so a bulk transfer
 * arriving while the engine trains loses nothing; the main loop sleeps in WFI
 * while the ring is empty (tr_qemu_idle_wait), so an idle board costs the host
 * no CPU. */
#include "qemu_port.h"

#define UART0_BASE 0x40004000u
#define UART_DATA (*(volatile uint32_t *)(UART0_BASE + 0x00u))
#define UART_STATE (*(volatile uint32_t *)(UART0_BASE + 0x04u))
#define UART_CTRL (*(volatile uint32_t *)(UART0_BASE + 0x08u))
#define UART_INTCLEAR (*(volatile uint32_t *)(UART0_BASE + 0x0Cu))
#define UART_BAUDDIV (*(volatile uint32_t *)(UART0_BASE + 0x10u))
#define STATE_TX_FULL 0x1u
#define STATE_RX_FULL 0x2u
#define CTRL_TX_EN 0x1u
#define CTRL_RX_EN 0x2u
#define CTRL_RX_INT_EN 0x8u
#define INT_RX 0x2u
#define NVIC_ISER0 (*(volatile uint32_t *)0xE000E100u)
#define UART0_RX_IRQ 0u

/* Larger than a full window of the largest frames (see qemu_board.c). */
#define RING_BYTES 16384u
static uint8_t g_ring[RING_BYTES];
static volatile uint32_t g_head; /* written by the interrupt */
static volatile uint32_t g_tail; /* written by the main loop */
static volatile uint32_t g_overruns;

void tr_qemu_uart0_rx_handler(void)
{
    /* Clear first, then drain: a byte landing after the last check raises the
     * interrupt again. (Clearing after the drain could lose that interrupt
     * with the byte still held, and the UART would take no more.) */
    UART_INTCLEAR = INT_RX;
    while (UART_STATE & STATE_RX_FULL) {
        uint8_t b = (uint8_t)UART_DATA;
        uint32_t h = g_head;
        if (h - g_tail < RING_BYTES) {
            g_ring[h % RING_BYTES] = b;
            g_head = h + 1u;
        } else {
            g_overruns++;
        }
    }
}

void tr_qemu_uart_init(void)
{
    g_head = g_tail = 0u;
    UART_BAUDDIV = 16u; /* the emulated UART refuses to run below 16 */
    UART_CTRL = CTRL_TX_EN | CTRL_RX_EN | CTRL_RX_INT_EN;
    NVIC_ISER0 = 1u << UART0_RX_IRQ;
    __asm__ volatile("cpsie i" ::: "memory");
}

void tr_qemu_uart_write(const uint8_t *bytes, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        while (UART_STATE & STATE_TX_FULL) { }
        UART_DATA = bytes[i];
    }
}

size_t tr_qemu_uart_read(uint8_t *out, size_t cap)
{
    uint32_t t = g_tail;
    uint32_t avail = g_head - t;
    size_t n = avail < cap ? avail : cap;
    for (size_t i = 0; i < n; i++) {
        out[i] = g_ring[(t + i) % RING_BYTES];
    }
    g_tail = t + (uint32_t)n;
    return n;
}

int tr_qemu_uart_pending(void)
{
    return g_head != g_tail;
}

uint32_t tr_qemu_uart_overruns(void)
{
    return g_overruns;
}
