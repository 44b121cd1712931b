#!/usr/bin/env bash
# Configures and builds bnorm in Release into build/ (program: build/bnorm, Python module:
# build/python). Extra arguments go to cmake's configure step.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DPython3_EXECUTABLE=/usr/bin/python3 "$@"
cmake --build build
