#!/bin/sh
# keyd's CPU per 1,000 audit records (issue 15): utime + stime of
# flm-keyd from /proc/PID/stat around a run of wrk against flm-proxyd,
# divided by the audit rows that run added (counted by flm audit verify,
# after the run, so verify's own work is not in the figure).  What keyd
# does for the run besides writing the trail (KEY_USED) is in it too:
# that is what the records cost keyd.
#
#   keyd-cpu.sh BUILDDIR        a suite of its own before the mock engine;
#                               prints "keyd-cpu RECORDS CPU_MS MS_PER_1000"
#   FLM_KEYD_CPU_SECS (5) of wrk, FLM_KEYD_CPU_CONC (32) connections.
#
# bench.sh can source it with FLM_KEYD_CPU_LIB=1 and call
#   keyd_cpu_measure "FLM COMMAND" URL LUAFILE SECS CONC
# against its own suite: the same line on stdout.
set -eu

# keyd_cpu_ticks PID: utime + stime, in clock ticks (fields 14 and 15;
# the command name, field 2, may hold spaces, so count from its ')').
keyd_cpu_ticks() {
	sed 's/^.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'
}

# keyd_cpu_pid "FLM COMMAND": flm-keyd's pid, from flm status --json.
keyd_cpu_pid() {
	$1 status --json | awk '/"name": *"flm-keyd"/ { f = 1 }
	    f && /"pid"/ { gsub(/[^0-9]/, ""); print; exit }'
}

# keyd_cpu_rows "FLM COMMAND": rows in the trail, from audit verify.
keyd_cpu_rows() {
	$1 audit verify --json | sed -n 's/.*"rows": *\([0-9]*\).*/\1/p' |
	    head -1
}

# keyd_cpu_idle PID: until keyd's CPU time stands still for 0.5 s (the
# last batch goes 50 ms after the last request), 10 s at most.
keyd_cpu_idle() {
	i_last=-1
	i_n=0
	while [ $i_n -lt 40 ]; do
		i_now=$(keyd_cpu_ticks "$1")
		[ "$i_now" = "$i_last" ] && return 0
		i_last=$i_now
		i_n=$((i_n + 1))
		sleep 0.5
	done
}

keyd_cpu_measure() {
	m_flm=$1 m_url=$2 m_lua=$3 m_secs=$4 m_conc=$5
	m_pid=$(keyd_cpu_pid "$m_flm")
	[ -n "$m_pid" ] || { echo "keyd-cpu: no flm-keyd pid" >&2; return 1; }
	keyd_cpu_idle "$m_pid"
	m_r0=$(keyd_cpu_rows "$m_flm")
	keyd_cpu_idle "$m_pid"
	m_t0=$(keyd_cpu_ticks "$m_pid")
	wrk -t 1 -c "$m_conc" -d "${m_secs}s" -s "$m_lua" "$m_url" >/dev/null 2>&1 ||
	    true
	keyd_cpu_idle "$m_pid"
	m_t1=$(keyd_cpu_ticks "$m_pid")
	m_r1=$(keyd_cpu_rows "$m_flm")
	[ -n "$m_r0" ] && [ -n "$m_r1" ] && [ "$m_r1" -gt "$m_r0" ] ||
	    { echo "keyd-cpu: no audit rows were added ($m_r0 -> $m_r1)" >&2
	    return 1; }
	awk -v n=$((m_r1 - m_r0)) -v t=$((m_t1 - m_t0)) \
	    -v hz="$(getconf CLK_TCK)" 'BEGIN { ms = t * 1000 / hz
	    printf "keyd-cpu %d %.0f %.2f\n", n, ms, ms * 1000 / n }'
}

[ -z "${FLM_KEYD_CPU_LIB:-}" ] || return 0

B=$(cd "${1:?usage: keyd-cpu.sh BUILDDIR}" && pwd)
SECS=${FLM_KEYD_CPU_SECS:-5}
CONC=${FLM_KEYD_CPU_CONC:-32}
command -v wrk >/dev/null || { echo "keyd-cpu: wrk is missing" >&2; exit 2; }
STATE=$(mktemp -d "${TMPDIR:-/tmp}/flm-keydcpu.XXXXXX")
FLM="$B/flm/flm -D $STATE"
pids=
cleanup() {
	for p in $pids; do kill "$p" 2>/dev/null || true; done
	for p in $pids; do wait "$p" 2>/dev/null || true; done
	rm -rf "$STATE"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
waitfor() {
	w_n=200
	until "$@" >/dev/null 2>&1; do
		w_n=$((w_n - 1))
		[ $w_n -gt 0 ] || { echo "keyd-cpu: timed out: $*" >&2; exit 1; }
		sleep 0.05
	done
}
"$B/tests/mock-engine/flm-mock-engine" --flavor vllm --listen 127.0.0.1:0 \
    --port-file "$STATE/mock.port" >"$STATE/mock.log" 2>&1 &
pids="$!"
waitfor test -s "$STATE/mock.port"
"$B/flmd/flmd" -d -D "$STATE" >"$STATE/flmd.log" 2>&1 &
pids="$! $pids"
waitfor $FLM status --json
$FLM config set engines.vllm.url "http://127.0.0.1:$(cat "$STATE/mock.port")" \
    >/dev/null
for e in ollama lmstudio llamacpp; do
	$FLM config set engines.$e.url http://127.0.0.1:9 >/dev/null
done
PORT=$($FLM proxy start --port 0 --json | sed -n 's/.*"port": *\([0-9]*\).*/\1/p')
KEY=$($FLM api-keys create --label keydcpu --json |
    sed -n 's/.*"key": *"\([^"]*\)".*/\1/p')
[ -n "$PORT" ] && [ -n "$KEY" ] || { echo "keyd-cpu: no port or key" >&2
    exit 1; }
cat >"$STATE/req.lua" <<EOF
wrk.method = "POST"
wrk.body = '{"model":"flm://vllm/meta-llama/Llama-3.2-1B-Instruct","messages":[{"role":"user","content":"hi"}],"max_tokens":16}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $KEY"
EOF
URL=http://127.0.0.1:$PORT/v1/chat/completions
waitfor curl -sf -o /dev/null -H "Authorization: Bearer $KEY" \
    -H 'Content-Type: application/json' --data-binary \
    '{"model":"flm://vllm/meta-llama/Llama-3.2-1B-Instruct","messages":[{"role":"user","content":"hi"}]}' "$URL"
keyd_cpu_measure "$FLM" "$URL" "$STATE/req.lua" "$SECS" "$CONC"
