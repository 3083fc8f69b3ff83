#!/bin/sh
# The real sandboxes of flm-keyd and flm-proxyd (Landlock and seccomp),
# applied by the same functions the daemons call, refuse what they must
# refuse.
. "$(dirname "$0")/lib.sh"

plan 20

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
out=$(FLM_SANDBOX_DEBUG=1 "$PROBE" keyd socket 2>&1)
check "FLM_SANDBOX_DEBUG names the forbidden call" \
    sh -c "echo '$out' | grep -q 'forbidden system call 41'"
