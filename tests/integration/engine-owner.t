#!/bin/sh
# An engine is trusted by the owner of its listening socket, not by its
# port alone: flmd records the owner proxyd sees first; when another
# user's process listens on the port instead (the engine was down),
# proxyd refuses to send it prompts (502 engine_owner_changed), flm
# engines detect warns, and only flm engines trust lets it through.
. "$(dirname "$0")/lib.sh"

plan 11

mock_init
check "suite starts" suite_start
F="$FLM -D $STATE"
P=$(free_port)
ME=$(id -u)
# own_mock [setpriv args]: a vLLM mock with model m1 on port P.
own_mock() {
	"$@" "$MOCK" --flavor vllm --models m1 --listen "127.0.0.1:$P" \
	    >>"$TMP/own.log" 2>&1 &
	OWN=$!
	MOCK_PIDS="$MOCK_PIDS $OWN"
	wait_until 3000 sh -c "curl -s -m 1 http://127.0.0.1:$P/health >/dev/null"
}
own_mock
$F config set engines.own.kind vllm >/dev/null
$F config set engines.own.url "http://127.0.0.1:$P" >/dev/null
KEY=$($F api-keys create --label o --json | jq -r .key)
PORT=$($F proxy start --port 0 --json | jq .port)
U=http://127.0.0.1:$PORT
CHAT='{"model":"flm://own/m1","messages":[{"role":"user","content":"hi"}]}'
# chat: the status of a chat request to flm://own/m1, the body in $TMP/body.
chat() {
	curl -s -o "$TMP/body" -w '%{http_code}' -m 5 \
	    -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \
	    -d "$CHAT" "$U/v1/chat/completions"
}
recorded() {
	sqlite3 "$STATE/config.db" \
	    "SELECT value FROM settings WHERE key = 'engines.own.owner'"
}

wait_until 3000 sh -c "[ \"\$(sqlite3 '$STATE/config.db' \"SELECT value FROM settings WHERE key = 'engines.own.owner'\")\" = '$ME 127.0.0.1 $P' ]"
check "flmd records the first owner of the engine's listener ($(recorded))" \
    [ "$(recorded)" = "$ME 127.0.0.1 $P" ]
DET=$($F engines detect --json)
check "flm engines detect shows it: owner_uid and owner_recorded $ME" \
    json_has "$DET" ".[] | select(.id == \"own\") | .owner_uid == $ME and .owner_recorded == $ME and .state == \"RunningHealthy\""
c=$(chat)
check "a request to the engine goes through (got $c)" [ "$c" = 200 ]

# The other user's mock from a copy it can reach, wherever the clone is.
[ "$ME" = 0 ] && chmod 755 "$TMP" && public_tree "$TMP/pub" &&
    MOCK=$TMP/pub/tests/mock-engine/flm-mock-engine
if [ "$ME" = 0 ] && command -v setpriv >/dev/null &&
    setpriv --reuid=65534 --regid=65534 --clear-groups "$MOCK" --help \
    >/dev/null 2>&1; then
	# The engine goes down; another user binds its port.
	kill "$OWN"
	wait "$OWN" 2>/dev/null
	own_mock setpriv --reuid=65534 --regid=65534 --clear-groups
	c=$(chat)
	checkx "the next request (a new connection): 502 engine_owner_changed naming the engine and the owners (got $c)" \
	    '[ "$c" = 502 ] && jq -e ".error.code == \"engine_owner_changed\" and (.error.message | test(\"own.*uid 65534.*uid 0\"))" "$TMP/body" >/dev/null'
	check "the mock of the other user never saw a prompt" \
	    json_has "$(curl -s "http://127.0.0.1:$P/__mock/stats")" \
	    '(.by_path["/v1/chat/completions"] // 0) == 0'
	$F engines detect --json >"$TMP/det" 2>"$TMP/warn"
	checkx "flm engines detect: state OwnerChanged with both owners, and a warning" \
	    'jq -e ".[] | select(.id == \"own\") | .state == \"OwnerChanged\" and .owner_uid == 65534 and .owner_recorded == 0" "$TMP/det" >/dev/null && grep -q "warning: engine own: .*uid 65534" "$TMP/warn"'
	c=$(chat)
	checkx "after the probe, requests are still refused by name (got $c)" \
	    '[ "$c" = 502 ] && jq -e ".error.code == \"engine_owner_changed\"" "$TMP/body" >/dev/null'
	out=$($F engines trust own 2>&1)
	checkx "flm engines trust own forgets the old owner ($out)" \
	    'json_has "$out" ".engine == \"own\" and .forgotten_owner_uid == 0"'
	wait_until 5000 sh -c "[ \"\$(curl -s -o /dev/null -w '%{http_code}' -m 5 -H 'Authorization: Bearer $KEY' -H 'Content-Type: application/json' -d '$CHAT' '$U/v1/chat/completions')\" = 200 ]"
	c=$(chat)
	checkx "then the new owner is recorded and requests go through (got $c, $(recorded))" \
	    '[ "$c" = 200 ] && [ "$(recorded)" = "65534 127.0.0.1 $P" ]'
else
	for i in 1 2 3 4 5 6; do
		ok "# SKIP needs root (and setpriv) to listen as another user"
	done
fi
check "no child was restarted" \
    [ "$(status_json | jq '[.processes[] | .restarts // 0] | add')" = 0 ]
