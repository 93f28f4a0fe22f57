/* The QEMU MPS2 stand-ins' bare-metal port: startup, semihosting, the CMSDK
 * UART, the instruction counter. Every class (M0+/M4/M7) shares it. */
#ifndef TR_QEMU_PORT_H
#define TR_QEMU_PORT_H

#include <stddef.h>
#include <stdint.h>

/* Semihosting (QEMU runs with -semihosting). */
void tr_qemu_write0(const char *s);
void tr_qemu_exit(int status) __attribute__((noreturn));

/* Stack: bytes reserved, and the most ever used (the painted stack's high-water mark). */
uint32_t tr_qemu_stack_bytes(void);
uint32_t tr_qemu_stack_peak(void);
/* Static RAM of the image: .data + .bss. */
uint32_t tr_qemu_static_ram(void);

/* A fault handler reports through this hook (the board prints on its UART)
 * before the board stops; the default does nothing. */
void tr_qemu_fault_report(const char *what, uint32_t pc);

/* CMSDK UART0: interrupt-driven receive into a ring, polled transmit. */
void tr_qemu_uart_init(void);
void tr_qemu_uart_write(const uint8_t *bytes, size_t len);
/* Moves up to cap received bytes out of the ring; 0 when it is empty. */
size_t tr_qemu_uart_read(uint8_t *out, size_t cap);
/* True when received bytes wait in the ring (tr_qemu_idle_wait's condition). */
int tr_qemu_uart_pending(void);
/* Bytes lost because the ring was full (never expected: the ring is larger than a window). */
uint32_t tr_qemu_uart_overruns(void);

/* Instructions executed since boot, counted in steps of 40. QEMU runs with
 * -icount shift=0: one instruction is one nanosecond of virtual time; TIMER0
 * ticks every 40 of them and a read waits for a tick edge, so differences
 * between reads around the same work repeat exactly. */
void tr_qemu_counter_init(void);
uint64_t tr_qemu_instructions(void);

/* The watchdog (NMI on expiry): started once, fed by the main loop, never
 * stopped (qemu_watchdog.c says why). At most 171 s (32-bit count at 25 MHz). */
#define TR_QEMU_WATCHDOG_MS_MAX 171000u
void tr_qemu_watchdog_start(uint32_t timeout_ms);
void tr_qemu_watchdog_feed(void);
/* True in the NMI handler when the watchdog raised it. */
int tr_qemu_watchdog_fired(void);
/* The main loop's idle: sleeps (WFI) until ready() is true, the watchdog
 * running; returns with the watchdog just fed. Board and tests share it. */
void tr_qemu_idle_wait(int (*ready)(void));
/* Called first by the NMI handler: true when the NMI was a watchdog expiry
 * while idle, which it has cleared (the handler then just returns). */
int tr_qemu_watchdog_idle_expiry(void);
/* Expiries cleared while idle since boot. */
uint32_t tr_qemu_watchdog_idle_expiries(void);

#endif
