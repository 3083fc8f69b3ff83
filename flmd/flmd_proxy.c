/*
 * The proxy's listening sockets.  flmd binds them (it may bind
 * privileged ports) and passes each to flm-proxyd by descriptor; it
 * keeps its own copy so a restarted proxyd gets them back and clients
 * wait in the backlog instead of being refused.  Handles are kept in
 * proxy_profiles and come back when flmd restarts.
 */
#include "config.h"

#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>
#include <sqlite3.h>

#include "chan.h"
#include "db.h"
#include "flmd.h"
#include "jsonbuf.h"
#include "log.h"
#include "netaddr.h"

#define PROXY_MAX_HANDLES	8
#define PROXY_DEFAULT_PORT	8088
#define PROXY_BACKLOG		511
/* No listener answers more in the second between two reports. */
#define PROXY_STATS_MAX_DELTA	1000000000LL
/* Strict-Transport-Security max-age: at most two years. */
#define PROXY_HSTS_MAX		63072000

struct proxy_handle {
	char	 id[80];		/* bind:port */
	char	 bind[INET6_ADDRSTRLEN];
	int	 port;
	char	 mode[16];
	char	 client_certs[12];	/* off, optional, required */
	int	 bearer;		/* 0: a client certificate alone */
	int	 hsts;			/* seconds; 0: no header */
	int	 fd;
	int	 auth;		/* 0: --bench-no-auth, loopback only */
	time_t	 started;
	uint64_t requests;	/* served, as proxyd reported; saturates */
	/* TLS: keyd's CERTINFO, and the ensure request awaited. */
	struct json_object *cert;
	uint32_t tls_req;	/* 0: none; else PROXY_TLS_REQ bit set */
	uint32_t ctl_id;	/* the flm proxy start waiting, 0: none */
	int	 ready;		/* local-http, or a certificate came */
	char	 tls_error[160];	/* the last ensure's failure */
	/* https-acme: its options, and the HTTP-01 listener (-1: none). */
	struct json_object *acme;
	int	 acme_fd;
	char	 acme_id[80];
	int	 early;		/* TLS-ALPN-01: served before a certificate */
	struct json_object *acme_fail;	/* keyd's last failure, or NULL */
};

static struct proxy_handle	 handles[PROXY_MAX_HANDLES];
static int			 nhandles;
static uint32_t			 proxy_nextreq;

static int
proxy_tls(const struct proxy_handle *h)
{
	return strcmp(h->mode, "local-http") != 0;
}

/* Ids of flmd's own requests to keyd, apart from control clients'. */
static uint32_t
proxy_reqid(void)
{
	proxy_nextreq = (proxy_nextreq + 1) & ~PROXY_TLS_REQ;
	if (proxy_nextreq == 0)
		proxy_nextreq = 1;
	return proxy_nextreq | PROXY_TLS_REQ;
}

static int
proxy_loopback(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr)
		    >> 24) == 127;
	return IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)ss)->
	    sin6_addr);
}

/* Port 0: the kernel picks one, and *port says which. */
static int
proxy_listen(const char *addr, int *port, int noauth, int tls, char *err,
    size_t errsz)
{
	struct sockaddr_storage	 ss;
	socklen_t		 len;
	int			 fd, on = 1;

	if (netaddr_parse(addr, *port, &ss, &len) == -1) {
		snprintf(err, errsz, "--bind %s: not an IPv4 or IPv6 address",
		    addr);
		return -1;
	}
	/* Neither may face a network, whatever the mode. */
	if (noauth && !proxy_loopback(&ss)) {
		snprintf(err, errsz, "--bench-no-auth is for benchmarks on "
		    "loopback only, not %s", addr);
		return -1;
	}
	if (!tls && !proxy_loopback(&ss)) {
		snprintf(err, errsz, "--bind %s: mode local-http serves "
		    "loopback addresses only (127.0.0.0/8, ::1); a network "
		    "address needs --mode dev-selfsigned or packaged-ca", addr);
		return -1;
	}
	if ((fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0)) == -1 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) == -1 ||
	    bind(fd, (struct sockaddr *)&ss, len) == -1 ||
	    listen(fd, PROXY_BACKLOG) == -1 ||
	    getsockname(fd, (struct sockaddr *)&ss, &len) == -1) {
		snprintf(err, errsz, "cannot listen on %s port %d: %s", addr,
		    *port, strerror(errno));
		if (fd != -1)
			close(fd);
		return -1;
	}
	*port = ntohs(ss.ss_family == AF_INET ?
	    ((struct sockaddr_in *)&ss)->sin_port :
	    ((struct sockaddr_in6 *)&ss)->sin6_port);
	return fd;
}

static struct json_object *
proxy_handle_json(const struct proxy_handle *h)
{
	struct json_object	*o = json_object_new_object();

	json_object_object_add(o, "id", json_object_new_string(h->id));
	json_object_object_add(o, "mode", json_object_new_string(h->mode));
	json_object_object_add(o, "bind", json_object_new_string(h->bind));
	json_object_object_add(o, "port", json_object_new_int(h->port));
	json_object_object_add(o, "auth", json_object_new_boolean(h->auth));
	json_object_object_add(o, "client_certs",
	    json_object_new_string(h->client_certs));
	json_object_object_add(o, "bearer", json_object_new_boolean(h->bearer));
	json_object_object_add(o, "hsts", json_object_new_int(h->hsts));
	if (h->acme != NULL)
		json_object_object_add(o, "acme", json_object_get(h->acme));
	return o;
}

/* keyd's last failure of h's orders into a: last_error, failures,
 * next_try. */
static void
proxy_acme_fail_json(const struct proxy_handle *h, struct json_object *a)
{
	if (h->acme_fail == NULL)
		return;
	json_object_object_foreach(h->acme_fail, k, v)
		if (strcmp(k, "handle") != 0)
			json_object_object_add(a, strcmp(k, "error") == 0 ?
			    "last_error" : k, json_object_get(v));
}

/* What status and flm proxy start show: the profile and the certificate. */
static struct json_object *
proxy_view_json(const struct proxy_handle *h)
{
	struct json_object	*o = proxy_handle_json(h), *r;

	json_object_object_add(o, "certificate", json_object_get(h->cert));
	if (h->acme != NULL) {
		struct json_object *a = json_object_new_object();

		json_object_object_foreach(h->acme, k, v)
			json_object_object_add(a, k, strcmp(k, "ca") == 0 ?
			    json_object_new_string("(given)") :
			    json_object_get(v));
		if (h->acme_fd != -1)
			json_object_object_add(a, "http_listener",
			    json_object_new_string(h->acme_id));
		if (h->cert != NULL && json_object_object_get_ex(h->cert,
		    "renew_at", &r))
			json_object_object_add(a, "next_renewal",
			    json_object_get(r));
		proxy_acme_fail_json(h, a);
		json_object_object_add(o, "acme", a);
	}
	if (proxy_tls(h) && !h->ready)
		json_object_object_add(o, "state", json_object_new_string(
		    h->tls_error[0] ? h->tls_error : "waiting for flm-keyd"));
	return o;
}

/* Give proxyd (a new one, or on start) one handle's socket. */
static void
proxy_send(struct chan *ch, const struct proxy_handle *h)
{
	struct json_object	*o;
	const char		*s;
	size_t			 len;
	int			 fd;

	if (ch == NULL || (!h->ready && !h->early))
		return;
	if ((fd = fcntl(h->fd, F_DUPFD_CLOEXEC, 0)) == -1) {
		log_warn("proxy %s: dup", h->id);
		return;
	}
	o = proxy_handle_json(h);
	s = json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN, &len);
	chan_compose(ch, IMSG_PROXY_LISTEN, 0, fd, s, len);
	json_object_put(o);
}

/* The HTTP-01 listener of an https-acme handle: from its start on,
 * before any certificate (the CA comes to it for the first). */
static void
proxy_send_acme(struct chan *ch, const struct proxy_handle *h)
{
	struct json_object	*o;
	const char		*s;
	size_t			 len;
	int			 fd;

	if (ch == NULL || h->acme_fd == -1)
		return;
	if ((fd = fcntl(h->acme_fd, F_DUPFD_CLOEXEC, 0)) == -1) {
		log_warn("proxy %s: dup", h->acme_id);
		return;
	}
	o = json_object_new_object();
	json_object_object_add(o, "id", json_object_new_string(h->acme_id));
	json_object_object_add(o, "mode", json_object_new_string("acme-http"));
	s = json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN, &len);
	chan_compose(ch, IMSG_PROXY_LISTEN, 0, fd, s, len);
	json_object_put(o);
}

/* Every worker serves every handle: each gets its own descriptor of the
 * one listening socket. */
static void
proxy_send_workers(const struct proxy_handle *h)
{
	int	 i;

	for (i = 0; i < FLM_WORKERS_MAX; i++)
		proxy_send(proc_worker_chan(i), h);
}

void
proxy_send_all(struct chan *ch)
{
	int	 i;

	for (i = 0; i < nhandles; i++) {
		proxy_send_acme(ch, &handles[i]);
		proxy_send(ch, &handles[i]);
	}
}

static int
proxy_profile_store(const struct proxy_handle *h, int add)
{
	struct json_object	*o;
	sqlite3_stmt		*st;
	char			 err[512];
	int			 rc;

	if (db_writable(&config_db, err, sizeof(err)) == -1) {
		log_warnx("proxy %s not remembered: %s", h->id, err);
		return -1;
	}
	rc = sqlite3_prepare_v2(config_db.h, add ?
	    "INSERT OR REPLACE INTO proxy_profiles (id, config_json) "
	    "VALUES (?, ?)" : "DELETE FROM proxy_profiles WHERE id = ?",
	    -1, &st, NULL);
	if (rc != SQLITE_OK)
		return -1;
	o = proxy_handle_json(h);
	sqlite3_bind_text(st, 1, h->id, -1, SQLITE_STATIC);
	if (add)
		sqlite3_bind_text(st, 2, json_object_to_json_string(o), -1,
		    SQLITE_TRANSIENT);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	json_object_put(o);
	if (rc != SQLITE_DONE) {
		log_warnx("proxy %s: %s", h->id, db_strerror(&config_db,
		    sqlite3_extended_errcode(config_db.h)));
		return -1;
	}
	return 0;
}

static struct proxy_handle *
proxy_find(int port)
{
	int	 i;

	for (i = 0; i < nhandles; i++)
		if (handles[i].port == port)
			return &handles[i];
	return NULL;
}

/* What flm proxy start asks for, or a saved profile holds. */
struct proxy_opts {
	const char	*bind;
	int		 port;
	const char	*mode;
	const char	*client_certs;
	int		 bearer;
	int		 hsts;
	int		 auth;
	struct json_object *acme;	/* https-acme: acme_opts, owned */
};

static int
proxy_opt_bool(struct json_object *req, const char *k, int *b, char *err,
    size_t errsz)
{
	struct json_object	*v;

	if (!json_object_object_get_ex(req, k, &v))
		return 0;
	if (!json_object_is_type(v, json_type_boolean)) {
		snprintf(err, errsz, "%s: expected true or false", k);
		return -1;
	}
	*b = json_object_get_boolean(v);
	return 0;
}

static int
proxy_opt_string(struct json_object *req, const char *k, const char **s,
    char *err, size_t errsz)
{
	struct json_object	*v;

	if (!json_object_object_get_ex(req, k, &v))
		return 0;
	if (!json_object_is_type(v, json_type_string)) {
		snprintf(err, errsz, "%s: expected a string", k);
		return -1;
	}
	*s = json_object_get_string(v);
	return 0;
}

/* The members' types and values, and the rules between them. */
static int
proxy_opts_parse(struct json_object *req, struct proxy_opts *po, char *err,
    size_t errsz)
{
	struct json_object	*v;
	int			 tls;

	po->bind = "127.0.0.1";
	po->port = PROXY_DEFAULT_PORT;
	po->mode = "local-http";
	po->client_certs = "off";
	po->bearer = 1;
	po->hsts = 0;
	po->auth = 1;
	po->acme = NULL;
	if (json_object_object_get_ex(req, "port", &v)) {
		if (!json_is_int_range(v, 0, 65535)) {
			snprintf(err, errsz, "--port: expected 0-65535 (0: "
			    "any free port)");
			return -1;
		}
		po->port = json_object_get_int(v);
	}
	if (json_object_object_get_ex(req, "hsts", &v)) {
		if (!json_is_int_range(v, 0, PROXY_HSTS_MAX)) {
			snprintf(err, errsz, "--hsts: expected 0-%d seconds",
			    PROXY_HSTS_MAX);
			return -1;
		}
		po->hsts = json_object_get_int(v);
	}
	if (proxy_opt_string(req, "bind", &po->bind, err, errsz) == -1 ||
	    proxy_opt_string(req, "mode", &po->mode, err, errsz) == -1 ||
	    proxy_opt_string(req, "client_certs", &po->client_certs, err,
	    errsz) == -1 ||
	    proxy_opt_bool(req, "auth", &po->auth, err, errsz) == -1 ||
	    proxy_opt_bool(req, "bearer", &po->bearer, err, errsz) == -1)
		return -1;
	if (strcmp(po->mode, "local-http") != 0 &&
	    strcmp(po->mode, "dev-selfsigned") != 0 &&
	    strcmp(po->mode, "packaged-ca") != 0 &&
	    strcmp(po->mode, "https-acme") != 0) {
		snprintf(err, errsz, "--mode %s: expected local-http, "
		    "dev-selfsigned, packaged-ca or https-acme", po->mode);
		return -1;
	}

	if (strcmp(po->client_certs, "off") != 0 &&
	    strcmp(po->client_certs, "optional") != 0 &&
	    strcmp(po->client_certs, "required") != 0) {
		snprintf(err, errsz, "--client-certs %s: expected off, "
		    "optional or required", po->client_certs);
		return -1;
	}
	tls = strcmp(po->mode, "local-http") != 0;
	if (!tls && (strcmp(po->client_certs, "off") != 0 || po->hsts != 0)) {
		snprintf(err, errsz, "%s needs TLS: mode local-http has no "
		    "certificates (use --mode dev-selfsigned or packaged-ca)",
		    po->hsts != 0 ? "--hsts" : "--client-certs");
		return -1;
	}
	if (!po->bearer && strcmp(po->client_certs, "required") != 0) {
		snprintf(err, errsz, "--no-bearer needs --client-certs "
		    "required: without a bearer key only a client certificate "
		    "can admit a client");
		return -1;
	}
	if (strcmp(po->mode, "https-acme") == 0)
		return (po->acme = acme_opts(req, err, errsz)) == NULL ? -1 : 0;
	if (json_object_object_get(req, "acme") != NULL) {
		snprintf(err, errsz, "--domain, --email and the --acme "
		    "options are for --mode https-acme");
		return -1;
	}
	return 0;
}

/* keyd: make or find this handle's certificate; the answer comes later. */
static int
proxy_tls_ensure(struct proxy_handle *h)
{
	struct json_object	*o, *all, *v;
	int			 r;

	o = json_object_new_object();
	json_object_object_add(o, "handle", json_object_new_string(h->id));
	json_object_object_add(o, "mode", json_object_new_string(h->mode));
	if (h->acme != NULL) {
		/* The CA certifies the domains, never an address. */
		json_object_object_add(o, "names", json_object_get(
		    json_object_object_get(h->acme, "domains")));
		json_object_object_add(o, "addrs", json_object_new_array());
		json_object_object_add(o, "acme", acme_ensure_args(h->acme));
	} else
		tls_add_subject(o, h->bind);
	all = config_list("tls.");
	if (json_object_object_get_ex(all, "tls.cert_lifetime", &v) &&
	    atoll(json_object_get_string(v)) > 0)
		json_object_object_add(o, "lifetime", json_object_new_int64(
		    atoll(json_object_get_string(v))));
	json_object_put(all);
	h->tls_req = proxy_reqid();
	r = proc_forward(PROC_KEYD, IMSG_TLS_ENSURE, h->tls_req, o);
	json_object_put(o);
	if (r == -1)
		h->tls_req = 0;
	return r;
}

static void
proxy_tls_release(const struct proxy_handle *h)
{
	struct json_object	*o = json_object_new_object();

	json_object_object_add(o, "handle", json_object_new_string(h->id));
	if (proc_forward(PROC_KEYD, IMSG_TLS_RELEASE, proxy_reqid(), o) == -1)
		log_warnx("proxy %s: flm-keyd is not running; its certificate "
		    "is released when keyd next learns the handles", h->id);
	json_object_put(o);
}

/*
 * Bind, then for TLS ask keyd for the certificate: 1 while that answer
 * is awaited (ctl_id, if not 0, is answered then), 0 when serving.
 */
static int
proxy_add(struct proxy_opts *po, int remember, uint32_t ctl_id,
    char *err, size_t errsz)
{
	struct proxy_handle	*h;
	int			 fd, port = po->port, tls, afd = -1, aport = 0, i;

	tls = strcmp(po->mode, "local-http") != 0;
	if (port != 0 && proxy_find(port) != NULL) {
		snprintf(err, errsz, "a proxy already listens on port %d",
		    port);
		return -1;
	}
	if (nhandles == PROXY_MAX_HANDLES) {
		snprintf(err, errsz, "at most %d proxies", PROXY_MAX_HANDLES);
		return -1;
	}
	/* A CLI start needs keyd now; a restored handle waits for it. */
	if (tls && ctl_id != 0 && proc_chan(PROC_KEYD) == NULL) {
		snprintf(err, errsz, "flm-keyd is not running (see flm "
		    "status); a TLS mode needs it; try again");
		return -1;
	}
	if ((fd = proxy_listen(po->bind, &port, !po->auth, tls, err,
	    errsz)) == -1)
		return -1;
	/* HTTP-01: the CA asks on port 80 (or the one given) of the
	 * same address. */
	if (po->acme != NULL && strcmp(json_object_get_string(
	    json_object_object_get(po->acme, "challenge")), "http-01") == 0) {
		aport = json_object_get_int(json_object_object_get(po->acme,
		    "http_port"));
		if ((afd = proxy_listen(po->bind, &aport, 0, 1, err,
		    errsz)) == -1) {
			close(fd);
			return -1;
		}
	}
	h = &handles[nhandles++];
	memset(h, 0, sizeof(*h));
	h->acme = po->acme;
	po->acme = NULL;
	h->acme_fd = afd;
	/* TLS-ALPN-01: the CA checks on the handle's own port, before
	 * its first certificate. */
	h->early = h->acme != NULL && strcmp(json_object_get_string(
	    json_object_object_get(h->acme, "challenge")), "tls-alpn-01") == 0;
	if (afd != -1)
		snprintf(h->acme_id, sizeof(h->acme_id), "%s:%d", po->bind,
		    aport);
	snprintf(h->bind, sizeof(h->bind), "%s", po->bind);
	h->port = port;
	snprintf(h->mode, sizeof(h->mode), "%s", po->mode);
	snprintf(h->client_certs, sizeof(h->client_certs), "%s",
	    po->client_certs);
	h->bearer = po->bearer;
	h->hsts = po->hsts;
	snprintf(h->id, sizeof(h->id), "%s:%d", po->bind, port);
	h->fd = fd;
	h->auth = po->auth;
	h->started = time(NULL);
	h->ready = !tls;
	if (tls) {
		h->ctl_id = ctl_id;
		for (i = 0; i < FLM_WORKERS_MAX; i++) {
			proxy_send_acme(proc_worker_chan(i), h);
			if (h->early)
				proxy_send(proc_worker_chan(i), h);
		}
		if (proc_chan(PROC_KEYD) != NULL)
			proxy_tls_ensure(h);
		log_info("proxy on %s port %d (%s): asking flm-keyd for its "
		    "certificate", po->bind, port, po->mode);
		return 1;
	}
	if (remember)
		proxy_profile_store(h, 1);
	proxy_send_workers(h);
	log_info("proxy listening on %s port %d (%s)%s", po->bind, port,
	    po->mode, po->auth ? "" : " WITHOUT KEY CHECKS (benchmark)");
	return 0;
}

/*
 * flm proxy start: JSON {port, bind, mode, client_certs, bearer, hsts,
 * auth}, all optional.  1: ctl_id is answered once keyd has answered.
 */
int
proxy_start(struct json_object *req, uint32_t ctl_id, struct json_object **res,
    char *err, size_t errsz)
{
	struct proxy_opts	 po;
	int			 r;

	if (proxy_opts_parse(req, &po, err, errsz) == -1)
		return -1;
	/* A proxy without key checks is never remembered across restarts. */
	r = proxy_add(&po, po.auth, ctl_id, err, errsz);
	json_object_put(po.acme);	/* NULL unless proxy_add failed */
	if (r != 0)
		return r;
	*res = proxy_view_json(&handles[nhandles - 1]);
	return 0;
}

/* The slot's descriptors and objects; proxyd drops the HTTP-01 one. */
static void
proxy_handle_free(struct proxy_handle *h)
{
	struct json_object	*o;

	if (h->early && !h->ready) {	/* served for the CA alone */
		o = json_object_new_object();
		json_object_object_add(o, "id", json_object_new_string(h->id));
		proc_workers_json(IMSG_PROXY_CLOSE, o);
		json_object_put(o);
	}
	if (h->acme_fd != -1) {
		o = json_object_new_object();
		json_object_object_add(o, "id",
		    json_object_new_string(h->acme_id));
		proc_workers_json(IMSG_PROXY_CLOSE, o);
		json_object_put(o);
		close(h->acme_fd);
	}
	close(h->fd);
	json_object_put(h->cert);
	json_object_put(h->acme);
	json_object_put(h->acme_fail);
}

static void
proxy_remove(int i)
{
	struct proxy_handle	*h = &handles[i];
	struct json_object	*o = json_object_new_object();

	if (h->ready) {
		json_object_object_add(o, "id", json_object_new_string(h->id));
		proc_workers_json(IMSG_PROXY_CLOSE, o);
	}
	json_object_put(o);
	if (h->ctl_id != 0)
		control_relay_error(h->ctl_id, EINTR, "the proxy was stopped "
		    "before its certificate came");
	else
		proxy_profile_store(h, 0);
	if (proxy_tls(h))
		proxy_tls_release(h);
	proxy_handle_free(h);
	log_info("proxy on %s port %d stopped", h->bind, h->port);
	memmove(&handles[i], &handles[i + 1], (nhandles - i - 1) *
	    sizeof(handles[0]));
	nhandles--;
}

/* flm proxy stop: JSON {port} or {} for every handle. */
int
proxy_stop(struct json_object *req, struct json_object **res, char *err,
    size_t errsz)
{
	struct json_object	*v;
	int			 i, port = 0, n = 0;

	if (json_object_object_get_ex(req, "port", &v)) {
		port = json_object_get_int(v);
		if (!json_object_is_type(v, json_type_int) || port < 1 ||
		    port > 65535) {
			snprintf(err, errsz, "--port: expected 1-65535");
			return -1;
		}
	}
	for (i = nhandles - 1; i >= 0; i--) {
		if (port && handles[i].port != port)
			continue;
		proxy_remove(i);
		n++;
	}
	if (n == 0) {
		snprintf(err, errsz, port ? "no proxy on port %d" :
		    "no proxy is running", port);
		return -1;
	}
	*res = json_object_new_object();
	json_object_object_add(*res, "stopped", json_object_new_int(n));
	return 0;
}

static struct proxy_handle *
proxy_byreq(uint32_t req)
{
	int	 i;

	for (i = 0; i < nhandles; i++)
		if (handles[i].tls_req == req)
			return &handles[i];
	return NULL;
}

static struct proxy_handle *
proxy_byid(const char *id)
{
	int	 i;

	for (i = 0; i < nhandles; i++)
		if (strcmp(handles[i].id, id) == 0)
			return &handles[i];
	return NULL;
}

/* A new certificate for h, checked: the old one stays if it is bad. */
static int
proxy_cert_set(struct proxy_handle *h, struct json_object *cert)
{
	const char	*old;

	if (!tls_certinfo_valid(cert, h->mode)) {
		log_warnx("proxy %s: flm-keyd described its certificate "
		    "wrongly; ignored", h->id);
		return -1;
	}
	old = h->cert != NULL ? json_object_get_string(json_object_object_get(
	    h->cert, "sha256")) : "";
	if (strcmp(old, json_object_get_string(json_object_object_get(cert,
	    "sha256"))) != 0)
		log_info("proxy %s: certificate SHA256 %s", h->id,
		    json_object_get_string(json_object_object_get(cert,
		    "sha256")));
	json_object_put(h->cert);
	h->cert = json_object_get(cert);
	h->tls_error[0] = '\0';
	return 0;
}

/* keyd refused or failed: a CLI start is undone, a restored handle waits. */
static void
proxy_tls_failed(int i, const char *why)
{
	struct proxy_handle	*h = &handles[i];
	char			 msg[256];

	snprintf(msg, sizeof(msg), "%s: no certificate: %s", h->id, why);
	if (h->ctl_id == 0) {
		log_warnx("proxy %s", msg);
		snprintf(h->tls_error, sizeof(h->tls_error), "%s", why);
		return;
	}
	control_relay_error(h->ctl_id, EINVAL, msg);
	h->ctl_id = 0;
	h->ready = 0;
	/* Never stored, never served: only the sockets and the slot go. */
	if (h->acme != NULL)
		proxy_tls_release(h);	/* keyd forgets its settings */
	proxy_handle_free(h);
	memmove(h, h + 1, (nhandles - i - 1) * sizeof(handles[0]));
	nhandles--;
}

/*
 * keyd's answer to one of flmd's own requests (peerid has
 * PROXY_TLS_REQ): an ensure's certificate, or a release done.
 */
void
proxy_tls_reply(uint32_t req, int ok, struct json_object *o)
{
	struct proxy_handle	*h;
	struct json_object	*cert, *res;
	const char		*why;

	if ((h = proxy_byreq(req)) == NULL) {
		if (!ok)	/* a release, or an ensure superseded */
			log_warnx("flm-keyd: %s", json_object_get_string(
			    json_object_object_get(o, "error")));
		return;
	}
	h->tls_req = 0;
	if (!ok) {
		why = json_object_get_string(json_object_object_get(o,
		    "error"));
		proxy_tls_failed((int)(h - handles), why != NULL ? why :
		    "flm-keyd failed");
		return;
	}
	if (!json_object_object_get_ex(o, "cert", &cert) ||
	    proxy_cert_set(h, cert) == -1) {
		proxy_tls_failed((int)(h - handles), "flm-keyd's answer "
		    "was malformed");
		return;
	}
	if (!h->ready) {
		h->ready = 1;
		if (!h->early)
			proxy_send_workers(h);
		log_info("proxy listening on %s port %d (%s)", h->bind,
		    h->port, h->mode);
	}
	if (h->ctl_id != 0) {
		if (h->auth)
			proxy_profile_store(h, 1);
		res = proxy_view_json(h);
		control_relay(h->ctl_id, IMSG_CTL_RESULT, res);
		json_object_put(res);
		h->ctl_id = 0;
	}
}

/* proxyd's ACME progress: to the flm proxy start waiting, and the log. */
void
proxy_acme_progress(struct json_object *o)
{
	struct proxy_handle	*h;
	struct json_object	*v;

	if ((h = proxy_byid(json_object_get_string(json_object_object_get(o,
	    "handle")))) == NULL || h->acme == NULL)
		return;
	json_object_object_get_ex(o, "detail", &v);
	log_info("proxy %s: ACME %s (%s ms)%s%s", h->id,
	    json_object_get_string(json_object_object_get(o, "step")),
	    json_object_get_string(json_object_object_get(o, "ms")),
	    v ? ": " : "", v ? json_object_get_string(v) : "");
	if (h->ctl_id != 0)
		control_progress(h->ctl_id, o);
}

/* 1 if name is a domain of handle, an https-acme proxy by dns-01. */
int
proxy_acme_dns_name(const char *handle, const char *name)
{
	struct proxy_handle	*h;
	struct json_object	*v;
	size_t			 i;

	if ((h = proxy_byid(handle)) == NULL || h->acme == NULL ||
	    !json_object_object_get_ex(h->acme, "challenge", &v) ||
	    strcmp(json_object_get_string(v), "dns-01") != 0 ||
	    !json_object_object_get_ex(h->acme, "domains", &v))
		return 0;
	for (i = 0; i < json_object_array_length(v); i++)
		if (strcmp(json_object_get_string(json_object_array_get_idx(v,
		    i)), name) == 0)
			return 1;
	return 0;
}

/* keyd renewed a certificate on its own: {handle, cert}.  A restored
 * handle whose first order failed starts serving now. */
void
proxy_tls_renewed(struct json_object *o)
{
	struct json_object	*id, *cert;
	struct proxy_handle	*h;

	if (!json_object_is_type(o, json_type_object) ||
	    !json_object_object_get_ex(o, "handle", &id) ||
	    !json_is_string_max(id, sizeof(handles[0].id) - 1) ||
	    !json_object_object_get_ex(o, "cert", &cert)) {
		log_warnx("flm-keyd: malformed TLS_RENEWED; ignored");
		return;
	}
	if ((h = proxy_byid(json_object_get_string(id))) == NULL ||
	    !proxy_tls(h)) {
		log_warnx("flm-keyd renewed a certificate for %s, which is "
		    "no TLS handle; ignored", json_object_get_string(id));
		return;
	}
	if (proxy_cert_set(h, cert) == -1)
		return;
	json_object_put(h->acme_fail);
	h->acme_fail = NULL;
	if (!h->ready && h->tls_req == 0) {
		h->ready = 1;
		h->tls_error[0] = '\0';
		if (!h->early)
			proxy_send_workers(h);
		log_info("proxy listening on %s port %d (%s)", h->bind,
		    h->port, h->mode);
		return;
	}
	log_info("proxy %s: certificate renewed, valid until %s", h->id,
	    json_object_get_string(json_object_object_get(cert, "not_after")));
}

/* keyd's order for handle failed: {handle, error, failures, next_try},
 * kept for flm proxy status.  -1 if malformed. */
int
proxy_acme_failed(struct json_object *o)
{
	struct json_object	*v;
	struct proxy_handle	*h;

	if (!json_object_is_type(o, json_type_object) ||
	    json_object_object_length(o) != 4 ||
	    json_get_string(o, "handle", sizeof(handles[0].id) - 1) == NULL ||
	    json_get_string(o, "error", 512) == NULL ||
	    !json_object_object_get_ex(o, "failures", &v) ||
	    !json_is_int_range(v, 1, 1000000) ||
	    json_get_string(o, "next_try", 32) == NULL)
		return -1;
	if ((h = proxy_byid(json_get_string(o, "handle", 79))) == NULL ||
	    h->acme == NULL)
		return 0;	/* stopped meanwhile */
	json_object_put(h->acme_fail);
	h->acme_fail = json_object_get(o);
	return 0;
}

/* keyd (re)started: every TLS handle's certificate is asked for again. */
void
proxy_tls_ensure_all(void)
{
	int	 i;

	for (i = 0; i < nhandles; i++)
		if (proxy_tls(&handles[i]) && proxy_tls_ensure(&handles[i]) ==
		    -1)
			log_warnx("proxy %s: cannot ask flm-keyd for its "
			    "certificate", handles[i].id);
}

/* keyd went away: a CLI start waiting on it is undone (its client was
 * told); restored handles wait for the next keyd. */
void
proxy_keyd_gone(void)
{
	int	 i;

	for (i = nhandles - 1; i >= 0; i--) {
		handles[i].tls_req = 0;
		if (handles[i].ctl_id != 0 && !handles[i].ready) {
			handles[i].ctl_id = 0;	/* control_proc_gone answers */
			proxy_handle_free(&handles[i]);
			memmove(&handles[i], &handles[i + 1], (nhandles - i -
			    1) * sizeof(handles[0]));
			nhandles--;
		}
	}
}

static struct json_object *proxy_egress_json(void);

struct json_object *
proxy_status(void)
{
	struct json_object	*arr = json_object_new_array();
	struct json_object	*egress = proxy_egress_json();
	struct json_object	*workers = proc_workers_status_json();
	struct flmd_proc	*p = proc_byid(PROC_PROXYD);
	int			 i;

	for (i = 0; i < nhandles; i++) {
		struct json_object	*o = proxy_view_json(&handles[i]);

		/* Every worker serves every handle. */
		json_object_object_add(o, "worker_processes",
		    json_object_get(workers));
		json_object_object_add(o, "pid", json_object_new_int64(
		    (long)p->pid));
		json_object_object_add(o, "workers", json_object_new_int(
		    proc_nworkers_get()));
		json_object_object_add(o, "started_at",
		    json_object_new_int64(handles[i].started));
		json_object_object_add(o, "egress", json_object_get(egress));
		json_object_object_add(o, "requests",
		    json_object_new_int64((int64_t)handles[i].requests));
		json_object_object_add(o, "key_checks", json_object_new_string(
		    handles[i].auth ? "on" : "OFF (benchmark)"));
		json_object_array_add(arr, o);
	}
	json_object_put(workers);
	json_object_put(egress);
	return arr;
}

/* The SOCKS5 server of egress.mode, as proxyd last found it. */
static struct json_object	*egress_last;
static time_t			 egress_at;

/* {ok: bool, error?: string <= 512, ms: 0-60000}: else malformed. */
int
proxy_egress_valid(struct json_object *o)
{
	struct json_object	*v;

	if (!json_object_is_type(o, json_type_object) ||
	    !json_object_object_get_ex(o, "ok", &v) ||
	    !json_object_is_type(v, json_type_boolean) ||
	    !json_object_object_get_ex(o, "ms", &v) ||
	    !json_is_int_range(v, 0, 60000))
		return 0;
	json_object_object_foreach(o, k, val) {
		if (strcmp(k, "ok") == 0 || strcmp(k, "ms") == 0)
			continue;
		if (strcmp(k, "error") != 0 ||
		    !json_object_is_type(val, json_type_string) ||
		    json_object_get_string_len(val) > 512)
			return 0;
	}
	return 1;
}

/* A check's result: kept for flm proxy status; a pre-flight's goes on
 * to its flm proxy start. */
void
proxy_egress_state(uint32_t peerid, struct json_object *o)
{
	struct json_object	*v;

	json_object_put(egress_last);
	egress_last = json_object_get(o);
	egress_at = time(NULL);
	if (json_object_object_get_ex(o, "error", &v) &&
	    json_object_get_boolean(json_object_object_get(o, "ok")) == 0)
		log_debug("egress check: %s", json_object_get_string(v));
	if (peerid != 0)
		control_egress_checked(peerid, o);
}

/* What flm proxy status says of the egress: direct, or the server and
 * how it was at its last check. */
static struct json_object *
proxy_egress_json(void)
{
	struct json_object	*eg = config_egress(NULL), *o, *v;
	char			 at[32];
	struct tm		 tm;

	if (eg == NULL)
		return json_object_new_string("direct");
	o = json_object_new_object();
	json_object_object_foreach(eg, k, val)
		json_object_object_add(o, k, json_object_get(val));
	json_object_put(eg);
	if (!json_object_object_get_ex(o, "error", NULL) &&
	    egress_last != NULL) {
		json_object_object_add(o, "healthy", json_object_get(
		    json_object_object_get(egress_last, "ok")));
		if (json_object_object_get_ex(egress_last, "error", &v))
			json_object_object_add(o, "last_error",
			    json_object_get(v));
		gmtime_r(&egress_at, &tm);
		strftime(at, sizeof(at), "%Y-%m-%dT%H:%M:%SZ", &tm);
		json_object_object_add(o, "checked_at",
		    json_object_new_string(at));
	} else if (json_object_object_get_ex(o, "error", NULL))
		json_object_object_add(o, "healthy",
		    json_object_new_boolean(0));
	return o;
}

/*
 * proxyd's counts, {id: requests served since its last report}: an id
 * (of a handle, or of one just stopped) per listener, each count an
 * integer from 0 to PROXY_STATS_MAX_DELTA.  Anything else is malformed.
 */
int
proxy_stats_valid(struct json_object *o)
{
	if (json_object_object_length(o) > PROXY_MAX_HANDLES)
		return 0;
	json_object_object_foreach(o, k, v)
		if (strlen(k) >= sizeof(handles[0].id) ||
		    !json_is_int_range(v, 0, PROXY_STATS_MAX_DELTA))
			return 0;
	return 1;
}

/* Add up, saturating below INT64_MAX so that the count shown never wraps. */
void
proxy_stats(struct json_object *o)
{
	struct json_object	*v;
	uint64_t		 n;
	int			 i;

	for (i = 0; i < nhandles; i++) {
		if (!json_object_object_get_ex(o, handles[i].id, &v))
			continue;
		n = (uint64_t)json_object_get_int64(v);
		if (handles[i].requests > (uint64_t)INT64_MAX - n)
			handles[i].requests = INT64_MAX;
		else
			handles[i].requests += n;
	}
}

/*
 * At start: the handles that were running when flmd last stopped,
 * checked as flm proxy start checks them.  TLS handles get their
 * certificates once keyd is up (proxy_tls_ensure_all).
 */
void
proxy_restore(void)
{
	struct proxy_opts	 po;
	sqlite3_stmt		*st;
	char			 err[256];

	if (config_db.h == NULL || sqlite3_prepare_v2(config_db.h,
	    "SELECT config_json FROM proxy_profiles ORDER BY created_at",
	    -1, &st, NULL) != SQLITE_OK)
		return;
	while (sqlite3_step(st) == SQLITE_ROW) {
		struct json_object	*o;

		o = json_tokener_parse((const char *)sqlite3_column_text(st,
		    0));
		if (o == NULL || !json_object_is_type(o, json_type_object))
			log_warnx("saved proxy not restored: not a JSON "
			    "object");
		else if (proxy_opts_parse(o, &po, err, sizeof(err)) == -1)
			log_warnx("saved proxy not restored: %s", err);
		else {
			po.auth = 1;	/* only checked proxies are saved */
			if (proxy_add(&po, 0, 0, err, sizeof(err)) == -1)
				log_warnx("saved proxy not restored: %s", err);
			json_object_put(po.acme);
		}
		json_object_put(o);
	}
	sqlite3_finalize(st);
}

void
proxy_cleanup(void)
{
	json_object_put(egress_last);
	egress_last = NULL;
	while (nhandles > 0) {
		nhandles--;
		proxy_handle_free(&handles[nhandles]);
	}
}
