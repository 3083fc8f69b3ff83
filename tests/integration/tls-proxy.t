#!/bin/sh
# flm-proxyd over TLS (issue 13): requests reach the engine through
# dev-selfsigned and packaged-ca handles; the handshake's signature is
# made by flm-keyd, so a stopped keyd stalls new handshakes only, never
# an established connection, and proxyd's memory holds no private key;
# plain HTTP, garbage, stalled and a thousand half-open handshakes are
# each closed with proxyd alive; client certificates: required refuses a
# client without one and a revoked one, names the certificate in the
# audit record, and stands in for the bearer key with --no-bearer;
# they are accepted by allow-list, so rows deleted or copied in
# security.db (no master key needed) cannot let a certificate back in.
. "$(dirname "$0")/lib.sh"

command -v openssl >/dev/null 2>&1 || unavailable "openssl(1)"
command -v curl >/dev/null 2>&1 || unavailable "curl(1)"
command -v sqlite3 >/dev/null 2>&1 || unavailable "sqlite3(1)"

MEMGREP=$top_builddir/tests/mem-grep
UNSEAL=$top_builddir/tests/tls-unseal
RAW=$top_builddir/tests/http-raw
# Built with flm-keyd's TLS part: without it (this branch alone, before
# the merge of issue 13's parts) there is nothing to test against.
if [ ! -x "$UNSEAL" ]; then
	echo "1..0 # SKIP needs flm-keyd's TLS part (tests/tls-unseal)"
	exit 0
fi

plan 47

# Requests go to openssl s_client through FIFOs: should one die, a write
# must fail, not kill this script (its cleanup would not run).
trap '' PIPE

mock_init
mock --flavor vllm --models llama3.2:1b
check "suite starts" suite_start
F="$FLM -D $STATE"
$F config set engines.vllm.url "http://127.0.0.1:$MPORT" >/dev/null
# Handshakes and heads that stall are closed after 2 s.
$F config set proxy.header_timeout 2 >/dev/null
KEY=$($F api-keys create --label tls --json | jq -r .key)
A="Authorization: Bearer $KEY"
CHAT='{"model":"llama3.2:1b","messages":[{"role":"user","content":"hi"}]}'
P=$(free_port)

# has JSON FILTER: as has, and JSON is not empty (jq -e passes on
# no input at all).
has() { [ -n "$1" ] && json_has "$1" "$2"; }
# hexrev HEX: the bytes in the other order (a BIGNUM's limbs lie in
# memory little-endian).
hexrev() { printf '%s' "$1" | sed 's/../&\n/g' | sed '/^$/d' | tac | tr -d '\n'; }
# scalar_of KEYFILE: the private scalar of a P-256 key, 64 hex digits
# (the DER ECPrivateKey's octet string after its 7-byte prefix).
scalar_of() {
	openssl ec -in "$1" -outform DER 2>/dev/null | od -An -tx1 -v |
	    tr -d ' \n' | cut -c15-78
}
# copies PID HEX: copies of the bytes in PID's memory, either order.
copies() {
	a=$("$MEMGREP" -x "$1" "$2") && b=$("$MEMGREP" -x "$1" \
	    "$(hexrev "$2")") && echo $((a + b))
}

# ---- dev-selfsigned -----------------------------------------------------
out=$($F proxy start --bind 127.0.0.2 --port "$P" --mode dev-selfsigned \
    --json 2>&1)
FP=$(printf '%s' "$out" | jq -r .certificate.sha256 2>/dev/null)
[ -n "$FP" ] && [ "$FP" != null ] || diag "$out"
# The client pins what flm printed: the served certificate is the one.
openssl s_client -connect "127.0.0.2:$P" -showcerts </dev/null 2>/dev/null |
    sed -n '/BEGIN CERT/,/END CERT/p' >"$TMP/self.pem"
GOT=$(openssl x509 -in "$TMP/self.pem" -noout -fingerprint -sha256 \
    2>/dev/null | sed 's/.*=//')
check "the certificate served is the one flm proxy start printed" \
    [ -n "$GOT" ] && [ "$GOT" = "$FP" ]
U=https://127.0.0.2:$P
C="curl -s -m 10 --cacert $TMP/self.pem"
wait_until 5000 sh -c "$F models list --json | grep -q flm://vllm/llama3.2:1b"
body=$($C -H "$A" -H 'Content-Type: application/json' -d "$CHAT" \
    "$U/v1/chat/completions")
checkx "a chat completion through TLS reaches the engine (curl --cacert)" \
    'has "$body" ".object == \"chat.completion\" and
    (.choices[0].message.content | length > 0)"'
PXPID=$(proc_pid flm-proxyd)
KDPID=$(proc_pid flm-keyd)
# A pid of 0 or -1 would signal a whole group: never.
real_pid() { case $1 in ''|*[!0-9]*|0|1) return 1 ;; esac; }
if ! real_pid "$PXPID" || ! real_pid "$KDPID"; then
	not_ok "flm status names proxyd and keyd ($PXPID, $KDPID)"
	exit 1
fi
checkx "without the key: 401, over TLS too" \
    '[ "$($C -o /dev/null -w "%{http_code}" "$U/v1/models")" = 401 ]'
hdr=$($C -D - -o /dev/null -H "$A" "$U/v1/models" | tr -d '\r')
checkx "TLS 1.3, ALPN http/1.1, no HSTS unless asked" \
    '! printf "%s" "$hdr" | grep -qi "^strict-transport" &&
    openssl s_client -connect 127.0.0.2:$P -alpn http/1.1 </dev/null 2>&1 |
    grep -q "ALPN protocol: http/1.1" &&
    openssl s_client -connect 127.0.0.2:$P </dev/null 2>&1 |
    grep -q "TLSv1.3"'
check "a client offering ALPN without http/1.x (h2 only) gets no_application_protocol" \
    sh -c "openssl s_client -connect 127.0.0.2:$P -alpn h2 </dev/null 2>&1 |
    grep -q 'no application protocol'"
check "a client offering only http/1.0 (curl --http1.0) gets it" \
    sh -c "openssl s_client -connect 127.0.0.2:$P -alpn http/1.0 </dev/null 2>&1 |
    grep -q 'ALPN protocol: http/1.0'"
check "TLS 1.1 is refused" sh -c "! openssl s_client -connect 127.0.0.2:$P \
    -tls1_1 </dev/null >/dev/null 2>&1"
checkx "TLS 1.2 with ECDHE-ECDSA-AES128-GCM-SHA256 is served" \
    'openssl s_client -connect 127.0.0.2:$P -tls1_2 </dev/null 2>&1 |
    grep -q "Cipher is ECDHE-ECDSA-AES128-GCM-SHA256"'
check "TLS 1.2 without an AEAD ECDHE cipher is refused" \
    sh -c "! openssl s_client -connect 127.0.0.2:$P -tls1_2 \
    -cipher ECDHE-ECDSA-AES128-SHA256 </dev/null >/dev/null 2>&1"

# ---- keyd stopped: established connections flow, new handshakes wait -----
mkfifo "$TMP/ka.in"
openssl s_client -connect "127.0.0.2:$P" -CAfile "$TMP/self.pem" \
    -verify_return_error -quiet <"$TMP/ka.in" >"$TMP/ka.out" \
    2>"$TMP/ka.err" &
KA=$!
exec 3>"$TMP/ka.in"
REQ="GET /v1/models HTTP/1.1\r\nHost: x\r\n$A\r\n\r\n"
# Answers so far (a body has no final newline: the next status line
# follows it on the same line).
n200() { grep -o 'HTTP/1.1 200' "$TMP/ka.out" | wc -l; }
printf "$REQ" >&3
wait_until 5000 sh -c "[ \$(grep -o 'HTTP/1.1 200' $TMP/ka.out | wc -l) -ge 1 ]"
check "a keep-alive TLS connection (openssl s_client) is answered" \
    [ "$(n200)" -ge 1 ]
kill -STOP "$KDPID"
$C -o "$TMP/new.out" -w '%{http_code}' -H "$A" "$U/v1/models" \
    >"$TMP/new.code" 2>&1 &
NEW=$!
sleep 0.5
printf "$REQ" >&3
wait_until 3000 sh -c "[ \$(grep -o 'HTTP/1.1 200' $TMP/ka.out | wc -l) -ge 2 ]"
check "keyd stopped: the established connection still gets answers" \
    [ "$(n200)" -ge 2 ]
check "while a new handshake waits for keyd's signature" \
    sh -c "kill -0 $NEW 2>/dev/null && [ ! -s $TMP/new.code ]"
kill -CONT "$KDPID"
wait "$NEW"
check "keyd resumed: the waiting handshake completes, its request answered" \
    [ "$(cat "$TMP/new.code")" = 200 ]
H="GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
before=$(n200)
printf "$H$H$H" >&3
wait_until 3000 sh -c "[ \$(grep -o 'HTTP/1.1 200' $TMP/ka.out | wc -l) -ge \
    $((before + 3)) ]"
check "three requests pipelined in one TLS write get three answers" \
    [ "$(n200)" -eq $((before + 3)) ]
exec 3>&-
kill "$KA" 2>/dev/null
wait "$KA" 2>/dev/null

# ---- keys: in keyd, never in proxyd -----------------------------------------
SCALAR=$("$UNSEAL" "$STATE/keyd" "127.0.0.2:$P" 2>/dev/null)
if [ ${#SCALAR} != 64 ]; then
	not_ok "tests/tls-unseal gives the server key's scalar ($SCALAR)"
	not_ok "proxyd's memory holds no byte string of the server key"
elif ! n=$(copies "$KDPID" "$SCALAR"); then
	ok "the scanner finds the server key in flm-keyd, which holds it # SKIP cannot read another process's memory here"
	ok "proxyd's memory holds no byte string of the server key # SKIP cannot read another process's memory here"
else
	check "the scanner finds the server key in flm-keyd, which holds it" \
	    [ "$n" -gt 0 ]
	check "proxyd's memory holds no byte string of the server key" \
	    [ "$(copies "$PXPID" "$SCALAR")" = 0 ]
fi

# ---- what is not a TLS client ---------------------------------------------
P1=$(free_port)
$F proxy start --bind 127.0.0.1 --port "$P1" --mode dev-selfsigned \
    >/dev/null 2>&1
wait_until 3000 sh -c "openssl s_client -connect 127.0.0.1:$P1 </dev/null \
    2>/dev/null | grep -q 'BEGIN CERT\|Server certificate'"
out=$(printf 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n' | "$RAW" -t 5000 "$P1")
checkx "plain HTTP to a TLS port: closed, no HTTP answer" \
    '[ $? = 0 ] && ! printf "%s" "$out" | grep -q "HTTP/1"'
out=$(printf '\026\003\001\000\020garbage garbage!' | "$RAW" -t 5000 "$P1")
check "a garbage ClientHello: closed" [ $? = 0 ]
t0=$(date +%s)
printf '\026\003\001\002\000\001\000\001\374\003\003' | "$RAW" -t 8000 "$P1" \
    >/dev/null
rc=$?
t1=$(date +%s)
checkx "a client stalling mid-handshake is closed at header_timeout (2 s)" \
    '[ $rc = 0 ] && [ $((t1 - t0)) -ge 1 ] && [ $((t1 - t0)) -le 5 ]'
out=$("$RAW" -n 1000 -t 8000 "$P1" 2>/dev/null)
check "1,000 half-open handshakes: every one closed ($out)" [ "$out" = 1000 ]
checkx "proxyd lived through it all (same pid) and serves a good request" \
    '[ "$(proc_pid flm-proxyd)" = "$PXPID" ] &&
    [ "$($C -o /dev/null -w "%{http_code}" -H "$A" "$U/v1/models")" = 200 ]'

# ---- client certificates ---------------------------------------------------
P2=$(free_port)
P3=$(free_port)
out=$($F proxy start --bind 127.0.0.2 --port "$P2" --mode packaged-ca \
    --client-certs required --hsts 600 --json 2>&1)
has "$out" '.certificate.sha256' || diag "$out"
$F ca export --out "$TMP/ca.pem" >/dev/null 2>&1
$F clients issue alice --out "$TMP/alice" >/dev/null 2>&1
$F clients issue bob --out "$TMP/bob" >/dev/null 2>&1
M="curl -s -m 10 --cacert $TMP/ca.pem"
U2=https://127.0.0.2:$P2
code=$($M -o /dev/null -w '%{http_code}' -H "$A" "$U2/v1/models")
check "required: a client without a certificate never reaches HTTP ($code)" \
    [ "$code" = 000 ]
hdr=$($M -D - -o /dev/null -w '%{http_code}' --cert "$TMP/alice.crt" \
    --key "$TMP/alice.key" -H "$A" "$U2/v1/models" | tr -d '\r')
checkx "required: alice's certificate (flm clients issue) is accepted" \
    'printf "%s" "$hdr" | tail -1 | grep -qx 200'
checkx "--hsts 600: Strict-Transport-Security: max-age=600" \
    'printf "%s" "$hdr" | grep -qix "strict-transport-security: max-age=600"'
SER=$(openssl x509 -in "$TMP/alice.crt" -noout -serial | sed 's/.*=//' |
    tr A-F a-f)
wait_until 3000 sh -c "$F audit tail -n 1 --json | grep -q alice"
checkx "the audit record names the certificate (serial and label)" \
    'has "$($F audit tail -n 1 --json)" ".records[0] |
    .cert_label == \"alice\" and .cert_serial == \"$SER\""'
code=$($M -o /dev/null -w '%{http_code}' --cert "$TMP/self.pem" \
    --key "$TMP/alice.key" -H "$A" "$U2/v1/models")
check "a certificate not from the local CA: refused ($code)" [ "$code" = 000 ]
$F clients revoke alice >/dev/null 2>&1
code=$($M -o /dev/null -w '%{http_code}' --cert "$TMP/alice.crt" \
    --key "$TMP/alice.key" -H "$A" "$U2/v1/models")
check "flm clients revoke alice: refused at the next handshake ($code)" \
    [ "$code" = 000 ]
code=$($M -o /dev/null -w '%{http_code}' --cert "$TMP/bob.crt" \
    --key "$TMP/bob.key" -H "$A" "$U2/v1/models")
check "bob, not revoked, is still served ($code)" [ "$code" = 200 ]
code=$($M -o /dev/null -w '%{http_code}' --cert "$TMP/bob.crt" \
    --key "$TMP/bob.key" "$U2/v1/models")
check "with the bearer required too, bob without a key: 401 ($code)" \
    [ "$code" = 401 ]

# The client key is found where it is held (openssl s_client using it),
# and not in proxyd.
BS=$(scalar_of "$TMP/bob.key")
mkfifo "$TMP/bob.in"
openssl s_client -connect "127.0.0.2:$P2" -cert "$TMP/bob.crt" \
    -key "$TMP/bob.key" -CAfile "$TMP/ca.pem" -quiet <"$TMP/bob.in" \
    >"$TMP/bob.out" 2>/dev/null &
BC=$!
exec 4>"$TMP/bob.in"
printf "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" >&4
wait_until 5000 grep -q '^HTTP/1.1 200' "$TMP/bob.out"
if ! n=$(copies "$BC" "$BS"); then
	ok "the scanner finds bob's key in the client using it # SKIP cannot read another process's memory here"
	ok "proxyd's memory holds no byte string of the client key # SKIP cannot read another process's memory here"
else
	check "the scanner finds bob's key in the client using it ($n)" \
	    [ "$n" -gt 0 ]
	check "proxyd's memory holds no byte string of the client key" \
	    [ "$(copies "$PXPID" "$BS")" = 0 ]
fi
exec 4>&-
kill "$BC" 2>/dev/null
wait "$BC" 2>/dev/null

out=$($F proxy start --bind 127.0.0.2 --port "$P3" --mode packaged-ca \
    --client-certs required --no-bearer --json 2>&1)
has "$out" '.bearer == false' || diag "$out"
U3=https://127.0.0.2:$P3
body=$($M --cert "$TMP/bob.crt" --key "$TMP/bob.key" \
    -H 'Content-Type: application/json' -d "$CHAT" "$U3/v1/chat/completions")
checkx "--no-bearer: the certificate stands in for the key" \
    'has "$body" ".object == \"chat.completion\""'
wait_until 3000 sh -c "$F audit tail -n 1 --json | grep -q bob"
checkx "its audit record: no key, bob's certificate" \
    'has "$($F audit tail -n 1 --json)" ".records[0] |
    (.key_id == null or .key_id == \"\") and .cert_label == \"bob\""'
code=$($M -o /dev/null -w '%{http_code}' -H "$A" "$U3/v1/models")
check "--no-bearer: a key without a certificate does not get in ($code)" \
    [ "$code" = 000 ]

# ---- the allow-list: security.db written without the master key ----------
# Whoever can write security.db but has no master key can delete rows
# and copy them; keyd lists only issued, unrevoked, unexpired clients
# whose row passes its MAC, and proxyd accepts no other.
DB() { sqlite3 -cmd ".timeout 5000" "$STATE/keyd/security.db" "$1"; }
serial_of() {
	openssl x509 -in "$1" -noout -serial | sed 's/.*=//' | tr A-F a-f
}
$F clients issue carol --out "$TMP/carol" >/dev/null 2>&1
$F clients issue dave --out "$TMP/dave" >/dev/null 2>&1
CSER=$(serial_of "$TMP/carol.crt")
code=$($M -o /dev/null -w '%{http_code}' --cert "$TMP/carol.crt" \
    --key "$TMP/carol.key" -H "$A" "$U2/v1/models")
check "carol, just issued, is served at once ($code)" [ "$code" = 200 ]
check "alice's refusal is logged as revoked" \
    grep -q "client certificate $SER refused: revoked" "$STATE/flmd.log"
DB "DELETE FROM certificates WHERE label IN ('alice', 'carol')"
DB "INSERT INTO certificates (id, purpose, label, serial, subject,
    not_before, not_after, sha256, cert_pem, mac) SELECT
    '7777777777777777', purpose, label, '7777777777777777', subject,
    not_before, not_after, sha256, cert_pem, mac FROM certificates
    WHERE label = 'bob'"
# Any change has keyd push its whole state, read again from security.db;
# the revoke is answered once proxyd applied it.
$F clients revoke dave >/dev/null 2>&1
code=$($M -o /dev/null -w '%{http_code}' --cert "$TMP/alice.crt" \
    --key "$TMP/alice.key" -H "$A" "$U2/v1/models")
check "alice revoked, then her row deleted from security.db: still refused at the handshake ($code)" \
    [ "$code" = 000 ]
code=$($M -o /dev/null -w '%{http_code}' --cert "$TMP/carol.crt" \
    --key "$TMP/carol.key" -H "$A" "$U2/v1/models")
check "carol, signed by the local CA and never revoked, her row deleted: refused ($code)" \
    [ "$code" = 000 ]
check "carol's refusal is logged as not issued by this keyd" \
    grep -q "client certificate $CSER refused: not issued by this flm-keyd" \
    "$STATE/flmd.log"
check "bob's row copied under another serial fails its MAC: not allowed, logged" \
    grep -q "client certificate 7777777777777777: its row in security.db fails its MAC (changed outside flm-keyd): not an allowed client" \
    "$STATE/flmd.log"
code=$($M -o /dev/null -w '%{http_code}' --cert "$TMP/bob.crt" \
    --key "$TMP/bob.key" -H "$A" "$U2/v1/models")
check "bob, untouched, is still served ($code)" [ "$code" = 200 ]

# ---- keyd gone while a handshake waits ------------------------------------
KDPID=$(proc_pid flm-keyd)
real_pid "$KDPID" || exit 1
kill -STOP "$KDPID"
$C -o /dev/null -w '%{http_code}' "$U/healthz" >"$TMP/gone.code" 2>&1 &
NEW=$!
sleep 0.5
kill -KILL "$KDPID"
kill -CONT "$KDPID" 2>/dev/null
t0=$(date +%s)
wait "$NEW"
t1=$(date +%s)
checkx "keyd killed: the handshake waiting on it is closed at once" \
    '[ "$(cat "$TMP/gone.code")" = 000 ] && [ $((t1 - t0)) -le 3 ]'
check "proxyd lives on (same pid)" [ "$(proc_pid flm-proxyd)" = "$PXPID" ]
wait_until 10000 sh -c "[ \"\$($C -o /dev/null -w '%{http_code}' \
    $U/healthz)\" = 200 ]"
check "the restarted keyd signs again: a new handshake is served" \
    [ "$($C -o /dev/null -w '%{http_code}' "$U/healthz")" = 200 ]

# A handshake paused on keyd when proxyd stops: the job is failed and run
# to its end, then freed, and proxyd exits cleanly (that nothing leaks is
# tests/unit/test_tls_sign's: a sandboxed daemon skips LeakSanitizer).
PXPID=$(proc_pid flm-proxyd)
KDPID=$(proc_pid flm-keyd)
real_pid "$PXPID" && real_pid "$KDPID" || exit 1
kill -STOP "$KDPID"
$C -o /dev/null "$U/healthz" 2>/dev/null &
NEW=$!
sleep 0.5
kill -TERM "$FLMD_PID"
wait_until 5000 sh -c "! kill -0 $PXPID 2>/dev/null"
kill -CONT "$KDPID"
wait "$FLMD_PID" 2>/dev/null
FLMD_PID=
wait "$NEW"
check "stopped while a handshake waits on keyd, proxyd exits 0" \
    grep -q "flm-proxyd (pid $PXPID) stopped (exit 0)" "$STATE/flmd.log"
check "proxyd logged no sanitizer report" \
    sh -c "! grep -q 'ERROR: \(Address\|Leak\)Sanitizer\|runtime error' \
    $STATE/flmd.log"
