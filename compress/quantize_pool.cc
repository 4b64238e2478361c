// The fused quantizer + max pool (quantize_pool.h). The forward's work unit is a band: band o holds input
// rows [o * kh, o * kh + kh) of every sample, the bit entries [o * kh * W * C, ...) of the per-element bits.
#include "compress/quantize_pool.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <vector>

#include "compress/quantize_ops.h"
#include "engine/parallel.h"
#include "engine/pool_band.h"
#include "engine/tensor.h"

namespace kiln::compress {

namespace {

// A buffer of n floats per thread, kept between calls (a band of the batch: 426 KB for the CNN's first pool
// at batch 128), so that no step allocates and faults in fresh pages for it.
float* band_buffer(int64_t n) {
  thread_local std::vector<float> buf;
  if (static_cast<int64_t>(buf.size()) < n) buf.resize(static_cast<size_t>(n));
  return buf.data();
}

}  // namespace

Var quantize_max_pool2d(const Var& x, const Var& f, const Var& i, std::shared_ptr<const qkernel::Table> table,
                        const PoolWindow2d& w) {
  if (!table || x.ndim() != 4) return Var();
  const Shape sample{x.dim(1), x.dim(2), x.dim(3)};
  const int64_t B = x.dim(0), nb = shape_numel(sample);
  if (f.shape() != sample || i.shape() != sample || table->nb() != nb ||
      nb > std::numeric_limits<int32_t>::max())
    return Var();
  const pool::Tiled p = pool::tiled_pool(x.dim(1), x.dim(2), x.dim(3), w);
  if (p.oh == 0) return Var();
  // The bands, and one more for the rows below the last window when there are any: they take no part in
  // the pool, but are quantized too, so that an element needing the scalar definition sends the whole op to
  // the unfused path as quantize_fixed would (and their gradient is 0 + 0, as the pool gives them).
  const int64_t band = p.band(), bands = p.oh + (p.oh * p.kh < p.h ? 1 : 0);
  const int64_t out_row = p.ow * p.c;  // one output row of one sample
  const bool record = grad_enabled() && (x.requires_grad() || f.requires_grad() || i.requires_grad());
  Tensor out = Tensor::uninitialized({B, p.oh, p.ow, p.c});
  // argmax [B, OH, OW, C] as max_pool2d keeps it: each window's first maximum, its offset in the sample.
  std::vector<int32_t, AlignedAllocator<int32_t>> argmax(record ? static_cast<size_t>(out.size()) : 0);
  const float* px = x.value().data();
  float* po = out.data();
  int32_t* pa = argmax.data();
  // Tasks: a band of a quarter of the samples each (nothing is summed, so any split gives the same values),
  // enough of them to even out two threads (13 bands alone split 7 and 6).
  const int64_t parts = std::min<int64_t>(B, 4);
  std::vector<int> scalar(static_cast<size_t>(bands * parts), 0);
  par::balanced_for(bands * parts, [&](int64_t task) {
    const int64_t o = task / parts, n0 = B * (task % parts) / parts, n1 = B * (task % parts + 1) / parts;
    const int64_t ea = o * band, eb = std::min(nb, ea + band), len = eb - ea;
    float* q = band_buffer((n1 - n0) * len);  // [n1 - n0, len]: the band of each sample, quantized
    scalar[static_cast<size_t>(task)] = qkernel::forward_band(*table, px + n0 * nb, n1 - n0, q, len, ea, eb);
    if (o >= p.oh) return;
    for (int64_t n = n0; n < n1; ++n) {
      const int64_t at = (n * p.oh + o) * out_row;
      pool::max_band_forward(p, o, q + (n - n0) * len, po + at, record ? pa + at : nullptr);
    }
  });
  if (std::any_of(scalar.begin(), scalar.end(), [](int s) { return s != 0; })) return Var();
  if (!record) return make_result(std::move(out), "quantize_max_pool2d", {x, f, i}, nullptr);
  auto bwd = [table = std::move(table), argmax = std::move(argmax), p, B, nb, out_row](Node& self) {
    Node& nx = *self.inputs[0];
    Node& nf = *self.inputs[1];
    Node& ni = *self.inputs[2];
    std::vector<double> df(nf.requires_grad ? static_cast<size_t>(nb) : 0);
    std::vector<double> di(ni.requires_grad ? static_cast<size_t>(nb) : 0);
    bool fresh = false;
    float* gx = nx.requires_grad ? nx.grad_buffer_unfilled(&fresh).data() : nullptr;
    // The pool's gradient, as max_pool2d's backward writes it (0 + g at each window's argmax, 0 elsewhere,
    // a sample after the other), into x's fresh gradient, which the quantizer's backward then rewrites in
    // place; into a buffer of its own where x's gradient already holds values (or is not wanted). Measured
    // against writing it band by band into the cache and running the quantizer's backward there: that
    // wrote 3 KB runs 43 KB apart and was slower than this, the two ops' own order (the forward's band
    // order pays because it removes a whole pass over the quantized input).
    const bool in_place = gx && fresh;
    std::vector<float, AlignedAllocator<float>> own(in_place ? 0 : static_cast<size_t>(B * nb));
    float* gq = in_place ? gx : own.data();
    const float* g = self.grad.data();
    const int64_t out_sample = p.oh * out_row;
    par::balanced_for(B, [&](int64_t n) {
      pool::max_tiled_backward(p, g + n * out_sample, argmax.data() + n * out_sample, gq + n * nb);
    });
    qkernel::backward(*table, nx.value.data(), false, gq, B * nb, gx, fresh, df.empty() ? nullptr : df.data(),
                      di.empty() ? nullptr : di.data());
    add_sums(nf, df);
    add_sums(ni, di);
  };
  return make_result(std::move(out), "quantize_max_pool2d", {x, f, i}, std::move(bwd));
}

}  // namespace kiln::compress
