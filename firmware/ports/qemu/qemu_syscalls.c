/* newlib's system calls for test binaries under QEMU semihosting: printf goes
 * to the host's stdout, malloc takes RAM between the image and the stack, and
 * exit ends QEMU with the status. Board firmware does not link this file. */
#include <errno.h>
#include <sys/stat.h>
#include "qemu_port.h"

extern uint32_t end, _sstack;

int _write(int fd, const char *buf, int len)
{
    char chunk[65];
    int done = 0;
    (void)fd;
    while (done < len) {
        int n = len - done < 64 ? len - done : 64;
        for (int i = 0; i < n; i++) {
            chunk[i] = buf[done + i];
        }
        chunk[n] = '\0';
        tr_qemu_write0(chunk);
        done += n;
    }
    return len;
}

void *_sbrk(int incr)
{
    static char *brk = (char *)&end;
    char *prev = brk;
    if (brk + incr > (char *)&_sstack) {
        errno = ENOMEM;
        return (void *)-1;
    }
    brk += incr;
    return prev;
}

void _exit(int status)
{
    tr_qemu_exit(status);
}

int _close(int fd) { (void)fd; return -1; }
int _read(int fd, char *buf, int len) { (void)fd; (void)buf; (void)len; return 0; }
int _lseek(int fd, int off, int whence) { (void)fd; (void)off; (void)whence; return 0; }
int _isatty(int fd) { (void)fd; return 1; }
int _fstat(int fd, struct stat *st) { (void)fd; st->st_mode = S_IFCHR; return 0; }
int _getpid(void) { return 1; }
int _kill(int pid, int sig) { (void)pid; (void)sig; errno = EINVAL; return -1; }
