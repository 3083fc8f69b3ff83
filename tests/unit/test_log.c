/*
 * log_escape: what flmd does to a child's log line before a terminal
 * or syslog sees it.  No byte that can end a line or drive a terminal
 * gets through, valid UTF-8 does, and the result always fits.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "jsonbuf.h"
#include "log.h"

#include <json-c/json.h>

static void
esc_is(const char *in, const char *want)
{
	char	 out[256];

	log_escape(out, sizeof(out), in);
	assert_string_equal(out, want);
}

static void
test_controls(void **state)
{
	(void)state;
	esc_is("plain text", "plain text");
	esc_is("a\nb\rc\td", "a\\nb\\rc\\td");
	esc_is("back\\slash", "back\\\\slash");
	esc_is("\033[31mred", "\\x1b[31mred");
	esc_is("\001\037\177", "\\x01\\x1f\\x7f");
}

static void
test_utf8(void **state)
{
	(void)state;
	/* Valid: é, €, 𝄞 pass as they are. */
	esc_is("caf\xc3\xa9 \xe2\x82\xac \xf0\x9d\x84\x9e",
	    "caf\xc3\xa9 \xe2\x82\xac \xf0\x9d\x84\x9e");
	/* C1 controls (CSI 0x9b), overlong forms, surrogates, beyond
	 * U+10FFFF, a lone continuation byte, a sequence cut short. */
	esc_is("\xc2\x9b", "\\xc2\\x9b");
	esc_is("\xc0\xaf", "\\xc0\\xaf");
	esc_is("\xe0\x80\xaf", "\\xe0\\x80\\xaf");
	esc_is("\xed\xa0\x80", "\\xed\\xa0\\x80");
	esc_is("\xf4\x90\x80\x80", "\\xf4\\x90\\x80\\x80");
	esc_is("\x80x", "\\x80x");
	esc_is("\xe2\x82", "\\xe2\\x82");
}

static void
test_fits(void **state)
{
	char	 in[600], out[16];
	size_t	 i;

	(void)state;
	memset(in, '\n', sizeof(in) - 1);
	in[sizeof(in) - 1] = '\0';
	log_escape(out, sizeof(out), in);
	/* 6 escapes of 2 bytes, then "...": 15 bytes and the NUL. */
	assert_string_equal(out, "\\n\\n\\n\\n\\n\\n...");
	for (i = 1; i < 5; i++) {
		memset(out, 'Z', sizeof(out));
		log_escape(out, i, "abcdef");
		if (i < 4)
			assert_true(i == 0 || out[0] == '\0');
		else
			assert_string_equal(out, "...");
	}
	/* A multi-byte character is never cut in two. */
	log_escape(out, 8, "ab\xf0\x9d\x84\x9e");
	assert_string_equal(out, "ab...");
}

static void
test_json_bounds(void **state)
{
	struct json_object	*o;

	(void)state;
	o = json_tokener_parse("[\"abc\", 5, -1, 9223372036854775807, "
	    "18446744073709551615, 1.5, true]");
	assert_non_null(o);
	assert_true(json_is_string_max(json_object_array_get_idx(o, 0), 3));
	assert_false(json_is_string_max(json_object_array_get_idx(o, 0), 2));
	assert_false(json_is_string_max(json_object_array_get_idx(o, 1), 9));
	assert_true(json_is_int_range(json_object_array_get_idx(o, 1), 0, 5));
	assert_false(json_is_int_range(json_object_array_get_idx(o, 1), 0, 4));
	assert_false(json_is_int_range(json_object_array_get_idx(o, 2), 0, 9));
	assert_false(json_is_int_range(json_object_array_get_idx(o, 3), 0,
	    1000000000));
	assert_false(json_is_int_range(json_object_array_get_idx(o, 4), 0,
	    1000000000));
	assert_false(json_is_int_range(json_object_array_get_idx(o, 5), 0, 9));
	assert_false(json_is_int_range(json_object_array_get_idx(o, 6), 0, 9));
	json_object_put(o);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_controls),
		cmocka_unit_test(test_utf8),
		cmocka_unit_test(test_fits),
		cmocka_unit_test(test_json_bounds),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
