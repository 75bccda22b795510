#!/bin/sh
# Installs the Debian 12 packages aemp needs to build and test, when they are
# missing.  Usage: scripts/deps.sh [extra-package...]
# Run as root to install; otherwise it only reports what is missing.
set -eu

# nftables and procps (sysctl): test_faults partitions a network namespace
# and shrinks its TCP buffers.  python3: the man pages are made from aemp.h
# (scripts/gen-man.py).  nodejs and npm: test_md6's reference MD6
# (tests/md6_reference.sh); a Node.js that brings its own npm (NodeSource's
# package provides and conflicts with Debian's npm) needs no npm package.
PACKAGES="build-essential cmake ninja-build pkg-config libuv1-dev \
libjansson-dev libcbor-dev libc-ares-dev libssl-dev libcmocka-dev \
dnsmasq-base iproute2 locales nftables procps python3 nodejs \
$(command -v npm >/dev/null 2>&1 || echo npm) $*"

missing=""
for p in $PACKAGES; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
        missing="$missing $p"
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
    echo "aemp: missing Debian packages:$missing" >&2
    echo "aemp: run as root, or: sudo apt-get install$missing" >&2
    exit 1
fi
echo "aemp: installing$missing"
export DEBIAN_FRONTEND=noninteractive
# A fresh machine may have no package lists yet.
apt-get install -y --no-install-recommends $missing >/dev/null 2>&1 || {
    apt-get update -q >/dev/null
    apt-get install -y -q --no-install-recommends $missing
}
