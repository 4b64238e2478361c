// Fitting an expression to a problem: Levenberg-Marquardt over its constants with exact derivatives
// (reverse mode, eval.h), with linear scaling of the output (yhat = alpha f + beta, alpha and beta fitted
// jointly with the constants), then the scaling written into the tree and the tree simplified.
//
//   Problem pb{&x, y, {}, LossKind::kMse};
//   Evaluator ev;
//   Fitted f = fit(parse_expr("x0 * 1.5 + sin(x1)", names), pb, FitOptions{}, ev);
//   f.tree;   // the fitted, scaled, simplified expression; f.loss its loss on the problem
//
// The step solves (H + lambda diag(H)) d = -g with g = sum w l'(yhat) J and H = sum w l''(yhat) J J^T
// (loss.h); a step is kept when the loss drops (lambda / 3), refused otherwise (lambda * 4). For MSE this
// is textbook Levenberg-Marquardt; for the other losses a damped generalised Gauss-Newton step.
#pragma once
#include <cstdint>
#include <vector>

#include "symreg/columns.h"
#include "symreg/eval.h"
#include "symreg/loss.h"
#include "symreg/tree.h"

namespace kiln::symreg {

struct Problem {
  const Columns* x = nullptr;
  std::vector<float> y;  // [rows] targets (+-1 for l2_margin and logistic)
  std::vector<float> w;  // [rows] sample weights; empty = all 1
  LossKind loss = LossKind::kMse;
  int64_t rows() const { return x ? x->rows() : 0; }
};

struct FitOptions {
  int iterations = 10;  // LM iterations over the constants (0: only the linear scaling)
  bool linear_scaling = true;
  // Losses at or below this are ties (front.h): snapping a constant to a multiple of 1/2 is kept when the
  // loss stays within the floor, since below it a relative test compares float rounding noise.
  double loss_floor = 0;
};

struct Fitted {
  Tree tree;
  double loss = 0;
  double node_evals = 0;  // tree length x rows, summed over every evaluation made
};

// lm: the rows the LM iterations see (default: pb itself); the returned loss is always on pb.
Fitted fit(const Tree& t, const Problem& pb, const FitOptions& opt, Evaluator& ev,
           const Problem* lm = nullptr);

// A problem on a fixed random subset of at most `rows` rows of pb (pb's rows when it has no more); the
// subset's columns are stored in *storage.
Problem row_subset(const Problem& pb, int64_t rows, uint64_t seed, Columns* storage);

// The loss of t as it stands (no fitting).
double evaluate_loss(const Tree& t, const Problem& pb, Evaluator& ev, float* scratch_padded = nullptr);

}  // namespace kiln::symreg
