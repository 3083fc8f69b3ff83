#!/bin/sh
# fuzz.sh BUILDDIR [SECONDS]: build the libFuzzer targets with clang
# (ASan + UBSan) and run each for SECONDS (default 30).  Exit 0 when no
# target crashed, leaked or hung.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
B=$(cd "$1" && pwd)
SECS=${2:-30}
out=$B/fuzz
mkdir -p "$out/corpus-chan" "$out/corpus-http"
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
cd "$out"
for t in chan http; do
	./fuzz_$t -max_total_time="$SECS" -max_len=4096 -timeout=5 \
	    -print_final_stats=1 corpus-$t >fuzz_$t.log 2>&1 ||
	    { tail -40 fuzz_$t.log; exit 1; }
	grep -E '^stat::number_of_executed_units' fuzz_$t.log | sed "s/^/$t: /" || true
done
