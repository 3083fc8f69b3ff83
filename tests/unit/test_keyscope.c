/*
 * API key scopes (lib/keyscope.c): what keyd refuses to store, what it
 * stores (spelled out, parsed back the same), and how proxyd matches a
 * model and an engine against it.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "keyscope.h"

static char	kerr_buf[512];

static int
parse(const char *text, struct keyscope *ks)
{
	kerr_buf[0] = '\0';
	return keyscope_parse_text(text, strlen(text), ks, kerr_buf,
	    sizeof(kerr_buf));
}

/* TEXT is refused, the error containing WHY. */
static void
refused(const char *text, const char *why)
{
	struct keyscope	 ks;

	assert_int_equal(parse(text, &ks), -1);
	if (strstr(kerr_buf, why) == NULL)
		fail_msg("%s: error \"%s\" lacks \"%s\"", text, kerr_buf, why);
}

static void
test_refused(void **state)
{
	char	 big[4000];
	size_t	 n;
	int	 i;

	(void)state;
	refused("[]", "scope: expected an object");
	refused("{\"model\":[\"x\"]}", "unknown field 'model'");
	refused("{\"models\":\"x\"}", "models: expected a non-empty list");
	refused("{\"models\":[]}", "models: expected a non-empty list");
	refused("{\"models\":[1]}", "models[0]: expected a string");
	refused("{\"models\":[\"a b\"]}", "models[0]: expected a model name");
	refused("{\"models\":[\"\"]}", "models[0]");
	refused("{\"engines\":[\"Big\"]}", "engines[0]: expected an engine id");
	refused("{\"engines\":[\"abcdefghijklmnopqrstuvwxyz0123456\"]}",
	    "engines[0]");
	refused("{\"cidr\":[\"10.0.0.0/33\"]}", "cidr[0]");
	refused("{\"cidr\":[\"host.example\"]}", "cidr[0]");
	refused("{\"endpoints\":[\"chat\",\"admin\"]}",
	    "endpoints[1]: 'admin' is none of");
	refused("{\"rpm\":0}", "rpm: expected 1-1000000000");
	refused("{\"tpm\":1.5}", "tpm: expected 1-1000000000");
	refused("{\"rpm\":\"5\"}", "rpm");
	refused("{\"tpm\":1000000001}", "tpm");
	n = (size_t)snprintf(big, sizeof(big), "{\"models\":[");
	for (i = 0; i < 33; i++)
		n += (size_t)snprintf(big + n, sizeof(big) - n, "%s\"m%d\"",
		    i ? "," : "", i);
	snprintf(big + n, sizeof(big) - n, "]}");
	refused(big, "models: at most 32");
	refused("{\"models\":", "scope: not a JSON object");
}

/* What keyd stores parses back to the same, and nothing is added. */
static void
test_round_trip(void **state)
{
	static const char text[] = "{\"models\":[\"flm://vllm/*\",\"llama*\"],"
	    "\"engines\":[\"vllm\",\"ollama\"],\"cidr\":[\"10.1.0.0/16\","
	    "\"::1/128\"],\"endpoints\":[\"chat\",\"metrics\"],\"rpm\":60,"
	    "\"tpm\":1000}";
	struct keyscope		 a, b;
	struct json_object	*o;
	const char		*s;

	(void)state;
	assert_int_equal(parse(text, &a), 0);
	assert_int_equal(a.nmodels, 2);
	assert_int_equal(a.nengines, 2);
	assert_int_equal(a.ncidr, 2);
	assert_int_equal(a.endpoints, KS_CHAT | KS_METRICS);
	assert_int_equal(a.rpm, 60);
	assert_int_equal(a.tpm, 1000);
	assert_non_null(o = keyscope_json(&a));
	s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
	    JSON_C_TO_STRING_NOSLASHESCAPE);
	assert_string_equal(s, text);
	assert_int_equal(parse(s, &b), 0);
	assert_memory_equal(&a, &b, sizeof(a));
	json_object_put(o);
	/* No limits: nothing to store. */
	assert_int_equal(parse("{}", &a), 0);
	assert_null(keyscope_json(&a));
	assert_int_equal(parse("", &a), 0);
	assert_null(keyscope_json(&a));
}

static void
test_model_match(void **state)
{
	struct keyscope	 ks;

	(void)state;
	/* A glob on the flm:// id, or on the engine's own name. */
	assert_int_equal(parse("{\"models\":[\"flm://vllm/*\"]}", &ks), 0);
	assert_true(keyscope_model(&ks, "vllm", "meta-llama/Llama-3"));
	assert_false(keyscope_model(&ks, "ollama", "llama3.2:1b"));
	assert_true(keyscope_limits_models(&ks));
	assert_int_equal(parse("{\"models\":[\"llama3*\"]}", &ks), 0);
	assert_true(keyscope_model(&ks, "ollama", "llama3.2:1b"));
	assert_true(keyscope_model(&ks, "vllm", "llama3.2:1b"));
	assert_false(keyscope_model(&ks, "vllm", "qwen2.5"));
	/* Engines and models both: each must hold. */
	assert_int_equal(parse("{\"engines\":[\"ollama\"],\"models\":"
	    "[\"llama3*\"]}", &ks), 0);
	assert_true(keyscope_model(&ks, "ollama", "llama3.2:1b"));
	assert_false(keyscope_model(&ks, "vllm", "llama3.2:1b"));
	assert_false(keyscope_model(&ks, "ollama", "qwen2.5"));
	/* Endpoints or limits only: every model. */
	assert_int_equal(parse("{\"endpoints\":[\"chat\"],\"rpm\":5}", &ks),
	    0);
	assert_false(keyscope_limits_models(&ks));
	assert_true(keyscope_model(&ks, "any", "thing"));
	/* fnmatch: ? and [..], no partial match. */
	assert_int_equal(parse("{\"models\":[\"m?\",\"x[0-9]\"]}", &ks), 0);
	assert_true(keyscope_model(&ks, "e", "m1"));
	assert_false(keyscope_model(&ks, "e", "m12"));
	assert_true(keyscope_model(&ks, "e", "x7"));
	assert_false(keyscope_model(&ks, "e", "xa"));
}

static void
test_cidr(void **state)
{
	struct keyscope	 ks;

	(void)state;
	assert_int_equal(parse("{\"cidr\":[\"10.0.0.0/8\",\"fd00::/8\"]}",
	    &ks), 0);
	assert_int_equal(policy_cidrs_match(ks.cidr, (size_t)ks.ncidr,
	    "10.2.3.4"), 1);
	assert_int_equal(policy_cidrs_match(ks.cidr, (size_t)ks.ncidr,
	    "::ffff:10.2.3.4"), 1);
	assert_int_equal(policy_cidrs_match(ks.cidr, (size_t)ks.ncidr,
	    "fd12::1"), 1);
	assert_int_equal(policy_cidrs_match(ks.cidr, (size_t)ks.ncidr,
	    "127.0.0.1"), 0);
	assert_int_equal(policy_cidrs_match(ks.cidr, (size_t)ks.ncidr,
	    "not an address"), -1);
	assert_string_equal(keyscope_ep_name(KS_OLLAMA), "ollama");
	assert_null(keyscope_ep_name(0x1000));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_model_match),
		cmocka_unit_test(test_cidr),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
