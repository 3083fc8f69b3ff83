#!/bin/sh
# flm-keyd's side of TLS (issue 13): a subverted proxyd (tests/fake-
# proxyd on the real channel) gets signatures only by a server key in
# service and only of 32-byte digests, never by the CA's key; a
# malformed TLS_SIGN drops the channel, keyd lives on; no private key is
# in security.db in clear (each sealed blob has the length of its
# ciphertext, opens only with the master key, and the scalar is in no
# byte of the file); a certificate with tls.cert_lifetime 60 is renewed
# by keyd on its own, before it expires, and served; audit records name
# the client certificate (version 3), checked, stored and chained.
. "$(dirname "$0")/lib.sh"

command -v sqlite3 >/dev/null 2>&1 || unavailable "sqlite3(1)"
command -v openssl >/dev/null 2>&1 || unavailable "openssl(1)"
command -v od >/dev/null 2>&1 || unavailable "od(1)"

plan 30

UNSEAL=$top_builddir/tests/tls-unseal
WRAP=$(mktemp -d "${TMPDIR:-/tmp}/flmk.XXXXXX")
trap 'suite_cleanup; rm -rf "$WRAP"' EXIT
F() { "$FLM" -D "$STATE" "$@"; }

DB() { sqlite3 "$STATE/keyd/security.db" "$1"; }

# Sections 1, 2 and 4 need flmd's TLS handles (the flm of this tree
# knows --client-certs); on a tree without them they are skipped.
if "$FLM" help 2>&1 | grep -q -- '--client-certs'; then
	TLS_FLMD=yes
else
	TLS_FLMD=
fi
skip_n() { i=0; while [ $i -lt "$1" ]; do ok "$2 # SKIP flmd has no TLS handles in this tree"; i=$((i + 1)); done; }

# ---- 1. signatures asked for by a subverted proxyd ------------------------
if [ -n "$TLS_FLMD" ]; then
fake sign sign "$WRAP/reqs" "$WRAP/sign.out"
check "suite starts with a proxyd that asks keyd for signatures" \
    suite_start FLM_PROXYD_PATH="$WRAP/sign"
keyd=$(proc_pid flm-keyd)
F config set tls.names flm-k.test >/dev/null
P=$(free_port)
out=$(F proxy start --bind 127.0.0.2 --port "$P" --mode packaged-ca --json)
ID=$(printf '%s' "$out" | jq -r '.certificate.id // empty')
CAID=$(DB "SELECT id FROM certificates WHERE purpose = 'ca'")
checkx "a packaged-ca handle: keyd made the CA and a server certificate" \
    '[ -n "$ID" ] && [ -n "$CAID" ] && [ "$ID" != "$CAID" ]'
# Unknown id, the CA's id, a 48-byte digest, then a good request.
printf '%s\n' "0123456789abcdef 32" "$CAID 32" "$ID 48" "$ID 32" \
    "served 32" >"$WRAP/reqs.tmp"
mv "$WRAP/reqs.tmp" "$WRAP/reqs"
check "keyd answered each request" \
    wait_until 5000 sh -c "[ \$(wc -l <'$WRAP/sign.out') -ge 5 ]"
diag "$(cat "$WRAP/sign.out")"
line() { sed -n "${1}p" "$WRAP/sign.out"; }
check "an unknown id: FLM_TLS_UNKNOWN, no signature" \
    sh -c "line=\$(sed -n 1p '$WRAP/sign.out'); case \$line in *' result=1 siglen=0 '*) ;; *) exit 1;; esac"
check "the CA's id: FLM_TLS_UNKNOWN (keyd never signs with the CA key for proxyd)" \
    sh -c "line=\$(sed -n 2p '$WRAP/sign.out'); case \$line in *' result=1 siglen=0 '*) ;; *) exit 1;; esac"
check "a 48-byte digest with the server key: FLM_TLS_REFUSED" \
    sh -c "line=\$(sed -n 3p '$WRAP/sign.out'); case \$line in *' result=2 siglen=0 '*) ;; *) exit 1;; esac"
check "a 32-byte digest with the server key in service: signed (DER ECDSA)" \
    sh -c "line=\$(sed -n 4p '$WRAP/sign.out'); case \$line in *' result=0 siglen='[1-7]?' '*) ;; *) exit 1;; esac"
checkx "the id keyd pushed in TLS_STATE is the handle's certificate" \
    '[ "$(line 5 | cut -d" " -f1)" = "$ID" ] && line 5 | grep -q " result=0 "'
check "keyd logged the refusals" sh -c \
    "grep -q 'flm-keyd.*48-byte digest: refused' '$STATE/flmd.log' &&
     grep -q 'flm-keyd.*signature by $CAID: no server key' '$STATE/flmd.log'"
checkx "keyd lives on, the same process" \
    '[ "$(proc_pid flm-keyd)" = "$keyd" ] && pid_alive "$keyd"'

# ---- 2. sealed keys in security.db ----------------------------------------
n=$(DB "SELECT count(*) FROM certificates WHERE purpose != 'client' AND
    (length(key_nonce) != 24 OR length(key_sealed) NOT BETWEEN 130 AND 200)")
checkx "every key column is a 24-byte nonce and an AEAD ciphertext" \
    '[ "$n" = 0 ] && [ "$(DB "SELECT count(*) FROM certificates WHERE purpose != '"'client'"'")" -ge 2 ]'
scalar=$("$UNSEAL" "$STATE/keyd" "$ID" 2>/dev/null)
checkx "keyd's own code unseals the server key with the master key" \
    'printf "%s" "$scalar" | grep -Eq "^[0-9a-f]{64}$"'
# The file and its WAL as one hex line: the scalar is in no byte of it.
hexdb() { cat "$STATE/keyd/security.db"* | od -An -v -tx1 | tr -d ' \n'; }
checkx "the scalar is nowhere in security.db or its WAL" \
    '[ -n "$scalar" ] && ! hexdb | grep -q "$scalar"'
mkdir "$WRAP/nokey"
cp "$STATE/keyd/security.db"* "$WRAP/nokey/"
check "without the master key (another one) the same key does not unseal" \
    sh -c "[ -n '$scalar' ] && ! '$UNSEAL' '$WRAP/nokey' '$ID' >/dev/null 2>&1"
suite_stop
else
	skip_n 14 "signatures and sealed keys"
fi

# ---- 3. a malformed TLS_SIGN (IMSG_TLS_SIGN = 71, 10 bytes) ----------------
fake raw71 raw 71 10
check "suite starts with a proxyd sending a TLS_SIGN of 10 bytes" \
    suite_start FLM_PROXYD_PATH="$WRAP/raw71"
keyd=$(proc_pid flm-keyd)
named() { grep -q 'flm-keyd.*malformed TLS_SIGN' "$STATE/flmd.log"; }
restarted() { [ "$(proc_field flm-proxyd restarts)" -ge 1 ] &&
    [ "$(proc_pid flm-keyd)" = "$keyd" ]; }
checkx "keyd refuses it as malformed; proxyd restarted, keyd lives on" \
    'wait_until 3000 named && wait_until 3000 restarted'
suite_stop

# ---- 4. renewal: tls.cert_lifetime 60, renewed at ~40 s -------------------
if [ -n "$TLS_FLMD" ]; then
check "suite starts" suite_start
F config set tls.names flm-k.test >/dev/null
F config set tls.cert_lifetime 60 >/dev/null
P=$(free_port)
out=$(F proxy start --bind 127.0.0.2 --port "$P" --mode dev-selfsigned --json)
FP1=$(printf '%s' "$out" | jq -r '.certificate.sha256 // empty')
NA1=$(printf '%s' "$out" | jq -r '.certificate.not_after // empty')
checkx "a 60 s certificate" '[ -n "$FP1" ] && [ $(( $(date -u -d "$NA1" +%s) - $(date -u -d "$(printf "%s" "$out" | jq -r .certificate.not_before)" +%s) )) = 60 ]'
fp() { F proxy status --json | jq -r ".[] | select(.port == $P) | .certificate.sha256"; }
renewed() { f=$(fp); [ -n "$f" ] && [ "$f" != "$FP1" ]; }
t0=$(date +%s)
check "keyd renewed it on its own and flmd heard (within 55 s)" \
    wait_until 55000 renewed
t1=$(date +%s)
checkx "before it expired ($((t1 - t0)) s after start)" \
    '[ "$t1" -lt "$(date -u -d "$NA1" +%s)" ]'
NEWFP=$(fp)
check "the renewed certificate is the one served" \
    wait_until 5000 sh -c "[ -n '$NEWFP' ] && [ \"\$(openssl s_client -connect 127.0.0.2:$P -servername flm-k.test </dev/null 2>/dev/null | openssl x509 -noout -fingerprint -sha256 2>/dev/null | sed 's/.*=//')\" = '$NEWFP' ]"
suite_stop
else
	skip_n 5 "renewal"
fi

# ---- 5. audit records naming a client certificate (version 3) -------------
fake certaudit certaudit laptop-1 "$WRAP/ca.out"
check "suite starts with a proxyd sending records with a client certificate" \
    suite_start FLM_PROXYD_PATH="$WRAP/certaudit"
check "keyd acknowledged the batch" wait_until 5000 grep -q 'ack=1' \
    "$WRAP/ca.out"
tail=$(F audit tail --json)
checkx "audit tail shows the certificate's serial (lower case) and label" \
    'json_has "$tail" "[.records[] | select(.request_id == \"flm-000000000000ce01\")][0] | .cert_serial == \"1a2b3c4d5e6f7a8b\" and .cert_label == \"laptop-1\""'
checkx "and none for the record without one" \
    'json_has "$tail" "[.records[] | select(.request_id == \"flm-000000000000ce02\")][0] | .cert_serial == null and .cert_label == null"'
check "the trail verifies" json_has "$(F audit verify --json)" '.ok == true'
DB "DROP TRIGGER audit_logs_no_update; UPDATE audit_logs SET
    cert_label = 'someone-else' WHERE request_id = 'flm-000000000000ce01'"
checkx "a label changed in the database breaks the chain (the chain covers it)" \
    'json_has "$(F audit verify --json)" ".ok == false and .problem.kind == \"altered\""'
suite_stop

fake certbad certaudit bad.label "$WRAP/bad.out"
check "suite starts with a proxyd sending a record whose label has a dot" \
    suite_start FLM_PROXYD_PATH="$WRAP/certbad"
keyd=$(proc_pid flm-keyd)
bad() { grep -q 'flm-keyd.*malformed audit record' "$STATE/flmd.log"; }
checkx "keyd refuses it as malformed; proxyd restarted, keyd lives on" \
    'wait_until 3000 bad && wait_until 3000 restarted'
check "nothing of it was stored" \
    [ "$(DB "SELECT count(*) FROM audit_logs WHERE cert_label IS NOT NULL")" = 0 ]
suite_stop
