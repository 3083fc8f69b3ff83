#!/bin/sh
# Dead children come back within a second; broken ones are restarted
# without taking flmd down; a crash loop is reported, not spun.
. "$(dirname "$0")/lib.sh"

plan 12

check "suite starts" suite_start

for name in flm-keyd flm-proxyd; do
	old=$(proc_pid $name)
	kill -KILL "$old"
	replaced() {
		new=$(proc_pid $name)
		[ -n "$new" ] && [ "$new" != 0 ] && [ "$new" != "$old" ] &&
		    [ "$(proc_field $name state)" = running ]
	}
	check "SIGKILL of $name: a new one runs within 1 s" \
	    wait_until 1000 replaced
	check "$name restart is counted" [ "$(proc_field $name restarts)" = 1 ]
done
check "flmd survived both" pid_alive "$FLMD_PID"
suite_stop

# A keyd that sends garbage once, then behaves.
WRAP=$(mktemp -d "${TMPDIR:-/tmp}/flmw.XXXXXX")
trap 'suite_cleanup; rm -rf "$WRAP"' EXIT
cat >"$WRAP/garbage-keyd" <<EOS
#!/bin/sh
if [ ! -e "$WRAP/sent" ]; then
	: >"$WRAP/sent"
	printf 'this is not a frame, it is garbage' >&3
	exec sleep 30
fi
exec "$KEYD" "\$@"
EOS
# A proxyd that speaks the right framing with the wrong protocol version.
cat >"$WRAP/oldproto-proxyd" <<EOS
#!/bin/sh
if [ ! -e "$WRAP/sent2" ]; then
	: >"$WRAP/sent2"
	# HELLO: type 1, flags 0, len 29, peerid 0, pid 0; proto 99, proc 3, "x"
	printf '\001\000\000\000\035\000\000\000\000\000\000\000\000\000\000\000\143\000\000\000\003\000\000\000\001\000\000\000x' >&3
	exec sleep 30
fi
exec "$PROXYD" "\$@"
EOS
chmod +x "$WRAP/garbage-keyd" "$WRAP/oldproto-proxyd"

check "suite starts with misbehaving children" suite_start \
    FLM_KEYD_PATH="$WRAP/garbage-keyd" FLM_PROXYD_PATH="$WRAP/oldproto-proxyd"
check "garbage from keyd is named in the log" \
    grep -q 'flm-keyd.*bad message length' "$STATE/flmd.log"
check "a wrong protocol version is named in the log" \
    grep -q 'flm-proxyd.*protocol version mismatch' "$STATE/flmd.log"
checkx "both were restarted and flmd lives on" \
    '[ "$(proc_field flm-keyd restarts)" -ge 1 ] &&
    [ "$(proc_field flm-proxyd restarts)" -ge 1 ] && pid_alive "$FLMD_PID"'
suite_stop
rm -rf "$STATE"

# A proxyd that can never start: crash loop, reported.
STATE=$(mktemp -d "${TMPDIR:-/tmp}/flmt.XXXXXX")
FLM_PROXYD_PATH=/bin/false "$FLMD" -d -D "$STATE" >"$STATE/flmd.log" 2>&1 &
FLMD_PID=$!
crashloop() { [ "$(proc_field flm-proxyd state)" = crash-loop ]; }
check "a child that always dies is reported as a crash loop" \
    wait_until 6000 crashloop
n1=$(proc_field flm-proxyd restarts)
sleep 1
n2=$(proc_field flm-proxyd restarts)
check "and is retried with back-off, not spun ($n1 -> $n2 in 1 s)" \
    [ $((n2 - n1)) -le 1 ]
