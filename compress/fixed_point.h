// Exact fixed-point semantics of Xilinx ap_fixed / ap_ufixed, one scalar at a time, in double precision
// (../shared/reference/quantization.md, sections 1-3). A type is (k, i, f): k = 1 if signed, i integer bits
// not counting the sign, f fractional bits; width b = k + i + f, step 2^-f, range [-k*2^i, 2^i - 2^-f].
// It is ap_fixed<k+i+f, k+i, round, overflow> (ap_ufixed<i+f, i, ...> when k = 0). i and f may be negative.
//
//   FixedType t{1, 1, 2, Round::kRnd, Overflow::kWrap};   // ap_fixed<4, 2, AP_RND, AP_WRAP>
//   quantize(1.9, t);                                    // -2: rounds to 2.0 first, which then wraps
//   to_code(quantize(0.3, t), t.f);                      // 1 (0.25 = 1 * 2^-2)
//
// Order (as ap_fixed): round x * 2^f to an integer code, then handle overflow of the code.
// Pruning: a type of width k + i + f <= 0 gives exactly 0 (HGQ prunes this way). The width is taken from
// the i and f given; the reference's "i = max(i, -f) before use" then never changes anything, because
// any type of width >= 1 already has i >= 1 - k - f >= -f.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>

#include "engine/check.h"

namespace kiln::compress {

enum class Round {
  kTrn,         // AP_TRN: floor (toward -inf, NOT toward zero)
  kTrnZero,     // AP_TRN_ZERO: toward zero
  kRnd,         // AP_RND: nearest, ties toward +inf
  kRndZero,     // AP_RND_ZERO: nearest, ties toward zero
  kRndMinInf,   // AP_RND_MIN_INF: nearest, ties toward -inf
  kRndInf,      // AP_RND_INF: nearest, ties away from zero
  kRndConv,     // AP_RND_CONV: nearest, ties to even
  kStochastic,  // S_RND: floor(x*2^f + u), u uniform in [0, 1): unbiased. With the default u = 0.5 it is RND
};
enum class Overflow {
  kWrap,     // AP_WRAP: two's complement wrap on the grid, width k+i+f
  kSat,      // AP_SAT: clip to [-k*2^i, 2^i - 2^-f]
  kSatSym,   // AP_SAT_SYM: clip to [-k*(2^i - 2^-f), 2^i - 2^-f] (-2.0 -> -1.75 in ap_fixed<4,2>)
  kSatZero,  // AP_SAT_ZERO: any overflow gives 0
};

struct FixedType {
  int k;  // 1 signed, 0 unsigned
  int i;  // integer bits, not counting the sign
  int f;  // fractional bits
  Round round;
  Overflow overflow;
};

// |i| and |f| up to this are accepted (kept far inside double's exponent range).
constexpr int kMaxBits = 512;

// Throws InputError unless k is 0 or 1 and |i|, |f| <= kMaxBits.
void validate(const FixedType& t);

// ap_fixed's value of x in type t. `u` is the uniform draw for Round::kStochastic (ignored otherwise).
// Exact for finite x while the code x*2^f fits in 53 bits. NaN stays NaN; +-inf saturate under the SAT modes.
double quantize(double x, const FixedType& t, double u = 0.5);

// Where the rounded code fell against the type's range, before overflow handling.
enum class Region { kInside, kAbove, kBelow, kPruned };
struct Quantized {
  double value;    // the result
  double rounded;  // round(x * 2^f) / 2^f, before overflow handling (0 when pruned)
  Region region;
};
// quantize() with the intermediate steps exposed; wrap = false leaves WRAP overflows unwrapped (HGQ's
// training semantics: value == rounded, region still says whether it overflowed).
Quantized quantize_traced(double x, const FixedType& t, double u = 0.5, bool wrap = true);

// A type with its powers of two worked out once, for quantizing many values of it (quantize_fixed):
// quantize_traced(x, prepare(t), u, wrap) == quantize_traced(x, t, u, wrap) for every x. prepare validates t.
struct PreparedType {
  FixedType t;
  bool pruned;        // k + i + f <= 0
  double scale, inv;  // 2^f, 2^-f (x * scale is exactly ldexp(x, f): powers of two round nothing)
  double hi, lo;      // the code range: [-k 2^(i+f) (or -hi under SAT_SYM), 2^(i+f) - 1]
  double modulus;     // 2^(k+i+f), for WRAP
};
PreparedType prepare(const FixedType& t);
Quantized quantize_traced(double x, const PreparedType& p, double u = 0.5, bool wrap = true);

// Rounds s (= x * 2^f) to an integer-valued double by `round`; u is the stochastic draw.
double round_code(double s, Round round, double u = 0.5);

// The range of a non-pruned type, SAT_SYM-aware: [range_min, range_max].
double range_max(const FixedType& t);  // 2^i - 2^-f
double range_min(const FixedType& t);  // -k*2^i, or -k*(2^i - 2^-f) under SAT_SYM

// Names. parse_* accept the names of the reference ("RND_CONV", "SAT_SYM"), in upper or lower case, with or
// without the "AP_" prefix; "S_RND" (and HGQ2's "S_RND_CONV", the same in distribution) is kStochastic.
// Unknown names throw InputError naming the string and listing the valid names.
Round parse_round(const std::string& name);
Overflow parse_overflow(const std::string& name);
std::string to_string(Round r);     // "AP_RND_CONV"; kStochastic is "S_RND" (no ap_fixed mode)
std::string to_string(Overflow o);  // "AP_SAT_SYM"

// Deployed integer path: a quantized value as its integer code xq * 2^f, and back. to_code throws
// InternalError when xq is not on the grid of 2^-f or the code does not fit in int64.
int64_t to_code(double xq, int f);
// to_code's result from c = xq * 2^f already computed (by a loop that prepared 2^f once per type, where
// the product is exactly ldexp(xq, f)); to_code(xq, f) is checked_code(ldexp(xq, f), xq, f).
inline int64_t checked_code(double c, double xq, int f) {
  KILN_CHECK(std::floor(c) == c,
             "value " + std::to_string(xq) + " is not on the grid of 2^-" + std::to_string(f));
  KILN_CHECK(std::fabs(c) < 0x1p63,
             "code of " + std::to_string(xq) + " with f = " + std::to_string(f) + " does not fit in int64");
  return static_cast<int64_t>(c);
}
double from_code(int64_t code, int f);  // code * 2^-f, exact for |code| < 2^53

// Calibration (reference section 3): the integer bits needed so that the largest value, once quantized
// with f fractional bits, is representable: ceil(log2(max + 2^-f)). Examples with f = 2: max 3.7, 3.9, 4.0
// give 2, 3, 3 (3.9 rounds up to 4.0, which needs i = 3). `max` is max|x| (or max x for unsigned data);
// when max + 2^-f <= 0 (no positive value to hold) the result is -f, as for max = 0. NaN or inf throws
// InputError.
int integer_bits_for(double max, int f);

// The same for a finite max >= 0 and |f| <= kMaxBits, without the checks, inline: for per-entry loops that
// run at every training step (WRAP activations' i, FixedQuantizer::track_range), where the calls cost more
// than the arithmetic. ceil(log2(max + 2^-f)) of the exact sum: the double sum can round down onto a power
// of two the exact sum lies above (2^60 + 1 rounds to 2^60), which TwoSum's exact error detects.
inline int integer_bits_for_nonneg(double max, int f) {
  const uint64_t step_bits = static_cast<uint64_t>(1023 - f) << 52;  // 2^-f, a normal double
  double step = 0;
  std::memcpy(&step, &step_bits, sizeof step);
  const double v = max + step;
  uint64_t bits = 0;
  std::memcpy(&bits, &v, sizeof bits);
  if ((bits >> 52) == 0x7ff) return std::numeric_limits<int>::max();  // max + 2^-f overflowed to inf
  const bool power = (bits & ((uint64_t{1} << 52) - 1)) == 0;         // v = 2^(exponent)
  const int r = static_cast<int>(bits >> 52) - 1023 + (power ? 0 : 1);
  const double bp = v - max, ap = v - bp;
  const double err = (max - ap) + (step - bp);  // max + 2^-f = v + err exactly
  return err > 0 && power ? r + 1 : r;
}

// HGQ v1's rule from a traced min and max of the quantized values:
//   i = max(ceil(log2|min|), ceil(log2(max + 2^-f))), clipped to [-f-k, 32].
// A term applies only when it has something to hold: the min term when min < 0 and k = 1 (an unsigned type
// clips negatives to 0 whatever i is), the max term when max + 2^-f > 0. So min = 0 ignores the min term,
// max = 0 gives -f from the max term, and an element never traced (min = +inf, max = -inf) or with no
// applicable term gets -f-k: width 0, pruned. NaN throws InputError.
int integer_bits_for(double min, double max, int f, int k);

}  // namespace kiln::compress
