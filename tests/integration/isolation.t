#!/bin/sh
# From outside, on the real binaries: a debugger (or a process that may
# ptrace them) makes the running flm-proxyd and flm-keyd call open(2)
# through tests/ptrace-inject, in user mode and in system mode.  proxyd
# opens no file at all, keyd only beneath its own directory; flmd cannot
# ptrace or read another process's memory and its children still run;
# keyd and proxyd are not dumpable, so a process of the same user cannot
# attach to them or open their memory, and they write no core file; in
# system mode flmd runs only children root alone can change.  flmd
# itself cannot execve a program nor connect to a TCP port (its children
# come from its spawner, which its filter does not bind), and its
# children are still its own, restarted when killed.
. "$(dirname "$0")/lib.sh"

INJECT=$top_builddir/tests/ptrace-inject
if [ "$(uname -m)" != x86_64 ]; then
	echo "1..0 # SKIP ptrace-inject knows x86_64 only"
	exit 0
fi

plan 42

TMP=$(mktemp -d "${TMPDIR:-/tmp}/flmi.XXXXXX")
chmod 755 "$TMP"
SLEEPS=
trap 'for p in $SLEEPS; do kill $p 2>/dev/null; done; suite_cleanup;
    [ -n "${USTATE:-}" ] && [ "$T_FAILED" -gt 0 ] && diag "$(cat "$USTATE/flmd.log")";
    rm -rf "$TMP"' EXIT
ROOT=0
[ "$(id -u)" = 0 ] && ROOT=1

skip() {
	T_N=$((T_N + 1))
	echo "ok $T_N # SKIP $*"
}

# A secret of the user's outside the state directory, as ~/.ssh would be.
mkdir -p "$TMP/home/.ssh"
echo "PRIVATE KEY" >"$TMP/home/.ssh/id_ed25519"
SECRET=$TMP/home/.ssh/id_ed25519
# A TCP port that answers, for connect: a mock engine on loopback.
"$top_builddir/tests/mock-engine/flm-mock-engine" --flavor ollama \
    --listen 127.0.0.1:0 --port-file "$TMP/listen.port" \
    >"$TMP/listen.log" 2>&1 &
SLEEPS="$SLEEPS $!"
wait_until 3000 test -s "$TMP/listen.port"
LPORT=$(cat "$TMP/listen.port")
NR_PTRACE=101
NR_VMREAD=310
NR_IOCTL=16
FIONREAD=0x541B
PTRACE_GETEVENTMSG=0x4201

inject() { "$INJECT" "$@" 2>&1; }
# denied RESULT: refused with EACCES or EPERM, or killed for trying.
denied() {
	case $1 in
	"refused: EACCES" | "refused: EPERM" | killed:*) return 0 ;;
	*) return 1 ;;
	esac
}
# try NAME ARGS...: inject into the running child NAME; a child killed
# for it is awaited back (flmd restarts it) before the next point.
try() {
	name=$1
	shift
	tpid=$(proc_pid "$name")
	r=$(inject "$tpid" "$@")
	case $r in killed:*) wait_until 5000 child_back "$name" "$tpid" ;; esac
	echo "$r"
}
# failed RESULT: the call failed (outside a chroot: ENOENT) or killed.
failed() { case $1 in refused:* | killed:*) return 0 ;; *) return 1 ;; esac; }
child_back() { all_running && [ "$(proc_pid "$1")" != "$2" ]; }
no_core() {
	for p in "$@"; do
		grep -q "^Max core file size *0 *0 " /proc/"$p"/limits ||
		    return 1
	done
}
points() { n=$1; shift; for _ in $(seq "$n"); do skip "$@"; done; }

# ---- the tool works: an unsandboxed process does what it is told -----
yama=$(cat /proc/sys/kernel/yama/ptrace_scope 2>/dev/null || echo 0)
if [ $ROOT = 0 ] && [ "$yama" != 0 ]; then
	points 5 "Yama ptrace_scope $yama forbids ptrace between siblings"
else
	sleep 60 &
	SLEEP=$!
	SLEEPS="$SLEEPS $SLEEP"
	sleep 0.2
	r=$(inject $SLEEP open "$SECRET")
	checkx "control: an unsandboxed process opens the file ($r)" \
	    '[ "${r%% *}" = opened ]'
	r=$(inject $SLEEP call $NR_PTRACE $PTRACE_GETEVENTMSG 1 0 0)
	checkx "control: an unsandboxed process may call ptrace ($r)" \
	    '[ "$r" = "refused: ESRCH" ]'
	r=$(inject $SLEEP call $NR_VMREAD 1 0 1 0 1 0)
	checkx "control: an unsandboxed process may call process_vm_readv ($r)" \
	    '[ "$r" = "refused: EFAULT" ]'
	r=$(inject $SLEEP connect "$LPORT")
	checkx "control: an unsandboxed process connects to a listening TCP port ($r)" \
	    '[ "$r" = connected ]'
	r=$(inject $SLEEP exec /bin/true)
	wait $SLEEP
	rc=$?
	checkx "control: an unsandboxed process runs /bin/true by execve ($r, exit $rc)" \
	    '[ "$r" = "executed /bin/true" ] && [ $rc = 0 ]'
fi
# flmd_alive: flmd is still flmd, its children running.
flmd_alive() {
	[ "$(readlink /proc/"$FLMD_PID"/exe)" = "$(readlink -f "$FLMD")" ] &&
	    all_running
}
# parent_is_flmd NAME: the child's parent is flmd, not the spawner.
parent_is_flmd() {
	[ "$(awk '/^PPid:/ { print $2 }' /proc/"$(proc_pid "$1")"/status)" = \
	    "$FLMD_PID" ]
}

# ---- user mode ---------------------------------------------------------
if [ $ROOT = 1 ]; then
	check "user mode: suite starts" suite_start
	K=$STATE/keyd
	r=$(try flm-proxyd open "$K/master.key")
	checkx "user mode: proxyd cannot open master.key ($r)" 'denied "$r"'
	r=$(try flm-proxyd open "$K/security.db")
	checkx "user mode: proxyd cannot open security.db ($r)" 'denied "$r"'
	r=$(try flm-proxyd open "$SECRET")
	checkx "user mode: proxyd cannot open a file of the user's outside the state directory ($r)" \
	    'denied "$r"'
	# ioctl(0, FIONREAD, NULL): proxyd reads its sockets itself, so
	# its filter allows no ioctl at all (a sanitizer's runtime needs
	# one for its report: lib/sandbox.c allows it in such a build).
	if grep -q __asan_init "$PROXYD" 2>/dev/null; then
		skip "a sanitizer build: its runtime may call ioctl"
	else
		r=$(try flm-proxyd call $NR_IOCTL 0 $FIONREAD 0)
		checkx "user mode: proxyd may make no ioctl, FIONREAD included ($r)" \
		    'case $r in killed:*) true ;; *) false ;; esac'
	fi
	r=$(try flm-keyd open "$SECRET")
	checkx "user mode: keyd cannot open a file outside its directory ($r)" \
	    'denied "$r"'
	r=$(try flm-keyd open "$STATE/config.db")
	checkx "user mode: keyd cannot open flmd's config.db ($r)" 'denied "$r"'
	r=$(try flm-keyd open "$K/security.db")
	checkx "user mode: keyd opens its own security.db (control) ($r)" \
	    '[ "${r%% *}" = opened ]'
	r=$(inject "$FLMD_PID" call $NR_PTRACE $PTRACE_GETEVENTMSG 1 0 0)
	checkx "user mode: flmd cannot ptrace ($r)" '[ "$r" = "refused: EPERM" ]'
	r=$(inject "$FLMD_PID" call $NR_VMREAD "$(proc_pid flm-keyd)" 0 1 0 1 0)
	checkx "user mode: flmd cannot read keyd's memory with process_vm_readv ($r)" \
	    '[ "$r" = "refused: EPERM" ]'
	F="$FLM -D $STATE"
	kill -KILL "$(proc_pid flm-proxyd)"
	wait_until 5000 all_running
	KEY=$($F api-keys create --label iso --json | jq -r .key)
	PORT=$($F proxy start --port 0 --json | jq .port)
	checkx "children started under flmd's filter still serve a key" \
	    '[ "$(http_code "http://127.0.0.1:$PORT/v1/models" -H "Authorization: Bearer $KEY")" = 200 ]'
	check "keyd and proxyd have a core size limit of 0, soft and hard" \
	    no_core "$(proc_pid flm-keyd)" "$(proc_pid flm-proxyd)"
	check "user mode: keyd's and proxyd's parent is flmd itself" \
	    eval 'parent_is_flmd flm-keyd && parent_is_flmd flm-proxyd'
	r=$(inject "$FLMD_PID" connect "$LPORT")
	checkx "user mode: flmd cannot connect to a listening TCP port ($r)" \
	    'denied "$r"'
	r=$(inject "$FLMD_PID" exec /bin/true)
	checkx "user mode: flmd cannot execve /bin/true, and still runs ($r)" \
	    'denied "$r" && flmd_alive'
	k=$(proc_pid flm-keyd)
	kill -KILL "$k"
	wait_until 5000 child_back flm-keyd "$k"
	checkx "user mode: a killed keyd is restarted under flmd's filter and keys are served" \
	    'child_back flm-keyd "$k" && [ "$(http_code "http://127.0.0.1:$PORT/v1/models" -H "Authorization: Bearer $KEY")" = 200 ]'
	suite_stop
	rm -rf "$STATE"
	STATE=
else
	points 15 "user mode: ptrace of non-dumpable daemons needs root"
fi

# ---- system mode -------------------------------------------------------
if [ $ROOT = 1 ]; then
	for u in _flmkeyd _flmproxy; do
		getent passwd $u >/dev/null || useradd --system \
		    --no-create-home --home-dir /nonexistent \
		    --shell /usr/sbin/nologin $u
	done
	LX=$(sys_libexec)
	STATE=$(mktemp -d "${TMPDIR:-/tmp}/flmt.XXXXXX")
	printf '#!/bin/sh\ntouch %s/evil-ran\n' "$TMP" >"$TMP/evil"
	chmod 755 "$TMP/evil"
	FLM_KEYD_PATH=$TMP/evil FLM_PROXYD_PATH=$TMP/evil \
	    "$FLMD" -d -v -s -D "$STATE" -L "$LX" >"$STATE.log" 2>&1 &
	FLMD_PID=$!
	check "system mode: suite starts from -L" wait_until 5000 all_running
	checkx "system mode: FLM_KEYD_PATH and FLM_PROXYD_PATH are not run as root" \
	    '[ "$(readlink /proc/$(proc_pid flm-keyd)/exe)" = "$LX/flm-keyd" ] &&
	    [ "$(readlink /proc/$(proc_pid flm-proxyd)/exe)" = "$LX/flm-proxyd" ] &&
	    [ ! -e "$TMP/evil-ran" ]'
	# A file root leaves in proxyd's chroot: only Landlock stops it.
	echo bait >"$STATE/empty/bait"
	r=$(try flm-proxyd open /bait)
	checkx "system mode: proxyd cannot open a file inside its own chroot ($r)" \
	    'denied "$r"'
	r=$(try flm-proxyd open /)
	checkx "system mode: proxyd cannot open its chroot's root directory ($r)" \
	    'denied "$r"'
	r=$(try flm-proxyd open "$STATE/keyd/security.db")
	checkx "system mode: proxyd cannot open security.db ($r)" \
	    'failed "$r"'
	r=$(try flm-keyd open "$STATE/config.db")
	checkx "system mode: keyd cannot open a file outside its directory ($r)" \
	    'failed "$r"'
	r=$(try flm-keyd open /security.db)
	checkx "system mode: keyd opens its own security.db (control) ($r)" \
	    '[ "${r%% *}" = opened ]'
	r=$(inject "$FLMD_PID" call $NR_PTRACE $PTRACE_GETEVENTMSG 1 0 0)
	checkx "system mode: flmd cannot ptrace ($r)" \
	    '[ "$r" = "refused: EPERM" ]'
	r=$(inject "$FLMD_PID" connect "$LPORT")
	checkx "system mode: flmd cannot connect to a listening TCP port ($r)" \
	    'denied "$r"'
	r=$(inject "$FLMD_PID" exec /bin/true)
	checkx "system mode: flmd cannot execve /bin/true, and still runs ($r)" \
	    'denied "$r" && flmd_alive'
	k=$(proc_pid flm-keyd)
	kill -KILL "$k"
	wait_until 5000 child_back flm-keyd "$k"
	checkx "system mode: a killed keyd is restarted from -L, its parent flmd" \
	    'child_back flm-keyd "$k" && parent_is_flmd flm-keyd &&
	    [ "$(readlink /proc/$(proc_pid flm-keyd)/exe)" = "$LX/flm-keyd" ]'
	suite_stop
	rm -rf "$STATE" "$STATE.log"
	STATE=

	# A binary group or others can change is never run as root.
	chmod g+w "$LX/flm-keyd"
	X=$(mktemp -d "${TMPDIR:-/tmp}/flmt.XXXXXX")
	out=$("$FLMD" -d -s -D "$X" -L "$LX" 2>&1)
	rc=$?
	checkx "system mode: a group-writable flm-keyd is refused at start-up" \
	    '[ $rc != 0 ] && echo "$out" | grep -q "will not run flm-keyd: .*group and others cannot write"'
	chmod g-w "$LX/flm-keyd"
	chmod 777 "$LX"
	out=$("$FLMD" -d -s -D "$X" -L "$LX" 2>&1)
	rc=$?
	checkx "system mode: a directory others can write is refused" \
	    '[ $rc != 0 ] && echo "$out" | grep -q "its directory must be root"'
	chmod 755 "$LX"
	# Without -L: LIBEXECDIR or nothing, never the build tree beside flmd.
	timeout 3 "$FLMD" -d -v -s -D "$X" >"$X.log" 2>&1
	checkx "system mode: the build tree's flm-keyd beside flmd is not run" \
	    '! grep -q "from $top_builddir" "$X.log" &&
	    grep -q "will not run flm-keyd\|started flm-keyd" "$X.log"'
	rm -rf "$X" "$X.log" "$LX"
else
	points 14 "system mode needs root"
fi

# ---- a process of the same user ----------------------------------------
# As root: a suite of nobody's and a process of nobody's; else our own.
# The programs from a copy nobody can reach, wherever the clone is.
if [ $ROOT = 1 ]; then
	AS="setpriv --reuid=nobody --regid=nogroup --clear-groups --"
	public_tree "$TMP/pub" && FLMD=$TMP/pub/flmd/flmd &&
	    FLM=$TMP/pub/flm/flm && INJECT=$TMP/pub/tests/ptrace-inject
else
	AS=
fi
if [ "$yama" != 0 ]; then
	points 7 "Yama ptrace_scope $yama forbids ptrace between siblings"
elif [ $ROOT = 1 ] && ! { $AS test -x "$FLMD" &&
    $AS test -x "${TMPDIR:-/tmp}"; }; then
	points 7 "nobody cannot reach the build tree or TMPDIR"
else
	USTATE=$(mktemp -d "${TMPDIR:-/tmp}/flmu.XXXXXX")
	[ $ROOT = 1 ] && chown nobody:nogroup "$USTATE"
	$AS "$FLMD" -d -v -D "$USTATE" >"$USTATE.log" 2>&1 &
	UPID=$!
	SLEEPS="$SLEEPS $UPID"
	ustatus() { $AS "$FLM" -D "$USTATE" status --json 2>/dev/null; }
	urunning() {
		[ "$(ustatus | jq '[.processes[] | select(.state == "running")]
		    | length' 2>/dev/null)" = 3 ]
	}
	check "same user: suite starts" wait_until 5000 urunning
	upid() { ustatus | jq -r --arg n "$1" '.processes[] | select(.name == $n) | .pid'; }
	# What the tool says; not, in a coverage build, gcov's complaint at
	# its exit that nobody may not write the build's counters.
	uinject() { $AS "$INJECT" "$@" 2>&1 | grep -v '^profiling:'; }
	$AS sleep 60 &
	US=$!
	SLEEPS="$SLEEPS $US"
	sleep 0.2
	r=$(uinject $US open /etc/hostname)
	checkx "same user: control: it may ptrace its own sleep ($r)" \
	    '[ "${r%% *}" = opened ]'
	r=$(uinject "$(upid flm-keyd)" open /etc/hostname)
	checkx "same user: cannot ptrace-attach keyd ($r)" \
	    '[ "$r" = "attach: EPERM" ]'
	r=$(uinject "$(upid flm-proxyd)" open /etc/hostname)
	checkx "same user: cannot ptrace-attach proxyd ($r)" \
	    '[ "$r" = "attach: EPERM" ]'
	check "same user: control: it may open its own sleep's memory" \
	    $AS head -c 0 /proc/$US/mem
	k=$(upid flm-keyd)
	checkx "same user: cannot open keyd's /proc/PID/mem" \
	    '! $AS head -c 0 /proc/$k/mem 2>/dev/null'
	check "same user: keyd and proxyd have a core size limit of 0, soft and hard" \
	    no_core "$(upid flm-keyd)" "$(upid flm-proxyd)"
	kill $UPID
	wait $UPID 2>/dev/null
	[ "$T_FAILED" -gt 0 ] && diag "$(cat "$USTATE.log")"
	rm -rf "$USTATE" "$USTATE.log"
	USTATE=
fi
