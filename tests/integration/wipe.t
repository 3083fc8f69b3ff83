#!/bin/sh
# A new key's text passes through flm-keyd and flmd, a client's bearer
# token through flm-proxyd and flm-keyd (issue 12 item 6): once it has
# been sent on or checked, no copy is left in any of these processes'
# memory, as a debugger reading /proc/PID/mem (tests/mem-grep) would
# find it: not in channel buffers, not in json-c's print or parse
# buffers, not in libevent's buffers, not in the blocks they freed.
# Each path a token takes through proxyd has a key of its own, so a
# count says which path left a copy.
. "$(dirname "$0")/lib.sh"

plan 25

MEMGREP=$top_builddir/tests/mem-grep
RAW=$top_builddir/tests/http-raw
F() { "$FLM" -D "$STATE" "$@"; }

check "suite starts" suite_start
KEY=$(F api-keys create --label a --json | jq -r .key)
NEW=$(F api-keys rotate a --json | jq -r .key)
# The secrets, without the id that is no secret.
S1=$(echo "$KEY" | cut -d_ -f3-)
S2=$(echo "$NEW" | cut -d_ -f3-)
keyd=$(proc_pid flm-keyd)
# The scanner works: it finds what is there (keyd's name, in argv).
if ! n=$("$MEMGREP" "$keyd" flm-keyd 2>/dev/null) || [ "$n" -eq 0 ]; then
	suite_stop
	for d in "a created key's secret is not in flmd's memory" \
	    "nor in flm-keyd's" "a rotated key's secret is not in flmd's memory" \
	    "nor in flm-keyd's" "proxy starts" \
	    "a cut-off head's token is found in flm-proxyd's memory while it waits" \
	    "cold check" "cached uses" "wrong secret" "cut-off head" \
	    "head too large" "keep-alive"; do
		case $d in
		*"'s"*|"proxy starts") ok "$d # SKIP cannot read another process's memory here" ;;
		*)
			ok "$d: answered # SKIP cannot read another process's memory here"
			ok "$d: not in flm-proxyd's memory # SKIP cannot read another process's memory here"
			ok "$d: nor in flm-keyd's # SKIP cannot read another process's memory here"
			;;
		esac
	done
	exit 0
fi
# found PID SECRET: the copies of SECRET in PID's memory, or "?".
found() { "$MEMGREP" "$1" "$2" 2>/dev/null || echo "?"; }
n=$(found "$FLMD_PID" "$S1")
check "a created key's secret is not in flmd's memory (found $n)" [ "$n" = 0 ]
n=$(found "$keyd" "$S1")
check "nor in flm-keyd's (found $n)" [ "$n" = 0 ]
n=$(found "$FLMD_PID" "$S2")
check "a rotated key's secret is not in flmd's memory (found $n)" [ "$n" = 0 ]
n=$(found "$keyd" "$S2")
check "nor in flm-keyd's (found $n)" [ "$n" = 0 ]

# ---- bearer tokens in flm-proxyd -------------------------------------------
PORT=$(F proxy start --port 0 --json | jq .port)
checkx "proxy starts" '[ -n "$PORT" ] && [ "$PORT" != null ]'
URL=http://127.0.0.1:$PORT/v1/models
proxyd=$(proc_pid flm-proxyd)
TMP=$(mktemp -d "${TMPDIR:-/tmp}/flmw.XXXXXX")
trap 'suite_cleanup; rm -rf "$TMP"' EXIT

# newkey LABEL: a key of its own for one path; its secret in SEC.
newkey() {
	K=$(F api-keys create --label "$1" --json | jq -r .key)
	SEC=$(echo "$K" | cut -d_ -f3-)
}
# code [curl args]: the status of GET /v1/models.
code() { http_code "$URL" "$@"; }
# counted DESC SECRET: the points that SECRET is in neither process.
# A copy left behind stays (nothing runs in an idle proxyd that would
# overwrite it), so asking a few times only lets proxyd finish with a
# connection the client has just closed.  (A scan takes a second or
# more under ASan: tries, not milliseconds, are counted.)
counted() {
	for try in 1 2 3 4 5; do
		n=$(found "$proxyd" "$2")
		[ "$n" = 0 ] && break
		sleep 0.2
	done
	check "$1: not in flm-proxyd's memory (found $n)" [ "$n" = 0 ]
	n=$(found "$keyd" "$2")
	check "$1: nor in flm-keyd's (found $n)" [ "$n" = 0 ]
}

# A cold check: keyd's Argon2 says yes (KEY_VERIFY carries the token).
newkey cold
c=$(code -H "Authorization: Bearer $K")
check "cold check: answered (200, got $c)" [ "$c" = 200 ]
counted "cold check: the key's secret" "$SEC"

# Cached uses: proxyd answers from its cache, keyd is not asked.
newkey cached
c1=$(code -H "Authorization: Bearer $K")
c2=$(code -H "Authorization: Bearer $K")
c3=$(code -H "Authorization: Bearer $K")
check "cached uses: answered (200 200 200, got $c1 $c2 $c3)" \
    [ "$c1 $c2 $c3" = "200 200 200" ]
counted "cached uses: the key's secret" "$SEC"

# A wrong secret for a real id: a cold check that fails.
newkey wrong
case $SEC in A*) WS=B${SEC#?} ;; *) WS=A${SEC#?} ;; esac
W=flm_$(echo "$K" | cut -d_ -f2)_$WS
c=$(code -H "Authorization: Bearer $W")
check "wrong secret: answered (401, got $c)" [ "$c" = 401 ]
counted "wrong secret: the wrong secret" "$WS"

# A head cut off after its Authorization line: the client shuts its
# side and proxyd holds the partial head until proxy.header_timeout,
# then answers 408 and closes.  While it waits, the token is there:
# the scanner sees proxyd's heap.
# One scan of a sanitized proxyd takes seconds on a loaded machine:
# the scans go on until 4 s before the timeout, not for a count.
F config set proxy.header_timeout 12 >/dev/null
newkey cut
printf 'GET /v1/models HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nX-' \
    "$K" | "$RAW" -c -t 30000 "$PORT" >"$TMP/cut" 2>/dev/null &
rawpid=$!
until=$(($(date +%s) + 8))
while :; do
	n=$(found "$proxyd" "$SEC")
	[ "$n" != 0 ] || [ "$(date +%s)" -ge "$until" ] && break
	sleep 0.2
done
checkx "a cut-off head's token is found in flm-proxyd's memory while it waits (found $n)" \
    '[ "$n" != "?" ] && [ "$n" -gt 0 ]'
wait "$rawpid"
c=$(head -n 1 "$TMP/cut" | cut -d' ' -f2)
check "cut-off head: answered (408, got $c)" [ "$c" = 408 ]
counted "cut-off head: the key's secret" "$SEC"
F config set proxy.header_timeout 30 >/dev/null

# A head over proxy.max_header_bytes with the token in it: 431, and the
# connection closed.  (A small limit, so the whole head is read before
# the answer: the client then sees it before the close.)
F config set proxy.max_header_bytes 1024 >/dev/null
newkey big
{
	printf 'GET /v1/models HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nX-Big: ' "$K"
	head -c 2000 /dev/zero | tr '\0' a
	printf '\r\n\r\n'
} | "$RAW" -t 5000 "$PORT" >"$TMP/big" 2>/dev/null
c=$(head -n 1 "$TMP/big" | cut -d' ' -f2)
check "head too large: answered (431, got $c)" [ "$c" = 431 ]
counted "head too large: the key's secret" "$SEC"
F config set proxy.max_header_bytes 32768 >/dev/null

# Keep-alive: one connection, several requests (the first a cold check).
newkey alive
out=$(curl -s -m 10 -o /dev/null -o /dev/null -o /dev/null -o /dev/null \
    -w '%{http_code} %{num_connects}\n' -H "Authorization: Bearer $K" \
    "$URL" "$URL" "$URL" "$URL" | tr '\n' ' ')
check "keep-alive: answered (four 200s on one connection, got $out)" \
    [ "$out" = "200 1 200 0 200 0 200 0 " ]
counted "keep-alive: the key's secret" "$SEC"
suite_stop
