// Matrix products on Eigen row-major maps: matmul and the Dense layer's fused linear op.
#include "engine/check.h"
#include "engine/gemm.h"
#include "engine/ops.h"

namespace kiln {

Var matmul(const Var& a, const Var& b) {
  const Shape& sa = a.shape();
  const Shape& sb = b.shape();
  if (sb.size() == 2) {
    // a [..., M, K] x b [K, N]: one GEMM over the flattened leading axes.
    if (sa.empty() || sa.back() != sb[0])
      throw ShapeError("matmul: " + shape_str(sa) + " x " + shape_str(sb) + " (inner dimensions differ)");
    int64_t k = sb[0], n = sb[1], rows = a.size() / k;
    Shape os = sa;
    os.back() = n;
    Tensor out = Tensor::uninitialized(os);
    out.matrix(rows, n).noalias() = a.value().matrix(rows, k) * b.value().matrix(k, n);
    return make_result(std::move(out), "matmul", {a, b}, [rows, k, n](Node& self) {
      Node& na = *self.inputs[0];
      Node& nb = *self.inputs[1];
      auto g = self.grad.matrix(rows, n);
      if (na.requires_grad)
        na.grad_buffer().matrix(rows, k).noalias() += g * nb.value.matrix(k, n).transpose();
      if (nb.requires_grad)
        nb.grad_buffer().matrix(k, n).noalias() += na.value.matrix(rows, k).transpose() * g;
    });
  }
  // a [B, M, K] x b [B, K, N]
  if (sa.size() != 3 || sb.size() != 3 || sa[0] != sb[0] || sa[2] != sb[1])
    throw ShapeError("matmul: " + shape_str(sa) + " x " + shape_str(sb) +
                     " (need [..., M, K] x [K, N] or [B, M, K] x [B, K, N])");
  int64_t bt = sa[0], m = sa[1], k = sa[2], n = sb[2];
  Tensor out = Tensor::uninitialized({bt, m, n});
  for (int64_t i = 0; i < bt; ++i)
    MatMap(out.data() + i * m * n, m, n).noalias() =
        ConstMatMap(a.value().data() + i * m * k, m, k) * ConstMatMap(b.value().data() + i * k * n, k, n);
  return make_result(std::move(out), "bmm", {a, b}, [bt, m, k, n](Node& self) {
    Node& na = *self.inputs[0];
    Node& nb = *self.inputs[1];
    float* da = na.requires_grad ? na.grad_buffer().data() : nullptr;
    float* db = nb.requires_grad ? nb.grad_buffer().data() : nullptr;
    for (int64_t i = 0; i < bt; ++i) {
      ConstMatMap g(self.grad.data() + i * m * n, m, n);
      if (da)
        MatMap(da + i * m * k, m, k).noalias() +=
            g * ConstMatMap(nb.value.data() + i * k * n, k, n).transpose();
      if (db)
        MatMap(db + i * k * n, k, n).noalias() +=
            ConstMatMap(na.value.data() + i * m * k, m, k).transpose() * g;
    }
  });
}

Var linear(const Var& x, const Var& w, const Var& b) {
  const Shape& sx = x.shape();
  const Shape& sw = w.shape();
  if (sw.size() != 2 || sx.empty() || sx.back() != sw[0])
    throw ShapeError("linear: input " + shape_str(sx) + " does not fit weight " + shape_str(sw));
  int64_t k = sw[0], n = sw[1], rows = x.size() / k;
  bool has_bias = b.defined();
  if (has_bias && b.shape() != Shape{n})
    throw ShapeError("linear: bias " + shape_str(b.shape()) + " for weight " + shape_str(sw));
  Shape os = sx;
  os.back() = n;
  Tensor out = Tensor::uninitialized(os);
  auto y = out.matrix(rows, n);
  gemm::rows(out.data(), x.value().data(), w.value().data(), rows, k, n, false);
  if (has_bias) y.rowwise() += b.value().matrix(1, n).row(0);
  std::vector<Var> inputs{x, w};
  if (has_bias) inputs.push_back(b);
  return make_result(std::move(out), "linear", std::move(inputs), [rows, k, n](Node& self) {
    Node& nx = *self.inputs[0];
    Node& nw = *self.inputs[1];
    auto g = self.grad.matrix(rows, n);
    if (nx.requires_grad)
      gemm::rows(nx.grad_buffer().data(), self.grad.data(), nw.value.data(), rows, n, k, true, true);
    if (nw.requires_grad)
      gemm::tn_sum(nw.grad_buffer().data(), nx.value.data(), self.grad.data(), rows, k, n);
    if (self.inputs.size() > 2 && self.inputs[2]->requires_grad)
      self.inputs[2]->grad_buffer().matrix(1, n).noalias() += g.colwise().sum();
  });
}

}  // namespace kiln
