#!/usr/bin/env bash
# Trains the jet-tagger MLP with kiln and with PyTorch in one run, on the same synthetic data recipe,
# and prints a table and the line `speedup_vs_pytorch: bs1024=X bs256=Y bs32=Z`.
#   bash bench/run_mlp.sh [--rows N]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --bench
bazel build -c opt //bench:mlp_bench >/dev/null 2>&1 || bazel build -c opt //bench:mlp_bench
out=$(mktemp)
./bazel-bin/bench/mlp_bench "$@" >"$out"
/usr/bin/python3 bench/mlp_torch.py "$@" >>"$out"
/usr/bin/python3 - "$out" <<'PY'
import sys
vals = {}
for line in open(sys.argv[1]):
    who, key, v = line.split()
    vals[(who, key)] = float(v)
print(f"{'metric':32s} {'kiln':>12s} {'pytorch':>12s} {'ratio':>8s}")
for bs in (1024, 256, 32):
    k, t = vals[("kiln", f"train_bs{bs}_samples_per_s")], vals[("torch", f"train_bs{bs}_samples_per_s")]
    print(f"{'train samples/s, batch ' + str(bs):32s} {k:12.0f} {t:12.0f} {k / t:8.2f}")
    kl, tl = vals[("kiln", f"train_bs{bs}_final_loss")], vals[("torch", f"train_bs{bs}_final_loss")]
    print(f"{'  mean train loss, batch ' + str(bs):32s} {kl:12.4f} {tl:12.4f}")
k, t = vals[("kiln", "infer_bs1_us")], vals[("torch", "infer_bs1_us")]
print(f"{'inference latency, batch 1 (us)':32s} {k:12.2f} {t:12.2f} {t / k:8.2f}")
r = {bs: vals[("kiln", f"train_bs{bs}_samples_per_s")] / vals[("torch", f"train_bs{bs}_samples_per_s")] for bs in (1024, 256, 32)}
print(f"speedup_vs_pytorch: bs1024={r[1024]:.2f} bs256={r[256]:.2f} bs32={r[32]:.2f}")
PY
rm -f "$out"
