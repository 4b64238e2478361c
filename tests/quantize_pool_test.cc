// The fused quantizer + max pool (compress/quantize_pool.h) against the two ops apart, bit for bit: values,
// x's gradient (fresh, or added to one x already holds) and the bits' gradients, over rounding and overflow
// modes, training and inference, windows with rows and columns past the last one, 2x2 and 3x2 windows, 1 and
// 2 threads, each kernel copy; where it must decline (non-finite input, overlapping windows, bits per
// channel); and FixedQuantizer's hook, whose side effects (the range under WRAP) must happen once.
#include "compress/quantize_pool.h"

#include <doctest/doctest.h>
#include <omp.h>

#include <cmath>
#include <cstring>
#include <random>

#include "compress/quantize_ops.h"
#include "compress/quantizer.h"
#include "engine/nn/layer.h"

using namespace kiln;
using namespace kiln::compress;

namespace {

bool same_bits(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() &&
         std::memcmp(a.data(), b.data(), sizeof(float) * static_cast<size_t>(a.size())) == 0;
}

Tensor random_tensor(const Shape& s, std::mt19937_64& rng, float scale) {
  Tensor t(s);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  for (int64_t j = 0; j < t.size(); ++j) {
    t[j] = u(rng) * scale;
    if (rng() % 9 == 0) t[j] = (rng() % 2) ? 0.f : -0.f;       // signed zeros
    if (rng() % 11 == 0) t[j] = std::round(t[j] * 4.f) / 4.f;  // ties and repeated maxima
  }
  return t;
}

// Bits per element: f in [-1, 6], i in [-2, 3], so some elements are pruned (k + i + f <= 0).
Tensor random_bits(const Shape& s, std::mt19937_64& rng, int lo, int hi) {
  Tensor t(s);
  for (int64_t j = 0; j < t.size(); ++j)
    t[j] = static_cast<float>(lo + static_cast<int>(rng() % (hi - lo + 1)));
  return t;
}

struct Mode {
  int k;
  Round round;
  Overflow overflow;
  bool training;
};

struct Result {
  Tensor y, gx, gf, gi;
};

// y = pool(quantize(x)) and, with a seed, the gradients of sum(y * seed) (+ sum(x * 0.5) when x_twice: x's
// gradient then arrives on a buffer that already holds values, or not, depending on the order).
Result run(bool fused, const Tensor& xv, const Tensor& fv, const Tensor& iv, const Mode& m,
           const PoolWindow2d& w, const Tensor* seed, bool x_twice) {
  Var x(xv, true), f(fv, true), i(iv, true);
  Var y;
  if (fused) {
    auto table = fast_table(x, f, i, m.k, m.round, m.overflow, m.training);
    REQUIRE(table);
    y = quantize_max_pool2d(x, f, i, table, w);
    REQUIRE(y.defined());
  } else {
    y = max_pool2d(quantize_fixed(x, f, i, m.k, m.round, m.overflow, m.training, nullptr), w.pool_h, w.pool_w,
                   w.stride_h, w.stride_w, w.pad);
  }
  Result r{y.value(), {}, {}, {}};
  if (!seed) return r;
  Var loss = sum_all(mul(y, Var(*seed)));
  if (x_twice) loss = add(loss, sum_all(mul(x, Var(Tensor(xv.shape(), 0.5f)))));
  backward(loss);
  r.gx = x.grad(), r.gf = f.grad(), r.gi = i.grad();
  return r;
}

void check_same(const Tensor& xv, const Tensor& fv, const Tensor& iv, const Mode& m, const PoolWindow2d& w,
                std::mt19937_64& rng) {
  CAPTURE(m.k);
  CAPTURE(static_cast<int>(m.overflow));
  CAPTURE(m.training);
  CAPTURE(shape_str(xv.shape()));
  {  // values only, no gradient recorded
    NoGradGuard ng;
    CHECK(same_bits(run(true, xv, fv, iv, m, w, nullptr, false).y,
                    run(false, xv, fv, iv, m, w, nullptr, false).y));
  }
  const Result probe = run(false, xv, fv, iv, m, w, nullptr, false);
  Tensor seed = random_tensor(probe.y.shape(), rng, 2.f);
  for (bool twice : {false, true}) {
    CAPTURE(twice);
    const Result a = run(true, xv, fv, iv, m, w, &seed, twice),
                 b = run(false, xv, fv, iv, m, w, &seed, twice);
    CHECK(same_bits(a.y, b.y));
    CHECK(same_bits(a.gx, b.gx));
    CHECK(same_bits(a.gf, b.gf));
    CHECK(same_bits(a.gi, b.gi));
  }
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

}  // namespace

TEST_CASE("quantize_max_pool2d: the same bits as max_pool2d over quantize_fixed") {
  std::mt19937_64 rng(7);
  const Mode modes[] = {{1, Round::kRnd, Overflow::kWrap, true},   {1, Round::kRnd, Overflow::kWrap, false},
                        {0, Round::kRnd, Overflow::kWrap, true},   {1, Round::kRnd, Overflow::kSat, true},
                        {0, Round::kTrn, Overflow::kSat, true},    {1, Round::kRnd, Overflow::kSatSym, false},
                        {1, Round::kTrn, Overflow::kSatZero, true}};
  struct Case {
    Shape x;
    PoolWindow2d w;
  };
  const Case cases[] = {
      {{3, 6, 8, 5}, {2, 2, 2, 2, Padding::kValid}},
      {{2, 11, 11, 7}, {2, 2, 2, 2, Padding::kValid}},  // a row and a column past the last window
      {{2, 9, 7, 3}, {3, 2, 3, 2, Padding::kValid}},    // 3x2 windows, a column past the last one
      {{2, 4, 6, 16}, {2, 2, 2, 2, Padding::kSame}},    // "same" that pads nothing
      {{40, 6, 6, 16}, {2, 2, 2, 2, Padding::kValid}},  // enough rows for the kernels' prefetch and threads
  };
  each_isa([&] {
    for (int threads : {1, 2}) {
      omp_set_num_threads(threads);
      CAPTURE(threads);
      for (const Case& c : cases) {
        const Shape sample{c.x[1], c.x[2], c.x[3]};
        const Tensor xv = random_tensor(c.x, rng, 6.f);
        const Tensor fv = random_bits(sample, rng, -1, 6), iv = random_bits(sample, rng, -2, 3);
        for (const Mode& m : modes) check_same(xv, fv, iv, m, c.w, rng);
      }
    }
    omp_set_num_threads(1);
  });
}

TEST_CASE("quantize_max_pool2d declines what it does not fuse") {
  std::mt19937_64 rng(3);
  const Shape xs{2, 6, 6, 4}, sample{6, 6, 4};
  Tensor xv = random_tensor(xs, rng, 3.f);
  Var f(random_bits(sample, rng, 0, 5), true), i(random_bits(sample, rng, 1, 3), true);
  const PoolWindow2d w{2, 2, 2, 2, Padding::kValid};
  auto table = fast_table(Var(xv), f, i, 1, Round::kRnd, Overflow::kWrap, true);
  REQUIRE(table);
  CHECK(quantize_max_pool2d(Var(xv, true), f, i, table, w).defined());
  // Overlapping windows, a window reaching into the padding, no table.
  CHECK_FALSE(quantize_max_pool2d(Var(xv, true), f, i, table, {2, 2, 1, 1, Padding::kValid}).defined());
  CHECK_FALSE(quantize_max_pool2d(Var(xv, true), f, i, table, {4, 4, 4, 4, Padding::kSame}).defined());
  CHECK_FALSE(quantize_max_pool2d(Var(xv, true), f, i, nullptr, w).defined());
  // Bits per channel.
  Var fc(Tensor({4}, 3.f), true), ic(Tensor({4}, 2.f), true);
  CHECK_FALSE(quantize_max_pool2d(Var(xv, true), fc, ic,
                                  fast_table(Var(xv), fc, ic, 1, Round::kRnd, Overflow::kWrap, true), w)
                  .defined());
  // An element for the scalar definition, in a pooled row and in the row past the last window alike.
  for (int64_t at : {int64_t{5}, int64_t{2 * 6 * 4 + 7}}) {
    Tensor bad = xv;
    bad[at] = NAN;
    CHECK_FALSE(quantize_max_pool2d(Var(bad, true), f, i, table, {2, 2, 2, 2, Padding::kValid}).defined());
  }
  Tensor odd = random_tensor({2, 5, 6, 4}, rng, 3.f);  // H = 5: the row past the last window holds the inf
  Var f5(random_bits({5, 6, 4}, rng, 0, 5)), i5(random_bits({5, 6, 4}, rng, 1, 3));
  auto t5 = fast_table(Var(odd), f5, i5, 1, Round::kRnd, Overflow::kWrap, true);
  CHECK(quantize_max_pool2d(Var(odd), f5, i5, t5, w).defined());
  odd[4 * 6 * 4 + 1] = INFINITY;
  CHECK_FALSE(quantize_max_pool2d(Var(odd), f5, i5, t5, w).defined());
}

TEST_CASE("FixedQuantizer::apply_max_pool2d: the quantizer then the pool, its side effects once") {
  std::mt19937_64 rng(11);
  QuantSpec s;
  s.f = 3, s.i = 2, s.train_f = true, s.activation = true, s.overflow = Overflow::kWrap;
  const Shape sample{6, 6, 8};
  const PoolWindow2d w{2, 2, 2, 2, Padding::kValid};
  for (bool bad : {false, true}) {  // bad: a NaN sends the fused op back to the two ops, inside the hook
    CAPTURE(bad);
    FixedQuantizer a("a", s, sample), b("b", s, sample);
    std::mt19937_64 r1(1), r2(1);
    for (int step = 0; step < 3; ++step) {
      Tensor xv = random_tensor({4, 6, 6, 8}, rng, 5.f * static_cast<float>(step + 1));
      if (bad) xv[17] = NAN;
      nn::Context ca(true, &r1), cb(true, &r2);
      Var xa(xv, true), xb(xv, true);
      Var ya = a.apply_max_pool2d(xa, ca, w);
      REQUIRE(ya.defined());
      Var yb = max_pool2d(b.apply(xb, cb), 2, 2, 2, 2, Padding::kValid);
      CHECK(same_bits(ya.value(), yb.value()));
      const Tensor seed = random_tensor(ya.value().shape(), rng, 1.f);
      backward(sum_all(mul(ya, Var(seed))));
      backward(sum_all(mul(yb, Var(seed))));
      CHECK(same_bits(xa.grad(), xb.grad()));
      CHECK(same_bits(a.i(), b.i()));  // the range tracked once per pass (i moves by 0.01 a step)
    }
  }
  // Calibration: the same values and the same integer bits after it.
  FixedQuantizer a("a", s, sample), b("b", s, sample);
  a.begin_calibration(), b.begin_calibration();
  nn::Context ctx(false);
  NoGradGuard ng;
  for (int batch = 0; batch < 2; ++batch) {
    const Tensor xv = random_tensor({3, 6, 6, 8}, rng, 9.f);
    Var ya = a.apply_max_pool2d(Var(xv), ctx, w);
    REQUIRE(ya.defined());
    CHECK(same_bits(ya.value(), max_pool2d(b.apply(Var(xv), ctx), 2, 2, 2, 2, Padding::kValid).value()));
  }
  a.end_calibration(), b.end_calibration();
  CHECK(same_bits(a.i(), b.i()));
  // Bits per channel: the hook declines before doing anything, and the layer composes the two.
  QuantSpec c = s;
  c.granularity = Granularity::kChannel;
  FixedQuantizer q("q", c, sample);
  const Tensor i_before = q.i();
  nn::Context train(true, &rng);
  CHECK_FALSE(q.apply_max_pool2d(Var(random_tensor({2, 6, 6, 8}, rng, 40.f), true), train, w).defined());
  CHECK(same_bits(q.i(), i_before));
}
