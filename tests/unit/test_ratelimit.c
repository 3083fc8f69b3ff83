/*
 * flm-proxyd's rate limiter (flm-proxyd/proxyd_ratelimit.c), linked
 * whole: a full table of subjects makes room for a newcomer by
 * forgetting the least recently used one, and IPv6 clients are counted
 * by their /64.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <event2/event.h>

#include "proxyd.h"

#define RL_FULL		65536	/* RL_MAX of proxyd_ratelimit.c */

static struct proxyd	 proxyd;
struct proxyd		*px = &proxyd;

/* One request a minute: a second one at once is refused. */
static const struct policy_rate one = { .requests = 1 };

static int
take(const char *kind, const char *subject)
{
	int	 retry = 0;

	return ratelimit_take(kind, subject, &one, &retry);
}

static int
setup(void **state)
{
	(void)state;
	if ((px->c.base = event_base_new()) == NULL)
		return -1;
	ratelimit_init();
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	ratelimit_cleanup();
	event_base_free(px->c.base);
	px->c.base = NULL;
	return 0;
}

static void
addr_of(int i, char *buf, size_t sz)
{
	snprintf(buf, sz, "10.%d.%d.%d", (i >> 16) & 0xff, (i >> 8) & 0xff,
	    i & 0xff);
}

/* 65,536 subjects, each with its one request taken; then a newcomer. */
static void
test_full_evicts_lru(void **state)
{
	char	 a[32];
	int	 i, retry = 0;

	(void)state;
	for (i = 0; i < RL_FULL; i++) {
		addr_of(i, a, sizeof(a));
		assert_int_equal(take("ip", a), 1);
	}
	/* The oldest but one is used again: it is recent now. */
	addr_of(1, a, sizeof(a));
	assert_int_equal(take("ip", a), 0);
	/* The table is full: a newcomer is served all the same... */
	assert_int_equal(ratelimit_take("ip", "192.0.2.1", &one, &retry), 1);
	/* ...and still limited: its bucket is kept. */
	assert_int_equal(take("ip", "192.0.2.1"), 0);
	/* Subject 1, used again above, and the last one are still limited. */
	addr_of(1, a, sizeof(a));
	assert_int_equal(take("ip", a), 0);
	addr_of(RL_FULL - 1, a, sizeof(a));
	assert_int_equal(take("ip", a), 0);
	/* Subject 0, the least recently used, was forgotten: a full bucket. */
	addr_of(0, a, sizeof(a));
	assert_int_equal(take("ip", a), 1);
	/* Making room for it forgot subject 2, the next least recent. */
	addr_of(2, a, sizeof(a));
	assert_int_equal(take("ip", a), 1);
}

/* A flood from one /64 is one subject; other networks are not hurt. */
static void
test_ipv6_by_64(void **state)
{
	(void)state;
	assert_int_equal(take("ip", "2001:db8:1:2::1"), 1);
	assert_int_equal(take("ip", "2001:db8:1:2::1"), 0);
	assert_int_equal(take("ip", "2001:db8:1:2:ffff:ee:dd:cc"), 0);
	assert_int_equal(take("ip", "2001:db8:1:3::1"), 1);
	assert_int_equal(take("ip", "::1"), 1);
	/* IPv4 clients, also as IPv4-mapped IPv6, stay one per address. */
	assert_int_equal(take("ip", "::ffff:10.0.0.1"), 1);
	assert_int_equal(take("ip", "::ffff:10.0.0.2"), 1);
	assert_int_equal(take("ip", "::ffff:10.0.0.1"), 0);
	assert_int_equal(take("ip", "10.0.0.1"), 1);
	assert_int_equal(take("ip", "10.0.0.2"), 1);
	/* Keys are subjects as they are, whatever they look like. */
	assert_int_equal(take("key", "2001:db8:1:2::1"), 1);
	assert_int_equal(take("key", "2001:db8:1:2::2"), 1);
}

/* No limit configured: nothing is tracked or refused. */
static void
test_no_limit(void **state)
{
	const struct policy_rate	 none = { 0 };
	int				 retry = 0, i;

	(void)state;
	for (i = 0; i < 3; i++)
		assert_int_equal(ratelimit_take("ip", "10.9.9.9", &none,
		    &retry), 1);
}

int
main(void)
{
	const struct CMUnitTest	 tests[] = {
		cmocka_unit_test_setup_teardown(test_full_evicts_lru, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_ipv6_by_64, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_no_limit, setup,
		    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
