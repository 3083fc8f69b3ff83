#!/bin/sh
# build-deb.sh OUTDIR [VERSION]: build flm_*.deb with dpkg-buildpackage
# from a copy of this tree (its files under git, or all of it outside a
# clone, less build directories), so that nothing lands beside the tree.
# VERSION (say 0.1.0-2) adds a changelog entry first: a newer build for
# scripts/install-cycle.sh.  DEB_BUILD_OPTIONS is passed on (nocheck).
set -eu
[ $# -ge 1 ] || { echo "usage: build-deb.sh OUTDIR [VERSION]" >&2; exit 2; }
top=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$1"
out=$(cd "$1" && pwd)
ver=${2:-}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/flm-deb.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/src"
if git -C "$top" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	(cd "$top" && git ls-files -co --exclude-standard -z |
	    grep -zv '^build' | xargs -0 tar -cf -) | tar -xf - -C "$tmp/src"
else
	(cd "$top" && tar -cf - --exclude='./build*' --exclude=./_build .) |
	    tar -xf - -C "$tmp/src"
fi
if [ -n "$ver" ]; then
	cl=$tmp/src/debian/changelog
	{
		printf 'flm (%s) unstable; urgency=medium\n\n' "$ver"
		printf '  * Rebuilt as a newer version to test an upgrade.\n\n'
		printf ' -- %s  %s\n\n' "$(sed -n 's/^ -- \(.*>\)  .*/\1/p' "$cl" |
		    head -n 1)" "$(date -R)"
		cat "$cl"
	} >"$cl.new"
	mv "$cl.new" "$cl"
fi
cd "$tmp/src"
if ! dpkg-buildpackage -us -uc -b >"$tmp/build.log" 2>&1; then
	tail -40 "$tmp/build.log" >&2
	exit 1
fi
cp "$tmp"/flm_*.deb "$out/"
ls "$out"/flm_*.deb
