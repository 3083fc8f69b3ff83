#!/bin/sh
# README command (1): install what is missing, build, and run the FLM
# suite in user mode in a temporary state directory, then show it at
# work.  Set FLM_QUICKSTART_KEEP=1 to leave it running afterwards.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

sh scripts/deps.sh
echo "quickstart: building (out of tree, in build/)"
sh scripts/build.sh build
B=$top/build

STATE=$(mktemp -d "${TMPDIR:-/tmp}/flm-quickstart.XXXXXX")
FLM="$B/flm/flm -D $STATE"
pids=
cleanup() {
	[ "${FLM_QUICKSTART_KEEP:-0}" = 1 ] && return
	for p in $pids; do kill "$p" 2>/dev/null || true; done
	for p in $pids; do wait "$p" 2>/dev/null || true; done
	rm -rf "$STATE"
}
trap cleanup EXIT INT TERM

# wait_for WHAT COMMAND...: up to 5 s.
wait_for() {
	what=$1
	shift
	i=0
	until "$@" >/dev/null 2>&1; do
		i=$((i + 1))
		if [ $i -gt 100 ]; then
			echo "quickstart: $what did not come up" >&2
			cat "$STATE"/*.log >&2
			exit 1
		fi
		sleep 0.05
	done
}
show() {
	echo
	echo "\$ $*"
	"$@"
}

echo "quickstart: starting the mock engine (Ollama flavour) on loopback"
"$B/tests/mock-engine/flm-mock-engine" --listen 127.0.0.1:0 --flavor ollama \
    --port-file "$STATE/mock.port" >"$STATE/mock.log" 2>&1 &
pids="$!"
wait_for "the mock engine" test -s "$STATE/mock.port"
MOCK_PORT=$(cat "$STATE/mock.port")

echo "quickstart: starting flmd in user mode, state in $STATE"
"$B/flmd/flmd" -d -D "$STATE" >"$STATE/flmd.log" 2>&1 &
pids="$! $pids"
wait_for flmd $FLM status --json

show $FLM status
show $FLM config set engines.ollama.url "http://127.0.0.1:$MOCK_PORT"
show $FLM engines detect
echo
echo "\$ flm proxy start --port 0       # any free port"
PORT=$($FLM proxy start --port 0 --json | sed -n 's/.*"port": *\([0-9]*\).*/\1/p')
echo "proxy listening on http://127.0.0.1:$PORT/v1"
echo
echo "\$ flm api-keys create --label quickstart"
KEY=$($FLM api-keys create --label quickstart --json | sed -n 's/.*"key": *"\([^"]*\)".*/\1/p')
echo "$KEY"
URL=http://127.0.0.1:$PORT/v1/models

echo
echo "\$ curl $URL                  # no key"
curl -s -w '\n(HTTP %{http_code})\n' "$URL"
echo
echo "\$ curl -H 'Authorization: Bearer flm_...' $URL"
out=$(curl -s -w '\n(HTTP %{http_code})' -H "Authorization: Bearer $KEY" "$URL")
echo "$out"
case $out in
*'"flm://ollama/'*'(HTTP 200)') ;;
*) echo "quickstart: the authenticated request failed" >&2; exit 1 ;;
esac
CHAT=http://127.0.0.1:$PORT/v1/chat/completions
BODY='{"model":"flm://ollama/llama3.2:1b","messages":[{"role":"user","content":"Hello, FLM!"}]}'
echo
echo "\$ curl -H 'Authorization: Bearer flm_...' -d '$BODY' $CHAT"
out=$(curl -s -w '\n(HTTP %{http_code})' -H "Authorization: Bearer $KEY" \
    -H 'Content-Type: application/json' -d "$BODY" "$CHAT")
echo "$out"
case $out in
*'"content":"Hello from mock ollama'*'(HTTP 200)') ;;
*) echo "quickstart: the chat completion failed" >&2; exit 1 ;;
esac
echo
echo "\$ FLM_API_KEY=flm_... flm chat --stream 'Hello again'"
FLM_API_KEY=$KEY $FLM chat --stream 'Hello again' ||
    { echo "quickstart: flm chat failed" >&2; exit 1; }
echo
echo "quickstart: OK, the engine answered through the authenticated proxy"
if [ "${FLM_QUICKSTART_KEEP:-0}" = 1 ]; then
	echo "quickstart: left running (pids $pids); state in $STATE"
fi
