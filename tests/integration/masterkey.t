#!/bin/sh
# The master key's providers, in order: systemd credentials, the kernel
# keyring, the key file keyd makes on its first start.  The audit chain
# is keyed by it, so flm audit verify tells which key wrote a trail; a
# key file others can read, or one that is not a key, stops keyd.
. "$(dirname "$0")/lib.sh"

plan 16

WRAP=$(mktemp -d "${TMPDIR:-/tmp}/flmk.XXXXXX")
trap 'suite_cleanup; rm -rf "$WRAP"' EXIT
KR=$top_builddir/tests/keyring-run
STATE=$(mktemp -d "${TMPDIR:-/tmp}/flmt.XXXXXX")
F="$FLM -D $STATE"
K1=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
echo "$K1" >"$WRAP/k1"

# start [PREFIX...]: flmd on the same STATE, run through PREFIX.
start() {
	"$@" "$FLMD" -d -v -D "$STATE" >>"$STATE/flmd.log" 2>&1 &
	FLMD_PID=$!
}
up() { start "$@"; wait_until 5000 all_running; }
from() { grep -q "flm-keyd.*master key from $1" "$STATE/flmd.log"; }
verify() { $F audit verify --json 2>/dev/null; }
# traffic: three audited requests, and their rows written.
traffic() {
	for i in 1 2 3; do
		curl -s -o /dev/null -H "Authorization: Bearer $KEY" \
		    "http://127.0.0.1:$PORT/v1/models"
	done
	wait_until 3000 sh -c "[ \"\$(sqlite3 '$STATE/keyd/security.db' \
	    'SELECT count(*) FROM audit_logs')\" -ge $1 ]"
}

if "$KR" flm:probe "$WRAP/k1" true; then
	check "suite starts with the master key in the kernel keyring" \
	    up "$KR" flm:master "$WRAP/k1"
	check "keyd takes it from there" from "the kernel keyring"
	check "and writes no master.key" [ ! -e "$STATE/keyd/master.key" ]
	KEY=$($F api-keys create --label k --json | jq -r .key)
	PORT=$($F proxy start --port 0 --json | jq .port)
	traffic 3
	checkx "the trail it writes verifies" \
	    'json_has "$(verify)" ".ok == true and .rows == 3"'
	suite_stop
else
	for d in "suite starts with the master key in the kernel keyring" \
	    "keyd takes it from there" "and writes no master.key" \
	    "the trail it writes verifies"; do
		ok "$d # SKIP no kernel keyrings here"
	done
	# The same trail from the credentials provider instead.
	mkdir "$WRAP/cred0" && cp "$WRAP/k1" "$WRAP/cred0/flm-master-key"
	up env CREDENTIALS_DIRECTORY="$WRAP/cred0"
	KEY=$($F api-keys create --label k --json | jq -r .key)
	PORT=$($F proxy start --port 0 --json | jq .port)
	traffic 3
	suite_stop
fi

# Without a provider keyd makes a key file: another key.
check "without one, keyd makes master.key" up
check "and says so" from master.key
check "mode 0600" [ "$(stat -c %a "$STATE/keyd/master.key")" = 600 ]
checkx "under another key the trail does not verify: the head's MAC" \
    'json_has "$(verify)" ".ok == false and .problem.kind == \"head\""'
check "flm audit verify says so with exit 1" \
    sh -c "! $F audit verify >/dev/null 2>&1"
suite_stop

# systemd credentials come first, even with master.key there.
mkdir "$WRAP/cred" && cp "$WRAP/k1" "$WRAP/cred/flm-master-key"
check "suite starts with a systemd credential" \
    up env CREDENTIALS_DIRECTORY="$WRAP/cred"
check "keyd takes the credential first" from "systemd credentials"
checkx "under the first key again the trail verifies" \
    'json_has "$(verify)" ".ok == true and .rows == 3"'
suite_stop

# A key file others may read, or one that is no key, stops keyd.
chmod 0644 "$STATE/keyd/master.key"
start
refused() { grep -q "master.key: readable by others" "$STATE/flmd.log"; }
check "a master.key others can read stops keyd, saying why" \
    wait_until 5000 refused
suite_stop
printf 'short' >"$STATE/keyd/master.key"
chmod 0600 "$STATE/keyd/master.key"
# The log from this start on: the runs before left lines of their own.
MARK=$(wc -l <"$STATE/flmd.log")
since() { tail -n "+$((MARK + 1))" "$STATE/flmd.log"; }
start
notkey() { since | grep -q "master.key: expected 64 hex digits"; }
check "a master.key that is not a key stops keyd, saying why" \
    wait_until 5000 notkey
# Not one look at the status, which may fall in the moment a restarted
# keyd runs before it reads the key: flmd restarts keyd, and each one
# refuses the key and exits (flmd saw it die), twice.
gone() {
	[ "$(since | grep -c "master.key: expected 64 hex digits")" -ge 2 ] &&
	    [ "$(since | grep -c "flm-keyd (pid [0-9]*) died after")" -ge 2 ]
}
checkx "keyd is not left running without its key (refused and gone twice)" \
    'wait_until 10000 gone'
suite_stop
check "the key itself is never logged" \
    sh -c "! grep -q '$K1' '$STATE/flmd.log'"
