/*
 * TLS to engines: how proxyd checks an https engine is the one meant,
 * for its own client (proxyd_upstream.c) and libcurl's probes alike.
 * Three ways, set by flmd from engines.ID.ca: the system's roots (read
 * here before the sandbox), a CA flmd read for the engine, or a pin of
 * the engine's public key.  A check that cannot be made refuses the
 * engine; nothing falls back to less.
 */
#include "config.h"

#include <arpa/inet.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <json-c/json.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "log.h"
#include "proxyd.h"

#define UPTLS_BUNDLE_MAX	(4 * 1024 * 1024)

static char		*uptls_bundle;	/* the system's CA roots, PEM */
static size_t		 uptls_bundle_len;
static X509_STORE	*uptls_system;	/* made from it when first needed */

/* The system's roots as PEM (NULL if none were found), for libcurl. */
const char *
uptls_roots(size_t *len)
{
	*len = uptls_bundle_len;
	return uptls_bundle;
}

/* Every certificate of a PEM text into a new store; NULL if none. */
static X509_STORE *
uptls_store(const char *pem, size_t len)
{
	X509_STORE	*st;
	X509		*x;
	BIO		*b;
	int		 n = 0;

	if ((st = X509_STORE_new()) == NULL ||
	    (b = BIO_new_mem_buf(pem, (int)len)) == NULL) {
		X509_STORE_free(st);
		return NULL;
	}
	while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
		if (X509_STORE_add_cert(st, x) == 1)
			n++;
		X509_free(x);
	}
	ERR_clear_error();
	BIO_free(b);
	if (n == 0) {
		X509_STORE_free(st);
		return NULL;
	}
	return st;
}

/*
 * The engine's TLS context from flmd's word (e: its IMSG_ENGINES
 * entry); -1 with why, and the engine is then refused, not reached
 * otherwise.
 */
int
uptls_engine(struct proxyd_engine *pe, struct json_object *e)
{
	struct json_object	*v;
	X509_STORE		*st = NULL;
	const char		*pem = NULL;
	size_t			 len = 0;

	pe->tls = 1;
	if (json_object_object_get_ex(e, "ca_error", &v)) {
		snprintf(pe->refused, sizeof(pe->refused), "%s",
		    json_object_get_string(v));
		return -1;
	}
	if (json_object_object_get_ex(e, "pin", &v) &&
	    json_object_is_type(v, json_type_string) &&
	    json_object_get_string_len(v) < (int)sizeof(pe->pin))
		snprintf(pe->pin, sizeof(pe->pin), "%s",
		    json_object_get_string(v));
	else if (json_object_object_get_ex(e, "ca_pem", &v) &&
	    json_object_is_type(v, json_type_string)) {
		pem = json_object_get_string(v);
		len = (size_t)json_object_get_string_len(v);
		if ((pe->ca_pem = strdup(pem)) == NULL ||
		    (st = uptls_store(pem, len)) == NULL) {
			snprintf(pe->refused, sizeof(pe->refused), "the CA "
			    "of engines.%s.ca holds no usable certificate",
			    pe->id);
			return -1;
		}
	} else {
		if (uptls_system == NULL && uptls_bundle != NULL)
			uptls_system = uptls_store(uptls_bundle,
			    uptls_bundle_len);
		if (uptls_system == NULL) {
			snprintf(pe->refused, sizeof(pe->refused), "no "
			    "system CA roots were found: set engines.%s.ca",
			    pe->id);
			return -1;
		}
		X509_STORE_up_ref(uptls_system);
		st = uptls_system;
	}
	if ((pe->ctx = SSL_CTX_new(TLS_client_method())) == NULL) {
		X509_STORE_free(st);
		snprintf(pe->refused, sizeof(pe->refused), "out of memory");
		return -1;
	}
	SSL_CTX_set_min_proto_version(pe->ctx, TLS1_2_VERSION);
	SSL_CTX_set_mode(pe->ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
	    SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_CTX_set_alpn_protos(pe->ctx, (const unsigned char *)
	    "\x08http/1.1", 9);
	SSL_CTX_set_read_ahead(pe->ctx, 1);
	if (st != NULL) {
		SSL_CTX_set_cert_store(pe->ctx, st);	/* takes it */
		SSL_CTX_set_verify(pe->ctx, SSL_VERIFY_PEER, NULL);
	} else		/* the pin is checked once the handshake is done */
		SSL_CTX_set_verify(pe->ctx, SSL_VERIFY_NONE, NULL);
	return 0;
}

void
uptls_engine_free(struct proxyd_engine *pe)
{
	SSL_CTX_free(pe->ctx);
	free(pe->ca_pem);
	pe->ctx = NULL;
	pe->ca_pem = NULL;
}

/* A connection to pe on fd: SNI and the name or address to verify. */
SSL *
uptls_new(const struct proxyd_engine *pe, int fd)
{
	struct in6_addr	 a;
	SSL		*ssl;
	int		 ip;

	if (pe->ctx == NULL || (ssl = SSL_new(pe->ctx)) == NULL)
		return NULL;
	ip = inet_pton(AF_INET, pe->host, &a) == 1 ||
	    inet_pton(AF_INET6, pe->host, &a) == 1;
	if (SSL_set_fd(ssl, fd) != 1 || (!ip &&
	    SSL_set_tlsext_host_name(ssl, pe->host) != 1) ||
	    (pe->pin[0] == '\0' && (ip ? X509_VERIFY_PARAM_set1_ip_asc(
	    SSL_get0_param(ssl), pe->host) : SSL_set1_host(ssl,
	    pe->host)) != 1)) {
		SSL_free(ssl);
		return NULL;
	}
	SSL_set_connect_state(ssl);
	return ssl;
}

/* sha256//BASE64 of a certificate's public key, as curl pins it. */
static int
uptls_key_pin(X509 *x, char *out, size_t sz)
{
	unsigned char	*der = NULL, md[32];
	unsigned int	 mdlen;
	int		 n;

	if ((n = i2d_PUBKEY(X509_get0_pubkey(x), &der)) <= 0)
		return -1;
	n = EVP_Digest(der, (size_t)n, md, &mdlen, EVP_sha256(), NULL);
	OPENSSL_free(der);
	if (n != 1 || sz < 8 + 45)
		return -1;
	memcpy(out, "sha256//", 8);
	EVP_EncodeBlock((unsigned char *)out + 8, md, (int)mdlen);
	return 0;
}

/*
 * After the handshake: is it the engine meant?  The chain and name were
 * checked during it (SSL_VERIFY_PEER); a pin is checked here, before a
 * byte of the request goes.  0, or -1 with why.
 */
int
uptls_check(SSL *ssl, const struct proxyd_engine *pe, char *why, size_t sz)
{
	X509	*x;
	char	 pin[64];

	if (pe->pin[0] == '\0')
		return 0;
	if ((x = SSL_get0_peer_certificate(ssl)) == NULL ||
	    uptls_key_pin(x, pin, sizeof(pin)) == -1) {
		snprintf(why, sz, "no certificate to check the pin against");
		return -1;
	}
	if (strcmp(pin, pe->pin) == 0)
		return 0;
	snprintf(why, sz, "the engine's public key is %s, not the pinned "
	    "one", pin);
	return -1;
}

/* Why a handshake failed, in words. */
void
uprefused(SSL *ssl, char *why, size_t sz)
{
	unsigned long	 e = ERR_peek_last_error();
	long		 vr = SSL_get_verify_result(ssl);

	if (vr != X509_V_OK)
		snprintf(why, sz, "certificate verification failed: %s",
		    X509_verify_cert_error_string(vr));
	else if (e != 0)
		snprintf(why, sz, "TLS handshake failed: %s",
		    ERR_reason_error_string(e) ? ERR_reason_error_string(e) :
		    "unknown error");
	else
		snprintf(why, sz, "TLS handshake failed: the connection "
		    "ended");
	ERR_clear_error();
}

/*
 * A probe's transfer to an https engine: libcurl verifies as proxyd's
 * client does, the roots from memory (no file opened in the sandbox),
 * the name resolved to flmd's address (proxyd resolves nothing).
 */
void
uptls_curl(CURL *h, const struct proxyd_engine *pe, int socks,
    struct curl_slist **res)
{
	struct curl_blob	 blob;
	char			 r[400];

	curl_easy_setopt(h, CURLOPT_CAINFO, NULL);
	curl_easy_setopt(h, CURLOPT_CAPATH, NULL);
	if (pe->pin[0] != '\0') {
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
		curl_easy_setopt(h, CURLOPT_PINNEDPUBLICKEY, pe->pin);
	} else {
		blob.data = pe->ca_pem != NULL ? pe->ca_pem : uptls_bundle;
		blob.len = pe->ca_pem != NULL ? strlen(pe->ca_pem) :
		    uptls_bundle_len;
		blob.flags = CURL_BLOB_COPY;
		if (blob.data != NULL)
			curl_easy_setopt(h, CURLOPT_CAINFO_BLOB, &blob);
	}
	/* Through SOCKS the server resolves the name (socks5h). */
	if (!socks && strcmp(pe->host, pe->addr) != 0) {
		snprintf(r, sizeof(r), strchr(pe->addr, ':') ? "%s:%d:[%s]" :
		    "%s:%d:%s", pe->host, pe->port, pe->addr);
		*res = curl_slist_append(NULL, r);
		curl_easy_setopt(h, CURLOPT_RESOLVE, *res);
	}
}

/* Before the sandbox: the system's roots, wherever the system has them. */
void
uptls_init(void)
{
	static const char *const bundles[] = {
		"/etc/ssl/certs/ca-certificates.crt",	/* Debian */
		"/etc/pki/tls/certs/ca-bundle.crt",	/* RHEL */
	};
	FILE	*f;
	char	*p;
	size_t	 i, n;

	for (i = 0; i < sizeof(bundles) / sizeof(bundles[0]); i++) {
		if ((f = fopen(bundles[i], "re")) == NULL)
			continue;
		if ((uptls_bundle = malloc(UPTLS_BUNDLE_MAX)) == NULL)
			fatal("%s", __func__);
		n = fread(uptls_bundle, 1, UPTLS_BUNDLE_MAX, f);
		fclose(f);
		if (n == 0 || n == UPTLS_BUNDLE_MAX) {
			free(uptls_bundle);
			uptls_bundle = NULL;
			continue;
		}
		uptls_bundle_len = n;
		if ((p = realloc(uptls_bundle, n)) != NULL)
			uptls_bundle = p;
		return;
	}
}

void
uptls_cleanup(void)
{
	X509_STORE_free(uptls_system);
	free(uptls_bundle);
	uptls_system = NULL;
	uptls_bundle = NULL;
	uptls_bundle_len = 0;
}
