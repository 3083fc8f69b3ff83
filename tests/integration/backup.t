#!/bin/sh
# Backups end to end: made, listed, kept to three generations, checked
# against the live state, restored in place and onto a fresh state
# directory (the passphrase kind, the master key lost with it); refused
# whole when tampered with, truncated, extended, of another master key
# or the wrong passphrase; a restore whose commit fails leaves nothing
# staged; a restore that crashed after its commit finishes on the next
# start; no secret in clear anywhere.
. "$(dirname "$0")/lib.sh"

plan 55

TMP=$(mktemp -d "${TMPDIR:-/tmp}/flmb.XXXXXX")
trap 'suite_cleanup; rm -rf "$TMP"' EXIT
PASS='correct horse battery staple'

check "suite starts" suite_start
F="$FLM -D $STATE"
PORT=$($F proxy start --port 0 --json | jq .port)
URL=http://127.0.0.1:$PORT/v1/models
ONE=$($F api-keys create --label one --json | jq -r .key)
works() { [ "$(http_code "$URL" -H "Authorization: Bearer $1")" = 200 ]; }
refused() { [ "$(http_code "$URL" -H "Authorization: Bearer $1")" = 401 ]; }
check "key one works" works "$ONE"

# Some audit rows to carry across.
for i in 1 2 3; do http_code "$URL" -H "Authorization: Bearer $ONE" >/dev/null; done
rows() { $F audit verify --json | jq -r .rows; }
check "the requests reach the audit trail" wait_until 8000 \
    sh -c "[ \"\$($F audit verify --json | jq -r .rows)\" -ge 3 ]"
ROWS=$(rows)

# create, list
B1=$($F backup create --json | jq -r .file)
check "backup create names its file" \
    sh -c "echo '$B1' | grep -Eq '^flm-[0-9]{8}T[0-9.]+Z-manual\.flmbak$'"
check "backup list shows it, sealed with the master key" \
    sh -c "$F backup list --json | jq -e '.[0].file == \"$B1\" and .[0].kind == \"master\" and .[0].bytes > 0' >/dev/null"
BDIR=$STATE/keyd/backups
check "it is keyd's, mode 600" \
    [ "$(stat -c %a "$BDIR/$B1")" = 600 ]
check "the key text is not in the backup in clear" \
    sh -c "! grep -qF '$ONE' '$BDIR/$B1'"
check "nor is any table name (it is sealed, not just compressed)" \
    sh -c "! grep -qa 'api_keys' '$BDIR/$B1'"

# check
check "flm check: the live state matches the newest backup" \
    sh -c "$F check >/dev/null"
TWO=$($F api-keys create --label two --json | jq -r .key)
check "flm check: a key made since is a difference, exit 1" \
    sh -c "! $F check --json >'$TMP/check.json' &&
	jq -e '.ok == false and (.differences | index(\"key two: not expected\"))' '$TMP/check.json' >/dev/null"
$F security cors --origins https://app.example >/dev/null
check "flm check: a policy change is a difference" \
    sh -c "$F check --json | jq -e '[.differences[] | select(startswith(\"policy:\"))] | length == 1' >/dev/null"

# a passphrase backup, kept off the machine
B2=$(printf '%s\n' "$PASS" | $F backup create --passphrase --json | jq -r .file)
check "a passphrase backup is made" [ -s "$BDIR/$B2" ]
cp "$BDIR/$B2" "$TMP/offsite.flmbak"
check "the passphrase is not in it, nor in the logs" \
    sh -c "! grep -qF '$PASS' '$TMP/offsite.flmbak' '$STATE/flmd.log'"
check "a passphrase backup is read only with the passphrase" \
    fails_with "sealed with a passphrase" $F check --against "$TMP/offsite.flmbak"
check "and not with a wrong one" \
    sh -c "printf 'wrong wrong wrong\n' | $F check --passphrase --against '$TMP/offsite.flmbak' 2>&1 | grep -q 'fails authentication'"
check "flm check --against FILE --passphrase: it matches" \
    sh -c "printf '%s\n' '$PASS' | $F check --passphrase --against '$TMP/offsite.flmbak' >/dev/null"

# three generations
$F backup create >/dev/null
$F backup create --reason upgrade >/dev/null
check "three generations are kept: the oldest is gone" \
    sh -c "[ \$(ls '$BDIR' | wc -l) = 3 ] && [ ! -e '$BDIR/$B1' ]"
check "a reason is a word" fails_with "a reason is" \
    $F backup create --reason 'Bad Reason'

# bad files: refused whole, nothing touched
KEYD_PID=$(proc_pid flm-keyd)
cp "$TMP/offsite.flmbak" "$TMP/tampered.flmbak"
SZ=$(stat -c %s "$TMP/tampered.flmbak")
printf 'X' | dd of="$TMP/tampered.flmbak" bs=1 seek=$((SZ / 2)) conv=notrunc 2>/dev/null
check "a tampered backup is refused" sh -c \
    "printf '%s\n' '$PASS' | $F backup restore --passphrase '$TMP/tampered.flmbak' 2>&1 | grep -q 'fails authentication'"
head -c $((SZ - 100)) "$TMP/offsite.flmbak" >"$TMP/short.flmbak"
check "a truncated backup is refused" sh -c \
    "printf '%s\n' '$PASS' | $F backup restore --passphrase '$TMP/short.flmbak' 2>&1 | grep -q 'truncated'"
# cut right after a whole chunk: all that is left authenticates
CH1=$(od -An -tu4 -j104 -N4 "$TMP/offsite.flmbak" | tr -d ' ')
CUT=$((104 + 4 + CH1))
head -c $CUT "$TMP/offsite.flmbak" >"$TMP/chunk.flmbak"
check "a backup cut after a whole chunk is refused as truncated there" sh -c \
    "[ $CUT -lt $SZ ] && printf '%s\n' '$PASS' | $F backup restore --passphrase '$TMP/chunk.flmbak' 2>&1 | grep -q 'truncated: it stops after a whole chunk'"
# sealed again with the key, ending (FINAL) after a record, its END
# record left out, or more: records missing, not "after its end"
printf '%s\n' "$PASS" | "$top_builddir/tests/bk-reseal" "$TMP/offsite.flmbak" "$TMP/noend.flmbak" 1
check "a backup sealed whole but ending before its END record is refused as records missing" sh -c \
    "printf '%s\n' '$PASS' | $F backup restore --passphrase '$TMP/noend.flmbak' 2>&1 | grep -q 'ends before its last record (records missing)'"
{ cat "$TMP/offsite.flmbak"; printf 'more'; } >"$TMP/long.flmbak"
check "a backup with bytes after its end is refused" sh -c \
    "printf '%s\n' '$PASS' | $F backup restore --passphrase '$TMP/long.flmbak' 2>&1 | grep -q 'after its end'"
head -c 4096 /dev/urandom >"$TMP/random.flmbak"
check "a file that is no backup is refused" \
    fails_with "not an FLM backup" $F backup restore "$TMP/random.flmbak"
check "a device is refused" \
    fails_with "a backup is a regular file" $F backup restore /dev/null
check "an unknown name is refused" \
    fails_with "no such backup" $F backup restore flm-nosuch.flmbak
check "after all that, nothing changed: both keys work, keyd never restarted" \
    sh -c "[ '$(proc_pid flm-keyd)' = '$KEYD_PID' ] && [ \"\$($F api-keys list --json | jq length)\" = 2 ]"
check "no staged file is left behind" \
    sh -c "! ls '$STATE/keyd' | grep -q '^restore\.'"

# restore in place: the state of the second backup (before "two" was
# revoked below), the oldest of three, the state replaced kept as one
# more backup, and the backup restored kept too
check "three backups, the one restored below the oldest" \
    sh -c "$F backup list --json | jq -e 'length == 3 and .[-1].file == \"$B2\"' >/dev/null"
$F api-keys revoke two >/dev/null
THREE=$($F api-keys create --label three --json | jq -r .key)
printf '%s\n' "$PASS" | $F backup restore --passphrase "$B2" --json >"$TMP/restore.json" 2>"$TMP/restore.err"
json_true() { jq -e "$1" "$2" >/dev/null; }
check "backup restore NAME answers with what it restored" json_true \
    '.state.keys.count == 2 and .master_key == "unchanged" and (.kept | endswith("-pre-restore.flmbak"))' \
    "$TMP/restore.json"
check "the suite restarts and comes back" wait_until 8000 all_running
check "the restore finished: no marker left" \
    wait_until 5000 test ! -e "$STATE/restore.ready"
check "key two works again (it was restored unrevoked)" wait_until 5000 works "$TWO"
check "key one still works" works "$ONE"
check "key three, made after the backup, is gone" refused "$THREE"
check "audit verify passes and says it was restored" \
    sh -c "$F audit verify --json | jq -e '.ok and (.restored | startswith(\"restored from the backup of\"))' >/dev/null"
check "flm status shows the audit anchor ok" \
    sh -c "$F status --json | jq -e '[.. | .audit_anchor? // empty] | index(\"ok\")' >/dev/null"
KEPT=$(jq -r .kept "$TMP/restore.json")
check "the state replaced is kept as a backup, and holds key three" \
    sh -c "$F check --against '$KEPT' --json | jq -e '.differences | index(\"key three: missing\")' >/dev/null"
check "the backup restored, the oldest, was not pruned for the pre-restore one" \
    sh -c "$F backup list --json | jq -e 'length == 4 and .[-1].file == \"$B2\"' >/dev/null"

# a master-key backup onto another master key: refused
B3=$($F backup create --json | jq -r .file)
check "the next backup prunes it as any other: three again" \
    sh -c "[ \$(ls '$BDIR' | wc -l) = 3 ] && [ ! -e '$BDIR/$B2' ]"
cp "$BDIR/$B3" "$TMP/master.flmbak"
suite_stop
rm -rf "$STATE"
check "a fresh state directory (a new master key) starts" suite_start
F="$FLM -D $STATE"
PORT=$($F proxy start --port 0 --json | jq .port)
URL=http://127.0.0.1:$PORT/v1/models
check "the old key does not work on the fresh suite" refused "$ONE"
check "a backup sealed with the lost master key is refused" \
    fails_with "another master key" $F backup restore "$TMP/master.flmbak"

# a restore whose commit fails at flmd (a directory stands where
# config.db.restore goes): nothing committed, and keyd's staged files,
# the copy of the master key the backup brings among them, go at once
KEYD_PID=$(proc_pid flm-keyd)
nbk() { ls "$STATE/keyd/backups" 2>/dev/null | grep -c '\.flmbak$'; }
NBK=$(nbk)
mkdir "$STATE/config.db.restore"
check "a restore whose commit fails says nothing was restored" sh -c \
    "printf '%s\n' '$PASS' | $F backup restore --passphrase '$TMP/offsite.flmbak' 2>&1 >/dev/null |
	grep -q 'cannot stage config.db: .*nothing was restored'"
check "keyd's staged files, the master key's among them, are removed at once" \
    wait_until 3000 sh -c "! ls '$STATE/keyd' | grep -q '^restore\.'"
check "nothing was committed: no marker, keyd never restarted" \
    sh -c "[ ! -e '$STATE/restore.ready' ] && [ '$(proc_pid flm-keyd)' = '$KEYD_PID' ]"
check "keyd says why they went" \
    grep -q "restore not committed by flmd: its staged files removed" "$STATE/flmd.log"
check "its pre-restore backup, sealed for the key not put in place, is gone too ($NBK before, $(nbk) now)" \
    [ "$(nbk)" = "$NBK" ]
rmdir "$STATE/config.db.restore"

# the passphrase backup restores without the master key; killed right
# after its commit, the restore finishes on the next start
printf '%s\n' "$PASS" | $F backup restore --passphrase "$TMP/offsite.flmbak" \
    >/dev/null 2>&1 &
RPID=$!
wait_until 20000 test -e "$STATE/restore.ready"
kill -KILL "$FLMD_PID" 2>/dev/null
wait "$FLMD_PID" 2>/dev/null
wait $RPID 2>/dev/null
check "flmd was killed with the restore committed" test -e "$STATE/restore.ready"
FLM_PROXY_WORKERS=1 "$FLMD" -d -v -D "$STATE" >>"$STATE/flmd.log" 2>&1 &
FLMD_PID=$!
check "flmd starts again" wait_until 8000 all_running
check "and finishes the restore" wait_until 5000 test ! -e "$STATE/restore.ready"
PORT=$($F proxy status --json | jq '.[0].port')
URL=http://127.0.0.1:$PORT/v1/models
check "the restored proxy serves, and the old key works with it" \
    wait_until 5000 works "$ONE"
check "the audit trail verifies, with the rows it had" \
    sh -c "$F audit verify --json | jq -e '.ok and .rows >= $ROWS' >/dev/null"
check "flm check against the backup: the live state matches it" \
    sh -c "printf '%s\n' '$PASS' | $F check --passphrase --against '$TMP/offsite.flmbak' >/dev/null"
PRE=$($F backup list --json | jq -r '[.[] | select(.reason == "pre-restore")][0].file')
check "the state the key-replacing restore replaced is kept, and opens under the restored key" \
    sh -c "$F check --against '$PRE' --json 2>&1 | jq -e '.differences' >/dev/null"
