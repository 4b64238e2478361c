#!/usr/bin/env bash
# The bad-input matrix (issue 11, item 4): every kind of input kiln reads (config, CSV, IDX, npy,
# checkpoint, flags, symreg's data) x every defect (missing, empty, truncated, wrong type, wrong shape,
# NaN/Inf, huge dimensions, non-UTF-8, unreadable). Each bad input is made in a scratch directory and
# must end with exit status 1 and ONE stderr line containing "error" that names the file (or flag/key)
# and the defect: no crash, no internal error, no huge message, no output directory that looks complete
# (tools/run_dir.h). The matrix is also a Markdown table in README.md ("## Bad input"); the test fails
# when README's table differs from the one it generates.
#
#   bazel test //tests:bad_input_matrix_test
#   KILN_TRAIN=bazel-bin/tools/train KILN_SYMREG=bazel-bin/tools/symreg KILN_EXPORT=bazel-bin/tools/export \
#     KILN_UPDATE_README=README.md bash tests/bad_input_matrix_test.sh      # rewrites README's table
#
# Prints "ok - NAME" or "not ok - NAME: why" (with the command and its stderr) per check.
set -u
export LC_ALL=C  # byte-wise sed/awk/printf: the inputs hold non-UTF-8 bytes on purpose

# --- binaries, README, scratch directory ---------------------------------------------------------------
runfiles="${TEST_SRCDIR:-${RUNFILES_DIR:-$0.runfiles}}"
TRAIN="${KILN_TRAIN:-$runfiles/kiln/tools/train}"
SYMREG="${KILN_SYMREG:-$runfiles/kiln/tools/symreg}"
EXPORT="${KILN_EXPORT:-$runfiles/kiln/tools/export}"
SCAN="${KILN_SCAN:-$runfiles/kiln/tools/scan}"
README="${KILN_README:-$runfiles/kiln/README.md}"
UPDATE="${KILN_UPDATE_README:-}"
for v in TRAIN SYMREG EXPORT SCAN; do
  if [[ ! -x "${!v}" ]]; then
    echo "not ok - setup: no binary at ${!v} (set KILN_$v)"
    exit 1
  fi
  printf -v "$v" '%s' "$(cd "$(dirname "${!v}")" && pwd)/$(basename "${!v}")"
done
export KILN_TRAIN="$TRAIN"  # kiln scan runs it (outside Bazel the variables may be relative paths)
[[ -n "$UPDATE" ]] && UPDATE="$(cd "$(dirname "$UPDATE")" && pwd)/$(basename "$UPDATE")"
[[ -f "$README" ]] && README="$(cd "$(dirname "$README")" && pwd)/$(basename "$README")"
W="${TEST_TMPDIR:-$(mktemp -d)}/bad_input"
rm -rf "$W" && mkdir -p "$W" && cd "$W" || exit 1

PASSED=0
FAILED=0
ok() { echo "ok - $1"; PASSED=$((PASSED + 1)); }
not_ok() { echo "not ok - $1: $2"; FAILED=$((FAILED + 1)); }
ROWS="$W/rows.md"
: >"$ROWS"

# cell TEXT: one table cell: scratch paths made relative, bytes of invalid UTF-8 as \xNN, cut at 160
# characters with "…", '|' escaped, backticks made quotes.
cell() {
  printf '%s' "$1" | sed "s|$W/||g" | perl -ne 'chomp; my $t = $_;
    $t =~ s/([\x80-\xff])/sprintf("\\x%02x", ord $1)/ge unless utf8::decode($t);
    if (length($t) > 160) { $t = substr($t, 0, 159); $t =~ s/\\(x[0-9a-f]?)?$//; $t .= "\x{2026}" }
    utf8::encode($t); $t =~ s/`/'"'"'/g; $t =~ s/\|/\\|/g; print $t'
}

# run TOOL ARGS...: runs a kiln command in the scratch directory with --out out (train and symreg also
# --quiet, symreg --generations 2 unless given), first, so that a flag without its value stays last.
# Sets STATUS, err.txt, SHOWN (the command as the table shows it).
run() {
  local tool="$1" bin common=(--out out)
  shift
  case "$tool" in
    train) bin="$TRAIN" common+=(--quiet) ;;
    symreg)
      bin="$SYMREG" common+=(--quiet)
      [[ " $* " == *" --generations "* ]] || common+=(--generations 2)
      ;;
    export) bin="$EXPORT" ;;
    scan) bin="$SCAN" ;;
  esac
  rm -rf out out.partial out.replaced
  "$bin" "${common[@]}" "$@" >out.txt 2>err.txt </dev/null
  STATUS=$?
  SHOWN="$tool$(printf ' %q' "$@")"
}

# bad KIND DEFECT NAME DEFECT_RE -- TOOL ARGS...: a row of the matrix. NAME (fixed text: the file, flag or
# key) and DEFECT_RE (extended regex, any case) must be in the error line.
bad() {
  local kind="$1" defect="$2" name="$3" defect_re="$4"
  shift 5
  local label="$kind: $defect"
  run "$@"
  local problems=() short=() n_err line msg
  n_err=$(grep -aci 'error' err.txt)
  line="$(grep -ai -m 1 'error' err.txt)"
  msg="${line:-$(head -n 1 err.txt)}"
  if ((STATUS >= 128)); then
    problems+=("crashed: exit status $STATUS") short+=("crash")
  elif ((STATUS == 0)); then
    problems+=("accepted: exit status 0") short+=("accepted")
  elif [[ "$kind" != flags ]] && ((STATUS != 1)); then
    problems+=("exit status $STATUS, expected 1") short+=("status")
  fi
  if grep -aqE 'internal error|terminate called|Sanitizer|runtime error|Segmentation|Aborted|core dumped' err.txt; then
    problems+=("stderr reports a crash or an internal error") short+=("internal error")
  fi
  if ((n_err != 1)); then
    problems+=("$n_err stderr lines contain 'error', expected 1")
    ((STATUS == 0)) || short+=("$n_err error lines")
  fi
  if [[ -n "$line" ]]; then
    grep -qF -- "$name" <<<"$line" || problems+=("the message does not name '$name'") short+=("names no file/key")
    grep -qiE -- "$defect_re" <<<"$line" || problems+=("the message does not say /$defect_re/") short+=("defect not named")
    ((${#line} <= 1100)) || problems+=("the message has ${#line} bytes") short+=("huge message")
  fi
  (($(wc -c <err.txt) <= 4096)) || problems+=("stderr has $(wc -c <err.txt) bytes") short+=("huge stderr")
  local f
  for f in .kiln-run metrics.json model.ckpt front.json resources.json; do
    [[ -e "out/$f" ]] && problems+=("out/$f exists: the run looks complete") short+=("complete output") && break
  done
  if ((${#problems[@]} == 0)); then
    ok "$label"
  else
    local why
    why="$(printf '%s; ' "${problems[@]}")"
    not_ok "$label" "${why%; }"
    echo "    command: $SHOWN"
    echo "    exit status: $STATUS; stderr:"
    cut -c 1-300 err.txt | head -n 5 | cat -v | sed 's/^/    | /'
  fi
  [[ "${NO_ROW:-0}" == 1 ]] && return
  local verdict="ok"
  ((${#short[@]})) && verdict="**fails**: $(printf '%s, ' "${short[@]}")" && verdict="${verdict%, }"
  [[ -n "$msg" ]] || msg="(nothing on stderr)"
  printf '| %s | %s | `%s` | `%s` | %s | %s |\n' "$kind" "$defect" "$(cell "$SHOWN")" "$(cell "$msg")" \
    "$STATUS" "$verdict" >>"$ROWS"
}

# na KIND DEFECT WHY: a combination that does not make sense.
na() { printf '| %s | %s | n/a | %s | | |\n' "$1" "$2" "$3" >>"$ROWS"; }

# good NAME TOOL ARGS...: a control: the good input the bad ones are made from works.
good() {
  local name="$1"
  shift
  run "$@"
  if ((STATUS == 0)) && [[ -e out/.kiln-run ]]; then ok "control: $name"; else
    not_ok "control: $name" "exit status $STATUS, out/.kiln-run $([[ -e out/.kiln-run ]] || echo missing)"
    cut -c 1-300 err.txt | head -n 5 | cat -v | sed 's/^/    | /'
  fi
}

# unreadable PATH: something at PATH that cannot be read as a file. chmod 000 does not stop root (as
# which the tests run here), so it is a directory, everywhere, for a table that does not depend on the user.
unreadable() { mkdir -p "$1"; }
touch probe && chmod 000 probe
CHMOD_WORKS=1
cat probe >/dev/null 2>&1 && CHMOD_WORKS=0

# --- the good inputs --------------------------------------------------------------------------------------
# 60 rows, 4 numeric features, 3 string classes; the symreg data: y = x0 x1 + x0 on 60 rows.
awk 'BEGIN { print "f1,f2,f3,f4,species"; split("alpha beta gamma", names, " ")
  for (i = 0; i < 60; i++) { k = i % 3
    printf "%.2f,%.2f,%.2f,%.2f,%s\n", k + (i * 37 % 100) / 100, k + (i * 53 % 100) / 100,
           k + (i * 71 % 100) / 100, k + (i * 89 % 100) / 100, names[k + 1] } }' >tiny.csv
awk 'BEGIN { print "x0,x1,y"; for (i = 0; i < 60; i++) { a = (i * 37 % 100) / 25 - 2; b = (i * 53 % 100) / 25 - 2
  printf "%.2f,%.2f,%.4f\n", a, b, a * b + a } }' >sr.csv
# csv_cfg FILE DATA: the base config reading DATA (line 2), a 4-8-3 MLP (lines 6-7).
csv_cfg() {
  cat >"$1" <<EOF
data:
  path: $2
  label: species
model:
  layers:
    - {type: dense, name: hidden, units: 8, activation: relu}
    - {type: dense, name: out, units: 3}
training:
  epochs: 1
  batch_size: 16
  seed: 7
EOF
}
# arr_cfg FILE FORMAT X Y: a config reading X and Y (idx or npy).
arr_cfg() {
  printf 'data:\n  format: %s\n  train_x: %s\n  train_y: %s\nmodel:\n  layers:\n    - {type: flatten}\n' "$2" "$3" "$4" >"$1"
  printf '    - {type: dense, name: out, units: 3}\ntraining:\n  epochs: 1\n  batch_size: 16\n  seed: 7\n' >>"$1"
}
# IDX (big-endian u32 header): idx_images FILE N SIZE [BYTES] (N SIZExSIZE images), idx_labels FILE N.
be32() { local v="$1" k; for k in 24 16 8 0; do printf "\\$(printf %03o $((v >> k & 255)))"; done; }
bytes() { awk -v n="$1" -v m="$2" 'BEGIN { for (i = 0; i < n; i++) printf "%c", (i * 37) % m + (m > 3) }'; }
idx_images() { { be32 2051 && be32 "$2" && be32 "$3" && be32 "$3" && bytes "${4:-$(($2 * $3 * $3))}" 200; } >"$1"; }
idx_labels() { { be32 2049 && be32 "$2" && bytes "$2" 3; } >"$1"; }
# npy FILE DESCR SHAPE: a version 1.0 .npy file with that header, data from stdin.
npy() {
  local h="{'descr': '$2', 'fortran_order': False, 'shape': $3, }" pad len
  pad=$(((64 - (11 + ${#h}) % 64) % 64)) len=$((${#h} + pad + 1))
  { printf '\223NUMPY\001\000' && printf "\\$(printf %03o $((len & 255)))\\$(printf %03o $((len >> 8)))" &&
    printf '%s%*s\n' "$h" "$pad" '' && cat; } >"$1"
}
f32s() { local i; for ((i = 1; i < $1; i++)); do printf '\000\000\200\077'; done; printf "$2"; }  # 1.0 ... then $2

csv_cfg good.yaml tiny.csv
idx_images img.idx 60 4 && idx_labels lab.idx 60 && arr_cfg idx.yaml idx img.idx lab.idx
bytes 240 200 | npy x.npy '|u1' '(60, 4)' && bytes 60 3 | npy y.npy '|u1' '(60,)' && arr_cfg npy.yaml npy x.npy y.npy
good "train on CSV" train --config good.yaml
good "train on IDX" train --config idx.yaml
good "train on npy" train --config npy.yaml
good "symreg" symreg --data sr.csv
rm -rf run && "$TRAIN" --quiet --config good.yaml --out run >/dev/null 2>&1
[[ -s run/model.ckpt ]] || not_ok "setup" "the training run wrote no run/model.ckpt"
good "export" export --model run/model.ckpt --target c
good "resume" train --config good.yaml --resume run/model.ckpt --epochs 2

# ckpt_patch OUT WHAT: run/model.ckpt with one field of its payload rewritten and the CRC-32 recomputed
# (so that the defect, not the checksum, is what the reader meets). The payload (cereal portable binary):
# endianness byte, model YAML, input shape, then the parameters (name, shape, data), the first one first.
ckpt_patch() {
  perl -e 'my $what = $ARGV[0]; local $/; open(F, "<", "run/model.ckpt") or die; binmode F; my $s = <F>;
    my $p = 25; my $u = sub { my $v = unpack("Q<", substr($s, $p, 8)); $p += 8; $v };
    $p += $u->(); my $ni = $u->(); my $input = $p; $p += 8 * $ni; $u->();
    my $n = $u->(); my $name = substr($s, $p, $n); $p += $n;
    die "unexpected layout (input shape of $ni dims, first parameter $name)\n" unless $ni == 1 && $name =~ /^\w+\.\w+$/;
    $n = $u->(); $p += 8 * $n; $u->(); my $data = $p;
    if ($what eq "nan") { substr($s, $data, 4) = "\0\0\xc0\x7f" }
    elsif ($what eq "input") { substr($s, $input, 8) = pack("q<", 5) }
    elsif ($what eq "huge") { substr($s, $input, 8) = pack("q<", 1 << 40) }
    print $s' "$2" >"$1.tmp" || return 1
  local crc
  crc=$(tail -c +25 "$1.tmp" | gzip -c | tail -c 8 | head -c 4 | od -An -tx1 | tr -d ' \n')  # gzip's CRC-32
  { head -c 20 "$1.tmp" && printf "\\x${crc:0:2}\\x${crc:2:2}\\x${crc:4:2}\\x${crc:6:2}" && tail -c +25 "$1.tmp"; } >"$1"
  rm -f "$1.tmp"
}

# --- config (train --config) ------------------------------------------------------------------------------
: >cfg_empty.yaml
head -c 150 good.yaml >cfg_truncated.yaml  # ends inside the flow mapping of line 7
sed 's/^  layers:/  layers: {type: dense, units: 3}/; /- {type/d' good.yaml >cfg_shape.yaml
sed 's/^  seed: 7/  optimizer: {type: adam, learning_rate: .nan}/' good.yaml >cfg_nan.yaml
sed 's/units: 8/units: 1000000000/' good.yaml >cfg_huge.yaml
sed 's/name: hidden/name: hidd\xe9n/' good.yaml >cfg_latin1.yaml
unreadable cfg_dir.yaml
bad config missing "no_such.yaml" 'does not exist|no such' -- train --config no_such.yaml
bad config empty "cfg_empty.yaml" 'empty|must be a YAML mapping' -- train --config cfg_empty.yaml
bad config truncated "cfg_truncated.yaml:" 'truncated|syntax error|end of' -- train --config cfg_truncated.yaml
bad config "wrong type (a CSV file)" "tiny.csv" 'not a YAML|must be a YAML mapping' -- train --config tiny.csv
bad config "wrong shape (a map for a list)" "cfg_shape.yaml:5:" "'layers'.*list" -- train --config cfg_shape.yaml
bad config "NaN/Inf values" "cfg_nan.yaml:11:" 'nan' -- train --config cfg_nan.yaml
bad config "huge dimensions" "cfg_huge.yaml:6:" 'limit|too (large|big)' -- train --config cfg_huge.yaml
bad config non-UTF-8 "cfg_latin1.yaml:6:" 'UTF-8' -- train --config cfg_latin1.yaml
bad config unreadable "cfg_dir.yaml" 'directory' -- train --config cfg_dir.yaml

# --- the pruning section (train --config: compression: pruning: and the schedule in training:) ---------------
prune_cfg() {  # prune_cfg FILE PRUNING_YAML [TRAINING_LINE]: good.yaml pruned, the schedule line appended
  { cat good.yaml && printf '%s\n' "${3:-}" && printf 'compression:\n  pruning: %s\n' "$2"; } >"$1"
}
prune_cfg prune_type.yaml '{pruning_method: magnitude, sparsity: lots}'
prune_cfg prune_shape.yaml '{pruning_method: magnitude, disable_pruning_for_layers: {out: 1}}'
prune_cfg prune_nan.yaml '{pruning_method: magnitude, sparsity: .nan}'
prune_cfg prune_huge.yaml '{pruning_method: magnitude}' '  rounds: 2000000000'
prune_cfg prune_method.yaml '{pruning_method: pqd}'
prune_cfg prune_layer.yaml '{pruning_method: wanda, disable_pruning_for_layers: [hiden]}'
prune_cfg prune_nm.yaml '{pruning_method: wanda, wanda: {N: 5, M: 4}}'
sed 's/^  seed: 7/  seed: 7\n  rounds: 3/' good.yaml >prune_none.yaml
bad "pruning config" "wrong type" "prune_type.yaml:14:" 'expects' -- train --config prune_type.yaml
bad "pruning config" "wrong shape (a map for a list)" "prune_shape.yaml:14:" 'list' -- train --config prune_shape.yaml
bad "pruning config" "NaN/Inf values" "prune_nan.yaml:14:" 'nan' -- train --config prune_nan.yaml
bad "pruning config" "huge dimensions (rounds x epochs)" "prune_huge.yaml:12:" 'limit' -- train --config prune_huge.yaml
bad "pruning config" "unknown method" "prune_method.yaml:14:" "unknown pruning_method 'pqd'" -- train --config prune_method.yaml
bad "pruning config" "unknown layer" "prune_layer.yaml:14:" "'hiden'" -- train --config prune_layer.yaml
bad "pruning config" "impossible N:M" "prune_nm.yaml:14:" 'N must be' -- train --config prune_nm.yaml
bad "pruning config" "schedule without pruning" "prune_none.yaml:12:" 'pruning' -- train --config prune_none.yaml

# --- the quantization section (train --config: compression: quantization:) ---------------------------------
{ cat good.yaml && printf 'compression:\n  quantization: {enable_quantization: true, default_fractional_bits: 1.0e12}\n'; } >quant_huge.yaml
bad "quantization config" "huge dimensions (a bit width)" "quant_huge.yaml:13:" 'bit width between -512 and 512' -- train --config quant_huge.yaml

# --- CSV (train, data: path:) -------------------------------------------------------------------------------
: >empty.csv
gzip -nc tiny.csv | head -c 400 >truncated.csv.gz
awk 'NR == 12 { $0 = "1.10,1.20,1.30,1.40,1.50,beta" } 1' tiny.csv >shape.csv
awk 'NR == 9 { $0 = "1.10,nan,1.30,1.40,beta" } 1' tiny.csv >nan.csv
wide_header() { awk -v last="$1" 'BEGIN { for (i = 0; i < 200000; i++) printf "f%d,", i; print last }'; }
{ wide_header species && tail -n +2 tiny.csv; } >wide.csv
sed 's/beta/b\xe9ta/' tiny.csv >latin1.csv
unreadable dir.csv
for f in missing.csv empty.csv truncated.csv.gz img.idx shape.csv nan.csv wide.csv latin1.csv dir.csv; do
  csv_cfg "csv_$(basename "${f%%.*}").yaml" "$f"
done
bad CSV missing "missing.csv" 'cannot open.*no such' -- train --config csv_missing.yaml
bad CSV empty "empty.csv" 'empty' -- train --config csv_empty.yaml
bad CSV "truncated (gzip)" "truncated.csv.gz" 'truncated|unexpected end' -- train --config csv_truncated.yaml
bad CSV "wrong type (IDX images)" "img.idx" 'binary|not (a )?(text|CSV)|cannot parse|no column named' -- train --config csv_img.yaml
bad CSV "wrong shape (6 fields of 5)" "shape.csv:12" 'expected 5 fields' -- train --config csv_shape.yaml
bad CSV "NaN/Inf values" "nan.csv:9" "'nan'.*not finite" -- train --config csv_nan.yaml
bad CSV "huge dimensions (200,000 columns)" "wide.csv:2" 'expected 200001 fields' -- train --config csv_wide.yaml
bad CSV "non-UTF-8 (class label)" "latin1.csv:" 'UTF-8' -- train --config csv_latin1.yaml
bad CSV unreadable "dir.csv" 'directory' -- train --config csv_dir.yaml

# --- IDX (train, data: format: idx) -------------------------------------------------------------------------
: >empty.idx
head -c 500 img.idx >truncated.idx
idx_labels lab50.idx 50
idx_images huge.idx 4294967295 4 960
unreadable dir.idx
arr_cfg idx_missing.yaml idx missing.idx lab.idx
arr_cfg idx_empty.yaml idx empty.idx lab.idx
arr_cfg idx_truncated.yaml idx truncated.idx lab.idx
arr_cfg idx_type.yaml idx lab.idx lab.idx
arr_cfg idx_shape.yaml idx img.idx lab50.idx
arr_cfg idx_huge.yaml idx huge.idx lab.idx
arr_cfg idx_dir.yaml idx dir.idx lab.idx
bad IDX missing "missing.idx" 'cannot open.*no such' -- train --config idx_missing.yaml
bad IDX empty "empty.idx" 'empty|too short' -- train --config idx_empty.yaml
bad IDX truncated "truncated.idx" 'truncated' -- train --config idx_truncated.yaml
bad IDX "wrong type (labels as images)" "lab.idx" 'magic' -- train --config idx_type.yaml
bad IDX "wrong shape (60 images, 50 labels)" "lab50.idx" '60 images.*50 labels' -- train --config idx_shape.yaml
na IDX "NaN/Inf values" "uint8 data: no NaN or Inf"
bad IDX "huge dimensions (2^32-1 images)" "huge.idx" 'truncated|too (large|many)' -- train --config idx_huge.yaml
na IDX non-UTF-8 "binary format: no text"
bad IDX unreadable "dir.idx" 'directory' -- train --config idx_dir.yaml

# --- npy (train, data: format: npy) -------------------------------------------------------------------------
: >empty.npy
head -c 200 x.npy >truncated.npy
bytes 240 200 | npy str.npy '<U1' '(60, 4)'
bytes 50 3 | npy y50.npy '|u1' '(50,)'
f32s 240 '\000\000\300\177' | npy nan.npy '<f4' '(60, 4)'
bytes 240 200 | npy huge.npy '|u1' '(4294967296, 4294967296, 4)'
bytes 240 200 | npy latin1.npy $'<f\xe94' '(60, 4)'
unreadable dir.npy
for f in missing empty truncated str nan huge latin1 dir; do arr_cfg "npy_$f.yaml" npy "$f.npy" y.npy; done
arr_cfg npy_shape.yaml npy x.npy y50.npy
bad npy missing "missing.npy" 'cannot open.*no such' -- train --config npy_missing.yaml
bad npy empty "empty.npy" 'empty|not a \.npy|too short' -- train --config npy_empty.yaml
bad npy truncated "truncated.npy" 'truncated' -- train --config npy_truncated.yaml
bad npy "wrong type (strings)" "str.npy" "unsupported dtype '<U1'" -- train --config npy_str.yaml
bad npy "wrong shape (60 x, 50 y)" "y50.npy" 'does not match' -- train --config npy_shape.yaml
bad npy "NaN/Inf values" "nan.npy" 'nan' -- train --config npy_nan.yaml
bad npy "huge dimensions (2^64 rows)" "huge.npy" 'more than|too large' -- train --config npy_huge.yaml
bad npy "non-UTF-8 (in the header's dtype)" "latin1.npy" 'dtype|header' -- train --config npy_latin1.yaml
bad npy unreadable "dir.npy" 'directory' -- train --config npy_dir.yaml

# --- checkpoint (export --model, train --resume) ------------------------------------------------------------
: >empty.ckpt
head -c 100 run/model.ckpt >truncated.ckpt
if ckpt_patch same.ckpt none && cmp -s same.ckpt run/model.ckpt && ckpt_patch input5.ckpt input &&
  ckpt_patch nan.ckpt nan && ckpt_patch huge.ckpt huge; then ok "setup: checkpoint patcher"; else
  not_ok "setup: checkpoint patcher" "cannot rewrite run/model.ckpt (has its format changed?)"
fi
sed 's/units: 8/units: 16/' good.yaml >units16.yaml
unreadable dir.ckpt
for cmd in export train; do
  if [[ $cmd == export ]]; then use=(export --target c --model) kind="checkpoint"; else
    use=(train --config good.yaml --epochs 2 --resume) kind="checkpoint (resume)"; fi
  bad "$kind" missing "missing.ckpt" 'does not exist|no such' -- "${use[@]}" missing.ckpt
  bad "$kind" empty "empty.ckpt" 'empty' -- "${use[@]}" empty.ckpt
  bad "$kind" truncated "truncated.ckpt" 'truncated' -- "${use[@]}" truncated.ckpt
  bad "$kind" "wrong type (a config)" "good.yaml" 'not a kiln checkpoint' -- "${use[@]}" good.yaml
  if [[ $cmd == export ]]; then
    bad "$kind" "wrong shape (input 5, weights for 4)" "input5.ckpt" 'shape' -- "${use[@]}" input5.ckpt
  else
    bad "$kind" "wrong shape (config: units 16)" "units" "units|differ|shape" -- train --config units16.yaml --epochs 2 --resume run/model.ckpt
  fi
  bad "$kind" "NaN/Inf values (a weight)" "nan.ckpt" "nan|not finite|non-finite" -- "${use[@]}" nan.ckpt
  bad "$kind" "huge dimensions (input 2^40)" "huge.ckpt" '1099511627776' -- "${use[@]}" huge.ckpt
  na "$kind" non-UTF-8 "binary format; its text comes from a config and data checked above"
  bad "$kind" unreadable "dir.ckpt" 'directory' -- "${use[@]}" dir.ckpt
done

# --- scan config (kiln scan --config) -----------------------------------------------------------------------
scan_good() { printf 'base: good.yaml\nsearch: {type: random, trials: 2}\nparameters:\n  training.epochs: [1, 2]\n%s\n' "$1"; }
scan_good "" >scan_ok.yaml
head -c 40 scan_ok.yaml >scan_truncated.yaml  # ends inside the flow mapping of line 2
printf 'base: good.yaml\nsearch: {type: grid}\nparameters: [training.epochs, 1]\n' >scan_shape.yaml
printf 'base: good.yaml\nsearch: {type: random, trials: 2}\nparameters:\n  training.optimizer.learning_rate: {min: nan, max: 0.1}\n' >scan_nan.yaml
printf 'base: good.yaml\nsearch: {type: random, trials: 2000000000}\nparameters:\n  training.epochs: [1, 2]\n' >scan_huge.yaml
printf 'base: good.yaml\nsearch: {type: grid}\nparameters:\n  training.\xe9pochs: [1, 2]\n' >scan_latin1.yaml
printf 'base: good.yaml\nsearch: {type: grid}\nparameters:\n  model.layers.9.units: [4]\n' >scan_path.yaml
unreadable scan_dir.yaml
bad "scan config" missing "no_scan.yaml" 'does not exist' -- scan --config no_scan.yaml
bad "scan config" empty "empty.csv" 'mapping' -- scan --config empty.csv
bad "scan config" truncated "scan_truncated.yaml:" 'syntax' -- scan --config scan_truncated.yaml
bad "scan config" "wrong type (a CSV file)" "tiny.csv" 'mapping' -- scan --config tiny.csv
bad "scan config" "wrong shape (a list for a map)" "scan_shape.yaml:3" "'parameters' must map" -- scan --config scan_shape.yaml
bad "scan config" "NaN/Inf values" "scan_nan.yaml:4" 'nan' -- scan --config scan_nan.yaml
bad "scan config" "huge dimensions (2e9 trials)" "scan_huge.yaml:2" 'trials' -- scan --config scan_huge.yaml
bad "scan config" "non-UTF-8" "scan_latin1.yaml" 'UTF-8' -- scan --config scan_latin1.yaml
bad "scan config" unreadable "scan_dir.yaml" 'directory' -- scan --config scan_dir.yaml
bad "scan config" "a path not in the base config" "model.layers.9.units" 'past the end' -- scan --config scan_path.yaml

# --- flags (CLI11 checks most of them) ----------------------------------------------------------------------
bad flags missing "--data" 'required' -- symreg --target y
bad flags empty "--ops" "''" -- symreg --data sr.csv --ops ''
bad flags "truncated (no value)" "--epochs" 'missing|expected' -- train --config good.yaml --epochs
bad flags "wrong type" "--threads" 'abc' -- symreg --data sr.csv --threads abc
bad flags "wrong shape" "--layer-reuse" 'LAYER=N' -- export --model run/model.ckpt --target c --layer-reuse hidden
bad flags "NaN/Inf values" "--time-limit" 'nan' -- symreg --data sr.csv --time-limit nan
bad flags "huge dimensions (a count)" "--epochs" '99999999999.*range' -- train --config good.yaml --epochs 99999999999
bad flags non-UTF-8 "--function" 'identifier' -- symreg --data sr.csv --function $'f\xe9'
na flags unreadable "not files: the files they name are the rows above and below"

# --- SR data (symreg --data) --------------------------------------------------------------------------------
head -c 511 sr.csv >sr_truncated.csv  # ends inside the first field of a row
sed '10s/$/,3/' sr.csv >sr_shape.csv
sed '10s/,[^,]*$/,inf/' sr.csv >sr_inf.csv
{ wide_header y && tail -n +2 sr.csv; } >sr_wide.csv
sed '1s/x1/x\xe91/' sr.csv >sr_latin1.csv
unreadable sr_dir.csv
bad "SR data" missing "missing.csv" 'cannot open.*no such' -- symreg --data missing.csv
bad "SR data" empty "empty.csv" 'empty' -- symreg --data empty.csv
bad "SR data" "truncated (inside a row)" "sr_truncated.csv:" 'truncated|expected 3 fields' -- symreg --data sr_truncated.csv
bad "SR data" "wrong type (IDX images)" "img.idx" 'binary|not (a )?(text|CSV)|cannot parse|no column named' -- symreg --data img.idx
bad "SR data" "wrong shape (4 fields of 3)" "sr_shape.csv:10" 'expected 3 fields' -- symreg --data sr_shape.csv
bad "SR data" "NaN/Inf values" "sr_inf.csv:10" "'inf'.*not finite" -- symreg --data sr_inf.csv
bad "SR data" "huge dimensions (200,000 columns)" "sr_wide.csv:2" 'expected 200001 fields' -- symreg --data sr_wide.csv
bad "SR data" "non-UTF-8 (column name)" "sr_latin1.csv:1" 'UTF-8' -- symreg --data sr_latin1.csv
bad "SR data" unreadable "sr_dir.csv" 'directory' -- symreg --data sr_dir.csv

# Not in the table: where chmod 000 does stop reads (not root), a real unreadable file.
if ((CHMOD_WORKS)); then
  cp good.yaml cfg_000.yaml && cp tiny.csv csv_000.csv && csv_cfg csv_000.yaml csv_000.csv && chmod 000 cfg_000.yaml csv_000.csv
  NO_ROW=1 bad config "unreadable (chmod 000)" "cfg_000.yaml" 'permission denied|not readable' -- train --config cfg_000.yaml
  NO_ROW=1 bad CSV "unreadable (chmod 000)" "csv_000.csv" 'permission denied' -- train --config csv_000.yaml
fi

# --- the table, and README's copy of it -----------------------------------------------------------------------
{
  echo "Generated by \`tests/bad_input_matrix_test.sh\`, which fails when this table is out of date. Each command"
  echo "runs in a scratch directory with \`--out out\` added (and \`--quiet\` for train and symreg, \`--generations 2\`"
  echo "for symreg); \"unreadable\" is a directory where the file is expected (\`chmod 000\` does not stop root)."
  echo "The last column says whether kiln meets the contract: status 1, one error line naming the file (or"
  echo "flag or key) and the defect, no crash, no output that looks complete."
  echo
  echo "| input | defect | command | message | status | check |"
  echo "|---|---|---|---|---|---|"
  cat "$ROWS"
} >table.md
begin='<!-- bad-input-matrix:begin -->' end='<!-- bad-input-matrix:end -->'
if [[ -n "$UPDATE" ]]; then
  if grep -qF "$begin" "$UPDATE" && grep -qF "$end" "$UPDATE"; then
    TABLE="$W/table.md" perl -i -ne 'BEGIN { local $/; open(T, "<", $ENV{TABLE}) or die; $t = <T> }
      if (/^<!-- bad-input-matrix:end -->/) { print $t; $skip = 0 } print unless $skip;
      $skip = 1 if /^<!-- bad-input-matrix:begin -->/' "$UPDATE"
    echo "# wrote the matrix into $UPDATE"
  else
    not_ok "README table" "$UPDATE has no lines '$begin' and '$end'"
  fi
elif [[ ! -f "$README" ]]; then
  not_ok "README table" "no README at $README (set KILN_README)"
else
  sed -n "\\|^$begin|,\\|^$end|p" "$README" | sed '1d;$d' >readme_table.md
  if diff -u readme_table.md table.md >table.diff; then ok "README table is up to date"; else
    not_ok "README table" "README.md's bad-input matrix differs from what kiln prints now (- README, + now):"
    sed 's/^/    /' table.diff
    echo "    regenerate it from the repository root with:"
    echo "    bazel build //tools:all && KILN_UPDATE_README=README.md KILN_TRAIN=bazel-bin/tools/train \\"
    echo "      KILN_SYMREG=bazel-bin/tools/symreg KILN_EXPORT=bazel-bin/tools/export bash tests/bad_input_matrix_test.sh"
  fi
fi

echo "# $PASSED passed, $FAILED failed"
((FAILED == 0)) || exit 1
exit 0
