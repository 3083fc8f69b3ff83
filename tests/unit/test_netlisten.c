/*
 * netlisten_parse: lines of /proc/net/tcp and tcp6 as a little-endian
 * Linux prints them (copied from a real machine), each address word in
 * the host's byte order: IPv4, IPv6, IPv4-mapped, wildcards, loopback.
 */
#include "config.h"

#include <sys/socket.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "netlisten.h"

#define L4(a, p) "   3: " a ":" p " 00000000:0000 0A 00000000:00000000 " \
	"00:00000000 00000000     0        0 1063 1 00000000f80b1962 100 0 0 " \
	"10 0                      \n"
#define Z6 "00000000000000000000000000000000:0000"
#define L6(a, p, uid) "   0: " a ":" p " " Z6 " 0A 00000000:00000000 " \
	"00:00000000 00000000  " uid "        0 83763 1 000000005f99d078 " \
	"100 0 0 10 0\n"

static void
parsed(const char *line, int family, const char *addr, int port, int lo,
    int any)
{
	struct netlisten	 nl;
	char			 buf[64];

	assert_int_equal(netlisten_parse(line, family, &nl), 0);
	netlisten_ntop(&nl, buf, sizeof(buf));
	assert_string_equal(buf, addr);
	assert_int_equal(nl.port, port);
	assert_int_equal(nl.state, NETLISTEN_STATE_LISTEN);
	assert_int_equal(netlisten_loopback(&nl), lo);
	assert_int_equal(netlisten_wildcard(&nl), any);
}

static void
test_ipv4(void **state)
{
	(void)state;
	parsed(L4("00000000", "B0C1"), AF_INET, "0.0.0.0", 45249, 0, 1);
	parsed(L4("0100007F", "9463"), AF_INET, "127.0.0.1", 37987, 1, 0);
	parsed(L4("0200007F", "90F3"), AF_INET, "127.0.0.2", 37107, 1, 0);
	/* 192.168.1.20: the first byte is the low one of the word. */
	parsed(L4("1401A8C0", "2CAE"), AF_INET, "192.168.1.20", 11438, 0, 0);
}

static void
test_ipv6(void **state)
{
	struct netlisten	 nl;

	(void)state;
	parsed(L6("00000000000000000000000000000000", "8495", "   0"),
	    AF_INET6, "::", 33941, 0, 1);
	parsed(L6("00000000000000000000000001000000", "AA6D", "   0"),
	    AF_INET6, "::1", 43629, 1, 0);
	/* Each 32-bit word is byte-swapped on its own, not the whole. */
	parsed(L6("B80D0120000000000000000001000000", "2CAE", "1000"),
	    AF_INET6, "2001:db8::1", 11438, 0, 0);
	parsed(L6("000080FE000000000000000001000000", "1F90", "1000"),
	    AF_INET6, "fe80::1", 8080, 0, 0);
	assert_int_equal(netlisten_parse(L6("B80D0120000000000000000001000000",
	    "2CAE", "1000"), AF_INET6, &nl), 0);
	assert_int_equal(nl.uid, 1000);
}

static void
test_mapped(void **state)
{
	(void)state;
	parsed(L6("0000000000000000FFFF00000100007F", "9109", "   0"),
	    AF_INET6, "127.0.0.1", 37129, 1, 0);
	parsed(L6("0000000000000000FFFF000000000000", "9819", "   0"),
	    AF_INET6, "0.0.0.0", 38937, 0, 1);
	parsed(L6("0000000000000000FFFF00001401A8C0", "2CAE", "   0"),
	    AF_INET6, "192.168.1.20", 11438, 0, 0);
}

static void
test_other_states(void **state)
{
	struct netlisten	 nl;

	(void)state;
	/* TIME_WAIT, with the shorter tail the kernel gives it. */
	assert_int_equal(netlisten_parse("   4: 0100007F:8554 0100007F:A597 "
	    "06 00000000:00000000 03:00000516 00000000     0        0 0 3 "
	    "00000000e2025455\n", AF_INET, &nl), 0);
	assert_int_equal(nl.state, 6);
	assert_int_equal(nl.port, 0x8554);
}

static void
test_refused(void **state)
{
	struct netlisten	 nl;

	(void)state;
	/* The header lines. */
	assert_int_equal(netlisten_parse("  sl  local_address rem_address   "
	    "st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout "
	    "inode\n", AF_INET, &nl), -1);
	/* A tcp6 line read as tcp, and the other way round. */
	assert_int_equal(netlisten_parse(L6("00000000000000000000000001000000",
	    "AA6D", "   0"), AF_INET, &nl), -1);
	assert_int_equal(netlisten_parse(L4("0100007F", "9463"), AF_INET6,
	    &nl), -1);
	/* Not hex, short, a port too long, cut before the uid. */
	assert_int_equal(netlisten_parse(L4("0100007G", "9463"), AF_INET,
	    &nl), -1);
	assert_int_equal(netlisten_parse(L4("100007F", "9463"), AF_INET,
	    &nl), -1);
	assert_int_equal(netlisten_parse(L4("0100007F", "94631"), AF_INET,
	    &nl), -1);
	assert_int_equal(netlisten_parse("   3: 0100007F:9463 00000000:0000 "
	    "0A\n", AF_INET, &nl), -1);
	assert_int_equal(netlisten_parse("", AF_INET, &nl), -1);
	assert_int_equal(netlisten_parse(L4("0100007F", "9463"), AF_UNIX,
	    &nl), -1);
}

/* A file of lines: only LISTEN sockets on the port, both counted. */
static void
test_scan(void **state)
{
	struct netlisten	 nl[1];
	char			 path[] = "/tmp/test_netlisten.XXXXXX";
	FILE			*f;
	int			 fd;

	(void)state;
	assert_true((fd = mkstemp(path)) != -1);
	assert_non_null(f = fdopen(fd, "w"));
	fputs("  sl  local_address rem_address   st tx_queue\n", f);
	fputs(L4("0100007F", "2CAE"), f);
	fputs(L4("00000000", "2CAE"), f);
	fputs(L4("00000000", "2CAF"), f);
	fputs("   4: 0100007F:2CAE 0100007F:A597 06 00000000:00000000 "
	    "03:00000516 00000000     0        0 0 3 00000000e2025455\n", f);
	fclose(f);
	assert_int_equal(netlisten_scan(path, AF_INET, 11438, nl, 1), 2);
	assert_int_equal(nl[0].port, 11438);
	assert_int_equal(netlisten_loopback(&nl[0]), 1);
	assert_int_equal(netlisten_scan(path, AF_INET, 1, nl, 1), 0);
	unlink(path);
	assert_int_equal(netlisten_scan(path, AF_INET, 1, nl, 1), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ipv4),
		cmocka_unit_test(test_ipv6),
		cmocka_unit_test(test_mapped),
		cmocka_unit_test(test_other_states),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_scan),
	};

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
	/* The lines are a little-endian kernel's. */
	printf("1..0 # SKIP lines from a little-endian kernel\n");
	return 0;
#endif
	return cmocka_run_group_tests(tests, NULL, NULL);
}
