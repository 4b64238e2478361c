#include "engine/data/dataset.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <random>

#include "engine/check.h"
#include "engine/data/util.h"

namespace kiln::data {

using detail::fail;

int Dataset::num_classes() const {
  if (!class_names.empty()) return static_cast<int>(class_names.size());
  if (labels.empty()) return 0;
  return *std::max_element(labels.begin(), labels.end()) + 1;
}

namespace {
// Copies the rows `idx` of t (viewed as [N, row]) into a new tensor of shape [idx.size(), ...].
Tensor gather_rows(const Tensor& t, const std::vector<int64_t>& idx) {
  if (t.ndim() == 0) return Tensor();
  Shape shape = t.shape();
  const int64_t n = shape[0];
  const int64_t row = n > 0 ? t.size() / n : 0;
  shape[0] = static_cast<int64_t>(idx.size());
  Tensor out(shape);
  for (size_t i = 0; i < idx.size(); ++i) {
    KILN_CHECK(idx[i] >= 0 && idx[i] < n, "subset index " + std::to_string(idx[i]) + " out of range for " +
                                              std::to_string(n) + " samples");
    std::memcpy(out.data() + static_cast<int64_t>(i) * row, t.data() + idx[i] * row,
                sizeof(float) * static_cast<size_t>(row));
  }
  return out;
}
}  // namespace

Dataset subset(const Dataset& d, const std::vector<int64_t>& idx) {
  Dataset out;
  out.x = gather_rows(d.x, idx);
  out.targets = gather_rows(d.targets, idx);
  if (!d.labels.empty()) {
    KILN_CHECK(static_cast<int64_t>(d.labels.size()) == d.size(),
               "labels and x disagree on the sample count");
    out.labels.reserve(idx.size());
    for (int64_t i : idx) out.labels.push_back(d.labels[static_cast<size_t>(i)]);
  }
  out.feature_names = d.feature_names;
  out.class_names = d.class_names;
  out.source = d.source;
  return out;
}

Split split(const Dataset& d, double val_fraction, double test_fraction, uint64_t seed) {
  auto check_fraction = [&](double f, const char* what) {
    if (!(f >= 0.0 && f < 1.0))
      fail("split of " + d.source + ": " + what + " fraction " + detail::fmt_num(f) + " is outside [0, 1)");
  };
  check_fraction(val_fraction, "validation");
  check_fraction(test_fraction, "test");
  if (val_fraction + test_fraction >= 1.0)
    fail("split of " + d.source + ": validation + test fractions " + detail::fmt_num(val_fraction) + " + " +
         detail::fmt_num(test_fraction) + " leave nothing to train on (the sum must be below 1)");
  const int64_t n = d.size();
  // ceil like scikit-learn's train_test_split; the epsilon keeps 0.2 * 830000 at 166000.
  auto count = [&](double f) { return static_cast<int64_t>(std::ceil(f * static_cast<double>(n) - 1e-9)); };
  const int64_t n_test = count(test_fraction), n_val = count(val_fraction);
  if (n - n_test - n_val < 1)
    fail("split of " + d.source + ": " + std::to_string(n) + " samples leave none for training after " +
         std::to_string(n_test) + " test and " + std::to_string(n_val) + " validation samples");

  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  std::mt19937_64 rng(seed);
  std::shuffle(order.begin(), order.end(), rng);
  auto part = [&](int64_t from, int64_t to) {
    return subset(d, std::vector<int64_t>(order.begin() + from, order.begin() + to));
  };
  Split s;
  s.test = part(0, n_test);
  s.val = part(n_test, n_test + n_val);
  s.train = part(n_test + n_val, n);
  return s;
}

void Standardizer::fit(const Tensor& x) {
  const int64_t n = x.ndim() > 0 ? x.dim(0) : 0;
  if (n == 0) fail("standardiser: cannot fit on 0 samples");
  const int64_t dim = x.size() / n;
  ConstMatMap m = x.matrix(n, dim);
  // Two passes in double: a constant feature gets a variance of exactly 0.
  Eigen::VectorXd mu = m.cast<double>().colwise().sum().transpose() / static_cast<double>(n);
  Eigen::VectorXd var =
      (m.cast<double>().rowwise() - mu.transpose()).array().square().colwise().sum().transpose() /
      static_cast<double>(n);
  mean.resize(static_cast<size_t>(dim));
  scale.resize(static_cast<size_t>(dim));
  for (int64_t j = 0; j < dim; ++j) {
    mean[static_cast<size_t>(j)] = static_cast<float>(mu[j]);
    scale[static_cast<size_t>(j)] = var[j] > 0 ? static_cast<float>(1.0 / std::sqrt(var[j])) : 1.f;
  }
}

void Standardizer::apply(Tensor& x) const {
  const int64_t n = x.ndim() > 0 ? x.dim(0) : 0;
  if (n == 0) return;
  KILN_CHECK(!empty(), "Standardizer::apply() before fit()");
  const int64_t dim = x.size() / n;
  if (dim != static_cast<int64_t>(mean.size()))
    fail("standardiser fitted on " + std::to_string(mean.size()) +
         " features per sample cannot apply to data of shape " + shape_str(x.shape()) + " (" +
         std::to_string(dim) + " features per sample)");
  MatMap m = x.matrix(n, dim);
  Eigen::Map<const Eigen::RowVectorXf> mu(mean.data(), dim), sc(scale.data(), dim);
  m.rowwise() -= mu;
  m.array().rowwise() *= sc.array();
}

}  // namespace kiln::data
