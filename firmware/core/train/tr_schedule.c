/* Learning-rate schedules (see tr_schedule.h). */
#include "train/tr_schedule.h"

uint32_t tr_schedule_lr_ppm(tr_schedule kind, uint32_t lr0_ppm, uint32_t step, uint32_t total)
{
    if (total == 0u || step >= total) {
        step = total == 0u ? 0u : total - 1u;
    }
    if (kind == TR_SCHEDULE_LINEAR && total > 0u) {
        uint64_t end = lr0_ppm / 50u;
        uint64_t span = (uint64_t)lr0_ppm - end;
        return (uint32_t)(lr0_ppm - span * step / total);
    }
    if (kind == TR_SCHEDULE_STEP && total > 0u) {
        uint64_t t = (uint64_t)step * 100u / total;
        uint32_t lr = lr0_ppm;
        lr = t >= 50u ? lr / 2u : lr;
        lr = t >= 75u ? lr / 2u : lr;
        lr = t >= 90u ? lr / 2u : lr;
        return lr;
    }
    return lr0_ppm;
}
