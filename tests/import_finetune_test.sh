#!/usr/bin/env bash
# HGQ fine-tuning of an imported model: KERAS_3layer (../shared/data/models) imported with --config, a run
# config whose data is a synthetic jet-format HDF5 file (16 features, one-hot labels = the Keras model's own
# predictions, since the real jet file is not here) and whose compression is HGQ; `kiln train --resume`
# then starts from the imported weights (its first epoch is far above a fresh model's), reports EBOPs, freezes
# a deployed model with 0 mismatches, and exports HLS whose C simulation has 0 mismatches.
#
#   bazel test //tests:import_finetune_test
set -u
source "$(dirname "$0")/testlib.sh"
IMPORT=$(kiln_tool import) && TRAIN=$(kiln_tool train) && EXPORT=$(kiln_tool export) || exit 1
HERE="$(cd "$(dirname "$0")" && pwd)"
HLS_HOST="$(cd "$runfiles/kiln/codegen/hls_host" && pwd)"
MODELS="${KILN_MODELS:-$(dirname "$(readlink -f "$0")")/../../shared/data/models}"
enter_scratch import_finetune
if [[ ! -f "$MODELS/KERAS_3layer.json" ]]; then not_ok "setup" "no models in $MODELS (set KILN_MODELS)"; finish; exit; fi

/usr/bin/python3 - "$HERE" "$MODELS" "$W" <<'PY' || { not_ok "write jets.h5" "python failed"; finish; exit; }
import sys, numpy as np, h5py
sys.path.insert(0, sys.argv[1])
from import_reference import keras_forward
m, w = sys.argv[2], sys.argv[3]
x = np.random.default_rng(5).normal(0, 2, (3000, 16))
p = keras_forward(m + "/KERAS_3layer.json", m + "/KERAS_3layer_weights.h5", x)
with h5py.File(w + "/jets.h5", "w") as f:
    f["X"] = x.astype(np.float32)
    f["y"] = np.eye(5, dtype=np.float32)[p.argmax(1)]
PY
cat >"$W/hgq.yaml" <<YAML
data: {format: h5, path: $W/jets.h5, train_x: X, train_y: y, validation_split: 0.1, test_split: 0.2}
training:
  epochs: 3
  batch_size: 64
  optimizer: {type: adam, learning_rate: 0.0005}
  seed: 1
compression:
  quantization: {default_integer_bits: 4, default_fractional_bits: 8, default_data_integer_bits: 4,
                 default_data_fractional_bits: 8, hgq_beta: 1.0e-6}
YAML
val_acc_epoch1() { awk -F, 'NR==1{for(i=1;i<=NF;i++) if($i=="val_accuracy") c=i} NR==2{print $c}' "$1/history.csv"; }

if "$IMPORT" --keras "$MODELS/KERAS_3layer.json" --weights "$MODELS/KERAS_3layer_weights.h5" --config "$W/hgq.yaml" \
    --out "$W/imp" >"$W/imp.txt" 2>&1 && [[ -f "$W/imp/train.yaml" ]] &&
    grep -q "the final softmax (layer 'output_softmax') is left out" "$W/imp.txt"; then ok "import --config"; else
  not_ok "import --config" "$(cat "$W/imp.txt")"; fi

if "$TRAIN" --quiet --config "$W/imp/train.yaml" --resume "$W/imp/model.ckpt" --out "$W/ft" >"$W/ft.txt" 2>&1; then
  ebops=$(grep -m1 '"ebops"' "$W/ft/metrics.json" | sed 's/.*: *//; s/,$//')
  mism=$(grep -m1 '"deployed_mismatches"' "$W/ft/metrics.json" | tr -dc '0-9')
  acc=$(grep -m1 '"test_accuracy"' "$W/ft/metrics.json" | tr -dc '0-9.')
  if awk "BEGIN{exit !($ebops > 1000 && $acc > 0.8)}" && [[ "$mism" == 0 ]]; then
    ok "HGQ fine-tuning: EBOPs $ebops, test accuracy $acc, $mism deployed mismatches"; else
    not_ok "HGQ fine-tuning" "ebops '$ebops' accuracy '$acc' mismatches '$mism'"; fi
else
  not_ok "HGQ fine-tuning" "$(tail -3 "$W/ft.txt")"
fi

# The same config trained from scratch: after one epoch the imported start must be far ahead.
sed -n '/^model:/,$p' "$W/imp/train.yaml" >"$W/model.yaml"
"$TRAIN" --quiet --config "$W/imp/train.yaml" --epochs 1 --out "$W/fresh" >"$W/fresh.txt" 2>&1
a=$(val_acc_epoch1 "$W/ft"); b=$(val_acc_epoch1 "$W/fresh")
if [[ -n "$a" && -n "$b" ]] && awk "BEGIN{exit !($a > 0.85 && $a > $b + 0.1)}"; then
  ok "starts from the imported weights: epoch-1 val accuracy $a (fresh model: $b)"; else
  not_ok "starts from the imported weights" "imported $a, fresh $b"; fi

if "$EXPORT" --model "$W/ft/model.ckpt" --target hls --out "$W/hls" --name jet --tb-samples 100 >"$W/export.txt" 2>&1 &&
    (cd "$W/hls" && g++ -std=c++14 -O0 -Wno-unknown-pragmas -isystem "$HLS_HOST" -Ifirmware -o csim jet_test.cpp \
      firmware/jet.cpp 2>cc.txt && ./csim >csim.txt) && grep -q "^100 samples, 0 mismatches" "$W/hls/csim.txt"; then
  ok "fine-tuned model to HLS: $(cat "$W/hls/csim.txt")"; else
  not_ok "fine-tuned model to HLS" "$(cat "$W/export.txt" "$W/hls/cc.txt" "$W/hls/csim.txt" 2>/dev/null | tail -5)"; fi
finish
