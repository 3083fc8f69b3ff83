/*
 * flm-mock-engine: a small HTTP server that imitates the APIs of Ollama,
 * LM Studio, vLLM and llama.cpp's llama-server, for FLM's tests,
 * benchmarks and quick start.  One process serves one flavour.
 *
 * It must stay cheap so that a benchmark measures the proxy: fixed
 * bodies are built once at startup and sent by reference, generated
 * bodies are written by hand into one reused buffer, and only streams
 * and delayed answers allocate per request state.
 */

#define _DEFAULT_SOURCE		/* strsep, strndup, gmtime_r with -std=c99 */

#include <sys/types.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <netinet/in.h>

#include <err.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <json-c/json.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#define MOCK_MAX_BODY		(16 * 1024 * 1024)
#define MOCK_MAX_HEADERS	(64 * 1024)
#define MOCK_MAX_MODELS		64
#define MOCK_MAX_PATHS		128
#define MOCK_MAX_PATHLEN	256
#define MOCK_MAX_CHUNKS		100000
#define MOCK_MAX_MS		3600000
#define MOCK_ECHO_CHARS		32
#define MOCK_EMBED_DIM		8
#define MOCK_TOOL_TOKENS	5	/* completion tokens of a tool call */
/* Seconds; a stall must outlive any proxy timeout. */
#define MOCK_TIMEOUT		3600
#define MOCK_STALL_POLL_MS	250
#define MOCK_N_CTX		4096

#define CT_JSON		"application/json"
#define CT_NDJSON	"application/x-ndjson"
#define CT_SSE		"text/event-stream"
#define CT_TEXT		"text/plain; charset=utf-8"

#define M_GET		(EVHTTP_REQ_GET | EVHTTP_REQ_HEAD)
#define M_POST		EVHTTP_REQ_POST

#define OUT_LIT(s)	evbuffer_add(mock.out, (s), sizeof(s) - 1)

enum flavor {
	FL_OLLAMA = 1,
	FL_LMSTUDIO = 2,
	FL_VLLM = 4,
	FL_LLAMACPP = 8
};
#define FL_ALL	(FL_OLLAMA | FL_LMSTUDIO | FL_VLLM | FL_LLAMACPP)

enum failmode {
	FAIL_NONE,
	FAIL_REFUSE,
	FAIL_500,
	FAIL_MALFORMED,
	FAIL_STALL,
	FAIL_LOADING,
	FAIL_MIDSTREAM
};
static const char *const fail_names[] = {
	"none", "refuse", "500", "malformed", "stall", "loading", "midstream"
};

/* Error body shape: OpenAI {"error":{...}} or Ollama native {"error":"..."}. */
enum style {
	ST_OPENAI,
	ST_OLLAMA
};

/* What a generating route produces. */
enum gen {
	GEN_NONE,
	GEN_CHAT,	/* /v1/chat/completions */
	GEN_TEXT,	/* /v1/completions */
	GEN_OLLAMA,	/* /api/chat */
	GEN_GENERATE	/* /api/generate */
};

enum bodyid {
	B_NONE,
	B_OLLAMA_ROOT,
	B_OLLAMA_VERSION,
	B_OLLAMA_TAGS,
	B_OLLAMA_PS,
	B_MODELS,
	B_HEALTH,
	B_VERSION,
	B_PROPS,
	B_SLOTS,
	B_LMS_MODELS,
	B_NOTFOUND,
	B_MALFORMED,
	B_500_OPENAI,
	B_500_OLLAMA,
	B_503_OPENAI,
	B_503_OLLAMA,
	B_401,
	B_COUNT
};

struct body {
	char		*data;
	size_t		 len;
	const char	*ctype;
};

struct route;
typedef void	 route_fn(struct evhttp_request *, const struct route *);

struct route {
	const char	*path;
	int		 flavors;
	int		 methods;
	enum style	 style;
	int		 v1;		/* hidden by --no-v1 */
	route_fn	*fn;
	enum bodyid	 body;
	enum gen	 gen;
};

/* An answer that is not sent at once: delayed, stalled or streamed. */
enum rkind {
	R_PLAIN,
	R_STALL,
	R_SSE_CHAT,
	R_SSE_TEXT,
	R_NDJSON,
	R_NDJSON_GEN,	/* /api/generate: "response", not "message" */
	R_BAD_SSE,
	R_BAD_NDJSON
};

struct reply {
	TAILQ_ENTRY(reply)	 entry;
	struct evhttp_request	*req;
	struct event		*ev;
	enum rkind		 kind;
	int			 gone;		/* the client left */
	int			 started;	/* stream headers sent */
	int			 code;		/* R_PLAIN */
	struct evbuffer		*body;		/* R_PLAIN */
	char			*text;		/* streams: the whole answer */
	size_t			 textlen;
	char			*tool;		/* a tool call: the name, */
	size_t			 toollen;	/* and text its arguments */
	size_t			 pos;		/* start of the next chunk */
	unsigned		 words;
	unsigned		 wordpos;	/* words before pos */
	unsigned		 chunk;
	unsigned		 nchunks;
	unsigned		 prompt_tokens;
	int			 model;
	int			 usage;		/* include_usage */
	unsigned long long	 id;
	long long		 created;
};

/* The parsed parts of a generation request. */
struct genreq {
	int		 model;
	int		 stream;
	int		 usage;
	unsigned	 prompt_tokens;
	int		 user_last;	/* the last message is the user's */
	const char	*tool;		/* a tool to call: the request's */
	size_t		 toollen;
	char		 said[MOCK_ECHO_CHARS * 4 + 1];
	size_t		 saidlen;
};

struct pathstat {
	char		*path;
	uint64_t	 n;
};

struct stats {
	uint64_t	 requests;
	uint64_t	 started;
	uint64_t	 completed;
	uint64_t	 aborted;
	int64_t		 abort_ms;	/* wall clock of the last abort */
	uint64_t	 other;		/* paths past MOCK_MAX_PATHS */
	uint64_t	 unauthorized;	/* --api-key: refused for its lack */
	uint64_t	 tls;		/* requests that came over TLS */
	uint64_t	 tls_conns;	/* TLS connections accepted */
	size_t		 npaths;
	struct pathstat	 paths[MOCK_MAX_PATHS];
};

static struct {
	enum flavor		 flavor;
	const char		*flavor_name;
	char			*models_arg;
	const char		*models[MOCK_MAX_MODELS];
	char			*models_json[MOCK_MAX_MODELS];
	int			 nmodels;
	long			 latency_ms;
	long			 idle_ms;	/* --idle-ms: 0 none */
	long			 chunks;
	long			 chunk_delay_ms;
	long			 sse_pad;	/* comment bytes per SSE chunk */
	int			 sse_fields;	/* id: and retry: lines too */
	long			 tool_calls;	/* calls in a whole answer */
	struct timeval		 latency_tv;
	struct timeval		 chunk_tv;
	enum failmode		 fail;
	int			 no_v1;
	const char		*listen;
	const char		*port_file;
	const char		*stats_file;
	const char		*body_file;	/* each request body, as sent */
	const char		*api_key;	/* --api-key: Bearer asked for */
	const char		*tls_cert;	/* --tls-cert, --tls-key */
	const char		*tls_key;
	SSL_CTX			*tls;
	char			 greeting[64];
	size_t			 greetlen;
	time_t			 started_at;
	unsigned long long	 seq;
	struct event_base	*base;
	struct evhttp		*http;
	struct evbuffer		*out;		/* reused for every body */
	json_tokener		*tok;
	struct body		 bodies[B_COUNT];
	TAILQ_HEAD(, reply)	 replies;
	struct stats		 st;
} mock;

static void	 mock_static(struct evhttp_request *, const struct route *);
static void	 mock_generate(struct evhttp_request *, const struct route *);
static void	 mock_embed(struct evhttp_request *, const struct route *);
static void	 mock_tokenize(struct evhttp_request *, const struct route *);
static void	 mock_embed_prompt(struct evhttp_request *,
		    const struct route *);
static void	 mock_show(struct evhttp_request *, const struct route *);

static const struct route routes[] = {
	{ "/", FL_OLLAMA, M_GET, ST_OLLAMA, 0,
	    mock_static, B_OLLAMA_ROOT, GEN_NONE },
	{ "/api/version", FL_OLLAMA, M_GET, ST_OLLAMA, 0,
	    mock_static, B_OLLAMA_VERSION, GEN_NONE },
	{ "/api/tags", FL_OLLAMA, M_GET, ST_OLLAMA, 0,
	    mock_static, B_OLLAMA_TAGS, GEN_NONE },
	{ "/api/chat", FL_OLLAMA, M_POST, ST_OLLAMA, 0,
	    mock_generate, B_NONE, GEN_OLLAMA },
	{ "/api/embed", FL_OLLAMA, M_POST, ST_OLLAMA, 0,
	    mock_embed, B_NONE, GEN_NONE },
	{ "/api/generate", FL_OLLAMA, M_POST, ST_OLLAMA, 0,
	    mock_generate, B_NONE, GEN_GENERATE },
	{ "/api/embeddings", FL_OLLAMA, M_POST, ST_OLLAMA, 0,
	    mock_embed_prompt, B_NONE, GEN_NONE },
	{ "/api/show", FL_OLLAMA, M_POST, ST_OLLAMA, 0,
	    mock_show, B_NONE, GEN_NONE },
	{ "/api/ps", FL_OLLAMA, M_GET, ST_OLLAMA, 0,
	    mock_static, B_OLLAMA_PS, GEN_NONE },
	{ "/v1/models", FL_ALL, M_GET, ST_OPENAI, 1,
	    mock_static, B_MODELS, GEN_NONE },
	{ "/v1/chat/completions", FL_ALL, M_POST, ST_OPENAI, 1,
	    mock_generate, B_NONE, GEN_CHAT },
	{ "/v1/completions", FL_ALL, M_POST, ST_OPENAI, 1,
	    mock_generate, B_NONE, GEN_TEXT },
	{ "/v1/embeddings", FL_ALL, M_POST, ST_OPENAI, 1,
	    mock_embed, B_NONE, GEN_NONE },
	{ "/health", FL_VLLM | FL_LLAMACPP, M_GET, ST_OPENAI, 0,
	    mock_static, B_HEALTH, GEN_NONE },
	{ "/version", FL_VLLM, M_GET, ST_OPENAI, 0,
	    mock_static, B_VERSION, GEN_NONE },
	{ "/props", FL_LLAMACPP, M_GET, ST_OPENAI, 0,
	    mock_static, B_PROPS, GEN_NONE },
	{ "/tokenize", FL_VLLM | FL_LLAMACPP, M_POST, ST_OPENAI, 0,
	    mock_tokenize, B_NONE, GEN_NONE },
	{ "/slots", FL_LLAMACPP, M_GET, ST_OPENAI, 0,
	    mock_static, B_SLOTS, GEN_NONE },
	{ "/api/v0/models", FL_LMSTUDIO, M_GET, ST_OPENAI, 0,
	    mock_static, B_LMS_MODELS, GEN_NONE },
};

static const char *const filler[] = {
	"lorem", "ipsum", "dolor", "sit", "amet"
};

/* ---- small helpers ----------------------------------------------- */

static void
out_reset(void)
{
	evbuffer_drain(mock.out, evbuffer_get_length(mock.out));
}

static int
is_space(unsigned char c)
{
	return c == ' ' || (c >= '\t' && c <= '\r');
}

/* Token counts are whitespace separated words. */
static unsigned
word_count(const char *s, size_t len)
{
	unsigned	 n = 0;
	size_t		 i;
	int		 in = 0;

	for (i = 0; i < len; i++) {
		if (is_space((unsigned char)s[i]))
			in = 0;
		else if (!in) {
			in = 1;
			n++;
		}
	}
	return n;
}

/* Offset of word number target, given that w words start before i. */
static size_t
word_start(const char *s, size_t len, size_t i, unsigned w, unsigned target)
{
	for (; i < len; i++) {
		if (is_space((unsigned char)s[i]))
			continue;
		if (i > 0 && !is_space((unsigned char)s[i - 1]))
			continue;
		if (w == target)
			return i;
		w++;
	}
	return len;
}

/* Length of the valid UTF-8 sequence at s, 0 if it is not one. */
static size_t
utf8_len(const unsigned char *s, size_t len)
{
	uint32_t	 cp;
	size_t		 i, n;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		n = 2;
		cp = s[0] & 0x1f;
	} else if ((s[0] & 0xf0) == 0xe0) {
		n = 3;
		cp = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		n = 4;
		cp = s[0] & 0x07;
	} else
		return 0;
	if (n > len)
		return 0;
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	/* Overlong forms, surrogates and values past U+10FFFF. */
	if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 ||
	    cp > 0x10ffff)) || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

/*
 * Keep the first characters of what the user said; bytes that are not
 * UTF-8 become '?' so that answers are always valid JSON text.
 */
static void
echo_prefix(struct genreq *g, const char *s, size_t len)
{
	size_t	 i = 0, o = 0, n;
	int	 chars;

	for (chars = 0; i < len && chars < MOCK_ECHO_CHARS; chars++) {
		n = utf8_len((const unsigned char *)s + i, len - i);
		if (n == 0) {
			g->said[o++] = '?';
			i++;
			continue;
		}
		memcpy(g->said + o, s + i, n);
		o += n;
		i += n;
	}
	g->said[o] = '\0';
	g->saidlen = o;
}

/* The middle of s, moved on past UTF-8 continuation bytes. */
static size_t
utf8_mid(const char *s, size_t len)
{
	size_t	 mid = len / 2;

	while (mid < len && ((unsigned char)s[mid] & 0xc0) == 0x80)
		mid++;
	return mid;
}

/* Ollama's native generating routes: NDJSON, streamed by default. */
static int
gen_ollama(enum gen gen)
{
	return gen == GEN_OLLAMA || gen == GEN_GENERATE;
}

static int
kind_ndjson(enum rkind kind)
{
	return kind == R_NDJSON || kind == R_NDJSON_GEN ||
	    kind == R_BAD_NDJSON;
}

static void
json_str(struct evbuffer *b, const char *s, size_t len)
{
	static const char	 hex[] = "0123456789abcdef";
	char			 esc[6] = { '\\', 'u', '0', '0', 0, 0 };
	size_t			 i, run = 0;
	unsigned char		 c;

	evbuffer_add(b, "\"", 1);
	for (i = 0; i < len; i++) {
		c = (unsigned char)s[i];
		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		evbuffer_add(b, s + run, i - run);
		run = i + 1;
		switch (c) {
		case '"':
			evbuffer_add(b, "\\\"", 2);
			break;
		case '\\':
			evbuffer_add(b, "\\\\", 2);
			break;
		case '\n':
			evbuffer_add(b, "\\n", 2);
			break;
		case '\r':
			evbuffer_add(b, "\\r", 2);
			break;
		case '\t':
			evbuffer_add(b, "\\t", 2);
			break;
		default:
			esc[4] = hex[c >> 4];
			esc[5] = hex[c & 0xf];
			evbuffer_add(b, esc, sizeof(esc));
		}
	}
	evbuffer_add(b, s + run, len - run);
	evbuffer_add(b, "\"", 1);
}

static uint64_t
fnv1a(const char *s, size_t len, uint64_t h)
{
	size_t	 i;

	for (i = 0; i < len; i++) {
		h ^= (unsigned char)s[i];
		h *= 1099511628211ULL;
	}
	return h;
}

/* Ollama style timestamp: RFC 3339 with nanoseconds. */
static void
ts_now(char *buf, size_t sz)
{
	struct timespec	 ts;
	struct tm	 tm;
	size_t		 n;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(buf, sz, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, sz - n, ".%09ldZ", ts.tv_nsec);
}

static const char *
req_path(struct evhttp_request *req)
{
	const struct evhttp_uri	*uri;
	const char		*p;

	if ((uri = evhttp_request_get_evhttp_uri(req)) == NULL)
		return "/";
	p = evhttp_uri_get_path(uri);
	return (p == NULL || *p == '\0') ? "/" : p;
}

/* ---- statistics -------------------------------------------------- */

static void
stats_count(const char *path)
{
	char	 key[MOCK_MAX_PATHLEN + 1];
	size_t	 i;

	mock.st.requests++;
	/* Scanners send anything: store printable ASCII only. */
	for (i = 0; path[i] != '\0' && i < MOCK_MAX_PATHLEN; i++) {
		unsigned char c = (unsigned char)path[i];

		key[i] = (c < 0x20 || c >= 0x7f || c == '"' || c == '\\') ?
		    '?' : (char)c;
	}
	key[i] = '\0';
	for (i = 0; i < mock.st.npaths; i++) {
		if (strcmp(mock.st.paths[i].path, key) == 0) {
			mock.st.paths[i].n++;
			return;
		}
	}
	if (mock.st.npaths == MOCK_MAX_PATHS) {
		mock.st.other++;
		return;
	}
	if ((mock.st.paths[i].path = strdup(key)) == NULL)
		err(1, "strdup");
	mock.st.paths[i].n = 1;
	mock.st.npaths++;
}

static void
stats_reset(void)
{
	size_t	 i;

	for (i = 0; i < mock.st.npaths; i++)
		free(mock.st.paths[i].path);
	memset(&mock.st, 0, sizeof(mock.st));
}

static struct json_object *
stats_json(void)
{
	struct json_object	*o, *paths;
	size_t			 i;

	o = json_object_new_object();
	paths = json_object_new_object();
	json_object_object_add(o, "requests",
	    json_object_new_int64((int64_t)mock.st.requests));
	for (i = 0; i < mock.st.npaths; i++)
		json_object_object_add(paths, mock.st.paths[i].path,
		    json_object_new_int64((int64_t)mock.st.paths[i].n));
	if (mock.st.other)
		json_object_object_add(paths, "(other)",
		    json_object_new_int64((int64_t)mock.st.other));
	json_object_object_add(o, "by_path", paths);
	json_object_object_add(o, "streams_started",
	    json_object_new_int64((int64_t)mock.st.started));
	json_object_object_add(o, "streams_completed",
	    json_object_new_int64((int64_t)mock.st.completed));
	json_object_object_add(o, "streams_aborted",
	    json_object_new_int64((int64_t)mock.st.aborted));
	json_object_object_add(o, "last_abort_ms",
	    json_object_new_int64(mock.st.abort_ms));
	json_object_object_add(o, "unauthorized",
	    json_object_new_int64((int64_t)mock.st.unauthorized));
	json_object_object_add(o, "tls_requests",
	    json_object_new_int64((int64_t)mock.st.tls));
	json_object_object_add(o, "tls_connections",
	    json_object_new_int64((int64_t)mock.st.tls_conns));
	return o;
}

/* Write through a temporary file so readers never see half a file. */
static void
write_file_len(const char *path, const char *data, size_t len)
{
	char	 tmp[4096];
	FILE	*f;
	int	 bad;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp)) {
		warnx("%s: path too long", path);
		return;
	}
	if ((f = fopen(tmp, "w")) == NULL) {
		warn("%s", tmp);
		return;
	}
	bad = len > 0 && fwrite(data, len, 1, f) != 1;
	if (fclose(f) == EOF || bad) {
		warn("%s", tmp);
		unlink(tmp);
		return;
	}
	if (rename(tmp, path) == -1)
		warn("rename %s", path);
}

static void
write_file(const char *path, const char *data)
{
	write_file_len(path, data, strlen(data));
}

static void
stats_write(void)
{
	struct json_object	*o;
	const char		*j;
	char			*s;
	size_t			 len;

	if (mock.stats_file == NULL)
		return;
	o = stats_json();
	j = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
	    JSON_C_TO_STRING_NOSLASHESCAPE);
	len = strlen(j);
	if ((s = malloc(len + 2)) == NULL)
		err(1, "malloc");
	memcpy(s, j, len);
	memcpy(s + len, "\n", 2);
	json_object_put(o);
	write_file(mock.stats_file, s);
	free(s);
}

/* ---- deferred answers -------------------------------------------- */

static void	 reply_cb(evutil_socket_t, short, void *);
static void	 stream_step(struct reply *);

/* The client went away: evhttp detached the request and left it to us. */
static void
reply_closed(struct evhttp_connection *evcon, void *arg)
{
	struct reply	*r = arg;

	(void)evcon;
	r->gone = 1;
	event_del(r->ev);
	event_active(r->ev, EV_TIMEOUT, 1);
}

static struct reply *
reply_new(struct evhttp_request *req, enum rkind kind)
{
	struct reply	*r;

	if ((r = calloc(1, sizeof(*r))) == NULL)
		err(1, "calloc");
	r->req = req;
	r->kind = kind;
	if ((r->ev = evtimer_new(mock.base, reply_cb, r)) == NULL)
		errx(1, "evtimer_new");
	TAILQ_INSERT_TAIL(&mock.replies, r, entry);
	evhttp_connection_set_closecb(evhttp_request_get_connection(req),
	    reply_closed, r);
	return r;
}

/* Must run before the last send: the connection may outlive the reply. */
static void
reply_unhook(struct reply *r)
{
	struct evhttp_connection	*evcon;

	if ((evcon = evhttp_request_get_connection(r->req)) != NULL)
		evhttp_connection_set_closecb(evcon, NULL, NULL);
}

static void
reply_free(struct reply *r)
{
	TAILQ_REMOVE(&mock.replies, r, entry);
	event_free(r->ev);
	if (r->body != NULL)
		evbuffer_free(r->body);
	free(r->text);
	free(r->tool);
	free(r);
}

static void
reply_abort(struct reply *r)
{
	if (r->started) {
		struct timespec	 ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		mock.st.abort_ms = (int64_t)ts.tv_sec * 1000 +
		    ts.tv_nsec / 1000000;
		mock.st.aborted++;
	}
	if (evhttp_request_get_connection(r->req) == NULL)
		evhttp_request_free(r->req);
	else {
		/* Not expected: the connection is still there, finish it. */
		reply_unhook(r);
		if (r->started)
			evhttp_send_reply_end(r->req);
		else
			evhttp_send_error(r->req, HTTP_INTERNAL, NULL);
	}
	reply_free(r);
}

/*
 * evhttp does not read from a connection while its request is pending,
 * so it would never see the client of a stalled request leave: peek.
 */
static void
stall_check(struct reply *r)
{
	static const struct timeval	 every = {
		0, MOCK_STALL_POLL_MS * 1000
	};
	struct evhttp_connection	*evcon;
	ssize_t				 n;
	char				 c;

	evcon = evhttp_request_get_connection(r->req);
	n = recv(bufferevent_getfd(evhttp_connection_get_bufferevent(evcon)),
	    &c, 1, MSG_PEEK | MSG_DONTWAIT);
	if (n > 0 || (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK ||
	    errno == EINTR))) {
		evtimer_add(r->ev, &every);
		return;
	}
	/* Freeing the connection frees the request too. */
	reply_unhook(r);
	evhttp_connection_free(evcon);
	reply_free(r);
}

static void
reply_cb(evutil_socket_t fd, short what, void *arg)
{
	struct reply	*r = arg;

	(void)fd;
	(void)what;
	if (r->gone || evhttp_request_get_connection(r->req) == NULL) {
		reply_abort(r);
		return;
	}
	switch (r->kind) {
	case R_STALL:
		stall_check(r);
		return;
	case R_PLAIN:
		reply_unhook(r);
		evhttp_send_reply(r->req, r->code, NULL, r->body);
		reply_free(r);
		return;
	default:
		stream_step(r);
	}
}

/* Send what is in mock.out, now or after --latency-ms. */
static void
mock_reply(struct evhttp_request *req, int code, const char *ctype)
{
	struct reply	*r;

	if (ctype != NULL)
		evhttp_add_header(evhttp_request_get_output_headers(req),
		    "Content-Type", ctype);
	if (mock.latency_ms == 0) {
		evhttp_send_reply(req, code, NULL, mock.out);
		out_reset();
		return;
	}
	r = reply_new(req, R_PLAIN);
	r->code = code;
	if ((r->body = evbuffer_new()) == NULL)
		errx(1, "evbuffer_new");
	evbuffer_add_buffer(r->body, mock.out);
	evtimer_add(r->ev, &mock.latency_tv);
}

static void
send_body(struct evhttp_request *req, int code, enum bodyid id)
{
	const struct body	*b = &mock.bodies[id];

	out_reset();
	if (b->len > 0)
		evbuffer_add_reference(mock.out, b->data, b->len, NULL, NULL);
	mock_reply(req, code, b->ctype);
}

static void
mock_error(struct evhttp_request *req, enum style style, int code,
    const char *type, const char *msg)
{
	out_reset();
	if (style == ST_OLLAMA) {
		OUT_LIT("{\"error\":");
		json_str(mock.out, msg, strlen(msg));
		OUT_LIT("}");
	} else {
		OUT_LIT("{\"error\":{\"message\":");
		json_str(mock.out, msg, strlen(msg));
		OUT_LIT(",\"type\":");
		json_str(mock.out, type, strlen(type));
		OUT_LIT(",\"param\":null,\"code\":null}}");
	}
	mock_reply(req, code, CT_JSON);
}

static void
bad_request(struct evhttp_request *req, enum style style, const char *msg)
{
	mock_error(req, style, HTTP_BADREQUEST, "invalid_request_error", msg);
}

/* ---- streams ----------------------------------------------------- */

static void
frame_usage(const struct reply *r)
{
	evbuffer_add_printf(mock.out, "\"usage\":{\"prompt_tokens\":%u,"
	    "\"completion_tokens\":%u,\"total_tokens\":%u}",
	    r->prompt_tokens, r->words, r->prompt_tokens + r->words);
}

/* The head of an OpenAI chunk, up to the choices array. */
static void
frame_head(const struct reply *r)
{
	if (r->kind == R_SSE_CHAT)
		evbuffer_add_printf(mock.out, "data: {\"id\":"
		    "\"chatcmpl-mock-%llu\",\"object\":"
		    "\"chat.completion.chunk\",\"created\":%lld,"
		    "\"model\":%s,", r->id, r->created,
		    mock.models_json[r->model]);
	else
		evbuffer_add_printf(mock.out, "data: {\"id\":"
		    "\"cmpl-mock-%llu\",\"object\":\"text_completion\","
		    "\"created\":%lld,\"model\":%s,", r->id, r->created,
		    mock.models_json[r->model]);
}

/* Ollama's object up to its text: a message's content, or a response. */
static void
ollama_head(int model, int generate)
{
	char	 ts[64];

	ts_now(ts, sizeof(ts));
	evbuffer_add_printf(mock.out, "{\"model\":%s,\"created_at\":\"%s\",",
	    mock.models_json[model], ts);
	if (generate)
		OUT_LIT("\"response\":");
	else
		OUT_LIT("\"message\":{\"role\":\"assistant\",\"content\":");
}

/* The rest of Ollama's last object: the reason, counts and timings. */
static void
ollama_tail(int generate, unsigned prompt_tokens, unsigned words)
{
	OUT_LIT("\"done_reason\":\"stop\",\"done\":true,");
	/* /api/generate gives the context to send back; any will do. */
	if (generate)
		OUT_LIT("\"context\":[1,2,3],");
	evbuffer_add_printf(mock.out, "\"total_duration\":%llu,"
	    "\"load_duration\":1000000,\"prompt_eval_count\":%u,"
	    "\"prompt_eval_duration\":%llu,\"eval_count\":%u,"
	    "\"eval_duration\":%llu}",
	    1000000ULL + prompt_tokens * 100000ULL + words * 1000000ULL +
	    mock.latency_ms * 1000000ULL, prompt_tokens,
	    prompt_tokens * 100000ULL, words, words * 1000000ULL);
}

/* OpenAI's tool_calls: the arguments are a string of JSON.  A whole
 * answer makes --tool-calls of the same call. */
static void
tool_calls_openai(const char *name, size_t nlen, const char *args,
    size_t alen)
{
	long	 i;

	OUT_LIT("[");
	for (i = 0; i < mock.tool_calls; i++) {
		evbuffer_add_printf(mock.out, "%s{\"id\":\"call_mock_%ld\","
		    "\"type\":\"function\",\"function\":{\"name\":",
		    i > 0 ? "," : "", i);
		json_str(mock.out, name, nlen);
		OUT_LIT(",\"arguments\":");
		json_str(mock.out, args, alen);
		OUT_LIT("}}");
	}
	OUT_LIT("]");
}

/* Ollama's tool_calls: the arguments are an object. */
static void
tool_calls_ollama(const char *name, size_t nlen, const char *args,
    size_t alen)
{
	OUT_LIT("[{\"function\":{\"name\":");
	json_str(mock.out, name, nlen);
	OUT_LIT(",\"arguments\":");
	evbuffer_add(mock.out, args, alen);
	OUT_LIT("}}]");
}

/*
 * A streamed tool call.  Ollama sends it whole in one line.  OpenAI
 * sends the name first, then the arguments in two halves, split off a
 * UTF-8 sequence, which a client must join.
 */
static void
frame_tool(const struct reply *r)
{
	size_t	 mid;

	if (r->kind == R_NDJSON) {
		ollama_head(r->model, 0);
		OUT_LIT("\"\",\"tool_calls\":");
		tool_calls_ollama(r->tool, r->toollen, r->text, r->textlen);
		OUT_LIT("},\"done\":false}\n");
		return;
	}
	frame_head(r);
	if (r->chunk == 0) {
		OUT_LIT("\"choices\":[{\"index\":0,\"delta\":{\"role\":"
		    "\"assistant\",\"content\":null,\"tool_calls\":[{\"index\":"
		    "0,\"id\":\"call_mock_0\",\"type\":\"function\","
		    "\"function\":{\"name\":");
		json_str(mock.out, r->tool, r->toollen);
		OUT_LIT(",\"arguments\":\"\"}}]},\"logprobs\":null,"
		    "\"finish_reason\":null}]}\n\n");
		return;
	}
	mid = utf8_mid(r->text, r->textlen);
	OUT_LIT("\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":"
	    "[{\"index\":0,\"function\":{\"arguments\":");
	if (r->chunk == 1)
		json_str(mock.out, r->text, mid);
	else
		json_str(mock.out, r->text + mid, r->textlen - mid);
	OUT_LIT("}}]},\"logprobs\":null,\"finish_reason\":null}]}\n\n");
}

static void
frame_chunk(const struct reply *r, const char *p, size_t n, int first)
{
	switch (r->kind) {
	case R_SSE_CHAT:
		frame_head(r);
		if (first)
			OUT_LIT("\"choices\":[{\"index\":0,\"delta\":"
			    "{\"role\":\"assistant\",\"content\":");
		else
			OUT_LIT("\"choices\":[{\"index\":0,\"delta\":"
			    "{\"content\":");
		json_str(mock.out, p, n);
		OUT_LIT("},\"logprobs\":null,\"finish_reason\":null}]}\n\n");
		break;
	case R_SSE_TEXT:
		frame_head(r);
		OUT_LIT("\"choices\":[{\"index\":0,\"text\":");
		json_str(mock.out, p, n);
		OUT_LIT(",\"logprobs\":null,\"finish_reason\":null}]}\n\n");
		break;
	case R_NDJSON:
		ollama_head(r->model, 0);
		json_str(mock.out, p, n);
		OUT_LIT("},\"done\":false}\n");
		break;
	case R_NDJSON_GEN:
		ollama_head(r->model, 1);
		json_str(mock.out, p, n);
		OUT_LIT(",\"done\":false}\n");
		break;
	case R_BAD_SSE:
		OUT_LIT("data: {\"choices\":[{\"delta\":"
		    "{\"content\":\"broken\"}\n\n");
		break;
	case R_BAD_NDJSON:
		OUT_LIT("{\"message\":{\"content\":\"broken\"\n");
		break;
	default:
		break;
	}
}

static void
frame_final(const struct reply *r)
{
	switch (r->kind) {
	case R_SSE_CHAT:
	case R_SSE_TEXT:
		frame_head(r);
		if (r->kind == R_SSE_CHAT)
			OUT_LIT("\"choices\":[{\"index\":0,\"delta\":{},");
		else
			OUT_LIT("\"choices\":[{\"index\":0,\"text\":\"\",");
		if (r->tool != NULL)
			OUT_LIT("\"logprobs\":null,\"finish_reason\":"
			    "\"tool_calls\"}]}\n\n");
		else
			OUT_LIT("\"logprobs\":null,\"finish_reason\":"
			    "\"stop\"}]}\n\n");
		if (r->usage) {
			frame_head(r);
			OUT_LIT("\"choices\":[],");
			frame_usage(r);
			OUT_LIT("}\n\n");
		}
		OUT_LIT("data: [DONE]\n\n");
		break;
	case R_NDJSON:
		ollama_head(r->model, 0);
		OUT_LIT("\"\"},");
		ollama_tail(0, r->prompt_tokens, r->words);
		OUT_LIT("\n");
		break;
	case R_NDJSON_GEN:
		ollama_head(r->model, 1);
		OUT_LIT("\"\",");
		ollama_tail(1, r->prompt_tokens, r->words);
		OUT_LIT("\n");
		break;
	case R_BAD_SSE:
		OUT_LIT("data: [DONE]\n\n");
		break;
	case R_BAD_NDJSON:
		OUT_LIT("{\"done\":tru\n");
		break;
	default:
		break;
	}
}

static void
stream_start(struct reply *r)
{
	struct evkeyvalq	*h = evhttp_request_get_output_headers(r->req);

	if (kind_ndjson(r->kind))
		evhttp_add_header(h, "Content-Type", CT_NDJSON);
	else {
		evhttp_add_header(h, "Content-Type", CT_SSE);
		evhttp_add_header(h, "Cache-Control", "no-cache");
	}
	evhttp_send_reply_start(r->req, HTTP_OK, "OK");
	r->started = 1;
	mock.st.started++;
}

/* Chunk k holds words [k*W/N, (k+1)*W/N): concatenated, the whole text. */
static void
stream_chunk(struct reply *r)
{
	unsigned	 target;
	size_t		 end;
	int		 first = r->chunk == 0;

	out_reset();
	/* --sse-pad: an SSE comment line before the event, which clients
	 * ignore: a long stream of many bytes, fast. */
	if (mock.sse_pad > 0 && !kind_ndjson(r->kind)) {
		OUT_LIT(":");
		for (end = 0; end < (size_t)mock.sse_pad; end++)
			evbuffer_add(mock.out, "p", 1);
		OUT_LIT("\n");
	}
	/* --sse-fields: the other fields an SSE server may send, which
	 * clients act on or ignore, but never take for data. */
	if (mock.sse_fields && !kind_ndjson(r->kind)) {
		if (first)
			OUT_LIT("retry: 3000\n");
		evbuffer_add_printf(mock.out, "id: %u\n", r->chunk);
	}
	/* Tool calls and broken streams are not cut at words. */
	if (r->text == NULL || r->tool != NULL) {
		if (r->tool != NULL)
			frame_tool(r);
		else
			frame_chunk(r, NULL, 0, first);
		r->chunk++;
		evhttp_send_reply_chunk(r->req, mock.out);
		return;
	}
	target = (unsigned)((uint64_t)(r->chunk + 1) * r->words / r->nchunks);
	if (r->chunk + 1 == r->nchunks)
		end = r->textlen;
	else
		end = word_start(r->text, r->textlen, r->pos, r->wordpos,
		    target);
	frame_chunk(r, r->text + r->pos, end - r->pos, first);
	r->pos = end;
	r->wordpos = target;
	r->chunk++;
	evhttp_send_reply_chunk(r->req, mock.out);
}

static void
stream_finish(struct reply *r)
{
	out_reset();
	frame_final(r);
	reply_unhook(r);
	evhttp_send_reply_chunk(r->req, mock.out);
	evhttp_send_reply_end(r->req);
	mock.st.completed++;
	reply_free(r);
}

static void
stream_step(struct reply *r)
{
	if (!r->started)
		stream_start(r);
	do {
		stream_chunk(r);
		/* --fail midstream: an OpenAI stream's error chunk after
		 * the first, as vLLM sends one, and no [DONE]. */
		if (mock.fail == FAIL_MIDSTREAM && !kind_ndjson(r->kind)) {
			out_reset();
			OUT_LIT("data: {\"error\":{\"message\":\"mock engine "
			    "failure mid-stream\",\"type\":\"server_error\","
			    "\"code\":500}}\n\n");
			reply_unhook(r);
			evhttp_send_reply_chunk(r->req, mock.out);
			evhttp_send_reply_end(r->req);
			reply_free(r);
			return;
		}
	} while (mock.chunk_delay_ms == 0 && r->chunk < r->nchunks);
	/* The end goes with the last chunk: an abort is a missed chunk. */
	if (r->chunk < r->nchunks) {
		evtimer_add(r->ev, &mock.chunk_tv);
		return;
	}
	stream_finish(r);
}

static void
stream_begin(struct reply *r)
{
	/* A tool call: Ollama's in one line, OpenAI's in three chunks. */
	if (r->tool != NULL)
		r->nchunks = r->kind == R_NDJSON ? 1 : 3;
	else
		r->nchunks = (unsigned)mock.chunks;
	if (mock.latency_ms > 0) {
		evtimer_add(r->ev, &mock.latency_tv);
		return;
	}
	stream_step(r);
}

/* ---- request parsing --------------------------------------------- */

static struct json_object *
req_json(struct evhttp_request *req, enum style style, int quiet)
{
	struct evbuffer		*in = evhttp_request_get_input_buffer(req);
	struct json_object	*o;
	const char		*p;
	size_t			 len, end;

	len = evbuffer_get_length(in);
	p = len ? (const char *)evbuffer_pullup(in, -1) : NULL;
	if (p == NULL)
		goto bad;
	if (mock.body_file != NULL)
		write_file_len(mock.body_file, p, len);
	json_tokener_reset(mock.tok);
	o = json_tokener_parse_ex(mock.tok, p, (int)len);
	if (o == NULL ||
	    json_tokener_get_error(mock.tok) != json_tokener_success) {
		json_object_put(o);
		goto bad;
	}
	for (end = json_tokener_get_parse_end(mock.tok); end < len; end++)
		if (!is_space((unsigned char)p[end])) {
			json_object_put(o);
			goto bad;
		}
	if (!json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		goto bad;
	}
	return o;
 bad:
	if (!quiet)
		bad_request(req, style, "invalid JSON body");
	return NULL;
}

static int
model_find(const char *name)
{
	size_t	 n = strlen(name);
	int	 i;

	for (i = 0; i < mock.nmodels; i++) {
		const char *m = mock.models[i];

		if (strcmp(m, name) == 0)
			return i;
		/* Ollama: "llama3" is "llama3:latest". */
		if (mock.flavor != FL_OLLAMA)
			continue;
		if (strncmp(m, name, n) == 0 && strcmp(m + n, ":latest") == 0)
			return i;
		if (strncmp(m, name, strlen(m)) == 0 &&
		    strcmp(name + strlen(m), ":latest") == 0)
			return i;
	}
	return -1;
}

static int
req_model(struct evhttp_request *req, enum style style,
    struct json_object *root)
{
	struct json_object	*o;
	char			 msg[512];
	const char		*name;
	int			 i;

	if (!json_object_object_get_ex(root, "model", &o)) {
		/* llama-server serves one model and does not need the name. */
		if (mock.flavor == FL_LLAMACPP)
			return 0;
		bad_request(req, style, "model is required");
		return -1;
	}
	if (!json_object_is_type(o, json_type_string)) {
		bad_request(req, style, "model must be a string");
		return -1;
	}
	name = json_object_get_string(o);
	if ((i = model_find(name)) >= 0)
		return i;
	if (style == ST_OLLAMA)
		snprintf(msg, sizeof(msg), "model \"%.256s\" not found, try "
		    "pulling it first", name);
	else
		snprintf(msg, sizeof(msg), "model '%.256s' not found", name);
	mock_error(req, style, HTTP_NOTFOUND, "invalid_request_error", msg);
	return -1;
}

static int
req_stream(struct evhttp_request *req, enum style style,
    struct json_object *root, struct genreq *g)
{
	struct json_object	*o, *inc;

	if (json_object_object_get_ex(root, "stream", &o) &&
	    !json_object_is_type(o, json_type_null)) {
		if (!json_object_is_type(o, json_type_boolean)) {
			bad_request(req, style, "stream must be a boolean");
			return -1;
		}
		g->stream = json_object_get_boolean(o);
	}
	if (json_object_object_get_ex(root, "stream_options", &o) &&
	    json_object_object_get_ex(o, "include_usage", &inc))
		g->usage = json_object_get_boolean(inc);
	return 0;
}

/*
 * Words of a message content: a string or a list of parts.  *text is
 * set to the first text found, for the echo.
 */
static int
content_words(struct json_object *c, const char **text, size_t *len,
    unsigned *words)
{
	struct json_object	*part, *t;
	size_t			 i, n;

	*text = NULL;
	*len = 0;
	*words = 0;
	if (c == NULL || json_object_is_type(c, json_type_null))
		return 0;
	if (json_object_is_type(c, json_type_string)) {
		*text = json_object_get_string(c);
		*len = (size_t)json_object_get_string_len(c);
		*words = word_count(*text, *len);
		return 0;
	}
	if (!json_object_is_type(c, json_type_array))
		return -1;
	n = json_object_array_length(c);
	for (i = 0; i < n; i++) {
		part = json_object_array_get_idx(c, i);
		if (!json_object_is_type(part, json_type_object))
			return -1;
		if (!json_object_object_get_ex(part, "text", &t) ||
		    !json_object_is_type(t, json_type_string))
			continue;
		*words += word_count(json_object_get_string(t),
		    (size_t)json_object_get_string_len(t));
		if (*text == NULL) {
			*text = json_object_get_string(t);
			*len = (size_t)json_object_get_string_len(t);
		}
	}
	return 0;
}

static int
req_messages(struct evhttp_request *req, enum style style,
    struct json_object *root, struct genreq *g)
{
	struct json_object	*msgs, *m, *role, *c;
	const char		*last = NULL, *text = NULL;
	size_t			 i, n, lastlen = 0, len = 0;
	unsigned		 words;
	int			 tool_last = 0;

	if (!json_object_object_get_ex(root, "messages", &msgs)) {
		/* Ollama loads the model on an empty chat; OpenAI refuses. */
		if (style == ST_OLLAMA)
			return 0;
		bad_request(req, style, "messages is required");
		return -1;
	}
	if (!json_object_is_type(msgs, json_type_array)) {
		bad_request(req, style, "messages must be an array");
		return -1;
	}
	n = json_object_array_length(msgs);
	if (n == 0 && style == ST_OPENAI) {
		bad_request(req, style, "messages must not be empty");
		return -1;
	}
	for (i = 0; i < n; i++) {
		m = json_object_array_get_idx(msgs, i);
		if (!json_object_is_type(m, json_type_object) ||
		    !json_object_object_get_ex(m, "role", &role) ||
		    !json_object_is_type(role, json_type_string)) {
			bad_request(req, style, "each message needs a role");
			return -1;
		}
		if (!json_object_object_get_ex(m, "content", &c))
			c = NULL;
		if (content_words(c, &text, &len, &words) == -1) {
			bad_request(req, style, "invalid message content");
			return -1;
		}
		g->prompt_tokens += words;
		g->user_last = strcmp(json_object_get_string(role),
		    "user") == 0;
		tool_last = strcmp(json_object_get_string(role),
		    "tool") == 0;
		if (text != NULL && g->user_last) {
			last = text;
			lastlen = len;
		}
	}
	/* A tool's result last: echo it, so a test sees that it came. */
	if (tool_last)
		echo_prefix(g, text, len);
	else
		echo_prefix(g, last, lastlen);
	return 0;
}

/*
 * tools: a list of {"type":"function","function":{"name":...}}.  The
 * mock calls the first one, if the user spoke last: after a tool's
 * result it answers with text.
 */
static int
req_tools(struct evhttp_request *req, enum style style,
    struct json_object *root, struct genreq *g)
{
	struct json_object	*tools, *t, *f, *name;
	size_t			 i, n;

	if (!json_object_object_get_ex(root, "tools", &tools) ||
	    json_object_is_type(tools, json_type_null))
		return 0;
	if (!json_object_is_type(tools, json_type_array)) {
		bad_request(req, style, "tools must be an array");
		return -1;
	}
	n = json_object_array_length(tools);
	for (i = 0; i < n; i++) {
		t = json_object_array_get_idx(tools, i);
		if (!json_object_object_get_ex(t, "function", &f) ||
		    !json_object_object_get_ex(f, "name", &name) ||
		    !json_object_is_type(name, json_type_string)) {
			bad_request(req, style, "each tool needs a "
			    "function.name string");
			return -1;
		}
		if (i == 0 && g->user_last) {
			g->tool = json_object_get_string(name);
			g->toollen = (size_t)json_object_get_string_len(name);
		}
	}
	return 0;
}

/* /api/generate: one prompt string, and perhaps a system prompt. */
static int
req_generate(struct evhttp_request *req, struct json_object *root,
    struct genreq *g)
{
	struct json_object	*p, *o;
	size_t			 len;

	if (!json_object_object_get_ex(root, "prompt", &p) ||
	    !json_object_is_type(p, json_type_string)) {
		bad_request(req, ST_OLLAMA, "prompt must be a string");
		return -1;
	}
	if (json_object_object_get_ex(root, "system", &o) && o != NULL) {
		if (!json_object_is_type(o, json_type_string)) {
			bad_request(req, ST_OLLAMA, "system must be a string");
			return -1;
		}
		g->prompt_tokens += word_count(json_object_get_string(o),
		    (size_t)json_object_get_string_len(o));
	}
	if (json_object_object_get_ex(root, "options", &o) && o != NULL &&
	    !json_object_is_type(o, json_type_object)) {
		bad_request(req, ST_OLLAMA, "options must be an object");
		return -1;
	}
	len = (size_t)json_object_get_string_len(p);
	g->prompt_tokens += word_count(json_object_get_string(p), len);
	echo_prefix(g, json_object_get_string(p), len);
	return 0;
}

/* A prompt is a string, a list of strings, or token ids. */
static int
req_prompt(struct evhttp_request *req, struct json_object *root,
    struct genreq *g)
{
	struct json_object	*p, *e;
	const char		*first = NULL;
	size_t			 i, n, firstlen = 0;

	if (!json_object_object_get_ex(root, "prompt", &p)) {
		bad_request(req, ST_OPENAI, "prompt is required");
		return -1;
	}
	if (json_object_is_type(p, json_type_string)) {
		first = json_object_get_string(p);
		firstlen = (size_t)json_object_get_string_len(p);
		g->prompt_tokens = word_count(first, firstlen);
		echo_prefix(g, first, firstlen);
		return 0;
	}
	if (!json_object_is_type(p, json_type_array) ||
	    (n = json_object_array_length(p)) == 0) {
		bad_request(req, ST_OPENAI, "prompt must be a string or a "
		    "non-empty array");
		return -1;
	}
	for (i = 0; i < n; i++) {
		e = json_object_array_get_idx(p, i);
		if (json_object_is_type(e, json_type_string)) {
			size_t l = (size_t)json_object_get_string_len(e);

			g->prompt_tokens += word_count(
			    json_object_get_string(e), l);
			if (first == NULL) {
				first = json_object_get_string(e);
				firstlen = l;
			}
		} else if (json_object_is_type(e, json_type_int))
			g->prompt_tokens++;
		else if (json_object_is_type(e, json_type_array))
			g->prompt_tokens += json_object_array_length(e);
		else {
			bad_request(req, ST_OPENAI, "invalid prompt");
			return -1;
		}
	}
	echo_prefix(g, first, firstlen);
	return 0;
}

/* ---- generation -------------------------------------------------- */

/*
 * The deterministic answer: a greeting that echoes the user, padded with
 * filler words so that every stream chunk carries at least one word.
 */
static char *
answer_text(const struct genreq *g, size_t *lenp, unsigned *wordsp)
{
	const char	*said = g->said, *f;
	size_t		 saidlen = g->saidlen, len, flen;
	unsigned	 words, i;
	char		*t;

	if (saidlen == 0) {
		said = "nothing";
		saidlen = 7;
	}
	t = malloc(mock.greetlen + saidlen + (size_t)mock.chunks * 6 + 1);
	if (t == NULL)
		err(1, "malloc");
	memcpy(t, mock.greeting, mock.greetlen);
	memcpy(t + mock.greetlen, said, saidlen);
	len = mock.greetlen + saidlen;
	words = word_count(t, len);
	for (i = 0; words < (unsigned)mock.chunks; i++, words++) {
		f = filler[i % (sizeof(filler) / sizeof(filler[0]))];
		flen = strlen(f);
		t[len++] = ' ';
		memcpy(t + len, f, flen);
		len += flen;
	}
	t[len] = '\0';
	*lenp = len;
	*wordsp = words;
	return t;
}

/* A tool call's arguments, {"input":"<what the user said>"}. */
static char *
tool_args(const struct genreq *g, size_t *lenp, unsigned *wordsp)
{
	size_t	 len;
	char	*t;

	out_reset();
	OUT_LIT("{\"input\":");
	json_str(mock.out, g->said, g->saidlen);
	OUT_LIT("}");
	len = evbuffer_get_length(mock.out);
	if ((t = malloc(len + 1)) == NULL)
		err(1, "malloc");
	evbuffer_remove(mock.out, t, len);
	t[len] = '\0';
	*lenp = len;
	*wordsp = MOCK_TOOL_TOKENS;
	return t;
}

static void
body_chat(const struct genreq *g, enum gen gen, const char *t, size_t len,
    unsigned words)
{
	unsigned long long	 id = ++mock.seq;
	long long		 now = (long long)time(NULL);

	if (gen == GEN_CHAT) {
		evbuffer_add_printf(mock.out, "{\"id\":\"chatcmpl-mock-%llu\","
		    "\"object\":\"chat.completion\",\"created\":%lld,\"model\":"
		    "%s,\"choices\":[{\"index\":0,\"message\":{\"role\":"
		    "\"assistant\",\"content\":", id, now,
		    mock.models_json[g->model]);
		if (g->tool != NULL) {
			OUT_LIT("null,\"tool_calls\":");
			tool_calls_openai(g->tool, g->toollen, t, len);
			OUT_LIT("},\"logprobs\":null,\"finish_reason\":"
			    "\"tool_calls\"}],");
		} else {
			json_str(mock.out, t, len);
			OUT_LIT("},\"logprobs\":null,\"finish_reason\":"
			    "\"stop\"}],");
		}
	} else {
		evbuffer_add_printf(mock.out, "{\"id\":\"cmpl-mock-%llu\","
		    "\"object\":\"text_completion\",\"created\":%lld,\"model\":"
		    "%s,\"choices\":[{\"index\":0,\"text\":", id, now,
		    mock.models_json[g->model]);
		json_str(mock.out, t, len);
		OUT_LIT(",\"logprobs\":null,\"finish_reason\":\"stop\"}],");
	}
	evbuffer_add_printf(mock.out, "\"usage\":{\"prompt_tokens\":%u,"
	    "\"completion_tokens\":%u,\"total_tokens\":%u}}",
	    g->prompt_tokens, words, g->prompt_tokens + words);
}

static void
body_ollama(const struct genreq *g, enum gen gen, const char *t,
    size_t len, unsigned words)
{
	ollama_head(g->model, gen == GEN_GENERATE);
	if (g->tool != NULL) {
		OUT_LIT("\"\",\"tool_calls\":");
		tool_calls_ollama(g->tool, g->toollen, t, len);
	} else
		json_str(mock.out, t, len);
	if (gen == GEN_GENERATE)
		OUT_LIT(",");
	else
		OUT_LIT("},");
	ollama_tail(gen == GEN_GENERATE, g->prompt_tokens, words);
}

static enum rkind
gen_kind(enum gen gen)
{
	switch (gen) {
	case GEN_OLLAMA:
		return R_NDJSON;
	case GEN_GENERATE:
		return R_NDJSON_GEN;
	case GEN_CHAT:
		return R_SSE_CHAT;
	default:
		return R_SSE_TEXT;
	}
}

static void
gen_answer(struct evhttp_request *req, const struct route *rt,
    const struct genreq *g)
{
	struct reply	*r;
	char		*t;
	size_t		 len;
	unsigned	 words;

	if (g->tool != NULL)
		t = tool_args(g, &len, &words);
	else
		t = answer_text(g, &len, &words);
	if (!g->stream) {
		out_reset();
		if (gen_ollama(rt->gen))
			body_ollama(g, rt->gen, t, len, words);
		else
			body_chat(g, rt->gen, t, len, words);
		free(t);
		mock_reply(req, HTTP_OK, CT_JSON);
		return;
	}
	r = reply_new(req, gen_kind(rt->gen));
	r->text = t;
	r->textlen = len;
	r->words = words;
	r->model = g->model;
	r->usage = g->usage;
	r->prompt_tokens = g->prompt_tokens;
	r->id = ++mock.seq;
	r->created = (long long)time(NULL);
	if (g->tool != NULL) {
		/* The name may hold a NUL: copied by its length. */
		if ((r->tool = malloc(g->toollen + 1)) == NULL)
			err(1, "malloc");
		memcpy(r->tool, g->tool, g->toollen);
		r->tool[g->toollen] = '\0';
		r->toollen = g->toollen;
	}
	stream_begin(r);
}

static void
mock_generate(struct evhttp_request *req, const struct route *rt)
{
	struct json_object	*root;
	struct genreq		 g;
	int			 rc;

	if ((root = req_json(req, rt->style, 0)) == NULL)
		return;
	memset(&g, 0, sizeof(g));
	g.stream = gen_ollama(rt->gen);	/* Ollama streams by default */
	rc = -1;
	if ((g.model = req_model(req, rt->style, root)) < 0 ||
	    req_stream(req, rt->style, root, &g) == -1)
		goto done;
	if (rt->gen == GEN_TEXT)
		rc = req_prompt(req, root, &g);
	else if (rt->gen == GEN_GENERATE)
		rc = req_generate(req, root, &g);
	else if ((rc = req_messages(req, rt->style, root, &g)) == 0)
		rc = req_tools(req, rt->style, root, &g);
	/* g.tool points into root: answer before it is freed. */
	if (rc == 0)
		gen_answer(req, rt, &g);
 done:
	json_object_put(root);
}

/* ---- embeddings -------------------------------------------------- */

static int
is_token_list(struct json_object *o)
{
	size_t	 i, n;

	if (!json_object_is_type(o, json_type_array) ||
	    (n = json_object_array_length(o)) == 0)
		return 0;
	for (i = 0; i < n; i++)
		if (!json_object_is_type(json_object_array_get_idx(o, i),
		    json_type_int))
			return 0;
	return 1;
}

/* One input: a string or a list of token ids. */
static int
embed_item(struct json_object *o, const char **s, size_t *len,
    unsigned *tokens)
{
	if (json_object_is_type(o, json_type_string)) {
		*s = json_object_get_string(o);
		*len = (size_t)json_object_get_string_len(o);
		*tokens = word_count(*s, *len);
		return 0;
	}
	if (!is_token_list(o))
		return -1;
	*s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	*len = strlen(*s);
	*tokens = (unsigned)json_object_array_length(o);
	return 0;
}

static struct json_object *
embed_at(struct json_object *in, int single, size_t i)
{
	return single ? in : json_object_array_get_idx(in, i);
}

/* A deterministic vector derived from the input text. */
static void
embed_vector(const char *s, size_t len)
{
	uint64_t	 h = fnv1a(s, len, 1469598103934665603ULL);
	int		 i, v;

	OUT_LIT("[");
	for (i = 0; i < MOCK_EMBED_DIM; i++) {
		h = h * 6364136223846793005ULL + 1442695040888963407ULL;
		v = (int)((h >> 33) % 2001) - 1000;
		evbuffer_add_printf(mock.out, "%s%s%d.%03d", i ? "," : "",
		    v < 0 ? "-" : "", abs(v) / 1000, abs(v) % 1000);
	}
	OUT_LIT("]");
}

static void
embed_body(const struct route *rt, int model, struct json_object *in,
    int single, size_t n, unsigned tokens)
{
	const char	*s;
	size_t		 i, len;
	unsigned	 t;

	out_reset();
	if (rt->style == ST_OLLAMA)
		evbuffer_add_printf(mock.out, "{\"model\":%s,\"embeddings\":[",
		    mock.models_json[model]);
	else
		OUT_LIT("{\"object\":\"list\",\"data\":[");
	for (i = 0; i < n; i++) {
		embed_item(embed_at(in, single, i), &s, &len, &t);
		if (i > 0)
			OUT_LIT(",");
		if (rt->style == ST_OPENAI)
			evbuffer_add_printf(mock.out, "{\"object\":"
			    "\"embedding\",\"index\":%zu,\"embedding\":", i);
		embed_vector(s, len);
		if (rt->style == ST_OPENAI)
			OUT_LIT("}");
	}
	if (rt->style == ST_OLLAMA)
		evbuffer_add_printf(mock.out, "],\"total_duration\":%llu,"
		    "\"load_duration\":1000000,\"prompt_eval_count\":%u}",
		    1000000ULL + tokens * 100000ULL, tokens);
	else
		evbuffer_add_printf(mock.out, "],\"model\":%s,\"usage\":"
		    "{\"prompt_tokens\":%u,\"total_tokens\":%u}}",
		    mock.models_json[model], tokens, tokens);
}

static void
mock_embed(struct evhttp_request *req, const struct route *rt)
{
	struct json_object	*root, *in = NULL;
	const char		*s;
	size_t			 i, n = 0, len;
	unsigned		 t, tokens = 0;
	int			 model, single = 0;

	if ((root = req_json(req, rt->style, 0)) == NULL)
		return;
	if ((model = req_model(req, rt->style, root)) < 0)
		goto done;
	if (!json_object_object_get_ex(root, "input", &in) &&
	    rt->style == ST_OPENAI) {
		bad_request(req, rt->style, "input is required");
		goto done;
	}
	/* Ollama answers no embeddings to no input (it loads the model). */
	if (in != NULL) {
		single = json_object_is_type(in, json_type_string) ||
		    is_token_list(in);
		if (single)
			n = 1;
		else if (json_object_is_type(in, json_type_array))
			n = json_object_array_length(in);
		if (n == 0) {
			bad_request(req, rt->style, "input must be a string "
			    "or a non-empty array");
			goto done;
		}
	}
	for (i = 0; i < n; i++) {
		if (embed_item(embed_at(in, single, i), &s, &len, &t) == -1) {
			bad_request(req, rt->style, "invalid input");
			goto done;
		}
		tokens += t;
	}
	embed_body(rt, model, in, single, n, tokens);
	mock_reply(req, HTTP_OK, CT_JSON);
 done:
	json_object_put(root);
}

/* Ollama's older /api/embeddings: one prompt string, one vector. */
static void
mock_embed_prompt(struct evhttp_request *req, const struct route *rt)
{
	struct json_object	*root, *p;

	if ((root = req_json(req, rt->style, 0)) == NULL)
		return;
	if (req_model(req, rt->style, root) < 0)
		goto done;
	if (!json_object_object_get_ex(root, "prompt", &p) ||
	    !json_object_is_type(p, json_type_string)) {
		bad_request(req, rt->style, "prompt must be a string");
		goto done;
	}
	out_reset();
	OUT_LIT("{\"embedding\":");
	embed_vector(json_object_get_string(p),
	    (size_t)json_object_get_string_len(p));
	OUT_LIT("}");
	mock_reply(req, HTTP_OK, CT_JSON);
 done:
	json_object_put(root);
}

/*
 * POST /tokenize, a token per word: vLLM's takes a model and messages
 * (or a prompt) and answers {"count", "max_model_len", "tokens"};
 * llama.cpp's takes "content" and answers {"tokens"}.
 */
static void
mock_tokenize(struct evhttp_request *req, const struct route *rt)
{
	struct json_object	*root, *v, *m, *c;
	const char		*t;
	size_t			 i, len;
	unsigned		 n = 0, w;

	if ((root = req_json(req, rt->style, 0)) == NULL)
		return;
	if (mock.flavor == FL_LLAMACPP) {
		if (!json_object_object_get_ex(root, "content", &v) ||
		    content_words(v, &t, &len, &n) == -1 ||
		    !json_object_is_type(v, json_type_string)) {
			bad_request(req, rt->style, "content must be a string");
			goto done;
		}
	} else if (req_model(req, rt->style, root) < 0)
		goto done;
	else if (json_object_object_get_ex(root, "messages", &v) &&
	    json_object_is_type(v, json_type_array)) {
		for (i = 0; i < json_object_array_length(v); i++) {
			m = json_object_array_get_idx(v, i);
			if (!json_object_object_get_ex(m, "content", &c))
				c = NULL;
			if (content_words(c, &t, &len, &w) == -1) {
				bad_request(req, rt->style, "invalid content");
				goto done;
			}
			n += w;
		}
	} else if (!json_object_object_get_ex(root, "prompt", &v) ||
	    content_words(v, &t, &len, &n) == -1) {
		bad_request(req, rt->style, "messages or prompt is required");
		goto done;
	}
	out_reset();
	if (mock.flavor != FL_LLAMACPP)
		evbuffer_add_printf(mock.out, "{\"count\":%u,"
		    "\"max_model_len\":4096,", n);
	else
		evbuffer_add_printf(mock.out, "{");
	evbuffer_add_printf(mock.out, "\"tokens\":[");
	for (i = 0; i < n; i++)
		evbuffer_add_printf(mock.out, "%s%zu", i ? "," : "", i + 1);
	evbuffer_add_printf(mock.out, "]}");
	mock_reply(req, HTTP_OK, CT_JSON);
done:
	json_object_put(root);
}

/* ---- routing ----------------------------------------------------- */

static void
mock_static(struct evhttp_request *req, const struct route *rt)
{
	send_body(req, HTTP_OK, rt->body);
}

static const struct route *
route_find(const char *path)
{
	size_t	 i;

	for (i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		if ((routes[i].flavors & mock.flavor) == 0)
			continue;
		if (routes[i].v1 && mock.no_v1)
			continue;
		if (strcmp(routes[i].path, path) == 0)
			return &routes[i];
	}
	return NULL;
}

static void
mock_405(struct evhttp_request *req, const struct route *rt)
{
	evhttp_add_header(evhttp_request_get_output_headers(req), "Allow",
	    rt->methods == M_POST ? "POST" : "GET, HEAD");
	mock_error(req, rt->style, HTTP_BADMETHOD, "invalid_request_error",
	    "method not allowed");
}

/* Broken JSON, streamed when a stream was asked for. */
static void
mock_malformed(struct evhttp_request *req, const struct route *rt)
{
	struct json_object	*root, *o;
	struct reply		*r;
	int			 stream = gen_ollama(rt->gen);

	if (rt->gen == GEN_NONE) {
		send_body(req, HTTP_OK, B_MALFORMED);
		return;
	}
	if ((root = req_json(req, rt->style, 1)) != NULL) {
		if (json_object_object_get_ex(root, "stream", &o) &&
		    json_object_is_type(o, json_type_boolean))
			stream = json_object_get_boolean(o);
		json_object_put(root);
	}
	if (!stream) {
		send_body(req, HTTP_OK, B_MALFORMED);
		return;
	}
	r = reply_new(req, rt->style == ST_OLLAMA ? R_BAD_NDJSON : R_BAD_SSE);
	stream_begin(r);
}

static void
control_send(struct evhttp_request *req, int code, const char *json)
{
	out_reset();
	evbuffer_add(mock.out, json, strlen(json));
	evhttp_add_header(evhttp_request_get_output_headers(req),
	    "Content-Type", CT_JSON);
	evhttp_send_reply(req, code, NULL, mock.out);
	out_reset();
}

static void
control_fail(struct evhttp_request *req)
{
	struct evkeyvalq	 q;
	const char		*mode, *qs;
	char			 msg[128];
	int			 i;

	qs = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
	TAILQ_INIT(&q);
	if (qs == NULL || evhttp_parse_query_str(qs, &q) == -1 ||
	    (mode = evhttp_find_header(&q, "mode")) == NULL) {
		evhttp_clear_headers(&q);
		control_send(req, HTTP_BADREQUEST, "{\"error\":\"mode=... "
		    "is required\"}");
		return;
	}
	for (i = 0; i <= FAIL_MIDSTREAM; i++)
		if (i != FAIL_REFUSE && strcmp(mode, fail_names[i]) == 0)
			break;
	if (i > FAIL_MIDSTREAM) {
		evhttp_clear_headers(&q);
		control_send(req, HTTP_BADREQUEST, "{\"error\":\"mode must be "
		    "none, 500, malformed, stall, loading or midstream\"}");
		return;
	}
	evhttp_clear_headers(&q);
	mock.fail = (enum failmode)i;
	snprintf(msg, sizeof(msg), "{\"status\":\"ok\",\"fail\":\"%s\"}",
	    fail_names[i]);
	control_send(req, HTTP_OK, msg);
}

/*
 * /__mock/page: a web page for browser tests (tests/integration/
 * cors-browser.t, tls-clients.t), so that it has a real http origin, this
 * mock's.  Its script POSTs ?body= to ?url= with Authorization: Bearer
 * ?key= and Content-Type: application/json (so the browser sends a
 * preflight), or sends a GET without a body if ?method=GET,
 * and ?header= too if given, with credentials if ?cred= is; then it writes what it could read, or
 * the error fetch() threw, as one line of JSON into <pre id="out">.
 */
static const char page_html[] =
    "<!doctype html>\n<html><head><meta charset=\"utf-8\">"
    "<title>flm-mock-engine page</title></head><body>\n"
    "<pre id=\"out\">pending</pre>\n<script>\n"
    "(async function () {\n"
    "  var q = new URLSearchParams(location.search);\n"
    "  var h = { 'Authorization': 'Bearer ' + (q.get('key') || ''),\n"
    "      'Content-Type': 'application/json' };\n"
    "  if (q.get('header')) h[q.get('header')] = 'x';\n"
    "  var res = { origin: location.origin };\n"
    "  try {\n"
    "    var o = { method: q.get('method') || 'POST', headers: h };\n"
    "    if (o.method === 'POST') o.body = q.get('body') || '{}';\n"
    "    else delete h['Content-Type'];\n"
    "    if (q.get('cred')) o.credentials = 'include';\n"
    "    var r = await fetch(q.get('url'), o);\n"
    "    res.status = r.status;\n"
    "    res.request_id = r.headers.get('X-Request-Id');\n"
    "    res.json = await r.json();\n"
    "  } catch (e) {\n"
    "    res.error = e.name;\n"
    "    res.message = String(e.message);\n"
    "  }\n"
    "  document.getElementById('out').textContent = JSON.stringify(res);\n"
    "})();\n"
    "</script>\n</body></html>\n";

/* /__mock/...: never counted, never delayed, never failed. */
static void
mock_control(struct evhttp_request *req, const char *path)
{
	struct json_object	*o;
	int			 cmd = evhttp_request_get_command(req);

	if (strcmp(path, "/__mock/page") == 0 && (cmd & M_GET)) {
		out_reset();
		evbuffer_add_reference(mock.out, page_html,
		    sizeof(page_html) - 1, NULL, NULL);
		evhttp_add_header(evhttp_request_get_output_headers(req),
		    "Content-Type", "text/html; charset=utf-8");
		evhttp_send_reply(req, HTTP_OK, NULL, mock.out);
		out_reset();
	} else if (strcmp(path, "/__mock/stats") == 0 && (cmd & M_GET)) {
		o = stats_json();
		control_send(req, HTTP_OK, json_object_to_json_string_ext(o,
		    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
		json_object_put(o);
	} else if (strcmp(path, "/__mock/reset") == 0 && cmd == M_POST) {
		stats_reset();
		control_send(req, HTTP_OK, "{\"status\":\"ok\"}");
	} else if (strcmp(path, "/__mock/fail") == 0 && cmd == M_POST)
		control_fail(req);
	else if (strcmp(path, "/__mock/page") == 0 ||
	    strcmp(path, "/__mock/stats") == 0 ||
	    strcmp(path, "/__mock/reset") == 0 ||
	    strcmp(path, "/__mock/fail") == 0)
		control_send(req, HTTP_BADMETHOD,
		    "{\"error\":\"method not allowed\"}");
	else
		control_send(req, HTTP_NOTFOUND, "{\"error\":\"not found\"}");
}

/*
 * --api-key: as vLLM and llama-server, every route but the health
 * check wants "Authorization: Bearer KEY".
 */
static int
mock_authorized(struct evhttp_request *req, const char *path)
{
	const char	*h;

	if (mock.api_key == NULL || strcmp(path, "/health") == 0)
		return 1;
	h = evhttp_find_header(evhttp_request_get_input_headers(req),
	    "Authorization");
	return h != NULL && strncmp(h, "Bearer ", 7) == 0 &&
	    strcmp(h + 7, mock.api_key) == 0;
}

static void
mock_request(struct evhttp_request *req, void *arg)
{
	const struct route	*rt;
	struct reply		*r;
	const char		*path = req_path(req);

	(void)arg;
	out_reset();
	if (strncmp(path, "/__mock/", 8) == 0) {
		mock_control(req, path);
		return;
	}
	stats_count(path);
	if (mock.tls != NULL)
		mock.st.tls++;
	if (!mock_authorized(req, path)) {
		mock.st.unauthorized++;
		send_body(req, 401, B_401);
		return;
	}
	if (mock.fail == FAIL_STALL) {
		/* Poll later: evhttp still uses the connection now. */
		r = reply_new(req, R_STALL);
		event_active(r->ev, EV_TIMEOUT, 1);
		return;
	}
	if ((rt = route_find(path)) == NULL) {
		send_body(req, HTTP_NOTFOUND, B_NOTFOUND);
		return;
	}
	if ((evhttp_request_get_command(req) & rt->methods) == 0) {
		mock_405(req, rt);
		return;
	}
	switch (mock.fail) {
	case FAIL_500:
		send_body(req, HTTP_INTERNAL, rt->style == ST_OLLAMA ?
		    B_500_OLLAMA : B_500_OPENAI);
		return;
	case FAIL_LOADING:
		send_body(req, HTTP_SERVUNAVAIL, rt->style == ST_OLLAMA ?
		    B_503_OLLAMA : B_503_OPENAI);
		return;
	case FAIL_MALFORMED:
		mock_malformed(req, rt);
		return;
	default:
		break;
	}
	rt->fn(req, rt);
}

/* ---- fixed bodies ------------------------------------------------ */

static void
body_set(enum bodyid id, const char *s, const char *ctype)
{
	if ((mock.bodies[id].data = strdup(s)) == NULL)
		err(1, "strdup");
	mock.bodies[id].len = strlen(s);
	mock.bodies[id].ctype = ctype;
}

/* Takes the reference on o. */
static void
body_set_json(enum bodyid id, struct json_object *o)
{
	body_set(id, json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
	    JSON_C_TO_STRING_NOSLASHESCAPE), CT_JSON);
	json_object_put(o);
}

static void
jadd(struct json_object *o, const char *k, struct json_object *v)
{
	json_object_object_add(o, k, v);
}

static struct json_object *
jstr(const char *s)
{
	return json_object_new_string(s);
}

/* "llama3.2:1b" -> family "llama", size "1B". */
static void
model_facts(const char *name, char *family, size_t fsz, char *psize,
    size_t psz)
{
	const char	*b, *tag;
	size_t		 i;

	if ((b = strrchr(name, '/')) != NULL)
		name = b + 1;
	for (i = 0; i + 1 < fsz && ((name[i] >= 'a' && name[i] <= 'z') ||
	    (name[i] >= 'A' && name[i] <= 'Z')); i++)
		family[i] = name[i];
	family[i] = '\0';
	if (i == 0)
		snprintf(family, fsz, "llama");
	tag = strchr(name, ':');
	if (tag != NULL && strlen(tag) > 2 && (tag[strlen(tag) - 1] == 'b' ||
	    tag[strlen(tag) - 1] == 'B'))
		snprintf(psize, psz, "%.*sB", (int)strlen(tag) - 2, tag + 1);
	else
		snprintf(psize, psz, "7B");
}

/* A model's digest, 64 hex digits of its name; the hash goes on to size. */
static uint64_t
model_digest(const char *name, char digest[65])
{
	uint64_t	 h;
	int		 k;

	h = fnv1a(name, strlen(name), 1469598103934665603ULL);
	for (k = 0; k < 4; k++) {
		snprintf(digest + k * 16, 17, "%016llx", (unsigned long long)h);
		h = h * 6364136223846793005ULL + 1442695040888963407ULL;
	}
	return h;
}

/* Ollama's "details" of a model, as /api/tags, /api/ps and /api/show. */
static struct json_object *
model_details(const char *name)
{
	struct json_object	*d, *fams;
	char			 family[32], psize[32];

	model_facts(name, family, sizeof(family), psize, sizeof(psize));
	d = json_object_new_object();
	jadd(d, "parent_model", jstr(""));
	jadd(d, "format", jstr("gguf"));
	jadd(d, "family", jstr(family));
	fams = json_object_new_array();
	json_object_array_add(fams, jstr(family));
	jadd(d, "families", fams);
	jadd(d, "parameter_size", jstr(psize));
	jadd(d, "quantization_level", jstr("Q4_K_M"));
	return d;
}

/* /api/ps: the first model is loaded, until long after any test. */
static void
bodies_ollama_ps(void)
{
	struct json_object	*root, *arr, *m;
	char			 digest[65];

	model_digest(mock.models[0], digest);
	root = json_object_new_object();
	arr = json_object_new_array();
	m = json_object_new_object();
	jadd(m, "name", jstr(mock.models[0]));
	jadd(m, "model", jstr(mock.models[0]));
	jadd(m, "size", json_object_new_int64(1000000));
	jadd(m, "digest", jstr(digest));
	jadd(m, "details", model_details(mock.models[0]));
	jadd(m, "expires_at", jstr("2099-01-01T00:00:00Z"));
	jadd(m, "size_vram", json_object_new_int64(1000000));
	json_object_array_add(arr, m);
	jadd(root, "models", arr);
	body_set_json(B_OLLAMA_PS, root);
}

static void
bodies_ollama(void)
{
	struct json_object	*root, *arr, *m;
	char			 digest[65];
	uint64_t		 h;
	int			 i;

	body_set(B_OLLAMA_ROOT, "Ollama is running", CT_TEXT);
	body_set(B_OLLAMA_VERSION, "{\"version\":\"0.5.7\"}", CT_JSON);
	root = json_object_new_object();
	arr = json_object_new_array();
	for (i = 0; i < mock.nmodels; i++) {
		h = model_digest(mock.models[i], digest);
		m = json_object_new_object();
		jadd(m, "name", jstr(mock.models[i]));
		jadd(m, "model", jstr(mock.models[i]));
		jadd(m, "modified_at", jstr("2025-01-15T10:00:00.000000000Z"));
		jadd(m, "size", json_object_new_int64(
		    (int64_t)(400000000 + (h % 1000000000))));
		jadd(m, "digest", jstr(digest));
		jadd(m, "details", model_details(mock.models[i]));
		json_object_array_add(arr, m);
	}
	jadd(root, "models", arr);
	body_set_json(B_OLLAMA_TAGS, root);
	bodies_ollama_ps();
	body_set(B_NOTFOUND, "404 page not found", CT_TEXT);
}

/*
 * /api/show of one model.  Built per request with json-c, unlike the
 * hot routes: clients ask it once per model, and a benchmark never.
 */
static struct json_object *
show_json(const char *name)
{
	struct json_object	*o, *info, *caps;
	char			 family[32], psize[32], *mf;
	size_t			 len = strlen(name) + 16;

	model_facts(name, family, sizeof(family), psize, sizeof(psize));
	if ((mf = malloc(len)) == NULL)
		err(1, "malloc");
	snprintf(mf, len, "# mock\nFROM %s\n", name);
	o = json_object_new_object();
	jadd(o, "modelfile", jstr(mf));
	free(mf);
	jadd(o, "parameters", jstr("temperature 0.7"));
	jadd(o, "template", jstr("{{ .Prompt }}"));
	jadd(o, "details", model_details(name));
	info = json_object_new_object();
	jadd(info, "general.architecture", jstr(family));
	jadd(info, "general.parameter_count",
	    json_object_new_int64(1000000000));
	jadd(o, "model_info", info);
	caps = json_object_new_array();
	json_object_array_add(caps, jstr("completion"));
	json_object_array_add(caps, jstr("tools"));
	jadd(o, "capabilities", caps);
	jadd(o, "modified_at", jstr("2024-12-01T00:00:00Z"));
	return o;
}

static void
mock_show(struct evhttp_request *req, const struct route *rt)
{
	struct json_object	*root, *o = NULL, *show;
	const char		*name, *j;
	char			 msg[512];
	int			 i;

	if ((root = req_json(req, rt->style, 0)) == NULL)
		return;
	/* "name" is the older spelling of "model". */
	if (!json_object_object_get_ex(root, "model", &o) || o == NULL)
		json_object_object_get_ex(root, "name", &o);
	if (o == NULL) {
		bad_request(req, rt->style, "model is required");
		goto done;
	}
	if (!json_object_is_type(o, json_type_string)) {
		bad_request(req, rt->style, "model must be a string");
		goto done;
	}
	name = json_object_get_string(o);
	if ((i = model_find(name)) < 0) {
		/* Ollama words it so here, unlike on /api/chat. */
		snprintf(msg, sizeof(msg), "model '%.256s' not found", name);
		mock_error(req, rt->style, HTTP_NOTFOUND,
		    "invalid_request_error", msg);
		goto done;
	}
	show = show_json(mock.models[i]);
	j = json_object_to_json_string_ext(show, JSON_C_TO_STRING_PLAIN |
	    JSON_C_TO_STRING_NOSLASHESCAPE);
	out_reset();
	evbuffer_add(mock.out, j, strlen(j));
	json_object_put(show);
	mock_reply(req, HTTP_OK, CT_JSON);
 done:
	json_object_put(root);
}

static void
bodies_models(void)
{
	static const char *const owners[] = {
		[FL_OLLAMA] = "library", [FL_LMSTUDIO] = "organization_owner",
		[FL_VLLM] = "vllm", [FL_LLAMACPP] = "llamacpp"
	};
	struct json_object	*root, *arr, *m;
	int			 i;

	root = json_object_new_object();
	arr = json_object_new_array();
	jadd(root, "object", jstr("list"));
	for (i = 0; i < mock.nmodels; i++) {
		m = json_object_new_object();
		jadd(m, "id", jstr(mock.models[i]));
		jadd(m, "object", jstr("model"));
		jadd(m, "created", json_object_new_int64(mock.started_at));
		jadd(m, "owned_by", jstr(owners[mock.flavor]));
		if (mock.flavor == FL_VLLM) {
			jadd(m, "root", jstr(mock.models[i]));
			jadd(m, "parent", NULL);
			jadd(m, "max_model_len",
			    json_object_new_int(MOCK_N_CTX));
		}
		json_object_array_add(arr, m);
	}
	jadd(root, "data", arr);
	body_set_json(B_MODELS, root);
}

static void
bodies_llamacpp(void)
{
	struct json_object	*root, *dgs;
	const char		*base;
	char			 path[512];

	body_set(B_HEALTH, "{\"status\":\"ok\"}", CT_JSON);
	body_set(B_SLOTS, "[{\"id\":0,\"id_task\":-1,\"n_ctx\":4096,"
	    "\"speculative\":false,\"is_processing\":false}]", CT_JSON);
	body_set(B_NOTFOUND, "{\"error\":{\"code\":404,\"message\":"
	    "\"File Not Found\",\"type\":\"not_found_error\"}}", CT_JSON);
	base = strrchr(mock.models[0], '/');
	base = base ? base + 1 : mock.models[0];
	snprintf(path, sizeof(path), "/models/%s.gguf", base);
	root = json_object_new_object();
	dgs = json_object_new_object();
	jadd(dgs, "n_ctx", json_object_new_int(MOCK_N_CTX));
	jadd(dgs, "model", jstr(path));
	jadd(dgs, "n_predict", json_object_new_int(-1));
	jadd(dgs, "temperature", json_object_new_double_s(0.8, "0.8"));
	jadd(dgs, "top_k", json_object_new_int(40));
	jadd(dgs, "top_p", json_object_new_double_s(0.95, "0.95"));
	jadd(root, "default_generation_settings", dgs);
	jadd(root, "total_slots", json_object_new_int(1));
	jadd(root, "model_path", jstr(path));
	jadd(root, "chat_template", jstr("{{ messages }}"));
	jadd(root, "build_info", jstr("b0-mock"));
	body_set_json(B_PROPS, root);
}

static void
bodies_lmstudio(void)
{
	struct json_object	*root, *arr, *m;
	char			 pub[128];
	const char		*slash;
	int			 i;

	root = json_object_new_object();
	arr = json_object_new_array();
	jadd(root, "object", jstr("list"));
	for (i = 0; i < mock.nmodels; i++) {
		slash = strchr(mock.models[i], '/');
		snprintf(pub, sizeof(pub), "%.*s", slash ?
		    (int)(slash - mock.models[i]) : 0, mock.models[i]);
		m = json_object_new_object();
		jadd(m, "id", jstr(mock.models[i]));
		jadd(m, "object", jstr("model"));
		jadd(m, "type", jstr("llm"));
		jadd(m, "publisher", jstr(pub));
		jadd(m, "arch", jstr("qwen2"));
		jadd(m, "compatibility_type", jstr("gguf"));
		jadd(m, "quantization", jstr("Q4_K_M"));
		jadd(m, "state", jstr("loaded"));
		jadd(m, "max_context_length", json_object_new_int(32768));
		json_object_array_add(arr, m);
	}
	jadd(root, "data", arr);
	body_set_json(B_LMS_MODELS, root);
	body_set(B_NOTFOUND, "{\"error\":\"Unexpected endpoint or method.\"}",
	    CT_JSON);
}

static void
bodies_init(void)
{
	struct evbuffer	*b;
	size_t		 len;
	int		 i;

	/* Quoted model names, ready to paste into generated bodies. */
	if ((b = evbuffer_new()) == NULL)
		errx(1, "evbuffer_new");
	for (i = 0; i < mock.nmodels; i++) {
		json_str(b, mock.models[i], strlen(mock.models[i]));
		len = evbuffer_get_length(b);
		if ((mock.models_json[i] = malloc(len + 1)) == NULL)
			err(1, "malloc");
		evbuffer_remove(b, mock.models_json[i], len);
		mock.models_json[i][len] = '\0';
	}
	evbuffer_free(b);

	bodies_models();
	switch (mock.flavor) {
	case FL_OLLAMA:
		bodies_ollama();
		break;
	case FL_LMSTUDIO:
		bodies_lmstudio();
		break;
	case FL_VLLM:
		body_set(B_HEALTH, "", NULL);
		body_set(B_VERSION, "{\"version\":\"0.6.3\"}", CT_JSON);
		body_set(B_NOTFOUND, "{\"detail\":\"Not Found\"}", CT_JSON);
		break;
	case FL_LLAMACPP:
		bodies_llamacpp();
		break;
	}
	body_set(B_MALFORMED, "{\"object\":\"chat.completion\",\"choices\":"
	    "[{\"message\":{\"content\":\"broken", CT_JSON);
	body_set(B_500_OPENAI, "{\"error\":{\"message\":\"mock engine failure"
	    "\",\"type\":\"server_error\",\"param\":null,\"code\":null}}",
	    CT_JSON);
	body_set(B_500_OLLAMA, "{\"error\":\"mock engine failure\"}", CT_JSON);
	body_set(B_503_OPENAI, "{\"error\":{\"code\":503,\"message\":"
	    "\"Loading model\",\"type\":\"unavailable_error\"}}", CT_JSON);
	body_set(B_503_OLLAMA, "{\"error\":\"Loading model\"}", CT_JSON);
	body_set(B_401, "{\"error\":\"Unauthorized\"}", CT_JSON);	/* vLLM's */
}

/* ---- setup and teardown ------------------------------------------ */

static void __attribute__((noreturn))
usage(int status)
{
	fprintf(status ? stderr : stdout, "usage: flm-mock-engine --flavor "
	    "ollama|lmstudio|vllm|llamacpp [--listen addr:port]\n"
	    "\t[--models a,b,c] [--latency-ms n] [--chunks n] "
	    "[--chunk-delay-ms n] [--sse-pad n] [--sse-fields]\n"
	    "\t[--tool-calls n]\n"
	    "\t[--fail refuse|500|malformed|stall|loading|midstream] [--no-v1] "
	    "[--idle-ms n]\n"
	    "\t[--port-file path] [--stats-file path] [--body-file path]\n"
	    "\t[--api-key key] [--tls-cert pem --tls-key pem]\n");
	exit(status);
}

static long
parse_num(const char *s, long min, long max, const char *what)
{
	char	*end;
	long	 v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (*s == '\0' || *end != '\0' || errno != 0 || v < min || v > max)
		errx(2, "%s: must be a number in [%ld, %ld]: %s", what, min,
		    max, s);
	return v;
}

static void
set_flavor(const char *s)
{
	static const struct {
		const char	*name;
		enum flavor	 flavor;
	} f[] = {
		{ "ollama", FL_OLLAMA }, { "lmstudio", FL_LMSTUDIO },
		{ "vllm", FL_VLLM }, { "llamacpp", FL_LLAMACPP }
	};
	size_t	 i;

	for (i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
		if (strcmp(s, f[i].name) == 0) {
			mock.flavor = f[i].flavor;
			mock.flavor_name = f[i].name;
			return;
		}
	}
	errx(2, "unknown flavor: %s", s);
}

static void
set_fail(const char *s)
{
	int	 i;

	for (i = 0; i <= FAIL_MIDSTREAM; i++) {
		if (strcmp(s, fail_names[i]) == 0) {
			mock.fail = (enum failmode)i;
			return;
		}
	}
	errx(2, "unknown failure mode: %s", s);
}

static void
set_models(const char *arg)
{
	char	*p, *m;

	free(mock.models_arg);
	if ((mock.models_arg = strdup(arg)) == NULL)
		err(1, "strdup");
	mock.nmodels = 0;
	for (p = mock.models_arg; (m = strsep(&p, ",")) != NULL; ) {
		if (*m == '\0')
			errx(2, "--models: empty model name");
		if (mock.nmodels == MOCK_MAX_MODELS)
			errx(2, "--models: at most %d models", MOCK_MAX_MODELS);
		mock.models[mock.nmodels++] = m;
	}
}

static void
ms_tv(long ms, struct timeval *tv)
{
	tv->tv_sec = ms / 1000;
	tv->tv_usec = (ms % 1000) * 1000;
}

static void
parse_args(int argc, char *argv[])
{
	static const struct option opts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "flavor", required_argument, NULL, 'f' },
		{ "models", required_argument, NULL, 'm' },
		{ "latency-ms", required_argument, NULL, 'L' },
		{ "chunks", required_argument, NULL, 'c' },
		{ "chunk-delay-ms", required_argument, NULL, 'd' },
		{ "sse-pad", required_argument, NULL, 'P' },
		{ "sse-fields", no_argument, NULL, 'S' },
		{ "tool-calls", required_argument, NULL, 'T' },
		{ "fail", required_argument, NULL, 'F' },
		{ "no-v1", no_argument, NULL, 'n' },
		{ "port-file", required_argument, NULL, 'p' },
		{ "stats-file", required_argument, NULL, 's' },
		{ "body-file", required_argument, NULL, 'B' },
		{ "idle-ms", required_argument, NULL, 'I' },
		{ "api-key", required_argument, NULL, 'K' },
		{ "tls-cert", required_argument, NULL, 'C' },
		{ "tls-key", required_argument, NULL, 'k' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	static const char *const defmodels[] = {
		[FL_OLLAMA] = "llama3.2:1b,qwen2.5:0.5b",
		[FL_LMSTUDIO] = "lmstudio-community/qwen2.5-7b-instruct",
		[FL_VLLM] = "meta-llama/Llama-3.2-1B-Instruct",
		[FL_LLAMACPP] = "ggml-org/gemma-3-1b-it-GGUF"
	};
	const char	*models = NULL;
	int		 ch;

	mock.chunks = 8;
	mock.tool_calls = 1;
	while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (ch) {
		case 'l':
			mock.listen = optarg;
			break;
		case 'f':
			set_flavor(optarg);
			break;
		case 'm':
			models = optarg;
			break;
		case 'L':
			mock.latency_ms = parse_num(optarg, 0, MOCK_MAX_MS,
			    "--latency-ms");
			break;
		case 'c':
			mock.chunks = parse_num(optarg, 1, MOCK_MAX_CHUNKS,
			    "--chunks");
			break;
		case 'd':
			mock.chunk_delay_ms = parse_num(optarg, 0, MOCK_MAX_MS,
			    "--chunk-delay-ms");
			break;
		case 'P':
			mock.sse_pad = parse_num(optarg, 0, 65536, "--sse-pad");
			break;
		case 'S':
			mock.sse_fields = 1;
			break;
		case 'T':
			mock.tool_calls = parse_num(optarg, 1, 1000,
			    "--tool-calls");
			break;
		case 'F':
			set_fail(optarg);
			break;
		case 'n':
			mock.no_v1 = 1;
			break;
		case 'p':
			mock.port_file = optarg;
			break;
		case 's':
			mock.stats_file = optarg;
			break;
		case 'B':
			mock.body_file = optarg;
			break;
		case 'I':
			mock.idle_ms = parse_num(optarg, 1, MOCK_MAX_MS,
			    "--idle-ms");
			break;
		case 'K':
			mock.api_key = optarg;
			break;
		case 'C':
			mock.tls_cert = optarg;
			break;
		case 'k':
			mock.tls_key = optarg;
			break;
		case 'h':
			usage(0);
		default:
			usage(2);
		}
	}
	if (optind != argc || mock.flavor == 0)
		usage(2);
	if (mock.no_v1 && mock.flavor != FL_OLLAMA)
		errx(2, "--no-v1 applies to the ollama flavor only");
	if ((mock.tls_cert == NULL) != (mock.tls_key == NULL))
		errx(2, "--tls-cert and --tls-key go together");
	set_models(models ? models : defmodels[mock.flavor]);
	ms_tv(mock.latency_ms, &mock.latency_tv);
	ms_tv(mock.chunk_delay_ms, &mock.chunk_tv);
	mock.greetlen = (size_t)snprintf(mock.greeting, sizeof(mock.greeting),
	    "Hello from mock %s: you said ", mock.flavor_name);
}

/* ADDR:PORT or [V6ADDR]:PORT; without --listen, the engine's usual port. */
static char *
parse_listen(int *port)
{
	static const int	 defport[] = {
		[FL_OLLAMA] = 11434, [FL_LMSTUDIO] = 1234,
		[FL_VLLM] = 8000, [FL_LLAMACPP] = 8080
	};
	const char		*s = mock.listen, *colon, *h;
	char			*host;
	size_t			 hlen;

	if (s == NULL) {
		*port = defport[mock.flavor];
		return strdup("127.0.0.1");
	}
	if (*s == '[') {
		if ((colon = strchr(s, ']')) == NULL || colon[1] != ':')
			errx(2, "--listen: bad address: %s", s);
		h = s + 1;
		hlen = (size_t)(colon - h);
		colon++;
	} else {
		if ((colon = strrchr(s, ':')) == NULL)
			errx(2, "--listen: ADDR:PORT expected: %s", s);
		h = s;
		hlen = (size_t)(colon - s);
	}
	if (hlen == 0)
		errx(2, "--listen: empty address: %s", s);
	*port = (int)parse_num(colon + 1, 0, 65535, "--listen port");
	if ((host = strndup(h, hlen)) == NULL)
		err(1, "strndup");
	return host;
}

static int
bound_port(struct evhttp_bound_socket *bs)
{
	struct sockaddr_storage	 ss;
	socklen_t		 len = sizeof(ss);

	if (getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&ss,
	    &len) == -1)
		err(1, "getsockname");
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

/* --tls-cert: every connection is TLS (HTTP/1.1 over it). */
static struct bufferevent *
mock_tls_bev(struct event_base *base, void *arg)
{
	SSL	*ssl;

	(void)arg;
	if ((ssl = SSL_new(mock.tls)) == NULL)
		return NULL;
	mock.st.tls_conns++;
	return bufferevent_openssl_socket_new(base, -1, ssl,
	    BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
}

static void
mock_tls_init(void)
{
	if (mock.tls_cert == NULL)
		return;
	if ((mock.tls = SSL_CTX_new(TLS_server_method())) == NULL ||
	    SSL_CTX_use_certificate_chain_file(mock.tls, mock.tls_cert) != 1 ||
	    SSL_CTX_use_PrivateKey_file(mock.tls, mock.tls_key,
	    SSL_FILETYPE_PEM) != 1 || SSL_CTX_check_private_key(mock.tls) != 1)
		errx(1, "--tls-cert %s --tls-key %s: %s", mock.tls_cert,
		    mock.tls_key, ERR_reason_error_string(ERR_get_error()));
	evhttp_set_bevcb(mock.http, mock_tls_bev, NULL);
}

static void
mock_listen(void)
{
	struct evhttp_bound_socket	*bs;
	char				*host, buf[32];
	int				 port;

	if ((host = parse_listen(&port)) == NULL)
		err(1, "strdup");
	if ((bs = evhttp_bind_socket_with_handle(mock.http, host, port)) ==
	    NULL)
		errx(1, "cannot listen on %s port %d", host, port);
	port = bound_port(bs);
	fprintf(stderr, "flm-mock-engine: %s on %s port %d (fail: %s)\n",
	    mock.flavor_name, host, port, fail_names[mock.fail]);
	free(host);
	if (mock.port_file != NULL) {
		snprintf(buf, sizeof(buf), "%d\n", port);
		write_file(mock.port_file, buf);
	}
	/* A crashed engine: the port was known but nobody listens. */
	if (mock.fail == FAIL_REFUSE)
		evhttp_del_accept_socket(mock.http, bs);
}

static void
on_signal(evutil_socket_t sig, short what, void *arg)
{
	(void)what;
	(void)arg;
	if (sig == SIGUSR1) {
		stats_write();
		return;
	}
	event_base_loopbreak(mock.base);
}

static void
mock_free(void)
{
	struct reply	*r;
	int		 i;

	/* Detached requests are ours; attached ones go with evhttp. */
	while ((r = TAILQ_FIRST(&mock.replies)) != NULL) {
		if (evhttp_request_get_connection(r->req) == NULL)
			evhttp_request_free(r->req);
		else
			reply_unhook(r);
		reply_free(r);
	}
	evhttp_free(mock.http);
	SSL_CTX_free(mock.tls);
	evbuffer_free(mock.out);
	json_tokener_free(mock.tok);
	for (i = 0; i < B_COUNT; i++)
		free(mock.bodies[i].data);
	for (i = 0; i < mock.nmodels; i++)
		free(mock.models_json[i]);
	free(mock.models_arg);
	stats_reset();
}

int
main(int argc, char *argv[])
{
	static const int	 sigs[] = { SIGTERM, SIGINT, SIGUSR1 };
	struct event		*sev[3];
	size_t			 i;

	parse_args(argc, argv);
	signal(SIGPIPE, SIG_IGN);
	TAILQ_INIT(&mock.replies);
	mock.started_at = time(NULL);
	if ((mock.base = event_base_new()) == NULL ||
	    (mock.http = evhttp_new(mock.base)) == NULL ||
	    (mock.out = evbuffer_new()) == NULL ||
	    (mock.tok = json_tokener_new()) == NULL)
		errx(1, "out of memory");
	json_tokener_set_flags(mock.tok, JSON_TOKENER_STRICT |
	    JSON_TOKENER_VALIDATE_UTF8);
	evhttp_set_max_body_size(mock.http, MOCK_MAX_BODY);
	evhttp_set_max_headers_size(mock.http, MOCK_MAX_HEADERS);
	evhttp_set_timeout(mock.http, MOCK_TIMEOUT);
	if (mock.idle_ms > 0) {
		/* A kept-alive connection silent that long is closed
		 * without a word, as an engine with a short keep-alive
		 * timeout does (so is a client that slow to send). */
		struct timeval	 tv = { mock.idle_ms / 1000,
		    mock.idle_ms % 1000 * 1000 };

		evhttp_set_timeout_tv(mock.http, &tv);
	}
	evhttp_set_default_content_type(mock.http, CT_JSON);
	evhttp_set_allowed_methods(mock.http, EVHTTP_REQ_GET |
	    EVHTTP_REQ_POST | EVHTTP_REQ_HEAD | EVHTTP_REQ_PUT |
	    EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH);
	evhttp_set_gencb(mock.http, mock_request, NULL);
	bodies_init();
	mock_tls_init();
	mock_listen();

	for (i = 0; i < 3; i++) {
		if ((sev[i] = evsignal_new(mock.base, sigs[i], on_signal,
		    NULL)) == NULL || evsignal_add(sev[i], NULL) == -1)
			errx(1, "evsignal_new");
	}
	event_base_dispatch(mock.base);

	stats_write();
	for (i = 0; i < 3; i++)
		event_free(sev[i]);
	mock_free();
	event_base_free(mock.base);
	libevent_global_shutdown();
	return 0;
}
