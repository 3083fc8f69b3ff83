#!/bin/sh
# The real sandboxes of flm-keyd and flm-proxyd (Landlock and seccomp),
# applied by the same functions the daemons call, refuse what they must
# refuse.
. "$(dirname "$0")/lib.sh"

plan 32

TMP=$(mktemp -d "${TMPDIR:-/tmp}/flms.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

# probe ROLE ACTION [PATH]: prints the probe's exit status (159 or 128+31
# mean killed by SIGSYS).
probe() { "$PROBE" "$@" >/dev/null 2>&1; echo $?; }
killed() { r=$(probe "$@"); [ "$r" = 159 ]; }
allowed() { [ "$(probe "$@")" = 0 ]; }

check "without a sandbox a socket is allowed (the probe works)" \
    allowed none socket
check "keyd: socket(AF_INET) kills the process" killed keyd socket
check "keyd: socket(AF_UNIX) kills the process" killed keyd unix-socket
check "keyd: execve kills the process" killed keyd exec
# keyd's directory is the probe's current one, as it is flm-keyd's.
check "keyd: files for SQLite can be written in its directory" \
    sh -c "cd '$TMP' && '$PROBE' keyd open-write keyd.db >/dev/null 2>&1"
check "keyd: a file outside its directory cannot be read" \
    sh -c "cd '$TMP' && '$PROBE' keyd open-read /etc/passwd | grep -q 'refused: Permission denied'"
check "keyd: a file outside its directory cannot be created" \
    sh -c "cd '$TMP' && ! '$PROBE' keyd open-write '$TMP/../flms-outside.$$' >/dev/null 2>&1 && [ ! -e '$TMP/../flms-outside.$$' ]"
check "proxyd: open for writing kills the process" \
    killed proxyd open-write "$TMP/proxyd.out"
check "proxyd: nothing was created" [ ! -e "$TMP/proxyd.out" ]
check "without a sandbox a file can be read (the probe works)" \
    allowed none open-read /etc/passwd
# Killed by seccomp; in ASan builds, whose run-time may read, refused
# by Landlock instead.
checkx "proxyd: reading any file is refused or kills the process" \
    'r=$(probe proxyd open-read /etc/passwd); [ "$r" = 159 ] ||
    "$PROBE" proxyd open-read /etc/passwd 2>/dev/null | grep -q "refused: Permission denied"'
check "proxyd: execve kills the process" killed proxyd exec
check "proxyd: socket(AF_INET) is allowed" allowed proxyd socket
check "proxyd: socket(AF_UNIX) kills the process" killed proxyd unix-socket
check "proxyd: a passed descriptor maps shared, read and write" \
    allowed proxyd mmap-shared
check "proxyd: an executable mapping kills the process" \
    killed proxyd mmap-exec
check "proxyd: making memory executable kills the process" \
    killed proxyd mprotect-exec
check "keyd: an executable mapping kills the process" killed keyd mmap-exec
check "without a sandbox an executable mapping is allowed (the probe works)" \
    allowed none mmap-exec

# ---- gcov's files: a coverage build admits them, and nothing more ----
# At exit gcov opens its .gcda files O_RDWR | O_CREAT, and where that
# fails looks for their directory (access) and makes it (mkdir).  A
# coverage build (./configure --enable-coverage) admits that open below
# COVERAGE_DIR alone (Landlock) and refuses access and mkdir (EACCES)
# rather than kill; any other build admits none of it.  Every other
# point of this test is the same in both builds.
refused() { "$PROBE" "$@" 2>/dev/null | grep -q "refused: Permission denied"; }
# A file of the build tree, and one outside it and outside keyd's.
IN=$top_builddir/tests/sandbox-gcov.$$
OUT=$TMP/../flms-gcov.$$
case $TMP/ in "${COVERAGE_DIR:-/nonexistent}"/*)
	diag "TMPDIR is below the build directory: 'outside' is not" ;;
esac
if [ -n "$COVERAGE_DIR" ]; then
	check "coverage build: proxyd opens a file below $COVERAGE_DIR as gcov does" \
	    allowed proxyd open-gcov "$IN"
	rm -f "$IN"
	check "coverage build: proxyd's open as gcov does elsewhere is refused (Landlock)" \
	    refused proxyd open-gcov "$OUT"
	check "coverage build: keyd opens a file below $COVERAGE_DIR as gcov does" \
	    sh -c "cd '$TMP' && '$PROBE' keyd open-gcov '$IN' >/dev/null 2>&1"
	rm -f "$IN"
	check "coverage build: proxyd's access is refused, not killed" \
	    refused proxyd access /etc/passwd
	check "coverage build: proxyd's mkdir is refused, not killed" \
	    refused proxyd mkdir "$TMP/proxyd.dir"
	check "coverage build: keyd's mkdir is refused, not killed" \
	    refused keyd mkdir "$TMP/keyd.dir"
	# The counters of a sandboxed process reach their file at exit.
	gcda=$top_builddir/flm-proxyd/tests_sandbox_probe-proxyd_sandbox.gcda
	rm -f "$gcda"
	probe proxyd socket >/dev/null
	check "coverage build: a process in proxyd's sandbox writes its counters" \
	    test -s "$gcda"
else
	check "proxyd: open as gcov does kills the process, in the build tree too" \
	    killed proxyd open-gcov "$IN"
	check "proxyd: open as gcov does kills the process elsewhere" \
	    killed proxyd open-gcov "$OUT"
	check "keyd: open as gcov does in the build tree is refused" \
	    sh -c "cd '$TMP' && '$PROBE' keyd open-gcov '$IN' | grep -q 'refused: Permission denied'"
	check "proxyd: access kills the process" killed proxyd access /etc/passwd
	check "proxyd: mkdir kills the process" killed proxyd mkdir "$TMP/proxyd.dir"
	check "keyd: mkdir kills the process" killed keyd mkdir "$TMP/keyd.dir"
	check "nothing was created in the build tree" [ ! -e "$IN" ]
fi
check "nothing was created outside the build tree" [ ! -e "$OUT" ]
check "no directory was made" \
    sh -c "[ ! -e '$TMP/proxyd.dir' ] && [ ! -e '$TMP/keyd.dir' ]"
check "proxyd: in the build tree too, open for writing with other flags kills the process" \
    killed proxyd open-write "$IN.w"
check "proxyd: and nothing was created" [ ! -e "$IN.w" ]
check "keyd: access is allowed (SQLite asks it), in a coverage build too" \
    allowed keyd access /etc/passwd

out=$(FLM_SANDBOX_DEBUG=1 "$PROBE" keyd socket 2>&1)
check "FLM_SANDBOX_DEBUG names the forbidden call" \
    sh -c "echo '$out' | grep -q 'forbidden system call 41'"
