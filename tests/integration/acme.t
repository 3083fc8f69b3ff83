#!/bin/sh
# https-acme against Pebble (issue 16), started here on loopback with
# its DNS (pebble-challtestsrv) answering 127.0.0.1 for every name: an
# HTTP-01 certificate obtained end to end (account, order, challenge
# answered by flm-proxyd on the port flmd bound, finalize with keyd's
# CSR), progress on the terminal and as JSON events, curl trusting
# Pebble's root reaching the models through it; the account and the
# certificate keys only in keyd (sealed in security.db, not in proxyd's
# memory); a restart serving the stored certificate without a new
# order; the options flmd refuses; and an unreachable directory and a
# refused authorization failing with the reason, the suite alive.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/pebble.sh"

command -v curl >/dev/null 2>&1 || unavailable "curl(1)"
unset FLM_API_KEY
# Every order runs its challenge (no authorization reused from an
# earlier one), and Pebble rejects 10% of good nonces (badNonce), so
# most runs see FLM send requests again with a fresh one (a run that
# meets none skips that check).  Not more: FLM gives up after six in a
# row, and at 30% one POST in 1400 failed its order (one run in ten
# failed a test).
pebble_start PEBBLE_AUTHZREUSE=0 PEBBLE_WFE_NONCEREJECT=10
# Two workers: the CA's request may reach either, and keyd answers a
# challenge only once both serve its proof.
WORKERS=2

plan 39

mock --flavor ollama
check "suite starts" suite_start
F="$FLM -D $STATE"
$F config set engines.ollama.url "http://127.0.0.1:$MPORT" >/dev/null
A=$STATE/acme
mkdir -p "$A"
pebble_roots "$A/roots.pem"
DOM=flm-acme.example.com
P=$(free_port)

# ---- what flmd refuses --------------------------------------------------
check "https-acme without --domain: refused" \
    fails_with "--mode https-acme needs --domain NAME" \
    $F proxy start --port 0 --mode https-acme
check "a domain that is no public DNS name: refused" \
    fails_with "--domain: expected public DNS names" \
    $F proxy start --port 0 --mode https-acme --domain localhost
check "a wildcard: refused (HTTP-01 cannot prove it)" \
    fails_with "--domain: expected public DNS names" \
    $F proxy start --port 0 --mode https-acme --domain '*.example.com'
check "a directory that is not https: refused" \
    fails_with "--acme-directory: expected an https URL" \
    $F proxy start --port 0 --mode https-acme --domain $DOM \
    --acme-directory http://127.0.0.1:1/dir
check "--acme-directory with --acme-staging: refused" \
    fails_with "--acme-directory or --acme-staging, not both" \
    $F proxy start --port 0 --mode https-acme --domain $DOM \
    --acme-directory "$PEBBLE_DIRECTORY" --acme-staging
check "an unknown challenge: refused" \
    fails_with "--challenge http-02: expected http-01, tls-alpn-01 or dns-01" \
    $F proxy start --port 0 --mode https-acme --domain $DOM \
    --challenge http-02
check "--domain with another mode: refused" \
    fails_with "are for --mode https-acme" \
    $F proxy start --port 0 --mode dev-selfsigned --domain $DOM
check "--acme-ca that is not PEM: refused" \
    fails_with "--acme-ca: expected PEM certificates" \
    $F proxy start --port 0 --mode https-acme --domain $DOM \
    --acme-ca /etc/hostname

# ---- HTTP-01 end to end ------------------------------------------------------
start_acme() {
	$F proxy start --bind 127.0.0.1 --port "$P" --mode https-acme \
	    --domain $DOM --email admin@example.com \
	    --acme-directory "$PEBBLE_DIRECTORY" --acme-ca "$PEBBLE_CA" \
	    --acme-http-port "$PEBBLE_HTTP_PORT" "$@"
}
t0=$(date +%s)
start_acme >"$A/start.out" 2>"$A/start.err"
rc=$?
t1=$(date +%s)
check "https-acme with HTTP-01 gets a certificate from Pebble" \
    test "$rc" = 0
for s in directory account order challenge finalize certificate; do
	grep -q "^acme: $s " "$A/start.err" || { diag "no $s step:"; \
	    diag "$(cat "$A/start.err")"; break; }
done
checkx "keyd answered the challenge once both workers served its proof" \
    'grep -q "ACME challenge for 127.0.0.1:$P: its proof is out on every worker" "$STATE/flmd.log"'
checkx "the terminal showed every step, in order" \
    'grep -o "^acme: [a-z]*" "$A/start.err" | cut -c7- | uniq | tr "\n" " " |
    grep -q "directory account order challenge finalize certificate"'
KEY=$($F api-keys create --label acme --json | jq -r .key)
code=$(curl -s -o "$A/models.json" -w '%{http_code}' -m 10 \
    --cacert "$A/roots.pem" --resolve "$DOM:$P:127.0.0.1" \
    -H "Authorization: Bearer $KEY" "https://$DOM:$P/v1/models")
checkx "curl trusting only Pebble's root reaches the models (HTTP $code)" \
    '[ "$code" = 200 ] && jq -e ".data | length > 0" "$A/models.json" >/dev/null'
st=$($F proxy status --json)
checkx "flm proxy status: mode, domain, issuer, directory" \
    'printf "%s" "$st" | jq -e ".[0].mode == \"https-acme\" and
    (.[0].certificate.sans | index(\"DNS:$DOM\")) != null and
    (.[0].certificate.issuer | test(\"Pebble\")) and
    .[0].acme.directory == \"$PEBBLE_DIRECTORY\" and
    .[0].acme.ca == \"(given)\"" >/dev/null'
checkx "the account is in security.db, its key sealed, its URL kept" \
    '[ "$(sqlite3 "$STATE/keyd/security.db" "SELECT count(*) FROM
    acme_accounts WHERE kid LIKE '"'"'https://127.0.0.1:%'"'"' AND
    length(key_sealed) > 0 AND directory = '"'"'$PEBBLE_DIRECTORY'"'"'")" = 1 ]'
checkx "the certificate row holds the chain (leaf and intermediate)" \
    '[ "$(sqlite3 "$STATE/keyd/security.db" "SELECT cert_pem FROM
    certificates WHERE mode = '"'"'https-acme'"'"' AND replaced_at IS NULL" |
    grep -c "BEGIN CERTIFICATE")" -ge 2 ]'

# No private key byte of keyd's in proxyd: the served key is keyd's.
MEMGREP=$top_builddir/tests/mem-grep
hexrev() { printf '%s' "$1" | fold -w2 | tac | tr -d '\n'; }
copies() {
	a=$("$MEMGREP" -x "$1" "$2") && b=$("$MEMGREP" -x "$1" \
	    "$(hexrev "$2")") && echo $((a + b))
}
SCALAR=$("$top_builddir/tests/tls-unseal" "$STATE/keyd" "127.0.0.1:$P" \
    2>/dev/null)
if [ ${#SCALAR} != 64 ]; then
	not_ok "tests/tls-unseal gives the certificate key's scalar ($SCALAR)"
else
	# Every worker's memory: none may hold it.
	n=0
	for pid in $(proc_pid flm-proxyd); do
		c=$(copies "$pid" "$SCALAR") || { n=; break; }
		n=$((n + c))
	done
	if [ -z "$n" ]; then
		ok "proxyd's memory holds no byte string of the certificate key # SKIP cannot read another process's memory here"
	else
		check "no worker's memory holds a byte string of the certificate key" \
		    [ "$n" = 0 ]
	fi
fi

# ---- a restart serves the stored certificate, no new order --------------
orders=$(grep -c "asking .* for a certificate" "$STATE/flmd.log")
suite_stop
FLM_PROXY_WORKERS=$WORKERS "$FLMD" -d -v -D "$STATE" >>"$STATE/flmd.log" 2>&1 &
FLMD_PID=$!
wait_until 5000 all_running
t0=$(date +%s%N)
served() {
	[ "$(curl -s -o /dev/null -w '%{http_code}' -m 2 \
	    --cacert "$A/roots.pem" --resolve "$DOM:$P:127.0.0.1" \
	    "https://$DOM:$P/healthz")" = 200 ]
}
wait_until 3000 served
t1=$(date +%s%N)
check "after a restart the handle serves again within 3 s" served
checkx "no new order: the stored certificate was reused" \
    '[ "$(grep -c "asking .* for a certificate" "$STATE/flmd.log")" = "$orders" ]'
$F proxy stop --port "$P" >/dev/null 2>&1

# ---- JSON events ------------------------------------------------------------------
P=$(free_port)
DOM=flm-json.example.com
start_acme --json >"$A/json.out" 2>"$A/json.err"
checkx "--json: the events, one a line, then the result" \
    'head -n 1 "$A/json.out" | jq -e ".step == \"directory\"" >/dev/null &&
    jq -s -e "(map(.step) | index(\"account\") != null and
    index(\"certificate\") != null) and (last | .mode == \"https-acme\")" \
    "$A/json.out" >/dev/null'
[ "$T_FAILED" = 0 ] || diag "$(cat "$A/json.out" "$A/json.err")"
$F proxy stop --port "$P" >/dev/null 2>&1

# ---- TLS-ALPN-01: the CA checks the handle's own port -----------------------------
# Pebble validates on PEBBLE_TLS_PORT: the handle listens there.
DOM=flm-alpn.example.com
P=$PEBBLE_TLS_PORT
start_acme --challenge tls-alpn-01 >"$A/alpn.out" 2>"$A/alpn.err"
rc=$?
[ $rc = 0 ] || diag "$(cat "$A/alpn.err")"
check "TLS-ALPN-01: a certificate from Pebble, shown on the handle's port" \
    test "$rc" = 0
checkx "keyd answered once both workers had the challenge certificate" \
    'grep -q "ACME challenge for 127.0.0.1:$P: its proof is out on every worker" "$STATE/flmd.log"'
checkx "flm-proxyd showed the challenge certificate (acme-tls/1)" \
    'grep -q "TLS-ALPN-01 challenge certificate shown" "$STATE/flmd.log"'
code=$(curl -s -o /dev/null -w '%{http_code}' -m 10 \
    --cacert "$A/roots.pem" --resolve "$DOM:$P:127.0.0.1" \
    -H "Authorization: Bearer $KEY" "https://$DOM:$P/v1/models")
check "curl trusting Pebble's root reaches the models over it (HTTP $code)" \
    test "$code" = 200
# The challenge certificate went with its order: acme-tls/1 is refused.
if command -v openssl >/dev/null 2>&1; then
	checkx "after the order no acme-tls/1 handshake succeeds" \
	    '! openssl s_client -connect "127.0.0.1:$P" -servername $DOM \
	    -alpn acme-tls/1 </dev/null >"$A/sc.out" 2>&1'
else
	ok "after the order no acme-tls/1 handshake succeeds # SKIP no openssl"
fi
$F proxy stop --port "$P" >/dev/null 2>&1

# ---- renewal: a short-lived certificate renewed, a stream kept open --------------
# Pebble again, issuing for 45 s: keyd renews at two thirds (30 s) while
# a streamed answer (50 chunks, one a second) runs on the connection.
pebble_stop
PEBBLE_CERT_VALIDITY=45 pebble_start PEBBLE_AUTHZREUSE=0
rc=$?
check "Pebble again, issuing certificates of 45 s" test "$rc" = 0
pebble_roots "$A/roots2.pem"
mock --flavor vllm --models slow --chunks 50 --chunk-delay-ms 1000
$F config set engines.vllm.url "http://127.0.0.1:$MPORT" >/dev/null
wait_until 5000 sh -c "$F models list --json | grep -q flm://vllm/slow"
DOM=flm-renew.example.com
P=$(free_port)
start_acme >"$A/renew.out" 2>"$A/renew.err" || diag "$(cat "$A/renew.err")"
serial() { $F proxy status --json | jq -r ".[] | select(.port == $P) |
    .certificate.serial"; }
s1=$(serial)
curl -sN -m 90 --cacert "$A/roots2.pem" --resolve "$DOM:$P:127.0.0.1" \
    -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \
    -d '{"model":"flm://vllm/slow","stream":true,"messages":[{"role":"user","content":"go"}]}' \
    "https://$DOM:$P/v1/chat/completions" >"$A/stream.out" 2>&1 &
SPID=$!
renewed() { s2=$(serial); [ -n "$s2" ] && [ "$s2" != null ] && [ "$s2" != "$s1" ]; }
wait_until 45000 renewed
checkx "keyd renewed the certificate on its own at two thirds of its life" \
    'renewed && grep -q "ACME: renewing the certificate of 127.0.0.1:$P" "$STATE/flmd.log"'
checkx "the stream was still open when the new certificate came in" \
    'kill -0 $SPID 2>/dev/null'
code=$(curl -s -o /dev/null -w '%{http_code}' -m 10 --cacert "$A/roots2.pem" \
    --resolve "$DOM:$P:127.0.0.1" "https://$DOM:$P/healthz")
check "a new connection is served after the swap" test "$code" = 200
wait $SPID
checkx "the stream ran to its end across the swap: 50 chunks and [DONE]" \
    '[ "$(grep -c "^data: {" "$A/stream.out")" -ge 50 ] &&
    grep -q "^data: \[DONE\]" "$A/stream.out"'
$F proxy stop --port "$P" >/dev/null 2>&1

# ---- failures: clear errors, the suite alive ---------------------------------------
P=$(free_port)
DOM=flm-down.example.com
dead=$(free_port)
check "an unreachable directory: refused with the reason" \
    fails_with "directory: https://127.0.0.1:$dead/dir" \
    $F proxy start --port "$P" --mode https-acme --domain $DOM \
    --acme-directory "https://127.0.0.1:$dead/dir" --acme-ca "$PEBBLE_CA" \
    --acme-http-port "$(free_port)"
checkx "the failed start left no handle" \
    '[ "$($F proxy status --json | jq length)" = 0 ]'
# Pebble validates on PEBBLE_HTTP_PORT: FLM's answers elsewhere fail it.
check "a refused authorization: the CA's reason" \
    fails_with "the authorization of flm-invalid.example.com is invalid" \
    $F proxy start --port "$P" --mode https-acme \
    --domain flm-invalid.example.com --acme-directory "$PEBBLE_DIRECTORY" \
    --acme-ca "$PEBBLE_CA" --acme-http-port "$(free_port)"
# A CA that answers the order with a rate limit (nginx, Pebble's API
# certificate): its words on the terminal, and keyd's next try no
# sooner than its Retry-After.
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
if [ ! -x "$NGINX" ] && [ "${CI:-}" != true ]; then
	ok "a rate limit: the CA's words # SKIP no nginx"
	ok "keyd waits as long as the CA asks # SKIP no nginx"
else
	N=$A/ca429
	mkdir -p "$N/logs"
	NP=$(free_port)
	U=https://127.0.0.1:$NP
	NONCE='add_header Replay-Nonce n$request_id always;'
	cat >"$N/nginx.conf" <<EOF
daemon off;
worker_processes 1;
pid $N/nginx.pid;
error_log $N/error.log;
events { worker_connections 64; }
http {
	access_log off;
	default_type application/json;
	server {
		listen 127.0.0.1:$NP ssl;
		ssl_certificate $PEBBLE_DIR/cert.pem;
		ssl_certificate_key $PEBBLE_DIR/key.pem;
		location = /dir { return 200 '{"newNonce": "$U/nonce", "newAccount": "$U/acct", "newOrder": "$U/order"}'; }
		location = /nonce { $NONCE return 200; }
		location = /acct { $NONCE add_header Location $U/acct/1 always; return 201 '{"status": "valid"}'; }
		location = /order { $NONCE add_header Retry-After 3600 always; return 429 '{"type": "urn:ietf:params:acme:error:rateLimited", "detail": "too many certificates already issued for this exact set of identifiers", "status": 429}'; }
	}
}
EOF
	"$NGINX" -p "$N" -c "$N/nginx.conf" 2>"$N/start.err" &
	MOCK_PIDS="$MOCK_PIDS $!"
	wait_until 5000 sh -c "curl -sf -m 1 --cacert '$PEBBLE_CA' $U/dir >/dev/null"
	check "a rate limit: the CA's words" \
	    fails_with "order: HTTP 429: rateLimited: too many certificates already issued" \
	    $F proxy start --port "$P" --mode https-acme \
	    --domain flm-limit.example.com --acme-directory "$U/dir" \
	    --acme-ca "$PEBBLE_CA" --acme-http-port "$(free_port)"
	check "keyd waits as long as the CA asks (Retry-After 3600)" \
	    grep -q "ACME order for 127.0.0.1:$P failed: .*rateLimited.* (next try in 3600 s)" \
	    "$STATE/flmd.log"
fi
check "flm-proxyd and flm-keyd are still running" all_running
# Pebble refuses 10% of good nonces at random: a run may meet none,
# and then there is no retry to see (the check below still holds).
if grep -q "badNonce); .* again with a fresh one" "$STATE/flmd.log"; then
	ok "Pebble's badNonce answers were met with a fresh nonce"
else
	ok "Pebble's badNonce answers were met with a fresh nonce # SKIP Pebble refused no nonce in this run"
fi
checkx "no order failed on a badNonce" \
    '! grep -q "failed: .*badNonce" "$STATE/flmd.log"'
checkx "keyd refused nothing from proxyd and logged no malformed message" \
    '! grep -q "malformed" "$STATE/flmd.log"'
