#!/bin/sh
# The mock engine against the engines' documented answers
# (tests/mock-engine/fixtures): every documented field is there, with
# the documented JSON type.
. "$(dirname "$0")/lib.sh"
mock_init

FIX=$top_srcdir/tests/mock-engine/fixtures
plan 16

# shape FILE|-: the set of leaf paths with their types, arrays folded.
shape() {
	jq -c '[paths(scalars) as $p | [($p | map(if type == "number" then 0
	    else . end)), (getpath($p) | type)]] | unique' "$1"
}
# like FIXTURE JSON: JSON has every path of FIXTURE, of the same type.
like() {
	printf '%s' "$2" >"$TMP/answer.json"
	jq -n --argjson f "$(shape "$FIX/$1")" \
	    --argjson a "$(shape "$TMP/answer.json")" \
	    -e '($f - $a) | length == 0' >/dev/null || {
		diag "$1: missing $(jq -n --argjson f "$(shape "$FIX/$1")" \
		    --argjson a "$(shape "$TMP/answer.json")" -c '$f - $a')"
		return 1
	}
}

mock --flavor ollama; O=http://127.0.0.1:$MPORT
mock --flavor lmstudio; L=http://127.0.0.1:$MPORT
mock --flavor vllm; V=http://127.0.0.1:$MPORT
mock --flavor llamacpp; C=http://127.0.0.1:$MPORT
mock --flavor llamacpp --fail loading; CL=http://127.0.0.1:$MPORT
VM=$(get $V/v1/models | jq -r '.data[0].id')
LM=$(get $L/v1/models | jq -r '.data[0].id')
CM=$(get $C/v1/models | jq -r '.data[0].id')
msg='"messages":[{"role":"user","content":"hi"}]'

check "ollama GET /api/version" like ollama-version.json "$(get $O/api/version)"
check "ollama GET /api/tags" like ollama-tags.json "$(get $O/api/tags)"
check "ollama POST /api/chat (stream false)" like ollama-chat.json \
    "$(post $O/api/chat "{\"model\":\"llama3.2:1b\",\"stream\":false,$msg}")"
check "ollama POST /api/embed" like ollama-embed.json \
    "$(post $O/api/embed '{"model":"llama3.2:1b","input":"x"}')"
for u in $L $V $C; do
	check "GET /v1/models at $u" like openai-models.json "$(get $u/v1/models)"
done
check "lmstudio POST /v1/chat/completions" like openai-chat.json \
    "$(post $L/v1/chat/completions "{\"model\":\"$LM\",$msg}")"
check "vllm POST /v1/chat/completions" like openai-chat.json \
    "$(post $V/v1/chat/completions "{\"model\":\"$VM\",$msg}")"
check "llamacpp POST /v1/chat/completions" like openai-chat.json \
    "$(post $C/v1/chat/completions "{\"model\":\"$CM\",$msg}")"
check "vllm POST /v1/completions" like openai-completion.json \
    "$(post $V/v1/completions "{\"model\":\"$VM\",\"prompt\":\"x\"}")"
check "vllm POST /v1/embeddings" like openai-embeddings.json \
    "$(post $V/v1/embeddings "{\"model\":\"$VM\",\"input\":\"x\"}")"
check "vllm GET /version" like vllm-version.json "$(get $V/version)"
check "llamacpp GET /health" like llamacpp-health.json "$(get $C/health)"
check "llamacpp GET /health while loading" like llamacpp-loading.json "$(get $CL/health)"
check "llamacpp GET /props" like llamacpp-props.json "$(get $C/props)"
