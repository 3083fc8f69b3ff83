#!/bin/sh
# README command (1): install what is missing, build, and run the FLM
# suite in user mode in a temporary state directory, then show it at
# work.  Set FLM_QUICKSTART_KEEP=1 to leave it running afterwards.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

sh scripts/deps.sh
echo "quickstart: building (out of tree, in build/)"
sh scripts/build.sh build
B=$top/build

STATE=$(mktemp -d "${TMPDIR:-/tmp}/flm-quickstart.XXXXXX")
FLM="$B/flm/flm -D $STATE"
pids=
cleanup() {
	[ "${FLM_QUICKSTART_KEEP:-0}" = 1 ] && return
	for p in $pids; do kill "$p" 2>/dev/null || true; done
	for p in $pids; do wait "$p" 2>/dev/null || true; done
	rm -rf "$STATE"
}
trap cleanup EXIT INT TERM

echo "quickstart: starting flmd in user mode, state in $STATE"
"$B/flmd/flmd" -d -D "$STATE" >"$STATE/flmd.log" 2>&1 &
pids="$!"
i=0
until $FLM status --json >/dev/null 2>&1; do
	i=$((i + 1))
	if [ $i -gt 100 ]; then
		echo "quickstart: flmd did not come up:" >&2
		cat "$STATE/flmd.log" >&2
		exit 1
	fi
	sleep 0.05
done

echo
echo "\$ flm status"
$FLM status
echo
if [ "${FLM_QUICKSTART_KEEP:-0}" = 1 ]; then
	echo "quickstart: left running; stop it with: kill $pids"
	echo "quickstart: talk to it with: $FLM status"
fi
