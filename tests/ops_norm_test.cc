// Gradient checks and reference values (from PyTorch 1.13) for norms, dropout, attention and losses.
#include "engine/check.h"
#include "tests/gradcheck.h"

using namespace kiln;
using kiln::testing::max_grad_error;
using kiln::testing::random_tensor;

namespace {
std::mt19937_64 rng(3);
Tensor rnd(const Shape& s) { return random_tensor(s, rng); }
using Vs = std::vector<Var>;
}  // namespace

TEST_CASE("batch norm (training): PyTorch values, running statistics, gradients") {
  Var x(Tensor({3, 2}, {1, 2, 3, 5, 0, -1}));
  Var g(Tensor({2}, 1.f)), b(Tensor({2}, 0.f));
  Tensor rm({2}, 0.f), rv({2}, 1.f);
  // PyTorch momentum 0.01 == Keras momentum 0.99.
  Var y = batch_norm_train(x, g, b, rm, rv, 0.99f, 1e-3f);
  std::vector<float> ref{-0.2671754f, 0.f, 1.3358769f, 1.2246428f, -1.0687015f, -1.2246428f};
  for (int i = 0; i < 6; ++i) CHECK(y.value()[i] == doctest::Approx(ref[i]).epsilon(1e-5));
  CHECK(rm[0] == doctest::Approx(0.0133333f));
  CHECK(rm[1] == doctest::Approx(0.02f));
  CHECK(rv[0] == doctest::Approx(1.0133333f));
  CHECK(rv[1] == doctest::Approx(1.08f));
  auto f = [](const Vs& v) {
    Tensor m({3}), s({3}, 1.f);
    return batch_norm_train(v[0], v[1], v[2], m, s, 0.9f, 1e-3f);
  };
  CHECK(max_grad_error(f, {rnd({4, 2, 3}), rnd({3}), rnd({3})}, 1e-2f) < 5e-3);
  CHECK_THROWS_AS(batch_norm_train(Var(Tensor({1, 2})), g, b, rm, rv, 0.9f, 1e-3f), ShapeError);
  CHECK_THROWS_AS(batch_norm_train(Var(Tensor({4, 3})), g, b, rm, rv, 0.9f, 1e-3f), ShapeError);
}

TEST_CASE("batch norm (inference) uses the running statistics") {
  Var x(Tensor({2, 2}, {1, 2, 3, 4}));
  Tensor rm({2}, {1.f, 2.f}), rv({2}, {4.f, 1.f});
  Var y = batch_norm_infer(x, Var(Tensor({2}, {2.f, 1.f})), Var(Tensor({2}, {0.5f, 0.f})), rm, rv, 0.f);
  CHECK(y.value().storage() == std::vector<float>{0.5f, 0.f, 2.5f, 2.f});
  auto f = [](const Vs& v) {
    Tensor m({3}, 0.2f), s({3}, 1.5f);
    return batch_norm_infer(v[0], v[1], v[2], m, s, 1e-3f);
  };
  CHECK(max_grad_error(f, {rnd({4, 3}), rnd({3}), rnd({3})}) < 2e-3);
}

TEST_CASE("layer norm: PyTorch values and gradients") {
  Var x(Tensor({3, 2}, {1, 2, 3, 5, 0, -1}));
  Var y = layer_norm(x, Var(Tensor({2}, 1.f)), Var(Tensor({2}, 0.f)), 1e-5f);
  CHECK(y.value()[0] == doctest::Approx(-0.99998f).epsilon(1e-5));
  CHECK(y.value()[5] == doctest::Approx(-0.99998f).epsilon(1e-5));
  CHECK(max_grad_error([](const Vs& v) { return layer_norm(v[0], v[1], v[2], 1e-5f); },
                       {rnd({2, 3, 4}), rnd({4}), rnd({4})}, 3e-3f) < 5e-3);
  CHECK_THROWS_AS(layer_norm(x, Var(Tensor({3})), Var(Tensor({2})), 1e-5f), ShapeError);
}

TEST_CASE("dropout: rate, scaling, gradient through the same mask") {
  std::mt19937_64 r(5);
  Var x(Tensor({10000}, 1.f), true);
  Var y = dropout(x, 0.25f, r);
  int64_t kept = 0;
  for (int64_t i = 0; i < y.size(); ++i) {
    CHECK((y.value()[i] == 0.f || y.value()[i] == doctest::Approx(1.f / 0.75f)));
    kept += y.value()[i] != 0.f;
  }
  CHECK(kept > 7300);
  CHECK(kept < 7700);
  backward(sum_all(y));
  for (int64_t i = 0; i < y.size(); ++i) CHECK(x.grad()[i] == y.value()[i]);
  CHECK(dropout(x, 0.f, r).node() == x.node());
  CHECK_THROWS_AS(dropout(x, 1.f, r), InputError);
}

TEST_CASE("scaled dot-product attention: values and gradients, with and without a causal mask") {
  // One head, T=2, D=1: q = k = [1, 0], v = [10, 20]. Row 0 attends softmax([1, 0]) to v.
  Var q(Tensor({1, 1, 2, 1}, {1, 0})), v(Tensor({1, 1, 2, 1}, {10, 20}));
  Var o = scaled_dot_product_attention(q, q, v, nullptr);
  float p0 = 1.f / (1.f + std::exp(-1.f));
  CHECK(o.value()[0] == doctest::Approx(10 * p0 + 20 * (1 - p0)));
  CHECK(o.value()[1] == doctest::Approx(15.f));
  Tensor m = causal_mask(2);
  CHECK(scaled_dot_product_attention(q, q, v, &m).value()[0] == doctest::Approx(10.f));
  auto f = [](const Vs& v) { return scaled_dot_product_attention(v[0], v[1], v[2], nullptr); };
  CHECK(max_grad_error(f, {rnd({2, 2, 3, 4}), rnd({2, 2, 3, 4}), rnd({2, 2, 3, 4})}) < 2e-3);
  auto fm = [m3 = causal_mask(3)](const Vs& v) { return scaled_dot_product_attention(v[0], v[1], v[2], &m3); };
  CHECK(max_grad_error(fm, {rnd({1, 2, 3, 4}), rnd({1, 2, 3, 4}), rnd({1, 2, 3, 4})}) < 2e-3);
  CHECK_THROWS_AS(scaled_dot_product_attention(q, Var(Tensor({1, 1, 3, 1})), v, nullptr), ShapeError);
}

TEST_CASE("losses: PyTorch values and gradients") {
  Var z(Tensor({2, 3}, {1.f, 2.f, 0.5f, 0.1f, -1.f, 2.f}));
  CHECK(softmax_cross_entropy(z, {0, 2}).value()[0] == doctest::Approx(0.8230767f));
  CHECK(softmax_cross_entropy(z, {0, 2}, 0.1f).value()[0] == doctest::Approx(0.8964100f));
  CHECK_THROWS_AS(softmax_cross_entropy(z, {0, 3}), InputError);
  CHECK_THROWS_AS(softmax_cross_entropy(z, {0}), ShapeError);
  Var zb(Tensor({3}, {0.5f, -2.f, 3.f}));
  CHECK(binary_cross_entropy(zb, Tensor({3}, {1.f, 0.f, 0.f})).value()[0] == doctest::Approx(1.2165308f));
  CHECK(binary_cross_entropy(Var(Tensor({1}, {-200.f})), Tensor({1}, {1.f})).value()[0] == doctest::Approx(200.f));
  CHECK(mse_loss(zb, Tensor({3}, {0.f, 0.f, 1.f})).value()[0] == doctest::Approx((0.25f + 4.f + 4.f) / 3.f));
  // Squared hinge: margins 1 - y*p = [0.5, -1, 4] -> [0.25, 0, 16].
  CHECK(l2_margin_loss(zb, Tensor({3}, {1.f, -1.f, -1.f})).value()[0] == doctest::Approx(16.25f / 3.f));
  std::vector<int> labels{1, 0, 3, 2};
  CHECK(max_grad_error([&](const Vs& v) { return softmax_cross_entropy(v[0], labels, 0.1f); }, {rnd({4, 4})}) < 2e-3);
  Tensor t({4}, {1.f, 0.f, 1.f, 0.f});
  CHECK(max_grad_error([&](const Vs& v) { return binary_cross_entropy(v[0], t); }, {rnd({4})}) < 2e-3);
  CHECK(max_grad_error([&](const Vs& v) { return mse_loss(v[0], t); }, {rnd({4})}) < 2e-3);
  Tensor pm({4}, {1.f, -1.f, 1.f, -1.f});
  Tensor p({4}, {0.5f, 0.3f, -0.4f, -2.f});  // margins away from the kink at 0
  CHECK(max_grad_error([&](const Vs& v) { return l2_margin_loss(v[0], pm); }, {p}) < 2e-3);
}

TEST_CASE("embedding lookup: rows gathered, gradient scattered (repeated ids accumulate)") {
  Tensor ids({2, 3}, {0, 2, 2, 1, 0, 3});
  Var table(Tensor({4, 2}, {0, 1, 10, 11, 20, 21, 30, 31}));
  Var e = embedding_lookup(ids, table);
  CHECK(e.shape() == Shape{2, 3, 2});
  CHECK(e.value().storage() == std::vector<float>{0, 1, 20, 21, 20, 21, 10, 11, 0, 1, 30, 31});
  CHECK(max_grad_error([&](const Vs& v) { return embedding_lookup(ids, v[0]); }, {rnd({4, 2})}) < 1e-3);
  CHECK_THROWS_AS(embedding_lookup(Tensor({1}, {4.f}), table), InputError);
  CHECK_THROWS_AS(embedding_lookup(Tensor({1}, {0.5f}), table), InputError);
}
