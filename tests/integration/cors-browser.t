#!/bin/sh
# CORS as a real browser applies it: headless Chromium loads a page
# from a mock engine's /__mock/page (a real http origin), whose script
# calls the proxy with fetch(), an Authorization header and a JSON body,
# so Chromium sends its own preflight first.  From an allowed origin the
# page reads the answer and its X-Request-Id; from one that is not, or
# asking for a header that is not allowed, fetch() fails and the engine
# is never reached.  Needs chromium (scripts/deps.sh installs it);
# without it the test is skipped, except under CI, where it fails.
. "$(dirname "$0")/lib.sh"

chromium_find

plan 14

mock_init
mock --flavor vllm --models m1
ENGINE=$MPORT
# Two page servers: two origins.
mock --flavor vllm --models page
APP=http://127.0.0.1:$MPORT
mock --flavor vllm --models page
EVIL=http://127.0.0.1:$MPORT

check "suite starts" suite_start
F="$FLM -D $STATE"
$F config set engines.vllm.url "http://127.0.0.1:$ENGINE" >/dev/null
KEY=$($F api-keys create --label browser --json | jq -r .key)
PORT=$($F proxy start --port 0 --json | jq .port)
URL=http://127.0.0.1:$PORT/v1/chat/completions
case $KEY in *A) WRONG=${KEY%?}B ;; *) WRONG=${KEY%?}A ;; esac
BODY='{"model":"flm://vllm/m1","messages":[{"role":"user","content":"Say hello"}]}'

listed() {
	get -H "Authorization: Bearer $KEY" "http://127.0.0.1:$PORT/v1/models" |
	    jq -e '[.data[].id] | index("flm://vllm/m1") != null' >/dev/null 2>&1
}
wait_until 5000 listed || diag "the proxy does not list flm://vllm/m1 yet"

uri() { jq -rn --arg s "$1" '$s | @uri'; }

# browse ORIGIN KEY [HEADER [CRED]]: load ORIGIN's page, which calls the
# proxy (with credentials: 'include' when CRED is set);
# the JSON line its script wrote is left in $R ('' if none).  A fresh
# profile each time: no preflight cached from an earlier policy.
NB=0
browse() {
	NB=$((NB + 1))
	page="$1/__mock/page?url=$(uri "$URL")&key=$(uri "$2")&body=$(uri "$BODY")"
	[ -n "${3:-}" ] && page="$page&header=$(uri "$3")"
	[ -n "${4:-}" ] && page="$page&cred=1"
	timeout 60 "$CHROMIUM" --headless --no-sandbox --disable-gpu \
	    --disable-dev-shm-usage --no-first-run --disable-extensions \
	    --disable-sync --disable-background-networking \
	    --disable-component-update --user-data-dir="$TMP/profile$NB" \
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

# The engine's chat completions so far, and the audit trail's rows.
engine_chats() {
	get "http://127.0.0.1:$ENGINE/__mock/stats" |
	    jq '.by_path["/v1/chat/completions"] // 0'
}
audit_rows() { $F audit tail -n 500 --json | jq '.records | length'; }
audit_status() {
	$F audit tail -n 500 --json | jq -r --arg id "$1" \
	    '.records[] | select(.request_id == $id) | .status'
}
audited() { [ "$(audit_status "$1")" = "$2" ]; }
request_id() { printf '%s' "$R" | jq -r '.request_id // empty' 2>/dev/null; }

# checkb DESCRIPTION 'condition': checkx, with what the page saw if not.
checkb() {
	checkx "$@" || diag "the page wrote: $R"
}

# ---- an allowed origin ------------------------------------------------------
$F security cors --origins "$APP" >/dev/null
browse "$APP" "$KEY"
checkb "from the allowed origin $APP, fetch() succeeds: 200" \
    'json_has "$R" ".origin == \"$APP\" and .status == 200 and (has(\"error\") | not)"'
checkb "... and the page reads the JSON answer" \
    'json_has "$R" ".json.choices[0].message.content |
    startswith(\"Hello from mock vllm: you said Say hello\")"'
ID=$(request_id)
checkb "... and the X-Request-Id header ($ID)" \
    'printf "%s" "$ID" | grep -Eqx "flm-[0-9a-f]{16}"'
checkx "... the engine answered it once, and it is in the audit trail (200)" \
    '[ "$(engine_chats)" = 1 ] && wait_until 3000 audited "$ID" 200'

# An error after the CORS check is the page's to read.
browse "$APP" "$WRONG"
ID=$(request_id)
checkb "from $APP with a wrong key: the page reads the 401, its code, its id" \
    'json_has "$R" ".status == 401 and .json.error.code == \"invalid_api_key\"" &&
    [ "$(engine_chats)" = 1 ] && wait_until 3000 audited "$ID" 401'

# ---- refused by the preflight -------------------------------------------------
ROWS=$(audit_rows)
browse "$APP" "$KEY" X-Flm-Test
checkb "from $APP asking for a header not allowed (x-flm-test): fetch() throws TypeError" \
    'json_has "$R" ".error == \"TypeError\" and (has(\"status\") | not)"'
browse "$EVIL" "$KEY"
checkb "from $EVIL, an origin not in the policy: fetch() throws TypeError" \
    'json_has "$R" ".origin == \"$EVIL\" and .error == \"TypeError\" and
    (has(\"status\") | not)"'
sleep 0.3	# the audit batches go every 50 ms
checkx "... neither reached the engine, nor left an audit record ($ROWS rows)" \
    '[ "$(engine_chats)" = 1 ] && [ "$(audit_rows)" = "$ROWS" ]'

# ---- credentials ---------------------------------------------------------------
browse "$APP" "$KEY" "" cred
checkb "a credentialed fetch() from $APP, credentials not allowed: TypeError" \
    'json_has "$R" ".error == \"TypeError\"" && [ "$(engine_chats)" = 1 ]'
$F security cors --origins "$APP" --credentials yes >/dev/null
browse "$APP" "$KEY" "" cred
checkb "with allow_credentials it is answered: 200" \
    'json_has "$R" ".status == 200" && [ "$(engine_chats)" = 2 ]'

# ---- "*" ---------------------------------------------------------------------
$F security cors --origins '*' --credentials no >/dev/null
browse "$EVIL" "$KEY"
checkb "with allowed_origins \"*\", $EVIL's page is answered too" \
    'json_has "$R" ".status == 200 and (.request_id | test(\"^flm-[0-9a-f]{16}$\"))" &&
    [ "$(engine_chats)" = 3 ]'

# ---- origins emptied ----------------------------------------------------------
$F security cors --origins '' >/dev/null
browse "$APP" "$KEY"
checkb "with no origin allowed, even $APP's fetch() throws TypeError" \
    'json_has "$R" ".error == \"TypeError\"" && [ "$(engine_chats)" = 3 ]'
# The same request without a browser (no Origin) still goes through.
c=$(curl -s -o /dev/null -m 10 -w '%{http_code}' -H "Authorization: Bearer $KEY" \
    -H 'Content-Type: application/json' -d "$BODY" "$URL")
checkx "... while curl, sending no Origin, gets 200 (got $c)" \
    '[ "$c" = 200 ] && [ "$(engine_chats)" = 4 ]'
