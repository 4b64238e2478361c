// Differentiable quantizers for quantization-aware training (HGQ; ../shared/reference/quantization.md,
// section 3). Like the engine's ops: free functions returning a Var, backward recorded beside the forward.
//
//   Var f(Tensor({64}, 6.f), true), i(Tensor({64}, 2.f), true);   // per-channel bits of x [B, 64]
//   Var xq = quantize_fixed(x, f, i, 1, Round::kRnd, Overflow::kSat, /*training=*/true, &rng);
//
// ---- quantize_fixed ----------------------------------------------------------------------------------
// x: any shape. f, i: float Vars holding fractional and integer bits that broadcast (numpy rules) TO x's
// shape: per tensor ([] or [1]), per channel ([C], the last axis), per element (x's per-sample shape, or
// x's full shape); anything else is a ShapeError naming both shapes. Forward: f and i are rounded to integers
// (half away from zero; straight through in the backward) and each element is quantized to (k, i, f):
//   training = false: exactly quantize() of fixed_point.h (S_RND rounds as RND);
//   training = true:  the same except that WRAP is not applied (values left unwrapped, as HGQ) and S_RND
//                     draws one uniform per element from *rng (rng may be null otherwise).
// The outputs are float32: exact while the type's width fits float's 24-bit significand.
//
// Gradients (the surrogate of the reference; xr = the rounded value before overflow handling). "Inside"
// means the rounded code needed no overflow handling (ap order: round, then overflow):
//   inside:                   dxq/dx = 1 (straight through), dxq/df = ln2 * (x - xq),  dxq/di = 0
//   above the top (SAT*):     dxq/dx = 0, dxq/df = 2^-f ln2,  dxq/di = 2^i ln2   (d/d. of max = 2^i - 2^-f)
//   below the bottom (SAT*):  dxq/dx = 0, dxq/di = -k 2^i ln2, dxq/df = 0 under SAT and SAT_ZERO,
//                             -k 2^-f ln2 under SAT_SYM   (d/d. of min = -k 2^i, or -k (2^i - 2^-f))
//   WRAP, anywhere:           dxq/dx = 1, dxq/df = ln2 * (x - xr), dxq/di = 0 (i is not trained under WRAP:
//                             it follows the data). The same at inference: the gradient never sees the wrap.
//   pruned (k + i + f <= 0):  xq = 0, dxq/dx = 0, and the bits see the error the pruning makes,
//                             dxq/df = ln2 * (x - 0), and under SAT* also dxq/di = ln2 * (x - 0) (pruning is
//                             a matter of the width, to which i and f add alike). The task loss thus keeps
//                             pulling the width up while the element matters, against the resource penalty
//                             pulling it down: that is how a pruned element comes back. Exception: unsigned
//                             (k = 0) under SAT* with x < 0 gets 0 for both, since un-pruning it would still
//                             give 0.
// SAT* = SAT, SAT_SYM and SAT_ZERO; SAT_ZERO trains like SAT (its bits get the gradient of the bound
// crossed). The gradients to f and i are summed over the axes they were broadcast along (batch etc.).
//
// ---- quantize_minifloat ------------------------------------------------------------------------------
// Elementwise quantize_minifloat() of minifloat.h. dxq/dx = 1 (straight through) except where saturation
// changed the rounded value, where it is 0. m, e, e0 are not trained.
#pragma once
#include <memory>
#include <random>
#include <vector>

#include "compress/fixed_point.h"
#include "compress/minifloat.h"
#include "compress/quantize_kernel.h"
#include "engine/autograd.h"

namespace kiln::compress {

Var quantize_fixed(const Var& x, const Var& f, const Var& i, int k, Round round, Overflow overflow,
                   bool training, std::mt19937_64* rng);
// The element-by-element definition that quantize_fixed runs when its vectorised path (quantize_kernel.h:
// RND or TRN, types up to 24 bits, modulo broadcasting) does not apply. Same values and gradients; the tests
// compare the two.
Var quantize_fixed_reference(const Var& x, const Var& f, const Var& i, int k, Round round, Overflow overflow,
                             bool training, std::mt19937_64* rng);

// quantize_fixed over many x with the same bits and mode (calibration's batches): the bits are checked and
// rounded, and the vectorised path's table built, once instead of per call, which at a small batch cost as
// much as the elements. operator()(x) gives quantize_fixed(x, f, i, k, round, overflow, training, nullptr)
// bit for bit, values and gradients; f and i must keep their values while the plan is used. Stochastic
// rounding in training (an rng per call) is refused.
class FixedPlan {
 public:
  FixedPlan(const Var& f, const Var& i, int k, Round round, Overflow overflow, bool training);
  Var operator()(const Var& x) const;
  // The vectorised path's table (null where the element loop runs) and the bits, for a fused op.
  const std::shared_ptr<const qkernel::Table>& table() const { return table_; }
  const Var& f() const { return f_; }
  const Var& i() const { return i_; }

 private:
  Var f_, i_;
  int k_;
  Round round_;
  Overflow overflow_;
  bool training_;
  std::vector<int> fb_, ib_;                     // the rounded bits
  std::shared_ptr<const qkernel::Table> table_;  // null where the vectorised path does not apply
};

// For ops fused with quantize_fixed (quantize_pool.h). The table quantize_fixed(x, f, i, k, round, overflow,
// training, rng) would run its vectorised path with, after the same checks of the bits, or null where it
// takes the element loop instead (stochastic rounding in training, f and i of different shapes or broadcasts
// other than "index modulo nb", types the table cannot hold).
std::shared_ptr<const qkernel::Table> fast_table(const Var& x, const Var& f, const Var& i, int k, Round round,
                                                 Overflow overflow, bool training);
// The bit widths in t rounded half away from zero (std::lround's values); InputError naming `name`, the
// index and the value when one is not a number of at most kMaxBits in magnitude.
std::vector<int> rounded_bits(const Tensor& t, const char* name);

// node.grad[s] += float(acc[s]): a bit tensor's gradient from its per-entry sums in double (nothing when the
// tensor wants no gradient and acc is empty).
void add_sums(Node& node, const std::vector<double>& acc);

// The surrogate's local derivatives dxq/dx, dxq/df, dxq/di of one element x quantized to q in type t (the
// table above). Both paths of quantize_fixed take their gradients from it (the vectorised one through the
// same formulas per region, checked bit for bit by the tests).
struct LocalGrad {
  double dx, df, di;
};
LocalGrad quantize_surrogate(double x, const Quantized& q, const FixedType& t);

Var quantize_minifloat(const Var& x, const MiniFloat& t);

}  // namespace kiln::compress
