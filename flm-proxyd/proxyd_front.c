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

#include "jscan.h"
#include "jsonbuf.h"
#include "proxyd.h"
#include "proxyd_front.h"

static void	front_error_event(enum dialect, int, const char *,
		    const char *, struct evbuffer *);

/* What each dialect does; DL_OPENAI is served by the router itself. */
static const struct front_ops {
	/* A request read where it lies, written as the OpenAI one. */
	int	(*request)(enum http_endpoint, const struct jval *, struct jw *,
	    enum http_endpoint *, char *, size_t);
	/* A whole chat answer, read, written; an answer of another kind
	 * (tokens counted, embeddings), as json-c read it. */
	int	(*answer)(struct front *, struct front_msg *, struct jw *);
	struct json_object *(*other)(struct front *, struct json_object *);
	int	(*chunk)(struct front *, const struct front_msg *,
	    struct evbuffer *);
	void	(*end)(struct front *, struct evbuffer *);
	const char *ctype;		/* of its streams */
} front_ops[] = {
	[DL_OLLAMA] = { fo_request, fo_answer, fo_embeddings, fo_chunk, fo_end,
	    "application/x-ndjson" },
	[DL_ANTHROPIC] = { fm_request, fm_answer, fm_count_answer, fm_chunk,
	    fm_end, "text/event-stream" },
	[DL_RESPONSES] = { fr_request, fr_answer, NULL, fr_chunk, fr_end,
	    "text/event-stream" },
};

/* A stream asked for, with the usage chunk every dialect reads. */
void
front_stream_write(struct jw *w)
{
	jw_key(w, "stream");
	jw_lit(w, "true");
	jw_key(w, "stream_options");
	jw_lit(w, "{\"include_usage\":true}");
}

/* ---- reading and writing ---------------------------------------------- */

/*
 * The scratch, kept from one request or answer to the next (a worker
 * is one thread): jscan's tables, the strings decoded, each followed
 * by a NUL, which a front_msg points into until the next read, and the
 * text being written.
 */
static struct {
	struct jscan	 js, str;
	char		*a;
	size_t		 alen, acap;
	struct jw	 w;		/* what is written */
	struct jscan	 args;		/* a tool call's arguments, judged */
} fscan;
#define FSCAN_KEEP	(256 * 1024)	/* of strings kept between reads */

/* A new read: the strings' room emptied, and what one large text
 * grew past FSCAN_KEEP (strings, or tables of many members) given
 * back. */
static void
front_scan_reset(void)
{
	struct jscan	*t[] = { &fscan.js, &fscan.str, &fscan.args };
	size_t		 i;

	fscan.alen = 0;
	if (fscan.acap > FSCAN_KEEP) {
		free(fscan.a);
		fscan.a = NULL;
		fscan.acap = 0;
	}
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (t[i]->kcap > FSCAN_KEEP || t[i]->mcap *
		    sizeof(*t[i]->m) > FSCAN_KEEP)
			jscan_free(t[i]);
}

/* The string at [vs, ve) decoded into the scratch: its offset, or -1
 * (not a string, no memory). */
static long
front_str(const char *b, size_t vs, size_t ve, size_t *len)
{
	struct jscan_member	 m;
	const char		*d;
	size_t			 n, cap;
	char			*p;

	if (b[vs] != '"')
		return -1;
	memset(&m, 0, sizeof(m));
	m.vofs = vs;
	m.vend = ve;
	m.type = JSCAN_STRING;
	if ((d = jscan_string_in(&fscan.str, b, &m, &n)) == NULL)
		return -1;
	if (fscan.alen + n + 1 > fscan.acap) {
		cap = fscan.acap * 2 > fscan.alen + n + 1 ? fscan.acap * 2 :
		    fscan.alen + n + 1;
		if ((p = realloc(fscan.a, cap)) == NULL)
			return -1;
		fscan.a = p;
		fscan.acap = cap;
	}
	memcpy(fscan.a + fscan.alen, d, n + 1);
	fscan.alen += n + 1;
	*len = n;
	return (long)(fscan.alen - n - 1);
}

/* A string read where it lies, decoded into the scratch; NULL if it
 * is none. */
const char *
front_cstr(const struct jval *v, size_t *len)
{
	long	 o;

	if (!jval_is(v, JSCAN_STRING) ||
	    (o = front_str(v->b, v->ofs, v->end, len)) == -1)
		return NULL;
	return fscan.a + o;
}

/* For "expected X, got Y" messages. */
const char *
front_what(const struct jval *v)
{
	static const struct {
		enum jscan_type	 t;
		const char	*what;
	} names[] = {
		{ JSCAN_NULL, "null" }, { JSCAN_BOOL, "a boolean" },
		{ JSCAN_INT, "a number" }, { JSCAN_DOUBLE, "a number" },
		{ JSCAN_OBJECT, "an object" }, { JSCAN_ARRAY, "an array" },
		{ JSCAN_STRING, "a string" },
	};
	size_t	 i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (jval_is(v, names[i].t))
			return names[i].what;
	return "a value";
}

/* The writer, emptied: its text lasts until the next call. */
struct jw *
front_writer(void)
{
	jw_reset(&fscan.w, FSCAN_KEEP);
	return &fscan.w;
}

/* ---- requests --------------------------------------------------------- */

static void
front_body_free(const void *data, size_t len, void *arg)
{
	(void)data;
	(void)len;
	free(arg);
}

/* The request written into body: copied if small, else handed over
 * (a long-context prompt is not copied again). */
static int
front_body(struct evbuffer *body, struct jw *w)
{
	char	*b;
	size_t	 len;

	if (w->len < FSCAN_KEEP / 4)
		return evbuffer_add(body, w->b, w->len);
	b = jw_take(w, &len);
	if (evbuffer_add_reference(body, b, len, front_body_free, b) == -1) {
		free(b);
		return -1;
	}
	return 0;
}

/*
 * The client's body read, checked and made the OpenAI request of
 * req->op in req->xbody; then next(req).  Answered here if it is bad.
 * The body is read where it lies and written as text: its strings,
 * long ones too, are copied as they are, never decoded.
 */
void
front_request(struct http_req *req, http_req_cb next)
{
	struct jw		*w = front_writer();
	struct jval		 in;
	enum http_endpoint	 op = EP_CHAT;
	const char		*buf;
	char			 msg[600];
	size_t			 len = evbuffer_get_length(req->body);

	buf = (const char *)evbuffer_pullup(req->body, -1);
	front_scan_reset();
	fscan.js.elem_key = NULL;
	if (buf == NULL || jscan_parse(&fscan.js, buf, len) == -1) {
		if ((buf == NULL && len > 0) || (buf != NULL &&
		    fscan.js.err == JSCAN_ENOMEM))
			http_error(req, 503, "server_error", NULL,
			    "Out of memory.");
		else
			http_error(req, 400, "invalid_request_error", NULL,
			    "We could not parse the JSON body of your "
			    "request: expected one JSON object.");
		return;
	}
	in.b = buf;
	in.n = len;
	in.ofs = fscan.js.oofs;
	in.end = fscan.js.oend + 1;
	in.js = &fscan.js;		/* its members and theirs: a table */
	in.at = -1;
	msg[0] = '\0';
	if (front_ops[req->dialect].request(req->ep, &in, w, &op, msg,
	    sizeof(msg)) == -1) {
		http_error(req, 400, "invalid_request_error", NULL, msg);
		return;
	}
	if (w->err || (req->xbody = evbuffer_new()) == NULL ||
	    front_body(req->xbody, w) == -1) {
		http_error(req, 503, "server_error", NULL, "Out of memory.");
		return;
	}
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

/* An integer at [vs, ve), as json-c's int type; else 0. */
static int64_t
front_int(const char *b, size_t vs, size_t ve)
{
	size_t	 i;

	if (b[vs] != '-' && (b[vs] < '0' || b[vs] > '9'))
		return 0;
	for (i = vs; i < ve; i++)
		if (b[i] == '.' || b[i] == 'e' || b[i] == 'E')
			return 0;	/* a double */
	return strtoll(b + vs, NULL, 10);
}

/* Member k of the object at [vs, ...), if it is one: its span. */
static int
front_member(const char *b, size_t n, size_t vs, const char *k, size_t *cs,
    size_t *ce)
{
	return b[vs] == '{' ? jscan_get(b, n, vs, k, cs, ce) : -1;
}

/* One tool call of the array element at [vs, ...) into c; the offsets
 * of its strings, or -1, in o[3]. */
static void
front_call_scan(const char *b, size_t n, size_t vs, size_t i,
    struct front_call *c, long o[3])
{
	size_t	 cs, ce, fs, fe, len;

	memset(c, 0, sizeof(*c));
	o[0] = o[1] = o[2] = -1;
	c->index = front_member(b, n, vs, "index", &cs, &ce) == 0 &&
	    b[cs] != 'n' ? (int)front_int(b, cs, ce) : (int)i;
	if (front_member(b, n, vs, "id", &cs, &ce) == 0)
		o[0] = front_str(b, cs, ce, &len);
	if (front_member(b, n, vs, "function", &fs, &fe) == -1)
		return;
	if (front_member(b, n, fs, "name", &cs, &ce) == 0)
		o[1] = front_str(b, cs, ce, &len);
	if (front_member(b, n, fs, "arguments", &cs, &ce) == 0 &&
	    (o[2] = front_str(b, cs, ce, &len)) != -1)
		c->alen = len;
}

/*
 * The first choice of an OpenAI answer's text (chunk: a stream's
 * delta) into m, read where it lies (lib/jscan.c), strings decoded
 * into the reader's scratch: no tree is built.  -1 if it is not the
 * shape OpenAI documents.  The text is fscan.js's, parsed.
 */
static int
front_msg_take(struct front *fr, const char *b, size_t n, int chunk,
    struct front_msg *m)
{
	static long		 off[FRONT_MAX_TOOLS][3];
	struct jscan		*js = &fscan.js;
	size_t			 at, cs, ce, ms, me, ts, te, len, i;
	long			 text = -1, fin = -1;
	int			 k, j, msg;

	memset(m, 0, offsetof(struct front_msg, calls));
	if ((k = jscan_find(js, -1, "usage")) != -1 &&
	    js->m[k].type == JSCAN_OBJECT) {
		m->has_usage = 1;
		if ((j = jscan_find(js, k, "prompt_tokens")) != -1 &&
		    js->m[j].type == JSCAN_INT)
			m->ptok = front_int(b, js->m[j].vofs, js->m[j].vend);
		if ((j = jscan_find(js, k, "completion_tokens")) != -1 &&
		    js->m[j].type == JSCAN_INT)
			m->ctok = front_int(b, js->m[j].vofs, js->m[j].vend);
	}
	if ((k = jscan_find(js, -1, "choices")) == -1 ||
	    js->m[k].type != JSCAN_ARRAY)
		return -1;
	at = js->m[k].vofs;
	if (jscan_next(b, n, &at, &cs, &ce) == -1)
		return chunk ? 0 : -1;	/* the usage chunk */
	if (front_member(b, n, cs, "finish_reason", &ms, &me) == 0)
		fin = front_str(b, ms, me, &len);
	msg = front_member(b, n, cs, chunk ? "delta" : "message", &ms,
	    &me) == 0;
	if ((msg ? front_member(b, n, ms, "content", &ts, &te) :
	    front_member(b, n, cs, "text", &ts, &te)) == 0 &&
	    (text = front_str(b, ts, te, &len)) != -1)
		m->tlen = len;
	if (msg && front_member(b, n, ms, "tool_calls", &ts, &te) == 0 &&
	    b[ts] == '[') {
		at = ts;
		for (i = 0; jscan_next(b, n, &at, &cs, &ce) == 0; i++) {
			if (i == FRONT_MAX_TOOLS) {
				fr->why = FRONT_TOO_MANY;
				return -1;
			}
			front_call_scan(b, n, cs, i, &m->calls[i], off[i]);
		}
		m->ncalls = (int)i;
	}
	/* The scratch is whole now: offsets become pointers. */
	m->text = text != -1 ? fscan.a + text : NULL;
	m->finish = fin != -1 ? fscan.a + fin : NULL;
	for (k = 0; k < m->ncalls; k++) {
		m->calls[k].id = off[k][0] != -1 ? fscan.a + off[k][0] : NULL;
		m->calls[k].name = off[k][1] != -1 ? fscan.a + off[k][1] : NULL;
		m->calls[k].args = off[k][2] != -1 ? fscan.a + off[k][2] : NULL;
	}
	return 0;
}

/* The same of a text not parsed yet; -1 too if it is not RFC 8259. */
int
front_msg_scan(struct front *fr, const char *b, size_t n, int chunk,
    struct front_msg *m)
{
	front_scan_reset();
	if (jscan_parse(&fscan.js, b, n) == -1)
		return -1;
	return front_msg_take(fr, b, n, chunk, m);
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

/* A tool call's arguments (a JSON text) written as an object; {} if
 * none, the text as a string if it is not an object (a model's
 * mistake, kept). */
void
front_args_write(struct jw *w, const char *s, size_t len)
{
	if (s == NULL || len == 0)
		jw_lit(w, "{}");
	else if (jscan_parse(&fscan.args, s, len) == 0)
		jw_raw(w, s, len);
	else
		jw_str(w, s, len);
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

/* One named SSE event, its data written. */
void
front_event_text(struct evbuffer *out, const char *name, const struct jw *w)
{
	evbuffer_add(out, "event: ", 7);
	evbuffer_add(out, name, strlen(name));
	evbuffer_add(out, "\ndata: ", 7);
	evbuffer_add(out, w->b, w->len);
	evbuffer_add(out, "\n\n", 2);
}

static void
front_end(struct front *fr, struct evbuffer *out)
{
	if (fr->done)
		return;
	front_ops[fr->dl].end(fr, out);
	fr->done = 1;
}

/* An engine's error in its stream (member k of the parsed line): the
 * client's dialect says it. */
static void
front_stream_fail(struct front *fr, const char *b, int k,
    struct evbuffer *out)
{
	const struct jscan_member *e = &fscan.js.m[k];
	const char		*msg = "The engine failed during the answer.";
	size_t			 len;
	long			 o = -1;
	int			 j;

	if (e->type == JSCAN_OBJECT &&
	    (j = jscan_find(&fscan.js, k, "message")) != -1)
		o = front_str(b, fscan.js.m[j].vofs, fscan.js.m[j].vend, &len);
	else if (e->type == JSCAN_STRING)
		o = front_str(b, e->vofs, e->vend, &len);
	if (o != -1)
		msg = fscan.a + o;
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
	struct front_msg	 m;
	int			 rc, k;

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
	front_scan_reset();
	if (jscan_parse(&fscan.js, line, n) == -1)
		return -1;
	if ((k = jscan_find(&fscan.js, -1, "error")) != -1 &&
	    fscan.js.m[k].type != JSCAN_NULL) {
		front_stream_fail(fr, line, k, out);
		return 0;
	}
	if ((rc = front_msg_take(fr, line, n, 1, &m)) == 0) {
		if (m.has_usage) {
			fr->ptok = m.ptok;
			fr->ctok = m.ctok;
		}
		if (m.finish != NULL)
			snprintf(fr->finish, sizeof(fr->finish), "%s",
			    m.finish);
		rc = front_ops[fr->dl].chunk(fr, &m, out);
	}
	return rc;
}

/* A json-c value's text into w. */
static void
front_json_write(struct jw *w, struct json_object *o)
{
	const char	*s;
	size_t		 len;

	s = json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN |
	    JSON_C_TO_STRING_NOSLASHESCAPE, &len);
	jw_raw(w, s, len);
}

/*
 * A whole OpenAI answer (its text) in the client's dialect: the text,
 * *outlen long, until the next request or answer; NULL if malformed.
 * Chat answers are read where they lie; tokens counted and embeddings,
 * which are mostly numbers to rewrite, by json-c.
 */
const char *
front_answer(struct front *fr, const char *buf, size_t len, size_t *outlen)
{
	const struct front_ops	*ops = &front_ops[fr->dl];
	struct json_object	*in, *out = NULL;
	struct front_msg	 m;
	struct jw		*w;

	if (fr->ep == EP_COUNT_TOKENS || fr->ep == EP_OLLAMA_EMBED ||
	    fr->ep == EP_OLLAMA_EMBEDDINGS) {
		if ((in = json_parse_buf(buf, len)) != NULL)
			out = ops->other(fr, in);
		json_object_put(in);
	} else {
		if (front_msg_scan(fr, buf, len, 0, &m) == -1)
			return NULL;
		fr->ptok = m.ptok;
		fr->ctok = m.ctok;
		snprintf(fr->finish, sizeof(fr->finish), "%s",
		    m.finish != NULL ? m.finish : "stop");
		if (ops->answer(fr, &m, w = front_writer()) == -1)
			return NULL;
		goto done;
	}
	if (out == NULL)
		return NULL;
	front_json_write(w = front_writer(), out);
	json_object_put(out);
done:
	if (w->err)
		return NULL;
	*outlen = w->len;
	return w->b;
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
