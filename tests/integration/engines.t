#!/bin/sh
# Engine detection: each state of each engine, judged honestly and
# within 1.5 s, whatever the ports do; models under flm:// names.
. "$(dirname "$0")/lib.sh"

mock_init

plan 35

closed_port() { "$top_builddir/tests/uds-send" -p; }

# A fake installed ollama on PATH for the installed-only check.
mkdir "$TMP/bin"
printf '#!/bin/sh\nexit 0\n' >"$TMP/bin/ollama"
chmod +x "$TMP/bin/ollama"
check "suite starts" suite_start PATH="$TMP/bin:$PATH" HOME="$TMP"
F="$FLM -D $STATE"
set_url() { $F config set "engines.$1.url" "$2" >/dev/null; }

# detect: run flm engines detect, keep the JSON in DET and its time.
detect() {
	t0=$(date +%s%N)
	DET=$($F engines detect --json)
	t1=$(date +%s%N)
	MS=$(( (t1 - t0) / 1000000 ))
}
state() { echo "$DET" | jq -r --arg i "$1" '.[] | select(.id == $i) | .state'; }

# Healthy, one of each kind.
mock --flavor ollama; set_url ollama "http://127.0.0.1:$MPORT"
mock --flavor lmstudio; set_url lmstudio "http://127.0.0.1:$MPORT"
mock --flavor vllm; set_url vllm "http://127.0.0.1:$MPORT"
mock --flavor llamacpp; set_url llamacpp "http://127.0.0.1:$MPORT"
detect
for e in ollama lmstudio vllm llamacpp; do
	check "$e healthy: RunningHealthy ($(state $e))" [ "$(state $e)" = RunningHealthy ]
done
check "versions are reported" json_has "$DET" \
    '(.[] | select(.id == "ollama") | .version) == "0.5.7" and
     (.[] | select(.id == "vllm") | .version) == "0.6.3"'
check "model counts are reported" json_has "$DET" \
    '(.[] | select(.id == "ollama") | .model_count) == 2'
models=$($F models list --json)
check "models list names every model flm://engine/model" json_has "$models" \
    '[.[].id] | contains(["flm://ollama/llama3.2:1b", "flm://ollama/qwen2.5:0.5b",
      "flm://lmstudio/lmstudio-community/qwen2.5-7b-instruct",
      "flm://vllm/meta-llama/Llama-3.2-1B-Instruct",
      "flm://llamacpp/ggml-org/gemma-3-1b-it-GGUF"])'
check "with the engine's metadata (quantisation, context length)" \
    json_has "$models" '(.[] | select(.engine == "ollama") | .quantization) == "Q4_K_M" and
      (.[] | select(.engine == "llamacpp") | .context_length) == 4096'
check "models list --engine filters" json_has "$($F models list --engine vllm --json)" \
    'length == 1 and .[0].engine == "vllm"'

# Every failure at once: the whole detection still takes under 1.5 s.
set_url ollama "http://127.0.0.1:$(closed_port)"
mock --flavor lmstudio --fail stall; set_url lmstudio "http://127.0.0.1:$MPORT"
mock --flavor vllm --fail 500; set_url vllm "http://127.0.0.1:$MPORT"
mock --flavor llamacpp --fail loading; set_url llamacpp "http://127.0.0.1:$MPORT"
detect
check "detection with every port misbehaving takes < 1.5 s ($MS ms)" [ "$MS" -lt 1500 ]
check "closed port, binary on PATH: InstalledOnly ($(state ollama))" \
    [ "$(state ollama)" = InstalledOnly ]
check "and the reason says where it was found" json_has "$DET" \
    '(.[] | select(.id == "ollama") | .reason) | test("bin/ollama")'
check "a port that accepts and stalls: ErrorNetwork ($(state lmstudio))" \
    [ "$(state lmstudio)" = ErrorNetwork ]
check "HTTP 500: ErrorApi ($(state vllm))" [ "$(state vllm)" = ErrorApi ]
check "llama.cpp loading (503): RunningDegraded ($(state llamacpp))" \
    [ "$(state llamacpp)" = RunningDegraded ]
mock --flavor vllm --fail malformed; set_url vllm "http://127.0.0.1:$MPORT"
detect
check "malformed JSON: ErrorApi ($(state vllm))" [ "$(state vllm)" = ErrorApi ]
check "every non-healthy state has a reason" json_has "$DET" \
    '[.[] | select(.state != "RunningHealthy") | .reason | type == "string"] | all'
set_url lmstudio "http://127.0.0.1:$(closed_port)"
detect
check "closed port, nothing installed: NotFound ($(state lmstudio))" \
    [ "$(state lmstudio)" = NotFound ]
mkdir "$TMP/.lmstudio"
detect
checkx "closed port, LM Studio's data in HOME: InstalledOnly, saying where ($(state lmstudio))" \
    '[ "$(state lmstudio)" = InstalledOnly ] && json_has "$DET" \
    "(.[] | select(.id == \"lmstudio\") | .reason) == \"installed (data in $TMP/.lmstudio) but not running\""'

# Two instances of one kind, under their own ids.
mock --flavor ollama --models a:1b; set_url second "http://127.0.0.1:$MPORT"
$F config set engines.second.kind ollama >/dev/null
detect
check "a second ollama instance with its own id" [ "$(state second)" = RunningHealthy ]
check "its models carry its id" json_has "$($F models list --json)" \
    '[.[].id] | index("flm://second/a:1b") != null'
check "an unknown kind is refused" \
    sh -c "! $F config set engines.third.kind gpt5 2>/dev/null"
check "results are kept in engines_cache" \
    [ "$(sqlite3 "$STATE/config.db" 'SELECT count(*) FROM engines_cache')" -ge 5 ]

# Settings a user can mistype: each refused with what it expects, and
# the value set before is kept.
$F config set engines.vllm.priority 7 >/dev/null
$F config set pools.policy priority >/dev/null
refused() {	# refused KEY VALUE TEXT: refused saying TEXT
	fails_with "$3" $F config set "$1" "$2"
}
checkx "priority, pools.policy, pools.affinity: refused out of range" \
    'refused engines.vllm.priority 101 "engines.vllm.priority: expected 0-100" &&
    refused engines.vllm.priority x "expected 0-100" &&
    refused pools.policy fastest "pools.policy: expected least-outstanding, priority or round-robin" &&
    refused pools.affinity user "pools.affinity: expected none or key"'
checkx "… and the values set before are kept" \
    '[ "$($F config get engines.vllm.priority --json | jq -r ".[\"engines.vllm.priority\"]")" = 7 ] &&
    [ "$($F config get pools.policy --json | jq -r ".[\"pools.policy\"]")" = priority ] &&
    ! $F config get pools.affinity >/dev/null 2>&1'
check "a built-in engine keeps its kind" \
    fails_with "engines.ollama.kind: the built-in engine ollama is always of kind ollama" \
    $F config set engines.ollama.kind vllm
u="expected http://HOST:PORT or https://HOST:PORT"
checkx "engine URLs that name no host and port are refused" \
    'refused engines.x.url ftp://h:1 "engines.x.url: $u" &&
    refused engines.x.url "http://user@h:1" "$u" &&
    refused engines.x.url "http://h:0" "$u" &&
    refused engines.x.url "http://[::1" "$u" &&
    refused engines.x.url "http://[::1]x:1" "$u" &&
    refused engines.x.url "http://h/v1:1" "$u" &&
    ! $F config get engines.x.url >/dev/null 2>&1'
checkx "an IPv6 URL, or one without a port or with a slash, is taken" \
    '$F config set engines.x.url "http://[::1]:8081" >/dev/null &&
    $F config set engines.x.url "https://h.example/" >/dev/null &&
    [ "$($F config get engines.x.url --json | jq -r ".[\"engines.x.url\"]")" = https://h.example/ ]'
head -c 20000 /dev/zero | tr "\0" A >"$TMP/big.pem"
check "a CA file over 16 KiB is refused, saying so" \
    fails_with "engines.x.ca: $TMP/big.pem is larger than 16384 bytes" \
    $F config set engines.x.ca "$TMP/big.pem"
checkx "SOCKS endpoint and user: refused unless HOST:PORT and visible characters" \
    'refused egress.socks5 "socks.example" "egress.socks5: expected HOST:PORT" &&
    refused egress.socks5 "[::1]" "expected HOST:PORT" &&
    refused egress.socks5_user "a b" "egress.socks5_user: expected 1-255 visible characters" &&
    $F config set egress.socks5 "[::1]:1080" >/dev/null'

check "models list --engine of no engine: refused, naming it" \
    fails_with "no engine 'nosuch': see flm engines detect" \
    $F models list --engine nosuch
check "engines trust of no engine: refused, naming it" \
    fails_with "no engine 'nosuch': see flm engines detect" \
    $F engines trust nosuch

# Without engines.ollama.url or engines.llamacpp.url, the engines are
# looked for where their own variables say they listen.
mock --flavor ollama; PO=$MPORT
mock --flavor llamacpp; PL=$MPORT
suite_stop
suite_start OLLAMA_HOST="http://0.0.0.0:$PO" LLAMA_ARG_PORT="$PL"
F="$FLM -D $STATE"
detect
url() { echo "$DET" | jq -r --arg i "$1" '.[] | select(.id == $i) | .base_url'; }
checkx "OLLAMA_HOST 0.0.0.0:PORT: Ollama is reached on 127.0.0.1:PORT ($(url ollama) $(state ollama))" \
    '[ "$(url ollama)" = "http://127.0.0.1:$PO" ] && [ "$(state ollama)" = RunningHealthy ]'
checkx "LLAMA_ARG_PORT: llama.cpp on 127.0.0.1 and that port ($(url llamacpp) $(state llamacpp))" \
    '[ "$(url llamacpp)" = "http://127.0.0.1:$PL" ] && [ "$(state llamacpp)" = RunningHealthy ]'
