/*
 * TLS for flm-proxyd: one SSL_CTX per server certificate keyd pushed
 * (IMSG_TLS_STATE), replaced whole when the state changes (a
 * connection keeps the context it began with, by reference), and the
 * signing round trip: a handshake's signature is made by flm-keyd
 * (IMSG_TLS_SIGN / IMSG_TLS_SIGNATURE) while the handshake's ASYNC job
 * is paused, so other connections run meanwhile.  proxyd opens no file
 * for any of it, and holds no private key.
 */
#include "config.h"

#include <sys/queue.h>

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <json-c/json.h>
#include <openssl/async.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "jsonbuf.h"
#include "log.h"
#include "pemchain.h"
#include "proxyd.h"

#define TLS_MAX_SIGNING		256	/* handshakes waiting on keyd */
#define TLS_TICKET_ROTATE	(12 * 3600)	/* s a ticket key encrypts */
#define TLS_CIPHERS		"ECDHE-ECDSA-AES128-GCM-SHA256:" \
				"ECDHE-ECDSA-AES256-GCM-SHA384:" \
				"ECDHE-ECDSA-CHACHA20-POLY1305"
#define TLS_SUITES		"TLS_AES_128_GCM_SHA256:" \
				"TLS_AES_256_GCM_SHA384:" \
				"TLS_CHACHA20_POLY1305_SHA256"
#define TLS_GROUPS		"X25519:P-256:P-384"
#define TLS_SIGALGS		"ECDSA+SHA256"

/* A signature keyd owes a paused handshake; lives on the job's stack. */
struct tls_wait {
	TAILQ_ENTRY(tls_wait)	 entry;
	uint64_t		 reqid;
	int			 done, ok;
	unsigned char		*sig;		/* FLM_TLS_SIG_MAX bytes */
	size_t			*siglen;
	struct tls_wait		**slot;		/* the connection's */
	void			(*resume)(void *);
	void			*arg;
};

struct tls_cert {
	char		 id[FLM_CERT_ID_LEN + 1];
	char		 handle[80];
	SSL_CTX		*ctx;
	char		*alpn_name;	/* TLS-ALPN-01: the name it proves */
};

/* Session ticket keys: made here, in memory only. */
struct tls_ticket_key {
	unsigned char	 name[16];
	unsigned char	 aes[32];
	unsigned char	 hmac[32];
	time_t		 made;
};

static TAILQ_HEAD(, tls_wait)	 tls_waits = TAILQ_HEAD_INITIALIZER(tls_waits);
static int			 tls_nwaits;
static uint64_t			 tls_nextreq = 1;
/* Set around SSL_do_handshake: whom a signature request belongs to. */
static struct tls_wait		**tls_cur_slot;
static void			(*tls_cur_resume)(void *);
static void			*tls_cur_arg;

static struct tls_cert		*tls_certs;
static size_t			 tls_ncerts;
/* Client serials, lower case: the allowed ones (issued by keyd, not
 * revoked, not expired) and the revoked ones. */
static char			**tls_clients;
static size_t			 tls_nclients;
static char			**tls_revoked;
static size_t			 tls_nrevoked;
static struct tls_ticket_key	 tls_tickets[2];	/* current, previous */

/* ---- signing ------------------------------------------------------------ */

/*
 * Called by the provider inside a handshake's ASYNC job: ask keyd, then
 * pause until its answer (or a failure) is in.  1: sig holds the DER
 * signature.
 */
int
tls_sign_remote(const char *id, const unsigned char *dgst,
    unsigned char *sig, size_t *siglen)
{
	struct flm_tls_sign	 s;
	struct tls_wait		 w;

	if (ASYNC_get_current_job() == NULL || tls_cur_slot == NULL)
		return 0;
	if (px->c.peer == NULL) {
		log_warnx("TLS handshake: flm-keyd is not there to sign");
		return 0;
	}
	if (tls_nwaits >= TLS_MAX_SIGNING) {
		log_warnx("TLS handshake refused: %d already wait on "
		    "flm-keyd", tls_nwaits);
		return 0;
	}
	memset(&s, 0, sizeof(s));
	s.version = FLM_TLS_VERSION;
	s.dlen = FLM_TLS_DIGEST_LEN;
	s.reqid = tls_nextreq++;
	memcpy(s.cert_id, id, FLM_CERT_ID_LEN + 1);
	memcpy(s.digest, dgst, FLM_TLS_DIGEST_LEN);
	if (chan_compose(px->c.peer, IMSG_TLS_SIGN, 0, -1, &s,
	    sizeof(s)) == -1)
		return 0;
	memset(&w, 0, sizeof(w));
	w.reqid = s.reqid;
	w.sig = sig;
	w.siglen = siglen;
	w.slot = tls_cur_slot;
	w.resume = tls_cur_resume;
	w.arg = tls_cur_arg;
	*w.slot = &w;
	TAILQ_INSERT_TAIL(&tls_waits, &w, entry);
	tls_nwaits++;
	while (!w.done)
		if (!ASYNC_pause_job())
			break;
	if (!w.done) {
		TAILQ_REMOVE(&tls_waits, &w, entry);
		tls_nwaits--;
	}
	*w.slot = NULL;
	return w.done && w.ok;
}

/* The answer is in (or will never be): out of the list, job woken. */
static void
tls_wait_end(struct tls_wait *w, int ok)
{
	TAILQ_REMOVE(&tls_waits, w, entry);
	tls_nwaits--;
	w->done = 1;
	w->ok = ok;
	if (w->resume != NULL)
		w->resume(w->arg);
}

void
tls_signature(struct chan *ch, struct chan_msg *m)
{
	struct flm_tls_signature	 a;
	struct tls_wait			*w;

	if (msg_get_data(m, &a, sizeof(a)) == -1 || msg_end(m) == -1 ||
	    a.version != FLM_TLS_VERSION || a.result >= FLM_TLS_RESULT_MAX ||
	    a.siglen > FLM_TLS_SIG_MAX) {
		chan_fail(ch, "malformed TLS_SIGNATURE");
		return;
	}
	TAILQ_FOREACH(w, &tls_waits, entry)
		if (w->reqid == a.reqid)
			break;
	if (w == NULL)
		return;		/* the handshake was given up */
	if (a.result != FLM_TLS_OK || a.siglen == 0) {
		log_warnx("flm-keyd did not sign a handshake (result %u)",
		    a.result);
		tls_wait_end(w, 0);
		return;
	}
	memcpy(w->sig, a.sig, a.siglen);
	*w->siglen = a.siglen;
	tls_wait_end(w, 1);
}

/* keyd is gone: the signatures it owes will not come. */
void
tls_keyd_down(void)
{
	while (!TAILQ_EMPTY(&tls_waits))
		tls_wait_end(TAILQ_FIRST(&tls_waits), 0);
}

/* ---- connections ------------------------------------------------------------ */

static int
tls_serial_hex(X509 *x, char out[FLM_CERT_SERIAL_LEN + 1])
{
	BIGNUM	*bn;
	char	*hex = NULL, *p;
	int	 ok = 0;

	out[0] = '\0';
	if ((bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL)) !=
	    NULL && (hex = BN_bn2hex(bn)) != NULL &&
	    strlen(hex) <= FLM_CERT_SERIAL_LEN) {
		for (p = hex; *p != '\0'; p++)
			*p = (char)(*p >= 'A' && *p <= 'F' ? *p - 'A' + 'a' :
			    *p);
		memcpy(out, hex, strlen(hex) + 1);
		ok = 1;
	}
	OPENSSL_free(hex);
	BN_free(bn);
	return ok;
}

static int
tls_serial_in(const char *serial, char **list, size_t n)
{
	size_t	 i;

	for (i = 0; i < n; i++)
		if (strcmp(list[i], serial) == 0)
			return 1;
	return 0;
}

/*
 * A client certificate the local CA signed is accepted only if keyd
 * lists it in "clients": one whose row is gone from security.db, or
 * fails its MAC, is not.  0, or an X509_V_ERR_* with why (logged).
 */
static int
tls_client_refused(X509 *x, char serial[FLM_CERT_SERIAL_LEN + 1],
    const char **why)
{
	*why = NULL;
	if (!tls_serial_hex(x, serial)) {
		*why = "not a serial flm-keyd makes";
		return X509_V_ERR_CERT_REJECTED;
	}
	if (tls_serial_in(serial, tls_revoked, tls_nrevoked)) {
		*why = "revoked";
		return X509_V_ERR_CERT_REVOKED;
	}
	if (!tls_serial_in(serial, tls_clients, tls_nclients)) {
		*why = "not issued by this flm-keyd, or its row is gone";
		return X509_V_ERR_CERT_REJECTED;
	}
	return 0;
}

/* The chain is the local CA's; a leaf keyd does not list is refused. */
static int
tls_verify(int ok, X509_STORE_CTX *xs)
{
	X509		*x;
	const char	*why;
	char		 serial[FLM_CERT_SERIAL_LEN + 1];
	int		 err;

	if (!ok || X509_STORE_CTX_get_error_depth(xs) != 0)
		return ok;
	if ((x = X509_STORE_CTX_get_current_cert(xs)) == NULL)
		return 0;
	if ((err = tls_client_refused(x, serial, &why)) != 0) {
		/* Only holders of a certificate the CA signed get here. */
		log_info("client certificate %s refused: %s",
		    serial[0] != '\0' ? serial : "?", why);
		X509_STORE_CTX_set_error(xs, err);
		return 0;
	}
	return 1;
}

/* The handle's context; before its first ACME certificate, a
 * TLS-ALPN-01 one (tls_hello lets only the CA's validation through). */
static SSL_CTX *
tls_ctx_of(const char *handle)
{
	SSL_CTX	*ch = NULL;
	size_t	 i;

	for (i = 0; i < tls_ncerts; i++) {
		if (strcmp(tls_certs[i].handle, handle) != 0)
			continue;
		if (tls_certs[i].alpn_name == NULL)
			return tls_certs[i].ctx;
		if (ch == NULL)
			ch = tls_certs[i].ctx;
	}
	return ch;
}

/* Does a ClientHello's ALPN list (RFC 7301 §3.1) offer acme-tls/1? */
static int
tls_hello_acme(SSL *ssl)
{
	const unsigned char	*p;
	size_t			 len, n, i;

	if (!SSL_client_hello_get0_ext(ssl,
	    TLSEXT_TYPE_application_layer_protocol_negotiation, &p, &len) ||
	    len < 2 || (size_t)((p[0] << 8) | p[1]) != len - 2)
		return 0;
	for (i = 2; i < len; i += 1 + n) {
		n = p[i];
		if (i + 1 + n > len)
			return 0;
		if (n == 10 && memcmp(p + i + 1, "acme-tls/1", 10) == 0)
			return 1;
	}
	return 0;
}

/* The SNI host name of a ClientHello (RFC 6066 §3), or "". */
static void
tls_hello_sni(SSL *ssl, char *out, size_t sz)
{
	const unsigned char	*p;
	size_t			 len, n;

	out[0] = '\0';
	if (!SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_server_name, &p,
	    &len) || len < 5 || (size_t)((p[0] << 8) | p[1]) != len - 2 ||
	    p[2] != TLSEXT_NAMETYPE_host_name)
		return;
	n = (size_t)((p[3] << 8) | p[4]);
	if (n == 0 || n + 5 > len || n >= sz)
		return;
	memcpy(out, p + 5, n);
	out[n] = '\0';
}

/*
 * TLS-ALPN-01 (RFC 8737): a ClientHello offering acme-tls/1 gets the
 * challenge certificate of its SNI name on this handle, if the order
 * has one; any other is served by the handle's own certificate, and
 * refused while there is none.
 */
static int
tls_hello(SSL *ssl, int *al, void *arg)
{
	SSL_CTX		*ctx = SSL_get_SSL_CTX(ssl);
	const char	*handle = NULL;
	char		 sni[256];
	size_t		 i;
	int		 acme;

	(void)arg;
	for (i = 0; i < tls_ncerts; i++)
		if (tls_certs[i].ctx == ctx)
			handle = tls_certs[i].handle;
	acme = tls_hello_acme(ssl);
	if (handle == NULL)
		return SSL_CLIENT_HELLO_SUCCESS;	/* a state gone by */
	if (!acme) {
		for (i = 0; i < tls_ncerts; i++)
			if (tls_certs[i].ctx == ctx &&
			    tls_certs[i].alpn_name != NULL) {
				*al = SSL_AD_UNRECOGNIZED_NAME;
				return SSL_CLIENT_HELLO_ERROR;
			}
		return SSL_CLIENT_HELLO_SUCCESS;
	}
	tls_hello_sni(ssl, sni, sizeof(sni));
	for (i = 0; i < tls_ncerts; i++)
		if (tls_certs[i].alpn_name != NULL &&
		    strcmp(tls_certs[i].handle, handle) == 0 &&
		    strcasecmp(tls_certs[i].alpn_name, sni) == 0) {
			SSL_set_SSL_CTX(ssl, tls_certs[i].ctx);
			/* The CA has no client certificate to show. */
			SSL_set_verify(ssl, SSL_VERIFY_NONE, NULL);
			return SSL_CLIENT_HELLO_SUCCESS;
		}
	*al = SSL_AD_UNRECOGNIZED_NAME;
	return SSL_CLIENT_HELLO_ERROR;
}

/* Did the handshake end in acme-tls/1: the CA's validation, over. */
int
tls_is_acme(SSL *ssl)
{
	const unsigned char	*p;
	unsigned int		 len;

	SSL_get0_alpn_selected(ssl, &p, &len);
	return len == 10 && memcmp(p, "acme-tls/1", 10) == 0;
}

/* A connection on listener handle, client certificates as it says;
 * NULL (logged once per state) if keyd has no certificate for it. */
SSL *
tls_conn_new(const char *handle, int fd, enum tls_client_certs cc)
{
	static char	 missing[80];
	SSL_CTX		*ctx;
	SSL		*ssl;

	if ((ctx = tls_ctx_of(handle)) == NULL) {
		if (strcmp(missing, handle) != 0)
			log_warnx("%s: no certificate from flm-keyd yet; "
			    "TLS handshakes are closed", handle);
		snprintf(missing, sizeof(missing), "%s", handle);
		return NULL;
	}
	missing[0] = '\0';
	if ((ssl = SSL_new(ctx)) == NULL || SSL_set_fd(ssl, fd) != 1) {
		SSL_free(ssl);
		return NULL;
	}
	SSL_set_accept_state(ssl);
	/* Only the handshake runs in a job (the signature pauses it). */
	SSL_set_mode(ssl, SSL_MODE_ASYNC);
	if (cc != TLS_CC_OFF)
		SSL_set_verify(ssl, SSL_VERIFY_PEER | (cc == TLS_CC_REQUIRED ?
		    SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0), tls_verify);
	return ssl;
}

/* SSL_do_handshake, with whom to wake when keyd answers. */
int
tls_handshake(SSL *ssl, struct tls_wait **slot, void (*resume)(void *),
    void *arg)
{
	int	 rc;

	tls_cur_slot = slot;
	tls_cur_resume = resume;
	tls_cur_arg = arg;
	rc = SSL_do_handshake(ssl);
	tls_cur_slot = NULL;
	tls_cur_resume = NULL;
	tls_cur_arg = NULL;
	if (rc == 1)
		SSL_clear_mode(ssl, SSL_MODE_ASYNC);
	return rc;
}

/*
 * The handshake is done: the client certificate, if any, checked again
 * (a resumed session skipped the verify callback) and named.  -1: the
 * certificate is refused (revoked, or no longer listed).
 */
int
tls_peer(SSL *ssl, char *serial, char *label)
{
	X509		*x;
	const char	*why;
	int		 n;

	serial[0] = label[0] = '\0';
	if ((x = SSL_get0_peer_certificate(ssl)) == NULL)
		return 0;
	if (SSL_get_verify_result(ssl) != X509_V_OK ||
	    tls_client_refused(x, serial, &why) != 0) {
		serial[0] = '\0';
		return -1;
	}
	n = X509_NAME_get_text_by_NID(X509_get_subject_name(x),
	    NID_commonName, label, FLM_CERT_LABEL_MAX + 1);
	if (n <= 0 || strspn(label, "abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") != (size_t)n)
		label[0] = '\0';
	return 0;
}

/* A connection goes: a handshake paused on keyd is failed and run to
 * its end first (OpenSSL frees the job then), then freed. */
void
tls_conn_free(SSL *ssl, struct tls_wait **slot)
{
	struct tls_wait	*w;

	if (ssl == NULL)
		return;
	if ((w = *slot) != NULL) {
		w->resume = NULL;
		tls_wait_end(w, 0);
		(void)tls_handshake(ssl, slot, NULL, NULL);
	}
	SSL_free(ssl);
}

/* ---- contexts --------------------------------------------------------------- */

static int
tls_alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen,
    const unsigned char *in, unsigned int inlen, void *arg)
{
	/* What proxyd_parse.c serves, 1.1 preferred; a challenge
	 * certificate's context speaks acme-tls/1 only. */
	static const unsigned char	 http1[] = "\x08http/1.1\x08http/1.0";
	static const unsigned char	 acme[] = "\x0a" "acme-tls/1";

	(void)ssl;
	/* RFC 7301 §3.2: no protocol in common is a fatal alert. */
	if (SSL_select_next_proto((unsigned char **)out, outlen,
	    arg != NULL ? acme : http1, arg != NULL ? sizeof(acme) - 1 :
	    sizeof(http1) - 1, in, inlen) != OPENSSL_NPN_NEGOTIATED)
		return SSL_TLSEXT_ERR_ALERT_FATAL;
	return SSL_TLSEXT_ERR_OK;
}

static int
tls_ticket_make(struct tls_ticket_key *k)
{
	if (RAND_bytes(k->name, sizeof(k->name)) != 1 ||
	    RAND_bytes(k->aes, sizeof(k->aes)) != 1 ||
	    RAND_bytes(k->hmac, sizeof(k->hmac)) != 1)
		return -1;
	k->made = time(NULL);
	return 0;
}

/* Every 12 h a new key encrypts; the previous one still decrypts. */
static void
tls_ticket_rotate(void)
{
	struct tls_ticket_key	 k;

	if (time(NULL) - tls_tickets[0].made < TLS_TICKET_ROTATE ||
	    tls_ticket_make(&k) == -1)
		return;
	tls_tickets[1] = tls_tickets[0];
	tls_tickets[0] = k;
	OPENSSL_cleanse(&k, sizeof(k));
}

static int
tls_ticket(SSL *ssl, unsigned char name[16], unsigned char *iv,
    EVP_CIPHER_CTX *ectx, EVP_MAC_CTX *hctx, int enc)
{
	struct tls_ticket_key	*k = NULL;
	OSSL_PARAM		 p[3];
	int			 i;

	(void)ssl;
	tls_ticket_rotate();
	if (enc) {
		k = &tls_tickets[0];
		memcpy(name, k->name, sizeof(k->name));
		if (RAND_bytes(iv, EVP_MAX_IV_LENGTH) != 1)
			return -1;
	} else {
		for (i = 0; i < 2 && k == NULL; i++)
			if (tls_tickets[i].made != 0 &&
			    memcmp(name, tls_tickets[i].name, 16) == 0)
				k = &tls_tickets[i];
		if (k == NULL)
			return 0;	/* unknown: a full handshake */
	}
	p[0] = OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, k->hmac,
	    sizeof(k->hmac));
	p[1] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
	    (char *)"SHA256", 0);
	p[2] = OSSL_PARAM_construct_end();
	if (EVP_MAC_CTX_set_params(hctx, p) != 1 ||
	    (enc ? EVP_EncryptInit_ex(ectx, EVP_aes_256_cbc(), NULL, k->aes,
	    iv) : EVP_DecryptInit_ex(ectx, EVP_aes_256_cbc(), NULL, k->aes,
	    iv)) != 1)
		return -1;
	/* A ticket under the previous key is renewed. */
	return enc || k == &tls_tickets[0] ? 1 : 2;
}

/* The settings of docs/PROXY_SPEC.md, the certificate, its key in the
 * flmkeyd provider, and the client CA (if keyd has one). */
static SSL_CTX *
tls_ctx_new(const char *id, const char *handle, const char *pem, size_t len,
    X509_STORE *cas, STACK_OF(X509_NAME) *canames, int acme)
{
	STACK_OF(X509)	*chain;
	X509		*leaf;
	EVP_PKEY	*key = NULL;
	SSL_CTX		*ctx;
	const char	*why;
	int		 ok;

	if ((chain = pem_chain(pem, len)) == NULL)
		return NULL;
	leaf = sk_X509_shift(chain);
	ok = (ctx = SSL_CTX_new(TLS_server_method())) != NULL &&
	    (key = tlskey_new(id, leaf)) != NULL &&
	    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) == 1 &&
	    SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) == 1 &&
	    SSL_CTX_set_cipher_list(ctx, TLS_CIPHERS) == 1 &&
	    SSL_CTX_set_ciphersuites(ctx, TLS_SUITES) == 1 &&
	    SSL_CTX_set1_groups_list(ctx, TLS_GROUPS) == 1 &&
	    SSL_CTX_set1_sigalgs_list(ctx, TLS_SIGALGS) == 1 &&
	    SSL_CTX_use_cert_and_key(ctx, leaf, key, chain, 1) == 1 &&
	    SSL_CTX_set_session_id_context(ctx, (const unsigned char *)handle,
	    (unsigned int)strlen(handle)) == 1;
	EVP_PKEY_free(key);
	X509_free(leaf);
	sk_X509_pop_free(chain, X509_free);
	if (!ok) {
		why = ERR_reason_error_string(ERR_peek_last_error());
		log_warnx("certificate %s for %s not served: %s", id, handle,
		    why != NULL ? why : "refused");
		ERR_clear_error();
		SSL_CTX_free(ctx);
		return NULL;
	}
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION |
	    SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE |
	    SSL_OP_NO_TLSv1 | SSL_OP_NO_TLSv1_1);
	/* Stateless tickets only: nothing kept per session. */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, tls_ticket);
	SSL_CTX_set_alpn_select_cb(ctx, tls_alpn, acme ? (void *)1 : NULL);
	SSL_CTX_set_client_hello_cb(ctx, tls_hello, NULL);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
	    SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	/* A record in one read, not its header and then its body. */
	SSL_CTX_set_read_ahead(ctx, 1);
	if (cas != NULL) {
		SSL_CTX_set1_cert_store(ctx, cas);
		SSL_CTX_set_client_CA_list(ctx, SSL_dup_CA_list(canames));
		SSL_CTX_set_purpose(ctx, X509_PURPOSE_SSL_CLIENT);
	}
	return ctx;
}

static void
tls_certs_free(struct tls_cert *certs, size_t n)
{
	size_t	 i;

	for (i = 0; i < n; i++) {
		SSL_CTX_free(certs[i].ctx);	/* connections keep theirs */
		free(certs[i].alpn_name);
	}
	free(certs);
}

static void
tls_serials_free(char **r, size_t n)
{
	size_t	 i;

	for (i = 0; i < n; i++)
		free(r[i]);
	free(r);
}

/* client_ca: a store to verify with and the name to ask for. */
static int
tls_client_ca(struct json_object *o, X509_STORE **store,
    STACK_OF(X509_NAME) **names)
{
	struct json_object	*v;
	STACK_OF(X509)		*sk;
	int			 i;

	*store = NULL;
	*names = NULL;
	if (!json_object_object_get_ex(o, "client_ca", &v) ||
	    json_object_is_type(v, json_type_null))
		return 0;
	if (!json_object_is_type(v, json_type_string) ||
	    (sk = pem_chain(json_object_get_string(v),
	    (size_t)json_object_get_string_len(v))) == NULL)
		return -1;
	if ((*store = X509_STORE_new()) == NULL ||
	    (*names = sk_X509_NAME_new_null()) == NULL) {
		sk_X509_pop_free(sk, X509_free);
		return -1;
	}
	for (i = 0; i < sk_X509_num(sk); i++) {
		X509_STORE_add_cert(*store, sk_X509_value(sk, i));
		sk_X509_NAME_push(*names,
		    X509_NAME_dup(X509_get_subject_name(sk_X509_value(sk, i))));
	}
	sk_X509_pop_free(sk, X509_free);
	return 0;
}

static int
tls_hex_id(struct json_object *v, size_t len)
{
	const char	*s;

	if (!json_object_is_type(v, json_type_string) ||
	    (size_t)json_object_get_string_len(v) != len)
		return 0;
	s = json_object_get_string(v);
	return strspn(s, "0123456789abcdef") == len;
}

/* clients or revoked: serials, each as keyd makes them, bounded. */
static int
tls_parse_serials(struct json_object *o, const char *member, char ***out,
    size_t *nout)
{
	struct json_object	*a, *v;
	size_t			 i, n;

	*out = NULL;
	*nout = 0;
	if (!json_object_object_get_ex(o, member, &a) ||
	    !json_object_is_type(a, json_type_array) ||
	    (n = json_object_array_length(a)) > FLM_TLS_SERIALS_MAX)
		return -1;
	if (n > 0 && (*out = calloc(n, sizeof(**out))) == NULL)
		return -1;
	for (i = 0; i < n; i++) {
		v = json_object_array_get_idx(a, i);
		if (!tls_hex_id(v, FLM_CERT_SERIAL_LEN) ||
		    ((*out)[i] = strdup(json_object_get_string(v))) == NULL) {
			tls_serials_free(*out, i);
			*out = NULL;
			return -1;
		}
	}
	*nout = n;
	return 0;
}

/* certs: a context each; one that fails is logged and left out. */
static int
tls_parse_certs(struct json_object *o, X509_STORE *cas,
    STACK_OF(X509_NAME) *canames, struct tls_cert **out, size_t *nout)
{
	struct json_object	*a, *e, *id, *h, *chain, *alpn, *name;
	struct tls_cert		*c;
	size_t			 i, n;

	*out = NULL;
	*nout = 0;
	if (!json_object_object_get_ex(o, "certs", &a) ||
	    !json_object_is_type(a, json_type_array))
		return -1;
	n = json_object_array_length(a);
	if (n > 0 && (*out = calloc(n, sizeof(**out))) == NULL)
		return -1;
	for (i = 0; i < n; i++) {
		e = json_object_array_get_idx(a, i);
		if (!json_object_is_type(e, json_type_object) ||
		    !json_object_object_get_ex(e, "id", &id) ||
		    !tls_hex_id(id, FLM_CERT_ID_LEN) ||
		    !json_object_object_get_ex(e, "handle", &h) ||
		    !json_object_is_type(h, json_type_string) ||
		    json_object_get_string_len(h) >= (int)sizeof(c->handle) ||
		    !json_object_object_get_ex(e, "chain", &chain) ||
		    !json_object_is_type(chain, json_type_string) ||
		    (json_object_object_get_ex(e, "alpn", &alpn) &&
		    (!json_object_is_type(alpn, json_type_string) ||
		    strcmp(json_object_get_string(alpn), "acme-tls/1") != 0 ||
		    !json_object_object_get_ex(e, "name", &name) ||
		    !json_is_string_max(name, 253)))) {
			tls_certs_free(*out, *nout);
			*out = NULL;
			*nout = 0;
			return -1;
		}
		c = &(*out)[*nout];
		memcpy(c->id, json_object_get_string(id), FLM_CERT_ID_LEN + 1);
		snprintf(c->handle, sizeof(c->handle), "%s",
		    json_object_get_string(h));
		alpn = json_object_object_get(e, "alpn");
		if ((c->ctx = tls_ctx_new(c->id, c->handle,
		    json_object_get_string(chain),
		    (size_t)json_object_get_string_len(chain),
		    alpn ? NULL : cas, alpn ? NULL : canames,
		    alpn != NULL)) == NULL)
			continue;
		if (alpn != NULL && (c->alpn_name = strdup(
		    json_object_get_string(json_object_object_get(e,
		    "name")))) == NULL) {
			SSL_CTX_free(c->ctx);
			continue;
		}
		(*nout)++;
	}
	return 0;
}

/* keyd's whole TLS state: it replaces ours, then APPLIED (seq != 0). */
void
tls_state(struct chan *ch, struct chan_msg *m)
{
	struct json_object	*o;
	struct tls_cert		*certs;
	char			**clients, **revoked;
	size_t			 ncerts, nclients, nrevoked;
	X509_STORE		*cas;
	STACK_OF(X509_NAME)	*canames;
	uint64_t		 seq;
	int			 rc;

	if (msg_get_u64(m, &seq) == -1 || msg_get_object(m, &o) == -1) {
		chan_fail(ch, "malformed TLS_STATE");
		return;
	}
	clients = revoked = NULL;
	nclients = nrevoked = 0;
	rc = tls_client_ca(o, &cas, &canames) == -1 ||
	    tls_parse_serials(o, "clients", &clients, &nclients) == -1 ||
	    tls_parse_serials(o, "revoked", &revoked, &nrevoked) == -1 ||
	    tls_parse_certs(o, cas, canames, &certs, &ncerts) == -1;
	if (rc) {
		tls_serials_free(clients, nclients);
		tls_serials_free(revoked, nrevoked);
	}
	X509_STORE_free(cas);		/* the contexts hold it */
	sk_X509_NAME_pop_free(canames, X509_NAME_free);
	json_object_put(o);
	if (rc) {
		chan_fail(ch, "TLS_STATE refused: malformed");
		return;
	}
	tls_certs_free(tls_certs, tls_ncerts);
	tls_certs = certs;
	tls_ncerts = ncerts;
	tls_serials_free(tls_clients, tls_nclients);
	tls_clients = clients;
	tls_nclients = nclients;
	tls_serials_free(tls_revoked, tls_nrevoked);
	tls_revoked = revoked;
	tls_nrevoked = nrevoked;
	log_debug("TLS state %llu: %zu certificates, %zu allowed and %zu "
	    "revoked clients", (unsigned long long)seq, ncerts, nclients,
	    nrevoked);
	if (seq != 0)
		chan_compose(ch, IMSG_TLS_APPLIED, 0, -1, &seq, sizeof(seq));
}

/* Before the sandbox: OpenSSL, the provider, a first random draw. */
void
tls_init(void)
{
	unsigned char	 b[1];

	if (OPENSSL_init_ssl(OPENSSL_INIT_NO_LOAD_CONFIG, NULL) != 1)
		fatalx("OpenSSL init");
	tlskey_init();
	if (RAND_bytes(b, sizeof(b)) != 1 ||
	    tls_ticket_make(&tls_tickets[0]) == -1 ||
	    !ASYNC_init_thread(0, 0))
		fatalx("TLS init");
}

void
tls_cleanup(void)
{
	tls_keyd_down();
	tls_certs_free(tls_certs, tls_ncerts);
	tls_certs = NULL;
	tls_ncerts = 0;
	tls_serials_free(tls_clients, tls_nclients);
	tls_clients = NULL;
	tls_nclients = 0;
	tls_serials_free(tls_revoked, tls_nrevoked);
	tls_revoked = NULL;
	tls_nrevoked = 0;
	OPENSSL_cleanse(tls_tickets, sizeof(tls_tickets));
	ASYNC_cleanup_thread();
	tlskey_cleanup();
}
