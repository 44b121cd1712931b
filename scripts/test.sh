#!/usr/bin/env bash
# Quick start, command 2: install what is missing, build in Release, run every test
# (C++ GoogleTest, Python and PyTorch parity, install + find_package), then build the C++
# tests with AddressSanitizer + UndefinedBehaviorSanitizer and run them too.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
jobs=$(nproc)

echo "== Release tests"
(cd build && ctest --output-on-failure -j "$jobs")

echo "== Sanitizer build (ASan + UBSan) of the C++ tests"
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DBNORM_SANITIZE=ON \
  -DBNORM_BUILD_PYTHON=OFF -DBNORM_BUILD_CLI=OFF
cmake --build build-asan
(cd build-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --output-on-failure -j "$jobs")
