// Minifloat quantization (../shared/reference/quantization.md, section 5) at the edges of its range. Every
// expected value is derived by hand in the comment beside it and is an exact binary fraction (compared ==).
#include "compress/minifloat.h"

#include <doctest/doctest.h>

#include <cmath>
#include <string>

#include "compress/quantize_ops.h"
#include "engine/check.h"

using namespace kiln;
using namespace kiln::compress;

namespace {
// m = 3, e = 4, e0 = 0: e_lo = -8 + 0 + 1 = -7, e_hi = 8 + 0 - 1 = 7.
// largest = (2 - 2^-3) * 2^7 = 1.875 * 128 = 240; smallest normal 2^-7; smallest subnormal 2^(-7-3) = 2^-10.
const MiniFloat kE4M3{3, 4, 0};
double q(double x, const MiniFloat& t = kE4M3) { return quantize_minifloat(x, t); }
bool saturates(double x, const MiniFloat& t = kE4M3) {
  bool s = false;
  quantize_minifloat(x, t, &s);
  return s;
}
}  // namespace

TEST_CASE("range as functions of m, e, e0") {
  CHECK(minifloat_exponent_min(kE4M3) == -7);
  CHECK(minifloat_exponent_max(kE4M3) == 7);
  CHECK(minifloat_max(kE4M3) == 240.0);
  CHECK(minifloat_min_subnormal(kE4M3) == std::ldexp(1.0, -10));
  // m = 10, e = 5, e0 = 0: e_lo = -15, e_hi = 15; largest (2 - 2^-10) * 2^15 = 65504, subnormal 2^-25.
  CHECK(minifloat_max(MiniFloat{10, 5, 0}) == 65504.0);
  CHECK(minifloat_min_subnormal(MiniFloat{10, 5, 0}) == std::ldexp(1.0, -25));
  // e0 shifts both ends: m = 2, e = 3, e0 = -2: e_lo = -4 - 2 + 1 = -5, e_hi = 4 - 2 - 1 = 1;
  // largest (2 - 1/4) * 2 = 3.5, smallest subnormal 2^(-5-2) = 2^-7.
  CHECK(minifloat_max(MiniFloat{2, 3, -2}) == 3.5);
  CHECK(minifloat_min_subnormal(MiniFloat{2, 3, -2}) == std::ldexp(1.0, -7));
  // e = 1: one exponent (e0); e = 0 behaves the same (HGQ2). m = 3: 0 .. 1.875 in steps of 1/8.
  CHECK(minifloat_max(MiniFloat{3, 1, 0}) == 1.875);
  CHECK(minifloat_min_subnormal(MiniFloat{3, 1, 0}) == 0.125);
  CHECK(minifloat_max(MiniFloat{3, 0, 0}) == 1.875);
}

TEST_CASE("largest finite value and saturation beyond it") {
  CHECK(q(240.0) == 240.0);  // the largest value itself: e_act 7, step 2^(7-3) = 16, significand 15
  CHECK_FALSE(saturates(240.0));
  CHECK(q(247.99) == 240.0);  // 247.99 / 16 = 15.499 rounds to 15: in range, not saturated
  CHECK_FALSE(saturates(247.99));
  CHECK(q(248.0) == 240.0);  // 15.5: a tie, to even is 16 (= 256, beyond the top): saturates to 240
  CHECK(saturates(248.0));
  CHECK(q(250.0) == 240.0);  // 15.625 -> 16 -> saturated
  CHECK(q(1e6) == 240.0);    // floor(log2 1e6) = 19, clipped to e_hi = 7: significand 62500 -> 15
  CHECK(q(-1e6) == -240.0);
  CHECK(q(INFINITY) == 240.0);
  CHECK(q(-INFINITY) == -240.0);
  CHECK(q(232.0) == 224.0);  // 14.5: a tie, to even 14 -> 14 * 16 = 224
  // Below the top binade a significand may round up to 2^(m+1): that is the next binade's 1.0, representable.
  CHECK(q(1.97) == 2.0);     // e_act 0, step 1/8: 15.76 -> 16 -> 2.0
  CHECK(q(127.5) == 128.0);  // e_act 6, step 8: 15.9375 -> 16 -> 128
  CHECK_FALSE(saturates(127.5));
}

TEST_CASE("subnormals and the smallest values") {
  const double s = std::ldexp(1.0, -10);  // smallest subnormal: below 2^-7, e_act stays -7, step 2^-10
  CHECK(q(s) == s);
  CHECK(q(0.75 * s) == s);     // significand 0.75 -> 1
  CHECK(q(0.5 * s) == 0.0);    // 0.5: a tie, to even 0
  CHECK(q(0.49 * s) == 0.0);   // 0.49 -> 0
  CHECK(q(1.5 * s) == 2 * s);  // 1.5: a tie, to even 2
  CHECK(q(2.5 * s) == 2 * s);  // 2.5: a tie, to even 2
  CHECK(q(3.5 * s) == 4 * s);  // 3.5: a tie, to even 4
  CHECK(q(7 * s) == 7 * s);    // the largest subnormal, 7 * 2^-10 = 2^-7 - 2^-10
  CHECK(q(7.5 * s) == 8 * s);  // 7.5 -> 8: the smallest normal 2^-7
  CHECK(q(std::ldexp(1.0, -7)) == std::ldexp(1.0, -7));
  CHECK(q(-0.75 * s) == -s);  // sign kept
  CHECK(q(-1.5 * s) == -2 * s);
}

TEST_CASE("halfway between two representable numbers rounds to the even significand") {
  CHECK(q(1.0625) == 1.0);   // e_act 0, step 1/8: 8.5 -> 8 (even) -> 1.0
  CHECK(q(1.1875) == 1.25);  // 9.5 -> 10 (even) -> 1.25
  CHECK(q(1.07) == 1.125);   // 8.56 -> 9: not a tie, nearest
  CHECK(q(6.5) == 6.5);      // e_act 2, step 1/2: 13 steps exactly, representable
  CHECK(q(6.75) == 7.0);     // 13.5 -> 14 (even) -> 7.0
  CHECK(q(7.25) == 7.0);     // 14.5 -> 14 (even) -> 7.0
}

TEST_CASE("negative values and zero") {
  CHECK(q(-1.1875) == -1.25);  // as +1.1875, sign kept
  CHECK(q(-1.0625) == -1.0);
  CHECK(q(-3.3) == -3.25);  // e_act 1, step 1/4: 13.2 -> 13 -> 3.25
  CHECK(q(0.0) == 0.0);
  CHECK(std::signbit(q(-0.0)));
  CHECK(std::isnan(q(std::nan(""))));
}

TEST_CASE("other parameters: e0 offset and a single exponent") {
  const MiniFloat t{2, 3, -2};  // largest 3.5, subnormal step 2^-7
  CHECK(q(3.6, t) == 3.5);      // e_act 1, step 2^(1-2) = 1/2: 7.2 -> 7 -> 3.5, not saturated
  CHECK_FALSE(saturates(3.6, t));
  CHECK(q(3.75, t) == 3.5);  // 7.5: a tie, to even 8 = 4.0 is beyond: saturated
  CHECK(saturates(3.75, t));
  CHECK(q(std::ldexp(1.0, -8), t) == 0.0);                      // half the subnormal step: a tie, to 0
  CHECK(q(3 * std::ldexp(1.0, -8), t) == std::ldexp(1.0, -6));  // 1.5 -> 2 steps of 2^-7
  const MiniFloat one{3, 1, 0};                                 // e_lo = e_hi = 0: steps of 1/8 up to 1.875
  CHECK(q(0.3, one) == 0.25);                                   // 2.4 -> 2
  CHECK(q(1.9, one) == 1.875);                                  // 15.2 -> 15, not saturated
  CHECK_FALSE(saturates(1.9, one));
  CHECK(q(1.95, one) == 1.875);  // 15.6 -> 16 -> saturated
  CHECK(saturates(1.95, one));
  CHECK(q(5.0, one) == 1.875);
}

TEST_CASE("bad parameters are input errors naming the field") {
  auto message = [](MiniFloat t) -> std::string {
    try {
      quantize_minifloat(1.0, t);
    } catch (const InputError& e) {
      return e.what();
    }
    return "";
  };
  CHECK(message(MiniFloat{-1, 4, 0}).find("mantissa bits m") != std::string::npos);
  CHECK(message(MiniFloat{3, 11, 0}).find("exponent bits e") != std::string::npos);
  CHECK(message(MiniFloat{3, 4, 500}).find("offset e0") != std::string::npos);
}

TEST_CASE("quantize_minifloat op: values and straight-through gradient, 0 where saturated") {
  Var x(Tensor({6}, {1.0625f, 250.f, -1e6f, 247.99f, 248.f, -0.3f}), true);
  Var y = quantize_minifloat(x, kE4M3);
  CHECK(y.value()[0] == 1.f);
  CHECK(y.value()[1] == 240.f);
  CHECK(y.value()[2] == -240.f);
  CHECK(y.value()[3] == 240.f);
  CHECK(y.value()[4] == 240.f);
  CHECK(y.value()[5] == -0.3125f);  // e_act -2, step 2^-5: 0.3 * 32 = 9.6 -> 10 -> 0.3125
  backward(y, Tensor({6}, {1.f, 2.f, 3.f, 4.f, 5.f, 6.f}));
  CHECK(x.grad()[0] == 1.f);
  CHECK(x.grad()[1] == 0.f);
  CHECK(x.grad()[2] == 0.f);
  CHECK(x.grad()[3] == 4.f);  // 247.99 rounds to 240 without saturating: straight through
  CHECK(x.grad()[4] == 0.f);
  CHECK(x.grad()[5] == 6.f);
}
