#!/bin/sh
# Bad HTTP never gets past the proxy and never harms it: every request
# below gets a clear status in OpenAI's error shape (or a clean close),
# and a good request works right after each.  Limits are set with
# flm config set proxy.* and take effect without a restart.
. "$(dirname "$0")/lib.sh"

plan 43

mock_init
mock --flavor vllm
check "suite starts" suite_start
F="$FLM -D $STATE"
$F config set engines.vllm.url "http://127.0.0.1:$MPORT" >/dev/null
KEY=$($F api-keys create --label h --json | jq -r .key)
PORT=$($F proxy start --port 0 --json | jq .port)
U=http://127.0.0.1:$PORT
A="Authorization: Bearer $KEY"
RAW=$top_builddir/tests/http-raw
M=meta-llama/Llama-3.2-1B-Instruct
CHAT="{\"model\":\"$M\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}"
CRLF=$(printf '\r')

good() { [ "$(http_code "$U/v1/models" -H "$A")" = 200 ]; }
# raw REQUEST [http-raw args]: the status line's code of the answer.
raw() {
	r=$1
	shift
	printf "$r" | "$RAW" "$@" "$PORT" >"$TMP/raw" 2>/dev/null
	head -n 1 "$TMP/raw" | cut -d' ' -f2
}
rawbody() { sed -n '/^\r$/,$p' "$TMP/raw" | sed 1d; }
# post_code BODY [curl args]: the status of a chat request.
post_code() {
	b=$1
	shift
	curl -s -o "$TMP/body" -w '%{http_code}' -m 5 -H "$A" \
	    -H 'Content-Type: application/json' -d "$b" "$@" "$U/v1/chat/completions"
}
# bad DESC EXPECTED BODY: one bad JSON request; the error names the problem.
bad() {
	c=$(post_code "$3")
	want=$2
	checkx "$1: $2 in OpenAI's shape (got $c)" \
	    '[ "$c" = "$want" ] && jq -e ".error.message and .error.type" "$TMP/body" >/dev/null && good'
}

check "a good chat request works" [ "$(post_code "$CHAT")" = 200 ]
bad "malformed JSON" 400 '{"model": "x", '
bad "a JSON array, not an object" 400 '[1,2]'
bad "trailing bytes after the object" 400 "$CHAT x"
bad "an empty body" 400 ''
bad "no model" 400 '{"messages":[{"role":"user","content":"hi"}]}'
checkx "... and the error names the param" 'jq -e ".error.param == \"model\"" "$TMP/body" >/dev/null'
bad "model is a number" 400 '{"model":5,"messages":[{"role":"user","content":"hi"}]}'
bad "stream is a string" 400 "{\"model\":\"$M\",\"stream\":\"yes\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}"
bad "messages missing" 400 "{\"model\":\"$M\"}"
bad "messages not an array" 400 "{\"model\":\"$M\",\"messages\":\"hi\"}"
bad "a message without a role" 400 "{\"model\":\"$M\",\"messages\":[{\"content\":\"hi\"}]}"
bad "max_tokens is a string" 400 "{\"model\":\"$M\",\"max_tokens\":\"9\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}"

# ---- framing ------------------------------------------------------------------------
check "a chunked request body is read" \
    [ "$(post_code "$CHAT" -H 'Transfer-Encoding: chunked')" = 200 ]
check "proxy.header_timeout can be set to 1 s" \
    sh -c "$F config set proxy.header_timeout 1 >/dev/null"
c=$(raw "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n$A\r\nContent-Length: 100\r\n\r\n{\"model\":" -t 4000)
check "a truncated body: 408 once the timeout passes (got $c)" [ "$c" = 408 ]
c=$(raw "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /v1/models HTTP/1.1\r\nHost: x\r\n$A\r\nConnection: close\r\n\r\n")
checkx "three pipelined requests: three answers, in order" \
    '[ "$(grep -o "HTTP/1.1 200" "$TMP/raw" | wc -l)" = 3 ] && tail -c 200 "$TMP/raw" | grep -q "\"object\":\"list\""'
c=$(raw "GET /v1/models HTTP/1.0\r\n$A\r\n\r\n")
checkx "HTTP/1.0 without Host: answered, then closed" \
    '[ "$c" = 200 ] && grep -qi "^Connection: close" "$TMP/raw"'
c=$(raw "GET /healthz HTTP/1.1\r\n\r\n")
check "HTTP/1.1 without Host: 400 (got $c)" [ "$c" = 400 ]
c=$(raw "GET /healthz HTTP/2.0\r\nHost: x\r\n\r\n")
check "HTTP/2.0 on the wire: 505 (got $c)" [ "$c" = 505 ]
c=$(raw "GET /healthz HTTP/1.5\r\nHost: x\r\n\r\n")
check "HTTP/1.5: 505 (got $c)" [ "$c" = 505 ]
c=$(raw "GET /healthz HTTP/1.1\nHost: x\n\n")
check "bare LF line ends: 400 (got $c)" [ "$c" = 400 ]
c=$(raw "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
check "Content-Length with Transfer-Encoding (smuggling): 400 (got $c)" [ "$c" = 400 ]
c=$(raw "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello")
check "two different Content-Lengths: 400 (got $c)" [ "$c" = 400 ]
c=$(raw "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n")
check "an unknown transfer coding: 501 (got $c)" [ "$c" = 501 ]
c=$(raw "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n$A\r\n\r\n")
check "POST without a length: 411 (got $c)" [ "$c" = 411 ]
c=$(raw "GET /healthz HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n")
check "obsolete header folding: 400 (got $c)" [ "$c" = 400 ]
# Trailers are read as strictly as heads: a request hidden behind a bare
# LF in a trailer (for a front end that splits lines at LF) is refused.
CH="POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n$A\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n$(printf %x ${#CHAT})\r\n$CHAT\r\n0\r\n"
c=$(raw "${CH}X-T: v\r\n\r\n")
check "a chunked body with a trailer field: 200 (got $c)" [ "$c" = 200 ]
c=$(raw "${CH}X-T: v\nGET /v1/models HTTP/1.1\r\nHost: x\r\n\r\n")
checkx "a request hidden in a trailer behind a bare LF: 400, one answer (got $c)" \
    '[ "$c" = 400 ] && [ "$(grep -c "^HTTP/1.1" "$TMP/raw")" = 1 ]'
c=$(raw "${CH}X-T: a\001b\r\n\r\n")
check "a control character in a trailer: 400 (got $c)" [ "$c" = 400 ]

# A head sent a byte at a time is searched for its end only in the new
# bytes: proxyd's CPU time for 40000 bytes of head (many short fields)
# stays in proportion to that of 40000 bytes of body sent at the same
# pace, which is linear however it is read.  Scanning from the start at
# each read made it several times more (as much as the pace allows:
# proxyd was busy all the time the head took to send).
$F config set proxy.header_timeout 60 >/dev/null
$F config set proxy.max_header_bytes 65536 >/dev/null
PPID_=$(proc_pid flm-proxyd)
cpu() { awk '{ print $14 + $15 }' "/proc/$PPID_/stat"; }
N=40000
pad=$(head -c $((N - 60)) /dev/zero | tr '\0' a)
lbody="{\"model\":\"x\",\"messages\":[{\"role\":\"user\",\"content\":\"$pad\"}]}"
c0=$(cpu)
printf "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n$A\r\nContent-Length: ${#lbody}\r\nConnection: close\r\n\r\n%s" "$lbody" |
    "$RAW" -u 100 -t 60000 "$PORT" >"$TMP/lin-body" 2>/dev/null
c1=$(cpu)
{ printf "GET /v1/models HTTP/1.1\r\nHost: x\r\n"; awk -v n=$N 'BEGIN { for (i = 0; i < n / 6; i++) printf "X: a\r\n"; printf "\r\n" }'; } |
    "$RAW" -u 100 -t 60000 "$PORT" >"$TMP/lin-head" 2>/dev/null
c2=$(cpu)
checkx "a 40000-byte head sent byte by byte costs proxyd no more than three times the CPU of a body so sent (head $((c2 - c1)), body $((c1 - c0)) ticks)" \
    'head -n 1 "$TMP/lin-body" | grep -q "^HTTP/1.1 404" && head -n 1 "$TMP/lin-head" | grep -q "^HTTP/1.1 431" && [ $((c2 - c1)) -le $((3 * (c1 - c0) + 5)) ]'
$F config set proxy.max_header_bytes 32768 >/dev/null
$F config set proxy.header_timeout 1 >/dev/null

# ---- limits -----------------------------------------------------------------------------
c=$(curl -s -o /dev/null -w '%{http_code}' -m 5 -H "$A" -H "X-Big: $(head -c 40000 /dev/zero | tr '\0' a)" "$U/v1/models")
check "a 40 KB header (default limit 32 KiB): 431 (got $c)" [ "$c" = 431 ]
$F config set proxy.max_body_bytes 2048 >/dev/null
big="{\"model\":\"$M\",\"messages\":[{\"role\":\"user\",\"content\":\"$(head -c 4000 /dev/zero | tr '\0' a)\"}]}"
check "a 4 KB body over proxy.max_body_bytes 2048: 413" [ "$(post_code "$big")" = 413 ]
check "... also when chunked" [ "$(post_code "$big" -H 'Transfer-Encoding: chunked')" = 413 ]
check "and a small body still passes" [ "$(post_code "$CHAT")" = 200 ]
err=$($F config set proxy.max_body_bytes lots 2>&1)
rc=$?
checkx "a bad limit is refused with the range (rc $rc)" \
    '[ $rc -ne 0 ] && echo "$err" | grep -q "integer from 1024"'
check "and the limit in force is unchanged" [ "$(post_code "$big")" = 413 ]
# Slow loris: a head sent one byte every 50 ms is cut at the timeout.
t0=$(date +%s%3N)
c=$(raw "GET /v1/models HTTP/1.1\r\nHost: x\r\nX-Slow: $(head -c 60 /dev/zero | tr '\0' s)\r\n\r\n" -s 50 -t 6000)
t1=$(date +%s%3N)
checkx "a slow-loris head: 408 within the 1 s header timeout, not after 5 s ($((t1 - t0)) ms, got $c)" \
    '[ "$c" = 408 ] && [ $((t1 - t0)) -lt 3500 ]'
$F config set proxy.max_connections 3 >/dev/null
sleep 0.2
n=$("$RAW" -n 5 -t 500 "$PORT")
check "over proxy.max_connections 3: the extra connections get 503 and a close ($n of 5 answered)" \
    [ "$n" = 2 ]
$F config set proxy.max_connections 4096 >/dev/null
# A client that stops reading a long stream: closed after
# proxy.write_timeout without progress, and the engine call cancelled.
mock --flavor vllm --models long --chunks 20000 --chunk-delay-ms 1 --sse-pad 4096
LONG=$MPORT
$F config set engines.long.kind vllm >/dev/null
$F config set engines.long.url "http://127.0.0.1:$LONG" >/dev/null
$F config set proxy.write_timeout 1 >/dev/null
LCHAT='{"model":"flm://long/long","stream":true,"messages":[{"role":"user","content":"hi"}]}'
printf "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n$A\r\nContent-Length: ${#LCHAT}\r\n\r\n%s" "$LCHAT" |
    "$RAW" -p -t 20000 "$PORT" >/dev/null 2>&1 &
RPID=$!
wait_until 15000 sh -c "[ \"\$(curl -s http://127.0.0.1:$LONG/__mock/stats | jq .streams_aborted)\" = 1 ]"
checkx "a client that stops reading a stream: closed after proxy.write_timeout, the engine's stream cancelled" \
    '[ "$(curl -s http://127.0.0.1:$LONG/__mock/stats | jq "[.streams_started, .streams_aborted] == [1, 1]")" = true ] && grep -q "took no bytes for 1 s" "$STATE/flmd.log"'
kill "$RPID" 2>/dev/null
wait "$RPID" 2>/dev/null
sleep 0.2
check "the proxy serves after all of it" good
check "no child was restarted" \
    [ "$(status_json | jq '[.processes[] | .restarts // 0] | add')" = 0 ]
