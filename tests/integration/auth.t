#!/bin/sh
# The first request across the privilege boundary: client -> flm-proxyd
# -> flm-keyd (is this key valid?) -> answer.
. "$(dirname "$0")/lib.sh"

plan 16

check "suite starts" suite_start
F="$FLM -D $STATE"
PORT=$(free_port)
URL=http://127.0.0.1:$PORT/v1/models

out=$($F api-keys create --label ci-key --json)
KEY=$(echo "$out" | jq -r .key)
check "api-keys create prints a key of the documented form" \
    sh -c "echo '$KEY' | grep -Eq '^flm_[0-9a-f]{16}_[A-Za-z0-9_-]{43}\$'"
check "a second key with the same label is refused" \
    sh -c "! $F api-keys create --label ci-key >/dev/null 2>&1"
check "an invalid label is refused" \
    sh -c "! $F api-keys create --label 'bad label!' >/dev/null 2>&1"

out=$($F proxy start --port "$PORT" --json)
check "proxy start on a free port" json_has "$out" ".port == $PORT"
check "a non-loopback bind is refused in local-http mode" \
    sh -c "! $F proxy start --port $((PORT + 1)) --bind 0.0.0.0 2>/dev/null"

check "no token: 401" [ "$(http_code "$URL")" = 401 ]
body=$(curl -s "$URL")
check "401 body has OpenAI's error shape" \
    json_has "$body" '.error.message and .error.type == "invalid_request_error"'
check "the created key: 200" \
    [ "$(http_code "$URL" -H "Authorization: Bearer $KEY")" = 200 ]
case $KEY in *A) WRONG=${KEY%?}B ;; *) WRONG=${KEY%?}A ;; esac
check "a wrong secret with a real id: 401" \
    [ "$(http_code "$URL" -H "Authorization: Bearer $WRONG")" = 401 ]
check "/healthz needs no key" [ "$(http_code http://127.0.0.1:$PORT/healthz)" = 200 ]

# served_within MS: the key works again within MS milliseconds.
served_within() {
	t=$(curl -s -o /dev/null -m 5 -w '%{http_code} %{time_total}' \
	    -H "Authorization: Bearer $KEY" "$URL")
	[ "${t% *}" = 200 ] && awk -v t="${t#* }" -v ms="$1" \
	    'BEGIN { exit !(t * 1000 < ms) }'
}
kill -KILL "$(proc_pid flm-proxyd)"
check "after SIGKILL of flm-proxyd the key is served within 1 s" \
    served_within 1000
kill -KILL "$(proc_pid flm-keyd)"
check "after SIGKILL of flm-keyd the key is served within 1 s" \
    served_within 1000

secret=${KEY#flm_*_}
check "the key's secret is nowhere under the state directory" \
    sh -c "! grep -r -a -F -q -- '$secret' '$STATE'"
check "security.db holds an Argon2id hash for the key" \
    sh -c "sqlite3 '$STATE/keyd/security.db' 'SELECT hash FROM api_keys' |
    grep -q '^\\\$argon2id\\\$v=19\\\$m=19456,t=2,p=1\\\$'"
check "security.db is mode 0600" \
    [ "$(stat -c %a "$STATE/keyd/security.db")" = 600 ]
