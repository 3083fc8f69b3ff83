#!/bin/sh
# An engine reachable only through a SOCKS5 server (issue 17): the
# engine lives in a network namespace that only the SOCKS server's
# namespace reaches (and that one does not route).  FLM, on the host,
# reaches it through microsocks; with microsocks gone nothing gets
# there, not even with egress.fail_open.  Root only (network
# namespaces); the rest of egress is tests/integration/egress.t.
. "$(dirname "$0")/lib.sh"

command -v microsocks >/dev/null 2>&1 || unavailable "microsocks"
command -v ip >/dev/null 2>&1 || unavailable "ip is not installed (iproute2)"
if [ "$(id -u)" -ne 0 ]; then
	echo "1..0 # SKIP network namespaces need root"
	exit 0
fi

NX=flmeg$$x
NE=flmeg$$e
VH=egh$$
VX=egx$$
VY=egy$$
VE=ege$$
HOST_IP=10.78.0.1
SX_IP=10.78.0.2
SY_IP=10.78.1.1
ENG_IP=10.78.1.2
EPORT=18000
SPORT=1080
TMP=$(mktemp -d "${TMPDIR:-/tmp}/flmeg.XXXXXX")
PIDS=
eg_cleanup() {
	for p in $PIDS; do kill "$p" 2>/dev/null; done
	suite_cleanup
	ip netns del "$NX" 2>/dev/null
	ip netns del "$NE" 2>/dev/null
	ip link del "$VH" 2>/dev/null
	ip route del unreachable "$ENG_IP/32" 2>/dev/null
	rm -rf "$TMP"
}
trap eg_cleanup EXIT
trap 'exit 1' INT TERM HUP

if ! { ip netns add "$NX" && ip netns add "$NE" &&
    ip link add "$VH" type veth peer name "$VX" &&
    ip link set "$VX" netns "$NX" &&
    ip link add "$VY" type veth peer name "$VE" &&
    ip link set "$VY" netns "$NX" && ip link set "$VE" netns "$NE" &&
    ip addr add "$HOST_IP/30" dev "$VH" && ip link set "$VH" up &&
    ip -n "$NX" link set lo up && ip -n "$NE" link set lo up &&
    ip -n "$NX" addr add "$SX_IP/30" dev "$VX" &&
    ip -n "$NX" addr add "$SY_IP/30" dev "$VY" &&
    ip -n "$NE" addr add "$ENG_IP/30" dev "$VE" &&
    ip -n "$NX" link set "$VX" up && ip -n "$NX" link set "$VY" up &&
    ip -n "$NE" link set "$VE" up &&
    ip netns exec "$NX" sysctl -qw net.ipv4.ip_forward=0 &&
    ip route add unreachable "$ENG_IP/32"; } 2>"$TMP/ip.err"; then
	echo "1..0 # SKIP cannot make network namespaces here: $(cat "$TMP/ip.err")"
	exit 0
fi

plan 8

ip netns exec "$NE" "$top_builddir/tests/mock-engine/flm-mock-engine" \
    --flavor vllm --models far --listen "$ENG_IP:$EPORT" >"$TMP/mock.log" 2>&1 &
PIDS="$PIDS $!"
ip netns exec "$NX" microsocks -i "$SX_IP" -p "$SPORT" >"$TMP/ms.log" 2>&1 &
MS=$!
PIDS="$PIDS $MS"
wait_until 3000 sh -c "curl -s -m 1 --socks5-hostname $SX_IP:$SPORT http://$ENG_IP:$EPORT/__mock/stats >/dev/null"
code=$(curl -s -o /dev/null -m 2 -w '%{http_code}' "http://$ENG_IP:$EPORT/__mock/stats")
check "from the host the engine cannot be reached directly ($code)" [ "$code" = 000 ]

check "suite starts" suite_start
F="$FLM -D $STATE"
KEY=$($F api-keys create --label n --json | jq -r .key)
$F config set engines.far.kind vllm >/dev/null
$F config set engines.far.url "http://$ENG_IP:$EPORT" >/dev/null
$F config set engines.far.egress socks5 >/dev/null
$F config set egress.socks5 "$SX_IP:$SPORT" >/dev/null
PORT=$($F proxy start --port 0 --json | jq .port)
chat() {
	curl -s -m 15 -o "$TMP/chat.out" -w '%{http_code}' \
	    -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \
	    -d '{"model":"flm://far/far","messages":[{"role":"user","content":"hi"}]}' \
	    "http://127.0.0.1:$PORT/v1/chat/completions"
}
DET=$($F engines detect --json)
st=$(echo "$DET" | jq -r '.[] | select(.id == "far") | .state')
check "through the SOCKS server the probe finds it: RunningHealthy ($st)" \
    [ "$st" = RunningHealthy ]
code=$(chat)
checkx "a chat through it is answered ($code)" \
    '[ "$code" = 200 ] && jq -e ".choices[0].message.content | test(\"mock vllm\")" "$TMP/chat.out" >/dev/null'
kill "$MS"; wait "$MS" 2>/dev/null
code=$(chat)
checkx "the SOCKS server gone: 502 egress_unreachable ($code)" \
    '[ "$code" = 502 ] && jq -e ".error.code == \"egress_unreachable\"" "$TMP/chat.out" >/dev/null'
$F config set egress.fail_open yes >/dev/null
DET=$($F engines detect --json)
st=$(echo "$DET" | jq -r '.[] | select(.id == "far") | .state')
checkx "with egress.fail_open the probe, gone direct, does not find it ($st)" \
    '[ "$st" != RunningHealthy ] && [ "$st" != RunningDegraded ]'
code=$(chat)
check "… nor does a chat ($code)" [ "$code" != 200 ]
n=$(ip netns exec "$NE" curl -s -m 5 "http://$ENG_IP:$EPORT/__mock/stats" |
    jq '.by_path["/v1/chat/completions"] // 0')
check "the engine answered exactly the one chat that came through ($n)" [ "$n" = 1 ]
