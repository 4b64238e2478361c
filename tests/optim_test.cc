// Optimiser steps against torch.optim (PyTorch 1.13, same hyperparameters, three fixed gradients),
// hand-computed SGD steps, clipping, masks, schedules and state round trips.
#include <cmath>

#include "engine/optim/optimizer.h"
#include "tests/gradcheck.h"

using namespace kiln;
using namespace kiln::optim;

namespace {

std::vector<float> run(OptimizerOptions o, const std::vector<std::vector<float>>& grads, float lr) {
  nn::Parameter p{"w", Var(Tensor({2}, {1.f, -2.f}), true), true, Tensor()};
  auto opt = make_optimizer(o);
  for (const auto& g : grads) {
    p.var.grad() = Tensor({2}, g);
    opt->step({&p}, lr);
  }
  return p.var.value().storage();
}

const std::vector<std::vector<float>> kGrads{{0.5f, -1.f}, {0.2f, 0.3f}, {-0.4f, 0.1f}};

void check_close(const std::vector<float>& got, std::vector<float> want) {
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i) CHECK(got[i] == doctest::Approx(want[i]).epsilon(1e-6));
}

}  // namespace

TEST_CASE("SGD: plain step by hand, momentum and Nesterov with weight decay against PyTorch") {
  OptimizerOptions o;
  o.type = "sgd";
  check_close(run(o, {{0.5f, -1.f}}, 0.1f), {0.95f, -1.9f});
  o.momentum = 0.9f;
  check_close(run(o, kGrads, 0.1f), {0.8665f, -1.796f});
  o.nesterov = true;
  o.weight_decay = 0.01f;
  check_close(run(o, kGrads, 0.1f), {0.8424017f, -1.7412506f});
}

TEST_CASE("Adam, Adam with L2 and AdamW against PyTorch") {
  OptimizerOptions o;
  o.type = "adam";
  check_close(run(o, kGrads, 0.01f), {0.9792514f, -1.9830389f});
  o.weight_decay = 0.1f;
  check_close(run(o, kGrads, 0.01f), {0.9767427f, -1.9787637f});
  o.type = "adamw";
  check_close(run(o, kGrads, 0.01f), {0.9762835f, -1.9770693f});
}

TEST_CASE("weight decay skips parameters marked decay = false") {
  OptimizerOptions o;
  o.type = "sgd";
  o.weight_decay = 0.5f;
  nn::Parameter bias{"b", Var(Tensor({1}, {1.f}), true), false, Tensor()};
  auto opt = make_optimizer(o);
  bias.var.grad() = Tensor({1}, {0.f});
  opt->step({&bias}, 0.1f);
  CHECK(bias.var.value()[0] == 1.f);
}

TEST_CASE("gradient clipping by global norm and by value") {
  OptimizerOptions o;
  o.type = "sgd";
  o.clip_norm = 1.f;  // gradient (3, 4) has norm 5 -> (0.6, 0.8)
  nn::Parameter p{"w", Var(Tensor({2}, {0.f, 0.f}), true), true, Tensor()};
  auto opt = make_optimizer(o);
  p.var.grad() = Tensor({2}, {3.f, 4.f});
  opt->step({&p}, 1.f);
  CHECK(p.var.value()[0] == doctest::Approx(-0.6f));
  CHECK(p.var.value()[1] == doctest::Approx(-0.8f));
  o.clip_norm = 0.f;
  o.clip_value = 0.5f;
  auto opt2 = make_optimizer(o);
  p.var.value().zero();
  p.var.grad() = Tensor({2}, {3.f, -0.25f});
  opt2->step({&p}, 1.f);
  CHECK(p.var.value()[0] == doctest::Approx(-0.5f));
  CHECK(p.var.value()[1] == doctest::Approx(0.25f));
}

TEST_CASE("a mask keeps pruned weights at exactly zero, whatever the optimiser's momentum") {
  OptimizerOptions o;  // adam
  nn::Parameter p{"w", Var(Tensor({3}, {0.5f, 0.f, -0.5f}), true), true, Tensor({3}, {1.f, 0.f, 1.f})};
  auto opt = make_optimizer(o);
  for (int i = 0; i < 5; ++i) {
    p.var.grad() = Tensor({3}, {1.f, 1.f, 1.f});
    opt->step({&p}, 0.1f);
  }
  CHECK(p.var.value()[1] == 0.f);
  CHECK(p.var.value()[0] < 0.5f);
}

TEST_CASE("optimizer state round trip continues identically") {
  OptimizerOptions o;
  nn::Parameter a{"w", Var(Tensor({2}, {1.f, -2.f}), true), true, Tensor()};
  nn::Parameter b = a;
  b.var = Var(a.var.value(), true);
  auto o1 = make_optimizer(o), o2 = make_optimizer(o);
  a.var.grad() = Tensor({2}, kGrads[0]);
  o1->step({&a}, 0.01f);
  b.var.grad() = Tensor({2}, kGrads[0]);
  o2->step({&b}, 0.01f);
  auto o3 = make_optimizer(o);
  o3->load_state(o2->state(), {&b});
  CHECK(o3->steps() == 1);
  for (int i = 1; i < 3; ++i) {
    a.var.grad() = Tensor({2}, kGrads[static_cast<size_t>(i)]);
    o1->step({&a}, 0.01f);
    b.var.grad() = Tensor({2}, kGrads[static_cast<size_t>(i)]);
    o3->step({&b}, 0.01f);
  }
  CHECK(a.var.value().storage() == b.var.value().storage());
  std::map<std::string, Tensor> bad = o2->state();
  bad["w/m"] = Tensor({3});
  CHECK_THROWS_AS(o3->load_state(bad, {&b}), InputError);
}

TEST_CASE("learning-rate schedules") {
  ScheduleOptions s;
  CHECK(scheduled_lr(s, 0.1, 57, 10) == doctest::Approx(0.1));
  s.type = "step";
  s.step_size = 2;
  s.gamma = 0.5;
  CHECK(scheduled_lr(s, 0.1, 19, 10) == doctest::Approx(0.1));    // epoch 1.9
  CHECK(scheduled_lr(s, 0.1, 20, 10) == doctest::Approx(0.05));   // epoch 2
  CHECK(scheduled_lr(s, 0.1, 45, 10) == doctest::Approx(0.025));  // epoch 4.5
  s.type = "exponential";
  s.decay_rate = 0.5;
  CHECK(scheduled_lr(s, 0.1, 30, 10) == doctest::Approx(0.0125));
  s.type = "cosine";
  s.first_cycle = 4;
  s.t_mul = 2;
  s.min_lr = 0.0;
  CHECK(scheduled_lr(s, 0.1, 0, 10) == doctest::Approx(0.1));
  CHECK(scheduled_lr(s, 0.1, 20, 10) == doctest::Approx(0.05));  // half-way through the first cycle
  CHECK(scheduled_lr(s, 0.1, 40, 10) == doctest::Approx(0.1));   // restart at epoch 4
  CHECK(scheduled_lr(s, 0.1, 80, 10) == doctest::Approx(0.05));  // second cycle is 8 epochs long
  s.type = "constant";
  s.warmup_epochs = 2;
  CHECK(scheduled_lr(s, 0.1, 0, 10) == doctest::Approx(0.005));  // step 1 of 20
  CHECK(scheduled_lr(s, 0.1, 9, 10) == doctest::Approx(0.05));
  CHECK(scheduled_lr(s, 0.1, 20, 10) == doctest::Approx(0.1));
}

TEST_CASE("bad optimiser and schedule configs name the key") {
  auto fails = [](const std::string& yaml, const std::string& needle, bool schedule) {
    Config c = Config::parse(yaml, "opt.yaml", "optimizer");
    try {
      if (schedule) parse_schedule(c);
      else parse_optimizer(c);
    } catch (const InputError& e) {
      return std::string(e.what()).find(needle) != std::string::npos;
    }
    return false;
  };
  CHECK(fails("type: adamm", "unknown optimizer 'adamm'", false));
  CHECK(fails("learning_rate: -1", "opt.yaml:1:1: learning_rate must be > 0", false));
  CHECK(fails("learning_rate: abc", "expects a number, got 'abc'", false));
  CHECK(fails("lerning_rate: 0.1", "did you mean 'learning_rate'", false));
  CHECK(fails("nesterov: true", "nesterov needs momentum", false));
  CHECK(fails("type: cosine\nfirst_cycle: 0", "opt.yaml:2:1: first_cycle must be > 0", true));
  CHECK(fails("type: linear", "unknown lr_schedule 'linear'", true));
}
