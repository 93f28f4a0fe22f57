/*
 * tinyrig-linksim: a serial line between a device-side tty and a PTY it
 * creates for the host, with the properties a PTY lacks: a line rate
 * (baud/10 bytes/s each way), latency, bit corruption, byte drops and
 * unplugs that look like a USB-serial adapter going away.
 *
 *   tinyrig-linksim --device /dev/pts/7 --baud 115200 [--link /tmp/board0]
 *       [--latency-us N] [--corrupt P] [--drop P] [--seed N]
 *       [--disconnect-every MS --disconnect-for MS]
 *
 * stdout: "PTY <path>" whenever a host PTY is (re)created, "DISCONNECTED" on an
 * unplug, "STATS {json}" on request and at exit.
 * stdin commands: disconnect | reconnect | stats | corrupt P | drop P | latency-us N | baud N
 * signals: SIGUSR1 unplug, SIGUSR2 replug, SIGINT/SIGTERM exit.
 */
#define _GNU_SOURCE

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define RING_BYTES 65536u
#define SEG_MAX 4096u
/* Serialize in slices of about this long so a busy line costs ~1000 writes/s. */
#define SLICE_NS 1000000LL
#define REOPEN_NS 100000000LL

typedef struct {
    uint8_t buf[RING_BYTES];
    size_t head; /* next byte to take */
    size_t len;
} ring_t;

typedef struct {
    size_t len;
    int64_t due_ns;
} seg_t;

/* One direction of the line: bytes read from the source wait in `in`, are
 * serialized at the line rate (faults applied), then sit in `wire` until their
 * latency has passed and the destination accepts them. */
typedef struct {
    const char *name;
    ring_t in;
    ring_t wire;
    seg_t segs[SEG_MAX];
    size_t seg_head, seg_len;
    double tokens;
    int64_t last_ns;
    uint64_t rng;
    uint64_t bytes_in, bytes_out, corrupted, dropped, lost;
    int dst_blocked;
} dir_t;

typedef struct {
    const char *device_path;
    const char *link_path;
    double byte_rate; /* 0: unlimited */
    int64_t latency_ns;
    double corrupt;
    double drop;
    uint64_t seed;
    int64_t disconnect_every_ns;
    int64_t disconnect_for_ns;
} options_t;

static volatile sig_atomic_t g_want_exit;
static volatile sig_atomic_t g_want_unplug;
static volatile sig_atomic_t g_want_replug;

static options_t g_opt;
static dir_t g_h2d, g_d2h;
static int g_dev_fd = -1;
static int g_master_fd = -1;
static int g_slave_hold_fd = -1;
static int g_plugged;
static int64_t g_next_auto_ns;
static int64_t g_next_reopen_ns;
static uint64_t g_disconnects;
static char g_pty_path[256];
static int g_dev_is_link;

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static uint64_t rng_next(uint64_t *s)
{
    /* xorshift64*: fast and good enough to place faults. */
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1DULL;
}

static double rng_unit(uint64_t *s)
{
    return (double)(rng_next(s) >> 11) * (1.0 / 9007199254740992.0);
}

static size_t ring_free(const ring_t *r) { return RING_BYTES - r->len; }

static size_t ring_put(ring_t *r, const uint8_t *src, size_t n)
{
    size_t done = 0;
    if (n > ring_free(r)) n = ring_free(r);
    while (done < n) {
        size_t tail = (r->head + r->len) % RING_BYTES;
        size_t run = RING_BYTES - tail;
        if (run > n - done) run = n - done;
        memcpy(r->buf + tail, src + done, run);
        r->len += run;
        done += run;
    }
    return done;
}

/* Contiguous readable run at the head. */
static size_t ring_peek(const ring_t *r, const uint8_t **p)
{
    size_t run = RING_BYTES - r->head;
    if (run > r->len) run = r->len;
    *p = r->buf + r->head;
    return run;
}

static void ring_drop(ring_t *r, size_t n)
{
    r->head = (r->head + n) % RING_BYTES;
    r->len -= n;
}

/* Read once from fd into the ring (at most two reads to fill the wrap). */
static ssize_t ring_read_fd(ring_t *r, int fd)
{
    ssize_t total = 0;
    for (int part = 0; part < 2 && ring_free(r) > 0; part++) {
        size_t tail = (r->head + r->len) % RING_BYTES;
        size_t run = RING_BYTES - tail;
        if (run > ring_free(r)) run = ring_free(r);
        ssize_t got = read(fd, r->buf + tail, run);
        if (got < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) break;
            return total > 0 ? total : -1;
        }
        if (got == 0) return total > 0 ? total : -2;
        r->len += (size_t)got;
        total += got;
        if ((size_t)got < run) break;
    }
    return total;
}

static void dir_reset(dir_t *d)
{
    d->lost += d->in.len + d->wire.len;
    d->in.head = d->in.len = 0;
    d->wire.head = d->wire.len = 0;
    d->seg_head = d->seg_len = 0;
    d->dst_blocked = 0;
}

static void set_raw(int fd)
{
    struct termios t;
    if (tcgetattr(fd, &t) != 0) return;
    cfmakeraw(&t);
    t.c_cc[VMIN] = 1;
    t.c_cc[VTIME] = 0;
    tcsetattr(fd, TCSANOW, &t);
}

static void set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0) fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static void print_stats(const char *tag)
{
    printf("%s {\"h2d_in\":%llu,\"h2d_out\":%llu,\"d2h_in\":%llu,\"d2h_out\":%llu,"
           "\"corrupted\":%llu,\"dropped\":%llu,\"lost\":%llu,\"disconnects\":%llu}\n",
           tag, (unsigned long long)g_h2d.bytes_in, (unsigned long long)g_h2d.bytes_out,
           (unsigned long long)g_d2h.bytes_in, (unsigned long long)g_d2h.bytes_out,
           (unsigned long long)(g_h2d.corrupted + g_d2h.corrupted),
           (unsigned long long)(g_h2d.dropped + g_d2h.dropped),
           (unsigned long long)(g_h2d.lost + g_d2h.lost), (unsigned long long)g_disconnects);
    fflush(stdout);
}

static int plug(void)
{
    int m = posix_openpt(O_RDWR | O_NOCTTY);
    if (m < 0 || grantpt(m) != 0 || unlockpt(m) != 0) {
        perror("linksim: posix_openpt");
        if (m >= 0) close(m);
        return -1;
    }
    const char *name = ptsname(m);
    if (!name || strlen(name) >= sizeof g_pty_path) {
        close(m);
        return -1;
    }
    strcpy(g_pty_path, name);
    /* Holding the slave keeps its raw settings and lets the host close and
     * reopen its side without the master seeing a hang-up. */
    int s = open(g_pty_path, O_RDWR | O_NOCTTY);
    if (s < 0) {
        perror("linksim: open pty slave");
        close(m);
        return -1;
    }
    set_raw(s);
    set_nonblock(m);
    g_master_fd = m;
    g_slave_hold_fd = s;
    if (g_opt.link_path) {
        char tmp[512];
        snprintf(tmp, sizeof tmp, "%s.%ld.tmp", g_opt.link_path, (long)getpid());
        unlink(tmp);
        if (symlink(g_pty_path, tmp) != 0 || rename(tmp, g_opt.link_path) != 0) {
            perror("linksim: link");
            unlink(tmp);
        }
    }
    g_plugged = 1;
    printf("PTY %s\n", g_pty_path);
    fflush(stdout);
    return 0;
}

static void unplug(void)
{
    if (!g_plugged) return;
    /* A vanished adapter: the node goes away and the host's reads fail. */
    if (g_opt.link_path) unlink(g_opt.link_path);
    close(g_slave_hold_fd);
    close(g_master_fd);
    g_slave_hold_fd = g_master_fd = -1;
    g_plugged = 0;
    g_disconnects++;
    dir_reset(&g_h2d);
    dir_reset(&g_d2h);
    printf("DISCONNECTED\n");
    fflush(stdout);
}

static int open_device(void)
{
    int fd = open(g_opt.device_path, O_RDWR | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) return -1;
    if (isatty(fd)) set_raw(fd);
    g_dev_fd = fd;
    return 0;
}

static void close_device(int64_t now)
{
    if (g_dev_fd >= 0) close(g_dev_fd);
    g_dev_fd = -1;
    dir_reset(&g_h2d);
    dir_reset(&g_d2h);
    g_next_reopen_ns = now + REOPEN_NS;
}

/* Move bytes from `in` onto the wire at the line rate, applying faults. */
static void serialize(dir_t *d, int64_t now)
{
    if (g_opt.byte_rate > 0) {
        d->tokens += (double)(now - d->last_ns) * g_opt.byte_rate / 1e9;
        double cap = g_opt.byte_rate * 20e-3;
        if (cap < 2) cap = 2;
        /* An idle line cannot bank time: the first byte of a burst starts now
         * and arrives one byte time later; a stalled line banks at most a slice. */
        if (d->in.len == 0) d->tokens = 0;
        else if (d->tokens > cap) d->tokens = cap;
    }
    d->last_ns = now;
    while (d->in.len > 0 && d->seg_len < SEG_MAX && ring_free(&d->wire) > 0) {
        size_t n = d->in.len;
        if (g_opt.byte_rate > 0) {
            if (d->tokens < 1) break;
            if ((double)n > d->tokens) n = (size_t)d->tokens;
        }
        if (n > ring_free(&d->wire)) n = ring_free(&d->wire);
        const uint8_t *p;
        size_t run = ring_peek(&d->in, &p);
        if (n > run) n = run;
        uint8_t tmp[RING_BYTES];
        size_t kept = 0;
        for (size_t i = 0; i < n; i++) {
            uint8_t b = p[i];
            if (g_opt.drop > 0 && rng_unit(&d->rng) < g_opt.drop) {
                d->dropped++;
                continue;
            }
            if (g_opt.corrupt > 0 && rng_unit(&d->rng) < g_opt.corrupt) {
                b ^= (uint8_t)(1u << (rng_next(&d->rng) & 7u));
                d->corrupted++;
            }
            tmp[kept++] = b;
        }
        ring_drop(&d->in, n);
        if (g_opt.byte_rate > 0) d->tokens -= (double)n;
        if (kept > 0) {
            ring_put(&d->wire, tmp, kept);
            size_t idx = (d->seg_head + d->seg_len) % SEG_MAX;
            d->segs[idx].len = kept;
            d->segs[idx].due_ns = now + g_opt.latency_ns;
            d->seg_len++;
        }
    }
}

/* Deliver due wire bytes to the destination. */
static void deliver(dir_t *d, int fd, int64_t now)
{
    d->dst_blocked = 0;
    if (fd < 0) return;
    while (d->seg_len > 0) {
        seg_t *s = &d->segs[d->seg_head];
        if (s->due_ns > now) break;
        /* Gather every due segment into one write. */
        size_t want = 0;
        for (size_t i = 0; i < d->seg_len; i++) {
            seg_t *t = &d->segs[(d->seg_head + i) % SEG_MAX];
            if (t->due_ns > now) break;
            want += t->len;
        }
        const uint8_t *p;
        size_t run = ring_peek(&d->wire, &p);
        if (run > want) run = want;
        ssize_t w = write(fd, p, run);
        if (w < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) d->dst_blocked = 1;
            return;
        }
        d->bytes_out += (uint64_t)w;
        ring_drop(&d->wire, (size_t)w);
        size_t left = (size_t)w;
        while (left > 0 && d->seg_len > 0) {
            seg_t *t = &d->segs[d->seg_head];
            if (t->len <= left) {
                left -= t->len;
                d->seg_head = (d->seg_head + 1) % SEG_MAX;
                d->seg_len--;
            } else {
                t->len -= left;
                left = 0;
            }
        }
        if ((size_t)w < run) {
            d->dst_blocked = 1;
            return;
        }
    }
}

/* Nanoseconds until this direction has something to do (-1: nothing). */
static int64_t dir_wait_ns(const dir_t *d, int64_t now)
{
    int64_t wait = -1;
    if (d->seg_len > 0 && !d->dst_blocked) {
        int64_t due = d->segs[d->seg_head].due_ns - now;
        wait = due < 0 ? 0 : due;
    }
    if (d->in.len > 0 && d->seg_len < SEG_MAX && ring_free(&d->wire) > 0) {
        int64_t t = 0;
        if (g_opt.byte_rate > 0) {
            double batch = g_opt.byte_rate * (double)SLICE_NS / 1e9;
            if (batch < 1) batch = 1;
            if (batch > (double)d->in.len) batch = (double)d->in.len;
            double need = batch - d->tokens;
            t = need > 0 ? (int64_t)(need * 1e9 / g_opt.byte_rate) : 0;
        }
        if (wait < 0 || t < wait) wait = t;
    }
    return wait;
}

static void handle_command(char *line, int64_t now)
{
    char *arg = strchr(line, ' ');
    if (arg) *arg++ = '\0';
    if (strcmp(line, "disconnect") == 0) {
        unplug();
    } else if (strcmp(line, "reconnect") == 0) {
        if (!g_plugged) plug();
        else printf("PTY %s\n", g_pty_path);
        fflush(stdout);
    } else if (strcmp(line, "stats") == 0) {
        print_stats("STATS");
    } else if (strcmp(line, "corrupt") == 0 && arg) {
        g_opt.corrupt = atof(arg);
    } else if (strcmp(line, "drop") == 0 && arg) {
        g_opt.drop = atof(arg);
    } else if (strcmp(line, "latency-us") == 0 && arg) {
        g_opt.latency_ns = atoll(arg) * 1000LL;
    } else if (strcmp(line, "baud") == 0 && arg) {
        g_opt.byte_rate = atof(arg) / 10.0;
        g_h2d.tokens = g_d2h.tokens = 0;
        g_h2d.last_ns = g_d2h.last_ns = now;
    } else if (line[0] != '\0') {
        fprintf(stderr, "linksim: unknown command '%s'\n", line);
    }
}

static void on_signal(int sig)
{
    if (sig == SIGUSR1) g_want_unplug = 1;
    else if (sig == SIGUSR2) g_want_replug = 1;
    else g_want_exit = 1;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: tinyrig-linksim --device PATH [--link PATH] [--baud N] [--latency-us N]\n"
            "       [--corrupt P] [--drop P] [--seed N] [--disconnect-every MS] [--disconnect-for MS]\n");
}

static int parse_args(int argc, char **argv)
{
    g_opt.seed = 1;
    g_opt.disconnect_for_ns = 1000000000LL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) return -1;
        if (!v) {
            fprintf(stderr, "linksim: %s needs a value\n", a);
            return -1;
        }
        i++;
        if (strcmp(a, "--device") == 0) g_opt.device_path = v;
        else if (strcmp(a, "--link") == 0) g_opt.link_path = v;
        else if (strcmp(a, "--baud") == 0) g_opt.byte_rate = atof(v) / 10.0;
        else if (strcmp(a, "--latency-us") == 0) g_opt.latency_ns = atoll(v) * 1000LL;
        else if (strcmp(a, "--corrupt") == 0) g_opt.corrupt = atof(v);
        else if (strcmp(a, "--drop") == 0) g_opt.drop = atof(v);
        else if (strcmp(a, "--seed") == 0) g_opt.seed = strtoull(v, NULL, 0);
        else if (strcmp(a, "--disconnect-every") == 0) g_opt.disconnect_every_ns = atoll(v) * 1000000LL;
        else if (strcmp(a, "--disconnect-for") == 0) g_opt.disconnect_for_ns = atoll(v) * 1000000LL;
        else {
            fprintf(stderr, "linksim: unknown option %s\n", a);
            return -1;
        }
    }
    if (!g_opt.device_path) {
        fprintf(stderr, "linksim: --device is required\n");
        return -1;
    }
    if (g_opt.corrupt < 0 || g_opt.corrupt > 1 || g_opt.drop < 0 || g_opt.drop > 1 ||
        g_opt.byte_rate < 0 || g_opt.latency_ns < 0) {
        fprintf(stderr, "linksim: rates must be in [0,1], baud and latency >= 0\n");
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (parse_args(argc, argv) != 0) {
        usage();
        return 2;
    }
    g_h2d.name = "h2d";
    g_d2h.name = "d2h";
    /* Separate streams per direction keep faults reproducible for a seed. */
    g_h2d.rng = g_opt.seed * 0x9E3779B97F4A7C15ULL + 1;
    g_d2h.rng = g_opt.seed * 0xC2B2AE3D27D4EB4FULL + 7;
    for (int i = 0; i < 8; i++) {
        rng_next(&g_h2d.rng);
        rng_next(&g_d2h.rng);
    }

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGUSR2, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    sigset_t block, orig;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGHUP);
    sigaddset(&block, SIGUSR1);
    sigaddset(&block, SIGUSR2);
    sigprocmask(SIG_BLOCK, &block, &orig);

    struct stat dev_st;
    g_dev_is_link = lstat(g_opt.device_path, &dev_st) == 0 && S_ISLNK(dev_st.st_mode);
    if (open_device() != 0) {
        fprintf(stderr, "linksim: cannot open %s: %s\n", g_opt.device_path, strerror(errno));
        return 1;
    }
    if (plug() != 0) return 1;

    int64_t now = now_ns();
    g_h2d.last_ns = g_d2h.last_ns = now;
    if (g_opt.disconnect_every_ns > 0) g_next_auto_ns = now + g_opt.disconnect_every_ns;

    int stdin_open = 1;
    char cmd[256];
    size_t cmd_len = 0;
    set_nonblock(STDIN_FILENO);

    while (!g_want_exit) {
        now = now_ns();
        if (g_want_unplug) {
            g_want_unplug = 0;
            unplug();
        }
        if (g_want_replug) {
            g_want_replug = 0;
            if (!g_plugged) plug();
        }
        if (g_opt.disconnect_every_ns > 0 && now >= g_next_auto_ns) {
            if (g_plugged) {
                unplug();
                g_next_auto_ns = now + g_opt.disconnect_for_ns;
            } else {
                plug();
                g_next_auto_ns = now + g_opt.disconnect_every_ns;
            }
        }
        if (g_dev_fd < 0 && now >= g_next_reopen_ns && open_device() != 0)
            g_next_reopen_ns = now + REOPEN_NS;

        serialize(&g_h2d, now);
        serialize(&g_d2h, now);
        deliver(&g_h2d, g_dev_fd, now);
        deliver(&g_d2h, g_plugged ? g_master_fd : -1, now);

        struct pollfd pfd[3];
        int n = 0, i_stdin = -1, i_dev = -1, i_master = -1;
        if (stdin_open) {
            i_stdin = n;
            pfd[n].fd = STDIN_FILENO;
            pfd[n++].events = POLLIN;
        }
        if (g_dev_fd >= 0) {
            i_dev = n;
            pfd[n].fd = g_dev_fd;
            pfd[n].events = (short)((ring_free(&g_d2h.in) > 0 ? POLLIN : 0) |
                                    (g_h2d.dst_blocked ? POLLOUT : 0));
            n++;
        }
        if (g_plugged) {
            i_master = n;
            pfd[n].fd = g_master_fd;
            pfd[n].events = (short)((ring_free(&g_h2d.in) > 0 ? POLLIN : 0) |
                                    (g_d2h.dst_blocked ? POLLOUT : 0));
            n++;
        }

        int64_t wait = -1;
        int64_t w1 = dir_wait_ns(&g_h2d, now), w2 = dir_wait_ns(&g_d2h, now);
        if (w1 >= 0) wait = w1;
        if (w2 >= 0 && (wait < 0 || w2 < wait)) wait = w2;
        if (g_opt.disconnect_every_ns > 0) {
            int64_t t = g_next_auto_ns - now;
            if (t < 0) t = 0;
            if (wait < 0 || t < wait) wait = t;
        }
        if (g_dev_fd < 0) {
            int64_t t = g_next_reopen_ns - now;
            if (t < 0) t = 0;
            if (wait < 0 || t < wait) wait = t;
        }
        struct timespec ts, *tsp = NULL;
        if (wait >= 0) {
            ts.tv_sec = (time_t)(wait / 1000000000LL);
            ts.tv_nsec = (long)(wait % 1000000000LL);
            tsp = &ts;
        }
        int rc = ppoll(pfd, (nfds_t)n, tsp, &orig);
        if (rc < 0) {
            if (errno == EINTR) continue;
            perror("linksim: ppoll");
            break;
        }
        now = now_ns();

        if (i_stdin >= 0 && pfd[i_stdin].revents) {
            char chunk[256];
            ssize_t got = read(STDIN_FILENO, chunk, sizeof chunk);
            if (got <= 0 && !(got < 0 && (errno == EAGAIN || errno == EINTR))) {
                stdin_open = 0;
            } else if (got > 0) {
                for (ssize_t k = 0; k < got; k++) {
                    if (chunk[k] == '\n' || chunk[k] == '\r') {
                        cmd[cmd_len] = '\0';
                        handle_command(cmd, now);
                        cmd_len = 0;
                    } else if (cmd_len + 1 < sizeof cmd) {
                        cmd[cmd_len++] = chunk[k];
                    }
                }
            }
        }
        if (i_dev >= 0 && (pfd[i_dev].revents & (POLLIN | POLLHUP | POLLERR))) {
            /* Serialize what is already queued before the clock moves on. */
            serialize(&g_d2h, now);
            ssize_t got = ring_read_fd(&g_d2h.in, g_dev_fd);
            if (got > 0) {
                g_d2h.bytes_in += (uint64_t)got;
                if (!g_plugged) {
                    /* Nobody is plugged in: the board's bytes go nowhere. */
                    g_d2h.lost += g_d2h.in.len;
                    g_d2h.in.head = g_d2h.in.len = 0;
                }
            } else if (got < 0 || (pfd[i_dev].revents & (POLLHUP | POLLERR))) {
                /* Only a stable link can come back: a bare /dev/pts/N may be
                 * handed to another program once its owner is gone. */
                if (g_dev_is_link) {
                    fprintf(stderr, "linksim: device %s went away; reopening\n", g_opt.device_path);
                    close_device(now);
                } else {
                    fprintf(stderr, "linksim: device %s went away\n", g_opt.device_path);
                    g_want_exit = 1;
                }
            }
        }
        if (i_master >= 0 && g_plugged && (pfd[i_master].revents & POLLIN)) {
            serialize(&g_h2d, now);
            ssize_t got = ring_read_fd(&g_h2d.in, g_master_fd);
            if (got > 0) {
                g_h2d.bytes_in += (uint64_t)got;
                if (g_dev_fd < 0) {
                    g_h2d.lost += g_h2d.in.len;
                    g_h2d.in.head = g_h2d.in.len = 0;
                }
            }
        }
    }
    print_stats("STATS");
    if (g_plugged && g_opt.link_path) unlink(g_opt.link_path);
    return 0;
}
