#!/bin/sh
# SIGTERM to flmd drains (SPEC §1): the listeners close at once, a stream
# under way runs to its end, its audit record reaches keyd, and flmd
# exits after it; proxy.drain_timeout cuts what runs longer, at a chunk
# boundary, and a second signal stops everything at once.
. "$(dirname "$0")/lib.sh"

plan 20

mock_init
# 30 chunks 60 ms apart: a stream of about 1.8 s.
mock --flavor vllm --models slow --chunks 30 --chunk-delay-ms 60
SLOW=$MPORT
# One that would outlast any drain (100000 chunks, 50 ms apart).
mock --flavor vllm --models endless --chunks 100000 --chunk-delay-ms 50
ENDLESS=$MPORT
check "suite starts" suite_start
F="$FLM -D $STATE"

# The setting: 0 to 300 seconds, like the other proxy.* limits.
checkx "proxy.drain_timeout refuses 301 and -1, naming the range" \
    '! $F config set proxy.drain_timeout 301 >/dev/null 2>&1 &&
    ! $F config set proxy.drain_timeout -1 >/dev/null 2>&1 &&
    $F config set proxy.drain_timeout 301 2>&1 | grep -q "from 0 to 300"'

$F config set engines.slow.kind vllm >/dev/null
$F config set engines.slow.url "http://127.0.0.1:$SLOW" >/dev/null
$F config set engines.endless.kind vllm >/dev/null
$F config set engines.endless.url "http://127.0.0.1:$ENDLESS" >/dev/null
KEY=$($F api-keys create --label drain --json | jq -r .key)
PORT=$($F proxy start --port 0 --json | jq .port)
U=http://127.0.0.1:$PORT
A="Authorization: Bearer $KEY"
chat() { printf '{"model":"%s","stream":true,"messages":[{"role":"user","content":"hi"}]}' "$1"; }
# A TLS proxy too (its certificate is not the point here: -k).
TPORT=$(free_port)
$F proxy start --bind 127.0.0.1 --port "$TPORT" --mode dev-selfsigned \
    >/dev/null 2>&1
T=https://127.0.0.1:$TPORT
wait_until 5000 sh -c "curl -sk -o /dev/null -m 2 $T/healthz"
# stream MODEL FILE [BASE]: a streamed chat in the background, its pid in
# CPID and curl's exit status in FILE.rc once it ends.
stream() {
	(curl -sNk -m 30 -H "$A" -d "$(chat "$1")" \
	    "${3:-$U}/v1/chat/completions" >"$2"; echo $? >"$2.rc") 2>/dev/null &
	CPID=$!
	wait_until 5000 grep -qs '^data: {' "$2"
}
# refused [BASE]: a new connection to the port gets ECONNREFUSED (curl: 7).
refused() { curl -sk -o /dev/null -m 2 "${1:-$U}/healthz"; [ $? = 7 ]; }
# whole FILE: curl ended well, with every chunk, then data: [DONE].
whole() {
	[ "$(cat "$1.rc")" = 0 ] && [ "$(grep -c '^data: {' "$1")" -ge 30 ] &&
	    [ "$(grep '^data:' "$1" | tail -n 1)" = "data: [DONE]" ]
}
now_ms() { date +%s%3N; }
flmd_gone() { ! kill -0 "$FLMD_PID" 2>/dev/null; }

# ---- a stream under way finishes ---------------------------------------------
stream slow "$TMP/t1" "$T"
TPID=$CPID
stream slow "$TMP/s1"
check "a stream is under way, plain and over TLS" \
    grep -q '^data: {' "$TMP/s1" "$TMP/t1"
# A client that has just connected when the drain begins, its request
# still on its way (0.5 s later): answered, not closed unanswered.
(sleep 0.5; printf 'GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n') |
    "$top_builddir/tests/http-raw" -t 3000 "$PORT" >"$TMP/fresh" 2>&1 &
FRESH=$!
sleep 0.2
t0=$(now_ms)
kill -TERM "$FLMD_PID"
checkx "SIGTERM: a new connection to the proxy's port is refused at once" \
    'wait_until 500 refused'
checkx "and to the TLS proxy's port" 'refused "$T"'
sleep 0.3
checkx "flmd is still running while the stream goes on" \
    '! flmd_gone && [ "$(cat "$TMP/s1.rc" 2>/dev/null)" = "" ]'
wait "$FRESH"
checkx "a connection accepted just before, its request 0.5 s later: answered (200)" \
    'head -n 1 "$TMP/fresh" | grep -q "^HTTP/1.1 200"'
wait "$CPID"
t1=$(now_ms)
wait "$TPID"
checkx "the client gets the whole stream, to data: [DONE] ($(grep -c '^data: {' "$TMP/s1") chunks)" \
    'whole "$TMP/s1"'
checkx "so does the TLS client ($(grep -c '^data: {' "$TMP/t1") chunks)" \
    'whole "$TMP/t1"'
wait "$FLMD_PID"
rc=$?
t2=$(now_ms)
FLMD_PID=
checkx "flmd exits 0 after the stream, not at the timeout (stream $((t1 - t0)) ms, exit $((t2 - t0)) ms)" \
    '[ $rc = 0 ] && [ $((t1 - t0)) -ge 1000 ] && [ $((t2 - t0)) -lt 6000 ]'
checkx "the log says proxyd drained, and no child was killed" \
    'grep -q "flm-proxyd drained" "$STATE/flmd.log" &&
    ! grep -q "did not stop\|killing it" "$STATE/flmd.log"'

# The ports are free: a new flmd serves the same one.
suite_restart "$PORT"
F="$FLM -D $STATE"
checkx "after a restart both streamed requests are in the audit trail, status 200" \
    'json_has "$($F audit tail -n 5 --json)" \
    "[.records[] | select(.model == \"slow\" and .status == 200)] | length == 2"'

# ---- proxy.drain_timeout cuts what runs longer --------------------------------
$F config set proxy.drain_timeout 1 >/dev/null
stream endless "$TMP/s2"
t0=$(now_ms)
kill -TERM "$FLMD_PID"
wait "$FLMD_PID"
t2=$(now_ms)
FLMD_PID=
wait "$CPID"
checkx "drain_timeout 1 and an endless stream: flmd exits in about 1 s ($((t2 - t0)) ms)" \
    '[ $((t2 - t0)) -ge 900 ] && [ $((t2 - t0)) -lt 3500 ]'
checkx "the log says one request was cut" \
    'grep -q "drain: 1 request cut after 1 s" "$STATE/flmd.log"'
checkx "the client sees a cut answer (curl: 18), no [DONE]" \
    '[ "$(cat "$TMP/s2.rc")" = 18 ] && ! grep -q "\[DONE\]" "$TMP/s2"'
# The last line with data is a whole SSE event: cut after a whole chunk.
checkx "cut after a whole chunk: the last event is complete JSON" \
    'grep "^data: {" "$TMP/s2" | tail -n 1 | sed "s/^data: //" | jq -e .id >/dev/null'
suite_restart "$PORT"
F="$FLM -D $STATE"
checkx "the cut request is in the audit trail too (status 503)" \
    'json_has "$($F audit tail -n 5 --json)" \
    "[.records[] | select(.model == \"endless\" and .status == 503)] | length == 1"'

# ---- a second signal does not wait --------------------------------------------
$F config set proxy.drain_timeout 300 >/dev/null
stream endless "$TMP/s3"
kill -TERM "$FLMD_PID"
sleep 0.3
checkx "with proxy.drain_timeout 300 flmd still waits after 0.3 s" \
    '! flmd_gone'
t0=$(now_ms)
kill -INT "$FLMD_PID"
wait "$FLMD_PID"
t2=$(now_ms)
FLMD_PID=
wait "$CPID"
checkx "a second signal (SIGINT) stops it at once ($((t2 - t0)) ms)" \
    '[ $((t2 - t0)) -lt 1500 ] && grep -q "while draining: stopping now" "$STATE/flmd.log"'

# drain_timeout 0: nothing waits.
suite_restart "$PORT"
F="$FLM -D $STATE"
$F config set proxy.drain_timeout 0 >/dev/null
stream endless "$TMP/s4"
t0=$(now_ms)
kill -TERM "$FLMD_PID"
wait "$FLMD_PID"
t2=$(now_ms)
FLMD_PID=
wait "$CPID"
checkx "proxy.drain_timeout 0: the stream is cut at once ($((t2 - t0)) ms)" \
    '[ $((t2 - t0)) -lt 1500 ] && [ "$(cat "$TMP/s4.rc")" = 18 ]'
