// Finite-difference gradient check (style.md, principle 2). The op under test is reduced to a scalar with
// fixed random weights, L = sum(w * f(inputs)), so every output element's gradient is checked. Central
// differences in float32 with step eps; tolerances are per op and documented at the call site.
#pragma once
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "engine/ops.h"

namespace kiln::testing {

inline Tensor random_tensor(const Shape& s, std::mt19937_64& rng, float lo = -1.f, float hi = 1.f) {
  std::uniform_real_distribution<float> u(lo, hi);
  Tensor t(s);
  for (int64_t i = 0; i < t.size(); ++i) t[i] = u(rng);
  return t;
}

// Distinct values 0.1 apart (0, 0.1, 0.2, ...), shuffled: no ties or near-ties for max's finite differences.
inline Tensor distinct_tensor(const Shape& s, std::mt19937_64& rng) {
  Tensor t(s);
  std::vector<int> perm(static_cast<size_t>(t.size()));
  for (size_t i = 0; i < perm.size(); ++i) perm[i] = static_cast<int>(i);
  std::shuffle(perm.begin(), perm.end(), rng);
  for (int64_t i = 0; i < t.size(); ++i) t[i] = 0.1f * static_cast<float>(perm[static_cast<size_t>(i)]);
  return t;
}

// Returns the largest error |analytic - numeric| / max(1, |numeric|) over all inputs that require grads.
inline double max_grad_error(const std::function<Var(const std::vector<Var>&)>& f, std::vector<Tensor> inputs,
                             float eps = 1e-2f, uint64_t seed = 7) {
  std::mt19937_64 rng(seed);
  std::vector<Var> vars;
  for (auto& t : inputs) vars.emplace_back(t, true);
  Var out = f(vars);
  Tensor w = random_tensor(out.shape(), rng);
  auto loss_of = [&](const std::vector<Var>& vs) {
    NoGradGuard ng;
    Var o = f(vs);
    double s = 0;
    for (int64_t i = 0; i < o.size(); ++i) s += static_cast<double>(o.value()[i]) * w[i];
    return s;
  };
  backward(out, w);
  double worst = 0;
  for (size_t k = 0; k < vars.size(); ++k) {
    for (int64_t i = 0; i < vars[k].size(); ++i) {
      std::vector<Var> vp;
      for (auto& t : inputs) vp.emplace_back(t, false);
      float x0 = inputs[k][i];
      vp[k].value()[i] = x0 + eps;
      double lp = loss_of(vp);
      vp[k].value()[i] = x0 - eps;
      double lm = loss_of(vp);
      double num = (lp - lm) / (2.0 * eps);
      double ana = vars[k].grad().empty() ? 0.0 : vars[k].grad()[i];
      double err = std::fabs(ana - num) / std::max(1.0, std::fabs(num));
      if (err > worst) worst = err;
    }
  }
  return worst;
}

}  // namespace kiln::testing
