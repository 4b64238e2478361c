#include "symreg/lut.h"

#include <array>
#include <cmath>
#include <memory>
#include <mutex>

#include "engine/check.h"

namespace kiln::symreg {

double unary_reference(Op op, double x) {
  switch (lut_base(op)) {
    case Op::kNeg:
      return -x;
    case Op::kInv:
      return 1 / x;
    case Op::kSquare:
      return x * x;
    case Op::kCube:
      return x * x * x;
    case Op::kSqrt:
      return std::sqrt(std::fabs(x));
    case Op::kExp:
      return std::exp(x);
    case Op::kLog:
      return std::log(std::fabs(x));
    case Op::kSin:
      return std::sin(x);
    case Op::kCos:
      return std::cos(x);
    case Op::kTan:
      return std::tan(x);
    case Op::kTanh:
      return std::tanh(x);
    case Op::kAbs:
      return std::fabs(x);
    case Op::kGauss:
      return std::exp(-x * x);
    default:
      KILN_CHECK(false, std::string("not a unary operator: ") + op_info(op).name);
  }
}

LutSpec default_lut_spec(Op op, int size) {
  LutSpec s;
  s.size = size;
  switch (op) {
    case Op::kLutLog:
      s.lo = 0, s.hi = 8;
      break;
    case Op::kLutExp:
    case Op::kLutSqrt:
      s.lo = 0, s.hi = 16;
      break;
    default:
      s.lo = -4, s.hi = 4;
      break;
  }
  return s;
}

Lut build_lut(Op op, const LutSpec& spec) {
  KILN_CHECK(is_lut(op), std::string("not a table op: ") + op_info(op).name);
  Lut t;
  t.spec = spec;
  t.scale = static_cast<float>(spec.size) / (spec.hi - spec.lo);
  t.table.resize(static_cast<size_t>(spec.size));
  double step = (static_cast<double>(spec.hi) - spec.lo) / spec.size;
  for (int j = 0; j < spec.size; ++j) {
    double v = unary_reference(op, spec.lo + j * step);
    if (!std::isfinite(static_cast<float>(v))) v = unary_reference(op, spec.lo + (j + 0.5) * step);
    t.table[static_cast<size_t>(j)] = static_cast<float>(v);
  }
  return t;
}

namespace {
std::mutex g_mu;
int g_size = 1024;
std::array<std::unique_ptr<Lut>, kNumOps> g_tables;
}  // namespace

const Lut& lut_table(Op op) {
  std::lock_guard<std::mutex> lock(g_mu);
  auto& slot = g_tables[static_cast<int>(op)];
  if (!slot) slot = std::make_unique<Lut>(build_lut(op, default_lut_spec(op, g_size)));
  return *slot;
}

void set_lut_size(int n) {
  if (n < 2 || n > 65536) throw InputError("--lut-size: " + std::to_string(n) + " is not in [2, 65536]");
  std::lock_guard<std::mutex> lock(g_mu);
  if (n == g_size) return;
  g_size = n;
  for (auto& slot : g_tables) slot.reset();
}

int lut_size() {
  std::lock_guard<std::mutex> lock(g_mu);
  return g_size;
}

}  // namespace kiln::symreg
