// The HLS kernels of layer norm, the activation tables (sigmoid, tanh, gelu), hard tanh, softmax, average
// pooling, and the multiply-accumulate layers (Dense, Conv, Depthwise) with their weights, biases and
// hls4ml config. The other op kinds' kernels are written inline in emit_hls().
#include <algorithm>
#include <cstdlib>
#include <sstream>

#include "codegen/emit_hls_internal.h"
#include "compress/layer_norm_fixed.h"

namespace kiln::codegen::hls_detail {

// LayerNorm per token in integer arithmetic (compress/layer_norm_fixed.h), as the C export computes it.
void Hls::layer_norm(const Op& op, const std::string& fn) {
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
         << " + k) : p * (1LL << -(" << base << " + k));\n      }\n      const ap_fixed<" << wy << ", " << wy
         << "> code = b[e] + xh * g[e] * " << (int64_t{1} << op.prod_shift) << "LL;\n      y[r * " << n
         << " + e] = code * out_scale;\n    }\n  }\n}\n\n";
}

// sigmoid / tanh through hls4ml's table: index = trunc(x * N / (2R)) + N/2, clamped.
void Hls::lut(const Op& op, int id, const std::string& fn) {
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

void Hls::hard_tanh(const Op& op, const std::string& fn) {
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
void Hls::softmax(const Op& op, int id, const std::string& fn) {
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
         << "_inv_t inv = invert_table" << is << "[ts.to_int() & " << n - 1 << "];\n    for (int j = 0; j < "
         << L << "; j++) {\n";
  if (sp.result_type)
    layers << "      const " << T << "_res_t r = e[j] * inv;\n      y[l * " << L << " + j] = r;\n";
  else
    layers << "      y[l * " << L << " + j] = e[j] * inv;\n";
  layers << "    }\n  }\n}\n\n";
}

// trunc(window sum / real inputs) on the input's grid: the sum as an integer code, divided in C++.
void Hls::avg_pool(const Op& op, const std::string& fn) {
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

int64_t Hls::mac(const Op& op, int id, const std::string& fn) {
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
         << "  static const unsigned n_in = " << mult_in << ";\n  static const unsigned n_out = " << mult_out
         << ";\n"
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
  bh << "// b" << is << ": " << op.name << ", shape (" << op.n_out << ")\n#ifndef b" << is << "_H_\n#define b"
     << is << "_H_\n\n";
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
           << "\n#pragma HLS ALLOCATION operation instances=mul limit=config" << is << "::multiplier_limit\n";
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
  layers << "  for (int oh = 0; oh < " << w.OH << "; oh++) {\n#pragma HLS UNROLL\n    for (int ow = 0; ow < "
         << w.OW << "; ow++) {\n#pragma HLS UNROLL\n      const int ih0 = oh * " << w.SH << " - " << w.PH
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

}  // namespace kiln::codegen::hls_detail
