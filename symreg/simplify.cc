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

// s = x op c with a constant second operand: x and c.
bool op_const(const Sub& s, Op op, Sub& x, double& c) {
  if (s.back().op != op) return false;
  Sub k;
  split(s, x, k);
  if (!is_const(k)) return false;
  c = k[0].value;
  return true;
}

// s = c op x with a constant first operand: c and x.
bool const_op(const Sub& s, Op op, double& c, Sub& x) {
  if (s.back().op != op) return false;
  Sub k;
  split(s, k, x);
  if (!is_const(k)) return false;
  c = k[0].value;
  return true;
}

Sub simplify_binary(Op op, Sub a, Sub b);
Sub bin(Op op, const Sub& a, double c) { return simplify_binary(op, a, constant(c)); }

// Constants move towards the root, where they merge: every sum and product ends up with at most one
// constant term or factor, as the last operand. So (x + 3) * 2 + 1 and x * 2 + 7 are one expression with
// one complexity (and one structure for the search's duplicate test), however the variation built it.
Sub simplify_binary(Op op, Sub a, Sub b) {
  if (is_const(a) && is_const(b)) {
    double v = apply_op(op, a[0].value, b[0].value);
    if (finite_float(v)) return constant(v);
    return join(op, a, &b);
  }
  // Canonical order: constant second for commutative ops.
  if ((op == Op::kAdd || op == Op::kMul) && is_const(a)) std::swap(a, b);
  Sub u, v;
  double c = 0;
  const bool kb = is_const(b);
  const double k = kb ? b[0].value : 0;
  switch (op) {
    case Op::kAdd:
      if (kb) {
        if (k == 0) return a;
        if (op_const(a, Op::kAdd, u, c) && finite_float(c + k)) return bin(Op::kAdd, u, c + k);
        if (const_op(a, Op::kSub, c, v) && finite_float(c + k))  // (c - v) + k
          return simplify_binary(Op::kSub, constant(c + k), v);
        break;
      }
      if (op_const(a, Op::kAdd, u, c)) return bin(Op::kAdd, simplify_binary(Op::kAdd, u, b), c);
      if (op_const(b, Op::kAdd, v, c)) return bin(Op::kAdd, simplify_binary(Op::kAdd, a, v), c);
      if (const_op(a, Op::kSub, c, u)) return bin(Op::kAdd, simplify_binary(Op::kSub, b, u), c);
      if (const_op(b, Op::kSub, c, v)) return bin(Op::kAdd, simplify_binary(Op::kSub, a, v), c);
      break;
    case Op::kSub:
      if (a == b) return constant(0);
      if (kb) return bin(Op::kAdd, a, -k);  // x - c -> x + (-c): one form for a constant offset
      if (is_const(a)) {
        const double k0 = a[0].value;
        if (op_const(b, Op::kAdd, v, c) && finite_float(k0 - c))  // k0 - (v + c)
          return simplify_binary(Op::kSub, constant(k0 - c), v);
        if (const_op(b, Op::kSub, c, v) && finite_float(k0 - c)) return bin(Op::kAdd, v, k0 - c);
        break;
      }
      if (op_const(a, Op::kAdd, u, c)) return bin(Op::kAdd, simplify_binary(Op::kSub, u, b), c);
      if (op_const(b, Op::kAdd, v, c)) return bin(Op::kAdd, simplify_binary(Op::kSub, a, v), -c);
      if (const_op(a, Op::kSub, c, u))  // (c - u) - b -> c - (u + b)
        return simplify_binary(Op::kSub, constant(c), simplify_binary(Op::kAdd, u, b));
      if (const_op(b, Op::kSub, c, v))  // a - (c - v) -> (a + v) + -c
        return bin(Op::kAdd, simplify_binary(Op::kAdd, a, v), -c);
      break;
    case Op::kMul:
      if (kb) {
        if (k == 1) return a;
        if (k == 0) return constant(0);
        if (op_const(a, Op::kMul, u, c) && finite_float(c * k)) return bin(Op::kMul, u, c * k);
        if (op_const(a, Op::kAdd, u, c) && finite_float(c * k))  // (u + c) k -> u k + c k
          return bin(Op::kAdd, bin(Op::kMul, u, k), c * k);
        if (const_op(a, Op::kSub, c, v) && finite_float(c * k))  // (c - v) k -> v (-k) + c k
          return bin(Op::kAdd, bin(Op::kMul, v, -k), c * k);
        break;
      }
      if (op_const(a, Op::kMul, u, c)) return bin(Op::kMul, simplify_binary(Op::kMul, u, b), c);
      if (op_const(b, Op::kMul, v, c)) return bin(Op::kMul, simplify_binary(Op::kMul, a, v), c);
      break;
    case Op::kDiv:
      if (is_value(b, 1)) return a;
      if (is_value(a, 0)) return constant(0);
      if (a == b) return constant(1);
      if (kb && k != 0 && finite_float(1 / k)) return bin(Op::kMul, a, 1 / k);
      if (op_const(a, Op::kMul, u, c)) return bin(Op::kMul, simplify_binary(Op::kDiv, u, b), c);
      if (op_const(b, Op::kMul, v, c) && c != 0 && finite_float(1 / c))
        return bin(Op::kMul, simplify_binary(Op::kDiv, a, v), 1 / c);
      break;
    default:
      break;
  }
  return join(op, a, &b);
}

// The argument u + c or c - u of sin and cos with c reduced to [-pi, pi]: the search drifts phases by
// whole turns (sin(x + 21794.1)), which float32 evaluates thousands of times less precisely, and distinct
// turns would be distinct constants of one function.
Sub reduce_phase(Sub a) {
  constexpr double kTurn = 6.283185307179586;
  Sub u;
  double c = 0;
  if (op_const(a, Op::kAdd, u, c) && std::fabs(c) > kTurn / 2)
    return bin(Op::kAdd, u, std::remainder(c, kTurn));
  if (const_op(a, Op::kSub, c, u) && std::fabs(c) > kTurn / 2)
    return simplify_binary(Op::kSub, constant(std::remainder(c, kTurn)), u);
  return a;
}

// u >= 0 (or NaN) for every input: its root is an operator with a nonnegative range, a constant >= 0, a
// product v * v of one subtree with itself, or a sum, product or quotient of such terms (x * x + 1, the
// argument of N7's log). IEEE rounding keeps these signs (a sum or product of nonnegative floats is
// nonnegative; 0 * inf is NaN, which the rewrites keep NaN).
bool nonnegative(const Sub& u) {
  switch (u.back().op) {
    case Op::kExp:
    case Op::kSquare:
    case Op::kSqrt:
    case Op::kAbs:
    case Op::kGauss:
    case Op::kLutExp:
    case Op::kLutSqrt:
    case Op::kLutGauss:
      return true;
    case Op::kConst:  // not -0: exp(log(-0)) is +0, and 1/+0 and 1/-0 differ
      return u.back().value >= 0 && !std::signbit(u.back().value);
    case Op::kAdd:
    case Op::kMul:
    case Op::kDiv: {
      Sub a, b;
      split(u, a, b);
      return (u.back().op == Op::kMul && a == b) || (nonnegative(a) && nonnegative(b));
    }
    default:
      return false;
  }
}

// Inverse pairs and sign-blind operators, exact in real arithmetic for every input under kiln's protected
// operators: log(u) is log(|u|) (log(0) = -inf) and sqrt(u) is sqrt(|u|), so log is defined for every
// u != 0 and exp(log(u)) = |u| (also at u = 0: exp(-inf) = 0), which is u only when u >= 0. The searches
// find log(exp(x)) * c as often as x * c, and the front should not carry the longer form. `op` is the
// outer operator, `a` its simplified operand; returns true and sets `out` when a rule applies.
//   log(exp(u)), inv(inv(u)), neg(neg(u))           -> u
//   exp(log(u)), square(sqrt(u)), sqrt(square(u))  -> u          when u >= 0 everywhere (they give |u|;
//                                                                 sqrt(square(u)) = |u| is not rewritten
//                                                                 to abs(u): simplify adds no operator)
// Float32 evaluation differs only by rounding where the original is finite (log(exp(u)) is u to an ulp
// of exp(u)); where it is not (exp(u) overflows for u > 88.7, 1/u for |u| < 3e-39) the original's loss
// was infinite and the rewrite makes a finite expression of it, which is then judged as it stands.
//   abs(u)                                          -> u          when u >= 0 everywhere
//   abs, sqrt, log, square, cos, gauss of neg(u)    -> of u       (even in u, or acting on |u|)
//   abs, sqrt, log, square, cos, gauss of abs(u)    -> of u
bool inverse_pair(Op op, const Sub& a, Sub& out) {
  const Op in = a.back().op;
  const Sub inner = a.size() > 1 && arity(in) == 1 ? Sub(a.begin(), a.end() - 1) : Sub{};
  auto sign_blind = [](Op o) {
    return o == Op::kAbs || o == Op::kSqrt || o == Op::kLog || o == Op::kSquare || o == Op::kCos ||
           o == Op::kGauss;
  };
  if ((op == Op::kLog && in == Op::kExp) || (op == Op::kInv && in == Op::kInv) ||
      (op == Op::kNeg && in == Op::kNeg)) {
    out = inner;
    return true;
  }
  const bool undo = (op == Op::kExp && in == Op::kLog) || (op == Op::kSquare && in == Op::kSqrt) ||
                    (op == Op::kSqrt && in == Op::kSquare);
  if (undo && nonnegative(inner)) {
    out = inner;
    return true;
  }
  if (op == Op::kAbs && nonnegative(a)) {
    out = a;
    return true;
  }
  if (sign_blind(op) && (in == Op::kNeg || in == Op::kAbs)) {
    Sub x = inner;
    if (!inverse_pair(op, x, out)) out = join(op, x);
    return true;
  }
  return false;
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
  Sub reduced;
  if (inverse_pair(n.op, a, reduced)) return reduced;
  if (n.op == Op::kSin || n.op == Op::kCos) a = reduce_phase(std::move(a));
  return join(n.op, a);
}

}  // namespace

Tree simplify(const Tree& t) {
  Tree s = simplify_at(t, static_cast<int>(t.size()) - 1);
  update_lengths(s);
  return s;
}

}  // namespace kiln::symreg
