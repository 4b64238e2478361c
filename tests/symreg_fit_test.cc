// Constant fitting: Levenberg-Marquardt with exact derivatives recovers constants, linear scaling is
// folded into the tree, each loss is minimised, and sample weights count.
#include <doctest/doctest.h>

#include <cmath>

#include "symreg/fit.h"
#include "symreg/front.h"
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
