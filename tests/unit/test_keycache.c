/*
 * The verified-key cache and the key format: what proxyd and keyd rely
 * on to skip Argon2 safely.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <sodium.h>

#include "apikey.h"
#include "keycache.h"

static const char *KEY_A =
    "flm_0123456789abcdef_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

static void
digest_of(struct keycache *kc, const char *tok, uint8_t d[KEYCACHE_DIGEST])
{
	keycache_digest(kc, tok, strlen(tok), d);
}

static void
test_hit_and_miss(void **state)
{
	struct keycache	*kc = keycache_new(64);
	uint8_t		 d[KEYCACHE_DIGEST], e[KEYCACHE_DIGEST];
	struct keycache_entry *ce;

	(void)state;
	digest_of(kc, KEY_A, d);
	assert_null(keycache_get(kc, d, time(NULL)));
	keycache_put(kc, d, "0123456789abcdef", 0);
	ce = keycache_get(kc, d, time(NULL));
	assert_non_null(ce);
	assert_string_equal(ce->key_id, "0123456789abcdef");
	/* One character off is another digest: a miss. */
	digest_of(kc, "flm_0123456789abcdef_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB", e);
	assert_memory_not_equal(d, e, KEYCACHE_DIGEST);
	assert_null(keycache_get(kc, e, time(NULL)));
	assert_int_equal(keycache_count(kc), 1);
	keycache_free(kc);
}

static void
test_keyed_per_instance(void **state)
{
	struct keycache	*a = keycache_new(8), *b = keycache_new(8);
	uint8_t		 da[KEYCACHE_DIGEST], db[KEYCACHE_DIGEST];

	(void)state;
	/* Different random keys: the digest of a token is not predictable. */
	digest_of(a, KEY_A, da);
	digest_of(b, KEY_A, db);
	assert_memory_not_equal(da, db, KEYCACHE_DIGEST);
	keycache_free(a);
	keycache_free(b);
}

static void
test_expiry(void **state)
{
	struct keycache	*kc = keycache_new(8);
	uint8_t		 d[KEYCACHE_DIGEST];
	time_t		 now = time(NULL);

	(void)state;
	digest_of(kc, KEY_A, d);
	keycache_put(kc, d, "0123456789abcdef", (uint64_t)now + 10);
	assert_non_null(keycache_get(kc, d, now + 9));
	assert_null(keycache_get(kc, d, now + 10));
	/* An expired entry is gone, not just hidden. */
	assert_int_equal(keycache_count(kc), 0);
	assert_null(keycache_get(kc, d, now));
	keycache_free(kc);
}

static void
test_drop_key_and_clear(void **state)
{
	struct keycache	*kc = keycache_new(64);
	uint8_t		 d1[KEYCACHE_DIGEST], d2[KEYCACHE_DIGEST];
	uint8_t		 d3[KEYCACHE_DIGEST];

	(void)state;
	digest_of(kc, "token-one", d1);
	digest_of(kc, "token-two", d2);
	digest_of(kc, "token-three", d3);
	/* Two secrets of one key (a rotation) and another key. */
	keycache_put(kc, d1, "aaaaaaaaaaaaaaaa", 0);
	keycache_put(kc, d2, "aaaaaaaaaaaaaaaa", 0);
	keycache_put(kc, d3, "bbbbbbbbbbbbbbbb", 0);
	assert_int_equal(keycache_drop_key(kc, "aaaaaaaaaaaaaaaa"), 2);
	assert_null(keycache_get(kc, d1, time(NULL)));
	assert_null(keycache_get(kc, d2, time(NULL)));
	assert_non_null(keycache_get(kc, d3, time(NULL)));
	keycache_clear(kc);
	assert_int_equal(keycache_count(kc), 0);
	assert_null(keycache_get(kc, d3, time(NULL)));
	keycache_free(kc);
}

static void
test_bounded(void **state)
{
	struct keycache	*kc = keycache_new(16);
	uint8_t		 d[KEYCACHE_DIGEST];
	char		 tok[32];
	int		 i;

	(void)state;
	for (i = 0; i < 1000; i++) {
		snprintf(tok, sizeof(tok), "token-%d", i);
		digest_of(kc, tok, d);
		keycache_put(kc, d, "cccccccccccccccc", 0);
	}
	assert_true(keycache_count(kc) <= 16);
	/* The newest always survives its own insertion. */
	assert_non_null(keycache_get(kc, d, time(NULL)));
	keycache_free(kc);
}

static void
test_collect_used(void **state)
{
	struct keycache	*kc = keycache_new(64);
	uint8_t		 d1[KEYCACHE_DIGEST], d2[KEYCACHE_DIGEST];
	char		 ids[8][FLM_KEY_ID_LEN + 1];

	(void)state;
	digest_of(kc, "one", d1);
	digest_of(kc, "two", d2);
	keycache_put(kc, d1, "aaaaaaaaaaaaaaaa", 0);
	keycache_put(kc, d2, "aaaaaaaaaaaaaaaa", 0);
	assert_int_equal(keycache_collect_used(kc, ids, 8), 0);
	keycache_get(kc, d1, time(NULL));
	keycache_get(kc, d2, time(NULL));
	/* Two tokens of one key: reported once, then not again. */
	assert_int_equal(keycache_collect_used(kc, ids, 8), 1);
	assert_string_equal(ids[0], "aaaaaaaaaaaaaaaa");
	assert_int_equal(keycache_collect_used(kc, ids, 8), 0);
	keycache_free(kc);
}

static void
test_apikey_parse(void **state)
{
	char		 id[FLM_KEY_ID_LEN + 1];
	const char	*secret;
	char		 bad[128];

	(void)state;
	assert_int_equal(apikey_parse(KEY_A, strlen(KEY_A), id, &secret), 0);
	assert_string_equal(id, "0123456789abcdef");
	assert_int_equal(strlen(secret), FLM_KEY_SECRET_LEN);
	/* Each of these is refused before anyone looks it up. */
	assert_int_equal(apikey_parse("", 0, id, &secret), -1);
	assert_int_equal(apikey_parse(KEY_A, strlen(KEY_A) - 1, id, &secret), -1);
	snprintf(bad, sizeof(bad), "%s", KEY_A);
	bad[0] = 'F';
	assert_int_equal(apikey_parse(bad, strlen(bad), id, &secret), -1);
	snprintf(bad, sizeof(bad), "%s", KEY_A);
	bad[5] = 'G';			/* not hex */
	assert_int_equal(apikey_parse(bad, strlen(bad), id, &secret), -1);
	snprintf(bad, sizeof(bad), "%s", KEY_A);
	bad[20] = '-';			/* the separator */
	assert_int_equal(apikey_parse(bad, strlen(bad), id, &secret), -1);
	snprintf(bad, sizeof(bad), "%s", KEY_A);
	bad[30] = '\'';			/* outside base64url */
	assert_int_equal(apikey_parse(bad, strlen(bad), id, &secret), -1);
	snprintf(bad, sizeof(bad), "%s", KEY_A);
	bad[40] = '\0';			/* a NUL inside */
	assert_int_equal(apikey_parse(bad, strlen(KEY_A), id, &secret), -1);
	snprintf(bad, sizeof(bad), "%s", KEY_A);
	bad[45] = (char)0xff;		/* not UTF-8, not base64url */
	assert_int_equal(apikey_parse(bad, strlen(bad), id, &secret), -1);
}

static void
test_label(void **state)
{
	char	 l64[65], l65[66];

	(void)state;
	memset(l64, 'a', 64);
	l64[64] = '\0';
	memset(l65, 'a', 65);
	l65[65] = '\0';
	assert_true(apikey_label_valid("laptop-1.home_net"));
	assert_true(apikey_label_valid(l64));
	assert_false(apikey_label_valid(l65));
	assert_false(apikey_label_valid(""));
	assert_false(apikey_label_valid("with space"));
	assert_false(apikey_label_valid("semi;colon"));
	assert_false(apikey_label_valid("\xc3\xa9t\xc3\xa9"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hit_and_miss),
		cmocka_unit_test(test_keyed_per_instance),
		cmocka_unit_test(test_expiry),
		cmocka_unit_test(test_drop_key_and_clear),
		cmocka_unit_test(test_bounded),
		cmocka_unit_test(test_collect_used),
		cmocka_unit_test(test_apikey_parse),
		cmocka_unit_test(test_label),
	};

	if (sodium_init() == -1)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
