// The activation ops, what compress/deploy.cc lowers a layer's activation to: ReLU and hard tanh in place
// (narrowing the buffer's range while its storage keeps the old extremes), hls4ml's lookup tables
// (compress/lut_codes.h, with the gelu table's pass-through outside its range) and the table softmax.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "compress/program.h"
#include "compress/program_build.h"

namespace kiln::compress {

using program_build::uniform_buffer;

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
  y.resize(static_cast<size_t>(buf.samples * yb.size));
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
  y.resize(static_cast<size_t>(buf.samples * yb.size));  // every lane is written
  for (int64_t b = 0; b < buf.samples * yb.size; b += lane)
    softmax_codes(op.softmax, op.softmax_tables, &x[static_cast<size_t>(b)], frac.data(), lane,
                  &y[static_cast<size_t>(b)]);
}

}  // namespace kiln::compress
