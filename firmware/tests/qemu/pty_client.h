/* Host side of a board's serial port in the C tests: open a PTY raw and ask
 * one request at a time with the protocol's own codec. Header-only (static
 * functions) for test programs; define _DEFAULT_SOURCE before any include. */
#ifndef TR_PTY_CLIENT_H
#define TR_PTY_CLIENT_H

#include <fcntl.h>
#include <poll.h>
#include <termios.h>
#include <unistd.h>

#include "proto/tr_device.h"
#include "proto/tr_handlers.h"

/* Largest response frame the client accepts. */
#define TR_PTY_RAW_MAX 4096u

/* Opens a serial device or PTY in raw mode; -1 on failure. */
static int tr_pty_open(const char *path)
{
    struct termios t;
    int fd = open(path, O_RDWR | O_NOCTTY);

    if (fd >= 0 && tcgetattr(fd, &t) == 0) {
        cfmakeraw(&t);
        tcsetattr(fd, TCSANOW, &t);
    }
    return fd;
}

/* Sends one request (body may be NULL: an empty map) and waits up to wait_ms
 * for the response with its seq; raw holds TR_PTY_RAW_MAX bytes and keeps the
 * response, *b indexes its body. 1 when answered. */
static int tr_pty_ask(int fd, uint8_t type, uint16_t seq, const uint8_t *body, size_t body_len, int wait_ms,
               tr_frame *resp, uint8_t *raw, tr_body *b)
{
    tr_frame f = {1, type, seq, 0, body, body_len};
    static uint8_t w[TR_FRAME_WIRE_MAX(TR_PTY_RAW_MAX)];
    uint8_t in[4096];
    size_t wl, used, pos;
    tr_frame_rx rx;
    tr_frame_event ev;
    int waited = 0;

    if (tr_frame_encode(&f, w, sizeof w, &wl) != TR_OK || write(fd, w, wl) != (ssize_t)wl) {
        return 0;
    }
    tr_frame_rx_init(&rx, raw, TR_PTY_RAW_MAX);
    while (waited < wait_ms) {
        struct pollfd p = {fd, POLLIN, 0};
        ssize_t n;

        if (poll(&p, 1, 50) <= 0) {
            waited += 50;
            continue;
        }
        n = read(fd, in, sizeof in);
        for (pos = 0; n > 0 && pos < (size_t)n; pos += used) {
            tr_frame_feed(&rx, in + pos, (size_t)n - pos, &used, &ev);
            if (ev == TR_FRAME_OK && tr_frame_parse(rx.buf, rx.len, resp) == TR_OK &&
                (resp->flags & TR_FRAME_FLAG_RESP) && resp->seq == seq) {
                return tr_body_parse(b, resp->body, resp->body_len) == TR_OK;
            }
        }
    }
    return 0;
}

#endif
