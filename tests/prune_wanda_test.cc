// Wanda: |W| * ||X|| ranks differently from |W| on hand examples (Dense over the layer, Conv within each
// output channel), only the batches of the collection window count, N:M keeps exactly N of every M
// (N != M/2, partial groups, Dense and Conv2D), finalize() prunes even if collection never completed, the
// buffers resume a run exactly, and bad N/M are refused.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>

#include "compress/prune_method.h"
#include "engine/nn/model.h"
#include "tests/gradcheck.h"
#include "tests/prune_testing.h"

using namespace kiln;
using namespace kiln::compress;
using testing::buffer;
using testing::set;
using testing::targets_of;

namespace {

PruneMethodPtr make(const std::string& yaml, double sparsity = 0.5) {
  PruneCommon common;
  common.sparsity = sparsity;
  return make_prune_method(Config::parse(yaml, "p.yaml", "pruning"), "wanda", common);
}

// Checks that in every group of M consecutive input channels (for each tap and output unit) of a kernel
// viewed as [taps, cin, units], exactly min(N, group size) weights are kept, and that they are the ones with
// the largest score |w| * sqrt(sumsq) (w0: the kernel before pruning).
void check_n_of_m(const PruneTarget& t, const Tensor& w0, const Tensor& sumsq, int64_t n, int64_t m) {
  const int64_t units = t.units(), cin = t.in_channels(), taps = w0.size() / (cin * units);
  int64_t groups = 0;
  for (int64_t o = 0; o < taps; ++o)
    for (int64_t u = 0; u < units; ++u)
      for (int64_t g = 0; g < cin; g += m) {
        float kept = 0, min_kept = INFINITY, max_removed = 0;
        for (int64_t c = g; c < std::min(g + m, cin); ++c) {
          const int64_t idx = (o * cin + c) * units + u;
          const float s = std::fabs(w0[idx]) * std::sqrt(sumsq[c]);
          if (t.mask[idx] == 1.f) kept += 1, min_kept = std::min(min_kept, s);
          if (t.mask[idx] == 0.f) max_removed = std::max(max_removed, s);
          CHECK(t.weight->var.value()[idx] == w0[idx] * t.mask[idx]);
        }
        CHECK(kept == static_cast<float>(std::min(n, std::min(g + m, cin) - g)));
        CHECK(min_kept >= max_removed);
        ++groups;
      }
  CHECK(groups == taps * units * ((cin + m - 1) / m));
}

}  // namespace

TEST_CASE("wanda: |W| * ||X|| over the collected batches only, pruned at the next end_epoch") {
  auto m = nn::Model::from_yaml("layers: [{type: dense, name: a, units: 2}]", {2}, 1);
  auto ts = targets_of(*m);
  // W [2 inputs, 2 units]: input 0 feeds 0.3, -0.4; input 1 feeds 1.0, 0.8.
  set(ts[0].weight, {0.3f, -0.4f, 1.0f, 0.8f});
  auto p = make("{t_start_collecting_batch: 1, t_delta: 2}");
  p->attach(&ts);
  REQUIRE(p->wants_inputs());
  // Batches 0 and 3 lie outside the window; their huge input 1 would flip the ranking if collected.
  p->observe_input(0, Tensor({1, 2}, {0.f, 100.f}));
  p->observe_input(0, Tensor({1, 2}, {3.f, 0.1f}));
  p->end_epoch(0, 0, 0);  // 1 of 2 batches collected: nothing happens yet
  CHECK(ts[0].mask.storage() == std::vector<float>{1, 1, 1, 1});
  p->observe_input(0, Tensor({1, 2}, {4.f, 0.2f}));
  p->observe_input(0, Tensor({1, 2}, {0.f, 100.f}));
  // Sums of squares 9 + 16 = 25 and 0.01 + 0.04 = 0.05 over 2 batches: ||X|| = 3.536, 0.158.
  // S = 1.061, 1.414 | 0.158, 0.126: the half kept is input 0's, though |W| alone keeps input 1's.
  const Tensor& sumsq = *buffer(*p, 0, "a.weight_prune.input_sumsq");
  CHECK(sumsq[0] == doctest::Approx(25.f));
  CHECK(sumsq[1] == doctest::Approx(0.05f));
  CHECK((*buffer(*p, 0, "a.weight_prune.batches"))[0] == 4.f);
  CHECK((*buffer(*p, 0, "a.weight_prune.collected"))[0] == 2.f);
  CHECK(ts[0].mask.storage() == std::vector<float>{1, 1, 1, 1});
  p->end_epoch(0, 1, 1);
  CHECK(ts[0].mask.storage() == std::vector<float>{1, 1, 0, 0});
  CHECK(ts[0].weight->var.value().storage() == std::vector<float>{0.3f, -0.4f, 0.f, 0.f});
  CHECK((*buffer(*p, 0, "a.weight_prune.pruned"))[0] == 1.f);
  p->finalize();  // already pruned: the mask stays
  CHECK(ts[0].mask.storage() == std::vector<float>{1, 1, 0, 0});
}

TEST_CASE("wanda: Conv ranks within each output channel, input norms summed over positions") {
  auto m =
      nn::Model::from_yaml("layers: [{type: conv2d, name: c, filters: 2, kernel_size: 2}]", {3, 3, 2}, 1);
  auto ts = targets_of(*m);
  // W [2, 2, 2 in, 2 out]; every tap: (in 0, out 0) 0.5, (in 0, out 1) 0.05, (in 1, out 0) 0.3, (in 1, out 1)
  // 0.01.
  std::vector<float> w;
  for (int tap = 0; tap < 4; ++tap) w.insert(w.end(), {0.5f, 0.05f, 0.3f, 0.01f});
  set(ts[0].weight, w);
  auto p = make("{t_start_collecting_batch: 0, t_delta: 1}");
  p->attach(&ts);
  // x [1, 3, 3, 2]: channel 0 all 1, channel 1 all 2: sums of squares over the 9 positions 9 and 36.
  Tensor x({1, 3, 3, 2});
  for (int64_t j = 0; j < x.size(); ++j) x[j] = j % 2 == 0 ? 1.f : 2.f;
  p->observe_input(0, x);
  const Tensor& sumsq = *buffer(*p, 0, "c.weight_prune.input_sumsq");
  CHECK(sumsq.storage() == std::vector<float>{9.f, 36.f});
  p->end_epoch(0, 0, 0);
  // ||X|| = 3, 6. Output 0: S = 1.5 (in 0) vs 1.8 (in 1): its 4 taps of input 1 stay although |w| is smaller.
  // Output 1: S = 0.15 vs 0.06: input 0 stays. Layer-wide ranking would have emptied output 1 instead.
  std::vector<float> expect;
  for (int tap = 0; tap < 4; ++tap) expect.insert(expect.end(), {0, 1, 1, 0});
  CHECK(ts[0].mask.storage() == expect);
}

TEST_CASE("wanda: N:M keeps N of every M along the input axis (N != M/2), Dense and Conv2D") {
  struct Case {
    const char* layers;
    Shape in;
  };
  // Dense 10 inputs: groups 4, 4, 2. Conv2D 6 input channels: groups 4, 2, per tap and output channel.
  const Case cases[] = {{"[{type: dense, name: d, units: 3}]", {10}},
                        {"[{type: conv2d, name: c, filters: 2, kernel_size: 3}]", {5, 5, 6}}};
  for (const Case& k : cases)
    for (int64_t n : {1, 3}) {
      CAPTURE(k.layers);
      CAPTURE(n);
      auto m = nn::Model::from_yaml(std::string("layers: ") + k.layers, k.in, 7);
      auto ts = targets_of(*m);
      const Tensor w0 = ts[0].weight->var.value();
      auto p = make("{N: " + std::to_string(n) + ", M: 4, t_start_collecting_batch: 0, t_delta: 2}");
      p->attach(&ts);
      std::mt19937_64 rng(11);
      Shape xs = k.in;
      xs.insert(xs.begin(), 4);
      for (int b = 0; b < 2; ++b) p->observe_input(0, testing::random_tensor(xs, rng, -2.f, 2.f));
      p->end_epoch(0, 0, 0);
      check_n_of_m(
          ts[0], w0,
          *buffer(*p, 0,
                  std::string(k.layers).find("dense") != std::string::npos ? "d.weight_prune.input_sumsq"
                                                                           : "c.weight_prune.input_sumsq"),
          n, 4);
    }
}

TEST_CASE("wanda: N:M on a hand example, N counts the kept weights") {
  auto m = nn::Model::from_yaml("layers: [{type: dense, name: d, units: 1}]", {4}, 1);
  for (int64_t n : {1, 3}) {
    auto ts = targets_of(*m);
    set(ts[0].weight, {0.5f, 0.4f, 0.3f, 0.2f});
    auto p = make("{N: " + std::to_string(n) + ", M: 4, t_start_collecting_batch: 0, t_delta: 1}");
    p->attach(&ts);
    // ||X|| = 1, 1, 10, 1: S = 0.5, 0.4, 3, 0.2. 1:4 keeps input 2 (smallest |w| but one); 3:4 drops input 3.
    p->observe_input(0, Tensor({1, 4}, {1.f, 1.f, 10.f, 1.f}));
    p->end_epoch(0, 0, 0);
    CHECK(ts[0].mask.storage() == (n == 1 ? std::vector<float>{0, 0, 1, 0} : std::vector<float>{1, 1, 1, 0}));
  }
}

TEST_CASE("wanda: finalize prunes with a partial collection, or by |W| with none") {
  auto m = nn::Model::from_yaml("layers: [{type: dense, name: a, units: 2}]", {2}, 1);
  for (bool any : {true, false}) {
    CAPTURE(any);
    auto ts = targets_of(*m);
    set(ts[0].weight, {0.3f, -0.4f, 1.0f, 0.8f});
    // The window (100 batches from batch 0, or from batch 100) never completes within this stage.
    auto p = make(any ? "{t_start_collecting_batch: 0}" : "{}");
    p->attach(&ts);
    p->observe_input(0, Tensor({1, 2}, {3.f, 0.1f}));
    p->end_epoch(0, 0, 0);
    CHECK(ts[0].mask.vec().sum() == 4.f);
    p->finalize();
    // One batch: ||X|| = 3, 0.1, S = 0.9, 1.2 | 0.1, 0.08. None: |W| keeps input 1's weights.
    CHECK(ts[0].mask.storage() == (any ? std::vector<float>{1, 1, 0, 0} : std::vector<float>{0, 0, 1, 1}));
  }
}

TEST_CASE("wanda: a run resumed from its buffers continues exactly") {
  const char* yaml = "layers: [{type: dense, name: a, units: 4}, {type: dense, name: b, units: 3}]";
  auto ma = nn::Model::from_yaml(yaml, {3}, 5), mb = nn::Model::from_yaml(yaml, {3}, 5);
  auto ta = targets_of(*ma), tb = targets_of(*mb);
  const char* cfg = "{t_start_collecting_batch: 2, t_delta: 4}";
  auto a = make(cfg, 0.6), b = make(cfg, 0.6);
  a->attach(&ta);
  b->attach(&tb);
  std::mt19937_64 rng(3);
  std::vector<std::pair<Tensor, Tensor>> batches;
  for (int j = 0; j < 8; ++j)
    batches.emplace_back(testing::random_tensor({5, 3}, rng), testing::random_tensor({5, 4}, rng));
  // a sees batches 0-3, is "checkpointed" into b (buffers by name), then both see batches 4-7.
  for (int j = 0; j < 4; ++j) a->observe_input(0, batches[j].first), a->observe_input(1, batches[j].second);
  for (size_t i = 0; i < ta.size(); ++i) {
    std::vector<nn::Buffer> ba, bb;
    a->buffers(i, ba);
    b->buffers(i, bb);
    REQUIRE(ba.size() == bb.size());
    for (size_t k = 0; k < ba.size(); ++k) {
      CHECK(ba[k].name == bb[k].name);
      *bb[k].tensor = *ba[k].tensor;
    }
  }
  for (int j = 4; j < 8; ++j)
    for (auto* p : {a.get(), b.get()})
      p->observe_input(0, batches[j].first), p->observe_input(1, batches[j].second);
  a->end_epoch(0, 0, 0);
  b->end_epoch(0, 0, 0);
  CHECK((*buffer(*b, 0, "a.weight_prune.collected"))[0] == 4.f);
  CHECK((*buffer(*b, 0, "a.weight_prune.pruned"))[0] == 1.f);
  for (size_t i = 0; i < ta.size(); ++i) {
    CHECK(ta[i].mask.storage() == tb[i].mask.storage());
    CHECK(buffer(*a, i, ta[i].layer->name() + ".weight_prune.input_sumsq")->storage() ==
          buffer(*b, i, tb[i].layer->name() + ".weight_prune.input_sumsq")->storage());
  }
  // 60% of the 24 weights (14) go, split between the layers by the global |W| budget.
  CHECK(tb[0].mask.vec().sum() + tb[1].mask.vec().sum() == 10.f);
}

TEST_CASE("wanda: calculate_pruning_budget splits the removal by a global |W| ranking") {
  const char* yaml = "layers: [{type: dense, name: a, units: 2}, {type: dense, name: b, units: 2}]";
  for (bool budget : {true, false}) {
    CAPTURE(budget);
    auto m = nn::Model::from_yaml(yaml, {4}, 1);
    auto ts = targets_of(*m);
    // a [4, 2]: small weights 0.01 .. 0.08; b [2, 2]: large ones 1 .. 4.
    set(ts[0].weight, {0.01f, 0.02f, 0.03f, 0.04f, 0.05f, 0.06f, 0.07f, 0.08f});
    set(ts[1].weight, {1.f, -2.f, 3.f, -4.f});
    auto p = make(std::string("{t_start_collecting_batch: 0, t_delta: 1, calculate_pruning_budget: ") +
                      (budget ? "true}" : "false}"),
                  0.5);
    p->attach(&ts);
    // a's inputs: input 0 has norm 10, the others 1, so Wanda keeps input 0's two weights in a whatever |W|.
    p->observe_input(0, Tensor({1, 4}, {10.f, 1.f, 1.f, 1.f}));
    p->observe_input(1, Tensor({1, 2}, {1.f, 1.f}));
    p->end_epoch(0, 0, 0);
    if (budget) {
      // 6 of 12 go: all 6 below the global cut are in a (the 6th smallest |W| is 0.06), so a keeps 2 (input
      // 0's by Wanda's score, not a's two largest |W|) and b keeps all 4.
      CHECK(ts[0].mask.storage() == std::vector<float>{1, 1, 0, 0, 0, 0, 0, 0});
      CHECK(ts[1].mask.storage() == std::vector<float>{1, 1, 1, 1});
    } else {
      // Half of each layer: a keeps 4 (input 0's and the next largest scores, input 3's), b its 2 largest.
      CHECK(ts[0].mask.storage() == std::vector<float>{1, 1, 0, 0, 0, 0, 1, 1});
      CHECK(ts[1].mask.storage() == std::vector<float>{0, 0, 1, 1});
    }
  }
}

TEST_CASE("wanda: bad N, M and windows are refused with the key and value") {
  CHECK_THROWS_WITH_AS(make("{N: 2}"), doctest::Contains("key 'N' needs key 'M'"), InputError);
  CHECK_THROWS_WITH_AS(make("{M: 4}"), doctest::Contains("key 'M' needs key 'N'"), InputError);
  CHECK_THROWS_WITH_AS(make("{N: 0, M: 4}"), doctest::Contains("N must be in [1, M = 4], got 0"), InputError);
  CHECK_THROWS_WITH_AS(make("{N: 5, M: 4}"), doctest::Contains("N must be in [1, M = 4], got 5"), InputError);
  CHECK_THROWS_WITH_AS(make("{N: 1, M: 0}"), doctest::Contains("M must be >= 1, got 0"), InputError);
  CHECK_THROWS_WITH_AS(make("{t_delta: 0}"), doctest::Contains("t_delta must be >= 1, got 0"), InputError);
  CHECK_THROWS_WITH_AS(make("{t_start_collecting_batch: -1}"),
                       doctest::Contains("t_start_collecting_batch must be >= 0, got -1"), InputError);
  CHECK_THROWS_WITH_AS(make("{calculate_pruning_budget: 2}"), doctest::Contains("calculate_pruning_budget"),
                       InputError);
  CHECK_NOTHROW(make("{N: 3, M: 4, calculate_pruning_budget: false}"));
}
