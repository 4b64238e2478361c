// Simplification of an expression, bottom-up, never adding operators the tree did not use:
//   constant folding     op(c1, c2) -> c, f(c) -> c   (when the result is finite)
//   identities           x + 0, 0 + x, x - 0, x * 1, 1 * x, x / 1 -> x;  x * 0, 0 * x, 0 / x -> 0;
//                        x - x -> 0;  x / x -> 1;  neg(neg(x)) -> x
//   constant merging     (x + c1) + c2 -> x + (c1 + c2);  (x * c1) * c2 -> x * (c1 c2);
//                        (x + c1) - c2 -> x + (c1 - c2);  (x - c1) + c2 -> x - (c1 - c2)
//   canonical order      a constant operand of + and * goes second (c + x -> x + c), so equal
//                        expressions hash equal and the merging rules above see the constant.
// x - x and x / x compare subtrees structurally (after their own simplification).
//
//   Tree s = simplify(parse_expr("(x0 + 1) + 2 * 1", {}));   // x0 + 3
#pragma once
#include "symreg/tree.h"

namespace kiln::symreg {

Tree simplify(const Tree& t);

}  // namespace kiln::symreg
