#!/bin/sh
# Scoped keys (issue 18): a key limited to models (globs), engines,
# client networks, endpoint families and its own rate limits.  keyd
# checks and stores the scope (sealed in the key's row MAC) and sends
# it with each verdict; proxyd refuses a request outside it with 403
# and why, lists only the models the key may use, and hears of a new
# scope before flm returns.
. "$(dirname "$0")/lib.sh"

mock_init
plan 40

mock --flavor ollama
OL=$MPORT
mock --flavor vllm --models "llama3.2:1b,big"
VL=$MPORT
check "suite starts" suite_start
F() { "$FLM" -D "$STATE" "$@"; }
DB() { sqlite3 "$STATE/keyd/security.db" "$@"; }
F config set engines.ollama.url "http://127.0.0.1:$OL" >/dev/null
F config set engines.vllm.url "http://127.0.0.1:$VL" >/dev/null
PORT=$(F proxy start --port 0 --json | jq .port)
U=http://127.0.0.1:$PORT
ALL=$(F api-keys create --label all --json | jq -r .key)
listed() {
	[ "$(get -H "Authorization: Bearer $ALL" "$U/v1/models" |
	    jq '.data | length')" = 4 ]
}
wait_until 5000 listed || diag "the proxy does not list every model yet"

# req KEY PATH BODY [curl args]: the status; the answer in $TMP/a.json.
req() {
	k=$1 p=$2 b=$3
	shift 3
	curl -s -o "$TMP/a.json" -w '%{http_code}' -m 5 \
	    -H "Authorization: Bearer $k" -d "$b" "$@" "$U$p"
}
chat() {
	c_k=$1 c_m=$2
	shift 2
	req "$c_k" /v1/chat/completions "{\"model\":\"$c_m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}" "$@"
}
why() { jq -r '.error.code + ": " + .error.message' "$TMP/a.json"; }

# ---- created with a scope; what keyd keeps ------------------------------------------
S=$(F api-keys create --label vllm-chat --models 'flm://vllm/*' \
    --endpoints chat,ollama --rpm 50 --json)
SK=$(echo "$S" | jq -r .key)
checkx "api-keys create --models --endpoints --rpm: the scope, spelled out" \
    'echo "$S" | jq -e ".scope == {\"models\": [\"flm://vllm/*\"],
    \"endpoints\": [\"chat\", \"ollama\"], \"rpm\": 50}" >/dev/null'
checkx "api-keys list shows it; a key without one shows null" \
    'F api-keys list --json | jq -e "(.[] | select(.label == \"vllm-chat\") | .scope.rpm == 50) and
    (.[] | select(.label == \"all\") | .scope == null)" >/dev/null'
if command -v script >/dev/null 2>&1; then
	script -qec "$FLM -D $STATE api-keys list" /dev/null </dev/null >"$TMP/list.out" 2>&1
	checkx "api-keys list on a terminal has a SCOPE column" \
	    'grep -q "SCOPE" "$TMP/list.out" && grep "vllm-chat" "$TMP/list.out" | grep -q "flm://vllm/\*"'
else
	ok "api-keys list on a terminal has a SCOPE column # SKIP no script(1)"
fi
checkx "security.db holds the scope in the key's row" \
    'DB "SELECT scope FROM api_keys WHERE label = '"'vllm-chat'"'" | grep -q "flm://vllm/\*"'

# ---- models --------------------------------------------------------------------------------
code=$(chat "$SK" flm://vllm/big)
check "a model its glob matches is served ($code)" test "$code" = 200
code=$(chat "$SK" flm://ollama/llama3.2:1b)
checkx "another engine's model: 403 model_not_allowed ($code)" \
    '[ $code = 403 ] && [ "$(why)" = "model_not_allowed: This API key may not use the model '"'flm://ollama/llama3.2:1b'"'." ]'
code=$(chat "$SK" flm://ollama/nothing)
c2=$(chat "$SK" nothing-at-all)
checkx "a model out of scope that does not exist is refused the same: 403, not 404 ($code $c2)" \
    '[ $code = 403 ] && [ $c2 = 403 ]'
code=$(chat "$SK" flm://vllm/nothing)
check "one in scope that does not exist is 404 ($code)" test "$code" = 404
code=$(chat "$SK" llama3.2:1b)
checkx "a pool name goes only to the members in scope ($code)" \
    '[ $code = 200 ] && jq -e ".choices[0].message.content | test(\"mock vllm\")" "$TMP/a.json" >/dev/null'
n0=$(get "http://127.0.0.1:$OL/__mock/stats" | jq '.by_path["/v1/chat/completions"] // 0')
for i in 1 2 3 4 5 6; do chat "$SK" llama3.2:1b >/dev/null; done
n1=$(get "http://127.0.0.1:$OL/__mock/stats" | jq '.by_path["/v1/chat/completions"] // 0')
check "six more pool requests: none reached the engine out of scope" \
    test "$n0" = "$n1"
checkx "/v1/models lists only the key's models" \
    '[ "$(get -H "Authorization: Bearer $SK" "$U/v1/models" | jq -c "[.data[].id] | sort")" = "[\"flm://vllm/big\",\"flm://vllm/llama3.2:1b\"]" ]'
checkx "/api/tags too" \
    '[ "$(get -H "Authorization: Bearer $SK" "$U/api/tags" | jq -c "[.models[].name] | sort")" = "[\"flm://vllm/big\",\"flm://vllm/llama3.2:1b\"]" ]'
checkx "a key without a scope still sees every model" \
    '[ "$(get -H "Authorization: Bearer $ALL" "$U/v1/models" | jq ".data | length")" = 4 ]'

# ---- endpoints -------------------------------------------------------------------------------
code=$(req "$SK" /v1/embeddings '{"model":"flm://vllm/big","input":"x"}')
checkx "embeddings outside the endpoints: 403 endpoint_not_allowed ($code)" \
    '[ $code = 403 ] && why | grep -q "^endpoint_not_allowed: This API key may not use the embeddings endpoints"'
code=$(req "$SK" /v1/messages '{"model":"flm://vllm/big","max_tokens":5,"messages":[{"role":"user","content":"x"}]}')
checkx "messages: 403 in Anthropic's shape ($code)" \
    '[ $code = 403 ] && jq -e ".error.type == \"permission_error\"" "$TMP/a.json" >/dev/null'
code=$(req "$SK" /v1/responses '{"model":"flm://vllm/big","input":"x"}')
check "responses: 403 ($code)" test "$code" = 403
code=$(req "$SK" /api/chat '{"model":"flm://vllm/big","stream":false,"messages":[{"role":"user","content":"x"}]}')
check "ollama is in its endpoints: /api/chat served ($code)" test "$code" = 200
code=$(req "$SK" /api/chat '{"model":"flm://ollama/llama3.2:1b","stream":false,"messages":[{"role":"user","content":"x"}]}')
checkx "… but not another engine's model, in Ollama's shape ($code)" \
    '[ $code = 403 ] && jq -e ".error | test(\"may not use the model\")" "$TMP/a.json" >/dev/null'

# ---- engines and networks, changed while the key is in use ------------------------------------
out=$(F api-keys scope vllm-chat --engines ollama)
check "api-keys scope replaces the scope: $out" \
    test "$out" = "key $(echo "$S" | jq -r .id) (vllm-chat): {\"engines\":[\"ollama\"]}"
code=$(chat "$SK" flm://vllm/big)
check "at once: the vLLM model is refused now ($code)" test "$code" = 403
code=$(chat "$SK" flm://ollama/llama3.2:1b)
check "and the Ollama one served ($code)" test "$code" = 200
code=$(req "$SK" /v1/embeddings '{"model":"flm://ollama/llama3.2:1b","input":"x"}')
check "no endpoints given: every endpoint but metrics ($code)" test "$code" = 200
F api-keys scope vllm-chat --cidr 127.0.0.2/32 >/dev/null
code=$(chat "$SK" flm://vllm/big)
checkx "--cidr 127.0.0.2/32: refused from 127.0.0.1 ($code)" \
    '[ $code = 403 ] && [ "$(why)" = "address_not_allowed: This API key may not be used from 127.0.0.1." ]'
code=$(chat "$SK" flm://vllm/big --interface 127.0.0.2)
check "served from 127.0.0.2 ($code)" test "$code" = 200
F api-keys scope vllm-chat >/dev/null
code=$(chat "$SK" flm://vllm/big)
checkx "api-keys scope with no option lifts the limits ($code)" \
    '[ $code = 200 ] && F api-keys list --json | jq -e ".[] | select(.label == \"vllm-chat\") | .scope == null" >/dev/null'

# ---- the key's own rate limit -----------------------------------------------------------------------
R=$(F api-keys create --label rpm2 --rpm 2 --json | jq -r .key)
codes="$(chat "$R" flm://vllm/big) $(chat "$R" flm://vllm/big) $(chat "$R" flm://vllm/big)"
checkx "--rpm 2: the third request in the minute is 429 ($codes)" \
    '[ "$codes" = "200 200 429" ]'
code=$(chat "$ALL" flm://vllm/big)
check "another key is not limited by it ($code)" test "$code" = 200

# ---- what keyd refuses ---------------------------------------------------------------------------------
check "an unknown endpoint family is refused" \
    fails_with "endpoints[0]: 'bogus' is none of chat, completions" \
    F api-keys scope vllm-chat --endpoints bogus
check "a CIDR that is not one is refused" \
    fails_with "cidr[0]: " F api-keys create --label c1 --cidr 300.1.1.1/8
check "an engine id that cannot be one is refused" \
    fails_with "engines[0]: expected an engine id" \
    F api-keys scope vllm-chat --engines 'Bad Id'
models=$(seq 1 33 | sed 's/^/--models m/' | tr '\n' ' ')
# shellcheck disable=SC2086
check "more than 32 models are refused" \
    fails_with "models: at most 32" F api-keys scope vllm-chat $models
check "--rpm 0 is a usage error" \
    fails_with "rpm" F api-keys scope vllm-chat --rpm 0
check "a scope for a key that does not exist is refused" \
    fails_with "no key with id or label 'nobody'" \
    F api-keys scope nobody --endpoints chat

# ---- the scope is sealed -----------------------------------------------------------------------------------
T=$(F api-keys create --label tamper --models flm://vllm/big --json | jq -r .key)
code=$(chat "$T" flm://vllm/big)
check "a scoped key works ($code)" test "$code" = 200
DB "UPDATE api_keys SET scope = NULL WHERE label = 'tamper'"
# A new keyd: no verdict cached from before the change.
suite_restart "$PORT" >/dev/null 2>&1
code=$(chat "$T" flm://ollama/llama3.2:1b)
checkx "its scope dropped with sqlite3: the key is refused, not widened ($code)" \
    '[ $code = 401 ] && F api-keys list --json | jq -e ".[] | select(.label == \"tamper\") | .state == \"refused\"" >/dev/null'
code=$(chat "$ALL" flm://vllm/big)
check "the other keys still work ($code)" test "$code" = 200
F audit tail -n 200 --json >"$TMP/audit.json"
checkx "the audit trail names each scope decision: denied (model, endpoint, address), allowed" \
    'jq -e "[.records[] | select(.status == 403 and .model == \"flm://ollama/llama3.2:1b\" and .scope == \"denied: model\")] | length >= 2" "$TMP/audit.json" >/dev/null &&
    jq -e "[.records[] | select(.status == 403 and .scope == \"denied: endpoint\")] | length >= 3" "$TMP/audit.json" >/dev/null &&
    jq -e "[.records[] | select(.status == 403 and .scope == \"denied: address\")] | length == 1" "$TMP/audit.json" >/dev/null &&
    jq -e "[.records[] | select(.status == 200 and .scope == \"allowed\")] | length >= 5" "$TMP/audit.json" >/dev/null &&
    jq -e "[.records[] | select(.key_id == \"$(echo "$ALL" | cut -d_ -f2)\" and .scope != null)] | length == 0" "$TMP/audit.json" >/dev/null'
checkx "flm audit verify: the chain holds with the scope in it" \
    'F audit verify >/dev/null'
check "flm-proxyd and flm-keyd are still running" all_running
