/* SPDX-License-Identifier: GPL-2.0 */
/* A 16450 UART (COM1) for rsys's VMM: the guest's serial console. */
#ifndef RSYS_UART_H
#define RSYS_UART_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define UART_COM1_BASE	0x3f8
#define UART_COM1_IRQ	4
#define UART_NR_REGS	8
#define UART_OUT_MAX	4096
#define UART_IN_MAX	256

struct uart {
	uint8_t ier, lcr, mcr, scr, dll, dlm;
	bool thri;			/* "transmitter empty" interrupt pending */
	size_t out_len;			/* bytes of out[] not yet flushed */
	uint8_t out[UART_OUT_MAX];
	size_t in_head, in_len;		/* received bytes the guest has not read yet */
	uint8_t in[UART_IN_MAX];
};

/*
 * The guest accesses register @reg (0-7) of the UART: a write of *val, or a
 * read into *val. Transmitted bytes collect in u->out (uart_flush). Returns
 * the level the UART's interrupt line has after the access.
 */
bool uart_access(struct uart *u, unsigned int reg, bool write, uint8_t *val);

/*
 * Bytes arrive on the line: as many as the receive buffer takes are queued
 * for the guest (read from RBR, announced by LSR and the "data ready"
 * interrupt). Returns how many were taken; *irq is the line's new level.
 */
size_t uart_receive(struct uart *u, const uint8_t *buf, size_t len, bool *irq);

/* True when u->out should be flushed: full, or a line or more in it. */
bool uart_flush_due(const struct uart *u);

/* Write what the guest transmitted to @fd: 0, or -errno. */
int uart_flush(struct uart *u, int fd);

#endif
