#!/bin/sh
# The mock engine answers in each engine's documented shapes, and the
# proxy lists its models under flm:// names.
. "$(dirname "$0")/lib.sh"

mock_init

plan 22


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
