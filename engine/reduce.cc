// Reductions along one axis. A tensor is viewed as [outer, n, inner] around the reduced axis.
#include <cmath>
#include <limits>

#include "engine/check.h"
#include "engine/ops.h"

namespace kiln {

namespace {

struct AxisView {
  int64_t outer = 1, n = 1, inner = 1;
  Shape out_shape;
};

AxisView axis_view(const Shape& s, int axis, bool keepdim) {
  int nd = static_cast<int>(s.size());
  int a = axis < 0 ? axis + nd : axis;
  if (a < 0 || a >= nd)
    throw ShapeError("reduction axis " + std::to_string(axis) + " out of range for " + shape_str(s));
  AxisView v;
  for (int i = 0; i < a; ++i) v.outer *= s[i];
  v.n = s[a];
  for (int i = a + 1; i < nd; ++i) v.inner *= s[i];
  for (int i = 0; i < nd; ++i) {
    if (i != a)
      v.out_shape.push_back(s[i]);
    else if (keepdim)
      v.out_shape.push_back(1);
  }
  return v;
}

Var sum_scaled(const Var& a, int axis, bool keepdim, bool is_mean) {
  AxisView v = axis_view(a.shape(), axis, keepdim);
  float scale = is_mean ? 1.f / static_cast<float>(v.n) : 1.f;
  Tensor out(v.out_shape);
  const float* x = a.value().data();
  float* y = out.data();
  for (int64_t o = 0; o < v.outer; ++o)
    for (int64_t j = 0; j < v.n; ++j)
      for (int64_t i = 0; i < v.inner; ++i) y[o * v.inner + i] += x[(o * v.n + j) * v.inner + i];
  for (int64_t i = 0; i < out.size(); ++i) y[i] *= scale;
  return make_result(std::move(out), is_mean ? "mean" : "sum", {a}, [v, scale](Node& self) {
    const float* g = self.grad.data();
    float* dx = self.inputs[0]->grad_buffer().data();
    for (int64_t o = 0; o < v.outer; ++o)
      for (int64_t j = 0; j < v.n; ++j)
        for (int64_t i = 0; i < v.inner; ++i) dx[(o * v.n + j) * v.inner + i] += scale * g[o * v.inner + i];
  });
}

}  // namespace

Var sum(const Var& a, int axis, bool keepdim) { return sum_scaled(a, axis, keepdim, false); }
Var mean(const Var& a, int axis, bool keepdim) { return sum_scaled(a, axis, keepdim, true); }

Var max(const Var& a, int axis, bool keepdim) {
  AxisView v = axis_view(a.shape(), axis, keepdim);
  Tensor out(v.out_shape, -std::numeric_limits<float>::infinity());
  std::vector<int64_t> arg(static_cast<size_t>(out.size()), 0);  // flat input index of each maximum
  const float* x = a.value().data();
  float* y = out.data();
  for (int64_t o = 0; o < v.outer; ++o)
    for (int64_t j = 0; j < v.n; ++j)
      for (int64_t i = 0; i < v.inner; ++i) {
        int64_t src = (o * v.n + j) * v.inner + i, dst = o * v.inner + i;
        if (j == 0 || x[src] > y[dst]) y[dst] = x[src], arg[static_cast<size_t>(dst)] = src;
      }
  return make_result(std::move(out), "max", {a}, [arg = std::move(arg)](Node& self) {
    const float* g = self.grad.data();
    float* dx = self.inputs[0]->grad_buffer().data();
    for (size_t i = 0; i < arg.size(); ++i) dx[arg[i]] += g[i];
  });
}

namespace {
// The sum in double of floats that are all integers below 2^24 in magnitude, or NaN when one is not: for
// fewer than 2^29 of them every partial sum is an integer below 2^53, exact in double in any order, so this
// is the sequential sum's value, in 8 vectorised chains. (HGQ's EBOPs term sums integer bit counts and
// their products at every step.)
double integer_sum(const float* p, int64_t n) {
  if (n >= (int64_t{1} << 29)) return NAN;
  int bad = 0;
  for (int64_t i = 0; i < n; ++i) bad |= !(std::fabs(p[i]) < 0x1p24f) | (p[i] != std::trunc(p[i]));
  if (bad) return NAN;
  double part[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int l = 0; l < 8; ++l) part[l] += static_cast<double>(p[i + l]);
  for (; i < n; ++i) part[0] += static_cast<double>(p[i]);
  return ((part[0] + part[1]) + (part[2] + part[3])) + ((part[4] + part[5]) + (part[6] + part[7]));
}
}  // namespace

Var sum_all(const Var& a) {
  const float* p = a.value().data();
  const int64_t n = a.size();
  // Double accumulation, in order (losses over large batches stay accurate); integer data in any order.
  double s = n >= 64 ? integer_sum(p, n) : NAN;
  if (std::isnan(s)) {
    s = 0;
    for (int64_t i = 0; i < n; ++i) s += p[i];
  }
  return make_result(Tensor(Shape{}, {static_cast<float>(s)}), "sum_all", {a},
                     [](Node& self) { self.inputs[0]->grad_buffer().vec().array() += self.grad[0]; });
}

Var mean_all(const Var& a) {
  KILN_CHECK(a.size() > 0, "mean of an empty tensor");
  return mul_scalar(sum_all(a), 1.f / static_cast<float>(a.size()));
}

}  // namespace kiln
