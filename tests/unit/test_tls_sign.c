/*
 * flm-proxyd's signing round trip (flm-proxyd/proxyd_tls.c and
 * proxyd_tlskey.c, linked whole), over a real channel to a stand-in
 * for flm-keyd that holds the key: a TLS 1.3 and a TLS 1.2 handshake
 * finish with a signature made on the other side of the channel while
 * the handshake's job is paused; a refusal, keyd's channel closing, and
 * the connection freed while its job is paused each end the handshake
 * (no leak: this process runs LeakSanitizer, unlike the sandboxed
 * daemon); a malformed answer fails the channel; the key proxyd holds
 * exports no private part.
 */
#include "config.h"

#include <sys/socket.h>

#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>
#include <json-c/json.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "log.h"
#include "proxyd.h"

#define CERT_ID		"0123456789abcdef"
#define HANDLE		"127.0.0.2:8443"

static struct proxyd	 proxyd;
struct proxyd		*px = &proxyd;

/* The stand-in keyd: how it answers, what it saw. */
enum keyd_mode { K_SIGN, K_HOLD, K_REFUSE, K_BAD };
static struct {
	struct chan		*ch;
	enum keyd_mode		 mode;
	EVP_PKEY		*key;
	int			 asked;
	uint32_t		 dlen;
	char			 cert_id[FLM_CERT_ID_LEN + 1];
	struct flm_tls_sign	 held;
} keyd;

static char	*proxyd_failed;	/* why proxyd's end of the channel went */
static int	 resumed;
static X509	*cert;

static void
keyd_answer(const struct flm_tls_sign *s, enum keyd_mode mode)
{
	struct flm_tls_signature	 a;
	EVP_PKEY_CTX			*pc;
	size_t				 len = sizeof(a.sig);

	memset(&a, 0, sizeof(a));
	a.version = FLM_TLS_VERSION;
	a.reqid = s->reqid;
	a.result = FLM_TLS_REFUSED;
	if (mode == K_SIGN) {
		assert_non_null(pc = EVP_PKEY_CTX_new(keyd.key, NULL));
		assert_int_equal(EVP_PKEY_sign_init(pc), 1);
		assert_int_equal(EVP_PKEY_sign(pc, a.sig, &len, s->digest,
		    s->dlen), 1);
		EVP_PKEY_CTX_free(pc);
		a.result = FLM_TLS_OK;
		a.siglen = (uint32_t)len;
	} else if (mode == K_BAD)
		a.siglen = FLM_TLS_SIG_MAX + 1;
	chan_compose(keyd.ch, IMSG_TLS_SIGNATURE, 0, -1, &a, sizeof(a));
}

static void
keyd_msg(struct chan *ch, struct chan_msg *m, void *arg)
{
	struct flm_tls_sign	 s;

	(void)ch;
	(void)arg;
	if (m->hdr.type != IMSG_TLS_SIGN)
		return;
	assert_int_equal(msg_get_data(m, &s, sizeof(s)), 0);
	assert_int_equal(msg_end(m), 0);
	keyd.asked++;
	keyd.dlen = s.dlen;
	memcpy(keyd.cert_id, s.cert_id, sizeof(keyd.cert_id));
	if (keyd.mode == K_HOLD)
		keyd.held = s;
	else
		keyd_answer(&s, keyd.mode);
}

static void
keyd_close(struct chan *ch, const char *reason, void *arg)
{
	(void)ch;
	(void)reason;
	(void)arg;
}

static void
proxyd_msg(struct chan *ch, struct chan_msg *m, void *arg)
{
	(void)arg;
	if (m->hdr.type == IMSG_TLS_SIGNATURE)
		tls_signature(ch, m);
}

static void
proxyd_close(struct chan *ch, const char *reason, void *arg)
{
	(void)ch;
	(void)arg;
	free(proxyd_failed);
	proxyd_failed = strdup(reason != NULL ? reason : "EOF");
	tls_keyd_down();
}

static void
on_resume(void *arg)
{
	(void)arg;
	resumed++;
}

/* A self-signed P-256 certificate; the key stays with "keyd". */
static void
make_cert(void)
{
	assert_non_null(keyd.key = EVP_EC_gen("P-256"));
	assert_non_null(cert = X509_new());
	X509_set_version(cert, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
	X509_gmtime_adj(X509_getm_notBefore(cert), 0);
	X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
	X509_set_pubkey(cert, keyd.key);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(cert), "CN",
	    MBSTRING_ASC, (const unsigned char *)"localhost", -1, -1, 0);
	X509_set_issuer_name(cert, X509_get_subject_name(cert));
	assert_true(X509_sign(cert, keyd.key, EVP_sha256()) > 0);
}

/* keyd's IMSG_TLS_STATE (seq 0) of text, delivered as a message. */
static void
push_text(const char *text)
{
	struct chan_msg		 m;
	struct mbuf		 b;

	memset(&b, 0, sizeof(b));
	mbuf_put_u64(&b, 0);
	mbuf_put_data(&b, text, strlen(text));
	assert_int_equal(b.err, 0);
	memset(&m, 0, sizeof(m));
	m.hdr.type = IMSG_TLS_STATE;
	m.data = b.data;
	m.len = b.len;
	m.fd = -1;
	tls_state(px->c.peer, &m);
	mbuf_free(&b);
}

/* keyd's IMSG_TLS_STATE with the certificate, delivered as a message;
 * member, if not NULL, replaced by v (left out if v is NULL). */
static void
push_state_with(const char *member, struct json_object *v)
{
	struct json_object	*o, *certs, *c;
	BIO			*bio;
	char			*pem;
	long			 len;

	assert_non_null(bio = BIO_new(BIO_s_mem()));
	assert_int_equal(PEM_write_bio_X509(bio, cert), 1);
	len = BIO_get_mem_data(bio, &pem);
	o = json_object_new_object();
	certs = json_object_new_array();
	c = json_object_new_object();
	json_object_object_add(c, "id", json_object_new_string(CERT_ID));
	json_object_object_add(c, "handle", json_object_new_string(HANDLE));
	json_object_object_add(c, "chain",
	    json_object_new_string_len(pem, (int)len));
	json_object_array_add(certs, c);
	json_object_object_add(o, "certs", certs);
	json_object_object_add(o, "client_ca", NULL);
	json_object_object_add(o, "clients", json_object_new_array());
	json_object_object_add(o, "revoked", json_object_new_array());
	if (member != NULL) {
		json_object_object_del(o, member);
		if (v != NULL)
			json_object_object_add(o, member, v);
	}
	push_text(json_object_to_json_string(o));
	json_object_put(o);
	BIO_free(bio);
}

static void
push_state(void)
{
	push_state_with(NULL, NULL);
}

static int
setup(void **state)
{
	int	 sp[2];

	(void)state;
	memset(&keyd, 0, sizeof(keyd));
	resumed = 0;
	assert_non_null(px->c.base = event_base_new());
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
	assert_non_null(px->c.peer = chan_new(px->c.base, sp[0], PROC_PROXYD,
	    0, proxyd_msg, proxyd_close, NULL));
	assert_non_null(keyd.ch = chan_new(px->c.base, sp[1], PROC_KEYD, 0,
	    keyd_msg, keyd_close, NULL));
	make_cert();
	push_state();
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	tls_keyd_down();
	if (px->c.peer != NULL)
		chan_free(px->c.peer);
	if (keyd.ch != NULL)
		chan_free(keyd.ch);
	px->c.peer = keyd.ch = NULL;
	event_base_free(px->c.base);
	EVP_PKEY_free(keyd.key);
	X509_free(cert);
	free(proxyd_failed);
	proxyd_failed = NULL;
	return 0;
}

struct pair {
	SSL_CTX		*cctx;
	SSL		*client, *server;
	struct tls_wait	*wait;
	int		 fd[2];
	int		 crc, src;
};

static void
pair_new(struct pair *p, int version)
{
	memset(p, 0, sizeof(*p));
	p->crc = p->src = -1;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, p->fd), 0);
	fcntl(p->fd[0], F_SETFL, O_NONBLOCK);
	fcntl(p->fd[1], F_SETFL, O_NONBLOCK);
	assert_non_null(p->server = tls_conn_new(HANDLE, p->fd[0],
	    TLS_CC_OFF));
	assert_non_null(p->cctx = SSL_CTX_new(TLS_client_method()));
	SSL_CTX_set_min_proto_version(p->cctx, version);
	SSL_CTX_set_max_proto_version(p->cctx, version);
	SSL_CTX_set_verify(p->cctx, SSL_VERIFY_PEER, NULL);
	X509_STORE_add_cert(SSL_CTX_get_cert_store(p->cctx), cert);
	assert_non_null(p->client = SSL_new(p->cctx));
	SSL_set_fd(p->client, p->fd[1]);
	SSL_set_connect_state(p->client);
}

/* Both ends and the channels, a few rounds; 1 when both are done. */
static int
pair_run(struct pair *p, int rounds)
{
	while (rounds-- > 0 && (p->crc != 1 || p->src != 1)) {
		if (p->crc != 1 && (p->crc = SSL_do_handshake(p->client)) != 1 &&
		    SSL_get_error(p->client, p->crc) != SSL_ERROR_WANT_READ)
			return -1;
		if (p->src != 1 && (p->src = tls_handshake(p->server, &p->wait,
		    on_resume, NULL)) != 1) {
			int e = SSL_get_error(p->server, p->src);

			if (e != SSL_ERROR_WANT_READ &&
			    e != SSL_ERROR_WANT_ASYNC)
				return -1;
		}
		event_base_loop(px->c.base, EVLOOP_NONBLOCK);
	}
	return p->crc == 1 && p->src == 1;
}

static void
pair_free(struct pair *p)
{
	tls_conn_free(p->server, &p->wait);
	SSL_free(p->client);
	SSL_CTX_free(p->cctx);
	close(p->fd[0]);
	close(p->fd[1]);
	ERR_clear_error();
}

static void
handshake_signed(int version)
{
	struct pair	 p;

	pair_new(&p, version);
	assert_int_equal(pair_run(&p, 200), 1);
	assert_int_equal(keyd.asked, 1);
	assert_int_equal(keyd.dlen, FLM_TLS_DIGEST_LEN);
	assert_string_equal(keyd.cert_id, CERT_ID);
	assert_int_equal(resumed, 1);
	assert_null(p.wait);
	/* The client checked the signature against the certificate. */
	assert_int_equal(SSL_get_verify_result(p.client), X509_V_OK);
	assert_int_equal(SSL_version(p.client), version);
	pair_free(&p);
}

static void
test_tls13_signed_by_keyd(void **state)
{
	(void)state;
	handshake_signed(TLS1_3_VERSION);
}

static void
test_tls12_signed_by_keyd(void **state)
{
	(void)state;
	handshake_signed(TLS1_2_VERSION);
}

static void
test_refused(void **state)
{
	struct pair	 p;

	(void)state;
	keyd.mode = K_REFUSE;
	pair_new(&p, TLS1_3_VERSION);
	assert_int_equal(pair_run(&p, 200), -1);
	assert_int_equal(keyd.asked, 1);
	assert_null(p.wait);
	pair_free(&p);
}

/* keyd holds the request: the handshake waits, paused, as long as it
 * likes, then the connection goes: its job is run to its end. */
static void
test_freed_while_paused(void **state)
{
	struct pair	 p;

	(void)state;
	keyd.mode = K_HOLD;
	pair_new(&p, TLS1_3_VERSION);
	assert_int_equal(pair_run(&p, 50), 0);
	assert_int_equal(keyd.asked, 1);
	assert_non_null(p.wait);
	assert_int_equal(SSL_get_error(p.server, p.src),
	    SSL_ERROR_WANT_ASYNC);
	pair_free(&p);
	/* keyd's late answer finds no one and harms nothing. */
	keyd_answer(&keyd.held, K_SIGN);
	event_base_loop(px->c.base, EVLOOP_NONBLOCK);
	assert_null(proxyd_failed);
}

/* keyd's channel goes while a handshake waits: it fails at once. */
static void
test_keyd_gone(void **state)
{
	struct pair	 p;

	(void)state;
	keyd.mode = K_HOLD;
	pair_new(&p, TLS1_3_VERSION);
	assert_int_equal(pair_run(&p, 50), 0);
	assert_non_null(p.wait);
	chan_free(keyd.ch);
	keyd.ch = NULL;
	event_base_loop(px->c.base, EVLOOP_NONBLOCK);
	assert_non_null(proxyd_failed);
	assert_int_equal(resumed, 1);
	assert_int_equal(pair_run(&p, 50), -1);
	assert_null(p.wait);
	pair_free(&p);
}

static void
test_malformed_signature(void **state)
{
	struct pair	 p;

	(void)state;
	keyd.mode = K_BAD;
	pair_new(&p, TLS1_3_VERSION);
	(void)pair_run(&p, 50);
	assert_non_null(proxyd_failed);
	assert_non_null(strstr(proxyd_failed, "malformed TLS_SIGNATURE"));
	pair_free(&p);
}

/* 256 handshakes wait on keyd at most: the next one fails at once,
 * without asking. */
static void
test_bounded(void **state)
{
	struct pair	*p;
	int		 i;

	(void)state;
	keyd.mode = K_HOLD;
	assert_non_null(p = calloc(257, sizeof(*p)));
	for (i = 0; i < 256; i++) {
		pair_new(&p[i], TLS1_3_VERSION);
		assert_int_equal(pair_run(&p[i], 50), 0);
		assert_non_null(p[i].wait);
	}
	assert_int_equal(keyd.asked, 256);
	pair_new(&p[256], TLS1_3_VERSION);
	assert_int_equal(pair_run(&p[256], 50), -1);
	assert_int_equal(keyd.asked, 256);
	for (i = 0; i < 257; i++)
		pair_free(&p[i]);
	free(p);
}

/* A certificate that does not parse is left out (its handshakes are
 * closed); a malformed state fails the channel and the state in force
 * stays. */
static void
test_state_checks(void **state)
{
	SSL	*ssl;
	int	 fd[2];

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fd), 0);
	push_text("{\"certs\": [{\"id\": \"" CERT_ID "\", \"handle\": \""
	    HANDLE "\", \"chain\": \"not a PEM\"}], \"client_ca\": null, "
	    "\"clients\": [], \"revoked\": []}");
	event_base_loop(px->c.base, EVLOOP_NONBLOCK);
	assert_null(proxyd_failed);
	assert_null(tls_conn_new(HANDLE, fd[0], TLS_CC_OFF));
	push_state();
	assert_non_null(ssl = tls_conn_new(HANDLE, fd[0], TLS_CC_OFF));
	SSL_free(ssl);
	push_text("{\"certs\": [{\"id\": \"XYZ\", \"handle\": \"" HANDLE
	    "\", \"chain\": \"\"}], \"client_ca\": null, \"clients\": [], "
	    "\"revoked\": []}");
	event_base_loop(px->c.base, EVLOOP_NONBLOCK);
	assert_non_null(proxyd_failed);
	assert_non_null(strstr(proxyd_failed, "TLS_STATE refused"));
	assert_non_null(ssl = tls_conn_new(HANDLE, fd[0], TLS_CC_OFF));
	SSL_free(ssl);
	close(fd[0]);
	close(fd[1]);
}

/* n serials of keyd's form, the last one replaced by last if not NULL. */
static struct json_object *
serials(size_t n, const char *last)
{
	struct json_object	*a = json_object_new_array();
	char			 s[FLM_CERT_SERIAL_LEN + 1];
	size_t			 i;

	for (i = 0; i < n; i++) {
		snprintf(s, sizeof(s), "1%015x", (unsigned int)(i & 0xffffff));
		json_object_array_add(a, json_object_new_string(
		    i + 1 == n && last != NULL ? last : s));
	}
	return a;
}

/*
 * "clients" (the allow-list) and "revoked" are checked alike: an array
 * of at most FLM_TLS_SERIALS_MAX serials of 16 lower-case hex digits.
 * Anything else is refused, the channel failed, the state kept.
 */
static void
test_state_clients_checks(void **state)
{
	static const char	*members[] = { "clients", "revoked" };
	static const char	*bad[] = { "1234567890abcdeF", "1234567890abcde",
	    "1234567890abcdef0", "1234567890abcdeg", "" };
	struct json_object	*v;
	SSL			*ssl;
	size_t			 m, i, nvar = sizeof(bad) / sizeof(bad[0]) + 4;
	int			 fd[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fd), 0);
	/* As many as the bound allows: accepted. */
	push_state_with("clients", serials(FLM_TLS_SERIALS_MAX, NULL));
	event_base_loop(px->c.base, EVLOOP_NONBLOCK);
	assert_null(proxyd_failed);
	for (m = 0; m < 2; m++)
		for (i = 0; i < nvar; i++) {
			teardown(state);
			setup(state);
			if (i < sizeof(bad) / sizeof(bad[0]))
				v = serials(3, bad[i]);
			else if (i == nvar - 4)
				v = NULL;		/* left out */
			else if (i == nvar - 3)
				v = json_object_new_string("1234567890abcdef");
			else if (i == nvar - 2) {
				v = serials(2, NULL);
				json_object_array_add(v,
				    json_object_new_int(1));
			} else
				v = serials(FLM_TLS_SERIALS_MAX + 1, NULL);
			push_state_with(members[m], v);
			event_base_loop(px->c.base, EVLOOP_NONBLOCK);
			assert_non_null(proxyd_failed);
			assert_non_null(strstr(proxyd_failed,
			    "TLS_STATE refused"));
			/* setup's good state stands. */
			assert_non_null(ssl = tls_conn_new(HANDLE, fd[0],
			    TLS_CC_OFF));
			SSL_free(ssl);
		}
	close(fd[0]);
	close(fd[1]);
}

/* The key proxyd holds: public only, whatever is asked of it. */
static void
test_key_has_no_private_part(void **state)
{
	EVP_PKEY	*k;
	BIGNUM		*priv = NULL;
	OSSL_PARAM	*params = NULL;

	(void)state;
	assert_non_null(k = tlskey_new(CERT_ID, cert));
	assert_int_equal(EVP_PKEY_get_bn_param(k, "priv", &priv), 0);
	assert_null(priv);
	assert_true(EVP_PKEY_todata(k, EVP_PKEY_KEYPAIR, &params) <= 0);
	assert_null(params);
	assert_int_equal(EVP_PKEY_eq(k, X509_get0_pubkey(cert)), 1);
	assert_int_equal(EVP_PKEY_get_bits(k), 256);
	EVP_PKEY_free(k);
	ERR_clear_error();
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_tls13_signed_by_keyd,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_tls12_signed_by_keyd,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_refused, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_freed_while_paused,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_keyd_gone, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_malformed_signature,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_bounded, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_state_checks, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_state_clients_checks,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_key_has_no_private_part,
		    setup, teardown),
	};

	int	 rv;

	log_init(1, 0);
	tls_init();
	rv = cmocka_run_group_tests(tests, NULL, NULL);
	tls_cleanup();
	return rv;
}
