// SPDX-License-Identifier: GPL-2.0
/* Mutual TLS 1.3 for the tcp: transport (see tls.h): contexts, handshakes and a relay thread per connection. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "tls.h"

#define RELAY_BUF	(64 * 1024)

bool tls_files_complete(const struct tls_files *t, const char *who, FILE *err)
{
	if (t->cert && t->key && t->ca)
		return true;
	if (err)
		fprintf(err, "Error: %s needs --tls-cert, --tls-key and --tls-ca (missing:%s%s%s)\n", who,
			t->cert ? "" : " --tls-cert", t->key ? "" : " --tls-key",
			t->ca ? "" : " --tls-ca");
	return false;
}

static void ssl_errors(FILE *err)
{
	unsigned long e;
	char buf[256];

	while ((e = ERR_get_error())) {
		ERR_error_string_n(e, buf, sizeof(buf));
		if (err)
			fprintf(err, "  %s\n", buf);
	}
}

SSL_CTX *tls_ctx_new(const struct tls_files *t, bool server, FILE *err)
{
	SSL_CTX *ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());

	if (!ctx)
		goto err;
	if (!SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) ||
	    SSL_CTX_use_certificate_chain_file(ctx, t->cert) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, t->key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1 ||
	    SSL_CTX_load_verify_locations(ctx, t->ca, NULL) != 1)
		goto err_free;
	/* Both ends prove who they are: no certificate, no connection. */
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	return ctx;

err_free:
	SSL_CTX_free(ctx);
err:
	if (err)
		fprintf(err, "Error: cannot set up TLS with certificate %s, key %s, CA %s:\n", t->cert,
			t->key, t->ca);
	ssl_errors(err);
	return NULL;
}

SSL *tls_accept_new(SSL_CTX *ctx, int fd)
{
	SSL *ssl = SSL_new(ctx);

	if (ssl && SSL_set_fd(ssl, fd) == 1) {
		SSL_set_accept_state(ssl);
		return ssl;
	}
	SSL_free(ssl);
	return NULL;
}

int tls_accept_read(SSL *ssl, void *buf, size_t len)
{
	int n = SSL_read(ssl, buf, len);

	if (n > 0)
		return n;
	switch (SSL_get_error(ssl, n)) {
	case SSL_ERROR_WANT_READ:
	case SSL_ERROR_WANT_WRITE:
		return 0;
	case SSL_ERROR_ZERO_RETURN:
		return -ECONNRESET;
	default:
		ERR_clear_error();
		return SSL_is_init_finished(ssl) ? -ECONNRESET : -EPROTO;
	}
}

/* The handshake on the connected @fd; the server's certificate must name @host, if any. */
static int tls_connect(SSL_CTX *ctx, int fd, const char *host, SSL **sslp, FILE *err)
{
	SSL *ssl = SSL_new(ctx);
	X509_VERIFY_PARAM *vp;
	unsigned char ip[16];
	int ok;

	if (!ssl || SSL_set_fd(ssl, fd) != 1)
		goto err;
	vp = SSL_get0_param(ssl);
	if (!*host)
		ok = 1;
	else if (inet_pton(AF_INET, host, ip) == 1 || inet_pton(AF_INET6, host, ip) == 1)
		ok = X509_VERIFY_PARAM_set1_ip_asc(vp, host);
	else
		ok = X509_VERIFY_PARAM_set1_host(vp, host, 0) && SSL_set_tlsext_host_name(ssl, host);
	if (!ok || SSL_connect(ssl) != 1)
		goto err;
	*sslp = ssl;
	return 0;

err:
	if (err)
		fprintf(err, "Error: TLS handshake with %s failed%s%s:\n", host,
			ssl && SSL_get_verify_result(ssl) != X509_V_OK ? ": " : "",
			ssl && SSL_get_verify_result(ssl) != X509_V_OK ?
			X509_verify_cert_error_string(SSL_get_verify_result(ssl)) : "");
	ssl_errors(err);
	SSL_free(ssl);
	return -EPROTO;
}

void tls_free(SSL *ssl)
{
	SSL_free(ssl);
}

/* One connection: bytes from the peer go to @plain, bytes from @plain to the peer. */
struct relay {
	SSL *ssl;
	int net, plain;
	uint8_t in[RELAY_BUF], out[RELAY_BUF];	/* peer -> plain, plain -> peer */
	size_t in_len, in_off, out_len;
};

/* Events to wait for on the network fd after SSL said @ret; -1 when the connection is over. */
static int ssl_wants(SSL *ssl, int ret)
{
	switch (SSL_get_error(ssl, ret)) {
	case SSL_ERROR_WANT_READ:
		return POLLIN;
	case SSL_ERROR_WANT_WRITE:
		return POLLOUT;
	default:
		ERR_clear_error();
		return -1;
	}
}

static void *relay_main(void *arg)
{
	struct relay *r = arg;
	bool plain_eof = false;

	for (;;) {
		struct pollfd p[2] = { { .fd = r->net }, { .fd = r->plain } };
		bool progress = false;
		int n, w;

		if (!r->in_len) {
			n = SSL_read(r->ssl, r->in, sizeof(r->in));
			if (n > 0) {
				r->in_len = n;
				r->in_off = 0;
				progress = true;
			} else if ((w = ssl_wants(r->ssl, n)) < 0) {
				break;
			} else {
				p[0].events |= w;
			}
		}
		if (r->in_len) {
			ssize_t m = send(r->plain, r->in + r->in_off, r->in_len, MSG_DONTWAIT | MSG_NOSIGNAL);

			if (m > 0) {
				r->in_off += m;
				r->in_len -= m;
				progress = true;
			} else if (m < 0 && errno != EAGAIN && errno != EINTR) {
				break;
			} else {
				p[1].events |= POLLOUT;
			}
		}
		if (!r->out_len && !plain_eof) {
			ssize_t m = recv(r->plain, r->out, sizeof(r->out), MSG_DONTWAIT);

			if (m > 0) {
				r->out_len = m;
				progress = true;
			} else if (m == 0 || (errno != EAGAIN && errno != EINTR)) {
				plain_eof = true;
			} else {
				p[1].events |= POLLIN;
			}
		}
		if (r->out_len) {
			n = SSL_write(r->ssl, r->out, r->out_len);
			if (n > 0) {
				memmove(r->out, r->out + n, r->out_len - n);
				r->out_len -= n;
				progress = true;
			} else if ((w = ssl_wants(r->ssl, n)) < 0) {
				break;
			} else {
				p[0].events |= w;
			}
		}
		/* Our side closed and everything it wrote went out: say goodbye. */
		if (plain_eof && !r->out_len) {
			SSL_shutdown(r->ssl);
			break;
		}
		if (!progress && poll(p, 2, -1) < 0 && errno != EINTR)
			break;
	}
	SSL_free(r->ssl);
	close(r->net);
	close(r->plain);
	free(r);
	return NULL;
}

int tls_relay(SSL *ssl, int fd)
{
	struct relay *r = calloc(1, sizeof(*r));
	pthread_attr_t attr;
	pthread_t t;
	int sp[2], err;

	if (!r) {
		err = -ENOMEM;
		goto err_free;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0) {
		err = -errno;
		goto err_free;
	}
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	fcntl(sp[1], F_SETFL, O_NONBLOCK);
	*r = (struct relay){ .ssl = ssl, .net = fd, .plain = sp[1] };
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	err = -pthread_create(&t, &attr, relay_main, r);
	pthread_attr_destroy(&attr);
	if (err) {
		close(sp[0]);
		close(sp[1]);
		goto err_free;
	}
	return sp[0];

err_free:
	free(r);
	SSL_free(ssl);
	close(fd);
	return err;
}

int tls_client_wrap(int fd, const char *addr, const struct tls_files *t, FILE *err)
{
	char host[256] = "";
	const char *h, *colon;
	SSL_CTX *ctx;
	SSL *ssl;
	size_t n;
	int ret;

	/* "tcp:HOST:PORT" or "tcp:[V6]:PORT": the server's certificate must name HOST. */
	if (!strncmp(addr, "tcp:", 4)) {
		h = addr + 4;
		colon = strrchr(h, ':');
		n = colon ? (size_t)(colon - h) : 0;
		if (n >= 2 && h[0] == '[' && h[n - 1] == ']') {
			h++;
			n -= 2;
		}
		if (n >= sizeof(host))
			n = 0;
		memcpy(host, h, n);
		host[n] = '\0';
	}
	ctx = tls_ctx_new(t, false, err);
	if (!ctx) {
		close(fd);
		return -EINVAL;
	}
	ret = tls_connect(ctx, fd, host, &ssl, err);
	/* The connection holds its own reference to the context. */
	SSL_CTX_free(ctx);
	if (ret) {
		close(fd);
		return ret;
	}
	return tls_relay(ssl, fd);
}
