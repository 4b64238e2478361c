// AutoSparse (Kundu et al. 2023) as PQuant runs it (../shared/reference/pruning.md).
//
// A trainable threshold T per output unit (`threshold_type`: channelwise (default) | layerwise |
// weightwise), initialised to threshold_init (-5, so sigmoid(T) = 0.0067). The forward pass uses
//   W' = sign(W) * relu(u),  u = |W| - sigmoid(T),
// whose relu passes gradient 1 where u > 0 and alpha where u <= 0 ("gradient annealing": a pruned weight
// still learns, more and more weakly, and can grow back). So dW'/dW = sign(W)^2 r and
// dW'/dT = -sign(W) r sigmoid'(T), r = 1 or alpha.
//
// alpha during stage epoch e (counted across rounds), R = alpha_reset_epoch:
//   alpha(e) = alpha0 * max(cos_d, sig_d) for e < R, 0 from R on, where
//   cos_d = (1 + cos(pi e / R)) / 2,   sig_d = 1 - sigmoid(-6 + 12 e / R).
// Both are PQuantML's decays (L0 = -6, L1 = 6), over R instead of the stage's length, so they fall
// monotonically from 1 at e = 0 to about 0 at R, where alpha drops to 0 without a jump; sig_d is the
// larger in the first half, cos_d in the second. alpha is a pure function of e, set at each epoch start
// and, for the next epoch, at each epoch end: the buffer a checkpoint carries is the next epoch's alpha.
//
// Keys read but not changing the schedule:
//  - autotune_epochs (10): PQuant multiplied alpha by an `alpha_multiplier` during the first
//    autotune_epochs epochs that its driver never passed (the call would fail); PQuantML ignores the key.
//    Validated (an integer >= 0) and otherwise without effect.
//  - backward_sparsity (false): true (also zeroing the gradient of the lower half of u) is refused.
//
// Fine-tuning mask: 1[W' != 0]. finalize() writes W' * mask into the kernel: deployment sees exactly the
// weights the forward pass used, shrunk by sigmoid(T).
#include <algorithm>
#include <cmath>
#include <deque>
#include <sstream>

#include "compress/prune_method.h"
#include "engine/check.h"

namespace kiln::compress {
namespace {

double sigmoid1(double x) { return 1.0 / (1.0 + std::exp(-x)); }

float sign(float x) { return static_cast<float>((x > 0.f) - (x < 0.f)); }

class AutoSparse : public PruneMethod {
 public:
  AutoSparse(ThresholdGranularity g, float t0, double alpha0, int reset_epoch)
      : g_(g), t0_(t0), alpha0_(alpha0), reset_epoch_(reset_epoch) {
    alpha_[0] = static_cast<float>(alpha_at(0));
  }

  std::string name() const override { return "autosparse"; }

  // alpha(e) of the header comment.
  double alpha_at(int e) const {
    if (e >= reset_epoch_) return 0.0;
    const double r = static_cast<double>(e) / reset_epoch_;
    const double cos_d = 0.5 * (1.0 + std::cos(M_PI * r));
    const double sig_d = 1.0 - sigmoid1(-6.0 + 12.0 * r);
    return alpha0_ * std::max(cos_d, sig_d);
  }

  void attach(std::vector<PruneTarget>* targets) override {
    PruneMethod::attach(targets);
    for (const PruneTarget& t : *targets)
      thresholds_.push_back(nn::Parameter{t.layer->name() + ".weight_prune.T",
                                          Var(Tensor(threshold_shape(g_, t.weight->var.value()), t0_), true),
                                          /*decay=*/false, Tensor()});
  }

  Var weight(size_t i, const Var& w, nn::Context& /*ctx*/) override {
    const Var& t = thresholds_[i].var;
    const int64_t units = w.shape().back();
    const ThresholdGranularity g = g_;
    const float alpha = alpha_[0];
    Tensor out = effective(w.value(), t.value());
    return make_result(std::move(out), "autosparse", {w, t}, [g, units, alpha](Node& self) {
      Node &nw = *self.inputs[0], &nt = *self.inputs[1];
      const float* g_out = self.grad.data();
      float* gw = nw.requires_grad ? nw.grad_buffer().data() : nullptr;
      float* gt = nt.requires_grad ? nt.grad_buffer().data() : nullptr;
      for (int64_t j = 0; j < nw.value.size(); ++j) {
        const int64_t k = threshold_index(g, j, units);
        const float sg = static_cast<float>(sigmoid1(nt.value[k]));
        const float s = sign(nw.value[j]), r = std::fabs(nw.value[j]) - sg > 0.f ? 1.f : alpha;
        if (gw) gw[j] += g_out[j] * s * s * r;
        if (gt) gt[k] -= g_out[j] * s * r * sg * (1.f - sg);
      }
    });
  }

  void start_epoch(int /*round*/, int /*epoch*/, int stage_epoch) override {
    alpha_[0] = static_cast<float>(alpha_at(stage_epoch));
  }
  void end_epoch(int /*round*/, int /*epoch*/, int stage_epoch) override {
    alpha_[0] = static_cast<float>(alpha_at(stage_epoch + 1));
  }

  Tensor keep_mask(size_t i) override {
    Tensor m = effective(targets()[i].weight->var.value(), thresholds_[i].var.value());
    for (int64_t j = 0; j < m.size(); ++j) m[j] = m[j] != 0.f ? 1.f : 0.f;
    return m;
  }

  void finalize() override {
    for (size_t i = 0; i < targets().size(); ++i) {
      PruneTarget& t = targets()[i];
      Tensor w = effective(t.weight->var.value(), thresholds_[i].var.value());
      t.mask = Tensor(w.shape());
      for (int64_t j = 0; j < w.size(); ++j) t.mask[j] = w[j] != 0.f ? 1.f : 0.f;
      t.weight->var.value() = std::move(w);  // zero wherever the mask is: W' * mask = W'
    }
  }

  void parameters(size_t i, std::vector<nn::Parameter*>& out) override { out.push_back(&thresholds_[i]); }
  void buffers(size_t i, std::vector<nn::Buffer>& out) override {
    if (i == 0) out.push_back({targets()[0].layer->name() + ".weight_prune.alpha", &alpha_});
  }
  // alpha, and the mean magnitude cut sigmoid(T) over every threshold element.
  std::vector<std::pair<std::string, double>> stats() override {
    double s = 0, n = 0;
    for (const nn::Parameter& p : thresholds_)
      for (int64_t j = 0; j < p.var.size(); ++j, ++n) s += sigmoid1(p.var.value()[j]);
    return {{"autosparse_alpha", alpha_[0]}, {"autosparse_threshold_mean", n > 0 ? s / n : 0.0}};
  }

 private:
  // W' = sign(W) relu(|W| - sigmoid(T)).
  Tensor effective(const Tensor& w, const Tensor& t) const {
    const int64_t units = w.shape().back();
    Tensor out(w.shape());
    for (int64_t j = 0; j < w.size(); ++j) {
      const float u = std::fabs(w[j]) - static_cast<float>(sigmoid1(t[threshold_index(g_, j, units)]));
      out[j] = u > 0.f ? sign(w[j]) * u : 0.f;
    }
    return out;
  }

  ThresholdGranularity g_;
  float t0_;
  double alpha0_;
  int reset_epoch_;
  std::deque<nn::Parameter> thresholds_;  // a deque: the Pruner keeps pointers to them
  Tensor alpha_{Shape{1}, 0.f};           // global, a buffer: a checkpoint carries the next epoch's alpha
};

}  // namespace

PruneMethodPtr make_autosparse(const Config& c, const PruneCommon& /*common*/) {
  const double alpha = c.get<double>("alpha", 0.5);
  const int reset = c.get<int>("alpha_reset_epoch", 90);
  const int autotune = c.get<int>("autotune_epochs", 10);
  const bool backward_sparsity = c.get<bool>("backward_sparsity", false);
  const double t0 = c.get<double>("threshold_init", -5.0);
  if (!(alpha >= 0) || !std::isfinite(alpha))
    c.fail("alpha", "alpha must be a finite number >= 0, got " + prune_num(alpha));
  if (reset < 0) c.fail("alpha_reset_epoch", "alpha_reset_epoch must be >= 0, got " + std::to_string(reset));
  if (autotune < 0)
    c.fail("autotune_epochs", "autotune_epochs must be >= 0, got " + std::to_string(autotune));
  if (backward_sparsity)
    c.fail("backward_sparsity",
           "backward_sparsity: true is not supported (kiln's autosparse trains with dense "
           "gradients); remove the key or set it to false");
  if (!std::isfinite(t0))
    c.fail("threshold_init", "threshold_init must be a finite number, got " + prune_num(t0));
  const ThresholdGranularity g = parse_threshold_type(c);
  return std::make_unique<AutoSparse>(g, static_cast<float>(t0), alpha, reset);
}

}  // namespace kiln::compress
