#!/bin/sh
# The real allow-lists of flm-keyd and flm-proxyd, applied by the same
# functions the daemons call, refuse what they must refuse.
. "$(dirname "$0")/lib.sh"

plan 12

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
check "keyd: files for SQLite can be written" \
    allowed keyd open-write "$TMP/keyd.db"
check "proxyd: open for writing kills the process" \
    killed proxyd open-write "$TMP/proxyd.out"
check "proxyd: nothing was created" [ ! -e "$TMP/proxyd.out" ]
check "proxyd: reading a file is allowed" allowed proxyd open-read /etc/hostname
check "proxyd: execve kills the process" killed proxyd exec
check "proxyd: socket(AF_INET) is allowed" allowed proxyd socket
check "proxyd: socket(AF_UNIX) kills the process" killed proxyd unix-socket
out=$(FLM_SANDBOX_DEBUG=1 "$PROBE" keyd socket 2>&1)
check "FLM_SANDBOX_DEBUG names the forbidden call" \
    sh -c "echo '$out' | grep -q 'forbidden system call 41'"
