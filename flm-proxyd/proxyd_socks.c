/*
 * Egress through SOCKS5 (RFC 1928, with RFC 1929's user and password):
 * a few bytes each way before the engine's own protocol.  The engine's
 * name goes to the server as a name (socks5h), so no DNS query for it
 * leaves this host: with Tor, the exit resolves it.  flmd says which
 * engines go this way (egress.mode, engines.ID.egress); one that cannot
 * is refused, never reached directly unless egress.fail_open says so.
 */
#include "config.h"

#include <arpa/inet.h>

#include <stdio.h>
#include <string.h>

#include <curl/curl.h>
#include <json-c/json.h>

#include "proxyd.h"

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
