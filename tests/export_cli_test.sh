#!/usr/bin/env bash
# End-to-end test of `kiln export` and of the `export:` section of `kiln train`: a short HGQ run exports C
# that compiles with -std=c99 -Wall -Wextra -Werror -pedantic, and an HLS project whose C-simulation test
# bench (compiled against kiln's ap_fixed model) reports 0 mismatches; bad input gives one error line and
# exit 1.
#
#   bazel test //tests:export_cli_test
set -u
source "$(dirname "$0")/testlib.sh"
TRAIN=$(kiln_tool train) && EXPORT=$(kiln_tool export) || exit 1
HLS_HOST="$(cd "$runfiles/kiln/codegen/hls_host" && pwd)"
enter_scratch export_cli
cd "$runfiles/kiln" || exit 1  # the configs name data/ relative to the repository

# expect_error NAME PATTERN CMD...: exit 1, exactly one stderr line, matching PATTERN.
expect_error() {
  local name=$1 pattern=$2
  shift 2
  "$@" >"$W/out.txt" 2>"$W/err.txt"
  local status=$? lines
  lines=$(wc -l <"$W/err.txt")
  if [[ $status -eq 1 && $lines -eq 1 ]] && grep -qE "$pattern" "$W/err.txt"; then
    ok "$name"
  else
    not_ok "$name" "status $status, $lines lines: $(cat "$W/err.txt")"
  fi
}

# 1. Training with an export: section writes C next to the run.
"$TRAIN" --quiet --config data/digits_hgq.yaml --epochs 3 --out "$W/run" >"$W/train.txt" 2>&1
if [[ -f "$W/run/firmware_c/digits.c" && -f "$W/run/firmware_c/resources.json" ]]; then ok "train export: section"; else
  not_ok "train export: section" "$(cat "$W/train.txt")"; fi
if cc -std=c99 -Wall -Wextra -Werror -pedantic -O2 -c "$W/run/firmware_c/digits.c" -o "$W/digits.o" 2>"$W/cc.txt"; then
  ok "generated C compiles cleanly"; else not_ok "generated C compiles cleanly" "$(cat "$W/cc.txt")"; fi
# With -Ddigits_NO_FLOAT the object has no floating point at all: built soft-float for a Cortex-M4, it calls
# no __aeabi_f*/__aeabi_d* helper (the default build, with the float layer, does: the check can fail).
ARM="arm-none-eabi-gcc -mcpu=cortex-m4 -mthumb -mfloat-abi=soft -O2 -std=c99 -Wall -Wextra -Werror -pedantic -c"
$ARM "$W/run/firmware_c/digits.c" -o "$W/f.o" && $ARM -Ddigits_NO_FLOAT "$W/run/firmware_c/digits.c" -o "$W/nf.o"
if arm-none-eabi-nm "$W/f.o" | grep -qE "__aeabi_[fd]" && ! arm-none-eabi-nm "$W/nf.o" | grep -qE "__aeabi_[fd]|[fd]2"; then
  ok "integer-only build has no floating point"; else not_ok "integer-only build has no floating point" "$(arm-none-eabi-nm "$W/nf.o")"; fi

# 2. //tools:export to HLS; the test bench runs on the run's test split.
if "$EXPORT" --model "$W/run/model.ckpt" --target hls --out "$W/hls" --name digits --reuse-factor 2 --tb-samples 50 \
    >"$W/export.txt" 2>&1 && grep -q "^total" "$W/export.txt"; then ok "export hls"; else not_ok "export hls" "$(cat "$W/export.txt")"; fi
if (cd "$W/hls" && g++ -std=c++14 -O0 -Wno-unknown-pragmas -isystem "$HLS_HOST" -Ifirmware -o csim digits_test.cpp \
      firmware/digits.cpp 2>cc.txt && ./csim >csim.txt) && grep -q "^50 samples, 0 mismatches" "$W/hls/csim.txt"; then
  ok "HLS test bench: 0 mismatches"; else not_ok "HLS test bench" "$(cat "$W/hls/cc.txt" "$W/hls/csim.txt" 2>/dev/null)"; fi
grep -q "reuse_factor = 2;" "$W/hls/firmware/parameters.h" && ok "reuse factor in parameters.h" || not_ok "reuse factor" "missing"
grep -q '"nonzero_multiplications"' "$W/hls/resources.json" && ok "resources.json" || not_ok "resources.json" "missing"

# 3. Bad input.
expect_error "invalid reuse factor names the valid ones" "reuse factor 3 is not valid for layer 'fc1'.*valid: 1, 2, 4" \
  "$EXPORT" --model "$W/run/model.ckpt" --target hls --out "$W/x" --reuse-factor 3
expect_error "unknown target" "vhdl" "$EXPORT" --model "$W/run/model.ckpt" --target vhdl --out "$W/x"
expect_error "not a checkpoint" "not a kiln checkpoint" "$EXPORT" --model "$W/run/metrics.json" --target c --out "$W/x"
expect_error "bad --layer-reuse" "LAYER=N" "$EXPORT" --model "$W/run/model.ckpt" --target hls --out "$W/x" --layer-reuse fc1
expect_error "--layer-reuse of an unknown layer" "layer 'nope'" \
  "$EXPORT" --model "$W/run/model.ckpt" --target hls --out "$W/x" --layer-reuse nope=2
expect_error "bad name" "not a C identifier" "$EXPORT" --model "$W/run/model.ckpt" --target c --out "$W/x" --name "my-model"
sed 's/^  target: c$/  target: verilog/' data/digits_hgq.yaml >"$W/bad_export.yaml"
expect_error "bad export: target in the config" "bad_export.yaml:[0-9]+:[0-9]+.*verilog" \
  "$TRAIN" --quiet --config "$W/bad_export.yaml" --out "$W/y"
printf 'data: {format: csv, path: x.csv, label: y}\nmodel: {layers: [{type: dense, units: 1}]}\nexport: {traget: c}\n' >"$W/typo.yaml"
expect_error "misspelt export key" "typo.yaml:3:.*traget.*did you mean 'target'" "$TRAIN" --quiet --config "$W/typo.yaml" --out "$W/z"

finish
