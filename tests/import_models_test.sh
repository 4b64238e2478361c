#!/usr/bin/env bash
# //tools:import against references computed outside kiln (tests/import_reference.py: NumPy on the weights
# read by h5py, or on the ONNX initializers): the hls4ml example models in ../shared/data/models and models
# tests/import_cases.py writes (every supported Keras layer and ONNX operator) agree within 1e-5 on 1,000
# random inputs; a perturbed expectation is caught; every unsupported or broken input gives one error line
# naming the layer or node and its type, and exit 1.
#
#   bazel test //tests:import_models_test      (KILN_MODELS overrides the models directory)
set -u
source "$(dirname "$0")/testlib.sh"
IMPORT=$(kiln_tool import) || exit 1
HERE="$(cd "$(dirname "$0")" && pwd)"
# The models live beside the checkout (../shared/data/models); Bazel's runfiles link back to the source tree.
MODELS="${KILN_MODELS:-$(dirname "$(readlink -f "$0")")/../../shared/data/models}"
enter_scratch import_models
if [[ ! -f "$MODELS/KERAS_3layer.json" ]]; then not_ok "setup" "no models in $MODELS (set KILN_MODELS)"; finish; exit; fi
if ! /usr/bin/python3 "$HERE/import_cases.py" "$MODELS" "$W/cases" >"$W/gen.txt" 2>&1; then
  not_ok "write cases" "$(cat "$W/gen.txt")"; finish; exit; fi

checked=0
while IFS=$'\t' read -r kind name third fourth rest; do
  IFS=$'\t' read -r -a flags <<<"$rest"
  if [[ $kind == ok ]]; then
    # fourth = expected outputs; the import itself checks kiln's forward against them.
    if "$IMPORT" "${flags[@]}" --out "$W/run_$name" --check "$third" --expect "$fourth" --tolerance 1e-5 \
        >"$W/out.txt" 2>"$W/err.txt" && grep -qE "^check: 1000 samples, max abs difference" "$W/out.txt"; then
      ok "$name: $(grep '^check:' "$W/out.txt" | sed 's/^check: //')"; checked=$((checked + 1))
    else
      not_ok "$name" "$(cat "$W/err.txt" "$W/out.txt" | tail -5)"
    fi
  else
    flags=("$fourth" "${flags[@]}")
    "$IMPORT" "${flags[@]}" --out "$W/err_run" >"$W/out.txt" 2>"$W/err.txt"
    status=$?
    lines=$(wc -l <"$W/err.txt")
    if [[ $status -eq 1 && $lines -eq 1 ]] && grep -qE "$third" "$W/err.txt"; then ok "$name: $(cat "$W/err.txt")"; else
      not_ok "$name" "status $status, $lines lines: $(cat "$W/err.txt")"; fi
    [[ -e "$W/err_run" ]] && not_ok "$name leaves no run" "$W/err_run exists"
  fi
done <"$W/cases/cases.tsv"
expected=$(grep -c "^ok" "$W/cases/cases.tsv")
[[ $checked -eq $expected && $checked -ge 15 ]] && ok "all $checked models checked" || not_ok "models checked" "$checked of $expected"

# A wrong expectation must fail the check: one output of one sample moved by 1e-3.
/usr/bin/python3 - "$W/cases" <<'PY'
import sys, numpy as np
y = np.load(sys.argv[1] + "/KERAS_3layer_y.npy"); y[123, 2] += 1e-3; np.save(sys.argv[1] + "/bad_y.npy", y)
PY
"$IMPORT" --keras "$MODELS/KERAS_3layer.json" --weights "$MODELS/KERAS_3layer_weights.h5" --out "$W/bad" \
  --check "$W/cases/KERAS_3layer_x.npy" --expect "$W/cases/bad_y.npy" --tolerance 1e-5 >"$W/out.txt" 2>"$W/err.txt"
if [[ $? -eq 1 && ! -e "$W/bad" ]] && grep -qE "differs from the expected outputs by up to 1\.0[0-9]*e-03 \(sample 123, output 2\)" "$W/err.txt"; then
  ok "a perturbed expectation is reported"; else not_ok "perturbed expectation" "$(cat "$W/err.txt")"; fi

# Standardisation and class names given on the command line land in the checkpoint (the report prints them
# from it); wrong counts are one-line errors.
K=(--keras "$MODELS/KERAS_3layer.json" --weights "$MODELS/KERAS_3layer_weights.h5")
if "$IMPORT" "${K[@]}" --out "$W/named" --class-names g,q,t,w,z --input-scale 0.5 --input-offset 1 >"$W/out.txt" 2>&1 &&
    grep -q "classes g, q, t, w, z" "$W/out.txt" && grep -q "standardisation (x - offset) \* scale: offset 1, scale 0.5" "$W/out.txt"; then
  ok "--class-names, --input-scale, --input-offset"; else not_ok "--class-names, --input-scale" "$(tail -3 "$W/out.txt")"; fi
grep -q "standardisation (x - offset) \* scale: identity" "$W/run_KERAS_3layer/import.txt" && grep -q "classes 0, 1, 2, 3, 4" <("$IMPORT" "${K[@]}" --out "$W/plain" 2>&1) &&
  ok "default: identity standardisation, numbered classes" || not_ok "defaults" "$(cat "$W/run_KERAS_3layer/import.txt")"
grep -q "note: input 'x' is channels-first \[3, 8, 8\]; kiln's model takes it channels-last \[8, 8, 3\]" "$W/run_onnx_cnn_pytorch/import.txt" &&
  ok "channels-first input noted" || not_ok "channels-first note" "$(cat "$W/run_onnx_cnn_pytorch/import.txt")"
flag_error() {  # NAME PATTERN FLAGS...
  local name=$1 pattern=$2
  shift 2
  "$IMPORT" "$@" --out "$W/flag_err" >"$W/out.txt" 2>"$W/err.txt"
  local status=$? lines
  lines=$(wc -l <"$W/err.txt")
  if [[ $status -eq 1 && $lines -eq 1 && ! -e "$W/flag_err" ]] && grep -qE "$pattern" "$W/err.txt"; then ok "$name"; else
    not_ok "$name" "status $status: $(cat "$W/err.txt")"; fi
}
flag_error "class-name count" "class-names has 2 names; the model has 5 outputs" "${K[@]}" --class-names a,b
flag_error "input-scale count" "input-scale has 3 values; the model takes 16 input features" "${K[@]}" --input-scale 1,2,3
flag_error "input-scale zero" "input-scale values must be finite and > 0" "${K[@]}" --input-scale 0
flag_error "no model" "give one of --keras MODEL and --onnx MODEL.onnx"
flag_error "JSON without weights" "a Keras JSON holds no weights; give --weights" --keras "$MODELS/KERAS_3layer.json"
finish
