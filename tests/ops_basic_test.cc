// Gradient checks and exact values for elementwise, reduction, shape, softmax and matmul ops.
#include <cmath>
#include <cstring>
#include <random>

#include "engine/check.h"
#include "tests/gradcheck.h"

using namespace kiln;
using kiln::testing::distinct_tensor;
using kiln::testing::max_grad_error;
using kiln::testing::random_tensor;

namespace {
std::mt19937_64 rng(1);
Tensor positive(const Shape& s) { return random_tensor(s, rng, 0.5f, 2.f); }
Tensor rnd(const Shape& s) { return random_tensor(s, rng); }
// Values kept away from a kink at 0 so that central differences are valid.
Tensor away_from_zero(const Shape& s) {
  Tensor t = rnd(s);
  for (int64_t i = 0; i < t.size(); ++i) t[i] += t[i] >= 0 ? 0.1f : -0.1f;
  return t;
}
using Vs = std::vector<Var>;
}  // namespace

TEST_CASE("broadcasting binary ops: values and gradients") {
  Var a(Tensor({2, 3}, {1, 2, 3, 4, 5, 6})), b(Tensor({3}, {10, 20, 30}));
  Var c = add(a, b);
  CHECK(c.shape() == Shape{2, 3});
  CHECK(c.value()[4] == 25.f);
  CHECK(sub(a, b).value()[0] == -9.f);
  CHECK(mul(a, Var(Tensor({2, 1}, {2, 3}))).value()[5] == 18.f);
  CHECK_THROWS_AS(add(a, Var(Tensor({2}))), ShapeError);
  CHECK(max_grad_error([](const Vs& v) { return add(v[0], v[1]); }, {rnd({2, 3, 4}), rnd({3, 1})}) < 1e-3);
  CHECK(max_grad_error([](const Vs& v) { return sub(v[0], v[1]); }, {rnd({4}), rnd({2, 3, 4})}) < 1e-3);
  CHECK(max_grad_error([](const Vs& v) { return mul(v[0], v[1]); }, {rnd({2, 3, 4}), rnd({1, 3, 1})}) < 1e-3);
  CHECK(max_grad_error([](const Vs& v) { return div(v[0], v[1]); }, {rnd({2, 3}), positive({2, 3})}) < 2e-3);
  CHECK(max_grad_error([](const Vs& v) { return mul(v[0], v[1]); }, {rnd({2, 3}), rnd({})}) < 1e-3);
}

TEST_CASE("unary ops: gradients") {
  CHECK(max_grad_error([](const Vs& v) { return neg(v[0]); }, {rnd({5})}) < 1e-3);
  CHECK(max_grad_error([](const Vs& v) { return add_scalar(v[0], 3.f); }, {rnd({5})}) < 1e-3);
  CHECK(max_grad_error([](const Vs& v) { return mul_scalar(v[0], -2.f); }, {rnd({5})}) < 1e-3);
  CHECK(max_grad_error([](const Vs& v) { return exp(v[0]); }, {rnd({2, 5})}) < 1e-3);
  CHECK(max_grad_error([](const Vs& v) { return log(v[0]); }, {positive({2, 5})}, 1e-3f) < 5e-3);
  CHECK(max_grad_error([](const Vs& v) { return sqrt(v[0]); }, {positive({2, 5})}, 1e-3f) < 5e-3);
  CHECK(max_grad_error([](const Vs& v) { return abs(v[0]); }, {away_from_zero({2, 5})}, 1e-2f) < 1e-3);
  CHECK(max_grad_error([](const Vs& v) { return square(v[0]); }, {rnd({2, 5})}) < 1e-3);
  CHECK(max_grad_error([](const Vs& v) { return clamp(v[0], -0.5f, 0.5f); },
                       {Tensor({4}, {-0.9f, -0.2f, 0.3f, 0.8f})}) < 1e-3);
}

TEST_CASE("activations: values and gradients") {
  Var x(Tensor({4}, {-2.f, -0.5f, 0.5f, 2.f}));
  CHECK(relu(x).value()[0] == 0.f);
  CHECK(relu(x).value()[3] == 2.f);
  CHECK(leaky_relu(x, 0.1f).value()[0] == doctest::Approx(-0.2f));
  CHECK(sigmoid(x).value()[2] == doctest::Approx(0.6224593f));
  CHECK(tanh(x).value()[3] == doctest::Approx(0.9640276f));
  CHECK(gelu(x).value()[3] == doctest::Approx(1.9544997f));  // PyTorch gelu(2.0), exact erf form
  CHECK(gelu(x).value()[1] == doctest::Approx(-0.1542687f));
  CHECK(max_grad_error([](const Vs& v) { return relu(v[0]); }, {away_from_zero({3, 4})}) < 1e-3);
  CHECK(max_grad_error([](const Vs& v) { return leaky_relu(v[0], 0.2f); }, {away_from_zero({3, 4})}) < 1e-3);
  CHECK(max_grad_error([](const Vs& v) { return sigmoid(v[0]); }, {rnd({3, 4})}) < 1e-3);
  CHECK(max_grad_error([](const Vs& v) { return tanh(v[0]); }, {rnd({3, 4})}) < 1e-3);
  CHECK(max_grad_error([](const Vs& v) { return gelu(v[0]); }, {rnd({3, 4})}) < 1e-3);
}

TEST_CASE("softmax and log_softmax: values and gradients on every axis") {
  Var x(Tensor({1, 3}, {1.f, 2.f, 3.f}));
  Var s = softmax(x);
  CHECK(s.value()[0] == doctest::Approx(0.0900306f));
  CHECK(s.value()[2] == doctest::Approx(0.6652409f));
  CHECK(log_softmax(x).value()[1] == doctest::Approx(-1.4076059f));
  Var big(Tensor({2}, {1000.f, 1000.f}));  // stable: no overflow
  CHECK(softmax(big).value()[0] == doctest::Approx(0.5f));
  for (int axis : {0, 1, -1}) {
    CHECK(max_grad_error([axis](const Vs& v) { return softmax(v[0], axis); }, {rnd({3, 4, 2})}) < 2e-3);
    CHECK(max_grad_error([axis](const Vs& v) { return log_softmax(v[0], axis); }, {rnd({3, 4, 2})}) < 2e-3);
  }
}

TEST_CASE("reductions: values and gradients") {
  Var x(Tensor({2, 3}, {1, 5, 3, 4, 2, 6}));
  CHECK(sum(x, 0).value().storage() == std::vector<float>{5, 7, 9});
  CHECK(mean(x, 1).value().storage() == std::vector<float>{3, 4});
  CHECK(max(x, 1).value().storage() == std::vector<float>{5, 6});
  CHECK(max(x, 0, true).shape() == Shape{1, 3});
  CHECK(sum_all(x).value()[0] == 21.f);
  CHECK(mean_all(x).value()[0] == 3.5f);
  CHECK_THROWS_AS(sum(x, 2), ShapeError);
  for (int axis : {0, 1, 2}) {
    CHECK(max_grad_error([axis](const Vs& v) { return sum(v[0], axis); }, {rnd({2, 3, 4})}) < 1e-3);
    CHECK(max_grad_error([axis](const Vs& v) { return mean(v[0], axis, true); }, {rnd({2, 3, 4})}) < 1e-3);
    CHECK(max_grad_error([axis](const Vs& v) { return max(v[0], axis); }, {distinct_tensor({2, 3, 4}, rng)}) <
          1e-3);
  }
  CHECK(max_grad_error([](const Vs& v) { return sum_all(v[0]); }, {rnd({2, 3})}) < 1e-3);
  CHECK(max_grad_error([](const Vs& v) { return mean_all(v[0]); }, {rnd({2, 3})}) < 1e-3);
}

TEST_CASE("shape ops: values and gradients") {
  Var x(Tensor({2, 3}, {0, 1, 2, 3, 4, 5}));
  Var t = transpose(x, {1, 0});
  CHECK(t.shape() == Shape{3, 2});
  CHECK(t.value().storage() == std::vector<float>{0, 3, 1, 4, 2, 5});
  CHECK(reshape(x, {-1}).shape() == Shape{6});
  CHECK_THROWS_AS(reshape(x, {4, -1}), ShapeError);
  CHECK(flatten(Var(Tensor({2, 3, 4}))).shape() == Shape{2, 12});
  Var c = concat({x, Var(Tensor({2, 1}, {9, 8}))}, 1);
  CHECK(c.value().storage() == std::vector<float>{0, 1, 2, 9, 3, 4, 5, 8});
  CHECK(slice(x, 1, 1, 3).value().storage() == std::vector<float>{1, 2, 4, 5});
  CHECK_THROWS_AS(slice(x, 1, 2, 5), ShapeError);
  CHECK_THROWS_AS(concat({x, Var(Tensor({3, 1}))}, 1), ShapeError);
  CHECK(max_grad_error([](const Vs& v) { return transpose(v[0], {2, 0, 1}); }, {rnd({2, 3, 4})}) < 1e-3);
  CHECK(max_grad_error([](const Vs& v) { return reshape(v[0], {4, -1}); }, {rnd({2, 3, 4})}) < 1e-3);
  CHECK(max_grad_error(
            [](const Vs& v) {
              return concat({v[0], v[1]}, 0);
            },
            {rnd({2, 3}), rnd({1, 3})}) < 1e-3);
  CHECK(max_grad_error([](const Vs& v) { return slice(v[0], 1, 1, 3); }, {rnd({2, 4, 2})}) < 1e-3);
}

TEST_CASE("matmul and linear: values and gradients") {
  Var a(Tensor({2, 2}, {1, 2, 3, 4})), b(Tensor({2, 1}, {5, 6}));
  CHECK(matmul(a, b).value().storage() == std::vector<float>{17, 39});
  Var bias(Tensor({1}, {1}));
  CHECK(linear(a, b, bias).value().storage() == std::vector<float>{18, 40});
  CHECK_THROWS_AS(matmul(a, Var(Tensor({3, 2}))), ShapeError);
  CHECK_THROWS_AS(linear(a, b, Var(Tensor({2}))), ShapeError);
  CHECK(max_grad_error([](const Vs& v) { return matmul(v[0], v[1]); }, {rnd({3, 4}), rnd({4, 2})}) < 1e-3);
  CHECK(max_grad_error([](const Vs& v) { return matmul(v[0], v[1]); }, {rnd({2, 3, 4}), rnd({4, 2})}) < 1e-3);
  CHECK(max_grad_error([](const Vs& v) { return matmul(v[0], v[1]); }, {rnd({2, 3, 4}), rnd({2, 4, 5})}) <
        1e-3);
  CHECK(max_grad_error([](const Vs& v) { return linear(v[0], v[1], v[2]); },
                       {rnd({2, 3, 4}), rnd({4, 5}), rnd({5})}) < 1e-3);
  CHECK(max_grad_error([](const Vs& v) { return linear(v[0], v[1], Var()); }, {rnd({3, 4}), rnd({4, 5})}) <
        1e-3);
}

TEST_CASE("sum_all: the sequential double sum's bits, integer data summed in any order included") {
  std::mt19937_64 g(4);
  auto sequential = [](const std::vector<float>& v) {
    double s = 0;
    for (float x : v) s += x;
    return static_cast<float>(s);
  };
  for (int64_t n : {1, 63, 64, 67, 1000, 10819}) {
    CAPTURE(n);
    // Integers up to 2^24 - 1 in magnitude (HGQ's bit counts and their products), the sum exact.
    std::vector<float> ints(static_cast<size_t>(n));
    int64_t exact = 0;
    for (auto& v : ints) {
      v = static_cast<float>(static_cast<int64_t>(g() % (1 << 25)) - (1 << 24) + 1);
      exact += static_cast<int64_t>(v);
    }
    CHECK(sum_all(Var(Tensor({n}, ints))).value()[0] == static_cast<float>(exact));
    // Fractions, one non-integer among integers, a value at 2^24, inf and NaN: the sequential sum.
    std::vector<float> fr(static_cast<size_t>(n));
    for (auto& v : fr)
      v = std::ldexp(static_cast<float>(g() % 1000003) + 0.37f, static_cast<int>(g() % 40) - 20);
    for (const auto& v : {fr, ints}) {
      float a = sum_all(Var(Tensor({n}, v))).value()[0], b = sequential(v);
      CHECK(std::memcmp(&a, &b, sizeof a) == 0);
    }
    for (float odd : {0.5f, 0x1p24f, -0x1p25f, INFINITY, NAN}) {
      std::vector<float> v = ints;
      v[static_cast<size_t>(n / 2)] = odd;
      float a = sum_all(Var(Tensor({n}, v))).value()[0], b = sequential(v);
      CHECK((std::memcmp(&a, &b, sizeof a) == 0 || (std::isnan(a) && std::isnan(b))));
    }
  }
}
