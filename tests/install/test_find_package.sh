#!/usr/bin/env bash
# Installs the built library into a temporary prefix with `cmake --install`, then builds
# and runs examples/batchnorm_layer and examples/train_classifier against it with find_package(bnorm).
# Usage: test_find_package.sh <build dir> <source dir>
set -euo pipefail
build_dir=$1
source_dir=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cmake --install "$build_dir" --prefix "$work/prefix" > "$work/install.log"
test -f "$work/prefix/include/bnorm/layers/batchnorm.hpp"
cmake -S "$source_dir/examples/batchnorm_layer" -B "$work/example" -G Ninja \
  -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$work/prefix" > "$work/configure.log"
cmake --build "$work/example" > "$work/build.log"
"$work/example/batchnorm_layer"

# The training example: the C++ API end to end (a short run when Fashion-MNIST is installed).
cmake -S "$source_dir/examples/train_classifier" -B "$work/train_example" -G Ninja \
  -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$work/prefix" > "$work/configure-train.log"
cmake --build "$work/train_example" > "$work/build-train.log"
if [ -d /usr/share/datasets/fashion-mnist ]; then
  "$work/train_example/train_classifier" /usr/share/datasets/fashion-mnist 50 "$work/classifier.safetensors"
  test -s "$work/classifier.safetensors"
else
  echo "Fashion-MNIST not installed: the training example was built but not run"
fi
