#!/usr/bin/env bash
# End-to-end test of `kiln scan` (issue 16): the digits HGQ config scanned over 8 values of beta in one
# process and with `mpirun -np 2` gives the same metrics trial for trial; a rank killed mid-scan and a
# rerun finish the scan without redoing finished trials; a complete scan is not run again; a failing trial
# is recorded and the scan goes on; NSGA-II proposes the same generations on 1 and 2 ranks; bad configs
# end with one error line and status 1.
#
#   bazel test //tests:scan_cli_test_ranks //tests:scan_cli_test_resume //tests:scan_cli_test_other
#   KILN_SCAN=bazel-bin/tools/scan KILN_TRAIN=bazel-bin/tools/train tests/scan_cli_test.sh [PART]   # outside Bazel
# PART (ranks, resume, other; default all) selects the sections: Bazel runs them as three targets.
set -u
source "$(dirname "$0")/testlib.sh"
SCAN=$(kiln_tool scan) || exit 1
TRAIN=$(kiln_tool train) || exit 1
export KILN_TRAIN=$TRAIN
if [[ -d $runfiles/kiln/data ]]; then CONFIGS=$(cd "$runfiles/kiln/data" && pwd); else CONFIGS=$(cd "$(dirname "$0")/../data" && pwd); fi
PART=${1:-all}
want() { [[ $PART == all || $PART == "$1" ]]; }
enter_scratch "scan_cli_$PART"
# Open MPI refuses root without these; --oversubscribe lets 2 ranks share fewer cores.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
MPIRUN=("${MPIRUN_ENV[@]}" mpirun -np 2)
command -v mpirun >/dev/null || { not_ok "mpirun" "not installed (scripts/setup.sh installs openmpi-bin)"; finish; exit; }

# The metrics of scan.csv without the columns that are timing or placement (seconds, rank).
metrics() { awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == "seconds" || $i == "rank") skip[i] = 1 }
  { line = ""; for (i = 1; i <= NF; i++) if (!skip[i]) line = line $i ","; print line }' "$1"; }

sed "s|^base: .*|base: $CONFIGS/digits_hgq.yaml|" "$CONFIGS/scan_digits_beta.yaml" >beta.yaml

# --- one process (the reference of the ranks and resume parts) -------------------------------------------
if want ranks || want resume; then
"$SCAN" --config beta.yaml --out one >one.out 2>one.err
status=$?
[[ $status -eq 0 && $(($(wc -l <one/scan.csv) - 1)) -eq 8 ]] && ok "single-process scan: 8 trials" ||
  { not_ok "single-process scan: 8 trials" "status $status"; indent one.err; }
grep -h "wall time" one.out
fi

# --- two ranks: the same metrics -------------------------------------------------------------------------
if want ranks; then
"${MPIRUN[@]}" "$SCAN" --config beta.yaml --out two >two.out 2>two.err
status=$?
[[ $status -eq 0 ]] && ok "mpirun -np 2 scan" || { not_ok "mpirun -np 2 scan" "status $status"; indent two.err; }
grep -h "wall time" two.out
if metrics one/scan.csv | cmp -s - <(metrics two/scan.csv); then ok "same scan.csv metrics on 1 and 2 ranks"; else
  not_ok "same scan.csv metrics on 1 and 2 ranks" "$(diff <(metrics one/scan.csv) <(metrics two/scan.csv))"; fi
awk -F, 'NR > 1 { r[$(NF - 2)]++ } END { exit !(r[0] > 0 && r[1] > 0) }' two/scan.csv &&
  ok "both ranks ran trials" || not_ok "both ranks ran trials" "$(cut -d, -f1,3 two/scan.csv | tr '\n' ' ')"
for f in front.csv front.svg scan.yaml base.yaml trials.jsonl .kiln-run; do
  [[ -s two/$f ]] && ok "wrote $f" || not_ok "wrote $f" "missing"; done
# The front: beta 1e-6 has the best accuracy, 3e-3 the fewest EBOPs; both are on it. Checkpoints are kept
# for the front's trials only (keep: front).
grep -q "^t0000," two/front.csv && grep -q "^t0007," two/front.csv && ok "front holds both ends" ||
  not_ok "front holds both ends" "$(cat two/front.csv)"
kept=$(ls two/trials/*/model.ckpt | wc -l)
[[ $kept -eq $(($(wc -l <two/front.csv) - 1)) ]] && ok "checkpoints kept for the front only ($kept)" ||
  not_ok "checkpoints kept for the front only" "$kept checkpoints"
# A complete scan is not run again.
"$SCAN" --config beta.yaml --out two >again.out 2>&1 && grep -q "nothing to do" again.out &&
  ok "rerun of a complete scan: nothing to do" || not_ok "rerun of a complete scan" "$(cat again.out)"
fi

# --- kill one rank mid-scan, then rerun -----------------------------------------------------------------
if want resume; then
"${MPIRUN[@]}" "$SCAN" --config beta.yaml --out killed >killed.out 2>killed.err &
mp=$!
# Up to 60 s for three trials; 5 times that under --config=asan, whose timeouts are 5 times longer too.
for _ in $(seq $((${#MPIRUN_ENV[@]} ? 3000 : 600))); do
  [[ $(cat killed.partial/trials.jsonl 2>/dev/null | wc -l) -ge 3 ]] && break
  sleep 0.1
done
victim=$(pgrep -P $mp -f "$SCAN" | tail -1)
kill -9 "$victim"
wait $mp
status=$?
done_before=$(wc -l <killed.partial/trials.jsonl)
[[ $status -ne 0 && ! -e killed && $done_before -ge 3 && $done_before -lt 8 ]] &&
  ok "rank $victim killed: the scan stopped unfinished with $done_before trials done" ||
  not_ok "killing a rank stops the scan unfinished" "status $status, $done_before done"
sleep 0.5
# This test's own trials only (the path of its train binary): another suite running at once has its own.
pgrep -f "$TRAIN --config killed.partial/configs" >/dev/null &&
  not_ok "no trial outlives its rank" "$(pgrep -af "$TRAIN --config killed.partial")" ||
  ok "no trial outlives its rank"
stamps() { for t in $(awk -F'"id":' '{ split($2, a, ","); printf "t%04d\n", a[1] }' "$1"); do
  stat -c "%n %Y" "$2/trials/$t/metrics.json"; done; }
stamps killed.partial/trials.jsonl killed.partial | sed 's|killed.partial/||' >before.txt
"${MPIRUN[@]}" "$SCAN" --config beta.yaml --out killed >resume.out 2>resume.err
status=$?
grep -q "$done_before done earlier" resume.err && [[ $status -eq 0 ]] &&
  ok "rerun resumes with $done_before trials done earlier" || { not_ok "rerun resumes" "status $status"; indent resume.err; }
ran=$(grep -c "^\[" resume.err)
[[ $ran -eq $((8 - done_before)) ]] && ok "rerun ran only the $ran unfinished trials" ||
  not_ok "rerun ran only the unfinished trials" "ran $ran, $done_before were done"
(cd killed && for t in $(cut -d' ' -f1 ../before.txt); do stat -c "%n %Y" "$t"; done) | cmp -s - before.txt &&
  ok "finished trials' runs untouched" || not_ok "finished trials' runs untouched" "metrics.json rewritten"
metrics one/scan.csv | cmp -s - <(metrics killed/scan.csv) && ok "resumed scan: the same metrics" ||
  not_ok "resumed scan: the same metrics" "$(diff <(metrics one/scan.csv) <(metrics killed/scan.csv))"
fi

if want other; then
# --- a failing trial is recorded and the scan goes on ---------------------------------------------------
cat >fail.yaml <<EOF2
base: $CONFIGS/digits_hgq.yaml
search: {type: grid}
parameters:
  training.epochs: [2]
  training.batch_size: [32, -4, 16]
EOF2
"$SCAN" --config fail.yaml --out fail >fail.out 2>fail.err
status=$?
[[ $status -eq 0 ]] && grep -q "^t0001,0,failed,.*batch_size" fail/scan.csv &&
  [[ $(grep -c ",ok," fail/scan.csv) -eq 2 ]] && ok "failed trial recorded with its error, the others ran" ||
  { not_ok "failed trial recorded" "status $status"; indent fail/scan.csv; }

# --- NSGA-II: the same generations on 1 and 2 ranks -----------------------------------------------------
cat >nsga.yaml <<EOF2
base: $CONFIGS/digits_hgq.yaml
search: {type: nsga2, population: 4, generations: 2, seed: 3}
parameters:
  training.epochs: [6]
  compression.quantization.beta_schedule: [null]
  compression.quantization.hgq_beta: {min: 1.0e-6, max: 1.0e-2, scale: log}
  model.layers.0.units: {min: 4, max: 32, type: int}
objectives: [{metric: final_val_accuracy, goal: max}, {metric: ebops, goal: min}]
EOF2
"$SCAN" --config nsga.yaml --out n1 >n1.out 2>n1.err && "${MPIRUN[@]}" "$SCAN" --config nsga.yaml --out n2 >n2.out 2>n2.err
status=$?
[[ $status -eq 0 && $(awk -F, 'NR > 1 && $2 == 1' n1/scan.csv | wc -l) -eq 4 ]] &&
  ok "nsga2: 2 generations of 4" || { not_ok "nsga2: 2 generations of 4" "status $status"; indent n1.err; indent n2.err; }
metrics n1/scan.csv | cmp -s - <(metrics n2/scan.csv) && ok "nsga2: the same trials and metrics on 1 and 2 ranks" ||
  not_ok "nsga2: the same on 1 and 2 ranks" "$(diff <(metrics n1/scan.csv) <(metrics n2/scan.csv))"

# --- bad input: one line, status 1 -----------------------------------------------------------------------
expect_error() {  # NAME EXPECTED-TEXT ARGS...
  local name=$1 want=$2
  shift 2
  "$@" >bad.out 2>bad.err
  local status=$? lines
  lines=$(grep -c . bad.err)
  [[ $status -eq 1 && $lines -eq 1 ]] && grep -q -- "$want" bad.err && ok "bad input: $name" ||
    not_ok "bad input: $name" "status $status, $lines lines: $(head -3 bad.err)"
}
printf 'base: %s\nsearch: {type: grid}\nparameters: {training.epochs: [1]}\nkep: all\n' "$CONFIGS/digits_hgq.yaml" >typo.yaml
expect_error "unknown key" "typo.yaml:4" "$SCAN" --config typo.yaml --out t1
printf 'base: nowhere.yaml\nsearch: {type: grid}\nparameters: {training.epochs: [1]}\n' >nobase.yaml
expect_error "missing base" "nowhere.yaml" "$SCAN" --config nobase.yaml --out t2
printf 'base: %s\nsearch: {type: grid}\nparameters: {model.layers.7.units: [1]}\n' "$CONFIGS/digits_hgq.yaml" >idx.yaml
expect_error "index past a list" "model.layers.7.units" "$SCAN" --config idx.yaml --out t3
# Under mpirun the one line comes once (rank 0's), and mpirun adds its own banner about the exit status.
"${MPIRUN[@]}" "$SCAN" --config idx.yaml --out t4 >bad.out 2>bad.err
status=$?
[[ $status -ne 0 && $(grep -c "kiln scan: error" bad.err) -eq 1 ]] && grep -q "model.layers.7.units" bad.err &&
  ok "bad input under mpirun: one error line" || not_ok "bad input under mpirun" "status $status: $(head -3 bad.err)"
mkdir mine && echo keep >mine/notes.txt
expect_error "a user's directory" "not a kiln run" "$SCAN" --config beta.yaml --out mine
[[ $(cat mine/notes.txt) == keep ]] && ok "the user's directory untouched" || not_ok "user's directory" "changed"
# An unfinished scan (the failing-trial scan's files, made unfinished) of another config is not resumed.
mkdir -p other.partial && cp -r fail/. other.partial/ && rm other.partial/.kiln-run && echo "kiln scan" >other.partial/.kiln-partial
expect_error "unfinished scan of another config" "different scan config" "$SCAN" --config beta.yaml --out other
fi
finish
