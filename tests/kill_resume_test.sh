#!/usr/bin/env bash
# Crash safety of `kiln train`: the quick-start job (data/digits.yaml: dropout, cosine schedule, early
# stopping, C export) is killed with SIGKILL at 20 random moments. After each kill the run directory never
# looks complete unless it is; the run then finishes (resumed from DIR.partial/model.ckpt when a checkpoint
# was written, started again otherwise) and its result equals the uninterrupted run's: the same history
# and test metrics, and the same generated C, which holds every weight.
#
#   bazel test //tests:kill_resume_test
#   KILN_TRAIN=bazel-bin/tools/train KILN_CONFIGS=data bash tests/kill_resume_test.sh
#
# With the argument `hgq`, the HGQ job (data/digits_hgq.yaml: beta ramp, a PID toward target EBOPs, the
# Pareto front's checkpoints, calibration, the deployed-model check) instead, whose fingerprint also
# holds pareto.csv, the front's checkpoints and quantization.txt.
# With `prune`, the pruning job (data/digits_prune.yaml with cs over two rounds that rewind, HGQ on, C
# export): masks, scores, beta, the rewind point and the stage must all come back from the checkpoint.
# KILN_KILLS (20) and KILN_KILL_SEED (1) set the number of kills and the seed of their moments.
set -u
source "$(dirname "$0")/testlib.sh"
TRAIN=$(kiln_tool train) || exit 1
CONFIGS="$(cd "${KILN_CONFIGS:-$runfiles/kiln/data}" && pwd)"
enter_scratch kill_resume
KILLS=${KILN_KILLS:-20}
RANDOM=${KILN_KILL_SEED:-1}

MODE=${1:-float}
if [[ "$MODE" == hgq ]]; then
  # 10 epochs; beta ramps from epoch 2; the PID steers it toward 30k EBOPs.
  sed -e 's/epochs: 80/epochs: 10/; s/start_epoch: 10, end_epoch: 80/start_epoch: 2, end_epoch: 10/' \
    -e 's/^    hgq_beta: 1.0e-6/    hgq_beta: 1.0e-6\n    target_ebops: 30000/' "$CONFIGS/digits_hgq.yaml" >digits.yaml
  grep -q 'target_ebops' digits.yaml && grep -q 'epochs: 10' digits.yaml ||
    { not_ok setup "digits_hgq.yaml no longer has the lines this test edits"; exit 1; }
elif [[ "$MODE" == prune ]]; then
  # 2 pretraining + 2 rounds x 4 + 2 fine-tuning epochs.
  sed -e 's/pruning_method: magnitude/pruning_method: cs/; s/^  epochs: 15 /  epochs: 4 /' \
    -e 's/pretraining_epochs: 5/pretraining_epochs: 2/; s/rounds: 1/rounds: 2/; s/fine_tuning_epochs: 10/fine_tuning_epochs: 2/' \
    -e 's/rewind: never/rewind: every-round/; s/enable_quantization: false/enable_quantization: true/' \
    "$CONFIGS/digits_prune.yaml" >digits.yaml
  printf 'export:\n  target: c\n' >>digits.yaml
  grep -q 'pruning_method: cs' digits.yaml && grep -q '^  epochs: 4 ' digits.yaml && grep -q 'rewind: every-round' digits.yaml &&
    grep -q 'enable_quantization: true' digits.yaml ||
    { not_ok setup "digits_prune.yaml no longer has the lines this test edits"; exit 1; }
else
  # Fewer epochs than the quick start (its early stopping still acts: patience 3), 1 thread, with a C
  # export (part of the run: written before the commit).
  sed -e 's/epochs: 40/epochs: 12/; s/first_cycle: 40/first_cycle: 12/; s/patience: 15/patience: 3/' \
    "$CONFIGS/digits.yaml" >digits.yaml
  printf 'export:\n  target: c\n' >>digits.yaml
  grep -q 'epochs: 12' digits.yaml || { not_ok setup "digits.yaml no longer has 'epochs: 40'"; exit 1; }
fi

# What must be equal between two runs: everything but wall-clock times.
fingerprint() {
  local d="$1"
  grep -vE 'seconds|samples_per_second' "$d/metrics.json"
  cut -d, -f1-8,11- "$d/history.csv"
  cat "$d"/firmware_c/*.c "$d"/firmware_c/*.h
  if [[ "$MODE" == hgq ]]; then
    cat "$d/pareto.csv" "$d/quantization.txt" "$d/deployed.txt"
    ls "$d/pareto"  # the checkpoints of the front (their histories hold wall-clock times)
  fi
  if [[ "$MODE" == prune ]]; then
    cat "$d/pruning.txt" "$d/sparsity_front.csv" "$d/quantization.txt" "$d/deployed.txt"
  fi
}

start=$(date +%s.%N)
"$TRAIN" --quiet --config digits.yaml --out ref >ref.out 2>ref.err || { not_ok reference_run "$(cat ref.err)"; exit 1; }
secs=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { print b - a }')
fingerprint ref >ref.fp
echo "# uninterrupted run: ${secs} s, $(wc -l <ref/history.csv) history lines"

for ((i = 1; i <= KILLS; i++)); do
  # A moment in [0, 1.1 x the run's time], in milliseconds.
  ms=$(awk -v s="$secs" -v r="$RANDOM" 'BEGIN { printf "%d", 1 + r / 32767 * s * 1100 }')
  d="k$i"
  # --foreground: the signal goes to train alone, not to this script's process group.
  timeout --foreground -s KILL "$(awk -v m="$ms" 'BEGIN { printf "%.3f", m / 1000 }')" \
    "$TRAIN" --quiet --config digits.yaml --out "$d" >/dev/null 2>&1
  killed=$?
  problems=()
  state="finished before the kill"
  if [[ -e "$d" ]]; then
    # A directory at DIR is only ever a complete run.
    for f in .kiln-run metrics.json model.ckpt history.csv; do
      [[ -s "$d/$f" ]] || problems+=("$d exists but lacks $f")
    done
    ((killed != 0)) && state="killed after the commit"
  elif [[ -s "$d.partial/model.ckpt" ]]; then
    state="killed after epoch $(($(wc -l <"$d.partial/history.csv") - 1)); resumed"
    "$TRAIN" --quiet --config digits.yaml --resume "$d.partial/model.ckpt" --out "$d" >resume.out 2>resume.err ||
      problems+=("the resume failed: $(head -c 300 resume.err)")
  else
    state="killed before the first checkpoint; run again"
    "$TRAIN" --quiet --config digits.yaml --out "$d" >resume.out 2>resume.err ||
      problems+=("the new run failed: $(head -c 300 resume.err)")
  fi
  if [[ -d "$d" ]]; then
    fingerprint "$d" >"$d.fp"
    cmp -s ref.fp "$d.fp" || problems+=("result differs from the uninterrupted run: $(diff ref.fp "$d.fp" | head -n 4 | tr '\n' ' ')")
    [[ -e "$d.partial" ]] && problems+=("$d.partial left behind")
  else
    problems+=("no run directory after finishing")
  fi
  if ((${#problems[@]} == 0)); then ok "kill $i at ${ms} ms: $state; result identical"; else
    not_ok "kill $i at ${ms} ms ($state)" "$(printf '%s; ' "${problems[@]}")"
  fi
  rm -rf "$d" "$d.partial" "$d.fp"
done

finish
