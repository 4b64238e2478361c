// The real datasets on these machines (scripts/setup.sh installs them): sklearn's digits.csv.gz and
// Fashion-MNIST's t10k IDX files. Figures checked independently with Python's gzip module.
#include <doctest/doctest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "engine/data/batches.h"
#include "engine/data/loaders.h"

using namespace kiln;
using namespace kiln::data;

TEST_CASE("sklearn digits.csv.gz: 1797 x 64, 10 classes") {
  CsvOptions o;
  o.path = "/usr/lib/python3/dist-packages/sklearn/datasets/data/digits.csv.gz";
  o.header = false;
  o.label = "-1";
  Dataset d = load_csv(o);
  CHECK(d.x.shape() == Shape{1797, 64});
  CHECK(d.num_classes() == 10);
  CHECK(d.class_names.front() == "0");
  CHECK(d.class_names.back() == "9");
  CHECK(d.labels[0] == 0);
  CHECK(d.x.matrix().row(0).sum() == 294.f);
  CHECK(d.x.matrix().maxCoeff() == 16.f);
  CHECK(std::count(d.labels.begin(), d.labels.end(), 8) == 174);
  CHECK(std::count(d.labels.begin(), d.labels.end(), 3) == 183);
}

TEST_CASE("Fashion-MNIST t10k: 10000 x 28 x 28 x 1 in [0, 1], 1000 per class") {
  const std::string dir = "/usr/share/datasets/fashion-mnist/";
  Dataset d = load_idx(dir + "t10k-images-idx3-ubyte.gz", dir + "t10k-labels-idx1-ubyte.gz");
  CHECK(d.x.shape() == Shape{10000, 28, 28, 1});
  CHECK(d.num_classes() == 10);
  CHECK(std::vector<int>(d.labels.begin(), d.labels.begin() + 5) == std::vector<int>{9, 2, 1, 1, 6});
  for (int c = 0; c < 10; ++c) CHECK(std::count(d.labels.begin(), d.labels.end(), c) == 1000);
  CHECK(d.x.vec().minCoeff() == 0.f);
  CHECK(d.x.vec().maxCoeff() == 1.f);
  CHECK(d.x.matrix(10000, 784).row(0).cast<double>().sum() * 255.0 == doctest::Approx(33456).epsilon(1e-6));

  BatchIterator it(d, 32, true, 1);
  CHECK(it.batches_per_epoch() == 313);
  Tensor x, t;
  std::vector<int> y;
  int64_t n = 0, batches = 0;
  while (it.next(x, y, t)) n += x.dim(0), ++batches;
  CHECK(n == 10000);
  CHECK(batches == 313);
  CHECK(x.shape() == Shape{16, 28, 28, 1});
}
