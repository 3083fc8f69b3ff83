#!/bin/sh
# Files are checked for their owner, not only their mode: a master.key
# or a database another user owns is refused, saying why; a database
# others may read (security.db) or write (config.db) is made private
# again, and that is logged.
. "$(dirname "$0")/lib.sh"

plan 8

F() { "$FLM" -D "$STATE" "$@"; }
keyd_db() { status_json | jq -r ".processes[1].database.$1"; }
# restart: flmd again on the same STATE, its log appended.
restart() {
	suite_stop
	"$FLMD" -d -v -D "$STATE" >>"$STATE/flmd.log" 2>&1 &
	FLMD_PID=$!
}
logged() { grep -q "$1" "$STATE/flmd.log"; }

check "suite starts" suite_start
suite_stop

chmod 0644 "$STATE/keyd/security.db"
chmod 0666 "$STATE/config.db"
restart
check "suite comes up with a security.db of mode 0644" \
    wait_until 5000 all_running
check "keyd made security.db 0600 again, and said so" \
    sh -c "[ \"\$(stat -c %a '$STATE/keyd/security.db')\" = 600 ] &&
    grep -q 'security.db had mode 644; made it 600' '$STATE/flmd.log'"
check "flmd made a world-writable config.db 0644, and said so" \
    sh -c "[ \"\$(stat -c %a '$STATE/config.db')\" = 644 ] &&
    grep -q 'config.db had mode 666; made it 644' '$STATE/flmd.log'"

if [ "$(id -u)" != 0 ]; then
	suite_stop
	for d in "a master.key owned by nobody stops keyd" \
	    "a security.db owned by nobody: keyd refuses it" \
	    "and flm status says who owns it" \
	    "a config.db owned by nobody: flmd refuses it"; do
		ok "$d # SKIP needs root to chown"
	done
	exit 0
fi

suite_stop
chown nobody "$STATE/keyd/master.key"
restart
check "a master.key owned by nobody stops keyd, saying why" \
    wait_until 5000 logged "master.key: owned by uid $(id -u nobody), not by uid 0"
suite_stop
chown 0 "$STATE/keyd/master.key"

chown nobody "$STATE/keyd/security.db"
restart
wait_until 5000 all_running
refused() { [ "$(keyd_db safe_mode)" = true ]; }
check "a security.db owned by nobody: keyd refuses it (safe mode)" \
    wait_until 3000 refused
check "and flm status says who owns it" \
    sh -c "keyd_db() { $FLM -D $STATE status --json | jq -r '.processes[1].database.reason'; };
    keyd_db | grep -q 'owned by uid $(id -u nobody), not by uid 0'"
suite_stop
chown 0 "$STATE/keyd/security.db"

chown nobody "$STATE/config.db"
restart
wait_until 5000 all_running
check "a config.db owned by nobody: flmd refuses it (safe mode)" \
    sh -c "status_json() { $FLM -D $STATE status --json; };
    status_json | jq -e '.config_db.safe_mode == true and
    (.config_db.reason | test(\"owned by uid\"))' >/dev/null"
suite_stop
