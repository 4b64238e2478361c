// `data: format: h5`: a dataset from two HDF5 datasets (features, labels) of one file, with the errors of
// the CSV and npy loaders: file, dataset, sample index and value.
#include <cmath>

#include "engine/data/hdf5_file.h"
#include "engine/data/util.h"

namespace kiln::data {

using detail::fail;
using detail::fmt_num;

namespace {

// Class indices from [N] / [N, 1] integers or one-hot rows [N, K].
std::vector<int> class_labels(const std::string& at, const std::vector<double>& y, const Shape& ys, int64_t n,
                              int* num_classes) {
  std::vector<int> labels(static_cast<size_t>(n));
  const bool one_hot = ys.size() == 2 && ys[1] > 1;
  if (!(ys.size() == 1 || (ys.size() == 2 && ys[1] >= 1)))
    fail(at + ": class labels must be [N], [N, 1] or one-hot [N, K], got " + shape_str(ys) +
         " (task: regression for real-valued targets)");
  if (one_hot) {
    const int64_t k = ys[1];
    if (k > detail::kMaxClasses) fail(at + ": " + std::to_string(k) + " one-hot columns, too many classes");
    for (int64_t i = 0; i < n; ++i) {
      int hot = -1;
      for (int64_t j = 0; j < k; ++j) {
        const double v = y[static_cast<size_t>(i * k + j)];
        if (v != 0 && v != 1)
          fail(at + ": sample " + std::to_string(i) + " column " + std::to_string(j) + " is " + fmt_num(v) +
               "; a one-hot label row holds 0s and one 1");
        if (v == 1) {
          if (hot >= 0)
            fail(at + ": sample " + std::to_string(i) + " has 1 in columns " + std::to_string(hot) + " and " +
                 std::to_string(j) + "; a one-hot label row holds exactly one 1");
          hot = static_cast<int>(j);
        }
      }
      if (hot < 0) fail(at + ": sample " + std::to_string(i) + " has no 1; a one-hot label row holds one 1");
      labels[static_cast<size_t>(i)] = hot;
    }
    *num_classes = static_cast<int>(k);
    return labels;
  }
  for (int64_t i = 0; i < n; ++i) {
    const double v = y[static_cast<size_t>(i)];
    if (!(v == std::floor(v)) || v < 0 || v >= detail::kMaxClasses)
      fail(at + ": label " + std::to_string(i) + " is " + fmt_num(v) +
           "; class labels must be integers 0..K-1 with K <= " + std::to_string(detail::kMaxClasses) +
           " (task: regression for real-valued targets)");
    labels[static_cast<size_t>(i)] = static_cast<int>(v);
  }
  *num_classes = 0;
  return labels;
}

}  // namespace

Dataset load_h5(const std::string& path, const std::string& x_name, const std::string& y_name,
                bool regression) {
  H5File f(path);
  const std::string xat = path + ": '" + x_name + "'", yat = path + ": '" + y_name + "'";
  Dataset d;
  d.source = path + " (" + x_name + ", " + y_name + ")";
  d.x = f.read(x_name);
  if (d.x.ndim() == 0) fail(xat + " is a scalar; expected features of shape [N, ...]");
  const int64_t n = d.x.dim(0);
  if (n == 0) fail(xat + ": no samples (shape " + shape_str(d.x.shape()) + ")");
  if (d.x.ndim() == 1) d.x = d.x.reshaped({n, 1});
  const int64_t per = d.x.size() / n;
  for (int64_t i = 0; i < d.x.size(); ++i)
    if (!std::isfinite(d.x[i]))
      fail(xat + ": sample " + std::to_string(i / per) + " element " + std::to_string(i % per) + " is " +
           detail::nonfinite_name(d.x[i]) + "; features must be finite");
  Shape ys;
  std::vector<double> y = f.read_doubles(y_name, &ys);
  if (ys.empty() || ys[0] != n)
    fail(yat + ": shape " + shape_str(ys) + " does not match the " + std::to_string(n) + " samples of '" +
         x_name + "' (shape " + shape_str(d.x.shape()) + ")");
  if (regression) {
    if (ys.size() > 2) fail(yat + ": regression targets must be [N] or [N, T], got " + shape_str(ys));
    const int64_t t = ys.size() == 2 ? ys[1] : 1;
    for (size_t i = 0; i < y.size(); ++i)
      if (!std::isfinite(y[i])) fail(yat + ": target of sample " + std::to_string(i / t) + " is not finite");
    d.targets = Tensor({n, t}, std::vector<float>(y.begin(), y.end()));
    return d;
  }
  int k = 0;
  d.labels = class_labels(yat, y, ys, n, &k);
  if (k > 0) {
    for (int i = 0; i < k; ++i) d.class_names.push_back(std::to_string(i));
  } else {
    d.class_names = detail::index_class_names(d.labels);
  }
  return d;
}

}  // namespace kiln::data
