/*
 * Clients that speak another API than OpenAI's (Ollama's, Anthropic's
 * Messages): their request becomes the OpenAI one every engine serves,
 * and the OpenAI answer (whole, or a stream read chunk by chunk) is
 * said back in their dialect, errors included.  Requests are checked
 * here by the dialect's own rules, so the router's OpenAI checks never
 * see what a client of another API sent.  docs/PROXY_SPEC.md has the
 * mapping tables.
 */
#include "config.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <json-c/json.h>

#include "jsonbuf.h"
#include "proxyd.h"
#include "proxyd_front.h"

static void	front_error_event(enum dialect, int, const char *,
		    const char *, struct evbuffer *);

/* What each dialect does; DL_OPENAI is served by the router itself. */
static const struct front_ops {
	struct json_object *(*request)(enum http_endpoint, struct json_object *,
	    enum http_endpoint *, char *, size_t);
	struct json_object *(*answer)(struct front *, struct json_object *);
	int	(*chunk)(struct front *, const struct front_msg *,
	    struct evbuffer *);
	void	(*end)(struct front *, struct evbuffer *);
	const char *ctype;		/* of its streams */
} front_ops[] = {
	[DL_OLLAMA] = { fo_request, fo_answer, fo_chunk, fo_end,
	    "application/x-ndjson" },
	[DL_ANTHROPIC] = { fm_request, fm_answer, fm_chunk, fm_end,
	    "text/event-stream" },
	[DL_RESPONSES] = { fr_request, fr_answer, fr_chunk, fr_end,
	    "text/event-stream" },
};

/* Is v there, of type t?  Is it there, and not null? */
int
front_is(struct json_object *v, enum json_type t)
{
	return v != NULL && json_object_is_type(v, t);
}

int
front_set(struct json_object *v)
{
	return v != NULL && !json_object_is_type(v, json_type_null);
}

/* A stream asked for, with the usage chunk every dialect reads. */
void
front_stream_on(struct json_object *out)
{
	struct json_object	*so = json_object_new_object();

	jadd(so, "include_usage", json_object_new_boolean(1));
	jadd(out, "stream", json_object_new_boolean(1));
	jadd(out, "stream_options", so);
}

/* For "expected X, got Y" messages. */
const char *
front_type_name(struct json_object *v)
{
	switch (json_object_get_type(v)) {
	case json_type_null:	return "null";
	case json_type_boolean:	return "a boolean";
	case json_type_double:
	case json_type_int:	return "a number";
	case json_type_object:	return "an object";
	case json_type_array:	return "an array";
	case json_type_string:	return "a string";
	}
	return "a value";
}

/* ---- requests --------------------------------------------------------- */

/*
 * The fast way: the body's long strings set aside (proxyd_skel.c),
 * the rest translated, the strings put back.  0 with req->xbody and
 * *op; -1 to translate the whole body instead (nothing to set aside,
 * a placeholder where it cannot go, or any error: the slow way says
 * which).
 */
static int
front_request_skel(struct http_req *req, const char *buf, size_t len,
    enum http_endpoint *op)
{
	struct skel		 sk;
	struct json_object	*in, *out = NULL;
	struct evbuffer		*x;
	const char		*s;
	char			 msg[600];
	size_t			 n;
	int			 rv = -1;

	if (skel_make(buf, len, &sk) == -1)
		return -1;
	if ((in = json_parse_buf_strict(sk.text, sk.len)) != NULL &&
	    json_object_is_type(in, json_type_object))
		out = front_ops[req->dialect].request(req->ep, in, op, msg,
		    sizeof(msg));
	json_object_put(in);
	if (out != NULL && (x = evbuffer_new()) != NULL) {
		s = json_object_to_json_string_length(out,
		    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE,
		    &n);
		if (skel_splice(&sk, buf, s, n, x) == 0) {
			req->xbody = x;
			rv = 0;
		} else
			evbuffer_free(x);
	}
	json_object_put(out);
	skel_free(&sk);
	return rv;
}

/*
 * The client's body read, checked and made the OpenAI request of
 * req->op in req->xbody; then next(req).  Answered here if it is bad.
 */
void
front_request(struct http_req *req, http_req_cb next)
{
	struct json_object	*in, *out;
	const char		*buf, *s;
	char			 msg[600];
	size_t			 len = evbuffer_get_length(req->body);
	enum http_endpoint	 op = EP_CHAT;

	buf = (const char *)evbuffer_pullup(req->body, -1);
	if (buf != NULL && front_request_skel(req, buf, len, &op) == 0) {
		req->op = op;
		next(req);
		return;
	}
	if (buf == NULL || (in = json_parse_buf_strict(buf, len)) == NULL ||
	    !json_object_is_type(in, json_type_object)) {
		if (buf != NULL)
			json_object_put(in);
		http_error(req, 400, "invalid_request_error", NULL,
		    "The request body is not a JSON object.");
		return;
	}
	msg[0] = '\0';
	out = front_ops[req->dialect].request(req->ep, in, &op, msg,
	    sizeof(msg));
	json_object_put(in);
	if (out == NULL) {
		http_error(req, 400, "invalid_request_error", NULL, msg);
		return;
	}
	s = json_object_to_json_string_length(out, JSON_C_TO_STRING_PLAIN |
	    JSON_C_TO_STRING_NOSLASHESCAPE, &len);
	if ((req->xbody = evbuffer_new()) == NULL ||
	    evbuffer_add(req->xbody, s, len) == -1) {
		json_object_put(out);
		http_error(req, 503, "server_error", NULL, "Out of memory.");
		return;
	}
	json_object_put(out);
	req->op = op;
	next(req);
}

/* ---- answers ------------------------------------------------------------ */

struct front *
front_new(struct http_req *req, const char *model, int stream)
{
	struct front	*fr;

	if ((fr = calloc(1, sizeof(*fr))) == NULL)
		return NULL;
	if ((fr->model = strdup(model)) == NULL) {
		free(fr);
		return NULL;
	}
	fr->dl = req->dialect;
	fr->ep = req->ep;
	fr->reqid = req->id;
	fr->start = req->start;
	fr->stream = stream;
	fr->block = -1;
	fr->msg_item = -1;
	return fr;
}

void
front_free(struct front *fr)
{
	int	 i;

	if (fr == NULL)
		return;
	for (i = 0; i < fr->ntools; i++)
		free(fr->tools[i].args);
	free(fr->tools);
	free(fr->text);
	free(fr->model);
	free(fr);
}

const char *
front_ctype(const struct front *fr)
{
	return front_ops[fr->dl].ctype;
}

/* Why the engine's answer could not be translated, if it was said. */
const char *
front_why(const struct front *fr)
{
	return fr->why;
}

int
front_done(const struct front *fr)
{
	return fr->done;
}

int64_t
front_elapsed_ns(const struct front *fr)
{
	struct timespec	 now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (int64_t)(now.tv_sec - fr->start.tv_sec) * 1000000000 +
	    (now.tv_nsec - fr->start.tv_nsec);
}

static int64_t
front_count(struct json_object *u, const char *k)
{
	struct json_object	*v = json_get(u, k);

	return v != NULL && json_object_is_type(v, json_type_int) ?
	    json_object_get_int64(v) : 0;
}

/*
 * The first choice of an OpenAI answer (chunk: a stream's delta) into
 * m.  -1 if it is not the shape OpenAI documents.
 */
int
front_msg_read(struct front *fr, struct json_object *o, int chunk,
    struct front_msg *m)
{
	struct json_object	*ch, *c, *msg, *v, *tc, *t, *f;
	size_t			 i;

	memset(m, 0, offsetof(struct front_msg, calls));
	if ((v = json_get(o, "usage")) != NULL &&
	    json_object_is_type(v, json_type_object)) {
		m->has_usage = 1;
		m->ptok = front_count(v, "prompt_tokens");
		m->ctok = front_count(v, "completion_tokens");
	}
	if ((ch = json_get(o, "choices")) == NULL ||
	    !json_object_is_type(ch, json_type_array))
		return -1;
	if (json_object_array_length(ch) == 0)
		return chunk ? 0 : -1;	/* the usage chunk */
	c = json_object_array_get_idx(ch, 0);
	if ((v = json_get(c, "finish_reason")) != NULL &&
	    json_object_is_type(v, json_type_string))
		m->finish = json_object_get_string(v);
	msg = json_get(c, chunk ? "delta" : "message");
	if (msg == NULL) {	/* a completion's text */
		v = json_get(c, "text");
	} else
		v = json_get(msg, "content");
	if (v != NULL && json_object_is_type(v, json_type_string)) {
		m->text = json_object_get_string(v);
		m->tlen = (size_t)json_object_get_string_len(v);
	}
	if ((tc = json_get(msg, "tool_calls")) == NULL ||
	    !json_object_is_type(tc, json_type_array))
		return 0;
	if (json_object_array_length(tc) > FRONT_MAX_TOOLS) {
		fr->why = FRONT_TOO_MANY;
		return -1;
	}
	for (i = 0; i < json_object_array_length(tc); i++) {
		t = json_object_array_get_idx(tc, i);
		memset(&m->calls[m->ncalls], 0, sizeof(m->calls[0]));
		f = json_get(t, "function");
		m->calls[m->ncalls].index = (v = json_get(t, "index")) != NULL ?
		    json_object_get_int(v) : (int)i;
		if ((v = json_get(t, "id")) != NULL &&
		    json_object_is_type(v, json_type_string))
			m->calls[m->ncalls].id = json_object_get_string(v);
		if ((v = json_get(f, "name")) != NULL &&
		    json_object_is_type(v, json_type_string))
			m->calls[m->ncalls].name = json_object_get_string(v);
		if ((v = json_get(f, "arguments")) != NULL &&
		    json_object_is_type(v, json_type_string)) {
			m->calls[m->ncalls].args = json_object_get_string(v);
			m->calls[m->ncalls].alen =
			    (size_t)json_object_get_string_len(v);
		}
		m->ncalls++;
	}
	return 0;
}

/*
 * A tool call's piece into the calls assembled so far; *isnew if it
 * began one.  The tool's slot, or -1 (too many, too long, no memory).
 */
int
front_tool_add(struct front *fr, const struct front_call *c, int *isnew)
{
	struct front_tool	*t = NULL;
	char			*p;
	int			 i;

	*isnew = 0;
	for (i = 0; i < fr->ntools; i++)
		if (fr->tools[i].index == c->index)
			t = &fr->tools[i];
	if (t == NULL) {
		if (fr->ntools == FRONT_MAX_TOOLS) {
			fr->why = FRONT_TOO_MANY;
			return -1;
		}
		if (fr->ntools == fr->toolcap) {
			if ((t = reallocarray(fr->tools, fr->toolcap + 4,
			    sizeof(*t))) == NULL)
				return -1;
			fr->tools = t;
			fr->toolcap += 4;
		}
		t = &fr->tools[fr->ntools++];
		memset(t, 0, sizeof(*t));
		t->index = c->index;
		t->block = -1;
		if (c->id != NULL)
			snprintf(t->id, sizeof(t->id), "%s", c->id);
		else
			snprintf(t->id, sizeof(t->id), "call_flm%llx_%d",
			    (unsigned long long)fr->reqid, c->index);
		*isnew = 1;
	}
	if (c->name != NULL && t->name[0] == '\0')
		snprintf(t->name, sizeof(t->name), "%s", c->name);
	if (c->alen > 0) {
		if (t->alen + c->alen > FRONT_MAX_ARGS) {
			fr->why = "a tool call's arguments are longer than "
			    "1 MiB, more than FLM translates.";
			return -1;
		}
		if ((p = realloc(t->args, t->alen + c->alen + 1)) == NULL)
			return -1;
		t->args = p;
		memcpy(t->args + t->alen, c->args, c->alen);
		t->alen += c->alen;
		t->args[t->alen] = '\0';
	}
	return (int)(t - fr->tools);
}

/* Text of the answer kept whole (Responses repeats it at the end). */
int
front_text_add(struct front *fr, const char *s, size_t n)
{
	char	*p;
	size_t	 cap;

	if (n == 0)
		return 0;
	if (fr->tlen + n > FRONT_MAX_TEXT)
		return -1;
	if (fr->tlen + n + 1 > fr->tcap) {
		for (cap = fr->tcap ? fr->tcap : 256; cap < fr->tlen + n + 1;)
			cap *= 2;
		if ((p = realloc(fr->text, cap)) == NULL)
			return -1;
		fr->text = p;
		fr->tcap = cap;
	}
	memcpy(fr->text + fr->tlen, s, n);
	fr->tlen += n;
	fr->text[fr->tlen] = '\0';
	return 0;
}

/* A tool call's arguments (a JSON text) as an object; {} if none,
 * the text itself if it is not JSON (a model's mistake, kept). */
struct json_object *
front_args_object(const char *s, size_t len)
{
	struct json_object	*o;

	if (s == NULL || len == 0)
		return json_object_new_object();
	if ((o = json_parse_buf(s, len)) != NULL &&
	    json_object_is_type(o, json_type_object))
		return o;
	json_object_put(o);
	return json_object_new_string_len(s, (int)len);
}

static void
front_put(struct evbuffer *out, struct json_object *o)
{
	const char	*s;
	size_t		 len;

	s = json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN |
	    JSON_C_TO_STRING_NOSLASHESCAPE, &len);
	evbuffer_add(out, s, len);
}

/* One NDJSON line; takes o. */
void
front_ndjson(struct evbuffer *out, struct json_object *o)
{
	front_put(out, o);
	evbuffer_add(out, "\n", 1);
	json_object_put(o);
}

/* One named SSE event; takes o. */
void
front_event(struct evbuffer *out, const char *name, struct json_object *o)
{
	evbuffer_add_printf(out, "event: %s\ndata: ", name);
	front_put(out, o);
	evbuffer_add(out, "\n\n", 2);
	json_object_put(o);
}

static void
front_end(struct front *fr, struct evbuffer *out)
{
	if (fr->done)
		return;
	front_ops[fr->dl].end(fr, out);
	fr->done = 1;
}

/* An engine's error in its stream: the client's dialect says it. */
static void
front_stream_fail(struct front *fr, struct json_object *o,
    struct evbuffer *out)
{
	struct json_object	*e = json_get(o, "error"), *m;
	const char		*msg = "The engine failed during the answer.";

	if ((m = json_get(e, "message")) != NULL &&
	    json_object_is_type(m, json_type_string))
		msg = json_object_get_string(m);
	else if (json_object_is_type(e, json_type_string))
		msg = json_object_get_string(e);
	front_error_event(fr->dl, 500, NULL, msg, out);
	fr->done = 1;
}

/* SSE's fields other than data (WHATWG HTML 9.2.6): an engine may send
 * them; they carry nothing of the answer. */
static int
front_sse_field(const char *line, size_t n)
{
	static const char *const fields[] = { "event", "id", "retry" };
	size_t			 i, k;

	for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		k = strlen(fields[i]);
		if (n >= k && memcmp(line, fields[i], k) == 0 &&
		    (n == k || line[k] == ':'))
			return 1;
	}
	return 0;
}

/*
 * One line of an OpenAI SSE stream: what it says, in the client's
 * dialect, into out.  -1 if it is not an OpenAI stream's line.
 */
int
front_sse(struct front *fr, const char *line, size_t n, struct evbuffer *out)
{
	struct json_object	*o;
	struct front_msg	 m;
	int			 rc;

	while (n > 0 && (line[n - 1] == '\r' || line[n - 1] == ' '))
		n--;
	if (fr->done || n == 0 || line[0] == ':' || front_sse_field(line, n))
		return 0;
	if (n < 5 || memcmp(line, "data:", 5) != 0)
		return -1;
	for (line += 5, n -= 5; n > 0 && *line == ' '; line++, n--)
		;
	if (n == 6 && memcmp(line, "[DONE]", 6) == 0) {
		front_end(fr, out);
		return 0;
	}
	if ((o = json_parse_buf(line, n)) == NULL ||
	    !json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		return -1;
	}
	if (json_get(o, "error") != NULL) {
		front_stream_fail(fr, o, out);
		json_object_put(o);
		return 0;
	}
	if ((rc = front_msg_read(fr, o, 1, &m)) == 0) {
		if (m.has_usage) {
			fr->ptok = m.ptok;
			fr->ctok = m.ctok;
		}
		if (m.finish != NULL)
			snprintf(fr->finish, sizeof(fr->finish), "%s",
			    m.finish);
		rc = front_ops[fr->dl].chunk(fr, &m, out);
	}
	json_object_put(o);
	return rc;
}

/* A whole OpenAI answer in the client's dialect; NULL if malformed. */
struct json_object *
front_answer(struct front *fr, struct json_object *o)
{
	return front_ops[fr->dl].answer(fr, o);
}

/* ---- errors -------------------------------------------------------------- */

/* Anthropic's error types, by status. */
const char *
fm_error_type(int status)
{
	switch (status) {
	case 400:
	case 405:
	case 411:
	case 417:
	case 431:	return "invalid_request_error";
	case 401:	return "authentication_error";
	case 403:	return "permission_error";
	case 404:	return "not_found_error";
	case 413:	return "request_too_large";
	case 429:	return "rate_limit_error";
	case 503:
	case 529:	return "overloaded_error";
	case 504:	return "timeout_error";
	}
	return "api_error";
}

/* An error in the dialect's shape (OpenAI's: type, code, param). */
struct json_object *
front_error_json(enum dialect dl, int status, const char *type,
    const char *code, const char *param, const char *msg)
{
	struct json_object	*o = json_object_new_object();
	struct json_object	*e;

	if (dl == DL_OLLAMA) {
		jadd(o, "error", jstr(msg));
		return o;
	}
	e = json_object_new_object();
	if (dl == DL_ANTHROPIC) {
		jadd(o, "type", jstr("error"));
		jadd(e, "type", jstr(fm_error_type(status)));
		jadd(e, "message", jstr(msg));
		jadd(o, "error", e);
		return o;
	}
	jadd(e, "message", jstr(msg));
	jadd(e, "type", jstr(type != NULL ? type : status < 500 ?
	    "invalid_request_error" : "server_error"));
	jadd(e, "param", param != NULL ? jstr(param) : NULL);
	jadd(e, "code", code != NULL ? jstr(code) : NULL);
	jadd(o, "error", e);
	return o;
}

/* An error as a stream of the dialect says it: an SSE error event
 * (Anthropic's and Responses' named "error"), Ollama's {"error"} line. */
static void
front_error_event(enum dialect dl, int status, const char *code,
    const char *msg, struct evbuffer *out)
{
	struct json_object	*o;

	if (dl == DL_RESPONSES) {
		o = json_object_new_object();
		jadd(o, "type", jstr("error"));
		jadd(o, "code", jstr(code != NULL ? code : "server_error"));
		jadd(o, "message", jstr(msg));
		jadd(o, "param", NULL);
		front_event(out, "error", o);
		return;
	}
	o = front_error_json(dl, status, "server_error", code, NULL, msg);
	if (dl == DL_OLLAMA)
		front_ndjson(out, o);
	else if (dl == DL_ANTHROPIC)
		front_event(out, "error", o);
	else {
		evbuffer_add(out, "data: ", 6);
		front_put(out, o);
		evbuffer_add(out, "\n\n", 2);
		json_object_put(o);
	}
}

/*
 * A stream cut by its engine ends with an error the client's library
 * reads, then properly: the client sees why, not a dropped connection.
 */
void
front_stream_error(struct http_req *req, int status, const char *code,
    const char *msg)
{
	struct evbuffer		*out = evbuffer_new();

	if (out == NULL) {
		http_stream_abort(req);
		return;
	}
	front_error_event(req->dialect, status, code, msg, out);
	http_stream_move(req, out, evbuffer_get_length(out));
	evbuffer_free(out);
	req->end_status = status;
	http_stream_end(req);
}
