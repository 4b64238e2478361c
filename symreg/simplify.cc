#include "symreg/simplify.h"

#include <cmath>

#include "symreg/scalar.h"

namespace kiln::symreg {
namespace {

// A subtree in postfix order, built bottom-up; the root is its last node.
using Sub = Tree;

bool is_const(const Sub& s) { return s.size() == 1 && s[0].op == Op::kConst; }
bool is_value(const Sub& s, float v) { return is_const(s) && s[0].value == v; }
Sub constant(double v) { return Sub{Node::constant(static_cast<float>(v))}; }

Sub join(Op op, const Sub& a, const Sub* b = nullptr) {
  Sub out = a;
  if (b) out.insert(out.end(), b->begin(), b->end());
  Node n = Node::function(op);
  n.length = static_cast<uint16_t>(out.size() + 1);
  out.push_back(n);
  return out;
}

// The operands of a binary root: first and second subtree.
void split(const Sub& s, Sub& a, Sub& b) {
  int last = static_cast<int>(s.size()) - 2;
  int b_begin = last + 1 - s[last].length;
  a.assign(s.begin(), s.begin() + b_begin);
  b.assign(s.begin() + b_begin, s.end() - 1);
}

bool finite_float(double v) { return std::isfinite(static_cast<float>(v)); }

Sub simplify_binary(Op op, Sub a, Sub b) {
  if (is_const(a) && is_const(b)) {
    double v = apply_op(op, a[0].value, b[0].value);
    if (finite_float(v)) return constant(v);
    return join(op, a, &b);
  }
  // Canonical order: constant second for commutative ops.
  if ((op == Op::kAdd || op == Op::kMul) && is_const(a)) std::swap(a, b);
  switch (op) {
    case Op::kAdd:
      if (is_value(b, 0)) return a;
      if (is_const(b) && a.back().op == Op::kAdd) {  // (x + c1) + c2
        Sub x, c1;
        split(a, x, c1);
        if (is_const(c1)) return simplify_binary(Op::kAdd, x, constant(double(c1[0].value) + b[0].value));
      }
      if (is_const(b) && a.back().op == Op::kSub) {  // (x - c1) + c2
        Sub x, c1;
        split(a, x, c1);
        if (is_const(c1)) return simplify_binary(Op::kSub, x, constant(double(c1[0].value) - b[0].value));
      }
      break;
    case Op::kSub:
      if (is_value(b, 0)) return a;
      if (a == b) return constant(0);
      if (is_const(b) && a.back().op == Op::kAdd) {  // (x + c1) - c2
        Sub x, c1;
        split(a, x, c1);
        if (is_const(c1)) return simplify_binary(Op::kAdd, x, constant(double(c1[0].value) - b[0].value));
      }
      break;
    case Op::kMul:
      if (is_value(b, 1)) return a;
      if (is_value(b, 0)) return constant(0);
      if (is_const(b) && a.back().op == Op::kMul) {  // (x * c1) * c2
        Sub x, c1;
        split(a, x, c1);
        if (is_const(c1)) return simplify_binary(Op::kMul, x, constant(double(c1[0].value) * b[0].value));
      }
      break;
    case Op::kDiv:
      if (is_value(b, 1)) return a;
      if (is_value(a, 0)) return constant(0);
      if (a == b) return constant(1);
      break;
    default:
      break;
  }
  return join(op, a, &b);
}

Sub simplify_at(const Tree& t, int i) {
  const Node& n = t[i];
  if (n.arity == 0) return Sub{Node{n.value, 1, n.feature, n.op, 0}};
  int c[2];
  children(t, i, c);
  Sub a = simplify_at(t, c[0]);
  if (n.arity == 2) return simplify_binary(n.op, std::move(a), simplify_at(t, c[1]));
  if (is_const(a)) {
    double v = apply_op(n.op, a[0].value);
    if (finite_float(v)) return constant(v);
  }
  if (n.op == Op::kNeg && a.back().op == Op::kNeg) return Sub(a.begin(), a.end() - 1);
  return join(n.op, a);
}

}  // namespace

Tree simplify(const Tree& t) {
  Tree s = simplify_at(t, static_cast<int>(t.size()) - 1);
  update_lengths(s);
  return s;
}

}  // namespace kiln::symreg
