#include "symreg/ops.h"

#include <cstdio>
#include <cstdlib>
#include <sstream>

#include "engine/check.h"

namespace kiln::symreg {

const std::array<OpInfo, kNumOps> kOpTable = {{
    {Op::kConst, "const", 0, 1},
    {Op::kVar, "var", 0, 1},
    {Op::kAdd, "+", 2, 1},
    {Op::kSub, "-", 2, 1},
    {Op::kMul, "*", 2, 1},
    {Op::kDiv, "/", 2, 1},
    {Op::kAq, "aq", 2, 2},
    {Op::kPow, "pow", 2, 2},
    {Op::kNeg, "neg", 1, 1},
    {Op::kInv, "inv", 1, 1},
    {Op::kSquare, "square", 1, 1},
    {Op::kCube, "cube", 1, 1},
    {Op::kSqrt, "sqrt", 1, 1},
    {Op::kExp, "exp", 1, 1},
    {Op::kLog, "log", 1, 1},
    {Op::kSin, "sin", 1, 1},
    {Op::kCos, "cos", 1, 1},
    {Op::kTan, "tan", 1, 1},
    {Op::kTanh, "tanh", 1, 1},
    {Op::kAbs, "abs", 1, 1},
    {Op::kGauss, "gauss", 1, 1},
    {Op::kLutSin, "lut_sin", 1, 1},
    {Op::kLutCos, "lut_cos", 1, 1},
    {Op::kLutTan, "lut_tan", 1, 1},
    {Op::kLutTanh, "lut_tanh", 1, 1},
    {Op::kLutExp, "lut_exp", 1, 1},
    {Op::kLutLog, "lut_log", 1, 1},
    {Op::kLutSqrt, "lut_sqrt", 1, 1},
    {Op::kLutGauss, "lut_gauss", 1, 1},
}};

// The table is indexed by the enum: a row out of order would silently mislabel operators.
static bool table_in_order() {
  for (int i = 0; i < kNumOps; ++i)
    if (static_cast<int>(kOpTable[i].op) != i) return false;
  return true;
}

const OpInfo& op_info(Op op) {
  static const bool ok = table_in_order();
  KILN_CHECK(ok, "kOpTable rows must follow the Op enum order");
  return kOpTable[static_cast<int>(op)];
}

Op lut_base(Op op) {
  switch (op) {
    case Op::kLutSin:
      return Op::kSin;
    case Op::kLutCos:
      return Op::kCos;
    case Op::kLutTan:
      return Op::kTan;
    case Op::kLutTanh:
      return Op::kTanh;
    case Op::kLutExp:
      return Op::kExp;
    case Op::kLutLog:
      return Op::kLog;
    case Op::kLutSqrt:
      return Op::kSqrt;
    case Op::kLutGauss:
      return Op::kGauss;
    default:
      return op;
  }
}

static std::string trim(const std::string& s) {
  size_t a = s.find_first_not_of(" \t"), b = s.find_last_not_of(" \t");
  return a == std::string::npos ? "" : s.substr(a, b - a + 1);
}

// A flag's text for a one-line message: quoted, control bytes escaped, clipped to 40 bytes + "...".
static std::string quoted(const std::string& s) {
  constexpr size_t kMax = 40;
  std::string out = "'";
  for (size_t i = 0; i < s.size() && i < kMax; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == 0x7f) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\x%02x", c);
      out += hex;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + (s.size() > kMax ? "...'" : "'");
}

static std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  std::string item;
  std::istringstream in(s);
  while (std::getline(in, item, ',')) out.push_back(trim(item));
  return out;
}

Op parse_op(const std::string& name, const std::string& where) {
  std::string n = name == "x" || name == "×" ? "*" : name;
  for (const OpInfo& info : kOpTable)
    if (n == info.name) return info.op;
  std::string known;
  for (const OpInfo& info : kOpTable)
    if (info.arity > 0) known += std::string(known.empty() ? "" : " ") + info.name;
  throw InputError(where + ": unknown operator " + quoted(name) + " (known: " + known + ")");
}

OpSet::OpSet() {
  for (const OpInfo& info : kOpTable) complexity_[static_cast<int>(info.op)] = info.complexity;
  for (Op op : {Op::kConst, Op::kVar, Op::kAdd, Op::kSub, Op::kMul, Op::kDiv}) allow(op);
  // f(f(x)) for a transcendental f is almost always bloat (and sin(sin) is what the hls4ml flow forbids).
  for (Op op : {Op::kExp, Op::kLog, Op::kSin, Op::kCos, Op::kTan, Op::kTanh, Op::kGauss, Op::kLutSin,
                Op::kLutCos, Op::kLutTan, Op::kLutTanh, Op::kLutExp, Op::kLutLog, Op::kLutGauss})
    forbid_nesting(op, op);
  rebuild();
}

OpSet OpSet::parse(const std::string& ops, const std::string& complexity) {
  OpSet s;
  for (const OpInfo& info : kOpTable)
    if (info.arity > 0) s.allow(info.op, false);
  int n = 0;
  for (const std::string& name : split_list(ops)) {
    if (name.empty()) continue;
    Op op = parse_op(name, "--ops");
    if (arity(op) == 0)
      throw InputError("--ops: '" + name + "' is not an operator (variables and constants are always on)");
    s.allow(op), ++n;
  }
  if (n == 0) throw InputError("--ops: no operator given in " + quoted(ops));
  for (const std::string& item : split_list(complexity)) {
    if (item.empty()) continue;
    size_t eq = item.find('=');
    if (eq == std::string::npos)
      throw InputError("--complexity: " + quoted(item) + " is not NAME=VALUE (e.g. sin=2)");
    Op op = parse_op(trim(item.substr(0, eq)), "--complexity");
    std::string v = trim(item.substr(eq + 1));
    char* end = nullptr;
    long c = std::strtol(v.c_str(), &end, 10);
    if (v.empty() || *end != '\0' || c < 1 || c > 1000)
      throw InputError("--complexity: " + quoted(item) +
                       ": the complexity must be an integer in [1, 1000], got " + quoted(v));
    s.set_complexity(op, static_cast<int>(c));
  }
  s.rebuild();
  return s;
}

void OpSet::parse_forbidden(const std::string& spec) {
  for (const std::string& item : split_list(spec)) {
    if (item.empty()) continue;
    size_t gt = item.find('>');
    if (gt == std::string::npos)
      throw InputError("--forbid: " + quoted(item) + " is not OUTER>INNER (e.g. sin>sin)");
    Op outer = parse_op(trim(item.substr(0, gt)), "--forbid"),
       inner = parse_op(trim(item.substr(gt + 1)), "--forbid");
    forbid_nesting(outer, inner);
  }
}

void OpSet::rebuild() {
  unary_.clear(), binary_.clear();
  for (const OpInfo& info : kOpTable) {
    if (!allowed(info.op)) continue;
    if (info.arity == 1) unary_.push_back(info.op);
    if (info.arity == 2) binary_.push_back(info.op);
  }
}

std::string OpSet::names() const {
  std::string s;
  for (const OpInfo& info : kOpTable)
    if (info.arity > 0 && allowed(info.op)) s += std::string(s.empty() ? "" : ",") + info.name;
  return s;
}

}  // namespace kiln::symreg
