#!/usr/bin/env bash
# Training speed of the Fashion-MNIST CNN (data/fashion_mnist.yaml) in kiln and in PyTorch, in one run:
# float at 1 and 2 threads, and kiln's HGQ version (data/fashion_mnist_hgq.yaml) at 1 thread against kiln's
# float speed, with HGQ's calibration and deployed-model check against one epoch's time.
#   bash bench/run_cnn.sh [--rows N] [--calibration-samples M] [--native] [--repeat R]
# N training images per epoch (default 54000, the whole split); M: calibrate the HGQ model on its first M
# training images (`compression: calibration_samples:`; default all of them). --native adds kiln's float rows
# built with `--config=native` (this CPU's instructions, e.g. AVX-512; a separate Bazel output base, so the
# default build's cache is kept; the first build takes minutes). R: measure R times, kiln and PyTorch runs
# interleaved, and print the medians (the VM's speed and PyTorch's drift between runs; a ratio from one run can
# be off by 30%).
# Prints a table and the lines `cnn_vs_pytorch: t1=X t2=Y`, `kiln_scaling_2_threads: Z`,
# `hgq_vs_float: W` and `hgq_finish_vs_epoch: V`, then the roofline: the CNN's multiply-adds per training
# sample against one core's FMA peak (bench/fma_peak), kiln's, PyTorch's and 3x PyTorch's rates in it.
set -euo pipefail
cd "$(dirname "$0")/.."
rows=54000
calib=0
native=0
repeat=1
while [[ $# -gt 0 ]]; do
  case "$1" in
    --rows) rows="$2"; shift 2 ;;
    --calibration-samples) calib="$2"; shift 2 ;;
    --native) native=1; shift ;;
    --repeat) repeat="$2"; shift 2 ;;
    *) echo "run_cnn.sh: unknown argument '$1' (valid: --rows N, --calibration-samples M, --native, --repeat R)" >&2; exit 2 ;;
  esac
done
if ! [[ "$repeat" =~ ^[1-9][0-9]*$ ]]; then
  echo "run_cnn.sh: --repeat must be a positive integer, got '$repeat'" >&2
  exit 2
fi
bash scripts/setup.sh --bench
bazel build //tools:train //bench:fma_peak >/dev/null 2>&1 || bazel build //tools:train //bench:fma_peak
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp bazel-bin/tools/train "$work/train"
cp bazel-bin/bench/fma_peak "$work/fma_peak"
if ((native)); then
  # --symlink_prefix=/: no convenience symlinks; the workspace's bazel-bin stays the default build's.
  nbase="${XDG_CACHE_HOME:-$HOME/.cache}/kiln_bench_native"
  bazel --output_base="$nbase" build --config=native --symlink_prefix=/ //tools:train >/dev/null 2>&1 ||
    bazel --output_base="$nbase" build --config=native --symlink_prefix=/ //tools:train
  cp "$(bazel --output_base="$nbase" info --config=native bazel-bin 2>/dev/null)/tools/train" "$work/train_native"
fi
# max_samples keeps the first N of the shuffled 60,000; the validation split takes 10% of them.
keep=$(( rows * 10 / 9 ))
for cfg in fashion_mnist fashion_mnist_hgq; do
  sed "s/^  validation_split: 0.1.*/  validation_split: 0.1\n  max_samples: $keep/" "data/$cfg.yaml" >"$work/$cfg.yaml"
done
sed -i "s/^compression:/compression:\n  calibration_samples: $calib/" "$work/fashion_mnist_hgq.yaml"
kiln() {  # kiln CONFIG THREADS NAME [BINARY]: one epoch; prints the training samples/s from history.csv
  "$work/${4:-train}" --config "$work/$1.yaml" --epochs 1 --threads "$2" --out "$work/$3" --overwrite --quiet >/dev/null
  /usr/bin/python3 -c "import csv,sys; r=list(csv.DictReader(open(sys.argv[1])))[-1]; print(r['samples_per_second'], r['seconds'])" "$work/$3/history.csv"
}
# The roofline: one core's FMA peak (measured before the runs, on an otherwise idle core) and the CNN's
# multiply-adds per training sample (counted on the PyTorch model, the same layers).
"$work/fma_peak" >"$work/peak.txt" 2>/dev/null
/usr/bin/python3 bench/cnn_torch.py --rows 1 --count-macs >>"$work/peak.txt"
# One measurement: every kiln and PyTorch run once, appended as one line to runs.txt.
: >"$work/runs.txt"
for ((run = 1; run <= repeat; ++run)); do
  read -r k1 _ < <(kiln fashion_mnist 1 f1)
  read -r k2 _ < <(kiln fashion_mnist 2 f2)
  read -r kq eq < <(kiln fashion_mnist_hgq 1 q1)
  n1=0 n2=0
  if ((native)); then
    read -r n1 _ < <(kiln fashion_mnist 1 n1 train_native)
    read -r n2 _ < <(kiln fashion_mnist 2 n2 train_native)
  fi
  t1=$(/usr/bin/python3 bench/cnn_torch.py --rows "$rows" --threads 1 | awk '/samples_per_s/ {print $3}')
  t2=$(/usr/bin/python3 bench/cnn_torch.py --rows "$rows" --threads 2 | awk '/samples_per_s/ {print $3}')
  cal_chk=$(/usr/bin/python3 -c "import json,sys; m=json.load(open(sys.argv[1])); print(m['calibration_seconds'], m.get('deployed_check_seconds', 0.0), m.get('deployed_test_samples', 0), m['test_accuracy'], m.get('deployed_mismatches', -1))" "$work/q1/metrics.json")
  echo "$k1 $k2 $kq $eq $n1 $n2 $t1 $t2 $cal_chk" >>"$work/runs.txt"
done
/usr/bin/python3 - "$work/runs.txt" "$rows" "$work/peak.txt" <<'PY'
import statistics, sys
names = "k1 k2 kq eq n1 n2 t1 t2 cal chk samples acc mism".split()
runs = [dict(zip(names, map(float, l.split()))) for l in open(sys.argv[1])]
native = runs[0]["n1"] > 0
# Each ratio per run; the table and the summary lines show the medians over the runs.
ratios = {"t1": lambda r: r["k1"] / r["t1"], "t2": lambda r: r["k2"] / r["t2"],
          "n1": lambda r: r["n1"] / r["t1"], "n2": lambda r: r["n2"] / r["t2"],
          "scaling": lambda r: r["k2"] / r["k1"], "hgq": lambda r: r["kq"] / r["k1"],
          "finish": lambda r: (r["cal"] + r["chk"]) / r["eq"]}
if len(runs) > 1:
    for i, r in enumerate(runs, 1):
        q = {k: f(r) for k, f in ratios.items()}
        print(f"run {i}: t1={q['t1']:.2f} t2={q['t2']:.2f}"
              + (f" native t1={q['n1']:.2f} t2={q['n2']:.2f}" if native else "")
              + f" scaling={q['scaling']:.2f} hgq={q['hgq']:.2f} finish={q['finish']:.2f}")
m = {k: statistics.median(r[k] for r in runs) for k in names}
q = {k: statistics.median(f(r) for r in runs) for k, f in ratios.items()}
print(f"Fashion-MNIST CNN, one epoch of {sys.argv[2]} images, batch 128"
      + (f"; medians of {len(runs)} interleaved runs" if len(runs) > 1 else ""))
print(f"{'training samples/s':34s} {'kiln':>10s} {'pytorch':>10s} {'ratio':>7s}")
print(f"{'float, 1 thread':34s} {m['k1']:10.0f} {m['t1']:10.0f} {q['t1']:7.2f}")
print(f"{'float, 2 threads':34s} {m['k2']:10.0f} {m['t2']:10.0f} {q['t2']:7.2f}")
if native:
    print(f"{'float, 1 thread, --config=native':34s} {m['n1']:10.0f} {m['t1']:10.0f} {q['n1']:7.2f}")
    print(f"{'float, 2 threads, --config=native':34s} {m['n2']:10.0f} {m['t2']:10.0f} {q['n2']:7.2f}")
print(f"{'HGQ, 1 thread':34s} {m['kq']:10.0f} {'':>10s} {q['hgq']:7.2f} (of kiln float)")
print(f"HGQ epoch {m['eq']:.2f} s; after it: calibration {m['cal']:.2f} s, deployed check "
      f"({m['samples']:.0f} test samples) {m['chk']:.2f} s")
print(f"HGQ test accuracy {m['acc']:.4f}, deployed mismatches {m['mism']:.0f}")
print(f"cnn_vs_pytorch: t1={q['t1']:.2f} t2={q['t2']:.2f}")
if native:
    print(f"cnn_vs_pytorch_native: t1={q['n1']:.2f} t2={q['n2']:.2f}")
print(f"kiln_scaling_2_threads: {q['scaling']:.2f}")
print(f"hgq_vs_float: {q['hgq']:.2f}")
print(f"hgq_finish_vs_epoch: {q['finish']:.2f}")
# What the speeds mean in flops: the multiply-adds of the convolutions and dense layers (2 flops each) per
# training sample, against one core's FMA peak. 3x PyTorch at 1 thread needs 3 x PyTorch's rate.
peak = {l.split()[-2]: float(l.split()[-1]) for l in open(sys.argv[3]) if len(l.split()) >= 2}
if "fma_peak_avx2_gflops" not in peak:
    print("roofline: no FMA peak measured (bench/fma_peak needs an x86-64 CPU with AVX2)")
    sys.exit(0)
flops = 2 * peak["cnn_train_macs_per_sample"]
avx2, avx512 = peak["fma_peak_avx2_gflops"], peak.get("fma_peak_avx512_gflops")
rate = lambda sps: sps * flops / 1e9
print(f"roofline: {flops / 1e6:.2f} MFLOP of multiply-adds per training sample; one core's FMA peak "
      f"AVX2 {avx2:.1f} GFLOP/s" + (f", AVX-512 {avx512:.1f}" if avx512 else ""))
for name, sps in [("kiln float, 1 thread", m["k1"]), ("PyTorch, 1 thread", m["t1"]),
                  ("3x PyTorch, 1 thread", 3 * m["t1"])] + (
                     [("kiln float, 1 thread, native", m["n1"])] if native else []):
    # A native build may run Eigen's AVX-512 kernels: its rate against that peak too.
    extra = (f" ({100 * rate(sps) / avx512:.0f}% of the AVX-512 peak)" if avx512 and "native" in name else "")
    print(f"  {name:30s} {rate(sps):6.1f} GFLOP/s = {100 * rate(sps) / avx2:3.0f}% of the AVX2 peak{extra}")
PY
