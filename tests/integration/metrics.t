#!/bin/sh
# GET /metrics (issue 18): Prometheus's text format, only for a key
# whose scope names the metrics endpoint.  Counts by endpoint, status,
# engine and model, latency and first-token histograms, tokens,
# upstream errors, streams in progress, key checks; summed over every
# worker (any worker answers a scrape), kept across a worker's restart;
# promtool accepts it; no key, label or hash is in it.
. "$(dirname "$0")/lib.sh"

command -v promtool >/dev/null 2>&1 ||
    unavailable "promtool (Debian's prometheus package)"
mock_init
plan 20

mock --flavor vllm --models "m1"
VL=$MPORT
mock --flavor ollama --chunks 20 --chunk-delay-ms 100
SLOW=$MPORT
WORKERS=2
check "suite starts, two workers" suite_start
F() { "$FLM" -D "$STATE" "$@"; }
F config set engines.vllm.url "http://127.0.0.1:$VL" >/dev/null
F config set engines.slow.url "http://127.0.0.1:$SLOW" >/dev/null
F config set engines.slow.kind ollama >/dev/null
PORT=$(F proxy start --port 0 --json | jq .port)
U=http://127.0.0.1:$PORT
USER_K=$(F api-keys create --label user --json | jq -r .key)
PROM=$(F api-keys create --label prometheus --endpoints metrics --json)
PROM_K=$(echo "$PROM" | jq -r .key)
listed() { get -H "Authorization: Bearer $USER_K" "$U/v1/models" |
    jq -e '[.data[].id] | index("flm://vllm/m1") != null' >/dev/null; }
wait_until 5000 listed || diag "the proxy does not list the mock yet"

scrape() { curl -s -m 5 -H "Authorization: Bearer $1" -o "$TMP/m.txt" \
    -w '%{http_code}' "$U/metrics"; }
val() { awk -v k="$1" 'index($0, k) == 1 { print $NF }' "$TMP/m.txt"; }

code=$(scrape "")
check "no key: 401 ($code)" test "$code" = 401
code=$(scrape "$USER_K")
checkx "a key without the metrics endpoint: 403 saying how to give it ($code)" \
    '[ $code = 403 ] && grep -q "flm api-keys scope LABEL --endpoints metrics" "$TMP/m.txt"'
code=$(curl -s -o /dev/null -w '%{http_code}' -m 5 \
    -H "Authorization: Bearer $PROM_K" -d '{"model":"flm://vllm/m1","messages":[{"role":"user","content":"x"}]}' \
    "$U/v1/chat/completions")
check "the metrics key may do nothing else ($code)" test "$code" = 403
codes=$(for p in /v1/models /api/tags; do curl -s -o "$TMP/l.json" \
    -w '%{http_code} ' -m 5 -H "Authorization: Bearer $PROM_K" "$U$p"; done)
checkx "… nor list the models ($codes)" \
    '[ "$codes" = "403 403 " ] && jq -e ".error | test(\"may only read metrics\")" "$TMP/l.json" >/dev/null'

# ---- traffic: 10 chats (new connections: both workers), 2 streams, a
# dead engine, a wrong key ---------------------------------------------------------------
for i in 1 2 3 4 5 6 7 8 9 10; do
	curl -s -o /dev/null -m 5 -H "Authorization: Bearer $USER_K" \
	    -d '{"model":"flm://vllm/m1","messages":[{"role":"user","content":"one two"}]}' \
	    "$U/v1/chat/completions"
done
for i in 1 2; do
	curl -s -o /dev/null -m 10 -H "Authorization: Bearer $USER_K" \
	    -d '{"model":"flm://vllm/m1","stream":true,"messages":[{"role":"user","content":"x"}]}' \
	    "$U/v1/chat/completions"
done
curl -s -o /dev/null -m 5 -H "Authorization: Bearer ${USER_K%?}x" "$U/v1/models"
curl -s -o /dev/null -m 5 "$U/healthz"
curl -s -o /dev/null -m 5 -H "Authorization: Bearer $USER_K" "$U/v1/no-such-path"
F engines detect >/dev/null
curl -s -o /dev/null -m 5 -H "Authorization: Bearer $USER_K" \
    -d '{"model":"flm://slow/llama3.2:1b","stream":false,"messages":[{"role":"user","content":"x"}]}' \
    "$U/v1/chat/completions"
code=$(scrape "$PROM_K")
check "the metrics key scrapes: 200 ($code)" test "$code" = 200
checkx "promtool check metrics accepts the scrape" \
    'promtool check metrics <"$TMP/m.txt" 2>"$TMP/promtool.err" ||
    { diag "$(cat "$TMP/promtool.err")"; false; }'
L='endpoint="/v1/chat/completions",status="200",engine="vllm",model="flm://vllm/m1"'
checkx "12 chats to vllm counted, whichever worker served them ($(val "flm_requests_total{$L}"))" \
    '[ "$(val "flm_requests_total{$L}")" = 12 ]'
H='endpoint="/v1/chat/completions",engine="vllm",model="flm://vllm/m1"'
checkx "the latency histogram counts them, +Inf holds all" \
    '[ "$(val "flm_request_duration_seconds_count{$H}")" = 12 ] &&
    [ "$(val "flm_request_duration_seconds_bucket{$H,le=\"+Inf\"}")" = 12 ]'
checkx "time to first token: the 2 streams" \
    '[ "$(val "flm_time_to_first_token_seconds_count{$H}")" = 2 ]'
checkx "tokens out: the engine's counts summed ($(val "flm_tokens_total{$H,direction=\"out\"}"))" \
    '[ "$(val "flm_tokens_total{$H,direction=\"out\"}")" -gt 50 ] &&
    [ "$(val "flm_tokens_total{$H,direction=\"in\"}")" -ge 12 ]'
checkx "the health check and an unknown path are no series" \
    '! grep -q "endpoint=\"/healthz\"\|endpoint=\"\"\|endpoint=\"(null)\"" "$TMP/m.txt" &&
    grep -q "endpoint=\"/v1/models\"" "$TMP/m.txt"'
checkx "the failed key check is counted" \
    '[ "$(val "flm_key_verifications_total{result=\"failed\"}")" -ge 1 ]'
checkx "no key, key id, label or hash is in the scrape" \
    '! grep -qF "${USER_K#flm_*_}" "$TMP/m.txt" &&
    ! grep -qF "$(echo "$USER_K" | cut -d_ -f2)" "$TMP/m.txt" &&
    ! grep -q "prometheus\|user\|argon2" "$TMP/m.txt"'

# ---- a stream in progress, an engine that is gone -----------------------------------------------
curl -s -o /dev/null -m 10 -H "Authorization: Bearer $USER_K" \
    -d '{"model":"flm://slow/llama3.2:1b","messages":[{"role":"user","content":"x"}]}' \
    "$U/api/chat" &
CPID=$!
streaming() { scrape "$PROM_K" >/dev/null; [ "$(val flm_active_streams)" -ge 1 ]; }
check "a stream in progress shows in flm_active_streams" wait_until 3000 streaming
wait $CPID
idle() { scrape "$PROM_K" >/dev/null; [ "$(val flm_active_streams)" = 0 ]; }
check "and is gone once it ended" wait_until 3000 idle
# A second name for the vLLM mock, which is then stopped: its port is
# closed when the proxy calls.
F config set engines.gone2.url "http://127.0.0.1:$VL" >/dev/null
F config set engines.gone2.kind vllm >/dev/null
F engines detect >/dev/null
kill "$(echo "$MOCK_PIDS" | awk '{print $1}')" 2>/dev/null
sleep 0.3
curl -s -o /dev/null -m 5 -H "Authorization: Bearer $USER_K" \
    -d '{"model":"flm://gone2/m1","messages":[{"role":"user","content":"x"}]}' \
    "$U/v1/chat/completions"
scrape "$PROM_K" >/dev/null
checkx "an engine that went away: an upstream error for it" \
    'grep -q "^flm_upstream_errors_total{engine=\"gone2\",worker=\"[01]\"} [1-9]" "$TMP/m.txt"'
checkx "the 502 is counted by its status" \
    'grep -q "^flm_requests_total{endpoint=\"/v1/chat/completions\",status=\"502\",engine=\"gone2\"" "$TMP/m.txt"'

# ---- counts outlive a worker ---------------------------------------------------------------------------
before=$(val "flm_requests_total{$L}")
kill "$(proc_pid flm-proxyd)" 2>/dev/null
back() { code=$(scrape "$PROM_K"); [ "$code" = 200 ]; }
wait_until 8000 back
checkx "a worker killed and restarted: the counts go on ($before → $(val "flm_requests_total{$L}"))" \
    '[ "$(val "flm_requests_total{$L}")" = "$before" ]'
check "flm-proxyd and flm-keyd are running" all_running
