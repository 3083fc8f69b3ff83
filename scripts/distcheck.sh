#!/bin/sh
# distcheck.sh BUILDDIR: make distcheck quietly; on failure print which
# tests failed and the end of each one's log (distcheck leaves its tree).
set -u
cd "$1" || exit 1
make -j2 distcheck >distcheck.out 2>&1 && exit 0
grep -E '^(FAIL|ERROR|XPASS):' distcheck.out
for t in $(grep -E '^(FAIL|ERROR):' distcheck.out | awk '{print $2}' | sort -u); do
	log=$(find flm-*/_build -path "*/${t%.*}.log" 2>/dev/null | head -1)
	[ -n "$log" ] || continue
	echo "== $log"
	grep -E '^(not ok|#)' "$log" | tail -30
done
tail -20 distcheck.out
exit 1
