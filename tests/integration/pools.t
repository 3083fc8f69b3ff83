#!/bin/sh
# Pools (issue 17): engines serving the same model name form a pool; a
# bare name or flm://pool/NAME is balanced across it (least outstanding,
# priority, round-robin; affinity by API key), flm://ENGINE/MODEL still
# pins one.  A member that fails before answering (refused, reset, 503)
# has the request retried once on another; a member killed under load
# costs no un-started request; its circuit breaker opens, and a trial
# closes it once it is back.  A stream it was sending ends with an error
# event, cleanly.
. "$(dirname "$0")/lib.sh"

plan 20

mock_init
T=$TMP
# start NAME: a vllm mock serving "shared" (and NAME-only), port in P_NAME.
start() {
	mock --flavor vllm --models "shared,$1-only" --latency-ms 40 \
	    ${2:+--listen "127.0.0.1:$2"}
	eval "P_$1=$MPORT PID_$1=\${MOCK_PIDS##* }"
}
start a; start b; start c
mock --flavor vllm --models slow --chunks 40 --chunk-delay-ms 100
P_d=$MPORT; PID_d=${MOCK_PIDS##* }

check "suite starts" suite_start
F="$FLM -D $STATE"
KEY=$($F api-keys create --label p1 --json | jq -r .key)
KEY2=$($F api-keys create --label p2 --json | jq -r .key)
for e in a b c d; do
	$F config set "engines.$e.kind" vllm >/dev/null
	eval "$F config set engines.$e.url http://127.0.0.1:\$P_$e" >/dev/null
done
$F config set proxy.breaker_secs 2 >/dev/null
PORT=$($F proxy start --port 0 --json | jq .port)
U=http://127.0.0.1:$PORT
$F engines detect >/dev/null
# n ENGINE: the chats ENGINE answered so far.
n() { eval "p=\$P_$1"; curl -s -m 5 "http://127.0.0.1:$p/__mock/stats" |
    jq '.by_path["/v1/chat/completions"] // 0'; }
counts() { echo "$(n a) $(n b) $(n c)"; }
# chats N P MODEL [KEY]: N chats, P at once; one status a line.
chats() {
	seq "$1" | xargs -P "$2" -I{} curl -s -o /dev/null -m 20 -w '%{http_code}\n' \
	    -H "Authorization: Bearer ${4:-$KEY}" -H 'Content-Type: application/json' \
	    -d "{\"model\":\"$3\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}" \
	    "$U/v1/chat/completions"
}
all200() { [ "$(printf '%s\n' "$1" | grep -vc '^200$')" = 0 ]; }

ml=$($F models list --json)
checkx "models list shows the pool of each shared model" \
    'json_has "$ml" "[.[] | select(.model == \"shared\") | .pool | sort] | length == 3 and all(. == [\"a\",\"b\",\"c\"])" &&
    json_has "$ml" "[.[] | select(.model == \"a-only\") | has(\"pool\")] == [false]"'
checkx "… and the text table has a POOL column" \
    'script -qec "$F models list" /dev/null | grep "flm://a/shared" | grep -q "a,b,c"'

# ---- balancing ---------------------------------------------------------------
b0=$(counts)
out=$(chats 30 6 shared)
b1=$(counts)
checkx "30 chats for a bare pooled name, 6 at once: all answered" 'all200 "$out"'
checkx "… spread over the three engines ($b0 -> $b1)" \
    'set -- $b0 $b1; [ $4 -gt $1 ] && [ $5 -gt $2 ] && [ $6 -gt $3 ]'
b0=$(counts); out=$(chats 5 1 flm://a/shared); b1=$(counts)
checkx "flm://a/shared still pins a ($b0 -> $b1)" \
    'all200 "$out" && set -- $b0 $b1 && [ $4 = $(($1 + 5)) ] && [ $5 = $2 ] && [ $6 = $3 ]'
out=$(chats 3 1 flm://pool/shared)
checkx "flm://pool/shared names the pool" 'all200 "$out"'
$F config set pools.policy round-robin >/dev/null
b0=$(counts); out=$(chats 9 1 shared); b1=$(counts)
checkx "round-robin: 9 chats, 3 each ($b0 -> $b1)" \
    'all200 "$out" && set -- $b0 $b1 && [ $4 = $(($1 + 3)) ] && [ $5 = $(($2 + 3)) ] && [ $6 = $(($3 + 3)) ]'
$F config set pools.policy priority >/dev/null
$F config set engines.b.priority 90 >/dev/null
$F engines detect >/dev/null
b0=$(counts); out=$(chats 6 2 shared); b1=$(counts)
checkx "priority: engines.b.priority 90 takes them all ($b0 -> $b1)" \
    'all200 "$out" && set -- $b0 $b1 && [ $5 = $(($2 + 6)) ] && [ $4 = $1 ] && [ $6 = $3 ]'
$F config set pools.policy least-outstanding >/dev/null
$F config set engines.b.priority 50 >/dev/null
$F config set pools.affinity key >/dev/null
$F engines detect >/dev/null
b0=$(counts); out=$(chats 8 1 shared); b1=$(counts)
checkx "pools.affinity key: one key's 8 chats all on one engine ($b0 -> $b1)" \
    'all200 "$out" && set -- $b0 $b1 &&
    [ "$(( ($4 - $1 == 8) + ($5 - $2 == 8) + ($6 - $3 == 8) ))" = 1 ]'
$F config set pools.affinity none >/dev/null

# ---- a 503 before the answer -------------------------------------------------
curl -s -m 5 -X POST "http://127.0.0.1:$P_c/__mock/fail?mode=loading" >/dev/null
out=$(chats 12 3 shared)
checkx "a member answering 503: every chat retried elsewhere, all answered" 'all200 "$out"'
checkx "… and logged as gone to another engine" \
    'grep -q "engine c: it answered 503; request .* goes to another engine of its pool" "$STATE/flmd.log"'
curl -s -m 5 -X POST "http://127.0.0.1:$P_c/__mock/fail?mode=none" >/dev/null

# ---- a member killed under load ---------------------------------------------
(chats 150 6 shared >"$T/load.out") &
LOAD=$!
sleep 0.3
kill -KILL "$PID_b"
wait "$LOAD"
codes=$(sort "$T/load.out" | uniq -c | tr '\n' ' ')
checkx "b killed during 150 chats: not one failed ($codes)" \
    '[ "$(grep -c "^200$" "$T/load.out")" = 150 ]'
checkx "b's circuit breaker opened, and the log says so" \
    'grep -q "engine b: circuit breaker open after" "$STATE/flmd.log"'
det=$($F engines detect --json)
checkx "flm engines detect shows b's breaker open" \
    'json_has "$det" ".[] | select(.id == \"b\") | .breaker.state == \"open\" or .breaker.state == \"half-open\""'
checkx "… and the others' closed" \
    'json_has "$det" "[.[] | select(.id == \"a\" or .id == \"c\") | .breaker.state] == [\"closed\",\"closed\"]"'
start b "$P_b"
sleep 2.2
$F engines detect >/dev/null
out=$(chats 12 1 shared)
checkx "b back: after proxy.breaker_secs a trial closes its breaker" \
    'all200 "$out" && grep -q "engine b: circuit breaker closed" "$STATE/flmd.log" &&
    json_has "$($F engines detect --json)" ".[] | select(.id == \"b\") | .breaker.state == \"closed\""'

# ---- a stream cut by its engine ---------------------------------------------
curl -s -N -m 30 -o "$T/stream.out" -H "Authorization: Bearer $KEY" \
    -H 'Content-Type: application/json' \
    -d '{"model":"flm://d/slow","stream":true,"messages":[{"role":"user","content":"hi"}]}' \
    "$U/v1/chat/completions" &
CURL=$!
wait_until 5000 sh -c "grep -q 'data: {' '$T/stream.out'"
kill -KILL "$PID_d"
wait "$CURL"; rc=$?
checkx "a stream whose engine dies ends with an error event, cleanly (curl exit $rc)" \
    '[ "$rc" = 0 ] && tail -n 3 "$T/stream.out" | grep -q "^data: {\"error\":{\"message\":\"Engine d: " &&
    ! grep -q "data: \[DONE\]" "$T/stream.out"'
checkx "… and it was not retried on another engine (the answer had begun)" \
    '! grep -q "engine d: .* goes to another engine" "$STATE/flmd.log"'
stream_audited() {
	$F audit tail -n 5 --json | jq -e '[.records[] |
	    select(.model == "flm://d/slow") | .status] | last == 502' >/dev/null
}
check "… and the audit trail records it as 502" wait_until 3000 stream_audited
