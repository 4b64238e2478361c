#!/usr/bin/env bash
# `kiln compare` end to end on the digits MLP (a second per run): the table has a row per method with what
# each run reached (magnitude's and N:M's exact sparsity, EBOPs only with HGQ, a nonzero-MAC count below
# the unpruned model's), the CSV and the plot are written, a run that fails is a row that says why and
# makes the command fail, and bad --methods are one-line errors.
#
#   bazel test //tests:compare_cli_test
#   KILN_COMPARE=bazel-bin/tools/compare KILN_TRAIN=bazel-bin/tools/train KILN_CONFIGS=data bash tests/compare_cli_test.sh
set -u
source "$(dirname "$0")/testlib.sh"
COMPARE=$(kiln_tool compare) || exit 1
export KILN_TRAIN="$(kiln_tool train)" || exit 1
CONFIGS="$(cd "${KILN_CONFIGS:-$runfiles/kiln/data}" && pwd)"
enter_scratch compare_cli
cp "$CONFIGS/digits_prune.yaml" .

# row FILE TOKEN: the table row of TOKEN, cells separated by '|'.
row() { grep -F "| $2 |" "$1" | head -n 1; }
cell() { awk -F'|' -v c="$2" '{ gsub(/ /, "", $c); print $c }' <<<"$1"; }  # cell ROW N (1-based after the first |)

"$COMPARE" --config digits_prune.yaml --out cmp --jobs 2 \
  --methods 'none,magnitude,pdp/structured_pruning=true,wanda/N=1/M=4/disable_pruning_for_layers=[fc2,output],magnitude+hgq' >out.txt 2>err.txt
status=$?
if ((status == 0)) && [[ -s cmp/compare.md && -s cmp/compare.csv && -s cmp/compare.svg && -e cmp/.kiln-run ]]; then
  ok "compare writes compare.md, compare.csv, compare.svg and is a complete run"
else
  not_ok "compare writes its files" "status $status, $(tail -n 3 err.txt)"
fi
[[ $(grep -c '^| ' cmp/compare.md) -eq 6 ]] && ok "the header and one row per method (5)" ||
  not_ok "rows" "$(cat cmp/compare.md)"
none=$(row cmp/compare.md none) mag=$(row cmp/compare.md magnitude) nm=$(row cmp/compare.md "wanda/N=1/M=4/disable_pruning_for_layers=[fc2,output]")
hgq=$(row cmp/compare.md magnitude+hgq) st=$(row cmp/compare.md pdp/structured_pruning=true)
[[ "$(cell "$mag" 3)" == 0.800 ]] && ok "magnitude reaches its 0.8 sparsity" || not_ok "magnitude sparsity" "$mag"
# A list in an override (its commas do not split --methods): fc1 alone is pruned, 1:4 of its 64 inputs.
[[ "$(cell "$nm" 3)" == 0.750 ]] && grep -q "^fc1 .* 0.7500" "cmp/runs/wanda_N=1_M=4_disable_pruning_for_layers=_fc2_output_/pruning.txt" &&
  ! grep -q "^fc2 " "cmp/runs/wanda_N=1_M=4_disable_pruning_for_layers=_fc2_output_/pruning.txt" &&
  ok "1:4 keeps exactly a quarter of fc1's weights; fc2 and output, listed in the override, are not pruned" ||
  not_ok "N:M sparsity" "$nm"
[[ "$(cell "$none" 7)" == - && "$(cell "$hgq" 7)" =~ ^[0-9]+$ ]] && ok "EBOPs only for the HGQ run" ||
  not_ok "EBOPs column" "$none / $hgq"
if (($(cell "$mag" 9) * 4 < $(cell "$none" 9))); then ok "80% pruned: under a quarter of the unpruned nonzero MACs"; else
  not_ok "nonzero MACs" "$mag vs $none"
fi
awk -v r="$(cell "$st" 4)" 'BEGIN { exit !(r > 0.3) }' && ok "structured pdp removes units ($(cell "$st" 4))" ||
  not_ok "structured pdp units" "$st"
[[ -s "cmp/runs/magnitude/firmware_c/resources.json" && -s cmp/logs/magnitude.log ]] && ok "each run and its log are kept" ||
  not_ok "runs" "$(ls cmp/runs)"

# A run that fails (structured mdmm collapses on this model: the guard stops it) is a row, and status 1.
"$COMPARE" --config digits_prune.yaml --out cmp2 --methods magnitude,mdmm/metric_type=StructuredSparsity >out.txt 2>err.txt
status=$?
if ((status == 1)) && grep -q '| mdmm/metric_type=StructuredSparsity | failed: .*pruning collapsed' cmp2/compare.md; then
  ok "a failed run is a row saying why, and the command fails"
else
  not_ok "failed run" "status $status; $(cat cmp2/compare.md 2>/dev/null | tail -n 2)"
fi

# Bad --methods: one error line naming the token, no output directory.
for bad in "pqd:unknown method 'pqd'" "magnitude,magnitude:listed twice" "magnitude/epsilon:an override is METHOD/key=value"; do
  methods="${bad%%:*}" want="${bad#*:}"
  "$COMPARE" --config digits_prune.yaml --out bad --methods "$methods" >out.txt 2>err.txt
  status=$?
  if ((status == 1)) && [[ $(grep -c error err.txt) -eq 1 ]] && grep -qF -- "$want" err.txt && [[ ! -e bad ]]; then
    ok "--methods $methods: $want"
  else
    not_ok "--methods $methods" "status $status: $(cat err.txt)"
  fi
done
mkdir mine && touch mine/notes.txt
"$COMPARE" --config digits_prune.yaml --out mine --methods none >out.txt 2>err.txt
[[ $? -eq 1 && -e mine/notes.txt ]] && ok "refuses to write over a directory it did not make" || not_ok "--out mine" "$(cat err.txt)"
finish
