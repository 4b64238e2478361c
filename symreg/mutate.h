// Variation operators on postfix trees. Each takes the Rng explicitly and returns a new tree; limits are
// checked by the caller (within_limits), which retries or falls back to the parent.
//
//   point     one node changes: an operator to another of the same arity, a variable to another, a
//             constant scaled by (1 + 0.5 N(0,1)) or negated
//   constants every constant jittered by a relative N(0, 0.1)
//   subtree   a random subtree replaced by a fresh random tree of up to 7 nodes
//   hoist     a random operator's subtree replaced by one of its own subtrees (shrinks)
//   insert    a random subtree s becomes u(s), or s (op) r / r (op) s with r a random tree of 1-5 nodes
//   delete    a random operator replaced by one of its operands (shrinks)
//   crossover a random subtree of `a` replaced by a random subtree of `b`
//   graft     a random subtree s of `a` becomes s (op) r / r (op) s with r a random subtree of `b`: two
//             partial solutions joined, log(x + 1) and x * x + 1 into log((x + 1) * (x * x + 1)), or two
//             terms into a sum, where crossover would have to drop one of them
//
//   Tree child = mutate(rng, parent, ops, features);
#pragma once
#include "symreg/generate.h"

namespace kiln::symreg {

struct Limits {
  int max_complexity = 30;
  int max_depth = 10;
  int max_length = 128;
};

bool within_limits(const Tree& t, const OpSet& ops, const Limits& lim);

// t with the subtree ending at node i replaced by `sub` (lengths recomputed).
Tree replace_subtree(const Tree& t, int i, const Tree& sub);
// The subtree ending at node i, as its own tree.
Tree subtree(const Tree& t, int i);

enum class Mutation { kPoint, kConstants, kSubtree, kHoist, kInsert, kDelete, kCount };
const char* mutation_name(Mutation m);

Tree mutate(Rng& rng, const Tree& t, const OpSet& ops, int features, Mutation* used = nullptr);
Tree mutate_with(Mutation m, Rng& rng, const Tree& t, const OpSet& ops, int features);
Tree crossover(Rng& rng, const Tree& a, const Tree& b);
Tree graft(Rng& rng, const Tree& a, const Tree& b, const OpSet& ops);

}  // namespace kiln::symreg
