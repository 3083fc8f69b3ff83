#!/bin/sh
# The ACME smoke test alone (the seed's ci-acme-smoke): Pebble on
# loopback, then tests/integration/acme.t and acme-keyd.t against a
# built tree, naming each challenge type as it passes.
#   usage: acme-smoke.sh [BUILDDIR]   (default: build, made if missing)
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
B=${1:-$top/build}
[ -x "$B/flmd/flmd" ] || sh "$top/scripts/build.sh" "$B" >/dev/null || exit 1
B=$(cd "$B" && pwd)
cd "$B" || exit 1
rm -f tests/integration/acme.log tests/integration/acme-keyd.log
make check TESTS="tests/integration/acme.t tests/integration/acme-keyd.t" \
    >/dev/null 2>&1
rc=$?
# said NAME PATTERN: a challenge type passed if every line matching
# PATTERN in acme.t's log is "ok".
said() {
	n=$(grep -c "^ok .*$2" tests/integration/acme.log)
	f=$(grep -c "^not ok .*$2" tests/integration/acme.log)
	if [ "$n" -gt 0 ] && [ "$f" = 0 ]; then
		echo "acme-smoke: $1 passed"
	else
		echo "acme-smoke: $1 FAILED"
		rc=1
	fi
}
said HTTP-01 "HTTP-01 gets a certificate"
said TLS-ALPN-01 "TLS-ALPN-01: a certificate"
said renewal "renewed the certificate"
grep '^not ok' tests/integration/acme.log tests/integration/acme-keyd.log
[ $rc = 0 ] && echo "acme-smoke: every ACME test passed" ||
    echo "acme-smoke: failed (logs: $B/tests/integration/acme*.log)"
exit $rc
