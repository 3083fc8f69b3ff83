#!/bin/sh
# https-acme as a subverted flm-proxyd would drive it (issue 16): keyd
# signs only JWS it writes itself, for URLs of the handle's directory,
# and serves no chain whose key is not the one it made for the order;
# a malformed ACME message closes the channel, and keyd lives on.
. "$(dirname "$0")/lib.sh"

command -v openssl >/dev/null 2>&1 || unavailable "openssl(1)"

plan 10

WRAP=$(mktemp -d "${TMPDIR:-/tmp}/flma.XXXXXX")
trap 'suite_cleanup; rm -rf "$WRAP"' EXIT


# A certificate for the domain, of a key keyd never made.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$WRAP/k.pem" -out "$WRAP/c.pem" -days 2 \
    -subj /CN=flm-k.example.com \
    -addext subjectAltName=DNS:flm-k.example.com >/dev/null 2>&1

fake acme acme "$WRAP/c.pem" "$WRAP/acme.out"
check "suite starts with a proxyd that drives ACME as it likes" \
    suite_start FLM_PROXYD_PATH="$WRAP/acme"
keyd=$(proc_pid flm-keyd)
P=$(free_port)
"$FLM" -D "$STATE" proxy start --port "$P" --mode https-acme \
    --domain flm-k.example.com --acme-directory https://127.0.0.1:9/dir \
    --acme-http-port "$(free_port)" >"$WRAP/start.out" 2>"$WRAP/start.err"
rc=$?
line() { grep "^$1 " "$WRAP/acme.out"; }
checkx "a URL off the directory's origin: not signed" \
    'line offsite | grep -q "error=https://ca.example/x is not a URL of https://127.0.0.1:9/"'
checkx "an operation keyd does not sign (revoke-cert): not signed" \
    'line revoke | grep -q "error=operation revoke-cert is not one keyd signs"'
checkx "a request before the account exists: not signed" \
    'line nokid | grep -q "error=no ACME account yet"'
checkx "the account request keyd writes itself: signed" \
    'line account | grep -q "account jws"'
checkx "a chain of a key keyd did not make: refused, the start fails with why" \
    '[ $rc != 0 ] && grep -q "the certificate is not for the key of the CSR" "$WRAP/start.err"'
checkx "nothing of it was stored" \
    '[ "$(sqlite3 "$STATE/keyd/security.db" "SELECT count(*) FROM certificates WHERE mode = '"'"'https-acme'"'"'")" = 0 ]'
check "keyd lives on" pid_alive "$keyd"

# A malformed ACME_SIGN (74): eight zero bytes, no JSON object.
fake raw raw 74 8
check "suite starts with a proxyd that sends a malformed ACME_SIGN" \
    suite_start FLM_PROXYD_PATH="$WRAP/raw"
keyd=$(proc_pid flm-keyd)
wait_until 5000 sh -c "grep -q 'malformed ACME_SIGN' '$STATE/flmd.log'"
checkx "keyd refuses it (malformed ACME_SIGN), proxyd restarted, keyd lives on" \
    'grep -q "malformed ACME_SIGN" "$STATE/flmd.log" && pid_alive "$keyd" &&
    wait_until 5000 all_running'
