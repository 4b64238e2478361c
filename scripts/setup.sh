#!/usr/bin/env bash
# Installs every Debian package kiln needs; idempotent and quiet when everything is present.
# Usage: scripts/setup.sh [--bench | --fuzz]   (--bench adds PyTorch/NumPy for the benchmark comparisons;
#        --fuzz adds clang, libFuzzer and the OpenMP header clang needs, for bench/fuzz.sh)
set -euo pipefail
pkgs=(bazel-bootstrap bazel-platforms g++ libeigen3-dev libcereal-dev libcli11-dev doctest-dev
      libyaml-cpp-dev nlohmann-json3-dev zlib1g-dev dataset-fashion-mnist python3-sklearn
      gcc-arm-none-eabi libnewlib-arm-none-eabi binutils-arm-none-eabi qemu-system-arm
      libhdf5-dev libonnx-dev libprotobuf-dev python3-numpy python3-h5py python3-onnx
      libopenmpi-dev openmpi-bin)
if [[ "${1:-}" == "--bench" ]]; then pkgs+=(python3-torch python3-numpy); fi
if [[ "${1:-}" == "--fuzz" ]]; then pkgs+=(clang libclang-rt-14-dev libomp-14-dev); fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "kiln setup: installing ${missing[*]}" >&2
  sudo_cmd=""
  if [[ $(id -u) -ne 0 ]]; then sudo_cmd="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $sudo_cmd apt-get update -qq >/dev/null
  $sudo_cmd apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
