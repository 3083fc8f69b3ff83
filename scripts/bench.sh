#!/bin/sh
# make bench: FLM against the mock engine alone and against nginx in
# front of the same mock, in one run on one machine (issue 6):
#  - POST /v1/chat/completions (non-streaming, a small JSON body) at
#    FLM_BENCH_CONC connections (wrk -t2) and at one (wrk -t1 -c1):
#    req/s, p50 and p99 from wrk's Lua done(), in microseconds, to the
#    mock directly, through nginx proxy_pass (upstream keep-alive), and
#    through flm-proxyd with a cached key, routing by flm://ENGINE/MODEL
#    and logging on; also the same proxy without key checks, the cold
#    verification time and what a flood of bad keys costs valid ones;
#  - FLM_BENCH_STREAMS SSE streams held open at once through flm-proxyd
#    and through nginx, and the resident memory each stream costs.
#  - over TLS (issue 13), nginx and flm-proxyd (a dev-selfsigned handle,
#    its key in flm-keyd) each with an ECDSA P-256 certificate before one
#    static engine (a second nginx answering the mock's JSON from
#    memory): keep-alive throughput of the same POST (wrk over https,
#    c=FLM_BENCH_CONC) and full handshakes a second (tests/bench/tls-hs,
#    FLM_BENCH_HS_CONC connections at once, a new connection, session
#    and GET /healthz each) with the server CPU time each one took.
#  - issue 15: before that static engine (nginx return 200, or files
#    for a 500-chunk SSE answer and a 1 MiB embeddings answer), direct,
#    nginx proxy_pass and flm for four shapes (small chat body, a
#    190 KB long-context body, the stream, the embeddings) at
#    FLM_BENCH_CONC, the chat bodies at one connection too (added p50
#    and p99); flm-keyd's CPU per 1,000 audit records; one worker and
#    FLM_BENCH_WORKERS (proxy.workers against nginx worker_processes)
#    and the scaling between them.
#  - issue 18: Anthropic's Messages, Ollama's /api/chat and OpenAI's
#    Responses (small and long bodies) through flm before the same
#    static engine, interleaved with chat completions of the same size:
#    what each front-end's translation adds to a request's CPU.
# Prints one table and a targets block.  Exits 1 if an arm could not be
# measured or saw errors (the table says which); targets are reported,
# never enforced.  All traffic goes to 127.0.0.1.
#   usage: bench.sh BUILDDIR
#   FLM_BENCH_SECS (4) per round, FLM_BENCH_ROUNDS (3, best of),
#   FLM_BENCH_CONC (32), FLM_BENCH_STREAMS (2000; up to 10000 and more
#   if ulimit -n allows), FLM_BENCH_HS_CONC (16, handshakes at once), FLM_BENCH_CHUNK_DELAY_MS (1000, between the
#   chunks of a held stream), FLM_BENCH_NGINX_LOG (file or off: nginx's
#   access_log; flm logs requests too, so file is the fair default),
#   FLM_BENCH_KEEP (set: keep the state directory and its logs),
#   FLM_BENCH_WORKERS (the CPUs: the workers rows; 1 to 64).
set -eu
B=$(cd "${1:-build}" && pwd)
SRC=$(cd "$(dirname "$0")/.." && pwd)
SECS=${FLM_BENCH_SECS:-4}
CONC=${FLM_BENCH_CONC:-32}
ROUNDS=${FLM_BENCH_ROUNDS:-3}
STREAMS=${FLM_BENCH_STREAMS:-2000}
CHUNK_MS=${FLM_BENCH_CHUNK_DELAY_MS:-1000}
HS_CONC=${FLM_BENCH_HS_CONC:-16}
WORKERS=${FLM_BENCH_WORKERS:-$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 2)}
NGINX_LOG=${FLM_BENCH_NGINX_LOG:-file}
for v in "$SECS" "$CONC" "$ROUNDS" "$STREAMS" "$CHUNK_MS" "$HS_CONC" \
    "$WORKERS"; do
	case $v in '' | *[!0-9]* | 0) echo "bench: FLM_BENCH_* must be" \
	    "positive integers (got '$v')" >&2; exit 2 ;; esac
done
[ "$WORKERS" -le 64 ] || { echo "bench: FLM_BENCH_WORKERS is 1 to 64" \
    "(proxy.workers' range)" >&2; exit 2; }
case $NGINX_LOG in file | off) ;; *) echo "bench: FLM_BENCH_NGINX_LOG" \
    "is file or off" >&2; exit 2 ;; esac
HOLD=$B/tests/bench/sse-hold
MOCKBIN=$B/tests/mock-engine/flm-mock-engine
TLSHS=$B/tests/bench/tls-hs
for f in "$HOLD" "$TLSHS" "$MOCKBIN" "$B/flmd/flmd" "$B/flm/flm"; do
	[ -x "$f" ] || { echo "bench: $f is missing (make bench builds it)" >&2
	    exit 2; }
done

# ---- tools ------------------------------------------------------------
if [ "$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi
# need COMMAND PACKAGE: install PACKAGE with apt-get if COMMAND is missing.
need() {
	command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] && return 0
	echo "bench: installing $2"
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq \
	    --no-install-recommends "$2" >/dev/null 2>&1 ||
	    { $SUDO apt-get update -qq >/dev/null 2>&1 &&
	    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq \
	    --no-install-recommends "$2" >/dev/null; } ||
	    { echo "bench: cannot install $2 (apt-get)" >&2; exit 1; }
}
need wrk wrk
need nginx nginx
need curl curl
need openssl openssl
need jq jq
need sqlite3 sqlite3
NGINX=$(command -v nginx 2>/dev/null || echo /usr/sbin/nginx)

# ---- descriptors: a held stream is two sockets in a proxy ------------------
want=$((2 * STREAMS + 128))
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$want" ]; then
	ulimit -n "$want" 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null ||
	    true
fi
FDS=$(ulimit -n)
[ "$FDS" = unlimited ] && FDS=1048576
NOTE_N=
if [ "$FDS" -lt "$want" ]; then
	n=$(((FDS - 128) / 2))
	[ "$n" -ge 1 ] || { echo "bench: ulimit -n is $FDS: too few" \
	    "descriptors for any stream" >&2; exit 1; }
	NOTE_N=" (FLM_BENCH_STREAMS=$STREAMS capped by ulimit -n $FDS)"
	STREAMS=$n
fi

# ---- state and cleanup ------------------------------------------------------
STATE=$(mktemp -d "${TMPDIR:-/tmp}/flm-bench.XXXXXX")
FLM="$B/flm/flm -D $STATE"
pids=
STEP="starting"
SAID=
cleanup() {
	rc=$?
	# Never silently: a failed command under set -e says where.
	[ $rc = 0 ] || [ -n "$SAID" ] ||
	    echo "bench: failed (status $rc) while $STEP" >&2
	for p in $pids; do kill "$p" 2>/dev/null || true; done
	for p in $pids; do wait "$p" 2>/dev/null || true; done
	if [ -n "${FLM_BENCH_KEEP:-}" ]; then
		echo "bench: state kept in $STATE" >&2
	else
		rm -rf "$STATE"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
FAIL=
fail() { echo "bench: $*" >&2; FAIL="$FAIL
  $*"; }
die() {
	SAID=1
	echo "bench: $*" >&2
	for f in flmd.log nginx-error.log; do
		[ -s "$STATE/$f" ] && { echo "--- last lines of $f" >&2
		    tail -15 "$STATE/$f" >&2; }
	done
	exit 1
}
# waitfor SECONDS WHAT COMMAND...: poll every 50 ms.
waitfor() {
	w_n=$(($1 * 20))
	w_what=$2
	shift 2
	until "$@" >/dev/null 2>&1; do
		w_n=$((w_n - 1))
		[ "$w_n" -gt 0 ] || die "timed out waiting for $w_what"
		sleep 0.05
	done
}
# A random port below the ephemeral range, free when nginx binds it.
randport() { echo $((20000 + $(od -An -N2 -tu2 /dev/urandom) % 12000)); }

# ---- the mock engines: one for plain answers, one for held streams ----------
STEP="starting the mock engines"
MODEL=meta-llama/Llama-3.2-1B-Instruct
"$MOCKBIN" --flavor vllm --listen 127.0.0.1:0 \
    --port-file "$STATE/mock.port" >"$STATE/mock.log" 2>&1 &
pids="$!"
# Streams last five minutes: longer than any hold, and the mock builds
# each answer whole, so no more chunks than that.
CHUNKS=$((300000 / CHUNK_MS))
[ $CHUNKS -ge 100 ] || CHUNKS=100
[ $CHUNKS -le 100000 ] || CHUNKS=100000
"$MOCKBIN" --flavor vllm --listen 127.0.0.1:0 --chunks $CHUNKS \
    --chunk-delay-ms "$CHUNK_MS" --port-file "$STATE/ssemock.port" \
    >"$STATE/ssemock.log" 2>&1 &
pids="$! $pids"
waitfor 10 "the mock engines" test -s "$STATE/mock.port" -a \
    -s "$STATE/ssemock.port"
MOCK_PORT=$(cat "$STATE/mock.port")
SSEMOCK_PORT=$(cat "$STATE/ssemock.port")

# ---- nginx: proxy_pass with keep-alive upstreams, one worker ------------------
STEP="starting nginx"
mkdir -p "$STATE/nginx"
if [ "$NGINX_LOG" = file ]; then
	ALOG="access_log $STATE/nginx-access.log;"
else
	ALOG="access_log off;"
fi
# As root, workers would become nobody and could not enter the 0700
# state directory: they keep the invoking user instead.
if [ "$(id -u)" = 0 ]; then NUSER="user root root;"; else NUSER=; fi
nginx_conf() {
	cat >"$STATE/nginx.conf" <<EOF
$NUSER
daemon off;
master_process on;
worker_processes 1;
worker_rlimit_nofile $FDS;
pid $STATE/nginx.pid;
error_log $STATE/nginx-error.log warn;
# Headroom: with less than 1/16 free, nginx closes connections it
# deems reusable, such as those that have not sent their request yet.
events { worker_connections $((2 * STREAMS + STREAMS / 4 + 512)); }
http {
	$ALOG
	client_body_temp_path $STATE/nginx/body;
	proxy_temp_path $STATE/nginx/proxy;
	fastcgi_temp_path $STATE/nginx/fastcgi;
	uwsgi_temp_path $STATE/nginx/uwsgi;
	scgi_temp_path $STATE/nginx/scgi;
	keepalive_requests 1000000;
	upstream mock { server 127.0.0.1:$MOCK_PORT; keepalive 64;
	    keepalive_requests 1000000; }
	upstream ssemock { server 127.0.0.1:$SSEMOCK_PORT; keepalive 64;
	    keepalive_requests 1000000; }
	# Streams pass as they come (what anyone serving SSE sets).
	proxy_buffering off;
	proxy_http_version 1.1;
	proxy_set_header Connection "";
	server { listen 127.0.0.1:$1; location / { proxy_pass http://mock; } }
	server { listen 127.0.0.1:$2;
	    location / { proxy_pass http://ssemock; } }
}
EOF
}
NGINX_PORT=
try=0
while [ -z "$NGINX_PORT" ]; do
	try=$((try + 1))
	[ $try -le 8 ] || die "nginx would not start (see above)"
	p1=$(randport)
	p2=$(randport)
	[ "$p1" != "$p2" ] || continue
	nginx_conf "$p1" "$p2"
	: >"$STATE/nginx-error.log"
	"$NGINX" -t -q -e "$STATE/nginx-error.log" -p "$STATE/nginx" \
	    -c "$STATE/nginx.conf" >"$STATE/nginx-t.log" 2>&1 ||
	    { cat "$STATE/nginx-t.log" "$STATE/nginx-error.log" >&2
	    die "nginx -t rejects $STATE/nginx.conf"; }
	"$NGINX" -e "$STATE/nginx-error.log" -p "$STATE/nginx" \
	    -c "$STATE/nginx.conf" >>"$STATE/nginx-t.log" 2>&1 &
	np=$!
	ok=0
	i=0
	while [ $i -lt 100 ] && kill -0 $np 2>/dev/null; do
		if curl -s -o /dev/null "http://127.0.0.1:$p1/v1/models" &&
		    curl -s -o /dev/null "http://127.0.0.1:$p2/v1/models"; then
			ok=1
			break
		fi
		i=$((i + 1))
		sleep 0.05
	done
	if [ $ok = 1 ]; then
		pids="$np $pids"
		NGINX_PID=$np
		NGINX_PORT=$p1
		NGINX_SSE_PORT=$p2
	else
		kill $np 2>/dev/null || true
		wait $np 2>/dev/null || true
		grep -q "in use" "$STATE/nginx-error.log" ||
		    { cat "$STATE/nginx-error.log" >&2; die "nginx failed"; }
	fi
done
NGINX_VER=$("$NGINX" -v 2>&1 | sed 's|.*nginx/||')

# ---- the suite, user mode ---------------------------------------------------------
STEP="starting the suite"
"$B/flmd/flmd" -d -D "$STATE" >"$STATE/flmd.log" 2>&1 &
pids="$! $pids"
waitfor 10 "flmd" $FLM status --json
# Every engine named explicitly: no probe leaves 127.0.0.1.
for e in ollama lmstudio vllm llamacpp; do
	$FLM config set engines.$e.url "http://127.0.0.1:$MOCK_PORT" >/dev/null
done
$FLM config set engines.sse.kind vllm >/dev/null
$FLM config set engines.sse.url "http://127.0.0.1:$SSEMOCK_PORT" >/dev/null
maxc=$((STREAMS + CONC + 256))
[ $maxc -ge 4096 ] || maxc=4096
$FLM config set proxy.max_connections $maxc >/dev/null ||
    fail "flm config set proxy.max_connections $maxc refused"
# One worker until the workers rows (issue 15): every arm before them
# compares one flm-proxyd with one nginx worker.  Without the setting
# (before proxy.workers) there is one flm-proxyd anyway.
if $FLM config set proxy.workers 1 >"$STATE/workers.out" 2>&1; then
	WORKERS_OK=1
else
	WORKERS_OK=0
fi
jport() { sed -n 's/.*"port": *\([0-9]*\).*/\1/p'; }
jkey() { sed -n 's/.*"key": *"\([^"]*\)".*/\1/p'; }
AUTH_PORT=$($FLM proxy start --port 0 --json | jport)
OPEN_PORT=$($FLM proxy start --port 0 --bench-no-auth --json | jport)
KEY=$($FLM api-keys create --label bench --json | jkey)
[ -n "$AUTH_PORT" ] && [ -n "$OPEN_PORT" ] && [ -n "$KEY" ] ||
    die "flm proxy start / api-keys create gave no port or key"
# Well formed, wrong secret: it reaches keyd until throttled.
case $KEY in *A) BAD=${KEY%?}B ;; *) BAD=${KEY%?}A ;; esac

proxyd_pid() {
	if command -v jq >/dev/null 2>&1; then
		$FLM status --json | jq -r '.processes[] |
		    select(.name=="flm-proxyd") | .pid'
	else
		$FLM status --json | awk '/"name": *"flm-proxyd"/ { f = 1 }
		    f && /"pid"/ { gsub(/[^0-9]/, ""); print; exit }'
	fi
}

# ---- the request ------------------------------------------------------------------
STEP="checking every arm"
body() {
	printf '{"model":"%s","messages":[{"role":"user","content":"Say hello to the benchmark."}],"max_tokens":16%s}' \
	    "$1" "${2:-}"
}
# mklua FILE MODEL [KEY]: a wrk script for the request, whose done()
# prints "flm-bench RPS P50 P99 REQUESTS SOCKET_ERRORS NON_2XX" (µs).
mklua() {
	cat >"$1" <<EOF
wrk.method = "POST"
wrk.body = '$(body "$2")'
wrk.headers["Content-Type"] = "application/json"
EOF
	[ -z "${3:-}" ] || echo "wrk.headers[\"Authorization\"] = \"Bearer $3\"" >>"$1"
	cat >>"$1" <<'EOF'
done = function(summary, latency, requests)
	local e = summary.errors
	io.write(string.format("flm-bench %.0f %.0f %.0f %d %d %d\n",
	    summary.requests / (summary.duration / 1e6),
	    latency:percentile(50), latency:percentile(99),
	    summary.requests, e.connect + e.read + e.write + e.timeout,
	    e.status))
end
EOF
}
BODYLEN=$(body "$MODEL" | wc -c | tr -d ' ')
mklua "$STATE/direct.lua" "$MODEL"
mklua "$STATE/nginx.lua" "$MODEL"
mklua "$STATE/flm.lua" "flm://vllm/$MODEL" "$KEY"
mklua "$STATE/open.lua" "flm://vllm/$MODEL"
mklua "$STATE/bad.lua" "flm://vllm/$MODEL" "$BAD"
CHAT=/v1/chat/completions
URL_direct=http://127.0.0.1:$MOCK_PORT$CHAT
URL_nginx=http://127.0.0.1:$NGINX_PORT$CHAT
URL_flm=http://127.0.0.1:$AUTH_PORT$CHAT
URL_open=http://127.0.0.1:$OPEN_PORT$CHAT

# check ARM MODEL [KEY]: one request by curl, 200 and a chat.completion,
# or the arm is marked down with the reason.
DOWN=
check() {
	c_arm=$1
	c_model=$2
	eval "c_url=\$URL_$c_arm"
	if [ -n "${3:-}" ]; then set -- -H "Authorization: Bearer $3"; else set --; fi
	c_code=$(curl -s -m 10 -o "$STATE/check.$c_arm" -w '%{http_code}' \
	    -H 'Content-Type: application/json' "$@" \
	    --data-binary "$(body "$c_model")" "$c_url") ||
	    c_code="$c_code (curl exit $?)"
	if [ "$c_code" = 200 ] && grep -q '"chat.completion"' "$STATE/check.$c_arm"
	then
		return 0
	fi
	DOWN="$DOWN $c_arm"
	fail "arm $c_arm does not answer POST $CHAT: HTTP $c_code:" \
	    "$(head -c 160 "$STATE/check.$c_arm" 2>/dev/null | tr '\n' ' ')"
}
down() { case " $DOWN " in *" $1 "*) return 0 ;; esac; return 1; }
# The first probe may still run: the proxy waits for it, curl waits 10 s.
check direct "$MODEL"
check nginx "$MODEL"
check flm "flm://vllm/$MODEL" "$KEY"
check open "flm://vllm/$MODEL"

# ---- throughput and latency -----------------------------------------------------------
STEP="measuring throughput and latency"
# run ARM TAG THREADS CONNS [LUA]: one wrk round; its line to STATE/res.ARM.TAG.
run() {
	down "$1" && return 0
	r_lua=$STATE/${5:-$1}.lua
	eval "r_url=\$URL_$1"
	wrk -t "$3" -c "$4" -d "${SECS}s" -s "$r_lua" "$r_url" \
	    >"$STATE/wrk.out" 2>&1 || true
	r_line=$(sed -n 's/^flm-bench //p' "$STATE/wrk.out")
	if [ -z "$r_line" ]; then
		cat "$STATE/wrk.out" >&2
		die "wrk gave no result for $1 at c=$4 ($r_url)"
	fi
	echo "$r_line" >>"$STATE/res.$1.$2"
}
r=0
while [ $r -lt "$ROUNDS" ]; do		# interleaved: drift hits every arm
	for a in direct nginx flm open; do run $a c 2 "$CONC"; done
	for a in direct nginx flm; do run $a c1 1 1; done
	r=$((r + 1))
done
# best ARM TAG: at many connections the round with the most req/s, at
# one the round with the lowest p50: "RPS P50 P99 REQS SOCKERR NON2XX".
best() {
	[ -s "$STATE/res.$1.$2" ] || { echo "- - - - - - -"; return; }
	case $2 in *c1) k=-k2,2n ;; *) k=-k1,1nr ;; esac
	sort $k "$STATE/res.$1.$2" | head -1
}
# The errors of every round count, not only the best one's.
errs() {
	[ -s "$STATE/res.$1.$2" ] || { echo -; return; }
	awk '{ n += $5 + $6 } END { print n }' "$STATE/res.$1.$2"
}
for a in direct nginx flm open; do
	for t in c c1; do
		[ $a = open ] && [ $t = c1 ] && continue
		e=$(errs $a $t)
		[ "$e" = - ] || [ "$e" = 0 ] ||
		    fail "arm $a at c=$([ $t = c ] && echo "$CONC" || echo 1):" \
		    "$e socket errors or non-2xx answers (every round)"
	done
done
field() { best "$1" "$2" | awk -v f="$3" '{ print $f }'; }

# ---- cold verification and the bad-key flood (flm only) -------------------------------
STEP="measuring cold verification and the bad-key flood"
cold=- bad=- under=-
if ! down flm; then
	: >"$STATE/cold"
	for n in 1 2 3 4 5; do
		k=$($FLM api-keys create --label cold$n --json | jkey)
		set -- -s -o /dev/null -w '%{http_code} %{time_total}\n' \
		    -H 'Content-Type: application/json' \
		    -H "Authorization: Bearer $k" \
		    --data-binary "$(body "flm://vllm/$MODEL")" "$URL_flm"
		c=$(curl "$@") || c="${c:-000} 0"
		w=$(curl "$@") || w="${w:-000} 0"
		echo "$c $w" | awk '$1 != 200 || $3 != 200 { print "x"; next }
		    { printf "%d\n", ($2 - $4) * 1000000 }' >>"$STATE/cold"
	done
	if grep -q x "$STATE/cold"; then
		fail "cold verification: a fresh key was refused"
	else
		cold=$(sort -n "$STATE/cold" | sed -n 3p)
	fi
	wrk -t 1 -c "$CONC" -d "${SECS}s" -s "$STATE/bad.lua" "$URL_flm" \
	    >"$STATE/bad.out" 2>&1 &
	bp=$!
	wrk -t 1 -c "$CONC" -d "${SECS}s" -s "$STATE/flm.lua" "$URL_flm" \
	    >"$STATE/under.out" 2>&1 || true
	wait $bp || true
	bad=$(awk '/^flm-bench/ { print $2 }' "$STATE/bad.out")
	under=$(awk '/^flm-bench/ { print $2; if ($6 + $7) print "x" }' \
	    "$STATE/under.out")
	case $under in *x* | '') fail "valid keys failed during the bad-key flood"
	    under=${under%%[!0-9]*} ;; esac
	[ -n "$bad" ] || { fail "no result for the bad-key flood"; bad=-; }
	[ -n "$under" ] || under=-
fi

# ---- SSE: N streams held open ----------------------------------------------------------
STEP="holding SSE streams"
rss() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null; }
# The largest of three samples, 300 ms apart.
rss3() {
	m=0
	for s in 1 2 3; do
		v=$(rss "$1")
		[ -n "$v" ] || { echo; return; }
		[ "$v" -gt $m ] && m=$v
		sleep 0.3
	done
	echo $m
}
# hold ARM PORT PID MODEL [KEY]: sets SSE_ready_ARM, SSE_idle_ARM,
# SSE_held_ARM (KiB) and SSE_per_ARM (KiB per stream).
hold() {
	eval "SSE_ready_$1=- SSE_idle_$1=- SSE_held_$1=- SSE_per_$1=-"
	[ -n "$3" ] && [ -r "/proc/$3/status" ] ||
	    { fail "SSE $1: no process to measure (pid '$3')"; return 0; }
	h_arm=$1
	h_port=$2
	h_pid=$3
	h_idle=$(rss3 "$h_pid")
	h_body=$(body "$4" ',"stream":true')
	if [ -n "${5:-}" ]; then set -- -H "Authorization: Bearer $5"; else set --; fi
	"$HOLD" -p "$h_port" -n "$STREAMS" -t 60 -c 256 -b "$h_body" "$@" \
	    >"$STATE/hold.$h_arm" 2>"$STATE/hold.$h_arm.err" &
	h_cp=$!
	i=0
	until grep -qs "^ready" "$STATE/hold.$h_arm"; do
		kill -0 $h_cp 2>/dev/null || break
		i=$((i + 1))
		[ $i -lt 1500 ] || break
		sleep 0.05
	done
	h_ready=$(awk '/^ready/ { print $2 }' "$STATE/hold.$h_arm")
	if [ -n "$h_ready" ]; then
		sleep 1		# a chunk a second reaches every stream
		h_held=$(rss3 "$h_pid")
	fi
	kill -TERM $h_cp 2>/dev/null || true
	wait $h_cp || true
	h_kept=$(awk '/^held/ { print $2 }' "$STATE/hold.$h_arm")
	if [ -z "$h_ready" ] || [ "$h_ready" != "$STREAMS" ] ||
	    [ "${h_kept:-0}" != "$STREAMS" ]; then
		fail "SSE $h_arm: $(head -1 "$STATE/hold.$h_arm" 2>/dev/null)," \
		    "$(grep '^held' "$STATE/hold.$h_arm" 2>/dev/null) of" \
		    "$STREAMS; $(head -c 300 "$STATE/hold.$h_arm.err")"
	fi
	[ -n "$h_ready" ] || return 0
	eval "SSE_ready_$h_arm=$h_ready SSE_idle_$h_arm=$h_idle"
	[ -n "$h_held" ] || { fail "SSE $h_arm: process $h_pid went away"
	    return 0; }
	eval "SSE_held_$h_arm=$h_held"
	eval "SSE_per_$h_arm=$(awk -v a="$h_held" -v b="$h_idle" -v n="$h_ready" \
	    'BEGIN { if (n > 0) printf "%.1f", (a - b) / n; else print "-" }')"
	sleep 1		# let the streams go before the next arm
}
if down flm; then
	eval "SSE_ready_flm=- SSE_idle_flm=- SSE_held_flm=- SSE_per_flm=-"
else
	PXPID=$(proxyd_pid)
	hold flm "$AUTH_PORT" "$PXPID" "flm://sse/$MODEL" "$KEY"
	[ "$(proxyd_pid)" = "$PXPID" ] ||
	    fail "SSE flm: flm-proxyd restarted during the hold (pid $PXPID)"
fi
NGX_WORKER=$(ps -o pid= --ppid "$NGINX_PID" 2>/dev/null | head -1 | tr -d ' ')
hold nginx "$NGINX_SSE_PORT" "$NGX_WORKER" "$MODEL"

# ---- TLS: nginx and flm-proxyd over TLS before one static engine --------------
# The engine is a second nginx answering the mock's own JSON from memory
# (return 200), so neither front waits on an engine: what is measured is
# each proxy and its TLS.  Both fronts have an ECDSA P-256 certificate;
# nginx's key is in its worker's memory, flm's in flm-keyd, which signs
# each full handshake for flm-proxyd (a round trip per handshake).
STEP="starting the TLS arms"
# nginx_aux NAME SCHEME: another nginx (AUX_WORKERS workers, default 1)
# with the servers that aux_NAME PORT prints, on a random port (left in
# AUX_PORT; aux_NAME may listen on PORT + 1 too), up when
# SCHEME://127.0.0.1:PORT/health answers.
nginx_aux() {
	a_try=0
	mkdir -p "$STATE/nginx-$1"
	while :; do
		a_try=$((a_try + 1))
		[ $a_try -le 8 ] || die "nginx ($1) would not start (see above)"
		a_p=$(randport)
		cat >"$STATE/nginx-$1.conf" <<EOF
$NUSER
daemon off;
master_process on;
worker_processes ${AUX_WORKERS:-1};
worker_rlimit_nofile $FDS;
pid $STATE/nginx-$1.pid;
error_log $STATE/nginx-$1-error.log warn;
events { worker_connections 4096; }
http {
	client_body_temp_path $STATE/nginx-$1/body;
	proxy_temp_path $STATE/nginx-$1/proxy;
	fastcgi_temp_path $STATE/nginx-$1/fastcgi;
	uwsgi_temp_path $STATE/nginx-$1/uwsgi;
	scgi_temp_path $STATE/nginx-$1/scgi;
	keepalive_requests 1000000;
	default_type application/json;
$(aux_$1 "$a_p")
}
EOF
		: >"$STATE/nginx-$1-error.log"
		"$NGINX" -t -q -e "$STATE/nginx-$1-error.log" -p "$STATE/nginx-$1" \
		    -c "$STATE/nginx-$1.conf" >"$STATE/nginx-$1-t.log" 2>&1 ||
		    { cat "$STATE/nginx-$1-t.log" >&2
		    die "nginx -t rejects $STATE/nginx-$1.conf"; }
		"$NGINX" -e "$STATE/nginx-$1-error.log" -p "$STATE/nginx-$1" \
		    -c "$STATE/nginx-$1.conf" >>"$STATE/nginx-$1-t.log" 2>&1 &
		a_np=$!
		a_i=0
		while [ $a_i -lt 100 ] && kill -0 $a_np 2>/dev/null; do
			curl -sk -o /dev/null "$2://127.0.0.1:$a_p/health" && break
			a_i=$((a_i + 1))
			sleep 0.05
		done
		if [ $a_i -lt 100 ] && kill -0 $a_np 2>/dev/null; then
			pids="$a_np $pids"
			AUX_PORT=$a_p
			return 0
		fi
		kill $a_np 2>/dev/null || true
		wait $a_np 2>/dev/null || true
		grep -q "in use" "$STATE/nginx-$1-error.log" ||
		    { cat "$STATE/nginx-$1-error.log" >&2; die "nginx ($1) failed"; }
	done
}
# The mock's answers, as the insides of nginx strings ('...', with \
# and ' escaped, on one line).
STEP="recording the mock's answers for the static engine"
ngxstr() { tr -d '\n' | sed "s/[\\\\']/\\\\&/g"; }
S_VERSION=$(curl -sf -m 10 "http://127.0.0.1:$MOCK_PORT/version" | ngxstr)
S_MODELS=$(curl -sf -m 10 "http://127.0.0.1:$MOCK_PORT/v1/models" | ngxstr)
S_CHAT=$(curl -sf -m 10 -H 'Content-Type: application/json' \
    --data-binary "$(body "$MODEL")" "http://127.0.0.1:$MOCK_PORT$CHAT" |
    ngxstr)
[ -n "$S_VERSION" ] && [ -n "$S_MODELS" ] && [ -n "$S_CHAT" ] ||
    die "the mock did not answer /version, /v1/models and $CHAT"
# The answers of issue 15's shapes, as files the static engine serves:
# a stream of 500 chunks, recorded from a mock told to send 500 with no
# delay, and an embeddings answer of about 1 MiB (64 vectors of 1424
# floats, as OpenAI's API gives them).
STEP="recording the static engine's stream and embeddings answers"
EMB=/v1/embeddings
mkdir -p "$STATE/static"
"$MOCKBIN" --flavor vllm --listen 127.0.0.1:0 --chunks 500 \
    --chunk-delay-ms 0 --port-file "$STATE/mock500.port" \
    >"$STATE/mock500.log" 2>&1 &
m500=$!
pids="$m500 $pids"
waitfor 10 "the 500-chunk mock" test -s "$STATE/mock500.port"
curl -sf -m 20 -H 'Content-Type: application/json' --data-binary \
    "$(body "$MODEL" ',"stream":true,"stream_options":{"include_usage":true}')" \
    "http://127.0.0.1:$(cat "$STATE/mock500.port")$CHAT" \
    >"$STATE/static/sse500.txt" || true
kill $m500 2>/dev/null || true
wait $m500 2>/dev/null || true
SSE_N=$(grep -c '^data: {' "$STATE/static/sse500.txt" || true)
[ "${SSE_N:-0}" -ge 500 ] && grep -q '^data: \[DONE\]' "$STATE/static/sse500.txt" ||
    die "the mock (--chunks 500) did not stream 500 chunks and [DONE]"
SSE_BYTES=$(wc -c <"$STATE/static/sse500.txt" | tr -d ' ')
LC_ALL=C awk -v m="$MODEL" 'BEGIN { srand(15)
	printf "{\"object\":\"list\",\"data\":["
	for (i = 0; i < 64; i++) {
		printf "%s{\"object\":\"embedding\",\"index\":%d,\"embedding\":[",
		    i ? "," : "", i
		for (j = 0; j < 1424; j++)
			printf "%s%.8f", j ? "," : "", rand() * 0.2 - 0.1
		printf "]}"
	}
	printf "],\"model\":\"%s\",\"usage\":{\"prompt_tokens\":640,", m
	printf "\"total_tokens\":640}}"
}' >"$STATE/static/embed.json"
EMB_BYTES=$(wc -c <"$STATE/static/embed.json" | tr -d ' ')
# On PORT the chat answer and, from a file, the 1 MB embeddings answer;
# on PORT + 1 (engines.static500) the 500-chunk SSE answer, from a file.
# nginx serves files to GET only: error_page 405 turns a POST into a GET
# of the same file.
aux_static() {
	cat <<EOF
	access_log off;
	server { listen 127.0.0.1:$1;
	    location = /health { return 200; }
	    location = /version { return 200 '$S_VERSION'; }
	    location = /v1/models { return 200 '$S_MODELS'; }
	    location = $CHAT { return 200 '$S_CHAT'; }
	    location = $EMB { alias $STATE/static/embed.json;
	        error_page 405 =200 \$uri; }
	    location / { return 404; } }
	server { listen 127.0.0.1:$(($1 + 1));
	    location = /health { return 200; }
	    location = /version { return 200 '$S_VERSION'; }
	    location = /v1/models { return 200 '$S_MODELS'; }
	    location = $CHAT { default_type text/event-stream;
	        alias $STATE/static/sse500.txt; error_page 405 =200 \$uri; }
	    location / { return 404; } }
EOF
}
# nginx's TLS front set as flm's: TLS 1.2 and 1.3, ECDHE-ECDSA AEAD
# ciphers, the same groups, session tickets on (nginx's default).
STEP="making nginx's certificate"
mkdir -p "$STATE/tls"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$STATE/tls/key.pem" -out "$STATE/tls/cert.pem" -days 30 \
    -subj /CN=localhost -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
    >"$STATE/tls/openssl.log" 2>&1 ||
    { cat "$STATE/tls/openssl.log" >&2; die "openssl could not make a key"; }
aux_ngxtls() {
	if [ "$NGINX_LOG" = file ]; then
		echo "	access_log $STATE/nginx-tls-access.log;"
	else
		echo "	access_log off;"
	fi
	cat <<EOF
	upstream static { server 127.0.0.1:$STATIC_PORT; keepalive 64;
	    keepalive_requests 1000000; }
	proxy_http_version 1.1;
	proxy_set_header Connection "";
	server { listen 127.0.0.1:$1 ssl;
	    ssl_certificate $STATE/tls/cert.pem;
	    ssl_certificate_key $STATE/tls/key.pem;
	    ssl_protocols TLSv1.2 TLSv1.3;
	    ssl_ciphers ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305;
	    ssl_ecdh_curve X25519:prime256v1:secp384r1;
	    location = /healthz { return 200 '{"status":"ok"}'; }
	    location / { proxy_pass http://static; } }
EOF
}
STEP="starting the static engine and nginx over TLS"
# As many workers as the most any proxy arm has: it must bound no arm.
AUX_WORKERS=$WORKERS nginx_aux static http
STATIC_PORT=$AUX_PORT
nginx_aux ngxtls https
NGXTLS_PORT=$AUX_PORT
STEP="starting flm on a dev-selfsigned handle"
$FLM config set engines.static.kind vllm >/dev/null
$FLM config set engines.static.url "http://127.0.0.1:$STATIC_PORT" >/dev/null
$FLM config set engines.static500.kind vllm >/dev/null
$FLM config set engines.static500.url "http://127.0.0.1:$((STATIC_PORT + 1))" \
    >/dev/null
FLMTLS_PORT=$($FLM proxy start --port 0 --mode dev-selfsigned --json \
    2>"$STATE/tls/flm.err" | jport) || true
[ -n "$FLMTLS_PORT" ] || fail "flm proxy start --mode dev-selfsigned:" \
    "$(head -c 200 "$STATE/tls/flm.err")"
STEP="checking the TLS arms"
mklua "$STATE/ngxtls.lua" "$MODEL"
mklua "$STATE/flmtls.lua" "flm://static/$MODEL" "$KEY"
URL_ngxtls=https://127.0.0.1:$NGXTLS_PORT$CHAT
URL_flmtls=https://127.0.0.1:${FLMTLS_PORT:-1}$CHAT
# check() over https: certificates are not what it checks (a curlrc
# with "insecure", for these two calls only); tlsinfo() reads them.
printf 'insecure\n' >"$STATE/tls/.curlrc"
export CURL_HOME="$STATE/tls"
check ngxtls "$MODEL"
if [ -n "$FLMTLS_PORT" ]; then
	check flmtls "flm://static/$MODEL" "$KEY"
else
	DOWN="$DOWN flmtls"
fi
unset CURL_HOME
# What each front negotiates with openssl s_client's defaults:
# protocol, the server's key and its signature type.
tlsinfo() {
	openssl s_client -connect "127.0.0.1:$1" </dev/null 2>/dev/null |
	    awk '/^Peer signature type:/ { t = $4 }
	    /^Server public key is/ { k = $5 }
	    /^New, / { p = $2; sub(",", "", p) }
	    END { printf "%s, %s-bit key, %s\n", p, k, t }'
}
TLSINFO_ngxtls=- TLSINFO_flmtls=-
for a in ngxtls flmtls; do
	down $a && continue
	eval "t_url=\$URL_$a"
	t_port=${t_url#https://127.0.0.1:}
	t_port=${t_port%%/*}
	eval "TLSINFO_$a=\"\$(tlsinfo $t_port)\""
	# As tls-hs asks: no ALPN (curl --http1.0 would offer "http/1.0",
	# which flm answers with no_application_protocol, RFC 7301).
	[ "$(curl -sk -m 5 --http1.0 --no-alpn -o /dev/null -w '%{http_code}' \
	    "https://127.0.0.1:$t_port/healthz")" = 200 ] ||
	    fail "arm $a: GET /healthz over HTTP/1.0 is not 200"
done

# Keep-alive: wrk over https at CONC connections, as the plain arms.
# Full handshakes: tests/bench/tls-hs, HS_CONC connections at once, each
# new (no session resumed: wrk would resume its sessions when it
# reconnects) with a GET /healthz over HTTP/1.0 that the front answers
# itself.  On a small machine the client's share of the CPU bounds the
# rate (a TLS client costs more than the server's side of a handshake),
# so the CPU time the server spent is measured too: of the nginx worker,
# and of flm-proxyd plus flm-keyd (which signs every handshake).  A line
# per round: "HS/S DONE FAILED RESUMED CPU_US_PER_HANDSHAKE".
cputicks() {	# PIDS...: their user + system time, in clock ticks
	for p in "$@"; do
		awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$p/stat" \
		    2>/dev/null || echo 0
	done | awk '{ n += $1 } END { print n + 0 }'
}
TCK=$(getconf CLK_TCK 2>/dev/null || echo 100)
hs() {
	down "$1" && return 0
	eval "h_url=\$URL_$1"
	h_port=${h_url#https://127.0.0.1:}
	h_port=${h_port%%/*}
	eval "h_pids=\$HSPIDS_$1"
	# shellcheck disable=SC2086
	h_c0=$(cputicks $h_pids)
	"$TLSHS" -p "$h_port" -c "$HS_CONC" -t "$SECS" -P /healthz \
	    >"$STATE/hs.out" 2>&1 || true
	# shellcheck disable=SC2086
	h_c1=$(cputicks $h_pids)
	h_line=$(sed -n 's/^tls-hs //p' "$STATE/hs.out")
	[ -n "$h_line" ] || { cat "$STATE/hs.out" >&2
	    die "tls-hs gave no result for $1 (port $h_port)"; }
	echo "$h_line" | awk -v c="$((h_c1 - h_c0))" -v tck="$TCK" \
	    '{ printf "%s %s %s %s %.0f\n", $1, $2, $3, $4,
	    ($2 > 0 ? c * 1e6 / tck / $2 : 0) }' >>"$STATE/res.$1.hs"
}
NGXTLS_MASTER=$(cat "$STATE/nginx-ngxtls.pid" 2>/dev/null || true)
HSPIDS_ngxtls=$(ps -o pid= --ppid "${NGXTLS_MASTER:-0}" 2>/dev/null | tr -d ' ')
HSPIDS_flmtls="$(proxyd_pid) $($FLM status --json | jq -r '.processes[] |
    select(.name=="flm-keyd") | .pid' 2>/dev/null)"
STEP="measuring TLS throughput and handshakes"
r=0
while [ $r -lt "$ROUNDS" ]; do		# interleaved, as above
	for a in ngxtls flmtls; do run $a c 2 "$CONC"; done
	for a in ngxtls flmtls; do hs $a; done
	r=$((r + 1))
done
for a in ngxtls flmtls; do
	e=$(errs $a c)
	[ "$e" = - ] || [ "$e" = 0 ] ||
	    fail "arm $a at c=$CONC: $e socket errors or non-2xx answers" \
	    "(every round)"
	[ -s "$STATE/res.$a.hs" ] || continue
	e=$(awk '{ n += $3 } END { print n }' "$STATE/res.$a.hs")
	[ "$e" = 0 ] || fail "arm $a, handshakes: $e connections failed" \
	    "or had no 200 (every round)"
	e=$(awk '{ n += $4 } END { print n }' "$STATE/res.$a.hs")
	[ "$e" = 0 ] || fail "arm $a, handshakes: $e sessions resumed," \
	    "not full handshakes"
done
# The best round: handshakes a second, their number, server CPU us each
# and the handshakes a server CPU second allows (1e6 / CPU us).
hsbest() {
	[ -s "$STATE/res.$1.hs" ] || { echo "- - - -"; return; }
	sort -k1,1nr "$STATE/res.$1.hs" | head -1 |
	    awk '{ printf "%s %s %s %s\n", $1, $2, $5,
	    ($5 > 0 ? sprintf("%.0f", 1e6 / $5) : "-") }'
}

# ---- issue 15: request shapes before the static engine, workers -------------------
# The TLS section's static engine (nginx answering from memory or from a
# file, so the proxy is what is measured) behind three arms: direct,
# nginx proxy_pass (upstream keep-alive; one worker, and WORKERS for the
# workers rows) and flm (cached key, routing, audit on; one worker, then
# proxy.workers WORKERS).  Shapes: the small chat body; a long-context
# chat (a user message of about 190 KB of prose and code, with escapes
# and UTF-8); a streamed answer of 500 SSE chunks; a 1 MiB embeddings
# answer.  Each at CONC connections, the chat bodies at one too.
STEP="starting nginx before the static engine"
aux_ngx15() {
	if [ "$NGINX_LOG" = file ]; then
		echo "	access_log $STATE/nginx-15-access.log;"
	else
		echo "	access_log off;"
	fi
	cat <<EOF
	upstream static { server 127.0.0.1:$STATIC_PORT; keepalive 64;
	    keepalive_requests 1000000; }
	upstream static500 { server 127.0.0.1:$((STATIC_PORT + 1)); keepalive 64;
	    keepalive_requests 1000000; }
	client_max_body_size 16m;
	proxy_buffering off;
	proxy_http_version 1.1;
	proxy_set_header Connection "";
	server { listen 127.0.0.1:$1;
	    location = /health { return 200; }
	    location / { proxy_pass http://static; } }
	server { listen 127.0.0.1:$(($1 + 1));
	    location / { proxy_pass http://static500; } }
EOF
}
aux_ngx15n() { aux_ngx15 "$@"; }
AUX_WORKERS=1 nginx_aux ngx15 http
NGX15_PORT=$AUX_PORT
AUX_WORKERS=$WORKERS nginx_aux ngx15n http
NGX15N_PORT=$AUX_PORT

STEP="writing the request bodies of the shapes"
# About 190 KB of a JSON string's insides: numbered lines of words, some
# quoted, some code, escapes (\n \t \" \u00e9) and raw UTF-8.
LC_ALL=C awk 'BEGIN { srand(15)
	split("the of model token context request proxy engine stream " \
	    "latency worker memory audit key route byte scanner document " \
	    "chunk answer", w, " ")
	while (n < 190000) {
		l = sprintf("%d. ", ++i)
		for (j = 0; j < 12; j++)
			l = l w[int(rand() * 20) + 1] " "
		if (i % 7 == 0)
			l = l "\\\"quoted\\\" caf\\u00e9 na\303\257ve\\t"
		if (i % 11 == 0)
			l = l "{\\\"k\\\": [1, 2.5e3, -0.25, null, true]}"
		l = l "\\n"
		printf "%s", l
		n += length(l)
	}
}' >"$STATE/long.txt"
# mkbody15 FILE SHAPE MODEL
mkbody15() {
	case $2 in
	small) body "$3" ;;
	sse) body "$3" ',"stream":true' ;;
	long)
		printf '{"model":"%s","messages":[{"role":"system","content":"Answer from the document."},{"role":"user","content":"' "$3"
		cat "$STATE/long.txt"
		printf '"}],"max_tokens":16}' ;;
	msg_small)
		printf '{"model":"%s","messages":[{"role":"user","content":"Say hello to the benchmark."}],"max_tokens":16}' "$3" ;;
	oll_small)
		printf '{"model":"%s","messages":[{"role":"user","content":"Say hello to the benchmark."}],"stream":false,"options":{"num_predict":16}}' "$3" ;;
	resp_small)
		printf '{"model":"%s","input":"Say hello to the benchmark.","max_output_tokens":16}' "$3" ;;
	msg_long | oll_long | resp_long)
		case $2 in
		msg_*) printf '{"model":"%s","max_tokens":16,"system":"Answer from the document.","messages":[{"role":"user","content":"' "$3" ;;
		oll_*) printf '{"model":"%s","stream":false,"options":{"num_predict":16},"messages":[{"role":"system","content":"Answer from the document."},{"role":"user","content":"' "$3" ;;
		resp_*) printf '{"model":"%s","max_output_tokens":16,"instructions":"Answer from the document.","input":[{"role":"user","content":"' "$3" ;;
		esac
		cat "$STATE/long.txt"
		printf '"}]}' ;;
	emb)
		printf '{"model":"%s","input":[' "$3"
		i=0
		while [ $i -lt 64 ]; do
			printf '%s"passage %d of the benchmark"' \
			    "$([ $i = 0 ] || echo ,)" $i
			i=$((i + 1))
		done
		printf ']}' ;;
	esac >"$1"
}
SHAPES="small long sse emb"
# Issue 18: the other dialects' front-ends, flm only, the same engine.
D18="msg_small oll_small resp_small msg_long oll_long resp_long"
for sh in $SHAPES $D18; do
	mkbody15 "$STATE/b15.plain.$sh" $sh "$MODEL"
	if [ $sh = sse ]; then m="flm://static500/$MODEL"; else m="flm://static/$MODEL"; fi
	mkbody15 "$STATE/b15.flm.$sh" $sh "$m"
done
SMALL_BYTES=$(wc -c <"$STATE/b15.plain.small" | tr -d ' ')
LONG_BYTES=$(wc -c <"$STATE/b15.plain.long" | tr -d ' ')
# url15 ARM SHAPE: where the arm sends the shape.
url15() {
	case $1 in
	d15) u_p=$STATIC_PORT ;;
	n15) u_p=$NGX15_PORT ;;
	nN) u_p=$NGX15N_PORT ;;
	*) u_p=$AUTH_PORT ;;
	esac
	case $1.$2 in f*) ;; *.sse) u_p=$((u_p + 1)) ;; esac
	case $2 in
	emb) echo "http://127.0.0.1:$u_p$EMB" ;;
	msg_*) echo "http://127.0.0.1:$u_p/v1/messages" ;;
	oll_*) echo "http://127.0.0.1:$u_p/api/chat" ;;
	resp_*) echo "http://127.0.0.1:$u_p/v1/responses" ;;
	*) echo "http://127.0.0.1:$u_p$CHAT" ;;
	esac
}
# bfile15 ARM SHAPE: the body file.
bfile15() {
	case $1 in f*) echo "$STATE/b15.flm.$2" ;; *) echo "$STATE/b15.plain.$2" ;; esac
}
# mklua15 ARM SHAPE: a wrk script reading its body from the file, with
# the key for flm; done() as mklua's.
mklua15() {
	cat >"$STATE/l15.$1.$2.lua" <<EOF
wrk.method = "POST"
local f = assert(io.open("$(bfile15 "$1" "$2")", "rb"))
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
EOF
	case $1 in f*) echo "wrk.headers[\"Authorization\"] = \"Bearer $KEY\"" \
	    >>"$STATE/l15.$1.$2.lua" ;; esac
	sed -n '/^done = function/,$p' "$STATE/direct.lua" >>"$STATE/l15.$1.$2.lua"
}
DOWN15=
down15() { case " $DOWN15 " in *" $1.$2 "*) return 0 ;; esac; return 1; }
# check15 ARM SHAPE: one request by curl; a 200 and the whole answer
# (a chat completion; 500 chunks and [DONE]; the 1 MiB of embeddings).
check15() {
	c_arm=$1
	c_sh=$2
	c_out=$STATE/check15.$1.$2
	case $c_arm in
	f*) set -- -H "Authorization: Bearer $KEY" ;;
	*) set -- ;;
	esac
	c_code=$(curl -s -m 20 -o "$c_out" -w '%{http_code}' \
	    -H 'Content-Type: application/json' "$@" \
	    --data-binary "@$(bfile15 $c_arm $c_sh)" "$(url15 $c_arm $c_sh)") ||
	    c_code="$c_code (curl exit $?)"
	c_ok=0
	if [ "$c_code" = 200 ]; then
		case $c_sh in
		small | long) grep -q '"chat.completion"' "$c_out" && c_ok=1 ;;
		sse) [ "$(grep -c '^data: {' "$c_out")" -ge 500 ] &&
		    grep -q '^data: \[DONE\]' "$c_out" && c_ok=1 ;;
		emb) [ "$(wc -c <"$c_out")" -ge $((EMB_BYTES - 64)) ] &&
		    grep -q '"embedding"' "$c_out" && c_ok=1 ;;
		msg_*) grep -q '"type":"message"' "$c_out" && c_ok=1 ;;
		oll_*) grep -q '"done":true' "$c_out" && c_ok=1 ;;
		resp_*) grep -q '"object":"response"' "$c_out" && c_ok=1 ;;
		esac
	fi
	[ $c_ok = 1 ] && return 0
	DOWN15="$DOWN15 $c_arm.$c_sh"
	fail "arm $c_arm, shape $c_sh: POST $(url15 $c_arm $c_sh): HTTP" \
	    "$c_code: $(head -c 160 "$c_out" 2>/dev/null | tr '\n' ' ')"
}
# pids15 ARM: the proxy's processes, whose CPU time a request costs:
# nginx's workers; every flm-proxyd and flm-keyd (which writes the
# audit trail); none for the engine alone.
pids15() {
	case $1 in
	n15 | nN)
		if [ $1 = n15 ]; then p_f=ngx15; else p_f=ngx15n; fi
		ps -o pid= --ppid "$(cat "$STATE/nginx-$p_f.pid" 2>/dev/null ||
		    echo 0)" 2>/dev/null | tr -d ' ' ;;
	f15 | fN)
		$FLM status --json | jq -r '.processes[] | select(.name ==
		    "flm-proxyd" or .name == "flm-keyd") | .pid' ;;
	esac
}
# run15 ARM SHAPE TAG CONNS: one wrk round (-t2, or -t1 at one
# connection); its line to STATE/res.ARM.TAG, with a seventh field: the
# proxy's CPU us per request (- for the engine alone).  On a machine
# whose cores the load generator and the engine share, req/s depends
# on how the scheduler shares them; CPU per request is the proxy's own.
run15() {
	down15 "$1" "$2" && return 0
	r_u=$(url15 "$1" "$2")
	if [ "$4" = 1 ]; then r_t=1; else r_t=2; fi
	r_pids=$(pids15 "$1")
	# shellcheck disable=SC2086
	r_c0=$(cputicks $r_pids)
	wrk -t $r_t -c "$4" -d "${SECS}s" -s "$STATE/l15.$1.$2.lua" "$r_u" \
	    >"$STATE/wrk.out" 2>&1 || true
	# shellcheck disable=SC2086
	r_c1=$(cputicks $r_pids)
	r_line=$(sed -n 's/^flm-bench //p' "$STATE/wrk.out")
	if [ -z "$r_line" ]; then
		cat "$STATE/wrk.out" >&2
		die "wrk gave no result for $1, shape $2, c=$4 ($r_u)"
	fi
	echo "$r_line" | awk -v c="$((r_c1 - r_c0))" -v tck="$TCK" \
	    -v p="$r_pids" '{ printf "%s %s %s %s %s %s ", $1, $2, $3, $4,
	    $5, $6; if (p == "" || $4 == 0) print "-";
	    else printf "%.1f\n", c * 1e6 / tck / $4 }' >>"$STATE/res.$1.$3"
}
STEP="checking the arms of the shapes"
for sh in $SHAPES; do
	for a in d15 n15 f15; do
		mklua15 $a $sh
		check15 $a $sh
	done
done
STEP="measuring the shapes"
r=0
while [ $r -lt "$ROUNDS" ]; do		# interleaved, as above
	for sh in $SHAPES; do
		for a in d15 n15 f15; do
			run15 $a $sh $sh "$CONC"
		done
	done
	for sh in small long; do
		for a in d15 n15 f15; do run15 $a $sh ${sh}c1 1; done
	done
	r=$((r + 1))
done
for a in d15 n15 f15; do
	for t in small long sse emb smallc1 longc1; do
		e=$(errs $a $t)
		[ "$e" = - ] || [ "$e" = 0 ] ||
		    fail "arm $a, $t: $e socket errors or non-2xx answers" \
		    "(every round)"
	done
done
# Issue 18: each dialect's small and long request, interleaved with
# the chat completions of the same sizes (tags small18, long18): what
# the front-end's translation adds to a request's cost.
STEP="measuring the other dialects"
for sh in $D18; do
	mklua15 f15 $sh
	check15 f15 $sh
done
r=0
while [ $r -lt "$ROUNDS" ]; do
	for sh in small long; do
		run15 f15 $sh ${sh}18 "$CONC"
		for d in msg oll resp; do run15 f15 ${d}_$sh ${d}_$sh "$CONC"; done
	done
	r=$((r + 1))
done
for t in $D18 small18 long18; do
	e=$(errs f15 $t)
	[ "$e" = - ] || [ "$e" = 0 ] ||
	    fail "arm f15, $t: $e socket errors or non-2xx answers (every round)"
done

# keyd's CPU per 1,000 audit records: tests/bench/keyd-cpu.sh's
# measure (flm-keyd's user + system time around a wrk run of flm's small
# shape, over the rows it added to the trail), on this suite.
STEP="measuring flm-keyd's CPU per audit record"
KEYD_MS=- KEYD_ROWS=- KEYD_CPUMS=-
KCPU=$SRC/tests/bench/keyd-cpu.sh
if down15 f15 small; then
	:
elif [ -r "$KCPU" ]; then
	# shellcheck source=/dev/null
	FLM_KEYD_CPU_LIB=1 . "$KCPU"
	# shellcheck disable=SC2046
	set -- $(keyd_cpu_measure "$FLM" "$(url15 f15 small)" \
	    "$STATE/l15.f15.small.lua" "$SECS" "$CONC" 2>"$STATE/keydcpu.err" ||
	    true)
	if [ "${1:-}" = keyd-cpu ]; then
		KEYD_ROWS=$2 KEYD_CPUMS=$3 KEYD_MS=$4
	else
		fail "keyd CPU: $(head -c 200 "$STATE/keydcpu.err")"
	fi
else
	fail "keyd CPU: $KCPU is missing (the audit change brings it)"
fi

# Workers: proxy.workers WORKERS against nginx's worker_processes
# WORKERS, the small shape at CONC; the scaling row divides by the
# one-worker rows above (the same run, earlier).
STEP="measuring $WORKERS workers"
NPX=-
nproxyd() {
	$FLM status --json | jq '[.processes[] | select(.name=="flm-proxyd"
	    and (.state // "running") == "running")] | length'
}
if [ $WORKERS_OK = 1 ] && $FLM config set proxy.workers "$WORKERS" \
    >"$STATE/workers.out" 2>&1; then
	i=0
	until [ "$(nproxyd)" = "$WORKERS" ]; do
		i=$((i + 1))
		[ $i -lt 200 ] || break
		sleep 0.1
	done
	NPX=$(nproxyd)
	[ "$NPX" = "$WORKERS" ] ||
	    fail "workers: $NPX flm-proxyd running after proxy.workers $WORKERS"
	for a in nN fN; do mklua15 $a small; check15 $a small; done
	r=0
	while [ $r -lt "$ROUNDS" ]; do
		for a in nN fN; do run15 $a small small "$CONC"; done
		r=$((r + 1))
	done
	for a in nN fN; do
		e=$(errs $a small)
		[ "$e" = - ] || [ "$e" = 0 ] ||
		    fail "arm $a, small: $e socket errors or non-2xx answers" \
		    "(every round)"
	done
else
	DOWN15="$DOWN15 nN.small fN.small"
	fail "workers: flm config set proxy.workers is refused: the" \
	    "$WORKERS-worker rows are unavailable:" \
	    "$(head -c 200 "$STATE/workers.out" | tr '\n' ' ')"
fi

# ---- the table -------------------------------------------------------------------------
STEP="printing the table"
ratio() {
	awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || b == 0)
	    print "-"; else printf "%.3f", a / b }'
}
minus() {
	awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-") print "-";
	    else printf "%d", a - b }'
}
# target VALUE OP LIMIT: MET or NOT MET (n/a without a value).
target() {
	awk -v v="$1" -v op="$2" -v l="$3" 'BEGIN { if (v == "-") print "n/a";
	    else if ((op == ">=" && v + 0 >= l + 0) ||
	    (op == ">" && v + 0 > l + 0) || (op == "<=" && v + 0 <= l + 0))
	    print "MET";
	    else print "NOT MET" }'
}
rps_flm=$(field flm c 1)
rps_nginx=$(field nginx c 1)
rps_direct=$(field direct c 1)
rps_open=$(field open c 1)
p50_1_flm=$(field flm c1 2)
p50_1_nginx=$(field nginx c1 2)
p50_1_direct=$(field direct c1 2)
r_fn=$(ratio "$rps_flm" "$rps_nginx")
r_fd=$(ratio "$rps_flm" "$rps_direct")
r_fo=$(ratio "$rps_flm" "$rps_open")
add_flm=$(minus "$p50_1_flm" "$p50_1_direct")
add_nginx=$(minus "$p50_1_nginx" "$p50_1_direct")
r_under=$(ratio "$under" "$rps_flm")

row() { printf '%-34s %9s %9s %9s %8s\n' "$@"; }
arm() { # LABEL ARM TAG
	set -- "$1" "$(best "$2" "$3")" "$(errs "$2" "$3")"
	set -- "$1" "$3" $2
	row "$1" "$3" "$4" "$5" "$2"
}
line() { printf '%-58s %13s\n' "$1" "$2"; }
rule() { echo "-------------------------------------------------------------------------"; }
echo
echo "FLM benchmark (issue 6): POST $CHAT, non-streaming, $BODYLEN-byte JSON,"
echo "  mock vllm; best of $ROUNDS x ${SECS}s rounds, interleaved; wrk -t2 -c$CONC"
echo "  and -t1 -c1; latency from wrk's Lua done() in us."
# What flm logged: its log lines against the requests it served.
nreq=$(cat "$STATE"/res.flm.* "$STATE"/res.open.* 2>/dev/null |
    awk '{ n += $4 } END { print n + 0 }')
nlog=$(wc -l <"$STATE/flmd.log" | tr -d ' ')
echo "  flm: cached key, model flm://vllm/..., logging on (flmd -d: $nlog log"
echo "  lines for $nreq wrk requests);"
# Every request is an audit row keyd writes to security.db: on two cores
# that write shares the CPU with the rest of the run.
nrows=$(sqlite3 -cmd '.timeout 5000' "$STATE/keyd/security.db" \
    'SELECT count(*) FROM audit_logs' 2>/dev/null || echo '?')
echo "  audit trail on: $nrows rows written to security.db by flm-keyd;"
if [ "$NGINX_LOG" = file ]; then
	echo "  nginx $NGINX_VER: 1 worker, upstream keepalive 64, access_log to a file."
else
	echo "  nginx $NGINX_VER: 1 worker, upstream keepalive 64, access_log off."
fi
rule
row "arm" "req/s" "p50 us" "p99 us" "errors"
arm "c=$CONC  mock direct" direct c
arm "c=$CONC  nginx proxy_pass" nginx c
arm "c=$CONC  flm cached key" flm c
arm "c=$CONC  flm no key checks" open c
arm "c=1   mock direct" direct c1
arm "c=1   nginx proxy_pass" nginx c1
arm "c=1   flm cached key" flm c1
rule
line "ratio flm/nginx req/s (c=$CONC)" "$r_fn"
line "ratio flm/direct req/s (c=$CONC)" "$r_fd"
line "ratio flm cached key/no key checks req/s (c=$CONC)" "$r_fo"
line "added p50 at c=1, flm over direct us" "$add_flm"
line "added p50 at c=1, nginx over direct us" "$add_nginx"
line "cold verification (first use, Argon2id) us" "$cold"
line "bad-key requests absorbed req/s (c=$CONC, 1 thread)" "$bad"
line "valid-key req/s during the bad-key flood" "$under"
line "ratio valid under flood / valid alone" "$r_under"
rule
echo "SSE: $STREAMS streams held at once, a chunk every ${CHUNK_MS} ms; VmRSS of"
echo "  flm-proxyd and of the nginx worker, idle and while all are held"
[ -z "$NOTE_N" ] || echo " $NOTE_N"
printf '%-34s %9s %9s %9s %8s\n' "" "streams" "idle KiB" "held KiB" "KiB/str"
printf '%-34s %9s %9s %9s %8s\n' "flm-proxyd" "$SSE_ready_flm" "$SSE_idle_flm" \
    "$SSE_held_flm" "$SSE_per_flm"
printf '%-34s %9s %9s %9s %8s\n' "nginx" "$SSE_ready_nginx" "$SSE_idle_nginx" \
    "$SSE_held_nginx" "$SSE_per_nginx"
rule
# shellcheck disable=SC2046
set -- $(hsbest ngxtls)
hs_ngx=$1 hsn_ngx=$2 hsc_ngx=$3 hscap_ngx=$4
# shellcheck disable=SC2046
set -- $(hsbest flmtls)
hs_flm=$1 hsn_flm=$2 hsc_flm=$3 hscap_flm=$4
rps_ngxtls=$(field ngxtls c 1)
rps_flmtls=$(field flmtls c 1)
r_tls=$(ratio "$rps_flmtls" "$rps_ngxtls")
r_hs=$(ratio "$hs_flm" "$hs_ngx")
r_hscap=$(ratio "$hscap_flm" "$hscap_ngx")
echo "TLS (ECDSA P-256 certificates) before a static engine (nginx, return 200"
echo "  of the mock's JSON); keep-alive: wrk -t2 -c$CONC over https; full"
echo "  handshakes: tls-hs -c$HS_CONC, a new connection and session per GET"
echo "  /healthz (HTTP/1.0); server CPU: the nginx worker, flm-proxyd + flm-keyd"
echo "  nginx: $TLSINFO_ngxtls; key in its worker"
echo "  flm:   $TLSINFO_flmtls; key in flm-keyd, a signature per handshake"
rule
row "arm" "req/s" "p50 us" "p99 us" "errors"
arm "c=$CONC  nginx TLS proxy_pass" ngxtls c
arm "c=$CONC  flm TLS cached key" flmtls c
printf '%-34s %9s %9s %9s %8s\n' "" "hs/s" "done" "CPU us" "hs/CPUs"
printf '%-34s %9s %9s %9s %8s\n' "c=$HS_CONC  full handshakes, nginx" "$hs_ngx" \
    "$hsn_ngx" "$hsc_ngx" "$hscap_ngx"
printf '%-34s %9s %9s %9s %8s\n' "c=$HS_CONC  full handshakes, flm" "$hs_flm" \
    "$hsn_flm" "$hsc_flm" "$hscap_flm"
line "ratio flm/nginx TLS keep-alive req/s (c=$CONC)" "$r_tls"
line "ratio flm/nginx full handshakes/s (as measured)" "$r_hs"
line "ratio flm/nginx handshakes per server CPU second" "$r_hscap"
rule
echo "Issue 15: shapes before the static engine (nginx, $WORKERS workers, answering"
echo "  from memory or a file); arms: direct, nginx proxy_pass (upstream keep-alive,"
echo "  proxy_buffering off) and flm (cached key, flm://static/..., audit on),"
echo "  1 worker each; wrk -t2 -c$CONC, -t1 -c1; req/s of the best round"
echo "  small: $SMALL_BYTES-byte chat body; long: $LONG_BYTES-byte chat body;"
echo "  sse: $SSE_N data: events, $SSE_BYTES bytes streamed; emb: $EMB_BYTES-byte answer"
rule
printf '%-22s %10s %10s %10s %9s %9s\n' "shape (c=$CONC)" "direct" "nginx" \
    "flm" "flm/ngx" "err d/n/f"
for sh in $SHAPES; do
	eval "R15_$sh=\$(ratio \"\$(field f15 $sh 1)\" \"\$(field n15 $sh 1)\")"
	eval "r=\$R15_$sh"
	printf '%-22s %10s %10s %10s %9s %9s\n' "$sh" "$(field d15 $sh 1)" \
	    "$(field n15 $sh 1)" "$(field f15 $sh 1)" "$r" \
	    "$(errs d15 $sh)/$(errs n15 $sh)/$(errs f15 $sh)"
done
printf '%-22s %10s %10s %10s %9s %9s\n' "c=1, us" "p50/p99" "p50/p99" \
    "p50/p99" "+nginx" "+flm"
for sh in small long; do
	t=${sh}c1
	printf '%-22s %10s %10s %10s %9s %9s\n' "$sh" \
	    "$(field d15 $t 2)/$(field d15 $t 3)" \
	    "$(field n15 $t 2)/$(field n15 $t 3)" \
	    "$(field f15 $t 2)/$(field f15 $t 3)" \
	    "$(minus "$(field n15 $t 2)" "$(field d15 $t 2)")" \
	    "$(minus "$(field f15 $t 2)" "$(field d15 $t 2)")"
	printf '%-22s %10s %10s %10s %9s %9s\n' "  added p99" "" "" "" \
	    "$(minus "$(field n15 $t 3)" "$(field d15 $t 3)")" \
	    "$(minus "$(field f15 $t 3)" "$(field d15 $t 3)")"
done
ADD15=$(minus "$(field f15 smallc1 2)" "$(field d15 smallc1 2)")
rule
echo "Proxy CPU per request (us, the best round's; nginx: its worker; flm:"
echo "  flm-proxyd and flm-keyd): what each proxy itself costs, however the"
echo "  scheduler shares the cores with wrk and the engine"
printf '%-22s %10s %10s %9s\n' "shape (c=$CONC)" "nginx" "flm" "flm/ngx"
for sh in $SHAPES; do
	eval "C15_$sh=\$(ratio \"\$(field f15 $sh 7)\" \"\$(field n15 $sh 7)\")"
	eval "r=\$C15_$sh"
	printf '%-22s %10s %10s %9s\n' "$sh" "$(field n15 $sh 7)" \
	    "$(field f15 $sh 7)" "$r"
done
down15 fN small ||
    printf '%-22s %10s %10s %9s\n' "small, $WORKERS workers" \
    "$(field nN small 7)" "$(field fN small 7)" \
    "$(ratio "$(field fN small 7)" "$(field nN small 7)")"
rule
echo "Workers (small shape, c=$CONC): flm proxy.workers and nginx worker_processes"
echo "  ($NPX flm-proxyd running for $WORKERS)"
printf '%-22s %10s %10s %9s %9s\n' "workers" "nginx" "flm" "flm/ngx" "err n/f"
RW1=$(ratio "$(field f15 small 1)" "$(field n15 small 1)")
RWN=$(ratio "$(field fN small 1)" "$(field nN small 1)")
printf '%-22s %10s %10s %9s %9s\n' 1 "$(field n15 small 1)" \
    "$(field f15 small 1)" "$RW1" "$(errs n15 small)/$(errs f15 small)"
if down15 fN small; then
	printf '%-22s %10s %10s %9s %9s\n' "$WORKERS" unavailable unavailable - -
else
	printf '%-22s %10s %10s %9s %9s\n' "$WORKERS" "$(field nN small 1)" \
	    "$(field fN small 1)" "$RWN" "$(errs nN small)/$(errs fN small)"
fi
SC_N=$(ratio "$(field nN small 1)" "$(field n15 small 1)")
SC_F=$(ratio "$(field fN small 1)" "$(field f15 small 1)")
printf '%-22s %10s %10s\n' "scaling $WORKERS/1" "$SC_N" "$SC_F"
rule
echo "Issue 18: the other dialects before the same static engine (flm, 1 worker,"
echo "  c=$CONC, interleaved with chat completions of the same size): req/s and"
echo "  flm-proxyd + flm-keyd CPU per request; cost = CPU/request over chat's"
printf '%-22s %10s %10s %10s %9s\n' "dialect" "req/s" "CPU us" "chat CPU" "cost"
T18=
for sh in $D18; do
	sz=${sh#*_}
	c=$(ratio "$(field f15 $sh 7)" "$(field f15 ${sz}18 7)")
	T18="$T18 $sh=$c"
	printf '%-22s %10s %10s %10s %9s\n' "$sh" "$(field f15 $sh 1)" \
	    "$(field f15 $sh 7)" "$(field f15 ${sz}18 7)" "$c"
done
rule
line "flm-keyd CPU ms per 1,000 audit records (wrk -t1 -c$CONC, small)" \
    "$KEYD_MS"
line "  ($KEYD_ROWS audit rows, $KEYD_CPUMS ms of flm-keyd CPU)" ""
rule
echo "targets"
printf '  %-50s %8s  %s\n' "throughput flm/nginx >= 1.00 (c=$CONC)" "$r_fn" \
    "$(target "$r_fn" '>=' 1.00)"
printf '  %-50s %8s  %s\n' "added p50 flm over direct <= 25 us (c=1)" "$add_flm" \
    "$(target "$add_flm" '<=' 25)"
printf '  %-50s %8s  %s\n' "per-stream memory <= 32 KiB ($STREAMS streams)" \
    "$SSE_per_flm" "$(target "$SSE_per_flm" '<=' 32)"
printf '  %-50s %8s  %s\n' "cached key/no key checks >= 0.97" "$r_fo" \
    "$(target "$r_fo" '>=' 0.97)"
printf '  %-50s %8s  %s\n' "TLS keep-alive flm/nginx >= 1.00 (c=$CONC)" \
    "$r_tls" "$(target "$r_tls" '>=' 1.00)"
printf '  %-50s %8s  %s\n' "TLS full handshakes/s flm/nginx >= 0.80" "$r_hs" \
    "$(target "$r_hs" '>=' 0.80)"
printf '  %-50s %8s  %s\n' "  the same per server CPU second >= 0.80" \
    "$r_hscap" "$(target "$r_hscap" '>=' 0.80)"
for sh in $SHAPES; do
	eval "r=\$R15_$sh"
	printf '  %-50s %8s  %s\n' "issue 15: $sh flm/nginx >= 1.00 (c=$CONC)" "$r" \
	    "$(target "$r" '>=' 1.00)"
done
for sh in $SHAPES; do
	eval "r=\$C15_$sh"
	printf '  %-50s %8s  %s\n' "issue 15: $sh CPU/request flm/nginx <= 1.00" \
	    "$r" "$(target "$r" '<=' 1.00)"
done
for t in $T18; do
	printf '  %-50s %8s  %s\n' "issue 18: ${t%%=*} CPU/request / chat's <= 1.10" \
	    "${t#*=}" "$(target "${t#*=}" '<=' 1.10)"
done
printf '  %-50s %8s  %s\n' "issue 15: added p50, small, static engine <= 25 us" \
    "$ADD15" "$(target "$ADD15" '<=' 25)"
printf '  %-50s %8s  %s\n' "issue 15: $WORKERS workers flm/nginx >= 1.00 (c=$CONC)" \
    "$RWN" "$(target "$RWN" '>=' 1.00)"
printf '  %-50s %8s  %s\n' "issue 15: flm $WORKERS workers / 1 worker > 1.00" \
    "$SC_F" "$(target "$SC_F" '>' 1.00)"
if [ -n "$FAIL" ]; then
	echo
	echo "bench: INCOMPLETE:$FAIL"
	SAID=1
	exit 1
fi
