/* Step counts: the DWT cycle counter on Cortex-M4/M7 boards, the system
 * timer elsewhere (RP2040, and QEMU, which does not emulate CYCCNT). Both
 * are 32-bit; reads extend them to 64 bits (a step is far shorter than a wrap). */
#include "port.h"

#ifdef CONFIG_TINYRIG_DWT_CYCLES
#include <cmsis_core.h>
#endif

static uint32_t g_last;
static uint32_t g_high;

void tr_counter_init(void)
{
#ifdef CONFIG_TINYRIG_DWT_CYCLES
    CoreDebug->DEMCR |= CoreDebug_DEMCR_TRCENA_Msk;
#if defined(CONFIG_CPU_CORTEX_M7)
    DWT->LAR = 0xC5ACCE55u;   /* the M7's DWT is locked until written */
#endif
    DWT->CYCCNT = 0;
    DWT->CTRL |= DWT_CTRL_CYCCNTENA_Msk;
#endif
}

static uint32_t raw(void)
{
#ifdef CONFIG_TINYRIG_DWT_CYCLES
    return DWT->CYCCNT;
#else
    return k_cycle_get_32();
#endif
}

uint64_t tr_counter_read(void)
{
    unsigned int key = irq_lock();
    uint32_t now = raw();
    uint64_t v;

    if (now < g_last) {
        g_high++;
    }
    g_last = now;
    v = ((uint64_t)g_high << 32) | now;
    irq_unlock(key);
    return v;
}

const char *tr_counter_unit(void)
{
#ifdef CONFIG_TINYRIG_DWT_CYCLES
    return "cycles";
#else
    return "timer";
#endif
}
