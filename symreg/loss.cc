#include "symreg/loss.h"

#include <limits>

#include "engine/check.h"

namespace kiln::symreg {

LossKind parse_loss(const std::string& name) {
  if (name == "mse") return LossKind::kMse;
  if (name == "mae") return LossKind::kMae;
  if (name == "l2_margin") return LossKind::kL2Margin;
  if (name == "logistic") return LossKind::kLogistic;
  throw InputError("--loss: unknown loss '" + name + "' (known: mse, mae, l2_margin, logistic)");
}

const char* loss_name(LossKind k) {
  switch (k) {
    case LossKind::kMse:
      return "mse";
    case LossKind::kMae:
      return "mae";
    case LossKind::kL2Margin:
      return "l2_margin";
    case LossKind::kLogistic:
      return "logistic";
  }
  return "?";
}

namespace {

// One sample's loss for prediction p and target t.
double pointwise(LossKind k, double p, double t) {
  switch (k) {
    case LossKind::kMse:
      return (p - t) * (p - t);
    case LossKind::kMae:
      return std::fabs(p - t);
    case LossKind::kL2Margin:
      return (1 - t * p) * (1 - t * p);
    default: {
      double m = -t * p;  // log(1 + e^m), stable for large |m|
      return m > 0 ? m + std::log1p(std::exp(-m)) : std::log1p(std::exp(m));
    }
  }
}

}  // namespace

double loss_value(LossKind k, const float* yhat, const float* y, const float* w, int64_t n) {
  double sum = 0, wsum = 0;
  for (int64_t r = 0; r < n; ++r) {
    double p = yhat[r], wr = w ? w[r] : 1.0;
    if (!std::isfinite(p)) return std::numeric_limits<double>::infinity();
    sum += wr * pointwise(k, p, y[r]), wsum += wr;
  }
  return wsum > 0 ? sum / wsum : std::numeric_limits<double>::infinity();
}

double noise_floor_loss(LossKind k, const float* y, const float* w, int64_t n) {
  // Classification losses do not reach zero on noisy labels (l2_margin's minimum is at y yhat = 1,
  // logistic's at infinity): no floor.
  if (k != LossKind::kMse && k != LossKind::kMae) return 0;
  // Computed in double: float32 would round y (1 + 4 ulps) back to within an ulp of y.
  const double rel = kNoiseUlps * std::ldexp(1.0, -23);
  double sum = 0, wsum = 0;
  for (int64_t r = 0; r < n; ++r) {
    const double t = y[r], wr = w ? w[r] : 1.0;
    sum += wr * pointwise(k, t * (1 + rel), t), wsum += wr;
  }
  return wsum > 0 ? sum / wsum : 0;
}

}  // namespace kiln::symreg
