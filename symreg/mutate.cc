#include "symreg/mutate.h"

namespace kiln::symreg {

bool within_limits(const Tree& t, const OpSet& ops, const Limits& lim) {
  if (t.empty() || static_cast<int>(t.size()) > std::min(lim.max_length, kMaxLength)) return false;
  if (complexity(t, ops) > lim.max_complexity) return false;
  if (depth(t) > lim.max_depth) return false;
  for (const Node& n : t)
    if (n.arity > 0 && !ops.allowed(n.op)) return false;
  return !ops.has_nesting_rules() || !violates_nesting(t, ops);
}

Tree subtree(const Tree& t, int i) { return Tree(t.begin() + subtree_begin(t, i), t.begin() + i + 1); }

Tree replace_subtree(const Tree& t, int i, const Tree& sub) {
  Tree out(t.begin(), t.begin() + subtree_begin(t, i));
  out.insert(out.end(), sub.begin(), sub.end());
  out.insert(out.end(), t.begin() + i + 1, t.end());
  if (out.size() > kMaxLength) return t;
  update_lengths(out);
  return out;
}

const char* mutation_name(Mutation m) {
  static const char* names[] = {"point", "constants", "subtree", "hoist", "insert", "delete"};
  return names[static_cast<int>(m)];
}

namespace {

int random_node(Rng& rng, const Tree& t) { return rng.below(static_cast<int>(t.size())); }

// A random operator node, or -1 when the tree is a single leaf.
int random_operator(Rng& rng, const Tree& t) {
  int ops = 0;
  for (const Node& n : t) ops += n.arity > 0;
  if (ops == 0) return -1;
  int k = rng.below(ops);
  for (int i = 0; i < static_cast<int>(t.size()); ++i)
    if (t[i].arity > 0 && k-- == 0) return i;
  return -1;
}

Op pick(Rng& rng, const std::vector<Op>& v) {
  return v[static_cast<size_t>(rng.below(static_cast<int>(v.size())))];
}

Tree point(Rng& rng, const Tree& t, const OpSet& ops, int features) {
  Tree out = t;
  Node& n = out[static_cast<size_t>(random_node(rng, t))];
  if (n.op == Op::kConst) {
    n.value = rng.chance(0.2) ? -n.value : static_cast<float>(n.value * (1 + 0.5 * rng.normal()));
  } else if (n.op == Op::kVar) {
    if (features > 0) n.feature = static_cast<uint16_t>(rng.below(features));
  } else {
    const auto& same = n.arity == 1 ? ops.unary() : ops.binary();
    if (!same.empty()) n.op = pick(rng, same);
  }
  return out;
}

Tree constants(Rng& rng, const Tree& t) {
  Tree out = t;
  for (Node& n : out)
    if (n.op == Op::kConst)
      n.value = static_cast<float>(n.value * (1 + 0.1 * rng.normal()) + 0.01 * rng.normal());
  return out;
}

// The subtree s ending at node i of t becomes s op u or u op s (op a random binary operator).
Tree combine_at(Rng& rng, const Tree& t, int i, const Tree& u, const OpSet& ops) {
  Tree s = subtree(t, i);
  if (rng.chance(0.5))
    s.insert(s.end(), u.begin(), u.end());
  else
    s.insert(s.begin(), u.begin(), u.end());
  s.push_back(Node::function(pick(rng, ops.binary())));
  if (s.size() > kMaxLength) return t;
  update_lengths(s);
  return replace_subtree(t, i, s);
}

// The new operand is a random tree of 1 to 5 nodes (a leaf, f(leaf), leaf op leaf, x * x + c, ...): one
// step builds x + x * x from x, or (x + 1) * (x * x + c) from x + 1, which single leaves need several
// steps (and surviving intermediates) for.
Tree insert(Rng& rng, const Tree& t, const OpSet& ops, int features) {
  int i = random_node(rng, t);
  bool unary = !ops.unary().empty() && (ops.binary().empty() || rng.chance(0.3));
  if (!unary) return combine_at(rng, t, i, random_tree(rng, ops, features, 1 + rng.below(5)), ops);
  Tree s = subtree(t, i);
  s.push_back(Node::function(pick(rng, ops.unary())));
  if (s.size() > kMaxLength) return t;
  update_lengths(s);
  return replace_subtree(t, i, s);
}

}  // namespace

Tree mutate_with(Mutation m, Rng& rng, const Tree& t, const OpSet& ops, int features) {
  switch (m) {
    case Mutation::kPoint:
      return point(rng, t, ops, features);
    case Mutation::kConstants:
      return constants(rng, t);
    case Mutation::kSubtree: {
      int i = random_node(rng, t);
      return replace_subtree(t, i, random_tree(rng, ops, features, 1 + rng.below(7)));
    }
    case Mutation::kHoist: {
      int i = random_operator(rng, t);
      if (i < 0) return t;
      int b = subtree_begin(t, i), j = b + rng.below(i - b);  // a proper descendant of i
      return replace_subtree(t, i, subtree(t, j));
    }
    case Mutation::kInsert:
      return insert(rng, t, ops, features);
    case Mutation::kDelete: {
      int i = random_operator(rng, t);
      if (i < 0) return t;
      int c[2];
      children(t, i, c);
      return replace_subtree(t, i, subtree(t, c[t[i].arity == 2 ? rng.below(2) : 0]));
    }
    default:
      return t;
  }
}

Tree mutate(Rng& rng, const Tree& t, const OpSet& ops, int features, Mutation* used) {
  // Weights: point 4, constants 1 (when there are constants), subtree 3, hoist 1, insert 3, delete 2.
  static const double w[] = {4, 1, 3, 1, 3, 2};
  double total = 0;
  bool has_const = num_constants(t) > 0;
  for (int k = 0; k < static_cast<int>(Mutation::kCount); ++k)
    total += (k == static_cast<int>(Mutation::kConstants) && !has_const) ? 0 : w[k];
  double u = rng.uniform() * total;
  Mutation m = Mutation::kPoint;
  for (int k = 0; k < static_cast<int>(Mutation::kCount); ++k) {
    double wk = (k == static_cast<int>(Mutation::kConstants) && !has_const) ? 0 : w[k];
    if (u < wk) {
      m = static_cast<Mutation>(k);
      break;
    }
    u -= wk;
  }
  if (used) *used = m;
  return mutate_with(m, rng, t, ops, features);
}

Tree crossover(Rng& rng, const Tree& a, const Tree& b) {
  return replace_subtree(a, random_node(rng, a), subtree(b, random_node(rng, b)));
}

Tree graft(Rng& rng, const Tree& a, const Tree& b, const OpSet& ops) {
  if (ops.binary().empty()) return a;
  return combine_at(rng, a, random_node(rng, a), subtree(b, random_node(rng, b)), ops);
}

}  // namespace kiln::symreg
