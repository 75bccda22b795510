#!/bin/sh
# Makes the reference digests test_md6 checks our MD6 against, with an
# implementation that is not ours: the npm package node-md6, pinned to one
# version and to the hash of its code, installed into DIR (in the build
# tree) with Node.js and npm (scripts/deps.sh installs them).
#
# Usage: tests/md6_reference.sh [--soft] DIR
# Writes DIR/md6_ref.txt (see md6_reference.js).  On failure (no npm, no
# registry, a different package) it removes that file, writes the reason
# to DIR/md6_ref.err, which test_md6 fails with, and exits 1; with --soft
# it exits 0 so that a build without the registry goes on (the build runs
# it so) and only test_md6 fails.
set -u

NAME=node-md6
VERSION=0.1.0
# sha256 of the package's md6.js at $VERSION, checked after installing.
SHA256=16eff75d45493c6f1dab32e3832dddb3c466250734c82cad22711b2132a707d4

soft=0
[ "${1:-}" = --soft ] && { soft=1; shift; }
[ $# -eq 1 ] || { echo "usage: $0 [--soft] DIR" >&2; exit 2; }
dir=$1
here=$(cd "$(dirname "$0")" && pwd)
ref=$dir/md6_ref.txt
err=$dir/md6_ref.err
mkdir -p "$dir" || exit 1
rm -f "$ref" "$err"

fail() {
    printf 'md6_reference: %s\n' "$*" | tee "$err" >&2
    [ "$soft" -eq 1 ] && exit 0
    exit 1
}

for tool in node npm sha256sum; do
    command -v "$tool" >/dev/null 2>&1 ||
        fail "$tool not found: run scripts/deps.sh (Debian's nodejs and npm)"
done

pkg=$dir/node_modules/$NAME
have() {
    [ -f "$pkg/md6.js" ] &&
        [ "$(sha256sum <"$pkg/md6.js" | cut -d' ' -f1)" = "$SHA256" ]
}
if ! have; then
    log=$dir/npm.log
    # bounded: an unreachable registry fails in about a minute, not five
    if ! npm install --prefix "$dir" --no-save --no-package-lock \
        --no-audit --no-fund --fetch-retries=1 --fetch-timeout=60000 \
        "$NAME@$VERSION" >"$log" 2>&1; then
        fail "cannot install $NAME@$VERSION from the npm registry" \
            "($(grep -m1 -E 'FetchError|error code' "$log" | cut -c1-200);" \
            "all of npm's output is in $log)"
    fi
    have || fail "$NAME@$VERSION installed, but its md6.js is not the" \
        "one pinned (sha256 $SHA256)"
fi

out=$(node "$here/md6_reference.js" "$pkg" "$ref" 2>&1) ||
    fail "md6_reference.js failed: $out"
exit 0
