// max_pool2d/avg_pool2d and their 1-d versions: hand-computed values (padding never wins a max, border
// averages divide by the real inputs only), gradient routing to the argmax, finite-difference gradients and
// ShapeError on bad shapes.
#include <omp.h>

#include <cstring>
#include <limits>

#include "engine/check.h"
#include "tests/gradcheck.h"

using namespace kiln;
using kiln::testing::distinct_tensor;
using kiln::testing::max_grad_error;
using kiln::testing::random_tensor;

namespace {
std::mt19937_64 rng(5);
Tensor rnd(const Shape& s) { return random_tensor(s, rng); }
using Vs = std::vector<Var>;
constexpr Padding kValid = Padding::kValid, kSame = Padding::kSame;

// x [1, 4, 4, 1] holding sign * (1..16) row by row: x[i][j] = sign * (4i + j + 1).
Var ramp4x4(float sign = 1.f, bool requires_grad = false) {
  Tensor t({1, 4, 4, 1});
  for (int64_t i = 0; i < 16; ++i) t[i] = sign * static_cast<float>(i + 1);
  return Var(t, requires_grad);
}
}  // namespace

TEST_CASE("max_pool2d: exact values; padding never wins") {
  CHECK(max_pool2d(ramp4x4(), 2, 2, 2, 2, kValid).value().storage() == std::vector<float>{6, 8, 14, 16});
  // Same, 3x3 stride 2 on 4: out 2, the one padded row/column at the end.
  Var s = max_pool2d(ramp4x4(), 3, 3, 2, 2, kSame);
  CHECK(s.shape() == Shape{1, 2, 2, 1});
  CHECK(s.value().storage() == std::vector<float>{11, 12, 15, 16});
  // All inputs negative: a zero-padded max would give 0 at the border.
  Var n = max_pool2d(ramp4x4(-1.f), 3, 3, 1, 1, kSame);
  CHECK(n.shape() == Shape{1, 4, 4, 1});
  CHECK(n.value().at({0, 0, 0, 0}) == -1.f);
  CHECK(n.value().at({0, 3, 3, 0}) == -11.f);
  // Channels pool independently; non-square pool.
  Var c(Tensor({1, 1, 4, 2}, {1, 8, 2, 7, 3, 6, 4, 5}));
  CHECK(max_pool2d(c, 1, 2, 1, 2, kValid).value().storage() == std::vector<float>{2, 8, 4, 6});
}

TEST_CASE("max_pool2d: the gradient goes to the argmax only") {
  Var x = ramp4x4(1.f, true);
  backward(sum_all(max_pool2d(x, 2, 2, 2, 2, kValid)));
  CHECK(x.grad().storage() == std::vector<float>{0, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 1, 0, 1});
  // Overlapping windows (3x3, stride 1, same): the max of window (i, j) is x[min(i+1, 3)][min(j+1, 3)],
  // so the bottom-right input wins four windows and accumulates all four gradients.
  Var y = ramp4x4(1.f, true);
  backward(sum_all(max_pool2d(y, 3, 3, 1, 1, kSame)));
  CHECK(y.grad().storage() == std::vector<float>{0, 0, 0, 0, 0, 1, 1, 2, 0, 1, 1, 2, 0, 2, 2, 4});
  // Ties: the first maximum in window order takes the whole gradient.
  Var z(Tensor({1, 2, 2, 1}), true);
  backward(sum_all(max_pool2d(z, 2, 2, 1, 1, kValid)));
  CHECK(z.grad().storage() == std::vector<float>{1, 0, 0, 0});
}

TEST_CASE("max_pool2d: windows inside the input against a reference, with ties, -inf and NaN") {
  // The path for windows that never touch padding must equal the definition: the first strict maximum
  // from -inf in kh-major order; an all -inf (or NaN) window gives -inf and sends its gradient nowhere.
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  struct Case {
    int64_t h, w, c;
    int k, s;
  };
  // Windows that tile the input (stride = pool) with an exact fit, a column left over (9x7, pool 3) and a
  // row and a column left over (7x9, pool 2); overlapping (stride < pool) and stride-1 windows.
  for (const Case& cs : {Case{6, 6, 3, 2, 2}, Case{7, 5, 16, 3, 2}, Case{5, 5, 1, 2, 1}, Case{9, 7, 5, 3, 3},
                         Case{7, 9, 4, 2, 2}}) {
    Tensor t({2, cs.h, cs.w, cs.c});
    std::uniform_int_distribution<int> pick(0, 9);
    for (int64_t i = 0; i < t.size(); ++i) {
      const int r = pick(rng);  // few distinct values: many ties
      t[i] = r == 0 ? -inf : r == 1 ? nan : static_cast<float>(r % 4);
    }
    for (int64_t i = 0; i < cs.k * cs.k * cs.c; ++i)
      t[(i / cs.c) / cs.k * cs.w * cs.c + (i / cs.c) % cs.k * cs.c + i % cs.c] = -inf;
    Var x(t, true);
    Var y = max_pool2d(x, cs.k, cs.k, cs.s, cs.s, kValid);
    // An output gradient with -0 among its values: dx holds 0 + g, so +0 there, bit for bit. (backward()
    // adds the seed to y's gradient buffer; one holding -0 already passes the seed's -0 through.)
    Tensor seed = rnd(y.shape());
    for (int64_t i = 0; i < seed.size(); i += 3) seed[i] = -0.f;
    y.node()->grad = Tensor(y.shape(), -0.f);
    backward(y, seed);
    const int64_t oh = (cs.h - cs.k) / cs.s + 1, ow = (cs.w - cs.k) / cs.s + 1;
    REQUIRE(y.shape() == Shape{2, oh, ow, cs.c});
    Tensor g({2, cs.h, cs.w, cs.c});
    std::vector<int64_t> want_at;  // each output's argmax (-1: none), in output order
    for (int64_t n = 0; n < 2; ++n)
      for (int64_t i = 0; i < oh; ++i)
        for (int64_t j = 0; j < ow; ++j)
          for (int64_t c = 0; c < cs.c; ++c) {
            float m = -inf;
            int64_t a = -1;
            for (int64_t kh = 0; kh < cs.k; ++kh)
              for (int64_t kw = 0; kw < cs.k; ++kw) {
                const int64_t idx = ((n * cs.h + i * cs.s + kh) * cs.w + j * cs.s + kw) * cs.c + c;
                if (t[idx] > m) m = t[idx], a = idx;
              }
            CHECK(y.value().at({n, i, j, c}) == m);
            if (a >= 0) g[a] += seed.at({n, i, j, c});
            want_at.push_back(a);
          }
    REQUIRE(x.grad().size() == g.size());
    CHECK(std::memcmp(x.grad().data(), g.data(), sizeof(float) * static_cast<size_t>(g.size())) == 0);
    // A gradient buffer that already holds values (x feeds another op whose backward ran first): the seeds
    // are added to them, in output order.
    Var x2(t, true);
    Var y2 = max_pool2d(x2, cs.k, cs.k, cs.s, cs.s, kValid);
    x2.node()->grad = Tensor(t.shape(), 0.5f);
    y2.node()->grad = Tensor(y2.shape(), -0.f);
    backward(y2, seed);
    Tensor held(t.shape(), 0.5f);
    for (int64_t i = 0; i < seed.size(); ++i)
      if (want_at[static_cast<size_t>(i)] >= 0) held[want_at[static_cast<size_t>(i)]] += seed[i];
    CHECK(std::memcmp(x2.grad().data(), held.data(), sizeof(float) * static_cast<size_t>(g.size())) == 0);
  }
}

TEST_CASE("max_pool2d: a forward without a backward gives the same bits as one with") {
  // Evaluation and calibration skip the argmax bookkeeping; the maxima must not change: ties (+0 and -0
  // among them: the first wins), -inf, NaN, windows inside the input (2x2 and 3x3) and over padding.
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  std::uniform_int_distribution<int> pick(0, 9);
  for (const Padding pad : {kValid, kSame})
    for (const int k : {2, 3})
      for (const int s : {1, 2}) {
        Tensor t({3, 7, 6, 5});
        for (int64_t i = 0; i < t.size(); ++i) {
          const int r = pick(rng);
          t[i] = r == 0   ? -inf
                 : r == 1 ? nan
                 : r == 2 ? -0.f
                 : r == 3 ? 0.f
                          : static_cast<float>(r % 4) - 1.5f;
        }
        const Tensor with = max_pool2d(Var(t, true), k, k, s, s, pad).value();
        const Tensor plain = max_pool2d(Var(t), k, k, s, s, pad).value();
        Tensor guarded;
        {
          NoGradGuard ng;
          guarded = max_pool2d(Var(t, true), k, k, s, s, pad).value();
        }
        REQUIRE(plain.shape() == with.shape());
        REQUIRE(guarded.shape() == with.shape());
        const size_t bytes = sizeof(float) * static_cast<size_t>(with.size());
        CHECK(std::memcmp(plain.data(), with.data(), bytes) == 0);
        CHECK(std::memcmp(guarded.data(), with.data(), bytes) == 0);
      }
}

TEST_CASE("avg_pool2d: exact values; border windows divide by their real inputs") {
  CHECK(avg_pool2d(ramp4x4(), 2, 2, 2, 2, kValid).value().storage() ==
        std::vector<float>{3.5f, 5.5f, 11.5f, 13.5f});
  Var s = avg_pool2d(ramp4x4(), 3, 3, 1, 1, kSame);
  CHECK(s.shape() == Shape{1, 4, 4, 1});
  CHECK(s.value().at({0, 0, 0, 0}) == 3.5f);   // (1 + 2 + 5 + 6) / 4
  CHECK(s.value().at({0, 0, 1, 0}) == 4.f);    // (1 + 2 + 3 + 5 + 6 + 7) / 6
  CHECK(s.value().at({0, 1, 1, 0}) == 6.f);    // 54 / 9
  CHECK(s.value().at({0, 0, 3, 0}) == 5.5f);   // (3 + 4 + 7 + 8) / 4
  CHECK(s.value().at({0, 3, 3, 0}) == 13.5f);  // (11 + 12 + 15 + 16) / 4
  // Gradient of a corner output spreads 1/4 over its four real inputs.
  Var x = ramp4x4(1.f, true);
  Tensor seed({1, 4, 4, 1});
  seed[0] = 1.f;
  backward(avg_pool2d(x, 3, 3, 1, 1, kSame), seed);
  CHECK(x.grad().storage() ==
        std::vector<float>{0.25f, 0.25f, 0, 0, 0.25f, 0.25f, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0});
}

TEST_CASE("1-d pools: values and equality with the 2-d pools at H = 1") {
  // in = 5, pool 3, stride 2, same: 3 outputs, one padded position at each end.
  Var r(Tensor({1, 5, 1}, {1, 2, 3, 4, 5}));
  CHECK(avg_pool1d(r, 3, 2, kSame).value().storage() == std::vector<float>{1.5f, 3.f, 4.5f});
  CHECK(max_pool1d(r, 3, 2, kSame).value().storage() == std::vector<float>{2, 4, 5});
  CHECK(max_pool1d(r, 2, 2, kValid).value().storage() == std::vector<float>{2, 4});
  Tensor x = distinct_tensor({2, 9, 3}, rng);
  for (Padding pad : {kValid, kSame}) {
    for (int s : {1, 2, 3}) {
      Var m1 = max_pool1d(Var(x), 3, s, pad), a1 = avg_pool1d(Var(x), 3, s, pad);
      Var m2 = max_pool2d(Var(x.reshaped({2, 1, 9, 3})), 1, 3, 1, s, pad);
      Var a2 = avg_pool2d(Var(x.reshaped({2, 1, 9, 3})), 1, 3, 1, s, pad);
      CHECK(m1.shape() == Shape{2, conv_out_size(9, 3, s, pad), 3});
      CHECK(m1.value().storage() == m2.value().storage());
      CHECK(a1.value().storage() == a2.value().storage());
      CHECK(max_grad_error([s, pad](const Vs& v) { return max_pool1d(v[0], 3, s, pad); }, {x}) < 1e-3);
      CHECK(max_grad_error([s, pad](const Vs& v) { return avg_pool1d(v[0], 3, s, pad); }, {x}) < 1e-3);
    }
  }
}

TEST_CASE("pool2d: gradients over padding, strides and non-square pools") {
  struct Case {
    int ph, pw, sh, sw;
  };
  for (Padding pad : {kValid, kSame}) {
    for (Case k :
         {Case{2, 2, 2, 2}, Case{3, 3, 1, 1}, Case{2, 3, 2, 1}, Case{3, 2, 2, 3}, Case{1, 1, 2, 2}}) {
      CAPTURE(static_cast<int>(pad));
      CAPTURE(k.ph);
      CAPTURE(k.pw);
      CHECK(max_grad_error([k, pad](const Vs& v) { return max_pool2d(v[0], k.ph, k.pw, k.sh, k.sw, pad); },
                           {distinct_tensor({2, 5, 6, 3}, rng)}) < 1e-3);
      CHECK(max_grad_error([k, pad](const Vs& v) { return avg_pool2d(v[0], k.ph, k.pw, k.sh, k.sw, pad); },
                           {rnd({2, 5, 6, 3})}) < 1e-3);
    }
  }
}

TEST_CASE("pools: bad shapes throw ShapeError naming the op and shape") {
  Var x(Tensor({2, 3, 3, 1}));
  CHECK_THROWS_WITH_AS(max_pool2d(x, 4, 4, 1, 1, kValid),
                       doctest::Contains("max_pool2d: input [2, 3, 3, 1] with pool (4, 4)"), ShapeError);
  CHECK_NOTHROW(max_pool2d(x, 4, 4, 1, 1, kSame));
  CHECK_THROWS_AS(avg_pool2d(x, 2, 4, 1, 1, kValid), ShapeError);
  CHECK_THROWS_AS(max_pool2d(Var(Tensor({3, 3, 1})), 2, 2, 2, 2, kValid), ShapeError);  // rank
  CHECK_THROWS_AS(avg_pool2d(x, 0, 2, 2, 2, kValid), ShapeError);                       // pool size
  CHECK_THROWS_AS(max_pool2d(x, 2, 2, 2, 0, kSame), ShapeError);                        // stride
  Var x1(Tensor({2, 5, 3}));
  CHECK_THROWS_WITH_AS(max_pool1d(x1, 6, 1, kValid), doctest::Contains("max_pool1d: input [2, 5, 3]"),
                       ShapeError);
  CHECK_THROWS_AS(avg_pool1d(x, 2, 2, kValid), ShapeError);  // 4-d input
  CHECK_THROWS_AS(avg_pool1d(x1, 2, 0, kValid), ShapeError);
  CHECK_THROWS_AS(max_pool1d(x1, -1, 1, kSame), ShapeError);
}

TEST_CASE("conv2d + max_pool2d, forward and backward: the same bits on 1 and 2 threads") {
  // 16 samples of 20x20 give 5,184 conv rows: several product blocks, weight-gradient blocks beside the
  // bias task, per-sample zero fills of fresh gradients in the pool and col2im, all split across threads.
  std::mt19937_64 g(21);
  std::normal_distribution<float> nd(0.f, 1.f);
  Tensor x({16, 20, 20, 3}), w({3, 3, 3, 8}), b({8}), seed({16, 9, 9, 8});
  for (Tensor* t : {&x, &w, &b, &seed})
    for (int64_t j = 0; j < t->size(); ++j) (*t)[j] = nd(g);
  std::vector<Tensor> first;
  for (int threads : {1, 2}) {
    omp_set_num_threads(threads);
    Var vx(x, true), vw(w, true), vb(b, true);
    Var y = max_pool2d(conv2d(vx, vw, vb, 1, 1, Padding::kValid, /*relu=*/true), 2, 2, 2, 2, Padding::kValid);
    backward(y, seed);
    std::vector<Tensor> got{y.value(), vx.grad(), vw.grad(), vb.grad()};
    if (threads == 1) {
      first = got;
      continue;
    }
    for (size_t k = 0; k < got.size(); ++k) {
      CAPTURE(k);
      REQUIRE(got[k].size() == first[k].size());
      CHECK(std::memcmp(got[k].data(), first[k].data(), sizeof(float) * static_cast<size_t>(got[k].size())) ==
            0);
    }
  }
  omp_set_num_threads(1);
}
