#include "codegen/emit_c.h"

#include <algorithm>
#include <map>
#include <set>

#include "codegen/emit_c_dense.h"
#include "codegen/emit_c_quantize.h"
#include "codegen/emit_util.h"
#include "compress/layer_norm_fixed.h"

namespace kiln::codegen {

namespace {

using compress::Overflow;
using compress::Round;

const char* round_name(Round r) {
  switch (r) {
    case Round::kTrn:
      return "KILN_TRN";
    case Round::kTrnZero:
      return "KILN_TRN_ZERO";
    case Round::kRnd:
    case Round::kStochastic:
      return "KILN_RND";
    case Round::kRndZero:
      return "KILN_RND_ZERO";
    case Round::kRndMinInf:
      return "KILN_RND_MIN_INF";
    case Round::kRndInf:
      return "KILN_RND_INF";
    case Round::kRndConv:
      return "KILN_RND_CONV";
  }
  return "KILN_RND";
}

const char* overflow_name(Overflow o) {
  switch (o) {
    case Overflow::kWrap:
      return "KILN_WRAP";
    case Overflow::kSat:
      return "KILN_SAT";
    case Overflow::kSatSym:
      return "KILN_SAT_SYM";
    case Overflow::kSatZero:
      return "KILN_SAT_ZERO";
  }
  return "KILN_SAT";
}

// Rounding and overflow on integer codes, the C twin of compress::requantize (same case analysis).
const char* kRequant =
    R"(/* Code c with fractional bits fc -> the code of a type with k sign bits, m = i + f magnitude bits and
   s = fc - f, in the given rounding and overflow modes (ap_fixed order: round first, then overflow). */
static int64_t kiln_requant(int64_t c, int s, int k, int m, int rnd, int ovf) {
  int64_t q, lo, hi;
  if (k + m <= 0) return 0; /* zero width: pruned */
  if (s <= 0) {
    q = c * ((int64_t)1 << -s);
  } else if (s >= 63) {
    q = (rnd == KILN_TRN && c < 0) ? -1 : 0;
  } else {
    const int64_t step = (int64_t)1 << s, half = step >> 1;
    const int64_t fl = c >> s; /* floor */
    const int64_t r = c - fl * step;
    int up = 0;
    switch (rnd) {
      case KILN_TRN: up = 0; break;
      case KILN_TRN_ZERO: up = c < 0 && r != 0; break;
      case KILN_RND: up = r >= half; break;
      case KILN_RND_ZERO: up = r > half || (r == half && fl < 0); break;
      case KILN_RND_MIN_INF: up = r > half; break;
      case KILN_RND_INF: up = r > half || (r == half && fl >= 0); break;
      default: up = r > half || (r == half && (fl & 1) != 0); break; /* KILN_RND_CONV */
    }
    q = fl + up;
  }
  hi = ((int64_t)1 << m) - 1;
  lo = k ? (ovf == KILN_SAT_SYM ? -hi : -((int64_t)1 << m)) : 0;
  if (q >= lo && q <= hi) return q;
  switch (ovf) {
    case KILN_WRAP: {
      const uint64_t mod = (uint64_t)1 << (k + m);
      int64_t w = (int64_t)((uint64_t)q & (mod - 1));
      if (k && (uint64_t)w >= (mod >> 1)) w -= (int64_t)mod;
      return w;
    }
    case KILN_SAT:
    case KILN_SAT_SYM: return q < lo ? lo : hi;
    default: return 0; /* KILN_SAT_ZERO */
  }
}

)";

// Float input quantization in doubles without libm; every step is exact (powers of two, integer-valued
// doubles), as in compress::quantize.
const char* kRealQuant = R"(static double kiln_pow2(int e) {
  double r = 1.0;
  for (; e > 0; --e) r *= 2.0;
  for (; e < 0; ++e) r *= 0.5;
  return r;
}

static double kiln_floor(double v) {
  double t;
  if (v >= 4503599627370496.0 || v <= -4503599627370496.0) return v; /* |v| >= 2^52: an integer */
  t = (double)(long long)v;
  return t > v ? t - 1.0 : t;
}

/* The code of the real value v * 2^-f, given v = x * 2^f (inputs must be finite). */
static int64_t kiln_quant_real(double v, int k, int m, int rnd, int ovf) {
  double fl, d, q, lo, hi;
  if (k + m <= 0) return 0;
  fl = kiln_floor(v);
  d = v - fl;
  if (rnd == KILN_TRN) q = fl;
  else if (rnd == KILN_TRN_ZERO) q = (v < 0.0 && d != 0.0) ? fl + 1.0 : fl;
  else if (d < 0.5) q = fl;
  else if (d > 0.5) q = fl + 1.0;
  else if (rnd == KILN_RND) q = fl + 1.0;
  else if (rnd == KILN_RND_ZERO) q = v > 0.0 ? fl : fl + 1.0;
  else if (rnd == KILN_RND_MIN_INF) q = fl;
  else if (rnd == KILN_RND_INF) q = v > 0.0 ? fl + 1.0 : fl;
  else q = kiln_floor(fl * 0.5) * 2.0 == fl ? fl : fl + 1.0; /* KILN_RND_CONV */
  hi = kiln_pow2(m) - 1.0;
  lo = k ? (ovf == KILN_SAT_SYM ? -hi : -kiln_pow2(m)) : 0.0;
  if (q >= lo && q <= hi) return (int64_t)q;
  if (ovf == KILN_WRAP) {
    const double mod = kiln_pow2(k + m);
    double w = q - mod * kiln_floor(q / mod);
    if (k && w >= mod * 0.5) w -= mod;
    return (int64_t)w;
  }
  if (ovf == KILN_SAT || ovf == KILN_SAT_SYM) return (int64_t)(q < lo ? lo : hi);
  return 0;
}

)";

struct Emitter {
  const Program& p;
  COptions opt;
  std::string N;  // the model's name, the prefix of public symbols
  std::ostringstream tables, funcs, run;
  int64_t const_bytes = 0, code_bytes = 0;
  std::set<int> kept;       // residual blocks' inputs: their own static arrays, outside the ping-pong buffers
  std::map<int, int> slot;  // every other buffer but the input: ping-pong union 0 (kiln_a) or 1 (kiln_b)
  bool dsp = false;         // some layer has an SMLAD path: the preamble defines KILN_DSP

  const Buffer& buf(int b) const { return p.buffers[static_cast<size_t>(b)]; }
  std::string type(int b) const { return int_type(buf(b).min(), buf(b).max()); }
  int bytes(int b) const { return int_bytes(buf(b).min(), buf(b).max()); }
  std::string ptr(int b) const {
    if (b == 0) return "x";
    if (kept.count(b)) return "kiln_k" + std::to_string(b);
    return std::string(slot.at(b) == 0 ? "kiln_a" : "kiln_b") + ".i" + std::to_string(8 * bytes(b));
  }

  // LayerNorm per token (compress/layer_norm_fixed.h): d = n x - sum x, V = sum d^2, V = m 4^k with m in
  // [2^B, 2^(B+2)), x^ = round(d r[m - 2^B] 2^(kLnFrac - Q - k)), y = beta + 2^shift x^ gamma.
  void layer_norm(const Op& op, const std::string& id) {
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
          << "        xh = " << base << " + k > 0 ? (p + ((int64_t)1 << (" << base << " + k - 1))) >> ("
          << base << " + k) : p * ((int64_t)1 << -(" << base << " + k));\n      }\n"
          << "      y[r * " << n << " + e] = (" << type(op.out) << ")(kiln_b" << id << "[e] + xh * kiln_g"
          << id << "[e] * " << (int64_t{1} << op.prod_shift) << ");\n    }\n  }\n}\n\n";
    code_bytes += 260;
  }

  // y = x 2^shift + c: a constant per element (a positional embedding).
  void add_const(const Op& op, const std::string& id) {
    const auto [clo, chi] = std::minmax_element(op.bias.begin(), op.bias.end());
    const_bytes += write_array(tables, "static const", "kiln_c" + id, op.bias, int_bytes(*clo, *chi));
    funcs << "/* " << op.name << ": add a constant per element */\nstatic void kiln_op" << id << "(const "
          << type(op.in) << " *x, " << type(op.out) << " *y) {\n  int32_t e;\n  for (e = 0; e < "
          << buf(op.out).size << "; ++e) y[e] = (" << type(op.out) << ")((int64_t)x[e] * "
          << (int64_t{1} << op.prod_shift) << " + kiln_c" << id << "[e]);\n}\n\n";
    code_bytes += 40;
  }

  // The first y.size values of x, as they are (a VAE's mu).
  void slice(const Op& op, const std::string& id) {
    funcs << "/* " << op.name << ": the first " << buf(op.out).size << " of " << buf(op.in).size
          << " values */\nstatic void kiln_op" << id << "(const " << type(op.in) << " *x, " << type(op.out)
          << " *y) {\n  int32_t e;\n  for (e = 0; e < " << buf(op.out).size << "; ++e) y[e] = ("
          << type(op.out) << ")x[e];\n}\n\n";
    code_bytes += 30;
  }

  // y[0] = sum x[e]^2, exact: the accumulator holds every partial sum (partial_bound).
  void sum_squares(const Op& op, const std::string& id) {
    const std::string acc = op.partial_bound < (int64_t{1} << 31) ? "int32_t" : "int64_t";
    funcs << "/* " << op.name << ": sum of squares of " << op.n_in << " values, accumulator " << acc
          << " on 2^-" << buf(op.out).frac << " */\nstatic void kiln_op" << id << "(const " << type(op.in)
          << " *x, " << type(op.out) << " *y) {\n  int32_t e;\n  " << acc << " acc = 0;\n  for (e = 0; e < "
          << op.n_in << "; ++e) acc += (" << acc << ")x[e] * x[e];\n  y[0] = (" << type(op.out)
          << ")acc;\n}\n\n";
    code_bytes += 40;
  }

  // Attention scores y[h, i, j] = sum_c q[i, h dh + c] k[j, h dh + c] over x = [T, 3D] = (Q, K, V).
  void scores(const Op& op, const std::string& id) {
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
  void context(const Op& op, const std::string& id) {
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
  void add(const Op& op, const std::string& id) {
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
  std::pair<std::string, std::string> type_tables(std::ostream& os, const TypeTable& t, int grid,
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

  // Returns whether the op calls the generic kiln_requant.
  bool quantize(const Op& op, const std::string& id) {
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

  void mac(const Op& op, const std::string& id) {
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
    const std::string ps =
        op.prod_shift ? " * ((" + acc + ")1 << " + std::to_string(op.prod_shift) + ")" : "";
    const std::string out =
        "y[" + std::string(op.kind == Op::kDense ? "r" : "(oh * " + std::to_string(op.win.OW) + " + ow)") +
        " * " + std::to_string(op.n_out) + " + n] = (" + type(op.out) + ")(kiln_b" + id + "[n] + acc" + ps +
        ");\n";
    funcs << "/* " << op.name << ": " << op.weights.size() << " weights, "
          << op.weights.size() - s.value.size() << " pruned (no operation emitted); accumulator " << acc
          << " on 2^-" << y.frac << " */\n"
          << "static void kiln_op" << id << "(const " << type(op.in) << " *x, " << type(op.out) << " *y) {\n";
    if (op.kind == Op::kDense) {
      funcs << "  int32_t r, n, p;\n  for (r = 0; r < " << op.rows << "; ++r)\n    for (n = 0; n < "
            << op.n_out << "; ++n) {\n"
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
      funcs << "          const int32_t ih = ih0 + kiln_kh" << id << "[p], iw = iw0 + kiln_kw" << id
            << "[p];\n"
            << "          if (ih < 0 || ih >= " << w.H << " || iw < 0 || iw >= " << w.W << ") continue;\n";
    funcs << "          acc += (" << acc << ")x[base + kiln_o" << id << "[p]"
          << (op.kind == Op::kDepthwise ? " + n" : "") << "] * kiln_w" << id << "[p];\n        }\n        "
          << out << "      }\n    }\n}\n\n";
    code_bytes += padded ? 200 : 150;
  }

  // sigmoid / tanh: hls4ml's table in flash; the index is the input times N / (2R), a power of two, so a
  // shift, truncated toward zero as int() of an ap_fixed truncates.
  void lut(const Op& op, const std::string& id) {
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
  void hard_tanh(const Op& op, const std::string& id) {
    const Buffer& y = buf(op.out);
    const int64_t one = int64_t{1} << y.frac;
    funcs << "static void kiln_op" << id << "(" << type(op.out) << " *y) {\n  int32_t e;\n  for (e = 0; e < "
          << y.size << "; ++e) {\n";
    if (y.min() < -one) funcs << "    if (y[e] < -" << one << ") y[e] = -" << one << ";\n";
    if (y.max() > one) funcs << "    if (y[e] > " << one << ") y[e] = " << one << ";\n";
    funcs << "    (void)y[e];\n  }\n}\n\n";
    code_bytes += 40;
  }

  static std::string requant_args(const compress::FixedType& t) {
    return std::to_string(t.k) + ", " + std::to_string(t.i + t.f) + ", " + round_name(t.round) + ", " +
           overflow_name(t.overflow);
  }

  // The softmax of compress/lut_codes.h on every lane of the last axis, with hls4ml's exp and invert tables.
  void softmax(const Op& op, const std::string& id) {
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
    const_bytes += write_array(tables, "static const", "kiln_e" + id, op.softmax_tables.exp,
                               width(op.softmax_tables.exp));
    const_bytes += write_array(tables, "static const", "kiln_i" + id, op.softmax_tables.inv,
                               width(op.softmax_tables.inv));
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
            << "      for (j = 0; j < " << L
            << "; ++j)\n        a[j] = kiln_requant(kiln_requant(a[j] - m, 0, "
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
  void avg_pool(const Op& op, const std::string& id) {
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

  void max_pool(const Op& op, const std::string& id) {
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
          << "            if (!any || x[(ih * " << w.W << " + iw) * " << w.C
          << " + c] > best) best = x[(ih * " << w.W << " + iw) * " << w.C
          << " + c], any = 1;\n          }\n        y[(oh * " << w.OW << " + ow) * " << w.C << " + c] = ("
          << type(op.out) << ")best;\n      }\n}\n\n";
    code_bytes += 130;
  }
};

}  // namespace

CFiles emit_c(const Program& p, const COptions& o) {
  KILN_CHECK(!p.ops.empty(), "nothing to generate: the program has no operations");
  Emitter em{p, o, identifier(p.name), {}, {}, {}, 0, 0, {}, {}};
  for (const Op& op : p.ops)
    if (op.in2 > 0) em.kept.insert(op.in2);  // a residual block's input, attention's Q, K, V
  // Only the current buffer is live besides the kept ones, so each op writes the union its input is not in.
  for (const Op& op : p.ops)
    if (op.out != op.in && op.out != 0 && !em.kept.count(op.out))
      em.slot[op.out] = em.slot.count(op.in) ? 1 - em.slot.at(op.in) : 0;
  const std::string& N = em.N;
  const Buffer &in = p.input(), &out = p.out();
  bool requant = false;
  for (size_t j = 0; j < p.ops.size(); ++j) {
    const Op& op = p.ops[j];
    const std::string id = std::to_string(j + 1);
    switch (op.kind) {
      case Op::kQuantize:
        requant = em.quantize(op, id) || requant;
        break;
      case Op::kDense:
      case Op::kConv:
      case Op::kDepthwise:
        em.mac(op, id);
        break;
      case Op::kMaxPool:
        em.max_pool(op, id);
        break;
      case Op::kAvgPool:
        em.avg_pool(op, id);
        break;
      case Op::kAdd:
        em.add(op, id);
        break;
      case Op::kScores:
        em.scores(op, id);
        break;
      case Op::kContext:
        em.context(op, id);
        break;
      case Op::kLayerNorm:
        em.layer_norm(op, id);
        break;
      case Op::kAddConst:
        em.add_const(op, id);
        break;
      case Op::kSlice:
        em.slice(op, id);
        break;
      case Op::kSumSquares:
        em.sum_squares(op, id);
        break;
      case Op::kLut:
        em.lut(op, id);
        break;
      case Op::kSoftmax:
        em.softmax(op, id), requant = true;
        break;
      case Op::kHardTanh:
        KILN_CHECK(op.in != 0, "hard tanh on the model input is not supported by the C generator");
        em.hard_tanh(op, id);
        break;
      case Op::kRelu:
        KILN_CHECK(op.in != 0, "a ReLU on the model input is not supported by the C generator");
        // An unconditional store: host compilers vectorise it as a max (a conditional store of 16-bit values
        // has no AVX2 form and stays a branch per element).
        em.funcs << "static void kiln_op" << id << "(" << em.type(op.out)
                 << " *y) {\n  int32_t e;\n  for (e = 0; e < " << em.buf(op.out).size
                 << (o.fast_kernels ? "; ++e) y[e] = y[e] < 0 ? 0 : y[e];\n}\n\n"
                                    : "; ++e)\n    if (y[e] < 0) y[e] = 0;\n}\n\n");
        em.code_bytes += 30;
        break;
    }
    const bool in_place = op.kind == Op::kRelu || op.kind == Op::kHardTanh;
    em.run << "  kiln_op" << id << "(" << (in_place ? "" : em.ptr(op.in) + ", ")
           << (op.in2 >= 0 ? em.ptr(op.in2) + ", " : "") << em.ptr(op.out) << ");\n";
  }
  // The ping-pong buffers: one union per slot, each member as long as the longest buffer of that type.
  std::map<int, int64_t> slot[2];
  for (auto [b, s] : em.slot) {
    int64_t& n = slot[s][em.bytes(b)];
    n = std::max(n, p.buffers[static_cast<size_t>(b)].size);
  }
  CFiles f;
  std::ostringstream bufs;
  for (int s = 0; s < 2; ++s) {
    if (slot[s].empty()) continue;
    int64_t bytes = 0;
    bufs << "static union {";
    for (auto [w, n] : slot[s])
      bufs << " int" << 8 * w << "_t i" << 8 * w << '[' << n << "];", bytes = std::max(bytes, w * n);
    bufs << " } " << (s == 0 ? "kiln_a" : "kiln_b") << ";\n";
    f.ram_bytes += (bytes + 7) / 8 * 8;  // a union is aligned (and padded) to its widest member
  }
  for (int b : em.kept) {
    bufs << "static " << em.type(b) << " kiln_k" << b << "[" << p.buffers[static_cast<size_t>(b)].size
         << "];  /* a residual block's input */\n";
    f.ram_bytes += p.buffers[static_cast<size_t>(b)].size * em.bytes(b);
  }
  const std::string in_t = em.type(0), out_t = em.type(p.output);
  std::ostringstream h;
  h << "/* " << N
    << ".h: generated by kiln. Bit-exact with kiln's deployed fixed-point model. C99, no malloc, no stdio,\n"
    << "   no libm. Integer entry point: " << N
    << "_run (codes in, codes out). Float convenience layer: " << N
    << "_predict\n   (standardisation + input quantization; compile with -D" << N
    << "_NO_FLOAT to leave it out). */\n"
    << "#ifndef " << N << "_H\n#define " << N << "_H\n#include <stdint.h>\n\n"
    << "#define " << N << "_N_IN " << in.size << "\n#define " << N << "_N_OUT " << out.size << "\n"
    << "/* input element e is its quantized value times 2^" << N << "_IN_FRAC; output y = code * 2^-" << N
    << "_OUT_FRAC */\n"
    << "#define " << N << "_IN_FRAC " << in.frac << "\n#define " << N << "_OUT_FRAC " << out.frac << "\n"
    << "typedef " << in_t << ' ' << N << "_in_t;\ntypedef " << out_t << ' ' << N << "_out_t;\n\n"
    << "void " << N << "_run(const " << N << "_in_t x[" << N << "_N_IN], " << N << "_out_t y[" << N
    << "_N_OUT]);\n\n"
    << "#ifndef " << N << "_NO_FLOAT\n"
    << "/* x: raw features (standardised here if the model was trained on standardised data). */\n"
    << "void " << N << "_quantize_input(const float x[" << N << "_N_IN], " << N << "_in_t q[" << N
    << "_N_IN]);\n"
    << "void " << N << "_predict(const float x[" << N << "_N_IN], float y[" << N
    << "_N_OUT]);\n#endif\n\n#endif\n";
  f.header = h.str();

  std::ostringstream c;
  c << "/* " << N << ".c: generated by kiln; see " << N << ".h. */\n#include \"" << N << ".h\"\n\n"
    << "#if (-1 >> 1) != -1\n#error \"kiln: >> of a negative integer must be an arithmetic shift (GCC, Clang "
       "and Arm compilers)\"\n#endif\n\n"
    << "enum { KILN_TRN, KILN_TRN_ZERO, KILN_RND, KILN_RND_ZERO, KILN_RND_MIN_INF, KILN_RND_INF, "
       "KILN_RND_CONV };\n"
    << "enum { KILN_WRAP, KILN_SAT, KILN_SAT_SYM, KILN_SAT_ZERO };\n\n";
  if (requant) c << kRequant, em.code_bytes += 300;
  if (em.dsp) c << dsp_preamble(N);
  c << em.tables.str() << '\n' << bufs.str() << '\n' << em.funcs.str();
  c << "void " << N << "_run(const " << N << "_in_t x[" << N << "_N_IN], " << N << "_out_t y[" << N
    << "_N_OUT]) {\n"
    << "  int32_t e;\n"
    << em.run.str() << "  for (e = 0; e < " << out.size << "; ++e) y[e] = " << em.ptr(p.output)
    << "[e];\n}\n\n";
  em.code_bytes += 60 + 10 * static_cast<int64_t>(p.ops.size());
  // The float layer.
  c << "#ifndef " << N << "_NO_FLOAT\n" << kRealQuant;
  const bool st = !p.mean.empty();
  if (st) {
    c << "static const float kiln_mean[" << p.mean.size() << "] = {";
    for (size_t j = 0; j < p.mean.size(); ++j) c << (j ? ", " : "") << hexfloat(p.mean[j]);
    c << "};\nstatic const float kiln_scale[" << p.scale.size() << "] = {";
    for (size_t j = 0; j < p.scale.size(); ++j) c << (j ? ", " : "") << hexfloat(p.scale[j]);
    c << "};\n\n";
    em.const_bytes += 8 * static_cast<int64_t>(p.mean.size());
  }
  em.code_bytes += 650 + (p.input_types.pattern == TypeTable::kUniform
                              ? 0
                              : 170);  // the float layer: kiln_quant_real, NAME_quantize_input, NAME_predict
  auto [fi, mi] = em.type_tables(c, p.input_types, in.frac, "_in", in.shape.back());
  c << "void " << N << "_quantize_input(const float x[" << N << "_N_IN], " << N << "_in_t q[" << N
    << "_N_IN]) {\n"
    << "  int32_t e;\n  for (e = 0; e < " << in.size << "; ++e) {\n    float s = x[e];\n";
  if (st)
    c << "    s = s - kiln_mean[e];\n    s = s * kiln_scale[e]; /* as kiln's standardiser: (x - mean) * (1 / "
         "std) in float */\n";
  c << "    q[e] = (" << N << "_in_t)(kiln_quant_real((double)s * kiln_pow2(" << fi << "), "
    << p.input_types.k << ", " << mi << ", " << round_name(p.input_types.round) << ", "
    << overflow_name(p.input_types.overflow) << ") * ((int64_t)1 << (" << in.frac << " - " << fi
    << ")));\n  }\n}\n\n"
    << "void " << N << "_predict(const float x[" << N << "_N_IN], float y[" << N << "_N_OUT]) {\n"
    << "  " << N << "_in_t q[" << N << "_N_IN];\n  " << N << "_out_t r[" << N << "_N_OUT];\n  int32_t e;\n"
    << "  " << N << "_quantize_input(x, q);\n  " << N << "_run(q, r);\n"
    << "  for (e = 0; e < " << N << "_N_OUT; ++e) y[e] = (float)((double)r[e] * kiln_pow2(-" << N
    << "_OUT_FRAC));\n}\n#endif\n";
  f.source = c.str();
  f.const_bytes = em.const_bytes;
  f.code_bytes = em.code_bytes;
  return f;
}

}  // namespace kiln::codegen
