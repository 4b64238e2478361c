#!/usr/bin/env bash
# Nguyen-7, y = log(x+1) + log(x^2+1) on 20 points of U[0,2], through the command users run:
# `//tools:symreg` with its default flags except the data, the Nguyen function set (--ops), the seed and a
# time budget (--time-limit T --generations 0: the budget, not the default 100 generations, ends the run),
# one thread per run. Per seed it prints the selected expression, its complexity and its R^2 on
# nguyen.h's 1000 fresh points, then
#   N7: k/10 seeds with complexity <= 12 and R^2 >= 0.99999
# and whether any expression of any front applies log directly to exp (log(exp(u)) = u).
#
#   bash bench/symreg_nguyen7.sh                 # seeds 1..10, 60 s each, one run at a time
#   SEEDS="1 2" TIME=30 JOBS=2 bash bench/symreg_nguyen7.sh
#   SYMREG=/tmp/old/symreg NGUYEN_CSV=/tmp/old/nguyen_csv bash bench/symreg_nguyen7.sh   # another build
# EXTRA="--select accuracy" adds flags to every run; KEEP=DIR keeps every run's data and output there, and
# REPORT_ONLY=DIR prints the table again from such a directory.
set -euo pipefail
cd "$(dirname "$0")/.."
SEEDS=${SEEDS:-"1 2 3 4 5 6 7 8 9 10"}
TIME=${TIME:-60}
JOBS=${JOBS:-1}
PROBLEM=${PROBLEM:-7}
EXTRA=${EXTRA:-}
if [[ -z ${SYMREG:-} || -z ${NGUYEN_CSV:-} ]]; then
  bazel build //tools:symreg //bench/symreg_bench:nguyen_csv >/dev/null 2>&1 ||
    { echo "bazel build //tools:symreg //bench/symreg_bench:nguyen_csv failed" >&2; exit 1; }
  # Copies: another build in the same output tree must not swap the binaries under a running bench.
  bin=$(mktemp -d)
  cp -L bazel-bin/tools/symreg bazel-bin/bench/symreg_bench/nguyen_csv "$bin/"
  SYMREG=${SYMREG:-$bin/symreg} NGUYEN_CSV=${NGUYEN_CSV:-$bin/nguyen_csv}
fi

# The table and summary from the runs' front.csv files (also usable alone: REPORT_ONLY=DIR with KEEP'd runs).
# "front <= 12" is the simplest front entry with complexity <= 12 and R^2 >= 0.99999 on the fresh points,
# whichever was selected: what a perfect selection would have returned.
report() {
  /usr/bin/python3 - "$1" "$NGUYEN_CSV" "$PROBLEM" "$SEEDS" <<'PY'
import csv, re, subprocess, sys
work, judge, problem, seeds = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4].split()
def ask(*a): return subprocess.run([judge, *a], capture_output=True, text=True, check=True).stdout.strip()
print("%-5s %10s %12s %9s %12s  %s" % ("seed", "complexity", "R^2 (fresh)", "front<=12", "generations",
                                      "selected expression"))
k = on_front = logexp = 0
for s in seeds:
    # front.csv: output,complexity,loss,score,train_metric,test_metric,selected,expression
    rows = list(csv.DictReader(open("%s/seed%s/run/front.csv" % (work, s))))
    sel = next(r for r in rows if r["selected"] == "1")
    c, r2 = int(sel["complexity"]), float(ask("r2", problem, sel["expression"]))
    k += c <= 12 and r2 >= 0.99999
    good = [int(r["complexity"]) for r in rows
            if int(r["complexity"]) <= 12 and float(ask("r2", problem, r["expression"])) >= 0.99999]
    on_front += bool(good)
    # The generations the time budget allowed: fewer on a loaded machine (the first line of out.txt).
    m = re.search(r"(\d+) generations", open("%s/seed%s/out.txt" % (work, s)).readline())
    print("%-5s %10d %12.9f %9s %12s  %s" % (s, c, r2, min(good) if good else "-", m.group(1) if m else "?",
                                         sel["expression"]))
    for r in rows:
        if ask("logexp", r["expression"]) == "1":
            logexp += 1
            print("      log(exp(.)) on the front: %s  %s" % (r["complexity"], r["expression"]))
print("N%s: %d/%d seeds with complexity <= 12 and R^2 >= 0.99999" % (problem, k, len(seeds)))
print("    (%d/%d fronts hold such an entry; %d front entries apply log directly to exp)"
      % (on_front, len(seeds), logexp))
PY
}
if [[ -n ${REPORT_ONLY:-} ]]; then report "$REPORT_ONLY"; exit 0; fi
work=$(mktemp -d)
echo "N$PROBLEM through $SYMREG: --ops +,-,*,/,sin,cos,exp,log --generations 0 --time-limit $TIME --threads 1 $EXTRA"

run_seed() {
  local s=$1 dir=$work/seed$1
  mkdir -p "$dir"
  "$NGUYEN_CSV" data "$PROBLEM" 20 "$s" >"$dir/data.csv"
  # shellcheck disable=SC2086
  "$SYMREG" --data "$dir/data.csv" --target y --ops "+,-,*,/,sin,cos,exp,log" --generations 0 \
    --time-limit "$TIME" --seed "$s" --threads 1 --out "$dir/run" --quiet $EXTRA >"$dir/out.txt" 2>"$dir/err.txt" ||
    { echo "seed $s: symreg failed: $(cat "$dir/err.txt")" >&2; return 1; }
}

running=0
for s in $SEEDS; do
  run_seed "$s" &
  running=$((running + 1))
  if ((running >= JOBS)); then wait -n; running=$((running - 1)); fi
done
wait

report "$work"
if [[ -n ${KEEP:-} ]]; then mkdir -p "$KEEP" && cp -r "$work"/. "$KEEP"/; fi
rm -rf "$work"
