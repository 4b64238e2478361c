// Scalar fixed-point semantics against the ap_fixed tables of ../shared/reference/quantization.md, section 2
// (measured with the Xilinx headers). Every expected value is an exact binary fraction: compared with ==.
#include "compress/fixed_point.h"

#include <doctest/doctest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "engine/check.h"

using namespace kiln;
using namespace kiln::compress;

namespace {
FixedType type(int k, int i, int f, Round r, Overflow o) { return FixedType{k, i, f, r, o}; }
}  // namespace

TEST_CASE("ap_fixed<4,2,Q,WRAP>: the rounding table, every row and mode") {
  // Columns in the reference's order: TRN, TRN_ZERO, RND, RND_ZERO, RND_INF, RND_MIN_INF, RND_CONV.
  const std::vector<Round> modes = {Round::kTrn,    Round::kTrnZero,   Round::kRnd,    Round::kRndZero,
                                    Round::kRndInf, Round::kRndMinInf, Round::kRndConv};
  struct Row {
    double x;
    std::vector<double> expected;
  };
  const std::vector<Row> rows = {
      {0.125, {0, 0, 0.25, 0, 0.25, 0, 0}},        {0.375, {0.25, 0.25, 0.5, 0.25, 0.5, 0.25, 0.5}},
      {-0.125, {-0.25, 0, 0, 0, -0.25, -0.25, 0}}, {-0.625, {-0.75, -0.5, -0.5, -0.5, -0.75, -0.75, -0.5}},
      {1.9, {1.75, 1.75, -2, -2, -2, -2, -2}},  // rounding to 2.0 overflows, then wraps to -2
  };
  for (const Row& row : rows) {
    for (size_t m = 0; m < modes.size(); ++m) {
      CAPTURE(row.x);
      CAPTURE(to_string(modes[m]));
      CHECK(quantize(row.x, type(1, 1, 2, modes[m], Overflow::kWrap)) == row.expected[m]);
    }
  }
}

TEST_CASE("overflow examples") {
  // ap_fixed<4,2,AP_TRN,...>: step 0.25, range [-2, 1.75].
  CHECK(quantize(2.1, type(1, 1, 2, Round::kTrn, Overflow::kWrap)) == -2.0);
  CHECK(quantize(-2.3, type(1, 1, 2, Round::kTrn, Overflow::kWrap)) == 1.5);
  CHECK(quantize(2.1, type(1, 1, 2, Round::kTrn, Overflow::kSat)) == 1.75);
  CHECK(quantize(-2.3, type(1, 1, 2, Round::kTrn, Overflow::kSat)) == -2.0);
  // ap_ufixed<4,1,AP_RND,AP_SAT>(-0.3) = 0; ap_fixed<8,3,AP_RND,AP_SAT>(2.7183) = 2.71875 (87/32).
  CHECK(quantize(-0.3, type(0, 1, 3, Round::kRnd, Overflow::kSat)) == 0.0);
  CHECK(quantize(2.7183, type(1, 2, 5, Round::kRnd, Overflow::kSat)) == 2.71875);
  // Rounding itself overflows: 1.9 in ap_fixed<4,2,AP_RND,AP_WRAP> rounds to 2.0, which wraps to -2.
  CHECK(quantize(1.9, type(1, 1, 2, Round::kRnd, Overflow::kWrap)) == -2.0);
  // SAT_SYM: the exact minimum code maps to -max.
  CHECK(quantize(-2.0, type(1, 1, 2, Round::kTrn, Overflow::kSatSym)) == -1.75);
  CHECK(quantize(-2.0, type(1, 1, 2, Round::kTrn, Overflow::kSat)) == -2.0);
  // SAT_ZERO: any overflow gives 0; in range is untouched.
  CHECK(quantize(2.1, type(1, 1, 2, Round::kTrn, Overflow::kSatZero)) == 0.0);
  CHECK(quantize(-2.3, type(1, 1, 2, Round::kTrn, Overflow::kSatZero)) == 0.0);
  CHECK(quantize(1.8, type(1, 1, 2, Round::kTrn, Overflow::kSatZero)) == 1.75);  // TRN keeps it in range
  CHECK(quantize(1.9, type(1, 1, 2, Round::kRnd, Overflow::kSatZero)) == 0.0);   // RND rounds it out
}

TEST_CASE("test vectors 1-11") {
  const Overflow sat = Overflow::kSat, wrap = Overflow::kWrap;
  CHECK(quantize(0.3, type(1, 0, 3, Round::kRnd, sat)) == 0.25);                           // 1
  CHECK(quantize(0.3125, type(1, 0, 3, Round::kRnd, sat)) == 0.375);                       // 2
  CHECK(quantize(0.3125, type(1, 0, 3, Round::kRndConv, sat)) == 0.25);                    // 2
  CHECK(quantize(-0.3125, type(1, 0, 3, Round::kRnd, sat)) == -0.25);                      // 3
  CHECK(quantize(-0.3125, type(1, 0, 3, Round::kRndConv, sat)) == -0.25);                  // 3
  CHECK(quantize(-2.5, type(1, 3, 0, Round::kRnd, sat)) == -2.0);                          // 4
  CHECK(quantize(-2.5, type(1, 3, 0, Round::kRndInf, sat)) == -3.0);                       // 4
  CHECK(quantize(-2.5, type(1, 3, 0, Round::kRndMinInf, sat)) == -3.0);                    // 4
  CHECK(quantize(-2.5, type(1, 3, 0, Round::kRndZero, sat)) == -2.0);                      // 4
  CHECK(quantize(-0.3, type(1, 0, 3, Round::kTrn, sat)) == -0.375);                        // 5
  CHECK(quantize(-0.3, type(1, 0, 3, Round::kTrnZero, sat)) == -0.25);                     // 5
  CHECK(quantize(1.7, type(1, 0, 3, Round::kRnd, sat)) == 0.875);                          // 6
  CHECK(quantize(1.7, type(1, 0, 3, Round::kRnd, wrap)) == -0.25);                         // 6
  CHECK(quantize(-1.5, type(1, 0, 3, Round::kRnd, sat)) == -1.0);                          // 7
  CHECK(quantize(-1.5, type(1, 0, 3, Round::kRnd, Overflow::kSatSym)) == -0.875);          // 7
  CHECK(quantize(-1.5, type(1, 0, 3, Round::kRnd, wrap)) == 0.5);                          // 7
  CHECK(quantize(-0.6, type(0, 2, 2, Round::kRnd, sat)) == 0.0);                           // 8
  CHECK(quantize(-0.6, type(0, 2, 2, Round::kRnd, wrap)) == 3.5);                          // 8
  CHECK(quantize(5.3, type(0, 2, 2, Round::kRnd, sat)) == 3.75);                           // 9
  CHECK(quantize(5.3, type(0, 2, 2, Round::kRnd, wrap)) == 1.25);                          // 9
  CHECK(quantize(0.1, type(0, -2, 5, Round::kRnd, sat)) == 0.09375);                       // 10
  CHECK(quantize(0.3, type(0, -2, 5, Round::kRnd, sat)) == 0.21875);                       // 10
  CHECK(quantize(200, type(1, 7, 0, Round::kRnd, wrap)) == -56.0);                         // 11, inference
  CHECK(quantize_traced(200, type(1, 7, 0, Round::kRnd, wrap), 0.5, false).value == 200);  // 11, training
}

TEST_CASE("quantize_traced reports the rounded value and the region") {
  Quantized q = quantize_traced(1.7, type(1, 0, 3, Round::kRnd, Overflow::kSat));
  CHECK(q.value == 0.875);
  CHECK(q.rounded == 1.75);  // round(13.6) = 14 eighths
  CHECK(q.region == Region::kAbove);
  q = quantize_traced(-1.5, type(1, 0, 3, Round::kRnd, Overflow::kSatSym));
  CHECK(q.region == Region::kBelow);
  q = quantize_traced(0.3, type(1, 0, 3, Round::kRnd, Overflow::kSat));
  CHECK(q.region == Region::kInside);
  q = quantize_traced(0.3, type(0, -2, 2, Round::kRnd, Overflow::kSat));
  CHECK(q.region == Region::kPruned);
  CHECK(q.value == 0.0);
  // Wrap off (training): the value stays unwrapped but the region still says it overflowed.
  q = quantize_traced(1.7, type(1, 0, 3, Round::kRnd, Overflow::kWrap), 0.5, false);
  CHECK(q.value == 1.75);
  CHECK(q.region == Region::kAbove);
}

TEST_CASE("negative i and f, and width <= 0 gives exactly 0") {
  // k=0, i=-2, f=5 holds 0 .. 0.21875 in steps of 1/32.
  CHECK(range_max(type(0, -2, 5, Round::kRnd, Overflow::kSat)) == 0.21875);
  // Negative f: step 2^2 = 4. k=1, i=4, f=-2: range [-16, 12]; 9 -> 8 (RND: 2.25 -> 2), 13 -> 12 (SAT).
  CHECK(quantize(9.0, type(1, 4, -2, Round::kRnd, Overflow::kSat)) == 8.0);
  CHECK(quantize(10.0, type(1, 4, -2, Round::kRnd, Overflow::kSat)) == 12.0);  // 2.5 -> 3 (ties up)
  CHECK(quantize(13.0, type(1, 4, -2, Round::kRnd, Overflow::kSat)) == 12.0);
  CHECK(quantize(-30.0, type(1, 4, -2, Round::kRnd, Overflow::kSat)) == -16.0);
  CHECK(quantize(-30.0, type(1, 4, -2, Round::kRnd, Overflow::kWrap)) == 4.0);  // -28: code -7 -> 1 (width 3)
  // Width k+i+f <= 0: always 0, whatever the modes.
  for (Overflow o : {Overflow::kWrap, Overflow::kSat, Overflow::kSatSym, Overflow::kSatZero}) {
    CHECK(quantize(0.7, type(0, -3, 3, Round::kRnd, o)) == 0.0);   // k=0, width 0
    CHECK(quantize(-5.0, type(1, -4, 2, Round::kRnd, o)) == 0.0);  // k=1, width -1 (pruned, not 1 bit)
    CHECK(quantize(3.0, type(0, 2, -4, Round::kTrn, o)) == 0.0);   // negative f, width -2
  }
  // Width 1 signed: the values {-2^-f, 0} (ap_fixed<1, -2>).
  CHECK(quantize(-0.1, type(1, -3, 3, Round::kRnd, Overflow::kSat)) == -0.125);
  CHECK(quantize(0.1, type(1, -3, 3, Round::kRnd, Overflow::kSat)) == 0.0);
}

TEST_CASE("stochastic rounding: floor(x*2^f + u); u = 0.5 is RND") {
  FixedType t = type(1, 1, 3, Round::kStochastic, Overflow::kSat);
  // 0.3 * 8 = 2.4: up to 3/8 iff u >= 0.6.
  CHECK(quantize(0.3, t, 0.0) == 0.25);
  CHECK(quantize(0.3, t, 0.59) == 0.25);
  CHECK(quantize(0.3, t, 0.61) == 0.375);
  CHECK(quantize(0.3, t, 0.999) == 0.375);
  CHECK(quantize(0.3125, t) == 0.375);  // a tie, default u: up, as RND
  CHECK(quantize(-0.3125, t) == -0.25);
  CHECK(quantize(0.25, t, 0.999) == 0.25);  // on the grid: never moves
}

TEST_CASE("range_min and range_max") {
  CHECK(range_max(type(1, 1, 2, Round::kTrn, Overflow::kSat)) == 1.75);
  CHECK(range_min(type(1, 1, 2, Round::kTrn, Overflow::kSat)) == -2.0);
  CHECK(range_min(type(1, 1, 2, Round::kTrn, Overflow::kSatSym)) == -1.75);
  CHECK(range_min(type(0, 1, 2, Round::kTrn, Overflow::kSat)) == 0.0);
}

TEST_CASE("integer codes") {
  CHECK(to_code(-0.375, 3) == -3);
  CHECK(to_code(2.71875, 5) == 87);
  CHECK(to_code(12.0, -2) == 3);
  CHECK(from_code(87, 5) == 2.71875);
  CHECK(from_code(-3, 3) == -0.375);
  CHECK(from_code(3, -2) == 12.0);
  CHECK_THROWS_AS(to_code(0.3, 3), InternalError);  // not on the grid of 1/8
  for (double x : {-1.9, -0.6, 0.3, 1.1}) {
    FixedType t = type(1, 1, 4, Round::kRndConv, Overflow::kSat);
    double xq = quantize(x, t);
    CHECK(from_code(to_code(xq, t.f), t.f) == xq);
  }
}

TEST_CASE("integer bits from the data: ceil(log2(max + 2^-f))") {
  CHECK(integer_bits_for(3.7, 2) == 2);
  CHECK(integer_bits_for(3.9, 2) == 3);  // rounds up to 4.0
  CHECK(integer_bits_for(4.0, 2) == 3);
  CHECK(integer_bits_for(3.75, 2) == 2);  // the largest value of i = 2, f = 2
  CHECK(integer_bits_for(0.0, 2) == -2);
  CHECK(integer_bits_for(-1.0, 2) == -2);
  CHECK(integer_bits_for(0.2, 5) == -2);  // 0.2 + 1/32 = 0.23 <= 0.25
  CHECK_THROWS_AS(integer_bits_for(std::nan(""), 2), InputError);
  // Exact where log2 in double is not: 16 + 2^-48 lies above 2^4, but its log2 rounds to exactly 4.0.
  CHECK(integer_bits_for(16.0, 48) == 5);
  CHECK(integer_bits_for(0x1p40, 0) == 41);
  // Exact where the double sum is not: 2^60 + 1 rounds to 2^60, and 2 - 2^-52 + 2^-51 to 2, onto a power of
  // two that the exact sum lies above. Rounding that stays below one changes nothing.
  CHECK(integer_bits_for(0x1p60, 0) == 61);
  CHECK(integer_bits_for(2 - 0x1p-52, 51) == 2);
  CHECK(integer_bits_for(2 - 0x1p-52, 53) == 1);      // 2 - 2^-52 + 2^-53 < 2, though it rounds up to 2
  CHECK(integer_bits_for(0.0, 0x1p20, 40, 0) == 21);  // the HGQ v1 rule too: 2^20 + 2^-40 rounds to 2^20
  // The inline form (integer_bits_for_nonneg, which integer_bits_for now calls for max >= 0) against the
  // HGQ v1 overload's own path (min 0, k 0: the max term alone, clipped to [-f, 32]), over floats at many
  // scales, powers of two and their neighbours, and f from -20 to 60.
  {
    std::mt19937_64 r2(3);
    int compared = 0;
    for (int j = 0; j < 40000; ++j) {
      double m = std::ldexp(std::uniform_real_distribution<double>(0.5, 1.0)(r2),
                            std::uniform_int_distribution<int>(-40, 40)(r2));
      if (j % 4 == 1) m = std::ldexp(1.0, static_cast<int>(r2() % 60) - 30);
      if (j % 4 == 2) m = std::nextafter(std::ldexp(1.0, static_cast<int>(r2() % 60) - 30), 0.0);
      if (j % 8 == 3) m = 0;
      m = static_cast<float>(m);
      const int f = static_cast<int>(r2() % 81) - 20;
      const int fast = integer_bits_for_nonneg(m, f);
      if (fast > 32) continue;
      CHECK(fast == std::max(-f, integer_bits_for(0.0, m, f, 0)));
      ++compared;
    }
    CHECK(compared > 30000);
  }
  // With f = 1100, 2^-f is 0 in double: the rule is ceil(log2 v) itself, checked against its definition
  // 2^(r-1) < v <= 2^r over powers of two and their neighbours, subnormals included, and random values.
  std::mt19937_64 rng(7);
  std::vector<double> vs;
  for (int e = -1074; e <= 1023; ++e) {
    const double p = std::ldexp(1.0, e);
    vs.insert(vs.end(), {p, std::nextafter(p, 0.0), std::nextafter(p, INFINITY), 3 * p});
  }
  for (int j = 0; j < 20000; ++j)
    vs.push_back(std::ldexp(std::uniform_real_distribution<double>(0.5, 1.0)(rng),
                            std::uniform_int_distribution<int>(-1080, 1030)(rng)));
  int checked = 0;
  for (double v : vs) {
    if (!(v > 0) || !std::isfinite(v)) continue;
    const int r = integer_bits_for(v, 1100);
    CHECK((std::ldexp(1.0, r - 1) < v && v <= std::ldexp(1.0, r)));
    ++checked;
  }
  CHECK(checked > 28000);
  // The calibrated type really holds the value.
  for (double m : {0.01, 0.3, 3.7, 3.9, 4.0, 100.0}) {
    int i = integer_bits_for(m, 2);
    CHECK(quantize(m, type(0, i, 2, Round::kRnd, Overflow::kSat)) == std::floor(m * 4 + 0.5) / 4);
  }
}

TEST_CASE("integer bits, HGQ v1 rule from min and max") {
  // max(ceil(log2|min|), ceil(log2(max + 2^-f))), clipped to [-f-k, 32].
  CHECK(integer_bits_for(-3.0, 1.0, 2, 1) == 2);      // |min| 3 -> 2; 1.25 -> 1
  CHECK(integer_bits_for(-4.0, 1.0, 2, 1) == 2);      // -4 = -2^2 is representable with i = 2
  CHECK(integer_bits_for(-4.25, 1.0, 2, 1) == 3);     // |min| just above 4
  CHECK(integer_bits_for(-0.5, 3.7, 2, 1) == 2);      // the max term wins
  CHECK(integer_bits_for(0.0, 3.9, 2, 0) == 3);       // min = 0: no min term
  CHECK(integer_bits_for(-1.0, 3.9, 2, 0) == 3);      // unsigned: negatives clip to 0, ignored
  CHECK(integer_bits_for(0.0, 0.0, 2, 0) == -2);      // all zero, unsigned: width 0, pruned
  CHECK(integer_bits_for(0.0, 0.0, 2, 1) == -2);      // max term -f; the floor -f-k = -3 does not bind
  CHECK(integer_bits_for(-0.25, -0.25, 2, 1) == -2);  // only negatives: |min| term; max + 2^-f = 0 has none
  CHECK(integer_bits_for(-1e-9, 0.0, 30, 1) == -29);  // |min| tiny: ceil(log2 1e-9) = -29; max term -30
  CHECK(integer_bits_for(-1e-9, -0.5, 2, 1) == -3);   // |min| term -29, no max term: clipped up to -f-k
  CHECK(integer_bits_for(-1e-9, -1e-9, 2, 1) == -2);  // the max term, literally: max + 2^-f > 0 -> -2
  CHECK(integer_bits_for(-1e12, 1e12, 2, 1) == 32);   // clipped down to 32
  const double inf = INFINITY;
  CHECK(integer_bits_for(inf, -inf, 4, 1) == -5);  // never traced: -f-k, pruned
  CHECK_THROWS_AS(integer_bits_for(std::nan(""), 1.0, 2, 1), InputError);
  CHECK_THROWS_AS(integer_bits_for(-1.0, 1.0, 2, 2), InputError);
}

TEST_CASE("mode names: parse, print, errors naming the bad string") {
  CHECK(parse_round("TRN") == Round::kTrn);
  CHECK(parse_round("trn_zero") == Round::kTrnZero);
  CHECK(parse_round("AP_RND") == Round::kRnd);
  CHECK(parse_round("ap_rnd_zero") == Round::kRndZero);
  CHECK(parse_round("RND_MIN_INF") == Round::kRndMinInf);
  CHECK(parse_round("RND_INF") == Round::kRndInf);
  CHECK(parse_round("AP_RND_CONV") == Round::kRndConv);
  CHECK(parse_round("S_RND") == Round::kStochastic);
  CHECK(parse_round("s_rnd_conv") == Round::kStochastic);
  CHECK(parse_overflow("WRAP") == Overflow::kWrap);
  CHECK(parse_overflow("AP_SAT") == Overflow::kSat);
  CHECK(parse_overflow("sat_sym") == Overflow::kSatSym);
  CHECK(parse_overflow("AP_SAT_ZERO") == Overflow::kSatZero);
  for (Round r : {Round::kTrn, Round::kTrnZero, Round::kRnd, Round::kRndZero, Round::kRndMinInf,
                  Round::kRndInf, Round::kRndConv, Round::kStochastic})
    CHECK(parse_round(to_string(r)) == r);
  for (Overflow o : {Overflow::kWrap, Overflow::kSat, Overflow::kSatSym, Overflow::kSatZero})
    CHECK(parse_overflow(to_string(o)) == o);
  CHECK(to_string(Round::kRndConv) == "AP_RND_CONV");
  CHECK(to_string(Overflow::kSatSym) == "AP_SAT_SYM");

  auto message = [](auto fn) -> std::string {
    try {
      fn();
    } catch (const InputError& e) {
      return e.what();
    }
    return "";
  };
  std::string m = message([] { parse_round("ROUND_HALF_UP"); });
  CHECK(m.find("'ROUND_HALF_UP'") != std::string::npos);
  CHECK(m.find("RND_CONV") != std::string::npos);
  m = message([] { parse_overflow("clip"); });
  CHECK(m.find("'clip'") != std::string::npos);
  CHECK(m.find("SAT_SYM") != std::string::npos);
  CHECK(message([] { parse_round("AP_"); }) != "");
}

TEST_CASE("bad types are input errors") {
  CHECK_THROWS_AS(quantize(0.5, type(2, 1, 1, Round::kRnd, Overflow::kSat)), InputError);
  CHECK_THROWS_AS(quantize(0.5, type(1, 1, 10000, Round::kRnd, Overflow::kSat)), InputError);
}
