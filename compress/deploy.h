// The deployed fixed-point model: after calibration the quantized model freezes into integer codes with
// a fixed-point type per element, evaluated with integer arithmetic (int64 accumulators, shifts,
// integer rounding and overflow; a Dense/Conv product runs in float or double only where its bound proves
// that exact, Op::weights_f). This is the reference the code generators must match bit for bit, and
// it equals the quantized model's inference-mode forward exactly (quantization.md, section 8). freeze lowers
// the layers to a compress::Program (compress/program.h) and forward runs it: the C and HLS generators print
// the same program, so there is one interpreter.
//
//   DeployedModel dm = DeployedModel::freeze(model, quantized);   // after QuantizedModel::calibrate
//   std::vector<double> y = dm.forward(x);                         // x [N, in...] -> N * outputs values
//
// A value is code * 2^-f. Layers: Dense, Conv1D/2D, DepthwiseConv2D (quantized), BatchNorm (folded into
// the layer before it, or quantized on its own: a depthwise 1x1 multiply-accumulate), ReLU and linear
// activations, sigmoid/tanh/softmax through hls4ml's tables and hard tanh (as HGQ trains them), max,
// average and global average pooling, residual blocks (their add's inputs quantized or not), Flatten,
// Reshape, Dropout (identity), attention (over a fused Q, K, V), LayerNorm (in integers), positional
// embeddings, gelu by table, VAE sampling (z = mu at inference: a slice), the sum of squares of a quantized
// input (exact). Anything else (real-valued activations; multi_head_attention and transformer_block, whose
// insides are not quantized; upsampling, which serves float teachers) is refused with a message naming the
// layer.
#pragma once
#include <string>
#include <vector>

#include "compress/hgq.h"
#include "compress/program.h"

namespace kiln::compress {

class DeployedModel {
 public:
  static DeployedModel freeze(nn::Model& m, const QuantizedModel& q);

  // [N, in...] -> N x outputs, row-major; `batch` samples go through the program at once (each op over all
  // of them: the same codes for any batch; the default measured fastest by bench/deploy_bench).
  std::vector<double> forward(const Tensor& x, int64_t batch = kDefaultBatch) const;
  static constexpr int64_t kDefaultBatch = 16;
  int64_t outputs() const { return out_size_; }
  // Widest accumulator bound over the layers, in bits with sign: float32 reproduces every accumulation
  // exactly while this is <= 24 (so the quantized float forward and this model agree exactly).
  int max_accumulator_bits() const { return max_acc_bits_; }
  std::string describe() const;

  // The frozen integer program: `forward` runs it, the code generators print it.
  const Program& program() const { return program_; }
  int64_t inputs() const { return in_size_; }

 private:
  Program program_;
  int64_t in_size_ = 0, out_size_ = 0;
  int max_acc_bits_ = 0;
};

}  // namespace kiln::compress
