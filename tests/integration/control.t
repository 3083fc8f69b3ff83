#!/bin/sh
# The control socket: bad clients lose their connection, never the
# daemon; connections are capped, per uid too; idle clients are closed;
# peers are checked.
. "$(dirname "$0")/lib.sh"

plan 26

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

# A client that speaks the protocol but leaves arguments out: each
# request refused, saying what is missing, and nothing stored.
le() {	# le N BYTES: N, little-endian, BYTES bytes
	n=$1 i=0
	while [ $i -lt "$2" ]; do
		printf "\\$(printf %03o $((n & 255)))"
		n=$((n >> 8)) i=$((i + 1))
	done
}
frame() { le "$1" 2; le 0 2; le $((16 + ${#2})) 4; le 7 4; le 0 4; printf %s "$2"; }
hello() { printf '\001\000\000\000\041\000\000\000\000\000\000\000\000\000\000\000\001\000\000\000\004\000\000\000\005\000\000\0000.1.0'; }
"$FLM" -D "$STATE" config set pools.affinity key >/dev/null
out=$( { hello
	frame 107 '{}'				# CONFIG_GET
	frame 108 '{"key":"pools.policy"}'	# CONFIG_SET
	frame 108 '{"key":"pools.policy","value":5}'
	frame 121 '{}'				# ENGINES_TRUST
	frame 129 '{"engine":"Not An Id","secret":"s"}'	# CREDENTIAL_SET
	frame 129 '{"engine":"vllm"}'
	frame 141 '{"keys":[]}'			# MIGRATE_APPLY
	frame 141 '{"ts":"../../x","keys":[]}'
	frame 141 '{"ts":"20260101-1","keys":[],"engine_url":"ftp://h:1"}'
	frame 107 '{"key":"pools.affinity"}'
	frame 61167 ''; } | "$UDS_SEND" -r "$SOCK" | tr -c '[:print:]' ' ')
has() { case $out in *"$1"*) ;; *) return 1 ;; esac; }
checkx "requests without their arguments are refused, saying what is missing" \
    'has "\"error\":\"a key is needed\"" && has "\"error\":\"a value is needed\"" &&
    has "\"error\":\"an engine id is needed\"" &&
    has "an engine id is needed (1-32 of a-z 0-9 - _)" &&
    has "\"error\":\"a secret is needed\"" &&
    [ "$(printf %s "$out" | grep -o "expected {ts, keys, policy?, engine_url?}" | wc -l)" = 2 ] &&
    has "engines.ollama.url: expected http://HOST:PORT or https://HOST:PORT"'
checkx "… the client is served on after them" \
    'has "{\"pools.affinity\":\"key\"}"'
checkx "… and nothing was stored" \
    'fails_with "not set" "$FLM" -D "$STATE" config get pools.policy &&
    ! "$FLM" -D "$STATE" secrets list --json | grep -q vllm'
out=$( { hello; frame 129 '{"engine":"vllm","secret":"s3cr3t"'; } |
    "$UDS_SEND" -r "$SOCK" | tr -c '[:print:]' ' ')
checkx "a request that is not a JSON object: disconnected, logged, its secret not" \
    '! has "{" &&
    wait_until 3000 grep -q "control: client pid .*: malformed request type 129" "$STATE/flmd.log" &&
    ! grep -q s3cr3t "$STATE/flmd.log"'

# The migration log cannot be made (logs is a file): refused, saying
# where and why, before anything is imported or backed up.
touch "$STATE/logs"
out=$( { hello; frame 141 '{"ts":"20260101-1","keys":[]}'; frame 61167 ''; } |
    "$UDS_SEND" -r "$SOCK" | tr -c '[:print:]' ' ')
checkx "a migration whose log cannot be written: refused, saying where, nothing backed up" \
    'has "the migration log in $STATE/logs/migrations: Not a directory" &&
    [ -z "$(ls "$STATE/keyd/backups" 2>/dev/null)" ]'
rm -f "$STATE/logs"

closed=$("$UDS_SEND" -n 40 "$SOCK")
check "one uid's connections beyond 16 are refused (40 tried, $closed closed)" \
    [ "$closed" = 24 ]
check "a new client is served once the others are gone" all_running
check "the refusal names the uid" \
    grep -q "control: uid $(id -u) has 16 connections already" \
    "$STATE/flmd.log"

# Out of descriptors (its soft limit lowered under it): flmd says so,
# pauses accepting instead of spinning, and serves again after.
if command -v prlimit >/dev/null; then
	soft=$(prlimit --pid "$FLMD_PID" --nofile --noheadings --output SOFT)
	nfd=$(ls "/proc/$FLMD_PID/fd" | wc -l)
	prlimit --pid "$FLMD_PID" --nofile="$((nfd + 2)):"
	"$UDS_SEND" -n 6 "$SOCK" >/dev/null
	check "out of descriptors: flmd logs it and pauses accepting" \
	    wait_until 3000 grep -q "control: accept: Too many open files" \
	    "$STATE/flmd.log"
	prlimit --pid "$FLMD_PID" --nofile="$soft:"
	checkx "… and serves again once it has some (soft limit $soft)" \
	    'wait_until 5000 "$FLM" -D "$STATE" status >/dev/null 2>&1 && all_running'
else
	ok "# SKIP no prlimit (util-linux)"
	ok "# SKIP no prlimit (util-linux)"
fi

# Idle clients: one silent, one stopped mid-frame (half a header), both
# closed after 10 s; a request in flight to a stopped keyd is not idle.
T=$(mktemp -d "${TMPDIR:-/tmp}/flmc.XXXXXX")
"$UDS_SEND" -w 16000 "$SOCK" </dev/null >"$T/silent" &
s1=$!
printf '\001\000\000\000\035\000' | "$UDS_SEND" -w 16000 "$SOCK" >"$T/half" &
s2=$!
keyd=$(proc_pid flm-keyd)
kill -STOP "$keyd"
"$FLM" -D "$STATE" api-keys list --json >"$T/list" 2>&1 &
s3=$!
sleep 12
kill -CONT "$keyd"
wait $s1 $s2
wait $s3
rc=$?
# closed_late FILE: closed, and not before 9 s.
closed_late() {
	ms=$(sed -n 's/^closed after [0-9]* bytes in \([0-9]*\) ms$/\1/p' "$1")
	[ -n "$ms" ] && [ "$ms" -ge 9000 ]
}
check "a silent client is closed after the idle timeout ($(cat "$T/silent"))" \
    closed_late "$T/silent"
check "so is one stopped mid-frame ($(cat "$T/half"))" closed_late "$T/half"
check "flmd says why" grep -q 'control: client pid .* sent no request for 10 s' \
    "$STATE/flmd.log"
check "a request waiting 12 s for keyd is answered, not cut (rc $rc)" \
    [ "$rc" = 0 ]
rm -rf "$T"

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

# Two admins: a flmd run by uid 65534 serves it and root.  While 65534
# holds every connection it can (40 tried), root still gets in.
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
	S2=$(mktemp -d "${TMPDIR:-/tmp}/flmu.XXXXXX")
	chown 65534:65534 "$S2"
	nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
	# Not through the function: the background job must be flmd itself,
	# not a subshell that would leave it running when killed.
	setpriv --reuid=65534 --regid=65534 --clear-groups \
	    "$FLMD" -d -D "$S2" >"$S2.log" 2>&1 &
	pid2=$!
	wait_until 5000 "$FLM" -D "$S2" status >/dev/null 2>&1
	# 65534's 16 held 20 s once counted: the rest is not racing them.
	setpriv --reuid=65534 --regid=65534 --clear-groups \
	    "$UDS_SEND" -n 40 "$S2/flmd.sock" 20000 >"$S2.n" &
	hog=$!
	wait_until 8000 test -s "$S2.n"
	"$FLM" -D "$S2" status >/dev/null 2>&1
	rc=$?
	check "root is served while another admin holds all it may (rc $rc, $(cat "$S2.n") of 40 closed)" \
	    [ "$rc" = 0 ]
	# Root takes its 16: 32 in all, the cap on every client together.
	n=$("$UDS_SEND" -n 20 "$S2/flmd.sock")
	check "beyond 32 clients in all, more are refused ($n of root's 20 closed)" \
	    [ "$n" = 4 ]
	check "the refusal says so" \
	    grep -q "control: too many clients (32), refusing pid" "$S2.log"
	kill $hog
	wait $hog
	kill -TERM $pid2
	wait $pid2
	rm -rf "$S2" "$S2.log" "$S2.n"
else
	ok "# SKIP needs root to act as another user"
	ok "# SKIP needs root to act as another user"
	ok "# SKIP needs root to act as another user"
fi

out=$("$FLMD" -d -D "$STATE" 2>&1)
check "a second flmd on the same state directory refuses to start" \
    sh -c "echo \"\$1\" | grep -q 'already running'" sh "$out"
