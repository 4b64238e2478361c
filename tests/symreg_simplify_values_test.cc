// Simplification never changes what the float32 evaluator computes, beyond rounding: random expressions
// with inverse pairs planted in them (log(exp(u)), exp(log(u * u + c)), inv(inv(u)), neg(neg(u)),
// sqrt(square(u)), square(sqrt(exp(u))), abs(u * u), constants to merge) are evaluated by the Evaluator
// before and after simplify() on random inputs.
//
// The tolerance. Every rewrite is an identity in real arithmetic wherever the original is finite, so the
// two float32 results differ only by their rounding: by at most E(t) + E(s), where E is a first-order bound
// on the float32 evaluation error of a tree, accumulated node by node in double (a constant or an
// operation's result rounds by u |value|; an operand's error is carried through the operation's
// derivative). u is 2^-24 for + - * / and 4 * 2^-24 for the transcendental kernels (Eigen's packet math is
// accurate to a few ulps), and the check allows twice the bound for the second-order terms. Inputs where
// some intermediate value of the original leaves [1e-30, 1e30] in magnitude (and is not 0) are skipped:
// there float overflow or underflow, not rounding, decides, and the first-order bound does not hold.
#include <doctest/doctest.h>

#include <cmath>
#include <string>

#include "symreg/eval.h"
#include "symreg/generate.h"
#include "symreg/mutate.h"
#include "symreg/scalar.h"
#include "symreg/simplify.h"

using namespace kiln::symreg;

namespace {

struct Bounded {
  double v = 0;  // value in double
  double e = 0;  // first-order bound on |float32 evaluation - v|
};

// d/da of a unary operator at a (kiln's semantics: sqrt and log act on |a|).
double derivative(Op op, double a) {
  switch (op) {
    case Op::kNeg:
      return -1;
    case Op::kInv:
      return -1 / (a * a);
    case Op::kSquare:
      return 2 * a;
    case Op::kSqrt:
      return std::copysign(0.5, a) / std::sqrt(std::fabs(a));
    case Op::kExp:
      return std::exp(a);
    case Op::kLog:
      return 1 / a;
    case Op::kSin:
      return std::cos(a);
    case Op::kCos:
      return -std::sin(a);
    case Op::kAbs:
      return a < 0 ? -1 : 1;
    case Op::kGauss:
      return -2 * a * std::exp(-a * a);
    default:
      FAIL("no derivative for ", op_info(op).name);
      return 0;
  }
}

// The value of node i of t on input x and E, the bound above; in_range turns false when an intermediate
// value is non-finite or outside [1e-30, 1e30] in magnitude (and not 0).
Bounded bound(const Tree& t, const std::vector<double>& x, int i, bool& in_range) {
  constexpr double kU = 0x1p-24;
  const Node& n = t[i];
  Bounded r;
  if (n.op == Op::kConst) {
    r = {n.value, kU * std::fabs(n.value)};  // a folded constant was rounded to float once
  } else if (n.op == Op::kVar) {
    r = {x[n.feature], 0};
  } else {
    int c[2];
    children(t, i, c);
    Bounded a = bound(t, x, c[0], in_range);
    if (n.arity == 2) {
      Bounded b = bound(t, x, c[1], in_range);
      r.v = apply_op(n.op, a.v, b.v);
      switch (n.op) {
        case Op::kAdd:
        case Op::kSub:
          r.e = a.e + b.e;
          break;
        case Op::kMul:
          r.e = std::fabs(b.v) * a.e + std::fabs(a.v) * b.e;
          break;
        default:  // kDiv
          r.e = a.e / std::fabs(b.v) + std::fabs(a.v) * b.e / (b.v * b.v);
      }
      r.e += kU * std::fabs(r.v);
    } else {
      r.v = apply_op(n.op, a.v);
      const bool arithmetic = n.op == Op::kNeg || n.op == Op::kInv || n.op == Op::kSquare ||
                              n.op == Op::kAbs || n.op == Op::kSqrt;
      r.e = std::fabs(derivative(n.op, a.v)) * a.e + (arithmetic ? 1 : 4) * kU * std::fabs(r.v);
    }
  }
  const double m = std::fabs(r.v);
  if (!std::isfinite(r.v) || !std::isfinite(r.e) || m > 1e30 || (m != 0 && m < 1e-30)) in_range = false;
  // A zero that is not a cancellation (a + b, a - b) or a zero operand passed on is an underflow: exp(-800)
  // is 0 in double, while float32 kernels may return a subnormal.
  if (r.v == 0 && n.arity > 0 && n.op != Op::kAdd && n.op != Op::kSub) {
    int c[2];
    children(t, i, c);
    bool zero_operand = false;
    for (int k = 0; k < n.arity; ++k) zero_operand |= eval_scalar(t, x, c[k]) == 0;
    if (!zero_operand) in_range = false;
  }
  return r;
}

Tree wrap(Op outer, Tree t, Op inner = Op::kConst) {
  if (inner != Op::kConst) t.push_back(Node::function(inner));
  t.push_back(Node::function(outer));
  update_lengths(t);
  return t;
}

// A random subtree s of t becomes one of the inverse pairs or mergeable forms of s (or of s * s + c, which
// is nonnegative), or exp(log(s)) / sqrt(square(s)), which are |s| and must not become s.
Tree plant(Rng& rng, const Tree& t) {
  const int i = rng.below(static_cast<int>(t.size()));
  Tree s = subtree(t, i), r;
  Tree ss = s;  // s * s + c, nonnegative by construction
  ss.insert(ss.end(), s.begin(), s.end());
  ss.push_back(Node::function(Op::kMul));
  ss.push_back(Node::constant(static_cast<float>(rng.uniform(0, 2))));
  ss.push_back(Node::function(Op::kAdd));
  update_lengths(ss);
  switch (rng.below(10)) {
    case 0:
      r = wrap(Op::kLog, s, Op::kExp);
      break;
    case 1:
      r = wrap(Op::kExp, ss, Op::kLog);
      break;
    case 2:
      r = wrap(Op::kInv, s, Op::kInv);
      break;
    case 3:
      r = wrap(Op::kNeg, s, Op::kNeg);
      break;
    case 4:
      r = wrap(Op::kSqrt, ss, Op::kSquare);
      break;
    case 5:
      r = wrap(Op::kSquare, wrap(Op::kExp, s), Op::kSqrt);
      break;
    case 6:
      r = wrap(Op::kAbs, ss);
      break;
    case 7:  // |s|, not s: must stay unless s >= 0 is provable
      r = wrap(Op::kExp, s, Op::kLog);
      break;
    case 8:
      r = wrap(Op::kSqrt, s, Op::kSquare);
      break;
    default: {  // c1 - (c2 - s): the constants merge
      r = {Node::constant(static_cast<float>(rng.uniform(-2, 2))),
           Node::constant(static_cast<float>(rng.uniform(-2, 2)))};
      r.insert(r.end(), s.begin(), s.end());
      r.push_back(Node::function(Op::kSub));
      r.push_back(Node::function(Op::kSub));
      update_lengths(r);
    }
  }
  return replace_subtree(t, i, r);
}

// Does t contain an operator `outer` applied directly to `inner`?
bool has_pair(const Tree& t, Op outer, Op inner) {
  for (int i = 1; i < static_cast<int>(t.size()); ++i)
    if (t[i].op == outer && t[i].arity == 1 && t[i - 1].op == inner) return true;
  return false;
}

}  // namespace

TEST_CASE("simplify keeps the evaluator's values within float32 rounding (random expressions and inputs)") {
  constexpr int kRows = 32;
  for (std::string set : {"+,-,*,/,sin,cos,exp,log", "+,-,*,/,exp,log,sqrt,square,abs,inv,neg,gauss"}) {
    CAPTURE(set);
    const OpSet ops = OpSet::parse(set);
    Rng rng(17);
    Evaluator ev;
    AlignedFloats before(static_cast<size_t>(padded_rows(kRows))),
        after(static_cast<size_t>(padded_rows(kRows)));
    int compared = 0, shrunk = 0, worst_rows = 0;
    double worst = 0;  // the largest |difference| / allowed seen: how tight the bound is in practice
    for (int k = 0; k < 600; ++k) {
      Tree t = random_tree(rng, ops, 2, 1 + rng.below(15), LeafOptions{0.4, -2, 2});
      for (int p = rng.below(3); p >= 0; --p) t = plant(rng, t);
      const Tree s = simplify(t);
      INFO(to_infix(t, {"x", "y"}, 9) << "  ->  " << to_infix(s, {"x", "y"}, 9));
      shrunk += s.size() < t.size();
      // What must never survive simplification, whatever the operand.
      CHECK_FALSE(has_pair(s, Op::kLog, Op::kExp));
      CHECK_FALSE(has_pair(s, Op::kInv, Op::kInv));
      CHECK_FALSE(has_pair(s, Op::kNeg, Op::kNeg));
      Columns x(kRows, 2);
      for (int r = 0; r < kRows; ++r)
        for (int f = 0; f < 2; ++f) x.col(f)[r] = static_cast<float>(rng.uniform(-3, 3));
      ev.predict(t, x, before.data());
      ev.predict(s, x, after.data());
      for (int r = 0; r < kRows; ++r) {
        const std::vector<double> row = {x.col(0)[r], x.col(1)[r]};
        bool in_range = true;
        const double e = bound(t, row, static_cast<int>(t.size()) - 1, in_range).e +
                         bound(s, row, static_cast<int>(s.size()) - 1, in_range).e;
        if (!in_range || !std::isfinite(before[r])) continue;
        const double allowed = 2 * e, diff = std::fabs(double(before[r]) - after[r]);
        INFO("x = " << row[0] << ", y = " << row[1] << ": " << before[r] << " vs " << after[r] << ", allowed "
                    << allowed);
        CHECK(diff <= allowed);
        ++compared;
        if (allowed > 0) worst = std::max(worst, diff / allowed);
        worst_rows += diff > 0;
      }
    }
    MESSAGE(set << ": " << compared << " values compared, " << shrunk << " of 600 expressions shrunk, "
                << worst_rows << " not bit-identical, largest difference " << worst << " of the bound");
    CHECK(shrunk > 400);     // the planted pairs were removed
    CHECK(compared > 8000);  // most inputs were in range
  }
}
