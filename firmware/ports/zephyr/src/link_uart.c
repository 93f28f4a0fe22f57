/* The protocol's link: the UART of devicetree chosen tinyrig,uart, nothing
 * else writing to it. Received bytes go into a ring that holds a full
 * window of frames, so a host pipelining requests during a long TRAIN loses
 * nothing. Async API (DMA on the nRF UARTE and STM32 with dmas) when
 * CONFIG_TINYRIG_UART_ASYNC, else interrupt-driven (CDC-ACM, CMSDK). */
#include <zephyr/device.h>
#include <zephyr/drivers/uart.h>
#include <zephyr/linker/section_tags.h>
#include <zephyr/sys/ring_buffer.h>
#include <string.h>

#include "port.h"

#define LINK_NODE DT_CHOSEN(tinyrig_uart)
BUILD_ASSERT(DT_NODE_EXISTS(LINK_NODE), "the board's overlay must choose tinyrig,uart");
BUILD_ASSERT(CONFIG_TINYRIG_RX_BUF_BYTES >=
                 CONFIG_TINYRIG_WINDOW * TR_FRAME_WIRE_MAX(CONFIG_TINYRIG_MAX_FRAME),
             "the receive ring must hold a full window of frames");

static const struct device *const g_uart = DEVICE_DT_GET(LINK_NODE);
RING_BUF_DECLARE(g_ring, CONFIG_TINYRIG_RX_BUF_BYTES);
static K_SEM_DEFINE(g_rx_ready, 0, 1);
static uint32_t g_overruns;

static void ring_put(const uint8_t *p, size_t n)
{
    uint32_t put = ring_buf_put(&g_ring, p, (uint32_t)n);

    g_overruns += (uint32_t)n - put;
    k_sem_give(&g_rx_ready);
}

#ifdef CONFIG_TINYRIG_UART_ASYNC
/* DMA buffers: outside the D-cache where the SoC has one (F7: __nocache). */
#define RX_TIMEOUT_US 100
static uint8_t g_rx_chunk[2][CONFIG_TINYRIG_RX_CHUNK_BYTES] __nocache;
static uint8_t g_tx_buf[TR_FRAME_WIRE_MAX(CONFIG_TINYRIG_MAX_FRAME)] __nocache;
static uint8_t g_next;
static K_SEM_DEFINE(g_tx_done, 0, 1);

static void on_uart(const struct device *dev, struct uart_event *evt, void *user)
{
    (void)user;
    switch (evt->type) {
    case UART_TX_DONE:
    case UART_TX_ABORTED:
        k_sem_give(&g_tx_done);
        break;
    case UART_RX_RDY:
        ring_put(evt->data.rx.buf + evt->data.rx.offset, evt->data.rx.len);
        break;
    case UART_RX_BUF_REQUEST:
        (void)uart_rx_buf_rsp(dev, g_rx_chunk[g_next], sizeof g_rx_chunk[0]);
        g_next ^= 1u;
        break;
    case UART_RX_DISABLED:
        /* after a line error: receive again */
        (void)uart_rx_enable(dev, g_rx_chunk[g_next], sizeof g_rx_chunk[0], RX_TIMEOUT_US);
        g_next ^= 1u;
        break;
    default:
        break;
    }
}

int tr_link_init(void)
{
    int err;

    if (!device_is_ready(g_uart)) {
        return -ENODEV;
    }
    err = uart_callback_set(g_uart, on_uart, NULL);
    if (err == 0) {
        err = uart_rx_enable(g_uart, g_rx_chunk[0], sizeof g_rx_chunk[0], RX_TIMEOUT_US);
        g_next = 1;
    }
    return err;
}

tr_status tr_link_tx(void *ctx, const uint8_t *bytes, size_t len)
{
    (void)ctx;
    while (len > 0u) {
        size_t n = len < sizeof g_tx_buf ? len : sizeof g_tx_buf;

        memcpy(g_tx_buf, bytes, n);
        if (uart_tx(g_uart, g_tx_buf, n, SYS_FOREVER_US) != 0) {
            return TR_ERR_STATE;
        }
        (void)k_sem_take(&g_tx_done, K_FOREVER);
        bytes += n;
        len -= n;
    }
    return TR_OK;
}
#else
static void on_uart_irq(const struct device *dev, void *user)
{
    uint8_t buf[64];
    int n;

    (void)user;
    if (!uart_irq_update(dev)) {
        return;
    }
    while (uart_irq_rx_ready(dev) && (n = uart_fifo_read(dev, buf, sizeof buf)) > 0) {
        ring_put(buf, (size_t)n);
    }
}

int tr_link_init(void)
{
    int err;

    if (!device_is_ready(g_uart)) {
        return -ENODEV;
    }
    err = uart_irq_callback_user_data_set(g_uart, on_uart_irq, NULL);
    if (err == 0) {
        unsigned int key = irq_lock();
        unsigned char c;

        uart_irq_rx_enable(g_uart);
        /* A byte that arrived before the interrupt was enabled raises none
         * (the CMSDK UART holds it and takes no more): take it by polling. */
        while (uart_poll_in(g_uart, &c) == 0) {
            ring_put(&c, 1);
        }
        irq_unlock(key);
    }
    return err;
}

tr_status tr_link_tx(void *ctx, const uint8_t *bytes, size_t len)
{
    (void)ctx;
    for (size_t i = 0; i < len; i++) {
        uart_poll_out(g_uart, bytes[i]);
    }
    return TR_OK;
}
#endif

size_t tr_link_read(uint8_t *out, size_t cap, k_timeout_t wait)
{
    unsigned int key = irq_lock();
    size_t n = ring_buf_get(&g_ring, out, (uint32_t)cap);

    irq_unlock(key);
    if (n == 0u && k_sem_take(&g_rx_ready, wait) == 0) {
        key = irq_lock();
        n = ring_buf_get(&g_ring, out, (uint32_t)cap);
        irq_unlock(key);
    }
    return n;
}

uint32_t tr_link_overruns(void)
{
    return g_overruns;
}
