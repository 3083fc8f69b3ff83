/*
 * The usage proxyd reads from the end of an engine's answer for the
 * audit trail and the token limits (flm-proxyd/proxyd_audit.c:
 * audit_usage_scan, audit_feed).  proxyd_audit.c is linked whole; what
 * it calls elsewhere in proxyd is stubbed below.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proxyd.h"

/* Stubs: nothing here reaches them. */
struct proxyd	*px;

const char *
http_req_addr(const struct http_req *r)
{
	(void)r;
	return "127.0.0.1";
}

const char *
http_req_cert(const struct http_req *r, const char **label)
{
	(void)r;
	if (label != NULL)
		*label = "";
	return "";
}

void
ratelimit_debit(const char *kind, const char *subject,
    const struct policy_rate *rate, int64_t n)
{
	(void)kind;
	(void)subject;
	(void)rate;
	(void)n;
}

void
scope_rate(const char *key_id, struct policy_rate *out)
{
	(void)key_id;
	memset(out, 0, sizeof(*out));
}

void
metrics_request(const struct http_req *r, int status, int64_t ms,
    int64_t p, int64_t c)
{
	(void)r;
	(void)status;
	(void)ms;
	(void)p;
	(void)c;
}

void
http_drain_check(void)
{
}

/* scan TEXT: its return, and the counts (-1: not found). */
static int
scan(const char *text, int64_t *p, int64_t *c)
{
	*p = *c = -1;
	return audit_usage_scan(text, strlen(text), p, c);
}

#define SCAN(text, rv, ep, ec) do {					\
	int64_t	 p_, c_;						\
	assert_int_equal(scan((text), &p_, &c_), (rv));			\
	assert_int_equal(p_, (ep));					\
	assert_int_equal(c_, (ec));					\
} while (0)

static void
test_answer(void **state)
{
	(void)state;
	SCAN("{\"id\":\"x\",\"choices\":[{\"message\":{\"content\":\"hi\"}}],"
	    "\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":34,"
	    "\"total_tokens\":46}}", 1, 12, 34);
	/* Blanks anywhere JSON allows them; the order does not matter. */
	SCAN("{\"usage\" :\n {\n  \"completion_tokens\" : 7 ,\n"
	    "  \"prompt_tokens\":\t0\n }\n}\n", 1, 0, 7);
	/* Embeddings: no completion_tokens. */
	SCAN("{\"object\":\"list\",\"usage\":{\"prompt_tokens\":8,"
	    "\"total_tokens\":8}}", 1, 8, -1);
	SCAN("{\"usage\":{}}", 1, -1, -1);
}

static void
test_none(void **state)
{
	(void)state;
	SCAN("", 0, -1, -1);
	SCAN("{\"choices\":[]}", 0, -1, -1);
	SCAN("{\"usage\":null}", 0, -1, -1);
	SCAN("{\"usage\":5}", 0, -1, -1);
	SCAN("{\"usage\"", 0, -1, -1);
	SCAN("{\"usage\":", 0, -1, -1);
	SCAN("\"usage", 0, -1, -1);
	/* In a string, "usage" is escaped: not a key. */
	SCAN("{\"content\":\"say \\\"usage\\\": {\\\"prompt_tokens\\\": 9}\"}",
	    0, -1, -1);
}

/* A stream's chunks carry "usage":null until the last one. */
static void
test_stream(void **state)
{
	(void)state;
	SCAN("data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}],"
	    "\"usage\":null}\n\n"
	    "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":3,"
	    "\"completion_tokens\":5}}\n\n"
	    "data: [DONE]\n\n", 1, 3, 5);
	/* The last usage wins, even a null one after a real one. */
	SCAN("data: {\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":5}}\n\n"
	    "data: {\"usage\":{\"prompt_tokens\":4,\"completion_tokens\":6}}\n\n",
	    1, 4, 6);
	SCAN("data: {\"usage\":{\"prompt_tokens\":3}}\n\n"
	    "data: {\"usage\":null}\n\n", 0, -1, -1);
}

/* Only usage's own level counts. */
static void
test_nesting(void **state)
{
	(void)state;
	SCAN("{\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":2,"
	    "\"prompt_tokens_details\":{\"cached_tokens\":4,"
	    "\"prompt_tokens\":99},\"x\":[{\"completion_tokens\":98}]}}",
	    1, 10, 2);
	/* Past usage's end, nothing more is read. */
	SCAN("{\"usage\":{\"prompt_tokens\":1},\"completion_tokens\":50}",
	    1, 1, -1);
	/* Braces inside strings do not count. */
	SCAN("{\"usage\":{\"note\":\"}{\\\"}\",\"prompt_tokens\":6,"
	    "\"completion_tokens\":7}}", 1, 6, 7);
	/* A key that merely begins with the name. */
	SCAN("{\"usage\":{\"prompt_tokens_x\":1,\"completion_tokens2\":2}}",
	    1, -1, -1);
}

/* Anthropic's names in usage; Ollama's counts, which have no usage. */
static void
test_dialects(void **state)
{
	(void)state;
	SCAN("{\"type\":\"message\",\"usage\":{\"input_tokens\":9,"
	    "\"output_tokens\":4}}", 1, 9, 4);
	SCAN("event: message_start\ndata: {\"message\":{\"usage\":"
	    "{\"input_tokens\":0,\"output_tokens\":0}}}\n\n"
	    "event: message_delta\ndata: {\"usage\":{\"input_tokens\":3,"
	    "\"output_tokens\":11}}\n\n", 1, 3, 11);
	SCAN("{\"message\":{\"content\":\"hi\"},\"done\":true,"
	    "\"prompt_eval_count\":26,\"prompt_eval_duration\":1,"
	    "\"eval_count\":298}\n", 1, 26, 298);
	/* A stream's last line: its counts. */
	SCAN("{\"done\":false,\"eval_count\":1}\n{\"done\":true,"
	    "\"prompt_eval_count\":2,\"eval_count\":5}\n", 1, 2, 5);
	/* Only keys: a string value with the name is not one. */
	SCAN("{\"response\":\"eval_count\",\"x\":1}", 0, -1, -1);
	SCAN("{\"embedding\":[1,2],\"prompt_eval_count\":-1}", 0, -1, -1);
}

static void
test_bad_counts(void **state)
{
	(void)state;
	SCAN("{\"usage\":{\"prompt_tokens\":-4,\"completion_tokens\":\"5\"}}",
	    1, -1, -1);
	SCAN("{\"usage\":{\"prompt_tokens\":null,\"completion_tokens\":true}}",
	    1, -1, -1);
	/* Fractions: the whole part. */
	SCAN("{\"usage\":{\"prompt_tokens\":2.9,\"completion_tokens\":1e3}}",
	    1, 2, 1);
	/* Huge: capped just past INT32_MAX, never wrapped negative. */
	{
		int64_t	 p, c;

		assert_int_equal(scan("{\"usage\":{\"prompt_tokens\":"
		    "99999999999999999999999999999,\"completion_tokens\":"
		    "2147483647}}", &p, &c), 1);
		assert_true(p >= INT32_MAX);
		assert_true(p < 10LL * INT32_MAX + 10);
		assert_int_equal(c, INT32_MAX);
	}
}

/* Truncated anywhere: no read past the end (ASan), no crash. */
static void
test_truncated(void **state)
{
	static const char full[] = "{\"usage\":{\"prompt_tokens\":12,"
	    "\"s\":\"a\\\\\\\"b\",\"completion_tokens\":34}}";
	int64_t		 p, c;
	size_t		 n;
	char		*b;

	(void)state;
	for (n = 0; n <= sizeof(full) - 1; n++) {
		/* Exactly n bytes on the heap, for ASan to see past them. */
		b = malloc(n ? n : 1);
		assert_non_null(b);
		memcpy(b, full, n);
		p = c = -1;
		(void)audit_usage_scan(b, n, &p, &c);
		if (n == sizeof(full) - 1) {
			assert_int_equal(p, 12);
			assert_int_equal(c, 34);
		}
		free(b);
	}
	/* A string cut after a backslash. */
	b = malloc(18);
	assert_non_null(b);
	memcpy(b, "{\"usage\":{\"x\":\"ab\\", 18);
	(void)audit_usage_scan(b, 18, &p, &c);
	free(b);
}

/* audit_feed keeps the answer's last 2048 bytes, across writes. */
static void
test_feed_tail(void **state)
{
	static const char usage[] = "data: {\"choices\":[],\"usage\":"
	    "{\"prompt_tokens\":21,\"completion_tokens\":500}}\n\ndata: [DONE]\n\n";
	struct http_req	 r;
	char		 chunk[100];
	int64_t		 p = -1, c = -1;
	size_t		 i;

	(void)state;
	memset(&r, 0, sizeof(r));
	r.ep = r.op = EP_CHAT;
	memset(chunk, 'x', sizeof(chunk));
	/* Earlier chunks with their own (null) usage, 50 kB of them. */
	for (i = 0; i < 500; i++)
		audit_feed(&r, chunk, sizeof(chunk));
	assert_int_equal(r.tlen, 2048);
	audit_feed(&r, "\"usage\":{\"prompt_tokens\":1}", 28);
	for (i = 0; i < sizeof(usage) - 1; i += 7)
		audit_feed(&r, usage + i, sizeof(usage) - 1 - i < 7 ?
		    sizeof(usage) - 1 - i : 7);
	assert_int_equal(r.tlen, 2048);
	assert_memory_equal(r.tail + 2048 - (sizeof(usage) - 1), usage,
	    sizeof(usage) - 1);
	assert_int_equal(audit_usage_scan(r.tail, r.tlen, &p, &c), 1);
	assert_int_equal(p, 21);
	assert_int_equal(c, 500);

	/* One write larger than the tail: its end is kept. */
	{
		char	*big = malloc(5000);

		assert_non_null(big);
		memset(big, 'y', 5000);
		memcpy(big + 4990, "0123456789", 10);
		audit_feed(&r, big, 5000);
		assert_int_equal(r.tlen, 2048);
		assert_memory_equal(r.tail + 2038, "0123456789", 10);
		free(big);
	}
	free(r.tail);

	/* Models and health answers are not kept at all. */
	memset(&r, 0, sizeof(r));
	r.ep = EP_MODELS;
	r.op = EP_NONE;
	audit_feed(&r, usage, sizeof(usage) - 1);
	assert_null(r.tail);
	assert_int_equal(r.tlen, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_answer),
		cmocka_unit_test(test_none),
		cmocka_unit_test(test_stream),
		cmocka_unit_test(test_nesting),
		cmocka_unit_test(test_dialects),
		cmocka_unit_test(test_bad_counts),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_feed_tail),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
