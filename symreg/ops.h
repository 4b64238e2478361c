// The operator set of symbolic regression: every primitive an expression may contain, its arity, its
// default complexity and its name (as the CLI's --ops and the printed expressions spell it).
//
//   OpSet ops = OpSet::parse("+,-,*,/,sin", "sin=2");   // InputError naming an unknown operator
//   ops.complexity(Op::kSin);                           // 2
//
// Semantics (the evaluator, the derivatives and both code generators follow them exactly):
//   a / b      IEEE division. A candidate whose output is not finite on a training row (x/0, exp
//              overflow, log(0), pow of a negative base) gets an infinite loss and never survives, as in
//              PySR; the front therefore only holds expressions that are finite on the data.
//   aq(a, b)   analytic quotient a / sqrt(1 + b^2) (Ni, Drieberg, Rockett 2013): smooth and always
//              finite, the usual safe replacement for a protected division.
//   sqrt(a)    sqrt(|a|)  and  log(a) = log(|a|): domain-guarded by the absolute value (as the Korns
//              formulas write them), so only log(0) = -inf remains, rejected by the rule above.
//   pow(a, b)  powf(a, b) (NaN for a < 0 and non-integer b, rejected as above).
//   inv(a) = 1/a, square, cube, neg, abs, gauss(a) = exp(-a^2), tan, tanh, sin, cos, exp as in libm.
//   lut_f(a)   f read from a lookup table built as the HLS export builds it (see lut.h).
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace kiln::symreg {

enum class Op : uint8_t {
  kConst,
  kVar,
  // binary
  kAdd,
  kSub,
  kMul,
  kDiv,
  kAq,
  kPow,
  // unary
  kNeg,
  kInv,
  kSquare,
  kCube,
  kSqrt,
  kExp,
  kLog,
  kSin,
  kCos,
  kTan,
  kTanh,
  kAbs,
  kGauss,
  // unary, lookup tables
  kLutSin,
  kLutCos,
  kLutTan,
  kLutTanh,
  kLutExp,
  kLutLog,
  kLutSqrt,
  kLutGauss,
  kCount
};
constexpr int kNumOps = static_cast<int>(Op::kCount);

struct OpInfo {
  Op op;
  const char* name;  // as parsed and printed: "+", "sin", "lut_sin", ...
  int arity;         // 0, 1 or 2
  int complexity;    // default complexity
};

// One row per operator, in enum order; adding an operator without its row fails to compile.
const OpInfo& op_info(Op op);
extern const std::array<OpInfo, kNumOps> kOpTable;

inline int arity(Op op) { return op_info(op).arity; }
inline bool is_lut(Op op) { return op >= Op::kLutSin && op <= Op::kLutGauss; }
// The exact function a table op approximates (kLutSin -> kSin), for derivatives and printing.
Op lut_base(Op op);

// Operators allowed in a search, with their complexities, and nesting constraints.
class OpSet {
 public:
  // All arithmetic: + - * /. Variables and constants complexity 1.
  OpSet();
  // ops: comma-separated names ("+,-,*,/,sin"); complexity: "sin=2,*=1,const=1,var=1" (may be empty).
  // Throws InputError naming the unknown operator or the malformed item.
  static OpSet parse(const std::string& ops, const std::string& complexity = "");

  bool allowed(Op op) const { return allowed_[static_cast<int>(op)]; }
  int complexity(Op op) const { return complexity_[static_cast<int>(op)]; }
  void set_complexity(Op op, int c) { complexity_[static_cast<int>(op)] = c; }
  void allow(Op op, bool on = true) { allowed_[static_cast<int>(op)] = on; }
  const std::vector<Op>& unary() const { return unary_; }
  const std::vector<Op>& binary() const { return binary_; }
  // Forbids `inner` anywhere inside the argument of `outer` ("sin inside sin"). By default every
  // trigonometric/exponential function is forbidden inside itself; parse() adds "sin>cos" items of the
  // --forbid flag via forbid_nesting().
  void forbid_nesting(Op outer, Op inner) {
    forbidden_[static_cast<int>(outer)][static_cast<int>(inner)] = true;
    any_forbidden_ = true;
  }
  bool nesting_forbidden(Op outer, Op inner) const {
    return forbidden_[static_cast<int>(outer)][static_cast<int>(inner)];
  }
  bool has_nesting_rules() const { return any_forbidden_; }
  // Parses "sin>sin,exp>log" (outer>inner); InputError on unknown names.
  void parse_forbidden(const std::string& spec);
  std::string names() const;  // "+,-,*,/,sin"

 private:
  void rebuild();
  std::array<bool, kNumOps> allowed_{};
  std::array<int, kNumOps> complexity_{};
  std::array<std::array<bool, kNumOps>, kNumOps> forbidden_{};
  bool any_forbidden_ = false;  // any entry of forbidden_ set (within_limits asks for every offspring)
  std::vector<Op> unary_, binary_;
};

// The operator named `name` ("+", "sin", "lut_exp"); throws InputError listing the known names.
Op parse_op(const std::string& name, const std::string& where);

}  // namespace kiln::symreg
