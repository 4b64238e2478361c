#include "codegen/emit_c.h"

#include <algorithm>
#include <map>
#include <set>
#include <sstream>

#include "codegen/emit_c_dense.h"
#include "codegen/emit_c_internal.h"
#include "codegen/emit_util.h"

namespace kiln::codegen {

namespace c_detail {

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

}  // namespace c_detail

namespace {

using c_detail::Emitter;
using c_detail::overflow_name;
using c_detail::round_name;

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
