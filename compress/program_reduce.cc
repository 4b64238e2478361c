// The ops that combine several elements of a buffer into one, or keep part of it: max and average pooling
// over windows (padding never takes part; compress/avg_pool.h), the exact sum of squares of the whole buffer,
// and the slice of its leading values (a VAE's mu at inference).
#include <algorithm>
#include <cstdlib>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "compress/program.h"
#include "compress/program_build.h"

namespace kiln::compress {

using program_build::uniform_buffer;

namespace {

// A pooling op's window over the current buffer, and its output buffer with the range of each element from
// fold(lo, hi, count) over the window's input ranges (count: the real inputs).
template <class Fold>
Buffer pooled(const std::string& name, const Buffer& x, const Shape& in_shape, const Shape& out_shape,
              const nn::Geometry& g, Op* op, Fold&& fold) {
  KILN_CHECK(shape_numel(in_shape) == x.size, "'" + name + "': pooling input of " +
                                                  std::to_string(shape_numel(in_shape)) +
                                                  " values on a buffer of " + std::to_string(x.size));
  op->win = window_of(in_shape, out_shape, g);
  Buffer y;
  y.shape = out_shape, y.size = shape_numel(out_shape), y.frac = x.frac;
  const Window& w = op->win;
  for (int64_t o = 0; o < y.size; ++o) {
    const int64_t c = o % w.C, pos = o / w.C;
    std::vector<int64_t> lo, hi;
    w.for_each_tap(pos / w.OW, pos % w.OW, [&](int64_t, int64_t base) {
      lo.push_back(x.lo[static_cast<size_t>(base + c)]), hi.push_back(x.hi[static_cast<size_t>(base + c)]);
    });
    auto [l, h] = fold(lo, hi);
    y.lo.push_back(l), y.hi.push_back(h);
  }
  return y;
}

// A pooling op's interpreter over the real inputs of each window (padding never takes part), all channels of
// an output position at once: y[pos, c] = finish(fold over the taps of x[tap, c], count of real inputs).
// The first real tap is copied: fold(init, x) == x for both folds (max from INT64_MIN, a sum from 0), so
// neither a fill of y nor a fold with its start value is needed (every window holds a real input).
template <class Fold, class Finish>
void run_pool(const Program& p, const Op& op, Codes& buf, Fold&& fold, Finish&& finish) {
  const Buffer& yb = p.buffers[static_cast<size_t>(op.out)];
  const std::vector<int64_t>& x = buf[static_cast<size_t>(op.in)];
  std::vector<int64_t>& y = buf[static_cast<size_t>(op.out)];
  const Window& w = op.win;
  const int64_t per = yb.size / w.C, x_size = w.H * w.W * w.C;  // output positions and inputs per sample
  y.resize(static_cast<size_t>(buf.samples * yb.size));
  if (!w.padded()) {  // every tap real: plain loops over the windows, no per-tap bounds or index division
    const int64_t C = w.C, count = w.KH * w.KW;
    for (int64_t s = 0; s < buf.samples; ++s)
      for (int64_t oh = 0; oh < w.OH; ++oh)
        for (int64_t ow = 0; ow < w.OW; ++ow) {
          int64_t* __restrict yr = y.data() + ((s * w.OH + oh) * w.OW + ow) * C;
          const int64_t* xw = x.data() + s * x_size + (oh * w.SH * w.W + ow * w.SW) * C;  // tap (0, 0)
          std::copy_n(xw, C, yr);
          for (int64_t kh = 0; kh < w.KH; ++kh)
            for (int64_t kw = kh == 0 ? 1 : 0; kw < w.KW; ++kw) {
              const int64_t* __restrict xr = xw + (kh * w.W + kw) * C;
              for (int64_t c = 0; c < C; ++c) yr[c] = fold(yr[c], xr[c]);
            }
          for (int64_t c = 0; c < C; ++c) yr[c] = finish(yr[c], count);
        }
    return;
  }
  for (int64_t pos = 0; pos < buf.samples * per; ++pos) {
    int64_t* __restrict yr = y.data() + pos * w.C;
    const int64_t* xs = x.data() + pos / per * x_size;
    int64_t count = 0;
    w.for_each_tap(pos % per / w.OW, pos % per % w.OW, [&](int64_t, int64_t base) {
      const int64_t* __restrict xr = xs + base;
      if (count++ == 0)
        std::copy_n(xr, w.C, yr);
      else
        for (int64_t c = 0; c < w.C; ++c) yr[c] = fold(yr[c], xr[c]);
    });
    for (int64_t c = 0; c < w.C; ++c) yr[c] = finish(yr[c], count);
  }
}

}  // namespace

void ProgramBuilder::max_pool(const std::string& name, const Shape& in_shape, const Shape& out_shape,
                              const nn::Geometry& g) {
  Op op = make(Op::kMaxPool, name);
  Buffer y = pooled(name, current(), in_shape, out_shape, g, &op, [](const auto& lo, const auto& hi) {
    return std::make_pair(*std::max_element(lo.begin(), lo.end()), *std::max_element(hi.begin(), hi.end()));
  });  // padding never wins
  push(std::move(op), std::move(y));
}

void run_max_pool(const Program& p, const Op& op, Codes& buf) {
  run_pool(
      p, op, buf, [](int64_t a, int64_t b) { return std::max(a, b); }, [](int64_t v, int64_t) { return v; });
}

// trunc(window sum / real inputs) on the input's grid (compress/avg_pool.h).
void ProgramBuilder::avg_pool(const std::string& name, const Shape& in_shape, const Shape& out_shape,
                              const nn::Geometry& g) {
  Op op = make(Op::kAvgPool, name);
  const program_build::Bounds ck(name, "window sum");
  Buffer y = pooled(name, current(), in_shape, out_shape, g, &op, [&](const auto& lo, const auto& hi) {
    const int64_t n = static_cast<int64_t>(lo.size());  // trunc(sum / n) is monotone in the sum
    int64_t l = 0, h = 0;
    for (size_t t = 0; t < lo.size(); ++t) l = ck.add(l, lo[t]), h = ck.add(h, hi[t]);
    return std::make_pair(l / n, h / n);
  });
  push(std::move(op), std::move(y));
}

void run_avg_pool(const Program& p, const Op& op, Codes& buf) {
  run_pool(
      p, op, buf, [](int64_t a, int64_t b) { return a + b; },
      [](int64_t sum, int64_t count) { return sum / count; });  // toward zero
}

// A copy of the leading values: the buffer keeps its grid and its elements their ranges.
void ProgramBuilder::slice(const std::string& name, const Shape& shape) {
  Op op = make(Op::kSlice, name);
  const Buffer& x = current();
  Buffer y;
  y.shape = shape, y.size = shape_numel(shape), y.frac = x.frac;
  KILN_CHECK(y.size <= x.size, "'" + name + "': a slice of " + std::to_string(y.size) +
                                   " values from a buffer of " + std::to_string(x.size));
  y.lo.assign(x.lo.begin(), x.lo.begin() + y.size), y.hi.assign(x.hi.begin(), x.hi.begin() + y.size);
  op.n_in = x.size, op.n_out = y.size;
  push(std::move(op), std::move(y));
}

void run_slice(const Program&, const Op& op, Codes& buf) {
  const std::vector<int64_t>& x = buf[static_cast<size_t>(op.in)];
  std::vector<int64_t>& y = buf[static_cast<size_t>(op.out)];
  y.resize(static_cast<size_t>(buf.samples * op.n_out));
  for (int64_t s = 0; s < buf.samples; ++s)
    std::copy_n(x.begin() + s * op.n_in, op.n_out, y.begin() + s * op.n_out);
}

// Every square is exact on the grid 2^-(2 x.frac) and so is their sum: the range of x^2 over [lo, hi] is
// [0, max(lo^2, hi^2)] when the interval holds 0, else between the squares of its ends.
void ProgramBuilder::sum_squares(const std::string& name) {
  Op op = make(Op::kSumSquares, name);
  const Buffer& x = current();
  op.n_in = x.size;
  if (2 * x.frac >= 48)
    throw InputError("'" + name + "': sum of squares on 2^-" + std::to_string(2 * x.frac) + ", too fine");
  constexpr int64_t kMax = int64_t{1} << 62;
  int64_t lo = 0, hi = 0;
  for (int64_t e = 0; e < x.size; ++e) {
    const int64_t a = x.lo[static_cast<size_t>(e)], b = x.hi[static_cast<size_t>(e)];
    const int64_t top = std::max(std::llabs(a), std::llabs(b));
    if (top >= (int64_t{1} << 31) || top * top > kMax - hi)
      throw InputError("'" + name + "': the sum of squares of " + std::to_string(x.size) +
                       " inputs of up to " + std::to_string(signed_bits(x.min(), x.max())) +
                       " bits exceeds 62 bits");
    lo += a <= 0 && b >= 0 ? 0 : std::min(a * a, b * b), hi += top * top;
  }
  op.partial_bound = hi;  // the terms are >= 0: every partial sum lies in [0, hi]
  Buffer y = uniform_buffer({1}, 2 * x.frac, lo, hi);
  push(std::move(op), std::move(y));
}

void run_sum_squares(const Program&, const Op& op, Codes& buf) {
  const std::vector<int64_t>& x = buf[static_cast<size_t>(op.in)];
  std::vector<int64_t>& y = buf[static_cast<size_t>(op.out)];
  y.resize(static_cast<size_t>(buf.samples));
  for (int64_t s = 0; s < buf.samples; ++s) {
    const int64_t* xs = x.data() + s * op.n_in;
    int64_t acc = 0;
    for (int64_t e = 0; e < op.n_in; ++e) acc += xs[e] * xs[e];
    y[static_cast<size_t>(s)] = acc;
  }
}

}  // namespace kiln::compress
