#!/bin/sh
# Install what building and testing FLM needs on Debian 12, if missing.
# Run as root (or with sudo available).  Safe to run again: it installs
# only what is not there yet.
set -eu

PKGS="build-essential autoconf automake libtool pkg-config
libsqlite3-dev libssl-dev libevent-dev libjson-c-dev libargon2-dev libcrypt-dev
libsodium-dev libseccomp-dev libcurl4-openssl-dev libcmocka-dev
mandoc jq curl sqlite3 util-linux procps ca-certificates"
# --test: what only the tests use: clang for the fuzzers, chromium for
# tests/integration/cors-browser.t, tls-clients.t and console.t, node
# and npm for tests/integration/openai.t, tls-clients.t and console.t
# (which adds puppeteer-core with npm); openssl (s_client, the
# pinned key's hash) and libnss3-tools (certutil: Chromium's NSS trust
# database) for tls-clients.t; testssl.sh for tls-scan.t; nginx and wrk
# (built with OpenSSL: https and its TLS arms) for make bench; nftables
# and iproute2 (nft, ip netns; ss for console.t) for
# tests/integration/firewall.t.
# systemd (systemd-analyze) and strace for tests/integration/unit-security.t.
# pebble (pebble, pebble-challtestsrv) for the ACME tests
# (tests/integration/acme*.t).
# rpm (rpmbuild), rpmlint, cpio and file (rpm's strip step) for
# scripts/rpm.sh.  prometheus (promtool) for tests/integration/metrics.t.
# lcov (lcov, genhtml) for make coverage (scripts/coverage.sh).
# --package: what building and checking the .deb needs (dpkg-buildpackage,
# lintian) and scripts/install-cycle.sh's clean Debian root (debootstrap).
TEST=0
PACKAGE=0
for a in "$@"; do
	case $a in
	--test) TEST=1 ;;
	--package) PACKAGE=1 ;;
	*) echo "usage: deps.sh [--test] [--package]" >&2; exit 2 ;;
	esac
done
[ $TEST = 1 ] && PKGS="$PKGS clang libclang-rt-14-dev chromium openssl
libnss3-tools testssl.sh nginx wrk nftables iproute2 systemd strace
rpm rpmlint cpio file pebble microsocks dante-server prometheus lcov"
[ $PACKAGE = 1 ] && PKGS="$PKGS debhelper dpkg-dev fakeroot lintian
debootstrap"

missing=
for p in $PKGS; do
	st=$(dpkg-query -W -f '${Status}' "$p" 2>/dev/null || true)
	[ "$st" = "install ok installed" ] || missing="$missing $p"
done
# nodejs npm, for the npm clients' tests (tests/integration/openai.t,
# console.t): looked for by command, as NodeSource's nodejs bundles npm and
# conflicts with Debian's npm package.
if [ $TEST = 1 ]; then
	command -v node >/dev/null 2>&1 || missing="$missing nodejs"
	command -v npm >/dev/null 2>&1 || missing="$missing npm"
fi
[ -z "$missing" ] && exit 0

echo "deps: installing:$missing"
if [ "$(id -u)" -eq 0 ]; then
	SUDO=
elif command -v sudo >/dev/null 2>&1; then
	SUDO=sudo
else
	echo "deps: need root to install:$missing" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
