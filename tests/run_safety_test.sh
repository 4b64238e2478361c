#!/usr/bin/env bash
# Regression tests for issue 11's defects: `--out` never destroys what kiln did not make and replaces an
# earlier run only once the new one is complete; export only when asked, validated before training and
# part of the run; `--resume` refuses a config whose model or compression differs; huge layers, duplicate
# YAML keys and huge messages; failed writes keep the previous checkpoint.
#
#   bazel test //tests:run_safety_test
#   KILN_TRAIN=bazel-bin/tools/train KILN_SYMREG=bazel-bin/tools/symreg KILN_EXPORT=bazel-bin/tools/export \
#     bash tests/run_safety_test.sh
#
# Prints "ok - NAME" or "not ok - NAME: why" per check; exits 1 if any failed.
set -u
source "$(dirname "$0")/testlib.sh"
TRAIN=$(kiln_tool train) && SYMREG=$(kiln_tool symreg) && EXPORT=$(kiln_tool export) || exit 1
enter_scratch run_safety
# check NAME CONDITION-DESCRIPTION COMMAND...: ok when COMMAND succeeds.
check() {
  local name="$1" what="$2"
  shift 2
  if "$@"; then ok "$name"; else not_ok "$name" "$what; stderr: $(head -c 600 err.txt 2>/dev/null)"; fi
}
train() { "$TRAIN" --quiet "$@" >out.txt 2>err.txt; STATUS=$?; }
symreg() { "$SYMREG" --quiet "$@" >out.txt 2>err.txt; STATUS=$?; }
# One error line, status 1, containing every argument.
one_error() {
  ((STATUS == 1)) || return 1
  [[ $(grep -c . err.txt) -eq 1 ]] || return 1
  local e
  for e in "$@"; do grep -qF -- "$e" err.txt || return 1; done
}

# --- inputs ----------------------------------------------------------------------------------------
awk 'BEGIN { print "a,b,c,label"; for (i = 0; i < 90; i++) printf "%.2f,%.2f,%.2f,%s\n", (i % 3) + (i * 37 % 100) / 100, (i * 53 % 100) / 100, (i % 3) * 0.5, (i % 3 == 0 ? "x" : (i % 3 == 1 ? "y" : "z")) }' >tiny.csv
awk 'BEGIN { print "x0,x1,y"; for (i = 0; i < 60; i++) { x = i / 10; printf "%.3f,%.3f,%.4f\n", x, 1 - x, x * x + 1 } }' >reg.csv
cat >good.yaml <<'EOF'
data:
  path: tiny.csv
  label: label
model:
  layers:
    - {type: dense, name: hidden, units: 8, activation: relu}
    - {type: dense, name: out, units: 3}
training:
  epochs: 2
  batch_size: 16
  seed: 3
EOF
sed "s/units: 8, activation: relu/units: 8, activation: leaky_relu/" good.yaml >leaky.yaml  # leaky_relu has no fixed-point form
{ cat leaky.yaml; printf 'export:\n  target: c\n'; } >leaky_export.yaml
{ cat good.yaml; printf 'export:\n  target: hls\n  reuse_factor: 7\n'; } >rf7.yaml
{ cat good.yaml; printf 'compression:\n  quantization: {default_fractional_bits: 6}\n'; } >hgq.yaml
sed 's/units: 8, activation: relu/units: 16, activation: relu/' good.yaml >wider.yaml
sed 's/units: 8, activation: relu/units: 1000000000, activation: relu/' good.yaml >huge.yaml
{ cat good.yaml; printf '  epochs: 5\n'; } >dupkey.yaml

# --- 1. --out never destroys what kiln did not make -------------------------------------------------
mkdir mine && echo precious >mine/notes.txt
train --config good.yaml --out mine
check out_user_dir_refused "a directory of the user's is refused and kept" \
  eval 'one_error "mine" "not a kiln run" && [[ "$(cat mine/notes.txt)" == precious && ! -e mine.partial ]]'
echo precious >afile
train --config good.yaml --out afile
check out_user_file_refused "a regular file is refused and kept" \
  eval 'one_error "afile" "not a directory" && [[ "$(cat afile)" == precious ]]'
mkdir cwd && echo precious >cwd/keep.txt
(cd cwd && "$TRAIN" --quiet --config ../good.yaml --out . >../out.txt 2>../err.txt; echo $? >../status.txt)
STATUS=$(cat status.txt)
check out_current_dir_refused "--out . is refused and the directory kept" \
  eval 'one_error "current directory" && [[ "$(cat cwd/keep.txt)" == precious ]] && [[ $(ls -A cwd | wc -l) -eq 1 ]]'
(cd cwd && "$SYMREG" --quiet --data ../reg.csv --generations 2 --out . >../out.txt 2>../err.txt; echo $? >../status.txt)
STATUS=$(cat status.txt)
check symreg_out_current_dir_refused "symreg --out . is refused" eval 'one_error "current directory" && [[ -f cwd/keep.txt ]]'
symreg --data reg.csv --generations 2 --out mine
check symreg_out_user_dir_refused "symreg keeps a user's directory" \
  eval 'one_error "mine" "not a kiln run" && [[ "$(cat mine/notes.txt)" == precious ]]'
"$EXPORT" --model /dev/null --target c --out mine >out.txt 2>err.txt
check export_out_user_dir_kept "export never writes into a user's directory" eval '[[ "$(ls -A mine)" == notes.txt ]]'

# A run of its own is replaced only with --overwrite; a run of another command never.
train --config good.yaml --out run
check first_run "a fresh run completes with its marker" eval '((STATUS == 0)) && [[ -f run/.kiln-run && -f run/model.ckpt ]]'
cp run/metrics.json first_metrics.json
train --config good.yaml --out run --seed 9
check rerun_needs_overwrite "a second run into the same --out is refused without --overwrite" \
  eval 'one_error "run" "--overwrite" && cmp -s run/metrics.json first_metrics.json'
train --config good.yaml --out run --seed 9 --overwrite
check overwrite_replaces "--overwrite replaces the earlier run and leaves nothing aside" \
  eval '((STATUS == 0)) && ! cmp -s run/metrics.json first_metrics.json && [[ ! -e run.replaced && ! -e run.partial ]]'
symreg --data reg.csv --generations 2 --out run --overwrite
check other_command_run_kept "symreg never replaces a train run" eval 'one_error "kiln train" && [[ -f run/model.ckpt ]]'
# A kill between the two renames of a replacement leaves run.replaced and no run: the next run puts the
# earlier one back first (and so needs --overwrite to replace it).
mv run run.replaced
train --config good.yaml --out run
check killed_commit_restored "an earlier run left aside by a killed commit is put back" \
  eval 'one_error "--overwrite" && [[ -f run/model.ckpt && ! -e run.replaced ]]'
# ... and a user's directory of that name is never removed.
mkdir run.replaced && echo precious >run.replaced/keep.txt
train --config good.yaml --out run --overwrite
check user_replaced_dir_kept "a user's DIR.replaced is kept" eval '[[ "$(cat run.replaced/keep.txt)" == precious ]]'
rm -rf run.replaced run.partial
# A user's DIR.partial is never removed either.
mkdir fresh.partial && echo precious >fresh.partial/keep.txt
train --config good.yaml --out fresh
check user_partial_dir_kept "a user's DIR.partial is refused and kept" \
  eval 'one_error "fresh.partial" && [[ "$(cat fresh.partial/keep.txt)" == precious && ! -e fresh ]]'

# --- 2. export only when asked, validated before training, part of the run ---------------------------
train --config leaky.yaml --out leaky
check float_leaky_without_export "a leaky_relu model without export: trains and exports nothing" \
  eval '((STATUS == 0)) && [[ -f leaky/.kiln-run ]] && ! ls -d leaky/firmware* >/dev/null 2>&1'
train --config leaky_export.yaml --out leaky_export
check export_refused_before_training "an unexportable model with export: fails before training, naming the layer" \
  eval 'one_error "leaky_export.yaml:" "hidden" && [[ ! -e leaky_export && ! -e leaky_export.partial ]]'
train --config rf7.yaml --out rf7
check bad_reuse_factor_before_training "export: reuse_factor: 7 fails before training with its file and line" \
  eval 'one_error "rf7.yaml:14:" "reuse factor 7" && [[ ! -e rf7 && ! -e rf7.partial ]]'
{ cat good.yaml; printf 'export:\n  target: c\n  dir: ../../elsewhere\n'; } >escape.yaml
train --config escape.yaml --out escape
check export_dir_inside_run "export: dir: must stay inside the run" eval 'one_error "escape.yaml:14:" "inside the run"'
{ cat good.yaml; printf 'export:\n  target: c\n  name: tiny\n'; } >with_export.yaml
train --config with_export.yaml --out exported
check export_committed_with_run "export: writes firmware inside the run before its commit" \
  eval '((STATUS == 0)) && [[ -f exported/firmware_c/tiny.c && -f exported/.kiln-run ]]'

# --- 3. --resume refuses a different model or compression ---------------------------------------------
train --config wider.yaml --resume run/model.ckpt --epochs 3 --out r1
check resume_model_differs "--resume with another model names the key" \
  eval 'one_error "wider.yaml:" "model.layers[0].units" "16" "8"'
train --config hgq.yaml --out hgq_run
train --config good.yaml --resume hgq_run/model.ckpt --epochs 3 --out r2
check resume_hgq_ckpt_float_config "an HGQ checkpoint with a float config is refused, naming compression" \
  eval 'one_error "good.yaml" "compression" "hgq_run/model.ckpt"'
train --config hgq.yaml --resume run/model.ckpt --epochs 3 --out r3
check resume_float_ckpt_hgq_config "a float checkpoint with an HGQ config is refused, naming the file and key" \
  eval 'one_error "hgq.yaml:" "compression" "run/model.ckpt"'
train --config good.yaml --resume run/model.ckpt --epochs 3 --out r4
check resume_same_config "resume with the run's own config works" eval '((STATUS == 0)) && [[ $(wc -l <r4/history.csv) -eq 4 ]]'

# --- 4. config checks ----------------------------------------------------------------------------------
train --config huge.yaml --out huge
check huge_layer_named "units: 1000000000 names the layer and its line" eval 'one_error "huge.yaml:6:" "hidden" "limit"'
train --config dupkey.yaml --out dup
check duplicate_key_rejected "a duplicate YAML key is an error with both lines" eval 'one_error "dupkey.yaml:12:" "duplicate key" "epochs" "line 9"'
# A file of one 3 MB line: the header, whose column names the message lists.
head -c 3000000 /dev/zero | tr '\0' 'x' >longline.csv
sed 's/tiny.csv/longline.csv/' good.yaml >longline.yaml
train --config longline.yaml --out longline
check long_line_short_message "a 3 MB line gives a short one-line message" eval '((STATUS == 1)) && [[ $(wc -c <err.txt) -lt 1200 && $(wc -l <err.txt) -eq 1 ]]'
symreg --data longline.csv --target y --out longline_sr
check symreg_long_line_short_message "symreg: a 3 MB line gives a short one-line message" eval '((STATUS == 1)) && [[ $(wc -c <err.txt) -lt 1200 && $(wc -l <err.txt) -eq 1 ]]'

# --- 5. divergence: where and when, and the last finite model stays on disk --------------------------------
sed 's/seed: 3/seed: 3\n  optimizer: {type: sgd, learning_rate: 30, momentum: 0.9}/; s/epochs: 2/epochs: 30/' good.yaml >diverge.yaml
train --config diverge.yaml --out diverge
epoch=$(sed -nE 's/.*at epoch ([0-9]+), batch [0-9]+.*/\1/p' err.txt)
check divergence_named "a diverging run names the epoch, batch and layer and suggests a lower learning rate" \
  eval 'one_error "training diverged" "learning_rate" && grep -qE "at epoch [0-9]+, batch [0-9]+, first non-finite values in (layer|parameter) " err.txt'
# It diverged after some finished epochs (learning rate 30 takes a few): their last checkpoint is on disk,
# finite, and resumable; the run directory does not look complete.
check divergence_keeps_last_finite "the last finite epoch's checkpoint is kept in DIR.partial and resumes" eval '
  [[ -n "$epoch" && $epoch -ge 2 && ! -e diverge && -s diverge.partial/model.ckpt ]] &&
  [[ $(($(wc -l <diverge.partial/history.csv) - 1)) -eq $((epoch - 1)) ]] &&
  "$TRAIN" --quiet --config diverge.yaml --resume diverge.partial/model.ckpt --epochs $((epoch - 1)) --out finite >out.txt 2>err.txt &&
  grep -qE "\"test_loss\": [0-9]" finite/metrics.json'

# --- 6. a failed write keeps the previous checkpoint ---------------------------------------------------
# The file-size limit lets the first epoch's checkpoint through (about 1 KB for this model) and
# stops history.csv/model.ckpt later: with ulimit -f in 512-byte blocks, 4 = 2 KB.
{ cat good.yaml; } | sed 's/units: 8,/units: 64,/; s/epochs: 2/epochs: 3/' >big.yaml
(ulimit -f 4; "$TRAIN" --quiet --config big.yaml --out limited >out.txt 2>err.txt; echo $? >status.txt)
STATUS=$(cat status.txt)
check write_failure_clear "a write past ulimit -f is one clear error" eval 'one_error "cannot write" "limited.partial/" "too large"'
check write_failure_no_complete_run "... and leaves no complete run or half-written file" \
  eval '[[ ! -e limited ]] && ! ls limited.partial/*.tmp >/dev/null 2>&1'
# An output directory that cannot be created (its parent is a file): one line naming it. (A read-only
# directory cannot be tested as root, who writes anywhere; checkpoint_test covers a failed checkpoint write
# keeping the previous checkpoint, with setrlimit.)
train --config good.yaml --out afile/run
check uncreatable_out_dir_clear "an output directory that cannot be created is one clear error" \
  eval 'one_error "afile/run" && [[ "$(cat afile)" == precious ]]'

finish
