#!/bin/sh
# The mock engine answers in each engine's documented shapes (Ollama's
# generate, embeddings, show and ps too, and tool calls), and the proxy
# lists its models under flm:// names.
. "$(dirname "$0")/lib.sh"

mock_init

plan 38


mock --flavor ollama; O=http://127.0.0.1:$MPORT
mock --flavor lmstudio; L=http://127.0.0.1:$MPORT
mock --flavor vllm; V=http://127.0.0.1:$MPORT
mock --flavor llamacpp; C=http://127.0.0.1:$MPORT
CHAT='{"model":"llama3.2:1b","messages":[{"role":"user","content":"hi there"}]}'

check "ollama /api/version" json_has "$(get $O/api/version)" '.version | type == "string"'
check "ollama /api/tags lists models with details" \
    json_has "$(get $O/api/tags)" '.models[0].name and .models[0].details.quantization_level'
out=$(post $O/api/chat "$CHAT")
check "ollama /api/chat streams NDJSON ending in done" \
    sh -c "echo \"\$1\" | tail -n 1 | jq -e '.done == true and .eval_count > 0' >/dev/null" sh "$out"
check "ollama /api/chat with stream false is one object" \
    json_has "$(post $O/api/chat '{"model":"llama3.2:1b","stream":false,"messages":[{"role":"user","content":"x"}]}')" \
    '.message.role == "assistant" and .done == true'
check "ollama /api/embed" \
    json_has "$(post $O/api/embed '{"model":"llama3.2:1b","input":"abc"}')" '.embeddings[0] | length > 0'
check "ollama /v1/chat/completions" \
    json_has "$(post $O/v1/chat/completions "$CHAT")" \
    '.object == "chat.completion" and .choices[0].message.content and .usage.total_tokens > 0'
LM=$(get $L/v1/models | jq -r '.data[0].id')
check "lmstudio /v1/models" [ -n "$LM" ]
out=$(post $L/v1/chat/completions "{\"model\":\"$LM\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}")
check "lmstudio SSE stream ends with [DONE]" \
    sh -c "echo \"\$1\" | grep -q '^data: \[DONE\]'" sh "$out"
check "lmstudio SSE chunks are chat.completion.chunk" \
    sh -c "echo \"\$1\" | grep '^data: {' | head -1 | sed 's/^data: //' | jq -e '.object == \"chat.completion.chunk\"' >/dev/null" sh "$out"
VM=$(get $V/v1/models | jq -r '.data[0].id')
check "vllm /health" [ "$(http_code $V/health)" = 200 ]
check "vllm /version" json_has "$(get $V/version)" '.version'
check "vllm /v1/completions" \
    json_has "$(post $V/v1/completions "{\"model\":\"$VM\",\"prompt\":\"x\"}")" '.object == "text_completion"'
check "vllm /v1/embeddings of two inputs" \
    json_has "$(post $V/v1/embeddings "{\"model\":\"$VM\",\"input\":[\"a\",\"b\"]}")" '.data | length == 2'
check "llamacpp /health" json_has "$(get $C/health)" '.status == "ok"'
check "llamacpp /props" json_has "$(get $C/props)" '.default_generation_settings.n_ctx > 0'
check "unknown model: 404 with an error" \
    [ "$(http_code $L/v1/chat/completions -H 'Content-Type: application/json' -d '{"model":"nope","messages":[]}')" = 404 ]
check "bad JSON: 400" \
    [ "$(http_code $L/v1/chat/completions -H 'Content-Type: application/json' -d '{bad')" = 400 ]

# Ollama's other native routes.
GEN='{"model":"llama3.2:1b","prompt":"why is the sky blue"}'
out=$(post $O/api/generate "$GEN")
checkx "ollama /api/generate streams response pieces, then done with context" \
    'printf "%s\n" "$out" | jq -se ".[0].response and .[0].done == false and
    (.[-1] | .done == true and .done_reason == \"stop\" and .context == [1,2,3]
    and .eval_count > 0)" >/dev/null'
one=$(post $O/api/generate '{"model":"llama3.2:1b","prompt":"why is the sky blue","stream":false}')
checkx "ollama /api/generate with stream false: the same text, in one object" \
    '[ "$(printf "%s\n" "$out" | jq -rsj "map(.response) | join(\"\")")" = \
    "$(printf "%s" "$one" | jq -rj .response)" ] &&
    json_has "$one" ".done == true and (.response | startswith(\"Hello from mock ollama: you said why\"))"'
checkx "ollama /api/embeddings: the vector /api/embed gives" \
    '[ "$(post $O/api/embeddings "{\"model\":\"llama3.2:1b\",\"prompt\":\"abc\"}" | jq -c .embedding)" = \
    "$(post $O/api/embed "{\"model\":\"llama3.2:1b\",\"input\":\"abc\"}" | jq -c ".embeddings[0]")" ]'
check "ollama /api/embeddings without a prompt: 400" \
    [ "$(http_code $O/api/embeddings -d '{"model":"llama3.2:1b"}')" = 400 ]
check "ollama /api/show, by the older name too" \
    json_has "$(post $O/api/show '{"name":"llama3.2:1b"}')" \
    '.details.family == "llama" and .model_info["general.architecture"] == "llama" and (.capabilities | index("tools")) and (.modelfile | contains("FROM llama3.2:1b"))'
checkx "ollama /api/show of an unknown model: 404 model 'x' not found" \
    '[ "$(http_code $O/api/show -d "{\"model\":\"nope\"}")" = 404 ] &&
    json_has "$(post $O/api/show "{\"model\":\"nope\"}")" ".error == \"model '"'"'nope'"'"' not found\""'
check "ollama /api/ps: the first model, loaded" \
    json_has "$(get $O/api/ps)" '.models[0].name == "llama3.2:1b" and .models[0].details.parameter_size == "1B" and .models[0].size_vram > 0'
check "ollama /api/pull is unknown: 404" \
    [ "$(http_code $O/api/pull -d '{"model":"llama3.2:1b"}')" = 404 ]
check "the new routes and the unknown one are counted by path" \
    json_has "$(get $O/__mock/stats)" '.by_path | .["/api/generate"] == 2 and .["/api/embeddings"] == 2 and .["/api/show"] == 3 and .["/api/ps"] == 1 and .["/api/pull"] == 1'

# Tool calls: a call to the first tool while the user spoke last, text
# that echoes the tool's result after it.
TOOLS='"tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object"}}}]'
ASK='{"role":"user","content":"weather in Paris"}'
out=$(post $V/v1/chat/completions "{\"model\":\"$VM\",$TOOLS,\"messages\":[$ASK]}")
check "vllm: tools and the user last: a tool call" \
    json_has "$out" '.choices[0] | .finish_reason == "tool_calls" and .message.content == null and .message.tool_calls[0].id == "call_mock_0" and .message.tool_calls[0].function.name == "get_weather" and (.message.tool_calls[0].function.arguments | fromjson | .input == "weather in Paris")'
out=$(post $L/v1/chat/completions "{\"model\":\"$LM\",\"stream\":true,\"stream_options\":{\"include_usage\":true},$TOOLS,\"messages\":[$ASK]}")
checkx "lmstudio: a streamed tool call, its arguments in two deltas" \
    'printf "%s\n" "$out" | sed -n "s/^data: {/{/p" | jq -se "
    (.[0].choices[0].delta | .role == \"assistant\" and .tool_calls[0].function.name == \"get_weather\") and
    ([.[].choices[0].delta.tool_calls[0].function.arguments // empty] | length == 3 and (join(\"\") | fromjson | .input == \"weather in Paris\")) and
    ([.[].choices[0].finish_reason // empty] == [\"tool_calls\"]) and .[-1].usage.completion_tokens == 5" >/dev/null &&
    printf "%s\n" "$out" | grep -q "^data: \[DONE\]"'
RESULT='{"role":"tool","tool_call_id":"call_mock_0","content":"sunny, 21 C"}'
check "vllm: after the tool's result, text echoing it" \
    json_has "$(post $V/v1/chat/completions "{\"model\":\"$VM\",$TOOLS,\"messages\":[$ASK,{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"call_mock_0\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":\"{}\"}}]},$RESULT]}")" \
    '.choices[0].finish_reason == "stop" and (.choices[0].message.content | startswith("Hello from mock vllm: you said sunny, 21 C"))'
check "ollama /api/chat: a tool call, its arguments an object" \
    json_has "$(post $O/api/chat "{\"model\":\"llama3.2:1b\",\"stream\":false,$TOOLS,\"messages\":[$ASK]}")" \
    '.done_reason == "stop" and .message.content == "" and .message.tool_calls[0].function.name == "get_weather" and .message.tool_calls[0].function.arguments.input == "weather in Paris"'
out=$(post $O/api/chat "{\"model\":\"llama3.2:1b\",$TOOLS,\"messages\":[$ASK]}")
checkx "ollama /api/chat: a streamed tool call in one line, then done" \
    'printf "%s\n" "$out" | jq -se "length == 2 and .[0].done == false and
    .[0].message.tool_calls[0].function.arguments.input == \"weather in Paris\" and
    .[1].done == true" >/dev/null'
check "ollama /api/chat: after the tool's result, text echoing it" \
    json_has "$(post $O/api/chat "{\"model\":\"llama3.2:1b\",\"stream\":false,$TOOLS,\"messages\":[$ASK,{\"role\":\"tool\",\"content\":\"cloudy\"}]}")" \
    '.message.tool_calls == null and (.message.content | startswith("Hello from mock ollama: you said cloudy"))'
checkx "malformed tools: 400, in each route's shape" \
    '[ "$(http_code $V/v1/chat/completions -d "{\"model\":\"$VM\",\"tools\":[{\"type\":\"function\"}],\"messages\":[$ASK]}")" = 400 ] &&
    json_has "$(post $O/api/chat "{\"model\":\"llama3.2:1b\",\"tools\":{},\"messages\":[$ASK]}")" ".error | type == \"string\""'
mock --flavor llamacpp --fail loading; LOAD=http://127.0.0.1:$MPORT
check "llamacpp loading: /health is 503" [ "$(http_code $LOAD/health)" = 503 ]

# Through FLM: the models of two engines under flm:// names.
check "suite starts" suite_start
F="$FLM -D $STATE"
$F config set engines.ollama.url "$O" >/dev/null
$F config set engines.vllm.url "$V" >/dev/null
PORT=$(free_port)
$F proxy start --port "$PORT" >/dev/null
KEY=$($F api-keys create --label mock --json | jq -r .key)
out=$(curl -s -H "Authorization: Bearer $KEY" http://127.0.0.1:$PORT/v1/models)
check "the proxy lists ollama's models as flm://ollama/..." \
    json_has "$out" '[.data[].id] | index("flm://ollama/llama3.2:1b") != null'
check "and vllm's as flm://vllm/..." \
    json_has "$out" "[.data[].id] | index(\"flm://vllm/$VM\") != null"
check "in OpenAI's list shape" \
    json_has "$out" '.object == "list" and (.data[0] | .object == "model" and .owned_by)'
