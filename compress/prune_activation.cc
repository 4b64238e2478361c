// activation_pruning (PQuant, structured): removes the neurons / channels that are rarely active. For each
// unit (the last axis of the layer's output, after its activation) it counts, over a window of training
// batches, the samples x positions where the output is > 0; a unit is kept iff that fraction > `threshold`.
//
// Keys:
//  - threshold (0.3): the value of PQuant's config schema. PQuant's example YAML has 0.2; we follow the
//  schema
//    because it is the documented default, and a YAML that wants 0.2 says so.
//  - t_delta (50): batches collected.
//  - t_start_collecting_batch (50): the window is batches t_start .. t_start + t_delta - 1 of the pruning
//    stage (0-based, counted across epochs), so the first batches, while the network still adapts to the
//    newly enabled quantizers, are ignored. Batches are the calls of observe_output for target 0 (targets
//    come in forward order, so target 0 is seen first in every forward pass); PQuant's "batch" counters
//    counted epochs (pruning.md), ours count batches.
// The common `sparsity` key does not drive this method: how many units go is decided by the threshold alone.
//
// One-shot: the units go at the first end_epoch after the window is complete, or in finalize() with what was
// collected if the stage ended earlier (a target that saw no batch in the window keeps every unit: no
// evidence is no reason to remove anything). Unlike PQuant, which re-decides every t_delta batches from
// outputs that already include the pruned units, a removed unit stays removed.
//
// "Active" means > 0, as in PQuant, whose layers use ReLU: after a sigmoid every unit is always active, after
// a linear or tanh activation the fraction is that of positive outputs.
#include <algorithm>
#include <sstream>
#include <string>
#include <vector>

#include "compress/prune_method.h"
#include "engine/check.h"

namespace kiln::compress {
namespace {

class ActivationPruning final : public PruneMethod {
 public:
  ActivationPruning(double threshold, int64_t t_delta, int64_t t_start)
      : threshold_(threshold), t_delta_(t_delta), t_start_(t_start) {}

  std::string name() const override { return "activation_pruning"; }
  bool structured() const override { return true; }

  void attach(std::vector<PruneTarget>* targets) override {
    PruneMethod::attach(targets);
    active_.clear();
    seen_.clear();
    for (const PruneTarget& t : *targets) {
      active_.emplace_back(Shape{t.units()}, 0.f);
      seen_.emplace_back(Shape{1}, 0.f);
    }
  }

  bool wants_outputs() const override { return true; }

  void observe_output(size_t i, const Tensor& y) override {
    if (done_[0] != 0.f) return;
    // The batch this output belongs to: target 0 opens a new one, the others share it.
    const int64_t batch = static_cast<int64_t>(batches_[0]) - (i == 0 ? 0 : 1);
    if (i == 0) batches_[0] += 1.f;
    if (batch < t_start_ || batch >= t_start_ + t_delta_) return;
    const int64_t units = targets()[i].units();
    KILN_CHECK(y.ndim() >= 1 && y.dim(-1) == units,
               "activation_pruning: output " + shape_str(y.shape()) + " of '" + targets()[i].layer->name() +
                   "' does not end in its " + std::to_string(units) + " units");
    const int64_t rows = y.size() / units;
    // Counted per batch in integers, then added: the float sums stay exact for small counts and keep ~1e-7
    // relative precision for large ones (adding 1 at a time would stall at 2^24).
    std::vector<int64_t> count(static_cast<size_t>(units), 0);
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t u = 0; u < units; ++u) count[static_cast<size_t>(u)] += y[r * units + u] > 0.f;
    for (int64_t u = 0; u < units; ++u) active_[i][u] += static_cast<float>(count[static_cast<size_t>(u)]);
    seen_[i][0] += static_cast<float>(rows);
  }

  void end_epoch(int /*round*/, int /*epoch*/, int /*stage_epoch*/) override {
    if (done_[0] == 0.f && batches_[0] >= static_cast<float>(t_start_ + t_delta_)) prune();
  }

  // Before the units go: the decision the counts collected so far would give.
  Tensor keep_mask(size_t i) override {
    if (done_[0] != 0.f) return targets()[i].mask;
    const Tensor keep = unit_keep(i);
    Tensor m = targets()[i].mask;
    const int64_t units = keep.size();
    for (int64_t k = 0; k < m.size(); ++k) m[k] *= keep[k % units];
    return m;
  }

  void finalize() override {
    if (done_[0] == 0.f) prune();
    for (PruneTarget& t : targets()) {
      t.weight->var.value().vec().array() *= t.mask.vec().array();
      if (t.bias && !t.bias_mask.empty()) t.bias->var.value().vec().array() *= t.bias_mask.vec().array();
    }
  }

  void buffers(size_t i, std::vector<nn::Buffer>& out) override {
    const std::string prefix = targets()[i].layer->name() + ".weight_prune.";
    out.push_back({prefix + "active", &active_[i]});
    out.push_back({prefix + "seen", &seen_[i]});
    if (i == 0) {
      out.push_back({prefix + "batches", &batches_});
      out.push_back({prefix + "done", &done_});
    }
  }

  std::vector<std::pair<std::string, double>> stats() override {
    const double collected =
        std::clamp<double>(batches_[0] - static_cast<double>(t_start_), 0.0, static_cast<double>(t_delta_));
    return {{"ap_collected_batches", collected}};
  }

 private:
  // [units] 0/1: active fraction > threshold. A layer never loses all its units (that would cut the network):
  // if none passes, the most active one stays (the lowest index among equals).
  Tensor unit_keep(size_t i) const {
    const Tensor& a = active_[i];
    const int64_t units = a.size();
    const double seen = seen_[i][0];
    if (seen <= 0) return Tensor({units}, 1.f);
    Tensor keep({units}, 0.f);
    int64_t best = 0;
    bool any = false;
    for (int64_t u = 0; u < units; ++u) {
      if (static_cast<double>(a[u]) / seen > threshold_) keep[u] = 1.f, any = true;
      if (a[u] > a[best]) best = u;
    }
    if (!any) keep[best] = 1.f;
    return keep;
  }

  // Removes the units: their whole weight slice and bias are masked and zeroed.
  void prune() {
    for (size_t i = 0; i < targets().size(); ++i) {
      PruneTarget& t = targets()[i];
      const Tensor keep = unit_keep(i);
      const int64_t units = keep.size();
      Tensor& w = t.weight->var.value();
      for (int64_t k = 0; k < t.mask.size(); ++k) {
        t.mask[k] *= keep[k % units];
        w[k] *= t.mask[k];
      }
      if (t.bias_mask.empty()) t.bias_mask = Tensor({units}, 1.f);
      for (int64_t u = 0; u < units; ++u) t.bias_mask[u] *= keep[u];
      if (t.bias)
        for (int64_t u = 0; u < units; ++u) t.bias->var.value()[u] *= t.bias_mask[u];
    }
    done_[0] = 1.f;
  }

  double threshold_;
  int64_t t_delta_, t_start_;
  std::vector<Tensor> active_, seen_;  // per target: outputs > 0 per unit, and samples x positions seen
  Tensor batches_{{1}, 0.f};           // batches of the pruning stage so far (target 0's calls)
  Tensor done_{{1}, 0.f};              // 1 once the units are removed
};

// A number as the user would write it (0.25, 1e-05), for messages.

}  // namespace

PruneMethodPtr make_activation_pruning(const Config& c, const PruneCommon& /*common: sparsity unused*/) {
  const double threshold = c.get<double>("threshold", 0.3);
  if (!(threshold >= 0 && threshold < 1))
    c.fail("threshold", "threshold must be in [0, 1) (the fraction of active outputs a unit needs), got " +
                            prune_num(threshold));
  const int64_t t_delta = c.get<int64_t>("t_delta", 50);
  if (t_delta < 1)
    c.fail("t_delta", "t_delta must be >= 1 (batches collected), got " + std::to_string(t_delta));
  const int64_t t_start = c.get<int64_t>("t_start_collecting_batch", 50);
  if (t_start < 0)
    c.fail("t_start_collecting_batch",
           "t_start_collecting_batch must be >= 0 (a batch of the pruning stage), got " +
               std::to_string(t_start));
  return std::make_unique<ActivationPruning>(threshold, t_delta, t_start);
}

}  // namespace kiln::compress
