// Evaluation metrics computed from a model's outputs, in double precision. Nothing here records gradients.
//
// Scores are [N, C]: one row per sample, one column per class (logits or probabilities; every metric here
// depends only on the order of the scores, except mse). A single column ([N, 1], or a 1-d [N]) is a binary
// logit: the sample is predicted as class 1 when its score is > 0, and labels must be 0 or 1.
//
//   Tensor logits = model.forward(x);                         // [N, 10]
//   double acc = kiln::accuracy(logits, y);                   // fraction of rows whose argmax == label
//   std::vector<double> auc = kiln::roc_auc_one_vs_rest(logits, y);
//
// Bad input (row count differs from the label count, a label outside [0, C)) throws ShapeError / InputError
// naming the function and the values found.
#pragma once
#include <cstdint>
#include <utility>
#include <vector>

#include "engine/tensor.h"

namespace kiln {

// Fraction of samples whose predicted class (row argmax; the first maximum on ties) equals the label.
// NaN when there are no samples.
double accuracy(const Tensor& logits_or_probs, const std::vector<int>& labels);

// Exact ROC AUC of each class against the rest: the Mann-Whitney statistic, with tied scores given their
// average rank (a tie between a positive and a negative counts as half a correctly ordered pair).
// Returns C values; for a binary logit ([N, 1]) one value, the AUC of class 1. A class with no positive or
// no negative samples gets NaN. Throws InputError on a NaN score (it has no rank).
std::vector<double> roc_auc_one_vs_rest(const Tensor& scores, const std::vector<int>& labels);

// counts[true class][predicted class], num_classes x num_classes. num_classes must match the scores:
// C columns, or 2 for a binary logit.
std::vector<std::vector<int64_t>> confusion_matrix(const Tensor& scores, const std::vector<int>& labels,
                                                   int num_classes);

// Anomaly detection: one score per sample, higher = more anomalous.
// Exact ROC AUC of signal scoring above background (Mann-Whitney, ties count half); NaN if either is empty.
double roc_auc(const std::vector<double>& background, const std::vector<double>& signal);
// The threshold that keeps a background rate of at most `rate` (scores strictly above it pass), calibrated on
// the background alone: the floor(rate * N)-th largest background score. NaN when rate * N < 1 (too few
// background samples to measure that rate).
double rate_threshold(std::vector<double> background, double rate);
// Fraction of `signal` strictly above `threshold`; NaN for a NaN threshold or no signal.
double efficiency_above(const std::vector<double>& signal, double threshold);
// (background rate, signal efficiency) at `points` thresholds: the background scores whose ranks give rates
// spaced on a log axis from 1/N up to (N - 1)/N (the smallest background score keeps all but itself).
std::vector<std::pair<double, double>> roc_curve(const std::vector<double>& background,
                                                 const std::vector<double>& signal, int points = 60);
// Pearson correlation; NaN with fewer than 2 values or a constant side. ShapeError on a length mismatch.
double pearson(const std::vector<double>& a, const std::vector<double>& b);

// Mean of (pred - target)^2 over all elements; the shapes must be equal. NaN when both are empty.
double mse(const Tensor& pred, const Tensor& target);

}  // namespace kiln
