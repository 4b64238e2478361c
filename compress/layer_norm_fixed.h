// LayerNorm in integers, the same in training (HGQ), in the deployed model and in the generated code.
// For one token's n codes x (any common grid): S = sum x, d = n x - S (exact: n times the deviation from the
// mean), V = sum d^2 (exact). The normalised value is x^ = d / sqrt(V / n) = d sqrt(n) / sqrt(V) (the grid
// cancels; LayerNorm's epsilon is left out: V = 0 gives d = 0, x^ = 0). 1 / sqrt(V) comes from a table:
// V = v 4^e with v in [2^B, 2^(B+2)) (a right shift by 2e, or a left shift for small V), and
// r[v - 2^B] = round(2^Q sqrt(n) / sqrt(v)); then x^ = round_half_up(d r 2^(kLnFrac - Q - e)) on the grid
// 2^-kLnFrac. The layer's output y = x^ gamma + beta is a multiply-add with quantized gamma and beta.
//
//   std::vector<int64_t> r = ln_table(n);
//   ln_normalize(r, x, n, xhat);   // codes of x^ on 2^-kLnFrac
#pragma once
#include <cstdint>
#include <vector>

#include "compress/quantizer.h"
#include "engine/nn/layer.h"

namespace kiln::compress {

constexpr int kLnFrac = 8;        // fractional bits of the normalised values x^
constexpr int kLnTableBits = 6;   // B: the table spans v in [2^B, 2^(B+2)), 3 * 2^B entries
constexpr int kLnTableFrac = 10;  // Q

// r[v - 2^B] = round(2^Q sqrt(n / v)) for v in [2^B, 2^(B+2)).
std::vector<int64_t> ln_table(int64_t n);

// x^ codes (on 2^-kLnFrac) of one token's n codes, with r = ln_table(n).
void ln_normalize(const std::vector<int64_t>& r, const int64_t* x, int64_t n, int64_t* xhat);

// The normalisation of a quantized LayerNorm as the hardware computes it (nn::Slot::kActivation of the
// layer): the value is ln_normalize of the input codes on the input quantizer's finest grid, the gradient
// that of the real normalisation (x - mean) / sqrt(var + eps).
class LayerNormFixed : public nn::Transform {
 public:
  LayerNormFixed(std::shared_ptr<FixedQuantizer> input, float eps)
      : input_(std::move(input)), eps_(eps), table_(ln_table(input_->shape().back())) {}
  Var apply(const Var& x, nn::Context& ctx) override;

 private:
  std::shared_ptr<FixedQuantizer> input_;
  float eps_;
  std::vector<int64_t> table_;  // ln_table of the feature count
};

}  // namespace kiln::compress
