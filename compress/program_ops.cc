// The ops of the integer program, one section per kind: the ProgramBuilder method that appends the op with
// the exact value range of the buffer it writes (interval arithmetic over every input the previous buffer can
// hold; the ranges size the storage types of the generated code and bound its accumulators), then its
// interpreter function (registered in KILN_OP_KINDS), which the deployed model runs and codegen/ prints.
#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <type_traits>

#include "compress/layer_norm_fixed.h"
#include "compress/program.h"

namespace kiln::compress {

namespace {

// The types of a quantize op, compressed to uniform / per-channel / per-element.
TypeTable make_table(const std::vector<FixedType>& types, int64_t channels) {
  KILN_CHECK(!types.empty(), "quantize op without types");
  TypeTable t;
  t.k = types[0].k, t.round = types[0].round, t.overflow = types[0].overflow;
  if (t.round == Round::kStochastic) t.round = Round::kRnd;  // inference rounds to nearest
  auto same = [](const FixedType& a, const FixedType& b) { return a.i == b.i && a.f == b.f; };
  bool uniform = true, channel = true;
  for (size_t e = 0; e < types.size(); ++e) {
    uniform = uniform && same(types[e], types[0]);
    channel = channel && same(types[e], types[e % static_cast<size_t>(channels)]);
  }
  size_t n = uniform ? 1 : channel ? static_cast<size_t>(channels) : types.size();
  t.pattern = uniform ? TypeTable::kUniform : channel ? TypeTable::kChannel : TypeTable::kElement;
  for (size_t j = 0; j < n; ++j) {
    t.f.push_back(types[j].f);
    t.m.push_back(types[j].i + types[j].f);
  }
  return t;
}

// The code range of entry j's type on a grid of `frac` bits.
void type_range(const TypeTable& t, size_t j, int frac, int64_t* lo, int64_t* hi) {
  if (t.width(j) <= 0) {
    *lo = *hi = 0;
    return;
  }
  const int m = t.m[j];
  const int64_t top = m >= 0 ? (int64_t{1} << m) - 1 : 0, bottom = t.k ? -(int64_t{1} << std::max(m, 0)) : 0;
  const int64_t scale = int64_t{1} << (frac - t.f[j]);
  *lo = bottom * scale, *hi = top * scale;
}

Buffer quantized_buffer(const std::string& name, const Shape& shape, const TypeTable& t) {
  Buffer b;
  b.shape = shape, b.size = shape_numel(shape);
  // The grid is the finest non-pruned type's (a pruned element is 0 on any grid).
  b.frac = 0;
  bool any = false;
  for (size_t j = 0; j < t.f.size(); ++j)
    if (t.width(j) > 0) b.frac = any ? std::max(b.frac, t.f[j]) : t.f[j], any = true;
  // Every code shifted onto the grid must stay well inside int64 (the generated code checks 32 bits itself).
  for (size_t j = 0; j < t.f.size(); ++j)
    if (t.width(j) > 0 && (b.frac >= 40 || std::max(t.m[j], 0) + b.frac - t.f[j] > 60))
      throw InputError("'" + name + "': fixed-point type with " + std::to_string(t.m[j] - t.f[j]) +
                       " integer and " + std::to_string(t.f[j]) +
                       " fractional bits does not fit the integer grid 2^-" + std::to_string(b.frac) +
                       " of its tensor in 60 bits");
  b.lo.resize(static_cast<size_t>(b.size)), b.hi.resize(static_cast<size_t>(b.size));
  for (int64_t e = 0; e < b.size; ++e)
    type_range(t, static_cast<size_t>(t.entry(e, shape.back())), b.frac, &b.lo[static_cast<size_t>(e)],
               &b.hi[static_cast<size_t>(e)]);
  return b;
}

// The finest grid of the nonzero codes (a pruned weight or bias is 0 on any grid).
int finest(const std::vector<int64_t>& code, const std::vector<int>& frac) {
  int f = 0;
  bool any = false;
  for (size_t j = 0; j < code.size(); ++j)
    if (code[j] != 0) f = any ? std::max(f, frac[j]) : frac[j], any = true;
  return f;
}

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
template <class Fold, class Finish>
void run_pool(const Program& p, const Op& op, Codes& buf, int64_t init, Fold&& fold, Finish&& finish) {
  const Buffer& yb = p.buffers[static_cast<size_t>(op.out)];
  const std::vector<int64_t>& x = buf[static_cast<size_t>(op.in)];
  std::vector<int64_t>& y = buf[static_cast<size_t>(op.out)];
  const Window& w = op.win;
  y.assign(static_cast<size_t>(yb.size), init);
  for (int64_t pos = 0; pos < yb.size / w.C; ++pos) {
    int64_t* __restrict yr = y.data() + pos * w.C;
    int64_t count = 0;
    w.for_each_tap(pos / w.OW, pos % w.OW, [&](int64_t, int64_t base) {
      const int64_t* __restrict xr = x.data() + base;
      for (int64_t c = 0; c < w.C; ++c) yr[c] = fold(yr[c], xr[c]);
      ++count;
    });
    for (int64_t c = 0; c < w.C; ++c) yr[c] = finish(yr[c], count);
  }
}

// A buffer of the given shape on `frac` whose every element lies in [lo, hi].
Buffer uniform_buffer(const Shape& shape, int frac, int64_t lo, int64_t hi) {
  Buffer b;
  b.shape = shape, b.size = shape_numel(shape), b.frac = frac;
  b.lo.assign(static_cast<size_t>(b.size), lo), b.hi.assign(static_cast<size_t>(b.size), hi);
  return b;
}

}  // namespace

Op ProgramBuilder::make(Op::Kind kind, const std::string& name) const {
  KILN_CHECK(started() || kind == Op::kQuantize, "'" + name + "': an op before the model input");
  Op op;
  op.kind = kind, op.name = name, op.in = op.out = cur_;
  return op;
}

void ProgramBuilder::push(Op op, Buffer y) {
  p_.buffers.push_back(std::move(y));
  op.out = cur_ = static_cast<int>(p_.buffers.size()) - 1;
  p_.ops.push_back(std::move(op));
}

void ProgramBuilder::in_place(Op op) {
  if (std::find(kept_.begin(), kept_.end(), cur_) != kept_.end())
    throw InputError("'" + op.name +
                     "': a residual body that starts with an activation needs the block's input " +
                     "quantized (its add's quantizers enabled), so that the kept input is a copy");
  p_.ops.push_back(std::move(op));
}

void ProgramBuilder::input(const Shape& shape, const std::vector<FixedType>& types) {
  KILN_CHECK(!started(), "the model input is quantized twice");
  p_.input_shape = shape, p_.input_types = make_table(types, shape.back());
  p_.buffers.push_back(quantized_buffer("input", shape, p_.input_types));
  p_.input_lo = p_.buffers.back().lo, p_.input_hi = p_.buffers.back().hi;
  cur_ = 0;
}

void ProgramBuilder::quantize(const std::string& name, const std::vector<FixedType>& types) {
  Op op = make(Op::kQuantize, name);
  op.types = make_table(types, current().shape.back());
  Buffer y = quantized_buffer(name, current().shape, op.types);
  push(std::move(op), std::move(y));
}

namespace {
// The requantizers of a quantize op's entries, from buffer xb's grid onto yb's.
RequantizeRows requantizers_of(const Op& op, const Buffer& xb, const Buffer& yb) {
  std::vector<Requantizer> r;
  r.reserve(op.types.f.size());
  for (size_t j = 0; j < op.types.f.size(); ++j)
    r.emplace_back(xb.frac, op.types.type(j), op.types.width(j) > 0 ? yb.frac - op.types.f[j] : 0);
  return RequantizeRows(std::move(r));
}
}  // namespace

void run_quantize(const Program& p, const Op& op, Codes& buf) {
  const Buffer &xb = p.buffers[static_cast<size_t>(op.in)], &yb = p.buffers[static_cast<size_t>(op.out)];
  const std::vector<int64_t>& x = buf[static_cast<size_t>(op.in)];
  std::vector<int64_t>& y = buf[static_cast<size_t>(op.out)];
  y.resize(static_cast<size_t>(yb.size));
  if (!op.requantizers.empty()) return op.requantizers.run(x.data(), y.data(), yb.size);
  requantizers_of(op, xb, yb).run(x.data(), y.data(), yb.size);  // a program not from finish()
}

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
  for (size_t j = 0; j < s.w_code.size(); ++j) {
    op.weights.push_back(s.w_code[j] == 0 ? 0 : s.w_code[j] * (int64_t{1} << (op.w_frac - s.w_frac[j])));
    op.weight_bits.push_back(
        s.w_code[j] == 0 ? 0 : std::max(0, s.w_types[j].k + s.w_types[j].i + s.w_types[j].f));
  }
  op.bias.assign(static_cast<size_t>(op.n_out), 0);
  for (size_t n = 0; n < s.b_code.size(); ++n)
    if (s.b_code[n] != 0) op.bias[n] = s.b_code[n] * (int64_t{1} << (F - s.b_frac[n]));
  Buffer y;
  y.shape = s.out_shape, y.size = shape_numel(s.out_shape), y.frac = F;
  y.lo.assign(static_cast<size_t>(y.size), 0), y.hi.assign(static_cast<size_t>(y.size), 0);
  // Interval arithmetic per output element (exact bounds over all inputs the previous buffer can hold).
  const int64_t ps = int64_t{1} << op.prod_shift;
  for (int64_t o = 0; o < y.size; ++o) {
    int64_t lo = op.bias[static_cast<size_t>(o % op.n_out)], hi = lo, abs = std::llabs(lo);
    op.for_each_term(o, [&](int64_t xi, int64_t wi) {
      const int64_t w = op.weights[static_cast<size_t>(wi)];
      if (w == 0) return;
      const int64_t a = x.lo[static_cast<size_t>(xi)] * w * ps, b = x.hi[static_cast<size_t>(xi)] * w * ps;
      lo += std::min(a, b), hi += std::max(a, b), abs += std::max(std::llabs(a), std::llabs(b));
    });
    y.lo[static_cast<size_t>(o)] = lo, y.hi[static_cast<size_t>(o)] = hi;
    op.partial_bound = std::max(op.partial_bound, abs);
  }
  if (op.partial_bound >= (int64_t{1} << 62))
    throw InputError("'" + name + "': accumulator wider than 62 bits");
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
  const int64_t n_out = op.n_out, positions = static_cast<int64_t>(y.size()) / n_out;
  const int64_t K = static_cast<int64_t>(w.size()) / n_out;
  thread_local std::vector<T> a, c;  // A [positions, K], C [positions, n_out]
  a.resize(static_cast<size_t>(positions * K)), c.resize(static_cast<size_t>(positions * n_out));
  const bool small = op.x_below_2_51;
  if (op.kind == Op::kDense) {
    codes_to(a.data(), x.data(), static_cast<int64_t>(a.size()), small);
  } else {
    const Window& wn = op.win;
    if (!wn.padded()) {  // each kernel row of a window is one run of KW * C codes
      const int64_t run = wn.KW * wn.C;
      for (int64_t pos = 0; pos < positions; ++pos) {
        const int64_t oh = pos / wn.OW, ow = pos % wn.OW;
        for (int64_t kh = 0; kh < wn.KH; ++kh)
          codes_to(a.data() + pos * K + kh * run, x.data() + ((oh * wn.SH + kh) * wn.W + ow * wn.SW) * wn.C,
                   run, small);
      }
    } else {
      for (int64_t pos = 0; pos < positions; ++pos) {
        T* row = a.data() + pos * K;
        std::fill(row, row + K, T{0});
        wn.for_each_tap(pos / wn.OW, pos % wn.OW, [&](int64_t tap, int64_t base) {
          codes_to(row + tap * wn.C, x.data() + base, wn.C, small);
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
      const int64_t C = op.win.C;
      op.win.for_each_tap(pos / op.win.OW, pos % op.win.OW, [&](int64_t tap, int64_t base) {
        for (int64_t ch = 0; ch < C; ++ch) add_row(x[static_cast<size_t>(base + ch)], tap * C + ch);
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
  y.assign(static_cast<size_t>(yb.size), 0);
  if (op.kind == Op::kDense || op.kind == Op::kConv) {
    if (!op.weights_f.empty()) return run_mac_gemm(op, op.weights_f, x, y);
    if (!op.weights_d.empty()) return run_mac_gemm(op, op.weights_d, x, y);
    return run_mac_rows(op, x, y);
  }
  for (int64_t o = 0; o < yb.size; ++o) {
    int64_t acc = 0;
    op.for_each_term(o, [&](int64_t xi, int64_t wi) {
      acc += x[static_cast<size_t>(xi)] * op.weights[static_cast<size_t>(wi)];
    });
    y[static_cast<size_t>(o)] =
        op.bias[static_cast<size_t>(o % op.n_out)] + acc * (int64_t{1} << op.prod_shift);
  }
}

// An in-place op narrows the value range to [lo', hi'] per element; the storage keeps the old extremes.
template <class F>
void narrow_in_place(Buffer& b, F&& clamp) {
  b.held_min = b.min(), b.held_max = b.max();
  for (size_t e = 0; e < b.lo.size(); ++e) b.lo[e] = clamp(b.lo[e]), b.hi[e] = clamp(b.hi[e]);
}

void ProgramBuilder::relu(const std::string& name) {
  in_place(make(Op::kRelu, name));
  narrow_in_place(p_.buffers[static_cast<size_t>(cur_)], [](int64_t v) { return std::max<int64_t>(v, 0); });
}

void run_relu(const Program&, const Op& op, Codes& buf) {
  for (auto& v : buf[static_cast<size_t>(op.out)]) v = std::max<int64_t>(v, 0);
}

void ProgramBuilder::hard_tanh(const std::string& name) {
  Buffer& b = p_.buffers[static_cast<size_t>(cur_)];
  if (b.frac < 0 || b.frac > 40)
    throw InputError("'" + name + "': hard tanh needs its input on a grid of 0 to 40 fractional bits, got " +
                     std::to_string(b.frac));
  in_place(make(Op::kHardTanh, name));
  const int64_t one = int64_t{1} << b.frac;
  narrow_in_place(b, [one](int64_t v) { return std::clamp(v, -one, one); });
}

void run_hard_tanh(const Program& p, const Op& op, Codes& buf) {
  const int64_t one = int64_t{1} << p.buffers[static_cast<size_t>(op.out)].frac;
  for (auto& v : buf[static_cast<size_t>(op.out)]) v = std::clamp(v, -one, one);
}

void ProgramBuilder::lut(const std::string& name, const LutSpec& spec) {
  Op op = make(Op::kLut, name);
  const Buffer& x = current();
  op.lut = spec, op.table = lut_table_codes(spec);
  op.lut_shift = lut_index_shift(x.frac, spec);
  Buffer y;
  y.shape = x.shape, y.size = x.size, y.frac = spec.table_type.f;
  const bool gelu = spec.function == LutFunction::kGelu;
  if (gelu) {
    if (x.frac < 0 || x.frac > 40)
      throw InputError("'" + name + "': a gelu table needs its input on 0 to 40 fractional bits, got " +
                       std::to_string(x.frac));
    y.frac = std::max(x.frac, spec.table_type.f);
    op.pass_above = static_cast<int64_t>(std::ldexp(spec.range, x.frac));
    op.table_shift = y.frac - spec.table_type.f, op.pass_shift = y.frac - x.frac;
  }
  // The index is monotone in the input: element e reads entries index(lo) .. index(hi) only.
  for (int64_t e = 0; e < x.size; ++e) {
    const int64_t xl = x.lo[static_cast<size_t>(e)], xh = x.hi[static_cast<size_t>(e)];
    const int a = lut_index_code(xl, x.frac, spec), b = lut_index_code(xh, x.frac, spec);
    auto [lo, hi] = std::minmax_element(op.table.begin() + a, op.table.begin() + b + 1);
    int64_t l = *lo * (int64_t{1} << op.table_shift), h = *hi * (int64_t{1} << op.table_shift);
    if (gelu && xh >= op.pass_above) h = std::max(h, xh * (int64_t{1} << op.pass_shift));
    if (gelu && xl < -op.pass_above) l = std::min<int64_t>(l, 0), h = std::max<int64_t>(h, 0);
    y.lo.push_back(l), y.hi.push_back(h);
  }
  push(std::move(op), std::move(y));
}

void run_lut(const Program& p, const Op& op, Codes& buf) {
  const Buffer &xb = p.buffers[static_cast<size_t>(op.in)], &yb = p.buffers[static_cast<size_t>(op.out)];
  const std::vector<int64_t>& x = buf[static_cast<size_t>(op.in)];
  std::vector<int64_t>& y = buf[static_cast<size_t>(op.out)];
  y.resize(static_cast<size_t>(yb.size));
  const bool gelu = op.lut.function == LutFunction::kGelu;
  for (size_t e = 0; e < y.size(); ++e) {
    if (gelu && x[e] >= op.pass_above)
      y[e] = x[e] * (int64_t{1} << op.pass_shift);
    else if (gelu && x[e] < -op.pass_above)
      y[e] = 0;
    else
      y[e] = op.table[static_cast<size_t>(lut_index_code(x[e], xb.frac, op.lut))] *
             (int64_t{1} << op.table_shift);
  }
}

void ProgramBuilder::softmax(const std::string& name, const SoftmaxLutSpec& spec) {
  Op op = make(Op::kSoftmax, name);
  op.softmax = spec, op.softmax_tables = softmax_tables(spec);
  const Buffer& x = current();
  const int frac = softmax_out_frac(spec);
  Buffer y;
  if (spec.result_type) {
    const FixedType& t = *spec.result_type;
    const int m = t.i + t.f;
    y = uniform_buffer(x.shape, frac, t.k ? -(int64_t{1} << std::max(m, 0)) : 0,
                       m >= 0 ? (int64_t{1} << m) - 1 : 0);
  } else {
    const auto& e = op.softmax_tables.exp;
    const auto& v = op.softmax_tables.inv;
    const int64_t el = *std::min_element(e.begin(), e.end()), eh = *std::max_element(e.begin(), e.end());
    const int64_t vl = *std::min_element(v.begin(), v.end()), vh = *std::max_element(v.begin(), v.end());
    const int64_t p[] = {el * vl, el * vh, eh * vl, eh * vh};
    y = uniform_buffer(x.shape, frac, *std::min_element(p, p + 4), *std::max_element(p, p + 4));
  }
  push(std::move(op), std::move(y));
}

void run_softmax(const Program& p, const Op& op, Codes& buf) {
  const Buffer &xb = p.buffers[static_cast<size_t>(op.in)], &yb = p.buffers[static_cast<size_t>(op.out)];
  const std::vector<int64_t>& x = buf[static_cast<size_t>(op.in)];
  std::vector<int64_t>& y = buf[static_cast<size_t>(op.out)];
  const int64_t lane = yb.shape.back();
  const std::vector<int> frac(static_cast<size_t>(lane), xb.frac);
  y.assign(static_cast<size_t>(yb.size), 0);
  for (int64_t b = 0; b < yb.size; b += lane)
    softmax_codes(op.softmax, op.softmax_tables, &x[static_cast<size_t>(b)], frac.data(), lane,
                  &y[static_cast<size_t>(b)]);
}

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
      p, op, buf, std::numeric_limits<int64_t>::min(), [](int64_t a, int64_t b) { return std::max(a, b); },
      [](int64_t v, int64_t) { return v; });
}

// trunc(window sum / real inputs) on the input's grid (compress/avg_pool.h).
void ProgramBuilder::avg_pool(const std::string& name, const Shape& in_shape, const Shape& out_shape,
                              const nn::Geometry& g) {
  Op op = make(Op::kAvgPool, name);
  Buffer y = pooled(name, current(), in_shape, out_shape, g, &op, [](const auto& lo, const auto& hi) {
    const int64_t n = static_cast<int64_t>(lo.size());  // trunc(sum / n) is monotone in the sum
    return std::make_pair(std::accumulate(lo.begin(), lo.end(), int64_t{0}) / n,
                          std::accumulate(hi.begin(), hi.end(), int64_t{0}) / n);
  });
  push(std::move(op), std::move(y));
}

void run_avg_pool(const Program& p, const Op& op, Codes& buf) {
  run_pool(
      p, op, buf, 0, [](int64_t a, int64_t b) { return a + b; },
      [](int64_t sum, int64_t count) { return sum / count; });  // toward zero
}

void ProgramBuilder::keep(const std::string& name, const std::vector<FixedType>& types) {
  if (types.empty()) {  // the add takes the block's input as it is
    kept_.push_back(cur_);
    return;
  }
  // The add's quantizer on the block's input: a copy requantized into a buffer of its own, while the current
  // buffer goes on into the body.
  Op op = make(Op::kQuantize, name);
  op.types = make_table(types, current().shape.back());
  p_.buffers.push_back(quantized_buffer(name, current().shape, op.types));
  op.out = static_cast<int>(p_.buffers.size()) - 1;
  kept_.push_back(op.out);
  p_.ops.push_back(std::move(op));
}

void ProgramBuilder::add(const std::string& name) {
  KILN_CHECK(!kept_.empty(), "'" + name + "': residual add without its kept input");
  Op op = make(Op::kAdd, name);
  op.in2 = kept_.back();
  kept_.pop_back();
  const Buffer &a = current(), &b = p_.buffers[static_cast<size_t>(op.in2)];
  if (a.size != b.size)
    throw InputError("'" + name + "': residual add of " + std::to_string(a.size) + " and " +
                     std::to_string(b.size) + " values");
  Buffer y;
  y.shape = a.shape, y.size = a.size, y.frac = std::max(a.frac, b.frac);
  if (y.frac - std::min(a.frac, b.frac) >= 30)
    throw InputError("'" + name + "': residual add of grids 2^-" + std::to_string(a.frac) + " and 2^-" +
                     std::to_string(b.frac) + ", too far apart");
  const int64_t sa = int64_t{1} << (y.frac - a.frac), sb = int64_t{1} << (y.frac - b.frac);
  for (int64_t e = 0; e < y.size; ++e) {
    y.lo.push_back(a.lo[static_cast<size_t>(e)] * sa + b.lo[static_cast<size_t>(e)] * sb);
    y.hi.push_back(a.hi[static_cast<size_t>(e)] * sa + b.hi[static_cast<size_t>(e)] * sb);
  }
  push(std::move(op), std::move(y));
}

void run_add(const Program& p, const Op& op, Codes& buf) {
  const Buffer &xb = p.buffers[static_cast<size_t>(op.in)], &yb = p.buffers[static_cast<size_t>(op.out)];
  const std::vector<int64_t>& x = buf[static_cast<size_t>(op.in)];
  std::vector<int64_t>& y = buf[static_cast<size_t>(op.out)];
  const Buffer& b = p.buffers[static_cast<size_t>(op.in2)];
  const std::vector<int64_t>& x2 = buf[static_cast<size_t>(op.in2)];
  y.resize(static_cast<size_t>(yb.size));
  for (size_t e = 0; e < y.size(); ++e)
    y[e] = x[e] * (int64_t{1} << (yb.frac - xb.frac)) + x2[e] * (int64_t{1} << (yb.frac - b.frac));
}

namespace {
// [lo, hi] of a * b for a in [a_lo, a_hi], b in [b_lo, b_hi].
std::pair<int64_t, int64_t> product_range(int64_t a_lo, int64_t a_hi, int64_t b_lo, int64_t b_hi) {
  const int64_t p[] = {a_lo * b_lo, a_lo * b_hi, a_hi * b_lo, a_hi * b_hi};
  return {*std::min_element(p, p + 4), *std::max_element(p, p + 4)};
}
}  // namespace

void ProgramBuilder::attention(const std::string& name, int64_t heads, const SoftmaxLutSpec& spec) {
  const int qkv = cur_;
  const Buffer x = current();
  if (x.shape.size() != 2 || x.shape[1] % (3 * heads) != 0)
    throw InputError("'" + name + "': attention needs [tokens, 3 * features], got " + shape_str(x.shape));
  const int64_t T = x.shape[0], D = x.shape[1] / 3, dh = D / heads;
  if (2 * x.frac >= 48)
    throw InputError("'" + name + "': scores on 2^-" + std::to_string(2 * x.frac) + ", too fine");
  auto at = [&](int64_t i, int64_t col) { return static_cast<size_t>(i * 3 * D + col); };
  Op s = make(Op::kScores, name + ".scores");
  s.rows = T, s.n_out = heads, s.n_in = dh;
  Buffer y;
  y.shape = {heads, T, T}, y.size = heads * T * T, y.frac = 2 * x.frac;
  for (int64_t h = 0; h < heads; ++h)
    for (int64_t i = 0; i < T; ++i)
      for (int64_t j = 0; j < T; ++j) {
        int64_t lo = 0, hi = 0, abs = 0;
        for (int64_t c = h * dh; c < (h + 1) * dh; ++c) {
          auto [a, b] = product_range(x.lo[at(i, c)], x.hi[at(i, c)], x.lo[at(j, D + c)], x.hi[at(j, D + c)]);
          lo += a, hi += b, abs += std::max(std::llabs(a), std::llabs(b));
        }
        y.lo.push_back(lo), y.hi.push_back(hi), s.partial_bound = std::max(s.partial_bound, abs);
      }
  push(std::move(s), std::move(y));
  softmax(name + ".softmax", spec);
  const Buffer& p = current();
  Op c = make(Op::kContext, name + ".context");
  c.in2 = qkv, c.rows = T, c.n_out = heads, c.n_in = dh;
  Buffer z;
  z.shape = {T, D}, z.size = T * D, z.frac = p.frac + x.frac;
  if (z.frac >= 48)
    throw InputError("'" + name + "': context on 2^-" + std::to_string(z.frac) + ", too fine");
  z.lo.assign(static_cast<size_t>(z.size), 0), z.hi.assign(static_cast<size_t>(z.size), 0);
  for (int64_t h = 0; h < heads; ++h)
    for (int64_t i = 0; i < T; ++i)
      for (int64_t cc = h * dh; cc < (h + 1) * dh; ++cc) {
        int64_t lo = 0, hi = 0, abs = 0;
        for (int64_t j = 0; j < T; ++j) {
          const size_t pj = static_cast<size_t>((h * T + i) * T + j);
          auto [a, b] = product_range(p.lo[pj], p.hi[pj], x.lo[at(j, 2 * D + cc)], x.hi[at(j, 2 * D + cc)]);
          lo += a, hi += b, abs += std::max(std::llabs(a), std::llabs(b));
        }
        z.lo[static_cast<size_t>(i * D + cc)] = lo, z.hi[static_cast<size_t>(i * D + cc)] = hi;
        c.partial_bound = std::max(c.partial_bound, abs);
      }
  push(std::move(c), std::move(z));
}

void run_scores(const Program& p, const Op& op, Codes& buf) {
  const std::vector<int64_t>& x = buf[static_cast<size_t>(op.in)];
  std::vector<int64_t>& y = buf[static_cast<size_t>(op.out)];
  const int64_t T = op.rows, H = op.n_out, dh = op.n_in, D = H * dh;
  y.assign(static_cast<size_t>(p.buffers[static_cast<size_t>(op.out)].size), 0);
  for (int64_t h = 0; h < H; ++h)
    for (int64_t i = 0; i < T; ++i)
      for (int64_t j = 0; j < T; ++j) {
        int64_t acc = 0;
        for (int64_t c = h * dh; c < (h + 1) * dh; ++c)
          acc += x[static_cast<size_t>(i * 3 * D + c)] * x[static_cast<size_t>(j * 3 * D + D + c)];
        y[static_cast<size_t>((h * T + i) * T + j)] = acc;
      }
}

void run_context(const Program& p, const Op& op, Codes& buf) {
  const std::vector<int64_t>& pr = buf[static_cast<size_t>(op.in)];
  const std::vector<int64_t>& x = buf[static_cast<size_t>(op.in2)];
  std::vector<int64_t>& y = buf[static_cast<size_t>(op.out)];
  const int64_t T = op.rows, H = op.n_out, dh = op.n_in, D = H * dh;
  y.assign(static_cast<size_t>(p.buffers[static_cast<size_t>(op.out)].size), 0);
  for (int64_t h = 0; h < H; ++h)
    for (int64_t i = 0; i < T; ++i)
      for (int64_t c = h * dh; c < (h + 1) * dh; ++c) {
        int64_t acc = 0;
        for (int64_t j = 0; j < T; ++j)
          acc += pr[static_cast<size_t>((h * T + i) * T + j)] * x[static_cast<size_t>(j * 3 * D + 2 * D + c)];
        y[static_cast<size_t>(i * D + c)] = acc;
      }
}

void ProgramBuilder::layer_norm(const std::string& name, const MacParams& m) {
  Op op = make(Op::kLayerNorm, name);
  const Buffer& x = current();
  const int64_t n = x.shape.back();
  op.n_in = n, op.rows = x.size / n;
  op.table = ln_table(n);
  // sum d^2 with |d| = |n x - sum x| <= 2 n max|x| must fit int64 (here and in the generated code).
  const double dmax =
      2.0 * static_cast<double>(n) * static_cast<double>(std::max(std::llabs(x.min()), std::llabs(x.max())));
  if (static_cast<double>(n) * dmax * dmax >= std::ldexp(1.0, 62))
    throw InputError("'" + name + "': layer norm over " + std::to_string(n) + " inputs of up to " +
                     std::to_string(signed_bits(x.min(), x.max())) +
                     " bits: its sum of squares exceeds 62 bits");
  op.w_frac = finest(m.w_code, m.w_frac);
  const int F = std::max(kLnFrac + op.w_frac, m.b_code.empty() ? -1000 : finest(m.b_code, m.b_frac));
  op.prod_shift = F - kLnFrac - op.w_frac;
  if (F >= 40)
    throw InputError("'" + name + "': layer norm output on 2^-" + std::to_string(F) + ", too fine");
  for (size_t j = 0; j < m.w_code.size(); ++j)
    op.weights.push_back(m.w_code[j] * (int64_t{1} << (op.w_frac - m.w_frac[j])));
  op.bias.assign(static_cast<size_t>(n), 0);
  for (size_t j = 0; j < m.b_code.size(); ++j) op.bias[j] = m.b_code[j] * (int64_t{1} << (F - m.b_frac[j]));
  // |x^| <= sqrt(n - 1) exactly; the table's rounding and the truncated index add a few percent at most.
  const int64_t xmax =
      static_cast<int64_t>(std::ceil(1.1 * std::sqrt(static_cast<double>(n)) * (1 << kLnFrac)));
  Buffer y;
  y.shape = x.shape, y.size = x.size, y.frac = F;
  const int64_t ps = int64_t{1} << op.prod_shift;
  for (int64_t e = 0; e < y.size; ++e) {
    const int64_t w = op.weights[static_cast<size_t>(e % n)] * ps, b = op.bias[static_cast<size_t>(e % n)];
    y.lo.push_back(b - xmax * std::llabs(w)), y.hi.push_back(b + xmax * std::llabs(w));
  }
  push(std::move(op), std::move(y));
}

void run_layer_norm(const Program& p, const Op& op, Codes& buf) {
  const std::vector<int64_t>& x = buf[static_cast<size_t>(op.in)];
  std::vector<int64_t>& y = buf[static_cast<size_t>(op.out)];
  const int64_t n = op.n_in;
  y.assign(static_cast<size_t>(p.buffers[static_cast<size_t>(op.out)].size), 0);
  std::vector<int64_t> xhat(static_cast<size_t>(n));
  for (int64_t r = 0; r < op.rows; ++r) {
    ln_normalize(op.table, &x[static_cast<size_t>(r * n)], n, xhat.data());
    for (int64_t e = 0; e < n; ++e)
      y[static_cast<size_t>(r * n + e)] =
          op.bias[static_cast<size_t>(e)] +
          xhat[static_cast<size_t>(e)] * op.weights[static_cast<size_t>(e)] * (int64_t{1} << op.prod_shift);
  }
}

void ProgramBuilder::add_const(const std::string& name, const std::vector<int64_t>& c_code,
                               const std::vector<int>& c_frac) {
  Op op = make(Op::kAddConst, name);
  const Buffer& x = current();
  KILN_CHECK(static_cast<int64_t>(c_code.size()) == x.size, "'" + name + "': a constant per element");
  int F = x.frac;
  for (size_t j = 0; j < c_code.size(); ++j)
    if (c_code[j] != 0) F = std::max(F, c_frac[j]);
  if (F - x.frac >= 30 || F >= 40)
    throw InputError("'" + name + "': constant on 2^-" + std::to_string(F) + ", too fine");
  op.prod_shift = F - x.frac;
  Buffer y;
  y.shape = x.shape, y.size = x.size, y.frac = F;
  for (size_t j = 0; j < c_code.size(); ++j) {
    op.bias.push_back(c_code[j] == 0 ? 0 : c_code[j] * (int64_t{1} << (F - c_frac[j])));
    y.lo.push_back(x.lo[j] * (int64_t{1} << op.prod_shift) + op.bias[j]);
    y.hi.push_back(x.hi[j] * (int64_t{1} << op.prod_shift) + op.bias[j]);
  }
  push(std::move(op), std::move(y));
}

void run_add_const(const Program& p, const Op& op, Codes& buf) {
  const std::vector<int64_t>& x = buf[static_cast<size_t>(op.in)];
  std::vector<int64_t>& y = buf[static_cast<size_t>(op.out)];
  y.resize(static_cast<size_t>(p.buffers[static_cast<size_t>(op.out)].size));
  for (size_t e = 0; e < y.size(); ++e) y[e] = x[e] * (int64_t{1} << op.prod_shift) + op.bias[e];
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

void run_slice(const Program& p, const Op& op, Codes& buf) {
  const std::vector<int64_t>& x = buf[static_cast<size_t>(op.in)];
  buf[static_cast<size_t>(op.out)].assign(x.begin(), x.begin() + p.buffers[static_cast<size_t>(op.out)].size);
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
  int64_t acc = 0;
  for (int64_t e = 0; e < op.n_in; ++e) acc += x[static_cast<size_t>(e)] * x[static_cast<size_t>(e)];
  buf[static_cast<size_t>(op.out)].assign(1, acc);
}

Program ProgramBuilder::finish() {
  KILN_CHECK(kept_.empty(), "a residual block without its add");
  for (Op& op : p_.ops) {
    if (op.kind == Op::kDense || op.kind == Op::kConv) {
      if (op.partial_bound < (int64_t{1} << 24))
        op.weights_f.assign(op.weights.begin(), op.weights.end());
      else if (op.partial_bound < (int64_t{1} << 53))
        op.weights_d.assign(op.weights.begin(), op.weights.end());
      const Buffer& xb = p_.buffers[static_cast<size_t>(op.in)];
      op.x_below_2_51 = xb.min() > -(int64_t{1} << 51) && xb.max() < (int64_t{1} << 51);
    }
    if (op.kind == Op::kQuantize)
      op.requantizers = requantizers_of(op, p_.buffers[static_cast<size_t>(op.in)],
                                        p_.buffers[static_cast<size_t>(op.out)]);
  }
  p_.output = cur_;
  return std::move(p_);
}

}  // namespace kiln::compress
