#include "compress/avg_pool.h"

#include <cmath>

#include "compress/deploy.h"

namespace kiln::compress {

int finest_frac(const FixedQuantizer& q) {
  const Tensor &f = q.f(), &i = q.i();
  int best = 0;
  bool any = false;
  for (int64_t b = 0; b < f.size(); ++b) {
    const int fb = static_cast<int>(std::lround(f[b])),
              ib = static_cast<int>(std::lround(i[b < i.size() ? b : 0]));
    if (q.k() + ib + fb <= 0) continue;  // pruned: 0 on any grid
    best = any ? std::max(best, fb) : fb, any = true;
  }
  return best;
}

std::vector<int64_t> window_counts(const Shape& in, const Shape& out, const nn::Geometry& g) {
  const Window w = window_of(in, out, g);
  std::vector<int64_t> n;
  for (int64_t oh = 0; oh < w.OH; ++oh)
    for (int64_t ow = 0; ow < w.OW; ++ow) {
      int64_t c = 0;
      w.for_each_tap(oh, ow, [&](int64_t, int64_t) { ++c; });
      n.push_back(c);
    }
  return n;
}

Shape pool_output_shape(const nn::Layer& pool) {
  Shape out = pool.output_shape();
  while (out.size() < pool.input_shape().size()) out.insert(out.begin(), 1);
  return out;
}

AvgPoolRound::AvgPoolRound(const nn::Layer& pool, std::shared_ptr<FixedQuantizer> input)
    : input_(std::move(input)),
      counts_(window_counts(pool.input_shape(), pool_output_shape(pool), *pool.geometry())),
      channels_(pool.output_shape().back()) {}

Var AvgPoolRound::apply(const Var& x, nn::Context&) {
  const int F = finest_frac(*input_);
  Tensor out = Tensor::uninitialized(x.shape());
  const float* px = x.value().data();
  const int64_t per_sample = static_cast<int64_t>(counts_.size()) * channels_;
  for (int64_t e = 0; e < x.size(); ++e) {
    const int64_t n = counts_[static_cast<size_t>((e % per_sample) / channels_)];
    const double s = std::nearbyint(static_cast<double>(px[e]) * static_cast<double>(n) * std::ldexp(1.0, F));
    const int64_t q = static_cast<int64_t>(s) / n;  // toward zero
    out[e] = static_cast<float>(std::ldexp(static_cast<double>(q), -F));
  }
  return make_result(std::move(out), "avg_pool_round", {x}, [](Node& self) {
    const float* g = self.grad.data();
    float* gx = self.inputs[0]->grad_buffer().data();
    for (int64_t e = 0; e < self.value.size(); ++e) gx[e] += g[e];  // straight through
  });
}

}  // namespace kiln::compress
