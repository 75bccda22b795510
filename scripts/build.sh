#!/bin/sh
# Configures and builds aemp into a build directory.
# Usage: scripts/build.sh <build-dir> [cmake options...]
set -eu
cd "$(dirname "$0")/.."
dir=$1
shift
cmake -S . -B "$dir" -G Ninja "$@" >/dev/null
ninja -C "$dir"
