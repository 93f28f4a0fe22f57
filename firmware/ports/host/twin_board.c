/* The host twin's port (board/tr_port.h): a PTY master as the UART,
 * CLOCK_MONOTONIC nanoseconds as the step counter. */
#define _XOPEN_SOURCE 700
#include "twin_board.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

static int g_tx_fd = -1;
static char g_board[64] = "host-twin";
static char g_cpu[72] = "x86_64";
static uint32_t g_boot_id;
static int g_boot_id_fixed;
static volatile int g_reset_pending;

#ifndef TR_BUILD_ID
#define TR_BUILD_ID "0.1.0+unknown-host"
#endif

static tr_status twin_tx(void *ctx, const uint8_t *bytes, size_t len);
static uint64_t twin_counter(void);
static tr_status twin_reset(void);

void tr_twin_port(tr_port *port, int tx_fd, const char *board, uint32_t ram_bytes,
                  int boot_id_given, uint32_t boot_id)
{
    tr_board_info *info = &port->info;
    struct utsname u;
    struct rlimit rl;
    FILE *f;
    char line[256];

    g_tx_fd = tx_fd;
    if (board != NULL) {
        snprintf(g_board, sizeof g_board, "%s", board);
    }
    if (uname(&u) == 0) {
        snprintf(g_cpu, sizeof g_cpu, "%s", u.machine);
    }
    memset(port, 0, sizeof *port);
    port->tx = twin_tx;
    port->counter = twin_counter;
    port->stack_peak = NULL;   /* not measured on the host */
    port->reset = twin_reset;
    info->board = g_board;
    info->build = TR_BUILD_ID;
    info->cpu = g_cpu;
    info->counter = "ns";
    info->ram_bytes = ram_bytes;
    info->static_ram = ram_bytes;
    if (getrlimit(RLIMIT_STACK, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
        info->stack_bytes = rl.rlim_cur > 0xFFFFFFFFu ? 0xFFFFFFFFu : (uint32_t)rl.rlim_cur;
    }
    f = fopen("/proc/cpuinfo", "r");
    if (f != NULL) {
        while (fgets(line, sizeof line, f) != NULL) {
            double mhz;
            if (strncmp(line, "cpu MHz", 7) == 0 && sscanf(strchr(line, ':') + 1, "%lf", &mhz) == 1) {
                info->clock_hz = (uint32_t)(mhz * 1e6);
                break;
            }
        }
        fclose(f);
    }
    g_boot_id_fixed = boot_id_given;
    g_boot_id = boot_id;
    port->boot_id = tr_twin_boot_id();
}

static tr_status twin_tx(void *ctx, const uint8_t *bytes, size_t len)
{
    /* A UART with nobody listening drops bytes: so does the twin when the
     * PTY's buffer is full because no host is reading. */
    int stalls = 0;

    (void)ctx;

    while (len > 0u) {
        ssize_t n = write(g_tx_fd, bytes, len);

        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno == EAGAIN) {
                struct timespec ts = {0, 1000000};

                if (++stalls > 200) {   /* ~0.2 s without a reader: drop */
                    return TR_ERR_STATE;
                }
                nanosleep(&ts, NULL);
                continue;
            }
            return TR_ERR_STATE;
        }
        bytes += n;
        len -= (size_t)n;
    }
    return TR_OK;
}

static uint64_t twin_counter(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint32_t tr_twin_boot_id(void)
{
    uint32_t id = 0;
    int fd;

    if (g_boot_id_fixed) {
        return g_boot_id++;   /* given: each reset still changes it */
    }
    fd = open("/dev/urandom", O_RDONLY);
    if (fd >= 0) {
        if (read(fd, &id, sizeof id) != (ssize_t)sizeof id) {
            id = 0;
        }
        close(fd);
    }
    if (id == 0u) {
        id = (uint32_t)twin_counter() ^ (uint32_t)getpid();
    }
    return id;
}

static tr_status twin_reset(void)
{
    g_reset_pending = 1;   /* the main loop restarts the device */
    return TR_OK;
}

int tr_twin_reset_pending(void)
{
    int r = g_reset_pending;

    g_reset_pending = 0;
    return r;
}
