#!/usr/bin/env bash
# Quick start, command 1: install what is missing (Debian packages, Fashion-MNIST), build in
# Release, and run the main job: train the VGG-style network with batch normalization on
# Fashion-MNIST for 3 epochs (a few minutes on 2 cores), then print its test accuracy.
# Extra arguments go to `bnorm train` (e.g. --no-bn, --epochs 1, --model mlp-paper).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
out=runs/demo
./build/bnorm train --model vgg-mini --bn --out "$out" "$@"
./build/bnorm eval --model "$out/model.safetensors"
