// AutoSparse (compress/prune_autosparse.cc): W' = sign(W) relu(|W| - sigmoid(T)), the relu's backward slope
// alpha below zero (hand values: finite differences do not apply at the kink), the decay of alpha and its
// reset at alpha_reset_epoch, finalize() baking W' into the kernel, and config errors.
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

Setup make(const std::string& keys,
           const std::string& layers = "[{type: dense, name: a, units: 2, use_bias: false}]",
           const Shape& in = {3}) {
  return Setup("autosparse", keys, layers, in);
}

nn::Parameter* threshold(Setup& s, size_t i) { return testing::method_param(s, i); }

float alpha(Setup& s) {
  std::vector<nn::Buffer> b;
  s.method->buffers(0, b);
  REQUIRE(b.size() == 1);
  CHECK(b[0].name == "a.weight_prune.alpha");
  return (*b[0].tensor)[0];
}

// Kernel [3, 2]: with sigmoid(T) = 0.5, u = |w| - 0.5 = 0.3, 0.3, -0.2, -0.3, 0 (the kink), 1.5.
const std::vector<float> kW{0.8f, -0.8f, 0.3f, -0.2f, 0.5f, 2.f};

}  // namespace

TEST_CASE("autosparse: W' = sign(W) relu(|W| - sigmoid(T)) with channelwise T = -5 by default") {
  Setup s = make("{}");
  nn::Parameter* t = threshold(s, 0);
  CHECK(t->name == "a.weight_prune.T");
  CHECK_FALSE(t->decay);
  CHECK(t->var.shape() == Shape{2});
  CHECK(t->var.value()[0] == -5.f);
  s.targets[0].weight->var.value() = Tensor({3, 2}, kW);
  Var w = forward_weight(s, 0);
  CHECK(w.value()[0] == doctest::Approx(0.8 - 0.0066929));  // sigmoid(-5) = 0.0066929
  CHECK(w.value()[1] == doctest::Approx(-0.8 + 0.0066929));
  CHECK(stat(s, "autosparse_threshold_mean") == doctest::Approx(0.0066929));

  Setup l = make("threshold_type: layerwise\nthreshold_init: 0");
  CHECK(threshold(l, 0)->var.shape() == Shape{1});
  l.targets[0].weight->var.value() = Tensor({3, 2}, kW);
  Var wl = forward_weight(l, 0);
  const float expected[] = {0.3f, -0.3f, 0.f, 0.f, 0.f, 1.5f};
  for (int j = 0; j < 6; ++j) CHECK(wl.value()[j] == doctest::Approx(expected[j]));
}

TEST_CASE("autosparse: the relu's backward is 1 above zero and alpha at or below it") {
  Setup s = make("threshold_type: weightwise\nthreshold_init: 0");
  CHECK(threshold(s, 0)->var.shape() == Shape{3, 2});
  s.targets[0].weight->var.value() = Tensor({3, 2}, kW);
  backward(sum_all(forward_weight(s, 0)));
  // dW'/dW = sign(W)^2 r, r = 1, 1, 0.5, 0.5, 0.5, 1 (alpha = 0.5, the default, at u <= 0).
  const Tensor& gw = s.targets[0].weight->var.grad();
  const float gw_expected[] = {1.f, 1.f, 0.5f, 0.5f, 0.5f, 1.f};
  for (int j = 0; j < 6; ++j) CHECK(gw[j] == doctest::Approx(gw_expected[j]));
  // dW'/dT = -sign(W) r sigmoid'(0) = -sign(W) r / 4.
  const Tensor& gt = threshold(s, 0)->var.grad();
  const float gt_expected[] = {-0.25f, 0.25f, -0.125f, 0.125f, -0.125f, -0.25f};
  for (int j = 0; j < 6; ++j) CHECK(gt[j] == doctest::Approx(gt_expected[j]));

  // From alpha_reset_epoch (90) on, alpha = 0: pruned weights get no gradient at all.
  s.method->start_epoch(0, 90, 90);
  REQUIRE(alpha(s) == 0.f);
  s.targets[0].weight->var.grad() = Tensor();
  threshold(s, 0)->var.grad() = Tensor();
  backward(sum_all(forward_weight(s, 0)));
  const float gw0[] = {1.f, 1.f, 0.f, 0.f, 0.f, 1.f};
  for (int j = 0; j < 6; ++j) CHECK(s.targets[0].weight->var.grad()[j] == gw0[j]);
  CHECK(threshold(s, 0)->var.grad()[2] == 0.f);
  CHECK(threshold(s, 0)->var.grad()[5] == doctest::Approx(-0.25));

  // Channelwise: unit 0 collects j = 0, 2, 4 (-0.25 - 0.125 - 0.125),
  // unit 1 collects j = 1, 3, 5 (0.25 + 0.125 - 0.25).
  Setup c = make("threshold_init: 0");
  c.targets[0].weight->var.value() = Tensor({3, 2}, kW);
  backward(sum_all(forward_weight(c, 0)));
  CHECK(threshold(c, 0)->var.grad()[0] == doctest::Approx(-0.5));
  CHECK(threshold(c, 0)->var.grad()[1] == doctest::Approx(0.125));
}

TEST_CASE("autosparse: alpha = alpha0 max(cosine, sigmoid decay) over alpha_reset_epoch, then 0") {
  Setup s = make("alpha_reset_epoch: 4");
  CHECK(alpha(s) == 0.5f);
  CHECK(stat(s, "autosparse_alpha") == 0.5);
  // r = e / 4: cos_d = (1 + cos(pi r)) / 2, sig_d = 1 - sigmoid(12 r - 6).
  // e = 1: max(0.8535534, 0.9525741); e = 2: max(0.5, 0.5); e = 3: max(0.1464466, 0.0474259); e >= 4: 0.
  const double expected[] = {0.5, 0.5 * 0.9525741, 0.25, 0.5 * 0.1464466, 0.0, 0.0};
  for (int e = 0; e < 6; ++e) {
    s.method->start_epoch(e / 3, e % 3, e);  // counted across rounds: stage_epoch
    CHECK(alpha(s) == doctest::Approx(expected[e]));
    s.method->end_epoch(e / 3, e % 3, e);  // the checkpoint after epoch e carries epoch e + 1's alpha
    if (e < 5) CHECK(alpha(s) == doctest::Approx(expected[e + 1]));
  }
  CHECK(stat(s, "autosparse_alpha") == 0.0);

  // Defaults (alpha 0.5, reset at 90): 0.25 half way, non-increasing, positive at 89, 0 from 90 on.
  Setup d = make("{}");
  d.method->start_epoch(0, 45, 45);
  CHECK(alpha(d) == doctest::Approx(0.25));
  float prev = 1.f;
  for (int e = 0; e <= 100; ++e) {
    d.method->start_epoch(0, e, e);
    CHECK(alpha(d) <= prev);
    prev = alpha(d);
    if (e == 89) CHECK(alpha(d) > 0.f);
    if (e >= 90) CHECK(alpha(d) == 0.f);
  }
  Setup z = make("alpha: 0.2\nalpha_reset_epoch: 0");
  CHECK(alpha(z) == 0.f);  // reset at 0: no leak at all
}

TEST_CASE("autosparse: keep_mask is W' != 0; finalize writes W' and its mask into the target") {
  Setup s = make("threshold_type: layerwise\nthreshold_init: 0");
  s.targets[0].weight->var.value() = Tensor({3, 2}, kW);
  const std::vector<float> mask{1.f, 1.f, 0.f, 0.f, 0.f, 1.f};  // u = 0 gives W' = 0: pruned
  CHECK(s.method->keep_mask(0).storage() == mask);
  s.method->finalize();
  CHECK(s.targets[0].mask.storage() == mask);
  const float baked[] = {0.3f, -0.3f, 0.f, 0.f, 0.f, 1.5f};  // the shrunk weights, not W * mask
  const Tensor& w = s.targets[0].weight->var.value();
  CHECK(w.shape() == Shape{3, 2});
  for (int j = 0; j < 6; ++j) CHECK(w[j] == doctest::Approx(baked[j]));
}

TEST_CASE("autosparse: config errors name the key and the value") {
  auto make_with = [](const std::string& yaml) {
    return make_prune_method(Config::parse(yaml, "p.yaml", "pruning"), "autosparse", PruneCommon{});
  };
  CHECK_INPUT_ERROR(make_with("backward_sparsity: true"), "p.yaml:1:1", "backward_sparsity", "not supported");
  CHECK_INPUT_ERROR(make_with("threshold_type: rowwise"), "threshold_type", "'rowwise'");
  CHECK_INPUT_ERROR(make_with("alpha: -0.5"), "alpha", "got -0.5");
  CHECK_INPUT_ERROR(make_with("alpha_reset_epoch: -1"), "alpha_reset_epoch", "got -1");
  CHECK_INPUT_ERROR(make_with("autotune_epochs: -2"), "autotune_epochs", "got -2");
  CHECK_INPUT_ERROR(make_with("autotune_epochs: many"), "autotune_epochs", "many");
  CHECK(make_with("autotune_epochs: 5\nbackward_sparsity: false\nthreshold_type: weightwise")->name() ==
        "autosparse");
}
