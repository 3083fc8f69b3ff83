/*
 * Ollama's own API for its clients (the ollama libraries, Open WebUI):
 * /api/chat, /api/generate, /api/embed and /api/embeddings become
 * OpenAI requests for engines of other kinds, and their answers NDJSON
 * lines with Ollama's counts and durations.  An Ollama engine gets the
 * client's request as it is (proxyd_route.c); /api/tags, /api/show and
 * /api/version are answered from the catalogue.  Ollama's admin routes
 * (pull, push, create, copy, delete, blobs) are served by no one.
 * Requests are read where they lie and written as text, as Messages'.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <json-c/json.h>

#include "jscan.h"
#include "jsonbuf.h"
#include "jwrite.h"
#include "proxyd.h"
#include "proxyd_front.h"

/* ---- requests --------------------------------------------------------- */

/* Options OpenAI also has, under its names; all numbers but stop. */
static const struct {
	const char	*ollama;
	const char	*openai;
	int		 integer;
} fo_opts[] = {
	{ "temperature", "temperature", 0 },
	{ "top_p", "top_p", 0 },
	{ "top_k", "top_k", 1 },
	{ "seed", "seed", 1 },
	{ "num_predict", "max_tokens", 1 },
	{ "presence_penalty", "presence_penalty", 0 },
	{ "frequency_penalty", "frequency_penalty", 0 },
};

static int
fo_options(struct jw *w, const struct jval *in, char *err, size_t errsz)
{
	struct jval	 o, v;
	size_t		 i;

	if (jval_get(in, "options", &o) == -1 || !jval_set(&o))
		return 0;
	if (!jval_is(&o, JSCAN_OBJECT)) {
		snprintf(err, errsz, "options: expected an object, got %s",
		    front_what(&o));
		return -1;
	}
	for (i = 0; i < sizeof(fo_opts) / sizeof(fo_opts[0]); i++) {
		if (jval_get(&o, fo_opts[i].ollama, &v) == -1 || !jval_set(&v))
			continue;
		if (!jval_is(&v, JSCAN_INT) && (fo_opts[i].integer ||
		    !jval_is(&v, JSCAN_DOUBLE))) {
			snprintf(err, errsz, "options.%s: expected %s, got %s",
			    fo_opts[i].ollama, fo_opts[i].integer ?
			    "an integer" : "a number", front_what(&v));
			return -1;
		}
		/* Ollama's -1 (and -2) mean "no limit": OpenAI's absence. */
		if (strcmp(fo_opts[i].ollama, "num_predict") == 0 &&
		    jval_int(&v) < 0)
			continue;
		jw_key(w, fo_opts[i].openai);
		front_copy(w, &v);
	}
	if (jval_get(&o, "stop", &v) == 0 && jval_set(&v)) {
		if (!jval_is(&v, JSCAN_ARRAY) && !jval_is(&v, JSCAN_STRING)) {
			snprintf(err, errsz, "options.stop: expected a list of "
			    "strings, got %s", front_what(&v));
			return -1;
		}
		jw_key(w, "stop");
		front_copy(w, &v);
	}
	return 0;
}

/* format: "json", or a JSON schema the answer must follow. */
static int
fo_format(struct jw *w, const struct jval *in, char *err, size_t errsz)
{
	struct jval	 f;

	if (jval_get(in, "format", &f) == -1 || !jval_set(&f) ||
	    (jval_is(&f, JSCAN_STRING) && f.end - f.ofs == 2))
		return 0;
	if (jval_streq(&f, "json")) {
		jw_key(w, "response_format");
		jw_lit(w, "{\"type\":\"json_object\"}");
		return 0;
	}
	if (!jval_is(&f, JSCAN_OBJECT)) {
		snprintf(err, errsz, "format: expected \"json\" or a JSON "
		    "schema");
		return -1;
	}
	jw_key(w, "response_format");
	jw_open(w, '{');
	jw_key(w, "type");
	jw_lit(w, "\"json_schema\"");
	jw_key(w, "json_schema");
	jw_open(w, '{');
	jw_key(w, "name");
	jw_lit(w, "\"response\"");
	jw_key(w, "schema");
	front_copy(w, &f);
	jw_close(w, '}');
	jw_close(w, '}');
	return 0;
}

/* The fields every generating request has: model, stream, options. */
static int
fo_common(struct jw *w, const struct jval *in, char *err, size_t errsz)
{
	struct jval	 v;

	jval_get(in, "model", &v);
	if (!jval_is(&v, JSCAN_STRING) || v.end - v.ofs == 2) {
		snprintf(err, errsz, "model is required");
		return -1;
	}
	jw_key(w, "model");
	front_copy(w, &v);
	jval_get(in, "stream", &v);
	if (jval_set(&v) && !jval_is(&v, JSCAN_BOOL)) {
		snprintf(err, errsz, "stream: expected a boolean, got %s",
		    front_what(&v));
		return -1;
	}
	/* Ollama streams unless told not to. */
	if (!jval_set(&v) || v.b[v.ofs] == 't')
		front_stream_write(w);
	return fo_options(w, in, err, errsz) == -1 ||
	    fo_format(w, in, err, errsz) == -1 ? -1 : 0;
}

/* A message's text and images as OpenAI content. */
static int
fo_content(struct jw *w, const struct jval *text, const struct jval *images,
    const char *where, char *err, size_t errsz)
{
	struct jval	 img;
	size_t		 at = 0, i;

	if (jval_set(text) && !jval_is(text, JSCAN_STRING)) {
		snprintf(err, errsz, "%s: expected a string, got %s", where,
		    front_what(text));
		return -1;
	}
	if (!jval_set(images)) {
		if (jval_is(text, JSCAN_STRING))
			front_copy(w, text);
		else
			jw_lit(w, "\"\"");
		return 0;
	}
	if (!jval_is(images, JSCAN_ARRAY)) {
		snprintf(err, errsz, "images: expected a list of base64 "
		    "strings, got %s", front_what(images));
		return -1;
	}
	jw_open(w, '[');
	jw_open(w, '{');
	jw_key(w, "type");
	jw_lit(w, "\"text\"");
	jw_key(w, "text");
	if (jval_is(text, JSCAN_STRING))
		front_copy(w, text);
	else
		jw_lit(w, "\"\"");
	jw_close(w, '}');
	for (i = 0; jval_next(images, &at, &img) == 0; i++) {
		if (!jval_is(&img, JSCAN_STRING)) {
			snprintf(err, errsz, "images[%zu]: expected a base64 "
			    "string", i);
			return -1;
		}
		/* Ollama takes raw base64; OpenAI engines a data: URL. */
		jw_open(w, '{');
		jw_key(w, "type");
		jw_lit(w, "\"image_url\"");
		jw_key(w, "image_url");
		jw_open(w, '{');
		jw_key(w, "url");
		jw_sopen(w);
		jw_sraw(w, "data:image/png;base64,", 22);
		front_inside(w, &img);
		jw_sclose(w);
		jw_close(w, '}');
		jw_close(w, '}');
	}
	jw_close(w, ']');
	return 0;
}

/* An assistant's tool calls: arguments objects become JSON texts;
 * their number, or -1. */
static long
fo_tool_calls(struct jw *w, const struct jval *tc, size_t mi, char *err,
    size_t errsz)
{
	struct jval	 t, f, name, args;
	char		 id[48];
	size_t		 at = 0, i;
	int		 n;

	if (!jval_is(tc, JSCAN_ARRAY)) {
		snprintf(err, errsz, "messages[%zu].tool_calls: expected a "
		    "list", mi);
		return -1;
	}
	jw_key(w, "tool_calls");
	jw_open(w, '[');
	for (i = 0; jval_next(tc, &at, &t) == 0; i++) {
		jval_get(&t, "function", &f);
		if (jval_get(&f, "name", &name) == -1 ||
		    !jval_is(&name, JSCAN_STRING)) {
			snprintf(err, errsz, "messages[%zu].tool_calls[%zu]: "
			    "expected a function with a name", mi, i);
			return -1;
		}
		jw_open(w, '{');
		jw_key(w, "id");
		n = snprintf(id, sizeof(id), "\"call_%zu_%zu\"", mi, i);
		jw_raw(w, id, (size_t)n);
		jw_key(w, "type");
		jw_lit(w, "\"function\"");
		jw_key(w, "function");
		jw_open(w, '{');
		jw_key(w, "name");
		front_copy(w, &name);
		jw_key(w, "arguments");
		if (jval_get(&f, "arguments", &args) == -1 || !jval_set(&args))
			jw_lit(w, "\"{}\"");
		else if (jval_is(&args, JSCAN_STRING))
			front_copy(w, &args);
		else
			jw_str(w, args.b + args.ofs, args.end - args.ofs);
		jw_close(w, '}');
		jw_close(w, '}');
	}
	jw_close(w, ']');
	return (long)i;
}

static int
fo_messages(struct jw *w, const struct jval *in, char *err, size_t errsz)
{
	static const char *const keys[] = { "role", "content", "images",
	    "tool_calls" };
	struct jval	 msgs, m, v[4], role;
	char		 where[40], id[48];
	size_t		 at = 0, i, lastcall = 0, seen = 0;
	long		 ncalls = 0;
	int		 n;

	jval_get(in, "messages", &msgs);
	if (!jval_is(&msgs, JSCAN_ARRAY) || jval_empty(&msgs)) {
		snprintf(err, errsz, "messages: expected a non-empty list");
		return -1;
	}
	jw_key(w, "messages");
	jw_open(w, '[');
	for (i = 0; jval_next(&msgs, &at, &m) == 0; i++) {
		jval_getv(&m, keys, 4, v);	/* one reading of each */
		role = v[0];
		if (!jval_is(&role, JSCAN_STRING)) {
			snprintf(err, errsz, "messages[%zu]: expected an "
			    "object with a string role", i);
			return -1;
		}
		snprintf(where, sizeof(where), "messages[%zu].content", i);
		jw_open(w, '{');
		jw_key(w, "role");
		front_copy(w, &role);
		jw_key(w, "content");
		if (fo_content(w, &v[1], &v[2], where, err, errsz) == -1)
			return -1;
		if (jval_set(&v[3])) {
			if ((ncalls = fo_tool_calls(w, &v[3], i, err,
			    errsz)) == -1)
				return -1;
			lastcall = i;
			seen = 0;
		}
		/* Ollama's tool answers follow their calls in order;
		 * OpenAI's name the call they answer. */
		if (jval_streq(&role, "tool")) {
			n = snprintf(id, sizeof(id), "\"call_%zu_%zu\"",
			    lastcall, seen < (size_t)ncalls ? seen : 0);
			seen++;
			jw_key(w, "tool_call_id");
			jw_raw(w, id, (size_t)n);
		}
		jw_close(w, '}');
	}
	jw_close(w, ']');
	return 0;
}

static int
fo_tools(struct jw *w, const struct jval *in, char *err, size_t errsz)
{
	struct jval	 tl, t, f, name;
	size_t		 at = 0, i;

	if (jval_get(in, "tools", &tl) == -1 || !jval_set(&tl))
		return 0;
	if (!jval_is(&tl, JSCAN_ARRAY)) {
		snprintf(err, errsz, "tools: expected a list, got %s",
		    front_what(&tl));
		return -1;
	}
	for (i = 0; jval_next(&tl, &at, &t) == 0; i++) {
		jval_get(&t, "function", &f);
		if (jval_get(&f, "name", &name) == -1 ||
		    !jval_is(&name, JSCAN_STRING)) {
			snprintf(err, errsz, "tools[%zu]: expected a function "
			    "with a name", i);
			return -1;
		}
	}
	if (i > 0) {
		jw_key(w, "tools");
		front_copy(w, &tl);
	}
	return 0;
}

/* /api/generate: a chat of one turn, or a raw completion. */
static int
fo_generate(struct jw *w, const struct jval *in, enum http_endpoint *op,
    char *err, size_t errsz)
{
	struct jval	 p, s, raw, c, img;

	jval_get(in, "prompt", &p);
	if (!jval_is(&p, JSCAN_STRING)) {
		snprintf(err, errsz, "prompt: expected a string, got %s",
		    !jval_set(&p) ? "nothing" : front_what(&p));
		return -1;
	}
	jval_get(in, "system", &s);
	if (jval_set(&s) && !jval_is(&s, JSCAN_STRING)) {
		snprintf(err, errsz, "system: expected a string, got %s",
		    front_what(&s));
		return -1;
	}
	if (jval_get(in, "raw", &raw) == 0 && jval_is(&raw, JSCAN_BOOL) &&
	    raw.b[raw.ofs] == 't') {
		*op = EP_COMPLETIONS;
		jw_key(w, "prompt");
		front_copy(w, &p);
		if (jval_get(in, "suffix", &c) == 0 &&
		    jval_is(&c, JSCAN_STRING)) {
			jw_key(w, "suffix");
			front_copy(w, &c);
		}
		return 0;
	}
	jw_key(w, "messages");
	jw_open(w, '[');
	if (jval_is(&s, JSCAN_STRING)) {
		jw_open(w, '{');
		jw_key(w, "role");
		jw_lit(w, "\"system\"");
		jw_key(w, "content");
		front_copy(w, &s);
		jw_close(w, '}');
	}
	jw_open(w, '{');
	jw_key(w, "role");
	jw_lit(w, "\"user\"");
	jw_key(w, "content");
	jval_get(in, "images", &img);
	if (fo_content(w, &p, &img, "prompt", err, errsz) == -1)
		return -1;
	jw_close(w, '}');
	jw_close(w, ']');
	return 0;
}

/* A string, or a non-empty list of strings. */
static int
fo_strings(const struct jval *v)
{
	struct jval	 e;
	size_t		 at = 0, n = 0;

	if (jval_is(v, JSCAN_STRING))
		return 1;
	if (!jval_is(v, JSCAN_ARRAY))
		return 0;
	for (; jval_next(v, &at, &e) == 0; n++)
		if (!jval_is(&e, JSCAN_STRING))
			return 0;
	return n > 0;
}

static int
fo_embed(struct jw *w, const struct jval *in, enum http_endpoint ep,
    char *err, size_t errsz)
{
	struct jval	 v, x;
	const char	*k = ep == EP_OLLAMA_EMBED ? "input" : "prompt";

	jval_get(in, "model", &v);
	if (!jval_is(&v, JSCAN_STRING) || v.end - v.ofs == 2) {
		snprintf(err, errsz, "model is required");
		return -1;
	}
	jval_get(in, k, &x);
	if (ep == EP_OLLAMA_EMBED ? !fo_strings(&x) :
	    !jval_is(&x, JSCAN_STRING)) {
		snprintf(err, errsz, "%s: expected %s", k, ep ==
		    EP_OLLAMA_EMBED ? "a string or a non-empty list of strings" :
		    "a string");
		return -1;
	}
	jw_key(w, "model");
	front_copy(w, &v);
	jw_key(w, "input");
	front_copy(w, &x);
	if (jval_get(in, "dimensions", &v) == 0 && jval_is(&v, JSCAN_INT)) {
		jw_key(w, "dimensions");
		front_copy(w, &v);
	}
	return 0;
}

/* /api/show: which model; Ollama's older clients say "name". */
static int
fo_show(struct jw *w, const struct jval *in, char *err, size_t errsz)
{
	struct jval	 v;

	if (jval_get(in, "model", &v) == -1 || !jval_is(&v, JSCAN_STRING))
		jval_get(in, "name", &v);
	if (!jval_is(&v, JSCAN_STRING) || v.end - v.ofs == 2) {
		snprintf(err, errsz, "model is required");
		return -1;
	}
	jw_key(w, "model");
	front_copy(w, &v);
	return 0;
}

/* The OpenAI request for Ollama request in at ep, its op in *op. */
int
fo_request(enum http_endpoint ep, const struct jval *in, struct jw *w,
    enum http_endpoint *op, char *err, size_t errsz)
{
	int	 rc;

	jw_open(w, '{');
	switch (ep) {
	case EP_OLLAMA_EMBED:
	case EP_OLLAMA_EMBEDDINGS:
		*op = EP_EMBEDDINGS;
		rc = fo_embed(w, in, ep, err, errsz);
		break;
	case EP_OLLAMA_SHOW:
		*op = EP_OLLAMA_SHOW;
		rc = fo_show(w, in, err, errsz);
		break;
	default:
		*op = EP_CHAT;
		if ((rc = fo_common(w, in, err, errsz)) == 0)
			rc = ep == EP_OLLAMA_CHAT ? (fo_messages(w, in, err,
			    errsz) == -1 || fo_tools(w, in, err, errsz) == -1 ?
			    -1 : 0) : fo_generate(w, in, op, err, errsz);
	}
	jw_close(w, '}');
	return rc;
}

/* ---- answers ------------------------------------------------------------ */

/* An answer's object opened: its model, and created_at as Ollama's
 * (RFC 3339 with nanoseconds, UTC). */
static void
fo_envelope(struct jw *w, const struct front *fr)
{
	struct timespec	 ts;
	struct tm	 tm;
	char		 buf[64];
	size_t		 n;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(buf, sizeof(buf), "\"%Y-%m-%dT%H:%M:%S", &tm);
	n += (size_t)snprintf(buf + n, sizeof(buf) - n, ".%09ldZ\"",
	    ts.tv_nsec);
	jw_open(w, '{');
	jw_key(w, "model");
	jw_str(w, fr->model, strlen(fr->model));
	jw_key(w, "created_at");
	jw_raw(w, buf, n);
}

static void
fo_calls(struct jw *w, const struct front_tool *t, int n)
{
	int	 i;

	jw_open(w, '[');
	for (i = 0; i < n; i++) {
		jw_open(w, '{');
		jw_key(w, "function");
		jw_open(w, '{');
		jw_key(w, "name");
		jw_str(w, t[i].name, strlen(t[i].name));
		jw_key(w, "arguments");
		front_args_write(w, t[i].args, t[i].alen);
		jw_close(w, '}');
		jw_close(w, '}');
	}
	jw_close(w, ']');
}

/* Text as Ollama's message (chat) or response (generate), with the
 * calls gathered if calls. */
static void
fo_text(struct jw *w, const struct front *fr, const char *text, size_t len,
    int calls)
{
	if (fr->ep == EP_OLLAMA_GENERATE) {
		jw_key(w, "response");
		jw_str(w, text, len);
		return;
	}
	jw_key(w, "message");
	jw_open(w, '{');
	jw_key(w, "role");
	jw_lit(w, "\"assistant\"");
	jw_key(w, "content");
	jw_str(w, text, len);
	if (calls) {
		jw_key(w, "tool_calls");
		fo_calls(w, fr->tools, fr->ntools);
	}
	jw_close(w, '}');
}

/* The last object's done, done_reason, counts and durations. */
static void
fo_final(struct jw *w, const struct front *fr)
{
	int64_t	 ns = front_elapsed_ns(fr);

	jw_key(w, "done_reason");
	jw_lit(w, strcmp(fr->finish, "length") == 0 ? "\"length\"" :
	    "\"stop\"");
	jw_key(w, "done");
	jw_lit(w, "true");
	jw_key(w, "total_duration");
	jw_int(w, ns);
	jw_key(w, "load_duration");
	jw_lit(w, "0");
	jw_key(w, "prompt_eval_count");
	jw_int(w, fr->ptok);
	jw_key(w, "prompt_eval_duration");
	jw_lit(w, "0");
	jw_key(w, "eval_count");
	jw_int(w, fr->ctok);
	jw_key(w, "eval_duration");
	jw_int(w, ns);
}

struct json_object *
fo_embeddings(struct front *fr, struct json_object *in)
{
	struct json_object	*data = json_get(in, "data"), *o, *list, *e;
	size_t			 i;

	if (data == NULL || !json_object_is_type(data, json_type_array))
		return NULL;
	list = json_object_new_array();
	for (i = 0; i < json_object_array_length(data); i++) {
		e = json_get(json_object_array_get_idx(data, i), "embedding");
		if (e == NULL || !json_object_is_type(e, json_type_array)) {
			json_object_put(list);
			return NULL;
		}
		json_object_array_add(list, json_object_get(e));
	}
	o = json_object_new_object();
	if (fr->ep == EP_OLLAMA_EMBEDDINGS) {
		e = json_object_array_length(list) > 0 ? json_object_get(
		    json_object_array_get_idx(list, 0)) :
		    json_object_new_array();
		json_object_put(list);
		jadd(o, "embedding", e);
		return o;
	}
	jadd(o, "model", jstr(fr->model));
	jadd(o, "embeddings", list);
	jadd(o, "total_duration", json_object_new_int64(front_elapsed_ns(fr)));
	jadd(o, "load_duration", json_object_new_int64(0));
	e = json_get(json_get(in, "usage"), "prompt_tokens");
	jadd(o, "prompt_eval_count", json_object_new_int64(e != NULL ?
	    json_object_get_int64(e) : 0));
	return o;
}

int
fo_answer(struct front *fr, struct front_msg *m, struct jw *w)
{
	int	 i, isnew;

	for (i = 0; i < m->ncalls; i++) {
		m->calls[i].index = i;
		if (front_tool_add(fr, &m->calls[i], &isnew) == -1)
			return -1;
	}
	fo_envelope(w, fr);
	fo_text(w, fr, m->text != NULL ? m->text : "", m->tlen,
	    m->ncalls > 0);
	fo_final(w, fr);
	jw_close(w, '}');
	return 0;
}

/* One NDJSON line: the object w opened, done or not. */
static void
fo_line(struct evbuffer *out, struct jw *w, const struct front *fr,
    int done)
{
	if (done)
		fo_final(w, fr);
	else {
		jw_key(w, "done");
		jw_lit(w, "false");
	}
	jw_close(w, '}');
	evbuffer_add(out, w->b, w->len);
	evbuffer_add(out, "\n", 1);
}

/* One chunk of an OpenAI stream: its text as a line; tool calls are
 * gathered (Ollama gives their arguments whole, as objects). */
int
fo_chunk(struct front *fr, const struct front_msg *m, struct evbuffer *out)
{
	struct jw	*w;
	int		 i, isnew;

	for (i = 0; i < m->ncalls; i++)
		if (front_tool_add(fr, &m->calls[i], &isnew) == -1)
			return -1;
	if (m->tlen == 0)
		return 0;
	fo_envelope(w = front_writer(), fr);
	fo_text(w, fr, m->text, m->tlen, 0);
	fo_line(out, w, fr, 0);
	return 0;
}

void
fo_end(struct front *fr, struct evbuffer *out)
{
	struct jw	*w;

	if (fr->ntools > 0) {
		fo_envelope(w = front_writer(), fr);
		fo_text(w, fr, "", 0, 1);
		fo_line(out, w, fr, 0);
	}
	fo_envelope(w = front_writer(), fr);
	fo_text(w, fr, "", 0, 0);
	fo_line(out, w, fr, 1);
}

/* ---- answered by proxyd ---------------------------------------------------- */

void
fo_version(struct http_req *req)
{
	static const char	 v[] = "{\"version\":\"" PACKAGE_VERSION "\"}";

	http_reply(req, 200, "application/json", v, sizeof(v) - 1);
}

/* A model of the catalogue as an entry of /api/tags. */
struct json_object *
fo_tag_entry(struct json_object *m)
{
	struct json_object	*o = json_object_new_object(), *d, *v;
	static const struct {
		const char	*from, *to;
	} facts[] = {
		{ "family", "family" }, { "parameters", "parameter_size" },
		{ "quantization", "quantization_level" },
	};
	size_t			 i;

	jadd(o, "name", json_object_get(json_get(m, "id")));
	jadd(o, "model", json_object_get(json_get(m, "id")));
	jadd(o, "size", (v = json_get(m, "size_bytes")) != NULL &&
	    json_object_is_type(v, json_type_int) ? json_object_get(v) :
	    json_object_new_int(0));
	d = json_object_new_object();
	for (i = 0; i < sizeof(facts) / sizeof(facts[0]); i++)
		if ((v = json_get(m, facts[i].from)) != NULL &&
		    json_object_is_type(v, json_type_string))
			jadd(d, facts[i].to, json_object_get(v));
	jadd(o, "details", d);
	return o;
}

/* /api/show for an engine of another kind: what the probe learnt. */
void
front_native_show(struct http_req *req, const struct route *rt)
{
	struct json_object	*o = json_object_new_object(), *t;

	t = rt->info != NULL ? fo_tag_entry(rt->info) : NULL;
	jadd(o, "details", t != NULL ? json_object_get(json_get(t,
	    "details")) : json_object_new_object());
	json_object_put(t);
	jadd(o, "model_info", json_object_new_object());
	http_json(req, 200, o);
	json_object_put(o);
}
