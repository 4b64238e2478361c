// The transformer's ops: attention (scores Q K^T, their table softmax, the context P V: exact integer
// products of two activations, bounded by interval arithmetic like a multiply-accumulate), LayerNorm in
// integers (compress/layer_norm_fixed.h, shared with training) and a positional embedding's added constant.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "compress/layer_norm_fixed.h"
#include "compress/program.h"
#include "compress/program_build.h"

namespace kiln::compress {

using program_build::finest;

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
  const program_build::Bounds sk(s.name, "accumulator");
  for (int64_t h = 0; h < heads; ++h)
    for (int64_t i = 0; i < T; ++i)
      for (int64_t j = 0; j < T; ++j) {
        int64_t lo = 0, hi = 0, abs = 0;
        for (int64_t c = h * dh; c < (h + 1) * dh; ++c) {
          auto [a, b] = sk.product(x.lo[at(i, c)], x.hi[at(i, c)], x.lo[at(j, D + c)], x.hi[at(j, D + c)]);
          lo = sk.add(lo, a), hi = sk.add(hi, b), abs = sk.add(abs, std::max(std::llabs(a), std::llabs(b)));
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
  const program_build::Bounds ck(c.name, "accumulator");
  for (int64_t h = 0; h < heads; ++h)
    for (int64_t i = 0; i < T; ++i)
      for (int64_t cc = h * dh; cc < (h + 1) * dh; ++cc) {
        int64_t lo = 0, hi = 0, abs = 0;
        for (int64_t j = 0; j < T; ++j) {
          const size_t pj = static_cast<size_t>((h * T + i) * T + j);
          auto [a, b] = ck.product(p.lo[pj], p.hi[pj], x.lo[at(j, 2 * D + cc)], x.hi[at(j, 2 * D + cc)]);
          lo = ck.add(lo, a), hi = ck.add(hi, b), abs = ck.add(abs, std::max(std::llabs(a), std::llabs(b)));
        }
        z.lo[static_cast<size_t>(i * D + cc)] = lo, z.hi[static_cast<size_t>(i * D + cc)] = hi;
        c.partial_bound = std::max(c.partial_bound, abs);
      }
  push(std::move(c), std::move(z));
}

void run_scores(const Program&, const Op& op, Codes& buf) {
  const std::vector<int64_t>& x = buf[static_cast<size_t>(op.in)];
  std::vector<int64_t>& y = buf[static_cast<size_t>(op.out)];
  const int64_t T = op.rows, H = op.n_out, dh = op.n_in, D = H * dh;
  y.resize(static_cast<size_t>(buf.samples * H * T * T));  // all written
  for (int64_t s = 0; s < buf.samples; ++s) {
    const int64_t* xs = x.data() + s * T * 3 * D;
    int64_t* ys = y.data() + s * H * T * T;
    for (int64_t h = 0; h < H; ++h)
      for (int64_t i = 0; i < T; ++i)
        for (int64_t j = 0; j < T; ++j) {
          int64_t acc = 0;
          for (int64_t c = h * dh; c < (h + 1) * dh; ++c) acc += xs[i * 3 * D + c] * xs[j * 3 * D + D + c];
          ys[(h * T + i) * T + j] = acc;
        }
  }
}

void run_context(const Program&, const Op& op, Codes& buf) {
  const std::vector<int64_t>& pr = buf[static_cast<size_t>(op.in)];
  const std::vector<int64_t>& x = buf[static_cast<size_t>(op.in2)];
  std::vector<int64_t>& y = buf[static_cast<size_t>(op.out)];
  const int64_t T = op.rows, H = op.n_out, dh = op.n_in, D = H * dh;
  y.resize(static_cast<size_t>(buf.samples * T * D));  // all written
  for (int64_t s = 0; s < buf.samples; ++s) {
    const int64_t* ps = pr.data() + s * H * T * T;
    const int64_t* xs = x.data() + s * T * 3 * D;
    int64_t* ys = y.data() + s * T * D;
    for (int64_t h = 0; h < H; ++h)
      for (int64_t i = 0; i < T; ++i)
        for (int64_t c = h * dh; c < (h + 1) * dh; ++c) {
          int64_t acc = 0;
          for (int64_t j = 0; j < T; ++j) acc += ps[(h * T + i) * T + j] * xs[j * 3 * D + 2 * D + c];
          ys[i * D + c] = acc;
        }
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
  const program_build::Bounds ck(name, "layer norm output");
  for (size_t j = 0; j < m.w_code.size(); ++j)
    op.weights.push_back(ck.mul(m.w_code[j], int64_t{1} << (op.w_frac - m.w_frac[j])));
  op.bias.assign(static_cast<size_t>(n), 0);
  for (size_t j = 0; j < m.b_code.size(); ++j)
    op.bias[j] = ck.mul(m.b_code[j], int64_t{1} << (F - m.b_frac[j]));
  // |x^| <= sqrt(n - 1) exactly; the table's rounding and the truncated index add a few percent at most.
  const int64_t xmax =
      static_cast<int64_t>(std::ceil(1.1 * std::sqrt(static_cast<double>(n)) * (1 << kLnFrac)));
  Buffer y;
  y.shape = x.shape, y.size = x.size, y.frac = F;
  const int64_t ps = int64_t{1} << op.prod_shift;
  for (int64_t e = 0; e < y.size; ++e) {
    const int64_t w = ck.mul(op.weights[static_cast<size_t>(e % n)], ps),
                  b = op.bias[static_cast<size_t>(e % n)];
    const int64_t r = ck.mul(xmax, std::llabs(w));
    y.lo.push_back(ck.add(b, -r)), y.hi.push_back(ck.add(b, r));
  }
  push(std::move(op), std::move(y));
}

void run_layer_norm(const Program& p, const Op& op, Codes& buf) {
  const std::vector<int64_t>& x = buf[static_cast<size_t>(op.in)];
  std::vector<int64_t>& y = buf[static_cast<size_t>(op.out)];
  const int64_t n = op.n_in;
  y.resize(static_cast<size_t>(buf.samples * p.buffers[static_cast<size_t>(op.out)].size));  // all written
  std::vector<int64_t> xhat(static_cast<size_t>(n));
  for (int64_t r = 0; r < buf.samples * op.rows; ++r) {  // the rows of every sample, one after the other
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
  const program_build::Bounds ck(name, "sum");
  const int64_t ps = int64_t{1} << op.prod_shift;
  for (size_t j = 0; j < c_code.size(); ++j) {
    op.bias.push_back(c_code[j] == 0 ? 0 : ck.mul(c_code[j], int64_t{1} << (F - c_frac[j])));
    y.lo.push_back(ck.add(ck.mul(x.lo[j], ps), op.bias[j]));
    y.hi.push_back(ck.add(ck.mul(x.hi[j], ps), op.bias[j]));
  }
  push(std::move(op), std::move(y));
}

void run_add_const(const Program&, const Op& op, Codes& buf) {
  const std::vector<int64_t>& x = buf[static_cast<size_t>(op.in)];
  std::vector<int64_t>& y = buf[static_cast<size_t>(op.out)];
  const size_t per = op.bias.size();  // one constant per element of a sample
  y.resize(static_cast<size_t>(buf.samples) * per);
  for (size_t e = 0; e < y.size(); ++e) y[e] = x[e] * (int64_t{1} << op.prod_shift) + op.bias[e % per];
}

}  // namespace kiln::compress
