// The deployed fixed-point model lowered for code generation: every tensor becomes one integer buffer on a
// single grid (all its codes share `frac` fractional bits: an element with fewer fractional bits is shifted
// left, which is exact), so that the generated kernels are plain integer loops. The C and HLS emitters and
// the resource report read this program; `run` evaluates it, so a test can check the lowering against
// compress::DeployedModel before any code is compiled.
//
//   compress::DeployedModel d = compress::DeployedModel::freeze(model, quantized);
//   codegen::Program p = codegen::lower(d, "jet");
//   std::vector<int64_t> y = codegen::run(p, codegen::quantize_input(p, x_row));   // codes * 2^-p.output().frac
#pragma once
#include <string>
#include <vector>

#include "compress/deploy.h"

namespace kiln::codegen {

// Codes with `frac` fractional bits; element e lies in [lo[e], hi[e]] for every possible input.
struct Buffer {
  Shape shape;  // per sample
  int64_t size = 0;
  int frac = 0;
  std::vector<int64_t> lo, hi;
  // Codes the buffer also holds before an in-place op (ReLU, hard tanh) narrows lo/hi: its storage type
  // must hold these too.
  int64_t held_min = 0, held_max = 0;
  int64_t min() const;  // over lo and held_min: what the storage type must hold
  int64_t max() const;
};

// Signed bits (with sign) that hold every value in [lo, hi].
int signed_bits(int64_t lo, int64_t hi);

// Per-element fixed-point types stored compactly: one entry (uniform), one per channel (the last axis),
// or one per element.
struct TypeTable {
  enum Pattern { kUniform, kChannel, kElement } pattern = kUniform;
  int k = 1;
  compress::Round round = compress::Round::kRnd;
  compress::Overflow overflow = compress::Overflow::kSat;
  std::vector<int> f, m;  // fractional bits and i + f per entry (width k + m; width <= 0: pruned)
  int64_t entry(int64_t e, int64_t channels) const;  // index into f/m for element e
  int width(size_t j) const { return k + m[j]; }
  compress::FixedType type(size_t j) const { return {k, m[j] - f[j], f[j], round, overflow}; }
};

using compress::Window;

struct Op {
  enum Kind { kQuantize, kDense, kConv, kDepthwise, kRelu, kMaxPool, kLut, kHardTanh, kSoftmax, kAvgPool, kAdd } kind = kQuantize;
  std::string name;  // the layer (and part) it comes from, for comments and reports
  int in = 0, out = 0;  // buffer indices (kRelu, kHardTanh: in place, in == out)
  int in2 = -1;         // kAdd: y = in + in2 (a residual block's kept input), each shifted to out's grid
  // kQuantize: element e of `in` becomes the code of types.type(entry(e)), placed on out's grid.
  TypeTable types;
  // kDense / kConv / kDepthwise: acc = bias[n] + 2^prod_shift * sum(x * w), on out's grid.
  // Dense: weights[j * n_out + n] over the last axis (rows = leading positions); Conv: weights in the
  // layer's layout ((kh * KW + kw) * C + c) * n_out + n; Depthwise: (kh * KW + kw) * C + n.
  int64_t n_in = 0, n_out = 0, rows = 1;
  Window win;  // kConv / kDepthwise / kMaxPool / kAvgPool (y = trunc(window sum / real inputs), same grid)
  int w_frac = 0, prod_shift = 0;
  std::vector<int64_t> weights, bias;  // aligned codes; zero = pruned (never emitted)
  std::vector<int> weight_bits;         // each weight's width in bits (report)
  int64_t partial_bound = 0;            // |bias| + sum |x * w| <= this for every output and partial sum
  // kLut: y = table[clamp(trunc(x * 2^lut_shift) + N/2, 0, N - 1)] (compress/lut_codes.h), table codes on
  // out's grid. kSoftmax: softmax_codes() on every lane of the last axis, out on softmax_out_frac.
  compress::LutSpec lut;
  std::vector<int64_t> table;
  int lut_shift = 0;
  compress::SoftmaxLutSpec softmax;
  compress::SoftmaxTables softmax_tables;
  int64_t nonzero() const;
};

struct Program {
  std::string name;
  Shape input_shape;
  TypeTable input_types;  // the model input's quantizer (float -> codes, done by the float wrapper)
  std::vector<Buffer> buffers;  // buffers[0] is the input codes
  std::vector<Op> ops;
  int output = 0;  // buffer holding the result
  std::vector<float> mean, scale;  // standardisation of raw features (empty: none)
  const Buffer& input() const { return buffers.front(); }
  const Buffer& out() const { return buffers[static_cast<size_t>(output)]; }
};

Program lower(const compress::DeployedModel& d, const std::string& name);

// The float -> code step of the model input (x already standardised), exactly as the deployed model does.
std::vector<int64_t> quantize_input(const Program& p, const float* x);
// Integer evaluation of the lowered program on one sample's input codes; returns the output codes.
std::vector<int64_t> run(const Program& p, const std::vector<int64_t>& input_codes);

}  // namespace kiln::codegen
