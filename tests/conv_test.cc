// conv2d, conv1d and depthwise_conv2d: TensorFlow output sizes and padding, hand-computed forward values,
// finite-difference gradients over padding x stride x bias, and ShapeError on bad shapes.
#include <omp.h>

#include <cstring>

#include "engine/check.h"
#include "engine/gemm.h"
#include "engine/tensor.h"
#include "tests/gradcheck.h"

using namespace kiln;
using kiln::testing::max_grad_error;
using kiln::testing::random_tensor;

namespace {
std::mt19937_64 rng(3);
Tensor rnd(const Shape& s) { return random_tensor(s, rng); }
using Vs = std::vector<Var>;
constexpr Padding kValid = Padding::kValid, kSame = Padding::kSame;

// x [1, 4, 4, 1] holding 1..16 row by row: x[i][j] = 4i + j + 1.
Var ramp4x4() {
  Tensor t({1, 4, 4, 1});
  for (int64_t i = 0; i < 16; ++i) t[i] = static_cast<float>(i + 1);
  return Var(t);
}
Var undefined;  // "no bias"
}  // namespace

TEST_CASE("conv_out_size and conv_pad_before follow TensorFlow") {
  CHECK(conv_out_size(5, 3, 2, kSame) == 3);
  CHECK(conv_pad_before(5, 3, 2, kSame) == 1);
  CHECK(conv_out_size(4, 2, 2, kSame) == 2);
  CHECK(conv_pad_before(4, 2, 2, kSame) == 0);
  CHECK(conv_out_size(6, 3, 2, kSame) == 3);  // total pad 1, all of it at the end
  CHECK(conv_pad_before(6, 3, 2, kSame) == 0);
  CHECK(conv_out_size(4, 4, 1, kSame) == 4);  // total pad 3: 1 before, 2 after
  CHECK(conv_pad_before(4, 4, 1, kSame) == 1);
  CHECK(conv_out_size(5, 3, 2, kValid) == 2);
  CHECK(conv_out_size(4, 2, 1, kValid) == 3);
  CHECK(conv_out_size(7, 3, 3, kValid) == 2);  // floor((7 - 3) / 3) + 1
  CHECK(conv_out_size(2, 3, 2, kValid) == 0);  // kernel larger than the input
  CHECK(conv_pad_before(5, 3, 1, kValid) == 0);
  CHECK_THROWS_AS(conv_out_size(5, 3, 0, kSame), ShapeError);
}

TEST_CASE("conv2d: exact values on a 4x4 ramp") {
  // Cross-correlation (no kernel flip): y[i][j] = x[i][j] + 2 x[i][j+1] + 3 x[i+1][j] + 4 x[i+1][j+1]
  // = 10 (4i + j + 1) + 34.
  Var w(Tensor({2, 2, 1, 1}, {1, 2, 3, 4}));
  Var y = conv2d(ramp4x4(), w, undefined, 1, 1, kValid);
  CHECK(y.shape() == Shape{1, 3, 3, 1});
  CHECK(y.value().storage() == std::vector<float>{44, 54, 64, 84, 94, 104, 124, 134, 144});

  // 3x3 box filter, "same", stride 1: border windows sum only the real inputs (zero padding).
  Var ones(Tensor({3, 3, 1, 1}, 1.f));
  Var s = conv2d(ramp4x4(), ones, Var(Tensor({1}, {0.5f})), 1, 1, kSame);
  CHECK(s.shape() == Shape{1, 4, 4, 1});
  CHECK(s.value().at({0, 0, 0, 0}) == 14.5f);  // 1 + 2 + 5 + 6 + bias
  CHECK(s.value().at({0, 0, 1, 0}) == 24.5f);  // 1 + 2 + 3 + 5 + 6 + 7
  CHECK(s.value().at({0, 1, 1, 0}) == 54.5f);  // 1..3 + 5..7 + 9..11
  CHECK(s.value().at({0, 3, 3, 0}) == 54.5f);  // 11 + 12 + 15 + 16

  // Same, stride 2 on 4 with k 3: out 2, total pad 1 all at the end (pad_before 0).
  Var s2 = conv2d(ramp4x4(), ones, undefined, 2, 2, kSame);
  CHECK(s2.shape() == Shape{1, 2, 2, 1});
  CHECK(s2.value().storage() == std::vector<float>{54, 45, 72, 54});
}

TEST_CASE("conv2d: channels and filters, 1x1 kernel is a per-pixel matmul") {
  // x [1, 1, 2, 2]: pixels (1, 2) and (3, 4); w [1, 1, 2, 3]; y = pixel @ W + b.
  Var x(Tensor({1, 1, 2, 2}, {1, 2, 3, 4}));
  Var w(Tensor({1, 1, 2, 3}, {1, 0, -1, 2, 1, 0}));
  Var b(Tensor({3}, {0, 10, 100}));
  Var y = conv2d(x, w, b, 1, 1, kValid);
  CHECK(y.shape() == Shape{1, 1, 2, 3});
  CHECK(y.value().storage() == std::vector<float>{5, 12, 99, 11, 14, 97});
}

TEST_CASE("conv2d: gradients over padding, strides, bias and a non-square kernel") {
  for (Padding pad : {kValid, kSame}) {
    for (auto [sh, sw] : {std::pair{1, 1}, std::pair{2, 2}, std::pair{1, 2}, std::pair{2, 1}}) {
      CAPTURE(static_cast<int>(pad));
      CAPTURE(sh);
      CAPTURE(sw);
      auto with_bias = [sh = sh, sw = sw, pad](const Vs& v) { return conv2d(v[0], v[1], v[2], sh, sw, pad); };
      auto no_bias = [sh = sh, sw = sw, pad](const Vs& v) { return conv2d(v[0], v[1], Var(), sh, sw, pad); };
      CHECK(max_grad_error(with_bias, {rnd({2, 5, 6, 3}), rnd({2, 3, 3, 4}), rnd({4})}) < 1e-3);
      CHECK(max_grad_error(no_bias, {rnd({2, 6, 5, 2}), rnd({3, 2, 2, 3})}) < 1e-3);
    }
  }
  // Kernel as large as the input; a 1x1 kernel.
  CHECK(max_grad_error([](const Vs& v) { return conv2d(v[0], v[1], v[2], 1, 1, kValid); },
                       {rnd({2, 3, 3, 2}), rnd({3, 3, 2, 2}), rnd({2})}) < 1e-3);
  CHECK(max_grad_error([](const Vs& v) { return conv2d(v[0], v[1], v[2], 1, 1, kSame); },
                       {rnd({2, 3, 4, 3}), rnd({1, 1, 3, 2}), rnd({2})}) < 1e-3);
}

TEST_CASE("conv2d with the fused relu equals relu(conv2d) bit for bit, values and gradients") {
  for (int64_t C : {4, 2})
    for (Padding pad : {kValid, kSame}) {
      for (bool bias : {true, false}) {
        CAPTURE(C);
        CAPTURE(static_cast<int>(pad));
        CAPTURE(bias);
        const Tensor xv = rnd({3, 6, 5, C}), wv = rnd({3, 3, C, 5}), bv = rnd({5});
        const Tensor gv = rnd(pad == kSame ? Shape{3, 6, 5, 5} : Shape{3, 4, 3, 5});
        auto run = [&](bool fused) {
          Var x(xv, true), w(wv, true), b(bv, true);
          Var y = fused ? conv2d(x, w, bias ? b : Var(), 1, 1, pad, true)
                        : relu(conv2d(x, w, bias ? b : Var(), 1, 1, pad));
          // The seed keeps outputs at 0 with a nonzero gradient: the mask must stop them.
          backward(y, gv);
          return std::vector<Tensor>{y.value(), x.grad(), w.grad(), bias ? b.grad() : Tensor()};
        };
        std::vector<Tensor> a = run(true), r = run(false);
        int zeros = 0;
        for (int64_t j = 0; j < a[0].size(); ++j) zeros += a[0][j] == 0.f;
        CHECK(zeros > 10);  // the relu is active on part of the output
        for (size_t t = 0; t < a.size(); ++t) {
          CAPTURE(t);
          REQUIRE(a[t].shape() == r[t].shape());
          for (int64_t j = 0; j < a[t].size(); ++j) REQUIRE(a[t][j] == r[t][j]);
        }
      }
    }
}

TEST_CASE("conv2d over several row blocks (a block boundary inside a sample) equals the direct sum") {
  // 9 samples of 20x21 (36 at stride 2) give 2,916 or more output pixels: the product runs in blocks of 2,048
  // rows, each building its own im2col rows, so the second block starts inside a sample. Every output is
  // checked against the definition summed in double. The channel counts and kernel widths give every run
  // length KW*C that im2col copies with its own code (1-7 and 9 floats at a compile-time length, others by
  // std::copy), under valid padding (every window inside) and same padding.
  struct Shape2 {
    int64_t c, kw;
  };
  for (const Shape2 sh : {Shape2{3, 2}, Shape2{1, 1}, Shape2{2, 1}, Shape2{1, 3}, Shape2{4, 1}, Shape2{1, 5},
                          Shape2{2, 3}, Shape2{1, 7}, Shape2{3, 3}, Shape2{5, 3}, Shape2{16, 3}})
    for (Padding pad : {kValid, kSame})
      for (int stride : {1, 2}) {
        CAPTURE(stride);
        CAPTURE(sh.c);
        CAPTURE(sh.kw);
        const int64_t B = 9 * stride * stride, H = 20, W = 21, C = sh.c, F = 5, KH = 3, KW = sh.kw;
        Tensor x = rnd({B, H, W, C}), w = rnd({KH, KW, C, F}), b = rnd({F});
        Var y = conv2d(Var(x), Var(w), Var(b), stride, stride, pad, /*relu=*/true);
        const int64_t OH = y.dim(1), OW = y.dim(2);
        REQUIRE(B * OH * OW > 2 * gemm::kTaskRows);
        REQUIRE(gemm::kTaskRows % (OH * OW) != 0);
        const int64_t ph = pad == kSame ? conv_pad_before(H, KH, stride, pad) : 0;
        const int64_t pw = pad == kSame ? conv_pad_before(W, KW, stride, pad) : 0;
        double worst = 0;
        for (int64_t n = 0; n < B; ++n)
          for (int64_t oh = 0; oh < OH; ++oh)
            for (int64_t ow = 0; ow < OW; ++ow)
              for (int64_t f = 0; f < F; ++f) {
                double acc = b[f], mag = std::fabs(b[f]);  // mag: the sum of |terms|, the error's scale
                for (int64_t kh = 0; kh < KH; ++kh)
                  for (int64_t kw = 0; kw < KW; ++kw) {
                    const int64_t ih = oh * stride - ph + kh, iw = ow * stride - pw + kw;
                    if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                    for (int64_t c = 0; c < C; ++c) {
                      const double t = static_cast<double>(x[((n * H + ih) * W + iw) * C + c]) *
                                       w[((kh * KW + kw) * C + c) * F + f];
                      acc += t, mag += std::fabs(t);
                    }
                  }
                const double want = acc > 0 ? acc : 0;
                const double err = std::fabs(want - y.value()[((n * OH + oh) * OW + ow) * F + f]);
                worst = std::max(worst, err / mag);
              }
        // A float sum of n terms is within about n * 2^-24 of the sum of |terms| (n <= 145 here: 8.6e-6); a
        // misplaced im2col entry is off by a whole term.
        CHECK(worst < 1e-5);
      }
}

TEST_CASE("conv2d input gradient in tasks of whole samples equals one product and col2im in row order") {
  // The backward multiplies dY W^T per block of whole samples and adds each block into dx at once. Its dx
  // must be bit for bit that of one product over all rows followed by the adjoint of im2col in row order
  // (what it replaced, and what the README figures were trained with): padded and unpadded windows, strides,
  // several blocks with a short last one, one output pixel per sample (the gemm::rows path), 1 and 2 threads.
  struct Case {
    int64_t B, H, W, KH, KW;
    int stride;
    Padding pad;
    int64_t C;
  };
  // One channel (KH*KW*C = 9 or 6 columns) with sample row counts that are not multiples of 4.
  for (const Case& c : {Case{13, 20, 21, 3, 2, 1, kValid, 3}, Case{13, 20, 21, 3, 2, 1, kSame, 3},
                        Case{41, 20, 21, 3, 3, 2, kSame, 3}, Case{9, 3, 3, 3, 3, 1, kValid, 3},
                        Case{13, 20, 21, 3, 3, 1, kValid, 1}, Case{51, 21, 20, 2, 3, 2, kValid, 1},
                        Case{13, 20, 21, 3, 3, 1, kSame, 1},
                        // Every run length KW*C the unpadded col2im adds with its own code: 1, 2, 4, 5, 7 at
                        // a compile-time length (3, 6, 9 above), 15 through add_scaled.
                        Case{13, 20, 21, 3, 1, 1, kValid, 1}, Case{13, 20, 21, 3, 2, 1, kValid, 1},
                        Case{13, 20, 21, 3, 1, 1, kValid, 4}, Case{17, 20, 21, 3, 5, 1, kValid, 1},
                        Case{17, 20, 21, 3, 7, 1, kValid, 1}, Case{13, 20, 21, 3, 3, 1, kValid, 5}})
    for (int threads : {1, 2})
      for (bool held : {false, true}) {  // held: x's gradient already holds values (x feeds another op too)
        CAPTURE(c.B);
        CAPTURE(c.stride);
        CAPTURE(static_cast<int>(c.pad));
        CAPTURE(threads);
        CAPTURE(held);
        const int64_t C = c.C, F = 5;
        const Tensor xv = rnd({c.B, c.H, c.W, C}), wv = rnd({c.KH, c.KW, C, F});
        const Tensor before = held ? rnd(xv.shape()) : Tensor(xv.shape());
        omp_set_num_threads(threads);
        Var x(xv, true), w(wv, true);
        if (held) x.node()->grad = before;  // the buffer another consumer's backward would have written
        Var y = conv2d(x, w, Var(), c.stride, c.stride, c.pad);
        const int64_t OH = y.dim(1), OW = y.dim(2), rows = c.B * OH * OW, K = c.KH * c.KW * C;
        if (OH * OW > 1) REQUIRE(rows > 2 * 2048);  // several tasks
        const Tensor gv = rnd(y.shape());
        backward(y, gv);
        omp_set_num_threads(1);
        // The reference: dcols = dY W^T as one product, then dx += each row's taps, rows in order.
        MatrixRM dcols(rows, K);
        MatMap(dcols.data(), rows, K).noalias() =
            ConstMatMap(gv.data(), rows, F) * ConstMatMap(wv.data(), K, F).transpose();
        const int64_t ph = conv_pad_before(c.H, c.KH, c.stride, c.pad);
        const int64_t pw = conv_pad_before(c.W, c.KW, c.stride, c.pad);
        Tensor want = before;  // then each row's taps added, rows in order
        for (int64_t r = 0; r < rows; ++r) {
          const int64_t n = r / (OH * OW), oh = r / OW % OH, ow = r % OW;
          for (int64_t kh = 0; kh < c.KH; ++kh)
            for (int64_t kw = 0; kw < c.KW; ++kw) {
              const int64_t ih = oh * c.stride - ph + kh, iw = ow * c.stride - pw + kw;
              if (ih < 0 || ih >= c.H || iw < 0 || iw >= c.W) continue;
              for (int64_t ch = 0; ch < C; ++ch)
                want[((n * c.H + ih) * c.W + iw) * C + ch] += dcols(r, (kh * c.KW + kw) * C + ch);
            }
        }
        const Tensor& got = x.grad();
        REQUIRE(got.size() == want.size());
        for (int64_t j = 0; j < got.size(); ++j) {
          CAPTURE(j);
          const float a = got[j], b = want[j];
          REQUIRE(std::memcmp(&a, &b, sizeof(float)) == 0);
        }
      }
}

TEST_CASE("conv2d: the input need not require a gradient") {
  Var x(rnd({2, 4, 4, 1}));  // data, as in a first layer
  Var w(rnd({3, 3, 1, 2}), true);
  backward(sum_all(conv2d(x, w, Var(), 1, 1, kSame)));
  CHECK(w.grad().size() == 18);
  CHECK(x.grad().empty());
}

TEST_CASE("conv1d equals conv2d with H = 1, and its gradients") {
  Tensor x = rnd({2, 7, 3}), w = rnd({3, 3, 4}), b = rnd({4});
  for (Padding pad : {kValid, kSame}) {
    for (int s : {1, 2}) {
      Var y1 = conv1d(Var(x), Var(w), Var(b), s, pad);
      Var y2 = conv2d(Var(x.reshaped({2, 1, 7, 3})), Var(w.reshaped({1, 3, 3, 4})), Var(b), 1, s, pad);
      CHECK(y1.shape() == Shape{2, conv_out_size(7, 3, s, pad), 4});
      CHECK(y1.value().storage() == y2.value().storage());
      CHECK(max_grad_error([s, pad](const Vs& v) { return conv1d(v[0], v[1], v[2], s, pad); }, {x, w, b}) <
            1e-3);
      CHECK(max_grad_error([s, pad](const Vs& v) { return conv1d(v[0], v[1], Var(), s, pad); }, {x, w}) <
            1e-3);
    }
  }
  // in = 5, k = 3, s = 2, same: 3 outputs, pad 1 before and 1 after; a kernel of ones sums.
  Var r(Tensor({1, 5, 1}, {1, 2, 3, 4, 5}));
  Var y = conv1d(r, Var(Tensor({3, 1, 1}, 1.f)), Var(), 2, kSame);
  CHECK(y.value().storage() == std::vector<float>{3, 9, 9});  // 0+1+2, 2+3+4, 4+5+0
}

TEST_CASE("depthwise_conv2d: values and gradients") {
  // Two channels of the 4x4 ramp: channel 0 as is, channel 1 negated; kernel channel c scales by (c + 1).
  Tensor x({1, 4, 4, 2});
  for (int64_t i = 0; i < 16; ++i) {
    x[2 * i] = static_cast<float>(i + 1);
    x[2 * i + 1] = -static_cast<float>(i + 1);
  }
  Tensor w({2, 2, 2});
  for (int64_t t = 0; t < 4; ++t) {
    w[2 * t] = static_cast<float>(t + 1);            // channel 0: [[1, 2], [3, 4]]
    w[2 * t + 1] = 2.f * static_cast<float>(t + 1);  // channel 1: [[2, 4], [6, 8]]
  }
  Var y = depthwise_conv2d(Var(x), Var(w), Var(Tensor({2}, {1, 0})), 1, 1, kValid);
  CHECK(y.shape() == Shape{1, 3, 3, 2});
  CHECK(y.value().at({0, 0, 0, 0}) == 45.f);    // 44 (see conv2d above) + bias 1
  CHECK(y.value().at({0, 2, 2, 0}) == 145.f);   // 144 + 1
  CHECK(y.value().at({0, 0, 0, 1}) == -88.f);   // -2 * 44
  CHECK(y.value().at({0, 1, 2, 1}) == -208.f);  // -2 * 104

  // Same as conv2d with a kernel that is zero off the channel diagonal.
  Tensor xd = rnd({2, 5, 5, 3}), wd = rnd({3, 2, 3});
  Tensor wfull({3, 2, 3, 3});
  for (int64_t t = 0; t < 6; ++t)
    for (int64_t c = 0; c < 3; ++c) wfull[(t * 3 + c) * 3 + c] = wd[t * 3 + c];
  for (Padding pad : {kValid, kSame}) {
    Var a = depthwise_conv2d(Var(xd), Var(wd), Var(), 2, 1, pad);
    Var b = conv2d(Var(xd), Var(wfull), Var(), 2, 1, pad);
    REQUIRE(a.shape() == b.shape());
    for (int64_t i = 0; i < a.size(); ++i) CHECK(a.value()[i] == doctest::Approx(b.value()[i]).epsilon(1e-5));
  }

  for (Padding pad : {kValid, kSame}) {
    for (auto [sh, sw] : {std::pair{1, 1}, std::pair{2, 2}, std::pair{2, 1}}) {
      auto with_bias = [sh = sh, sw = sw, pad](const Vs& v) {
        return depthwise_conv2d(v[0], v[1], v[2], sh, sw, pad);
      };
      auto no_bias = [sh = sh, sw = sw, pad](const Vs& v) {
        return depthwise_conv2d(v[0], v[1], Var(), sh, sw, pad);
      };
      CHECK(max_grad_error(with_bias, {rnd({2, 5, 6, 3}), rnd({3, 2, 3}), rnd({3})}) < 1e-3);
      CHECK(max_grad_error(no_bias, {rnd({2, 4, 5, 2}), rnd({2, 3, 2})}) < 1e-3);
    }
  }
}

TEST_CASE("convolutions: bad shapes throw ShapeError naming the op and shapes") {
  Var x(Tensor({2, 5, 5, 3})), w(Tensor({3, 3, 3, 8}));
  // Channel mismatch, with the exact message.
  try {
    conv2d(x, Var(Tensor({3, 3, 4, 8})), Var(), 1, 1, kValid);
    FAIL("no throw");
  } catch (const ShapeError& e) {
    CHECK(std::string(e.what()) ==
          "conv2d: input [2, 5, 5, 3] does not match kernel [3, 3, 4, 8] (channels 3 vs 4)");
  }
  CHECK_THROWS_AS(conv2d(Var(Tensor({5, 5, 3})), w, Var(), 1, 1, kValid), ShapeError);     // rank of x
  CHECK_THROWS_AS(conv2d(x, Var(Tensor({3, 3, 3})), Var(), 1, 1, kValid), ShapeError);     // rank of w
  CHECK_THROWS_AS(conv2d(x, Var(Tensor({6, 3, 3, 8})), Var(), 1, 1, kValid), ShapeError);  // kernel > input
  CHECK_NOTHROW(conv2d(x, Var(Tensor({6, 3, 3, 8})), Var(), 1, 1, kSame));                 // fine when padded
  CHECK_THROWS_AS(conv2d(x, w, Var(Tensor({3})), 1, 1, kValid), ShapeError);               // bias size
  CHECK_THROWS_AS(conv2d(x, w, Var(Tensor({1, 8})), 1, 1, kValid), ShapeError);            // bias rank
  CHECK_THROWS_AS(conv2d(x, w, Var(), 0, 1, kValid), ShapeError);                          // stride
  CHECK_THROWS_AS(conv2d(x, w, Var(), 1, -1, kSame), ShapeError);
  CHECK_THROWS_WITH_AS(conv2d(x, Var(Tensor({3, 6, 3, 8})), Var(), 1, 1, kValid),
                       doctest::Contains("conv2d: kernel [3, 6, 3, 8] larger than input [2, 5, 5, 3]"),
                       ShapeError);

  Var x1(Tensor({2, 7, 3})), w1(Tensor({3, 3, 4}));
  CHECK_THROWS_WITH_AS(conv1d(x1, Var(Tensor({3, 2, 4})), Var(), 1, kValid),
                       "conv1d: input [2, 7, 3] does not match kernel [3, 2, 4] (channels 3 vs 2)",
                       ShapeError);
  CHECK_THROWS_AS(conv1d(x, w1, Var(), 1, kValid), ShapeError);                       // 4-d input
  CHECK_THROWS_AS(conv1d(x1, Var(Tensor({8, 3, 4})), Var(), 1, kValid), ShapeError);  // kernel > input
  CHECK_THROWS_AS(conv1d(x1, w1, Var(Tensor({3})), 1, kValid), ShapeError);
  CHECK_THROWS_AS(conv1d(x1, w1, Var(), 0, kValid), ShapeError);

  Var wd(Tensor({3, 3, 3}));
  CHECK_THROWS_AS(depthwise_conv2d(x, Var(Tensor({3, 3, 2})), Var(), 1, 1, kValid), ShapeError);  // channels
  CHECK_THROWS_AS(depthwise_conv2d(x, w, Var(), 1, 1, kValid), ShapeError);  // 4-d kernel
  CHECK_THROWS_AS(depthwise_conv2d(x, Var(Tensor({3, 7, 3})), Var(), 1, 1, kValid), ShapeError);  // too wide
  CHECK_THROWS_AS(depthwise_conv2d(x, wd, Var(Tensor({8})), 1, 1, kValid), ShapeError);           // bias
  CHECK_THROWS_AS(depthwise_conv2d(x, wd, Var(), 1, 0, kValid), ShapeError);                      // stride
}
