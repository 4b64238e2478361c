#include "import/check.h"

#include <cmath>

#include "engine/data/loaders.h"

namespace kiln::import {

namespace {

// [N, C, S...] -> [N, S..., C].
Tensor to_channels_last(const Tensor& x) {
  const int64_t n = x.dim(0), c = x.dim(1), s = x.size() / (n * c);
  Shape shape{n};
  shape.insert(shape.end(), x.shape().begin() + 2, x.shape().end());
  shape.push_back(c);
  Tensor out(shape);
  for (int64_t b = 0; b < n; ++b)
    for (int64_t ci = 0; ci < c; ++ci)
      for (int64_t si = 0; si < s; ++si) out[(b * s + si) * c + ci] = x[(b * c + ci) * s + si];
  return out;
}

}  // namespace

CheckResult check_forward(const train::Checkpoint& ck, const std::string& inputs_npy,
                          const std::string& expect_npy, bool channels_first) {
  // The npy loader's regression mode reads x [N, ...] and y [N] / [N, T] with its usual checks.
  data::Dataset d = data::load_npy(inputs_npy, expect_npy, /*regression=*/true);
  Tensor x = channels_first && d.x.ndim() >= 3 ? to_channels_last(d.x) : d.x;
  const Shape sample(x.shape().begin() + 1, x.shape().end());
  if (shape_numel(sample) != shape_numel(ck.input_shape) || (sample.size() > 1 && sample != ck.input_shape))
    throw InputError(
        inputs_npy + ": samples of shape " + shape_str(Shape(d.x.shape().begin() + 1, d.x.shape().end())) +
        ", the imported model takes " + shape_str(ck.input_shape) +
        (channels_first ? " (channels-last; give the source model's channels-first inputs)" : ""));
  Shape full{x.dim(0)};
  full.insert(full.end(), ck.input_shape.begin(), ck.input_shape.end());
  x = x.reshaped(full);
  auto model = train::restore_model(ck);
  const Tensor y = model->predict(x);
  const int64_t n = y.dim(0), k = y.dim(1);
  if (d.targets.dim(1) != k)
    throw InputError(expect_npy + ": " + std::to_string(d.targets.dim(1)) +
                     " outputs per sample, the model gives " + std::to_string(k));
  CheckResult r;
  r.samples = n;
  for (int64_t i = 0; i < n * k; ++i) {
    const double diff = std::fabs(static_cast<double>(y[i]) - static_cast<double>(d.targets[i]));
    if (!(diff <= r.max_abs_diff)) {  // a NaN counts as the worst
      r.max_abs_diff = std::isnan(diff) ? INFINITY : diff;
      r.worst_sample = i / k, r.worst_output = i % k;
    }
  }
  return r;
}

}  // namespace kiln::import
