// The ProgramBuilder's bookkeeping and the ops that move codes between buffers and grids: the model input,
// the quantize op (its types compressed to a uniform / per-channel / per-element table, its requantizers), a
// residual block's keep and add, and finish(), which prepares each op for the interpreter.
// Each op kind's builder method appends the op with the exact value range of the buffer it writes (interval
// arithmetic over every input the previous buffer can hold; the ranges size the storage types of the
// generated code and bound its accumulators), and its interpreter function (registered in KILN_OP_KINDS),
// which the deployed model runs and codegen/ prints, stands beside it in the program_*.cc file of its family.
#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "compress/program.h"
#include "compress/program_build.h"

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
  const int64_t n = buf.samples * yb.size;
  y.resize(static_cast<size_t>(n));
  if (!op.requantizers.empty()) return op.requantizers.run(x.data(), y.data(), n);
  requantizers_of(op, xb, yb).run(x.data(), y.data(), n);  // a program not from finish()
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
  const program_build::Bounds ck(name, "residual sum");
  for (int64_t e = 0; e < y.size; ++e) {
    const size_t i = static_cast<size_t>(e);
    y.lo.push_back(ck.add(ck.mul(a.lo[i], sa), ck.mul(b.lo[i], sb)));
    y.hi.push_back(ck.add(ck.mul(a.hi[i], sa), ck.mul(b.hi[i], sb)));
  }
  push(std::move(op), std::move(y));
}

void run_add(const Program& p, const Op& op, Codes& buf) {
  const Buffer &xb = p.buffers[static_cast<size_t>(op.in)], &yb = p.buffers[static_cast<size_t>(op.out)];
  const std::vector<int64_t>& x = buf[static_cast<size_t>(op.in)];
  std::vector<int64_t>& y = buf[static_cast<size_t>(op.out)];
  const Buffer& b = p.buffers[static_cast<size_t>(op.in2)];
  const std::vector<int64_t>& x2 = buf[static_cast<size_t>(op.in2)];
  y.resize(static_cast<size_t>(buf.samples * yb.size));
  for (size_t e = 0; e < y.size(); ++e)
    y[e] = x[e] * (int64_t{1} << (yb.frac - xb.frac)) + x2[e] * (int64_t{1} << (yb.frac - b.frac));
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
