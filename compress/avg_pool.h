// Average pooling as fixed-point hardware computes it (hls4ml's pooling: the window summed in the input's
// precision, then divided by the number of real inputs and truncated toward zero in that precision).
// The quantized model puts this on an average-pooling layer's output, so that training and the deployed
// integer model see the same values:
//   y = trunc(S / n) * 2^-F,  S = the window's sum of input codes on the grid 2^-F (F = the finest
//   fractional bits of the layer's input quantizer), n = the real (unpadded) inputs in the window.
// The engine's float average is sum * (1 / n); S is recovered from it exactly by rounding avg * n * 2^F
// (exact while |S| < 2^21, which freeze() checks). Gradient: straight through.
#pragma once
#include <memory>
#include <vector>

#include "compress/quantizer.h"
#include "engine/nn/layer.h"

namespace kiln::compress {

// The grid of a quantizer's values: the most fractional bits of any element that is not pruned (0 if all
// are).
int finest_frac(const FixedQuantizer& q);

// Real inputs per output position of a pooling window (row-major over the output positions).
std::vector<int64_t> window_counts(const Shape& in, const Shape& out, const nn::Geometry& g);
// A pooling layer's output shape with its spatial axes ([C] of a global pooling becomes [1, 1, C] or [1, C]).
Shape pool_output_shape(const nn::Layer& pool);

class AvgPoolRound : public nn::Transform {
 public:
  AvgPoolRound(const nn::Layer& pool, std::shared_ptr<FixedQuantizer> input);
  Var apply(const Var& x, nn::Context& ctx) override;

 private:
  std::shared_ptr<FixedQuantizer> input_;
  std::vector<int64_t> counts_;
  int64_t channels_;
};

}  // namespace kiln::compress
