// The deployed fixed-point model: after calibration the quantized model freezes into integer codes with
// a fixed-point type per element, evaluated with integer arithmetic only (int64 accumulators, shifts,
// integer rounding and overflow). This is the reference the code generators must match bit for bit, and
// it equals the quantized model's inference-mode forward exactly (quantization.md, section 8).
//
//   DeployedModel dm = DeployedModel::freeze(model, quantized);   // after QuantizedModel::calibrate
//   std::vector<double> y = dm.forward(x);                         // x [N, in...] -> N * outputs values
//
// A value is code * 2^-f. Layers: Dense, Conv1D/2D, DepthwiseConv2D (quantized), ReLU and linear
// activations, max pooling, Flatten, Reshape, Dropout (identity). Anything else (BatchNorm not folded,
// average pooling, table activations) is refused with a message naming the layer.
#pragma once
#include <string>
#include <vector>

#include "compress/hgq.h"

namespace kiln::compress {

// Code c with fc fractional bits, converted to type t with t's rounding and overflow, in integers only:
// requantize(c, fc, t) * 2^-t.f == quantize(c * 2^-fc, t) for every mode (S_RND rounds as RND).
int64_t requantize(int64_t c, int fc, const FixedType& t);

class DeployedModel {
 public:
  static DeployedModel freeze(nn::Model& m, const QuantizedModel& q);

  std::vector<double> forward(const Tensor& x) const;  // [N, in...] -> N x outputs, row-major
  int64_t outputs() const { return out_size_; }
  // Widest accumulator bound over the layers, in bits with sign: float32 reproduces every accumulation
  // exactly while this is <= 24 (so the quantized float forward and this model agree exactly).
  int max_accumulator_bits() const { return max_acc_bits_; }
  std::string describe() const;

  struct Step {
    enum Kind { kQuantize, kMac, kRelu, kMaxPool, kNone } kind = kNone;
    std::string name;
    Shape in_shape, out_shape;
    std::vector<FixedType> types;  // kQuantize: one per element of the per-sample tensor
    bool from_float = false;       // kQuantize of the model input
    bool dense = false;            // kMac: Dense (else convolution with geometry)
    nn::Geometry geom;
    std::vector<int64_t> w_code, b_code;  // kMac: kernel in the layer's layout, bias per output channel
    std::vector<int> w_frac, b_frac;
    int out_frac = 0;  // kMac: every output code has this many fractional bits
  };

 private:
  std::vector<Step> steps_;
  int64_t in_size_ = 0, out_size_ = 0;
  int max_acc_bits_ = 0;
};

}  // namespace kiln::compress
