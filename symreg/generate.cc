#include "symreg/generate.h"

#include "engine/check.h"

namespace kiln::symreg {

Node random_leaf(Rng& rng, int features, const LeafOptions& lo) {
  if (features == 0 || rng.chance(lo.p_const))
    return Node::constant(static_cast<float>(rng.uniform(lo.const_lo, lo.const_hi)));
  return Node::variable(rng.below(features));
}

namespace {

void grow(Tree& out, Rng& rng, const OpSet& ops, int features, int budget, const LeafOptions& lo,
          double p_unary) {
  const auto& un = ops.unary();
  const auto& bin = ops.binary();
  bool can_unary = !un.empty() && budget >= 2;
  bool can_binary = !bin.empty() && budget >= 3;
  if (!can_unary && !can_binary) {
    out.push_back(random_leaf(rng, features, lo));
    return;
  }
  // A unary node when the budget is even and only unary nodes can use it all, or by chance.
  bool unary = can_unary && (!can_binary || rng.chance(p_unary));
  if (unary) {
    grow(out, rng, ops, features, budget - 1, lo, p_unary);
    out.push_back(Node::function(un[static_cast<size_t>(rng.below(static_cast<int>(un.size())))]));
    return;
  }
  // Without unary operators only odd lengths are reachable: split an odd budget into two odd halves so
  // that the tree uses all of it.
  if (un.empty() && budget % 2 == 0) --budget;
  int left = un.empty() ? 1 + 2 * rng.below((budget - 1) / 2) : 1 + rng.below(budget - 2);
  grow(out, rng, ops, features, left, lo, p_unary);
  grow(out, rng, ops, features, budget - 1 - left, lo, p_unary);
  out.push_back(Node::function(bin[static_cast<size_t>(rng.below(static_cast<int>(bin.size())))]));
}

}  // namespace

Tree random_tree(Rng& rng, const OpSet& ops, int features, int max_length, const LeafOptions& lo,
                 double p_unary) {
  KILN_CHECK(max_length >= 1 && max_length <= kMaxLength, "max_length " + std::to_string(max_length));
  Tree t;
  t.reserve(static_cast<size_t>(max_length));
  grow(t, rng, ops, features, max_length, lo, p_unary);
  update_lengths(t);
  return t;
}

}  // namespace kiln::symreg
