// The differentiable fixed-point quantizer: values (exact), the surrogate gradients of
// ../shared/reference/quantization.md section 3 (examples G1, G2), the conventions the reference leaves open
// (bottom clip, WRAP, pruned elements; see compress/quantize_ops.h), broadcasting of per-channel and
// per-element bits, and stochastic rounding.
#include "compress/quantize_ops.h"

#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <set>
#include <string>

#include "engine/check.h"
#include "tests/gradcheck.h"

using namespace kiln;
using namespace kiln::compress;

namespace {

constexpr double kLn2 = 0.69314718055994530942;

bool near(double a, double b, double tol = 1e-6) { return std::fabs(a - b) <= tol; }

// One element through quantize_fixed; the output, and d out / d {x, f, i}.
struct One {
  double y, dx, df, di;
};
One one(float x, float f, float i, int k, Round r, Overflow o, bool training = true) {
  Var vx(Tensor({1}, {x}), true), vf(Tensor({1}, {f}), true), vi(Tensor({1}, {i}), true);
  Var y = quantize_fixed(vx, vf, vi, k, r, o, training, nullptr);
  backward(y);
  return {y.value()[0], vx.grad()[0], vf.grad()[0], vi.grad()[0]};
}

}  // namespace

TEST_CASE("G1 and G2: the reference's gradient examples (k1 i0 f3, RND, SAT)") {
  One g1 = one(0.3f, 3, 0, 1, Round::kRnd, Overflow::kSat);  // inside the range
  CHECK(g1.y == 0.25);
  CHECK(near(g1.dx, 1.0));
  CHECK(near(g1.df, 0.0346574));  // ln2 * (0.3 - 0.25)
  CHECK(near(g1.di, 0.0));
  One g2 = one(1.7f, 3, 0, 1, Round::kRnd, Overflow::kSat);  // clipped at the top
  CHECK(g2.y == 0.875);
  CHECK(near(g2.dx, 0.0));
  CHECK(near(g2.di, 0.693147));   // 2^i ln2
  CHECK(near(g2.df, 0.0866434));  // 2^-f ln2
}

TEST_CASE("bottom clip: the derivative of the lower bound") {
  // SAT: min = -k 2^i: dxq/di = -k 2^i ln2, dxq/df = 0.
  One s = one(-1.7f, 3, 0, 1, Round::kRnd, Overflow::kSat);
  CHECK(s.y == -1.0);
  CHECK(near(s.dx, 0.0));
  CHECK(near(s.di, -kLn2));
  CHECK(near(s.df, 0.0));
  // SAT_SYM: min = -k (2^i - 2^-f): dxq/di = -k 2^i ln2, dxq/df = -k 2^-f ln2.
  One y = one(-1.7f, 3, 0, 1, Round::kRnd, Overflow::kSatSym);
  CHECK(y.y == -0.875);
  CHECK(near(y.di, -kLn2));
  CHECK(near(y.df, -kLn2 / 8));
  // Unsigned: min = 0 does not move with i or f.
  One u = one(-0.3f, 3, 1, 0, Round::kRnd, Overflow::kSat);
  CHECK(u.y == 0.0);
  CHECK(near(u.dx, 0.0));
  CHECK(near(u.di, 0.0));
  CHECK(near(u.df, 0.0));
  // SAT_ZERO trains like SAT: the bound it crossed.
  One z = one(1.7f, 3, 0, 1, Round::kRnd, Overflow::kSatZero);
  CHECK(z.y == 0.0);
  CHECK(near(z.dx, 0.0));
  CHECK(near(z.di, kLn2));
  CHECK(near(z.df, kLn2 / 8));
  // "Inside" follows ap's order: TRN brings 1.8 down to 1.75 = max (ap_fixed<4,2>), no overflow handling.
  One t = one(1.8f, 2, 1, 1, Round::kTrn, Overflow::kSat);
  CHECK(t.y == 1.75);
  CHECK(near(t.dx, 1.0));
  CHECK(near(t.df, kLn2 * (static_cast<double>(1.8f) - 1.75)));
}

TEST_CASE("WRAP: vector 11 wraps at inference only; gradients never see the wrap") {
  One train = one(200.f, 0, 7, 1, Round::kRnd, Overflow::kWrap, true);
  One infer = one(200.f, 0, 7, 1, Round::kRnd, Overflow::kWrap, false);
  CHECK(train.y == 200.0);
  CHECK(infer.y == -56.0);
  One a = one(200.3f, 0, 7, 1, Round::kRnd, Overflow::kWrap, true);
  One b = one(200.3f, 0, 7, 1, Round::kRnd, Overflow::kWrap, false);
  CHECK(a.y == 200.0);
  CHECK(b.y == -56.0);
  for (const One& g : {a, b}) {
    CHECK(near(g.dx, 1.0));
    CHECK(near(g.df, kLn2 * (static_cast<double>(200.3f) - 200.0)));
    CHECK(near(g.di, 0.0));  // i follows the data under WRAP
  }
  // Vector 6 (1.7 in k1 i0 f3, RND, WRAP): -0.25 at inference, 1.75 unwrapped in training.
  CHECK(one(1.7f, 3, 0, 1, Round::kRnd, Overflow::kWrap, false).y == -0.25);
  CHECK(one(1.7f, 3, 0, 1, Round::kRnd, Overflow::kWrap, true).y == 1.75);
}

TEST_CASE("pruned elements (k + i + f <= 0): exactly 0, and the bits see the pruning error") {
  for (bool training : {true, false}) {
    One s = one(0.4f, 2, -3, 0, Round::kRnd, Overflow::kSat, training);  // width -1
    CHECK(s.y == 0.0);
    CHECK(near(s.dx, 0.0));
    CHECK(near(s.df, kLn2 * 0.4));
    CHECK(near(s.di, kLn2 * 0.4));
    One w = one(0.4f, 2, -3, 0, Round::kRnd, Overflow::kWrap, training);
    CHECK(w.y == 0.0);
    CHECK(near(w.df, kLn2 * 0.4));
    CHECK(near(w.di, 0.0));                                               // i is not trained under WRAP
    One n = one(-0.4f, 1, -3, 1, Round::kRnd, Overflow::kSat, training);  // signed, width -1
    CHECK(n.y == 0.0);
    CHECK(near(n.df, -kLn2 * 0.4));
    CHECK(near(n.di, -kLn2 * 0.4));
    One u = one(-0.4f, 2, -3, 0, Round::kRnd, Overflow::kSat, training);  // unsigned and negative: stays 0
    CHECK(u.y == 0.0);
    CHECK(near(u.df, 0.0));
    CHECK(near(u.di, 0.0));
  }
  // Width exactly 0 with k = 0 is pruned too; width 1 with k = 1 is not.
  CHECK(one(0.4f, 2, -2, 0, Round::kRnd, Overflow::kSat).y == 0.0);
  CHECK(one(-0.3f, 2, -2, 1, Round::kRnd, Overflow::kSat).y == -0.25);
}

TEST_CASE("f and i are rounded half away from zero, straight through") {
  // x = 0.4: f = 3 gives 0.375 (3.2 -> 3), f = 2 gives 0.5 (1.6 -> 2).
  CHECK(one(0.4f, 2.5f, 1, 1, Round::kRnd, Overflow::kSat).y == 0.375);
  CHECK(one(0.4f, 2.4f, 1, 1, Round::kRnd, Overflow::kSat).y == 0.5);
  One a = one(0.4f, 2.6f, 1, 1, Round::kRnd, Overflow::kSat);
  CHECK(a.y == 0.375);
  CHECK(near(a.df, kLn2 * (static_cast<double>(0.4f) - 0.375)));  // evaluated at the rounded f
  // f = -0.5 -> -1 (not 0): step 2, so 3 -> 1.5 steps -> 2 -> 4.
  CHECK(one(3.f, -0.5f, 3, 1, Round::kRnd, Overflow::kSat).y == 4.0);
  // i = 0.5 -> 1: range [-2, 1.875] at f = 3, so 1.7 is inside.
  CHECK(one(1.7f, 3, 0.5f, 1, Round::kRnd, Overflow::kSat).y == 1.75);
}

TEST_CASE("per-channel bits: values per element, gradients summed over the batch") {
  std::mt19937_64 rng(3);
  Tensor xt = kiln::testing::random_tensor({4, 3}, rng, -2.5f, 2.5f);  // [B, C]: some elements clip
  Tensor w = kiln::testing::random_tensor({4, 3}, rng);
  xt[0] = 2.3f;    // channel 0: above the top
  xt[4] = -2.4f;   // channel 1: below the bottom
  xt[11] = 1.99f;  // channel 2: 1.99 * 16 = 31.84 rounds to 32, beyond the largest code 31
  const int kf[3] = {2, 3, 4};
  Var x(xt, true), f(Tensor({3}, {2, 3, 4}), true), i(Tensor({1}, {1}), true);
  Var y = quantize_fixed(x, f, i, 1, Round::kRnd, Overflow::kSat, true, nullptr);
  backward(y, w);
  double df[3] = {0, 0, 0}, di = 0;
  int clipped = 0;
  for (int b = 0; b < 4; ++b) {
    for (int c = 0; c < 3; ++c) {
      int j = b * 3 + c;
      double xv = xt[j], g = w[j];
      FixedType t{1, 1, kf[c], Round::kRnd, Overflow::kSat};
      double xq = quantize(xv, t);
      CHECK(y.value()[j] == xq);
      // Direct computation of the surrogate: range [-2, 2 - 2^-f], rounding first.
      double r = std::floor(xv * std::ldexp(1.0, kf[c]) + 0.5) * std::ldexp(1.0, -kf[c]);
      if (r > 2 - std::ldexp(1.0, -kf[c])) {
        df[c] += g * std::ldexp(kLn2, -kf[c]);
        di += g * 2 * kLn2;
        CHECK(x.grad()[j] == 0.f);
        ++clipped;
      } else if (r < -2) {
        di -= g * 2 * kLn2;
        CHECK(x.grad()[j] == 0.f);
        ++clipped;
      } else {
        df[c] += g * kLn2 * (xv - xq);
        CHECK(x.grad()[j] == doctest::Approx(g));
      }
    }
  }
  CHECK(clipped > 0);
  CHECK(clipped < 12);
  for (int c = 0; c < 3; ++c) CHECK(near(f.grad()[c], df[c], 1e-5));
  CHECK(near(i.grad()[0], di, 1e-5));
}

TEST_CASE("per-element bits ([B, ...] x against its per-sample shape) and a general broadcast") {
  std::mt19937_64 rng(5);
  Tensor xt = kiln::testing::random_tensor({3, 2, 2}, rng, -3.f, 3.f);
  Tensor w = kiln::testing::random_tensor({3, 2, 2}, rng);
  SUBCASE("f per element of a sample [2, 2], i a 0-d scalar, WRAP in training") {
    Var x(xt, true), f(Tensor({2, 2}, {1, 2, 3, 4}), true), i(Tensor(Shape{}, 2.f), true);
    Var y = quantize_fixed(x, f, i, 1, Round::kRndConv, Overflow::kWrap, true, nullptr);
    backward(y, w);
    double df[4] = {0, 0, 0, 0};
    for (int j = 0; j < 12; ++j) {
      int e = j % 4;
      double xq = std::nearbyint(xt[j] * std::ldexp(1.0, e + 1)) * std::ldexp(1.0, -(e + 1));  // ties to even
      CHECK(y.value()[j] == xq);                                                               // unwrapped
      df[e] += w[j] * kLn2 * (xt[j] - xq);
      CHECK(x.grad()[j] == doctest::Approx(w[j]));
    }
    for (int e = 0; e < 4; ++e) CHECK(near(f.grad()[e], df[e], 1e-5));
    CHECK(i.grad()[0] == 0.f);
  }
  SUBCASE("f [3, 1, 2] against x [3, 2, 2]: summed over axis 1") {
    Var x(xt, true), f(Tensor({3, 1, 2}, {1, 2, 3, 4, 5, 6}), true), i(Tensor({1}, {3}), false);
    Var y = quantize_fixed(x, f, i, 1, Round::kTrn, Overflow::kSat, true, nullptr);
    backward(y, w);
    double df[6] = {0, 0, 0, 0, 0, 0};
    for (int b = 0; b < 3; ++b) {
      for (int r = 0; r < 2; ++r) {
        for (int c = 0; c < 2; ++c) {
          int j = b * 4 + r * 2 + c, e = b * 2 + c;
          double xq =
              std::floor(xt[j] * std::ldexp(1.0, e + 1)) * std::ldexp(1.0, -(e + 1));  // |x| < 3: inside
          CHECK(y.value()[j] == xq);
          df[e] += w[j] * kLn2 * (xt[j] - xq);
        }
      }
    }
    for (int e = 0; e < 6; ++e) CHECK(near(f.grad()[e], df[e], 1e-5));
  }
}

TEST_CASE("bits must broadcast to x's shape: ShapeError naming both shapes") {
  Var x(Tensor({2, 3}));
  auto message = [&](const Shape& fs, const Shape& is) -> std::string {
    try {
      quantize_fixed(x, Var(Tensor(fs, 3.f)), Var(Tensor(is, 1.f)), 1, Round::kRnd, Overflow::kSat, false,
                     nullptr);
    } catch (const ShapeError& e) {
      return e.what();
    }
    return "";
  };
  std::string m = message({4}, {1});
  CHECK(m.find("[4]") != std::string::npos);
  CHECK(m.find("[2, 3]") != std::string::npos);
  CHECK(message({2, 2, 3}, {1}).find("[2, 2, 3]") != std::string::npos);  // broadcasts, but not TO x
  CHECK(message({3}, {3, 1}).find("i of shape [3, 1]") != std::string::npos);
  CHECK(message({2, 1}, {}) == "");  // per-row bits are fine
}

TEST_CASE("stochastic rounding: only the two neighbours, unbiased, and RND at inference") {
  const int64_t n = 200000;
  std::mt19937_64 rng(11);
  for (float xv : {0.3f, -0.7f, 1.0f}) {
    Var x(Tensor({n}, xv)), f(Tensor({1}, {3})), i(Tensor({1}, {1}));
    Var y = quantize_fixed(x, f, i, 1, Round::kStochastic, Overflow::kSat, true, &rng);
    std::set<float> seen;
    double sum = 0;
    for (int64_t j = 0; j < n; ++j) {
      seen.insert(y.value()[j]);
      sum += y.value()[j];
    }
    double lo = std::floor(xv * 8.0) / 8, hi = lo + 0.125;
    CAPTURE(xv);
    for (float v : seen) CHECK((v == lo || v == hi));
    CHECK(seen.size() == (lo == xv ? 1u : 2u));
    CHECK(near(sum / n, xv, 1e-3));
  }
  // At inference S_RND is RND (u = 0.5) and needs no rng: 0.3125 -> 0.375 (tie up).
  CHECK(one(0.3125f, 3, 1, 1, Round::kStochastic, Overflow::kSat, false).y == 0.375);
  CHECK_THROWS_AS(one(0.3f, 3, 1, 1, Round::kStochastic, Overflow::kSat, true), InternalError);
}

TEST_CASE("no graph under NoGradGuard or without trainable inputs; bad input") {
  Var x(Tensor({2}, {0.3f, 1.7f}), true), f(Tensor({1}, {3}), true), i(Tensor({1}, {0}), true);
  {
    NoGradGuard ng;
    Var y = quantize_fixed(x, f, i, 1, Round::kRnd, Overflow::kSat, true, nullptr);
    CHECK_FALSE(y.requires_grad());
    CHECK(y.value()[1] == 0.875f);
  }
  Var y = quantize_fixed(Var(x.value()), Var(f.value()), Var(i.value()), 1, Round::kRnd, Overflow::kSat, true,
                         nullptr);
  CHECK_FALSE(y.requires_grad());
  CHECK_THROWS_AS(quantize_fixed(x, f, i, 2, Round::kRnd, Overflow::kSat, false, nullptr), InputError);
  Var bad(Tensor({1}, {NAN}));
  CHECK_THROWS_AS(quantize_fixed(x, bad, i, 1, Round::kRnd, Overflow::kSat, false, nullptr), InputError);
}

// FixedPlan prepares the bits once for many x (calibration's batches): every call must give quantize_fixed's
// values and gradients bit for bit, on both of quantize_fixed's paths, for batches of different sizes.
TEST_CASE("FixedPlan: quantize_fixed bit for bit, batch after batch") {
  std::mt19937_64 rng(21);
  auto same = [](const Tensor& a, const Tensor& b) {
    return a.shape() == b.shape() && std::memcmp(a.data(), b.data(), sizeof(float) * a.size()) == 0;
  };
  struct Mode {
    Round r;
    Overflow o;
    bool training;
  };
  const Mode modes[] = {{Round::kRnd, Overflow::kWrap, true},
                        {Round::kRnd, Overflow::kWrap, false},
                        {Round::kTrn, Overflow::kSat, true},
                        {Round::kRnd, Overflow::kSatSym, false},
                        {Round::kRndConv, Overflow::kSat, true}};  // RND_CONV: the element loop
  for (const Mode& m : modes) {
    for (int wide : {0, 1}) {  // per element bits [2, 3]; wide: one entry 30 bits (no kernel table)
      Tensor ft = kiln::testing::random_tensor({2, 3}, rng, -1.f, 6.f);
      Tensor it = kiln::testing::random_tensor({2, 3}, rng, -1.f, 3.f);
      if (wide) it[4] = 24.f;
      // Both sides' bits sum their gradients over the batches in the same order.
      Var f(ft, true), i(it, true), f2(ft, true), i2(it, true);
      FixedPlan plan(f, i, 1, m.r, m.o, m.training);
      for (int64_t b : {1, 4, 3}) {
        INFO("round " << static_cast<int>(m.r) << " overflow " << static_cast<int>(m.o) << " training "
                      << m.training << " wide " << wide << " batch " << b);
        Tensor xt = kiln::testing::random_tensor({b, 2, 3}, rng, -6.f, 6.f);
        Tensor w = kiln::testing::random_tensor({b, 2, 3}, rng);
        Var x1(xt, true), x2(xt, true);
        Var y1 = plan(x1);
        backward(y1, w);
        Var y2 = quantize_fixed(x2, f2, i2, 1, m.r, m.o, m.training, nullptr);
        backward(y2, w);
        CHECK(same(y1.value(), y2.value()));
        CHECK(same(x1.grad(), x2.grad()));
        CHECK(same(f.grad(), f2.grad()));
        CHECK(same(i.grad(), i2.grad()));
      }
    }
  }
  // x's shape is checked per call; the bits once, when the plan is made.
  Var f(Tensor({3}, 4.f)), i(Tensor({3}, 1.f));
  FixedPlan plan(f, i, 1, Round::kRnd, Overflow::kSat, false);
  CHECK_THROWS_AS(plan(Var(Tensor({2, 4}))), ShapeError);
  CHECK_THROWS_AS(FixedPlan(Var(Tensor({1}, {NAN})), i, 1, Round::kRnd, Overflow::kSat, false), InputError);
  CHECK_THROWS_AS(FixedPlan(f, i, 2, Round::kRnd, Overflow::kSat, false), InputError);
  CHECK_THROWS_AS(FixedPlan(f, i, 1, Round::kStochastic, Overflow::kSat, true), InternalError);
}

TEST_CASE("rounded_bits: std::lround's values, and bad widths named") {
  // Every half-integer up to kMaxBits, its float neighbours, signed zeros, subnormals and random values.
  std::vector<float> vs{0.f, -0.f, 1e-45f, -1e-45f, 1e-38f, 0.49999997f, -0.49999997f};
  for (int h = -2 * kMaxBits; h <= 2 * kMaxBits; ++h) {
    const float v = static_cast<float>(h) * 0.5f;
    vs.insert(vs.end(), {v, std::nextafter(v, 1e9f), std::nextafter(v, -1e9f)});
  }
  std::mt19937_64 rng(9);
  std::uniform_real_distribution<float> u(-kMaxBits, kMaxBits);
  for (int j = 0; j < 20000; ++j) vs.push_back(u(rng));
  std::vector<float> in;
  for (float v : vs)
    if (std::fabs(v) <= kMaxBits) in.push_back(v);
  Tensor t({static_cast<int64_t>(in.size())}, in);
  const std::vector<int> r = rounded_bits(t, "f");
  REQUIRE(r.size() == in.size());
  int wrong = 0;
  for (size_t j = 0; j < in.size(); ++j) wrong += r[j] != static_cast<int>(std::lround(in[j]));
  CHECK(wrong == 0);
  for (float bad : {static_cast<float>(kMaxBits) + 0.5f, NAN, -INFINITY}) {
    Tensor b({3}, {1.f, bad, 2.f});
    CHECK_THROWS_WITH_AS(rounded_bits(b, "i"), doctest::Contains("i[1] = "), InputError);
  }
}
