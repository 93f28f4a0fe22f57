/* Host twin port setup (the port functions themselves are in board/tr_board.h). */
#ifndef TR_TWIN_BOARD_H
#define TR_TWIN_BOARD_H

#include <stdint.h>
#include "board/tr_board.h"

/* tx_fd: where frames go; ram_bytes: memory given to the device context. */
void tr_twin_board_setup(int tx_fd, const char *board, uint32_t ram_bytes, int boot_id_given,
                         uint32_t boot_id);
/* True once after tr_board_reset() was called. */
int tr_twin_reset_pending(void);

#endif
