/*
 * The engine side of flm-proxyd: one HTTP/1.1 request per call on a
 * kept-alive connection to a configured engine address, its answer
 * passed to the client as it arrives (or made OpenAI-shaped by
 * proxyd_ollama.c).  The client's pace sets the engine's: when the
 * client cannot take more, we stop reading the engine.
 */
#include "config.h"

#include <sys/queue.h>
#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <json-c/json.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sodium.h>

#include "jsonbuf.h"
#include "log.h"
#include "netaddr.h"
#include "proxyd.h"

#define UP_MAX_HEAD		(64 * 1024)
#define UP_MAX_ANSWER		(16 * 1024 * 1024)	/* to translate */
#define UP_MAX_LINE		(1024 * 1024)		/* one NDJSON line */
#define UP_CLIENT_HIGH		(256 * 1024)	/* pause the engine above */
#define UP_CONNECT_SECS		10
#define UP_READ_MIN		(16 * 1024)	/* a read's first size */
#define UP_READ_MAX		(128 * 1024)	/* grown to while reads fill */
#define UP_IDLE_MAX		64	/* kept-alive, per engine on average */

enum up_state { U_CONNECTING, U_SOCKS, U_TLS, U_HEAD, U_BODY, U_IDLE };
enum up_body { B_LENGTH, B_CHUNKED, B_CLOSE, B_NONE };

struct upstream {
	TAILQ_ENTRY(upstream)	 entry;		/* idle list */
	int			 fd;
	SSL			*ssl;		/* an https engine's */
	struct socks_io		*sio;		/* while SOCKS5 is spoken */
	int			 direct;	/* egress.fail_open: SOCKS down */
	int			 pool;		/* a failure may go elsewhere */
	int			 in_call;	/* counted by pool_begin */
	struct event		*rev;		/* readable, or silent too long */
	struct event		*wev;		/* connected, or room to send */
	struct evbuffer		*in;		/* the answer, as it comes */
	struct proxyd_engine	 engine;	/* a copy: reloads change ours */
	struct http_req		*req;
	enum up_state		 state;
	enum up_body		 framing;
	enum upstream_mode	 mode;
	int			 stream;
	int			 usage;
	int			 base64;
	int			 status;
	int			 reused;	/* from the idle list */
	int			 keepalive;
	unsigned int		 gen;		/* up_gen when connected */
	int			 translating;	/* answer goes through acc */
	int			 hide_usage;	/* its usage chunk, not asked for */
	int			 filtering;	/* SSE passed through acc for it */
	int			 skip_blank;	/* the end of a hidden event */
	int64_t			 left;		/* B_LENGTH bytes to come */
	struct http_chunked	 ck;
	char			*sent;		/* the request, until answered */
	size_t			 sentlen;
	size_t			 wipelen;	/* its head held a credential */
	size_t			 sentoff;	/* how much of it went */
	size_t			 rsize;		/* the next read's size */
	char			*model;		/* as the client named it */
	struct evbuffer		*acc;		/* answer or NDJSON line */
	struct ollama_stream	*os;
	struct front		*front;		/* the client's dialect */
	int			 fstream;	/* a stream said in it */
};

static TAILQ_HEAD(, upstream)	 up_idle = TAILQ_HEAD_INITIALIZER(up_idle);
static int			 up_nidle;
/* The engine list's: a connection made under an older one (its CA,
 * its pin) is not kept once its call ends. */
static unsigned int		 up_gen;

static void	up_readable(evutil_socket_t, short, void *);
static void	up_writable(evutil_socket_t, short, void *);
static void	up_lost(struct upstream *, const char *);
static void	up_close(struct upstream *);
static int	up_connect(struct upstream *);
static void	up_tls_step(struct upstream *);
static void	up_sent_free(struct upstream *);
static void	up_socks_start(struct upstream *);
static void	up_socks_read(struct upstream *);
static void	up_tunnel_ready(struct upstream *);
static void	up_egress_down(struct upstream *, const char *);
static void	up_call_end(struct upstream *, int);
static const struct proxyd_engine *up_live(const struct proxyd_engine *);

static void
up_free(struct upstream *up)
{
	up_call_end(up, -1);	/* a path that did not say */
	if (up->state == U_IDLE) {
		TAILQ_REMOVE(&up_idle, up, entry);
		up_nidle--;
	}
	if (up->req != NULL)
		http_release(up->req);
	up_close(up);
	if (up->in != NULL)
		evbuffer_free(up->in);
	if (up->acc != NULL)
		evbuffer_free(up->acc);
	ollama_stream_free(up->os);
	front_free(up->front);
	up_sent_free(up);
	free(up->model);
	free(up);
}

/* The connection itself: its events, then the socket. */
static void
up_close(struct upstream *up)
{
	if (up->rev != NULL)
		event_free(up->rev);
	if (up->wev != NULL)
		event_free(up->wev);
	free(up->sio);
	up->sio = NULL;
	if (up->ssl != NULL) {
		SSL_set_quiet_shutdown(up->ssl, 1);
		SSL_free(up->ssl);
		up->ssl = NULL;
	}
	if (up->fd != -1)
		close(up->fd);
	up->rev = up->wev = NULL;
	up->fd = -1;
}

/*
 * Read the engine when on, its silence bounded by upstream_timeout.  The
 * event persists, so the bound runs again from each read.
 */
static void
up_reading(struct upstream *up, int on)
{
	struct timeval	 tv = { px->limits.upstream_timeout, 0 };

	if (on)
		event_add(up->rev, &tv);
	else
		event_del(up->rev);
}

/* The request is answered (or will be sent no more): let it go. */
static void
up_sent_free(struct upstream *up)
{
	if (up->sent != NULL && up->wipelen > 0)
		explicit_bzero(up->sent, up->wipelen);
	up->wipelen = 0;
	free(up->sent);
	up->sent = NULL;
	up->sentlen = up->sentoff = 0;
	if (up->wev != NULL)
		event_del(up->wev);
}

/* The client went: so does the engine's work, at once. */
static void
up_abort(struct http_req *req, void *arg)
{
	struct upstream	*up = arg;

	(void)req;
	up->req = NULL;
	up_call_end(up, -1);
	up_free(up);
}

static void
up_drained(struct http_req *req, void *arg)
{
	struct upstream	*up = arg;

	req->drained = NULL;
	up_reading(up, 1);
	/* What the engine sent while we paused is already ours: from the
	 * loop, so no recursion into the client's write. */
	if (evbuffer_get_length(up->in) > 0)
		event_active(up->rev, EV_READ, 0);
}

/* The call is over for the pool's counts: ok 1 an answer, 0 the
 * engine failed, -1 the client left.  Once per call. */
static void
up_call_end(struct upstream *up, int ok)
{
	if (!up->in_call)
		return;
	up->in_call = 0;
	pool_end(up->engine.id, ok);
}

/* A status that says the engine, not the request, failed. */
static int
up_status_failed(int status)
{
	return status == 502 || status == 503 || status == 504;
}

/*
 * The engine failed before a byte of the answer: a pool's request goes
 * once to another of its engines (never after an answer has begun).
 * 1 if it went.
 */
static int
up_retry(struct upstream *up, const char *why)
{
	struct http_req	*req = up->req;

	if (!up->pool || req == NULL || req->sent_head || req->retried)
		return 0;
	up_call_end(up, 0);
	req->retried = 1;
	snprintf(req->exclude, sizeof(req->exclude), "%s", up->engine.id);
	log_info("engine %s: %s; request %llu goes to another engine of its "
	    "pool", up->engine.id, why, (unsigned long long)req->id);
	up->req = NULL;
	http_release(req);
	up->keepalive = 0;
	up_free(up);
	route_retry(req);
	return 1;
}

/* Before the client saw anything: an error answer instead. */
static void
up_fail(struct upstream *up, int status, const char *code, const char *msg)
{
	struct http_req	*req = up->req;
	char		 buf[900];

	up_call_end(up, 1);	/* unless the caller said it failed */
	up->req = NULL;
	if (status >= 502)
		metrics_upstream_error(up->engine.id);
	if (req != NULL) {
		http_release(req);
		snprintf(buf, sizeof(buf), "Engine %s: %s", up->engine.id, msg);
		if (req->sent_head && up->stream && up->status == 200 &&
		    req->chunked)
			front_stream_error(req, status, code, buf);
		else if (req->sent_head)
			http_stream_abort(req);
		else {
			http_error(req, status, status == 504 ? "timeout_error" :
			    "server_error", code, buf);
		}
	}
	up_free(up);
}

/* The call is over: keep the connection for the next call to this
 * engine if it is clean, else close it. */
static void
up_park(struct upstream *up)
{
	if (!up->keepalive || up->gen != up_gen || up->direct ||
	    up_nidle >= UP_IDLE_MAX * PROXYD_MAX_ENGINES ||
	    evbuffer_get_length(up->in) > 0) {
		up_free(up);
		return;
	}
	up_sent_free(up);
	free(up->model);
	up->model = NULL;
	ollama_stream_free(up->os);
	up->os = NULL;
	front_free(up->front);
	up->front = NULL;
	up->fstream = 0;
	if (up->acc != NULL)
		evbuffer_free(up->acc);
	up->acc = NULL;
	up->state = U_IDLE;
	/* Still read (an idle engine that talks or closes is let go) and
	 * still bounded: unused for upstream_timeout, it is closed.  Left
	 * as it is, the event costs no system call per call. */
	if (!event_pending(up->rev, EV_READ, NULL))
		up_reading(up, 1);
	TAILQ_INSERT_HEAD(&up_idle, up, entry);
	up_nidle++;
}

/* The answer is complete: the client's request ends. */
static void
up_done(struct upstream *up)
{
	struct http_req	*req = up->req;

	up_call_end(up, !up_status_failed(up->status));
	up->req = NULL;
	http_release(req);
	http_stream_end(req);
	up_park(up);
}

/* A whole answer for the client, made here. */
static void
up_done_text(struct upstream *up, int status, const char *t, size_t len)
{
	struct http_req	*req = up->req;

	up_call_end(up, !up_status_failed(up->status));
	up->req = NULL;
	http_release(req);
	http_reply(req, status, "application/json", t, len);
	up_park(up);
}

static void
up_done_json(struct upstream *up, int status, struct json_object *o)
{
	const char	*s;
	size_t		 len;

	s = json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN |
	    JSON_C_TO_STRING_NOSLASHESCAPE, &len);
	up_done_text(up, status, s, len);
	json_object_put(o);
}

/* ---- answers made OpenAI-shaped ----------------------------------------- */

/* Every data[].embedding of a list as base64 of little-endian float32. */
static int
up_base64(struct json_object *o)
{
	struct json_object	*data, *e, *arr;
	unsigned char		*bin;
	char			*b64;
	size_t			 i, j, n, blen;
	float			 f;
	uint32_t		 u;

	if (!json_object_object_get_ex(o, "data", &data) ||
	    !json_object_is_type(data, json_type_array))
		return -1;
	for (i = 0; i < json_object_array_length(data); i++) {
		e = json_object_array_get_idx(data, i);
		if (!json_object_object_get_ex(e, "embedding", &arr) ||
		    !json_object_is_type(arr, json_type_array))
			return -1;
		n = json_object_array_length(arr);
		blen = sodium_base64_ENCODED_LEN(n * 4,
		    sodium_base64_VARIANT_ORIGINAL);
		if ((bin = malloc(n * 4 + 1)) == NULL ||
		    (b64 = malloc(blen)) == NULL) {
			free(bin);
			return -1;
		}
		for (j = 0; j < n; j++) {
			f = (float)json_object_get_double(
			    json_object_array_get_idx(arr, j));
			memcpy(&u, &f, 4);
			bin[j * 4] = u & 0xff;
			bin[j * 4 + 1] = (u >> 8) & 0xff;
			bin[j * 4 + 2] = (u >> 16) & 0xff;
			bin[j * 4 + 3] = u >> 24;
		}
		sodium_bin2base64(b64, blen, bin, n * 4,
		    sodium_base64_VARIANT_ORIGINAL);
		json_object_object_add(e, "embedding",
		    json_object_new_string(b64));
		free(bin);
		free(b64);
	}
	return 0;
}

/* What the engine's answer broke: the front-end's words if it said. */
static const char *
up_why(const struct upstream *up, const char *dflt)
{
	return up->front != NULL && front_why(up->front) != NULL ?
	    front_why(up->front) : dflt;
}

/* A whole answer in the client's dialect: an Ollama engine's native
 * one made OpenAI's by json-c first, then read as an engine's. */
static void
up_front_whole(struct upstream *up, const char *s, size_t len)
{
	struct json_object	*in, *native = NULL;
	const char		*t = NULL;
	size_t			 tlen;

	if (up->mode != UP_PASS) {
		if ((in = json_parse_buf(s, len)) != NULL)
			native = ollama_answer(up->mode, in, up->model,
			    up->req->id);
		json_object_put(in);
		if (native != NULL)
			s = json_object_to_json_string_length(native,
			    JSON_C_TO_STRING_PLAIN, &len);
	}
	if (up->mode == UP_PASS || native != NULL)
		t = front_answer(up->front, s, len, &tlen);
	json_object_put(native);
	if (t == NULL) {
		up->keepalive = 0;
		up_fail(up, 502, "bad_engine_answer", up_why(up, "the answer "
		    "is not the JSON this engine documents."));
		return;
	}
	up_done_text(up, 200, t, tlen);
}

static void
up_translate_whole(struct upstream *up)
{
	struct json_object	*in, *out;
	const char		*s = (const char *)evbuffer_pullup(up->acc, -1);
	size_t			 len = evbuffer_get_length(up->acc);

	if (up->status != 200) {
		out = ollama_error(up->status, s, len);
		if (up->front != NULL) {
			in = front_error_json(up->req->dialect, up->status,
			    NULL, NULL, NULL, json_object_get_string(
			    json_object_object_get(json_object_object_get(out,
			    "error"), "message")));
			json_object_put(out);
			out = in;
		}
		up_done_json(up, up->status, out);
		return;
	}
	if (up->front != NULL) {
		up_front_whole(up, s, len);
		return;
	}
	in = json_parse_buf(s, len);
	if (up->mode == UP_PASS)
		out = json_object_get(in);
	else
		out = in != NULL ? ollama_answer(up->mode, in, up->model,
		    up->req->id) : NULL;
	json_object_put(in);
	if (out == NULL || (up->base64 && up_base64(out) == -1)) {
		json_object_put(out);
		up->keepalive = 0;
		up_fail(up, 502, "bad_engine_answer", up_why(up, "the answer "
		    "is not the JSON this engine documents."));
		return;
	}
	up_done_json(up, 200, out);
}

/* A usage-only chunk ("choices":[]) the client did not ask for. */
static int
up_usage_line(const char *line, size_t n)
{
	return n > 6 && memcmp(line, "data:", 5) == 0 &&
	    (memmem(line, n, "\"choices\":[]", 12) != NULL ||
	    memmem(line, n, "\"choices\": []", 13) != NULL) &&
	    memmem(line, n, "\"usage\"", 7) != NULL;
}

/*
 * SSE lines in acc to the client, less the usage chunk proxyd asked
 * for; the audit trail still reads it.  Runs of lines are moved to the
 * client (evbuffer chains handed over, not copied); a line is looked at
 * where it lies, and pulled together only if it spans two chains.
 */
static int
up_filter_lines(struct upstream *up, int eof)
{
	struct evbuffer		*in = up->acc;
	struct evbuffer_ptr	 p;
	struct evbuffer_iovec	 v;
	const char		*line;
	size_t			 keep = 0, len, n, total;

	while ((total = evbuffer_get_length(in)) > keep) {
		if (evbuffer_ptr_set(in, &p, keep, EVBUFFER_PTR_SET) == -1)
			break;
		p = evbuffer_search(in, "\n", 1, &p);
		if (p.pos == -1 && !eof)
			break;
		len = (p.pos != -1 ? (size_t)p.pos + 1 : total) - keep;
		evbuffer_ptr_set(in, &p, keep, EVBUFFER_PTR_SET);
		if (evbuffer_peek(in, len, &p, &v, 1) < 1)
			break;
		if (v.iov_len < len) {
			http_stream_move(up->req, in, keep);
			keep = 0;
			v.iov_base = evbuffer_pullup(in, len);
		}
		line = v.iov_base;
		n = len - (line[len - 1] == '\n');
		n -= n > 0 && line[n - 1] == '\r';
		if (up_usage_line(line, n)) {
			/* In order: what came before it first. */
			http_stream_move(up->req, in, keep);
			keep = 0;
			line = (const char *)evbuffer_pullup(in, len);
			audit_feed(up->req, line, n);
			evbuffer_drain(in, len);
			up->skip_blank = 1;
		} else if (n == 0 && up->skip_blank) {
			http_stream_move(up->req, in, keep);
			keep = 0;
			evbuffer_drain(in, len);
			up->skip_blank = 0;
		} else
			keep += len;
	}
	http_stream_move(up->req, in, keep);
	return evbuffer_get_length(in) > UP_MAX_LINE ? -1 : 0;
}

/* OpenAI SSE lines in src to the client in its dialect; -1 malformed. */
static int
up_front_lines(struct upstream *up, struct evbuffer *src, int eof)
{
	struct evbuffer	*out = evbuffer_new();
	struct evbuffer_ptr p;
	const char	*line;
	size_t		 n;
	int		 rc = 0;

	if (out == NULL)
		return -1;
	while ((p = evbuffer_search(src, "\n", 1, NULL)).pos != -1 ||
	    (eof && evbuffer_get_length(src) > 0)) {
		n = p.pos != -1 ? (size_t)p.pos : evbuffer_get_length(src);
		line = n > 0 ? (const char *)evbuffer_pullup(src, n) : NULL;
		if (line != NULL && front_sse(up->front, line, n, out) == -1)
			rc = -1;
		evbuffer_drain(src, p.pos != -1 ? n + 1 : n);
		if (rc == -1)
			break;
	}
	if (rc == 0 && evbuffer_get_length(src) > UP_MAX_LINE)
		rc = -1;
	if (evbuffer_get_length(out) > 0)
		http_stream_move(up->req, out, evbuffer_get_length(out));
	evbuffer_free(out);
	return rc;
}

/* NDJSON lines in acc to SSE events for the client; -1 malformed. */
static int
up_translate_lines(struct upstream *up, int eof)
{
	struct evbuffer	*out = evbuffer_new(), *aside = NULL;
	struct evbuffer_ptr p;
	char		*line;
	size_t		 n;
	int		 rc = 0;

	if (out == NULL || (up->hide_usage && (aside = evbuffer_new()) ==
	    NULL)) {
		if (out != NULL)
			evbuffer_free(out);
		return -1;
	}
	while ((p = evbuffer_search(up->acc, "\n", 1, NULL)).pos != -1 ||
	    (eof && evbuffer_get_length(up->acc) > 0)) {
		n = p.pos != -1 ? (size_t)p.pos : evbuffer_get_length(up->acc);
		line = (char *)evbuffer_pullup(up->acc, n);
		if (n > 0 && ollama_stream_line(up->os, line, n, out,
		    aside) == -1)
			rc = -1;
		evbuffer_drain(up->acc, p.pos != -1 ? n + 1 : n);
		if (rc == -1)
			break;
	}
	if (rc == 0 && evbuffer_get_length(up->acc) > UP_MAX_LINE)
		rc = -1;
	if (aside != NULL) {
		audit_feed_buf(up->req, aside, evbuffer_get_length(aside));
		evbuffer_free(aside);
	}
	n = evbuffer_get_length(out);
	if (up->front != NULL) {
		/* OpenAI's events, said again in the client's dialect. */
		if (rc == 0 && up_front_lines(up, out, 1) == -1)
			rc = -1;
	} else if (n > 0)
		http_stream_data(up->req, evbuffer_pullup(out, -1), n);
	evbuffer_free(out);
	return rc;
}

/* ---- reading the answer -------------------------------------------------- */

/* What reached acc, translated or filtered as far as whole lines go. */
static int
up_acc_more(struct upstream *up)
{
	if (up->os != NULL && up_translate_lines(up, 0) == -1)
		return -1;
	if (up->fstream && up->os == NULL && up_front_lines(up, up->acc,
	    0) == -1)
		return -1;
	if (up->filtering && up_filter_lines(up, 0) == -1)
		return -1;
	return 0;
}

/* Payload bytes of the answer: to the client, or to acc. */
static int
up_payload(struct upstream *up, struct evbuffer *in, size_t n)
{
	if (!up->translating) {
		http_stream_move(up->req, in, n);
		return 0;
	}
	if (evbuffer_get_length(up->acc) + n > UP_MAX_ANSWER)
		return -1;
	evbuffer_remove_buffer(in, up->acc, n);
	return up_acc_more(up);
}

static int
up_payload_mem(struct upstream *up, const char *p, size_t n)
{
	if (!up->translating) {
		http_stream_data(up->req, p, n);
		return 0;
	}
	/* A copy, not a reference: p is in the engine's input buffer,
	 * drained next, and a line's start can stay in acc after it. */
	if (evbuffer_get_length(up->acc) + n > UP_MAX_ANSWER ||
	    evbuffer_add(up->acc, p, n) == -1)
		return -1;
	return up_acc_more(up);
}

static void
up_body_end(struct upstream *up)
{
	if (!up->translating) {
		up_done(up);
		return;
	}
	if (up->filtering) {
		if (up_filter_lines(up, 1) == -1)
			up_fail(up, 502, NULL, "a line of the stream is too "
			    "long.");
		else
			up_done(up);
		return;
	}
	if (up->fstream && up->os == NULL) {
		if (up_front_lines(up, up->acc, 1) == -1 ||
		    !front_done(up->front))
			up_fail(up, 502, NULL, up_why(up, "the stream ended "
			    "early."));
		else
			up_done(up);
		return;
	}
	if (up->os == NULL) {
		up_translate_whole(up);
		return;
	}
	if (up_translate_lines(up, 1) == -1 || !ollama_stream_done(up->os) ||
	    (up->front != NULL && !front_done(up->front))) {
		up_fail(up, 502, NULL, "the stream ended early.");
		return;
	}
	up_done(up);
}

static void
up_body(struct upstream *up)
{
	struct evbuffer		*in = up->in;
	struct evbuffer_iovec	 v;
	const char		*data;
	size_t			 n, used, dlen;
	int			 rc;

	while ((n = evbuffer_get_length(in)) > 0 || up->framing == B_NONE) {
		switch (up->framing) {
		case B_NONE:
			up_body_end(up);
			return;
		case B_CLOSE:
			if (up_payload(up, in, n) == -1)
				goto bad;
			break;
		case B_LENGTH:
			if ((int64_t)n > up->left)
				n = (size_t)up->left;
			if (up_payload(up, in, n) == -1)
				goto bad;
			if ((up->left -= n) == 0) {
				up_body_end(up);
				return;
			}
			break;
		case B_CHUNKED:
			if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
				return;
			rc = http_chunked_step(&up->ck, v.iov_base, v.iov_len,
			    &used, &data, &dlen);
			if (rc == -1)
				goto bad;
			if (dlen > 0 && up_payload_mem(up, data, dlen) == -1)
				goto bad;
			evbuffer_drain(in, used);
			if (rc == 1) {
				up_body_end(up);
				return;
			}
			break;
		}
		if ((!up->translating || up->os != NULL || up->filtering ||
		    up->fstream) &&
		    http_out_pending(up->req) > UP_CLIENT_HIGH) {
			/* Back-pressure: the client reads slower than the
			 * engine writes. */
			up_reading(up, 0);
			up->req->drained = up_drained;
			return;
		}
	}
	return;
bad:
	up->keepalive = 0;
	up_fail(up, 502, "bad_engine_answer", up_why(up, "malformed answer."));
}

static void
up_begin_answer(struct upstream *up, const char *ctype)
{
	int64_t	 clen = up->framing == B_LENGTH ? up->left :
	    up->framing == B_NONE ? 0 : -1;

	up->translating = up->mode != UP_PASS || (up->base64 &&
	    up->status == 200);
	if (up->req->dialect != DL_OPENAI && !up->req->native) {
		/* Another dialect: every answer is said again in it. */
		if ((up->acc = evbuffer_new()) == NULL ||
		    (up->front = front_new(up->req, up->model,
		    up->stream)) == NULL)
			return;		/* up_head: out of memory */
		up->translating = 1;
		if (!up->stream || up->status != 200)
			return;
		up->fstream = 1;
		if (up->mode != UP_PASS && (up->os = ollama_stream_new(
		    up->mode, up->model, up->req->id, 1)) == NULL) {
			front_free(up->front);
			up->front = NULL;
			return;
		}
		http_stream_begin(up->req, 200, front_ctype(up->front), -1);
		return;
	}
	/* Only a stream has lines to filter; an error passes as it is. */
	up->hide_usage = up->hide_usage && up->stream && up->status == 200;
	if (up->hide_usage && up->mode == UP_PASS) {
		if ((up->acc = evbuffer_new()) == NULL)
			return;
		up->translating = up->filtering = 1;
		http_stream_begin(up->req, 200, ctype[0] ? ctype :
		    "text/event-stream", -1);
		return;
	}
	if (!up->translating) {
		http_stream_begin(up->req, up->status, ctype[0] ? ctype :
		    "application/json", clen);
		return;
	}
	if ((up->acc = evbuffer_new()) == NULL)
		return;
	if (up->stream && up->status == 200) {
		up->os = ollama_stream_new(up->mode, up->model, up->req->id,
		    up->usage);
		http_stream_begin(up->req, 200, "text/event-stream", -1);
	}
}

/* The head of the answer; 1 once read. */
static int
up_head(struct upstream *up)
{
	struct evbuffer		*in = up->in;
	struct evbuffer_ptr	 p;
	struct http_head	 h;
	const char		*buf, *ct;
	char			 ctype[128] = "";
	size_t			 ctlen;
	int			 rc;

	for (;;) {
		p = evbuffer_search(in, "\r\n\r\n", 4, NULL);
		if (p.pos == -1) {
			if (evbuffer_get_length(in) > UP_MAX_HEAD)
				goto bad;
			return 0;
		}
		buf = (const char *)evbuffer_pullup(in, p.pos + 4);
		if ((rc = http_parse_head(buf, p.pos + 4, 1, &h)) <= 0)
			goto bad;
		if (h.status >= 200)
			break;
		evbuffer_drain(in, rc);		/* 100 Continue and such */
	}
	up->status = h.status;
	up->keepalive = !h.close;
	if (up_status_failed(h.status) && h.status != 504 && up->pool) {
		char	 why[40];

		snprintf(why, sizeof(why), "it answered %d", h.status);
		if (up_retry(up, why))
			return -1;
	}
	if (h.status == 401) {
		/* The engine's refusal is of proxyd's credential, not of
		 * the client's key: the client must not think it is its. */
		up->keepalive = 0;
		up_fail(up, 502, "engine_auth_failed", creds_get(
		    up->engine.id) != NULL ? "it refused FLM's credential; "
		    "set the right one with flm engines credential set." :
		    "it wants a credential; set one with flm engines "
		    "credential set.");
		return -1;
	}
	if ((ct = http_header(&h, "content-type", &ctlen)) != NULL &&
	    ctlen < sizeof(ctype)) {
		memcpy(ctype, ct, ctlen);
		ctype[ctlen] = '\0';
	}
	if (h.status == 204 || h.status == 304)
		up->framing = B_NONE;
	else if (h.chunked)
		up->framing = B_CHUNKED;
	else if (h.clen >= 0) {
		up->framing = h.clen == 0 ? B_NONE : B_LENGTH;
		up->left = h.clen;
	} else {
		up->framing = B_CLOSE;
		up->keepalive = 0;
	}
	evbuffer_drain(in, rc);
	/* An answer before the whole request went: what the engine would
	 * make of the rest is unknown, so the connection is not kept. */
	if (up->sentoff < up->sentlen)
		up->keepalive = 0;
	up_sent_free(up);
	up->state = U_BODY;
	up_begin_answer(up, ctype);
	if ((up->translating && up->acc == NULL) || (up->acc != NULL &&
	    up->req->dialect != DL_OPENAI && !up->req->native &&
	    up->front == NULL)) {
		up_fail(up, 503, NULL, "out of memory.");
		return -1;
	}
	return 1;
bad:
	up_fail(up, 502, "bad_engine_answer", "malformed answer head.");
	return -1;
}

/* What the engine sent so far, as far as the state goes. */
static void
up_dispatch(struct upstream *up)
{
	switch (up->state) {
	case U_IDLE:
		up_free(up);	/* an idle engine does not talk */
		return;
	case U_HEAD:
		if (up_head(up) != 1)
			return;
		/* FALLTHROUGH */
	case U_BODY:
		up_body(up);
		break;
	default:
		break;
	}
}

/*
 * The TLS reading of up_fill: all OpenSSL holds (it reads ahead, so
 * the socket may have nothing left to wake us for what it buffered).
 */
static int
up_fill_tls(struct upstream *up)
{
	struct evbuffer_iovec	 v;
	size_t			 n;
	int			 rc;

	do {
		if (evbuffer_reserve_space(up->in, UP_READ_MIN, &v, 1) < 1)
			return 0;
		ERR_clear_error();
		rc = SSL_read_ex(up->ssl, v.iov_base, v.iov_len, &n);
		v.iov_len = rc == 1 ? n : 0;
		evbuffer_commit_space(up->in, &v, 1);
		if (rc != 1) {
			switch (SSL_get_error(up->ssl, rc)) {
			case SSL_ERROR_WANT_READ:
			case SSL_ERROR_WANT_WRITE:
				return 0;
			case SSL_ERROR_ZERO_RETURN:
				errno = 0;
				return -1;
			default:
				/* A cut without close_notify: as a close, so
				 * an answer framed by the close still ends. */
				errno = 0;
				return -1;
			}
		}
	} while (SSL_has_pending(up->ssl));
	return 0;
}

/*
 * Read straight into the answer's buffer: a bufferevent asks FIONREAD
 * first and then reads 4 KB, three system calls per 4 KB of a long
 * answer.  The size grows while reads fill it (a long answer) and falls
 * back when they do not (a stream's small events keep small buffers).
 * -1: the connection ended (errno 0) or failed.
 */
static int
up_fill(struct upstream *up)
{
	struct evbuffer_iovec	 v[2];
	struct iovec		 iov[2];
	ssize_t			 n, left;
	size_t			 room = 0;
	int			 i, nv;

	if (up->rsize < UP_READ_MIN)
		up->rsize = UP_READ_MIN;
	if (up->ssl != NULL)
		return up_fill_tls(up);
	if ((nv = evbuffer_reserve_space(up->in, up->rsize, v, 2)) < 1)
		return 0;
	for (i = 0; i < nv; i++) {
		iov[i].iov_base = v[i].iov_base;
		iov[i].iov_len = v[i].iov_len;
		room += v[i].iov_len;
	}
	n = readv(up->fd, iov, nv);
	if (n <= 0) {
		evbuffer_commit_space(up->in, v, 0);
		if (n == -1 && (errno == EAGAIN || errno == EINTR))
			return 0;	/* woken for what we hold */
		if (n == 0)
			errno = 0;
		return -1;
	}
	for (i = 0, left = n; i < nv; i++) {
		if ((size_t)left < v[i].iov_len)
			v[i].iov_len = (size_t)left;
		left -= (ssize_t)v[i].iov_len;
	}
	evbuffer_commit_space(up->in, v, nv);
	if ((size_t)n == room && up->rsize < UP_READ_MAX)
		up->rsize *= 2;
	else if ((size_t)n < up->rsize / 4)
		up->rsize = UP_READ_MIN;
	return 0;
}

static void
up_readable(evutil_socket_t fd, short ev, void *arg)
{
	struct upstream	*up = arg;
	char		 msg[80];

	(void)fd;
	if (up->state == U_IDLE) {
		/* It talks, it closed, or it was not used for long: gone. */
		up_free(up);
		return;
	}
	if (up->state == U_TLS && !(ev & EV_TIMEOUT)) {
		up_tls_step(up);
		return;
	}
	if (up->state == U_SOCKS && !(ev & EV_TIMEOUT)) {
		up_socks_read(up);
		return;
	}
	if (ev & EV_TIMEOUT) {
		if (up->state == U_TLS)
			snprintf(msg, sizeof(msg), "no TLS handshake within "
			    "%d s.", UP_CONNECT_SECS);
		else if (up->state == U_SOCKS)
			snprintf(msg, sizeof(msg), "no SOCKS5 answer within "
			    "%d s.", UP_CONNECT_SECS);
		else
			snprintf(msg, sizeof(msg), "no answer within %d s.",
			    px->limits.upstream_timeout);
		up->keepalive = 0;
		up_call_end(up, 0);
		up_fail(up, 504, "engine_timeout", msg);
		return;
	}
	if (up_fill(up) == -1) {
		up_lost(up, errno == 0 ? NULL : strerror(errno));
		return;
	}
	up_dispatch(up);
}

/* Send what is left of the request; -1 if the socket failed. */
static int
up_push(struct upstream *up)
{
	ssize_t	 n;

	while (up->sentoff < up->sentlen) {
		if (up->ssl != NULL) {
			size_t	 w;

			ERR_clear_error();
			if (SSL_write_ex(up->ssl, up->sent + up->sentoff,
			    up->sentlen - up->sentoff, &w) == 1) {
				up->sentoff += w;
				continue;
			}
			n = SSL_get_error(up->ssl, 0);
			if (n == SSL_ERROR_WANT_WRITE || n == SSL_ERROR_WANT_READ)
				break;
			errno = EPIPE;
			return -1;
		}
		n = write(up->fd, up->sent + up->sentoff,
		    up->sentlen - up->sentoff);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && errno == EAGAIN)
			break;
		if (n <= 0)
			return -1;
		up->sentoff += (size_t)n;
	}
	return 0;
}

/*
 * The request goes now as far as the kernel takes it (most go whole);
 * the write event only for what is left.  The answer is read from the
 * start: an engine may answer (an error) before it has read everything.
 */
static void
up_send(struct upstream *up)
{
	struct timeval	 tv = { px->limits.upstream_timeout, 0 };

	up->sentoff = 0;
	up->state = U_HEAD;
	up_reading(up, 1);
	if (up_push(up) == -1) {
		up_lost(up, strerror(errno));
		return;
	}
	if (up->sentoff < up->sentlen)
		event_add(up->wev, &tv);
}

/*
 * A new connection: is the engine's listener still the recorded
 * owner's?  Checked before the prompt goes, not on kept-alive
 * connections (their owner cannot change).
 */
static int
up_owner_changed(struct upstream *up)
{
	char	 why[300];
	int64_t	 uid;

	if (up->engine.owner < 0)	/* none recorded: nothing to compare */
		return 0;
	if (owner_check(&up->engine, &uid, why, sizeof(why)) == 0)
		return 0;
	log_warnx("engine %s: %s: refused", up->engine.id, why);
	up->keepalive = 0;
	up_fail(up, 502, "engine_owner_changed", why);
	return 1;
}

/* The handshake with an https engine, as far as it goes now. */
static void
up_tls_step(struct upstream *up)
{
	struct timeval	 tv = { UP_CONNECT_SECS, 0 };
	char		 why[400], msg[800];
	int		 rc;

	ERR_clear_error();
	if ((rc = SSL_connect(up->ssl)) == 1) {
		event_del(up->rev);
		event_del(up->wev);
		if (uptls_check(up->ssl, &up->engine, why, sizeof(why)) == 0) {
			up_send(up);
			return;
		}
	} else {
		switch (SSL_get_error(up->ssl, rc)) {
		case SSL_ERROR_WANT_READ:
			event_add(up->rev, &tv);
			return;
		case SSL_ERROR_WANT_WRITE:
			event_add(up->wev, &tv);
			return;
		}
		uprefused(up->ssl, why, sizeof(why));
	}
	log_warnx("engine %s at %s port %d: %s", up->engine.id,
	    up->engine.addr, up->engine.port, why);
	snprintf(msg, sizeof(msg), "TLS to %s port %d refused: %s.",
	    up->engine.host, up->engine.port, why);
	up->keepalive = 0;
	up_fail(up, 502, "engine_tls_failed", msg);
}

/* Bytes of the SOCKS5 exchange to the server; -1 if they did not go. */
static int
up_socks_write(struct upstream *up, const uint8_t *p, size_t n)
{
	ssize_t	 w;

	/* A few hundred bytes on a new connection: the kernel takes them
	 * whole, or the server is not one to talk to. */
	do {
		w = write(up->fd, p, n);
	} while (w == -1 && errno == EINTR);
	return w == (ssize_t)n ? 0 : -1;
}

static void
up_socks_fail(struct upstream *up, const char *why)
{
	char	 name[128], msg[600];

	snprintf(msg, sizeof(msg), "%s: %s.", socks_name(&up->engine.socks,
	    name, sizeof(name)), why);
	log_warnx("engine %s: %s", up->engine.id, msg);
	up->keepalive = 0;
	up_fail(up, 502, "egress_failed", msg);
}

static void
up_socks_start(struct upstream *up)
{
	struct timeval	 tv = { UP_CONNECT_SECS, 0 };
	uint8_t		 out[8];
	size_t		 n;

	if ((up->sio = malloc(sizeof(*up->sio))) == NULL) {
		up_fail(up, 503, NULL, "out of memory.");
		return;
	}
	n = socks_hello(up->sio, &up->engine.socks, out);
	if (up_socks_write(up, out, n) == -1) {
		up_socks_fail(up, "the greeting was not taken");
		return;
	}
	up->state = U_SOCKS;
	event_add(up->rev, &tv);
}

/* The SOCKS5 server's answers, as far as they came. */
static void
up_socks_read(struct upstream *up)
{
	struct socks_io	*io = up->sio;
	uint8_t		 out[SOCKS_MAX_OUT];
	char		 why[400];
	size_t		 outlen = 0;
	ssize_t		 n;
	int		 rc;

	for (;;) {
		n = read(up->fd, io->in + io->have, io->need - io->have);
		if (n == -1 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n <= 0) {
			up_socks_fail(up, n == 0 ? "it closed the connection" :
			    strerror(errno));
			return;
		}
		if ((io->have += (size_t)n) < io->need)
			continue;
		rc = socks_step(io, &up->engine.socks, creds_get(SOCKS_SECRET),
		    up->engine.host, up->engine.port, out, &outlen, why,
		    sizeof(why));
		if (rc == SOCKS_SEND && up_socks_write(up, out, outlen) == -1) {
			rc = SOCKS_FAIL;
			snprintf(why, sizeof(why), "a request was not taken");
		}
		explicit_bzero(out, sizeof(out));	/* the password */
		if (rc == SOCKS_FAIL) {
			up_socks_fail(up, why);
			return;
		}
		if (rc == SOCKS_DONE) {
			free(up->sio);
			up->sio = NULL;
			event_del(up->rev);
			up_tunnel_ready(up);
			return;
		}
	}
}

/* Connected (or not): the owner check, TLS, then the request. */
static void
up_connected(struct upstream *up)
{
	int		 err = 0;
	socklen_t	 len = sizeof(err);

	if (getsockopt(up->fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1)
		err = errno;
	if (err != 0) {
		up_lost(up, strerror(err));
		return;
	}
	if (up_owner_changed(up))
		return;
	if (up->engine.socks.on && !up->direct) {
		up_socks_start(up);
		return;
	}
	up_tunnel_ready(up);
}

/* Connected to the engine itself (directly or through SOCKS): TLS if
 * it is https, then the request. */
static void
up_tunnel_ready(struct upstream *up)
{
	const struct proxyd_engine *live;

	if (!up->engine.tls) {
		up_send(up);
		return;
	}
	/* The list's own entry: a reload may have freed our copy's. */
	if ((live = up_live(&up->engine)) == NULL ||
	    (up->ssl = uptls_new(live, up->fd)) == NULL) {
		up->keepalive = 0;
		up_fail(up, 502, "engine_tls_failed", "cannot set up TLS.");
		return;
	}
	up->state = U_TLS;
	up_tls_step(up);
}

static void
up_writable(evutil_socket_t fd, short ev, void *arg)
{
	struct upstream	*up = arg;
	struct timeval	 tv = { px->limits.upstream_timeout, 0 };
	char		 msg[200];

	(void)fd;
	if (ev & EV_TIMEOUT) {
		snprintf(msg, sizeof(msg), "%s within %d s.", up->state ==
		    U_CONNECTING ? "no connection" : up->state == U_TLS ?
		    "no TLS handshake" : "the request was not taken",
		    up->state <= U_TLS ? UP_CONNECT_SECS :
		    px->limits.upstream_timeout);
		up->keepalive = 0;
		up_call_end(up, 0);
		up_fail(up, 504, "engine_timeout", msg);
		return;
	}
	if (up->state == U_CONNECTING) {
		up_connected(up);
		return;
	}
	if (up->state == U_TLS) {
		up_tls_step(up);
		return;
	}
	if (up_push(up) == -1) {
		up_lost(up, strerror(errno));
		return;
	}
	if (up->sentoff < up->sentlen)
		event_add(up->wev, &tv);
}

/*
 * The SOCKS5 server does not answer: fail closed, unless
 * egress.fail_open lets this request go direct (to the address flmd
 * resolved then; the connection is not kept).
 */
static void
up_egress_down(struct upstream *up, const char *why)
{
	char	 name[128], msg[400];

	socks_name(&up->engine.socks, name, sizeof(name));
	if (up->engine.socks.fail_open && up->engine.addr[0] != '\0') {
		log_warnx("engine %s: %s unreachable (%s): going direct "
		    "(egress.fail_open)", up->engine.id, name, why ? why :
		    "closed");
		up_close(up);
		up->direct = 1;
		if (up_connect(up) == 0)
			return;
		why = strerror(errno);
		snprintf(msg, sizeof(msg), "unreachable at %s port %d: %s.",
		    up->engine.addr, up->engine.port, why);
		up_fail(up, 502, "engine_unreachable", msg);
		return;
	}
	snprintf(msg, sizeof(msg), "%s unreachable: %s; nothing goes direct "
	    "(egress.fail_open is no).", name, why ? why : "closed");
	log_warnx("engine %s: %s", up->engine.id, msg);
	up_fail(up, 502, "egress_unreachable", msg);
}

/*
 * The connection ended or failed before the answer did.  A kept-alive
 * connection the engine had closed is tried once, afresh; an answer cut
 * by the end of the connection (no length) ends there.
 */
static void
up_lost(struct upstream *up, const char *why)
{
	char	 msg[200];

	if (why == NULL && up->state == U_BODY && up->framing == B_CLOSE) {
		up->framing = B_NONE;
		up_reading(up, 0);
		up_body(up);
		return;
	}
	if (up->reused && up->state == U_HEAD &&
	    evbuffer_get_length(up->in) == 0) {
		up_close(up);
		up->reused = 0;
		if (up_connect(up) == 0)
			return;
		why = strerror(errno);
	}
	up->keepalive = 0;
	up_call_end(up, 0);
	if (up->state == U_CONNECTING && up->engine.socks.on && !up->direct) {
		up_egress_down(up, why);
		return;
	}
	/* Nothing of an answer yet: a pool's request goes elsewhere. */
	if (up->state <= U_HEAD && evbuffer_get_length(up->in) == 0 &&
	    up_retry(up, up->state == U_CONNECTING ? "unreachable" :
	    "the connection ended"))
		return;
	if (up->state == U_CONNECTING) {
		snprintf(msg, sizeof(msg), "unreachable at %s port %d: %s.",
		    up->engine.addr, up->engine.port, why ? why : "closed");
		up_fail(up, 502, "engine_unreachable", msg);
		return;
	}
	up_fail(up, 502, "engine_unreachable", "the connection ended before "
	    "the answer did.");
}

/*
 * The fixed forward hosts: an engine address flmd configured, nothing
 * else, even if a request were ever steered elsewhere (or the engine
 * was removed while the request waited).
 */
static int
up_forward_allowed(const struct proxyd_engine *e)
{
	int	 i;

	for (i = 0; i < px->nengines; i++)
		if (px->engines[i].port == e->port &&
		    strcmp(px->engines[i].addr, e->addr) == 0)
			return 1;
	log_warnx("refused to connect to %s port %d: not a configured "
	    "engine", e->addr, e->port);
	return 0;
}

/* The list's entry for this engine (same id and address), or NULL. */
static const struct proxyd_engine *
up_live(const struct proxyd_engine *e)
{
	int	 i;

	for (i = 0; i < px->nengines; i++)
		if (px->engines[i].port == e->port &&
		    strcmp(px->engines[i].addr, e->addr) == 0 &&
		    strcmp(px->engines[i].id, e->id) == 0)
			return &px->engines[i];
	return NULL;
}

/* A new connection; -1 (errno set) if it cannot even be tried. */
static int
up_connect(struct upstream *up)
{
	struct sockaddr_storage	 ss;
	struct timeval		 tv = { UP_CONNECT_SECS, 0 };
	socklen_t		 len;
	int			 fd, on = 1;

	up->state = U_CONNECTING;
	up->gen = up_gen;
	if (up->engine.refused[0] != '\0') {
		errno = EPROTO;
		return -1;
	}
	if (!up_forward_allowed(&up->engine) || (up->engine.socks.on &&
	    !up->direct ? netaddr_parse(up->engine.socks.addr,
	    up->engine.socks.port, &ss, &len) : netaddr_parse(up->engine.addr,
	    up->engine.port, &ss, &len)) == -1) {
		errno = EACCES;
		return -1;
	}
	if ((fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0)) == -1)
		return -1;
	up->fd = fd;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
	if ((up->rev = event_new(px->c.base, fd, EV_READ | EV_PERSIST,
	    up_readable, up)) == NULL || (up->wev = event_new(px->c.base, fd,
	    EV_WRITE, up_writable, up)) == NULL) {
		errno = ENOMEM;
		return -1;
	}
	if (connect(fd, (struct sockaddr *)&ss, len) == -1 &&
	    errno != EINPROGRESS)
		return -1;
	/* Connected or not, the write event says (loopback often at once;
	 * from the loop all the same, so the caller's state is set). */
	event_add(up->wev, &tv);
	return 0;
}

/* A kept-alive connection to this engine, or none. */
static struct upstream *
up_take_idle(const struct proxyd_engine *e)
{
	struct upstream	*up;

	TAILQ_FOREACH(up, &up_idle, entry)
		if (up->engine.port == e->port &&
		    strcmp(up->engine.addr, e->addr) == 0 &&
		    strcmp(up->engine.id, e->id) == 0) {
			TAILQ_REMOVE(&up_idle, up, entry);
			up_nidle--;
			return up;
		}
	return NULL;
}

static void
up_put(char *buf, size_t *n, const char *s)
{
	size_t	 len = strlen(s);

	memcpy(buf + *n, s, len);
	*n += len;
}

static void
up_putu(char *buf, size_t *n, size_t v)
{
	char	 d[24];
	int	 i = sizeof(d) - 1;

	d[i] = '\0';
	do {
		d[--i] = '0' + v % 10;
		v /= 10;
	} while (v > 0);
	up_put(buf, n, d + i);
}

/* The request head, then the body, in one buffer (no printf: it is on
 * every call).  *wipe: the head's length if it holds a credential. */
static char *
up_request(const struct upstream_call *call, size_t *len, size_t *wipe)
{
	const struct proxyd_engine *e = call->engine;
	const char	*accept = call->stream ? "text/event-stream, "
	    "application/x-ndjson, application/json" : "application/json";
	const char	*cred = creds_get(e->id);
	char		*s;
	size_t		 n = 0;
	int		 i, v6 = strchr(e->host, ':') != NULL;

	if ((s = malloc(240 + strlen(call->path) + strlen(e->host) +
	    strlen(accept) + (cred ? strlen(cred) : 0) + call->len)) == NULL)
		return NULL;
	/* The path is ours, never the client's: no spelling of an admin
	 * route can come through. */
	up_put(s, &n, "POST ");
	up_put(s, &n, call->path);
	up_put(s, &n, " HTTP/1.1\r\nHost: ");
	up_put(s, &n, v6 ? "[" : "");
	up_put(s, &n, e->host);
	up_put(s, &n, v6 ? "]:" : ":");
	up_putu(s, &n, (size_t)e->port);
	up_put(s, &n, "\r\nContent-Type: application/json\r\nAccept: ");
	up_put(s, &n, accept);
	up_put(s, &n, "\r\nContent-Length: ");
	up_putu(s, &n, call->len);
	if (cred != NULL) {
		up_put(s, &n, "\r\nAuthorization: Bearer ");
		up_put(s, &n, cred);
	}
	up_put(s, &n, "\r\n\r\n");
	*wipe = cred != NULL ? n : 0;
	/* The client's bytes and ours, joined once here. */
	for (i = 0; i < call->niov; i++) {
		memcpy(s + n, call->iov[i].iov_base, call->iov[i].iov_len);
		n += call->iov[i].iov_len;
	}
	*len = n;
	return s;
}

void
upstream_start(struct http_req *req, const struct upstream_call *call)
{
	struct upstream	*up;
	char		*sent;
	size_t		 len, wipe;

	if (call->engine->refused[0] != '\0') {
		/* flmd could not say how to verify it: never reached
		 * unverified. */
		http_error(req, 502, "server_error", "engine_tls_failed",
		    call->engine->refused);
		return;
	}
	if ((sent = up_request(call, &len, &wipe)) == NULL) {
		http_error(req, 503, "server_error", NULL, "Out of memory.");
		return;
	}
	if ((up = up_take_idle(call->engine)) != NULL)
		up->reused = 1;
	else if ((up = calloc(1, sizeof(*up))) == NULL ||
	    (up->in = evbuffer_new()) == NULL) {
		free(up);
		explicit_bzero(sent, wipe);
		free(sent);
		http_error(req, 503, "server_error", NULL, "Out of memory.");
		return;
	} else {
		up->fd = -1;
		up->engine = *call->engine;
	}
	up->req = req;
	up->sent = sent;
	up->sentlen = len;
	up->wipelen = wipe;
	up->mode = call->mode;
	up->stream = call->stream;
	up->usage = call->usage;
	up->hide_usage = call->hide_usage;
	up->filtering = up->skip_blank = 0;
	up->direct = 0;
	up->pool = call->pool;
	up->status = 0;
	pool_begin(up->engine.id);
	up->in_call = 1;
	up->base64 = call->base64;
	up->translating = 0;
	memset(&up->ck, 0, sizeof(up->ck));
	if ((up->model = strdup(call->model)) == NULL) {
		up->req = NULL;
		up_free(up);
		http_error(req, 503, "server_error", NULL, "Out of memory.");
		return;
	}
	http_hold(req, up_abort, up);
	if (up->reused) {
		up_send(up);
		return;
	}
	if (up_connect(up) == -1)
		up_lost(up, strerror(errno));
}

/* A new engine list: no connection outlives the old one's rules. */
void
upstream_cleanup(void)
{
	up_gen++;
	while (!TAILQ_EMPTY(&up_idle))
		up_free(TAILQ_FIRST(&up_idle));
}
