// Batch norm and layer norm. The forward keeps the normalised input xhat and 1/std for the backward
// (as llm.c keeps mean and rstd), so the backward is one pass.
#include <cmath>

#include "engine/check.h"
#include "engine/ops.h"

namespace kiln {

namespace {

void check_affine(const char* op, const Var& x, const Var& gamma, const Var& beta) {
  if (x.ndim() < 1) throw ShapeError(std::string(op) + ": input of shape " + shape_str(x.shape()));
  int64_t c = x.shape().back();
  if (gamma.shape() != Shape{c} || beta.shape() != Shape{c})
    throw ShapeError(std::string(op) + ": input " + shape_str(x.shape()) + " needs gamma and beta of shape [" +
                     std::to_string(c) + "], got " + shape_str(gamma.shape()) + " and " + shape_str(beta.shape()));
}

// y = gamma * xhat + beta per channel (last axis); records the backward given dxhat -> dx rule.
// Shared by the training-mode batch norm (statistics over rows) and layer norm (statistics over columns).
template <class DxFromDxhat>
Var affine_result(const char* op, const Var& x, const Var& gamma, const Var& beta, Tensor xhat, DxFromDxhat dx_rule) {
  int64_t c = x.shape().back(), rows = x.size() / c;
  Tensor out(x.shape());
  out.matrix(rows, c) = (xhat.matrix(rows, c).array().rowwise() * gamma.value().matrix(1, c).row(0).array())
                            .rowwise() + beta.value().matrix(1, c).row(0).array();
  return make_result(std::move(out), op, {x, gamma, beta},
                     [xhat = std::move(xhat), rows, c, dx_rule](Node& self) {
                       auto g = self.grad.matrix(rows, c);
                       auto xh = xhat.matrix(rows, c);
                       Node& nx = *self.inputs[0];
                       Node& ng = *self.inputs[1];
                       Node& nb = *self.inputs[2];
                       if (ng.requires_grad) ng.grad_buffer().matrix(1, c) += (g.array() * xh.array()).colwise().sum().matrix();
                       if (nb.requires_grad) nb.grad_buffer().matrix(1, c) += g.colwise().sum();
                       if (nx.requires_grad) {
                         MatrixRM dxhat = g.array().rowwise() * ng.value.matrix(1, c).row(0).array();
                         dx_rule(nx.grad_buffer().matrix(rows, c), dxhat, xh);
                       }
                     });
}

}  // namespace

Var batch_norm_train(const Var& x, const Var& gamma, const Var& beta, Tensor& running_mean, Tensor& running_var,
                     float momentum, float eps) {
  check_affine("batch_norm", x, gamma, beta);
  int64_t c = x.shape().back(), rows = x.size() / c;
  if (rows < 2) throw ShapeError("batch_norm in training needs more than one value per channel, got input " + shape_str(x.shape()));
  auto xm = x.value().matrix(rows, c);
  Eigen::RowVectorXf mu = xm.colwise().mean();
  Eigen::RowVectorXf var = (xm.rowwise() - mu).array().square().colwise().mean();
  Eigen::RowVectorXf rstd = (var.array() + eps).rsqrt();
  Tensor xhat(x.shape());
  xhat.matrix(rows, c) = (xm.rowwise() - mu).array().rowwise() * rstd.array();
  // Running statistics use the unbiased variance, as Keras and PyTorch do.
  float unbias = static_cast<float>(rows) / static_cast<float>(rows - 1);
  running_mean.matrix(1, c) = momentum * running_mean.matrix(1, c) + (1.f - momentum) * mu;
  running_var.matrix(1, c) = momentum * running_var.matrix(1, c) + (1.f - momentum) * unbias * var;
  // dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)), means over rows.
  return affine_result("batch_norm", x, gamma, beta, std::move(xhat),
                       [rstd](MatMap dx, const MatrixRM& dxhat, ConstMatMap xh) {
                         Eigen::RowVectorXf m1 = dxhat.colwise().mean();
                         Eigen::RowVectorXf m2 = (dxhat.array() * xh.array()).colwise().mean();
                         dx.array() += ((dxhat.rowwise() - m1).array() - xh.array().rowwise() * m2.array()).rowwise() *
                                       rstd.array();
                       });
}

Var batch_norm_infer(const Var& x, const Var& gamma, const Var& beta, const Tensor& running_mean,
                     const Tensor& running_var, float eps) {
  check_affine("batch_norm", x, gamma, beta);
  int64_t c = x.shape().back();
  // Inference is an affine map per channel: y = x * scale + shift.
  Tensor scale({c}), shift({c});
  for (int64_t j = 0; j < c; ++j) {
    scale[j] = gamma.value()[j] / std::sqrt(running_var[j] + eps);
    shift[j] = beta.value()[j] - scale[j] * running_mean[j];
  }
  Var s(scale), b(shift);
  if (!gamma.requires_grad() && !beta.requires_grad()) return add(mul(x, s), b);
  // Gradients to gamma and beta through the affine form (running statistics are constants here).
  Tensor inv_std({c});
  for (int64_t j = 0; j < c; ++j) inv_std[j] = 1.f / std::sqrt(running_var[j] + eps);
  Var xhat = mul(sub(x, Var(running_mean.reshaped({c}))), Var(inv_std));
  return add(mul(xhat, gamma), beta);
}

Var layer_norm(const Var& x, const Var& gamma, const Var& beta, float eps) {
  check_affine("layer_norm", x, gamma, beta);
  int64_t c = x.shape().back(), rows = x.size() / c;
  auto xm = x.value().matrix(rows, c);
  Eigen::VectorXf mu = xm.rowwise().mean();
  Eigen::VectorXf var = (xm.colwise() - mu).array().square().rowwise().mean();
  Eigen::VectorXf rstd = (var.array() + eps).rsqrt();
  Tensor xhat(x.shape());
  xhat.matrix(rows, c) = (xm.colwise() - mu).array().colwise() * rstd.array();
  // dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)), means over columns.
  return affine_result("layer_norm", x, gamma, beta, std::move(xhat),
                       [rstd](MatMap dx, const MatrixRM& dxhat, ConstMatMap xh) {
                         Eigen::VectorXf m1 = dxhat.rowwise().mean();
                         Eigen::VectorXf m2 = (dxhat.array() * xh.array()).rowwise().mean();
                         dx.array() += ((dxhat.colwise() - m1).array() - xh.array().colwise() * m2.array()).colwise() *
                                       rstd.array();
                       });
}

}  // namespace kiln
