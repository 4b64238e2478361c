// Dynamic Sparse Training (Liu et al. 2020) as PQuant runs it (../shared/reference/pruning.md).
//
// A trainable threshold t per weight, per output unit (the kernel's last axis) or per layer
// (`threshold_type`: weightwise | channelwise (default) | layerwise), initialised to threshold_init (0).
// The forward pass uses w * step(x), x = |w| - t, step(x) = 1[x > 0]. The step's gradient is the
// straight-through estimate
//   step'(x) = 2 - 4|x| for |x| <= 0.4,  0.4 for 0.4 < |x| <= 1,  0 beyond,
// so d(w step(x))/dw = step(x) + |w| step'(x) (through |w|: w sign(w) = |w|) and d/dt = -w step'(x).
// The loss adds alpha * sum over targets of sum(exp(-t)), which pushes thresholds up (more pruning).
// At each epoch end, a target whose own fraction of pruned weights reaches max_pruning_pct has its
// threshold reset to 0 (Liu et al.'s per-layer rule: one layer pruned away cuts the network), and so has
// every target when the fraction over all of them does. Reset to 0, not to 1.0 as PQuant's code did:
// 0 keeps every nonzero weight; 1.0 would prune every |w| <= 1, i.e. nearly everything again.
// Fine-tuning mask: 1[|w| > t]; finalize() is the default (w * mask is exactly the forward's weight).
#include <cmath>
#include <deque>
#include <sstream>

#include "compress/prune_method.h"
#include "engine/check.h"

namespace kiln::compress {
namespace {

float ste(float x) {
  const float a = std::fabs(x);
  return a <= 0.4f ? 2.f - 4.f * a : a <= 1.f ? 0.4f : 0.f;
}

class DynamicSparseTraining : public PruneMethod {
 public:
  DynamicSparseTraining(ThresholdGranularity g, float t0, double alpha, double max_pct)
      : g_(g), t0_(t0), alpha_(alpha), max_pct_(max_pct) {}

  std::string name() const override { return "dst"; }

  void attach(std::vector<PruneTarget>* targets) override {
    PruneMethod::attach(targets);
    for (const PruneTarget& t : *targets)
      thresholds_.push_back(nn::Parameter{t.layer->name() + ".weight_prune.t",
                                          Var(Tensor(threshold_shape(g_, t.weight->var.value()), t0_), true),
                                          /*decay=*/false, Tensor()});
  }

  Var weight(size_t i, const Var& w, nn::Context& /*ctx*/) override {
    const Var& t = thresholds_[i].var;
    const int64_t units = w.shape().back();
    const ThresholdGranularity g = g_;
    Tensor out(w.shape());
    for (int64_t j = 0; j < out.size(); ++j) {
      const float x = std::fabs(w.value()[j]) - t.value()[threshold_index(g, j, units)];
      out[j] = x > 0.f ? w.value()[j] : 0.f;
    }
    return make_result(std::move(out), "dst_mask", {w, t}, [g, units](Node& self) {
      Node &nw = *self.inputs[0], &nt = *self.inputs[1];
      const float* g_out = self.grad.data();
      float* gw = nw.requires_grad ? nw.grad_buffer().data() : nullptr;
      float* gt = nt.requires_grad ? nt.grad_buffer().data() : nullptr;
      for (int64_t j = 0; j < nw.value.size(); ++j) {
        const int64_t k = threshold_index(g, j, units);
        const float wj = nw.value[j], x = std::fabs(wj) - nt.value[k], d = ste(x);
        if (gw) gw[j] += g_out[j] * ((x > 0.f ? 1.f : 0.f) + std::fabs(wj) * d);
        if (gt) gt[k] -= g_out[j] * wj * d;
      }
    });
  }

  Var loss() override {
    if (alpha_ == 0 || thresholds_.empty()) return Var();
    double total = 0;
    std::vector<Var> in;
    for (const nn::Parameter& p : thresholds_) {
      for (int64_t j = 0; j < p.var.size(); ++j) total += std::exp(-static_cast<double>(p.var.value()[j]));
      in.push_back(p.var);
    }
    const float a = static_cast<float>(alpha_);
    return make_result(Tensor(Shape{}, {static_cast<float>(alpha_ * total)}), "dst_exp", in, [a](Node& self) {
      const float g = self.grad[0];
      for (auto& n : self.inputs) {
        if (!n->requires_grad) continue;
        float* gt = n->grad_buffer().data();
        for (int64_t j = 0; j < n->value.size(); ++j) gt[j] -= g * a * std::exp(-n->value[j]);
      }
    });
  }

  void end_epoch(int /*round*/, int /*epoch*/, int /*stage_epoch*/) override {
    const size_t n = targets().size();
    std::vector<double> pruned(n), size(n);
    double all_pruned = 0, all = 0;
    for (size_t i = 0; i < n; ++i) {
      const Tensor m = keep_mask(i);
      size[i] = static_cast<double>(m.size());
      pruned[i] = size[i] - m.vec().cast<double>().sum();
      all_pruned += pruned[i];
      all += size[i];
    }
    const bool all_reset = all > 0 && all_pruned / all >= max_pct_;
    for (size_t i = 0; i < n; ++i) {
      if (!all_reset && !(size[i] > 0 && pruned[i] / size[i] >= max_pct_)) continue;
      thresholds_[i].var.value().fill(0.f);
      resets_[0] += 1.f;
    }
  }

  Tensor keep_mask(size_t i) override {
    const Tensor& w = targets()[i].weight->var.value();
    const Tensor& t = thresholds_[i].var.value();
    const int64_t units = w.shape().back();
    Tensor m(w.shape());
    for (int64_t j = 0; j < w.size(); ++j)
      m[j] = std::fabs(w[j]) > t[threshold_index(g_, j, units)] ? 1.f : 0.f;
    return m;
  }

  void parameters(size_t i, std::vector<nn::Parameter*>& out) override { out.push_back(&thresholds_[i]); }
  void buffers(size_t i, std::vector<nn::Buffer>& out) override {
    if (i == 0) out.push_back({targets()[0].layer->name() + ".weight_prune.resets", &resets_});
  }
  // The mean threshold over every element of every target, and how many target resets happened so far.
  std::vector<std::pair<std::string, double>> stats() override {
    double s = 0, n = 0;
    for (const nn::Parameter& p : thresholds_) {
      s += p.var.value().vec().cast<double>().sum();
      n += static_cast<double>(p.var.size());
    }
    return {{"dst_threshold_mean", n > 0 ? s / n : 0.0}, {"dst_resets", resets_[0]}};
  }

 private:
  ThresholdGranularity g_;
  float t0_;
  double alpha_, max_pct_;
  std::deque<nn::Parameter> thresholds_;  // a deque: the Pruner keeps pointers to them
  Tensor resets_{Shape{1}, 0.f};          // a buffer, so a resumed run keeps counting
};

}  // namespace

PruneMethodPtr make_dst(const Config& c, const PruneCommon& /*common*/) {
  const double alpha = c.get<double>("alpha", 5e-6);
  const double max_pct = c.get<double>("max_pruning_pct", 0.99);
  const double t0 = c.get<double>("threshold_init", 0.0);
  if (!(alpha >= 0) || !std::isfinite(alpha))
    c.fail("alpha", "alpha must be a finite number >= 0, got " + prune_num(alpha));
  if (!(max_pct > 0 && max_pct <= 1))
    c.fail("max_pruning_pct", "max_pruning_pct must be in (0, 1], got " + prune_num(max_pct));
  if (!std::isfinite(t0))
    c.fail("threshold_init", "threshold_init must be a finite number, got " + prune_num(t0));
  const ThresholdGranularity g = parse_threshold_type(c);
  return std::make_unique<DynamicSparseTraining>(g, static_cast<float>(t0), alpha, max_pct);
}

}  // namespace kiln::compress
