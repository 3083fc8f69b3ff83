#!/bin/sh
# Sealed upstream credentials (issue 17): flm engines credential set ID
# reads the secret from standard input or the terminal, never argv;
# flm-keyd seals it in security.db (XChaCha20-Poly1305, a data key per
# key id, flm secrets rotate); proxyd gets only the credentials of
# configured engines and sends them as Authorization: Bearer, on
# requests and probes, plain or over TLS.  The secret is in no file, no
# log, no answer, and not left in flmd's or keyd's memory.
. "$(dirname "$0")/lib.sh"

plan 27

mock_init
T=$TMP
SECRET="eng-$(head -c 18 /dev/urandom | od -An -tx1 | tr -d ' \n')"
mock --flavor vllm --models m --api-key "$SECRET"
P=$MPORT
check "suite starts" suite_start
F="$FLM -D $STATE"
KEY=$($F api-keys create --label c --json | jq -r .key)
PORT=$($F proxy start --port 0 --json | jq .port)
U=http://127.0.0.1:$PORT
$F config set engines.gpu.kind vllm >/dev/null
$F config set engines.gpu.url "http://127.0.0.1:$P" >/dev/null
chat() {
	curl -s -m 10 -o "$T/chat.out" -w '%{http_code}' \
	    -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \
	    -d '{"model":"flm://'"${1:-gpu}"'/m","messages":[{"role":"user","content":"hi"}]}' \
	    "$U/v1/chat/completions"
}
stat() { curl -s -m 5 "$@" | jq -r '.unauthorized'; }

detect
checkx "an engine that wants a key, none set: ErrorApi saying what to do ($(field gpu state): $(field gpu reason))" \
    '[ "$(field gpu state)" = ErrorApi ] && field gpu reason | grep -q "401: the engine wants a credential (flm engines credential set gpu)"'
code=$(chat)
checkx "a chat for it: 502 engine_auth_failed with the reason, not the engine's 401 ($code)" \
    '[ "$code" = 502 ] && jq -e ".error.code == \"engine_auth_failed\" and (.error.message | test(\"flm engines credential set gpu\"))" "$T/chat.out" >/dev/null'

# ---- set: never from argv ----------------------------------------------------
check "a secret on the command line is refused (usage)" \
    sh -c "! $F engines credential set gpu '$SECRET' >/dev/null 2>&1"
check "an empty standard input is refused" \
    fails_with "no credential read" sh -c "printf '' | $F engines credential set gpu"
check "an engine not configured gets none" \
    fails_with "no engine nope is configured" sh -c "echo x | $F engines credential set nope"
check "a credential with a quote is refused" \
    fails_with "without quotes" sh -c "echo 'a\"b' | $F engines credential set gpu"
out=$(printf '%s\n' "$SECRET" | $F engines credential set gpu --json)
checkx "from standard input: sealed under data key 1 ($out)" \
    'json_has "$out" ".name == \"engine:gpu\" and .key_id == 1 and .sealed == true"'
checkx "… and the answer does not hold it" '! printf "%s" "$out" | grep -qF "$SECRET"'
# The terminal, echo off: script(1) gives flm a pty.
out=$( (sleep 1; printf '%s\n' "$SECRET") | script -qec "$F engines credential set gpu" /dev/null 2>&1)
checkx "from the terminal: prompted, not echoed ($(printf '%s' "$out" | tr -d '\r' | head -c 120))" \
    'printf "%s" "$out" | grep -q "Credential for engine gpu:" &&
    printf "%s" "$out" | grep -q "credential sealed" && ! printf "%s" "$out" | grep -qF "$SECRET"'

# ---- used upstream -----------------------------------------------------------
u0=$(stat "http://127.0.0.1:$P/__mock/stats")
detect
check "the probe sends it: RunningHealthy ($(field gpu state): $(field gpu reason))" \
    [ "$(field gpu state)" = RunningHealthy ]
code=$(chat)
checkx "a chat is answered by the engine ($code)" \
    '[ "$code" = 200 ] && jq -e ".choices[0].message.content | test(\"mock vllm\")" "$T/chat.out" >/dev/null'
checkx "… and the engine refused nothing since ($u0 -> $(stat "http://127.0.0.1:$P/__mock/stats"))" \
    '[ "$(stat "http://127.0.0.1:$P/__mock/stats")" = "$u0" ]'
checkx "the client's answer does not hold it" '! grep -qF "$SECRET" "$T/chat.out"'

# ---- over TLS too ------------------------------------------------------------
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$T/e.key" -out "$T/e.pem" -days 2 -subj /CN=e \
    -addext subjectAltName=IP:127.0.0.1 >/dev/null 2>&1
mock --flavor vllm --models m --api-key "$SECRET" --tls-cert "$T/e.pem" --tls-key "$T/e.key"
PT=$MPORT
$F config set engines.sec.kind vllm >/dev/null
$F config set engines.sec.ca "$T/e.pem" >/dev/null
$F config set engines.sec.url "https://127.0.0.1:$PT" >/dev/null
printf '%s\n' "$SECRET" | $F engines credential set sec >/dev/null
detect
checkx "an https engine with a credential: RunningHealthy, a chat answered" \
    '[ "$(field sec state)" = RunningHealthy ] && [ "$(chat sec)" = 200 ]'

# ---- list, rotate, restart ---------------------------------------------------
out=$($F secrets list --json)
checkx "secrets list names them, with their key id, not their text" \
    'json_has "$out" "[.[].name] == [\"engine:gpu\", \"engine:sec\"] and all(.[]; .key_id == 1)" &&
    ! printf "%s" "$out" | grep -qF "$SECRET"'
blob1=$(sqlite3 "$STATE/keyd/security.db" "SELECT hex(sealed) FROM secrets WHERE name = 'engine:gpu'" 2>/dev/null)
out=$($F secrets rotate --json)
checkx "secrets rotate: both sealed again under data key 2 ($out)" \
    'json_has "$out" ".key_id == 2 and .resealed == 2"'
blob2=$(sqlite3 "$STATE/keyd/security.db" "SELECT hex(sealed) FROM secrets WHERE name = 'engine:gpu'" 2>/dev/null)
checkx "… the sealed row changed" '[ -n "$blob1" ] && [ -n "$blob2" ] && [ "$blob1" != "$blob2" ]'
checkx "… and it still opens: a chat is answered" '[ "$(chat)" = 200 ]'
# A row moved under another name does not open (the name is sealed in).
sqlite3 "$STATE/keyd/security.db" "UPDATE secrets SET sealed = (SELECT sealed FROM secrets WHERE name = 'engine:sec'), nonce = (SELECT nonce FROM secrets WHERE name = 'engine:sec') WHERE name = 'engine:gpu'" 2>/dev/null
check "a row copied over another's does not open: rotate refuses, changing nothing" \
    fails_with "secret engine:gpu does not open" $F secrets rotate
printf '%s\n' "$SECRET" | $F engines credential set gpu >/dev/null
suite_restart "$PORT"
detect
checkx "after a restart keyd hands them to the new proxyd: a chat is answered" \
    '[ "$(field gpu state)" = RunningHealthy ] && [ "$(chat)" = 200 ]'

# ---- clear -------------------------------------------------------------------
out=$($F engines credential clear gpu --json)
checkx "clear: forgotten ($out)" 'json_has "$out" ".cleared == true"'
code=$(chat)
checkx "… the next chat goes without it: 502 engine_auth_failed ($code)" \
    '[ "$code" = 502 ] && jq -e ".error.message | test(\"wants a credential\")" "$T/chat.out" >/dev/null'
check "clearing it again says there is none" \
    fails_with "no credential is set for engine:gpu" $F engines credential clear gpu

# ---- nowhere in clear ---------------------------------------------------------
checkx "not in any file or log of the state directory" \
    '! grep -rlaF "$SECRET" "$STATE" >/dev/null 2>&1'
MEMGREP=$top_builddir/tests/mem-grep
keyd=$(proc_pid flm-keyd)
printf '%s\n' "$SECRET" | $F engines credential set gpu >/dev/null
if n=$("$MEMGREP" "$keyd" flm-keyd 2>/dev/null) && [ "$n" -gt 0 ]; then
	n=$("$MEMGREP" "$FLMD_PID" "$SECRET" 2>/dev/null || echo "?")
	check "flmd carried it and kept no copy in its memory (found $n)" [ "$n" = 0 ]
	n=$("$MEMGREP" "$keyd" "$SECRET" 2>/dev/null || echo "?")
	check "nor did flm-keyd, which sealed and sent it (found $n)" [ "$n" = 0 ]
else
	ok "flmd kept no copy # SKIP cannot read another process's memory here"
	ok "nor flm-keyd # SKIP cannot read another process's memory here"
fi
