/*
 * json-c stops at the end of the first value; a text with more after
 * it (or a truncated one) is refused here, so "{} trailing" is never
 * taken for "{}".
 */
#include "config.h"

#include <stdint.h>
#include <string.h>

#include <json-c/json.h>
#include <json-c/printbuf.h>

#include "jsonbuf.h"

/*
 * The tokener copies every string it reads into its print buffer, a
 * new key's text among them (flmd relays those): zeroed before it is
 * freed.  json-c has no call for it; pb is public in its header (if a
 * later json-c hides it, this stops compiling, not working).
 */
static void
json_parse_free(struct json_tokener *tok, int wipe)
{
	if (wipe && tok->pb != NULL && tok->pb->buf != NULL &&
	    tok->pb->size > 0)
		explicit_bzero(tok->pb->buf, (size_t)tok->pb->size);
	json_tokener_free(tok);
}

static struct json_object *
json_parse_do(const char *buf, size_t len, int wipe, int flags)
{
	struct json_tokener	*tok;
	struct json_object	*o;
	size_t			 end;

	if (len == 0 || len > INT32_MAX || (tok = json_tokener_new()) == NULL)
		return NULL;
	json_tokener_set_flags(tok, flags);
	o = json_tokener_parse_ex(tok, buf, (int)len);
	end = json_tokener_get_parse_end(tok);
	if (o == NULL || json_tokener_get_error(tok) != json_tokener_success) {
		/* A bare number or literal needs the end of input to be
		 * complete; all of buf was read to want more. */
		if (json_tokener_get_error(tok) == json_tokener_continue)
			o = json_tokener_parse_ex(tok, "", 1);
		/* Objects, arrays and strings end themselves: one that
		 * wanted more had something after it (a comment, say). */
		if (o == NULL || json_object_is_type(o, json_type_object) ||
		    json_object_is_type(o, json_type_array) ||
		    json_object_is_type(o, json_type_string)) {
			json_object_put(o);
			json_parse_free(tok, wipe);
			return NULL;
		}
		end = len;
	}
	for (; end < len; end++)
		if (buf[end] != ' ' && buf[end] != '\t' && buf[end] != '\r' &&
		    buf[end] != '\n') {
			json_object_put(o);
			o = NULL;
			break;
		}
	json_parse_free(tok, wipe);
	return o;
}

struct json_object *
json_parse_buf(const char *buf, size_t len)
{
	return json_parse_do(buf, len, 0, 0);
}

/* The same for text that may hold a secret: the channels' messages. */
struct json_object *
json_parse_buf_secret(const char *buf, size_t len)
{
	return json_parse_do(buf, len, 1, 0);
}

/*
 * The same with json-c's strict tokener, UTF-8 checked: for text from
 * clients and engines, judged as lib/jscan.c judges it (no comments,
 * no trailing commas, no bare words).
 */
struct json_object *
json_parse_buf_strict(const char *buf, size_t len)
{
	return json_parse_do(buf, len, 0, JSON_TOKENER_STRICT |
	    JSON_TOKENER_VALIDATE_UTF8);
}

/* A JSON string of at most max bytes: for schema checks of peers' JSON. */
int
json_is_string_max(struct json_object *v, size_t max)
{
	return json_object_is_type(v, json_type_string) &&
	    (size_t)json_object_get_string_len(v) <= max;
}

/* Member k of o, or NULL (o NULL or not an object included). */
struct json_object *
json_get(struct json_object *o, const char *k)
{
	struct json_object	*v;

	return o != NULL && json_object_object_get_ex(o, k, &v) ? v : NULL;
}

/* Member k of o: a string of at most max bytes with no NUL inside, or
 * NULL. */
const char *
json_get_string(struct json_object *o, const char *k, size_t max)
{
	struct json_object	*v;

	if (!json_object_object_get_ex(o, k, &v) || !json_is_string_max(v,
	    max) || strlen(json_object_get_string(v)) !=
	    (size_t)json_object_get_string_len(v))
		return NULL;
	return json_object_get_string(v);
}

/*
 * A JSON integer from min to max.  json-c gives INT64_MAX or INT64_MIN
 * for any integer beyond int64: bounds inside that range refuse them.
 */
int
json_is_int_range(struct json_object *v, int64_t min, int64_t max)
{
	int64_t	 n;

	if (!json_object_is_type(v, json_type_int))
		return 0;
	n = json_object_get_int64(v);
	return n >= min && n <= max;
}
