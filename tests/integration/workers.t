#!/bin/sh
# proxy.workers (issue 15): N flm-proxyd processes serve every listener
# (one shared listening socket), each supervised on its own and each
# with its own channel to keyd.  Both serve; one killed leaves the others
# serving and comes back alone; a revoke or a policy change is in force
# in every worker when the command returns; status shows each; the
# number changes live, up and down; SIGTERM drains them all.
. "$(dirname "$0")/lib.sh"

plan 28

mock_init
mock --flavor vllm --models m
ENGINE=$MPORT
WORKERS=2
check "a suite of 2 workers starts" suite_start
F="$FLM -D $STATE"

checkx "proxy.workers refuses 0, 65, -1, 2x and the empty value" \
    '! $F config set proxy.workers 0 >/dev/null 2>&1 &&
    ! $F config set proxy.workers 65 >/dev/null 2>&1 &&
    ! $F config set proxy.workers -1 >/dev/null 2>&1 &&
    ! $F config set proxy.workers 2x >/dev/null 2>&1 &&
    ! $F config set proxy.workers "" >/dev/null 2>&1 &&
    $F config set proxy.workers 65 2>&1 | grep -q "auto or an integer from 1 to 64"'

$F config set engines.m.kind vllm >/dev/null
$F config set engines.m.url "http://127.0.0.1:$ENGINE" >/dev/null
KEY=$($F api-keys create --label workers --json | jq -r .key)
PORT=$($F proxy start --port 0 --json | jq .port)
U=http://127.0.0.1:$PORT
CHAT='{"model":"m","messages":[{"role":"user","content":"hi"}]}'
# codes KEY N [P]: N chats (P at once), one HTTP code a line, each on a new
# connection (so the kernel hands each to whichever worker accepts first).
codes() {
	seq "$2" | xargs -P "${3:-8}" -I{} curl -s -o /dev/null -m 20 \
	    -w '%{http_code}\n' -H "Authorization: Bearer $1" \
	    -H 'Content-Type: application/json' -d "$CHAT" \
	    "$U/v1/chat/completions"
}
# all CODE KEY N [P]: every one of N chats answered CODE.
all() {
	out=$(codes "$2" "$3" "$4")
	[ "$(printf '%s\n' "$out" | grep -c "^$1\$")" = "$3" ] ||
	    { diag "wanted $3 x $1, got: $(printf '%s' "$out" | sort |
	    uniq -c | tr '\n' ' ')"; return 1; }
}
# worker N FIELD: one field of worker N's row in flm status --json.
worker() {
	status_json | jq -r --argjson w "$1" --arg f "$2" \
	    '.processes[] | select(.name == "flm-proxyd" and .worker == $w)
	    | .[$f]'
}
nworkers() { status_json | jq '[.processes[] | select(.name == "flm-proxyd")]
    | length'; }
wait_until 5000 sh -c "curl -s -o /dev/null -m 2 $U/healthz"
served() { [ "$(codes "$KEY" 1)" = 200 ]; }
wait_until 5000 served

# ---- status ------------------------------------------------------------------
W0=$(worker 0 pid)
W1=$(worker 1 pid)
checkx "flm status: two flm-proxyd rows, workers 0 and 1, each its own pid" \
    '[ "$(nworkers)" = 2 ] && pid_alive "$W0" && pid_alive "$W1" &&
    [ "$W0" != "$W1" ] && [ "$(worker 0 state)" = running ] &&
    [ "$(worker 1 state)" = running ]'
checkx "flm proxy status --json: the handle lists both workers" \
    '$F proxy status --json | jq -e ".[0].worker_processes |
    (length == 2) and (map(.worker) == [0, 1]) and
    (map(.name) == [\"flm-proxyd\", \"flm-proxyd\"])" >/dev/null'

# ---- both serve ----------------------------------------------------------------
check "60 chats on new connections, 6 at once: all answered" all 200 "$KEY" 60 6
got_both() {
	[ "$(worker 0 requests)" -gt 0 ] && [ "$(worker 1 requests)" -gt 0 ] &&
	    [ $(($(worker 0 requests) + $(worker 1 requests))) -ge 60 ]
}
checkx "each worker served some of them (its own count in flm status)" \
    'wait_until 4000 got_both ||
    { diag "worker 0: $(worker 0 requests), worker 1: $(worker 1 requests)";
    false; }'
# A stopped worker accepts nothing: the other must answer everything.
kill -STOP "$W0"
check "worker 0 stopped: worker 1 answers all of 20" all 200 "$KEY" 20 4
kill -CONT "$W0"
kill -STOP "$W1"
check "worker 1 stopped: worker 0 answers all of 20" all 200 "$KEY" 20 4
kill -CONT "$W1"

# ---- one dies, alone -----------------------------------------------------------
kill -KILL "$W1"
check "worker 1 killed: the other serves at once, all of 20" all 200 "$KEY" 20 4
back() { pid_alive "$(worker 1 pid)" && [ "$(worker 1 pid)" != "$W1" ] &&
    [ "$(worker 1 state)" = running ]; }
checkx "worker 1 comes back on its own, restarts 1" \
    'wait_until 5000 back && [ "$(worker 1 restarts)" = 1 ]'
checkx "worker 0 and keyd were left alone" \
    '[ "$(worker 0 pid)" = "$W0" ] && [ "$(worker 0 restarts)" = 0 ] &&
    [ "$(proc_field flm-keyd restarts)" = 0 ]'
W1=$(worker 1 pid)
check "after its restart both serve: 20 of 20" all 200 "$KEY" 20

# ---- a revoke and a policy reach every worker before the command returns -----
R=$($F api-keys create --label revokeme --json | jq -r .key)
# Verdicts cached in both workers first (20 chats), then revoked.
check "the key to revoke works in both (20 of 20)" all 200 "$R" 20
$F api-keys revoke revokeme >/dev/null
# refused N: none of N chats with the revoked key gets through: 401, or
# 429 once a worker has seen too many failures from this address.
refused() {
	out=$(codes "$R" "$1")
	[ "$(printf '%s\n' "$out" | grep -c '^401$')" -ge 1 ] &&
	    ! printf '%s\n' "$out" | grep -Eqv '^(401|429)$' ||
	    { diag "got: $(printf '%s' "$out" | sort | uniq -c | tr '\n' ' ')";
	    false; }
}
check "revoked: refused by every worker at once (20 of 20: 401 or 429)" \
    refused 20
pset() { printf '%s' "$1" | $F security policy set >/dev/null; }
pset '{"ip_allowlist":["10.0.0.0/8"]}'
check "a policy without loopback: refused by every worker at once (403)" \
    all 403 "$KEY" 20
pset '{"ip_allowlist":[]}'
check "loopback again: served by every worker at once" all 200 "$KEY" 20
checkx "no worker was restarted for it (each confirmed)" \
    '[ "$(worker 0 pid)" = "$W0" ] && [ "$(worker 1 pid)" = "$W1" ] &&
    ! grep -q "did not confirm" "$STATE/flmd.log"'

# ---- live changes --------------------------------------------------------------
# A client keeps asking throughout: no request may fail.
(while [ ! -e "$TMP/stop" ]; do codes "$KEY" 4 2; done >"$TMP/live") \
    2>/dev/null &
LIVE=$!
$F config set proxy.workers 4 >/dev/null
up4() { [ "$(nworkers)" = 4 ] && [ "$(worker 3 state)" = running ] &&
    [ "$(worker 2 state)" = running ]; }
check "proxy.workers 4: two more start" wait_until 5000 up4
checkx "the first two kept running" \
    '[ "$(worker 0 pid)" = "$W0" ] && [ "$(worker 1 pid)" = "$W1" ]'
W3=$(worker 3 pid)
$F config set proxy.workers 1 >/dev/null
down1() { [ "$(nworkers)" = 1 ] && ! pid_alive "$W1" && ! pid_alive "$W3"; }
check "proxy.workers 1: the other three drain and stop" wait_until 8000 down1
checkx "...drained, exiting 0, and not restarted" \
    '[ "$(grep -c "drained and stopped (exit 0)" "$STATE/flmd.log")" = 3 ] &&
    sleep 0.5 && [ "$(nworkers)" = 1 ] && [ "$(worker 0 pid)" = "$W0" ]'
touch "$TMP/stop"
wait "$LIVE"
checkx "the client asking throughout got 200 every time" \
    '[ -s "$TMP/live" ] && ! grep -qv "^200\$" "$TMP/live" ||
    { diag "$(sort "$TMP/live" | uniq -c)"; false; }'

# ---- a rate limit is exact across 4 workers ----------------------------------------
# 60 a minute for one address, its 120 requests spread over 4 workers:
# 60 (±1) pass, and one more for each second the burst took (the bucket
# refills at 1/s); per-worker buckets would let all 120 through.  The
# buckets are in the region flmd shares with every worker.
$F config set proxy.workers 4 >/dev/null
check "proxy.workers 4 again: four running" wait_until 5000 up4
# hz3 N: N GETs of /healthz from 127.0.0.3 (a bucket of its own), 8 at
# once, each on a new connection; one HTTP code a line.
hz3() {
	seq "$1" | xargs -P 8 -I{} curl -s -o /dev/null -m 20 \
	    -w '%{http_code}\n' --interface 127.0.0.3 "$U/healthz"
}
sum4() { echo $(($(worker 0 requests) + $(worker 1 requests) +
    $(worker 2 requests) + $(worker 3 requests))); }
check "the workers share the rate-limit region" \
    grep -q "rate limits shared with the other workers" "$STATE/flmd.log"
for w in 0 1 2 3; do eval "B$w=\$(worker $w requests)"; done
before=$(sum4)
$F security rate-limit ip --requests 60 >/dev/null
t0=$(date +%s)
out=$(hz3 120)
t1=$(date +%s)
n=$(printf '%s\n' "$out" | grep -c '^200$')
most=$((61 + t1 - t0 + 1))
checkx "60 a minute over 4 workers: 60 of 120 pass (59 to $most in $((t1 - t0)) s), the rest 429 (got $n)" \
    '[ "$n" -ge 59 ] && [ "$n" -le "$most" ] && [ "$most" -lt 120 ] &&
    [ "$(printf "%s\n" "$out" | grep -c "^429\$")" = $((120 - n)) ]'
spread() { [ $(($(sum4) - before)) -ge 120 ] &&
    [ "$(worker 0 requests)" -gt "$B0" ] &&
    [ "$(worker 1 requests)" -gt "$B1" ] &&
    [ "$(worker 2 requests)" -gt "$B2" ] &&
    [ "$(worker 3 requests)" -gt "$B3" ]; }
check "...answered by all 4 workers" wait_until 4000 spread
$F security rate-limit ip --requests 0 >/dev/null

# ---- SIGTERM drains every worker -----------------------------------------------
$F config set proxy.workers 2 >/dev/null
two() { [ "$(nworkers)" = 2 ] && [ "$(worker 0 state)" = running ] &&
    [ "$(worker 1 state)" = running ]; }
wait_until 8000 two
W1=$(worker 1 pid)
kill -TERM "$FLMD_PID"
gone() { ! pid_alive "$FLMD_PID" && ! pid_alive "$W0" && ! pid_alive "$W1"; }
check "SIGTERM: flmd and both workers exit" wait_until 8000 gone
checkx "...after draining both (flm-proxyd drained, 2 workers)" \
    'grep -q "draining flm-proxyd (2 workers)" "$STATE/flmd.log" &&
    grep -q "flm-proxyd drained" "$STATE/flmd.log" &&
    ! grep -q "did not stop cleanly" "$STATE/flmd.log"'
wait "$FLMD_PID" 2>/dev/null
FLMD_PID=
