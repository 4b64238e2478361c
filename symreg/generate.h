// Random expressions: leaves, and trees grown to a node budget (used to seed populations, by the subtree
// mutation, and by the throughput benchmark).
//
//   Tree t = random_tree(rng, ops, /*features=*/10, /*max_length=*/64);   // 1..64 nodes
#pragma once
#include "symreg/ops.h"
#include "symreg/rng.h"
#include "symreg/tree.h"

namespace kiln::symreg {

struct LeafOptions {
  double p_const = 0.3;                // probability that a leaf is a constant
  double const_lo = -2, const_hi = 2;  // initial constants are uniform in [lo, hi)
};

Node random_leaf(Rng& rng, int features, const LeafOptions& lo = {});

// A tree of at most max_length nodes (exactly max_length when the operator arities allow it): binary
// nodes split the remaining budget uniformly, unary nodes are chosen with probability p_unary (or when one
// node of budget is left over). Only operators allowed in `ops` appear.
Tree random_tree(Rng& rng, const OpSet& ops, int features, int max_length, const LeafOptions& lo = {},
                 double p_unary = 0.2);

}  // namespace kiln::symreg
