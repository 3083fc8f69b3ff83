/*
 * The security policy checker (lib/policy.c): what keyd refuses to
 * store, what it stores (every field spelled out, parsed back the
 * same), and what proxyd lets in by address and by origin.
 */
#include "config.h"

#include <sys/socket.h>

#include <arpa/inet.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "policy.h"

/* parse TEXT: 0 or -1, the error in perr_buf. */
static char	perr_buf[512];

static int
parse(const char *text, struct policy *pol)
{
	memset(pol, 0xa5, sizeof(*pol));	/* nothing left over */
	perr_buf[0] = '\0';
	return policy_parse_text(text, strlen(text), pol, perr_buf,
	    sizeof(perr_buf));
}

/* TEXT is refused, with an error that starts with (names) FIELD and
 * contains WHY when not NULL. */
static void
refused_(const char *text, const char *field, const char *why,
    const char *file, int line)
{
	struct policy	 pol;

	if (parse(text, &pol) != -1) {
		policy_free(&pol);
		print_error("%s: accepted\n", text);
		_fail(file, line);
	}
	if (strncmp(perr_buf, field, strlen(field)) != 0 ||
	    (why != NULL && strstr(perr_buf, why) == NULL)) {
		print_error("%s: error \"%s\" does not name \"%s\"%s%s\n",
		    text, perr_buf, field, why ? " with " : "", why ? why : "");
		_fail(file, line);
	}
	/* A refusal leaves nothing to free, nothing to trip on. */
	assert_null(pol.allow);
	assert_null(pol.origins);
	assert_null(pol.headers);
	assert_int_equal(pol.nallow + pol.norigins + pol.nheaders, 0);
}
#define refused(t, f, w)	refused_((t), (f), (w), __FILE__, __LINE__)

static void
accepted_(const char *text, struct policy *pol, const char *file, int line)
{
	if (parse(text, pol) != 0) {
		print_error("%s: refused: %s\n", text, perr_buf);
		_fail(file, line);
	}
}
#define accepted(t, p)	accepted_((t), (p), __FILE__, __LINE__)

/* Two policies are the same, field by field. */
static void
assert_same_policy(const struct policy *a, const struct policy *b)
{
	size_t	 i;

	assert_int_equal(a->nallow, b->nallow);
	for (i = 0; i < a->nallow; i++) {
		assert_int_equal(a->allow[i].family, b->allow[i].family);
		assert_int_equal(a->allow[i].prefix, b->allow[i].prefix);
		assert_memory_equal(a->allow[i].addr, b->allow[i].addr, 16);
	}
	assert_int_equal(a->norigins, b->norigins);
	for (i = 0; i < a->norigins; i++)
		assert_string_equal(a->origins[i], b->origins[i]);
	assert_int_equal(a->any_origin, b->any_origin);
	assert_int_equal(a->methods, b->methods);
	assert_int_equal(a->nheaders, b->nheaders);
	for (i = 0; i < a->nheaders; i++)
		assert_string_equal(a->headers[i], b->headers[i]);
	assert_int_equal(a->max_age, b->max_age);
	assert_int_equal(a->credentials, b->credentials);
	assert_int_equal(a->per_key.requests, b->per_key.requests);
	assert_int_equal(a->per_key.tokens, b->per_key.tokens);
	assert_int_equal(a->per_ip.requests, b->per_ip.requests);
	assert_int_equal(a->per_ip.tokens, b->per_ip.tokens);
	assert_int_equal(a->auth_fail_max, b->auth_fail_max);
	assert_int_equal(a->auth_fail_window, b->auth_fail_window);
}

/* What keyd does: normalise, store the text, read it back. */
static void
round_trip(const struct policy *pol, char **textp)
{
	struct json_object	*j = policy_json(pol), *k;
	struct policy		 again;
	const char		*text;
	char			 err[256];

	text = json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN |
	    JSON_C_TO_STRING_NOSLASHESCAPE);
	if (policy_parse_text(text, strlen(text), &again, err,
	    sizeof(err)) != 0)
		fail_msg("the normalised policy is refused: %s: %s", err, text);
	assert_same_policy(pol, &again);
	/* And normalising is idempotent: the same text again. */
	k = policy_json(&again);
	assert_string_equal(text, json_object_to_json_string_ext(k,
	    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	if (textp != NULL)
		*textp = strdup(text);
	json_object_put(k);
	json_object_put(j);
	policy_free(&again);
}

static void
test_defaults(void **state)
{
	struct policy	 pol;

	(void)state;
	policy_defaults(&pol);
	assert_null(pol.allow);
	assert_int_equal(pol.nallow, 0);
	assert_int_equal(pol.norigins, 0);
	assert_int_equal(pol.any_origin, 0);
	assert_int_equal(pol.methods, POLICY_M_GET | POLICY_M_POST);
	assert_int_equal(pol.max_age, 600);
	assert_int_equal(pol.credentials, 0);
	assert_int_equal(pol.per_key.requests, 0);
	assert_int_equal(pol.per_key.tokens, 0);
	assert_int_equal(pol.per_ip.requests, 0);
	assert_int_equal(pol.per_ip.tokens, 0);
	assert_int_equal(pol.auth_fail_max, 20);
	assert_int_equal(pol.auth_fail_window, 60);
	assert_true(policy_ip_allowed(&pol, "127.0.0.1"));
	assert_false(policy_ip_allowed(&pol, "10.0.0.1"));
	assert_false(policy_origin_allowed(&pol, "http://a", 8));
	policy_free(&pol);
}

/* {} is the documented default, allowed_headers included. */
static void
test_empty_object(void **state)
{
	struct policy	 pol;
	char		*text;

	(void)state;
	accepted("{}", &pol);
	assert_int_equal(pol.nallow, 0);
	assert_int_equal(pol.norigins, 0);
	assert_int_equal(pol.methods, POLICY_M_GET | POLICY_M_POST);
	assert_int_equal(pol.nheaders, 2);
	assert_string_equal(pol.headers[0], "authorization");
	assert_string_equal(pol.headers[1], "content-type");
	assert_int_equal(pol.max_age, 600);
	assert_int_equal(pol.auth_fail_max, 20);
	assert_int_equal(pol.auth_fail_window, 60);
	round_trip(&pol, &text);
	/* Every field spelled out, nested as the guide's table says. */
	assert_string_equal(text,
	    "{\"ip_allowlist\":[],"
	    "\"cors\":{\"allowed_origins\":[],"
	    "\"allowed_methods\":[\"GET\",\"POST\"],"
	    "\"allowed_headers\":[\"authorization\",\"content-type\"],"
	    "\"max_age\":600,\"allow_credentials\":false},"
	    "\"rate_limit\":{"
	    "\"per_key\":{\"requests_per_minute\":0,\"tokens_per_minute\":0},"
	    "\"per_ip\":{\"requests_per_minute\":0,\"tokens_per_minute\":0}},"
	    "\"auth_failures\":{\"max\":20,\"window_seconds\":60}}");
	free(text);
	policy_free(&pol);
	/* Blanks around the object are fine. */
	accepted(" \n\t{ }\r\n", &pol);
	policy_free(&pol);
}

static const char *FULL =
    "{ \"ip_allowlist\": [\"127.0.0.0/8\", \"::1\", \"192.168.1.0/24\","
    "    \"fd12:3456:789a::/64\", \"0.0.0.0/0\", \"::/0\", \"10.1.2.3\","
    "    \"::ffff:10.0.0.0/104\", \"2001:DB8::/32\"],"
    "  \"cors\": { \"allowed_origins\": [\"https://Chat.LAN.example\","
    "                 \"http://127.0.0.1:8080\", \"http://[::1]:9\", \"*\"],"
    "            \"allowed_methods\": [\"get\", \"POST\", \"Head\", \"OPTIONS\"],"
    "            \"allowed_headers\": [\"Authorization\", \"X-Stainless-OS\"],"
    "            \"max_age\": 86400, \"allow_credentials\": false },"
    "  \"rate_limit\": { \"per_key\": { \"requests_per_minute\": 60,"
    "                                 \"tokens_per_minute\": 1000000000 },"
    "                  \"per_ip\": { \"requests_per_minute\": 1000000 } },"
    "  \"auth_failures\": { \"max\": 100000, \"window_seconds\": 86400 } }";

static void
test_full_policy(void **state)
{
	struct policy	 pol;
	char		 a[INET6_ADDRSTRLEN];

	(void)state;
	accepted(FULL, &pol);
	assert_int_equal(pol.nallow, 9);
	assert_int_equal(pol.allow[0].family, AF_INET);
	assert_int_equal(pol.allow[0].prefix, 8);
	assert_int_equal(pol.allow[1].family, AF_INET6);
	assert_int_equal(pol.allow[1].prefix, 128);	/* a bare address */
	assert_int_equal(pol.allow[6].prefix, 32);
	inet_ntop(AF_INET6, pol.allow[8].addr, a, sizeof(a));
	assert_string_equal(a, "2001:db8::");
	assert_int_equal(pol.norigins, 3);
	assert_true(pol.any_origin);
	/* Stored lower-cased. */
	assert_string_equal(pol.origins[0], "https://chat.lan.example");
	assert_string_equal(pol.origins[1], "http://127.0.0.1:8080");
	assert_string_equal(pol.origins[2], "http://[::1]:9");
	assert_int_equal(pol.methods, POLICY_M_GET | POLICY_M_POST |
	    POLICY_M_HEAD | POLICY_M_OPTIONS);
	assert_int_equal(pol.nheaders, 2);
	assert_string_equal(pol.headers[0], "authorization");
	assert_string_equal(pol.headers[1], "x-stainless-os");
	assert_int_equal(pol.max_age, 86400);
	assert_int_equal(pol.credentials, 0);
	assert_int_equal(pol.per_key.requests, 60);
	assert_int_equal(pol.per_key.tokens, 1000000000);
	assert_int_equal(pol.per_ip.requests, 1000000);
	assert_int_equal(pol.per_ip.tokens, 0);
	assert_int_equal(pol.auth_fail_max, 100000);
	assert_int_equal(pol.auth_fail_window, 86400);
	policy_free(&pol);
}

static void
test_round_trip(void **state)
{
	static const char *const texts[] = {
		"{}",
		NULL,	/* FULL */
		"{\"cors\":{\"allowed_methods\":[],\"allowed_headers\":[]}}",
		"{\"cors\":{\"allowed_origins\":[\"*\",\"*\"]}}",
		"{\"cors\":{\"allowed_origins\":[\"http://a.example\"],"
		    "\"allow_credentials\":true,\"max_age\":0}}",
		"{\"ip_allowlist\":[\"::ffff:192.0.2.7\",\"1.2.3.4/31\"],"
		    "\"auth_failures\":{\"max\":1,\"window_seconds\":1}}",
		"{\"rate_limit\":{\"per_key\":{},\"per_ip\":"
		    "{\"tokens_per_minute\":5}}}",
	};
	struct policy		 pol;
	struct json_object	*j, *v;
	char			*text;
	size_t			 i;

	(void)state;
	for (i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		accepted(texts[i] == NULL ? FULL : texts[i], &pol);
		round_trip(&pol, NULL);
		policy_free(&pol);
	}

	/* The stored form of FULL, field by field. */
	accepted(FULL, &pol);
	round_trip(&pol, &text);
	policy_free(&pol);
	j = json_tokener_parse(text);
	assert_non_null(j);
	assert_string_equal(json_object_to_json_string_ext(
	    json_object_object_get(j, "ip_allowlist"), JSON_C_TO_STRING_PLAIN |
	    JSON_C_TO_STRING_NOSLASHESCAPE),
	    "[\"127.0.0.0/8\",\"::1/128\",\"192.168.1.0/24\","
	    "\"fd12:3456:789a::/64\",\"0.0.0.0/0\",\"::/0\",\"10.1.2.3/32\","
	    "\"10.0.0.0/8\",\"2001:db8::/32\"]");
	v = json_object_object_get(j, "cors");
	assert_string_equal(json_object_to_json_string_ext(v,
	    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE),
	    "{\"allowed_origins\":[\"*\",\"https://chat.lan.example\","
	    "\"http://127.0.0.1:8080\",\"http://[::1]:9\"],"
	    "\"allowed_methods\":[\"GET\",\"POST\",\"HEAD\",\"OPTIONS\"],"
	    "\"allowed_headers\":[\"authorization\",\"x-stainless-os\"],"
	    "\"max_age\":86400,\"allow_credentials\":false}");
	assert_string_equal(json_object_to_json_string_ext(
	    json_object_object_get(j, "rate_limit"), JSON_C_TO_STRING_PLAIN),
	    "{\"per_key\":{\"requests_per_minute\":60,"
	    "\"tokens_per_minute\":1000000000},"
	    "\"per_ip\":{\"requests_per_minute\":1000000,"
	    "\"tokens_per_minute\":0}}");
	assert_string_equal(json_object_to_json_string_ext(
	    json_object_object_get(j, "auth_failures"), JSON_C_TO_STRING_PLAIN),
	    "{\"max\":100000,\"window_seconds\":86400}");
	json_object_put(j);
	free(text);
}

/* policy_parse on an object leaves the caller's object as it was. */
static void
test_input_untouched(void **state)
{
	struct json_object	*o = json_tokener_parse("{\"cors\":{}}");
	struct policy		 pol;
	char			 err[128];

	(void)state;
	assert_int_equal(policy_parse(o, &pol, err, sizeof(err)), 0);
	assert_string_equal(json_object_to_json_string_ext(o,
	    JSON_C_TO_STRING_PLAIN), "{\"cors\":{}}");
	policy_free(&pol);
	json_object_put(o);
	assert_int_equal(policy_parse(NULL, &pol, err, sizeof(err)), -1);
	assert_string_equal(err, "the policy must be a JSON object");
}

static void
test_bad_cidrs(void **state)
{
	static const struct {
		const char	*cidr, *why;
	} bad[] = {
		{ "10.0.0.1/33",	"prefix length must be 0-32" },
		{ "1.2.3.4/",		"prefix length must be 0-32" },
		{ "/8",			"not an IPv4 or IPv6 address" },
		{ "10.0.0.1/8",		"host bits are set after /8" },
		{ "10.0.0.128/25x",	"prefix length must be 0-32" },
		{ "10.0.0.0/+8",	"prefix length must be 0-32" },
		{ "10.0.0.0/-0",	"prefix length must be 0-32" },
		{ "10.0.0.0/ 8",	"prefix length must be 0-32" },
		{ "10.0.0.0/8/8",	"prefix length must be 0-32" },
		{ "10.0.0.0/99999999999999999999", "prefix length must be 0-32" },
		{ "::1/129",		"prefix length must be 0-128" },
		{ "::1/64",		"host bits are set after /64" },
		{ "fe80::1/9",		"host bits are set after /9" },
		{ "1.2.3",		"not an IPv4 or IPv6 address" },
		{ "1.2.3.4.5",		"not an IPv4 or IPv6 address" },
		{ "256.0.0.0",		"not an IPv4 or IPv6 address" },
		{ "010.0.0.0/8",	"not an IPv4 or IPv6 address" },
		{ "fe80::1%lo",		"not an IPv4 or IPv6 address" },
		{ "fe80::1%lo/64",	"not an IPv4 or IPv6 address" },
		{ " 10.0.0.0/8",	"not an IPv4 or IPv6 address" },
		{ "localhost",		"not an IPv4 or IPv6 address" },
		{ "",			"not an IPv4 or IPv6 address" },
		{ "1111:2222:3333:4444:5555:6666:7777:8888:9999:aaaa/128",
					"not an IPv4 or IPv6" },
	};
	char	 text[256], field[64];
	size_t	 i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		/* Second in the list: the index is the one at fault. */
		snprintf(text, sizeof(text),
		    "{\"ip_allowlist\":[\"127.0.0.0/8\",\"%s\"]}", bad[i].cidr);
		snprintf(field, sizeof(field), "ip_allowlist[1]: \"%s\": ",
		    bad[i].cidr);
		refused(text, field, bad[i].why);
	}
	refused("{\"ip_allowlist\":[\"::1\",8]}", "ip_allowlist[1]: expected a "
	    "string", NULL);
	refused("{\"ip_allowlist\":\"10.0.0.0/8\"}", "ip_allowlist: expected an "
	    "array of strings", NULL);
	refused("{\"ip_allowlist\":null}", "ip_allowlist: expected an array",
	    NULL);
	/* A NUL inside the string is not where the CIDR ends. */
	refused("{\"ip_allowlist\":[\"10.0.0.0/8\\u0000junk\"]}",
	    "ip_allowlist[0]: a string with a NUL character", NULL);
}

static void
test_cidr_parse(void **state)
{
	struct policy_cidr	 c;
	char			 err[128];

	(void)state;
	assert_int_equal(policy_cidr_parse("0.0.0.0/0", &c, err, sizeof(err)),
	    0);
	assert_int_equal(c.family, AF_INET);
	assert_int_equal(c.prefix, 0);
	assert_int_equal(policy_cidr_parse("192.0.2.7", &c, err, sizeof(err)),
	    0);
	assert_int_equal(c.prefix, 32);
	assert_int_equal(policy_cidr_parse("2001:db8::/032", &c, err,
	    sizeof(err)), 0);
	assert_int_equal(c.prefix, 32);
	assert_int_equal(policy_cidr_parse("10.0.0.1/33", &c, err,
	    sizeof(err)), -1);
	assert_string_equal(err, "prefix length must be 0-32");
	/* The error is cut to the buffer, never past it. */
	memset(err, 'x', sizeof(err));
	assert_int_equal(policy_cidr_parse("nope", &c, err, 5), -1);
	assert_string_equal(err, "not ");
}

/* 1024 entries are fine, 1025 are not. */
static void
test_too_many(void **state)
{
	struct policy	 pol;
	char		*text, *p;
	size_t		 i, sz = 32 + 20 * (POLICY_MAX_CIDRS + 1);

	(void)state;
	text = malloc(sz);
	assert_non_null(text);
	p = text + sprintf(text, "{\"ip_allowlist\":[");
	for (i = 0; i < POLICY_MAX_CIDRS; i++)
		p += sprintf(p, "%s\"10.%zu.%zu.0/24\"", i ? "," : "",
		    i / 256, i % 256);
	strcpy(p, "]}");
	accepted(text, &pol);
	assert_int_equal(pol.nallow, POLICY_MAX_CIDRS);
	round_trip(&pol, NULL);
	policy_free(&pol);
	strcpy(p, ",\"10.250.0.0/24\"]}");
	refused(text, "ip_allowlist: 1025 entries; at most 1024 are allowed",
	    NULL);
	free(text);
}

static void
test_unknown_fields(void **state)
{
	(void)state;
	refused("{\"ip_allowList\":[]}", "ip_allowList: unknown field", NULL);
	refused("{\"cors\":{\"allowed_origin\":[]}}",
	    "cors.allowed_origin: unknown field", NULL);
	refused("{\"rate_limit\":{\"per_user\":{}}}",
	    "rate_limit.per_user: unknown field", NULL);
	refused("{\"rate_limit\":{\"per_key\":{\"requests_per_second\":1}}}",
	    "rate_limit.per_key.requests_per_second: unknown field", NULL);
	refused("{\"rate_limit\":{\"per_ip\":{\"tokens\":1}}}",
	    "rate_limit.per_ip.tokens: unknown field", NULL);
	refused("{\"auth_failures\":{\"window\":60}}",
	    "auth_failures.window: unknown field", NULL);
	refused("{\"version\":1}", "version: unknown field", NULL);
}

static void
test_wrong_types(void **state)
{
	(void)state;
	refused("[]", "the policy must be a JSON object", NULL);
	refused("\"{}\"", "the policy must be a JSON object", NULL);
	/* A bare scalar: json_parse_buf takes null, true and numbers for
	 * no JSON at all; refused either way. */
	refused("null", "the policy ", NULL);
	refused("true", "the policy ", NULL);
	refused("7", "the policy ", NULL);
	refused("{\"cors\":[]}", "cors: expected an object", NULL);
	refused("{\"cors\":null}", "cors: expected an object", NULL);
	refused("{\"cors\":\"*\"}", "cors: expected an object", NULL);
	refused("{\"rate_limit\":5}", "rate_limit: expected an object", NULL);
	refused("{\"rate_limit\":null}", "rate_limit: expected an object",
	    NULL);
	refused("{\"rate_limit\":{\"per_key\":60}}",
	    "rate_limit.per_key: expected an object", NULL);
	refused("{\"auth_failures\":[20]}", "auth_failures: expected an "
	    "object", NULL);
	refused("{\"cors\":{\"allowed_origins\":\"*\"}}",
	    "cors.allowed_origins: expected an array of strings", NULL);
	refused("{\"cors\":{\"allowed_origins\":[\"http://a\",null]}}",
	    "cors.allowed_origins[1]: expected a string", NULL);
	refused("{\"cors\":{\"allowed_methods\":\"GET\"}}",
	    "cors.allowed_methods: expected an array of strings", NULL);
	refused("{\"cors\":{\"allowed_methods\":[1]}}",
	    "cors.allowed_methods[0]: expected a string", NULL);
	refused("{\"cors\":{\"allowed_headers\":{}}}",
	    "cors.allowed_headers: expected an array of strings", NULL);
	refused("{\"cors\":{\"allowed_headers\":[[\"a\"]]}}",
	    "cors.allowed_headers[0]: expected a string", NULL);
	refused("{\"cors\":{\"max_age\":\"600\"}}",
	    "cors.max_age: expected an integer 0-86400", NULL);
	refused("{\"cors\":{\"max_age\":true}}",
	    "cors.max_age: expected an integer 0-86400", NULL);
	refused("{\"cors\":{\"allow_credentials\":1}}",
	    "cors.allow_credentials: expected true or false", NULL);
	refused("{\"cors\":{\"allow_credentials\":\"true\"}}",
	    "cors.allow_credentials: expected true or false", NULL);
	refused("{\"cors\":{\"allow_credentials\":null}}",
	    "cors.allow_credentials: expected true or false", NULL);
	refused("{\"rate_limit\":{\"per_key\":{\"requests_per_minute\":null}}}",
	    "rate_limit.per_key.requests_per_minute: expected an integer "
	    "0-1000000", NULL);
	refused("{\"auth_failures\":{\"max\":\"20\"}}",
	    "auth_failures.max: expected an integer", NULL);
}

static void
test_bad_numbers(void **state)
{
	struct policy	 pol;

	(void)state;
	refused("{\"cors\":{\"max_age\":-1}}",
	    "cors.max_age: expected an integer 0-86400", NULL);
	refused("{\"cors\":{\"max_age\":1.5}}",
	    "cors.max_age: expected an integer 0-86400", NULL);
	refused("{\"cors\":{\"max_age\":600.0}}",
	    "cors.max_age: expected an integer 0-86400", NULL);
	refused("{\"cors\":{\"max_age\":6e2}}",
	    "cors.max_age: expected an integer 0-86400", NULL);
	refused("{\"cors\":{\"max_age\":86401}}",
	    "cors.max_age: expected an integer 0-86400", NULL);
	refused("{\"rate_limit\":{\"per_key\":{\"requests_per_minute\":"
	    "1000001}}}", "rate_limit.per_key.requests_per_minute: expected "
	    "an integer 0-1000000", NULL);
	refused("{\"rate_limit\":{\"per_ip\":{\"tokens_per_minute\":"
	    "1000000001}}}", "rate_limit.per_ip.tokens_per_minute: expected "
	    "an integer 0-1000000000", NULL);
	refused("{\"rate_limit\":{\"per_ip\":{\"requests_per_minute\":-5}}}",
	    "rate_limit.per_ip.requests_per_minute: expected an integer",
	    NULL);
	/* Past 32 and 64 bits: never wrapped round to a small number. */
	refused("{\"rate_limit\":{\"per_ip\":{\"requests_per_minute\":"
	    "4294967297}}}", "rate_limit.per_ip.requests_per_minute: ", NULL);
	refused("{\"rate_limit\":{\"per_ip\":{\"requests_per_minute\":"
	    "18446744073709551617}}}",
	    "rate_limit.per_ip.requests_per_minute: ", NULL);
	refused("{\"rate_limit\":{\"per_ip\":{\"requests_per_minute\":"
	    "-9223372036854775809}}}",
	    "rate_limit.per_ip.requests_per_minute: ", NULL);
	refused("{\"auth_failures\":{\"max\":100001}}",
	    "auth_failures.max: expected an integer 1-100000", NULL);
	refused("{\"auth_failures\":{\"window_seconds\":86401}}",
	    "auth_failures.window_seconds: expected an integer 1-86400", NULL);
	/* 1 at least: no window, no throttling, would mean none at all. */
	refused("{\"auth_failures\":{\"max\":0}}",
	    "auth_failures.max: expected an integer 1-100000", NULL);
	refused("{\"auth_failures\":{\"window_seconds\":0}}",
	    "auth_failures.window_seconds: expected an integer 1-86400", NULL);
	/* The bounds themselves are in. */
	accepted("{\"cors\":{\"max_age\":0},\"rate_limit\":{\"per_key\":"
	    "{\"requests_per_minute\":1000000,\"tokens_per_minute\":0}},"
	    "\"auth_failures\":{\"max\":1,\"window_seconds\":86400}}", &pol);
	assert_int_equal(pol.max_age, 0);
	assert_int_equal(pol.per_key.requests, 1000000);
	assert_int_equal(pol.auth_fail_max, 1);
	assert_int_equal(pol.auth_fail_window, 86400);
	policy_free(&pol);
}

static void
test_bad_origins(void **state)
{
	static const char *const bad[] = {
		"https://app.example/",
		"https://app.example/path",
		"https://app.example?x=1",
		"https://app.example#f",
		"app.example",
		"//app.example",
		"ftp://app.example",
		"file://",
		"null",
		"http://",
		"http://:8080",
		"https://user@app.example",
		"https://app example",
		"HTTP:/app.example",
		"",
		"**",
	};
	struct policy	 pol;
	char		 text[600], field[320], o[300];
	size_t		 i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(text, sizeof(text), "{\"cors\":{\"allowed_origins\":"
		    "[\"http://ok.example\",\"%s\"]}}", bad[i]);
		snprintf(field, sizeof(field), "cors.allowed_origins[1]: \"%s",
		    bad[i]);
		refused(text, field, "expected \"*\" or scheme://host[:port] "
		    "with no path");
	}
	refused("{\"cors\":{\"allowed_origins\":[\"https://a.example\\\\\"]}}",
	    "cors.allowed_origins[0]: \"https://a.example\\\"", "no path");
	/* At most 255 bytes. */
	memset(o, 'a', sizeof(o));
	memcpy(o, "http://", 7);
	o[255] = '\0';
	snprintf(text, sizeof(text), "{\"cors\":{\"allowed_origins\":"
	    "[\"%s\"]}}", o);
	accepted(text, &pol);
	assert_int_equal(strlen(pol.origins[0]), 255);
	policy_free(&pol);
	o[255] = 'a';
	o[256] = '\0';
	snprintf(text, sizeof(text), "{\"cors\":{\"allowed_origins\":"
	    "[\"%s\"]}}", o);
	refused(text, "cors.allowed_origins[0]: ", "no path");
	/* No NUL hiding a path. */
	refused("{\"cors\":{\"allowed_origins\":[\"http://a.example\\u0000/x\"]}}",
	    "cors.allowed_origins[0]: a string with a NUL character", NULL);
	refused("{\"cors\":{\"allowed_headers\":[\"x\\u0000 y\"]}}",
	    "cors.allowed_headers[0]: a string with a NUL character", NULL);
}

static void
test_bad_cors(void **state)
{
	struct policy	 pol;
	char		 text[256], h[80];

	(void)state;
	/* The Fetch standard: no credentials with a wildcard. */
	refused("{\"cors\":{\"allowed_origins\":[\"*\"],"
	    "\"allow_credentials\":true}}", "cors.allow_credentials: cannot be "
	    "true when allowed_origins has \"*\"", NULL);
	refused("{\"cors\":{\"allow_credentials\":true,\"allowed_origins\":"
	    "[\"http://a.example\",\"*\"]}}", "cors.allow_credentials: ", NULL);
	refused("{\"cors\":{\"allowed_methods\":[\"PUT\"]}}",
	    "cors.allowed_methods[0]: \"PUT\": expected GET, POST, HEAD or "
	    "OPTIONS", NULL);
	refused("{\"cors\":{\"allowed_methods\":[\"GET\",\"\"]}}",
	    "cors.allowed_methods[1]: ", NULL);
	refused("{\"cors\":{\"allowed_methods\":[\"GET\",\"GET\",\"GET\","
	    "\"GET\",\"GET\",\"GET\",\"GET\",\"GET\",\"GET\"]}}",
	    "cors.allowed_methods: 9 entries", NULL);
	refused("{\"cors\":{\"allowed_headers\":[\"content type\"]}}",
	    "cors.allowed_headers[0]: \"content type\": not a header name",
	    NULL);
	refused("{\"cors\":{\"allowed_headers\":[\"x:y\"]}}",
	    "cors.allowed_headers[0]: ", "not a header name");
	refused("{\"cors\":{\"allowed_headers\":[\"\"]}}",
	    "cors.allowed_headers[0]: ", "not a header name");
	/* At most 63 bytes. */
	memset(h, 'h', sizeof(h));
	h[63] = '\0';
	snprintf(text, sizeof(text), "{\"cors\":{\"allowed_headers\":"
	    "[\"%s\"]}}", h);
	accepted(text, &pol);
	assert_int_equal(strlen(pol.headers[0]), 63);
	policy_free(&pol);
	h[63] = 'h';
	h[64] = '\0';
	snprintf(text, sizeof(text), "{\"cors\":{\"allowed_headers\":"
	    "[\"%s\"]}}", h);
	refused(text, "cors.allowed_headers[0]: ", "not a header name");
	/* Credentials with listed origins are fine. */
	accepted("{\"cors\":{\"allowed_origins\":[\"http://a.example\"],"
	    "\"allow_credentials\":true}}", &pol);
	assert_true(pol.credentials);
	policy_free(&pol);
}

static void
test_bad_text(void **state)
{
	struct policy	 pol;
	char		*big, err[256];
	size_t		 n;

	(void)state;
	refused("", "the policy is not valid JSON", NULL);
	refused("   ", "the policy is not valid JSON", NULL);
	refused("not json", "the policy is not valid JSON", NULL);
	refused("{", "the policy is not valid JSON", NULL);
	refused("{\"cors\":", "the policy is not valid JSON", NULL);
	refused("{} {}", "the policy is not valid JSON", NULL);
	refused("{}x", "the policy is not valid JSON", NULL);
	refused("{}\n// comment", "the policy is not valid JSON", NULL);
	refused("{}\n\"\"", "the policy is not valid JSON", NULL);
	/* A NUL ends nothing: the whole length counts. */
	memset(&pol, 0, sizeof(pol));
	assert_int_equal(policy_parse_text("{}\0{}", 5, &pol, err,
	    sizeof(err)), -1);
	assert_string_equal(err, "the policy is not valid JSON");

	/* 128 KiB of blanks and an object is fine; one byte more is not. */
	n = POLICY_MAX_BYTES;
	big = malloc(n + 2);
	assert_non_null(big);
	memset(big, ' ', n + 1);
	big[0] = '{';
	big[n - 1] = '}';
	big[n] = '\0';
	assert_int_equal(policy_parse_text(big, n, &pol, err, sizeof(err)), 0);
	policy_free(&pol);
	big[n - 1] = ' ';
	big[n] = '}';
	big[n + 1] = '\0';
	memset(&pol, 0, sizeof(pol));
	assert_int_equal(policy_parse_text(big, n + 1, &pol, err,
	    sizeof(err)), -1);
	assert_string_equal(err, "the policy is 131073 bytes; at most 131072 "
	    "are accepted");
	free(big);
}

static void
test_ip_loopback_default(void **state)
{
	struct policy	 pol;

	(void)state;
	accepted("{\"ip_allowlist\":[]}", &pol);
	assert_true(policy_ip_allowed(&pol, "127.0.0.1"));
	assert_true(policy_ip_allowed(&pol, "127.255.0.1"));
	assert_true(policy_ip_allowed(&pol, "::1"));
	assert_true(policy_ip_allowed(&pol, "::ffff:127.0.0.1"));
	assert_true(policy_ip_allowed(&pol, "::FFFF:127.1.2.3"));
	assert_false(policy_ip_allowed(&pol, "10.0.0.1"));
	assert_false(policy_ip_allowed(&pol, "128.0.0.1"));
	assert_false(policy_ip_allowed(&pol, "126.255.255.255"));
	assert_false(policy_ip_allowed(&pol, "0.0.0.0"));
	assert_false(policy_ip_allowed(&pol, "::2"));
	assert_false(policy_ip_allowed(&pol, "::"));
	assert_false(policy_ip_allowed(&pol, "::ffff:10.0.0.1"));
	/* IPv4-compatible (deprecated), not mapped: not loopback. */
	assert_false(policy_ip_allowed(&pol, "::127.0.0.1"));
	assert_false(policy_ip_allowed(&pol, "fe80::1"));
	policy_free(&pol);
}

static void
test_ip_cidrs(void **state)
{
	struct policy	 pol;

	(void)state;
	/* /0 of each family: that family only. */
	accepted("{\"ip_allowlist\":[\"0.0.0.0/0\"]}", &pol);
	assert_true(policy_ip_allowed(&pol, "0.0.0.0"));
	assert_true(policy_ip_allowed(&pol, "255.255.255.255"));
	assert_true(policy_ip_allowed(&pol, "::ffff:8.8.8.8"));
	assert_false(policy_ip_allowed(&pol, "::1"));
	assert_false(policy_ip_allowed(&pol, "2001:db8::1"));
	policy_free(&pol);
	accepted("{\"ip_allowlist\":[\"::/0\"]}", &pol);
	assert_true(policy_ip_allowed(&pol, "::1"));
	assert_true(policy_ip_allowed(&pol, "ffff:ffff:ffff:ffff:ffff:ffff:"
	    "ffff:ffff"));
	assert_false(policy_ip_allowed(&pol, "127.0.0.1"));
	policy_free(&pol);

	/* An IPv4-mapped network is an IPv4 one, for either spelling. */
	accepted("{\"ip_allowlist\":[\"::ffff:10.0.0.0/104\"]}", &pol);
	assert_true(policy_ip_allowed(&pol, "10.9.8.7"));
	assert_true(policy_ip_allowed(&pol, "::ffff:10.9.8.7"));
	assert_false(policy_ip_allowed(&pol, "11.0.0.1"));
	policy_free(&pol);

	/* /32 and /31. */
	accepted("{\"ip_allowlist\":[\"192.0.2.7/32\",\"198.51.100.6/31\"]}",
	    &pol);
	assert_true(policy_ip_allowed(&pol, "192.0.2.7"));
	assert_false(policy_ip_allowed(&pol, "192.0.2.6"));
	assert_false(policy_ip_allowed(&pol, "192.0.2.8"));
	assert_true(policy_ip_allowed(&pol, "198.51.100.6"));
	assert_true(policy_ip_allowed(&pol, "198.51.100.7"));
	assert_false(policy_ip_allowed(&pol, "198.51.100.5"));
	assert_false(policy_ip_allowed(&pol, "198.51.100.8"));
	/* A non-empty list replaces the loopback default. */
	assert_false(policy_ip_allowed(&pol, "127.0.0.1"));
	assert_false(policy_ip_allowed(&pol, "::1"));
	policy_free(&pol);

	/* /7: a prefix ending inside a byte. */
	accepted("{\"ip_allowlist\":[\"10.0.0.0/7\"]}", &pol);
	assert_true(policy_ip_allowed(&pol, "10.0.0.0"));
	assert_true(policy_ip_allowed(&pol, "11.255.255.255"));
	assert_false(policy_ip_allowed(&pol, "9.255.255.255"));
	assert_false(policy_ip_allowed(&pol, "12.0.0.0"));
	assert_false(policy_ip_allowed(&pol, "138.0.0.1"));	/* 10 | 0x80 */
	policy_free(&pol);
	accepted("{\"ip_allowlist\":[\"172.16.0.0/12\"]}", &pol);
	assert_true(policy_ip_allowed(&pol, "172.31.255.255"));
	assert_false(policy_ip_allowed(&pol, "172.32.0.0"));
	assert_false(policy_ip_allowed(&pol, "172.15.255.255"));
	policy_free(&pol);

	/* IPv6 /64, and an IPv6 /128 that is not loopback. */
	accepted("{\"ip_allowlist\":[\"fd12:3456:789a:1::/64\","
	    "\"2001:db8::42\"]}", &pol);
	assert_true(policy_ip_allowed(&pol, "fd12:3456:789a:1::1"));
	assert_true(policy_ip_allowed(&pol, "fd12:3456:789a:1:ffff:ffff:"
	    "ffff:ffff"));
	assert_false(policy_ip_allowed(&pol, "fd12:3456:789a:2::1"));
	assert_false(policy_ip_allowed(&pol, "fd12:3456:789a::1"));
	assert_true(policy_ip_allowed(&pol, "2001:db8::42"));
	assert_true(policy_ip_allowed(&pol, "2001:DB8:0:0:0:0:0:42"));
	assert_false(policy_ip_allowed(&pol, "2001:db8::43"));
	assert_false(policy_ip_allowed(&pol, "::1"));
	policy_free(&pol);

	/* A dual-stack socket's IPv4 client against IPv4 entries. */
	accepted("{\"ip_allowlist\":[\"192.168.1.0/24\",\"::1\"]}", &pol);
	assert_true(policy_ip_allowed(&pol, "::ffff:192.168.1.20"));
	assert_true(policy_ip_allowed(&pol, "::ffff:c0a8:0114"));
	assert_true(policy_ip_allowed(&pol, "192.168.1.20"));
	assert_false(policy_ip_allowed(&pol, "::ffff:192.168.2.20"));
	/* Not mapped: ::ffff:0:0/96 only. */
	assert_false(policy_ip_allowed(&pol, "::fffe:192.168.1.20"));
	assert_false(policy_ip_allowed(&pol, "::192.168.1.20"));
	assert_false(policy_ip_allowed(&pol, "64:ff9b::192.168.1.20"));
	assert_true(policy_ip_allowed(&pol, "::1"));
	assert_false(policy_ip_allowed(&pol, "127.0.0.1"));
	policy_free(&pol);
}

/* What is not a numeric address is never let in. */
static void
test_ip_garbage(void **state)
{
	static const char *const junk[] = {
		"", "localhost", "127.0.0.1 ", " 127.0.0.1", "127.0.0.1:80",
		"[::1]", "::1%lo", "127.0.0", "127.0.0.1.1", "127.0.0.256",
		"0x7f.0.0.1", "127.0.0.1/8", "::1/128", "::g", ":::1",
		"1:2:3:4:5:6:7:8:9", "unix:/run/flm.sock",
	};
	struct policy	 pol;
	size_t		 i;

	(void)state;
	accepted("{\"ip_allowlist\":[\"0.0.0.0/0\",\"::/0\"]}", &pol);
	for (i = 0; i < sizeof(junk) / sizeof(junk[0]); i++)
		if (policy_ip_allowed(&pol, junk[i]))
			fail_msg("\"%s\" allowed", junk[i]);
	policy_free(&pol);
	policy_defaults(&pol);
	for (i = 0; i < sizeof(junk) / sizeof(junk[0]); i++)
		if (policy_ip_allowed(&pol, junk[i]))
			fail_msg("\"%s\" allowed by the default", junk[i]);
	policy_free(&pol);
}

#define OA(pol, s)	policy_origin_allowed((pol), (s), strlen(s))

static void
test_origins(void **state)
{
	struct policy	 pol;
	const char	*o = "https://app.example:8443 trailing";

	(void)state;
	accepted("{\"cors\":{\"allowed_origins\":[\"https://App.Example:8443\","
	    "\"http://127.0.0.1:8080\"]}}", &pol);
	assert_true(OA(&pol, "https://app.example:8443"));
	assert_true(OA(&pol, "HTTPS://APP.EXAMPLE:8443"));
	assert_true(OA(&pol, "http://127.0.0.1:8080"));
	/* Exact, never a prefix or a part. */
	assert_true(policy_origin_allowed(&pol, o, 24));
	assert_false(policy_origin_allowed(&pol, o, 23));
	assert_false(policy_origin_allowed(&pol, o, 25));
	assert_false(OA(&pol, "https://app.example"));
	assert_false(OA(&pol, "http://app.example:8443"));
	assert_false(OA(&pol, "https://app.example:8443/"));
	assert_false(OA(&pol, "https://app.example:84430"));
	assert_false(OA(&pol, "https://evil.app.example:8443"));
	assert_false(OA(&pol, "http://127.0.0.1"));
	assert_false(OA(&pol, "http://127.0.0.1:8081"));
	assert_false(OA(&pol, "null"));
	assert_false(OA(&pol, ""));
	assert_false(OA(&pol, "*"));
	assert_false(policy_origin_allowed(&pol, "http://127.0.0.1:8080\0x",
	    23));
	policy_free(&pol);

	/* None listed: none allowed. */
	accepted("{}", &pol);
	assert_false(OA(&pol, "http://127.0.0.1"));
	assert_false(OA(&pol, "*"));
	policy_free(&pol);

	/* "*": any, "null" included. */
	accepted("{\"cors\":{\"allowed_origins\":[\"*\"]}}", &pol);
	assert_true(pol.any_origin);
	assert_int_equal(pol.norigins, 0);
	assert_true(OA(&pol, "https://anything.example"));
	assert_true(OA(&pol, "null"));
	policy_free(&pol);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_empty_object),
		cmocka_unit_test(test_full_policy),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_input_untouched),
		cmocka_unit_test(test_bad_cidrs),
		cmocka_unit_test(test_cidr_parse),
		cmocka_unit_test(test_too_many),
		cmocka_unit_test(test_unknown_fields),
		cmocka_unit_test(test_wrong_types),
		cmocka_unit_test(test_bad_numbers),
		cmocka_unit_test(test_bad_origins),
		cmocka_unit_test(test_bad_cors),
		cmocka_unit_test(test_bad_text),
		cmocka_unit_test(test_ip_loopback_default),
		cmocka_unit_test(test_ip_cidrs),
		cmocka_unit_test(test_ip_garbage),
		cmocka_unit_test(test_origins),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
