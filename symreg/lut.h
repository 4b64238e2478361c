// Lookup-table versions of the unary functions, built exactly as the exported C and HLS code build them,
// so that the search optimises what the hardware computes (the hls4ml symbolic-regression flow).
//
// A table of N entries over [lo, hi): step = (hi - lo) / N, entry j = f(lo + j * step) computed in double
// and rounded to float (when that is not finite, e.g. log(0), the entry is f at the bin centre instead).
// An input x reads
//   index = clamp(int((x - lo) * (N / (hi - lo))), 0, N - 1)     (int() truncates toward zero)
// with no interpolation: inputs below lo read entry 0, inputs at or above hi entry N - 1.
// Defaults (hls4ml's): N = 1024; sin, cos, tan, tanh, gauss on [-4, 4); log on [0, 8); exp on [0, 16);
// sqrt on [0, 16). The index computation is done in float32 in the engine, the C export and the HLS
// export alike (the HLS code converts x to float for the index; see codegen.h).
//
//   const Lut& t = lut_table(Op::kLutSin);
//   float y = t.lookup(0.3f);
#pragma once
#include <vector>

#include "symreg/ops.h"

namespace kiln::symreg {

struct LutSpec {
  int size = 1024;
  float lo = -4, hi = 4;
};

struct Lut {
  LutSpec spec;
  float scale = 0;           // N / (hi - lo), in float
  std::vector<float> table;  // [N]

  int index(float x) const {
    float f = (x - spec.lo) * scale;
    // Compare in float first: converting a float beyond int's range (or NaN) to int is undefined.
    if (!(f > 0)) return 0;
    if (f >= static_cast<float>(spec.size - 1)) return spec.size - 1;
    return static_cast<int>(f);
  }
  float lookup(float x) const { return table[static_cast<size_t>(index(x))]; }
};

// The default range of each table op (kLutSin -> [-4, 4), ...), with size N.
LutSpec default_lut_spec(Op op, int size = 1024);
// Builds the table of op (a kLut* op) for spec.
Lut build_lut(Op op, const LutSpec& spec);
// The process-wide tables the evaluator uses (built once from default_lut_spec with the current size).
const Lut& lut_table(Op op);
// Sets the table size for every table op (before the first search); InputError unless 2 <= n <= 65536.
void set_lut_size(int n);
int lut_size();

// f(x) of the exact (non-table) unary function, in double: the reference the tables sample.
double unary_reference(Op op, double x);

}  // namespace kiln::symreg
