#!/usr/bin/env bash
# `data: format: h5`: the digits MLP of data/digits.yaml trained from an HDF5 file this test writes (the same
# 1,797 samples as digits.csv.gz, in the same order; labels as integers and as one-hot rows) reaches exactly
# the accuracy of the CSV run (same split, same standardisation, same training); broken HDF5 data gives one
# error line naming the file, dataset and sample.
#
#   bazel test //tests:import_h5_data_test
set -u
source "$(dirname "$0")/testlib.sh"
TRAIN=$(kiln_tool train) || exit 1
CONFIGS="$(cd "$runfiles/kiln/data" && pwd)"
enter_scratch import_h5_data
CSV=/usr/lib/python3/dist-packages/sklearn/datasets/data/digits.csv.gz

/usr/bin/python3 - "$CSV" "$W" <<'PY' || { not_ok "write HDF5 files" "python failed"; finish; exit; }
import sys, numpy as np, h5py
d = np.loadtxt(sys.argv[1], delimiter=",")
x, y = d[:, :-1].astype(np.float32), d[:, -1].astype(np.int64)
w = sys.argv[2]
with h5py.File(w + "/digits.h5", "w") as f:
    f["features/x"] = x                      # a dataset inside a group, as in hls4ml's jet files
    f["labels"] = y
    f["onehot"] = np.eye(10, dtype=np.float32)[y]
    f["half"] = (y + 0.5)                    # not class indices
    f["short"] = y[:100]                     # too few labels
    f["names"] = np.array([b"a"] * len(y))   # text, not numbers
    bad = x.copy(); bad[5, 3] = np.nan
    f["nan_x"] = bad
PY

# digits.yaml with its data: section replaced (fewer epochs: the comparison, not the accuracy, is the point).
config() {  # NAME X Y: writes $W/NAME.yaml reading datasets X and Y of digits.h5
  sed -n '/^model:/,$p' "$CONFIGS/digits.yaml" >"$W/model_and_training.yaml"
  cat >"$W/$1.yaml" <<YAML
data:
  format: h5
  path: $W/digits.h5
  train_x: $2
  train_y: $3
  validation_split: 0.1
  test_split: 0.2
  standardize: true
YAML
  cat "$W/model_and_training.yaml" >>"$W/$1.yaml"
}
accuracy() { grep -m1 '"test_accuracy"' "$1/metrics.json" | tr -dc '0-9.'; }

"$TRAIN" --quiet --config "$CONFIGS/digits.yaml" --epochs 8 --out "$W/csv" >"$W/csv.txt" 2>&1 || not_ok "csv run" "$(tail -3 "$W/csv.txt")"
for labels in labels onehot; do
  config "h5_$labels" features/x "$labels"
  if "$TRAIN" --quiet --config "$W/h5_$labels.yaml" --epochs 8 --out "$W/h5_$labels" >"$W/h5.txt" 2>&1; then
    a=$(accuracy "$W/csv"); b=$(accuracy "$W/h5_$labels")
    if [[ -n "$a" && "$a" == "$b" ]] && awk "BEGIN{exit !($b > 0.9)}"; then ok "h5 ($labels) accuracy $b == csv $a"; else
      not_ok "h5 ($labels) accuracy" "h5 $b vs csv $a"; fi
  else
    not_ok "h5 ($labels) run" "$(tail -3 "$W/h5.txt")"
  fi
done

# expect_error NAME PATTERN X Y: training fails with exit 1 and one stderr line matching PATTERN.
expect_error() {
  config bad "$3" "$4"
  "$TRAIN" --quiet --config "$W/bad.yaml" --epochs 1 --out "$W/bad_run" >"$W/out.txt" 2>"$W/err.txt"
  local status=$? lines
  lines=$(wc -l <"$W/err.txt")
  if [[ $status -eq 1 && $lines -eq 1 ]] && grep -qE "$2" "$W/err.txt"; then ok "$1: $(cat "$W/err.txt")"; else
    not_ok "$1" "status $status, $lines lines: $(cat "$W/err.txt")"; fi
}
expect_error "missing dataset" "digits.h5: no dataset 'features/xx'" features/xx labels
expect_error "labels not integers" "digits.h5: 'half': label 0 is 0.5" features/x half
expect_error "labels too few" "digits.h5: 'short': shape \[100\] does not match the 1797 samples of 'features/x'" features/x short
expect_error "labels are text" "digits.h5: 'names' holds strings" features/x names
expect_error "nan feature" "digits.h5: 'nan_x': sample 5 element 3 is nan" nan_x labels
expect_error "a group, not a dataset" "digits.h5: 'features' is a group, not a dataset" features labels
echo "not hdf5" >"$W/digits.h5"
expect_error "not an HDF5 file" "digits.h5: not an HDF5 file" features/x labels
rm -f "$W/digits.h5"
expect_error "missing file" "bad.yaml:[0-9]+:[0-9]+: cannot open '.*digits.h5'" features/x labels
finish
