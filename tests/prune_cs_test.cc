// Continuous Sparsification (compress/prune_cs.cc): the soft mask sigmoid(beta s) / sigmoid(s0) and its
// gradients, the beta schedule within a round, the rewind between rounds, the L1 loss, the hard mask, the
// baked weights of finalize(), checkpointed state and config errors. Expected values by hand in comments.
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

// A model, its kernels collected as the Pruner does, and the method attached to them.
Setup make(const std::string& keys, const std::string& layers, const Shape& in, int epochs = 3,
           int rounds = 1) {
  PruneCommon common;
  common.epochs = epochs;
  common.rounds = rounds;
  return Setup("cs", keys, layers, in, common);
}

const char* kDense22 = "[{type: dense, name: a, units: 2, use_bias: false}]";

nn::Parameter* score(Setup& s, size_t i) { return testing::method_param(s, i); }

float& beta(Setup& s) {
  std::vector<nn::Buffer> b;
  s.method->buffers(0, b);
  REQUIRE(b.size() == 1);
  return (*b[0].tensor)[0];
}

}  // namespace

TEST_CASE("cs: weight() is w * sigmoid(beta s) / sigmoid(s0), with gradients to w and s") {
  Setup s = make("{}", kDense22, {2});
  nn::Parameter* sc = score(s, 0);
  CHECK(sc->name == "a.weight_prune.s");
  CHECK_FALSE(sc->decay);
  CHECK(sc->var.shape() == Shape{2, 2});
  for (int64_t j = 0; j < 4; ++j) CHECK(sc->var.value()[j] == 0.f);  // threshold_init 0: m = 1 at the start
  s.targets[0].weight->var.value() = Tensor({2, 2}, {1.f, 2.f, 3.f, 4.f});
  sc->var.value() = Tensor({2, 2}, {0.f, 1.f, -1.f, 0.5f});
  // beta = 1, sigmoid(s0) = 1/2: m = 2 sigmoid(s) = 1, 1.4621172, 0.5378828, 1.2449187.
  Var w = forward_weight(s, 0);
  CHECK(w.value()[0] == doctest::Approx(1.0));
  CHECK(w.value()[1] == doctest::Approx(2 * 1.4621172));
  CHECK(w.value()[2] == doctest::Approx(3 * 0.5378828));
  CHECK(w.value()[3] == doctest::Approx(4 * 1.2449187));
  backward(sum_all(w));
  const Tensor& gw = s.targets[0].weight->var.grad();
  CHECK(gw[1] == doctest::Approx(1.4621172));  // d/dw = m
  CHECK(gw[2] == doctest::Approx(0.5378828));
  // d/ds = w * 2 * beta * sigmoid'(beta s):
  // sigmoid'(0) = 0.25, sigmoid'(+-1) = 0.1966119, sigmoid'(0.5) = 0.2350037.
  const Tensor& gs = sc->var.grad();
  CHECK(gs[0] == doctest::Approx(1 * 2 * 0.25));
  CHECK(gs[1] == doctest::Approx(2 * 2 * 0.1966119));
  CHECK(gs[2] == doctest::Approx(3 * 2 * 0.1966119));
  CHECK(gs[3] == doctest::Approx(4 * 2 * 0.2350037));

  // beta = 2 (the buffer is the method's state): m(1) = 2 sigmoid(2) = 1.7615942, dm/ds = 2 * 2 * 0.1049936.
  beta(s) = 2.f;
  sc->var.grad() = Tensor();
  Var w2 = forward_weight(s, 0);
  CHECK(w2.value()[1] == doctest::Approx(2 * 1.7615942));
  backward(sum_all(w2));
  CHECK(sc->var.grad()[1] == doctest::Approx(2 * 2 * 2 * 0.1049936));

  // threshold_init 0.5 scales by 1/sigmoid(0.5), so m = 1 at the start whatever s0 is.
  Setup h = make("threshold_init: 0.5", kDense22, {2});
  CHECK(score(h, 0)->var.value()[0] == 0.5f);
  Var wh = forward_weight(h, 0);
  for (int64_t j = 0; j < 4; ++j)
    CHECK(wh.value()[j] == doctest::Approx(h.targets[0].weight->var.value()[j]).epsilon(1e-6));
}

TEST_CASE("cs: beta rises from 1 to final_temp over a round's E - 1 epoch ends") {
  Setup s = make("{}", kDense22, {2}, /*epochs=*/3);
  CHECK(beta(s) == 1.f);
  CHECK(stat(s, "cs_beta") == 1.0);
  s.method->end_epoch(0, 0, 0);
  CHECK(beta(s) == doctest::Approx(14.1421356));  // 200^(1/2)
  s.method->end_epoch(0, 1, 1);
  CHECK(beta(s) == 200.f);  // exactly final_temp: the last epoch trains at it
  s.method->end_epoch(0, 2, 2);
  CHECK(beta(s) == 200.f);  // and the last epoch's end does not go beyond (PQuant: 200^(3/2))
  CHECK(stat(s, "cs_beta") == 200.0);

  Setup f = make("final_temp: 16", kDense22, {2}, /*epochs=*/5);
  const float expected[] = {2.f, 4.f, 8.f, 16.f, 16.f};  // 16^(1/4) per epoch
  for (int e = 0; e < 5; ++e) {
    f.method->end_epoch(0, e, e);
    CHECK(beta(f) == doctest::Approx(expected[e]));
  }

  Setup one = make("{}", kDense22, {2}, /*epochs=*/1);
  one.method->end_epoch(0, 0, 0);
  CHECK(beta(one) == 1.f);  // E = 1: no schedule
}

TEST_CASE("cs: end_round sets s <- min(beta s, s0) and beta <- 1; the last round keeps the scores") {
  Setup s = make("{}", kDense22, {2}, /*epochs=*/3, /*rounds=*/2);
  nn::Parameter* sc = score(s, 0);
  s.method->end_epoch(0, 0, 0);
  s.method->end_epoch(0, 1, 1);
  s.method->end_epoch(0, 2, 2);
  REQUIRE(beta(s) == 200.f);
  sc->var.value() = Tensor({2, 2}, {0.01f, -0.01f, 0.5f, -2.f});
  s.method->end_round(0);
  // min(200 s, 0) = 0, -2, 0, -400.
  CHECK(sc->var.value()[0] == 0.f);
  CHECK(sc->var.value()[1] == doctest::Approx(-2.0));
  CHECK(sc->var.value()[2] == 0.f);
  CHECK(sc->var.value()[3] == doctest::Approx(-400.0));
  CHECK(beta(s) == 1.f);
  CHECK(stat(s, "cs_beta") == 1.0);
  // The next round starts from the mask the last epoch had:
  // 2 sigmoid(-2) = 0.2384058 = 2 sigmoid(200 * -0.01).
  Var w = forward_weight(s, 0);
  CHECK(w.value()[1] == doctest::Approx(s.targets[0].weight->var.value()[1] * 0.2384058));

  // Round 1 is the last: its end leaves s (and the hard mask 1[s > 0]) for finalize().
  s.method->end_epoch(1, 0, 3);
  s.method->end_epoch(1, 1, 4);
  sc->var.value() = Tensor({2, 2}, {0.3f, -0.2f, 0.f, 0.1f});
  s.method->end_round(1);
  CHECK(sc->var.value()[0] == 0.3f);
  CHECK(beta(s) == 200.f);
  Tensor k = s.method->keep_mask(0);
  CHECK(k.storage() == std::vector<float>{1.f, 0.f, 0.f, 1.f});

  // With s0 = 0.5, a winner restarts at s0 unless beta s is smaller: min(200 * 0.001, 0.5) = 0.2.
  Setup h = make("threshold_init: 0.5", kDense22, {2}, 2, 3);
  h.method->end_epoch(0, 0, 0);
  REQUIRE(beta(h) == 200.f);
  score(h, 0)->var.value() = Tensor({2, 2}, {0.001f, -0.01f, 1.f, 0.5f});
  h.method->end_round(0);
  CHECK(score(h, 0)->var.value()[0] == doctest::Approx(0.2));
  CHECK(score(h, 0)->var.value()[1] == doctest::Approx(-2.0));
  CHECK(score(h, 0)->var.value()[2] == 0.5f);
  CHECK(score(h, 0)->var.value()[3] == 0.5f);
}

TEST_CASE("cs: the loss is threshold_decay * sum of ||m||_1 over all targets") {
  Setup s = make("threshold_decay: 0.5",
                 "[{type: dense, name: a, units: 3}, {type: dense, name: b, units: 1}]", {2});
  REQUIRE(s.targets.size() == 2);
  Var l = s.method->loss();
  CHECK(l.value()[0] == doctest::Approx(0.5 * (6 + 3)));  // m = 1 for each of the 6 + 3 weights
  score(s, 1)->var.value()[2] = 1.f;
  l = s.method->loss();
  CHECK(l.value()[0] == doctest::Approx(0.5 * (8 + 1.4621172)));  // one m = 2 sigmoid(1)
  backward(l);
  // d/ds = 0.5 * 2 * sigmoid'(s): 0.25 at s = 0, 0.1966119 at s = 1.
  CHECK(score(s, 0)->var.grad()[0] == doctest::Approx(0.25));
  CHECK(score(s, 1)->var.grad()[2] == doctest::Approx(0.1966119));

  Setup d = make("{}", "[{type: dense, name: a, units: 3}, {type: dense, name: b, units: 1}]", {2});
  CHECK(d.method->loss().value()[0] == doctest::Approx(9e-9).epsilon(1e-6));  // default 1e-9
  Setup z = make("threshold_decay: 0", kDense22, {2});
  CHECK_FALSE(z.method->loss().defined());
}

TEST_CASE("cs: keep_mask is 1[s > 0]; finalize bakes w * m * mask into the kernel") {
  Setup s = make("{}", kDense22, {2}, /*epochs=*/1);
  s.targets[0].weight->var.value() = Tensor({2, 2}, {1.f, 2.f, 3.f, 4.f});
  score(s, 0)->var.value() = Tensor({2, 2}, {0.5f, -0.1f, 0.f, 1.f});
  CHECK(s.method->keep_mask(0).storage() == std::vector<float>{1.f, 0.f, 0.f, 1.f});  // s = 0 is not kept
  s.method->finalize();
  CHECK(s.targets[0].mask.storage() == std::vector<float>{1.f, 0.f, 0.f, 1.f});
  // beta = 1: w * 2 sigmoid(s) for the kept ones, the weights the forward pass used.
  const Tensor& w = s.targets[0].weight->var.value();
  CHECK(w[0] == doctest::Approx(1 * 1.2449187));
  CHECK(w[1] == 0.f);
  CHECK(w[2] == 0.f);
  CHECK(w[3] == doctest::Approx(4 * 1.4621172));
}

TEST_CASE("cs: beta is a checkpointed buffer named after the first layer") {
  Setup s = make("{}", "[{type: dense, name: a, units: 3}, {type: dense, name: b, units: 1}]", {2});
  std::vector<nn::Buffer> b0, b1;
  s.method->buffers(0, b0);
  s.method->buffers(1, b1);
  REQUIRE(b0.size() == 1);
  CHECK(b0[0].name == "a.weight_prune.beta");
  CHECK(b0[0].tensor->shape() == Shape{1});
  CHECK(b1.empty());
  CHECK(score(s, 1)->name == "b.weight_prune.s");
  (*b0[0].tensor)[0] = 50.f;  // as a checkpoint load writes it
  CHECK(stat(s, "cs_beta") == 50.0);
  score(s, 0)->var.value()[0] = 0.01f;
  CHECK(forward_weight(s, 0).value()[0] ==
        doctest::Approx(s.targets[0].weight->var.value()[0] * 2 * 0.6224593));  // 2 sigmoid(50 * 0.01)
}

TEST_CASE("cs: config errors name the key and the value") {
  auto make_cs_with = [](const std::string& yaml) {
    return make_prune_method(Config::parse(yaml, "p.yaml", "pruning"), "cs", PruneCommon{});
  };
  CHECK_INPUT_ERROR(make_cs_with("final_temp: 0"), "p.yaml:1:1", "final_temp", "got 0");
  CHECK_INPUT_ERROR(make_cs_with("final_temp: -3"), "final_temp", "got -3");
  CHECK_INPUT_ERROR(make_cs_with("threshold_decay: -1.0e-9"), "threshold_decay", "got -1e-09");
  CHECK_INPUT_ERROR(make_cs_with("threshold_init: 100"), "threshold_init", "got 100");
  CHECK_INPUT_ERROR(make_cs_with("final_temp: hot"), "final_temp", "hot");
  CHECK(make_cs_with("final_temp: 100\nthreshold_init: -0.1\nthreshold_decay: 0")->name() == "cs");
}
