#!/bin/sh
# Real TLS clients against FLM on a second loopback address (127.0.0.2,
# routed to lo by Linux without setup), each with a real answer from
# the mock Ollama through the proxy: a dev-selfsigned handle trusted by
# its own certificate (curl --cacert, openssl s_client
# -verify_return_error, the official openai npm client with
# NODE_EXTRA_CA_CERTS) or pinned by the key of the certificate whose
# fingerprint flm printed (curl --pinnedpubkey); a packaged-ca handle
# trusted through the exported local CA by the same clients and by
# headless Chromium, the CA in an NSS database (certutil) of a scratch
# HOME; and a packaged-ca handle that requires a client certificate
# (flm clients issue), reached with it (curl --cert, and its .p12) and
# refused without it.  Each trust path also has its control: without
# the CA (or with the wrong pin) the client refuses the server.
# Needs openssl, certutil (libnss3-tools), chromium, node and npm
# (scripts/deps.sh --test); without one the test is skipped, except
# under CI, where it fails.
. "$(dirname "$0")/lib.sh"

unset FLM_API_KEY
ADDR=127.0.0.2
MODEL=flm://ollama/llama3.2:1b

chromium_find
for c in openssl certutil; do
	command -v $c >/dev/null 2>&1 || unavailable "no $c"
done
mock_init
openai_install

plan 34

mock --flavor ollama
ENGINE=$MPORT
mock --flavor vllm --models page
APP=http://127.0.0.1:$MPORT
check "suite starts" suite_start
F="$FLM -D $STATE"
$F config set engines.ollama.url "http://127.0.0.1:$ENGINE" >/dev/null
KEY=$($F api-keys create --label tls --json | jq -r .key)
AUTH="Authorization: Bearer $KEY"

# start NAME ARGS...: a handle on ADDR, its flm proxy start --json
# answer in TMP/NAME.json, its port in PORT; 0 if it started.
start() {
	s_name=$1
	shift
	$F proxy start --bind $ADDR --port 0 "$@" --json \
	    >"$TMP/$s_name.json" 2>"$TMP/$s_name.err"
	s_rc=$?
	PORT=$(jq -r '.port // empty' "$TMP/$s_name.json" 2>/dev/null)
	[ $s_rc = 0 ] && [ -n "$PORT" ] && return 0
	diag "flm proxy start $* ($s_rc): $(cat "$TMP/$s_name.err" \
	    "$TMP/$s_name.json")"
	return 1
}
# The SHA-256 fingerprint in a JSON answer (colon hex, upper case),
# wherever flm put it.
fingerprint() {
	jq -r '[.. | strings | select(test("^([0-9A-F]{2}:){31}[0-9A-F]{2}$"))]
	    | first // empty' "$1" 2>/dev/null
}
# served PORT FILE: the certificates the handle serves, leaf first, as PEM.
served() {
	openssl s_client -connect $ADDR:"$1" -showcerts </dev/null 2>/dev/null |
	    sed -n '/-BEGIN CERTIFICATE-/,/-END CERTIFICATE-/p' >"$2"
	[ -s "$2" ]
}
# The fingerprint of a PEM certificate, as flm prints it.
cert_sha256() {
	openssl x509 -in "$1" -noout -fingerprint -sha256 | sed 's/^.*=//'
}
# models CURLARGS...: GET /v1/models over TLS, the body in TMP/models,
# curl's exit status in CURL_RC; 0 if it listed the mock's model.
models() {
	rm -f "$TMP/models"
	curl -s -m 10 -o "$TMP/models" -H "$AUTH" "$@"
	CURL_RC=$?
	jq -e --arg m "$MODEL" '[.data[].id] | index($m) != null' \
	    "$TMP/models" >/dev/null 2>&1
}
# sclient PORT CAFILE [ARGS]: GET /v1/models over openssl s_client,
# which stops unless the chain verifies for the IP address; the answer
# in TMP/sclient.
sclient() {
	s_port=$1
	s_ca=$2
	shift 2
	printf 'GET /v1/models HTTP/1.1\r\nHost: %s:%s\r\n%s\r\nConnection: close\r\n\r\n' \
	    $ADDR "$s_port" "$AUTH" |
	    timeout 10 openssl s_client -quiet -connect $ADDR:"$s_port" \
	    -CAfile "$s_ca" -verify_return_error -verify_ip $ADDR "$@" \
	    >"$TMP/sclient" 2>"$TMP/sclient.err"
	head -1 "$TMP/sclient" | grep -q '^HTTP/1.1 200' &&
	    grep -q "\"$MODEL\"" "$TMP/sclient"
}

# ---- dev-selfsigned -----------------------------------------------------
start dev --mode dev-selfsigned
DEV=$PORT
FP=$(fingerprint "$TMP/dev.json")
checkx "dev-selfsigned on $ADDR: started, its SHA-256 fingerprint printed ($FP)" \
    '[ -n "$DEV" ] && [ -n "$FP" ]'
wait_until 3000 served "$DEV" "$TMP/dev.pem"
checkx "the certificate served has that fingerprint and names $ADDR" \
    '[ "$(cert_sha256 "$TMP/dev.pem")" = "$FP" ] &&
    openssl x509 -in "$TMP/dev.pem" -noout -ext subjectAltName |
    grep -q "IP Address:$ADDR"'
st=$($F proxy status --json)
checkx "flm proxy status shows it: mode, fingerprint, IP SAN" \
    'json_has "$st" ".[] | select(.port == $DEV) | .mode == \"dev-selfsigned\"
    and .certificate.sha256 == \"$FP\"
    and (.certificate.sans | index(\"IP:$ADDR\") != null)"'

models --cacert "$TMP/dev.pem" "https://$ADDR:$DEV/v1/models"
checkx "curl --cacert (the certificate itself): 200 and the models ($CURL_RC)" \
    '[ $CURL_RC = 0 ]'
models "https://$ADDR:$DEV/v1/models"
checkx "... curl trusting only the system CAs refuses it (exit $CURL_RC, 60)" \
    '[ $CURL_RC = 60 ]'
check "openssl s_client -verify_return_error -verify_ip $ADDR: 200 and the models" \
    sclient "$DEV" "$TMP/dev.pem"
# The pin: the SHA-256 of the public key of the certificate whose
# fingerprint flm printed (checked above), as curl wants it.
PIN=$(openssl x509 -in "$TMP/dev.pem" -noout -pubkey |
    openssl pkey -pubin -outform der | openssl dgst -sha256 -binary |
    openssl base64 -A)
models -k --pinnedpubkey "sha256//$PIN" "https://$ADDR:$DEV/v1/models"
checkx "curl --pinnedpubkey sha256//$PIN (no CA): 200 and the models ($CURL_RC)" \
    '[ $CURL_RC = 0 ]'
models -k --pinnedpubkey "sha256//$(printf '%043dA=' 0)" \
    "https://$ADDR:$DEV/v1/models"
checkx "... a wrong pin is refused (exit $CURL_RC, 90)" '[ $CURL_RC = 90 ]'
OPENAI_TAG="dev-selfsigned, NODE_EXTRA_CA_CERTS: "
openai_run "https://$ADDR:$DEV/v1" "$KEY" NODE_EXTRA_CA_CERTS="$TMP/dev.pem"

# ---- packaged-ca --------------------------------------------------------
start ca --mode packaged-ca
CAP=$PORT
checkx "packaged-ca on $ADDR: started ($CAP)" '[ -n "$CAP" ]'
$F ca export --out "$TMP/ca.pem" >/dev/null 2>"$TMP/export.err"
checkx "flm ca export --out writes the local CA, name-constrained to 127.0.0.0/8 and more" \
    'openssl x509 -in "$TMP/ca.pem" -noout -ext nameConstraints 2>/dev/null |
    grep -q "IP:127.0.0.0/255.0.0.0"' ||
    diag "$(cat "$TMP/export.err"; openssl x509 -in "$TMP/ca.pem" -noout -text)"
wait_until 3000 served "$CAP" "$TMP/ca-served.pem"
sed -n '1,/-END CERTIFICATE-/p' "$TMP/ca-served.pem" >"$TMP/ca-leaf.pem"
checkx "the handle's certificate is issued by that CA and names $ADDR" \
    'openssl verify -CAfile "$TMP/ca.pem" "$TMP/ca-leaf.pem" >/dev/null &&
    openssl x509 -in "$TMP/ca-leaf.pem" -noout -ext subjectAltName |
    grep -q "IP Address:$ADDR"'
models --cacert "$TMP/ca.pem" "https://$ADDR:$CAP/v1/models"
checkx "curl --cacert CA: 200 and the models ($CURL_RC)" '[ $CURL_RC = 0 ]'
models --cacert "$TMP/dev.pem" "https://$ADDR:$CAP/v1/models"
checkx "... trusting the dev-selfsigned certificate instead: refused (exit $CURL_RC, 60)" \
    '[ $CURL_RC = 60 ]'
check "openssl s_client -verify_return_error -CAfile CA: 200 and the models" \
    sclient "$CAP" "$TMP/ca.pem"
OPENAI_TAG="packaged-ca, NODE_EXTRA_CA_CERTS: "
openai_run "https://$ADDR:$CAP/v1" "$KEY" NODE_EXTRA_CA_CERTS="$TMP/ca.pem"

# ---- Chromium, the CA in its NSS database -----------------------------------
# browse HOME: headless Chromium with that HOME (its NSS database in
# HOME/.pki/nssdb) loads the mock's page, whose script GETs /v1/models
# from the packaged-ca handle with the bearer key; the JSON line it
# wrote is left in R.
uri() { jq -rn --arg s "$1" '$s | @uri'; }
NB=0
browse() {
	NB=$((NB + 1))
	page="$APP/__mock/page?method=GET&url=$(uri "https://$ADDR:$CAP/v1/models")&key=$(uri "$KEY")"
	HOME=$1 timeout 60 "$CHROMIUM" --headless --no-sandbox --disable-gpu \
	    --disable-dev-shm-usage --no-first-run --disable-extensions \
	    --disable-sync --disable-background-networking \
	    --disable-component-update --user-data-dir="$1/profile" \
	    --virtual-time-budget=5000 --dump-dom "$page" \
	    >"$TMP/dom$NB" 2>"$TMP/chromium$NB.err"
	rc=$?
	R=$(sed -n 's:.*<pre id="out">\(.*\)</pre>.*:\1:p' "$TMP/dom$NB" |
	    sed 's/&lt;/</g; s/&gt;/>/g; s/&quot;/"/g; s/&amp;/\&/g')
	if [ $rc != 0 ] || ! json_has "$R" .origin; then
		diag "chromium ($rc) gave no result for $page:"
		diag "$(cat "$TMP/dom$NB")"
		diag "$(tail -20 "$TMP/chromium$NB.err")"
	fi
}
$F security cors --origins "$APP" >/dev/null
for h in trusting bare; do
	mkdir -p "$TMP/$h/.pki/nssdb"
	certutil -d "sql:$TMP/$h/.pki/nssdb" -N --empty-password
done
certutil -d "sql:$TMP/trusting/.pki/nssdb" -A -t C,, -n flm -i "$TMP/ca.pem"
checkx "certutil -A -t C,, puts the CA in a fresh NSS database" \
    'certutil -d "sql:$TMP/trusting/.pki/nssdb" -L -n flm >/dev/null 2>&1'
browse "$TMP/trusting"
SEEN=$R
checkx "Chromium trusting the CA (NSS): fetch() of /v1/models is answered, 200 and the models" \
    'json_has "$R" ".status == 200 and ([.json.data[].id] | index(\"$MODEL\") != null)"' ||
    diag "the page wrote: $R"
browse "$TMP/bare"
checkx "... Chromium without it: fetch() throws TypeError (certificate refused)" \
    'json_has "$SEEN" ".status == 200" &&
    json_has "$R" ".error == \"TypeError\" and (has(\"status\") | not)"' ||
    diag "the page wrote: $R"

# ---- a client certificate required ----------------------------------------------
start mtls --mode packaged-ca --client-certs required
MT=$PORT
checkx "packaged-ca with --client-certs required on $ADDR: started ($MT)" \
    '[ -n "$MT" ]'
$F clients issue laptop --out "$TMP/laptop" >"$TMP/issue.out" 2>&1
checkx "flm clients issue laptop --out: .crt, .key (0600) and .p12 written" \
    '[ -s "$TMP/laptop.crt" ] && [ -s "$TMP/laptop.p12" ] &&
    [ "$(stat -c %a "$TMP/laptop.key" 2>/dev/null)" = 600 ]' ||
    diag "$(cat "$TMP/issue.out")"
models --cacert "$TMP/ca.pem" --cert "$TMP/laptop.crt" --key "$TMP/laptop.key" \
    "https://$ADDR:$MT/v1/models"
checkx "curl --cert laptop.crt --key laptop.key: 200 and the models ($CURL_RC)" \
    '[ $CURL_RC = 0 ]'
models --cacert "$TMP/ca.pem" --cert-type P12 --cert "$TMP/laptop.p12:" \
    "https://$ADDR:$MT/v1/models"
checkx "curl --cert-type P12 --cert laptop.p12 (empty password): 200 and the models ($CURL_RC)" \
    '[ $CURL_RC = 0 ]'
models --cacert "$TMP/ca.pem" "https://$ADDR:$MT/v1/models"
# Refused in the handshake (35) or, in TLS 1.3, by the alert that
# follows it, seen while curl sends its request (55) or reads the
# answer (56): not a connection refused (7), and no HTTP.
checkx "curl without a client certificate never gets an HTTP answer (exit $CURL_RC)" \
    'case $CURL_RC in 35 | 55 | 56) true ;; *) false ;; esac &&
    ! [ -s "$TMP/models" ]'
check "openssl s_client -cert -key: 200 and the models" \
    sclient "$MT" "$TMP/ca.pem" -cert "$TMP/laptop.crt" -key "$TMP/laptop.key"
