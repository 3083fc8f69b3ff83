#!/bin/sh
# flm firewall with nftables, in two network namespaces made here and
# joined by a veth pair: a server namespace (flmd, its proxy on
# 0.0.0.0, an engine bound to 0.0.0.0 on a configured port) and a
# client namespace with two addresses, one allowlisted.  apply drops
# the engine port from the client (a timeout, not a refusal) but not
# from loopback, and the proxy port from the address not allowlisted;
# rollback restores; an unconfirmed apply rolls back by itself; a
# confirmed one stays; every change is logged.  The host's own ruleset
# is never touched.  As non-root: preview shows the rules, apply is
# refused (nft is run only as root, and only a root-owned nft: a user
# namespace's fake root cannot pass for that).
. "$(dirname "$0")/lib.sh"

NFT=
for d in /usr/sbin /sbin /usr/bin /bin; do
	[ -x "$d/nft" ] && NFT=$d/nft && break
done
[ -n "$NFT" ] || unavailable "nft is not installed (nftables)"
command -v ip >/dev/null 2>&1 || unavailable "ip is not installed (iproute2)"

# hostile: flm firewall in front of tests/fake-flmd (a subverted flmd)
# at $FAKE/flmd.sock; every fact that is not an address or a port is
# refused before any rule is made; what the rules make of a plan.
# 11 points.
FAKE_PID=
hostile_one() {
	desc=$1
	fplan=$2
	fpol=${3:-'{"policy":{"ip_allowlist":["10.1.0.0/16"]}}'}
	[ -n "$FAKE_PID" ] && kill "$FAKE_PID" 2>/dev/null
	rm -f "$FAKE/flmd.sock"
	"$top_builddir/tests/fake-flmd" "$FAKE/flmd.sock" "$fplan" "$fpol" &
	FAKE_PID=$!
	wait_until 2000 test -S "$FAKE/flmd.sock"
	"$FLM" -D "$FAKE" firewall preview >"$FAKE/out" 2>&1
	RC=$?
	checkx "$desc" "$4"
}
hostile() {
	FAKE=$(mktemp -d "${TMPDIR:-/tmp}/flmfk.XXXXXX")
	E='"engines":[{"id":"e","addr":"127.0.0.1","port":11434}]'
	refused='[ $RC = 1 ] && grep -q "malformed firewall plan from flmd" "$FAKE/out" && ! grep -q "table inet" "$FAKE/out"'
	hostile_one "a subverted flmd's good plan is shown (the fake is served)" \
	    '{"proxies":[{"id":"p","bind":"0.0.0.0","port":8088}],'"$E"'}' '' \
	    '[ $RC = 0 ] && grep -q "tcp dport 8088 ip saddr @proxy_clients4 accept" "$FAKE/out" &&
	    grep -q "elements = { 10.1.0.0/16 }" "$FAKE/out"'
	hostile_one "a bind address carrying nft text is refused" \
	    '{"proxies":[{"id":"p","bind":"0.0.0.0; flush ruleset","port":8088}],'"$E"'}' '' \
	    "$refused"
	hostile_one "an engine address with a newline is refused" \
	    '{"proxies":[],"engines":[{"id":"e","addr":"127.0.0.1\n}","port":1}]}' '' \
	    "$refused"
	hostile_one "a port out of range, or a string, is refused" \
	    '{"proxies":[{"id":"p","bind":"::","port":"8088"}],"engines":[{"id":"e","addr":"::1","port":70000}]}' '' \
	    "$refused"
	hostile_one "a plan that is not {proxies, engines} is refused" \
	    '{"proxies":{"id":"p"}}' '' "$refused"
	hostile_one "an allowlist entry that is no CIDR is refused" \
	    '{"proxies":[{"id":"p","bind":"0.0.0.0","port":8088}],'"$E"'}' \
	    '{"policy":{"ip_allowlist":["10.0.0.0/8 } flush ruleset"]}}' \
	    '[ $RC = 1 ] && grep -q "security policy from flmd is not valid" "$FAKE/out" && ! grep -q "table inet" "$FAKE/out"'
	# What the rules make of a plan: loopback needs none, a port is
	# one rule, a network inside another adds nothing.
	hostile_one "a proxy on loopback (v4, v4-mapped): no rule, a note" \
	    '{"proxies":[{"id":"p","bind":"0.0.0.0","port":8088},{"id":"l","bind":"127.0.0.1","port":8089},{"id":"m","bind":"::ffff:127.0.0.2","port":8090},{"id":"p6","bind":"::","port":8088}],"engines":[{"id":"e","addr":"127.0.0.1","port":8088},{"id":"e6","addr":"::1","port":11434}]}' \
	    '{"policy":{"ip_allowlist":["10.1.0.0/16","10.1.2.0/24","2001:db8::/32","10.1.0.0/16","192.0.2.7"]}}' \
	    '[ $RC = 0 ] && grep -q "^# proxy l listens on 127.0.0.1:8089, loopback: no rule needed" "$FAKE/out" &&
	    grep -q "^# proxy m listens on ::ffff:127.0.0.2:8090, loopback" "$FAKE/out" &&
	    ! grep -q "dport.*809[09]" "$FAKE/out"'
	checkx "an engine port that is a proxy's: one rule (the proxy's), a note" \
	    'grep -q "^# engine port 8088 is a proxy.s: the proxy.s rule applies" "$FAKE/out" &&
	    [ "$(grep -c "^[[:space:]]*tcp dport 8088 ip saddr @proxy_clients4 accept" "$FAKE/out")" = 1 ] &&
	    grep -q "tcp dport { 8088, 11434 } drop" "$FAKE/out"'
	checkx "the allowlist: a network inside another and a repeat dropped, IPv6 apart" \
	    'grep -q "elements = { 10.1.0.0/16, 192.0.2.7 }" "$FAKE/out" &&
	    grep -q "elements = { 2001:db8::/32 }" "$FAKE/out" &&
	    grep -q "tcp dport 8088 ip6 saddr @proxy_clients6 accept" "$FAKE/out"'
	hostile_one "more than 256 ports: refused, no rules" \
	    "{\"proxies\":[],\"engines\":$(seq 1000 1300 | jq -sc '[.[] | {id: "e\(.)", addr: "10.0.0.1", port: .}]')}" '' \
	    '[ $RC = 1 ] && grep -q "more than 256 ports: refused" "$FAKE/out" && ! grep -q "table inet" "$FAKE/out"'
	check "--backend other than nftables, ufw or firewalld: a usage error" \
	    sh -c "'$FLM' -D '$FAKE' firewall preview --backend iptables >'$FAKE/out' 2>&1; [ \$? = 2 ] && grep -q -- '--backend: expected nftables, ufw or firewalld' '$FAKE/out'"
	kill "$FAKE_PID" 2>/dev/null
	wait "$FAKE_PID" 2>/dev/null
	FAKE_PID=
	rm -rf "$FAKE"
}

# fw_doctor: flm doctor's verdict on the host firewall, [status, detail]
# (the tests set F); host_fw: ufw or firewalld is on here, which doctor
# names before it looks at nftables.
fw_doctor() {
	"$@" $F doctor --json 2>/dev/null | jq -c '[.checks[] |
	    select(.group == "firewall" and .name == "host firewall")][0] |
	    [.status, .detail]'
}
host_fw() {
	grep -q '^ENABLED=yes' /etc/ufw/ufw.conf 2>/dev/null ||
	    [ -s /run/firewalld.pid ]
}

if [ "$(id -u)" -ne 0 ]; then
	plan 16
	hostile
	check "suite starts" suite_start
	F="$FLM -D $STATE"
	$F config set engines.fwtest.kind ollama >/dev/null
	$F config set engines.fwtest.url http://127.0.0.1:18434 >/dev/null
	OUT=$($F firewall preview 2>&1)
	checkx "preview as non-root shows the rules: the engine port dropped" \
	    'printf "%s" "$OUT" | grep -q "tcp dport { 1234, 8000, 8080, 11434, 18434 } drop"'
	checkx "preview as non-root says the loaded rules need root" \
	    'printf "%s" "$OUT" | grep -q "can be read only by root"'
	$F firewall apply >"$STATE/apply.out" 2>&1
	RC=$?
	checkx "apply as non-root: refused (exit 4), with why" \
	    '[ $RC = 4 ] && grep -q "run it as root" "$STATE/apply.out"'
	if host_fw; then
		ok "# SKIP ufw or firewalld is on here: doctor names it"
	else
		checkx "doctor as non-root: the nftables ruleset skipped, saying why" \
		    '[ "$(fw_doctor)" = "[\"skipped\",\"neither ufw nor firewalld; the nftables ruleset needs root to read: run flm doctor as root\"]" ]'
	fi
	exit 0
fi

SRV=flmfw$$s
CLI=flmfw$$c
VS=fws$$
VC=fwc$$
SA=10.77.0.1
OK_IP=10.77.0.2
BAD_IP=10.77.0.3
EPORT=18434
PPORT=8088
HOST_BEFORE=$("$NFT" list ruleset 2>&1)

fw_cleanup() {
	[ -n "$FAKE_PID" ] && kill "$FAKE_PID" 2>/dev/null
	[ -n "$FAKE" ] && rm -rf "$FAKE"
	if [ -n "$STATE" ] && [ -f "$STATE/firewall/pending" ]; then
		kill "$(cut -d' ' -f1 "$STATE/firewall/pending")" 2>/dev/null
	fi
	[ -n "$MPID" ] && kill "$MPID" 2>/dev/null
	suite_cleanup
	# A namespace goes with its last process: none of ours is left.
	ip netns del "$SRV" 2>/dev/null
	ip netns del "$CLI" 2>/dev/null
	ip link del "$VS" 2>/dev/null
	rm -rf "$TMP"
}
trap fw_cleanup EXIT
trap 'exit 1' INT TERM HUP
MPID=
TMP=$(mktemp -d "${TMPDIR:-/tmp}/flmfw.XXXXXX")

if ! { ip netns add "$SRV" && ip netns add "$CLI" &&
    ip link add "$VS" type veth peer name "$VC" &&
    ip link set "$VS" netns "$SRV" && ip link set "$VC" netns "$CLI" &&
    ip -n "$SRV" link set lo up && ip -n "$CLI" link set lo up &&
    ip -n "$SRV" addr add "$SA/24" dev "$VS" &&
    ip -n "$CLI" addr add "$OK_IP/24" dev "$VC" &&
    ip -n "$CLI" addr add "$BAD_IP/24" dev "$VC" &&
    ip -n "$SRV" link set "$VS" up &&
    ip -n "$CLI" link set "$VC" up; } 2>"$TMP/ip.err"; then
	echo "1..0 # SKIP cannot make network namespaces here: $(cat "$TMP/ip.err")"
	exit 0
fi

plan 51

hostile

S() { ip netns exec "$SRV" "$@"; }
C() { ip netns exec "$CLI" "$@"; }

# In the server namespace: flmd (ip netns exec runs it as this pid).
STATE=$(mktemp -d "${TMPDIR:-/tmp}/flmt.XXXXXX")
# Not through S: a function run in the background is a subshell, and
# $! would be its pid; ip netns exec execs what it runs.
ip netns exec "$SRV" "$FLMD" -d -v -D "$STATE" >"$STATE/flmd.log" 2>&1 &
FLMD_PID=$!
check "suite starts in the server namespace" wait_until 5000 all_running
F="$FLM -D $STATE"
ip netns exec "$SRV" "$MOCK" --flavor ollama --listen "0.0.0.0:$EPORT" >"$TMP/mock.log" 2>&1 &
MPID=$!
$F config set engines.fwtest.kind ollama >/dev/null
$F config set engines.fwtest.url "http://127.0.0.1:$EPORT" >/dev/null
$F security ip allow "$OK_IP" >/dev/null 2>&1
$F security ip allow 127.0.0.0/8 >/dev/null 2>&1
S $F proxy start --port "$PPORT" --bind 0.0.0.0 --mode dev-selfsigned \
    >/dev/null 2>&1

# reach FROM URL: curl's exit status from the client namespace, from
# address FROM (0 answered, 7 refused, 28 timed out).
reach() {
	C curl -s -k -o /dev/null -m 1 --interface "$1" "$2"
}
EURL=http://$SA:$EPORT/api/version
PURL=https://$SA:$PPORT/healthz
wait_until 3000 reach "$OK_IP" "$EURL"
checkx "before apply: the engine answers across the veth" 'reach $OK_IP $EURL'
wait_until 3000 reach "$OK_IP" "$PURL"
checkx "before apply: the proxy answers both client addresses" \
    'reach $OK_IP $PURL && reach $BAD_IP $PURL'

OUT=$(S $F firewall preview 2>&1)
checkx "preview: the proxy port open to the allowlist" \
    'printf "%s" "$OUT" | grep -q "elements = { $OK_IP, 127.0.0.0/8 }" &&
    printf "%s" "$OUT" | grep -q "tcp dport $PPORT ip saddr @proxy_clients4 accept"'
checkx "preview: engine and proxy ports dropped, loopback accepted" \
    'printf "%s" "$OUT" | grep -q "tcp dport { 1234, 8000, 8080, $PPORT, 11434, $EPORT } drop" &&
    printf "%s" "$OUT" | grep -q "iif \"lo\" accept"'
checkx "preview: a diff against no table" \
    'printf "%s" "$OUT" | grep -q "^+ table inet flm {"'
OUT=$(S $F firewall preview --backend ufw 2>&1)
checkx "preview --backend ufw: allows from the allowlist first, then denies" \
    'printf "%s" "$OUT" | grep -q "^ufw prepend allow from $OK_IP to any port $PPORT proto tcp comment flm" &&
    printf "%s" "$OUT" | grep -q "^ufw deny $EPORT/tcp comment flm"'
OUT=$(S $F firewall preview --backend firewalld 2>&1)
checkx "preview --backend firewalld: rich rules, accepts before drops" \
    'printf "%s" "$OUT" | grep -q "^firewall-cmd --add-rich-rule=rule priority=\"-20\" family=\"ipv4\" source address=\"$OK_IP\" port port=\"$PPORT\" protocol=\"tcp\" accept" &&
    printf "%s" "$OUT" | grep -q "^firewall-cmd --add-rich-rule=rule priority=\"-10\" port port=\"$EPORT\" protocol=\"tcp\" drop"'
if [ -x /usr/sbin/firewall-cmd ] || [ -x /usr/bin/firewall-cmd ]; then
	ok "# SKIP firewall-cmd is installed: not run on this host"
else
	S $F firewall apply --backend firewalld >"$TMP/fwd.out" 2>&1
	RC=$?
	checkx "apply --backend firewalld without firewall-cmd: a clear error" \
	    '[ $RC = 1 ] && grep -q "firewall-cmd is not installed" "$TMP/fwd.out" &&
	    [ ! -e "$STATE/firewall/pending" ]'
fi

if host_fw; then
	ok "# SKIP ufw or firewalld is on here: doctor names it"
else
	checkx "doctor before apply: no input chain in the namespace, a warning and the fix" \
	    '[ "$(fw_doctor S)" = "[\"warn\",\"no firewall: nftables has no input chain, no ufw, no firewalld\"]" ]'
fi
S $F firewall apply --timeout 30 >"$TMP/apply.out" 2>&1
checkx "apply: loaded" '[ $? = 0 ] && S "$NFT" list table inet flm >/dev/null'
if host_fw; then
	ok "# SKIP ufw or firewalld is on here: doctor names it"
else
	checkx "doctor after apply: the input chain seen, ok" \
	    '[ "$(fw_doctor S)" = "[\"ok\",\"nftables has a chain on the input hook\"]" ]'
fi
checkx "preview after apply: no change" \
    'S $F firewall preview | grep -q "^# no change"'
$F security ip allow 10.77.0.9 >/dev/null 2>&1
OUT=$(S $F firewall preview 2>&1)
checkx "preview after the allowlist grew: the loaded line -, the new one +, the rest kept" \
    'printf "%s\n" "$OUT" | grep -q "^- 		elements = { $OK_IP, 127.0.0.0/8 }" &&
    printf "%s\n" "$OUT" | grep -q "^+ 		elements = { $OK_IP, 10.77.0.9, 127.0.0.0/8 }" &&
    printf "%s\n" "$OUT" | grep -q "^  table inet flm {" &&
    ! printf "%s\n" "$OUT" | grep -q "^[-+] table"'
$F security ip deny 10.77.0.9 >/dev/null 2>&1
checkx "and once it shrank back: no change again" \
    'S $F firewall preview | grep -q "^# no change"'
reach "$OK_IP" "$EURL"
RC=$?
checkx "after apply: the engine port is dropped from outside (timeout, not refused)" \
    '[ $RC = 28 ]'
checkx "after apply: loopback in the namespace still reaches the engine" \
    'S curl -s -o /dev/null -m 2 http://127.0.0.1:$EPORT/api/version'
checkx "after apply: the proxy from the allowlisted address passes" \
    'reach $OK_IP $PURL'
reach "$BAD_IP" "$PURL"
RC=$?
checkx "after apply: the proxy from another address is dropped" '[ $RC = 28 ]'
S $F firewall apply --timeout 30 >"$TMP/apply2.out" 2>&1
RC=$?
checkx "a second apply while one awaits confirm: refused (exit 5)" \
    '[ $RC = 5 ] && grep -q "waiting for confirm" "$TMP/apply2.out"'
TIMER=$(cut -d' ' -f1 "$STATE/firewall/pending")
# Gone, or a zombie its new parent has yet to reap.
gone() {
	! kill -0 "$1" 2>/dev/null ||
	    [ "$(ps -o stat= -p "$1" | cut -c1)" = Z ]
}
checkx "the rollback timer runs detached (a session of its own)" \
    '[ -n "$TIMER" ] && ! gone $TIMER &&
    [ "$(ps -o sid= -p $TIMER)" != "$(ps -o sid= -p $$)" ] &&
    [ "$(ps -o sid= -p $TIMER)" != "$(ps -o sid= -p $FLMD_PID)" ]'

checkx "rollback: done" 'S $F firewall rollback >/dev/null'
checkx "after rollback: no table" '! S "$NFT" list table inet flm >/dev/null 2>&1'
checkx "after rollback: the engine answers again" 'reach $OK_IP $EURL'
checkx "after rollback: the timer gone" 'wait_until 1000 gone $TIMER'
S $F firewall rollback >"$TMP/rb.out" 2>&1
RC=$?
checkx "rollback again: nothing to roll back (exit 1)" \
    '[ $RC = 1 ] && grep -q "nothing to roll back" "$TMP/rb.out"'
S $F firewall confirm >"$TMP/cf.out" 2>&1
RC=$?
checkx "confirm with no apply waiting: exit 1, saying so" \
    '[ $RC = 1 ] && grep -q "no firewall apply is waiting for confirm" "$TMP/cf.out"'

S $F firewall apply --timeout 2 >/dev/null 2>&1
T0=$(date +%s)
checkx "apply --timeout 2: loaded" 'S "$NFT" list table inet flm >/dev/null'
no_table() { ! S "$NFT" list table inet flm >/dev/null 2>&1; }
wait_until 3500 no_table
T1=$(date +%s)
checkx "unconfirmed: rolled back by itself within 3 s" \
    'no_table && [ $((T1 - T0)) -le 4 ]'
checkx "the automatic rollback is logged" \
    'grep -l "^action: automatic rollback" "$STATE"/logs/security/firewall-*.log |
    xargs grep -q "^outcome: ok"'
checkx "after the automatic rollback the engine answers again" \
    'reach $OK_IP $EURL'

# Time enough to confirm under a loaded machine (and ASan); then past
# the deadline the timer had.
S $F firewall apply --timeout 5 >/dev/null 2>&1
DEADLINE=$(cut -d' ' -f3 "$STATE/firewall/pending" 2>/dev/null)
checkx "confirm: done" 'S $F firewall confirm >/dev/null'
while [ -n "$DEADLINE" ] && [ "$(date +%s)" -le "$DEADLINE" ]; do
	sleep 0.2
done
checkx "confirmed: the rules stay after the timeout" \
    'S "$NFT" list table inet flm >/dev/null && [ ! -e "$STATE/firewall/pending" ]'
reach "$OK_IP" "$EURL"
RC=$?
checkx "confirmed: the engine port is still dropped" '[ $RC = 28 ]'
checkx "rollback after confirm restores the state before that apply" \
    'S $F firewall rollback >/dev/null && no_table && reach $OK_IP $EURL'

LOGS="$STATE/logs/security"
logged() {
	for a in apply confirm rollback "automatic rollback"; do
		grep -q "^action: $a\$" "$LOGS"/firewall-*.log || return 1
	done
}
checkx "logs: each change, mode 0600 in a 0700 directory" \
    '[ "$(stat -c %a "$LOGS")" = 700 ] &&
    [ -z "$(find "$LOGS" -name "firewall-*.log" ! -perm 0600)" ] && logged'
checkx "logs: what was loaded before and after, and who" \
    'grep -q "^uid: 0$" "$LOGS"/firewall-*.log &&
    grep -q "^--- before" "$LOGS"/firewall-*.log &&
    grep -q "^--- after" "$LOGS"/firewall-*.log'
# The state flm keeps for rollback is root's alone: a directory of
# another uid is refused, not used.
chown 65534 "$STATE/firewall"
S $F firewall apply --timeout 30 >"$TMP/own.out" 2>&1
RC=$?
checkx "a firewall directory of another uid: refused (exit 1), nothing loaded" \
    '[ $RC = 1 ] && grep -q "$STATE/firewall: not a directory of uid 0" "$TMP/own.out" &&
    no_table'
chown 0 "$STATE/firewall"
rm -rf "$STATE/firewall"
: >"$STATE/firewall"
S $F firewall rollback >"$TMP/own.out" 2>&1
RC=$?
checkx "a file where its directory goes: refused (exit 1), left as it was" \
    '[ $RC = 1 ] && grep -q "$STATE/firewall: not a directory of uid 0" "$TMP/own.out" &&
    [ -f "$STATE/firewall" ] && [ ! -s "$STATE/firewall" ]'
checkx "the host's own ruleset is untouched" \
    '[ "$("$NFT" list ruleset 2>&1)" = "$HOST_BEFORE" ]'
