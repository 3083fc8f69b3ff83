/*
 * lib/jwrite.c: the separators and nesting it writes, and its strings
 * read back by json-c and by jscan as the very bytes written, for every
 * byte a string may hold.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "jscan.h"
#include "jsonbuf.h"
#include "jwrite.h"

static void
expect_text(const struct jw *w, const char *want)
{
	assert_int_equal(w->err, 0);
	assert_int_equal(w->len, strlen(want));
	assert_memory_equal(w->b, want, w->len);
}

static void
test_shape(void **state)
{
	struct jw	 w;

	(void)state;
	memset(&w, 0, sizeof(w));
	jw_open(&w, '{');
	jw_key(&w, "a");
	jw_int(&w, -9223372036854775807LL - 1);
	jw_key(&w, "b");
	jw_open(&w, '[');
	jw_int(&w, 1);
	jw_str(&w, "x", 1);
	jw_open(&w, '{');
	jw_close(&w, '}');
	jw_open(&w, '[');
	jw_close(&w, ']');
	jw_lit(&w, "null");
	jw_close(&w, ']');
	jw_key(&w, "c");
	jw_open(&w, '{');
	jw_key(&w, "d");
	jw_raw(&w, "{\"e\": [true]}", 13);
	jw_close(&w, '}');
	jw_key(&w, "f");
	jw_sopen(&w);
	jw_sraw(&w, "data:", 5);
	jw_sraw(&w, "a\\nb", 4);
	jw_sesc(&w, "\"q\"", 3);
	jw_sclose(&w);
	jw_close(&w, '}');
	expect_text(&w, "{\"a\":-9223372036854775808,\"b\":[1,\"x\",{},[],null],"
	    "\"c\":{\"d\":{\"e\": [true]}},\"f\":\"data:a\\nb\\\"q\\\"\"}");
	/* As a C string: the same, its NUL not counted. */
	assert_string_equal(jw_cstr(&w), "{\"a\":-9223372036854775808,"
	    "\"b\":[1,\"x\",{},[],null],\"c\":{\"d\":{\"e\": [true]}},"
	    "\"f\":\"data:a\\nb\\\"q\\\"\"}");
	assert_int_equal(w.len, strlen(w.b));

	/* A new text: the separator state starts afresh, the room kept
	 * unless it is above what is kept. */
	jw_reset(&w, 1024);
	assert_non_null(w.b);
	jw_lit(&w, "1");
	expect_text(&w, "1");
	jw_reset(&w, 0);
	assert_null(w.b);
	assert_int_equal(w.cap, 0);
	jw_free(&w);
}

/* s written as a string value reads back, through json-c and through
 * jscan (strict RFC 8259), as the same n bytes. */
static void
roundtrip(const char *s, size_t n)
{
	struct json_object	*o, *v;
	struct jscan		 js;
	struct jw		 w;
	const char		*d;
	size_t			 dl;

	memset(&w, 0, sizeof(w));
	jw_open(&w, '{');
	jw_key(&w, "k");
	jw_str(&w, s, n);
	jw_close(&w, '}');
	assert_int_equal(w.err, 0);
	o = json_parse_buf_strict(w.b, w.len);
	assert_non_null(o);
	assert_true(json_object_object_get_ex(o, "k", &v));
	assert_int_equal(json_object_get_string_len(v), n);
	assert_memory_equal(json_object_get_string(v), s, n);
	json_object_put(o);
	memset(&js, 0, sizeof(js));
	assert_int_equal(jscan_parse(&js, w.b, w.len), 0);
	assert_int_equal(js.nm, 1);
	d = jscan_string_in(&js, w.b, &js.m[0], &dl);
	assert_non_null(d);
	assert_int_equal(dl, n);
	assert_memory_equal(d, s, n);
	jscan_free(&js);
	jw_free(&w);
}

static void
test_strings(void **state)
{
	static const char *const utf8[] = {
		"\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80", "\xef\xbf\xbf",
	};
	char		 s[4096];
	uint64_t	 x = 0x9e3779b97f4a7c15ULL;
	size_t		 i, n, k;
	int		 c;

	(void)state;
	/* Every ASCII byte, NUL and the controls included. */
	for (c = 0; c < 0x80; c++) {
		s[0] = (char)c;
		roundtrip(s, 1);
	}
	roundtrip("", 0);
	/* Random mixes of controls, quotes, backslashes and UTF-8. */
	for (i = 0; i < 20000; i++) {
		for (n = 0, k = (size_t)(x % 64); k > 0; k--) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			if (x % 5 == 0) {
				memcpy(s + n, utf8[(x >> 8) % 4],
				    strlen(utf8[(x >> 8) % 4]));
				n += strlen(utf8[(x >> 8) % 4]);
			} else
				s[n++] = (char)((x >> 16) % 0x80);
		}
		roundtrip(s, n);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_shape),
		cmocka_unit_test(test_strings),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
