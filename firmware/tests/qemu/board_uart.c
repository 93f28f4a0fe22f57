/* A QEMU board over its UART, from the host, the way the rig starts it:
 * QEMU with -serial pty prints the PTY on stdout; the host retries HELLO until
 * the board answers (its first bytes may wait about a second), then checks
 * that HELLO tells the real board's figures (from boards.json, passed in by
 * mk/qemu.mk), that a frame as large as the board accepts comes back intact
 * through the RX interrupt and ring (PING), that STATS reports the painted
 * stack's high-water mark, and that the idle board costs the host no CPU.
 * Usage: board_uart MACHINE ELF BOARD CPU CLOCK_HZ RAM_BYTES */
#define _DEFAULT_SOURCE
#define _XOPEN_SOURCE 700
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cbor/tr_cbor.h"
#include "proto/tr_device.h"
#include "proto/tr_handlers.h"
#include "../proto/proto_test.h"
#include "pty_client.h"

#define RAW_MAX TR_PTY_RAW_MAX

static int text_is(const tr_body *b, unsigned key, const char *want)
{
    tr_cbor_reader r;
    const char *p;
    size_t n;

    if (key >= TR_BODY_KEYS || (b->present & (1u << key)) == 0u ||
        tr_cbor_reader_init(&r, b->buf + b->off[key], b->len - b->off[key]) != TR_OK ||
        tr_cbor_read_text(&r, &p, &n) != TR_OK) {
        return 0;
    }
    return n == strlen(want) && memcmp(p, want, n) == 0;
}

static uint32_t u32_or(const tr_body *b, unsigned key, uint32_t fallback)
{
    uint32_t v;
    return tr_body_u32(b, key, &v) == TR_OK ? v : fallback;
}

/* User + system CPU time of a process, in clock ticks. */
static long cpu_ticks(pid_t pid)
{
    char path[64], buf[1024], *p;
    long utime = -1, stime = -1;
    FILE *fp;

    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    fp = fopen(path, "r");
    if (fp == NULL || fgets(buf, sizeof buf, fp) == NULL) {
        if (fp != NULL) {
            fclose(fp);
        }
        return -1;
    }
    fclose(fp);
    p = strrchr(buf, ')'); /* fields 14 and 15 follow the command name */
    if (p == NULL || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %ld %ld", &utime, &stime) != 2) {
        return -1;
    }
    return utime + stime;
}

int main(int argc, char **argv)
{
    char line[256] = {0}, pty[64] = {0};
    int out[2], fd = -1, status = -1, answered = 0;
    uint16_t seq = 1;
    pid_t pid;
    FILE *fp;
    tr_frame r;
    tr_body b;
    static uint8_t raw[RAW_MAX];
    static uint8_t ping[RAW_MAX], data[RAW_MAX];
    tr_cbor_writer w;
    const uint8_t *echo = NULL;
    size_t echo_len = 0;
    uint32_t max_frame, static_ram, stack_bytes, ram, peak;
    long t0, t1, hz = sysconf(_SC_CLK_TCK);

    if (argc != 7 || pipe(out) != 0) {
        fprintf(stderr, "usage: board_uart MACHINE ELF BOARD CPU CLOCK_HZ RAM_BYTES\n");
        return 2;
    }
    ram = (uint32_t)strtoul(argv[6], NULL, 10);
    pid = fork();
    if (pid == 0) {
        dup2(out[1], 1);
        close(out[0]);
        execlp("qemu-system-arm", "qemu-system-arm", "-M", argv[1], "-display", "none", "-monitor", "none",
               "-serial", "pty", "-icount", "shift=0", "-semihosting", "-kernel", argv[2], (char *)NULL);
        _exit(127);
    }
    close(out[1]);
    fp = fdopen(out[0], "r");
    while (fp != NULL && fgets(line, sizeof line, fp) != NULL) {
        if (sscanf(line, "char device redirected to %63s", pty) == 1) {
            break;
        }
    }
    CHECK(strncmp(pty, "/dev/pts/", 9) == 0, "QEMU names the board's PTY on stdout");
    if (pty[0] != '\0') {
        fd = tr_pty_open(pty);
    }
    CHECK(fd >= 0, "the PTY opens");

    /* The first bytes may wait: retry HELLO (new seq each time) for up to 20 s. */
    for (int i = 0; fd >= 0 && i < 40 && !answered; i++) {
        answered = tr_pty_ask(fd, TR_MSG_HELLO, seq, NULL, 0, 500, &r, raw, &b);
        seq++;
    }
    CHECK(answered && r.type == TR_MSG_HELLO, "HELLO answered over the UART");
    if (answered) {
        CHECK(u32_or(&b, 1, 0) == 1u, "proto 1");
        CHECK(text_is(&b, 2, argv[3]), "board");
        CHECK(text_is(&b, 4, argv[4]), "cpu");
        CHECK(u32_or(&b, 5, 0) == (uint32_t)strtoul(argv[5], NULL, 10), "the real board's clock");
        CHECK(u32_or(&b, 6, 0) == ram, "the real board's SRAM");
        CHECK(text_is(&b, 13, "instructions"), "counter unit");
        max_frame = u32_or(&b, 7, 0);
        static_ram = u32_or(&b, 14, 0);
        stack_bytes = u32_or(&b, 15, 0);
        CHECK(max_frame >= 64u && max_frame <= RAW_MAX, "max_frame");
        CHECK(static_ram > 0u && stack_bytes > 0u && (uint64_t)static_ram + stack_bytes <= ram,
              "static RAM and stack fit the SRAM");
        CHECK(u32_or(&b, 11, 0) > 0u && u32_or(&b, 11, 0) < static_ram, "arena inside static RAM");

        /* A PING as large as the board takes: every byte through the RX ring. */
        for (size_t i = 0; i < sizeof data; i++) {
            data[i] = (uint8_t)(i * 7u + 1u);
        }
        tr_cbor_writer_init(&w, ping, sizeof ping);
        tr_cbor_write_map(&w, 1);
        tr_cbor_write_uint(&w, 1);
        tr_cbor_write_bytes(&w, data, max_frame - 32u);
        CHECK(w.status == TR_OK, "PING body built");
        CHECK(tr_pty_ask(fd, TR_MSG_PING, seq++, ping, w.len, 10000, &r, raw, &b) &&
                  tr_body_bytes(&b, 1, &echo, &echo_len) == TR_OK && echo_len == max_frame - 32u &&
                  memcmp(echo, data, echo_len) == 0,
              "a max_frame PING comes back intact");

        CHECK(tr_pty_ask(fd, TR_MSG_STATS, seq++, NULL, 0, 5000, &r, raw, &b), "STATS answered");
        peak = u32_or(&b, 4, 0);
        CHECK(peak > 0u && peak < stack_bytes, "stack high-water mark measured, inside the stack");
        CHECK(u32_or(&b, 5, 0) == static_ram, "STATS static_ram as in HELLO");
        CHECK(u32_or(&b, 9, 0) >= 3u, "frames counted");
        printf("%s: static %u, stack %u (peak %u), max_frame %u\n", argv[3], static_ram, stack_bytes, peak,
               max_frame);
    }

    /* Idle with the host attached: the board sleeps in WFI. */
    t0 = cpu_ticks(pid);
    {
        struct timespec ts = {3, 0};
        nanosleep(&ts, NULL);
    }
    t1 = cpu_ticks(pid);
    CHECK(t0 >= 0 && t1 >= t0 && (t1 - t0) * 10 < hz * 3, "an idle board uses under 10% of a host core");
    printf("%s: idle CPU %.1f%% of a core over 3 s\n", argv[3], t0 >= 0 ? 100.0 * (t1 - t0) / (hz * 3.0) : -1.0);

    if (fd >= 0) {
        close(fd);
    }
    kill(pid, SIGTERM);
    waitpid(pid, &status, 0);
    if (fp != NULL) {
        fclose(fp);
    }
    TEST_DONE("board_uart");
}
