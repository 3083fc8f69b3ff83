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

struct proxy_handle {
	char	 id[80];		/* bind:port */
	char	 bind[INET6_ADDRSTRLEN];
	int	 port;
	char	 mode[16];
	int	 fd;
	int	 auth;		/* 0: --bench-no-auth, loopback only */
	time_t	 started;
	uint64_t requests;	/* served, as proxyd reported; saturates */
};

static struct proxy_handle	 handles[PROXY_MAX_HANDLES];
static int			 nhandles;

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
proxy_listen(const char *addr, int *port, int noauth, char *err, size_t errsz)
{
	struct sockaddr_storage	 ss;
	socklen_t		 len;
	int			 fd, on = 1;

	if (netaddr_parse(addr, *port, &ss, &len) == -1) {
		snprintf(err, errsz, "--bind %s: not an IPv4 or IPv6 address",
		    addr);
		return -1;
	}
	/* Both rules hold whatever modes come: neither may face a network. */
	if (noauth && !proxy_loopback(&ss)) {
		snprintf(err, errsz, "--bench-no-auth is for benchmarks on "
		    "loopback only, not %s", addr);
		return -1;
	}
	if (!proxy_loopback(&ss)) {
		snprintf(err, errsz, "--bind %s: mode local-http serves "
		    "loopback addresses only (127.0.0.0/8, ::1)", addr);
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

	if (ch == NULL)
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

void
proxy_send_all(struct chan *ch)
{
	int	 i;

	for (i = 0; i < nhandles; i++)
		proxy_send(ch, &handles[i]);
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

static int
proxy_add(const char *bind, int port, const char *mode, int auth,
    int remember, char *err, size_t errsz)
{
	struct proxy_handle	*h;
	int			 fd;

	if (port != 0 && proxy_find(port) != NULL) {
		snprintf(err, errsz, "a proxy already listens on port %d",
		    port);
		return -1;
	}
	if (nhandles == PROXY_MAX_HANDLES) {
		snprintf(err, errsz, "at most %d proxies", PROXY_MAX_HANDLES);
		return -1;
	}
	if ((fd = proxy_listen(bind, &port, !auth, err, errsz)) == -1)
		return -1;
	h = &handles[nhandles++];
	memset(h, 0, sizeof(*h));
	snprintf(h->bind, sizeof(h->bind), "%s", bind);
	h->port = port;
	snprintf(h->mode, sizeof(h->mode), "%s", mode);
	snprintf(h->id, sizeof(h->id), "%s:%d", bind, port);
	h->fd = fd;
	h->auth = auth;
	h->started = time(NULL);
	if (remember)
		proxy_profile_store(h, 1);
	proxy_send(proc_chan(PROC_PROXYD), h);
	log_info("proxy listening on %s port %d (%s)%s", bind, port, mode,
	    auth ? "" : " WITHOUT KEY CHECKS (benchmark)");
	return 0;
}

/* flm proxy start: JSON {port, bind, mode}, all optional. */
int
proxy_start(struct json_object *req, struct json_object **res, char *err,
    size_t errsz)
{
	struct json_object	*v;
	const char		*bind = "127.0.0.1", *mode = "local-http";
	int			 port = PROXY_DEFAULT_PORT, auth = 1;

	if (json_object_object_get_ex(req, "port", &v)) {
		port = json_object_get_int(v);
		if (!json_object_is_type(v, json_type_int) || port < 0 ||
		    port > 65535) {
			snprintf(err, errsz, "--port: expected 0-65535 (0: "
			    "any free port)");
			return -1;
		}
	}
	if (json_object_object_get_ex(req, "bind", &v))
		bind = json_object_get_string(v);
	if (json_object_object_get_ex(req, "mode", &v))
		mode = json_object_get_string(v);
	if (json_object_object_get_ex(req, "auth", &v)) {
		if (!json_object_is_type(v, json_type_boolean)) {
			snprintf(err, errsz, "auth: expected true or false");
			return -1;
		}
		auth = json_object_get_boolean(v);
	}
	if (strcmp(mode, "local-http") != 0) {
		snprintf(err, errsz, "--mode %s: this version serves "
		    "local-http only", mode);
		return -1;
	}
	/* A proxy without key checks is never remembered across restarts. */
	if (proxy_add(bind, port, mode, auth, auth, err, errsz) == -1)
		return -1;
	*res = proxy_handle_json(&handles[nhandles - 1]);
	return 0;
}

static void
proxy_remove(int i)
{
	struct proxy_handle	*h = &handles[i];
	struct json_object	*o = json_object_new_object();
	struct chan		*ch = proc_chan(PROC_PROXYD);

	if (ch != NULL) {
		json_object_object_add(o, "id", json_object_new_string(h->id));
		chan_compose_json(ch, IMSG_PROXY_CLOSE, 0, o);
	}
	json_object_put(o);
	proxy_profile_store(h, 0);
	close(h->fd);
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

struct json_object *
proxy_status(void)
{
	struct json_object	*arr = json_object_new_array();
	struct flmd_proc	*p = proc_byid(PROC_PROXYD);
	int			 i;

	for (i = 0; i < nhandles; i++) {
		struct json_object	*o = proxy_handle_json(&handles[i]);

		json_object_object_add(o, "pid", json_object_new_int64(
		    (long)p->pid));
		json_object_object_add(o, "started_at",
		    json_object_new_int64(handles[i].started));
		json_object_object_add(o, "egress",
		    json_object_new_string("direct"));
		json_object_object_add(o, "certificate",
		    json_object_new_string("none (local-http)"));
		json_object_object_add(o, "requests",
		    json_object_new_int64((int64_t)handles[i].requests));
		json_object_object_add(o, "key_checks", json_object_new_string(
		    handles[i].auth ? "on" : "OFF (benchmark)"));
		json_object_array_add(arr, o);
	}
	return arr;
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

/* At start: the handles that were running when flmd last stopped. */
void
proxy_restore(void)
{
	sqlite3_stmt	*st;
	char		 err[256];

	if (config_db.h == NULL || sqlite3_prepare_v2(config_db.h,
	    "SELECT config_json FROM proxy_profiles ORDER BY created_at",
	    -1, &st, NULL) != SQLITE_OK)
		return;
	while (sqlite3_step(st) == SQLITE_ROW) {
		struct json_object	*o, *b, *p, *m;

		o = json_tokener_parse((const char *)sqlite3_column_text(st,
		    0));
		if (o != NULL && json_object_object_get_ex(o, "bind", &b) &&
		    json_object_object_get_ex(o, "port", &p) &&
		    json_object_object_get_ex(o, "mode", &m) &&
		    proxy_add(json_object_get_string(b),
		    json_object_get_int(p), json_object_get_string(m), 1, 0,
		    err, sizeof(err)) == -1)
			log_warnx("saved proxy not restored: %s", err);
		json_object_put(o);
	}
	sqlite3_finalize(st);
}

void
proxy_cleanup(void)
{
	while (nhandles > 0)
		close(handles[--nhandles].fd);
}
