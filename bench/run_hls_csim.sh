#!/usr/bin/env bash
# C simulation of a trained model's HLS export on the host: exports the HLS project with N test samples of
# the run's test split (and kiln's deployed outputs for them), compiles its test bench with g++ against
# kiln's ap_fixed model (codegen/hls_host) and runs it; the test bench compares every output and prints
# "N samples, M mismatches" (exit status 1 on any mismatch).
#   bash bench/run_hls_csim.sh RUN_DIR/model.ckpt [N]
set -euo pipefail
cd "$(dirname "$0")/.."
ckpt=$(realpath "$1")
n=${2:-100}
bazel build //tools:export >/dev/null 2>&1 || bazel build //tools:export
w=$(mktemp -d)
trap 'rm -rf "$w"' EXIT
./bazel-bin/tools/export --model "$ckpt" --target hls --out "$w/hls" --name model --tb-samples "$n" >/dev/null
echo "$(wc -l <"$w/hls/firmware/model.cpp") lines of firmware/model.cpp"
/usr/bin/time -f "g++ -O1: %U s CPU" g++ -std=c++14 -O1 -w -isystem codegen/hls_host -Wno-unknown-pragmas \
  -I"$w/hls/firmware" "$w/hls/firmware/model.cpp" "$w/hls/model_test.cpp" -o "$w/csim"
(cd "$w/hls" && "$w/csim")
