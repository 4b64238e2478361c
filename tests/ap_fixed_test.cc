// kiln's host model of Xilinx ap_fixed / ap_int (codegen/hls_host) against the reference tables of
// ../shared/reference/quantization.md (measured with the Xilinx headers) and against the engine's own
// quantizer, kiln::compress::quantize, on random values, random types and every mode combination.
// Every expected value is an exact binary fraction, compared with ==.
#include "ap_fixed.h"

#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "compress/fixed_point.h"

using kiln::compress::FixedType;
using kiln::compress::Overflow;
using kiln::compress::Round;

namespace {

// The stored code of a value (value = code * 2^-(W - I)), through the model's test access.
template <typename T>
long long code(const T& x) {
  return static_cast<long long>(ap_host_detail::access::code(x));
}

Round to_round(ap_q_mode q) {
  switch (q) {
    case AP_RND:
      return Round::kRnd;
    case AP_RND_ZERO:
      return Round::kRndZero;
    case AP_RND_MIN_INF:
      return Round::kRndMinInf;
    case AP_RND_INF:
      return Round::kRndInf;
    case AP_RND_CONV:
      return Round::kRndConv;
    case AP_TRN:
      return Round::kTrn;
    case AP_TRN_ZERO:
      return Round::kTrnZero;
  }
  return Round::kTrn;
}

Overflow to_overflow(ap_o_mode o) {
  switch (o) {
    case AP_SAT:
      return Overflow::kSat;
    case AP_SAT_ZERO:
      return Overflow::kSatZero;
    case AP_SAT_SYM:
      return Overflow::kSatSym;
    default:
      return Overflow::kWrap;
  }
}

// The engine's description of ap_fixed<W, I, Q, O> (S) or ap_ufixed<W, I, Q, O>: k + i + f = W, k + i = I.
FixedType engine_type(int W, int I, bool S, ap_q_mode q, ap_o_mode o) {
  const int k = S ? 1 : 0;
  return FixedType{k, I - k, W - I, to_round(q), to_overflow(o)};
}

template <int W, int I, bool S, ap_q_mode Q = AP_TRN, ap_o_mode O = AP_WRAP>
using Fx = typename std::conditional<S, ap_fixed<W, I, Q, O>, ap_ufixed<W, I, Q, O>>::type;

constexpr ap_q_mode kQ[] = {AP_RND,      AP_RND_ZERO, AP_RND_MIN_INF, AP_RND_INF,
                            AP_RND_CONV, AP_TRN,      AP_TRN_ZERO};
constexpr ap_o_mode kO[] = {AP_SAT, AP_SAT_ZERO, AP_SAT_SYM, AP_WRAP};
constexpr int kModes = 7 * 4;

const char* name(ap_q_mode q) {
  static const char* names[] = {"AP_RND",      "AP_RND_ZERO", "AP_RND_MIN_INF", "AP_RND_INF",
                                "AP_RND_CONV", "AP_TRN",      "AP_TRN_ZERO"};
  return names[q];
}
const char* name(ap_o_mode o) {
  static const char* names[] = {"AP_SAT", "AP_SAT_ZERO", "AP_SAT_SYM", "AP_WRAP", "AP_WRAP_SM"};
  return names[o];
}

// Mismatches of a randomized check: counted, the first few described.
struct Tally {
  long checked = 0;
  long failed = 0;
  std::vector<std::string> examples;
  void add(bool ok, const std::string& what) {
    ++checked;
    if (ok) return;
    ++failed;
    if (examples.size() < 8) examples.push_back(what);
  }
  void report() const {
    for (const std::string& e : examples) MESSAGE(e);
    CHECK(failed == 0);
  }
};

template <typename... Args>
std::string describe(const Args&... args) {
  std::ostringstream s;
  s.precision(17);
  (s << ... << args);
  return s.str();
}

// A double aimed at the interesting places of a (W, I, S) type: codes inside and beyond the range on both
// sides, exact ties half-way between codes, arbitrary fractions, magnitudes far off, and special values.
double draw(std::mt19937_64& rng, int W, int I, bool S) {
  const int F = W - I;
  std::uniform_real_distribution<double> u01(0.0, 1.0);
  const double lo = S ? -std::ldexp(1.0, W - 1) : 0.0;                // smallest code
  const double hi = S ? std::ldexp(1.0, W - 1) : std::ldexp(1.0, W);  // one past the largest code
  const double span = hi - lo;
  const double lsb_half = std::ldexp(0.5, -F);
  switch (std::uniform_int_distribution<int>(0, 9)(rng)) {
    case 0:
    case 1:
    case 2: {  // a code in the range or up to half a range beyond it, plus a fraction that is often a tie
      const double c = std::floor(lo - span / 2 + u01(rng) * 2 * span);
      const double fracs[] = {0.0, 0.5, u01(rng), 0.5 + std::ldexp(1.0, -30), 0.5 - std::ldexp(1.0, -30)};
      return std::ldexp(c + fracs[std::uniform_int_distribution<int>(0, 4)(rng)], -F);
    }
    case 3:
    case 4: {  // inside the range
      const double c = std::floor(lo + u01(rng) * span);
      return std::ldexp(c + (u01(rng) < 0.5 ? 0.5 : u01(rng)), -F);
    }
    case 5:
    case 6: {  // any magnitude around the type's scale, either sign
      const int e = std::uniform_int_distribution<int>(-F - 8, I + 8)(rng);
      return (u01(rng) < 0.5 ? -1 : 1) * std::ldexp(1.0 + u01(rng), e);
    }
    case 7: {  // the edges of the range, and half an LSB either side of them
      const double edges[] = {std::ldexp(lo, -F),
                              std::ldexp(hi - 1, -F),
                              std::ldexp(lo, -F) - lsb_half,
                              std::ldexp(hi - 1, -F) + lsb_half,
                              lsb_half,
                              -lsb_half,
                              std::ldexp(lo + 1, -F)};
      return edges[std::uniform_int_distribution<int>(0, 6)(rng)];
    }
    case 8: {
      const double specials[] = {0.0, -0.0, 1e200, -1e200, 1e-200, -1e-200, 1.0, -1.0, 0.5, -0.5};
      return specials[std::uniform_int_distribution<int>(0, 9)(rng)];
    }
    default:
      return (u01(rng) - 0.5) * std::ldexp(1.0, I + 2);
  }
}

// ap_[u]fixed<W, I, Q, O>(x) against compress::quantize for n random x (exact: W <= 53).
template <int W, int I, bool S, ap_q_mode Q, ap_o_mode O>
void cross_check_one(std::mt19937_64& rng, int n, Tally& tally) {
  static_assert(W <= 53, "compress::quantize is exact while codes fit a double's significand");
  const FixedType t = engine_type(W, I, S, Q, O);
  for (int k = 0; k < n; ++k) {
    const double x = draw(rng, W, I, S);
    const double want = kiln::compress::quantize(x, t);
    const double got = Fx<W, I, S, Q, O>(x).to_double();
    tally.add(got == want, describe(S ? "ap_fixed<" : "ap_ufixed<", W, ",", I, ",", name(Q), ",", name(O),
                                    ">(", x, ") = ", got, ", quantize gives ", want));
  }
}

template <int W, int I, bool S, std::size_t... M>
void cross_check_modes(std::mt19937_64& rng, int n, Tally& tally, std::index_sequence<M...>) {
  (cross_check_one<W, I, S, kQ[M / 4], kO[M % 4]>(rng, n, tally), ...);
}

template <int W, int I>
void cross_check_type(std::mt19937_64& rng, int n, Tally& tally) {
  cross_check_modes<W, I, true>(rng, n, tally, std::make_index_sequence<kModes>{});
  cross_check_modes<W, I, false>(rng, n, tally, std::make_index_sequence<kModes>{});
}

}  // namespace

TEST_CASE("ap_fixed<4,2,Q,AP_WRAP>: the rounding table, every row and mode") {
  // Columns in the reference's order: TRN, TRN_ZERO, RND, RND_ZERO, RND_INF, RND_MIN_INF, RND_CONV.
  struct Row {
    double x;
    double e[7];
  };
  const Row rows[] = {
      {0.125, {0, 0, 0.25, 0, 0.25, 0, 0}},        {0.375, {0.25, 0.25, 0.5, 0.25, 0.5, 0.25, 0.5}},
      {-0.125, {-0.25, 0, 0, 0, -0.25, -0.25, 0}}, {-0.625, {-0.75, -0.5, -0.5, -0.5, -0.75, -0.75, -0.5}},
      {1.9, {1.75, 1.75, -2, -2, -2, -2, -2}},  // rounding to 2.0 overflows, then wraps to -2
  };
  for (const Row& r : rows) {
    CAPTURE(r.x);
    CHECK(ap_fixed<4, 2, AP_TRN, AP_WRAP>(r.x).to_double() == r.e[0]);
    CHECK(ap_fixed<4, 2, AP_TRN_ZERO, AP_WRAP>(r.x).to_double() == r.e[1]);
    CHECK(ap_fixed<4, 2, AP_RND, AP_WRAP>(r.x).to_double() == r.e[2]);
    CHECK(ap_fixed<4, 2, AP_RND_ZERO, AP_WRAP>(r.x).to_double() == r.e[3]);
    CHECK(ap_fixed<4, 2, AP_RND_INF, AP_WRAP>(r.x).to_double() == r.e[4]);
    CHECK(ap_fixed<4, 2, AP_RND_MIN_INF, AP_WRAP>(r.x).to_double() == r.e[5]);
    CHECK(ap_fixed<4, 2, AP_RND_CONV, AP_WRAP>(r.x).to_double() == r.e[6]);
  }
  // The defaults are AP_TRN and AP_WRAP.
  CHECK(ap_fixed<4, 2>(-0.625).to_double() == -0.75);
  CHECK(ap_fixed<4, 2>(2.1).to_double() == -2.0);
}

TEST_CASE("overflow examples") {
  // ap_fixed<4,2,AP_TRN,...>: step 0.25, range [-2, 1.75].
  CHECK(ap_fixed<4, 2, AP_TRN, AP_WRAP>(2.1).to_double() == -2.0);
  CHECK(ap_fixed<4, 2, AP_TRN, AP_WRAP>(-2.3).to_double() == 1.5);
  CHECK(ap_fixed<4, 2, AP_TRN, AP_SAT>(2.1).to_double() == 1.75);
  CHECK(ap_fixed<4, 2, AP_TRN, AP_SAT>(-2.3).to_double() == -2.0);
  CHECK(ap_ufixed<4, 1, AP_RND, AP_SAT>(-0.3).to_double() == 0.0);
  CHECK(ap_fixed<8, 3, AP_RND, AP_SAT>(2.7183).to_double() == 2.71875);
  CHECK(ap_fixed<4, 2, AP_RND, AP_WRAP>(1.9).to_double() == -2.0);  // rounds to 2.0, which wraps
  // SAT_SYM: the exact minimum code maps to -max; SAT keeps it.
  CHECK(ap_fixed<4, 2, AP_TRN, AP_SAT_SYM>(-2.0).to_double() == -1.75);
  CHECK(ap_fixed<4, 2, AP_TRN, AP_SAT_SYM>(-5.0).to_double() == -1.75);
  CHECK(ap_fixed<4, 2, AP_TRN, AP_SAT>(-2.0).to_double() == -2.0);
  CHECK(ap_ufixed<4, 2, AP_TRN, AP_SAT_SYM>(-1.0).to_double() == 0.0);  // unsigned: as SAT
  CHECK(ap_ufixed<4, 2, AP_TRN, AP_SAT_SYM>(9.0).to_double() == 3.75);
  // SAT_ZERO: any overflow gives 0; in range is untouched.
  CHECK(ap_fixed<4, 2, AP_TRN, AP_SAT_ZERO>(2.1).to_double() == 0.0);
  CHECK(ap_fixed<4, 2, AP_TRN, AP_SAT_ZERO>(-2.3).to_double() == 0.0);
  CHECK(ap_fixed<4, 2, AP_TRN, AP_SAT_ZERO>(1.8).to_double() == 1.75);
  CHECK(ap_fixed<4, 2, AP_RND, AP_SAT_ZERO>(1.9).to_double() == 0.0);  // RND rounds it out of range
}

TEST_CASE("test vectors 1-11 of the reference") {
  // (k, i, f) is ap_fixed<k+i+f, k+i> (ap_ufixed<i+f, i> when k = 0).
  CHECK(ap_fixed<4, 1, AP_RND, AP_SAT>(0.3).to_double() == 0.25);            // 1
  CHECK(ap_fixed<4, 1, AP_RND, AP_SAT>(0.3125).to_double() == 0.375);        // 2
  CHECK(ap_fixed<4, 1, AP_RND_CONV, AP_SAT>(0.3125).to_double() == 0.25);    // 2
  CHECK(ap_fixed<4, 1, AP_RND, AP_SAT>(-0.3125).to_double() == -0.25);       // 3
  CHECK(ap_fixed<4, 1, AP_RND_CONV, AP_SAT>(-0.3125).to_double() == -0.25);  // 3
  CHECK(ap_fixed<4, 4, AP_RND, AP_SAT>(-2.5).to_double() == -2.0);           // 4
  CHECK(ap_fixed<4, 4, AP_RND_INF, AP_SAT>(-2.5).to_double() == -3.0);       // 4
  CHECK(ap_fixed<4, 4, AP_RND_MIN_INF, AP_SAT>(-2.5).to_double() == -3.0);   // 4
  CHECK(ap_fixed<4, 4, AP_RND_ZERO, AP_SAT>(-2.5).to_double() == -2.0);      // 4
  CHECK(ap_fixed<4, 1, AP_TRN, AP_SAT>(-0.3).to_double() == -0.375);         // 5
  CHECK(ap_fixed<4, 1, AP_TRN_ZERO, AP_SAT>(-0.3).to_double() == -0.25);     // 5
  CHECK(ap_fixed<4, 1, AP_RND, AP_SAT>(1.7).to_double() == 0.875);           // 6
  CHECK(ap_fixed<4, 1, AP_RND, AP_WRAP>(1.7).to_double() == -0.25);          // 6
  CHECK(ap_fixed<4, 1, AP_RND, AP_SAT>(-1.5).to_double() == -1.0);           // 7
  CHECK(ap_fixed<4, 1, AP_RND, AP_SAT_SYM>(-1.5).to_double() == -0.875);     // 7
  CHECK(ap_fixed<4, 1, AP_RND, AP_WRAP>(-1.5).to_double() == 0.5);           // 7
  CHECK(ap_ufixed<4, 2, AP_RND, AP_SAT>(-0.6).to_double() == 0.0);           // 8
  CHECK(ap_ufixed<4, 2, AP_RND, AP_WRAP>(-0.6).to_double() == 3.5);          // 8
  CHECK(ap_ufixed<4, 2, AP_RND, AP_SAT>(5.3).to_double() == 3.75);           // 9
  CHECK(ap_ufixed<4, 2, AP_RND, AP_WRAP>(5.3).to_double() == 1.25);          // 9
  CHECK(ap_ufixed<3, -2, AP_RND, AP_SAT>(0.1).to_double() == 0.09375);       // 10
  CHECK(ap_ufixed<3, -2, AP_RND, AP_SAT>(0.3).to_double() == 0.21875);       // 10
  CHECK(ap_fixed<8, 8, AP_RND, AP_WRAP>(200).to_double() == -56.0);          // 11, from an int
  CHECK(ap_fixed<8, 8, AP_RND, AP_WRAP>(200.0).to_double() == -56.0);        // 11, from a double
  CHECK(code(ap_fixed<8, 3, AP_RND, AP_SAT>(2.7183)) == 87);                 // 87 / 32
}

TEST_CASE("negative I, I > W, width 1") {
  // I > W (negative f): ap_fixed<3, 5> has step 4 and range [-16, 12].
  CHECK(ap_fixed<3, 5, AP_RND, AP_SAT>(9.0).to_double() == 8.0);
  CHECK(ap_fixed<3, 5, AP_RND, AP_SAT>(10.0).to_double() == 12.0);  // 2.5 steps: ties up
  CHECK(ap_fixed<3, 5, AP_RND, AP_SAT>(13.0).to_double() == 12.0);
  CHECK(ap_fixed<3, 5, AP_RND, AP_SAT>(-30.0).to_double() == -16.0);
  CHECK(ap_fixed<3, 5, AP_RND, AP_WRAP>(-30.0).to_double() == 4.0);  // -28: code -7 wraps to 1
  CHECK(code(ap_fixed<3, 5, AP_RND, AP_WRAP>(-30.0)) == 1);
  // Negative I: ap_ufixed<3, -2> holds 0 .. 0.21875 in steps of 1/32; ap_fixed<4, -1> is [-0.25, 0.21875].
  CHECK(ap_ufixed<3, -2, AP_TRN, AP_SAT>(1.0).to_double() == 0.21875);
  CHECK(ap_fixed<4, -1, AP_TRN, AP_SAT>(-1.0).to_double() == -0.25);
  CHECK(ap_fixed<4, -1, AP_TRN, AP_WRAP>(0.25).to_double() == -0.25);
  // Width 1 signed: the values {-2^-f, 0}; width 1 unsigned: {0, 2^-f}.
  CHECK(ap_fixed<1, -2, AP_RND, AP_SAT>(-0.1).to_double() == -0.125);
  CHECK(ap_fixed<1, -2, AP_RND, AP_SAT>(0.1).to_double() == 0.0);
  CHECK(ap_fixed<1, 1, AP_TRN, AP_WRAP>(1.0).to_double() == -1.0);
  CHECK(ap_ufixed<1, 1, AP_RND, AP_SAT>(0.7).to_double() == 1.0);
  CHECK(ap_ufixed<1, 1, AP_RND, AP_WRAP>(2.0).to_double() == 0.0);
}

TEST_CASE("from double: signed zero, infinities, NaN, tiny and huge values") {
  const double inf = std::numeric_limits<double>::infinity();
  const double nan = std::numeric_limits<double>::quiet_NaN();
  CHECK(code(ap_fixed<8, 3>(-0.0)) == 0);
  // As in the Xilinx model, infinities act as huge values: saturate under SAT, vanish under WRAP.
  CHECK(ap_fixed<8, 3, AP_TRN, AP_SAT>(inf).to_double() == 3.96875);
  CHECK(ap_fixed<8, 3, AP_TRN, AP_SAT>(-inf).to_double() == -4.0);
  CHECK(ap_fixed<8, 3, AP_TRN, AP_SAT_SYM>(-inf).to_double() == -3.96875);
  CHECK(ap_fixed<8, 3, AP_TRN, AP_WRAP>(inf).to_double() == 0.0);
  CHECK(ap_fixed<8, 3, AP_TRN, AP_SAT_ZERO>(inf).to_double() == 0.0);
  CHECK(ap_fixed<8, 3, AP_TRN, AP_SAT>(nan).to_double() == 3.96875);  // NaN's sign bit is clear
  CHECK(ap_fixed<8, 3, AP_TRN, AP_WRAP>(nan).to_double() == 0.0);
  // Subnormal and tiny inputs: floor of a tiny negative is -LSB, every other mode gives 0.
  const double sub = std::numeric_limits<double>::denorm_min();
  CHECK(ap_fixed<8, 3, AP_TRN>(-sub).to_double() == -0.03125);
  CHECK(ap_fixed<8, 3, AP_TRN>(sub).to_double() == 0.0);
  CHECK(ap_fixed<8, 3, AP_RND>(-sub).to_double() == 0.0);
  CHECK(ap_fixed<8, 3, AP_TRN_ZERO>(-1e-300).to_double() == 0.0);
  CHECK(ap_fixed<8, 3, AP_RND_MIN_INF>(-1e-300).to_double() == 0.0);
  // Huge: 2^100 has no bits inside the type, so WRAP gives 0 and SAT the maximum.
  CHECK(ap_fixed<8, 3, AP_TRN, AP_WRAP>(std::ldexp(1.0, 100)).to_double() == 0.0);
  CHECK(ap_fixed<8, 3, AP_TRN, AP_SAT>(std::ldexp(1.0, 100)).to_double() == 3.96875);
  CHECK(ap_fixed<8, 3, AP_TRN, AP_WRAP>(std::ldexp(3.0, 2)).to_double() == -4.0);  // 12 = 0b1100.00000
  // float is exactly a double.
  CHECK(ap_fixed<16, 4, AP_RND>(0.1f).to_double() ==
        kiln::compress::quantize(static_cast<double>(0.1f), engine_type(16, 4, true, AP_RND, AP_WRAP)));
}

TEST_CASE("randomized cross-check against compress::quantize: 28 mode pairs x 60 types") {
  std::mt19937_64 rng(20240611);
  Tally tally;
  const int n = 64;  // values per (type, modes): 64 * 28 * 60 = 107,520
  cross_check_type<1, 1>(rng, n, tally);
  cross_check_type<1, -3>(rng, n, tally);
  cross_check_type<1, 4>(rng, n, tally);
  cross_check_type<2, 0>(rng, n, tally);
  cross_check_type<3, -2>(rng, n, tally);
  cross_check_type<3, 5>(rng, n, tally);
  cross_check_type<4, 1>(rng, n, tally);
  cross_check_type<4, 2>(rng, n, tally);
  cross_check_type<4, 4>(rng, n, tally);
  cross_check_type<5, -4>(rng, n, tally);
  cross_check_type<6, 9>(rng, n, tally);
  cross_check_type<7, 3>(rng, n, tally);
  cross_check_type<8, 3>(rng, n, tally);
  cross_check_type<8, 8>(rng, n, tally);
  cross_check_type<10, 2>(rng, n, tally);
  cross_check_type<12, 20>(rng, n, tally);
  cross_check_type<16, 6>(rng, n, tally);
  cross_check_type<18, 8>(rng, n, tally);
  cross_check_type<20, -6>(rng, n, tally);
  cross_check_type<24, 12>(rng, n, tally);
  cross_check_type<31, 16>(rng, n, tally);
  cross_check_type<32, 0>(rng, n, tally);
  cross_check_type<40, 20>(rng, n, tally);
  cross_check_type<45, 50>(rng, n, tally);
  cross_check_type<48, 1>(rng, n, tally);
  cross_check_type<52, 26>(rng, n, tally);
  cross_check_type<53, 53>(rng, n, tally);
  cross_check_type<53, -7>(rng, n, tally);
  cross_check_type<53, 10>(rng, n, tally);
  cross_check_type<14, 14>(rng, n, tally);
  MESSAGE("checked " << tally.checked << " values");
  CHECK(tally.checked >= 100000);
  tally.report();
}

namespace {

// dst(src(x)) against quantize(src(x)): requantization from one fixed type to another, every mode pair.
template <typename Src, int W, int I, bool S, ap_q_mode Q, ap_o_mode O>
void requantize_one(std::mt19937_64& rng, int n, Tally& tally) {
  const FixedType t = engine_type(W, I, S, Q, O);
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  for (int k = 0; k < n; ++k) {
    // Spread over the source range (and beyond it, so the source's own WRAP also plays).
    const Src src(u(rng) * std::ldexp(1.0, Src::iwidth + 1));
    const double want = kiln::compress::quantize(src.to_double(), t);
    const Fx<W, I, S, Q, O> dst = src;
    tally.add(dst.to_double() == want,
              describe(src.to_double(), " -> <", W, ",", I, S ? ",signed," : ",unsigned,", name(Q), ",",
                       name(O), "> = ", dst.to_double(), ", quantize gives ", want));
  }
}

template <typename Src, int W, int I, bool S, std::size_t... M>
void requantize_modes(std::mt19937_64& rng, int n, Tally& tally, std::index_sequence<M...>) {
  (requantize_one<Src, W, I, S, kQ[M / 4], kO[M % 4]>(rng, n, tally), ...);
}

}  // namespace

TEST_CASE("requantization between fixed types and from integers, every mode pair") {
  std::mt19937_64 rng(7);
  Tally tally;
  const auto all = std::make_index_sequence<kModes>{};
  requantize_modes<ap_fixed<16, 6>, 8, 3, true>(rng, 300, tally, all);     // fewer F and I bits
  requantize_modes<ap_fixed<16, 6>, 6, 2, false>(rng, 300, tally, all);    // signed to unsigned
  requantize_modes<ap_ufixed<12, 4>, 6, 2, true>(rng, 300, tally, all);    // unsigned to signed
  requantize_modes<ap_fixed<10, -2>, 6, -4, true>(rng, 300, tally, all);   // negative I both sides
  requantize_modes<ap_fixed<20, 10>, 4, 8, true>(rng, 300, tally, all);    // I > W, negative F
  requantize_modes<ap_fixed<6, 2>, 12, 5, true>(rng, 100, tally, all);     // widening: always exact
  requantize_modes<ap_fixed<32, 32>, 9, 9, false>(rng, 300, tally, all);   // integer-valued source
  requantize_modes<ap_ufixed<53, 20>, 24, 3, true>(rng, 300, tally, all);  // wide source
  // From C integers and ap_int: the integer's exact value, rounded and overflowed as any other.
  for (int v = -300; v <= 300; v += 7) {
    CAPTURE(v);
    CHECK(ap_fixed<6, 4, AP_TRN, AP_SAT>(v).to_double() ==
          kiln::compress::quantize(v, engine_type(6, 4, true, AP_TRN, AP_SAT)));
    CHECK(ap_fixed<6, 4, AP_RND, AP_WRAP>(v).to_double() ==
          kiln::compress::quantize(v, engine_type(6, 4, true, AP_RND, AP_WRAP)));
    CHECK(ap_fixed<4, 7, AP_RND_CONV, AP_WRAP>(v).to_double() ==
          kiln::compress::quantize(v, engine_type(4, 7, true, AP_RND_CONV, AP_WRAP)));
    CHECK(ap_ufixed<6, 8, AP_RND_ZERO, AP_SAT>(ap_int<10>(v)).to_double() ==
          kiln::compress::quantize(ap_int<10>(v).to_double(), engine_type(6, 8, false, AP_RND_ZERO, AP_SAT)));
  }
  CHECK(ap_fixed<8, 8>(true).to_double() == 1.0);
  CHECK(ap_fixed<8, 8>(static_cast<unsigned char>(255)).to_double() == -1.0);  // 255 wraps in 8 signed bits
  CHECK(ap_fixed<40, 40>(-5000000000LL).to_double() == -5000000000.0);
  CHECK(ap_ufixed<64, 64>(~0ULL).to_uint64() == ~0ULL);
  tally.report();
}

TEST_CASE("W up to 64: in-range conversions against quantize, edges exactly") {
  std::mt19937_64 rng(64);
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  // A double has 53 significant bits, so in range the code is exact and so is quantize's value.
  for (int k = 0; k < 20000; ++k) {
    const double x = u(rng) * std::ldexp(1.0, std::uniform_int_distribution<int>(-40, 19)(rng));
    CHECK(ap_fixed<64, 20, AP_RND_CONV, AP_SAT>(x).to_double() ==
          kiln::compress::quantize(x, engine_type(64, 20, true, AP_RND_CONV, AP_SAT)));
    CHECK(ap_fixed<60, -3, AP_TRN, AP_WRAP>(x / (1 << 23)).to_double() ==
          kiln::compress::quantize(x / (1 << 23), engine_type(60, -3, true, AP_TRN, AP_WRAP)));
    CHECK(ap_ufixed<64, 20, AP_RND_INF, AP_SAT>(std::fabs(x)).to_double() ==
          kiln::compress::quantize(std::fabs(x), engine_type(64, 20, false, AP_RND_INF, AP_SAT)));
  }
  // Saturation and wrap at 64 bits, exactly on the codes.
  CHECK(code(ap_fixed<64, 32, AP_TRN, AP_SAT>(1e30)) == std::numeric_limits<long long>::max());
  CHECK(code(ap_fixed<64, 32, AP_TRN, AP_SAT>(-1e30)) == std::numeric_limits<long long>::min());
  CHECK(code(ap_fixed<64, 32, AP_TRN, AP_SAT_SYM>(-1e30)) == -std::numeric_limits<long long>::max());
  CHECK(ap_ufixed<64, 64, AP_TRN, AP_SAT>(1e30).to_uint64() == ~0ULL);
  CHECK(ap_ufixed<64, 64, AP_TRN, AP_WRAP>(-1.0).to_uint64() == ~0ULL);
  CHECK(code(ap_fixed<64, 64, AP_TRN, AP_WRAP>(std::ldexp(1.0, 63))) ==
        std::numeric_limits<long long>::min());
  CHECK(code(ap_fixed<64, 64, AP_TRN, AP_WRAP>(std::ldexp(3.0, 63))) ==
        std::numeric_limits<long long>::min());
  CHECK(code(ap_fixed<64, 64, AP_TRN, AP_WRAP>(std::ldexp(1.0, 64))) == 0);
  // Codes 2^63 away from the source's LSB: in range for an unsigned 64-bit type, at the minimum for a signed
  // one.
  CHECK(ap_ufixed<64, 1, AP_TRN, AP_SAT>(ap_ufixed<1, 1>(1)).to_double() == 1.0);  // code 2^63
  CHECK(ap_ufixed<64, 1, AP_TRN, AP_SAT>(1).to_double() == 1.0);
  CHECK(code(ap_fixed<64, 1, AP_TRN, AP_SAT>(-1)) == std::numeric_limits<long long>::min());
  CHECK(code(ap_fixed<64, 1, AP_TRN, AP_SAT_SYM>(-1)) == -std::numeric_limits<long long>::max());
  // to_double rounds to nearest, ties to even, when the code has more than 53 significant bits.
  const long long two53 = 1LL << 53;
  CHECK(ap_fixed<64, 64>(two53 + 1).to_double() == std::ldexp(1.0, 53));
  CHECK(ap_fixed<64, 64>(two53 + 3).to_double() == std::ldexp(1.0, 53) + 4);
  CHECK(ap_fixed<64, 64>(std::numeric_limits<long long>::max()).to_double() == std::ldexp(1.0, 63));
  CHECK(ap_ufixed<64, 0, AP_TRN, AP_SAT>(2.0).to_double() == 1.0);    // 1 - 2^-64 rounds up
  CHECK(ap_fixed<30, 5>(16777217.0 / (1 << 24)).to_float() == 1.0f);  // 1 + 2^-24: a tie, to even
}

TEST_CASE("result types of full-precision arithmetic") {
  using F83 = ap_fixed<8, 3>;
  using U83 = ap_ufixed<8, 3>;
  static_assert(std::is_same<decltype(F83() * F83()), ap_fixed<16, 6>>::value, "<8,3>*<8,3> -> <16,6>");
  static_assert(std::is_same<decltype(F83() + F83()), ap_fixed<9, 4>>::value, "<8,3>+<8,3> -> <9,4>");
  static_assert(std::is_same<decltype(F83() - F83()), ap_fixed<9, 4>>::value, "");
  static_assert(std::is_same<decltype(U83() * U83()), ap_ufixed<16, 6>>::value, "");
  static_assert(std::is_same<decltype(U83() + U83()), ap_ufixed<9, 4>>::value, "");
  static_assert(std::is_same<decltype(U83() - U83()), ap_fixed<9, 4>>::value,
                "a difference is always signed");
  // Mixed signedness: the product needs no extra bit; in a sum the unsigned operand gains one.
  static_assert(std::is_same<decltype(F83() * U83()), ap_fixed<16, 6>>::value, "");
  static_assert(std::is_same<decltype(F83() + U83()), ap_fixed<10, 5>>::value, "");
  static_assert(std::is_same<decltype(U83() + F83()), ap_fixed<10, 5>>::value, "");
  // Different F and I (negative I, I > W).
  static_assert(std::is_same<decltype(ap_fixed<4, -2>() * ap_fixed<6, 8>()), ap_fixed<10, 6>>::value, "");
  static_assert(std::is_same<decltype(ap_fixed<4, -2>() + ap_fixed<6, 8>()), ap_fixed<15, 9>>::value, "");
  static_assert(std::is_same<decltype(ap_fixed<12, 4>() + ap_fixed<6, 6>()), ap_fixed<15, 7>>::value, "");
  // Unary minus gains a bit; unary plus keeps the type.
  static_assert(std::is_same<decltype(-F83()), ap_fixed<9, 4>>::value, "");
  static_assert(std::is_same<decltype(-U83()), ap_fixed<9, 4>>::value, "");
  static_assert(
      std::is_same<decltype(+ap_fixed<8, 3, AP_RND, AP_SAT>()), ap_fixed<8, 3, AP_RND, AP_SAT>>::value, "");
  // C integers act as ap_fixed<32, 32> (int), ap_ufixed<32, 32> (unsigned), ap_fixed<64, 64> (long long)...
  static_assert(std::is_same<decltype(F83() * 2), ap_fixed<40, 35>>::value, "");
  static_assert(std::is_same<decltype(2 * F83()), ap_fixed<40, 35>>::value, "");
  static_assert(std::is_same<decltype(F83() + 1), ap_fixed<38, 33>>::value, "");
  static_assert(std::is_same<decltype(U83() * 2u), ap_ufixed<40, 35>>::value, "");
  static_assert(std::is_same<decltype(F83() * static_cast<short>(2)), ap_fixed<24, 19>>::value, "");
  static_assert(std::is_same<decltype(F83() * true), ap_fixed<9, 4>>::value, "");
  // ... and ap_int<W> as ap_fixed<W, W>.
  static_assert(std::is_same<decltype(F83() * ap_int<4>()), ap_fixed<12, 7>>::value, "");
  static_assert(std::is_same<decltype(ap_uint<4>() + F83()), ap_fixed<11, 6>>::value, "");
  // Shifts keep the type exactly.
  static_assert(
      std::is_same<decltype(ap_fixed<8, 3, AP_RND, AP_SAT>() << 2), ap_fixed<8, 3, AP_RND, AP_SAT>>::value,
      "");
  static_assert(std::is_same<decltype(U83() >> 1), U83>::value, "");
  // ap_int: a * b -> W1 + W2; a + b -> max(W1 + (S2 && !S1), W2 + (S1 && !S2)) + 1; a - b signed.
  static_assert(std::is_same<decltype(ap_int<8>() * ap_int<8>()), ap_int<16>>::value, "");
  static_assert(std::is_same<decltype(ap_uint<8>() * ap_uint<8>()), ap_uint<16>>::value, "");
  static_assert(std::is_same<decltype(ap_int<8>() + ap_int<8>()), ap_int<9>>::value, "");
  static_assert(std::is_same<decltype(ap_uint<8>() + ap_int<8>()), ap_int<10>>::value, "");
  static_assert(std::is_same<decltype(ap_uint<8>() + ap_uint<8>()), ap_uint<9>>::value, "");
  static_assert(std::is_same<decltype(ap_uint<8>() - ap_uint<8>()), ap_int<9>>::value, "");
  static_assert(std::is_same<decltype(ap_int<8>() + 1), ap_int<33>>::value, "");
  static_assert(std::is_same<decltype(-ap_int<8>()), ap_int<9>>::value, "");
  static_assert(std::is_same<decltype(-ap_uint<8>()), ap_int<9>>::value, "");
  static_assert(std::is_same<decltype(-ap_int<1>()), ap_int<3>>::value,
                "Xilinx forms -x as ap_uint<1>(0) - x");
  static_assert(std::is_same<decltype(ap_int<8>() << 3), ap_int<8>>::value, "");
  CHECK(true);
}

namespace {

// Exact arithmetic on random codes: the full-precision result equals the real result (computed in double,
// exact because every operand and result here has at most 53 significant bits).
template <typename A, typename B>
void check_arithmetic(std::mt19937_64& rng, int n) {
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  for (int k = 0; k < n; ++k) {
    const A a(u(rng) * std::ldexp(1.0, A::iwidth));
    const B b(u(rng) * std::ldexp(1.0, B::iwidth));
    const double x = a.to_double(), y = b.to_double();
    CAPTURE(x);
    CAPTURE(y);
    CHECK((a * b).to_double() == x * y);
    CHECK((a + b).to_double() == x + y);
    CHECK((a - b).to_double() == x - y);
    CHECK((b - a).to_double() == y - x);
    CHECK((-a).to_double() == -x);
  }
}

}  // namespace

TEST_CASE("full-precision arithmetic is exact") {
  std::mt19937_64 rng(11);
  check_arithmetic<ap_fixed<8, 3>, ap_fixed<8, 3>>(rng, 500);
  check_arithmetic<ap_fixed<8, 3>, ap_ufixed<8, 3>>(rng, 500);
  check_arithmetic<ap_ufixed<7, 2>, ap_ufixed<9, 5>>(rng, 500);
  check_arithmetic<ap_fixed<4, -2>, ap_fixed<6, 8>>(rng, 500);
  check_arithmetic<ap_fixed<24, 12>, ap_fixed<20, 4>>(rng, 500);
  check_arithmetic<ap_ufixed<16, 16>, ap_fixed<12, 2>>(rng, 500);
  check_arithmetic<ap_fixed<32, 0>, ap_fixed<21, 21>>(rng, 500);
  // The extremes of a type: the most negative code squared still fits (signed x signed needs no extra bit).
  const ap_fixed<8, 3> lo(-4.0);
  CHECK((lo * lo).to_double() == 16.0);
  CHECK((-lo).to_double() == 4.0);
  CHECK((ap_ufixed<8, 3>(7.96875) - lo).to_double() == 11.96875);
  // With C integers and ap_int.
  const ap_fixed<8, 3> a(1.34375);
  CHECK((a * 3).to_double() == 4.03125);
  CHECK((3 * a).to_double() == 4.03125);
  CHECK((a + 1).to_double() == 2.34375);
  CHECK((1 - a).to_double() == -0.34375);
  CHECK((a * ap_int<4>(-8)).to_double() == -10.75);
  CHECK((ap_uint<4>(15) - a).to_double() == 13.65625);
}

TEST_CASE("compound assignment: full precision, then the left operand's Q and O") {
  // Rounding: 1.75 * 1.75 = 3.0625 is exact in <8,3> (F = 5); with F = 2 it rounds by the LHS's mode.
  ap_fixed<8, 3, AP_RND, AP_SAT> a = 1.75;
  a *= ap_fixed<8, 3>(1.75);
  CHECK(a.to_double() == 3.0625);
  ap_fixed<6, 4, AP_RND, AP_SAT> b = 1.75;
  b *= ap_fixed<8, 3>(1.75);  // 3.0625 -> 3.0 (nearest quarter)
  CHECK(b.to_double() == 3.0);
  ap_fixed<6, 4, AP_TRN, AP_SAT> c = -1.75;
  c *= ap_fixed<8, 3>(1.75);  // -3.0625 -> floor to -3.25
  CHECK(c.to_double() == -3.25);
  // Overflow: WRAP wraps, SAT clips, with the LHS's modes whatever the RHS's.
  ap_fixed<8, 4> w = 7.5;
  w += ap_fixed<8, 4, AP_RND, AP_SAT>(1.0);
  CHECK(w.to_double() == -7.5);  // 8.5 wraps by 16
  ap_fixed<8, 4, AP_TRN, AP_SAT> s = 7.5;
  s += ap_fixed<8, 4>(1.0);
  CHECK(s.to_double() == 7.9375);
  s -= 20;
  CHECK(s.to_double() == -8.0);
  ap_fixed<8, 4, AP_TRN, AP_SAT_SYM> sym = -7.0;
  sym -= 1;
  CHECK(sym.to_double() == -7.9375);
  // With C integers and ap_int; *= by an int.
  ap_fixed<10, 6> k = 1.5;
  k += 2;
  CHECK(k.to_double() == 3.5);
  k *= -3;
  CHECK(k.to_double() == -10.5);
  k -= ap_int<5>(-10);
  CHECK(k.to_double() == -0.5);
  // A 64-bit LHS: the sum is formed in 126 bits, so += works even when a + b would not fit a type.
  ap_fixed<64, 32, AP_TRN, AP_SAT> big = std::ldexp(1.0, 30);
  big += ap_fixed<64, 32>(std::ldexp(1.0, 30));
  CHECK(code(big) == std::numeric_limits<long long>::max());
  big -= ap_fixed<64, 2>(0.25);
  CHECK(big.to_double() == std::ldexp(1.0, 31) - 0.25);
  // Operands of 64 bits: the product and the aligned sum use the 126-bit intermediate, rounding included.
  ap_fixed<16, 8, AP_RND> r = 3.0;
  r *= ap_fixed<64, 1>(1.0 / 3);  // 3 * (1/3 - 2^-63 or so) = 0.99999...: RND at F = 8 gives 1
  CHECK(r.to_double() == 1.0);
  ap_fixed<16, 8, AP_TRN> t = 3.0;
  t *= ap_fixed<64, 1>(1.0 / 3);
  CHECK(t.to_double() == 1.0 - 1.0 / 256);
  ap_fixed<64, 32> w64 = std::ldexp(1.0, 20) + 0.5;
  w64 *= ap_fixed<62, 31>(std::ldexp(1.0, 10) + 0.25);  // 62 + 64 = 126 bits: the widest *= allowed
  CHECK(w64.to_double() == std::ldexp(1.0, 30) + std::ldexp(1.0, 18) + 512.125);
  ap_fixed<8, 4, AP_TRN> tiny = 1.0;
  tiny += ap_fixed<64, -40>(-1e-15);  // F = 104: the sum is floored at F = 4
  CHECK(tiny.to_double() == 0.9375);
  ap_fixed<8, 4, AP_RND> tiny_rnd = 1.0;
  tiny_rnd += ap_fixed<64, -40>(-1e-15);
  CHECK(tiny_rnd.to_double() == 1.0);
  // Random: x op= y equals the LHS type constructed from the exact result, for an LHS finer than the RHS
  // (sums exact, products rounded) and one coarser (every operation rounds).
  std::mt19937_64 rng(5);
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  for (int n = 0; n < 2000; ++n) {
    const ap_fixed<12, 4, AP_RND_CONV, AP_SAT> x0(u(rng) * 8);
    const ap_fixed<10, 3> y(u(rng) * 4);
    auto x = x0;
    x += y;
    CHECK(x.to_double() == ap_fixed<12, 4, AP_RND_CONV, AP_SAT>(x0.to_double() + y.to_double()).to_double());
    x = x0;
    x -= y;
    CHECK(x.to_double() == ap_fixed<12, 4, AP_RND_CONV, AP_SAT>(x0.to_double() - y.to_double()).to_double());
    x = x0;
    x *= y;
    CHECK(x.to_double() == ap_fixed<12, 4, AP_RND_CONV, AP_SAT>(x0.to_double() * y.to_double()).to_double());
    typedef ap_fixed<8, 5, AP_RND_INF, AP_WRAP> coarse_t;  // F = 3 < 7
    const coarse_t c0(u(rng) * 16);
    coarse_t c = c0;
    c += y;
    CHECK(c.to_double() == coarse_t(c0.to_double() + y.to_double()).to_double());
    c = c0;
    c -= y;
    CHECK(c.to_double() == coarse_t(c0.to_double() - y.to_double()).to_double());
    c = c0;
    c *= y;
    CHECK(c.to_double() == coarse_t(c0.to_double() * y.to_double()).to_double());
  }
}

namespace {

long long floor_div(long long a, long long b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }
long long wrap_signed(long long v, int bits) {
  const long long m = 1LL << bits;
  long long r = ((v % m) + m) % m;
  return r >= m / 2 ? r - m : r;
}

}  // namespace

TEST_CASE("accumulation: a dense layer's sum of products, exact with WRAP and with SAT") {
  // hls4ml's dense: acc = bias; acc += w[i] * x[i]; result = (result_t) acc. Weights <8,2> (F = 6), inputs
  // <8,4> unsigned (F = 4), accumulator <14,7> (F = 7): each product (F = 10) is floored to F = 7 (AP_TRN)
  // and the sum wraps in 14 bits. The expectation below is plain integer arithmetic on the codes.
  typedef ap_fixed<8, 2> weight_t;
  typedef ap_ufixed<8, 4> input_t;
  typedef ap_fixed<14, 7, AP_TRN, AP_WRAP> accum_t;
  typedef ap_fixed<14, 7, AP_TRN, AP_SAT> accum_sat_t;
  typedef ap_fixed<8, 4, AP_RND, AP_SAT> result_t;
  std::mt19937_64 rng(3);
  std::uniform_int_distribution<int> wcode(-128, 127), xcode(0, 255);
  int wrapped = 0, saturated = 0;
  for (int sample = 0; sample < 400; ++sample) {
    accum_t acc = ap_fixed<8, 3>(0.5);  // the bias
    accum_sat_t sat = ap_fixed<8, 3>(0.5);
    long long expect = 64, expect_sat = 64, unwrapped = 64;  // codes at F = 7
    const long long top = 1LL << 13;
    for (int i = 0; i < 24; ++i) {
      const int wc = wcode(rng), xc = xcode(rng);
      const weight_t w = std::ldexp(wc, -6);
      const input_t x = std::ldexp(xc, -4);
      static_assert(std::is_same<decltype(w * x), ap_fixed<16, 6>>::value, "");
      acc += w * x;
      sat += w * x;
      const long long p = static_cast<long long>(wc) * xc;  // F = 10
      expect = wrap_signed(floor_div(expect * 8 + p, 8), 14);
      const long long s = floor_div(expect_sat * 8 + p, 8);
      expect_sat = s >= top ? top - 1 : (s < -top ? -top : s);
      saturated += s != expect_sat;
      unwrapped = floor_div(unwrapped * 8 + p, 8);
      CHECK(code(acc) == expect);
      CHECK(code(sat) == expect_sat);
    }
    wrapped += unwrapped != expect;
    // The final cast: F 7 -> 4 rounding to nearest (ties up), then saturation to <8,4>.
    const result_t res = acc;
    const long long r = floor_div(expect + 4, 8);
    CHECK(code(res) == (r > 127 ? 127 : (r < -128 ? -128 : r)));
  }
  CHECK(wrapped > 0);    // the test really exercised the wrap ...
  CHECK(saturated > 0);  // ... and the saturation
  CHECK(wrapped < 400);
}

TEST_CASE("comparisons: exact between fixed and integer types, to_double against doubles") {
  const ap_fixed<8, 3> a(1.25);
  const ap_fixed<12, 2> b(1.2490234375);  // F = 10
  const ap_ufixed<6, 6> c(1);
  CHECK(b < a);
  CHECK(a > b);
  CHECK(a >= b);
  CHECK(b <= a);
  CHECK(a != b);
  CHECK(!(a == b));
  CHECK(a == ap_fixed<12, 2>(1.25));
  CHECK(c < a);
  CHECK(ap_fixed<4, 8>(32) == 32);  // I > W: step 16
  CHECK(ap_fixed<4, 8>(32) > 31);
  // With C integers (exact) and doubles (through to_double()).
  CHECK(a > 1);
  CHECK(1 < a);
  CHECK(a < 2u);
  CHECK(ap_fixed<8, 3>(-4) == -4);
  CHECK(ap_fixed<8, 3>(-0.5) < 0);
  CHECK(0 > ap_fixed<8, 3>(-0.5));
  CHECK(a == 1.25);
  CHECK(a > 1.2);
  CHECK(1.3 > a);
  CHECK(a <= 1.25f);
  CHECK(ap_fixed<40, 1>(0.0) < std::ldexp(1.0, -40));
  // With ap_int.
  CHECK(a > ap_int<4>(1));
  CHECK(ap_uint<4>(2) > a);
  // Random pairs of different types: the comparison agrees with the exact values.
  std::mt19937_64 rng(9);
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  for (int n = 0; n < 3000; ++n) {
    const ap_fixed<10, 3> x(u(rng) * 4);
    const ap_fixed<7, 5> y(u(rng) * 16 * (n % 2 ? 1 : 0.25));
    const ap_ufixed<9, 4> z(std::fabs(u(rng)) * 4);
    const double dx = x.to_double(), dy = y.to_double(), dz = z.to_double();
    CHECK((x < y) == (dx < dy));
    CHECK((x <= y) == (dx <= dy));
    CHECK((x == y) == (dx == dy));
    CHECK((y > x) == (dy > dx));
    CHECK((x < z) == (dx < dz));
    CHECK((z >= x) == (dz >= dx));
    CHECK((x != z) == (dx != dz));
  }
}

TEST_CASE("comparisons: Xilinx's C-style rule for wide mixed-sign operands") {
  // Narrow: exact.
  CHECK(ap_uint<8>(1) > ap_int<8>(-1));
  CHECK(ap_ufixed<8, 4>(1) > ap_fixed<8, 4>(-1));
  CHECK(ap_uint<31>(1) > ap_int<8>(-1));
  // An unsigned side of >= 32 bits, as wide as the signed side: read as unsigned, like 1u > -1 in C.
  CHECK(!(ap_uint<32>(1) > ap_int<8>(-1)));
  CHECK(ap_uint<32>(1) < ap_int<8>(-1));
  CHECK(ap_uint<32>(0xFFFFFFFFu) == ap_int<8>(-1));  // both read as 2^32 - 1
  CHECK(!(ap_uint<31>(0x7FFFFFFF) == ap_int<8>(-1)));
  CHECK(ap_uint<32>(5) < -1);              // with an int: as 5u < -1 in C
  CHECK(ap_uint<16>(5) > -1);              // narrow unsigned: exact
  CHECK(ap_int<40>(-1) < ap_uint<32>(1));  // the signed side is wider: exact
  // For ap_fixed the widths are taken after aligning the LSBs; the left operand gains a bit when widened.
  CHECK(!(ap_ufixed<40, 40>(1) > ap_fixed<8, 8>(-1)));
  CHECK(!(ap_ufixed<40, 30>(1) > ap_fixed<8, 8>(-1)));  // the signed side, aligned, has 18 bits: rule applies
  // ... which makes it depend on the operand order: here the widened left operand has 34 bits, more than 33.
  CHECK(ap_fixed<32, 32>(-1) < ap_ufixed<33, 32>(1));
  CHECK(!(ap_ufixed<33, 32>(1) > ap_fixed<32, 32>(-1)));
  CHECK(ap_ufixed<16, 8>(1) > 0);
}

TEST_CASE("shifts keep the type: the bit pattern moves, bits shifted out are lost") {
  const ap_fixed<8, 4> a(1.5);  // code 24
  CHECK((a << 1).to_double() == 3.0);
  CHECK((a << 2).to_double() == 6.0);
  CHECK((a << 3).to_double() == -4.0);  // code 192 wraps in 8 bits: -64
  CHECK((a >> 1).to_double() == 0.75);
  CHECK((a >> 5).to_double() == 0.0);    // 24 >> 5 = 0: bits below the LSB are dropped
  CHECK((a << -1).to_double() == 0.75);  // a negative amount shifts the other way
  CHECK((a >> -2).to_double() == 6.0);
  CHECK((a << 8).to_double() == 0.0);
  const ap_fixed<8, 4> n(-1.5);  // code -24
  CHECK((n >> 1).to_double() == -0.75);
  CHECK((n >> 4).to_double() == -0.125);   // floor(-24 / 16) = -2
  CHECK((n >> 9).to_double() == -0.0625);  // all sign: code -1
  CHECK((ap_fixed<8, 4>(-0.0625) >> 1).to_double() == -0.0625);
  // Shifts never saturate, whatever the type's O.
  CHECK((ap_fixed<8, 4, AP_RND, AP_SAT>(1.5) << 3).to_double() == -4.0);
  const ap_ufixed<8, 4> u(15.0);  // code 240: logical right shift
  CHECK((u >> 1).to_double() == 7.5);
  CHECK((u << 1).to_double() == 14.0);  // 480 wraps to 224
  ap_fixed<8, 4> s = a;
  s <<= 1;
  CHECK(s.to_double() == 3.0);
  s >>= 2u;
  CHECK(s.to_double() == 0.75);
  CHECK((ap_int<8>(-3) << 2).to_int() == -12);
  CHECK((ap_int<8>(100) << 1).to_int() == -56);
  CHECK((ap_int<8>(-3) >> 1).to_int() == -2);
  CHECK((ap_uint<8>(200) >> 3).to_int() == 25);
  CHECK((ap_uint<8>(200) << 20).to_int() == 0);
}

TEST_CASE("conversions to built-in types and to ap_int: truncation toward zero") {
  // TRN stores -0.7 as -0.71875 (floor); to_int() then truncates toward zero: 0. -2.5 -> -2.
  CHECK(ap_fixed<8, 3>(-0.7).to_int() == 0);
  CHECK(ap_fixed<8, 3>(-2.5).to_int() == -2);
  CHECK(ap_fixed<8, 3>(2.9).to_int() == 2);
  CHECK(ap_fixed<8, 3>(-4.0).to_int() == -4);
  CHECK(static_cast<int>(ap_fixed<8, 3>(-3.5)) == -3);
  CHECK(static_cast<double>(ap_fixed<8, 3>(-3.5)) == -3.5);
  CHECK(static_cast<float>(ap_fixed<8, 3>(-3.5)) == -3.5f);
  CHECK(static_cast<bool>(ap_fixed<8, 3>(0.03125)));
  CHECK(!static_cast<bool>(ap_fixed<8, 3>(0.01)));
  CHECK(ap_fixed<4, 8>(96).to_int() == 96);    // I > W
  CHECK(ap_ufixed<8, 0>(0.99).to_int() == 0);  // unsigned, I = 0: 0
  CHECK(ap_fixed<8, 40>(std::ldexp(-3.0, 37)).to_int64() == -3LL * (1LL << 37));
  CHECK(ap_fixed<8, 40>(std::ldexp(-3.0, 37)).to_int() == 0);  // the low 32 bits
  CHECK(ap_fixed<40, 40>(std::ldexp(1.0, 33) + 5).to_int() == 5);
  CHECK(ap_fixed<40, 40>(-1).to_uint() == 0xFFFFFFFFu);
  CHECK(ap_fixed<16, 8>(-100.75).to_int64() == -100);
  // The sigmoid/tanh table index of hls4ml: int(x * N / 16) truncates toward zero.
  const ap_fixed<16, 6> x(-2.5234375);  // x * 1024 / 16 = -161.5
  CHECK((x * 64).to_int() == -161);
  // ap_int from ap_fixed: the truncated integer, wrapped.
  CHECK(ap_int<8>(ap_fixed<8, 6>(-7.5)).to_int() == -7);
  CHECK(ap_int<3>(ap_fixed<8, 6>(-7.5)).to_int() == 1);    // -7 wraps in 3 bits
  CHECK(ap_uint<4>(ap_fixed<12, 8>(99.9)).to_int() == 3);  // 99 mod 16
}

TEST_CASE("ap_int / ap_uint") {
  CHECK(ap_uint<8>(300).to_int() == 44);
  CHECK(ap_int<8>(200).to_int() == -56);
  CHECK(ap_int<8>(-129).to_int() == 127);
  CHECK(ap_uint<8>(-1).to_uint() == 255u);
  CHECK(ap_int<64>(std::numeric_limits<long long>::min()).to_int64() ==
        std::numeric_limits<long long>::min());
  CHECK(ap_uint<64>(~0ULL).to_uint64() == ~0ULL);
  CHECK(static_cast<long long>(ap_int<12>(-2000)) == -2000);
  CHECK(static_cast<int>(ap_uint<40>(0x1'0000'0005LL)) == 5);
  CHECK(ap_uint<40>(0x1'0000'0005LL).to_int64() == 0x1'0000'0005LL);
  CHECK(ap_int<10>(-3).to_double() == -3.0);
  CHECK(ap_int<8>() == 0);  // default construction is 0
  // Full precision.
  const ap_uint<8> a = 200;
  const ap_int<8> b = -3;
  CHECK((a + b).to_int() == 197);
  CHECK((a * b).to_int() == -600);
  CHECK((b - a).to_int() == -203);
  CHECK((a - a).to_int() == 0);
  CHECK((-b).to_int() == 3);
  CHECK((-ap_int<8>(-128)).to_int() == 128);
  CHECK((a * 1000).to_int64() == 200000);
  // Compound assignment wraps into the left operand.
  ap_uint<8> c = 250;
  c += 10;
  CHECK(c.to_int() == 4);
  c -= ap_int<4>(5);
  CHECK(c.to_int() == 255);
  c *= 3;
  CHECK(c.to_int() == 253);  // 765 mod 256
  ap_int<64> d = std::numeric_limits<long long>::max();
  d *= ap_uint<64>(~0ULL);  // the product modulo 2^64: -max
  CHECK(d.to_int64() == -std::numeric_limits<long long>::max());
  // Comparisons.
  CHECK(a > b);
  CHECK(b < 0);
  CHECK(a == 200);
  CHECK(200 == a);
  CHECK(a > 199.5);
  CHECK(ap_int<5>(-16) <= ap_uint<3>(0));
}
