#!/bin/sh
# Egress through SOCKS5 (issue 17): egress.mode socks5 or tor, per engine
# engines.ID.egress; the engine's name goes to the SOCKS server
# (socks5h); user and password (sealed, flm egress password set); real
# servers: microsocks (with authentication) and Dante (without).  Fail
# closed: with the server down, requests are 502 and nothing reaches the
# engine, unless egress.fail_open says to go direct.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/pebble.sh"

command -v microsocks >/dev/null 2>&1 || unavailable "microsocks"
command -v danted >/dev/null 2>&1 || unavailable "danted (dante-server)"

plan 30

mock_init
T=$TMP
# The engine by a name: the one the SOCKS server resolves it to.
LH=$(getent ahosts localhost | awk 'NR == 1 { print $1 }')
case $LH in *:*) LHL="[$LH]" ;; *) LHL=$LH ;; esac
mock --flavor vllm --models m --listen "$LHL:0"
P=$MPORT
mock --flavor ollama --models near
PN=$MPORT
S1=$(free_port)
microsocks -i 127.0.0.1 -p "$S1" -u flm -P "s0cks-pw" >"$T/ms.log" 2>&1 &
MS=$!
MOCK_PIDS="$MOCK_PIDS $MS"
S2=$(free_port)
microsocks -i 127.0.0.1 -p "$S2" >"$T/tor.log" 2>&1 &
MOCK_PIDS="$MOCK_PIDS $!"
wait_until 3000 sh -c "curl -s -m 1 --socks5-hostname 127.0.0.1:$S2 http://127.0.0.1:$P/__mock/stats >/dev/null"

check "suite starts" suite_start
F="$FLM -D $STATE"
KEY=$($F api-keys create --label e --json | jq -r .key)
PORT=$($F proxy start --port 0 --json | jq .port)
U=http://127.0.0.1:$PORT
set_() { $F config set "$1" "$2" >/dev/null; }
chat() {
	curl -s -m 15 -o "$T/chat.out" -w '%{http_code}' \
	    -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \
	    -d '{"model":"'"${1:-flm://gpu/m}"'","messages":[{"role":"user","content":"hi"}]}' \
	    "$U/v1/chat/completions"
}
chats() { curl -s -m 5 "http://127.0.0.1:$P/__mock/stats" | jq '.by_path["/v1/chat/completions"] // 0'; }

# ---- settings ---------------------------------------------------------------
checkx "egress settings refuse what they cannot use" \
    '! $F config set egress.mode vpn >/dev/null 2>&1 &&
    ! $F config set egress.socks5 127.0.0.1 >/dev/null 2>&1 &&
    ! $F config set egress.tor "host:99999" >/dev/null 2>&1 &&
    ! $F config set egress.fail_open maybe >/dev/null 2>&1 &&
    ! $F config set engines.x.egress vpn >/dev/null 2>&1 &&
    $F config set egress.mode vpn 2>&1 | grep -q "expected direct, tor or socks5"'
set_ engines.gpu.kind vllm
set_ engines.gpu.url "http://localhost:$P"
set_ engines.near.kind ollama
set_ engines.near.url "http://127.0.0.1:$PN"
set_ engines.near.egress direct
set_ egress.mode socks5
detect
checkx "socks5 without egress.socks5: the engine is refused, saying so ($(field gpu reason))" \
    '[ "$(field gpu state)" = ErrorNetwork ] && field gpu reason | grep -q "egress.socks5 is not set"'
checkx "… and a chat for it is 502 with that reason, never direct" \
    '[ "$(chat)" = 502 ] && jq -e ".error.message | test(\"egress.socks5 is not set\")" "$T/chat.out" >/dev/null &&
    [ "$(chats)" = 0 ]'

# ---- microsocks, with a user and password ------------------------------------
set_ egress.socks5 "127.0.0.1:$S1"
set_ egress.socks5_user flm
code=$(chat)
checkx "a user but no password: 502 egress_failed saying what to do ($code)" \
    '[ "$code" = 502 ] && jq -e ".error.code == \"egress_failed\" and (.error.message | test(\"flm egress password set\"))" "$T/chat.out" >/dev/null'
echo wrong-pw | $F egress password set >/dev/null
code=$(chat)
checkx "a wrong password: 502 saying the server refused it ($code)" \
    '[ "$code" = 502 ] && jq -e ".error.code == \"egress_failed\" and (.error.message | test(\"refused user flm|User was rejected\"))" "$T/chat.out" >/dev/null'
out=$(echo s0cks-pw | $F egress password set --json)
checkx "flm egress password set: sealed as egress:socks5 ($out)" \
    'json_has "$out" ".name == \"egress:socks5\" and .sealed == true"'
detect
check "through microsocks, by name: RunningHealthy ($(field gpu state): $(field gpu reason))" \
    [ "$(field gpu state)" = RunningHealthy ]
code=$(chat)
checkx "a chat goes through it and is answered ($code)" \
    '[ "$code" = 200 ] && jq -e ".choices[0].message.content | test(\"mock vllm\")" "$T/chat.out" >/dev/null'
code=$(curl -s -m 15 -o "$T/sse.out" -w '%{http_code}' -H "Authorization: Bearer $KEY" \
    -H 'Content-Type: application/json' \
    -d '{"model":"flm://gpu/m","stream":true,"messages":[{"role":"user","content":"hi"}]}' "$U/v1/chat/completions")
checkx "a stream too ($code)" '[ "$code" = 200 ] && grep -q "data: \[DONE\]" "$T/sse.out"'
checkx "an engine set direct is reached directly (engines.near.egress)" \
    '[ "$(chat flm://near/near)" = 200 ]'
st=$($F proxy status --json)
checkx "flm proxy status shows the egress and its health" \
    'json_has "$st" ".[0].egress.mode == \"socks5\" and .[0].egress.port == $S1 and .[0].egress.user == \"flm\" and .[0].egress.healthy == true"'

# ---- fail closed -------------------------------------------------------------
kill "$MS"; wait "$MS" 2>/dev/null
n0=$(chats)
code=$(chat)
checkx "microsocks stopped: 502 egress_unreachable, nothing goes direct ($code)" \
    '[ "$code" = 502 ] && jq -e ".error.code == \"egress_unreachable\" and (.error.message | test(\"nothing goes direct\"))" "$T/chat.out" >/dev/null'
checkx "… and the engine, reachable directly, got no request ($n0 -> $(chats))" '[ "$(chats)" = "$n0" ]'
detect
checkx "the probe says the egress is down: ErrorNetwork ($(field gpu reason))" \
    '[ "$(field gpu state)" = ErrorNetwork ] && field gpu reason | grep -q "egress socks5 at 127.0.0.1 port $S1"'
checkx "… the engine set direct still answers" '[ "$(chat flm://near/near)" = 200 ]'
checkx "flm-proxyd's log says it refused" \
    'grep -q "egress socks5 at 127.0.0.1 port $S1 unreachable" "$STATE/flmd.log"'
st=$($F proxy status --json)
checkx "flm proxy status says the egress is down, and why" \
    'json_has "$st" ".[0].egress.healthy == false and (.[0].egress.last_error | test(\"port $S1\"))"'
check "flm proxy start refuses to start with the egress down (PROXY_INVALID_CONFIG)" \
    fails_with "PROXY_INVALID_CONFIG: egress socks5 at 127.0.0.1 port $S1" $F proxy start --port 0
set_ egress.fail_open yes
code=$(chat)
checkx "egress.fail_open yes: the request goes direct and is answered ($code)" \
    '[ "$code" = 200 ] && [ "$(chats)" -gt "$n0" ]'
checkx "… and that is logged" 'grep -q "going direct (egress.fail_open)" "$STATE/flmd.log"'
detect
check "… the probe goes direct too: RunningHealthy ($(field gpu state): $(field gpu reason))" \
    [ "$(field gpu state)" = RunningHealthy ]
set_ egress.fail_open no

# ---- Dante, without authentication ------------------------------------------
S3=$(free_port)
cat >"$T/dante.conf" <<EOF
logoutput: stderr
internal: 127.0.0.1 port = $S3
external: 127.0.0.1
clientmethod: none
socksmethod: none
client pass { from: 127.0.0.0/8 to: 0.0.0.0/0 }
socks pass {
	from: 127.0.0.0/8 to: 0.0.0.0/0
	command: connect
	log: connect
}
EOF
danted -f "$T/dante.conf" -N 1 >"$T/dante.log" 2>&1 &
DANTE=$!
MOCK_PIDS="$MOCK_PIDS $DANTE"
wait_until 5000 sh -c "curl -s -m 1 --socks5-hostname 127.0.0.1:$S3 http://127.0.0.1:$P/__mock/stats >/dev/null" ||
    diag "$(cat "$T/dante.log")"
set_ egress.socks5 "127.0.0.1:$S3"
detect
checkx "through Dante, which asks for no password: healthy, a chat answered" \
    '[ "$(field gpu state)" = RunningHealthy ] && [ "$(chat)" = 200 ]'
# ACME goes out the same way: Dante logs the connection to Pebble.
pebble_start PEBBLE_AUTHZREUSE=0
PA=$(free_port)
out=$($F proxy start --port "$PA" --mode https-acme --domain flm-egress.example.com \
    --acme-directory "$PEBBLE_DIRECTORY" --acme-ca "$PEBBLE_CA" \
    --acme-http-port "$PEBBLE_HTTP_PORT" --json 2>&1)
api=${PEBBLE_DIRECTORY#https://127.0.0.1:}; api=${api%%/*}
checkx "an ACME certificate is had through Dante ($(printf '%s' "$out" | tail -c 200))" \
    'json_has "$out" ".mode == \"https-acme\"" && grep -q "127.0.0.1.$api" "$T/dante.log"'
$F proxy stop --port "$PA" >/dev/null 2>&1
# Its children carry the tunnels already open: all of them go.
pkill -P "$DANTE"; kill "$DANTE"; wait "$DANTE" 2>/dev/null
n0=$(chats)
checkx "Dante stopped: 502, and nothing reached the engine" \
    '[ "$(chat)" = 502 ] && [ "$(chats)" = "$n0" ]'

# ---- tor -------------------------------------------------------------------
set_ egress.mode tor
set_ egress.tor "127.0.0.1:$S2"
detect
checkx "egress.mode tor: through egress.tor, no user offered: healthy, a chat answered" \
    '[ "$(field gpu state)" = RunningHealthy ] && [ "$(chat)" = 200 ]'
checkx "the SOCKS5 password is in no file or log" \
    '! grep -rlaF "s0cks-pw" "$STATE" >/dev/null 2>&1'

# ---- flm config unset --------------------------------------------------------
$F config unset egress.mode >/dev/null
checkx "flm config unset egress.mode: direct again, every engine reached directly" \
    'json_has "$($F proxy status --json)" ".[0].egress == \"direct\"" && [ "$(chat)" = 200 ]'
check "unsetting what is not set says so" \
    fails_with "egress.mode is not set" $F config unset egress.mode
$F config unset engines.gpu.url >/dev/null
checkx "an engine's url unset: the engine is gone from detect" \
    '! $F engines detect --json | jq -e ".[] | select(.id == \"gpu\")" >/dev/null'
