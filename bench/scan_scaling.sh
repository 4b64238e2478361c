#!/usr/bin/env bash
# How far one kiln scan scheduler (rank 0) scales: trials that take no time (a stand-in for train that
# writes metrics.json and exits) on 1..16 ranks, so that the scan's own costs are all that is measured.
# Prints, per rank count, trials per second and rank 0's work per trial, then the message sizes; README
# "Scans" turns them into the rank count at which rank 0 would saturate for a given trial length.
#   bash bench/scan_scaling.sh [TRIALS]      (default 400; needs mpirun, from scripts/setup.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
trials=${1:-400}
bazel build //tools:scan //tools:train >/dev/null 2>&1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat >"$work/fake_train" <<'EOF2'
#!/bin/sh
# kiln train's interface, no training: metrics from the trial's config line count and the process id.
while [ $# -gt 0 ]; do case $1 in --out) out=$2; shift ;; --config) cfg=$2; shift ;; esac; shift; done
mkdir -p "$out" && printf '{"final_val_accuracy": 0.%s, "ebops": %s}\n' "$$" "$(wc -c <"$cfg")" >"$out/metrics.json"
EOF2
chmod +x "$work/fake_train"
cat >"$work/scan.yaml" <<EOF2
base: $PWD/data/digits_hgq.yaml
search: {type: random, trials: $trials, seed: 1}
keep: all
parameters:
  compression.quantization.beta_schedule.final_beta: {min: 1.0e-6, max: 1.0e-2, scale: log}
  model.layers.0.units: {min: 8, max: 64, type: int}
  training.optimizer.learning_rate: {min: 1.0e-4, max: 1.0e-2, scale: log}
objectives: [{metric: final_val_accuracy, goal: max}, {metric: ebops, goal: min}]
EOF2
export KILN_TRAIN=$work/fake_train OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 \
  OMPI_MCA_rmaps_base_oversubscribe=1
echo "CPU: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; $trials trials of no work each"
printf '%-6s %12s %26s\n' ranks "trials/s" "rank-0 ms per trial"
for n in 1 2 4 8 16; do
  out="$work/s$n"
  if [[ $n -eq 1 ]]; then cmd=(bazel-bin/tools/scan); else cmd=(mpirun -np "$n" bazel-bin/tools/scan); fi
  "${cmd[@]}" --config "$work/scan.yaml" --out "$out" >"$work/o$n" 2>"$work/e$n"
  wall=$(sed -n 's/.*wall time \([0-9.]*\) s.*/\1/p' "$work/o$n")
  per=$(sed -n 's/.*rank 0 scheduling: \([0-9.]*\) ms per trial.*/\1/p' "$work/o$n")
  printf '%-6s %12.1f %26s\n' "$n" "$(echo "$trials / $wall" | bc -l)" "$per"
  [[ $n -gt 1 ]] && msgs=$(sed -n 's/.*; messages: \(.*\)/\1/p' "$work/o$n")
done
echo "messages: $msgs"
echo "journal: $(($(wc -c <"$work/s16/trials.jsonl") / trials)) B per trial; scan.csv $(($(wc -c <"$work/s16/scan.csv") / trials)) B per trial"
