#!/bin/sh
# The request body on its way to an engine (lib/jscan.c): the client's
# own bytes, less what json-c would have dropped (all but the last of a
# duplicated key), with only the model value spliced, include_usage
# merged into stream_options and encoding_format cut; and every text
# that is not RFC 8259 JSON refused before an engine sees it.  The mock
# engine writes each body it receives, byte for byte (--body-file).
. "$(dirname "$0")/lib.sh"

plan 30

mock_init
BF=$TMP/body
mock --flavor vllm --models m1 --body-file "$BF"
VLLM=$MPORT
check "suite starts" suite_start
F="$FLM -D $STATE"
$F config set engines.vllm.url "http://127.0.0.1:$VLLM" >/dev/null
KEY=$($F api-keys create --label b --json | jq -r .key)
PORT=$($F proxy start --port 0 --json | jq .port)
U=http://127.0.0.1:$PORT
A="Authorization: Bearer $KEY"

# send PATH BODY: the status; the answer in $TMP/out, the engine's
# body in $BF (removed first: absent if nothing was forwarded).
send() {
	rm -f "$BF"
	printf '%s' "$2" >"$TMP/in"
	curl -s -m 10 -o "$TMP/out" -w '%{http_code}' -H "$A" \
	    -H 'Content-Type: application/json' --data-binary @"$TMP/in" "$U$1"
}
# forwarded TEXT: the engine got exactly TEXT.
forwarded() { printf '%s' "$1" | cmp -s - "$BF"; }
M='"messages":[{"role":"user","content":"hi"}]'

# ---- the client's bytes, spliced -----------------------------------------
b="{ \"model\" : \"m1\",
  $M, \"temperature\": 0.5, \"x\": {\"y\": [1, 2.5e3, \"\\u00e9\"]} }"
checkx "a bare engine name: 200" '[ "$(send /v1/chat/completions "$b")" = 200 ]'
checkx "the engine got the client's bytes, blanks and escapes as sent" \
    'forwarded "$b"'
b="{\"model\":  \"flm://vllm/m1\", $M}"
checkx "flm://vllm/m1: 200" '[ "$(send /v1/chat/completions "$b")" = 200 ]'
checkx "only the model value replaced by the engine's name" \
    "forwarded '{\"model\":  \"m1\", $M}'"
b="{\"model\":\"nope\",$M,\"model\":\"flm://vllm/m1\"}"
checkx "a duplicated model: the last one routes (as json-c read it)" \
    '[ "$(send /v1/chat/completions "$b")" = 200 ]'
checkx "the engine sees one model: the first occurrence is cut" \
    "forwarded '{$M,\"model\":\"m1\"}'"
b="{\"user\":\"a\",\"model\":\"m1\",\"user\":\"b\",$M,\"user\":\"c\"}"
send /v1/chat/completions "$b" >/dev/null
checkx "every duplicated top-level key: only its last occurrence goes" \
    "forwarded '{\"model\":\"m1\",$M,\"user\":\"c\"}'"
b="{\"mod\\u0065l\":\"flm://vllm/m1\",$M}"
checkx "a key spelled with escapes is the key: routed" \
    '[ "$(send /v1/chat/completions "$b")" = 200 ]'
checkx "and its value replaced, the key as the client spelled it" \
    "forwarded '{\"mod\\u0065l\":\"m1\",$M}'"

# ---- stream_options and encoding_format ----------------------------------
b="{\"model\":\"m1\",$M,\"stream\":true}"
send /v1/chat/completions "$b" >/dev/null
checkx "a stream: include_usage asked of the engine, in front" \
    "forwarded '{\"stream_options\":{\"include_usage\":true},\"model\":\"m1\",$M,\"stream\":true}'"
checkx "and the usage chunk kept from the client" \
    '! grep -q "\"usage\"" "$TMP/out" && grep -q "data: \[DONE\]" "$TMP/out"'
b="{\"model\":\"m1\",$M,\"stream\":true,\"stream_options\":{\"include_usage\":false,\"z\":1,\"include_usage\":false}}"
send /v1/chat/completions "$b" >/dev/null
checkx "the client's include_usage false: replaced, its other options kept" \
    "forwarded '{\"model\":\"m1\",$M,\"stream\":true,\"stream_options\":{\"include_usage\":true,\"z\":1}}'"
b="{\"model\":\"m1\",$M,\"stream\":true,\"stream_options\":null}"
send /v1/chat/completions "$b" >/dev/null
checkx "stream_options null: an object in its place" \
    "forwarded '{\"model\":\"m1\",$M,\"stream\":true,\"stream_options\":{\"include_usage\":true}}'"
b="{\"model\":\"m1\",$M,\"stream\":true,\"stream_options\":{\"include_usage\":true}}"
send /v1/chat/completions "$b" >/dev/null
checkx "include_usage asked by the client: the body as sent, usage shown" \
    'forwarded "$b" && grep -q "\"usage\"" "$TMP/out"'
b='{"model":"m1","input":"a","encoding_format":"base64"}'
checkx "embeddings as base64: 200" '[ "$(send /v1/embeddings "$b")" = 200 ]'
checkx "encoding_format cut from the engine's body, the comma with it" \
    "forwarded '{\"model\":\"m1\",\"input\":\"a\"}'"
checkx "the client gets base64" 'jq -e ".data[0].embedding | type == \"string\"" "$TMP/out" >/dev/null'
b='{"encoding_format":"float","model":"m1","encoding_format":"float","input":"a"}'
send /v1/embeddings "$b" >/dev/null
checkx "every encoding_format cut, wherever it stands" \
    "forwarded '{\"model\":\"m1\",\"input\":\"a\"}'"

# ---- refused: not RFC 8259 JSON, though json-c took some of it -------------
refused() {
	[ "$(send /v1/chat/completions "$1")" = 400 ] && [ ! -e "$BF" ] &&
	    jq -e '.error.message | contains("could not parse the JSON body")' \
	    "$TMP/out" >/dev/null
}
checkx "single quotes: 400, nothing forwarded" "refused \"{'model':'m1',$M}\""
checkx "NaN: 400" "refused '{\"model\":\"m1\",$M,\"temperature\":NaN}'"
checkx "a leading zero: 400" "refused '{\"model\":\"m1\",$M,\"n\":01}'"
checkx "a comment: 400" "refused '{\"model\":\"m1\",/* c */$M}'"
checkx "a trailing comma: 400" "refused '{\"model\":\"m1\",$M,}'"
checkx "a lone surrogate: 400" "refused '{\"model\":\"m1\\ud800\",$M}'"
checkx "overlong UTF-8: 400" \
    "refused \"\$(printf '{\"model\":\"m1\",$M,\"user\":\"\\300\\257\"}')\""
checkx "a raw control character in a string: 400" \
    "refused \"\$(printf '{\"model\":\"m1\",$M,\"user\":\"a\\001\"}')\""
checkx "trailing garbage: 400" "refused '{\"model\":\"m1\",$M} x'"
deep=$(printf '[%.0s' $(seq 32))$(printf ']%.0s' $(seq 32))
checkx "nested deeper than json-c's 32: 400" \
    "refused '{\"model\":\"m1\",$M,\"x\":$deep}'"

# ---- a long context, moved whole ------------------------------------------
big=$(head -c 150000 /dev/zero | tr '\0' 'a')
b="{\"model\":\"m1\",\"messages\":[{\"role\":\"user\",\"content\":\"$big\"}]}"
checkx "a 150 KB body: 200, forwarded byte for byte" \
    '[ "$(send /v1/chat/completions "$b")" = 200 ] && forwarded "$b"'
