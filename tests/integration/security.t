#!/bin/sh
# The security policy end to end (docs/SECURITY_FIREWALL_GUIDE.md):
# flm security ... checks it field by field and changes nothing when it
# refuses one; flm-proxyd enforces the allowlist, CORS, the rate limits
# and the failed-key throttling at once, without a restart; and the
# policy survives the death of flm-keyd and of flm-proxyd.  Clients on
# 127.0.0.2 (curl --interface) are a second address on loopback.
. "$(dirname "$0")/lib.sh"

plan 83

mock_init
mock --flavor vllm
check "suite starts" suite_start
F="$FLM -D $STATE"
$F config set engines.vllm.url "http://127.0.0.1:$MPORT" >/dev/null
KEY=$($F api-keys create --label sec-a --json | jq -r .key)
KEY2=$($F api-keys create --label sec-b --json | jq -r .key)
KEY3=$($F api-keys create --label sec-c --json | jq -r .key)
KEY4=$($F api-keys create --label sec-d --json | jq -r .key)
PORT=$($F proxy start --port 0 --json | jq .port)
U=http://127.0.0.1:$PORT
M=meta-llama/Llama-3.2-1B-Instruct
CHAT="{\"model\":\"$M\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}"
OTHER="--interface 127.0.0.2"

# code URL KEY [curl args]: the status of a GET with that key.
code() {
	u=$1 k=$2
	shift 2
	curl -s -o "$TMP/body" -D "$TMP/head" -m 5 -w '%{http_code}' \
	    -H "Authorization: Bearer $k" "$@" "$u"
}
# chat KEY [curl args]: the status of a chat completion.
chat() {
	k=$1
	shift
	curl -s -o "$TMP/body" -D "$TMP/head" -m 5 -w '%{http_code}' \
	    -H "Authorization: Bearer $k" -H 'Content-Type: application/json' \
	    -d "$CHAT" "$@" "$U/v1/chat/completions"
}
# hdr NAME [FILE]: the value of a header of the last answer, or nothing.
hdr() {
	tr -d '\r' <"${2:-$TMP/head}" | sed -n "s/^$1: *//Ip" | head -n 1
}
# no_acheaders [FILE]: the answer has no Access-Control-* header at all.
no_acheaders() { ! tr -d '\r' <"${1:-$TMP/head}" | grep -qi '^access-control-'; }
# err_is CODE TYPE: the last body is OpenAI's error shape with that code.
err_is() {
	jq -e --arg c "$1" --arg t "$2" '.error | (.message | type == "string")
	    and .type == $t and .param == null and .code == $c' "$TMP/body" \
	    >/dev/null 2>&1
}
# retry_ok [MIN [MAX]]: the last answer's Retry-After is whole seconds.
retry_ok() {
	ra=$(hdr retry-after)
	case $ra in '' | *[!0-9]*) return 1 ;; esac
	[ "$ra" -ge "${1:-1}" ] && [ "$ra" -le "${2:-100000}" ]
}
show() { $F security policy show 2>&1; }
pset() { printf '%s' "$1" | $F security policy set >/dev/null; }
PROXYD_PID=$(proc_pid flm-proxyd)

# ---- 1. validation ------------------------------------------------------------------
DEFAULT=$(show)
checkx "the default policy is loopback only, spelled out" \
    'json_has "$DEFAULT" "(.ip_allowlist == []) and .cors.allowed_origins == []
    and .cors.max_age == 600 and .rate_limit.per_key.requests_per_minute == 0
    and .auth_failures.max == 20 and .auth_failures.window_seconds == 60"'
# Not the defaults, so that "unchanged" cannot pass by accident.
pset '{"cors":{"max_age":321},"auth_failures":{"max":50,"window_seconds":120}}'
BASE=$(show)
check "a valid policy is stored" json_has "$BASE" \
    '.cors.max_age == 321 and .auth_failures.max == 50'

# refused DESC FIELD TEXT / refused_file DESC FIELD FILE: a policy on
# standard input, or in FILE, is refused with exit 1, FIELD in the
# error, nothing on standard output, and the stored policy unchanged.
refused() {
	printf '%s\n' "$3" >"$TMP/in.json"
	refused_run "$1" "$2" "$TMP/in.json" -
}
refused_file() { refused_run "$1" "$2" "$3" "$3"; }
refused_run() {
	desc=$1 want=$2
	before=$(show)
	$F security policy set "$4" <"$3" >"$TMP/out" 2>"$TMP/err"
	rc=$?
	after=$(show)
	checkx "$desc: exit 1, the error names $want, policy unchanged (rc $rc)" \
	    '[ $rc = 1 ] && grep -qF -- "$want" "$TMP/err" && [ ! -s "$TMP/out" ] &&
	    [ "$before" = "$BASE" ] && [ "$after" = "$BASE" ]'
	[ $rc = 1 ] || diag "stderr: $(cat "$TMP/err")"
	# Taken after all: put the base back for the next one.
	[ "$after" = "$BASE" ] || printf '%s' "$BASE" | $F security policy set >/dev/null
}
refused "prefix /33 on IPv4" 'ip_allowlist[0]: "10.0.0.1/33"' \
    '{"ip_allowlist":["10.0.0.1/33"]}'
refused "an octet of 300" 'ip_allowlist[0]: "300.1.1.1"' \
    '{"ip_allowlist":["300.1.1.1"]}'
refused "host bits set (10.0.0.1/8)" 'ip_allowlist[1]: "10.0.0.1/8": host bits' \
    '{"ip_allowlist":["10.0.0.0/8","10.0.0.1/8"]}'
refused "prefix /129 on IPv6" 'ip_allowlist[0]: "::1/129"' \
    '{"ip_allowlist":["::1/129"]}'
refused "not an address at all" 'ip_allowlist[0]: "abc"' \
    '{"ip_allowlist":["abc"]}'
refused "an unknown top-level field" 'firewall: unknown field' \
    '{"ip_allowlist":[],"firewall":true}'
refused "an unknown cors field" 'cors.allowed_origin: unknown field' \
    '{"cors":{"allowed_origin":["https://app.example"]}}'
refused "an unknown field two levels down" 'rate_limit.per_key.rpm: unknown field' \
    '{"rate_limit":{"per_key":{"rpm":10}}}'
refused "ip_allowlist a string, not a list" 'ip_allowlist: expected an array' \
    '{"ip_allowlist":"10.0.0.0/8"}'
refused "max_age a string" 'cors.max_age: expected an integer' \
    '{"cors":{"max_age":"600"}}'
refused "allow_credentials a number" 'cors.allow_credentials: expected true or false' \
    '{"cors":{"allow_credentials":1}}'
refused "requests_per_minute -1" \
    'rate_limit.per_key.requests_per_minute: expected an integer 0-1000000' \
    '{"rate_limit":{"per_key":{"requests_per_minute":-1}}}'
refused "requests_per_minute 1.5" 'rate_limit.per_ip.requests_per_minute: expected an integer' \
    '{"rate_limit":{"per_ip":{"requests_per_minute":1.5}}}'
refused "requests_per_minute 10000001" 'rate_limit.per_key.requests_per_minute: expected an integer' \
    '{"rate_limit":{"per_key":{"requests_per_minute":10000001}}}'
refused "an origin with a path" 'cors.allowed_origins[0]: "https://app.example/chat"' \
    '{"cors":{"allowed_origins":["https://app.example/chat"]}}'
refused "an origin without a scheme" 'cors.allowed_origins[1]: "app.example"' \
    '{"cors":{"allowed_origins":["https://ok.example","app.example"]}}'
refused "credentials with the origin *" 'cors.allow_credentials: cannot be true' \
    '{"cors":{"allowed_origins":["*"],"allow_credentials":true}}'
jq -n '{ip_allowlist: [range(1025) | "10.\(. / 256 | floor).\(. % 256).0/24"]}' \
    >"$TMP/1025.json"
refused_file "1025 CIDRs (from a file)" 'ip_allowlist: 1025 entries; at most 1024' \
    "$TMP/1025.json"
{ printf '{"ip_allowlist":["10.0.0.0/8"'; i=0
  while [ $i -lt 11000 ]; do printf ',"10.0.0.0/8"'; i=$((i + 1)); done
  printf ']}'; } >"$TMP/big.json"
refused_file "a policy of $(($(wc -c <"$TMP/big.json") / 1024)) KiB (over 128 KiB)" \
    '128 KiB' "$TMP/big.json"
refused "not JSON at all" 'not valid JSON' 'ip_allowlist = 10.0.0.0/8'
refused "a JSON array, not an object" 'must be a JSON object' '[{"ip_allowlist":[]}]'

# A policy with fields left out is stored with their defaults, not with
# what they were: it replaces the whole.
cat >"$TMP/part.json" <<'EOF'
{"ip_allowlist": ["::1", "10.1.0.0/16"],
 "cors": {"allowed_origins": ["HTTPS://App.Example:8443"]},
 "rate_limit": {"per_ip": {"tokens_per_minute": 500}}}
EOF
$F security policy set "$TMP/part.json" >"$TMP/out" 2>"$TMP/err"
rc=$?
got=$(show)
checkx "a policy with fields left out: stored with every default spelled out (rc $rc)" \
    '[ $rc = 0 ] && json_has "$got" "
    .ip_allowlist == [\"::1/128\", \"10.1.0.0/16\"] and
    .cors == {allowed_origins: [\"https://app.example:8443\"],
        allowed_methods: [\"GET\", \"POST\"],
        allowed_headers: [\"authorization\", \"content-type\"],
        max_age: 600, allow_credentials: false} and
    .rate_limit == {per_key: {requests_per_minute: 0, tokens_per_minute: 0},
        per_ip: {requests_per_minute: 0, tokens_per_minute: 500}} and
    .auth_failures == {max: 20, window_seconds: 60}"'
check "policy set prints the policy as stored" \
    [ "$(cat "$TMP/out")" = "$got" ]
pset '{}'
check "{} is the default policy again" [ "$(show)" = "$DEFAULT" ]

# ---- 2. IP allowlist ------------------------------------------------------------------
checkx "the default allows loopback: 127.0.0.1 and 127.0.0.2 get 200" \
    '[ "$(code "$U/v1/models" "$KEY")" = 200 ] &&
    [ "$(code "$U/v1/models" "$KEY" $OTHER)" = 200 ]'
$F security ip allow 127.0.0.1/32 >/dev/null 2>"$TMP/err"
rc=$?
checkx "ip allow 127.0.0.1/32 (rc $rc) warns that loopback is no longer implied" \
    '[ $rc = 0 ] && grep -q "127.0.0.0/8" "$TMP/err"'
c=$(code "$U/v1/models" "$KEY" $OTHER)
checkx "127.0.0.2 now gets 403 ip_not_allowed in OpenAI's shape (got $c)" \
    '[ "$c" = 403 ] && err_is ip_not_allowed permission_denied'
c=$(code "$U/healthz" "" $OTHER)
check "... on /healthz too (got $c)" [ "$c" = 403 ]
check "127.0.0.1 still gets 200" [ "$(code "$U/v1/models" "$KEY")" = 200 ]
out=$($F security ip allow 127.0.0.1 2>&1)
checkx "ip allow 127.0.0.1 again: already there (the same as /32)" \
    'echo "$out" | grep -q "already in the allowlist" &&
    json_has "$(show)" ".ip_allowlist == [\"127.0.0.1/32\"]"'
checkx "ip deny of an entry not there: exit 1" \
    '! $F security ip deny 127.0.0.2 >/dev/null 2>&1'
$F security ip deny 127.0.0.1/32 >/dev/null 2>&1
rc=$?
checkx "ip deny 127.0.0.1/32 (rc $rc): back to loopback, 127.0.0.2 gets 200 again" \
    '[ $rc = 0 ] && [ "$(code "$U/v1/models" "$KEY" $OTHER)" = 200 ]'
check "all of it without a restart of flm-proxyd (pid $PROXYD_PID)" \
    [ "$(proc_pid flm-proxyd)" = "$PROXYD_PID" ]

if P6=$($F proxy start --port 0 --bind ::1 --json 2>/dev/null | jq -e .port) &&
    [ "$(code "http://[::1]:$P6/v1/models" "$KEY" -g)" = 200 ]; then
	U6=http://[::1]:$P6
	ok "IPv6: a listener on ::1 serves ::1 with the default policy"
	pset '{"ip_allowlist":["::1/128"]}'
	checkx "allowlist ::1/128: ::1 gets 200, 127.0.0.1 gets 403" \
	    '[ "$(code "$U6/v1/models" "$KEY" -g)" = 200 ] &&
	    [ "$(code "$U/v1/models" "$KEY")" = 403 ]'
	pset '{"ip_allowlist":["127.0.0.0/8"]}'
	c=$(code "$U6/v1/models" "$KEY" -g)
	checkx "allowlist 127.0.0.0/8: ::1 gets 403 ip_not_allowed (got $c), 127.0.0.1 200" \
	    '[ "$c" = 403 ] && err_is ip_not_allowed permission_denied &&
	    [ "$(code "$U/v1/models" "$KEY")" = 200 ]'
	pset '{}'
else
	ok "# SKIP no IPv6 on loopback"
	ok "# SKIP no IPv6 on loopback"
	ok "# SKIP no IPv6 on loopback"
fi

# ---- 3. CORS ---------------------------------------------------------------------------
# preflight ORIGIN METHOD [HEADERS]: the status of a preflight, no key.
preflight() {
	o=$1 m=$2
	shift 2
	if [ $# -gt 0 ]; then
		h=$1
		set -- -H "Access-Control-Request-Headers: $h"
	fi
	curl -s -o "$TMP/body" -D "$TMP/head" -m 5 -w '%{http_code}' -X OPTIONS \
	    -H "Origin: $o" -H "Access-Control-Request-Method: $m" "$@" \
	    "$U/v1/chat/completions"
}
APP=https://app.example
EVIL=https://evil.example
$F security cors --origins "$APP" >/dev/null
c=$(preflight "$APP" POST "authorization, content-type")
checkx "preflight from $APP: 204 without a key (got $c)" '[ "$c" = 204 ]'
checkx "... Access-Control-Allow-Origin is exactly the origin, Vary: Origin" \
    '[ "$(hdr access-control-allow-origin)" = "$APP" ] && [ "$(hdr vary)" = Origin ]'
checkx "... Allow-Methods has POST, Allow-Headers authorization, Max-Age 600" \
    'hdr access-control-allow-methods | tr -d " " | tr , "\n" | grep -qx POST &&
    hdr access-control-allow-headers | tr -d " " | tr , "\n" | grep -qix authorization &&
    [ "$(hdr access-control-max-age)" = 600 ]'
c=$(preflight "$EVIL" POST "authorization, content-type")
checkx "preflight from $EVIL: 403 and no Access-Control-* header (got $c)" \
    '[ "$c" = 403 ] && no_acheaders && err_is cors_not_allowed permission_denied'
c=$(preflight "$APP" POST "authorization, x-custom")
checkx "preflight asking for a header not allowed (x-custom): 403, no Access-Control-* (got $c)" \
    '[ "$c" = 403 ] && no_acheaders'
c=$(preflight "$APP" PUT)
checkx "preflight asking for PUT: 403, no Access-Control-* (got $c)" \
    '[ "$c" = 403 ] && no_acheaders'
c=$(code "$U/v1/models" "$KEY" -H "Origin: $APP")
checkx "GET /v1/models from $APP: 200 with ACAO and Expose-Headers (got $c)" \
    '[ "$c" = 200 ] && [ "$(hdr access-control-allow-origin)" = "$APP" ] &&
    hdr access-control-expose-headers | grep -qi retry-after'
c=$(code "$U/v1/models" "$KEY" -H "Origin: $EVIL")
checkx "GET /v1/models from $EVIL: 403 origin_not_allowed, no ACAO (got $c)" \
    '[ "$c" = 403 ] && err_is origin_not_allowed permission_denied && no_acheaders'
c=$(code "$U/v1/models" "$KEY")
checkx "GET /v1/models without Origin: 200, no ACAO (got $c)" \
    '[ "$c" = 200 ] && no_acheaders'
$F security cors --credentials yes >/dev/null
c=$(preflight "$APP" POST authorization)
checkx "with credentials: Allow-Credentials true, ACAO the origin (got $c)" \
    '[ "$c" = 204 ] && [ "$(hdr access-control-allow-credentials)" = true ] &&
    [ "$(hdr access-control-allow-origin)" = "$APP" ]'
before=$(show)
$F security cors --origins '*' >/dev/null 2>"$TMP/err"
rc=$?
checkx "origins * while credentials are on: refused (rc $rc), nothing changed" \
    '[ $rc = 1 ] && grep -q "cors.allow_credentials" "$TMP/err" && [ "$(show)" = "$before" ]'
$F security cors --origins '*' --credentials no >/dev/null
c=$(preflight https://any.example POST)
checkx "origins * without credentials: ACAO * for any origin, no Allow-Credentials (got $c)" \
    '[ "$c" = 204 ] && [ "$(hdr access-control-allow-origin)" = "*" ] &&
    [ -z "$(hdr access-control-allow-credentials)" ]'
$F security cors --origins '' >/dev/null
c=$(code "$U/v1/models" "$KEY" -H "Origin: $APP")
check "origins emptied: every Origin refused again (got $c)" [ "$c" = 403 ]

# ---- 4. rate limits ----------------------------------------------------------------------
# burst N KEY: N requests at once; their status, head and body in $TMP/b.*
burst() {
	i=0 pids=
	while [ $i -lt "$1" ]; do
		curl -s -m 10 -D "$TMP/b.$i.h" -o "$TMP/b.$i.b" -w '%{http_code}' \
		    -H "Authorization: Bearer $2" "$U/v1/models" >"$TMP/b.$i.c" &
		pids="$pids $!"
		i=$((i + 1))
	done
	wait $pids
}
code "$U/v1/models" "$KEY2" >/dev/null	# both keys known to proxyd
out=$($F security rate-limit key --requests 10)
checkx "rate-limit key --requests 10 says so" \
    'echo "$out" | grep -qx "rate_limit.per_key.requests_per_minute = 10"'
t0=$(date +%s%3N)
burst 30 "$KEY"
t1=$(date +%s%3N)
n200=0 n429=0
for f in "$TMP"/b.*.c; do
	case $(cat "$f") in 200) n200=$((n200 + 1)) ;; 429) n429=$((n429 + 1)) ;; esac
done
# A refill of 10/60 a second may land during the burst.
most=$((10 + (t1 - t0) * 10 / 60000))
checkx "30 requests at once: $n200 get 200 (10 to $most), the other $n429 429" \
    '[ "$n200" -ge 10 ] && [ "$n200" -le "$most" ] && [ $((n200 + n429)) = 30 ]'
# At once, before a refill (one token in 6 s) can land: the Retry-After
# checks below run jq per answer, seconds on a loaded machine.
c=$(code "$U/v1/models" "$KEY")
checkx "the first key is still limited (got $c)" '[ "$c" = 429 ] && retry_ok 1 6'
check "a second key has its own bucket: 200" [ "$(code "$U/v1/models" "$KEY2")" = 200 ]
bad=0
for f in "$TMP"/b.*.c; do
	b=${f%.c}
	[ "$(cat "$f")" = 429 ] || continue
	ra=$(hdr retry-after "$b.h")
	case $ra in '' | *[!0-9]*) bad=$((bad + 1)); continue ;; esac
	[ "$ra" -ge 1 ] && jq -e '.error | .type == "rate_limit_error" and
	    .code == "rate_limit_exceeded" and .param == null and
	    (.message | type == "string")' "$b.b" >/dev/null 2>&1 ||
	    bad=$((bad + 1))
done
checkx "each 429 has Retry-After >= 1 and rate_limit_exceeded in OpenAI's shape ($bad bad)" \
    '[ "$n429" -gt 0 ] && [ $bad = 0 ]'
$F security rate-limit key --requests 0 >/dev/null
check "requests back to 0: the key gets 200 at once" \
    [ "$(code "$U/v1/models" "$KEY")" = 200 ]

$F security rate-limit ip --requests 5 >/dev/null
codes=
for i in 1 2 3 4 5 6; do codes="$codes $(code "$U/v1/models" "$KEY")"; done
checkx "rate-limit ip --requests 5: from 127.0.0.1 five 200, then 429 (got$codes)" \
    '[ "$codes" = " 200 200 200 200 200 429" ] && err_is rate_limit_exceeded rate_limit_error &&
    retry_ok 1 12'
check "... /healthz takes from the same bucket: 429" \
    [ "$(code "$U/healthz" "")" = 429 ]
check "127.0.0.2 has its own bucket: 200" [ "$(code "$U/v1/models" "$KEY" $OTHER)" = 200 ]
$F security rate-limit ip --requests 0 >/dev/null
check "per-IP requests back to 0: 127.0.0.1 gets 200 at once" \
    [ "$(code "$U/v1/models" "$KEY")" = 200 ]

# Tokens: the mock's usage for this chat, with no limit in force.
c=$(chat "$KEY3")
T=$(jq '.usage.prompt_tokens + .usage.completion_tokens' "$TMP/body")
checkx "a chat reports its usage ($T tokens)" '[ "$c" = 200 ] && [ "${T:-0}" -gt 0 ]'
# A bucket of 3T - 1: three chats pass (the third takes it below zero),
# the fourth waits for a refill of 60 / (3T - 1) s a token.
N=$((3 * T - 1))
$F security rate-limit key --tokens "$N" >/dev/null
codes=
for i in 1 2 3 4; do codes="$codes $(chat "$KEY3")"; done
checkx "rate-limit key --tokens $N: three chats pass, the fourth 429 (got$codes)" \
    '[ "$codes" = " 200 200 200 429" ] && err_is rate_limit_exceeded rate_limit_error && retry_ok 1'
# The first key's bucket was made while only a request limit was in
# force; a token limit set later must give it a full burst too.
codes=
for i in 1 2 3; do codes="$codes $(chat "$KEY")"; done
checkx "a key whose bucket was made under a request limit gets the whole token burst (got$codes)" \
    '[ "$codes" = " 200 200 200" ]'
$F security rate-limit key --tokens 0 >/dev/null
check "tokens back to 0: the limited key gets 200 at once" [ "$(chat "$KEY3")" = 200 ]

# ---- 5. failed-key throttling -------------------------------------------------------------
pset '{"auth_failures":{"max":3,"window_seconds":60}}'
case $KEY in *A) WRONG=${KEY%?}B ;; *) WRONG=${KEY%?}A ;; esac
codes="$(code "$U/v1/models" flm_nope) $(code "$U/v1/models" "$WRONG")"
codes="$codes $(code "$U/v1/models" "$WRONG")"
check "auth_failures max 3: three wrong keys get 401 (got $codes)" \
    [ "$codes" = "401 401 401" ]
c=$(code "$U/v1/models" "$KEY4")
checkx "then a good key not yet verified gets 429 too_many_failed_auth (got $c)" \
    '[ "$c" = 429 ] && err_is too_many_failed_auth rate_limit_error && retry_ok 1 60'
c=$(code "$U/v1/models" "$WRONG")
check "... and so does a wrong key (got $c)" [ "$c" = 429 ]
check "a key verified earlier is still served" [ "$(code "$U/v1/models" "$KEY")" = 200 ]
check "127.0.0.2 is not throttled: the new key gets 200" \
    [ "$(code "$U/v1/models" "$KEY4" $OTHER)" = 200 ]
pset '{}'
c=$(code "$U/v1/models" "$WRONG")
check "max back to 20: a wrong key gets 401 again, not 429 (got $c)" [ "$c" = 401 ]

# ---- 6. persistence -------------------------------------------------------------------------
pset '{"ip_allowlist":["127.0.0.1/32"],"cors":{"allowed_origins":["https://app.example"]}}'
check "the allowlist is in force: 127.0.0.2 gets 403" \
    [ "$(code "$U/healthz" "" $OTHER)" = 403 ]
KEYD_PID=$(proc_pid flm-keyd)
kill -KILL "$KEYD_PID"
keyd_back() { all_running && [ "$(proc_pid flm-keyd)" != "$KEYD_PID" ]; }
check "flmd restarts flm-keyd after SIGKILL" wait_until 5000 keyd_back
# (A keyd still starting may answer "try again".)
stored() { json_has "$(show)" '.ip_allowlist == ["127.0.0.1/32"]'; }
check "the policy is still stored" wait_until 5000 stored
checkx "proxyd still enforces it: 127.0.0.2 403, 127.0.0.1 200 with a key" \
    '[ "$(code "$U/healthz" "" $OTHER)" = 403 ] &&
    [ "$(code "$U/v1/models" "$KEY")" = 200 ]'
check "flm-proxyd was not restarted" [ "$(proc_pid flm-proxyd)" = "$PROXYD_PID" ]
kill -KILL "$PROXYD_PID"
proxyd_back() { all_running && [ "$(proc_pid flm-proxyd)" != "$PROXYD_PID" ]; }
check "flmd restarts flm-proxyd after SIGKILL" wait_until 5000 proxyd_back
other_refused() { [ "$(code "$U/healthz" "" $OTHER)" = 403 ]; }
check "the new flm-proxyd is given the stored policy: 127.0.0.2 gets 403" \
    wait_until 3000 other_refused
c=$(preflight "$APP" POST)
checkx "... and its CORS rules: a preflight from $APP gets 204 (got $c)" \
    '[ "$c" = 204 ] && [ "$(hdr access-control-allow-origin)" = "$APP" ]'
check "127.0.0.1 with a key: 200" [ "$(code "$U/v1/models" "$KEY")" = 200 ]
check "two restarts in all: the two children killed" \
    [ "$(status_json | jq '[.processes[] | .restarts // 0] | add')" = 2 ]
suite_stop
env "$FLMD" -d -v -D "$STATE" >>"$STATE/flmd.log" 2>&1 &
FLMD_PID=$!
wait_until 5000 all_running
home_served() { [ "$(code "$U/v1/models" "$KEY")" = 200 ]; }
wait_until 3000 home_served
checkx "after a restart of flmd: 127.0.0.1 served, 127.0.0.2 refused" \
    'home_served && wait_until 3000 other_refused'
