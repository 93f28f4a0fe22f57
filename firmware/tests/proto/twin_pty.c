/* The host twin as a process over a real PTY: PTY line and --link, HELLO,
 * the host closing and reopening the port, RESET giving a new boot_id, and a
 * clean exit on SIGTERM. Usage: twin_pty PATH-TO-tinyrig-twin */
#define _DEFAULT_SOURCE
#define _XOPEN_SOURCE 700
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "cbor/tr_cbor.h"
#include "proto/tr_device.h"
#include "proto/tr_handlers.h"
#include "proto_test.h"
#include "../qemu/pty_client.h"

/* Sends a request with an empty body and waits up to 2 s for its response. */
static int ask(int fd, uint8_t type, uint16_t seq, tr_frame *resp, uint8_t *raw, tr_body *b)
{
    return tr_pty_ask(fd, type, seq, NULL, 0, 2000, resp, raw, b);
}

int main(int argc, char **argv)
{
    char link[64];
    char line[256] = {0};
    int out[2], fd, status = -1;
    pid_t pid;
    FILE *fp;
    tr_frame r;
    tr_body b;
    static uint8_t raw[4096];
    uint32_t boot1 = 0, boot2 = 0, v = 0;
    struct stat st;

    snprintf(link, sizeof link, "/tmp/tinyrig-twin-pty-%d", (int)getpid());
    if (argc < 2 || pipe(out) != 0) {
        return 2;
    }
    unlink(link);
    pid = fork();
    if (pid == 0) {
        dup2(out[1], 1);
        close(out[0]);
        execl(argv[1], argv[1], "--link", link, "--board", "pty-test", "--window", "3", "--quiet", (char *)NULL);
        _exit(127);
    }
    close(out[1]);
    fp = fdopen(out[0], "r");
    CHECK(fp != NULL && fgets(line, sizeof line, fp) != NULL && strncmp(line, "PTY /dev/", 9) == 0,
          "prints PTY <path>");
    CHECK(lstat(link, &st) == 0 && S_ISLNK(st.st_mode), "--link makes a symlink");
    fd = tr_pty_open(link);
    CHECK(fd >= 0, "port opens");
    CHECK(ask(fd, TR_MSG_HELLO, 1, &r, raw, &b) && r.type == TR_MSG_HELLO, "HELLO over the PTY");
    CHECK(tr_body_u32(&b, 8, &v) == TR_OK && v == 3, "--window");
    CHECK(tr_body_u32(&b, 9, &boot1) == TR_OK, "boot_id");
    close(fd);
    /* The host closes and reopens the port: the twin keeps serving. */
    fd = tr_pty_open(link);
    CHECK(ask(fd, TR_MSG_HELLO, 1, &r, raw, &b) && tr_body_u32(&b, 9, &v) == TR_OK && v == boot1,
          "serves again after a reopen, same boot");
    CHECK(ask(fd, TR_MSG_RESET, 2, &r, raw, &b) && r.type == TR_MSG_RESET, "RESET answered");
    CHECK(ask(fd, TR_MSG_HELLO, 3, &r, raw, &b) && tr_body_u32(&b, 9, &boot2) == TR_OK && boot2 != boot1,
          "new boot_id after RESET");
    close(fd);
    kill(pid, SIGTERM);
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "clean exit on SIGTERM");
    CHECK(lstat(link, &st) != 0, "link removed");
    TEST_DONE("twin_pty");
}
