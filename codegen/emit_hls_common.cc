// The pieces every HLS kernel is written with: ap_fixed spellings of buffers and quantizer types, the
// quantizer's conversions, function signatures, and exact constants (inline or in a table's own header).
#include <cmath>
#include <cstdio>
#include <sstream>

#include "codegen/emit_hls_internal.h"

namespace kiln::codegen::hls_detail {

namespace {

using compress::Round;

std::string ap_round(Round r) {
  return r == Round::kStochastic ? "AP_RND" : compress::to_string(r);  // inference rounds to nearest
}

}  // namespace

std::string container(int64_t lo, int64_t hi, int frac) {
  const int w = signed_bits(lo, hi);
  return "ap_fixed<" + std::to_string(w) + ", " + std::to_string(w - frac) + ">";
}

std::string exact(int64_t code, int frac) {
  char b[64];
  std::snprintf(b, sizeof b, "%.17g", std::ldexp(static_cast<double>(code), -frac));
  return b;
}

// The typedef of element type j of a quantizer (created once per distinct type).
std::string Hls::qtype(const TypeTable& t, size_t j) {
  const int w = t.width(j), i = t.k + t.m[j] - t.f[j];
  std::string s = std::string(t.k ? "ap_fixed<" : "ap_ufixed<") + std::to_string(w) + ", " +
                  std::to_string(i) + ", " + ap_round(t.round) + ", " + compress::to_string(t.overflow) + ">";
  auto it = qtypes.find(s);
  if (it != qtypes.end()) return it->second;
  std::string name = "quant" + std::to_string(qtypes.size()) + "_t";
  defines << "typedef " << s << ' ' << name << ";\n";
  return qtypes[s] = name;
}

// One conversion per element: y[e] = (type of e) x[e], or 0 for a zero-width (pruned) element.
std::string Hls::convert(const TypeTable& t, size_t j, const std::string& y, const std::string& x) {
  if (t.width(j) <= 0) return y + " = 0;  // zero width: pruned";
  return y + " = (" + qtype(t, j) + ")" + x + ";";
}

void Hls::quantize_body(std::ostream& os, const TypeTable& t, int64_t n, int64_t channels,
                        const std::string& y, const std::string& x, const std::string& ind) {
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

std::string Hls::signature(const Op& op, const std::string& fn) const {
  const int64_t nin = buf(op.in).size, nout = buf(op.out).size;
  if (op.kind == Op::kContext)
    return "void " + fn + "(" + btype(op.in) + " p[" + std::to_string(nin) + "], " + btype(op.in2) + " x2[" +
           std::to_string(buf(op.in2).size) + "], " + btype(op.out) + " y[" + std::to_string(nout) + "])";
  if (op.kind == Op::kAdd)
    return "void " + fn + "(" + btype(op.in) + " x[" + std::to_string(nin) + "], " + btype(op.in2) + " x2[" +
           std::to_string(nin) + "], " + btype(op.out) + " y[" + std::to_string(nout) + "])";
  if (op.kind == Op::kRelu || op.kind == Op::kHardTanh)
    return "void " + fn + "(" + btype(op.out) + " y[" + std::to_string(nout) + "])";
  return "void " + fn + "(" + btype(op.in) + " x[" + std::to_string(nin) + "], " + btype(op.out) + " y[" +
         std::to_string(nout) + "])";
}

// An ap type spelling of a quantizer type, modes included (they act on every conversion into it).
std::string Hls::ap_type(const compress::FixedType& t) {
  const int w = t.k + t.i + t.f;
  return std::string(t.k ? "ap_fixed<" : "ap_ufixed<") + std::to_string(w) + ", " +
         std::to_string(t.k + t.i) + ", " + ap_round(t.round) + ", " + compress::to_string(t.overflow) + ">";
}

// A constant table in its own header (weights/NAME.h), values exact.
void Hls::table(const std::string& nm, const std::string& type, const std::vector<int64_t>& codes, int frac,
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
std::string Hls::pow2_const(const std::string& nm, int e) {
  return "  static const ap_ufixed<1, " + std::to_string(1 + e) + "> " + nm + " = " + exact(1, -e) + ";\n";
}

// `static const long long NAME[N] = {...};` inside a function.
std::string Hls::int_array(const std::string& nm, const std::vector<int64_t>& v) {
  std::string s = "  static const long long " + nm + "[" + std::to_string(v.size()) + "] = {";
  for (size_t j = 0; j < v.size(); ++j) s += (j ? ", " : "") + std::to_string(v[j]) + "LL";
  return s + "};\n";
}

}  // namespace kiln::codegen::hls_detail
