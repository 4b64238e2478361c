// A plain recursive evaluator of one row in double precision: the independent reference the tests compare
// the batched float evaluator with, and what constant folding uses. Same semantics as ops.h (table ops
// read their float tables).
//
//   double v = eval_scalar(tree, {0.5, 1.0});   // x0 = 0.5, x1 = 1.0
#pragma once
#include <vector>

#include "symreg/tree.h"

namespace kiln::symreg {

// op applied to a (and b for binary ops), in double.
double apply_op(Op op, double a, double b = 0);

// The value of the subtree ending at node i (the whole tree by default) for one row of features.
double eval_scalar(const Tree& t, const std::vector<double>& x, int i = -1);

}  // namespace kiln::symreg
