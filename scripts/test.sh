#!/bin/sh
# README command (2): install what is missing, build, and run every
# test three times (plain; AddressSanitizer + UBSan; a coverage build,
# whose per-process table is printed and must be at 80% of each
# process's lines), plus the manual page lint, fuzzing, make distcheck
# and the packages.  Ends with "N passed, N failed".
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

sh scripts/deps.sh --test --package || exit 1

passed=0
failed=0
skipped=0

# tally DIR: add up the automake .trs results below DIR.
tally() {
	for f in $(find "$1" -name '*.trs'); do
		p=$(grep -c '^:test-result: PASS' "$f")
		x=$(grep -c '^:test-result: XFAIL' "$f")
		s=$(grep -c '^:test-result: SKIP' "$f")
		b=$(grep -c '^:test-result: \(FAIL\|XPASS\|ERROR\)' "$f")
		passed=$((passed + p + x))
		skipped=$((skipped + s))
		failed=$((failed + b))
	done
}

# step NAME COMMAND...: one pass/fail point for a whole step.
step() {
	name=$1
	shift
	if "$@"; then
		echo "PASS: $name"
		passed=$((passed + 1))
	else
		echo "FAIL: $name"
		failed=$((failed + 1))
	fi
}

# run_check DIR TARGET [VAR=VALUE...]: make TARGET (check, or coverage,
# which runs check) in DIR; its tests counted, its failures shown.
run_check() {
	dir=$1
	target=$2
	shift 2
	(cd "$dir" && env "$@" make -j2 "$target" >check.out 2>&1)
	rc=$?
	grep -E '^(PASS|FAIL|XPASS|ERROR|SKIP):' "$dir/check.out" | sed "s|^|[$dir] |"
	if [ $rc -ne 0 ]; then
		find "$dir/tests" -name '*.log' -exec grep -l -E '^(not ok|ERROR)' {} + 2>/dev/null |
		    while read -r l; do
			echo "---- $l"
			# The failed points first, each with the diagnostics
			# printed right after it: the tail is mostly the
			# daemons' log of later points.
			# (automake's own PASS:/FAIL: line comes between.)
			awk '/^(not ok|ERROR)/ { print; d = 80; next }
			    /^(PASS|FAIL|XFAIL|XPASS|SKIP):/ { next }
			    d > 0 && /^#/ { print; d--; next } { d = 0 }' "$l"
			echo "---- $l (last 40 lines)"
			tail -40 "$l"
		    done
	fi
	before=$failed
	tally "$dir"
	# make check that failed with no failing test (a test program that
	# did not build) is a failure too, not a silent arm.
	if [ $rc -ne 0 ] && [ $failed -eq $before ]; then
		echo "FAIL: make check in $dir (no failing test: it stopped before or beside the tests)"
		tail -20 "$dir/check.out"
		failed=$((failed + 1))
	fi
}

echo "== build"
step "build (-Werror)" sh scripts/build.sh build
if [ -x build/flmd/flmd ]; then
	echo "== tests"
	run_check build check
	echo "== manual pages"
	step "mandoc -Tlint" sh -c "cd build && make lint-man >/dev/null"
	step "check-man" sh -c "cd build && make check-man"
	echo "== fuzzing (libFuzzer, ASan + UBSan)"
	step "fuzz: the channel library, the HTTP parser and the policy checker, ${FLM_FUZZ_SECS:-30} s each" \
	    sh scripts/fuzz.sh build "${FLM_FUZZ_SECS:-30}"
	echo "== make distcheck"
	step "make distcheck" sh scripts/distcheck.sh build
fi

echo "== packages"
# The .deb from a copy of the tree, lintian on it, and the install cycle
# in a clean Debian 12 root (root only: it prints SKIP: otherwise).
DEBS=$(mktemp -d "${TMPDIR:-/tmp}/flm-debs.XXXXXX")
step "deb build (dpkg-buildpackage)" sh -c "DEB_BUILD_OPTIONS=nocheck sh scripts/build-deb.sh '$DEBS' >/dev/null"
if ls "$DEBS"/flm_*.deb >/dev/null 2>&1; then
	step "lintian: no error, no warning" lintian --fail-on error,warning "$DEBS"/flm_*.deb
	v=$(dpkg-deb -f "$DEBS"/flm_*.deb Version)
	if [ "$(id -u)" = 0 ]; then
		step "deb build of a newer version" sh -c "DEB_BUILD_OPTIONS=nocheck sh scripts/build-deb.sh '$DEBS' '${v%-*}-$((${v##*-} + 1))' >/dev/null"
		step "install cycle (install, upgrade, remove, purge in a clean Debian 12 root)" sh scripts/install-cycle.sh "$DEBS"
	else
		echo "SKIP: install cycle (needs root)"
	fi
fi
rm -rf "$DEBS"
step "rpm: rpmbuild -bb builds an RPM with the units, users and directories" \
    sh scripts/rpm.sh build-rpm

echo "== AddressSanitizer + UBSan"
SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
step "build (sanitizers)" sh scripts/build.sh build-asan \
    CFLAGS="-O1 -g $SAN" LDFLAGS="$SAN"
if [ -x build-asan/flmd/flmd ]; then
	run_check build-asan check \
	    ASAN_OPTIONS=abort_on_error=0:detect_leaks=1:exitcode=23 \
	    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
fi

echo "== coverage (gcov; the sandboxes let gcov's files out, nothing else)"
# docs/TEST_STRATEGY.md section 7.  The bar is the seed's: 80% of each
# process's own lines (flmd, keyd, proxyd, flm, lib).
step "build (coverage)" sh scripts/build.sh build-cov --enable-coverage
if [ -x build-cov/flmd/flmd ]; then
	run_check build-cov coverage
	sed -n '/^process/,/^$/p' build-cov/coverage/summary.txt 2>/dev/null
	step "coverage: every process at 80% of its lines or more" \
	    sh scripts/coverage.sh gate build-cov 80
fi

echo
if [ $skipped -gt 0 ]; then
	echo "$passed passed, $failed failed, $skipped skipped"
else
	echo "$passed passed, $failed failed"
fi
[ $failed -eq 0 ]
