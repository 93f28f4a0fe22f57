/* Learning-rate schedules in integer ppm, so every target computes the same
 * rate for the same step (the daemon can send the result with each TRAIN). */
#ifndef TR_SCHEDULE_H
#define TR_SCHEDULE_H

#include <stdint.h>

typedef enum {
    TR_SCHEDULE_CONSTANT = 0,
    TR_SCHEDULE_LINEAR = 1,  /* linear from lr0 down to lr0 / 50 at the last step */
    TR_SCHEDULE_STEP = 2     /* lr0, halved at 50 %, 75 % and 90 % of the steps */
} tr_schedule;

uint32_t tr_schedule_lr_ppm(tr_schedule kind, uint32_t lr0_ppm, uint32_t step, uint32_t total);

#endif
