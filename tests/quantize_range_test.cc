// The range an activation's bits follow, reduced in the quantizing pass: qkernel::forward with lo and hi,
// FixedPlan's calibration call and quantize_fixed_following. Each must give exactly what a separate pass
// (column_min_max, then quantize_fixed with the bits the range left) gives: the same codes, the same min and
// max (NaN skipped, zeros of both signs, inf), the same gradients, in the kernels' baseline and AVX-512
// copies, on 1 and 2 threads, also when the new bits prune or revive an entry or an element needs the scalar
// definition.
#include <doctest/doctest.h>
#include <omp.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "compress/quantize_kernel.h"
#include "compress/quantize_ops.h"
#include "engine/check.h"

using namespace kiln;
using namespace kiln::compress;

namespace {

bool same(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() &&
         std::memcmp(a.data(), b.data(), sizeof(float) * static_cast<size_t>(a.size())) == 0;
}
bool same(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), sizeof(float) * a.size()) == 0;
}

template <class F>
void each_isa(F&& f) {
  const bool was = qkernel::avx512_in_use();
  for (bool avx512 : {false, true}) {
    if (qkernel::use_avx512(avx512) != avx512) continue;
    CAPTURE(avx512);
    f();
  }
  qkernel::use_avx512(was);
}

// rows x nb values: normal ones at several scales, zeros of both signs, and with `special` also NaN, inf and
// huge values (the scalar definition's elements).
Tensor values(int64_t rows, int64_t nb, bool special, std::mt19937_64& rng) {
  Tensor x({rows, nb});
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  const float odd[] = {0.f, -0.f, NAN, INFINITY, -INFINITY, 3e30f};
  for (int64_t j = 0; j < x.size(); ++j) {
    x[j] = u(rng) * std::ldexp(1.f, static_cast<int>(rng() % 8) - 2);
    if (rng() % 16 == 0) x[j] = odd[rng() % (special ? 6 : 2)];
  }
  return x;
}

// The range as a plain loop: lo = min(lo, x), hi = max(hi, x) per entry, rows in order (std::min / max keep
// the earlier value on ties and NaN).
void plain_range(const Tensor& x, int64_t nb, std::vector<float>& lo, std::vector<float>& hi) {
  for (int64_t j = 0; j < x.size(); ++j) {
    const size_t e = static_cast<size_t>(j % nb);
    lo[e] = std::min(lo[e], x[j]);
    hi[e] = std::max(hi[e], x[j]);
  }
}

}  // namespace

TEST_CASE("qkernel::forward with lo and hi: the same codes, and the range column_min_max reduces") {
  std::mt19937_64 rng(5);
  const int64_t nb = 1300, rows = 30;  // three 512-entry tiles; 39,000 elements: the tiles run in parallel
  for (int threads : {1, 2})
    for (Overflow o : {Overflow::kWrap, Overflow::kSat, Overflow::kSatSym, Overflow::kSatZero})
      for (bool training : {true, false}) {
        if (o == Overflow::kWrap && !training) continue;  // refused below
        for (bool special : {false, true}) {
          CAPTURE(threads);
          CAPTURE(static_cast<int>(o));
          CAPTURE(training);
          CAPTURE(special);
          omp_set_num_threads(threads);
          std::vector<int> f(nb), i(nb);
          for (int64_t e = 0; e < nb; ++e)  // some entries pruned (k + i + f <= 0)
            f[e] = static_cast<int>(rng() % 10) - 2, i[e] = static_cast<int>(rng() % 6) - 3;
          auto t = qkernel::make_table(1, i, f, Round::kRnd, o, training);
          REQUIRE(t);
          Tensor x = values(rows, nb, special, rng);
          // A range carried over from an earlier batch, merged into.
          std::vector<float> lo0(nb), hi0(nb);
          for (int64_t e = 0; e < nb; ++e)
            lo0[e] = e % 3 ? -0.5f : INFINITY, hi0[e] = e % 3 ? 0.5f : -INFINITY;
          std::vector<float> want_lo = lo0, want_hi = hi0;
          plain_range(x, nb, want_lo, want_hi);
          Tensor want(x.shape());
          const int want_any = qkernel::forward(*t, x.data(), want.data(), x.size());
          each_isa([&] {
            std::vector<float> lo = lo0, hi = hi0, clo = lo0, chi = hi0;
            Tensor got(x.shape());
            CHECK(qkernel::forward(*t, x.data(), got.data(), x.size(), lo.data(), hi.data()) == want_any);
            CHECK(same(got, want));
            CHECK(same(lo, want_lo));
            CHECK(same(hi, want_hi));
            qkernel::column_min_max(x.data(), x.size(), nb, clo.data(), chi.data());
            CHECK(same(clo, want_lo));
            CHECK(same(chi, want_hi));
          });
          omp_set_num_threads(1);
        }
      }
  // WRAP at inference may compute a row twice: no range there.
  std::vector<int> f(4, 3), i(4, 1);
  auto t = qkernel::make_table(1, i, f, Round::kRnd, Overflow::kWrap, false);
  std::vector<float> x(8, 1.f), out(8), lo(4), hi(4);
  CHECK_THROWS_AS(qkernel::forward(*t, x.data(), out.data(), 8, lo.data(), hi.data()), InternalError);
}

TEST_CASE("FixedPlan with lo and hi: calibration's pass, batch after batch") {
  std::mt19937_64 rng(8);
  Tensor ft({2, 3}, {2.f, 5.f, -1.f, 3.f, 0.f, 4.f}), it({2, 3}, {20.f, 18.f, 22.f, 20.f, 23.f, 19.f});
  for (bool wide : {false, true}) {  // wide: one entry 30 bits, no kernel table (the element loop)
    CAPTURE(wide);
    if (wide) it[1] = 26.f;
    Var f(ft), i(it);
    FixedPlan plan(f, i, 1, Round::kRnd, Overflow::kWrap, /*training=*/true);
    std::vector<float> lo(6, INFINITY), hi(6, -INFINITY), want_lo = lo, want_hi = hi;
    for (int64_t b : {3, 1, 5}) {
      Tensor xt = values(b, 6, true, rng).reshaped({b, 2, 3});
      Var y = plan(Var(xt), lo.data(), hi.data());
      CHECK(same(y.value(), plan(Var(xt)).value()));
      plain_range(xt, 6, want_lo, want_hi);
      CHECK(same(lo, want_lo));
      CHECK(same(hi, want_hi));
    }
  }
  FixedPlan inference(Var(ft), Var(it), 1, Round::kRnd, Overflow::kWrap, false);
  std::vector<float> lo(6), hi(6);
  CHECK_THROWS_AS(inference(Var(Tensor({1, 2, 3})), lo.data(), hi.data()), InternalError);
}

TEST_CASE(
    "quantize_fixed_following: the range pass, then quantize_fixed with the bits it left, bit for bit") {
  std::mt19937_64 rng(13);
  const int64_t rows = 40, nb = 700;  // per-element bits, two tiles
  // What follow does to i: nothing; a small step (no entry pruned or revived); pruning entry 3; reviving
  // entry 5 (pruned before); the running maximum kiln trains with.
  enum Step { kKeep, kNudge, kPrune, kRevive, kRunning };
  for (Step step : {kKeep, kNudge, kPrune, kRevive, kRunning})
    for (bool special : {false, true})
      for (bool per_channel : {false, true}) {
        CAPTURE(static_cast<int>(step));
        CAPTURE(special);
        CAPTURE(per_channel);
        const int64_t ne = per_channel ? 7 : nb;
        Tensor ft({ne}), it({ne});
        for (int64_t e = 0; e < ne; ++e)
          ft[e] = static_cast<float>(rng() % 8), it[e] = static_cast<float>(rng() % 4) - 0.4f;
        it[5] = -ft[5] - 1.f;  // pruned: 1 + i + f <= 0
        const Shape xs = per_channel ? Shape{rows, 100, 7} : Shape{rows, nb};
        Tensor xt = values(rows, nb, special, rng).reshaped(xs);
        Tensor g = values(rows, nb, false, rng).reshaped(xs);
        auto follow_on = [&](Tensor& iv, const float* lo, const float* hi) {
          for (int64_t e = 0; e < ne; ++e) {
            if (step == kNudge) iv[e] -= 0.01f;
            if (step == kRunning) {
              const float m = std::max(std::fabs(lo[e]), std::fabs(hi[e]));
              iv[e] = std::isfinite(m) ? std::max(iv[e] - 0.01f, std::ceil(std::log2(m + 1.f))) : INFINITY;
            }
          }
          if (step == kPrune) iv[3] = -ft[3] - 2.f;
          if (step == kRevive) iv[5] = 2.f;
        };
        // The separate passes.
        Var x1(xt, true), f1(ft, true), i1(it, true);
        std::vector<float> lo1(ne, INFINITY), hi1(ne, -INFINITY);
        qkernel::column_min_max(xt.data(), xt.size(), ne, lo1.data(), hi1.data());
        follow_on(i1.value(), lo1.data(), hi1.data());
        bool bad_bits = false;
        Var y1;
        try {
          y1 = quantize_fixed(x1, f1, i1, 1, Round::kRnd, Overflow::kWrap, true, nullptr);
        } catch (const InputError&) {
          bad_bits = true;  // an inf reached i (kRunning with inf in x): both refuse
        }
        if (!bad_bits) backward(y1, g);
        each_isa([&] {
          Var x2(xt, true), f2(ft, true), i2(it, true);
          std::vector<float> lo2, hi2;
          auto follow = [&](const float* lo, const float* hi) {
            lo2.assign(lo, lo + ne), hi2.assign(hi, hi + ne);
            follow_on(i2.value(), lo, hi);
          };
          if (bad_bits) {
            CHECK_THROWS_AS(quantize_fixed_following(x2, f2, i2, 1, Round::kRnd, nullptr, follow),
                            InputError);
            return;
          }
          Var y2 = quantize_fixed_following(x2, f2, i2, 1, Round::kRnd, nullptr, follow);
          backward(y2, g);
          CHECK(same(lo2, lo1));
          CHECK(same(hi2, hi1));
          CHECK(same(i2.value(), i1.value()));
          CHECK(same(y2.value(), y1.value()));
          CHECK(same(x2.grad(), x1.grad()));
          CHECK(same(f2.grad(), f1.grad()));
          CHECK(same(i2.grad(), i1.grad()));
        });
      }
}
