#include "symreg/scalar.h"

#include <cmath>

#include "engine/check.h"
#include "symreg/lut.h"

namespace kiln::symreg {

double apply_op(Op op, double a, double b) {
  switch (op) {
    case Op::kAdd:
      return a + b;
    case Op::kSub:
      return a - b;
    case Op::kMul:
      return a * b;
    case Op::kDiv:
      return a / b;
    case Op::kAq:
      return a / std::sqrt(1 + b * b);
    case Op::kPow:
      return std::pow(a, b);
    default:
      break;
  }
  if (is_lut(op)) return lut_table(op).lookup(static_cast<float>(a));
  return unary_reference(op, a);
}

double eval_scalar(const Tree& t, const std::vector<double>& x, int i) {
  if (i < 0) i = static_cast<int>(t.size()) - 1;
  const Node& n = t[i];
  if (n.op == Op::kConst) return n.value;
  if (n.op == Op::kVar) {
    KILN_CHECK(n.feature < x.size(), "variable x" + std::to_string(n.feature) + " beyond the row's " +
                                         std::to_string(x.size()) + " features");
    return x[n.feature];
  }
  int c[2];
  children(t, i, c);
  double a = eval_scalar(t, x, c[0]);
  return apply_op(n.op, a, n.arity == 2 ? eval_scalar(t, x, c[1]) : 0.0);
}

}  // namespace kiln::symreg
