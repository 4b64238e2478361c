// Lookup-table sigmoid, tanh and softmax (compress/lut.h): table entries and indices worked out by hand
// from hls4ml's construction rules, the error bound of a table, softmax cases computed step by step,
// the straight-through gradients, and config errors. Expected table values are exact binary fractions
// (compared with ==).
#include "compress/lut.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "engine/check.h"
#include "engine/config.h"
#include "engine/ops.h"
#include "tests/gradcheck.h"
#include "tests/test_files.h"

using namespace kiln;
using namespace kiln::compress;

namespace {

constexpr double kLsb = 1.0 / 1024;  // ap_fixed<18,8>: 10 fractional bits

double sigmoid_d(double x) { return 1.0 / (1.0 + std::exp(-x)); }

FixedType fx(int k, int i, int f, Round r = Round::kTrn, Overflow o = Overflow::kWrap) {
  return {k, i, f, r, o};
}

bool same_type(const FixedType& a, const FixedType& b) {
  return a.k == b.k && a.i == b.i && a.f == b.f && a.round == b.round && a.overflow == b.overflow;
}

}  // namespace

TEST_CASE("ap type strings: hls4ml's spellings in, ap spellings out") {
  CHECK(same_type(parse_ap_type("ap_fixed<18,8>"), kHls4mlTableType));
  CHECK(same_type(parse_ap_type(" ap_fixed< 18 , 8 , AP_RND , AP_SAT > "), kHls4mlSoftmaxTableType));
  CHECK(same_type(parse_ap_type("fixed<16,6>"), kHls4mlDefaultType));
  CHECK(same_type(parse_ap_type("ap_ufixed<8,0,RND_CONV,SAT,0>"),
                  fx(0, 0, 8, Round::kRndConv, Overflow::kSat)));
  CHECK(same_type(parse_ap_type("ap_fixed<8,-2>"), fx(1, -3, 10)));
  CHECK(ap_type_string(kHls4mlTableType) == "ap_fixed<18,8>");
  CHECK(ap_type_string(kHls4mlSoftmaxTableType) == "ap_fixed<18,8,AP_RND,AP_SAT>");
  CHECK(ap_type_string(fx(1, 7, 10, Round::kRnd)) == "ap_fixed<18,8,AP_RND>");
  CHECK(ap_type_string(fx(0, 0, 8, Round::kTrn, Overflow::kSat)) == "ap_ufixed<8,0,AP_TRN,AP_SAT>");
  CHECK_INPUT_ERROR(parse_ap_type("ap_fixed<18>"), "ap_fixed<18>", "2 to 5 parameters");
  CHECK_INPUT_ERROR(parse_ap_type("ap_fixed<0,0>"), "width");
  CHECK_INPUT_ERROR(parse_ap_type("ap_int<8>"), "ap_fixed or ap_ufixed");
  CHECK_INPUT_ERROR(parse_ap_type("ap_fixed<18,8,AP_FOO>"), "AP_FOO");
  CHECK_INPUT_ERROR(parse_ap_type("ap_fixed<18,8,AP_RND,AP_SAT,2>"), "saturation bits");
  CHECK_INPUT_ERROR(parse_ap_type("ap_fixed<18,8,S_RND>"), "S_RND");
  CHECK_INPUT_ERROR(parse_ap_type("ap_fixed<a,8>"), "integers");
}

TEST_CASE("sigmoid table: entries by hand (N = 1024 over [-8, 8), ap_fixed<18,8> floors to 2^-10)") {
  LutSpec s = LutSpec::sigmoid();
  CHECK(lut_input(0, s) == -8.0);
  CHECK(lut_input(512, s) == 0.0);
  CHECK(lut_input(1023, s) == 7.984375);  // 8 - 1/64
  std::vector<double> t = lut_table(s);
  REQUIRE(t.size() == 1024);
  CHECK(t[0] == 0.0);             // sigmoid(-8) = 3.35e-4: 0.34 LSB, floored to 0
  CHECK(t[448] == 275 * kLsb);    // sigmoid(-1) = 0.268941: 275.40 LSB
  CHECK(t[512] == 0.5);           // sigmoid(0)
  CHECK(t[640] == 901 * kLsb);    // sigmoid(2) = 0.880797: 901.94 LSB, floored (TRN, not RND)
  CHECK(t[1023] == 1023 * kLsb);  // sigmoid(7.984375) = 0.999659: 1023.65 LSB
  // Every entry is floor(2^10 sigmoid(x_j)) / 2^10. (hls4ml computes in float32; at N = 1024 no entry
  // lies close enough to a multiple of 2^-10 for float rounding to change the floor.)
  for (int j = 0; j < 1024; ++j) {
    CAPTURE(j);
    CHECK(t[static_cast<size_t>(j)] == std::floor(1024 * sigmoid_d(lut_input(j, s))) * kLsb);
  }
}

TEST_CASE("tanh table: entries by hand (N = 1024 over [-4, 4)); TRN floors negative values away from 0") {
  LutSpec s = LutSpec::tanh();
  CHECK(lut_input(0, s) == -4.0);
  CHECK(lut_input(1, s) == -3.9921875);
  std::vector<double> t = lut_table(s);
  CHECK(t[0] == -1.0);           // tanh(-4) = -0.999329: -1023.31 LSB, floored to -1024
  CHECK(t[256] == -988 * kLsb);  // tanh(-2) = -0.964028: -987.16 LSB -> -988
  CHECK(t[512] == 0.0);
  CHECK(t[768] == 987 * kLsb);    // tanh(2) = 0.964028: 987.16 LSB -> 987 (not the mirror of t[256])
  CHECK(t[1023] == 1023 * kLsb);  // tanh(3.9921875) = 0.999313
  for (int j = 0; j < 1024; ++j) {
    CAPTURE(j);
    CHECK(t[static_cast<size_t>(j)] == std::floor(1024 * std::tanh(lut_input(j, s))) * kLsb);
  }
}

TEST_CASE("index: trunc(x N / 2R) + N/2, toward zero, clamped to [0, N-1]") {
  LutSpec s = LutSpec::sigmoid();  // index = trunc(64 x) + 512
  CHECK(lut_index(0.0, s) == 512);
  CHECK(lut_index(-0.001, s) == 512);     // trunc(-0.064) = 0: negative inputs truncate toward zero
  CHECK(lut_index(-0.0156, s) == 512);    // trunc(-0.998) = 0
  CHECK(lut_index(-0.015625, s) == 511);  // exactly -1/64
  CHECK(lut_index(0.0156, s) == 512);
  CHECK(lut_index(0.015625, s) == 513);
  CHECK(lut_index(-8.0, s) == 0);   // the range's low edge
  CHECK(lut_index(-7.99, s) == 1);  // trunc(-511.36) = -511
  CHECK(lut_index(-7.984375, s) == 1);
  CHECK(lut_index(7.98, s) == 1022);  // trunc(510.72) = 510
  CHECK(lut_index(7.984375, s) == 1023);
  CHECK(lut_index(8.0, s) == 1023);  // 1024 clamped
  CHECK(lut_index(-100.0, s) == 0);
  CHECK(lut_index(1e300, s) == 1023);
  CHECK(lut_index(-1e300, s) == 0);
  LutSpec t = LutSpec::tanh();  // index = trunc(128 x) + 512
  CHECK(lut_index(-4.0, t) == 0);
  CHECK(lut_index(-0.007, t) == 512);
  CHECK(lut_index(-0.0078125, t) == 511);
  CHECK(lut_index(3.9921875, t) == 1023);
  CHECK(lut_index(4.0, t) == 1023);
  // Lookups: the central entry serves (-1/64, 1/64); the edges hold outside the range.
  CHECK(sigmoid_lut(-0.001) == 0.5);
  CHECK(sigmoid_lut(-100.0) == 0.0);
  CHECK(sigmoid_lut(100.0) == 1023 * kLsb);
  CHECK(tanh_lut(-100.0) == -1.0);
  CHECK(tanh_lut(100.0) == 1023 * kLsb);
  CHECK(std::isnan(sigmoid_lut(std::nan(""))));
}

TEST_CASE("lookups stay within the table's error bound: slope * step + one LSB") {
  struct Case {
    LutSpec spec;
    double slope;  // max |f'|
    double (*f)(double);
  };
  const Case cases[] = {
      {LutSpec::sigmoid(), 0.25, [](double x) { return 1.0 / (1.0 + std::exp(-x)); }},
      {LutSpec::tanh(), 1.0, [](double x) { return std::tanh(x); }},
  };
  for (const Case& c : cases) {
    double step = 2 * c.spec.range / c.spec.table_size;  // an input is at most one step from its entry's x_j
    double bound = c.slope * step + kLsb;
    double worst = 0;
    for (int i = -30000; i <= 30000; ++i) {
      double x = i * 0.0004 + 1e-7;
      double y = c.spec.function == LutFunction::kSigmoid ? sigmoid_lut(x, c.spec) : tanh_lut(x, c.spec);
      worst = std::max(worst, std::fabs(y - c.f(x)));
    }
    CAPTURE(bound);
    CHECK(worst <= bound);
    CHECK(worst > 0.5 * c.slope * step);  // and the bound is not vacuous: the table's steps show
  }
}

TEST_CASE("sigmoid and tanh tables are monotone and inside their function's range") {
  for (LutSpec s : {LutSpec::sigmoid(), LutSpec::tanh()}) {
    std::vector<double> t = lut_table(s);
    CHECK(std::is_sorted(t.begin(), t.end()));
    double lo = s.function == LutFunction::kSigmoid ? 0.0 : -1.0;
    CHECK(t.front() >= lo);
    CHECK(t.back() < 1.0);
  }
}

TEST_CASE("overrides: size, range and type change the table as the rule says") {
  LutSpec s = LutSpec::sigmoid();
  s.table_type = parse_ap_type("ap_fixed<10,2>");  // f = 8
  CHECK(lut_entry(640, s) == 225.0 / 256);         // floor(0.880797 * 256) = 225
  LutSpec t = LutSpec::tanh();
  t.table_size = 2048;  // step 8/2048 = 1/256: index = trunc(256 x) + 1024
  CHECK(lut_index(0.00390625, t) == 1025);
  CHECK(lut_input(1536, t) == 2.0);
  CHECK(lut_entry(1536, t) == 987 * kLsb);
  LutSpec w = LutSpec::sigmoid();
  w.range = 16;  // [-16, 16): index = trunc(32 x) + 512
  CHECK(lut_index(1.0, w) == 544);
  CHECK(lut_input(576, w) == 2.0);
  // Overflow is the type's: with AP_RND, sigmoid(7.98) = 0.99966 rounds up to 1.0, which ap_fixed<8,1>
  // (max 127/128) wraps to -1 under WRAP and clips under SAT -- as the firmware would.
  LutSpec r = LutSpec::sigmoid();
  r.table_type = parse_ap_type("ap_fixed<8,1,AP_RND>");
  CHECK(sigmoid_lut(10.0, r) == -1.0);
  r.table_type = parse_ap_type("ap_fixed<8,1,AP_RND,AP_SAT>");
  CHECK(sigmoid_lut(10.0, r) == 127.0 / 128);
}

TEST_CASE("sigmoid_lut / tanh_lut ops: forward is the table, exactly; backward the real derivative") {
  std::mt19937_64 rng(11);
  for (int64_t n : {int64_t{37}, int64_t{2000}}) {  // below and above the table size (two code paths)
    Tensor xt = kiln::testing::random_tensor({n}, rng, -10.f, 10.f);
    xt[0] = -0.001f;
    xt[1] = 8.f;
    for (LutFunction f : {LutFunction::kSigmoid, LutFunction::kTanh}) {
      LutSpec spec = LutSpec::defaults(f);
      Var x(xt, true);
      Var y = f == LutFunction::kSigmoid ? sigmoid_lut(x, spec) : tanh_lut(x, spec);
      Var ref_x(xt, true);
      Var ref = f == LutFunction::kSigmoid ? kiln::sigmoid(ref_x) : kiln::tanh(ref_x);
      Tensor w = kiln::testing::random_tensor({n}, rng);
      backward(y, w);
      backward(ref, w);
      for (int64_t i = 0; i < n; ++i) {
        CAPTURE(xt[i]);
        double expect = f == LutFunction::kSigmoid ? sigmoid_lut(xt[i], spec) : tanh_lut(xt[i], spec);
        CHECK(static_cast<double>(y.value()[i]) == expect);  // ap_fixed<18,8> values are exact in float
        double v = xt[i];
        double d =
            f == LutFunction::kSigmoid ? sigmoid_d(v) * (1 - sigmoid_d(v)) : 1 - std::tanh(v) * std::tanh(v);
        CHECK(x.grad()[i] == doctest::Approx(w[i] * d).epsilon(1e-5));
        CHECK(x.grad()[i] == doctest::Approx(ref_x.grad()[i]).epsilon(1e-4));
      }
    }
  }
  LutSpec wide = LutSpec::sigmoid();
  wide.table_type = parse_ap_type("ap_fixed<30,8>");
  CHECK_INPUT_ERROR(sigmoid_lut(Var(Tensor({2})), wide), "table_type", "ap_fixed<30,8>", "24");
}

TEST_CASE("softmax indices: the top log2(N) bits of the two's complement word") {
  // ap_fixed<16,6> (k1 i5 f10), N = 1024: index = code >> 6, bins of 2^-4.
  const FixedType in = kHls4mlDefaultType;
  CHECK(softmax_index(0.0, in, 1024) == 0);
  CHECK(softmax_index(0.0625, in, 1024) == 1);
  CHECK(softmax_index(-1.0, in, 1024) == 1008);         // code -1024 = 0xFC00 -> 0x3F0
  CHECK(softmax_index(-1.0 / 1024, in, 1024) == 1023);  // slicing floors: (-1/16, 0) -> the -1/16 entry
  CHECK(softmax_index(-32.0, in, 1024) == 512);
  CHECK(softmax_index(32.0 - 1.0 / 1024, in, 1024) == 511);
  CHECK(softmax_index_value(1, in, 1024) == 0.0625);
  CHECK(softmax_index_value(1023, in, 1024) == -0.0625);
  CHECK(softmax_index_value(512, in, 1024) == -32.0);
  // ap_fixed<18,8> (the sum's type), N = 1024: index = code >> 8, bins of 1/4.
  const FixedType ex = kHls4mlSoftmaxTableType;
  CHECK(softmax_index(1.5, ex, 1024) == 6);
  CHECK(softmax_index(1791 * kLsb, ex, 1024) == 6);  // 1.7490234375, the top of the bin
  CHECK(softmax_index(1.75, ex, 1024) == 7);
  CHECK(softmax_index_value(6, ex, 1024) == 1.5);
  // Table size: min(N, 2^min(W_in, W_inv)) (fix_softmax_table_size.py).
  SoftmaxLutSpec spec;
  CHECK(softmax_table_size(spec) == 1024);
  spec.input_type = parse_ap_type("ap_fixed<8,3>");
  CHECK(softmax_table_size(spec) == 256);
  spec = SoftmaxLutSpec{};
  spec.table_size = 1 << 20;
  CHECK(softmax_table_size(spec) == 1 << 16);
}

TEST_CASE("softmax tables: exp over the input's bins, 1/x over the exp type's bins") {
  SoftmaxLutSpec spec;  // input ap_fixed<16,6>, tables ap_fixed<18,8,AP_RND,AP_SAT>
  std::vector<double> e = softmax_exp_table(spec), inv = softmax_inv_table(spec);
  REQUIRE(e.size() == 1024);
  CHECK(e[0] == 1.0);
  CHECK(e[1] == 1090 * kLsb);    // exp(1/16) = 1.064494: 1090.04 LSB, rounded
  CHECK(e[1008] == 377 * kLsb);  // exp(-1) = 0.367879: 376.71 LSB -> 377 (RND)
  CHECK(e[992] == 139 * kLsb);   // exp(-2) = 0.135335: 138.58 LSB -> 139
  CHECK(e[511] == 128 - kLsb);   // exp(31.9375) saturates
  CHECK(inv[0] == 128 - kLsb);   // 1/0 = inf saturates
  CHECK(inv[1] == 4.0);          // 1/0.25
  CHECK(inv[4] == 1.0);
  CHECK(inv[6] == 683 * kLsb);  // 1/1.5 = 0.666667: 682.67 LSB -> 683
  CHECK(inv[1023] == -4.0);     // 1/-0.25
}

TEST_CASE("softmax (stable): [0, -1, -2] step by step") {
  // e = exp_table at d = [0, -1, -2] = [1024, 377, 139] LSB; s = 1540 LSB = 1.50390625; its index is
  // 1540 >> 8 = 6 (the bin [1.5, 1.75)), so inv = 683 LSB. y = e * inv, then ap_fixed<16,6> floors to 2^-10.
  SoftmaxLutSpec exact;
  exact.result_type = std::nullopt;
  std::vector<double> p = softmax_lut({0, -1, -2}, exact);
  REQUIRE(p.size() == 3);
  CHECK(p[0] == 683 * kLsb);
  CHECK(p[1] == 377.0 * 683 / (1 << 20));
  CHECK(p[2] == 139.0 * 683 / (1 << 20));
  std::vector<double> y = softmax_lut({0, -1, -2});
  CHECK(y[0] == 683 * kLsb);
  CHECK(y[1] == 251 * kLsb);  // 257491 / 2^20 = 251.46 LSB
  CHECK(y[2] == 92 * kLsb);   // 94937 / 2^20 = 92.71 LSB
  // The real softmax is [0.6652, 0.2447, 0.0900]: the inverse of 1.5 instead of 1.5039 shows.
  CHECK(std::fabs(y[0] - 0.665241) < 0.003);
  // Stable: only differences matter (5, 4, 3 are values of the input type); order follows the input.
  CHECK(softmax_lut({5, 4, 3}) == y);
  std::vector<double> perm = softmax_lut({-2, 0, -1});
  CHECK(perm == std::vector<double>{y[2], y[0], y[1]});
}

TEST_CASE("softmax: latency indexes x itself; the stable difference saturates; the sum saturates") {
  SoftmaxLutSpec lat;
  lat.implementation = SoftmaxImpl::kLatency;
  // x = [0.5, 0]: e = [exp(0.5) -> 1688 LSB, 1024 LSB]; s = 2712 LSB -> index 10 = 2.5 -> inv = 0.4 -> 410
  // LSB.
  std::vector<double> a = softmax_lut({0.5, 0}, lat);
  CHECK(a[0] == 675 * kLsb);  // 1688 * 410 / 2^20 = 675.86 LSB
  CHECK(a[1] == 410 * kLsb);
  // Stable on the same input: d = [0, -0.5] -> [1024, 621] LSB; s = 1645 LSB -> [1.5, 1.75) -> 683 LSB.
  std::vector<double> b = softmax_lut({0.5, 0});
  CHECK(b[0] == 683 * kLsb);
  CHECK(b[1] == 414 * kLsb);  // 621 * 683 / 2^20 = 414.20 LSB
  // ap_fixed<8,3> input (range [-4, 3.96875]), N = 256 = 2^8: x_max - x_min = 7.96875 saturates to -4 in
  // ap_fixed<8,3,AP_RND,AP_SAT>; exp(-4) -> 19 LSB; s = 1043 LSB -> index 1 (bins of 1) -> inv = 1.
  SoftmaxLutSpec narrow;
  narrow.input_type = parse_ap_type("ap_fixed<8,3>");
  std::vector<double> c = softmax_lut({3.96875, -4}, narrow);
  CHECK(c[0] == 1.0);
  CHECK(c[1] == 19 * kLsb);
  // 200 equal inputs: each e = 1, the sum clips at 128 - 2^-10 (exp_table_type saturates) -> index 511 =
  // 127.75 -> inv = round(1024 / 127.75) = 8 LSB: every output 2^-7 instead of 1/200.
  std::vector<double> many = softmax_lut(std::vector<double>(200, 1.0));
  for (double v : many) CHECK(v == 8 * kLsb);
}

TEST_CASE("softmax outputs sum to 1 within what the invert table's bins allow") {
  std::mt19937_64 rng(5);
  std::uniform_int_distribution<int> code(-8 * 1024, 8 * 1024);  // values of ap_fixed<16,6> in [-8, 8]
  SoftmaxLutSpec dflt;
  dflt.result_type = std::nullopt;
  SoftmaxLutSpec fine = dflt;  // bins of 2^(5-10) = 1/32 for the sum
  fine.exp_table_type = fine.inv_table_type = parse_ap_type("ap_fixed<18,5,AP_RND,AP_SAT>");
  for (int trial = 0; trial < 300; ++trial) {
    int n = 2 + trial % 9;
    std::vector<double> x(static_cast<size_t>(n));
    for (double& v : x) v = code(rng) * kLsb;
    double sum = 0;
    for (double v : softmax_lut(x, dflt)) sum += v;
    // sum = s * inv with inv ~ 1/s0, s0 = s rounded down to a quarter (s >= 1): within [1, 1.25] up to
    // the invert table's rounding (2^-11 each, times s <= n).
    CHECK(sum >= 1 - n * kLsb / 2);
    CHECK(sum <= 1.25 + n * kLsb / 2);
    double fsum = 0;
    for (double v : softmax_lut(x, fine)) fsum += v;
    CHECK(fsum >= 1 - n / 16384.0);
    CHECK(fsum <= 1 + 1.0 / 32 + n / 16384.0);
  }
}

TEST_CASE("softmax_lut op: lanes along an axis, forward = the hardware, backward = the real softmax") {
  std::mt19937_64 rng(9);
  Tensor xt({3, 4});
  std::uniform_int_distribution<int> code(-4 * 1024, 4 * 1024);
  for (int64_t i = 0; i < xt.size(); ++i) xt[i] = static_cast<float>(code(rng) * kLsb);
  Tensor w = kiln::testing::random_tensor({3, 4}, rng);
  for (int axis : {-1, 0}) {
    CAPTURE(axis);
    Var x(xt, true), ref_x(xt, true);
    Var y = softmax_lut(x, axis);
    Var ref = kiln::softmax(ref_x, axis);
    backward(y, w);
    backward(ref, w);
    int64_t lanes = axis == -1 ? 3 : 4, len = axis == -1 ? 4 : 3;
    for (int64_t l = 0; l < lanes; ++l) {
      std::vector<double> lane;
      auto at = [&](int64_t j) { return axis == -1 ? l * 4 + j : j * 4 + l; };
      for (int64_t j = 0; j < len; ++j) lane.push_back(xt[at(j)]);
      std::vector<double> expect = softmax_lut(lane);
      for (int64_t j = 0; j < len; ++j)
        CHECK(static_cast<double>(y.value()[at(j)]) == expect[static_cast<size_t>(j)]);
    }
    for (int64_t i = 0; i < xt.size(); ++i)
      CHECK(x.grad()[i] == doctest::Approx(ref_x.grad()[i]).epsilon(1e-5));
  }
  SoftmaxLutSpec wide;
  wide.result_type = parse_ap_type("ap_fixed<32,6>");
  CHECK_INPUT_ERROR(softmax_lut(Var(xt), -1, wide), "result_type", "ap_fixed<32,6>");
  CHECK_THROWS_AS(softmax_lut(Var(xt), 2), ShapeError);
}

TEST_CASE("config: overrides read, bad values name the key") {
  Config c = Config::parse("table_size: 2048\ntable_range: 16\ntable_type: ap_fixed<10,2,AP_RND,AP_SAT>\n",
                           "t.yaml");
  LutSpec s = parse_lut(c, LutFunction::kTanh);
  CHECK(s.function == LutFunction::kTanh);
  CHECK(s.table_size == 2048);
  CHECK(s.range == 16.0);
  CHECK(same_type(s.table_type, fx(1, 1, 8, Round::kRnd, Overflow::kSat)));
  LutSpec d = parse_lut(Config::parse("{}", "t.yaml"), LutFunction::kTanh);
  CHECK(d.range == 4.0);
  CHECK(d.table_size == 1024);
  CHECK(lut_config_keys() == std::vector<std::string>{"table_size", "table_range", "table_type"});

  auto lut = [](const std::string& yaml) {
    return parse_lut(Config::parse(yaml, "t.yaml"), LutFunction::kSigmoid);
  };
  CHECK_INPUT_ERROR(lut("table_size: 1000"), "t.yaml:1:1", "table_size", "1000", "power of two");
  CHECK_INPUT_ERROR(lut("table_size: 1"), "table_size", "1");
  CHECK_INPUT_ERROR(lut("table_size: 4194304"), "table_size", "4194304");
  CHECK_INPUT_ERROR(lut("table_size: abc"), "table_size", "integer");
  CHECK_INPUT_ERROR(lut("table_range: 3"), "table_range", "3");
  CHECK_INPUT_ERROR(lut("table_range: -8"), "table_range", "-8");
  CHECK_INPUT_ERROR(lut("table_type: ap_fixed<18>"), "table_type", "ap_fixed<18>");
  CHECK_INPUT_ERROR(lut("table_type: \"ap_fixed<18,8,AP_FOO>\""), "table_type", "AP_FOO");

  SoftmaxLutSpec base;
  base.input_type = parse_ap_type("ap_fixed<12,4>");
  SoftmaxLutSpec sm = parse_softmax_lut(
      Config::parse("implementation: latency\ntable_size: 512\ninv_table_type: ap_fixed<18,4,AP_RND,AP_SAT>",
                    "s.yaml"),
      base);
  CHECK(sm.implementation == SoftmaxImpl::kLatency);
  CHECK(sm.table_size == 512);
  CHECK(same_type(sm.input_type, base.input_type));  // kept from the base
  CHECK(same_type(sm.inv_table_type, fx(1, 3, 14, Round::kRnd, Overflow::kSat)));
  CHECK(same_type(sm.exp_table_type, kHls4mlSoftmaxTableType));
  auto soft = [](const std::string& yaml) { return parse_softmax_lut(Config::parse(yaml, "s.yaml")); };
  CHECK_INPUT_ERROR(soft("implementation: legacy"), "s.yaml:1:1", "implementation", "legacy");
  CHECK_INPUT_ERROR(soft("table_size: 100"), "table_size", "100");
  CHECK_INPUT_ERROR(soft("exp_table_type: nonsense"), "exp_table_type", "nonsense");
  CHECK_INPUT_ERROR(soft("inv_table_type: ap_fixed<60,8>"), "inv_table_type", "ap_fixed<60,8>");
  // Too narrow to index the invert table (10 address bits).
  CHECK_INPUT_ERROR(soft("exp_table_type: ap_fixed<8,4,AP_RND,AP_SAT>"), "exp_table_type", "ap_fixed<8,4");

  LutSpec bad = LutSpec::sigmoid();
  bad.table_size = 1000;
  CHECK_INPUT_ERROR(validate(bad), "sigmoid table", "table_size", "1000");
  bad = LutSpec::tanh();
  bad.range = 5;
  CHECK_INPUT_ERROR(validate(bad), "tanh table", "table_range", "5");
}
