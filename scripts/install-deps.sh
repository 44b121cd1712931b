#!/usr/bin/env bash
# Installs the Debian packages bnorm needs, only those missing. Works as root or via sudo.
# Used by scripts/demo.sh and scripts/test.sh; safe to run again.
set -euo pipefail

packages=(
  # build
  cmake ninja-build g++ pkg-config
  # library and program (oneDNN: convolutions and matrix products; zlib: gzip'ed IDX files and
  # checksums; libpng: images for `bnorm predict`)
  libcli11-dev nlohmann-json3-dev libfmt-dev libdnnl-dev zlib1g-dev libpng-dev
  # data: the official Fashion-MNIST in /usr/share/datasets/fashion-mnist
  dataset-fashion-mnist
  # tests
  libgtest-dev python3 python3-dev python3-numpy pybind11-dev
  # parity oracle (tests) and benchmark peers
  python3-torch libtorch-dev libbenchmark-dev
  # an optimized BLAS for PyTorch's Linear layers in scripts/bench-train.py (Debian's default
  # libblas3 is the reference implementation, several times slower)
  libopenblas0-openmp
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi
echo "install-deps: installing ${missing[*]}"
$sudo apt-get update -q
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
