#!/bin/sh
# TLS handles and their certificates as flm and flmd manage them (issue
# 13): the modes' address rules, the certificate flm proxy status shows
# equal to the one served, kept across restarts and renewed when the
# host's names change; the packaged CA (its name constraints, export,
# the trust store); client certificates written once, listed, revoked;
# plain loopback and TLS handles side by side.
. "$(dirname "$0")/lib.sh"

command -v openssl >/dev/null 2>&1 || unavailable "openssl(1)"
command -v curl >/dev/null 2>&1 || unavailable "curl(1)"

plan 43

check "suite starts" suite_start
F="$FLM -D $STATE"
T=$STATE/tls-cli
mkdir -p "$T"
P=$(free_port)
P2=$(free_port)
PLAIN=$(free_port)

# has JSON FILTER: as json_has, and JSON is not empty (jq -e passes on
# no input at all).
has() { [ -n "$1" ] && json_has "$1" "$2"; }

# ---- what flmd refuses before any certificate -------------------------
out=$($F proxy start --bind 127.0.0.2 --port 0 --json 2>&1)
checkx "local-http on 127.0.0.2: loopback is all of 127/8, allowed" \
    'has "$out" ".mode == \"local-http\" and .bind == \"127.0.0.2\" and .certificate == null"'
$F proxy stop --port "$(printf '%s' "$out" | jq .port)" >/dev/null 2>&1
check "local-http on a network address (TEST-NET 192.0.2.1): refused, naming the TLS modes" \
    fails_with "mode local-http serves loopback addresses only (127.0.0.0/8, ::1); a network address needs --mode dev-selfsigned or packaged-ca" \
    $F proxy start --bind 192.0.2.1 --port 0
check "--client-certs with local-http: refused" \
    fails_with "--client-certs needs TLS" \
    $F proxy start --port 0 --client-certs required
check "--hsts with local-http: refused" \
    fails_with "--hsts needs TLS" $F proxy start --port 0 --hsts 600
check "--no-bearer without --client-certs required: refused" \
    fails_with "--no-bearer needs --client-certs required" \
    $F proxy start --bind 127.0.0.2 --port 0 --mode dev-selfsigned \
    --client-certs optional --no-bearer
check "an unknown mode: refused" \
    fails_with "expected local-http, dev-selfsigned, packaged-ca or https-acme" \
    $F proxy start --port 0 --mode acme
check "--bench-no-auth stays loopback only in a TLS mode" \
    fails_with "--bench-no-auth is for benchmarks on loopback only" \
    $F proxy start --bind 192.0.2.1 --port 0 --mode dev-selfsigned \
    --bench-no-auth
check "tls.names refuses a name that is no DNS name" \
    fails_with "expected 1-16 DNS names" $F config set tls.names 'Bad_Name'
check "tls.cert_lifetime refuses less than 60 s" \
    fails_with "60-315360000" $F config set tls.cert_lifetime 30
check "nothing refused was left listening" \
    has "$($F proxy status --json)" 'length == 0'

# ---- dev-selfsigned -----------------------------------------------------
$F config set tls.names flm-a.test,flm-a >/dev/null
out=$($F proxy start --bind 127.0.0.2 --port "$P" --mode dev-selfsigned \
    --json 2>"$T/err")
[ -n "$out" ] || diag "$(cat "$T/err")"
checkx "dev-selfsigned on 127.0.0.2: the start answer has the fingerprint" \
    'has "$out" ".mode == \"dev-selfsigned\" and (.certificate.sha256 | test(\"^([0-9A-F]{2}:){31}[0-9A-F]{2}$\"))"'
st=$($F proxy status --json)
checkx "status: subject, issuer, not_after, client_certs, bearer, hsts" \
    'has "$st" ".[] | select(.port == $P) | (.certificate.subject | startswith(\"CN=\")) and (.certificate.issuer | startswith(\"CN=\")) and (.certificate.not_after | test(\"Z$\")) and .client_certs == \"off\" and .bearer == true and .hsts == 0"'
checkx "status: SANs are the names, localhost and 127.0.0.2" \
    'has "$st" ".[] | select(.port == $P) | .certificate.sans | index(\"DNS:flm-a.test\") and index(\"DNS:flm-a\") and index(\"DNS:localhost\") and index(\"IP:127.0.0.2\")"'
FP1=$(printf '%s' "$st" | jq -r ".[] | select(.port == $P) | .certificate.sha256")

# served_fp ADDR PORT: the SHA-256 of the certificate the port serves.
served_fp() {
	openssl s_client -connect "$1:$2" -servername flm-a.test </dev/null \
	    2>/dev/null | openssl x509 -noout -fingerprint -sha256 2>/dev/null |
	    sed 's/.*=//'
}
checkx "the certificate served is the one status shows" \
    '[ -n "$FP1" ] && [ "$(served_fp 127.0.0.2 "$P")" = "$FP1" ]'

suite_restart "$PLAIN"
wait_until 5000 sh -c "$F proxy status --json | jq -e '.[] | select(.port == $P) | .certificate.sha256' >/dev/null"
FP2=$($F proxy status --json | jq -r ".[] | select(.port == $P) | .certificate.sha256")
checkx "after flmd restarts the handle is back with the same certificate" \
    '[ -n "$FP2" ] && [ "$FP2" = "$FP1" ]'
checkx "and serves it" \
    '[ -n "$FP1" ] && [ "$(served_fp 127.0.0.2 "$P")" = "$FP1" ]'

$F config set tls.names flm-b.test >/dev/null
suite_restart "$PLAIN"
wait_until 5000 sh -c "$F proxy status --json | jq -e '.[] | select(.port == $P) | .certificate.sans | index(\"DNS:flm-b.test\")' >/dev/null"
st=$($F proxy status --json)
FP3=$(printf '%s' "$st" | jq -r ".[] | select(.port == $P) | .certificate.sha256")
checkx "tls.names changed: a new certificate for the new names" \
    '[ -n "$FP3" ] && [ "$FP3" != "$FP1" ] && has "$st" ".[] | select(.port == $P) | .certificate.sans | index(\"DNS:flm-a.test\") | not"'
check "the new one is served" \
    wait_until 3000 sh -c "[ -n '$FP3' ] && [ \"\$(openssl s_client -connect 127.0.0.2:$P </dev/null 2>/dev/null | openssl x509 -noout -fingerprint -sha256 2>/dev/null | sed 's/.*=//')\" = '$FP3' ]"

# ---- both modes at once -------------------------------------------------
checkx "plain loopback and TLS handles at once: status has both" \
    'has "$($F proxy status --json)" "[.[] | .mode] | index(\"local-http\") and index(\"dev-selfsigned\")"'
check "the plain one answers HTTP" \
    [ "$(http_code "http://127.0.0.1:$PLAIN/healthz")" = 200 ]
check "the TLS one answers HTTPS for its name (pinned by --cacert: it is self-signed)" \
    sh -c "openssl s_client -connect 127.0.0.2:$P </dev/null 2>/dev/null | openssl x509 >'$T/self.pem' 2>/dev/null && [ \"\$(curl -s -o /dev/null -m 5 -w '%{http_code}' --cacert '$T/self.pem' --resolve flm-b.test:$P:127.0.0.2 https://flm-b.test:$P/healthz)\" = 200 ]"

# ---- packaged-ca --------------------------------------------------------
out=$($F proxy start --bind 127.0.0.3 --port "$P2" --mode packaged-ca \
    --json 2>"$T/err")
[ -n "$out" ] || diag "$(cat "$T/err")"
checkx "packaged-ca on 127.0.0.3: issued by the local CA" \
    'has "$out" ".mode == \"packaged-ca\" and .certificate.issuer != .certificate.subject"'
$F ca export --out "$T/ca.pem"
check "ca export --out writes the CA's PEM" \
    sh -c "openssl x509 -in '$T/ca.pem' -noout 2>/dev/null"
check "curl --cacert (the exported CA) verifies the chain" \
    [ "$(http_code "https://flm-b.test:$P2/healthz" --cacert "$T/ca.pem" \
    --resolve "flm-b.test:$P2:127.0.0.3")" = 200 ]
check "the CA carries critical name constraints" \
    sh -c "openssl x509 -in '$T/ca.pem' -noout -text | grep -A1 'Name Constraints' | grep -q critical"

# ---- the trust store, in a stand-in directory ---------------------------
mkdir -p "$T/trust"
FLM_CA_TRUST_DIR=$T/trust FLM_CA_TRUST_CMD="touch '$T/updated'" \
    $F ca trust --json >"$T/out" 2>"$T/err"
checkx "ca trust: the CA in the store, the update command run" \
    'cmp -s "$T/trust/flm-local-ca.crt" "$T/ca.pem" && [ -f "$T/updated" ]'
checkx "ca status: in the trust store" \
    'has "$(FLM_CA_TRUST_DIR=$T/trust $F ca status --json)" ".in_trust_store == true and (.permitted | length > 0) and .sha256 != null"'
rm -f "$T/updated"
FLM_CA_TRUST_DIR=$T/trust FLM_CA_TRUST_CMD="touch '$T/updated'" \
    $F ca untrust --json >"$T/out" 2>"$T/err"
checkx "ca untrust: removed, the update command run, status says so" \
    '[ ! -e "$T/trust/flm-local-ca.crt" ] && [ -f "$T/updated" ] && has "$(FLM_CA_TRUST_DIR=$T/trust $F ca status --json)" ".in_trust_store == false"'

# The real store is root's: refused before flmd is even asked.
if [ ! -d /usr/local/share/ca-certificates ] &&
    [ ! -d /etc/pki/ca-trust/source/anchors ]; then
	ok "# SKIP no OS trust store directory here"
elif [ "$(id -u)" != 0 ]; then
	check "ca trust without root: refused, saying so" \
	    fails_with "the OS trust store is root's" $F ca trust
elif command -v setpriv >/dev/null 2>&1; then
	check "ca trust without root: refused, saying so" \
	    fails_with "the OS trust store is root's" setpriv --reuid=65534 \
	    --regid=65534 --clear-groups $F ca trust
else
	ok "# SKIP root, and no setpriv(1) to drop it"
fi

# ---- client certificates ------------------------------------------------
$F clients issue alice --out "$T/alice" --json >"$T/out" 2>"$T/err" ||
    diag "$(cat "$T/err")"
checkx "clients issue: .crt, .key (0600) and .p12, the key not printed" \
    '[ -s "$T/alice.crt" ] && [ "$(stat -c %a "$T/alice.key")" = 600 ] && [ -s "$T/alice.p12" ] && ! grep -q PRIVATE "$T/out" && has "$(cat "$T/out")" ".label == \"alice\" and (.key | not)"'
checkx "the key matches the certificate, which the CA signed" \
    '[ -s "$T/alice.key" ] && [ "$(openssl pkey -in "$T/alice.key" -pubout 2>/dev/null)" = "$(openssl x509 -in "$T/alice.crt" -noout -pubkey 2>/dev/null)" ] && openssl verify -CAfile "$T/ca.pem" "$T/alice.crt" >/dev/null 2>&1'
check "the .p12 parses with the empty password" \
    sh -c "openssl pkcs12 -in '$T/alice.p12' -nokeys -passin pass: 2>/dev/null | grep -q 'BEGIN CERTIFICATE'"
# The key passed through flmd on its way to flm: no line of it is left
# in flmd's memory (tests/mem-grep reads /proc/PID/mem).
MEMGREP=$top_builddir/tests/mem-grep
if [ -s "$T/alice.key" ] && n=$("$MEMGREP" "$FLMD_PID" flmd 2>/dev/null) &&
    [ "$n" -gt 0 ]; then
	leaks=0
	for l in $(grep -v '^-----' "$T/alice.key"); do
		c=$("$MEMGREP" "$FLMD_PID" "$l" 2>/dev/null || echo 1)
		leaks=$((leaks + c))
	done
	check "no line of the client's key is left in flmd's memory (found $leaks)" \
	    [ "$leaks" = 0 ]
else
	ok "# SKIP cannot read flmd's memory here, or no key was issued"
fi
sum=$(cat "$T/alice.crt" "$T/alice.key" 2>/dev/null | cksum)
check "a second issue to the same prefix is refused (O_EXCL), the files unchanged" \
    sh -c "[ -s '$T/alice.key' ] && ! $F clients issue bob --out '$T/alice' >/dev/null 2>'$T/err' && grep -q 'never overwritten' '$T/err' && [ \"\$(cat '$T/alice.crt' '$T/alice.key' | cksum)\" = '$sum' ]"
checkx "clients list: alice, not revoked; bob never issued" \
    'has "$($F clients list --json)" "[.[] | select(.label == \"alice\" and .revoked_at == null)] | length == 1" && ! has "$($F clients list --json)" "any(.[]; .label == \"bob\")"'
$F clients revoke alice >/dev/null 2>&1
checkx "clients revoke: alice revoked in the list" \
    'has "$($F clients list --json)" ".[] | select(.label == \"alice\") | .revoked_at | type == \"string\""'

# ---- renewal by keyd reaches flmd --------------------------------------
# A 60 s certificate is renewed by keyd at about 40 s; IMSG_TLS_RENEWED
# gives flmd the new one, which status shows and the port serves.
$F config set tls.cert_lifetime 60 >/dev/null
P4=$(free_port)
R0=$($F proxy start --bind 127.0.0.4 --port "$P4" --mode packaged-ca \
    --json 2>/dev/null | jq -r '.certificate.sha256')
renewed() {
	r=$($F proxy status --json | jq -r ".[] | select(.port == $P4) | .certificate.sha256")
	[ -n "$r" ] && [ "$r" != null ] && [ "$r" != "$R0" ]
}
checkx "a 60 s certificate: renewed by keyd within 70 s, and status shows the new one" \
    '[ -n "$R0" ] && [ "$R0" != null ] && wait_until 70000 renewed'
R1=$($F proxy status --json | jq -r ".[] | select(.port == $P4) | .certificate.sha256")
check "the renewed certificate is the one served" \
    wait_until 3000 sh -c "[ -n '$R1' ] && [ \"\$(openssl s_client -connect 127.0.0.4:$P4 </dev/null 2>/dev/null | openssl x509 -noout -fingerprint -sha256 2>/dev/null | sed 's/.*=//')\" = '$R1' ]"

# ---- a keyd that lies about certificates --------------------------------
# flmd restarts on the same state with tests/fake-child as keyd: its
# IMSG_TLS_RENEWED (58) are checked, the bad ones logged and ignored,
# never shown; keyd is not restarted for them and flmd lives on.
FAKE=$top_builddir/tests/fake-child
FP=$(printf 'AB:%.0s' $(seq 31))AB
CI='{"id":"00112233445566aa","mode":"dev-selfsigned","subject":"CN=x","issuer":"CN=x","not_before":"2026-01-01T00:00:00Z","not_after":"2027-01-01T00:00:00Z","sans":["DNS:x"],"sha256":"'$FP'","serial":"0a"}'
BAD=$(printf '%s' "$CI" | sed 's/"sha256":"AB/"sha256":"ab/')
printf '#!/bin/sh\nexec "%s" -k sleep 1500 json 58 %s json 58 %s json 58 %s json 58 %s\n' \
    "$FAKE" "'[1]'" "'{\"handle\":\"127.0.0.2:$P\",\"cert\":$BAD}'" \
    "'{\"handle\":\"10.9.9.9:1\",\"cert\":$CI}'" \
    "'{\"handle\":\"127.0.0.2:$P\",\"cert\":$CI}'" >"$T/liar"
chmod +x "$T/liar"
suite_stop
FLM_KEYD_PATH=$T/liar "$FLMD" -d -v -D "$STATE" >>"$STATE/flmd.log" 2>&1 &
FLMD_PID=$!
wait_until 5000 all_running
logged() { grep -q "$1" "$STATE/flmd.log"; }
check "a TLS_RENEWED that is no object: logged, ignored" \
    wait_until 4000 logged "malformed TLS_RENEWED; ignored"
check "a CERTINFO with a lower-case fingerprint: logged, ignored" \
    wait_until 4000 logged "proxy 127.0.0.2:$P: flm-keyd described its certificate wrongly; ignored"
check "a renewal for a handle flmd has not: logged, ignored" \
    wait_until 4000 logged "renewed a certificate for 10.9.9.9:1, which is no TLS handle; ignored"
checkx "a well-formed one is taken; flmd lives, the fake keyd was never restarted" \
    'wait_until 4000 sh -c "$F proxy status --json | jq -e \".[] | select(.port == $P) | .certificate.sha256 == \\\"$FP\\\"\" >/dev/null" && kill -0 "$FLMD_PID" && [ "$(proc_field flm-keyd restarts)" = 0 ]'
