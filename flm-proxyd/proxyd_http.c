/*
 * The client side of flm-proxyd: HTTP/1.1 on the sockets flmd passes
 * in, one request at a time per connection (pipelined requests wait
 * their turn in the input buffer), with limits on every phase and
 * OpenAI-shaped errors.  Bytes are read with proxyd_parse.c; what a
 * request means is decided in proxyd_route.c.
 */
#include "config.h"

#include <sys/queue.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <json-c/json.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sodium.h>

#include "proxylimits.h"
#include "log.h"
#include "proxyd.h"

#define HTTP_WRITE_LOW		(16 * 1024)	/* resume the engine below */
#define HTTP_TLS_CHUNK		(16 * 1024)	/* a TLS record's payload */
#define HTTP_DRAIN_AUDIT_SECS	1	/* for the records of cut requests */
#define HTTP_DRAIN_FRESH_SECS	1	/* for a request on its way */

enum conn_state {
	C_TLS,		/* the TLS handshake */
	C_HEAD,		/* reading a request head (or idle between) */
	C_BODY,		/* reading its body */
	C_WORK,		/* keyd or an engine has it */
	C_CLOSING,	/* flushing the last answer */
};

struct http_conn {
	TAILQ_ENTRY(http_conn)	 entry;
	struct proxyd_listener	*l;
	int			 fd;
	struct event		*rev, *wev;	/* wev: only for a rest */
	struct evbuffer		*in, *out;
	int			 reading;
	struct event		*timer;
	enum conn_state		 state;
	int			 idle;		/* timer is the idle one */
	int			 fresh;		/* no request answered yet */
	int			 keepalive;
	int			 body_done;
	int			 eof;		/* the client sends no more */
	size_t			 scanned;	/* bytes of in searched for
						 * the head's end, in vain */
	struct http_chunked	 ck;
	struct http_req		 req;
	char			 addr[INET6_ADDRSTRLEN];
	/* TLS listeners: the session, the signature its handshake waits
	 * for, a read that needs the socket writable, and the client's
	 * verified certificate. */
	SSL			*ssl;
	struct tls_wait		*wait;
	int			 tls_failed;
	int			 read_wants_write;
	char			 cert_serial[FLM_CERT_SERIAL_LEN + 1];
	char			 cert_label[FLM_CERT_LABEL_MAX + 1];
};
TAILQ_HEAD(http_conns, http_conn);

static int		 http_nconns;
static uint64_t		 http_nextid = 1;
static struct event	*http_report_tick;
/* flmd said stop (IMSG_PROXY_DRAIN): no listener, no keep-alive; out
 * when the last connection and audit record are gone, or at the timer. */
static int		 http_draining;
static int		 http_drain_over;	/* the loop was told to exit */
static struct event	*http_drain_timer;

static void	conn_dispatch(struct http_conn *);
static void	conn_eof(struct http_conn *, int);
static void	conn_timer(struct http_conn *, int);
static void	conn_free(struct http_conn *);
static void	request_begin(struct http_conn *);

/* ---- limits --------------------------------------------------------------- */

/* Where each limit of lib/proxylimits.c lives, in its order. */
static const struct {
	size_t	 off;
	int	 is_size;
} http_limit_fields[] = {
	{ offsetof(struct proxyd_limits, max_header), 1 },
	{ offsetof(struct proxyd_limits, max_body), 1 },
	{ offsetof(struct proxyd_limits, header_timeout), 0 },
	{ offsetof(struct proxyd_limits, idle_timeout), 0 },
	{ offsetof(struct proxyd_limits, upstream_timeout), 0 },
	{ offsetof(struct proxyd_limits, max_conns), 0 },
	{ offsetof(struct proxyd_limits, write_timeout), 0 },
	{ offsetof(struct proxyd_limits, drain_timeout), 0 },
	{ offsetof(struct proxyd_limits, breaker_failures), 0 },
	{ offsetof(struct proxyd_limits, breaker_secs), 0 },
};

/* flmd's settings proxy.NAME (checked there, and again here). */
void
http_limits(struct json_object *o)
{
	struct json_object	*v;
	long long		 x;
	char			*p;
	int			 i;

	for (i = 0; i < limit_ndefs; i++) {
		x = limit_defs[i].def;
		if (o != NULL && json_object_object_get_ex(o,
		    limit_defs[i].name, &v) &&
		    json_object_is_type(v, json_type_int)) {
			x = json_object_get_int64(v);
			if (x < limit_defs[i].min || x > limit_defs[i].max) {
				log_warnx("proxy.%s = %lld out of range",
				    limit_defs[i].name, x);
				x = limit_defs[i].def;
			}
		}
		p = (char *)&px->limits + http_limit_fields[i].off;
		if (http_limit_fields[i].is_size)
			*(size_t *)p = (size_t)x;
		else
			*(int *)p = (int)x;
	}
}

/* ---- answers --------------------------------------------------------------- */

static const char *
http_reason(int status)
{
	switch (status) {
	case 100: return "Continue";
	case 200: return "OK";
	case 204: return "No Content";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 411: return "Length Required";
	case 413: return "Content Too Large";
	case 415: return "Unsupported Media Type";
	case 417: return "Expectation Failed";
	case 422: return "Unprocessable Content";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	case 505: return "HTTP Version Not Supported";
	default: return status < 300 ? "OK" : status < 500 ? "Client Error" :
	    "Server Error";
	}
}

/* The Date header, formatted once a second. */
static const char *
http_date(void)
{
	static char	 buf[40];
	static time_t	 last;
	time_t		 now = time(NULL);
	struct tm	 tm;

	if (now != last && gmtime_r(&now, &tm) != NULL) {
		strftime(buf, sizeof(buf), "%a, %d %b %Y %H:%M:%S GMT", &tm);
		last = now;
	}
	return buf;
}

const char *
http_req_addr(const struct http_req *r)
{
	return r->conn->addr;
}

/* The client certificate of the request's connection: its serial ("" if
 * none) and its label. */
const char *
http_req_cert(const struct http_req *r, const char **label)
{
	if (label != NULL)
		*label = r->conn->cert_label;
	return r->conn->cert_serial;
}

size_t
http_out_pending(const struct http_req *r)
{
	return evbuffer_get_length(r->conn->out);
}

/* A response head, built without printf: it is on every answer. */
struct hbuf {
	char	 b[2048];
	size_t	 n;
};

static void
hb_str(struct hbuf *h, const char *s)
{
	size_t	 len = strlen(s);

	if (h->n + len < sizeof(h->b)) {
		memcpy(h->b + h->n, s, len);
		h->n += len;
	}
}

static void
hb_num(struct hbuf *h, unsigned long long v, unsigned int base, int width)
{
	char	 d[24];
	int	 i = sizeof(d);

	do {
		d[--i] = "0123456789abcdef"[v % base];
		v /= base;
	} while (v > 0 || (int)sizeof(d) - i < width);
	if (h->n + sizeof(d) - i < sizeof(h->b)) {
		memcpy(h->b + h->n, d + i, sizeof(d) - i);
		h->n += sizeof(d) - i;
	}
}

/* An allowed origin is named back; "*" only without credentials. */
static void
http_head_cors(struct hbuf *h, const struct http_req *r)
{
	char	 o[POLICY_ORIGIN_MAX];
	size_t	 n = r->origin_len < sizeof(o) - 1 ? r->origin_len :
		    sizeof(o) - 1;

	memcpy(o, r->origin, n);
	o[n] = '\0';
	hb_str(h, "Access-Control-Allow-Origin: ");
	hb_str(h, px->policy.any_origin && !px->policy.credentials ? "*" : o);
	hb_str(h, "\r\nVary: Origin\r\n");
	if (px->policy.credentials)
		hb_str(h, "Access-Control-Allow-Credentials: true\r\n");
	if (r->head.method != HTTP_M_OPTIONS)
		hb_str(h, "Access-Control-Expose-Headers: X-Request-Id, "
		    "Retry-After\r\n");
}

static void
http_head_out(struct http_req *r, int status, const char *ctype,
    int64_t clen)
{
	struct http_conn	*c = r->conn;
	struct hbuf		 h;

	/* HTTP/1.0 clients get no chunks: the close ends the answer. */
	r->chunked = clen < 0 && r->head.minor >= 1 && status != 204;
	if (clen < 0 && !r->chunked)
		c->keepalive = 0;
	r->status = status;
	h.n = 0;
	hb_str(&h, "HTTP/1.1 ");
	hb_num(&h, (unsigned int)status, 10, 3);
	hb_str(&h, " ");
	hb_str(&h, http_reason(status));
	hb_str(&h, "\r\nDate: ");
	hb_str(&h, http_date());
	hb_str(&h, "\r\nX-Request-Id: flm-");
	hb_num(&h, r->id, 16, 16);
	hb_str(&h, "\r\n");
	if (ctype != NULL) {
		hb_str(&h, "Content-Type: ");
		hb_str(&h, ctype);
		hb_str(&h, "\r\n");
	}
	if (status == 204)
		;	/* RFC 9110 §8.6: no Content-Length */
	else if (clen >= 0) {
		hb_str(&h, "Content-Length: ");
		hb_num(&h, (unsigned long long)clen, 10, 1);
		hb_str(&h, "\r\n");
	} else if (r->chunked)
		hb_str(&h, "Transfer-Encoding: chunked\r\n");
	if (status == 401)
		hb_str(&h, "WWW-Authenticate: Bearer\r\n");
	if (c->l->o.hsts > 0) {
		hb_str(&h, "Strict-Transport-Security: max-age=");
		hb_num(&h, (unsigned int)c->l->o.hsts, 10, 1);
		hb_str(&h, "\r\n");
	}
	if (status == 405 || status == 204)
		hb_str(&h, r->ep == EP_HEALTHZ || r->ep == EP_MODELS ||
		    r->ep == EP_OLLAMA_TAGS || r->ep == EP_OLLAMA_VERSION ||
		    r->ep == EP_METRICS ?
		    "Allow: GET, HEAD, OPTIONS\r\n" : "Allow: POST, OPTIONS\r\n");
	if (r->retry_after > 0) {
		hb_str(&h, "Retry-After: ");
		hb_num(&h, (unsigned int)r->retry_after, 10, 1);
		hb_str(&h, "\r\n");
	}
	if (ctype != NULL && strncmp(ctype, "text/event-stream", 17) == 0)
		hb_str(&h, "Cache-Control: no-cache\r\n");
	if (r->origin != NULL)
		http_head_cors(&h, r);
	if (!c->keepalive)
		hb_str(&h, "Connection: close\r\n");
	else if (r->head.minor == 0)
		hb_str(&h, "Connection: keep-alive\r\n");
	if (r->xhdr != NULL)
		hb_str(&h, r->xhdr);
	hb_str(&h, "\r\n");
	evbuffer_add(c->out, h.b, h.n);
	r->sent_head = 1;
}

static void
conn_reading(struct http_conn *c, int on)
{
	if (on == c->reading)
		return;
	c->reading = on;
	if (on)
		event_add(c->rev, NULL);
	else
		event_del(c->rev);
	/* A record TLS already read from the socket wakes no event. */
	if (on && c->ssl != NULL && c->state != C_TLS &&
	    SSL_has_pending(c->ssl))
		event_active(c->rev, EV_READ, 0);
}

/*
 * TLS: out in records of at most 16 KB, small pieces gathered into one
 * (a small answer is one record).  -1 on an error; what the socket does
 * not take now stays in out.
 */
static int
conn_tls_write(struct http_conn *c)
{
	size_t		 len;
	unsigned char	*p;
	int		 n, err;

	while ((len = evbuffer_get_length(c->out)) > 0) {
		if (len > HTTP_TLS_CHUNK)
			len = HTTP_TLS_CHUNK;
		if ((p = evbuffer_pullup(c->out, (ssize_t)len)) == NULL)
			return -1;
		if ((n = SSL_write(c->ssl, p, (int)len)) > 0) {
			evbuffer_drain(c->out, (size_t)n);
			continue;
		}
		err = SSL_get_error(c->ssl, n);
		if (err == SSL_ERROR_WANT_WRITE || err == SSL_ERROR_WANT_READ)
			return 0;
		ERR_clear_error();
		c->tls_failed = 1;
		return -1;
	}
	return 0;
}

/* What the socket takes of out: plain or through TLS. */
static int
conn_out_write(struct http_conn *c)
{
	if (c->ssl != NULL)
		return conn_tls_write(c);
	if (evbuffer_write(c->out, c->fd) == -1 && errno != EAGAIN &&
	    errno != EINTR)
		return -1;
	return 0;
}

/*
 * Write now what the kernel takes (see up_flush): the write event only
 * for what is left.  Its timeout runs from the moment the client stopped
 * taking bytes (and again after each write it lets through): a client
 * that stops reading cannot hold an engine call forever.
 */
static void
conn_flush(struct http_conn *c)
{
	struct timeval	 tv = { px->limits.write_timeout, 0 };

	if (evbuffer_get_length(c->out) == 0)
		return;
	(void)conn_out_write(c);	/* an error shows in conn_write */
	if (evbuffer_get_length(c->out) > 0 &&
	    !event_pending(c->wev, EV_WRITE, NULL))
		event_add(c->wev, &tv);
}

/* Ready for the next request; the usage tail's buffer is kept for it. */
static void
http_req_clear(struct http_req *r)
{
	struct http_conn	*c = r->conn;
	char			*tail = r->tail;

	/* The head held a bearer token: no copy outlives the request. */
	if (r->headbuf != NULL)
		sodium_memzero(r->headbuf, r->headlen);
	free(r->headbuf);
	free(r->model);
	if (r->body != NULL)
		evbuffer_free(r->body);
	if (r->xbody != NULL)
		evbuffer_free(r->xbody);
	if (r->mx_stream)
		metrics_streams(-1);
	memset(r, 0, sizeof(*r));
	r->conn = c;
	r->tail = tail;
}

/* The request is answered: free it, then the next one or the close. */
static void
request_done(struct http_conn *c)
{
	struct http_req	*r = &c->req;
	struct timeval	 tv = { px->limits.idle_timeout, 0 };

	conn_flush(c);
	/* A stream that ended with an error event: its error's status. */
	audit_request(r, r->end_status != 0 ? r->end_status : r->status);
	http_req_clear(r);
	c->l->requests++;
	if (c->eof && evbuffer_get_length(c->in) == 0)
		c->keepalive = 0;
	if (!c->keepalive) {
		c->state = C_CLOSING;
		conn_reading(c, 0);
		if (http_out_pending(r) == 0) {
			conn_free(c);
			return;
		}
		evtimer_add(c->timer, &tv);
		return;
	}
	c->state = C_HEAD;
	c->idle = 1;
	c->fresh = 0;
	evtimer_add(c->timer, &tv);
	conn_reading(c, !c->eof);
	/* Pipelined bytes: later, from the loop, so no recursion. */
	if (evbuffer_get_length(c->in) > 0)
		event_active(c->rev, EV_READ, 0);
}

void
http_reply(struct http_req *r, int status, const char *ctype,
    const char *body, size_t len)
{
	http_head_out(r, status, ctype, (int64_t)len);
	if (r->head.method != HTTP_M_HEAD && len > 0) {
		evbuffer_add(r->conn->out, body, len);
		audit_feed(r, body, len);
	}
	request_done(r->conn);
}

void
http_json(struct http_req *r, int status, struct json_object *o)
{
	const char	*s;
	size_t		 len;

	s = json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN |
	    JSON_C_TO_STRING_NOSLASHESCAPE, &len);
	http_reply(r, status, "application/json", s, len);
}

/* The error in the client's dialect (OpenAI's: {"error": {message,
 * type, param, code}}). */
void
http_error_param(struct http_req *r, int status, const char *type,
    const char *code, const char *param, const char *msg)
{
	struct json_object	*o;

	o = front_error_json(r->dialect, status, type, code, param, msg);
	/* A request whose body we did not read ends its connection. */
	if (!r->conn->body_done)
		r->conn->keepalive = 0;
	http_json(r, status, o);
	json_object_put(o);
}

void
http_error(struct http_req *r, int status, const char *type,
    const char *code, const char *msg)
{
	http_error_param(r, status, type, code, NULL, msg);
}

/* A stream's first bytes: its time to first token. */
static void
http_first_bytes(struct http_req *r)
{
	struct timespec	 now;
	int64_t		 us;

	if (r->ttft_us != 0 || !r->mx_stream)
		return;
	clock_gettime(CLOCK_MONOTONIC, &now);
	us = (now.tv_sec - r->start.tv_sec) * 1000000 +
	    (now.tv_nsec - r->start.tv_nsec) / 1000;
	r->ttft_us = us > 0 ? (uint64_t)us : 1;
}

void
http_stream_begin(struct http_req *r, int status, const char *ctype,
    int64_t clen)
{
	http_head_out(r, status, ctype, clen);
	/* A stream's head goes at once; a sized answer's with its body. */
	if (clen < 0) {
		conn_flush(r->conn);
		if (!r->mx_stream) {
			r->mx_stream = 1;
			metrics_streams(1);
		}
	}
}

void
http_stream_data(struct http_req *r, const void *p, size_t len)
{
	struct evbuffer	*out = r->conn->out;

	if (len == 0 || r->head.method == HTTP_M_HEAD)
		return;
	http_first_bytes(r);
	audit_feed(r, p, len);
	if (r->chunked)
		evbuffer_add_printf(out, "%zx\r\n", len);
	evbuffer_add(out, p, len);
	if (r->chunked)
		evbuffer_add(out, "\r\n", 2);
	conn_flush(r->conn);
}

/* n bytes from src, moved rather than copied where framing allows. */
void
http_stream_move(struct http_req *r, struct evbuffer *src, size_t n)
{
	struct evbuffer	*out = r->conn->out;

	if (n == 0)
		return;
	if (r->head.method == HTTP_M_HEAD) {
		evbuffer_drain(src, n);
		return;
	}
	http_first_bytes(r);
	audit_feed_buf(r, src, n);
	if (r->chunked)
		evbuffer_add_printf(out, "%zx\r\n", n);
	evbuffer_remove_buffer(src, out, n);
	if (r->chunked)
		evbuffer_add(out, "\r\n", 2);
	conn_flush(r->conn);
}

void
http_stream_end(struct http_req *r)
{
	if (r->chunked && r->head.method != HTTP_M_HEAD)
		evbuffer_add(r->conn->out,
		    "0\r\n\r\n", 5);
	request_done(r->conn);
}

/* The answer cannot be finished: cut the connection, so the client
 * sees a truncated answer rather than a complete wrong one. */
void
http_stream_abort(struct http_req *r)
{
	r->abort = NULL;
	r->end_status = 502;
	conn_free(r->conn);
}

void
http_hold(struct http_req *r, void (*abort)(struct http_req *, void *),
    void *owner)
{
	r->abort = abort;
	r->owner = owner;
}

void
http_release(struct http_req *r)
{
	r->abort = NULL;
	r->drained = NULL;
	r->owner = NULL;
}

/* Zero the value of header name in the head's bytes (a bearer token,
 * once checked): the head lives as long as the request, a stream's
 * minutes included. */
void
http_wipe_header(struct http_req *r, const char *name)
{
	const char	*v;
	size_t		 vlen;

	if (r->headbuf == NULL ||
	    (v = http_header(&r->head, name, &vlen)) == NULL)
		return;
	sodium_memzero(r->headbuf + (v - r->headbuf), vlen);
}

/* ---- connections ------------------------------------------------------------ */

/*
 * Drain len bytes of in, zeroing them first: evbuffer_drain frees or
 * skips what it drains as it is, and a client's bytes may hold a bearer
 * token.
 */
static void
conn_wipe(struct evbuffer *in, size_t len)
{
	struct evbuffer_iovec	 v[8];
	size_t			 done, n;
	int			 i, nv;

	while (len > 0 && (nv = evbuffer_peek(in, len, NULL, v, 8)) > 0) {
		for (i = 0, done = 0; i < nv && i < 8 && done < len; i++) {
			n = v[i].iov_len < len - done ? v[i].iov_len :
			    len - done;
			sodium_memzero(v[i].iov_base, n);
			done += n;
		}
		evbuffer_drain(in, done);
		len -= done;
	}
}

static void
conn_free(struct http_conn *c)
{
	struct http_conns	*cs = c->l->conns;
	struct http_req		*r = &c->req;

	if (r->abort != NULL)
		r->abort(r, r->owner);
	/* Cut short: the client left (499), or the engine failed. */
	if (r->ep != EP_NONE)
		audit_request(r, r->end_status ? r->end_status : 499);
	http_req_clear(r);
	free(r->tail);
	TAILQ_REMOVE(cs, c, entry);
	event_free(c->timer);
	event_free(c->rev);
	event_free(c->wev);
	/* Unread bytes (a partial or refused head, a pipelined request)
	 * go with the connection, zeroed. */
	conn_wipe(c->in, evbuffer_get_length(c->in));
	evbuffer_free(c->in);
	evbuffer_free(c->out);
	if (c->ssl != NULL && c->state != C_TLS && !c->tls_failed) {
		(void)SSL_shutdown(c->ssl);	/* close_notify, if it goes */
		ERR_clear_error();
	}
	tls_conn_free(c->ssl, &c->wait);
	close(c->fd);
	free(c);
	http_nconns--;
	if (http_draining)
		http_drain_check();
}

/* An error before the request could be read: answer, then close.
 * Nothing more is read, so what is unread (a partial head, with its
 * token) is wiped now rather than when the answer is flushed. */
static void
conn_refuse(struct http_conn *c, int status, const char *msg)
{
	conn_wipe(c->in, evbuffer_get_length(c->in));
	c->keepalive = 0;
	if (c->req.headbuf == NULL)
		c->req.head.minor = 1;
	c->req.id = http_nextid++;
	http_error(&c->req, status, "invalid_request_error", NULL, msg);
}

static void
conn_timeout(evutil_socket_t fd, short ev, void *arg)
{
	struct http_conn	*c = arg;

	(void)fd;
	(void)ev;
	switch (c->state) {
	case C_TLS:
		log_debug("%s: TLS handshake took too long: closed", c->addr);
		conn_free(c);
		return;
	case C_HEAD:
		if (c->idle ||
		    evbuffer_get_length(c->in) == 0) {
			conn_free(c);
			return;
		}
		conn_refuse(c, 408, "The request head took too long to "
		    "arrive.");
		break;
	case C_BODY:
		conn_refuse(c, 408, "The request body took too long to "
		    "arrive.");
		break;
	default:
		conn_free(c);
		break;
	}
}

/* The client sends no more: EOF, or an error. */
static void
conn_eof(struct http_conn *c, int error)
{
	/* Pipelined requests that arrived before a half-close are still
	 * answered; an EOF while a request is at work means the client
	 * left (a full close looks the same), so its engine call ends. */
	if (!error && c->state == C_HEAD && evbuffer_get_length(c->in) > 0) {
		c->eof = 1;
		conn_reading(c, 0);
		conn_dispatch(c);
		return;
	}
	conn_free(c);
}

static void
conn_write(evutil_socket_t fd, short ev, void *arg)
{
	struct http_conn	*c = arg;
	struct http_req		*r = &c->req;

	if (ev & EV_TIMEOUT) {
		log_info("%s: client took no bytes for %d s: closed",
		    c->addr, px->limits.write_timeout);
		conn_free(c);	/* and with it the engine call */
		return;
	}
	(void)fd;
	if (c->state == C_TLS || c->read_wants_write) {
		/* The handshake, or a read, waited for room to write. */
		c->read_wants_write = 0;
		if (evbuffer_get_length(c->out) == 0)
			event_del(c->wev);
		event_active(c->rev, EV_READ, 0);
		if (c->state == C_TLS)
			return;
	}
	if (conn_out_write(c) == -1) {
		conn_free(c);
		return;
	}
	if (evbuffer_get_length(c->out) == 0)
		event_del(c->wev);
	if (c->state == C_CLOSING) {
		if (evbuffer_get_length(c->out) == 0)
			conn_free(c);
		return;
	}
	if (r->drained != NULL && evbuffer_get_length(c->out) <=
	    HTTP_WRITE_LOW)
		r->drained(r, r->owner);
}

static void
conn_timer(struct http_conn *c, int secs)
{
	struct timeval	 tv = { secs, 0 };

	evtimer_add(c->timer, &tv);
}

/* The body so far; 1 when it is all here. */
static int
body_read(struct http_conn *c)
{
	struct http_req	*r = &c->req;
	struct evbuffer	*in = c->in;
	struct evbuffer_iovec v;
	const char	*data;
	size_t		 used, dlen, want;
	int		 rc;

	if (!r->head.chunked) {
		want = (size_t)r->head.clen - evbuffer_get_length(r->body);
		evbuffer_remove_buffer(in, r->body, want);
		return evbuffer_get_length(r->body) == (size_t)r->head.clen;
	}
	while (evbuffer_get_length(in) > 0) {
		if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
			return 0;
		rc = http_chunked_step(&c->ck, v.iov_base, v.iov_len, &used,
		    &data, &dlen);
		if (rc == -1) {
			conn_refuse(c, 400, "Malformed chunked request body.");
			return -1;
		}
		if (evbuffer_get_length(r->body) + dlen > px->limits.max_body) {
			conn_refuse(c, 413, "The request body is too large.");
			return -1;
		}
		evbuffer_add(r->body, data, dlen);
		evbuffer_drain(in, used);
		if (rc == 1)
			return 1;
	}
	return 0;
}

static void
conn_body(struct http_conn *c)
{
	int	 rc;

	if ((rc = body_read(c)) == -1 || rc == 0)
		return;		/* the deadline was set on entering C_BODY */
	evtimer_del(c->timer);
	c->body_done = 1;
	c->state = C_WORK;
	route_dispatch(&c->req);
}

/*
 * Search in for what, starting where the last search of the same head
 * stopped (less what a match straddling that point could need).
 */
static struct evbuffer_ptr
conn_head_search(struct evbuffer *in, size_t scanned, const char *what,
    size_t len)
{
	struct evbuffer_ptr	 start;
	size_t			 from = scanned >= len ? scanned - len + 1 : 0;

	if (evbuffer_ptr_set(in, &start, from, EVBUFFER_PTR_SET) == -1)
		return evbuffer_search(in, what, len, NULL);
	return evbuffer_search(in, what, len, &start);
}

/*
 * Move len bytes of in to buf, zeroing them where they were read into
 * (a head may hold a bearer token): only buf, wiped with the request,
 * keeps them.
 */
static void
conn_take(struct evbuffer *in, char *buf, size_t len)
{
	evbuffer_copyout(in, buf, len);
	conn_wipe(in, len);
}

/* Read a whole head into headbuf; 1 when there, -1 if refused. */
static int
conn_head(struct http_conn *c)
{
	struct evbuffer		*in = c->in;
	struct evbuffer_ptr	 p;
	struct http_req		*r = &c->req;
	size_t			 n, hlen;
	char			 crlf[2];
	int			 rc;

	/* Stray CRLFs between pipelined requests. */
	while (evbuffer_get_length(in) >= 2 &&
	    evbuffer_copyout(in, crlf, 2) == 2 && crlf[0] == '\r' &&
	    crlf[1] == '\n') {
		evbuffer_drain(in, 2);
		c->scanned = 0;
	}
	if ((n = evbuffer_get_length(in)) == 0)
		return 0;
	if (c->idle) {
		/* The first byte: from now on the head has a deadline. */
		c->idle = 0;
		conn_timer(c, px->limits.header_timeout);
	}
	p = conn_head_search(in, c->scanned, "\r\n\r\n", 4);
	if (p.pos == -1 && n <= px->limits.max_header) {
		/* A head ended with bare LFs is refused now (the parser
		 * below cannot accept it), not at the timeout; anything
		 * else waits for its CRLF CRLF. */
		if (conn_head_search(in, c->scanned, "\n\n", 2).pos == -1) {
			/* Next time only the new bytes are searched: a
			 * head sent a byte at a time costs linear work. */
			c->scanned = n;
			return 0;
		}
		hlen = n;
	} else if (p.pos == -1 || (size_t)p.pos + 4 > px->limits.max_header) {
		conn_refuse(c, 431, "The request head is too large.");
		return -1;
	} else
		hlen = (size_t)p.pos + 4;
	if ((r->headbuf = malloc(hlen)) == NULL) {
		conn_refuse(c, 503, "Out of memory.");
		return -1;
	}
	conn_take(in, r->headbuf, hlen);
	r->headlen = hlen;
	c->scanned = 0;
	if ((rc = http_parse_head(r->headbuf, hlen, 0, &r->head)) <= 0) {
		r->head.minor = 1;
		conn_refuse(c, rc == 0 ? 400 : -rc, rc == -431 ?
		    "Too many request header fields." : rc == -505 ?
		    "Only HTTP/1.0 and HTTP/1.1 are served." : rc == -501 ?
		    "Only the chunked transfer coding is understood." :
		    "Malformed HTTP request.");
		return -1;
	}
	return 1;
}

static void
conn_dispatch(struct http_conn *c)
{
	switch (c->state) {
	case C_HEAD:
		if (conn_head(c) == 1)
			request_begin(c);
		break;
	case C_BODY:
		conn_body(c);
		break;
	default:
		/* Pipelined: it waits, unless it is too much. */
		if (evbuffer_get_length(c->in) >
		    px->limits.max_header + px->limits.max_body)
			conn_reading(c, 0);
		break;
	}
}

/* keyd answered (or failed) a paused handshake: run it on, from the
 * loop. */
static void
conn_resume(void *arg)
{
	struct http_conn	*c = arg;

	event_active(c->rev, EV_READ, 0);
}

/* An SSL call did not finish: wait for what it wants.  -1: it failed. */
static int
conn_tls_want(struct http_conn *c, int rc)
{
	struct timeval	 tv = { px->limits.write_timeout, 0 };

	switch (SSL_get_error(c->ssl, rc)) {
	case SSL_ERROR_WANT_READ:
		conn_reading(c, 1);
		return 0;
	case SSL_ERROR_WANT_WRITE:
		c->read_wants_write = c->state != C_TLS;
		if (!event_pending(c->wev, EV_WRITE, NULL))
			event_add(c->wev, &tv);
		return 0;
	case SSL_ERROR_WANT_ASYNC:
		/* keyd signs: nothing to read until it has (conn_resume). */
		conn_reading(c, 0);
		return 0;
	default:
		ERR_clear_error();
		c->tls_failed = 1;
		return -1;
	}
}

/* The handshake, bounded by header_timeout (set at accept). */
static void
conn_handshake(struct http_conn *c)
{
	int	 rc;

	rc = tls_handshake(c->ssl, &c->wait, conn_resume, c);
	if (rc != 1) {
		if (conn_tls_want(c, rc) == -1) {
			log_debug("%s: TLS handshake failed", c->addr);
			conn_free(c);
		}
		return;
	}
	/* TLS-ALPN-01: the handshake was the CA's whole check. */
	if (tls_is_acme(c->ssl)) {
		log_info("%s: TLS-ALPN-01 challenge certificate shown",
		    c->addr);
		conn_free(c);
		return;
	}
	if (tls_peer(c->ssl, c->cert_serial, c->cert_label) == -1 ||
	    (c->l->o.cc == TLS_CC_REQUIRED && c->cert_serial[0] == '\0')) {
		log_info("%s: client certificate refused", c->addr);
		c->tls_failed = 1;
		conn_free(c);
		return;
	}
	c->state = C_HEAD;
	c->idle = 1;
	conn_timer(c, px->limits.idle_timeout);
	conn_reading(c, 1);
	/* The request may have come with the handshake's last flight. */
	event_active(c->rev, EV_READ, 0);
}

/*
 * Like conn_read, through TLS: records until SSL holds no more (or
 * wants the socket), at most 64 KB at a time.  Stopped short, what SSL holds (read ahead) is
 * seen by no socket event: wake the loop for it.  Stopped by WANT_READ,
 * what it holds is part of a record and the socket's event comes with
 * the rest: waking the loop then would spin until it does.
 */
static void
conn_tls_read(struct http_conn *c)
{
	struct evbuffer_iovec	 v;
	size_t			 total = 0;
	int			 n, drained = 0;

	while (c->reading && total < 4 * HTTP_TLS_CHUNK &&
	    evbuffer_reserve_space(c->in, HTTP_TLS_CHUNK, &v, 1) == 1) {
		n = SSL_read(c->ssl, v.iov_base, (int)(v.iov_len >
		    HTTP_TLS_CHUNK ? HTTP_TLS_CHUNK : v.iov_len));
		if (n <= 0) {
			evbuffer_commit_space(c->in, &v, 0);
			if (SSL_get_error(c->ssl, n) == SSL_ERROR_ZERO_RETURN) {
				conn_eof(c, 0);
				return;
			}
			if (conn_tls_want(c, n) == -1) {
				conn_eof(c, 1);
				return;
			}
			drained = 1;
			break;
		}
		v.iov_len = (size_t)n;
		evbuffer_commit_space(c->in, &v, 1);
		total += (size_t)n;
		/* SSL holds nothing more: another SSL_read would only find
		 * the socket empty (EAGAIN), a system call per request; if
		 * more is there, the level-triggered event comes again. */
		if (!SSL_has_pending(c->ssl)) {
			drained = 1;
			break;
		}
	}
	if (!drained && c->reading && SSL_has_pending(c->ssl))
		event_active(c->rev, EV_READ, 0);
	conn_dispatch(c);
}

/*
 * Read straight into the input buffer: evbuffer_read (and so
 * bufferevents) would ask FIONREAD first, a system call per read.
 */
static void
conn_read(evutil_socket_t fd, short ev, void *arg)
{
	struct http_conn	*c = arg;
	struct evbuffer_iovec	 v[2];
	struct iovec		 iov[2];
	ssize_t			 n, left;
	int			 i, nv;

	(void)ev;
	if (c->state == C_TLS) {
		conn_handshake(c);
		return;
	}
	if (c->ssl != NULL) {
		conn_tls_read(c);
		return;
	}
	if (c->reading && (nv = evbuffer_reserve_space(c->in, 16384, v,
	    2)) > 0) {
		for (i = 0; i < nv; i++) {
			iov[i].iov_base = v[i].iov_base;
			iov[i].iov_len = v[i].iov_len;
		}
		n = readv(fd, iov, nv);
		if (n == -1 && errno != EAGAIN && errno != EINTR) {
			evbuffer_commit_space(c->in, v, 0);
			conn_eof(c, 1);
			return;
		}
		if (n == 0) {
			evbuffer_commit_space(c->in, v, 0);
			conn_eof(c, 0);
			return;
		}
		/* EAGAIN: woken to serve a pipelined request, not by data. */
		for (i = 0, left = n > 0 ? n : 0; i < nv; i++) {
			if ((size_t)left < v[i].iov_len)
				v[i].iov_len = (size_t)left;
			left -= (ssize_t)v[i].iov_len;
		}
		evbuffer_commit_space(c->in, v, n > 0 ? nv : 0);
	}
	conn_dispatch(c);
}

/* ---- requests ----------------------------------------------------------------- */

static const struct {
	const char		*path;
	enum http_endpoint	 ep;
	enum http_method	 method;
	int			 auth;
	enum dialect		 dialect;
	enum http_endpoint	 op;		/* what engines are asked */
} http_routes[] = {
	{ "/healthz",		  EP_HEALTHZ,	  HTTP_M_GET,  0, DL_OPENAI,
	    EP_NONE },
	{ "/v1/models",		  EP_MODELS,	  HTTP_M_GET,  1, DL_OPENAI,
	    EP_NONE },
	{ "/v1/chat/completions", EP_CHAT,	  HTTP_M_POST, 1, DL_OPENAI,
	    EP_CHAT },
	{ "/v1/completions",	  EP_COMPLETIONS, HTTP_M_POST, 1, DL_OPENAI,
	    EP_COMPLETIONS },
	{ "/v1/embeddings",	  EP_EMBEDDINGS,  HTTP_M_POST, 1, DL_OPENAI,
	    EP_EMBEDDINGS },
	{ "/v1/messages",	  EP_MESSAGES,	  HTTP_M_POST, 1, DL_ANTHROPIC,
	    EP_CHAT },
	{ "/v1/messages/count_tokens", EP_COUNT_TOKENS, HTTP_M_POST, 1,
	    DL_ANTHROPIC, EP_COUNT_TOKENS },
	{ "/v1/responses",	  EP_RESPONSES,	  HTTP_M_POST, 1, DL_RESPONSES,
	    EP_CHAT },
	{ "/api/chat",		  EP_OLLAMA_CHAT, HTTP_M_POST, 1, DL_OLLAMA,
	    EP_CHAT },
	{ "/api/generate",	  EP_OLLAMA_GENERATE, HTTP_M_POST, 1, DL_OLLAMA,
	    EP_CHAT },
	{ "/api/embed",		  EP_OLLAMA_EMBED, HTTP_M_POST, 1, DL_OLLAMA,
	    EP_EMBEDDINGS },
	{ "/api/embeddings",	  EP_OLLAMA_EMBEDDINGS, HTTP_M_POST, 1,
	    DL_OLLAMA, EP_EMBEDDINGS },
	{ "/api/show",		  EP_OLLAMA_SHOW, HTTP_M_POST, 1, DL_OLLAMA,
	    EP_OLLAMA_SHOW },
	{ "/api/tags",		  EP_OLLAMA_TAGS, HTTP_M_GET,  1, DL_OLLAMA,
	    EP_NONE },
	{ "/api/version",	  EP_OLLAMA_VERSION, HTTP_M_GET, 1, DL_OLLAMA,
	    EP_NONE },
	{ "/metrics",		  EP_METRICS,	  HTTP_M_GET,  1, DL_OPENAI,
	    EP_NONE },
};
#define HTTP_NROUTES	(sizeof(http_routes) / sizeof(http_routes[0]))

/* The path endpoint ep is served at, or NULL (an ep from the shared
 * region is checked here: a worker may have written anything). */
const char *
http_ep_path(int ep)
{
	size_t	 i;

	for (i = 0; i < HTTP_NROUTES; i++)
		if ((int)http_routes[i].ep == ep)
			return http_routes[i].path;
	return NULL;
}

static void
request_authed(struct http_req *r, const char *key_id)
{
	struct http_conn	*c = r->conn;

	http_release(r);
	if (key_id != NULL)
		snprintf(r->key_id, sizeof(r->key_id), "%s", key_id);
	if (!policy_key_admit(r))
		return;
	if (r->head.method != HTTP_M_POST) {
		c->state = C_WORK;
		route_dispatch(r);
		return;
	}
	if (r->head.minor >= 1 &&
	    http_header(&r->head, "expect", &(size_t){0}) != NULL) {
		evbuffer_add(c->out, "HTTP/1.1 100 Continue\r\n\r\n", 25);
		conn_flush(c);
	}
	c->state = C_BODY;
	/* The whole body has header_timeout: trickling does not extend it. */
	conn_timer(c, px->limits.header_timeout);
	conn_body(c);
}

static void
request_healthz(struct http_req *r)
{
	http_reply(r, 200, "application/json", "{\"status\":\"ok\"}", 15);
}

/* Which route, and is the request shaped for it?  0 if answered. */
static int
request_check(struct http_conn *c, size_t *route)
{
	struct http_req	*r = &c->req;
	char		 path[512], msg[700];
	const char	*v;
	size_t		 i, vlen;

	if (http_path_normalise(r->head.target, r->head.tlen, path,
	    sizeof(path)) == -1) {
		conn_refuse(c, 400, "Malformed request path.");
		return 0;
	}
	for (i = 0; i < HTTP_NROUTES; i++)
		if (strcmp(path, http_routes[i].path) == 0)
			break;
	/* Ollama's clients read Ollama's errors, admin routes' too;
	 * Anthropic's, Anthropic's. */
	if (strncmp(path, "/api/", 5) == 0)
		r->dialect = DL_OLLAMA;
	else if (strncmp(path, "/v1/messages", 12) == 0)
		r->dialect = DL_ANTHROPIC;
	if (i == HTTP_NROUTES) {
		snprintf(msg, sizeof(msg), "Unknown request URL: %.*s. Please "
		    "check the URL for typos.", (int)(r->head.tlen > 200 ? 200 :
		    r->head.tlen), r->head.target);
		http_error(r, 404, "invalid_request_error", "unknown_url", msg);
		return 0;
	}
	r->ep = http_routes[i].ep;
	r->op = http_routes[i].op;
	r->dialect = http_routes[i].dialect;
	*route = i;
	if (r->head.method == HTTP_M_OPTIONS) {
		c->keepalive = c->keepalive && r->head.clen <= 0 &&
		    !r->head.chunked;
		policy_preflight(r);
		return 0;
	}
	if (r->head.method != http_routes[i].method &&
	    !(r->head.method == HTTP_M_HEAD &&
	    http_routes[i].method == HTTP_M_GET)) {
		snprintf(msg, sizeof(msg), "Method not allowed: use %s %s.",
		    http_routes[i].method == HTTP_M_GET ? "GET" : "POST",
		    http_routes[i].path);
		http_error(r, 405, "invalid_request_error", NULL, msg);
		return 0;
	}
	if (r->head.method != HTTP_M_POST) {
		if (r->head.clen > 0 || r->head.chunked) {
			http_error(r, 400, "invalid_request_error", NULL,
			    "A GET request has no body.");
			return 0;
		}
		return 1;
	}
	if (r->head.clen < 0 && !r->head.chunked) {
		http_error(r, 411, "invalid_request_error", NULL,
		    "A POST request needs a Content-Length or a chunked body.");
		return 0;
	}
	if (r->head.clen > (int64_t)px->limits.max_body) {
		snprintf(msg, sizeof(msg), "The request body is too large: "
		    "%lld bytes; at most %zu are accepted.",
		    (long long)r->head.clen, px->limits.max_body);
		http_error(r, 413, "invalid_request_error", NULL, msg);
		return 0;
	}
	if ((v = http_header(&r->head, "expect", &vlen)) != NULL &&
	    !(vlen == 12 && strncasecmp(v, "100-continue", 12) == 0)) {
		http_error(r, 417, "invalid_request_error", NULL,
		    "Only Expect: 100-continue is understood.");
		return 0;
	}
	return 1;
}

static void
request_begin(struct http_conn *c)
{
	struct http_req	*r = &c->req;
	size_t		 route;

	r->id = http_nextid++;
	clock_gettime(CLOCK_MONOTONIC, &r->start);
	/* Draining: this request is the connection's last. */
	c->keepalive = !r->head.close && !http_draining;
	c->body_done = r->head.clen <= 0 && !r->head.chunked;
	memset(&c->ck, 0, sizeof(c->ck));
	evtimer_del(c->timer);
	/* The CA validates from anywhere, with no key: nothing else is
	 * served there. */
	if (c->l->o.acme_http) {
		c->state = C_WORK;
		acme_http_answer(r);
		return;
	}
	if (audit_full()) {
		/* No request goes unrecorded: none goes at all. */
		r->retry_after = 1;
		conn_refuse(c, 503, "The audit trail is not being written; "
		    "try again later.");
		return;
	}
	if (!policy_admit(r) || !request_check(c, &route) ||
	    !policy_cors(r) || !policy_ip_admit(r))
		return;
	if ((r->body = evbuffer_new()) == NULL) {
		conn_refuse(c, 503, "Out of memory.");
		return;
	}
	c->state = C_WORK;
	if (r->ep == EP_HEALTHZ) {
		request_healthz(r);
		return;
	}
	if (!http_routes[route].auth || !c->l->o.auth)
		request_authed(r, NULL);
	else if (!c->l->o.bearer && c->cert_serial[0] != '\0')
		request_authed(r, NULL);	/* the certificate is the key */
	else
		auth_check(r, request_authed);
}

/* ---- listeners ------------------------------------------------------------------ */

/* Over the connection cap: say so in one write, then close. */
static void
http_overloaded(evutil_socket_t fd)
{
	static const char	 body[] = "{\"error\":{\"message\":\"Too many "
	    "connections; try again.\",\"type\":\"server_error\",\"param\":"
	    "null,\"code\":null}}";
	char			 busy[400];
	int			 n;

	n = snprintf(busy, sizeof(busy), "HTTP/1.1 503 Service Unavailable\r\n"
	    "Content-Type: application/json\r\nRetry-After: 1\r\n"
	    "Connection: close\r\nContent-Length: %zu\r\n\r\n%s",
	    sizeof(body) - 1, body);
	(void)!send(fd, busy, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
	close(fd);
}

static void
http_accept(struct evconnlistener *lev, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	struct proxyd_listener	*l = arg;
	struct http_conn	*c;
	int			 on = 1;

	(void)lev;
	(void)salen;
	if (http_nconns >= px->limits.max_conns) {
		if (l->o.tls)
			close(fd);	/* a 503 would not be TLS */
		else
			http_overloaded(fd);
		return;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		close(fd);
		return;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
	if (sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((struct sockaddr_in *)sa)->sin_addr,
		    c->addr, sizeof(c->addr));
	else if (sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)sa)->sin6_addr,
		    c->addr, sizeof(c->addr));
	c->l = l;
	c->req.conn = c;
	c->state = C_HEAD;
	c->idle = 1;
	c->fresh = 1;
	c->fd = fd;		/* non-blocking: evconnlistener made it so */
	c->timer = evtimer_new(px->c.base, conn_timeout, c);
	c->rev = event_new(px->c.base, fd, EV_READ | EV_PERSIST, conn_read, c);
	c->wev = event_new(px->c.base, fd, EV_WRITE | EV_PERSIST, conn_write,
	    c);
	c->in = evbuffer_new();
	c->out = evbuffer_new();
	if (c->timer == NULL || c->rev == NULL || c->wev == NULL ||
	    c->in == NULL || c->out == NULL) {
		if (c->timer != NULL)
			event_free(c->timer);
		if (c->rev != NULL)
			event_free(c->rev);
		if (c->wev != NULL)
			event_free(c->wev);
		if (c->in != NULL)
			evbuffer_free(c->in);
		if (c->out != NULL)
			evbuffer_free(c->out);
		close(fd);
		free(c);
		return;
	}
	if (l->o.tls && (c->ssl = tls_conn_new(l->id, fd, l->o.cc)) == NULL) {
		event_free(c->timer);
		event_free(c->rev);
		event_free(c->wev);
		evbuffer_free(c->in);
		evbuffer_free(c->out);
		close(fd);
		free(c);
		return;
	}
	TAILQ_INSERT_TAIL((struct http_conns *)l->conns, c, entry);
	http_nconns++;
	conn_reading(c, 1);
	if (c->ssl != NULL) {
		/* The handshake has the head's deadline. */
		c->state = C_TLS;
		conn_timer(c, px->limits.header_timeout);
	} else
		conn_timer(c, px->limits.idle_timeout);
}

static void
http_accept_error(struct evconnlistener *lev, void *arg)
{
	struct proxyd_listener	*l = arg;

	(void)lev;
	/* EMFILE and friends: the listener stays; the client waits. */
	log_warn("accept on %s", l->id);
}

void
http_listen(int fd, const char *id, const struct listen_opts *o)
{
	struct proxyd_listener	*l = NULL;

	if (http_draining) {
		log_warnx("draining: listener %s refused", id);
		close(fd);
		return;
	}
	http_close(id);		/* a restarted flmd re-sends: replace */
	if (px->nlisteners == PROXYD_MAX_LISTENERS ||
	    (l = calloc(1, sizeof(*l))) == NULL ||
	    (l->conns = calloc(1, sizeof(struct http_conns))) == NULL) {
		log_warnx("cannot take listener %s", id);
		free(l);
		close(fd);
		return;
	}
	TAILQ_INIT((struct http_conns *)l->conns);
	snprintf(l->id, sizeof(l->id), "%s", id);
	l->o = *o;
	evutil_make_socket_nonblocking(fd);
	if ((l->lev = evconnlistener_new(px->c.base, http_accept, l,
	    LEV_OPT_CLOSE_ON_FREE, 0, fd)) == NULL) {	/* 0: flmd listened */
		log_warnx("cannot serve %s", id);
		free(l->conns);
		free(l);
		close(fd);
		return;
	}
	evconnlistener_set_error_cb(l->lev, http_accept_error);
	px->listeners[px->nlisteners++] = l;
	log_info("serving %s%s%s%s", id, o->tls ? " over TLS" : "",
	    o->cc == TLS_CC_REQUIRED ? (o->bearer ? ", client certificates "
	    "required" : ", client certificates instead of keys") :
	    o->cc == TLS_CC_OPTIONAL ? ", client certificates optional" : "",
	    o->auth ? "" : " WITHOUT KEY CHECKS (benchmark only)");
}

void
http_close(const char *id)
{
	struct http_conns	*cs;
	int			 i;

	for (i = 0; i < px->nlisteners; i++) {
		if (strcmp(px->listeners[i]->id, id) != 0)
			continue;
		/* id may be the listener's own: say it before freeing. */
		log_info("stopped serving %s", id);
		if (px->listeners[i]->lev != NULL)	/* NULL: draining */
			evconnlistener_free(px->listeners[i]->lev);
		cs = px->listeners[i]->conns;
		while (!TAILQ_EMPTY(cs))
			conn_free(TAILQ_FIRST(cs));
		free(cs);
		free(px->listeners[i]);
		memmove(&px->listeners[i], &px->listeners[i + 1],
		    (px->nlisteners - i - 1) * sizeof(px->listeners[0]));
		px->nlisteners--;
		return;
	}
}

/* Requests served per listener since the last report, for flm proxy
 * status (flmd adds them up, so a restart of ours loses none). */
void
http_report(void)
{
	struct json_object	*o = NULL;
	int			 i;

	for (i = 0; i < px->nlisteners; i++) {
		struct proxyd_listener	*l = px->listeners[i];

		if (l->requests == l->reported)
			continue;
		if (o == NULL)
			o = json_object_new_object();
		json_object_object_add(o, l->id,
		    json_object_new_int64((int64_t)(l->requests - l->reported)));
		l->reported = l->requests;
	}
	if (o != NULL && px->c.parent != NULL)
		chan_compose_json(px->c.parent, IMSG_PROXY_STATS, 0, o);
	json_object_put(o);
}

static void
http_report_event(evutil_socket_t fd, short ev, void *arg)
{
	(void)fd;
	(void)ev;
	(void)arg;
	http_report();
}

/* Before the sandbox: as many descriptors as we may have. */
void
http_init(void)
{
	struct rlimit	 rl;
	struct timeval	 tv = { 1, 0 };
	uint32_t	 hi;

	http_limits(NULL);
	/* Request ids stay unique across restarts: the audit trail's key. */
	if (getrandom(&hi, sizeof(hi), 0) != sizeof(hi))
		fatal("getrandom");
	http_nextid = (uint64_t)hi << 32 | 1;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) == -1)
			log_warn("setrlimit");
	}
	if ((http_report_tick = event_new(px->c.base, -1, EV_PERSIST,
	    http_report_event, NULL)) == NULL ||
	    event_add(http_report_tick, &tv) == -1)
		fatalx("http timer");
}

void
http_cleanup(void)
{
	while (px->nlisteners > 0)
		http_close(px->listeners[0]->id);
	if (http_report_tick != NULL)
		event_free(http_report_tick);
	http_report_tick = NULL;
	if (http_drain_timer != NULL)
		event_free(http_drain_timer);
	http_drain_timer = NULL;
}

/* ---- draining (SIGTERM to flmd) --------------------------------------------- */

/* Out of the loop once nothing is in flight and keyd has every record. */
void
http_drain_check(void)
{
	if (!http_draining || http_drain_over || http_nconns > 0 ||
	    audit_pending() > 0)
		return;
	http_drain_over = 1;
	log_info("drained");
	event_base_loopexit(px->c.base, NULL);
}

/* A connection with nothing under way: no request read, none answered. */
static int
conn_idle(const struct http_conn *c)
{
	return c->state == C_TLS || (c->state == C_HEAD && c->idle &&
	    evbuffer_get_length(c->in) == 0);
}

/*
 * The timeout: every request still under way is cut, its engine call
 * cancelled.  What of its answer is queued (whole chunks: a chunk goes
 * into out at once) is written if the socket takes it, then the
 * connection closes without the last chunk, so the client sees a cut
 * answer rather than a complete one.  Their audit records get one more
 * second to reach keyd.
 */
static void
http_drain_timeout(evutil_socket_t fd, short ev, void *arg)
{
	struct http_conns	*cs;
	struct http_conn	*c, *next;
	struct timeval		 tv = { HTTP_DRAIN_AUDIT_SECS, 0 };
	int			 i, cut = 0;

	(void)fd;
	(void)ev;
	(void)arg;
	if (http_nconns == 0) {
		log_warnx("drain: %zu audit records keyd has not acknowledged "
		    "after %d s", audit_pending(), px->limits.drain_timeout);
		http_drain_over = 1;
		event_base_loopexit(px->c.base, NULL);
		return;
	}
	for (i = 0; i < px->nlisteners; i++) {
		cs = px->listeners[i]->conns;
		for (c = TAILQ_FIRST(cs); c != NULL; c = next) {
			next = TAILQ_NEXT(c, entry);
			if (c->state != C_CLOSING && !conn_idle(c))
				cut++;
			if (c->req.ep != EP_NONE && c->req.end_status == 0)
				c->req.end_status = 503;
			(void)conn_out_write(c);
			conn_free(c);
		}
	}
	log_warnx("drain: %d request%s cut after %d s", cut, cut == 1 ? "" :
	    "s", px->limits.drain_timeout);
	audit_send_now();
	if (!http_drain_over)
		evtimer_add(http_drain_timer, &tv);
}

/*
 * flmd stops: close the listeners at once (a new flmd may bind their
 * ports), and the idle connections; requests under way go on, each the
 * last of its connection, until the last or proxy.drain_timeout.
 */
void
http_drain(void)
{
	struct http_conns	*cs;
	struct http_conn	*c, *next;
	struct timeval		 tv = { px->limits.drain_timeout, 0 };
	int			 i;

	if (http_draining)
		return;
	http_draining = 1;
	if ((http_drain_timer = evtimer_new(px->c.base, http_drain_timeout,
	    NULL)) == NULL)
		fatalx("drain timer");
	for (i = 0; i < px->nlisteners; i++) {
		evconnlistener_free(px->listeners[i]->lev);
		px->listeners[i]->lev = NULL;
		cs = px->listeners[i]->conns;
		for (c = TAILQ_FIRST(cs); c != NULL; c = next) {
			next = TAILQ_NEXT(c, entry);
			c->keepalive = 0;
			/* Just accepted: its request may be on its way (the
			 * client connected to a listener that still was, and
			 * other workers still are): a short grace, not a
			 * close that looks like a failure. */
			if (conn_idle(c) && c->fresh)
				conn_timer(c, HTTP_DRAIN_FRESH_SECS);
			else if (conn_idle(c))
				conn_free(c);
		}
	}
	log_info("draining: listeners closed, %d connection%s under way, "
	    "%d s at most", http_nconns, http_nconns == 1 ? "" : "s",
	    px->limits.drain_timeout);
	audit_send_now();
	evtimer_add(http_drain_timer, &tv);
	http_drain_check();
}
