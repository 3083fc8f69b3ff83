#!/bin/sh
# What flm shows a person: with standard output a terminal (script(1))
# each command prints a table or a sentence, not JSON, and it carries
# the facts of the --json answer; what is empty says so.  And what flm
# refuses before or without flmd: a wrong option value, a file it
# cannot read or parse, a state directory with no daemon, one it may
# not enter, a daemon that hangs up; each with its error and exit
# status, nothing written and nothing changed.
. "$(dirname "$0")/lib.sh"

command -v script >/dev/null 2>&1 || unavailable "script(1) (util-linux)"
command -v openssl >/dev/null 2>&1 || unavailable "openssl(1)"
unset FLM_API_KEY
mock_init

plan 92

check "suite starts" suite_start
F="$FLM -D $STATE"
T=$STATE/tables
mkdir -p "$T"

# tty CMD: CMD's output (and error) as a terminal shows it, in OUT, and
# its exit status in RC (script -e passes it on).
tty() {
	script -qec "$*" /dev/null </dev/null >"$T/tty" 2>&1
	RC=$?
	OUT=$(tr -d '\r' <"$T/tty")
}
# shows TEXT: the last tty output has TEXT in a line (a fixed string).
shows() { printf '%s\n' "$OUT" | grep -qF -- "$1"; }
# matches RE: a line of the last tty output matches the extended RE.
matches() { printf '%s\n' "$OUT" | grep -Eq -- "$1"; }
# exits RC TEXT COMMAND...: COMMAND fails with exit status RC and TEXT
# in its error (kept in STATE/fails.err).
exits() {
	want_rc=$1
	want_text=$2
	shift 2
	"$@" >"$STATE/fails.out" 2>"$STATE/fails.err"
	got=$?
	[ $got = "$want_rc" ] && grep -qF -- "$want_text" "$STATE/fails.err" ||
	    { diag "exit $got: $(cat "$STATE/fails.err")"; return 1; }
}
# no_json: the last tty output is no JSON text.
no_json() { ! printf '%s' "$OUT" | jq -e . >/dev/null 2>&1; }

# ---- empty state: each says what there is not ---------------------------
tty "$F version"
checkx "version: the version and protocol, as a sentence" \
    '[ $RC = 0 ] && printf "%s" "$OUT" | grep -Eq "^flm [0-9][^ ]* \(protocol [0-9]+\)"'
tty "$F api-keys list"
checkx "api-keys list, none: says how to make one" \
    'shows "no keys; create one with: flm api-keys create --label NAME"'
tty "$F proxy status"
checkx "proxy status, none: no proxy is running" \
    '[ $RC = 0 ] && shows "no proxy is running"'
tty "$F secrets list"
checkx "secrets list, none: no secrets" 'shows "no secrets"'
tty "$F clients list"
checkx "clients list, none: no client certificates" \
    'shows "no client certificates"'
tty "$F backup list"
checkx "backup list, none: no backups" 'shows "no backups"'
tty "$F audit verify"
checkx "audit verify, empty trail: intact, no rows" \
    'shows "audit trail intact: no rows"'
tty "$F audit tail"
checkx "audit tail, empty: no requests in the audit trail" \
    'shows "no requests in the audit trail"'
tty "$F usage"
checkx "usage, empty: no requests" 'shows "no requests"'
tty "$F audit archive --before 2020-01-01"
checkx "audit archive, nothing that old: no rows to archive" \
    'shows "no rows to archive"'

check "check with no backup yet: refused, saying what to do (exit 1)" \
    exits 1 "no backup to check against: make one (flm backup create) or give --against" \
    $F check
check "backup restore of a file that is not there: refused, naming it (exit 1)" \
    exits 1 "$T/none.flmbak: No such file or directory" \
    $F backup restore "$T/none.flmbak"
check "api-keys create without --label: a usage error (exit 2)" \
    exits 2 "--label is required" $F api-keys create
checkx "...and no key was made" '[ "$($F api-keys list --json | jq length)" = 0 ]'
check "audit archive without --before: a usage error (exit 2)" \
    exits 2 "--before is required" $F audit archive
check "an unknown option: the usage (exit 2)" \
    exits 2 "usage: flm [-D statedir] command [args]" $FLM --no-such-option
check "no command at all: the usage (exit 2)" \
    exits 2 "usage: flm [-D statedir] command [args]" $FLM

# ---- config ---------------------------------------------------------------
tty "$F config set tls.names flm-t.test"
checkx "config set: KEY = VALUE" '[ $RC = 0 ] && shows "tls.names = flm-t.test"'
tty "$F config get tls.names"
checkx "config get: the value set" 'shows "tls.names = flm-t.test"'
tty "$F config unset tls.names"
checkx "config unset: KEY unset, and gone from config get" \
    'shows "tls.names unset" && ! $F config get tls.names >/dev/null 2>&1'
tty "$F config keys"
checkx "config keys: each key with what it takes" \
    'matches "^engines\.ID\.kind +ollama\|lmstudio\|vllm\|llamacpp" && no_json'

# ---- engines ---------------------------------------------------------------
$F config set engines.ollama.url http://127.0.0.1:9 >/dev/null
tty "$F engines detect"
checkx "engines detect: a header and a row per engine, with why it is down" \
    'matches "^ID +KIND +URL +STATE" &&
    matches "^ollama +ollama +http://127\.0\.0\.1:9 +NotFound .*nothing listens"'
tty "$F models list"
checkx "models list, no engine up: says where to look" \
    'shows "no models: is an engine running? see flm engines detect"'
tty "$F engines trust ollama"
checkx "engines trust: the owner forgotten, as a sentence" \
    '[ $RC = 0 ] && shows "engine ollama: recorded listener owner - forgotten"'
printf 'tok-%s\n' "$$" | $F engines credential set ollama >/dev/null 2>&1
tty "$F secrets list"
checkx "secrets list: the sealed credential's row, never its value" \
    'matches "^engine:ollama +[0-9]+ +20[0-9-]+T" &&
    ! shows "tok-$$"'
tty "$F secrets rotate"
checkx "secrets rotate: how many, under which key" \
    'matches "^1 secrets sealed again under data key [0-9]+$"'

printf 'socks-%s\n' "$$" |
    script -qec "$F egress password set" /dev/null >"$T/tty" 2>&1
checkx "egress password set on a terminal: sealed, and said so" \
    'grep -q "^the SOCKS5 password: sealed" "$T/tty" &&
    $F secrets list --json | jq -e "any(.[]; .name == \"egress:socks5\")" >/dev/null'
tty "$F egress password clear"
checkx "egress password clear: cleared, gone from secrets list" \
    'shows "the SOCKS5 password: cleared" &&
    ! $F secrets list --json | jq -e "any(.[]; .name == \"egress:socks5\")" >/dev/null'
tty "$F engines credential clear ollama"
checkx "engines credential clear: cleared, gone from secrets list" \
    '[ $RC = 0 ] && shows "ollama: credential cleared" &&
    [ "$($F secrets list --json | jq length)" = 0 ]'

# ---- proxy ----------------------------------------------------------------
tty "$F proxy start --port 0"
PORT=$(printf '%s\n' "$OUT" | sed -n 's|^proxy listening on http://127\.0\.0\.1:\([0-9]*\)/v1 (local-http)$|\1|p')
checkx "proxy start: where it listens, and it answers there" \
    '[ -n "$PORT" ] && [ "$(http_code "http://127.0.0.1:$PORT/healthz")" = 200 ]'
tty "$F proxy start --port 0 --bind 127.0.0.5 --mode packaged-ca"
checkx "proxy start in a TLS mode: the certificate's subject, SANs, fingerprint" \
    'shows "proxy listening on https://127.0.0.5:" &&
    matches "^  SANs: .*IP:127\.0\.0\.5" &&
    matches "^  SHA-256 ([0-9A-F]{2}:){31}[0-9A-F]{2}$"'
TPORT=$(printf '%s\n' "$OUT" | sed -n 's|^proxy listening on https://127\.0\.0\.5:\([0-9]*\)/v1 (packaged-ca)$|\1|p')
head -c 70000 /dev/zero >"$T/big.pem"
check "proxy start --acme-ca of a missing file: refused, naming it (exit 1)" \
    exits 1 "--acme-ca $T/none.pem: No such file or directory" \
    $F proxy start --port 0 --mode https-acme --domain a.test --acme-ca "$T/none.pem"
check "--acme-ca over 64 KiB: refused (exit 1)" \
    exits 1 "--acme-ca $T/big.pem: larger than 64 KiB" \
    $F proxy start --port 0 --mode https-acme --domain a.test --acme-ca "$T/big.pem"
tty "$F proxy status"
checkx "proxy status: a row per handle, then the workers" \
    'matches "^127\.0\.0\.1:$PORT +local-http +[0-9]+ +[0-9]+ " &&
    matches "^127\.0\.0\.5:[0-9]+ +packaged-ca " &&
    matches "^flm-proxyd\[0\] +[0-9]+ .* running" &&
    [ "$(printf "%s\n" "$OUT" | grep -c "^127\.0\.0\.")" = 2 ]'

# ---- flm chat, before it sends anything or with no engine up --------------
KEY=$($F api-keys create --label chat --json | jq -r .key)
# chat_fails RC TEXT [ARGS...]: flm chat ARGS with the key exits RC,
# saying TEXT.
chat_fails() {
	want_rc=$1
	want_text=$2
	shift 2
	FLM_API_KEY=$KEY $F chat "$@" >"$T/chat.out" 2>"$T/chat.err" <"$T/in"
	got=$?
	[ $got = "$want_rc" ] && grep -qF -- "$want_text" "$T/chat.err" &&
	    [ ! -s "$T/chat.out" ] ||
	    { diag "exit $got: $(cat "$T/chat.err")"; return 1; }
}
: >"$T/in"
check "chat, no engine up: the proxy offers no model (exit 1)" \
    chat_fails 1 "the proxy offers no model; see flm engines detect, or name one with --model" hi
check "chat --model of an engine that is down: the proxy's 404 (exit 1)" \
    chat_fails 1 "404: The model 'flm://ollama/x' does not exist or its engine is not running" \
    --model flm://ollama/x hi
check "chat --stream, the same: the 404, not a stream (exit 1)" \
    chat_fails 1 "404: The model 'flm://ollama/x' does not exist" \
    --stream --model flm://ollama/x hi
check "chat --port of a TLS proxy: only local-http (exit 1)" \
    chat_fails 1 "the proxy on port $TPORT is in mode packaged-ca; only local-http is supported" \
    --port "$TPORT" hi
check "chat --port where no proxy listens: says so (exit 1)" \
    chat_fails 1 "no proxy on port 9; see flm proxy status" --port 9 hi
check "chat - with nothing on standard input: a usage error (exit 2)" \
    chat_fails 2 "no message on standard input" -
head -c 1048577 /dev/zero | tr '\0' a >"$T/in"
check "chat - with over 1 MiB on standard input: refused (exit 2)" \
    chat_fails 2 "the message on standard input is longer than 1048576 bytes" -
: >"$T/in"
check "chat --key that is not one word: refused before any request (exit 2)" \
    chat_fails 2 "the API key is not a single word of printable characters" \
    --key "$KEY x" hi

# ---- with an engine up: chat's answers, usage and the audit trail --------
mock --flavor ollama
$F config set engines.ollama.url "http://127.0.0.1:$MPORT" >/dev/null
$F engines detect >/dev/null
KID=$($F api-keys list --json | jq -r '.[] | select(.label == "chat") | .id')
has_model() { $F models list --json | jq -e 'any(.[]; .id == "flm://ollama/llama3.2:1b")' >/dev/null; }
wait_until 5000 has_model
FLM_API_KEY=$KEY $F chat --json --model flm://ollama/llama3.2:1b hi \
    >"$T/chat.json" 2>"$T/chat.err"
checkx "chat --json: the whole answer as JSON, the engine's text in it" \
    'jq -e ".object == \"chat.completion\" and (.choices[0].message.content | test(\"Hello from mock\"))" "$T/chat.json" >/dev/null'
FLM_API_KEY=$KEY $F chat --stream --json --model flm://ollama/llama3.2:1b hi \
    >"$T/stream.json" 2>"$T/chat.err"
checkx "chat --stream --json: each chunk a JSON line" \
    '[ "$(wc -l <"$T/stream.json")" -gt 1 ] &&
    jq -se "all(.[]; .object == \"chat.completion.chunk\")" "$T/stream.json" >/dev/null'
used() {
	$F usage --json | jq -e '[.usage[] | select(.model ==
	    "flm://ollama/llama3.2:1b" and .requests == 2)] | length == 1' \
	    >/dev/null
}
wait_until 5000 used
tty "$F usage"
checkx "usage: a header and the key's row for the model, 2 requests" \
    'matches "^KEY +MODEL +REQUESTS +PROMPT +COMPLETION$" &&
    matches "^$KID +flm://ollama/llama3\.2:1b +2 +[0-9]+ +[1-9][0-9]*$"'
tty "$F usage --since 2020-01-01"
checkx "usage --since: the time it counts from, then the rows" \
    'shows "since 2020-01-01T00:00:00.000Z" && shows "flm://ollama/llama3.2:1b"'
NROWS=$($F audit tail --json | jq '.records | length')
tty "$F audit verify"
checkx "audit verify: intact, how many rows, from the genesis row" \
    'matches "^audit trail intact: $NROWS rows \(ids 1-$NROWS\)$" &&
    shows "genesis: row 1 of"'
tty "$F audit archive --before 2099-01-01"
ARCH=$(printf '%s\n' "$OUT" | sed -n "s/^archived $NROWS rows to \(audit-archive-.*\.db\)$/\1/p")
checkx "audit archive: every row to a file it names" \
    '[ -n "$ARCH" ] && [ -n "$(find "$STATE" -name "$ARCH")" ] &&
    [ "$($F audit tail --json | jq ".records | length")" = 0 ]'
tty "$F audit verify"
checkx "audit verify after: no rows left, the archive checked too" \
    'shows "audit trail intact: no rows, archived through id $NROWS in 1 file, checked too" &&
    shows "genesis: row 1, in $ARCH"'

tty "$F api-keys rotate chat"
NEWKEY=$(printf '%s\n' "$OUT" | grep '^flm_' | head -1)
checkx "api-keys rotate on a terminal: the new key alone on a line, and that it is shown once" \
    '[ $RC = 0 ] && [ -n "$NEWKEY" ] && [ "$NEWKEY" != "$KEY" ] &&
    shows "flm: rotated key $KID (chat); the new key is shown only this once; the old one no longer works"'
checkx "the new key is let in, the old one refused" \
    '[ "$(http_code "http://127.0.0.1:$PORT/v1/models" -H "Authorization: Bearer $NEWKEY")" = 200 ] &&
    [ "$(http_code "http://127.0.0.1:$PORT/v1/models" -H "Authorization: Bearer $KEY")" = 401 ]'

# ---- the CA and client certificates ---------------------------------------
tty "$F ca status"
SHA=$($F ca status --json | jq -r .sha256)
checkx "ca status: subject, fingerprint and trust store as lines" \
    'shows "subject:     CN=FLM local CA" && shows "SHA-256:     $SHA" &&
    matches "^permitted: .* IP:127\.0\.0\.0/8" &&
    matches "^trust store: (not )?installed"'
tty "$F ca export"
printf '%s\n' "$OUT" >"$T/ca-stdout.pem"
$F ca export --out "$T/ca.pem" --json >"$T/export.json"
checkx "ca export to standard output: the same PEM as --out writes" \
    '[ -s "$T/ca.pem" ] && cmp -s "$T/ca-stdout.pem" "$T/ca.pem" &&
    openssl x509 -in "$T/ca.pem" -noout 2>/dev/null'
checkx "ca export --out --json: the file and its fingerprint" \
    'jq -e --arg f "$T/ca.pem" --arg s "$SHA" ".out == \$f and .sha256 == \$s" "$T/export.json" >/dev/null'
check "ca export into a missing directory: refused, naming it" \
    fails_with "$T/none/ca.pem: No such file or directory" \
    $F ca export --out "$T/none/ca.pem"
mkdir "$T/store"
FLM_CA_TRUST_DIR=$T/store FLM_CA_TRUST_CMD=false $F ca trust \
    >"$T/trust.out" 2>&1
RC=$?
checkx "ca trust, the store's update command failing: exit 1, saying how" \
    '[ $RC = 1 ] && grep -q "false failed (exit 1)" "$T/trust.out"'
FLM_CA_TRUST_DIR=$T/nostore $F ca trust >"$T/trust.out" 2>&1
RC=$?
checkx "ca trust into a missing store directory: exit 1, naming it" \
    '[ $RC = 1 ] && grep -q "$T/nostore" "$T/trust.out" &&
    [ ! -e "$T/nostore" ]'

tty "env FLM_CA_TRUST_DIR=$T/store FLM_CA_TRUST_CMD=true $F ca trust"
checkx "ca trust on a terminal: installed, where" \
    '[ $RC = 0 ] && shows "installed $T/store/flm-local-ca.crt" &&
    cmp -s "$T/store/flm-local-ca.crt" "$T/ca.pem"'
FLM_CA_TRUST_DIR=$T/store FLM_CA_TRUST_CMD='kill -9 $$' $F ca untrust \
    >"$T/trust.out" 2>&1
RC=$?
checkx "ca untrust, the update command killed: exit 1, by which signal" \
    '[ $RC = 1 ] && grep -q "failed (signal 9)" "$T/trust.out"'
check "clients issue without --out: a usage error" \
    fails_with "--out PREFIX is needed" $F clients issue bob
$F clients issue bob --out "$T/bob" --p12-password-file "$T/nopw" \
    >"$T/out" 2>"$T/err"
RC=$?
checkx "clients issue with a missing password file: exit 1, no file left, no client listed" \
    '[ $RC = 1 ] && grep -q "$T/nopw: No such file or directory" "$T/err" &&
    [ -z "$(ls "$T" | grep "^bob")" ] &&
    ! $F clients list --json | jq -e "any(.[]; .label == \"bob\")" >/dev/null'
: >"$T/carol.p12"
$F clients issue carol --out "$T/carol" >"$T/out" 2>"$T/err"
RC=$?
checkx "clients issue where PREFIX.p12 exists: exit 1, the .crt and .key it opened removed" \
    '[ $RC = 1 ] && grep -q "$T/carol.p12: File exists (never overwritten" "$T/err" &&
    [ ! -e "$T/carol.crt" ] && [ ! -e "$T/carol.key" ] && [ ! -s "$T/carol.p12" ]'
LONGP=$T/$(printf 'y%.0s' $(seq 4090))
check "clients issue with an --out too long for a path: refused (exit 1)" \
    exits 1 ": too long" $F clients issue dave --out "$LONGP"
printf 'p12-secret\n' >"$T/pw"
tty "$F clients issue bob --out $T/bob --days 2 --p12-password-file $T/pw"
checkx "clients issue: serial, fingerprint, expiry and the three files named" \
    '[ $RC = 0 ] && matches "^client certificate bob \(serial [0-9a-f]+, SHA-256 ([0-9A-F]{2}:){31}[0-9A-F]{2}\) until " &&
    shows "$T/bob.key (private key)" && shows "$T/bob.p12 (PKCS#12)"'
checkx "--days 2: the certificate ends within 2 days" \
    '! openssl x509 -in "$T/bob.crt" -noout -checkend 172900 >/dev/null &&
    openssl x509 -in "$T/bob.crt" -noout -checkend 169200 >/dev/null'
checkx "--p12-password-file: the .p12 opens with that password only" \
    'openssl pkcs12 -in "$T/bob.p12" -nokeys -passin pass:p12-secret 2>/dev/null | grep -q "BEGIN CERTIFICATE" &&
    ! openssl pkcs12 -in "$T/bob.p12" -nokeys -passin pass: >/dev/null 2>&1'
tty "$F clients list"
checkx "clients list: a header and bob's row, not revoked" \
    'matches "^SERIAL +LABEL +CREATED" &&
    matches "^[0-9a-f]+ +bob +20[0-9-]+T.* -$"'

# ---- backups --------------------------------------------------------------
tty "$F backup create"
NAME=$(printf '%s\n' "$OUT" | sed -n 's/^backup \(flm-[^ ]*\.flmbak\) made (manual, sealed with the master key)$/\1/p')
checkx "backup create: its name, why and how sealed" '[ -n "$NAME" ]'
tty "$F backup list"
checkx "backup list: a header and the backup's row" \
    'matches "^NAME +CREATED +REASON +SEALED +BYTES" &&
    matches "^$NAME +20[0-9-]+T.* manual +master +[0-9]+$"'
tty "$F check"
checkx "check: the live state matches the last backup" \
    '[ $RC = 0 ] && shows "$NAME: the live state matches"'
printf 'abcdefghijklmn\nabcdefghijklmX\n' |
    script -qec "$F backup create --passphrase" /dev/null >"$T/pp" 2>&1
RC=$?
checkx "backup create --passphrase on a terminal, typed twice differently: exit 2, no backup" \
    '[ $RC = 2 ] && grep -q "the passphrases differ" "$T/pp" &&
    [ "$($F backup list --json | jq length)" = 1 ]'
printf 'short\n' | $F backup create --passphrase >"$T/out" 2>"$T/err"
RC=$?
checkx "a passphrase under 12 characters: exit 2, no backup" \
    '[ $RC = 2 ] && grep -q "give one line of 12-1024 characters" "$T/err" &&
    [ "$($F backup list --json | jq length)" = 1 ]'
mkdir "$T/against"
printf '[1]\n' >"$T/against/state.json"
check "check --against a directory without a state object: refused" \
    fails_with "$T/against/state.json: not a state file" \
    $F check --against "$T/against"
tty "$F security master-key rotate"
checkx "master-key rotate: the new key id, what was sealed again, what to do" \
    'matches "^master key rotated: now [0-9a-f]+$" &&
    matches "^sealed again: .* 0 secrets, 1 backups" &&
    shows "make a new one (flm backup create --passphrase)"'

# ---- the security policy ---------------------------------------------------
tty "$F security cors --origins https://a.test --methods GET,POST --headers X-A --max-age 600 --credentials yes"
checkx "security cors: each option set, as the policy shows" \
    '[ $RC = 0 ] && $F security policy show --json | jq -e ".policy.cors |
    .allowed_methods == [\"GET\",\"POST\"] and .allowed_headers == [\"x-a\"] and
    .max_age == 600 and .allow_credentials == true" >/dev/null'
tty "$F security cors"
checkx "security cors alone: the CORS policy as it is" \
    '[ $RC = 0 ] && printf "%s" "$OUT" | jq -e ".allowed_origins == [\"https://a.test\"] and .max_age == 600" >/dev/null'
tty "$F security ip allow 10.0.0.0/8"
checkx "security ip allow: added, and the warning that loopback is no longer implied" \
    'shows "added 10.0.0.0/8 to the allowlist" && shows "add 127.0.0.0/8 and ::1 if local clients need them"'
tty "$F security ip allow 10.0.0.0/8"
checkx "allow it again: already there, the list unchanged" \
    'shows "10.0.0.0/8 is already in the allowlist" &&
    [ "$($F security policy show --json | jq -c .policy.ip_allowlist)" = "[\"10.0.0.0/8\"]" ]'
check "security ip deny of what is not listed: refused (exit 1)" \
    exits 1 "10.9.0.0/16 is not in the allowlist" $F security ip deny 10.9.0.0/16
tty "$F security ip deny 10.0.0.0/8"
checkx "security ip deny: removed, the list empty again" \
    'shows "removed 10.0.0.0/8 from the allowlist" &&
    [ "$($F security policy show --json | jq -c .policy.ip_allowlist)" = "[]" ]'
POL=$($F security policy show --json | jq -c .policy)
check "--credentials other than yes or no: a usage error" \
    fails_with "--credentials: expected yes or no" \
    $F security cors --credentials maybe
check "--max-age over a day: a usage error" \
    fails_with "--max-age: expected 0-86400" $F security cors --max-age 86401
check "policy set from a missing file: refused, naming it" \
    fails_with "$T/none.json: No such file or directory" \
    $F security policy set "$T/none.json"
printf '{"cors": {' >"$T/trunc.json"
check "policy set from a truncated file: it ends too early" \
    fails_with "$T/trunc.json: not valid JSON: it ends too early" \
    $F security policy set "$T/trunc.json"
printf '{"cors":\n {"x": }}' >"$T/bad.json"
check "policy set from a file with a syntax error: line and column" \
    fails_with "$T/bad.json:2:8: not valid JSON" \
    $F security policy set "$T/bad.json"
checkx "nothing refused changed the policy" \
    '[ "$($F security policy show --json | jq -c .policy)" = "$POL" ]'

# ---- no daemon, or one flm may not reach -----------------------------------
check "a state directory without flmd: exit 3, how to start it" \
    exits 3 "flmd is not running (no daemon at $T/nodaemon/flmd.sock); start it with: flmd -d -D STATEDIR" \
    $FLM -D "$T/nodaemon" status
: >"$T/file"
check "a state directory that is a file: exit 3, why" \
    exits 3 "cannot connect to $T/file/flmd.sock: Not a directory" \
    $FLM -D "$T/file" status
LONG=$T/$(printf 'x%.0s' $(seq 120))
check "a state directory too long for a socket path: exit 2" \
    exits 2 "state directory path too long for a UNIX socket" \
    $FLM -D "$LONG" status
if [ "$(id -u)" != 0 ]; then
	mkdir -p "$T/shut/in"
	chmod 000 "$T/shut"
	check "a socket flm may not reach: exit 4, who may" \
	    exits 4 "permission denied on $T/shut/in/flmd.sock: run as root or as a member of group" \
	    $FLM -D "$T/shut/in" status
	chmod 700 "$T/shut"
elif command -v setpriv >/dev/null 2>&1 &&
    setpriv --reuid=65534 --regid=65534 --clear-groups "$FLM" version \
    >/dev/null 2>&1; then
	check "a socket flm may not reach: exit 4, who may" \
	    exits 4 "permission denied on $STATE/flmd.sock: run as root or as a member of group" \
	    setpriv --reuid=65534 --regid=65534 --clear-groups $F status
else
	ok "# SKIP root, and flm cannot be run as nobody here"
fi
if command -v python3 >/dev/null 2>&1; then
	mkdir "$T/hangup"
	# A listener that takes one connection and closes it unanswered.
	python3 -c 'import socket, sys
s = socket.socket(socket.AF_UNIX)
s.bind(sys.argv[1])
s.listen(1)
c, _ = s.accept()
c.close()' "$T/hangup/flmd.sock" &
	HPID=$!
	wait_until 3000 test -S "$T/hangup/flmd.sock"
	$FLM -D "$T/hangup" status >"$T/out" 2>"$T/err"
	RC=$?
	checkx "a daemon that hangs up unanswered: exit 1, saying so" \
	    '[ $RC = 1 ] && grep -q "flmd closed the connection" "$T/err" &&
	    [ ! -s "$T/out" ]'
	kill "$HPID" 2>/dev/null
	wait "$HPID" 2>/dev/null || :
else
	ok "# SKIP no python3 for a listener that hangs up"
fi
