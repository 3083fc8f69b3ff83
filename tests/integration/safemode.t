#!/bin/sh
# A database that is corrupt, locked or from a newer FLM: its owner
# starts in read-only safe mode, says why, refuses writes, and changes
# nothing on disk.
. "$(dirname "$0")/lib.sh"

plan 18

# start_with SETUP: a fresh state directory prepared by SETUP, then flmd.
start_with() {
	STATE=$(mktemp -d "${TMPDIR:-/tmp}/flmt.XXXXXX")
	mkdir -m 0700 "$STATE/keyd"
	"$@"
	"$FLMD" -d -D "$STATE" >"$STATE/flmd.log" 2>&1 9>&- &
	FLMD_PID=$!
	wait_until 8000 all_running
}

stop_and_clean() {
	suite_stop
	rm -rf "$STATE"
}

keyd_db() { status_json | jq -r ".processes[1].database.$1"; }

# 1. security.db is garbage.
corrupt() {
	head -c 8192 /dev/urandom >"$STATE/keyd/security.db"
	cp "$STATE/keyd/security.db" "$STATE/garbage.copy"
}
start_with corrupt
safe() { [ "$(keyd_db safe_mode)" = true ]; }
check "corrupt security.db: keyd runs in safe mode" wait_until 3000 safe
check "flm status says it is corrupt" \
    sh -c "$FLM -D $STATE status --json | grep -q 'corrupt'"
check "the status table on a terminal shows SAFE MODE" \
    sh -c "script -qc '$FLM -D $STATE status' /dev/null | grep -q 'security.db in SAFE MODE'"
out=$("$FLM" -D "$STATE" api-keys create --label x 2>&1)
rc=$?
check "api-keys create is refused with how to recover (rc $rc)" \
    sh -c "[ $rc -eq 1 ] && echo \"\$1\" | grep -q 'safe mode'" sh "$out"
out=$(echo '{"ip_allowlist":["10.0.0.0/8"]}' |
    "$FLM" -D "$STATE" security policy set 2>&1)
rc=$?
check "a policy change is refused with how to recover (rc $rc)" \
    sh -c "[ $rc -eq 1 ] && echo \"\$1\" | grep -q 'safe mode'" sh "$out"
out=$("$FLM" -D "$STATE" audit verify 2>&1)
rc=$?
check "audit verify says the database is corrupt, not intact (rc $rc)" \
    sh -c "[ $rc -eq 1 ] && echo \"\$1\" | grep -q corrupt &&
    ! echo \"\$1\" | grep -q intact" sh "$out"
check "the corrupt file is left byte for byte as it was" \
    cmp -s "$STATE/keyd/security.db" "$STATE/garbage.copy"
stop_and_clean

# 2. security.db locked by another process while it needs its migrations.
locked() {
	sqlite3 "$STATE/keyd/security.db" "CREATE TABLE precious(x);
	    INSERT INTO precious VALUES ('kept');"
	mkfifo "$STATE/hold"
	(sqlite3 "$STATE/keyd/security.db" <"$STATE/hold" >/dev/null 2>&1 &)
	exec 9>"$STATE/hold"
	echo "BEGIN EXCLUSIVE; INSERT INTO precious VALUES ('uncommitted');" >&9
	sleep 0.3
}
start_with locked
safe_locked() { keyd_db reason | grep -q locked; }
check "a locked security.db: safe mode naming the lock" \
    wait_until 9000 safe_locked
exec 9>&-
sleep 0.3
kill -KILL "$(proc_pid flm-keyd)"
unsafe() { [ "$(keyd_db safe_mode)" = false ]; }
check "with the lock gone a restarted keyd migrates and leaves safe mode" \
    wait_until 3000 unsafe
check "what was stored before is still there, nothing more" \
    [ "$(sqlite3 "$STATE/keyd/security.db" 'SELECT group_concat(x) FROM precious')" = kept ]
stop_and_clean

# 3. config.db from a newer FLM.
newer() {
	sqlite3 "$STATE/config.db" "CREATE TABLE schema_migrations (version
	    INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL
	    DEFAULT 'x'); INSERT INTO schema_migrations (version, name)
	    VALUES (99, '099_future');"
}
start_with newer
check "config.db from a newer FLM: flmd in safe mode" \
    [ "$(status_json | jq -r .config_db.safe_mode)" = true ]
check "the status table on a terminal shows config.db in SAFE MODE, and why" \
    sh -c "script -qc '$FLM -D $STATE status' /dev/null |
    grep -q '^flmd: config.db in SAFE MODE (read-only): .*[a-z]'"
out=$("$FLM" -D "$STATE" config set engines.ollama.url http://127.0.0.1:1 2>&1)
check "config set is refused in safe mode" \
    sh -c "echo \"\$1\" | grep -q 'safe mode'" sh "$out"
check "reads still work in safe mode" \
    sh -c "\"$FLM\" -D \"$STATE\" config list --json >/dev/null"
checkx "flm doctor fails config.db, saying safe mode and why" \
    '"$FLM" -D "$STATE" doctor --json | jq -e ".checks[] | select(.name ==
    \"config.db\" and .group == \"databases\") | .status == \"fail\" and
    (.detail | test(\"safe mode \\\\(read-only\\\\)\"))" >/dev/null'
stop_and_clean

# 4. config.db locked by another process while flmd runs: a setting is
# refused after the busy timeout, naming the lock; nothing half-stored.
start_with true
"$FLM" -D "$STATE" config set pools.affinity key >/dev/null
mkfifo "$STATE/hold"
(sqlite3 "$STATE/config.db" <"$STATE/hold" >/dev/null 2>&1 &)
exec 9>"$STATE/hold"
echo "BEGIN EXCLUSIVE; DELETE FROM settings;" >&9
wait_until 3000 sh -c "! sqlite3 '$STATE/config.db' 'BEGIN IMMEDIATE; ROLLBACK;' 2>/dev/null"
check "config set on a locked config.db: refused, naming the lock" \
    fails_with "cannot store pools.policy: the database is locked by another process" \
    "$FLM" -D "$STATE" config set pools.policy priority
exec 9>&-
unlocked() { sqlite3 "$STATE/config.db" 'BEGIN IMMEDIATE; ROLLBACK;' 2>/dev/null; }
wait_until 3000 unlocked
checkx "with the lock gone: nothing of it stored, what was set before kept" \
    '! "$FLM" -D "$STATE" config get pools.policy >/dev/null 2>&1 &&
    "$FLM" -D "$STATE" config get pools.affinity --json | jq -e ".[\"pools.affinity\"] == \"key\"" >/dev/null'
check "and the setting is stored now" \
    "$FLM" -D "$STATE" config set pools.policy priority
stop_and_clean
STATE=
