/*
 * Anthropic's Messages API (POST /v1/messages), as the Anthropic SDK
 * and Claude-style agents speak it: the system prompt, content blocks
 * and tools become an OpenAI chat completion, and its answer content
 * blocks, tool_use, stop reasons and usage again; a stream becomes the
 * event sequence message_start ... message_stop.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <json-c/json.h>

#include "jsonbuf.h"
#include "proxyd.h"
#include "proxyd_front.h"

/* Texts of blocks (or a string) joined; NULL if a block is not text. */
static char *
fm_texts(struct json_object *c, const char *where, char *err, size_t errsz)
{
	struct json_object	*b, *t;
	char			*s = NULL, *n;
	size_t			 i, len = 0, tl;

	if (front_is(c, json_type_string))
		return strdup(json_object_get_string(c));
	if (!front_is(c, json_type_array)) {
		snprintf(err, errsz, "%s: Input should be a valid string or "
		    "a list of text blocks", where);
		return NULL;
	}
	for (i = 0; i < json_object_array_length(c); i++) {
		b = json_object_array_get_idx(c, i);
		t = json_get(b, "text");
		if (!front_is(t, json_type_string)) {
			snprintf(err, errsz, "%s.%zu: expected a text block",
			    where, i);
			free(s);
			return NULL;
		}
		tl = (size_t)json_object_get_string_len(t);
		if ((n = realloc(s, len + tl + 2)) == NULL) {
			free(s);
			snprintf(err, errsz, "out of memory");
			return NULL;
		}
		s = n;
		if (len > 0)
			s[len++] = '\n';
		memcpy(s + len, json_object_get_string(t), tl);
		len += tl;
		s[len] = '\0';
	}
	return s != NULL ? s : strdup("");
}

/* An image block as an OpenAI image_url part. */
static struct json_object *
fm_image(struct json_object *b, const char *where, char *err, size_t errsz)
{
	struct json_object	*src = json_get(b, "source"), *p, *u;
	const char		*type, *mt, *data;
	char			*url;
	size_t			 n;

	type = front_is(json_get(src, "type"), json_type_string) ?
	    json_object_get_string(json_get(src, "type")) : "";
	u = json_object_new_object();
	if (strcmp(type, "url") == 0 && front_is(json_get(src, "url"),
	    json_type_string))
		jadd(u, "url", json_object_get(json_get(src, "url")));
	else if (strcmp(type, "base64") == 0 && front_is(json_get(src,
	    "media_type"), json_type_string) && front_is(json_get(src, "data"),
	    json_type_string)) {
		mt = json_object_get_string(json_get(src, "media_type"));
		data = json_object_get_string(json_get(src, "data"));
		n = strlen(mt) + strlen(data) + 16;
		if ((url = malloc(n)) == NULL) {
			json_object_put(u);
			snprintf(err, errsz, "out of memory");
			return NULL;
		}
		snprintf(url, n, "data:%s;base64,%s", mt, data);
		jadd(u, "url", jstr(url));
		free(url);
	} else {
		json_object_put(u);
		snprintf(err, errsz, "%s.source: expected a base64 or url "
		    "image source", where);
		return NULL;
	}
	p = json_object_new_object();
	jadd(p, "type", jstr("image_url"));
	jadd(p, "image_url", u);
	return p;
}

static struct json_object *
fm_text_part(struct json_object *t)
{
	struct json_object	*p = json_object_new_object();

	jadd(p, "type", jstr("text"));
	jadd(p, "text", json_object_get(t));
	return p;
}

/* A tool_result block as OpenAI's tool message. */
static struct json_object *
fm_tool_result(struct json_object *b, const char *where, char *err,
    size_t errsz)
{
	struct json_object	*o, *id = json_get(b, "tool_use_id"), *c;
	char			*text, w[96];

	if (!front_is(id, json_type_string)) {
		snprintf(err, errsz, "%s.tool_use_id: Field required", where);
		return NULL;
	}
	c = json_get(b, "content");
	snprintf(w, sizeof(w), "%s.content", where);
	if (c == NULL || json_object_is_type(c, json_type_null))
		text = strdup("");
	else if ((text = fm_texts(c, w, err, errsz)) == NULL)
		return NULL;
	if (text == NULL) {
		snprintf(err, errsz, "out of memory");
		return NULL;
	}
	o = json_object_new_object();
	jadd(o, "role", jstr("tool"));
	jadd(o, "tool_call_id", json_object_get(id));
	jadd(o, "content", jstr(text));
	free(text);
	return o;
}

static struct json_object *
fm_tool_use(struct json_object *b, const char *where, char *err,
    size_t errsz)
{
	struct json_object	*o, *f, *id = json_get(b, "id"),
				*name = json_get(b, "name"),
				*input = json_get(b, "input");

	if (!front_is(id, json_type_string) || !front_is(name, json_type_string) ||
	    (input != NULL && !front_is(input, json_type_object))) {
		snprintf(err, errsz, "%s: a tool_use block has a string id, "
		    "a string name and an object input", where);
		return NULL;
	}
	f = json_object_new_object();
	jadd(f, "name", json_object_get(name));
	jadd(f, "arguments", jstr(input != NULL ?
	    json_object_to_json_string_ext(input, JSON_C_TO_STRING_PLAIN) :
	    "{}"));
	o = json_object_new_object();
	jadd(o, "id", json_object_get(id));
	jadd(o, "type", jstr("function"));
	jadd(o, "function", f);
	return o;
}

/*
 * One Anthropic message as OpenAI messages appended to out: a user's
 * tool results first (each a tool message), then its text and images;
 * an assistant's text and tool calls in one message.
 */
static int
fm_message(struct json_object *m, size_t i, struct json_object *out,
    char *err, size_t errsz)
{
	struct json_object	*role = json_get(m, "role"), *c, *b, *t, *o,
				*parts, *calls, *x;
	const char		*r, *type;
	char			 where[64];
	size_t			 j, ntext = 0;
	int			 user;

	if (!front_is(m, json_type_object) || !front_is(role, json_type_string) ||
	    (strcmp(r = json_object_get_string(role), "user") != 0 &&
	    strcmp(r, "assistant") != 0)) {
		snprintf(err, errsz, "messages.%zu.role: Input should be "
		    "'user' or 'assistant'", i);
		return -1;
	}
	user = r[0] == 'u';
	c = json_get(m, "content");
	if (front_is(c, json_type_string)) {
		o = json_object_new_object();
		jadd(o, "role", json_object_get(role));
		jadd(o, "content", json_object_get(c));
		json_object_array_add(out, o);
		return 0;
	}
	if (!front_is(c, json_type_array)) {
		snprintf(err, errsz, "messages.%zu.content: Input should be "
		    "a valid string or a list of content blocks", i);
		return -1;
	}
	parts = json_object_new_array();
	calls = json_object_new_array();
	for (j = 0; j < json_object_array_length(c); j++) {
		b = json_object_array_get_idx(c, j);
		snprintf(where, sizeof(where), "messages.%zu.content.%zu",
		    i, j);
		t = json_get(b, "type");
		type = front_is(t, json_type_string) ? json_object_get_string(t) :
		    "";
		x = NULL;
		if (strcmp(type, "text") == 0 && front_is(json_get(b, "text"),
		    json_type_string)) {
			json_object_array_add(parts, fm_text_part(json_get(b,
			    "text")));
			ntext++;
			continue;
		} else if (strcmp(type, "image") == 0 && user) {
			if ((x = fm_image(b, where, err, errsz)) != NULL) {
				json_object_array_add(parts, x);
				continue;
			}
		} else if (strcmp(type, "tool_result") == 0 && user) {
			if ((x = fm_tool_result(b, where, err, errsz)) !=
			    NULL) {
				json_object_array_add(out, x);
				continue;
			}
		} else if (strcmp(type, "tool_use") == 0 && !user) {
			if ((x = fm_tool_use(b, where, err, errsz)) != NULL) {
				json_object_array_add(calls, x);
				continue;
			}
		} else if (strcmp(type, "thinking") == 0 ||
		    strcmp(type, "redacted_thinking") == 0)
			continue;	/* the engine thinks afresh */
		else
			snprintf(err, errsz, "%s: a block of type '%s' is not "
			    "served here (text, image, tool_use and "
			    "tool_result are)", where, type);
		json_object_put(parts);
		json_object_put(calls);
		return -1;
	}
	if (json_object_array_length(parts) == 0 &&
	    json_object_array_length(calls) == 0) {
		json_object_put(parts);
		json_object_put(calls);
		return 0;	/* tool results only */
	}
	o = json_object_new_object();
	jadd(o, "role", json_object_get(role));
	if (ntext == json_object_array_length(parts)) {
		/* Text only: one string, which every engine takes. */
		char	*s = fm_texts(parts, where, err, errsz);

		jadd(o, "content", s != NULL && (s[0] != '\0' ||
		    json_object_array_length(calls) == 0) ? jstr(s) : NULL);
		free(s);
		json_object_put(parts);
	} else
		jadd(o, "content", parts);
	if (json_object_array_length(calls) > 0)
		jadd(o, "tool_calls", calls);
	else
		json_object_put(calls);
	json_object_array_add(out, o);
	return 0;
}

static int
fm_system(struct json_object *in, struct json_object *msgs, char *err,
    size_t errsz)
{
	struct json_object	*s = json_get(in, "system"), *o;
	char			*text;

	if (s == NULL || json_object_is_type(s, json_type_null))
		return 0;
	if ((text = fm_texts(s, "system", err, errsz)) == NULL)
		return -1;
	o = json_object_new_object();
	jadd(o, "role", jstr("system"));
	jadd(o, "content", jstr(text));
	free(text);
	json_object_array_add(msgs, o);
	return 0;
}

static int
fm_tools(struct json_object *in, struct json_object *out, char *err,
    size_t errsz)
{
	struct json_object	*tl = json_get(in, "tools"), *t, *f, *o, *v;
	size_t			 i;

	if (tl == NULL || json_object_is_type(tl, json_type_null))
		return 0;
	if (!front_is(tl, json_type_array)) {
		snprintf(err, errsz, "tools: Input should be a valid list");
		return -1;
	}
	if (json_object_array_length(tl) == 0)
		return 0;
	o = json_object_new_array();
	for (i = 0; i < json_object_array_length(tl); i++) {
		t = json_object_array_get_idx(tl, i);
		if (!front_is(json_get(t, "name"), json_type_string) ||
		    !front_is(json_get(t, "input_schema"), json_type_object)) {
			snprintf(err, errsz, "tools.%zu: only client tools, "
			    "with a name and an input_schema, are served", i);
			json_object_put(o);
			return -1;
		}
		f = json_object_new_object();
		jadd(f, "name", json_object_get(json_get(t, "name")));
		if (front_is(v = json_get(t, "description"), json_type_string))
			jadd(f, "description", json_object_get(v));
		jadd(f, "parameters", json_object_get(json_get(t,
		    "input_schema")));
		v = json_object_new_object();
		jadd(v, "type", jstr("function"));
		jadd(v, "function", f);
		json_object_array_add(o, v);
	}
	jadd(out, "tools", o);
	return 0;
}

static int
fm_tool_choice(struct json_object *in, struct json_object *out, char *err,
    size_t errsz)
{
	struct json_object	*tc = json_get(in, "tool_choice"), *v, *f;
	const char		*type;

	if (tc == NULL || json_object_is_type(tc, json_type_null))
		return 0;
	type = front_is(v = json_get(tc, "type"), json_type_string) ?
	    json_object_get_string(v) : "";
	if (strcmp(type, "auto") == 0)
		jadd(out, "tool_choice", jstr("auto"));
	else if (strcmp(type, "any") == 0)
		jadd(out, "tool_choice", jstr("required"));
	else if (strcmp(type, "none") == 0)
		jadd(out, "tool_choice", jstr("none"));
	else if (strcmp(type, "tool") == 0 && front_is(json_get(tc, "name"),
	    json_type_string)) {
		f = json_object_new_object();
		jadd(f, "name", json_object_get(json_get(tc, "name")));
		v = json_object_new_object();
		jadd(v, "type", jstr("function"));
		jadd(v, "function", f);
		jadd(out, "tool_choice", v);
	} else {
		snprintf(err, errsz, "tool_choice: expected auto, any, none, "
		    "or tool with a name");
		return -1;
	}
	if (front_is(v = json_get(tc, "disable_parallel_tool_use"),
	    json_type_boolean) && json_object_get_boolean(v))
		jadd(out, "parallel_tool_calls", json_object_new_boolean(0));
	return 0;
}

/* Sampling: names shared with OpenAI, and stop_sequences. */
static int
fm_sampling(struct json_object *in, struct json_object *out, char *err,
    size_t errsz)
{
	static const char *const num[] = { "temperature", "top_p" };
	struct json_object	*v;
	size_t			 i;

	for (i = 0; i < sizeof(num) / sizeof(num[0]); i++) {
		if ((v = json_get(in, num[i])) == NULL ||
		    json_object_is_type(v, json_type_null))
			continue;
		if (!front_is(v, json_type_int) && !front_is(v, json_type_double)) {
			snprintf(err, errsz, "%s: Input should be a valid "
			    "number", num[i]);
			return -1;
		}
		jadd(out, num[i], json_object_get(v));
	}
	if ((v = json_get(in, "top_k")) != NULL &&
	    !json_object_is_type(v, json_type_null)) {
		if (!front_is(v, json_type_int)) {
			snprintf(err, errsz, "top_k: Input should be a valid "
			    "integer");
			return -1;
		}
		jadd(out, "top_k", json_object_get(v));
	}
	if ((v = json_get(in, "stop_sequences")) != NULL &&
	    !json_object_is_type(v, json_type_null)) {
		if (!front_is(v, json_type_array)) {
			snprintf(err, errsz, "stop_sequences: Input should be "
			    "a valid list");
			return -1;
		}
		jadd(out, "stop", json_object_get(v));
	}
	if (front_is(v = json_get(json_get(in, "metadata"), "user_id"),
	    json_type_string))
		jadd(out, "user", json_object_get(v));
	return 0;
}

static int
fm_head(struct json_object *in, struct json_object *out, int counting,
    char *err, size_t errsz)
{
	struct json_object	*v;

	v = json_get(in, "model");
	if (!front_is(v, json_type_string) || json_object_get_string_len(v) ==
	    0) {
		snprintf(err, errsz, "model: Field required");
		return -1;
	}
	jadd(out, "model", json_object_get(v));
	if (counting)
		return 0;	/* what would be sent, counted: no answer */
	if ((v = json_get(in, "max_tokens")) == NULL) {
		snprintf(err, errsz, "max_tokens: Field required");
		return -1;
	}
	if (!front_is(v, json_type_int) || json_object_get_int64(v) < 1) {
		snprintf(err, errsz, "max_tokens: Input should be an integer "
		    "of at least 1");
		return -1;
	}
	jadd(out, "max_tokens", json_object_get(v));
	if ((v = json_get(in, "stream")) != NULL &&
	    !json_object_is_type(v, json_type_null)) {
		if (!front_is(v, json_type_boolean)) {
			snprintf(err, errsz, "stream: Input should be a valid "
			    "boolean");
			return -1;
		}
		if (json_object_get_boolean(v))
			front_stream_on(out);
	}
	return 0;
}

/* The OpenAI chat completion for Messages request in. */
struct json_object *
fm_request(enum http_endpoint ep, struct json_object *in,
    enum http_endpoint *op, char *err, size_t errsz)
{
	struct json_object	*out = json_object_new_object(), *msgs, *m;
	size_t			 i;

	*op = ep == EP_COUNT_TOKENS ? EP_COUNT_TOKENS : EP_CHAT;
	if (fm_head(in, out, ep == EP_COUNT_TOKENS, err, errsz) == -1 ||
	    fm_sampling(in, out, err, errsz) == -1 ||
	    fm_tools(in, out, err, errsz) == -1 ||
	    fm_tool_choice(in, out, err, errsz) == -1)
		goto bad;
	m = json_get(in, "messages");
	if (m == NULL) {
		snprintf(err, errsz, "messages: Field required");
		goto bad;
	}
	if (!front_is(m, json_type_array) || json_object_array_length(m) == 0) {
		snprintf(err, errsz, "messages: Input should be a non-empty "
		    "list");
		goto bad;
	}
	msgs = json_object_new_array();
	jadd(out, "messages", msgs);
	if (fm_system(in, msgs, err, errsz) == -1)
		goto bad;
	for (i = 0; i < json_object_array_length(m); i++)
		if (fm_message(json_object_array_get_idx(m, i), i, msgs, err,
		    errsz) == -1)
			goto bad;
	return out;
bad:
	json_object_put(out);
	return NULL;
}

/* ---- answers ------------------------------------------------------------ */

static const char *
fm_stop_reason(const struct front *fr, int tools)
{
	if (strcmp(fr->finish, "length") == 0)
		return "max_tokens";
	if (tools || strcmp(fr->finish, "tool_calls") == 0)
		return "tool_use";
	if (strcmp(fr->finish, "content_filter") == 0)
		return "refusal";
	return "end_turn";
}

static struct json_object *
fm_usage(const struct front *fr)
{
	struct json_object	*u = json_object_new_object();

	jadd(u, "input_tokens", json_object_new_int64(fr->ptok));
	jadd(u, "output_tokens", json_object_new_int64(fr->ctok));
	return u;
}

static struct json_object *
fm_message_obj(const struct front *fr)
{
	struct json_object	*o = json_object_new_object();
	char			 id[40];

	snprintf(id, sizeof(id), "msg_flm%016llx",
	    (unsigned long long)fr->reqid);
	jadd(o, "id", jstr(id));
	jadd(o, "type", jstr("message"));
	jadd(o, "role", jstr("assistant"));
	jadd(o, "model", jstr(fr->model));
	return o;
}

static struct json_object *
fm_tool_block(const char *id, const char *name, struct json_object *input)
{
	struct json_object	*b = json_object_new_object();

	jadd(b, "type", jstr("tool_use"));
	jadd(b, "id", jstr(id));
	jadd(b, "name", jstr(name));
	jadd(b, "input", input);
	return b;
}

/* The engine's tokenizer's answer: vLLM's count, llama.cpp's tokens. */
struct json_object *
fm_count_answer(struct front *fr, struct json_object *in)
{
	struct json_object	*o, *v;
	int64_t			 n;

	(void)fr;
	if ((v = json_get(in, "count")) != NULL && front_is(v, json_type_int))
		n = json_object_get_int64(v);
	else if ((v = json_get(in, "tokens")) != NULL &&
	    front_is(v, json_type_array))
		n = (int64_t)json_object_array_length(v);
	else
		return NULL;
	o = json_object_new_object();
	jadd(o, "input_tokens", json_object_new_int64(n));
	return o;
}

struct json_object *
fm_answer(struct front *fr, struct front_msg *m)
{
	struct json_object	*o, *content, *b;
	char			 id[96];
	int			 i;

	content = json_object_new_array();
	if (m->tlen > 0 || m->ncalls == 0) {
		b = json_object_new_object();
		jadd(b, "type", jstr("text"));
		jadd(b, "text", json_object_new_string_len(m->text != NULL ?
		    m->text : "", (int)m->tlen));
		json_object_array_add(content, b);
	}
	for (i = 0; i < m->ncalls; i++) {
		if (m->calls[i].id != NULL)
			snprintf(id, sizeof(id), "%s", m->calls[i].id);
		else
			snprintf(id, sizeof(id), "toolu_flm%llx_%d",
			    (unsigned long long)fr->reqid, i);
		json_object_array_add(content, fm_tool_block(id,
		    m->calls[i].name != NULL ? m->calls[i].name : "",
		    front_args_object(m->calls[i].args, m->calls[i].alen)));
	}
	o = fm_message_obj(fr);
	jadd(o, "content", content);
	jadd(o, "stop_reason", jstr(fm_stop_reason(fr, m->ncalls > 0)));
	jadd(o, "stop_sequence", NULL);
	jadd(o, "usage", fm_usage(fr));
	return o;
}

static void
fm_start(struct front *fr, struct evbuffer *out)
{
	struct json_object	*o, *msg;

	if (fr->started)
		return;
	fr->started = 1;
	msg = fm_message_obj(fr);
	jadd(msg, "content", json_object_new_array());
	jadd(msg, "stop_reason", NULL);
	jadd(msg, "stop_sequence", NULL);
	jadd(msg, "usage", fm_usage(fr));
	o = json_object_new_object();
	jadd(o, "type", jstr("message_start"));
	jadd(o, "message", msg);
	front_event(out, "message_start", o);
	o = json_object_new_object();
	jadd(o, "type", jstr("ping"));
	front_event(out, "ping", o);
}

static struct json_object *
fm_indexed(const char *type, int index)
{
	struct json_object	*o = json_object_new_object();

	jadd(o, "type", jstr(type));
	jadd(o, "index", json_object_new_int(index));
	return o;
}

static void
fm_close(struct front *fr, struct evbuffer *out)
{
	if (fr->block == -1)
		return;
	front_event(out, "content_block_stop", fm_indexed("content_block_stop",
	    fr->block));
	fr->block = -1;
}

/* content_block_start of a new block; takes b. */
static int
fm_open(struct front *fr, struct evbuffer *out, struct json_object *b,
    int text)
{
	struct json_object	*o;

	fm_close(fr, out);
	fr->block = fr->nblocks++;
	fr->text_block = text;
	o = fm_indexed("content_block_start", fr->block);
	jadd(o, "content_block", b);
	front_event(out, "content_block_start", o);
	return fr->block;
}

static void
fm_delta(struct evbuffer *out, int index, const char *type, const char *k,
    const char *s, size_t len)
{
	struct json_object	*o = fm_indexed("content_block_delta", index);
	struct json_object	*d = json_object_new_object();

	jadd(d, "type", jstr(type));
	jadd(d, k, json_object_new_string_len(s, (int)len));
	jadd(o, "delta", d);
	front_event(out, "content_block_delta", o);
}

int
fm_chunk(struct front *fr, const struct front_msg *m, struct evbuffer *out)
{
	struct json_object	*b;
	struct front_tool	*t;
	int			 i, slot, isnew;

	fm_start(fr, out);
	if (m->tlen > 0) {
		if (fr->block == -1 || !fr->text_block) {
			b = json_object_new_object();
			jadd(b, "type", jstr("text"));
			jadd(b, "text", jstr(""));
			fm_open(fr, out, b, 1);
		}
		fm_delta(out, fr->block, "text_delta", "text", m->text,
		    m->tlen);
	}
	for (i = 0; i < m->ncalls; i++) {
		if ((slot = front_tool_add(fr, &m->calls[i], &isnew)) == -1)
			return -1;
		t = &fr->tools[slot];
		if (isnew)
			t->block = fm_open(fr, out, fm_tool_block(t->id,
			    t->name, json_object_new_object()), 0);
		if (m->calls[i].alen > 0)
			fm_delta(out, t->block, "input_json_delta",
			    "partial_json", m->calls[i].args,
			    m->calls[i].alen);
	}
	return 0;
}

void
fm_end(struct front *fr, struct evbuffer *out)
{
	struct json_object	*o, *d;

	fm_start(fr, out);
	fm_close(fr, out);
	d = json_object_new_object();
	jadd(d, "stop_reason", jstr(fm_stop_reason(fr, fr->ntools > 0)));
	jadd(d, "stop_sequence", NULL);
	o = json_object_new_object();
	jadd(o, "type", jstr("message_delta"));
	jadd(o, "delta", d);
	jadd(o, "usage", fm_usage(fr));
	front_event(out, "message_delta", o);
	o = json_object_new_object();
	jadd(o, "type", jstr("message_stop"));
	front_event(out, "message_stop", o);
}
