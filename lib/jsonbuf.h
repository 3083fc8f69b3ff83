/* Whole-text JSON parsing: the one way FLM reads JSON from bytes. */
#ifndef FLM_JSONBUF_H
#define FLM_JSONBUF_H

#include <stddef.h>
#include <stdint.h>

struct json_object;

/* The value that is all of buf (blanks aside), or NULL. */
struct json_object	*json_parse_buf(const char *, size_t);
struct json_object	*json_parse_buf_secret(const char *, size_t);
struct json_object	*json_parse_buf_strict(const char *, size_t);
int			 json_is_string_max(struct json_object *, size_t);
struct json_object	*json_get(struct json_object *, const char *);
const char		*json_get_string(struct json_object *, const char *,
			    size_t);
int			 json_is_int_range(struct json_object *, int64_t,
			    int64_t);

#endif
