#!/bin/sh
# coverage.sh zero BUILDDIR | report BUILDDIR SRCDIR | gate BUILDDIR MIN:
# make coverage's halves, in a coverage build (./configure
# --enable-coverage).
#
# zero: every .gcda file removed, so that the next run alone counts.
# report: lcov's capture, a zero baseline from the .gcno files added (a
# file no test ran counts, at 0%), FLM's own sources kept (not tests/,
# not the generated migrations and console files, not system headers);
# an HTML report in BUILDDIR/coverage/html; then lines and branches
# per file and per process (flmd, keyd, proxyd, flm, lib) on stdout and
# in BUILDDIR/coverage/summary.txt.  With FLM_COVERAGE_MIN=N it fails
# when a process's lines are under N%.
# gate: that check alone, on the last report's summary.txt (CI).
#
# A source file is counted once, whatever ran it: flm-proxyd's files
# that unit tests link too, lib/ in every program.
set -eu

usage() {
	echo "usage: coverage.sh zero BUILDDIR | report BUILDDIR SRCDIR |" \
	    "gate BUILDDIR MIN" >&2
	exit 2
}
[ $# -ge 2 ] || usage
cmd=$1
b=$(cd "$2" && pwd)
# lcov 1.x spells the switch so; 2.x still takes it.
RC="--rc lcov_branch_coverage=1"

# gate FILE MIN: each process row of summary FILE at MIN% of its lines.
gate() {
	awk -v min="$2" '
	$1 == "process" { on = 1; next }
	on && NF == 5 {
		split($3, hf, "/")
		if (hf[2] == 0 || 100 * hf[1] / hf[2] < min) {
			printf "coverage: %s is at %s of its lines, under %s%%\n",
			    $1, $2, min
			bad = 1
		}
		n++
	}
	END { if (n != 5) { print "coverage: no process table"; bad = 1 }
	    exit bad }' "$1" >&2
}
if [ "$cmd" = gate ]; then
	[ $# -eq 3 ] || usage
	gate "$b/coverage/summary.txt" "$3"
	exit
fi

for t in lcov genhtml; do
	command -v $t >/dev/null 2>&1 || {
		echo "coverage.sh: $t is not installed (apt-get install lcov;" \
		    "scripts/deps.sh --test installs it)" >&2
		exit 1
	}
done
grep -q '^#define FLM_COVERAGE 1' "$b/config.h" 2>/dev/null || {
	echo "coverage.sh: $b is not a coverage build" \
	    "(./configure --enable-coverage)" >&2
	exit 1
}

if [ "$cmd" = zero ]; then
	lcov --quiet --zerocounters --directory "$b"
	exit 0
fi
[ "$cmd" = report ] && [ $# -eq 3 ] || usage
s=$(cd "$3" && pwd)
o=$b/coverage
mkdir -p "$o"

# shellcheck disable=SC2086
{
	lcov --quiet $RC --capture --initial --directory "$b" \
	    --base-directory "$b" --output-file "$o/base.info"
	lcov --quiet $RC --capture --directory "$b" --base-directory "$b" \
	    --output-file "$o/run.info"
	lcov --quiet $RC --add-tracefile "$o/base.info" \
	    --add-tracefile "$o/run.info" --output-file "$o/all.info"
	lcov --quiet $RC --extract "$o/all.info" "$s/flmd/*.c" \
	    "$s/flm-keyd/*.c" "$s/flm-proxyd/*.c" "$s/flm/*.c" "$s/lib/*.c" \
	    --output-file "$o/flm0.info"
	lcov --quiet $RC --remove "$o/flm0.info" '*/migrations_*.c' \
	    '*/console_files.c' --output-file "$o/flm.info"
	genhtml --quiet --branch-coverage --legend --title FLM \
	    --prefix "$s" --output-directory "$o/html" "$o/flm.info"
} 2>"$o/lcov.err" || { cat "$o/lcov.err" >&2; exit 1; }
rm -f "$o/base.info" "$o/run.info" "$o/all.info" "$o/flm0.info"

# The tables, from the tracefile's LF/LH (lines) and BRF/BRH (branches).
awk -v src="$s/" '
function pct(h, f) { return f == 0 ? "-" : sprintf("%.1f%%", 100 * h / f) }
function row(name, lh, lf, bh, bf) {
	return sprintf("%-36s %7s %11s %8s %11s", name, pct(lh, lf),
	    lh "/" lf, pct(bh, bf), bh "/" bf)
}
/^SF:/ {
	f = substr($0, 4)
	if (index(f, src) == 1)
		f = substr(f, length(src) + 1)
	lf = lh = bf = bh = 0
}
/^LF:/ { lf = substr($0, 4) }
/^LH:/ { lh = substr($0, 4) }
/^BRF:/ { bf = substr($0, 5) }
/^BRH:/ { bh = substr($0, 5) }
/^end_of_record/ {
	d = f
	sub("/.*", "", d)
	p = d == "flm-keyd" ? "keyd" : d == "flm-proxyd" ? "proxyd" : d
	n++
	F[n] = f; FLF[n] = lf; FLH[n] = lh; FBF[n] = bf; FBH[n] = bh
	PLF[p] += lf; PLH[p] += lh; PBF[p] += bf; PBH[p] += bh
}
END {
	printf "%-36s %7s %11s %8s %11s\n", "file", "lines", "hit/all",
	    "branches", "hit/all"
	for (i = 1; i <= n; i++)
		print row(F[i], FLH[i], FLF[i], FBH[i], FBF[i]) | "sort"
	close("sort")
	printf "\n%-36s %7s %11s %8s %11s\n", "process", "lines", "hit/all",
	    "branches", "hit/all"
	split("flmd keyd proxyd flm lib", order, " ")
	for (i = 1; i <= 5; i++) {
		p = order[i]
		print row(p, PLH[p] + 0, PLF[p] + 0, PBH[p] + 0, PBF[p] + 0)
	}
}' "$o/flm.info" >"$o/summary.txt"
cat "$o/summary.txt"
echo
echo "HTML report: $o/html/index.html"
[ -z "${FLM_COVERAGE_MIN:-}" ] || gate "$o/summary.txt" "$FLM_COVERAGE_MIN"
