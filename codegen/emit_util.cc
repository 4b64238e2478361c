#include "codegen/emit_util.h"

#include <algorithm>
#include <cctype>
#include <cstdio>

namespace kiln::codegen {

int int_bytes(int64_t lo, int64_t hi) {
  const int bits = signed_bits(lo, hi);
  return bits <= 8 ? 1 : bits <= 16 ? 2 : bits <= 32 ? 4 : 8;
}

std::string int_type(int64_t lo, int64_t hi) { return "int" + std::to_string(8 * int_bytes(lo, hi)) + "_t"; }

int uint_bytes(int64_t max) { return max < 256 ? 1 : max < 65536 ? 2 : 4; }

std::string uint_type(int64_t max) { return "uint" + std::to_string(8 * uint_bytes(max)) + "_t"; }

std::string int_literal(int64_t v, int bytes) {
  if (bytes == 8) return "INT64_C(" + std::to_string(v) + ")";
  if (v == INT32_MIN) return "(-2147483647 - 1)";  // the literal 2147483648 does not fit an int
  return std::to_string(v);
}

std::string hexfloat(float v) {
  char b[64];
  std::snprintf(b, sizeof b, "%af", static_cast<double>(v));
  return b;
}

int64_t write_array(std::ostream& os, const std::string& qualifiers, const std::string& name,
                    const std::vector<int64_t>& values, int bytes, bool is_unsigned) {
  const std::string type = (is_unsigned ? "uint" : "int") + std::to_string(8 * bytes) + "_t";
  const size_t n = std::max<size_t>(values.size(), 1);
  os << qualifiers << ' ' << type << ' ' << name << '[' << n << "] = {";
  if (values.empty()) os << "0 /* empty */";
  for (size_t j = 0; j < values.size(); ++j) {
    if (j % 16 == 0) os << "\n    ";
    os << int_literal(values[j], bytes) << (j + 1 < values.size() ? "," : "");
    if (j + 1 < values.size() && (j + 1) % 16 != 0) os << ' ';
  }
  os << "};\n";
  return static_cast<int64_t>(n) * bytes;
}

SparseWeights sparse_weights(const Op& op) {
  SparseWeights s;
  const Window& w = op.win;
  const bool dense = op.kind == Op::kDense;
  const int64_t taps = dense ? 1 : w.KH * w.KW, cin = dense ? op.n_in : (op.kind == Op::kDepthwise ? 1 : w.C);
  s.start.push_back(0);
  for (int64_t n = 0; n < op.n_out; ++n) {
    for (int64_t t = 0; t < taps; ++t)
      for (int64_t c = 0; c < cin; ++c) {
        int64_t idx, off;
        if (dense) {
          idx = c * op.n_out + n, off = c;
        } else if (op.kind == Op::kDepthwise) {
          idx = t * w.C + n, off = ((t / w.KW) * w.W + t % w.KW) * w.C;
        } else {
          idx = (t * w.C + c) * op.n_out + n, off = ((t / w.KW) * w.W + t % w.KW) * w.C + c;
        }
        const int64_t v = op.weights[static_cast<size_t>(idx)];
        if (v == 0) continue;
        s.offset.push_back(off), s.kh.push_back(dense ? 0 : t / w.KW), s.kw.push_back(dense ? 0 : t % w.KW);
        s.value.push_back(v);
      }
    s.start.push_back(static_cast<int64_t>(s.value.size()));
  }
  return s;
}

std::string identifier(const std::string& s) {
  std::string out;
  for (char c : s) out += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
  if (out.empty() || std::isdigit(static_cast<unsigned char>(out[0]))) out = "l_" + out;
  return out;
}

namespace {

std::string adder_tree(std::ostream& os, int64_t lo, int64_t n, const std::string& type,
                       const std::function<std::string(const std::string&, const std::string&)>& sum,
                       int* tmp) {
  if (n == 1) return "e[" + std::to_string(lo) + "]";
  const int64_t left = compress::reduce_left(n);
  const std::string a = adder_tree(os, lo, left, type, sum, tmp),
                    b = adder_tree(os, lo + left, n - left, type, sum, tmp);
  const std::string s = "s" + std::to_string((*tmp)++);
  os << "    const " << type << ' ' << s << " = " << sum(a, b) << ";\n";
  return s;
}

}  // namespace

std::string adder_tree(std::ostream& os, int64_t n, const std::string& type,
                       const std::function<std::string(const std::string&, const std::string&)>& sum) {
  int tmp = 0;
  return adder_tree(os, 0, n, type, sum, &tmp);
}

Program prepare(const compress::DeployedModel& d, const std::string& name) {
  Program p = d.program();
  p.name = name;
  for (const Op& op : p.ops) {
    const Buffer& x = p.buffers[static_cast<size_t>(op.in)];
    const Buffer& y = p.buffers[static_cast<size_t>(op.out)];
    const int bits = signed_bits(y.min(), y.max());
    // Quantized tensors and residual sums live in 32-bit storage; accumulators may be 64-bit wide.
    if ((op.kind == Op::kQuantize || op.kind == Op::kAdd) && bits > 32)
      throw InputError("cannot generate code for '" + op.name + "': its values need " + std::to_string(bits) +
                       " bits on the grid 2^-" + std::to_string(y.frac) +
                       "; the generated code stores at most 32");
    if (op.kind == Op::kLut) {  // the generated code computes the index x * 2^shift in 32 bits
      const int64_t bound = std::max(std::llabs(x.min()), std::llabs(x.max()));
      const int sh = op.lut_shift;
      const bool fits = sh >= 0 ? sh < 31 && bound < (int64_t{1} << (31 - sh))
                                : (sh <= -62 || (bound >> -sh) < (int64_t{1} << 31));
      if (!fits)
        throw InputError("cannot generate code for '" + op.name + "': its table index (input * 2^" +
                         std::to_string(sh) + ") would exceed 32 bits");
    }
  }
  const Buffer& in = p.input();
  if (signed_bits(in.min(), in.max()) > 32)
    throw InputError("cannot generate code: the model input needs more than 32 bits on the grid 2^-" +
                     std::to_string(in.frac));
  return p;
}

}  // namespace kiln::codegen
