#include "codegen/emit_c_quantize.h"

#include <algorithm>
#include <vector>

namespace kiln::codegen {

namespace {

using compress::Overflow;
using compress::Round;

// Entry j's constants: drop s fractional bits, keep [lo, hi], shift left by t onto the output grid. A pruned
// entry (width <= 0) is [0, 0] with no shift: every overflow mode then gives 0, as kiln_requant does.
struct Entry {
  int64_t s = 0, t = 0, lo = 0, hi = 0;
};

Entry entry(const Program& p, const Op& op, size_t j) {
  const TypeTable& tt = op.types;
  Entry c;
  if (tt.width(j) <= 0) return c;
  c.s = p.buffers[static_cast<size_t>(op.in)].frac - tt.f[j];
  c.t = p.buffers[static_cast<size_t>(op.out)].frac - tt.f[j];
  if (tt.m[j] < 0 || tt.m[j] > 30) return c.s = -1, c;  // out of the 32-bit scheme: fits() rejects it
  c.hi = (int64_t{1} << tt.m[j]) - 1;
  c.lo = tt.k == 0 ? 0 : (tt.overflow == Overflow::kSatSym ? -c.hi : -c.hi - 1);
  return c;
}

}  // namespace

bool quantize_fast_fits(const Program& p, const Op& op) {
  if (op.kind != Op::kQuantize) return false;
  const Round r = op.types.round;
  if (r != Round::kTrn && r != Round::kRnd && r != Round::kStochastic) return false;  // S_RND deploys as RND
  const Buffer& x = p.buffers[static_cast<size_t>(op.in)];
  // x + 2^(s-1) with s <= 30 stays below 2^31 when |x| < 2^29.
  if (signed_bits(x.min(), x.max()) > 30) return false;
  for (size_t j = 0; j < op.types.f.size(); ++j) {
    const Entry c = entry(p, op, j);
    // Shifts in [0, 30] and hi 2^t, lo 2^t inside int32_t (m + t <= 30): every step below is exact in 32
    // bits.
    if (c.s < 0 || c.s > 30 || c.t < 0 || c.t > 30) return false;
    if (op.types.width(j) > 0 && op.types.m[j] + c.t > 30) return false;
  }
  return true;
}

EmittedBytes emit_quantize_fast(std::ostream& tables, std::ostream& funcs, const Program& p, const Op& op,
                                const std::string& id) {
  EmittedBytes b;
  const Buffer &x = p.buffers[static_cast<size_t>(op.in)], &y = p.buffers[static_cast<size_t>(op.out)];
  const TypeTable& tt = op.types;
  const std::string xt = int_type(x.min(), x.max()), yt = int_type(y.min(), y.max());
  // Each constant is a literal for a uniform type, else a table indexed per element or per channel.
  std::string s, t, lo, hi;
  if (tt.pattern == TypeTable::kUniform) {
    const Entry c = entry(p, op, 0);
    s = std::to_string(c.s), t = std::to_string(c.t), lo = std::to_string(c.lo), hi = std::to_string(c.hi);
  } else {
    std::vector<int64_t> vs, vt, vlo, vhi;
    for (size_t j = 0; j < tt.f.size(); ++j) {
      const Entry c = entry(p, op, j);
      vs.push_back(c.s), vt.push_back(c.t), vlo.push_back(c.lo), vhi.push_back(c.hi);
    }
    auto table = [&](const std::string& name, const std::vector<int64_t>& v) {
      const auto [a, z] = std::minmax_element(v.begin(), v.end());
      b.const_bytes += write_array(tables, "static const", name + id, v, int_bytes(*a, *z));
      return name + id + "[j]";
    };
    s = table("kiln_qs", vs), t = table("kiln_qt", vt), lo = table("kiln_ql", vlo),
    hi = table("kiln_qh", vhi);
  }
  const char* mode = tt.round == Round::kTrn ? "TRN" : "RND";
  const char* ovf = tt.overflow == Overflow::kWrap      ? "WRAP"
                    : tt.overflow == Overflow::kSatZero ? "SAT_ZERO"
                    : tt.overflow == Overflow::kSatSym  ? "SAT_SYM"
                                                        : "SAT";
  funcs << "/* " << op.name << ": quantizer (" << mode << ", " << ovf
        << ") in 32 bits: q = x 2^-s rounded, kept in [lo, hi] of its type, placed on the 2^-" << y.frac
        << " grid */\nstatic void kiln_op" << id << "(const " << xt << " *x, " << yt
        << " *y) {\n  int32_t e;\n"
        << "  for (e = 0; e < " << y.size << "; ++e) {\n";
  if (tt.pattern == TypeTable::kChannel)
    funcs << "    const int32_t j = e % " << y.shape.back() << ";\n";
  else if (tt.pattern == TypeTable::kElement)
    funcs << "    const int32_t j = e;\n";
  funcs << "    const int32_t s = " << s << ", lo = " << lo << ", hi = " << hi << ";\n";
  // Round half up: floor((x + 2^(s-1)) / 2^s), an arithmetic shift (s = 0: no rounding, the add is 0).
  if (tt.round == Round::kTrn)
    funcs << "    int32_t q = (int32_t)x[e] >> s;\n";
  else
    funcs << "    int32_t q = ((int32_t)x[e] + ((1 << s) >> 1)) >> s;\n";
  switch (tt.overflow) {
    case Overflow::kWrap:  // hi - lo + 1 is the type's modulus 2^width: keep q modulo it, in [lo, hi]
      funcs << "    q = (int32_t)(((uint32_t)q - (uint32_t)lo) & (uint32_t)(hi - lo)) + lo;\n";
      break;
    case Overflow::kSat:
    case Overflow::kSatSym:
      funcs << "    q = q < lo ? lo : q > hi ? hi : q;\n";
      break;
    case Overflow::kSatZero:
      funcs << "    q = q < lo || q > hi ? 0 : q;\n";
      break;
  }
  funcs << "    y[e] = (" << yt << ")(q * ((int32_t)1 << " << t << "));\n  }\n}\n\n";
  b.code_bytes += tt.pattern == TypeTable::kUniform ? 40 : 70;
  return b;
}

}  // namespace kiln::codegen
