#!/bin/sh
# fuzz.sh BUILDDIR [SECONDS]: build the libFuzzer targets with clang
# (ASan + UBSan) and run each for SECONDS (default 30).  Exit 0 when no
# target crashed, leaked or hung.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
B=$(cd "$1" && pwd)
SECS=${2:-30}
out=$B/fuzz
mkdir -p "$out/corpus-chan" "$out/corpus-http" "$out/corpus-policy" \
    "$out/corpus-jscan"
CFLAGS="-g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined"
LIBS=$(pkg-config --cflags --libs libevent json-c)
# shellcheck disable=SC2086
clang $CFLAGS -I"$B" -I"$top/lib" -o "$out/fuzz_chan" \
    "$top/tests/fuzz/fuzz_chan.c" "$top/lib/chan.c" "$top/lib/log.c" \
    "$top/lib/jsonbuf.c" $LIBS
# shellcheck disable=SC2086
clang $CFLAGS -I"$B" -I"$top/lib" -I"$top/flm-proxyd" -o "$out/fuzz_http" \
    "$top/tests/fuzz/fuzz_http.c" "$top/flm-proxyd/proxyd_parse.c" \
    "$top/flm-proxyd/proxyd_ollama.c" "$top/lib/jsonbuf.c" $LIBS
# shellcheck disable=SC2086
clang $CFLAGS -I"$B" -I"$top/lib" -o "$out/fuzz_policy" \
    "$top/tests/fuzz/fuzz_policy.c" "$top/lib/policy.c" \
    "$top/lib/jsonbuf.c" $LIBS
# The JSON scanner against json-c's strict tokener (tests/jscan-diff.c).
# shellcheck disable=SC2086
clang $CFLAGS -I"$B" -I"$top/lib" -I"$top/tests" -o "$out/fuzz_jscan" \
    "$top/tests/fuzz/fuzz_jscan.c" "$top/tests/jscan-diff.c" \
    "$top/lib/jscan.c" "$top/lib/jsonbuf.c" $LIBS
# Seeds: a request with a JSON payload after the HELLO the target adds;
# a request head, a response head, a chunked body, a path, an NDJSON line.
printf '\001\145\000\000\000\036\000\000\000\001\000\000\000\000\000\000\000{"a":1}\000\000\000\000\000\000\000' \
    >"$out/corpus-chan/seed-json"
printf '\000POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nAuthorization: Bearer k\r\n\r\n' \
    >"$out/corpus-http/seed-req"
printf '\001HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n' \
    >"$out/corpus-http/seed-resp"
printf '\0074\r\nabcd\r\n3;x=y\r\nefg\r\n0\r\nT: v\r\n\r\n' >"$out/corpus-http/seed-chunked"
printf '\003/v1/./a/../chat//completions%%2e?x=1' >"$out/corpus-http/seed-path"
printf '\004{"message":{"content":"hi"},"done":false}\n{"done":true,"done_reason":"stop","eval_count":3}\n' \
    >"$out/corpus-http/seed-stream"
# Policies: the default, a full one, one with every origin form; the
# field names as a dictionary, for the fuzzer to reach nested fields.
printf '{}' >"$out/corpus-policy/seed-empty"
printf '%s' '{"ip_allowlist":["127.0.0.0/8","::1","192.168.1.0/24","fd12:3456:789a::/64","::ffff:10.0.0.0/104"],"cors":{"allowed_origins":["https://Chat.LAN.example","http://[::1]:9"],"allowed_methods":["GET","post","HEAD","OPTIONS"],"allowed_headers":["authorization","X-Stainless-OS"],"max_age":3600,"allow_credentials":true},"rate_limit":{"per_key":{"requests_per_minute":60,"tokens_per_minute":100000},"per_ip":{"requests_per_minute":120}},"auth_failures":{"max":10,"window_seconds":300}}' \
    >"$out/corpus-policy/seed-full"
printf '%s' '{"ip_allowlist":["0.0.0.0/0","::/0"],"cors":{"allowed_origins":["*","http://127.0.0.1:8080"],"allowed_headers":[]}}' \
    >"$out/corpus-policy/seed-public"
for w in ip_allowlist cors allowed_origins allowed_methods allowed_headers \
    max_age allow_credentials rate_limit per_key per_ip requests_per_minute \
    tokens_per_minute auth_failures max window_seconds GET POST HEAD OPTIONS \
    'http://' 'https://' '*' '::ffff:' '/32' '/128' '/0'; do
	printf '"\\"%s\\""\n' "$w"
done >"$out/policy.dict"
printf '"true"\n"false"\n"null"\n"1000000"\n"86400"\n"\\\\u0000"\n' >>"$out/policy.dict"
# Request bodies: chat, a stream with options, embeddings, and the
# spellings json-c and RFC 8259 judge apart; the tokens as a dictionary.
printf '%s' '{"model":"m","messages":[{"role":"user","content":"h\u00e9 \ud83d\ude00"}],"temperature":0.5,"n":1}' \
    >"$out/corpus-jscan/seed-chat"
printf '%s' '{"model":"m","stream":true,"stream_options":{"include_usage":false},"messages":[{"role":"a","role":1}],"model":"x"}' \
    >"$out/corpus-jscan/seed-stream"
printf '%s' '{"mod\u0065l":"e","input":["a",[1,2]],"encoding_format":"base64","x":[[[{"a":null}]]],"y":-0.5e-3}' \
    >"$out/corpus-jscan/seed-embed"
printf '%s' "{'a':NaN,\"b\":-Infinity,\"c\":00,\"d\":1.,\"e\":\"\\ud800\"}" \
    >"$out/corpus-jscan/seed-lax"
for w in model messages role stream stream_options include_usage \
    encoding_format input prompt true false null NaN Infinity '\\u0000' \
    '\\ud800' '\\udc00' '\\u0065' '1e999' '-0' '01' '1.' "'"; do
	printf '"%s"\n' "$(printf '%s' "$w" | sed 's/"/\\"/g')"
done >"$out/jscan.dict"
cd "$out"
for t in chan http policy jscan; do
	dict=
	[ -f "$t.dict" ] && dict=-dict=$t.dict
	# shellcheck disable=SC2086
	./fuzz_$t -max_total_time="$SECS" -max_len=4096 -timeout=5 $dict \
	    -print_final_stats=1 corpus-$t >fuzz_$t.log 2>&1 ||
	    { tail -40 fuzz_$t.log; exit 1; }
	grep -E '^stat::number_of_executed_units' fuzz_$t.log | sed "s/^/$t: /" || true
done
