#!/bin/sh
# The key lifecycle across the privilege boundary: every kind of bad
# key is refused with 401 in OpenAI's shape, and valid keys keep
# working after each; revoke, rotate and expiry take effect at once.
. "$(dirname "$0")/lib.sh"

plan 39

check "suite starts" suite_start
F="$FLM -D $STATE"
PORT=$($F proxy start --port 0 --json | jq .port)
URL=http://127.0.0.1:$PORT/v1/models
GOOD=$($F api-keys create --label good --json | jq -r .key)
GOOD_ID=$(echo "$GOOD" | cut -d_ -f2)

good_works() { [ "$(http_code "$URL" -H "Authorization: Bearer $GOOD")" = 200 ]; }
check "the good key works" good_works

# refused DESC HEADER...: 401, OpenAI's error shape, and GOOD still works.
refused() {
	desc=$1
	shift
	out=$(curl -s -m 5 -w '\n%{http_code}' "$@" "$URL")
	code=$(echo "$out" | tail -n 1)
	body=$(echo "$out" | sed '$d')
	check "$desc: 401 (got $code)" [ "$code" = 401 ]
	checkx "$desc: OpenAI error JSON, then the good key still works" \
	    'json_has "$body" ".error.message and .error.type" && good_works'
}

refused "no Authorization header"
refused "wrong scheme" -H "Authorization: Basic $(printf 'user:pass' | base64)"
refused "empty token" -H "Authorization: Bearer "
refused "malformed token" -H "Authorization: Bearer not-a-key"
refused "unknown id" \
    -H "Authorization: Bearer flm_0123456789abcdef_$(printf 'A%.0s' $(seq 43))"
case $GOOD in *A) WRONG=${GOOD%?}B ;; *) WRONG=${GOOD%?}A ;; esac
refused "wrong secret" -H "Authorization: Bearer $WRONG"
refused "a 16 KiB token" \
    -H "Authorization: Bearer $(head -c 16384 /dev/zero | tr '\0' x)"
refused "SQL in the token" -H "Authorization: Bearer ' OR '1'='1"
refused "non-UTF-8 bytes" -H "$(printf 'Authorization: Bearer flm_\377\376\375')"

# Revoked: refused on its very next request, though proxyd had it cached.
R=$($F api-keys create --label revokeme --json | jq -r .key)
http_code "$URL" -H "Authorization: Bearer $R" >/dev/null
$F api-keys revoke revokeme >/dev/null
check "a revoked key is refused on its very next request" \
    [ "$(http_code "$URL" -H "Authorization: Bearer $R")" = 401 ]
check "revoking it again says so" \
    sh -c "$F api-keys revoke revokeme 2>&1 | grep -q 'already revoked'"

# Expired.
E=$($F api-keys create --label shortlived --expires 2s --json | jq -r .key)
check "a key with --expires works before" \
    [ "$(http_code "$URL" -H "Authorization: Bearer $E")" = 200 ]
sleep 2.2
check "and is refused after it expires" \
    [ "$(http_code "$URL" -H "Authorization: Bearer $E")" = 401 ]
check "a date in the past is refused" \
    sh -c "! $F api-keys create --label past --expires 2001-01-01 2>/dev/null"
check "a nonsense --expires is refused" \
    sh -c "! $F api-keys create --label x --expires soon 2>/dev/null"

# Rotation with a grace window.
OLD=$($F api-keys create --label rotating --json | jq -r .key)
http_code "$URL" -H "Authorization: Bearer $OLD" >/dev/null
NEW=$($F api-keys rotate rotating --grace 2s --json | jq -r .key)
check "rotation keeps the id" [ "$(echo "$NEW" | cut -d_ -f2)" = "$(echo "$OLD" | cut -d_ -f2)" ]
check "the new secret works" \
    [ "$(http_code "$URL" -H "Authorization: Bearer $NEW")" = 200 ]
check "the old secret works within the grace window" \
    [ "$(http_code "$URL" -H "Authorization: Bearer $OLD")" = 200 ]
sleep 2.2
check "the old secret is refused after the grace window" \
    [ "$(http_code "$URL" -H "Authorization: Bearer $OLD")" = 401 ]
N2=$($F api-keys rotate rotating --json | jq -r .key)
checkx "rotation without grace ends the previous secret at once" \
    '[ "$(http_code "$URL" -H "Authorization: Bearer $NEW")" = 401 ] &&
    [ "$(http_code "$URL" -H "Authorization: Bearer $N2")" = 200 ]'

list=$($F api-keys list --json)
checkx "list shows states and never a hash or secret" \
    'json_has "$list" "[.[].state] == [\"active\",\"revoked\",\"expired\",\"active\"]" &&
    ! echo "$list" | grep -q -e argon2 -e "${GOOD#flm_*_}" -e "${N2#flm_*_}"'
tty=$(script -qc "$F api-keys list" /dev/null)
check "list prints a table on a terminal" \
    sh -c 'echo "$1" | grep -q "^$2 *good *active"' sh "$tty" "$GOOD_ID"

used() { [ "$($F api-keys list --json | jq -r '.[0].last_used_at')" != null ]; }
check "last_used_at is recorded (in batches)" wait_until 20000 used

found=0
for k in "$GOOD" "$N2" "$NEW" "$OLD" "$R" "$E"; do
	s=${k#flm_*_}
	if grep -r -a -F -q -- "$s" "$STATE"; then
		diag "found secret $s"
		found=1
	fi
done
check "no key text anywhere under the state directory" [ $found = 0 ]

out=$($F proxy start --port 0 --bind 0.0.0.0 --bench-no-auth 2>&1)
check "--bench-no-auth refuses a non-loopback address" \
    sh -c 'echo "$1" | grep -q "loopback only"' sh "$out"
out=$($F proxy status --json)
check "proxy status shows key checks on" json_has "$out" '.[0].key_checks == "on"'

# A flood of bad keys from one address is throttled; cached keys are not.
i=0
while [ $i -lt 25 ]; do
	http_code "$URL" -H "Authorization: Bearer $WRONG" >/dev/null
	i=$((i + 1))
done
hdr=$(curl -s -D - -o /dev/null -H "Authorization: Bearer $WRONG" "$URL")
check "repeated failures from one address get 429 with Retry-After" \
    sh -c 'echo "$1" | grep -q "^HTTP/1.1 429" && echo "$1" | grep -qi "^Retry-After: [0-9]"' sh "$hdr"
check "a cached valid key from that address still works" good_works
