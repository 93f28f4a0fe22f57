/* tinyrig-twin: the device main loop on Linux, speaking the protocol over a
 * pseudo-terminal. Prints "PTY <slave path>" on stdout once it is ready.
 *   tinyrig-twin [--link PATH] [--board NAME] [--arena BYTES] [--window N]
 *                [--max-frame N] [--boot-id N] [--quiet] */
#define _DEFAULT_SOURCE
#define _XOPEN_SOURCE 700
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "twin_board.h"

static volatile sig_atomic_t g_stop;

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: tinyrig-twin [--link PATH] [--board NAME] [--arena BYTES] [--window N]\n"
            "                    [--max-frame N] [--boot-id N] [--quiet]\n");
}

static int parse_u32(const char *s, uint32_t *v)
{
    char *end;
    unsigned long long x;

    errno = 0;
    x = strtoull(s, &end, 0);
    if (errno != 0 || *end != '\0' || end == s || x > 0xFFFFFFFFull) {
        return -1;
    }
    *v = (uint32_t)x;
    return 0;
}

int main(int argc, char **argv)
{
    static tr_device dev;
    tr_device_storage store = {{0}, {0}, &dev};
    tr_device_config *cfg = &store.cfg;
    tr_device_mem *mem = &store.mem;
    tr_port port;
    const char *link_path = NULL, *board = "host-twin";
    uint32_t boot_id = 0;
    int boot_given = 0, quiet = 0, master, slave, i;
    char *slave_path;
    struct termios tio;
    struct sigaction sa;
    uint8_t buf[4096];
    size_t total;

    cfg->max_frame = 4096;
    cfg->window = 8;
    cfg->sample_slots = 256;
    cfg->sample_bytes_max = 4096;
    cfg->blob_max = 512u * 1024u;
    cfg->arena_bytes = 1024u * 1024u;
    cfg->max_train = 64;
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        int bad = 0;

        if (strcmp(a, "--quiet") == 0) {
            quiet = 1;
            continue;
        }
        if (v == NULL) {
            usage();
            return 2;
        }
        if (strcmp(a, "--link") == 0) {
            link_path = v;
        } else if (strcmp(a, "--board") == 0) {
            board = v;
        } else if (strcmp(a, "--arena") == 0) {
            bad = parse_u32(v, &cfg->arena_bytes);
        } else if (strcmp(a, "--window") == 0) {
            bad = parse_u32(v, &cfg->window);
        } else if (strcmp(a, "--max-frame") == 0) {
            bad = parse_u32(v, &cfg->max_frame);
        } else if (strcmp(a, "--boot-id") == 0) {
            bad = parse_u32(v, &boot_id);
            boot_given = 1;
        } else {
            bad = 1;
        }
        if (bad) {
            usage();
            return 2;
        }
        i++;
    }
    if (cfg->max_frame < 128u || cfg->max_frame > 65535u || cfg->window == 0u || cfg->arena_bytes < 64u) {
        fprintf(stderr, "tinyrig-twin: --max-frame must be 128..65535, --window >= 1, --arena >= 64\n");
        return 2;
    }
    cfg->arena_bytes &= ~7u;
    cfg->sample_bytes_max = cfg->max_frame;   /* with no model a sample may fill a frame */

    master = posix_openpt(O_RDWR | O_NOCTTY);
    if (master < 0 || grantpt(master) != 0 || unlockpt(master) != 0 ||
        (slave_path = ptsname(master)) == NULL) {
        perror("tinyrig-twin: pty");
        return 1;
    }
    /* Our own slave fd keeps the master usable (no EIO/POLLHUP) while the
     * host closes and reopens the port; the line stays raw. */
    slave = open(slave_path, O_RDWR | O_NOCTTY);
    if (slave < 0 || tcgetattr(slave, &tio) != 0) {
        perror("tinyrig-twin: slave");
        return 1;
    }
    cfmakeraw(&tio);
    tcsetattr(slave, TCSANOW, &tio);
    fcntl(master, F_SETFL, fcntl(master, F_GETFL) | O_NONBLOCK);

    mem->rx = malloc(cfg->max_frame);
    mem->body = malloc(cfg->max_frame);
    mem->wire = malloc(TR_FRAME_WIRE_MAX(cfg->max_frame));
    mem->samples = malloc((size_t)cfg->sample_slots * cfg->sample_bytes_max);
    mem->sample_meta = calloc(cfg->sample_slots, sizeof(tr_sample_meta));
    mem->staging = malloc(cfg->blob_max);
    mem->granules = calloc(TR_DEVICE_BITMAP_BYTES(cfg->blob_max), 1);
    mem->arena = malloc(cfg->arena_bytes);
    mem->records = calloc(cfg->max_train, sizeof(tr_train_record));
    if (!mem->rx || !mem->body || !mem->wire || !mem->samples || !mem->sample_meta || !mem->staging ||
        !mem->granules || !mem->arena || !mem->records) {
        fprintf(stderr, "tinyrig-twin: out of memory\n");
        return 1;
    }
    total = tr_device_storage_bytes(cfg);
    tr_twin_port(&port, master, board, total > 0xFFFFFFFFu ? 0xFFFFFFFFu : (uint32_t)total,
                 boot_given, boot_id);

    if (link_path != NULL) {
        unlink(link_path);
        if (symlink(slave_path, link_path) != 0) {
            perror("tinyrig-twin: --link");
            return 1;
        }
    }
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    /* A tx error (nobody reading the BOOT event) is not fatal; bad sizes are. */
    if (tr_port_start(&store, &port) == TR_ERR_ARG) {
        fprintf(stderr, "tinyrig-twin: bad configuration\n");
        return 1;
    }
    printf("PTY %s\n", slave_path);
    fflush(stdout);
    if (!quiet) {
        fprintf(stderr, "tinyrig-twin: board %s boot_id %u on %s\n", board, (unsigned)port.boot_id,
                slave_path);
    }

    while (!g_stop) {
        struct pollfd pfd;
        ssize_t n;
        int r;

        pfd.fd = master;
        pfd.events = POLLIN;
        pfd.revents = 0;
        r = poll(&pfd, 1, 250);
        if (r < 0) {
            if (errno == EINTR) {
                continue;
            }
            perror("tinyrig-twin: poll");
            break;
        }
        if (r == 0 || (pfd.revents & POLLIN) == 0) {
            continue;
        }
        n = read(master, buf, sizeof buf);
        if (n <= 0) {
            if (n < 0 && (errno == EAGAIN || errno == EINTR || errno == EIO)) {
                continue;
            }
            continue;
        }
        tr_device_feed(&dev, buf, (size_t)n);   /* tx to nobody is not an error */
        if (tr_twin_reset_pending()) {
            port.boot_id = tr_twin_boot_id();
            if (!quiet) {
                fprintf(stderr, "tinyrig-twin: reset, boot_id %u\n", (unsigned)port.boot_id);
            }
            tr_port_start(&store, &port);
        }
    }
    if (link_path != NULL) {
        unlink(link_path);
    }
    close(slave);
    close(master);
    return 0;
}
