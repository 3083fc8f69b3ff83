/*
 * flm chat: one question to the running proxy, as any OpenAI client
 * would ask it.  flmd says where the proxy listens; the rest is plain
 * HTTP with the user's own API key, so the proxy checks it like any
 * other: flm gets no privilege here.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <json-c/json.h>

#include "flm.h"

#define CHAT_MAX_BODY		(64 * 1024 * 1024)	/* one answer */
#define CHAT_MAX_LINE		(4 * 1024 * 1024)	/* one SSE event */
#define CHAT_CONNECT_SECS	10
#define CHAT_MODELS_SECS	30
#define CHAT_MAX_KEY		512
#define CHAT_MAX_STDIN		(1024 * 1024)	/* MESSAGE "-" */

struct cbuf {
	char	*p;
	size_t	 len;
	size_t	 cap;
};

struct chat {
	struct cli	*c;
	CURL		*curl;
	char		*auth;		/* "Authorization: Bearer KEY" */
	char		 base[128];	/* http://host:port/v1 */
	struct cbuf	 body;		/* whole answer, or an error's */
	struct cbuf	 line;		/* SSE: a line not yet complete */
	struct cbuf	 data;		/* SSE: the event being read */
	int		 stream;	/* this request asked for SSE */
	int		 sse;		/* and got it: a 200 */
	int		 checked;	/* sse decided */
	int		 done;		/* data: [DONE] seen */
	int		 failed;	/* already reported, exit 1 */
};

/* Append n bytes, keeping a NUL after them; -1 past max. */
static int
cbuf_add(struct cbuf *b, const char *p, size_t n, size_t max)
{
	size_t	 cap;
	char	*np;

	if (n > max || b->len > max - n)
		return -1;
	if (b->len + n + 1 > b->cap) {
		cap = b->cap ? b->cap : 1024;
		while (cap < b->len + n + 1)
			cap *= 2;
		if ((np = realloc(b->p, cap)) == NULL)
			return -1;
		b->p = np;
		b->cap = cap;
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
	b->p[b->len] = '\0';
	return 0;
}

static void
cbuf_free(struct cbuf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

static struct json_object *
jget(struct json_object *o, const char *key)
{
	struct json_object	*v;

	if (!json_object_is_type(o, json_type_object) ||
	    !json_object_object_get_ex(o, key, &v))
		return NULL;
	return v;
}

/* choices[0].message.content or choices[0].delta.content, or NULL. */
static struct json_object *
chat_content(struct json_object *o, const char *member)
{
	struct json_object	*ch, *v;

	ch = jget(o, "choices");
	if (!json_object_is_type(ch, json_type_array) ||
	    json_object_array_length(ch) == 0)
		return NULL;
	v = jget(jget(json_object_array_get_idx(ch, 0), member), "content");
	return json_object_is_type(v, json_type_string) ? v : NULL;
}

static void
chat_print(struct json_object *s)
{
	term_write(stdout, json_object_get_string(s),
	    (size_t)json_object_get_string_len(s), 1);
	fflush(stdout);
}

/* The proxy speaks OpenAI's error shape; engines may pass a string. */
static const char *
chat_errmsg(struct json_object *o)
{
	struct json_object	*e = jget(o, "error"), *m;

	if (json_object_is_type(e, json_type_string))
		return term_str(e);
	m = jget(e, "message");
	if (json_object_is_type(m, json_type_string))
		return term_str(m);
	return NULL;
}

/* One SSE event: a chunk, an error, or the end. */
static int
sse_event(struct chat *ch)
{
	struct json_object	*o, *s;
	const char		*msg;

	if (ch->data.len == 0)
		return 0;
	ch->data.p[--ch->data.len] = '\0';	/* the last line's '\n' */
	if (strcmp(ch->data.p, "[DONE]") == 0) {
		ch->done = 1;
		ch->data.len = 0;
		return 0;
	}
	o = json_tokener_parse(ch->data.p);
	ch->data.len = 0;
	if (o == NULL) {
		fprintf(stderr, "\nflm chat: the proxy sent an event that is "
		    "not JSON\n");
		ch->failed = 1;
		return -1;
	}
	if ((msg = chat_errmsg(o)) != NULL) {
		fprintf(stderr, "\nflm chat: error in the stream: %s\n", msg);
		json_object_put(o);
		ch->failed = 1;
		return -1;
	}
	if (ch->c->json) {
		printf("%s\n", json_object_to_json_string_ext(o,
		    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
		fflush(stdout);
	} else if ((s = chat_content(o, "delta")) != NULL)
		chat_print(s);
	json_object_put(o);
	return 0;
}

/*
 * One line of the stream (without its end).  Only "data" matters to
 * us; an empty line ends an event, as the SSE rules say, so an event
 * may span several data lines.
 */
static int
sse_line(struct chat *ch, char *l, size_t n)
{
	char	*v;

	if (n > 0 && l[n - 1] == '\r')
		l[--n] = '\0';
	if (n == 0)
		return sse_event(ch);
	if (l[0] == ':')
		return 0;	/* a comment, a keep-alive */
	if (strncmp(l, "data", 4) != 0 || (l[4] != ':' && l[4] != '\0'))
		return 0;	/* event:, id:, retry: */
	v = l[4] == ':' ? l + 5 : l + 4;
	if (*v == ' ')
		v++;
	if (cbuf_add(&ch->data, v, n - (v - l), CHAT_MAX_LINE) == -1 ||
	    cbuf_add(&ch->data, "\n", 1, CHAT_MAX_LINE) == -1) {
		fprintf(stderr, "\nflm chat: an event of the stream is too "
		    "large\n");
		ch->failed = 1;
		return -1;
	}
	return 0;
}

/* Feed what arrived; a line split across calls waits in ch->line. */
static int
sse_feed(struct chat *ch, const char *p, size_t n)
{
	char	*nl, *s;
	size_t	 off = 0;

	if (cbuf_add(&ch->line, p, n, CHAT_MAX_LINE) == -1) {
		fprintf(stderr, "\nflm chat: a line of the stream is too "
		    "large\n");
		ch->failed = 1;
		return -1;
	}
	s = ch->line.p;
	while ((nl = memchr(s + off, '\n', ch->line.len - off)) != NULL) {
		*nl = '\0';
		if (sse_line(ch, s + off, nl - (s + off)) == -1)
			return -1;
		off = nl - s + 1;
	}
	memmove(s, s + off, ch->line.len - off);
	ch->line.len -= off;
	s[ch->line.len] = '\0';
	return 0;
}

/* A last line without its end, a last event without its empty line. */
static int
sse_end(struct chat *ch)
{
	if (ch->line.len > 0 && sse_line(ch, ch->line.p, ch->line.len) == -1)
		return -1;
	ch->line.len = 0;
	return sse_event(ch);
}

static size_t
chat_write(char *p, size_t size, size_t nmemb, void *arg)
{
	struct chat	*ch = arg;
	size_t		 n = size * nmemb;
	long		 code = 0;

	/* Only a 200 is a stream; anything else is an error to quote. */
	if (ch->stream && !ch->checked) {
		curl_easy_getinfo(ch->curl, CURLINFO_RESPONSE_CODE, &code);
		ch->sse = code == 200;
		ch->checked = 1;
	}
	if (ch->sse)
		return sse_feed(ch, p, n) == 0 ? n : 0;
	if (cbuf_add(&ch->body, p, n, CHAT_MAX_BODY) == -1) {
		fprintf(stderr, "flm chat: the answer is larger than %d MiB\n",
		    CHAT_MAX_BODY >> 20);
		ch->failed = 1;
		return 0;
	}
	return n;
}

/* "flm chat: 401: Incorrect API key provided." */
static int
chat_http_error(struct chat *ch, long code)
{
	struct json_object	*o;
	const char		*msg;

	o = ch->body.p ? json_tokener_parse(ch->body.p) : NULL;
	if ((msg = chat_errmsg(o)) != NULL)
		fprintf(stderr, "flm chat: %ld: %s\n", code, msg);
	else
		fprintf(stderr, "flm chat: %ld: the proxy refused the "
		    "request\n", code);
	json_object_put(o);
	return code == 401 || code == 403 ? FLM_EX_PERM : FLM_EX_ERROR;
}

/*
 * One request to the proxy: GET when body is NULL.  The answer is in
 * ch->body, or was printed as it came for a stream.  Returns an exit
 * code, having said what went wrong.
 */
static int
chat_http(struct chat *ch, const char *path, const char *body, long secs)
{
	static char		 ctype[] = "Content-Type: application/json";
	static char		 expect[] = "Expect:";
	static char		 ajson[] = "Accept: application/json";
	static char		 asse[] = "Accept: text/event-stream";
	struct curl_slist	 h[4];
	char			 url[256], err[CURL_ERROR_SIZE] = "";
	CURLcode		 rc;
	long			 code = 0, oserr = 0;

	snprintf(url, sizeof(url), "%s%s", ch->base, path);
	/* Our own list: libcurl neither copies nor frees the key's line. */
	h[0].data = ch->auth;
	h[1].data = expect;		/* no 100-continue round trip */
	h[2].data = ch->stream ? asse : ajson;
	h[3].data = ctype;
	h[0].next = &h[1];
	h[1].next = &h[2];
	h[2].next = body ? &h[3] : NULL;
	h[3].next = NULL;
	cbuf_free(&ch->body);
	curl_easy_reset(ch->curl);
	curl_easy_setopt(ch->curl, CURLOPT_URL, url);
	curl_easy_setopt(ch->curl, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(ch->curl, CURLOPT_USERAGENT, "flm/" PACKAGE_VERSION);
	/* The key goes to the proxy and nowhere else: no http_proxy. */
	curl_easy_setopt(ch->curl, CURLOPT_PROXY, "");
	curl_easy_setopt(ch->curl, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(ch->curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(ch->curl, CURLOPT_CONNECTTIMEOUT,
	    (long)CHAT_CONNECT_SECS);
	curl_easy_setopt(ch->curl, CURLOPT_TIMEOUT, secs);
	curl_easy_setopt(ch->curl, CURLOPT_ERRORBUFFER, err);
	curl_easy_setopt(ch->curl, CURLOPT_WRITEFUNCTION, chat_write);
	curl_easy_setopt(ch->curl, CURLOPT_WRITEDATA, ch);
	if (body != NULL)
		curl_easy_setopt(ch->curl, CURLOPT_POSTFIELDS, body);
	rc = curl_easy_perform(ch->curl);
	curl_easy_setopt(ch->curl, CURLOPT_HTTPHEADER, NULL);
	if (ch->failed)
		return FLM_EX_ERROR;
	if (rc == CURLE_COULDNT_CONNECT) {
		/* "Connection refused" says more than curl's summary. */
		curl_easy_getinfo(ch->curl, CURLINFO_OS_ERRNO, &oserr);
		fprintf(stderr, "flm chat: cannot connect to the proxy at %s: "
		    "%s; see flm proxy status\n", ch->base, oserr ?
		    strerror((int)oserr) : *err ? err : curl_easy_strerror(rc));
		return FLM_EX_ERROR;
	}
	if (rc != CURLE_OK) {
		fprintf(stderr, "flm chat: %s%s: %s\n", ch->base, path,
		    *err ? err : curl_easy_strerror(rc));
		return FLM_EX_ERROR;
	}
	curl_easy_getinfo(ch->curl, CURLINFO_RESPONSE_CODE, &code);
	if (code != 200)
		return chat_http_error(ch, code);
	return FLM_EX_OK;
}

/* Parse a buffered answer; NULL (said why) if it is not JSON. */
static struct json_object *
chat_parse(struct chat *ch, const char *what)
{
	struct json_object	*o;

	o = ch->body.p ? json_tokener_parse(ch->body.p) : NULL;
	if (o == NULL)
		fprintf(stderr, "flm chat: %s: the answer is not JSON\n", what);
	return o;
}

/*
 * The proxy to talk to, from flmd: the first one, or the one on
 * --port.  Fills ch->base.
 */
static int
chat_find_proxy(struct chat *ch)
{
	struct json_object	*res = NULL, *h = NULL, *v;
	const char		*bind, *mode;
	size_t			 i, n;
	int			 rc, port;

	if ((rc = cli_request(ch->c, IMSG_CTL_PROXY_STATUS, NULL, &res)) != 0)
		return rc;
	n = json_object_is_type(res, json_type_array) ?
	    json_object_array_length(res) : 0;
	for (i = 0; i < n && h == NULL; i++) {
		v = json_object_array_get_idx(res, i);
		if (!ch->c->port_set ||
		    json_object_get_int(jget(v, "port")) == ch->c->port)
			h = v;
	}
	if (h == NULL) {
		if (n == 0)
			fprintf(stderr, "flm chat: no proxy is running; start "
			    "one with: flm proxy start\n");
		else
			fprintf(stderr, "flm chat: no proxy on port %d; see "
			    "flm proxy status\n", ch->c->port);
		json_object_put(res);
		return FLM_EX_ERROR;
	}
	bind = json_object_get_string(jget(h, "bind"));
	mode = json_object_get_string(jget(h, "mode"));
	port = json_object_get_int(jget(h, "port"));
	if (bind == NULL || mode == NULL || strcmp(mode, "local-http") != 0) {
		fprintf(stderr, "flm chat: the proxy on port %d is in mode %s;"
		    " only local-http is supported\n", port,
		    mode ? mode : "(none)");
		json_object_put(res);
		return FLM_EX_ERROR;
	}
	/* A wildcard address is reached on loopback. */
	if (strcmp(bind, "0.0.0.0") == 0)
		bind = "127.0.0.1";
	else if (strcmp(bind, "::") == 0)
		bind = "::1";
	/* An IPv6 address goes in brackets in a URL. */
	snprintf(ch->base, sizeof(ch->base), "http://%s%s%s:%d/v1",
	    strchr(bind, ':') ? "[" : "", bind, strchr(bind, ':') ? "]" : "",
	    port);
	json_object_put(res);
	return FLM_EX_OK;
}

/* Without --model: the first model the proxy lists. */
static int
chat_first_model(struct chat *ch, char **model)
{
	struct json_object	*o, *d, *id;
	int			 rc;

	if ((rc = chat_http(ch, "/models", NULL, (long)CHAT_MODELS_SECS)) != 0)
		return rc;
	if ((o = chat_parse(ch, "/v1/models")) == NULL)
		return FLM_EX_ERROR;
	d = jget(o, "data");
	id = json_object_is_type(d, json_type_array) &&
	    json_object_array_length(d) > 0 ?
	    jget(json_object_array_get_idx(d, 0), "id") : NULL;
	if (!json_object_is_type(id, json_type_string)) {
		fprintf(stderr, "flm chat: the proxy offers no model; see flm "
		    "engines detect, or name one with --model\n");
		json_object_put(o);
		return FLM_EX_ERROR;
	}
	*model = strdup(json_object_get_string(id));
	json_object_put(o);
	if (*model == NULL) {
		fprintf(stderr, "flm chat: out of memory\n");
		return FLM_EX_ERROR;
	}
	return FLM_EX_OK;
}

static int
chat_answer(struct chat *ch)
{
	struct json_object	*o, *s;

	if ((o = chat_parse(ch, "/v1/chat/completions")) == NULL)
		return FLM_EX_ERROR;
	if (ch->c->json)
		print_json(o);
	else if ((s = chat_content(o, "message")) != NULL) {
		chat_print(s);
		putchar('\n');
	} else {
		fprintf(stderr, "flm chat: the answer has no "
		    "choices[0].message.content\n");
		json_object_put(o);
		return FLM_EX_ERROR;
	}
	json_object_put(o);
	return FLM_EX_OK;
}

static int
chat_send(struct chat *ch, const char *model, const char *message)
{
	struct json_object	*req, *msgs, *m;
	int			 rc;

	ch->stream = ch->c->stream;
	req = json_object_new_object();
	json_object_object_add(req, "model", json_object_new_string(model));
	msgs = json_object_new_array();
	m = json_object_new_object();
	json_object_object_add(m, "role", json_object_new_string("user"));
	json_object_object_add(m, "content", json_object_new_string(message));
	json_object_array_add(msgs, m);
	json_object_object_add(req, "messages", msgs);
	json_object_object_add(req, "stream",
	    json_object_new_boolean(ch->stream));
	/* No overall timeout: a model may think for a long time. */
	rc = chat_http(ch, "/chat/completions", json_object_to_json_string_ext(
	    req, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE), 0);
	json_object_put(req);
	if (rc != FLM_EX_OK)
		return rc;
	if (!ch->stream)
		return chat_answer(ch);
	if (sse_end(ch) == -1)
		return FLM_EX_ERROR;
	if (!ch->c->json)
		putchar('\n');
	if (!ch->done) {
		fprintf(stderr, "flm chat: the stream ended before "
		    "data: [DONE]\n");
		return FLM_EX_ERROR;
	}
	return FLM_EX_OK;
}

/*
 * The key: --key, or else FLM_API_KEY.  Copied into the header line we
 * send; the original is blanked at once, the --key argument so that
 * ps(1) shows it for as short a time as we can manage.
 */
static int
chat_key(struct chat *ch)
{
	char		*k = ch->c->key ? ch->c->key : getenv("FLM_API_KEY");
	const char	*pre = "Authorization: Bearer ";
	size_t		 kl, i;
	int		 rc = FLM_EX_OK;

	if (k == NULL || *k == '\0') {
		fprintf(stderr, "flm chat: no API key: set FLM_API_KEY (or "
		    "give --key); create one with: flm api-keys create "
		    "--label NAME\n");
		return FLM_EX_USAGE;
	}
	kl = strlen(k);
	for (i = 0; i < kl; i++)
		if ((unsigned char)k[i] <= ' ' || k[i] == 0x7f)
			break;	/* no header injection */
	if (i < kl || kl > CHAT_MAX_KEY) {
		fprintf(stderr, "flm chat: the API key is not a single word of "
		    "printable characters\n");
		rc = FLM_EX_USAGE;
	} else if ((ch->auth = malloc(strlen(pre) + kl + 1)) == NULL) {
		fprintf(stderr, "flm chat: out of memory\n");
		rc = FLM_EX_ERROR;
	} else {
		memcpy(ch->auth, pre, strlen(pre));
		memcpy(ch->auth + strlen(pre), k, kl + 1);
	}
	explicit_bzero(k, kl);
	return rc;
}

/* MESSAGE "-": the message is standard input (flm console), which no
 * other user can read as they can a command line. */
static int
chat_stdin(char **msg)
{
	size_t	 len = 0, n;
	char	*buf;

	if ((buf = malloc(CHAT_MAX_STDIN + 1)) == NULL) {
		fprintf(stderr, "flm chat: out of memory\n");
		return FLM_EX_ERROR;
	}
	while (len < CHAT_MAX_STDIN &&
	    (n = fread(buf + len, 1, CHAT_MAX_STDIN - len, stdin)) > 0)
		len += n;
	if (len == CHAT_MAX_STDIN && fgetc(stdin) != EOF) {
		fprintf(stderr, "flm chat: the message on standard input is "
		    "longer than %d bytes\n", CHAT_MAX_STDIN);
		free(buf);
		return FLM_EX_USAGE;
	}
	buf[len] = '\0';
	if (len == 0 || strlen(buf) != len) {
		fprintf(stderr, "flm chat: no message on standard input\n");
		free(buf);
		return FLM_EX_USAGE;
	}
	*msg = buf;
	return FLM_EX_OK;
}

static void
chat_free(struct chat *ch)
{
	if (ch->auth != NULL) {
		explicit_bzero(ch->auth, strlen(ch->auth));
		free(ch->auth);
	}
	if (ch->curl != NULL)
		curl_easy_cleanup(ch->curl);
	cbuf_free(&ch->body);
	cbuf_free(&ch->line);
	cbuf_free(&ch->data);
}

int
cmd_chat(struct cli *c, int argc, char **argv)
{
	struct chat	 ch;
	char		*model = NULL, *in = NULL;
	int		 rc;

	(void)argc;
	(void)argv;
	memset(&ch, 0, sizeof(ch));
	ch.c = c;
	if ((rc = chat_key(&ch)) != FLM_EX_OK)
		goto done;
	if (strcmp(c->args[0], "-") == 0 &&
	    (rc = chat_stdin(&in)) != FLM_EX_OK)
		goto done;
	if ((rc = chat_find_proxy(&ch)) != FLM_EX_OK)
		goto done;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK ||
	    (ch.curl = curl_easy_init()) == NULL) {
		fprintf(stderr, "flm chat: cannot set up libcurl\n");
		rc = FLM_EX_ERROR;
		goto done;
	}
	if (c->model == NULL &&
	    (rc = chat_first_model(&ch, &model)) != FLM_EX_OK)
		goto done;
	rc = chat_send(&ch, c->model ? c->model : model,
	    in != NULL ? in : c->args[0]);
 done:
	chat_free(&ch);
	free(model);
	free(in);
	curl_global_cleanup();
	return rc;
}
