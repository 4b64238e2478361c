// Wanda, pruning by weights and activations (Sun et al. 2023), as PQuant configures it.
//
// Score S = |W| * ||X_j||_2, X_j the layer's input feature (Dense) or input channel (Conv) j that the
// weight multiplies. The norms come from training batches t_start .. t_start + t_delta - 1 of the pruning
// stage, counted here in observe_input() of target 0 (batches, not epochs: PQuant's counter counted
// epochs). ||X_j|| = sqrt(sum of x_j^2 / batches); the scale does not change any ranking.
//
// When: the one-shot prune happens at the first end_epoch() after the last collected batch, so weights
// never change in the middle of a training step. If the stage ends first, finalize() prunes with what was
// collected (|W| alone if nothing was), never leaving the model dense.
//
// What: unstructured removes the lowest `sparsity` fraction of S over the whole layer (Dense) or within
// each output channel (Conv). N:M (keys N and M) keeps the N largest S in every group of M consecutive
// weights along the input-channel axis (Dense: for each output unit, inputs [gM, gM + M); Conv: for each
// kernel tap and output channel, input channels in groups of M); a last partial group of r < M keeps
// min(N, r). N is the number kept (the 2:4 convention of the N:M literature; PQuant's code prunes N), and
// `sparsity` is then unused.
//
// Budgets: with `calculate_pruning_budget` (true, PQuant's default) and several layers, each layer's share
// of the removal comes from one global ranking of |W| over all targets (the layers whose weights are small
// give up more), and Wanda's score then picks which weights within the layer go. Without it every layer
// removes the same fraction, which costs a small head layer (10 x 64) most of its inputs. Wanda's score
// itself is not compared across layers: the input norms have a different scale in each.
#include <algorithm>
#include <cmath>

#include "compress/prune_method.h"
#include "engine/check.h"

namespace kiln::compress {

namespace {

// A kernel seen as [outer, cin, inner]: cin the input-channel axis, inner the axes after it (Dense / Conv:
// the output units; depthwise: none, its channel axis is the last), outer the kernel taps before it.
struct InputAxis {
  int64_t outer, cin, inner;
  explicit InputAxis(const PruneTarget& t) : cin(t.in_channels()), inner(t.depthwise() ? 1 : t.units()) {
    outer = t.weight->var.size() / (cin * inner);
  }
  int64_t channel(int64_t idx) const { return idx / inner % cin; }
};

class Wanda : public PruneMethod {
 public:
  Wanda(const Config& c, const PruneCommon& common)
      : sparsity_(common.sparsity),
        t_delta_(c.get<int64_t>("t_delta", 100)),
        t_start_(c.get<int64_t>("t_start_collecting_batch", 100)),
        budget_(c.get<bool>("calculate_pruning_budget", true)) {
    if (t_delta_ < 1) c.fail("t_delta", "t_delta must be >= 1, got " + std::to_string(t_delta_));
    if (t_start_ < 0)
      c.fail("t_start_collecting_batch",
             "t_start_collecting_batch must be >= 0, got " + std::to_string(t_start_));
    if (c.has("N") || c.has("M")) {
      if (!c.has("N")) c.fail("M", "key 'M' needs key 'N' (keep N of every M weights) in " + c.where());
      if (!c.has("M")) c.fail("N", "key 'N' needs key 'M' (keep N of every M weights) in " + c.where());
      n_ = c.get<int64_t>("N", 0);
      m_ = c.get<int64_t>("M", 0);
      if (m_ < 1) c.fail("M", "M must be >= 1, got " + std::to_string(m_));
      if (n_ < 1 || n_ > m_)
        c.fail("N", "N must be in [1, M = " + std::to_string(m_) + "], got " + std::to_string(n_));
    }
  }
  std::string name() const override { return "wanda"; }

  void attach(std::vector<PruneTarget>* targets) override {
    PruneMethod::attach(targets);
    for (const PruneTarget& t : *targets) sumsq_.emplace_back(Shape{t.in_channels()}, 0.f);
  }

  bool wants_inputs() const override { return true; }
  void observe_input(size_t i, const Tensor& x) override {
    if (i == 0) {  // target 0 is first in the forward pass: one call per training batch
      const int64_t b = static_cast<int64_t>(batches_[0]);
      collecting_ = pruned_[0] == 0.f && b >= t_start_ && b < t_start_ + t_delta_;
      batches_[0] += 1.f;
      if (collecting_) collected_[0] += 1.f;
    }
    if (!collecting_) return;
    Tensor& acc = sumsq_[i];
    const int64_t c = acc.size();
    KILN_CHECK(x.size() > 0 && x.shape().back() == c, "wanda: input " + shape_str(x.shape()) + " of target " +
                                                          std::to_string(i) + " does not end in its " +
                                                          std::to_string(c) + " input channels");
    // Sum over batch and spatial positions: the rows of the [positions, C] view.
    acc.matrix(1, c) += x.matrix(x.size() / c, c).colwise().squaredNorm();
  }

  void end_epoch(int, int, int) override {
    if (pruned_[0] == 0.f && collected_[0] >= static_cast<float>(t_delta_)) prune();
  }
  void finalize() override {
    if (pruned_[0] == 0.f) prune();
    PruneMethod::finalize();
  }

  // Everything a resumed run needs to continue exactly: the sums, the counters and whether it pruned (the
  // Pruner checkpoints the mask itself).
  void buffers(size_t i, std::vector<nn::Buffer>& out) override {
    const std::string p = targets()[i].layer->name() + ".weight_prune.";
    out.push_back({p + "input_sumsq", &sumsq_[i]});
    if (i != 0) return;
    out.push_back({p + "batches", &batches_});
    out.push_back({p + "collected", &collected_});
    out.push_back({p + "pruned", &pruned_});
  }
  std::vector<std::pair<std::string, double>> stats() override {
    return {{"wanda_collected", collected_[0]}, {"wanda_pruned", pruned_[0]}};
  }

 private:
  // The fraction of each target's weights to remove: `sparsity` everywhere, or with budgets the share of
  // each target's weights among the globally smallest |W|.
  std::vector<double> budgets() {
    std::vector<double> frac(targets().size(), sparsity_);
    if (!budget_ || targets().size() < 2) return frac;
    std::vector<float> all;
    for (const PruneTarget& t : targets())
      for (int64_t j = 0; j < t.weight->var.size(); ++j) all.push_back(std::fabs(t.weight->var.value()[j]));
    const int64_t remove = count_of(sparsity_, static_cast<int64_t>(all.size()));
    if (remove == 0) return std::vector<double>(targets().size(), 0.0);
    const float cut = kth_smallest(all, static_cast<size_t>(remove - 1));  // the remove-th smallest
    for (size_t i = 0; i < targets().size(); ++i) {
      const Tensor& w = targets()[i].weight->var.value();
      int64_t below = 0;
      for (int64_t j = 0; j < w.size(); ++j) below += std::fabs(w[j]) <= cut;
      frac[i] = static_cast<double>(below) / static_cast<double>(w.size());
    }
    return frac;
  }

  void prune() {
    const float batches = collected_[0];
    const std::vector<double> frac = budgets();
    for (size_t i = 0; i < targets().size(); ++i) {
      PruneTarget& t = targets()[i];
      const Tensor& w = t.weight->var.value();
      const InputAxis ax(t);
      Tensor score(w.shape());
      for (int64_t j = 0; j < w.size(); ++j) {
        const float norm = batches > 0.f ? std::sqrt(sumsq_[i][ax.channel(j)] / batches) : 1.f;
        score[j] = std::fabs(w[j]) * norm;
      }
      t.mask = n_ > 0 ? keep_n_of_m(score, ax) : keep_unstructured(t, score, frac[i]);
      t.weight->var.value().vec().array() *= t.mask.vec().array();
    }
    pruned_[0] = 1.f;
  }

  Tensor keep_unstructured(const PruneTarget& t, const Tensor& score, double frac) const {
    const int64_t size = score.size();
    if (t.layer->type() == "dense") return keep_largest(score, size - count_of(frac, size));
    // Conv: each output channel (last axis) keeps the same share of its own weights.
    const int64_t units = t.units(), per = size / units;
    Tensor mask(score.shape(), 0.f), s({per});
    for (int64_t u = 0; u < units; ++u) {
      for (int64_t j = 0; j < per; ++j) s[j] = score[j * units + u];
      const Tensor keep = keep_largest(s, per - count_of(frac, per));
      for (int64_t j = 0; j < per; ++j) mask[j * units + u] = keep[j];
    }
    return mask;
  }

  Tensor keep_n_of_m(const Tensor& score, const InputAxis& ax) const {
    Tensor mask(score.shape(), 0.f);
    std::vector<int64_t> group;
    for (int64_t o = 0; o < ax.outer; ++o)
      for (int64_t u = 0; u < ax.inner; ++u)
        for (int64_t g = 0; g < ax.cin; g += m_) {
          group.clear();
          for (int64_t c = g; c < std::min(g + m_, ax.cin); ++c)
            group.push_back((o * ax.cin + c) * ax.inner + u);
          // Largest first, ties to the lower channel: exactly min(N, group size) kept.
          std::stable_sort(group.begin(), group.end(),
                           [&](int64_t a, int64_t b) { return score[a] > score[b]; });
          const size_t keep = static_cast<size_t>(std::min<int64_t>(n_, static_cast<int64_t>(group.size())));
          for (size_t k = 0; k < keep; ++k) mask[group[k]] = 1.f;
        }
    return mask;
  }

  double sparsity_;
  int64_t t_delta_, t_start_;
  bool budget_;                // calculate_pruning_budget
  int64_t n_ = 0, m_ = 0;      // N:M when n_ > 0
  std::vector<Tensor> sumsq_;  // [in_channels] per target: sum over collected batches of x_j^2
  // Global state, as [1] tensors so that checkpoints carry it: training batches seen in the stage, batches
  // collected, 1 once pruned.
  Tensor batches_{{1}, 0.f};
  Tensor collected_{{1}, 0.f};
  Tensor pruned_{{1}, 0.f};
  bool collecting_ = false;  // this batch is collected (decided at target 0)
};

}  // namespace

PruneMethodPtr make_wanda(const Config& c, const PruneCommon& common) {
  return std::make_unique<Wanda>(c, common);
}

}  // namespace kiln::compress
