#!/bin/sh
# The proxy as real clients see it: the official openai npm client,
# unchanged but for its base URL and key, and flm chat, in front of the
# mock Ollama.  Needs node and npm: the client is installed once into
# FLM_NPM_DIR (default ~/.cache/flm-npm), outside the tree.  Without
# them the test is skipped, except under CI, where it fails.
. "$(dirname "$0")/lib.sh"

unset FLM_API_KEY
mock_init
openai_install

plan 12

mock --flavor ollama
OLLAMA=$MPORT
# A slow second Ollama, to see flm chat --stream print as tokens come.
mock --flavor ollama --chunks 8 --chunk-delay-ms 150
SLOW=$MPORT
check "suite starts" suite_start
F="$FLM -D $STATE"
$F config set engines.ollama.url "http://127.0.0.1:$OLLAMA" >/dev/null
$F config set engines.slow.url "http://127.0.0.1:$SLOW" >/dev/null
$F config set engines.slow.kind ollama >/dev/null
KEY=$($F api-keys create --label t --json | jq -r .key)
PORT=$($F proxy start --port 0 --json | jq .port)
BASE=http://127.0.0.1:$PORT/v1
case $KEY in *A) WRONG=${KEY%?}B ;; *) WRONG=${KEY%?}A ;; esac

listed() {
	get -H "Authorization: Bearer $KEY" "$BASE/models" |
	    jq -e '[.data[].id] | index("flm://slow/llama3.2:1b") != null' \
	    >/dev/null 2>&1
}
wait_until 5000 listed || diag "the proxy does not list both engines yet"

# The node script's checks, numbered here.
openai_run "$BASE" "$KEY"

# flm chat, with the key in the environment as flm(1) advises; its
# stderr is kept for the diagnostics of a failed point.
chat() { FLM_API_KEY=$KEY "$FLM" -D "$STATE" chat "$@" 2>>"$TMP/chat.err"; }
a=$(chat "Say hello")
rc=$?
checkx "flm chat answers through the first model ($rc)" \
    '[ $rc = 0 ] &&
    echo "$a" | grep -q "^Hello from mock ollama: you said Say hello"'
b=$(chat --stream --model flm://ollama/llama3.2:1b "Say hello")
rc=$?
checkx "flm chat --stream prints the same answer ($rc)" \
    '[ $rc = 0 ] && [ -n "$a" ] && [ "$b" = "$a" ]'
chat --stream --model flm://slow/llama3.2:1b "Say hello" >"$TMP/slow.out" &
SPID=$!
wait_until 3000 test -s "$TMP/slow.out"
kill -0 $SPID 2>/dev/null
alive=$?
wait $SPID
rc=$?
checkx "flm chat --stream prints tokens as they arrive ($rc)" \
    '[ $alive = 0 ] && [ $rc = 0 ] && [ "$(cat "$TMP/slow.out")" = "$a" ]'
[ -s "$TMP/chat.err" ] && diag "flm chat said:" && diag "$(cat "$TMP/chat.err")"

out=$("$FLM" -D "$STATE" chat "Say hello" 2>&1)
rc=$?
checkx "flm chat without a key: usage error naming FLM_API_KEY ($rc)" \
    '[ $rc = 2 ] && echo "$out" | grep -q FLM_API_KEY'
out=$(FLM_API_KEY=$WRONG "$FLM" -D "$STATE" chat "Say hello" 2>&1)
rc=$?
checkx "flm chat with a wrong key: the 401 and exit 4 ($rc: $out)" \
    '[ $rc = 4 ] && [ "$out" = "flm chat: 401: Incorrect API key provided." ]'
$F proxy stop >/dev/null
out=$(FLM_API_KEY=$KEY "$FLM" -D "$STATE" chat "Say hello" 2>&1)
rc=$?
checkx "flm chat with no proxy says to start one ($rc)" \
    '[ $rc = 1 ] && echo "$out" | grep -q "flm proxy start"'
