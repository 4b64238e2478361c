// softmax and log_softmax along one axis, with the max subtracted for stability.
#include <cmath>

#include "engine/check.h"
#include "engine/ops.h"

namespace kiln {

namespace {

struct Lanes {
  int64_t outer, n, inner;
};
Lanes lanes(const Shape& s, int axis) {
  int nd = static_cast<int>(s.size());
  int a = axis < 0 ? axis + nd : axis;
  if (a < 0 || a >= nd) throw ShapeError("softmax axis " + std::to_string(axis) + " out of range for " + shape_str(s));
  Lanes l{1, s[a], 1};
  for (int i = 0; i < a; ++i) l.outer *= s[i];
  for (int i = a + 1; i < nd; ++i) l.inner *= s[i];
  return l;
}

// y = log_softmax(x) along the lane (stride `inner`).
void log_softmax_lane(const float* x, float* y, int64_t n, int64_t stride) {
  float m = x[0];
  for (int64_t j = 1; j < n; ++j) m = std::max(m, x[j * stride]);
  double s = 0;
  for (int64_t j = 0; j < n; ++j) s += std::exp(x[j * stride] - m);
  float lse = m + static_cast<float>(std::log(s));
  for (int64_t j = 0; j < n; ++j) y[j * stride] = x[j * stride] - lse;
}

}  // namespace

Var softmax(const Var& a, int axis) {
  Lanes l = lanes(a.shape(), axis);
  Tensor out = Tensor::uninitialized(a.shape());
  for (int64_t o = 0; o < l.outer; ++o)
    for (int64_t i = 0; i < l.inner; ++i) {
      int64_t base = o * l.n * l.inner + i;
      log_softmax_lane(a.value().data() + base, out.data() + base, l.n, l.inner);
      for (int64_t j = 0; j < l.n; ++j) out[base + j * l.inner] = std::exp(out[base + j * l.inner]);
    }
  // dx = y * (g - sum(g * y))
  return make_result(std::move(out), "softmax", {a}, [l](Node& self) {
    const float* g = self.grad.data();
    const float* y = self.value.data();
    float* dx = self.inputs[0]->grad_buffer().data();
    for (int64_t o = 0; o < l.outer; ++o)
      for (int64_t i = 0; i < l.inner; ++i) {
        int64_t base = o * l.n * l.inner + i;
        float dot = 0.f;
        for (int64_t j = 0; j < l.n; ++j) dot += g[base + j * l.inner] * y[base + j * l.inner];
        for (int64_t j = 0; j < l.n; ++j) {
          int64_t k = base + j * l.inner;
          dx[k] += y[k] * (g[k] - dot);
        }
      }
  });
}

Var log_softmax(const Var& a, int axis) {
  Lanes l = lanes(a.shape(), axis);
  Tensor out(a.shape());
  for (int64_t o = 0; o < l.outer; ++o)
    for (int64_t i = 0; i < l.inner; ++i) {
      int64_t base = o * l.n * l.inner + i;
      log_softmax_lane(a.value().data() + base, out.data() + base, l.n, l.inner);
    }
  // dx = g - softmax * sum(g)
  return make_result(std::move(out), "log_softmax", {a}, [l](Node& self) {
    const float* g = self.grad.data();
    const float* y = self.value.data();
    float* dx = self.inputs[0]->grad_buffer().data();
    for (int64_t o = 0; o < l.outer; ++o)
      for (int64_t i = 0; i < l.inner; ++i) {
        int64_t base = o * l.n * l.inner + i;
        float gs = 0.f;
        for (int64_t j = 0; j < l.n; ++j) gs += g[base + j * l.inner];
        for (int64_t j = 0; j < l.n; ++j) {
          int64_t k = base + j * l.inner;
          dx[k] += g[k] - std::exp(y[k]) * gs;
        }
      }
  });
}

}  // namespace kiln
