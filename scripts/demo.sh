#!/bin/sh
# README command 1: set everything up and run the main job.
# For now the main job is the local ping-pong example: two ports on one node
# exchange messages and the program reports the rate.
set -eu
cd "$(dirname "$0")/.."
scripts/deps.sh
scripts/build.sh build -DCMAKE_BUILD_TYPE=Release
exec build/examples/pingpong "${1:-1000000}"
