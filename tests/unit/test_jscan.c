/*
 * lib/jscan.c against json-c, the judge proxyd used before it: hand
 * cases for each rule, then a fixed-seed differential run (valid JSON
 * from a grammar, and byte mutations of it and of tricky texts).  The
 * rule held: where json-c's strict tokener (json_parse_buf_strict)
 * refuses a text, so does jscan; where json-c takes an object, jscan
 * takes it with every field json-c would give, or refuses it as not
 * RFC 8259 JSON (JSCAN_ESTRICT); valid JSON jscan always takes.
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

#include "jscan-diff.h"

static const char *
fail_text(const char *buf, size_t len)
{
	static char	 out[600];
	size_t		 i, n = 0;

	for (i = 0; i < len && n + 5 < sizeof(out); i++)
		n += (unsigned char)buf[i] >= 0x20 &&
		    (unsigned char)buf[i] < 0x7f ? (size_t)snprintf(out + n,
		    sizeof(out) - n, "%c", buf[i]) : (size_t)snprintf(out + n,
		    sizeof(out) - n, "\\x%02x", (unsigned char)buf[i]);
	out[n] = '\0';
	return out;
}

/* One text: the differential rule; returns jscan's verdict. */
static int
check(const char *buf, size_t len, int valid)
{
	char	 why[200];
	int	 rc;

	rc = jscan_diff(buf, len, "role", why, sizeof(why));
	if (rc == JSCAN_DIFF_BAD || (valid && rc != JSCAN_DIFF_BOTH_TAKE)) {
		print_error("jscan and json-c differ on [%s]: %s\n",
		    fail_text(buf, len), valid && rc != JSCAN_DIFF_BAD ?
		    "valid JSON refused" : why);
		fail();
	}
	return rc;
}

static int
verdict(const char *s)
{
	struct jscan	 js;
	int		 rc;

	memset(&js, 0, sizeof(js));
	js.elem_key = "role";
	check(s, strlen(s), 0);
	rc = jscan_parse(&js, s, strlen(s)) == 0 ? JSCAN_OK : (int)js.err;
	jscan_free(&js);
	return rc;
}

static void
test_rules(void **state)
{
	static const struct {
		const char	*text;
		int		 want;
	} c[] = {
		{ "{}", JSCAN_OK },
		{ "{\"\":1,\"\":{\"\":2}}", JSCAN_OK },
		{ " \t\r\n{\"a\":1} \r\n\t", JSCAN_OK },
		{ "", JSCAN_ESYNTAX },
		{ "[1]", JSCAN_ENOTOBJ },
		{ "1", JSCAN_ENOTOBJ },
		{ "\"s\"", JSCAN_ENOTOBJ },
		/* trailing garbage: lib/jsonbuf.c's rule */
		{ "{} x", JSCAN_ESYNTAX },
		{ "{}{}", JSCAN_ESYNTAX },
		{ "{}\v", JSCAN_ESYNTAX },
		{ "{} /* c */", JSCAN_ESYNTAX },
		{ "{\"a\":1}}", JSCAN_ESYNTAX },
		{ "{\"a\":1", JSCAN_ESYNTAX },
		/* no comments, trailing commas, bare words */
		{ "{/*c*/\"a\":1}", JSCAN_ESYNTAX },
		{ "{\"a\":1,}", JSCAN_ESYNTAX },
		{ "{\"a\":[1,]}", JSCAN_ESYNTAX },
		{ "{,\"a\":1}", JSCAN_ESYNTAX },
		{ "{\"a\":TRUE}", JSCAN_ESYNTAX },
		{ "{\"a\":nul}", JSCAN_ESYNTAX },
		{ "{a:1}", JSCAN_ESYNTAX },
		{ "\xef\xbb\xbf{}", JSCAN_ENOTOBJ },
		/* what json-c's strict tokener takes and RFC 8259 does not */
		{ "{'a':1}", JSCAN_ESTRICT },
		{ "{\"a\":'b'}", JSCAN_ESTRICT },
		{ "{\"a\":NaN}", JSCAN_ESTRICT },
		{ "{\"a\":Infinity}", JSCAN_ESTRICT },
		{ "{\"a\":-Infinity}", JSCAN_ESTRICT },
		{ "{\"a\":00}", JSCAN_ESTRICT },
		{ "{\"a\":-01}", JSCAN_ESTRICT },
		{ "{\"a\":1.}", JSCAN_ESTRICT },
		{ "{\"a\":1.e5}", JSCAN_ESTRICT },
		{ "{\"a\":\"\x01\"}", JSCAN_ESTRICT },
		{ "{\"a\":\"\x1f\"}", JSCAN_ESTRICT },
		{ "{\"a\\u0000b\":1}", JSCAN_ESTRICT },
		{ "{\"a\":\"\\ud800\"}", JSCAN_ESTRICT },
		{ "{\"a\":\"\\udc00\"}", JSCAN_ESTRICT },
		{ "{\"a\":\"\\ud800\\u0041\"}", JSCAN_ESTRICT },
		{ "{\"a\":\"\\ud800\\ud800\"}", JSCAN_ESTRICT },
		{ "{\"a\":\"\xc0\x80\"}", JSCAN_ESTRICT },
		{ "{\"a\":\"\xe0\x80\x80\"}", JSCAN_ESTRICT },
		{ "{\"a\":\"\xed\xa0\x80\"}", JSCAN_ESTRICT },
		{ "{\"a\":\"\xf4\x90\x80\x80\"}", JSCAN_ESTRICT },
		{ "{\"a\":\"\xf5\x80\x80\x80\"}", JSCAN_ESTRICT },
		/* invalid UTF-8 json-c refuses too */
		{ "{\"a\":\"\x80\"}", JSCAN_ESYNTAX },
		{ "{\"a\":\"\xc3\"}", JSCAN_ESYNTAX },
		{ "{\"a\":\"\xe2\x82\"}", JSCAN_ESYNTAX },
		{ "{\"a\":\"\xf8\x80\"}", JSCAN_ESYNTAX },
		{ "{\"a\":\"\xff\"}", JSCAN_ESYNTAX },
		/* escapes */
		{ "{\"a\":\"\\x\"}", JSCAN_ESYNTAX },
		{ "{\"a\":\"\\u00\"}", JSCAN_ESYNTAX },
		{ "{\"a\":\"\\u12G4\"}", JSCAN_ESYNTAX },
		{ "{\"a\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\uD834\\uDD1E\"}",
		    JSCAN_OK },
		{ "{\"a\":\"\\u0000\"}", JSCAN_OK },
		/* numbers */
		{ "{\"a\":-0,\"b\":0.5,\"c\":1e5,\"d\":1E+5,\"e\":-1.5e-3}",
		    JSCAN_OK },
		{ "{\"a\":99999999999999999999,\"b\":-99999999999999999999}",
		    JSCAN_OK },
		{ "{\"a\":1e999}", JSCAN_OK },
		{ "{\"a\":.5}", JSCAN_ESYNTAX },
		{ "{\"a\":+1}", JSCAN_ESYNTAX },
		{ "{\"a\":1e}", JSCAN_ESTRICT },
		{ "{\"a\":0x10}", JSCAN_ESYNTAX },
		{ "{\"a\":1.5.5}", JSCAN_ESYNTAX },
		/* NUL: json-c's text ends there */
		{ "{\"a\":\"\0\"}", JSCAN_ESYNTAX },
		/* duplicates: the last wins */
		{ "{\"model\":\"a\",\"model\":\"b\"}", JSCAN_OK },
		{ "{\"mod\\u0065l\":\"a\",\"model\":1,\"m\\u006fdel\":\"c\"}",
		    JSCAN_OK },
	};
	size_t	 i;

	(void)state;
	for (i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		int	 got = verdict(c[i].text);

		if (got != c[i].want) {
			print_error("[%s]: %s, want %s\n", c[i].text,
			    jscan_strerror(got), jscan_strerror(c[i].want));
			fail();
		}
	}
}

/* Nesting: 32 levels as json-c's default depth, not 33; a scalar
 * counts as a level. */
static void
test_depth(void **state)
{
	char	 buf[200];
	size_t	 n, d;

	(void)state;
	for (d = 30; d <= 34; d++) {
		n = (size_t)snprintf(buf, sizeof(buf), "{\"a\":");
		memset(buf + n, '[', d - 1);
		n += d - 1;
		memset(buf + n, ']', d - 1);
		n += d - 1;
		buf[n++] = '}';
		assert_int_equal(check(buf, n, 0), d <= 32 ?
		    JSCAN_DIFF_BOTH_TAKE : JSCAN_DIFF_BOTH_REFUSE);
		/* the same with a 1 in the innermost */
		n = (size_t)snprintf(buf, sizeof(buf), "{\"a\":");
		memset(buf + n, '[', d - 1);
		n += d - 1;
		buf[n++] = '1';
		memset(buf + n, ']', d - 1);
		n += d - 1;
		buf[n++] = '}';
		assert_int_equal(check(buf, n, 0), d <= 31 ?
		    JSCAN_DIFF_BOTH_TAKE : JSCAN_DIFF_BOTH_REFUSE);
	}
}

/* What routing reads: the last duplicate, keys spelled with escapes,
 * the elements of messages, stream_options. */
static void
test_fields(void **state)
{
	static const char	 body[] = "{\"model\":\"x\",\"stream\":false,"
	    "\"mod\\u0065l\":\"gpt\\u00e9\",\"stream_options\":{\"include_usage\""
	    ":false,\"include_usage\":true},\"messages\":[{\"role\":\"user\"},"
	    "{\"role\":1,\"role\":\"a\"},{\"role\":\"b\",\"role\":null}],"
	    "\"stream\":true}";
	struct jscan		 js;
	char			*s;
	size_t			 len;
	int			 i, so;

	(void)state;
	memset(&js, 0, sizeof(js));
	js.elem_key = "role";
	assert_int_equal(jscan_parse(&js, body, sizeof(body) - 1), 0);
	i = jscan_find(&js, -1, "model");
	assert_int_not_equal(i, -1);
	s = jscan_string(body, &js.m[i], &len);
	assert_string_equal(s, "gpt\xc3\xa9");
	free(s);
	i = jscan_find(&js, -1, "stream");
	assert_int_equal(js.m[i].type, JSCAN_BOOL);
	assert_int_equal(js.m[i].truth, 1);
	so = jscan_find(&js, -1, "stream_options");
	i = jscan_find(&js, so, "include_usage");
	assert_int_equal(js.m[i].truth, 1);
	i = jscan_find(&js, -1, "messages");
	assert_int_equal(js.m[i].nelem, 3);
	assert_int_equal(js.m[i].badelem, 2);
	assert_int_equal(check(body, sizeof(body) - 1, 1),
	    JSCAN_DIFF_BOTH_TAKE);
	jscan_free(&js);
}

/* A trusted text (one FLM wrote): its strings are found by their end,
 * not judged; its structure and the keys it records still are. */
static void
test_trusted(void **state)
{
	static const struct {
		const char	*text;
		int		 strict, trusted;
	} cases[] = {
		{ "{\"a\":\"x\ty\",\"b\":[\"\\q\"]}", -1, 0 },
		{ "{\"a\":\"x\\\\\",\"b\":1}", 0, 0 },
		{ "{\"a\":\"x\\\",\"b\":1}", -1, -1 },
		{ "{\"a\":\"x\",}", -1, -1 },
		{ "{\"a\":\"x", -1, -1 },
		{ "{\"a\\q\":1}", -1, -1 },
		{ "{\"a\":{\"b\t\":1}}", -1, -1 },
	};
	struct jscan	 js;
	size_t		 i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memset(&js, 0, sizeof(js));
		assert_int_equal(jscan_parse(&js, cases[i].text,
		    strlen(cases[i].text)), cases[i].strict);
		js.trusted = 1;
		assert_int_equal(jscan_parse(&js, cases[i].text,
		    strlen(cases[i].text)), cases[i].trusted);
		jscan_free(&js);
	}
}

/* Duplicates among many keys, then among few, in one jscan used twice
 * (its buffers kept), and strings decoded into one scratch. */
static void
test_reuse(void **state)
{
	char			 big[2048];
	static const char	 small[] = "{\"a\":1,\"b\":{\"a\":2,\"a\":3},"
	    "\"a\":\"x\\u0079\",\"c\":\"z\"}";
	struct jscan		 js, sc;
	const char		*s;
	size_t			 n = 1, len;
	int			 i, k, b;

	(void)state;
	big[0] = '{';
	for (k = 0; k < 40; k++)	/* k0 .. k19 twice: the second wins */
		n += (size_t)snprintf(big + n, sizeof(big) - n, "%s\"k%d\":%d",
		    k ? "," : "", k % 20, k);
	big[n++] = '}';
	memset(&js, 0, sizeof(js));
	memset(&sc, 0, sizeof(sc));
	assert_int_equal(jscan_parse(&js, big, n), 0);
	assert_int_equal(js.nm, 40);
	for (k = 0; k < 40; k++)
		assert_int_equal(js.m[k].last, k >= 20);
	i = jscan_find(&js, -1, "k7");
	assert_int_equal(i, 27);
	assert_int_equal(jscan_parse(&js, small, sizeof(small) - 1), 0);
	assert_int_equal(js.nm, 6);
	i = jscan_find(&js, -1, "a");
	assert_int_equal(i, 4);
	b = jscan_find(&js, -1, "b");
	assert_int_equal(jscan_find(&js, b, "a"), 3);
	assert_int_equal(js.m[0].last, 0);
	assert_int_equal(js.m[2].last, 0);
	s = jscan_string_in(&sc, small, &js.m[i], &len);
	assert_non_null(s);
	assert_string_equal(s, "xy");
	assert_int_equal(len, 2);
	s = jscan_string_in(&sc, small, &js.m[jscan_find(&js, -1, "c")], &len);
	assert_string_equal(s, "z");
	assert_null(jscan_string_in(&sc, small, &js.m[0], &len));
	assert_null(jscan_string_in(&sc, small, NULL, &len));
	jscan_free(&sc);
	jscan_free(&js);
}

static void
test_differential(void **state)
{
	struct jscan_diff_stats	 st;
	char			 why[300], *text;
	size_t			 len;

	(void)state;
	memset(&st, 0, sizeof(st));
	/* A fixed seed: the same cases every run. */
	if (jscan_diff_run(0x15a15a15ULL, 150000, "role", &st, why,
	    sizeof(why), &text, &len) == -1) {
		print_error("jscan and json-c differ on [%s]: %s\n",
		    fail_text(text, len), why);
		free(text);
		fail();
	}
	print_message("%zu cases: %zu taken by both, %zu refused by both, "
	    "%zu refused as not RFC 8259\n", st.cases, st.both_take,
	    st.both_refuse, st.strict);
	/* The run must reach every verdict, or it proves little. */
	assert_true(st.both_take > st.cases / 4);
	assert_true(st.both_refuse > st.cases / 10);
	assert_true(st.strict > 100);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rules),
		cmocka_unit_test(test_depth),
		cmocka_unit_test(test_fields),
		cmocka_unit_test(test_reuse),
		cmocka_unit_test(test_trusted),
		cmocka_unit_test(test_differential),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
