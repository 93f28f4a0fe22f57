/* Host twin port: a PTY master as the UART, CLOCK_MONOTONIC nanoseconds as
 * the step counter (twin_board.c). */
#ifndef TR_TWIN_BOARD_H
#define TR_TWIN_BOARD_H

#include <stdint.h>
#include "board/tr_port.h"

/* Fills *port. tx_fd: where frames go; ram_bytes: memory given to the device
 * context; boot_id_given: boot ids count up from boot_id instead of random. */
void tr_twin_port(tr_port *port, int tx_fd, const char *board, uint32_t ram_bytes,
                  int boot_id_given, uint32_t boot_id);
/* The boot id of the next boot (after a RESET). */
uint32_t tr_twin_boot_id(void);
/* True once after port.reset was called. */
int tr_twin_reset_pending(void);

#endif
