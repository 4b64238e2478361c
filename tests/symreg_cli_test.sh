#!/usr/bin/env bash
# End-to-end test of `kiln symreg`: a successful regression run (front table, files, exported C that
# reproduces the engine's test predictions when compiled with the host cc), a classification run, a
# distillation run (--teacher: a tiny network trained here by `kiln train` as the oracle), and every bad
# input ending with ONE error line naming the file/flag/value and exit status 1.
#
#   bazel test //tests:symreg_cli_test
#   KILN_SYMREG=bazel-bin/tools/symreg KILN_TRAIN=bazel-bin/tools/train tests/symreg_cli_test.sh   # outside Bazel
set -u
source "$(dirname "$0")/testlib.sh"
BIN=$(kiln_tool symreg) || exit 1
TRAIN=$(kiln_tool train) || exit 1
enter_scratch symreg_cli

# --- data: y = 2.5 x0 x1 + x0 - 1 on 200 rows; a two-class set; broken files --------------------------
awk 'BEGIN { srand(7); print "x0,x1,noise,y";
  for (i = 0; i < 200; i++) { a = rand() * 4 - 2; b = rand() * 4 - 2; printf "%.6f,%.6f,%.6f,%.6f\n", a, b, rand(), 2.5 * a * b + a - 1 } }' >reg.csv
awk 'BEGIN { srand(3); print "u,v,label";
  for (i = 0; i < 300; i++) { a = rand() * 2 - 1; b = rand() * 2 - 1; printf "%.5f,%.5f,%s\n", a, b, (a * a + b > 0.2 ? "sig" : "bkg") } }' >cls.csv
printf 'x0,x1,y\n1,2,3\n4,oops,6\n' >bad_field.csv
printf 'x0,x1,y\n' >empty.csv

# --- a regression run --------------------------------------------------------------------------------
"$BIN" --data reg.csv --target y --features x0,x1 --generations 40 --seed 2 --out run1 --export c,hls --quiet \
  >out.txt 2>err.txt
status=$?
if [[ $status -ne 0 ]]; then
  not_ok "regression run" "status $status: $(cat err.txt)"
else
  ok "regression run"
  grep -q "Pareto front" out.txt && grep -q "test R^2" out.txt && ok "front table printed" ||
    not_ok "front table printed" "$(cat out.txt)"
  for f in front.json front.csv front.svg predictions.csv model.c model_hls.cpp; do
    [[ -s run1/$f ]] && ok "wrote $f" || not_ok "wrote $f" "missing"
  done
  [[ ! -e run1.partial ]] && ok "no partial directory left" || not_ok "no partial directory left" "run1.partial exists"
  # The selected expression should be (close to) the truth: R^2 of the selected row >= 0.9999.
  awk -F, 'NR > 1 && $7 == 1 { exit !($6 >= 0.9999) }' run1/front.csv && ok "selected expression fits (R^2)" ||
    not_ok "selected expression fits (R^2)" "$(cat run1/front.csv)"
  # Compile the exported C and compare with the engine's predictions on the test rows.
  cat >harness.c <<'C'
#include <stdio.h>
#include <stdlib.h>
#include <math.h>
float kiln_symreg(const float x[2]);
int main(void) {
  char line[256]; int rows = 0, bad = 0;
  if (!fgets(line, sizeof line, stdin)) return 2;
  while (fgets(line, sizeof line, stdin)) {
    float x[2], p;
    if (sscanf(line, "%f,%f,%f", &x[0], &x[1], &p) != 3) return 3;
    float c = kiln_symreg(x);
    if (fabsf(c - p) > 1e-5f * (1.0f + fabsf(p))) bad++;
    rows++;
  }
  printf("%d %d\n", rows, bad);
  return rows > 0 && bad == 0 ? 0 : 1;
}
C
  if cc -std=c99 -O2 -o harness harness.c run1/model.c -lm 2>cc.txt; then
    res=$(./harness <run1/predictions.csv)
    [[ $? -eq 0 ]] && ok "exported C reproduces the test predictions ($res)" ||
      not_ok "exported C reproduces the test predictions" "rows/mismatches: $res"
  else
    not_ok "exported C compiles" "$(cat cc.txt)"
  fi
  # --loss-floor: losses at or below it tie, so the front ends at its first entry there, which `best` selects;
  # with 0 (PySR's rule) the longer expressions that only fit the data's rounding stay on the front.
  for fl in 0 1e-3; do
    "$BIN" --data reg.csv --target y --features x0,x1 --generations 40 --seed 2 --loss-floor $fl --out floor$fl \
      --quiet >/dev/null 2>&1
  done
  below() { awk -F, -v f="$2" 'NR > 1 && $3 <= f { n++ } END { print n + 0 }' "$1"; }
  (($(below floor0/front.csv 1e-3) >= 2)) && ok "--loss-floor 0 keeps entries below 1e-3 ($(below floor0/front.csv 1e-3))" ||
    not_ok "--loss-floor 0 keeps entries below 1e-3" "$(cat floor0/front.csv)"
  awk -F, 'NR > 1 { n++; last = $3; sel = $7 } END { exit !(n > 1 && last <= 1e-3 && sel == 1) }' floor1e-3/front.csv &&
    (($(below floor1e-3/front.csv 1e-3) == 1)) && ok "--loss-floor 1e-3: the front ends at its first entry below, selected" ||
    not_ok "--loss-floor 1e-3: the front ends at its first entry below, selected" "$(cat floor1e-3/front.csv)"
  # Determinism across thread counts, through the CLI.
  "$BIN" --data reg.csv --target y --features x0,x1 --generations 10 --seed 5 --threads 1 --out t1 --quiet >/dev/null 2>&1
  "$BIN" --data reg.csv --target y --features x0,x1 --generations 10 --seed 5 --threads 2 --out t2 --quiet >/dev/null 2>&1
  cmp -s t1/front.csv t2/front.csv && ok "1 and 2 threads give the same front.csv" ||
    not_ok "1 and 2 threads give the same front.csv" "$(diff t1/front.csv t2/front.csv | head -5)"
fi

# --- a classification run ----------------------------------------------------------------------------
"$BIN" --data cls.csv --target label --classes --ops "+,-,*" --generations 15 --out run2 --quiet >out2.txt 2>err2.txt
if [[ $? -eq 0 ]] && grep -q "class sig" out2.txt && grep -q "test AUC" out2.txt; then
  ok "classification run (one-vs-rest, AUC)"
else
  not_ok "classification run" "$(cat err2.txt out2.txt)"
fi

# --- --teacher: a tiny classifier (2 -> 8 -> 2) trained on cls.csv, distilled into formulas ------------
# (a regression model too, for the error case). A few seconds each.
cat >teacher.yaml <<'YAML'
data: {format: csv, path: cls.csv, label: label, test_split: 0.2, validation_split: 0.1}
model:
  layers:
    - {type: dense, name: fc1, units: 8, activation: relu}
    - {type: dense, name: output, units: 2}
training: {epochs: 15, batch_size: 32, loss: cross_entropy, optimizer: {type: adam, learning_rate: 0.02}, seed: 3, threads: 1}
YAML
cat >reg_teacher.yaml <<'YAML'
data: {format: csv, path: reg.csv, label: y, task: regression, features: [x0, x1]}
model: {layers: [{type: dense, name: output, units: 1}]}
training: {epochs: 1, batch_size: 64, loss: mse, seed: 1, threads: 1}
YAML
"$TRAIN" --config teacher.yaml --out teacher --quiet >train_t.txt 2>&1 &&
  "$TRAIN" --config reg_teacher.yaml --out reg_teacher --quiet >>train_t.txt 2>&1 ||
  not_ok "train the teachers" "$(cat train_t.txt)"
"$BIN" --data cls.csv --target label --teacher teacher/model.ckpt --teacher-samples 300 --ops "+,-,*" \
  --generations 5 --out run5 >out5.txt 2>err5.txt
if [[ $? -ne 0 ]]; then
  not_ok "--teacher run" "$(cat err5.txt)"
else
  ok "--teacher run"
  # The teacher's test AUC against the true labels, and the front's best expression's, in one line.
  line=$(grep "teacher AUC" out5.txt)
  [[ "$line" =~ teacher\ AUC\ [01][.0-9]*,\ best\ expression\ AUC\ [01][.0-9]*\ \(complexity\ [0-9]+ ]] &&
    ok "teacher AUC line ($line)" || not_ok "teacher AUC line" "$(cat out5.txt)"
  grep -q "loss mse on teacher score z_sig - z_bkg" out5.txt && ok "fitted to the teacher's score" ||
    not_ok "fitted to the teacher's score" "$(head -3 out5.txt)"
  grep -q "(+300 sampled)" err5.txt && grep -q "test rows: its split (seed 3, 0.2)" err5.txt &&
    ok "sampled inputs and the teacher's split reported" || not_ok "sampled inputs and split reported" "$(cat err5.txt)"
  head -1 run5/front.csv | grep -q "^output,complexity,loss,score,train_auc,test_auc,selected,teacher_test_auc,expression$" &&
    ok "front.csv has test_auc and teacher_test_auc" || not_ok "front.csv columns" "$(head -1 run5/front.csv)"
  # The teacher's AUC is the same on every row and well above chance on this easy set.
  awk -F, 'NR > 1 { if (!($8 > 0.8 && $6 >= 0 && $6 <= 1)) bad = 1; n++ } END { exit bad || n == 0 }' run5/front.csv &&
    ok "AUCs in front.csv (teacher > 0.8)" || not_ok "AUCs in front.csv" "$(cat run5/front.csv)"
  grep -q '"teacher_test_auc"' run5/front.json && grep -q '"test_auc"' run5/front.json &&
    ok "front.json has test_auc and teacher_test_auc" || not_ok "front.json" "$(head -30 run5/front.json)"
  head -1 run5/predictions.csv | grep -q "^u,v,pred_class_sig,teacher_class_sig$" && ok "predictions.csv has the teacher's score" ||
    not_ok "predictions.csv has the teacher's score" "$(head -2 run5/predictions.csv)"
fi
printf 'KILNCKPT garbage' >corrupt.ckpt
awk -F, 'BEGIN { OFS = "," } { print $1, $3 }' cls.csv >cls_no_v.csv
sed '$ s/,[a-z]*$/,other/' cls.csv >cls_other.csv

# --- bad input: one line, naming what is wrong, status 1 --------------------------------------------
expect_error() {
  local name="$1" want="$2"
  shift 2
  "$BIN" --quiet --out failout "$@" >o.txt 2>e.txt
  local status=$? lines
  lines=$(wc -l <e.txt)
  if [[ $status -ne 1 ]]; then
    not_ok "$name" "status $status, stderr: $(cat e.txt)"
  elif [[ $lines -ne 1 ]]; then
    not_ok "$name" "$lines stderr lines: $(cat e.txt)"
  elif ! grep -qF -- "$want" e.txt; then
    not_ok "$name" "no '$want' in: $(cat e.txt)"
  elif [[ -e failout/front.json ]]; then
    not_ok "$name" "failout/front.json written"
  else
    ok "$name"
  fi
}
expect_error "missing file" "nope.csv" --data nope.csv --target y
expect_error "missing target column" "zz" --data reg.csv --target zz
expect_error "missing feature column" "x9" --data reg.csv --target y --features x0,x9
expect_error "non-numeric field" "bad_field.csv:3" --data bad_field.csv --target y
expect_error "empty data" "empty.csv" --data empty.csv --target y
expect_error "unknown operator" "sinh" --data reg.csv --target y --ops "+,sinh"
expect_error "bad complexity" "sin=x" --data reg.csv --target y --complexity "sin=x"
expect_error "impossible max complexity" "--max-complexity: 0" --data reg.csv --target y --max-complexity 0
expect_error "no stopping rule" "--generations" --data reg.csv --target y --generations 0
expect_error "unknown export" "--export: unknown target 'vhdl'" --data reg.csv --target y --export vhdl
expect_error "unknown loss" "--loss: unknown loss 'hinge'" --data reg.csv --target y --loss hinge
expect_error "classification loss without --classes" "--classes" --data reg.csv --target y --loss logistic
expect_error "bad test split" "--test-split" --data reg.csv --target y --test-split 1.5
expect_error "bad lut size" "--lut-size" --data reg.csv --target y --lut-size 1
expect_error "unknown flag" "--frobnicate" --data reg.csv --target y --frobnicate 3
# Numeric flags: finite and in range (nan and negative thread counts used to be accepted silently).
expect_error "time limit nan" "--time-limit: nan is not in [0, 10000000]" --data reg.csv --target y --time-limit nan
expect_error "time limit inf" "--time-limit: inf" --data reg.csv --target y --time-limit inf
expect_error "negative threads" "--threads: -2 is not in [0, 1024]" --data reg.csv --target y --threads -2
expect_error "too many threads" "--threads: 100000" --data reg.csv --target y --threads 100000
expect_error "target loss nan" "--target-loss: nan" --data reg.csv --target y --target-loss nan
expect_error "negative seed" "--seed: -1" --data reg.csv --target y --seed -1
expect_error "loss floor not a number" "--loss-floor: 'low' is not auto or a finite number >= 0" --data reg.csv \
  --target y --loss-floor low
expect_error "negative loss floor" "--loss-floor: '-1'" --data reg.csv --target y --loss-floor=-1
expect_error "depth beyond the length cap" "--max-depth: 100000 is not in [1, 512]" --data reg.csv --target y \
  --max-depth 100000
expect_error "too many generations" "--generations: 2000000000" --data reg.csv --target y --generations 2000000000
expect_error "islands x population" "--population: 100000 x --islands 1000" --data reg.csv --target y \
  --islands 1000 --population 100000
# --hls-type: only ap_fixed / ap_ufixed types (it used to be written into model_hls.cpp verbatim).
expect_error "garbage HLS type" "--hls-type: 'garbage<' is not a fixed-point type" --data reg.csv --target y \
  --export hls --hls-type "garbage<"
expect_error "HLS type too wide" "--hls-type: 'ap_fixed<65, 6>': W = 65 is not in [1, 64]" --data reg.csv \
  --target y --export hls --hls-type "ap_fixed<65, 6>"
expect_error "HLS type with a bad mode" "'AP_SAT' is not a quantization mode" --data reg.csv --target y \
  --export hls --hls-type "ap_fixed<16, 6, AP_SAT>"
# --function: a C identifier, not a keyword or reserved, never renamed (int gave C that did not compile,
# "bad name" became bad_name).
expect_error "function named int" "--function: 'int' is a C or C++ keyword" --data reg.csv --target y \
  --export c --function int
expect_error "function name with a space" "--function: 'bad name' is not a C identifier" --data reg.csv \
  --target y --export c --function "bad name"
expect_error "reserved function name" "--function: '__kiln' is reserved" --data reg.csv --target y \
  --export c --function __kiln
expect_error "function name from math.h" "--function: 'sinf'" --data reg.csv --target y --export c --function sinf
# --teacher: the checkpoint missing or corrupt, a regression model, a feature it needs missing, flags without it.
expect_error "teacher checkpoint missing" "nope.ckpt" --data cls.csv --target label --teacher nope.ckpt
expect_error "teacher checkpoint corrupt" "corrupt.ckpt" --data cls.csv --target label --teacher corrupt.ckpt
expect_error "regression teacher" "reg_teacher/model.ckpt is a regression model; --teacher needs a classifier" \
  --data reg.csv --target y --teacher reg_teacher/model.ckpt
expect_error "teacher feature missing" "no column named 'v'" --data cls_no_v.csv --target label \
  --teacher teacher/model.ckpt
expect_error "teacher class unknown" "class 'other' of the target 'label' is not one of the teacher's (bkg, sig)" \
  --data cls_other.csv --target label --teacher teacher/model.ckpt
expect_error "teacher samples without a teacher" "--teacher-samples needs --teacher" --data cls.csv --target label \
  --classes --teacher-samples 10
expect_error "logistic loss on the teacher's score" "--teacher-target label" --data cls.csv --target label \
  --teacher teacher/model.ckpt --loss logistic

# --- accepted spellings are used as given (names) and normalised (types) ------------------------------
"$BIN" --data reg.csv --target y --features x0,x1 --generations 3 --out run3 --export c,hls --quiet \
  --function fit_y --hls-type " ap_fixed< 18 ,8, AP_RND_CONV , AP_SAT > " >/dev/null 2>err3.txt
if [[ $? -ne 0 ]]; then
  not_ok "custom function name and HLS type" "$(cat err3.txt)"
else
  grep -q "^float fit_y(const float x\[2\])" run3/model.c && ok "--function used as given in model.c" ||
    not_ok "--function used as given in model.c" "$(grep -n "float" run3/model.c)"
  grep -q "^typedef ap_fixed<18, 8, AP_RND_CONV, AP_SAT> kiln_t;$" run3/model_hls.cpp &&
    grep -q "^void fit_y(" run3/model_hls.cpp && ok "--hls-type normalised in model_hls.cpp" ||
    not_ok "--hls-type normalised in model_hls.cpp" "$(grep -n "typedef\|void" run3/model_hls.cpp)"
fi
# Per-class functions take a suffix made from the class name (here "0", "1", "2"): still valid, unreserved C.
awk 'BEGIN { srand(5); print "u,v,digit";
  for (i = 0; i < 150; i++) { a = rand(); b = rand(); printf "%.5f,%.5f,%d\n", a, b, (a + b < 0.7 ? 0 : (a > b ? 1 : 2)) } }' >cls3.csv
"$BIN" --data cls3.csv --target digit --classes --ops "+,-,*" --generations 3 --out run4 --export c --quiet \
  >/dev/null 2>err4.txt
if [[ $? -eq 0 ]] && grep -q "^float kiln_symreg_0(" run4/model.c && grep -q "^float kiln_symreg_2(" run4/model.c &&
  cc -std=c99 -Wall -Werror -c -o run4/model.o run4/model.c 2>cc4.txt; then
  ok "per-class function names kiln_symreg_0.. compile"
else
  not_ok "per-class function names" "$(cat err4.txt cc4.txt 2>/dev/null; grep -n "^float" run4/model.c 2>/dev/null)"
fi

finish
