/*
 * OpenAI's Responses API (POST /v1/responses), stateless: FLM keeps no
 * response, so store: true and previous_response_id are refused and
 * the client sends the whole conversation as input items.  Instructions,
 * messages, function calls and their outputs become a chat completion;
 * its answer becomes output items (a message, function calls), and a
 * stream the event sequence response.created ... response.completed.
 * Requests are read where they lie and written as text, as Messages'.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>

#include "jscan.h"
#include "jwrite.h"
#include "proxyd.h"
#include "proxyd_front.h"

/* ---- requests --------------------------------------------------------- */

/* A message item's content: a string, or input_text/output_text and
 * input_image parts. */
static int
fr_content(struct jw *w, const struct jval *c, size_t i, char *err,
    size_t errsz)
{
	struct jval	 p, t, v;
	const char	*type;
	size_t		 at = 0, j, len;

	if (jval_is(c, JSCAN_STRING)) {
		front_copy(w, c);
		return 0;
	}
	if (!jval_is(c, JSCAN_ARRAY)) {
		snprintf(err, errsz, "input[%zu].content: expected a string "
		    "or a list of content parts", i);
		return -1;
	}
	jw_open(w, '[');
	for (j = 0; jval_next(c, &at, &p) == 0; j++) {
		jval_get(&p, "type", &t);
		jw_open(w, '{');
		if ((jval_streq(&t, "input_text") ||
		    jval_streq(&t, "output_text")) &&
		    jval_get(&p, "text", &v) == 0 && jval_is(&v, JSCAN_STRING)) {
			jw_key(w, "type");
			jw_lit(w, "\"text\"");
			jw_key(w, "text");
			front_copy(w, &v);
		} else if (jval_streq(&t, "input_image") &&
		    jval_get(&p, "image_url", &v) == 0 &&
		    jval_is(&v, JSCAN_STRING)) {
			jw_key(w, "type");
			jw_lit(w, "\"image_url\"");
			jw_key(w, "image_url");
			jw_open(w, '{');
			jw_key(w, "url");
			front_copy(w, &v);
			jw_close(w, '}');
		} else {
			if ((type = front_cstr(&t, &len)) == NULL)
				type = "";
			snprintf(err, errsz, "input[%zu].content[%zu]: a part "
			    "of type '%s' is not served here (input_text, "
			    "output_text and input_image with an image_url "
			    "are)", i, j, type);
			return -1;
		}
		jw_close(w, '}');
	}
	jw_close(w, ']');
	return 0;
}

/* The messages written: an assistant's left open (calls may follow),
 * with its tool_calls list open or not. */
struct fr_msgs {
	int	 open, calls;
};

static void
fr_flush(struct jw *w, struct fr_msgs *ms)
{
	if (ms->calls)
		jw_close(w, ']');
	if (ms->open)
		jw_close(w, '}');
	ms->open = ms->calls = 0;
}

/* A message opened: its role (a literal) and content (v, or null). */
static void
fr_msg(struct jw *w, struct fr_msgs *ms, const char *role,
    const struct jval *v)
{
	fr_flush(w, ms);
	jw_open(w, '{');
	jw_key(w, "role");
	jw_lit(w, role);
	jw_key(w, "content");
	if (v != NULL)
		front_copy(w, v);
	else
		jw_lit(w, "null");
	ms->open = 1;
}

/* A function_call item, added to the assistant message before it (or a
 * new one): consecutive calls are one turn of the model. */
static int
fr_call(struct jw *w, struct fr_msgs *ms, int asst, const struct jval *it,
    size_t i, char *err, size_t errsz)
{
	struct jval	 id, name, args;

	jval_get(it, "call_id", &id);
	jval_get(it, "name", &name);
	jval_get(it, "arguments", &args);
	if (!jval_is(&id, JSCAN_STRING) || !jval_is(&name, JSCAN_STRING) ||
	    !jval_is(&args, JSCAN_STRING)) {
		snprintf(err, errsz, "input[%zu]: a function_call has a "
		    "string call_id, name and arguments", i);
		return -1;
	}
	if (!ms->open || !asst)
		fr_msg(w, ms, "\"assistant\"", NULL);
	if (!ms->calls) {
		jw_key(w, "tool_calls");
		jw_open(w, '[');
		ms->calls = 1;
	}
	jw_open(w, '{');
	jw_key(w, "id");
	front_copy(w, &id);
	jw_key(w, "type");
	jw_lit(w, "\"function\"");
	jw_key(w, "function");
	jw_open(w, '{');
	jw_key(w, "name");
	front_copy(w, &name);
	jw_key(w, "arguments");
	front_copy(w, &args);
	jw_close(w, '}');
	jw_close(w, '}');
	return 0;
}

/* One input item; *asst: the open message is the assistant's. */
static int
fr_item(struct jw *w, struct fr_msgs *ms, int *asst, const struct jval *it,
    size_t i, char *err, size_t errsz)
{
	static const char *const roles[] = { "user", "assistant", "system",
	    "developer" };
	static const char *const keys[] = { "type", "role", "content" };
	struct jval	 f[3], t, role, id, v;
	const char	*type, *r;
	size_t		 len, k;

	if (!jval_is(it, JSCAN_OBJECT)) {
		snprintf(err, errsz, "input[%zu]: expected an object", i);
		return -1;
	}
	jval_getv(it, keys, 3, f);	/* one reading of a long message */
	t = f[0];
	role = f[1];
	if (jval_streq(&t, "function_call")) {
		if (fr_call(w, ms, *asst, it, i, err, errsz) == -1)
			return -1;
		*asst = 1;
		return 0;
	}
	if (jval_streq(&t, "function_call_output")) {
		jval_get(it, "call_id", &id);
		jval_get(it, "output", &v);
		if (!jval_is(&id, JSCAN_STRING) || !jval_is(&v, JSCAN_STRING)) {
			snprintf(err, errsz, "input[%zu]: a "
			    "function_call_output has a string call_id and "
			    "output", i);
			return -1;
		}
		fr_msg(w, ms, "\"tool\"", &v);
		jw_key(w, "tool_call_id");
		front_copy(w, &id);
		*asst = 0;
		return 0;
	}
	if (jval_streq(&t, "reasoning"))
		return 0;	/* the engine reasons afresh */
	for (k = 0; k < sizeof(roles) / sizeof(roles[0]); k++)
		if (jval_streq(&role, roles[k]))
			break;
	if ((jval_is(&t, JSCAN_STRING) && !jval_streq(&t, "message")) ||
	    k == sizeof(roles) / sizeof(roles[0])) {
		if ((type = front_cstr(&t, &len)) == NULL)
			type = "message";
		if ((r = front_cstr(&role, &len)) == NULL)
			r = "";
		snprintf(err, errsz, "input[%zu]: an item of type '%s' (role "
		    "'%s') is not served here: messages (user, assistant, "
		    "system, developer), function_call and "
		    "function_call_output are", i, type, r);
		return -1;
	}
	fr_flush(w, ms);
	jw_open(w, '{');
	jw_key(w, "role");
	if (k == 3)
		jw_lit(w, "\"system\"");
	else
		front_copy(w, &role);
	jw_key(w, "content");
	if (fr_content(w, &f[2], i, err, errsz) == -1)
		return -1;
	ms->open = 1;
	*asst = k == 1;
	return 0;
}

static int
fr_input(struct jw *w, const struct jval *in, char *err, size_t errsz)
{
	struct jval	 input, v, it;
	struct fr_msgs	 ms = { 0, 0 };
	size_t		 at = 0, i;
	int		 asst = 0;

	jw_key(w, "messages");
	jw_open(w, '[');
	jval_get(in, "instructions", &v);
	if (jval_is(&v, JSCAN_STRING))
		fr_msg(w, &ms, "\"system\"", &v);
	else if (jval_set(&v)) {
		snprintf(err, errsz, "instructions: expected a string");
		return -1;
	}
	if (jval_get(in, "input", &input) == 0 &&
	    jval_is(&input, JSCAN_STRING))
		fr_msg(w, &ms, "\"user\"", &input);
	else if (!jval_is(&input, JSCAN_ARRAY) || jval_empty(&input)) {
		snprintf(err, errsz, !jval_set(&input) ? "Missing required "
		    "parameter: 'input'." : "input: expected a string or a "
		    "non-empty list of items");
		return -1;
	} else
		for (i = 0; jval_next(&input, &at, &it) == 0; i++)
			if (fr_item(w, &ms, &asst, &it, i, err, errsz) == -1)
				return -1;
	fr_flush(w, &ms);
	jw_close(w, ']');
	return 0;
}

/* Members of o named in keep[], those set, copied into w. */
static void
fr_keep(struct jw *w, const struct jval *o, const char *const *keep,
    size_t n)
{
	struct jval	 v;
	size_t		 k;

	for (k = 0; k < n; k++)
		if (jval_get(o, keep[k], &v) == 0 && jval_set(&v)) {
			jw_key(w, keep[k]);
			front_copy(w, &v);
		}
}

static int
fr_tools(struct jw *w, const struct jval *in, char *err, size_t errsz)
{
	static const char *const keep[] = { "description", "parameters",
	    "strict" };
	struct jval	 tl, t, type, name;
	size_t		 at = 0, i;

	if (jval_get(in, "tools", &tl) == -1 || !jval_set(&tl))
		return 0;
	if (!jval_is(&tl, JSCAN_ARRAY)) {
		snprintf(err, errsz, "tools: expected a list");
		return -1;
	}
	if (jval_empty(&tl))
		return 0;
	jw_key(w, "tools");
	jw_open(w, '[');
	for (i = 0; jval_next(&tl, &at, &t) == 0; i++) {
		jval_get(&t, "type", &type);
		jval_get(&t, "name", &name);
		if (!jval_streq(&type, "function") ||
		    !jval_is(&name, JSCAN_STRING)) {
			snprintf(err, errsz, "tools[%zu]: only function tools "
			    "with a name are served here", i);
			return -1;
		}
		jw_open(w, '{');
		jw_key(w, "type");
		jw_lit(w, "\"function\"");
		jw_key(w, "function");
		jw_open(w, '{');
		jw_key(w, "name");
		front_copy(w, &name);
		fr_keep(w, &t, keep, sizeof(keep) / sizeof(keep[0]));
		jw_close(w, '}');
		jw_close(w, '}');
	}
	jw_close(w, ']');
	return 0;
}

static int
fr_tool_choice(struct jw *w, const struct jval *in, char *err, size_t errsz)
{
	struct jval	 tc, name, type;

	if (jval_get(in, "tool_choice", &tc) == -1 || !jval_set(&tc))
		return 0;
	if (jval_streq(&tc, "auto") || jval_streq(&tc, "none") ||
	    jval_streq(&tc, "required")) {
		jw_key(w, "tool_choice");
		front_copy(w, &tc);
		return 0;
	}
	jval_get(&tc, "name", &name);
	jval_get(&tc, "type", &type);
	if (jval_is(&name, JSCAN_STRING) && jval_streq(&type, "function")) {
		jw_key(w, "tool_choice");
		jw_open(w, '{');
		jw_key(w, "type");
		jw_lit(w, "\"function\"");
		jw_key(w, "function");
		jw_open(w, '{');
		jw_key(w, "name");
		front_copy(w, &name);
		jw_close(w, '}');
		jw_close(w, '}');
		return 0;
	}
	snprintf(err, errsz, "tool_choice: expected auto, none, required or "
	    "{\"type\": \"function\", \"name\": ...}");
	return -1;
}

/* text.format: plain text, a JSON object, or a schema. */
static int
fr_format(struct jw *w, const struct jval *in, char *err, size_t errsz)
{
	static const char *const keep[] = { "name", "schema", "strict",
	    "description" };
	struct jval	 text, f, type, v;

	jval_get(in, "text", &text);
	if (jval_get(&text, "format", &f) == -1 || !jval_set(&f))
		return 0;
	jval_get(&f, "type", &type);
	if (jval_streq(&type, "text"))
		return 0;
	if (jval_streq(&type, "json_object")) {
		jw_key(w, "response_format");
		jw_lit(w, "{\"type\":\"json_object\"}");
		return 0;
	}
	if (!jval_streq(&type, "json_schema") || jval_get(&f, "schema",
	    &v) == -1 || !jval_is(&v, JSCAN_OBJECT)) {
		snprintf(err, errsz, "text.format: expected text, json_object "
		    "or json_schema with a schema");
		return -1;
	}
	jw_key(w, "response_format");
	jw_open(w, '{');
	jw_key(w, "type");
	jw_lit(w, "\"json_schema\"");
	jw_key(w, "json_schema");
	jw_open(w, '{');
	fr_keep(w, &f, keep, sizeof(keep) / sizeof(keep[0]));
	if (jval_get(&f, "name", &v) == -1 || !jval_set(&v)) {
		jw_key(w, "name");
		jw_lit(w, "\"response\"");
	}
	jw_close(w, '}');
	jw_close(w, '}');
	return 0;
}

/* What FLM cannot do statelessly: said, not ignored. */
static int
fr_stateless(const struct jval *in, char *err, size_t errsz)
{
	struct jval	 v, c;

	if (jval_get(in, "store", &v) == 0 && jval_is(&v, JSCAN_BOOL) &&
	    v.b[v.ofs] == 't') {
		snprintf(err, errsz, "store: FLM keeps no responses; send "
		    "\"store\": false (or leave it out) and the whole "
		    "conversation in input.");
		return -1;
	}
	jval_get(in, "previous_response_id", &v);
	jval_get(in, "conversation", &c);
	if (jval_set(&v) || jval_set(&c)) {
		snprintf(err, errsz, "previous_response_id: FLM keeps no "
		    "responses or conversations; send the whole conversation "
		    "in input.");
		return -1;
	}
	if (jval_get(in, "background", &v) == 0 && jval_is(&v, JSCAN_BOOL) &&
	    v.b[v.ofs] == 't') {
		snprintf(err, errsz, "background: FLM answers while the "
		    "request waits; send \"background\": false.");
		return -1;
	}
	return 0;
}

/* Scalars with OpenAI's chat names: type-checked, then copied. */
static int
fr_scalars(struct jw *w, const struct jval *in, char *err, size_t errsz)
{
	static const struct {
		const char	*from, *to;
		enum jscan_type	 t;
		const char	*what;
	} sc[] = {
		{ "temperature", "temperature", JSCAN_DOUBLE, "a number" },
		{ "top_p", "top_p", JSCAN_DOUBLE, "a number" },
		{ "max_output_tokens", "max_tokens", JSCAN_INT, "an integer" },
		{ "parallel_tool_calls", "parallel_tool_calls", JSCAN_BOOL,
		    "a boolean" },
		{ "user", "user", JSCAN_STRING, "a string" },
	};
	struct jval	 v;
	size_t		 i;

	for (i = 0; i < sizeof(sc) / sizeof(sc[0]); i++) {
		if (jval_get(in, sc[i].from, &v) == -1 || !jval_set(&v))
			continue;
		if (!jval_is(&v, sc[i].t) && !(sc[i].t == JSCAN_DOUBLE &&
		    jval_is(&v, JSCAN_INT))) {
			snprintf(err, errsz, "Invalid type for '%s': expected "
			    "%s, but got %s.", sc[i].from, sc[i].what,
			    front_what(&v));
			return -1;
		}
		jw_key(w, sc[i].to);
		front_copy(w, &v);
	}
	if (jval_get(in, "stream", &v) == 0 && jval_set(&v)) {
		if (!jval_is(&v, JSCAN_BOOL)) {
			snprintf(err, errsz, "Invalid type for 'stream': "
			    "expected a boolean, but got %s.", front_what(&v));
			return -1;
		}
		if (v.b[v.ofs] == 't')
			front_stream_write(w);
	}
	return 0;
}

int
fr_request(enum http_endpoint ep, const struct jval *in, struct jw *w,
    enum http_endpoint *op, char *err, size_t errsz)
{
	struct jval	 v;

	(void)ep;
	*op = EP_CHAT;
	jval_get(in, "model", &v);
	if (!jval_is(&v, JSCAN_STRING) || v.end - v.ofs == 2) {
		snprintf(err, errsz, "You must provide a model parameter.");
		return -1;
	}
	jw_open(w, '{');
	jw_key(w, "model");
	front_copy(w, &v);
	if (fr_stateless(in, err, errsz) == -1 ||
	    fr_scalars(w, in, err, errsz) == -1 ||
	    fr_input(w, in, err, errsz) == -1 ||
	    fr_tools(w, in, err, errsz) == -1 ||
	    fr_tool_choice(w, in, err, errsz) == -1 ||
	    fr_format(w, in, err, errsz) == -1)
		return -1;
	jw_close(w, '}');
	return 0;
}

/* ---- answers ------------------------------------------------------------ */

/* An id of this answer's, as a JSON string. */
static void
fr_id(struct jw *w, const char *prefix, const struct front *fr, int n)
{
	char	 id[64];
	int	 len;

	len = snprintf(id, sizeof(id), "\"%s_flm%016llx%02x\"", prefix,
	    (unsigned long long)fr->reqid, n & 0xff);
	jw_raw(w, id, (size_t)len);
}

static void
fr_text_part(struct jw *w, const char *text, size_t len)
{
	jw_open(w, '{');
	jw_key(w, "type");
	jw_lit(w, "\"output_text\"");
	jw_key(w, "text");
	jw_str(w, text, len);
	jw_key(w, "annotations");
	jw_lit(w, "[]");
	jw_close(w, '}');
}

static void
fr_message_item(struct jw *w, const struct front *fr, int done)
{
	jw_open(w, '{');
	jw_key(w, "type");
	jw_lit(w, "\"message\"");
	jw_key(w, "id");
	fr_id(w, "msg", fr, 0);
	jw_key(w, "status");
	jw_lit(w, done ? "\"completed\"" : "\"in_progress\"");
	jw_key(w, "role");
	jw_lit(w, "\"assistant\"");
	jw_key(w, "content");
	jw_open(w, '[');
	if (done)
		fr_text_part(w, fr->text != NULL ? fr->text : "", fr->tlen);
	jw_close(w, ']');
	jw_close(w, '}');
}

static void
fr_call_item(struct jw *w, const struct front *fr, const struct front_tool *t,
    int done)
{
	jw_open(w, '{');
	jw_key(w, "type");
	jw_lit(w, "\"function_call\"");
	jw_key(w, "id");
	fr_id(w, "fc", fr, (int)(t - fr->tools) + 1);
	jw_key(w, "call_id");
	jw_str(w, t->id, strlen(t->id));
	jw_key(w, "name");
	jw_str(w, t->name, strlen(t->name));
	jw_key(w, "arguments");
	jw_str(w, done && t->args != NULL ? t->args : "", done ? t->alen : 0);
	jw_key(w, "status");
	jw_lit(w, done ? "\"completed\"" : "\"in_progress\"");
	jw_close(w, '}');
}

/* The items in their order: the message and the calls by place. */
static void
fr_output(struct jw *w, const struct front *fr)
{
	int	 i, k;

	jw_open(w, '[');
	for (i = 0; i < fr->nblocks; i++) {
		if (i == fr->msg_item) {
			fr_message_item(w, fr, 1);
			continue;
		}
		for (k = 0; k < fr->ntools; k++)
			if (fr->tools[k].block == i)
				fr_call_item(w, fr, &fr->tools[k], 1);
	}
	jw_close(w, ']');
}

static void
fr_usage(struct jw *w, const struct front *fr)
{
	jw_open(w, '{');
	jw_key(w, "input_tokens");
	jw_int(w, fr->ptok);
	jw_key(w, "input_tokens_details");
	jw_lit(w, "{\"cached_tokens\":0}");
	jw_key(w, "output_tokens");
	jw_int(w, fr->ctok);
	jw_key(w, "output_tokens_details");
	jw_lit(w, "{\"reasoning_tokens\":0}");
	jw_key(w, "total_tokens");
	jw_int(w, fr->ptok + fr->ctok);
	jw_close(w, '}');
}

/* The response object; final: with its output, status and usage. */
static void
fr_response(struct jw *w, const struct front *fr, int final)
{
	int	 cut = strcmp(fr->finish, "length") == 0;

	jw_open(w, '{');
	jw_key(w, "id");
	fr_id(w, "resp", fr, 0);
	jw_key(w, "object");
	jw_lit(w, "\"response\"");
	jw_key(w, "created_at");
	jw_int(w, (int64_t)time(NULL) - front_elapsed_ns(fr) / 1000000000);
	jw_key(w, "status");
	jw_lit(w, !final ? "\"in_progress\"" : cut ? "\"incomplete\"" :
	    "\"completed\"");
	jw_key(w, "error");
	jw_lit(w, "null");
	jw_key(w, "incomplete_details");
	jw_lit(w, final && cut ? "{\"reason\":\"max_output_tokens\"}" :
	    "null");
	jw_key(w, "model");
	jw_str(w, fr->model, strlen(fr->model));
	jw_key(w, "output");
	if (final)
		fr_output(w, fr);
	else
		jw_lit(w, "[]");
	jw_key(w, "parallel_tool_calls");
	jw_lit(w, "true");
	jw_key(w, "store");
	jw_lit(w, "false");
	jw_key(w, "usage");
	if (final)
		fr_usage(w, fr);
	else
		jw_lit(w, "null");
	jw_close(w, '}');
}

int
fr_answer(struct front *fr, struct front_msg *m, struct jw *w)
{
	int	 i, slot, isnew;

	if (m->tlen > 0 || m->ncalls == 0) {
		if (front_text_add(fr, m->text, m->tlen) == -1)
			return -1;
		fr->msg_item = fr->nblocks++;
	}
	for (i = 0; i < m->ncalls; i++) {
		m->calls[i].index = i;
		if ((slot = front_tool_add(fr, &m->calls[i], &isnew)) == -1)
			return -1;
		fr->tools[slot].block = fr->nblocks++;
	}
	fr_response(w, fr, 1);
	return 0;
}

/* One event opened: its type, its sequence number, output_index. */
static struct jw *
fr_event(struct front *fr, const char *type, int index)
{
	struct jw	*w = front_writer();

	jw_open(w, '{');
	jw_key(w, "type");
	jw_str(w, type, strlen(type));
	jw_key(w, "sequence_number");
	jw_int(w, fr->seq++);
	if (index >= 0) {
		jw_key(w, "output_index");
		jw_int(w, index);
	}
	return w;
}

/* ... and sent. */
static void
fr_send(struct evbuffer *out, const char *type, struct jw *w)
{
	jw_close(w, '}');
	front_event_text(out, type, w);
}

/* An event of item index's, with its item_id (content_index 0 for the
 * message's). */
static struct jw *
fr_item_event(struct front *fr, const char *type, int index, int tool)
{
	struct jw	*w = fr_event(fr, type, index);

	jw_key(w, "item_id");
	fr_id(w, tool >= 0 ? "fc" : "msg", fr, tool >= 0 ? tool + 1 : 0);
	if (tool < 0) {
		jw_key(w, "content_index");
		jw_int(w, 0);
	}
	return w;
}

static void
fr_start(struct front *fr, struct evbuffer *out)
{
	static const char *const ev[] = { "response.created",
	    "response.in_progress" };
	struct jw	*w;
	size_t		 i;

	if (fr->started)
		return;
	fr->started = 1;
	for (i = 0; i < sizeof(ev) / sizeof(ev[0]); i++) {
		w = fr_event(fr, ev[i], -1);
		jw_key(w, "response");
		fr_response(w, fr, 0);
		fr_send(out, ev[i], w);
	}
}

/* Item i's done events (the message's text is then whole). */
static void
fr_close(struct front *fr, int i, struct evbuffer *out)
{
	struct front_tool	*t = NULL;
	struct jw		*w;
	int			 k;

	if (i == fr->msg_item) {
		w = fr_item_event(fr, "response.output_text.done", i, -1);
		jw_key(w, "text");
		jw_str(w, fr->text ? fr->text : "", fr->tlen);
		fr_send(out, "response.output_text.done", w);
		w = fr_item_event(fr, "response.content_part.done", i, -1);
		jw_key(w, "part");
		fr_text_part(w, fr->text ? fr->text : "", fr->tlen);
		fr_send(out, "response.content_part.done", w);
		w = fr_event(fr, "response.output_item.done", i);
		jw_key(w, "item");
		fr_message_item(w, fr, 1);
		fr_send(out, "response.output_item.done", w);
		return;
	}
	for (k = 0; k < fr->ntools; k++)
		if (fr->tools[k].block == i)
			t = &fr->tools[k];
	if (t == NULL)
		return;
	w = fr_item_event(fr, "response.function_call_arguments.done", i,
	    (int)(t - fr->tools));
	jw_key(w, "arguments");
	jw_str(w, t->args ? t->args : "", t->alen);
	fr_send(out, "response.function_call_arguments.done", w);
	w = fr_event(fr, "response.output_item.done", i);
	jw_key(w, "item");
	fr_call_item(w, fr, t, 1);
	fr_send(out, "response.output_item.done", w);
}

/* The message item, added at the first text; items stay open (a
 * model may write after a call) until the end. */
static void
fr_open_message(struct front *fr, struct evbuffer *out)
{
	struct jw	*w;

	fr->msg_item = fr->nblocks++;
	w = fr_event(fr, "response.output_item.added", fr->msg_item);
	jw_key(w, "item");
	fr_message_item(w, fr, 0);
	fr_send(out, "response.output_item.added", w);
	w = fr_item_event(fr, "response.content_part.added", fr->msg_item,
	    -1);
	jw_key(w, "part");
	fr_text_part(w, "", 0);
	fr_send(out, "response.content_part.added", w);
}

int
fr_chunk(struct front *fr, const struct front_msg *m, struct evbuffer *out)
{
	struct front_tool	*t;
	struct jw		*w;
	int			 i, slot, isnew;

	fr_start(fr, out);
	if (m->tlen > 0) {
		if (fr->msg_item == -1)
			fr_open_message(fr, out);
		if (front_text_add(fr, m->text, m->tlen) == -1)
			return -1;
		w = fr_item_event(fr, "response.output_text.delta",
		    fr->msg_item, -1);
		jw_key(w, "delta");
		jw_str(w, m->text, m->tlen);
		fr_send(out, "response.output_text.delta", w);
	}
	for (i = 0; i < m->ncalls; i++) {
		if ((slot = front_tool_add(fr, &m->calls[i], &isnew)) == -1)
			return -1;
		t = &fr->tools[slot];
		if (isnew) {
			t->block = fr->nblocks++;
			w = fr_event(fr, "response.output_item.added",
			    t->block);
			jw_key(w, "item");
			fr_call_item(w, fr, t, 0);
			fr_send(out, "response.output_item.added", w);
		}
		if (m->calls[i].alen == 0)
			continue;
		w = fr_item_event(fr, "response.function_call_arguments.delta",
		    t->block, slot);
		jw_key(w, "delta");
		jw_str(w, m->calls[i].args, m->calls[i].alen);
		fr_send(out, "response.function_call_arguments.delta", w);
	}
	return 0;
}

void
fr_end(struct front *fr, struct evbuffer *out)
{
	const char	*type = strcmp(fr->finish, "length") == 0 ?
			    "response.incomplete" : "response.completed";
	struct jw	*w;
	int		 i;

	fr_start(fr, out);
	for (i = 0; i < fr->nblocks; i++)
		fr_close(fr, i, out);
	w = fr_event(fr, type, -1);
	jw_key(w, "response");
	fr_response(w, fr, 1);
	fr_send(out, type, w);
}
