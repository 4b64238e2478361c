// Magnitude pruning: the polynomial schedule's values, exact counts of the largest weights kept, global
// against per-layer ranking, the mask surviving a lottery-ticket rewind, config errors.
#include <doctest/doctest.h>

#include <algorithm>

#include "compress/prune_method.h"
#include "engine/nn/model.h"
#include "tests/prune_testing.h"

using namespace kiln;
using namespace kiln::compress;
using testing::set;
using testing::stat;
using testing::targets_of;

namespace {

PruneMethodPtr make(const std::string& yaml, double sparsity, int epochs = 1, int rounds = 1) {
  PruneCommon common;
  common.sparsity = sparsity, common.epochs = epochs, common.rounds = rounds;
  return make_prune_method(Config::parse(yaml, "p.yaml", "pruning"), "magnitude", common);
}

int64_t ones(const Tensor& t) { return static_cast<int64_t>(t.vec().sum()); }

}  // namespace

TEST_CASE("magnitude: the polynomial schedule and the |w| it keeps") {
  auto m = nn::Model::from_yaml("layers: [{type: dense, name: a, units: 10}]", {10}, 3);
  auto ts = targets_of(*m);
  const Tensor w0 = ts[0].weight->var.value();
  // 1 round x 8 epochs: ramp = (3 * 8) / 4 = 6; s_t = 0.8 - 0.8 * (1 - (t + 1) / 6)^3.
  auto p = make("{}", 0.8, 8);
  p->attach(&ts);
  // t = 0: 0.8 * (1 - (5/6)^3) = 0.337037 -> floor(33.7) = 33 of 100 removed.
  p->start_epoch(0, 0, 0);
  CHECK(stat(*p, "magnitude_target") == doctest::Approx(0.337037).epsilon(1e-5));
  CHECK(ones(ts[0].mask) == 67);
  // Exactly the 67 largest |w| are kept, and the pruned weights are zeroed.
  std::vector<float> mags;
  for (int64_t j = 0; j < w0.size(); ++j) mags.push_back(std::fabs(w0[j]));
  std::sort(mags.begin(), mags.end());
  const float cut = mags[33];  // the smallest kept magnitude
  for (int64_t j = 0; j < w0.size(); ++j) {
    CHECK(ts[0].mask[j] == (std::fabs(w0[j]) >= cut ? 1.f : 0.f));
    CHECK(ts[0].weight->var.value()[j] == w0[j] * ts[0].mask[j]);
  }
  // t = 2: 0.8 * (1 - (1/2)^3) = 0.7; t = 4: 0.8 * (1 - (1/6)^3) = 0.796296; t >= 5: 0.8.
  const Tensor before = ts[0].mask;
  p->start_epoch(0, 2, 2);
  CHECK(stat(*p, "magnitude_target") == doctest::Approx(0.7));
  CHECK(ones(ts[0].mask) == 30);
  for (int64_t j = 0; j < before.size(); ++j)  // a rising schedule only removes more
    if (before[j] == 0.f) CHECK(ts[0].mask[j] == 0.f);
  p->start_epoch(0, 4, 4);
  CHECK(stat(*p, "magnitude_target") == doctest::Approx(0.796296).epsilon(1e-5));
  CHECK(ones(ts[0].mask) == 21);
  p->start_epoch(0, 5, 5);
  CHECK(ones(ts[0].mask) == 20);
  p->start_epoch(0, 7, 7);
  CHECK(stat(*p, "magnitude_target") == doctest::Approx(0.8));
  CHECK(ones(ts[0].mask) == 20);
  p->finalize();
  CHECK(ones(ts[0].mask) == 20);
}

TEST_CASE("magnitude: the schedule's keys and the default ramp over rounds") {
  auto m = nn::Model::from_yaml("layers: [{type: dense, name: a, units: 2}]", {2}, 1);
  auto ts = targets_of(*m);
  // 2 rounds x 3 epochs: ramp = (3 * 6) / 4 = 4; t = 2 (round 0, epoch 2): 0.8 - 0.8 * (1/4)^3 = 0.7875.
  auto p = make("{}", 0.8, 3, 2);
  p->attach(&ts);
  p->start_epoch(0, 2, 2);
  CHECK(stat(*p, "magnitude_target") == doctest::Approx(0.7875));
  p->start_epoch(1, 0, 3);
  CHECK(stat(*p, "magnitude_target") == doctest::Approx(0.8));
  // s_i = 0.5, exponent 1, ramp 4: t = 0: 0.8 - 0.3 * 3/4 = 0.575; t = 1: 0.8 - 0.3 / 2 = 0.65.
  auto q = make("{initial_sparsity: 0.5, exponent: 1, ramp_epochs: 4}", 0.8, 3, 2);
  q->attach(&ts);
  q->start_epoch(0, 0, 0);
  CHECK(stat(*q, "magnitude_target") == doctest::Approx(0.575));
  q->start_epoch(0, 1, 1);
  CHECK(stat(*q, "magnitude_target") == doctest::Approx(0.65));
}

TEST_CASE("magnitude: global ranking differs from per-layer ranking") {
  const char* yaml = "layers: [{type: dense, name: a, units: 2}, {type: dense, name: b, units: 2}]";
  for (bool global : {true, false}) {
    CAPTURE(global);
    auto m = nn::Model::from_yaml(yaml, {2}, 1);
    auto ts = targets_of(*m);
    set(ts[0].weight, {1.0f, -2.0f, 3.0f, 4.0f});
    set(ts[1].weight, {0.1f, -0.4f, 0.3f, 0.2f});
    // ramp_epochs 1: s_0 = 0.5 at once, 4 of the 8 weights go.
    auto p = make(std::string("{ramp_epochs: 1, global_pruning: ") + (global ? "true}" : "false}"), 0.5);
    p->attach(&ts);
    p->start_epoch(0, 0, 0);
    if (global) {
      // The 4 smallest of all: every weight of b; a stays dense.
      CHECK(ts[0].mask.storage() == std::vector<float>{1, 1, 1, 1});
      CHECK(ts[1].mask.storage() == std::vector<float>{0, 0, 0, 0});
    } else {
      // 2 per layer: a loses 1 and -2, b loses 0.1 and 0.2.
      CHECK(ts[0].mask.storage() == std::vector<float>{0, 0, 1, 1});
      CHECK(ts[1].mask.storage() == std::vector<float>{0, 1, 1, 0});
      CHECK(ts[1].weight->var.value().storage() == std::vector<float>{0.f, -0.4f, 0.3f, 0.f});
    }
  }
}

TEST_CASE("magnitude: a rewind keeps the pruned weights pruned") {
  auto m = nn::Model::from_yaml("layers: [{type: dense, name: a, units: 2}]", {2}, 1);
  auto ts = targets_of(*m);
  set(ts[0].weight, {0.1f, 0.2f, 0.3f, 0.4f});
  // exponent 1, ramp 2: s_0 = 0.5 - 0.5 / 2 = 0.25 (1 of 4 removed), s_1 = 0.5 (2 removed).
  auto p = make("{exponent: 1, ramp_epochs: 2}", 0.5);
  p->attach(&ts);
  p->start_epoch(0, 0, 0);
  CHECK(ts[0].mask.storage() == std::vector<float>{0, 1, 1, 1});
  // Rewind to earlier dense weights: by |w| alone 0.2 and 0.1 (indices 1, 3) would go; the ticket keeps
  // index 0 pruned and removes the smallest survivor, index 3.
  set(ts[0].weight, {0.9f, 0.2f, 0.3f, 0.1f});
  p->start_epoch(0, 1, 1);
  CHECK(ts[0].mask.storage() == std::vector<float>{0, 1, 1, 0});
  CHECK(ts[0].weight->var.value().storage() == std::vector<float>{0.f, 0.2f, 0.3f, 0.f});
  std::vector<nn::Buffer> b;  // the mask is the Pruner's buffer, not the method's
  p->buffers(0, b);
  CHECK(b.empty());
}

TEST_CASE("magnitude: bad keys name the key and the value") {
  CHECK_THROWS_WITH_AS(make("{initial_sparsity: 0.9}", 0.8),
                       doctest::Contains("initial_sparsity must be in [0, sparsity = 0.8], got 0.9"),
                       InputError);
  CHECK_THROWS_WITH_AS(make("{exponent: 0}", 0.8), doctest::Contains("exponent must be > 0, got 0"),
                       InputError);
  CHECK_THROWS_WITH_AS(make("{ramp_epochs: 0}", 0.8), doctest::Contains("ramp_epochs must be >= 1, got 0"),
                       InputError);
  CHECK_THROWS_WITH_AS(make("{global_pruning: maybe}", 0.8), doctest::Contains("global_pruning"), InputError);
}
