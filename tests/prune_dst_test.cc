// Dynamic Sparse Training (compress/prune_dst.cc): the hard mask 1[|w| > t] with its straight-through
// gradient (exact values at x = 0.1, 0.5, 1.5 and on pruned and negative weights), threshold shapes, the
// exp(-t) loss, the reset of a collapsed threshold to 0 (PQuant reset to 1.0), and config errors.
#include "compress/prune_method.h"
#include "tests/gradcheck.h"
#include "tests/prune_testing.h"
#include "tests/test_files.h"

using namespace kiln;
using namespace kiln::compress;
using testing::forward_weight;
using testing::Setup;
using testing::stat;

namespace {

Setup make(const std::string& keys, const std::string& layers, const Shape& in) {
  return Setup("dst", keys, layers, in);
}

nn::Parameter* threshold(Setup& s, size_t i) { return testing::method_param(s, i); }

double kept(const Tensor& m) { return m.vec().cast<double>().sum(); }

}  // namespace

TEST_CASE("dst: w * step(|w| - t) with the straight-through gradient 2 - 4|x|, 0.4, 0") {
  Setup s = make("threshold_type: weightwise", "[{type: dense, name: a, units: 2, use_bias: false}]", {3});
  nn::Parameter* t = threshold(s, 0);
  CHECK(t->name == "a.weight_prune.t");
  CHECK_FALSE(t->decay);
  CHECK(t->var.shape() == Shape{3, 2});
  // x = |w| - t = 0.1, 0.5, 1.5, 0.1 (w negative), -0.1 (pruned), -1.5 (pruned).
  s.targets[0].weight->var.value() = Tensor({3, 2}, {1.f, 1.f, 1.f, -1.f, 1.f, 0.5f});
  t->var.value() = Tensor({3, 2}, {0.9f, 0.5f, -0.5f, 0.9f, 1.1f, 2.f});
  Var w = forward_weight(s, 0);
  CHECK(w.value().storage() == std::vector<float>{1.f, 1.f, 1.f, -1.f, 0.f, 0.f});
  backward(sum_all(w));
  // step'(x) = 1.6, 0.4, 0, 1.6, 1.6, 0. d/dt = -w step'(x); d/dw = step(x) + |w| step'(x).
  const Tensor& gt = t->var.grad();
  CHECK(gt[0] == doctest::Approx(-1.6));
  CHECK(gt[1] == doctest::Approx(-0.4));
  CHECK(gt[2] == 0.f);
  CHECK(gt[3] == doctest::Approx(1.6));  // a negative weight pulls its threshold the other way
  CHECK(gt[4] == doctest::Approx(-1.6));
  CHECK(gt[5] == 0.f);
  const Tensor& gw = s.targets[0].weight->var.grad();
  CHECK(gw[0] == doctest::Approx(2.6));
  CHECK(gw[1] == doctest::Approx(1.4));
  CHECK(gw[2] == doctest::Approx(1.0));
  CHECK(gw[3] == doctest::Approx(2.6));  // w sign(w) = |w|: the same as for +1
  CHECK(gw[4] == doctest::Approx(1.6));  // pruned, but near the threshold: it can come back
  CHECK(gw[5] == 0.f);
}

TEST_CASE("dst: channelwise (the default) and layerwise thresholds sum their weights' gradients") {
  Setup s = make("threshold_init: 0.25", "[{type: dense, name: a, units: 3, use_bias: false}]", {2});
  nn::Parameter* t = threshold(s, 0);
  CHECK(t->var.shape() == Shape{3});  // one per output unit, the kernel's last axis
  CHECK(t->var.value()[1] == 0.25f);
  s.targets[0].weight->var.value() = Tensor({2, 3}, 1.f);
  t->var.value() = Tensor({3}, {0.9f, 0.5f, -0.5f});
  backward(sum_all(forward_weight(s, 0)));
  CHECK(t->var.grad()[0] == doctest::Approx(-2 * 1.6));  // two inputs per unit
  CHECK(t->var.grad()[1] == doctest::Approx(-2 * 0.4));
  CHECK(t->var.grad()[2] == 0.f);

  Setup l = make("threshold_type: layerwise", "[{type: dense, name: a, units: 3, use_bias: false}]", {2});
  nn::Parameter* tl = threshold(l, 0);
  CHECK(tl->var.shape() == Shape{1});
  l.targets[0].weight->var.value() = Tensor({2, 3}, {1.1f, 1.5f, 2.5f, -1.1f, 0.5f, 0.f});
  // x = 1.1, 1.5, 2.5, 1.1, 0.5, 0 -> step' = 0, 0, 0, 0, 0.4, 2 (the last weight is 0: no gradient).
  backward(sum_all(forward_weight(l, 0)));
  CHECK(tl->var.grad()[0] == doctest::Approx(-0.5 * 0.4));
}

TEST_CASE("dst: the loss is alpha * sum of exp(-t) over every threshold of every target") {
  const std::string layers = "[{type: dense, name: a, units: 3}, {type: dense, name: b, units: 1}]";
  Setup s = make("alpha: 0.5", layers, {2});
  threshold(s, 0)->var.value() = Tensor({3}, {0.f, 1.f, 2.f});
  threshold(s, 1)->var.value() = Tensor({1}, {-1.f});
  Var l = s.method->loss();
  // 1 + 0.3678794 + 0.1353353 + 2.7182818 = 4.2214965
  CHECK(l.value()[0] == doctest::Approx(0.5 * 4.2214965));
  backward(l);
  CHECK(threshold(s, 0)->var.grad()[0] == doctest::Approx(-0.5));
  CHECK(threshold(s, 0)->var.grad()[1] == doctest::Approx(-0.5 * 0.3678794));
  CHECK(threshold(s, 1)->var.grad()[0] == doctest::Approx(-0.5 * 2.7182818));
  Setup d = make("{}", layers, {2});
  // The default alpha, t = 0 for 3 + 1 thresholds.
  CHECK(d.method->loss().value()[0] == doctest::Approx(4 * 5e-6));
  CHECK_FALSE(make("alpha: 0", layers, {2}).method->loss().defined());
}

TEST_CASE("dst: a threshold pruning max_pruning_pct of the weights is reset to 0, not 1.0") {
  // 100 weights 0.01, 0.02, ..., 1.00 and one layer-wide threshold.
  Setup s = make("threshold_type: layerwise\nthreshold_init: 0.3",
                 "[{type: dense, name: a, units: 10, use_bias: false}]", {10});
  Tensor& w = s.targets[0].weight->var.value();
  for (int64_t k = 0; k < 100; ++k) w[k] = 0.01f * static_cast<float>(k + 1);
  nn::Parameter* t = threshold(s, 0);
  t->var.value()[0] = 0.985f;  // keeps 0.99 and 1.00: 98% pruned, below 99%
  CHECK(kept(s.method->keep_mask(0)) == 2);
  s.method->end_epoch(0, 0, 0);
  CHECK(t->var.value()[0] == 0.985f);
  CHECK(stat(s, "dst_resets") == 0);
  t->var.value()[0] = 0.995f;  // keeps 1.00 only: 99% pruned
  CHECK(kept(s.method->keep_mask(0)) == 1);
  s.method->end_epoch(0, 1, 1);
  // Reset to exactly 0 (not threshold_init 0.3, nor PQuant's 1.0, which would keep nothing of these weights):
  // every nonzero weight is kept again.
  CHECK(t->var.value()[0] == 0.f);
  CHECK(kept(s.method->keep_mask(0)) == 100);
  CHECK(stat(s, "dst_resets") == 1);
  CHECK(stat(s, "dst_threshold_mean") == 0.0);
  std::vector<nn::Buffer> b;
  s.method->buffers(0, b);
  REQUIRE(b.size() == 1);
  CHECK(b[0].name == "a.weight_prune.resets");
  CHECK((*b[0].tensor)[0] == 1.f);
}

TEST_CASE("dst: a collapsed layer is reset even when the overall sparsity is below max_pruning_pct") {
  Setup s = make("{}", "[{type: dense, name: a, units: 10}, {type: dense, name: b, units: 10}]", {10});
  threshold(s, 0)->var.value().fill(10.f);  // every |w| < 10: layer a pruned away
  threshold(s, 1)->var.value().fill(-1.f);  // layer b keeps everything: 50% overall
  CHECK(kept(s.method->keep_mask(0)) == 0);
  CHECK(stat(s, "dst_threshold_mean") == doctest::Approx(4.5));
  s.method->end_epoch(0, 0, 0);
  CHECK(threshold(s, 0)->var.value()[3] == 0.f);
  CHECK(threshold(s, 1)->var.value()[3] == -1.f);
  CHECK(stat(s, "dst_resets") == 1);
}

TEST_CASE("dst: keep_mask is 1[|w| > t]; finalize keeps w where the mask is 1") {
  Setup s = make("threshold_type: weightwise", "[{type: dense, name: a, units: 2, use_bias: false}]", {2});
  s.targets[0].weight->var.value() = Tensor({2, 2}, {0.5f, -0.5f, 0.2f, -0.3f});
  threshold(s, 0)->var.value() = Tensor({2, 2}, {0.4f, 0.4f, 0.4f, 0.3f});
  CHECK(s.method->keep_mask(0).storage() == std::vector<float>{1.f, 1.f, 0.f, 0.f});  // |w| = t is pruned
  s.method->finalize();
  CHECK(s.targets[0].mask.storage() == std::vector<float>{1.f, 1.f, 0.f, 0.f});
  CHECK(s.targets[0].weight->var.value().storage() == std::vector<float>{0.5f, -0.5f, 0.f, 0.f});
}

TEST_CASE("dst: config errors name the key and the value") {
  auto make_dst_with = [](const std::string& yaml) {
    return make_prune_method(Config::parse(yaml, "p.yaml", "pruning"), "dst", PruneCommon{});
  };
  CHECK_INPUT_ERROR(make_dst_with("threshold_type: rowwise"), "p.yaml:1:1", "threshold_type", "'rowwise'");
  CHECK_INPUT_ERROR(make_dst_with("alpha: -1"), "alpha", "got -1");
  CHECK_INPUT_ERROR(make_dst_with("max_pruning_pct: 1.5"), "max_pruning_pct", "got 1.5");
  CHECK_INPUT_ERROR(make_dst_with("max_pruning_pct: 0"), "max_pruning_pct", "got 0");
  CHECK(make_dst_with("threshold_type: layerwise\nalpha: 0\nmax_pruning_pct: 1")->name() == "dst");
}
