#include "codegen/program.h"

#include <algorithm>
#include <cmath>

#include "compress/fixed_point.h"

namespace kiln::codegen {

using compress::DeployedModel;
using compress::FixedType;

int64_t Buffer::min() const { return std::min(held_min, lo.empty() ? 0 : *std::min_element(lo.begin(), lo.end())); }
int64_t Buffer::max() const { return std::max(held_max, hi.empty() ? 0 : *std::max_element(hi.begin(), hi.end())); }

int signed_bits(int64_t lo, int64_t hi) {
  int b = 1;
  while (b < 64 && (lo < -(int64_t{1} << (b - 1)) || hi > (int64_t{1} << (b - 1)) - 1)) ++b;
  return b;
}

int64_t TypeTable::entry(int64_t e, int64_t channels) const {
  switch (pattern) {
    case kUniform: return 0;
    case kChannel: return e % channels;
    case kElement: return e;
  }
  return e;
}

int64_t Op::nonzero() const {
  return std::count_if(weights.begin(), weights.end(), [](int64_t w) { return w != 0; });
}

namespace {

// Calls f(x index, weight index) for every product that output element o of a multiply-accumulate sums.
template <class F>
void for_each_term(const Op& op, int64_t o, F&& f) {
  const int64_t n = o % op.n_out;
  if (op.kind == Op::kDense) {
    const int64_t r = o / op.n_out;
    for (int64_t j = 0; j < op.n_in; ++j) f(r * op.n_in + j, j * op.n_out + n);
    return;
  }
  const Window& w = op.win;
  const int64_t pos = o / op.n_out;
  w.for_each_tap(pos / w.OW, pos % w.OW, [&](int64_t tap, int64_t base) {
    if (op.kind == Op::kDepthwise) {
      f(base + n, tap * w.C + n);
    } else {
      for (int64_t c = 0; c < w.C; ++c) f(base + c, (tap * w.C + c) * op.n_out + n);
    }
  });
}

// The types of a quantize step, compressed to uniform / per-channel / per-element.
TypeTable make_table(const std::vector<FixedType>& types, int64_t channels) {
  KILN_CHECK(!types.empty(), "quantize step without types");
  TypeTable t;
  t.k = types[0].k, t.round = types[0].round, t.overflow = types[0].overflow;
  if (t.round == compress::Round::kStochastic) t.round = compress::Round::kRnd;  // inference rounds to nearest
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

// The code range of element e after quantization to its type, on a grid of `frac` bits.
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

Buffer quantized_buffer(const Shape& shape, const TypeTable& t) {
  Buffer b;
  b.shape = shape, b.size = shape_numel(shape);
  // The grid is the finest non-pruned type's (a pruned element is 0 on any grid).
  b.frac = 0;
  bool any = false;
  for (size_t j = 0; j < t.f.size(); ++j)
    if (t.width(j) > 0) b.frac = any ? std::max(b.frac, t.f[j]) : t.f[j], any = true;
  KILN_CHECK(b.frac < 40, "fractional bits " + std::to_string(b.frac) + " too many for the generated integer code");
  b.lo.resize(static_cast<size_t>(b.size)), b.hi.resize(static_cast<size_t>(b.size));
  for (int64_t e = 0; e < b.size; ++e)
    type_range(t, static_cast<size_t>(t.entry(e, shape.back())), b.frac, &b.lo[static_cast<size_t>(e)],
               &b.hi[static_cast<size_t>(e)]);
  KILN_CHECK(signed_bits(b.min(), b.max()) <= 32, "a quantized tensor needs more than 32 bits");
  return b;
}

// Aligned weights and bias, and the exact output range and partial-sum bound of a multiply-accumulate.
void lower_mac(const DeployedModel::Step& s, const Buffer& x, Op* op, Buffer* y) {
  op->n_out = s.out_shape.back();
  op->n_in = s.dense ? s.in_shape.back() : (s.geom.depthwise ? 1 : s.in_shape.back());
  op->rows = s.dense ? shape_numel(s.in_shape) / op->n_in : 1;
  if (!s.dense) op->win = compress::window_of(s.in_shape, s.out_shape, s.geom);
  // Grids from the nonzero codes only (a pruned weight or bias is 0 on any grid): weights on w_frac, the
  // accumulator on F = max(x.frac + w_frac, finest bias), so every product and bias is exact on it.
  auto finest = [](const std::vector<int64_t>& code, const std::vector<int>& frac) {
    int f = 0;
    bool any = false;
    for (size_t j = 0; j < code.size(); ++j)
      if (code[j] != 0) f = any ? std::max(f, frac[j]) : frac[j], any = true;
    return f;
  };
  op->w_frac = finest(s.w_code, s.w_frac);
  const int F = std::max(x.frac + op->w_frac, s.b_code.empty() ? -1000 : finest(s.b_code, s.b_frac));
  op->prod_shift = F - x.frac - op->w_frac;
  KILN_CHECK(F < 48 && op->prod_shift < 48, "layer '" + s.name + "': accumulator grid 2^-" + std::to_string(F) + " too fine");
  for (size_t j = 0; j < s.w_code.size(); ++j) {
    op->weights.push_back(s.w_code[j] == 0 ? 0 : s.w_code[j] * (int64_t{1} << (op->w_frac - s.w_frac[j])));
    op->weight_bits.push_back(s.w_code[j] == 0 ? 0 : std::max(0, s.w_types[j].k + s.w_types[j].i + s.w_types[j].f));
  }
  op->bias.assign(static_cast<size_t>(op->n_out), 0);
  for (size_t n = 0; n < s.b_code.size(); ++n)
    if (s.b_code[n] != 0) op->bias[n] = s.b_code[n] * (int64_t{1} << (F - s.b_frac[n]));
  y->shape = s.out_shape, y->size = shape_numel(s.out_shape), y->frac = F;
  y->lo.assign(static_cast<size_t>(y->size), 0), y->hi.assign(static_cast<size_t>(y->size), 0);
  // Interval arithmetic per output element (exact bounds over all inputs the previous buffer can hold).
  const int64_t ps = int64_t{1} << op->prod_shift;
  for (int64_t o = 0; o < y->size; ++o) {
    int64_t lo = op->bias[static_cast<size_t>(o % op->n_out)], hi = lo, abs = std::llabs(lo);
    for_each_term(*op, o, [&](int64_t xi, int64_t wi) {
      const int64_t w = op->weights[static_cast<size_t>(wi)];
      if (w == 0) return;
      const int64_t a = x.lo[static_cast<size_t>(xi)] * w * ps, b = x.hi[static_cast<size_t>(xi)] * w * ps;
      lo += std::min(a, b), hi += std::max(a, b), abs += std::max(std::llabs(a), std::llabs(b));
    });
    y->lo[static_cast<size_t>(o)] = lo, y->hi[static_cast<size_t>(o)] = hi;
    op->partial_bound = std::max(op->partial_bound, abs);
  }
  KILN_CHECK(op->partial_bound < (int64_t{1} << 62), "layer '" + s.name + "': accumulator wider than 62 bits");
}

// A buffer of the given shape on `frac` whose every element lies in [lo, hi].
Buffer uniform_buffer(const Shape& shape, int frac, int64_t lo, int64_t hi) {
  Buffer b;
  b.shape = shape, b.size = shape_numel(shape), b.frac = frac;
  b.lo.assign(static_cast<size_t>(b.size), lo), b.hi.assign(static_cast<size_t>(b.size), hi);
  return b;
}

// An in-place op narrows the value range to [lo', hi'] per element; the storage keeps the old extremes.
template <class F>
void narrow_in_place(Buffer& b, F&& clamp) {
  b.held_min = b.min(), b.held_max = b.max();
  for (size_t e = 0; e < b.lo.size(); ++e) b.lo[e] = clamp(b.lo[e]), b.hi[e] = clamp(b.hi[e]);
}

Buffer lower_lut(const DeployedModel::Step& s, const Buffer& x, Op* op) {
  op->kind = Op::kLut, op->lut = s.lut, op->table = s.table;
  op->lut_shift = compress::lut_index_shift(x.frac, s.lut);
  // The generated code computes the index x * 2^shift in 32 bits (then clamps it).
  const int64_t bound = std::max(std::llabs(x.min()), std::llabs(x.max()));
  const int sh = op->lut_shift;
  const bool fits = sh >= 0 ? sh < 31 && bound < (int64_t{1} << (31 - sh)) : (sh <= -62 || (bound >> -sh) < (int64_t{1} << 31));
  if (!fits)
    throw InputError("layer '" + s.name + "': its table index (input * 2^" + std::to_string(sh) + ") would exceed 32 bits");
  Buffer y;
  y.shape = x.shape, y.size = x.size, y.frac = s.lut.table_type.f;
  // The index is monotone in the input: element e reads entries index(lo) .. index(hi) only.
  for (int64_t e = 0; e < x.size; ++e) {
    const int a = compress::lut_index_code(x.lo[static_cast<size_t>(e)], x.frac, s.lut);
    const int b = compress::lut_index_code(x.hi[static_cast<size_t>(e)], x.frac, s.lut);
    auto [lo, hi] = std::minmax_element(op->table.begin() + a, op->table.begin() + b + 1);
    y.lo.push_back(*lo), y.hi.push_back(*hi);
  }
  return y;
}

Buffer lower_softmax(const DeployedModel::Step& s, const Buffer& x, Op* op) {
  op->kind = Op::kSoftmax, op->softmax = s.softmax, op->softmax_tables = s.softmax_tables;
  const int frac = compress::softmax_out_frac(s.softmax);
  if (s.softmax.result_type) {
    const FixedType& t = *s.softmax.result_type;
    const int m = t.i + t.f;
    return uniform_buffer(x.shape, frac, t.k ? -(int64_t{1} << std::max(m, 0)) : 0, m >= 0 ? (int64_t{1} << m) - 1 : 0);
  }
  const auto& e = s.softmax_tables.exp;
  const auto& v = s.softmax_tables.inv;
  const int64_t el = *std::min_element(e.begin(), e.end()), eh = *std::max_element(e.begin(), e.end());
  const int64_t vl = *std::min_element(v.begin(), v.end()), vh = *std::max_element(v.begin(), v.end());
  const int64_t p[] = {el * vl, el * vh, eh * vl, eh * vh};
  return uniform_buffer(x.shape, frac, *std::min_element(p, p + 4), *std::max_element(p, p + 4));
}

}  // namespace

Program lower(const DeployedModel& d, const std::string& name) {
  Program p;
  p.name = name;
  const auto& steps = d.steps();
  if (steps.empty() || steps[0].kind != DeployedModel::Step::kQuantize || !steps[0].from_float)
    throw InputError("cannot generate code: the model's input is not quantized (its first layer has no input quantizer)");
  int cur = -1;
  std::vector<int> kept;  // buffers holding residual blocks' inputs, innermost last
  for (const auto& s : steps) {
    Op op;
    op.name = s.name;
    op.in = cur;
    switch (s.kind) {
      case DeployedModel::Step::kQuantize: {
        TypeTable t = make_table(s.types, s.in_shape.back());
        Buffer b = quantized_buffer(s.in_shape, t);
        if (s.from_float) {
          p.input_shape = s.in_shape, p.input_types = t;
          p.buffers.push_back(b);
          cur = 0;
          continue;
        }
        op.kind = Op::kQuantize, op.types = t;
        p.buffers.push_back(b);
        break;
      }
      case DeployedModel::Step::kMac: {
        op.kind = s.dense ? Op::kDense : (s.geom.depthwise ? Op::kDepthwise : Op::kConv);
        Buffer y;
        lower_mac(s, p.buffers[static_cast<size_t>(cur)], &op, &y);
        p.buffers.push_back(y);
        break;
      }
      case DeployedModel::Step::kRelu:
      case DeployedModel::Step::kHardTanh: {
        op.kind = s.kind == DeployedModel::Step::kRelu ? Op::kRelu : Op::kHardTanh, op.out = cur;
        if (std::find(kept.begin(), kept.end(), cur) != kept.end())
          throw InputError("layer '" + s.name + "': a residual body that starts with an activation is not supported by the "
                           "code generators (put the activation before the block or after a layer inside it)");
        Buffer& b = p.buffers[static_cast<size_t>(cur)];
        if (op.kind == Op::kRelu) {
          narrow_in_place(b, [](int64_t v) { return std::max<int64_t>(v, 0); });
        } else {
          if (b.frac < 0 || b.frac > 40)
            throw InputError("layer '" + s.name + "': hard tanh needs its input on a grid of 0 to 40 fractional bits, got " +
                             std::to_string(b.frac));
          const int64_t one = int64_t{1} << b.frac;
          narrow_in_place(b, [one](int64_t v) { return std::clamp(v, -one, one); });
        }
        p.ops.push_back(op);
        continue;
      }
      case DeployedModel::Step::kAvgPool: {
        op.kind = Op::kAvgPool, op.win = compress::window_of(s.in_shape, s.out_shape, s.geom);
        const Buffer& x = p.buffers[static_cast<size_t>(cur)];
        KILN_CHECK(x.frac == s.out_frac, "layer '" + s.name + "': average pooling input on 2^-" + std::to_string(x.frac) +
                                             ", expected 2^-" + std::to_string(s.out_frac));
        Buffer y;
        y.shape = s.out_shape, y.size = shape_numel(s.out_shape), y.frac = x.frac;
        const Window& w = op.win;
        for (int64_t o = 0; o < y.size; ++o) {
          const int64_t c = o % w.C, pos = o / w.C;
          int64_t lo = 0, hi = 0, n = 0;
          w.for_each_tap(pos / w.OW, pos % w.OW, [&](int64_t, int64_t base) {
            lo += x.lo[static_cast<size_t>(base + c)], hi += x.hi[static_cast<size_t>(base + c)], ++n;
          });
          y.lo.push_back(lo / n), y.hi.push_back(hi / n);  // trunc(sum / n) is monotone in the sum
        }
        p.buffers.push_back(y);
        break;
      }
      case DeployedModel::Step::kSave: {
        if (s.types.empty()) {  // the add takes the block's input as it is
          kept.push_back(cur);
          continue;
        }
        // The add's quantizer on the block's input: a copy requantized into a buffer of its own, while the
        // current buffer goes on into the body.
        op.kind = Op::kQuantize, op.name = s.name + "_q", op.types = make_table(s.types, s.in_shape.back());
        p.buffers.push_back(quantized_buffer(s.in_shape, op.types));
        op.out = static_cast<int>(p.buffers.size()) - 1;
        kept.push_back(op.out);
        p.ops.push_back(op);
        continue;
      }
      case DeployedModel::Step::kAdd: {
        KILN_CHECK(!kept.empty(), "residual add without its kept input");
        op.kind = Op::kAdd, op.in2 = kept.back();
        kept.pop_back();
        const Buffer &a = p.buffers[static_cast<size_t>(cur)], &b = p.buffers[static_cast<size_t>(op.in2)];
        KILN_CHECK(a.size == b.size, "layer '" + s.name + "': residual add of " + std::to_string(a.size) + " and " +
                                         std::to_string(b.size) + " values");
        Buffer y;
        y.shape = a.shape, y.size = a.size, y.frac = std::max(a.frac, b.frac);
        KILN_CHECK(y.frac - std::min(a.frac, b.frac) < 30, "layer '" + s.name + "': residual add of grids too far apart");
        const int64_t sa = int64_t{1} << (y.frac - a.frac), sb = int64_t{1} << (y.frac - b.frac);
        for (int64_t e = 0; e < y.size; ++e) {
          y.lo.push_back(a.lo[static_cast<size_t>(e)] * sa + b.lo[static_cast<size_t>(e)] * sb);
          y.hi.push_back(a.hi[static_cast<size_t>(e)] * sa + b.hi[static_cast<size_t>(e)] * sb);
        }
        KILN_CHECK(signed_bits(y.min(), y.max()) <= 32, "layer '" + s.name + "': residual sum needs more than 32 bits");
        p.buffers.push_back(y);
        break;
      }
      case DeployedModel::Step::kLut:
        p.buffers.push_back(lower_lut(s, p.buffers[static_cast<size_t>(cur)], &op));
        break;
      case DeployedModel::Step::kSoftmax:
        p.buffers.push_back(lower_softmax(s, p.buffers[static_cast<size_t>(cur)], &op));
        break;
      case DeployedModel::Step::kMaxPool: {
        op.kind = Op::kMaxPool, op.win = compress::window_of(s.in_shape, s.out_shape, s.geom);
        const Buffer& x = p.buffers[static_cast<size_t>(cur)];
        Buffer y;
        y.shape = s.out_shape, y.size = shape_numel(s.out_shape), y.frac = x.frac;
        const Window& w = op.win;
        for (int64_t o = 0; o < y.size; ++o) {
          const int64_t c = o % w.C, pos = o / w.C, oh = pos / w.OW, ow = pos % w.OW;
          int64_t lo = INT64_MIN, hi = INT64_MIN;
          w.for_each_tap(oh, ow, [&](int64_t, int64_t base) {
            const size_t xi = static_cast<size_t>(base + c);
            lo = std::max(lo, x.lo[xi]), hi = std::max(hi, x.hi[xi]);
          });
          y.lo.push_back(lo), y.hi.push_back(hi);
        }
        p.buffers.push_back(y);
        break;
      }
      case DeployedModel::Step::kNone: continue;
    }
    op.out = static_cast<int>(p.buffers.size()) - 1;
    cur = op.out;
    p.ops.push_back(op);
  }
  p.output = cur;
  return p;
}

std::vector<int64_t> quantize_input(const Program& p, const float* x) {
  const Buffer& b = p.input();
  std::vector<int64_t> codes(static_cast<size_t>(b.size));
  for (int64_t e = 0; e < b.size; ++e) {
    const size_t j = static_cast<size_t>(p.input_types.entry(e, b.shape.back()));
    if (p.input_types.width(j) <= 0) continue;
    const FixedType t = p.input_types.type(j);
    codes[static_cast<size_t>(e)] =
        compress::to_code(compress::quantize(static_cast<double>(x[e]), t), t.f) * (int64_t{1} << (b.frac - t.f));
  }
  return codes;
}

std::vector<int64_t> run(const Program& p, const std::vector<int64_t>& input_codes) {
  std::vector<std::vector<int64_t>> buf(p.buffers.size());
  buf[0] = input_codes;
  for (const Op& op : p.ops) {
    const Buffer &xb = p.buffers[static_cast<size_t>(op.in)], &yb = p.buffers[static_cast<size_t>(op.out)];
    const std::vector<int64_t>& x = buf[static_cast<size_t>(op.in)];
    std::vector<int64_t>& y = buf[static_cast<size_t>(op.out)];
    if (op.kind == Op::kRelu) {
      for (auto& v : y) v = std::max<int64_t>(v, 0);
      continue;
    }
    if (op.kind == Op::kHardTanh) {
      const int64_t one = int64_t{1} << yb.frac;
      for (auto& v : y) v = std::clamp(v, -one, one);
      continue;
    }
    if (op.kind == Op::kSoftmax) {
      const int64_t lane = yb.shape.back();
      const std::vector<int> frac(static_cast<size_t>(lane), xb.frac);
      y.assign(static_cast<size_t>(yb.size), 0);
      for (int64_t b = 0; b < yb.size; b += lane)
        compress::softmax_codes(op.softmax, op.softmax_tables, &x[static_cast<size_t>(b)], frac.data(), lane, &y[static_cast<size_t>(b)]);
      continue;
    }
    y.assign(static_cast<size_t>(yb.size), 0);
    const Window& w = op.win;
    for (int64_t o = 0; o < yb.size; ++o) {
      int64_t& out = y[static_cast<size_t>(o)];
      switch (op.kind) {
        case Op::kQuantize: {
          const size_t j = static_cast<size_t>(op.types.entry(o, yb.shape.back()));
          if (op.types.width(j) > 0)
            out = compress::requantize(x[static_cast<size_t>(o)], xb.frac, op.types.type(j)) *
                  (int64_t{1} << (yb.frac - op.types.f[j]));
          break;
        }
        case Op::kDense:
        case Op::kConv:
        case Op::kDepthwise: {
          int64_t acc = 0;
          for_each_term(op, o, [&](int64_t xi, int64_t wi) {
            acc += x[static_cast<size_t>(xi)] * op.weights[static_cast<size_t>(wi)];
          });
          out = op.bias[static_cast<size_t>(o % op.n_out)] + acc * (int64_t{1} << op.prod_shift);
          break;
        }
        case Op::kMaxPool: {
          const int64_t n = o % w.C, pos = o / w.C;
          bool any = false;
          w.for_each_tap(pos / w.OW, pos % w.OW, [&](int64_t, int64_t base) {
            const int64_t v = x[static_cast<size_t>(base + n)];
            out = any ? std::max(out, v) : v, any = true;
          });
          break;
        }
        case Op::kAdd: {
          const Buffer& b = p.buffers[static_cast<size_t>(op.in2)];
          out = x[static_cast<size_t>(o)] * (int64_t{1} << (yb.frac - xb.frac)) +
                buf[static_cast<size_t>(op.in2)][static_cast<size_t>(o)] * (int64_t{1} << (yb.frac - b.frac));
          break;
        }
        case Op::kAvgPool: {
          const int64_t n = o % w.C, pos = o / w.C;
          int64_t sum = 0, count = 0;
          w.for_each_tap(pos / w.OW, pos % w.OW, [&](int64_t, int64_t base) { sum += x[static_cast<size_t>(base + n)], ++count; });
          out = sum / count;
          break;
        }
        case Op::kLut:
          out = op.table[static_cast<size_t>(compress::lut_index_code(x[static_cast<size_t>(o)], xb.frac, op.lut))];
          break;
        case Op::kRelu:
        case Op::kHardTanh:
        case Op::kSoftmax: break;
      }
    }
  }
  return buf[static_cast<size_t>(p.output)];
}

}  // namespace kiln::codegen
