// Convolutions, channels-last: conv2d (im2col + Eigen GEMM per block of rows), conv1d (conv2d with H = 1) and
// depthwise_conv2d (direct loops). Also the TensorFlow output-size and padding rules shared with pool.cc.
//
// im2col: row r = (b * OH + oh) * OW + ow of cols [B*OH*OW, KH*KW*C] is the receptive field of output pixel
// (b, oh, ow), in (kh, kw, c) order, so that the kernel [KH, KW, C, F] read as a [KH*KW*C, F] matrix is the
// right-hand side: Y [B*OH*OW, F] = cols * W. Padded taps stay zero.
#include <algorithm>
#include <numeric>
#include <string>
#include <type_traits>
#include <vector>

#include "engine/check.h"
#include "engine/gemm.h"
#include "engine/ops.h"
#include "engine/parallel.h"
#include "engine/window.h"

namespace kiln {

int64_t conv_out_size(int64_t in, int64_t kernel, int64_t stride, Padding pad) {
  if (kernel < 1 || stride < 1)
    throw ShapeError("conv_out_size: kernel " + std::to_string(kernel) + " and stride " +
                     std::to_string(stride) + " must be >= 1");
  if (pad == Padding::kSame) return (in + stride - 1) / stride;  // ceil(in / stride)
  // in < kernel needs its own case: C++ truncates e.g. (2 - 3) / 2 to 0, which would give 1 output.
  return in >= kernel ? (in - kernel) / stride + 1 : 0;
}

int64_t conv_pad_before(int64_t in, int64_t kernel, int64_t stride, Padding pad) {
  if (pad == Padding::kValid) return 0;
  int64_t total = std::max<int64_t>((conv_out_size(in, kernel, stride, pad) - 1) * stride + kernel - in, 0);
  return total / 2;  // odd totals put the extra position at the end, as TensorFlow
}

namespace {

using window::Axis;

std::string strides_str(const std::vector<int>& s) {
  std::string r = "(";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + ")";
}

// Throws ShapeError naming `op` and the shapes unless x [B, spatial..., C], w [spatial..., C(, F)] and b
// [w.back()] fit: ranks, channels, strides >= 1 and at least one output position per spatial axis.
void check_conv(const char* op, const Var& x, const Var& w, const Var& b, int rank_w, const char* layout,
                const std::vector<int>& strides, Padding pad) {
  const int nsp = static_cast<int>(strides.size());  // spatial axes
  const std::string shapes = "input " + shape_str(x.shape()) + " and kernel " + shape_str(w.shape());
  const std::string o = op;
  if (x.ndim() != nsp + 2 || w.ndim() != rank_w)
    throw ShapeError(o + ": " + shapes + " (need " + layout + ")");
  if (x.shape().back() != w.dim(nsp))
    throw ShapeError(o + ": input " + shape_str(x.shape()) + " does not match kernel " +
                     shape_str(w.shape()) + " (channels " + std::to_string(x.shape().back()) + " vs " +
                     std::to_string(w.dim(nsp)) + ")");
  for (int i = 0; i < nsp; ++i) {
    if (strides[i] < 1 || w.dim(i) < 1)
      throw ShapeError(o + ": strides " + strides_str(strides) + " and kernel sizes must be >= 1 for " +
                       shapes);
    if (conv_out_size(x.dim(i + 1), w.dim(i), strides[i], pad) < 1)
      throw ShapeError(o + ": kernel " + shape_str(w.shape()) + " larger than input " + shape_str(x.shape()) +
                       (pad == Padding::kValid ? " under valid padding" : "") + " (empty output)");
  }
  if (b.defined() && b.shape() != Shape{w.shape().back()})
    throw ShapeError(o + ": bias " + shape_str(b.shape()) + " does not match kernel " + shape_str(w.shape()) +
                     " (need [" + std::to_string(w.shape().back()) + "])");
}

// dst[i] = src[i] and y[i] += a[i] (add_scaled's values) for a run of n floats. L > 0: n == L, known at
// compile time. A first layer's few channels make runs too short for a call to memmove, or for a vectorised
// loop's setup, to pay: up to 16 floats a plain loop does them.
template <int L = 0>
inline void copy_run(float* __restrict dst, const float* __restrict src, int64_t n) {
  if constexpr (L > 0) {
    for (int i = 0; i < L; ++i) dst[i] = src[i];
  } else if (n <= 16) {
    for (int64_t i = 0; i < n; ++i) dst[i] = src[i];
  } else {
    std::copy(src, src + n, dst);
  }
}
template <int L = 0>
inline void add_run(float* __restrict y, const float* __restrict a, int64_t n) {
  if constexpr (L > 0) {
    for (int i = 0; i < L; ++i) y[i] += a[i];
  } else if (n <= 16) {
    for (int64_t i = 0; i < n; ++i) y[i] += a[i];
  } else {
    window::add_scaled(y, a, 1.f, n);
  }
}

// Rows [r0, r1) of cols [B*OH*OW, KH*KW*C] <- x [B, H, W, C]; cols arrives zero-filled where a window
// reaches into the padding, and padded taps are left alone. Row r is output pixel (b, oh, ow) with
// r = (b * OH + oh) * OW + ow. For one output pixel and one kernel row kh, the in-bounds taps kw0..kw1 read
// consecutive input pixels and a pixel's C channels are contiguous, so the whole run is one copy of
// (kw1 - kw0) * C floats, landing at column (kh * KW + kw0) * C. Serial: called per block of rows from the
// product's own task.
void im2col_rows_padded(float* cols, const float* x, int64_t C, const Axis& ah, const Axis& aw, int64_t r0,
                        int64_t r1) {
  const int64_t K = ah.k * aw.k * C, px = ah.out * aw.out;
  int64_t n = r0 / px, oh = r0 % px / aw.out, ow = r0 % aw.out;
  float* row = cols + r0 * K;
  for (int64_t r = r0; r < r1; ++r, row += K) {
    const float* xn = x + n * ah.in * aw.in * C;
    const int64_t kw0 = aw.lo(ow), len = (aw.hi(ow) - kw0) * C;
    for (int64_t kh = ah.lo(oh); kh < ah.hi(oh); ++kh) {
      copy_run(row + (kh * aw.k + kw0) * C, xn + ((ah.first(oh) + kh) * aw.in + aw.first(ow) + kw0) * C, len);
    }
    if (++ow == aw.out) {
      ow = 0;
      if (++oh == ah.out) oh = 0, ++n;
    }
  }
}

// Calls f(std::integral_constant<int, L>) with L = n for the run lengths KW*C that the unpadded im2col and
// col2im copy or add at a compile-time length (a first layer's few channels: there a call to memmove, or a
// loop whose count is only known at run time, costs more than the copy itself), else with L = 0.
template <class F>
void with_run_length(int64_t n, F&& f) {
  switch (n) {
    case 1:
      return f(std::integral_constant<int, 1>{});
    case 2:
      return f(std::integral_constant<int, 2>{});
    case 3:
      return f(std::integral_constant<int, 3>{});
    case 4:
      return f(std::integral_constant<int, 4>{});
    case 5:
      return f(std::integral_constant<int, 5>{});
    case 6:
      return f(std::integral_constant<int, 6>{});
    case 7:
      return f(std::integral_constant<int, 7>{});
    case 9:
      return f(std::integral_constant<int, 9>{});
    default:
      return f(std::integral_constant<int, 0>{});
  }
}

// The same when every window lies inside the input: each row is KH runs of KW*C floats at a fixed pitch, so
// only a pointer moves from row to row, and a run's length L comes from with_run_length (fixed 8-float chunks
// measured slower than std::copy for KW*C = 48).
template <int L>
void im2col_rows_inside(float* __restrict cols, const float* __restrict x, int64_t C, const Axis& ah,
                        const Axis& aw, int64_t r0, int64_t r1) {
  const int64_t len = aw.k * C, K = ah.k * len, px = ah.out * aw.out;
  const int64_t pitch = aw.in * C, sample = ah.in * pitch;
  int64_t n = r0 / px, oh = r0 % px / aw.out, ow = r0 % aw.out;
  const float* win = x + n * sample + oh * ah.s * pitch + ow * aw.s * C;  // the window's first tap
  float* row = cols + r0 * K;
  for (int64_t r = r0; r < r1; ++r, row += K) {
    for (int64_t kh = 0; kh < ah.k; ++kh) copy_run<L>(row + kh * len, win + kh * pitch, len);
    if (++ow < aw.out) {
      win += aw.s * C;
      continue;
    }
    ow = 0;
    if (++oh == ah.out) oh = 0, ++n;
    win = x + n * sample + oh * ah.s * pitch;
  }
}

void im2col_rows(float* cols, const float* x, int64_t C, const Axis& ah, const Axis& aw, int64_t r0,
                 int64_t r1) {
  if (!(ah.inside() && aw.inside())) return im2col_rows_padded(cols, x, C, ah, aw, r0, r1);
  with_run_length(aw.k * C,
                  [&](auto L) { im2col_rows_inside<decltype(L)::value>(cols, x, C, ah, aw, r0, r1); });
}

// dxn [H, W, C] += col2im of one sample's rows when every window lies inside the input: per output pixel
// and kernel row, one run of KW*C floats (its length L from with_run_length), added in row order.
template <int L>
void col2im_inside(float* __restrict dxn, const float* __restrict row, int64_t C, const Axis& ah,
                   const Axis& aw) {
  const int64_t len = aw.k * C, K = ah.k * len, pitch = aw.in * C;
  for (int64_t oh = 0; oh < ah.out; ++oh)
    for (int64_t ow = 0; ow < aw.out; ++ow, row += K) {
      float* dst = dxn + (oh * ah.s * aw.in + ow * aw.s) * C;
      for (int64_t kh = 0; kh < ah.k; ++kh) add_run<L>(dst + kh * pitch, row + kh * len, len);
    }
}

// dxn [H, W, C] += col2im of one sample's rows [OH*OW, KH*KW*C]: the adjoint of im2col, the same runs with +=
// instead of copies, in row order (windows overlap, so the order of the sums is fixed here). zero_first: dxn
// was just allocated and is zeroed first.
void col2im_sample(float* dxn, bool zero_first, const float* row, int64_t C, const Axis& ah, const Axis& aw) {
  const int64_t K = ah.k * aw.k * C;
  if (zero_first) std::fill(dxn, dxn + ah.in * aw.in * C, 0.f);
  if (ah.inside() && aw.inside())
    return with_run_length(aw.k * C, [&](auto L) { col2im_inside<decltype(L)::value>(dxn, row, C, ah, aw); });
  for (int64_t oh = 0; oh < ah.out; ++oh) {
    for (int64_t ow = 0; ow < aw.out; ++ow, row += K) {
      const int64_t kw0 = aw.lo(ow), len = (aw.hi(ow) - kw0) * C;
      for (int64_t kh = ah.lo(oh); kh < ah.hi(oh); ++kh) {
        float* dst = dxn + ((ah.first(oh) + kh) * aw.in + aw.first(ow) + kw0) * C;
        const float* src = row + (kh * aw.k + kw0) * C;
        window::add_scaled(dst, src, 1.f, len);
      }
    }
  }
}

// dx [B, H, W, C] += col2im(dY W^T) for dY [B*OH*OW, F] and the kernel w [KH*KW*C, F]. Tasks of whole samples
// (about gemm::kTaskRows rows) each multiply their rows into a buffer of their own and add it into their
// samples' dx while it is still in cache; the whole product (8.9 MB for the Fashion-MNIST CNN's conv2 at
// batch 128) used to be written out and read back. The values are those of one product followed by col2im
// (conv_test checks the bits): Eigen takes a block's rows four at a time, and a row's sums do not depend on
// the others of its four, but the last (rows mod 4) rows of a product go through another kernel, which for
// some shapes (KH*KW*C = 9, say) sums in another order. So every task but the last has a multiple of 4 rows,
// and the same rows as in one product take that kernel. A remainder of fewer samples than a task joins the
// last task: Eigen picks smaller kernels, which also sum in another order, for a product of few rows. With
// one output pixel per sample a block could be a single row (Eigen's matrix-vector kernel): that case keeps
// gemm::rows' blocks.
void input_grad(float* dx, bool zero_first, const float* g, const float* w, int64_t B, int64_t C, int64_t F,
                const Axis& ah, const Axis& aw) {
  const int64_t per = ah.out * aw.out, K = ah.k * aw.k * C, in = ah.in * aw.in * C;
  if (per == 1) {
    MatrixRM dcols(B, K);
    gemm::rows(dcols.data(), g, w, B, F, K, false, /*b_transposed=*/true);
    par::balanced_for(
        B, [&](int64_t n) { col2im_sample(dx + n * in, zero_first, dcols.data() + n * K, C, ah, aw); });
    return;
  }
  const int64_t quad = 4 / std::gcd<int64_t>(per, 4);  // samples whose rows make a multiple of 4
  const int64_t samples = std::max<int64_t>(quad, gemm::kTaskRows / per / quad * quad);
  const int64_t tasks = std::max<int64_t>(1, B / samples);  // the last takes the remainder as well
  par::balanced_for(tasks, [&](int64_t t) {
    const int64_t n0 = t * samples, n1 = t == tasks - 1 ? B : n0 + samples, r = (n1 - n0) * per;
    MatrixRM d(r, K);  // [r, KH*KW*C]
    ConstMatMap gm(g + n0 * per * F, r, F);
    ConstMatMap wm(w, K, F);
    MatMap(d.data(), r, K).noalias() = gm * wm.transpose();
    for (int64_t n = n0; n < n1; ++n)
      col2im_sample(dx + n * in, zero_first, d.data() + (n - n0) * per * K, C, ah, aw);
  });
}

// db [F] += column sums of g [rows, F]: one contiguous pass over the rows (colwise() on a row-major map
// would stride through memory once per column).
void add_column_sums(float* db, const float* g, int64_t rows, int64_t F) {
  for (int64_t r = 0; r < rows; ++r) window::add_scaled(db, g + r * F, 1.f, F);
}

// y [rows, F] <- relu(y + bias) in one pass (bias may be null); relu as relu() computes it (x > 0 ? x : 0).
// Serial: called per block of rows from the product's own task.
void bias_relu(float* y, const float* bias, int64_t rows, int64_t F, bool relu) {
  for (int64_t r = 0; r < rows; ++r) {
    float* __restrict yr = y + r * F;
    if (bias)
      for (int64_t f = 0; f < F; ++f) yr[f] += bias[f];
    if (relu)
      for (int64_t f = 0; f < F; ++f) yr[f] = yr[f] > 0.f ? yr[f] : 0.f;
  }
}

}  // namespace

Var conv2d(const Var& x, const Var& w, const Var& b, int stride_h, int stride_w, Padding pad, bool relu) {
  check_conv("conv2d", x, w, b, 4, "[B, H, W, C] and [KH, KW, C, F]", {stride_h, stride_w}, pad);
  const int64_t B = x.dim(0), C = x.dim(3), F = w.dim(3);
  const Axis ah(x.dim(1), w.dim(0), stride_h, pad), aw(x.dim(2), w.dim(1), stride_w, pad);
  const int64_t rows = B * ah.out * aw.out, K = ah.k * aw.k * C;
  // [B*OH*OW, KH*KW*C]; im2col writes every entry unless some window reaches into the padding.
  const bool full = ah.inside() && aw.inside();
  Tensor cols = full ? Tensor::uninitialized({rows, K}) : Tensor({rows, K});
  Tensor out = Tensor::uninitialized({B, ah.out, aw.out, F});
  // Per block of rows, in one task: its im2col rows, the product, bias and relu, each pass reading what the
  // previous one left in cache.
  const float* px = x.value().data();
  const float* bias = b.defined() ? b.value().data() : nullptr;
  float* pc = cols.data();
  float* po = out.data();
  gemm::rows_with(
      po, pc, w.value().data(), rows, K, F, false, false,
      [&](int64_t r0, int64_t r) { im2col_rows(pc, px, C, ah, aw, r0, r0 + r); },
      [&](int64_t r0, int64_t r) {
        if (bias || relu) bias_relu(po + r0 * F, bias, r, F, relu);
      });
  std::vector<Var> inputs{x, w};
  if (b.defined()) inputs.push_back(b);
  // Backward: dW = cols^T dY, db = column sums of dY, dx = col2im(dY W^T); with the fused relu, dY is the
  // output gradient masked where the output is 0, exactly what a separate relu's backward would pass on.
  auto bwd = [cols = std::move(cols), B, C, F, K, rows, ah, aw, relu](Node& self) {
    Node& nx = *self.inputs[0];
    Node& nw = *self.inputs[1];
    // The mask is applied in place (a backward may consume its own node's gradient, autograd.h): no second
    // buffer of rows x F to allocate and fill.
    if (relu) {
      float* __restrict gv = self.grad.data();
      const float* __restrict yv = self.value.data();
      const int64_t n = rows * F;  // elementwise: split across threads exactly
#pragma omp parallel for schedule(static) if (n > 32768)
      for (int64_t j = 0; j < n; ++j) gv[j] = 0.f + gv[j] * (yv[j] > 0.f ? 1.f : 0.f);
    }
    const float* gdata = self.grad.data();
    // db (column sums in row order, serial) runs on one thread beside dW's blocks.
    float* db = self.inputs.size() > 2 && self.inputs[2]->requires_grad ? self.inputs[2]->grad_buffer().data()
                                                                        : nullptr;
    auto bias_grad = [&] {
      if (db) add_column_sums(db, gdata, rows, F);
    };
    if (nw.requires_grad)
      gemm::tn_sum_with(nw.grad_buffer().data(), cols.data(), gdata, rows, K, F, bias_grad);
    else
      bias_grad();
    if (nx.requires_grad) {
      bool fresh = false;
      float* dx = nx.grad_buffer_unfilled(&fresh).data();
      input_grad(dx, fresh, gdata, nw.value.data(), B, C, F, ah, aw);
    }
  };
  return make_result(std::move(out), "conv2d", std::move(inputs), std::move(bwd));
}

Var conv1d(const Var& x, const Var& w, const Var& b, int stride, Padding pad, bool relu) {
  check_conv("conv1d", x, w, b, 3, "[B, L, C] and [K, C, F]", {stride}, pad);
  const int64_t B = x.dim(0), L = x.dim(1), C = x.dim(2), K = w.dim(0), F = w.dim(2);
  // [B, L, C] is [B, 1, L, C] and [K, C, F] is [1, K, C, F] in memory: reshapes only, conv2d's gradients.
  Var y = conv2d(reshape(x, {B, 1, L, C}), reshape(w, {1, K, C, F}), b, 1, stride, pad, relu);
  return reshape(y, {B, y.dim(2), F});
}

Var depthwise_conv2d(const Var& x, const Var& w, const Var& b, int stride_h, int stride_w, Padding pad) {
  check_conv("depthwise_conv2d", x, w, b, 3, "[B, H, W, C] and [KH, KW, C]", {stride_h, stride_w}, pad);
  const int64_t B = x.dim(0), C = x.dim(3);
  const Axis ah(x.dim(1), w.dim(0), stride_h, pad), aw(x.dim(2), w.dim(1), stride_w, pad);
  const int64_t in_px = ah.in * aw.in, out_px = ah.out * aw.out;  // pixels per sample
  Tensor out({B, ah.out, aw.out, C});
  const float* px = x.value().data();
  const float* pw = w.value().data();  // [KH*KW, C]
  float* po = out.data();
  // y[b, oh, ow, c] = bias[c] + sum over in-bounds taps of x[b, ih, iw, c] * w[kh, kw, c]
  par::balanced_for(B, [&](int64_t n) {
    const float* xn = px + n * in_px * C;
    float* yn = po + n * out_px * C;
    window::for_each_tap(ah, aw, [&](int64_t p, int64_t xi, int64_t t) {
      window::add_mul(yn + p * C, xn + xi * C, pw + t * C, C);
    });
  });
  if (b.defined()) out.matrix(B * out_px, C).rowwise() += b.value().matrix(1, C).row(0);
  std::vector<Var> inputs{x, w};
  if (b.defined()) inputs.push_back(b);
  auto bwd = [B, C, ah, aw, in_px, out_px](Node& self) {
    Node& nx = *self.inputs[0];
    Node& nw = *self.inputs[1];
    const float* g = self.grad.data();  // dY [B, OH, OW, C]
    const float* px = nx.value.data();
    const float* pw = nw.value.data();
    const int64_t taps = ah.k * aw.k;
    if (self.inputs.size() > 2 && self.inputs[2]->requires_grad)
      add_column_sums(self.inputs[2]->grad_buffer().data(), g, B * out_px, C);
    // dw sums over the batch: per-sample partials dw_part [B, KH*KW*C], added in order afterwards, keep the
    // parallel loop race-free and the result independent of the thread count.
    MatrixRM dw_part = MatrixRM::Zero(nw.requires_grad ? B : 0, taps * C);
    float* dx = nx.requires_grad ? nx.grad_buffer().data() : nullptr;
    par::balanced_for(B, [&](int64_t n) {
      const float* gn = g + n * out_px * C;
      const float* xn = px + n * in_px * C;
      float* dxn = dx ? dx + n * in_px * C : nullptr;
      float* dwn = dw_part.rows() ? dw_part.data() + n * taps * C : nullptr;
      window::for_each_tap(ah, aw, [&](int64_t p, int64_t xi, int64_t t) {
        if (dxn) window::add_mul(dxn + xi * C, gn + p * C, pw + t * C, C);
        if (dwn) window::add_mul(dwn + t * C, gn + p * C, xn + xi * C, C);
      });
    });
    if (nw.requires_grad) add_column_sums(nw.grad_buffer().data(), dw_part.data(), B, taps * C);
  };
  return make_result(std::move(out), "depthwise_conv2d", std::move(inputs), std::move(bwd));
}

}  // namespace kiln
