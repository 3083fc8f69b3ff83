/*
 * Anthropic's Messages API (POST /v1/messages), as the Anthropic SDK
 * and Claude-style agents speak it: the system prompt, content blocks
 * and tools become an OpenAI chat completion, and its answer content
 * blocks, tool_use, stop reasons and usage again; a stream becomes the
 * event sequence message_start ... message_stop.  Requests are read
 * where they lie and written as text (lib/jscan.c, lib/jwrite.c): a
 * client's strings are copied, escapes and all, never decoded.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <json-c/json.h>

#include "jscan.h"
#include "jsonbuf.h"
#include "jwrite.h"
#include "proxyd.h"
#include "proxyd_front.h"

/* The texts of blocks (or a string) as one string, joined by newlines;
 * -1 if a block is not text. */
static int
fm_texts(struct jw *w, const struct jval *c, const char *where, char *err,
    size_t errsz)
{
	struct jval	 b, t;
	size_t		 at = 0, i;

	if (jval_is(c, JSCAN_STRING)) {
		front_copy(w, c);
		return 0;
	}
	if (!jval_is(c, JSCAN_ARRAY)) {
		snprintf(err, errsz, "%s: Input should be a valid string or "
		    "a list of text blocks", where);
		return -1;
	}
	jw_sopen(w);
	for (i = 0; jval_next(c, &at, &b) == 0; i++) {
		if (jval_get(&b, "text", &t) == -1 ||
		    !jval_is(&t, JSCAN_STRING)) {
			snprintf(err, errsz, "%s.%zu: expected a text block",
			    where, i);
			return -1;
		}
		if (i > 0)
			jw_sraw(w, "\\n", 2);
		front_inside(w, &t);
	}
	jw_sclose(w);
	return 0;
}

/* An image block's source: 'u' (url), 'b' (base64, media type in mt),
 * or 0 with err. */
static int
fm_image_src(const struct jval *b, const char *where, struct jval *mt,
    struct jval *data, char *err, size_t errsz)
{
	struct jval	 src, type;

	jval_get(b, "source", &src);
	jval_get(&src, "type", &type);
	if (jval_streq(&type, "url") && jval_get(&src, "url", data) == 0 &&
	    jval_is(data, JSCAN_STRING))
		return 'u';
	if (jval_streq(&type, "base64") && jval_get(&src, "media_type",
	    mt) == 0 && jval_is(mt, JSCAN_STRING) && jval_get(&src, "data",
	    data) == 0 && jval_is(data, JSCAN_STRING))
		return 'b';
	snprintf(err, errsz, "%s.source: expected a base64 or url image "
	    "source", where);
	return 0;
}

/* An image block as an OpenAI image_url part. */
static void
fm_image(struct jw *w, const struct jval *b)
{
	struct jval	 mt, data;
	char		 err[1];

	jw_open(w, '{');
	jw_key(w, "type");
	jw_lit(w, "\"image_url\"");
	jw_key(w, "image_url");
	jw_open(w, '{');
	jw_key(w, "url");
	if (fm_image_src(b, "", &mt, &data, err, sizeof(err)) == 'u')
		front_copy(w, &data);
	else {
		jw_sopen(w);
		jw_sraw(w, "data:", 5);
		front_inside(w, &mt);
		jw_sraw(w, ";base64,", 8);
		front_inside(w, &data);
		jw_sclose(w);
	}
	jw_close(w, '}');
	jw_close(w, '}');
}

/* A tool_result block as OpenAI's tool message. */
static int
fm_tool_result(struct jw *w, const struct jval *b, const char *where,
    char *err, size_t errsz)
{
	struct jval	 id, c;
	char		 wc[96];

	if (jval_get(b, "tool_use_id", &id) == -1 ||
	    !jval_is(&id, JSCAN_STRING)) {
		snprintf(err, errsz, "%s.tool_use_id: Field required", where);
		return -1;
	}
	jw_open(w, '{');
	jw_key(w, "role");
	jw_lit(w, "\"tool\"");
	jw_key(w, "tool_call_id");
	front_copy(w, &id);
	jw_key(w, "content");
	snprintf(wc, sizeof(wc), "%s.content", where);
	if (jval_get(b, "content", &c) == -1 || !jval_set(&c))
		jw_lit(w, "\"\"");
	else if (fm_texts(w, &c, wc, err, errsz) == -1)
		return -1;
	jw_close(w, '}');
	return 0;
}

static int
fm_tool_use_ok(const struct jval *b, const char *where, char *err,
    size_t errsz)
{
	struct jval	 id, name, input;

	jval_get(b, "id", &id);
	jval_get(b, "name", &name);
	if (!jval_is(&id, JSCAN_STRING) || !jval_is(&name, JSCAN_STRING) ||
	    (jval_get(b, "input", &input) == 0 && jval_set(&input) &&
	    !jval_is(&input, JSCAN_OBJECT))) {
		snprintf(err, errsz, "%s: a tool_use block has a string id, "
		    "a string name and an object input", where);
		return -1;
	}
	return 0;
}

/* A tool_use block as an OpenAI tool call: its input, a JSON text, in
 * a string. */
static void
fm_tool_use(struct jw *w, const struct jval *b)
{
	struct jval	 v;

	jw_open(w, '{');
	jw_key(w, "id");
	jval_get(b, "id", &v);
	front_copy(w, &v);
	jw_key(w, "type");
	jw_lit(w, "\"function\"");
	jw_key(w, "function");
	jw_open(w, '{');
	jw_key(w, "name");
	jval_get(b, "name", &v);
	front_copy(w, &v);
	jw_key(w, "arguments");
	if (jval_get(b, "input", &v) == 0 && jval_set(&v))
		jw_str(w, v.b + v.ofs, v.end - v.ofs);
	else
		jw_lit(w, "\"{}\"");
	jw_close(w, '}');
	jw_close(w, '}');
}

enum fm_kind { FM_BAD = 0, FM_TEXT, FM_IMAGE, FM_RESULT, FM_USE, FM_SKIP };

/* What block b of a user's (or an assistant's) message is. */
static enum fm_kind
fm_kind(const struct jval *b, int user, const char *where, char *err,
    size_t errsz)
{
	struct jval	 t, x;
	const char	*type;
	size_t		 len;

	jval_get(b, "type", &t);
	if (jval_streq(&t, "text") && jval_get(b, "text", &x) == 0 &&
	    jval_is(&x, JSCAN_STRING))
		return FM_TEXT;
	if (jval_streq(&t, "image") && user)
		return FM_IMAGE;
	if (jval_streq(&t, "tool_result") && user)
		return FM_RESULT;
	if (jval_streq(&t, "tool_use") && !user)
		return FM_USE;
	if (jval_streq(&t, "thinking") || jval_streq(&t, "redacted_thinking"))
		return FM_SKIP;		/* the engine thinks afresh */
	if ((type = front_cstr(&t, &len)) == NULL)
		type = "";
	snprintf(err, errsz, "%s: a block of type '%s' is not served here "
	    "(text, image, tool_use and tool_result are)", where, type);
	return FM_BAD;
}

/*
 * A message's blocks checked, and its tool results written (each a
 * tool message, before the message): its text, other parts and calls
 * counted in n[3].
 */
static int
fm_blocks(struct jw *w, const struct jval *c, size_t i, int user,
    size_t n[3], char *err, size_t errsz)
{
	struct jval	 b, mt, data;
	char		 where[64];
	size_t		 at = 0, j;

	for (j = 0; jval_next(c, &at, &b) == 0; j++) {
		snprintf(where, sizeof(where), "messages.%zu.content.%zu",
		    i, j);
		switch (fm_kind(&b, user, where, err, errsz)) {
		case FM_BAD:
			return -1;
		case FM_TEXT:
			n[0]++;
			break;
		case FM_IMAGE:
			if (fm_image_src(&b, where, &mt, &data, err,
			    errsz) == 0)
				return -1;
			n[1]++;
			break;
		case FM_RESULT:
			if (fm_tool_result(w, &b, where, err, errsz) == -1)
				return -1;
			break;
		case FM_USE:
			if (fm_tool_use_ok(&b, where, err, errsz) == -1)
				return -1;
			n[2]++;
			break;
		case FM_SKIP:
			break;
		}
	}
	return 0;
}

/* The text blocks of checked blocks c joined: its length in bytes of
 * JSON string (0: ""). */
static size_t
fm_text_len(const struct jval *c, int user)
{
	struct jval	 b, t;
	size_t		 at = 0, n = 0, k = 0;
	char		 err[1];

	while (jval_next(c, &at, &b) == 0)
		if (fm_kind(&b, user, "", err, 1) == FM_TEXT &&
		    jval_get(&b, "text", &t) == 0)
			n += t.end - t.ofs - 2 + (k++ > 0);
	return n;
}

/* The message of checked blocks c (n[3] counted): its text and images,
 * its tool calls. */
static void
fm_parts(struct jw *w, const struct jval *role, const struct jval *c,
    int user, const size_t n[3])
{
	struct jval	 b, t;
	size_t		 at, k = 0;
	char		 err[1];
	enum fm_kind	 kind;

	jw_open(w, '{');
	jw_key(w, "role");
	front_copy(w, role);
	jw_key(w, "content");
	if (n[1] == 0 && fm_text_len(c, user) == 0 && n[2] > 0)
		jw_lit(w, "null");
	else if (n[1] == 0) {
		/* Text only: one string, which every engine takes. */
		jw_sopen(w);
		for (at = 0; jval_next(c, &at, &b) == 0; )
			if (fm_kind(&b, user, "", err, 1) == FM_TEXT) {
				if (k++ > 0)
					jw_sraw(w, "\\n", 2);
				jval_get(&b, "text", &t);
				front_inside(w, &t);
			}
		jw_sclose(w);
	} else {
		jw_open(w, '[');
		for (at = 0; jval_next(c, &at, &b) == 0; ) {
			if ((kind = fm_kind(&b, user, "", err, 1)) ==
			    FM_IMAGE)
				fm_image(w, &b);
			else if (kind == FM_TEXT) {
				jw_open(w, '{');
				jw_key(w, "type");
				jw_lit(w, "\"text\"");
				jw_key(w, "text");
				jval_get(&b, "text", &t);
				front_copy(w, &t);
				jw_close(w, '}');
			}
		}
		jw_close(w, ']');
	}
	if (n[2] > 0) {
		jw_key(w, "tool_calls");
		jw_open(w, '[');
		for (at = 0; jval_next(c, &at, &b) == 0; )
			if (fm_kind(&b, user, "", err, 1) == FM_USE)
				fm_tool_use(w, &b);
		jw_close(w, ']');
	}
	jw_close(w, '}');
}

/*
 * One Anthropic message as OpenAI messages: a user's tool results
 * first (each a tool message), then its text and images; an
 * assistant's text and tool calls in one message.
 */
static int
fm_message(struct jw *w, const struct jval *m, size_t i, char *err,
    size_t errsz)
{
	static const char *const keys[] = { "role", "content" };
	struct jval	 v[2], role, c;
	size_t		 n[3] = { 0, 0, 0 };
	int		 user;

	jval_getv(m, keys, 2, v);	/* one reading of a long message */
	role = v[0];
	c = v[1];
	user = jval_streq(&role, "user");
	if (!user && !jval_streq(&role, "assistant")) {
		snprintf(err, errsz, "messages.%zu.role: Input should be "
		    "'user' or 'assistant'", i);
		return -1;
	}
	if (jval_is(&c, JSCAN_STRING)) {
		jw_open(w, '{');
		jw_key(w, "role");
		front_copy(w, &role);
		jw_key(w, "content");
		front_copy(w, &c);
		jw_close(w, '}');
		return 0;
	}
	if (!jval_is(&c, JSCAN_ARRAY)) {
		snprintf(err, errsz, "messages.%zu.content: Input should be "
		    "a valid string or a list of content blocks", i);
		return -1;
	}
	if (fm_blocks(w, &c, i, user, n, err, errsz) == -1)
		return -1;
	if (n[0] + n[1] + n[2] > 0)
		fm_parts(w, &role, &c, user, n);
	return 0;	/* else tool results only */
}

static int
fm_system(struct jw *w, const struct jval *in, char *err, size_t errsz)
{
	struct jval	 s;

	if (jval_get(in, "system", &s) == -1 || !jval_set(&s))
		return 0;
	jw_open(w, '{');
	jw_key(w, "role");
	jw_lit(w, "\"system\"");
	jw_key(w, "content");
	if (fm_texts(w, &s, "system", err, errsz) == -1)
		return -1;
	jw_close(w, '}');
	return 0;
}

static int
fm_tools(struct jw *w, const struct jval *in, char *err, size_t errsz)
{
	struct jval	 tl, t, name, schema, d;
	size_t		 at = 0, i;

	if (jval_get(in, "tools", &tl) == -1 || !jval_set(&tl))
		return 0;
	if (!jval_is(&tl, JSCAN_ARRAY)) {
		snprintf(err, errsz, "tools: Input should be a valid list");
		return -1;
	}
	if (jval_empty(&tl))
		return 0;
	jw_key(w, "tools");
	jw_open(w, '[');
	for (i = 0; jval_next(&tl, &at, &t) == 0; i++) {
		jval_get(&t, "name", &name);
		jval_get(&t, "input_schema", &schema);
		if (!jval_is(&name, JSCAN_STRING) ||
		    !jval_is(&schema, JSCAN_OBJECT)) {
			snprintf(err, errsz, "tools.%zu: only client tools, "
			    "with a name and an input_schema, are served", i);
			return -1;
		}
		jw_open(w, '{');
		jw_key(w, "type");
		jw_lit(w, "\"function\"");
		jw_key(w, "function");
		jw_open(w, '{');
		jw_key(w, "name");
		front_copy(w, &name);
		if (jval_get(&t, "description", &d) == 0 &&
		    jval_is(&d, JSCAN_STRING)) {
			jw_key(w, "description");
			front_copy(w, &d);
		}
		jw_key(w, "parameters");
		front_copy(w, &schema);
		jw_close(w, '}');
		jw_close(w, '}');
	}
	jw_close(w, ']');
	return 0;
}

static int
fm_tool_choice(struct jw *w, const struct jval *in, char *err, size_t errsz)
{
	struct jval	 tc, type, name, v;

	if (jval_get(in, "tool_choice", &tc) == -1 || !jval_set(&tc))
		return 0;
	jval_get(&tc, "type", &type);
	jval_get(&tc, "name", &name);
	if (jval_streq(&type, "auto") || jval_streq(&type, "any") ||
	    jval_streq(&type, "none")) {
		jw_key(w, "tool_choice");
		jw_lit(w, jval_streq(&type, "auto") ? "\"auto\"" :
		    jval_streq(&type, "any") ? "\"required\"" : "\"none\"");
	} else if (jval_streq(&type, "tool") && jval_is(&name, JSCAN_STRING)) {
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
	} else {
		snprintf(err, errsz, "tool_choice: expected auto, any, none, "
		    "or tool with a name");
		return -1;
	}
	if (jval_get(&tc, "disable_parallel_tool_use", &v) == 0 &&
	    jval_is(&v, JSCAN_BOOL) && v.b[v.ofs] == 't') {
		jw_key(w, "parallel_tool_calls");
		jw_lit(w, "false");
	}
	return 0;
}

/* A member copied if it is set: -1 if it is not of type t (or u). */
static int
fm_copy(struct jw *w, const struct jval *in, const char *k, const char *as,
    enum jscan_type t, enum jscan_type u, const char *what, char *err,
    size_t errsz)
{
	struct jval	 v;

	if (jval_get(in, k, &v) == -1 || !jval_set(&v))
		return 0;
	if (!jval_is(&v, t) && !jval_is(&v, u)) {
		snprintf(err, errsz, "%s: Input should be a valid %s", k,
		    what);
		return -1;
	}
	jw_key(w, as);
	front_copy(w, &v);
	return 0;
}

/* Sampling: names shared with OpenAI, and stop_sequences. */
static int
fm_sampling(struct jw *w, const struct jval *in, char *err, size_t errsz)
{
	struct jval	 md, v;

	if (fm_copy(w, in, "temperature", "temperature", JSCAN_INT,
	    JSCAN_DOUBLE, "number", err, errsz) == -1 ||
	    fm_copy(w, in, "top_p", "top_p", JSCAN_INT, JSCAN_DOUBLE,
	    "number", err, errsz) == -1 ||
	    fm_copy(w, in, "top_k", "top_k", JSCAN_INT, JSCAN_INT, "integer",
	    err, errsz) == -1 ||
	    fm_copy(w, in, "stop_sequences", "stop", JSCAN_ARRAY,
	    JSCAN_ARRAY, "list", err, errsz) == -1)
		return -1;
	jval_get(in, "metadata", &md);
	if (jval_get(&md, "user_id", &v) == 0 && jval_is(&v, JSCAN_STRING)) {
		jw_key(w, "user");
		front_copy(w, &v);
	}
	return 0;
}

static int
fm_head(struct jw *w, const struct jval *in, int counting, char *err,
    size_t errsz)
{
	struct jval	 v;

	jval_get(in, "model", &v);
	if (!jval_is(&v, JSCAN_STRING) || v.end - v.ofs == 2) {
		snprintf(err, errsz, "model: Field required");
		return -1;
	}
	jw_key(w, "model");
	front_copy(w, &v);
	if (counting)
		return 0;	/* what would be sent, counted: no answer */
	if (jval_get(in, "max_tokens", &v) == -1 || !jval_set(&v)) {
		snprintf(err, errsz, "max_tokens: Field required");
		return -1;
	}
	if (!jval_is(&v, JSCAN_INT) || jval_int(&v) < 1) {
		snprintf(err, errsz, "max_tokens: Input should be an integer "
		    "of at least 1");
		return -1;
	}
	jw_key(w, "max_tokens");
	front_copy(w, &v);
	if (jval_get(in, "stream", &v) == 0 && jval_set(&v)) {
		if (!jval_is(&v, JSCAN_BOOL)) {
			snprintf(err, errsz, "stream: Input should be a valid "
			    "boolean");
			return -1;
		}
		if (v.b[v.ofs] == 't')
			front_stream_write(w);
	}
	return 0;
}

/* The OpenAI chat completion for Messages request in, into w. */
int
fm_request(enum http_endpoint ep, const struct jval *in, struct jw *w,
    enum http_endpoint *op, char *err, size_t errsz)
{
	struct jval	 m, e;
	size_t		 at = 0, i;

	*op = ep == EP_COUNT_TOKENS ? EP_COUNT_TOKENS : EP_CHAT;
	jw_open(w, '{');
	if (fm_head(w, in, ep == EP_COUNT_TOKENS, err, errsz) == -1 ||
	    fm_sampling(w, in, err, errsz) == -1 ||
	    fm_tools(w, in, err, errsz) == -1 ||
	    fm_tool_choice(w, in, err, errsz) == -1)
		return -1;
	if (jval_get(in, "messages", &m) == -1 || !jval_set(&m)) {
		snprintf(err, errsz, "messages: Field required");
		return -1;
	}
	if (!jval_is(&m, JSCAN_ARRAY) || jval_empty(&m)) {
		snprintf(err, errsz, "messages: Input should be a non-empty "
		    "list");
		return -1;
	}
	jw_key(w, "messages");
	jw_open(w, '[');
	if (fm_system(w, in, err, errsz) == -1)
		return -1;
	for (i = 0; jval_next(&m, &at, &e) == 0; i++)
		if (fm_message(w, &e, i, err, errsz) == -1)
			return -1;
	jw_close(w, ']');
	jw_close(w, '}');
	return 0;
}

/* ---- answers ------------------------------------------------------------ */

static const char *
fm_stop_reason(const struct front *fr, int tools)
{
	if (strcmp(fr->finish, "length") == 0)
		return "\"max_tokens\"";
	if (tools || strcmp(fr->finish, "tool_calls") == 0)
		return "\"tool_use\"";
	if (strcmp(fr->finish, "content_filter") == 0)
		return "\"refusal\"";
	return "\"end_turn\"";
}

static void
fm_usage(struct jw *w, const struct front *fr)
{
	jw_key(w, "usage");
	jw_open(w, '{');
	jw_key(w, "input_tokens");
	jw_int(w, fr->ptok);
	jw_key(w, "output_tokens");
	jw_int(w, fr->ctok);
	jw_close(w, '}');
}

/* A message's first members (open). */
static void
fm_message_head(struct jw *w, const struct front *fr)
{
	char	 id[40];
	int	 n;

	n = snprintf(id, sizeof(id), "\"msg_flm%016llx\"",
	    (unsigned long long)fr->reqid);
	jw_open(w, '{');
	jw_key(w, "id");
	jw_raw(w, id, (size_t)n);
	jw_key(w, "type");
	jw_lit(w, "\"message\"");
	jw_key(w, "role");
	jw_lit(w, "\"assistant\"");
	jw_key(w, "model");
	jw_str(w, fr->model, strlen(fr->model));
}

/* A tool_use block, its input args (NULL: {}, empty while streamed). */
static void
fm_tool_block(struct jw *w, const char *id, const char *name,
    const char *args, size_t alen)
{
	jw_open(w, '{');
	jw_key(w, "type");
	jw_lit(w, "\"tool_use\"");
	jw_key(w, "id");
	jw_str(w, id, strlen(id));
	jw_key(w, "name");
	jw_str(w, name, strlen(name));
	jw_key(w, "input");
	front_args_write(w, args, alen);
	jw_close(w, '}');
}

/* The engine's tokenizer's answer: vLLM's count, llama.cpp's tokens. */
struct json_object *
fm_count_answer(struct front *fr, struct json_object *in)
{
	struct json_object	*o, *v;
	int64_t			 n;

	(void)fr;
	if (json_object_is_type(v = json_get(in, "count"), json_type_int))
		n = json_object_get_int64(v);
	else if (json_object_is_type(v = json_get(in, "tokens"),
	    json_type_array))
		n = (int64_t)json_object_array_length(v);
	else
		return NULL;
	o = json_object_new_object();
	jadd(o, "input_tokens", json_object_new_int64(n));
	return o;
}

int
fm_answer(struct front *fr, struct front_msg *m, struct jw *w)
{
	char	 id[96];
	int	 i;

	fm_message_head(w, fr);
	jw_key(w, "content");
	jw_open(w, '[');
	if (m->tlen > 0 || m->ncalls == 0) {
		jw_open(w, '{');
		jw_key(w, "type");
		jw_lit(w, "\"text\"");
		jw_key(w, "text");
		jw_str(w, m->text != NULL ? m->text : "", m->tlen);
		jw_close(w, '}');
	}
	for (i = 0; i < m->ncalls; i++) {
		if (m->calls[i].id != NULL)
			snprintf(id, sizeof(id), "%s", m->calls[i].id);
		else
			snprintf(id, sizeof(id), "toolu_flm%llx_%d",
			    (unsigned long long)fr->reqid, i);
		fm_tool_block(w, id, m->calls[i].name != NULL ?
		    m->calls[i].name : "", m->calls[i].args, m->calls[i].alen);
	}
	jw_close(w, ']');
	jw_key(w, "stop_reason");
	jw_lit(w, fm_stop_reason(fr, m->ncalls > 0));
	jw_key(w, "stop_sequence");
	jw_lit(w, "null");
	fm_usage(w, fr);
	jw_close(w, '}');
	return 0;
}

/* An event that is {"type": name ...}: opened. */
static struct jw *
fm_event(const char *name)
{
	struct jw	*w = front_writer();

	jw_open(w, '{');
	jw_key(w, "type");
	jw_str(w, name, strlen(name));
	return w;
}

/* ... and sent. */
static void
fm_send(struct evbuffer *out, const char *name, struct jw *w)
{
	jw_close(w, '}');
	front_event_text(out, name, w);
}

static void
fm_start(struct front *fr, struct evbuffer *out)
{
	struct jw	*w;

	if (fr->started)
		return;
	fr->started = 1;
	w = fm_event("message_start");
	jw_key(w, "message");
	fm_message_head(w, fr);
	jw_key(w, "content");
	jw_lit(w, "[]");
	jw_key(w, "stop_reason");
	jw_lit(w, "null");
	jw_key(w, "stop_sequence");
	jw_lit(w, "null");
	fm_usage(w, fr);
	jw_close(w, '}');
	fm_send(out, "message_start", w);
	fm_send(out, "ping", fm_event("ping"));
}

static struct jw *
fm_indexed(const char *type, int index)
{
	struct jw	*w = fm_event(type);

	jw_key(w, "index");
	jw_int(w, index);
	return w;
}

static void
fm_close(struct front *fr, struct evbuffer *out)
{
	if (fr->block == -1)
		return;
	fm_send(out, "content_block_stop", fm_indexed("content_block_stop",
	    fr->block));
	fr->block = -1;
}

/* content_block_start of a new block: a tool's (t), or text. */
static int
fm_open(struct front *fr, struct evbuffer *out, const struct front_tool *t)
{
	struct jw	*w;

	fm_close(fr, out);
	fr->block = fr->nblocks++;
	fr->text_block = t == NULL;
	w = fm_indexed("content_block_start", fr->block);
	jw_key(w, "content_block");
	if (t != NULL)
		fm_tool_block(w, t->id, t->name, "{}", 2);
	else
		jw_lit(w, "{\"type\":\"text\",\"text\":\"\"}");
	fm_send(out, "content_block_start", w);
	return fr->block;
}

static void
fm_delta(struct evbuffer *out, int index, const char *type, const char *k,
    const char *s, size_t len)
{
	struct jw	*w = fm_indexed("content_block_delta", index);

	jw_key(w, "delta");
	jw_open(w, '{');
	jw_key(w, "type");
	jw_str(w, type, strlen(type));
	jw_key(w, k);
	jw_str(w, s, len);
	jw_close(w, '}');
	fm_send(out, "content_block_delta", w);
}

int
fm_chunk(struct front *fr, const struct front_msg *m, struct evbuffer *out)
{
	struct front_tool	*t;
	int			 i, slot, isnew;

	fm_start(fr, out);
	if (m->tlen > 0) {
		if (fr->block == -1 || !fr->text_block)
			fm_open(fr, out, NULL);
		fm_delta(out, fr->block, "text_delta", "text", m->text,
		    m->tlen);
	}
	for (i = 0; i < m->ncalls; i++) {
		if ((slot = front_tool_add(fr, &m->calls[i], &isnew)) == -1)
			return -1;
		t = &fr->tools[slot];
		if (isnew)
			t->block = fm_open(fr, out, t);
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
	struct jw	*w;

	fm_start(fr, out);
	fm_close(fr, out);
	w = fm_event("message_delta");
	jw_key(w, "delta");
	jw_open(w, '{');
	jw_key(w, "stop_reason");
	jw_lit(w, fm_stop_reason(fr, fr->ntools > 0));
	jw_key(w, "stop_sequence");
	jw_lit(w, "null");
	jw_close(w, '}');
	fm_usage(w, fr);
	fm_send(out, "message_delta", w);
	fm_send(out, "message_stop", fm_event("message_stop"));
}
