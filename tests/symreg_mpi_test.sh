#!/usr/bin/env bash
# `kiln symreg` over MPI: `mpirun -np 2 symreg ... --islands-per-rank 2` finds exactly the front of one process
# with --islands 4 and the same seed, twice the same; rank 0 alone prints and writes; bad input on every rank,
# on rank 0 only (its --out) or on rank 1 only (its data file) ends every rank with one error line from rank 0
# instead of leaving the others waiting.
#
#   bazel test //tests:symreg_mpi_test
#   KILN_SYMREG=bazel-bin/tools/symreg tests/symreg_mpi_test.sh   # outside Bazel
set -u
source "$(dirname "$0")/testlib.sh"
BIN=$(kiln_tool symreg) || exit 1
enter_scratch symreg_mpi
if ! command -v mpirun >/dev/null; then
  not_ok "mpirun" "not found (scripts/setup.sh installs openmpi-bin)"
  finish
  exit
fi
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 TMPDIR=${TEST_TMPDIR:-${TMPDIR:-/tmp}}
# N ranks on whatever cores there are; `timeout`: a rank left waiting must fail the test, not hang it.
mpi() {
  local np=$1
  shift
  timeout 120 "${MPIRUN_ENV[@]}" mpirun -np "$np" --oversubscribe "$@"
}

# y = sin(x0) exp(x1 / 3) + x0^2 x1 on 200 rows: hard enough that the islands and ranks keep finding things.
awk 'BEGIN { srand(11); print "x0,x1,y";
  for (i = 0; i < 200; i++) { a = rand() * 4 - 2; b = rand() * 4 - 2; printf "%.6f,%.6f,%.6f\n", a, b, sin(a) * exp(b / 3) + a * a * b } }' >data.csv
ARGS=(--data data.csv --target y --ops "+,-,*,/,sin,exp" --generations 25 --population 30 --seed 3 --threads 1)

"$BIN" "${ARGS[@]}" --islands 4 --out one --quiet >one.txt 2>one_err.txt ||
  not_ok "one process, 4 islands" "$(cat one_err.txt)"
for run in a b; do
  mpi 2 "$BIN" "${ARGS[@]}" --islands-per-rank 2 --out $run >$run.txt 2>${run}_err.txt ||
    not_ok "mpirun -np 2, run $run" "status $?: $(cat ${run}_err.txt)"
done
if [[ -s a/front.csv && -s b/front.csv && -s one/front.csv ]]; then
  cmp -s a/front.csv b/front.csv && ok "2 ranks, same seed: the same front twice ($(($(wc -l <a/front.csv) - 1)) entries)" ||
    not_ok "2 ranks, same seed: the same front twice" "$(diff a/front.csv b/front.csv | head -5)"
  cmp -s a/front.csv one/front.csv && ok "2 ranks x 2 islands == 1 process x 4 islands (front.csv)" ||
    not_ok "2 ranks x 2 islands == 1 process x 4 islands" "$(diff one/front.csv a/front.csv | head -5)"
  cmp -s <(sed 1d a/predictions.csv) <(sed 1d one/predictions.csv) && ok "and the same predictions.csv" ||
    not_ok "and the same predictions.csv" "$(diff one/predictions.csv a/predictions.csv | head -3)"
  # Rank 0 alone writes and prints: one front table, one "ranks:" line, one progress line per generation.
  [[ $(grep -c "Pareto front" a.txt) -eq 1 ]] && grep -q "node evals/s on 2 ranks x 2 islands" a.txt &&
    ok "one front table, with the throughput of both ranks ($(head -1 a.txt | grep -o '[0-9.]*[kMG]* node evals/s'))" ||
    not_ok "one front table with the throughput" "$(cat a.txt)"
  [[ $(grep -c "^ranks: 2 x 2 islands" a_err.txt) -eq 1 && $(grep -c "^y gen 25/25" a_err.txt) -eq 1 ]] &&
    ok "rank 0 alone prints progress" || not_ok "rank 0 alone prints progress" "$(cat a_err.txt)"
  grep -q '"ranks": 2' a/front.json && grep -q '"node_evals_per_second"' a/front.json && ok "front.json: ranks, throughput" ||
    not_ok "front.json: ranks, throughput" "$(grep -v expression a/front.json | head -20)"
else
  not_ok "fronts written" "$(ls -R . | head -20)"
fi
# 4 ranks x 1 island: the ring of islands crosses a rank boundary at every island.
mpi 4 "$BIN" "${ARGS[@]}" --islands-per-rank 1 --out four --quiet >four.txt 2>four_err.txt
cmp -s four/front.csv one/front.csv && ok "4 ranks x 1 island == 1 process x 4 islands" ||
  not_ok "4 ranks x 1 island" "$(cat four_err.txt; diff one/front.csv four/front.csv | head -5)"

# --- failures end every rank, with one line from rank 0 -------------------------------------------------
expect_mpi_error() {
  local name="$1" want="$2"
  shift 2
  mpi 2 "$@" >o.txt 2>e.txt
  local status=$? n
  n=$(grep -c "kiln symreg" e.txt)
  if [[ $status -eq 0 || $status -eq 124 ]]; then
    not_ok "$name" "status $status (124: a rank was left waiting), stderr: $(cat e.txt)"
  elif [[ $n -ne 1 ]] || ! grep -qF -- "$want" e.txt; then
    not_ok "$name" "want one kiln line with '$want', got: $(cat e.txt)"
  else
    ok "$name"
  fi
}
expect_mpi_error "islands not a multiple of the ranks" "--islands: 3 islands cannot be shared by 2 ranks" \
  "$BIN" "${ARGS[@]}" --islands 3 --out bad1 --quiet
expect_mpi_error "--out taken: rank 0 fails alone" "pass --overwrite" "$BIN" "${ARGS[@]}" --islands-per-rank 2 --out a
cp data.csv data_0.csv
expect_mpi_error "a data file missing on rank 1 only" "rank 1: cannot open 'data_1.csv'" \
  sh -c 'exec "$0" --data "data_$OMPI_COMM_WORLD_RANK.csv" --target y --generations 3 --out bad2 --quiet' "$BIN"
[[ ! -e bad2 && ! -e bad2.partial && ! -e bad1 ]] && ok "nothing written on failure" || not_ok "nothing written on failure" "$(ls)"

finish
