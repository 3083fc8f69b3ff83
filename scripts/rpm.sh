#!/bin/sh
# rpm.sh [DIR]: the RPM, built as a distribution would: make dist's
# tarball, then rpmbuild -tb on it with its own _topdir under DIR
# (default build-rpm).  Prints the RPM's path, then checks it: the
# programs with their modes, the manual pages, the systemd unit, the
# sysusers.d and tmpfiles.d files, the state directories with their
# owners and modes, scriptlets that make the users and handle the unit;
# and rpmlint, when installed, reports no error and no warning.
#
# --nodeps: the spec's BuildRequires name Fedora's packages
# (openssl-devel, ...), which no rpm database on Debian knows; here
# scripts/deps.sh installs the same libraries as Debian packages, and
# configure checks every one of them (pkg-config) anyway.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-build-rpm}
case $dir in /*) ;; *) dir=$top/$dir ;; esac

for t in rpmbuild rpm; do
	command -v $t >/dev/null 2>&1 || {
		echo "rpm.sh: $t not found (sh scripts/deps.sh --test installs it)" >&2
		exit 1
	}
done
[ -x "$top/configure" ] || (cd "$top" && autoreconf -fi >/dev/null 2>&1)
rm -rf "$dir"
mkdir -p "$dir/dist"
(cd "$dir/dist" && "$top/configure" >configure.out 2>&1 &&
    make dist >dist.out 2>&1) || {
	echo "rpm.sh: make dist failed:" >&2
	tail -n 20 "$dir/dist/configure.out" "$dir/dist/dist.out" >&2
	exit 1
}
tarball=$(ls "$dir"/dist/flm-*.tar.gz)
tar -tzf "$tarball" | grep -q '^flm-[^/]*/flm\.spec$' || {
	echo "rpm.sh: $tarball holds no flm.spec" >&2
	exit 1
}
# __brp_compress: Debian's brp-compress says #!/bin/sh but uses read -d,
# which dash lacks: run by bash, it gzips the manual pages as Fedora's.
rpmbuild -tb --nodeps --define "_topdir $dir/rpmbuild" \
    --define "__brp_compress bash %{_rpmconfigdir}/brp-compress %{?_prefix}" \
    "$tarball" \
    >"$dir/rpmbuild.out" 2>&1 || {
	echo "rpm.sh: rpmbuild failed:" >&2
	tail -n 40 "$dir/rpmbuild.out" >&2
	exit 1
}
rpmfile=$(ls "$dir"/rpmbuild/RPMS/*/flm-[0-9]*.rpm)
echo "$rpmfile"

# ---- what the package holds ---------------------------------------------
bad=0
fail() {
	echo "rpm.sh: $*" >&2
	bad=1
}
rpm -qlvp "$rpmfile" >"$dir/files" 2>/dev/null
rpm -qp --scripts "$rpmfile" >"$dir/scripts" 2>/dev/null
# has MODE OWNER GROUP PATH: the file is in the package, so.
has() {
	awk -v m="$1" -v u="$2" -v g="$3" -v p="$4" \
	    '$1 == m && $3 == u && $4 == g && $NF == p { f = 1 }
	    END { exit !f }' "$dir/files" ||
	    fail "no $4 ($1 $2:$3) in the package"
}
has -rwxr-xr-x root root /usr/sbin/flmd
has -rwxr-xr-x root root /usr/bin/flm
has -rwxr-xr-x root root /usr/libexec/flm-keyd
has -rwxr-xr-x root root /usr/libexec/flm-proxyd
has -rw-r--r-- root root /usr/lib/systemd/system/flmd.service
has -rw-r--r-- root root /usr/lib/sysusers.d/flm.conf
has -rw-r--r-- root root /usr/lib/tmpfiles.d/flm.conf
has drwx--x--x _flm _flm /var/lib/flm
has drwx------ _flmkeyd _flmkeyd /var/lib/flm/keyd
has dr-xr-xr-x root root /var/lib/flm/empty
for m in man1/flm.1 man5/flm-config.5 man8/flmd.8 man8/flm-keyd.8 \
    man8/flm-proxyd.8; do
	grep -q " /usr/share/man/$m" "$dir/files" || fail "no manual page $m"
done
grep -q ' /usr/share/bash-completion/completions/flm$' "$dir/files" ||
    fail "no bash completion"
# The unit runs the installed flmd.
rpm2cpio "$rpmfile" | (cd "$dir" && cpio -idm --quiet \
    ./usr/lib/systemd/system/flmd.service) 2>/dev/null
grep -q '^ExecStart=/usr/sbin/flmd ' "$dir/usr/lib/systemd/system/flmd.service" ||
    fail "flmd.service does not run /usr/sbin/flmd"
# Scriptlets: the users and group made before the files land, the
# directories, the unit enabled by preset, stopped on erase, restarted
# on upgrade.
# (Fedora's systemd-rpm-macros say it with systemd-update-helper.)
for pat in 'getent group flmadm' 'groupadd -r flmadm' \
    'useradd -r -g _flm ' 'useradd -r -g _flmkeyd' 'useradd -r -g _flmproxy' \
    'systemd-tmpfiles --create' \
    'preset flmd.service\|install-system-units flmd.service' \
    'disable --now flmd.service\|remove-system-units flmd.service' \
    'try-restart flmd.service\|mark-restart-system-units flmd.service'; do
	grep -q -- "$pat" "$dir/scripts" || fail "no '$pat' in the scriptlets"
done
grep -q '^preinstall scriptlet' "$dir/scripts" ||
    fail "no %pre scriptlet"

# ---- rpmlint ----------------------------------------------------------------
if command -v rpmlint >/dev/null 2>&1; then
	rpmlint -c "$top/scripts/rpmlint.toml" "$rpmfile" >"$dir/rpmlint.out" 2>&1 || true
	if ! grep -q ' 0 errors, 0 warnings' "$dir/rpmlint.out"; then
		fail "rpmlint is not clean:"
		cat "$dir/rpmlint.out" >&2
	fi
else
	echo "rpm.sh: SKIP: rpmlint is not installed" >&2
fi
exit $bad
