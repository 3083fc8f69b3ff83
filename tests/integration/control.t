#!/bin/sh
# The control socket: bad clients lose their connection, never the
# daemon; connections are capped; peers are checked.
. "$(dirname "$0")/lib.sh"

plan 11

check "suite starts" suite_start
SOCK=$STATE/flmd.sock

check "control socket has mode 0660" \
    [ "$(stat -c %a "$SOCK")" = 660 ]
out=$(printf 'garbage that is not a frame at all' | "$UDS_SEND" "$SOCK")
check "a garbage client is disconnected ($out)" [ $? -eq 0 ]
# HELLO with a valid header but a request type nobody knows.
out=$(printf '\001\000\000\000\041\000\000\000\000\000\000\000\000\000\000\000\001\000\000\000\004\000\000\000\005\000\000\0000.1.0\357\356\000\000\020\000\000\000\000\000\000\000\000\000\000\000' \
    | "$UDS_SEND" "$SOCK")
check "an unknown request type disconnects the client ($out)" [ $? -eq 0 ]
check "flmd lives on and answers" all_running
check "the bad clients are named in the log" \
    grep -q 'control: client pid .*unknown request type' "$STATE/flmd.log"

closed=$("$UDS_SEND" -n 40 "$SOCK")
check "connections beyond 32 are refused (40 tried, $closed closed)" \
    [ "$closed" = 8 ]
check "a new client is served once the others are gone" all_running

if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
	out=$(setpriv --reuid=65534 --regid=65534 --clear-groups \
	    "$FLM" -D "$STATE" status 2>&1)
	rc=$?
	check "another user cannot reach the socket (rc $rc)" [ $rc -eq 4 ]
	chmod 0777 "$STATE" && chmod 0666 "$SOCK"
	out=$(setpriv --reuid=65534 --regid=65534 --clear-groups \
	    "$FLM" -D "$STATE" status 2>&1)
	rc=$?
	check "SO_PEERCRED refuses another user even with an open socket" \
	    [ $rc -eq 4 ]
	chmod 0660 "$SOCK"
else
	ok "# SKIP needs root to act as another user"
	ok "# SKIP needs root to act as another user"
fi

out=$("$FLMD" -d -D "$STATE" 2>&1)
check "a second flmd on the same state directory refuses to start" \
    sh -c "echo \"\$1\" | grep -q 'already running'" sh "$out"
