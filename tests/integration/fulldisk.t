#!/bin/sh
# A full disk: writes fail with a clear error, nothing stored is lost,
# and everything works again once there is room.  Needs root (tmpfs).
. "$(dirname "$0")/lib.sh"

if [ "$(id -u)" != 0 ]; then
	echo "1..0 # SKIP needs root to mount a small tmpfs"
	exit 0
fi
MNT=$(mktemp -d "${TMPDIR:-/tmp}/flmfull.XXXXXX")
if ! mount -t tmpfs -o size=6m tmpfs "$MNT" 2>/dev/null; then
	rmdir "$MNT"
	echo "1..0 # SKIP cannot mount tmpfs here"
	exit 0
fi
LOGDIR=$(mktemp -d "${TMPDIR:-/tmp}/flmlog.XXXXXX")
# The children leave a moment after flmd: retry, then detach lazily.
unmount() {
	i=0
	until umount "$MNT" 2>/dev/null; do
		i=$((i + 1))
		if [ $i -ge 50 ]; then
			umount -l "$MNT"
			break
		fi
		sleep 0.1
	done
	rmdir "$MNT"
}
trap 'suite_cleanup; unmount; rm -rf "$LOGDIR"' EXIT

plan 12

STATE=$MNT/state
mkdir -m 0700 "$STATE"
"$FLMD" -d -D "$STATE" >"$LOGDIR/flmd.log" 2>&1 &
FLMD_PID=$!
check "suite starts on a small file system" wait_until 5000 all_running
F="$FLM -D $STATE"
PORT=$(free_port)
URL=http://127.0.0.1:$PORT/v1/models
K1=$($F api-keys create --label before --json | jq -r .key)
$F proxy start --port "$PORT" >/dev/null
check "a key made before the disk fills works" \
    [ "$(http_code "$URL" -H "Authorization: Bearer $K1")" = 200 ]

rows() { sqlite3 -cmd '.timeout 3000' "$STATE/keyd/security.db" \
    'SELECT count(*) FROM audit_logs'; }
rows_are() { [ "$(rows)" = "$1" ]; }
wait_until 3000 rows_are 1
POLICY=$($F security policy show --json | jq -c .policy)

dd if=/dev/zero of="$MNT/filler" bs=4k >/dev/null 2>&1
out=$(echo '{"ip_allowlist": ["127.0.0.0/8"]}' | $F security policy set 2>&1)
rc=$?
check "a policy change on a full disk fails, saying why (rc $rc)" \
    sh -c "[ $rc -eq 1 ] && echo \"\$1\" | grep -q 'disk is full'" sh "$out"
check "and the policy in force is the one stored before" \
    [ "$($F security policy show --json | jq -c .policy)" = "$POLICY" ]
for i in 1 2 3; do http_code "$URL" -H "Authorization: Bearer $K1" >/dev/null; done
out=$($F api-keys create --label during 2>&1)
rc=$?
check "creating a key on a full disk fails (rc $rc)" [ $rc -eq 1 ]
check "and says the disk is full" \
    sh -c "echo \"\$1\" | grep -q 'disk is full'" sh "$out"
check "the earlier key still works" \
    [ "$(http_code "$URL" -H "Authorization: Bearer $K1")" = 200 ]

rm -f "$MNT/filler"
# Five requests in all were answered before the disk had room again.
check "their audit records, held by proxyd, are written once there is room" \
    wait_until 5000 rows_are 5
checkx "and the trail verifies" \
    'json_has "$($F audit verify --json)" ".ok == true and .rows == 5"'
K2=$($F api-keys create --label after --json 2>/dev/null | jq -r .key)
check "with room again a key can be created" \
    [ "$(http_code "$URL" -H "Authorization: Bearer $K2")" = 200 ]
check "both keys are stored, the failed one is not" \
    [ "$(sqlite3 "$STATE/keyd/security.db" \
    'SELECT group_concat(label) FROM (SELECT label FROM api_keys ORDER BY label)')" = "after,before" ]
check "and the request with the new key is recorded too (6 rows)" \
    wait_until 3000 rows_are 6
if [ "$T_FAILED" -gt 0 ]; then diag "$(cat "$LOGDIR/flmd.log")"; fi
suite_stop
