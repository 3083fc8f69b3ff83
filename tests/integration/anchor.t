#!/bin/sh
# The audit chain's anchor outside security.db (issue 12 item 4b): a
# security.db restored from an older copy, or one whose audit rows and
# head were all deleted, starts a chain that verifies by itself; keyd
# holds it against audit.anchor and says "rollback or deletion detected"
# in its log, in flm status and in flm audit verify (exit 1).
. "$(dirname "$0")/lib.sh"

plan 15

F() { "$FLM" -D "$STATE" "$@"; }
DB() { sqlite3 "$STATE/keyd/security.db" "$@"; }
logged() { grep -q "$1" "$STATE/flmd.log"; }
integrity() { status_json | jq -r ".processes[1].database.integrity.$1"; }
# traffic N TOTAL: N audited requests, and TOTAL rows written.
traffic() {
	i=0
	while [ $i -lt "$1" ]; do
		curl -s -o /dev/null -H "Authorization: Bearer $KEY" \
		    "http://127.0.0.1:$PORT/v1/models"
		i=$((i + 1))
	done
	wait_until 3000 sh -c "[ \"\$(sqlite3 '$STATE/keyd/security.db' \
	    'SELECT max(id) FROM audit_logs')\" = $2 ]"
}
verify() { F audit verify --json 2>/dev/null; }
# tty_verify: flm audit verify as a terminal shows it.
tty_verify() { script -qc "$FLM -D $STATE audit verify" /dev/null; }

# 1. Every audit row and the head deleted (the triggers dropped first).
PORT=$(free_port)
check "suite starts" suite_start
F proxy start --port "$PORT" >/dev/null
KEY=$(F api-keys create --label k --json | jq -r .key)
traffic 3 3
checkx "a fresh trail verifies, from genesis row 1, with nothing it cannot rule out" \
    'json_has "$(verify)" ".ok == true and .genesis.id == 1 and
    .anchor.state == \"ok\" and .anchor.since_id == 0 and
    (has(\"warning\") | not)"'
suite_stop
check "keyd keeps its anchor in its own directory" \
    grep -q '^flm-audit-anchor-2 3 ' "$STATE/keyd/audit.anchor"
DB "DROP TRIGGER audit_logs_no_delete; DELETE FROM audit_logs;
    DELETE FROM audit_head; DELETE FROM sqlite_sequence"
suite_restart "$PORT"
check "keyd logs the deletion against its anchor" \
    logged "rollback or deletion detected: anchor at id 3, database at 0"
check "flm status shows it" [ "$(integrity audit_anchor)" = rollback ]
F audit verify >/dev/null 2>&1
rc=$?
checkx "flm audit verify says so and exits 1 (rc $rc)" \
    '[ $rc = 1 ] && tty_verify | grep -q "NOT intact: rollback or deletion detected: anchor at id 3, database at 0"'
traffic 4 4
suite_restart "$PORT"
check "a new chain written on top does not make it go away" \
    [ "$(integrity audit_anchor)" = rollback ]
suite_stop

# 2. An older copy of security.db restored.
rm -rf "$STATE"
check "a fresh suite" suite_start
F proxy start --port "$PORT" >/dev/null
KEY=$(F api-keys create --label k --json | jq -r .key)
traffic 2 2
suite_stop
mkdir "$STATE/copy" && cp "$STATE/keyd/security.db"* "$STATE/copy/"
suite_restart "$PORT"
traffic 2 4
head_logged() { logged "audit head: row 4, link"; }
check "keyd sends the head to the log" wait_until 12000 head_logged
suite_stop
rm -f "$STATE/keyd/security.db"*
cp "$STATE/copy/"* "$STATE/keyd/"
suite_restart "$PORT"
check "the restored copy is detected" \
    logged "rollback or deletion detected: anchor at id 4, database at 2"
checkx "flm audit verify fails on it" \
    'json_has "$(verify)" ".ok == false and .problem.kind == \"rollback\""'
check "keyd still serves the keys it has" \
    [ "$(http_code "http://127.0.0.1:$PORT/v1/models" -H "Authorization: Bearer $KEY")" = 200 ]

# 3. The admin, having looked, moves the anchor aside: a new one starts,
# and verify says what it cannot rule out.  The stop drains: the request
# just above is row 3 of the trail.
suite_stop
mv "$STATE/keyd/audit.anchor" "$STATE/anchor.old"
suite_restart "$PORT"
checkx "with a new anchor the trail verifies again (rc 0)" \
    'F audit verify >/dev/null 2>&1'
out=$(tty_verify)
checkx "and says a rollback before it cannot be ruled out" \
    'echo "$out" | grep -q "warning: the anchor was started at row 3 on .*: a rollback before it cannot be ruled out"'
checkx "and reports the genesis" 'echo "$out" | grep -q "^genesis: row 1 of 20"'
suite_stop
