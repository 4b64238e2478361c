// Minifloat quantization as HGQ2 (alpha) defines it (../shared/reference/quantization.md, section 5):
// a sign, e exponent bits with offset e0, m mantissa bits (not counting the implicit leading 1); no NaN or
// infinity codes, subnormals supported, saturating.
//
//   e_act = clip(floor(log2|x|), e_lo, e_hi),  e_lo = -2^(e-1) + e0 + 1,  e_hi = 2^(e-1) + e0 - 1
//   xq    = sign(x) * round_half_even(|x| / 2^(e_act - m)) * 2^(e_act - m), saturated at the largest value
//
// Range, as functions of (m, e, e0):
//   largest finite value   minifloat_max           = (2 - 2^-m) * 2^e_hi
//   smallest normal value                          = 2^e_lo
//   smallest subnormal     minifloat_min_subnormal = 2^(e_lo - m)   (the step below 2^e_lo)
// e.g. m = 3, e = 4, e0 = 0: e_lo = -7, e_hi = 7, largest 240, smallest subnormal 2^-10.
// e = 1 has a single exponent (e_lo = e_hi = e0): a sign-magnitude fixed point with m + 1 magnitude bits.
// e = 0 is treated as e = 1, as HGQ2 does (it uses max(2^(e-1), 1) for the exponent half-range).
//
//   MiniFloat t{3, 4, 0};
//   quantize_minifloat(1.0625, t);  // 1.0: halfway between 1.0 and 1.125, ties to the even significand
//   quantize_minifloat(1e6, t);     // 240: saturated
#pragma once

namespace kiln::compress {

struct MiniFloat {
  int m;   // mantissa bits, 0..52
  int e;   // exponent bits, 0..10
  int e0;  // exponent offset, -128..128
};

// Throws InputError naming the field when m, e or e0 is outside the ranges above.
void validate(const MiniFloat& t);

// x rounded to the nearest value of t (ties to even significand), saturated at +-minifloat_max. 0 -> 0 with
// its sign; NaN stays NaN; +-inf saturate. When `saturated` is given it is set to whether the saturation
// changed the rounded value (|x| rounded beyond the largest value).
double quantize_minifloat(double x, const MiniFloat& t, bool* saturated = nullptr);

double minifloat_max(const MiniFloat& t);
double minifloat_min_subnormal(const MiniFloat& t);
int minifloat_exponent_min(const MiniFloat& t);  // e_lo
int minifloat_exponent_max(const MiniFloat& t);  // e_hi

}  // namespace kiln::compress
