// SPDX-License-Identifier: GPL-2.0
/* A 16450 UART as Linux's 8250 driver probes and drives it: scratch, loopback, THR-empty and data-ready interrupts. */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "uart.h"

/* Registers (DLAB = LCR bit 7 selects the divisor latch at 0 and 1). */
enum { UART_RBR_THR, UART_IER, UART_IIR_FCR, UART_LCR, UART_MCR, UART_LSR, UART_MSR, UART_SCR };

#define UART_LCR_DLAB	0x80
#define UART_IER_RDI	0x01
#define UART_IER_THRI	0x02
#define UART_IER_MASK	0x0f
#define UART_IIR_NO_INT	0x01
#define UART_IIR_THRI	0x02
#define UART_IIR_RDI	0x04
#define UART_LSR_DR	0x01
#define UART_LSR_IDLE	0x60	/* THRE | TEMT: always ready to send, nothing received */
#define UART_MCR_LOOP	0x10
#define UART_MSR_IDLE	0xb0	/* DCD | DSR | CTS */

/* In loopback, the modem outputs come back as inputs: DTR->DSR, RTS->CTS, OUT1->RI, OUT2->DCD. */
static uint8_t uart_msr(const struct uart *u)
{
	if (!(u->mcr & UART_MCR_LOOP))
		return UART_MSR_IDLE;
	return (uint8_t)((u->mcr & 0x01) << 5 | (u->mcr & 0x02) << 3 |
			 (u->mcr & 0x04) << 4 | (u->mcr & 0x08) << 4);
}

static void uart_transmit(struct uart *u, uint8_t byte)
{
	/* In loopback the byte goes back to the receiver, which drops it. */
	if (!(u->mcr & UART_MCR_LOOP) && u->out_len < UART_OUT_MAX)
		u->out[u->out_len++] = byte;
	u->thri = true;		/* sent at once: the holding register is empty again */
}

static void uart_write(struct uart *u, unsigned int reg, uint8_t val)
{
	bool dlab = u->lcr & UART_LCR_DLAB;

	switch (reg) {
	case UART_RBR_THR:
		if (dlab)
			u->dll = val;
		else
			uart_transmit(u, val);
		break;
	case UART_IER:
		if (dlab) {
			u->dlm = val;
			break;
		}
		/* Enabling THRI while the register is empty raises it (the 8250 driver relies on it). */
		if ((val & UART_IER_THRI) && !(u->ier & UART_IER_THRI))
			u->thri = true;
		u->ier = val & UART_IER_MASK;
		break;
	case UART_LCR:
		u->lcr = val;
		break;
	case UART_MCR:
		u->mcr = val & 0x1f;
		break;
	case UART_SCR:
		u->scr = val;
		break;
	default:	/* FCR (no FIFO: a 16450), LSR, MSR */
		break;
	}
}

static uint8_t uart_rx_pop(struct uart *u)
{
	uint8_t c;

	if (!u->in_len)
		return 0;
	c = u->in[u->in_head];
	u->in_head = (u->in_head + 1) % UART_IN_MAX;
	u->in_len--;
	return c;
}

static uint8_t uart_read(struct uart *u, unsigned int reg)
{
	bool dlab = u->lcr & UART_LCR_DLAB;

	switch (reg) {
	case UART_RBR_THR:
		return dlab ? u->dll : uart_rx_pop(u);
	case UART_IER:
		return dlab ? u->dlm : u->ier;
	case UART_IIR_FCR:
		/* Received data first; it clears by reading RBR. */
		if (u->in_len && (u->ier & UART_IER_RDI))
			return UART_IIR_RDI;
		/* Reading IIR while it reports THRI clears that interrupt. */
		if (u->thri && (u->ier & UART_IER_THRI)) {
			u->thri = false;
			return UART_IIR_THRI;
		}
		return UART_IIR_NO_INT;
	case UART_LCR:
		return u->lcr;
	case UART_MCR:
		return u->mcr;
	case UART_LSR:
		return UART_LSR_IDLE | (u->in_len ? UART_LSR_DR : 0);
	case UART_MSR:
		return uart_msr(u);
	default:
		return u->scr;
	}
}

/* OUT2 gates the interrupt line on PC serial ports. */
static bool uart_irq(const struct uart *u)
{
	return ((u->thri && (u->ier & UART_IER_THRI)) || (u->in_len && (u->ier & UART_IER_RDI))) &&
	       (u->mcr & 0x08);
}

bool uart_access(struct uart *u, unsigned int reg, bool write, uint8_t *val)
{
	reg &= UART_NR_REGS - 1;
	if (write)
		uart_write(u, reg, *val);
	else
		*val = uart_read(u, reg);
	return uart_irq(u);
}

size_t uart_receive(struct uart *u, const uint8_t *buf, size_t len, bool *irq)
{
	size_t n = 0;

	while (n < len && u->in_len < UART_IN_MAX) {
		u->in[(u->in_head + u->in_len) % UART_IN_MAX] = buf[n++];
		u->in_len++;
	}
	*irq = uart_irq(u);
	return n;
}

bool uart_flush_due(const struct uart *u)
{
	return u->out_len == UART_OUT_MAX ||
	       (u->out_len && u->out[u->out_len - 1] == '\n');
}

int uart_flush(struct uart *u, int fd)
{
	size_t off = 0;
	ssize_t n;

	while (off < u->out_len) {
		n = write(fd, u->out + off, u->out_len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			u->out_len = 0;
			return n < 0 ? -errno : -EIO;
		}
		off += (size_t)n;
	}
	u->out_len = 0;
	return 0;
}
