// Simplification of an expression, bottom-up, never adding operators the tree did not use:
//   constant folding     op(c1, c2) -> c, f(c) -> c   (when the result is finite)
//   identities           x + 0, 0 + x, x - 0, x * 1, 1 * x, x / 1 -> x;  x * 0, 0 * x, 0 / x -> 0;
//                        x - x -> 0;  x / x -> 1
//   inverse pairs        log(exp(u)), inv(inv(u)), neg(neg(u)) -> u; exp(log(u)), square(sqrt(u)),
//                        sqrt(square(u)), abs(u) -> u when u >= 0 everywhere (exp, square, sqrt, abs, gauss
//                        or a constant >= 0 at its root, v * v, or a sum, product or quotient of such: log
//                        and sqrt are protected, log(u) = log(|u|), so exp(log(u)) = |u|); abs, sqrt, log,
//                        square, cos, gauss drop a neg or abs beneath them
//   constant merging     (x + c1) + c2 -> x + (c1 + c2);  (x * c1) * c2 -> x * (c1 c2);
//                        (c1 - x) + c2 -> (c1 + c2) - x;  c1 - (x + c2) -> (c1 - c2) - x
//   constant lifting     constants move up through sums and products to where they merge:
//                        (u + c) + v -> (u + v) + c;  (u + c) - v -> (u - v) + c;
//                        u - (v + c) -> (u - v) + -c;  (c - u) + v -> (v - u) + c;
//                        (c - u) - v -> c - (u + v);  u - (c - v) -> (u + v) + -c;  (u * c) * v -> (u * v) *
//                        c; (u * c) / v -> (u / v) * c;  u / (v * c) -> (u / v) * (1/c); (u + c1) * c2 -> u *
//                        c2 + c1 c2;  (c1 - u) * c2 -> u * -c2 + c1 c2
//   periodicity          sin(u + c), cos(u + c), sin(c - u), cos(c - u): c reduced to [-pi, pi]
//   canonical forms      a constant operand of + and * goes second (c + x -> x + c); x - c -> x + (-c);
//                        x / c -> x * (1/c); so equal expressions hash equal and the rules above see the
//                        constant. Folded constants are computed in double and must be finite in float.
// x - x and x / x compare subtrees structurally (after their own simplification). Every rule is an
// identity in real arithmetic wherever the original is finite; float32 results differ by rounding only
// (tests/symreg_simplify_values_test.cc bounds the difference).
//
//   Tree s = simplify(parse_expr("(x0 + 1) + 2 * 1", {}));   // x0 + 3
#pragma once
#include "symreg/tree.h"

namespace kiln::symreg {

Tree simplify(const Tree& t);

}  // namespace kiln::symreg
