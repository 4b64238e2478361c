// Scaled dot-product attention, composed from differentiable ops so its gradient is exact by construction
// (and checked against finite differences in the tests).
#include <cmath>
#include <limits>

#include "engine/check.h"
#include "engine/ops.h"

namespace kiln {

Tensor causal_mask(int64_t t) {
  Tensor m({t, t});
  for (int64_t i = 0; i < t; ++i)
    for (int64_t j = i + 1; j < t; ++j) m[i * t + j] = -std::numeric_limits<float>::infinity();
  return m;
}

Var scaled_dot_product_attention(const Var& q, const Var& k, const Var& v, const Tensor* mask) {
  // q, k, v: [B, H, T, D]
  if (q.ndim() != 4 || k.shape() != q.shape() || v.shape() != q.shape())
    throw ShapeError("attention: q " + shape_str(q.shape()) + ", k " + shape_str(k.shape()) + ", v " +
                     shape_str(v.shape()) + " (need equal [B, heads, T, D])");
  int64_t b = q.dim(0), h = q.dim(1), t = q.dim(2), d = q.dim(3);
  if (mask && mask->shape() != Shape{t, t})
    throw ShapeError("attention: mask " + shape_str(mask->shape()) + " for sequence length " + std::to_string(t));
  Var q3 = reshape(q, {b * h, t, d});
  Var kt = transpose(reshape(k, {b * h, t, d}), {0, 2, 1});  // [BH, D, T]
  Var scores = mul_scalar(matmul(q3, kt), 1.f / std::sqrt(static_cast<float>(d)));  // [BH, T, T]
  if (mask) scores = add(scores, Var(*mask));
  Var p = softmax(scores, -1);
  return reshape(matmul(p, reshape(v, {b * h, t, d})), {b, h, t, d});
}

}  // namespace kiln
