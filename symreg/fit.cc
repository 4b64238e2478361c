#include "symreg/fit.h"

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <limits>

#include "symreg/simplify.h"

namespace kiln::symreg {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// Working state of one fit: constants in node order, then alpha and beta when scaling.
struct State {
  std::vector<double> theta;
  double loss = kInf;
};

void set_constants(Tree& t, const std::vector<double>& theta) {
  size_t k = 0;
  for (Node& n : t)
    if (n.op == Op::kConst) n.value = static_cast<float>(theta[k++]);
}

// loss of alpha f + beta
double scaled_loss(const Problem& pb, const float* f, double alpha, double beta, std::vector<float>& tmp) {
  const int64_t n = pb.rows();
  tmp.resize(static_cast<size_t>(n));
  for (int64_t r = 0; r < n; ++r) tmp[r] = static_cast<float>(alpha * f[r] + beta);
  return loss_value(pb.loss, tmp.data(), pb.y.data(), pb.w.empty() ? nullptr : pb.w.data(), n);
}

// Closed-form least-squares alpha, beta of y ~ alpha f + beta (weighted): the exact scaling for MSE and
// L2 margin, and a good start for the others.
void least_squares_scaling(const Problem& pb, const float* f, double& alpha, double& beta) {
  double sw = 0, sf = 0, sy = 0;
  const int64_t n = pb.rows();
  for (int64_t r = 0; r < n; ++r) {
    double w = pb.w.empty() ? 1 : pb.w[r];
    sw += w, sf += w * f[r], sy += w * pb.y[r];
  }
  double mf = sf / sw, my = sy / sw, cov = 0, var = 0;
  for (int64_t r = 0; r < n; ++r) {
    double w = pb.w.empty() ? 1 : pb.w[r], df = f[r] - mf;
    cov += w * df * (pb.y[r] - my), var += w * df * df;
  }
  alpha = var > 1e-30 * sw ? cov / var : 1.0;
  if (!std::isfinite(alpha)) alpha = 1;
  beta = my - alpha * mf;
}

// alpha * f + beta written into the tree, then simplified. A term is dropped when it is within float
// rounding of the identity (|alpha - 1| <= 1e-5, |beta| <= 1e-5 times the targets' RMS): the constants
// the fit already holds absorbed it.
Tree apply_scaling(const Tree& f, double alpha, double beta, double y_rms) {
  Tree t = f;
  if (std::fabs(alpha - 1) > 1e-5) {
    t.push_back(Node::constant(static_cast<float>(alpha)));
    t.push_back(Node::function(Op::kMul));
  }
  if (std::fabs(beta) > 1e-5 * std::max(y_rms, 1e-30)) {
    t.push_back(Node::constant(static_cast<float>(beta)));
    t.push_back(Node::function(Op::kAdd));
  }
  if (t.size() > kMaxLength) return f;
  update_lengths(t);
  return simplify(t);
}

// Constants within 1e-4 (relative) of a multiple of 1/2 are snapped to it, and the snapped tree
// simplified, when that does not worsen the loss by more than 1e-6 relative or leaves it within the loss
// floor: LM leaves 1e-7 where the formula has 0 and 0.99999 where it has 1, and only exact values let
// simplification drop the node. On exact data LM fits the targets' float rounding, so -0.999997 can beat
// -1 by a relative 1e-2 of a loss of 1e-15: the floor accepts the snap there.
void snap_constants(Fitted& out, const Problem& pb, Evaluator& ev, float* scratch, double loss_floor) {
  if (!std::isfinite(out.loss)) return;
  Tree s = out.tree;
  bool any = false;
  for (Node& n : s) {
    if (n.op != Op::kConst) continue;
    double v = n.value, r = std::round(v * 2) / 2;
    if (v != r && std::fabs(v - r) <= 1e-4 * std::max(1.0, std::fabs(v)))
      n.value = static_cast<float>(r), any = true;
  }
  if (!any) return;
  s = simplify(s);
  ev.predict(s, *pb.x, scratch);
  out.node_evals += s.size() * static_cast<double>(pb.rows());
  double l = loss_value(pb.loss, scratch, pb.y.data(), pb.w.empty() ? nullptr : pb.w.data(), pb.rows());
  if (l <= std::max(out.loss * (1 + 1e-6) + 1e-30, loss_floor)) out.tree = std::move(s), out.loss = l;
}

// Solves A d = b for a symmetric positive definite A (n x n, lower triangle read, overwritten by its
// Cholesky factor). False when a pivot is not positive: the damping was too small for A's conditioning.
// Plain loops: n is the number of constants plus two, and a general solver's setup costs more than this.
bool cholesky_solve(Eigen::MatrixXd& A, const Eigen::VectorXd& b, Eigen::VectorXd& d) {
  const int n = static_cast<int>(A.rows());
  for (int j = 0; j < n; ++j) {
    double diag = A(j, j);
    for (int k = 0; k < j; ++k) diag -= A(j, k) * A(j, k);
    if (!(diag > 0)) return false;
    const double l = std::sqrt(diag);
    A(j, j) = l;
    for (int i = j + 1; i < n; ++i) {
      double v = A(i, j);
      for (int k = 0; k < j; ++k) v -= A(i, k) * A(j, k);
      A(i, j) = v / l;
    }
  }
  for (int i = 0; i < n; ++i) {  // L z = b
    double v = b[i];
    for (int k = 0; k < i; ++k) v -= A(i, k) * d[k];
    d[i] = v / A(i, i);
  }
  for (int i = n - 1; i >= 0; --i) {  // L^T d = z
    double v = d[i];
    for (int k = i + 1; k < n; ++k) v -= A(k, i) * d[k];
    d[i] = v / A(i, i);
  }
  return d.allFinite();
}

}  // namespace

double evaluate_loss(const Tree& t, const Problem& pb, Evaluator& ev, float* scratch) {
  AlignedFloats own;
  if (!scratch) own = AlignedFloats(static_cast<size_t>(pb.x->padded())), scratch = own.data();
  ev.predict(t, *pb.x, scratch);
  return loss_value(pb.loss, scratch, pb.y.data(), pb.w.empty() ? nullptr : pb.w.data(), pb.rows());
}

Problem row_subset(const Problem& pb, int64_t rows, uint64_t seed, Columns* storage) {
  if (pb.rows() <= rows) return pb;
  // Partial Fisher-Yates: the first `rows` of a seeded shuffle, then sorted for locality.
  std::vector<int64_t> idx(static_cast<size_t>(pb.rows()));
  for (size_t i = 0; i < idx.size(); ++i) idx[i] = static_cast<int64_t>(i);
  uint64_t s = seed * 0x9e3779b97f4a7c15ull + 1;
  for (int64_t i = 0; i < rows; ++i) {
    s ^= s >> 12, s ^= s << 25, s ^= s >> 27;
    int64_t j = i + static_cast<int64_t>((s * 0x2545f4914f6cdd1dull) % static_cast<uint64_t>(pb.rows() - i));
    std::swap(idx[i], idx[j]);
  }
  idx.resize(static_cast<size_t>(rows));
  std::sort(idx.begin(), idx.end());
  *storage = pb.x->rows_subset(idx);
  Problem sub{storage, {}, {}, pb.loss};
  for (int64_t i : idx) {
    sub.y.push_back(pb.y[i]);
    if (!pb.w.empty()) sub.w.push_back(pb.w[i]);
  }
  return sub;
}

Fitted fit(const Tree& t0, const Problem& full, const FitOptions& opt, Evaluator& ev, const Problem* lm) {
  const Problem& pb = lm ? *lm : full;
  const Columns& x = *pb.x;
  const int64_t n = pb.rows(), padded = x.padded();
  const double per_eval = static_cast<double>(n);
  Fitted out;
  Tree t = t0;
  const int p = num_constants(t);
  const bool scale = opt.linear_scaling;
  const int iters =
      p > 0 ? opt.iterations : (pb.loss == LossKind::kMse || pb.loss == LossKind::kL2Margin ? 0 : 5);
  const int np = p + (scale ? 2 : 0);

  AlignedFloats f(static_cast<size_t>(padded)), jac(static_cast<size_t>(std::max(p, 1)) * padded);
  std::vector<float> tmp;
  State cur;
  for (const Node& nd : t)
    if (nd.op == Op::kConst) cur.theta.push_back(nd.value);
  double alpha = 1, beta = 0;
  ev.jacobian(t, x, f.data(), jac.data());
  out.node_evals += 2 * t.size() * per_eval;
  if (scale) least_squares_scaling(pb, f.data(), alpha, beta);
  cur.loss = scaled_loss(pb, f.data(), alpha, beta, tmp);

  // Every buffer of the iterations is allocated once here: a fit on a small problem is short, and
  // allocation was a tenth of the search's time.
  double lambda = 1e-3;
  Eigen::MatrixXd H(np, np), A(np, np);
  Eigen::VectorXd g(np), minus_g(np), d(np);
  std::vector<double> row(static_cast<size_t>(np));
  AlignedFloats tf(static_cast<size_t>(padded));
  Tree tt = t;
  State trial;
  for (int it = 0; it < iters && np > 0 && std::isfinite(cur.loss); ++it) {
    // Normal equations: J rows are [alpha * df/dc_k..., f, 1]; H's lower triangle by plain loops (np is
    // small: Eigen's rank updates cost more in dispatch than in arithmetic here).
    H.setZero(), g.setZero();
    for (int64_t r = 0; r < n; ++r) {
      double yhat = alpha * f[r] + beta, d1 = 0, d2 = 0, w = pb.w.empty() ? 1 : pb.w[r];
      loss_derivatives(pb.loss, yhat, pb.y[r], d1, d2);
      for (int k = 0; k < p; ++k) row[k] = alpha * jac[static_cast<size_t>(k) * padded + r];
      if (scale) row[p] = f[r], row[p + 1] = 1;
      const double wd1 = w * d1, wd2 = w * d2;
      for (int k = 0; k < np; ++k) {
        g[k] += wd1 * row[k];
        const double hk = wd2 * row[k];
        for (int l = 0; l <= k; ++l) H(k, l) += hk * row[l];
      }
    }
    if (!g.allFinite() || !H.allFinite()) break;
    minus_g = -g;
    bool improved = false;
    for (int attempt = 0; attempt < 10 && !improved; ++attempt) {
      A = H;
      for (int k = 0; k < np; ++k) A(k, k) += lambda * std::max(H(k, k), 1e-9);
      if (!cholesky_solve(A, minus_g, d)) {
        lambda *= 4;
        continue;
      }
      trial = cur;
      for (int k = 0; k < p; ++k) trial.theta[k] += d[k];
      double ta = scale ? alpha + d[p] : 1, tb = scale ? beta + d[p + 1] : 0;
      set_constants(tt, trial.theta);
      ev.predict(tt, x, tf.data());
      out.node_evals += t.size() * per_eval;
      trial.loss = scaled_loss(pb, tf.data(), ta, tb, tmp);
      if (trial.loss < cur.loss) {
        improved = true, lambda = std::max(lambda / 3, 1e-12);
        bool converged = cur.loss - trial.loss <= 1e-12 * std::max(cur.loss, 1e-30);
        std::swap(cur, trial), alpha = ta, beta = tb, t = tt;
        if (converged)
          it = iters;
        else if (p > 0) {
          ev.jacobian(t, x, f.data(), jac.data());
          out.node_evals += 2 * t.size() * per_eval;
        } else {
          std::copy(tf.data(), tf.data() + padded, f.data());
        }
      } else {
        lambda *= 4;
      }
    }
    if (!improved) break;
  }

  double y_rms = 0;
  for (int64_t r = 0; r < n; ++r) y_rms += double(pb.y[r]) * pb.y[r] / n;
  out.tree = scale ? apply_scaling(t, alpha, beta, std::sqrt(y_rms)) : simplify(t);
  if (&pb != &full) f = AlignedFloats(static_cast<size_t>(full.x->padded()));
  ev.predict(out.tree, *full.x, f.data());
  out.node_evals += out.tree.size() * static_cast<double>(full.rows());
  out.loss =
      loss_value(full.loss, f.data(), full.y.data(), full.w.empty() ? nullptr : full.w.data(), full.rows());
  if (!std::isfinite(out.loss)) out.loss = kInf;
  snap_constants(out, full, ev, f.data(), opt.loss_floor);
  return out;
}

}  // namespace kiln::symreg
