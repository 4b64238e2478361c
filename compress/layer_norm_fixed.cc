#include "compress/layer_norm_fixed.h"

#include <cmath>

#include "compress/avg_pool.h"

namespace kiln::compress {

std::vector<int64_t> ln_table(int64_t n) {
  std::vector<int64_t> t;
  const int64_t lo = int64_t{1} << kLnTableBits, hi = lo << 2;
  for (int64_t v = lo; v < hi; ++v)
    t.push_back(
        std::llround(std::ldexp(std::sqrt(static_cast<double>(n) / static_cast<double>(v)), kLnTableFrac)));
  return t;
}

void ln_normalize(const std::vector<int64_t>& table, const int64_t* x, int64_t n, int64_t* xhat) {
  int64_t s = 0;
  for (int64_t e = 0; e < n; ++e) s += x[e];
  int64_t v = 0;
  for (int64_t e = 0; e < n; ++e) {
    const int64_t d = n * x[e] - s;
    v += d * d;
  }
  if (v == 0) {
    for (int64_t e = 0; e < n; ++e) xhat[e] = 0;
    return;
  }
  // v = m 4^k with m in [2^B, 2^(B+2)).
  int k = 0;
  const int64_t lo = int64_t{1} << kLnTableBits, hi = lo << 2;
  int64_t m = v;
  while (m >= hi) m >>= 2, ++k;
  while (m < lo) m <<= 2, --k;
  const int64_t r = table[static_cast<size_t>(m - lo)];
  // x^ = d r 2^(kLnFrac - Q - k), rounded half up on 2^-kLnFrac.
  const int sh = kLnTableFrac + k - kLnFrac;
  for (int64_t e = 0; e < n; ++e) {
    const int64_t p = (n * x[e] - s) * r;
    xhat[e] = sh > 0 ? (p + (int64_t{1} << (sh - 1))) >> sh : p * (int64_t{1} << -sh);
  }
}

Var LayerNormFixed::apply(const Var& x, nn::Context&) {
  const int F = finest_frac(*input_);
  const int64_t n = x.shape().back(), rows = x.size() / n;
  KILN_CHECK(n == input_->shape().back(), "layer norm over " + std::to_string(n) +
                                              " features, its table made for " +
                                              std::to_string(input_->shape().back()));
  Tensor out = Tensor::uninitialized(x.shape());
  const float* px = x.value().data();
  std::vector<int64_t> codes(static_cast<size_t>(n)), xhat(static_cast<size_t>(n));
  // The real normalisation, for the backward: x^ and 1 / sqrt(var + eps) per row.
  std::vector<float> real(static_cast<size_t>(x.size())), inv_std(static_cast<size_t>(rows));
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = px + r * n;
    double mean = 0, var = 0;
    for (int64_t e = 0; e < n; ++e) {
      codes[static_cast<size_t>(e)] = std::llround(std::ldexp(static_cast<double>(row[e]), F));  // exact
      mean += row[e];
    }
    mean /= static_cast<double>(n);
    for (int64_t e = 0; e < n; ++e) var += (row[e] - mean) * (row[e] - mean);
    const double is = 1.0 / std::sqrt(var / static_cast<double>(n) + eps_);
    inv_std[static_cast<size_t>(r)] = static_cast<float>(is);
    for (int64_t e = 0; e < n; ++e)
      real[static_cast<size_t>(r * n + e)] = static_cast<float>((row[e] - mean) * is);
    ln_normalize(table_, codes.data(), n, xhat.data());
    for (int64_t e = 0; e < n; ++e)
      out[r * n + e] =
          static_cast<float>(std::ldexp(static_cast<double>(xhat[static_cast<size_t>(e)]), -kLnFrac));
  }
  // dx = (g - mean(g) - x^ mean(g x^)) / sqrt(var + eps), per row, with the real x^.
  return make_result(std::move(out), "layer_norm_fixed", {x},
                     [n, rows, real = std::move(real), inv_std = std::move(inv_std)](Node& self) {
                       const float* g = self.grad.data();
                       float* gx = self.inputs[0]->grad_buffer().data();
                       for (int64_t r = 0; r < rows; ++r) {
                         double mg = 0, mgx = 0;
                         for (int64_t e = 0; e < n; ++e) {
                           mg += g[r * n + e];
                           mgx += static_cast<double>(g[r * n + e]) * real[static_cast<size_t>(r * n + e)];
                         }
                         mg /= static_cast<double>(n), mgx /= static_cast<double>(n);
                         for (int64_t e = 0; e < n; ++e)
                           gx[r * n + e] += static_cast<float>(
                               (g[r * n + e] - mg - real[static_cast<size_t>(r * n + e)] * mgx) *
                               inv_std[static_cast<size_t>(r)]);
                       }
                     });
}

}  // namespace kiln::compress
