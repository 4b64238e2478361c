// Iterative magnitude pruning with the polynomial schedule of Zhu & Gupta 2017 ("To prune, or not to
// prune"): at stage epoch t (0-based over all rounds) the target sparsity is
//   s_t = s_f + (s_i - s_f) * (1 - min(1, (t + 1) / ramp))^exponent
// with s_f = `sparsity`, s_i = `initial_sparsity`. start_epoch() hardens the masks for s_t, so the epoch
// trains with them (the optimiser keeps the zeros through Parameter::mask).
//
// Ranking: |w| * mask, over all targets together (`global_pruning: true`) or within each layer. A weight
// pruned earlier scores 0 and so stays pruned while the schedule rises: without rewinding this is plain
// |w| (pruned weights are 0 anyway); after a lottery-ticket rewind restored the early, dense weights it
// keeps the ticket's mask instead of drawing a new one from the rewound values. The hard mask is the
// method's whole state; the Pruner checkpoints it ("<layer>.weight_prune.mask"), so no buffers here.
#include <algorithm>
#include <cmath>
#include <sstream>

#include "compress/prune_method.h"

namespace kiln::compress {

namespace {

class Magnitude : public PruneMethod {
 public:
  Magnitude(const Config& c, const PruneCommon& common)
      : final_(common.sparsity),
        initial_(c.get<double>("initial_sparsity", 0.0)),
        exponent_(c.get<double>("exponent", 3.0)),
        // The last quarter of the stage trains at the target sparsity.
        ramp_(c.get<int>("ramp_epochs", std::max(1, (3 * common.rounds * common.epochs) / 4))),
        global_(c.get<bool>("global_pruning", true)) {
    if (!(initial_ >= 0.0 && initial_ <= final_))
      c.fail("initial_sparsity", "initial_sparsity must be in [0, sparsity = " + prune_num(final_) +
                                     "], got " + prune_num(initial_));
    if (!(exponent_ > 0.0)) c.fail("exponent", "exponent must be > 0, got " + prune_num(exponent_));
    if (ramp_ < 1) c.fail("ramp_epochs", "ramp_epochs must be >= 1, got " + std::to_string(ramp_));
  }
  std::string name() const override { return "magnitude"; }

  void start_epoch(int, int, int stage_epoch) override {
    const double progress = std::min(1.0, static_cast<double>(stage_epoch + 1) / ramp_);
    target_ = final_ + (initial_ - final_) * std::pow(1.0 - progress, exponent_);
    update_masks();
  }

  std::vector<std::pair<std::string, double>> stats() override { return {{"magnitude_target", target_}}; }

 private:
  static Tensor score(const PruneTarget& t) {
    Tensor s(t.weight->var.shape());
    s.vec() = t.weight->var.value().vec().cwiseAbs().cwiseProduct(t.mask.vec());
    return s;
  }
  void apply(PruneTarget& t, Tensor mask) {
    t.mask = std::move(mask);
    t.weight->var.value().vec().array() *= t.mask.vec().array();
  }
  void update_masks() {
    std::vector<PruneTarget>& ts = targets();
    if (!global_) {
      for (PruneTarget& t : ts) {
        const int64_t n = t.weight->var.size();
        apply(t, keep_largest(score(t), n - count_of(target_, n)));
      }
      return;
    }
    int64_t total = 0;
    for (const PruneTarget& t : ts) total += t.weight->var.size();
    Tensor all({total});  // every target's scores, flattened one after the other
    int64_t at = 0;
    for (const PruneTarget& t : ts) {
      Tensor s = score(t);
      std::copy(s.data(), s.data() + s.size(), all.data() + at);
      at += s.size();
    }
    const Tensor keep = keep_largest(all, total - count_of(target_, total));
    at = 0;
    for (PruneTarget& t : ts) {
      Tensor m(t.weight->var.shape());
      std::copy(keep.data() + at, keep.data() + at + m.size(), m.data());
      at += m.size();
      apply(t, std::move(m));
    }
  }

  double final_, initial_, exponent_;
  int ramp_;
  bool global_;
  double target_ = 0.0;  // s_t of the current epoch
};

}  // namespace

PruneMethodPtr make_magnitude(const Config& c, const PruneCommon& common) {
  return std::make_unique<Magnitude>(c, common);
}

}  // namespace kiln::compress
