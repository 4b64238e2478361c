#!/usr/bin/env bash
# A trained model's generated C and HLS, on the host and on an emulated Cortex-M4: exports the C and the HLS
# project with a test bench (N test samples and kiln's outputs on them), runs the C built by the host compiler
# on all N samples and, built for the Cortex-M4 (arm-none-eabi-gcc -O2, hard float for the float front end),
# on the first min(N, 20) under qemu-system-arm (mps2-an386, semihosting); compares every output with kiln's
# deployed model and prints flash and RAM (arm-none-eabi-size of the model's object). Then the HLS C
# simulation: the test bench compiled with g++ against kiln's ap_fixed model (codegen/hls_host), on all N.
#   bash bench/run_mcu.sh RUN_DIR/model.ckpt [N]
set -euo pipefail
cd "$(dirname "$0")/.."
ckpt=$(realpath "$1")
n=${2:-20}
bazel build //tools:export >/dev/null 2>&1 || bazel build //tools:export
w=$(mktemp -d)
trap 'rm -rf "$w"' EXIT
./bazel-bin/tools/export --model "$ckpt" --target hls --out "$w/hls" --name model --tb-samples "$n" >/dev/null
./bazel-bin/tools/export --model "$ckpt" --target c --out "$w/c" --name model | grep -iE "flash|ram" || true
# main.c: the test samples as float literals (printed with 17 digits: exact), the output codes printed.
/usr/bin/python3 - "$w" <<'PY'
import sys
w = sys.argv[1]
rows = [l.split() for l in open(f"{w}/hls/tb_data/tb_input_features.dat") if l.strip()][:20]
with open(f"{w}/c/main.c", "w") as f:
    f.write('#include <stdio.h>\n#include "model.h"\n')
    f.write(f"static const float kSamples[{len(rows)}][{len(rows[0])}] = {{\n")
    for r in rows:
        f.write("  {" + ", ".join(v + "f" if ("." in v or "e" in v) else v + ".0f" for v in r) + "},\n")
    f.write("};\n")
    f.write("""static void put(long long v) {  /* newlib-nano's printf has no %lld */
  char b[24];
  int n = 0;
  unsigned long long u = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;
  do b[n++] = (char)('0' + u % 10); while ((u /= 10) != 0);
  if (v < 0) putchar('-');
  while (n) putchar(b[--n]);
  putchar(' ');
}
int main(void) {
  static model_in_t q[model_N_IN];
  static model_out_t y[model_N_OUT];
  unsigned r, j;
  for (r = 0; r < sizeof kSamples / sizeof kSamples[0]; ++r) {
    model_quantize_input(kSamples[r], q);
    model_run(q, y);
    for (j = 0; j < model_N_OUT; ++j) put((long long)y[j]);
    printf("\\n");
  }
  return 0;
}
""")
PY
# The host: every sample, read at run time.
cat >"$w/c/host.c" <<'C'
#include <stdio.h>
#include "model.h"
int main(void) {
  static float x[model_N_IN];
  static model_in_t q[model_N_IN];
  static model_out_t y[model_N_OUT];
  FILE *f = fopen("tb_input_features.dat", "r");
  int j;
  if (!f) return 2;
  for (;;) {
    for (j = 0; j < model_N_IN; ++j)
      if (fscanf(f, "%f", &x[j]) != 1) return 0;
    model_quantize_input(x, q);
    model_run(q, y);
    for (j = 0; j < model_N_OUT; ++j) printf("%lld ", (long long)y[j]);
    printf("\n");
  }
}
C
cc -std=c99 -O2 -Wall -Wextra -I"$w/c" "$w/c/model.c" "$w/c/host.c" -o "$w/host"
(cd "$w/hls/tb_data" && "$w/host") >"$w/host.txt"
arm="arm-none-eabi-gcc -mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16 -O2 -std=c99"
$arm -c "$w/c/model.c" -o "$w/model.o"
arm-none-eabi-size "$w/model.o" | awk 'NR == 2 {printf "Cortex-M4 model object: flash %d B (text %d + data %d), RAM %d B (bss)\n", $1 + $2, $1, $2, $3}'
$arm -ffunction-sections -fdata-sections --specs=nano.specs --specs=rdimon.specs -nostartfiles \
  -T codegen/mcu/mps2.ld -Wl,--gc-sections -I"$w/c" codegen/mcu/startup.c "$w/c/model.c" "$w/c/main.c" -o "$w/t.elf"
timeout -k 5 600 qemu-system-arm -M mps2-an386 -nographic -monitor none -serial none \
  -semihosting-config enable=on,target=native -kernel "$w/t.elf" </dev/null >"$w/m4.txt"
frac=$(sed -n 's/^#define model_OUT_FRAC \([-0-9]*\).*/\1/p' "$w/c/model.h")
/usr/bin/python3 - "$w" "$frac" <<'PY'
import sys
w, frac = sys.argv[1], int(sys.argv[2])
want = [[float(v) for v in l.split()] for l in open(f"{w}/hls/tb_data/tb_output_predictions.dat") if l.strip()]
ok = True
for name, label in (("host.txt", "host C"), ("m4.txt", "Cortex-M4 (QEMU mps2-an386)")):
    got = [[int(v) * 2.0 ** -frac for v in l.split()] for l in open(f"{w}/{name}") if l.strip()]
    bad = sum(a != b for g, e in zip(got, want) for a, b in zip(g, e))
    print(f"{label}: {len(got)} samples, {bad} mismatches against kiln's deployed model")
    ok = ok and bad == 0 and len(got) == (len(want) if name == "host.txt" else min(20, len(want)))
sys.exit(0 if ok else 1)
PY
echo "HLS: $(wc -l <"$w/hls/firmware/model.cpp") lines of firmware/model.cpp"
/usr/bin/time -f "HLS test bench, g++ -O1: %U s CPU" g++ -std=c++14 -O1 -w -isystem codegen/hls_host \
  -I"$w/hls/firmware" "$w/hls/firmware/model.cpp" "$w/hls/model_test.cpp" -o "$w/csim"
echo "HLS C simulation: $(cd "$w/hls" && "$w/csim")"
