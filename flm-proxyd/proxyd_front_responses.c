/*
 * OpenAI's Responses API (POST /v1/responses), stateless: FLM keeps no
 * response, so store: true and previous_response_id are refused and
 * the client sends the whole conversation as input items.  Instructions,
 * messages, function calls and their outputs become a chat completion;
 * its answer becomes output items (a message, function calls), and a
 * stream the event sequence response.created ... response.completed.
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

/* A message item's content: a string, or input_text/output_text and
 * input_image parts. */
static struct json_object *
fr_content(struct json_object *c, size_t i, char *err, size_t errsz)
{
	struct json_object	*parts, *p, *o, *u, *t;
	const char		*type;
	size_t			 j;

	if (front_is(c, json_type_string))
		return json_object_get(c);
	if (!front_is(c, json_type_array)) {
		snprintf(err, errsz, "input[%zu].content: expected a string "
		    "or a list of content parts", i);
		return NULL;
	}
	parts = json_object_new_array();
	for (j = 0; j < json_object_array_length(c); j++) {
		p = json_object_array_get_idx(c, j);
		t = json_get(p, "type");
		type = front_is(t, json_type_string) ? json_object_get_string(t) :
		    "";
		o = json_object_new_object();
		if ((strcmp(type, "input_text") == 0 ||
		    strcmp(type, "output_text") == 0) &&
		    front_is(json_get(p, "text"), json_type_string)) {
			jadd(o, "type", jstr("text"));
			jadd(o, "text", json_object_get(json_get(p, "text")));
		} else if (strcmp(type, "input_image") == 0 &&
		    front_is(json_get(p, "image_url"), json_type_string)) {
			u = json_object_new_object();
			jadd(u, "url", json_object_get(json_get(p,
			    "image_url")));
			jadd(o, "type", jstr("image_url"));
			jadd(o, "image_url", u);
		} else {
			json_object_put(o);
			json_object_put(parts);
			snprintf(err, errsz, "input[%zu].content[%zu]: a part "
			    "of type '%s' is not served here (input_text, "
			    "output_text and input_image with an image_url "
			    "are)", i, j, type);
			return NULL;
		}
		json_object_array_add(parts, o);
	}
	return parts;
}

static struct json_object *
fr_msg(const char *role, struct json_object *content)
{
	struct json_object	*o = json_object_new_object();

	jadd(o, "role", jstr(role));
	jadd(o, "content", content);
	return o;
}

/* A function_call item, added to the assistant message before it (or a
 * new one): consecutive calls are one turn of the model. */
static int
fr_call(struct json_object *it, size_t i, struct json_object *msgs,
    char *err, size_t errsz)
{
	struct json_object	*last, *calls, *c, *f;
	struct json_object	*id = json_get(it, "call_id"),
				*name = json_get(it, "name"),
				*args = json_get(it, "arguments");
	size_t			 n = json_object_array_length(msgs);

	if (!front_is(id, json_type_string) || !front_is(name, json_type_string) ||
	    !front_is(args, json_type_string)) {
		snprintf(err, errsz, "input[%zu]: a function_call has a "
		    "string call_id, name and arguments", i);
		return -1;
	}
	f = json_object_new_object();
	jadd(f, "name", json_object_get(name));
	jadd(f, "arguments", json_object_get(args));
	c = json_object_new_object();
	jadd(c, "id", json_object_get(id));
	jadd(c, "type", jstr("function"));
	jadd(c, "function", f);
	last = n > 0 ? json_object_array_get_idx(msgs, n - 1) : NULL;
	if (last == NULL || strcmp(json_object_get_string(json_get(last,
	    "role")), "assistant") != 0) {
		last = fr_msg("assistant", NULL);
		json_object_array_add(msgs, last);
	}
	if ((calls = json_get(last, "tool_calls")) == NULL) {
		calls = json_object_new_array();
		jadd(last, "tool_calls", calls);
	}
	json_object_array_add(calls, c);
	return 0;
}

static int
fr_item(struct json_object *it, size_t i, struct json_object *msgs,
    char *err, size_t errsz)
{
	struct json_object	*t = json_get(it, "type"), *role, *c, *o;
	const char		*type, *r;

	if (!front_is(it, json_type_object)) {
		snprintf(err, errsz, "input[%zu]: expected an object", i);
		return -1;
	}
	type = front_is(t, json_type_string) ? json_object_get_string(t) :
	    "message";
	if (strcmp(type, "function_call") == 0)
		return fr_call(it, i, msgs, err, errsz);
	if (strcmp(type, "function_call_output") == 0) {
		if (!front_is(json_get(it, "call_id"), json_type_string) ||
		    !front_is(json_get(it, "output"), json_type_string)) {
			snprintf(err, errsz, "input[%zu]: a "
			    "function_call_output has a string call_id and "
			    "output", i);
			return -1;
		}
		o = fr_msg("tool", json_object_get(json_get(it, "output")));
		jadd(o, "tool_call_id", json_object_get(json_get(it,
		    "call_id")));
		json_object_array_add(msgs, o);
		return 0;
	}
	if (strcmp(type, "reasoning") == 0)
		return 0;	/* the engine reasons afresh */
	role = json_get(it, "role");
	r = front_is(role, json_type_string) ? json_object_get_string(role) : "";
	if (strcmp(type, "message") != 0 || (strcmp(r, "user") != 0 &&
	    strcmp(r, "assistant") != 0 && strcmp(r, "system") != 0 &&
	    strcmp(r, "developer") != 0)) {
		snprintf(err, errsz, "input[%zu]: an item of type '%s' (role "
		    "'%s') is not served here: messages (user, assistant, "
		    "system, developer), function_call and "
		    "function_call_output are", i, type, r);
		return -1;
	}
	if ((c = fr_content(json_get(it, "content"), i, err, errsz)) == NULL)
		return -1;
	json_object_array_add(msgs, fr_msg(strcmp(r, "developer") == 0 ?
	    "system" : r, c));
	return 0;
}

static int
fr_input(struct json_object *in, struct json_object *out, char *err,
    size_t errsz)
{
	struct json_object	*input = json_get(in, "input"), *msgs, *v;
	size_t			 i;

	msgs = json_object_new_array();
	jadd(out, "messages", msgs);
	if (front_is(v = json_get(in, "instructions"), json_type_string))
		json_object_array_add(msgs, fr_msg("system",
		    json_object_get(v)));
	else if (front_set(v)) {
		snprintf(err, errsz, "instructions: expected a string");
		return -1;
	}
	if (front_is(input, json_type_string)) {
		json_object_array_add(msgs, fr_msg("user",
		    json_object_get(input)));
		return 0;
	}
	if (!front_is(input, json_type_array) ||
	    json_object_array_length(input) == 0) {
		snprintf(err, errsz, input == NULL ? "Missing required "
		    "parameter: 'input'." : "input: expected a string or a "
		    "non-empty list of items");
		return -1;
	}
	for (i = 0; i < json_object_array_length(input); i++)
		if (fr_item(json_object_array_get_idx(input, i), i, msgs, err,
		    errsz) == -1)
			return -1;
	return 0;
}

static int
fr_tools(struct json_object *in, struct json_object *out, char *err,
    size_t errsz)
{
	struct json_object	*tl = json_get(in, "tools"), *t, *f, *o, *v;
	static const char *const keep[] = { "description", "parameters",
	    "strict" };
	size_t			 i, k;

	if (!front_set(tl))
		return 0;
	if (!front_is(tl, json_type_array)) {
		snprintf(err, errsz, "tools: expected a list");
		return -1;
	}
	if (json_object_array_length(tl) == 0)
		return 0;
	o = json_object_new_array();
	jadd(out, "tools", o);
	for (i = 0; i < json_object_array_length(tl); i++) {
		t = json_object_array_get_idx(tl, i);
		v = json_get(t, "type");
		if (!front_is(v, json_type_string) || strcmp(
		    json_object_get_string(v), "function") != 0 ||
		    !front_is(json_get(t, "name"), json_type_string)) {
			snprintf(err, errsz, "tools[%zu]: only function tools "
			    "with a name are served here", i);
			return -1;
		}
		f = json_object_new_object();
		jadd(f, "name", json_object_get(json_get(t, "name")));
		for (k = 0; k < sizeof(keep) / sizeof(keep[0]); k++)
			if (front_set(v = json_get(t, keep[k])))
				jadd(f, keep[k], json_object_get(v));
		v = json_object_new_object();
		jadd(v, "type", jstr("function"));
		jadd(v, "function", f);
		json_object_array_add(o, v);
	}
	return 0;
}

static int
fr_tool_choice(struct json_object *in, struct json_object *out, char *err,
    size_t errsz)
{
	struct json_object	*tc = json_get(in, "tool_choice"), *f, *v;
	const char		*s;

	if (!front_set(tc))
		return 0;
	if (front_is(tc, json_type_string) && (strcmp(s =
	    json_object_get_string(tc), "auto") == 0 || strcmp(s, "none") ==
	    0 || strcmp(s, "required") == 0)) {
		jadd(out, "tool_choice", json_object_get(tc));
		return 0;
	}
	if (front_is(json_get(tc, "name"), json_type_string) &&
	    front_is(v = json_get(tc, "type"), json_type_string) &&
	    strcmp(json_object_get_string(v), "function") == 0) {
		f = json_object_new_object();
		jadd(f, "name", json_object_get(json_get(tc, "name")));
		v = json_object_new_object();
		jadd(v, "type", jstr("function"));
		jadd(v, "function", f);
		jadd(out, "tool_choice", v);
		return 0;
	}
	snprintf(err, errsz, "tool_choice: expected auto, none, required or "
	    "{\"type\": \"function\", \"name\": ...}");
	return -1;
}

/* text.format: plain text, a JSON object, or a schema. */
static int
fr_format(struct json_object *in, struct json_object *out, char *err,
    size_t errsz)
{
	struct json_object	*f = json_get(json_get(in, "text"), "format");
	struct json_object	*rf, *js, *v;
	const char		*type;
	static const char *const keep[] = { "name", "schema", "strict",
	    "description" };
	size_t			 k;

	if (!front_set(f))
		return 0;
	type = front_is(v = json_get(f, "type"), json_type_string) ?
	    json_object_get_string(v) : "";
	if (strcmp(type, "text") == 0)
		return 0;
	rf = json_object_new_object();
	if (strcmp(type, "json_object") == 0)
		jadd(rf, "type", jstr("json_object"));
	else if (strcmp(type, "json_schema") == 0 &&
	    front_is(json_get(f, "schema"), json_type_object)) {
		js = json_object_new_object();
		for (k = 0; k < sizeof(keep) / sizeof(keep[0]); k++)
			if (front_set(v = json_get(f, keep[k])))
				jadd(js, keep[k], json_object_get(v));
		if (json_get(js, "name") == NULL)
			jadd(js, "name", jstr("response"));
		jadd(rf, "type", jstr("json_schema"));
		jadd(rf, "json_schema", js);
	} else {
		json_object_put(rf);
		snprintf(err, errsz, "text.format: expected text, json_object "
		    "or json_schema with a schema");
		return -1;
	}
	jadd(out, "response_format", rf);
	return 0;
}

/* What FLM cannot do statelessly: said, not ignored. */
static int
fr_stateless(struct json_object *in, char *err, size_t errsz)
{
	struct json_object	*v;

	if (front_is(v = json_get(in, "store"), json_type_boolean) &&
	    json_object_get_boolean(v)) {
		snprintf(err, errsz, "store: FLM keeps no responses; send "
		    "\"store\": false (or leave it out) and the whole "
		    "conversation in input.");
		return -1;
	}
	if (front_set(json_get(in, "previous_response_id")) ||
	    front_set(json_get(in, "conversation"))) {
		snprintf(err, errsz, "previous_response_id: FLM keeps no "
		    "responses or conversations; send the whole conversation "
		    "in input.");
		return -1;
	}
	if (front_is(v = json_get(in, "background"), json_type_boolean) &&
	    json_object_get_boolean(v)) {
		snprintf(err, errsz, "background: FLM answers while the "
		    "request waits; send \"background\": false.");
		return -1;
	}
	return 0;
}

/* Scalars with OpenAI's chat names: type-checked, then copied. */
static int
fr_scalars(struct json_object *in, struct json_object *out, char *err,
    size_t errsz)
{
	static const struct {
		const char	*from, *to;
		enum json_type	 t;
	} sc[] = {
		{ "temperature", "temperature", json_type_double },
		{ "top_p", "top_p", json_type_double },
		{ "max_output_tokens", "max_tokens", json_type_int },
		{ "parallel_tool_calls", "parallel_tool_calls",
		    json_type_boolean },
		{ "user", "user", json_type_string },
	};
	struct json_object	*v;
	size_t			 i;

	for (i = 0; i < sizeof(sc) / sizeof(sc[0]); i++) {
		if (!front_set(v = json_get(in, sc[i].from)))
			continue;
		if (!json_object_is_type(v, sc[i].t) && !(sc[i].t ==
		    json_type_double && json_object_is_type(v, json_type_int))) {
			snprintf(err, errsz, "Invalid type for '%s': expected "
			    "%s, but got %s.", sc[i].from, sc[i].t ==
			    json_type_double ? "a number" : sc[i].t ==
			    json_type_int ? "an integer" : sc[i].t ==
			    json_type_boolean ? "a boolean" : "a string",
			    front_type_name(v));
			return -1;
		}
		jadd(out, sc[i].to, json_object_get(v));
	}
	if (front_set(v = json_get(in, "stream"))) {
		if (!front_is(v, json_type_boolean)) {
			snprintf(err, errsz, "Invalid type for 'stream': "
			    "expected a boolean, but got %s.",
			    front_type_name(v));
			return -1;
		}
		if (json_object_get_boolean(v))
			front_stream_on(out);
	}
	return 0;
}

struct json_object *
fr_request(enum http_endpoint ep, struct json_object *in,
    enum http_endpoint *op, char *err, size_t errsz)
{
	struct json_object	*out = json_object_new_object(), *v;

	(void)ep;
	*op = EP_CHAT;
	v = json_get(in, "model");
	if (!front_is(v, json_type_string) || json_object_get_string_len(v) ==
	    0) {
		snprintf(err, errsz, "You must provide a model parameter.");
		goto bad;
	}
	jadd(out, "model", json_object_get(v));
	if (fr_stateless(in, err, errsz) == -1 ||
	    fr_scalars(in, out, err, errsz) == -1 ||
	    fr_input(in, out, err, errsz) == -1 ||
	    fr_tools(in, out, err, errsz) == -1 ||
	    fr_tool_choice(in, out, err, errsz) == -1 ||
	    fr_format(in, out, err, errsz) == -1)
		goto bad;
	return out;
bad:
	json_object_put(out);
	return NULL;
}

/* ---- answers ------------------------------------------------------------ */

static void
fr_id(char *buf, size_t sz, const char *prefix, const struct front *fr,
    int n)
{
	snprintf(buf, sz, "%s_flm%016llx%02x", prefix,
	    (unsigned long long)fr->reqid, n & 0xff);
}

static struct json_object *
fr_text_part(const char *text, size_t len)
{
	struct json_object	*p = json_object_new_object();

	jadd(p, "type", jstr("output_text"));
	jadd(p, "text", json_object_new_string_len(text, (int)len));
	jadd(p, "annotations", json_object_new_array());
	return p;
}

static struct json_object *
fr_message_item(const struct front *fr, int done)
{
	struct json_object	*o = json_object_new_object(), *c;
	char			 id[48];

	fr_id(id, sizeof(id), "msg", fr, 0);
	jadd(o, "type", jstr("message"));
	jadd(o, "id", jstr(id));
	jadd(o, "status", jstr(done ? "completed" : "in_progress"));
	jadd(o, "role", jstr("assistant"));
	c = json_object_new_array();
	if (done)
		json_object_array_add(c, fr_text_part(fr->text != NULL ?
		    fr->text : "", fr->tlen));
	jadd(o, "content", c);
	return o;
}

static struct json_object *
fr_call_item(const struct front *fr, const struct front_tool *t, int done)
{
	struct json_object	*o = json_object_new_object();
	char			 id[48];

	fr_id(id, sizeof(id), "fc", fr, (int)(t - fr->tools) + 1);
	jadd(o, "type", jstr("function_call"));
	jadd(o, "id", jstr(id));
	jadd(o, "call_id", jstr(t->id));
	jadd(o, "name", jstr(t->name));
	jadd(o, "arguments", json_object_new_string_len(done && t->args ?
	    t->args : "", done ? (int)t->alen : 0));
	jadd(o, "status", jstr(done ? "completed" : "in_progress"));
	return o;
}

/* The items in their order: the message and the calls by place. */
static struct json_object *
fr_output(const struct front *fr)
{
	struct json_object	*a = json_object_new_array();
	int			 i, k;

	for (i = 0; i < fr->nblocks; i++) {
		if (i == fr->msg_item) {
			json_object_array_add(a, fr_message_item(fr, 1));
			continue;
		}
		for (k = 0; k < fr->ntools; k++)
			if (fr->tools[k].block == i)
				json_object_array_add(a, fr_call_item(fr,
				    &fr->tools[k], 1));
	}
	return a;
}

static struct json_object *
fr_usage(const struct front *fr)
{
	struct json_object	*u = json_object_new_object(), *d;

	jadd(u, "input_tokens", json_object_new_int64(fr->ptok));
	d = json_object_new_object();
	jadd(d, "cached_tokens", json_object_new_int(0));
	jadd(u, "input_tokens_details", d);
	jadd(u, "output_tokens", json_object_new_int64(fr->ctok));
	d = json_object_new_object();
	jadd(d, "reasoning_tokens", json_object_new_int(0));
	jadd(u, "output_tokens_details", d);
	jadd(u, "total_tokens", json_object_new_int64(fr->ptok + fr->ctok));
	return u;
}

/* The response object; final: with its output, status and usage. */
static struct json_object *
fr_response(const struct front *fr, int final)
{
	struct json_object	*o = json_object_new_object(), *d;
	char			 id[48];
	int			 cut = strcmp(fr->finish, "length") == 0;

	fr_id(id, sizeof(id), "resp", fr, 0);
	jadd(o, "id", jstr(id));
	jadd(o, "object", jstr("response"));
	jadd(o, "created_at", json_object_new_int64((int64_t)time(NULL) -
	    front_elapsed_ns(fr) / 1000000000));
	jadd(o, "status", jstr(!final ? "in_progress" : cut ? "incomplete" :
	    "completed"));
	jadd(o, "error", NULL);
	if (final && cut) {
		d = json_object_new_object();
		jadd(d, "reason", jstr("max_output_tokens"));
		jadd(o, "incomplete_details", d);
	} else
		jadd(o, "incomplete_details", NULL);
	jadd(o, "model", jstr(fr->model));
	jadd(o, "output", final ? fr_output(fr) : json_object_new_array());
	jadd(o, "parallel_tool_calls", json_object_new_boolean(1));
	jadd(o, "store", json_object_new_boolean(0));
	jadd(o, "usage", final ? fr_usage(fr) : NULL);
	return o;
}

struct json_object *
fr_answer(struct front *fr, struct front_msg *m)
{
	int	 i, slot, isnew;

	if (m->tlen > 0 || m->ncalls == 0) {
		if (front_text_add(fr, m->text, m->tlen) == -1)
			return NULL;
		fr->msg_item = fr->nblocks++;
	}
	for (i = 0; i < m->ncalls; i++) {
		m->calls[i].index = i;
		if ((slot = front_tool_add(fr, &m->calls[i], &isnew)) == -1)
			return NULL;
		fr->tools[slot].block = fr->nblocks++;
	}
	return fr_response(fr, 1);
}

/* One event: its type, its sequence number, and o's members. */
static void
fr_event(struct front *fr, struct evbuffer *out, const char *type,
    struct json_object *o)
{
	jadd(o, "type", jstr(type));
	jadd(o, "sequence_number", json_object_new_int(fr->seq++));
	front_event(out, type, o);
}

static struct json_object *
fr_at(int index)
{
	struct json_object	*o = json_object_new_object();

	jadd(o, "output_index", json_object_new_int(index));
	return o;
}

static void
fr_start(struct front *fr, struct evbuffer *out)
{
	struct json_object	*o;

	if (fr->started)
		return;
	fr->started = 1;
	o = json_object_new_object();
	jadd(o, "response", fr_response(fr, 0));
	fr_event(fr, out, "response.created", o);
	o = json_object_new_object();
	jadd(o, "response", fr_response(fr, 0));
	fr_event(fr, out, "response.in_progress", o);
}

/* Item i's done events (the message's text is then whole). */
static void
fr_close(struct front *fr, int i, struct evbuffer *out)
{
	struct json_object	*o;
	struct front_tool	*t = NULL;
	char			 id[48];
	int			 k;

	if (i == fr->msg_item) {
		fr_id(id, sizeof(id), "msg", fr, 0);
		o = fr_at(i);
		jadd(o, "item_id", jstr(id));
		jadd(o, "content_index", json_object_new_int(0));
		jadd(o, "text", json_object_new_string_len(fr->text ?
		    fr->text : "", (int)fr->tlen));
		fr_event(fr, out, "response.output_text.done", o);
		o = fr_at(i);
		jadd(o, "item_id", jstr(id));
		jadd(o, "content_index", json_object_new_int(0));
		jadd(o, "part", fr_text_part(fr->text ? fr->text : "",
		    fr->tlen));
		fr_event(fr, out, "response.content_part.done", o);
		o = fr_at(i);
		jadd(o, "item", fr_message_item(fr, 1));
		fr_event(fr, out, "response.output_item.done", o);
		return;
	}
	for (k = 0; k < fr->ntools; k++)
		if (fr->tools[k].block == i)
			t = &fr->tools[k];
	if (t == NULL)
		return;
	fr_id(id, sizeof(id), "fc", fr, (int)(t - fr->tools) + 1);
	o = fr_at(i);
	jadd(o, "item_id", jstr(id));
	jadd(o, "arguments", json_object_new_string_len(t->args ? t->args :
	    "", (int)t->alen));
	fr_event(fr, out, "response.function_call_arguments.done", o);
	o = fr_at(i);
	jadd(o, "item", fr_call_item(fr, t, 1));
	fr_event(fr, out, "response.output_item.done", o);
}

/* The message item, added at the first text; items stay open (a
 * model may write after a call) until the end. */
static void
fr_open_message(struct front *fr, struct evbuffer *out)
{
	struct json_object	*o;
	char			 id[48];

	fr->msg_item = fr->nblocks++;
	o = fr_at(fr->msg_item);
	jadd(o, "item", fr_message_item(fr, 0));
	fr_event(fr, out, "response.output_item.added", o);
	fr_id(id, sizeof(id), "msg", fr, 0);
	o = fr_at(fr->msg_item);
	jadd(o, "item_id", jstr(id));
	jadd(o, "content_index", json_object_new_int(0));
	jadd(o, "part", fr_text_part("", 0));
	fr_event(fr, out, "response.content_part.added", o);
}

int
fr_chunk(struct front *fr, const struct front_msg *m, struct evbuffer *out)
{
	struct json_object	*o;
	struct front_tool	*t;
	char			 id[48];
	int			 i, slot, isnew;

	fr_start(fr, out);
	if (m->tlen > 0) {
		if (fr->msg_item == -1)
			fr_open_message(fr, out);
		if (front_text_add(fr, m->text, m->tlen) == -1)
			return -1;
		fr_id(id, sizeof(id), "msg", fr, 0);
		o = fr_at(fr->msg_item);
		jadd(o, "item_id", jstr(id));
		jadd(o, "content_index", json_object_new_int(0));
		jadd(o, "delta", json_object_new_string_len(m->text,
		    (int)m->tlen));
		fr_event(fr, out, "response.output_text.delta", o);
	}
	for (i = 0; i < m->ncalls; i++) {
		if ((slot = front_tool_add(fr, &m->calls[i], &isnew)) == -1)
			return -1;
		t = &fr->tools[slot];
		if (isnew) {
			t->block = fr->nblocks++;
			o = fr_at(t->block);
			jadd(o, "item", fr_call_item(fr, t, 0));
			fr_event(fr, out, "response.output_item.added", o);
		}
		if (m->calls[i].alen == 0)
			continue;
		fr_id(id, sizeof(id), "fc", fr, slot + 1);
		o = fr_at(t->block);
		jadd(o, "item_id", jstr(id));
		jadd(o, "delta", json_object_new_string_len(m->calls[i].args,
		    (int)m->calls[i].alen));
		fr_event(fr, out, "response.function_call_arguments.delta", o);
	}
	return 0;
}

void
fr_end(struct front *fr, struct evbuffer *out)
{
	struct json_object	*o;
	int			 i;

	fr_start(fr, out);
	for (i = 0; i < fr->nblocks; i++)
		fr_close(fr, i, out);
	o = json_object_new_object();
	jadd(o, "response", fr_response(fr, 1));
	fr_event(fr, out, strcmp(fr->finish, "length") == 0 ?
	    "response.incomplete" : "response.completed", o);
}
