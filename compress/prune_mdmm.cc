// mdmm (PQuant): pruning as constrained optimisation with the Modified Differential Method of Multipliers
// (Platt & Barr 1988). The constraint is on the sparsity of all targets together, sparsity(W) vs
// target_sparsity; the training loss adds
//     scale * (lambda * g + damping * g^2 / 2),   g = the constraint's violation,
// and the multiplier follows gradient ascent, lambda += lr_lambda * scale * g, once per loss() call (one
// training step). lambda integrates the violation, so it grows until the weights satisfy the constraint.
// The forward pass uses w * hard mask (all ones during the stage: the penalty, not a soft mask, drives
// weights to 0); finalize() keeps |w| > epsilon (or whole units with L2 > epsilon) and zeroes the rest.
//
// Metrics (the fraction of pruned weights or units over every target, pruned weights counting as 0):
//  - UnstructuredSparsity, l0_mode coarse: fraction of |w| <= epsilon. Its gradient is 0 almost everywhere,
//  so
//    the backward pass is straight-through the smooth metric below (value coarse, gradient smooth).
//  - UnstructuredSparsity, l0_mode smooth: mean(exp(-100 w^2)) (PQuant's alpha 100).
//  - StructuredSparsity: units (last axis) with L2 <= epsilon; smooth: mean over units of
//    exp(-100 * ||w_u||^2 / n_u), n_u the unit's fan-in. Using the unit's mean square keeps the width of the
//    bump independent of the fan-in (n_u = 1 gives the unstructured metric) and avoids sqrt's infinite
//    gradient at 0. coarse mode is straight-through it, as above.
// PQuant's own unstructured metric is (target^2 - l0^2) * |W|_1 / N with target_value 0; we use the plain
// sparsity against target_sparsity, which is what pruning.md and the config keys describe.
//
// Violation g: Equality g = metric - target (signed; pruning.md and PQuant use |metric - target|, but with
// |.| the ascent step is never negative, lambda only grows and the penalty has a kink at the target; signed
// g is the standard MDMM, where lambda can come back down after an overshoot and converges to the
// multiplier). LessThanOrEqual: max(0, metric - target) (sparsity at most the target: it never prunes);
// GreaterThanOrEqual: max(0, target - metric) (at least the target). Default Equality (PQuant's), which
// prunes toward target_sparsity from below.
//
// Constants: lambda starts at 0 (PQuant starts at 1, which with a signed g would first push against
// pruning); lr_lambda = 0.01, PQuant's default learning rate (PQuant uses the training lr, which the method
// does not see).
//
// Keys and what is supported: target_sparsity (default: the common `sparsity`), epsilon (1e-3), scale (10),
// damping (1), constraint_type, metric_type, l0_mode (coarse | smooth). Read but fixed at PQuant's defaults,
// an error otherwise: target_value 0 (the constraint's target is target_sparsity; in PQuant 0 is the point
// where its metric meets target_sparsity, so 0 means the same constraint), rf 1 (structured groups are whole
// units here, not reuse-factor groups), use_grad false (lambda is a buffer updated by the explicit ascent
// step; PQuant's flip-gradient variant is noted as buggy there), scale_mode mean (the metric is a fraction,
// comparable with target_sparsity).
#include <cmath>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "compress/prune_method.h"
#include "engine/ops.h"

namespace kiln::compress {
namespace {

enum class Constraint { kEquality, kLessEqual, kGreaterEqual };

struct MdmmOptions {
  Constraint constraint = Constraint::kEquality;
  bool structured = false;
  bool smooth = false;  // l0_mode
  double target = 0.8, epsilon = 1e-3, scale = 10, damping = 1;
};

constexpr float kAlpha = 100.f;     // width of the smooth L0 bump exp(-alpha w^2)
constexpr double kLrLambda = 1e-2;  // ascent step of lambda

// A value `v` whose backward passes the gradient to `x` unchanged (straight-through).
Var straight_through(float v, const Var& x) {
  return make_result(Tensor(x.shape(), v), "straight_through", {x},
                     [](Node& self) { self.inputs[0]->grad_buffer().vec() += self.grad.vec(); });
}

class Mdmm final : public PruneMethod {
 public:
  explicit Mdmm(MdmmOptions o) : o_(o) {}

  std::string name() const override { return "mdmm"; }
  bool structured() const override { return o_.structured; }

  Var loss() override {
    if (targets().empty()) return Var();
    Var m = metric();
    Var g;
    switch (o_.constraint) {
      case Constraint::kEquality:
        g = add_scalar(m, static_cast<float>(-o_.target));
        break;
      case Constraint::kLessEqual:
        g = relu(add_scalar(m, static_cast<float>(-o_.target)));
        break;
      case Constraint::kGreaterEqual:
        g = relu(add_scalar(neg(m), static_cast<float>(o_.target)));
        break;
    }
    // The penalty uses the multiplier of this step; the ascent step then uses this step's violation.
    Var penalty =
        mul_scalar(add(mul_scalar(g, lambda_[0]), mul_scalar(square(g), static_cast<float>(o_.damping / 2))),
                   static_cast<float>(o_.scale));
    lambda_[0] += static_cast<float>(kLrLambda * o_.scale * g.value()[0]);
    return penalty;
  }

  Tensor keep_mask(size_t i) override {
    const PruneTarget& t = targets()[i];
    const Tensor w = effective(t);
    Tensor m(w.shape(), 0.f);
    if (!o_.structured) {
      for (int64_t k = 0; k < w.size(); ++k) m[k] = std::fabs(w[k]) > o_.epsilon ? 1.f : 0.f;
      return m;
    }
    const Tensor keep = unit_keep(w);
    for (int64_t k = 0; k < m.size(); ++k) m[k] = keep[k % keep.size()];
    return m;
  }

  void finalize() override {
    for (size_t i = 0; i < targets().size(); ++i) {
      PruneTarget& t = targets()[i];
      t.mask = keep_mask(i);
      t.weight->var.value().vec().array() *= t.mask.vec().array();
      if (!o_.structured) continue;
      // A removed unit's bias goes with it (a unit whose kernel is 0 would otherwise output a constant). The
      // mask holds whole units, so its unit norms are 0 for removed units and >= 1 for kept ones.
      t.bias_mask = unit_keep(t.mask);
      if (t.bias) t.bias->var.value().vec().array() *= t.bias_mask.vec().array();
    }
  }

  // lambda is global: reported with target 0 so checkpoints carry it.
  void buffers(size_t i, std::vector<nn::Buffer>& out) override {
    if (i == 0) out.push_back({targets()[0].layer->name() + ".weight_prune.lambda", &lambda_});
  }

  std::vector<std::pair<std::string, double>> stats() override {
    double m = 0;
    if (!targets().empty()) {
      NoGradGuard ng;
      m = metric().value()[0];
    }
    return {{"mdmm_lambda", lambda_[0]}, {"mdmm_metric", m}};
  }

 private:
  static Tensor effective(const PruneTarget& t) {
    Tensor w = t.weight->var.value();
    w.vec().array() *= t.mask.vec().array();
    return w;
  }
  // [units] 0/1: unit L2 norm > epsilon.
  Tensor unit_keep(const Tensor& w) const {
    Tensor keep = unit_norms(w);
    for (int64_t u = 0; u < keep.size(); ++u) keep[u] = keep[u] > o_.epsilon ? 1.f : 0.f;
    return keep;
  }

  // The sparsity metric over all targets (a scalar Var, differentiable in the weights): the smooth metric,
  // or in coarse mode the hard fraction with the smooth metric's gradient.
  Var metric() {
    Var smooth;
    double hard = 0, count = 0;
    for (const PruneTarget& t : targets()) {
      Var w = mul(t.weight->var, Var(t.mask));
      Var s;
      if (!o_.structured) {
        s = sum_all(exp(mul_scalar(square(w), -kAlpha)));
        for (int64_t k = 0; k < w.size(); ++k) hard += std::fabs(w.value()[k]) <= o_.epsilon;
        count += static_cast<double>(w.size());
      } else {
        const int64_t units = t.units();
        Var mean_sq =
            mul_scalar(sum(reshape(square(w), {-1, units}), 0), 1.f / static_cast<float>(t.per_unit()));
        s = sum_all(exp(mul_scalar(mean_sq, -kAlpha)));
        const Tensor keep = unit_keep(w.value());
        for (int64_t u = 0; u < units; ++u) hard += keep[u] == 0.f;
        count += static_cast<double>(units);
      }
      smooth = smooth.defined() ? add(smooth, s) : s;
    }
    smooth = mul_scalar(smooth, static_cast<float>(1.0 / count));
    return o_.smooth ? smooth : straight_through(static_cast<float>(hard / count), smooth);
  }

  MdmmOptions o_;
  Tensor lambda_{{1}, 0.f};
};

// An enum key: one of `names` (index into `values`), or an error naming the key and the allowed values.
template <class T>
T read_choice(const Config& c, const std::string& key, const std::vector<std::pair<std::string, T>>& choices,
              const std::string& fallback) {
  const std::string v = c.get<std::string>(key, fallback);
  std::string allowed;
  for (const auto& [name, value] : choices) {
    if (v == name) return value;
    allowed += (allowed.empty() ? "" : ", ") + name;
  }
  c.fail(key, key + " must be one of " + allowed + ", got '" + v + "'");
}

// A number as the user would write it (1.5, 1e-05), for messages.

}  // namespace

PruneMethodPtr make_mdmm(const Config& c, const PruneCommon& common) {
  MdmmOptions o;
  o.constraint = read_choice<Constraint>(c, "constraint_type",
                                         {{"Equality", Constraint::kEquality},
                                          {"LessThanOrEqual", Constraint::kLessEqual},
                                          {"GreaterThanOrEqual", Constraint::kGreaterEqual}},
                                         "Equality");
  o.structured =
      read_choice<bool>(c, "metric_type", {{"UnstructuredSparsity", false}, {"StructuredSparsity", true}},
                        "UnstructuredSparsity");
  o.smooth = read_choice<bool>(c, "l0_mode", {{"coarse", false}, {"smooth", true}}, "coarse");
  o.target = c.get<double>("target_sparsity", common.sparsity);
  if (!(o.target >= 0 && o.target <= 1))
    c.fail("target_sparsity", "target_sparsity must be in [0, 1], got " + prune_num(o.target));
  o.epsilon = c.get<double>("epsilon", 1e-3);
  if (!(o.epsilon > 0 && std::isfinite(o.epsilon)))
    c.fail("epsilon",
           "epsilon must be > 0 (weights at most epsilon count as pruned), got " + prune_num(o.epsilon));
  o.scale = c.get<double>("scale", 10.0);
  if (!(o.scale > 0 && std::isfinite(o.scale)))
    c.fail("scale", "scale must be > 0, got " + prune_num(o.scale));
  o.damping = c.get<double>("damping", 1.0);
  if (!(o.damping >= 0 && std::isfinite(o.damping)))
    c.fail("damping", "damping must be >= 0, got " + prune_num(o.damping));

  const double target_value = c.get<double>("target_value", 0.0);
  if (target_value != 0)
    c.fail("target_value",
           "target_value must be 0 (got " + prune_num(target_value) +
               "): the constraint compares the sparsity with target_sparsity; set target_sparsity");
  const int rf = c.get<int>("rf", 1);
  if (rf != 1)
    c.fail("rf",
           "rf must be 1 (got " + std::to_string(rf) +
               "): StructuredSparsity groups whole units (neurons / channels), not reuse-factor groups");
  if (c.get<bool>("use_grad", false))
    c.fail("use_grad",
           "use_grad: true is not supported: lambda is updated by an explicit ascent step (use_grad: false)");
  const std::string scale_mode = c.get<std::string>("scale_mode", "mean");
  if (scale_mode == "sum")
    c.fail("scale_mode",
           "scale_mode 'sum' is not supported: the metric is a fraction, compared with target_sparsity "
           "(use scale_mode: mean)");
  if (scale_mode != "mean")
    c.fail("scale_mode", "scale_mode must be one of mean, sum, got '" + scale_mode + "'");
  return std::make_unique<Mdmm>(o);
}

}  // namespace kiln::compress
