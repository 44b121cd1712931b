#!/usr/bin/env bash
# Quick start, command 1: install what is missing, build in Release, run the main job.
# For now the main job is the kernel benchmark against the speed-of-light probe, oneDNN
# and libtorch (docs/benchmarks.md explains the columns).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
./build/bnorm bench "$@"
