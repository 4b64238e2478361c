// Range and grid helpers that ProgramBuilder methods in more than one compress/program_*.cc file share.
// Internal to compress/ (only those files include it; program.h is the interface). Inline: small
// builder-time helpers, compiled in each file that uses them.
#pragma once
#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "compress/program.h"
#include "engine/check.h"

namespace kiln::compress::program_build {

// The builder's interval arithmetic on codes, every step checked: a bound of 2^62 or more in magnitude (past
// the room int64 codes and accumulators have, program.h) throws "'<op>': <what> wider than 62 bits", where
// plain int64 arithmetic would wrap into a plausible but wrong range (and with it a wrong product path).
class Bounds {
 public:
  Bounds(std::string op, std::string what) : op_(std::move(op)), what_(std::move(what)) {}
  int64_t mul(int64_t a, int64_t b) const {
    int64_t r = 0;
    if (__builtin_mul_overflow(a, b, &r) || !fits(r)) fail();
    return r;
  }
  int64_t add(int64_t a, int64_t b) const {
    int64_t r = 0;
    if (__builtin_add_overflow(a, b, &r) || !fits(r)) fail();
    return r;
  }
  // [lo, hi] of a * b for a in [a_lo, a_hi], b in [b_lo, b_hi].
  std::pair<int64_t, int64_t> product(int64_t a_lo, int64_t a_hi, int64_t b_lo, int64_t b_hi) const {
    const int64_t p[] = {mul(a_lo, b_lo), mul(a_lo, b_hi), mul(a_hi, b_lo), mul(a_hi, b_hi)};
    return {*std::min_element(p, p + 4), *std::max_element(p, p + 4)};
  }

 private:
  static bool fits(int64_t v) { return v > -(int64_t{1} << 62) && v < (int64_t{1} << 62); }
  [[noreturn]] void fail() const { throw InputError("'" + op_ + "': " + what_ + " wider than 62 bits"); }
  std::string op_, what_;
};

// The finest grid of the nonzero codes (a pruned weight or bias is 0 on any grid).
inline int finest(const std::vector<int64_t>& code, const std::vector<int>& frac) {
  int f = 0;
  bool any = false;
  for (size_t j = 0; j < code.size(); ++j)
    if (code[j] != 0) f = any ? std::max(f, frac[j]) : frac[j], any = true;
  return f;
}

// A buffer of the given shape on `frac` whose every element lies in [lo, hi].
inline Buffer uniform_buffer(const Shape& shape, int frac, int64_t lo, int64_t hi) {
  Buffer b;
  b.shape = shape, b.size = shape_numel(shape), b.frac = frac;
  b.lo.assign(static_cast<size_t>(b.size), lo), b.hi.assign(static_cast<size_t>(b.size), hi);
  return b;
}

}  // namespace kiln::compress::program_build
