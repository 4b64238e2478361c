// Minifloat quantization. Scaling by powers of two (ldexp), ilogb and the tie test are exact in double, so
// the result is the exactly rounded minifloat value.
#include "compress/minifloat.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "engine/check.h"

namespace kiln::compress {

namespace {

int half_range(const MiniFloat& t) { return t.e >= 1 ? 1 << (t.e - 1) : 1; }  // HGQ2: max(2^(e-1), 1)

// Nearest integer to s >= 0, ties to even.
double round_half_even(double s) {
  double fl = std::floor(s);
  double d = s - fl;  // exact
  if (d < 0.5) return fl;
  if (d > 0.5) return fl + 1.0;
  return std::fmod(fl, 2.0) == 0.0 ? fl : fl + 1.0;
}

}  // namespace

void validate(const MiniFloat& t) {
  if (t.m < 0 || t.m > 52)
    throw InputError("minifloat mantissa bits m must be in [0, 52], got " + std::to_string(t.m));
  if (t.e < 0 || t.e > 10)
    throw InputError("minifloat exponent bits e must be in [0, 10], got " + std::to_string(t.e));
  if (t.e0 < -128 || t.e0 > 128)
    throw InputError("minifloat exponent offset e0 must be in [-128, 128], got " + std::to_string(t.e0));
}

int minifloat_exponent_min(const MiniFloat& t) { return -half_range(t) + t.e0 + 1; }
int minifloat_exponent_max(const MiniFloat& t) { return half_range(t) + t.e0 - 1; }

double minifloat_max(const MiniFloat& t) {
  validate(t);
  return (2.0 - std::ldexp(1.0, -t.m)) * std::ldexp(1.0, minifloat_exponent_max(t));
}

double minifloat_min_subnormal(const MiniFloat& t) {
  validate(t);
  return std::ldexp(1.0, minifloat_exponent_min(t) - t.m);
}

double quantize_minifloat(double x, const MiniFloat& t, bool* saturated) {
  validate(t);
  if (saturated) *saturated = false;
  if (x == 0.0 || std::isnan(x)) return x;
  int e_lo = minifloat_exponent_min(t), e_hi = minifloat_exponent_max(t);
  double a = std::fabs(x);
  // ilogb is floor(log2 a) exactly for finite a > 0 (INT_MAX for inf, which clips to e_hi).
  int e_act = std::clamp(std::ilogb(a), e_lo, e_hi);
  int scale = e_act - t.m;                    // step 2^(e_act - m)
  double sig_max = std::ldexp(1.0, t.m + 1);  // significands below e_hi reach 2^(m+1) = next binade's 1.0
  if (e_act == e_hi) sig_max -= 1.0;          // the top binade stops at (2 - 2^-m) * 2^e_hi
  double sig = std::ldexp(a, -scale);
  double q = std::isinf(sig) ? sig : round_half_even(sig);
  if (q > sig_max) {
    q = sig_max;
    if (saturated) *saturated = true;
  }
  return std::copysign(std::ldexp(q, scale), x);
}

}  // namespace kiln::compress
