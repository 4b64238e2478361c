// Dataset operations: subset, seeded split, standardiser, mini-batch iteration.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "engine/check.h"
#include "engine/data/batches.h"
#include "engine/data/dataset.h"
#include "tests/test_files.h"

using namespace kiln;
using namespace kiln::data;

namespace {

// n samples of shape [2]: x[i] = {i, -i}, label i % 3, target 10 * i.
Dataset numbered(int64_t n, bool regression = false) {
  Dataset d;
  d.x = Tensor({n, 2});
  for (int64_t i = 0; i < n; ++i) {
    d.x.at({i, 0}) = static_cast<float>(i);
    d.x.at({i, 1}) = -static_cast<float>(i);
  }
  if (regression) {
    d.targets = Tensor({n, 1});
    for (int64_t i = 0; i < n; ++i) d.targets[i] = 10.f * static_cast<float>(i);
  } else {
    for (int64_t i = 0; i < n; ++i) d.labels.push_back(static_cast<int>(i % 3));
    d.class_names = {"a", "b", "c"};
  }
  d.feature_names = {"f0", "f1"};
  d.source = "numbered";
  return d;
}

std::vector<int64_t> ids(const Dataset& d) {
  std::vector<int64_t> out;
  for (int64_t i = 0; i < d.size(); ++i) out.push_back(static_cast<int64_t>(d.x.at({i, 0})));
  return out;
}

}  // namespace

TEST_CASE("subset keeps rows, labels, targets and names aligned") {
  Dataset d = numbered(5);
  Dataset s = subset(d, {4, 1, 1});
  CHECK(s.x.shape() == Shape{3, 2});
  CHECK(ids(s) == std::vector<int64_t>{4, 1, 1});
  CHECK(s.x.at({0, 1}) == -4.f);
  CHECK(s.labels == std::vector<int>{1, 1, 1});
  CHECK(s.class_names == d.class_names);
  CHECK(s.num_classes() == 3);
  CHECK(s.feature_names == d.feature_names);
  Dataset r = subset(numbered(5, true), {2, 0});
  CHECK(r.targets.shape() == Shape{2, 1});
  CHECK(r.targets[0] == 20.f);
  CHECK(r.labels.empty());
  CHECK(subset(d, {}).size() == 0);
  CHECK_THROWS_AS(subset(d, {5}), InternalError);
}

TEST_CASE("split: deterministic for a seed, disjoint, covering, sized by fraction") {
  Dataset d = numbered(100);
  Split a = split(d, 0.1, 0.2, 42), b = split(d, 0.1, 0.2, 42), c = split(d, 0.1, 0.2, 43);
  CHECK(a.test.size() == 20);
  CHECK(a.val.size() == 10);
  CHECK(a.train.size() == 70);
  CHECK(ids(a.train) == ids(b.train));
  CHECK(ids(a.val) == ids(b.val));
  CHECK(ids(a.test) == ids(b.test));
  CHECK(ids(a.train) != ids(c.train));
  std::vector<int64_t> all;
  for (const Dataset* p : {&a.train, &a.val, &a.test}) {
    std::vector<int64_t> v = ids(*p);
    all.insert(all.end(), v.begin(), v.end());
    for (int64_t i = 0; i < p->size(); ++i)
      CHECK(p->labels[static_cast<size_t>(i)] == v[static_cast<size_t>(i)] % 3);
    CHECK(p->num_classes() == 3);
  }
  std::sort(all.begin(), all.end());
  std::vector<int64_t> expect(100);
  for (int64_t i = 0; i < 100; ++i) expect[static_cast<size_t>(i)] = i;
  CHECK(all == expect);  // disjoint and covering

  // Fractions round up (like scikit-learn); zero fractions give empty parts with the right shape.
  Split s = split(numbered(7), 0.0, 0.2, 1);
  CHECK(s.test.size() == 2);
  CHECK(s.val.size() == 0);
  CHECK(s.val.x.shape() == Shape{0, 2});
  CHECK(s.train.size() == 5);
  CHECK(split(numbered(830), 0.0, 0.2, 1).test.size() == 166);

  CHECK_INPUT_ERROR(split(d, -0.1, 0.2, 1), "numbered", "validation fraction -0.1 is outside [0, 1)");
  CHECK_INPUT_ERROR(split(d, 0.1, 1.0, 1), "test fraction 1 is outside [0, 1)");
  CHECK_INPUT_ERROR(split(d, std::nan(""), 0.2, 1), "validation fraction nan");
  CHECK_INPUT_ERROR(split(d, 0.5, 0.5, 1), "validation + test fractions 0.5 + 0.5 leave nothing to train on");
  CHECK_INPUT_ERROR(split(numbered(2), 0.4, 0.4, 1), "2 samples leave none for training");
}

TEST_CASE("standardiser: exact parameters on a hand example, mean 0 and std 1 after apply") {
  Standardizer st;
  CHECK(st.empty());
  // Column 0: 1, 3, 5 -> mean 3, population std sqrt(8/3). Column 1 is constant: scale 1.
  st.fit(Tensor({3, 2}, {1, 2, 3, 2, 5, 2}));
  CHECK(!st.empty());
  CHECK(st.mean == std::vector<float>{3.f, 2.f});
  CHECK(st.scale[0] == static_cast<float>(1.0 / std::sqrt(8.0 / 3.0)));
  CHECK(st.scale[1] == 1.f);
  Tensor x({1, 2}, {4, 7});
  st.apply(x);
  CHECK(x[0] == doctest::Approx(std::sqrt(3.0 / 8.0)).epsilon(1e-6));
  CHECK(x[1] == 5.f);

  // Random training data with very different offsets and scales per feature; samples of shape [2, 2].
  std::mt19937_64 rng(3);
  std::normal_distribution<float> g;
  Tensor train({500, 2, 2});
  for (int64_t i = 0; i < 500; ++i)
    for (int64_t j = 0; j < 4; ++j)
      train[i * 4 + j] = 100.f * static_cast<float>(j) + (1.f + 5.f * j) * g(rng);
  st.fit(train);
  CHECK(st.mean.size() == 4);
  st.apply(train);
  for (int64_t j = 0; j < 4; ++j) {
    double sum = 0, sq = 0;
    for (int64_t i = 0; i < 500; ++i) sum += train[i * 4 + j];
    const double mean = sum / 500;
    for (int64_t i = 0; i < 500; ++i) sq += (train[i * 4 + j] - mean) * (train[i * 4 + j] - mean);
    CHECK(std::fabs(mean) < 1e-5);
    CHECK(std::sqrt(sq / 500) == doctest::Approx(1.0).epsilon(1e-5));
  }
  Tensor wrong({3, 3});
  CHECK_INPUT_ERROR(st.apply(wrong), "standardiser fitted on 4 features",
                    "shape [3, 3] (3 features per sample)");
  CHECK_INPUT_ERROR(st.fit(Tensor({0, 4})), "cannot fit on 0 samples");
}

TEST_CASE("batches: each sample once per epoch, reshuffled, last partial batch kept") {
  Dataset d = numbered(10);
  BatchIterator it(d, 4, true, 7);
  CHECK(it.batches_per_epoch() == 3);
  Tensor x, t;
  std::vector<int> y;
  std::vector<std::vector<int64_t>> epochs;
  for (int e = 0; e < 3; ++e) {
    it.start_epoch();
    std::vector<int64_t> seen, sizes;
    const float* buffer = nullptr;
    while (it.next(x, y, t)) {
      sizes.push_back(x.dim(0));
      CHECK(x.ndim() == 2);
      CHECK(static_cast<int64_t>(y.size()) == x.dim(0));
      CHECK(t.empty());
      for (int64_t i = 0; i < x.dim(0); ++i) {
        const auto id = static_cast<int64_t>(x.at({i, 0}));
        CHECK(x.at({i, 1}) == -static_cast<float>(id));
        CHECK(y[static_cast<size_t>(i)] == id % 3);
        seen.push_back(id);
      }
      if (sizes.size() == 2) CHECK(x.data() == buffer);  // same shape: the buffer is reused
      buffer = x.data();
    }
    CHECK(sizes == std::vector<int64_t>{4, 4, 2});
    CHECK(!it.next(x, y, t));  // stays at the end until the next start_epoch()
    epochs.push_back(seen);
    std::sort(seen.begin(), seen.end());
    CHECK(seen == std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
  }
  CHECK(epochs[0] != epochs[1]);
  CHECK(epochs[1] != epochs[2]);

  // The same seed replays the same epochs; next() starts the first epoch by itself.
  BatchIterator again(d, 4, true, 7);
  std::vector<int64_t> first;
  while (again.next(x, y, t))
    for (int64_t i = 0; i < x.dim(0); ++i) first.push_back(static_cast<int64_t>(x.at({i, 0})));
  CHECK(first == epochs[0]);

  // Without shuffling: file order; regression targets come along.
  Dataset r = numbered(5, true);
  BatchIterator plain(r, 2, false, 0);
  std::vector<float> targets;
  while (plain.next(x, y, t)) {
    CHECK(y.empty());
    CHECK(t.shape() == Shape{x.dim(0), 1});
    for (int64_t i = 0; i < t.dim(0); ++i) targets.push_back(t[i]);
  }
  CHECK(targets == std::vector<float>{0, 10, 20, 30, 40});
  CHECK(BatchIterator(r, 5, false, 0).batches_per_epoch() == 1);
  CHECK(BatchIterator(r, 64, false, 0).batches_per_epoch() == 1);
  CHECK_INPUT_ERROR(BatchIterator(r, 0, false, 0), "batch size must be at least 1, got 0");
}
