/*
 * flm migrate legacy's readers (lib/legacy.c): keys files, Ollama
 * environment files, OLLAMA_HOST, bcrypt hashes; every bad line
 * reported with its place and without the key's text.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "legacy.h"

/* text read as a file named PATH by fn. */
static void
feed(struct legacy_set *s, int (*fn)(struct legacy_set *, const char *,
    FILE *), const char *text)
{
	FILE	*f = fmemopen((void *)text, strlen(text), "r");

	assert_non_null(f);
	assert_int_equal(fn(s, "PATH", f), 0);
	fclose(f);
}

/* Some error is exactly want. */
static void
has_error(struct legacy_set *s, const char *want)
{
	size_t	 i;

	for (i = 0; i < s->nerrors; i++)
		if (strcmp(s->errors[i], want) == 0)
			return;
	for (i = 0; i < s->nerrors; i++)
		print_message("error: %s\n", s->errors[i]);
	fail_msg("no error \"%s\"", want);
}

static void
test_keys_file(void **state)
{
	struct legacy_set	 s;

	(void)state;
	memset(&s, 0, sizeof(s));
	feed(&s, legacy_keys_file, "# comment\n\n  sk-one\r\n"
	    "ci\tsk-two\nx y z\nflm_0123456789abcdef_abc\nbad! sk-three\n"
	    "sk-\x01ctl\n");
	assert_int_equal(s.nkeys, 2);
	assert_string_equal(s.keys[0].label, "PATH-3");
	assert_string_equal(s.keys[0].secret, "sk-one");
	assert_string_equal(s.keys[0].where, "PATH:3");
	assert_int_equal(s.keys[0].kind, LEGACY_PLAIN);
	assert_string_equal(s.keys[1].label, "ci");
	assert_string_equal(s.keys[1].secret, "sk-two");
	assert_int_equal(s.nerrors, 4);
	has_error(&s, "PATH:5: expected KEY or LABEL KEY");
	has_error(&s, "PATH:6: an flm key (flm_...): it is one already, "
	    "nothing to import");
	has_error(&s, "PATH:7: label 'bad!': use 1-64 characters of A-Z a-z "
	    "0-9 . _ -");
	has_error(&s, "PATH:8: not a usable key: 1-128 printable characters "
	    "without blanks");
	legacy_free(&s);
}

static void
test_duplicates(void **state)
{
	struct legacy_set	 s;
	size_t			 i;

	(void)state;
	memset(&s, 0, sizeof(s));
	feed(&s, legacy_keys_file, "a k1\nb k2\na k3\nc k2\n");
	legacy_check(&s);
	assert_int_equal(s.nerrors, 2);
	has_error(&s, "PATH:3: duplicate label 'a' (first at PATH:1)");
	has_error(&s, "PATH:4: the same key as PATH:2");
	/* A key's text is in no message. */
	for (i = 0; i < s.nerrors; i++)
		assert_null(strstr(s.errors[i], "k2"));
	legacy_free(&s);
}

static void
test_env_file(void **state)
{
	struct legacy_set	 s;

	(void)state;
	memset(&s, 0, sizeof(s));
	feed(&s, legacy_env_file, "[Service]\n# x\n"
	    "export OLLAMA_HOST=\"0.0.0.0:11500\"\n"
	    "Environment=\"OLLAMA_ORIGINS=https://a.example, "
	    "http://localhost:3000\" OLLAMA_MODELS=/m\n"
	    "OLLAMA_KEEP_ALIVE='5m'\nnot an assignment\n"
	    "Environment=\"OLLAMA_HOST=x\n");
	assert_string_equal(s.ollama_url, "http://127.0.0.1:11500");
	assert_string_equal(s.ollama_where, "PATH:3");
	assert_int_equal(s.norigins, 2);
	assert_string_equal(s.origins[0], "https://a.example");
	assert_string_equal(s.origins[1], "http://localhost:3000");
	assert_string_equal(s.origins_where, "PATH:4");
	assert_int_equal(s.nerrors, 2);
	has_error(&s, "PATH:6: expected NAME=VALUE");
	has_error(&s, "PATH:7: unbalanced quotes");
	legacy_free(&s);
}

static void
test_ollama_url(void **state)
{
	char	 u[300];

	(void)state;
	assert_int_equal(legacy_ollama_url("", u, sizeof(u)), 0);
	assert_string_equal(u, "http://127.0.0.1:11434");
	assert_int_equal(legacy_ollama_url("gpu.lan", u, sizeof(u)), 0);
	assert_string_equal(u, "http://gpu.lan:11434");
	assert_int_equal(legacy_ollama_url(":9000", u, sizeof(u)), 0);
	assert_string_equal(u, "http://127.0.0.1:9000");
	assert_int_equal(legacy_ollama_url("http://10.0.0.2:8080/", u,
	    sizeof(u)), 0);
	assert_string_equal(u, "http://10.0.0.2:8080");
	assert_int_equal(legacy_ollama_url("https://o.example", u, sizeof(u)),
	    0);
	assert_string_equal(u, "https://o.example:443");
	assert_int_equal(legacy_ollama_url("[::]:11434", u, sizeof(u)), 0);
	assert_string_equal(u, "http://[::1]:11434");
	assert_int_equal(legacy_ollama_url("host:0", u, sizeof(u)), -1);
	assert_int_equal(legacy_ollama_url("host:99999", u, sizeof(u)), -1);
	assert_int_equal(legacy_ollama_url("host:80x", u, sizeof(u)), -1);
	assert_int_equal(legacy_ollama_url("::1", u, sizeof(u)), -1);
	assert_int_equal(legacy_ollama_url("h/api", u, sizeof(u)), -1);
	assert_int_equal(legacy_ollama_url("a b", u, sizeof(u)), -1);
}

static void
test_bcrypt(void **state)
{
	const char	*good = "$2b$10$.VdFjip26.vGBd8MIlnp6.9fxmgEhr4ysFY7EGhZB"
			    "x2U1tdj.dlMG";
	char		 h[80];

	(void)state;
	assert_true(legacy_bcrypt_valid(good));
	snprintf(h, sizeof(h), "%s", good);
	h[2] = 'y';
	assert_true(legacy_bcrypt_valid(h));
	h[2] = 'x';
	assert_false(legacy_bcrypt_valid(h));	/* $2x$: the buggy one */
	snprintf(h, sizeof(h), "%s", good);
	h[4] = '3';
	h[5] = '2';
	assert_false(legacy_bcrypt_valid(h));	/* cost 32 */
	snprintf(h, sizeof(h), "%s", good);
	h[20] = '+';
	assert_false(legacy_bcrypt_valid(h));
	assert_false(legacy_bcrypt_valid("$2b$10$short"));
	assert_false(legacy_bcrypt_valid("$6$salt$hash"));
	assert_false(legacy_bcrypt_valid(""));
}

int
main(void)
{
	const struct CMUnitTest	 tests[] = {
		cmocka_unit_test(test_keys_file),
		cmocka_unit_test(test_duplicates),
		cmocka_unit_test(test_env_file),
		cmocka_unit_test(test_ollama_url),
		cmocka_unit_test(test_bcrypt),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
