// Expressions as postfix arrays of small plain nodes (Operon's layout). Every node stores the length of
// its subtree, so a subtree is the index range [i + 1 - length, i] and the root is the last node:
//
//   x0 * (x1 + 2)   ->   [x0, x1, 2, +, *]     lengths [1, 1, 1, 3, 5]
//
// For a binary node at i, its second operand is the subtree ending at i - 1 and its first operand the
// subtree ending at i - 1 - nodes[i - 1].length.
//
//   Tree t = parse_expr("x0 * (x1 + 2)", {"x0", "x1"});   // InputError on a syntax error
//   to_infix(t, names);                                    // "x0 * (x1 + 2)"
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "symreg/ops.h"

namespace kiln::symreg {

struct Node {
  float value = 0;       // the constant of a kConst node
  uint16_t length = 1;   // nodes in the subtree ending here, this one included
  uint16_t feature = 0;  // the column of a kVar node
  Op op = Op::kConst;
  uint8_t arity = 0;

  static Node constant(float v) { return Node{v, 1, 0, Op::kConst, 0}; }
  static Node variable(int f) { return Node{0, 1, static_cast<uint16_t>(f), Op::kVar, 0}; }
  static Node function(Op op) { return Node{0, 1, 0, op, static_cast<uint8_t>(symreg::arity(op))}; }
  bool operator==(const Node& o) const {
    return op == o.op && length == o.length && (op != Op::kConst || value == o.value) &&
           (op != Op::kVar || feature == o.feature);
  }
};

using Tree = std::vector<Node>;

constexpr int kMaxLength = 512;  // hard cap on nodes per tree (uint16 lengths, evaluator scratch)

// Recomputes every node's length from the arities; KILN_CHECK that the array is one well-formed tree.
void update_lengths(Tree& t);
// Index of the first node of the subtree ending at i.
inline int subtree_begin(const Tree& t, int i) { return i + 1 - t[i].length; }
// Children of node i, first operand first (the arity's worth of entries are valid).
void children(const Tree& t, int i, int out[2]);

int depth(const Tree& t);                         // a single leaf has depth 1
int complexity(const Tree& t, const OpSet& ops);  // sum of per-node complexities
int num_constants(const Tree& t);
// Does the tree break a forbidden nesting of `ops` (an operator inside the argument of another)?
bool violates_nesting(const Tree& t, const OpSet& ops);

// Infix text with the given variable names (x0, x1, ... for indices beyond them): minimal parentheses,
// constants with 6 significant digits (`precision` more for export round trips).
std::string to_infix(const Tree& t, const std::vector<std::string>& names, int precision = 6);

// Parses infix text: numbers, variable names from `names` (or x0, x1, ...), + - * / ^ (pow), unary minus,
// and f(a) / f(a, b) for every operator name of ops.h. Throws InputError naming the position.
Tree parse_expr(const std::string& text, const std::vector<std::string>& names);

// Structural hash (op, feature, and constant bits): equal trees hash equal.
uint64_t hash_tree(const Tree& t);
// The same without the constants' values: trees that differ only in their constants hash equal.
uint64_t hash_shape(const Tree& t);

}  // namespace kiln::symreg
