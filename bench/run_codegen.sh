#!/usr/bin/env bash
# Batch-1 inference latency of the jet-tagger MLP (16-64-32-32-5): kiln's generated C (HGQ-quantized,
# integer only; built with cc -std=c99 -O3 -march=x86-64-v3, and with the emitter's legacy kernels for
# comparison), kiln's engine (quantized float forward, and the deployed integer model) and PyTorch (float,
# torch.no_grad, one thread), in one run. Prints a table and the ratio to PyTorch. Then the same C on an
# emulated Cortex-M4 (arm-none-eabi-gcc -O2, qemu-system-arm mps2-an386): instructions per inference, counted
# one by one (-singlestep -d exec,nochain logs one line per executed instruction; the lines between the two
# calls of an empty kiln_mark() around 20 inferences are counted), for the packed/SMLAD kernels, the same C
# with -Djet_NO_DSP (portable loops) and the legacy kernels; outputs checked against the deployed model;
# flash and RAM from arm-none-eabi-size of each model object.
#   bash bench/run_codegen.sh [--samples N] [--cflags "-O2"] [--repeats N]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --bench
bazel build //bench:codegen_bench >/dev/null 2>&1 || bazel build //bench:codegen_bench
out=$(mktemp)
w=$(mktemp -d)
trap 'rm -rf "$w" "$out"' EXIT
./bazel-bin/bench/codegen_bench --dir "$w" "$@" >"$out"
/usr/bin/python3 - >>"$out" <<'PY'
import time
import torch
torch.set_num_threads(1)
torch.manual_seed(1)
m = torch.nn.Sequential(torch.nn.Linear(16, 64), torch.nn.ReLU(), torch.nn.Linear(64, 32), torch.nn.ReLU(),
                        torch.nn.Linear(32, 32), torch.nn.ReLU(), torch.nn.Linear(32, 5)).eval()
xs = [torch.randn(1, 16) for _ in range(256)]
n = 20000
with torch.no_grad():
    for x in xs:
        m(x)
    t0 = time.perf_counter()
    for i in range(n):
        m(xs[i % 256])
    us = (time.perf_counter() - t0) / n * 1e6
print(f"pytorch infer_bs1_us {us:.4f}")
PY
/usr/bin/python3 - "$out" <<'PY'
import sys
vals = {}
for line in open(sys.argv[1]):
    who, key, v = line.split()
    vals[who] = float(v)
t = vals["pytorch"]
print(f"{'jet MLP, batch 1':36s} {'latency (us)':>14s} {'vs PyTorch':>11s}")
for who, label in [("kiln_generated_c", "kiln generated C (integer)"),
                   ("kiln_generated_c_legacy", "  the same, legacy kernels"),
                   ("kiln_engine_deployed", "kiln engine, deployed integer model"),
                   ("kiln_engine_quantized", "kiln engine, quantized forward"), ("pytorch", "PyTorch float (no_grad)")]:
    print(f"{label:36s} {vals[who]:14.3f} {t / vals[who]:10.1f}x")
print(f"generated C, legacy / packed kernels: {vals['kiln_generated_c_legacy'] / vals['kiln_generated_c']:.2f}x faster")
PY

# The Cortex-M4: build, size, run with the instruction trace, count.
arm="arm-none-eabi-gcc -mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16 -O2 -std=c99"
m4() {  # m4 LABEL SOURCE [CFLAGS...]: prints "LABEL instructions flash ram mismatches"
  local label=$1 src=$2
  shift 2
  $arm -Wall -Wextra "$@" -c "$w/$src" -o "$w/$label.o"
  $arm "$@" -ffunction-sections -fdata-sections --specs=nano.specs --specs=rdimon.specs -nostartfiles \
    -T codegen/mcu/mps2.ld -Wl,--gc-sections -I"$w" codegen/mcu/startup.c "$w/$src" "$w/m4_main.c" -o "$w/$label.elf"
  timeout -k 5 600 qemu-system-arm -M mps2-an386 -nographic -monitor none -serial none \
    -semihosting-config enable=on,target=native -singlestep -d exec,nochain -D "$w/trace.log" \
    -kernel "$w/$label.elf" </dev/null >"$w/$label.txt"
  local mark
  mark=$(arm-none-eabi-nm "$w/$label.elf" | awk '$3 == "kiln_mark" {print $1}')
  /usr/bin/python3 - "$w" "$label" "$mark" <<'PY'
import subprocess, sys
w, label, mark = sys.argv[1], sys.argv[2], int(sys.argv[3], 16)
marks = count = 0
for line in open(f"{w}/trace.log"):  # "Trace 0: HOST [FLAGS/PC/...] SYMBOL", one line per instruction
    if not line.startswith("Trace"):
        continue
    if int(line.split("[")[1].split("/")[1], 16) == mark:
        marks += 1
        if marks == 2:
            break
    elif marks == 1:
        count += 1
assert marks == 2, f"{label}: kiln_mark seen {marks} times in the trace"
want = [l.split() for l in open(f"{w}/m4_want.txt") if l.strip()]
got = [l.split() for l in open(f"{w}/{label}.txt") if l.strip()]
bad = sum(a != b for g, e in zip(got, want) for a, b in zip(g, e)) + abs(len(got) - len(want))
size = subprocess.check_output(["arm-none-eabi-size", f"{w}/{label}.o"]).decode().split("\n")[1].split()
print(label, count / len(want), int(size[0]) + int(size[1]), size[2], bad)
PY
  rm -f "$w/trace.log"
}
{
  m4 packed jet.c
  m4 portable jet.c -Djet_NO_DSP
  m4 legacy jet_legacy.c
} >"$w/m4.txt"
/usr/bin/python3 - "$w/m4.txt" <<'PY'
import sys
r = {}
for line in open(sys.argv[1]):
    label, ins, flash, ram, bad = line.split()
    r[label] = (float(ins), int(flash), int(ram), int(bad))
print("Cortex-M4 (QEMU mps2-an386, arm-none-eabi-gcc -O2), jet MLP, instructions per inference (mean of 20):")
for label, text in [("packed", "packed rows + SMLAD (the export)"), ("portable", "packed rows, portable C (-Djet_NO_DSP)"),
                    ("legacy", "legacy kernels (sparse lists)")]:
    ins, flash, ram, bad = r[label]
    print(f"  {text:40s} {ins:9.0f} instructions  flash {flash:6d} B  RAM {ram:4d} B  {bad} mismatches on 20")
for label in ("packed", "portable"):
    ratio = r[label][0] / r["legacy"][0]
    print(f"  {label} / legacy instructions: {ratio:.3f} ({100 * (1 - ratio):.1f}% fewer)")
sys.exit(1 if any(v[3] for v in r.values()) else 0)
PY
