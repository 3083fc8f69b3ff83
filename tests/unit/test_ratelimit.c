/*
 * flm-proxyd's rate limiter (flm-proxyd/proxyd_ratelimit.c), linked
 * whole, in its private region: a full table of subjects makes room
 * for a newcomer by forgetting the least recently used one, and IPv6
 * clients are counted by their /64.
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
#include "shm.h"


static struct proxyd	 proxyd;
struct proxyd		*px = &proxyd;

/* The metrics part of the region is proxyd_metrics.c's: not here. */
void
metrics_attach(void *base)
{
	(void)base;
}

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

/*
 * A flood of twice as many addresses as there are slots, each taking its
 * one request: every one is served (never refused for want of room),
 * while a subject seen again all along keeps its bucket; the first of
 * the flood, least recently used, were forgotten.
 */
static void
test_flood_forgets_lru(void **state)
{
	char	 a[32];
	int	 i, forgot = 0;

	(void)state;
	assert_int_equal(take("ip", "192.0.2.1"), 1);
	for (i = 0; i < 2 * RL_SHM_SLOTS; i++) {
		addr_of(i, a, sizeof(a));
		if (take("ip", a) != 1)
			fail_msg("flood address %d refused", i);
		if (i % 16 == 0 && take("ip", "192.0.2.1") != 0)
			fail_msg("the subject seen all along forgotten at %d",
			    i);
	}
	/* A newcomer after the flood is served and kept. */
	assert_int_equal(take("ip", "192.0.2.2"), 1);
	assert_int_equal(take("ip", "192.0.2.2"), 0);
	/* The last of the flood is still limited... */
	addr_of(2 * RL_SHM_SLOTS - 1, a, sizeof(a));
	assert_int_equal(take("ip", a), 0);
	/* ...the first, least recently used, were forgotten: full again. */
	for (i = 0; i < 1000; i++) {
		addr_of(i, a, sizeof(a));
		forgot += take("ip", a);
	}
	if (forgot < 990)
		fail_msg("only %d of the first 1000 forgotten", forgot);
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
		cmocka_unit_test_setup_teardown(test_flood_forgets_lru, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_ipv6_by_64, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_no_limit, setup,
		    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
