// Exact values of accuracy, one-vs-rest ROC AUC (with ties), confusion matrices and MSE on hand-worked
// examples, and the errors raised for inputs that do not fit.
#include "engine/metrics.h"

#include <doctest/doctest.h>

#include <cmath>
#include <string>

#include "engine/check.h"

using namespace kiln;

namespace {

// Five samples, three classes, with ties inside columns 0, 1 and 2 (values worked out below).
Tensor three_class_scores() {
  return Tensor({5, 3}, {0.7f, 0.2f, 0.1f,    // label 0, predicted 0
                         0.7f, 0.4f, 0.3f,    // label 1, predicted 0
                         0.2f, 0.2f, 0.6f,    // label 2, predicted 2
                         0.5f, 0.2f, 0.6f,    // label 1, predicted 2
                         0.1f, 0.1f, 0.8f});  // label 2, predicted 2
}
const std::vector<int> kThreeClassLabels = {0, 1, 2, 1, 2};

// Runs f, expecting exception E; returns its message ("" if nothing or something else was thrown).
template <typename E, typename F>
std::string error_message(F f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  } catch (...) {
    return "<other exception>";
  }
  return "<no exception>";
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("accuracy: argmax per row, first maximum on ties") {
  // Predictions 0, 1, 2, 0 (row 3 ties 4 vs 4 and takes class 0) against labels 0, 2, 2, 1.
  Tensor logits({4, 3}, {2, 1, 0, 0, 3, 1, 1, 0, 5, 4, 4, 0});
  CHECK(accuracy(logits, {0, 2, 2, 1}) == doctest::Approx(0.5));
  CHECK(accuracy(logits, {0, 1, 2, 0}) == doctest::Approx(1.0));
  CHECK(accuracy(three_class_scores(), kThreeClassLabels) == doctest::Approx(0.6));
  CHECK(std::isnan(accuracy(Tensor({0, 3}), {})));
}

TEST_CASE("accuracy: a single column is a binary logit, > 0 means class 1") {
  Tensor logits({4, 1}, {-1.f, 0.5f, 0.f, 2.f});  // predictions 0, 1, 0 (0 is not > 0), 1
  CHECK(accuracy(logits, {0, 1, 1, 1}) == doctest::Approx(0.75));
  CHECK(accuracy(logits.reshaped({4}), {0, 1, 0, 1}) == doctest::Approx(1.0));
}

TEST_CASE("roc_auc: binary examples, including ties counted as half") {
  // Positives 0.35, 0.8 vs negatives 0.1, 0.4: 3 of 4 pairs ordered.
  Tensor s({4, 1}, {0.1f, 0.4f, 0.35f, 0.8f});
  auto auc = roc_auc_one_vs_rest(s, {0, 0, 1, 1});
  REQUIRE(auc.size() == 1);
  CHECK(auc[0] == doctest::Approx(0.75));
  // A 1-d score vector is the same binary logit.
  CHECK(roc_auc_one_vs_rest(s.reshaped({4}), {0, 0, 1, 1})[0] == doctest::Approx(0.75));
  // Positives 0.5, 0.7 vs negatives 0.2, 0.5: the tie 0.5 vs 0.5 counts 1/2 -> 3.5 / 4.
  CHECK(roc_auc_one_vs_rest(Tensor({4, 1}, {0.2f, 0.5f, 0.5f, 0.7f}), {0, 0, 1, 1})[0] ==
        doctest::Approx(0.875));
  // All scores equal: every pair is a tie.
  CHECK(roc_auc_one_vs_rest(Tensor({4, 1}, 0.3f), {0, 1, 0, 1})[0] == doctest::Approx(0.5));
  // Perfectly reversed order.
  CHECK(roc_auc_one_vs_rest(Tensor({4, 1}, {4.f, 3.f, 2.f, 1.f}), {0, 0, 1, 1})[0] == doctest::Approx(0.0));
  // Two columns: class 0 is scored by column 0, class 1 by column 1.
  Tensor two({4, 2}, {0.9f, 0.1f, 0.6f, 0.4f, 0.65f, 0.35f, 0.2f, 0.8f});
  auto auc2 = roc_auc_one_vs_rest(two, {0, 0, 1, 1});
  REQUIRE(auc2.size() == 2);
  CHECK(auc2[0] == doctest::Approx(0.75));  // positives 0.9, 0.6 vs negatives 0.65, 0.2
  CHECK(auc2[1] == doctest::Approx(0.75));  // positives 0.35, 0.8 vs negatives 0.1, 0.4
}

TEST_CASE("roc_auc: three classes one-vs-rest with ties") {
  auto auc = roc_auc_one_vs_rest(three_class_scores(), kThreeClassLabels);
  REQUIRE(auc.size() == 3);
  // Class 0: positive 0.7 vs 0.7 (tie), 0.2, 0.5, 0.1 -> 3.5 / 4.
  CHECK(auc[0] == doctest::Approx(0.875));
  // Class 1: positives 0.4, 0.2 vs 0.2, 0.2, 0.1 -> (3 + 0.5 + 0.5 + 1) / 6.
  CHECK(auc[1] == doctest::Approx(5.0 / 6.0));
  // Class 2: positives 0.6, 0.8 vs 0.1, 0.3, 0.6 -> (2.5 + 3) / 6.
  CHECK(auc[2] == doctest::Approx(11.0 / 12.0));
}

TEST_CASE("roc_auc: NaN for a class without positives or negatives") {
  auto auc = roc_auc_one_vs_rest(three_class_scores(), {0, 1, 0, 1, 0});
  REQUIRE(auc.size() == 3);
  CHECK(!std::isnan(auc[0]));
  CHECK(!std::isnan(auc[1]));
  CHECK(std::isnan(auc[2]));  // no sample of class 2
  auto all_pos = roc_auc_one_vs_rest(Tensor({3, 1}, {0.1f, 0.2f, 0.3f}), {1, 1, 1});
  CHECK(std::isnan(all_pos[0]));
}

TEST_CASE("confusion_matrix: rows are the true class, columns the prediction") {
  auto cm = confusion_matrix(three_class_scores(), kThreeClassLabels, 3);
  const std::vector<std::vector<int64_t>> expected = {{1, 0, 0}, {1, 0, 1}, {0, 0, 2}};
  CHECK(cm == expected);
  // Binary logit: 2 x 2.
  auto bin = confusion_matrix(Tensor({5, 1}, {-1.f, 0.5f, 0.f, 2.f, -3.f}), {0, 1, 1, 1, 1}, 2);
  const std::vector<std::vector<int64_t>> expected_bin = {{1, 0}, {2, 2}};
  CHECK(bin == expected_bin);
}

TEST_CASE("mse: mean squared difference over all elements") {
  CHECK(mse(Tensor({2, 2}, {1, 2, 3, 4}), Tensor({2, 2}, {1, 0, 3, 1})) == doctest::Approx(3.25));
  CHECK(mse(Tensor({3}, 1.5f), Tensor({3}, 1.5f)) == 0.0);
  CHECK(std::isnan(mse(Tensor({0}), Tensor({0}))));
}

TEST_CASE("metrics: inputs that do not fit throw with the values in the message") {
  const Tensor s = three_class_scores();
  std::string m = error_message<ShapeError>([&] { accuracy(s, {0, 1, 2, 1}); });
  CHECK(contains(m, "accuracy"));
  CHECK(contains(m, "5 rows"));
  CHECK(contains(m, "4 labels"));

  m = error_message<InputError>([&] { roc_auc_one_vs_rest(s, {0, 1, 3, 1, 2}); });
  CHECK(contains(m, "label 3"));
  CHECK(contains(m, "sample 2"));
  CHECK(contains(m, "[0, 3)"));

  m = error_message<InputError>([&] { accuracy(Tensor({2, 1}), {0, -1}); });
  CHECK(contains(m, "label -1"));
  CHECK(contains(m, "[0, 2)"));

  m = error_message<ShapeError>([&] { confusion_matrix(s, kThreeClassLabels, 4); });
  CHECK(contains(m, "num_classes is 4"));
  CHECK(contains(m, "[5, 3]"));

  m = error_message<ShapeError>([&] { mse(Tensor({2, 3}), Tensor({3, 2})); });
  CHECK(contains(m, "[2, 3]"));
  CHECK(contains(m, "[3, 2]"));

  m = error_message<ShapeError>([&] { accuracy(Tensor({2, 2, 2}), {0, 1}); });
  CHECK(contains(m, "[2, 2, 2]"));

  Tensor with_nan = s;
  with_nan[4] = std::nanf("");
  m = error_message<InputError>([&] { roc_auc_one_vs_rest(with_nan, kThreeClassLabels); });
  CHECK(contains(m, "sample 1, class 1"));
}
