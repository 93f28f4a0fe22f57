/* Boot test: .data and .bss initialised, semihosting output and exit status. */
#include <stdint.h>

void tr_qemu_write0(const char *s);

static volatile uint32_t tr_data_word = 0x5eed1234u;
static volatile uint32_t tr_bss_word;

int main(void)
{
    if (tr_data_word != 0x5eed1234u || tr_bss_word != 0u) {
        tr_qemu_write0("boot: FAIL data/bss init\n");
        return 1;
    }
    tr_qemu_write0("boot: ok\n");
    return 0;
}
