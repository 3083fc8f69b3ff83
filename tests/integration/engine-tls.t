#!/bin/sh
# Remote engines over HTTPS (issue 17): engines.ID.url https://… is
# verified against the system's roots, a CA file (engines.ID.ca) or a
# pin of the engine's public key, with SNI and the name checked, kept
# alive over TLS, for probes and requests alike.  A check that fails is
# ErrorNetwork with the reason and a 502, and nothing reaches the
# engine: never a silent downgrade.
. "$(dirname "$0")/lib.sh"

command -v openssl >/dev/null 2>&1 || unavailable "openssl"

plan 34

mock_init
T=$TMP
# A test CA, a rogue one, and engine certificates signed by them.
ca() {
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	    -keyout "$T/$1.key" -out "$T/$1.pem" -days 2 -subj "/CN=$1" \
	    -addext basicConstraints=critical,CA:TRUE \
	    -addext keyUsage=critical,keyCertSign >/dev/null 2>&1
}
# leaf NAME CA SAN: NAME.pem (the certificate, then its CA) and NAME.key.
leaf() {
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	    -keyout "$T/$1.key" -out "$T/$1.csr" -subj "/CN=$1" >/dev/null 2>&1
	printf 'subjectAltName=%s\n' "$3" >"$T/$1.ext"
	openssl x509 -req -in "$T/$1.csr" -CA "$T/$2.pem" -CAkey "$T/$2.key" \
	    -CAcreateserial -days 2 -extfile "$T/$1.ext" \
	    -out "$T/$1.crt" >/dev/null 2>&1
	cat "$T/$1.crt" "$T/$2.pem" >"$T/$1.pem"
}
pin() {
	echo "sha256//$(openssl x509 -in "$1" -noout -pubkey |
	    openssl pkey -pubin -outform der | openssl dgst -sha256 -binary |
	    base64)"
}
ca testca
ca rogue
leaf ip testca IP:127.0.0.1
leaf named testca DNS:localhost
leaf other testca DNS:other.test
leaf fake rogue IP:127.0.0.1

check "suite starts" suite_start
F="$FLM -D $STATE"
KEY=$($F api-keys create --label tls --json | jq -r .key)
PORT=$($F proxy start --port 0 --json | jq .port)
U=http://127.0.0.1:$PORT
set_() { $F config set "$1" "$2" >/dev/null; }
chat() {
	curl -s -m 10 -o "$T/chat.out" -w '%{http_code}' \
	    -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \
	    -d "{\"model\":\"flm://$1/m\",\"messages\":[{\"role\":\"user\",\"content\":\"${2:-hi}\"}]$3}" \
	    "$U/v1/chat/completions"
}
stat() {
	curl -s -m 5 --cacert "$T/testca.pem" "https://127.0.0.1:$1/__mock/stats" |
	    jq -r ".$2"
}

# ---- settings ---------------------------------------------------------------
checkx "engines.ID.url takes https, with or without a port" \
    '$F config set engines.x.url https://gpu.invalid >/dev/null &&
    $F config set engines.x.url https://gpu.invalid:8443/ >/dev/null &&
    ! $F config set engines.x.url ftp://gpu.invalid:21 >/dev/null 2>&1 &&
    ! $F config set engines.x.url https://u@gpu.invalid:1 >/dev/null 2>&1 &&
    ! $F config set engines.x.url https://gpu.invalid:0 >/dev/null 2>&1'
check "engines.ID.ca refuses a relative path" \
    fails_with "expected system, the absolute path" $F config set engines.x.ca ca.pem
printf 'not a certificate\n' >"$T/junk.pem"
check "engines.ID.ca refuses a file with no PEM certificate" \
    fails_with "holds no PEM certificate" $F config set engines.x.ca "$T/junk.pem"
check "engines.ID.ca refuses a file it cannot read" \
    fails_with "cannot read $T/none.pem" $F config set engines.x.ca "$T/none.pem"
check "engines.ID.ca refuses a malformed pin" \
    fails_with "sha256//BASE64" $F config set engines.x.ca sha256//abc
checkx "engines.ID.ca takes system, a CA file and a pin" \
    '$F config set engines.x.ca system >/dev/null &&
    $F config set engines.x.ca "$T/testca.pem" >/dev/null &&
    $F config set engines.x.ca "$(pin "$T/ip.crt")" >/dev/null'

# ---- a CA file, the address checked ----------------------------------------
mock --flavor vllm --models m --tls-cert "$T/ip.pem" --tls-key "$T/ip.key"
P1=$MPORT
PID1=${MOCK_PIDS##* }
set_ engines.gpu.kind vllm
set_ engines.gpu.ca "$T/testca.pem"
set_ engines.gpu.url "https://127.0.0.1:$P1"
detect
check "an https engine verified by its CA: RunningHealthy ($(field gpu state): $(field gpu reason))" \
    [ "$(field gpu state)" = RunningHealthy ]
check "its base_url says https" [ "$(field gpu base_url)" = "https://127.0.0.1:$P1" ]
code=$(chat gpu)
checkx "… 200 with the engine's answer ($code)" \
    '[ "$code" = 200 ] && jq -e ".choices[0].message.content | test(\"mock vllm\")" "$T/chat.out" >/dev/null'
checkx "… and the engine saw it come over TLS" '[ "$(stat $P1 tls_requests)" -ge 1 ]'
c0=$(stat $P1 tls_connections)
for i in 1 2 3 4 5 6; do chat gpu >/dev/null; done
c1=$(stat $P1 tls_connections)
# Each stats call is one connection; a periodic probe at most three more.
checkx "six chats reuse a kept-alive TLS connection ($c0 -> $c1 connections)" \
    '[ $((c1 - c0)) -le 5 ]'
code=$(curl -s -m 10 -o "$T/sse.out" -w '%{http_code}' \
    -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \
    -d '{"model":"flm://gpu/m","stream":true,"messages":[{"role":"user","content":"hi"}]}' \
    "$U/v1/chat/completions")
checkx "a streamed chat over TLS ends with [DONE] ($code)" \
    '[ "$code" = 200 ] && grep -q "data: \[DONE\]" "$T/sse.out"'
long=$(head -c 150000 /dev/zero | tr '\0' 'a')
printf '{"model":"flm://gpu/m","messages":[{"role":"user","content":"%s"}]}' "$long" >"$T/long.json"
code=$(curl -s -m 20 -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $KEY" \
    -H 'Content-Type: application/json' --data-binary "@$T/long.json" "$U/v1/chat/completions")
check "a 150 KB request goes whole over TLS ($code)" [ "$code" = 200 ]

# ---- failed checks: ErrorNetwork, 502, nothing sent ------------------------
n0=$(stat $P1 'by_path["/v1/chat/completions"]')
set_ engines.gpu.ca "$T/rogue.pem"
detect
checkx "the wrong CA: ErrorNetwork ($(field gpu state))" \
    '[ "$(field gpu state)" = ErrorNetwork ]'
checkx "… the reason says the certificate failed ($(field gpu reason))" \
    'field gpu reason | grep -qi "certificate"'
code=$(chat gpu)
checkx "… a chat is 502 engine_tls_failed saying why ($code)" \
    '[ "$code" = 502 ] && jq -e ".error.code == \"engine_tls_failed\" and (.error.message | test(\"Engine gpu: .*certificate\"))" "$T/chat.out" >/dev/null'
set_ engines.gpu.ca system
# A slow probe (the sanitizer build) may time out first: wait for the
# verdict on the certificate itself.
tls_refused() { detect; [ "$(field gpu state)" = ErrorNetwork ] &&
    field gpu reason | grep -qi "certificate\|SSL"; }
wait_until 15000 tls_refused || diag "gpu: $(field gpu state): $(field gpu reason)"
checkx "the system roots, which do not hold the test CA: ErrorNetwork" \
    '[ "$(field gpu state)" = ErrorNetwork ] && [ "$(chat gpu)" = 502 ]'
checkx "… and the engine never got a chat ($n0 before, $(stat $P1 'by_path["/v1/chat/completions"]') after)" \
    '[ "$(stat $P1 "by_path[\"/v1/chat/completions\"]")" = "$n0" ]'

# ---- a pin of the engine's key ---------------------------------------------
set_ engines.gpu.ca "$(pin "$T/ip.crt")"
detect
check "pinned to the engine's key: RunningHealthy ($(field gpu state): $(field gpu reason))" \
    [ "$(field gpu state)" = RunningHealthy ]
check "… and a chat is answered" [ "$(chat gpu)" = 200 ]
# The key changes at the address between two probes: proxyd's own
# client checks the pin on the new connection, before the request.
kill "$PID1"
wait_until 3000 sh -c "! curl -sk -m 1 https://127.0.0.1:$P1/__mock/stats >/dev/null"
mock --flavor vllm --models m --listen "127.0.0.1:$P1" --tls-cert "$T/fake.pem" --tls-key "$T/fake.key"
code=$(chat gpu)
checkx "another key behind the pin: 502 engine_tls_failed naming the key seen ($code)" \
    '[ "$code" = 502 ] && jq -e ".error.code == \"engine_tls_failed\" and (.error.message | test(\"not the pinned one\") and test(\"sha256//\"))" "$T/chat.out" >/dev/null'
checkx "… and that engine never got a chat" \
    '[ "$(curl -s -m 5 -k https://127.0.0.1:$P1/__mock/stats | jq ".by_path[\"/v1/chat/completions\"] // 0")" = 0 ]'
detect
checkx "the next probe says so: ErrorNetwork ($(field gpu reason))" \
    '[ "$(field gpu state)" = ErrorNetwork ] && field gpu reason | grep -q "not the one pinned in engines.gpu.ca"'
checkx "… and a chat is 502 with that reason" \
    '[ "$(chat gpu)" = 502 ] && jq -e ".error.message | test(\"pinned\")" "$T/chat.out" >/dev/null'

# ---- a name: SNI and the name checked --------------------------------------
LH=$(getent ahosts localhost | awk 'NR == 1 { print $1 }')
case $LH in *:*) LHL="[$LH]" ;; *) LHL=$LH ;; esac
mock --flavor vllm --models m --listen "$LHL:0" --tls-cert "$T/named.pem" --tls-key "$T/named.key"
P3=$MPORT
set_ engines.gpu.ca "$T/testca.pem"
set_ engines.gpu.url "https://localhost:$P3"
detect
check "by name, the certificate for that name: RunningHealthy ($(field gpu state): $(field gpu reason))" \
    [ "$(field gpu state)" = RunningHealthy ]
check "… and a chat is answered" [ "$(chat gpu)" = 200 ]
mock --flavor vllm --models m --listen "$LHL:0" --tls-cert "$T/other.pem" --tls-key "$T/other.key"
set_ engines.gpu.url "https://localhost:$MPORT"
detect
checkx "a certificate for another name: ErrorNetwork ($(field gpu reason))" \
    '[ "$(field gpu state)" = ErrorNetwork ] && [ "$(chat gpu)" = 502 ]'

# ---- no TLS there, or no CA any more ----------------------------------------
mock --flavor vllm --models m
set_ engines.gpu.url "https://127.0.0.1:$MPORT"
detect
checkx "https to a plain-HTTP engine: ErrorNetwork, 502 ($(field gpu reason))" \
    '[ "$(field gpu state)" = ErrorNetwork ] && [ "$(chat gpu)" = 502 ]'
checkx "… and the engine answered no chat" \
    '[ "$(curl -s -m 5 http://127.0.0.1:$MPORT/__mock/stats | jq ".by_path[\"/v1/chat/completions\"] // 0")" = 0 ]'
cp "$T/testca.pem" "$T/gone.pem"
set_ engines.gpu.ca "$T/gone.pem"
set_ engines.gpu.url "https://127.0.0.1:$P1"
rm -f "$T/gone.pem"
set_ engines.gpu.kind vllm		# the engine list is sent again
detect
checkx "a CA file removed since: ErrorNetwork saying so ($(field gpu reason))" \
    '[ "$(field gpu state)" = ErrorNetwork ] && field gpu reason | grep -q "cannot read"'
code=$(chat gpu)
checkx "… and a chat is 502 with that reason ($code)" \
    '[ "$code" = 502 ] && jq -e ".error.message | test(\"cannot read\")" "$T/chat.out" >/dev/null'
checkx "flmd's log says why it refused" \
    'grep -q "engines.gpu.ca: cannot read" "$STATE/flmd.log"'
checkx "no key or CA private key in any log or state file" \
    '! grep -rlF -e "$KEY" -e "$(sed -n 2p "$T/testca.key")" "$STATE" >/dev/null 2>&1'
