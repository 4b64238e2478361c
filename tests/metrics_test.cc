// Exact values of accuracy, one-vs-rest ROC AUC (with ties), confusion matrices and MSE on hand-worked
// examples, and the errors raised for inputs that do not fit. Then the anomaly-detection metrics on
// per-sample scores: signal-vs-background AUC, background-rate thresholds, efficiencies, ROC curves and
// Pearson correlation.
#include "engine/metrics.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

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

// ---- Anomaly detection: one score per sample, signal against background --------------------------------

namespace {

// Mann-Whitney by brute force: the fraction of (signal, background) pairs ordered, ties counting half.
double pairwise_auc(const std::vector<double>& bg, const std::vector<double>& sig) {
  double won = 0;
  for (double s : sig)
    for (double b : bg) won += s > b ? 1.0 : (s == b ? 0.5 : 0.0);
  return won / (static_cast<double>(bg.size()) * static_cast<double>(sig.size()));
}

int64_t count_above(const std::vector<double>& v, double t) {
  int64_t n = 0;
  for (double x : v) n += x > t ? 1 : 0;
  return n;
}

}  // namespace

TEST_CASE("roc_auc (anomaly): hand-worked values with ties, and NaN for an empty side") {
  // Signal 2 beats background 1, ties 2 and loses to 3 (1.5 pairs); signal 4 beats all three: 4.5 / 6.
  CHECK(roc_auc({1, 2, 3}, {2, 4}) == doctest::Approx(0.75));
  // Background 1, 1, 2, 3 vs signal 1, 3, 3: signal 1 ties twice (1); each 3 beats three and ties one
  // (3.5 each): 8 of 12 pairs.
  CHECK(roc_auc({1, 1, 2, 3}, {1, 3, 3}) == doctest::Approx(2.0 / 3.0));
  // The order of the inputs does not matter.
  CHECK(roc_auc({3, 1, 2, 1}, {3, 1, 3}) == doctest::Approx(2.0 / 3.0));
  CHECK(roc_auc({0.5, 0.5}, {0.5}) == doctest::Approx(0.5));  // all ties
  CHECK(roc_auc({1, 2}, {3, 4}) == 1.0);
  CHECK(roc_auc({3, 4}, {1, 2}) == 0.0);
  // Scores that differ only beyond float precision are still ordered (the scores are doubles).
  CHECK(roc_auc({1.0}, {1.0 + 1e-12}) == 1.0);
  CHECK(std::isnan(roc_auc({}, {1, 2})));
  CHECK(std::isnan(roc_auc({1, 2}, {})));
  CHECK(std::isnan(roc_auc({}, {})));
  std::string m = error_message<InputError>([] { roc_auc({1, std::nan(""), 2}, {1}); });
  CHECK(contains(m, "roc_auc"));
  CHECK(contains(m, "NaN"));
}

TEST_CASE("roc_auc (anomaly): equals the pairwise count on random scores with many ties") {
  std::mt19937_64 rng(3);
  std::uniform_int_distribution<int> value(0, 6), size(1, 25);
  for (int trial = 0; trial < 200; ++trial) {
    std::vector<double> bg(static_cast<size_t>(size(rng))), sig(static_cast<size_t>(size(rng)));
    for (double& v : bg) v = value(rng);
    for (double& v : sig) v = value(rng) + 0.5 * (trial % 2);  // odd trials: no ties across the sides
    INFO("trial ", trial);
    CHECK(roc_auc(bg, sig) == doctest::Approx(pairwise_auc(bg, sig)).epsilon(1e-12));
  }
}

TEST_CASE("rate_threshold: the floor(rate * N)-th largest background score (0-based)") {
  std::vector<double> bg(1000);
  for (int i = 0; i < 1000; ++i) bg[static_cast<size_t>(i)] = i;
  std::shuffle(bg.begin(), bg.end(), std::mt19937_64(11));
  // rate 1e-2: 10 scores (990..999) lie strictly above the threshold 989.
  CHECK(rate_threshold(bg, 1e-2) == 989.0);
  CHECK(count_above(bg, rate_threshold(bg, 1e-2)) == 10);
  CHECK(rate_threshold(bg, 1e-3) == 998.0);    // one score above
  CHECK(rate_threshold(bg, 0.5) == 499.0);     // 500 above
  CHECK(rate_threshold(bg, 0.0155) == 984.0);  // floor(15.5) = 15 above
  // Too few background samples for the rate: rate * N < 1.
  CHECK(std::isnan(rate_threshold(bg, 1e-4)));
  CHECK(std::isnan(rate_threshold(bg, 9.99e-4)));
  CHECK(std::isnan(rate_threshold({}, 0.1)));
  // rate * N == 1 exactly: the second largest.
  CHECK(rate_threshold({5, 1, 4, 2, 3, 0, 9, 8, 7, 6}, 0.1) == 8.0);
  // The argument is taken by value: the caller's vector is not reordered.
  std::vector<double> kept = {3, 1, 2, 0, 5, 4, 9, 8, 7, 6};
  const std::vector<double> copy = kept;
  rate_threshold(kept, 0.2);
  CHECK(kept == copy);
}

TEST_CASE("rate_threshold: never more than floor(rate * N) background scores above it, with ties") {
  std::mt19937_64 rng(5);
  std::uniform_int_distribution<int> value(0, 20);
  for (double rate : {0.01, 0.05, 0.1, 0.25, 0.5}) {
    for (int trial = 0; trial < 20; ++trial) {
      std::vector<double> bg(200);
      for (double& v : bg) v = value(rng);
      const double t = rate_threshold(bg, rate);
      const int64_t k = static_cast<int64_t>(std::floor(rate * 200 + 1e-9));
      INFO("rate ", rate, " trial ", trial);
      CHECK(count_above(bg, t) <= k);
      // ... and it is the tightest such background score: one step lower lets more than k through.
      CHECK(count_above(bg, t) + std::count(bg.begin(), bg.end(), t) > k);
      CHECK(std::count(bg.begin(), bg.end(), t) >= 1);
    }
  }
}

TEST_CASE("efficiency_above: the fraction of signal strictly above, NaN without signal or threshold") {
  CHECK(efficiency_above({1, 2, 3, 4}, 2) == 0.5);  // 3 and 4; 2 itself is not above
  CHECK(efficiency_above({1, 2, 3, 4}, 0.5) == 1.0);
  CHECK(efficiency_above({1, 2, 3, 4}, 4) == 0.0);
  CHECK(efficiency_above({1, 2, 3}, 1.5) == doctest::Approx(2.0 / 3.0));
  CHECK(efficiency_above({1, 2, 3}, -std::numeric_limits<double>::infinity()) == 1.0);
  CHECK(std::isnan(efficiency_above({}, 1)));
  CHECK(std::isnan(efficiency_above({1, 2}, std::nan(""))));
  // With rate_threshold: background 0..99, signal 50..149; at rate 0.1 the threshold is 89 and the
  // signal above it is 90..149, 60 of 100.
  std::vector<double> bg, sig;
  for (int i = 0; i < 100; ++i) bg.push_back(i), sig.push_back(50 + i);
  CHECK(efficiency_above(sig, rate_threshold(bg, 0.1)) == doctest::Approx(0.6));
}

TEST_CASE("roc_curve: log-spaced background rates from 1/N, monotone, consistent with one threshold") {
  // Background 0..999, signal 500..1499: a background rate r (scores above 999 - 1000 r) lets through the
  // signal above the same threshold, a fraction min(1, 0.5 + r).
  std::vector<double> bg, sig;
  for (int i = 0; i < 1000; ++i) bg.push_back(i), sig.push_back(500 + i);
  const auto c = roc_curve(bg, sig, 60);
  REQUIRE(c.size() == 60);
  CHECK(c.front().first == doctest::Approx(1e-3));  // 1/N
  CHECK(c.front().second == doctest::Approx(0.501));
  CHECK(c.back().first >= 0.999);  // the last threshold is at (or below) the smallest background score
  CHECK(c.back().second == 1.0);
  for (size_t i = 0; i < c.size(); ++i) {
    INFO("point ", i, ": (", c[i].first, ", ", c[i].second, ")");
    CHECK(c[i].first > 0);  // plotted on a log axis
    CHECK(c[i].first <= 1.0);
    CHECK(c[i].second == doctest::Approx(std::min(1.0, 0.5 + c[i].first)));
    if (i) {
      CHECK(c[i].first >= c[i - 1].first);
      CHECK(c[i].second >= c[i - 1].second);
    }
  }
  // Roughly even on a log axis: the middle point is near 10^-1.5.
  CHECK(c[30].first == doctest::Approx(std::pow(10.0, -3.0 + 3.0 * 30.0 / 59.0)).epsilon(0.05));
  CHECK(roc_curve({}, sig).empty());
  CHECK(roc_curve(bg, {}).empty());
}

TEST_CASE("roc_curve: the first point is at background rate 1/N for any N (distinct scores)") {
  // 1/N * N rounds below 1 in double for some N (49, 98, 103, ...): flooring it picks the largest score
  // as the threshold, which no background sample exceeds (rate 0: a point a log axis cannot show).
  for (int n : {10, 49, 98, 103, 107, 161, 1000}) {
    std::vector<double> bg, sig;
    for (int i = 0; i < n; ++i) bg.push_back(i), sig.push_back(i + 0.5);
    const auto c = roc_curve(bg, sig, 20);
    REQUIRE(c.size() == 20);
    INFO("N = ", n);
    CHECK(c.front().first == doctest::Approx(1.0 / n));
    for (const auto& p : c) CHECK(p.first > 0);
  }
}

TEST_CASE("pearson: exact values, NaN for constant input, ShapeError on a length mismatch") {
  CHECK(pearson({1, 2, 3, 4}, {2, 4, 6, 8}) == doctest::Approx(1.0));
  CHECK(pearson({1, 2, 3, 4}, {8, 6, 4, 2}) == doctest::Approx(-1.0));
  CHECK(pearson({1, 2, 3, 4}, {-3, 7, 17, 27}) == doctest::Approx(1.0));  // any positive affine map
  // a = 1, 2, 3 and b = 1, 3, 2: sum of products of deviations 1, variances 2 and 2 -> 1 / 2.
  CHECK(pearson({1, 2, 3}, {1, 3, 2}) == doctest::Approx(0.5));
  // Deviations -1.5, -0.5, 0.5, 1.5 and -0.5, -1.5, 1.5, 0.5: 3 / sqrt(5 * 5).
  CHECK(pearson({1, 2, 3, 4}, {2, 1, 4, 3}) == doctest::Approx(0.6));
  CHECK(pearson({1, 2, 3, 4}, {1, -1, -1, 1}) == doctest::Approx(0.0));
  // A large common offset does not lose the value (two-pass, in double).
  CHECK(pearson({1e9 + 1, 1e9 + 2, 1e9 + 3}, {1, 3, 2}) == doctest::Approx(0.5));
  CHECK(pearson({2, 1}, {5, 9}) == doctest::Approx(-1.0));
  CHECK(std::isnan(pearson({1, 1, 1}, {1, 2, 3})));
  CHECK(std::isnan(pearson({1, 2, 3}, {4, 4, 4})));
  CHECK(std::isnan(pearson({1}, {2})));
  CHECK(std::isnan(pearson({}, {})));
  std::string m = error_message<ShapeError>([] { pearson({1, 2, 3}, {1, 2}); });
  CHECK(contains(m, "pearson"));
  CHECK(contains(m, "3"));
  CHECK(contains(m, "2"));
}
