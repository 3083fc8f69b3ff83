/*
 * Egress through SOCKS5 (RFC 1928, with RFC 1929's user and password):
 * a few bytes each way before the engine's own protocol.  The engine's
 * name goes to the server as a name (socks5h), so no DNS query for it
 * leaves this host: with Tor, the exit resolves it.  flmd says which
 * engines go this way (egress.mode, engines.ID.egress); one that cannot
 * is refused, never reached directly unless egress.fail_open says so.
 */
#include "config.h"

#include <sys/socket.h>

#include <arpa/inet.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <event2/event.h>
#include <json-c/json.h>

#include "log.h"
#include "netaddr.h"
#include "proxyd.h"

#define SOCKS_CHECK_SECS	3

enum { S_METHOD = 1, S_AUTH, S_REPLY, S_REPLY_ADDR };

/* flmd's {mode, addr, port, user?, fail_open?} into s; -1 if malformed. */
int
socks_parse(struct json_object *o, struct proxyd_socks *s)
{
	struct json_object	*v;
	const char		*mode;

	memset(s, 0, sizeof(*s));
	if (!json_object_is_type(o, json_type_object))
		return -1;
	if (!json_object_object_get_ex(o, "mode", &v))
		return 0;		/* {}: direct */
	mode = json_object_get_string(v);
	if (strcmp(mode, "tor") != 0 && strcmp(mode, "socks5") != 0)
		return -1;
	s->tor = strcmp(mode, "tor") == 0;
	if (json_object_object_get_ex(o, "error", &v)) {
		snprintf(s->error, sizeof(s->error), "%s",
		    json_object_get_string(v));
		s->on = 1;
		return 0;
	}
	if (!json_object_object_get_ex(o, "addr", &v) ||
	    !json_object_is_type(v, json_type_string) ||
	    json_object_get_string_len(v) >= (int)sizeof(s->addr))
		return -1;
	memcpy(s->addr, json_object_get_string(v),
	    json_object_get_string_len(v) + 1);
	if (!json_object_object_get_ex(o, "port", &v) ||
	    !json_object_is_type(v, json_type_int) ||
	    json_object_get_int(v) < 1 || json_object_get_int(v) > 65535)
		return -1;
	s->port = json_object_get_int(v);
	if (json_object_object_get_ex(o, "user", &v)) {
		if (!json_object_is_type(v, json_type_string) ||
		    json_object_get_string_len(v) < 1 ||
		    json_object_get_string_len(v) > 255)
			return -1;
		memcpy(s->user, json_object_get_string(v),
		    json_object_get_string_len(v) + 1);
	}
	s->fail_open = json_object_object_get_ex(o, "fail_open", &v) &&
	    json_object_get_boolean(v);
	s->on = 1;
	return 0;
}

/* "egress tor at ADDR port N", for messages. */
const char *
socks_name(const struct proxyd_socks *s, char *buf, size_t sz)
{
	snprintf(buf, sz, "egress %s at %s port %d", s->tor ? "tor" :
	    "socks5", s->addr, s->port);
	return buf;
}

/* The greeting: no authentication, or user and password when set. */
size_t
socks_hello(struct socks_io *io, const struct proxyd_socks *s, uint8_t *out)
{
	memset(io, 0, sizeof(*io));
	io->step = S_METHOD;
	io->need = 2;
	out[0] = 5;
	if (s->user[0] != '\0') {
		out[1] = 2;
		out[2] = 0;
		out[3] = 2;
		return 4;
	}
	out[1] = 1;
	out[2] = 0;
	return 3;
}

/* CONNECT host:port, the name as a name (ATYP 3) unless a literal. */
static size_t
socks_connect(const char *host, int port, uint8_t *out)
{
	struct in_addr	 a4;
	struct in6_addr	 a6;
	size_t		 n = 4, hl;

	out[0] = 5;
	out[1] = 1;
	out[2] = 0;
	if (inet_pton(AF_INET, host, &a4) == 1) {
		out[3] = 1;
		memcpy(out + n, &a4, 4);
		n += 4;
	} else if (inet_pton(AF_INET6, host, &a6) == 1) {
		out[3] = 4;
		memcpy(out + n, &a6, 16);
		n += 16;
	} else {
		hl = strlen(host);	/* flmd: at most 255 */
		out[3] = 3;
		out[n++] = (uint8_t)hl;
		memcpy(out + n, host, hl);
		n += hl;
	}
	out[n++] = (uint8_t)(port >> 8);
	out[n++] = (uint8_t)port;
	return n;
}

static const char *
socks_rep(int rep)
{
	static const char *const why[] = {
		"succeeded", "general failure", "not allowed by its rules",
		"network unreachable", "host unreachable",
		"connection refused", "TTL expired", "command not supported",
		"address type not supported",
	};

	return rep >= 0 && rep <= 8 ? why[rep] : "unknown reply";
}

/*
 * The server's io->need bytes are in io->in: what next.  SOCKS_SEND:
 * write out (*outlen bytes), then read io->need more; SOCKS_MORE: read
 * io->need in all; SOCKS_DONE: the tunnel is up; SOCKS_FAIL: why says.
 */
int
socks_step(struct socks_io *io, const struct proxyd_socks *s,
    const char *pass, const char *host, int port, uint8_t *out,
    size_t *outlen, char *why, size_t whysz)
{
	size_t	 ul, pl;

	if (io->in[0] != (io->step == S_AUTH ? 1 : 5)) {
		snprintf(why, whysz, "not a SOCKS5 server");
		return SOCKS_FAIL;
	}
	switch (io->step) {
	case S_METHOD:
		if (io->in[1] == 2 && s->user[0] != '\0') {
			ul = strlen(s->user);
			pl = pass != NULL ? strlen(pass) : 0;
			if (pl == 0 || pl > 255) {
				snprintf(why, whysz, "it wants a password: flm "
				    "egress password set");
				return SOCKS_FAIL;
			}
			out[0] = 1;
			out[1] = (uint8_t)ul;
			memcpy(out + 2, s->user, ul);
			out[2 + ul] = (uint8_t)pl;
			memcpy(out + 3 + ul, pass, pl);
			*outlen = 3 + ul + pl;
			io->step = S_AUTH;
			io->have = 0;
			io->need = 2;
			return SOCKS_SEND;
		}
		if (io->in[1] != 0) {
			snprintf(why, whysz, "it accepts none of our "
			    "authentication methods%s", s->user[0] == '\0' ?
			    " (set egress.socks5_user?)" : "");
			return SOCKS_FAIL;
		}
		break;
	case S_AUTH:
		if (io->in[1] != 0) {
			snprintf(why, whysz, "it refused user %s and its "
			    "password", s->user);
			return SOCKS_FAIL;
		}
		break;
	case S_REPLY:
		if (io->in[1] != 0) {
			snprintf(why, whysz, "it could not reach %s port %d: %s",
			    host, port, socks_rep(io->in[1]));
			return SOCKS_FAIL;
		}
		io->step = S_REPLY_ADDR;
		/* VER REP RSV ATYP, then the bound address and port. */
		io->need = io->in[3] == 1 ? 10 : io->in[3] == 4 ? 22 :
		    io->in[3] == 3 ? 7 + (size_t)io->in[4] : 0;
		if (io->need == 0) {
			snprintf(why, whysz, "a malformed reply");
			return SOCKS_FAIL;
		}
		return SOCKS_MORE;
	case S_REPLY_ADDR:
		return SOCKS_DONE;
	}
	*outlen = socks_connect(host, port, out);
	io->step = S_REPLY;
	io->have = 0;
	io->need = 5;
	return SOCKS_SEND;
}

/* libcurl's transfer (a probe, ACME) through the same server. */
void
socks_curl(CURL *h, const struct proxyd_socks *s)
{
	const char	*pass;
	char		 url[128];

	snprintf(url, sizeof(url), strchr(s->addr, ':') ?
	    "socks5h://[%s]:%d" : "socks5h://%s:%d", s->addr, s->port);
	curl_easy_setopt(h, CURLOPT_PROXY, url);
	curl_easy_setopt(h, CURLOPT_NOPROXY, "");
	if (s->user[0] != '\0') {
		curl_easy_setopt(h, CURLOPT_PROXYUSERNAME, s->user);
		if ((pass = creds_get(SOCKS_SECRET)) != NULL)
			curl_easy_setopt(h, CURLOPT_PROXYPASSWORD, pass);
	}
}

/* ---- is the server up?  (flm proxy start's pre-flight, status) ---------- */

struct socks_check {
	int		 fd;
	int		 greeted;
	uint32_t	 peerid;
	struct event	*ev;
	struct timespec	 t0;
};

static void
socks_check_end(struct socks_check *k, const char *why)
{
	struct json_object	*o = json_object_new_object();
	struct timespec		 t1;
	char			 name[128], msg[400];

	clock_gettime(CLOCK_MONOTONIC, &t1);
	json_object_object_add(o, "ok", json_object_new_boolean(why == NULL));
	if (why != NULL) {
		snprintf(msg, sizeof(msg), "%s: %s", socks_name(&px->egress,
		    name, sizeof(name)), why);
		json_object_object_add(o, "error", json_object_new_string(msg));
	}
	json_object_object_add(o, "ms", json_object_new_int((int)((t1.tv_sec -
	    k->t0.tv_sec) * 1000 + (t1.tv_nsec - k->t0.tv_nsec) / 1000000)));
	chan_compose_json(px->c.parent, IMSG_EGRESS_STATE, k->peerid, o);
	json_object_put(o);
	if (k->ev != NULL)
		event_free(k->ev);
	if (k->fd != -1)
		close(k->fd);
	free(k);
}

static void
socks_check_io(evutil_socket_t fd, short ev, void *arg)
{
	struct socks_check	*k = arg;
	struct timeval		 tv = { SOCKS_CHECK_SECS, 0 };
	uint8_t			 b[8];
	struct socks_io		 io;
	socklen_t		 len = sizeof(int);
	ssize_t			 n;
	int			 err = 0;

	if (ev & EV_TIMEOUT) {
		socks_check_end(k, "no answer within 3 s");
		return;
	}
	if (!k->greeted) {
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1)
			err = errno;
		if (err != 0) {
			socks_check_end(k, strerror(err));
			return;
		}
		n = (ssize_t)socks_hello(&io, &px->egress, b);
		if (write(fd, b, (size_t)n) != n) {
			socks_check_end(k, "the greeting was not taken");
			return;
		}
		k->greeted = 1;
		event_free(k->ev);
		if ((k->ev = event_new(px->c.base, fd, EV_READ, socks_check_io,
		    k)) == NULL || event_add(k->ev, &tv) == -1) {
			socks_check_end(k, "out of memory");
			return;
		}
		return;
	}
	n = read(fd, b, 2);
	if (n != 2 || b[0] != 5)
		socks_check_end(k, n == 0 ? "it closed the connection" :
		    "not a SOCKS5 server");
	else if (b[1] == 0xff)
		socks_check_end(k, "it accepts none of our authentication "
		    "methods");
	else
		socks_check_end(k, NULL);
}

/* A TCP connection and a greeting to egress.mode's server; answered
 * IMSG_EGRESS_STATE with peerid (0: the periodic check). */
void
socks_check(uint32_t peerid)
{
	struct socks_check	*k;
	struct sockaddr_storage	 ss;
	struct timeval		 tv = { SOCKS_CHECK_SECS, 0 };
	socklen_t		 len;

	if (!px->egress.on)
		return;
	if ((k = calloc(1, sizeof(*k))) == NULL)
		return;
	k->fd = -1;
	k->peerid = peerid;
	clock_gettime(CLOCK_MONOTONIC, &k->t0);
	if (px->egress.error[0] != '\0') {
		socks_check_end(k, px->egress.error);
		return;
	}
	if (netaddr_parse(px->egress.addr, px->egress.port, &ss, &len) == -1 ||
	    (k->fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0)) == -1) {
		socks_check_end(k, strerror(errno));
		return;
	}
	if (connect(k->fd, (struct sockaddr *)&ss, len) == -1 &&
	    errno != EINPROGRESS) {
		socks_check_end(k, strerror(errno));
		return;
	}
	if ((k->ev = event_new(px->c.base, k->fd, EV_WRITE, socks_check_io,
	    k)) == NULL || event_add(k->ev, &tv) == -1)
		socks_check_end(k, "out of memory");
}
