#!/bin/sh
# https-acme by DNS-01 against Pebble (issue 16): flmd runs the admin's
# acme.dns_hook through its spawner ("HOOK add|remove NAME VALUE", a
# clean environment, its output kept for the error), waits acme.dns_wait
# for the record to spread, and keyd answers the challenge only then.
# The hook here publishes the TXT record in pebble-challtestsrv's DNS,
# which Pebble asks.  Also: the settings flmd refuses, a failing hook's
# own words in the error, and the records removed after the order.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/pebble.sh"

command -v curl >/dev/null 2>&1 || unavailable "curl(1)"
unset FLM_API_KEY
# Some nonces refused (10%: six in a row fail an order, see acme.t).
pebble_start PEBBLE_AUTHZREUSE=0 PEBBLE_WFE_NONCEREJECT=10

plan 33

mock --flavor ollama
check "suite starts" suite_start
F="$FLM -D $STATE"
$F config set engines.ollama.url "http://127.0.0.1:$MPORT" >/dev/null
A=$STATE/acme
mkdir -p "$A"
pebble_roots "$A/roots.pem"
P=$(free_port)
D1=flm-dns.example.com
D2=www.flm-dns.example.com
start_dns() {
	$F proxy start --bind 127.0.0.1 --port "$P" --mode https-acme \
	    --challenge dns-01 --email admin@example.com \
	    --acme-directory "$PEBBLE_DIRECTORY" --acme-ca "$PEBBLE_CA" "$@"
}

# ---- what flmd refuses ----------------------------------------------------------
check "dns-01 without acme.dns_hook: refused, saying what to set" \
    fails_with "--challenge dns-01 needs a hook that publishes the TXT records: flm config set acme.dns_hook" \
    start_dns --domain $D1
check "acme.dns_hook must be an absolute path" \
    fails_with "acme.dns_hook: expected an absolute path" \
    $F config set acme.dns_hook hooks/dns.sh
check "acme.dns_hook must exist and be executable" \
    fails_with "acme.dns_hook: $A/none is not an executable file" \
    $F config set acme.dns_hook "$A/none"
check "acme.dns_user cannot be root" \
    fails_with "acme.dns_user: expected a user name other than root" \
    $F config set acme.dns_user root
check "acme.dns_wait is 0-3600 seconds" \
    fails_with "acme.dns_wait: expected 0-3600 seconds" \
    $F config set acme.dns_wait 3601

# ---- DNS-01 end to end ------------------------------------------------------------
# The hook gets no environment of flmd's: what it needs is written in.
HOOKLOG=$A/hook.log
write_hook() {
	challtest_hook "$A/hook.sh" "echo \"\$(id -u) \$*\" >>'$HOOKLOG'; env | sort >'$A/hook.env'"
}
write_hook
check "acme.dns_hook set to an executable" \
    $F config set acme.dns_hook "$A/hook.sh"
check "acme.dns_wait set to 2 s" $F config set acme.dns_wait 2
t0=$(date +%s)
start_dns --domain $D1 --domain $D2 >"$A/start.out" 2>"$A/start.err"
rc=$?
t1=$(date +%s)
[ $rc = 0 ] || diag "$(cat "$A/start.err")"
check "DNS-01: a certificate for two names from Pebble" test "$rc" = 0
checkx "the hook added a TXT record of 43 base64url characters per name" \
    'grep -Eq "^$(id -u) add _acme-challenge\.$D1 [A-Za-z0-9_-]{43}\$" "$HOOKLOG" &&
    grep -Eq "^$(id -u) add _acme-challenge\.$D2 [A-Za-z0-9_-]{43}\$" "$HOOKLOG"'
checkx "the terminal showed the hook and the spread wait" \
    'grep -q "acme.dns_hook runs" "$A/start.err" &&
    grep -q "TXT _acme-challenge.$D1 added; 2 s for it to spread" "$A/start.err"'
checkx "each challenge was answered after its wait (took $((t1 - t0)) s)" \
    '[ $((t1 - t0)) -ge 4 ]'
removed() {
	grep -q "remove _acme-challenge\.$D1 " "$HOOKLOG" &&
	    grep -q "remove _acme-challenge\.$D2 " "$HOOKLOG"
}
check "after the order both records were removed" wait_until 5000 removed
checkx "the hook ran with a clean environment (no FLM_*, PATH fixed)" \
    '! grep -q "^FLM_" "$A/hook.env" &&
    grep -qx "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" "$A/hook.env"'
KEY=$($F api-keys create --label dns --json | jq -r .key)
code=$(curl -s -o "$A/models.json" -w '%{http_code}' -m 10 \
    --cacert "$A/roots.pem" --resolve "$D2:$P:127.0.0.1" \
    -H "Authorization: Bearer $KEY" "https://$D2:$P/v1/models")
check "curl trusting Pebble's root reaches the models as $D2 (HTTP $code)" \
    test "$code" = 200
checkx "flm proxy status shows the challenge dns-01" \
    '[ "$($F proxy status --json | jq -r ".[0].acme.challenge")" = dns-01 ]'
$F proxy stop --port "$P" >/dev/null 2>&1

# ---- a hook that fails: its words in the error ---------------------------------------
cat >"$A/bad.sh" <<EOF
#!/bin/sh
echo "no credentials for zone example.com" >&2
exit 3
EOF
chmod 755 "$A/bad.sh"
$F config set acme.dns_hook "$A/bad.sh" >/dev/null
check "a failing hook: the start fails with its exit status and words" \
    fails_with "acme.dns_hook add _acme-challenge.flm-bad.example.com: exit 3: no credentials for zone example.com" \
    start_dns --domain flm-bad.example.com
chmod 644 "$A/bad.sh"
check "a hook no longer executable: the spawner's refusal is the error" \
    fails_with "acme.dns_hook add _acme-challenge.flm-bad.example.com: $A/bad.sh: not an executable program" \
    start_dns --domain flm-bad.example.com
# A hook that hangs, and what it started with it: killed whole after
# 60 s, the order failed with why.
cat >"$A/hang.sh" <<EOF
#!/bin/sh
sleep 600 &
echo \$! >"$A/hang.child"
echo "waiting for the DNS provider"
sleep 600
EOF
chmod 755 "$A/hang.sh"
$F config set acme.dns_hook "$A/hang.sh" >/dev/null
check "a hook that hangs: killed after 60 s, the start fails saying so" \
    fails_with "acme.dns_hook add _acme-challenge.flm-hang.example.com: killed after 60 s: waiting for the DNS provider" \
    start_dns --domain flm-hang.example.com
# Gone, or dead and not yet reaped by whoever inherited it (a zombie).
dead() {
	st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)
	[ -z "$st" ] || [ "$st" = Z ] || [ "$st" = X ]
}
check "what the hook started was killed with it" \
    wait_until 2000 dead "$(cat "$A/hang.child")"
checkx "the failed starts left no handle" \
    '[ "$($F proxy status --json | jq length)" = 0 ]'

# ---- a renewal that fails: the old certificate serves, status and doctor say why ----
# Certificates of 24 s: keyd orders the next at two thirds (16 s, less
# its jitter); the hook fails it by then.
pebble_stop
PEBBLE_CERT_VALIDITY=24 pebble_start PEBBLE_AUTHZREUSE=0
pebble_roots "$A/roots2.pem"
chmod 755 "$A/bad.sh"
write_hook
$F config set acme.dns_hook "$A/hook.sh" >/dev/null
$F config set acme.dns_wait 0 >/dev/null
D3=flm-renew.example.com
start_dns --domain $D3 >"$A/renew.out" 2>"$A/renew.err" ||
    diag "$(cat "$A/renew.err")"
st() { $F proxy status --json | jq -r ".[0] | $1"; }
checkx "status shows when the certificate is renewed" \
    '[ "$(st .acme.next_renewal)" = "$(st .certificate.renew_at)" ] &&
    [ "$(st .acme.next_renewal)" != null ]'
$F config set acme.dns_hook "$A/bad.sh" >/dev/null
failed() { [ "$(st .acme.failures)" = 1 ]; }
check "the renewal order failed (the hook refused)" wait_until 30000 failed
checkx "flm proxy status --json: the last error and the next try" \
    'st .acme.last_error | grep -q "exit 3: no credentials for zone example.com" &&
    [ "$(st .acme.next_try)" != null ]'
# On a terminal (script(1)) flm prints words, not JSON.
if command -v script >/dev/null 2>&1; then
	checkx "flm proxy status on a terminal: the renewal and the failure in words" \
	    'script -qec "$F proxy status" /dev/null </dev/null >"$A/tty.out" 2>&1 &&
	    grep -q "renewal 20" "$A/tty.out" &&
	    grep -q "last order failed (1 in a row): .*exit 3" "$A/tty.out"'
else
	ok "flm proxy status on a terminal: the renewal and the failure in words # SKIP no script(1)"
fi
checkx "flm doctor warns: the renewal failed" \
    '$F doctor --json | jq -e ".checks[] | select(.name == \"ACME 127.0.0.1:$P\" and
    .status == \"warn\" and (.detail | test(\"1 order failed in a row\")))" >/dev/null'
code=$(curl -s -o /dev/null -w '%{http_code}' -m 10 --cacert "$A/roots2.pem" \
    --resolve "$D3:$P:127.0.0.1" "https://$D3:$P/healthz")
check "the certificate in service still serves (HTTP $code)" test "$code" = 200

# ---- restored with the certificate expired: the order fails, is tried again -------
na=$(date -d "$(st .certificate.not_after)" +%s)
suite_stop
now=$(date +%s)
[ "$now" -gt "$na" ] || sleep $((na - now + 1))
LOGSTART=$(($(wc -l <"$STATE/flmd.log") + 1))
FLM_PROXY_WORKERS=1 "$FLMD" -d -v -D "$STATE" >>"$STATE/flmd.log" 2>&1 &
FLMD_PID=$!
wait_until 5000 all_running
waiting() { st .state | grep -q "exit 3: no credentials"; }
check "restored with the certificate expired: the order fails, the proxy waits" \
    wait_until 30000 waiting
# A rare failure here showed the proxy ready with the expired
# certificate: what flmd, keyd and proxyd said since the restart.
[ "$T_FAILED" = 0 ] || diag "$($F proxy status --json | jq -c .)
$(sed -n "$LOGSTART,\$p" "$STATE/flmd.log" | grep -v ' request ' | tail -60)"
$F doctor --json >"$A/doctor2.json"
checkx "flm doctor: no valid certificate, the proxy waits" \
    'jq -e ".checks[] | select(.name == \"ACME 127.0.0.1:$P\" and
    (.detail | test(\"no valid certificate: the proxy waits\")))" "$A/doctor2.json" >/dev/null'
[ "$T_FAILED" = 0 ] ||
    diag "$(jq -c '.checks[] | select(.group == "certificates")' "$A/doctor2.json")"
$F config set acme.dns_hook "$A/hook.sh" >/dev/null
served() {
	[ "$(curl -s -o /dev/null -w '%{http_code}' -m 2 --cacert "$A/roots2.pem" \
	    --resolve "$D3:$P:127.0.0.1" "https://$D3:$P/healthz")" = 200 ]
}
# wait_until counts its sleeps only, and each curl may take 2 s: a
# deadline.
late=$(($(date +%s) + 80))
served_or_late() { served || [ "$(date +%s)" -ge "$late" ]; }
wait_until 80000 served_or_late
check "keyd orders again after its back-off (60 s) and the proxy serves" \
    served
checkx "the failure is cleared from flm proxy status" \
    '[ "$(st .acme.last_error)" = null ] && [ "$(st .state)" = null ]'
$F proxy stop --port "$P" >/dev/null 2>&1
check "flm-proxyd and flm-keyd are still running" all_running
checkx "nothing malformed was logged" '! grep -q "malformed" "$STATE/flmd.log"'
