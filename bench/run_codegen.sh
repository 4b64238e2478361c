#!/usr/bin/env bash
# Batch-1 inference latency of the jet-tagger MLP (16-64-32-32-5): kiln's generated C (HGQ-quantized,
# integer only), kiln's engine (quantized float forward, and the deployed integer model) and PyTorch
# (float, torch.no_grad, one thread), in one run. Prints a table and the ratio to PyTorch.
#   bash bench/run_codegen.sh [--samples N]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --bench
bazel build //bench:codegen_bench >/dev/null 2>&1 || bazel build //bench:codegen_bench
out=$(mktemp)
./bazel-bin/bench/codegen_bench "$@" >"$out"
/usr/bin/python3 - >>"$out" <<'PY'
import time
import torch
torch.set_num_threads(1)
torch.manual_seed(1)
m = torch.nn.Sequential(torch.nn.Linear(16, 64), torch.nn.ReLU(), torch.nn.Linear(64, 32), torch.nn.ReLU(),
                        torch.nn.Linear(32, 32), torch.nn.ReLU(), torch.nn.Linear(32, 5)).eval()
xs = [torch.randn(1, 16) for _ in range(256)]
n = 20000
with torch.no_grad():
    for x in xs:
        m(x)
    t0 = time.perf_counter()
    for i in range(n):
        m(xs[i % 256])
    us = (time.perf_counter() - t0) / n * 1e6
print(f"pytorch infer_bs1_us {us:.4f}")
PY
/usr/bin/python3 - "$out" <<'PY'
import sys
vals = {}
for line in open(sys.argv[1]):
    who, key, v = line.split()
    vals[who] = float(v)
t = vals["pytorch"]
print(f"{'jet MLP, batch 1':36s} {'latency (us)':>14s} {'vs PyTorch':>11s}")
for who, label in [("kiln_generated_c", "kiln generated C (integer)"), ("kiln_engine_deployed", "kiln engine, deployed integer model"),
                   ("kiln_engine_quantized", "kiln engine, quantized forward"), ("pytorch", "PyTorch float (no_grad)")]:
    print(f"{label:36s} {vals[who]:14.3f} {t / vals[who]:10.1f}x")
PY
rm -f "$out"
