/* tinyrig-train plan / build --spec: a network checked and planned by the
 * engine's own code, for the daemon's model catalog (JSON on stdout). */
#ifndef TR_TRAINER_PLAN_H
#define TR_TRAINER_PLAN_H

#include <stddef.h>
#include <stdint.h>

/* Checks a whole model blob and prints its plan; 0, or 1 with the defect. */
int tr_trainer_cmd_plan(const uint8_t *blob, size_t len);

/* A layer list (a model blob whose weights are an empty byte string) given
 * seeded initial weights, written to out_path; prints the plan. */
int tr_trainer_cmd_build_spec(const uint8_t *spec, size_t len, uint32_t seed, const char *name,
                              const char *out_path);

#endif
