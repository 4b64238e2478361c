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

// The loss of a prediction that misses every target by kNoiseUlps float32 ulps (yhat = y (1 + kNoiseUlps
// 2^-23)): the float noise floor. The evaluator computes in float32 and the targets are floats, so an exact
// formula scores anywhere up to about this (N7's log((x + 1) (x^2 + 1)): MSE 2.7e-15) and a longer one
// can score below it by fitting the rounding (0 at complexity 20 on the same 16 rows). Losses at or below
// the floor are ties (front.h). 4 ulps: each of the few operations of a short formula rounds by half an
// ulp, and so did the target.
constexpr double kNoiseUlps = 4;
double noise_floor_loss(LossKind k, const float* y, const float* w, int64_t n);

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
