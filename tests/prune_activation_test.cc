// activation_pruning: active fractions of hand-made outputs (Dense [B, units], Conv2D [B, H, W, C]), the
// strict threshold, the collection window in batches of the pruning stage, one-shot removal at end_epoch or
// in finalize(), never removing a whole layer, state buffers, and config errors.
#include <memory>
#include <string>
#include <vector>

#include "compress/prune_method.h"
#include "tests/prune_testing.h"
#include "tests/test_files.h"

using namespace kiln;
using namespace kiln::compress;

namespace {

// A model, its prunable targets as the Pruner builds them (masks and bias masks all ones), activation_pruning
// attached.
struct Fixture : testing::Setup {
  Fixture(const std::string& layers, const Shape& in, const std::string& pruning_yaml)
      : Setup("activation_pruning", pruning_yaml, layers, in, {}, 3) {}
};

// [rows, units] from rows of values.
Tensor rows_of(const std::vector<std::vector<float>>& r) {
  std::vector<float> d;
  for (const auto& row : r) d.insert(d.end(), row.begin(), row.end());
  return Tensor({static_cast<int64_t>(r.size()), static_cast<int64_t>(r[0].size())}, d);
}

}  // namespace

TEST_CASE("activation_pruning: Dense units at or below the threshold go, only batches of the window count") {
  Fixture f("[{type: dense, name: d, units: 3, activation: relu}]", {2},
            "{threshold: 0.25, t_delta: 2, t_start_collecting_batch: 1}");
  CHECK(f.method->structured());
  CHECK(f.method->wants_outputs());
  PruneTarget& t = f.targets[0];
  const Tensor w0 = t.weight->var.value(), b0 = t.bias->var.value();
  t.bias->var.value().fill(0.5f);

  // Batch 0 (before the window): nothing active. Counted, it would drop unit 1 to 3/12 = 0.25.
  f.method->observe_output(0, Tensor({4, 3}, 0.f));
  // Batches 1 and 2 (the window): unit 0 active 1 + 1 of 8 -> 0.25, unit 1 2 + 1 -> 0.375, unit 2 8 -> 1.
  // Zero and negative outputs are inactive.
  f.method->observe_output(0, rows_of({{1, 0, 2}, {0, 3, 1}, {-1, 0, 1}, {0, 1, 5}}));
  f.method->end_epoch(0, 0, 0);  // window incomplete: nothing removed yet
  CHECK(f.method->stats()[0].second == doctest::Approx(1.0));
  CHECK(t.mask.vec().minCoeff() == 1.f);
  CHECK(t.bias_mask.storage() == std::vector<float>{1, 1, 1});  // nothing removed: every bias kept
  f.method->observe_output(0, rows_of({{0, 0, 1}, {-2, 0, 1}, {0.5f, 0, 1}, {0, 4, 1}}));
  // Batch 3 (after the window): all active. Counted, unit 0 would reach 6/12 = 0.5 and stay.
  f.method->observe_output(0, Tensor({4, 3}, 1.f));

  // keep_mask previews the decision before anything is removed.
  Tensor preview = f.method->keep_mask(0);
  for (int64_t k = 0; k < preview.size(); ++k) CHECK(preview[k] == (k % 3 == 0 ? 0.f : 1.f));
  CHECK(t.mask.vec().minCoeff() == 1.f);

  f.method->end_epoch(0, 1, 1);
  // Weight [2 in, 3 units]: unit 0's column is masked and zeroed, its bias too; the rest unchanged.
  for (int64_t j = 0; j < 2; ++j) {
    CHECK(t.mask[j * 3 + 0] == 0.f);
    CHECK(t.weight->var.value()[j * 3 + 0] == 0.f);
    for (int64_t u = 1; u < 3; ++u) {
      CHECK(t.mask[j * 3 + u] == 1.f);
      CHECK(t.weight->var.value()[j * 3 + u] == w0[j * 3 + u]);
    }
  }
  REQUIRE(t.bias_mask.size() == 3);
  CHECK(t.bias_mask[0] == 0.f);
  CHECK(t.bias_mask[1] == 1.f);
  CHECK(t.bias_mask[2] == 1.f);
  CHECK(t.bias->var.value()[0] == 0.f);
  CHECK(t.bias->var.value()[1] == 0.5f);
  CHECK(f.method->stats()[0].second == doctest::Approx(2.0));

  // One-shot: later outputs change nothing, finalize keeps the decision.
  f.method->observe_output(0, Tensor({4, 3}, -1.f));
  f.method->end_epoch(0, 2, 2);
  f.method->finalize();
  for (int64_t k = 0; k < t.mask.size(); ++k) CHECK(t.mask[k] == (k % 3 == 0 ? 0.f : 1.f));
}

TEST_CASE("activation_pruning: Conv2D channels count samples x positions; default threshold 0.3 is strict") {
  // Defaults: threshold 0.3, window batches 50..99.
  Fixture f("[{type: conv2d, name: c, filters: 2, kernel_size: 1}]", {2, 2, 1}, "{}");
  PruneTarget& t = f.targets[0];
  REQUIRE(t.weight->var.shape() == Shape{1, 1, 1, 2});
  // [B 1, H 2, W 2, C 2] as rows of channels: channel 0 active at 1 of 4 positions (0 is inactive), channel 1
  // at 3 of 4. Before the window (batches 0..49) every channel is inactive.
  Tensor y = rows_of({{0.2f, 1}, {0, 2}, {-1, 0}, {0, 3}}).reshaped({1, 2, 2, 2});
  // 50 batches of y in the window: 50 / 200 = 0.25 (removed), 150 / 200 = 0.75 (kept).
  for (int b = 0; b < 50; ++b) f.method->observe_output(0, Tensor({1, 2, 2, 2}, -1.f));
  for (int b = 0; b < 50; ++b) f.method->observe_output(0, y);
  f.method->end_epoch(0, 0, 0);
  CHECK(t.mask[0] == 0.f);
  CHECK(t.mask[1] == 1.f);
  CHECK(t.bias_mask[0] == 0.f);
  CHECK(t.bias_mask[1] == 1.f);
}

TEST_CASE("activation_pruning: a fraction equal to the default threshold 0.3 is removed, above it kept") {
  Fixture f("[{type: dense, name: d, units: 2}]", {1}, "{t_start_collecting_batch: 0, t_delta: 1}");
  // 10 samples: unit 0 active in 3 (0.3 exactly), unit 1 in 4 (0.4).
  std::vector<std::vector<float>> r(10, {0.f, 0.f});
  for (int s = 0; s < 3; ++s) r[s][0] = 1.f;
  for (int s = 0; s < 4; ++s) r[s][1] = 1.f;
  f.method->observe_output(0, rows_of(r));
  f.method->end_epoch(0, 0, 0);
  CHECK(f.targets[0].mask[0] == 0.f);
  CHECK(f.targets[0].mask[1] == 1.f);
}

TEST_CASE("activation_pruning: a layer whose units would all go keeps its most active one") {
  Fixture f(
      "[{type: dense, name: a, units: 3, activation: relu}, {type: dense, name: b, units: 2, "
      "activation: relu}]",
      {2}, "{threshold: 0.5, t_delta: 1, t_start_collecting_batch: 0}");
  REQUIRE(f.targets.size() == 2);
  // Layer a: fractions 0.25, 0.5, 0 -> all at or below 0.5; unit 1 (the most active) stays.
  f.method->observe_output(0, rows_of({{1, 1, 0}, {0, 1, 0}, {0, 0, 0}, {0, 0, 0}}));
  // Layer b (same batch): fractions 0.75, 0.25 -> unit 0 passes, unit 1 goes.
  f.method->observe_output(1, rows_of({{1, 0}, {1, 1}, {1, 0}, {0, 0}}));
  f.method->finalize();                  // before any end_epoch: decides with what was collected
  const Tensor& ma = f.targets[0].mask;  // [2, 3]
  for (int64_t k = 0; k < ma.size(); ++k) CHECK(ma[k] == (k % 3 == 1 ? 1.f : 0.f));
  CHECK(f.targets[0].bias_mask[1] == 1.f);
  CHECK(f.targets[0].bias_mask[0] + f.targets[0].bias_mask[2] == 0.f);
  const Tensor& mb = f.targets[1].mask;  // [3, 2]
  for (int64_t k = 0; k < mb.size(); ++k) CHECK(mb[k] == (k % 2 == 0 ? 1.f : 0.f));
  CHECK(f.targets[1].bias->var.value()[1] == 0.f);
}

TEST_CASE(
    "activation_pruning: a stage that ends before the window keeps every unit; the state is in buffers") {
  Fixture f("[{type: dense, name: d, units: 2}]", {1}, "{t_start_collecting_batch: 5, t_delta: 2}");
  for (int b = 0; b < 3; ++b) f.method->observe_output(0, Tensor({2, 2}, -1.f));
  std::vector<nn::Buffer> bufs;
  f.method->buffers(0, bufs);
  std::vector<std::string> names;
  for (const auto& b : bufs) names.push_back(b.name);
  CHECK(names == std::vector<std::string>{"d.weight_prune.active", "d.weight_prune.seen",
                                          "d.weight_prune.batches", "d.weight_prune.done"});
  CHECK((*bufs[2].tensor)[0] == 3.f);  // batches so far
  CHECK((*bufs[1].tensor)[0] == 0.f);  // nothing in the window
  f.method->end_epoch(0, 0, 0);
  f.method->finalize();
  CHECK(f.targets[0].mask.vec().minCoeff() == 1.f);
  CHECK(f.targets[0].bias_mask.vec().minCoeff() == 1.f);
  CHECK((*bufs[3].tensor)[0] == 1.f);
}

TEST_CASE("activation_pruning: config errors name the key and the value") {
  auto make = [](const std::string& yaml) {
    return make_prune_method(Config::parse(yaml, "p.yaml", "pruning"), "activation_pruning", PruneCommon{});
  };
  CHECK_INPUT_ERROR(make("{threshold: 1.5}"), "threshold", "1.5");
  CHECK_INPUT_ERROR(make("{threshold: -0.1}"), "threshold", "-0.1");
  CHECK_INPUT_ERROR(make("{t_delta: 0}"), "t_delta", "0");
  CHECK_INPUT_ERROR(make("{t_start_collecting_batch: -1}"), "t_start_collecting_batch", "-1");
}
