#!/bin/sh
# flm console (docs/CONSOLE.md) as its admin uses it: curl first, at
# the door (loopback only, the one-time URL, the Host check, 403 and
# 401 without the session), then headless Chromium driven by
# puppeteer-core (tests/console/console-test.mjs) through every page:
# the login, the cookie and the CSP, the status, a key made, tried
# here with curl, revoked, a streamed chat, the usage, the audit, and
# another origin's page trying to make a key; then curl again with the
# browser's session, against the CSRF rules; then SIGTERM.  Screenshots
# of each page are left in tests/artifacts/console/.  Needs chromium,
# node and npm (puppeteer-core is installed once into FLM_NPM_DIR, as
# openai.t's clients are); without them the test is skipped, except
# under CI, where it fails.
. "$(dirname "$0")/lib.sh"

chromium_find
command -v ss >/dev/null 2>&1 || unavailable "no ss (iproute2)"

unset FLM_API_KEY
mock_init
puppeteer_install

# The node script's checks (console-test.mjs: one per check() call).
NODE_POINTS=19
plan $((43 + NODE_POINTS))

# A slow Ollama, to see the chat page print the answer as it comes.
mock --flavor ollama --models llama3.2:1b,qwen2.5:0.5b --chunks 8 \
    --chunk-delay-ms 150
ENGINE=$MPORT
# A page server: another origin, for the CSRF attempts.
mock --flavor vllm --models page
EVIL=http://127.0.0.1:$MPORT
MODEL=flm://ollama/llama3.2:1b

check "suite starts" suite_start
F="$FLM -D $STATE"
$F config set engines.ollama.url "http://127.0.0.1:$ENGINE" >/dev/null
PROBE=$($F api-keys create --label probe --json | jq -r .key)
PORT=$($F proxy start --port 0 --json | jq .port)
BASE=http://127.0.0.1:$PORT/v1
listed() {
	get -H "Authorization: Bearer $PROBE" "$BASE/models" |
	    jq -e --arg m "$MODEL" '[.data[].id] | index($m) != null' \
	    >/dev/null 2>&1
}
checkx "a proxy on port $PORT lists $MODEL" 'wait_until 5000 listed'
# The mock's answer, as the chat page must show it.
EXPECT=$(post "http://127.0.0.1:$ENGINE/v1/chat/completions" \
    '{"model":"llama3.2:1b","messages":[{"role":"user","content":"Say hello"}]}' |
    jq -r '.choices[0].message.content')
# The proxy, with KEY: the status of a chat completion.
ask() {
	curl -s -o /dev/null -m 10 -w '%{http_code}' \
	    -H "Authorization: Bearer $1" -H 'Content-Type: application/json' \
	    -d "{\"model\":\"$MODEL\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}" \
	    "$BASE/chat/completions"
}
# key_state LABEL: active, revoked, ... or nothing.
key_state() {
	$F api-keys list --json |
	    jq -r --arg l "$1" '.[] | select(.label == $l) | .state'
}

# ---- the door -----------------------------------------------------------------
$F console --port 0 >"$TMP/console.out" 2>"$TMP/console.err" &
CPID=$!
MOCK_PIDS="$MOCK_PIDS $CPID"
wait_until 5000 test -s "$TMP/console.out"
LINE=$(head -n 1 "$TMP/console.out")
LOGIN=${LINE#flm console: }
CPORT=$(printf '%s\n' "$LINE" | sed -n \
    's|^flm console: http://127\.0\.0\.1:\([0-9]*\)/login?token=[0-9a-f]\{64\}$|\1|p')
TOKEN=${LOGIN##*token=}
CONSOLE=http://127.0.0.1:$CPORT
checkx "flm console prints its one-time URL ($LINE)" '[ -n "$CPORT" ]' ||
    diag "$(cat "$TMP/console.err")"
[ -n "$CPORT" ] || CPORT=1	# a port nothing listens on: the rest fails

# The local addresses listening on the console's port.
listening() { ss -ltnH "sport = :$CPORT" | awk '{ print $4 }' | sort -u; }
L=$(listening)
checkx "it listens on 127.0.0.1:$CPORT only ($L)" \
    '[ "$L" = "127.0.0.1:$CPORT" ]'

# hdr NAME: a header of the last answer curl saved in TMP/h.
hdr() {
	tr -d '\r' <"$TMP/h" | sed -n "s/^$1: //Ip" | tail -n 1
}
CSP="default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
c=$(curl -s -m 5 -D "$TMP/h" -o "$TMP/b" -w '%{http_code}' "$CONSOLE/")
checkx "without the session, / is 403 ($c), with the headers of docs/CONSOLE.md" \
    '[ "$c" = 403 ] && [ "$(hdr Content-Security-Policy)" = "$CSP" ] &&
    [ "$(hdr X-Content-Type-Options)" = nosniff ] &&
    [ "$(hdr Referrer-Policy)" = no-referrer ] &&
    [ "$(hdr X-Frame-Options)" = DENY ] &&
    [ "$(hdr Cache-Control)" = no-store ]' ||
    diag "$(cat "$TMP/h")"
c=$(curl -s -m 5 -o "$TMP/b" -w '%{http_code}' "$CONSOLE/api/status")
checkx "without the session, /api/status is 401 ($c) with an {\"error\"}" \
    '[ "$c" = 401 ] && jq -e ".error | strings" "$TMP/b" >/dev/null'
a=$(http_code "$LOGIN" -H "Host: evil.example:$CPORT")
b=$(http_code "$LOGIN" -H "Host: 127.0.0.1:$((CPORT + 1))")
checkx "another Host, with the right token: 421 ($a, $b)" \
    '[ "$a" = 421 ] && [ "$b" = 421 ]'
c=$(http_code "http://localhost:$CPORT/")
checkx "Host localhost:$CPORT is accepted: 403 without the session ($c)" \
    '[ "$c" = 403 ]'
case $TOKEN in *0) WRONG=${TOKEN%?}1 ;; *) WRONG=${TOKEN%?}0 ;; esac
a=$(http_code "$CONSOLE/login?token=$WRONG")
b=$(http_code "$CONSOLE/login")
checkx "a wrong token, or none: 403 ($a, $b)" '[ "$a" = 403 ] && [ "$b" = 403 ]'

# ---- the browser --------------------------------------------------------------
SYNC=$TMP/sync
SHOTS=$top_builddir/tests/artifacts/console
mkdir -p "$SYNC" "$SHOTS"
rm -f "$SHOTS"/*.png
timeout 300 env FLM_NPM_DIR="$NPM_DIR" CHROMIUM="$CHROMIUM" SYNC="$SYNC" \
    SHOTS="$SHOTS" EVIL="$EVIL" EXPECT="$EXPECT" MODEL="${MODEL#flm://}" \
    KEYD_PID="$(proc_pid flm-keyd)" PROXYD_PID="$(proc_pid flm-proxyd)" \
    node "$top_srcdir/tests/console/console-test.mjs" "$LOGIN" \
    >"$TMP/node.out" 2>"$TMP/node.err" &
NPID=$!
MOCK_PIDS="$MOCK_PIDS $NPID"

# node_at NAME: wait for the node script's "@ NAME VALUE" (or its end);
# VALUE is left in AT.  go NAME [TEXT]: let it go on past NAME.
node_said() {
	grep -qs "^@ $1\( \|$\)" "$TMP/node.out" || ! kill -0 $NPID 2>/dev/null
}
node_at() {
	wait_until 120000 node_said "$1"
	AT=$(sed -n "s/^@ $1 //p" "$TMP/node.out" | head -n 1)
}
go() {
	printf '%s\n' "${2:-}" >"$SYNC/$1.tmp" && mv "$SYNC/$1.tmp" "$SYNC/$1"
}

node_at session
COOKIE=${AT% *}
CSRF=${AT#* }

node_at key1
KEY1=$AT
c=$(ask "$KEY1")
checkx "the key made on the keys page works at the proxy ($c), listed active" \
    '[ "$c" = 200 ] && [ "$(key_state console-a)" = active ]'
go key1

node_at revoke-asked
c=$(ask "$KEY1")
checkx "Revoke alone, before its confirmation, revokes nothing ($c)" \
    '[ "$c" = 200 ] && [ "$(key_state console-a)" = active ]'
go revoke-asked

node_at revoked
refused() { [ "$(ask "$KEY1")" = 401 ]; }
checkx "confirmed, the key is revoked, and the proxy refuses it: 401" \
    'wait_until 5000 eval "[ \"\$(key_state console-a)\" = revoked ]" &&
    wait_until 3000 refused'
go revoked

node_at usage0
N=3
UKEY=$($F api-keys create --label console-usage --json)
UKID=$(printf '%s' "$UKEY" | jq -r .id)
UKEY=$(printf '%s' "$UKEY" | jq -r .key)
codes=
i=0
while [ $i -lt $N ]; do
	codes="$codes$(ask "$UKEY") "
	i=$((i + 1))
done
counted() {
	[ "$($F usage --key "$UKID" --json |
	    jq '[.usage[].requests] | add // 0')" = $N ]
}
checkx "$N requests with key $UKID ($codes), in the audit trail" \
    '[ "$codes" = "200 200 200 " ] && wait_until 5000 counted'
go usage0 "$UKID $N"

wait $NPID
rc=$?
# The node script's checks, numbered here.
n=0
while IFS= read -r l; do
	case $l in
	"ok - "*)	n=$((n + 1)); ok "browser: ${l#ok - }" ;;
	"not ok - "*)	n=$((n + 1)); not_ok "browser: ${l#not ok - }" ;;
	"#"*)		echo "$l" ;;
	esac
done <"$TMP/node.out"
[ $rc = 0 ] || diag "node exited $rc"
[ -s "$TMP/node.err" ] && diag "$(cat "$TMP/node.err")"
while [ $n -lt $NODE_POINTS ]; do
	n=$((n + 1))
	not_ok "browser: check $n did not run"
done

# ---- curl, with the browser's session ------------------------------------------
C="Cookie: flm_console=$COOKIE"
J='Content-Type: application/json'
# create BODY [curl args]: POST /api/keys/create with the session; the
# status, the answer in TMP/b.
create() {
	body=$1
	shift
	curl -s -m 10 -o "$TMP/b" -w '%{http_code}' -H "$C" "$@" \
	    --data-binary "$body" "$CONSOLE/api/keys/create"
}
csrf_failed() {
	[ "$1" = 403 ] && jq -e '.error == "CSRF check failed"' "$TMP/b" >/dev/null
}
c=$(curl -s -m 10 -o "$TMP/b" -w '%{http_code}' -H "$C" "$CONSOLE/api/status")
checkx "with the session's cookie, /api/status is flm status --json ($c)" \
    '[ "$c" = 200 ] && jq -e "[.processes[] | select(.state == \"running\")]
    | length >= 3" "$TMP/b" >/dev/null'
c=$(curl -s -m 10 -o "$TMP/b" -w '%{http_code}' -H "$C" \
    "$CONSOLE/api/audit?count=500")
a=$(http_code "$CONSOLE/api/audit?count=501" -H "$C")
b=$(http_code "$CONSOLE/api/audit?count=-1" -H "$C")
checkx "GET /api/audit?count=500: the records ($c); 501 or -1: 400 ($a, $b)" \
    '[ "$c" = 200 ] && jq -e ".records | length > 0" "$TMP/b" >/dev/null &&
    [ "$a" = 400 ] && [ "$b" = 400 ]' || diag "$(head -c 300 "$TMP/b")"
c=$(http_code "$CONSOLE/api/status" -H "$C" -H "Host: evil.example:$CPORT")
checkx "... and with another Host, 421 ($c)" '[ "$c" = 421 ]'
c=$(create '{"label":"csrf-none"}' -H "$J")
checkx "POST /api/keys/create without X-FLM-CSRF: 403 ($c)" 'csrf_failed $c'
c=$(create '{"label":"csrf-wrong"}' -H "$J" -H "X-FLM-CSRF: $TOKEN")
checkx "... with a wrong X-FLM-CSRF: 403 ($c)" 'csrf_failed $c'
a=$(create '{"label":"csrf-origin"}' -H "$J" -H "X-FLM-CSRF: $CSRF" \
    -H 'Origin: http://evil.example')
b=$(create '{"label":"csrf-origin2"}' -H "$J" -H "X-FLM-CSRF: $CSRF" \
    -H "Origin: $EVIL")
checkx "... with the token but another Origin: 403 ($a, $b)" \
    'csrf_failed $b && [ "$a" = 403 ]'
c=$(create '{"label":"csrf-text"}' -H 'Content-Type: text/plain' \
    -H "X-FLM-CSRF: $CSRF")
checkx "... with the token but Content-Type text/plain: 403 ($c)" \
    'csrf_failed $c'
c=$(curl -s -m 10 -o "$TMP/b" -w '%{http_code}' -H "$J" -H "X-FLM-CSRF: $CSRF" \
    -d '{"label":"csrf-nocookie"}' "$CONSOLE/api/keys/create")
checkx "... with the token but no cookie: 401 ($c)" '[ "$c" = 401 ]'
a=$(create '{"label":"-x"}' -H "$J" -H "X-FLM-CSRF: $CSRF")
b=$(create '{"label":"a b"}' -H "$J" -H "X-FLM-CSRF: $CSRF")
checkx "... with a label that is not one (-x, \"a b\"): 400 ($a, $b)" \
    '[ "$a" = 400 ] && [ "$b" = 400 ]'
head -c 70000 /dev/zero | tr '\0' a >"$TMP/big"
c=$(curl -s -m 10 -o "$TMP/b" -w '%{http_code}' -H "$C" -H "$J" \
    -H "X-FLM-CSRF: $CSRF" --data-binary "{\"label\":\"big\",\"x\":\"$(cat "$TMP/big")\"}" \
    "$CONSOLE/api/keys/create")
checkx "... a body of more than 64 KiB: 413 ($c)" '[ "$c" = 413 ]'
c=$(create '{"label":"curl-ok"}' -H "$J" -H "X-FLM-CSRF: $CSRF" \
    -H "Origin: $CONSOLE")
checkx "... with the token, its Origin and JSON: 200, a key ($c)" \
    '[ "$c" = 200 ] && jq -e ".key | startswith(\"flm_\")" "$TMP/b" >/dev/null'
LABELS=$($F api-keys list --json | jq -c '[.[].label] | sort')
checkx "no refused request made a key, from the browser or curl ($LABELS)" \
    '[ "$LABELS" = "[\"console-a\",\"console-chat\",\"console-usage\",\"curl-ok\",\"probe\"]" ]'

# ---- curl: the other routes, and flm's refusals as the console gives them --------
# api GET|POST PATH [BODY]: with the session (POST: JSON and the CSRF
# token); the status, the answer in TMP/b.
api() {
	if [ "$1" = POST ]; then
		curl -s -m 30 -o "$TMP/b" -w '%{http_code}' -H "$C" -H "$J" \
		    -H "X-FLM-CSRF: $CSRF" --data-binary "$3" "$CONSOLE$2"
	else
		curl -s -m 30 -D "$TMP/h" -o "$TMP/b" -w '%{http_code}' -H "$C" \
		    "$CONSOLE$2"
	fi
}
scope_of() {
	$F api-keys list --json | jq -c --arg l "$1" '.[] | select(.label == $l) | .scope'
}
c=$(api POST /api/keys/scope '{"key":"curl-ok","models":["llama3.2:1b"],"rpm":30}')
S=$(scope_of curl-ok)
checkx "POST /api/keys/scope: 200, the scope stored ($c, $S)" \
    '[ "$c" = 200 ] && [ "$(echo "$S" | jq -c "[.models, .rpm]")" = "[[\"llama3.2:1b\"],30]" ]' ||
    diag "$(head -c 300 "$TMP/b")"
a=$(api POST /api/keys/scope '{"key":"curl-ok","models":[5]}')
b=$(api POST /api/keys/scope '{"key":"curl-ok","models":"-x"}')
checkx "... a model that is no word (5, \"-x\"): 400 ($a, $b), the scope kept" \
    '[ "$a" = 400 ] && [ "$b" = 400 ] && [ "$(scope_of curl-ok)" = "$S" ]'
c=$(api POST /api/keys/rotate '{"key":"curl-ok","grace":"10m"}')
NEW=$(jq -r '.key // empty' "$TMP/b")
checkx "POST /api/keys/rotate: 200, a new secret the proxy takes ($c)" \
    '[ "$c" = 200 ] && [ -n "$NEW" ] && [ "$(ask "$NEW")" = 200 ]' ||
    diag "$(head -c 300 "$TMP/b")"
c=$(api POST /api/keys/rotate '{"key":"no-such-key"}')
checkx "... a key that does not exist: 409, flm's words without 'flm: ', its exit 1 ($c)" \
    '[ "$c" = 409 ] && jq -e ".exit == 1 and (.error | test(\"no-such-key\")) and
    (.error | startswith(\"flm\") | not)" "$TMP/b" >/dev/null' ||
    diag "$(head -c 300 "$TMP/b")"
c=$(api POST /api/chat "{\"key\":\"flm_wrong\",\"model\":\"$MODEL\",\"message\":\"hi\"}")
checkx "POST /api/chat with a wrong key: the proxy's 401 as an error, not a stream; 403 ($c)" \
    '[ "$c" = 403 ] && jq -e ".error == \"401: Incorrect API key provided.\"" "$TMP/b" >/dev/null' ||
    diag "$(head -c 300 "$TMP/b")"
c=$(api GET "/api/firewall?backend=nftables")
checkx "GET /api/firewall?backend=nftables: flm firewall preview's text ($c)" \
    '[ "$c" = 200 ] && jq -e ".text | test(\"table inet flm\")" "$TMP/b" >/dev/null' ||
    diag "$(head -c 300 "$TMP/b")"
a=$(api GET "/api/firewall?backend=-x")
b=$(api GET "/api/firewall?backend=pf")
checkx "... backend -x: 400 before flm runs ($a); backend pf: flm's usage error, 400 ($b)" \
    '[ "$a" = 400 ] && [ "$b" = 400 ] && jq -e ".exit == 2" "$TMP/b" >/dev/null' ||
    diag "$(head -c 300 "$TMP/b")"
c=$(api POST /api/proxy/start '{"mode":"local-http","port":0}')
P2=$(jq -r '.port // empty' "$TMP/b")
checkx "POST /api/proxy/start: 200, a proxy on port $P2 that answers ($c)" \
    '[ "$c" = 200 ] && [ -n "$P2" ] &&
    [ "$(http_code "http://127.0.0.1:$P2/healthz")" = 200 ]' ||
    diag "$(head -c 300 "$TMP/b")"
[ -z "$P2" ] || $F proxy stop --port "$P2" >/dev/null 2>&1
c=$(api POST /api/proxy/start '{"port":0}')
checkx "... without a mode: 400, no proxy started ($c)" \
    '[ "$c" = 400 ] && [ "$($F proxy status --json | jq length)" = 1 ]'
suite_stop
c=$(api GET /api/status)
checkx "flmd stopped: /api/status is 502 with flm's words, exit 3 ($c)" \
    '[ "$c" = 502 ] && jq -e ".exit == 3 and (.error | length > 0)" "$TMP/b" >/dev/null' ||
    diag "$(head -c 300 "$TMP/b")"

# ---- the screenshots ---------------------------------------------------------------
PNG=$(printf '\211PNG\r\n\032\n' | od -An -tx1)
for s in status keys usage audit chat setup; do
	f=$SHOTS/$s.png
	checkx "a screenshot of #$s: tests/artifacts/console/$s.png, a PNG" \
	    '[ -s "$f" ] && [ "$(head -c 8 "$f" | od -An -tx1)" = "$PNG" ]'
done

# ---- the end ---------------------------------------------------------------------
kill -TERM $CPID
(sleep 10 && kill -KILL $CPID 2>/dev/null) &
W=$!
wait $CPID
rc=$?
kill $W 2>/dev/null
checkx "SIGTERM: flm console exits 0 ($rc), having printed one line" \
    '[ $rc = 0 ] && [ "$(wc -l <"$TMP/console.out")" = 1 ]' ||
    diag "$(cat "$TMP/console.err")"
L=$(listening)
c=$(http_code "$CONSOLE/")
checkx "... and its port is closed ($c)" '[ -z "$L" ] && [ "$c" = 000 ]'
if [ "$T_FAILED" -gt 0 ]; then
	diag "flm console said:"
	diag "$(cat "$TMP/console.err")"
fi
