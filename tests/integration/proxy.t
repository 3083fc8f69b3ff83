#!/bin/sh
# The proxy's main job, end to end through real processes: chat,
# completions and embeddings routed by model to the right engine with
# the engine's own name, streamed chunk by chunk, Ollama's native API
# translated, admin routes unreachable in every spelling, engine
# failures mapped to 502/504, a client that leaves cancels the engine.
. "$(dirname "$0")/lib.sh"

plan 47

mock_init
mock --flavor ollama --chunks 5 --chunk-delay-ms 40
OLLAMA=$MPORT
mock --flavor vllm --models llama3.2:1b,vllm-only
VLLM=$MPORT
mock --flavor ollama --no-v1 --models old:1b --chunks 4
OLD=$MPORT
mock --flavor llamacpp
LCPP=$MPORT
check "suite starts" suite_start
F="$FLM -D $STATE"
$F config set engines.ollama.url "http://127.0.0.1:$OLLAMA" >/dev/null
$F config set engines.vllm.url "http://127.0.0.1:$VLLM" >/dev/null
$F config set engines.llamacpp.url "http://127.0.0.1:$LCPP" >/dev/null
$F config set engines.old.kind ollama >/dev/null
$F config set engines.old.url "http://127.0.0.1:$OLD" >/dev/null
KEY=$($F api-keys create --label p --json | jq -r .key)
PORT=$($F proxy start --port 0 --json | jq .port)
U=http://127.0.0.1:$PORT
A="Authorization: Bearer $KEY"

# req PATH BODY [curl args]: body and, on the last line, the status.
req() {
	p=$1 b=$2
	shift 2
	curl -s -m 10 -w '\n%{http_code}' -H "$A" -H 'Content-Type: application/json' \
	    -d "$b" "$@" "$U$p"
}
body() { echo "$1" | sed '$d'; }
code() { echo "$1" | tail -n 1; }
stats() { get "http://127.0.0.1:$1/__mock/stats"; }
chat() { printf '{"model":"%s","messages":[{"role":"user","content":"hi there"}]%s}' "$1" "${2:-}"; }

# ---- routing --------------------------------------------------------------
out=$(req /v1/chat/completions "$(chat flm://ollama/llama3.2:1b)")
checkx "flm://ollama/llama3.2:1b: 200 from the Ollama engine" \
    '[ "$(code "$out")" = 200 ] && json_has "$(body "$out")" \
    ".choices[0].message.content | startswith(\"Hello from mock ollama\")"'
checkx "the engine got its own model name" \
    'json_has "$(body "$out")" ".model == \"llama3.2:1b\""'
out=$(req /v1/chat/completions "$(chat flm://vllm/llama3.2:1b)")
checkx "the same name on vLLM goes to vLLM" \
    'json_has "$(body "$out")" ".choices[0].message.content | startswith(\"Hello from mock vllm\")"'
out=$(req /v1/chat/completions "$(chat vllm-only)")
checkx "a bare name unique across engines is routed" \
    '[ "$(code "$out")" = 200 ] && json_has "$(body "$out")" ".model == \"vllm-only\""'
out=$(req /v1/chat/completions "$(chat llama3.2:1b)")
checkx "a bare name two engines have is a pool: answered by one of them" \
    '[ "$(code "$out")" = 200 ] && json_has "$(body "$out")" \
    ".choices[0].message.content | test(\"^Hello from mock (ollama|vllm)\")"'
out=$(req /v1/chat/completions "$(chat flm://ollama/nope)")
checkx "an unknown model: 404 model_not_found" \
    '[ "$(code "$out")" = 404 ] && json_has "$(body "$out")" ".error.code == \"model_not_found\""'
out=$(req /v1/chat/completions "$(chat flm://nosuch/llama3.2:1b)")
check "an unknown engine: 404" [ "$(code "$out")" = 404 ]
out=$(req /v1/completions '{"model":"flm://vllm/vllm-only","prompt":"say hi"}')
checkx "completions: text_completion from the engine" \
    '[ "$(code "$out")" = 200 ] && json_has "$(body "$out")" ".object == \"text_completion\" and (.choices[0].text | length > 0)"'
out=$(req /v1/embeddings '{"model":"flm://ollama/qwen2.5:0.5b","input":["a","b"]}')
checkx "embeddings: two 8-dimensional vectors" \
    '[ "$(code "$out")" = 200 ] && json_has "$(body "$out")" "(.data | length == 2) and (.data[1].embedding | length == 8)"'
out=$(req /v1/embeddings '{"model":"flm://ollama/qwen2.5:0.5b","input":"a","encoding_format":"base64"}')
checkx "embeddings as base64: 8 little-endian float32 (the openai clients' default)" \
    '[ "$(body "$out" | jq -r ".data[0].embedding" | base64 -d | wc -c)" = 32 ]'
check "an unknown encoding_format: 400" \
    [ "$(code "$(req /v1/embeddings '{"model":"qwen2.5:0.5b","input":"a","encoding_format":"hex"}')")" = 400 ]
out=$(req /v1/chat/completions "$(chat flm://llamacpp/ggml-org/gemma-3-1b-it-GGUF)")
check "llama.cpp: a model name with slashes routes" [ "$(code "$out")" = 200 ]

# ---- streaming --------------------------------------------------------------
curl -sN -m 10 -H "$A" -d "$(chat flm://ollama/llama3.2:1b ',"stream":true')" \
    "$U/v1/chat/completions" | while IFS= read -r l; do
	[ -n "$l" ] && echo "$(date +%s%3N) $l"
done >"$TMP/sse"
checkx "a stream: SSE chunks then data: [DONE]" \
    'grep -c "chat.completion.chunk" "$TMP/sse" | grep -qx 6 && tail -n 1 "$TMP/sse" | grep -q "data: \[DONE\]"'
first=$(head -n 1 "$TMP/sse" | cut -d" " -f1)
last=$(tail -n 1 "$TMP/sse" | cut -d" " -f1)
checkx "chunks arrive as the engine sends them, not at the end ($((last - first)) ms apart)" \
    '[ $((last - first)) -ge 120 ]'
joined=$(sed -n 's/^[0-9]* data: //p' "$TMP/sse" | grep -v '^\[DONE\]' |
    jq -rj '.choices[0].delta.content // empty')
whole=$(body "$(req /v1/chat/completions "$(chat flm://ollama/llama3.2:1b)")" |
    jq -r '.choices[0].message.content')
check "the streamed text is the whole answer" [ "$joined" = "$whole" ]

# A client that leaves: the engine's stream is cancelled within 100 ms.
mock --flavor vllm --models slow --chunks 1000 --chunk-delay-ms 20
SLOW=$MPORT
$F config set engines.slow.kind vllm >/dev/null
$F config set engines.slow.url "http://127.0.0.1:$SLOW" >/dev/null
curl -sN -m 30 -H "$A" -d "$(chat slow ',"stream":true')" "$U/v1/chat/completions" \
    >"$TMP/slow" 2>/dev/null &
CPID=$!
wait_until 3000 grep -qs "data:" "$TMP/slow"
started=$(stats "$SLOW" | jq .streams_started)
t0=$(date +%s%3N)
kill "$CPID"
wait_until 2000 sh -c "[ \"\$(curl -s http://127.0.0.1:$SLOW/__mock/stats | jq .streams_aborted)\" = 1 ]"
t1=$(stats "$SLOW" | jq .last_abort_ms)
checkx "a client that disconnects cancels the engine's stream within 100 ms ($((t1 - t0)) ms)" \
    '[ "$started" = 1 ] && [ $((t1 - t0)) -ge 0 ] && [ $((t1 - t0)) -le 100 ]'
wait "$CPID" 2>/dev/null

# ---- Ollama without /v1: translated ----------------------------------------
out=$(req /v1/chat/completions "$(chat flm://old/old:1b)")
checkx "Ollama without /v1: chat.completion made from /api/chat" \
    '[ "$(code "$out")" = 200 ] && json_has "$(body "$out")" \
    ".object == \"chat.completion\" and .choices[0].finish_reason == \"stop\" and .usage.total_tokens > 0 and (.choices[0].message.content | startswith(\"Hello from mock ollama\"))"'
check "it went to /api/chat, never to /v1" \
    json_has "$(stats "$OLD")" '.by_path["/api/chat"] == 1 and (.by_path["/v1/chat/completions"] // 0) == 0'
curl -sN -m 10 -H "$A" -d "$(chat flm://old/old:1b ',"stream":true,"stream_options":{"include_usage":true}')" \
    "$U/v1/chat/completions" >"$TMP/old-sse"
checkx "its NDJSON stream becomes SSE: role, deltas, finish_reason, usage, [DONE]" \
    'sed -n "s/^data: //p" "$TMP/old-sse" | grep -v "^\[DONE\]" | jq -s -e \
    "(.[0].choices[0].delta.role == \"assistant\") and (map(select(.choices[0].finish_reason == \"stop\")) | length == 1) and (.[-1].usage.total_tokens > 0)" >/dev/null &&
    tail -n 2 "$TMP/old-sse" | grep -q "data: \[DONE\]"'
sjoined=$(sed -n 's/^data: //p' "$TMP/old-sse" | grep -v '^\[DONE\]' |
    jq -rj '.choices[0].delta.content // empty')
check "the translated stream joins to the whole answer" \
    [ "$sjoined" = "$(body "$out" | jq -r '.choices[0].message.content')" ]
out=$(req /v1/embeddings '{"model":"old:1b","input":"abc"}')
checkx "Ollama without /v1: embeddings from /api/embed" \
    '[ "$(code "$out")" = 200 ] && json_has "$(body "$out")" ".object == \"list\" and (.data[0].embedding | length == 8) and .usage.prompt_tokens >= 1"'
out=$(req /v1/embeddings '{"model":"old:1b","input":"abc","stream":true,"encoding_format":"base64"}')
checkx "translated embeddings ignore stream and may be base64" \
    '[ "$(code "$out")" = 200 ] && [ "$(body "$out" | jq -r ".data[0].embedding" | base64 -d | wc -c)" = 32 ]'
out=$(req /v1/embeddings '{"model":"old:1b","input":[1,2,3]}')
check "token ids for a translated engine: 400 saying so" [ "$(code "$out")" = 400 ]

# ---- admin routes ---------------------------------------------------------------
before=$(stats "$OLLAMA" | jq .requests)
for p in /api/pull /api/delete /api/create /api/tags /slots /pause /props \
    /v1/../api/pull /v1/models/../../api/delete //api//pull /%61pi/pull \
    /v1/%2e%2e/api/create /v1/chat/completions/../../../slots \
    '/v1%2f..%2fslots' '/api/pull?x=/v1/models' /v1/models/x /V1/MODELS; do
	c=$(curl -s -o /dev/null -w '%{http_code}' -m 5 --path-as-is -H "$A" \
	    -X POST -d '{"model":"llama3.2:1b","name":"x"}' "$U$p")
	case $c in 400|404|405) ;; *) echo "$p: $c" ;; esac
done >"$TMP/admin"
check "every spelling of an engine admin route is refused (400/404/405)" \
    [ ! -s "$TMP/admin" ]
[ -s "$TMP/admin" ] && diag "$(cat "$TMP/admin")"
check "and none of them reached an engine" \
    [ "$(stats "$OLLAMA" | jq .requests)" = "$before" ]
checkx "no engine ever saw an admin path" \
    '! { stats "$OLLAMA"; stats "$VLLM"; stats "$OLD"; stats "$LCPP"; } |
    jq -e ".by_path | keys[] | select(test(\"pull|delete|create|slots|pause\"))" >/dev/null'

# ---- engine failures ---------------------------------------------------------------
$F config set proxy.upstream_timeout 1 >/dev/null
curl -s -X POST "http://127.0.0.1:$VLLM/__mock/fail?mode=stall" >/dev/null
t0=$(date +%s%3N)
out=$(req /v1/chat/completions "$(chat vllm-only)")
t1=$(date +%s%3N)
checkx "an engine that does not answer: 504 after proxy.upstream_timeout ($((t1 - t0)) ms)" \
    '[ "$(code "$out")" = 504 ] && json_has "$(body "$out")" ".error.type == \"timeout_error\"" && [ $((t1 - t0)) -lt 3000 ]'
curl -s -X POST "http://127.0.0.1:$VLLM/__mock/fail?mode=malformed" >/dev/null
out=$(req /v1/chat/completions "$(chat vllm-only)")
check "an engine whose answer is broken JSON: passed as the engine sent it ($(code "$out"))" \
    [ "$(code "$out")" = 200 ]
curl -s -X POST "http://127.0.0.1:$VLLM/__mock/fail?mode=500" >/dev/null
out=$(req /v1/chat/completions "$(chat vllm-only)")
check "an engine's own error status is passed through (500)" [ "$(code "$out")" = 500 ]
curl -s -X POST "http://127.0.0.1:$VLLM/__mock/fail?mode=none" >/dev/null
check "and once it is well, requests work again" \
    [ "$(code "$(req /v1/chat/completions "$(chat vllm-only)")")" = 200 ]
kill $(echo $MOCK_PIDS | cut -d' ' -f2)
out=$(req /v1/chat/completions "$(chat vllm-only)")
checkx "an engine that went away: 502 naming it" \
    '[ "$(code "$out")" = 502 ] && json_has "$(body "$out")" ".error.message | contains(\"vllm\")"'
check "the proxy is still up" [ "$(http_code "$U/healthz")" = 200 ]

# ---- keep-alive upstream, status, reload -------------------------------------------
curl -s -X POST "http://127.0.0.1:$OLLAMA/__mock/reset" >/dev/null
for i in 1 2 3 4 5; do req /v1/chat/completions "$(chat flm://ollama/llama3.2:1b)" >/dev/null; done
check "five calls, each served by the engine" \
    [ "$(stats "$OLLAMA" | jq '.by_path["/v1/chat/completions"]')" = 5 ]
# An engine that closes kept-alive connections 100 ms after they fall
# silent, without a word: calls spaced around that (the close seen
# while idle, or a call sent into a connection just closed and tried
# again afresh) are all answered.
mock --flavor vllm --models idler --idle-ms 100
$F config set engines.idler.kind vllm >/dev/null
$F config set engines.idler.url "http://127.0.0.1:$MPORT" >/dev/null
idler() { code "$(req /v1/chat/completions "$(chat flm://idler/idler)")"; }
wait_until 5000 sh -c "[ \"\$(curl -s -o /dev/null -w '%{http_code}' -H '$A' \
    -d '$(chat flm://idler/idler)' $U/v1/chat/completions)\" = 200 ]"
: >"$TMP/idler"
for d in 0.05 0.15 0.09 0.1 0.11 0.2 0.098 0.102 0.1 0.3 0.1 0.099 0.101 0.1 0.12; do
	sleep "$d"
	idler >>"$TMP/idler"
done
checkx "an engine closing idle kept-alive connections: 15 calls around its 100 ms, all 200 ($(sort "$TMP/idler" | uniq -c | tr '\n' ' '))" \
    '[ "$(grep -c "^200$" "$TMP/idler")" = 15 ]'
st=$($F proxy status --json)
checkx "proxy status: mode, bind, port, pid, started_at, requests, certificate, egress" \
    'json_has "$st" ".[0] | .mode == \"local-http\" and .bind == \"127.0.0.1\" and .port == $PORT and .pid > 0 and .started_at > 0 and .certificate == null and .egress == \"direct\""'
wait_until 2000 sh -c "$F proxy status --json | jq -e '.[0].requests >= 30' >/dev/null"
check "requests served are counted ($($F proxy status --json | jq '.[0].requests'))" \
    sh -c "$F proxy status --json | jq -e '.[0].requests >= 30' >/dev/null"
# SIGHUP while a stream is in flight: it completes.
curl -sN -m 20 -H "$A" -d "$(chat slow ',"stream":true,"max_tokens":1')" \
    "$U/v1/chat/completions" >"$TMP/hup" 2>&1 &
CPID=$!
wait_until 3000 grep -qs "data:" "$TMP/hup"
kill -HUP "$FLMD_PID"
sleep 0.3
check "SIGHUP leaves a stream in flight running" kill -0 "$CPID"
kill "$CPID" 2>/dev/null; wait "$CPID" 2>/dev/null
check "and the proxy serves after SIGHUP" \
    [ "$(code "$(req /v1/chat/completions "$(chat flm://ollama/llama3.2:1b)")")" = 200 ]
# The handle comes back when flmd restarts, on the same port.
suite_stop
env "$FLMD" -d -v -D "$STATE" >>"$STATE/flmd.log" 2>&1 &
FLMD_PID=$!
wait_until 5000 all_running
wait_until 3000 sh -c "[ \"\$(curl -s -o /dev/null -w '%{http_code}' -H '$A' $U/v1/models)\" = 200 ]"
check "after a restart of flmd the proxy is back on port $PORT" \
    [ "$(code "$(req /v1/chat/completions "$(chat flm://ollama/llama3.2:1b)")")" = 200 ]

# ---- refused starts and stops: each says why, the proxy serving keeps on ------
check "a --bind that is no address is refused, naming it" \
    fails_with "--bind nope: not an IPv4 or IPv6 address" \
    $F proxy start --port 0 --bind nope
check "a port another program holds: refused, saying why" \
    fails_with "cannot listen on 127.0.0.1 port $OLLAMA: Address already in use" \
    $F proxy start --port "$OLLAMA"
check "--client-certs takes off, optional or required" \
    fails_with "--client-certs maybe: expected off, optional or required" \
    $F proxy start --port 0 --mode dev-selfsigned --client-certs maybe
# Eight proxies at most: seven more start, the ninth is refused.
n=0
while [ $n -lt 7 ] && $F proxy start --port 0 >/dev/null 2>&1; do
	n=$((n + 1))
done
checkx "at most 8 proxies: the ninth is refused ($n more started)" \
    '[ $n = 7 ] && fails_with "at most 8 proxies" $F proxy start --port 0'
for p in $($F proxy status --json | jq ".[].port | select(. != $PORT)"); do
	$F proxy stop --port "$p" >/dev/null
done
checkx "the extra ones stopped, the first serves on; stop --port 0 is refused" \
    '[ "$($F proxy status --json | jq length)" = 1 ] &&
    [ "$(code "$(req /v1/chat/completions "$(chat flm://ollama/llama3.2:1b)")")" = 200 ] &&
    fails_with "--port: expected 1-65535" $F proxy stop --port 0'

# ---- a clean exit ---------------------------------------------------------------
# Both runs of flmd served chat requests, so flm-proxyd held idle engine
# connections when it was told to stop: each child must exit 0 (flmd logs
# how each one stopped), with no word from glibc's malloc on the way out.
suite_stop
checkx "after chat requests both flmd runs saw flm-proxyd and flm-keyd exit 0" \
    '[ "$(grep -c "flm-proxyd (pid [0-9]*) stopped (exit 0)" "$STATE/flmd.log")" = 2 ] &&
    [ "$(grep -c "flm-keyd (pid [0-9]*) stopped (exit 0)" "$STATE/flmd.log")" = 2 ]'
check "no child stopped otherwise, nor aborted, nor had its heap found corrupt" \
    sh -c "! grep -Ei 'did not stop|malloc|corrupt|abort' '$STATE/flmd.log'"
