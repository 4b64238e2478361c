// The C kernels of every op kind but ReLU (one line, in emit_c.cc): quantizers (the generic requantiser, or
// emit_c_quantize.h), multiply-accumulate layers (sparse lists, or emit_c_dense.h's packed rows), the tables
// of hls4ml's activations and softmax, pooling, layer norm, attention and the residual add.
#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "codegen/emit_c_dense.h"
#include "codegen/emit_c_internal.h"
#include "codegen/emit_c_quantize.h"
#include "compress/layer_norm_fixed.h"

namespace kiln::codegen::c_detail {

namespace {

std::string requant_args(const compress::FixedType& t) {
  return std::to_string(t.k) + ", " + std::to_string(t.i + t.f) + ", " + round_name(t.round) + ", " +
         overflow_name(t.overflow);
}

}  // namespace

// LayerNorm per token (compress/layer_norm_fixed.h): d = n x - sum x, V = sum d^2, V = m 4^k with m in
// [2^B, 2^(B+2)), x^ = round(d r[m - 2^B] 2^(kLnFrac - Q - k)), y = beta + 2^shift x^ gamma.
void Emitter::layer_norm(const Op& op, const std::string& id) {
  const int64_t n = op.n_in, lo = int64_t{1} << compress::kLnTableBits;
  const auto [tlo, thi] = std::minmax_element(op.table.begin(), op.table.end());
  const_bytes += write_array(tables, "static const", "kiln_r" + id, op.table, int_bytes(*tlo, *thi));
  const auto [glo, ghi] = std::minmax_element(op.weights.begin(), op.weights.end());
  const_bytes += write_array(tables, "static const", "kiln_g" + id, op.weights, int_bytes(*glo, *ghi));
  const auto [blo, bhi] = std::minmax_element(op.bias.begin(), op.bias.end());
  const_bytes += write_array(tables, "static const", "kiln_b" + id, op.bias, int_bytes(*blo, *bhi));
  const int base = compress::kLnTableFrac - compress::kLnFrac;
  funcs << "/* " << op.name << ": layer norm over " << n << " features, 1/sqrt from a table of "
        << op.table.size() << " entries */\n"
        << "static void kiln_op" << id << "(const " << type(op.in) << " *x, " << type(op.out) << " *y) {\n"
        << "  int32_t r, e, k;\n  for (r = 0; r < " << op.rows << "; ++r) {\n    const " << type(op.in)
        << " *xr = x + r * " << n << ";\n    int64_t s = 0, v = 0, m, p;\n"
        << "    for (e = 0; e < " << n << "; ++e) s += xr[e];\n"
        << "    for (e = 0; e < " << n << "; ++e) {\n      const int64_t d = " << n
        << " * (int64_t)xr[e] - s;\n      v += d * d;\n    }\n"
        << "    k = 0, m = v;\n    if (v != 0) {\n      for (; m >= " << 4 * lo << "; m >>= 2) ++k;\n"
        << "      for (; m < " << lo << "; m <<= 2) --k;\n    }\n"
        << "    for (e = 0; e < " << n << "; ++e) {\n      int64_t xh = 0;\n      if (v != 0) {\n"
        << "        p = (" << n << " * (int64_t)xr[e] - s) * kiln_r" << id << "[m - " << lo << "];\n"
        << "        xh = " << base << " + k > 0 ? (p + ((int64_t)1 << (" << base << " + k - 1))) >> (" << base
        << " + k) : p * ((int64_t)1 << -(" << base << " + k));\n      }\n"
        << "      y[r * " << n << " + e] = (" << type(op.out) << ")(kiln_b" << id << "[e] + xh * kiln_g" << id
        << "[e] * " << (int64_t{1} << op.prod_shift) << ");\n    }\n  }\n}\n\n";
  code_bytes += 260;
}

// y = x 2^shift + c: a constant per element (a positional embedding).
void Emitter::add_const(const Op& op, const std::string& id) {
  const auto [clo, chi] = std::minmax_element(op.bias.begin(), op.bias.end());
  const_bytes += write_array(tables, "static const", "kiln_c" + id, op.bias, int_bytes(*clo, *chi));
  funcs << "/* " << op.name << ": add a constant per element */\nstatic void kiln_op" << id << "(const "
        << type(op.in) << " *x, " << type(op.out) << " *y) {\n  int32_t e;\n  for (e = 0; e < "
        << buf(op.out).size << "; ++e) y[e] = (" << type(op.out) << ")((int64_t)x[e] * "
        << (int64_t{1} << op.prod_shift) << " + kiln_c" << id << "[e]);\n}\n\n";
  code_bytes += 40;
}

// The first y.size values of x, as they are (a VAE's mu).
void Emitter::slice(const Op& op, const std::string& id) {
  funcs << "/* " << op.name << ": the first " << buf(op.out).size << " of " << buf(op.in).size
        << " values */\nstatic void kiln_op" << id << "(const " << type(op.in) << " *x, " << type(op.out)
        << " *y) {\n  int32_t e;\n  for (e = 0; e < " << buf(op.out).size << "; ++e) y[e] = (" << type(op.out)
        << ")x[e];\n}\n\n";
  code_bytes += 30;
}

// y[0] = sum x[e]^2, exact: the accumulator holds every partial sum (partial_bound).
void Emitter::sum_squares(const Op& op, const std::string& id) {
  const std::string acc = op.partial_bound < (int64_t{1} << 31) ? "int32_t" : "int64_t";
  funcs << "/* " << op.name << ": sum of squares of " << op.n_in << " values, accumulator " << acc
        << " on 2^-" << buf(op.out).frac << " */\nstatic void kiln_op" << id << "(const " << type(op.in)
        << " *x, " << type(op.out) << " *y) {\n  int32_t e;\n  " << acc << " acc = 0;\n  for (e = 0; e < "
        << op.n_in << "; ++e) acc += (" << acc << ")x[e] * x[e];\n  y[0] = (" << type(op.out)
        << ")acc;\n}\n\n";
  code_bytes += 40;
}

// Attention scores y[h, i, j] = sum_c q[i, h dh + c] k[j, h dh + c] over x = [T, 3D] = (Q, K, V).
void Emitter::scores(const Op& op, const std::string& id) {
  const int64_t T = op.rows, H = op.n_out, dh = op.n_in, D = H * dh;
  const std::string acc = op.partial_bound < (int64_t{1} << 31) ? "int32_t" : "int64_t";
  funcs << "/* " << op.name << ": attention scores Q K^T per head (" << H << " heads of " << dh << ") */\n"
        << "static void kiln_op" << id << "(const " << type(op.in) << " *x, " << type(op.out) << " *y) {\n"
        << "  int32_t h, i, j, c;\n  for (h = 0; h < " << H << "; ++h)\n    for (i = 0; i < " << T
        << "; ++i)\n      for (j = 0; j < " << T << "; ++j) {\n        " << acc << " acc = 0;\n"
        << "        for (c = h * " << dh << "; c < (h + 1) * " << dh << "; ++c)\n          acc += (" << acc
        << ")x[i * " << 3 * D << " + c] * x[j * " << 3 * D << " + " << D << " + c];\n        y[(h * " << T
        << " + i) * " << T << " + j] = (" << type(op.out) << ")acc;\n      }\n}\n\n";
  code_bytes += 120;
}

// Attention context y[i, h dh + c] = sum_j p[h, i, j] v[j, h dh + c], v the third part of x2 = (Q, K, V).
void Emitter::context(const Op& op, const std::string& id) {
  const int64_t T = op.rows, H = op.n_out, dh = op.n_in, D = H * dh;
  const std::string acc = op.partial_bound < (int64_t{1} << 31) ? "int32_t" : "int64_t";
  funcs << "/* " << op.name << ": attention context P V per head */\n"
        << "static void kiln_op" << id << "(const " << type(op.in) << " *p, const " << type(op.in2)
        << " *x2, " << type(op.out) << " *y) {\n  int32_t h, i, j, c;\n  for (h = 0; h < " << H
        << "; ++h)\n    for (i = 0; i < " << T << "; ++i)\n      for (c = h * " << dh << "; c < (h + 1) * "
        << dh << "; ++c) {\n        " << acc << " acc = 0;\n        for (j = 0; j < " << T
        << "; ++j)\n          acc += (" << acc << ")p[(h * " << T << " + i) * " << T << " + j] * x2[j * "
        << 3 * D << " + " << 2 * D << " + c];\n        y[i * " << D << " + c] = (" << type(op.out)
        << ")acc;\n      }\n}\n\n";
  code_bytes += 120;
}

// y = x + x2 on y's grid (a residual block's output plus its input).
void Emitter::add(const Op& op, const std::string& id) {
  const Buffer &x = buf(op.in), &x2 = buf(op.in2), &y = buf(op.out);
  auto shifted = [&](const std::string& v, int frac) {
    return y.frac == frac ? "(int64_t)" + v
                          : "(int64_t)" + v + " * " + std::to_string(int64_t{1} << (y.frac - frac));
  };
  funcs << "/* " << op.name << ": residual add */\nstatic void kiln_op" << id << "(const " << type(op.in)
        << " *x, const " << type(op.in2) << " *x2, " << type(op.out)
        << " *y) {\n  int32_t e;\n  for (e = 0; e < " << y.size << "; ++e) y[e] = (" << type(op.out) << ")("
        << shifted("x[e]", x.frac) << " + " << shifted("x2[e]", x2.frac) << ");\n}\n\n";
  code_bytes += 40;
}

// A table of per-entry (f, m) or literal constants for uniform types; pruned entries get f = `grid` so
// that no shift count is ever negative.
std::pair<std::string, std::string> Emitter::type_tables(std::ostream& os, const TypeTable& t, int grid,
                                                         const std::string& id, int64_t channels) {
  if (t.pattern == TypeTable::kUniform) return {std::to_string(t.f[0]), std::to_string(t.m[0])};
  std::vector<int64_t> f, m;
  for (size_t j = 0; j < t.f.size(); ++j) {
    f.push_back(t.width(j) > 0 ? t.f[j] : grid);
    m.push_back(t.m[j]);
  }
  const_bytes += write_array(os, "static const", "kiln_f" + id, f, 1);
  const_bytes += write_array(os, "static const", "kiln_m" + id, m, 1);
  const std::string j = t.pattern == TypeTable::kChannel ? "e % " + std::to_string(channels) : "e";
  return {"kiln_f" + id + "[" + j + "]", "kiln_m" + id + "[" + j + "]"};
}

bool Emitter::quantize(const Op& op, const std::string& id) {
  if (opt.fast_kernels && quantize_fast_fits(p, op)) {
    const EmittedBytes b = emit_quantize_fast(tables, funcs, p, op, id);
    const_bytes += b.const_bytes, code_bytes += b.code_bytes;
    return false;
  }
  const Buffer &x = buf(op.in), &y = buf(op.out);
  auto [f, m] = type_tables(tables, op.types, y.frac, id, y.shape.back());
  funcs << "static void kiln_op" << id << "(const " << type(op.in) << " *x, " << type(op.out) << " *y) {\n"
        << "  int32_t e;\n  for (e = 0; e < " << y.size << "; ++e)\n"
        << "    y[e] = (" << type(op.out) << ")(kiln_requant(x[e], " << x.frac << " - " << f << ", "
        << op.types.k << ", " << m << ", " << round_name(op.types.round) << ", "
        << overflow_name(op.types.overflow) << ") * ((int64_t)1 << (" << y.frac << " - " << f
        << ")));\n}\n\n";
  code_bytes += 80;  // Cortex-M4 -O2 code-size model, fitted to arm-none-eabi-nm figures
  return true;
}

void Emitter::mac(const Op& op, const std::string& id) {
  if (opt.fast_kernels && op.kind == Op::kDense) {
    const DensePlan d = plan_dense(p, op);
    if (d.packed) {
      const EmittedBytes b = emit_dense_packed(tables, funcs, p, op, d, id);
      const_bytes += b.const_bytes, code_bytes += b.code_bytes, dsp = dsp || d.smlad;
      return;
    }
  }
  const Buffer& y = buf(op.out);
  SparseWeights s = sparse_weights(op);
  auto range = [](const std::vector<int64_t>& v) {
    int64_t lo = 0, hi = 0;
    for (int64_t a : v) lo = std::min(lo, a), hi = std::max(hi, a);
    return std::pair<int64_t, int64_t>{lo, hi};
  };
  auto [wlo, whi] = range(s.value);
  auto [blo, bhi] = range(op.bias);
  const std::string acc = op.partial_bound < (int64_t{1} << 31) ? "int32_t" : "int64_t";
  const_bytes += write_array(tables, "static const", "kiln_w" + id, s.value, int_bytes(wlo, whi));
  const int64_t max_off = s.offset.empty() ? 0 : *std::max_element(s.offset.begin(), s.offset.end());
  const_bytes += write_array(tables, "static const", "kiln_o" + id, s.offset, uint_bytes(max_off), true);
  const_bytes +=
      write_array(tables, "static const", "kiln_s" + id, s.start, uint_bytes(s.start.back()), true);
  const_bytes += write_array(tables, "static const", "kiln_b" + id, op.bias, int_bytes(blo, bhi));
  const bool padded = op.kind != Op::kDense && op.win.padded();
  if (padded) {
    const_bytes += write_array(tables, "static const", "kiln_kh" + id, s.kh, 1, true);
    const_bytes += write_array(tables, "static const", "kiln_kw" + id, s.kw, 1, true);
  }
  const std::string ps = op.prod_shift ? " * ((" + acc + ")1 << " + std::to_string(op.prod_shift) + ")" : "";
  const std::string out =
      "y[" + std::string(op.kind == Op::kDense ? "r" : "(oh * " + std::to_string(op.win.OW) + " + ow)") +
      " * " + std::to_string(op.n_out) + " + n] = (" + type(op.out) + ")(kiln_b" + id + "[n] + acc" + ps +
      ");\n";
  funcs << "/* " << op.name << ": " << op.weights.size() << " weights, " << op.weights.size() - s.value.size()
        << " pruned (no operation emitted); accumulator " << acc << " on 2^-" << y.frac << " */\n"
        << "static void kiln_op" << id << "(const " << type(op.in) << " *x, " << type(op.out) << " *y) {\n";
  if (op.kind == Op::kDense) {
    funcs << "  int32_t r, n, p;\n  for (r = 0; r < " << op.rows << "; ++r)\n    for (n = 0; n < " << op.n_out
          << "; ++n) {\n"
          << "      " << acc << " acc = 0;\n"
          << "      for (p = kiln_s" << id << "[n]; p < kiln_s" << id << "[n + 1]; ++p) acc += (" << acc
          << ")x[r * " << op.n_in << " + kiln_o" << id << "[p]] * kiln_w" << id << "[p];\n"
          << "      " << out << "    }\n}\n\n";
    code_bytes += 150;
    return;
  }
  const Window& w = op.win;
  funcs << "  int32_t oh, ow, n, p;\n  for (oh = 0; oh < " << w.OH << "; ++oh)\n    for (ow = 0; ow < "
        << w.OW << "; ++ow) {\n"
        << "      const int32_t ih0 = oh * " << w.SH << " - " << w.PH << ", iw0 = ow * " << w.SW << " - "
        << w.PW << ";\n"
        << "      const int32_t base = (ih0 * " << w.W << " + iw0) * " << w.C << ";\n"
        << "      for (n = 0; n < " << op.n_out << "; ++n) {\n        " << acc << " acc = 0;\n"
        << "        for (p = kiln_s" << id << "[n]; p < kiln_s" << id << "[n + 1]; ++p) {\n";
  if (padded)
    funcs << "          const int32_t ih = ih0 + kiln_kh" << id << "[p], iw = iw0 + kiln_kw" << id << "[p];\n"
          << "          if (ih < 0 || ih >= " << w.H << " || iw < 0 || iw >= " << w.W << ") continue;\n";
  funcs << "          acc += (" << acc << ")x[base + kiln_o" << id << "[p]"
        << (op.kind == Op::kDepthwise ? " + n" : "") << "] * kiln_w" << id << "[p];\n        }\n        "
        << out << "      }\n    }\n}\n\n";
  code_bytes += padded ? 200 : 150;
}

// sigmoid / tanh: hls4ml's table in flash; the index is the input times N / (2R), a power of two, so a
// shift, truncated toward zero as int() of an ap_fixed truncates.
void Emitter::lut(const Op& op, const std::string& id) {
  const Buffer& y = buf(op.out);
  const int64_t n = static_cast<int64_t>(op.table.size()), sh = op.lut_shift;
  // The whole table's range: entries the inputs cannot reach may not fit the output buffer's type.
  const auto [tlo, thi] = std::minmax_element(op.table.begin(), op.table.end());
  const_bytes += write_array(tables, "static const", "kiln_t" + id, op.table, int_bytes(*tlo, *thi));
  std::string q = "0";
  if (sh >= 0)
    q = "(int64_t)x[e] * " + std::to_string(int64_t{1} << sh);  // lower() bounds it below 2^31
  else if (sh > -63)
    q = "x[e] >= 0 ? (int64_t)x[e] >> " + std::to_string(-sh) + " : -((-(int64_t)x[e]) >> " +
        std::to_string(-sh) + ")";
  funcs << "/* " << op.name << ": "
        << (op.lut.function == compress::LutFunction::kSigmoid ? "sigmoid"
            : op.lut.function == compress::LutFunction::kGelu  ? "gelu (x above the range, 0 below)"
                                                               : "tanh")
        << " as hls4ml's table of " << n << " entries over [-" << op.lut.range << ", " << op.lut.range
        << ") */\n"
        << "static void kiln_op" << id << "(const " << type(op.in) << " *x, " << type(op.out) << " *y) {\n"
        << "  int32_t e;\n  for (e = 0; e < " << y.size << "; ++e) {\n    const int64_t q = " << q << ";\n";
  if (op.lut.function == compress::LutFunction::kGelu)
    funcs << "    if (x[e] >= " << op.pass_above << ") y[e] = (" << type(op.out) << ")((int64_t)x[e] * "
          << (int64_t{1} << op.pass_shift) << ");\n    else if (x[e] < -" << op.pass_above
          << ") y[e] = 0;\n    else ";
  else
    funcs << "    ";
  funcs << "y[e] = (" << type(op.out) << ")((int64_t)kiln_t" << id << "[q < " << -n / 2 << " ? 0 : q > "
        << n / 2 - 1 << " ? " << n - 1 << " : q + " << n / 2 << "] * " << (int64_t{1} << op.table_shift)
        << ");\n  }\n}\n\n";
  code_bytes += 70;
}

// Clip to [-1, 1] in place; a side the values cannot reach is not emitted (its literal might not fit).
void Emitter::hard_tanh(const Op& op, const std::string& id) {
  const Buffer& y = buf(op.out);
  const int64_t one = int64_t{1} << y.frac;
  funcs << "static void kiln_op" << id << "(" << type(op.out) << " *y) {\n  int32_t e;\n  for (e = 0; e < "
        << y.size << "; ++e) {\n";
  if (y.min() < -one) funcs << "    if (y[e] < -" << one << ") y[e] = -" << one << ";\n";
  if (y.max() > one) funcs << "    if (y[e] > " << one << ") y[e] = " << one << ";\n";
  funcs << "    (void)y[e];\n  }\n}\n\n";
  code_bytes += 40;
}

// The softmax of compress/lut_codes.h on every lane of the last axis, with hls4ml's exp and invert tables.
void Emitter::softmax(const Op& op, const std::string& id) {
  const Buffer &x = buf(op.in), &y = buf(op.out);
  const compress::SoftmaxLutSpec& sp = op.softmax;
  const compress::FixedType &in_t = sp.input_type, &exp_t = sp.exp_table_type, &inv_t = sp.inv_table_type;
  const int64_t L = y.shape.back(), n = op.softmax_tables.size;
  int bits = 0;
  while ((int64_t{1} << bits) < n) ++bits;
  auto index = [&](const std::string& v, const compress::FixedType& t) {
    const int w = t.k + t.i + t.f;
    return "(int32_t)(((uint64_t)" + v + " & (((uint64_t)1 << " + std::to_string(w) + ") - 1)) >> " +
           std::to_string(w - bits) + ")";
  };
  auto width = [](const std::vector<int64_t>& v) {
    return int_bytes(*std::min_element(v.begin(), v.end()), *std::max_element(v.begin(), v.end()));
  };
  const_bytes +=
      write_array(tables, "static const", "kiln_e" + id, op.softmax_tables.exp, width(op.softmax_tables.exp));
  const_bytes +=
      write_array(tables, "static const", "kiln_i" + id, op.softmax_tables.inv, width(op.softmax_tables.inv));
  const bool stable = sp.implementation == compress::SoftmaxImpl::kStable;
  funcs << "/* " << op.name << ": softmax (" << (stable ? "stable" : "latency") << ") over lanes of " << L
        << ", with hls4ml's exp and invert tables of " << n << " entries */\n"
        << "static void kiln_op" << id << "(const " << type(op.in) << " *x, " << type(op.out) << " *y) {\n"
        << "  int32_t l, j;\n  for (l = 0; l < " << y.size / L << "; ++l) {\n    int64_t a[" << L << "], e["
        << L << "], inv;\n"
        << "    for (j = 0; j < " << L << "; ++j) a[j] = kiln_requant(x[l * " << L << " + j], "
        << x.frac - in_t.f << ", " << requant_args(in_t) << ");\n";
  if (stable)
    funcs << "    {\n      int64_t m = a[0];\n      for (j = 1; j < " << L
          << "; ++j) if (a[j] > m) m = a[j];\n"
          << "      for (j = 0; j < " << L << "; ++j)\n        a[j] = kiln_requant(kiln_requant(a[j] - m, 0, "
          << requant_args(compress::softmax_diff_type(in_t)) << "), 0, " << requant_args(in_t)
          << ");\n    }\n";
  funcs << "    for (j = 0; j < " << L << "; ++j) e[j] = kiln_e" << id << "[" << index("a[j]", in_t)
        << "];\n";
  const std::string sum = adder_tree(funcs, L, "int64_t", [&](const std::string& a, const std::string& b) {
    return "kiln_requant(" + a + " + " + b + ", 0, " + requant_args(exp_t) + ")";
  });
  funcs << "    inv = kiln_i" << id << "[" << index(sum, exp_t) << "];\n    for (j = 0; j < " << L
        << "; ++j) y[l * " << L << " + j] = (" << type(op.out) << ")";
  if (sp.result_type)
    funcs << "kiln_requant(e[j] * inv, " << exp_t.f + inv_t.f - sp.result_type->f << ", "
          << requant_args(*sp.result_type) << ");\n";
  else
    funcs << "(e[j] * inv);\n";
  funcs << "  }\n}\n\n";
  code_bytes += 300 + 30 * L;
}

// trunc(window sum / real inputs): C99's division truncates toward zero, as the deployed model does.
void Emitter::avg_pool(const Op& op, const std::string& id) {
  const Window& w = op.win;
  funcs << "/* " << op.name
        << ": average pooling, the sum divided by the real (unpadded) inputs, toward zero */\n"
        << "static void kiln_op" << id << "(const " << type(op.in) << " *x, " << type(op.out) << " *y) {\n"
        << "  int32_t oh, ow, c, kh, kw;\n  for (oh = 0; oh < " << w.OH << "; ++oh)\n    for (ow = 0; ow < "
        << w.OW << "; ++ow)\n      for (c = 0; c < " << w.C << "; ++c) {\n        int32_t sum = 0, n = 0;\n"
        << "        for (kh = 0; kh < " << w.KH << "; ++kh)\n          for (kw = 0; kw < " << w.KW
        << "; ++kw) {\n            const int32_t ih = oh * " << w.SH << " - " << w.PH << " + kh, iw = ow * "
        << w.SW << " - " << w.PW << " + kw;\n"
        << "            if (ih < 0 || ih >= " << w.H << " || iw < 0 || iw >= " << w.W << ") continue;\n"
        << "            sum += x[(ih * " << w.W << " + iw) * " << w.C
        << " + c];\n            ++n;\n          }\n"
        << "        y[(oh * " << w.OW << " + ow) * " << w.C << " + c] = (" << type(op.out)
        << ")(sum / n);\n      }\n}\n\n";
  code_bytes += 140;
}

void Emitter::max_pool(const Op& op, const std::string& id) {
  const Window& w = op.win;
  funcs << "static void kiln_op" << id << "(const " << type(op.in) << " *x, " << type(op.out) << " *y) {\n"
        << "  int32_t oh, ow, c, kh, kw;\n  for (oh = 0; oh < " << w.OH << "; ++oh)\n    for (ow = 0; ow < "
        << w.OW << "; ++ow)\n      for (c = 0; c < " << w.C << "; ++c) {\n        " << type(op.in)
        << " best = 0;\n"
        << "        int any = 0;\n        for (kh = 0; kh < " << w.KH
        << "; ++kh)\n          for (kw = 0; kw < " << w.KW
        << "; ++kw) {\n            const int32_t ih = oh * " << w.SH << " - " << w.PH << " + kh, iw = ow * "
        << w.SW << " - " << w.PW << " + kw;\n"
        << "            if (ih < 0 || ih >= " << w.H << " || iw < 0 || iw >= " << w.W
        << ") continue; /* padding never wins */\n"
        << "            if (!any || x[(ih * " << w.W << " + iw) * " << w.C << " + c] > best) best = x[(ih * "
        << w.W << " + iw) * " << w.C << " + c], any = 1;\n          }\n        y[(oh * " << w.OW
        << " + ow) * " << w.C << " + c] = (" << type(op.out) << ")best;\n      }\n}\n\n";
  code_bytes += 130;
}

}  // namespace kiln::codegen::c_detail
