// The multiply-accumulate ops Dense, Conv and Depthwise: the builder's aligned weights, accumulator grid and
// exact output ranges, and the interpreter's kernels, the deployed model's hot path. Dense and Conv run as a
// float or double matrix product (Eigen) where partial_bound proves it exact, else as int64 rows; Depthwise
// by its definition (Op::for_each_term).
#include <Eigen/Core>
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <type_traits>
#include <vector>

#include "compress/program.h"
#include "compress/program_build.h"

namespace kiln::compress {

using program_build::finest;

// Aligned weights and bias, and the exact output range and partial-sum bound of a multiply-accumulate.
void ProgramBuilder::mac(const std::string& name, const MacParams& s) {
  Op op = make(s.dense ? Op::kDense : (s.geom.depthwise ? Op::kDepthwise : Op::kConv), name);
  const Buffer& x = current();
  KILN_CHECK(shape_numel(s.in_shape) == x.size, "'" + name + "': input of " +
                                                    std::to_string(shape_numel(s.in_shape)) +
                                                    " values on a buffer of " + std::to_string(x.size));
  op.n_out = s.out_shape.back();
  op.n_in = s.dense ? s.in_shape.back() : (s.geom.depthwise ? 1 : s.in_shape.back());
  op.rows = s.dense ? shape_numel(s.in_shape) / op.n_in : 1;
  if (!s.dense) op.win = window_of(s.in_shape, s.out_shape, s.geom);
  // Grids from the nonzero codes only (a pruned weight or bias is 0 on any grid): weights on w_frac, the
  // accumulator on F = max(x.frac + w_frac, finest bias), so every product and bias is exact on it.
  op.w_frac = finest(s.w_code, s.w_frac);
  const int F = std::max(x.frac + op.w_frac, s.b_code.empty() ? -1000 : finest(s.b_code, s.b_frac));
  op.prod_shift = F - x.frac - op.w_frac;
  if (F >= 48 || op.prod_shift >= 48)
    throw InputError("'" + name + "': accumulator grid 2^-" + std::to_string(F) +
                     " too fine for 64-bit integers");
  const program_build::Bounds ck(name, "accumulator");
  for (size_t j = 0; j < s.w_code.size(); ++j) {
    op.weights.push_back(s.w_code[j] == 0 ? 0 : ck.mul(s.w_code[j], int64_t{1} << (op.w_frac - s.w_frac[j])));
    op.weight_bits.push_back(
        s.w_code[j] == 0 ? 0 : std::max(0, s.w_types[j].k + s.w_types[j].i + s.w_types[j].f));
  }
  op.bias.assign(static_cast<size_t>(op.n_out), 0);
  for (size_t n = 0; n < s.b_code.size(); ++n)
    if (s.b_code[n] != 0) op.bias[n] = ck.mul(s.b_code[n], int64_t{1} << (F - s.b_frac[n]));
  Buffer y;
  y.shape = s.out_shape, y.size = shape_numel(s.out_shape), y.frac = F;
  y.lo.assign(static_cast<size_t>(y.size), 0), y.hi.assign(static_cast<size_t>(y.size), 0);
  // Interval arithmetic per output element (exact bounds over all inputs the previous buffer can hold). Every
  // partial sum lies within abs (the sum of the terms' largest magnitudes): abs below 2^62 bounds them all.
  const int64_t ps = int64_t{1} << op.prod_shift;
  for (int64_t o = 0; o < y.size; ++o) {
    int64_t lo = op.bias[static_cast<size_t>(o % op.n_out)], hi = lo, abs = std::llabs(lo);
    op.for_each_term(o, [&](int64_t xi, int64_t wi) {
      const int64_t w = op.weights[static_cast<size_t>(wi)];
      if (w == 0) return;
      const int64_t a = ck.mul(ck.mul(x.lo[static_cast<size_t>(xi)], w), ps),
                    b = ck.mul(ck.mul(x.hi[static_cast<size_t>(xi)], w), ps);
      lo = ck.add(lo, std::min(a, b)), hi = ck.add(hi, std::max(a, b));
      abs = ck.add(abs, std::max(std::llabs(a), std::llabs(b)));
    });
    y.lo[static_cast<size_t>(o)] = lo, y.hi[static_cast<size_t>(o)] = hi;
    op.partial_bound = std::max(op.partial_bound, abs);
  }
  push(std::move(op), std::move(y));
}

// Dense and Conv as one matrix product C [positions, n_out] = A [positions, K] W [K, n_out]: for Dense the
// rows of x (K = n_in), for Conv the kernel window of each output position (K = KH KW C in the weights' order
// (tap, c), padded taps 0). In float or double where partial_bound proves it exact (Op::weights_f), else in
// int64: integer sums are exact in any order, so both give the element-by-element definition (for_each_term),
// which Depthwise still runs.
namespace {
// int64 <-> double in a few int64 and double operations that vectorise (AVX2 converts neither way), exact
// for |v| < 2^51: v + 1.5 * 2^52 as a double holds v in its low mantissa bits.
constexpr uint64_t kMagicBits = 0x4338000000000000;  // 1.5 * 2^52
inline double small_to_double(int64_t v) {
  const uint64_t b = static_cast<uint64_t>(v) + kMagicBits;
  double d;
  std::memcpy(&d, &b, sizeof d);
  return d - 0x1.8p52;
}
inline int64_t small_to_int(double d) {  // d an integer, |d| < 2^51
  d += 0x1.8p52;
  uint64_t b;
  std::memcpy(&b, &d, sizeof b);
  return static_cast<int64_t>(b - kMagicBits);
}

// dst[i] = T(src[i]) for n codes: through small_to_double when every code is below 2^51 (the same value:
// exact in double, then one rounding to T as the direct conversion), else directly.
template <class T>
inline void codes_to(T* __restrict dst, const int64_t* __restrict src, int64_t n, bool small) {
  if (small) {
    for (int64_t i = 0; i < n; ++i) dst[i] = static_cast<T>(small_to_double(src[i]));
  } else {
    for (int64_t i = 0; i < n; ++i) dst[i] = static_cast<T>(src[i]);
  }
}

template <class T>
void run_mac_gemm(const Op& op, const std::vector<T>& w, const std::vector<int64_t>& x,
                  std::vector<int64_t>& y) {
  using Mat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  // Positions of every sample in the batch, one after the other (a dense layer's rows, a convolution's output
  // pixels), as one product.
  const int64_t n_out = op.n_out, positions = static_cast<int64_t>(y.size()) / n_out;
  const int64_t K = static_cast<int64_t>(w.size()) / n_out;
  thread_local std::vector<T> a, c;  // A [positions, K], C [positions, n_out]
  a.resize(static_cast<size_t>(positions * K)), c.resize(static_cast<size_t>(positions * n_out));
  const bool small = op.x_below_2_51;
  if (op.kind == Op::kDense) {
    codes_to(a.data(), x.data(), static_cast<int64_t>(a.size()), small);
  } else {
    const Window& wn = op.win;
    const int64_t per = wn.OH * wn.OW, in_size = wn.H * wn.W * wn.C;  // per sample
    if (!wn.padded()) {  // each kernel row of a window is one run of KW * C codes
      const int64_t run = wn.KW * wn.C;
      for (int64_t pos = 0; pos < positions; ++pos) {
        const int64_t q = pos % per, oh = q / wn.OW, ow = q % wn.OW;
        const int64_t* xs = x.data() + pos / per * in_size;
        for (int64_t kh = 0; kh < wn.KH; ++kh)
          codes_to(a.data() + pos * K + kh * run, xs + ((oh * wn.SH + kh) * wn.W + ow * wn.SW) * wn.C, run,
                   small);
      }
    } else {
      for (int64_t pos = 0; pos < positions; ++pos) {
        T* row = a.data() + pos * K;
        std::fill(row, row + K, T{0});
        const int64_t q = pos % per;
        const int64_t* xs = x.data() + pos / per * in_size;
        wn.for_each_tap(q / wn.OW, q % wn.OW, [&](int64_t tap, int64_t base) {
          codes_to(row + tap * wn.C, xs + base, wn.C, small);
        });
      }
    }
  }
  Eigen::Map<Mat>(c.data(), positions, n_out).noalias() =
      Eigen::Map<const Mat>(a.data(), positions, K) * Eigen::Map<const Mat>(w.data(), K, n_out);
  // y = bias + sum * 2^prod_shift; the sums are integers below 2^24 in float (2^53 in double).
  const int shift = op.prod_shift;
  const int64_t* __restrict bias = op.bias.data();
  const T* __restrict cv = c.data();
  int64_t* __restrict yv = y.data();
  for (int64_t pos = 0; pos < positions; ++pos)
    for (int64_t n = 0; n < n_out; ++n) {
      const T v = cv[pos * n_out + n];
      const int64_t s = std::is_same_v<T, float> ? small_to_int(v) : static_cast<int64_t>(v);
      yv[pos * n_out + n] = bias[n] + static_cast<int64_t>(static_cast<uint64_t>(s) << shift);
    }
}

// The int64 fallback, one output position at a time: for each nonzero input code, acc[n] += x * w[row, n].
void run_mac_rows(const Op& op, const std::vector<int64_t>& x, std::vector<int64_t>& y) {
  const int64_t n_out = op.n_out, positions = static_cast<int64_t>(y.size()) / n_out;
  const int64_t scale = int64_t{1} << op.prod_shift;
  std::vector<int64_t> acc(static_cast<size_t>(n_out));
  auto add_row = [&](int64_t xv, int64_t wrow) {
    if (xv == 0) return;
    const int64_t* __restrict wr = op.weights.data() + wrow * n_out;
    int64_t* __restrict ac = acc.data();
    for (int64_t n = 0; n < n_out; ++n) ac[n] += xv * wr[n];
  };
  for (int64_t pos = 0; pos < positions; ++pos) {
    std::fill(acc.begin(), acc.end(), int64_t{0});
    if (op.kind == Op::kDense) {
      for (int64_t j = 0; j < op.n_in; ++j) add_row(x[static_cast<size_t>(pos * op.n_in + j)], j);
    } else {
      const Window& wn = op.win;
      const int64_t q = pos % (wn.OH * wn.OW), xs = pos / (wn.OH * wn.OW) * (wn.H * wn.W * wn.C);
      wn.for_each_tap(q / wn.OW, q % wn.OW, [&](int64_t tap, int64_t base) {
        for (int64_t ch = 0; ch < wn.C; ++ch)
          add_row(x[static_cast<size_t>(xs + base + ch)], tap * wn.C + ch);
      });
    }
    for (int64_t n = 0; n < n_out; ++n)
      y[static_cast<size_t>(pos * n_out + n)] =
          op.bias[static_cast<size_t>(n)] + acc[static_cast<size_t>(n)] * scale;
  }
}

}  // namespace

void run_mac(const Program& p, const Op& op, Codes& buf) {
  const Buffer& yb = p.buffers[static_cast<size_t>(op.out)];
  const std::vector<int64_t>& x = buf[static_cast<size_t>(op.in)];
  std::vector<int64_t>& y = buf[static_cast<size_t>(op.out)];
  y.resize(static_cast<size_t>(buf.samples * yb.size));  // every element is written below
  if (op.kind == Op::kDense || op.kind == Op::kConv) {
    if (!op.weights_f.empty()) return run_mac_gemm(op, op.weights_f, x, y);
    if (!op.weights_d.empty()) return run_mac_gemm(op, op.weights_d, x, y);
    return run_mac_rows(op, x, y);
  }
  const int64_t x_size = p.buffers[static_cast<size_t>(op.in)].size;
  for (int64_t s = 0; s < buf.samples; ++s)
    for (int64_t o = 0; o < yb.size; ++o) {
      int64_t acc = 0;
      op.for_each_term(o, [&](int64_t xi, int64_t wi) {
        acc += x[static_cast<size_t>(s * x_size + xi)] * op.weights[static_cast<size_t>(wi)];
      });
      y[static_cast<size_t>(s * yb.size + o)] =
          op.bias[static_cast<size_t>(o % op.n_out)] + acc * (int64_t{1} << op.prod_shift);
    }
}

}  // namespace kiln::compress
