// The deployed fixed-point model: after calibration the quantized model freezes into integer codes with
// a fixed-point type per element, evaluated with integer arithmetic only (int64 accumulators, shifts,
// integer rounding and overflow). This is the reference the code generators must match bit for bit, and
// it equals the quantized model's inference-mode forward exactly (quantization.md, section 8).
//
//   DeployedModel dm = DeployedModel::freeze(model, quantized);   // after QuantizedModel::calibrate
//   std::vector<double> y = dm.forward(x);                         // x [N, in...] -> N * outputs values
//
// A value is code * 2^-f. Layers: Dense, Conv1D/2D, DepthwiseConv2D (quantized), BatchNorm (folded into
// the layer before it, or quantized on its own: a depthwise 1x1 multiply-accumulate), ReLU and linear
// activations, sigmoid/tanh/softmax through hls4ml's tables and hard tanh (as HGQ trains them), max,
// average and global average pooling, residual blocks (their add's inputs quantized or not), Flatten,
// Reshape, Dropout (identity). Anything else (real-valued activations, LayerNorm, attention) is refused
// with a message naming the layer.
#pragma once
#include <string>
#include <vector>

#include "compress/hgq.h"
#include "compress/lut_codes.h"

namespace kiln::compress {

// Code c with fc fractional bits, converted to type t with t's rounding and overflow, in integers only:
// requantize(c, fc, t) * 2^-t.f == quantize(c * 2^-fc, t) for every mode (S_RND rounds as RND).
int64_t requantize(int64_t c, int fc, const FixedType& t);

// A convolution or pooling window as 2-d (a 1-d window is 2-d with H = 1), channels-last, with the
// padding before each axis (TF "same" padding puts the odd pixel after).
struct Window {
  int64_t H = 1, W = 1, C = 1, KH = 1, KW = 1, SH = 1, SW = 1, OH = 1, OW = 1, PH = 0, PW = 0;
  bool padded() const;  // some window reaches outside the input
  // Calls f(tap, base) for every kernel tap (tap = kh * KW + kw) of output position (oh, ow) that lies
  // inside the input, with base = (ih * W + iw) * C the offset of its input pixel; padded taps are skipped.
  template <class F>
  void for_each_tap(int64_t oh, int64_t ow, F&& f) const {
    for (int64_t kh = 0; kh < KH; ++kh) {
      const int64_t ih = oh * SH - PH + kh;
      if (ih < 0 || ih >= H) continue;
      for (int64_t kw = 0; kw < KW; ++kw) {
        const int64_t iw = ow * SW - PW + kw;
        if (iw >= 0 && iw < W) f(kh * KW + kw, (ih * W + iw) * C);
      }
    }
  }
};
Window window_of(const Shape& in, const Shape& out, const nn::Geometry& g);

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
    // kLut: sigmoid or tanh table; kHardTanh: clip to [-1, 1]; kSoftmax: along the last axis.
    // kAvgPool: trunc(window sum / real inputs) on the grid 2^-out_frac (compress/avg_pool.h).
    // kSave: keep the current codes (a residual block's input), requantized to `types` if the add's input
    // is quantized (the current codes go on unchanged into the body); kAdd: add the codes kept by the matching
    // kSave (the block's output + its input, aligned to the finer grid per element).
    enum Kind { kQuantize, kMac, kRelu, kMaxPool, kLut, kHardTanh, kSoftmax, kAvgPool, kSave, kAdd, kNone } kind = kNone;
    std::string name;
    Shape in_shape, out_shape;
    std::vector<FixedType> types;  // kQuantize (and kSave, if not empty): one per element of the per-sample tensor
    bool from_float = false;       // kQuantize of the model input
    bool dense = false;            // kMac: Dense (else convolution with geometry)
    nn::Geometry geom;
    std::vector<int64_t> w_code, b_code;  // kMac: kernel in the layer's layout, bias per output channel
    std::vector<int> w_frac, b_frac;
    std::vector<FixedType> w_types, b_types;  // kMac: each weight's and bias's type (widths for reports)
    int out_frac = 0;  // kMac, kAvgPool: every output code has this many fractional bits
    LutSpec lut;                    // kLut
    std::vector<int64_t> table;     // kLut: lut_table_codes(lut)
    SoftmaxLutSpec softmax;         // kSoftmax
    SoftmaxTables softmax_tables;   // kSoftmax
  };
  // The frozen program, for the code generators (codegen/ lowers these steps to C and HLS).
  const std::vector<Step>& steps() const { return steps_; }
  int64_t inputs() const { return in_size_; }

 private:
  std::vector<Step> steps_;
  int64_t in_size_ = 0, out_size_ = 0;
  int max_acc_bits_ = 0;
};

}  // namespace kiln::compress
