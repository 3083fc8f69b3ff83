/*
 * Ollama without its /v1 endpoints: OpenAI requests become /api/chat,
 * /api/generate and /api/embed requests, and their answers (one JSON
 * object, or an NDJSON stream) become OpenAI's shapes, SSE included.
 * The rules are in docs/PROXY_SPEC.md.
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

struct ollama_stream {
	enum upstream_mode	 mode;
	char			*model;
	uint64_t		 reqid;
	int			 usage;
	int			 started;	/* the role went out */
	int			 done;
	time_t			 created;
};

static void
jcopy(struct json_object *to, const char *tk, struct json_object *from,
    const char *fk)
{
	struct json_object	*v = json_get(from, fk);

	if (v != NULL && !json_object_is_type(v, json_type_null))
		json_object_object_add(to, tk, json_object_get(v));
}

/* Sampling parameters: OpenAI's names to Ollama's options. */
static struct json_object *
ollama_options(struct json_object *in)
{
	struct json_object	*o = json_object_new_object();

	jcopy(o, "temperature", in, "temperature");
	jcopy(o, "top_p", in, "top_p");
	jcopy(o, "seed", in, "seed");
	jcopy(o, "stop", in, "stop");
	jcopy(o, "num_predict", in, "max_tokens");
	jcopy(o, "num_predict", in, "max_completion_tokens");
	jcopy(o, "presence_penalty", in, "presence_penalty");
	jcopy(o, "frequency_penalty", in, "frequency_penalty");
	return o;
}

/* OpenAI content (a string or a list of parts) as Ollama's string. */
static struct json_object *
ollama_content(struct json_object *c)
{
	struct json_object	*p, *t;
	char			*s = NULL, *n;
	size_t			 i, len = 0, tl;

	if (c == NULL || json_object_is_type(c, json_type_null))
		return json_object_new_string("");
	if (json_object_is_type(c, json_type_string))
		return json_object_get(c);
	if (!json_object_is_type(c, json_type_array))
		return NULL;
	for (i = 0; i < json_object_array_length(c); i++) {
		p = json_object_array_get_idx(c, i);
		if ((t = json_get(p, "text")) == NULL ||
		    !json_object_is_type(t, json_type_string))
			continue;	/* images and such: not for text */
		tl = json_object_get_string_len(t);
		if ((n = realloc(s, len + tl + 1)) == NULL) {
			free(s);
			return NULL;
		}
		s = n;
		memcpy(s + len, json_object_get_string(t), tl);
		len += tl;
	}
	t = json_object_new_string_len(s != NULL ? s : "", (int)len);
	free(s);
	return t;
}

static struct json_object *
ollama_messages(struct json_object *msgs, char *err, size_t errsz)
{
	struct json_object	*out = json_object_new_array(), *m, *o, *c;
	size_t			 i;

	for (i = 0; i < json_object_array_length(msgs); i++) {
		m = json_object_array_get_idx(msgs, i);
		if ((c = ollama_content(json_get(m, "content"))) == NULL) {
			snprintf(err, errsz, "messages[%zu].content: expected "
			    "a string or a list of content parts", i);
			json_object_put(out);
			return NULL;
		}
		o = json_object_new_object();
		jcopy(o, "role", m, "role");
		json_object_object_add(o, "content", c);
		json_object_array_add(out, o);
	}
	return out;
}

/* The prompt of a completion: one string. */
static struct json_object *
ollama_prompt(struct json_object *p)
{
	if (json_object_is_type(p, json_type_string))
		return json_object_get(p);
	if (json_object_is_type(p, json_type_array) &&
	    json_object_array_length(p) == 1 && json_object_is_type(
	    json_object_array_get_idx(p, 0), json_type_string))
		return json_object_get(json_object_array_get_idx(p, 0));
	return NULL;
}

static int
ollama_inputs_ok(struct json_object *in)
{
	size_t	 i;

	if (json_object_is_type(in, json_type_string))
		return 1;
	if (!json_object_is_type(in, json_type_array))
		return 0;
	for (i = 0; i < json_object_array_length(in); i++)
		if (!json_object_is_type(json_object_array_get_idx(in, i),
		    json_type_string))
			return 0;
	return 1;
}

/*
 * The native request for endpoint ep, already checked by the router
 * for OpenAI's own rules; NULL with err for what Ollama cannot do.
 */
struct json_object *
ollama_request(enum http_endpoint ep, struct json_object *in,
    const char *model, char *err, size_t errsz)
{
	struct json_object	*o = json_object_new_object(), *v, *s;

	json_object_object_add(o, "model", json_object_new_string(model));
	switch (ep) {
	case EP_CHAT:
		if ((v = ollama_messages(json_get(in, "messages"), err, errsz)) ==
		    NULL)
			goto bad;
		json_object_object_add(o, "messages", v);
		if ((v = json_get(in, "response_format")) != NULL &&
		    (s = json_get(v, "type")) != NULL &&
		    strcmp(json_object_get_string(s), "json_object") == 0)
			json_object_object_add(o, "format",
			    json_object_new_string("json"));
		break;
	case EP_COMPLETIONS:
		if ((v = ollama_prompt(json_get(in, "prompt"))) == NULL) {
			snprintf(err, errsz, "prompt: this engine takes one "
			    "string prompt");
			goto bad;
		}
		json_object_object_add(o, "prompt", v);
		jcopy(o, "suffix", in, "suffix");
		break;
	case EP_EMBEDDINGS:
		if (!ollama_inputs_ok(v = json_get(in, "input"))) {
			snprintf(err, errsz, "input: this engine takes a "
			    "string or a list of strings, not token ids");
			goto bad;
		}
		json_object_object_add(o, "input", json_object_get(v));
		return o;
	default:
		goto bad;
	}
	v = json_get(in, "stream");
	json_object_object_add(o, "stream", json_object_new_boolean(
	    v != NULL && json_object_get_boolean(v)));
	json_object_object_add(o, "options", ollama_options(in));
	return o;
bad:
	json_object_put(o);
	return NULL;
}

static const char *
ollama_finish(struct json_object *in)
{
	struct json_object	*v = json_get(in, "done_reason");

	if (v != NULL && strcmp(json_object_get_string(v), "length") == 0)
		return "length";
	return "stop";
}

static struct json_object *
ollama_usage(struct json_object *in)
{
	struct json_object	*u = json_object_new_object();
	int64_t			 p = 0, c = 0;

	if (json_get(in, "prompt_eval_count") != NULL)
		p = json_object_get_int64(json_get(in, "prompt_eval_count"));
	if (json_get(in, "eval_count") != NULL)
		c = json_object_get_int64(json_get(in, "eval_count"));
	json_object_object_add(u, "prompt_tokens", json_object_new_int64(p));
	json_object_object_add(u, "completion_tokens",
	    json_object_new_int64(c));
	json_object_object_add(u, "total_tokens", json_object_new_int64(p + c));
	return u;
}

static struct json_object *
ollama_envelope(enum upstream_mode mode, const char *model, uint64_t reqid,
    time_t created, int chunk)
{
	struct json_object	*o = json_object_new_object();
	char			 id[48];

	snprintf(id, sizeof(id), "%s-flm%016llx", mode == UP_OLLAMA_CHAT ?
	    "chatcmpl" : "cmpl", (unsigned long long)reqid);
	json_object_object_add(o, "id", json_object_new_string(id));
	json_object_object_add(o, "object", json_object_new_string(
	    mode == UP_OLLAMA_CHAT ? (chunk ? "chat.completion.chunk" :
	    "chat.completion") : "text_completion"));
	json_object_object_add(o, "created", json_object_new_int64(created));
	json_object_object_add(o, "model", json_object_new_string(model));
	return o;
}

static struct json_object *
ollama_text(enum upstream_mode mode, struct json_object *in)
{
	struct json_object	*v;

	v = mode == UP_OLLAMA_CHAT ? json_get(json_get(in, "message"), "content") :
	    json_get(in, "response");
	return v != NULL && json_object_is_type(v, json_type_string) ? v :
	    NULL;
}

static struct json_object *
ollama_embeddings(struct json_object *in, const char *model)
{
	struct json_object	*o, *data, *e, *arr = json_get(in, "embeddings");
	size_t			 i;
	int64_t			 p = 0;

	if (arr == NULL || !json_object_is_type(arr, json_type_array))
		return NULL;
	data = json_object_new_array();
	for (i = 0; i < json_object_array_length(arr); i++) {
		e = json_object_new_object();
		json_object_object_add(e, "object",
		    json_object_new_string("embedding"));
		json_object_object_add(e, "index", json_object_new_int((int)i));
		json_object_object_add(e, "embedding",
		    json_object_get(json_object_array_get_idx(arr, i)));
		json_object_array_add(data, e);
	}
	if (json_get(in, "prompt_eval_count") != NULL)
		p = json_object_get_int64(json_get(in, "prompt_eval_count"));
	o = json_object_new_object();
	json_object_object_add(o, "object", json_object_new_string("list"));
	json_object_object_add(o, "data", data);
	json_object_object_add(o, "model", json_object_new_string(model));
	e = json_object_new_object();
	json_object_object_add(e, "prompt_tokens", json_object_new_int64(p));
	json_object_object_add(e, "total_tokens", json_object_new_int64(p));
	json_object_object_add(o, "usage", e);
	return o;
}

/* A whole native answer as OpenAI's; NULL if it is not Ollama's. */
struct json_object *
ollama_answer(enum upstream_mode mode, struct json_object *in,
    const char *model, uint64_t reqid)
{
	struct json_object	*o, *ch, *c, *m, *text;

	if (mode == UP_OLLAMA_EMBED)
		return ollama_embeddings(in, model);
	if ((text = ollama_text(mode, in)) == NULL)
		return NULL;
	o = ollama_envelope(mode, model, reqid, time(NULL), 0);
	c = json_object_new_object();
	json_object_object_add(c, "index", json_object_new_int(0));
	if (mode == UP_OLLAMA_CHAT) {
		m = json_object_new_object();
		json_object_object_add(m, "role",
		    json_object_new_string("assistant"));
		json_object_object_add(m, "content", json_object_get(text));
		json_object_object_add(c, "message", m);
	} else {
		json_object_object_add(c, "text", json_object_get(text));
		json_object_object_add(c, "logprobs", NULL);
	}
	json_object_object_add(c, "finish_reason",
	    json_object_new_string(ollama_finish(in)));
	ch = json_object_new_array();
	json_object_array_add(ch, c);
	json_object_object_add(o, "choices", ch);
	json_object_object_add(o, "usage", ollama_usage(in));
	return o;
}

/* {"error": "text"} (or anything) as OpenAI's error shape. */
struct json_object *
ollama_error(int status, const char *body, size_t len)
{
	struct json_object	*in = json_parse_buf(body, len), *o, *e, *v = NULL;
	char			 msg[512];

	/* Ollama's {"error": "text"}, OpenAI's {"error": {"message"}}. */
	if (in != NULL && (v = json_get(in, "error")) != NULL &&
	    json_object_is_type(v, json_type_object))
		v = json_get(v, "message");
	if (v != NULL && json_object_is_type(v, json_type_string))
		snprintf(msg, sizeof(msg), "%s", json_object_get_string(v));
	else
		snprintf(msg, sizeof(msg), "The engine answered %d.", status);
	json_object_put(in);
	e = json_object_new_object();
	json_object_object_add(e, "message", json_object_new_string(msg));
	json_object_object_add(e, "type", json_object_new_string(
	    status < 500 ? "invalid_request_error" : "server_error"));
	json_object_object_add(e, "param", NULL);
	json_object_object_add(e, "code", status == 404 ?
	    json_object_new_string("model_not_found") : NULL);
	o = json_object_new_object();
	json_object_object_add(o, "error", e);
	return o;
}

/* ---- streams --------------------------------------------------------------- */

struct ollama_stream *
ollama_stream_new(enum upstream_mode mode, const char *model, uint64_t reqid,
    int usage)
{
	struct ollama_stream	*os;

	if ((os = calloc(1, sizeof(*os))) == NULL)
		return NULL;
	if ((os->model = strdup(model)) == NULL) {
		free(os);
		return NULL;
	}
	os->mode = mode;
	os->reqid = reqid;
	os->usage = usage;
	os->created = time(NULL);
	return os;
}

void
ollama_stream_free(struct ollama_stream *os)
{
	if (os == NULL)
		return;
	free(os->model);
	free(os);
}

int
ollama_stream_done(const struct ollama_stream *os)
{
	return os->done;
}

static void
sse_event(struct evbuffer *out, struct json_object *o)
{
	size_t		 len;
	const char	*s = json_object_to_json_string_length(o,
	    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);

	evbuffer_add(out, "data: ", 6);
	evbuffer_add(out, s, len);
	evbuffer_add(out, "\n\n", 2);
	json_object_put(o);
}

static struct json_object *
ollama_chunk(struct ollama_stream *os, struct json_object *text,
    const char *finish)
{
	struct json_object	*o, *ch, *c, *d;

	o = ollama_envelope(os->mode, os->model, os->reqid, os->created, 1);
	c = json_object_new_object();
	json_object_object_add(c, "index", json_object_new_int(0));
	if (os->mode == UP_OLLAMA_CHAT) {
		d = json_object_new_object();
		if (!os->started)
			json_object_object_add(d, "role",
			    json_object_new_string("assistant"));
		if (text != NULL)
			json_object_object_add(d, "content",
			    json_object_get(text));
		json_object_object_add(c, "delta", d);
	} else {
		json_object_object_add(c, "text", text != NULL ?
		    json_object_get(text) : json_object_new_string(""));
		json_object_object_add(c, "logprobs", NULL);
	}
	os->started = 1;
	json_object_object_add(c, "finish_reason", finish != NULL ?
	    json_object_new_string(finish) : NULL);
	ch = json_object_new_array();
	json_object_array_add(ch, c);
	json_object_object_add(o, "choices", ch);
	return o;
}

/*
 * One NDJSON line: its SSE events into out, and the usage event the
 * client did not ask for into aside (if not NULL), for the audit trail.
 * -1 if it is not JSON.
 */
int
ollama_stream_line(struct ollama_stream *os, const char *line, size_t len,
    struct evbuffer *out, struct evbuffer *aside)
{
	struct json_object	*in, *text, *v, *o;

	while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == ' '))
		len--;
	if (len == 0 || os->done)
		return 0;
	if ((in = json_parse_buf(line, len)) == NULL ||
	    !json_object_is_type(in, json_type_object)) {
		json_object_put(in);
		return -1;
	}
	if ((v = json_get(in, "error")) != NULL) {
		/* Mid-stream failure: said as OpenAI says it, then the end. */
		sse_event(out, ollama_error(500, line, len));
		os->done = 1;
		json_object_put(in);
		return 0;
	}
	text = ollama_text(os->mode, in);
	if (text != NULL && (json_object_get_string_len(text) > 0 ||
	    !os->started))
		sse_event(out, ollama_chunk(os, text, NULL));
	if ((v = json_get(in, "done")) != NULL && json_object_get_boolean(v)) {
		sse_event(out, ollama_chunk(os, NULL, ollama_finish(in)));
		if (os->usage || aside != NULL) {
			o = ollama_envelope(os->mode, os->model, os->reqid,
			    os->created, 1);
			json_object_object_add(o, "choices",
			    json_object_new_array());
			json_object_object_add(o, "usage", ollama_usage(in));
			sse_event(os->usage ? out : aside, o);
		}
		evbuffer_add(out, "data: [DONE]\n\n", 14);
		os->done = 1;
	}
	json_object_put(in);
	return 0;
}
