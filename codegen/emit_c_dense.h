// Dense layers for the C generator as packed weight matrices: one row of the narrowest integer type per
// output (int8_t / int16_t / int32_t, chosen per layer from the weights' codes), contiguous inner loops that
// host compilers vectorise, and on Cortex-M4/M7/M33 the DSP extension's dual 16-bit multiply-accumulate
// (SMLAD) where both operands fit 16 bits and the accumulator is 32 bits wide. Inputs whose weights are all
// zero and outputs whose weights are all zero (what HGQ and structured pruning remove) are dropped from the
// matrix, so they cost no operation; a layer whose remaining zeros would make the matrix larger than the
// sparse lists of emit_c_layers.cc keeps the sparse lists.
//
//   DensePlan d = plan_dense(program, op);   // d.packed: emit with emit_dense_packed, else the sparse lists
#pragma once
#include <ostream>
#include <string>
#include <vector>

#include "codegen/emit_util.h"

namespace kiln::codegen {

struct DensePlan {
  bool packed = false;           // false: the sparse lists are smaller (or the layer has no nonzero weight)
  std::vector<int64_t> cols;     // inputs j with a nonzero weight, ascending
  std::vector<int64_t> rows;     // outputs n with a nonzero weight, ascending
  int64_t stride = 0;            // weights per packed row: cols.size() rounded up to the SMLAD step
  std::vector<int64_t> weights;  // [rows.size()][stride], row-major, zero-padded
  int w_bytes = 0;               // 1, 2 or 4 (weights wider than 32 bits keep the sparse lists)
  bool wide_acc = false;         // int64_t accumulator (partial sums may reach 2^31)
  bool smlad = false;            // the DSP path is emitted: inputs and weights fit 16 bits, int32 accumulator
  int64_t packed_bytes = 0, sparse_bytes = 0;  // flash of either form (weights and index tables)
};

// The packing of a kDense op (any other kind: packed = false).
DensePlan plan_dense(const Program& p, const Op& op);

struct EmittedBytes {
  int64_t const_bytes = 0, code_bytes = 0;
};

// Writes the layer's tables to `tables` and `static void kiln_op<id>(const X *x, Y *y)` to `funcs`. The
// SMLAD path sits behind `#if KILN_DSP` (emit_c's preamble defines it).
EmittedBytes emit_dense_packed(std::ostream& tables, std::ostream& funcs, const Program& p, const Op& op,
                               const DensePlan& d, const std::string& id);

// The preamble that defines KILN_DSP (1 on an Arm core with the DSP extension unless -D<name>_NO_DSP) and the
// pair and rotate helpers of the SMLAD path.
std::string dsp_preamble(const std::string& name);

}  // namespace kiln::codegen
