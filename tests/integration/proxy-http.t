#!/bin/sh
# Bad HTTP never gets past the proxy and never harms it: every request
# below gets a clear status in OpenAI's error shape (or a clean close),
# and a good request works right after each.  Limits are set with
# flm config set proxy.* and take effect without a restart.
. "$(dirname "$0")/lib.sh"

plan 38

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
sleep 0.2
check "the proxy serves after all of it" good
check "no child was restarted" \
    [ "$(status_json | jq '[.processes[] | .restarts // 0] | add')" = 0 ]
