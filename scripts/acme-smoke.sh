#!/bin/sh
# The ACME smoke test alone (the seed's ci-acme-smoke): Pebble on
# loopback, then tests/integration/acme.t, acme-dns.t and acme-keyd.t
# against a built tree, naming each challenge type as it passes.
#   usage: acme-smoke.sh [BUILDDIR]   (default: build, made if missing)
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
B=${1:-$top/build}
[ -x "$B/flmd/flmd" ] || sh "$top/scripts/build.sh" "$B" >/dev/null || exit 1
B=$(cd "$B" && pwd)
cd "$B" || exit 1
T="tests/integration/acme.t tests/integration/acme-dns.t"
T="$T tests/integration/acme-keyd.t"
for t in $T; do rm -f "${t%.t}.log"; done
make check TESTS="$T" >/dev/null 2>&1
rc=$?
# said NAME PATTERN [TEST]: a challenge type passed if every line
# matching PATTERN in TEST's log (acme) is "ok".
said() {
	l=tests/integration/${3:-acme}.log
	n=$(grep -c "^ok .*$2" "$l")
	f=$(grep -c "^not ok .*$2" "$l")
	if [ "$n" -gt 0 ] && [ "$f" = 0 ]; then
		echo "acme-smoke: $1 passed"
	else
		echo "acme-smoke: $1 FAILED"
		rc=1
	fi
}
said HTTP-01 "HTTP-01 gets a certificate"
said TLS-ALPN-01 "TLS-ALPN-01: a certificate"
said DNS-01 "DNS-01: a certificate" acme-dns
said renewal "renewed the certificate"
said "failed renewal" "the renewal order failed" acme-dns
grep '^not ok' tests/integration/acme*.log
[ $rc = 0 ] && echo "acme-smoke: every ACME test passed" ||
    echo "acme-smoke: failed (logs: $B/tests/integration/acme*.log)"
exit $rc
