/*
 * libFuzzer target for the security policy checker (lib/policy.c):
 * any text an admin (or a damaged security.db) gives must be refused
 * with an error or accepted; an accepted one, normalised as keyd
 * stores it, must parse back to the same policy (keyd reads it again
 * at every start, proxyd on every change), and the address and origin
 * checks must hold up on it.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "policy.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void
same(const struct policy *a, const struct policy *b)
{
	size_t	 i;

	if (a->nallow != b->nallow || a->norigins != b->norigins ||
	    a->nheaders != b->nheaders || a->any_origin != b->any_origin ||
	    a->methods != b->methods || a->max_age != b->max_age ||
	    a->credentials != b->credentials ||
	    a->per_key.requests != b->per_key.requests ||
	    a->per_key.tokens != b->per_key.tokens ||
	    a->per_ip.requests != b->per_ip.requests ||
	    a->per_ip.tokens != b->per_ip.tokens ||
	    a->auth_fail_max != b->auth_fail_max ||
	    a->auth_fail_window != b->auth_fail_window)
		abort();
	for (i = 0; i < a->nallow; i++)
		if (a->allow[i].family != b->allow[i].family ||
		    a->allow[i].prefix != b->allow[i].prefix ||
		    memcmp(a->allow[i].addr, b->allow[i].addr, 16) != 0)
			abort();
	for (i = 0; i < a->norigins; i++)
		if (strcmp(a->origins[i], b->origins[i]) != 0)
			abort();
	for (i = 0; i < a->nheaders; i++)
		if (strcmp(a->headers[i], b->headers[i]) != 0)
			abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const addrs[] = { "127.0.0.1", "::1",
	    "::ffff:192.168.1.20", "10.1.2.3", "2001:db8::1", "fe80::1%lo",
	    "" };
	struct policy		 pol, again;
	struct json_object	*j, *k;
	const char		*text;
	char			 err[256];
	size_t			 i;

	if (policy_parse_text((const char *)data, size, &pol, err,
	    sizeof(err)) == -1) {
		/* Refused: an error, and nothing to free. */
		if (err[0] == '\0' || pol.allow != NULL ||
		    pol.origins != NULL || pol.headers != NULL)
			abort();
		return 0;
	}
	if (pol.nallow > POLICY_MAX_CIDRS || pol.norigins > POLICY_MAX_ORIGINS ||
	    pol.nheaders > POLICY_MAX_HEADERS ||
	    (pol.credentials && pol.any_origin) || pol.auth_fail_max == 0 ||
	    pol.auth_fail_window == 0)
		abort();

	/* keyd's round trip: the object, then the stored text. */
	j = policy_json(&pol);
	if (policy_parse(j, &again, err, sizeof(err)) == -1)
		abort();
	same(&pol, &again);
	policy_free(&again);
	text = json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN |
	    JSON_C_TO_STRING_NOSLASHESCAPE);
	if (policy_parse_text(text, strlen(text), &again, err,
	    sizeof(err)) == -1)
		abort();
	same(&pol, &again);
	/* The normal form is a fixed point. */
	k = policy_json(&again);
	if (strcmp(text, json_object_to_json_string_ext(k,
	    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)) != 0)
		abort();
	json_object_put(k);
	json_object_put(j);
	policy_free(&again);

	for (i = 0; i < sizeof(addrs) / sizeof(addrs[0]); i++)
		(void)policy_ip_allowed(&pol, addrs[i]);
	/* An empty list is loopback only, whatever else is set. */
	if (pol.nallow == 0 && (!policy_ip_allowed(&pol, "127.0.0.1") ||
	    policy_ip_allowed(&pol, "10.1.2.3")))
		abort();
	/* Every listed origin is allowed, as stored and upper-cased. */
	for (i = 0; i < pol.norigins; i++) {
		char	 up[POLICY_ORIGIN_MAX];
		size_t	 n = strlen(pol.origins[i]), m;

		for (m = 0; m <= n; m++)
			up[m] = (char)(pol.origins[i][m] >= 'a' &&
			    pol.origins[i][m] <= 'z' ? pol.origins[i][m] - 32 :
			    pol.origins[i][m]);
		if (!policy_origin_allowed(&pol, pol.origins[i], n) ||
		    !policy_origin_allowed(&pol, up, n))
			abort();
	}
	(void)policy_origin_allowed(&pol, (const char *)data,
	    size < POLICY_ORIGIN_MAX ? size : POLICY_ORIGIN_MAX);
	policy_free(&pol);
	return 0;
}
