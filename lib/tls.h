/* SPDX-License-Identifier: GPL-2.0 */
/* Mutual TLS 1.3 (OpenSSL) for the tcp: transport between rsys-load and rsys-delegate. */
#ifndef RSYS_TLS_H
#define RSYS_TLS_H

#include <stdbool.h>
#include <stdio.h>

/* PEM files: our certificate and key, and the CA that must have signed the peer's. */
struct tls_files {
	const char *cert, *key, *ca;
};

struct ssl_ctx_st;
struct ssl_st;

/* True when every file is given; a message on @err names what is missing otherwise. */
bool tls_files_complete(const struct tls_files *t, const char *who, FILE *err);

/*
 * A context for TLS 1.3 only that requires and verifies the peer's
 * certificate against t->ca. NULL after a message on @err.
 */
struct ssl_ctx_st *tls_ctx_new(const struct tls_files *t, bool server, FILE *err);

/* Server side: a TLS connection on the accepted, non-blocking @fd, or NULL. */
struct ssl_st *tls_accept_new(struct ssl_ctx_st *ctx, int fd);

/*
 * Move the handshake on, or read into @buf up to @len bytes once it is
 * done, without blocking: the bytes read, 0 when it must wait for the
 * peer, -ECONNRESET or -EPROTO (a failed handshake, e.g. no certificate).
 */
int tls_accept_read(struct ssl_st *ssl, void *buf, size_t len);

/*
 * Carry the plain bytes of an established connection over a socketpair:
 * a relay thread owns @ssl and @fd from now on. The caller's end of the
 * pair (blocking, close-on-exec), or -errno (@ssl and @fd are freed).
 */
int tls_relay(struct ssl_st *ssl, int fd);

void tls_free(struct ssl_st *ssl);

/*
 * Client side in one call: the handshake on @fd, connected to @addr
 * (tcp:HOST:PORT: the server's certificate must name HOST; vsock:
 * addresses are checked against the CA only), then tls_relay(). The
 * plain fd, or -errno after a message on @err; @fd is consumed.
 */
int tls_client_wrap(int fd, const char *addr, const struct tls_files *t, FILE *err);

#endif
