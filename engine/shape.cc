// Shape ops: reshape/flatten (no data movement), transpose (general permutation), concat and slice.
#include "engine/check.h"
#include "engine/ops.h"

namespace kiln {

namespace {
int norm_axis(int axis, int nd, const Shape& s, const char* op) {
  int a = axis < 0 ? axis + nd : axis;
  if (a < 0 || a >= nd) throw ShapeError(std::string(op) + ": axis " + std::to_string(axis) + " out of range for " + shape_str(s));
  return a;
}
}  // namespace

Var reshape(const Var& a, const Shape& shape) {
  Tensor out = a.value().reshaped(shape);
  return make_result(std::move(out), "reshape", {a}, [](Node& self) {
    self.inputs[0]->grad_buffer().vec() += self.grad.vec();
  });
}

Var flatten(const Var& a) {
  if (a.ndim() < 1) throw ShapeError("flatten needs a batch axis, got shape " + shape_str(a.shape()));
  return reshape(a, {a.dim(0), -1});
}

Var transpose(const Var& a, const std::vector<int>& perm) {
  const Shape& s = a.shape();
  int nd = a.ndim();
  if (static_cast<int>(perm.size()) != nd)
    throw ShapeError("transpose: permutation of " + std::to_string(perm.size()) + " axes for shape " + shape_str(s));
  std::vector<bool> used(nd, false);
  Shape os(nd);
  for (int i = 0; i < nd; ++i) {
    int p = norm_axis(perm[i], nd, s, "transpose");
    if (used[p]) throw ShapeError("transpose: axis " + std::to_string(p) + " repeated");
    used[p] = true;
    os[i] = s[p];
  }
  // Input strides, read in output-axis order.
  std::vector<int64_t> in_stride(nd), st(nd);
  int64_t acc = 1;
  for (int i = nd - 1; i >= 0; --i) in_stride[i] = acc, acc *= s[i];
  for (int i = 0; i < nd; ++i) st[i] = in_stride[perm[i] < 0 ? perm[i] + nd : perm[i]];
  // src[k] = flat input index of output element k.
  int64_t n = a.size();
  std::vector<int64_t> src(static_cast<size_t>(n));
  std::vector<int64_t> idx(nd, 0);
  int64_t off = 0;
  for (int64_t k = 0; k < n; ++k) {
    src[k] = off;
    for (int d = nd - 1; d >= 0; --d) {
      off += st[d];
      if (++idx[d] < os[d]) break;
      off -= st[d] * os[d];
      idx[d] = 0;
    }
  }
  Tensor out = Tensor::uninitialized(os);
  const float* x = a.value().data();
  for (int64_t k = 0; k < n; ++k) out[k] = x[src[k]];
  return make_result(std::move(out), "transpose", {a}, [src = std::move(src)](Node& self) {
    float* dx = self.inputs[0]->grad_buffer().data();
    const float* g = self.grad.data();
    for (size_t k = 0; k < src.size(); ++k) dx[src[k]] += g[k];
  });
}

Var concat(const std::vector<Var>& xs, int axis) {
  if (xs.empty()) throw ShapeError("concat of no tensors");
  const Shape& s0 = xs[0].shape();
  int nd = static_cast<int>(s0.size());
  int a = norm_axis(axis, nd, s0, "concat");
  Shape os = s0;
  os[a] = 0;
  for (const Var& x : xs) {
    const Shape& s = x.shape();
    bool ok = static_cast<int>(s.size()) == nd;
    for (int i = 0; ok && i < nd; ++i) ok = i == a || s[i] == s0[i];
    if (!ok) throw ShapeError("concat along axis " + std::to_string(a) + ": shapes " + shape_str(s0) + " and " + shape_str(s));
    os[a] += s[a];
  }
  int64_t outer = 1, inner = 1;
  for (int i = 0; i < a; ++i) outer *= s0[i];
  for (int i = a + 1; i < nd; ++i) inner *= s0[i];
  Tensor out(os);
  std::vector<int64_t> offsets;  // start of each input along the axis
  int64_t at = 0;
  for (const Var& x : xs) {
    offsets.push_back(at);
    int64_t n = x.dim(a);
    for (int64_t o = 0; o < outer; ++o)
      std::copy_n(x.value().data() + o * n * inner, n * inner, out.data() + (o * os[a] + at) * inner);
    at += n;
  }
  int64_t total = os[a];
  return make_result(std::move(out), "concat", xs, [a, outer, inner, total, offsets](Node& self) {
    for (size_t k = 0; k < self.inputs.size(); ++k) {
      Node& in = *self.inputs[k];
      if (!in.requires_grad) continue;
      int64_t n = in.value.dim(a);
      float* dx = in.grad_buffer().data();
      for (int64_t o = 0; o < outer; ++o)
        for (int64_t j = 0; j < n * inner; ++j) dx[o * n * inner + j] += self.grad[(o * total + offsets[k]) * inner + j];
    }
  });
}

Var slice(const Var& a, int axis, int64_t start, int64_t stop) {
  const Shape& s = a.shape();
  int nd = a.ndim();
  int ax = norm_axis(axis, nd, s, "slice");
  if (start < 0 || stop > s[ax] || start > stop)
    throw ShapeError("slice [" + std::to_string(start) + ", " + std::to_string(stop) + ") of axis " +
                     std::to_string(ax) + " in shape " + shape_str(s));
  int64_t outer = 1, inner = 1, n = s[ax], m = stop - start;
  for (int i = 0; i < ax; ++i) outer *= s[i];
  for (int i = ax + 1; i < nd; ++i) inner *= s[i];
  Shape os = s;
  os[ax] = m;
  Tensor out(os);
  for (int64_t o = 0; o < outer; ++o)
    std::copy_n(a.value().data() + (o * n + start) * inner, m * inner, out.data() + o * m * inner);
  return make_result(std::move(out), "slice", {a}, [outer, inner, n, m, start](Node& self) {
    float* dx = self.inputs[0]->grad_buffer().data();
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t j = 0; j < m * inner; ++j) dx[(o * n + start) * inner + j] += self.grad[o * m * inner + j];
  });
}

}  // namespace kiln
