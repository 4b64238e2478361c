// Fixed-point quantization on integer codes: every step below is exact in double precision (ldexp,
// floor, fmod and comparisons of integer-valued doubles round nothing).
#include "compress/fixed_point.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "engine/check.h"

namespace kiln::compress {

void validate(const FixedType& t) {
  if (t.k != 0 && t.k != 1)
    throw InputError("fixed-point k (signed) must be 0 or 1, got " + std::to_string(t.k));
  if (std::abs(t.i) > kMaxBits || std::abs(t.f) > kMaxBits)
    throw InputError("fixed-point bits out of range: i = " + std::to_string(t.i) +
                     ", f = " + std::to_string(t.f) + " (|i|, |f| <= " + std::to_string(kMaxBits) + ")");
}

double round_code(double s, Round round, double u) {
  if (!std::isfinite(s)) return s;
  double fl = std::floor(s);
  double d = s - fl;  // fractional part in [0, 1), exact
  switch (round) {
    case Round::kTrn:
      return fl;
    case Round::kTrnZero:
      return std::trunc(s);
    case Round::kStochastic:
      return d + u >= 1.0 ? fl + 1.0 : fl;  // floor(s + u) without rounding s + u
    default:
      break;
  }
  if (d < 0.5) return fl;
  if (d > 0.5) return fl + 1.0;
  switch (round) {  // a tie: s is exactly halfway between fl and fl + 1
    case Round::kRnd:
      return fl + 1.0;
    case Round::kRndZero:
      return s > 0 ? fl : fl + 1.0;
    case Round::kRndMinInf:
      return fl;
    case Round::kRndInf:
      return s > 0 ? fl + 1.0 : fl;
    case Round::kRndConv:
      return std::fmod(fl, 2.0) == 0.0 ? fl : fl + 1.0;
    default:
      KILN_CHECK(false, "unhandled rounding mode " + std::to_string(static_cast<int>(round)));
  }
}

double range_max(const FixedType& t) { return std::ldexp(1.0, t.i) - std::ldexp(1.0, -t.f); }

double range_min(const FixedType& t) {
  if (t.k == 0) return 0.0;
  return t.overflow == Overflow::kSatSym ? -range_max(t) : -std::ldexp(1.0, t.i);
}

namespace {

// 2^e from a table (std::ldexp was a third of the quantized forward's time); exact either way.
double pow2(int e) {
  constexpr int kSpan = 3 * kMaxBits + 2;
  static const std::vector<double> table = [] {
    std::vector<double> t(2 * kSpan + 1);
    for (int j = -kSpan; j <= kSpan; ++j) t[static_cast<size_t>(j + kSpan)] = std::ldexp(1.0, j);
    return t;
  }();
  return e >= -kSpan && e <= kSpan ? table[static_cast<size_t>(e + kSpan)] : std::ldexp(1.0, e);
}

}  // namespace

PreparedType prepare(const FixedType& t) {
  validate(t);
  PreparedType p{t, t.k + t.i + t.f <= 0, pow2(t.f), pow2(-t.f), 0, 0, pow2(t.k + t.i + t.f)};
  // Codes in units of 2^-f. i + f >= 0 when not pruned, so 2^(i+f) is an integer >= 1.
  const double top = pow2(t.i + t.f);
  p.hi = top - 1.0;
  p.lo = t.k == 0 ? 0.0 : (t.overflow == Overflow::kSatSym ? -p.hi : -top);
  return p;
}

Quantized quantize_traced(double x, const PreparedType& p, double u, bool wrap) {
  if (p.pruned) return {0.0, 0.0, Region::kPruned};
  const FixedType& t = p.t;
  double r = round_code(x * p.scale, t.round, u);
  double rounded = r * p.inv;
  Region region = r > p.hi ? Region::kAbove : (r < p.lo ? Region::kBelow : Region::kInside);
  if (region == Region::kInside || std::isnan(r)) return {rounded, rounded, region};
  double code = 0.0;
  switch (t.overflow) {
    case Overflow::kWrap: {
      if (!wrap) return {rounded, rounded, region};
      // ((r + k*2^(w-1)) mod 2^w) - k*2^(w-1), w = k+i+f, written so that no step rounds: fmod is exact.
      const double m = p.modulus;
      code = std::fmod(r, m);  // in (-m, m), sign of r
      if (t.k == 1) {
        if (code >= m / 2) code -= m;
        if (code < -m / 2) code += m;
      } else if (code < 0) {
        code += m;
      }
      break;
    }
    case Overflow::kSat:
    case Overflow::kSatSym:
      code = region == Region::kAbove ? p.hi : p.lo;
      break;
    case Overflow::kSatZero:
      code = 0.0;
      break;
  }
  return {code * p.inv, rounded, region};
}

Quantized quantize_traced(double x, const FixedType& t, double u, bool wrap) {
  return quantize_traced(x, prepare(t), u, wrap);
}

double quantize(double x, const FixedType& t, double u) { return quantize_traced(x, t, u, true).value; }

// ---- names -------------------------------------------------------------------------------------------

namespace {

std::string normalise(const std::string& name) {
  std::string s = name;
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (s.rfind("AP_", 0) == 0) s = s.substr(3);
  return s;
}

}  // namespace

Round parse_round(const std::string& name) {
  std::string s = normalise(name);
  if (s == "TRN") return Round::kTrn;
  if (s == "TRN_ZERO") return Round::kTrnZero;
  if (s == "RND") return Round::kRnd;
  if (s == "RND_ZERO") return Round::kRndZero;
  if (s == "RND_MIN_INF") return Round::kRndMinInf;
  if (s == "RND_INF") return Round::kRndInf;
  if (s == "RND_CONV") return Round::kRndConv;
  if (s == "S_RND" || s == "S_RND_CONV") return Round::kStochastic;
  throw InputError("unknown rounding mode '" + name +
                   "' (valid: TRN, TRN_ZERO, RND, RND_ZERO, RND_MIN_INF, RND_INF, RND_CONV, S_RND; "
                   "an AP_ prefix and lower case are accepted)");
}

Overflow parse_overflow(const std::string& name) {
  std::string s = normalise(name);
  if (s == "WRAP") return Overflow::kWrap;
  if (s == "SAT") return Overflow::kSat;
  if (s == "SAT_SYM") return Overflow::kSatSym;
  if (s == "SAT_ZERO") return Overflow::kSatZero;
  throw InputError("unknown overflow mode '" + name +
                   "' (valid: WRAP, SAT, SAT_SYM, SAT_ZERO; an AP_ prefix and lower case are accepted)");
}

std::string to_string(Round r) {
  switch (r) {
    case Round::kTrn:
      return "AP_TRN";
    case Round::kTrnZero:
      return "AP_TRN_ZERO";
    case Round::kRnd:
      return "AP_RND";
    case Round::kRndZero:
      return "AP_RND_ZERO";
    case Round::kRndMinInf:
      return "AP_RND_MIN_INF";
    case Round::kRndInf:
      return "AP_RND_INF";
    case Round::kRndConv:
      return "AP_RND_CONV";
    case Round::kStochastic:
      return "S_RND";
  }
  KILN_CHECK(false, "bad Round value " + std::to_string(static_cast<int>(r)));
}

std::string to_string(Overflow o) {
  switch (o) {
    case Overflow::kWrap:
      return "AP_WRAP";
    case Overflow::kSat:
      return "AP_SAT";
    case Overflow::kSatSym:
      return "AP_SAT_SYM";
    case Overflow::kSatZero:
      return "AP_SAT_ZERO";
  }
  KILN_CHECK(false, "bad Overflow value " + std::to_string(static_cast<int>(o)));
}

// ---- integer codes -----------------------------------------------------------------------------------

int64_t to_code(double xq, int f) { return checked_code(std::ldexp(xq, f), xq, f); }

double from_code(int64_t code, int f) { return std::ldexp(static_cast<double>(code), -f); }

// ---- calibration -------------------------------------------------------------------------------------

namespace {

// ceil(log2(v)) for v > 0, exact: a normal v = 1.m * 2^e is a power of two iff its mantissa bits are 0.
// Read from the bits rather than through frexp: HGQ training runs this for every activation entry every
// step (FixedQuantizer::track_range). Subnormals and inf take frexp's way.
int ceil_log2(double v) {
  if (std::isinf(v)) return std::numeric_limits<int>::max();
  uint64_t bits = 0;
  std::memcpy(&bits, &v, sizeof bits);
  const int biased = static_cast<int>(bits >> 52);  // v > 0: no sign bit
  if (biased > 0) return biased - 1023 + ((bits & ((uint64_t{1} << 52) - 1)) != 0);
  int e = 0;
  double m = std::frexp(v, &e);
  return m == 0.5 ? e - 1 : e;
}

// ceil(log2(a + b)) of the exact sum, for a + b > 0. The double sum can round down onto a power of two that
// the exact sum lies above (2^60 + 1 rounds to 2^60, 2 - 2^-52 + 2^-51 to 2); TwoSum gives the rounding error
// exactly (round to nearest, no fast-math), and only that case moves the result.
int ceil_log2_of_sum(double a, double b) {
  const double v = a + b;
  int r = ceil_log2(v);
  const double bp = v - a, ap = v - bp;
  const double err = (a - ap) + (b - bp);  // a + b = v + err
  if (err > 0 && std::isfinite(v) && v == pow2(r)) ++r;
  return r;
}

}  // namespace

int integer_bits_for(double max, int f) {
  if (!std::isfinite(max)) throw InputError("integer_bits_for: max is " + std::to_string(max));
  if (max >= 0 && std::abs(f) <= kMaxBits) return integer_bits_for_nonneg(max, f);
  const double step = pow2(-f);
  return max + step > 0 ? ceil_log2_of_sum(max, step) : -f;
}

int integer_bits_for(double min, double max, int f, int k) {
  if (std::isnan(min) || std::isnan(max)) throw InputError("integer_bits_for: min or max is NaN");
  if (k != 0 && k != 1) throw InputError("integer_bits_for: k must be 0 or 1, got " + std::to_string(k));
  int lo = -f - k;
  int i = lo;
  if (k == 1 && min < 0) i = std::max(i, ceil_log2(-min));
  const double step = pow2(-f);
  if (max + step > 0) i = std::max(i, ceil_log2_of_sum(max, step));
  return std::min(i, 32);
}

}  // namespace kiln::compress
