#!/bin/sh
# The proxy as real clients see it: the official openai npm client,
# unchanged but for its base URL and key, and flm chat, in front of the
# mock Ollama.  Needs node and npm: the client is installed once into
# FLM_NPM_DIR (default ~/.cache/flm-npm), outside the tree.  Without
# them the test is skipped, except under CI, where it fails.
. "$(dirname "$0")/lib.sh"

unset FLM_API_KEY
NPM_DIR=${FLM_NPM_DIR:-${HOME:-/nonexistent}/.cache/flm-npm}
CLIENT=$top_srcdir/tests/integration/openai-client.mjs
NODE_POINTS=5

mock_init

# The client's major version, or nothing.
client_major() {
	jq -r '.version | split(".")[0]' \
	    "$NPM_DIR/node_modules/openai/package.json" 2>/dev/null
}

command -v node >/dev/null 2>&1 || unavailable "node is not installed"
if [ "$(client_major)" = "" ] || [ "$(client_major)" -lt 4 ]; then
	command -v npm >/dev/null 2>&1 || unavailable "npm is not installed"
	# Offline, fail in seconds rather than after a minute of retries.
	if ! npm install --prefix "$NPM_DIR" --no-audit --no-fund \
	    --fetch-retries=1 --fetch-retry-mintimeout=1000 \
	    --fetch-retry-maxtimeout=3000 openai@4 >"$TMP/npm.log" 2>&1; then
		diag "$(cat "$TMP/npm.log")"
		unavailable "npm install openai@4 into $NPM_DIR failed"
	fi
fi

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

# The node script's checks, numbered here; a crash fails those left.
timeout 120 env FLM_NPM_DIR="$NPM_DIR" FLM_TEST_KEY="$KEY" \
    node "$CLIENT" "$BASE" >"$TMP/node.out" 2>"$TMP/node.err"
n=0
while IFS= read -r l; do
	case $l in
	"ok - "*)	n=$((n + 1)); ok "${l#ok - }" ;;
	"not ok - "*)	n=$((n + 1)); not_ok "${l#not ok - }" ;;
	"#"*)		echo "$l" ;;
	esac
done <"$TMP/node.out"
[ -s "$TMP/node.err" ] && diag "$(cat "$TMP/node.err")"
while [ $n -lt $NODE_POINTS ]; do
	n=$((n + 1))
	not_ok "openai: check $n did not run"
done

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
