// The vectorised path of quantize_fixed (compress/quantize_kernel.h) against the element-by-element
// definition (quantize_fixed_reference), bit for bit in values and gradients: every rounding and overflow
// mode, sign, training and inference, granularity, several tiles of entries, 2 threads, non-finite
// gradients, codes either side of the float wrap's 2^23 limit, and which path ran; each under the kernels'
// baseline (AVX2) copy and, on a CPU that has it, their AVX-512 copy.
#include "compress/quantize_kernel.h"

#include <doctest/doctest.h>
#include <omp.h>

#include <cmath>
#include <cstring>
#include <random>

#include "compress/quantize_ops.h"

using namespace kiln;
using namespace kiln::compress;

namespace {

// x values that probe every branch of the float path: ties at every grid, values just either side of the
// range, zeros of both signs, subnormals, huge values, inf and NaN, and random values at several scales.
Tensor probe_values(Shape shape, std::mt19937_64& rng) {
  Tensor x(shape);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  const float special[] = {0.f,    -0.f,    0.5f,  -0.5f,  0.25f,    -0.375f,   1.f,       -1.f,
                           3.5f,   -4.f,    7.75f, -8.25f, 1e-40f,   -1e-40f,   -1.4e-45f, -3e-45f,
                           1e-30f, -1e-30f, 3e30f, -3e30f, INFINITY, -INFINITY, NAN,       0.1f};
  for (int64_t j = 0; j < x.size(); ++j) {
    const uint64_t pick = rng() % 4;
    if (pick == 0) {
      x[j] = special[rng() % (sizeof(special) / sizeof(float))];
    } else if (pick == 1) {  // an exact tie on a grid of 2^-f, f in [-2, 5]
      x[j] = std::ldexp(static_cast<float>(static_cast<int>(rng() % 64) - 32) + 0.5f,
                        -static_cast<int>(rng() % 8) + 2);
    } else {
      x[j] = u(rng) * std::ldexp(1.f, static_cast<int>(rng() % 12) - 4);
    }
  }
  return x;
}

bool same_float(float a, float b) { return std::memcmp(&a, &b, sizeof(float)) == 0; }

// The kernels' instruction sets on this CPU: the baseline (AVX2), and AVX-512 where the CPU has it.
// each_isa(f) runs f under each, then restores the default.
template <class F>
void each_isa(F&& f) {
  const bool was = qkernel::avx512_in_use();
  for (bool avx512 : {false, true}) {
    if (qkernel::use_avx512(avx512) != avx512) continue;  // no AVX-512 here
    CAPTURE(avx512);
    f();
  }
  qkernel::use_avx512(was);
}

// x with every value the vectorised path cannot take (inf, NaN, |x| >= 2^40, subnormal or tiny) replaced by a
// random value in [-4, 4).
Tensor finite_normal(Tensor x, std::mt19937_64& rng) {
  std::uniform_real_distribution<float> u(-4.f, 4.f);
  for (int64_t j = 0; j < x.size(); ++j)
    if (!std::isfinite(x[j]) || std::fabs(x[j]) >= 0x1p40f || (x[j] != 0.f && std::fabs(x[j]) < 0x1p-60f))
      x[j] = u(rng);
  return x;
}

// Runs quantize_fixed and quantize_fixed_reference on x with bits of shape bs and the output gradient g, and
// requires the same values and gradients to x, f and i bit for bit (NaN as NaN).
void require_same_paths(const Tensor& x, const Shape& bs, const Tensor& g, Round r, Overflow o, int k,
                        bool training, std::mt19937_64& rng) {
  Tensor f(bs), i(bs);
  for (int64_t e = 0; e < f.size(); ++e) {  // widths from pruned (k+i+f <= 0) up to 24 bits
    f[e] = static_cast<float>(static_cast<int>(rng() % 14) - 3);
    i[e] = static_cast<float>(static_cast<int>(rng() % 14) - 4);
    if (k + i[e] + f[e] > 24) i[e] = 24.f - k - f[e];
  }
  struct Result {
    Tensor y, gx, gf, gi;
  };
  // Two passes: the first backward writes into fresh gradient buffers, the second adds to them.
  auto run = [&](bool reference) {
    Var vx(x, true), vf(f, true), vi(i, true);
    Var y;
    for (int pass = 0; pass < 2; ++pass) {
      y = reference ? quantize_fixed_reference(vx, vf, vi, k, r, o, training, nullptr)
                    : quantize_fixed(vx, vf, vi, k, r, o, training, nullptr);
      backward(y, g);
    }
    return Result{y.value(), vx.grad(), vf.grad(), vi.grad()};
  };
  const Result b = run(true);
  each_isa([&] {
    const Result a = run(false);
    for (auto [ta, tb] :
         {std::pair{&a.y, &b.y}, std::pair{&a.gx, &b.gx}, std::pair{&a.gf, &b.gf}, std::pair{&a.gi, &b.gi}}) {
      REQUIRE(ta->size() == tb->size());
      for (int64_t j = 0; j < ta->size(); ++j) {
        CAPTURE(j);
        CAPTURE(x[j % x.size()]);
        REQUIRE(((std::isnan((*ta)[j]) && std::isnan((*tb)[j])) || same_float((*ta)[j], (*tb)[j])));
      }
    }
  });
}

}  // namespace

TEST_CASE("the vectorised path equals the element-by-element definition bit for bit, values and gradients") {
  std::mt19937_64 rng(7);
  const Shape xs{6, 4, 5};
  int cases = 0;
  for (Round r : {Round::kRnd, Round::kTrn})
    for (Overflow o : {Overflow::kSat, Overflow::kSatSym, Overflow::kSatZero, Overflow::kWrap})
      for (int k : {0, 1})
        for (bool training : {true, false})
          for (const Shape& bs : {Shape{1}, Shape{5}, Shape{4, 5}, Shape{1, 4, 5}, Shape{6, 4, 5}}) {
            CAPTURE(static_cast<int>(r));
            CAPTURE(static_cast<int>(o));
            CAPTURE(k);
            CAPTURE(training);
            // With probe values (inf, NaN, subnormals among them) a tensor usually holds an element only the
            // scalar definition takes; with finite, normal values it never does (their codes stay below
            // 2^17), so both the exact and the vectorised backward are compared.
            for (bool finite : {false, true}) {
              Tensor x = probe_values(xs, rng);
              if (finite) x = finite_normal(x, rng);
              Tensor g(xs);
              for (int64_t j = 0; j < g.size(); ++j)
                g[j] = std::ldexp(static_cast<float>(rng() % 7) - 3.f, -2);
              require_same_paths(x, bs, g, r, o, k, training, rng);
              ++cases;
            }
          }
  CHECK(cases == 2 * 4 * 2 * 2 * 5 * 2);
}

TEST_CASE("vectorised path: bits in several tiles of entries, and inf and NaN among the output gradients") {
  // 1300 per-element entries span three of the kernel's 512-entry tiles; x finite and normal so the
  // vectorised loops run; g holds inf and NaN in a few places, which g * 0 turns into NaN sums.
  std::mt19937_64 rng(11);
  const Shape xs{3, 1300};
  for (Round r : {Round::kRnd, Round::kTrn})
    for (Overflow o : {Overflow::kSat, Overflow::kSatSym, Overflow::kWrap})
      for (int k : {0, 1})
        for (bool training : {true, false}) {
          CAPTURE(static_cast<int>(r));
          CAPTURE(static_cast<int>(o));
          CAPTURE(k);
          CAPTURE(training);
          Tensor x = finite_normal(probe_values(xs, rng), rng);
          Tensor g(xs);
          for (int64_t j = 0; j < g.size(); ++j) g[j] = std::ldexp(static_cast<float>(rng() % 7) - 3.f, -2);
          g[17] = INFINITY, g[1300 + 600] = -INFINITY, g[2 * 1300 + 1299] = NAN;
          require_same_paths(x, Shape{1300}, g, r, o, k, training, rng);
        }
}

TEST_CASE("vectorised path on 2 threads (tiles of entries split across threads) equals the definition") {
  // 40 x 1300 elements pass the kernels' parallel threshold; each tile's sums stay on one thread.
  std::mt19937_64 rng(12);
  const Shape xs{40, 1300};
  omp_set_num_threads(2);
  for (Overflow o : {Overflow::kSat, Overflow::kWrap})
    for (bool training : {true, false}) {
      CAPTURE(static_cast<int>(o));
      CAPTURE(training);
      Tensor x = finite_normal(probe_values(xs, rng), rng);
      Tensor g(xs);
      for (int64_t j = 0; j < g.size(); ++j) g[j] = std::ldexp(static_cast<float>(rng() % 7) - 3.f, -2);
      require_same_paths(x, Shape{1300}, g, Round::kRnd, o, 1, training, rng);
    }
  omp_set_num_threads(1);
}

TEST_CASE("WRAP at inference: codes either side of the float wrap's 2^23 limit equal the definition") {
  // Codes of 2^21 to 2^26 in narrow types wrap many times over; from 2^23 on the float wrap would round
  // (2^24 + 2 in k1 i0 f0 would give -2), so those go to the scalar definition.
  std::mt19937_64 rng(13);
  const Shape xs{4, 64};
  Tensor x(xs);
  for (int64_t j = 0; j < x.size(); ++j) {
    const float mag =
        std::ldexp(1.f, 21 + static_cast<int>(rng() % 6)) + static_cast<float>(rng() % 64) * 2.f;
    x[j] = (rng() % 2 ? mag : -mag) * (j % 3 == 0 ? 0.25f : 1.f);
  }
  x[0] = 0x1p24f + 2.f, x[1] = -0x1p24f - 2.f, x[2] = 0x1p23f - 1.f, x[3] = 0x1p23f;
  Tensor g(xs, 0.5f);
  for (int k : {0, 1})
    for (Round r : {Round::kRnd, Round::kTrn})
      require_same_paths(x, Shape{64}, g, r, Overflow::kWrap, k, false, rng);
}

TEST_CASE("which path runs: the vectorised one for finite inputs, the definition for the rest") {
  each_isa([] {
    const std::vector<int> i{0, 2, 3, -1}, f{0, 3, 1, 4};  // k1 i0 f0, k1 i2 f3, ...
    Tensor x({2, 4}, {0.3f, -1.7f, 2.5f, 0.01f, 100.f, -3.f, 5.25f, -0.2f});
    Tensor out(x.shape());
    for (Overflow o : {Overflow::kSat, Overflow::kSatSym, Overflow::kSatZero, Overflow::kWrap})
      for (bool training : {true, false}) {
        CAPTURE(static_cast<int>(o));
        CAPTURE(training);
        auto t = qkernel::make_table(1, i, f, Round::kRnd, o, training);
        REQUIRE(t);
        // 100 and -3 overflow their types: saturated, or wrapped in float at inference
        CHECK(qkernel::forward(*t, x.data(), out.data(), x.size()) == 0);
        Tensor bad = x;
        bad[5] = INFINITY;
        CHECK(qkernel::forward(*t, bad.data(), out.data(), bad.size()) == 1);
      }
    auto wrap = qkernel::make_table(1, i, f, Round::kRnd, Overflow::kWrap, false);
    Tensor huge = x;
    huge[4] = 0x1p24f + 2.f;  // a WRAP overflow whose code is past 2^23
    CHECK(qkernel::forward(*wrap, huge.data(), out.data(), huge.size()) == 1);
    auto wrap_training = qkernel::make_table(1, i, f, Round::kRnd, Overflow::kWrap, true);
    CHECK(qkernel::forward(*wrap_training, huge.data(), out.data(), huge.size()) ==
          0);  // not wrapped in training
  });
}

TEST_CASE(
    "WRAP at inference: a few overflows among in-range rows are wrapped, the other rows left as they are") {
  // The kernel quantizes a row without wrapping and redoes only rows (within a tile of entries) where
  // something overflowed; here 3 of 8 rows over 3 tiles hold one overflow each, at a tile's first and last
  // entry among them, and one row holds a code past 2^23 that only the definition can take.
  const int64_t nb = 1300, rows = 8;
  Tensor x({rows, nb});
  std::mt19937_64 rng(14);
  std::uniform_real_distribution<float> u(-3.9f, 3.9f);
  for (int64_t j = 0; j < x.size(); ++j) x[j] = u(rng);
  std::vector<int> i(static_cast<size_t>(nb), 2), f(static_cast<size_t>(nb), 4);  // k1 i2 f4: [-4, 4)
  x[1 * nb + 511] = 9.3f, x[4 * nb + 512] = -20.72f, x[6 * nb + 1299] = 4.f;
  for (bool huge : {false, true})
    each_isa([&] {
      CAPTURE(huge);
      if (huge) x[7 * nb + 3] = 0x1p24f + 2.f;
      Tensor fv({nb}), iv({nb});
      for (int64_t e = 0; e < nb; ++e) fv[e] = 4.f, iv[e] = 2.f;
      Tensor want =
          quantize_fixed_reference(Var(x), Var(fv), Var(iv), 1, Round::kRnd, Overflow::kWrap, false, nullptr)
              .value();
      auto t = qkernel::make_table(1, i, f, Round::kRnd, Overflow::kWrap, false);
      REQUIRE(t);
      Tensor got(x.shape());
      CHECK(qkernel::forward(*t, x.data(), got.data(), x.size()) == (huge ? 1 : 0));
      for (int64_t j = 0; j < x.size(); ++j) {
        CAPTURE(j);
        REQUIRE(same_float(got[j], want[j]));
      }
      CHECK(got[1 * nb + 511] == 9.3125f - 8.f);  // wrapped by 2^(k+i) = 8, not left at its code
      CHECK(got[4 * nb + 512] == -20.75f + 24.f);
      CHECK(got[6 * nb + 1299] == -4.f);
    });
}

TEST_CASE("backward in place: a fresh input gradient takes over the output gradient's buffer") {
  // An activation's gradient is fresh in every training step: the quantizer's backward writes it into the
  // output gradient's own buffer (read before written, element by element) instead of a new one. Not when x
  // already holds a gradient (it is added to), nor when some element took the scalar definition.
  std::mt19937_64 rng(33);
  const Shape xs{9, 700};  // two tiles of entries
  Tensor x = finite_normal(probe_values(xs, rng), rng), f({700}), i({700}), g(xs);
  for (int64_t e = 0; e < 700; ++e)
    f[e] = static_cast<float>(rng() % 8), i[e] = static_cast<float>(rng() % 4) - 1;
  for (int64_t j = 0; j < g.size(); ++j) g[j] = std::ldexp(static_cast<float>(rng() % 9) - 4.f, -3);
  for (Overflow o : {Overflow::kWrap, Overflow::kSat})
    each_isa([&] {
      CAPTURE(static_cast<int>(o));
      Var rx(x, true), rf(f, true), ri(i, true);
      backward(quantize_fixed_reference(rx, rf, ri, 1, Round::kRnd, o, true, nullptr), g);
      Var vx(x, true), vf(f, true), vi(i, true);
      Var y = quantize_fixed(vx, vf, vi, 1, Round::kRnd, o, true, nullptr);
      backward(y, g);
      CHECK(y.grad().empty());  // moved to x
      REQUIRE(vx.grad().size() == x.size());
      CHECK(std::memcmp(vx.grad().data(), rx.grad().data(), sizeof(float) * static_cast<size_t>(x.size())) ==
            0);
      CHECK(std::memcmp(vf.grad().data(), rf.grad().data(), sizeof(float) * 700) == 0);
      CHECK(std::memcmp(vi.grad().data(), ri.grad().data(), sizeof(float) * 700) == 0);
      // x's gradient held already: added to, and the output's gradient stays where it is.
      Var y2 = quantize_fixed(vx, vf, vi, 1, Round::kRnd, o, true, nullptr);
      backward(y2, g);
      CHECK(y2.grad().size() == x.size());
      // An element only the definition takes (inf): no move.
      Tensor bad = x;
      bad[5] = INFINITY;
      Var bx(bad, true);
      Var y3 = quantize_fixed(bx, vf, vi, 1, Round::kRnd, o, true, nullptr);
      backward(y3, g);
      CHECK(y3.grad().size() == x.size());
    });
}

TEST_CASE("the kernels' AVX-512 copy is chosen where the CPU has it, and can be switched off") {
  const bool was = qkernel::avx512_in_use();
  CHECK_FALSE(qkernel::use_avx512(false));
  CHECK_FALSE(qkernel::avx512_in_use());
  const bool can = qkernel::use_avx512(true);
  MESSAGE("AVX-512 kernels on this CPU: " << (can ? "yes, both copies tested" : "no, the baseline's only"));
  CHECK(qkernel::avx512_in_use() == can);
  qkernel::use_avx512(was);
}

namespace {
// Every constant of two tables, bit for bit.
bool same_table(const qkernel::Table& a, const qkernel::Table& b) {
  auto same = [](const auto& u, const auto& v) {
    return u.size() == v.size() && std::memcmp(u.data(), v.data(), u.size() * sizeof(u[0])) == 0;
  };
  return a.k == b.k && a.round == b.round && a.overflow == b.overflow && a.training == b.training &&
         same(a.scale, b.scale) && same(a.inv, b.inv) && same(a.hi, b.hi) && same(a.lo, b.lo) &&
         same(a.top, b.top) && same(a.bottom, b.bottom) && same(a.modulus, b.modulus) &&
         same(a.inv_modulus, b.inv_modulus) && same(a.above_df, b.above_df) && same(a.above_di, b.above_di) &&
         same(a.below_df, b.below_df) && same(a.below_di, b.below_di) && same(a.pruned, b.pruned) &&
         a.i == b.i && a.f == b.f;
}
}  // namespace

TEST_CASE("updated_table: a table updated where bits moved is make_table's, and declines as it does") {
  std::mt19937_64 rng(11);
  const size_t nb = 700;
  std::vector<int> i(nb), f(nb);
  for (size_t e = 0; e < nb; ++e)
    i[e] = static_cast<int>(rng() % 8) - 3, f[e] = static_cast<int>(rng() % 10) - 2;
  for (Overflow o : {Overflow::kSat, Overflow::kSatSym, Overflow::kSatZero, Overflow::kWrap})
    for (int k : {0, 1}) {
      CAPTURE(static_cast<int>(o));
      CAPTURE(k);
      auto t = qkernel::make_table(k, i, f, Round::kTrn, o, true);
      REQUIRE(t);
      const auto first = t;
      std::vector<int> i2 = i, f2 = f;
      for (int step = 0; step < 5; ++step) {
        // A few entries move by one bit either way, some into pruning (k + i + f <= 0) and out of it.
        for (int m = 0; m < 40; ++m) {
          const size_t e = rng() % nb;
          (rng() % 2 ? i2 : f2)[e] += rng() % 2 ? 1 : -1;
        }
        auto u = qkernel::updated_table(*t, i2, f2);
        auto fresh = qkernel::make_table(k, i2, f2, Round::kTrn, o, true);
        REQUIRE(u);
        REQUIRE(fresh);
        CHECK(same_table(*u, *fresh));
        t = u;
      }
      // The tables updated from are untouched (a backward still running on one keeps its constants).
      CHECK(same_table(*first, *qkernel::make_table(k, i, f, Round::kTrn, o, true)));
      std::vector<int> wide = i2;
      wide[3] = 30;  // k + i + f > 24: not the fast path's, for the update as for make_table
      CHECK_FALSE(qkernel::updated_table(*t, wide, f2));
      CHECK_FALSE(qkernel::make_table(k, wide, f2, Round::kTrn, o, true));
      CHECK(same_table(*t, *qkernel::make_table(k, i2, f2, Round::kTrn, o, true)));
    }
}
