// Losses, each the mean over samples. Cross-entropies are fused with their softmax/sigmoid for stability.
#include <cmath>

#include "engine/check.h"
#include "engine/ops.h"

namespace kiln {

Var softmax_cross_entropy(const Var& logits, const std::vector<int>& labels, float label_smoothing) {
  if (logits.ndim() < 1) throw ShapeError("cross-entropy: logits of shape " + shape_str(logits.shape()));
  int64_t c = logits.shape().back(), n = logits.size() / c;
  if (static_cast<int64_t>(labels.size()) != n)
    throw ShapeError("cross-entropy: " + std::to_string(labels.size()) + " labels for logits " + shape_str(logits.shape()));
  if (!(label_smoothing >= 0.f && label_smoothing < 1.f))
    throw InputError("label_smoothing must be in [0, 1), got " + std::to_string(label_smoothing));
  // Target distribution: (1 - s) on the label, s / C spread over all classes (Keras and PyTorch).
  float off = label_smoothing / static_cast<float>(c), on = 1.f - label_smoothing + off;
  Tensor prob(logits.shape());
  double total = 0;
  const float* z = logits.value().data();
  for (int64_t r = 0; r < n; ++r) {
    int y = labels[static_cast<size_t>(r)];
    if (y < 0 || y >= c)
      throw InputError("cross-entropy: label " + std::to_string(y) + " outside [0, " + std::to_string(c) + ")");
    const float* zr = z + r * c;
    float m = zr[0];
    for (int64_t j = 1; j < c; ++j) m = std::max(m, zr[j]);
    double s = 0;
    for (int64_t j = 0; j < c; ++j) s += std::exp(static_cast<double>(zr[j] - m));
    double lse = m + std::log(s);
    for (int64_t j = 0; j < c; ++j) {
      double logp = zr[j] - lse;
      prob[r * c + j] = static_cast<float>(std::exp(logp));
      total -= (j == y ? on : off) * logp;
    }
  }
  float inv_n = 1.f / static_cast<float>(n);
  return make_result(Tensor(Shape{}, {static_cast<float>(total / n)}), "softmax_cross_entropy", {logits},
                     [prob = std::move(prob), labels, c, n, on, off, inv_n](Node& self) {
                       float g = self.grad[0] * inv_n;
                       float* dz = self.inputs[0]->grad_buffer().data();
                       for (int64_t r = 0; r < n; ++r)
                         for (int64_t j = 0; j < c; ++j)
                           dz[r * c + j] += g * (prob[r * c + j] - (j == labels[static_cast<size_t>(r)] ? on : off));
                     });
}

Var binary_cross_entropy(const Var& logits, const Tensor& targets) {
  if (logits.size() != targets.size())
    throw ShapeError("binary cross-entropy: logits " + shape_str(logits.shape()) + " vs targets " + shape_str(targets.shape()));
  int64_t n = logits.size();
  double total = 0;
  const float* z = logits.value().data();
  for (int64_t i = 0; i < n; ++i) {
    // log(1 + e^-|z|) + max(z, 0) - z*t: stable for large |z|.
    double zi = z[i];
    total += std::max(zi, 0.0) - zi * targets[i] + std::log1p(std::exp(-std::fabs(zi)));
  }
  return make_result(Tensor(Shape{}, {static_cast<float>(total / n)}), "binary_cross_entropy", {logits},
                     [targets, n](Node& self) {
                       float g = self.grad[0] / static_cast<float>(n);
                       const float* z = self.inputs[0]->value.data();
                       float* dz = self.inputs[0]->grad_buffer().data();
                       for (int64_t i = 0; i < n; ++i) dz[i] += g * (1.f / (1.f + std::exp(-z[i])) - targets[i]);
                     });
}

Var mse_loss(const Var& pred, const Tensor& target) {
  if (pred.size() != target.size())
    throw ShapeError("mse: predictions " + shape_str(pred.shape()) + " vs targets " + shape_str(target.shape()));
  return mean_all(square(sub(pred, Var(target.reshaped(pred.shape())))));
}

Var l2_margin_loss(const Var& pred, const Tensor& target) {
  if (pred.size() != target.size())
    throw ShapeError("l2 margin: predictions " + shape_str(pred.shape()) + " vs targets " + shape_str(target.shape()));
  Var margin = sub(Var(Tensor(Shape{}, {1.f})), mul(pred, Var(target.reshaped(pred.shape()))));
  return mean_all(square(relu(margin)));
}

}  // namespace kiln
