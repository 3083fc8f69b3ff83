/* Whole-text JSON parsing: the one way FLM reads JSON from bytes. */
#ifndef FLM_JSONBUF_H
#define FLM_JSONBUF_H

#include <stddef.h>

struct json_object;

/* The value that is all of buf (blanks aside), or NULL. */
struct json_object	*json_parse_buf(const char *, size_t);

#endif
