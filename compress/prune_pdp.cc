// PDP, Parameter-free Differentiable Pruning (Cho et al. 2023), as PQuant configures it.
//
// Stage epoch e prunes the fraction r_e = min(1, epsilon * (e + 1)) * sparsity. Each forward pass takes the
// threshold t from the current weights: with the scores |w| sorted ascending (a_0 <= ... <= a_{N-1}) and
// k = floor(r N) to remove, t = (a_{k-1} + a_k) / 2, the midpoint between the last removed and the first
// kept. The weight used is w * m with the soft mask
//   m = sigmoid((w^2 - t^2) / tau),
// differentiable in w (t is a constant of the step). k = 0 keeps everything (m = 1), k = N removes
// everything (m = 0). keep_mask() is m >= 0.5, i.e. w^2 >= t^2 (compared before the sigmoid, whose float
// rounding near 0.5 would otherwise blur ties).
//
// structured_pruning scores each unit (output neuron / channel, the last axis) by its L2 norm instead of
// |w|; one soft mask per unit, broadcast over its weights; finalize() also removes the unit's bias.
// global_pruning takes one magnitude threshold over every target's scores at r_e (at each epoch start)
// and gives each layer, as its own k, the number of its scores below it; the per-step thresholds are then
// per layer as above.
//
// tau = 1e-5 makes the sigmoid a near step: its argument is clamped to [-50, 50] (sigmoid is 0 or 1 to
// float precision there), so no exp overflows and the gradient is 0, never inf or NaN, far from t.
#include <algorithm>
#include <cmath>
#include <sstream>

#include "compress/prune_method.h"
#include "engine/ops.h"

namespace kiln::compress {

namespace {

// Midpoint between the k-th and (k+1)-th smallest of a (0 < k < a.size()).
float midpoint(std::vector<float> a, int64_t k) {
  auto kth = a.begin() + static_cast<std::ptrdiff_t>(k);
  std::nth_element(a.begin(), kth, a.end());
  const float first_kept = *kth, last_removed = *std::max_element(a.begin(), kth);
  return 0.5f * (last_removed + first_kept);
}

constexpr float kMaxArg = 50.f;

class Pdp : public PruneMethod {
 public:
  Pdp(const Config& c, const PruneCommon& common)
      : sparsity_(common.sparsity),
        epsilon_(c.get<double>("epsilon", 0.015)),
        tau_(c.get<double>("temperature", 1e-5)),
        structured_(c.get<bool>("structured_pruning", false)),
        global_(c.get<bool>("global_pruning", false)) {
    if (!(epsilon_ > 0.0)) c.fail("epsilon", "epsilon must be > 0, got " + prune_num(epsilon_));
    if (!(tau_ > 0.0)) c.fail("temperature", "temperature must be > 0, got " + prune_num(tau_));
  }
  std::string name() const override { return "pdp"; }
  bool structured() const override { return structured_; }

  void attach(std::vector<PruneTarget>* targets) override {
    PruneMethod::attach(targets);
    removed_.assign(targets->size(), Tensor({1}, 0.f));
    set_budgets(0);
  }
  void start_epoch(int, int, int stage_epoch) override { set_budgets(stage_epoch); }

  Var weight(size_t i, const Var& w, nn::Context&) override {
    const int64_t n = structured_ ? w.shape().back() : w.size();
    const int64_t k = std::min(static_cast<int64_t>(removed_[i][0]), n);
    if (k == 0) return w;
    if (k == n) return mul_scalar(w, 0.f);
    const float t = threshold(w.value(), k);
    // Per weight: w^2; per unit: the squared L2 norm of its column of the [per_unit, units] view.
    Var s = structured_ ? sum(square(reshape(w, {-1, n})), 0) : square(w);
    Var arg = clamp(mul_scalar(add_scalar(s, -t * t), static_cast<float>(1.0 / tau_)), -kMaxArg, kMaxArg);
    return mul(w, sigmoid(arg));  // [units] broadcasts over the last axis in the structured case
  }

  Tensor keep_mask(size_t i) override {
    const Tensor& w = targets()[i].weight->var.value();
    return hard_mask(i, w);
  }

  // The effective weight w * m times the hard mask; structured: removed units lose their bias too.
  void finalize() override {
    for (size_t i = 0; i < targets().size(); ++i) {
      PruneTarget& t = targets()[i];
      Tensor effective;
      {
        NoGradGuard ng;
        nn::Context ctx;
        effective = weight(i, Var(t.weight->var.value()), ctx).value();
      }
      t.mask = hard_mask(i, t.weight->var.value());
      t.weight->var.value().vec() = effective.vec().cwiseProduct(t.mask.vec());
      if (!structured_ || t.bias == nullptr) continue;
      const int64_t units = t.units();
      t.bias_mask = Tensor({units});
      for (int64_t u = 0; u < units; ++u) t.bias_mask[u] = t.mask[u];  // row 0 of [per_unit, units]
      t.bias->var.value().vec().array() *= t.bias_mask.vec().array();
    }
  }

  // Each layer's current count to remove (global pruning gives layers different shares): a resumed run
  // continues with them.
  void buffers(size_t i, std::vector<nn::Buffer>& out) override {
    out.push_back({targets()[i].layer->name() + ".weight_prune.removed", &removed_[i]});
  }
  std::vector<std::pair<std::string, double>> stats() override { return {{"pdp_r", r_}}; }

 private:
  // Scores of a kernel: |w| per weight, or per-unit L2 norms.
  std::vector<float> scores(const Tensor& w) const {
    if (structured_) return unit_norms(w).storage();
    std::vector<float> s(static_cast<size_t>(w.size()));
    for (int64_t j = 0; j < w.size(); ++j) s[static_cast<size_t>(j)] = std::fabs(w[j]);
    return s;
  }
  float threshold(const Tensor& w, int64_t k) const { return midpoint(scores(w), k); }

  Tensor hard_mask(size_t i, const Tensor& w) const {
    const std::vector<float> s = scores(w);
    const int64_t n = static_cast<int64_t>(s.size()), k = std::min(static_cast<int64_t>(removed_[i][0]), n);
    std::vector<float> keep(s.size(), 1.f);
    if (k == n) std::fill(keep.begin(), keep.end(), 0.f);
    if (k > 0 && k < n) {
      const float t = midpoint(s, k);
      for (size_t j = 0; j < s.size(); ++j) keep[j] = s[j] * s[j] - t * t >= 0.f ? 1.f : 0.f;
    }
    Tensor m(w.shape());
    const int64_t units = w.shape().back();
    for (int64_t j = 0; j < m.size(); ++j) m[j] = keep[static_cast<size_t>(structured_ ? j % units : j)];
    return m;
  }

  // r_e for this epoch, and how many weights (units) each layer removes for it.
  void set_budgets(int stage_epoch) {
    r_ = std::min(1.0, epsilon_ * (stage_epoch + 1)) * sparsity_;
    std::vector<PruneTarget>& ts = targets();
    if (!global_) {
      for (size_t i = 0; i < ts.size(); ++i) {
        const Tensor& w = ts[i].weight->var.value();
        removed_[i][0] = static_cast<float>(count_of(r_, structured_ ? w.shape().back() : w.size()));
      }
      return;
    }
    std::vector<std::vector<float>> per_layer;
    std::vector<float> all;
    for (const PruneTarget& t : ts) {
      per_layer.push_back(scores(t.weight->var.value()));
      all.insert(all.end(), per_layer.back().begin(), per_layer.back().end());
    }
    const int64_t n = static_cast<int64_t>(all.size()), k = count_of(r_, n);
    const float t = k > 0 && k < n ? midpoint(all, k) : 0.f;
    for (size_t i = 0; i < ts.size(); ++i) {
      const std::vector<float>& s = per_layer[i];
      int64_t below = 0;
      if (k == n) below = static_cast<int64_t>(s.size());
      if (k > 0 && k < n) below = std::count_if(s.begin(), s.end(), [t](float v) { return v < t; });
      removed_[i][0] = static_cast<float>(below);  // exact below 2^24 weights per layer
    }
  }

  double sparsity_, epsilon_, tau_;
  bool structured_, global_;
  double r_ = 0.0;               // r_e of the current epoch
  std::vector<Tensor> removed_;  // [1] per target: k, the number of weights (units) it removes
};

}  // namespace

PruneMethodPtr make_pdp(const Config& c, const PruneCommon& common) {
  return std::make_unique<Pdp>(c, common);
}

}  // namespace kiln::compress
