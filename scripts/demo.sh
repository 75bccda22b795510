#!/bin/sh
# README command 1: set everything up and run the main job — an aemp node.
#
# Builds everything, writes a small configuration with the `aemp` commands
# (a fresh secret, the node's address, the built-in echo and sink services),
# starts `aemp run` on it, talks to the node from other processes with
# `aemp rpc`, `snd` and `trace` so that something visible happens, and then
# leaves the node running until Ctrl-C (SIGINT shuts it down cleanly).
#
#   scripts/demo.sh [noderef]       (default 127.0.0.1:4040)
#
# The configuration is build/demo/config.json, not your own
# ~/.config/aemp/config.json, so the demo changes nothing of yours.
set -eu
cd "$(dirname "$0")/.."
scripts/deps.sh
scripts/build.sh build -DCMAKE_BUILD_TYPE=Release >/dev/null
noderef=${1:-127.0.0.1:4040}

# Leave `aemp` runnable afterwards.  As root (the README's case: a fresh
# Debian, where scripts/deps.sh installs packages system-wide too) the
# build is installed into /usr/local — what a user expects after "set
# everything up": `aemp`, `man aemp`, `man aemp_snd` and
# `pkg-config aemp` work in every new shell, since /usr/local/bin is on
# Debian's default PATH, and the installed binary finds its library
# through its relative run path.  AEMP_PREFIX picks another prefix.
# Without root we change nothing outside the tree and print the line that
# puts the build's tool on PATH instead.
prefix=${AEMP_PREFIX:-/usr/local}
if [ "$(id -u)" -eq 0 ] || [ -n "${AEMP_PREFIX:-}" ]; then
    cmake --install build --prefix "$prefix" >/dev/null
    # for programs of one's own linked against $prefix/lib (aemp itself
    # needs no cache: its run path is relative)
    [ "$(id -u)" -ne 0 ] || ldconfig 2>/dev/null || true
    aemp=$prefix/bin/aemp
    case ":$PATH:" in
    *":$prefix/bin:"*) path_hint="aemp is installed: $aemp" ;;
    *) path_hint="aemp is installed; put it on PATH with:
  export PATH=$prefix/bin:\$PATH" ;;
    esac
else
    aemp=$PWD/build/tools/aemp/aemp
    path_hint="not root, so nothing was installed; to run aemp:
  export PATH=$PWD/build/tools/aemp:\$PATH
(or, as root: cmake --install build --prefix /usr/local)"
fi
dir=$PWD/build/demo
mkdir -p "$dir"
export AEMP_CONFIG="$dir/config.json"
rm -f "$AEMP_CONFIG" "$AEMP_CONFIG.bak"

say() { printf '\n== %s\n' "$*"; }
show() { printf '$ %s\n' "$*"; "$@"; }

say "a configuration, made with the aemp commands"
show "$aemp" gensecret
show "$aemp" setnoderef "$noderef"
show "$aemp" setservices aemp::echo aemp::sink
show "$aemp" showconfig

say "a node: aemp -v run (its first line is its noderef, then its services)"
out=$dir/run.out
: >"$out"
"$aemp" -v run >"$out" &
node=$!
trap 'kill -INT $node 2>/dev/null; wait $node 2>/dev/null; exit 0' INT TERM
for _ in $(seq 100); do
    [ "$(grep -c '^service ' "$out")" -ge 2 ] && break
    kill -0 $node 2>/dev/null || { echo "aemp run failed" >&2; exit 1; }
    sleep 0.1
done
cat "$out"
ref=$(head -n1 "$out")
echo_port=$(awk '$2 == "aemp::echo" { print $3 }' "$out")
sink_port=$(awk '$2 == "aemp::sink" { print $3 }' "$out")

say "other processes talk to it (each one is a node of its own)"
show "$aemp" rpc "$ref" info
show "$aemp" rpc "$echo_port" hello 1 '{"nested": [true, null, 2.5]}'
for i in 1 2 3; do show "$aemp" snd "$sink_port" "message $i"; done
show "$aemp" rpc "$sink_port" count
show "$aemp" trace "$ref"

say "$path_hint"

say "the node keeps running at $ref — try, in another terminal:"
echo "  AEMP_CONFIG=$AEMP_CONFIG $aemp rpc $echo_port hi"
echo "Ctrl-C stops it."
wait $node
