#!/usr/bin/env bash
# Throughput of `kiln symreg` over MPI ranks: node evaluations per second (tree length x rows, fitting
# included, summed over the ranks: front.json's node_evals_per_second, the search's own clock) of
#   one process   --islands 2K                      (1 rank, 2K islands)
#   mpirun -np 2  --islands-per-rank K              (2 ranks, the same 2K islands: the same work, the same front)
# each run REPEAT times, alternately, one thread per rank, the best of each kept (other jobs on the machine
# only slow a run down). Prints the figures and
#   symreg_mpi_throughput_ratio: R      (2 ranks / 1 rank; 2.00 = perfect on 2 free cores)
# and checks that both found the same front.
#
#   bash bench/symreg_mpi.sh
#   ROWS=4000 GENERATIONS=60 REPEAT=5 bash bench/symreg_mpi.sh
#   SYMREG=/tmp/old/symreg bash bench/symreg_mpi.sh                      # another build
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${ROWS:-2000}
POPULATION=${POPULATION:-60}
GENERATIONS=${GENERATIONS:-60}
K=${ISLANDS_PER_RANK:-2}
REPEAT=${REPEAT:-3}
SEED=${SEED:-1}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
if [[ -z ${SYMREG:-} ]]; then
  bazel build //tools:symreg >/dev/null 2>&1 || { echo "bazel build //tools:symreg failed" >&2; exit 1; }
  bin=$(mktemp -d)  # a copy: another build must not swap the binary under a running bench
  cp -L bazel-bin/tools/symreg "$bin/"
  SYMREG=$bin/symreg
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# y = sin(x0) exp(x1 / 3) + x0^2 x1 - x2: no exact fit within the budget, so every generation keeps fitting.
awk -v n="$ROWS" 'BEGIN { srand(5); print "x0,x1,x2,y";
  for (i = 0; i < n; i++) { a = rand() * 4 - 2; b = rand() * 4 - 2; c = rand() * 2 - 1;
    printf "%.6f,%.6f,%.6f,%.6f\n", a, b, c, sin(a) * exp(b / 3) + a * a * b - c } }' >"$work/data.csv"
args=(--data "$work/data.csv" --target y --ops "+,-,*,/,sin,exp" --generations "$GENERATIONS"
  --population "$POPULATION" --seed "$SEED" --threads 1 --quiet)

evals_per_s() { grep -o '"node_evals_per_second": [0-9.e+]*' "$1/front.json" | awk '{ print $2 }'; }
# Alternating runs, the best of each kept: a burst of other work slows both setups alike.
best_one=0 best_two=0
for ((r = 1; r <= REPEAT; r++)); do
  "$SYMREG" "${args[@]}" --islands $((2 * K)) --out "$work/one$r" >/dev/null
  mpirun -np 2 --oversubscribe "$SYMREG" "${args[@]}" --islands-per-rank "$K" --out "$work/two$r" >/dev/null
  best_one=$(awk -v a="$best_one" -v b="$(evals_per_s "$work/one$r")" 'BEGIN { print (b > a ? b : a) }')
  best_two=$(awk -v a="$best_two" -v b="$(evals_per_s "$work/two$r")" 'BEGIN { print (b > a ? b : a) }')
done
best=("$best_one" "$best_two")
cmp -s "$work/one1/front.csv" "$work/two1/front.csv" && same=yes || same=NO
model=$(lscpu | sed -n 's/^Model name: *//p' | head -1)
echo "symreg over MPI: $ROWS rows, $((2 * K)) islands x $POPULATION, $GENERATIONS generations, 1 thread per rank," \
  "best of $REPEAT; $(nproc) cores ($model), load $(cut -d' ' -f1 /proc/loadavg)"
printf '  1 rank  x %d islands: %.4g node evals/s\n' $((2 * K)) "${best[0]}"
printf '  2 ranks x %d islands: %.4g node evals/s (same front: %s)\n' "$K" "${best[1]}" "$same"
awk -v a="${best[0]}" -v b="${best[1]}" 'BEGIN { printf "symreg_mpi_throughput_ratio: %.2f\n", b / a }'
[[ $same == yes ]]
