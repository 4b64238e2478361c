#!/usr/bin/env bash
# End-to-end test of `kiln train` on bad input: every bad config, data file, flag and checkpoint must end
# with ONE error line naming the file, line and key/value (exit status 1; CLI11's own codes for flag
# errors), never a crash, and never an output directory that looks like a successful run.
# Also checks what a successful run writes, and that --resume continues its history.
#
#   bazel test //tests:train_cli_test
#   KILN_TRAIN=bazel-bin/tools/train tests/train_cli_test.sh     # outside Bazel (configs: KILN_CONFIGS)
#
# Prints "ok - NAME" or "not ok - NAME: why" (with the actual stderr) per check; exits 1 if any failed.
set -u

# --- the binary, the repo's configs and a scratch directory -------------------------------------------
source "$(dirname "$0")/testlib.sh"
TRAIN=$(kiln_tool train) || exit 1
CONFIGS="$(cd "${KILN_CONFIGS:-$runfiles/kiln/data}" && pwd)"
enter_scratch train_cli

# run_train ARGS...: runs the binary quietly; STATUS, stdout in out.txt, stderr in err.txt.
run_train() {
  "$TRAIN" --quiet "$@" >out.txt 2>err.txt
  STATUS=$?
}

# expect_error NAME EXPECTED... -- ARGS...
#   Runs `train ARGS` (adding --out failout unless ARGS has --out) and checks: exit status 1 (with
#   EXPECT_STATUS=cli: any status 1..127, for CLI11's flag errors), no crash, exactly one stderr line
#   containing "error" (CLI11: at most one, and stderr not empty), and that the message holds every
#   EXPECTED: a fixed string, "re:REGEX" (extended regex) or "!TEXT" (must NOT appear). Our errors are
#   matched against the error line itself, CLI11's against the whole stderr. A failed run must not leave
#   failout/ with model.ckpt or metrics.json.
expect_error() {
  local name="$1"
  shift
  local expected=()
  while (($#)) && [[ "$1" != "--" ]]; do
    expected+=("$1")
    shift
  done
  if (($# == 0)); then
    not_ok "$name" "test bug: expect_error needs -- before the arguments"
    return
  fi
  shift
  local args=("$@") mode="${EXPECT_STATUS:-1}" a has_out=0
  for a in "${args[@]}"; do [[ "$a" == --out || "$a" == --out=* ]] && has_out=1; done
  rm -rf failout failout.partial
  if ((has_out == 0)); then args+=(--out failout); fi
  run_train "${args[@]}"

  local problems=() n_err msg
  n_err=$(grep -ci 'error' err.txt)
  if ((STATUS >= 128)); then
    problems+=("crashed: exit status $STATUS (signal $((STATUS - 128)))")
  elif [[ "$mode" == cli ]]; then
    ((STATUS == 0)) && problems+=("exit status 0, expected non-zero")
  elif ((STATUS != 1)); then
    problems+=("exit status $STATUS, expected 1")
  fi
  grep -qE 'internal error|terminate called|Segmentation|Aborted|core dumped' err.txt &&
    problems+=("stderr reports a crash or internal error")
  if [[ "$mode" == cli ]]; then
    [[ -s err.txt ]] || problems+=("no message on stderr")
    ((n_err <= 1)) || problems+=("$n_err stderr lines contain 'error', expected at most 1")
    msg="$(cat err.txt)"
  else
    ((n_err == 1)) || problems+=("$n_err stderr lines contain 'error', expected exactly 1")
    msg="$(grep -i 'error' err.txt | head -n 1)"
    [[ "$msg" == "kiln train: error: "* ]] || problems+=("the error line does not start with 'kiln train: error: '")
  fi
  local e
  for e in "${expected[@]}"; do
    if [[ "$e" == re:* ]]; then
      grep -qE -- "${e#re:}" <<<"$msg" || problems+=("message does not match /${e#re:}/")
    elif [[ "$e" == '!'* ]]; then
      grep -qF -- "${e#!}" <<<"$msg" && problems+=("message contains '${e#!}'")
    else
      grep -qF -- "$e" <<<"$msg" || problems+=("message lacks '$e'")
    fi
  done
  if ((has_out == 0)) && [[ -e failout/model.ckpt || -e failout/metrics.json ]]; then
    problems+=("the failed run left failout/ with model.ckpt or metrics.json")
  fi
  if ((${#problems[@]} == 0)); then
    ok "$name"
  else
    local why
    why="$(printf '%s; ' "${problems[@]}")"
    not_ok "$name" "${why%; }"
    echo "    command: train --quiet ${args[*]}"
    echo "    exit status: $STATUS; stderr:"
    indent err.txt
  fi
  rm -rf failout failout.partial
}

# --- generated inputs ------------------------------------------------------------------------------
# A clearly synthetic data set: 60 rows, 4 numeric features, 3 string classes (class k near k + 0.5).
awk 'BEGIN {
  print "f1,f2,f3,f4,species"
  split("alpha beta gamma", names, " ")
  for (i = 0; i < 60; i++) {
    k = i % 3
    printf "%.2f,%.2f,%.2f,%.2f,%s\n", k + (i * 37 % 100) / 100, k + (i * 53 % 100) / 100,
           k + (i * 71 % 100) / 100, k + (i * 89 % 100) / 100, names[k + 1]
  }
}' >tiny.csv

# The base config; the bad configs below change single lines of it (line numbers stay as listed).
base_yaml() {
  cat <<'EOF'
data:
  path: tiny.csv
  label: species
model:
  layers:
    - {type: dense, name: hidden, units: 8, activation: relu}
    - {type: dense, name: out, units: 3}
training:
  epochs: 1
  batch_size: 16
  optimizer: {type: adam, learning_rate: 0.01}
  seed: 7
  loss: cross_entropy
EOF
}
# variant FILE SED-SCRIPT: FILE is the base config edited by SED-SCRIPT.
variant() { base_yaml | sed -e "$2" >"$1"; }

base_yaml >good.yaml

# --- 1. unknown top-level key ----------------------------------------------------------------------
variant top_typo.yaml 's/^training:/trainng:/'
expect_error unknown_top_level_key "top_typo.yaml:8:" "'trainng'" "did you mean 'training'" -- --config top_typo.yaml

# --- 2. mistyped layer key -------------------------------------------------------------------------
cat >layer_typo.yaml <<'EOF'
data:
  path: tiny.csv
  label: species
model:
  layers:
    - type: dense
      name: hidden
      unit: 64
      activation: relu
    - {type: dense, name: out, units: 3}
EOF
expect_error mistyped_layer_key "layer_typo.yaml:8:" "'unit'" "did you mean 'units'" -- --config layer_typo.yaml

# --- 3. missing required keys ----------------------------------------------------------------------
variant no_units.yaml '6s/units: 8, //'
expect_error missing_units "no_units.yaml:6:" "'units'" -- --config no_units.yaml
cat >no_path.yaml <<'EOF'
data:
  label: species
model:
  layers:
    - {type: dense, name: out, units: 3}
EOF
expect_error missing_data_path "no_path.yaml:2:" "'path'" -- --config no_path.yaml

# --- 4. wrong type ---------------------------------------------------------------------------------
variant epochs_ten.yaml 's/epochs: 1/epochs: ten/'
expect_error wrong_type_epochs "epochs_ten.yaml:9:" "'epochs'" "'ten'" -- --config epochs_ten.yaml

# --- 5. unknown layer type -------------------------------------------------------------------------
variant dense2.yaml '6s/type: dense,/type: dense2,/'
expect_error unknown_layer_type "dense2.yaml:6:" "'dense2'" "did you mean 'dense'" -- --config dense2.yaml

# --- 6. unknown optimizer / loss / activation ------------------------------------------------------
variant opt.yaml 's/type: adam,/type: adamm,/'
expect_error unknown_optimizer "opt.yaml:11:" "'adamm'" "sgd, adam, adamw" -- --config opt.yaml
variant loss.yaml 's/loss: cross_entropy/loss: crossentropy/'
expect_error unknown_loss "loss.yaml:13:" "'crossentropy'" "cross_entropy, binary_cross_entropy, mse" \
  -- --config loss.yaml
variant act.yaml '6s/activation: relu/activation: rectified/'
expect_error unknown_activation "act.yaml:6:" "'rectified'" "relu, leaky_relu, sigmoid, tanh" -- --config act.yaml

# --- 7. missing data file --------------------------------------------------------------------------
variant nodata.yaml 's|path: tiny.csv|path: no_such_dir/missing.csv|'
expect_error missing_data_file "no_such_dir/missing.csv" -- --config nodata.yaml
variant nodata_hint.yaml 's|path: tiny.csv|path: no_such_dir/missing.csv\n  how_to_obtain: "regenerate it with make_tiny_csv.sh"|'
expect_error missing_data_file_hint "no_such_dir/missing.csv" "regenerate it with make_tiny_csv.sh" \
  -- --config nodata_hint.yaml
# The repo's jet config names a file that is not here (relative to the working directory) and says how
# to get it.
expect_error missing_data_file_hint_jet "data/jets/hls4ml_lhc_jets_hlf.csv" "https://www.openml.org/d/42468" \
  -- --config "$CONFIGS/jet.yaml"

# --- 8. malformed CSV field: data row 7 is line 8 of the file (line 1 is the header) ----------------
awk 'NR == 8 { $0 = "1.10,7.3x,1.30,1.40,beta" } 1' tiny.csv >badnum.csv
variant badnum.yaml 's/tiny.csv/badnum.csv/'
expect_error csv_bad_number "badnum.csv:8:" "'f2'" "'7.3x'" -- --config badnum.yaml

# --- 9. CSV line with a wrong number of fields ------------------------------------------------------
awk 'NR == 12 { $0 = "1.10,1.20,1.30,1.40,1.50,beta" } 1' tiny.csv >badcols.csv
variant badcols.yaml 's/tiny.csv/badcols.csv/'
expect_error csv_field_count "badcols.csv:12:" 're:\b5\b' 're:\b6\b' -- --config badcols.yaml

# --- 10. shape mismatches ----------------------------------------------------------------------------
variant units4.yaml '7s/units: 3/units: 4/'
expect_error shape_last_layer_units "units4.yaml" "'out'" 're:\b4\b' "3 classes" -- --config units4.yaml
# Expected to pass once fixed: the message should also give the line of the layer (units4.yaml:7).
expect_error shape_last_layer_units_location "units4.yaml:7:" -- --config units4.yaml
variant conv_flat.yaml '6s/.*/    - {type: conv2d, name: conv, filters: 4, kernel_size: 3}/'
expect_error shape_conv2d_on_flat "'conv'" "conv2d" "[4]" -- --config conv_flat.yaml
# Expected to pass once fixed: the message should name the config file and the layer's line.
expect_error shape_conv2d_on_flat_location "conv_flat.yaml:6:" -- --config conv_flat.yaml

# --- 11. YAML syntax errors --------------------------------------------------------------------------
variant bad_indent.yaml 's/^  label: species/   label: species/'
expect_error yaml_bad_indent "bad_indent.yaml:3:" "YAML syntax error" -- --config bad_indent.yaml
variant unclosed.yaml '6s/}$//'
expect_error yaml_unclosed_flow "re:unclosed\.yaml:[67]:" "YAML syntax error" -- --config unclosed.yaml

# --- 12. command-line flags (CLI11 reports these, with its own exit codes) ---------------------------
EXPECT_STATUS=cli expect_error cli_missing_config "--config" -- --out failout
EXPECT_STATUS=cli expect_error cli_nonexistent_config "--config" "no_such_config.yaml" \
  -- --config no_such_config.yaml
EXPECT_STATUS=cli expect_error cli_negative_epochs "--epochs" "-3" -- --config good.yaml --epochs -3
EXPECT_STATUS=cli expect_error cli_threads_not_a_number "--threads" "abc" -- --config good.yaml --threads abc
# Expected to pass once fixed: these messages print the validator's range as "0.000000 to 1797693...
# (309 digits)", which is unreadable and, for --epochs, wrong (0 is rejected too).
EXPECT_STATUS=cli expect_error cli_negative_epochs_readable "--epochs" "!17976931348623157" \
  -- --config good.yaml --epochs -3
EXPECT_STATUS=cli expect_error cli_threads_not_a_number_readable "--threads" "!17976931348623157" \
  -- --config good.yaml --threads abc

# --- 14a. a successful run writes the whole run directory ---------------------------------------------
run_train --config good.yaml --out run1
problems=()
((STATUS == 0)) || problems+=("exit status $STATUS")
for f in model.ckpt metrics.json history.csv summary.txt training_curves.svg; do
  [[ -s "run1/$f" ]] || problems+=("run1/$f missing or empty")
done
[[ -e run1.partial ]] && problems+=("run1.partial left behind")
if [[ -f run1/history.csv ]]; then
  rows=$(wc -l <run1/history.csv)
  ((rows == 2)) || problems+=("history.csv has $rows lines, expected 1 header + 1 epoch")
  head -n 1 run1/history.csv | grep -q '^epoch,' || problems+=("history.csv has no header")
fi
grep -q '"test_accuracy"' run1/metrics.json 2>/dev/null || problems+=("metrics.json lacks test_accuracy")
grep -qi 'error' err.txt && problems+=("stderr mentions an error")
if ((${#problems[@]} == 0)); then
  ok successful_run_outputs
else
  not_ok successful_run_outputs "$(printf '%s; ' "${problems[@]}")"
  indent err.txt
fi
have_run1=0
[[ -s run1/model.ckpt ]] && have_run1=1

# --- 13. bad checkpoints for --resume -------------------------------------------------------------------
if ((have_run1)); then
  ckpt=run1/model.ckpt
  size=$(stat -c %s "$ckpt")
  head -c 100 "$ckpt" >trunc.ckpt
  expect_error ckpt_truncated "trunc.ckpt" "truncated" -- --config good.yaml --resume trunc.ckpt
  head -c 10 "$ckpt" >trunc_header.ckpt
  expect_error ckpt_truncated_header "trunc_header.ckpt" "truncated" -- --config good.yaml --resume trunc_header.ckpt
  # Flip every bit of one byte in the middle of the payload.
  cp "$ckpt" flipped.ckpt
  mid=$((size / 2))
  byte=$(od -An -tu1 -j "$mid" -N 1 "$ckpt" | tr -d ' ')
  printf "\\$(printf '%03o' $((255 - byte)))" | dd of=flipped.ckpt bs=1 seek="$mid" conv=notrunc 2>/dev/null
  if cmp -s "$ckpt" flipped.ckpt; then
    not_ok ckpt_corrupted "test bug: could not flip byte $mid"
  else
    expect_error ckpt_corrupted "flipped.ckpt" "corrupted" -- --config good.yaml --resume flipped.ckpt
  fi
  # Format version (u32 little-endian after the 8-byte magic "KILNCKPT") -> 99.
  cp "$ckpt" v99.ckpt
  printf '\143\000\000\000' | dd of=v99.ckpt bs=1 seek=8 conv=notrunc 2>/dev/null
  expect_error ckpt_wrong_version "v99.ckpt" "version 99" -- --config good.yaml --resume v99.ckpt
  echo "these are not the weights you are looking for" >notckpt.bin
  expect_error ckpt_not_a_checkpoint "notckpt.bin" "not a kiln checkpoint" -- --config good.yaml --resume notckpt.bin
else
  for n in ckpt_truncated ckpt_truncated_header ckpt_corrupted ckpt_wrong_version ckpt_not_a_checkpoint; do
    not_ok "$n" "skipped: the successful run wrote no checkpoint"
  done
fi

# --- 15. --resume continues the history ------------------------------------------------------------------
if ((have_run1)); then
  run_train --config good.yaml --resume run1/model.ckpt --epochs 2 --out run2
  problems=()
  ((STATUS == 0)) || problems+=("exit status $STATUS")
  if [[ -f run2/history.csv ]]; then
    rows=$(wc -l <run2/history.csv)
    ((rows == 3)) || problems+=("history.csv has $rows lines, expected 1 header + 2 epochs")
    [[ "$(cut -d, -f1 run2/history.csv | tail -n +2 | tr '\n' ' ')" == "1 2 " ]] ||
      problems+=("epochs column is not 1, 2")
    # The first epoch is the resumed run's, unchanged.
    [[ "$(sed -n 2p run2/history.csv)" == "$(sed -n 2p run1/history.csv)" ]] ||
      problems+=("epoch 1 differs from the checkpoint's history")
  else
    problems+=("run2/history.csv missing")
  fi
  for f in model.ckpt metrics.json; do [[ -s "run2/$f" ]] || problems+=("run2/$f missing"); done
  if ((${#problems[@]} == 0)); then
    ok resume_continues_history
  else
    not_ok resume_continues_history "$(printf '%s; ' "${problems[@]}")"
    indent err.txt
    [[ -f run2/history.csv ]] && indent run2/history.csv
  fi
else
  not_ok resume_continues_history "skipped: the successful run wrote no checkpoint"
fi

# --- 14b. a run that fails after creating its directory never looks like a success ---------------------
# A learning rate of 1e30 makes the loss NaN in the first epoch: the failure comes from training, after
# the output directory was created.
variant diverge.yaml 's/type: adam, learning_rate: 0.01/type: sgd, learning_rate: 1.0e30/; s/batch_size: 16/batch_size: 8/'
# Into the previous successful run's directory: that run must stay as it was.
cp -r run1 run1.before
expect_error diverged_run "training diverged" "learning_rate" -- --config diverge.yaml --out run1 --overwrite
problems=()
if ! diff -r run1.before run1 >/dev/null 2>&1; then problems+=("run1/ (the earlier successful run) was changed"); fi
[[ -f run1.partial/error.txt ]] || problems+=("run1.partial/error.txt missing")
grep -q 'diverged' run1.partial/error.txt 2>/dev/null || problems+=("run1.partial/error.txt does not say why")
[[ -e run1.partial/model.ckpt || -e run1.partial/metrics.json ]] && problems+=("run1.partial has model.ckpt/metrics.json")
if ((${#problems[@]} == 0)); then ok failed_run_keeps_previous_output; else
  not_ok failed_run_keeps_previous_output "$(printf '%s; ' "${problems[@]}")"
fi
# Into a new directory: only "<dir>.partial" with error.txt.
expect_error diverged_run_fresh "training diverged" -- --config diverge.yaml --out fresh
problems=()
[[ -e fresh ]] && problems+=("fresh/ exists after a failed run")
[[ -f fresh.partial/error.txt ]] || problems+=("fresh.partial/error.txt missing")
if ((${#problems[@]} == 0)); then ok failed_run_fresh_output; else
  not_ok failed_run_fresh_output "$(printf '%s; ' "${problems[@]}")"
fi
# A failure before training (bad config) creates nothing.
expect_error early_failure_run "epochs_ten.yaml:9:" -- --config epochs_ten.yaml --out early
if [[ -e early || -e early.partial ]]; then not_ok early_failure_creates_nothing "early/ or early.partial/ exists"
else ok early_failure_creates_nothing; fi
# A later successful run into run1 replaces it and removes the stale run1.partial.
run_train --config good.yaml --out run1 --overwrite
problems=()
((STATUS == 0)) || problems+=("exit status $STATUS")
[[ -s run1/metrics.json && -s run1/model.ckpt ]] || problems+=("run1 incomplete")
[[ -e run1.partial ]] && problems+=("run1.partial still exists")
if ((${#problems[@]} == 0)); then ok success_after_failure_cleans_partial; else
  not_ok success_after_failure_cleans_partial "$(printf '%s; ' "${problems[@]}")"
  indent err.txt
fi

# --- 16. anomaly detection and distillation ------------------------------------------------------------
# blobs.csv: 300 rows, 4 features, classes bg1, bg2 (the background: centres 0 and 1.5 * (1, -1, 1, -1),
# on one line) and sig (centre 1.2 * (1, 1, 1, 1), off that line but overlapping it: an AUC near 0.9, not
# 1, so that two runs' AUCs agreeing means something); noise from a Park-Miller generator (the same in
# every awk): 0.6 * (a sum of 4 uniforms - 2), standard deviation about 0.35.
awk 'BEGIN {
  s = 12345
  print "f1,f2,f3,f4,kind"
  split("bg1 bg2 sig", names, " ")
  for (i = 0; i < 300; i++) {
    k = i % 3
    for (j = 0; j < 4; j++) {
      g = 0
      for (u = 0; u < 4; u++) { s = (s * 16807) % 2147483647; g += s / 2147483647 }
      c = k == 2 ? 1.2 : (j % 2 == 0 ? 1.5 * k : -1.5 * k)
      printf "%.3f,", c + 0.6 * (g - 2)
    }
    print names[k + 1]
  }
}' >blobs.csv

# json_value FILE DOTTED.KEY: the value of a nested key of the (2-space indented) metrics.json, or "".
json_value() {
  awk -v path="$2" '{
    match($0, /^ */); d = RLENGTH / 2
    if (match($0, /"[^"]*": /)) {
      key[d] = substr($0, RSTART + 1, RLENGTH - 4)
      p = key[1]
      for (i = 2; i <= d; i++) p = p "." key[i]
      if (p == path) { v = substr($0, RSTART + RLENGTH); sub(/,$/, "", v); print v; exit }
    }
  }' "$1" 2>/dev/null
}
# num_between VALUE LO HI: VALUE is a number in [LO, HI].
num_between() {
  awk -v v="$1" -v lo="$2" -v hi="$3" 'BEGIN { exit !(v ~ /^-?[0-9.]+([eE][-+]?[0-9]+)?$/ && v + 0 >= lo && v + 0 <= hi) }'
}
# report NAME: ok, or not ok with the problems collected in the array `problems`.
report() {
  if ((${#problems[@]} == 0)); then ok "$1"; else
    not_ok "$1" "$(printf '%s; ' "${problems[@]}")"
    indent err.txt
  fi
}

cat >ae.yaml <<'YAML'
data:
  path: blobs.csv
  label: kind
  task: autoencoder
  anomaly: {background: [bg1, bg2], signal: [sig], score: mse}
model:
  layers:
    - {type: dense, name: enc, units: 2, activation: tanh}
    - {type: dense, name: dec, units: 4}
training:
  epochs: 3
  batch_size: 16
  optimizer: {type: adam, learning_rate: 0.02}
  seed: 7
  loss: mse
YAML
cat >teacher.yaml <<'YAML'
data:
  path: blobs.csv
  label: kind
model:
  layers:
    - {type: dense, name: hidden, units: 16, activation: relu}
    - {type: dense, name: out, units: 3}
training:
  epochs: 3
  batch_size: 16
  optimizer: {type: adam, learning_rate: 0.01}
  seed: 7
  loss: cross_entropy
YAML
# The student: a smaller hidden layer, soft distillation from the teacher (line 14).
sed 's/units: 16/units: 4/' teacher.yaml >student.yaml
echo '  distillation: {teacher: teacher_run/model.ckpt, mode: soft, alpha: 0.7, temperature: 3}' >>student.yaml
# A one-output student regressing the autoencoder's score, evaluated as an anomaly detector (loss on line 14).
cat >regress.yaml <<'YAML'
data:
  path: blobs.csv
  label: kind
  anomaly: {background: [bg1, bg2], signal: [sig], score: output}
model:
  layers:
    - {type: dense, name: hidden, units: 8, activation: relu}
    - {type: dense, name: score, units: 1}
training:
  epochs: 3
  batch_size: 16
  optimizer: {type: adam, learning_rate: 0.01}
  seed: 7
  loss: mae
  distillation: {teacher: ae_run/model.ckpt, mode: regression, score: mse, outlier_exposure: {fraction: 0.5}}
YAML

# 16a. An autoencoder trained on the background scores the signal: metrics.json's anomaly section, roc.svg.
run_train --config ae.yaml --out ae_run
problems=()
((STATUS == 0)) || problems+=("exit status $STATUS")
for f in model.ckpt metrics.json history.csv roc.svg; do [[ -s "ae_run/$f" ]] || problems+=("ae_run/$f missing or empty"); done
ae_auc=$(json_value ae_run/metrics.json anomaly.signals.sig.auc)
# The reconstruction error separates the signal well after 3 epochs (0.93 when written).
num_between "$ae_auc" 0.8 1 || problems+=("anomaly.signals.sig.auc is '$ae_auc', expected a number in [0.8, 1]")
[[ "$(json_value ae_run/metrics.json anomaly.score)" == '"mse"' ]] || problems+=("anomaly.score is not \"mse\"")
# 60 test samples, 2/3 of them background; the signal class is kept in the test split only.
num_between "$(json_value ae_run/metrics.json anomaly.background_test_samples)" 30 50 ||
  problems+=("anomaly.background_test_samples not in [30, 50]")
num_between "$(json_value ae_run/metrics.json anomaly.signals.sig.samples)" 10 30 ||
  problems+=("anomaly.signals.sig.samples not in [10, 30]")
# Fewer than 100 background test samples cannot measure a 1 % rate.
[[ "$(json_value ae_run/metrics.json anomaly.signals.sig.efficiency_at_background_rate.0.01)" == null ]] ||
  problems+=("the efficiency at rate 0.01 is not null with < 100 background test samples")
grep -q 'sig (AUC' ae_run/roc.svg 2>/dev/null || problems+=("roc.svg has no 'sig (AUC ...)' series")
grep -qi 'error' err.txt && problems+=("stderr mentions an error")
report anomaly_autoencoder_run

# 16b. A teacher classifier, then a student distilled from it (soft): history.csv has the KL per epoch.
run_train --config teacher.yaml --out teacher_run
if ((STATUS != 0)); then
  not_ok distill_teacher_run "exit status $STATUS"
  indent err.txt
fi
run_train --config student.yaml --out student_run
problems=()
((STATUS == 0)) || problems+=("exit status $STATUS")
if [[ -f student_run/history.csv ]]; then
  header=$(head -n 1 student_run/history.csv)
  col=$(tr ',' '\n' <<<"$header" | grep -n -x 'kd_kl' | cut -d: -f1)
  if [[ -z "$col" ]]; then
    problems+=("history.csv has no kd_kl column: $header")
  else
    mapfile -t kl < <(tail -n +2 student_run/history.csv | cut -d, -f"$col")
    ((${#kl[@]} == 3)) || problems+=("kd_kl has ${#kl[@]} values, expected 3")
    for v in "${kl[@]}"; do num_between "$v" 0 100 || problems+=("kd_kl value '$v' is not a number >= 0"); done
    # The student moves towards its teacher: the KL falls over the 3 epochs.
    if ((${#kl[@]} == 3)) && ! awk -v a="${kl[0]}" -v b="${kl[2]}" 'BEGIN { exit !(b < a) }'; then
      problems+=("kd_kl did not fall: ${kl[*]}")
    fi
  fi
else
  problems+=("student_run/history.csv missing")
fi
num_between "$(json_value student_run/metrics.json test_accuracy)" 0.8 1 ||
  problems+=("the student's test_accuracy is not in [0.8, 1]")
report distill_soft_student_run

# 16b2. Distillation with HGQ and pruning on the student in the same run: every loss term is there (the KL,
# EBOPs, the sparsity), the pruning target is reached and the deployed model matches the quantized one.
cat >student_compressed.yaml <<'YAML'
compression:
  pruning: {pruning_method: magnitude, sparsity: 0.5}
  quantization: {enable_quantization: true, use_high_granularity_quantization: true, hgq_beta: 1.0e-6}
YAML
sed 's/epochs: 3/epochs: 2/' student.yaml >>student_compressed.yaml
echo '  pretraining_epochs: 1' >>student_compressed.yaml
echo '  fine_tuning_epochs: 1' >>student_compressed.yaml
run_train --config student_compressed.yaml --out student_compressed_run
problems=()
((STATUS == 0)) || problems+=("exit status $STATUS")
header=$(head -n 1 student_compressed_run/history.csv 2>/dev/null)
for c in kd_kl ebops sparsity; do
  tr ',' '\n' <<<"$header" | grep -q -x "$c" || problems+=("history.csv has no $c column: $header")
done
m=student_compressed_run/metrics.json
num_between "$(json_value $m sparsity)" 0.45 0.55 || problems+=("sparsity is not about 0.5")
[[ "$(json_value $m deployed_mismatches)" == 0 ]] || problems+=("deployed_mismatches is not 0")
report distill_with_hgq_and_pruning_run

# 16b3. The deployed model's check compares with the engine's quantized forward (the test evaluation's
# outputs): with 22 fractional bits on weights and inputs the accumulators pass 24 bits, float32 rounds the
# engine's sums, and the exact deployed integers differ from them; a check comparing the deployed model
# with itself, or with nothing, would report 0.
cat >wide.yaml <<'YAML'
compression:
  quantization:
    enable_quantization: true
    use_high_granularity_quantization: true
    default_fractional_bits: 22
    default_data_fractional_bits: 22
    default_data_integer_bits: 3
    hgq_beta: 1.0e-12
YAML
sed 's/epochs: 3/epochs: 1/' teacher.yaml >>wide.yaml
run_train --config wide.yaml --out wide_run
problems=()
((STATUS == 0)) || problems+=("exit status $STATUS")
m=wide_run/metrics.json
acc_bits=$(json_value $m deployed_accumulator_bits) mism=$(json_value $m deployed_mismatches)
[[ "$acc_bits" =~ ^[0-9]+$ ]] && ((acc_bits > 24)) || problems+=("deployed_accumulator_bits '$acc_bits', expected > 24")
[[ "$mism" =~ ^[0-9]+$ ]] && ((mism > 0)) || problems+=("deployed_mismatches '$mism', expected > 0")
report deployed_check_sees_float32_rounding

# 16c. A regression student of the autoencoder's score: its own anomaly report, the teacher's on the same
# test samples (the same AUC as the autoencoder's own run: same data, seed and split), their correlation.
run_train --config regress.yaml --out regress_run
problems=()
((STATUS == 0)) || problems+=("exit status $STATUS")
m=regress_run/metrics.json
pearson=$(json_value $m teacher_score_pearson)
num_between "$pearson" 0 1 || problems+=("teacher_score_pearson is '$pearson', expected a number in [0, 1]")
num_between "$(json_value $m anomaly.signals.sig.auc)" 0 1 || problems+=("anomaly.signals.sig.auc missing")
[[ "$(json_value $m anomaly.score)" == '"output"' ]] || problems+=("anomaly.score is not \"output\"")
t_auc=$(json_value $m teacher_anomaly.signals.sig.auc)
[[ -n "$t_auc" && "$t_auc" == "$ae_auc" ]] ||
  problems+=("the teacher's AUC here ('$t_auc') differs from the autoencoder run's ('$ae_auc')")
grep -q 'teacher: score' regress_run/roc.svg 2>/dev/null || problems+=("roc.svg missing or without the teacher's panel")
report distill_regression_anomaly_run

# 16d. Bad inputs: one error line naming what is wrong.
sed 's|teacher_run/model.ckpt|no_such_run/model.ckpt|' student.yaml >distill_missing.yaml
expect_error distill_teacher_missing "no_such_run/model.ckpt" -- --config distill_missing.yaml
# The message gives the config line of the teacher key, as a missing data file's does.
expect_error distill_teacher_missing_location "distill_missing.yaml:14:" -- --config distill_missing.yaml
sed 's/signal: \[sig\]/signal: [sgi]/' ae.yaml >anomaly_badclass.yaml
expect_error anomaly_class_not_in_data "anomaly_badclass.yaml:5:" "'sgi'" "bg1, bg2, sig" -- --config anomaly_badclass.yaml
sed 's/background: \[bg1, bg2\]/background: [bg1, bg3]/' ae.yaml >anomaly_badbg.yaml
expect_error anomaly_background_not_in_data "anomaly_badbg.yaml:5:" "'bg3'" "background" -- --config anomaly_badbg.yaml
sed 's/signal: \[sig\]/signal: [sig, bg2]/' ae.yaml >anomaly_both.yaml
expect_error anomaly_class_in_both "anomaly_both.yaml:5:" "'bg2'" -- --config anomaly_both.yaml
sed '/task: autoencoder/d' ae.yaml >anomaly_notask.yaml
expect_error anomaly_without_autoencoder "anomaly_notask.yaml:4:" "autoencoder" -- --config anomaly_notask.yaml
sed 's/score: mse}/score: latent, latent_layer: encoder}/' ae.yaml >anomaly_latent.yaml
expect_error anomaly_latent_layer_unknown "anomaly_latent.yaml:5:" "'encoder'" "enc, dec" -- --config anomaly_latent.yaml
sed 's/units: 4}/units: 3}/' ae.yaml >anomaly_recon_size.yaml
expect_error autoencoder_output_size "anomaly_recon_size.yaml:9:" "'dec'" "4 targets" -- --config anomaly_recon_size.yaml
sed 's/mode: soft/mode: sofft/' student.yaml >distill_mode.yaml
expect_error distill_unknown_mode "distill_mode.yaml:14:" "'sofft'" "soft, regression" -- --config distill_mode.yaml
sed 's/alpha: 0.7/alpha: 1.7/' student.yaml >distill_alpha.yaml
expect_error distill_alpha_range "distill_alpha.yaml:14:" "alpha" -- --config distill_alpha.yaml
sed 's|teacher_run/model.ckpt|ae_run/model.ckpt|' student.yaml >distill_wrong_teacher.yaml
expect_error distill_teacher_outputs "distill_wrong_teacher.yaml:14:" "ae_run/model.ckpt" "4 outputs" "3 classes" \
  -- --config distill_wrong_teacher.yaml
sed 's/mode: soft/mode: colearn/' student.yaml >distill_colearn.yaml
if [[ -s student_run/model.ckpt ]]; then
  expect_error distill_colearn_resume "distill_colearn.yaml:14:" "--resume" "colearn" \
    -- --config distill_colearn.yaml --resume student_run/model.ckpt
else
  not_ok distill_colearn_resume "skipped: the student run wrote no checkpoint"
fi
sed 's/loss: mae/loss: maee/' regress.yaml >loss_mae.yaml
expect_error unknown_loss_lists_mae "loss_mae.yaml:14:" "'maee'" "mae" -- --config loss_mae.yaml

finish
