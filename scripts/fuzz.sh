#!/bin/sh
# fuzz.sh BUILDDIR [SECONDS]: build the libFuzzer targets with clang
# (ASan + UBSan) and run each for SECONDS (default 30).  Exit 0 when no
# target crashed, leaked or hung.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
B=$(cd "$1" && pwd)
SECS=${2:-30}
out=$B/fuzz
mkdir -p "$out/corpus-chan"
CFLAGS="-g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined"
# shellcheck disable=SC2046
clang $CFLAGS -I"$B" -I"$top/lib" -o "$out/fuzz_chan" \
    "$top/tests/fuzz/fuzz_chan.c" "$top/lib/chan.c" "$top/lib/log.c" \
    $(pkg-config --cflags --libs libevent json-c)
# A seed: a request with a JSON payload after the HELLO the target adds.
printf '\001\145\000\000\000\036\000\000\000\001\000\000\000\000\000\000\000{"a":1}\000\000\000\000\000\000\000' \
    >"$out/corpus-chan/seed-json"
cd "$out"
./fuzz_chan -max_total_time="$SECS" -max_len=4096 -timeout=5 \
    -print_final_stats=1 corpus-chan >fuzz_chan.log 2>&1 ||
    { tail -40 fuzz_chan.log; exit 1; }
grep -E '^stat::number_of_executed_units' fuzz_chan.log || true
