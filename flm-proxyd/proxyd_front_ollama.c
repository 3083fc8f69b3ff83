/*
 * Ollama's own API for its clients (the ollama libraries, Open WebUI):
 * /api/chat, /api/generate, /api/embed and /api/embeddings become
 * OpenAI requests for engines of other kinds, and their answers NDJSON
 * lines with Ollama's counts and durations.  An Ollama engine gets the
 * client's request as it is (proxyd_route.c); /api/tags, /api/show and
 * /api/version are answered from the catalogue.  Ollama's admin routes
 * (pull, push, create, copy, delete, blobs) are served by no one.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <json-c/json.h>

#include "jsonbuf.h"
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
fo_options(struct json_object *in, struct json_object *out, char *err,
    size_t errsz)
{
	struct json_object	*o = json_get(in, "options"), *v;
	size_t			 i;

	if (o == NULL || json_object_is_type(o, json_type_null))
		return 0;
	if (!json_object_is_type(o, json_type_object)) {
		snprintf(err, errsz, "options: expected an object, got %s",
		    front_type_name(o));
		return -1;
	}
	for (i = 0; i < sizeof(fo_opts) / sizeof(fo_opts[0]); i++) {
		if ((v = json_get(o, fo_opts[i].ollama)) == NULL ||
		    json_object_is_type(v, json_type_null))
			continue;
		if (!json_object_is_type(v, json_type_int) &&
		    (fo_opts[i].integer || !json_object_is_type(v,
		    json_type_double))) {
			snprintf(err, errsz, "options.%s: expected %s, got %s",
			    fo_opts[i].ollama, fo_opts[i].integer ?
			    "an integer" : "a number", front_type_name(v));
			return -1;
		}
		/* Ollama's -1 (and -2) mean "no limit": OpenAI's absence. */
		if (strcmp(fo_opts[i].ollama, "num_predict") == 0 &&
		    json_object_get_int64(v) < 0)
			continue;
		jadd(out, fo_opts[i].openai, json_object_get(v));
	}
	if ((v = json_get(o, "stop")) != NULL &&
	    !json_object_is_type(v, json_type_null)) {
		if (!json_object_is_type(v, json_type_array) &&
		    !json_object_is_type(v, json_type_string)) {
			snprintf(err, errsz, "options.stop: expected a list of "
			    "strings, got %s", front_type_name(v));
			return -1;
		}
		jadd(out, "stop", json_object_get(v));
	}
	return 0;
}

/* format: "json", or a JSON schema the answer must follow. */
static int
fo_format(struct json_object *in, struct json_object *out, char *err,
    size_t errsz)
{
	struct json_object	*f = json_get(in, "format"), *rf, *js;

	if (f == NULL || json_object_is_type(f, json_type_null) ||
	    (json_object_is_type(f, json_type_string) &&
	    json_object_get_string_len(f) == 0))
		return 0;
	rf = json_object_new_object();
	if (json_object_is_type(f, json_type_string) &&
	    strcmp(json_object_get_string(f), "json") == 0) {
		jadd(rf, "type", jstr("json_object"));
	} else if (json_object_is_type(f, json_type_object)) {
		js = json_object_new_object();
		jadd(js, "name", jstr("response"));
		jadd(js, "schema", json_object_get(f));
		jadd(rf, "type", jstr("json_schema"));
		jadd(rf, "json_schema", js);
	} else {
		json_object_put(rf);
		snprintf(err, errsz, "format: expected \"json\" or a JSON "
		    "schema");
		return -1;
	}
	jadd(out, "response_format", rf);
	return 0;
}

/* The fields every generating request has: model, stream, options. */
static struct json_object *
fo_common(struct json_object *in, char *err, size_t errsz)
{
	struct json_object	*out, *v = json_get(in, "model");

	if (v == NULL || !json_object_is_type(v, json_type_string) ||
	    json_object_get_string_len(v) == 0) {
		snprintf(err, errsz, "model is required");
		return NULL;
	}
	out = json_object_new_object();
	jadd(out, "model", json_object_get(v));
	if ((v = json_get(in, "stream")) != NULL &&
	    !json_object_is_type(v, json_type_null) &&
	    !json_object_is_type(v, json_type_boolean)) {
		snprintf(err, errsz, "stream: expected a boolean, got %s",
		    front_type_name(v));
		json_object_put(out);
		return NULL;
	}
	/* Ollama streams unless told not to. */
	if (v == NULL || json_object_is_type(v, json_type_null) ||
	    json_object_get_boolean(v))
		front_stream_on(out);
	if (fo_options(in, out, err, errsz) == -1 ||
	    fo_format(in, out, err, errsz) == -1) {
		json_object_put(out);
		return NULL;
	}
	return out;
}

/* A message's text and images as OpenAI content. */
static struct json_object *
fo_content(struct json_object *text, struct json_object *images,
    const char *where, char *err, size_t errsz)
{
	struct json_object	*parts, *p, *u, *img;
	char			*url;
	size_t			 i, n;

	if (text != NULL && !json_object_is_type(text, json_type_null) &&
	    !json_object_is_type(text, json_type_string)) {
		snprintf(err, errsz, "%s: expected a string, got %s", where,
		    front_type_name(text));
		return NULL;
	}
	if (images == NULL || json_object_is_type(images, json_type_null))
		return text != NULL && json_object_is_type(text,
		    json_type_string) ? json_object_get(text) : jstr("");
	if (!json_object_is_type(images, json_type_array)) {
		snprintf(err, errsz, "images: expected a list of base64 "
		    "strings, got %s", front_type_name(images));
		return NULL;
	}
	parts = json_object_new_array();
	p = json_object_new_object();
	jadd(p, "type", jstr("text"));
	jadd(p, "text", text != NULL && json_object_is_type(text,
	    json_type_string) ? json_object_get(text) : jstr(""));
	json_object_array_add(parts, p);
	for (i = 0; i < json_object_array_length(images); i++) {
		img = json_object_array_get_idx(images, i);
		if (!json_object_is_type(img, json_type_string)) {
			snprintf(err, errsz, "images[%zu]: expected a base64 "
			    "string", i);
			json_object_put(parts);
			return NULL;
		}
		n = (size_t)json_object_get_string_len(img);
		if ((url = malloc(n + 32)) == NULL) {
			json_object_put(parts);
			snprintf(err, errsz, "out of memory");
			return NULL;
		}
		/* Ollama takes raw base64; OpenAI engines a data: URL. */
		snprintf(url, n + 32, "data:image/png;base64,%s",
		    json_object_get_string(img));
		u = json_object_new_object();
		jadd(u, "url", jstr(url));
		free(url);
		p = json_object_new_object();
		jadd(p, "type", jstr("image_url"));
		jadd(p, "image_url", u);
		json_object_array_add(parts, p);
	}
	return parts;
}

/* An assistant's tool calls: arguments objects become JSON texts. */
static struct json_object *
fo_tool_calls(struct json_object *tc, size_t mi, char *err, size_t errsz)
{
	struct json_object	*out, *t, *f, *n, *a, *o, *of;
	char			 id[48];
	size_t			 i;

	if (!json_object_is_type(tc, json_type_array)) {
		snprintf(err, errsz, "messages[%zu].tool_calls: expected a "
		    "list", mi);
		return NULL;
	}
	out = json_object_new_array();
	for (i = 0; i < json_object_array_length(tc); i++) {
		t = json_object_array_get_idx(tc, i);
		f = json_get(t, "function");
		if ((n = json_get(f, "name")) == NULL ||
		    !json_object_is_type(n, json_type_string)) {
			snprintf(err, errsz, "messages[%zu].tool_calls[%zu]: "
			    "expected a function with a name", mi, i);
			json_object_put(out);
			return NULL;
		}
		a = json_get(f, "arguments");
		of = json_object_new_object();
		jadd(of, "name", json_object_get(n));
		jadd(of, "arguments", jstr(a == NULL ? "{}" :
		    json_object_is_type(a, json_type_string) ?
		    json_object_get_string(a) : json_object_to_json_string_ext(
		    a, JSON_C_TO_STRING_PLAIN)));
		o = json_object_new_object();
		snprintf(id, sizeof(id), "call_%zu_%zu", mi, i);
		jadd(o, "id", jstr(id));
		jadd(o, "type", jstr("function"));
		jadd(o, "function", of);
		json_object_array_add(out, o);
	}
	return out;
}

static struct json_object *
fo_messages(struct json_object *msgs, char *err, size_t errsz)
{
	struct json_object	*out, *m, *o, *role, *c, *tc;
	char			 where[40], id[48];
	size_t			 i, ncalls = 0, lastcall = 0, seen = 0;

	if (msgs == NULL || !json_object_is_type(msgs, json_type_array) ||
	    json_object_array_length(msgs) == 0) {
		snprintf(err, errsz, "messages: expected a non-empty list");
		return NULL;
	}
	out = json_object_new_array();
	for (i = 0; i < json_object_array_length(msgs); i++) {
		m = json_object_array_get_idx(msgs, i);
		if ((role = json_get(m, "role")) == NULL ||
		    !json_object_is_type(role, json_type_string)) {
			snprintf(err, errsz, "messages[%zu]: expected an "
			    "object with a string role", i);
			goto bad;
		}
		snprintf(where, sizeof(where), "messages[%zu].content", i);
		if ((c = fo_content(json_get(m, "content"),
		    json_get(m, "images"), where, err, errsz)) == NULL)
			goto bad;
		o = json_object_new_object();
		jadd(o, "role", json_object_get(role));
		jadd(o, "content", c);
		if ((tc = json_get(m, "tool_calls")) != NULL &&
		    !json_object_is_type(tc, json_type_null)) {
			if ((tc = fo_tool_calls(tc, i, err, errsz)) == NULL) {
				json_object_put(o);
				goto bad;
			}
			ncalls = json_object_array_length(tc);
			lastcall = i;
			seen = 0;
			jadd(o, "tool_calls", tc);
		}
		/* Ollama's tool answers follow their calls in order;
		 * OpenAI's name the call they answer. */
		if (strcmp(json_object_get_string(role), "tool") == 0) {
			snprintf(id, sizeof(id), "call_%zu_%zu", lastcall,
			    seen < ncalls ? seen : 0);
			seen++;
			jadd(o, "tool_call_id", jstr(id));
		}
		json_object_array_add(out, o);
	}
	return out;
bad:
	json_object_put(out);
	return NULL;
}

static int
fo_tools(struct json_object *in, struct json_object *out, char *err,
    size_t errsz)
{
	struct json_object	*t = json_get(in, "tools");
	size_t			 i;

	if (t == NULL || json_object_is_type(t, json_type_null))
		return 0;
	if (!json_object_is_type(t, json_type_array)) {
		snprintf(err, errsz, "tools: expected a list, got %s",
		    front_type_name(t));
		return -1;
	}
	for (i = 0; i < json_object_array_length(t); i++)
		if (!json_object_is_type(json_get(json_get(
		    json_object_array_get_idx(t, i), "function"), "name"),
		    json_type_string)) {
			snprintf(err, errsz, "tools[%zu]: expected a function "
			    "with a name", i);
			return -1;
		}
	if (json_object_array_length(t) > 0)
		jadd(out, "tools", json_object_get(t));
	return 0;
}

static int
fo_chat(struct json_object *in, struct json_object *out, char *err,
    size_t errsz)
{
	struct json_object	*m;

	if ((m = fo_messages(json_get(in, "messages"), err, errsz)) == NULL)
		return -1;
	jadd(out, "messages", m);
	return fo_tools(in, out, err, errsz);
}

/* /api/generate: a chat of one turn, or a raw completion. */
static int
fo_generate(struct json_object *in, struct json_object *out,
    enum http_endpoint *op, char *err, size_t errsz)
{
	struct json_object	*p = json_get(in, "prompt"), *s, *raw, *msgs,
				*m, *c;

	if (p == NULL || !json_object_is_type(p, json_type_string)) {
		snprintf(err, errsz, "prompt: expected a string, got %s",
		    p == NULL ? "nothing" : front_type_name(p));
		return -1;
	}
	s = json_get(in, "system");
	if (s != NULL && !json_object_is_type(s, json_type_null) &&
	    !json_object_is_type(s, json_type_string)) {
		snprintf(err, errsz, "system: expected a string, got %s",
		    front_type_name(s));
		return -1;
	}
	if ((raw = json_get(in, "raw")) != NULL &&
	    json_object_is_type(raw, json_type_boolean) &&
	    json_object_get_boolean(raw)) {
		*op = EP_COMPLETIONS;
		jadd(out, "prompt", json_object_get(p));
		if ((c = json_get(in, "suffix")) != NULL &&
		    json_object_is_type(c, json_type_string))
			jadd(out, "suffix", json_object_get(c));
		return 0;
	}
	if ((c = fo_content(p, json_get(in, "images"), "prompt", err,
	    errsz)) == NULL)
		return -1;
	msgs = json_object_new_array();
	if (s != NULL && json_object_is_type(s, json_type_string)) {
		m = json_object_new_object();
		jadd(m, "role", jstr("system"));
		jadd(m, "content", json_object_get(s));
		json_object_array_add(msgs, m);
	}
	m = json_object_new_object();
	jadd(m, "role", jstr("user"));
	jadd(m, "content", c);
	json_object_array_add(msgs, m);
	jadd(out, "messages", msgs);
	return 0;
}

static int
fo_strings(struct json_object *v)
{
	size_t	 i;

	if (json_object_is_type(v, json_type_string))
		return 1;
	if (!json_object_is_type(v, json_type_array) ||
	    json_object_array_length(v) == 0)
		return 0;
	for (i = 0; i < json_object_array_length(v); i++)
		if (!json_object_is_type(json_object_array_get_idx(v, i),
		    json_type_string))
			return 0;
	return 1;
}

static struct json_object *
fo_embed(struct json_object *in, enum http_endpoint ep, char *err,
    size_t errsz)
{
	struct json_object	*out, *v = json_get(in, "model"), *x;
	const char		*k = ep == EP_OLLAMA_EMBED ? "input" : "prompt";

	if (v == NULL || !json_object_is_type(v, json_type_string) ||
	    json_object_get_string_len(v) == 0) {
		snprintf(err, errsz, "model is required");
		return NULL;
	}
	x = json_get(in, k);
	if (x == NULL || (ep == EP_OLLAMA_EMBED ? !fo_strings(x) :
	    !json_object_is_type(x, json_type_string))) {
		snprintf(err, errsz, "%s: expected %s", k, ep ==
		    EP_OLLAMA_EMBED ? "a string or a non-empty list of strings" :
		    "a string");
		return NULL;
	}
	out = json_object_new_object();
	jadd(out, "model", json_object_get(v));
	jadd(out, "input", json_object_get(x));
	if ((v = json_get(in, "dimensions")) != NULL &&
	    json_object_is_type(v, json_type_int))
		jadd(out, "dimensions", json_object_get(v));
	return out;
}

/* /api/show: which model; Ollama's older clients say "name". */
static struct json_object *
fo_show(struct json_object *in, char *err, size_t errsz)
{
	struct json_object	*out, *v = json_get(in, "model");

	if (v == NULL || !json_object_is_type(v, json_type_string))
		v = json_get(in, "name");
	if (v == NULL || !json_object_is_type(v, json_type_string) ||
	    json_object_get_string_len(v) == 0) {
		snprintf(err, errsz, "model is required");
		return NULL;
	}
	out = json_object_new_object();
	jadd(out, "model", json_object_get(v));
	return out;
}

/* The OpenAI request for Ollama request in at ep, its op in *op. */
struct json_object *
fo_request(enum http_endpoint ep, struct json_object *in,
    enum http_endpoint *op, char *err, size_t errsz)
{
	struct json_object	*out;
	int			 rc;

	switch (ep) {
	case EP_OLLAMA_EMBED:
	case EP_OLLAMA_EMBEDDINGS:
		*op = EP_EMBEDDINGS;
		return fo_embed(in, ep, err, errsz);
	case EP_OLLAMA_SHOW:
		*op = EP_OLLAMA_SHOW;
		return fo_show(in, err, errsz);
	default:
		break;
	}
	if ((out = fo_common(in, err, errsz)) == NULL)
		return NULL;
	*op = EP_CHAT;
	rc = ep == EP_OLLAMA_CHAT ? fo_chat(in, out, err, errsz) :
	    fo_generate(in, out, op, err, errsz);
	if (rc == -1) {
		json_object_put(out);
		return NULL;
	}
	return out;
}

/* ---- answers ------------------------------------------------------------ */

/* Ollama's created_at: RFC 3339 with nanoseconds, UTC. */
static struct json_object *
fo_now(void)
{
	struct timespec	 ts;
	struct tm	 tm;
	char		 buf[64];
	size_t		 n;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, sizeof(buf) - n, ".%09ldZ", ts.tv_nsec);
	return jstr(buf);
}

static struct json_object *
fo_envelope(struct front *fr)
{
	struct json_object	*o = json_object_new_object();

	jadd(o, "model", jstr(fr->model));
	jadd(o, "created_at", fo_now());
	return o;
}

/* Text as Ollama's message (chat) or response (generate). */
static void
fo_text(struct front *fr, struct json_object *o, const char *text,
    size_t len, struct json_object *calls)
{
	struct json_object	*m;

	if (fr->ep == EP_OLLAMA_GENERATE) {
		jadd(o, "response", json_object_new_string_len(text, (int)len));
		return;
	}
	m = json_object_new_object();
	jadd(m, "role", jstr("assistant"));
	jadd(m, "content", json_object_new_string_len(text, (int)len));
	if (calls != NULL)
		jadd(m, "tool_calls", calls);
	jadd(o, "message", m);
}

/* The last object's done, done_reason, counts and durations. */
static void
fo_final(struct front *fr, struct json_object *o)
{
	int64_t	 ns = front_elapsed_ns(fr);

	jadd(o, "done_reason", jstr(strcmp(fr->finish, "length") == 0 ?
	    "length" : "stop"));
	jadd(o, "done", json_object_new_boolean(1));
	jadd(o, "total_duration", json_object_new_int64(ns));
	jadd(o, "load_duration", json_object_new_int64(0));
	jadd(o, "prompt_eval_count", json_object_new_int64(fr->ptok));
	jadd(o, "prompt_eval_duration", json_object_new_int64(0));
	jadd(o, "eval_count", json_object_new_int64(fr->ctok));
	jadd(o, "eval_duration", json_object_new_int64(ns));
}

static struct json_object *
fo_calls_json(const struct front_tool *t, int n)
{
	struct json_object	*a = json_object_new_array(), *c, *f;
	int			 i;

	for (i = 0; i < n; i++) {
		f = json_object_new_object();
		jadd(f, "name", jstr(t[i].name));
		jadd(f, "arguments", front_args_object(t[i].args, t[i].alen));
		c = json_object_new_object();
		jadd(c, "function", f);
		json_object_array_add(a, c);
	}
	return a;
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

struct json_object *
fo_answer(struct front *fr, struct front_msg *m)
{
	struct json_object	*o;
	int			 i, isnew;

	for (i = 0; i < m->ncalls; i++) {
		m->calls[i].index = i;
		if (front_tool_add(fr, &m->calls[i], &isnew) == -1)
			return NULL;
	}
	o = fo_envelope(fr);
	fo_text(fr, o, m->text != NULL ? m->text : "", m->tlen, m->ncalls > 0 ?
	    fo_calls_json(fr->tools, fr->ntools) : NULL);
	fo_final(fr, o);
	return o;
}

/* One chunk of an OpenAI stream: its text as a line; tool calls are
 * gathered (Ollama gives their arguments whole, as objects). */
int
fo_chunk(struct front *fr, const struct front_msg *m, struct evbuffer *out)
{
	struct json_object	*o;
	int			 i, isnew;

	for (i = 0; i < m->ncalls; i++)
		if (front_tool_add(fr, &m->calls[i], &isnew) == -1)
			return -1;
	if (m->tlen == 0)
		return 0;
	o = fo_envelope(fr);
	fo_text(fr, o, m->text, m->tlen, NULL);
	jadd(o, "done", json_object_new_boolean(0));
	front_ndjson(out, o);
	return 0;
}

void
fo_end(struct front *fr, struct evbuffer *out)
{
	struct json_object	*o;

	if (fr->ntools > 0) {
		o = fo_envelope(fr);
		fo_text(fr, o, "", 0, fo_calls_json(fr->tools, fr->ntools));
		jadd(o, "done", json_object_new_boolean(0));
		front_ndjson(out, o);
	}
	o = fo_envelope(fr);
	fo_text(fr, o, "", 0, NULL);
	fo_final(fr, o);
	front_ndjson(out, o);
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
