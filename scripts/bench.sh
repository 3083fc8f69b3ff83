#!/bin/sh
# make bench: throughput through flm-proxyd with a cached key against
# the same proxy without key checks (same run, same machine), the cold
# verification time, and what a flood of bad keys costs valid ones.
# Prints a table; targets are ratios, never absolute numbers.
#   usage: bench.sh BUILDDIR   (FLM_BENCH_SECS=N per round, default 4)
set -eu
B=$(cd "${1:-build}" && pwd)
SECS=${FLM_BENCH_SECS:-4}
CONC=${FLM_BENCH_CONC:-32}
ROUNDS=${FLM_BENCH_ROUNDS:-3}

if ! command -v wrk >/dev/null 2>&1; then
	echo "bench: installing wrk"
	if [ "$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq wrk >/dev/null ||
	    { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	    $SUDO apt-get install -y -qq wrk >/dev/null; }
fi

STATE=$(mktemp -d "${TMPDIR:-/tmp}/flm-bench.XXXXXX")
FLM="$B/flm/flm -D $STATE"
pids=
cleanup() {
	for p in $pids; do kill "$p" 2>/dev/null || true; done
	for p in $pids; do wait "$p" 2>/dev/null || true; done
	rm -rf "$STATE"
}
trap cleanup EXIT INT TERM

"$B/tests/mock-engine/flm-mock-engine" --listen 127.0.0.1:0 --flavor ollama \
    --port-file "$STATE/mock.port" >/dev/null 2>&1 &
pids="$!"
"$B/flmd/flmd" -d -D "$STATE" >"$STATE/flmd.log" 2>&1 &
pids="$! $pids"
i=0
until [ -s "$STATE/mock.port" ] && $FLM status --json >/dev/null 2>&1; do
	i=$((i + 1)); [ $i -lt 200 ] || { echo "bench: no suite" >&2; exit 1; }
	sleep 0.05
done
MOCK=http://127.0.0.1:$(cat "$STATE/mock.port")
# Every engine at the mock: the same upstream work in both arms.
for e in ollama lmstudio vllm llamacpp; do
	$FLM config set engines.$e.url "$MOCK" >/dev/null
done
jport() { sed -n 's/.*"port": *\([0-9]*\).*/\1/p'; }
AUTH_PORT=$($FLM proxy start --port 0 --json | jport)
OPEN_PORT=$($FLM proxy start --port 0 --bench-no-auth --json | jport)
KEY=$($FLM api-keys create --label bench --json |
    sed -n 's/.*"key": *"\([^"]*\)".*/\1/p')
# Well formed, wrong secret: it reaches keyd until throttled.
case $KEY in *A) BAD=${KEY%?}B ;; *) BAD=${KEY%?}A ;; esac
sleep 0.5

# rps URL [wrk args]: requests per second over SECS seconds.
rps() {
	url=$1
	shift
	wrk -t 2 -c "$CONC" -d "${SECS}s" "$@" "$url" 2>/dev/null |
	    awk '/^Requests\/sec:/ { print int($2) }'
}
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

A=http://127.0.0.1:$AUTH_PORT/v1/models
O=http://127.0.0.1:$OPEN_PORT/v1/models
curl -s -o /dev/null -H "Authorization: Bearer $KEY" "$A"	# warm the cache
: >"$STATE/auth" && : >"$STATE/open"
r=0
while [ $r -lt "$ROUNDS" ]; do		# interleaved: drift hits both arms
	rps "$O" >>"$STATE/open"
	rps "$A" -H "Authorization: Bearer $KEY" >>"$STATE/auth"
	r=$((r + 1))
done
open=$(median <"$STATE/open")
auth=$(median <"$STATE/auth")

# Cold verification: the first request of a fresh key (Argon2id in keyd)
# against a warm one, median of five.
: >"$STATE/cold"
for n in 1 2 3 4 5; do
	k=$($FLM api-keys create --label cold$n --json |
	    sed -n 's/.*"key": *"\([^"]*\)".*/\1/p')
	c=$(curl -s -o /dev/null -w '%{time_total}' -H "Authorization: Bearer $k" "$A")
	w=$(curl -s -o /dev/null -w '%{time_total}' -H "Authorization: Bearer $k" "$A")
	echo "$c $w" | awk '{ printf "%d\n", ($1 - $2) * 1000000 }' >>"$STATE/cold"
done
cold=$(median <"$STATE/cold")

# A flood of bad keys next to valid traffic.
rps "$A" -H "Authorization: Bearer $BAD" >"$STATE/bad" &
bp=$!
under=$(rps "$A" -H "Authorization: Bearer $KEY")
wait $bp
bad=$(cat "$STATE/bad")

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b ? a / b : 0 }'; }
r1=$(ratio "$auth" "$open")
r2=$(ratio "$under" "$auth")
echo
echo "FLM key benchmark ($ROUNDS x ${SECS}s rounds, $CONC connections, GET /v1/models)"
printf '%-52s %12s\n' "measure" "value"
printf '%-52s %12s\n' "proxy, key checks off (--bench-no-auth) req/s" "$open"
printf '%-52s %12s\n' "proxy, cached key req/s" "$auth"
printf '%-52s %12s  %s\n' "ratio cached/no-auth (target >= 0.97)" "$r1" \
    "$(awk -v r="$r1" 'BEGIN { print (r >= 0.97) ? "ok" : "BELOW TARGET" }')"
printf '%-52s %12s\n' "cold verification (first use, Argon2id) us" "$cold"
printf '%-52s %12s\n' "bad-key requests absorbed req/s" "$bad"
printf '%-52s %12s\n' "valid-key req/s during the bad-key flood" "$under"
printf '%-52s %12s\n' "ratio valid under flood / valid alone" "$r2"
