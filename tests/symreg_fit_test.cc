// Constant fitting: Levenberg-Marquardt with exact derivatives recovers constants, linear scaling is
// folded into the tree, each loss is minimised, and sample weights count.
#include <doctest/doctest.h>

#include <cmath>

#include "symreg/fit.h"
#include "symreg/front.h"
#include "symreg/nguyen.h"
#include "symreg/rng.h"
#include "symreg/scalar.h"
#include "tests/test_files.h"

using namespace kiln::symreg;

namespace {

struct Data {
  Columns x;
  std::vector<float> y;
};

Data make(const std::string& truth, int rows, uint64_t seed) {
  Data d{Columns(rows, 2), {}};
  Rng rng(seed);
  Tree t = parse_expr(truth, {});
  for (int r = 0; r < rows; ++r) {
    std::vector<double> v{rng.uniform(-2, 2), rng.uniform(-2, 2)};
    d.x.col(0)[r] = static_cast<float>(v[0]), d.x.col(1)[r] = static_cast<float>(v[1]);
    v = {d.x.col(0)[r], d.x.col(1)[r]};
    d.y.push_back(static_cast<float>(eval_scalar(t, v)));
  }
  return d;
}

}  // namespace

TEST_CASE("LM recovers the inner constants; linear scaling the outer ones") {
  Data d = make("2.5 * sin(1.3 * x0) + 0.7", 200, 1);
  Problem pb{&d.x, d.y, {}, LossKind::kMse};
  Evaluator ev;
  Fitted f = fit(parse_expr("sin(1.1 * x0)", {}), pb, FitOptions{20, true}, ev);
  CHECK(f.loss < 1e-9);
  // Without LM iterations only the scaling is fitted: the inner constant stays wrong.
  Fitted g = fit(parse_expr("sin(1.1 * x0)", {}), pb, FitOptions{0, true}, ev);
  CHECK(g.loss > 1e-3);
  // The scaling is written into the tree: evaluating f.tree alone gives the fitted loss.
  CHECK(evaluate_loss(f.tree, pb, ev) == doctest::Approx(f.loss).epsilon(1e-6));
  CHECK(to_infix(f.tree, {}).find("sin(") != std::string::npos);
}

TEST_CASE("scaling terms within rounding of the identity are dropped") {
  Data d = make("x0 * x1", 50, 2);
  Problem pb{&d.x, d.y, {}, LossKind::kMse};
  Evaluator ev;
  Fitted f = fit(parse_expr("x0 * x1", {}), pb, FitOptions{}, ev);
  CHECK(to_infix(f.tree, {}) == "x0 * x1");
  CHECK(f.loss == 0);
}

TEST_CASE("MAE, L2 margin and logistic losses are minimised") {
  Data d = make("x0 - 0.5 * x1", 300, 3);
  std::vector<float> labels;
  for (float v : d.y) labels.push_back(v > 0 ? 1.0f : -1.0f);
  Evaluator ev;
  Problem mae{&d.x, d.y, {}, LossKind::kMae};
  CHECK(fit(parse_expr("x0 + 0.1 * x1", {}), mae, FitOptions{30, true}, ev).loss < 1e-3);
  Problem margin{&d.x, labels, {}, LossKind::kL2Margin};
  Problem logistic{&d.x, labels, {}, LossKind::kLogistic};
  Tree start = parse_expr("x0 + 0.3 * x1", {});
  double before = evaluate_loss(start, logistic, ev);
  Fitted lg = fit(start, logistic, FitOptions{20, true}, ev);
  CHECK(lg.loss < before * 0.5);
  CHECK(lg.loss < 0.1);  // separable: the logit grows
  Fitted m = fit(start, margin, FitOptions{20, true}, ev);
  CHECK(m.loss < evaluate_loss(start, margin, ev));
}

TEST_CASE("sample weights: a zero weight removes a row from the loss") {
  Data d = make("x0", 10, 4);
  d.y[3] = 100;  // an outlier
  std::vector<float> w(10, 1.0f);
  Evaluator ev;
  Problem unweighted{&d.x, d.y, {}, LossKind::kMse};
  CHECK(evaluate_loss(parse_expr("x0", {}), unweighted, ev) > 100);
  w[3] = 0;
  Problem weighted{&d.x, d.y, w, LossKind::kMse};
  CHECK(evaluate_loss(parse_expr("x0", {}), weighted, ev) == 0);
  CHECK(loss_value(LossKind::kMse, d.y.data(), d.y.data(), w.data(), 10) == 0);
}

TEST_CASE("hall of fame: best per complexity, Pareto front, model selection") {
  HallOfFame h;
  h.offer({parse_expr("x0", {}), 10.0, 1});
  h.offer({parse_expr("x1", {}), 8.0, 1});       // better at complexity 1
  h.offer({parse_expr("x0 + x1", {}), 9.0, 3});  // dominated by complexity 1
  h.offer({parse_expr("x0 * x1 + 1", {}), 1.0, 5});
  h.offer({parse_expr("x0 * x1 + sin(x0)", {}), 0.9, 6});
  h.offer({parse_expr("x0 * x1", {}), std::nan(""), 3});  // ignored
  auto f = h.front();
  REQUIRE(f.size() == 3);
  CHECK(f[0].loss == 8.0);
  CHECK(f[1].complexity == 5);
  CHECK(f[1].score == doctest::Approx(std::log(8.0) / 4));
  CHECK(select(f, Selection::kAccuracy) == 2);
  CHECK(select(f, Selection::kScore) == 1);
  CHECK(select(f, Selection::kBest) == 1);  // 1.0 <= 1.5 x 0.9 and the higher score
  CHECK_INPUT_ERROR(parse_selection("fastest"), "--select", "fastest");
  CHECK_INPUT_ERROR(parse_loss("hinge"), "--loss", "hinge");
}

TEST_CASE(
    "the float noise floor: losses below it tie, so an exact formula beats longer ones fitting rounding") {
  const std::vector<float> y = {1, -2};
  const double rel = kNoiseUlps * 0x1p-23;
  CHECK(noise_floor_loss(LossKind::kMse, y.data(), nullptr, 2) == doctest::Approx(rel * rel * 2.5));
  CHECK(noise_floor_loss(LossKind::kMae, y.data(), nullptr, 2) == doctest::Approx(rel * 1.5));
  CHECK(noise_floor_loss(LossKind::kL2Margin, y.data(), nullptr, 2) == 0);

  // The hall of fame of N7 through the CLI (seed 1, 60 s, before the floor): the exact formula at 10, then
  // entries that only fit the float rounding of the 16 targets, down to a loss of 0 at 20.
  auto offer_n7 = [](HallOfFame& h) {
    h.offer({parse_expr("x0 * 1.43183 + -0.0739402", {}), 7.184e-4, 5});
    h.offer({parse_expr("sin(exp(x0 * -0.362564)) * -7.55772 + 6.23581", {}), 4.62228e-05, 9});
    h.offer({parse_expr("log((x0 + 1) * (x0 * x0 + 1))", {}), 2.72005e-15, 10});
    h.offer({parse_expr("log((-0.999997 - x0 * x0) * (-1 - x0))", {}), 1.33227e-15, 12});
    h.offer({parse_expr("log((-1 - x0 * x0) * (-1 - x0) * 0.745953) + 0.293092", {}), 7.77156e-16, 14});
    h.offer({parse_expr("log((x0 + x0 * x0 + 0.493505) * x0 + x0 * 0.506495 + 1) + 2.99892e-08 / x0", {}),
             0.0, 20});
  };
  HallOfFame pysr;  // no floor: PySR's rules
  offer_n7(pysr);
  auto f0 = pysr.front();
  REQUIRE(f0.size() == 6);
  CHECK(f0[select(f0, Selection::kBest)].complexity == 20);  // the loss of 0 wins on score

  const double floor = 4e-13;  // about noise_floor_loss of N7's targets (mean y^2 ~ 2)
  HallOfFame h(floor);
  offer_n7(h);
  auto f = h.front();
  REQUIRE(f.size() == 3);  // nothing after the first entry at the floor
  CHECK(f.back().complexity == 10);
  CHECK(f.back().score == doctest::Approx(-std::log(floor / 4.62228e-05)));
  CHECK(f[select(f, Selection::kBest, floor)].complexity == 10);
  CHECK(f[select(f, Selection::kAccuracy, floor)].complexity == 10);
  // An entry just above the floor is within 1.5 x of it: `best` weighs it by score against the exact one.
  HallOfFame g(floor);
  g.offer({parse_expr("x0", {}), 1.0, 1});
  g.offer({parse_expr("x0 * 2", {}), 5e-13, 3});
  g.offer({parse_expr("x0 * 2 + 1", {}), 1e-15, 5});
  auto fg = g.front();
  REQUIRE(fg.size() == 3);
  CHECK(select(fg, Selection::kBest, floor) == 1);  // 5e-13 <= 1.5 x 4e-13, and the larger score
  CHECK(select(fg, Selection::kBest) == 2);         // without the floor only 1e-15 qualifies
}

TEST_CASE("constants snap to multiples of 1/2 when the loss stays within the floor") {
  // N7's exact formula with a stray + 3.8e-8 (a front entry of the CLI): LM spreads the targets' float
  // rounding over all three constants (1 - 1.2e-7, 1 - 6e-8, 1.1e-7: a loss of 1.0e-15 against the exact
  // formula's 3.1e-15), and a snap judged by the relative loss alone is refused.
  const NguyenProblem& p = nguyen(7);
  NguyenData d = make_nguyen_data(p, 16, 1);
  Problem pb{&d.x, d.y, {}, LossKind::kMse};
  Evaluator ev;
  const Tree t = parse_expr("log((x0 * x0 + 1) * (x0 + 1)) + 3.82439e-08", {});
  FitOptions fo;
  Fitted unfloored = fit(t, pb, fo, ev);
  CHECK(num_constants(unfloored.tree) == 3);
  fo.loss_floor = noise_floor_loss(LossKind::kMse, d.y.data(), nullptr, 16);
  Fitted f = fit(t, pb, fo, ev);
  CHECK(to_infix(f.tree, {"x"}) == "log((x * x + 1) * (x + 1))");
  CHECK(f.loss <= fo.loss_floor);
}
