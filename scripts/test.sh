#!/bin/sh
# README command 2: set everything up and run every test — the normal build
# with warnings as errors, then the whole suite again under AddressSanitizer
# and UndefinedBehaviorSanitizer (leak checking on).
set -eu
cd "$(dirname "$0")/.."
scripts/deps.sh
jobs=$(nproc 2>/dev/null || echo 2)

echo "== layering (no layer includes a header of one above it)"
scripts/check-layers.sh

echo "== build (-Werror) and test"
scripts/build.sh build-test -DAEMP_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo
ctest --test-dir build-test --output-on-failure -j "$jobs"

echo "== sanitizer build (ASan+UBSan) and test"
scripts/build.sh build-asan -DAEMP_WERROR=ON -DAEMP_SANITIZE=ON \
    -DCMAKE_BUILD_TYPE=Debug -DAEMP_BUILD_BENCH=OFF
ctest --test-dir build-asan --output-on-failure -j "$jobs"

echo "== all tests passed"
