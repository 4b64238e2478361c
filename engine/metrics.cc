#include "engine/metrics.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <utility>

#include "engine/check.h"

namespace kiln {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

struct ScoreDims {
  int64_t n;     // samples
  int64_t cols;  // score columns
  int classes;   // label range: cols, or 2 for a binary logit
};

// Checks the score shape, the label count and the label range; `fn` names the caller in messages.
ScoreDims check_inputs(const char* fn, const Tensor& scores, const std::vector<int>& labels) {
  ScoreDims d{};
  if (scores.ndim() == 1) {
    d.n = scores.dim(0);
    d.cols = 1;
  } else if (scores.ndim() == 2) {
    d.n = scores.dim(0);
    d.cols = scores.dim(1);
  } else {
    throw ShapeError(std::string(fn) + ": scores must be [N, C] (or [N] binary logits), got shape " +
                     shape_str(scores.shape()));
  }
  if (d.cols < 1) {
    throw ShapeError(std::string(fn) + ": scores have no class columns, shape " + shape_str(scores.shape()));
  }
  if (d.n != static_cast<int64_t>(labels.size())) {
    throw ShapeError(std::string(fn) + ": scores have " + std::to_string(d.n) + " rows (shape " +
                     shape_str(scores.shape()) + ") but there are " + std::to_string(labels.size()) +
                     " labels");
  }
  d.classes = d.cols == 1 ? 2 : static_cast<int>(d.cols);
  for (size_t i = 0; i < labels.size(); ++i) {
    if (labels[i] < 0 || labels[i] >= d.classes) {
      throw InputError(std::string(fn) + ": label " + std::to_string(labels[i]) + " at sample " +
                       std::to_string(i) + " is outside [0, " + std::to_string(d.classes) + ")" +
                       (d.cols == 1 ? " (binary logit scores)" : ""));
    }
  }
  return d;
}

// Predicted class of one row: argmax (first maximum), or logit > 0 for a single column.
int predict_row(const float* row, int64_t cols) {
  if (cols == 1) return row[0] > 0.f ? 1 : 0;
  int64_t best = 0;
  for (int64_t j = 1; j < cols; ++j) {
    if (row[j] > row[best]) best = j;
  }
  return static_cast<int>(best);
}

// Mann-Whitney AUC of `positive` samples scoring above the others; NaN without both kinds.
template <class S>
double auc_of(std::vector<std::pair<S, bool>> scored) {
  int64_t pos = 0;
  for (const auto& s : scored) pos += s.second ? 1 : 0;
  const int64_t neg = static_cast<int64_t>(scored.size()) - pos;
  if (pos == 0 || neg == 0) return kNaN;
  std::sort(scored.begin(), scored.end(),
            [](const std::pair<S, bool>& a, const std::pair<S, bool>& b) { return a.first < b.first; });
  // Sum of the (1-based, tie-averaged) ranks of the positives.
  double rank_sum = 0;
  size_t i = 0;
  while (i < scored.size()) {
    size_t j = i;
    int64_t pos_in_group = 0;
    while (j < scored.size() && scored[j].first == scored[i].first) {
      pos_in_group += scored[j].second ? 1 : 0;
      ++j;
    }
    const double avg_rank = 0.5 * (static_cast<double>(i + 1) + static_cast<double>(j));
    rank_sum += avg_rank * static_cast<double>(pos_in_group);
    i = j;
  }
  const double p = static_cast<double>(pos), q = static_cast<double>(neg);
  return (rank_sum - p * (p + 1) / 2) / (p * q);
}

}  // namespace

double accuracy(const Tensor& logits_or_probs, const std::vector<int>& labels) {
  const ScoreDims d = check_inputs("accuracy", logits_or_probs, labels);
  if (d.n == 0) return kNaN;
  int64_t correct = 0;
  for (int64_t i = 0; i < d.n; ++i) {
    if (predict_row(logits_or_probs.data() + i * d.cols, d.cols) == labels[static_cast<size_t>(i)]) ++correct;
  }
  return static_cast<double>(correct) / static_cast<double>(d.n);
}

std::vector<double> roc_auc_one_vs_rest(const Tensor& scores, const std::vector<int>& labels) {
  const ScoreDims d = check_inputs("roc_auc_one_vs_rest", scores, labels);
  for (int64_t k = 0; k < scores.size(); ++k) {
    if (std::isnan(scores[k])) {
      throw InputError("roc_auc_one_vs_rest: score at sample " + std::to_string(k / d.cols) + ", class " +
                       std::to_string(k % d.cols) + " is NaN");
    }
  }
  // A binary logit gives one curve, for class 1; otherwise column c scores class c.
  const int64_t curves = d.cols;
  std::vector<double> out;
  out.reserve(static_cast<size_t>(curves));
  for (int64_t c = 0; c < curves; ++c) {
    const int positive_label = d.cols == 1 ? 1 : static_cast<int>(c);
    std::vector<std::pair<float, bool>> scored(static_cast<size_t>(d.n));
    for (int64_t i = 0; i < d.n; ++i) {
      scored[static_cast<size_t>(i)] = {scores[i * d.cols + c],
                                        labels[static_cast<size_t>(i)] == positive_label};
    }
    out.push_back(auc_of(std::move(scored)));
  }
  return out;
}

std::vector<std::vector<int64_t>> confusion_matrix(const Tensor& scores, const std::vector<int>& labels,
                                                   int num_classes) {
  const ScoreDims d = check_inputs("confusion_matrix", scores, labels);
  if (num_classes != d.classes) {
    throw ShapeError("confusion_matrix: num_classes is " + std::to_string(num_classes) +
                     " but scores of shape " + shape_str(scores.shape()) + " have " +
                     std::to_string(d.classes) + " classes" + (d.cols == 1 ? " (binary logit)" : ""));
  }
  const size_t k = static_cast<size_t>(num_classes);
  std::vector<std::vector<int64_t>> counts(k, std::vector<int64_t>(k, 0));
  for (int64_t i = 0; i < d.n; ++i) {
    const int pred = predict_row(scores.data() + i * d.cols, d.cols);
    ++counts[static_cast<size_t>(labels[static_cast<size_t>(i)])][static_cast<size_t>(pred)];
  }
  return counts;
}

double mse(const Tensor& pred, const Tensor& target) {
  if (pred.shape() != target.shape()) {
    throw ShapeError("mse: prediction shape " + shape_str(pred.shape()) + " differs from target shape " +
                     shape_str(target.shape()));
  }
  if (pred.size() == 0) return kNaN;
  double sum = 0;
  for (int64_t i = 0; i < pred.size(); ++i) {
    const double e = static_cast<double>(pred[i]) - static_cast<double>(target[i]);
    sum += e * e;
  }
  return sum / static_cast<double>(pred.size());
}

}  // namespace kiln

namespace kiln {

namespace {
void check_finite(const char* fn, const std::vector<double>& v, const char* what) {
  for (size_t i = 0; i < v.size(); ++i)
    if (std::isnan(v[i]))
      throw InputError(std::string(fn) + ": " + what + " score " + std::to_string(i) + " is NaN");
}
}  // namespace

double roc_auc(const std::vector<double>& background, const std::vector<double>& signal) {
  check_finite("roc_auc", background, "background");
  check_finite("roc_auc", signal, "signal");
  std::vector<std::pair<double, bool>> scored;
  scored.reserve(background.size() + signal.size());
  for (double b : background) scored.emplace_back(b, false);
  for (double s : signal) scored.emplace_back(s, true);
  return auc_of(std::move(scored));
}

double rate_threshold(std::vector<double> background, double rate) {
  const double n = static_cast<double>(background.size());
  if (!(rate > 0 && rate < 1))
    throw InputError("rate_threshold: the rate must be in (0, 1), got " + std::to_string(rate));
  if (n * rate < 1) return kNaN;
  // The k-th largest background score with k = floor(rate * n): at most k background samples lie above it.
  const size_t k = static_cast<size_t>(std::floor(rate * n));
  std::nth_element(background.begin(), background.begin() + static_cast<std::ptrdiff_t>(k), background.end(),
                   std::greater<double>());
  return background[k];
}

double efficiency_above(const std::vector<double>& signal, double threshold) {
  if (signal.empty() || std::isnan(threshold)) return kNaN;
  int64_t above = 0;
  for (double s : signal) above += s > threshold ? 1 : 0;
  return static_cast<double>(above) / static_cast<double>(signal.size());
}

std::vector<std::pair<double, double>> roc_curve(const std::vector<double>& background,
                                                 const std::vector<double>& signal, int points) {
  std::vector<std::pair<double, double>> out;
  if (background.empty() || signal.empty() || points < 2) return out;
  std::vector<double> bg = background;
  std::sort(bg.begin(), bg.end(), std::greater<double>());
  const double n = static_cast<double>(bg.size());
  // Background rates spaced evenly on a log axis from 1/n to 1.
  for (int i = 0; i < points; ++i) {
    double rate = std::pow(n, -1.0 + static_cast<double>(i) / (points - 1));
    // (1 + 1e-12): 1/n * n rounds below 1 for some n (49, 98, ...), which would floor to the largest score.
    size_t k = std::min(bg.size() - 1, static_cast<size_t>(std::floor(rate * n * (1 + 1e-12))));
    double thr = bg[k];
    int64_t above_bg = 0;
    for (double b : bg) above_bg += b > thr ? 1 : 0;
    out.emplace_back(static_cast<double>(above_bg) / n, efficiency_above(signal, thr));
  }
  return out;
}

double pearson(const std::vector<double>& a, const std::vector<double>& b) {
  if (a.size() != b.size())
    throw ShapeError("pearson: " + std::to_string(a.size()) + " vs " + std::to_string(b.size()) + " values");
  if (a.size() < 2) return kNaN;
  double ma = 0, mb = 0;
  for (size_t i = 0; i < a.size(); ++i) ma += a[i], mb += b[i];
  ma /= static_cast<double>(a.size()), mb /= static_cast<double>(b.size());
  double sab = 0, saa = 0, sbb = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    sab += (a[i] - ma) * (b[i] - mb);
    saa += (a[i] - ma) * (a[i] - ma);
    sbb += (b[i] - mb) * (b[i] - mb);
  }
  return saa > 0 && sbb > 0 ? sab / std::sqrt(saa * sbb) : kNaN;
}

}  // namespace kiln
