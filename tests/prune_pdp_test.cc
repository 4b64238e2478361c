// PDP: the midpoint threshold and soft mask on hand examples, keep_mask at m = 0.5, the r_e ramp, global
// budgets, structured pruning of whole units and their biases, finite gradients at tau = 1e-5, a
// finite-difference check of the soft mask's gradient, and short training runs of both variants.
#include <doctest/doctest.h>

#include <cmath>

#include "compress/prune_method.h"
#include "engine/nn/model.h"
#include "engine/optim/optimizer.h"
#include "tests/gradcheck.h"
#include "tests/prune_testing.h"

using namespace kiln;
using namespace kiln::compress;
using testing::set;
using testing::stat;
using testing::targets_of;

namespace {

PruneMethodPtr make(const std::string& yaml, double sparsity) {
  PruneCommon common;
  common.sparsity = sparsity, common.epochs = 10;
  return make_prune_method(Config::parse(yaml, "p.yaml", "pruning"), "pdp", common);
}

Tensor weight_of(PruneMethod& p, size_t i, const Tensor& w) {
  NoGradGuard ng;
  nn::Context ctx;
  return p.weight(i, Var(w), ctx).value();
}

// Routes a layer's kernel through the method, as the Pruner does during the stage.
struct PruneWeight : nn::Transform {
  PruneMethod* method;
  size_t i;
  PruneWeight(PruneMethod* m, size_t k) : method(m), i(k) {}
  Var apply(const Var& w, nn::Context& ctx) override { return method->weight(i, w, ctx); }
};

}  // namespace

TEST_CASE("pdp: threshold at the midpoint, soft mask sigmoid((w^2 - t^2) / tau), keep_mask m >= 0.5") {
  auto m = nn::Model::from_yaml("layers: [{type: dense, name: a, units: 3}]", {2}, 1);
  auto ts = targets_of(*m);
  set(ts[0].weight, {-0.6f, 0.1f, 0.35f, -0.2f, 0.5f, 0.05f});
  // epsilon 1: r_0 = min(1, 1 * 1) * 0.5 = 0.5, k = 3 of 6. Sorted |w|: 0.05 0.1 0.2 | 0.35 0.5 0.6,
  // t = (0.2 + 0.35) / 2 = 0.275, t^2 = 0.075625.
  auto p = make("{epsilon: 1, temperature: 0.01}", 0.5);
  p->attach(&ts);
  p->start_epoch(0, 0, 0);
  CHECK(stat(*p, "pdp_r") == doctest::Approx(0.5));
  CHECK(p->keep_mask(0).storage() == std::vector<float>{1, 0, 1, 0, 1, 0});
  // w = 0.35: (0.1225 - 0.075625) / 0.01 = 4.6875, m = 0.990874, w m = 0.346806;
  // w = -0.2: (0.04 - 0.075625) / 0.01 = -3.5625, m = 0.0275853, w m = -0.00551706;
  // w = 0.1: -6.5625, w m = 1.41036e-4.
  const Tensor we = weight_of(*p, 0, ts[0].weight->var.value());
  CHECK(we[2] == doctest::Approx(0.346806).epsilon(1e-5));
  CHECK(we[3] == doctest::Approx(-0.00551706).epsilon(1e-4));
  CHECK(we[1] == doctest::Approx(1.41036e-4).epsilon(1e-4));
  // finalize: the effective weight times the hard mask.
  p->finalize();
  CHECK(ts[0].mask.storage() == std::vector<float>{1, 0, 1, 0, 1, 0});
  CHECK(ts[0].weight->var.value()[2] == doctest::Approx(0.346806).epsilon(1e-5));
  CHECK(ts[0].weight->var.value()[3] == 0.f);
}

TEST_CASE("pdp: a tie at the threshold gives m = 0.5 exactly, which keep_mask keeps") {
  auto m = nn::Model::from_yaml("layers: [{type: dense, name: a, units: 2}]", {2}, 1);
  auto ts = targets_of(*m);
  set(ts[0].weight, {0.1f, 0.3f, -0.3f, 0.5f});
  // k = 2: t = (0.3 + 0.3) / 2 = 0.3, so w = +-0.3 sit on the threshold: m = sigmoid(0) = 0.5.
  auto p = make("{epsilon: 1}", 0.5);
  p->attach(&ts);
  const Tensor we = weight_of(*p, 0, ts[0].weight->var.value());
  CHECK(we[1] == doctest::Approx(0.15f));
  CHECK(we[2] == doctest::Approx(-0.15f));
  CHECK(we[3] == 0.5f);              // far above: sigmoid(50) = 1 in float
  CHECK(std::fabs(we[0]) < 1e-20f);  // far below: 0.1 * sigmoid(-50)
  CHECK(p->keep_mask(0).storage() == std::vector<float>{0, 1, 1, 1});
}

TEST_CASE("pdp: r_e = min(1, epsilon (e + 1)) * sparsity ramps, then holds") {
  auto m = nn::Model::from_yaml("layers: [{type: dense, name: a, units: 5}]", {4}, 2);
  auto ts = targets_of(*m);
  // epsilon 0.25, sparsity 0.8, 20 weights: r = 0.2, 0.4, 0.6, 0.8, then 0.8: 4, 8, 12, 16, 16 removed.
  auto p = make("{epsilon: 0.25}", 0.8);
  p->attach(&ts);
  const int removed[] = {4, 8, 12, 16, 16, 16};
  const int epochs[] = {0, 1, 2, 3, 4, 9};
  for (int j = 0; j < 6; ++j) {
    CAPTURE(epochs[j]);
    p->start_epoch(0, epochs[j], epochs[j]);
    CHECK(20 - p->keep_mask(0).vec().sum() == removed[j]);
  }
  // Defaults (epsilon 0.015): e = 0: 0.012; e = 65: 0.99 * 0.8 = 0.792; e = 66: 1.005 capped, 0.8.
  auto q = make("{}", 0.8);
  q->attach(&ts);
  q->start_epoch(0, 0, 0);
  CHECK(stat(*q, "pdp_r") == doctest::Approx(0.012));
  q->start_epoch(6, 5, 65);
  CHECK(stat(*q, "pdp_r") == doctest::Approx(0.792));
  q->start_epoch(6, 6, 66);
  CHECK(stat(*q, "pdp_r") == doctest::Approx(0.8));
  // r = 0 keeps every weight untouched; r = 1 removes all.
  auto none = make("{}", 0.0), all = make("{epsilon: 1}", 1.0);
  none->attach(&ts);
  all->attach(&ts);
  CHECK(weight_of(*none, 0, ts[0].weight->var.value()).storage() == ts[0].weight->var.value().storage());
  CHECK(weight_of(*all, 0, ts[0].weight->var.value()).vec().cwiseAbs().sum() == 0.f);
  CHECK(all->keep_mask(0).vec().sum() == 0.f);
}

TEST_CASE("pdp: global_pruning gives each layer its share of one global threshold") {
  const char* yaml = "layers: [{type: dense, name: a, units: 2}, {type: dense, name: b, units: 2}]";
  for (bool global : {true, false}) {
    CAPTURE(global);
    auto m = nn::Model::from_yaml(yaml, {2}, 1);
    auto ts = targets_of(*m);
    set(ts[0].weight, {1.0f, -2.0f, 3.0f, 4.0f});
    set(ts[1].weight, {0.1f, -0.4f, 0.3f, 0.2f});
    auto p = make(std::string("{epsilon: 1, global_pruning: ") + (global ? "true}" : "false}"), 0.5);
    p->attach(&ts);
    p->start_epoch(0, 0, 0);
    std::vector<nn::Buffer> b;
    p->buffers(1, b);
    REQUIRE(b.size() == 1);
    CHECK(b[0].name == "b.weight_prune.removed");
    if (global) {
      // 4 of 8 over both layers: t = (0.4 + 1) / 2 = 0.7; a has none below it, b all four.
      CHECK(p->keep_mask(0).storage() == std::vector<float>{1, 1, 1, 1});
      CHECK(p->keep_mask(1).storage() == std::vector<float>{0, 0, 0, 0});
      CHECK((*b[0].tensor)[0] == 4.f);
    } else {
      // 2 per layer: a: t = (2 + 3) / 2; b: t = (0.2 + 0.3) / 2.
      CHECK(p->keep_mask(0).storage() == std::vector<float>{0, 0, 1, 1});
      CHECK(p->keep_mask(1).storage() == std::vector<float>{0, 1, 1, 0});
      CHECK((*b[0].tensor)[0] == 2.f);
    }
  }
}

TEST_CASE("pdp: structured removes whole units and zeroes their biases") {
  auto m = nn::Model::from_yaml("layers: [{type: dense, name: a, units: 4}]", {3}, 1);
  auto ts = targets_of(*m);
  // W [3 inputs, 4 units]; unit (column) norms: 1, 0.173 (0.1 x 3), 2, 0.2.
  set(ts[0].weight, {1.0f, 0.1f, 0.0f, 0.2f,  //
                     0.0f, 0.1f, 2.0f, 0.0f,  //
                     0.0f, 0.1f, 0.0f, 0.0f});
  set(ts[0].bias, {0.5f, 0.6f, 0.7f, 0.8f});
  auto p = make("{epsilon: 1, structured_pruning: true}", 0.5);
  CHECK(p->structured());
  p->attach(&ts);
  // k = 2 of 4 units: t = (0.2 + 1) / 2 = 0.6; units 1 and 3 go, with every weight and their biases.
  p->finalize();
  CHECK(ts[0].mask.storage() == std::vector<float>{1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0});
  CHECK(ts[0].weight->var.value().storage() ==
        std::vector<float>{1.0f, 0.f, 0.0f, 0.f, 0.0f, 0.f, 2.0f, 0.f, 0.0f, 0.f, 0.0f, 0.f});
  CHECK(ts[0].bias_mask.storage() == std::vector<float>{1, 0, 1, 0});
  CHECK(ts[0].bias->var.value().storage() == std::vector<float>{0.5f, 0.f, 0.7f, 0.f});
  CHECK_FALSE(make("{}", 0.5)->structured());
}

TEST_CASE("pdp: at tau = 1e-5 the gradient stays finite next to the threshold") {
  auto m = nn::Model::from_yaml("layers: [{type: dense, name: a, units: 3}]", {2}, 1);
  for (bool structured : {false, true}) {
    CAPTURE(structured);
    auto ts = targets_of(*m);
    // Unstructured k = 3 of 6, t = (0.3 + 0.3001) / 2: w^2 - t^2 = -+3e-5 for 0.3 and 0.3001, arguments -+3.
    set(ts[0].weight, {1.5f, 0.3f, 0.3001f, -0.9f, 0.05f, 1e-3f});
    auto p = make(std::string("{epsilon: 1, structured_pruning: ") + (structured ? "true}" : "false}"), 0.5);
    p->attach(&ts);
    Var w(ts[0].weight->var.value(), true);
    nn::Context ctx;
    Var y = p->weight(0, w, ctx);
    backward(sum_all(y));
    REQUIRE(w.grad().size() == 6);
    CHECK(w.grad().vec().allFinite());
    CHECK(y.value().vec().allFinite());
    if (!structured) CHECK(std::fabs(w.grad()[1]) > 100.f);  // the steep sigmoid does reach w
  }
}

TEST_CASE("pdp: finite-difference check of w * m (tau = 0.1), unstructured and structured") {
  auto dense = nn::Model::from_yaml("layers: [{type: dense, name: a, units: 3}]", {2}, 1);
  auto ts = targets_of(*dense);
  auto p = make("{epsilon: 1, temperature: 0.1}", 0.5);
  p->attach(&ts);
  nn::Context ctx;
  // Row 1 is fixed and holds the 3rd and 4th smallest |w| (0.45, 0.55): t = 0.5 whatever the free row
  // (0.2, -0.3, 0.7: arguments -2.1, -1.6, 2.4) does within the step, so t is the constant it is in training.
  const Tensor fixed({1, 3}, {0.45f, -0.55f, 1.2f});
  auto f = [&](const std::vector<Var>& v) { return p->weight(0, concat({v[0], Var(fixed)}, 0), ctx); };
  CHECK(testing::max_grad_error(f, {Tensor({1, 3}, {0.2f, -0.3f, 0.7f})}, 1e-3f) < 2e-3);

  auto wide = nn::Model::from_yaml("layers: [{type: dense, name: a, units: 4}]", {2}, 1);
  auto tw = targets_of(*wide);
  auto q = make("{epsilon: 1, temperature: 0.1, structured_pruning: true}", 0.5);
  q->attach(&tw);
  // Units 0-2 fixed with norms 0.141, 0.5, 0.6: t = 0.55 (k = 2 of 4); the free unit 3 (0.55, -0.4) has
  // norm^2 0.4625, argument (0.4625 - 0.3025) / 0.1 = 1.6: the gradient flows through the unit's norm.
  const Tensor units({2, 3}, {0.1f, 0.3f, 0.36f, 0.1f, 0.4f, 0.48f});
  auto g = [&](const std::vector<Var>& v) { return q->weight(0, concat({Var(units), v[0]}, 1), ctx); };
  CHECK(testing::max_grad_error(g, {Tensor({2, 1}, {0.55f, -0.4f})}, 1e-3f) < 2e-3);
}

TEST_CASE("pdp: both variants train at the default temperature") {
  std::mt19937_64 rng(5);
  const Tensor x = testing::random_tensor({64, 4}, rng);
  Tensor y({64, 1});
  for (int64_t s = 0; s < 64; ++s) y[s] = x.at({s, 0}) - 2.f * x.at({s, 1}) + 0.5f * x.at({s, 2});
  for (bool structured : {false, true}) {
    CAPTURE(structured);
    auto m = nn::Model::from_yaml(
        "layers: [{type: dense, name: a, units: 8, activation: relu}, {type: dense, name: b, units: 1}]", {4},
        3);
    auto ts = targets_of(*m);
    // r_e = 0.1 e: 0.1 .. 0.5 over 5 epochs.
    auto p =
        make(std::string("{epsilon: 0.2, structured_pruning: ") + (structured ? "true}" : "false}"), 0.5);
    p->attach(&ts);
    for (size_t i = 0; i < ts.size(); ++i)
      ts[i].layer->set_transform(nn::Slot::kWeight, std::make_shared<PruneWeight>(p.get(), i));
    optim::OptimizerOptions o;
    o.learning_rate = 0.02f;
    auto opt = optim::make_optimizer(o);
    std::vector<nn::Parameter*> params = m->parameters();
    nn::Context ctx{true, &rng};
    double first = 0, last = 0;
    for (int e = 0; e < 5; ++e) {
      p->start_epoch(0, e, e);
      for (int step = 0; step < 20; ++step) {
        optim::Optimizer::zero_grad(params);
        Var loss = mse_loss(m->forward(Var(x), ctx), y);
        backward(loss);
        for (nn::Parameter* q : params) REQUIRE(q->var.grad().vec().allFinite());
        opt->step(params, o.learning_rate);
        (e == 0 && step == 0 ? first : last) = loss.value()[0];
      }
    }
    CHECK(std::isfinite(last));
    CHECK(last < 0.5 * first);
    p->finalize();
    // r = 0.5: unstructured a loses 16 of 32 weights, b 4 of 8; structured a loses 4 of 8 units, b none of 1.
    CHECK(ts[0].mask.vec().sum() == 16.f);
    CHECK(ts[1].mask.vec().sum() == (structured ? 8.f : 4.f));
  }
}

TEST_CASE("pdp: bad keys name the key and the value") {
  CHECK_THROWS_WITH_AS(make("{epsilon: 0}", 0.8), doctest::Contains("epsilon must be > 0, got 0"),
                       InputError);
  CHECK_THROWS_WITH_AS(make("{temperature: -1e-5}", 0.8),
                       doctest::Contains("temperature must be > 0, got -1e-05"), InputError);
  CHECK_THROWS_WITH_AS(make("{structured_pruning: 3}", 0.8), doctest::Contains("structured_pruning"),
                       InputError);
}
