// Helpers shared by compress/lut.cc (sigmoid, tanh, gelu tables) and compress/softmax_lut.cc; private to
// those two files.
#pragma once
#include <cmath>
#include <cstdio>
#include <string>

#include "compress/lut.h"

namespace kiln::compress::lut_detail {

inline bool is_pow2(int n) { return n > 0 && (n & (n - 1)) == 0; }

inline int log2_exact(int n) {
  int b = 0;
  while ((1 << b) < n) ++b;
  return b;
}

inline int width(const FixedType& t) { return t.k + t.i + t.f; }

inline std::string table_size_rule() {
  return "a power of two in [2, " + std::to_string(kMaxTableSize) + "]";
}

inline bool table_size_ok(int n) { return is_pow2(n) && n >= 2 && n <= kMaxTableSize; }

inline std::string num(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

// ap_fixed's conversion of a float: quantize(), except that an infinity under WRAP gives 0 (ap reads it
// as 2^1024, whose bits inside any type are all zero); under the SAT modes quantize() already saturates.
inline double ap_from_float(float v, const FixedType& t) {
  if (std::isinf(v) && t.overflow == Overflow::kWrap) return 0.0;
  return quantize(static_cast<double>(v), t);
}

}  // namespace kiln::compress::lut_detail
