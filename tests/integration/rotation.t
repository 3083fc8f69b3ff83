#!/bin/sh
# flm security master-key rotate: a new master key under load, with
# every request answered; what the old key sealed (key rows, the TLS
# key, an engine's credential, the audit trail, the backups kept)
# still works after it and after a restart; killed at each step, keyd
# comes back with either the old key or the new, never a mix.
. "$(dirname "$0")/lib.sh"

plan 69

mock_init
T=$TMP
SECRET="eng-$(head -c 18 /dev/urandom | od -An -tx1 | tr -d ' \n')"
mock --flavor vllm --models m --api-key "$SECRET"
MP=$MPORT
check "suite starts" suite_start
F="$FLM -D $STATE"
KEY=$($F api-keys create --label c --json | jq -r .key)
PORT=$($F proxy start --port 0 --json | jq .port)
TPORT=$(free_port)
$F proxy start --bind 127.0.0.1 --port "$TPORT" --mode dev-selfsigned \
    --json >"$T/tls.json"
FP=$(jq -r .certificate.sha256 "$T/tls.json")
U=http://127.0.0.1:$PORT
$F config set engines.gpu.kind vllm >/dev/null
$F config set engines.gpu.url "http://127.0.0.1:$MP" >/dev/null
printf '%s\n' "$SECRET" | $F engines credential set gpu >/dev/null

works() { [ "$(http_code "$U/v1/models" -H "Authorization: Bearer $KEY")" = 200 ]; }
chat() {
	[ "$(curl -s -m 10 -o "$T/chat.out" -w '%{http_code}' \
	    -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \
	    -d '{"model":"flm://gpu/m","messages":[{"role":"user","content":"hi"}]}' \
	    "$U/v1/chat/completions")" = 200 ]
}
served_fp() {
	openssl s_client -connect "127.0.0.1:$TPORT" </dev/null 2>/dev/null |
	    openssl x509 -noout -fingerprint -sha256 2>/dev/null | sed 's/.*=//'
}
verify_ok() {
	$F audit verify --json >"$T/verify.json" 2>&1 &&
	    jq -e '.ok and .problem == null' "$T/verify.json" >/dev/null ||
	    { diag "$(cat "$T/verify.json")"; return 1; }
}
intact() {
	$F status --json | jq -e '.processes[] | select(.name == "flm-keyd") |
	    .database.integrity | .bad_keys == 0 and .policy == "ok" and
	    .audit_anchor == "ok"' >/dev/null
}
segments() { $F audit verify --json | jq -r .key_segments; }
mkey() { cat "$STATE/keyd/master.key"; }

check "before: the key works" works
$F engines detect >/dev/null
check "before: a chat reaches the engine with its credential" wait_until 5000 chat
check "before: the TLS proxy serves its certificate" \
    [ "$(served_fp | tr -d :)" = "$(echo "$FP" | tr -d : | tr a-f A-F)" ]
check "audit rows to carry across" wait_until 8000 \
    sh -c "[ \"\$($F audit verify --json | jq -r .rows)\" -ge 2 ]"
B=$($F backup create --json | jq -r .file)
OLD=$(mkey)

# under load: every request answered
( for i in $(seq 80); do
	http_code "$U/v1/models" -H "Authorization: Bearer $KEY"; echo
done ) >"$T/codes" &
LOAD=$!
sleep 0.2
$F security master-key rotate --json >"$T/rot.json" 2>"$T/rot.err"
wait $LOAD
check "rotate answers what it moved" sh -c "jq -e '.key_rows >= 1 and
    .tls_keys >= 1 and .secrets == 1 and .backups == 1 and
    (.master_key_id | length == 16)' '$T/rot.json' >/dev/null ||
    { cat '$T/rot.json' '$T/rot.err'; false; }"
check "every request during the rotation was answered 200 ($(sort "$T/codes" | uniq -c | tr '\n' ' '))" \
    sh -c "[ \$(grep -c '^200$' '$T/codes') = 80 ]"
check "master.key holds a new key, mode 600" \
    sh -c "[ '$(mkey)' != '$OLD' ] && [ \$(stat -c %a '$STATE/keyd/master.key') = 600 ]"
check "nothing staged is left" \
    sh -c "! ls '$STATE/keyd' | grep -q '\.new$'"
check "the old key is in no file of the state directory" \
    sh -c "! grep -rqaF '$OLD' '$STATE'"
check "after: the key works" works
check "after: the credential still reaches the engine" chat
check "after: the TLS proxy serves the same certificate" \
    [ "$(served_fp | tr -d :)" = "$(echo "$FP" | tr -d : | tr a-f A-F)" ]
check "after: audit verify passes across two key segments" \
    sh -c "$F audit verify --json | jq -e '.ok and .key_segments == 2' >/dev/null"
check "after: every row MAC, the policy and the anchor verify" intact
check "after: the backup kept was sealed again and still reads" \
    sh -c "$F check --against '$B' >/dev/null"
$F api-keys create --label d >/dev/null
check "after: a new key row is sealed under the new key" intact

suite_restart "$PORT"
check "restarted: the key works" works
$F engines detect >/dev/null
check "restarted: the credential unseals under the new key" wait_until 5000 chat
check "restarted: the TLS key unseals: the same certificate is served" \
    wait_until 5000 sh -c "[ \"\$(openssl s_client -connect 127.0.0.1:$TPORT </dev/null 2>/dev/null | openssl x509 -noout -fingerprint -sha256 2>/dev/null | sed 's/.*=//' | tr -d :)\" = '$(echo "$FP" | tr -d : | tr a-f A-F)' ]"
check "restarted: audit verify passes" verify_ok
check "restarted: integrity intact" intact

$F security master-key rotate >/dev/null
check "a second rotation: three segments, all verify" \
    sh -c "$F audit verify --json | jq -e '.ok and .key_segments == 3' >/dev/null"

# killed at each step: the old state or the new, never a mix
for step in staged sealed committed anchor backups; do
	suite_stop
	FLM_TEST_ROTATE_CRASH=$step FLM_PROXY_WORKERS=1 "$FLMD" -d -v \
	    -D "$STATE" >>"$STATE/flmd.log" 2>&1 &
	FLMD_PID=$!
	wait_until 5000 all_running
	wait_until 3000 works
	BEFORE=$(mkey)
	KPID=$(proc_pid flm-keyd)
	$F security master-key rotate >/dev/null 2>&1
	wait_until 5000 sh -c "[ \"\$($FLM -D $STATE status --json | jq -r '.processes[] | select(.name == \"flm-keyd\") | .pid')\" != $KPID ]"
	wait_until 5000 all_running
	# keyd finishes or abandons before it serves: a key checked means
	# the files are as the restart left them
	wait_until 5000 works
	case $step in
	staged|sealed) want=old ;;
	*) want=new ;;
	esac
	if [ "$(mkey)" = "$BEFORE" ]; then got=old; else got=new; fi
	check "killed after '$step': keyd restarted with the $want key (has the $got)" \
	    [ "$got" = "$want" ]
	check "killed after '$step': nothing staged is left" \
	    sh -c "! ls '$STATE/keyd' | grep -q '\.new$'"
	check "killed after '$step': the key works" wait_until 5000 works
	$F engines detect >/dev/null 2>&1
	check "killed after '$step': the credential unseals" wait_until 5000 chat
	check "killed after '$step': audit verify passes" verify_ok
	check "killed after '$step': integrity intact" intact
done

# the backup made before the first rotation, sealed again since, holds
# the master key its rows need: restored, it brings that key back
$F backup restore "$B" >/dev/null 2>"$T/restore.err" || diag "$(cat "$T/restore.err")"
check "a backup from before the rotations restores" \
    wait_until 10000 sh -c "[ ! -e '$STATE/restore.ready' ] && [ \"\$(cat '$STATE/keyd/master.key')\" = '$OLD' ]"
check "… with the old master key, and the key works" wait_until 5000 works
check "… and its audit trail verifies" verify_ok

# a key keyd cannot replace
suite_stop
mkdir -p "$T/creds"
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$T/creds/flm-master-key"
CREDENTIALS_DIRECTORY=$T/creds FLM_PROXY_WORKERS=1 "$FLMD" -d -v -D "$T/cstate" \
    >"$T/cflmd.log" 2>&1 &
CPID=$!
wait_until 5000 sh -c "$FLM -D '$T/cstate' status --json 2>/dev/null | jq -e '.processes | length >= 3' >/dev/null"
check "a key from systemd credentials is not rotated by keyd" \
    sh -c "$FLM -D '$T/cstate' security master-key rotate 2>&1 | grep -q 'systemd credentials, which keyd cannot replace'"
kill -TERM $CPID 2>/dev/null
wait $CPID 2>/dev/null
rm -rf "$T/cstate"

# a key in the kernel keyring: keyd updates that key in place
KR=$top_builddir/tests/keyring-run
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$T/k0"
# kr_up OUT KEYFILE [ENV=VALUE...]: flmd on STATE in a session keyring
# holding KEYFILE as flm:master; OUT gets what that key holds at the end.
kr_up() {
	out=$1
	key=$2
	shift 2
	env FLM_PROXY_WORKERS=1 "$@" "$KR" -o "$out" flm:master "$key" \
	    "$FLMD" -d -v -D "$STATE" >>"$STATE/flmd.log" 2>&1 &
	FLMD_PID=$!
	wait_until 5000 all_running && wait_until 3000 works
}
sound() { works && verify_ok && intact; }
newkey() { grep -qE '^[0-9a-f]{64}$' "$1" && ! cmp -s "$1" "$2"; }
if "$KR" flm:probe "$T/k0" true; then
	check "a suite whose master key is in the kernel keyring" \
	    suite_start "$KR" -o "$T/k1" flm:master "$T/k0"
	F="$FLM -D $STATE"
	KEY=$($F api-keys create --label c --json | jq -r .key)
	PORT=$($F proxy start --port 0 --json | jq .port)
	U=http://127.0.0.1:$PORT
	works
	check "rotate: the keyring's key is rotated" \
	    sh -c "$F security master-key rotate --json | jq -e '.key_rows >= 1' >/dev/null"
	check "… no key file was written and nothing is left staged" \
	    sh -c "! ls '$STATE/keyd' | grep -q '^master\.key'"
	check "… the key works" works
	check "… audit verify passes" verify_ok
	suite_stop
	check "the keyring key now holds a new key" newkey "$T/k1" "$T/k0"
	check "started with that key: the key works" kr_up "$T/k2" "$T/k1"
	check "… audit verify passes, integrity intact" sound
	suite_stop
	# killed after the commit: the next keyd updates the keyring
	kr_up "$T/k3" "$T/k1" FLM_TEST_ROTATE_CRASH=committed
	KPID=$(proc_pid flm-keyd)
	$F security master-key rotate >/dev/null 2>&1
	wait_until 5000 sh -c "[ \"\$($F status --json | jq -r '.processes[] | select(.name == \"flm-keyd\") | .pid')\" != $KPID ]"
	wait_until 5000 all_running
	check "keyring, killed after 'committed': the key works" \
	    wait_until 5000 works
	check "… nothing is left staged" \
	    sh -c "! ls '$STATE/keyd' | grep -q '^master\.key'"
	suite_stop
	check "… the restarted keyd put the new key in the keyring" \
	    newkey "$T/k3" "$T/k1"
	kr_up "$T/k4" "$T/k3"
	check "… which opens the state: the key works, audit verify passes" \
	    sound
else
	for d in 1 2 3 4 5 6 7 8 9 10 11 12; do
		ok "kernel keyring rotation # SKIP no kernel keyrings here"
	done
fi
