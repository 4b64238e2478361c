#include "codegen/emit_hls.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "codegen/emit_util.h"
#include "compress/layer_norm_fixed.h"

namespace kiln::codegen {

namespace {

using compress::Overflow;
using compress::Round;

std::string ap_round(Round r) {
  return r == Round::kStochastic ? "AP_RND" : compress::to_string(r);  // inference rounds to nearest
}

// The container of a buffer: signed, as wide as its code range, `frac` fractional bits.
std::string container(int64_t lo, int64_t hi, int frac) {
  const int w = signed_bits(lo, hi);
  return "ap_fixed<" + std::to_string(w) + ", " + std::to_string(w - frac) + ">";
}

// A decimal that reads back as exactly code * 2^-frac (doubles hold these exactly: |code| < 2^53).
std::string exact(int64_t code, int frac) {
  char b[64];
  std::snprintf(b, sizeof b, "%.17g", std::ldexp(static_cast<double>(code), -frac));
  return b;
}

std::string float_literal(float v) {
  char b[64];
  std::snprintf(b, sizeof b, "%.9g", static_cast<double>(v));  // 9 digits read back as the same float
  std::string s = b;
  if (s.find_first_of(".e") == std::string::npos) s += ".0";
  return s + "f";
}

struct Hls {
  const Program& p;
  const HlsOptions& o;
  std::ostringstream defines, params, layers, top, weights_inc;
  std::map<std::string, std::string> files;
  std::map<std::string, std::string> qtypes;  // ap_fixed spelling -> typedef name
  int lane_lists = 0;  // index lists of per-channel and per-element quantizers so far (unique names)

  const Buffer& buf(int b) const { return p.buffers[static_cast<size_t>(b)]; }
  std::string btype(int b) const {
    if (b == 0) return "input_t";
    if (b == p.output) return "result_t";
    return "layer" + std::to_string(b) + "_t";
  }
  std::string bname(int b) const {
    if (b == 0) return "x";
    if (b == p.output) return "y";
    return "layer" + std::to_string(b) + "_out";
  }

  // The typedef of element type j of a quantizer (created once per distinct type).
  std::string qtype(const TypeTable& t, size_t j) {
    const int w = t.width(j), i = t.k + t.m[j] - t.f[j];
    std::string s = std::string(t.k ? "ap_fixed<" : "ap_ufixed<") + std::to_string(w) + ", " +
                    std::to_string(i) + ", " + ap_round(t.round) + ", " + compress::to_string(t.overflow) +
                    ">";
    auto it = qtypes.find(s);
    if (it != qtypes.end()) return it->second;
    std::string name = "quant" + std::to_string(qtypes.size()) + "_t";
    defines << "typedef " << s << ' ' << name << ";\n";
    return qtypes[s] = name;
  }

  // One conversion per element: y[e] = (type of e) x[e], or 0 for a zero-width (pruned) element.
  std::string convert(const TypeTable& t, size_t j, const std::string& y, const std::string& x) {
    if (t.width(j) <= 0) return y + " = 0;  // zero width: pruned";
    return y + " = (" + qtype(t, j) + ")" + x + ";";
  }

  void quantize_body(std::ostream& os, const TypeTable& t, int64_t n, int64_t channels, const std::string& y,
                     const std::string& x, const std::string& ind) {
    if (t.pattern == TypeTable::kUniform) {
      os << ind << "for (int e = 0; e < " << n << "; e++) {\n"
         << ind << "#pragma HLS UNROLL\n"
         << ind << "  " << convert(t, 0, y + "[e]", x + "[e]") << "\n"
         << ind << "}\n";
    } else {
      // A type per channel (the last axis) or per element: one loop per distinct type over a constant list of
      // the channels (elements) that have it, so that the code grows with the number of types (HGQ learns a
      // few dozen), not with the channels or elements.
      const bool per_channel = t.pattern == TypeTable::kChannel;
      const int64_t lanes = per_channel ? channels : n, positions = n / lanes;
      std::map<std::string, std::vector<int64_t>> groups;  // the conversion of x[i] into y[i] -> lanes
      std::vector<std::string> order;
      for (int64_t e = 0; e < lanes; ++e) {
        const std::string c = convert(t, static_cast<size_t>(e), y + "[i]", x + "[i]");
        if (groups.find(c) == groups.end()) order.push_back(c);
        groups[c].push_back(e);
      }
      std::string in = ind;
      if (positions > 1) {
        os << ind << "for (int p = 0; p < " << positions << "; p++) {\n" << ind << "#pragma HLS UNROLL\n";
        in += "  ";
      }
      for (const std::string& c : order) {
        const std::vector<int64_t>& es = groups[c];
        const std::string nm = (per_channel ? "channels" : "elements") + std::to_string(lane_lists++);
        os << in << "static const int " << nm << "[" << es.size() << "] = {";
        for (size_t j = 0; j < es.size(); ++j)
          os << (j % 16 ? " " : "\n" + in + "    ") << es[j] << (j + 1 < es.size() ? "," : "");
        os << "};\n"
           << in << "for (int j = 0; j < " << es.size() << "; j++) {\n"
           << in << "#pragma HLS UNROLL\n"
           << in << "  const int i = " << (positions > 1 ? "p * " + std::to_string(lanes) + " + " : "") << nm
           << "[j];\n"
           << in << "  " << c << "\n"
           << in << "}\n";
      }
      if (positions > 1) os << ind << "}\n";
    }
  }

  std::string signature(const Op& op, const std::string& fn) const {
    const int64_t nin = buf(op.in).size, nout = buf(op.out).size;
    if (op.kind == Op::kContext)
      return "void " + fn + "(" + btype(op.in) + " p[" + std::to_string(nin) + "], " + btype(op.in2) +
             " x2[" + std::to_string(buf(op.in2).size) + "], " + btype(op.out) + " y[" +
             std::to_string(nout) + "])";
    if (op.kind == Op::kAdd)
      return "void " + fn + "(" + btype(op.in) + " x[" + std::to_string(nin) + "], " + btype(op.in2) +
             " x2[" + std::to_string(nin) + "], " + btype(op.out) + " y[" + std::to_string(nout) + "])";
    if (op.kind == Op::kRelu || op.kind == Op::kHardTanh)
      return "void " + fn + "(" + btype(op.out) + " y[" + std::to_string(nout) + "])";
    return "void " + fn + "(" + btype(op.in) + " x[" + std::to_string(nin) + "], " + btype(op.out) + " y[" +
           std::to_string(nout) + "])";
  }

  // An ap type spelling of a quantizer type, modes included (they act on every conversion into it).
  static std::string ap_type(const compress::FixedType& t) {
    const int w = t.k + t.i + t.f;
    return std::string(t.k ? "ap_fixed<" : "ap_ufixed<") + std::to_string(w) + ", " +
           std::to_string(t.k + t.i) + ", " + ap_round(t.round) + ", " + compress::to_string(t.overflow) +
           ">";
  }

  // A constant table in its own header (weights/NAME.h), values exact.
  void table(const std::string& nm, const std::string& type, const std::vector<int64_t>& codes, int frac,
             const std::string& what) {
    std::ostringstream os;
    os << "// " << nm << ": " << what << ", " << codes.size() << " entries\n#ifndef " << nm << "_H_\n#define "
       << nm << "_H_\n\nstatic const " << type << ' ' << nm << '[' << codes.size() << "] = {";
    for (size_t j = 0; j < codes.size(); ++j)
      os << (j % 16 ? " " : "\n    ") << exact(codes[j], frac) << (j + 1 < codes.size() ? "," : "");
    os << "};\n\n#endif\n";
    files["firmware/weights/" + nm + ".h"] = os.str();
    weights_inc << "#include \"weights/" << nm << ".h\"\n";
  }

  // A power-of-two constant 2^e as a one-bit ap_ufixed (exact in any product).
  static std::string pow2_const(const std::string& nm, int e) {
    return "  static const ap_ufixed<1, " + std::to_string(1 + e) + "> " + nm + " = " + exact(1, -e) + ";\n";
  }

  // `static const long long NAME[N] = {...};` inside a function.
  static std::string int_array(const std::string& nm, const std::vector<int64_t>& v) {
    std::string s = "  static const long long " + nm + "[" + std::to_string(v.size()) + "] = {";
    for (size_t j = 0; j < v.size(); ++j) s += (j ? ", " : "") + std::to_string(v[j]) + "LL";
    return s + "};\n";
  }

  // LayerNorm per token in integer arithmetic (compress/layer_norm_fixed.h), as the C export computes it.
  void layer_norm(const Op& op, const std::string& fn) {
    const int64_t n = op.n_in, lo = int64_t{1} << compress::kLnTableBits;
    const int base = compress::kLnTableFrac - compress::kLnFrac;
    const int wy = signed_bits(buf(op.out).min(), buf(op.out).max());  // y's codes, exact by its bounds
    layers << "// " << op.name << ": layer norm over " << n << " features, 1/sqrt from a table of "
           << op.table.size() << " entries\n"
           << signature(op, fn) << " {\n#pragma HLS INLINE\n"
           << int_array("rs", op.table) << int_array("g", op.weights) << int_array("b", op.bias)
           << pow2_const("in_scale", buf(op.in).frac) << pow2_const("out_scale", -buf(op.out).frac)
           << "  for (int r = 0; r < " << op.rows << "; r++) {\n#pragma HLS PIPELINE\n    long long c[" << n
           << "], s = 0, v = 0;\n    for (int e = 0; e < " << n
           << "; e++) {\n      const ap_fixed<48, 48> t = x[r * " << n
           << " + e] * in_scale;\n      c[e] = t.to_int64();\n      s += c[e];\n    }\n"
           << "    for (int e = 0; e < " << n << "; e++) {\n      const long long d = " << n
           << " * c[e] - s;\n      v += d * d;\n    }\n"
           << "    int k = 0;\n    long long m = v;\n    if (v != 0) {\n      for (; m >= " << 4 * lo
           << "; m >>= 2) k++;\n"
           << "      for (; m < " << lo << "; m <<= 2) k--;\n    }\n"
           << "    for (int e = 0; e < " << n << "; e++) {\n      long long xh = 0;\n      if (v != 0) {\n"
           << "        const long long p = (" << n << " * c[e] - s) * rs[m - " << lo
           << "];\n        xh = " << base << " + k > 0 ? (p + (1LL << (" << base << " + k - 1))) >> (" << base
           << " + k) : p * (1LL << -(" << base << " + k));\n      }\n      const ap_fixed<" << wy << ", "
           << wy << "> code = b[e] + xh * g[e] * " << (int64_t{1} << op.prod_shift) << "LL;\n      y[r * "
           << n << " + e] = code * out_scale;\n    }\n  }\n}\n\n";
  }

  // sigmoid / tanh through hls4ml's table: index = trunc(x * N / (2R)) + N/2, clamped.
  void lut(const Op& op, int id, const std::string& fn) {
    const std::string is = std::to_string(id);
    const int64_t n = static_cast<int64_t>(op.table.size());
    const bool gelu = op.lut.function == compress::LutFunction::kGelu;
    const char* f = op.lut.function == compress::LutFunction::kSigmoid ? "sigmoid" : gelu ? "gelu" : "tanh";
    defines << "typedef " << ap_type(op.lut.table_type) << " table" << is << "_t;\n";
    table("table" + is, "table" + is + "_t", op.table, op.lut.table_type.f,
          std::string(f) + " table of " + op.name);
    layers << "// " << op.name << ": " << f << " as hls4ml's table of " << n << " entries over [-"
           << op.lut.range << ", " << op.lut.range << ")\n"
           << signature(op, fn) << " {\n#pragma HLS INLINE\n"
           << pow2_const("scale", op.lut_shift + buf(op.in).frac) << "  for (int e = 0; e < "
           << buf(op.out).size << "; e++) {\n#pragma HLS UNROLL\n"
           << "    const ap_fixed<40, 40, AP_TRN_ZERO> q = x[e] * scale;  // toward zero, as hls4ml's int "
              "conversion\n"
           << "    const int j = q.to_int();\n";
    if (gelu)  // beyond the table: x itself above R, 0 below -R (exact in y's type)
      layers << "    if (x[e] >= " << op.lut.range << ") y[e] = x[e];\n    else if (x[e] < -" << op.lut.range
             << ") y[e] = 0;\n    else ";
    else
      layers << "    ";
    layers << "y[e] = table" << is << "[j < " << -n / 2 << " ? 0 : j > " << n / 2 - 1 << " ? " << n - 1
           << " : j + " << n / 2 << "];\n  }\n}\n\n";
  }

  void hard_tanh(const Op& op, const std::string& fn) {
    const Buffer& y = buf(op.out);
    const int64_t one = int64_t{1} << y.frac;
    layers << "// " << op.name << ": hard tanh, clip to [-1, 1]\n"
           << signature(op, fn) << " {\n#pragma HLS INLINE\n  for (int e = 0; e < " << y.size
           << "; e++) {\n#pragma HLS UNROLL\n";
    if (y.min() < -one) layers << "    if (y[e] < -1) y[e] = -1;\n";
    if (y.max() > one) layers << "    if (y[e] > 1) y[e] = 1;\n";
    layers << "  }\n}\n\n";
  }

  // hls4ml's softmax (stable or latency) on every lane of the last axis.
  void softmax(const Op& op, int id, const std::string& fn) {
    const std::string is = std::to_string(id), T = "softmax" + is;
    const compress::SoftmaxLutSpec& sp = op.softmax;
    const int64_t L = buf(op.out).shape.back(), n = op.softmax_tables.size;
    int bits = 0;
    while ((int64_t{1} << bits) < n) ++bits;
    defines << "typedef " << ap_type(sp.input_type) << ' ' << T << "_in_t;\ntypedef "
            << ap_type(compress::softmax_diff_type(sp.input_type)) << ' ' << T << "_diff_t;\ntypedef "
            << ap_type(sp.exp_table_type) << ' ' << T << "_exp_t;\ntypedef " << ap_type(sp.inv_table_type)
            << ' ' << T << "_inv_t;\n";
    if (sp.result_type) defines << "typedef " << ap_type(*sp.result_type) << ' ' << T << "_res_t;\n";
    table("exp_table" + is, T + "_exp_t", op.softmax_tables.exp, sp.exp_table_type.f,
          "softmax exp table of " + op.name);
    table("invert_table" + is, T + "_inv_t", op.softmax_tables.inv, sp.inv_table_type.f,
          "softmax invert table of " + op.name);
    // A value's table index is the top `bits` bits of its word: floor(v * 2^(bits - I)) mod N, I its integer
    // bits.
    const bool stable = sp.implementation == compress::SoftmaxImpl::kStable;
    layers << "// " << op.name << ": softmax (" << (stable ? "stable" : "latency") << ") over lanes of " << L
           << ", hls4ml's tables of " << n << " entries\n"
           << signature(op, fn) << " {\n#pragma HLS INLINE\n"
           << pow2_const("in_scale", bits - sp.input_type.k - sp.input_type.i)
           << pow2_const("exp_scale", bits - sp.exp_table_type.k - sp.exp_table_type.i)
           << "  for (int l = 0; l < " << buf(op.out).size / L << "; l++) {\n#pragma HLS UNROLL\n    " << T
           << "_in_t a[" << L << "];\n    " << T << "_exp_t e[" << L << "];\n    for (int j = 0; j < " << L
           << "; j++) a[j] = x[l * " << L << " + j];\n";
    if (stable)
      layers << "    " << T << "_in_t m = a[0];\n    for (int j = 1; j < " << L
             << "; j++)\n      if (a[j] > m) m = a[j];\n"
             << "    for (int j = 0; j < " << L << "; j++) {\n      const " << T
             << "_diff_t d = a[j] - m;\n      a[j] = d;\n    }\n";
    layers << "    for (int j = 0; j < " << L
           << "; j++) {\n      const ap_fixed<32, 32, AP_TRN> t = a[j] * in_scale;\n"
           << "      e[j] = exp_table" << is << "[t.to_int() & " << n - 1 << "];\n    }\n";
    const std::string sum = adder_tree(
        layers, L, T + "_exp_t", [](const std::string& a, const std::string& b) { return a + " + " + b; });
    layers << "    const ap_fixed<32, 32, AP_TRN> ts = " << sum << " * exp_scale;\n    const " << T
           << "_inv_t inv = invert_table" << is << "[ts.to_int() & " << n - 1
           << "];\n    for (int j = 0; j < " << L << "; j++) {\n";
    if (sp.result_type)
      layers << "      const " << T << "_res_t r = e[j] * inv;\n      y[l * " << L << " + j] = r;\n";
    else
      layers << "      y[l * " << L << " + j] = e[j] * inv;\n";
    layers << "    }\n  }\n}\n\n";
  }

  // trunc(window sum / real inputs) on the input's grid: the sum as an integer code, divided in C++.
  void avg_pool(const Op& op, const std::string& fn) {
    const Window& w = op.win;
    const Buffer& x = buf(op.in);
    int64_t bound = 0;
    for (size_t e = 0; e < x.lo.size(); ++e)
      bound = std::max<int64_t>({bound, std::llabs(x.lo[e]), std::llabs(x.hi[e])});
    const std::string acc = container(-bound * w.KH * w.KW, bound * w.KH * w.KW, x.frac);
    layers << "// " << op.name
           << ": average pooling, the sum divided by the real (unpadded) inputs, toward zero\n"
           << signature(op, fn) << " {\n#pragma HLS INLINE\n"
           << pow2_const("to_code", x.frac) << pow2_const("to_value", -x.frac) << "  for (int oh = 0; oh < "
           << w.OH << "; oh++)\n    for (int ow = 0; ow < " << w.OW << "; ow++)\n      for (int c = 0; c < "
           << w.C << "; c++) {\n#pragma HLS UNROLL\n        " << acc
           << " sum = 0;\n        int n = 0;\n        for (int kh = 0; kh < " << w.KH
           << "; kh++)\n          for (int kw = 0; kw < " << w.KW
           << "; kw++) {\n            const int ih = oh * " << w.SH << " - " << w.PH << " + kh, iw = ow * "
           << w.SW << " - " << w.PW << " + kw;\n"
           << "            if (ih < 0 || ih >= " << w.H << " || iw < 0 || iw >= " << w.W << ") continue;\n"
           << "            sum += x[(ih * " << w.W << " + iw) * " << w.C
           << " + c];\n            n++;\n          }\n"
           << "        const ap_fixed<40, 40> q = (sum * to_code).to_int64() / n;  // toward zero\n"
           << "        y[(oh * " << w.OW << " + ow) * " << w.C << " + c] = q * to_value;\n      }\n}\n\n";
  }

  // Emits the layer; returns its reuse factor.
  int64_t mac(const Op& op, int id, const std::string& fn) {
    const Buffer& y = buf(op.out);
    const SparseWeights s = sparse_weights(op);
    const Window& w = op.win;
    const bool dense = op.kind == Op::kDense, padded = !dense && w.padded();
    const int64_t mult_in = dense ? op.n_in : w.KH * w.KW * (op.kind == Op::kDepthwise ? 1 : w.C);
    const int64_t mult_out = op.kind == Op::kDepthwise ? 1 : op.n_out;
    auto rf_it = o.layer_reuse.find(op.name);
    const int64_t rf = rf_it != o.layer_reuse.end() ? rf_it->second : o.reuse_factor;
    if (!valid_reuse_factor(mult_in, mult_out, rf)) {
      std::string valid;
      for (int64_t v : valid_reuse_factors(mult_in, mult_out))
        valid += (valid.empty() ? "" : ", ") + std::to_string(v);
      throw InputError("reuse factor " + std::to_string(rf) + " is not valid for layer '" + op.name + "' (" +
                       std::to_string(mult_in) + " x " + std::to_string(mult_out) +
                       " multipliers); valid: " + valid);
    }
    const int64_t zeros = static_cast<int64_t>(op.weights.size()) - static_cast<int64_t>(s.value.size());
    const int64_t total = mult_in * mult_out;
    // Types: weights on w_frac, biases and the accumulator on the output grid.
    int64_t wlo = 0, whi = 0, blo = 0, bhi = 0;
    for (int64_t v : op.weights) wlo = std::min(wlo, v), whi = std::max(whi, v);
    for (int64_t v : op.bias) blo = std::min(blo, v), bhi = std::max(bhi, v);
    const std::string is = std::to_string(id);
    defines << "typedef " << container(wlo, whi, op.w_frac) << " weight" << is << "_t;\n"
            << "typedef " << container(blo, bhi, y.frac) << " bias" << is << "_t;\n"
            << "typedef " << container(-op.partial_bound, op.partial_bound, y.frac) << " accum" << is
            << "_t;\n";
    params << "// " << op.name << "\nstruct config" << is << " {\n"
           << "  static const unsigned n_in = " << mult_in
           << ";\n  static const unsigned n_out = " << mult_out << ";\n"
           << "  static const unsigned reuse_factor = " << rf
           << ";\n  static const unsigned n_zeros = " << zeros << ";\n"
           << "  static const unsigned n_nonzeros = " << s.value.size() << ";\n"
           << "  static const unsigned multiplier_limit = " << ((total + rf - 1) / rf - zeros / rf) << ";\n"
           << "  typedef accum" << is << "_t accum_t;\n  typedef bias" << is << "_t bias_t;\n  typedef weight"
           << is << "_t weight_t;\n};\n\n";
    // The kernel in hls4ml's compressed layout: only the nonzero weights, each with its output unit and its
    // input offset, so that a pruned weight costs neither a multiplier nor a line; the loops below run over
    // them.
    const int64_t nnz = static_cast<int64_t>(s.value.size());
    std::vector<int64_t> unit, offset, tap_h, tap_w;
    for (int64_t n = 0; n < op.n_out; ++n)
      for (int64_t p = s.start[static_cast<size_t>(n)]; p < s.start[static_cast<size_t>(n) + 1]; ++p) {
        const size_t q = static_cast<size_t>(p);
        unit.push_back(n), tap_h.push_back(s.kh[q]), tap_w.push_back(s.kw[q]);
        offset.push_back(s.offset[q] + (op.kind == Op::kDepthwise ? n : 0));
      }
    const std::string shape =
        dense ? "(" + std::to_string(op.n_in) + ", " + std::to_string(op.n_out) + ")"
              : "(" + std::to_string(w.KH) + ", " + std::to_string(w.KW) + ", " + std::to_string(w.C) +
                    (op.kind == Op::kDepthwise ? "" : ", " + std::to_string(op.n_out)) + ")";
    std::ostringstream wh, bh;
    // A constant array, 16 values a line; an empty one holds a single unused 0 (C++ has no empty arrays).
    auto array = [](std::ostream& os, const std::string& type, const std::string& nm,
                    const std::vector<std::string>& v) {
      os << "static const " << type << ' ' << nm << '[' << std::max<size_t>(v.size(), 1) << "] = {";
      for (size_t j = 0; j < v.size(); ++j)
        os << (j % 16 ? " " : "\n    ") << v[j] << (j + 1 < v.size() ? "," : "");
      os << (v.empty() ? "0" : "") << "};\n";
    };
    auto ints = [](const std::vector<int64_t>& v) {
      std::vector<std::string> o;
      for (int64_t x : v) o.push_back(std::to_string(x));
      return o;
    };
    auto values = [](const std::vector<int64_t>& v, int frac) {
      std::vector<std::string> o;
      for (int64_t c : v) o.push_back(exact(c, frac));
      return o;
    };
    int64_t wl = 0, wu = 0;
    for (int64_t c : s.value) wl = std::min(wl, c), wu = std::max(wu, c);
    wh << "// w" << is << ": " << op.name << ", kernel shape " << shape << ", " << nnz
       << " nonzero weights (min " << exact(wl, op.w_frac) << ", max " << exact(wu, op.w_frac) << "); the "
       << zeros << " pruned (zero) ones are left out.\n// w" << is << "_unit: each weight's output unit; w"
       << is << "_in: its input's offset" << (dense ? "" : " from the window's first pixel") << ".\n#ifndef w"
       << is << "_H_\n#define w" << is << "_H_\n\n#define W" << is << "_NONZERO " << nnz << "\n";
    array(wh, "weight" + is + "_t", "w" + is, values(s.value, op.w_frac));
    array(wh, "int", "w" + is + "_unit", ints(unit));
    array(wh, "int", "w" + is + "_in", ints(offset));
    if (padded) {
      array(wh, "int", "w" + is + "_kh", ints(tap_h));
      array(wh, "int", "w" + is + "_kw", ints(tap_w));
    }
    wh << "\n#endif\n";
    bh << "// b" << is << ": " << op.name << ", shape (" << op.n_out << ")\n#ifndef b" << is
       << "_H_\n#define b" << is << "_H_\n\n";
    array(bh, "bias" + is + "_t", "b" + is, values(op.bias, y.frac));
    bh << "\n#endif\n";
    files["firmware/weights/w" + is + ".h"] = wh.str();
    files["firmware/weights/b" + is + ".h"] = bh.str();
    weights_inc << "#include \"weights/w" << is << ".h\"\n#include \"weights/b" << is << ".h\"\n";

    const bool resource = o.strategy == "resource";
    const int64_t block = (nnz + rf - 1) / rf;  // resource: products issued per iteration of the reuse loop
    layers << "// " << op.name << ": " << total << " multiplications, " << zeros
           << " with a pruned (zero) weight left out; accumulator exact (no overflow possible); "
           << (resource ? "resource strategy: " + std::to_string(block) + " multipliers, each used " +
                              std::to_string(rf) + " times"
                        : std::string("latency strategy"))
           << "\n"
           << signature(op, fn) << " {\n";
    if (!resource)
      layers << "#pragma HLS PIPELINE II=" << rf
             << "\n#pragma HLS ALLOCATION operation instances=mul limit=config" << is
             << "::multiplier_limit\n";
    const std::string n_out = std::to_string(op.n_out), acc = "accum" + is + "_t", W = "w" + is;
    // The accumulators of one output position: start at the biases, take every nonzero product (`guard`:
    // statements that skip a product, e.g. a tap in the padding), store. The products are one unrolled loop
    // (latency) or reuse-factor pipelined iterations of `block` unrolled ones (resource; hls4ml's ReuseLoop
    // and MultLoop, product p = ir + RF * im).
    auto body = [&](const std::string& ind, const std::string& x_at, const std::string& y_at,
                    const std::vector<std::string>& guard) {
      layers << ind << acc << " acc[" << n_out << "];\n#pragma HLS ARRAY_PARTITION variable=acc complete\n"
             << ind << "for (int n = 0; n < " << n_out << "; n++) {\n#pragma HLS UNROLL\n"
             << ind << "  acc[n] = b" << is << "[n];\n"
             << ind << "}\n";
      std::string in = ind + "  ";
      if (resource) {
        layers << ind << "for (int ir = 0; ir < " << rf << "; ir++) {\n#pragma HLS PIPELINE II=1 rewind\n"
               << in << "for (int im = 0; im < " << block << "; im++) {\n#pragma HLS UNROLL\n";
        in += "  ";
        layers << in << "const int p = ir + " << rf << " * im;\n"
               << in << "if (p >= W" << is << "_NONZERO) continue;\n";
      } else {
        layers << ind << "for (int p = 0; p < W" << is << "_NONZERO; p++) {\n#pragma HLS UNROLL\n";
      }
      for (const std::string& g : guard) layers << in << g << "\n";
      layers << in << "acc[" << W << "_unit[p]] += x[" << x_at << W << "_in[p]] * " << W << "[p];\n";
      if (resource) layers << ind << "  }\n";
      layers << ind << "}\n"
             << ind << "for (int n = 0; n < " << n_out << "; n++) {\n#pragma HLS UNROLL\n"
             << ind << "  y[" << y_at << "n] = acc[n];\n"
             << ind << "}\n";
    };
    if (dense) {
      layers << "  for (int r = 0; r < " << op.rows << "; r++) {\n#pragma HLS UNROLL\n";
      body("    ", "r * " + std::to_string(op.n_in) + " + ", "r * " + n_out + " + ", {});
      layers << "  }\n}\n\n";
      return rf;
    }
    layers << "  for (int oh = 0; oh < " << w.OH
           << "; oh++) {\n#pragma HLS UNROLL\n    for (int ow = 0; ow < " << w.OW
           << "; ow++) {\n#pragma HLS UNROLL\n      const int ih0 = oh * " << w.SH << " - " << w.PH
           << ", iw0 = ow * " << w.SW << " - " << w.PW << ";\n      const int base = (ih0 * " << w.W
           << " + iw0) * " << w.C << ";\n";
    std::vector<std::string> guard;
    if (padded)
      guard = {"const int ih = ih0 + " + W + "_kh[p], iw = iw0 + " + W + "_kw[p];",
               "if (ih < 0 || ih >= " + std::to_string(w.H) + " || iw < 0 || iw >= " + std::to_string(w.W) +
                   ") continue;  // padding"};
    body("      ", "base + ", "(oh * " + std::to_string(w.OW) + " + ow) * " + n_out + " + ", guard);
    layers << "    }\n  }\n}\n\n";
    return rf;
  }
};

}  // namespace

bool valid_reuse_factor(int64_t n_in, int64_t n_out, int64_t rf) {
  if (rf < 1) return false;
  const int64_t mult = std::min(n_in, rf);
  const int64_t limit = (n_in * n_out + mult - 1) / mult;
  return (limit % n_out == 0 || rf >= n_in) && (rf % n_in == 0 || rf < n_in) && (n_in * n_out) % rf == 0;
}

std::vector<int64_t> valid_reuse_factors(int64_t n_in, int64_t n_out) {
  std::vector<int64_t> v;
  for (int64_t rf = 1; rf <= n_in * n_out; ++rf)
    if (valid_reuse_factor(n_in, n_out, rf)) v.push_back(rf);
  return v;
}

std::string tb_lines(const std::vector<double>& values, int64_t per_line, int precision) {
  std::string s;
  char b[64];
  for (size_t j = 0; j < values.size(); ++j) {
    std::snprintf(b, sizeof b, "%.*g", precision, values[j]);
    s += b;
    s += (static_cast<int64_t>(j + 1) % per_line == 0) ? "\n" : " ";
  }
  return s;
}

std::map<std::string, std::string> emit_hls(const Program& p, const HlsOptions& o) {
  KILN_CHECK(!p.ops.empty(), "nothing to generate: the program has no operations");
  if (o.strategy != "latency" && o.strategy != "resource")
    throw InputError("HLS strategy '" + o.strategy + "' is not one of: latency, resource");
  const std::string N = identifier(p.name);
  Hls h{p, o, {}, {}, {}, {}, {}, {}, {}, 0};
  const Buffer &in = p.input(), &out = p.out();
  h.defines
      << "#ifndef DEFINES_H_\n#define DEFINES_H_\n\n#include \"ap_fixed.h\"\n#include \"ap_int.h\"\n\n"
      << "// Generated by kiln: every type is exact for the values it holds (nothing rounds or overflows\n"
      << "// except in the quantizer types, which round and overflow as the model was trained).\n"
      << "#define N_INPUT " << in.size << "\n#define N_OUTPUT " << out.size << "\n\n";
  for (size_t b = 0; b < p.buffers.size(); ++b)
    h.defines << "typedef " << container(p.buffers[b].min(), p.buffers[b].max(), p.buffers[b].frac) << ' '
              << h.btype(static_cast<int>(b)) << ";\n";
  int64_t max_rf = 1;
  std::ostringstream calls;
  for (size_t j = 0; j < p.ops.size(); ++j) {
    const Op& op = p.ops[j];
    const int id = static_cast<int>(j) + 1;
    const std::string fn = "layer" + std::to_string(id) + "_" + identifier(op.name);
    const Buffer& y = h.buf(op.out);
    switch (op.kind) {
      case Op::kQuantize:
        h.layers << "// " << op.name << ": quantizer ("
                 << (op.types.pattern == TypeTable::kUniform   ? "one type"
                     : op.types.pattern == TypeTable::kChannel ? "a type per channel"
                                                               : "a type per element")
                 << ")\n"
                 << h.signature(op, fn) << " {\n#pragma HLS INLINE\n";
        h.quantize_body(h.layers, op.types, y.size, y.shape.back(), "y", "x", "  ");
        h.layers << "}\n\n";
        break;
      case Op::kDense:
      case Op::kConv:
      case Op::kDepthwise:
        max_rf = std::max(max_rf, h.mac(op, id, fn));
        break;
      case Op::kRelu:
        h.layers << "// " << op.name << ": ReLU\n"
                 << h.signature(op, fn) << " {\n#pragma HLS INLINE\n  for (int e = 0; e < " << y.size
                 << "; e++) {\n#pragma HLS UNROLL\n    if (y[e] < 0) y[e] = 0;\n  }\n}\n\n";
        break;
      case Op::kLut:
        h.lut(op, id, fn);
        break;
      case Op::kAvgPool:
        h.avg_pool(op, fn);
        break;
      case Op::kScores:
      case Op::kContext: {
        // Attention products of two activations: an exact accumulator (partial sums bounded by
        // partial_bound).
        const bool sc = op.kind == Op::kScores;
        const int64_t T = op.rows, H = op.n_out, dh = op.n_in, D = H * dh;
        h.layers << "// " << op.name << ": attention " << (sc ? "scores Q K^T" : "context P V")
                 << " per head\n"
                 << h.signature(op, fn) << " {\n#pragma HLS INLINE\n  typedef "
                 << container(-op.partial_bound, op.partial_bound, y.frac)
                 << " acc_t;\n  for (int hh = 0; hh < " << H << "; hh++)\n    for (int i = 0; i < " << T
                 << "; i++)\n      for (int " << (sc ? "j" : "c") << " = "
                 << (sc ? "0" : "hh * " + std::to_string(dh)) << "; " << (sc ? "j" : "c") << " < "
                 << (sc ? std::to_string(T) : "(hh + 1) * " + std::to_string(dh)) << "; " << (sc ? "j" : "c")
                 << "++) {\n#pragma HLS PIPELINE\n        acc_t acc = 0;\n";
        if (sc)
          h.layers << "        for (int c = hh * " << dh << "; c < (hh + 1) * " << dh
                   << "; c++)\n          acc += x[i * " << 3 * D << " + c] * x[j * " << 3 * D << " + " << D
                   << " + c];\n        y[(hh * " << T << " + i) * " << T << " + j] = acc;\n      }\n}\n\n";
        else
          h.layers << "        for (int j = 0; j < " << T << "; j++)\n          acc += p[(hh * " << T
                   << " + i) * " << T << " + j] * x2[j * " << 3 * D << " + " << 2 * D
                   << " + c];\n        y[i * " << D << " + c] = acc;\n      }\n}\n\n";
        break;
      }
      case Op::kLayerNorm:
        h.layer_norm(op, fn);
        break;
      case Op::kAddConst:
        h.layers << "// " << op.name << ": add a constant per element\n"
                 << h.signature(op, fn) << " {\n#pragma HLS INLINE\n"
                 << Hls::int_array("c", op.bias) << Hls::pow2_const("in_scale", h.buf(op.in).frac)
                 << Hls::pow2_const("out_scale", -y.frac) << "  for (int e = 0; e < " << y.size
                 << "; e++) {\n#pragma HLS UNROLL\n    const ap_fixed<48, 48> t = x[e] * in_scale;\n"
                 << "    const ap_fixed<" << signed_bits(y.min(), y.max()) << ", "
                 << signed_bits(y.min(), y.max()) << "> code = t.to_int64() * "
                 << (int64_t{1} << op.prod_shift) << "LL + c[e];\n    y[e] = code * out_scale;\n  }\n}\n\n";
        break;
      case Op::kSlice:
        h.layers << "// " << op.name << ": the first " << y.size << " of " << h.buf(op.in).size << " values\n"
                 << h.signature(op, fn) << " {\n#pragma HLS INLINE\n  for (int e = 0; e < " << y.size
                 << "; e++) {\n#pragma HLS UNROLL\n    y[e] = x[e];\n  }\n}\n\n";
        break;
      case Op::kSumSquares:
        h.layers << "// " << op.name << ": sum of squares of " << op.n_in
                 << " values (exact: acc_t holds every partial sum)\n"
                 << h.signature(op, fn) << " {\n#pragma HLS INLINE\n  typedef "
                 << container(0, op.partial_bound, y.frac)
                 << " acc_t;\n  acc_t acc = 0;\n  for (int e = 0; e < " << op.n_in
                 << "; e++) {\n#pragma HLS UNROLL\n    acc += x[e] * x[e];\n  }\n  y[0] = acc;\n}\n\n";
        break;
      case Op::kAdd:
        h.layers << "// " << op.name << ": residual add (exact: y's type holds every sum)\n"
                 << h.signature(op, fn) << " {\n#pragma HLS INLINE\n  for (int e = 0; e < " << y.size
                 << "; e++) {\n#pragma HLS UNROLL\n    y[e] = x[e] + x2[e];\n  }\n}\n\n";
        break;
      case Op::kHardTanh:
        h.hard_tanh(op, fn);
        break;
      case Op::kSoftmax:
        h.softmax(op, id, fn);
        break;
      case Op::kMaxPool: {
        const Window& w = op.win;
        h.layers << "// " << op.name << ": max pooling (padding never wins)\n"
                 << h.signature(op, fn) << " {\n#pragma HLS INLINE\n  for (int oh = 0; oh < " << w.OH
                 << "; oh++)\n    for (int ow = 0; ow < " << w.OW << "; ow++)\n      for (int c = 0; c < "
                 << w.C << "; c++) {\n#pragma HLS UNROLL\n        " << h.btype(op.in)
                 << " best = 0;\n        bool any = false;\n        for (int kh = 0; kh < " << w.KH
                 << "; kh++)\n          for (int kw = 0; kw < " << w.KW
                 << "; kw++) {\n            const int ih = oh * " << w.SH << " - " << w.PH
                 << " + kh, iw = ow * " << w.SW << " - " << w.PW << " + kw;\n"
                 << "            if (ih < 0 || ih >= " << w.H << " || iw < 0 || iw >= " << w.W
                 << ") continue;\n"
                 << "            if (!any || x[(ih * " << w.W << " + iw) * " << w.C
                 << " + c] > best) best = x[(ih * " << w.W << " + iw) * " << w.C
                 << " + c];\n            any = true;\n          }\n        y[(oh * " << w.OW << " + ow) * "
                 << w.C << " + c] = best;\n      }\n}\n\n";
        break;
      }
    }
    const bool in_place = op.kind == Op::kRelu || op.kind == Op::kHardTanh;
    if (!in_place && op.out != p.output)
      calls << "  " << h.btype(op.out) << ' ' << h.bname(op.out) << '[' << y.size
            << "];\n#pragma HLS ARRAY_PARTITION variable=" << h.bname(op.out) << " complete dim=0\n";
    calls << "  " << fn << '(' << (in_place ? "" : h.bname(op.in) + ", ")
          << (op.in2 >= 0 ? h.bname(op.in2) + ", " : "") << h.bname(op.out) << ");\n";
  }
  // The float front end: standardisation and the input quantizer.
  std::ostringstream qi;
  qi << "// Float features -> input_t: standardisation (as kiln: (x - mean) * scale, in float) and the "
        "model's input\n"
     << "// quantizer. For the test bench and for host software feeding the firmware.\n#ifndef "
        "QUANTIZE_INPUT_H_\n"
     << "#define QUANTIZE_INPUT_H_\n\n#include \"defines.h\"\n\n";
  const bool st = !p.mean.empty();
  if (st) {
    qi << "static const float kiln_mean[N_INPUT] = {";
    for (size_t j = 0; j < p.mean.size(); ++j) qi << (j ? ", " : "") << float_literal(p.mean[j]);
    qi << "};\nstatic const float kiln_scale[N_INPUT] = {";
    for (size_t j = 0; j < p.scale.size(); ++j) qi << (j ? ", " : "") << float_literal(p.scale[j]);
    qi << "};\n\n";
  }
  qi << "inline void quantize_input(const float in[N_INPUT], input_t x[N_INPUT]) {\n  float s[N_INPUT];\n"
     << "  for (int e = 0; e < N_INPUT; e++) {\n    s[e] = in[e];\n";
  if (st) qi << "    s[e] = s[e] - kiln_mean[e];\n    s[e] = s[e] * kiln_scale[e];\n";
  qi << "  }\n";
  h.quantize_body(qi, p.input_types, in.size, in.shape.back(), "x", "s", "  ");
  qi << "}\n\n#endif\n";
  const std::string quantize_input = qi.str();
  h.defines << "\n#endif\n";
  auto& f = h.files;
  f["firmware/quantize_input.h"] = quantize_input;
  f["firmware/defines.h"] = h.defines.str();
  f["firmware/parameters.h"] = "#ifndef PARAMETERS_H_\n#define PARAMETERS_H_\n\n#include \"defines.h\"\n\n" +
                               h.weights_inc.str() +
                               "\n// One config per multiply-accumulate layer, as hls4ml's dense_config.\n" +
                               h.params.str() + "#endif\n";
  f["firmware/" + N + ".h"] = "#ifndef " + N + "_H_\n#define " + N +
                              "_H_\n\n#include \"defines.h\"\n\n// Generated by kiln: "
                              "bit-exact with kiln's deployed fixed-point model. io_parallel.\nvoid " +
                              N + "(input_t x[N_INPUT], result_t y[N_OUTPUT]);\n\n#endif\n";
  std::ostringstream cpp;
  cpp << "// " << N << ".cpp: generated by kiln (io_parallel, " << o.strategy << " strategy).\n#include \""
      << N << ".h\"\n#include \"parameters.h\"\n\n"
      << h.layers.str() << "void " << N
      << "(input_t x[N_INPUT], result_t y[N_OUTPUT]) {\n#pragma HLS ARRAY_RESHAPE variable=x complete dim=0\n"
      << "#pragma HLS ARRAY_PARTITION variable=y complete dim=0\n#pragma HLS INTERFACE ap_vld port=x,y\n"
      << "#pragma HLS PIPELINE II=" << max_rf << "\n"
      << calls.str() << "}\n";
  f["firmware/" + N + ".cpp"] = cpp.str();
  // Test bench and project script.
  f[N + "_test.cpp"] =
      "// C-simulation test bench: reads tb_data/tb_input_features.dat (raw features, one sample per line) "
      "and\n"
      "// tb_data/tb_output_predictions.dat (kiln's outputs), writes tb_data/csim_results.log, and fails on "
      "any\n"
      "// difference (the firmware is bit-exact with kiln's deployed model).\n#include <cstdio>\n#include "
      "<fstream>\n"
      "#include <sstream>\n#include <string>\n\n#include \"firmware/" +
      N +
      ".h\"\n#include \"firmware/quantize_input.h\"\n\n"
      "int main() {\n  std::ifstream fin(\"tb_data/tb_input_features.dat\"), "
      "fpr(\"tb_data/tb_output_predictions.dat\");\n"
      "  std::ofstream fout(\"tb_data/csim_results.log\");\n  if (!fin || !fpr) {\n"
      "    std::printf(\"cannot open tb_data/tb_input_features.dat or "
      "tb_data/tb_output_predictions.dat\\n\");\n    return 2;\n  }\n"
      "  std::string iline, pline;\n  int n = 0, bad = 0;\n  while (std::getline(fin, iline) && "
      "std::getline(fpr, pline)) {\n"
      "    std::istringstream is(iline), ps(pline);\n    float in[N_INPUT];\n    for (int j = 0; j < "
      "N_INPUT; j++) is >> in[j];\n"
      "    input_t x[N_INPUT];\n    result_t y[N_OUTPUT];\n    quantize_input(in, x);\n    " +
      N +
      "(x, y);\n"
      "    for (int j = 0; j < N_OUTPUT; j++) {\n      double want = 0;\n      ps >> want;\n      const "
      "double got = y[j].to_double();\n"
      "      char b[64];\n      std::snprintf(b, sizeof b, \"%.17g\", got);\n      fout << b << (j + 1 < "
      "N_OUTPUT ? \" \" : \"\\n\");\n"
      "      bad += got != want;\n    }\n    n++;\n  }\n  std::printf(\"%d samples, %d mismatches\\n\", n, "
      "bad);\n"
      "  return (bad != 0 || n == 0) ? 1 : 0;\n}\n";
  char clock[32];
  std::snprintf(clock, sizeof clock, "%g", o.clock_period_ns);
  f["build_prj.tcl"] =
      "# Vitis HLS: C simulation and synthesis of " + N +
      ".\n#   vitis_hls -f build_prj.tcl\nopen_project -reset " + N + "_prj\nset_top " + N +
      "\nadd_files firmware/" + N + ".cpp -cflags \"-std=c++14\"\nadd_files -tb " + N +
      "_test.cpp -cflags \"-std=c++14\"\nadd_files -tb tb_data\nopen_solution -reset solution1\n"
      "set_part {" +
      o.part + "}\ncreate_clock -period " + clock +
      " -name default\ncsim_design\n"
      "csynth_design\nexit\n";
  return f;
}

}  // namespace kiln::codegen
