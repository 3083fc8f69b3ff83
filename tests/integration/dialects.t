#!/bin/sh
# Every client's dialect (issue 18): Ollama's own API, Anthropic's
# Messages and OpenAI's Responses served behind FLM's keys, in front of a mock Ollama (its API
# passed through as it is), a mock vLLM and an Ollama without /v1
# (translated).  The official ollama, @anthropic-ai/sdk and openai
# clients (dialects-client.mjs), then curl for what a library never sends:
# Ollama's admin routes in every spelling, keys missing or in the
# wrong place, bad bodies, an engine's broken stream; each answered in
# the dialect's own error shape.
. "$(dirname "$0")/lib.sh"

unset FLM_API_KEY
mock_init
openai_install

plan 118

mock --flavor ollama
OL=$MPORT
mock --flavor vllm --body-file "$TMP/vl-body.json"
VL=$MPORT
mock --flavor ollama --no-v1 --models old:1b --body-file "$TMP/old-body.json"
OLD=$MPORT
mock --flavor vllm --models broken
BAD=$MPORT
mock --flavor llamacpp --models gemma
LC=$MPORT
mock --flavor vllm --models fields --sse-fields
FLD=$MPORT
mock --flavor vllm --models par --tool-calls 20
PAR=$MPORT
mock --flavor vllm --models flood --tool-calls 129
FLOOD=$MPORT
check "suite starts" suite_start
F="$FLM -D $STATE"
$F config set engines.ollama.url "http://127.0.0.1:$OL" >/dev/null
$F config set engines.vllm.url "http://127.0.0.1:$VL" >/dev/null
$F config set engines.old.url "http://127.0.0.1:$OLD" >/dev/null
$F config set engines.old.kind ollama >/dev/null
$F config set engines.bad.url "http://127.0.0.1:$BAD" >/dev/null
$F config set engines.bad.kind vllm >/dev/null
$F config set engines.lc.url "http://127.0.0.1:$LC" >/dev/null
$F config set engines.lc.kind llamacpp >/dev/null
$F config set engines.fld.url "http://127.0.0.1:$FLD" >/dev/null
$F config set engines.fld.kind vllm >/dev/null
for e in par flood; do
	eval "p=\$$(echo $e | tr a-z A-Z)"
	$F config set engines.$e.url "http://127.0.0.1:$p" >/dev/null
	$F config set engines.$e.kind vllm >/dev/null
done
KEY=$($F api-keys create --label d --json | jq -r .key)
PORT=$($F proxy start --port 0 --json | jq .port)
U=http://127.0.0.1:$PORT
V=flm://vllm/meta-llama/Llama-3.2-1B-Instruct
listed() {
	get -H "Authorization: Bearer $KEY" "$U/api/tags" | jq -e \
	    '[.models[].name] | index("flm://old/old:1b") != null' >/dev/null
}
wait_until 5000 listed || diag "the proxy does not list every engine yet"

# ---- the official clients -------------------------------------------------------
OPENAI_SCRIPT=dialects-client.mjs OPENAI_POINTS=28 openai_run "$U" "$KEY"

stats() { get "http://127.0.0.1:$1/__mock/stats"; }
checkx "the Ollama engine got Ollama's API as it is, the vLLM one OpenAI's" \
    '[ "$(stats $OL | jq ".by_path[\"/api/chat\"]")" -ge 3 ] &&
    [ "$(stats $OL | jq ".by_path[\"/api/generate\"]")" -ge 1 ] &&
    [ "$(stats $OL | jq ".by_path[\"/api/embed\"]")" -ge 1 ] &&
    [ "$(stats $VL | jq ".by_path[\"/v1/chat/completions\"]")" -ge 8 ] &&
    [ "$(stats $VL | jq ".by_path | keys | map(select(startswith(\"/api\"))) | length")" = 0 ]'

# ---- Ollama's admin routes: served by no one, in any spelling -----------------
AUTH="Authorization: Bearer $KEY"
admin_ok=1
for p in /api/pull /api/push /api/create /api/copy /api/delete \
    /api/blobs/sha256:00 //api/pull /api/./create /api/x/../pull \
    /api/%70ull /API/pull /api/pull/ '/api/pull?x=1' /api/create%2F; do
	for m in POST GET DELETE HEAD; do
		code=$(curl -s -o "$TMP/admin.out" -w '%{http_code}' -m 5 \
		    -X "$m" -H "$AUTH" -d '{"model":"x"}' "$U$p")
		case $code in 400|404|405) ;; *)
			admin_ok=0; diag "$m $p: $code" ;; esac
	done
done
checkx "every spelling of /api/pull|push|create|copy|delete|blobs is refused" \
    '[ $admin_ok = 1 ]'
code=$(curl -s -o "$TMP/pull.json" -w '%{http_code}' -m 5 -H "$AUTH" \
    -d '{"model":"x"}' "$U/api/pull")
checkx "/api/pull: 404 in Ollama's error shape ($code)" \
    '[ $code = 404 ] && jq -e ".error | type == \"string\"" "$TMP/pull.json" >/dev/null'
checkx "no engine was asked for an admin route" \
    '! stats $OL | jq -e ".by_path | keys[] | select(test(\"pull|push|create|copy|delete|blobs\"))" >/dev/null'

# ---- keys -----------------------------------------------------------------------------
code=$(curl -s -o "$TMP/nokey.json" -w '%{http_code}' -m 5 \
    -d '{"model":"x","messages":[]}' "$U/api/chat")
checkx "/api/chat without a key: 401, {\"error\": \"...\"} ($code)" \
    '[ $code = 401 ] && jq -e ".error | test(\"API key\")" "$TMP/nokey.json" >/dev/null'
code=$(curl -s -o "$TMP/nokey.json" -w '%{http_code}' -m 5 "$U/api/tags")
checkx "/api/tags and /api/version want a key too ($code)" \
    '[ $code = 401 ] && [ "$(curl -s -o /dev/null -w "%{http_code}" "$U/api/version")" = 401 ]'
code=$(curl -s -o "$TMP/nokey.json" -w '%{http_code}' -m 5 \
    -d '{"model":"x"}' "$U/v1/messages")
checkx "/v1/messages without a key: 401 authentication_error naming x-api-key ($code)" \
    '[ $code = 401 ] && jq -e ".type == \"error\" and .error.type == \"authentication_error\" and (.error.message | test(\"x-api-key\"))" "$TMP/nokey.json" >/dev/null'
code=$(curl -s -o /dev/null -w '%{http_code}' -m 5 -H "x-api-key: $KEY" \
    "$U/v1/models")
check "x-api-key is accepted on every route (/v1/models: $code)" \
    test "$code" = 200
code=$(curl -s -o "$TMP/wrong.json" -w '%{http_code}' -m 5 \
    -H "x-api-key: ${KEY%?}x" -d '{"model":"x"}' "$U/v1/messages")
checkx "a wrong x-api-key: 401 ($code)" \
    '[ $code = 401 ] && jq -e ".error.type == \"authentication_error\"" "$TMP/wrong.json" >/dev/null'

# ---- bad bodies, each in its dialect's shape ---------------------------------------------
# bad DIALECT PATH BODY PATTERN: 400 with the dialect's error and PATTERN.
bad() {
	b_code=$(curl -s -o "$TMP/bad.json" -w '%{http_code}' -m 5 -H "$AUTH" \
	    --data-binary "$3" "$U$2")
	[ "$b_code" = 400 ] || { diag "$2 $3: $b_code $(cat "$TMP/bad.json")"; return 1; }
	case $1 in
	ollama)	jq -e --arg p "$4" '.error | type == "string" and test($p)' \
		    "$TMP/bad.json" >/dev/null ;;
	openai)	jq -e --arg p "$4" '.error.type == "invalid_request_error" and
		    (.error.message | test($p))' "$TMP/bad.json" >/dev/null ;;
	anthropic) jq -e --arg p "$4" '.type == "error" and
		    .error.type == "invalid_request_error" and
		    (.error.message | test($p))' "$TMP/bad.json" >/dev/null ;;
	esac || { diag "$2 $3: $(cat "$TMP/bad.json")"; return 1; }
}
check "/api/chat: not JSON" bad ollama /api/chat '{"model":' 'could not parse'
check "/api/chat: no model" bad ollama /api/chat '{"messages":[]}' 'model is required'
check "/api/chat: messages not a list" \
    bad ollama /api/chat '{"model":"m","messages":"hi"}' 'messages: expected'
check "/api/chat: a message without a role" \
    bad ollama /api/chat '{"model":"m","messages":[{"content":"x"}]}' 'messages\[0\]'
check "/api/chat: stream not a boolean" \
    bad ollama /api/chat '{"model":"m","stream":"yes","messages":[{"role":"user","content":"x"}]}' 'stream: expected a boolean'
check "/api/chat: options.temperature a string" \
    bad ollama /api/chat '{"model":"m","options":{"temperature":"hot"},"messages":[{"role":"user","content":"x"}]}' 'options.temperature'
check "/api/chat: a tool without a name" \
    bad ollama /api/chat '{"model":"m","tools":[{"type":"function"}],"messages":[{"role":"user","content":"x"}]}' 'tools\[0\]'
check "/api/chat to Ollama: a body only json-c forgives (a single quote)" \
    bad ollama /api/chat "{\"model\":\"flm://ollama/llama3.2:1b\",'stream':false,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}" 'could not parse'
check "/api/generate: no prompt" bad ollama /api/generate '{"model":"m"}' 'prompt'
check "/api/embed: input of numbers" bad ollama /api/embed '{"model":"m","input":[1,2]}' 'input'
check "/v1/messages: no max_tokens" \
    bad anthropic /v1/messages '{"model":"m","messages":[{"role":"user","content":"x"}]}' 'max_tokens: Field required'
check "/v1/messages: a system role in messages" \
    bad anthropic /v1/messages '{"model":"m","max_tokens":5,"messages":[{"role":"system","content":"x"}]}' "messages.0.role"
check "/v1/messages: a block of an unknown type" \
    bad anthropic /v1/messages '{"model":"m","max_tokens":5,"messages":[{"role":"user","content":[{"type":"video"}]}]}' "type 'video' is not served"
check "/v1/messages: a server tool" \
    bad anthropic /v1/messages '{"model":"m","max_tokens":5,"tools":[{"type":"web_search_20250305","name":"web_search"}],"messages":[{"role":"user","content":"x"}]}' 'only client tools'
check "/v1/messages: a tool_use without an id" \
    bad anthropic /v1/messages '{"model":"m","max_tokens":5,"messages":[{"role":"assistant","content":[{"type":"tool_use","name":"f","input":{}}]}]}' 'tool_use block'
check "/v1/responses: previous_response_id (FLM is stateless)" \
    bad openai /v1/responses '{"model":"m","input":"x","previous_response_id":"resp_1"}' 'keeps no responses'
check "/v1/responses: no input" bad openai /v1/responses '{"model":"m"}' "Missing required parameter: 'input'"
check "/v1/responses: a built-in tool" \
    bad openai /v1/responses '{"model":"m","input":"x","tools":[{"type":"web_search"}]}' 'only function tools'
check "/v1/responses: an item of an unknown type" \
    bad openai /v1/responses '{"model":"m","input":[{"type":"computer_call"}]}' "type 'computer_call'"
check "/v1/responses: temperature a string" \
    bad openai /v1/responses '{"model":"m","input":"x","temperature":"hot"}' "Invalid type for 'temperature'"
# A huge list: refused by its size, in the dialect's shape, before a byte
# reaches an engine.
awk 'BEGIN { printf "{\"model\":\"m\",\"max_tokens\":5,\"messages\":["; for (i = 0; i < 400000; i++) printf "%s{\"role\":\"user\",\"content\":\"xx\"}", i ? "," : ""; printf "]}" }' >"$TMP/huge.json"
code=$(curl -s -o "$TMP/huge.out" -w '%{http_code}' -m 10 -H "x-api-key: $KEY" \
    --data-binary @"$TMP/huge.json" "$U/v1/messages")
checkx "/v1/messages: a 12 MB body is refused with 413 request_too_large ($code)" \
    '[ $code = 413 ] && jq -e ".error.type == \"request_too_large\"" "$TMP/huge.out" >/dev/null'
code=$(curl -s -o "$TMP/nomodel.json" -w '%{http_code}' -m 5 -H "$AUTH" \
    -d '{"model":"flm://vllm/none","messages":[{"role":"user","content":"x"}]}' "$U/api/chat")
checkx "/api/chat: an unknown model is 404 in Ollama's shape ($code)" \
    '[ $code = 404 ] && jq -e ".error | test(\"flm://vllm/none\")" "$TMP/nomodel.json" >/dev/null'

# ---- translations that go through two steps, and engines that break -------------------------
out=$(curl -s -m 5 -H "x-api-key: $KEY" -d '{"model":"flm://old/old:1b",
    "max_tokens":20,"stream":true,"messages":[{"role":"user","content":"Hi old"}]}' \
    "$U/v1/messages")
checkx "Messages streamed from an Ollama without /v1 (Anthropic → OpenAI → Ollama)" \
    'echo "$out" | grep -q "^event: message_stop" &&
    [ "$(echo "$out" | sed -n "s/^data: //p" | jq -rs "[.[] | select(.type == \"content_block_delta\") | .delta.text] | join(\"\")")" = "Hello from mock ollama: you said Hi old" ]'
out=$(curl -s -m 5 -H "$AUTH" -d '{"model":"flm://old/old:1b",
    "messages":[{"role":"user","content":"Hi old"}]}' "$U/api/chat")
checkx "/api/chat to an Ollama without /v1 is passed through, streamed by default" \
    '[ "$(echo "$out" | jq -rs "[.[].message.content] | join(\"\")")" = "Hello from mock ollama: you said Hi old" ] &&
    [ "$(echo "$out" | tail -n 1 | jq .done)" = true ]'
# Healthy when probed, broken when asked.
curl -s -m 5 -X POST "http://127.0.0.1:$BAD/__mock/fail?mode=malformed" >/dev/null
out=$(curl -s -m 5 -H "x-api-key: $KEY" -d '{"model":"flm://bad/broken",
    "max_tokens":20,"stream":true,"messages":[{"role":"user","content":"x"}]}' \
    "$U/v1/messages")
checkx "a broken engine stream ends with Anthropic's error event" \
    'echo "$out" | grep -q "^event: error" &&
    echo "$out" | sed -n "s/^data: //p" | tail -n 1 | jq -e ".type == \"error\" and .error.type == \"api_error\"" >/dev/null'
out=$(curl -s -m 5 -H "$AUTH" -d '{"model":"flm://bad/broken",
    "messages":[{"role":"user","content":"x"}]}' "$U/api/chat")
checkx "… and for Ollama's clients, an {\"error\"} line" \
    'echo "$out" | tail -n 1 | jq -e ".error | test(\"Engine bad\")" >/dev/null'
code=$(curl -s -o "$TMP/b.json" -w '%{http_code}' -m 5 -H "x-api-key: $KEY" \
    -d '{"model":"flm://bad/broken","max_tokens":5,"messages":[{"role":"user","content":"x"}]}' \
    "$U/v1/messages")
checkx "a malformed whole answer: 502 api_error ($code)" \
    '[ $code = 502 ] && jq -e ".error.type == \"api_error\"" "$TMP/b.json" >/dev/null'
# An engine's own error chunk in the middle of a stream (vLLM's shape):
# its message reaches the client in the dialect's error.
curl -s -m 5 -X POST "http://127.0.0.1:$BAD/__mock/fail?mode=midstream" >/dev/null
out=$(curl -s -m 5 -H "x-api-key: $KEY" -d '{"model":"flm://bad/broken",
    "max_tokens":20,"stream":true,"messages":[{"role":"user","content":"x"}]}' \
    "$U/v1/messages")
checkx "an engine's error chunk mid-stream: Anthropic's error event with its message" \
    'echo "$out" | grep -q "^event: content_block_delta" &&
    echo "$out" | sed -n "s/^data: //p" | tail -n 1 | jq -e ".type == \"error\" and (.error.message | test(\"mock engine failure mid-stream\"))" >/dev/null &&
    ! echo "$out" | grep -q "^event: message_stop"'
out=$(curl -s -m 5 -H "$AUTH" -d '{"model":"flm://bad/broken",
    "messages":[{"role":"user","content":"x"}]}' "$U/api/chat")
checkx "… and Ollama's {\"error\"} line" \
    'echo "$out" | tail -n 1 | jq -e ".error | test(\"mock engine failure mid-stream\")" >/dev/null'
curl -s -m 5 -X POST "http://127.0.0.1:$BAD/__mock/fail?mode=none" >/dev/null

# An engine's stream with SSE's other fields (retry:, id:) is read as
# SSE readers read it: the fields are not data.
whole=$(curl -s -m 5 -H "x-api-key: $KEY" -d '{"model":"flm://fld/fields",
    "max_tokens":20,"messages":[{"role":"user","content":"Hi fields"}]}' \
    "$U/v1/messages" | jq -r '.content[0].text')
out=$(curl -s -m 5 -H "x-api-key: $KEY" -d '{"model":"flm://fld/fields",
    "max_tokens":20,"stream":true,"messages":[{"role":"user","content":"Hi fields"}]}' \
    "$U/v1/messages")
checkx "an engine stream with retry: and id: lines: Messages gets the whole text" \
    '[ -n "$whole" ] && [ "$whole" != null ] &&
    [ "$(echo "$out" | sed -n "s/^data: //p" | jq -rs "[.[] | select(.type == \"content_block_delta\") | .delta.text] | join(\"\")")" = "$whole" ] &&
    echo "$out" | grep -q "^event: message_stop"'
out=$(curl -s -m 5 -H "$AUTH" -d '{"model":"flm://fld/fields",
    "messages":[{"role":"user","content":"Hi fields"}]}' "$U/api/chat")
checkx "… and /api/chat's NDJSON stream" \
    '[ "$(echo "$out" | jq -rs "[.[].message.content] | join(\"\")")" = "$whole" ] &&
    [ "$(echo "$out" | tail -n 1 | jq .done)" = true ]'

# Models calling tools in parallel: every call is translated (there
# were 16 at most), and an answer with more than FLM takes is refused
# saying so, not cut short.
mtool() {
	curl -s -o "$TMP/tool.json" -w '%{http_code}' -m 5 -H "x-api-key: $KEY" \
	    -d "{\"model\":\"flm://$1\",\"max_tokens\":20,\"tools\":[{\"name\":\"get_weather\",
	    \"input_schema\":{\"type\":\"object\"}}],\"messages\":[{\"role\":\"user\",\"content\":\"weather?\"}]}" \
	    "$U/v1/messages"
}
code=$(mtool par/par)
checkx "20 parallel tool calls: 20 tool_use blocks in Messages ($code)" \
    '[ $code = 200 ] && [ "$(jq "[.content[] | select(.type == \"tool_use\")] | length" "$TMP/tool.json")" = 20 ] &&
    [ "$(jq -r ".content[19].id" "$TMP/tool.json")" = call_mock_19 ]'
n=$(curl -s -m 5 -H "$AUTH" -d '{"model":"flm://par/par","stream":false,
    "tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object"}}}],
    "messages":[{"role":"user","content":"weather?"}]}' "$U/api/chat" | jq '.message.tool_calls | length')
check "… 20 in Ollama's tool_calls ($n)" test "$n" = 20
n=$(curl -s -m 5 -H "$AUTH" -d '{"model":"flm://par/par","input":"weather?",
    "tools":[{"type":"function","name":"get_weather","parameters":{"type":"object"}}]}' \
    "$U/v1/responses" | jq '[.output[] | select(.type == "function_call")] | length')
check "… 20 function_call items in Responses ($n)" test "$n" = 20
code=$(mtool flood/flood)
checkx "129 tool calls: 502 saying FLM translates 128 at most ($code)" \
    '[ $code = 502 ] && jq -e ".error.message | test(\"more than 128 tool calls\")" "$TMP/tool.json" >/dev/null'

# ---- long strings: copied as the client wrote them, byte for byte ------------------------
# Over 512 bytes with every kind of escape and raw UTF-8: what the
# engine got decodes to what the client sent, copied, joined with
# another text, and inside a tool call's input (JSON in a string).
awk 'BEGIN { for (i = 0; i < 60; i++) printf "line %d: \\\"q\\\" back\\\\slash tab\\t caf\\u00e9 na\303\257ve \\ud83d\\ude00 /\\/ ", i }' >"$TMP/long.txt"
L=$(cat "$TMP/long.txt")
printf '{"model":"%s","max_tokens":5,"system":"%s","messages":[{"role":"user","content":[{"type":"text","text":"%s"},{"type":"text","text":"short"}]},{"role":"assistant","content":[{"type":"tool_use","id":"t1","name":"f","input":{"code":"%s"}}]},{"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","content":"%s"}]}]}' \
    "$V" "$L" "$L" "$L" "$L" >"$TMP/longreq.json"
code=$(curl -s -o /dev/null -w '%{http_code}' -m 5 -H "x-api-key: $KEY" \
    --data-binary @"$TMP/longreq.json" "$U/v1/messages")
sleep 0.3
want=$(jq -r '.system' "$TMP/longreq.json")
checkx "long strings reach the engine byte for byte: system, joined texts, tool result ($code)" \
    '[ $code = 200 ] &&
    [ "$(jq -r ".messages[0].content" "$TMP/vl-body.json")" = "$want" ] &&
    [ "$(jq -r ".messages[1].content" "$TMP/vl-body.json")" = "$want
short" ] &&
    [ "$(jq -r ".messages[3].content" "$TMP/vl-body.json")" = "$want" ]'
checkx "… and inside a tool call's arguments, decoded twice" \
    '[ "$(jq -r ".messages[2].tool_calls[0].function.arguments" "$TMP/vl-body.json" | jq -r .code)" = "$want" ]'

# A long string that ends in an escaped backslash ends at the quote
# after it; one with a raw tab or a \q inside is refused as a chat
# request's would be, and nothing reaches the engine.
X=$(printf '%0600d' 0)
before=$(stats $VL | jq '.by_path["/v1/chat/completions"]')
code=$(curl -s -o /dev/null -w '%{http_code}' -m 5 -H "x-api-key: $KEY" \
    -d "{\"model\":\"$V\",\"max_tokens\":5,\"system\":\"$X\\\\\\\\\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}" \
    "$U/v1/messages")
sleep 0.3
checkx "a long string ending in an escaped backslash: forwarded, ending in two ($code)" \
    '[ $code = 200 ] && [ "$(jq -r ".messages[0].content" "$TMP/vl-body.json")" = "$X\\\\" ]'
codes=
for bad in "$X$(printf '\t')y" "$X\\qy"; do
	codes="$codes$(curl -s -o "$TMP/bad.json" -w '%{http_code} ' -m 5 -H "x-api-key: $KEY" \
	    -d "{\"model\":\"$V\",\"max_tokens\":5,\"system\":\"$bad\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}" \
	    "$U/v1/messages")"
done
checkx "a long string with a raw tab, or \\q: 400 in Anthropic's shape, nothing forwarded ($codes)" \
    '[ "$codes" = "400 400 " ] && jq -e ".error.type == \"invalid_request_error\"" "$TMP/bad.json" >/dev/null &&
    [ "$(stats $VL | jq ".by_path[\"/v1/chat/completions\"]")" = $((before + 1)) ]'

# ---- Ollama's fields for an engine that speaks OpenAI's: translated ----------------------
# sent ENGINE OUT HEADER PATH BODY: a request to the proxy after the body
# file of mock ENGINE (vl, old) is removed; the status, the answer in
# TMP/OUT.json.  engine_got ENGINE FILTER: jq's FILTER of what ENGINE got.
sent() {
	rm -f "$TMP/$1-body.json"
	curl -s -o "$TMP/$2.json" -w '%{http_code}' -m 5 -H "$3" -d "$5" "$U$4"
}
engine_got() {
	wait_until 2000 test -s "$TMP/$1-body.json" &&
	    jq -c "$2" "$TMP/$1-body.json"
}
# ol PATH BODY: an Ollama request, not streamed, to the vLLM model.
ol() { sent vl ol "$AUTH" "$1" "{\"model\":\"$V\",\"stream\":false,$2}"; }
got() { engine_got vl "$1"; }
MSG='"messages":[{"role":"user","content":"x"}]'
code=$(ol /api/chat "\"options\":{\"temperature\":0.5,\"top_p\":0.9,\"top_k\":40,\"seed\":7,\"num_predict\":12,\"presence_penalty\":1,\"frequency_penalty\":-0.5,\"stop\":[\"END\"],\"mirostat\":2},\"format\":\"json\",$MSG")
G=$(got '[.temperature, .top_p, .top_k, .seed, .max_tokens, .presence_penalty, .frequency_penalty, .stop, .response_format, .mirostat, .stream]')
checkx "/api/chat options and format json: OpenAI's names, Ollama's own (mirostat) left out, no stream ($code, $G)" \
    '[ $code = 200 ] && [ "$G" = "[0.5,0.9,40,7,12,1,-0.5,[\"END\"],{\"type\":\"json_object\"},null,null]" ] &&
    jq -e ".message.role == \"assistant\" and .done == true" "$TMP/ol.json" >/dev/null'
code=$(ol /api/chat "\"options\":{\"num_predict\":-1,\"stop\":\"END\"},\"format\":{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"integer\"}}},$MSG")
G=$(got '[.max_tokens, .stop, .response_format.type, .response_format.json_schema.name, .response_format.json_schema.schema.properties.a.type]')
checkx "num_predict -1 is no limit; a stop string; a format schema as json_schema ($code, $G)" \
    '[ $code = 200 ] && [ "$G" = "[null,\"END\",\"json_schema\",\"response\",\"integer\"]" ]'
code=$(ol /api/chat '"messages":[{"role":"user","content":"what is it?","images":["aGVsbG8=","d29ybGQ="]}]')
G=$(got '.messages[0].content')
checkx "images: an OpenAI content list, the text then each image as a data: URL ($code)" \
    '[ $code = 200 ] && [ "$G" = "[{\"type\":\"text\",\"text\":\"what is it?\"},{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/png;base64,aGVsbG8=\"}},{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/png;base64,d29ybGQ=\"}}]" ]' ||
    diag "$G"
code=$(ol /api/chat '"tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object"}}}],"messages":[{"role":"user","content":"weather?"},{"role":"assistant","content":"","tool_calls":[{"function":{"name":"get_weather","arguments":{"city":"Paris"}}},{"function":{"name":"get_weather","arguments":"{\"city\":\"Rome\"}"}},{"function":{"name":"get_weather"}}]},{"role":"tool","content":"sunny"},{"role":"tool","content":"rain"},{"role":"tool","content":"fog"}]')
G=$(got '[.tools[0].function.name, [.messages[1].tool_calls[] | [.id, .type, .function.name, .function.arguments]], [.messages[2,3,4].tool_call_id]]')
checkx "tool calls in the history: ids made, arguments as JSON text, each tool answer names its call ($code)" \
    '[ $code = 200 ] && [ "$G" = "[\"get_weather\",[[\"call_1_0\",\"function\",\"get_weather\",\"{\\\"city\\\":\\\"Paris\\\"}\"],[\"call_1_1\",\"function\",\"get_weather\",\"{\\\"city\\\":\\\"Rome\\\"}\"],[\"call_1_2\",\"function\",\"get_weather\",\"{}\"]],[\"call_1_0\",\"call_1_1\",\"call_1_2\"]]" ]' ||
    diag "$G"
code=$(ol /api/generate '"system":"be brief","prompt":"hello","images":["aGVsbG8="]')
G=$(got '[.messages[0], .messages[1].content[0].text, .messages[1].content[1].image_url.url]')
checkx "/api/generate: a system message, then the prompt with its image ($code)" \
    '[ $code = 200 ] && [ "$G" = "[{\"role\":\"system\",\"content\":\"be brief\"},\"hello\",\"data:image/png;base64,aGVsbG8=\"]" ] &&
    jq -e ".response | length > 0" "$TMP/ol.json" >/dev/null' || diag "$G $(cat "$TMP/ol.json")"
before=$(stats $VL | jq '.by_path["/v1/completions"] // 0')
code=$(ol /api/generate '"prompt":"def f(","suffix":"return 1","raw":true')
G=$(got '[.prompt, .suffix, .messages]')
checkx "/api/generate raw: a completion of the prompt and its suffix, no chat ($code)" \
    '[ $code = 200 ] && [ "$G" = "[\"def f(\",\"return 1\",null]" ] &&
    [ "$(stats $VL | jq ".by_path[\"/v1/completions\"]")" = $((before + 1)) ]' || diag "$G $(cat "$TMP/ol.json")"
n0=$(stats $VL | jq '.by_path["/v1/chat/completions"]')
check "options not an object" bad ollama /api/chat "{\"model\":\"$V\",\"options\":\"hot\",$MSG}" 'options: expected an object, got a string'
check "options.seed a fraction" bad ollama /api/chat "{\"model\":\"$V\",\"options\":{\"seed\":1.5},$MSG}" 'options.seed: expected an integer'
check "options.stop a number" bad ollama /api/chat "{\"model\":\"$V\",\"options\":{\"stop\":5},$MSG}" 'options.stop: expected a list of strings'
check "format a number" bad ollama /api/chat "{\"model\":\"$V\",\"format\":5,$MSG}" 'format: expected "json" or a JSON schema'
check "images not a list" bad ollama /api/chat "{\"model\":\"$V\",\"messages\":[{\"role\":\"user\",\"content\":\"x\",\"images\":\"aGVsbG8=\"}]}" 'images: expected a list of base64 strings'
check "an image not a string" bad ollama /api/chat "{\"model\":\"$V\",\"messages\":[{\"role\":\"user\",\"content\":\"x\",\"images\":[5]}]}" 'images\[0\]: expected a base64 string'
check "content a number" bad ollama /api/chat "{\"model\":\"$V\",\"messages\":[{\"role\":\"user\",\"content\":5}]}" 'messages\[0\].content: expected a string'
check "tool_calls not a list" bad ollama /api/chat "{\"model\":\"$V\",\"messages\":[{\"role\":\"assistant\",\"content\":\"\",\"tool_calls\":{}}]}" 'messages\[0\].tool_calls: expected a list'
check "a tool call without a name" bad ollama /api/chat "{\"model\":\"$V\",\"messages\":[{\"role\":\"assistant\",\"content\":\"\",\"tool_calls\":[{\"function\":{}}]}]}" 'messages\[0\].tool_calls\[0\]: expected a function with a name'
check "tools not a list" bad ollama /api/chat "{\"model\":\"$V\",\"tools\":{},$MSG}" 'tools: expected a list'
check "/api/generate: system a number" bad ollama /api/generate "{\"model\":\"$V\",\"prompt\":\"x\",\"system\":5}" 'system: expected a string'
checkx "none of those bad bodies reached the engine" \
    '[ "$(stats $VL | jq ".by_path[\"/v1/chat/completions\"]")" = "$n0" ]'

# ---- OpenAI's requests for an Ollama without /v1: its native API ---------------------
# oa PATH BODY: an OpenAI request to the old Ollama.
oa() { sent old oa "$AUTH" "$1" "{\"model\":\"flm://old/old:1b\",$2}"; }
oldgot() { engine_got old "$1"; }
code=$(oa /v1/chat/completions '"response_format":{"type":"json_object"},"messages":[{"role":"system","content":null},{"role":"user","content":[{"type":"text","text":"one "},{"type":"image_url","image_url":{"url":"data:image/png;base64,aGVsbG8="}},{"type":"text","text":"two"}]}]')
G=$(oldgot '[.messages, .format, .stream]')
checkx "chat: content parts joined as Ollama's one string (the image left out), null content empty, json_object as format json ($code)" \
    '[ $code = 200 ] && [ "$G" = "[[{\"role\":\"system\",\"content\":\"\"},{\"role\":\"user\",\"content\":\"one two\"}],\"json\",false]" ] &&
    jq -e ".object == \"chat.completion\" and (.choices[0].message.content | length > 0)" "$TMP/oa.json" >/dev/null' ||
    diag "$G $(cat "$TMP/oa.json")"
code=$(oa /v1/completions '"prompt":["def f("],"suffix":"return 1"')
G=$(oldgot '[.prompt, .suffix]')
checkx "completion: a one-string list as the prompt, the suffix kept, at /api/generate ($code)" \
    '[ $code = 200 ] && [ "$G" = "[\"def f(\",\"return 1\"]" ] &&
    jq -e ".object == \"text_completion\"" "$TMP/oa.json" >/dev/null' || diag "$G $(cat "$TMP/oa.json")"
n0=$(stats $OLD | jq '.requests')
check "completion: two prompts, which Ollama cannot take" \
    bad openai /v1/completions '{"model":"flm://old/old:1b","prompt":["a","b"]}' 'this engine takes one string prompt'
check "embeddings: token ids, which Ollama cannot take" \
    bad openai /v1/embeddings '{"model":"flm://old/old:1b","input":[[1,2,3]]}' 'not token ids'
checkx "neither reached the engine" '[ "$(stats $OLD | jq .requests)" = "$n0" ]'
post "http://127.0.0.1:$OLD/__mock/fail?mode=500" '' >/dev/null
code=$(oa /v1/chat/completions '"messages":[{"role":"user","content":"x"}]')
post "http://127.0.0.1:$OLD/__mock/fail?mode=none" '' >/dev/null
checkx "the engine's own error, in OpenAI's shape: its words, server_error ($code)" \
    '[ $code = 500 ] && jq -e ".error.type == \"server_error\" and (.error.message | length > 0) and
    (.error.message | test(\"The engine answered\") | not)" "$TMP/oa.json" >/dev/null' || diag "$(cat "$TMP/oa.json")"

# ---- Anthropic's Messages for an OpenAI engine: images, tool choice, block lists -------
# am BODY: a Messages request, not streamed, to the vLLM model.
am() { sent vl am "x-api-key: $KEY" /v1/messages "{\"model\":\"$V\",\"max_tokens\":5,$1}"; }
TOOLS='"tools":[{"name":"get_weather","input_schema":{"type":"object"}}]'
code=$(am "\"system\":[{\"type\":\"text\",\"text\":\"be brief\"},{\"type\":\"text\",\"text\":\"be kind\"}],\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"what is it?\"},{\"type\":\"image\",\"source\":{\"type\":\"base64\",\"media_type\":\"image/jpeg\",\"data\":\"aGVsbG8=\"}},{\"type\":\"image\",\"source\":{\"type\":\"url\",\"url\":\"https://example.com/a.png\"}}]}]")
G=$(got '[.messages[0], .messages[1].content]')
checkx "/v1/messages: system blocks joined; a text and two images (base64 as a data: URL of its type, a url as it is) ($code)" \
    '[ $code = 200 ] && [ "$G" = "[{\"role\":\"system\",\"content\":\"be brief\\nbe kind\"},[{\"type\":\"text\",\"text\":\"what is it?\"},{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/jpeg;base64,aGVsbG8=\"}},{\"type\":\"image_url\",\"image_url\":{\"url\":\"https://example.com/a.png\"}}]]" ] &&
    jq -e ".type == \"message\"" "$TMP/am.json" >/dev/null' || diag "$G $(cat "$TMP/am.json")"
tc=
for c in '{"type":"auto"}' '{"type":"any","disable_parallel_tool_use":true}' '{"type":"none"}' '{"type":"tool","name":"get_weather"}'; do
	code=$(am "$TOOLS,\"tool_choice\":$c,\"messages\":[{\"role\":\"user\",\"content\":\"weather?\"}]")
	tc="$tc$code $(got '[.tool_choice, .parallel_tool_calls]') "
done
checkx "tool_choice auto, any (no parallel calls), none and one tool: OpenAI's ($tc)" \
    '[ "$tc" = "200 [\"auto\",null] 200 [\"required\",false] 200 [\"none\",null] 200 [{\"type\":\"function\",\"function\":{\"name\":\"get_weather\"}},null] " ]'
code=$(am "$TOOLS,\"messages\":[{\"role\":\"user\",\"content\":\"weather?\"},{\"role\":\"assistant\",\"content\":[{\"type\":\"tool_use\",\"id\":\"t1\",\"name\":\"get_weather\",\"input\":{}}]},{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":\"t1\",\"content\":[{\"type\":\"text\",\"text\":\"sunny\"},{\"type\":\"text\",\"text\":\"warm\"}]}]}]")
G=$(got '[.messages[1].content, .messages[2]]')
checkx "a tool_result's text blocks joined into the tool message; a call without text has null content ($code)" \
    '[ $code = 200 ] && [ "$G" = "[null,{\"role\":\"tool\",\"tool_call_id\":\"t1\",\"content\":\"sunny\\nwarm\"}]" ]' ||
    diag "$G"
n0=$(stats $VL | jq '.by_path["/v1/chat/completions"]')
UM='"messages":[{"role":"user","content":"x"}]'
check "/v1/messages: tool_choice of an unknown type" \
    bad anthropic /v1/messages "{\"model\":\"$V\",\"max_tokens\":5,$TOOLS,\"tool_choice\":{\"type\":\"maybe\"},$UM}" 'tool_choice: expected auto, any, none, or tool with a name'
check "/v1/messages: an image without a source" \
    bad anthropic /v1/messages "{\"model\":\"$V\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image\",\"source\":{\"type\":\"file\"}}]}]}" 'messages.0.content.0.source: expected a base64 or url image source'
check "/v1/messages: system a number" \
    bad anthropic /v1/messages "{\"model\":\"$V\",\"max_tokens\":5,\"system\":5,$UM}" 'system: Input should be a valid string or a list of text blocks'
check "/v1/messages: a system block that is no text" \
    bad anthropic /v1/messages "{\"model\":\"$V\",\"max_tokens\":5,\"system\":[{\"type\":\"image\"}],$UM}" 'system.0: expected a text block'
check "/v1/messages: a tool_result without its tool_use_id" \
    bad anthropic /v1/messages "{\"model\":\"$V\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\",\"content\":\"x\"}]}]}" 'tool_use_id: Field required'
checkx "none of those reached the engine" \
    '[ "$(stats $VL | jq ".by_path[\"/v1/chat/completions\"]")" = "$n0" ]'

# ---- count_tokens, by the engine's own tokenizer ----------------------------------------
count() {
	curl -s -o "$TMP/count.json" -w '%{http_code}' -m 5 -H "x-api-key: $KEY" \
	    -d "{\"model\":\"$1\",\"system\":\"be brief\",\"messages\":[{\"role\":\"user\",\"content\":\"one two three\"}]}" \
	    "$U/v1/messages/count_tokens"
}
code=$(count flm://lc/gemma)
checkx "count_tokens on llama.cpp: its /tokenize of the text ($code)" \
    '[ $code = 200 ] && [ "$(jq .input_tokens "$TMP/count.json")" = 5 ] &&
    [ "$(stats $LC | jq ".by_path[\"/tokenize\"]")" = 1 ]'
code=$(count flm://ollama/llama3.2:1b)
checkx "count_tokens on Ollama, which cannot count: 400 saying so ($code)" \
    '[ $code = 400 ] && jq -e ".error.type == \"invalid_request_error\" and (.error.message | test(\"cannot count tokens\"))" "$TMP/count.json" >/dev/null'

# ---- what the proxy answers itself, and the audit trail ---------------------------------------
checkx "/api/tags lists every model as flm://ENGINE/MODEL, with the probe's details" \
    'get -H "$AUTH" "$U/api/tags" | jq -e "(.models | length) == 9 and
    (.models[] | select(.name == \"flm://ollama/llama3.2:1b\") | .details.family == \"llama\")" >/dev/null'
checkx "/api/version says FLM's version" \
    '[ "$(get -H "$AUTH" "$U/api/version" | jq -r .version)" = "$($F version --json | jq -r .version)" ]'
checkx "/api/show of a vLLM model says what the probe learnt; of an Ollama one, Ollama's own" \
    'get -H "$AUTH" -d "{\"model\":\"$V\"}" "$U/api/show" | jq -e ".details and .model_info" >/dev/null &&
    get -H "$AUTH" -d "{\"name\":\"flm://ollama/llama3.2:1b\"}" "$U/api/show" | jq -e ".modelfile | test(\"FROM llama3.2:1b\")" >/dev/null'
recs=$($F audit tail -n 200 --json)
checkx "the audit trail names each dialect's endpoint with its token counts" \
    'echo "$recs" | jq -e "[.records[] | select(.endpoint == \"/v1/messages\" and .status == 200 and .completion_tokens > 0)] | length > 0" >/dev/null &&
    echo "$recs" | jq -e "[.records[] | select(.endpoint == \"/api/chat\" and .model == \"flm://ollama/llama3.2:1b\" and .completion_tokens > 0)] | length > 0" >/dev/null &&
    echo "$recs" | jq -e "[.records[] | select(.endpoint == \"/api/generate\")] | length > 0" >/dev/null'
checkx "no key was written anywhere in the state directory" \
    '! grep -rqF "${KEY#flm_*_}" "$STATE"'
check "flm-proxyd and flm-keyd are still running" all_running
