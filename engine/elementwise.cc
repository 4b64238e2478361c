// Elementwise ops. Binary ops broadcast as numpy does; the backward of a broadcast input sums the
// output gradient over the broadcast axes.
#include <cmath>

#include "engine/broadcast.h"
#include "engine/check.h"
#include "engine/ops.h"

namespace kiln {

Shape broadcast_shapes(const Shape& a, const Shape& b) {
  size_t n = std::max(a.size(), b.size());
  Shape out(n);
  for (size_t i = 0; i < n; ++i) {
    int64_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
    int64_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
    if (da != db && da != 1 && db != 1)
      throw ShapeError("cannot broadcast shapes " + shape_str(a) + " and " + shape_str(b));
    out[i] = da == 1 ? db : da;
  }
  return out;
}

namespace {

// out = f(a, b); backward: da += g * dfa(a, b, out), db += g * dfb(a, b, out).
template <class F, class DA, class DB>
Var binary(const Var& a, const Var& b, const char* name, F f, DA dfa, DB dfb) {
  Shape os = broadcast_shapes(a.shape(), b.shape());
  Tensor out = Tensor::uninitialized(os);
  const float* __restrict pa = a.value().data();
  const float* __restrict pb = b.value().data();
  float* __restrict po = out.data();
  int64_t n = out.size();
  if (a.shape() == os && b.shape() == os) {
    for (int64_t i = 0; i < n; ++i) po[i] = f(pa[i], pb[i]);
  } else {
    BroadcastMap ma(a.shape(), os), mb(b.shape(), os);
    for (int64_t i = 0; i < n; ++i) po[i] = f(pa[ma(i)], pb[mb(i)]);
  }
  return make_result(std::move(out), name, {a, b}, [dfa, dfb, os](Node& self) {
    Node& na = *self.inputs[0];
    Node& nb = *self.inputs[1];
    const float* g = self.grad.data();
    const float* pa = na.value.data();
    const float* pb = nb.value.data();
    const float* po = self.value.data();
    BroadcastMap ma(na.value.shape(), os), mb(nb.value.shape(), os);
    int64_t n = self.value.size();
    if (na.requires_grad) {
      float* da = na.grad_buffer().data();
      for (int64_t i = 0; i < n; ++i) {
        int64_t ia = ma(i), ib = mb(i);
        da[ia] += g[i] * dfa(pa[ia], pb[ib], po[i]);
      }
    }
    if (nb.requires_grad) {
      float* db = nb.grad_buffer().data();
      for (int64_t i = 0; i < n; ++i) {
        int64_t ia = ma(i), ib = mb(i);
        db[ib] += g[i] * dfb(pa[ia], pb[ib], po[i]);
      }
    }
  });
}

// out = f(a); backward: da += g * df(a, out).
template <class F, class DF>
Var unary(const Var& a, const char* name, F f, DF df) {
  Tensor out = Tensor::uninitialized(a.shape());
  const float* __restrict pa = a.value().data();
  float* __restrict po = out.data();
  int64_t n = out.size();
  for (int64_t i = 0; i < n; ++i) po[i] = f(pa[i]);
  return make_result(std::move(out), name, {a}, [df](Node& self) {
    Node& na = *self.inputs[0];
    const float* __restrict g = self.grad.data();
    const float* __restrict pa = na.value.data();
    const float* __restrict po = self.value.data();
    float* __restrict da = na.grad_buffer().data();
    int64_t n = self.value.size();
    for (int64_t i = 0; i < n; ++i) da[i] += g[i] * df(pa[i], po[i]);
  });
}

}  // namespace

Var add(const Var& a, const Var& b) {
  return binary(
      a, b, "add", [](float x, float y) { return x + y; }, [](float, float, float) { return 1.f; },
      [](float, float, float) { return 1.f; });
}
Var sub(const Var& a, const Var& b) {
  return binary(
      a, b, "sub", [](float x, float y) { return x - y; }, [](float, float, float) { return 1.f; },
      [](float, float, float) { return -1.f; });
}
Var mul(const Var& a, const Var& b) {
  return binary(
      a, b, "mul", [](float x, float y) { return x * y; }, [](float, float y, float) { return y; },
      [](float x, float, float) { return x; });
}
Var div(const Var& a, const Var& b) {
  return binary(
      a, b, "div", [](float x, float y) { return x / y; }, [](float, float y, float) { return 1.f / y; },
      [](float, float y, float o) { return -o / y; });
}
Var neg(const Var& a) {
  return unary(a, "neg", [](float x) { return -x; }, [](float, float) { return -1.f; });
}
Var add_scalar(const Var& a, float s) {
  return unary(a, "add_scalar", [s](float x) { return x + s; }, [](float, float) { return 1.f; });
}
Var mul_scalar(const Var& a, float s) {
  return unary(a, "mul_scalar", [s](float x) { return x * s; }, [s](float, float) { return s; });
}
Var exp(const Var& a) {
  return unary(a, "exp", [](float x) { return std::exp(x); }, [](float, float o) { return o; });
}
Var log(const Var& a) {
  return unary(a, "log", [](float x) { return std::log(x); }, [](float x, float) { return 1.f / x; });
}
Var sqrt(const Var& a) {
  return unary(a, "sqrt", [](float x) { return std::sqrt(x); }, [](float, float o) { return 0.5f / o; });
}
Var abs(const Var& a) {
  return unary(
      a, "abs", [](float x) { return std::fabs(x); },
      [](float x, float) { return x > 0.f ? 1.f : (x < 0.f ? -1.f : 0.f); });
}
Var square(const Var& a) {
  return unary(a, "square", [](float x) { return x * x; }, [](float x, float) { return 2.f * x; });
}
Var clamp(const Var& a, float lo, float hi) {
  KILN_CHECK(lo <= hi, "clamp range [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
  return unary(
      a, "clamp", [lo, hi](float x) { return std::min(std::max(x, lo), hi); },
      [lo, hi](float x, float) { return (x > lo && x < hi) ? 1.f : 0.f; });
}

// ---- activations live here too: they are unary maps -------------------------------------------------
Var relu(const Var& a) {
  return unary(a, "relu", [](float x) { return x > 0.f ? x : 0.f; }, [](float x, float) { return x > 0.f ? 1.f : 0.f; });
}
Var leaky_relu(const Var& a, float slope) {
  return unary(
      a, "leaky_relu", [slope](float x) { return x > 0.f ? x : slope * x; },
      [slope](float x, float) { return x > 0.f ? 1.f : slope; });
}
Var sigmoid(const Var& a) {
  return unary(
      a, "sigmoid", [](float x) { return 1.f / (1.f + std::exp(-x)); }, [](float, float o) { return o * (1.f - o); });
}
Var tanh(const Var& a) {
  return unary(a, "tanh", [](float x) { return std::tanh(x); }, [](float, float o) { return 1.f - o * o; });
}
Var gelu(const Var& a) {
  constexpr float kInvSqrt2 = 0.70710678118654752f;
  constexpr float kInvSqrt2Pi = 0.39894228040143268f;
  return unary(
      a, "gelu", [](float x) { return 0.5f * x * (1.f + std::erf(x * kInvSqrt2)); },
      [](float x, float) {
        return 0.5f * (1.f + std::erf(x * kInvSqrt2)) + x * kInvSqrt2Pi * std::exp(-0.5f * x * x);
      });
}

}  // namespace kiln
