// Continuous Sparsification (Savarese et al. 2020) as PQuant runs it (../shared/reference/pruning.md).
//
// One trainable score s per weight. The forward pass uses w * m with the soft mask
//   m = sigmoid(beta * s) / sigmoid(s0),        s0 = threshold_init (0): m = 1 everywhere at the start,
// and the loss adds threshold_decay * sum over targets of ||m||_1 (m > 0, so the L1 norm is the sum).
// The temperature beta rises geometrically within a round, so the sigmoid hardens into a step:
//   during epoch e (0-based) of a round, beta = final_temp^(e / (E - 1));  E = 1: beta stays 1.
// That is PQuant's beta <- beta * final_temp^(1/(E-1)) at the end of each epoch, except after the last
// epoch: PQuant multiplies once more, to final_temp^(E/(E-1)), a temperature no epoch trained with. Here the
// last epoch's end leaves beta = final_temp (as Savarese et al.'s code), so the rewind below maps every
// score to the mask value the last epoch used.
// Between rounds: s <- min(beta * s, s0) and beta <- 1, which keeps sigmoid(s) = sigmoid(beta_old * s) for
// the losing scores and restarts the winners at s0. The last round's end leaves s alone: finalize()
// follows, and with s0 = 0 the rewind would set every winner to exactly 0, so 1[s > 0] would keep nothing
// (what PQuant's driver does after its last round).
// Fine-tuning mask: 1[s > 0]. finalize() bakes the effective weight w * m (m up to 1/sigmoid(s0) = 2 for a
// winner) times that mask into the kernel, so the pruned model computes what the last epoch trained.
#include <algorithm>
#include <cmath>
#include <deque>
#include <sstream>

#include "compress/prune_method.h"
#include "engine/check.h"

namespace kiln::compress {
namespace {

// The argument is clamped to [-30, 30] (sigmoid 9e-14 .. 1 - 9e-14, derivative >= 9e-14): as beta reaches
// final_temp, beta * s of a pruned score runs to -1e3 and beyond, and the exact sigmoid and its derivative
// there are subnormal floats, whose arithmetic made late epochs 9x slower. The mask is 0 to 1e-13 there.
float sigmoid1(float x) { return 1.f / (1.f + std::exp(-std::clamp(x, -30.f, 30.f))); }

class ContinuousSparsification : public PruneMethod {
 public:
  ContinuousSparsification(double final_temp, float s0, double decay, const PruneCommon& common)
      : final_temp_(final_temp), s0_(s0), scale_(1.f / sigmoid1(s0)), decay_(decay), common_(common) {}

  std::string name() const override { return "cs"; }

  void attach(std::vector<PruneTarget>* targets) override {
    PruneMethod::attach(targets);
    for (const PruneTarget& t : *targets)
      scores_.push_back(nn::Parameter{t.layer->name() + ".weight_prune.s",
                                      Var(Tensor(t.weight->var.shape(), s0_), true),
                                      /*decay=*/false, Tensor()});
  }

  Var weight(size_t i, const Var& w, nn::Context& /*ctx*/) override {
    const Var& s = scores_[i].var;
    KILN_CHECK(w.shape() == s.shape(),
               "cs: weight " + shape_str(w.shape()) + " vs scores " + shape_str(s.shape()));
    const float beta = beta_[0], k = scale_;
    Tensor sig(s.shape()), out(w.shape());
    for (int64_t j = 0; j < sig.size(); ++j) {
      sig[j] = sigmoid1(beta * s.value()[j]);
      out[j] = w.value()[j] * k * sig[j];
    }
    return make_result(std::move(out), "cs_mask", {w, s}, [sig = std::move(sig), beta, k](Node& self) {
      Node &nw = *self.inputs[0], &ns = *self.inputs[1];
      const float* g = self.grad.data();
      if (nw.requires_grad) {
        float* gw = nw.grad_buffer().data();
        for (int64_t j = 0; j < sig.size(); ++j) gw[j] += g[j] * k * sig[j];
      }
      if (ns.requires_grad) {  // d m / d s = k * beta * sigmoid' (beta s)
        float* gs = ns.grad_buffer().data();
        for (int64_t j = 0; j < sig.size(); ++j)
          gs[j] += g[j] * nw.value[j] * k * beta * sig[j] * (1.f - sig[j]);
      }
    });
  }

  Var loss() override {
    if (decay_ == 0 || scores_.empty()) return Var();
    const float beta = beta_[0], k = scale_, d = static_cast<float>(decay_);
    double total = 0;
    std::vector<Var> in;
    for (const nn::Parameter& p : scores_) {
      for (int64_t j = 0; j < p.var.size(); ++j) total += sigmoid1(beta * p.var.value()[j]);
      in.push_back(p.var);
    }
    Tensor v(Shape{}, {static_cast<float>(decay_ * k * total)});
    return make_result(std::move(v), "cs_l1", in, [beta, k, d](Node& self) {
      const float g = self.grad[0];
      for (auto& n : self.inputs) {
        if (!n->requires_grad) continue;
        float* gs = n->grad_buffer().data();
        for (int64_t j = 0; j < n->value.size(); ++j) {
          const float sg = sigmoid1(beta * n->value[j]);
          gs[j] += g * d * k * beta * sg * (1.f - sg);
        }
      }
    });
  }

  // beta of the next epoch as a function of the epoch within the round: pow(x, 1.0) is exactly x, so the
  // last epochs run at exactly final_temp (a product of E - 1 rounded factors would not be).
  void end_epoch(int /*round*/, int epoch, int /*stage_epoch*/) override {
    const int e = common_.epochs;
    if (e <= 1) return;
    const int next = std::min(epoch + 1, e - 1);
    beta_[0] = static_cast<float>(std::pow(final_temp_, static_cast<double>(next) / (e - 1)));
  }

  void end_round(int round) override {
    if (round + 1 >= common_.rounds) return;  // finalize() needs the signs of s (see the header comment)
    const float beta = beta_[0];
    for (nn::Parameter& p : scores_) {
      Tensor& s = p.var.value();
      for (int64_t j = 0; j < s.size(); ++j) s[j] = std::min(beta * s[j], s0_);
    }
    beta_[0] = 1.f;
  }

  Tensor keep_mask(size_t i) override {
    const Tensor& s = scores_[i].var.value();
    Tensor m(s.shape());
    for (int64_t j = 0; j < s.size(); ++j) m[j] = s[j] > 0.f ? 1.f : 0.f;
    return m;
  }

  void finalize() override {
    const float beta = beta_[0];
    for (size_t i = 0; i < targets().size(); ++i) {
      PruneTarget& t = targets()[i];
      t.mask = keep_mask(i);
      const Tensor& s = scores_[i].var.value();
      Tensor& w = t.weight->var.value();
      for (int64_t j = 0; j < w.size(); ++j) w[j] *= t.mask[j] * scale_ * sigmoid1(beta * s[j]);
    }
  }

  void parameters(size_t i, std::vector<nn::Parameter*>& out) override { out.push_back(&scores_[i]); }
  void buffers(size_t i, std::vector<nn::Buffer>& out) override {
    if (i == 0) out.push_back({targets()[0].layer->name() + ".weight_prune.beta", &beta_});
  }
  std::vector<std::pair<std::string, double>> stats() override { return {{"cs_beta", beta_[0]}}; }

 private:
  double final_temp_;
  float s0_, scale_;
  double decay_;
  PruneCommon common_;
  std::deque<nn::Parameter> scores_;  // a deque: the Pruner keeps pointers to them
  Tensor beta_{Shape{1}, 1.f};        // global, a buffer so a resumed run continues the schedule
};

}  // namespace

PruneMethodPtr make_cs(const Config& c, const PruneCommon& common) {
  const double final_temp = c.get<double>("final_temp", 200.0);
  const double s0 = c.get<double>("threshold_init", 0.0);
  const double decay = c.get<double>("threshold_decay", 1e-9);
  if (!(final_temp > 0) || !std::isfinite(final_temp))
    c.fail("final_temp", "final_temp must be a finite number > 0, got " + prune_num(final_temp));
  // |s0| <= 30 keeps the scale 1/sigmoid(s0) <= 1e13, far from float's limit.
  if (!std::isfinite(s0) || std::fabs(s0) > 30)
    c.fail("threshold_init", "threshold_init must be a number in [-30, 30], got " + prune_num(s0));
  if (!(decay >= 0) || !std::isfinite(decay))
    c.fail("threshold_decay", "threshold_decay must be a finite number >= 0, got " + prune_num(decay));
  return std::make_unique<ContinuousSparsification>(final_temp, static_cast<float>(s0), decay, common);
}

}  // namespace kiln::compress
