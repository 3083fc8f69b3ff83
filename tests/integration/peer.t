#!/bin/sh
# flm-keyd faces flm-proxyd, the less privileged peer: garbage or a
# malformed request on their channel is refused and logged, proxyd is
# restarted, and keyd carries on.
. "$(dirname "$0")/lib.sh"

plan 26

WRAP=$(mktemp -d "${TMPDIR:-/tmp}/flmw.XXXXXX")
trap 'suite_cleanup; rm -rf "$WRAP"' EXIT

# fake_proxyd NAME BYTES: a proxyd that first sends BYTES to keyd on
# descriptor 4, then (next start) is the real one.
fake_proxyd() {
	cat >"$WRAP/$1" <<EOS
#!/bin/sh
if [ ! -e "$WRAP/$1.sent" ]; then
	: >"$WRAP/$1.sent"
	printf '$2' >&4
	exec sleep 30
fi
exec "$PROXYD" "\$@"
EOS
	chmod +x "$WRAP/$1"
}
fake_proxyd garbage 'GET / HTTP/1.1\r\nHost: keyd\r\n\r\n'
# HELLO from proxyd (proto 1, proc 3, "x"), then a KEY_VERIFY of 4 bytes.
fake_proxyd short "$HELLO_PROXYD"'\074\000\000\000\024\000\000\000\000\000\000\000\000\000\000\000\001\000\000\000'

# fake_proxyd_file NAME FILE: the same with the bytes of FILE.
fake_proxyd_file() {
	cat >"$WRAP/$1" <<EOS
#!/bin/sh
if [ ! -e "$WRAP/$1.sent" ]; then
	: >"$WRAP/$1.sent"
	cat "$2" >&4
	exec sleep 30
fi
exec "$PROXYD" "\$@"
EOS
	chmod +x "$WRAP/$1"
}
# zeros N: N NUL bytes.
zeros() { head -c "$1" /dev/zero; }
# An AUDIT_BATCH (67) that says 2 records but carries 1 (16 + 12 + 304).
{ printf "$HELLO_PROXYD"
  printf '\103\000\000\000\114\001\000\000'; zeros 8
  printf '\001'; zeros 7; printf '\002\000\000\000'
  printf '\001\000\000\000\001\000\000\000'; zeros 296
} >"$WRAP/shortbatch.bin"
fake_proxyd_file shortbatch "$WRAP/shortbatch.bin"
# One whole record of this version, but with status 42 and no time.
{ printf "$HELLO_PROXYD"
  printf '\103\000\000\000\114\001\000\000'; zeros 8
  printf '\001'; zeros 7; printf '\001\000\000\000'
  printf '\002\000\000\000\001\000\000\000'; zeros 16
  printf '\052\000\000\000'; zeros 276
} >"$WRAP/badrecord.bin"
fake_proxyd_file badrecord "$WRAP/badrecord.bin"

for kind in garbage short shortbatch badrecord; do
	check "suite starts with a $kind-sending proxyd" \
	    suite_start FLM_PROXYD_PATH="$WRAP/$kind"
	keyd=$(proc_pid flm-keyd)
	refused() { grep -q 'flm-keyd.*channel to flm-proxyd' "$STATE/flmd.log"; }
	check "keyd refuses and logs the $kind" wait_until 2000 refused
	restarted() { [ "$(proc_field flm-proxyd restarts)" -ge 1 ]; }
	check "flmd restarts proxyd on keyd's word" wait_until 2000 restarted
	check "keyd itself lives on (pid $keyd)" \
	    [ "$(proc_pid flm-keyd)" = "$keyd" ]
	case $kind in *batch|*record)
		check "keyd names what was wrong with the $kind" \
		    grep -q 'flm-keyd.*malformed \(AUDIT_BATCH\|audit record\)' \
		    "$STATE/flmd.log"
		check "and wrote nothing of the $kind to the audit trail" \
		    [ "$(sqlite3 "$STATE/keyd/security.db" \
		    'SELECT count(*) FROM audit_logs')" = 0 ] ;;
	esac
	suite_stop
	rm -rf "$STATE"
	STATE=
done

# flmd, root in system mode, faces proxyd too: verdicts missing their
# members (here no "kind") are refused, proxyd restarted, flmd unharmed.
payload='[{"id":"x","state":"NotFound"}]'
len=$((16 + ${#payload}))
cat >"$WRAP/badstate" <<EOS
#!/bin/sh
if [ ! -e "$WRAP/badstate.sent" ]; then
	: >"$WRAP/badstate.sent"
	printf '$HELLO_PROXYD' >&3
	printf '\036\000\000\000\\$(printf '%03o' $len)\000\000\000\000\000\000\000\000\000\000\000' >&3
	printf '%s' '$payload' >&3
	exec sleep 30
fi
exec "$PROXYD" "\$@"
EOS
chmod +x "$WRAP/badstate"
check "suite starts with a proxyd sending a malformed ENGINES_STATE" \
    suite_start FLM_PROXYD_PATH="$WRAP/badstate"
named() { grep -q 'flm-proxyd.*malformed ENGINES_STATE' "$STATE/flmd.log"; }
check "flmd refuses it and says so" wait_until 2000 named
check "flmd lives on and proxyd was restarted" \
    sh -c "kill -0 $FLMD_PID && [ \"\$(\"$FLM\" -D \"$STATE\" status --json | jq '.processes[2].restarts')\" -ge 1 ]"
suite_stop
rm -rf "$STATE"
STATE=

# A reply type that is keyd's (DB_STATE, 5), sent by proxyd: refused.
payload='{"db":"x"}'
len=$((16 + ${#payload}))
cat >"$WRAP/notmine" <<EOS
#!/bin/sh
if [ ! -e "$WRAP/notmine.sent" ]; then
	: >"$WRAP/notmine.sent"
	printf '$HELLO_PROXYD' >&3
	printf '\005\000\000\000\\$(printf '%03o' $len)\000\000\000\000\000\000\000\000\000\000\000' >&3
	printf '%s' '$payload' >&3
	exec sleep 30
fi
exec "$PROXYD" "\$@"
EOS
chmod +x "$WRAP/notmine"
check "suite starts with a proxyd sending keyd's DB_STATE" \
    suite_start FLM_PROXYD_PATH="$WRAP/notmine"
notmine() { grep -q 'flm-proxyd.*malformed DB_STATE' "$STATE/flmd.log"; }
check "flmd refuses it and says so" wait_until 2000 notmine
check "flmd lives on and proxyd was restarted" \
    sh -c "kill -0 $FLMD_PID && [ \"\$(\"$FLM\" -D \"$STATE\" status --json | jq '.processes[2].restarts')\" -ge 1 ]"
