// Losses of a prediction against targets, with optional sample weights (mean weighted loss, sum w l / sum w),
// and the per-row first and second derivatives the constant fitting uses (a generalised Gauss-Newton step:
// for MSE it is exactly Levenberg-Marquardt).
//
//   mse        (yhat - y)^2
//   mae        |yhat - y|                  (fitted by iteratively reweighted least squares)
//   l2_margin  (1 - y yhat)^2, y = +-1     (PySR's L2MarginLoss, the hls4ml jet-tagging flow)
//   logistic   log(1 + exp(-y yhat)), y = +-1  (yhat is a logit)
//
// A non-finite prediction on any row makes the loss +inf.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>

namespace kiln::symreg {

enum class LossKind { kMse, kMae, kL2Margin, kLogistic };

LossKind parse_loss(const std::string& name);  // InputError naming the value
const char* loss_name(LossKind k);
inline bool is_classification_loss(LossKind k) {
  return k == LossKind::kL2Margin || k == LossKind::kLogistic;
}

// Mean weighted loss over n rows; w may be null (all weights 1).
double loss_value(LossKind k, const float* yhat, const float* y, const float* w, int64_t n);

// d loss / d yhat and a non-negative curvature for one row (unweighted).
inline void loss_derivatives(LossKind k, double yhat, double y, double& d1, double& d2);

inline void loss_derivatives(LossKind k, double yhat, double y, double& d1, double& d2) {
  switch (k) {
    case LossKind::kMse:
      d1 = 2 * (yhat - y), d2 = 2;
      return;
    case LossKind::kMae: {
      double r = yhat - y;
      d1 = r > 0 ? 1 : (r < 0 ? -1 : 0);
      d2 = 1 / std::max(std::fabs(r), 1e-6);  // IRLS: |r| ~ r^2 / |r_current|
      return;
    }
    case LossKind::kL2Margin:
      d1 = -2 * y * (1 - y * yhat), d2 = 2;
      return;
    case LossKind::kLogistic: {
      double m = y * yhat, s = 1 / (1 + std::exp(m));  // sigma(-m)
      d1 = -y * s, d2 = std::max(s * (1 - s), 1e-12);
      return;
    }
  }
}

}  // namespace kiln::symreg
