// Sliding-window geometry shared by conv.cc and pool.cc (internal: the ops themselves are declared in ops.h).
// One Axis per spatial dimension; for_each_tap walks the in-bounds taps of every output position.
#pragma once
#include <algorithm>
#include <cstdint>

#include "engine/ops.h"

namespace kiln::window {

// One spatial axis: `in` input positions, kernel (or pool) size `k`, stride `s`, `out` output positions and
// `pad` padded positions before the first input (TensorFlow "same"/"valid" rules, see conv_out_size).
struct Axis {
  int64_t in, k, s, out, pad;

  Axis(int64_t in_, int64_t k_, int64_t s_, Padding p)
      : in(in_), k(k_), s(s_), out(conv_out_size(in_, k_, s_, p)), pad(conv_pad_before(in_, k_, s_, p)) {}

  // Output position o reads input first(o) + t for tap t in [0, k). Solving 0 <= first(o) + t < in for t
  // gives the in-bounds taps [lo(o), hi(o)), so the loops skip padding without a test per element.
  // Under TF rules the total padding is at most k - 1, so every window holds at least one input: lo < hi.
  int64_t first(int64_t o) const { return o * s - pad; }
  int64_t lo(int64_t o) const { return std::max<int64_t>(0, -first(o)); }
  int64_t hi(int64_t o) const { return std::min<int64_t>(k, in - first(o)); }
  // Every window lies inside the input (no padding tap): output o reads o * s + t for every tap t.
  bool inside() const { return pad == 0 && first(out - 1) + k <= in; }
};

// Calls f(p, xi, t) for every output pixel p = oh * OW + ow of one sample and every in-bounds tap
// t = kh * KW + kw of its window, where xi = ih * W + iw is the input pixel that tap reads. Taps are visited
// kh-major, so "first" in a window means first in row-major order. Callers scale p, xi, t by the channel
// count.
template <class Fn>
void for_each_tap(const Axis& ah, const Axis& aw, Fn&& f) {
  for (int64_t oh = 0, p = 0; oh < ah.out; ++oh) {
    const int64_t kh0 = ah.lo(oh), kh1 = ah.hi(oh), ih0 = ah.first(oh);
    for (int64_t ow = 0; ow < aw.out; ++ow, ++p) {
      const int64_t kw0 = aw.lo(ow), kw1 = aw.hi(ow), iw0 = aw.first(ow);
      for (int64_t kh = kh0; kh < kh1; ++kh)
        for (int64_t kw = kw0; kw < kw1; ++kw) f(p, (ih0 + kh) * aw.in + iw0 + kw, kh * aw.k + kw);
    }
  }
}

// Channel-run kernels for the window loops: y[i] += a[i] * b[i] and y[i] += a[i] * s over n channels.
// __restrict (the buffers never overlap) lets the compiler vectorise them.
inline void add_mul(float* __restrict y, const float* __restrict a, const float* __restrict b, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += a[i] * b[i];
}
inline void add_scaled(float* __restrict y, const float* __restrict a, float s, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += a[i] * s;
}

}  // namespace kiln::window
