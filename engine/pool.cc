// Max and average pooling, channels-last, with TensorFlow "same"/"valid" padding. Padded positions never
// take part: max pads with -inf, average divides by the number of real inputs in each window (Keras and
// hls4ml). The 1-d versions are the 2-d ones with H = 1.
#include <algorithm>
#include <cstdint>
#include <limits>
#include <string>

#include "engine/check.h"
#include "engine/ops.h"
#include "engine/parallel.h"
#include "engine/pool_band.h"
#include "engine/window.h"

namespace kiln {

namespace {

using window::Axis;

// Throws ShapeError naming `op` and the input shape unless x has rank 2 + pool.size(), pools and strides are
// >= 1 and every spatial axis has at least one output position.
void check_pool(const char* op, const Var& x, const std::vector<int>& pool, const std::vector<int>& stride,
                Padding pad) {
  const int nsp = static_cast<int>(pool.size());
  std::string ps, ss;
  for (int i = 0; i < nsp; ++i) {
    ps += (i ? ", " : "") + std::to_string(pool[i]);
    ss += (i ? ", " : "") + std::to_string(stride[i]);
  }
  const std::string what = std::string(op) + ": input " + shape_str(x.shape()) + " with pool (" + ps +
                           ") and strides (" + ss + ")";
  if (x.ndim() != nsp + 2) throw ShapeError(what + " (need " + (nsp == 2 ? "[B, H, W, C])" : "[B, L, C])"));
  for (int i = 0; i < nsp; ++i) {
    if (pool[i] < 1 || stride[i] < 1) throw ShapeError(what + ": sizes must be >= 1");
    if (conv_out_size(x.dim(i + 1), pool[i], stride[i], pad) < 1)
      throw ShapeError(what + ": pool larger than input" +
                       (pad == Padding::kValid ? " under valid padding" : ""));
  }
}

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// One window of a max pool inside the input, over C channels: xw is its first tap (row stride `row` floats),
// base that tap's offset within the sample. y [C] gets the first maximum in window order and, with kArgmax,
// a [C] its offset (-1 where nothing beat -inf). Strict > keeps the first maximum; branch-free selects,
// because which tap wins is data-dependent and would mispredict.
template <bool kArgmax>
inline void window_max(const float* xw, int32_t base, int64_t row, int64_t kh, int64_t kw, int64_t C,
                       float* __restrict yr, int32_t* __restrict ar) {
  const int32_t c_n = static_cast<int32_t>(C);
  if (kh == 2 && kw == 2) {
    // The common 2x2 window: the four taps in registers, one store per output.
    const float* __restrict t0 = xw, * __restrict t1 = xw + C, * __restrict t2 = xw + row, * __restrict t3 = xw + row + C;
    const int32_t b0 = base, b1 = base + c_n, b2 = base + static_cast<int32_t>(row), b3 = b2 + c_n;
    for (int32_t c = 0; c < c_n; ++c) {
      float m = kNegInf;
      int32_t a = -1;
      bool gt = t0[c] > m;
      m = gt ? t0[c] : m, a = gt ? b0 + c : a;
      gt = t1[c] > m;
      m = gt ? t1[c] : m, a = gt ? b1 + c : a;
      gt = t2[c] > m;
      m = gt ? t2[c] : m, a = gt ? b2 + c : a;
      gt = t3[c] > m;
      m = gt ? t3[c] : m, a = gt ? b3 + c : a;
      yr[c] = m;
      if constexpr (kArgmax) ar[c] = a;
    }
    return;
  }
  for (int32_t c = 0; c < c_n; ++c) {  // tap 0 against -inf
    const bool gt = xw[c] > kNegInf;
    yr[c] = gt ? xw[c] : kNegInf;
    if constexpr (kArgmax) ar[c] = gt ? base + c : -1;
  }
  for (int64_t th = 0; th < kh; ++th)
    for (int64_t tw = th == 0 ? 1 : 0; tw < kw; ++tw) {
      const float* __restrict xr = xw + th * row + tw * C;
      const int32_t b = base + static_cast<int32_t>(th * row + tw * C);
      for (int32_t c = 0; c < c_n; ++c) {
        const bool gt = xr[c] > yr[c];
        yr[c] = gt ? xr[c] : yr[c];
        if constexpr (kArgmax) ar[c] = gt ? b + c : ar[c];
      }
    }
}

template <bool kArgmax>
void band_forward(const pool::Tiled& p, int64_t o, const float* band, float* y, int32_t* argmax) {
  const int32_t base = static_cast<int32_t>(o * p.band());
  for (int64_t ow = 0; ow < p.ow; ++ow) {
    const int64_t off = ow * p.kw * p.c;
    window_max<kArgmax>(band + off, base + static_cast<int32_t>(off), p.w * p.c, p.kh, p.kw, p.c,
                        y + ow * p.c, kArgmax ? argmax + ow * p.c : nullptr);
  }
}

// Max pooling with the first maximum's position: y [B, OH, OW, C] and argmax [B, OH, OW, C], the offset
// within its sample's [H, W, C] of the first (window order) maximum, -1 where nothing beat -inf. Padded taps
// never take part. y and argmax need no initialisation. Samples run in parallel. kArgmax false: y only (pa
// unused), for a forward without a backward (evaluation, calibration); the same selects give the same y.
template <bool kArgmax>
void max_pool_argmax(const float* px, float* po, int32_t* pa, int64_t B, int64_t C, const Axis& ah,
                     const Axis& aw, const pool::Tiled& tp) {
  const int64_t in_px = ah.in * aw.in, out_px = ah.out * aw.out;  // pixels per sample
  // Every window inside the input (valid padding, or same padding that pads nothing): the first tap
  // initialises each output directly, with the -inf start of the general loop folded in, so neither the
  // output nor argmax needs a fill pass first.
  const bool full = ah.inside() && aw.inside();
  par::balanced_for(B, [&](int64_t n) {
    const float* xn = px + n * in_px * C;
    float* yn = po + n * out_px * C;
    int32_t* an = kArgmax ? pa + n * out_px * C : nullptr;
    if (tp.oh > 0) {  // windows that tile the input: band by band, as a fused producer runs it (pool_band.h)
      for (int64_t o = 0; o < ah.out; ++o)
        band_forward<kArgmax>(tp, o, xn + o * tp.band(), yn + o * aw.out * C,
                              kArgmax ? an + o * aw.out * C : nullptr);
      return;
    }
    if (full) {
      for (int64_t oh = 0, p = 0; oh < ah.out; ++oh)
        for (int64_t ow = 0; ow < aw.out; ++ow, ++p) {
          const int64_t x0 = (oh * ah.s * aw.in + ow * aw.s) * C;  // the window's first input element
          window_max<kArgmax>(xn + x0, static_cast<int32_t>(x0), aw.in * C, ah.k, aw.k, C, yn + p * C,
                              kArgmax ? an + p * C : nullptr);
        }
      return;
    }
    // Windows that reach into the padding start from -inf (and no position); padded taps are never visited.
    std::fill(yn, yn + out_px * C, kNegInf);
    if constexpr (kArgmax) std::fill(an, an + out_px * C, -1);
    window::for_each_tap(ah, aw, [&](int64_t p, int64_t xi, int64_t) {
      const float* __restrict xr = xn + xi * C;
      float* __restrict yr = yn + p * C;
      int32_t* __restrict ar = kArgmax ? an + p * C : nullptr;
      const int32_t base = static_cast<int32_t>(xi * C);
      for (int32_t c = 0; c < static_cast<int32_t>(C); ++c) {
        const bool gt = xr[c] > yr[c];
        yr[c] = gt ? xr[c] : yr[c];
        if constexpr (kArgmax) ar[c] = gt ? base + c : ar[c];
      }
    });
  });
}

// One input row [W, C] of a max pool whose windows tile the input (inside it, stride = pool), under the
// output row gp, ap [OW, C]: 0 + g where the window's argmax is, 0 at its other taps and right of the last
// window. kK: the pool's width when it is 2 (taps unrolled: one load of g and argmax serves both), else 0.
template <int kK>
void max_pool_backward_row(const float* __restrict gp, const int32_t* __restrict ap, float* __restrict row,
                           int32_t row_base, int64_t C, int64_t k, int64_t out_w, int64_t in_w) {
  const int32_t c_n = static_cast<int32_t>(C);
  for (int64_t ow = 0; ow < out_w; ++ow, gp += C, ap += C) {
    float* __restrict d = row + ow * k * C;
    const int32_t base = row_base + static_cast<int32_t>(ow * k * C);
    if constexpr (kK == 2) {
      for (int32_t c = 0; c < c_n; ++c) {
        const float gv = 0.f + gp[c];
        const int32_t a = ap[c];
        d[c] = a == base + c ? gv : 0.f;
        d[C + c] = a == base + c_n + c ? gv : 0.f;
      }
    } else {
      for (int64_t kw = 0; kw < k; ++kw)
        for (int32_t c = 0; c < c_n; ++c) {
          const float gv = 0.f + gp[c];
          d[kw * C + c] = ap[c] == base + static_cast<int32_t>(kw * C) + c ? gv : 0.f;
        }
    }
  }
  std::fill(row + out_w * k * C, row + in_w * C, 0.f);
}

// The band's input gradient [kh, W, C] from output row o's gradient g and argmax ([OW, C] each).
void band_backward(const pool::Tiled& p, int64_t o, const float* g, const int32_t* argmax, float* band_grad) {
  const int64_t row = p.w * p.c;
  for (int64_t r = 0; r < p.kh; ++r) {
    const int32_t row_base = static_cast<int32_t>((o * p.kh + r) * row);
    if (p.kw == 2)
      max_pool_backward_row<2>(g, argmax, band_grad + r * row, row_base, p.c, 2, p.ow, p.w);
    else
      max_pool_backward_row<0>(g, argmax, band_grad + r * row, row_base, p.c, p.kw, p.ow, p.w);
  }
}

}  // namespace

namespace pool {

Tiled tiled_pool(int64_t h, int64_t w, int64_t c, const PoolWindow2d& win) {
  Tiled none{h, w, c, win.pool_h, win.pool_w, 0, 0};
  if (win.pool_h < 1 || win.pool_w < 1 || win.stride_h != win.pool_h || win.stride_w != win.pool_w)
    return none;
  const Axis ah(h, win.pool_h, win.stride_h, win.pad), aw(w, win.pool_w, win.stride_w, win.pad);
  if (ah.out < 1 || aw.out < 1 || !ah.inside() || !aw.inside()) return none;
  return {h, w, c, ah.k, aw.k, ah.out, aw.out};
}

void max_band_forward(const Tiled& p, int64_t o, const float* band, float* y, int32_t* argmax) {
  if (argmax)
    band_forward<true>(p, o, band, y, argmax);
  else
    band_forward<false>(p, o, band, y, nullptr);
}

void max_tiled_backward(const Tiled& p, const float* g, const int32_t* argmax, float* dx) {
  for (int64_t o = 0; o < p.oh; ++o)
    band_backward(p, o, g + o * p.ow * p.c, argmax + o * p.ow * p.c, dx + o * p.band());
  std::fill(dx + p.oh * p.band(), dx + p.h * p.w * p.c, 0.f);  // the rows below the last window
}

}  // namespace pool

Var max_pool2d(const Var& x, int pool_h, int pool_w, int stride_h, int stride_w, Padding pad) {
  check_pool("max_pool2d", x, {pool_h, pool_w}, {stride_h, stride_w}, pad);
  const int64_t B = x.dim(0), C = x.dim(3);
  const Axis ah(x.dim(1), pool_h, stride_h, pad), aw(x.dim(2), pool_w, stride_w, pad);
  const int64_t in_px = ah.in * aw.in, out_px = ah.out * aw.out;  // pixels per sample
  // Windows that tile the input (tp.oh > 0): the band kernels of pool_band.h, forward and backward.
  const pool::Tiled tp = pool::tiled_pool(ah.in, aw.in, C, {pool_h, pool_w, stride_h, stride_w, pad});
  Tensor out = Tensor::uninitialized({B, ah.out, aw.out, C});
  // argmax [B, OH, OW, C]: offset within its sample's [H, W, C] of the first maximum of each window (-1 if
  // nothing beat -inf). int32 matches the float width, so the selects vectorise.
  KILN_CHECK(in_px * C <= std::numeric_limits<int32_t>::max(),
             "max_pool2d: sample " + shape_str(x.shape()) + " too large");
  // Without a backward to come (evaluation, calibration) only the maxima are computed.
  if (!grad_enabled() || !x.requires_grad()) {
    max_pool_argmax<false>(x.value().data(), out.data(), nullptr, B, C, ah, aw, tp);
    return make_result(std::move(out), "max_pool2d", {x}, nullptr);
  }
  // (AlignedAllocator default-initialises on resize: max_pool_argmax writes every entry.)
  std::vector<int32_t, AlignedAllocator<int32_t>> argmax(static_cast<size_t>(out.size()));
  max_pool_argmax<true>(x.value().data(), out.data(), argmax.data(), B, C, ah, aw, tp);
  // Backward: each output's gradient goes to its recorded argmax. A sample's windows only read that
  // sample, so samples scatter in parallel without races. Into a fresh buffer with windows that tile the
  // input (inside it, stride = pool), every input element is written once instead: 0 + g at its window's
  // argmax, 0 elsewhere (the bits of adding to a zero fill, without the fill pass).
  auto bwd = [argmax = std::move(argmax), B, in_px, out_px, C, tp](Node& self) {
    bool fresh = false;
    float* dx = self.inputs[0]->grad_buffer_unfilled(&fresh).data();
    const float* g = self.grad.data();
    par::balanced_for(B, [&](int64_t n) {
      float* dxn = dx + n * in_px * C;
      const int32_t* an = argmax.data() + n * out_px * C;
      const float* gn = g + n * out_px * C;
      if (fresh && tp.oh > 0) {
        pool::max_tiled_backward(tp, gn, an, dxn);
        return;
      }
      if (fresh) std::fill(dxn, dxn + in_px * C, 0.f);
      for (int64_t i = 0; i < out_px * C; ++i)
        if (an[i] >= 0) dxn[an[i]] += gn[i];
    });
  };
  return make_result(std::move(out), "max_pool2d", {x}, std::move(bwd));
}

Var avg_pool2d(const Var& x, int pool_h, int pool_w, int stride_h, int stride_w, Padding pad) {
  check_pool("avg_pool2d", x, {pool_h, pool_w}, {stride_h, stride_w}, pad);
  const int64_t B = x.dim(0), C = x.dim(3);
  const Axis ah(x.dim(1), pool_h, stride_h, pad), aw(x.dim(2), pool_w, stride_w, pad);
  const int64_t in_px = ah.in * aw.in, out_px = ah.out * aw.out;
  // inv_count [OH*OW]: 1 / (number of real inputs in the window), the same for every sample and channel.
  std::vector<float> inv_count(static_cast<size_t>(out_px));
  for (int64_t oh = 0, p = 0; oh < ah.out; ++oh)
    for (int64_t ow = 0; ow < aw.out; ++ow, ++p)
      inv_count[p] = 1.f / static_cast<float>((ah.hi(oh) - ah.lo(oh)) * (aw.hi(ow) - aw.lo(ow)));
  Tensor out({B, ah.out, aw.out, C});
  const float* px = x.value().data();
  float* po = out.data();
  par::balanced_for(B, [&](int64_t n) {
    const float* xn = px + n * in_px * C;
    float* yn = po + n * out_px * C;
    window::for_each_tap(
        ah, aw, [&](int64_t p, int64_t xi, int64_t) { window::add_scaled(yn + p * C, xn + xi * C, 1.f, C); });
    for (int64_t p = 0; p < out_px; ++p)
      for (int64_t c = 0; c < C; ++c) yn[p * C + c] *= inv_count[p];
  });
  // Backward: each real input of a window receives g / count; windows overlap within a sample only.
  auto bwd = [inv_count = std::move(inv_count), B, C, ah, aw, in_px, out_px](Node& self) {
    float* dx = self.inputs[0]->grad_buffer().data();
    const float* g = self.grad.data();
    par::balanced_for(B, [&](int64_t n) {
      const float* gn = g + n * out_px * C;
      float* dxn = dx + n * in_px * C;
      window::for_each_tap(ah, aw, [&](int64_t p, int64_t xi, int64_t) {
        window::add_scaled(dxn + xi * C, gn + p * C, inv_count[p], C);
      });
    });
  };
  return make_result(std::move(out), "avg_pool2d", {x}, std::move(bwd));
}

namespace {

// The 1-d pools: [B, L, C] is [B, 1, L, C] in memory, so reshape, pool with a 1-high window, reshape back.
template <class Pool2d>
Var pool1d(const char* op, Pool2d pool2d, const Var& x, int pool, int stride, Padding pad) {
  check_pool(op, x, {pool}, {stride}, pad);
  const int64_t B = x.dim(0), L = x.dim(1), C = x.dim(2);
  Var y = pool2d(reshape(x, {B, 1, L, C}), 1, pool, 1, stride, pad);
  return reshape(y, {B, y.dim(2), C});
}

}  // namespace

Var max_pool1d(const Var& x, int pool, int stride, Padding pad) {
  return pool1d("max_pool1d", max_pool2d, x, pool, stride, pad);
}
Var avg_pool1d(const Var& x, int pool, int stride, Padding pad) {
  return pool1d("avg_pool1d", avg_pool2d, x, pool, stride, pad);
}

}  // namespace kiln
